/* fuzz_mls_message.c - libFuzzer target for the MLSMessage decoder (PublicMessage,
 * PrivateMessage, Welcome, GroupInfo, KeyPackage). Property: whatever decodes fully re-encodes
 * to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/mls_messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kmk_mls_message m;
  if (kmk_mls_message_decode_all(data, size, &m) != 0) return 0;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_message_encode(&w, &m);
  if (w.err || w.len != size || memcmp(w.buf, data, size) != 0) abort();
  kmk_mls_w_free(&w);
  return 0;
}
