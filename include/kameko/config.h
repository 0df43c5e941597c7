/* config.h - settings from defaults < .env < environment < command-line flags.
 *
 * Every value is validated on load; a bad one gives an error naming the key and the value
 * (secrets are never echoed). Secrets are registered with the log's redaction on load.
 * Strings are owned by the config and freed by kmk_config_free().
 */
#ifndef KAMEKO_CONFIG_H
#define KAMEKO_CONFIG_H

#include <stddef.h>

typedef struct kmk_config {
  /* secrets */
  char *discord_token;
  char *groq_api_key;
  char *openrouter_api_key;
  char *llm_api_key; /* defaults to openrouter_api_key */
  /* services */
  char *groq_base_url;
  char *stt_model;
  char *llm_base_url;
  char *llm_model;
  char *edge_tts_url;
  char *discord_api_url;
  char *discord_gateway_url;
  double discord_leave_s; /* alone in a voice channel this long -> leave */
  /* browser room */
  char *room_bind;
  int room_port;
  char *room_token; /* secret; required when room_bind is not loopback */
  char *room_tls_cert, *room_tls_key; /* PEM paths; both set = https/wss */
  /* engine */
  char *log_level;
  char *persona_dir;
  char *scripts_dir;
  int lua_mem_mb;
  double lua_budget_ms;
} kmk_config;

/* The keys we read, with their defaults and whether they are secret; NULL-terminated. */
typedef struct {
  const char *key;
  const char *def;
  int secret;
  const char *help;
} kmk_config_key;
const kmk_config_key *kmk_config_keys(void);

/* Fills c with defaults, then .env (env_path; a missing file is fine unless must_exist), then the
   process environment. Returns 0, or -1 with err naming the bad key/value. */
int kmk_config_load(kmk_config *c, const char *env_path, int must_exist, char *err, size_t errlen);
/* Sets one key (as from a --set KEY=VALUE flag); validates it. */
int kmk_config_set(kmk_config *c, const char *key, const char *value, char *err, size_t errlen);
/* The LLM key in effect: LLM_API_KEY, else OPENROUTER_API_KEY; "" when none. */
const char *kmk_config_llm_key(const kmk_config *c);
void kmk_config_free(kmk_config *c);

/* Parses one .env buffer: calls fn for each KEY=VALUE (quotes removed, `export ` allowed, # comments).
   Returns 0, or -1 with err naming the line number of a malformed line. */
int kmk_dotenv_parse(const char *text, int (*fn)(void *ud, const char *key, const char *value),
                     void *ud, char *err, size_t errlen);

#endif
