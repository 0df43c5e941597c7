/* test_net_sse.c - pure network helpers: SSE parsing under every split, line-end style, comments
 * and limits; the circuit breaker's states; Retry-After parsing; backoff bounds. */
#include "check.h"
#include "kameko/net.h"

typedef struct {
  int n;
  char ev[16][128];
  int stop_at;
} evs;

static int ev_cb(void *ud, const char *d, size_t n) {
  evs *e = ud;
  if (e->n < 16) snprintf(e->ev[e->n], sizeof e->ev[0], "%.*s", (int)n, d);
  e->n++;
  return e->stop_at && e->n == e->stop_at ? 7 : 0;
}

static void feed_split(const char *s, size_t step, evs *e, kmk_sse *p) {
  memset(e, 0, sizeof *e);
  kmk_sse_init(p, 0, ev_cb, e);
  size_t n = strlen(s);
  for (size_t i = 0; i < n; i += step) kmk_sse_feed(p, s + i, i + step > n ? n - i : step);
}

static void test_sse(void) {
  const char *streams[] = {
      ": OPENROUTER PROCESSING\n\ndata: {\"a\":1}\n\ndata:{\"b\":2}\n\nevent: x\nid: 3\ndata: [DONE]\n\n",
      ": OPENROUTER PROCESSING\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\r\n\r\nevent: x\r\nid: 3\r\ndata: [DONE]\r\n\r\n",
      ": OPENROUTER PROCESSING\r\rdata: {\"a\":1}\r\rdata:{\"b\":2}\r\revent: x\rid: 3\rdata: [DONE]\r\r",
  };
  for (int k = 0; k < 3; k++)
    for (size_t step = 1; step < 9; step++) {
      evs e;
      kmk_sse p;
      feed_split(streams[k], step, &e, &p);
      CHECK_EQ_INT(e.n, 3);
      CHECK_STR(e.ev[0], "{\"a\":1}");
      CHECK_STR(e.ev[1], "{\"b\":2}");
      CHECK_STR(e.ev[2], "[DONE]");
      CHECK_EQ_INT(p.comments, 1);
      CHECK(!kmk_sse_pending(&p));
      kmk_sse_free(&p);
    }
  /* multi-line data joined with \n; an event without a blank line is pending (truncated) */
  evs e;
  kmk_sse p;
  feed_split("data: one\ndata: two\n\ndata: cut", 3, &e, &p);
  CHECK_EQ_INT(e.n, 1);
  CHECK_STR(e.ev[0], "one\ntwo");
  CHECK(kmk_sse_pending(&p));
  kmk_sse_free(&p);
  /* callback stop value is returned */
  memset(&e, 0, sizeof e);
  e.stop_at = 1;
  kmk_sse_init(&p, 0, ev_cb, &e);
  CHECK_EQ_INT(kmk_sse_feed(&p, "data: a\n\ndata: b\n\n", 18), 7);
  kmk_sse_free(&p);
  /* limits */
  memset(&e, 0, sizeof e);
  kmk_sse_init(&p, 64, ev_cb, &e);
  char big[200];
  memset(big, 'x', sizeof big);
  memcpy(big, "data: ", 6);
  CHECK_EQ_INT(kmk_sse_feed(&p, big, sizeof big), KMK_NET_EPROTO);
  kmk_sse_free(&p);
}

static void test_breaker(void) {
  kmk_breaker b;
  kmk_breaker_init(&b, 3, 10);
  CHECK(kmk_breaker_allow(&b, 0));
  kmk_breaker_failure(&b, 0);
  kmk_breaker_failure(&b, 1);
  CHECK(kmk_breaker_allow(&b, 1));
  kmk_breaker_success(&b); /* resets the count */
  for (int i = 0; i < 3; i++) kmk_breaker_failure(&b, 2);
  CHECK(kmk_breaker_is_open(&b, 5));
  CHECK(!kmk_breaker_allow(&b, 5));
  CHECK(!kmk_breaker_allow(&b, 11.9));
  CHECK(kmk_breaker_allow(&b, 12.1));  /* half-open probe */
  CHECK(!kmk_breaker_allow(&b, 12.2)); /* only one */
  kmk_breaker_failure(&b, 12.5);
  CHECK(!kmk_breaker_allow(&b, 20));
  CHECK(kmk_breaker_allow(&b, 23));
  kmk_breaker_success(&b);
  CHECK(kmk_breaker_allow(&b, 23));
  CHECK(!kmk_breaker_is_open(&b, 23));
}

static void test_retry_policy(void) {
  CHECK(kmk_http_status_retryable(429));
  CHECK(kmk_http_status_retryable(503));
  CHECK(kmk_http_status_retryable(408));
  CHECK(!kmk_http_status_retryable(401));
  CHECK(!kmk_http_status_retryable(400));
  CHECK_NEAR(kmk_http_parse_retry_after("3", 0), 3, 1e-9);
  CHECK_NEAR(kmk_http_parse_retry_after(" 1.5 ", 0), 1.5, 1e-9);
  CHECK_NEAR(kmk_http_parse_retry_after("x", 0), -1, 1e-9);
  CHECK_NEAR(kmk_http_parse_retry_after("", 0), -1, 1e-9);
  double t = kmk_http_date_to_unix("Thu, 01 Jan 2026 00:00:00 GMT");
  CHECK_NEAR(t, 1767225600, 0.5);
  CHECK_NEAR(kmk_http_parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", 1767225600), 30, 0.5);
  CHECK_NEAR(kmk_http_date_to_unix("garbage"), -1, 1e-9);
  CHECK_NEAR(kmk_backoff_ms(1, 100, 1000, 0.5), 100, 1e-6);
  CHECK_NEAR(kmk_backoff_ms(3, 100, 1000, 0.5), 400, 1e-6);
  CHECK_NEAR(kmk_backoff_ms(10, 100, 1000, 0.5), 1000, 1e-6);
  CHECK(kmk_backoff_ms(2, 100, 1000, 0.0) >= 160 - 1e-6);
  CHECK(kmk_backoff_ms(2, 100, 1000, 0.999) <= 240 + 1e-6);
  CHECK(strcmp(kmk_net_strerror(KMK_NET_ESTALLED), "stalled") == 0);
  CHECK_NEAR(kmk_parse_duration_s("7.66s"), 7.66, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s("2m59.56s"), 179.56, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s("1h2m3s"), 3723, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s("250ms"), 0.25, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s("12"), 12, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s("x"), -1, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s("5q"), -1, 1e-9);
  CHECK_NEAR(kmk_parse_duration_s(""), -1, 1e-9);
}

int main(void) {
  RUN(test_sse);
  RUN(test_breaker);
  RUN(test_retry_policy);
  return check_done();
}
