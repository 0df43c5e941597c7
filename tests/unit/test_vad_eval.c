/* test_vad_eval.c - regression pins for voice activity and turn-taking: runs bench/vad_eval.c's
 * corpus (6 minutes, seed 1: every noise condition, English/Russian synthetic voices and the
 * pocketsphinx recordings, built at run time in about a second) through the original design
 * (energy 300 + 1 s silence) and our "spectral" detector + turn endpointer, and checks that the
 * scores stay in their bands. Measured when pinned (x86-64, flite 2.2, espeak-ng 1.51):
 *   energy:   F1 0.827, worst 0.761 (white 5 dB), delay p50 7790 ms, cut 5.8%
 *   spectral: F1 0.936, worst 0.873 (bg voices), delay p50 610 / p90 740 ms, cut 1.9%, 3.6 us/32 ms
 *   presets:  snappy p50 530 ms, cut 1.9% (5.8% before the end grace); patient p50 790 ms, cut 1.9%
 * It also pins the reason the default changed: the stream default (spectral + turn) beats the
 * original design on every quality metric of the table.
 * A change that moves a number out of its band must update the band here AND the table in
 * engine/audio/README.md (run build/vad_eval for the full 24-minute corpus). Skips (passes) when
 * neither TTS voices nor recordings are installed. */
#define VAD_EVAL_NO_MAIN
#include "../../bench/vad_eval.c"

#include "check.h"
#include "kameko/stream.h"

static ve_corpus corpus;
static int have_corpus;

static void test_corpus_shape(void) {
  CHECK(corpus.n == N_COND * 2);
  CHECK(corpus.total_turns >= 40);
  for (int i = 0; i < corpus.n; i++) {
    const ve_track *t = &corpus.tracks[i];
    CHECK(t->nturns >= 2);
    for (int j = 0; j < t->nturns; j++) {
      CHECK(t->turns[j].end > t->turns[j].start);
      CHECK(t->lab[t->turns[j].start] == 1 && t->lab[t->turns[j].end - 1] == 1);
      if (j) CHECK(t->turns[j].start >= t->turns[j - 1].end + 80); /* gaps >= 0.8 s */
    }
  }
}

static void test_energy_baseline_band(void) {
  ve_config cf[8];
  ve_configs(cf);
  ve_score s;
  ve_score_corpus(&corpus, &cf[0], &s);
  printf("energy:   F1 %.3f worst %.3f (%s) p50 %.0f p90 %.0f cut %.1f%%\n", s.f1, s.f1_worst,
         COND_NAME[s.worst], s.delay_p50, s.delay_p90, s.cut_pct);
  CHECK(s.f1 > 0.77 && s.f1 < 0.87);
  CHECK(s.f1_worst > 0.68 && s.f1_worst < 0.80);
  CHECK(s.delay_p50 >= 1000); /* 1 s of silence, and often never (noise above 300) */
}

static void test_spectral_pins(void) {
  ve_config cf[8];
  ve_configs(cf);
  ve_score s;
  ve_score_corpus(&corpus, &cf[1], &s);
  printf("spectral: F1 %.3f worst %.3f (%s) p50 %.0f p90 %.0f spec p50 %.0f cut %.1f%% cpu %.2f "
         "us/32ms\n", s.f1, s.f1_worst, COND_NAME[s.worst], s.delay_p50, s.delay_p90, s.spec_p50,
         s.cut_pct, s.cpu_us_per_32ms);
  CHECK(s.f1 >= 0.92);
  CHECK(s.f1_worst >= 0.85);
  for (int k = 0; k < N_COND; k++) CHECK(s.f1_cond[k] >= 0.85);
  CHECK(s.delay_p50 <= 650);
  CHECK(s.delay_p90 <= 800);
  CHECK(s.spec_p50 <= 400); /* a SPEECH_PAUSE precedes most ends: speculative STT can start */
  CHECK(s.cut_pct <= 6.0); /* 1 of 53 turns now; 4 would fail */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__OPTIMIZE__)
  CHECK(s.cpu_us_per_32ms <= 60); /* unoptimised build */
#elif !defined(__SANITIZE_ADDRESS__)
  CHECK(s.cpu_us_per_32ms <= 25); /* the budget, with a wide margin over ~3.7 us */
#endif
}

/* The stream default must beat the original design on every quality metric (why it is the
 * default: kmk_stream_params_default), and the presets must order as documented. */
static void test_default_beats_classic_and_presets_order(void) {
  ve_config cf[8];
  int n = ve_configs(cf);
  CHECK(n >= 4);
  ve_score e, t, sn, pa;
  ve_score_corpus(&corpus, &cf[0], &e);
  ve_score_corpus(&corpus, &cf[1], &t);
  ve_score_corpus(&corpus, &cf[2], &sn);
  ve_score_corpus(&corpus, &cf[3], &pa);
  CHECK(t.f1 > e.f1 + 0.05);
  CHECK(t.f1_worst > e.f1_worst + 0.05);
  CHECK(t.delay_p50 < e.delay_p50 && t.delay_p90 < e.delay_p90);
  CHECK(t.cut_pct <= e.cut_pct);
  kmk_stream_params d, c;
  kmk_stream_params_default(&d);
  CHECK_STR(d.vad_name, cf[1].vad);
  CHECK(memcmp(&d.endpoint, &cf[1].ep, sizeof d.endpoint) == 0);
  CHECK_EQ_INT(kmk_stream_params_preset(&c, "classic"), 0);
  CHECK_STR(c.vad_name, cf[0].vad);
  CHECK(memcmp(&c.endpoint, &cf[0].ep, sizeof c.endpoint) == 0);
  printf("presets:  snappy p50 %.0f cut %.1f%%; turn p50 %.0f cut %.1f%%; patient p50 %.0f cut "
         "%.1f%%\n", sn.delay_p50, sn.cut_pct, t.delay_p50, t.cut_pct, pa.delay_p50, pa.cut_pct);
  CHECK(sn.delay_p50 < t.delay_p50 && t.delay_p50 < pa.delay_p50);
  CHECK(sn.delay_p50 <= 560);
  CHECK(pa.cut_pct <= t.cut_pct && t.cut_pct <= sn.cut_pct);
}

/* After a long utterance the turn must end on time in steady noise: the detector's noise floor
 * used to be ratcheted down during speech by the noise's ordinary dips, and the noise after the
 * turn then read as a few dB of SNR that kept the segment alive (vad_spectral.c,
 * NOISE_FALL_SPEECH). The 6-minute corpus has too few long turns to show it; the full seed-1
 * corpus does. Mean turn-end delay of the default, per condition (capped 3 s), measured: white
 * 5 dB 561 ms (758 before the fix), pink 10 dB 558 ms (619 before). */
static void test_turn_ends_in_steady_noise(void) {
  ve_corpus full;
  if (ve_corpus_build(&full, 24, 1) != 0) {
    CHECK(!"the full corpus cannot be built");
    return;
  }
  ve_config cf[8];
  ve_configs(cf);
  ve_score s;
  ve_score_corpus(&full, &cf[1], &s);
  double w5 = s.cdelay[C_WHITE5] / s.cturns[C_WHITE5], pk = s.cdelay[C_PINK10] / s.cturns[C_PINK10];
  printf("full corpus: mean turn-end delay white 5 dB %.0f ms, pink 10 dB %.0f ms\n", w5, pk);
  CHECK(w5 <= 660);
  CHECK(pk <= 595);
  ve_corpus_free(&full);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  have_corpus = ve_corpus_build(&corpus, 6, 1) == 0;
  if (!have_corpus) {
    fprintf(stderr, "skip: no speech sources (flite/espeak-ng/pocketsphinx-testdata)\n");
    return 0;
  }
  RUN(test_corpus_shape);
  RUN(test_energy_baseline_band);
  RUN(test_spectral_pins);
  RUN(test_default_beats_classic_and_presets_order);
  RUN(test_turn_ends_in_steady_noise);
  ve_corpus_free(&corpus);
  return check_done();
}
