/* dvoice_int.h - the voice connection's private state, shared by dvoice.c (voice gateway
 * WebSocket, heartbeats, resume, DAVE routing, lifecycle) and dvoice_media.c (UDP: IP discovery,
 * RTP receive into per-user jitter buffers and agent speakers, paced send). Loop thread only.
 */
#ifndef KAMEKO_DVOICE_INT_H
#define KAMEKO_DVOICE_INT_H

#include <stdint.h>
#include <uv.h>

#include "kameko/agent.h"
#include "kameko/dave.h"
#include "kameko/discord_voice.h"
#include "kameko/jitter.h"
#include "kameko/net.h"
#include "kameko/pacer.h"
#include "kameko/rtp.h"
#include "transport/dvoice_msg.h"

#define DV_MAX_USERS 32       /* users tracked per connection (speakers) */
#define DV_PENDING 50         /* packets (1 s) buffered for SSRCs no SPEAKING named yet */
#define DV_MAX_RESUMES 5      /* resume / reconnect attempts before giving up */
#define DV_DISC_TRIES 5       /* IP discovery requests (1 s apart) */
#define DV_SILENCE_TAIL 5     /* silence frames after the last voice frame */

typedef struct {
  int used;
  char id[KMK_DVMSG_ID];
  uint64_t id64;
  uint32_t ssrc;
  int has_ssrc;
  kmk_speaker *sp;
  double t0;      /* timeline time the speaker joined */
  double fed_s;   /* seconds of audio handed to the agent since t0 */
  kmk_jitter jb;
} dv_user;

typedef struct {
  uint32_t ssrc;
  uint16_t seq;
  uint16_t len;
  uint64_t t_ms;
  uint8_t data[KMK_JITTER_MAX_PKT];
} dv_pending;

struct kmk_dvoice {
  uv_loop_t *loop;
  kmk_agent *agent;
  char *endpoint, *guild_id, *channel_id, *user_id, *session_id, *token;
  int plain_ws, max_dave;
  const char *(*user_name)(void *ud, const char *user_id);
  void (*on_state)(void *ud, kmk_dvoice_state st, int close_code, const char *why);
  void *ud;
  double (*now)(void *ud);
  void *now_ud;

  kmk_dvoice_state state;
  kmk_ws *ws;
  int own_ws; /* ws was created here (else borrowed from the controller) */
  kmk_ws_conn *conn;
  int resuming;        /* the current connection resumes (op 7) instead of identifying */
  int attempts;        /* consecutive failed (re)connects */
  int64_t seq_ack;     /* last server sequence number seen, -1 none */
  double hb_interval;  /* ms */
  int64_t hb_nonce;    /* nonce of the heartbeat awaiting ACK, 0 none */
  int hb_unacked;
  uv_timer_t hb_timer;
  uv_timer_t aux_timer; /* reconnect backoff, IP discovery retries */
  int aux_mode;         /* 1 = reconnect, 2 = discovery */
  int disc_tries;

  /* UDP */
  uv_udp_t udp;
  int udp_bound;
  struct sockaddr_storage server;
  uint32_t ssrc;
  unsigned modes;
  int mode;
  uint8_t key[32];
  int have_key;        /* session description received */
  int dave_version;
  int dave_pending_version; /* from op 21 / op 24, applied at op 22; -1 none */
  uint64_t keepalive;       /* UDP keep-alive counter */
  kmk_dave_session *dave;

  /* receive */
  dv_user users[DV_MAX_USERS];
  dv_pending pending[DV_PENDING];
  int pend_head, pend_count;

  /* send */
  kmk_pacer_uv *pacer; /* heap: must outlive us until its close callback */
  int pacer_on;
  uint16_t tx_seq;
  uint32_t tx_ts;
  uint32_t tx_nonce;
  int speaking;
  int silence_sent;    /* silence frames sent since the last voice frame */
  int mute;

  kmk_dvoice_stats st;

  /* shutdown */
  int closing;
  int open_handles;
  void (*closed)(void *ud);
  void *closed_ud;
};

/* dvoice.c */
double dv_now_s(kmk_dvoice *v);
uint64_t dv_ms(void);
int dv_send_json(kmk_dvoice *v, const char *json);
void dv_set_state(kmk_dvoice *v, kmk_dvoice_state st, int code, const char *why);
void dv_dave_drain(kmk_dvoice *v);
void dv_aux_cb(uv_timer_t *t);      /* reconnect backoff / discovery retry */
void dv_handle_done(kmk_dvoice *v); /* one handle closed; frees after the last */

/* dvoice_media.c */
int dv_udp_start(kmk_dvoice *v, const char *ip, int port); /* bind once, send discovery */
void dv_disc_send(kmk_dvoice *v);
void dv_media_ready(kmk_dvoice *v);   /* session description in: start the pacer */
dv_user *dv_user_get(kmk_dvoice *v, const char *id, int create);
void dv_user_map(kmk_dvoice *v, const char *id, uint32_t ssrc);
void dv_user_leave(kmk_dvoice *v, const char *id);
void dv_users_clear_ssrc(kmk_dvoice *v);
void dv_media_close(kmk_dvoice *v);   /* leave speakers, close udp + pacer (counts handles) */
void dv_handle_closed(uv_handle_t *h);

#endif
