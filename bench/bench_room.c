/* bench_room.c - the browser room's server side under a realistic load, printed as figures:
 * P pages (default 8, engine WebSocket clients in-process) all stream open-microphone audio in real
 * time; page 0 asks the persona a question R times (default 5) and speaks over each reply.
 *   - barge-in: speech start in the sent audio -> flush at the speaking page and at another page,
 *     -> the last agent frame a page got, -> the agent's own "playback_stop" event;
 *   - the agent's voice at a listening page: frame inter-arrival deviation from 20 ms;
 *   - the loop: lateness of a 10 ms timer through the whole run (the loop must never stall).
 * Usage: bench_room [ROUNDS] [PAGES]
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "kameko/log.h"
#include "kameko/net.h"
#include "kameko/room.h"
#include "kameko/speech.h"

#define MAX_PAGES 16
#define FRAME 320 /* 20 ms at 16 kHz */

typedef struct {
  kmk_ws_conn *c;
  int open, welcomed, closed;
  int n_audio, n_flush;
  double last_audio_ms, flush_ms, last_before_flush_ms, stop_ms;
  int n_replies; /* audio_out_start events seen */
  int16_t *say;  /* what to send next (then silence) */
  size_t say_n, pos, onset;
  double onset_ms;
  int measure_gaps;
} page;

static uv_loop_t loop;
static kmk_ws *ws;
static kmk_room *room;
static page pages[MAX_PAGES];
static int n_pages = 8;
static uv_timer_t pump, lag;
static double lag_max_ms, lag_next_ms;
static double gaps[100000];
static size_t n_gaps;

static double now_ms(void) { return (double)uv_hrtime() / 1e6; }

static void on_open(void *ud, kmk_ws_conn *c) { ((page *)ud)->open = 1; }
static void on_close(void *ud, kmk_ws_conn *c, int err, int st, const char *d, const char *r) {
  ((page *)ud)->closed = 1;
}
static void on_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary) {
  page *p = ud;
  double t = now_ms();
  if (binary) {
    if (p->measure_gaps && p->n_audio && t - p->last_audio_ms < 200 && n_gaps < 100000)
      gaps[n_gaps++] = t - p->last_audio_ms;
    p->n_audio++;
    p->last_audio_ms = t;
    return;
  }
  cJSON *j = cJSON_ParseWithLength(data, len);
  const cJSON *type = cJSON_GetObjectItem(j, "type");
  if (cJSON_IsString(type)) {
    if (!strcmp(type->valuestring, "welcome")) p->welcomed = 1;
    if (!strcmp(type->valuestring, "flush")) {
      if (!p->flush_ms) {
        p->flush_ms = t;
        p->last_before_flush_ms = p->last_audio_ms;
      }
      p->n_flush++;
    }
    if (!strcmp(type->valuestring, "event")) {
      const cJSON *et = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "event"), "type");
      if (cJSON_IsString(et) && !strcmp(et->valuestring, "playback_stop") && !p->stop_ms) p->stop_ms = t;
      if (cJSON_IsString(et) && !strcmp(et->valuestring, "audio_out_start")) p->n_replies++;
    }
  }
  cJSON_Delete(j);
}

static void pump_cb(uv_timer_t *t) {
  static int16_t zeros[FRAME];
  for (int i = 0; i < n_pages; i++) {
    page *p = &pages[i];
    if (!p->welcomed || p->closed) continue;
    const int16_t *f = zeros;
    if (p->say && p->pos + FRAME <= p->say_n) {
      f = p->say + p->pos;
      if (!p->onset_ms && p->onset >= p->pos && p->onset < p->pos + FRAME) p->onset_ms = now_ms();
      p->pos += FRAME;
    }
    kmk_ws_send(p->c, f, sizeof zeros, 1);
  }
}

static void lag_cb(uv_timer_t *t) {
  double n = now_ms();
  if (lag_next_ms && n - lag_next_ms > lag_max_ms) lag_max_ms = n - lag_next_ms;
  lag_next_ms = n + 10;
}

static int (*pred)(void);
static double deadline;
static uv_timer_t check;
static void check_cb(uv_timer_t *t) {
  if (pred() || now_ms() > deadline) uv_stop(&loop);
}
static int run_until(int (*p)(void), double ms) {
  pred = p;
  deadline = now_ms() + ms;
  if (p()) return 1;
  uv_timer_start(&check, check_cb, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_timer_stop(&check);
  return p();
}
static double until_ms;
static int p_time(void) { return now_ms() >= until_ms; }
static void run_for(double ms) {
  until_ms = now_ms() + ms;
  run_until(p_time, ms + 1000);
}

typedef struct {
  int16_t *pcm;
  size_t n, cap;
} buf;
static int chunk(void *ud, const int16_t *pcm, size_t n, int rate) {
  buf *b = ud;
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2;
    b->pcm = realloc(b->pcm, b->cap * sizeof *pcm);
  }
  memcpy(b->pcm + b->n, pcm, n * sizeof *pcm);
  b->n += n;
  return 0;
}
static buf synth(const char *text, double lead_s) {
  buf b = {0};
  size_t lead = (size_t)(lead_s * 16000);
  b.cap = lead + 16000;
  b.pcm = calloc(b.cap, sizeof *b.pcm);
  b.n = lead;
  kmk_tts_voice v = {.voice = "slt"};
  atomic_int cancel = 0;
  char err[256];
  if (kmk_tts_flite_synth(text, &v, chunk, &b, &cancel, err, sizeof err) != 0)
    fprintf(stderr, "flite: %s\n", err);
  return b;
}
static size_t onset_of(const buf *b) {
  for (size_t i = 0; i < b->n; i++)
    if (abs(b->pcm[i]) > 1000) return i;
  return 0;
}

static int all_welcomed(void) {
  for (int i = 0; i < n_pages; i++)
    if (!pages[i].welcomed) return 0;
  return 1;
}
static int mark_replies;
static double mark_audio_t;
static int p_reply(void) { return pages[0].n_replies > mark_replies && pages[0].n_audio >= 10 + (int)mark_audio_t; }
static int p_flushed(void) { return pages[0].flush_ms > 0 && pages[n_pages - 1].flush_ms > 0 && pages[0].stop_ms > 0; }
static int p_quiet(void) { return now_ms() - pages[0].last_audio_ms > 1500 && now_ms() - until_ms > 3000; }

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(double *v, size_t n, double p) {
  if (!n) return NAN;
  qsort(v, n, sizeof *v, cmp);
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return v[i];
}
static void ws_closed(void *ud) { *(int *)ud = 1; }

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  n_pages = argc > 2 ? atoi(argv[2]) : 8;
  if (rounds < 1 || n_pages < 2 || n_pages > MAX_PAGES) {
    fprintf(stderr, "usage: bench_room [ROUNDS>=1] [PAGES 2..%d]\n", MAX_PAGES);
    return 2;
  }
  kmk_log_set_level(KMK_LOG_WARN);
  kmk_config cfg;
  char err[1024] = "";
  kmk_config_load(&cfg, NULL, 0, err, sizeof err);
  kmk_config_set(&cfg, "KMK_ROOM_PORT", "0", err, sizeof err);
  uv_loop_init(&loop);
  kmk_eventlog *log = kmk_eventlog_open(NULL, err, sizeof err);
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
  kmk_room_opts o = {.loop = &loop, .config = &cfg, .log = log, .persona_paths = personas,
                     .n_personas = 1, .scripts_dir = KMK_SOURCE_DIR "/scripts", .no_watch = 1};
  room = kmk_room_new(&o, err, sizeof err);
  if (!room) {
    fprintf(stderr, "bench_room: %s\n", err);
    return 1;
  }
  ws = kmk_ws_new(&loop);
  uv_timer_init(&loop, &pump);
  uv_timer_init(&loop, &lag);
  uv_timer_init(&loop, &check);
  uv_timer_start(&pump, pump_cb, 20, 20);
  buf q = synth("Kameko, what is your name?", 0.3), stop = synth("Wait, stop please.", 0.0);
  uv_timer_start(&lag, lag_cb, 10, 10);
  char url[100], origin[100];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/ws", kmk_room_port(room));
  snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d", kmk_room_port(room));
  const char *hdrs[] = {origin, NULL};
  for (int i = 0; i < n_pages; i++) {
    kmk_ws_opts wo = {.url = url, .headers = hdrs, .timeout_ms = 3600000,
                      .cb = {on_open, on_message, on_close}, .ud = &pages[i]};
    kmk_ws_connect(ws, &wo, &pages[i].c);
  }
  run_for(500);
  for (int i = 0; i < n_pages; i++) {
    char h[100];
    snprintf(h, sizeof h, "{\"type\":\"hello\",\"name\":\"page%d\",\"rate\":16000}", i);
    kmk_ws_send(pages[i].c, h, strlen(h), 0);
  }
  if (!run_until(all_welcomed, 20000)) {
    fprintf(stderr, "bench_room: pages did not join\n");
    return 1;
  }
  until_ms = now_ms();
  run_until(p_quiet, 20000); /* the greeting */
  double to_flush[64], to_flush_other[64], to_last[64], to_stop[64];
  int n = 0;
  pages[1].measure_gaps = 1;
  for (int r = 0; r < rounds && r < 64; r++) {
    mark_replies = pages[0].n_replies;
    mark_audio_t = pages[0].n_audio + r * 3; /* speak over it at a different point each round */
    pages[0].say = q.pcm, pages[0].say_n = q.n, pages[0].pos = 0;
    if (!run_until(p_reply, 30000)) {
      fprintf(stderr, "round %d: no reply\n", r);
      continue;
    }
    for (int i = 0; i < n_pages; i++) pages[i].flush_ms = pages[i].stop_ms = 0;
    pages[0].say = stop.pcm, pages[0].say_n = stop.n, pages[0].pos = 0;
    pages[0].onset = onset_of(&stop);
    pages[0].onset_ms = 0;
    if (!run_until(p_flushed, 10000) || !pages[0].onset_ms) {
      fprintf(stderr, "round %d: no flush\n", r);
      continue;
    }
    to_flush[n] = pages[0].flush_ms - pages[0].onset_ms;
    to_flush_other[n] = pages[n_pages - 1].flush_ms - pages[0].onset_ms;
    to_last[n] = pages[0].last_before_flush_ms - pages[0].onset_ms;
    to_stop[n] = pages[0].stop_ms - pages[0].onset_ms;
    n++;
    until_ms = now_ms();
    run_until(p_quiet, 30000);
  }
  printf("bench_room: %d pages streaming open-microphone audio in real time, %d barge-ins\n", n_pages, n);
  printf("| what | p50 | max |\n|---|---|---|\n");
  double v[64];
  memcpy(v, to_flush, sizeof v);
  printf("| speech start (sent audio) -> flush at the speaking page | %.0f ms | %.0f ms |\n",
         pct(v, (size_t)n, 0.5), pct(v, (size_t)n, 1.0));
  memcpy(v, to_flush_other, sizeof v);
  printf("| speech start -> flush at another page | %.0f ms | %.0f ms |\n", pct(v, (size_t)n, 0.5),
         pct(v, (size_t)n, 1.0));
  memcpy(v, to_last, sizeof v);
  printf("| speech start -> last agent frame received | %.0f ms | %.0f ms |\n", pct(v, (size_t)n, 0.5),
         pct(v, (size_t)n, 1.0));
  memcpy(v, to_stop, sizeof v);
  printf("| speech start -> the agent's own playback_stop (its endpointer) | %.0f ms | %.0f ms |\n",
         pct(v, (size_t)n, 0.5), pct(v, (size_t)n, 1.0));
  for (size_t i = 0; i < n_gaps; i++) gaps[i] = fabs(gaps[i] - 20.0);
  printf("| agent frame arrival at a listening page, |interval - 20 ms| (%zu frames) | %.1f ms | "
         "%.1f ms (p99 %.1f) |\n",
         n_gaps, pct(gaps, n_gaps, 0.5), pct(gaps, n_gaps, 1.0), pct(gaps, n_gaps, 0.99));
  printf("| loop: lateness of a 10 ms timer, whole run | | %.1f ms |\n", lag_max_ms);
  kmk_room_stats st;
  kmk_room_get_stats(room, &st);
  printf("early flushes %llu (not confirmed %llu), audio frames dropped %llu\n",
         (unsigned long long)st.early_flushes, (unsigned long long)st.early_false,
         (unsigned long long)st.audio_dropped);
  uv_timer_stop(&pump);
  int closed = 0;
  kmk_ws_close(ws, ws_closed, &closed);
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&pump, NULL);
  uv_close((uv_handle_t *)&lag, NULL);
  uv_close((uv_handle_t *)&check, NULL);
  kmk_room_free(room);
  uv_run(&loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&loop) == 0 ? 0 : 1;
  kmk_eventlog_close(log);
  kmk_config_free(&cfg);
  free(q.pcm);
  free(stop.pcm);
  return rc;
}
