/* test_net_script.c - the cloud peer's scripted mode for end-to-end tests: --stt-script makes the
 * Groq-like STT return the given transcripts in order (scores included, the last repeats), and
 * --llm-script picks the LLM reply by a substring of the request's messages; /control/stats
 * counts requests per service. */
#include <stdlib.h>
#include <uv.h>

#include "check.h"
#include "kameko/cloud.h"
#include "test_net_peer.h"

static int g_port;
static int16_t g_pcm[8000];

typedef struct {
  int done, err, gate;
  char text[256], lang[8];
} sres;
static void on_stt(void *ud, const kmk_groq_result *r) {
  sres *x = ud;
  x->done++;
  x->err = r->err;
  if (!r->err) {
    snprintf(x->text, sizeof x->text, "%s", r->t->text);
    snprintf(x->lang, sizeof x->lang, "%s", r->t->lang);
    kmk_gate_opts o;
    kmk_gate_opts_default(&o);
    x->gate = kmk_gate_transcript(&o, r->t->text, r->t->lang, r->segments, r->n_segments);
  }
}

typedef struct {
  int done, err;
  char text[512];
} lres;
static void on_llm(void *ud, const kmk_llm_result *r) {
  lres *x = ud;
  x->done++;
  x->err = r->err;
  snprintf(x->text, sizeof x->text, "%s", r->text);
}

static char g_stats[1024];
static void stats_done(void *ud, kmk_http_req *r, int err, const kmk_http_resp *resp) {
  snprintf(g_stats, sizeof g_stats, "%s", resp->body ? resp->body : "");
}

static void test_scripts(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_http *http = kmk_http_new(&loop);
  char base[128];
  snprintf(base, sizeof base, "http://127.0.0.1:%d/v1", g_port);
  kmk_groq_opts go = {.base_url = base, .api_key = "gsk_x"};
  kmk_groq *g = kmk_groq_new(http, &go);
  const char *want[] = {"Привет, Камеко!", "Thank you for watching!", "What time is it?", "What time is it?"};
  const char *lang[] = {"ru", "en", "en", "en"};
  for (int i = 0; i < 4; i++) {
    sres x = {0};
    CHECK_EQ_INT(kmk_groq_transcribe(g, g_pcm, 8000, NULL, on_stt, &x, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ_INT(x.err, 0);
    CHECK_STR(x.text, want[i]);
    CHECK_STR(x.lang, lang[i]);
    CHECK_EQ_INT(x.gate, i == 1 ? KMK_GATE_KNOWN_PHRASE : KMK_GATE_PASS);
  }
  kmk_llm_opts lo = {.base_url = base, .api_key = "sk-x", .model = "m"};
  kmk_llm *l = kmk_llm_new(http, &lo);
  kmk_llm_callbacks cb = {NULL, NULL, on_llm};
  lres a = {0}, b = {0};
  CHECK_EQ_INT(kmk_llm_chat(l, "[{\"role\":\"user\",\"content\":\"what time is it?\"}]", NULL, &cb, &a, NULL), 0);
  CHECK_EQ_INT(kmk_llm_chat(l, "[{\"role\":\"user\",\"content\":\"anything else\"}]", NULL, &cb, &b, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(a.err, 0);
  CHECK(strstr(a.text, "\"response\":\"It is noon.\"") != NULL);
  CHECK_STR(b.text, "{\"thought\":\"\",\"should_speak\":false,\"response\":\"\"}");
  char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/control/stats", g_port);
  kmk_http_opts o = {.url = u, .on_done = stats_done};
  kmk_http_request(http, &o, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(strstr(g_stats, "\"stt\":{\"requests\":4,\"with_mode\":0}") != NULL);
  CHECK(strstr(g_stats, "\"llm\":{\"requests\":2,\"with_mode\":0}") != NULL);
  kmk_groq_free(g);
  kmk_llm_free(l);
  kmk_http_close(http, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  char stt[] = "/tmp/kmk_stt_scriptXXXXXX", llm[] = "/tmp/kmk_llm_scriptXXXXXX";
  int fs = mkstemp(stt), fl = mkstemp(llm);
  if (fs < 0 || fl < 0) return 1;
  const char *s = "[{\"text\":\"Привет, Камеко!\",\"language\":\"ru\"},"
                  "{\"text\":\"Thank you for watching!\",\"no_speech_prob\":0.8},"
                  "{\"text\":\"What time is it?\",\"avg_logprob\":-0.1}]";
  const char *l = "[{\"match\":\"what time\",\"reply\":{\"thought\":\"t\",\"should_speak\":true,"
                  "\"response\":\"It is noon.\"}},"
                  "{\"reply\":\"{\\\"thought\\\":\\\"\\\",\\\"should_speak\\\":false,\\\"response\\\":\\\"\\\"}\"}]";
  if (write(fs, s, strlen(s)) < 0 || write(fl, l, strlen(l)) < 0) return 1;
  close(fs);
  close(fl);
  const char *args[] = {"--stt-script", stt, "--llm-script", llm, NULL};
  g_port = kmk_peer_start(args);
  if (g_port) {
    RUN(test_scripts);
    kmk_peer_stop();
  }
  unlink(stt);
  unlink(llm);
  return g_port ? check_done() : 0;
}
