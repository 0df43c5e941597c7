/* test_net_chain.c - the three cloud providers chained on ONE loop, the way the agent will use
 * them: utterance -> Groq-like STT (+ gates) -> OpenRouter-like streaming LLM -> first sentence ->
 * Edge-like TTS -> first PCM. With the peer's injected latencies (STT 300 ms, LLM first token
 * 200 ms then 250 tokens/s, TTS first audio 300 ms) it prints the time from "utterance ready" to
 * the first PCM chunk, and that time minus the injected delays and the token streaming (what the
 * engine + loopback protocol work costs). One turn is barged in (every request cancelled
 * mid-flight); at the end every handle is closed and uv_loop_close succeeds. */
#include <math.h>
#include <stdlib.h>
#include <uv.h>

#include "check.h"
#include "kameko/cloud.h"
#include "test_net_peer.h"

static int g_port;
static int16_t g_pcm[24000];

typedef struct {
  uv_loop_t *loop;
  kmk_groq *groq;
  kmk_llm *llm;
  kmk_edge *edge;
  kmk_llm_req *llm_req;
  kmk_edge_req *tts_req;
  double t0, t_stt, t_sentence, t_audio, llm_first_token, llm_first_sentence, tts_connect, tts_frame;
  int done, failed, barge, pcm_chunks;
  kmk_gate_reason gate;
  char sentence[256];
} turn;

static double now(turn *t) { return kmk_net_now_ms(t->loop); }

static int on_pcm(void *ud, const int16_t *p, size_t n, int rate) {
  turn *t = ud;
  if (t->pcm_chunks++ == 0) {
    t->t_audio = now(t);
    if (t->barge) { /* barge-in: the user talks over us; drop everything in flight */
      kmk_llm_cancel(t->llm_req);
      t->llm_req = NULL;
      t->tts_req = NULL;
      t->done = 1;
      return 1; /* stops (and frees) the TTS request */
    }
  }
  return 0;
}
static void on_tts_done(void *ud, const kmk_edge_result *r) {
  turn *t = ud;
  t->tts_req = NULL;
  t->tts_connect = r->connect_ms;
  t->tts_frame = r->first_frame_ms;
  if (r->err) t->failed = 1;
  if (!t->llm_req) t->done = 1;
}
static void on_sentence(void *ud, const char *s, size_t n, int idx) {
  turn *t = ud;
  if (idx != 0) return;
  t->t_sentence = now(t);
  snprintf(t->sentence, sizeof t->sentence, "%.*s", (int)n, s);
  kmk_edge_callbacks cb = {on_pcm, on_tts_done};
  if (kmk_edge_tts_synth(t->edge, t->sentence, "en-US-AriaNeural", NULL, &cb, t, &t->tts_req)) t->failed = 1;
}
static void on_llm_done(void *ud, const kmk_llm_result *r) {
  turn *t = ud;
  t->llm_req = NULL;
  t->llm_first_token = r->first_token_ms;
  t->llm_first_sentence = r->first_sentence_ms;
  if (r->err) t->failed = 1;
  if (!t->tts_req) t->done = 1;
}
static void on_stt(void *ud, const kmk_groq_result *r) {
  turn *t = ud;
  t->t_stt = now(t);
  if (r->err) {
    t->failed = t->done = 1;
    return;
  }
  kmk_gate_opts o;
  kmk_gate_opts_default(&o);
  t->gate = kmk_gate_transcript(&o, r->t->text, r->t->lang, r->segments, r->n_segments);
  char msgs[512];
  snprintf(msgs, sizeof msgs, "[{\"role\":\"user\",\"content\":\"%s\"}]", r->t->text);
  kmk_llm_callbacks cb = {NULL, on_sentence, on_llm_done};
  if (kmk_llm_chat(t->llm, msgs, NULL, &cb, t, &t->llm_req)) t->failed = t->done = 1;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void test_chain(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_http *http = kmk_http_new(&loop);
  kmk_ws *ws = kmk_ws_new(&loop);
  char base[128], url[192];
  snprintf(base, sizeof base, "http://127.0.0.1:%d/openai/v1", g_port);
  kmk_groq_opts go = {.base_url = base, .api_key = "gsk_x", .model = "whisper-large-v3"};
  kmk_llm_opts lo = {.base_url = base, .api_key = "sk-or-x", .model = "meta-llama/llama-3.3-70b-instruct"};
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/edge/v1", g_port);
  kmk_edge_opts eo = {.url = url};
  kmk_groq *groq = kmk_groq_new(http, &go);
  kmk_llm *llm = kmk_llm_new(http, &lo);
  kmk_edge *edge = kmk_edge_new(ws, &eo);
  CHECK(groq && llm && edge);
  enum { N = 10 };
  double total[N], overhead[N];
  int n = 0;
  for (int i = 0; i < N + 1; i++) {
    turn t = {.loop = &loop, .groq = groq, .llm = llm, .edge = edge, .barge = (i == N)};
    t.t0 = now(&t);
    CHECK_EQ_INT(kmk_groq_transcribe(groq, g_pcm, 24000, "en", on_stt, &t, NULL), 0);
    while (!t.done && uv_run(&loop, UV_RUN_ONCE)) {
    }
    CHECK(!t.failed);
    CHECK_EQ_INT(t.gate, KMK_GATE_PASS);
    CHECK_STR(t.sentence, "Hello there!");
    CHECK(t.t_audio > t.t0);
    if (t.barge) {
      /* everything was cancelled: nothing may be left running */
      for (int k = 0; k < 20; k++) uv_run(&loop, UV_RUN_NOWAIT);
      CHECK_EQ_INT(kmk_http_active(http), 0);
      CHECK_EQ_INT(kmk_ws_active(ws), 0);
      continue;
    }
    total[n] = t.t_audio - t.t0;
    if (getenv("KMK_CHAIN_DEBUG"))
      fprintf(stderr, "stt %.0f llm-token %.0f llm-sentence %.0f tts connect %.0f frame %.0f pcm %.0f\n",
              t.t_stt - t.t0, t.llm_first_token, t.llm_first_sentence, t.tts_connect, t.tts_frame,
              t.t_audio - t.t_sentence);
    /* injected: STT 300 + LLM first token 200 + TTS first audio 300; token streaming up to the
       first sentence is the model's speed, not ours */
    overhead[n] = total[n] - 300 - 200 - 300 - (t.llm_first_sentence - t.llm_first_token);
    n++;
  }
  qsort(total, n, sizeof total[0], cmp_d);
  qsort(overhead, n, sizeof overhead[0], cmp_d);
  printf("figure: utterance -> first PCM with injected provider latencies: p50 %.0f ms, p95 %.0f ms (n=%d)\n",
         total[n / 2], total[(n * 95) / 100], n);
  printf("figure: same minus injected delays and token streaming (engine + loopback protocol work "
         "+ the peer's timer jitter): p50 %.0f ms, p95 %.0f ms\n",
         overhead[n / 2], overhead[(n * 95) / 100]);
  kmk_groq_free(groq);
  kmk_llm_free(llm);
  kmk_edge_free(edge);
  kmk_http_close(http, NULL, NULL);
  kmk_ws_close(ws, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  for (int i = 0; i < 24000; i++) g_pcm[i] = (int16_t)(4000 * sin(i * 0.07));
  const char *lat[] = {"--stt-ms", "300", "--llm-first-ms", "200", "--llm-tps", "250",
                       "--tts-first-ms", "300", NULL};
  g_port = kmk_peer_start(lat);
  if (!g_port) return 0;
  RUN(test_chain);
  kmk_peer_stop();
  return check_done();
}
