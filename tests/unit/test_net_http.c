/* test_net_http.c - kmk_http on a real libuv loop against the loopback peer: GET/POST, multipart,
 * streaming, deadlines (total, first byte, stall), cancel (outside and inside callbacks), lanes,
 * delayed start, connect failure, truncation, and that every handle is closed at the end. */
#include <uv.h>

#include "check.h"
#include "kameko/net.h"
#include "test_net_peer.h"

static int g_port;

typedef struct {
  int done, err, chunks, aborted_at;
  long status;
  size_t len;
  double ms;
  char body[4096];
  char hdr[128];
} result;

static void on_done(void *ud, kmk_http_req *req, int err, const kmk_http_resp *r) {
  result *x = ud;
  x->done++;
  x->err = err;
  x->status = r->status;
  x->ms = r->total_ms;
  if (r->body) {
    x->len = r->body_len;
    snprintf(x->body, sizeof x->body, "%s", r->body);
  }
  kmk_http_header(r, "retry-after", x->hdr, sizeof x->hdr);
}

static int on_data(void *ud, kmk_http_req *req, const kmk_http_resp *r, const char *d, size_t n) {
  result *x = ud;
  x->chunks++;
  x->len += n;
  x->status = r->status;
  if (x->aborted_at && x->chunks >= x->aborted_at) {
    kmk_http_cancel(req); /* cancel inside our own data callback */
    return 1;
  }
  return 0;
}

static void url(char *out, size_t n, const char *path) {
  snprintf(out, n, "http://127.0.0.1:%d%s", g_port, path);
}

typedef struct {
  uv_loop_t loop;
  kmk_http *h;
  int closed;
} env;

static void env_init(env *e) {
  uv_loop_init(&e->loop);
  e->h = kmk_http_new(&e->loop);
  e->closed = 0;
}
static void closed_cb(void *ud) { ((env *)ud)->closed = 1; }
static int env_close(env *e) {
  kmk_http_close(e->h, closed_cb, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&e->loop) == 0 && e->closed;
}

static int simple(env *e, kmk_http_opts *o, result *x) {
  o->on_done = on_done;
  o->ud = x;
  int rc = kmk_http_request(e->h, o, NULL);
  if (rc) return rc;
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return 0;
}

static void test_get_and_post(void) {
  env e;
  env_init(&e);
  char u[256];
  result x = {0};
  url(u, sizeof u, "/bytes?n=200000");
  kmk_http_opts o = {.url = u};
  CHECK_EQ_INT(simple(&e, &o, &x), 0);
  CHECK_EQ_INT(x.done, 1);
  CHECK_EQ_INT(x.err, 0);
  CHECK_EQ_INT(x.status, 200);
  CHECK_EQ_INT(x.len, 200000);

  result y = {0};
  url(u, sizeof u, "/echo");
  const char *hdrs[] = {"Content-Type: application/json", "X-Test: yes", NULL};
  kmk_http_opts p = {.url = u, .headers = hdrs, .body = "{\"a\":1}", .body_len = 7};
  CHECK_EQ_INT(simple(&e, &p, &y), 0);
  CHECK_EQ_INT(y.status, 200);
  CHECK(strstr(y.body, "\"method\":\"POST\"") != NULL);
  CHECK(strstr(y.body, "\"x-test\":\"yes\"") != NULL);
  CHECK(strstr(y.body, "\"length\":7") != NULL);

  /* multipart form */
  result z = {0};
  kmk_http_part parts[] = {{"model", "m1", 2, NULL, NULL},
                           {"file", "RIFFxxxx", 8, "a.wav", "audio/wav"}};
  kmk_http_opts q = {.url = u, .parts = parts, .n_parts = 2};
  CHECK_EQ_INT(simple(&e, &q, &z), 0);
  CHECK_EQ_INT(z.status, 200);
  CHECK(strstr(z.body, "multipart/form-data; boundary=") != NULL);
  CHECK(strstr(z.body, "filename=\\\"a.wav\\\"") != NULL);
  CHECK(strstr(z.body, "Content-Type: audio/wav") != NULL);

  /* error status with Retry-After is a response, not an error */
  result w = {0};
  url(u, sizeof u, "/status/429?retry_after=3");
  kmk_http_opts r = {.url = u};
  CHECK_EQ_INT(simple(&e, &r, &w), 0);
  CHECK_EQ_INT(w.err, 0);
  CHECK_EQ_INT(w.status, 429);
  CHECK_STR(w.hdr, "3");
  CHECK(strstr(w.body, "\"error\"") != NULL);
  CHECK(env_close(&e));
}

static void test_streaming(void) {
  env e;
  env_init(&e);
  char u[256];
  url(u, sizeof u, "/drip?n=6&ms=15");
  result x = {0};
  kmk_http_opts o = {.url = u, .on_data = on_data};
  CHECK_EQ_INT(simple(&e, &o, &x), 0);
  CHECK_EQ_INT(x.err, 0);
  CHECK(x.chunks >= 3);
  CHECK_EQ_INT(x.len, 6 * 7);
  /* abort from inside on_data: no on_done */
  result y = {.aborted_at = 2};
  kmk_http_opts p = {.url = u, .on_data = on_data};
  CHECK_EQ_INT(simple(&e, &p, &y), 0);
  CHECK_EQ_INT(y.done, 0);
  CHECK_EQ_INT(y.chunks, 2);
  CHECK_EQ_INT(kmk_http_active(e.h), 0);
  CHECK(env_close(&e));
}

static void test_deadlines(void) {
  env e;
  env_init(&e);
  char u[256];
  url(u, sizeof u, "/slow?ms=3000");
  result x = {0};
  kmk_http_opts o = {.url = u, .timeout_ms = 200};
  CHECK_EQ_INT(simple(&e, &o, &x), 0);
  CHECK_EQ_INT(x.err, KMK_NET_ETIMEDOUT);
  CHECK(x.ms >= 190 && x.ms < 2000); /* upper bounds are loose: shared, busy machines */

  result y = {0};
  kmk_http_opts p = {.url = u, .first_byte_ms = 150};
  CHECK_EQ_INT(simple(&e, &p, &y), 0);
  CHECK_EQ_INT(y.err, KMK_NET_ETIMEDOUT);
  CHECK(y.ms < 2000);

  result z = {0};
  url(u, sizeof u, "/stall");
  kmk_http_opts q = {.url = u, .stall_ms = 200};
  CHECK_EQ_INT(simple(&e, &q, &z), 0);
  CHECK_EQ_INT(z.err, KMK_NET_ESTALLED);
  CHECK_EQ_INT(z.status, 200);
  CHECK(z.ms >= 190 && z.ms < 2000);

  result t = {0};
  url(u, sizeof u, "/truncate");
  kmk_http_opts r = {.url = u};
  CHECK_EQ_INT(simple(&e, &r, &t), 0);
  CHECK(t.err == KMK_NET_EPROTO || t.err == KMK_NET_ECONNECT);

  result c = {0};
  kmk_http_opts s = {.url = "http://127.0.0.1:1/x"};
  CHECK_EQ_INT(simple(&e, &s, &c), 0);
  CHECK_EQ_INT(c.err, KMK_NET_ECONNECT);
  CHECK_EQ_INT(c.status, 0);

  result b = {0};
  url(u, sizeof u, "/bytes?n=100000");
  kmk_http_opts m = {.url = u, .max_body = 1000};
  CHECK_EQ_INT(simple(&e, &m, &b), 0);
  CHECK_EQ_INT(b.err, KMK_NET_ETOOBIG);
  CHECK(env_close(&e));
}

static void cancel_timer_cb(uv_timer_t *t) {
  kmk_http_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void) {
  env e;
  env_init(&e);
  char u[256];
  url(u, sizeof u, "/slow?ms=5000");
  result x = {0};
  kmk_http_req *req = NULL;
  kmk_http_opts o = {.url = u, .on_done = on_done, .ud = &x};
  CHECK_EQ_INT(kmk_http_request(e.h, &o, &req), 0);
  CHECK(req != NULL);
  uv_timer_t t;
  uv_timer_init(&e.loop, &t);
  t.data = req;
  uv_timer_start(&t, cancel_timer_cb, 100, 0);
  uint64_t t0 = uv_hrtime();
  uv_run(&e.loop, UV_RUN_DEFAULT);
  double ms = (uv_hrtime() - t0) / 1e6;
  CHECK_EQ_INT(x.done, 0);
  CHECK(ms < 3000);
  CHECK_EQ_INT(kmk_http_active(e.h), 0);
  /* requests still running at close are cancelled without callbacks */
  result y = {0};
  kmk_http_opts p = {.url = u, .on_done = on_done, .ud = &y};
  CHECK_EQ_INT(kmk_http_request(e.h, &p, NULL), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  CHECK(env_close(&e));
  CHECK_EQ_INT(y.done, 0);
}

typedef struct {
  kmk_http_lane *lane;
  int max_running, done;
  uint64_t t_done[8];
} lane_obs;
static lane_obs g_obs;

static void lane_done(void *ud, kmk_http_req *req, int err, const kmk_http_resp *r) {
  int running = kmk_http_lane_running(g_obs.lane);
  if (running > g_obs.max_running) g_obs.max_running = running;
  g_obs.t_done[g_obs.done++] = uv_hrtime();
}

static void test_lane_and_delay(void) {
  env e;
  env_init(&e);
  char u[256];
  url(u, sizeof u, "/slow?ms=150");
  memset(&g_obs, 0, sizeof g_obs);
  g_obs.lane = kmk_http_lane_new(e.h, "test", 2, 1);
  kmk_http_opts o = {.url = u, .lane = g_obs.lane, .on_done = lane_done};
  CHECK_EQ_INT(kmk_http_request(e.h, &o, NULL), 0);
  CHECK_EQ_INT(kmk_http_request(e.h, &o, NULL), 0);
  CHECK_EQ_INT(kmk_http_request(e.h, &o, NULL), 0); /* queued */
  CHECK_EQ_INT(kmk_http_lane_running(g_obs.lane), 2);
  CHECK_EQ_INT(kmk_http_lane_queued(g_obs.lane), 1);
  CHECK_EQ_INT(kmk_http_request(e.h, &o, NULL), KMK_NET_EBUSY);
  uint64_t t0 = uv_hrtime();
  uv_run(&e.loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(g_obs.done, 3);
  CHECK(g_obs.max_running <= 2);
  /* the queued one finished a full request later */
  CHECK((g_obs.t_done[2] - t0) / 1e6 >= 290);
  CHECK_EQ_INT(kmk_http_lane_running(g_obs.lane), 0);

  /* delayed start */
  result x = {0};
  url(u, sizeof u, "/bytes?n=10");
  kmk_http_opts d = {.url = u, .delay_ms = 200, .on_done = on_done, .ud = &x};
  t0 = uv_hrtime();
  CHECK_EQ_INT(kmk_http_request(e.h, &d, NULL), 0);
  uv_run(&e.loop, UV_RUN_DEFAULT);
  double ms = (uv_hrtime() - t0) / 1e6;
  CHECK_EQ_INT(x.done, 1);
  CHECK(ms >= 190);
  CHECK(env_close(&e));
}

static void test_many_parallel(void) {
  env e;
  env_init(&e);
  char u[256];
  url(u, sizeof u, "/bytes?n=5000");
  result xs[40];
  memset(xs, 0, sizeof xs);
  for (int i = 0; i < 40; i++) {
    kmk_http_opts o = {.url = u, .on_done = on_done, .ud = &xs[i]};
    CHECK_EQ_INT(kmk_http_request(e.h, &o, NULL), 0);
  }
  uv_run(&e.loop, UV_RUN_DEFAULT);
  int ok = 0;
  for (int i = 0; i < 40; i++) ok += xs[i].done == 1 && xs[i].err == 0 && xs[i].len == 5000;
  CHECK_EQ_INT(ok, 40);
  CHECK(env_close(&e));
}

int main(void) {
  g_port = kmk_peer_start(NULL);
  if (!g_port) return 0;
  RUN(test_get_and_post);
  RUN(test_streaming);
  RUN(test_deadlines);
  RUN(test_cancel);
  RUN(test_lane_and_delay);
  RUN(test_many_parallel);
  kmk_peer_stop();
  return check_done();
}
