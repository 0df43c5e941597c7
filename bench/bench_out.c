/* bench_out.c - the agent's output chain (engine/audio/out.c): what push and pop cost the loop.
 *
 * Input: 5 s of flite speech (one TTS chunk at flite's rate, 16 kHz mono; the samples are also
 * pushed labelled 24 kHz, the rate of cloud TTS, for a second resampling ratio). Per trial a cleared chain gets the
 * whole chunk in one push, then is drained one pop at a time as the pacer would.
 * Prints, wall time on the calling thread:
 *   - push of the 5 s chunk (now: resample to 48 kHz stereo + queue PCM frames);
 *   - push + every pop back to back = resample + encode of the whole chunk, i.e. what one push
 *     held the loop for before pop did the encoding;
 *   - pop per frame (one Opus encode of 20 ms, 48 kHz stereo, 64 kbit/s): p50, p99, max of wall
 *     time, and p50, p99 of the thread's CPU time (what is left once a loaded machine's preemption
 *     is taken out);
 *   - push of one 60 ms slice (the agent's SLICE_MS feed).
 * Usage: bench_out [trials, default 20]
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kameko/out.h"
#include "kameko/speech.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int16_t *g_pcm;
static size_t g_n, g_cap;
static int g_rate;

static int on_pcm(void *ud, const int16_t *pcm, size_t n, int rate) {
  (void)ud;
  g_rate = rate;
  if (g_n + n > g_cap) {
    g_cap = (g_n + n) * 2;
    g_pcm = realloc(g_pcm, g_cap * sizeof *g_pcm);
    if (!g_pcm) abort();
  }
  memcpy(g_pcm + g_n, pcm, n * sizeof *pcm);
  g_n += n;
  return 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

/* One input rate: `n` samples of g_pcm pushed as `rate`. */
static void run(int rate, size_t n, int trials) {
  char err[256];
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  if (!o) {
    fprintf(stderr, "bench_out: %s\n", err);
    exit(1);
  }
  double *push = malloc((size_t)trials * sizeof *push), *whole = malloc((size_t)trials * sizeof *whole);
  size_t pops_cap = (size_t)trials * (n * 48000 / (size_t)rate / 960 + 16), npops = 0;
  double *pops = malloc(pops_cap * sizeof *pops), *pcpu = malloc(pops_cap * sizeof *pcpu);
  uint64_t enc_at_push = 0;
  for (int t = 0; t < trials; t++) {
    kmk_audio_out_clear(o);
    uint64_t e0 = kmk_audio_out_encoded(o);
    double t0 = now_s();
    if (kmk_audio_out_push(o, g_pcm, n, rate) != 0) abort();
    double t1 = now_s();
    enc_at_push += kmk_audio_out_encoded(o) - e0;
    if (kmk_audio_out_finish(o) != 0) abort();
    double pop_sum = 0;
    for (;;) {
      double c0 = cpu_s(), p0 = now_s();
      const kmk_out_frame *f = kmk_audio_out_pop(o);
      double p1 = now_s(), c1 = cpu_s();
      if (!f) break;
      if (f->silence) continue;
      pop_sum += p1 - p0;
      if (npops < pops_cap) {
        pcpu[npops] = c1 - c0;
        pops[npops++] = p1 - p0;
      }
    }
    push[t] = t1 - t0;
    whole[t] = (t1 - t0) + pop_sum;
  }
  /* the agent's feed: one 60 ms slice per push */
  size_t slice = (size_t)rate * 60 / 1000, nslices = 0;
  double *sl = malloc((n / slice + 1) * sizeof *sl);
  kmk_audio_out_clear(o);
  for (size_t p = 0; p + slice <= n; p += slice) {
    double t0 = now_s();
    if (kmk_audio_out_push(o, g_pcm + p, slice, rate) != 0) abort();
    sl[nslices++] = now_s() - t0;
    while (kmk_audio_out_pop(o)) {
    }
  }
  qsort(push, (size_t)trials, sizeof *push, cmp_d);
  qsort(whole, (size_t)trials, sizeof *whole, cmp_d);
  qsort(pops, npops, sizeof *pops, cmp_d);
  qsort(pcpu, npops, sizeof *pcpu, cmp_d);
  qsort(sl, nslices, sizeof *sl, cmp_d);
  printf("  %5d Hz, %.1f s chunk: push %6.2f ms (median of %d; min %.2f) | resample+encode all "
         "(the old push) %6.2f ms (min %.2f)\n",
         rate, (double)n / rate, pct(push, (size_t)trials, 0.5) * 1e3, trials, push[0] * 1e3,
         pct(whole, (size_t)trials, 0.5) * 1e3, whole[0] * 1e3);
  printf("  %5s     pop = encode one 20 ms frame (%zu pops): wall p50 %5.0f us  p99 %5.0f us  max "
         "%5.0f us | thread CPU p50 %5.0f us  p99 %5.0f us\n",
         "", npops, pct(pops, npops, 0.5) * 1e6, pct(pops, npops, 0.99) * 1e6,
         pops[npops - 1] * 1e6, pct(pcpu, npops, 0.5) * 1e6, pct(pcpu, npops, 0.99) * 1e6);
  printf("  %5s     push of one 60 ms slice: p50 %4.0f us  max %4.0f us | encodes during push: %llu "
         "(must be 0)\n",
         "", pct(sl, nslices, 0.5) * 1e6, sl[nslices - 1] * 1e6, (unsigned long long)enc_at_push);
  free(push);
  free(whole);
  free(pops);
  free(pcpu);
  free(sl);
  kmk_audio_out_free(o);
}

int main(int argc, char **argv) {
  int trials = argc > 1 ? atoi(argv[1]) : 20;
  if (trials < 1) trials = 1;
  const char *lines[] = {"hello bob did you see the game last night",
                         "kameko what is your name", "the weather is nice today and i am glad",
                         "let me think about that for a second before i answer you"};
  atomic_int cancel = 0;
  char err[256];
  /* synthesize at least 5 s of speech even when labelled 24 kHz */
  for (int i = 0; g_n < 5 * 24000; i++) {
    kmk_tts_voice v = {.voice = "slt"};
    if (kmk_tts_flite_synth(lines[i % 4], &v, on_pcm, NULL, &cancel, err, sizeof err) != 0) {
      fprintf(stderr, "bench_out: flite: %s\n", err);
      return 1;
    }
    if (i > 100) return 1;
  }
  printf("  (input: flite speech at %d Hz, chunk = its first 5 s; 64 kbit/s encoder)\n", g_rate);
  run(g_rate, (size_t)g_rate * 5, trials);
  if (g_rate != 24000) run(24000, 5 * 24000, trials);
  free(g_pcm);
  return 0;
}
