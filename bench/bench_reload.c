/* bench_reload.c - hot reload and the per-decision cost of the Lua call.
 *
 * 1. Save -> answering: a small persona file is rewritten (temp file + rename, as editors save)
 *    N times on a libuv loop watched by kmk_file_watch with the agent's debounce (120 ms); the
 *    callback runs kmk_brain_reload and feeds "<name>, hello" until the reply carries the new
 *    version. Reports save -> new answer (p50/p95/max) and the reload's own time on the loop.
 * 2. kmk_brain_reload alone for each shipped persona (scripts + persona compiled, self-checked,
 *    window and store handed over, dry run).
 * 3. Per-decision overhead of the Lua call: kmk_brain_event for a transcript with a full window
 *    (offline rules, Kameko), for an LLM request being built, and for a stage event no hook
 *    wants; µs p50/p95 (wall clock, one core).
 * Prints plain `name: value` lines. Usage: bench_reload [saves=20] [calls=20000]
 * KMK_BENCH_SCRIPTS=DIR runs part 3 with other engine scripts (e.g. an older scripts/ to compare).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "bench_stats.h"
#include "kameko/brain.h"
#include "kameko/log.h"

#define DEBOUNCE_MS 120

static double now_ms(void) { return (double)uv_hrtime() / 1e6; }

static char path[256];

static void write_version(int v) {
  char tmp[300], src[1024];
  snprintf(tmp, sizeof tmp, "%s.tmp~", path);
  snprintf(src, sizeof src,
           "return {\n  name = 'Rina', languages = {'en'},\n  rules = function(ctx)\n"
           "    if ctx.addressed then return 'version %d' end\n  end,\n}\n", v);
  FILE *f = fopen(tmp, "w");
  fputs(src, f);
  fclose(f);
  rename(tmp, path);
}

typedef struct {
  uv_loop_t *loop;
  uv_timer_t next;
  kmk_brain *b;
  kmk_file_watch *w;
  int i, n, failed;
  double t_save, *lat, *reload_ms;
} run;

static void save_next(uv_timer_t *t) {
  run *r = t->data;
  r->t_save = now_ms();
  write_version(r->i + 2);
}

static void on_change(void *ud) {
  run *r = ud;
  char err[1024], want[32];
  double t0 = now_ms();
  if (kmk_brain_reload(r->b, err, sizeof err) != 0) {
    fprintf(stderr, "reload failed: %s\n", err);
    r->failed++;
  }
  double t1 = now_ms();
  cJSON *ev = cJSON_Parse("{\"t\":1,\"type\":\"transcript\",\"speaker\":\"al\",\"text\":\"rina hello\"}");
  kmk_brain_action a;
  kmk_brain_event(r->b, ev, 1, &a);
  cJSON_Delete(ev);
  snprintf(want, sizeof want, "version %d", r->i + 2);
  int ok = a.kind == KMK_ACTION_DECISION && strcmp(a.decision.response, want) == 0;
  kmk_brain_action_clear(&a);
  if (!ok) return; /* an event for an older save: wait for ours */
  r->lat[r->i] = now_ms() - r->t_save;
  r->reload_ms[r->i] = t1 - t0;
  if (++r->i == r->n) {
    kmk_file_watch_free(r->w);
    uv_close((uv_handle_t *)&r->next, NULL);
    return;
  }
  uv_timer_start(&r->next, save_next, 50, 0);
}

static void bench_save_to_answer(int n) {
  snprintf(path, sizeof path, "/tmp/kmk_bench_reload_%d.lua", (int)getpid());
  write_version(1);
  char err[1024];
  kmk_brain_opts o = {NULL, path, 0, 0, 0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  if (!b) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  run r = {.loop = &loop, .b = b, .n = n};
  r.lat = calloc((size_t)n, sizeof *r.lat);
  r.reload_ms = calloc((size_t)n, sizeof *r.reload_ms);
  r.w = kmk_file_watch_new(&loop, path, DEBOUNCE_MS, on_change, &r);
  uv_timer_init(&loop, &r.next);
  r.next.data = &r;
  uv_timer_start(&r.next, save_next, 50, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  printf("reload_saves: %d (debounce %d ms, save by rename)\n", r.i, DEBOUNCE_MS);
  printf("reload_save_to_answer_ms_p50: %.1f\n", pct(r.lat, r.i, 50));
  printf("reload_save_to_answer_ms_p95: %.1f\n", pct(r.lat, r.i, 95));
  printf("reload_save_to_answer_ms_max: %.1f\n", pct(r.lat, r.i, 100));
  printf("reload_on_loop_ms_p50: %.2f\n", pct(r.reload_ms, r.i, 50));
  printf("reload_on_loop_ms_p95: %.2f\n", pct(r.reload_ms, r.i, 95));
  kmk_brain_free(b);
  free(r.lat);
  free(r.reload_ms);
  remove(path);
}

static void feed_window(kmk_brain *b, int n) {
  for (int i = 0; i < n; i++) {
    char buf[256];
    snprintf(buf, sizeof buf,
             "{\"t\":%d,\"type\":\"transcript\",\"speaker\":\"p%d\",\"text\":\"did you see the game last night number %d\"}",
             i, i % 3, i);
    cJSON *ev = cJSON_Parse(buf);
    kmk_brain_action a;
    kmk_brain_event(b, ev, i, &a);
    kmk_brain_action_clear(&a);
    cJSON_Delete(ev);
  }
}

static void bench_reload_shipped(const char *name, int n) {
  char p[512], err[1024];
  snprintf(p, sizeof p, "%s/personas/%s.lua", KMK_SOURCE_DIR, name);
  kmk_brain_opts o = {NULL, p, 0, 0, 0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  if (!b) {
    fprintf(stderr, "%s\n", err);
    return;
  }
  feed_window(b, 20);
  double *v = calloc((size_t)n, sizeof *v);
  for (int i = 0; i < n; i++) {
    double t0 = now_ms();
    if (kmk_brain_reload(b, err, sizeof err) != 0) fprintf(stderr, "%s\n", err);
    v[i] = now_ms() - t0;
  }
  printf("reload_%s_ms_p50: %.2f\n", name, pct(v, n, 50));
  printf("reload_%s_ms_p95: %.2f\n", name, pct(v, n, 95));
  free(v);
  kmk_brain_free(b);
}

static void bench_call(const char *label, int llm, const char *event_json, int n) {
  char p[512], err[1024];
  snprintf(p, sizeof p, "%s/personas/kameko.lua", KMK_SOURCE_DIR);
  kmk_brain_opts o = {getenv("KMK_BENCH_SCRIPTS"), p, llm, 0, 0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  if (!b) {
    fprintf(stderr, "%s\n", err);
    return;
  }
  feed_window(b, 20); /* a full 15-entry window */
  cJSON *ev = cJSON_Parse(event_json);
  double *v = calloc((size_t)n, sizeof *v);
  for (int i = 0; i < n; i++) {
    kmk_brain_action a;
    uint64_t t0 = uv_hrtime();
    kmk_brain_event(b, ev, 100 + i * 0.001, &a);
    v[i] = (double)(uv_hrtime() - t0) / 1e3;
    kmk_brain_action_clear(&a);
  }
  printf("lua_call_%s_us_p50: %.1f\n", label, pct(v, n, 50));
  printf("lua_call_%s_us_p95: %.1f\n", label, pct(v, n, 95));
  free(v);
  cJSON_Delete(ev);
  kmk_brain_free(b);
}

int main(int argc, char **argv) {
  int saves = argc > 1 ? atoi(argv[1]) : 20, calls = argc > 2 ? atoi(argv[2]) : 20000;
  if (saves < 1) saves = 1;
  if (calls < 10) calls = 10;
  kmk_log_set_level(KMK_LOG_ERROR);
  bench_save_to_answer(saves);
  bench_reload_shipped("kameko", 50);
  bench_reload_shipped("shopkeeper", 50);
  bench_reload_shipped("moderator", 50);
  const char *addressed =
      "{\"t\":100,\"type\":\"transcript\",\"speaker\":\"al\",\"text\":\"kameko how are you\"}";
  const char *chatter =
      "{\"t\":100,\"type\":\"transcript\",\"speaker\":\"al\",\"text\":\"did you see the game\"}";
  const char *stage = "{\"t\":100,\"type\":\"speech_start\",\"speaker\":\"al\",\"audio_t\":99.7}";
  bench_call("decision_addressed", 0, addressed, calls);
  bench_call("decision_silent", 0, chatter, calls);
  bench_call("llm_request", 1, addressed, calls);
  bench_call("stage_event", 0, stage, calls);
  return 0;
}
