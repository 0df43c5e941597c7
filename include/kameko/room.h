/* room.h - the browser room: the engine's embedded default transport (web/PROTOCOL.md).
 *
 *   browser tab ──WebSocket /ws──> hello ─> kmk_agent_speaker_join    (one tab = one speaker)
 *                                  PCM   ─> kmk_agent_speaker_pcm
 *                                  chat  ─> kmk_agent_chat, personas ─> kmk_agent_set_cast
 *   every event.jsonl line ──────────────> {"type":"event"} to every page
 *   20 ms pacer ─> kmk_agent_pull_frame ─> int16 mono 48 kHz binary frames to every page
 *   "playback_stop" event ───────────────> {"type":"flush"} at once (the page drops its buffer)
 *   60 ms of loud audio from a page while the agent talks ─> flush early, agent frames held until
 *   the agent's "playback_stop" confirms (dropped) or 450 ms pass (sent: a false alarm)
 *
 * libwebsockets serves the static page (web/) and /ws on the engine's libuv loop (a foreign loop:
 * lws never runs or closes it). Every connection has a bounded send queue: audio drops oldest
 * (ROOM_AUDIO_QUEUE frames), control messages never drop but a client with more than
 * KMK_ROOM_MAX_CTL_QUEUED of them waiting is disconnected. Limits (connections, frame size, audio
 * rate, JSON rate, name length) close only the offending socket, with 1008 and a reason.
 *
 * The client-message parser (kmk_room_parse) is pure and fuzzed (tests/fuzz/fuzz_room_msg.c).
 * Thread: loop thread only.
 */
#ifndef KAMEKO_ROOM_H
#define KAMEKO_ROOM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kameko/config.h"
#include "kameko/eventlog.h"

/* ---- limits (server-enforced) ---- */
#define KMK_ROOM_MAX_CONNS 16       /* WebSockets at once; the 17th is closed with 1008 */
#define KMK_ROOM_NAME_MAX 32        /* characters in a speaker name */
#define KMK_ROOM_CHAT_MAX 1000      /* bytes of one chat line */
#define KMK_ROOM_MAX_JSON 8192      /* bytes of one text message */
#define KMK_ROOM_MAX_ACTIVE 8       /* personas in the cast */
#define KMK_ROOM_PERSONA_MAX 64     /* bytes of a persona name */
#define KMK_ROOM_MIN_RATE 8000
#define KMK_ROOM_MAX_RATE 48000
#define KMK_ROOM_FRAME_MIN_MS 10    /* one binary frame holds 10..100 ms of PCM */
#define KMK_ROOM_FRAME_MAX_MS 100
#define KMK_ROOM_MAX_FRAME_SAMPLES (KMK_ROOM_MAX_RATE * KMK_ROOM_FRAME_MAX_MS / 1000)
#define KMK_ROOM_MAX_MESSAGE (KMK_ROOM_MAX_FRAME_SAMPLES * 2 > KMK_ROOM_MAX_JSON \
                                  ? KMK_ROOM_MAX_FRAME_SAMPLES * 2 : KMK_ROOM_MAX_JSON)
#define KMK_ROOM_AUDIO_SPEEDUP 1.5  /* audio faster than this x real time (after a 1 s burst) */
#define KMK_ROOM_JSON_PER_S 10      /* text messages per second sustained, burst 30 */
#define KMK_ROOM_JSON_BURST 30
#define KMK_ROOM_MAX_CTL_QUEUED 1024 /* control messages waiting for one slow client */
#define KMK_ROOM_AUDIO_QUEUE 32     /* agent audio frames waiting per client (drop oldest) */
#define KMK_ROOM_OUT_RATE 48000
#define KMK_ROOM_OUT_FRAME 960      /* 20 ms at 48 kHz, mono */

/* ---- the client-message parser (pure) ---- */
enum {
  KMK_ROOM_EINVAL = -1, /* a malformed or refused request: answered with {"type":"error"} */
  KMK_ROOM_EPOLICY = -2 /* a limit violated: the socket is closed with 1008 */
};

typedef enum {
  KMK_ROOM_MSG_HELLO = 1,
  KMK_ROOM_MSG_CHAT,
  KMK_ROOM_MSG_PERSONAS,
  KMK_ROOM_MSG_PING,
  KMK_ROOM_MSG_AUDIO,
} kmk_room_msg_type;

typedef struct {
  kmk_room_msg_type type;
  char name[KMK_ROOM_NAME_MAX * 4 + 1];     /* hello: trimmed, valid UTF-8, no control chars */
  int rate;                                 /* hello: 8000..48000 */
  char text[KMK_ROOM_CHAT_MAX + 1];         /* chat: trimmed, control chars made spaces */
  char active[KMK_ROOM_MAX_ACTIVE][KMK_ROOM_PERSONA_MAX]; /* personas: names as given */
  size_t n_active;
  double ping_id;                           /* ping */
  int16_t pcm[KMK_ROOM_MAX_FRAME_SAMPLES];  /* audio: decoded little-endian samples */
  size_t samples;
} kmk_room_msg;

/* Parses one whole WebSocket message. `rate` is the connection's PCM rate from its hello (0 before
 * hello: a binary frame is then refused). Returns 0 with *m filled, or KMK_ROOM_EINVAL /
 * KMK_ROOM_EPOLICY with err saying why (safe to show the client). */
int kmk_room_parse(const void *data, size_t len, int binary, int rate, kmk_room_msg *m, char *err,
                   size_t errlen);
/* 1 when s (len bytes) is valid UTF-8 (no overlongs, no surrogates). */
int kmk_room_utf8_valid(const char *s, size_t len);
/* 1 when an Origin header value is acceptable for a room bound at bind:port, served over https
 * when tls (then only https:// origins); host_hdr is the request's Host (used only for a wildcard
 * bind, where a token is required anyway). */
int kmk_room_origin_ok(const char *origin, int tls, const char *bind, int port,
                       const char *host_hdr);
/* 1 for 127.0.0.0/8, ::1 and "localhost". */
int kmk_room_bind_is_loopback(const char *bind);
/* The MIME type for a file name, or NULL for a type we do not serve. */
const char *kmk_room_mime(const char *path);
/* 1 when a URL path is safe to map under the web folder: starts with '/', only [A-Za-z0-9._-/],
 * no "..", no empty or dot-leading segment. */
int kmk_room_path_ok(const char *path);

/* ---- the room server ---- */
typedef struct kmk_room kmk_room;

typedef struct {
  uv_loop_t *loop;
  const kmk_config *config;         /* bind, port, token, persona dir, ...; borrowed */
  kmk_eventlog *log;                /* borrowed; the room sets itself as its observer */
  const char *const *persona_paths; /* the initial cast (1..8 files) */
  size_t n_personas;
  const char *persona_dir;          /* where the "available" personas (*.lua) are listed */
  const char *scripts_dir;
  const char *web_dir;              /* static files */
  int no_watch;                     /* 1: no persona hot reload (tests) */
  size_t max_ctl_queued;            /* 0 = KMK_ROOM_MAX_CTL_QUEUED (tests lower it) */
} kmk_room_opts;

typedef struct {
  uint64_t audio_dropped;  /* agent frames dropped for slow pages (oldest first) */
  uint64_t slow_kills;     /* pages disconnected for not reading their control messages */
  uint64_t policy_closes;  /* sockets closed with 1008 */
  uint64_t early_flushes;  /* early barge-in flushes, and how many the agent did not confirm */
  uint64_t early_false;
} kmk_room_stats;

/* Listens and creates the agent. NULL with err (a busy port, a non-loopback bind without a token,
 * a broken persona). */
kmk_room *kmk_room_new(const kmk_room_opts *o, char *err, size_t errlen);
int kmk_room_port(const kmk_room *r);
/* "http://127.0.0.1:8765/" (with "?token=..." never included). */
const char *kmk_room_url(const kmk_room *r);
size_t kmk_room_clients(const kmk_room *r);
void kmk_room_get_stats(const kmk_room *r, kmk_room_stats *st);
/* Closes every connection (speakers leave; utterances in progress are still transcribed), the
 * agent, the pacer and the lws context. Call outside uv_run: it runs the loop until the room's
 * handles are closed. Safe with NULL. */
void kmk_room_free(kmk_room *r);

/* The `kameko room` job: loop, event log in out_dir, room, Ctrl-C/SIGTERM; prints the URL. Returns
 * an exit code (0 after a clean shutdown, 1 on a runtime failure) with err filled on failure. */
int kmk_room_main(const kmk_config *cfg, const char *const *persona_paths, size_t n_personas,
                  const char *scripts_dir, const char *out_dir, char *err, size_t errlen);

#endif
