/* fuzz_dave_gateway.c - libFuzzer target for DAVE voice-gateway binary frames (ops 25, 27, 29,
 * 30 decoded down to their MLS structures) and the op-27 list iterators. */
#include <stdint.h>
#include <stdlib.h>

#include "kameko/dave.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kmk_dave_gw_frame f;
  if (kmk_dave_gw_parse(data, size, &f) != 0) return 0;
  if (f.op == KMK_DAVE_OP_PROPOSALS) { /* a validated list iterates without error */
    kmk_mls_r it;
    kmk_mls_r_init(&it, f.list.p, f.list.len);
    kmk_mls_view v;
    while (kmk_mls_r_left(&it))
      if ((f.proposals_op == KMK_DAVE_PROPOSALS_APPEND ? kmk_dave_gw_next_proposal(&it, &v)
                                                       : kmk_dave_gw_next_ref(&it, &v)) != 0)
        abort();
  }
  if (f.op == KMK_DAVE_OP_EXTERNAL_SENDER) {
    kmk_mls_external_sender es;
    (void)kmk_dave_external_sender_parse(f.message.p, f.message.len, &es);
  }
  return 0;
}
