/* bench_discord_rx.c - Discord voice figures.
 *
 * 1. Receive path per stream, no network (pure functions): sealed RTP packet -> transport decrypt
 *    (aead_aes256_gcm_rtpsize and aead_xchacha20_poly1305_rtpsize) -> jitter buffer -> Opus
 *    decode (16 kHz mono) -> VAD ("spectral", two 10 ms frames per packet). The packets are ~8 s
 *    of flite speech Opus-encoded by the engine's own encoder. Prints packets/s on one core and
 *    the CPU share one live stream (50 packets/s) costs, plus the decrypt step alone; then the
 *    same with every 20th packet dropped (5% loss: the jitter buffer hands the successor out and
 *    the lost frame is recovered from its Opus in-band FEC), and the cost of one concealed frame
 *    by FEC vs PLC vs a normal decode.
 * 2. Send pacing on the real loop: a kmk_pacer_uv at 20 ms seals one packet per tick and sends it
 *    over loopback UDP; the receiving socket on the same loop timestamps arrivals. Prints the
 *    deviation of send intervals from 20 ms (p50, p99, max) and the mean interval (drift).
 * Usage: bench_discord_rx [seconds of pacing, default 10]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "kameko/jitter.h"
#include "kameko/opus.h"
#include "kameko/out.h"
#include "kameko/pacer.h"
#include "kameko/rtp.h"
#include "kameko/speech.h"
#include "kameko/vad.h"

#include <stdatomic.h>

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

typedef struct {
  uint8_t data[KMK_OPUS_MAX_PACKET];
  int len;
} opkt;

static opkt *g_pk;
static size_t g_n, g_cap;
static int16_t *g_pcm;
static size_t g_pcm_n, g_pcm_cap;

static int on_pcm(void *ud, const int16_t *pcm, size_t n, int rate) {
  (void)ud;
  (void)rate;
  if (g_pcm_n + n > g_pcm_cap) {
    g_pcm_cap = (g_pcm_n + n) * 2;
    g_pcm = realloc(g_pcm, g_pcm_cap * sizeof *g_pcm);
  }
  memcpy(g_pcm + g_pcm_n, pcm, n * sizeof *pcm);
  g_pcm_n += n;
  return 0;
}

static int make_packets(void) {
  const char *lines[] = {"hello bob did you see the game last night",
                         "kameko what is your name", "the weather is nice today and i am glad"};
  atomic_int cancel = 0;
  char err[256];
  for (int i = 0; i < 3; i++) {
    kmk_tts_voice v = {.voice = i % 2 ? "kal16" : "slt"};
    if (kmk_tts_flite_synth(lines[i], &v, on_pcm, NULL, &cancel, err, sizeof err) != 0) return -1;
  }
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  if (!o || kmk_audio_out_push(o, g_pcm, g_pcm_n, 16000) != 0 || kmk_audio_out_finish(o) != 0)
    return -1;
  const kmk_out_frame *f;
  while ((f = kmk_audio_out_pop(o)) != NULL) {
    if (g_n == g_cap) {
      g_cap = g_cap ? g_cap * 2 : 512;
      g_pk = realloc(g_pk, g_cap * sizeof *g_pk);
    }
    memcpy(g_pk[g_n].data, f->data, (size_t)f->len);
    g_pk[g_n++].len = f->len;
  }
  kmk_audio_out_free(o);
  return 0;
}

/* loss_every: drop every loss_every-th packet (0 = none) before the jitter buffer */
static void bench_rx(kmk_rtp_mode mode, int reps, int loss_every) {
  uint8_t key[32];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 7 + 1);
  /* seal every packet once (the sender's cost is not measured here) */
  uint8_t(*sealed)[KMK_RTP_MAX_PACKET] = malloc(g_n * sizeof *sealed);
  int *slen = malloc(g_n * sizeof *slen);
  for (size_t i = 0; i < g_n; i++)
    slen[i] = kmk_rtp_seal(mode, key, (uint16_t)i, (uint32_t)(i * 960), 1234, (uint32_t)i,
                           g_pk[i].data, (size_t)g_pk[i].len, sealed[i], KMK_RTP_MAX_PACKET);
  static uint8_t plain[KMK_RTP_MAX_PACKET];
  kmk_rtp_header h;
  /* decrypt alone */
  double c0 = cpu_s();
  for (int r = 0; r < reps; r++)
    for (size_t i = 0; i < g_n; i++)
      if (kmk_rtp_open(mode, key, sealed[i], (size_t)slen[i], &h, plain, sizeof plain) < 0) abort();
  double dec = cpu_s() - c0;
  /* whole receive path */
  kmk_opus_dec *d = kmk_opus_dec_new(NULL, 0);
  kmk_vad *vad = kmk_vad_new("spectral", NULL);
  static kmk_jitter jb;
  int16_t pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  long speech = 0, fec = 0, plc = 0;
  c0 = cpu_s();
  for (int r = 0; r < reps; r++) {
    kmk_jitter_init(&jb, 3, 60);
    for (size_t i = 0; i < g_n; i++) {
      int l = kmk_rtp_open(mode, key, sealed[i], (size_t)slen[i], &h, plain, sizeof plain);
      if (l < 0) abort();
      if (!(loss_every && i % (size_t)loss_every == (size_t)loss_every / 2))
        kmk_jitter_put(&jb, (uint16_t)(h.seq + r * 7000), plain, (size_t)l, i * 20);
      const uint8_t *p;
      size_t pl;
      int got;
      while ((got = kmk_jitter_pop(&jb, i * 20, &p, &pl)) != KMK_JITTER_NONE) {
        int s;
        if (got == KMK_JITTER_LOST_FEC) {
          s = kmk_opus_dec_decode_fec(d, p, pl, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
          fec++;
        } else {
          s = kmk_opus_dec_decode(d, got == KMK_JITTER_PACKET ? p : NULL,
                                  got == KMK_JITTER_PACKET ? pl : 0, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
          plc += got == KMK_JITTER_LOST;
        }
        for (int k = 0; k + KMK_VAD_FRAME <= s; k += KMK_VAD_FRAME) {
          kmk_vad_result vr;
          kmk_vad_process(vad, pcm + k, &vr);
          speech += vr.is_speech;
        }
      }
    }
  }
  double all = cpu_s() - c0;
  double pkts = (double)g_n * reps;
  char what[64];
  snprintf(what, sizeof what, "%s%s", kmk_rtp_mode_name(mode), loss_every ? " 5% loss" : "");
  printf("  %-32s decrypt %6.2f us/pkt (%8.0f pkt/s) | decrypt+jitter+decode+VAD %6.1f us/pkt "
         "(%6.0f pkt/s, one stream = %.2f%% of a core, %.0f streams/core)",
         what, dec / pkts * 1e6, pkts / dec, all / pkts * 1e6, pkts / all,
         all / pkts * 50 * 100, pkts / all / 50);
  if (loss_every) printf("; lost frames: %ld by FEC, %ld by PLC", fec, plc);
  printf("\n");
  if (speech == 0) printf("  (VAD found no speech: bench input broken)\n");
  kmk_vad_free(vad);
  kmk_opus_dec_free(d);
  free(sealed);
  free(slen);
}

/* CPU per concealed frame: FEC from the next packet vs PLC vs decoding a packet normally. Each
 * concealment follows a decode of the packets before it, as on a live stream. */
static void bench_conceal(int reps) {
  kmk_opus_dec *d = kmk_opus_dec_new(NULL, 0);
  int16_t pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  double t[3] = {0, 0, 0};
  long cnt[3] = {0, 0, 0};
  for (int r = 0; r < reps; r++) {
    kmk_opus_dec_reset(d);
    for (size_t i = 0; i + 1 < g_n; i++) {
      int kind = i % 10 == 5 ? (r % 2 ? 1 : 2) : 0; /* 0 decode, 1 FEC, 2 PLC */
      double c0 = cpu_s();
      int s = kind == 1   ? kmk_opus_dec_decode_fec(d, g_pk[i + 1].data, (size_t)g_pk[i + 1].len,
                                                    pcm, KMK_OPUS_DEC_MAX_SAMPLES)
              : kind == 2 ? kmk_opus_dec_decode(d, NULL, 0, pcm, KMK_OPUS_DEC_MAX_SAMPLES)
                          : kmk_opus_dec_decode(d, g_pk[i].data, (size_t)g_pk[i].len, pcm,
                                                KMK_OPUS_DEC_MAX_SAMPLES);
      t[kind] += cpu_s() - c0;
      cnt[kind]++;
      if (s <= 0) abort();
    }
  }
  printf("  one 20 ms frame: decode %.1f us, FEC recovery %.1f us, PLC %.1f us (%ld/%ld/%ld "
         "frames, clock read included)\n",
         t[0] / cnt[0] * 1e6, t[1] / cnt[1] * 1e6, t[2] / cnt[2] * 1e6, cnt[0], cnt[1], cnt[2]);
  kmk_opus_dec_free(d);
}

/* ---- pacing on the loop -------------------------------------------------------------------- */
typedef struct {
  uv_loop_t *loop;
  kmk_pacer_uv pacer;
  uv_udp_t tx, rx;
  struct sockaddr_in to;
  uint64_t frames, target;
  uint8_t key[32];
  double *send_t, *recv_t;
  size_t n_send, n_recv;
  int stopped;
} pace;

static void p_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  static char mem[2048];
  (void)h;
  (void)s;
  b->base = mem;
  b->len = sizeof mem;
}
static void p_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *a,
                   unsigned f) {
  pace *p = u->data;
  (void)b;
  (void)a;
  (void)f;
  if (n > 0 && p->n_recv < p->target) p->recv_t[p->n_recv++] = uv_hrtime() / 1e6;
}
static void p_tick(kmk_pacer_uv *pu, uint64_t due, void *ud) {
  pace *p = ud;
  static uint8_t pkt[KMK_RTP_MAX_PACKET];
  for (uint64_t k = 0; k < due && p->frames < p->target; k++) {
    const opkt *o = &g_pk[p->frames % g_n];
    int n = kmk_rtp_seal(KMK_RTP_AES256_GCM, p->key, (uint16_t)p->frames,
                         (uint32_t)(p->frames * 960), 99, (uint32_t)p->frames, o->data,
                         (size_t)o->len, pkt, sizeof pkt);
    uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)n);
    uv_udp_try_send(&p->tx, &b, 1, (const struct sockaddr *)&p->to);
    p->send_t[p->n_send++] = uv_hrtime() / 1e6;
    p->frames++;
  }
  if (p->frames >= p->target && !p->stopped) {
    p->stopped = 1;
    kmk_pacer_uv_stop(pu, NULL);
  }
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, const double *t, size_t n) {
  if (n < 3) return;
  double *dev = malloc((n - 1) * sizeof *dev);
  for (size_t i = 1; i < n; i++) dev[i - 1] = fabs(t[i] - t[i - 1] - 20.0);
  qsort(dev, n - 1, sizeof *dev, cmpd);
  double mean = (t[n - 1] - t[0]) / (double)(n - 1);
  printf("  %-10s %zu intervals: deviation from 20 ms p50 %.3f ms, p99 %.3f ms, max %.3f ms; "
         "mean interval %.4f ms\n",
         what, n - 1, dev[(n - 2) / 2], dev[(size_t)((n - 2) * 0.99)], dev[n - 2], mean);
  free(dev);
}

static void bench_pacing(double seconds) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  pace *p = calloc(1, sizeof *p);
  p->target = (uint64_t)(seconds * 50);
  p->send_t = calloc(p->target, sizeof(double));
  p->recv_t = calloc(p->target, sizeof(double));
  uv_udp_init(&loop, &p->tx);
  uv_udp_init(&loop, &p->rx);
  p->rx.data = p;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_udp_bind(&p->rx, (const struct sockaddr *)&a, 0);
  int len = sizeof p->to;
  uv_udp_getsockname(&p->rx, (struct sockaddr *)&p->to, &len);
  uv_udp_recv_start(&p->rx, p_alloc, p_recv);
  kmk_pacer_uv_start(&loop, &p->pacer, p_tick, p);
  while (!p->stopped || p->n_recv < p->n_send) {
    uv_run(&loop, UV_RUN_ONCE);
    if (p->stopped && p->n_recv < p->n_send) {
      /* give the last datagrams a moment */
      uv_run(&loop, UV_RUN_NOWAIT);
      if (p->n_recv < p->n_send) break;
    }
  }
  report("send", p->send_t, p->n_send);
  report("receive", p->recv_t, p->n_recv);
  printf("  pacer wake-ups %llu, max lateness %.3f ms, frames skipped %llu\n",
         (unsigned long long)p->pacer.wakeups, p->pacer.late_max_ns / 1e6,
         (unsigned long long)p->pacer.pacer.skipped);
  uv_close((uv_handle_t *)&p->tx, NULL);
  uv_close((uv_handle_t *)&p->rx, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  free(p->send_t);
  free(p->recv_t);
  free(p);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 10;
  if (make_packets() != 0 || g_n == 0) {
    fprintf(stderr, "could not synthesize the bench input\n");
    return 1;
  }
  printf("receive path, %zu packets (%.1f s of speech) per pass, one core:\n", g_n, g_n * 0.02);
  bench_rx(KMK_RTP_AES256_GCM, 20, 0);
  bench_rx(KMK_RTP_XCHACHA20_POLY1305, 20, 0);
  bench_rx(KMK_RTP_AES256_GCM, 20, 20);
  bench_conceal(20);
  printf("send pacing on the loop, %.0f s (seal + loopback UDP per tick):\n", secs);
  bench_pacing(secs);
  free(g_pk);
  free(g_pcm);
  return 0;
}
