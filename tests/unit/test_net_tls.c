/* test_net_tls.c - the TLS paths the real services use (https for Groq/OpenRouter, wss for Edge),
 * against the loopback peer serving a throw-away self-signed certificate for "localhost":
 * kmk_http over https (trusted CA file: ok; system CAs only: refused), kmk_ws over wss, and
 * Edge-TTS end to end over wss. Skips when openssl or the peer's node_modules is missing. */
#include <stdlib.h>
#include <uv.h>

#include "check.h"
#include "kameko/cloud.h"
#include "test_net_peer.h"

static int g_port;
static char g_dir[] = "/tmp/kmk_tlsXXXXXX";
static char g_cert[128], g_key[128];

typedef struct {
  int done, err;
  long status;
  size_t len;
} hres;
static void h_done(void *ud, kmk_http_req *r, int err, const kmk_http_resp *resp) {
  hres *x = ud;
  x->done++;
  x->err = err;
  x->status = resp->status;
  x->len = resp->body_len;
}

static void test_https(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_http *h = kmk_http_new(&loop);
  char u[128];
  snprintf(u, sizeof u, "https://localhost:%d/bytes?n=1000", g_port);
  hres a = {0}, b = {0};
  kmk_http_opts o = {.url = u, .ca_file = g_cert, .on_done = h_done, .ud = &a};
  CHECK_EQ_INT(kmk_http_request(h, &o, NULL), 0);
  kmk_http_opts p = {.url = u, .on_done = h_done, .ud = &b}; /* not trusted */
  CHECK_EQ_INT(kmk_http_request(h, &p, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(a.err, 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(a.len, 1000);
  CHECK_EQ_INT(b.err, KMK_NET_ECONNECT);
  kmk_http_close(h, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

typedef struct {
  int opens, msgs, closes, err;
  char last[64];
} wres;
static void w_open(void *ud, kmk_ws_conn *c) {
  ((wres *)ud)->opens++;
  kmk_ws_send(c, "over tls", 8, 0);
}
static void w_msg(void *ud, kmk_ws_conn *c, const void *d, size_t n, int bin) {
  wres *x = ud;
  x->msgs++;
  snprintf(x->last, sizeof x->last, "%.*s", (int)n, (const char *)d);
  kmk_ws_send(c, "close", 5, 0);
}
static void w_close(void *ud, kmk_ws_conn *c, int err, int st, const char *date, const char *why) {
  wres *x = ud;
  x->closes++;
  x->err = err;
}

typedef struct {
  int done, err;
  size_t samples;
} eres;
static int e_pcm(void *ud, const int16_t *p, size_t n, int rate) {
  ((eres *)ud)->samples += n;
  return 0;
}
static void e_done(void *ud, const kmk_edge_result *r) {
  eres *x = ud;
  x->done++;
  x->err = r->err;
}

static void test_wss_and_edge(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_ws *w = kmk_ws_new_ca(&loop, g_cert);
  CHECK(w != NULL);
  if (!w) return;
  char url[160];
  snprintf(url, sizeof url, "wss://localhost:%d/ws/echo", g_port);
  wres x = {0};
  kmk_ws_opts o = {.url = url, .timeout_ms = 5000, .cb = {w_open, w_msg, w_close}, .ud = &x};
  CHECK_EQ_INT(kmk_ws_connect(w, &o, NULL), 0);
  for (int i = 0; i < 500 && !x.closes; i++) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(x.opens, 1);
  CHECK_STR(x.last, "over tls");
  CHECK_EQ_INT(x.err, 0);

  snprintf(url, sizeof url, "wss://localhost:%d/consumer/speech/synthesize/readaloud/edge/v1", g_port);
  kmk_edge_opts eo = {.url = url};
  kmk_edge *e = kmk_edge_new(w, &eo);
  eres y = {0};
  kmk_edge_callbacks cb = {e_pcm, e_done};
  kmk_mp3 *probe = kmk_mp3_new();
  if (!probe) {
    printf("skipped: edge over wss needs libmpg123\n");
  } else {
    kmk_mp3_free(probe);
    CHECK_EQ_INT(kmk_edge_tts_synth(e, "Hello over TLS.", "en-US-AriaNeural", NULL, &cb, &y, NULL), 0);
    for (int i = 0; i < 2000 && !y.done; i++) uv_run(&loop, UV_RUN_ONCE);
    CHECK_EQ_INT(y.err, 0);
    CHECK(y.samples > 10000);
  }
  kmk_edge_free(e);
  kmk_ws_close(w, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  if (!mkdtemp(g_dir)) return 0;
  snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
  snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
           "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
           g_key, g_cert);
  if (system(cmd) != 0) {
    printf("skipped: openssl could not make a test certificate\n");
    return 0;
  }
  const char *args[] = {"--tls-cert", g_cert, "--tls-key", g_key, NULL};
  g_port = kmk_peer_start(args);
  if (g_port) {
    RUN(test_https);
    RUN(test_wss_and_edge);
    kmk_peer_stop();
  }
  unlink(g_cert);
  unlink(g_key);
  rmdir(g_dir);
  return g_port ? check_done() : 0;
}
