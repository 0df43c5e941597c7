/* bench_cloud.c - the engine's own share of a cloud turn: speech_end -> the agent's first audio
 * frame, minus the latencies injected into the local provider peer (issue 4 item 9).
 *
 * The loopback peer (tests/peers/cloud/server.js) runs with the latencies: STT 300 ms,
 * LLM first token 200 ms then 250 tokens/s, TTS first audio 300 ms. An agent on this process's
 * loop (Groq, LLM and Edge pointed at the peer; a persona with an Edge voice) hears "bob" say a
 * line (flite), followed by real-time silence until the endpointer ends the turn; the first
 * frame is caught by polling kmk_agent_pull_frame every millisecond (a transport's 20 ms tick
 * adds up to 20 ms on top). The reply is then cut (mute) and the next turn starts once idle.
 *
 * Three modes, N turns each:
 *   full      the whole LLM answer before speaking (policy.early_speech = false)
 *   early     speaking at the answer's first sentence (the default)
 *   early+spec  plus speculative STT at the speech pause (policy.speculative_stt = true)
 * Injected latency on the critical path: STT 300 + LLM 200 + 4 ms per streamed token needed
 * (all of them for "full", up to the first sentence for the others) + TTS 300. Engine overhead =
 * measured - injected (for "full" and "early"); for early+spec the STT overlaps the pause, so the
 * line reports the time saved against "early" instead. The peer's own timing is not exact (Node
 * timers, MP3 encoding on a loaded machine), so a second figure subtracts the provider time as
 * the engine's clients measured it on the wire (STT request, LLM request to the first sentence or
 * the end, TTS first audio): what is left is the engine's own work between the stages.
 * Usage: bench_cloud [turns=50]; KMK_BENCH_VERBOSE=1 prints every turn's breakdown. Needs node and tests/peers/cloud/node_modules (`make peers`).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "bench_stats.h"
#include "../tests/unit/test_net_peer.h"
#include "kameko/agent.h"
#include "kameko/config.h"
#include "kameko/eventlog.h"
#include "kameko/log.h"
#include "kameko/speech.h"

#define REPLY "It is half past three in the afternoon. Anything else I can help you with today?"
#define STT_MS 300.0
#define LLM_FIRST_MS 200.0
#define LLM_TPS 250.0
#define TTS_MS 300.0


/* the peer's tokenizer: pieces of 1 + (i * 7) % 4 code points, i = the piece's first index */
static int tokens_to(const char *s, size_t upto_cp) {
  size_t ncp = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) ncp += (*p & 0xC0) != 0x80;
  int k = 0;
  for (size_t i = 0; i < ncp;) {
    k++;
    i += 1 + (i * 7) % 4;
    if (i > upto_cp) break;
  }
  return k;
}

typedef struct {
  int16_t *pcm;
  size_t n, cap;
} buf;
static int buf_chunk(void *ud, const int16_t *pcm, size_t n, int rate) {
  (void)rate;
  buf *b = ud;
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2;
    b->pcm = realloc(b->pcm, b->cap * sizeof *b->pcm);
    if (!b->pcm) return 1;
  }
  memcpy(b->pcm + b->n, pcm, n * sizeof *pcm);
  b->n += n;
  return 0;
}

static struct {
  uint64_t t_end_ns;
  int ended, started;
  double spec_saved;
  double stt_ms, llm_ms, tts_ms; /* provider time as the clients saw it (this turn) */
} g;
static uint64_t g_t0;
static double clock_fn(void *ud) {
  (void)ud;
  return (double)(uv_hrtime() - g_t0) / 1e9;
}
static void observe(void *ud, const cJSON *ev) {
  (void)ud;
  const char *ty = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
  if (!ty) return;
  if (!strcmp(ty, "speech_end")) {
    g.t_end_ns = uv_hrtime();
    g.ended = 1;
  }
  const cJSON *lat = cJSON_GetObjectItem(ev, "latency_ms");
  if (!strcmp(ty, "transcript")) {
    const cJSON *s = cJSON_GetObjectItem(lat, "stt_saved");
    if (cJSON_IsNumber(s)) g.spec_saved = s->valuedouble;
    g.stt_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(lat, "stt"));
  } else if (!strcmp(ty, "early_speech")) {
    g.llm_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(lat, "llm_first_sentence"));
  } else if (!strcmp(ty, "decision") && g.llm_ms < 0) {
    const cJSON *l = cJSON_GetObjectItem(lat, "llm");
    if (l) g.llm_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(l, "total"));
  } else if (!strcmp(ty, "audio_out_start") && g.tts_ms < 0) {
    g.tts_ms = cJSON_GetNumberValue(cJSON_GetObjectItem(lat, "tts_first_audio"));
  }
}

static void idle_cb(uv_timer_t *t) { (void)t; }
static void run_ms(uv_loop_t *loop, double ms) {
  uv_timer_t t;
  uv_update_time(loop);
  uv_timer_init(loop, &t);
  uv_timer_start(&t, idle_cb, (uint64_t)(ms < 1 ? 1 : ms), 0);
  while (uv_run(loop, UV_RUN_ONCE) && uv_is_active((uv_handle_t *)&t)) {
  }
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* one mode: returns the number of turns measured into e2e[] */
static int run_mode(int port, const char *persona, const buf *speech, int turns, double *e2e,
                    double *own) {
  char err[1024], url[200];
  kmk_config cfg;
  kmk_config_load(&cfg, NULL, 0, err, sizeof err);
  kmk_config_set(&cfg, "GROQ_API_KEY", "gsk_bench", err, sizeof err);
  kmk_config_set(&cfg, "LLM_API_KEY", "sk-or-bench", err, sizeof err);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/openai/v1", port);
  kmk_config_set(&cfg, "GROQ_BASE_URL", url, err, sizeof err);
  kmk_config_set(&cfg, "LLM_BASE_URL", url, err, sizeof err);
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/edge/v1", port);
  kmk_config_set(&cfg, "EDGE_TTS_URL", url, err, sizeof err);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_eventlog *log = kmk_eventlog_open(NULL, err, sizeof err);
  kmk_eventlog_set_observer(log, observe, NULL);
  const char *personas[] = {persona};
  kmk_agent_opts ao = {.loop = &loop, .log = log, .config = &cfg, .persona_paths = personas,
                       .n_personas = 1, .scripts_dir = KMK_SOURCE_DIR "/scripts",
                       .now = clock_fn, .no_watch = 1};
  kmk_agent *a = kmk_agent_new(&ao, err, sizeof err);
  if (!a) {
    fprintf(stderr, "agent: %s\n", err);
    return 0;
  }
  kmk_speaker *bob = kmk_agent_speaker_join(a, "bob", clock_fn(NULL));
  for (int i = 0; i < 500 && kmk_agent_jobs_pending(a); i++) run_ms(&loop, 5);
  kmk_agent_set_muted(a, 1); /* the join's greeting, if any, is not part of a turn */
  for (int i = 0; i < 500 && kmk_agent_jobs_pending(a); i++) run_ms(&loop, 5);
  kmk_agent_set_muted(a, 0);
  int done = 0;
  static int16_t silence[320];
  for (int turn = 0; turn < turns + 1; turn++) { /* turn 0 warms connections up, not counted */
    g.ended = 0;
    g.spec_saved = -1;
    g.stt_ms = g.llm_ms = g.tts_ms = -1;
    /* the line at once (its timing does not matter), then silence in real time */
    for (size_t i = 0; i < speech->n; i += 320) {
      size_t n = speech->n - i < 320 ? speech->n - i : 320;
      kmk_agent_speaker_pcm(bob, speech->pcm + i, n, 16000, 1);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    uint64_t next = uv_hrtime();
    for (int i = 0; i < 200 && !g.ended; i++) {
      kmk_agent_speaker_pcm(bob, silence, 320, 16000, 1);
      next += 20000000ull;
      while (uv_hrtime() < next) run_ms(&loop, 1);
    }
    if (!g.ended) break;
    /* the first frame: polled every millisecond; silence keeps flowing every 20 ms */
    const kmk_out_frame *f = NULL;
    uint64_t t_audio = 0, limit = g.t_end_ns + 10000000000ull;
    while (!f && uv_hrtime() < limit) {
      run_ms(&loop, 1);
      f = kmk_agent_pull_frame(a);
      if (f) t_audio = uv_hrtime();
      if (uv_hrtime() >= next) {
        kmk_agent_speaker_pcm(bob, silence, 320, 16000, 1);
        next += 20000000ull;
      }
    }
    if (!f) {
      fprintf(stderr, "turn %d: no audio within 10 s\n", turn);
      break;
    }
    if (turn > 0) {
      e2e[done] = (double)(t_audio - g.t_end_ns) / 1e6;
      /* minus what the clients saw the providers take (the audio_out_start event is written
         while the frame is pulled, so tts_first_audio is in) */
      own[done] = e2e[done] - (g.stt_ms > 0 ? g.stt_ms : 0) - (g.llm_ms > 0 ? g.llm_ms : 0) -
                  (g.tts_ms > 0 ? g.tts_ms : 0);
      if (getenv("KMK_BENCH_VERBOSE"))
        printf("  turn %d: e2e %.1f = stt %.1f + llm %.1f + tts %.1f + own %.1f ms\n", turn,
               e2e[done], g.stt_ms, g.llm_ms, g.tts_ms, own[done]);
      done++;
    }
    kmk_agent_set_muted(a, 1);
    for (int i = 0; i < 2000 && kmk_agent_jobs_pending(a); i++) run_ms(&loop, 2);
    kmk_agent_set_muted(a, 0);
  }
  kmk_agent_speaker_leave(a, bob);
  kmk_agent_free(a);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  kmk_eventlog_close(log);
  kmk_config_free(&cfg);
  return done;
}

int main(int argc, char **argv) {
  int turns = argc > 1 ? atoi(argv[1]) : 50;
  if (turns < 1) turns = 1;
  kmk_log_set_level(KMK_LOG_WARN);
  g_t0 = uv_hrtime();
  char dir[] = "/tmp/kmk_bench_cloud_XXXXXX", llm[200], p_full[200], p_early[200], p_spec[200];
  if (!mkdtemp(dir)) return 1;
  snprintf(llm, sizeof llm, "%s/llm.json", dir);
  write_text(llm, "[{\"reply\":{\"thought\":\"bob asked the time\",\"should_speak\":true,"
                  "\"response\":\"" REPLY "\",\"lang\":\"en\"}}]");
  const char *modes[] = {"full", "early", "early+spec"};
  const char *policies[] = {"early_speech = false", "early_speech = true",
                            "early_speech = true, speculative_stt = true"};
  char *paths[] = {p_full, p_early, p_spec};
  for (int m = 0; m < 3; m++) {
    snprintf(paths[m], 200, "%s/bench_%d.lua", dir, m);
    char text[1024];
    snprintf(text, sizeof text,
             "return {\n  name = \"Kameko\", languages = {\"en\"}, wake_words = {\"kameko\"},\n"
             "  voices = {en = {engine = \"edge\", voice = \"en-US-AriaNeural\"}},\n"
             "  policy = {%s},\n}\n", policies[m]);
    write_text(paths[m], text);
  }
  const char *args[] = {"--llm-script", llm, "--stt-ms", "300", "--llm-first-ms", "200",
                        "--llm-tps", "250", "--tts-first-ms", "300", NULL};
  int port = kmk_peer_start(args);
  if (!port) return 0; /* "skipped" printed */
  buf speech = {0};
  kmk_tts_voice v = {.voice = "kal16"};
  atomic_int cancel = 0;
  char err[256];
  static int16_t lead[8000];
  buf_chunk(&speech, lead, 8000, 16000);
  kmk_tts_flite_synth("kameko what time is it", &v, buf_chunk, &speech, &cancel, err, sizeof err);

  /* injected latency on the critical path (see the top of the file) */
  char json[512];
  snprintf(json, sizeof json,
           "{\"thought\":\"bob asked the time\",\"should_speak\":true,\"response\":\"" REPLY
           "\",\"lang\":\"en\"}");
  size_t ncp_all = 0, first_end = 0, cp = 0;
  const char *fs = strstr(json, "afternoon. ");
  for (const unsigned char *p = (const unsigned char *)json; *p; p++)
    if ((*p & 0xC0) != 0x80) {
      if (fs && (const char *)p == fs + strlen("afternoon. ") - 1) first_end = cp;
      cp++;
    }
  ncp_all = cp;
  int n_all = tokens_to(json, ncp_all), n_first = tokens_to(json, first_end);
  double gen_ms = 1000.0 / LLM_TPS;
  double injected[3] = {STT_MS + LLM_FIRST_MS + n_all * gen_ms + TTS_MS,
                        STT_MS + LLM_FIRST_MS + (n_first - 1) * gen_ms + TTS_MS, 0};
  injected[2] = injected[1];
  printf("cloud turn, speech_end -> first audio frame; %d turns per mode; injected: STT %.0f ms, "
         "LLM first token %.0f ms + %.0f tokens/s, TTS first audio %.0f ms\n",
         turns, STT_MS, LLM_FIRST_MS, LLM_TPS, TTS_MS);
  printf("reply: %d tokens in the answer JSON, the first sentence complete after %d\n", n_all,
         n_first);
  double p50s[3] = {0};
  for (int m = 0; m < 3; m++) {
    double *e2e = calloc((size_t)turns, sizeof *e2e), *ovh = calloc((size_t)turns, sizeof *ovh);
    double *own = calloc((size_t)turns, sizeof *own);
    int n = run_mode(port, paths[m], &speech, turns, e2e, own);
    if (n == 0) {
      printf("%s: no turns measured\n", modes[m]);
      free(e2e);
      free(ovh);
      free(own);
      continue;
    }
    for (int i = 0; i < n; i++) ovh[i] = e2e[i] - injected[m];
    double p50 = pct(e2e, n, 50), p95 = pct(e2e, n, 95);
    p50s[m] = p50;
    if (m < 2)
      printf("%-11s e2e p50 %.1f ms, p95 %.1f ms; injected %.1f ms; engine overhead p50 %.1f ms, "
             "p95 %.1f ms (n=%d)\n",
             modes[m], p50, p95, injected[m], pct(ovh, n, 50), pct(ovh, n, 95), n);
    else
      printf("%-11s e2e p50 %.1f ms, p95 %.1f ms; %.1f ms sooner than early at p50 (speculative "
             "STT; n=%d)\n",
             modes[m], p50, p95, p50s[1] - p50, n);
    printf("%-11s engine's own time (e2e minus the provider time the clients measured: STT "
           "request, LLM to the needed point, TTS first audio) p50 %.1f ms, p95 %.1f ms\n",
           modes[m], pct(own, n, 50), pct(own, n, 95));
    free(e2e);
    free(ovh);
    free(own);
  }
  kmk_peer_stop();
  free(speech.pcm);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return 0;
}
