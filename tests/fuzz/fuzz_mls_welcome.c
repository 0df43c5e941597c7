/* fuzz_mls_welcome.c - libFuzzer target for joining by Welcome: a bare Welcome from the input is
 * processed against a fixed key package (created once). Almost every input fails early at
 * decode or decryption; the point is that no input crashes or leaks. The input may also carry
 * an external ratchet tree after a 2-byte length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/mls_group.h"

static kmk_mls_key_package_keys keys;
static kmk_mls_bytes kp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!kp.data) {
    const uint8_t id[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    if (kmk_mls_key_package_create(id, sizeof id, 0, &keys, &kp)) abort();
  }
  if (size < 2) return 0;
  size_t wl = ((size_t)data[0] << 8 | data[1]);
  if (wl > size - 2) wl = size - 2;
  const uint8_t *welcome = data + 2, *tree = welcome + wl;
  size_t tl = size - 2 - wl;
  kmk_mls_join_keys jk;
  memset(&jk, 0, sizeof jk);
  jk.key_package = kp.data;
  jk.key_package_len = kp.len;
  memcpy(jk.init_priv, keys.init_priv, 32);
  memcpy(jk.encryption_priv, keys.encryption_priv, 32);
  memcpy(jk.signature_priv, keys.signature_priv, 32);
  kmk_mls_group g;
  if (kmk_mls_group_join(&g, &jk, welcome, wl, tl ? tree : NULL, tl) == 0) kmk_mls_group_free(&g);
  return 0;
}
