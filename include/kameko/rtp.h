/* rtp.h - Discord voice RTP packets: pure parse/build and the two transport-encryption modes
 * ("rtpsize" AEAD: aead_aes256_gcm_rtpsize, aead_xchacha20_poly1305_rtpsize).
 *
 * Packet layout (rtpsize modes):
 *   RTP header (12 bytes + 4 x CSRC count) [+ 4-byte extension preamble 0xBEDE|len when X is set]
 *   | ciphertext (extension body 4 x len bytes | Opus payload | RTP padding when P is set)
 *   | 16-byte tag | 4-byte big-endian nonce counter
 * AAD = everything before the ciphertext. Nonce = the 4 counter bytes followed by zeros (12 bytes
 * for AES-256-GCM, 24 for XChaCha20-Poly1305). Packets whose second byte is 200..204 are RTCP.
 *
 * Every function is pure (no I/O, no globals besides libsodium's one-time init) and safe on any
 * thread; errors are negative KMK_RTP_E* codes, and no input crashes a parser (fuzzed by
 * tests/fuzz/fuzz_rtp.c).
 */
#ifndef KAMEKO_RTP_H
#define KAMEKO_RTP_H

#include <stddef.h>
#include <stdint.h>

enum {
  KMK_RTP_OK = 0,
  KMK_RTP_ESHORT = -1,   /* shorter than its headers + tag + nonce */
  KMK_RTP_EVERSION = -2, /* RTP version is not 2 */
  KMK_RTP_ERTCP = -3,    /* an RTCP packet (payload type 200..204): not audio */
  KMK_RTP_EAUTH = -4,    /* tag did not verify (wrong key, tampered, other mode) */
  KMK_RTP_EPAD = -5,     /* padding count larger than the payload */
  KMK_RTP_EEXT = -6,     /* extension body longer than the plaintext */
  KMK_RTP_EARG = -7,     /* bad argument or output too small */
  KMK_RTP_ECRYPTO = -8,  /* crypto library failure */
};

#define KMK_RTP_HEADER 12
#define KMK_RTP_TAG 16
#define KMK_RTP_NONCE 4
#define KMK_RTP_MAX_PACKET 1500
#define KMK_RTP_PAYLOAD_TYPE 0x78 /* Opus, as Discord sends it */

typedef enum {
  KMK_RTP_AES256_GCM = 0,        /* "aead_aes256_gcm_rtpsize" */
  KMK_RTP_XCHACHA20_POLY1305 = 1 /* "aead_xchacha20_poly1305_rtpsize" */
} kmk_rtp_mode;

typedef struct {
  uint8_t padding, extension, csrc_count, marker, payload_type;
  uint16_t seq;
  uint32_t timestamp, ssrc;
  uint16_t ext_words;  /* extension length in 32-bit words (from the preamble) */
  size_t aad_len;      /* 12 + 4 x CC (+ 4 when X is set) */
} kmk_rtp_header;

/* "aead_aes256_gcm_rtpsize" / ... -> mode, or -1 for an unknown name. */
int kmk_rtp_mode_from_name(const char *name);
const char *kmk_rtp_mode_name(kmk_rtp_mode m);
/* 1 when the second byte says RTCP (200..204). */
int kmk_rtp_is_rtcp(const uint8_t *p, size_t n);
/* Parses the clear part (header, CSRCs, extension preamble). 0 or KMK_RTP_E*. */
int kmk_rtp_parse(const uint8_t *p, size_t n, kmk_rtp_header *h);
/* Parses and decrypts one packet; out gets the Opus payload (extension body and padding
 * stripped). out_cap >= n suffices. Returns the payload length (may be 0) or KMK_RTP_E*. */
int kmk_rtp_open(kmk_rtp_mode m, const uint8_t key[32], const uint8_t *p, size_t n,
                 kmk_rtp_header *h, uint8_t *out, size_t out_cap);
/* Builds one encrypted packet: header 0x80 0x78 seq ts ssrc (no extension), the payload sealed
 * with nonce counter `nonce`. Returns the packet length or KMK_RTP_E* (out_cap too small). */
int kmk_rtp_seal(kmk_rtp_mode m, const uint8_t key[32], uint16_t seq, uint32_t ts, uint32_t ssrc,
                 uint32_t nonce, const uint8_t *payload, size_t len, uint8_t *out, size_t out_cap);
/* Same with a caller-built clear prefix (header + CSRCs + extension preamble, aad_len bytes) and a
 * plaintext that already holds the extension body / padding (tests, the peer's packet shapes). */
int kmk_rtp_seal_raw(kmk_rtp_mode m, const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                     uint32_t nonce, const uint8_t *plain, size_t len, uint8_t *out,
                     size_t out_cap);

/* IP discovery (74 bytes): request type 1, length 70, ssrc, 64 zero bytes, port 0. */
#define KMK_IPDISC_LEN 74
void kmk_ipdisc_request(uint32_t ssrc, uint8_t out[KMK_IPDISC_LEN]);
/* Response type 2: our external address (NUL-terminated into addr) and port. 0 or KMK_RTP_E*. */
int kmk_ipdisc_parse(const uint8_t *p, size_t n, uint32_t *ssrc, char *addr, size_t addr_cap,
                     uint16_t *port);

#endif
