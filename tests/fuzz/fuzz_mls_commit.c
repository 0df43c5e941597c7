/* fuzz_mls_commit.c - libFuzzer target for processing outside handshake messages in a joined
 * group: proposal storage and commit processing. The group is the suite-2 passive client of
 * passive-client-handling-commit.json (joined afresh for every input, so inputs are judged
 * alone). Without the shared vectors the target only exercises the decoders. Input: first byte
 * selects the path (even: store the rest as a proposal then process nothing; odd: treat the
 * rest as up to two messages split at a 2-byte length prefix - proposal, then commit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kameko/mls_group.h"

static uint8_t *kp, *welcome, *tree;
static size_t kp_len, welcome_len, tree_len;
static kmk_mls_join_keys keys;
static kmk_mls_external_psk psk;
static int ready = -1;

static uint8_t *hex(const cJSON *o, const char *k, size_t *n) {
  const cJSON *s = cJSON_GetObjectItem(o, k);
  *n = 0;
  if (!cJSON_IsString(s)) return NULL;
  size_t l = strlen(s->valuestring) / 2;
  uint8_t *b = malloc(l + 1);
  for (size_t i = 0; i < l; i++) {
    unsigned v;
    sscanf(s->valuestring + 2 * i, "%2x", &v);
    b[i] = (uint8_t)v;
  }
  *n = l;
  return b;
}

static void load(void) {
  ready = 0;
  FILE *f = fopen(KMK_SHARED_DIR "/vectors/mls/passive-client-handling-commit.json", "rb");
  if (!f) return;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
  buf[n] = 0;
  fclose(f);
  cJSON *j = cJSON_Parse(buf), *e;
  free(buf);
  cJSON_ArrayForEach(e, j) {
    const cJSON *cs = cJSON_GetObjectItem(e, "cipher_suite");
    if ((cJSON_IsString(cs) ? atoi(cs->valuestring) : cs->valueint) != 2) continue;
    size_t l;
    uint8_t *kpm = hex(e, "key_package", &l);
    kp = malloc(l);
    memcpy(kp, kpm + 4, l - 4); /* strip the MLSMessage header */
    kp_len = l - 4;
    free(kpm);
    uint8_t *wm = hex(e, "welcome", &l);
    welcome = wm + 4;
    welcome_len = l - 4;
    tree = hex(e, "ratchet_tree", &tree_len);
    uint8_t *a = hex(e, "init_priv", &l), *b = hex(e, "encryption_priv", &l), *c = hex(e, "signature_priv", &l);
    memcpy(keys.init_priv, a, 32);
    memcpy(keys.encryption_priv, b, 32);
    memcpy(keys.signature_priv, c, 32);
    free(a);
    free(b);
    free(c);
    const cJSON *pe = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "external_psks"), 0);
    if (pe) {
      psk.id = hex(pe, "psk_id", &psk.id_len);
      psk.psk = hex(pe, "psk", &psk.psk_len);
      keys.psks = &psk;
      keys.n_psks = 1;
    }
    keys.key_package = kp;
    keys.key_package_len = kp_len;
    ready = 1;
    break;
  }
  cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (ready < 0) load();
  if (size < 1) return 0;
  kmk_mls_message m;
  (void)kmk_mls_message_decode_all(data + 1, size - 1, &m);
  if (ready != 1) return 0;
  kmk_mls_group g;
  if (kmk_mls_group_join(&g, &keys, welcome, welcome_len, tree, tree_len) != 0) abort();
  kmk_mls_proposal_store store;
  memset(&store, 0, sizeof store);
  int removed;
  if (data[0] % 2 == 0) {
    (void)kmk_mls_group_store_proposal(&g, &store, data + 1, size - 1);
    (void)kmk_mls_group_process_commit(&g, &store, data + 1, size - 1, keys.psks, keys.n_psks, &removed);
  } else if (size >= 3) {
    size_t pl = (size_t)data[1] << 8 | data[2];
    if (pl > size - 3) pl = size - 3;
    (void)kmk_mls_group_store_proposal(&g, &store, data + 3, pl);
    (void)kmk_mls_group_process_commit(&g, &store, data + 3 + pl, size - 3 - pl, keys.psks,
                                       keys.n_psks, &removed);
  }
  kmk_mls_proposal_store_clear(&store);
  kmk_mls_group_free(&g);
  return 0;
}
