/* dvoice_media.c - the voice connection's UDP side (see dvoice_int.h): IP discovery, RTP receive
 * (transport decrypt, RTCP skipped, optional DAVE decrypt) into per-user jitter buffers feeding
 * agent speakers (a loss is recovered from the next packet's Opus FEC when that is buffered, else
 * PLC, counted in rx_fec / rx_plc; silence fill while a user is quiet so endpointing sees the end
 * of a turn), a small buffer for SSRCs that SPEAKING has not named yet, and the 20 ms paced send
 * of the agent's voice (speaking flag first, seq/timestamp/nonce, 5 silence frames then
 * speaking 0; muted or not-ready frames are pulled and dropped), plus an 8-byte UDP keep-alive
 * every 5 s. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/log.h"
#include "transport/dvoice_int.h"

#define TAG "dvoice"

static const uint8_t SILENCE[3] = {0xf8, 0xff, 0xfe};

/* ---- users and speakers ------------------------------------------------------------------- */

dv_user *dv_user_get(kmk_dvoice *v, const char *id, int create) {
  dv_user *free_slot = NULL;
  for (int i = 0; i < DV_MAX_USERS; i++) {
    if (v->users[i].used && strcmp(v->users[i].id, id) == 0) return &v->users[i];
    if (!v->users[i].used && !free_slot) free_slot = &v->users[i];
  }
  if (!create || !free_slot || v->closing) return NULL;
  dv_user *u = free_slot;
  memset(u, 0, sizeof *u);
  u->used = 1;
  snprintf(u->id, sizeof u->id, "%s", id);
  u->id64 = strtoull(id, NULL, 10);
  kmk_jitter_init(&u->jb, 3, 60);
  u->t0 = dv_now_s(v);
  if (v->agent) {
    const char *name = v->user_name ? v->user_name(v->ud, id) : NULL;
    u->sp = kmk_agent_speaker_join(v->agent, name && *name ? name : id, u->t0);
  }
  return u;
}

static dv_user *user_by_ssrc(kmk_dvoice *v, uint32_t ssrc) {
  for (int i = 0; i < DV_MAX_USERS; i++)
    if (v->users[i].used && v->users[i].has_ssrc && v->users[i].ssrc == ssrc) return &v->users[i];
  return NULL;
}

/* One 20 ms frame: a packet, a lost one recovered from its successor's FEC, or PLC. */
static void feed(kmk_dvoice *v, dv_user *u, int what, const uint8_t *pkt, size_t len) {
  if (what == KMK_JITTER_LOST_FEC) v->st.rx_fec++;
  else if (what == KMK_JITTER_LOST) v->st.rx_plc++;
  if (u->sp) {
    if (what == KMK_JITTER_PACKET) kmk_agent_speaker_opus(u->sp, pkt, len);
    else if (what == KMK_JITTER_LOST_FEC) kmk_agent_speaker_opus_fec(u->sp, pkt, len);
    else kmk_agent_speaker_opus(u->sp, NULL, 0);
  }
  u->fed_s += 0.02;
}

/* Plays what the jitter buffer releases at now_ms. The packets in it are already DAVE-decrypted
 * (dave_put), so a successor's FEC data is plain Opus. */
static void drain(kmk_dvoice *v, dv_user *u, uint64_t now_ms) {
  const uint8_t *d;
  size_t l;
  int r;
  while ((r = kmk_jitter_pop(&u->jb, now_ms, &d, &l)) != KMK_JITTER_NONE) feed(v, u, r, d, l);
}

/* A quiet user (Discord sends nothing while nobody talks): silence keeps their stream's clock in
 * step with the timeline so the endpointer sees the turn end. At most 1 s per tick. */
static void silence_fill(kmk_dvoice *v, dv_user *u, double now_s) {
  static const int16_t zeros[320];
  if (!u->sp || kmk_jitter_buffered(&u->jb) > 0) return;
  double behind = (now_s - u->t0) - u->fed_s;
  if (behind < 0.2) return;
  for (int k = 0; k < 50 && behind > 0.06; k++) {
    kmk_agent_speaker_pcm(u->sp, zeros, 320, 16000, 1);
    u->fed_s += 0.02;
    behind -= 0.02;
  }
}

static void put_packet(kmk_dvoice *v, dv_user *u, uint16_t seq, const uint8_t *p, size_t n,
                       uint64_t now_ms) {
  kmk_jitter_put(&u->jb, seq, p, n, now_ms);
  drain(v, u, now_ms);
}

/* DAVE-decrypts (when DAVE is on) and stores one packet of a known user. A frame that does not
 * decrypt is dropped and counted; the jitter buffer conceals the gap. */
static void dave_put(kmk_dvoice *v, dv_user *u, uint16_t seq, const uint8_t *p, size_t n) {
  static uint8_t clear[KMK_RTP_MAX_PACKET]; /* loop thread only */
  if (v->dave && v->dave_version > 0 && !(n == 3 && memcmp(p, SILENCE, 3) == 0)) {
    size_t ol = 0;
    unsigned before = kmk_dave_session_recoveries(v->dave);
    if (kmk_dave_session_decrypt(v->dave, u->id64, p, n, clear, sizeof clear, &ol, dv_ms()) < 0) {
      v->st.rx_dave_failed++;
      if (kmk_dave_session_recoveries(v->dave) != before) {
        KMK_WARN(TAG, "DAVE: more than %d frames in a row did not decrypt; re-initialising the "
                 "session (op 31, new key package)", KMK_DAVE_FAILURE_TOLERANCE);
        dv_dave_drain(v);
      }
      return;
    }
    p = clear;
    n = ol;
  }
  put_packet(v, u, seq, p, n, dv_ms());
}

void dv_user_map(kmk_dvoice *v, const char *id, uint32_t ssrc) {
  dv_user *other = user_by_ssrc(v, ssrc);
  if (other && strcmp(other->id, id) != 0) other->has_ssrc = 0; /* the SSRC moved */
  dv_user *u = dv_user_get(v, id, 1);
  if (!u) return;
  if (u->has_ssrc && u->ssrc != ssrc) { /* a new stream: keep the old one's counters */
    v->st.rx_late += u->jb.late + u->jb.dup;
    v->st.rx_lost += u->jb.lost;
    v->st.rx_reordered += u->jb.reordered;
    kmk_jitter_init(&u->jb, 3, 60);
  }
  u->ssrc = ssrc;
  u->has_ssrc = 1;
  /* packets that arrived before SPEAKING, oldest first */
  for (int k = 0; k < v->pend_count; k++) {
    dv_pending *p = &v->pending[(v->pend_head + k) % DV_PENDING];
    if (p->len && p->ssrc == ssrc) {
      dave_put(v, u, p->seq, p->data, p->len);
      p->len = 0;
      p->ssrc = 0;
    }
  }
}

static void user_drop(kmk_dvoice *v, dv_user *u) {
  if (u->sp && v->agent) {
    kmk_jitter_flush(&u->jb);
    drain(v, u, dv_ms());
    kmk_agent_speaker_leave(v->agent, u->sp);
  }
  v->st.rx_late += u->jb.late + u->jb.dup; /* keep the counters of users who left */
  v->st.rx_lost += u->jb.lost;
  v->st.rx_reordered += u->jb.reordered;
  u->used = 0;
  u->sp = NULL;
}

void dv_user_leave(kmk_dvoice *v, const char *id) {
  dv_user *u = dv_user_get(v, id, 0);
  if (u) user_drop(v, u);
}

void dv_users_clear_ssrc(kmk_dvoice *v) {
  for (int i = 0; i < DV_MAX_USERS; i++) v->users[i].has_ssrc = 0;
  v->pend_count = 0;
}

/* ---- UDP receive -------------------------------------------------------------------------- */

static void pend(kmk_dvoice *v, uint32_t ssrc, uint16_t seq, const uint8_t *p, size_t n) {
  if (n > KMK_JITTER_MAX_PKT) return;
  int idx;
  if (v->pend_count == DV_PENDING) { /* full: drop the oldest */
    idx = v->pend_head;
    v->pend_head = (v->pend_head + 1) % DV_PENDING;
  } else {
    idx = (v->pend_head + v->pend_count++) % DV_PENDING;
  }
  dv_pending *e = &v->pending[idx];
  e->ssrc = ssrc;
  e->seq = seq;
  e->len = (uint16_t)n;
  e->t_ms = dv_ms();
  memcpy(e->data, p, n);
}

static void on_discovery(kmk_dvoice *v, const uint8_t *p, size_t n) {
  char addr[65];
  uint16_t port = 0;
  uint32_t ssrc = 0;
  if (kmk_ipdisc_parse(p, n, &ssrc, addr, sizeof addr, &port) < 0 || port == 0) {
    v->st.rx_malformed++;
    return;
  }
  if (v->aux_mode != 2) return; /* a late duplicate */
  uv_timer_stop(&v->aux_timer);
  v->aux_mode = 0;
  char buf[256];
  kmk_dvoice_msg_select(buf, sizeof buf, addr, port, v->mode);
  dv_send_json(v, buf);
  KMK_DEBUG(TAG, "IP discovery: %s:%u, selecting %s", addr, port, kmk_rtp_mode_name(v->mode));
}

static void on_rtp(kmk_dvoice *v, const uint8_t *p, size_t n) {
  static uint8_t plain[KMK_RTP_MAX_PACKET]; /* loop thread only */
  if (kmk_rtp_is_rtcp(p, n)) {
    v->st.rx_rtcp++;
    return;
  }
  kmk_rtp_header h;
  int l = kmk_rtp_open((kmk_rtp_mode)v->mode, v->key, p, n, &h, plain, sizeof plain);
  if (l == KMK_RTP_EAUTH || l == KMK_RTP_ECRYPTO) {
    v->st.rx_auth_failed++;
    return;
  }
  if (l < 0 || h.payload_type != KMK_RTP_PAYLOAD_TYPE) {
    v->st.rx_malformed++;
    return;
  }
  if (h.ssrc == v->ssrc) return;
  v->st.rx_packets++;
  dv_user *u = user_by_ssrc(v, h.ssrc);
  if (!u) { /* no SPEAKING yet: kept (transport-decrypted) until one names the SSRC */
    v->st.rx_unmapped++;
    pend(v, h.ssrc, h.seq, plain, (size_t)l);
    return;
  }
  dave_put(v, u, h.seq, plain, (size_t)l);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char mem[2048]; /* one datagram at a time on the loop thread */
  (void)h;
  (void)suggested;
  buf->base = mem;
  buf->len = sizeof mem;
}

static void recv_cb(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  kmk_dvoice *v = udp->data;
  if (nread <= 0 || !addr || v->closing) return;
  if (flags & UV_UDP_PARTIAL) {
    v->st.rx_malformed++;
    return;
  }
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t n = (size_t)nread;
  if (n == KMK_IPDISC_LEN && p[0] == 0 && p[1] == 2) {
    on_discovery(v, p, n);
    return;
  }
  if (!v->have_key || v->mode < 0) return;
  on_rtp(v, p, n);
}

void dv_disc_send(kmk_dvoice *v) {
  uint8_t req[KMK_IPDISC_LEN];
  kmk_ipdisc_request(v->ssrc, req);
  uv_buf_t b = uv_buf_init((char *)req, sizeof req);
  uv_udp_try_send(&v->udp, &b, 1, (const struct sockaddr *)&v->server);
  v->aux_mode = 2;
  uv_timer_start(&v->aux_timer, dv_aux_cb, 1000, 0);
}

int dv_udp_start(kmk_dvoice *v, const char *ip, int port) {
  struct sockaddr_in a4;
  struct sockaddr_in6 a6;
  memset(&v->server, 0, sizeof v->server);
  if (uv_ip4_addr(ip, port, &a4) == 0) memcpy(&v->server, &a4, sizeof a4);
  else if (uv_ip6_addr(ip, port, &a6) == 0) memcpy(&v->server, &a6, sizeof a6);
  else return KMK_NET_EINVAL;
  if (!v->udp_bound) {
    if (uv_udp_init(v->loop, &v->udp) < 0) return KMK_NET_ECONNECT;
    v->udp.data = v;
    v->udp_bound = 1; /* initialised: must be closed */
    int rc;
    if (v->server.ss_family == AF_INET6) {
      uv_ip6_addr("::", 0, &a6);
      rc = uv_udp_bind(&v->udp, (const struct sockaddr *)&a6, 0);
    } else {
      uv_ip4_addr("0.0.0.0", 0, &a4);
      rc = uv_udp_bind(&v->udp, (const struct sockaddr *)&a4, 0);
    }
    if (rc == 0) rc = uv_udp_recv_start(&v->udp, alloc_cb, recv_cb);
    if (rc < 0) {
      KMK_WARN(TAG, "UDP: %s", uv_strerror(rc));
      return KMK_NET_ECONNECT;
    }
  }
  v->disc_tries = 0;
  dv_disc_send(v);
  return 0;
}

/* ---- send --------------------------------------------------------------------------------- */

static void send_speaking(kmk_dvoice *v, int on) {
  char buf[128];
  kmk_dvoice_msg_speaking(buf, sizeof buf, on, v->ssrc);
  dv_send_json(v, buf);
  v->speaking = on;
}

static int send_frame(kmk_dvoice *v, const uint8_t *opus, size_t len) {
  static uint8_t pkt[KMK_RTP_MAX_PACKET], enc[KMK_RTP_MAX_PACKET];
  if (v->dave && v->dave_version > 0) {
    size_t ol = 0;
    if (kmk_dave_session_encrypt(v->dave, opus, len, enc, sizeof enc, &ol) < 0) return -1;
    opus = enc;
    len = ol;
  }
  int n = kmk_rtp_seal((kmk_rtp_mode)v->mode, v->key, v->tx_seq, v->tx_ts, v->ssrc, v->tx_nonce,
                       opus, len, pkt, sizeof pkt);
  v->tx_seq++;
  v->tx_ts += 960;
  v->tx_nonce++;
  if (n < 0) return -1;
  uv_buf_t b = uv_buf_init((char *)pkt, (unsigned)n);
  if (uv_udp_try_send(&v->udp, &b, 1, (const struct sockaddr *)&v->server) < 0) return -1;
  v->st.tx_packets++;
  return 0;
}

/* One 20 ms slot of output. */
static void send_slot(kmk_dvoice *v) {
  const kmk_out_frame *f = v->agent ? kmk_agent_pull_frame(v->agent) : NULL;
  int can = v->state == KMK_DVOICE_READY && v->have_key && !v->mute && v->conn;
  if (f && !can) {
    v->st.tx_dropped++;
    if (v->speaking && v->conn) send_speaking(v, 0);
    v->speaking = 0;
    return;
  }
  if (f) {
    if (!v->speaking) {
      send_speaking(v, 1);
      v->silence_sent = 0;
    }
    if (send_frame(v, f->data, (size_t)f->len) < 0) v->st.tx_dropped++;
    v->silence_sent = f->silence ? v->silence_sent + 1 : 0;
  } else if (v->speaking && can) {
    /* the reply ended or was cut (barge-in): finish with silence frames */
    if (v->silence_sent < DV_SILENCE_TAIL) {
      send_frame(v, SILENCE, sizeof SILENCE);
      v->silence_sent++;
    }
  }
  if (v->speaking && v->silence_sent >= DV_SILENCE_TAIL) send_speaking(v, 0);
}

static void tick(kmk_pacer_uv *pu, uint64_t due, void *ud) {
  kmk_dvoice *v = ud;
  (void)pu;
  if (v->closing) return;
  uint64_t now = dv_ms();
  double now_s = dv_now_s(v);
  for (int i = 0; i < DV_MAX_USERS; i++) {
    dv_user *u = &v->users[i];
    if (!u->used) continue;
    drain(v, u, now);
    silence_fill(v, u, now_s);
  }
  /* drop pending packets older than 1 s (no SPEAKING came) */
  while (v->pend_count && (v->pending[v->pend_head].len == 0 ||
                           now > v->pending[v->pend_head].t_ms + 1000)) {
    v->pend_head = (v->pend_head + 1) % DV_PENDING;
    v->pend_count--;
  }
  for (uint64_t k = 0; k < due && !v->closing; k++) send_slot(v);
  /* UDP keep-alive every 5 s (keeps NAT mappings open while nobody talks): 8 bytes, a counter */
  if (v->have_key && v->pacer->pacer.next % 250 == 0) {
    uint8_t ka[8];
    uint64_t c = ++v->keepalive;
    for (int i = 0; i < 8; i++) ka[i] = (uint8_t)(c >> (8 * i));
    uv_buf_t b = uv_buf_init((char *)ka, sizeof ka);
    uv_udp_try_send(&v->udp, &b, 1, (const struct sockaddr *)&v->server);
  }
}

void dv_media_ready(kmk_dvoice *v) {
  if (v->pacer_on) return;
  if (kmk_pacer_uv_start(v->loop, v->pacer, tick, v) == 0) v->pacer_on = 1;
}

static void pacer_closed(kmk_pacer_uv *pu, void *ud) {
  (void)pu;
  dv_handle_done(ud);
}

void dv_media_close(kmk_dvoice *v) {
  for (int i = 0; i < DV_MAX_USERS; i++)
    if (v->users[i].used) user_drop(v, &v->users[i]);
  if (v->udp_bound) {
    v->open_handles++;
    uv_udp_recv_stop(&v->udp);
    uv_close((uv_handle_t *)&v->udp, dv_handle_closed);
  }
  if (v->pacer_on) {
    v->open_handles++;
    kmk_pacer_uv_stop(v->pacer, pacer_closed);
  }
}
