/* test_mls_tree.c - ratchet tree decode/encode, tree hashes, resolutions, parent-hash and leaf
 * signature validation (tree-validation.json, suite 2), and rejection of tampered trees. */
#include "check.h"
#include "kameko/mls_group.h"
#include "test_mls_vec.h"

static int tree_case(const cJSON *e, int *tampered_ok) {
  size_t n, gl;
  uint8_t *bytes = vec_hex(e, "tree", &n), *gid = vec_hex(e, "group_id", &gl);
  kmk_mls_tree t;
  int ok = kmk_mls_tree_decode(&t, bytes, n) == 0;
  if (!ok) {
    free(bytes);
    free(gid);
    return 0;
  }
  const cJSON *hashes = cJSON_GetObjectItem(e, "tree_hashes"), *res = cJSON_GetObjectItem(e, "resolutions");
  ok &= (uint32_t)cJSON_GetArraySize(hashes) == kmk_mls_tree_width_of(&t);
  for (uint32_t x = 0; ok && x < kmk_mls_tree_width_of(&t); x++) {
    uint8_t h[32];
    ok &= kmk_mls_tree_hash(&t, x, h) == 0 && vec_hex_eq(cJSON_GetArrayItem(hashes, (int)x), NULL, h, 32);
    uint32_t r[4096];
    int nr = kmk_mls_tree_resolution(&t, x, r, 4096);
    const cJSON *want = cJSON_GetArrayItem(res, (int)x);
    ok &= nr == cJSON_GetArraySize(want);
    for (int i = 0; ok && i < nr; i++) ok &= (int)r[i] == cJSON_GetArrayItem(want, i)->valueint;
    if (!ok) fprintf(stderr, "  node %u\n", x);
  }
  kmk_mls_view g = {gid, gl};
  uint8_t root[32];
  ok &= kmk_mls_tree_root_hash(&t, root) == 0;
  ok &= kmk_mls_tree_validate(&t, g, root) == 0;
  /* re-encode is byte identical */
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  ok &= kmk_mls_tree_encode(&t, &w) == 0 && w.len == n && memcmp(w.buf, bytes, n) == 0;
  kmk_mls_w_free(&w);
  /* wrong group id breaks the leaf signatures that cover it, wrong tree hash is caught */
  root[0] ^= 1;
  *tampered_ok &= kmk_mls_tree_validate(&t, g, root) == KMK_MLS_ERR_VERIFY;
  /* flip one byte of a parent node's parent_hash (if any) -> parent hash invalid */
  for (uint32_t x = 1; x < kmk_mls_tree_width_of(&t); x += 2) {
    kmk_mls_node *nd = &t.nodes[x];
    if (nd->type == KMK_MLS_NODE_PARENT && nd->parent.encryption_key.len) {
      ((uint8_t *)nd->parent.encryption_key.p)[1] ^= 1;
      *tampered_ok &= kmk_mls_tree_verify_parent_hashes(&t) == KMK_MLS_ERR_INVALID;
      ((uint8_t *)nd->parent.encryption_key.p)[1] ^= 1;
      break;
    }
  }
  ok &= kmk_mls_tree_verify_parent_hashes(&t) == 0;
  kmk_mls_tree_free(&t);
  free(bytes);
  free(gid);
  return ok;
}

static void test_tree_validation_vectors(void) {
  cJSON *j = vec_load("tree-validation.json");
  if (!j) return;
  cJSON *e;
  int tampered_ok = 1;
  cJSON_ArrayForEach(e, j) {
    if (vec_suite(e) != KMK_MLS_SUITE) {
      vec_skipped++;
      continue;
    }
    int ok = tree_case(e, &tampered_ok);
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
  }
  CHECK(tampered_ok);
  cJSON_Delete(j);
  vec_report("tree-validation");
}

static void test_tree_malformed(void) {
  kmk_mls_tree t;
  const uint8_t trailing_blank[] = {0x03, 0x01, 0x01, 0x00}; /* truncated leaf, fails decode */
  CHECK(kmk_mls_tree_decode(&t, trailing_blank, sizeof trailing_blank) != 0);
  const uint8_t empty[] = {0x00};
  CHECK_EQ_INT(kmk_mls_tree_decode(&t, empty, 1), KMK_MLS_ERR_INVALID);
  const uint8_t only_blank[] = {0x01, 0x00};
  CHECK_EQ_INT(kmk_mls_tree_decode(&t, only_blank, 2), KMK_MLS_ERR_INVALID);
  const uint8_t parent_at_leaf[] = {0x05, 0x01, 0x02, 0x00, 0x00, 0x00};
  CHECK(kmk_mls_tree_decode(&t, parent_at_leaf, sizeof parent_at_leaf) != 0);
}

int main(void) {
  RUN(test_tree_validation_vectors);
  RUN(test_tree_malformed);
  return check_done();
}
