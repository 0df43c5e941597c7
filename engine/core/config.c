/* config.c - settings: defaults < .env < environment < --set flags; validation; secret redaction.
 * Thread: loop thread (or main before the loop starts). The config owns all its strings.
 */
#include "kameko/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/log.h"

static const kmk_config_key keys[] = {
    {"DISCORD_TOKEN", "", 1, "Discord bot token (enables the Discord transport)"},
    {"GROQ_API_KEY", "", 1, "Groq key for Whisper speech-to-text"},
    {"OPENROUTER_API_KEY", "", 1, "OpenRouter key for the LLM"},
    {"LLM_API_KEY", "", 1, "LLM key (defaults to OPENROUTER_API_KEY)"},
    {"GROQ_BASE_URL", "https://api.groq.com/openai/v1", 0, "Groq (or compatible) STT base URL"},
    {"STT_MODEL", "whisper-large-v3", 0, "speech-to-text model"},
    {"LLM_BASE_URL", "https://openrouter.ai/api/v1", 0, "OpenAI-compatible chat base URL"},
    {"LLM_MODEL", "meta-llama/llama-3.3-70b-instruct", 0, "chat model"},
    {"EDGE_TTS_URL",
     "wss://speech.platform.bing.com/consumer/speech/synthesize/readaloud/edge/v1", 0,
     "Edge read-aloud WebSocket URL"},
    {"DISCORD_API_URL", "https://discord.com/api/v10", 0, "Discord REST base URL"},
    {"DISCORD_GATEWAY_URL", "wss://gateway.discord.gg/?v=10&encoding=json", 0,
     "Discord gateway URL (ws:// also makes the voice gateway plain ws://, for local peers)"},
    {"KMK_DISCORD_LEAVE_S", "30", 0, "seconds alone in a voice channel before leaving (0-3600)"},
    {"KMK_ROOM_BIND", "127.0.0.1", 0, "browser room address (other than loopback needs KMK_ROOM_TOKEN)"},
    {"KMK_ROOM_PORT", "8765", 0, "browser room port (0 = any free port)"},
    {"KMK_ROOM_TOKEN", "", 1, "browser room token (required when not bound to loopback)"},
    {"KMK_ROOM_TLS_CERT", "", 0, "PEM certificate: the room serves https/wss (LAN microphones need it)"},
    {"KMK_ROOM_TLS_KEY", "", 0, "PEM private key of KMK_ROOM_TLS_CERT"},
    {"KMK_LOG_LEVEL", "info", 0, "error|warn|info|debug"},
    {"KMK_PERSONA_DIR", "", 0, "folder of persona files (default: the source tree's personas/)"},
    {"KMK_SCRIPTS_DIR", "", 0, "folder of engine Lua scripts (default: the source tree's scripts/)"},
    {"KMK_LUA_MEM_MB", "32", 0, "memory cap per persona Lua state, MiB (1-1024)"},
    {"KMK_LUA_BUDGET_MS", "5", 0, "CPU-time budget per Lua call, ms (0.1-1000)"},
    {NULL, NULL, 0, NULL}};

const kmk_config_key *kmk_config_keys(void) { return keys; }

static char **slot(kmk_config *c, const char *key) {
  static const struct {
    const char *key;
    size_t off;
  } map[] = {
      {"DISCORD_TOKEN", offsetof(kmk_config, discord_token)},
      {"GROQ_API_KEY", offsetof(kmk_config, groq_api_key)},
      {"OPENROUTER_API_KEY", offsetof(kmk_config, openrouter_api_key)},
      {"LLM_API_KEY", offsetof(kmk_config, llm_api_key)},
      {"GROQ_BASE_URL", offsetof(kmk_config, groq_base_url)},
      {"STT_MODEL", offsetof(kmk_config, stt_model)},
      {"LLM_BASE_URL", offsetof(kmk_config, llm_base_url)},
      {"LLM_MODEL", offsetof(kmk_config, llm_model)},
      {"EDGE_TTS_URL", offsetof(kmk_config, edge_tts_url)},
      {"DISCORD_API_URL", offsetof(kmk_config, discord_api_url)},
      {"DISCORD_GATEWAY_URL", offsetof(kmk_config, discord_gateway_url)},
      {"KMK_ROOM_BIND", offsetof(kmk_config, room_bind)},
      {"KMK_ROOM_TOKEN", offsetof(kmk_config, room_token)},
      {"KMK_ROOM_TLS_CERT", offsetof(kmk_config, room_tls_cert)},
      {"KMK_ROOM_TLS_KEY", offsetof(kmk_config, room_tls_key)},
      {"KMK_LOG_LEVEL", offsetof(kmk_config, log_level)},
      {"KMK_PERSONA_DIR", offsetof(kmk_config, persona_dir)},
      {"KMK_SCRIPTS_DIR", offsetof(kmk_config, scripts_dir)},
  };
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i].key, key) == 0) return (char **)((char *)c + map[i].off);
  return NULL;
}

static const kmk_config_key *find_key(const char *key) {
  for (const kmk_config_key *k = keys; k->key; k++)
    if (strcmp(k->key, key) == 0) return k;
  return NULL;
}

static int valid_url(const char *v, const char *const *schemes) {
  for (; *schemes; schemes++) {
    size_t n = strlen(*schemes);
    if (strncmp(v, *schemes, n) == 0 && v[n] != '\0' && v[n] != '/') return 1;
  }
  return 0;
}

static int parse_num(const char *v, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end != '\0' || d < lo || d > hi) return -1;
  *out = d;
  return 0;
}

int kmk_config_set(kmk_config *c, const char *key, const char *value, char *err, size_t errlen) {
  const kmk_config_key *k = find_key(key);
  if (!k) {
    snprintf(err, errlen, "unknown setting '%s' (see kameko --help for the list)", key);
    return -1;
  }
  static const char *const http[] = {"http://", "https://", NULL};
  static const char *const ws[] = {"ws://", "wss://", NULL};
  if (strcmp(key, "GROQ_BASE_URL") == 0 || strcmp(key, "LLM_BASE_URL") == 0 ||
      strcmp(key, "DISCORD_API_URL") == 0) {
    if (!valid_url(value, http)) {
      snprintf(err, errlen, "%s='%s' is not an http:// or https:// URL", key, value);
      return -1;
    }
  } else if (strcmp(key, "EDGE_TTS_URL") == 0 || strcmp(key, "DISCORD_GATEWAY_URL") == 0) {
    if (!valid_url(value, ws)) {
      snprintf(err, errlen, "%s='%s' is not a ws:// or wss:// URL", key, value);
      return -1;
    }
  } else if (strcmp(key, "KMK_LOG_LEVEL") == 0) {
    if (kmk_log_parse_level(value) < 0) {
      snprintf(err, errlen, "%s='%s' is not one of error, warn, info, debug", key, value);
      return -1;
    }
  } else if (strcmp(key, "KMK_LUA_MEM_MB") == 0) {
    double d;
    if (parse_num(value, 1, 1024, &d) < 0) {
      snprintf(err, errlen, "%s='%s' is not a number of MiB from 1 to 1024", key, value);
      return -1;
    }
    c->lua_mem_mb = (int)d;
    return 0;
  } else if (strcmp(key, "KMK_ROOM_PORT") == 0) {
    double d;
    if (parse_num(value, 0, 65535, &d) < 0 || d != (int)d) {
      snprintf(err, errlen, "%s='%s' is not a port number from 0 to 65535", key, value);
      return -1;
    }
    c->room_port = (int)d;
    return 0;
  } else if (strcmp(key, "KMK_DISCORD_LEAVE_S") == 0) {
    double d;
    if (parse_num(value, 0, 3600, &d) < 0) {
      snprintf(err, errlen, "%s='%s' is not a number of seconds from 0 to 3600", key, value);
      return -1;
    }
    c->discord_leave_s = d;
    return 0;
  } else if (strcmp(key, "KMK_ROOM_BIND") == 0 && !*value) {
    snprintf(err, errlen, "%s must not be empty", key);
    return -1;
  } else if (strcmp(key, "KMK_LUA_BUDGET_MS") == 0) {
    double d;
    if (parse_num(value, 0.1, 1000, &d) < 0) {
      snprintf(err, errlen, "%s='%s' is not a number of ms from 0.1 to 1000", key, value);
      return -1;
    }
    c->lua_budget_ms = d;
    return 0;
  } else if ((strcmp(key, "STT_MODEL") == 0 || strcmp(key, "LLM_MODEL") == 0) && !*value) {
    snprintf(err, errlen, "%s must not be empty", key);
    return -1;
  }
  if (k->secret) {
    for (const char *p = value; *p; p++)
      if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20) {
        snprintf(err, errlen, "%s contains white space or control characters (value not shown)",
                 key);
        return -1;
      }
    kmk_log_add_secret(value);
  }
  char **s = slot(c, key);
  char *dup = strdup(value);
  if (!dup) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  free(*s);
  *s = dup;
  return 0;
}

int kmk_dotenv_parse(const char *text, int (*fn)(void *ud, const char *key, const char *value),
                     void *ud, char *err, size_t errlen) {
  int lineno = 0;
  const char *p = text;
  char key[128], val[4096];
  while (*p) {
    lineno++;
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    const char *q = p, *end = p + len;
    p = eol ? eol + 1 : p + len;
    while (q < end && isspace((unsigned char)*q)) q++;
    while (end > q && isspace((unsigned char)end[-1])) end--;
    if (q == end || *q == '#') continue;
    if ((size_t)(end - q) > 7 && strncmp(q, "export ", 7) == 0) {
      q += 7;
      while (q < end && *q == ' ') q++;
    }
    const char *eq = memchr(q, '=', (size_t)(end - q));
    if (!eq) {
      snprintf(err, errlen, "line %d: expected KEY=VALUE", lineno);
      return -1;
    }
    const char *ke = eq;
    while (ke > q && isspace((unsigned char)ke[-1])) ke--;
    size_t kl = (size_t)(ke - q);
    if (kl == 0 || kl >= sizeof key) {
      snprintf(err, errlen, "line %d: missing or too long key", lineno);
      return -1;
    }
    for (size_t i = 0; i < kl; i++)
      if (!(isalnum((unsigned char)q[i]) || q[i] == '_')) {
        snprintf(err, errlen, "line %d: key has a character other than A-Z, 0-9, _", lineno);
        return -1;
      }
    memcpy(key, q, kl);
    key[kl] = '\0';
    const char *v = eq + 1;
    while (v < end && isspace((unsigned char)*v)) v++;
    size_t vl = (size_t)(end - v);
    if (vl >= 1 && (*v == '"' || *v == '\'')) {
      char quote = *v;
      const char *close = memchr(v + 1, quote, vl - 1);
      if (!close) {
        snprintf(err, errlen, "line %d: unterminated %c quote", lineno, quote);
        return -1;
      }
      v++;
      vl = (size_t)(close - v);
    } else {
      /* unquoted: an inline comment starts at " #" */
      for (size_t i = 1; i < vl; i++)
        if (v[i] == '#' && isspace((unsigned char)v[i - 1])) {
          vl = i;
          while (vl > 0 && isspace((unsigned char)v[vl - 1])) vl--;
          break;
        }
    }
    if (vl >= sizeof val) {
      snprintf(err, errlen, "line %d: value too long", lineno);
      return -1;
    }
    memcpy(val, v, vl);
    val[vl] = '\0';
    if (fn(ud, key, val) < 0) return -1;
  }
  return 0;
}

struct env_ctx {
  kmk_config *c;
  char *err;
  size_t errlen;
  const char *path;
};

static int env_apply(void *ud, const char *key, const char *value) {
  struct env_ctx *e = ud;
  if (!find_key(key)) return 0; /* a .env may hold other tools' keys */
  if (getenv(key)) return 0;    /* the environment wins over .env */
  char sub[512];
  if (kmk_config_set(e->c, key, value, sub, sizeof sub) < 0) {
    snprintf(e->err, e->errlen, "%s: %s", e->path, sub);
    return -1;
  }
  return 0;
}

static char *read_file(const char *path, size_t max) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc(max + 1);
  size_t n = buf ? fread(buf, 1, max, f) : 0;
  fclose(f);
  if (buf) buf[n] = '\0';
  return buf;
}

int kmk_config_load(kmk_config *c, const char *env_path, int must_exist, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  c->lua_mem_mb = 32;
  c->lua_budget_ms = 5;
  c->room_port = 8765;
  c->discord_leave_s = 30;
  for (const kmk_config_key *k = keys; k->key; k++) {
    char **s = slot(c, k->key);
    if (s) *s = strdup(k->def);
  }
  if (env_path) {
    char *text = read_file(env_path, 1 << 20);
    if (!text && must_exist) {
      snprintf(err, errlen, "cannot read %s: %s", env_path, strerror(errno));
      return -1;
    }
    if (text) {
      struct env_ctx e = {c, err, errlen, env_path};
      char sub[512];
      int rc = kmk_dotenv_parse(text, env_apply, &e, sub, sizeof sub);
      free(text);
      if (rc < 0) {
        if (!*err) snprintf(err, errlen, "%s: %s", env_path, sub);
        return -1;
      }
    }
  }
  for (const kmk_config_key *k = keys; k->key; k++) {
    const char *v = getenv(k->key);
    if (v && kmk_config_set(c, k->key, v, err, errlen) < 0) {
      char sub[512];
      snprintf(sub, sizeof sub, "environment: %s", err);
      snprintf(err, errlen, "%s", sub);
      return -1;
    }
  }
  return 0;
}

const char *kmk_config_llm_key(const kmk_config *c) {
  if (c->llm_api_key && *c->llm_api_key) return c->llm_api_key;
  return c->openrouter_api_key ? c->openrouter_api_key : "";
}

void kmk_config_free(kmk_config *c) {
  for (const kmk_config_key *k = keys; k->key; k++) {
    char **s = slot(c, k->key);
    if (s) {
      free(*s);
      *s = NULL;
    }
  }
}
