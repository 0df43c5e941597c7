/* fuzz_dave_session.c - libFuzzer target for a DAVE session fed gateway frames: after a valid
 * external sender (op 25), the input is a sequence of frames, each prefixed by a 2-byte length,
 * with transition events mixed in by the first byte of each chunk. No input may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/dave.h"

static uint8_t op25[3 + 2 + 65 + 3];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!op25[2]) {
    uint8_t priv[32], pub[65];
    if (kmk_mls_p256_keygen(priv, pub)) abort();
    op25[0] = 0;
    op25[1] = 1;
    op25[2] = KMK_DAVE_OP_EXTERNAL_SENDER;
    op25[3] = 0x40;
    op25[4] = 65;
    memcpy(op25 + 5, pub, 65);
    op25[70] = 0;
    op25[71] = 1;
    op25[72] = 0;
  }
  kmk_dave_session *s = kmk_dave_session_new(7, 77);
  if (!s) return 0;
  (void)kmk_dave_session_binary(s, op25, sizeof op25, 0);
  size_t off = 0;
  while (off + 3 <= size) {
    uint8_t kind = data[off];
    size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
    off += 3;
    if (len > size - off) len = size - off;
    switch (kind % 4) {
      case 0: (void)kmk_dave_session_binary(s, data + off, len, off); break;
      case 1: (void)kmk_dave_session_prepare_transition(s, (uint16_t)len, kind & 4 ? 0 : 1); break;
      case 2: (void)kmk_dave_session_execute_transition(s, (uint16_t)len, off); break;
      default: {
        uint8_t out[512];
        size_t n;
        if (len <= 400) (void)kmk_dave_session_decrypt(s, kind, data + off, len, out, sizeof out, &n, off);
        break;
      }
    }
    off += len;
    kmk_dave_out_frame f;
    while (kmk_dave_session_pop(s, &f)) kmk_mls_bytes_free(&f.data);
  }
  kmk_dave_session_free(s);
  return 0;
}
