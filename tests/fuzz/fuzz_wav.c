/* fuzz_wav.c - libFuzzer target for the WAV parser (kmk_wav_read_mem): any bytes in, no crash,
 * and a success must describe a buffer whose size matches frames * channels. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kameko/log.h"
#include "kameko/wav.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    kmk_log_set_level(KMK_LOG_ERROR);
    quiet = 1;
  }
  kmk_wav w;
  char err[256];
  if (kmk_wav_read_mem(data, size, &w, err, sizeof err) == 0) {
    if (w.channels < 1 || w.channels > 8 || w.rate < 8000 || w.rate > 192000) abort();
    volatile float sum = 0;
    for (size_t i = 0; i < w.frames * (size_t)w.channels; i++) sum += w.samples[i];
    (void)sum;
    kmk_wav_free(&w);
  }
  return 0;
}
