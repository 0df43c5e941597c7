/* fuzz_dvoice_msg.c - libFuzzer target for the Discord voice gateway's messages: the JSON text
 * frame parser (every op's fields) and the binary frame header. Any input: no crash, no leak,
 * strings NUL-terminated within their fields, counts within bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/dvoice_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kmk_dvoice_msg m;
  if (kmk_dvoice_msg_parse((const char *)data, size, &m) == 0) {
    if (m.n_ids < 0 || m.n_ids > KMK_DVMSG_MAX_IDS) abort();
    if (strnlen(m.ip, sizeof m.ip) == sizeof m.ip) abort();
    if (strnlen(m.user_id, sizeof m.user_id) == sizeof m.user_id) abort();
    for (int i = 0; i < m.n_ids; i++)
      if (strnlen(m.user_ids[i], KMK_DVMSG_ID) == KMK_DVMSG_ID) abort();
  }
  uint16_t seq;
  uint8_t op;
  const uint8_t *p;
  size_t n;
  if (kmk_dvoice_bin_parse(data, size, &seq, &op, &p, &n) == 0 && n + 3 != size) abort();
  return 0;
}
