/* bench_streams.c - per-stream cost of the input path with each detector: Opus decode at 16 kHz
 * mono + VAD + endpointing, for the "classic" preset ("energy" + fixed 1 s silence, the original
 * design) and the default ("spectral" + the turn endpointer, kmk_stream_params_preset "turn").
 *
 * Prepares ~10 s of real speech (pocketsphinx test WAVs), resamples it to 48 kHz stereo and
 * Opus-encodes it once (20 ms, 64 kbit/s, as Discord sends). Then feeds the packets through
 * kmk_speaker_stream repeatedly and measures process CPU time (CLOCK_PROCESS_CPUTIME_ID).
 * Prints plain `name: value` lines; each figure is the min and median of 5 trials (the machine
 * may be shared, so the minimum is the least disturbed one), and streams per core = 32 ms / CPU
 * per 32 ms of audio (how many simultaneously speaking streams one core sustains).
 * Usage: bench_streams [seconds_of_cpu_to_spend, default 2]
 * Owns only its own buffers; single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/opus.h"
#include "kameko/resample.h"
#include "kameko/stream.h"
#include "kameko/vad.h"
#include "kameko/wav.h"

#define DATA "/usr/share/pocketsphinx/test/data"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct {
  uint8_t (*pkt)[KMK_OPUS_MAX_PACKET];
  int *len;
  size_t n, cap;
} packets;

#define TRIALS 5

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int utterances;
static void on_event(void *ud, const kmk_stream_event *ev) {
  (void)ud;
  if (ev->type == KMK_EP_SPEECH_END) utterances++;
}

int main(int argc, char **argv) {
  double budget = argc > 1 ? atof(argv[1]) : 2.0;
  if (budget <= 0) budget = 2.0;
  kmk_log_set_level(KMK_LOG_WARN);
  const char *files[] = {DATA "/librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
                         DATA "/cards/001.wav", DATA "/cards/002.wav", DATA "/cards/003.wav",
                         DATA "/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"};
  /* 1. gather ~10 s of speech at its native rate, converted to 48 kHz stereo */
  size_t cap48 = 48000 * 2 * 12, n48 = 0;
  int16_t *st48 = calloc(cap48 + 48000 * 2, sizeof *st48);
  for (size_t i = 0; i < sizeof files / sizeof files[0] && n48 < 48000 * 10; i++) {
    kmk_wav w;
    char err[256];
    if (kmk_wav_read(files[i], &w, err, sizeof err) < 0) {
      fprintf(stderr, "skip: %s\n", err);
      continue;
    }
    kmk_resampler *r = kmk_resampler_new(w.rate, w.channels, 48000, 2);
    const int16_t *o;
    long k = kmk_resampler_process_f32(r, w.samples, w.frames, &o);
    for (int pass = 0; pass < 2 && k > 0; pass++) {
      size_t room = cap48 / 2 - n48;
      size_t take = (size_t)k < room ? (size_t)k : room;
      memcpy(st48 + 2 * n48, o, take * 2 * sizeof *o);
      n48 += take;
      if (pass == 0) k = kmk_resampler_flush(r, &o);
    }
    kmk_resampler_free(r);
    kmk_wav_free(&w);
  }
  if (n48 < 48000) {
    fprintf(stderr, "bench_streams: no test audio found under %s\n", DATA);
    return 1;
  }
  n48 -= n48 % 960;
  /* 2. encode once */
  char err[160];
  kmk_opus_enc *enc = kmk_opus_enc_new(64000, err, sizeof err);
  packets P = {0};
  P.cap = n48 / 960;
  P.pkt = malloc(P.cap * sizeof *P.pkt);
  P.len = malloc(P.cap * sizeof *P.len);
  size_t bytes = 0;
  for (size_t f = 0; f < n48; f += 960) {
    int len = kmk_opus_enc_encode(enc, st48 + 2 * f, P.pkt[P.n], KMK_OPUS_MAX_PACKET);
    if (len < 0) return 1;
    P.len[P.n++] = len;
    bytes += (size_t)len;
  }
  kmk_opus_enc_free(enc);
  const double audio_s = P.n * 0.020;
  printf("audio_seconds: %.2f\n", audio_s);
  printf("packets: %zu\n", P.n);
  printf("mean_packet_bytes: %.1f\n", (double)bytes / P.n);

  char err2[160];
  kmk_opus_dec *d = kmk_opus_dec_new(err2, sizeof err2);
  int16_t *pcm16 = malloc(P.n * 320 * sizeof *pcm16);
  for (size_t i = 0; i < P.n; i++)
    kmk_opus_dec_decode(d, P.pkt[i], (size_t)P.len[i], pcm16 + i * 320, 320);
  kmk_opus_dec_free(d);
  /* each figure: TRIALS trials of budget / TRIALS CPU seconds; min and median printed (the
     machine may be shared: the minimum is the least disturbed run) */
  const char *presets[2] = {"classic", "turn"}; /* energy + 1 s; spectral + turn (the default) */
  for (int c = 0; c < 2; c++) {
    kmk_stream_params sp;
    kmk_stream_params_preset(&sp, presets[c]);
    const char *name = sp.vad_name;
    double full[TRIALS], only[TRIALS];
    int runs = 0;
    for (int t = 0; t < TRIALS; t++) {
      /* full path: stream = decode + VAD + endpoint */
      int reps = 0;
      utterances = 0;
      double t0 = cpu_now(), cpu = 0;
      while (cpu < budget / TRIALS || reps < 2) {
        kmk_speaker_stream *s = kmk_speaker_stream_new(&sp, on_event, NULL);
        for (size_t i = 0; i < P.n; i++) kmk_speaker_stream_push_opus(s, P.pkt[i], (size_t)P.len[i]);
        kmk_speaker_stream_finish(s);
        kmk_speaker_stream_free(s);
        reps++;
        cpu = cpu_now() - t0;
      }
      full[t] = cpu * 1e6 / (audio_s * reps / 0.032);
      runs = utterances / reps;
      /* VAD + endpoint only, on the decoded PCM */
      reps = 0;
      t0 = cpu_now();
      cpu = 0;
      size_t frames10 = P.n * 2;
      while (cpu < budget / TRIALS / 2 || reps < 2) {
        kmk_vad *v = kmk_vad_new(name, &sp.vad);
        kmk_endpoint *ep = kmk_endpoint_new(&sp.endpoint);
        for (size_t i = 0; i < frames10; i++) {
          kmk_vad_result r;
          kmk_endpoint_event ev;
          kmk_vad_process(v, pcm16 + i * 160, &r);
          kmk_endpoint_process(ep, pcm16 + i * 160, &r, &ev);
        }
        kmk_endpoint_free(ep);
        kmk_vad_free(v);
        reps++;
        cpu = cpu_now() - t0;
      }
      only[t] = cpu * 1e6 / (frames10 * (double)reps) * 3.2;
    }
    qsort(full, TRIALS, sizeof *full, cmpd);
    qsort(only, TRIALS, sizeof *only, cmpd);
    printf("%s_full_path_us_cpu_per_32ms_audio: min %.2f median %.2f\n", name, full[0],
           full[TRIALS / 2]);
    /* one core, 32 ms of audio per stream every 32 ms: streams = 32 ms / CPU per 32 ms */
    printf("%s_streams_per_core: %.0f (median %.0f)\n", name, 32000.0 / full[0],
           32000.0 / full[TRIALS / 2]);
    printf("%s_utterances_per_run: %d\n", name, runs);
    printf("%s_vad_endpoint_only_us_per_32ms: min %.2f median %.2f\n", name, only[0],
           only[TRIALS / 2]);
  }
  free(pcm16);
  free(P.pkt);
  free(P.len);
  free(st48);
  return 0;
}
