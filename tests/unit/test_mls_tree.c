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

/* tree-operations.json is suite 1 only, but suite 1 also hashes with SHA-256 and the tree
 * operations do not depend on the signature scheme, so every case applies. */
static void test_tree_operations_vectors(void) {
  cJSON *j = vec_load("tree-operations.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    size_t bn, an, pn;
    uint8_t *before = vec_hex(e, "tree_before", &bn), *after = vec_hex(e, "tree_after", &an),
            *prop = vec_hex(e, "proposal", &pn);
    const cJSON *snd = cJSON_GetObjectItem(e, "proposal_sender");
    uint32_t sender = (uint32_t)(cJSON_IsString(snd) ? strtoul(snd->valuestring, NULL, 10) : snd->valuedouble);
    kmk_mls_tree t;
    int ok = kmk_mls_tree_decode(&t, before, bn) == 0;
    uint8_t h[32];
    ok = ok && kmk_mls_tree_root_hash(&t, h) == 0 && vec_hex_eq(e, "tree_hash_before", h, 32);
    kmk_mls_r r;
    kmk_mls_proposal p;
    kmk_mls_r_init(&r, prop, pn);
    ok = ok && kmk_mls_proposal_decode(&r, &p) == 0 && kmk_mls_r_done(&r) == 0;
    if (ok) {
      uint32_t idx;
      if (p.type == KMK_MLS_PROP_ADD) ok = kmk_mls_tree_add_leaf(&t, &p.add.leaf, &idx) == 0;
      else if (p.type == KMK_MLS_PROP_UPDATE) ok = kmk_mls_tree_update_leaf(&t, sender, &p.update) == 0;
      else if (p.type == KMK_MLS_PROP_REMOVE) ok = kmk_mls_tree_remove_leaf(&t, p.removed) == 0;
      else ok = 0;
    }
    kmk_mls_w w;
    kmk_mls_w_init(&w);
    ok = ok && kmk_mls_tree_encode(&t, &w) == 0 && w.len == an && memcmp(w.buf, after, an) == 0;
    ok = ok && kmk_mls_tree_root_hash(&t, h) == 0 && vec_hex_eq(e, "tree_hash_after", h, 32);
    kmk_mls_w_free(&w);
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
    if (t.nodes) kmk_mls_tree_free(&t);
    free(before);
    free(after);
    free(prop);
  }
  cJSON_Delete(j);
  vec_report("tree-operations (suite 1, SHA-256 tree hashes)");
}

/* Grow from one leaf to five (two doublings), remove down to one (two truncations). */
static void test_grow_and_truncate(void) {
  kmk_mls_bytes kps[5];
  kmk_mls_key_package k[5];
  memset(kps, 0, sizeof kps);
  for (int i = 0; i < 5; i++) {
    kmk_mls_key_package_keys keys;
    uint8_t id[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)i};
    CHECK_EQ_INT(kmk_mls_key_package_create(id, 8, 0, &keys, &kps[i]), 0);
    kmk_mls_r r;
    kmk_mls_r_init(&r, kps[i].data, kps[i].len);
    CHECK_EQ_INT(kmk_mls_key_package_decode(&r, &k[i]), 0);
  }
  /* a one-leaf tree: optional<Node>{present, leaf, LeafNode} */
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  size_t m = kmk_mls_w_begin(&w);
  kmk_mls_w_u8(&w, 1);
  kmk_mls_w_u8(&w, 1);
  kmk_mls_leaf_node_encode(&w, &k[0].leaf);
  kmk_mls_w_end(&w, m);
  kmk_mls_tree t;
  CHECK_EQ_INT(kmk_mls_tree_decode(&t, w.buf, w.len), 0);
  kmk_mls_w_free(&w);
  CHECK_EQ_INT(t.n_leaves, 1);
  uint32_t idx;
  for (int i = 1; i < 5; i++) {
    CHECK_EQ_INT(kmk_mls_tree_add_leaf(&t, &k[i].leaf, &idx), 0);
    CHECK_EQ_INT(idx, i);
  }
  CHECK_EQ_INT(t.n_leaves, 8);
  kmk_mls_view gid = {(const uint8_t *)"g", 1};
  CHECK_EQ_INT(kmk_mls_tree_verify_leaf_signatures(&t, gid), 0);
  CHECK_EQ_INT(kmk_mls_tree_remove_leaf(&t, 4), 0);
  CHECK_EQ_INT(t.n_leaves, 4);
  CHECK_EQ_INT(kmk_mls_tree_remove_leaf(&t, 1), 0);
  CHECK_EQ_INT(t.n_leaves, 4); /* leaf 3 still there */
  CHECK_EQ_INT(kmk_mls_tree_add_leaf(&t, &k[4].leaf, &idx), 0);
  CHECK_EQ_INT(idx, 1); /* leftmost blank */
  CHECK_EQ_INT(kmk_mls_tree_remove_leaf(&t, 3), 0);
  CHECK_EQ_INT(kmk_mls_tree_remove_leaf(&t, 2), 0);
  CHECK_EQ_INT(t.n_leaves, 2);
  CHECK_EQ_INT(kmk_mls_tree_remove_leaf(&t, 1), 0);
  CHECK_EQ_INT(t.n_leaves, 1);
  CHECK_EQ_INT(kmk_mls_tree_remove_leaf(&t, 3), KMK_MLS_ERR_INVALID);
  kmk_mls_w_init(&w);
  CHECK_EQ_INT(kmk_mls_tree_encode(&t, &w), 0);
  kmk_mls_tree t2;
  CHECK_EQ_INT(kmk_mls_tree_decode(&t2, w.buf, w.len), 0);
  uint8_t h1[32], h2[32];
  CHECK(kmk_mls_tree_root_hash(&t, h1) == 0 && kmk_mls_tree_root_hash(&t2, h2) == 0 && memcmp(h1, h2, 32) == 0);
  kmk_mls_w_free(&w);
  kmk_mls_tree_free(&t2);
  kmk_mls_tree_free(&t);
  for (int i = 0; i < 5; i++) kmk_mls_bytes_free(&kps[i]);
}

int main(void) {
  RUN(test_grow_and_truncate);
  RUN(test_tree_operations_vectors);
  RUN(test_tree_validation_vectors);
  RUN(test_tree_malformed);
  return check_done();
}
