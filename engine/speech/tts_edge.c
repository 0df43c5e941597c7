/* tts_edge.c - cloud TTS through Edge's read-aloud WebSocket: Sec-MS-GEC token with clock-skew
 * correction, SSML with one voice and validated prosody, text escaped and chunked (<= 4096 bytes,
 * one connection per chunk), binary audio frames parsed and the MP3 decoded to mono PCM.
 *
 * Owns: each kmk_edge_req (its escaped chunks, MP3 decoder, current kmk_ws_conn). The pure helpers
 * (token, voice name, prosody, chunking, SSML, frame parsing) are any-thread and fuzzed through
 * tests/fuzz/fuzz_edge_frame.c; the client is loop thread only.
 *
 * Failure policy: a 403 on the handshake is usually a skewed clock (the token is time-based): the
 * response's Date header gives the skew, which is kept for later requests, and the chunk is retried
 * once. A socket that closes before turn.end is an error (EPROTO when no audio came at all). Each
 * failed request counts toward the circuit breaker; nothing here is fatal (no key involved).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

#define TAG "tts-edge"
#define EDGE_UA                                                                              \
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "         \
  "Chrome/143.0.0.0 Safari/537.36 Edg/143.0.0.0"

/* ---- pure helpers ------------------------------------------------------------------------- */

void kmk_edge_gec_token(double unix_seconds, char out[65]) {
  unsigned long long t = (unsigned long long)(unix_seconds < 0 ? 0 : unix_seconds) + 11644473600ULL;
  t -= t % 300;
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%llu%s", t * 10000000ULL, KMK_EDGE_TRUSTED_TOKEN);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)buf, (size_t)n, md);
  static const char hex[] = "0123456789ABCDEF";
  for (int i = 0; i < 32; i++) out[2 * i] = hex[md[i] >> 4], out[2 * i + 1] = hex[md[i] & 15];
  out[64] = 0;
}

static int is_lower(char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static int is_alnum(char c) { return is_lower(c) || is_upper(c) || (c >= '0' && c <= '9'); }

int kmk_edge_voice_name(const char *v, char *out, size_t outlen) {
  if (!v) return KMK_NET_EINVAL;
  static const char prefix[] = "Microsoft Server Speech Text to Speech Voice (";
  if (strncmp(v, prefix, sizeof prefix - 1) == 0) {
    /* full form: "(ll-CC, NameNeural)" */
    const char *p = v + sizeof prefix - 1;
    if (!(is_lower(p[0]) && is_lower(p[1]) && p[2] == '-' && is_upper(p[3]) && is_upper(p[4]) &&
          p[5] == ',' && p[6] == ' '))
      return KMK_NET_EINVAL;
    const char *name = p + 7;
    size_t k = 0;
    while (is_alnum(name[k])) k++;
    if (k < 2 || name[k] != ')' || name[k + 1]) return KMK_NET_EINVAL;
    if ((size_t)snprintf(out, outlen, "%s", v) >= outlen) return KMK_NET_EINVAL;
    return 0;
  }
  /* short form: "ll-CC-NameNeural" */
  if (!(is_lower(v[0]) && is_lower(v[1]) && v[2] == '-' && is_upper(v[3]) && is_upper(v[4]) &&
        v[5] == '-'))
    return KMK_NET_EINVAL;
  const char *name = v + 6;
  size_t k = 0;
  while (is_alnum(name[k])) k++;
  if (k < 2 || name[k]) return KMK_NET_EINVAL;
  if ((size_t)snprintf(out, outlen, "%s%.5s, %s)", prefix, v, name) >= outlen) return KMK_NET_EINVAL;
  return 0;
}

static int signed_num_with(const char *s, const char *unit) {
  if (!s || (s[0] != '+' && s[0] != '-')) return 0;
  size_t i = 1;
  while (s[i] >= '0' && s[i] <= '9') i++;
  if (i == 1 || i > 5) return 0;
  return strcmp(s + i, unit) == 0;
}

int kmk_edge_prosody_valid(const char *pitch, const char *rate, const char *volume) {
  return signed_num_with(pitch, "Hz") && signed_num_with(rate, "%") && signed_num_with(volume, "%");
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

int kmk_edge_ssml(char *out, size_t outlen, const char *full_voice, const char *lang,
                  const kmk_edge_prosody *p, const char *escaped) {
  kmk_edge_prosody d = {0, 0, 0};
  if (!p) p = &d;
  if (!full_voice || !escaped || !lang) return KMK_NET_EINVAL;
  char pitch[16], rate[16], vol[16];
  snprintf(pitch, sizeof pitch, "%+dHz", clampi(p->pitch_hz, -100, 100));
  snprintf(rate, sizeof rate, "%+d%%", clampi(p->rate_pct, -100, 200));
  snprintf(vol, sizeof vol, "%+d%%", clampi(p->volume_pct, -100, 100));
  if (!kmk_edge_prosody_valid(pitch, rate, vol)) return KMK_NET_EINVAL;
  for (const char *c = lang; *c; c++)
    if (!is_alnum(*c) && *c != '-') return KMK_NET_EINVAL;
  int n = snprintf(out, outlen,
                   "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='%s'>"
                   "<voice name='%s'><prosody pitch='%s' rate='%s' volume='%s'>%s</prosody>"
                   "</voice></speak>",
                   lang, full_voice, pitch, rate, vol, escaped);
  if (n < 0 || (size_t)n >= outlen) return KMK_NET_ETOOBIG;
  return n;
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail) {
  if (s[0] < 0x80) return 1;
  size_t n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
  if (!n || n > avail || s[0] == 0xC0 || s[0] == 0xC1 || s[0] > 0xF4) return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return n;
}

int kmk_edge_chunk_text(const char *text, size_t max_bytes,
                        int (*fn)(void *ud, const char *chunk, size_t len), void *ud) {
  if (!text || !fn || max_bytes < 8) return KMK_NET_EINVAL;
  size_t n = strlen(text);
  if (n > (1u << 20)) return KMK_NET_ETOOBIG;
  /* escape everything, remembering where a split may go (between source characters) */
  char *e = malloc(n * 6 + 1);
  unsigned char *ok = calloc(n * 6 + 2, 1); /* 1 = char boundary, 2 = after a space, 3 = after \n */
  if (!e || !ok) {
    free(e), free(ok);
    return KMK_NET_ENOMEM;
  }
  size_t el = 0;
  const unsigned char *s = (const unsigned char *)text;
  for (size_t i = 0; i < n;) {
    size_t l = utf8_len(s + i, n - i);
    const char *rep = NULL;
    char one[2] = {0, 0};
    unsigned char kind = 1;
    if (!l) { /* invalid byte: a space */
      rep = " ", l = 1, kind = 2;
    } else if (l == 1) {
      unsigned char c = s[i];
      if (c == '&') rep = "&amp;";
      else if (c == '<') rep = "&lt;";
      else if (c == '>') rep = "&gt;";
      else if (c == '"') rep = "&quot;";
      else if (c == '\'') rep = "&apos;";
      else if (c == '\n') rep = "\n", kind = 3;
      else if (c < 0x20 || c == 0x7F) rep = " ", kind = 2;
      else if (c == ' ') rep = " ", kind = 2;
      else one[0] = (char)c, rep = one;
    }
    if (rep) {
      size_t rl = strlen(rep);
      memcpy(e + el, rep, rl);
      el += rl;
    } else {
      memcpy(e + el, s + i, l);
      el += l;
    }
    ok[el] = kind;
    i += l;
  }
  e[el] = 0;
  ok[0] = 1;
  int chunks = 0, rc = 0;
  size_t start = 0;
  while (start < el && rc == 0) {
    size_t end = el;
    if (el - start > max_bytes) {
      /* the last newline in the window, else the last space, else the last character edge */
      size_t lim = start + max_bytes, nl = 0, sp = 0, ch = 0;
      for (size_t p = lim; p > start && !nl; p--) {
        if (ok[p] == 3) nl = p;
        else if (ok[p] == 2 && !sp) sp = p;
        else if (ok[p] && !ch) ch = p;
      }
      end = nl ? nl : sp ? sp : ch ? ch : lim;
      while (end > start && !ok[end]) end--;
      if (end == start) { /* cannot happen with max_bytes >= 8, but never loop forever */
        rc = KMK_NET_EINVAL;
        break;
      }
    }
    /* skip chunks of only white space */
    int blank = 1;
    for (size_t p = start; p < end && blank; p++) blank = e[p] == ' ' || e[p] == '\n';
    if (!blank) {
      char saved = e[end];
      e[end] = 0;
      rc = fn(ud, e + start, end - start);
      e[end] = saved;
      chunks++;
    }
    start = end;
  }
  free(e);
  free(ok);
  return rc ? (rc < 0 ? rc : KMK_NET_EINVAL) : chunks;
}

static void header_value(const char *h, size_t hl, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  out[0] = 0;
  for (size_t i = 0; i < hl;) {
    size_t j = i;
    while (j < hl && h[j] != '\r' && h[j] != '\n') j++;
    if (j - i > nl && strncasecmp(h + i, name, nl) == 0 && h[i + nl] == ':') {
      size_t v = i + nl + 1, vl = j - v;
      if (vl >= outlen) vl = outlen - 1;
      memcpy(out, h + v, vl);
      out[vl] = 0;
      return;
    }
    while (j < hl && (h[j] == '\r' || h[j] == '\n')) j++;
    i = j;
  }
}

int kmk_edge_parse_binary(const uint8_t *f, size_t len, char *path, size_t path_len, char *ctype,
                          size_t ctype_len, const uint8_t **audio, size_t *audio_len) {
  if (!f || len < 2 || !path || !ctype || path_len == 0 || ctype_len == 0) return KMK_NET_EPROTO;
  size_t hl = ((size_t)f[0] << 8) | f[1];
  if (2 + hl > len) return KMK_NET_EPROTO;
  header_value((const char *)f + 2, hl, "Path", path, path_len);
  header_value((const char *)f + 2, hl, "Content-Type", ctype, ctype_len);
  if (audio) *audio = f + 2 + hl;
  if (audio_len) *audio_len = len - 2 - hl;
  return 0;
}

int kmk_edge_parse_text_path(const char *frame, size_t len, char *path, size_t path_len) {
  if (!frame || !path || !path_len) return KMK_NET_EPROTO;
  size_t hl = 0;
  while (hl + 3 < len && memcmp(frame + hl, "\r\n\r\n", 4) != 0) hl++;
  if (hl + 3 >= len) hl = len; /* no body */
  header_value(frame, hl, "Path", path, path_len);
  return path[0] ? 0 : KMK_NET_EPROTO;
}

/* ---- client -------------------------------------------------------------------------------- */

struct kmk_edge {
  kmk_ws *ws;
  char *url, *version, *format;
  kmk_cloud_policy p;
  kmk_breaker breaker;
  double clock_skew;  /* seconds to add to our clock, learned from a 403's Date */
  kmk_edge_req *reqs;
};

struct kmk_edge_req {
  kmk_edge *e;
  kmk_edge_req *prev, *next;
  kmk_ws_conn *conn;
  char **chunks;
  int n_chunks, cur;
  char full_voice[160];
  char lang[8];
  kmk_edge_prosody prosody;
  kmk_edge_callbacks cb;
  void *ud;
  kmk_mp3 *mp3;
  size_t samples, chunk_audio_bytes;
  int rate, retried_403, probe, finished, busy, zombie;
  double t0, first_audio_ms, connect_ms, first_frame_ms;
  char msg[200];
  int http_status;
};

static double e_now(const kmk_edge *e) { return (double)uv_now(kmk_ws_loop(e->ws)); }

kmk_edge *kmk_edge_new(kmk_ws *ws, const kmk_edge_opts *o) {
  if (!ws) return NULL;
  kmk_edge *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->ws = ws;
  e->url = strdup(o && o->url ? o->url : KMK_EDGE_DEFAULT_URL);
  e->version = strdup(o && o->gec_version ? o->gec_version : KMK_EDGE_GEC_VERSION);
  e->format = strdup(o && o->output_format ? o->output_format : "audio-24khz-48kbitrate-mono-mp3");
  if (o) e->p = o->policy;
  if (e->p.timeout_ms <= 0) e->p.timeout_ms = 20000;
  if (e->p.stall_ms <= 0) e->p.stall_ms = 5000;
  if (e->p.breaker_threshold <= 0) e->p.breaker_threshold = 3;
  if (e->p.breaker_cooldown_s <= 0) e->p.breaker_cooldown_s = 30;
  kmk_breaker_init(&e->breaker, e->p.breaker_threshold, e->p.breaker_cooldown_s);
  if (!e->url || !e->version || !e->format) {
    free(e->url), free(e->version), free(e->format), free(e);
    return NULL;
  }
  return e;
}

double kmk_edge_clock_skew(const kmk_edge *e) { return e->clock_skew; }

static void req_free(kmk_edge_req *r) {
  kmk_edge *e = r->e;
  if (r->prev) r->prev->next = r->next;
  else e->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  for (int i = 0; i < r->n_chunks; i++) free(r->chunks[i]);
  free(r->chunks);
  kmk_mp3_free(r->mp3);
  free(r);
}

void kmk_edge_cancel(kmk_edge_req *r) {
  if (!r || r->finished) return;
  r->finished = 1;
  if (r->conn) kmk_ws_close_conn(r->conn);
  r->conn = NULL;
  if (r->probe) r->e->breaker.probing = 0;
  if (r->busy) r->zombie = 1;
  else req_free(r);
}

void kmk_edge_free(kmk_edge *e) {
  if (!e) return;
  while (e->reqs) kmk_edge_cancel(e->reqs);
  free(e->url), free(e->version), free(e->format), free(e);
}

static void finish(kmk_edge_req *r, int err) {
  if (r->finished) return;
  kmk_edge *e = r->e;
  r->finished = 1;
  if (r->conn) kmk_ws_close_conn(r->conn);
  r->conn = NULL;
  double now = e_now(e);
  if (!err) kmk_breaker_success(&e->breaker);
  else kmk_breaker_failure(&e->breaker, now / 1000.0);
  if (err) KMK_WARN(TAG, "synthesis failed: %s%s%s", kmk_net_strerror(err), r->msg[0] ? ": " : "", r->msg);
  kmk_edge_result res = {.err = err, .http_status = r->http_status, .message = err ? r->msg : "",
                         .chunks = r->n_chunks, .samples = r->samples, .sample_rate = r->rate,
                         .connect_ms = r->connect_ms, .first_frame_ms = r->first_frame_ms,
                         .first_audio_ms = r->first_audio_ms, .total_ms = now - r->t0,
                         .clock_skew_s = e->clock_skew, .retried_403 = r->retried_403};
  if (r->cb.on_done) r->cb.on_done(r->ud, &res);
  if (r->busy) r->zombie = 1;
  else req_free(r);
}

static void rand_hex(char *out, size_t nbytes, int upper) {
  unsigned char b[32];
  if (nbytes > sizeof b) nbytes = sizeof b;
  if (RAND_bytes(b, (int)nbytes) != 1)
    for (size_t i = 0; i < nbytes; i++) b[i] = (unsigned char)rand();
  const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  for (size_t i = 0; i < nbytes; i++) out[2 * i] = hex[b[i] >> 4], out[2 * i + 1] = hex[b[i] & 15];
  out[2 * nbytes] = 0;
}

/* "Tue Nov 24 2026 05:40:00 GMT+0000 (Coordinated Universal Time)", like a browser's Date. */
static void js_date(char *out, size_t n) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, n, "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
}

static void on_open(void *ud, kmk_ws_conn *c);
static void on_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary);
static void on_close(void *ud, kmk_ws_conn *c, int err, int status, const char *date, const char *why);

static int connect_chunk(kmk_edge_req *r) {
  kmk_edge *e = r->e;
  char gec[65], conn_id[33], muid[33], url[2048], cookie[64];
  kmk_edge_gec_token((double)time(NULL) + e->clock_skew, gec);
  rand_hex(conn_id, 16, 0);
  rand_hex(muid, 16, 1);
  snprintf(url, sizeof url, "%s%sTrustedClientToken=%s&ConnectionId=%s&Sec-MS-GEC=%s&Sec-MS-GEC-Version=%s",
           e->url, strchr(e->url, '?') ? "&" : "?", KMK_EDGE_TRUSTED_TOKEN, conn_id, gec, e->version);
  snprintf(cookie, sizeof cookie, "Cookie: muid=%s;", muid);
  const char *hdrs[] = {"User-Agent: " EDGE_UA,
                        "Origin: chrome-extension://jdiccldimpdaibmpdkjnbmckianbfold",
                        /* Pragma and Cache-Control: no-cache are added by libwebsockets */
                        "Accept-Language: en-US,en;q=0.9", cookie, NULL};
  kmk_ws_opts o = {.url = url, .headers = hdrs, .timeout_ms = e->p.timeout_ms,
                   .stall_ms = e->p.stall_ms, .max_message = 1u << 20,
                   .cb = {on_open, on_message, on_close}, .ud = r};
  r->chunk_audio_bytes = 0;
  return kmk_ws_connect(e->ws, &o, &r->conn);
}

static void on_open(void *ud, kmk_ws_conn *c) {
  kmk_edge_req *r = ud;
  kmk_edge *e = r->e;
  char date[96], rid[33];
  if (r->connect_ms < 0) r->connect_ms = e_now(e) - r->t0;
  js_date(date, sizeof date);
  rand_hex(rid, 16, 0);
  char cfg[768];
  int n = snprintf(cfg, sizeof cfg,
                   "X-Timestamp:%s\r\nContent-Type:application/json; charset=utf-8\r\n"
                   "Path:speech.config\r\n\r\n"
                   "{\"context\":{\"synthesis\":{\"audio\":{\"metadataoptions\":{"
                   "\"sentenceBoundaryEnabled\":\"false\",\"wordBoundaryEnabled\":\"true\"},"
                   "\"outputFormat\":\"%s\"}}}}\r\n",
                   date, e->format);
  kmk_ws_send(c, cfg, (size_t)n, 0);
  size_t cap = strlen(r->chunks[r->cur]) + 1024;
  char *msg = malloc(cap);
  if (!msg) return;
  int h = snprintf(msg, cap,
                   "X-RequestId:%s\r\nContent-Type:application/ssml+xml\r\nX-Timestamp:%sZ\r\n"
                   "Path:ssml\r\n\r\n",
                   rid, date);
  int s = kmk_edge_ssml(msg + h, cap - (size_t)h, r->full_voice, r->lang, &r->prosody, r->chunks[r->cur]);
  if (s > 0) kmk_ws_send(c, msg, (size_t)(h + s), 0);
  free(msg);
}

static int pcm_cb(void *ud, const int16_t *pcm, size_t n, int rate) {
  kmk_edge_req *r = ud;
  if (r->finished) return 1;
  if (r->first_audio_ms < 0) r->first_audio_ms = e_now(r->e) - r->t0;
  r->samples += n;
  r->rate = rate;
  if (r->cb.on_pcm && r->cb.on_pcm(r->ud, pcm, n, rate)) {
    kmk_edge_cancel(r); /* the caller stopped us: like a cancel, no on_done */
    return 1;
  }
  return 0;
}

static void message_in(kmk_edge_req *r, kmk_ws_conn *c, const void *data, size_t len, int binary) {
  char path[32], ctype[64];
  if (binary) {
    const uint8_t *audio;
    size_t alen;
    if (kmk_edge_parse_binary(data, len, path, sizeof path, ctype, sizeof ctype, &audio, &alen)) {
      snprintf(r->msg, sizeof r->msg, "malformed binary frame");
      finish(r, KMK_NET_EPROTO);
      return;
    }
    if (strcmp(path, "audio") != 0 || alen == 0) return; /* the final frame carries no audio */
    if (!r->mp3 && !(r->mp3 = kmk_mp3_new())) {
      snprintf(r->msg, sizeof r->msg, "no MP3 decoder (libmpg123 missing)");
      finish(r, KMK_NET_EDECODE);
      return;
    }
    r->chunk_audio_bytes += alen;
    if (r->first_frame_ms < 0) r->first_frame_ms = e_now(r->e) - r->t0;
    int rc = kmk_mp3_feed(r->mp3, audio, alen, pcm_cb, r);
    if (rc < 0 && !r->finished) {
      snprintf(r->msg, sizeof r->msg, "MP3 decoding failed");
      finish(r, KMK_NET_EDECODE);
    }
    return;
  }
  if (kmk_edge_parse_text_path(data, len, path, sizeof path) != 0) return;
  if (strcmp(path, "turn.end") != 0) return; /* turn.start, response, audio.metadata */
  kmk_ws_close_conn(c);
  r->conn = NULL;
  if (r->chunk_audio_bytes == 0) {
    snprintf(r->msg, sizeof r->msg, "turn ended without audio (chunk %d)", r->cur + 1);
    finish(r, KMK_NET_EPROTO);
    return;
  }
  if (++r->cur >= r->n_chunks) {
    finish(r, 0);
    return;
  }
  int rc = connect_chunk(r);
  if (rc) {
    snprintf(r->msg, sizeof r->msg, "connect failed for chunk %d", r->cur + 1);
    finish(r, rc);
  }
}

static void on_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary) {
  kmk_edge_req *r = ud;
  r->busy++;
  message_in(r, c, data, len, binary);
  if (--r->busy == 0 && r->zombie) req_free(r);
}

static void close_in(kmk_edge_req *r, int err, int status, const char *date, const char *why) {
  kmk_edge *e = r->e;
  r->conn = NULL;
  r->http_status = status;
  if (status == 403 && !r->retried_403 && r->chunk_audio_bytes == 0) {
    double server = kmk_http_date_to_unix(date);
    double skew = server > 0 ? server - (double)time(NULL) : 0;
    r->retried_403 = 1;
    if (server > 0) e->clock_skew = skew;
    KMK_WARN(TAG, "403 on the handshake: clock skew %+.0f s from the Date header, retrying once", skew);
    int rc = connect_chunk(r);
    if (rc == 0) return;
    err = rc;
  }
  if (status == 403)
    snprintf(r->msg, sizeof r->msg, "HTTP 403 (clock skew or stale Sec-MS-GEC-Version %s)", e->version);
  else if (status)
    snprintf(r->msg, sizeof r->msg, "HTTP %d on the handshake", status);
  else if (r->chunk_audio_bytes == 0 && !err)
    snprintf(r->msg, sizeof r->msg, "socket closed without audio");
  else
    snprintf(r->msg, sizeof r->msg, "%s", why && *why ? why : kmk_net_strerror(err));
  if (status >= 500) err = KMK_NET_ESERVER;
  else if (status == 429) err = KMK_NET_ERATELIMIT;
  else if (!err) err = r->chunk_audio_bytes == 0 ? KMK_NET_EPROTO : KMK_NET_ECONNECT;
  else if (err == KMK_NET_ECONNECT && r->chunk_audio_bytes == 0 && !status &&
           strstr(r->msg, "closed") != NULL)
    snprintf(r->msg, sizeof r->msg, "socket closed without audio");
  finish(r, err);
}

static void on_close(void *ud, kmk_ws_conn *c, int err, int status, const char *date, const char *why) {
  kmk_edge_req *r = ud;
  r->busy++;
  close_in(r, err, status, date, why);
  if (--r->busy == 0 && r->zombie) req_free(r);
}

int kmk_edge_available(const kmk_edge *e) {
  return !kmk_breaker_is_open(&e->breaker, e_now(e) / 1000.0);
}

static int add_chunk(void *ud, const char *chunk, size_t len) {
  kmk_edge_req *r = ud;
  char **nc = realloc(r->chunks, sizeof(char *) * (size_t)(r->n_chunks + 1));
  if (!nc) return KMK_NET_ENOMEM;
  r->chunks = nc;
  r->chunks[r->n_chunks] = strndup(chunk, len);
  if (!r->chunks[r->n_chunks]) return KMK_NET_ENOMEM;
  r->n_chunks++;
  return 0;
}

int kmk_edge_tts_synth(kmk_edge *e, const char *text, const char *voice,
                       const kmk_edge_prosody *prosody, const kmk_edge_callbacks *cb, void *ud,
                       kmk_edge_req **out) {
  if (out) *out = NULL;
  if (!e || !text || !cb || !cb->on_done) return KMK_NET_EINVAL;
  kmk_edge_req *r = calloc(1, sizeof *r);
  if (!r) return KMK_NET_ENOMEM;
  r->e = e;
  if (kmk_edge_voice_name(voice ? voice : KMK_EDGE_DEFAULT_VOICE, r->full_voice, sizeof r->full_voice)) {
    free(r);
    return KMK_NET_EINVAL;
  }
  const char *v = strchr(r->full_voice, '(');
  snprintf(r->lang, sizeof r->lang, "%.5s", v ? v + 1 : "en-US");
  if (prosody) r->prosody = *prosody;
  r->cb = *cb;
  r->ud = ud;
  r->first_audio_ms = r->connect_ms = r->first_frame_ms = -1;
  r->next = e->reqs;
  if (e->reqs) e->reqs->prev = r;
  e->reqs = r;
  int n = kmk_edge_chunk_text(text, KMK_EDGE_CHUNK_MAX, add_chunk, r);
  if (n <= 0) {
    r->finished = 1;
    req_free(r);
    return n < 0 ? n : KMK_NET_EINVAL; /* nothing to say */
  }
  if (!kmk_breaker_allow(&e->breaker, e_now(e) / 1000.0)) {
    r->finished = 1;
    req_free(r);
    return KMK_NET_EOPEN;
  }
  r->probe = e->breaker.probing;
  r->t0 = e_now(e);
  int rc = connect_chunk(r);
  if (rc) {
    if (r->probe) e->breaker.probing = 0;
    r->finished = 1;
    req_free(r);
    return rc;
  }
  if (out) *out = r;
  return 0;
}
