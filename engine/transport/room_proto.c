/* room_proto.c - the browser room's pure parts: the client-message parser (hello, chat, personas,
 * ping JSON and PCM frame validation), UTF-8 and name checks, the Origin rule, URL-path safety and
 * MIME types. No I/O, no state: any thread may call these; fuzzed by tests/fuzz/fuzz_room_msg.c.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "kameko/room.h"

#define FAIL(code, ...)                  \
  do {                                   \
    if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
    return (code);                       \
  } while (0)

int kmk_room_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    int n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
    else return 0;
    if (end - p <= n) return 0;
    for (int i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    p += n + 1;
  }
  return 1;
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Copies a JSON string trimmed of ASCII white space into out (cap bytes incl. NUL). -1 when too
 * long. */
static int copy_trimmed(const char *v, char *out, size_t cap) {
  while (is_ws(*v)) v++;
  size_t n = strlen(v);
  while (n && is_ws(v[n - 1])) n--;
  if (n >= cap) return -1;
  memcpy(out, v, n);
  out[n] = '\0';
  return 0;
}

static int parse_hello(const cJSON *j, kmk_room_msg *m, char *err, size_t errlen) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
  const cJSON *rate = cJSON_GetObjectItemCaseSensitive(j, "rate");
  if (!cJSON_IsString(name)) FAIL(KMK_ROOM_EINVAL, "hello needs a \"name\" string");
  if (copy_trimmed(name->valuestring, m->name, sizeof m->name) < 0 ||
      utf8_chars(m->name) > KMK_ROOM_NAME_MAX)
    FAIL(KMK_ROOM_EINVAL, "name: at most %d characters", KMK_ROOM_NAME_MAX);
  if (!m->name[0]) FAIL(KMK_ROOM_EINVAL, "name: empty");
  if (!kmk_room_utf8_valid(m->name, strlen(m->name))) FAIL(KMK_ROOM_EINVAL, "name: not UTF-8");
  for (const unsigned char *p = (const unsigned char *)m->name; *p; p++)
    if (*p < 0x20 || *p == 0x7F || *p == '"' || *p == '\\' || *p == '<' || *p == '>')
      FAIL(KMK_ROOM_EINVAL, "name: control characters, quotes and <> are not allowed");
  if (!cJSON_IsNumber(rate) || rate->valuedouble != floor(rate->valuedouble) ||
      rate->valuedouble < KMK_ROOM_MIN_RATE || rate->valuedouble > KMK_ROOM_MAX_RATE)
    FAIL(KMK_ROOM_EINVAL, "hello needs \"rate\" (integer %d..%d)", KMK_ROOM_MIN_RATE,
         KMK_ROOM_MAX_RATE);
  m->rate = (int)rate->valuedouble;
  m->type = KMK_ROOM_MSG_HELLO;
  return 0;
}

static int parse_chat(const cJSON *j, kmk_room_msg *m, char *err, size_t errlen) {
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(j, "text");
  if (!cJSON_IsString(text)) FAIL(KMK_ROOM_EINVAL, "chat needs a \"text\" string");
  if (copy_trimmed(text->valuestring, m->text, sizeof m->text) < 0)
    FAIL(KMK_ROOM_EINVAL, "chat: at most %d bytes", KMK_ROOM_CHAT_MAX);
  if (!kmk_room_utf8_valid(m->text, strlen(m->text))) FAIL(KMK_ROOM_EINVAL, "chat: not UTF-8");
  for (char *p = m->text; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = ' ';
  if (!m->text[0]) FAIL(KMK_ROOM_EINVAL, "chat: empty");
  m->type = KMK_ROOM_MSG_CHAT;
  return 0;
}

static int parse_personas(const cJSON *j, kmk_room_msg *m, char *err, size_t errlen) {
  const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "active");
  if (!cJSON_IsArray(act)) FAIL(KMK_ROOM_EINVAL, "personas needs an \"active\" array");
  int n = cJSON_GetArraySize(act);
  if (n < 1 || n > KMK_ROOM_MAX_ACTIVE)
    FAIL(KMK_ROOM_EINVAL, "personas: choose 1..%d", KMK_ROOM_MAX_ACTIVE);
  m->n_active = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, act) {
    if (!cJSON_IsString(it) || !it->valuestring[0] ||
        strlen(it->valuestring) >= KMK_ROOM_PERSONA_MAX)
      FAIL(KMK_ROOM_EINVAL, "personas: names are non-empty strings under %d bytes",
           KMK_ROOM_PERSONA_MAX);
    for (const char *p = it->valuestring; *p; p++)
      if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
        FAIL(KMK_ROOM_EINVAL, "personas: unknown persona");
    for (size_t k = 0; k < m->n_active; k++)
      if (strcmp(m->active[k], it->valuestring) == 0)
        FAIL(KMK_ROOM_EINVAL, "personas: '%s' listed twice", it->valuestring);
    snprintf(m->active[m->n_active++], KMK_ROOM_PERSONA_MAX, "%s", it->valuestring);
  }
  m->type = KMK_ROOM_MSG_PERSONAS;
  return 0;
}

int kmk_room_parse(const void *data, size_t len, int binary, int rate, kmk_room_msg *m, char *err,
                   size_t errlen) {
  if (err && errlen) err[0] = '\0';
  m->type = 0;
  m->samples = 0;
  m->n_active = 0;
  if (binary) {
    if (rate < KMK_ROOM_MIN_RATE || rate > KMK_ROOM_MAX_RATE)
      FAIL(KMK_ROOM_EPOLICY, "audio before hello");
    size_t min = (size_t)rate * KMK_ROOM_FRAME_MIN_MS / 1000, max = (size_t)rate * KMK_ROOM_FRAME_MAX_MS / 1000;
    if (len % 2) FAIL(KMK_ROOM_EPOLICY, "audio frame of odd length");
    if (len / 2 < min || len / 2 > max)
      FAIL(KMK_ROOM_EPOLICY, "audio frames hold %d..%d ms", KMK_ROOM_FRAME_MIN_MS,
           KMK_ROOM_FRAME_MAX_MS);
    const unsigned char *b = data;
    m->samples = len / 2;
    for (size_t i = 0; i < m->samples; i++)
      m->pcm[i] = (int16_t)(uint16_t)(b[2 * i] | (b[2 * i + 1] << 8));
    m->type = KMK_ROOM_MSG_AUDIO;
    return 0;
  }
  if (len > KMK_ROOM_MAX_JSON) FAIL(KMK_ROOM_EPOLICY, "message too large");
  if (!kmk_room_utf8_valid(data, len)) FAIL(KMK_ROOM_EPOLICY, "text frame is not UTF-8");
  cJSON *j = cJSON_ParseWithLength(data, len);
  if (!j || !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    FAIL(KMK_ROOM_EINVAL, "not a JSON object");
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
  int rc;
  if (!cJSON_IsString(type)) {
    if (err && errlen) snprintf(err, errlen, "message without a \"type\"");
    rc = KMK_ROOM_EINVAL;
  } else if (strcmp(type->valuestring, "hello") == 0) {
    rc = parse_hello(j, m, err, errlen);
  } else if (strcmp(type->valuestring, "chat") == 0) {
    rc = parse_chat(j, m, err, errlen);
  } else if (strcmp(type->valuestring, "personas") == 0) {
    rc = parse_personas(j, m, err, errlen);
  } else if (strcmp(type->valuestring, "ping") == 0) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (cJSON_IsNumber(id) && isfinite(id->valuedouble)) {
      m->ping_id = id->valuedouble;
      m->type = KMK_ROOM_MSG_PING;
      rc = 0;
    } else {
      if (err && errlen) snprintf(err, errlen, "ping needs a numeric \"id\"");
      rc = KMK_ROOM_EINVAL;
    }
  } else {
    if (err && errlen) snprintf(err, errlen, "unknown message type");
    rc = KMK_ROOM_EINVAL;
  }
  cJSON_Delete(j);
  return rc;
}

int kmk_room_bind_is_loopback(const char *bind) {
  if (!bind) return 0;
  return strncmp(bind, "127.", 4) == 0 || strcmp(bind, "::1") == 0 ||
         strcmp(bind, "localhost") == 0;
}

static int origin_is(const char *origin, const char *scheme, const char *host, int port) {
  char want[300];
  if (strchr(host, ':')) snprintf(want, sizeof want, "%s://[%s]:%d", scheme, host, port);
  else snprintf(want, sizeof want, "%s://%s:%d", scheme, host, port);
  return strcasecmp(origin, want) == 0;
}

int kmk_room_origin_ok(const char *origin, int tls, const char *bind, int port,
                       const char *host_hdr) {
  if (!origin || !*origin || !bind) return 0;
  const char *scheme = tls ? "https" : "http";
  if (origin_is(origin, scheme, bind, port)) return 1;
  if (kmk_room_bind_is_loopback(bind))
    return origin_is(origin, scheme, "127.0.0.1", port) ||
           origin_is(origin, scheme, "localhost", port) || origin_is(origin, scheme, "::1", port);
  /* a wildcard bind: the page's own address, whatever the LAN calls us (a token is required) */
  if ((strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0) && host_hdr && *host_hdr) {
    char want[300];
    snprintf(want, sizeof want, "%s://%s", scheme, host_hdr);
    return strcasecmp(origin, want) == 0;
  }
  return 0;
}

int kmk_room_path_ok(const char *path) {
  if (!path || path[0] != '/') return 0;
  size_t n = strlen(path);
  if (n > 200 || strstr(path, "..")) return 0;
  for (const char *p = path; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-' && *p != '/') return 0;
  /* every segment non-empty (except a trailing "/") and not starting with '.' */
  for (const char *s = path + 1; *s;) {
    const char *e = strchr(s, '/');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == 0 && e) return 0;
    if (len && s[0] == '.') return 0;
    if (!e) break;
    s = e + 1;
  }
  return 1;
}

const char *kmk_room_mime(const char *path) {
  static const struct {
    const char *ext, *mime;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".md", "text/markdown; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".ico", "image/x-icon"},
      {".wav", "audio/wav"},
      {".woff2", "font/woff2"},
      {".wasm", "application/wasm"},
  };
  const char *dot = path ? strrchr(path, '.') : NULL;
  if (!dot || strchr(dot, '/')) return NULL;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (strcasecmp(dot, types[i].ext) == 0) return types[i].mime;
  return NULL;
}
