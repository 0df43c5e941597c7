/* test_mls_vec.h - helpers shared by the MLS/DAVE unit tests: load a JSON vector file from
 * KMK_SHARED_DIR "/vectors/mls", hex decoding, suite filtering and pass/skip counting.
 * Header-only, static functions; included by test_mls_*.c and test_dave_*.c only.
 */
#ifndef KMK_TEST_MLS_VEC_H
#define KMK_TEST_MLS_VEC_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MLS_VEC_DIR KMK_SHARED_DIR "/vectors/mls"

static int vec_passed, vec_skipped, vec_failed;

/* Returns the parsed file (caller frees with cJSON_Delete) or NULL after printing SKIP. */
static inline cJSON *vec_load(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", MLS_VEC_DIR, name);
  FILE *f = fopen(path, "rb");
  if (!f) {
    printf("SKIP %s: %s not found (the shared vectors folder is absent)\n", name, path);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    fclose(f);
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  fclose(f);
  cJSON *j = cJSON_Parse(buf);
  free(buf);
  if (!j) printf("SKIP %s: not valid JSON\n", name);
  return j;
}

/* cipher_suite appears as a number or a string in different files. */
static inline int vec_suite(const cJSON *o) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "cipher_suite");
  if (cJSON_IsNumber(s)) return s->valueint;
  if (cJSON_IsString(s)) return atoi(s->valuestring);
  return -1;
}

static inline int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes the hex string field `key` of o into a malloc'd buffer (at least 1 byte allocated). */
static inline uint8_t *vec_hex(const cJSON *o, const char *key, size_t *len) {
  const cJSON *s = key ? cJSON_GetObjectItemCaseSensitive(o, key) : o;
  *len = 0;
  if (!cJSON_IsString(s)) return NULL;
  size_t n = strlen(s->valuestring);
  if (n % 2) return NULL;
  uint8_t *b = malloc(n / 2 + 1);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s->valuestring[2 * i]), lo = hexval(s->valuestring[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(b);
      return NULL;
    }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  *len = n / 2;
  return b;
}

static inline int vec_hex_eq(const cJSON *o, const char *key, const uint8_t *got, size_t got_len) {
  size_t n;
  uint8_t *want = vec_hex(o, key, &n);
  int ok = want && n == got_len && (n == 0 || memcmp(want, got, n) == 0);
  if (!ok) {
    fprintf(stderr, "  mismatch on %s: got ", key ? key : "(value)");
    for (size_t i = 0; i < got_len && i < 48; i++) fprintf(stderr, "%02x", got[i]);
    fprintf(stderr, "\n");
  }
  free(want);
  return ok;
}

static inline double vec_num(const cJSON *o, const char *key) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(s) ? s->valuedouble : -1;
}

static inline void vec_report(const char *what) {
  printf("%s: %d vectors passed, %d skipped (other suites), %d failed\n", what, vec_passed,
         vec_skipped, vec_failed);
  vec_passed = vec_skipped = vec_failed = 0;
}

/* Runs case_fn on every entry of vector file `name` that is for our suite (others are counted as
   skipped), CHECKs each, and reports under `what`. A missing folder skips (see vec_load). */
static inline void vec_run(const char *name, const char *what, int (*case_fn)(const cJSON *)) {
  cJSON *j = vec_load(name);
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (vec_suite(e) != KMK_MLS_SUITE) {
      vec_skipped++;
      continue;
    }
    int ok = case_fn(e);
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
  }
  cJSON_Delete(j);
  vec_report(what);
}

#endif
