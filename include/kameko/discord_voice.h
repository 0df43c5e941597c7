/* discord_voice.h - one Discord voice connection: voice gateway v8 (WebSocket), UDP (IP discovery,
 * RTP with transport encryption), DAVE routing, per-SSRC receive into the agent, paced send of the
 * agent's voice. Created by the Discord controller (discord.c) once both VOICE_STATE_UPDATE and
 * VOICE_SERVER_UPDATE have arrived; the controller owns the object. Loop thread only.
 *
 * The voice side creates one agent speaker per Discord user (named by user_name()), removes it on
 * CLIENT_DISCONNECT / close, and pulls kmk_agent_pull_frame() on its 20 ms pacer.
 */
#ifndef KAMEKO_DISCORD_VOICE_H
#define KAMEKO_DISCORD_VOICE_H

#include <stdint.h>
#include <uv.h>

#include "kameko/agent.h"

typedef struct kmk_dvoice kmk_dvoice;

typedef enum {
  KMK_DVOICE_CONNECTING, /* WebSocket / identify / IP discovery / select protocol */
  KMK_DVOICE_READY,      /* session description received: audio flows both ways */
  KMK_DVOICE_RESUMING,   /* dropped; resuming with backoff */
  KMK_DVOICE_CLOSED      /* gave up or closed: see close_code / why; the controller decides */
} kmk_dvoice_state;

typedef struct {
  uv_loop_t *loop;
  kmk_agent *agent;
  const char *endpoint;   /* "host[:port]" from VOICE_SERVER_UPDATE (no scheme) */
  int plain_ws;           /* 1 = ws:// instead of wss:// (local peers; set when the gateway URL is ws://) */
  const char *guild_id;   /* = server_id */
  const char *channel_id;
  const char *user_id;    /* the bot's user id */
  const char *session_id; /* from our VOICE_STATE_UPDATE */
  const char *token;      /* voice token from VOICE_SERVER_UPDATE (a secret: never logged) */
  int max_dave_version;   /* 1 = DAVE (the default Discord requires), 0 = transport encryption only */
  /* display name for a user id (NULL or "" = the id is used); called when a speaker is created */
  const char *(*user_name)(void *ud, const char *user_id);
  /* state changes, and each retry while CONNECTING / RESUMING (why = the reason); close_code is
     the voice gateway close code (0 when none) */
  void (*on_state)(void *ud, kmk_dvoice_state st, int close_code, const char *why);
  void *ud;
  double (*now)(void *ud); /* timeline clock, seconds (the agent's clock) */
  void *now_ud;
  /* optional: a WebSocket client to share (borrowed; must outlive the connection). NULL = the
     connection makes its own. The controller shares its gateway's: libwebsockets 4.1 leaks a client
     SSL_CTX (~700 KB with the system CAs) when two contexts live at once. */
  struct kmk_ws *ws;
} kmk_dvoice_opts;

/* Starts connecting. Copies every string. NULL with err on bad options. */
kmk_dvoice *kmk_dvoice_new(const kmk_dvoice_opts *o, char *err, size_t errlen);
/* A new VOICE_SERVER_UPDATE (voice server moved): reconnect to the new endpoint with the new token. */
int kmk_dvoice_server_update(kmk_dvoice *v, const char *endpoint, const char *token);
/* 1 = send nothing (the agent's frames are pulled and dropped; speaking is 0). */
void kmk_dvoice_set_mute(kmk_dvoice *v, int mute);
kmk_dvoice_state kmk_dvoice_get_state(const kmk_dvoice *v);

/* Counters of one connection (logged at close). Malformed input is dropped and counted here. */
typedef struct {
  uint64_t rx_packets;      /* RTP audio packets decrypted */
  uint64_t rx_rtcp;         /* RTCP packets skipped */
  uint64_t rx_malformed;    /* too short, bad version, bad padding/extension, bad payload type */
  uint64_t rx_auth_failed;  /* transport decryption failed */
  uint64_t rx_dave_failed;  /* DAVE decryption failed (concealed) */
  uint64_t rx_unmapped;     /* packets from an SSRC no SPEAKING named (buffered or dropped) */
  uint64_t rx_late;         /* late or duplicate packets dropped by the jitter buffers */
  uint64_t rx_lost;         /* packets declared lost (concealed by PLC or skipped) */
  uint64_t rx_fec;          /* lost packets recovered from the next packet's Opus in-band FEC */
  uint64_t rx_plc;          /* lost packets concealed by Opus PLC (no successor to recover from) */
  uint64_t rx_reordered;    /* packets put back in order */
  uint64_t tx_packets;      /* RTP packets sent (voice + silence frames) */
  uint64_t tx_dropped;      /* agent frames pulled but not sent (muted, not ready, send failed) */
  uint64_t ws_bad;          /* voice gateway messages that did not parse */
  uint64_t resumes;         /* resume attempts */
  uint64_t hb_missed;       /* heartbeats without an ACK */
} kmk_dvoice_stats;
void kmk_dvoice_get_stats(const kmk_dvoice *v, kmk_dvoice_stats *out);
/* The 32-bit SSRC the voice server gave us (0 before READY). */
uint32_t kmk_dvoice_ssrc(const kmk_dvoice *v);
/* Closes the WebSocket and UDP handles, leaves every speaker; closed(ud) runs when all handles are
 * closed, after which the object is freed. Safe with NULL (closed is then not called). */
void kmk_dvoice_close(kmk_dvoice *v, void (*closed)(void *ud), void *ud);

#endif
