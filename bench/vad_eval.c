/* vad_eval.c - labelled VAD/turn-taking corpus built at run time, and the scorer for the issue-8
 * table (frame F1 per condition, turn-end delay p50/p90, turns cut early, CPU per 32 ms).
 *
 * Owns: everything it allocates (single-threaded benchmark; the regression test
 * tests/unit/test_vad_eval.c includes this file with VAD_EVAL_NO_MAIN and calls vad_eval_run).
 *
 * Corpus (deterministic for a seed; nothing is downloaded or committed):
 *  - speech "clips": sentences spoken by flite (slt, kal16) and espeak-ng (en-us and ru with
 *    different pitches/rates; 22050 Hz resampled to 16 kHz with soxr), plus the real English
 *    recordings of pocketsphinx-testdata (librivox, cards, goforward/numbers/something.raw).
 *    Each clip is labelled at 10 ms from its CLEAN signal (high-passed at 100 Hz so a recording's
 *    own rumble does not count): a frame is speech when its RMS is within
 *    LABEL_DB (30 dB) of the clip's 95th-percentile frame RMS and at least 12 dB above the clip's
 *    10th percentile (real recordings have their own room noise); gaps <= 100 ms are closed
 *    (stop closures) and islands < 30 ms dropped. Clips are trimmed to their labelled extent and
 *    split at internal silences > 450 ms (so a reader's long breath becomes two sentences).
 *    Each recording file is first scaled to one active level (ve_add_clips).
 *  - per-speaker tracks: one voice per track, a random level (active RMS 600..4000), turns of 1-3
 *    clips with 150-450 ms hesitation pauses between them and 0.8-3 s gaps between turns.
 *  - conditions (one set of tracks each, different seeds): clean; white noise 20 dB and 5 dB SNR;
 *    pink 10 dB; brown 10 dB; mains hum (50 or 60 Hz + 9 harmonics, 10 dB) over white at 40 dB;
 *    keyboard clicks (typing bursts, peaks up to the speech peak) over white at 40 dB; background
 *    voices (another voice's continuous talk 18 dB below the speaker, labelled NOT speech) over
 *    white at 40 dB. SNR = active speech power / noise power.
 * Metrics: frame F1 of the detector's per-frame is_speech vs the labels (pooled over all tracks,
 * and per condition); turn-end delay = SPEECH_END decision time (end of the frame that emitted
 * it) minus the turn's true end (end of its last labelled frame); a turn is "cut early" when a
 * SPEECH_END is decided inside it (after its start, before its end) and the utterance it closes
 * contains part of the turn (not merely the previous turn's end); "speculative start" = from the
 * true end to the SPEECH_PAUSE that the turn's SPEECH_END then confirmed (when speculative STT
 * could begin; = the end itself when no pause preceded it); CPU = process CPU time of
 * VAD + endpointer per 32 ms of audio (CLOCK_PROCESS_CPUTIME_ID; mixing not counted).
 *
 * Usage: vad_eval [minutes, default 24] [seed, default 1]
 *   minutes = speech layout per condition x 8 (each track also gets 3 s of trailing silence, so
 *   the printed corpus length is ~20% longer). Seed 1 is the tuning set; 2 and 3 are held out.
 * Debug: VAD_EVAL_VERBOSE=1 lists every cut / late turn on stderr; VAD_EVAL_TRACE=<track id>
 * prints that track's per-frame label, decision, score, level and endpointer events.
 * Tuning: VAD_EVAL_EP=floor,ceiling,margin[,pause] (ms) replaces the "turn" row's endpointer.
 * Diagnosis: VAD_EVAL_EDGES=1 prints, per condition, the in-turn pauses' true length, the length
 * the endpointer sees, and the onset lag after them (ve_edges).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kameko/audio.h"
#include "kameko/endpoint.h"
#include "kameko/log.h"
#include "kameko/resample.h"
#include "kameko/speech.h"
#include "kameko/vad.h"
#include "kameko/wav.h"

#define VE_DATA "/usr/share/pocketsphinx/test/data"
#define VE_F KMK_VAD_FRAME
#define VE_PI 3.14159265358979323846
#define LABEL_DB 30.0

/* ---- deterministic random numbers (splitmix64) ------------------------------------------------ */

typedef struct {
  uint64_t s;
} ve_rng;
static uint64_t ve_next(ve_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double ve_uni(ve_rng *r) { return (double)(ve_next(r) >> 11) / 9007199254740992.0; }
static double ve_range(ve_rng *r, double a, double b) { return a + (b - a) * ve_uni(r); }
static int ve_int(ve_rng *r, int n) { return (int)(ve_uni(r) * n); }
static double ve_gauss(ve_rng *r) {
  double u = ve_uni(r) + 1e-12, v = ve_uni(r);
  return sqrt(-2 * log(u)) * cos(2 * VE_PI * v);
}

/* ---- clips ------------------------------------------------------------------------------------- */

typedef struct {
  float *x;      /* 16 kHz, nominal +-1, length n (multiple of VE_F) */
  uint8_t *lab;  /* n / VE_F frame labels */
  size_t n;
} ve_clip;

typedef struct {
  const char *name;
  int engine; /* 0 flite, 1 espeak, 2 real recordings */
  const char *voice;
  int rate, pitch;
  ve_clip *clips;
  int n, cap;
} ve_voice;

static const char *EN[] = {
    "Hello everyone, I think we should start the meeting now.",
    "Could you pass me the map of the northern valley?",
    "I rolled a seventeen, so the goblin is definitely hit.",
    "That is a good question, let me think about it for a second.",
    "The weather today is cold and windy, but the sun is out.",
    "My character opens the door very slowly and looks inside.",
    "We need three more players before the raid can begin.",
    "Honestly, I did not expect the story to end like that.",
    "Please remind me to buy milk and bread after work.",
    "The dragon has four hundred hit points and resistance to fire.",
    "I am going to cast a shield spell on the wizard.",
    "Does anyone know what time the server restarts tonight?",
    "Yesterday we walked along the river until it got dark.",
    "Wait, which room did we leave the treasure chest in?",
    "It sounds like your microphone is a little bit too quiet.",
    "Let us take a short break and continue in ten minutes.",
    "The old bridge collapsed during the storm last winter.",
    "I would like to trade my sword for two healing potions.",
    "Seven ravens were sitting on the roof of the tavern.",
    "Can you hear me now, or should I switch my headset?",
    "Numbers one through nine are written on the board.",
    "She said the train leaves at a quarter past eight.",
    "Our team won the match by a very small margin.",
    "Remember that the merchant only accepts gold coins.",
};
static const char *RU[] = {
    "Привет всем, давайте начнём нашу игру.",
    "Я думаю, что нам нужно идти на север.",
    "Мой персонаж открывает дверь и заходит в комнату.",
    "Сколько у дракона осталось очков здоровья?",
    "Подожди, я не слышу тебя, повтори ещё раз.",
    "Вчера мы гуляли по парку до самого вечера.",
    "Давайте сделаем перерыв на десять минут.",
    "Торговец принимает только золотые монеты.",
    "У меня выпало семнадцать, значит я попал.",
    "Кто знает, когда сервер перезапустится сегодня?",
    "Старый мост разрушился во время бури.",
    "Я хочу обменять меч на два зелья лечения.",
};

typedef struct {
  float *x;
  size_t n, cap;
} ve_buf;

static void ve_push(ve_buf *b, const int16_t *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 16000;
    b->x = realloc(b->x, b->cap * sizeof *b->x);
  }
  for (size_t i = 0; i < n; i++) b->x[b->n + i] = p[i] / 32768.0f;
  b->n += n;
}

typedef struct {
  ve_buf *b;
  kmk_resampler *rs;
} ve_synth_ctx;

static int ve_chunk(void *ud, const int16_t *pcm, size_t n, int rate) {
  ve_synth_ctx *c = ud;
  if (rate == 16000) {
    ve_push(c->b, pcm, n);
    return 0;
  }
  if (!c->rs) c->rs = kmk_resampler_new(rate, 1, 16000, 1);
  const int16_t *o;
  long k = c->rs ? kmk_resampler_process_s16(c->rs, pcm, n, &o) : -1;
  if (k > 0) ve_push(c->b, o, (size_t)k);
  return 0;
}

/* Labels x (n whole frames) from its clean energy, see the file comment. */
static void ve_label(const float *x, size_t n, uint8_t *lab) {
  size_t nf = n / VE_F;
  double *e = malloc(nf * sizeof *e), *s = malloc(nf * sizeof *s);
  /* energy of the speech band: a 2nd-order Butterworth high-pass at 100 Hz first, so a
     recording's own rumble or hum is not labelled speech */
  const double w0 = 2 * VE_PI * 100 / 16000, al = sin(w0) / (2 * 0.7071), c0 = cos(w0);
  const double b0 = (1 + c0) / 2 / (1 + al), b1 = -(1 + c0) / (1 + al), a1 = -2 * c0 / (1 + al),
               a2 = (1 - al) / (1 + al);
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (size_t f = 0; f < nf; f++) {
    double a = 0;
    for (int i = 0; i < VE_F; i++) {
      double in = x[f * VE_F + i], y = b0 * in + b1 * x1 + b0 * x2 - a1 * y1 - a2 * y2;
      x2 = x1;
      x1 = in;
      y2 = y1;
      y1 = y;
      a += y * y;
    }
    e[f] = s[f] = a / VE_F + 1e-12;
  }
  /* percentiles by sorting a copy */
  for (size_t i = 1; i < nf; i++) { /* insertion sort is fine for clip sizes (< 3000 frames) */
    double v = s[i];
    size_t j = i;
    while (j > 0 && s[j - 1] > v) {
      s[j] = s[j - 1];
      j--;
    }
    s[j] = v;
  }
  double p95 = s[(size_t)(nf * 0.95)], p10 = s[(size_t)(nf * 0.10)];
  double thr = p95 * pow(10, -LABEL_DB / 10);
  if (thr < p10 * pow(10, 1.2)) thr = p10 * pow(10, 1.2);
  for (size_t f = 0; f < nf; f++) lab[f] = e[f] > thr;
  /* close gaps <= 10 frames, then drop islands < 3 frames */
  size_t last = (size_t)-1;
  for (size_t f = 0; f < nf; f++)
    if (lab[f]) {
      if (last != (size_t)-1 && f - last - 1 <= 10)
        for (size_t g = last + 1; g < f; g++) lab[g] = 1;
      last = f;
    }
  for (size_t f = 0; f < nf;) {
    if (!lab[f]) {
      f++;
      continue;
    }
    size_t g = f;
    while (g < nf && lab[g]) g++;
    if (g - f < 3)
      for (size_t h = f; h < g; h++) lab[h] = 0;
    f = g;
  }
  free(e);
  free(s);
}

/* Mean power of the labelled frames of x (n samples). */
static double ve_active_power(const float *x, const uint8_t *lab, size_t n) {
  double a = 0;
  size_t k = 0;
  for (size_t f = 0; f < n / VE_F; f++)
    if (lab[f]) {
      for (int i = 0; i < VE_F; i++) a += (double)x[f * VE_F + i] * x[f * VE_F + i];
      k += VE_F;
    }
  return k ? a / k : 1e-6;
}

/* Cuts the labelled signal into clips at silences > 45 frames; each clip is trimmed to its
 * labelled extent. norm = 1 (recordings): the whole file is first scaled to one active level, so
 * a track made of several recordings plays as one stream at one microphone level. The sentences
 * keep their natural level differences inside each recording; the files themselves (different
 * sessions and readers) differ by up to 15 dB in active level (cards/004 vs goforward.raw), a
 * jump no single Discord or room stream makes between two sentences. */
static void ve_add_clips(ve_voice *v, const float *x, size_t n, int norm) {
  size_t nf = n / VE_F;
  if (nf < 10) return;
  uint8_t *lab = malloc(nf);
  ve_label(x, nf * VE_F, lab);
  const double gain = norm ? 0.1 / sqrt(ve_active_power(x, lab, nf * VE_F) + 1e-12) : 1.0;
  size_t f = 0;
  while (f < nf) {
    while (f < nf && !lab[f]) f++;
    if (f >= nf) break;
    size_t a = f, b = f, sil = 0;
    for (size_t g = f; g < nf; g++) {
      if (lab[g]) {
        b = g + 1;
        sil = 0;
      } else if (++sil > 45) {
        break;
      }
    }
    f = b + 1;
    if (b - a < 20) continue; /* < 200 ms: not a sentence */
    if (v->n == v->cap) {
      v->cap = v->cap ? v->cap * 2 : 16;
      v->clips = realloc(v->clips, (size_t)v->cap * sizeof *v->clips);
    }
    ve_clip *c = &v->clips[v->n++];
    c->n = (b - a) * VE_F;
    c->x = malloc(c->n * sizeof *c->x);
    for (size_t i = 0; i < c->n; i++) c->x[i] = (float)(x[a * VE_F + i] * gain);
    c->lab = malloc(b - a);
    memcpy(c->lab, lab + a, b - a);
  }
  free(lab);
}

static ve_voice VOICES[] = {
    {"flite-slt", 0, "slt", 0, 0, NULL, 0, 0},     {"flite-kal16", 0, "kal16", 10, 0, NULL, 0, 0},
    {"espeak-en", 1, "en-us", 0, 0, NULL, 0, 0},   {"espeak-en-hi", 1, "en-us", 15, 35, NULL, 0, 0},
    {"espeak-en-lo", 1, "en-us", -10, -30, NULL, 0, 0}, {"espeak-ru", 1, "ru", 0, 0, NULL, 0, 0},
    {"espeak-ru-hi", 1, "ru", 10, 30, NULL, 0, 0}, {"librivox", 2, "librivox", 0, 0, NULL, 0, 0},
    {"cards+raw", 2, "cards", 0, 0, NULL, 0, 0},
};
#define N_VOICES ((int)(sizeof VOICES / sizeof VOICES[0]))

static void ve_load_file(ve_voice *v, const char *path, int raw) {
  if (raw) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return;
    ve_buf b = {0};
    int16_t tmp[4096];
    size_t k;
    while ((k = fread(tmp, 2, 4096, fp)) > 0) ve_push(&b, tmp, k);
    fclose(fp);
    ve_add_clips(v, b.x, b.n, 1);
    free(b.x);
    return;
  }
  kmk_wav w;
  char err[256];
  if (kmk_wav_read(path, &w, err, sizeof err) < 0) return;
  if (w.rate == 16000 && w.channels == 1) ve_add_clips(v, w.samples, w.frames, 1);
  kmk_wav_free(&w);
}

static int ve_pool_ready;

/* Builds every voice's clips once (per process): about 8 sentences per synthetic voice. */
static int ve_build_pool(uint64_t seed) {
  if (ve_pool_ready) return 0;
  ve_rng r = {seed * 7919 + 17};
  for (int vi = 0; vi < N_VOICES; vi++) {
    ve_voice *v = &VOICES[vi];
    if (v->engine == 2) {
      char p[512];
      if (!strcmp(v->voice, "librivox")) {
        const char *ids[] = {"0870", "0880", "0890", "0920", "0930"};
        for (int i = 0; i < 5; i++) {
          snprintf(p, sizeof p, VE_DATA "/librivox/sense_and_sensibility_01_austen_64kb-%s.wav",
                   ids[i]);
          ve_load_file(v, p, 0);
        }
      } else {
        for (int i = 1; i <= 5; i++) {
          snprintf(p, sizeof p, VE_DATA "/cards/%03d.wav", i);
          ve_load_file(v, p, 0);
        }
        ve_load_file(v, VE_DATA "/goforward.raw", 1);
        ve_load_file(v, VE_DATA "/numbers.raw", 1);
        ve_load_file(v, VE_DATA "/something.raw", 1);
      }
      continue;
    }
    int ru = !strcmp(v->voice, "ru");
    int ns = ru ? (int)(sizeof RU / sizeof RU[0]) : (int)(sizeof EN / sizeof EN[0]);
    int start = ve_int(&r, ns);
    for (int k = 0; k < 8; k++) {
      const char *text = ru ? RU[(start + k * 5) % ns] : EN[(start + k * 7) % ns];
      ve_buf b = {0};
      ve_synth_ctx c = {&b, NULL};
      kmk_tts_voice tv = {v->voice, v->rate, v->pitch};
      int rc = v->engine == 0 ? kmk_tts_flite_synth(text, &tv, ve_chunk, &c, NULL, NULL, 0)
                              : kmk_tts_espeak_synth(text, &tv, ve_chunk, &c, NULL, NULL, 0);
      if (c.rs) {
        const int16_t *o;
        long n = kmk_resampler_flush(c.rs, &o);
        if (n > 0) ve_push(&b, o, (size_t)n);
        kmk_resampler_free(c.rs);
      }
      if (rc == 0) ve_add_clips(v, b.x, b.n, 0);
      free(b.x);
    }
  }
  int total = 0;
  for (int vi = 0; vi < N_VOICES; vi++) total += VOICES[vi].n;
  ve_pool_ready = 1;
  return total > 0 ? 0 : -1;
}

/* ---- tracks ------------------------------------------------------------------------------------ */

enum { C_CLEAN, C_WHITE20, C_WHITE5, C_PINK10, C_BROWN10, C_HUM, C_CLICKS, C_BABBLE, N_COND };
static const char *COND_NAME[N_COND] = {"clean",    "white 20dB", "white 5dB", "pink 10dB",
                                        "brown 10dB", "hum",        "keyboard",  "bg voices"};

typedef struct {
  size_t start, end; /* frames: first labelled frame, one past the last */
} ve_turn;

typedef struct {
  int id, cond, voice;
  int16_t *pcm; /* mixed signal, n samples */
  uint8_t *lab; /* n / VE_F */
  size_t n;
  ve_turn *turns;
  int nturns;
} ve_track;

/* Lays out turns of `v` for about `secs` seconds into a float buffer + labels. gap_lo/hi in s. */
static size_t ve_layout(ve_rng *r, const ve_voice *v, double secs, double gap_lo, double gap_hi,
                        float **xo, uint8_t **lo, ve_turn **to, int *nto) {
  size_t cap = (size_t)((secs + 40) * 16000), n = 0;
  float *x = calloc(cap, sizeof *x);
  uint8_t *lab = calloc(cap / VE_F, 1);
  ve_turn *turns = NULL;
  int nt = 0;
  while (n < secs * 16000) {
    n += (size_t)(ve_range(r, gap_lo, gap_hi) * 100) * VE_F;
    int k = 1 + ve_int(r, 3);
    ve_turn t = {(size_t)-1, 0};
    for (int s = 0; s < k; s++) {
      if (s) n += (size_t)(ve_range(r, 0.150, 0.450) * 100) * VE_F;
      const ve_clip *c = &v->clips[ve_int(r, v->n)];
      if (n + c->n + 3 * 16000 > cap) break;
      memcpy(x + n, c->x, c->n * sizeof *x);
      for (size_t f = 0; f < c->n / VE_F; f++)
        if (c->lab[f]) {
          size_t g = n / VE_F + f;
          lab[g] = 1;
          if (t.start == (size_t)-1) t.start = g;
          t.end = g + 1;
        }
      n += c->n;
    }
    if (t.start == (size_t)-1) break;
    turns = realloc(turns, (size_t)(nt + 1) * sizeof *turns);
    turns[nt++] = t;
  }
  n += 3 * 16000; /* trailing silence so the last turn can end */
  if (n > cap) n = cap;
  *xo = x;
  *lo = lab;
  *to = turns;
  *nto = nt;
  return n;
}

/* Adds noise of the given colour at `snr_db` below power p: 0 white, 1 pink, 2 brown. */
static void ve_add_noise(ve_rng *r, float *y, size_t n, int colour, double p, double snr_db) {
  float *w = malloc(n * sizeof *w);
  double b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0, b6 = 0, br = 0, pw = 0;
  for (size_t i = 0; i < n; i++) {
    double g = ve_gauss(r), v = g;
    if (colour == 1) { /* Paul Kellet's pink filter */
      b0 = 0.99886 * b0 + g * 0.0555179;
      b1 = 0.99332 * b1 + g * 0.0750759;
      b2 = 0.96900 * b2 + g * 0.1538520;
      b3 = 0.86650 * b3 + g * 0.3104856;
      b4 = 0.55000 * b4 + g * 0.5329522;
      b5 = -0.7616 * b5 - g * 0.0168980;
      v = b0 + b1 + b2 + b3 + b4 + b5 + b6 + g * 0.5362;
      b6 = g * 0.115926;
    } else if (colour == 2) { /* leaky integrator: -6 dB/octave */
      br = 0.995 * br + g * 0.1;
      v = br;
    }
    w[i] = (float)v;
    pw += v * v;
  }
  pw /= (double)n;
  double k = sqrt(p / pow(10, snr_db / 10) / pw);
  for (size_t i = 0; i < n; i++) y[i] += (float)(k * w[i]);
  free(w);
}

static void ve_add_hum(ve_rng *r, float *y, size_t n, double p, double snr_db) {
  double f0 = ve_uni(r) < 0.5 ? 50 : 60, ph[10], pw = 0;
  for (int h = 0; h < 10; h++) {
    ph[h] = ve_range(r, 0, 2 * VE_PI);
    pw += 0.5 / ((h + 1.0) * (h + 1.0));
  }
  double k = sqrt(p / pow(10, snr_db / 10) / pw);
  for (size_t i = 0; i < n; i++) {
    double s = 0, t = (double)i / 16000;
    for (int h = 0; h < 10; h++) s += sin(2 * VE_PI * f0 * (h + 1) * t + ph[h]) / (h + 1.0);
    y[i] += (float)(k * s);
  }
}

static void ve_add_clicks(ve_rng *r, float *y, size_t n, double peak) {
  size_t i = (size_t)(ve_range(r, 0, 2) * 16000);
  while (i < n) {
    size_t burst_end = i + (size_t)(ve_range(r, 2, 6) * 16000);
    while (i < burst_end && i < n) {
      for (int pr = 0; pr < 2; pr++) { /* press and release */
        size_t at = i + (pr ? (size_t)(ve_range(r, 0.05, 0.10) * 16000) : 0);
        double a = peak * ve_range(r, 0.3, 1.0) * (pr ? 0.6 : 1.0);
        double fr = ve_range(r, 2000, 4500), tau = ve_range(r, 0.001, 0.003);
        for (size_t j = 0; j < 160 && at + j < n; j++) {
          double t = j / 16000.0, env = exp(-t / tau);
          y[at + j] += (float)(a * env * (0.6 * ve_gauss(r) * 0.5 + 0.4 * sin(2 * VE_PI * fr * t)));
        }
      }
      i += (size_t)(ve_range(r, 0.08, 0.30) * 16000);
    }
    i += (size_t)(ve_range(r, 1, 5) * 16000);
  }
}

static void ve_make_track(ve_track *t, int cond, int voice, double secs, uint64_t seed) {
  ve_rng r = {seed};
  float *x;
  t->cond = cond;
  t->voice = voice;
  t->n = ve_layout(&r, &VOICES[voice], secs, 0.8, 3.0, &x, &t->lab, &t->turns, &t->nturns);
  double gain = ve_range(&r, 600, 4000) / 32768.0; /* active RMS in int16 units */
  double p0 = ve_active_power(x, t->lab, t->n);
  double g = gain / sqrt(p0);
  for (size_t i = 0; i < t->n; i++) x[i] *= (float)g;
  double p = gain * gain, peak = 0;
  for (size_t i = 0; i < t->n; i++) peak = fabs(x[i]) > peak ? fabs(x[i]) : peak;
  switch (cond) {
    case C_WHITE20: ve_add_noise(&r, x, t->n, 0, p, 20); break;
    case C_WHITE5: ve_add_noise(&r, x, t->n, 0, p, 5); break;
    case C_PINK10: ve_add_noise(&r, x, t->n, 1, p, 10); break;
    case C_BROWN10: ve_add_noise(&r, x, t->n, 2, p, 10); break;
    case C_HUM:
      ve_add_hum(&r, x, t->n, p, 10);
      ve_add_noise(&r, x, t->n, 0, p, 40);
      break;
    case C_CLICKS:
      ve_add_clicks(&r, x, t->n, peak);
      ve_add_noise(&r, x, t->n, 0, p, 40);
      break;
    case C_BABBLE: {
      int bv = (voice + 1 + ve_int(&r, N_VOICES - 1)) % N_VOICES;
      float *bx;
      uint8_t *bl;
      ve_turn *bt;
      int nbt;
      size_t bn = ve_layout(&r, &VOICES[bv], secs + 5, 0.2, 0.8, &bx, &bl, &bt, &nbt);
      double bp = ve_active_power(bx, bl, bn);
      double k = sqrt(p / pow(10, 1.8) / bp);
      size_t off = (size_t)(ve_range(&r, 0, 2) * 16000);
      for (size_t i = 0; i < t->n && i + off < bn; i++) x[i] += (float)(k * bx[i + off]);
      free(bx);
      free(bl);
      free(bt);
      ve_add_noise(&r, x, t->n, 0, p, 40);
      break;
    }
    default: break;
  }
  t->pcm = malloc(t->n * sizeof *t->pcm);
  for (size_t i = 0; i < t->n; i++) {
    double v = x[i] * 32768.0;
    t->pcm[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
  }
  free(x);
}

/* ---- scoring ----------------------------------------------------------------------------------- */

typedef struct {
  const char *label;
  const char *vad;
  kmk_endpoint_params ep;
} ve_config;

typedef struct {
  double tp[N_COND], fp[N_COND], fn[N_COND];
  double f1_cond[N_COND], f1, f1_worst;
  int worst;
  double *delays, *sdelays;
  int ndelays, turns, cut;
  double delay_p50, delay_p90, cut_pct;
  double spec_p50, spec_p90; /* true end -> the SPEECH_PAUSE that the SPEECH_END confirmed */
  double cpu_us_per_32ms;
  double audio_s;
  int cturns[N_COND], ccut[N_COND];
  double cdelay[N_COND]; /* sum of delays capped at 3 s, for the per-condition mean */
} ve_score;

static double ve_f1(double tp, double fp, double fn) {
  return tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0;
}

static int ve_cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double ve_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void ve_score_track(const ve_track *t, const ve_config *c, ve_score *s, double *cpu) {
  kmk_vad *v = kmk_vad_new(c->vad, NULL);
  kmk_endpoint *ep = kmk_endpoint_new(&c->ep);
  if (!v || !ep) {
    fprintf(stderr, "vad_eval: cannot create %s\n", c->label);
    exit(2);
  }
  size_t nf = t->n / VE_F;
  uint8_t *dec = malloc(nf);
  size_t *ends = malloc((nf + 1) * sizeof *ends); /* SPEECH_END decision frames (exclusive) */
  size_t *ucut = malloc((nf + 1) * sizeof *ucut); /* where each ended utterance's audio ends */
  size_t *spec = malloc((nf + 1) * sizeof *spec); /* the SPEECH_PAUSE that preceded each end */
  size_t pause_at = 0;
  size_t nends = 0;
  const char *tr = getenv("VAD_EVAL_TRACE");
  int trace = tr ? atoi(tr) : -1;
  double t0 = ve_cpu();
  for (size_t f = 0; f < nf; f++) {
    kmk_vad_result vr;
    kmk_endpoint_event ev;
    kmk_vad_process(v, t->pcm + f * VE_F, &vr);
    dec[f] = (uint8_t)vr.is_speech;
    int got = kmk_endpoint_process(ep, t->pcm + f * VE_F, &vr, &ev);
    if (got == 1 && ev.type == KMK_EP_SPEECH_PAUSE) pause_at = f + 1;
    if (got == 1 && ev.type == KMK_EP_SPEECH_RESUME) pause_at = 0;
    if (got == 1 && ev.type == KMK_EP_SPEECH_END) {
      ucut[nends] = (size_t)((ev.start_sample + ev.length) / VE_F); /* utterance's end frame */
      spec[nends] = pause_at ? pause_at : f + 1; /* speculative work could start here */
      pause_at = 0;
      ends[nends++] = f + 1;
    }
    if (trace >= 0 && trace == t->id)
      fprintf(stderr, "%s %6.2f lab %d dec %d score %.2f lvl %.1f end %d %s\n", c->vad, f / 100.0,
              t->lab[f], vr.is_speech, vr.score, vr.level, kmk_endpoint_end_silence_ms(ep),
              got == 1 ? kmk_endpoint_event_name(ev.type) : "");
  }
  *cpu += ve_cpu() - t0;
  for (size_t f = 0; f < nf; f++) {
    if (dec[f] && t->lab[f]) s->tp[t->cond]++;
    else if (dec[f]) s->fp[t->cond]++;
    else if (t->lab[f]) s->fn[t->cond]++;
  }
  for (int j = 0; j < t->nturns; j++) {
    const ve_turn *tu = &t->turns[j];
    int cut = 0;
    double delay = -1, sdelay = -1;
    for (size_t e = 0; e < nends; e++) {
      /* cut: decided inside the turn, and the utterance it closed holds part of this turn (an
         end that closes the previous turn a moment after this one's first breath is no cut) */
      if (ends[e] > tu->start && ends[e] < tu->end && ucut[e] > tu->start) cut = 1;
      if (ends[e] >= tu->end && delay < 0) {
        delay = (double)(ends[e] - tu->end) * 10;
        sdelay = spec[e] >= tu->end ? (double)(spec[e] - tu->end) * 10 : 0;
      }
    }
    if (delay < 0) delay = sdelay = (double)(nf - tu->end) * 10; /* never ended: track's end */
    s->sdelays[s->ndelays] = sdelay;
    s->delays[s->ndelays++] = delay;
    s->turns++;
    s->cut += cut;
    s->cturns[t->cond]++;
    s->ccut[t->cond] += cut;
    s->cdelay[t->cond] += delay > 3000 ? 3000 : delay;
    if (getenv("VAD_EVAL_VERBOSE") && (cut || delay > 650))
      fprintf(stderr, "%s track %d %s voice %s turn %d [%.2f-%.2f s]: %s delay %.0f ms\n", c->label, t->id,
              COND_NAME[t->cond], VOICES[t->voice].name, j, tu->start / 100.0, tu->end / 100.0,
              cut ? "CUT" : "", delay);
  }
  s->audio_s += t->n / 16000.0;
  free(dec);
  free(ends);
  free(ucut);
  free(spec);
  kmk_endpoint_free(ep);
  kmk_vad_free(v);
}

typedef struct {
  ve_track *tracks;
  int n, total_turns;
  double audio_s;
} ve_corpus;

/* Builds the corpus: `minutes` of tracks in total, split evenly over the conditions, tracks of
 * about 40 s, voices cycled per condition. Returns 0 or -1 (no voices / recordings). */
static int ve_corpus_build(ve_corpus *co, double minutes, uint64_t seed) {
  memset(co, 0, sizeof *co);
  if (ve_build_pool(seed) < 0) return -1;
  double per = minutes * 60 / N_COND;
  int ntr = (int)ceil(per / 40.0);
  double secs = per / ntr;
  co->tracks = calloc((size_t)(N_COND * ntr), sizeof *co->tracks);
  for (int cnd = 0; cnd < N_COND; cnd++)
    for (int i = 0; i < ntr; i++) {
      int voice = (i + cnd * 3) % N_VOICES;
      while (VOICES[voice].n == 0) voice = (voice + 1) % N_VOICES;
      ve_track *t = &co->tracks[co->n];
      t->id = co->n++;
      ve_make_track(t, cnd, voice, secs, seed * 1000003ull + (uint64_t)cnd * 1009 + (uint64_t)i);
      co->total_turns += t->nturns;
      co->audio_s += t->n / 16000.0;
    }
  return 0;
}

static void ve_corpus_free(ve_corpus *co) {
  for (int i = 0; i < co->n; i++) {
    free(co->tracks[i].pcm);
    free(co->tracks[i].lab);
    free(co->tracks[i].turns);
  }
  free(co->tracks);
  memset(co, 0, sizeof *co);
}

static void ve_score_corpus(const ve_corpus *co, const ve_config *c, ve_score *s) {
  memset(s, 0, sizeof *s);
  s->delays = malloc((size_t)(co->total_turns + 1) * sizeof *s->delays);
  s->sdelays = malloc((size_t)(co->total_turns + 1) * sizeof *s->sdelays);
  double cpu = 0;
  for (int i = 0; i < co->n; i++) ve_score_track(&co->tracks[i], c, s, &cpu);
  double tp = 0, fp = 0, fn = 0;
  s->f1_worst = 2;
  for (int k = 0; k < N_COND; k++) {
    tp += s->tp[k];
    fp += s->fp[k];
    fn += s->fn[k];
    s->f1_cond[k] = ve_f1(s->tp[k], s->fp[k], s->fn[k]);
    if (s->f1_cond[k] < s->f1_worst) {
      s->f1_worst = s->f1_cond[k];
      s->worst = k;
    }
  }
  s->f1 = ve_f1(tp, fp, fn);
  qsort(s->delays, (size_t)s->ndelays, sizeof *s->delays, ve_cmpd);
  qsort(s->sdelays, (size_t)s->ndelays, sizeof *s->sdelays, ve_cmpd);
  if (s->ndelays) {
    s->delay_p50 = s->delays[(s->ndelays - 1) / 2];
    s->delay_p90 = s->delays[(int)((s->ndelays - 1) * 0.9)];
    s->spec_p50 = s->sdelays[(s->ndelays - 1) / 2];
    s->spec_p90 = s->sdelays[(int)((s->ndelays - 1) * 0.9)];
  }
  s->cut_pct = s->turns ? 100.0 * s->cut / s->turns : 0;
  s->cpu_us_per_32ms = s->audio_s > 0 ? cpu * 1e6 / (s->audio_s / 0.032) : 0;
  free(s->delays);
  free(s->sdelays);
  s->delays = s->sdelays = NULL;
}

/* The table's rows: the original design, ours, and each half of ours alone (rows 0 and 1 are
 * what tests/unit/test_vad_eval.c pins). */
static int ve_configs(ve_config *out) {
  int n = 0;
  ve_config *c = &out[n++];
  c->label = "original: energy 300 + 1 s silence";
  c->vad = "energy";
  kmk_endpoint_params_default(&c->ep);
  c = &out[n++];
  c->label = "spectral + turn endpointer";
  c->vad = "spectral";
  kmk_endpoint_params_turn(&c->ep);
  const char *ov = getenv("VAD_EVAL_EP"); /* tuning: floor,ceiling,margin[,pause] in ms */
  if (ov) sscanf(ov, "%d,%d,%d,%d", &c->ep.min_end_silence_ms, &c->ep.end_silence_ms,
                 &c->ep.end_margin_ms, &c->ep.pause_ms);
  /* the per-room presets (kmk_endpoint_params_preset) */
  c = &out[n++];
  c->label = "spectral + \"snappy\" (game table)";
  c->vad = "spectral";
  kmk_endpoint_params_preset(&c->ep, "snappy");
  c = &out[n++];
  c->label = "spectral + \"patient\" (chat)";
  c->vad = "spectral";
  kmk_endpoint_params_preset(&c->ep, "patient");
  /* for reference: each half alone */
  c = &out[n++];
  c->label = "  (spectral + 1 s silence)";
  c->vad = "spectral";
  kmk_endpoint_params_default(&c->ep);
  c = &out[n++];
  c->label = "  (energy 300 + turn endpointer)";
  c->vad = "energy";
  kmk_endpoint_params_turn(&c->ep);
  return n;
}

#ifndef VAD_EVAL_NO_MAIN
/* VAD_EVAL_EDGES=1: where the turn-end delay comes from, per condition, for one detector.
 * For every pause inside a turn (a labelled gap >= 100 ms) it prints the true length, the
 * length the endpointer sees (the longest run of frames the detector calls silence, i.e. after
 * its hangover) and the onset lag (first labelled frame after the pause -> first frame the
 * detector calls speech). An endpointer that never cuts must wait longer than the pauses it sees,
 * so the "seen" tail, not the true one, sets the end silence. */
static int ve_cmpi(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void ve_pct_row(const char *what, int *v, int n) {
  qsort(v, (size_t)n, sizeof *v, ve_cmpi);
  printf(" | %s %d / %d / %d / %d", what, v[(n - 1) / 2] * 10, v[(int)((n - 1) * 0.9)] * 10,
         v[(int)((n - 1) * 0.98)] * 10, v[n - 1] * 10);
}

static void ve_edges(const ve_corpus *co, const char *vad) {
  printf("\nedges of %s (ms, p50 / p90 / p98 / max):\n", vad);
  for (int cnd = 0; cnd < N_COND; cnd++) {
    int cap = 64, n = 0, *tru = malloc(cap * sizeof *tru), *seen = malloc(cap * sizeof *seen),
        *lag = malloc(cap * sizeof *lag);
    for (int i = 0; i < co->n; i++) {
      const ve_track *t = &co->tracks[i];
      if (t->cond != cnd) continue;
      kmk_vad *v = kmk_vad_new(vad, NULL);
      size_t nf = t->n / VE_F;
      uint8_t *dec = malloc(nf);
      for (size_t f = 0; f < nf; f++) {
        kmk_vad_result vr;
        kmk_vad_process(v, t->pcm + f * VE_F, &vr);
        dec[f] = (uint8_t)vr.is_speech;
      }
      kmk_vad_free(v);
      for (int j = 0; j < t->nturns; j++)
        for (size_t f = t->turns[j].start, end = t->turns[j].end; f < end;) {
          size_t g = f;
          while (g < end && !t->lab[g]) g++;
          if (g - f >= 10) { /* a pause [f, g): the longest silence run the detector shows around it */
            size_t a = f, best = 0, o = g;
            while (a > t->turns[j].start && !dec[a - 1]) a--;
            for (size_t k = a; k < g && k < nf;) {
              if (dec[k]) { k++; continue; }
              size_t e = k;
              while (e < nf && !dec[e]) e++;
              if (e - k > best) best = e - k;
              k = e;
            }
            while (o < nf && !dec[o]) o++;
            if (n == cap) {
              cap *= 2;
              tru = realloc(tru, cap * sizeof *tru);
              seen = realloc(seen, cap * sizeof *seen);
              lag = realloc(lag, cap * sizeof *lag);
            }
            tru[n] = (int)(g - f);
            seen[n] = (int)best;
            lag[n++] = (int)(o - g);
          }
          f = g == f ? f + 1 : g;
        }
      free(dec);
    }
    printf("%-10s %3d pauses", COND_NAME[cnd], n);
    if (n) {
      ve_pct_row("true", tru, n);
      ve_pct_row("seen", seen, n);
      ve_pct_row("onset lag", lag, n);
    }
    printf("\n");
    free(tru);
    free(seen);
    free(lag);
  }
}

static void ve_print(const ve_config *c, const ve_score *s) {
  printf("| %-36s | %.3f | %.3f (%s) | %4.0f ms / %4.0f ms | %4.0f ms / %4.0f ms | %4.1f%% | %6.2f us |\n",
         c->label, s->f1, s->f1_worst, COND_NAME[s->worst], s->delay_p50, s->delay_p90,
         s->spec_p50, s->spec_p90, s->cut_pct, s->cpu_us_per_32ms);
}

static void ve_print_conds(const ve_config *c, const ve_score *s) {
  printf("| %-36s |", c->label);
  for (int k = 0; k < N_COND; k++) printf(" %.3f |", s->f1_cond[k]);
  printf("\n| %-36s |", "  precision / recall");
  for (int k = 0; k < N_COND; k++)
    printf(" %.2f / %.2f |", s->tp[k] / (s->tp[k] + s->fp[k] + 1e-9),
           s->tp[k] / (s->tp[k] + s->fn[k] + 1e-9));
  printf("\n| %-36s |", "  turns cut / mean delay (capped 3 s)");
  for (int k = 0; k < N_COND; k++)
    printf(" %d/%d %.0f ms |", s->ccut[k], s->cturns[k],
           s->cturns[k] ? s->cdelay[k] / s->cturns[k] : 0.0);
  printf("\n");
}

int main(int argc, char **argv) {
  double minutes = argc > 1 ? atof(argv[1]) : 24;
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  if (minutes <= 0) minutes = 24;
  kmk_log_set_level(KMK_LOG_WARN);
  ve_corpus co;
  double t0 = ve_cpu();
  if (ve_corpus_build(&co, minutes, seed) < 0) {
    fprintf(stderr, "vad_eval: no speech available (flite/espeak/pocketsphinx-testdata)\n");
    return 1;
  }
  int clips = 0;
  for (int v = 0; v < N_VOICES; v++) clips += VOICES[v].n;
  printf("corpus: seed %llu, %.1f min, %d tracks, %d turns, %d clips from %d voices (built in %.1f s "
         "CPU)\n\n",
         (unsigned long long)seed, co.audio_s / 60, co.n, co.total_turns, clips, N_VOICES,
         ve_cpu() - t0);
  ve_config cf[8];
  int ncf = ve_configs(cf);
  ve_score sc[8];
  printf("| detector | frame F1 (10 ms) | worst condition F1 | turn-end delay p50 / p90 | "
         "speculative start p50 / p90 | turns cut early | CPU per 32 ms (VAD+endpoint) |\n"
         "|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < ncf; i++) {
    ve_score_corpus(&co, &cf[i], &sc[i]);
    ve_print(&cf[i], &sc[i]);
  }
  printf("\nper-condition frame F1:\n| detector |");
  for (int k = 0; k < N_COND; k++) printf(" %s |", COND_NAME[k]);
  printf("\n|---|");
  for (int k = 0; k < N_COND; k++) printf("---|");
  printf("\n");
  for (int i = 0; i < ncf; i++) ve_print_conds(&cf[i], &sc[i]);
  if (getenv("VAD_EVAL_EDGES")) ve_edges(&co, "spectral");
  ve_corpus_free(&co);
  return 0;
}
#endif
