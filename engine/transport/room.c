/* room.c - the browser room server (room.h, web/PROTOCOL.md): libwebsockets on the engine's libuv
 * loop serving web/ and the /ws endpoint; one WebSocket = one speaker of the agent.
 *
 * Owns: the lws context (server vhost), every connection (conn: speaker, send queues, receive
 * buffer, rate counters), the agent, the 20 ms pacer that pulls the agent's voice, and the event
 * log's observer slot. A conn lives from LWS_CALLBACK_ESTABLISHED to LWS_CALLBACK_CLOSED (the
 * speaker leaves there); lws_set_opaque_user_data(wsi) points at it.
 *
 * Send queues (per conn), one lws_write per WRITEABLE callback, control first:
 *   control (welcome, event, peers, flush, pong, error): FIFO, never dropped; more than
 *     KMK_ROOM_MAX_CTL_QUEUED waiting = the client is not reading: it is disconnected.
 *   audio: a ring of KMK_ROOM_AUDIO_QUEUE 20 ms frames; full = the oldest frame is dropped.
 *   flush: the agent wrote "playback_stop" (or the early barge-in below fired): every ring is
 *     emptied and {"type":"flush"} queued.
 * Closing: a limit violated while reading closes from that RECEIVE callback (1008 + reason); other
 * closes (room full at ESTABLISHED, shutdown 1001) go through the socket's lws timer; a page that
 * stops reading is cut off (LWS_TO_KILL_ASYNC).
 * Nothing here blocks: the loop never waits on a client.
 *
 * Barge-in: the agent confirms a barge-in only after its endpointer has heard min_speech (250 ms)
 * of speech, then writes "playback_stop". To stop the pages' playback within ~100 ms of the
 * speech start, the room acts early: while the agent's voice is going out, ONSET_MS of loud audio
 * from any page flushes every page at once and holds the agent's next frames back (hold). The
 * agent's "playback_stop" then confirms it (the held frames are dropped, no second flush); if it
 * has not come after HOLD_MS (a cough, a short "mm-hm", a persona that may not be interrupted),
 * the held frames go out and the reply carries on.
 *
 * Thread: loop thread only (lws callbacks, the pacer and the observer all run there).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <libwebsockets.h>

#include "kameko/agent.h"
#include "kameko/log.h"
#include "kameko/net.h"
#include "kameko/pacer.h"
#include "kameko/room.h"

#define TAG "room"
#define PROTO_NAME "kameko.room.v1"
#define MAX_AVAILABLE 32
#define HELLO_TIMEOUT_S 30 /* a socket that never says hello is closed */
#define AUDIO_SLOT (LWS_PRE + KMK_ROOM_OUT_FRAME * 2)
#define ONSET_MS 60          /* early barge-in: this much loud audio from a page while the agent talks */
#define ONSET_LEVEL 300      /* mean |sample| of a loud 10 ms piece (the energy VAD's threshold) */
#define HOLD_MS 450          /* no "playback_stop" by then: a false alarm, the held voice goes out */
#define HOLD_FRAMES 32
#define MAX_DISCARD (1u << 20) /* of one too-large message, before the socket is just dropped */
#define SOCKET_SNDBUF 32768  /* per page (the kernel doubles it): ~0.3 s of the agent's voice */
#define TALKING_NS 120000000ull /* the agent counts as talking this long after its last frame */
#define STALL_S 0.6          /* a joined page silent this long: its stream is filled with silence */
#define MAX_FALSE_RUN 3      /* a page whose early flushes go unconfirmed this often in a row (its
                                microphone hears the agent: weak echo cancelling) waits for the
                                agent's own confirmation from then on */
#define HTTP_HEADERS                                                                     \
  "X-Content-Type-Options: nosniff\x0d\x0a"                                              \
  "Cache-Control: no-cache\x0d\x0a"                                                      \
  "Referrer-Policy: no-referrer\x0d\x0a"

typedef struct ctl_msg {
  struct ctl_msg *next;
  size_t len;
  unsigned char buf[]; /* LWS_PRE + payload */
} ctl_msg;

typedef struct conn {
  kmk_room *r;
  struct lws *wsi;
  struct conn *prev, *next;
  int joined;
  char name[KMK_ROOM_NAME_MAX * 4 + 8];
  kmk_speaker *sp;
  int rate;
  ctl_msg *ctl_head, *ctl_tail;
  size_t n_ctl;
  unsigned char audio[KMK_ROOM_AUDIO_QUEUE][AUDIO_SLOT];
  size_t a_head, a_n;
  unsigned char rx[KMK_ROOM_MAX_MESSAGE];
  size_t rx_len, rx_over;      /* rx_over: bytes of a too-large message read and dropped */
  int rx_binary;
  double audio_t0_ms, audio_s; /* audio rate: seconds received since the first frame */
  double fill_s;               /* silence the room added while the page sent nothing (stall fill) */
  double json_tokens, json_last_ms;
  int closing;                 /* 1: closing with close_code/close_reason (sent from the RECEIVE
                                  that decided it, or from LWS_CALLBACK_TIMER); 2: cut off */
  char close_reason[100];
  enum lws_close_status close_code; /* with closing == 1 */
  uint64_t audio_dropped;
  int voiced_run;              /* early barge-in: consecutive loud 10 ms pieces */
  int false_run;               /* early flushes from this page the agent did not confirm, in a row */
  int onset_fired;             /* this loud run already flushed once */
} conn;

struct kmk_room {
  kmk_room_opts o;
  uv_loop_t *loop;
  struct lws_context *ctx;
  struct lws_vhost *vh;
  int port;
  char bind[128], url[200], token[256];
  int tls; /* https/wss (KMK_ROOM_TLS_CERT + KMK_ROOM_TLS_KEY) */
  char web_dir[1024], persona_dir[1024];
  kmk_agent *agent;
  uint64_t t0_ns;
  kmk_pacer_uv *pacer;
  int pacer_open;
  uv_timer_t *close_timer;
  int close_ticks, ctx_open;
  int observing;                   /* we are the event log's observer */
  conn *conns;
  size_t n_conns;
  int closing;
  kmk_room_msg msg; /* parse scratch (one message at a time on the loop) */
  char available[MAX_AVAILABLE][KMK_ROOM_PERSONA_MAX];
  size_t n_available;
  char active[KMK_ROOM_MAX_ACTIVE][KMK_ROOM_PERSONA_MAX];
  size_t n_active;
  char persona_names[16][KMK_ROOM_PERSONA_MAX]; /* display names seen in decision/cast events */
  size_t n_persona_names;
  unsigned char frame[AUDIO_SLOT]; /* the current agent frame, mono LE */
  /* early barge-in (see "Barge-in" above) */
  uint64_t last_voice_ns;          /* when the agent's last voiced frame went out */
  int hold;                        /* pages flushed, agent frames held back */
  uint64_t hold_until_ns;
  unsigned char held[HOLD_FRAMES][AUDIO_SLOT];
  size_t held_head, held_n;
  conn *hold_by;                   /* whose audio started the hold (NULL once it left) */
  uint64_t early_flushes, early_false;
  uint64_t audio_dropped, slow_kills, policy_closes; /* counted when a conn is freed / closed */
};

static double timeline(void *ud) {
  kmk_room *r = ud;
  return (double)(uv_hrtime() - r->t0_ns) / 1e9;
}

static double now_ms(kmk_room *r) { return (double)uv_hrtime() / 1e6; }

/* ---------------------------------------------------------------- send queues */

static void conn_drop_queues(conn *c) {
  for (ctl_msg *m = c->ctl_head, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  c->ctl_head = c->ctl_tail = NULL;
  c->n_ctl = 0;
  c->a_n = 0;
}

/* Cuts a client off at once (it stopped reading): no close frame can get through anyway. */
static void conn_kill(conn *c, const char *why) {
  if (c->closing == 2) return;
  KMK_WARN(TAG, "%s: disconnected (%s)", c->joined ? c->name : "a client", why);
  c->closing = 2;
  c->r->slow_kills++;
  conn_drop_queues(c);
  lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  lws_cancel_service(c->r->ctx); /* lws re-arms its scheduler only when it wakes up */
}

/* Closes with 1008 and a reason from the conn's LWS_CALLBACK_TIMER (for use outside its own
 * callbacks). Not from WRITEABLE: lws 4.1 treats a nonzero return there as a failed write and drops
 * the socket without the close frame. */
static void conn_policy_close(conn *c, const char *why) {
  if (c->closing) return;
  KMK_INFO(TAG, "%s: closed (%s)", c->joined ? c->name : "a client", why);
  c->closing = 1;
  c->r->policy_closes++;
  c->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
  snprintf(c->close_reason, sizeof c->close_reason, "%s", why);
  conn_drop_queues(c);
  lws_set_timer_usecs(c->wsi, 1); /* LWS_CALLBACK_TIMER sends the close frame */
  lws_cancel_service(c->r->ctx);  /* lws re-arms its scheduler only when it wakes up */
}

static void ctl_push(conn *c, const char *data, size_t len) {
  if (c->closing) return;
  if (c->n_ctl >= (c->r->o.max_ctl_queued ? c->r->o.max_ctl_queued : KMK_ROOM_MAX_CTL_QUEUED)) {
    conn_kill(c, "not reading its messages");
    return;
  }
  ctl_msg *m = malloc(sizeof *m + LWS_PRE + len);
  if (!m) {
    conn_kill(c, "out of memory");
    return;
  }
  m->next = NULL;
  m->len = len;
  memcpy(m->buf + LWS_PRE, data, len);
  if (c->ctl_tail) c->ctl_tail->next = m;
  else c->ctl_head = m;
  c->ctl_tail = m;
  c->n_ctl++;
  lws_callback_on_writable(c->wsi);
}

static void ctl_push_json(conn *c, cJSON *j) {
  char *s = cJSON_PrintUnformatted(j);
  if (s) ctl_push(c, s, strlen(s));
  free(s);
}

static void send_error(conn *c, const char *msg) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "type", "error");
  cJSON_AddStringToObject(j, "message", msg);
  ctl_push_json(c, j);
  cJSON_Delete(j);
}

static void broadcast(kmk_room *r, const char *data, size_t len) {
  for (conn *c = r->conns; c; c = c->next)
    if (c->joined) ctl_push(c, data, len);
}

static void audio_push(conn *c, const unsigned char *slot) {
  if (c->closing) return;
  if (c->a_n == KMK_ROOM_AUDIO_QUEUE) { /* drop oldest */
    c->a_head = (c->a_head + 1) % KMK_ROOM_AUDIO_QUEUE;
    c->a_n--;
    c->audio_dropped++;
    c->r->audio_dropped++;
  }
  memcpy(c->audio[(c->a_head + c->a_n) % KMK_ROOM_AUDIO_QUEUE], slot, AUDIO_SLOT);
  c->a_n++;
  lws_callback_on_writable(c->wsi);
}

static void send_peers(kmk_room *r) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "type", "peers");
  cJSON *arr = cJSON_AddArrayToObject(j, "peers");
  for (conn *c = r->conns; c; c = c->next)
    if (c->joined) cJSON_AddItemToArray(arr, cJSON_CreateString(c->name));
  char *s = cJSON_PrintUnformatted(j);
  if (s) broadcast(r, s, strlen(s));
  free(s);
  cJSON_Delete(j);
}

/* ---------------------------------------------------------------- events and the agent's voice */

static void flush_all(kmk_room *r, const char *reason) {
  char buf[128];
  int n = snprintf(buf, sizeof buf, "{\"type\":\"flush\",\"reason\":\"%s\"}", reason);
  for (conn *c = r->conns; c; c = c->next) c->a_n = 0;
  broadcast(r, buf, (size_t)n);
}

/* Persona names (e.g. "Kameko", "Marta") are kept so no person can take one. */
static void note_persona_name(kmk_room *r, const char *name) {
  for (size_t i = 0; i < r->n_persona_names; i++)
    if (strcasecmp(r->persona_names[i], name) == 0) return;
  if (r->n_persona_names < 16 && strlen(name) < KMK_ROOM_PERSONA_MAX)
    snprintf(r->persona_names[r->n_persona_names++], KMK_ROOM_PERSONA_MAX, "%s", name);
}

static void on_event(void *ud, const cJSON *ev) {
  kmk_room *r = ud;
  if (r->closing) return;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
  if (cJSON_IsString(type) && strcmp(type->valuestring, "playback_stop") == 0) {
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(ev, "reason");
    const char *reason = cJSON_IsString(why) ? why->valuestring : "barge_in";
    int early = r->hold && strcmp(reason, "barge_in") == 0; /* the pages were flushed already */
    if (early && r->hold_by) r->hold_by->false_run = 0;
    r->hold = 0;
    r->hold_by = NULL;
    r->held_n = 0;
    r->last_voice_ns = 0; /* the agent is silent now: speech going on is no new barge-in */
    if (!early)
      flush_all(r, strcmp(reason, "muted") == 0 || strcmp(reason, "cast") == 0 ? reason : "barge_in");
  }
  const cJSON *pn = cJSON_GetObjectItemCaseSensitive(ev, "persona");
  if (cJSON_IsString(type) && strcmp(type->valuestring, "decision") == 0 && cJSON_IsString(pn))
    note_persona_name(r, pn->valuestring);
  const cJSON *cast = cJSON_GetObjectItemCaseSensitive(ev, "personas"), *it;
  if (cJSON_IsString(type) && strcmp(type->valuestring, "cast") == 0 && cJSON_IsArray(cast))
    cJSON_ArrayForEach(it, cast) {
      if (cJSON_IsString(it)) note_persona_name(r, it->valuestring);
    }
  char *s = cJSON_PrintUnformatted(ev);
  if (!s) return;
  size_t n = strlen(s);
  char *msg = malloc(n + 32);
  if (msg) {
    int m = snprintf(msg, n + 32, "{\"type\":\"event\",\"event\":%s}", s);
    broadcast(r, msg, (size_t)m);
  }
  free(msg);
  free(s);
}

static void send_frame(kmk_room *r, const unsigned char *slot) {
  for (conn *c = r->conns; c; c = c->next)
    if (c->joined) audio_push(c, slot);
}

static void release_hold(kmk_room *r) {
  r->hold = 0;
  r->early_false++;
  if (r->hold_by && ++r->hold_by->false_run == MAX_FALSE_RUN)
    KMK_WARN(TAG, "%s: %d early barge-ins in a row were not speech (echo?): waiting for the "
             "agent's own barge-in for this page from now on", r->hold_by->name, MAX_FALSE_RUN);
  r->hold_by = NULL;
  KMK_DEBUG(TAG, "early barge-in not confirmed: %zu held frames go out", r->held_n);
  for (; r->held_n; r->held_n--, r->held_head = (r->held_head + 1) % HOLD_FRAMES)
    send_frame(r, r->held[r->held_head]);
}

/* A page that stops sending (muted, backgrounded tab, network stall) would leave its utterance
 * open for ever, and the agent waits for a speaker who is mid-utterance. Like Discord's quiet users,
 * its stream gets silence up to STALL_S behind real time, so the endpointer sees the turn end. */
static void fill_stalled(kmk_room *r) {
  static const int16_t zeros[KMK_ROOM_MAX_RATE / 10]; /* 100 ms at the highest rate */
  double t = now_ms(r);
  for (conn *c = r->conns; c; c = c->next) {
    if (!c->joined || !c->sp || c->audio_t0_ms == 0 || c->closing) continue;
    double behind = (t - c->audio_t0_ms) / 1000.0 - (c->audio_s + c->fill_s);
    if (behind < STALL_S) continue;
    double add = behind - STALL_S / 2;
    if (add > 1.0) add = 1.0; /* bounded work per tick; a long stall catches up over ticks */
    /* at the page's own rate: a rate change would flush the stream's resampler each time */
    size_t chunk = (size_t)c->rate / 10;
    for (size_t n = (size_t)(add * c->rate); n > 0;) {
      size_t k = n < chunk ? n : chunk;
      if (kmk_agent_speaker_pcm(c->sp, zeros, k, c->rate, 1) < 0) break;
      n -= k;
    }
    c->fill_s += add;
  }
}

static void on_pacer(kmk_pacer_uv *pu, uint64_t due, void *ud) {
  kmk_room *r = ud;
  if (!r->closing) fill_stalled(r);
  for (uint64_t k = 0; k < due && !r->closing; k++) {
    if (r->hold && uv_hrtime() >= r->hold_until_ns) release_hold(r);
    const kmk_out_frame *f = kmk_agent_pull_frame(r->agent);
    if (!f || f->silence) continue;
    r->last_voice_ns = uv_hrtime();
    unsigned char *p = r->frame + LWS_PRE;
    for (int i = 0; i < KMK_ROOM_OUT_FRAME; i++) {
      int v = ((int)f->pcm[2 * i] + (int)f->pcm[2 * i + 1]) / 2;
      p[2 * i] = (unsigned char)(v & 0xFF);
      p[2 * i + 1] = (unsigned char)((v >> 8) & 0xFF);
    }
    if (r->hold) { /* kept until the agent confirms (dropped) or not (sent) */
      if (r->held_n == HOLD_FRAMES) {
        r->held_head = (r->held_head + 1) % HOLD_FRAMES;
        r->held_n--;
      }
      memcpy(r->held[(r->held_head + r->held_n++) % HOLD_FRAMES], r->frame, AUDIO_SLOT);
      continue;
    }
    send_frame(r, r->frame);
  }
}

/* A page's audio while the agent talks: ONSET_MS of loud 10 ms pieces flush the pages early. */
static void watch_onset(kmk_room *r, conn *c, const int16_t *pcm, size_t n) {
  size_t piece = (size_t)c->rate / 100;
  for (size_t off = 0; off + piece <= n; off += piece) {
    long sum = 0;
    for (size_t i = 0; i < piece; i++) sum += labs((long)pcm[off + i]);
    c->voiced_run = sum / (long)piece > ONSET_LEVEL ? c->voiced_run + 1 : 0;
    if (!c->voiced_run) c->onset_fired = 0;
  }
  uint64_t now = uv_hrtime();
  if (c->voiced_run * 10 < ONSET_MS || r->hold || !r->last_voice_ns ||
      now - r->last_voice_ns > TALKING_NS || c->false_run >= MAX_FALSE_RUN || c->onset_fired)
    return;
  c->onset_fired = 1;
  r->hold = 1;
  r->hold_by = c;
  r->hold_until_ns = now + (uint64_t)HOLD_MS * 1000000ull;
  r->held_head = r->held_n = 0;
  r->early_flushes++;
  KMK_DEBUG(TAG, "%s speaks over the agent: pages flushed early", c->name);
  flush_all(r, "barge_in");
}

/* ---------------------------------------------------------------- client messages */

static const char *persona_path(kmk_room *r, const char *stem, char *buf, size_t n) {
  snprintf(buf, n, "%s/%s.lua", r->persona_dir, stem);
  return buf;
}

/* "available": [{name, file}] (the persona folder's *.lua), "active": [names] */
static void add_cast(kmk_room *r, cJSON *j) {
  cJSON *av = cJSON_AddArrayToObject(j, "available");
  for (size_t i = 0; i < r->n_available; i++) {
    cJSON *p = cJSON_CreateObject();
    char file[KMK_ROOM_PERSONA_MAX + 8];
    snprintf(file, sizeof file, "%s.lua", r->available[i]);
    cJSON_AddStringToObject(p, "name", r->available[i]);
    cJSON_AddStringToObject(p, "file", file);
    cJSON_AddItemToArray(av, p);
  }
  cJSON *act = cJSON_AddArrayToObject(j, "active");
  for (size_t i = 0; i < r->n_active; i++) cJSON_AddItemToArray(act, cJSON_CreateString(r->active[i]));
}

static void send_welcome(kmk_room *r, conn *c) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "type", "welcome");
  cJSON_AddStringToObject(j, "you", c->name);
  cJSON *room = cJSON_AddObjectToObject(j, "room");
  cJSON_AddNumberToObject(room, "version", 1);
  cJSON_AddNumberToObject(room, "rate", KMK_ROOM_OUT_RATE);
  cJSON_AddNumberToObject(room, "frame_ms", 20);
  cJSON_AddNumberToObject(room, "t", timeline(r));
  cJSON *lim = cJSON_AddObjectToObject(room, "limits");
  cJSON_AddNumberToObject(lim, "connections", KMK_ROOM_MAX_CONNS);
  cJSON_AddNumberToObject(lim, "name_chars", KMK_ROOM_NAME_MAX);
  cJSON_AddNumberToObject(lim, "chat_bytes", KMK_ROOM_CHAT_MAX);
  cJSON_AddNumberToObject(lim, "message_bytes", KMK_ROOM_MAX_JSON);
  cJSON_AddNumberToObject(lim, "frame_ms_min", KMK_ROOM_FRAME_MIN_MS);
  cJSON_AddNumberToObject(lim, "frame_ms_max", KMK_ROOM_FRAME_MAX_MS);
  cJSON_AddNumberToObject(lim, "json_per_s", KMK_ROOM_JSON_PER_S);
  cJSON_AddNumberToObject(lim, "max_active", KMK_ROOM_MAX_ACTIVE);
  add_cast(r, j);
  ctl_push_json(c, j);
  cJSON_Delete(j);
}

/* Taken: a person here, a persona file's name or a persona's display name (case-insensitive). */
static int name_taken(kmk_room *r, const char *name) {
  for (conn *c = r->conns; c; c = c->next)
    if (c->joined && strcasecmp(c->name, name) == 0) return 1;
  for (size_t i = 0; i < r->n_available; i++)
    if (strcasecmp(r->available[i], name) == 0) return 1;
  for (size_t i = 0; i < r->n_persona_names; i++)
    if (strcasecmp(r->persona_names[i], name) == 0) return 1;
  return 0;
}

static void do_hello(kmk_room *r, conn *c, const kmk_room_msg *m) {
  if (c->joined) {
    send_error(c, "already joined");
    return;
  }
  snprintf(c->name, sizeof c->name, "%s", m->name);
  for (int k = 2; name_taken(r, c->name) && k < 100; k++) {
    /* "Alice 2": the base is shortened (whole characters) so the result keeps the limit */
    char base[sizeof m->name];
    snprintf(base, sizeof base, "%s", m->name);
    size_t chars = 0, cut = 0;
    for (size_t i = 0; base[i]; i++)
      if (((unsigned char)base[i] & 0xC0) != 0x80 && ++chars > KMK_ROOM_NAME_MAX - 3) {
        cut = i;
        break;
      }
    if (cut) base[cut] = '\0';
    snprintf(c->name, sizeof c->name, "%s %d", base, k);
  }
  /* welcome first, so the page also sees its own "join" and any greeting the join triggers */
  c->joined = 1;
  c->rate = m->rate;
  send_welcome(r, c);
  c->sp = kmk_agent_speaker_join(r->agent, c->name, timeline(r));
  if (!c->sp) {
    c->joined = 0;
    conn_policy_close(c, "cannot join");
    return;
  }
  lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
  KMK_INFO(TAG, "%s joined (%d Hz)", c->name, c->rate);
  send_peers(r);
}

static void do_personas(kmk_room *r, conn *c, const kmk_room_msg *m) {
  char paths[KMK_ROOM_MAX_ACTIVE][1200];
  const char *pp[KMK_ROOM_MAX_ACTIVE];
  for (size_t i = 0; i < m->n_active; i++) {
    size_t k = 0;
    while (k < r->n_available && strcmp(r->available[k], m->active[i]) != 0) k++;
    if (k == r->n_available) {
      char e[160];
      snprintf(e, sizeof e, "personas: unknown persona '%s'", m->active[i]);
      send_error(c, e);
      return;
    }
    pp[i] = persona_path(r, m->active[i], paths[i], sizeof paths[i]);
  }
  char err[512] = "";
  if (kmk_agent_set_cast(r->agent, pp, m->n_active, err, sizeof err) < 0) {
    char e[600];
    snprintf(e, sizeof e, "personas: %s", err[0] ? err : "refused");
    send_error(c, e);
    return;
  }
  for (size_t i = 0; i < m->n_active; i++) snprintf(r->active[i], sizeof r->active[i], "%s", m->active[i]);
  r->n_active = m->n_active;
  cJSON *j = cJSON_CreateObject(); /* every page shows the new cast */
  cJSON_AddStringToObject(j, "type", "personas");
  add_cast(r, j);
  char *s = cJSON_PrintUnformatted(j);
  if (s) broadcast(r, s, strlen(s));
  free(s);
  cJSON_Delete(j);
}

/* Returns -1 when the socket must close (its close reason already set). */
static int handle_message(kmk_room *r, conn *c, struct lws *wsi) {
  char err[200];
  double t = now_ms(r);
  if (!c->rx_binary) { /* JSON rate: a token bucket */
    c->json_tokens += (t - c->json_last_ms) / 1000.0 * KMK_ROOM_JSON_PER_S;
    if (c->json_tokens > KMK_ROOM_JSON_BURST) c->json_tokens = KMK_ROOM_JSON_BURST;
    c->json_last_ms = t;
    if (c->json_tokens < 1) {
      snprintf(err, sizeof err, "more than %d messages per second", KMK_ROOM_JSON_PER_S);
      goto policy;
    }
    c->json_tokens -= 1;
  }
  kmk_room_msg *m = &r->msg;
  int rc = kmk_room_parse(c->rx, c->rx_len, c->rx_binary, c->joined ? c->rate : 0, m, err, sizeof err);
  if (rc == KMK_ROOM_EPOLICY) goto policy;
  if (rc < 0) {
    send_error(c, err);
    return 0;
  }
  if (m->type != KMK_ROOM_MSG_HELLO && m->type != KMK_ROOM_MSG_PING && !c->joined) {
    send_error(c, "say hello first");
    return 0;
  }
  switch (m->type) {
    case KMK_ROOM_MSG_AUDIO: {
      if (c->audio_t0_ms == 0) c->audio_t0_ms = t;
      c->audio_s += (double)m->samples / c->rate;
      if (c->audio_s > (t - c->audio_t0_ms) / 1000.0 * KMK_ROOM_AUDIO_SPEEDUP + 1.0) {
        snprintf(err, sizeof err, "audio faster than %.1fx real time", KMK_ROOM_AUDIO_SPEEDUP);
        goto policy;
      }
      watch_onset(r, c, m->pcm, m->samples);
      int e = kmk_agent_speaker_pcm(c->sp, m->pcm, m->samples, c->rate, 1);
      if (e < 0) KMK_DEBUG(TAG, "%s: audio refused (%d)", c->name, e);
      break;
    }
    case KMK_ROOM_MSG_HELLO:
      do_hello(r, c, m);
      break;
    case KMK_ROOM_MSG_CHAT:
      kmk_agent_chat(r->agent, c->name, m->text);
      break;
    case KMK_ROOM_MSG_PERSONAS:
      do_personas(r, c, m);
      break;
    case KMK_ROOM_MSG_PING: {
      cJSON *j = cJSON_CreateObject();
      cJSON_AddStringToObject(j, "type", "pong");
      cJSON_AddNumberToObject(j, "id", m->ping_id);
      ctl_push_json(c, j);
      cJSON_Delete(j);
      break;
    }
  }
  return c->closing == 1 ? (lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                                             (unsigned char *)c->close_reason,
                                             strlen(c->close_reason)), -1)
                         : 0;
policy:
  KMK_INFO(TAG, "%s: closed (%s)", c->joined ? c->name : "a client", err);
  c->closing = 1;
  r->policy_closes++;
  conn_drop_queues(c);
  lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)err, strlen(err));
  return -1;
}

/* ---------------------------------------------------------------- lws callbacks */

static int http_status(struct lws *wsi, unsigned status) {
  lws_return_http_status(wsi, status, NULL);
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int serve_file(kmk_room *r, struct lws *wsi, const char *uri) {
  if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) return http_status(wsi, 405);
  const char *path = strcmp(uri, "/") == 0 ? "/index.html" : uri;
  const char *mime = kmk_room_mime(path);
  char file[1400];
  struct stat st;
  if (!kmk_room_path_ok(path) || !mime ||
      snprintf(file, sizeof file, "%s%s", r->web_dir, path) >= (int)sizeof file ||
      stat(file, &st) != 0 || !S_ISREG(st.st_mode))
    return http_status(wsi, HTTP_STATUS_NOT_FOUND);
  int n = lws_serve_http_file(wsi, file, mime, HTTP_HEADERS, (int)strlen(HTTP_HEADERS));
  if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) return -1;
  return 0;
}

static int const_eq(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = (unsigned char)(la != lb);
  for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
  return d == 0;
}

/* Before the upgrade: path, Origin, token, a hard cap on sockets. >0 = refused with a status. */
static int confirm_upgrade(kmk_room *r, struct lws *wsi) {
  char uri[64] = "", origin[256] = "", host[256] = "";
  if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/ws") != 0) {
    lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
    return 1;
  }
  lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
  lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
  if (!kmk_room_origin_ok(origin, r->tls, r->bind, r->port, host)) {
    KMK_INFO(TAG, "refused a WebSocket from origin '%.100s'", origin[0] ? origin : "(none)");
    lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
    return 1;
  }
  if (r->token[0]) {
    char buf[300];
    const char *tok = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof buf);
    if (!tok || !const_eq(tok, r->token)) {
      KMK_INFO(TAG, "refused a WebSocket without the room token");
      lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
      return 1;
    }
  }
  if (r->n_conns >= 2 * KMK_ROOM_MAX_CONNS || r->closing) {
    lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, NULL);
    return 1;
  }
  return 0;
}

static void conn_free(kmk_room *r, conn *c) {
  if (c->prev) c->prev->next = c->next;
  else if (r->conns == c) r->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  r->n_conns--;
  conn_drop_queues(c);
  if (c->wsi) lws_set_opaque_user_data(c->wsi, NULL);
  int was_joined = c->joined;
  if (r->hold_by == c) r->hold_by = NULL;
  if (c->joined && c->sp) {
    KMK_INFO(TAG, "%s left%s", c->name, c->audio_dropped ? " (audio frames dropped for it)" : "");
    kmk_agent_speaker_leave(r->agent, c->sp); /* an utterance in progress is still transcribed */
  }
  free(c);
  if (was_joined && !r->closing) send_peers(r);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
  if (!wsi) return 0;
  struct lws_vhost *vh = lws_get_vhost(wsi);
  kmk_room *r = vh ? lws_vhost_user(vh) : NULL;
  conn *c = lws_get_opaque_user_data(wsi);
  switch (reason) {
    case LWS_CALLBACK_HTTP:
      if (!r) return -1;
      return serve_file(r, wsi, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
      return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
      if (!r) return -1;
      return confirm_upgrade(r, wsi);
    case LWS_CALLBACK_ESTABLISHED: {
      if (!r || r->closing) return -1;
      c = calloc(1, sizeof *c);
      if (!c) return -1;
      c->r = r;
      c->wsi = wsi;
      c->json_tokens = KMK_ROOM_JSON_BURST;
      c->json_last_ms = now_ms(r);
      c->next = r->conns;
      if (r->conns) r->conns->prev = c;
      r->conns = c;
      r->n_conns++;
      lws_set_opaque_user_data(wsi, c);
      /* a small kernel send buffer: a page that falls behind meets our queue policy (oldest audio
         dropped) within a fraction of a second instead of seconds of stale audio in the kernel */
      int sndbuf = SOCKET_SNDBUF;
      setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      size_t open = 0;
      for (conn *k = r->conns; k; k = k->next) open += !k->closing;
      if (open > KMK_ROOM_MAX_CONNS) {
        char why[64];
        int n = snprintf(why, sizeof why, "the room is full (%d connections)", KMK_ROOM_MAX_CONNS);
        KMK_INFO(TAG, "a client: closed (%s)", why);
        c->closing = 1;
        r->policy_closes++;
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why, (size_t)n);
        return -1;
      } else {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HELLO_TIMEOUT_S);
      }
      break;
    }
    case LWS_CALLBACK_RECEIVE:
      if (!c || !r) return -1;
      if (c->closing) return c->closing == 2 ? -1 : 0;
      if (lws_is_first_fragment(wsi)) {
        c->rx_len = 0;
        c->rx_over = 0;
        c->rx_binary = lws_frame_is_binary(wsi);
      }
      if (c->rx_over || c->rx_len + len > sizeof c->rx) {
        /* too large: the rest of the message is read and dropped (up to MAX_DISCARD), so the
           close is not a reset racing the bytes still in flight */
        c->rx_over += len;
        int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
        if (!last && c->rx_over < MAX_DISCARD) break;
        static const char why[] = "message too large";
        KMK_INFO(TAG, "%s: closed (%s)", c->joined ? c->name : "a client", why);
        c->closing = 1;
        r->policy_closes++;
        conn_drop_queues(c);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why, sizeof why - 1);
        return -1;
      }
      memcpy(c->rx + c->rx_len, in, len);
      c->rx_len += len;
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        int rc = handle_message(r, c, wsi);
        c->rx_len = 0;
        if (rc < 0) return -1;
      }
      break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      if (!c) return -1;
      if (c->closing == 2) return -1;
      if (c->closing == 1) {
        lws_close_reason(wsi, c->close_code ? c->close_code : LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
      }
      int n = 0;
      if (c->ctl_head) {
        ctl_msg *m = c->ctl_head;
        c->ctl_head = m->next;
        if (!c->ctl_head) c->ctl_tail = NULL;
        c->n_ctl--;
        n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
        free(m);
      } else if (c->a_n) {
        unsigned char *slot = c->audio[c->a_head];
        c->a_head = (c->a_head + 1) % KMK_ROOM_AUDIO_QUEUE;
        c->a_n--;
        n = lws_write(wsi, slot + LWS_PRE, KMK_ROOM_OUT_FRAME * 2, LWS_WRITE_BINARY);
      }
      if (n < 0) return -1;
      if (c->ctl_head || c->a_n) lws_callback_on_writable(wsi);
      break;
    }
    case LWS_CALLBACK_TIMER:
      if (c && c->closing == 1) {
        lws_close_reason(wsi, c->close_code ? c->close_code : LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
      }
      break;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
      if (c && r) conn_free(r, c);
      break;
    default:
      break;
  }
  return 0;
}

static const struct lws_protocols protocols[] = {
    {PROTO_NAME, callback, 0, KMK_ROOM_MAX_MESSAGE, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---------------------------------------------------------------- lifecycle */

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void list_personas(kmk_room *r) {
  DIR *d = opendir(r->persona_dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && r->n_available < MAX_AVAILABLE) {
    size_t n = strlen(e->d_name);
    if (n < 5 || n - 4 >= KMK_ROOM_PERSONA_MAX || strcmp(e->d_name + n - 4, ".lua") != 0) continue;
    int ok = 1;
    for (size_t i = 0; i < n - 4; i++)
      if (!(e->d_name[i] >= 'a' && e->d_name[i] <= 'z') && !(e->d_name[i] >= 'A' && e->d_name[i] <= 'Z') &&
          !(e->d_name[i] >= '0' && e->d_name[i] <= '9') && e->d_name[i] != '_' && e->d_name[i] != '-')
        ok = 0;
    char path[1400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", r->persona_dir, e->d_name);
    if (!ok || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    memcpy(r->available[r->n_available], e->d_name, n - 4);
    r->available[r->n_available++][n - 4] = '\0';
  }
  closedir(d);
  qsort(r->available, r->n_available, sizeof r->available[0], cmp_str);
}

static void handle_free(uv_handle_t *h) {
  kmk_room *r = h->data;
  free(h);
  r->ctx_open = 0;
}

static void pacer_closed(kmk_pacer_uv *pu, void *ud) {
  kmk_room *r = ud;
  free(pu);
  r->pacer_open = 0;
}

/* lws 4.1 on a foreign loop frees its context in two steps (see engine/net/ws.c): the first
 * lws_context_destroy closes its uv handles; a few loop iterations later the second frees it. */
static void close_tick(uv_timer_t *t) {
  kmk_room *r = t->data;
  if (++r->close_ticks < 3) return;
  uv_timer_stop(t);
  lws_context_destroy(r->ctx);
  r->ctx = NULL;
  uv_close((uv_handle_t *)t, handle_free);
}

kmk_room *kmk_room_new(const kmk_room_opts *o, char *err, size_t errlen) {
  const kmk_config *cfg = o->config;
  const char *bind = cfg->room_bind && *cfg->room_bind ? cfg->room_bind : "127.0.0.1";
  const char *token = cfg->room_token ? cfg->room_token : "";
  if (!kmk_room_bind_is_loopback(bind) && !*token) {
    snprintf(err, errlen,
             "KMK_ROOM_BIND=%s is not a loopback address: set KMK_ROOM_TOKEN so only people "
             "with the link can join",
             bind);
    return NULL;
  }
  if (strlen(bind) >= 128 || strlen(token) >= 256) {
    snprintf(err, errlen, "KMK_ROOM_BIND or KMK_ROOM_TOKEN too long");
    return NULL;
  }
  const char *cert = cfg->room_tls_cert ? cfg->room_tls_cert : "";
  const char *key = cfg->room_tls_key ? cfg->room_tls_key : "";
  if (!*cert != !*key) {
    snprintf(err, errlen, "set both KMK_ROOM_TLS_CERT and KMK_ROOM_TLS_KEY (PEM files) for https");
    return NULL;
  }
  const char *const files[2][2] = {{"KMK_ROOM_TLS_CERT", cert}, {"KMK_ROOM_TLS_KEY", key}};
  for (int i = 0; *cert && i < 2; i++) {
    FILE *fp = fopen(files[i][1], "r");
    if (!fp) {
      snprintf(err, errlen, "%s: cannot read %s: %s", files[i][0], files[i][1], strerror(errno));
      return NULL;
    }
    fclose(fp);
  }
  if (!*cert && !kmk_room_bind_is_loopback(bind))
    KMK_WARN(TAG, "KMK_ROOM_BIND=%s over plain http: browsers on other devices will not give the "
             "page a microphone; set KMK_ROOM_TLS_CERT and KMK_ROOM_TLS_KEY (see the README)", bind);
  kmk_room *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  r->o = *o;
  r->loop = o->loop;
  r->tls = *cert != 0;
  snprintf(r->bind, sizeof r->bind, "%s", bind);
  snprintf(r->token, sizeof r->token, "%s", token);
  snprintf(r->web_dir, sizeof r->web_dir, "%s", o->web_dir ? o->web_dir : KMK_SOURCE_DIR "/web");
  snprintf(r->persona_dir, sizeof r->persona_dir, "%s",
           o->persona_dir ? o->persona_dir : KMK_SOURCE_DIR "/personas");
  list_personas(r);
  for (size_t i = 0; i < o->n_personas && r->n_active < KMK_ROOM_MAX_ACTIVE; i++) {
    const char *b = strrchr(o->persona_paths[i], '/');
    b = b ? b + 1 : o->persona_paths[i];
    size_t n = strlen(b);
    if (n > 4 && strcmp(b + n - 4, ".lua") == 0) n -= 4;
    if (n >= KMK_ROOM_PERSONA_MAX) n = KMK_ROOM_PERSONA_MAX - 1;
    memcpy(r->active[r->n_active], b, n);
    r->active[r->n_active++][n] = '\0';
  }
  r->t0_ns = uv_hrtime();
  kmk_agent_opts ao = {.loop = r->loop,
                       .log = o->log,
                       .config = cfg,
                       .persona_paths = o->persona_paths,
                       .n_personas = o->n_personas,
                       .scripts_dir = o->scripts_dir,
                       .now = timeline,
                       .now_ud = r,
                       .no_watch = o->no_watch};
  r->agent = kmk_agent_new(&ao, err, errlen);
  if (!r->agent) {
    free(r);
    return NULL;
  }

  kmk_net_lws_log_setup();
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {r->loop};
  info.port = cfg->room_port;
  info.iface = strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0 ? NULL
               : strcmp(bind, "localhost") == 0                       ? "127.0.0.1"
                                                                       : bind;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                 LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  info.foreign_loops = loops;
  info.gid = -1;
  info.uid = -1;
  info.timeout_secs = 20;
  info.user = r; /* lws_vhost_user() of our vhost */
  info.vhost_name = "kameko-room";
  if (r->tls) { /* lws loads and checks both files when the vhost is created */
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = cert;
    info.ssl_private_key_filepath = key;
    /* HTTP/1.1 only: our file serving and the WebSocket upgrade are written for it (with h2 a
       browser or curl would negotiate HTTP/2 and get an empty reply) */
    info.alpn = "http/1.1";
  }
  info.server_string = "kameko";
  /* the context first, then the listening vhost: a busy port then leaves a healthy context that
     closes the normal way (kmk_room_free) instead of lws's half-destroyed one */
  r->ctx = lws_create_context(&info);
  if (!r->ctx) {
    snprintf(err, errlen, "libwebsockets context on the libuv loop failed (libwebsockets-evlib-uv missing?)");
    kmk_agent_free(r->agent);
    free(r);
    return NULL;
  }
  r->ctx_open = 1;
  r->vh = lws_create_vhost(r->ctx, &info);
  if (r->vh) r->port = lws_get_vhost_listen_port(r->vh);
  if (!r->vh || r->port <= 0) {
    snprintf(err, errlen, "cannot listen on %s:%d (port in use, a bad KMK_ROOM_BIND%s?)", bind,
             cfg->room_port, r->tls ? ", or a certificate and key that do not load or match" : "");
    kmk_room_free(r);
    return NULL;
  }
  const char *scheme = r->tls ? "https" : "http";
  if (strchr(bind, ':')) snprintf(r->url, sizeof r->url, "%s://[%s]:%d/", scheme, bind, r->port);
  else snprintf(r->url, sizeof r->url, "%s://%s:%d/", scheme, bind, r->port);
  r->pacer = calloc(1, sizeof *r->pacer);
  if (!r->pacer || kmk_pacer_uv_start(r->loop, r->pacer, on_pacer, r) != 0) {
    free(r->pacer);
    r->pacer = NULL;
    snprintf(err, errlen, "cannot start the 20 ms pacer");
    kmk_room_free(r);
    return NULL;
  }
  r->pacer_open = 1;
  kmk_eventlog_set_observer(o->log, on_event, r);
  r->observing = 1;
  char index[1100];
  struct stat st;
  snprintf(index, sizeof index, "%s/index.html", r->web_dir);
  if (stat(index, &st) != 0) KMK_WARN(TAG, "%s is missing: the page will not load", index);
  KMK_INFO(TAG, "listening on %s (%zu personas available)", r->url, r->n_available);
  return r;
}

int kmk_room_port(const kmk_room *r) { return r ? r->port : 0; }
const char *kmk_room_url(const kmk_room *r) { return r ? r->url : ""; }
size_t kmk_room_clients(const kmk_room *r) {
  size_t n = 0;
  for (conn *c = r ? r->conns : NULL; c; c = c->next) n += c->joined;
  return n;
}

void kmk_room_get_stats(const kmk_room *r, kmk_room_stats *st) {
  memset(st, 0, sizeof *st);
  if (!r) return;
  st->audio_dropped = r->audio_dropped;
  st->slow_kills = r->slow_kills;
  st->policy_closes = r->policy_closes;
  st->early_flushes = r->early_flushes;
  st->early_false = r->early_false;
}

void kmk_room_free(kmk_room *r) {
  if (!r) return;
  if (r->vh)
    KMK_INFO(TAG, "closing: %llu early barge-in flushes (%llu not confirmed), %llu audio frames dropped "
           "for slow pages, %llu slow pages cut off, %llu sockets closed for a limit",
           (unsigned long long)r->early_flushes, (unsigned long long)r->early_false,
           (unsigned long long)r->audio_dropped, (unsigned long long)r->slow_kills,
           (unsigned long long)r->policy_closes);
  r->closing = 1;
  if (r->observing) kmk_eventlog_set_observer(r->o.log, NULL, NULL);
  /* tell the pages (1001 "going away"), giving them up to 300 ms; then lws closes the rest */
  for (conn *c = r->conns; c; c = c->next) {
    if (c->closing) continue;
    c->closing = 1;
    c->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
    snprintf(c->close_reason, sizeof c->close_reason, "the room is shutting down");
    conn_drop_queues(c);
    lws_set_timer_usecs(c->wsi, 1);
  }
  if (r->conns) lws_cancel_service(r->ctx);
  uint64_t until = uv_hrtime() + 300000000ull;
  while (r->conns && r->pacer_open && uv_hrtime() < until) uv_run(r->loop, UV_RUN_ONCE);
  while (r->conns) conn_free(r, r->conns); /* speakers leave; lws closes the sockets below */
  if (r->pacer_open) kmk_pacer_uv_stop(r->pacer, pacer_closed);
  if (r->ctx_open) {
    lws_context_destroy(r->ctx); /* first call: closes every wsi and lws's uv handles */
    r->close_timer = calloc(1, sizeof *r->close_timer);
    if (r->close_timer) {
      uv_timer_init(r->loop, r->close_timer);
      r->close_timer->data = r;
      uv_timer_start(r->close_timer, close_tick, 0, 1);
    } else {
      r->ctx_open = 0; /* leaked rather than freed under lws's feet */
    }
  }
  while (r->pacer_open || r->ctx_open) uv_run(r->loop, UV_RUN_ONCE);
  kmk_agent_free(r->agent);
  free(r);
}
