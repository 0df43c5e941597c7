/* dvoice_msg.h - Discord voice gateway v8 messages (internal to the voice transport): a pure
 * parser for the server's JSON text frames and binary (DAVE) frames, and builders for the
 * client's JSON. No I/O; any thread. Fuzzed by tests/fuzz/fuzz_dvoice_msg.c.
 */
#ifndef KAMEKO_DVOICE_MSG_H
#define KAMEKO_DVOICE_MSG_H

#include <stddef.h>
#include <stdint.h>

enum {
  KMK_DVOP_IDENTIFY = 0, KMK_DVOP_SELECT = 1, KMK_DVOP_READY = 2, KMK_DVOP_HEARTBEAT = 3,
  KMK_DVOP_SESSION = 4, KMK_DVOP_SPEAKING = 5, KMK_DVOP_HEARTBEAT_ACK = 6, KMK_DVOP_RESUME = 7,
  KMK_DVOP_HELLO = 8, KMK_DVOP_RESUMED = 9, KMK_DVOP_CLIENTS_CONNECT = 11,
  KMK_DVOP_CLIENT_DISCONNECT = 13, KMK_DVOP_DAVE_PREPARE_TRANSITION = 21,
  KMK_DVOP_DAVE_EXECUTE_TRANSITION = 22, KMK_DVOP_DAVE_READY_FOR_TRANSITION = 23,
  KMK_DVOP_DAVE_PREPARE_EPOCH = 24, KMK_DVOP_DAVE_INVALID = 31,
};

enum { KMK_DVMSG_EJSON = -1, KMK_DVMSG_EFIELD = -2, KMK_DVMSG_ESHORT = -3 };

#define KMK_DVMSG_MAX_IDS 32
#define KMK_DVMSG_ID 24 /* a snowflake fits in 20 digits */

typedef struct {
  int op;
  int64_t seq;               /* "seq" of the message, -1 when absent */
  /* op 2 READY */
  uint32_t ssrc;
  char ip[64];
  int port;
  unsigned modes;            /* bit (1 << kmk_rtp_mode) for each supported mode offered */
  /* op 8 HELLO */
  double heartbeat_interval; /* ms */
  /* op 6 ACK: the echoed nonce */
  int64_t nonce;
  /* op 4 SESSION DESCRIPTION */
  uint8_t secret_key[32];
  int mode;                  /* kmk_rtp_mode */
  int dave_version;
  /* op 5 SPEAKING, op 13 DISCONNECT */
  char user_id[KMK_DVMSG_ID];
  int speaking;
  /* op 11 CLIENTS_CONNECT */
  char user_ids[KMK_DVMSG_MAX_IDS][KMK_DVMSG_ID];
  int n_ids;
  /* ops 21, 22, 24 */
  int transition_id;
  int protocol_version;
  uint64_t epoch;
} kmk_dvoice_msg;

/* Parses one text frame. 0, or KMK_DVMSG_EJSON (not a JSON object with a numeric op) or
 * KMK_DVMSG_EFIELD (a known op with a missing or invalid field). Unknown ops parse (op set). */
int kmk_dvoice_msg_parse(const char *text, size_t len, kmk_dvoice_msg *m);
/* Binary frame from the server: u16 seq | u8 op | payload. 0 or KMK_DVMSG_ESHORT. */
int kmk_dvoice_bin_parse(const uint8_t *p, size_t n, uint16_t *seq, uint8_t *op,
                         const uint8_t **payload, size_t *len);

/* Builders: write NUL-terminated JSON into out; return its length or -1 when it does not fit. */
int kmk_dvoice_msg_identify(char *out, size_t cap, const char *server_id, const char *user_id,
                            const char *session_id, const char *token, int max_dave);
int kmk_dvoice_msg_resume(char *out, size_t cap, const char *server_id, const char *session_id,
                          const char *token, int64_t seq_ack);
int kmk_dvoice_msg_heartbeat(char *out, size_t cap, int64_t nonce, int64_t seq_ack);
int kmk_dvoice_msg_select(char *out, size_t cap, const char *address, int port, int mode);
int kmk_dvoice_msg_speaking(char *out, size_t cap, int speaking, uint32_t ssrc);

#endif
