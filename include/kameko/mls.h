/* mls.h - the MLS (RFC 9420) subset Kameko needs for DAVE: codec, suite-2 crypto, HPKE, tree
 * math, key schedule, transcript hashes and secret tree.
 *
 * Only ciphersuite 2 (MLS_128_DHKEMP256_AES128GCM_SHA256_P256) is implemented: SHA-256, HMAC,
 * HKDF, AES-128-GCM, ECDSA P-256 with DER signatures, DHKEM(P-256, HKDF-SHA256).
 * Keys on the wire: private keys are 32-byte big-endian scalars, public keys 65-byte uncompressed
 * points (0x04 | X | Y).
 *
 * Errors are negative ints (KMK_MLS_ERR_*); 0 is success. Every function is pure and thread-safe
 * (no global state besides OpenSSL's). Ownership: a function that fills a kmk_mls_bytes gives the
 * caller a heap buffer to release with kmk_mls_bytes_free (which wipes it first). Pointers passed
 * in are borrowed for the duration of the call only.
 */
#ifndef KAMEKO_MLS_H
#define KAMEKO_MLS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  KMK_MLS_OK = 0,
  KMK_MLS_ERR_DECODE = -1,      /* malformed or truncated input */
  KMK_MLS_ERR_NOMEM = -2,       /* allocation failed */
  KMK_MLS_ERR_CRYPTO = -3,      /* OpenSSL failure or bad key */
  KMK_MLS_ERR_INVALID = -4,     /* well-formed but violates a protocol rule */
  KMK_MLS_ERR_VERIFY = -5,      /* signature, MAC or AEAD tag did not verify */
  KMK_MLS_ERR_UNSUPPORTED = -6, /* other ciphersuite, version or feature */
  KMK_MLS_ERR_ARG = -7,         /* caller passed an impossible argument */
};

/* Sizes for ciphersuite 2. */
#define KMK_MLS_SUITE 2
#define KMK_MLS_NH 32     /* hash / secret length */
#define KMK_MLS_NK 16     /* AEAD key length */
#define KMK_MLS_NN 12     /* AEAD nonce length */
#define KMK_MLS_NT 16     /* AEAD tag length */
#define KMK_MLS_PRIV 32   /* P-256 private scalar */
#define KMK_MLS_PUB 65    /* P-256 uncompressed point */
#define KMK_MLS_MAX_VEC (1u << 24) /* largest vector we accept (16 MiB) */

const char *kmk_mls_strerror(int err);

/* ---------- owned byte strings ---------- */
typedef struct kmk_mls_bytes {
  uint8_t *data; /* owned, NULL when len == 0 may hold */
  size_t len;
} kmk_mls_bytes;

int kmk_mls_bytes_set(kmk_mls_bytes *b, const void *data, size_t len); /* copies */
void kmk_mls_bytes_free(kmk_mls_bytes *b);                             /* wipes, frees, zeroes */
int kmk_mls_bytes_eq(const kmk_mls_bytes *a, const kmk_mls_bytes *b);

/* ---------- TLS presentation language (RFC 9420 section 2.1) ---------- */

/* Writer: a growable buffer. Errors are sticky: after the first failure every call returns it and
 * kmk_mls_w_finish reports it. The buffer is owned by the writer until finish hands it over. */
typedef struct kmk_mls_w {
  uint8_t *buf;
  size_t len, cap;
  int err;
} kmk_mls_w;

void kmk_mls_w_init(kmk_mls_w *w);
void kmk_mls_w_free(kmk_mls_w *w); /* wipes */
int kmk_mls_w_u8(kmk_mls_w *w, uint8_t v);
int kmk_mls_w_u16(kmk_mls_w *w, uint16_t v);
int kmk_mls_w_u32(kmk_mls_w *w, uint32_t v);
int kmk_mls_w_u64(kmk_mls_w *w, uint64_t v);
int kmk_mls_w_varint(kmk_mls_w *w, uint64_t v); /* v < 2^30, minimal encoding */
int kmk_mls_w_raw(kmk_mls_w *w, const void *p, size_t n);
int kmk_mls_w_vec(kmk_mls_w *w, const void *p, size_t n); /* varint length + bytes */
/* Nested vectors: begin returns a mark, end inserts the varint length of what was written since. */
size_t kmk_mls_w_begin(kmk_mls_w *w);
int kmk_mls_w_end(kmk_mls_w *w, size_t mark);
/* Moves the buffer into *out (caller owns) and resets the writer; returns the sticky error. */
int kmk_mls_w_finish(kmk_mls_w *w, kmk_mls_bytes *out);

/* Reader: a borrowed view. Every read is bounds-checked; on failure nothing is consumed. */
typedef struct kmk_mls_r {
  const uint8_t *p;
  size_t len, off;
} kmk_mls_r;

void kmk_mls_r_init(kmk_mls_r *r, const void *p, size_t len);
size_t kmk_mls_r_left(const kmk_mls_r *r);
int kmk_mls_r_u8(kmk_mls_r *r, uint8_t *v);
int kmk_mls_r_u16(kmk_mls_r *r, uint16_t *v);
int kmk_mls_r_u32(kmk_mls_r *r, uint32_t *v);
int kmk_mls_r_u64(kmk_mls_r *r, uint64_t *v);
int kmk_mls_r_varint(kmk_mls_r *r, uint64_t *v); /* rejects 0b11 prefix and non-minimal forms */
int kmk_mls_r_raw(kmk_mls_r *r, size_t n, const uint8_t **p);
int kmk_mls_r_vec(kmk_mls_r *r, kmk_mls_r *sub);            /* sub views the vector body */
int kmk_mls_r_vec_copy(kmk_mls_r *r, kmk_mls_bytes *out);  /* copies the vector body */
int kmk_mls_r_vec_fixed(kmk_mls_r *r, uint8_t *out, size_t n); /* body must be exactly n bytes */
int kmk_mls_r_done(const kmk_mls_r *r); /* 0 when fully consumed, else KMK_MLS_ERR_DECODE */

/* ---------- primitives (suite 2) ---------- */
int kmk_mls_hash(const void *p, size_t n, uint8_t out[KMK_MLS_NH]);
int kmk_mls_mac(const uint8_t *key, size_t klen, const void *p, size_t n, uint8_t out[KMK_MLS_NH]);
int kmk_mls_hkdf_extract(const uint8_t *salt, size_t slen, const uint8_t *ikm, size_t ilen,
                         uint8_t prk[KMK_MLS_NH]);
/* Any prk length is accepted (DAVE expands 16-byte base secrets); olen <= 255 * Nh. */
int kmk_mls_hkdf_expand(const uint8_t *prk, size_t plen, const uint8_t *info, size_t ilen,
                        uint8_t *out, size_t olen);
/* AES-128-GCM. seal writes pt_len + 16 bytes; open reads ct_len >= 16 and writes ct_len - 16. */
int kmk_mls_aead_seal(const uint8_t key[KMK_MLS_NK], const uint8_t nonce[KMK_MLS_NN],
                      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                      uint8_t *ct);
int kmk_mls_aead_open(const uint8_t key[KMK_MLS_NK], const uint8_t nonce[KMK_MLS_NN],
                      const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
                      uint8_t *pt);

/* P-256 keys. keygen draws a fresh scalar; pub_from_priv derives the public point. */
int kmk_mls_p256_keygen(uint8_t priv[KMK_MLS_PRIV], uint8_t pub[KMK_MLS_PUB]);
int kmk_mls_p256_pub_from_priv(const uint8_t priv[KMK_MLS_PRIV], uint8_t pub[KMK_MLS_PUB]);
int kmk_mls_p256_check_pub(const uint8_t *pub, size_t len); /* 0 if a valid curve point */
/* ECDSA-SHA256, DER signature (at most 72 bytes). *sig_len in: capacity, out: length. */
int kmk_mls_sign(const uint8_t priv[KMK_MLS_PRIV], const void *msg, size_t n, uint8_t *sig,
                 size_t *sig_len);
int kmk_mls_verify(const uint8_t *pub, size_t pub_len, const void *msg, size_t n,
                   const uint8_t *sig, size_t sig_len);
int kmk_mls_ecdh(const uint8_t priv[KMK_MLS_PRIV], const uint8_t *pub, size_t pub_len,
                 uint8_t shared[32]);
#define KMK_MLS_SIG_MAX 72

/* ---------- labelled operations (RFC 9420 section 5) ---------- */
/* ExpandWithLabel(secret, "MLS 1.0 " + label, context, len). */
int kmk_mls_expand_with_label(const uint8_t *secret, size_t slen, const char *label,
                              const uint8_t *ctx, size_t clen, uint8_t *out, size_t olen);
int kmk_mls_derive_secret(const uint8_t *secret, size_t slen, const char *label,
                          uint8_t out[KMK_MLS_NH]);
int kmk_mls_derive_tree_secret(const uint8_t *secret, size_t slen, const char *label,
                               uint32_t generation, uint8_t *out, size_t olen);
/* RefHash(label, value): the label is used verbatim (e.g. "MLS 1.0 KeyPackage Reference"). */
int kmk_mls_ref_hash(const char *label, const void *value, size_t n, uint8_t out[KMK_MLS_NH]);
int kmk_mls_sign_with_label(const uint8_t priv[KMK_MLS_PRIV], const char *label,
                            const void *content, size_t n, uint8_t *sig, size_t *sig_len);
int kmk_mls_verify_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                              const void *content, size_t n, const uint8_t *sig, size_t sig_len);

/* ---------- HPKE base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM ---------- */
/* Single-shot Seal/Open (sequence number 0). kem_output is 65 bytes; ct is pt_len + 16. */
int kmk_mls_hpke_seal(const uint8_t *pk_r, size_t pk_len, const uint8_t *info, size_t info_len,
                      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                      uint8_t kem_output[KMK_MLS_PUB], uint8_t *ct);
/* Seal with a caller-chosen ephemeral key (deterministic tests only). */
int kmk_mls_hpke_seal_eph(const uint8_t *pk_r, size_t pk_len, const uint8_t eph_priv[32],
                          const uint8_t *info, size_t info_len, const uint8_t *aad,
                          size_t aad_len, const uint8_t *pt, size_t pt_len,
                          uint8_t kem_output[KMK_MLS_PUB], uint8_t *ct);
int kmk_mls_hpke_open(const uint8_t sk_r[KMK_MLS_PRIV], const uint8_t *kem_output,
                      size_t kem_len, const uint8_t *info, size_t info_len, const uint8_t *aad,
                      size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *pt);
/* DeriveKeyPair(ikm) of RFC 9180 section 7.1.3 for P-256. */
int kmk_mls_hpke_derive_key_pair(const uint8_t *ikm, size_t ikm_len, uint8_t priv[KMK_MLS_PRIV],
                                 uint8_t pub[KMK_MLS_PUB]);
/* EncryptWithLabel / DecryptWithLabel (RFC 9420 section 5.1.3); ct is pt_len + 16. */
int kmk_mls_encrypt_with_label(const uint8_t *pub, size_t pub_len, const char *label,
                               const uint8_t *ctx, size_t clen, const uint8_t *pt, size_t pt_len,
                               uint8_t kem_output[KMK_MLS_PUB], uint8_t *ct);
int kmk_mls_decrypt_with_label(const uint8_t priv[KMK_MLS_PRIV], const char *label,
                               const uint8_t *ctx, size_t clen, const uint8_t *kem_output,
                               size_t kem_len, const uint8_t *ct, size_t ct_len, uint8_t *pt);

/* ---------- array-based tree math (RFC 9420 appendix C) ---------- */
/* Node indices: leaves are even (leaf i = node 2i), parents odd. n_leaves is a power of two.
 * Functions that can fail return -1 for "no such node". */
uint32_t kmk_mls_tree_width(uint32_t n_leaves);
uint32_t kmk_mls_tree_level(uint32_t x);
uint32_t kmk_mls_tree_root(uint32_t n_leaves);
int64_t kmk_mls_tree_left(uint32_t x);
int64_t kmk_mls_tree_right(uint32_t x);
int64_t kmk_mls_tree_parent(uint32_t x, uint32_t n_leaves);
int64_t kmk_mls_tree_sibling(uint32_t x, uint32_t n_leaves);
/* Fills path[] (leaf's parent up to the root) and returns its length, or -1. cap >= 32. */
int kmk_mls_tree_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *path, int cap);
int kmk_mls_tree_copath(uint32_t x, uint32_t n_leaves, uint32_t *path, int cap);

/* ---------- key schedule (RFC 9420 section 8) ---------- */
typedef struct kmk_mls_epoch_secrets {
  uint8_t joiner[KMK_MLS_NH], welcome[KMK_MLS_NH], epoch[KMK_MLS_NH];
  uint8_t sender_data[KMK_MLS_NH], encryption[KMK_MLS_NH], exporter[KMK_MLS_NH];
  uint8_t external[KMK_MLS_NH], confirmation_key[KMK_MLS_NH], membership_key[KMK_MLS_NH];
  uint8_t resumption_psk[KMK_MLS_NH], epoch_authenticator[KMK_MLS_NH], init[KMK_MLS_NH];
} kmk_mls_epoch_secrets;

void kmk_mls_epoch_secrets_wipe(kmk_mls_epoch_secrets *s);

/* Serialises GroupContext{version=mls10, suite 2, group_id, epoch, tree_hash, cth, extensions}
 * where `extensions` is the already-encoded extensions vector BODY (may be empty). */
int kmk_mls_group_context_encode(const uint8_t *group_id, size_t gid_len, uint64_t epoch,
                                 const uint8_t *tree_hash, size_t th_len, const uint8_t *cth,
                                 size_t cth_len, const uint8_t *extensions, size_t ext_len,
                                 kmk_mls_bytes *out);

/* From init_secret of the previous epoch, the commit secret and the PSK secret (NULL = zero
 * vectors of Nh bytes) and the serialised new GroupContext. */
int kmk_mls_key_schedule(const uint8_t init_secret[KMK_MLS_NH], const uint8_t *commit_secret,
                         const uint8_t *psk_secret, const uint8_t *group_context, size_t gc_len,
                         kmk_mls_epoch_secrets *out);
/* Same, starting from a joiner secret (the Welcome path). */
int kmk_mls_key_schedule_from_joiner(const uint8_t joiner_secret[KMK_MLS_NH],
                                     const uint8_t *psk_secret, const uint8_t *group_context,
                                     size_t gc_len, kmk_mls_epoch_secrets *out);
/* Derives every per-epoch secret from s->epoch (used directly for a new group's epoch 0). */
int kmk_mls_epoch_secrets_derive(kmk_mls_epoch_secrets *s);
/* welcome_secret only (to open GroupInfo before the GroupContext is known). */
int kmk_mls_welcome_secret(const uint8_t joiner_secret[KMK_MLS_NH], const uint8_t *psk_secret,
                           uint8_t out[KMK_MLS_NH]);
/* MLS-Exporter(label, context, len) from an exporter secret; label is arbitrary bytes. */
int kmk_mls_export(const uint8_t exporter_secret[KMK_MLS_NH], const uint8_t *label,
                   size_t label_len, const uint8_t *ctx, size_t clen, uint8_t *out, size_t olen);

/* ---------- pre-shared keys (RFC 9420 section 8.4) ---------- */
typedef struct kmk_mls_psk_input {
  const uint8_t *id; /* encoded PreSharedKeyID (type, id or group/epoch, nonce) */
  size_t id_len;
  const uint8_t *psk; /* the key itself */
  size_t psk_len;
} kmk_mls_psk_input;
/* psk_secret over n PSKs in order (n == 0 gives the zero vector). */
int kmk_mls_psk_secret(const kmk_mls_psk_input *psks, size_t n, uint8_t out[KMK_MLS_NH]);

/* ---------- transcript hashes (RFC 9420 section 8.2) ---------- */
/* confirmed_input = wire_format || FramedContent || signature<V> (AuthenticatedContent without
 * the confirmation tag). Computes the confirmed hash after the commit and the interim hash. */
int kmk_mls_transcript_confirmed(const uint8_t *interim_before, size_t ib_len,
                                 const uint8_t *confirmed_input, size_t ci_len,
                                 uint8_t confirmed_out[KMK_MLS_NH]);
int kmk_mls_transcript_interim(const uint8_t confirmed[KMK_MLS_NH], const uint8_t *tag,
                               size_t tag_len, uint8_t interim_out[KMK_MLS_NH]);
/* confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash). */
int kmk_mls_confirmation_tag(const uint8_t key[KMK_MLS_NH], const uint8_t confirmed[KMK_MLS_NH],
                             uint8_t tag[KMK_MLS_NH]);

/* ---------- secret tree (RFC 9420 section 9) ---------- */
/* Leaf secret of `leaf` in a tree of n_leaves from the encryption secret. */
int kmk_mls_secret_tree_leaf(const uint8_t encryption_secret[KMK_MLS_NH], uint32_t n_leaves,
                             uint32_t leaf, uint8_t out[KMK_MLS_NH]);
/* Ratchet step: key/nonce for `generation` from the ratchet secret of that generation, and the
 * next ratchet secret. Any output pointer may be NULL. */
int kmk_mls_ratchet_step(const uint8_t *secret, size_t slen, uint32_t generation,
                         uint8_t key[KMK_MLS_NK], uint8_t nonce[KMK_MLS_NN],
                         uint8_t next[KMK_MLS_NH]);
/* Sender-data key and nonce from the first Nh bytes of a PrivateMessage ciphertext. */
int kmk_mls_sender_data_keys(const uint8_t sender_data_secret[KMK_MLS_NH], const uint8_t *ct,
                             size_t ct_len, uint8_t key[KMK_MLS_NK], uint8_t nonce[KMK_MLS_NN]);

#ifdef __cplusplus
}
#endif
#endif
