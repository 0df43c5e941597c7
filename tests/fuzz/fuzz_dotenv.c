/* libFuzzer target: the .env parser (a file users and tools write by hand). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/config.h"

static int sink(void *ud, const char *k, const char *v) {
  size_t *n = ud;
  *n += strlen(k) + strlen(v);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  size_t n = 0;
  char err[256];
  kmk_dotenv_parse(text, sink, &n, err, sizeof err);
  free(text);
  return 0;
}
