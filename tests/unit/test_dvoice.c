/* test_dvoice.c - the voice connection's lifecycle without a server: bad options refused with a
 * reason, a refused connection reported and retried with backoff (never a tight loop), close
 * while a retry is pending (closed callback runs once, no handle left: uv_loop_close succeeds),
 * close right after creation, NULL safety. The protocol itself is covered by
 * tests/e2e/test_discord_voice.c against the peer. */
#include <stdlib.h>
#include <uv.h>

#include "check.h"
#include "kameko/discord_voice.h"
#include "kameko/log.h"

static int states, closed_calls, last_state = -1;
static void on_state(void *ud, kmk_dvoice_state st, int code, const char *why) {
  (void)ud;
  (void)code;
  (void)why;
  states++;
  last_state = (int)st;
}
static void closed(void *ud) {
  (void)ud;
  closed_calls++;
}

static kmk_dvoice_opts opts(uv_loop_t *loop, const char *endpoint) {
  kmk_dvoice_opts o = {.loop = loop, .endpoint = endpoint, .plain_ws = 1, .guild_id = "1",
                       .channel_id = "2", .user_id = "3", .session_id = "s", .token = "secret",
                       .on_state = on_state};
  return o;
}

static void test_bad_options(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  char err[128] = "";
  kmk_dvoice_opts o = opts(&loop, "");
  CHECK(kmk_dvoice_new(&o, err, sizeof err) == NULL);
  CHECK(strstr(err, "endpoint") != NULL);
  o = opts(NULL, "127.0.0.1:1");
  CHECK(kmk_dvoice_new(&o, err, sizeof err) == NULL);
  o = opts(&loop, "127.0.0.1:1");
  o.token = NULL;
  CHECK(kmk_dvoice_new(&o, err, sizeof err) == NULL);
  CHECK(kmk_dvoice_new(NULL, err, sizeof err) == NULL);
  kmk_dvoice_close(NULL, closed, NULL);
  CHECK_EQ_INT(closed_calls, 0);
  CHECK_EQ_INT(kmk_dvoice_get_state(NULL), KMK_DVOICE_CLOSED);
  kmk_dvoice_set_mute(NULL, 1);
  kmk_dvoice_stats s;
  kmk_dvoice_get_stats(NULL, &s);
  CHECK_EQ_INT(s.rx_packets, 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_refused_then_close(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* a port nobody listens on: the connection is refused */
  uv_tcp_t probe;
  struct sockaddr_in a;
  uv_tcp_init(&loop, &probe);
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&probe, (const struct sockaddr *)&a, 0);
  int len = sizeof a;
  uv_tcp_getsockname(&probe, (struct sockaddr *)&a, &len);
  uv_close((uv_handle_t *)&probe, NULL); /* freed: the port is now closed */
  uv_run(&loop, UV_RUN_NOWAIT);
  char ep[64];
  snprintf(ep, sizeof ep, "127.0.0.1:%d", ntohs(a.sin_port));
  kmk_dvoice_opts o = opts(&loop, ep);
  char err[128];
  states = 0;
  closed_calls = 0;
  kmk_dvoice *v = kmk_dvoice_new(&o, err, sizeof err);
  CHECK(v != NULL);
  CHECK_EQ_INT(kmk_dvoice_get_state(v), KMK_DVOICE_CONNECTING);
  /* wait for the refusal: reported as CONNECTING again (retrying), with a backoff timer */
  uint64_t t0 = uv_hrtime();
  while (states == 0 && uv_hrtime() - t0 < 10000000000ull) uv_run(&loop, UV_RUN_ONCE);
  CHECK(states >= 1);
  CHECK_EQ_INT(last_state, KMK_DVOICE_CONNECTING);
  /* within the first backoff (>= 0.4 s) there is no second attempt storm */
  int before = states;
  uint64_t t1 = uv_hrtime();
  while (uv_hrtime() - t1 < 200000000ull) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(states - before <= 1);
  kmk_dvoice_close(v, closed, NULL);
  kmk_dvoice_close(v, closed, NULL); /* second call ignored (v is still alive until closed) */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(closed_calls, 1);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_close_at_once(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_dvoice_opts o = opts(&loop, "127.0.0.1:9");
  char err[128];
  closed_calls = 0;
  kmk_dvoice *v = kmk_dvoice_new(&o, err, sizeof err);
  CHECK(v != NULL);
  kmk_dvoice_set_mute(v, 1);
  CHECK_EQ_INT(kmk_dvoice_ssrc(v), 0);
  kmk_dvoice_close(v, closed, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(closed_calls, 1);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  RUN(test_bad_options);
  RUN(test_refused_then_close);
  RUN(test_close_at_once);
  return check_done();
}
