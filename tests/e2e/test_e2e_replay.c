/* End to end through the replay transport, offline: two speakers synthesized with flite from known
 * sentences; one talks to the other, the second addresses the persona by name. Asserts the
 * transcripts (word error rate bound), the event order, that the persona answered the one who
 * addressed it and stayed silent for the other, that the reply audio in conversation.wav is not
 * silent, that --fast and real time give the same events, and that odd inputs (44.1 kHz stereo,
 * an empty track, pure silence) go through without loss or crash.
 */
#include <ctype.h>
#include <math.h>

#include "kameko/resample.h"
#include "test_personas_util.h"

#define ALICE_LINE "hello bob did you see the game last night"
#define BOB_LINE "kameko what is your name"
/* Measured WER on these two sentences is printed below; the bound leaves a margin for engine
   differences while still catching a broken recognizer, resampler or endpointer. */
#define WER_BOUND 0.25


/* lead seconds of silence, the sentence, tail seconds of silence; written at 16 kHz mono */
static int make_track(const char *path, const char *voice, const char *text, double lead,
                      double tail) {
  pbuf b = {0};
  pbuf_silence(&b, lead);
  int rc = pbuf_say(&b, voice, text);
  if (rc == 0) {
    pbuf_silence(&b, tail);
    rc = kmk_wav_write_s16(path, b.pcm, b.n, 16000, 1);
  }
  free(b.pcm);
  return rc;
}

/* word error rate of hyp against ref (both lowercase words separated by spaces) */
static double wer(const char *ref, const char *hyp) {
  char r[64][32], h[64][32];
  int nr = 0, nh = 0;
  char tmp[1024];
  snprintf(tmp, sizeof tmp, "%s", ref);
  for (char *t = strtok(tmp, " "); t && nr < 64; t = strtok(NULL, " ")) snprintf(r[nr++], 32, "%s", t);
  snprintf(tmp, sizeof tmp, "%s", hyp);
  for (char *t = strtok(tmp, " "); t && nh < 64; t = strtok(NULL, " ")) {
    for (char *c = t; *c; c++) *c = (char)tolower((unsigned char)*c);
    snprintf(h[nh++], 32, "%s", t);
  }
  int d[65][65];
  for (int i = 0; i <= nr; i++) d[i][0] = i;
  for (int j = 0; j <= nh; j++) d[0][j] = j;
  for (int i = 1; i <= nr; i++)
    for (int j = 1; j <= nh; j++) {
      int sub = d[i - 1][j - 1] + (strcmp(r[i - 1], h[j - 1]) != 0);
      int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return nr ? (double)d[nr][nh] / nr : 0;
}

static double rms_between(const kmk_wav *w, double t0, double t1) {
  size_t a = (size_t)(t0 * w->rate), b = (size_t)(t1 * w->rate);
  if (b > w->frames) b = w->frames;
  double s = 0;
  for (size_t i = a; i < b; i++) s += (double)w->samples[i] * w->samples[i];
  return b > a ? sqrt(s / (double)(b - a)) * 32768.0 : 0;
}

static char tmpdir[256];
static char alice_wav[300], bob_wav[300];

static int run_replay(const char *out, int fast) {
  kmk_replay_track tracks[] = {{"alice", alice_wav, 0.0}, {"bob", bob_wav, 0.0}};
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
  kmk_replay_opts o = {.tracks = tracks,
                       .n_tracks = 2,
                       .out_dir = out,
                       .fast = fast,
                       .persona_paths = personas,
                       .n_personas = 1};
  return replay_offline(&o);
}

static void check_conversation(const char *out, pevents *e) {
  pevents_load(out, e);
  CHECK(e->n > 8);
  /* joins first; the persona greets the first person who joins, by name (a burst of joins
     gets one greeting, not one each) */
  int ja = pfind(e, 0, "join", "alice"), jb = pfind(e, 0, "join", "bob");
  CHECK(ja >= 0 && jb >= 0);
  int greet = pfind(e, ja, "decision", "Kameko");
  CHECK(greet > ja);
  if (greet > ja) {
    CHECK_STR(pstr(e->ev[greet], "trigger"), "join");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(e->ev[greet], "should_speak")));
    CHECK(strstr(pstr(e->ev[greet], "response"), "alice") != NULL);
  }
  /* alice: start < end < transcript < decision(silent) */
  int as = pfind(e, 0, "speech_start", "alice"), ae = pfind(e, as, "speech_end", "alice");
  int at = pfind(e, ae, "transcript", "alice");
  CHECK(as >= 0 && ae > as && at > ae);
  if (at > 0) {
    double w = wer(ALICE_LINE, pstr(e->ev[at], "text"));
    printf("alice heard: \"%s\" (WER %.2f)\n", pstr(e->ev[at], "text"), w);
    CHECK(w <= WER_BOUND);
    CHECK_STR(pstr(e->ev[at], "lang"), "en");
    int ad = pfind_decision_for(e, at, "alice");
    CHECK(ad > at);
    if (ad > 0) {
      CHECK(cJSON_IsFalse(cJSON_GetObjectItem(e->ev[ad], "should_speak")));
      CHECK_STR(pstr(e->ev[ad], "persona"), "Kameko");
    }
    /* detection follows the audio: start within min_speech + a tick, end within end_silence */
    double a0 = pnum(e->ev[as], "audio_t"), a1 = pnum(e->ev[ae], "audio_t");
    CHECK(a0 > 5.5 && a0 < 6.1); /* the sentence starts at 6.0 s; pre-roll reaches back */
    CHECK(a1 > a0 + 1.5 && a1 < 10.0);
    CHECK(pnum(e->ev[as], "t") >= a0 && pnum(e->ev[as], "t") < a0 + 1.0);
    CHECK(pnum(e->ev[ae], "t") >= a1 && pnum(e->ev[ae], "t") < a1 + 1.5);
  }
  /* bob: addressed the persona by name -> it answers, by voice */
  int bs = pfind(e, 0, "speech_start", "bob"), be = pfind(e, bs, "speech_end", "bob");
  int bt = pfind(e, be, "transcript", "bob");
  CHECK(bs >= 0 && be > bs && bt > be);
  if (bt > 0) {
    double w = wer(BOB_LINE, pstr(e->ev[bt], "text"));
    printf("bob heard: \"%s\" (WER %.2f)\n", pstr(e->ev[bt], "text"), w);
    CHECK(w <= WER_BOUND);
    CHECK(strstr(pstr(e->ev[bt], "text"), "kameko") != NULL); /* the name, spotted offline */
    int bd = pfind_decision_for(e, bt, "bob");
    CHECK(bd > bt);
    if (bd > 0) {
      CHECK(cJSON_IsTrue(cJSON_GetObjectItem(e->ev[bd], "should_speak")));
      CHECK(strlen(pstr(e->ev[bd], "response")) > 3);
      const cJSON *lat = cJSON_GetObjectItem(e->ev[bd], "latency_ms");
      CHECK(cJSON_GetObjectItem(lat, "stt") && cJSON_GetObjectItem(lat, "brain"));
      int os = pfind(e, bd, "audio_out_start", "Kameko");
      int oe = pfind(e, os, "audio_out_end", "Kameko");
      CHECK(os > bd && oe > os);
      if (os > 0 && oe > 0) {
        CHECK_STR(pstr(e->ev[os], "text"), pstr(e->ev[bd], "response"));
        CHECK_STR(pstr(e->ev[oe], "reason"), "done");
        char path[512];
        snprintf(path, sizeof path, "%s/conversation.wav", out);
        kmk_wav mix;
        char err[256];
        CHECK_EQ_INT(kmk_wav_read(path, &mix, err, sizeof err), 0);
        double t0 = pnum(e->ev[os], "t"), t1 = pnum(e->ev[oe], "t");
        double reply_rms = rms_between(&mix, t0, t1);
        double quiet_rms = rms_between(&mix, t1 + 0.2, t1 + 1.0); /* after the reply: nobody */
        printf("reply %.2f-%.2f s, rms %.0f (quiet part %.0f)\n", t0, t1, reply_rms, quiet_rms);
        CHECK(t1 - t0 > 0.5);
        CHECK(reply_rms > 500);
        CHECK(quiet_rms < 50);
        kmk_wav_free(&mix);
      }
    }
  }
}

static void test_two_speakers_fast(void) {
  pevents e;
  char out[300];
  snprintf(out, sizeof out, "%s/fast", tmpdir);
  CHECK_EQ_INT(run_replay(out, 1), 0);
  check_conversation(out, &e);
  pevents_free(&e);
}

/* The events of one type, in order, as "speaker|field|field" lines. */
static void project(const pevents *e, const char *type, const char *f1, const char *f2, char *out,
                    size_t cap) {
  out[0] = '\0';
  for (int i = 0; i < e->n; i++) {
    if (strcmp(pstr(e->ev[i], "type"), type) != 0) continue;
    const cJSON *x = cJSON_GetObjectItem(e->ev[i], f2);
    const cJSON *b = cJSON_GetObjectItem(e->ev[i], "should_speak");
    char v2[512], line[1200];
    if (cJSON_IsNumber(x)) snprintf(v2, sizeof v2, "%.3f", x->valuedouble);
    else snprintf(v2, sizeof v2, "%s", pstr(e->ev[i], f2));
    snprintf(line, sizeof line, "%s|%s|%s|%s;", pstr(e->ev[i], "speaker"), pstr(e->ev[i], f1), v2,
             b ? (cJSON_IsTrue(b) ? "T" : "F") : "");
    strncat(out, line, cap - strlen(out) - 1);
  }
}

/* Real time and --fast give the same results: the same turns (to the sample), transcripts,
   decisions and replies. Only the interleaving with background work differs (in real time the
   timeline runs on while recognition works, so e.g. a "leave" can come before a transcript). */
static void test_realtime_matches_fast(void) {
  pevents f, r;
  char out_f[300], out_r[300];
  snprintf(out_f, sizeof out_f, "%s/fast", tmpdir);
  snprintf(out_r, sizeof out_r, "%s/realtime", tmpdir);
  CHECK_EQ_INT(run_replay(out_r, 0), 0);
  pevents_load(out_f, &f);
  check_conversation(out_r, &r);
  static const char *const proj[][3] = {{"speech_start", "type", "audio_t"},
                                        {"speech_end", "type", "audio_t"},
                                        {"transcript", "text", "lang"},
                                        {"decision", "to", "response"},
                                        {"audio_out_start", "text", "lang"}};
  for (size_t k = 0; k < sizeof proj / sizeof proj[0]; k++) {
    static char pf[8192], pr[8192];
    project(&f, proj[k][0], proj[k][1], proj[k][2], pf, sizeof pf);
    project(&r, proj[k][0], proj[k][1], proj[k][2], pr, sizeof pr);
    CHECK(pf[0] != '\0');
    CHECK_STR(pf, pr);
  }
  pevents_free(&f);
  pevents_free(&r);
}

/* Odd inputs: 44.1 kHz stereo, an empty track, a silent track: no crash, nothing lost. */
static void test_odd_inputs(void) {
  char stereo[300], empty[300], quiet[300], out[300];
  snprintf(stereo, sizeof stereo, "%s/stereo44.wav", tmpdir);
  snprintf(empty, sizeof empty, "%s/empty.wav", tmpdir);
  snprintf(quiet, sizeof quiet, "%s/quiet.wav", tmpdir);
  snprintf(out, sizeof out, "%s/odd", tmpdir);
  kmk_wav b;
  char err[256];
  CHECK_EQ_INT(kmk_wav_read(bob_wav, &b, err, sizeof err), 0);
  /* bob at 44.1 kHz stereo */
  kmk_resampler *rs = kmk_resampler_new(16000, 1, 44100, 2);
  size_t cap = b.frames * 3 * 2 + 8192, got = 0;
  int16_t *in = malloc(b.frames * sizeof *in), *o = malloc(cap * sizeof *o);
  for (size_t i = 0; i < b.frames; i++) in[i] = (int16_t)lrintf(b.samples[i] * 32767.0f);
  const int16_t *rso;
  long n = kmk_resampler_process_s16(rs, in, b.frames, &rso);
  CHECK(n > 0);
  if (n > 0) memcpy(o, rso, (size_t)n * 2 * sizeof *o), got = (size_t)n;
  n = kmk_resampler_flush(rs, &rso);
  if (n > 0) memcpy(o + got * 2, rso, (size_t)n * 2 * sizeof *o), got += (size_t)n;
  CHECK(got > b.frames * 2); /* 44.1/16 times longer */
  CHECK_EQ_INT(kmk_wav_write_s16(stereo, o, got, 44100, 2), 0);
  kmk_resampler_free(rs);
  CHECK_EQ_INT(kmk_wav_write_s16(empty, o, 0, 16000, 1), 0);
  memset(o, 0, 16000 * 3 * sizeof *o);
  CHECK_EQ_INT(kmk_wav_write_s16(quiet, o, 16000 * 3, 16000, 1), 0);
  free(in);
  free(o);
  kmk_wav_free(&b);

  kmk_config cfg;
  kmk_config_load(&cfg, NULL, 0, err, sizeof err);
  kmk_replay_track tracks[] = {{"carol", stereo, 0.0}, {"dave", empty, 1.0}, {"erin", quiet, 0.5}};
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
  kmk_replay_opts ro = {.tracks = tracks,
                        .n_tracks = 3,
                        .out_dir = out,
                        .fast = 1,
                        .persona_paths = personas,
                        .n_personas = 1,
                        .scripts_dir = KMK_SOURCE_DIR "/scripts"};
  char e2[1024];
  CHECK_EQ_INT(kmk_replay_run(&ro, &cfg, e2, sizeof e2), 0);
  kmk_config_free(&cfg);
  pevents e;
  pevents_load(out, &e);
  int ct = pfind(&e, 0, "transcript", "carol");
  CHECK(ct >= 0);
  if (ct >= 0) {
    printf("carol (44.1 kHz stereo) heard: \"%s\"\n", pstr(e.ev[ct], "text"));
    CHECK(wer(BOB_LINE, pstr(e.ev[ct], "text")) <= WER_BOUND);
  }
  CHECK(pfind(&e, 0, "speech_start", "erin") < 0); /* silence is not speech */
  CHECK(pfind(&e, 0, "speech_start", "dave") < 0);
  CHECK(pfind(&e, 0, "leave", "dave") >= 0);
  CHECK(pfind(&e, 0, "leave", "erin") >= 0);
  pevents_free(&e);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kmk_e2e_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  snprintf(alice_wav, sizeof alice_wav, "%s/alice.wav", tmpdir);
  snprintf(bob_wav, sizeof bob_wav, "%s/bob.wav", tmpdir);
  /* Both join at 0; the persona greets them; alice talks to bob at 6 s, bob asks at 11 s. */
  if (make_track(alice_wav, "slt", "Hello Bob. Did you see the game last night?", 6.0, 1.0) < 0 ||
      make_track(bob_wav, "kal16", "Kameko, what is your name?", 11.0, 5.0) < 0) {
    fprintf(stderr, "cannot synthesize the test tracks\n");
    return 1;
  }
  RUN(test_two_speakers_fast);
  if (!getenv("KMK_SKIP_REALTIME")) RUN(test_realtime_matches_fast);
  RUN(test_odd_inputs);
  remove_output(tmpdir);
  return check_done();
}
