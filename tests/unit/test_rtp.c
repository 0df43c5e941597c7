/* test_rtp.c - Discord RTP packets without I/O: header parse, both rtpsize AEAD modes round trip,
 * the AES-GCM nonce/AAD layout checked against OpenSSL directly, extension and padding stripping,
 * RTCP and malformed packets rejected, IP discovery request/response; and the receive side's loss
 * recovery: a dropped packet of speech Opus-encoded by the engine's encoder (in-band FEC on) is
 * recovered from the next packet's FEC much closer to the lossless decode than PLC gets. */
#include <math.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "kameko/opus.h"
#include "kameko/out.h"
#include "kameko/rtp.h"
#include "kameko/speech.h"
#include "test_stt_synth.h" /* pcmbuf, pb_chunk */

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void test_round_trip(void) {
  const uint8_t opus[] = {0xfc, 0x11, 0x22, 0x33, 0x44, 0x55};
  for (int m = 0; m < 2; m++) {
    uint8_t pkt[256], out[256];
    int n = kmk_rtp_seal(m, KEY, 0xfffe, 0x01020304, 0xdeadbeef, 7, opus, sizeof opus, pkt,
                         sizeof pkt);
    CHECK_EQ_INT(n, 12 + 6 + 16 + 4);
    CHECK_EQ_INT(pkt[0], 0x80);
    CHECK_EQ_INT(pkt[1], 0x78);
    CHECK_EQ_INT(pkt[2], 0xff);
    CHECK_EQ_INT(pkt[3], 0xfe);
    CHECK_EQ_INT(pkt[n - 1], 7);
    kmk_rtp_header h;
    int l = kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out);
    CHECK_EQ_INT(l, 6);
    CHECK(memcmp(out, opus, 6) == 0);
    CHECK_EQ_INT(h.seq, 0xfffe);
    CHECK_EQ_INT(h.timestamp, 0x01020304);
    CHECK_EQ_INT(h.ssrc, 0xdeadbeef);
    CHECK_EQ_INT(h.payload_type, 0x78);
    /* tamper with the header (AAD), the ciphertext, the tag, the nonce */
    int spots[] = {5, 13, n - 6, n - 1};
    for (int i = 0; i < 4; i++) {
      pkt[spots[i]] ^= 1;
      CHECK_EQ_INT(kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out), KMK_RTP_EAUTH);
      pkt[spots[i]] ^= 1;
    }
    /* the other mode does not open it */
    CHECK_EQ_INT(kmk_rtp_open(1 - m, KEY, pkt, (size_t)n, &h, out, sizeof out), KMK_RTP_EAUTH);
    /* empty payload */
    n = kmk_rtp_seal(m, KEY, 1, 2, 3, 8, NULL, 0, pkt, sizeof pkt);
    CHECK_EQ_INT(n, 32);
    CHECK_EQ_INT(kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out), 0);
    CHECK_EQ_INT(kmk_rtp_seal(m, KEY, 1, 2, 3, 8, opus, 6, pkt, 37), KMK_RTP_EARG);
  }
}

/* Independent decrypt with OpenSSL: nonce = counter (big-endian) then 8 zero bytes, AAD = 12-byte
 * header + extension preamble, tag before the counter. */
static void test_aes_layout(void) {
  uint8_t aad[16] = {0x90, 0x78, 0, 5, 0, 0, 3, 0xc0, 0, 0, 0, 9, 0xbe, 0xde, 0, 1};
  uint8_t plain[] = {0x10, 0xaa, 0xbb, 0xcc, /* extension body (1 word) */ 0xf8, 0xff, 0xfe};
  uint8_t pkt[128];
  int n = kmk_rtp_seal_raw(KMK_RTP_AES256_GCM, KEY, aad, sizeof aad, 0x01020304, plain,
                           sizeof plain, pkt, sizeof pkt);
  CHECK_EQ_INT(n, 16 + 7 + 16 + 4);
  uint8_t nonce[12] = {1, 2, 3, 4};
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int l = 0;
  uint8_t out[16];
  CHECK(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, KEY, nonce) == 1);
  CHECK(EVP_DecryptUpdate(c, NULL, &l, pkt, 16) == 1);
  CHECK(EVP_DecryptUpdate(c, out, &l, pkt + 16, 7) == 1);
  CHECK(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, pkt + 23) == 1);
  CHECK(EVP_DecryptFinal_ex(c, out + l, &l) == 1);
  EVP_CIPHER_CTX_free(c);
  CHECK(memcmp(out, plain, 7) == 0);
  /* ours strips the extension body */
  kmk_rtp_header h;
  uint8_t o2[64];
  CHECK_EQ_INT(kmk_rtp_open(KMK_RTP_AES256_GCM, KEY, pkt, (size_t)n, &h, o2, sizeof o2), 3);
  CHECK(memcmp(o2, "\xf8\xff\xfe", 3) == 0);
  CHECK_EQ_INT(h.extension, 1);
  CHECK_EQ_INT(h.ext_words, 1);
  CHECK_EQ_INT(h.aad_len, 16);
}

static void test_ext_padding_csrc(void) {
  for (int m = 0; m < 2; m++) {
    /* P and X set, one CSRC, extension of 2 words, 3 bytes of padding */
    uint8_t aad[20] = {0xb1, 0x78, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 2};
    uint8_t plain[8 + 4 + 3] = {0x22, 1, 2, 3, 4, 5, 6, 7, 'o', 'p', 'u', 's', 0, 0, 3};
    uint8_t pkt[128], out[128];
    int n = kmk_rtp_seal_raw(m, KEY, aad, sizeof aad, 1, plain, sizeof plain, pkt, sizeof pkt);
    kmk_rtp_header h;
    CHECK_EQ_INT(kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out), 4);
    CHECK(memcmp(out, "opus", 4) == 0);
    CHECK_EQ_INT(h.csrc_count, 1);
    CHECK_EQ_INT(h.aad_len, 20);
    /* a padding count larger than the payload */
    plain[sizeof plain - 1] = 9;
    n = kmk_rtp_seal_raw(m, KEY, aad, sizeof aad, 1, plain, sizeof plain, pkt, sizeof pkt);
    CHECK_EQ_INT(kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out), KMK_RTP_EPAD);
    /* an extension longer than the plaintext */
    aad[19] = 9;
    plain[sizeof plain - 1] = 3;
    n = kmk_rtp_seal_raw(m, KEY, aad, sizeof aad, 1, plain, sizeof plain, pkt, sizeof pkt);
    CHECK_EQ_INT(kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out), KMK_RTP_EEXT);
  }
}

static void test_malformed(void) {
  uint8_t out[64];
  kmk_rtp_header h;
  uint8_t rtcp[40] = {0x81, 200};
  CHECK(kmk_rtp_is_rtcp(rtcp, sizeof rtcp));
  CHECK_EQ_INT(kmk_rtp_open(0, KEY, rtcp, sizeof rtcp, &h, out, sizeof out), KMK_RTP_ERTCP);
  rtcp[1] = 204;
  CHECK_EQ_INT(kmk_rtp_parse(rtcp, sizeof rtcp, &h), KMK_RTP_ERTCP);
  uint8_t v1[40] = {0x40, 0x78};
  CHECK_EQ_INT(kmk_rtp_parse(v1, sizeof v1, &h), KMK_RTP_EVERSION);
  uint8_t shortp[31] = {0x80, 0x78};
  CHECK_EQ_INT(kmk_rtp_open(0, KEY, shortp, sizeof shortp, &h, out, sizeof out), KMK_RTP_ESHORT);
  CHECK_EQ_INT(kmk_rtp_parse(shortp, 11, &h), KMK_RTP_ESHORT);
  uint8_t cc15[40] = {0x8f, 0x78}; /* 15 CSRCs = 72 bytes of header in 40 */
  CHECK_EQ_INT(kmk_rtp_parse(cc15, sizeof cc15, &h), KMK_RTP_ESHORT);
  uint8_t x[14] = {0x90, 0x78}; /* X set, preamble cut */
  CHECK_EQ_INT(kmk_rtp_parse(x, sizeof x, &h), KMK_RTP_ESHORT);
  CHECK_EQ_INT(kmk_rtp_open(0, KEY, NULL, 0, &h, out, sizeof out), KMK_RTP_EARG);
  uint8_t ok[40] = {0x80, 0x78};
  CHECK_EQ_INT(kmk_rtp_open(0, KEY, ok, sizeof ok, &h, out, 2), KMK_RTP_EARG); /* out too small */
  CHECK_EQ_INT(kmk_rtp_mode_from_name("aead_aes256_gcm_rtpsize"), KMK_RTP_AES256_GCM);
  CHECK_EQ_INT(kmk_rtp_mode_from_name("aead_xchacha20_poly1305_rtpsize"),
               KMK_RTP_XCHACHA20_POLY1305);
  CHECK_EQ_INT(kmk_rtp_mode_from_name("xsalsa20_poly1305"), -1);
}

static void test_ipdisc(void) {
  uint8_t req[KMK_IPDISC_LEN];
  kmk_ipdisc_request(0x01020304, req);
  CHECK_EQ_INT(req[0], 0);
  CHECK_EQ_INT(req[1], 1);
  CHECK_EQ_INT(req[3], 70);
  CHECK_EQ_INT(req[7], 4);
  uint8_t resp[KMK_IPDISC_LEN] = {0, 2, 0, 70, 1, 2, 3, 4};
  memcpy(resp + 8, "127.0.0.1", 9);
  resp[72] = 0x1f;
  resp[73] = 0x90;
  char addr[65];
  uint32_t ssrc = 0;
  uint16_t port = 0;
  CHECK_EQ_INT(kmk_ipdisc_parse(resp, sizeof resp, &ssrc, addr, sizeof addr, &port), 0);
  CHECK(strcmp(addr, "127.0.0.1") == 0);
  CHECK_EQ_INT(port, 8080);
  CHECK_EQ_INT(ssrc, 0x01020304);
  CHECK(kmk_ipdisc_parse(resp, 73, &ssrc, addr, sizeof addr, &port) < 0);
  CHECK(kmk_ipdisc_parse(req, sizeof req, &ssrc, addr, sizeof addr, &port) < 0); /* type 1 */
  memset(resp + 8, 0, 64);
  CHECK(kmk_ipdisc_parse(resp, sizeof resp, &ssrc, addr, sizeof addr, &port) < 0); /* empty */
  memset(resp + 8, 'a', 64);
  CHECK_EQ_INT(kmk_ipdisc_parse(resp, sizeof resp, &ssrc, addr, sizeof addr, &port), 0);
  CHECK_EQ_INT(strlen(addr), 64);
  CHECK(kmk_ipdisc_parse(resp, sizeof resp, &ssrc, addr, 10, &port) < 0); /* does not fit */
}

/* ---- FEC vs PLC ---------------------------------------------------------------------------- */

#define FEC_MAX_PKTS 400
static uint8_t g_pkt[FEC_MAX_PKTS][KMK_OPUS_MAX_PACKET];
static int g_len[FEC_MAX_PKTS];

/* SNR in dB of got against ref over one 20 ms frame at 16 kHz */
static double frame_snr(const int16_t *ref, const int16_t *got) {
  double sig = 0, err = 0;
  for (int i = 0; i < 320; i++) {
    double d = (double)ref[i] - got[i];
    sig += (double)ref[i] * ref[i];
    err += d * d;
  }
  return 10 * log10((sig + 1) / (err + 1));
}

static void test_fec_beats_plc(void) {
  /* speech from flite, through the engine's encoder (what the Discord send path uses: 48 kHz
     stereo, VOIP, in-band FEC on, expected loss 10%) */
  pcmbuf sp = {0};
  atomic_int cancel = 0;
  char err[256];
  kmk_tts_voice v = {.voice = "slt"};
  CHECK_EQ_INT(kmk_tts_flite_synth("hello bob, did you see the game last night? it was great",
                                   &v, pb_chunk, &sp, &cancel, err, sizeof err), 0);
  CHECK(sp.n > 16000);
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  CHECK(o != NULL);
  if (!o || sp.n == 0) return;
  CHECK_EQ_INT(kmk_audio_out_push(o, sp.pcm, sp.n, sp.rate), 0);
  CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
  int n = 0;
  const kmk_out_frame *f;
  while ((f = kmk_audio_out_pop(o)) != NULL && n < FEC_MAX_PKTS) {
    memcpy(g_pkt[n], f->data, (size_t)f->len);
    g_len[n++] = f->len;
  }
  kmk_audio_out_free(o);
  free(sp.pcm);
  CHECK(n > 100);
  /* the lossless decode is the reference */
  int16_t(*ref)[320] = calloc((size_t)n, sizeof *ref);
  int16_t tmp[KMK_OPUS_DEC_MAX_SAMPLES];
  kmk_opus_dec *d = kmk_opus_dec_new(NULL, 0);
  for (int k = 0; k < n; k++) {
    CHECK_EQ_INT(kmk_opus_dec_decode(d, g_pkt[k], (size_t)g_len[k], tmp, KMK_OPUS_DEC_MAX_SAMPLES),
                 320);
    memcpy(ref[k], tmp, sizeof ref[k]);
  }
  kmk_opus_dec_free(d);
  /* drop packet k (every 7th frame that is loud enough to be speech): conceal it with PLC, or
     recover it from packet k+1's FEC, each on a decoder that decoded 0..k-1 */
  double sum_fec = 0, sum_plc = 0;
  int tried = 0, fec_better = 0;
  for (int k = 20; k + 1 < n; k += 7) {
    double e = 0;
    for (int i = 0; i < 320; i++) e += (double)ref[k][i] * ref[k][i];
    if (sqrt(e / 320) < 500) continue; /* a pause: nothing to recover */
    double snr[2];
    for (int mode = 0; mode < 2; mode++) {
      kmk_opus_dec *dd = kmk_opus_dec_new(NULL, 0);
      for (int j = 0; j < k; j++)
        kmk_opus_dec_decode(dd, g_pkt[j], (size_t)g_len[j], tmp, KMK_OPUS_DEC_MAX_SAMPLES);
      int got = mode ? kmk_opus_dec_decode_fec(dd, g_pkt[k + 1], (size_t)g_len[k + 1], tmp,
                                               KMK_OPUS_DEC_MAX_SAMPLES)
                     : kmk_opus_dec_decode(dd, NULL, 0, tmp, KMK_OPUS_DEC_MAX_SAMPLES);
      CHECK_EQ_INT(got, 320);
      snr[mode] = frame_snr(ref[k], tmp);
      kmk_opus_dec_free(dd);
    }
    sum_plc += snr[0];
    sum_fec += snr[1];
    fec_better += snr[1] > snr[0];
    tried++;
  }
  free(ref);
  CHECK(tried >= 10);
  if (tried == 0) return;
  double plc = sum_plc / tried, fec = sum_fec / tried;
  printf("  FEC vs PLC over %d dropped speech frames: mean SNR FEC %.1f dB, PLC %.1f dB; FEC "
         "better in %d\n", tried, fec, plc, fec_better);
  /* measured: FEC 29.6 dB, PLC 5.9 dB, FEC better in 18 of 18 frames; with the encoder's FEC
     off, decode_fec falls back to PLC (5.9 dB both, better in 0) and this fails */
  CHECK(fec > 15.0);
  CHECK(fec > plc + 10.0);
  CHECK(fec_better * 10 >= tried * 8);
}

int main(void) {
  RUN(test_round_trip);
  RUN(test_aes_layout);
  RUN(test_ext_padding_csrc);
  RUN(test_malformed);
  RUN(test_ipdisc);
  RUN(test_fec_beats_plc);
  return check_done();
}
