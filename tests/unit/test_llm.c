/* test_llm.c - the streamed-decision sentence scanner (pure) and the OpenAI-compatible chat client
 * against the loopback OpenRouter-like peer: streaming, \r\n, comments, usage, [DONE] missing,
 * mid-stream errors (both shapes), 429 + Retry-After, 5xx retry, 401/402/403 fatal, stalled and
 * truncated streams, malformed JSON, first-token deadline, cancel, circuit breaker, no key in logs. */
#include <fcntl.h>
#include <uv.h>

#include "check.h"
#include "kameko/brain.h"
#include "kameko/cloud.h"
#include "kameko/log.h"
#include "test_net_peer.h"

/* ---- scanner ---- */
typedef struct {
  int n;
  char s[8][256];
} sents;
static void sent_cb(void *ud, const char *s, size_t n, int idx) {
  sents *x = ud;
  if (x->n < 8) snprintf(x->s[x->n], sizeof x->s[0], "%.*s", (int)n, s);
  x->n++;
}

static void scan_all(const char *text, size_t step, sents *x) {
  kmk_sentence_scanner s;
  memset(x, 0, sizeof *x);
  kmk_sscan_init(&s, sent_cb, x);
  size_t n = strlen(text);
  for (size_t i = 0; i < n; i += step) kmk_sscan_feed(&s, text + i, i + step > n ? n - i : step);
  kmk_sscan_free(&s);
}

static void test_scanner(void) {
  sents x;
  const char *j = "{\"thought\":\"a. b! c?\",\"should_speak\":true,\"response\":\"Hello there! I am "
                  "Kameko, nice to meet you. What shall we talk about?\"}";
  for (size_t step = 1; step <= 7; step += 3) {
    scan_all(j, step, &x);
    CHECK_EQ_INT(x.n, 3);
    CHECK_STR(x.s[0], "Hello there!");
    CHECK_STR(x.s[1], "I am Kameko, nice to meet you.");
    CHECK_STR(x.s[2], "What shall we talk about?");
  }
  /* fences + prose, escapes, Cyrillic, surrogate pair, abbreviation, ellipsis */
  scan_all("Sure:\n```json\n{\"response\": \"\\u041f\\u0440\\u0438\\u0432\\u0435\\u0442! "
           "Dr. Smith said \\\"hi\\\"\\u2026 ok \\ud83d\\ude00 fine\", \"should_speak\": true}\n```",
           2, &x);
  CHECK_EQ_INT(x.n, 3);
  CHECK_STR(x.s[0], "Привет!");
  CHECK_STR(x.s[1], "Dr. Smith said \"hi\"…");
  CHECK_STR(x.s[2], "ok \xF0\x9F\x98\x80 fine");
  /* should_speak false first: nothing spoken */
  scan_all("{\"should_speak\": false, \"response\": \"Nope. Not me.\"}", 1, &x);
  CHECK_EQ_INT(x.n, 0);
  /* nested objects and a "response" key deeper down are ignored */
  scan_all("{\"meta\":{\"response\":\"Inner. Text.\"},\"response\":\"Outer one.\"}", 4, &x);
  CHECK_EQ_INT(x.n, 1);
  CHECK_STR(x.s[0], "Outer one.");
  /* decimals and no trailing space: one sentence at the end of the string */
  scan_all("{\"response\":\"Pi is 3.14 roughly\"}", 1, &x);
  CHECK_EQ_INT(x.n, 1);
  CHECK_STR(x.s[0], "Pi is 3.14 roughly");
  /* garbage never crashes */
  scan_all("}}}]]\"\\u12", 1, &x);
  CHECK_EQ_INT(x.n, 0);
}

/* ---- client ---- */
static int g_port;
typedef struct {
  int done, err, deltas, sentences, attempts, pt, ct;
  long status;
  char text[2048], first[256], msg[256], finish[24];
  double first_sentence_ms, total_ms, first_token_ms;
  int cancel_at_sentence;
  kmk_llm_req *req;
  int sentence_before_done;
} llm_res;

static void on_delta(void *ud, const char *t, size_t n) { ((llm_res *)ud)->deltas++; }
static void on_sent(void *ud, const char *s, size_t n, int idx) {
  llm_res *x = ud;
  if (idx == 0) snprintf(x->first, sizeof x->first, "%.*s", (int)n, s);
  x->sentences++;
  if (!x->done) x->sentence_before_done = 1;
  if (x->cancel_at_sentence && x->sentences == x->cancel_at_sentence) kmk_llm_cancel(x->req);
}
static void on_done(void *ud, const kmk_llm_result *r) {
  llm_res *x = ud;
  x->done++;
  x->err = r->err;
  x->status = r->http_status;
  x->attempts = r->attempts;
  x->pt = r->prompt_tokens;
  x->ct = r->completion_tokens;
  x->first_sentence_ms = r->first_sentence_ms;
  x->first_token_ms = r->first_token_ms;
  x->total_ms = r->total_ms;
  snprintf(x->text, sizeof x->text, "%s", r->text);
  snprintf(x->msg, sizeof x->msg, "%s", r->message);
  snprintf(x->finish, sizeof x->finish, "%s", r->finish_reason);
}

static const kmk_llm_callbacks CBS = {on_delta, on_sent, on_done};
static const char *MSGS = "[{\"role\":\"system\",\"content\":\"You are Kameko.\"},"
                          "{\"role\":\"user\",\"content\":\"hi\"}]";

typedef struct {
  uv_loop_t loop;
  kmk_http *http;
  kmk_llm *llm;
} env;

static void env_init(env *e, const char *mode, const char *key, const kmk_cloud_policy *pol) {
  uv_loop_init(&e->loop);
  e->http = kmk_http_new(&e->loop);
  char base[256];
  if (mode) snprintf(base, sizeof base, "http://127.0.0.1:%d/m/%s/", g_port, mode);
  else snprintf(base, sizeof base, "http://127.0.0.1:%d", g_port);
  kmk_llm_opts o = {.base_url = base, .api_key = key ? key : "test-key", .model = "meta-llama/x",
                    .referer = "https://kameko.local", .title = "Kameko"};
  if (pol) o.policy = *pol;
  e->llm = kmk_llm_new(e->http, &o);
}
static int env_close(env *e) {
  kmk_llm_free(e->llm);
  kmk_http_close(e->http, NULL, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&e->loop) == 0;
}
static int chat(env *e, const kmk_llm_chat_opts *o, llm_res *x) {
  int rc = kmk_llm_chat(e->llm, MSGS, o, &CBS, x, &x->req);
  if (rc) return rc;
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return 0;
}

static void check_decision(const char *text) {
  kmk_decision d;
  char err[200];
  CHECK_EQ_INT(kmk_decision_parse_llm(text, strlen(text), 0, "en", &d, err, sizeof err), 0);
  CHECK_EQ_INT(d.should_speak, 1);
  CHECK(d.response && strstr(d.response, "Hello there!") == d.response);
  kmk_decision_clear(&d);
}

static void test_stream_ok(void) {
  const char *modes[] = {NULL, "crlf", "nodone"};
  for (int i = 0; i < 3; i++) {
    env e;
    env_init(&e, modes[i], NULL, NULL);
    llm_res x = {0};
    kmk_llm_chat_opts co = {.temperature = 0.7, .max_tokens = 200, .json_mode = KMK_LLM_JSON_OBJECT};
    CHECK_EQ_INT(chat(&e, &co, &x), 0);
    CHECK_EQ_INT(x.done, 1);
    CHECK_EQ_INT(x.err, 0);
    CHECK_EQ_INT(x.status, 200);
    CHECK(x.deltas > 10);
    CHECK_EQ_INT(x.sentences, 3);
    CHECK_STR(x.first, "Hello there!");
    CHECK(x.sentence_before_done);
    CHECK(x.first_sentence_ms >= 0 && x.first_sentence_ms <= x.total_ms);
    CHECK_STR(x.finish, "stop");
    CHECK_EQ_INT(x.pt, 42);
    CHECK(x.ct > 10);
    check_decision(x.text);
    CHECK(env_close(&e));
  }
}

static void test_no_stream_and_request_shape(void) {
  env e;
  env_init(&e, NULL, NULL, NULL);
  llm_res x = {0};
  kmk_llm_chat_opts co = {.temperature = -1, .no_stream = 1, .json_mode = KMK_LLM_JSON_SCHEMA,
                          .json_schema = "{\"type\":\"object\"}", .require_parameters = 1};
  CHECK_EQ_INT(chat(&e, &co, &x), 0);
  CHECK_EQ_INT(x.err, 0);
  CHECK_EQ_INT(x.sentences, 3);
  check_decision(x.text);
  CHECK(env_close(&e));
}

static void test_response_format_refused(void) {
  env e;
  env_init(&e, "noformat", NULL, NULL);
  llm_res x = {0};
  kmk_llm_chat_opts co = {.temperature = -1, .json_mode = KMK_LLM_JSON_OBJECT, .require_parameters = 1};
  CHECK_EQ_INT(chat(&e, &co, &x), 0);
  CHECK_EQ_INT(x.err, 0);
  CHECK_EQ_INT(x.attempts, 2);
  CHECK_EQ_INT(x.sentences, 3);
  CHECK(env_close(&e));
}

static void test_fatal_statuses(void) {
  const char *modes[] = {"401", "402", "403"};
  for (int i = 0; i < 3; i++) {
    env e;
    env_init(&e, modes[i], "sk-or-v1-SECRETSECRET", NULL);
    /* capture our log lines: the key must never appear */
    fflush(stderr);
    int saved = dup(2);
    char path[] = "/tmp/kmk_llm_logXXXXXX";
    int fd = mkstemp(path);
    dup2(fd, 2);
    llm_res x = {0};
    CHECK_EQ_INT(chat(&e, NULL, &x), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = {0};
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(path);
    CHECK(n > 0);
    CHECK(strstr(buf, "SECRETSECRET") == NULL);
    CHECK(strstr(buf, modes[i]) != NULL);
    CHECK_EQ_INT(x.err, KMK_NET_EAUTH);
    CHECK_EQ_INT(x.attempts, 1);
    const char *msg;
    CHECK_EQ_INT(kmk_llm_fatal(e.llm, &msg), atoi(modes[i]));
    CHECK(strstr(msg, "LLM provider disabled") != NULL);
    CHECK(!kmk_llm_available(e.llm));
    llm_res y = {0};
    CHECK_EQ_INT(kmk_llm_chat(e.llm, MSGS, NULL, &CBS, &y, NULL), KMK_NET_EAUTH);
    CHECK(env_close(&e));
    CHECK_EQ_INT(y.done, 0);
  }
}

static void test_retries(void) {
  env e;
  /* 429 once (Retry-After: 1) then success */
  env_init(&e, "a:429,ok", NULL, NULL);
  llm_res x = {0};
  CHECK_EQ_INT(chat(&e, NULL, &x), 0);
  CHECK_EQ_INT(x.err, 0);
  CHECK_EQ_INT(x.attempts, 2);
  CHECK_EQ_INT(x.sentences, 3);
  CHECK(env_close(&e));
  /* Retry-After longer than we wait: fail at once, fall back */
  env_init(&e, "429long", NULL, NULL);
  llm_res y = {0};
  uint64_t t0 = uv_hrtime();
  CHECK_EQ_INT(chat(&e, NULL, &y), 0);
  CHECK_EQ_INT(y.err, KMK_NET_ERATELIMIT);
  CHECK_EQ_INT(y.attempts, 1);
  CHECK((uv_hrtime() - t0) / 1e6 < 1500);
  CHECK(strstr(y.msg, "Retry-After") != NULL);
  CHECK(env_close(&e));
  /* 503, 500 then success */
  env_init(&e, "b:503,500,ok", NULL, NULL);
  llm_res z = {0};
  CHECK_EQ_INT(chat(&e, NULL, &z), 0);
  CHECK_EQ_INT(z.err, 0);
  CHECK_EQ_INT(z.attempts, 3);
  CHECK(env_close(&e));
  /* always 500: gives up after max_retries */
  kmk_cloud_policy pol = {.max_retries = 2, .backoff_base_ms = 20};
  env_init(&e, "500", NULL, &pol);
  llm_res w = {0};
  CHECK_EQ_INT(chat(&e, NULL, &w), 0);
  CHECK_EQ_INT(w.err, KMK_NET_ESERVER);
  CHECK_EQ_INT(w.attempts, 3);
  CHECK(strstr(w.msg, "HTTP 500") != NULL);
  CHECK(env_close(&e));
}

static void test_stream_failures(void) {
  struct {
    const char *mode;
    int err;
    const char *msg;
  } cases[] = {
      {"midstream_or", KMK_NET_ESERVER, "Provider disconnected"},
      {"midstream_lone", KMK_NET_ESERVER, "The model crashed"},
      {"stall", KMK_NET_ESTALLED, "stalled"},
      {"truncate", 0, NULL},
      {"malformed", KMK_NET_EPROTO, "malformed"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    env e;
    kmk_cloud_policy pol = {.max_retries = 2, .backoff_base_ms = 20,
                            .stall_ms = strcmp(cases[i].mode, "stall") == 0 ? 300 : 3000};
    env_init(&e, cases[i].mode, NULL, &pol);
    llm_res x = {0};
    CHECK_EQ_INT(chat(&e, NULL, &x), 0);
    CHECK_EQ_INT(x.done, 1);
    if (cases[i].err) CHECK_EQ_INT(x.err, cases[i].err);
    else CHECK(x.err == KMK_NET_ECONNECT || x.err == KMK_NET_EPROTO);
    if (cases[i].msg && !strstr(x.msg, cases[i].msg))
      fprintf(stderr, "case %s: message '%s'\n", cases[i].mode, x.msg);
    if (cases[i].msg) CHECK(strstr(x.msg, cases[i].msg) != NULL);
    CHECK_EQ_INT(x.attempts, 1); /* text was already streamed: never restarted */
    CHECK(strlen(x.text) > 0);
    CHECK(env_close(&e));
  }
}

static void test_first_token_deadline(void) {
  env e;
  kmk_cloud_policy pol = {.max_retries = -1, .first_byte_ms = 400};
  env_init(&e, "slowfirst", NULL, &pol);
  llm_res x = {0};
  uint64_t t0 = uv_hrtime();
  CHECK_EQ_INT(chat(&e, NULL, &x), 0);
  double ms = (uv_hrtime() - t0) / 1e6;
  CHECK_EQ_INT(x.err, KMK_NET_ETIMEDOUT);
  CHECK(ms >= 380 && ms < 2400); /* the peer's first token comes at 2500 ms */
  CHECK(env_close(&e));
}

static void test_cancel(void) {
  env e;
  env_init(&e, NULL, NULL, NULL);
  llm_res x = {.cancel_at_sentence = 1};
  CHECK_EQ_INT(chat(&e, NULL, &x), 0);
  CHECK_EQ_INT(x.sentences, 1);
  CHECK_EQ_INT(x.done, 0);
  CHECK_EQ_INT(kmk_http_active(e.http), 0);
  /* cancel right after issuing, and requests left at free are cancelled silently */
  llm_res y = {0}, z = {0};
  CHECK_EQ_INT(kmk_llm_chat(e.llm, MSGS, NULL, &CBS, &y, &y.req), 0);
  kmk_llm_cancel(y.req);
  CHECK_EQ_INT(kmk_llm_chat(e.llm, MSGS, NULL, &CBS, &z, &z.req), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  CHECK(env_close(&e));
  CHECK_EQ_INT(y.done + z.done, 0);
}

static void test_breaker(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_http *http = kmk_http_new(&loop);
  kmk_llm_opts o = {.base_url = "http://127.0.0.1:1/v1", .api_key = "k", .model = "m",
                    .policy = {.max_retries = -1, .breaker_threshold = 2, .breaker_cooldown_s = 60}};
  kmk_llm *l = kmk_llm_new(http, &o);
  for (int i = 0; i < 2; i++) {
    llm_res x = {0};
    CHECK_EQ_INT(kmk_llm_chat(l, MSGS, NULL, &CBS, &x, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(x.err, KMK_NET_ECONNECT);
  }
  CHECK(!kmk_llm_available(l));
  llm_res y = {0};
  uint64_t t0 = uv_hrtime();
  CHECK_EQ_INT(kmk_llm_chat(l, MSGS, NULL, &CBS, &y, NULL), KMK_NET_EOPEN);
  CHECK((uv_hrtime() - t0) / 1e6 < 50); /* no network: refused at once */
  kmk_llm_free(l);
  kmk_http_close(http, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* With the peer's injected latency (first token 200 ms, then 250 tokens/s), how long after the
 * request does the first complete sentence reach us, and how much of the first-token time is ours
 * (curl + SSE + JSON on loopback) rather than the injected 200 ms? Printed as figures. */
static void test_latency_figures(void) {
  enum { N = 12 };
  double tok[N], sen[N];
  env e;
  env_init(&e, NULL, NULL, NULL);
  int ok = 0;
  for (int i = 0; i < N; i++) {
    llm_res x = {0};
    CHECK_EQ_INT(chat(&e, NULL, &x), 0);
    CHECK_EQ_INT(x.err, 0);
    CHECK(x.first_token_ms >= 195);
    tok[ok] = x.first_token_ms - 200;
    sen[ok] = x.first_sentence_ms;
    ok++;
  }
  qsort(tok, ok, sizeof tok[0], cmp_d);
  qsort(sen, ok, sizeof sen[0], cmp_d);
  printf("figure: llm first token minus injected 200 ms: p50 %.1f ms, p95 %.1f ms (n=%d)\n",
         tok[ok / 2], tok[(ok * 95) / 100], ok);
  printf("figure: llm first sentence (\"Hello there!\", 200 ms + 250 tok/s): p50 %.1f ms, p95 %.1f ms\n",
         sen[ok / 2], sen[(ok * 95) / 100]);
  CHECK(env_close(&e));
}

int main(void) {
  RUN(test_scanner);
  g_port = kmk_peer_start(NULL);
  if (g_port) {
    RUN(test_stream_ok);
    RUN(test_no_stream_and_request_shape);
    RUN(test_response_format_refused);
    RUN(test_fatal_statuses);
    RUN(test_retries);
    RUN(test_stream_failures);
    RUN(test_first_token_deadline);
    RUN(test_cancel);
    RUN(test_breaker);
    kmk_peer_stop();
    const char *lat[] = {"--llm-first-ms", "200", "--llm-tps", "250", NULL};
    g_port = kmk_peer_start(lat);
    if (g_port) {
      RUN(test_latency_figures);
      kmk_peer_stop();
    }
  }
  return check_done();
}
