/* fuzz_rtp.c - libFuzzer target for what arrives on the Discord voice UDP socket: the RTP parser,
 * both AEAD opens on the raw bytes (tag failures), the same bytes sealed with a known key (so the
 * extension/padding stripping after a successful decrypt is reached) and opened again, IP
 * discovery responses, and the jitter buffer fed with sequence numbers taken from the input.
 * Any input: no crash, no leak, a payload never longer than its plaintext. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/jitter.h"
#include "kameko/rtp.h"

static const uint8_t KEY[32] = {7};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[4096], pkt[4096];
  static kmk_jitter jb;
  kmk_rtp_header h;
  if (size > 2000) return 0;
  kmk_rtp_parse(data, size, &h);
  for (int m = 0; m < 2; m++) {
    int l = kmk_rtp_open(m, KEY, data, size, &h, out, sizeof out);
    if (l > (int)size) abort();
  }
  /* a valid seal of the input: clear part = what the parser says, the rest plaintext */
  if (kmk_rtp_parse(data, size, &h) == 0) {
    for (int m = 0; m < 2; m++) {
      int n = kmk_rtp_seal_raw(m, KEY, data, h.aad_len, 42, data + h.aad_len, size - h.aad_len,
                               pkt, sizeof pkt);
      if (n < 0) continue;
      int l = kmk_rtp_open(m, KEY, pkt, (size_t)n, &h, out, sizeof out);
      if (l == KMK_RTP_EAUTH || l > (int)(size - h.aad_len)) abort();
    }
  }
  char addr[65];
  uint16_t port;
  uint32_t ssrc;
  if (kmk_ipdisc_parse(data, size, &ssrc, addr, sizeof addr, &port) == 0 && strlen(addr) > 64)
    abort();
  /* jitter: each 3 bytes = (seq hi, seq lo, time step) */
  kmk_jitter_init(&jb, 1 + (size ? data[0] % 6 : 0), 60);
  uint64_t t = 0;
  for (size_t i = 0; i + 3 <= size; i += 3) {
    uint16_t seq = (uint16_t)(data[i] << 8 | data[i + 1]);
    t += data[i + 2] % 50;
    kmk_jitter_put(&jb, seq, data + i, 3, t);
    const uint8_t *d;
    size_t l;
    int r, guard = 0;
    while ((r = kmk_jitter_pop(&jb, t, &d, &l)) != KMK_JITTER_NONE)
      if (++guard > 100000 || (r == KMK_JITTER_PACKET && l != 3)) abort();
    if (kmk_jitter_buffered(&jb) > KMK_JITTER_SLOTS) abort();
  }
  kmk_jitter_flush(&jb);
  const uint8_t *d;
  size_t l;
  int guard = 0;
  while (kmk_jitter_pop(&jb, t, &d, &l) != KMK_JITTER_NONE)
    if (++guard > 100) abort();
  return 0;
}
