/* dvoice.c - one Discord voice connection (discord_voice.h): the voice gateway v8 WebSocket
 * (identify/resume, hello + heartbeats with seq_ack and ACK checks, READY, session description,
 * speaking, clients connect/disconnect, DAVE ops 21-31 routed to kmk_dave_session), close-code
 * policy with backoff, and the object's lifecycle. UDP and audio live in dvoice_media.c.
 * Loop thread only.
 *
 * Connection states (on_state reports each change):
 *
 *   CONNECTING ──session description──> READY ──drop / 4015 / missed ACKs──> RESUMING
 *       │  ^                              ^                                     │ op 7 -> op 9
 *       │  └── server_update (new endpoint/token) ──┐                           │
 *       │                                   READY <─┴───────────────────────────┘
 *       └── fatal close code / too many attempts ──> CLOSED (no reconnect; controller decides)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/log.h"
#include "transport/dvoice_int.h"

#define TAG "dvoice"

double dv_now_s(kmk_dvoice *v) { return v->now ? v->now(v->now_ud) : uv_now(v->loop) / 1000.0; }
uint64_t dv_ms(void) { return uv_hrtime() / 1000000u; }

static const char *state_name(kmk_dvoice_state s) {
  static const char *n[] = {"connecting", "ready", "resuming", "closed"};
  return (unsigned)s < 4 ? n[s] : "?";
}

void dv_set_state(kmk_dvoice *v, kmk_dvoice_state st, int code, const char *why) {
  /* repeats are reported only for retries (CONNECTING / RESUMING again, with the reason) */
  if (v->state == st && st == KMK_DVOICE_READY) return;
  if (v->state == KMK_DVOICE_CLOSED) return;
  v->state = st;
  KMK_INFO(TAG, "%s (code %d%s%s)", state_name(st), code, why && *why ? ": " : "", why ? why : "");
  if (v->on_state && !v->closing) v->on_state(v->ud, st, code, why ? why : "");
}

int dv_send_json(kmk_dvoice *v, const char *json) {
  if (!v->conn || json == NULL) return KMK_NET_ECLOSED;
  return kmk_ws_send(v->conn, json, strlen(json), 0);
}

static char *sdup(const char *s) { return strdup(s ? s : ""); }

static uint64_t to_u64(const char *s) { return s ? strtoull(s, NULL, 10) : 0; }

/* ---- DAVE routing ------------------------------------------------------------------------- */

void dv_dave_drain(kmk_dvoice *v) {
  if (!v->dave) return;
  kmk_dave_out_frame f;
  while (kmk_dave_session_pop(v->dave, &f) == 1) {
    if (v->conn) kmk_ws_send(v->conn, f.data.data, f.data.len, !f.json);
    kmk_mls_bytes_free(&f.data);
  }
}

static void dave_json(kmk_dvoice *v, const kmk_dvoice_msg *m) {
  if (!v->dave) return;
  uint64_t now = dv_ms();
  int rc = 0;
  if (m->op == KMK_DVOP_DAVE_PREPARE_TRANSITION)
    rc = kmk_dave_session_prepare_transition(v->dave, (uint16_t)m->transition_id,
                                             m->protocol_version);
  else if (m->op == KMK_DVOP_DAVE_EXECUTE_TRANSITION)
    rc = kmk_dave_session_execute_transition(v->dave, (uint16_t)m->transition_id, now);
  else if (m->op == KMK_DVOP_DAVE_PREPARE_EPOCH)
    rc = kmk_dave_session_prepare_epoch(v->dave, m->epoch, m->protocol_version);
  if (rc < 0) KMK_WARN(TAG, "DAVE op %d failed (%d)", m->op, rc);
  /* the media layer follows the protocol version once a transition executes (a downgrade to 0
     turns DAVE off; a new epoch's version applies when its commit's transition executes) */
  if (m->op == KMK_DVOP_DAVE_PREPARE_TRANSITION || m->op == KMK_DVOP_DAVE_PREPARE_EPOCH)
    v->dave_pending_version = m->protocol_version;
  else if (m->op == KMK_DVOP_DAVE_EXECUTE_TRANSITION && v->dave_pending_version >= 0) {
    v->dave_version = v->dave_pending_version;
    v->dave_pending_version = -1;
  }
  dv_dave_drain(v);
}

static void dave_users(kmk_dvoice *v) {
  if (!v->dave) return;
  uint64_t ids[DV_MAX_USERS + 1];
  size_t n = 0;
  ids[n++] = to_u64(v->user_id);
  for (int i = 0; i < DV_MAX_USERS; i++)
    if (v->users[i].used) ids[n++] = v->users[i].id64;
  kmk_dave_session_set_users(v->dave, ids, n);
}

/* ---- gateway ------------------------------------------------------------------------------ */

static void ws_open(void *ud, kmk_ws_conn *c);
static void ws_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary);
static void ws_close(void *ud, kmk_ws_conn *c, int err, int http_status, const char *date,
                     const char *reason);

static int connect_ws(kmk_dvoice *v) {
  char url[512];
  snprintf(url, sizeof url, "%s://%s/?v=8", v->plain_ws ? "ws" : "wss", v->endpoint);
  kmk_ws_opts o = {.url = url,
                   .timeout_ms = 0,
                   .max_message = 1 << 20,
                   .cb = {ws_open, ws_message, ws_close},
                   .ud = v};
  v->hb_nonce = 0;
  v->hb_unacked = 0;
  int rc = kmk_ws_connect(v->ws, &o, &v->conn);
  if (rc < 0) v->conn = NULL;
  return rc;
}


/* Drop the connection and try again after a backoff: resume when we have a session. */
static void reconnect_later(kmk_dvoice *v, int code, const char *why) {
  if (v->closing || v->state == KMK_DVOICE_CLOSED) return;
  uv_timer_stop(&v->hb_timer);
  if (v->conn) {
    kmk_ws_close_conn(v->conn);
    v->conn = NULL;
  }
  if (++v->attempts > DV_MAX_RESUMES) {
    dv_set_state(v, KMK_DVOICE_CLOSED, code, "gave up reconnecting");
    return;
  }
  v->resuming = v->have_key;
  if (v->resuming) v->st.resumes++;
  dv_set_state(v, v->resuming ? KMK_DVOICE_RESUMING : KMK_DVOICE_CONNECTING, code, why);
  double ms = kmk_backoff_ms(v->attempts, 500, 8000, (double)rand() / ((double)RAND_MAX + 1));
  v->aux_mode = 1;
  uv_timer_start(&v->aux_timer, dv_aux_cb, (uint64_t)ms, 0);
}

void dv_aux_cb(uv_timer_t *t) {
  kmk_dvoice *v = t->data;
  if (v->closing) return;
  if (v->aux_mode == 1) {
    if (connect_ws(v) < 0) reconnect_later(v, 0, "connect failed");
  } else if (v->aux_mode == 2) {
    if (++v->disc_tries > DV_DISC_TRIES) {
      reconnect_later(v, 0, "IP discovery got no answer");
      return;
    }
    dv_disc_send(v);
  }
}

static void hb_cb(uv_timer_t *t) {
  kmk_dvoice *v = t->data;
  if (v->hb_nonce) {
    v->st.hb_missed++;
    if (++v->hb_unacked >= 2) {
      reconnect_later(v, 0, "heartbeat ACKs missed");
      return;
    }
  }
  char buf[128];
  v->hb_nonce = (int64_t)dv_ms() + 1;
  kmk_dvoice_msg_heartbeat(buf, sizeof buf, v->hb_nonce, v->seq_ack);
  dv_send_json(v, buf);
}

static void ws_open(void *ud, kmk_ws_conn *c) {
  kmk_dvoice *v = ud;
  char buf[1024];
  if (v->resuming)
    kmk_dvoice_msg_resume(buf, sizeof buf, v->guild_id, v->session_id, v->token, v->seq_ack);
  else
    kmk_dvoice_msg_identify(buf, sizeof buf, v->guild_id, v->user_id, v->session_id, v->token,
                            v->max_dave);
  kmk_ws_send(c, buf, strlen(buf), 0);
}

static void on_text(kmk_dvoice *v, const char *text, size_t len) {
  kmk_dvoice_msg m;
  if (kmk_dvoice_msg_parse(text, len, &m) < 0) {
    v->st.ws_bad++;
    return;
  }
  if (m.seq >= 0) v->seq_ack = m.seq;
  char buf[256];
  switch (m.op) {
  case KMK_DVOP_HELLO:
    v->hb_interval = m.heartbeat_interval;
    uv_timer_start(&v->hb_timer, hb_cb, (uint64_t)v->hb_interval, (uint64_t)v->hb_interval);
    break;
  case KMK_DVOP_HEARTBEAT_ACK:
    if (m.nonce == v->hb_nonce) {
      v->hb_nonce = 0;
      v->hb_unacked = 0;
    }
    break;
  case KMK_DVOP_READY:
    v->ssrc = m.ssrc;
    v->modes = m.modes;
    v->mode = (m.modes & (1u << KMK_RTP_AES256_GCM)) ? KMK_RTP_AES256_GCM
              : (m.modes & (1u << KMK_RTP_XCHACHA20_POLY1305)) ? KMK_RTP_XCHACHA20_POLY1305
                                                               : -1;
    if (v->mode < 0) {
      dv_set_state(v, KMK_DVOICE_CLOSED, 0, "no supported encryption mode offered");
      if (v->conn) kmk_ws_close_conn(v->conn);
      v->conn = NULL;
      return;
    }
    if (v->max_dave > 0 && !v->dave) {
      v->dave = kmk_dave_session_new(to_u64(v->user_id), to_u64(v->channel_id));
      dave_users(v);
    }
    if (dv_udp_start(v, m.ip, m.port) < 0) reconnect_later(v, 0, "UDP failed");
    break;
  case KMK_DVOP_SESSION:
    memcpy(v->key, m.secret_key, 32);
    v->mode = m.mode;
    v->dave_version = m.dave_version;
    v->have_key = 1;
    v->attempts = 0;
    if (v->aux_mode == 2) uv_timer_stop(&v->aux_timer);
    KMK_INFO(TAG, "session: mode %s, DAVE version %d", kmk_rtp_mode_name(v->mode),
             v->dave_version);
    dv_media_ready(v);
    dv_set_state(v, KMK_DVOICE_READY, 0, kmk_rtp_mode_name(v->mode));
    break;
  case KMK_DVOP_RESUMED:
    v->attempts = 0;
    v->resuming = 0;
    if (v->speaking) { /* the server forgot our flag with the old socket */
      kmk_dvoice_msg_speaking(buf, sizeof buf, 1, v->ssrc);
      dv_send_json(v, buf);
    }
    dv_set_state(v, KMK_DVOICE_READY, 0, "resumed");
    break;
  case KMK_DVOP_SPEAKING:
    if (m.ssrc != v->ssrc) dv_user_map(v, m.user_id, m.ssrc);
    dave_users(v);
    break;
  case KMK_DVOP_CLIENTS_CONNECT:
    for (int i = 0; i < m.n_ids; i++)
      if (strcmp(m.user_ids[i], v->user_id) != 0) dv_user_get(v, m.user_ids[i], 1);
    dave_users(v);
    break;
  case KMK_DVOP_CLIENT_DISCONNECT:
    dv_user_leave(v, m.user_id);
    dave_users(v);
    break;
  case KMK_DVOP_DAVE_PREPARE_TRANSITION:
  case KMK_DVOP_DAVE_EXECUTE_TRANSITION:
  case KMK_DVOP_DAVE_PREPARE_EPOCH:
    dave_json(v, &m);
    break;
  default:
    break;
  }
}

static void on_binary(kmk_dvoice *v, const uint8_t *p, size_t n) {
  uint16_t seq;
  uint8_t op;
  const uint8_t *pl;
  size_t pl_len;
  if (kmk_dvoice_bin_parse(p, n, &seq, &op, &pl, &pl_len) < 0) {
    v->st.ws_bad++;
    return;
  }
  v->seq_ack = seq;
  if (!v->dave) return;
  int rc = kmk_dave_session_binary(v->dave, p, n, dv_ms());
  if (rc < 0) {
    v->st.ws_bad++;
    KMK_WARN(TAG, "DAVE binary op %u rejected (%d)", op, rc);
  }
  dv_dave_drain(v);
}

static void ws_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary) {
  kmk_dvoice *v = ud;
  if (c != v->conn) return;
  if (binary) on_binary(v, data, len);
  else on_text(v, data, len);
}

/* Close-code policy (PROTOCOLS.md): resume after drops and 4015; 4006 session invalid, 4014/4022
 * kicked/moved/ended, 4016/4017/4020 our bug, 4021 rate limited, others: stop and report. */
static void ws_close(void *ud, kmk_ws_conn *c, int err, int http_status, const char *date,
                     const char *reason) {
  kmk_dvoice *v = ud;
  if (c != v->conn) return;
  v->conn = NULL;
  uv_timer_stop(&v->hb_timer);
  int code = 0;
  if (reason) sscanf(reason, "closed %d", &code);
  if (v->closing) return;
  char why[200];
  switch (code) {
  case 0:
  case 1001:
  case 1006:
  case 4015:
    snprintf(why, sizeof why, "%s", code == 4015 ? "voice server crashed" : "connection dropped");
    reconnect_later(v, code, why);
    return;
  case 4006: snprintf(why, sizeof why, "session no longer valid"); break;
  case 4014: snprintf(why, sizeof why, "disconnected (kicked, moved or channel deleted)"); break;
  case 4022: snprintf(why, sizeof why, "call terminated"); break;
  case 4016: snprintf(why, sizeof why, "unknown encryption mode (our bug)"); break;
  case 4017: snprintf(why, sizeof why, "E2EE/DAVE protocol required"); break;
  case 4020: snprintf(why, sizeof why, "bad request (our bug)"); break;
  case 4021: snprintf(why, sizeof why, "rate limited"); break;
  default:
    snprintf(why, sizeof why, "%s", reason && *reason ? reason : kmk_net_strerror(err));
    break;
  }
  if (http_status) snprintf(why, sizeof why, "handshake refused (HTTP %d)", http_status);
  dv_set_state(v, KMK_DVOICE_CLOSED, code, why);
}

/* ---- public API --------------------------------------------------------------------------- */

kmk_dvoice *kmk_dvoice_new(const kmk_dvoice_opts *o, char *err, size_t errlen) {
  const char *bad = NULL;
  if (!o || !o->loop) bad = "no loop";
  else if (!o->endpoint || !*o->endpoint) bad = "no endpoint";
  else if (!o->guild_id || !o->user_id || !o->session_id || !o->token) bad = "missing ids/token";
  if (bad) {
    if (err) snprintf(err, errlen, "%s", bad);
    return NULL;
  }
  kmk_dvoice *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->loop = o->loop;
  v->agent = o->agent;
  v->endpoint = sdup(o->endpoint);
  v->guild_id = sdup(o->guild_id);
  v->channel_id = sdup(o->channel_id);
  v->user_id = sdup(o->user_id);
  v->session_id = sdup(o->session_id);
  v->token = sdup(o->token);
  v->plain_ws = o->plain_ws;
  v->max_dave = o->max_dave_version;
  v->user_name = o->user_name;
  v->on_state = o->on_state;
  v->ud = o->ud;
  v->now = o->now;
  v->now_ud = o->now_ud;
  v->seq_ack = -1;
  v->mode = -1;
  v->dave_pending_version = -1;
  v->tx_seq = (uint16_t)rand();
  v->tx_ts = (uint32_t)rand();
  if (v->token[0]) kmk_log_add_secret(v->token);
  v->own_ws = o->ws == NULL;
  v->ws = o->ws ? o->ws : kmk_ws_new(v->loop);
  v->pacer = calloc(1, sizeof *v->pacer);
  if (!v->ws || !v->pacer || !v->endpoint || !v->token) {
    if (err) snprintf(err, errlen, "out of memory or no WebSocket context");
    if (v->ws && v->own_ws) kmk_ws_close(v->ws, NULL, NULL);
    free(v->pacer);
    free(v->endpoint); free(v->guild_id); free(v->channel_id); free(v->user_id);
    free(v->session_id); free(v->token);
    free(v);
    return NULL;
  }
  uv_timer_init(v->loop, &v->hb_timer);
  uv_timer_init(v->loop, &v->aux_timer);
  v->hb_timer.data = v->aux_timer.data = v;
  if (connect_ws(v) < 0) reconnect_later(v, 0, "connect failed");
  return v;
}

int kmk_dvoice_server_update(kmk_dvoice *v, const char *endpoint, const char *token) {
  if (!v || !endpoint || !*endpoint || !token || v->closing) return KMK_NET_EINVAL;
  char *e = strdup(endpoint), *t = strdup(token);
  if (!e || !t) {
    free(e);
    free(t);
    return KMK_NET_ENOMEM;
  }
  free(v->endpoint);
  free(v->token);
  v->endpoint = e;
  v->token = t;
  kmk_log_add_secret(t);
  if (v->conn) kmk_ws_close_conn(v->conn);
  v->conn = NULL;
  uv_timer_stop(&v->hb_timer);
  uv_timer_stop(&v->aux_timer);
  v->have_key = 0;
  v->resuming = 0;
  v->attempts = 0;
  v->seq_ack = -1;
  v->state = KMK_DVOICE_CONNECTING; /* may come back from CLOSED: the controller asked */
  if (v->on_state) v->on_state(v->ud, KMK_DVOICE_CONNECTING, 0, "voice server update");
  dv_users_clear_ssrc(v);
  int rc = connect_ws(v);
  if (rc < 0) reconnect_later(v, 0, "connect failed");
  return 0;
}

void kmk_dvoice_set_mute(kmk_dvoice *v, int mute) {
  if (v) v->mute = mute ? 1 : 0;
}

kmk_dvoice_state kmk_dvoice_get_state(const kmk_dvoice *v) {
  return v ? v->state : KMK_DVOICE_CLOSED;
}

void kmk_dvoice_get_stats(const kmk_dvoice *v, kmk_dvoice_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!v) return;
  *out = v->st;
  for (int i = 0; i < DV_MAX_USERS; i++) {
    const dv_user *u = &v->users[i];
    if (!u->used) continue;
    out->rx_late += u->jb.late + u->jb.dup;
    out->rx_lost += u->jb.lost;
    out->rx_reordered += u->jb.reordered;
  }
}

uint32_t kmk_dvoice_ssrc(const kmk_dvoice *v) { return v ? v->ssrc : 0; }

static void maybe_free(kmk_dvoice *v) {
  if (v->open_handles > 0) return;
  void (*cb)(void *) = v->closed;
  void *ud = v->closed_ud;
  if (v->dave) kmk_dave_session_free(v->dave);
  free(v->pacer);
  free(v->endpoint); free(v->guild_id); free(v->channel_id); free(v->user_id);
  free(v->session_id); free(v->token);
  memset(v->key, 0, sizeof v->key);
  free(v);
  if (cb) cb(ud);
}

void dv_handle_done(kmk_dvoice *v) {
  v->open_handles--;
  maybe_free(v);
}

void dv_handle_closed(uv_handle_t *h) { dv_handle_done(h->data); }

static void ws_ctx_closed(void *ud) {
  kmk_dvoice *v = ud;
  v->open_handles--;
  maybe_free(v);
}

static void aux_closed(uv_handle_t *h) {
  kmk_dvoice *v = h->data;
  if (v->own_ws) kmk_ws_close(v->ws, ws_ctx_closed, v);
  dv_handle_done(v);
}

void kmk_dvoice_close(kmk_dvoice *v, void (*closed)(void *ud), void *ud) {
  if (!v || v->closing) return;
  kmk_dvoice_stats s;
  kmk_dvoice_get_stats(v, &s);
  KMK_INFO(TAG, "close: rx %llu pkts (rtcp %llu, malformed %llu, auth %llu, dave %llu, unmapped "
           "%llu, late %llu, lost %llu: fec %llu plc %llu, reordered %llu), tx %llu (dropped %llu), "
           "bad msgs %llu, resumes %llu, missed ACKs %llu",
           (unsigned long long)s.rx_packets, (unsigned long long)s.rx_rtcp,
           (unsigned long long)s.rx_malformed, (unsigned long long)s.rx_auth_failed,
           (unsigned long long)s.rx_dave_failed, (unsigned long long)s.rx_unmapped,
           (unsigned long long)s.rx_late, (unsigned long long)s.rx_lost,
           (unsigned long long)s.rx_fec, (unsigned long long)s.rx_plc,
           (unsigned long long)s.rx_reordered, (unsigned long long)s.tx_packets,
           (unsigned long long)s.tx_dropped, (unsigned long long)s.ws_bad,
           (unsigned long long)s.resumes, (unsigned long long)s.hb_missed);
  if (v->conn && v->speaking) {
    char buf[128];
    kmk_dvoice_msg_speaking(buf, sizeof buf, 0, v->ssrc);
    dv_send_json(v, buf);
  }
  v->closing = 1;
  v->closed = closed;
  v->closed_ud = ud;
  if (v->conn) kmk_ws_close_conn(v->conn);
  v->conn = NULL;
  v->open_handles = v->own_ws ? 3 : 2; /* hb, aux, own ws context; media adds its own */
  uv_close((uv_handle_t *)&v->hb_timer, dv_handle_closed);
  /* our own WebSocket context is destroyed from a close callback, never from inside an lws
     callback (the controller may close us from on_state, which runs inside one) */
  uv_close((uv_handle_t *)&v->aux_timer, aux_closed);
  dv_media_close(v);
}
