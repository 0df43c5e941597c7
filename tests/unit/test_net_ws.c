/* test_net_ws.c - kmk_ws (libwebsockets on our libuv loop) against the loopback peer: text and
 * binary echo, fragmented messages, message size cap, server close code, refused upgrade with the
 * status and Date header, connect failure, stall deadline, close from inside a callback, and a
 * clean loop close with connections still open. */
#include <uv.h>

#include "check.h"
#include "kameko/net.h"
#include "test_net_peer.h"

static int g_port;

typedef struct {
  int opens, msgs, closes, err, status, binary_msgs;
  size_t last_len;
  char last[256], date[64], reason[160];
  const char *script[8]; /* messages to send after open */
  int close_after;       /* close from inside on_message after this many */
} st;

static void on_open(void *ud, kmk_ws_conn *c) {
  st *s = ud;
  s->opens++;
  for (int i = 0; s->script[i]; i++) kmk_ws_send(c, s->script[i], strlen(s->script[i]), 0);
}
static void on_message(void *ud, kmk_ws_conn *c, const void *d, size_t n, int binary) {
  st *s = ud;
  s->msgs++;
  s->binary_msgs += binary;
  s->last_len = n;
  snprintf(s->last, sizeof s->last, "%.*s", (int)(n < 200 ? n : 200), (const char *)d);
  if (s->close_after && s->msgs == s->close_after) kmk_ws_close_conn(c);
}
static void on_close(void *ud, kmk_ws_conn *c, int err, int status, const char *date, const char *reason) {
  st *s = ud;
  s->closes++;
  s->err = err;
  s->status = status;
  snprintf(s->date, sizeof s->date, "%s", date);
  snprintf(s->reason, sizeof s->reason, "%s", reason);
}

typedef struct {
  uv_loop_t loop;
  kmk_ws *w;
  int closed;
} env;
static void closed_cb(void *ud) { ((env *)ud)->closed = 1; }
static void env_init(env *e) {
  uv_loop_init(&e->loop);
  e->w = kmk_ws_new(&e->loop);
}
static int env_close(env *e) {
  kmk_ws_close(e->w, closed_cb, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&e->loop);
  if (rc) uv_print_all_handles(&e->loop, stderr);
  return rc == 0 && e->closed;
}

static int conn(env *e, const char *path, st *s, double stall_ms) {
  char url[256];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", g_port, path);
  const char *hdrs[] = {"Origin: chrome-extension://test", "Cookie: muid=ABC;", NULL};
  kmk_ws_opts o = {.url = url, .headers = hdrs, .stall_ms = stall_ms, .max_message = 50000,
                   .timeout_ms = 5000, .cb = {on_open, on_message, on_close}, .ud = s};
  return kmk_ws_connect(e->w, &o, NULL);
}

static void run_until(env *e, int *flag, int want) {
  for (int i = 0; i < 500 && *flag < want; i++) uv_run(&e->loop, UV_RUN_ONCE);
}

static void test_echo(void) {
  env e;
  env_init(&e);
  CHECK(e.w != NULL);
  if (!e.w) return;
  st s = {.script = {"hello", "frag", "big:40000", "close", NULL}};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &s, 0), 0);
  run_until(&e, &s.closes, 1);
  CHECK_EQ_INT(s.opens, 1);
  CHECK_EQ_INT(s.msgs, 3);
  CHECK_EQ_INT(s.binary_msgs, 1);
  CHECK_EQ_INT(s.last_len, 40000);
  CHECK_EQ_INT(s.closes, 1);
  CHECK_EQ_INT(s.err, 0);
  CHECK(strstr(s.reason, "1000") != NULL);
  CHECK(strstr(s.reason, "bye") != NULL);
  /* fragments are joined */
  st f = {.script = {"frag", "close", NULL}};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &f, 0), 0);
  run_until(&e, &f.closes, 1);
  CHECK_STR(f.last, "abcdef");
  /* cap */
  st b = {.script = {"big:60000", NULL}};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &b, 0), 0);
  run_until(&e, &b.closes, 1);
  CHECK_EQ_INT(b.err, KMK_NET_ETOOBIG);
  CHECK_EQ_INT(b.msgs, 0);
  CHECK(env_close(&e));
}

static void test_resolved_name(void) {
  env e;
  env_init(&e);
  if (!e.w) return;
  st s = {.script = {"hello", "close", NULL}};
  char url[128];
  snprintf(url, sizeof url, "ws://localhost:%d/ws/echo", g_port);
  kmk_ws_opts o = {.url = url, .timeout_ms = 5000, .cb = {on_open, on_message, on_close}, .ud = &s};
  CHECK_EQ_INT(kmk_ws_connect(e.w, &o, NULL), 0);
  run_until(&e, &s.closes, 1);
  CHECK_EQ_INT(s.opens, 1);
  CHECK_STR(s.last, "hello");
  CHECK_EQ_INT(s.err, 0);
  /* (no test with an unresolvable name: it would send a DNS query off this machine) */
  /* closing the context while a name is being resolved */
  st c = {0};
  kmk_ws_opts q = {.url = "ws://localhost:1/x", .cb = {on_open, on_message, on_close}, .ud = &c};
  CHECK_EQ_INT(kmk_ws_connect(e.w, &q, NULL), 0);
  CHECK(env_close(&e));
  CHECK_EQ_INT(c.closes, 0);
}

static void test_refused_and_failures(void) {
  env e;
  env_init(&e);
  if (!e.w) return;
  st s = {0};
  CHECK_EQ_INT(conn(&e, "/ws/403", &s, 0), 0);
  run_until(&e, &s.closes, 1);
  CHECK_EQ_INT(s.closes, 1);
  CHECK_EQ_INT(s.opens, 0);
  CHECK_EQ_INT(s.err, KMK_NET_ECONNECT);
  if (s.status != 403) fprintf(stderr, "refused: status %d reason '%s'\n", s.status, s.reason);
  CHECK_EQ_INT(s.status, 403);
  CHECK(strstr(s.date, "GMT") != NULL);
  /* nothing listening */
  st r = {0};
  char url[64];
  snprintf(url, sizeof url, "ws://127.0.0.1:1/x");
  kmk_ws_opts o = {.url = url, .cb = {on_open, on_message, on_close}, .ud = &r};
  int rc = kmk_ws_connect(e.w, &o, NULL);
  if (rc == 0) run_until(&e, &r.closes, 1);
  CHECK(rc == KMK_NET_ECONNECT || (r.closes == 1 && r.err == KMK_NET_ECONNECT));
  /* stall: the echo server says nothing */
  st t = {0};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &t, 200), 0);
  uint64_t t0 = uv_hrtime();
  run_until(&e, &t.closes, 1);
  CHECK_EQ_INT(t.err, KMK_NET_ESTALLED);
  CHECK((uv_hrtime() - t0) / 1e6 < 2500);
  /* abrupt end */
  st a = {.script = {"abort", NULL}};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &a, 0), 0);
  run_until(&e, &a.closes, 1);
  CHECK_EQ_INT(a.closes, 1);
  CHECK(a.err != 0);
  CHECK_EQ_INT(kmk_ws_send(NULL, "x", 1, 0), KMK_NET_ECLOSED);
  CHECK_EQ_INT(kmk_ws_connect(e.w, &(kmk_ws_opts){.url = "http://x/"}, NULL), KMK_NET_EINVAL);
  CHECK(env_close(&e));
}

static void test_close_inside_and_at_shutdown(void) {
  env e;
  env_init(&e);
  if (!e.w) return;
  st s = {.script = {"one", "two", "three", NULL}, .close_after = 1};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &s, 0), 0);
  run_until(&e, &s.msgs, 1);
  for (int i = 0; i < 20; i++) uv_run(&e.loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(s.msgs, 1);
  CHECK_EQ_INT(s.closes, 0); /* closed by us: no callback */
  /* open connections at shutdown: no callbacks, every handle closed */
  st x = {0}, y = {0};
  CHECK_EQ_INT(conn(&e, "/ws/echo", &x, 0), 0);
  CHECK_EQ_INT(conn(&e, "/ws/echo", &y, 0), 0);
  run_until(&e, &y.opens, 1);
  CHECK(env_close(&e));
  CHECK_EQ_INT(x.closes + y.closes, 0);
}

int main(void) {
  g_port = kmk_peer_start(NULL);
  if (!g_port) return 0;
  RUN(test_echo);
  RUN(test_resolved_name);
  RUN(test_refused_and_failures);
  RUN(test_close_inside_and_at_shutdown);
  kmk_peer_stop();
  return check_done();
}
