/* fuzz_dave_frame.c - libFuzzer target for the DAVE frame trailer parser and the Opus frame
 * decryptor (fixed key, fresh replay state per input so every input is judged alone). */
#include <stdint.h>
#include <string.h>

#include "kameko/dave.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kmk_dave_frame_info fi;
  (void)kmk_dave_frame_parse(data, size, &fi);
  static const uint8_t base[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  kmk_dave_decryptor d;
  kmk_dave_decryptor_init(&d);
  kmk_dave_decryptor_set_key(&d, base, sizeof base, 0);
  uint8_t out[4096];
  size_t n;
  if (size <= sizeof out) (void)kmk_dave_decrypt_opus(&d, data, size, out, sizeof out, &n, 0);
  kmk_dave_decryptor_wipe(&d);
  uint64_t v;
  (void)kmk_dave_uleb128_read(data, size, &v);
  return 0;
}
