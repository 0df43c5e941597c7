/* decision.c - decision validation and the parser of an LLM's raw answer into a decision.
 *
 * The LLM is outside input: its text may be fenced, wrapped in prose, truncated or JSON-ish
 * (single quotes, trailing commas, Python literals, bare keys, raw newlines in strings). We repair
 * what is reasonable and otherwise fail with a clear message; the caller then stays silent.
 * Fuzzed by tests/fuzz/fuzz_decision.c.
 *
 * Owns the strings of the decisions it fills (freed by kmk_decision_clear). Pure functions: any
 * thread may call.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "kameko/brain.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEC_MAX_TEXT (64 * 1024) /* bytes of LLM answer considered */
#define DEC_MAX_NEST 64
#define DEC_MAX_ADDRESSED 64
#define DEC_MAX_TRIES 8

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

int kmk_decision_has_cyrillic(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  for (; p && *p; p++)
    if ((p[0] == 0xD0 || p[0] == 0xD1) && (p[1] & 0xC0) == 0x80) return 1;
  return 0;
}

static int has_latin(const char *s) {
  for (; *s; s++)
    if (isalpha((unsigned char)*s)) return 1;
  return 0;
}

void kmk_decision_clear(kmk_decision *d) {
  if (!d) return;
  free(d->thought);
  free(d->response);
  free(d->addressed);
  memset(d, 0, sizeof *d);
}

/* Trims ASCII whitespace; caps at max code points, preferring a sentence end, then a space
 * (adding an ellipsis) in the last half. Returns a new string. */
static char *trim_cap(const char *s, size_t max) {
  while (*s && isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) n--;
  size_t cps = 0, cut = n;
  for (size_t i = 0; i < n; i++) {
    if (((unsigned char)s[i] & 0xC0) != 0x80) {
      if (cps == max) {
        cut = i;
        break;
      }
      cps++;
    }
  }
  if (cut == n) return dup_n(s, n);
  /* over the cap: look back for a sentence end, then a space */
  size_t best = 0;
  for (size_t i = cut; i > cut / 2; i--) {
    char c = s[i - 1];
    if ((c == '.' || c == '!' || c == '?') && (i == cut || s[i] == ' ')) {
      best = i;
      break;
    }
  }
  if (best) return dup_n(s, best);
  for (size_t i = cut; i > cut / 2; i--) {
    if (s[i - 1] == ' ') {
      size_t k = i - 1;
      while (k && s[k - 1] == ' ') k--;
      char *r = malloc(k + 4);
      if (!r) return NULL;
      memcpy(r, s, k);
      memcpy(r + k, "\xE2\x80\xA6", 4); /* … */
      return r;
    }
  }
  return dup_n(s, cut);
}

static int parse_bool(const cJSON *it, int *out) {
  if (cJSON_IsBool(it)) {
    *out = cJSON_IsTrue(it);
    return 0;
  }
  if (cJSON_IsNumber(it)) {
    *out = it->valuedouble != 0;
    return 0;
  }
  if (cJSON_IsNull(it)) {
    *out = 0;
    return 0;
  }
  if (cJSON_IsString(it) && it->valuestring) {
    char b[16];
    size_t n = 0;
    for (const char *p = it->valuestring; *p && n < sizeof b - 1; p++)
      if (!isspace((unsigned char)*p)) b[n++] = (char)tolower((unsigned char)*p);
    b[n] = '\0';
    if (!strcmp(b, "true") || !strcmp(b, "yes") || !strcmp(b, "1")) *out = 1;
    else if (!strcmp(b, "false") || !strcmp(b, "no") || !strcmp(b, "0") || !n) *out = 0;
    else return -1;
    return 0;
  }
  return -1;
}

static const cJSON *field(const cJSON *obj, const char *a, const char *b) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, a);
  if (!it && b) it = cJSON_GetObjectItemCaseSensitive(obj, b);
  return it;
}

static int valid_lang(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 2 || n > 3) return 0;
  for (size_t i = 0; i < n; i++)
    if (!islower((unsigned char)s[i])) return 0;
  return 1;
}

int kmk_decision_from_json(const cJSON *obj, size_t max_reply, const char *lang_hint,
                           kmk_decision *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!cJSON_IsObject(obj)) {
    set_err(err, errlen, "decision is not a JSON object");
    return -1;
  }
  if (!max_reply) max_reply = KMK_DECISION_DEFAULT_MAX_REPLY;
  const cJSON *ss = field(obj, "should_speak", "shouldSpeak");
  if (!ss) {
    set_err(err, errlen, "decision has no \"should_speak\"");
    return -1;
  }
  int speak;
  if (parse_bool(ss, &speak) != 0) {
    set_err(err, errlen, "\"should_speak\" must be a boolean");
    return -1;
  }
  const cJSON *th = field(obj, "thought", NULL);
  if (th && !cJSON_IsNull(th) && !cJSON_IsString(th)) {
    set_err(err, errlen, "\"thought\" must be a string");
    return -1;
  }
  const cJSON *rs = field(obj, "response", "reply");
  if (rs && !cJSON_IsNull(rs) && !cJSON_IsString(rs)) {
    set_err(err, errlen, "\"response\" must be a string");
    return -1;
  }
  out->thought = trim_cap(cJSON_IsString(th) ? th->valuestring : "", 2000);
  out->response = trim_cap(cJSON_IsString(rs) ? rs->valuestring : "", max_reply);
  if (!out->thought || !out->response) {
    kmk_decision_clear(out);
    set_err(err, errlen, "out of memory");
    return -1;
  }
  out->should_speak = speak && out->response[0] != '\0';
  if (!out->should_speak) out->response[0] = '\0';

  const cJSON *lg = field(obj, "lang", "language");
  const char *lang = cJSON_IsString(lg) && valid_lang(lg->valuestring) ? lg->valuestring : NULL;
  if (!lang) {
    if (kmk_decision_has_cyrillic(out->response)) lang = "ru";
    else if (lang_hint && valid_lang(lang_hint) &&
             !(strcmp(lang_hint, "ru") == 0 && has_latin(out->response)))
      lang = lang_hint;
    else lang = "en";
  }
  snprintf(out->lang, sizeof out->lang, "%s", lang);

  const cJSON *ad = field(obj, "addressed", NULL);
  if (cJSON_IsString(ad) && ad->valuestring[0]) {
    size_t n = strlen(ad->valuestring);
    if (n > DEC_MAX_ADDRESSED) {
      n = DEC_MAX_ADDRESSED; /* on a UTF-8 boundary */
      while (n && ((unsigned char)ad->valuestring[n] & 0xC0) == 0x80) n--;
    }
    out->addressed = dup_n(ad->valuestring, n);
  }
  /* floor and voice hints (set by the scripts, never by an LLM's text: brain.lua rebuilds them) */
  int b;
  const cJSON *am = field(obj, "addressed_me", NULL), *yl = field(obj, "yield", NULL);
  if (am && parse_bool(am, &b) == 0) out->addressed_me = b;
  if (yl && parse_bool(yl, &b) == 0) out->yield = b;
  const cJSON *vo = field(obj, "voice", NULL);
  if (cJSON_IsObject(vo)) {
    const cJSON *vn = cJSON_GetObjectItem(vo, "voice"), *vr = cJSON_GetObjectItem(vo, "rate"),
                *vp = cJSON_GetObjectItem(vo, "pitch");
    if (cJSON_IsString(vn) && strlen(vn->valuestring) < sizeof out->voice)
      snprintf(out->voice, sizeof out->voice, "%s", vn->valuestring);
    if (cJSON_IsNumber(vr) && vr->valuedouble >= 50 && vr->valuedouble <= 500) out->rate = vr->valueint;
    if (cJSON_IsNumber(vp) && vp->valuedouble >= 0 && vp->valuedouble <= 100) out->pitch = vp->valueint;
  }
  return 0;
}

/* ---- raw LLM text ---- */

typedef struct {
  char *p;
  size_t n, cap;
} sbuf;

static int sb_put(sbuf *b, char c) {
  if (b->n + 1 >= b->cap) return -1;
  b->p[b->n++] = c;
  b->p[b->n] = '\0';
  return 0;
}

static int sb_puts(sbuf *b, const char *s) {
  for (; *s; s++)
    if (sb_put(b, *s)) return -1;
  return 0;
}

static size_t skip_ws(const char *s, size_t i, size_t n) {
  while (i < n && isspace((unsigned char)s[i])) i++;
  return i;
}

/* A quote closes a string only when what follows is structure (or the end): lets apostrophes
 * and unescaped inner quotes survive. */
static int closes_here(const char *s, size_t i, size_t n) {
  size_t j = skip_ws(s, i + 1, n);
  return j >= n || s[j] == ',' || s[j] == '}' || s[j] == ']' || s[j] == ':';
}

/* Rewrites JSON-ish text into JSON. Returns a new string or NULL. */
static char *repair(const char *s, size_t n) {
  sbuf b = {malloc(2 * n + DEC_MAX_NEST + 8), 0, 2 * n + DEC_MAX_NEST + 8};
  if (!b.p) return NULL;
  b.p[0] = '\0';
  char stack[DEC_MAX_NEST];
  int depth = 0;
  char q = 0; /* quote of the open string, 0 outside strings */
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (q) {
      if (c == '\\' && i + 1 < n) {
        char e = s[++i];
        if (e == '\'') sb_put(&b, '\'');
        else if (strchr("\"\\/bfnrtu", e)) {
          sb_put(&b, '\\');
          sb_put(&b, e);
        } else sb_put(&b, e);
      } else if (c == q && closes_here(s, i, n)) {
        sb_put(&b, '"');
        q = 0;
      } else if (c == '"') {
        sb_puts(&b, "\\\"");
      } else if (c == '\n') {
        sb_puts(&b, "\\n");
      } else if (c == '\r') {
        sb_puts(&b, "\\r");
      } else if (c == '\t') {
        sb_puts(&b, "\\t");
      } else if ((unsigned char)c >= 0x20) {
        sb_put(&b, c);
      }
      continue;
    }
    if (c == '"' || c == '\'') {
      q = c;
      sb_put(&b, '"');
    } else if (c == '{' || c == '[') {
      if (depth == DEC_MAX_NEST) break;
      stack[depth++] = c == '{' ? '}' : ']';
      sb_put(&b, c);
    } else if (c == '}' || c == ']') {
      if (depth && stack[depth - 1] == c) depth--;
      else if (!depth) break;
      sb_put(&b, c);
      if (!depth) break; /* the top object is complete: ignore what follows */
    } else if (c == ',') {
      size_t j = skip_ws(s, i + 1, n);
      if (j < n && (s[j] == '}' || s[j] == ']')) continue; /* trailing comma */
      sb_put(&b, c);
    } else if (c == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n') i++;
    } else if (isalpha((unsigned char)c) || c == '_') {
      size_t j = i;
      while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '_')) j++;
      size_t wl = j - i;
      const char *w = s + i;
      size_t k = skip_ws(s, j, n);
      if (k < n && s[k] == ':') {
        sb_put(&b, '"');
        for (size_t m = 0; m < wl; m++) sb_put(&b, w[m]);
        sb_put(&b, '"');
      } else if ((wl == 4 && !strncmp(w, "True", 4)) || (wl == 4 && !strncmp(w, "true", 4))) {
        sb_puts(&b, "true");
      } else if ((wl == 5 && !strncmp(w, "False", 5)) || (wl == 5 && !strncmp(w, "false", 5))) {
        sb_puts(&b, "false");
      } else if ((wl == 4 && (!strncmp(w, "None", 4) || !strncmp(w, "null", 4))) ||
                 (wl == 3 && !strncmp(w, "nil", 3))) {
        sb_puts(&b, "null");
      } else {
        for (size_t m = 0; m < wl; m++) sb_put(&b, w[m]);
      }
      i = j - 1;
    } else {
      sb_put(&b, c);
    }
  }
  /* truncated answer: close the open string, drop a dangling comma/colon, close containers */
  if (q) sb_put(&b, '"');
  while (b.n && (isspace((unsigned char)b.p[b.n - 1]) || b.p[b.n - 1] == ',')) b.p[--b.n] = '\0';
  if (b.n && b.p[b.n - 1] == ':') sb_puts(&b, "null");
  while (depth) sb_put(&b, stack[--depth]);
  return b.p;
}

/* Parses s[0..n) as a decision object (as is, then repaired). */
static cJSON *try_object(const char *s, size_t n) {
  cJSON *j = cJSON_ParseWithLength(s, n);
  if (cJSON_IsObject(j)) return j;
  cJSON_Delete(j);
  char *r = repair(s, n);
  if (!r) return NULL;
  j = cJSON_Parse(r);
  free(r);
  if (cJSON_IsObject(j)) return j;
  cJSON_Delete(j);
  return NULL;
}

static int is_decision(const cJSON *j) { return field(j, "should_speak", "shouldSpeak") != NULL; }

int kmk_decision_parse_llm(const char *text, size_t len, size_t max_reply, const char *lang_hint,
                           kmk_decision *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!text || !len) {
    set_err(err, errlen, "empty LLM answer");
    return -1;
  }
  if (len > DEC_MAX_TEXT) len = DEC_MAX_TEXT;
  const char *s = text;
  size_t n = strnlen(text, len);
  /* a ```json fence narrows the search to its content */
  const char *f = memmem(s, n, "```", 3);
  if (f) {
    const char *body = f + 3;
    const char *nl = memchr(body, '\n', n - (size_t)(body - s));
    const char *brace = memchr(body, '{', n - (size_t)(body - s));
    if (nl && (!brace || nl < brace)) body = nl + 1;
    const char *end = memmem(body, n - (size_t)(body - s), "```", 3);
    if (memchr(body, '{', (size_t)((end ? end : s + n) - body))) {
      n = (size_t)((end ? end : s + n) - body);
      s = body;
    }
  }
  cJSON *obj = NULL;
  const char *last = NULL;
  for (size_t k = n; k > 0 && !last; k--)
    if (s[k - 1] == '}') last = s + k - 1;
  /* each '{' is a candidate start (prose may hold braces); the first decision-shaped one wins;
   * a few tries only, so a brace flood costs linear time */
  int tries = 0;
  for (size_t i = 0; i < n && !obj && tries < DEC_MAX_TRIES; i++) {
    if (s[i] != '{') continue;
    tries++;
    if (last && last > s + i) obj = try_object(s + i, (size_t)(last - (s + i)) + 1);
    if (obj && !is_decision(obj)) {
      cJSON_Delete(obj);
      obj = NULL;
    }
    if (!obj) {
      obj = try_object(s + i, n - i); /* repair stops at the end of the first object */
      if (obj && !is_decision(obj)) {
        cJSON_Delete(obj);
        obj = NULL;
      }
    }
  }
  if (!obj) {
    int any = memchr(s, '{', n) != NULL;
    set_err(err, errlen,
            any ? "LLM answer has no parseable JSON object with \"should_speak\""
                : "LLM answer has no JSON object");
    return -1;
  }
  int rc = kmk_decision_from_json(obj, max_reply, lang_hint, out, err, errlen);
  cJSON_Delete(obj);
  return rc;
}
