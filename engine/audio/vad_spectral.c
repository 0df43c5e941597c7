/* vad_spectral.c - the "spectral" voice activity detector: per-band SNR against an adaptive
 * noise floor, gated by the speaker's own running speech level, with click rejection.
 *
 * Owns: one spectral_state per detector instance (its FFT tables, noise floor, level trackers).
 * Thread: single owner per instance (like every kmk_vad); no globals are written.
 *
 * Method, per 10 ms frame (16 kHz, 160 new samples):
 *  1. Spectrum: a 256-sample Hann window (the previous 96 samples + the new 160) through a real
 *     FFT (a 128-point complex FFT on the even/odd-packed signal), power in 19 bands from 125 Hz
 *     to 8 kHz (62.5 Hz bins, band edges roughly mel-spaced), each averaged with its value in the
 *     previous frame (halves the variance of noise-only bands). Bins below 125 Hz (the 50/60 Hz
 *     mains fundamental, DC, rumble) are ignored.
 *  2. Noise floor per band N[b]: while the detector says "no speech" it follows the band power
 *     (NOISE_DOWN toward lower, NOISE_UP toward higher power, at most +0.5 dB per frame so a
 *     click's tail barely moves it); during speech it may only fall, and only on a band at least
 *     1.5 dB under it (NOISE_FALL_SPEECH: otherwise a noise band's ordinary dips ratchet the floor
 *     down over a long utterance, and the noise after it reads as a few dB of SNR that keeps the
 *     segment alive for up to 300 ms), or creep up by 1 dB/s so a noise that turns on and stays
 *     cannot lock the detector. Stationary tones (mains hum harmonics, fan whine) sit in the
 *     floor of their band and cancel out of step 3.
 *  3. Spectral SNR: snr = mean of the TOPK (5) largest band SNRs, each clamp(10 log10(E/N), 0, 30)
 *     dB. Speech lifts several formant bands by tens of dB even at 5 dB broadband SNR; stationary
 *     white/pink/brown noise lifts none once the floor has adapted (noise-only snr is ~2-3 dB).
 *  4. Speech level: lvl = 10 log10(sum over the 125 Hz-4 kHz bands of max(E - N, 0)).
 *     The speaker's running level spk learns only from the speaker's own frames: "strong" frames
 *     (snr > ON_DB and lvl > spk - GATE_ON_DB) with snr > CONF_DB move it (up fast, SPK_UP; down
 *     slowly, SPK_DOWN); without them it sinks by 1 dB/s (the speaker moved away or speaks softly now). The first
 *     confident frame seeds it.
 *  5. Clicks: the frame is cut in 8 sub-blocks of 20 samples; when the loudest holds more than
 *     CLICK_SHARE of the frame energy and the frame is CLICK_JUMP x louder than the quieter of the
 *     two frames before, it is impulsive (keyboard, mouse, tap): the previous decision is held and
 *     no tracker learns from it.
 *  6. Decision: a segment STARTS after ONSET_FRAMES consecutive strong frames. It CONTINUES on
 *     strong frames, and on weak ones (snr > OFF_DB, lvl > spk - GATE_CONT_DB) for at most
 *     WEAK_MAX frames after the last strong one: quiet word endings survive, but a distant voice
 *     (18 dB under the speaker) can neither start a segment nor keep one alive. It ends
 *     HANGOVER_FRAMES after the last frame that continued it.
 *     score = logistic((snr - ON_DB) / 3); level = lvl (dB of int16 units squared).
 * The first INIT_FRAMES (200 ms) seed the noise floor with their mean (a stream normally starts
 * with a little silence; if it starts with speech, the floor falls back at the first pause).
 * params->threshold, when set (> 0) and different from the energy default 300, replaces ON_DB (dB,
 * clamped to 5..20); params->aggressiveness 2 and 3 raise ON_DB/OFF_DB by 1.5 and 3 dB (stricter;
 * 0 and 1 = the tuned default, so zeroed params are safe).
 * Tuned with bench/vad_eval.c (seed 1); checked on held-out seeds 2 and 3 (see README.md).
 * Cost: about 1.1 us CPU per 10 ms frame (3.6 us per 32 ms) on one x86-64 core.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/vad.h"

#define KMK_PI 3.14159265358979323846
#define NFFT 256
#define NHALF 128
#define HOP KMK_VAD_FRAME
#define NB 19

/* Parameters (see the method above). */
#define INIT_FRAMES 20
#define NOISE_DOWN 0.10f  /* per frame, toward a lower band power */
#define NOISE_UP 0.05f    /* per frame toward a higher band power, no speech (~0.2 s) */
#define NOISE_MAX_RISE 1.122f /* at most +0.5 dB per frame (a click's tail barely moves it) */
#define NOISE_CREEP 1.0023f /* per frame while speech: +1 dB/s */
#define NOISE_FALL_SPEECH 0.7f /* while speech the floor falls only on a band >= 1.5 dB under it */
#define FLOOR_PER_BIN 6000.0f /* = 8^2 * sum(hann^2) (96): white noise of RMS 8 */
#define SNR_CAP 30.0f
#define TOPK 5
#define ON_DB 6.0f
#define OFF_DB 5.0f
#define CONF_DB 9.0f      /* snr above which a frame trains the speaker level */
#define SPK_UP 0.30f
#define SPK_DOWN 0.01f
#define SPK_IDLE_DECAY 0.01f /* dB per frame = 1 dB/s */
#define GATE_ON_DB 12.0f
#define GATE_CONT_DB 26.0f
#define WEAK_MAX 30       /* frames: how long weak (gated-out-of-start) frames may extend speech */
#define CLICK_SHARE 0.5f
#define CLICK_JUMP 4.0f
#define ONSET_FRAMES 2
#define HANGOVER_FRAMES 10

/* Band edges in 62.5 Hz bins: 125 Hz .. 8 kHz. */
static const unsigned char EDGES[NB + 1] = {2,  4,  6,  8,  10, 12, 14, 17, 20,  24,
                                            28, 33, 39, 46, 54, 64, 76, 90, 108, 128};
#define NB_SPEECH 15 /* bands 0..14 end at 4 kHz: the level and full weight */

typedef struct {
  float win[NFFT];
  float cs[NHALF], sn[NHALF]; /* twiddles for the 128-point FFT: cos/sin(2 pi k / 128) */
  float rc[NHALF], rs[NHALF]; /* real-FFT post-processing: cos/sin(2 pi k / 256) */
  unsigned char rev[NHALF];
  float hist[NFFT - HOP];
  float noise[NB];
  float smooth[NB];   /* band power smoothed over two frames */
  float on_db, off_db;
  float spk;          /* running speaker level, dB; -1000 = not learnt yet */
  float prev_energy, prev_energy2; /* time-domain energy of the previous two frames */
  int frames, run, hang, speech, weak;
} spectral_state;

static void *spectral_create(const kmk_vad_params *p) {
  spectral_state *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  for (int i = 0; i < NFFT; i++) s->win[i] = (float)(0.5 - 0.5 * cos(2 * KMK_PI * i / NFFT));
  for (int k = 0; k < NHALF; k++) {
    s->cs[k] = (float)cos(2 * KMK_PI * k / NHALF);
    s->sn[k] = (float)sin(2 * KMK_PI * k / NHALF);
    s->rc[k] = (float)cos(2 * KMK_PI * k / NFFT);
    s->rs[k] = (float)sin(2 * KMK_PI * k / NFFT);
    int r = 0;
    for (int b = 0; b < 7; b++) r |= ((k >> b) & 1) << (6 - b);
    s->rev[k] = (unsigned char)r;
  }
  s->on_db = ON_DB;
  s->off_db = OFF_DB;
  if (p->threshold > 0 && p->threshold != 300.0f) /* clamped: below 5 dB noise alone can pass */
    s->on_db = p->threshold < 5.0f ? 5.0f : p->threshold > 20.0f ? 20.0f : p->threshold;
  static const float shift[4] = {0.0f, 0.0f, 1.5f, 3.0f}; /* 0 (zeroed params) = 1 = default */
  int a = p->aggressiveness < 0 ? 0 : p->aggressiveness > 3 ? 3 : p->aggressiveness;
  s->on_db += shift[a];
  s->off_db += shift[a];
  if (s->off_db > s->on_db) s->off_db = s->on_db;
  s->spk = -1000.0f;
  return s;
}

static void spectral_reset(void *state) {
  spectral_state *s = state;
  memset(s->hist, 0, sizeof s->hist);
  memset(s->noise, 0, sizeof s->noise);
  memset(s->smooth, 0, sizeof s->smooth);
  s->spk = -1000.0f;
  s->prev_energy = s->prev_energy2 = 0;
  s->frames = s->run = s->hang = s->speech = s->weak = 0;
}

static void spectral_destroy(void *state) { free(state); }

/* In-place radix-2 complex FFT of 128 points (re, im), bit-reversed input order applied here. */
static void fft128(const spectral_state *s, float *re, float *im) {
  for (int i = 0; i < NHALF; i++) {
    int j = s->rev[i];
    if (j > i) {
      float t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (int len = 2; len <= NHALF; len <<= 1) {
    int half = len >> 1, step = NHALF / len;
    for (int i = 0; i < NHALF; i += len)
      for (int k = 0; k < half; k++) {
        float wr = s->cs[k * step], wi = -s->sn[k * step];
        int a = i + k, b = a + half;
        float tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
  }
}

/* Power spectrum |X[k]|^2, k = 0..127, of the windowed 256-sample real signal x. */
static void power256(const spectral_state *s, const float *x, float *pw) {
  float re[NHALF], im[NHALF];
  for (int n = 0; n < NHALF; n++) {
    re[n] = x[2 * n];
    im[n] = x[2 * n + 1];
  }
  fft128(s, re, im);
  for (int k = 1; k < NHALF; k++) {
    int m = NHALF - k;
    float er = 0.5f * (re[k] + re[m]), ei = 0.5f * (im[k] - im[m]);
    float orr = 0.5f * (im[k] + im[m]), oi = -0.5f * (re[k] - re[m]);
    /* X[k] = E + W^k O, W = exp(-2 pi i / 256) */
    float wr = s->rc[k], wi = -s->rs[k];
    float xr = er + wr * orr - wi * oi, xi = ei + wr * oi + wi * orr;
    pw[k] = xr * xr + xi * xi;
  }
  pw[0] = (re[0] + im[0]) * (re[0] + im[0]);
}

static int spectral_process(void *state, const int16_t *frame, kmk_vad_result *out) {
  spectral_state *s = state;
  float x[NFFT], pw[NHALF];
  const int old = NFFT - HOP;
  memcpy(x, s->hist, sizeof s->hist);
  float sub[8] = {0}, energy = 0;
  for (int i = 0; i < HOP; i++) {
    float v = (float)frame[i];
    x[old + i] = v;
    sub[i / 20] += v * v;
  }
  for (int i = 0; i < 8; i++) energy += sub[i];
  memcpy(s->hist, x + HOP, sizeof s->hist);
  for (int i = 0; i < NFFT; i++) x[i] *= s->win[i];
  power256(s, x, pw);

  float band[NB];
  for (int b = 0; b < NB; b++) {
    /* absolute floor: white noise of RMS 8 (-72 dBFS), so digital silence followed by faint mic
       hiss is not "speech" while the floor climbs */
    float e = FLOOR_PER_BIN * (float)(EDGES[b + 1] - EDGES[b]);
    for (int k = EDGES[b]; k < EDGES[b + 1]; k++) e += pw[k];
    band[b] = 0.5f * (e + s->smooth[b]); /* halves the variance of noise-only bands */
    s->smooth[b] = e;
  }

  /* click test: one 1.25 ms sub-block holds most of the energy and the frame jumped up */
  float mx = 0;
  for (int i = 0; i < 8; i++) mx = sub[i] > mx ? sub[i] : mx;
  float before = s->prev_energy < s->prev_energy2 ? s->prev_energy : s->prev_energy2;
  int click = s->frames >= INIT_FRAMES && energy > 1e4f && mx > CLICK_SHARE * energy &&
              energy > CLICK_JUMP * before;
  s->prev_energy2 = s->prev_energy;
  s->prev_energy = energy;

  if (s->frames < INIT_FRAMES) { /* seed the floor with the running mean */
    for (int b = 0; b < NB; b++) s->noise[b] += (band[b] - s->noise[b]) / (float)(s->frames + 1);
    s->frames++;
  }

  float top[TOPK] = {0}, lin = 0;
  for (int b = 0; b < NB; b++) {
    float d = 10.0f * log10f(band[b] / s->noise[b]);
    d = d < 0 ? 0 : d > SNR_CAP ? SNR_CAP : d;
    if (d > top[TOPK - 1]) { /* keep the TOPK largest, sorted descending */
      int i = TOPK - 1;
      while (i > 0 && top[i - 1] < d) {
        top[i] = top[i - 1];
        i--;
      }
      top[i] = d;
    }
    if (b < NB_SPEECH && band[b] > s->noise[b]) lin += band[b] - s->noise[b];
  }
  float snr = 0;
  for (int i = 0; i < TOPK; i++) snr += top[i];
  snr /= TOPK;
  float lvl = 10.0f * log10f(lin + 1.0f);

  if (click) { /* hold the decision, learn nothing */
    out->is_speech = s->speech;
    out->score = s->speech ? 0.5f : 0.0f;
    out->level = lvl;
    return 0;
  }

  int strong = snr > s->on_db && lvl > s->spk - GATE_ON_DB;
  s->weak = strong ? 0 : s->weak + 1;
  int raw = strong;
  if (s->speech && !strong) /* weak continuation: only briefly (a distant voice never ends) */
    raw = snr > s->off_db && lvl > s->spk - GATE_CONT_DB && s->weak <= WEAK_MAX;
  s->run = raw ? s->run + 1 : 0;
  if (raw && (s->speech || s->run >= ONSET_FRAMES)) {
    s->speech = 1;
    s->hang = HANGOVER_FRAMES;
  } else if (s->speech && !raw && --s->hang <= 0) {
    s->speech = 0;
  }

  /* the speaker's level learns from the speaker's own (strong, confident) frames only, so a
     distant voice cannot drag it down; without them it sinks slowly (the speaker moved away) */
  if (s->speech && snr > CONF_DB && (strong || s->spk < -500.0f)) {
    if (s->spk < -500.0f) s->spk = lvl;
    else s->spk += (lvl > s->spk ? SPK_UP : SPK_DOWN) * (lvl - s->spk);
  } else if (s->spk > -500.0f) {
    s->spk -= SPK_IDLE_DECAY;
  }
  if (s->frames >= INIT_FRAMES)
    for (int b = 0; b < NB; b++) {
      float n = s->noise[b], e = band[b];
      if (!s->speech) {
        n += (e < n ? NOISE_DOWN : NOISE_UP) * (e - n);
        if (n > s->noise[b] * NOISE_MAX_RISE) n = s->noise[b] * NOISE_MAX_RISE;
      }
      else if (e < n * NOISE_FALL_SPEECH) n += NOISE_DOWN * (e - n);
      else if (e >= n) n *= NOISE_CREEP;
      s->noise[b] = n;
    }

  out->is_speech = s->speech;
  out->score = 1.0f / (1.0f + expf(-(snr - s->on_db) / 3.0f));
  out->level = lvl;
  return 0;
}

const kmk_vad_ops kmk_vad_spectral_ops = {"spectral", spectral_create, spectral_process,
                                          spectral_reset, spectral_destroy};
