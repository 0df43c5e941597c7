/* test_groq.c - Groq STT: verbose_json parsing (pure) and the client against the loopback
 * Groq-like peer: multipart fields (model, language hint, verbose_json, WAV file), segment scores,
 * 429 + Retry-After, 5xx retry, 401 fatal, stall, malformed JSON, cancel, breaker. */
#include <math.h>
#include <uv.h>

#include "check.h"
#include "kameko/cloud.h"
#include "test_net_peer.h"

static void test_parse(void) {
  const char *j = "{\"task\":\"transcribe\",\"language\":\"russian\",\"duration\":1.5,"
                  "\"text\":\" Привет, мир \",\"segments\":[{\"id\":0,\"start\":0,\"end\":1.5,"
                  "\"text\":\" Привет, мир\",\"avg_logprob\":-0.2,\"compression_ratio\":1.1,"
                  "\"no_speech_prob\":0.01}],\"x_groq\":{\"id\":\"req_1\"}}";
  kmk_transcript t;
  kmk_groq_segment segs[4];
  int n;
  char lang[16];
  double dur;
  CHECK_EQ_INT(kmk_groq_parse(j, strlen(j), &t, segs, 4, &n, lang, sizeof lang, &dur), 0);
  CHECK_STR(t.text, "Привет, мир");
  CHECK_STR(t.lang, "ru");
  CHECK_STR(lang, "russian");
  CHECK_NEAR(dur, 1.5, 1e-9);
  CHECK_EQ_INT(n, 1);
  CHECK_NEAR(segs[0].avg_logprob, -0.2, 1e-6);
  CHECK_NEAR(segs[0].no_speech_prob, 0.01, 1e-6);
  CHECK_NEAR(t.confidence, exp(-0.2), 1e-4);
  kmk_transcript_clear(&t);
  const char *plain = "{\"text\":\"hi\",\"x_groq\":{\"id\":\"r\"}}";
  CHECK_EQ_INT(kmk_groq_parse(plain, strlen(plain), &t, NULL, 0, &n, NULL, 0, NULL), 0);
  CHECK_STR(t.text, "hi");
  kmk_transcript_clear(&t);
  const char *bad[] = {"", "{", "[]", "{\"text\":5}", "{\"segments\":[]}", "null"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ_INT(kmk_groq_parse(bad[i], strlen(bad[i]), &t, segs, 4, &n, lang, sizeof lang, &dur),
                 KMK_NET_EPROTO);
    CHECK(t.text == NULL);
  }
}

static int g_port;
static int16_t g_pcm[16000];

typedef struct {
  int done, err, attempts, n_segs;
  long status;
  char text[256], lang[8], msg[256];
  float nsp, conf;
  kmk_gate_reason gate;
} res;

static void on_done(void *ud, const kmk_groq_result *r) {
  res *x = ud;
  x->done++;
  x->err = r->err;
  x->status = r->http_status;
  x->attempts = r->attempts;
  x->n_segs = r->n_segments;
  snprintf(x->msg, sizeof x->msg, "%s", r->message);
  if (!r->err) {
    snprintf(x->text, sizeof x->text, "%s", r->t->text);
    snprintf(x->lang, sizeof x->lang, "%s", r->t->lang);
    x->conf = r->t->confidence;
    if (r->n_segments) x->nsp = r->segments[0].no_speech_prob;
    kmk_gate_opts o;
    kmk_gate_opts_default(&o);
    x->gate = kmk_gate_transcript(&o, r->t->text, r->t->lang, r->segments, r->n_segments);
  }
}

typedef struct {
  uv_loop_t loop;
  kmk_http *http;
  kmk_groq *g;
} env;

static void env_init(env *e, const char *mode, const char *key, const kmk_cloud_policy *pol) {
  uv_loop_init(&e->loop);
  e->http = kmk_http_new(&e->loop);
  char base[256];
  if (mode) snprintf(base, sizeof base, "http://127.0.0.1:%d/m/%s/openai/v1", g_port, mode);
  else snprintf(base, sizeof base, "http://127.0.0.1:%d/openai/v1/", g_port);
  kmk_groq_opts o = {.base_url = base, .api_key = key ? key : "gsk_test", .model = "whisper-large-v3"};
  if (pol) o.policy = *pol;
  e->g = kmk_groq_new(e->http, &o);
}
static int env_close(env *e) {
  kmk_groq_free(e->g);
  kmk_http_close(e->http, NULL, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&e->loop) == 0;
}
static int run(env *e, const char *lang, res *x) {
  int rc = kmk_groq_transcribe(e->g, g_pcm, 16000, lang, on_done, x, NULL);
  if (rc) return rc;
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return 0;
}

/* GET /control/last?service=stt through our own client */
static char g_last[4096];
static void last_done(void *ud, kmk_http_req *r, int err, const kmk_http_resp *resp) {
  snprintf(g_last, sizeof g_last, "%s", resp->body ? resp->body : "");
}
static void fetch_last(env *e) {
  char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/control/last?service=stt", g_port);
  kmk_http_opts o = {.url = u, .on_done = last_done};
  g_last[0] = 0;
  kmk_http_request(e->http, &o, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
}

static void test_success(void) {
  env e;
  env_init(&e, NULL, NULL, NULL);
  res x = {0};
  CHECK_EQ_INT(run(&e, "ru-RU", &x), 0);
  CHECK_EQ_INT(x.err, 0);
  CHECK_STR(x.text, "Hello Kameko, how are you today?");
  CHECK_STR(x.lang, "ru"); /* the hint is echoed back by the peer as the language */
  CHECK_EQ_INT(x.n_segs, 1);
  CHECK(x.conf > 0.7f && x.conf <= 1.0f);
  CHECK_EQ_INT(x.gate, KMK_GATE_PASS);
  fetch_last(&e);
  CHECK(strstr(g_last, "\"model\":\"whisper-large-v3\"") != NULL);
  CHECK(strstr(g_last, "\"language\":\"ru\"") != NULL);
  CHECK(strstr(g_last, "\"response_format\":\"verbose_json\"") != NULL);
  CHECK(strstr(g_last, "\"filename\":\"audio.wav\"") != NULL);
  CHECK(strstr(g_last, "\"rate\":16000") != NULL);
  CHECK(strstr(g_last, "\"seconds\":1") != NULL);
  /* auto: no language field */
  res y = {0};
  CHECK_EQ_INT(run(&e, "auto", &y), 0);
  CHECK_EQ_INT(y.err, 0);
  fetch_last(&e);
  CHECK(strstr(g_last, "\"language\":null") != NULL);
  CHECK(env_close(&e));
}

static void test_gated_modes(void) {
  struct {
    const char *mode;
    kmk_gate_reason gate;
  } c[] = {{"hallu_en", KMK_GATE_KNOWN_PHRASE}, {"hallu_ru", KMK_GATE_KNOWN_PHRASE},
           {"lowconf", KMK_GATE_LOW_LOGPROB},   {"repeat", KMK_GATE_COMPRESSION},
           {"silence", KMK_GATE_EMPTY},         {"ru", KMK_GATE_PASS}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    env e;
    env_init(&e, c[i].mode, NULL, NULL);
    res x = {0};
    CHECK_EQ_INT(run(&e, NULL, &x), 0);
    CHECK_EQ_INT(x.err, 0);
    if (x.gate != c[i].gate) fprintf(stderr, "mode %s: gate %s\n", c[i].mode, kmk_gate_reason_name(x.gate));
    CHECK_EQ_INT(x.gate, c[i].gate);
    CHECK(env_close(&e));
  }
}

static void test_failures(void) {
  env e;
  env_init(&e, "g1:429,ok", NULL, NULL);
  res a = {0};
  CHECK_EQ_INT(run(&e, "en", &a), 0);
  CHECK_EQ_INT(a.err, 0);
  CHECK_EQ_INT(a.attempts, 2);
  CHECK(env_close(&e));

  /* 429 with only Groq's x-ratelimit-reset-requests: 1.2s */
  env_init(&e, "g3:429reset,ok", NULL, NULL);
  res r3 = {0};
  uint64_t t0 = uv_hrtime();
  CHECK_EQ_INT(run(&e, "en", &r3), 0);
  CHECK_EQ_INT(r3.err, 0);
  CHECK_EQ_INT(r3.attempts, 2);
  CHECK((uv_hrtime() - t0) / 1e6 >= 1150);
  CHECK(env_close(&e));

  kmk_cloud_policy pol = {.backoff_base_ms = 20, .stall_ms = 3000, .max_retries = 2};
  env_init(&e, "g2:500,503,ok", NULL, &pol);
  res b = {0};
  CHECK_EQ_INT(run(&e, "en", &b), 0);
  CHECK_EQ_INT(b.err, 0);
  CHECK_EQ_INT(b.attempts, 3);
  CHECK(env_close(&e));

  env_init(&e, "401", NULL, &pol);
  res c = {0};
  CHECK_EQ_INT(run(&e, "en", &c), 0);
  CHECK_EQ_INT(c.err, KMK_NET_EAUTH);
  CHECK_EQ_INT(c.attempts, 1);
  CHECK(strstr(c.msg, "GROQ_API_KEY") != NULL);
  CHECK(!kmk_groq_available(e.g));
  res c2 = {0};
  CHECK_EQ_INT(run(&e, "en", &c2), KMK_NET_EAUTH);
  CHECK(env_close(&e));

  kmk_cloud_policy ps = {.backoff_base_ms = 20, .stall_ms = 300, .max_retries = 2};
  env_init(&e, "stall", NULL, &ps);
  res d = {0};
  CHECK_EQ_INT(run(&e, "en", &d), 0);
  CHECK_EQ_INT(d.err, KMK_NET_ESTALLED);
  CHECK_EQ_INT(d.attempts, 3);
  CHECK(env_close(&e));

  env_init(&e, "malformed", NULL, &pol);
  res f = {0};
  CHECK_EQ_INT(run(&e, "en", &f), 0);
  CHECK_EQ_INT(f.err, KMK_NET_EPROTO);
  CHECK(env_close(&e));

  /* breaker: three failed requests (each with its retries) open it */
  kmk_cloud_policy pb = {.backoff_base_ms = 10, .max_retries = -1, .breaker_threshold = 3};
  env_init(&e, "503", NULL, &pb);
  for (int i = 0; i < 3; i++) {
    res z = {0};
    CHECK_EQ_INT(run(&e, "en", &z), 0);
    CHECK_EQ_INT(z.err, KMK_NET_ESERVER);
  }
  res z = {0};
  CHECK_EQ_INT(run(&e, "en", &z), KMK_NET_EOPEN);
  CHECK_EQ_INT(z.done, 0);
  CHECK(env_close(&e));
}

static void test_cancel(void) {
  env e;
  env_init(&e, "slow", NULL, NULL);
  res x = {0};
  kmk_groq_req *r;
  CHECK_EQ_INT(kmk_groq_transcribe(e.g, g_pcm, 16000, "en", on_done, &x, &r), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  kmk_groq_cancel(r);
  uv_run(&e.loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(x.done, 0);
  res y = {0};
  CHECK_EQ_INT(kmk_groq_transcribe(e.g, g_pcm, 16000, "en", on_done, &y, NULL), 0);
  CHECK(env_close(&e)); /* freed with a request in flight */
  CHECK_EQ_INT(y.done, 0);
}

int main(void) {
  for (int i = 0; i < 16000; i++) g_pcm[i] = (int16_t)(3000 * sin(i * 0.05));
  RUN(test_parse);
  g_port = kmk_peer_start(NULL);
  if (g_port) {
    RUN(test_success);
    RUN(test_gated_modes);
    RUN(test_failures);
    RUN(test_cancel);
    kmk_peer_stop();
  }
  return check_done();
}
