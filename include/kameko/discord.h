/* discord.h - the Discord transport's gateway (v10), REST client and controller.
 *
 * Three layers, each usable alone:
 *   - pure parsers and policies (any thread): gateway payloads -> small structs, close-code rules,
 *     the send rate limiter, REST rate-limit buckets. Tested without I/O and fuzzed.
 *   - kmk_dgw: the gateway connection (hello, identify, heartbeat with jitter and missed-ACK
 *     detection, resume, reconnect by close code with backoff, 120 sends / 60 s), and kmk_drest:
 *     REST calls with per-route buckets and 429 handling. Loop thread only.
 *   - kmk_discord: the controller (slash commands, voice join/leave, text chat into the agent, the
 *     empty-channel grace timer, voice close-code decisions). Loop thread only.
 *
 * Strings handed to callbacks are borrowed for the duration of the call. Errors are negative ints.
 */
#ifndef KAMEKO_DISCORD_H
#define KAMEKO_DISCORD_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "kameko/config.h"
#include "kameko/eventlog.h"

/* ---- gateway payloads (pure) ---------------------------------------------------------------- */
#define KMK_DGW_ID 24 /* snowflakes are <= 20 digits */

enum {
  KMK_DGW_OP_DISPATCH = 0,
  KMK_DGW_OP_HEARTBEAT = 1,
  KMK_DGW_OP_IDENTIFY = 2,
  KMK_DGW_OP_VOICE_STATE = 4,
  KMK_DGW_OP_RESUME = 6,
  KMK_DGW_OP_RECONNECT = 7,
  KMK_DGW_OP_INVALID_SESSION = 9,
  KMK_DGW_OP_HELLO = 10,
  KMK_DGW_OP_HEARTBEAT_ACK = 11,
};

/* intents: GUILDS | GUILD_VOICE_STATES | GUILD_MESSAGES | MESSAGE_CONTENT (privileged) */
#define KMK_DGW_INTENTS ((1 << 0) | (1 << 7) | (1 << 9) | (1 << 15))

/* One gateway frame {op, d, s, t}. root owns d; free with kmk_dgw_frame_free. */
typedef struct {
  int op;
  int64_t seq; /* -1 when s is null/absent */
  char t[48];  /* dispatch name ("" when none) */
  const cJSON *d;
  cJSON *root;
} kmk_dgw_frame;

/* 0, or -1 for bytes that are not a gateway frame (not JSON, no integer op, bad types). */
int kmk_dgw_parse_frame(const char *buf, size_t len, kmk_dgw_frame *f);
void kmk_dgw_frame_free(kmk_dgw_frame *f);

/* op 10: heartbeat_interval in ms (> 0), or -1. */
double kmk_dgw_parse_hello(const cJSON *d);

typedef struct {
  char session_id[128];
  char resume_url[512];
  char user_id[KMK_DGW_ID], app_id[KMK_DGW_ID];
  char user_name[64];
} kmk_dgw_ready;
int kmk_dgw_parse_ready(const cJSON *d, kmk_dgw_ready *r);

typedef struct {
  char guild_id[KMK_DGW_ID], channel_id[KMK_DGW_ID]; /* channel_id "" = not in a voice channel */
  char user_id[KMK_DGW_ID];
  char session_id[128];
  char name[64]; /* member nick / global name / username when the payload has a member */
} kmk_dgw_voice_state;
/* VOICE_STATE_UPDATE d, or one entry of GUILD_CREATE voice_states (guild_id given separately). */
int kmk_dgw_parse_voice_state(const cJSON *d, const char *guild_id, kmk_dgw_voice_state *v);

typedef struct {
  char guild_id[KMK_DGW_ID];
  char token[256]; /* secret */
  char endpoint[256]; /* "" = null endpoint: wait for another update */
} kmk_dgw_voice_server;
int kmk_dgw_parse_voice_server(const cJSON *d, kmk_dgw_voice_server *v);

/* GUILD_CREATE: callbacks per member, voice state and voice channel; bounded by the payload. */
typedef struct {
  void (*member)(void *ud, const char *guild_id, const char *user_id, const char *name, int bot);
  void (*voice_state)(void *ud, const kmk_dgw_voice_state *v);
  void (*channel)(void *ud, const char *guild_id, const char *channel_id, const char *name, int type);
  void *ud;
} kmk_dgw_guild_visitor;
/* Returns 0 and fills guild_id (and name), or -1 when d has no id. */
int kmk_dgw_parse_guild(const cJSON *d, char guild_id[KMK_DGW_ID], char *name, size_t namelen,
                        const kmk_dgw_guild_visitor *v);

typedef struct {
  char id[KMK_DGW_ID], token[512]; /* token is a secret for 15 minutes */
  int type;                        /* 2 = application command */
  char guild_id[KMK_DGW_ID], channel_id[KMK_DGW_ID];
  char user_id[KMK_DGW_ID], user_name[64];
  char command[32];
  char option[128]; /* first string option's value ("" when none) */
} kmk_dgw_interaction;
int kmk_dgw_parse_interaction(const cJSON *d, kmk_dgw_interaction *it);

typedef struct {
  char guild_id[KMK_DGW_ID], channel_id[KMK_DGW_ID];
  char author_id[KMK_DGW_ID], author_name[64];
  int bot;
  char content[2000];
} kmk_dgw_message;
int kmk_dgw_parse_message(const cJSON *d, kmk_dgw_message *m);

/* What to do after the gateway closed with `code` (0 = the socket dropped without a close frame). */
typedef enum { KMK_DGW_DO_RESUME, KMK_DGW_DO_NEW_SESSION, KMK_DGW_DO_FATAL } kmk_dgw_action;
kmk_dgw_action kmk_dgw_close_action(int code);
/* A clear, human sentence for a fatal close code ("authentication failed: check DISCORD_TOKEN"). */
const char *kmk_dgw_close_reason(int code);
/* "closed 4004 Authentication failed" (the WebSocket client's reason text) -> 4004; 0 otherwise. */
int kmk_dgw_close_code_from_reason(const char *reason);
/* Reconnect delay for attempt n (1-based): 1 s * 2^(n-1) capped at 60 s, jitter from rnd in [0,1). */
double kmk_dgw_backoff_ms(int attempt, double rnd);

/* Send rate limit: at most `limit` sends per `window_ms`; `reserve` slots kept for heartbeats. */
#define KMK_DGW_RL_MAX 128
typedef struct {
  double times[KMK_DGW_RL_MAX];
  int head, count, limit, reserve;
  double window_ms;
} kmk_dgw_rl;
void kmk_dgw_rl_init(kmk_dgw_rl *r, int limit, double window_ms, int reserve);
/* 0 when a send may go now (and records it), else the ms to wait. priority=1 may use the reserve. */
double kmk_dgw_rl_take(kmk_dgw_rl *r, double now_ms, int priority);
void kmk_dgw_rl_reset(kmk_dgw_rl *r);

/* ---- gateway connection (loop thread) ------------------------------------------------------- */
typedef struct kmk_dgw kmk_dgw;
typedef enum {
  KMK_DGW_CONNECTING, /* WebSocket handshake or waiting for hello */
  KMK_DGW_IDENTIFYING,/* identify or resume sent */
  KMK_DGW_CONNECTED,  /* READY or RESUMED */
  KMK_DGW_WAITING,    /* backing off before the next attempt */
  KMK_DGW_FATAL,      /* gave up (bad token, disallowed intents ...): see the why */
  KMK_DGW_CLOSED
} kmk_dgw_state;

typedef struct {
  uv_loop_t *loop;
  struct kmk_ws *ws; /* the WebSocket client (borrowed) */
  const char *url;   /* DISCORD_GATEWAY_URL */
  const char *token; /* secret */
  int intents;
  /* every dispatch (READY and RESUMED included) after the gateway's own bookkeeping */
  void (*on_dispatch)(void *ud, const char *t, const cJSON *d);
  /* state changes; why is a sentence for FATAL / WAITING */
  void (*on_state)(void *ud, kmk_dgw_state st, int close_code, const char *why);
  void *ud;
} kmk_dgw_opts;

typedef struct {
  int connects, identifies, resumes, heartbeats, acks, missed_acks, reconnects, dropped_sends;
  int64_t seq;
} kmk_dgw_stats;

kmk_dgw *kmk_dgw_new(const kmk_dgw_opts *o, char *err, size_t errlen);
/* Queues a JSON payload {op, d}: rate limited; a bounded queue (64) drops the oldest when full. */
int kmk_dgw_send(kmk_dgw *g, int op, cJSON *d /* taken */);
kmk_dgw_state kmk_dgw_get_state(const kmk_dgw *g);
const kmk_dgw_ready *kmk_dgw_get_ready(const kmk_dgw *g);
kmk_dgw_stats kmk_dgw_get_stats(const kmk_dgw *g);
/* Sends what is queued (e.g. a last op 4 leaving voice) and, when anything went out in the last
   second, gives it 300 ms to reach the gateway; then drops the
   connection (the WebSocket client sends no close frame, so Discord ends the session when it
   times out) and closes the timers; closed(ud) after the last handle closed, then g is freed.
   Keep the WebSocket client alive until then. */
void kmk_dgw_close(kmk_dgw *g, void (*closed)(void *ud), void *ud);

/* ---- REST rate-limit buckets (pure) -------------------------------------------------------- */
#define KMK_DREST_BUCKETS 64
typedef struct {
  char route[96];  /* our route key: "PUT applications/{id}/guilds/{id}/commands" */
  char bucket[64]; /* X-RateLimit-Bucket ("" until seen) */
  int remaining;   /* -1 = unknown */
  double reset_at; /* ms (caller's clock) when remaining refills */
  double used;     /* LRU stamp */
} kmk_drest_bucket;
typedef struct {
  kmk_drest_bucket b[KMK_DREST_BUCKETS];
  int n;
  double global_until; /* a global 429 blocks every route until this time */
} kmk_drest_limits;

/* The route key of method + path: ids are replaced except the first major parameter
   (channel/guild/webhook/interaction id); interaction/webhook tokens are never kept. */
void kmk_drest_route_key(const char *method, const char *path, char *out, size_t outlen);
void kmk_drest_limits_init(kmk_drest_limits *l);
/* ms to wait before a request on route may go (0 = now). Counts the request when 0 is returned. */
double kmk_drest_limits_delay(kmk_drest_limits *l, const char *route, double now_ms);
/* After a response: the X-RateLimit-* headers (NULL when absent). */
void kmk_drest_limits_update(kmk_drest_limits *l, const char *route, const char *bucket,
                             const char *remaining, const char *reset_after, double now_ms);
/* After a 429: wait retry_after seconds (from the header or the body's retry_after); global when
   the body or X-RateLimit-Global says so. Returns the ms to wait. */
double kmk_drest_limits_429(kmk_drest_limits *l, const char *route, const char *retry_after_hdr,
                            const char *body, const char *global_hdr, double now_ms);

/* ---- REST client (loop thread) ------------------------------------------------------------- */
typedef struct kmk_drest kmk_drest;
struct kmk_http;
/* status = HTTP status (0 when no response), body NUL-terminated ("" when none). */
typedef void (*kmk_drest_done_fn)(void *ud, int err, long status, const char *body);
kmk_drest *kmk_drest_new(struct kmk_http *http, const char *api_url, const char *token,
                         void (*on_fatal)(void *ud, const char *why), void *ud);
/* method + path under the API URL ("/applications/1/guilds/2/commands"), JSON body or NULL.
   429s are retried (at most 5 times) after retry_after; other failures go to done. */
int kmk_drest_call(kmk_drest *r, const char *method, const char *path, const char *body,
                   kmk_drest_done_fn done, void *ud);
/* Requests waiting or running. */
size_t kmk_drest_pending(const kmk_drest *r);
int kmk_drest_retries(const kmk_drest *r);
/* Cancels everything: each pending call's done runs once with KMK_NET_ECLOSED (release state
   there, start nothing new); then frees r (the http client is the caller's). */
void kmk_drest_free(kmk_drest *r);

/* The slash commands we register (a JSON array, caller frees). */
cJSON *kmk_discord_commands_json(void);

/* ---- controller (loop thread) -------------------------------------------------------------- */
typedef struct kmk_discord kmk_discord;
struct kmk_agent;

typedef struct {
  uv_loop_t *loop;
  const kmk_config *config;   /* token, URLs, leave grace (borrowed; must outlive the object) */
  kmk_eventlog *log;          /* discord_* events go here (the agent writes its own) */
  struct kmk_agent *agent;    /* borrowed: the conversation the voice channel feeds */
  const char *persona_dir;    /* /persona NAME loads persona_dir/NAME.lua */
  int max_dave_version;       /* passed to the voice connection (1 = DAVE) */
  double (*now)(void *ud);    /* timeline clock (the agent's), seconds */
  void *now_ud;
  /* the gateway gave up (fatal close code, REST 401): the app should exit with this message */
  void (*on_fatal)(void *ud, const char *why);
  void *ud;
} kmk_discord_opts;

kmk_discord *kmk_discord_new(const kmk_discord_opts *o, char *err, size_t errlen);
/* Leaves voice, closes the gateway, cancels REST, closes every handle; closed(ud) when done,
   after which the object is freed. */
void kmk_discord_close(kmk_discord *d, void (*closed)(void *ud), void *ud);

typedef struct {
  kmk_dgw_state gateway;
  int in_voice;            /* a voice connection object exists */
  char voice_guild[KMK_DGW_ID], voice_channel[KMK_DGW_ID];
  int commands_registered; /* guilds whose command PUT succeeded */
  int interactions, messages, joins, leaves, voice_retries;
} kmk_discord_status;
kmk_discord_status kmk_discord_get_status(const kmk_discord *d);
kmk_dgw *kmk_discord_gateway(kmk_discord *d);

/* The `kameko discord` job (for app.c; same shape as kmk_room_main): its own loop, out_dir/
   events.jsonl, one agent with the personas, the controller; runs until Ctrl-C / SIGTERM (0) or a
   fatal gateway/REST error (1, err says why: bad token, disallowed intents ...). */
int kmk_discord_main(const kmk_config *cfg, const char *const *persona_paths, size_t n_personas,
                     const char *scripts_dir, const char *out_dir, char *err, size_t errlen);

#endif
