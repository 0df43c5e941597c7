/* Hot reload during a running real-time replay: one speaker calls the persona by name twice; while
 * the conversation runs the persona file is rewritten three times - a syntax error, a runtime
 * error in the rules (caught by the dry run on the current window), then a valid version with a
 * different reply saved by rename. Asserts: the first answer is the old behaviour, the second the
 * new; the new version's extra wake word ("Tanuki", which the second question uses) reaches the
 * offline recognizer (without it the question is not heard as addressed and gets no answer);
 * two persona_reload errors naming file:line and one ok; the reloads did not disturb the
 * tick pacing: no tick more than 10 ms late within 100 ms of any reload, no skipped frame, each
 * reload < 10 ms on the loop. (Late ticks elsewhere - a loaded shared machine, TTS threads
 * competing for the CPU - are printed, not failed.) Real time only (~16 s);
 * KMK_SKIP_REALTIME=1 skips it.
 */
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include <stdlib.h>
#include <unistd.h>

#include "test_personas_util.h"

static char tmpdir[256], persona[300], track[300], outdir[300];

#define PERSONA_FMT                                                                         \
  "-- test persona (version %s)\n"                                                          \
  "return {\n"                                                                              \
  "  name = \"Kameko\",\n"                                                                  \
  "  languages = {\"en\"},\n"                                                               \
  "  wake_words = {%s},\n"                                                                   \
  "  voices = {en = {engine = \"flite\", voice = \"slt\"}},\n"                              \
  "  rules = function(ctx)\n"                                                               \
  "    %s\n"                                                                                \
  "    if ctx.addressed then return \"This is version %s.\" end\n"                          \
  "  end,\n"                                                                                \
  "}\n"

static void persona_text(char *out, size_t cap, const char *version, const char *extra) {
  const char *wake = strcmp(version, "two") == 0 ? "\"kameko\", \"tanuki\"" : "\"kameko\"";
  snprintf(out, cap, PERSONA_FMT, version, wake, extra, version);
}

static double t_start;
static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
static void sleep_until(double t) {
  while (mono() - t_start < t) usleep(20000);
}

static void *editor(void *arg) {
  (void)arg;
  char text[2048];
  sleep_until(6.0); /* after the first answer */
  write_file_inplace(persona, "return {\n  name = \"Kameko\",\n  languages = {\"en\"\n"); /* syntax */
  sleep_until(7.0);
  persona_text(text, sizeof text, "three", "local x = nil; x.boom = 1 -- runtime error");
  write_file_inplace(persona, text);
  sleep_until(8.0);
  persona_text(text, sizeof text, "two", "");
  write_file_rename(persona, text); /* the editor's save-by-rename */
  return NULL;
}

static void test_reload_while_running(void) {
  char text[2048];
  persona_text(text, sizeof text, "one", "");
  CHECK_EQ_INT(write_file_inplace(persona, text), 0);
  kmk_config cfg;
  char err[1024];
  kmk_config_load(&cfg, NULL, 0, err, sizeof err);
  kmk_replay_track tracks[] = {{"bob", track, 0.0}};
  const char *personas[] = {persona};
  kmk_replay_opts o = {.tracks = tracks, .n_tracks = 1, .out_dir = outdir, .fast = 0,
                       .persona_paths = personas, .n_personas = 1,
                       .scripts_dir = KMK_SOURCE_DIR "/scripts"};
  pthread_t th;
  t_start = mono();
  CHECK_EQ_INT(pthread_create(&th, NULL, editor, NULL), 0);
  int rc = kmk_replay_run(&o, &cfg, err, sizeof err);
  pthread_join(th, NULL);
  if (rc != 0) fprintf(stderr, "replay: %d %s\n", rc, err);
  CHECK_EQ_INT(rc, 0);
  kmk_config_free(&cfg);

  /* The real-time checks (reload ms, ticks near a reload, edits seen one by one) hold on an idle
     machine; on a loaded one (other builds and tests on 2 cores) the OS, not the reload, decides
     them, so they are reported but not asserted then. */
  double load[1] = {0};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  /* the 1-minute average lags behind a test running next to this one (ctest -j2): only a
     nearly idle machine (under half its cores busy) gets the strict checks */
  int strict = getloadavg(load, 1) != 1 || load[0] < 0.5 * (double)(ncpu > 0 ? ncpu : 1);
  if (!strict) printf("machine loaded (%.1f on %ld cores): timing checks reported only\n", load[0], ncpu);
  pevents e;
  pevents_load(outdir, &e);
  int answers = 0, reload_ok = 0, reload_err = 0, stats = 0, nr = 0;
  double t_swap = -1, reload_t[8];
  for (int i = 0; i < e.n; i++) {
    const cJSON *ev = e.ev[i];
    if (ptype(ev, "decision") && strcmp(pstr(ev, "trigger"), "transcript") == 0 &&
        cJSON_IsTrue(cJSON_GetObjectItem(ev, "should_speak"))) {
      answers++;
      const char *want = pnum(ev, "t") < t_swap || t_swap < 0 ? "This is version one."
                                                              : "This is version two.";
      printf("answer %d at %.2f s: \"%s\"\n", answers, pnum(ev, "t"), pstr(ev, "response"));
      CHECK_STR(pstr(ev, "response"), want);
      CHECK_STR(pstr(ev, "persona"), "Kameko");
    } else if (ptype(ev, "persona_reload")) {
      printf("persona_reload at %.2f s: ok=%d %.2f ms %s\n", pnum(ev, "t"),
             cJSON_IsTrue(cJSON_GetObjectItem(ev, "ok")), pnum(ev, "ms"), pstr(ev, "error"));
      if (nr < 8) reload_t[nr++] = pnum(ev, "t");
      CHECK(pnum(ev, "ms") >= 0 && (!strict || pnum(ev, "ms") < 10.0));
      if (cJSON_IsTrue(cJSON_GetObjectItem(ev, "ok"))) {
        reload_ok++;
        t_swap = pnum(ev, "t");
      } else {
        reload_err++;
        /* the error names the file and a line */
        char want[400];
        snprintf(want, sizeof want, "%s:", persona);
        CHECK(strncmp(pstr(ev, "error"), want, strlen(want)) == 0);
      }
    } else if (ptype(ev, "replay_stats")) {
      stats++;
      printf("replay_stats: %d ticks, %d late (> %d ms), late max %.2f ms, %d skipped\n",
             (int)pnum(ev, "ticks"), (int)pnum(ev, "late_ticks"), (int)pnum(ev, "late_limit_ms"),
             pnum(ev, "late_max_ms"), (int)pnum(ev, "skipped_frames"));
      if (strict) CHECK_EQ_INT(pnum(ev, "skipped_frames"), 0);
      const cJSON *at;
      cJSON_ArrayForEach(at, cJSON_GetObjectItem(ev, "late_at")) {
        printf("  late tick at %.2f s\n", at->valuedouble);
        for (int k = 0; k < nr && strict; k++) /* near a reload: the reload delayed it */
          CHECK(!(at->valuedouble >= reload_t[k] - 0.04 && at->valuedouble <= reload_t[k] + 0.1));
      }
    }
  }
  CHECK_EQ_INT(answers, 2);
  if (strict) {
    CHECK_EQ_INT(reload_ok, 1);
    CHECK_EQ_INT(reload_err, 2);
  } else { /* edits may coalesce within the debounce: at least one of each kind was seen */
    CHECK(reload_ok >= 1 && reload_err >= 1);
  }
  CHECK_EQ_INT(stats, 1);
  check_no_overlap(&e);
  pevents_free(&e);
}

int main(void) {
  if (getenv("KMK_SKIP_REALTIME")) {
    printf("skipped (KMK_SKIP_REALTIME)\n");
    return 0;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kmk_reload_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  snprintf(persona, sizeof persona, "%s/kameko_test.lua", tmpdir);
  snprintf(track, sizeof track, "%s/bob.wav", tmpdir);
  snprintf(outdir, sizeof outdir, "%s/out", tmpdir);
  /* bob asks at 1 s and again at 10 s (after the edits at 6, 7 and 8 s), by the new wake word */
  pbuf b = {0};
  pbuf_silence(&b, 1.0);
  int rc = pbuf_say(&b, "kal16", "Kameko, what is your name?");
  pbuf_silence(&b, 10.0 - (double)b.n / 16000);
  if (rc == 0) rc = pbuf_say(&b, "kal16", "Tanuki, what is your name?");
  pbuf_silence(&b, 1.0);
  if (rc == 0) rc = kmk_wav_write_s16(track, b.pcm, b.n, 16000, 1);
  free(b.pcm);
  if (rc != 0) {
    fprintf(stderr, "cannot synthesize the test track\n");
    return 1;
  }
  RUN(test_reload_while_running);
  remove_output(tmpdir);
  return check_done();
}
