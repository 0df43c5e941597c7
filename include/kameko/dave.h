/* dave.h - DAVE (Discord audio/video end-to-end encryption, protocol version 1) media layer:
 * per-sender keys from the MLS exporter, the per-sender hash ratchet, and Opus frame encryption
 * and decryption with an 8-byte truncated AES-128-GCM tag, ULEB128 nonce, supplemental size and
 * the 0xFAFA marker. Also the displayable voice privacy code.
 *
 * Threading: an encryptor or decryptor belongs to one thread at a time (the voice loop); the
 * functions keep no global state. Time is passed in by the caller (now_ms, any monotonic clock) so
 * tests are deterministic.
 * Ownership: structs are caller-allocated (stack or heap) and hold no heap memory; *_wipe
 * clears their secrets and must be called when done. Buffers passed in are borrowed.
 * Errors are negative ints (KMK_DAVE_ERR_*); 0 is success.
 */
#ifndef KAMEKO_DAVE_H
#define KAMEKO_DAVE_H

#include <stddef.h>
#include <stdint.h>

#include "kameko/mls_group.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  KMK_DAVE_OK = 0,
  KMK_DAVE_ERR_DECODE = -1,        /* malformed encrypted frame */
  KMK_DAVE_ERR_CRYPTO = -3,        /* OpenSSL failure */
  KMK_DAVE_ERR_VERIFY = -5,        /* tag did not verify with any known key */
  KMK_DAVE_ERR_ARG = -7,           /* bad argument, or output buffer too small */
  KMK_DAVE_ERR_REPLAY = -20,       /* nonce already seen or older than the missing window */
  KMK_DAVE_ERR_NOT_ENCRYPTED = -21,/* no 0xFAFA marker: plaintext frame (caller's policy) */
  KMK_DAVE_ERR_NO_KEY = -22,       /* no key: generation expired, too far ahead, or none set */
};

#define KMK_DAVE_KEY_LEN 16
#define KMK_DAVE_TAG_LEN 8
#define KMK_DAVE_BASE_LEN 16                 /* exporter output per sender */
#define KMK_DAVE_MAX_OVERHEAD (8 + 5 + 1 + 2) /* tag + ULEB128(u32) + size byte + marker */
#define KMK_DAVE_MAX_GENERATION_GAP 250      /* generations a receiver will ratchet ahead */
#define KMK_DAVE_MAX_MISSING_NONCES 1000     /* bounded missing-nonce window per ratchet */
#define KMK_DAVE_KEY_CACHE 8                 /* generation keys retained per ratchet */
#define KMK_DAVE_GEN_EXPIRY_MS 10000         /* an old generation's key lives 10 s */
#define KMK_DAVE_TRANSITION_EXPIRY_MS 10000  /* an old epoch's ratchet lives 10 s */
#define KMK_DAVE_MAX_RATCHETS 4              /* ratchets (epochs) a decryptor keeps at once */

const char *kmk_dave_strerror(int err);

/* Per-sender base secret: MLS-Exporter("Discord Secure Frames v0", user id u64 little-endian,
 * 16) from the epoch's exporter secret (32 bytes). */
int kmk_dave_sender_base_secret(const uint8_t exporter_secret[32], uint64_t user_id,
                                uint8_t out[KMK_DAVE_BASE_LEN]);

/* ---------- hash ratchet (one per sender per epoch) ---------- */
typedef struct kmk_dave_key_slot {
  uint32_t generation;
  int used;
  uint64_t expires_ms; /* 0 = no expiry (the newest generation) */
  uint8_t key[KMK_DAVE_KEY_LEN];
} kmk_dave_key_slot;

typedef struct kmk_dave_ratchet {
  uint8_t secret[32]; /* chain secret of generation next_gen */
  size_t secret_len;  /* 16 for the base secret, 32 afterwards */
  uint32_t next_gen;
  int valid;
  kmk_dave_key_slot cache[KMK_DAVE_KEY_CACHE];
} kmk_dave_ratchet;

int kmk_dave_ratchet_init(kmk_dave_ratchet *r, const uint8_t *base, size_t base_len);
/* key for a generation: key = ExpandWithLabel(s_g, "key", u32be(g), 16); s_{g+1} =
 * ExpandWithLabel(s_g, "secret", u32be(g), 32). Generations already ratcheted past and no longer
 * cached give KMK_DAVE_ERR_NO_KEY. */
int kmk_dave_ratchet_get(kmk_dave_ratchet *r, uint32_t generation, uint8_t key[KMK_DAVE_KEY_LEN]);
void kmk_dave_ratchet_forget_below(kmk_dave_ratchet *r, uint32_t generation);
void kmk_dave_ratchet_wipe(kmk_dave_ratchet *r);

/* ---------- sender ---------- */
typedef struct kmk_dave_encryptor {
  kmk_dave_ratchet ratchet;
  uint64_t counter; /* frames sent with this ratchet; truncated nonce = low 32 bits */
  uint32_t gen;
  int have_key;
  uint8_t key[KMK_DAVE_KEY_LEN];
} kmk_dave_encryptor;

void kmk_dave_encryptor_init(kmk_dave_encryptor *e);
/* New epoch: our own base secret. Resets the nonce counter. */
int kmk_dave_encryptor_set_key(kmk_dave_encryptor *e, const uint8_t *base, size_t base_len);
/* Encrypts one Opus frame. The silence frame F8 FF FE is copied through unencrypted. out_cap must
 * be at least len + KMK_DAVE_MAX_OVERHEAD. */
int kmk_dave_encrypt_opus(kmk_dave_encryptor *e, const uint8_t *frame, size_t len, uint8_t *out,
                          size_t out_cap, size_t *out_len);
/* Same with an explicit truncated nonce (tests; frames must never reuse a nonce). */
int kmk_dave_encrypt_opus_nonce(kmk_dave_encryptor *e, uint32_t nonce, const uint8_t *frame,
                                size_t len, uint8_t *out, size_t out_cap, size_t *out_len);
void kmk_dave_encryptor_wipe(kmk_dave_encryptor *e);

/* ---------- receiver (one per remote sender) ---------- */
typedef struct kmk_dave_rx_ratchet {
  kmk_dave_ratchet ratchet;
  int used;
  uint64_t seq;        /* order of installation; the highest is tried first */
  uint64_t expires_ms; /* 0 = current epoch */
  int have_newest;
  uint64_t newest_nonce; /* "big" nonce: (wrapped generation << 24) | low 24 bits */
  uint32_t oldest_gen, newest_gen;
  uint64_t missing[KMK_DAVE_MAX_MISSING_NONCES]; /* missing big nonces, ascending */
  size_t missing_count;
} kmk_dave_rx_ratchet;

typedef struct kmk_dave_decryptor {
  kmk_dave_rx_ratchet slots[KMK_DAVE_MAX_RATCHETS];
  uint64_t next_seq;
  uint32_t failures; /* consecutive decrypt failures (discord.js re-initialises after 36) */
} kmk_dave_decryptor;

void kmk_dave_decryptor_init(kmk_dave_decryptor *d);
/* New epoch: the sender's base secret. Older ratchets expire TRANSITION_EXPIRY_MS after now_ms;
 * when all slots are in use the oldest is dropped. */
int kmk_dave_decryptor_set_key(kmk_dave_decryptor *d, const uint8_t *base, size_t base_len,
                               uint64_t now_ms);
/* Decrypts one frame into out (out_cap >= len suffices). Silence F8 FF FE is copied through;
 * a frame without the marker gives KMK_DAVE_ERR_NOT_ENCRYPTED and leaves out untouched. */
int kmk_dave_decrypt_opus(kmk_dave_decryptor *d, const uint8_t *frame, size_t len, uint8_t *out,
                          size_t out_cap, size_t *out_len, uint64_t now_ms);
void kmk_dave_decryptor_wipe(kmk_dave_decryptor *d);

/* ---------- frame syntax helpers (exposed for tests and fuzzing) ---------- */
size_t kmk_dave_uleb128_write(uint64_t v, uint8_t out[10]);
/* Reads at p[0..n); returns bytes used or 0 on malformed / overflowing input. */
size_t kmk_dave_uleb128_read(const uint8_t *p, size_t n, uint64_t *v);

/* Parsed trailer of an encrypted frame. Ranges are unencrypted (offset, size) spans of the
 * body, in order and non-overlapping. */
#define KMK_DAVE_MAX_RANGES 16
typedef struct kmk_dave_frame_info {
  size_t body_len; /* bytes before the tag */
  const uint8_t *tag;
  uint32_t nonce;
  size_t n_ranges;
  uint64_t range_off[KMK_DAVE_MAX_RANGES], range_len[KMK_DAVE_MAX_RANGES];
} kmk_dave_frame_info;

int kmk_dave_frame_parse(const uint8_t *frame, size_t len, kmk_dave_frame_info *info);

/* ---------- voice privacy code ---------- */
/* Discord's displayable code: for every group of `group` digits take `group` bytes of data as a
 * big-endian integer modulo 10^group, zero-padded. The voice privacy code is 30 digits in groups
 * of 5 from the epoch authenticator. out must hold digits + 1 bytes. */
int kmk_dave_displayable_code(const uint8_t *data, size_t len, size_t digits, size_t group,
                              char *out);

/* ---------- DAVE's use of MLS (dave_mls.c) ---------- */
/* KeyPackage for DAVE: basic credential = user id as u64 big-endian, suite 2 capabilities. */
int kmk_dave_key_package_create(uint64_t user_id, kmk_mls_key_package_keys *keys,
                                kmk_mls_bytes *out);
/* User id of a leaf (basic credential of exactly 8 bytes), or KMK_DAVE_ERR_DECODE. */
int kmk_dave_leaf_user_id(const kmk_mls_leaf_node *leaf, uint64_t *user_id);
/* Leaf index of a user in the group's tree, or KMK_DAVE_ERR_NO_KEY when absent. */
int kmk_dave_group_find_user(const kmk_mls_group *g, uint64_t user_id, uint32_t *leaf);
/* The sender's base secret for the group's current epoch. */
int kmk_dave_group_sender_secret(const kmk_mls_group *g, uint64_t user_id,
                                 uint8_t out[KMK_DAVE_BASE_LEN]);
/* 30-digit voice privacy code from the epoch authenticator (groups of 5). out: 31 bytes. */
int kmk_dave_voice_privacy_code(const kmk_mls_group *g, char out[31]);
/* Op 25 payload: an ExternalSender (P-256 key, basic credential). Views point into p. */
int kmk_dave_external_sender_parse(const uint8_t *p, size_t n, kmk_mls_external_sender *es);
/* DAVE's checks on a joined group: group id = channel id (u64 big-endian), the GroupContext's
 * external_senders extension holds exactly the gateway's sender `es`, every leaf has a basic
 * credential of 8 bytes and DAVE's capabilities. */
int kmk_dave_group_check(const kmk_mls_group *g, uint64_t channel_id,
                         const kmk_mls_external_sender *es);

/* ---------- voice gateway binary frames (dave_gateway.c) ---------- */
enum {
  KMK_DAVE_OP_PREPARE_TRANSITION = 21, KMK_DAVE_OP_EXECUTE_TRANSITION = 22,
  KMK_DAVE_OP_READY_FOR_TRANSITION = 23, KMK_DAVE_OP_PREPARE_EPOCH = 24,
  KMK_DAVE_OP_EXTERNAL_SENDER = 25, KMK_DAVE_OP_KEY_PACKAGE = 26, KMK_DAVE_OP_PROPOSALS = 27,
  KMK_DAVE_OP_COMMIT_WELCOME = 28, KMK_DAVE_OP_ANNOUNCE_COMMIT = 29, KMK_DAVE_OP_WELCOME = 30,
  KMK_DAVE_OP_INVALID_COMMIT_WELCOME = 31,
};
enum { KMK_DAVE_PROPOSALS_APPEND = 0, KMK_DAVE_PROPOSALS_REVOKE = 1 };

/* A server-to-client binary frame: u16 seq | u8 op | payload. Views point into the input. */
typedef struct kmk_dave_gw_frame {
  uint16_t seq;
  uint8_t op;
  kmk_mls_view payload;
  uint8_t proposals_op;   /* op 27 */
  kmk_mls_view list;      /* op 27: body of MLSMessage proposals<V> or ProposalRef refs<V> */
  uint16_t transition_id; /* ops 29, 30 */
  kmk_mls_view message;   /* op 25 ExternalSender, op 29 commit MLSMessage, op 30 Welcome */
} kmk_dave_gw_frame;

/* Parses and structurally validates a binary frame (ops 25, 27, 29 and 30 are decoded down to
 * their MLS structures; other ops keep only the payload). KMK_DAVE_ERR_DECODE when malformed. */
int kmk_dave_gw_parse(const uint8_t *p, size_t n, kmk_dave_gw_frame *f);
/* Iterate an op-27 list: each whole proposal MLSMessage (append) or each ProposalRef (revoke). */
int kmk_dave_gw_next_proposal(kmk_mls_r *it, kmk_mls_view *msg);
int kmk_dave_gw_next_ref(kmk_mls_r *it, kmk_mls_view *ref);
/* Client frames: op 26 (u8 op | KeyPackage), op 28 (u8 op | commit MLSMessage | [Welcome]). */
int kmk_dave_gw_key_package(kmk_mls_w *w, const uint8_t *kp, size_t kp_len);
int kmk_dave_gw_commit_welcome(kmk_mls_w *w, const uint8_t *commit, size_t commit_len,
                               const uint8_t *welcome, size_t welcome_len);

/* ---------- DAVE session (dave_session.c) ----------
 * One voice connection's DAVE state: our key package, the MLS group (our own pending group until
 * we join or our commit is accepted), stored proposals, the pending commit, transitions, media
 * keys per user, passthrough. Fed with the gateway's frames and events; produces frames to send
 * (an outbox, drained with kmk_dave_session_pop). Owned by the voice loop thread.
 *
 *   op 25 external sender -> new key package (op 26 out) + our pending group
 *   op 24 prepare_epoch(1) -> reset: new key package (op 26 out)
 *   op 27 proposals       -> store/revoke, commit them all (op 28 out)
 *   op 29 commit, op 30 welcome -> next epoch prepared; transition 0 executes at once, otherwise
 *                            op 23 ready out and keys switch on op 22 execute; on failure op 31
 *                            out, then reset
 *   op 21 prepare_transition(version 0) -> passthrough after execute
 *   more than KMK_DAVE_FAILURE_TOLERANCE consecutive frames that do not decrypt, while keyed and
 *   no transition is pending -> op 31 naming the last executed transition (if not 0), then reset;
 *   no second one until a transition executes again (the gateway re-adds us)
 */
#define KMK_DAVE_FAILURE_TOLERANCE 36 /* frames; as discord.js: a few slip past every join */
#define KMK_DAVE_MAX_USERS 64
#define KMK_DAVE_OUTBOX 16

typedef struct kmk_dave_out_frame {
  uint8_t op;
  int json;           /* 1: `data` is JSON text for the gateway's text socket */
  kmk_mls_bytes data; /* binary: op byte + payload, ready to send; caller frees */
} kmk_dave_out_frame;

typedef struct kmk_dave_session kmk_dave_session;

kmk_dave_session *kmk_dave_session_new(uint64_t user_id, uint64_t channel_id);
void kmk_dave_session_free(kmk_dave_session *s);
/* Users the gateway says are in the call (Adds for anyone else are refused). n == 0: no check. */
int kmk_dave_session_set_users(kmk_dave_session *s, const uint64_t *ids, size_t n);
/* A server binary frame (u16 seq | u8 op | payload): ops 25, 27, 29, 30. */
int kmk_dave_session_binary(kmk_dave_session *s, const uint8_t *frame, size_t n, uint64_t now_ms);
int kmk_dave_session_prepare_transition(kmk_dave_session *s, uint16_t transition_id,
                                        int protocol_version);
int kmk_dave_session_execute_transition(kmk_dave_session *s, uint16_t transition_id,
                                        uint64_t now_ms);
int kmk_dave_session_prepare_epoch(kmk_dave_session *s, uint64_t epoch, int protocol_version);
/* Pops the oldest outgoing frame: 1 popped, 0 empty. */
int kmk_dave_session_pop(kmk_dave_session *s, kmk_dave_out_frame *out);
/* Media. Without keys, encrypt gives KMK_DAVE_ERR_NO_KEY; in passthrough both copy frames. */
int kmk_dave_session_encrypt(kmk_dave_session *s, const uint8_t *frame, size_t len, uint8_t *out,
                             size_t cap, size_t *out_len);
int kmk_dave_session_decrypt(kmk_dave_session *s, uint64_t user_id, const uint8_t *frame,
                             size_t len, uint8_t *out, size_t cap, size_t *out_len,
                             uint64_t now_ms);
int kmk_dave_session_ready(const kmk_dave_session *s);       /* media keys installed */
/* How many times a decrypt-failure burst made the session re-initialise (op 31 + op 26 queued). */
unsigned kmk_dave_session_recoveries(const kmk_dave_session *s);
const kmk_mls_group *kmk_dave_session_group(const kmk_dave_session *s); /* NULL before joining */
int kmk_dave_session_privacy_code(const kmk_dave_session *s, char out[31]);

#ifdef __cplusplus
}
#endif
#endif
