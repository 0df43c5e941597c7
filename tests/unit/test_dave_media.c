/* test_dave_media.c - DAVE media layer: per-sender key from a fixed exporter secret, hash
 * ratchet, Opus frame encrypt/decrypt (known answers computed with an independent Python
 * HKDF/AES-GCM), silence passthrough, malformed frames, replay and missing-nonce windows,
 * generation changes and wrap, epoch transitions with expiry, displayable code. */
#include "check.h"
#include "kameko/dave.h"
#include "kameko/mls.h"

static void hex(const char *s, uint8_t *out) {
  for (size_t i = 0; s[2 * i]; i++) {
    unsigned v;
    sscanf(s + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
}

static const uint64_t UID = 158049329150427136ull;

static void base_secret(uint8_t out[16]) {
  uint8_t exp[32];
  for (int i = 0; i < 32; i++) exp[i] = (uint8_t)i;
  CHECK_EQ_INT(kmk_dave_sender_base_secret(exp, UID, out), 0);
}

static void test_sender_key_and_ratchet(void) {
  uint8_t base[16], want[16], key[16];
  base_secret(base);
  hex("5607df3dd8b01e10851ce63ba296eeb4", want);
  CHECK(memcmp(base, want, 16) == 0);
  static const char *keys[4] = {"7981b343d622713c78b5d2b4c655041c", "a7462517e733ee4c2504a04aeb8967d7",
                                "3effd8ef0126f75c6c2d986292049068", "e9c23ea606054675fc6573d79d7ee273"};
  kmk_dave_ratchet r;
  memset(&r, 0, sizeof r);
  CHECK_EQ_INT(kmk_dave_ratchet_init(&r, base, 16), 0);
  CHECK_EQ_INT(kmk_dave_ratchet_get(&r, 3, key), 0); /* jump ahead, then look back (cached) */
  hex(keys[3], want);
  CHECK(memcmp(key, want, 16) == 0);
  for (int g = 0; g < 3; g++) {
    CHECK_EQ_INT(kmk_dave_ratchet_get(&r, (uint32_t)g, key), 0);
    hex(keys[g], want);
    CHECK(memcmp(key, want, 16) == 0);
  }
  kmk_dave_ratchet_forget_below(&r, 3);
  CHECK_EQ_INT(kmk_dave_ratchet_get(&r, 1, key), KMK_DAVE_ERR_NO_KEY);
  CHECK_EQ_INT(kmk_dave_ratchet_get(&r, 3 + KMK_DAVE_MAX_GENERATION_GAP + 2, key), KMK_DAVE_ERR_NO_KEY);
  /* bounded retention: after many generations only KEY_CACHE keys remain */
  CHECK_EQ_INT(kmk_dave_ratchet_get(&r, 40, key), 0);
  CHECK_EQ_INT(kmk_dave_ratchet_get(&r, 40 - KMK_DAVE_KEY_CACHE, key), KMK_DAVE_ERR_NO_KEY);
  kmk_dave_ratchet_wipe(&r);
  CHECK_EQ_INT(kmk_dave_ratchet_get(&r, 41, key), KMK_DAVE_ERR_NO_KEY);
}

static void test_known_frame(void) {
  uint8_t base[16], out[64], want[22], back[64];
  size_t n = 0, m = 0;
  base_secret(base);
  kmk_dave_encryptor e;
  kmk_dave_encryptor_init(&e);
  CHECK_EQ_INT(kmk_dave_encryptor_set_key(&e, base, 16), 0);
  CHECK_EQ_INT(kmk_dave_encrypt_opus(&e, (const uint8_t *)"hello opus", 10, out, sizeof out, &n), 0);
  hex("b98379a4f430c890c61d229f5564114cc550010cfafa", want);
  CHECK_EQ_INT(n, 22);
  CHECK(memcmp(out, want, 22) == 0);
  kmk_dave_decryptor d;
  kmk_dave_decryptor_init(&d);
  CHECK_EQ_INT(kmk_dave_decryptor_set_key(&d, base, 16, 0), 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, out, n, back, sizeof back, &m, 0), 0);
  CHECK(m == 10 && memcmp(back, "hello opus", 10) == 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, out, n, back, sizeof back, &m, 0), KMK_DAVE_ERR_REPLAY);
  kmk_dave_encryptor_wipe(&e);
  kmk_dave_decryptor_wipe(&d);
}

static void test_roundtrip_and_silence(void) {
  uint8_t base[16], frame[400], enc[400 + KMK_DAVE_MAX_OVERHEAD], dec[400];
  size_t n, m;
  base_secret(base);
  kmk_dave_encryptor e;
  kmk_dave_decryptor d;
  kmk_dave_encryptor_init(&e);
  kmk_dave_decryptor_init(&d);
  uint8_t probe[3] = {1, 2, 3};
  CHECK_EQ_INT(kmk_dave_encrypt_opus(&e, probe, 3, enc, sizeof enc, &n), KMK_DAVE_ERR_NO_KEY);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, (const uint8_t *)"\x01\x02\xfa\xfa", 4, dec, sizeof dec, &m, 0),
               KMK_DAVE_ERR_DECODE);
  kmk_dave_encryptor_set_key(&e, base, 16);
  kmk_dave_decryptor_set_key(&d, base, 16, 0);
  int ok = 1;
  for (int i = 0; i < 300; i++) {
    size_t len = (size_t)(i % 400);
    for (size_t j = 0; j < len; j++) frame[j] = (uint8_t)(i * 7 + j);
    ok &= kmk_dave_encrypt_opus(&e, frame, len, enc, sizeof enc, &n) == 0;
    ok &= enc[n - 1] == 0xFA && enc[n - 2] == 0xFA && enc[n - 3] == n - len;
    ok &= kmk_dave_decrypt_opus(&d, enc, n, dec, sizeof dec, &m, (uint64_t)i * 20) == 0;
    ok &= m == len && memcmp(dec, frame, len) == 0;
  }
  CHECK(ok);
  /* output buffer too small */
  CHECK_EQ_INT(kmk_dave_encrypt_opus(&e, frame, 100, enc, 100 + 5, &n), KMK_DAVE_ERR_ARG);
  /* silence passes through both ways */
  const uint8_t silence[3] = {0xF8, 0xFF, 0xFE};
  CHECK_EQ_INT(kmk_dave_encrypt_opus(&e, silence, 3, enc, sizeof enc, &n), 0);
  CHECK(n == 3 && memcmp(enc, silence, 3) == 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, silence, 3, dec, sizeof dec, &m, 0), 0);
  CHECK(m == 3 && memcmp(dec, silence, 3) == 0);
  /* plaintext frames are reported, not decrypted */
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, frame, 50, dec, sizeof dec, &m, 0), KMK_DAVE_ERR_NOT_ENCRYPTED);
  kmk_dave_encryptor_wipe(&e);
  kmk_dave_decryptor_wipe(&d);
}

static void test_malformed(void) {
  uint8_t base[16], enc[64], bad[64], dec[64];
  size_t n, m;
  base_secret(base);
  kmk_dave_encryptor e;
  kmk_dave_decryptor d;
  kmk_dave_encryptor_init(&e);
  kmk_dave_decryptor_init(&d);
  kmk_dave_encryptor_set_key(&e, base, 16);
  kmk_dave_decryptor_set_key(&d, base, 16, 0);
  CHECK_EQ_INT(kmk_dave_encrypt_opus(&e, (const uint8_t *)"0123456789", 10, enc, sizeof enc, &n), 0);
  /* every truncation is rejected without crashing */
  for (size_t l = 0; l < n; l++) CHECK(kmk_dave_decrypt_opus(&d, enc, l, dec, sizeof dec, &m, 0) != 0);
  /* every single bit flip is rejected */
  int ok = 1;
  for (size_t i = 0; i < n; i++)
    for (int b = 0; b < 8; b++) {
      memcpy(bad, enc, n);
      bad[i] ^= (uint8_t)(1 << b);
      ok &= kmk_dave_decrypt_opus(&d, bad, n, dec, sizeof dec, &m, 0) != 0;
    }
  CHECK(ok);
  /* supplemental size smaller than the minimum or larger than the frame */
  memcpy(bad, enc, n);
  bad[n - 3] = 5;
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, bad, n, dec, sizeof dec, &m, 0), KMK_DAVE_ERR_DECODE);
  bad[n - 3] = (uint8_t)(n + 1);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, bad, n, dec, sizeof dec, &m, 0), KMK_DAVE_ERR_DECODE);
  /* a nonce that does not terminate inside the trailer */
  memcpy(bad, enc, n);
  bad[n - 4] = 0x81;
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, bad, n, dec, sizeof dec, &m, 0), KMK_DAVE_ERR_DECODE);
  /* range past the body */
  kmk_dave_frame_info fi;
  const uint8_t ranged[] = {1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x05, 0x02, 14, 0xFA, 0xFA};
  CHECK_EQ_INT(kmk_dave_frame_parse(ranged, sizeof ranged, &fi), KMK_DAVE_ERR_DECODE);
  const uint8_t ranged_ok[] = {1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x01, 0x02, 14, 0xFA, 0xFA};
  CHECK_EQ_INT(kmk_dave_frame_parse(ranged_ok, sizeof ranged_ok, &fi), 0);
  CHECK(fi.n_ranges == 1 && fi.range_off[0] == 1 && fi.range_len[0] == 2 && fi.nonce == 5);
  /* the real frame still decrypts after all that */
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, enc, n, dec, sizeof dec, &m, 0), 0);
  CHECK(d.failures == 0);
  kmk_dave_encryptor_wipe(&e);
  kmk_dave_decryptor_wipe(&d);
}

static void test_uleb128(void) {
  uint8_t b[10];
  uint64_t v;
  const uint64_t vals[] = {0, 1, 127, 128, 300, 0xFFFFFFFFull, UINT64_MAX};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    size_t n = kmk_dave_uleb128_write(vals[i], b);
    CHECK(kmk_dave_uleb128_read(b, n, &v) == n && v == vals[i]);
    CHECK_EQ_INT(kmk_dave_uleb128_read(b, n - 1, &v), 0);
  }
  const uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  CHECK_EQ_INT(kmk_dave_uleb128_read(over, 10, &v), 0);
}

static size_t enc_nonce(kmk_dave_encryptor *e, uint32_t nonce, uint8_t *out) {
  size_t n = 0;
  CHECK_EQ_INT(kmk_dave_encrypt_opus_nonce(e, nonce, (const uint8_t *)"abcdef", 6, out, 64, &n), 0);
  return n;
}

static void test_replay_and_windows(void) {
  uint8_t base[16], f[8][64], dec[64];
  size_t n[8], m;
  base_secret(base);
  kmk_dave_encryptor e;
  kmk_dave_decryptor d;
  kmk_dave_encryptor_init(&e);
  kmk_dave_decryptor_init(&d);
  kmk_dave_encryptor_set_key(&e, base, 16);
  kmk_dave_decryptor_set_key(&d, base, 16, 0);
  n[0] = enc_nonce(&e, 10, f[0]);
  n[1] = enc_nonce(&e, 11, f[1]);
  n[2] = enc_nonce(&e, 12, f[2]);
  n[3] = enc_nonce(&e, 2000, f[3]);
  n[4] = enc_nonce(&e, 1500, f[4]);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[2], n[2], dec, 64, &m, 0), 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[0], n[0], dec, 64, &m, 0), 0); /* late, in window */
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[0], n[0], dec, 64, &m, 0), KMK_DAVE_ERR_REPLAY);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[3], n[3], dec, 64, &m, 0), 0);
  /* 11 is now more than 1000 nonces behind: out of the missing window */
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[1], n[1], dec, 64, &m, 0), KMK_DAVE_ERR_REPLAY);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[4], n[4], dec, 64, &m, 0), 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[4], n[4], dec, 64, &m, 0), KMK_DAVE_ERR_REPLAY);
  CHECK(d.slots[0].missing_count <= KMK_DAVE_MAX_MISSING_NONCES);
  /* generation 1 (nonce >> 24 == 1), then a late generation-0 frame within 10 s, then after */
  n[6] = enc_nonce(&e, 0x00FFFFFE, f[6]);
  n[7] = enc_nonce(&e, 0x00FFFFFF, f[7]);
  n[5] = enc_nonce(&e, 0x01000001, f[5]);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[5], n[5], dec, 64, &m, 1000), 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[6], n[6], dec, 64, &m, 5000), 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[7], n[7], dec, 64, &m, 12000), KMK_DAVE_ERR_NO_KEY);
  /* too far ahead */
  n[0] = enc_nonce(&e, (uint32_t)(1 + KMK_DAVE_MAX_GENERATION_GAP + 1) << 24, f[0]);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f[0], n[0], dec, 64, &m, 12000), KMK_DAVE_ERR_NO_KEY);
  kmk_dave_encryptor_wipe(&e);
  kmk_dave_decryptor_wipe(&d);
}

static void test_generation_wrap(void) {
  /* the sender's counter crosses 2^32: generation 256 appears on the wire as 0 */
  uint8_t base[16], enc[64], dec[64];
  size_t n, m;
  base_secret(base);
  kmk_dave_encryptor e;
  kmk_dave_decryptor d;
  kmk_dave_encryptor_init(&e);
  kmk_dave_decryptor_init(&d);
  kmk_dave_encryptor_set_key(&e, base, 16);
  kmk_dave_decryptor_set_key(&d, base, 16, 0);
  int ok = 1;
  uint64_t t = 0;
  for (uint32_t g = 0; g < 260; g++) { /* walk generations one by one, one frame each */
    e.counter = ((uint64_t)g << 24) | 7;
    ok &= kmk_dave_encrypt_opus(&e, (const uint8_t *)"wrap", 4, enc, sizeof enc, &n) == 0;
    t += 20;
    ok &= kmk_dave_decrypt_opus(&d, enc, n, dec, sizeof dec, &m, t) == 0 && m == 4;
    if (!ok) {
      fprintf(stderr, "  wrap failed at generation %u\n", g);
      break;
    }
  }
  CHECK(ok);
  CHECK_EQ_INT(d.slots[0].newest_gen, 259);
  kmk_dave_encryptor_wipe(&e);
  kmk_dave_decryptor_wipe(&d);
}

static void test_epoch_transition(void) {
  uint8_t b1[16], b2[16], f1[64], f2[64], dec[64];
  size_t n1, n2, m;
  base_secret(b1);
  memcpy(b2, b1, 16);
  b2[0] ^= 0x55;
  kmk_dave_encryptor e1, e2;
  kmk_dave_decryptor d;
  kmk_dave_encryptor_init(&e1);
  kmk_dave_encryptor_init(&e2);
  kmk_dave_decryptor_init(&d);
  kmk_dave_encryptor_set_key(&e1, b1, 16);
  kmk_dave_encryptor_set_key(&e2, b2, 16);
  kmk_dave_decryptor_set_key(&d, b1, 16, 0);
  n1 = enc_nonce(&e1, 100, f1);
  n2 = enc_nonce(&e2, 100, f2);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f2, n2, dec, 64, &m, 0), KMK_DAVE_ERR_VERIFY);
  CHECK_EQ_INT(d.failures, 1);
  CHECK_EQ_INT(kmk_dave_decryptor_set_key(&d, b2, 16, 1000), 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f2, n2, dec, 64, &m, 1000), 0);
  CHECK_EQ_INT(d.failures, 0);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f1, n1, dec, 64, &m, 5000), 0); /* old epoch, in time */
  n1 = enc_nonce(&e1, 101, f1);
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, f1, n1, dec, 64, &m, 11001), KMK_DAVE_ERR_VERIFY);
  /* more epochs than slots: the oldest is dropped, memory stays bounded */
  for (int i = 0; i < 10; i++) CHECK_EQ_INT(kmk_dave_decryptor_set_key(&d, b1, 16, 20000), 0);
  int used = 0;
  for (int i = 0; i < KMK_DAVE_MAX_RATCHETS; i++) used += d.slots[i].used;
  CHECK_EQ_INT(used, KMK_DAVE_MAX_RATCHETS);
  kmk_dave_encryptor_wipe(&e1);
  kmk_dave_encryptor_wipe(&e2);
  kmk_dave_decryptor_wipe(&d);
}

static void test_displayable_code(void) {
  uint8_t data[32];
  for (int i = 0; i < 32; i++) data[i] = (uint8_t)(i * 37 + 11);
  char code[31];
  CHECK_EQ_INT(kmk_dave_displayable_code(data, 32, 30, 5, code), 0);
  /* group 1: bytes 0b 30 55 7a 9f = 0x0b30557a9f mod 10^5 = 48575 */
  CHECK(strncmp(code, "48575", 5) == 0);
  CHECK_EQ_INT(strlen(code), 30);
  CHECK_EQ_INT(kmk_dave_displayable_code(data, 20, 30, 5, code), KMK_DAVE_ERR_ARG);
  uint8_t zero[5] = {0};
  CHECK_EQ_INT(kmk_dave_displayable_code(zero, 5, 5, 5, code), 0);
  CHECK_STR(code, "00000");
}

int main(void) {
  RUN(test_sender_key_and_ratchet);
  RUN(test_known_frame);
  RUN(test_roundtrip_and_silence);
  RUN(test_malformed);
  RUN(test_uleb128);
  RUN(test_replay_and_windows);
  RUN(test_generation_wrap);
  RUN(test_epoch_transition);
  RUN(test_displayable_code);
  return check_done();
}
