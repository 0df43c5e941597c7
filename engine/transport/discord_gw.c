/* discord_gw.c - one Discord gateway (v10) session over the engine's WebSocket client.
 *
 * Owns: the current kmk_ws_conn, three uv timers (heartbeat, reconnect, send pacing), the send
 * queue (bounded: 64 payloads, oldest dropped when full), the session (session_id, resume URL, seq).
 *
 *   CONNECTING ──hello──> IDENTIFYING ──READY/RESUMED──> CONNECTED
 *        ^                    │ close / missed ACK / op 7 / op 9         │
 *        └──── WAITING <──────┴──────────────────────────────────────────┘
 *                 │ fatal close code (4004, 4010-4014)
 *                 v
 *               FATAL (no reconnect; on_state tells why)
 *
 * Heartbeats: the first after interval x random jitter, then every interval; a heartbeat due while
 * the previous one is unacknowledged drops the connection (no clean close, so the session stays
 * resumable) and resumes. Sends are limited to 120 per 60 s per connection, 3 slots kept for
 * heartbeats/identify. Reconnects back off 1 s, 2 s, 4 s ... 60 s (+-20 %), reset on READY/RESUMED.
 * Thread: loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/discord.h"
#include "kameko/log.h"
#include "kameko/net.h"

#define TAG "discord-gw"
#define QMAX 64
#define KMK_DGW_LINGER_MS 300 /* on close, how long queued payloads get to reach the gateway */

struct kmk_dgw {
  uv_loop_t *loop;
  kmk_ws *ws;
  char *url, *token;
  int intents;
  kmk_dgw_opts o;
  kmk_ws_conn *conn;
  int opened;
  uv_timer_t hb, retry, pace;
  kmk_dgw_state state;
  int64_t seq;
  kmk_dgw_ready ready;
  int have_session;
  double hb_ms;
  int awaiting_ack;
  int attempt;
  uint64_t last_send; /* uv_now of the last queued payload written (0 = none) */
  kmk_dgw_rl rl;
  char *q[QMAX];
  int qh, qn;
  kmk_dgw_stats st;
  uint64_t rnd;
  int closing, open_handles;
  void (*closed)(void *);
  void *closed_ud;
};

static double rnd01(kmk_dgw *g) {
  g->rnd ^= g->rnd << 13;
  g->rnd ^= g->rnd >> 7;
  g->rnd ^= g->rnd << 17;
  return (double)(g->rnd >> 11) / 9007199254740992.0;
}

static void set_state(kmk_dgw *g, kmk_dgw_state s, int code, const char *why) {
  g->state = s;
  if (g->o.on_state && !g->closing) g->o.on_state(g->o.ud, s, code, why ? why : "");
}

static void connect_now(kmk_dgw *g);

static int raw_send(kmk_dgw *g, const char *text) {
  if (!g->conn || !g->opened) return KMK_NET_ECLOSED;
  return kmk_ws_send(g->conn, text, strlen(text), 0);
}

static int send_op(kmk_dgw *g, int op, cJSON *d) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "op", op);
  cJSON_AddItemToObject(o, "d", d ? d : cJSON_CreateNull());
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) return KMK_NET_ENOMEM;
  /* identify/resume/heartbeat use the reserved slots; they never wait */
  kmk_dgw_rl_take(&g->rl, (double)uv_now(g->loop), 1);
  int rc = raw_send(g, s);
  free(s);
  return rc;
}

static void pace_cb(uv_timer_t *t);

static void flush(kmk_dgw *g) {
  while (g->qn > 0 && g->state == KMK_DGW_CONNECTED && g->conn && g->opened) {
    double wait = kmk_dgw_rl_take(&g->rl, (double)uv_now(g->loop), 0);
    if (wait > 0) {
      uv_timer_start(&g->pace, pace_cb, (uint64_t)wait + 1, 0);
      return;
    }
    char *s = g->q[g->qh];
    g->q[g->qh] = NULL;
    g->qh = (g->qh + 1) % QMAX;
    g->qn--;
    raw_send(g, s);
    g->last_send = uv_now(g->loop);
    free(s);
  }
}

static void pace_cb(uv_timer_t *t) { flush(t->data); }

int kmk_dgw_send(kmk_dgw *g, int op, cJSON *d) {
  if (!g || g->closing) {
    cJSON_Delete(d);
    return KMK_NET_ECLOSED;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "op", op);
  cJSON_AddItemToObject(o, "d", d ? d : cJSON_CreateNull());
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!s) return KMK_NET_ENOMEM;
  if (g->qn == QMAX) { /* drop the oldest */
    free(g->q[g->qh]);
    g->qh = (g->qh + 1) % QMAX;
    g->qn--;
    g->st.dropped_sends++;
    KMK_WARN(TAG, "send queue full: dropped the oldest payload");
  }
  g->q[(g->qh + g->qn) % QMAX] = s;
  g->qn++;
  flush(g);
  return 0;
}

static void drop_conn(kmk_dgw *g) {
  if (g->conn) kmk_ws_close_conn(g->conn); /* no close frame: the session stays resumable */
  g->conn = NULL;
  g->opened = 0;
  g->awaiting_ack = 0;
  uv_timer_stop(&g->hb);
  uv_timer_stop(&g->pace);
}

static void retry_cb(uv_timer_t *t) { connect_now(t->data); }

/* Schedules the next attempt; delay_ms < 0 = backoff. */
static void schedule(kmk_dgw *g, double delay_ms, int code, const char *why) {
  drop_conn(g);
  if (g->closing) return;
  g->attempt++;
  g->st.reconnects++;
  if (delay_ms < 0) delay_ms = kmk_dgw_backoff_ms(g->attempt, rnd01(g));
  char msg[200];
  snprintf(msg, sizeof msg, "%s; %s in %.1f s", why, g->have_session ? "resuming" : "identifying",
           delay_ms / 1000);
  KMK_INFO(TAG, "%s", msg);
  set_state(g, KMK_DGW_WAITING, code, msg);
  uv_timer_start(&g->retry, retry_cb, (uint64_t)delay_ms, 0);
}

static void heartbeat(kmk_dgw *g) {
  cJSON *d = g->seq >= 0 ? cJSON_CreateNumber((double)g->seq) : cJSON_CreateNull();
  send_op(g, KMK_DGW_OP_HEARTBEAT, d);
  g->st.heartbeats++;
}

static void hb_cb(uv_timer_t *t) {
  kmk_dgw *g = t->data;
  if (!g->conn || !g->opened) return;
  if (g->awaiting_ack) {
    g->st.missed_acks++;
    KMK_WARN(TAG, "no heartbeat ACK: zombie connection, reconnecting");
    schedule(g, 0, 0, "heartbeat not acknowledged");
    return;
  }
  heartbeat(g);
  g->awaiting_ack = 1;
  uv_timer_start(&g->hb, hb_cb, (uint64_t)g->hb_ms, 0);
}

static void identify_or_resume(kmk_dgw *g) {
  cJSON *d = cJSON_CreateObject();
  cJSON_AddStringToObject(d, "token", g->token);
  if (g->have_session) {
    cJSON_AddStringToObject(d, "session_id", g->ready.session_id);
    cJSON_AddNumberToObject(d, "seq", (double)(g->seq >= 0 ? g->seq : 0));
    send_op(g, KMK_DGW_OP_RESUME, d);
    g->st.resumes++;
  } else {
    cJSON_AddNumberToObject(d, "intents", g->intents);
    cJSON *p = cJSON_AddObjectToObject(d, "properties");
    cJSON_AddStringToObject(p, "os", "linux");
    cJSON_AddStringToObject(p, "browser", "kameko");
    cJSON_AddStringToObject(p, "device", "kameko");
    send_op(g, KMK_DGW_OP_IDENTIFY, d);
    g->st.identifies++;
  }
  set_state(g, KMK_DGW_IDENTIFYING, 0, NULL);
}

static void on_open(void *ud, kmk_ws_conn *c) {
  kmk_dgw *g = ud;
  if (c != g->conn) return;
  g->opened = 1;
  kmk_dgw_rl_reset(&g->rl);
}

static void on_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary) {
  kmk_dgw *g = ud;
  if (c != g->conn || binary || g->closing) return; /* nothing reaches the owner after close */
  kmk_dgw_frame f;
  if (kmk_dgw_parse_frame(data, len, &f) != 0) {
    KMK_WARN(TAG, "dropped a malformed gateway frame (%zu bytes)", len);
    return;
  }
  if (f.seq >= 0) g->seq = g->st.seq = f.seq;
  switch (f.op) {
  case KMK_DGW_OP_HELLO: {
    double ms = kmk_dgw_parse_hello(f.d);
    if (ms <= 0) {
      kmk_dgw_frame_free(&f);
      schedule(g, -1, 0, "hello without heartbeat_interval");
      return;
    }
    g->hb_ms = ms;
    g->awaiting_ack = 0;
    uv_timer_start(&g->hb, hb_cb, (uint64_t)(ms * rnd01(g)), 0);
    identify_or_resume(g);
    break;
  }
  case KMK_DGW_OP_HEARTBEAT: /* the gateway asks for one now */
    heartbeat(g);
    break;
  case KMK_DGW_OP_HEARTBEAT_ACK:
    g->awaiting_ack = 0;
    g->st.acks++;
    break;
  case KMK_DGW_OP_RECONNECT:
    kmk_dgw_frame_free(&f);
    schedule(g, 0, 0, "gateway asked to reconnect (op 7)");
    return;
  case KMK_DGW_OP_INVALID_SESSION: {
    int resumable = cJSON_IsTrue(f.d);
    kmk_dgw_frame_free(&f);
    if (!resumable) {
      g->have_session = 0;
      g->seq = -1;
    }
    /* the docs ask for a random 1-5 s wait before identifying again */
    schedule(g, 1000 + 4000 * rnd01(g), 0, resumable ? "invalid session (resumable)" : "invalid session");
    return;
  }
  case KMK_DGW_OP_DISPATCH:
    if (strcmp(f.t, "READY") == 0) {
      kmk_dgw_ready r;
      if (kmk_dgw_parse_ready(f.d, &r) == 0) {
        g->ready = r;
        g->have_session = 1;
        g->attempt = 0;
        KMK_INFO(TAG, "ready as %s (user %s, application %s)", r.user_name, r.user_id, r.app_id);
        set_state(g, KMK_DGW_CONNECTED, 0, NULL);
      } else {
        KMK_WARN(TAG, "READY without session_id/user");
      }
    } else if (strcmp(f.t, "RESUMED") == 0) {
      g->attempt = 0;
      KMK_INFO(TAG, "resumed at seq %lld", (long long)g->seq);
      set_state(g, KMK_DGW_CONNECTED, 0, NULL);
    }
    if (g->o.on_dispatch && f.t[0]) g->o.on_dispatch(g->o.ud, f.t, f.d);
    if (g->state == KMK_DGW_CONNECTED) flush(g);
    break;
  default:
    break;
  }
  kmk_dgw_frame_free(&f);
}

static void on_close(void *ud, kmk_ws_conn *c, int err, int http_status, const char *date,
                     const char *reason) {
  (void)date;
  kmk_dgw *g = ud;
  if (c != g->conn) return;
  g->conn = NULL;
  g->opened = 0;
  int code = kmk_dgw_close_code_from_reason(reason);
  kmk_dgw_action a = kmk_dgw_close_action(code);
  char why[256];
  if (http_status) snprintf(why, sizeof why, "gateway handshake refused (HTTP %d)", http_status);
  else if (code) snprintf(why, sizeof why, "gateway closed %d: %s", code, kmk_dgw_close_reason(code));
  else snprintf(why, sizeof why, "gateway connection lost (%s)", err ? kmk_net_strerror(err) : "closed");
  if (a == KMK_DGW_DO_FATAL) {
    drop_conn(g);
    KMK_ERR(TAG, "%s; not reconnecting", why);
    set_state(g, KMK_DGW_FATAL, code, why);
    return;
  }
  if (a == KMK_DGW_DO_NEW_SESSION) {
    g->have_session = 0;
    g->seq = -1;
  }
  schedule(g, -1, code, why);
}

static void connect_now(kmk_dgw *g) {
  if (g->closing) return;
  char url[1024];
  if (g->have_session && g->ready.resume_url[0]) {
    const char *q = strchr(g->url, '?');
    const char *rs = g->ready.resume_url;
    size_t n = strlen(rs);
    int has_path = strchr(strstr(rs, "://") ? strstr(rs, "://") + 3 : rs, '/') != NULL;
    snprintf(url, sizeof url, "%s%s%s", rs, has_path || (n && rs[n - 1] == '/') ? "" : "/",
             strchr(rs, '?') ? "" : (q ? q : "?v=10&encoding=json"));
  } else {
    snprintf(url, sizeof url, "%s", g->url);
  }
  kmk_ws_opts wo = {.url = url,
                    .timeout_ms = 1e12, /* the session lives as long as it can */
                    .max_message = 16u << 20,
                    .cb = {on_open, on_message, on_close},
                    .ud = g};
  g->opened = 0;
  g->awaiting_ack = 0;
  g->st.connects++;
  set_state(g, KMK_DGW_CONNECTING, 0, NULL);
  int rc = kmk_ws_connect(g->ws, &wo, &g->conn);
  if (rc != 0) {
    g->conn = NULL;
    schedule(g, -1, 0, "cannot start the gateway connection");
  }
}

kmk_dgw *kmk_dgw_new(const kmk_dgw_opts *o, char *err, size_t errlen) {
  if (!o || !o->loop || !o->ws || !o->url || !o->token || !o->token[0]) {
    snprintf(err, errlen, "discord gateway: loop, ws, url and token are required");
    return NULL;
  }
  if (strncmp(o->url, "ws://", 5) != 0 && strncmp(o->url, "wss://", 6) != 0) {
    snprintf(err, errlen, "DISCORD_GATEWAY_URL must start with ws:// or wss://");
    return NULL;
  }
  kmk_dgw *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->loop = o->loop;
  g->ws = o->ws;
  g->o = *o;
  g->url = strdup(o->url);
  g->token = strdup(o->token);
  g->intents = o->intents ? o->intents : KMK_DGW_INTENTS;
  g->seq = -1;
  g->rnd = uv_hrtime() | 1;
  kmk_dgw_rl_init(&g->rl, 120, 60000, 3);
  uv_timer_init(g->loop, &g->hb);
  uv_timer_init(g->loop, &g->retry);
  uv_timer_init(g->loop, &g->pace);
  g->hb.data = g->retry.data = g->pace.data = g;
  g->open_handles = 3;
  connect_now(g);
  return g;
}

kmk_dgw_state kmk_dgw_get_state(const kmk_dgw *g) { return g->state; }
const kmk_dgw_ready *kmk_dgw_get_ready(const kmk_dgw *g) { return g->have_session ? &g->ready : NULL; }
kmk_dgw_stats kmk_dgw_get_stats(const kmk_dgw *g) { return g->st; }

static void handle_closed(uv_handle_t *h) {
  kmk_dgw *g = h->data;
  if (--g->open_handles > 0) return;
  void (*cb)(void *) = g->closed;
  void *ud = g->closed_ud;
  for (int i = 0; i < g->qn; i++) free(g->q[(g->qh + i) % QMAX]);
  free(g->url);
  free(g->token);
  free(g);
  if (cb) cb(ud);
}

static void finish_close(kmk_dgw *g) {
  drop_conn(g);
  g->state = KMK_DGW_CLOSED;
  uv_close((uv_handle_t *)&g->hb, handle_closed);
  uv_close((uv_handle_t *)&g->retry, handle_closed);
  uv_close((uv_handle_t *)&g->pace, handle_closed);
}

static void linger_cb(uv_timer_t *t) { finish_close(t->data); }

void kmk_dgw_close(kmk_dgw *g, void (*closed)(void *ud), void *ud) {
  if (!g || g->closing) return;
  g->closing = 1;
  g->closed = closed;
  g->closed_ud = ud;
  int recent = g->last_send && uv_now(g->loop) - g->last_send < 1000;
  if (g->conn && g->opened && g->state == KMK_DGW_CONNECTED && (g->qn > 0 || recent)) {
    /* last words (e.g. op 4 leaving voice): written now, the socket dropped a moment later */
    while (g->qn > 0) {
      char *s = g->q[g->qh];
      g->q[g->qh] = NULL;
      g->qh = (g->qh + 1) % QMAX;
      g->qn--;
      raw_send(g, s);
      free(s);
    }
    uv_timer_stop(&g->hb);
    uv_timer_stop(&g->retry);
    uv_timer_stop(&g->pace);
    uv_timer_start(&g->retry, linger_cb, KMK_DGW_LINGER_MS, 0);
    return;
  }
  finish_close(g);
}
