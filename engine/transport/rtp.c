/* rtp.c - Discord voice RTP: parse, build, and the two rtpsize AEAD modes (see rtp.h).
 * AES-256-GCM uses libsodium when the CPU has AES-NI/PCLMUL (crypto_aead_aes256gcm_is_available),
 * else OpenSSL's EVP; XChaCha20-Poly1305 always uses libsodium. Pure functions, any thread.
 */
#include <stdatomic.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "kameko/rtp.h"

static atomic_int g_init; /* 1 = sodium ready, 2 = and AES-GCM in hardware */

static int crypto_ready(void) {
  int s = atomic_load(&g_init);
  if (s) return s;
  if (sodium_init() < 0) return 0;
  s = crypto_aead_aes256gcm_is_available() ? 2 : 1;
  atomic_store(&g_init, s);
  return s;
}

int kmk_rtp_mode_from_name(const char *name) {
  if (!name) return -1;
  if (strcmp(name, "aead_aes256_gcm_rtpsize") == 0) return KMK_RTP_AES256_GCM;
  if (strcmp(name, "aead_xchacha20_poly1305_rtpsize") == 0) return KMK_RTP_XCHACHA20_POLY1305;
  return -1;
}

const char *kmk_rtp_mode_name(kmk_rtp_mode m) {
  return m == KMK_RTP_AES256_GCM ? "aead_aes256_gcm_rtpsize" : "aead_xchacha20_poly1305_rtpsize";
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

int kmk_rtp_is_rtcp(const uint8_t *p, size_t n) { return n >= 2 && p[1] >= 200 && p[1] <= 204; }

int kmk_rtp_parse(const uint8_t *p, size_t n, kmk_rtp_header *h) {
  if (!p || !h) return KMK_RTP_EARG;
  memset(h, 0, sizeof *h);
  if (n < KMK_RTP_HEADER) return KMK_RTP_ESHORT;
  if ((p[0] >> 6) != 2) return KMK_RTP_EVERSION;
  if (kmk_rtp_is_rtcp(p, n)) return KMK_RTP_ERTCP;
  h->padding = (p[0] >> 5) & 1;
  h->extension = (p[0] >> 4) & 1;
  h->csrc_count = p[0] & 0x0f;
  h->marker = p[1] >> 7;
  h->payload_type = p[1] & 0x7f;
  h->seq = rd16(p + 2);
  h->timestamp = rd32(p + 4);
  h->ssrc = rd32(p + 8);
  size_t aad = KMK_RTP_HEADER + 4u * h->csrc_count;
  if (h->extension) {
    if (n < aad + 4) return KMK_RTP_ESHORT;
    h->ext_words = rd16(p + aad + 2);
    aad += 4;
  }
  h->aad_len = aad;
  return n < aad ? KMK_RTP_ESHORT : KMK_RTP_OK;
}

/* AES-256-GCM through OpenSSL (no AES-NI): combined ct|tag like libsodium. */
static int evp_gcm(int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad,
                   size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c) return KMK_RTP_ECRYPTO;
  int ok = 0, l = 0;
  size_t body = enc ? in_len : in_len - KMK_RTP_TAG;
  if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) != 1) goto done;
  if (aad_len && EVP_CipherUpdate(c, NULL, &l, aad, (int)aad_len) != 1) goto done;
  if (body && EVP_CipherUpdate(c, out, &l, in, (int)body) != 1) goto done;
  if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, KMK_RTP_TAG, (void *)(in + body)) != 1)
    goto done;
  if (EVP_CipherFinal_ex(c, out + body, &l) != 1) goto done;
  if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, KMK_RTP_TAG, out + body) != 1) goto done;
  ok = 1;
done:
  EVP_CIPHER_CTX_free(c);
  return ok ? 0 : (enc ? KMK_RTP_ECRYPTO : KMK_RTP_EAUTH);
}

/* in = ciphertext|tag (decrypt) or plaintext (encrypt); out gets plaintext or ct|tag. */
static int aead(int enc, kmk_rtp_mode m, const uint8_t key[32], uint32_t counter,
                const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
                uint8_t *out) {
  int s = crypto_ready();
  if (!s) return KMK_RTP_ECRYPTO;
  uint8_t nonce[24] = {0};
  wr32(nonce, counter);
  unsigned long long ol = 0;
  if (m == KMK_RTP_AES256_GCM) {
    if (s != 2) return evp_gcm(enc, key, nonce, aad, aad_len, in, in_len, out);
    if (enc)
      return crypto_aead_aes256gcm_encrypt(out, &ol, in, in_len, aad, aad_len, NULL, nonce, key) == 0
                 ? 0 : KMK_RTP_ECRYPTO;
    return crypto_aead_aes256gcm_decrypt(out, &ol, NULL, in, in_len, aad, aad_len, nonce, key) == 0
               ? 0 : KMK_RTP_EAUTH;
  }
  if (m != KMK_RTP_XCHACHA20_POLY1305) return KMK_RTP_EARG;
  if (enc)
    return crypto_aead_xchacha20poly1305_ietf_encrypt(out, &ol, in, in_len, aad, aad_len, NULL,
                                                      nonce, key) == 0 ? 0 : KMK_RTP_ECRYPTO;
  return crypto_aead_xchacha20poly1305_ietf_decrypt(out, &ol, NULL, in, in_len, aad, aad_len,
                                                    nonce, key) == 0 ? 0 : KMK_RTP_EAUTH;
}

int kmk_rtp_open(kmk_rtp_mode m, const uint8_t key[32], const uint8_t *p, size_t n,
                 kmk_rtp_header *h, uint8_t *out, size_t out_cap) {
  kmk_rtp_header tmp;
  if (!h) h = &tmp;
  if (!key || !out) return KMK_RTP_EARG;
  int rc = kmk_rtp_parse(p, n, h);
  if (rc < 0) return rc;
  if (n < h->aad_len + KMK_RTP_TAG + KMK_RTP_NONCE) return KMK_RTP_ESHORT;
  size_t ct = n - h->aad_len - KMK_RTP_NONCE; /* ciphertext + tag */
  size_t plain = ct - KMK_RTP_TAG;
  if (out_cap < plain) return KMK_RTP_EARG;
  rc = aead(0, m, key, rd32(p + n - KMK_RTP_NONCE), p, h->aad_len, p + h->aad_len, ct, out);
  if (rc < 0) return rc;
  size_t start = 0, end = plain;
  if (h->extension) {
    start = 4u * h->ext_words;
    if (start > end) return KMK_RTP_EEXT;
  }
  if (h->padding) {
    if (end == start) return KMK_RTP_EPAD;
    uint8_t pad = out[end - 1];
    if (pad == 0 || pad > end - start) return KMK_RTP_EPAD;
    end -= pad;
  }
  if (start) memmove(out, out + start, end - start);
  return (int)(end - start);
}

int kmk_rtp_seal_raw(kmk_rtp_mode m, const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                     uint32_t nonce, const uint8_t *plain, size_t len, uint8_t *out,
                     size_t out_cap) {
  if (!key || !aad || !out || (!plain && len)) return KMK_RTP_EARG;
  size_t total = aad_len + len + KMK_RTP_TAG + KMK_RTP_NONCE;
  if (total > out_cap || total > 0x7fffffff) return KMK_RTP_EARG;
  memmove(out, aad, aad_len);
  int rc = aead(1, m, key, nonce, out, aad_len, plain, len, out + aad_len);
  if (rc < 0) return rc;
  wr32(out + total - KMK_RTP_NONCE, nonce);
  return (int)total;
}

int kmk_rtp_seal(kmk_rtp_mode m, const uint8_t key[32], uint16_t seq, uint32_t ts, uint32_t ssrc,
                 uint32_t nonce, const uint8_t *payload, size_t len, uint8_t *out,
                 size_t out_cap) {
  uint8_t hdr[KMK_RTP_HEADER] = {0x80, KMK_RTP_PAYLOAD_TYPE};
  wr16(hdr + 2, seq);
  wr32(hdr + 4, ts);
  wr32(hdr + 8, ssrc);
  return kmk_rtp_seal_raw(m, key, hdr, sizeof hdr, nonce, payload, len, out, out_cap);
}

void kmk_ipdisc_request(uint32_t ssrc, uint8_t out[KMK_IPDISC_LEN]) {
  memset(out, 0, KMK_IPDISC_LEN);
  wr16(out, 1);
  wr16(out + 2, 70);
  wr32(out + 4, ssrc);
}

int kmk_ipdisc_parse(const uint8_t *p, size_t n, uint32_t *ssrc, char *addr, size_t addr_cap,
                     uint16_t *port) {
  if (!p || !addr || addr_cap == 0) return KMK_RTP_EARG;
  if (n < KMK_IPDISC_LEN) return KMK_RTP_ESHORT;
  if (rd16(p) != 2 || rd16(p + 2) != 70) return KMK_RTP_EVERSION;
  size_t l = 0;
  while (l < 64 && p[8 + l]) l++;
  if (l == 0 || l >= addr_cap) return KMK_RTP_EARG;
  for (size_t i = 0; i < l; i++)
    if (p[8 + i] < 0x21 || p[8 + i] > 0x7e) return KMK_RTP_EARG;
  memcpy(addr, p + 8, l);
  addr[l] = 0;
  if (ssrc) *ssrc = rd32(p + 4);
  if (port) *port = rd16(p + 72);
  return 0;
}
