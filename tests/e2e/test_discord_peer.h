/* test_discord_peer.h - runs tests/peers/discord/peer.js for one test process and reads its
 * records on the test's libuv loop.
 *
 * dpeer_start() spawns `node peer.js --port 0 --token T [extra]` and reads "PORT n" (blocking, once;
 * kmk_node_peer_spawn from tests/unit/test_net_peer.h),
 * then reads the JSON records from the peer's stdout through a uv_pipe into p->rec[]. dpeer_cmd()
 * writes one control line to the peer's stdin. dpeer_wait() runs the loop until a condition holds
 * or a deadline passes (a 20 ms repeating timer keeps UV_RUN_ONCE returning). Returns 0 from
 * dpeer_start when node or the peer's node_modules is missing (the caller prints "skipped").
 * Loop thread only (the test's main thread).
 */
#ifndef KMK_TEST_DISCORD_PEER_H
#define KMK_TEST_DISCORD_PEER_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "test_net_peer.h"

#define DPEER_MAX 8192

typedef struct {
  uv_loop_t *loop;
  pid_t pid;
  int in_fd;
  uv_pipe_t out;
  uv_timer_t tick;
  char buf[1 << 16];
  size_t len;
  cJSON *rec[DPEER_MAX];
  int n;
  int port;
  int open;
} dpeer;

static void dpeer_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  dpeer *p = h->data;
  (void)sz;
  b->base = p->buf + p->len;
  b->len = sizeof p->buf - p->len - 1;
}

static void dpeer_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  dpeer *p = s->data;
  (void)b;
  if (nread <= 0) {
    if (nread < 0) uv_read_stop(s);
    return;
  }
  p->len += (size_t)nread;
  p->buf[p->len] = 0;
  char *start = p->buf, *nl;
  while ((nl = strchr(start, '\n'))) {
    *nl = 0;
    cJSON *j = cJSON_Parse(start);
    if (j && p->n < DPEER_MAX) p->rec[p->n++] = j;
    else cJSON_Delete(j);
    if (getenv("DPEER_VERBOSE")) fprintf(stderr, "peer: %s\n", start);
    start = nl + 1;
  }
  size_t rest = p->len - (size_t)(start - p->buf);
  memmove(p->buf, start, rest);
  p->len = rest;
  if (p->len + 1 >= sizeof p->buf) p->len = 0; /* a monster line: drop it */
}

static void dpeer_tick(uv_timer_t *t) { (void)t; }

static int dpeer_start(dpeer *p, uv_loop_t *loop, const char *token, const char *const *extra) {
  memset(p, 0, sizeof *p);
  p->loop = loop;
  p->pid = -1;
  const char *args[] = {"--token", token, NULL};
  int out_fd = -1;
  p->port = kmk_node_peer_spawn("discord", "peer.js", args, extra, "run tools/peers.sh", &p->pid,
                                &p->in_fd, &out_fd);
  if (!p->port) return 0;
  uv_pipe_init(loop, &p->out, 0);
  uv_pipe_open(&p->out, out_fd);
  p->out.data = p;
  uv_read_start((uv_stream_t *)&p->out, dpeer_alloc, dpeer_read);
  uv_timer_init(loop, &p->tick);
  uv_timer_start(&p->tick, dpeer_tick, 20, 20);
  p->open = 1;
  return p->port;
}

__attribute__((unused)) static void dpeer_cmd(dpeer *p, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= (int)sizeof line - 1) return;
  line[n++] = '\n';
  ssize_t w = write(p->in_fd, line, (size_t)n);
  (void)w;
}

__attribute__((unused)) static const char *dpeer_str(const cJSON *r, const char *k) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(r, k);
  return cJSON_IsString(x) ? x->valuestring : "";
}
__attribute__((unused)) static double dpeer_num(const cJSON *r, const char *k) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(r, k);
  return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

/* Index of the first record at or after `from` with this ev (and key == val when key given). */
__attribute__((unused)) static int dpeer_find(const dpeer *p, int from, const char *ev, const char *key, const char *val) {
  for (int i = from < 0 ? 0 : from; i < p->n; i++) {
    if (strcmp(dpeer_str(p->rec[i], "ev"), ev)) continue;
    if (key && strcmp(dpeer_str(p->rec[i], key), val)) continue;
    return i;
  }
  return -1;
}

__attribute__((unused)) static int dpeer_count(const dpeer *p, int from, const char *ev) {
  int n = 0;
  for (int i = from < 0 ? 0 : from; i < p->n; i++)
    if (!strcmp(dpeer_str(p->rec[i], "ev"), ev)) n++;
  return n;
}

/* Runs the loop until cond(ud) is true (1) or timeout_s passes (0). */
__attribute__((unused)) static int dpeer_wait(dpeer *p, double timeout_s, int (*cond)(void *), void *ud) {
  uint64_t end = uv_now(p->loop) + (uint64_t)(timeout_s * 1000);
  while (!cond(ud)) {
    if (uv_now(p->loop) >= end) return 0;
    uv_run(p->loop, UV_RUN_ONCE);
  }
  return 1;
}

/* Runs the loop for s seconds (for "nothing more happens" checks). */
__attribute__((unused)) static void dpeer_run_for(dpeer *p, double s) {
  uint64_t end = uv_now(p->loop) + (uint64_t)(s * 1000);
  while (uv_now(p->loop) < end) uv_run(p->loop, UV_RUN_ONCE);
}

static void dpeer_stop(dpeer *p) {
  if (p->pid <= 0) return;
  close(p->in_fd);
  kill(p->pid, SIGTERM);
  waitpid(p->pid, NULL, 0);
  p->pid = -1;
  if (p->open) {
    uv_close((uv_handle_t *)&p->out, NULL);
    uv_close((uv_handle_t *)&p->tick, NULL);
    p->open = 0;
  }
  for (int i = 0; i < p->n; i++) cJSON_Delete(p->rec[i]);
  p->n = 0;
}

#endif
