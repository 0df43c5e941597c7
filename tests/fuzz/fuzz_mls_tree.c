/* fuzz_mls_tree.c - libFuzzer target for the owned ratchet tree: decode, encode round trip,
 * tree hashes, resolutions, filtered direct paths and the full joiner validation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/mls_group.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kmk_mls_tree t;
  if (kmk_mls_tree_decode(&t, data, size) != 0) return 0;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_tree_encode(&t, &w);
  /* re-encoding strips nothing that decode accepted (trailing blanks are rejected) */
  if (w.err || w.len != size || memcmp(w.buf, data, size) != 0) abort();
  kmk_mls_w_free(&w);
  uint8_t h[32];
  uint32_t res[64];
  (void)kmk_mls_tree_root_hash(&t, h);
  for (uint32_t x = 0; x < kmk_mls_tree_width_of(&t) && x < 64; x++)
    (void)kmk_mls_tree_resolution(&t, x, res, 64);
  for (uint32_t l = 0; l < t.n_leaves && l < 16; l++)
    (void)kmk_mls_tree_filtered_direct_path(&t, l, res, 64);
  kmk_mls_view gid = {(const uint8_t *)"g", 1};
  (void)kmk_mls_tree_validate(&t, gid, NULL);
  kmk_mls_tree_free(&t);
  return 0;
}
