/* stt_groq.c - cloud STT through Groq's OpenAI-compatible /audio/transcriptions (Whisper):
 * one finished utterance (16 kHz mono int16) -> a multipart WAV upload with model, language hint
 * and verbose_json -> a kmk_transcript plus per-segment scores for the hallucination gates.
 *
 * Owns: each kmk_groq_req (its WAV bytes, kept for retries) and its current kmk_http_req.
 * Retries are new kmk_http requests with delay_ms. Thread: loop thread only; kmk_groq_parse is
 * pure (any thread, fuzzed by tests/fuzz/fuzz_groq_json.c).
 *
 * Policy: 429 honours Retry-After (up to max_retry_after_s), 408/409/5xx/connect/timeouts back off
 * and retry, 401/402/403 make the client fatal with a clear message, a run of failures opens the
 * circuit breaker (calls then fail at once with KMK_NET_EOPEN and the caller uses the offline STT).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

#define TAG "stt-groq"

struct kmk_groq {
  kmk_http *http;
  kmk_http_lane *lane;
  char *url, *auth, *model;
  kmk_cloud_policy p;
  kmk_breaker breaker;
  int fatal;
  char fatal_msg[320];
  kmk_groq_req *reqs;
};

struct kmk_groq_req {
  kmk_groq *g;
  kmk_groq_req *prev, *next;
  kmk_http_req *h;
  uint8_t *wav;
  size_t wav_len;
  char lang[8];
  int attempt, probe, finished, busy, zombie;
  double t0;
  char msg[256];
  kmk_groq_done_fn cb;
  void *ud;
};

static double g_now(const kmk_groq *g) { return (double)uv_now(kmk_http_loop(g->http)); }

/* ---- parsing ------------------------------------------------------------------------------- */

static float num_or(const cJSON *o, const char *k, float def) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? (float)v->valuedouble : def;
}

static void lang_code(const char *name, char *out, size_t n) {
  static const struct { const char *name, *code; } map[] = {
      {"english", "en"}, {"russian", "ru"}, {"german", "de"}, {"french", "fr"},
      {"spanish", "es"}, {"ukrainian", "uk"}, {"japanese", "ja"}, {"chinese", "zh"}};
  out[0] = 0;
  if (!name) return;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcasecmp(name, map[i].name) == 0) {
      snprintf(out, n, "%s", map[i].code);
      return;
    }
  size_t l = strlen(name);
  if (l >= 2 && l <= 7) snprintf(out, n, "%s", name);
}

int kmk_groq_parse(const char *body, size_t len, kmk_transcript *out, kmk_groq_segment *segs,
                   int max_segs, int *n_segs, char *lang_out, size_t lang_len, double *duration) {
  memset(out, 0, sizeof *out);
  if (n_segs) *n_segs = 0;
  if (lang_out && lang_len) lang_out[0] = 0;
  if (duration) *duration = 0;
  if (!body) return KMK_NET_EPROTO;
  cJSON *root = cJSON_ParseWithLength(body, len);
  const cJSON *text = root ? cJSON_GetObjectItemCaseSensitive(root, "text") : NULL;
  if (!cJSON_IsObject(root) || !cJSON_IsString(text)) {
    cJSON_Delete(root);
    return KMK_NET_EPROTO;
  }
  const char *t = text->valuestring;
  while (*t == ' ' || *t == '\n' || *t == '\t') t++;
  out->text = strdup(t);
  if (!out->text) {
    cJSON_Delete(root);
    return KMK_NET_ENOMEM;
  }
  size_t tl = strlen(out->text);
  while (tl && (out->text[tl - 1] == ' ' || out->text[tl - 1] == '\n')) out->text[--tl] = 0;
  const cJSON *lang = cJSON_GetObjectItemCaseSensitive(root, "language");
  if (cJSON_IsString(lang)) {
    if (lang_out && lang_len) snprintf(lang_out, lang_len, "%s", lang->valuestring);
    lang_code(lang->valuestring, out->lang, sizeof out->lang);
  }
  const cJSON *dur = cJSON_GetObjectItemCaseSensitive(root, "duration");
  if (cJSON_IsNumber(dur) && isfinite(dur->valuedouble) && dur->valuedouble >= 0) {
    out->audio_s = dur->valuedouble;
    if (duration) *duration = dur->valuedouble;
  }
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "segments");
  double wsum = 0, lpsum = 0;
  int n = 0;
  const cJSON *s;
  if (!cJSON_IsArray(arr)) arr = NULL;
  cJSON_ArrayForEach(s, arr) {
    if (!cJSON_IsObject(s)) continue;
    kmk_groq_segment seg = {
        .start = num_or(s, "start", 0), .end = num_or(s, "end", 0),
        .avg_logprob = num_or(s, "avg_logprob", 0), .compression_ratio = num_or(s, "compression_ratio", 1),
        .no_speech_prob = num_or(s, "no_speech_prob", 0)};
    double d = seg.end - seg.start;
    if (!(d > 0.01) || d > 1e6) d = 0.01;
    wsum += d;
    lpsum += d * seg.avg_logprob;
    if (segs && n < max_segs) segs[n] = seg;
    n++;
  }
  if (n_segs) *n_segs = n < max_segs ? n : max_segs;
  if (!out->text[0]) out->confidence = 0;
  else if (wsum > 0) out->confidence = (float)exp(lpsum / wsum);
  else out->confidence = 0.8f; /* plain json: no scores */
  if (out->confidence > 1) out->confidence = 1;
  cJSON_Delete(root);
  return 0;
}

/* ---- client -------------------------------------------------------------------------------- */

kmk_groq *kmk_groq_new(kmk_http *http, const kmk_groq_opts *o) {
  if (!http || !o || !o->base_url) return NULL;
  kmk_groq *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->http = http;
  g->p = o->policy;
  kmk_cloud_policy_defaults(&g->p, 15000, 10000, 5000);
  g->url = kmk_cloud_url(o->base_url, "/audio/transcriptions");
  g->auth = kmk_cloud_bearer(o->api_key);
  g->model = strdup(o->model && *o->model ? o->model : "whisper-large-v3");
  g->lane = kmk_http_lane_new(http, "stt-groq", g->p.max_active, g->p.max_queued);
  kmk_breaker_init(&g->breaker, g->p.breaker_threshold, g->p.breaker_cooldown_s);
  if (!g->url || !g->model || !g->lane || (o->api_key && *o->api_key && !g->auth)) {
    free(g->url), free(g->auth), free(g->model), free(g);
    return NULL;
  }
  return g;
}

static void req_free(kmk_groq_req *r) {
  kmk_groq *g = r->g;
  if (r->prev) r->prev->next = r->next;
  else g->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  free(r->wav);
  free(r);
}

void kmk_groq_cancel(kmk_groq_req *r) {
  if (!r || r->finished) return;
  r->finished = 1;
  if (r->h) kmk_http_cancel(r->h);
  r->h = NULL;
  if (r->probe) r->g->breaker.probing = 0;
  if (r->busy) r->zombie = 1;
  else req_free(r);
}

void kmk_groq_free(kmk_groq *g) {
  if (!g) return;
  while (g->reqs) kmk_groq_cancel(g->reqs);
  free(g->url), free(g->auth), free(g->model), free(g);
}

int kmk_groq_fatal(const kmk_groq *g, const char **msg) {
  if (msg) *msg = g->fatal ? g->fatal_msg : "";
  return g->fatal;
}

int kmk_groq_available(const kmk_groq *g) {
  return !g->fatal && !kmk_breaker_is_open(&g->breaker, g_now(g) / 1000.0);
}

static void finish(kmk_groq_req *r, int err, long status, const kmk_transcript *t_in,
                   const kmk_groq_segment *segs, int n_segs, const char *lang, double dur) {
  kmk_groq *g = r->g;
  if (r->finished) return;
  r->finished = 1;
  r->h = NULL;
  double now = g_now(g);
  if (!err) kmk_breaker_success(&g->breaker);
  else if (err != KMK_NET_EAUTH) kmk_breaker_failure(&g->breaker, now / 1000.0);
  else g->breaker.probing = 0;
  if (err) KMK_WARN(TAG, "transcription failed: %s%s%s", kmk_net_strerror(err), r->msg[0] ? ": " : "", r->msg);
  kmk_transcript t = {0};
  if (t_in) t = *t_in;
  t.decode_ms = now - r->t0;
  kmk_groq_result res = {.err = err, .http_status = status, .message = err ? r->msg : "",
                         .t = err ? NULL : &t, .language = lang ? lang : "", .duration_s = dur,
                         .n_segments = n_segs, .segments = segs, .attempts = r->attempt,
                         .total_ms = now - r->t0};
  r->cb(r->ud, &res);
  if (!err) kmk_transcript_clear(&t);
  if (r->busy) r->zombie = 1;
  else req_free(r);
}

static int start_attempt(kmk_groq_req *r, double delay_ms);

static int maybe_retry(kmk_groq_req *r, int err, double retry_after_s) {
  kmk_groq *g = r->g;
  if (r->attempt > g->p.max_retries) return 0;
  double d = kmk_backoff_ms(r->attempt, g->p.backoff_base_ms, g->p.backoff_max_ms,
                            (double)rand() / ((double)RAND_MAX + 1));
  if (retry_after_s >= 0) {
    if (retry_after_s > g->p.max_retry_after_s) return 0;
    if (retry_after_s * 1000 > d) d = retry_after_s * 1000;
  }
  KMK_INFO(TAG, "retry %d in %.0f ms after %s%s%s", r->attempt, d, kmk_net_strerror(err),
           r->msg[0] ? ": " : "", r->msg);
  return start_attempt(r, d) == 0;
}

static void provider_message(const kmk_http_resp *resp, char *m, size_t n) {
  m[0] = 0;
  cJSON *root = resp->body ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;
  const cJSON *err = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
  const cJSON *msg = err ? cJSON_GetObjectItemCaseSensitive(err, "message") : NULL;
  if (cJSON_IsString(msg)) {
    size_t j = 0;
    for (const char *s = msg->valuestring; *s && j + 1 < n; s++)
      m[j++] = (unsigned char)*s < 0x20 ? ' ' : *s;
    m[j] = 0;
  }
  cJSON_Delete(root);
}

static void done_in(kmk_groq_req *r, int err, const kmk_http_resp *resp) {
  kmk_groq *g = r->g;
  r->h = NULL;
  if (err) {
    snprintf(r->msg, sizeof r->msg, "%s", kmk_net_strerror(err));
    if (!maybe_retry(r, err, -1)) finish(r, err, resp->status, NULL, NULL, 0, NULL, 0);
    return;
  }
  long st = resp->status;
  if (st != 200) {
    char m[200];
    provider_message(resp, m, sizeof m);
    if (st == 401 || st == 402 || st == 403) {
      snprintf(r->msg, sizeof r->msg, "HTTP %ld: %s%s%s", st,
               st == 401 ? "the API key was rejected; check GROQ_API_KEY"
                         : "the request was refused (account or permissions)",
               m[0] ? ": " : "", m);
      g->fatal = (int)st;
      snprintf(g->fatal_msg, sizeof g->fatal_msg, "Groq STT disabled: %s", r->msg);
      KMK_ERR(TAG, "%s", g->fatal_msg);
      finish(r, KMK_NET_EAUTH, st, NULL, NULL, 0, NULL, 0);
      return;
    }
    snprintf(r->msg, sizeof r->msg, "HTTP %ld%s%s", st, m[0] ? ": " : "", m);
    if (kmk_http_status_retryable(st)) {
      char ra[64];
      double ras = -1;
      if (kmk_http_header(resp, "retry-after", ra, sizeof ra) == 0)
        ras = kmk_http_parse_retry_after(ra, (double)time(NULL));
      else if (st == 429 && kmk_http_header(resp, "x-ratelimit-reset-requests", ra, sizeof ra) == 0)
        ras = kmk_parse_duration_s(ra); /* no Retry-After: Groq's own reset hint */
      int e = st == 429 ? KMK_NET_ERATELIMIT : KMK_NET_ESERVER;
      if (maybe_retry(r, e, ras)) return;
      finish(r, e, st, NULL, NULL, 0, NULL, 0);
      return;
    }
    finish(r, KMK_NET_EHTTP, st, NULL, NULL, 0, NULL, 0);
    return;
  }
  kmk_transcript t;
  kmk_groq_segment segs[KMK_GROQ_MAX_SEGMENTS];
  int n = 0;
  char lang[32];
  double dur = 0;
  if (kmk_groq_parse(resp->body, resp->body_len, &t, segs, KMK_GROQ_MAX_SEGMENTS, &n, lang,
                     sizeof lang, &dur) != 0) {
    snprintf(r->msg, sizeof r->msg, "malformed JSON answer");
    if (!maybe_retry(r, KMK_NET_EPROTO, -1)) finish(r, KMK_NET_EPROTO, st, NULL, NULL, 0, NULL, 0);
    return;
  }
  if (!t.lang[0]) snprintf(t.lang, sizeof t.lang, "%s", r->lang[0] ? r->lang : "en");
  finish(r, 0, st, &t, segs, n, lang, dur); /* finish clears t */
}

static void http_done(void *ud, kmk_http_req *h, int err, const kmk_http_resp *resp) {
  kmk_groq_req *r = ud;
  r->busy++;
  done_in(r, err, resp);
  if (--r->busy == 0 && r->zombie) req_free(r);
}

static int start_attempt(kmk_groq_req *r, double delay_ms) {
  kmk_groq *g = r->g;
  const char *hdrs[3] = {g->auth, NULL, NULL};
  kmk_http_part parts[6];
  size_t n = 0;
  parts[n++] = (kmk_http_part){"file", (const char *)r->wav, r->wav_len, "audio.wav", "audio/wav"};
  parts[n++] = (kmk_http_part){"model", g->model, strlen(g->model), NULL, NULL};
  parts[n++] = (kmk_http_part){"response_format", "verbose_json", 12, NULL, NULL};
  parts[n++] = (kmk_http_part){"temperature", "0", 1, NULL, NULL};
  if (r->lang[0]) parts[n++] = (kmk_http_part){"language", r->lang, strlen(r->lang), NULL, NULL};
  kmk_http_opts o = {.method = "POST", .url = g->url, .headers = g->auth ? hdrs : NULL,
                     .parts = parts, .n_parts = n, .delay_ms = delay_ms,
                     .timeout_ms = g->p.timeout_ms, .first_byte_ms = g->p.first_byte_ms,
                     .stall_ms = g->p.stall_ms, .max_body = 1u << 20, .lane = g->lane,
                     .on_done = http_done, .ud = r};
  r->attempt++;
  r->msg[0] = 0;
  return kmk_http_request(g->http, &o, &r->h);
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

int kmk_groq_transcribe(kmk_groq *g, const int16_t *pcm, size_t n, const char *lang_hint,
                        kmk_groq_done_fn cb, void *ud, kmk_groq_req **out) {
  if (out) *out = NULL;
  if (!g || !pcm || !n || !cb || n > 16000u * 600) return KMK_NET_EINVAL;
  if (g->fatal) return KMK_NET_EAUTH;
  if (!kmk_breaker_allow(&g->breaker, g_now(g) / 1000.0)) return KMK_NET_EOPEN;
  int probe = g->breaker.probing;
  kmk_groq_req *r = calloc(1, sizeof *r);
  uint8_t *wav = malloc(44 + n * 2);
  if (!r || !wav) {
    free(r), free(wav);
    if (probe) g->breaker.probing = 0;
    return KMK_NET_ENOMEM;
  }
  /* RIFF/WAVE, PCM 16-bit mono 16 kHz */
  memcpy(wav, "RIFF", 4);
  put32(wav + 4, (uint32_t)(36 + n * 2));
  memcpy(wav + 8, "WAVEfmt ", 8);
  put32(wav + 16, 16);
  put16(wav + 20, 1);
  put16(wav + 22, 1);
  put32(wav + 24, 16000);
  put32(wav + 28, 32000);
  put16(wav + 32, 2);
  put16(wav + 34, 16);
  memcpy(wav + 36, "data", 4);
  put32(wav + 40, (uint32_t)(n * 2));
  for (size_t i = 0; i < n; i++) put16(wav + 44 + 2 * i, (uint16_t)pcm[i]);
  r->g = g;
  r->wav = wav;
  r->wav_len = 44 + n * 2;
  r->probe = probe;
  r->cb = cb;
  r->ud = ud;
  if (lang_hint && strcmp(lang_hint, "auto") != 0 && strlen(lang_hint) >= 2 &&
      strlen(lang_hint) < sizeof r->lang)
    snprintf(r->lang, sizeof r->lang, "%.2s", lang_hint); /* ISO-639-1: "ru-RU" -> "ru" */
  r->next = g->reqs;
  if (g->reqs) g->reqs->prev = r;
  g->reqs = r;
  r->t0 = g_now(g);
  int rc = start_attempt(r, 0);
  if (rc) {
    r->finished = 1;
    if (probe) g->breaker.probing = 0;
    req_free(r);
    return rc;
  }
  if (out) *out = r;
  return 0;
}
