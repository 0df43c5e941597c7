/* llm_client.c - OpenAI-compatible chat completions (OpenRouter, Groq, llama.cpp, Ollama) over
 * kmk_http, with SSE streaming and an incremental scanner that reports each complete sentence of
 * the decision's "response" while the rest still streams.
 *
 * Owns: each kmk_llm_req (request body, SSE parser, sentence scanner, text buffer) and its current
 * kmk_http_req; retries are new kmk_http requests with delay_ms (no timers of our own).
 * Thread: loop thread only (the scanner is pure and any-thread).
 *
 * Policy: 429 -> wait Retry-After (or backoff) unless longer than max_retry_after_s; 408/409/5xx,
 * connect errors and timeouts -> backoff retry, but only while nothing was streamed to the caller
 * (a half-spoken reply is never restarted); 401/402/403 -> fatal for the client with a clear
 * message; consecutive failures open the circuit breaker.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

#define TAG "llm"

/* ---- sentence scanner ---------------------------------------------------------------------- */

enum { ROLE_OTHER = 0, ROLE_KEY, ROLE_RESPONSE, ROLE_SPEAK };
enum { EXP_KEY = 0, EXP_COLON, EXP_VALUE, EXP_COMMA };

void kmk_sscan_init(kmk_sentence_scanner *s, kmk_sentence_fn fn, void *ud) {
  memset(s, 0, sizeof *s);
  s->should_speak = -1;
  s->max_resp = 64 * 1024;
  s->fn = fn;
  s->ud = ud;
}

void kmk_sscan_free(kmk_sentence_scanner *s) {
  free(s->resp);
  s->resp = NULL;
  s->resp_len = s->resp_cap = 0;
}

const char *kmk_sscan_response(const kmk_sentence_scanner *s) { return s->resp ? s->resp : ""; }

static void resp_put(kmk_sentence_scanner *s, const char *b, size_t n) {
  if (s->resp_len + n + 1 > s->max_resp) return;
  if (s->resp_len + n + 1 > s->resp_cap) {
    size_t c = s->resp_cap ? s->resp_cap * 2 : 256;
    while (c < s->resp_len + n + 1) c *= 2;
    char *nb = realloc(s->resp, c);
    if (!nb) return;
    s->resp = nb;
    s->resp_cap = c;
  }
  memcpy(s->resp + s->resp_len, b, n);
  s->resp_len += n;
  s->resp[s->resp_len] = 0;
}

static void put_cp(kmk_sentence_scanner *s, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) b[0] = (char)cp, n = 1;
  else if (cp < 0x800) b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
  else if (cp < 0x10000)
    b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
    b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
  else
    b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
  resp_put(s, b, n);
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* Abbreviations that end in '.' but rarely end a sentence. */
static int abbreviation_before(const char *buf, size_t dot) {
  static const char *abbr[] = {"Mr", "Mrs", "Ms", "Dr", "St", "vs", "etc", "e.g", "i.e", "Jr",
                               "Sr", "т.е", "т.д", "др", "г", "ул", "им", NULL};
  size_t w = dot;
  while (w > 0 && !is_space(buf[w - 1])) w--;
  size_t wl = dot - w;
  for (int i = 0; abbr[i]; i++)
    if (strlen(abbr[i]) == wl && strncmp(buf + w, abbr[i], wl) == 0) return 1;
  /* a single letter initial ("J. Smith") */
  if (wl == 1 && isalpha((unsigned char)buf[w])) return 1;
  return 0;
}

static void emit(kmk_sentence_scanner *s, size_t end) {
  size_t b = s->emitted;
  while (b < end && is_space(s->resp[b])) b++;
  size_t e = end;
  while (e > b && is_space(s->resp[e - 1])) e--;
  s->emitted = end;
  if (e <= b || s->should_speak == 0) return;
  if (s->fn) s->fn(s->ud, s->resp + b, e - b, s->n_sentences);
  s->n_sentences++;
}

/* Looks for sentence ends in resp[emitted..]; `final` flushes the tail. */
static void scan_sentences(kmk_sentence_scanner *s, int final) {
  if (!s->resp) return;
  size_t i = s->emitted;
  while (i < s->resp_len) {
    unsigned char c = (unsigned char)s->resp[i];
    size_t tl = 0;
    if (c == '.' || c == '!' || c == '?') tl = 1;
    else if (c == 0xE2 && i + 2 < s->resp_len && (unsigned char)s->resp[i + 1] == 0x80 &&
             (unsigned char)s->resp[i + 2] == 0xA6)
      tl = 3; /* … */
    if (!tl) {
      i++;
      continue;
    }
    size_t j = i + tl;
    /* a run of terminators and closing quotes/brackets */
    while (j < s->resp_len && (strchr(".!?\"')]", s->resp[j]) != NULL)) j++;
    if (j >= s->resp_len) break; /* need the next character to decide */
    if (is_space(s->resp[j]) && !(c == '.' && tl == 1 && j == i + 1 && abbreviation_before(s->resp, i))) {
      emit(s, j);
      i = j;
      continue;
    }
    i = j;
  }
  if (final && s->emitted < s->resp_len) emit(s, s->resp_len);
}

static void end_string(kmk_sentence_scanner *s) {
  if (s->role == ROLE_KEY) {
    s->key[s->key_len < sizeof s->key ? s->key_len : sizeof s->key - 1] = 0;
    s->expect = EXP_COLON;
  } else if (s->role == ROLE_RESPONSE) {
    scan_sentences(s, 1);
    s->response_done = 1;
    s->expect = EXP_COMMA;
  } else if (s->role == ROLE_SPEAK) {
    s->lit[s->lit_len < sizeof s->lit ? s->lit_len : sizeof s->lit - 1] = 0;
    if (!strcasecmp(s->lit, "true") || !strcasecmp(s->lit, "yes")) s->should_speak = 1;
    else if (!strcasecmp(s->lit, "false") || !strcasecmp(s->lit, "no")) s->should_speak = 0;
    s->expect = EXP_COMMA;
  } else if (s->depth == 1) {
    s->expect = EXP_COMMA;
  }
  s->role = ROLE_OTHER;
}

static void end_literal(kmk_sentence_scanner *s) {
  s->in_lit = 0;
  s->lit[s->lit_len < sizeof s->lit ? s->lit_len : sizeof s->lit - 1] = 0;
  if (!strcmp(s->key, "should_speak")) {
    if (!strcmp(s->lit, "true") || !strcmp(s->lit, "True") || !strcmp(s->lit, "1"))
      s->should_speak = 1;
    else if (!strcmp(s->lit, "false") || !strcmp(s->lit, "False") || !strcmp(s->lit, "0"))
      s->should_speak = 0;
  }
  s->expect = EXP_COMMA;
}

static void string_byte(kmk_sentence_scanner *s, char c) {
  if (s->role == ROLE_KEY) {
    if (s->key_len < sizeof s->key - 1) s->key[s->key_len] = c;
    s->key_len++;
  } else if (s->role == ROLE_SPEAK) {
    if (s->lit_len < sizeof s->lit - 1) s->lit[s->lit_len] = c;
    s->lit_len++;
  }
}

void kmk_sscan_feed(kmk_sentence_scanner *s, const char *buf, size_t len) {
  int resp_grew = 0;
  for (size_t i = 0; i < len && !s->top_done; i++) {
    char c = buf[i];
    if (s->in_str) {
      if (s->upos) { /* \uXXXX */
        int v = isdigit((unsigned char)c) ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (v < 0) {
          s->upos = 0;
          continue;
        }
        s->uval = s->uval * 16 + (unsigned)v;
        if (++s->upos == 5) {
          s->upos = 0;
          unsigned u = s->uval;
          if (u >= 0xD800 && u < 0xDC00) {
            s->hi = u;
          } else {
            if (u >= 0xDC00 && u < 0xE000) {
              u = s->hi ? 0x10000 + ((s->hi - 0xD800) << 10) + (u - 0xDC00) : 0xFFFD;
            }
            s->hi = 0;
            if (s->role == ROLE_RESPONSE) put_cp(s, u), resp_grew = 1;
          }
        }
        continue;
      }
      if (s->esc) {
        s->esc = 0;
        char o = c;
        switch (c) {
        case 'n': o = '\n'; break;
        case 't': o = '\t'; break;
        case 'r': o = '\r'; break;
        case 'b': o = ' '; break;
        case 'f': o = ' '; break;
        case 'u': s->upos = 1; s->uval = 0; continue;
        default: break;
        }
        if (s->role == ROLE_RESPONSE) resp_put(s, &o, 1), resp_grew = 1;
        else string_byte(s, o);
        continue;
      }
      if (c == '\\') {
        s->esc = 1;
        continue;
      }
      if (c == '"') {
        s->in_str = 0;
        if (resp_grew) scan_sentences(s, 0), resp_grew = 0;
        end_string(s);
        continue;
      }
      if (s->role == ROLE_RESPONSE) resp_put(s, &c, 1), resp_grew = 1;
      else string_byte(s, c);
      continue;
    }
    if (s->in_lit) {
      if (isalnum((unsigned char)c) || c == '.' || c == '-') {
        if (s->lit_len < sizeof s->lit - 1) s->lit[s->lit_len] = c;
        s->lit_len++;
        continue;
      }
      end_literal(s);
      /* fall through to handle c structurally */
    }
    if (s->depth == 0) {
      if (c == '{') {
        s->depth = 1;
        s->expect = EXP_KEY;
      }
      continue; /* prose or fences before the object */
    }
    switch (c) {
    case '"':
      s->in_str = 1;
      s->role = ROLE_OTHER;
      if (s->depth == 1 && s->expect == EXP_KEY) {
        s->role = ROLE_KEY;
        s->key_len = 0;
      } else if (s->depth == 1 && s->expect == EXP_VALUE) {
        if (!strcmp(s->key, "response") && !s->response_done) s->role = ROLE_RESPONSE;
        else if (!strcmp(s->key, "should_speak")) s->role = ROLE_SPEAK, s->lit_len = 0;
      }
      break;
    case '{':
    case '[':
      s->depth++;
      break;
    case '}':
    case ']':
      s->depth--;
      if (s->depth == 1) s->expect = EXP_COMMA;
      if (s->depth <= 0) s->top_done = 1;
      break;
    case ':':
      if (s->depth == 1 && s->expect == EXP_COLON) s->expect = EXP_VALUE;
      break;
    case ',':
      if (s->depth == 1) s->expect = EXP_KEY;
      break;
    default:
      if (s->depth == 1 && s->expect == EXP_VALUE && !is_space(c)) {
        s->in_lit = 1;
        s->lit_len = 0;
        s->lit[s->lit_len++] = c;
      }
      break;
    }
  }
  if (resp_grew) scan_sentences(s, 0);
}

/* ---- client -------------------------------------------------------------------------------- */

struct kmk_llm {
  kmk_http *http;
  kmk_http_lane *lane;
  char *url, *auth, *model, *referer, *title;
  kmk_cloud_policy p;
  kmk_breaker breaker;
  int fatal;
  char fatal_msg[320];
  kmk_llm_req *reqs; /* live requests, for kmk_llm_free */
};

struct kmk_llm_req {
  kmk_llm *l;
  kmk_llm_req *prev, *next;
  kmk_http_req *h;
  char *body;
  size_t body_len;
  int stream, attempt, probe;
  kmk_llm_callbacks cb;
  void *ud;
  kmk_sse sse;
  kmk_sentence_scanner scan;
  char *text;
  size_t text_len, text_cap;
  char *err_body;
  size_t err_len;
  int got_done, finished, delivered;
  int busy, zombie;          /* inside our http callbacks / freed when they return */
  int dropped_format;        /* a 400 made us retry without response_format */
  int stream_err;          /* error decided while streaming */
  int stream_code;         /* the mid-stream error object's numeric code, 0 when none */
  char finish_reason[24];
  char msg[256];
  int prompt_tokens, completion_tokens;
  long status;
  double t0, first_byte_ms, first_token_ms, first_sentence_ms;
};

static double llm_now(const kmk_llm *l) { return (double)uv_now(kmk_http_loop(l->http)); }

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

kmk_llm *kmk_llm_new(kmk_http *http, const kmk_llm_opts *o) {
  if (!http || !o || !o->base_url || !o->model) return NULL;
  kmk_llm *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->http = http;
  l->p = o->policy;
  kmk_cloud_policy_defaults(&l->p, 30000, 8000, 5000);
  l->url = kmk_cloud_url(o->base_url, "/chat/completions");
  l->auth = kmk_cloud_bearer(o->api_key);
  l->model = dupstr(o->model);
  if (o->referer) {
    l->referer = malloc(strlen(o->referer) + 16);
    if (l->referer) sprintf(l->referer, "HTTP-Referer: %s", o->referer);
  }
  if (o->title) {
    l->title = malloc(strlen(o->title) + 16);
    if (l->title) sprintf(l->title, "X-Title: %s", o->title);
  }
  l->lane = kmk_http_lane_new(http, "llm", l->p.max_active, l->p.max_queued);
  kmk_breaker_init(&l->breaker, l->p.breaker_threshold, l->p.breaker_cooldown_s);
  if (!l->url || !l->model || !l->lane || (o->api_key && *o->api_key && !l->auth)) {
    free(l->url), free(l->auth), free(l->model), free(l->referer), free(l->title), free(l);
    return NULL;
  }
  return l;
}

static void req_free(kmk_llm_req *r) {
  kmk_llm *l = r->l;
  if (r->prev) r->prev->next = r->next;
  else l->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  kmk_sse_free(&r->sse);
  kmk_sscan_free(&r->scan);
  free(r->body);
  free(r->text);
  free(r->err_body);
  free(r);
}

void kmk_llm_cancel(kmk_llm_req *r) {
  if (!r || r->finished) return;
  r->finished = 1;
  if (r->h) kmk_http_cancel(r->h);
  r->h = NULL;
  if (r->probe) r->l->breaker.probing = 0;
  if (r->busy) r->zombie = 1; /* freed when our http callback unwinds */
  else req_free(r);
}

static void unbusy(kmk_llm_req *r) {
  if (--r->busy == 0 && r->zombie) req_free(r);
}

void kmk_llm_free(kmk_llm *l) {
  if (!l) return;
  while (l->reqs) kmk_llm_cancel(l->reqs);
  free(l->url), free(l->auth), free(l->model), free(l->referer), free(l->title);
  free(l); /* the lane belongs to the http client */
}

int kmk_llm_fatal(const kmk_llm *l, const char **msg) {
  if (msg) *msg = l->fatal ? l->fatal_msg : "";
  return l->fatal;
}

int kmk_llm_available(const kmk_llm *l) {
  return !l->fatal && !kmk_breaker_is_open(&l->breaker, llm_now(l) / 1000.0);
}

/* One line, no control characters, bounded. */
static void oneline(char *dst, size_t n, const char *src) {
  size_t j = 0;
  for (size_t i = 0; src && src[i] && j + 1 < n; i++)
    dst[j++] = (unsigned char)src[i] < 0x20 ? ' ' : src[i];
  dst[j] = 0;
}

static void error_message_from_json(const cJSON *err, char *out, size_t n) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
  if (cJSON_IsString(m)) oneline(out, n, m->valuestring);
  const cJSON *meta = cJSON_GetObjectItemCaseSensitive(err, "metadata");
  const cJSON *raw = meta ? cJSON_GetObjectItemCaseSensitive(meta, "raw") : NULL;
  if (cJSON_IsString(raw) && strlen(out) + 8 < n) {
    size_t k = strlen(out);
    snprintf(out + k, n - k, " (%s)", raw->valuestring);
    oneline(out, n, out);
  }
}

static void finish_req(kmk_llm_req *r, int err) {
  if (r->finished) return;
  kmk_llm *l = r->l;
  r->finished = 1;
  r->h = NULL;
  double now = llm_now(l);
  if (!err) {
    kmk_sscan_feed(&r->scan, "", 0);
    kmk_breaker_success(&l->breaker);
  } else if (err == KMK_NET_EAUTH) {
    l->breaker.probing = 0;
  } else {
    kmk_breaker_failure(&l->breaker, now / 1000.0);
    if (kmk_breaker_is_open(&l->breaker, now / 1000.0))
      KMK_WARN(TAG, "circuit open for %.0f s after %d consecutive failures", l->p.breaker_cooldown_s,
               l->breaker.fails);
  }
  if (err) KMK_WARN(TAG, "chat failed: %s%s%s", kmk_net_strerror(err), r->msg[0] ? ": " : "", r->msg);
  kmk_llm_result res = {
      .err = err,
      .http_status = r->status,
      .text = r->text ? r->text : "",
      .text_len = r->text_len,
      .finish_reason = r->finish_reason,
      .message = err ? r->msg : "",
      .prompt_tokens = r->prompt_tokens,
      .completion_tokens = r->completion_tokens,
      .attempts = r->attempt,
      .sentences = r->scan.n_sentences,
      .first_byte_ms = r->first_byte_ms,
      .first_token_ms = r->first_token_ms,
      .first_sentence_ms = r->first_sentence_ms,
      .total_ms = now - r->t0,
  };
  r->cb.on_done(r->ud, &res);
  if (r->busy) r->zombie = 1;
  else req_free(r);
}

static void on_sentence(void *ud, const char *s, size_t n, int idx) {
  kmk_llm_req *r = ud;
  if (r->first_sentence_ms < 0) r->first_sentence_ms = llm_now(r->l) - r->t0;
  if (r->cb.on_sentence) r->cb.on_sentence(r->ud, s, n, idx);
}

static int text_append(kmk_llm_req *r, const char *s, size_t n) {
  if (r->text_len + n + 1 > r->text_cap) {
    size_t c = r->text_cap ? r->text_cap * 2 : 1024;
    while (c < r->text_len + n + 1) c *= 2;
    if (c > (4u << 20)) return KMK_NET_ETOOBIG;
    char *nb = realloc(r->text, c);
    if (!nb) return KMK_NET_ENOMEM;
    r->text = nb;
    r->text_cap = c;
  }
  memcpy(r->text + r->text_len, s, n);
  r->text_len += n;
  r->text[r->text_len] = 0;
  return 0;
}

static void deliver(kmk_llm_req *r, const char *s, size_t n) {
  if (!n) return;
  if (r->first_token_ms < 0) {
    r->first_token_ms = llm_now(r->l) - r->t0;
    if (r->h) kmk_http_set_deadline(r->h, 0); /* the first-token deadline is met */
  }
  r->delivered = 1;
  if (text_append(r, s, n)) return;
  if (r->cb.on_delta) r->cb.on_delta(r->ud, s, n);
  if (!r->finished) kmk_sscan_feed(&r->scan, s, n);
}

static void read_usage(kmk_llm_req *r, const cJSON *root) {
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
  if (!cJSON_IsObject(u)) return;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
  if (cJSON_IsNumber(p)) r->prompt_tokens = p->valueint;
  if (cJSON_IsNumber(c)) r->completion_tokens = c->valueint;
}

/* Mid-stream: 401/402 (key, credits) disable the provider; 403 there is a moderation verdict on
 * this request only, so it fails the request without disabling anything. */
static int err_code_to_net(const cJSON *err, int *code_out) {
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
  int c = cJSON_IsNumber(code) ? code->valueint : 0;
  *code_out = c;
  if (c == 401 || c == 402) return KMK_NET_EAUTH;
  if (c == 403) return KMK_NET_EHTTP;
  if (c == 429) return KMK_NET_ERATELIMIT;
  return KMK_NET_ESERVER;
}

/* One SSE event. Returns nonzero to stop the stream (r->stream_err or r->got_done set). */
static int on_event(void *ud, const char *data, size_t len) {
  kmk_llm_req *r = ud;
  if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
    r->got_done = 1;
    return 1;
  }
  cJSON *root = cJSON_ParseWithLength(data, len);
  if (!root || !cJSON_IsObject(root)) {
    cJSON_Delete(root);
    snprintf(r->msg, sizeof r->msg, "malformed JSON in the event stream");
    r->stream_err = KMK_NET_EPROTO;
    return 1;
  }
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
  if (err && !cJSON_IsNull(err)) { /* mid-stream error: OpenRouter's chunk or a lone object */
    char m[200] = "";
    error_message_from_json(err, m, sizeof m);
    snprintf(r->msg, sizeof r->msg, "mid-stream error: %s", m[0] ? m : "(no message)");
    r->stream_err = err_code_to_net(err, &r->stream_code);
    snprintf(r->finish_reason, sizeof r->finish_reason, "error");
    cJSON_Delete(root);
    return 1;
  }
  const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
  const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
  if (c0) {
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    const cJSON *content = delta ? cJSON_GetObjectItemCaseSensitive(delta, "content") : NULL;
    if (cJSON_IsString(content)) deliver(r, content->valuestring, strlen(content->valuestring));
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(fr)) snprintf(r->finish_reason, sizeof r->finish_reason, "%s", fr->valuestring);
  }
  read_usage(r, root);
  cJSON_Delete(root);
  return r->finished ? 1 : 0;
}

static int start_attempt(kmk_llm_req *r, double delay_ms);

/* Retry if allowed; returns 1 when a retry was scheduled. */
static int maybe_retry(kmk_llm_req *r, int err, double retry_after_s) {
  kmk_llm *l = r->l;
  if (r->delivered || r->attempt > l->p.max_retries) return 0;
  double d = kmk_backoff_ms(r->attempt, l->p.backoff_base_ms, l->p.backoff_max_ms,
                            (double)rand() / ((double)RAND_MAX + 1));
  if (retry_after_s >= 0) {
    if (retry_after_s > l->p.max_retry_after_s) return 0;
    if (retry_after_s * 1000 > d) d = retry_after_s * 1000;
  }
  KMK_INFO(TAG, "retry %d in %.0f ms after %s%s%s", r->attempt, d, kmk_net_strerror(err),
           r->msg[0] ? ": " : "", r->msg);
  /* reset per-attempt state */
  kmk_sse_free(&r->sse);
  kmk_sse_init(&r->sse, 1 << 20, on_event, r);
  free(r->err_body);
  r->err_body = NULL;
  r->err_len = 0;
  r->text_len = 0;
  if (r->text) r->text[0] = 0;
  r->stream_err = 0;
  r->got_done = 0;
  r->finish_reason[0] = 0;
  if (start_attempt(r, d) != 0) return 0;
  return 1;
}

/* Removes response_format and provider from the request body. 1 when something was removed. */
static int drop_format(kmk_llm_req *r) {
  r->dropped_format = 1;
  cJSON *root = cJSON_ParseWithLength(r->body, r->body_len);
  if (!root) return 0;
  int had = cJSON_HasObjectItem(root, "response_format") || cJSON_HasObjectItem(root, "provider");
  cJSON_DeleteItemFromObjectCaseSensitive(root, "response_format");
  cJSON_DeleteItemFromObjectCaseSensitive(root, "provider");
  char *nb = had ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!nb) return 0;
  free(r->body);
  r->body = nb;
  r->body_len = strlen(nb);
  return 1;
}

static void classify_status(kmk_llm_req *r, const kmk_http_resp *resp) {
  kmk_llm *l = r->l;
  long st = resp->status;
  char m[200] = "";
  cJSON *root = r->err_body ? cJSON_ParseWithLength(r->err_body, r->err_len) : NULL;
  const cJSON *err = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
  if (err) error_message_from_json(err, m, sizeof m);
  cJSON_Delete(root);
  if (st == 401 || st == 402 || st == 403) {
    const char *why = st == 401 ? "the API key was rejected; check LLM_API_KEY / OPENROUTER_API_KEY"
                      : st == 402 ? "no credits left on the account"
                                  : "the request was refused (moderation or a blocked key)";
    snprintf(r->msg, sizeof r->msg, "HTTP %ld: %s%s%.150s", st, why, m[0] ? ": " : "", m);
    l->fatal = (int)st;
    snprintf(l->fatal_msg, sizeof l->fatal_msg, "LLM provider disabled: %s", r->msg);
    KMK_ERR(TAG, "%s", l->fatal_msg);
    finish_req(r, KMK_NET_EAUTH);
    return;
  }
  snprintf(r->msg, sizeof r->msg, "HTTP %ld%s%s", st, m[0] ? ": " : "", m);
  if (kmk_http_status_retryable(st)) {
    char ra[64];
    double ras = -1;
    if (kmk_http_header(resp, "retry-after", ra, sizeof ra) == 0)
      ras = kmk_http_parse_retry_after(ra, (double)time(NULL));
    int e = st == 429 ? KMK_NET_ERATELIMIT : KMK_NET_ESERVER;
    if (maybe_retry(r, e, ras)) return;
    if (st == 429 && ras > l->p.max_retry_after_s) {
      size_t k = strlen(r->msg);
      snprintf(r->msg + k, sizeof r->msg - k, " (Retry-After %.0f s, longer than we wait)", ras);
    }
    finish_req(r, e);
    return;
  }
  /* Some OpenAI-compatible servers refuse response_format / provider options: try once without
     them (the decision parser repairs free-form JSON anyway). */
  if (st == 400 && !r->dropped_format && !r->delivered && drop_format(r) &&
      start_attempt(r, 0) == 0) {
    KMK_INFO(TAG, "retrying without response_format after: %s", r->msg);
    return;
  }
  finish_req(r, KMK_NET_EHTTP);
}

static int http_data_in(kmk_llm_req *r, const kmk_http_resp *resp, const char *d, size_t n);
static int http_data(void *ud, kmk_http_req *h, const kmk_http_resp *resp, const char *d, size_t n) {
  kmk_llm_req *r = ud;
  r->busy++;
  int rc = http_data_in(r, resp, d, n);
  if (r->finished) rc = 1;
  unbusy(r);
  return rc;
}

static int http_data_in(kmk_llm_req *r, const kmk_http_resp *resp, const char *d, size_t n) {
  r->status = resp->status;
  if (r->first_byte_ms < 0) r->first_byte_ms = llm_now(r->l) - r->t0;
  if (resp->status != 200 || !r->stream) { /* error body or non-streamed answer: collect */
    if (r->err_len + n > (1u << 20)) return 0;
    char *nb = realloc(r->err_body, r->err_len + n + 1);
    if (!nb) return 0;
    r->err_body = nb;
    memcpy(r->err_body + r->err_len, d, n);
    r->err_len += n;
    r->err_body[r->err_len] = 0;
    return 0;
  }
  int rc = kmk_sse_feed(&r->sse, d, n);
  if (r->finished) return 1; /* cancelled from a callback */
  if (rc == 0) return 0;
  r->h = NULL; /* we abort the http request: it calls nothing more */
  if (r->got_done) {
    finish_req(r, 0);
  } else {
    int e = rc < 0 ? rc : (r->stream_err ? r->stream_err : KMK_NET_EPROTO);
    if (rc < 0) snprintf(r->msg, sizeof r->msg, "event stream too large or malformed");
    if (e == KMK_NET_EAUTH) {
      r->l->fatal = r->stream_code;
      snprintf(r->l->fatal_msg, sizeof r->l->fatal_msg, "LLM provider disabled: %s", r->msg);
    }
    if (!(e == KMK_NET_ESERVER && maybe_retry(r, e, -1))) finish_req(r, e);
  }
  return 1;
}

static void parse_full(kmk_llm_req *r) {
  cJSON *root = cJSON_ParseWithLength(r->err_body ? r->err_body : "", r->err_len);
  const cJSON *choices = root ? cJSON_GetObjectItemCaseSensitive(root, "choices") : NULL;
  const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
  const cJSON *msg = c0 ? cJSON_GetObjectItemCaseSensitive(c0, "message") : NULL;
  const cJSON *content = msg ? cJSON_GetObjectItemCaseSensitive(msg, "content") : NULL;
  if (!cJSON_IsString(content)) {
    cJSON_Delete(root);
    snprintf(r->msg, sizeof r->msg, "malformed JSON answer");
    if (!maybe_retry(r, KMK_NET_EPROTO, -1)) finish_req(r, KMK_NET_EPROTO);
    return;
  }
  const cJSON *fr = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
  if (cJSON_IsString(fr)) snprintf(r->finish_reason, sizeof r->finish_reason, "%s", fr->valuestring);
  read_usage(r, root);
  deliver(r, content->valuestring, strlen(content->valuestring));
  cJSON_Delete(root);
  if (!r->finished) finish_req(r, 0);
}

static void http_done_in(kmk_llm_req *r, int err, const kmk_http_resp *resp);
static void http_done(void *ud, kmk_http_req *h, int err, const kmk_http_resp *resp) {
  kmk_llm_req *r = ud;
  r->busy++;
  http_done_in(r, err, resp);
  unbusy(r);
}

static void http_done_in(kmk_llm_req *r, int err, const kmk_http_resp *resp) {
  r->h = NULL;
  r->status = resp->status;
  if (err) {
    snprintf(r->msg, sizeof r->msg, "%s%s", kmk_net_strerror(err),
             r->delivered ? " mid-stream" : r->first_byte_ms >= 0 ? " before the first token" : "");
    if (!maybe_retry(r, err, -1)) finish_req(r, err);
    return;
  }
  if (resp->status != 200) {
    classify_status(r, resp);
    return;
  }
  if (!r->stream) {
    parse_full(r);
    return;
  }
  /* the stream ended without [DONE] */
  if (kmk_sse_feed(&r->sse, "\n\n", 2) > 0 && r->got_done) { /* last event had no blank line */
    finish_req(r, 0);
    return;
  }
  if (r->stream_err) {
    finish_req(r, r->stream_err);
    return;
  }
  if (!strcmp(r->finish_reason, "stop") || !strcmp(r->finish_reason, "length")) {
    finish_req(r, 0); /* complete answer, only the [DONE] line is missing */
    return;
  }
  snprintf(r->msg, sizeof r->msg, "stream ended without [DONE] (truncated)");
  if (!maybe_retry(r, KMK_NET_EPROTO, -1)) finish_req(r, KMK_NET_EPROTO);
}

static int start_attempt(kmk_llm_req *r, double delay_ms) {
  kmk_llm *l = r->l;
  const char *hdrs[8];
  int n = 0;
  hdrs[n++] = "Content-Type: application/json";
  hdrs[n++] = r->stream ? "Accept: text/event-stream" : "Accept: application/json";
  if (l->auth) hdrs[n++] = l->auth;
  if (l->referer) hdrs[n++] = l->referer;
  if (l->title) hdrs[n++] = l->title;
  hdrs[n] = NULL;
  kmk_http_opts o = {
      .method = "POST",
      .url = l->url,
      .headers = hdrs,
      .body = r->body,
      .body_len = r->body_len,
      .delay_ms = delay_ms,
      .timeout_ms = l->p.timeout_ms,
      .first_byte_ms = l->p.first_byte_ms,
      .stall_ms = l->p.stall_ms,
      .lane = l->lane,
      .on_data = http_data,
      .on_done = http_done,
      .ud = r,
  };
  r->attempt++;
  r->msg[0] = 0;
  r->first_byte_ms = r->first_token_ms = -1;
  r->t0 = llm_now(l) + (delay_ms > 0 ? delay_ms : 0);
  int rc = kmk_http_request(l->http, &o, &r->h);
  /* first token (not first byte: SSE comments are keep-alives) within first_byte_ms */
  if (rc == 0 && r->stream) kmk_http_set_deadline(r->h, (delay_ms > 0 ? delay_ms : 0) + l->p.first_byte_ms);
  return rc;
}

static char *build_body(kmk_llm *l, const char *messages_json, const kmk_llm_chat_opts *o,
                        int stream, size_t *len) {
  cJSON *msgs = cJSON_Parse(messages_json);
  if (!cJSON_IsArray(msgs)) {
    cJSON_Delete(msgs);
    return NULL;
  }
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", l->model);
  cJSON_AddItemToObject(root, "messages", msgs);
  cJSON_AddBoolToObject(root, "stream", stream);
  if (stream) {
    cJSON *so = cJSON_AddObjectToObject(root, "stream_options");
    cJSON_AddBoolToObject(so, "include_usage", 1);
  }
  if (o && o->temperature >= 0) cJSON_AddNumberToObject(root, "temperature", o->temperature);
  if (o && o->max_tokens > 0) cJSON_AddNumberToObject(root, "max_tokens", o->max_tokens);
  if (o && o->json_mode == KMK_LLM_JSON_OBJECT) {
    cJSON *rf = cJSON_AddObjectToObject(root, "response_format");
    cJSON_AddStringToObject(rf, "type", "json_object");
  } else if (o && o->json_mode == KMK_LLM_JSON_SCHEMA && o->json_schema) {
    cJSON *schema = cJSON_Parse(o->json_schema);
    if (!schema) {
      cJSON_Delete(root);
      return NULL;
    }
    cJSON *rf = cJSON_AddObjectToObject(root, "response_format");
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    cJSON_AddStringToObject(js, "name", "decision");
    cJSON_AddBoolToObject(js, "strict", 1);
    cJSON_AddItemToObject(js, "schema", schema);
  }
  if (o && o->require_parameters) {
    cJSON *prov = cJSON_AddObjectToObject(root, "provider");
    cJSON_AddBoolToObject(prov, "require_parameters", 1);
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (s) *len = strlen(s);
  return s;
}

int kmk_llm_chat(kmk_llm *l, const char *messages_json, const kmk_llm_chat_opts *o,
                 const kmk_llm_callbacks *cb, void *ud, kmk_llm_req **out) {
  if (out) *out = NULL;
  if (!l || !messages_json || !cb || !cb->on_done) return KMK_NET_EINVAL;
  if (l->fatal) return KMK_NET_EAUTH;
  double now_s = llm_now(l) / 1000.0;
  if (!kmk_breaker_allow(&l->breaker, now_s)) return KMK_NET_EOPEN;
  int probe = l->breaker.probing;
  kmk_llm_req *r = calloc(1, sizeof *r);
  if (!r) {
    if (probe) l->breaker.probing = 0;
    return KMK_NET_ENOMEM;
  }
  r->l = l;
  r->probe = probe;
  r->stream = !(o && o->no_stream);
  r->cb = *cb;
  r->ud = ud;
  r->prompt_tokens = r->completion_tokens = -1;
  r->first_sentence_ms = -1;
  kmk_sse_init(&r->sse, 1 << 20, on_event, r);
  kmk_sscan_init(&r->scan, on_sentence, r);
  r->body = build_body(l, messages_json, o, r->stream, &r->body_len);
  r->next = l->reqs;
  if (l->reqs) l->reqs->prev = r;
  l->reqs = r;
  int rc = r->body ? start_attempt(r, 0) : KMK_NET_EINVAL;
  if (rc) {
    r->finished = 1;
    if (probe) l->breaker.probing = 0;
    req_free(r);
    return rc;
  }
  r->t0 = llm_now(l);
  if (out) *out = r;
  return 0;
}
