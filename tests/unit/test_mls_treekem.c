/* test_mls_treekem.c - TreeKEM receiving side (treekem.json, suite 2): merge every UpdatePath
 * into the tree (tree hash after, parent-hash chain, leaf signature), decrypt each receiver's
 * path secret with its leaf key or the parent keys it holds, derive the commit secret. */
#include "check.h"
#include "kameko/mls_group.h"
#include "test_mls_vec.h"

static int treekem_case(const cJSON *e) {
  size_t tn, gl, cl, n;
  uint8_t *tree_bytes = vec_hex(e, "ratchet_tree", &tn), *gid = vec_hex(e, "group_id", &gl),
          *cth = vec_hex(e, "confirmed_transcript_hash", &cl);
  const cJSON *ep = cJSON_GetObjectItem(e, "epoch");
  uint64_t epoch = cJSON_IsString(ep) ? strtoull(ep->valuestring, NULL, 10) : (uint64_t)ep->valuedouble;
  kmk_mls_view group_id = {gid, gl};
  kmk_mls_tree base;
  int ok = kmk_mls_tree_decode(&base, tree_bytes, tn) == 0;
  if (!ok) goto out0;
  ok = kmk_mls_tree_validate(&base, group_id, NULL) == 0;
  uint32_t width = kmk_mls_tree_width_of(&base);
  const cJSON *lps = cJSON_GetObjectItem(e, "leaves_private");
  int nlp = cJSON_GetArraySize(lps);
  /* private state of every listed leaf: leaf key and the parent keys from its path secrets */
  kmk_mls_path_key *keys = calloc((size_t)nlp * width, sizeof *keys);
  uint8_t (*leaf_priv)[32] = calloc((size_t)nlp, 32);
  for (int i = 0; ok && i < nlp; i++) {
    const cJSON *lp = cJSON_GetArrayItem(lps, i);
    uint8_t *p = vec_hex(lp, "encryption_priv", &n);
    memcpy(leaf_priv[i], p, 32);
    free(p);
    const cJSON *ps;
    cJSON_ArrayForEach(ps, cJSON_GetObjectItem(lp, "path_secrets")) {
      uint32_t node = (uint32_t)vec_num(ps, "node");
      uint8_t *sec = vec_hex(ps, "path_secret", &n), ns[32], pub[65];
      kmk_mls_path_key *k = &keys[(size_t)i * width + node];
      ok &= kmk_mls_derive_secret(sec, 32, "node", ns) == 0 &&
            kmk_mls_hpke_derive_key_pair(ns, 32, k->priv, pub) == 0 &&
            base.nodes[node].type == KMK_MLS_NODE_PARENT &&
            memcmp(base.nodes[node].parent.encryption_key.p, pub, 65) == 0;
      k->present = 1;
      free(sec);
    }
  }
  const cJSON *up;
  cJSON_ArrayForEach(up, cJSON_GetObjectItem(e, "update_paths")) {
    if (!ok) break;
    uint32_t sender = (uint32_t)vec_num(up, "sender");
    size_t pl;
    uint8_t *pbytes = vec_hex(up, "update_path", &pl);
    kmk_mls_r r;
    kmk_mls_update_path path;
    kmk_mls_r_init(&r, pbytes, pl);
    ok = kmk_mls_update_path_decode(&r, &path) == 0 && kmk_mls_r_done(&r) == 0;
    kmk_mls_tree t;
    ok = ok && kmk_mls_tree_decode(&t, tree_bytes, tn) == 0;
    int rc = ok ? kmk_mls_tree_merge_update_path(&t, sender, &path, group_id) : -99;
    if (rc) fprintf(stderr, "  merge from %u: %d\n", sender, rc);
    uint8_t th[32];
    ok = ok && rc == 0 && kmk_mls_tree_root_hash(&t, th) == 0 && vec_hex_eq(up, "tree_hash_after", th, 32);
    ok = ok && kmk_mls_tree_verify_parent_hashes(&t) == 0;
    kmk_mls_bytes gc = {0};
    ok = ok && kmk_mls_group_context_encode(gid, gl, epoch, th, 32, cth, cl, NULL, 0, &gc) == 0;
    for (int i = 0; ok && i < nlp; i++) {
      const cJSON *lp = cJSON_GetArrayItem(lps, i);
      uint32_t me = (uint32_t)vec_num(lp, "index");
      if (me == sender) continue;
      uint8_t ps[32], commit[32];
      uint32_t node = 0;
      rc = kmk_mls_tree_decrypt_path(&t, sender, me, &path, gc.data, gc.len, leaf_priv[i],
                                     &keys[(size_t)i * width], NULL, 0, ps, &node);
      if (rc) fprintf(stderr, "  decrypt %u->%u: %d\n", sender, me, rc);
      ok = rc == 0 && vec_hex_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(up, "path_secrets"), (int)me), NULL, ps, 32) &&
           kmk_mls_tree_derive_path(&t, sender, node, ps, NULL, commit) == 0 &&
           vec_hex_eq(up, "commit_secret", commit, 32);
    }
    kmk_mls_bytes_free(&gc);
    kmk_mls_tree_free(&t);
    free(pbytes);
  }
  free(keys);
  free(leaf_priv);
  kmk_mls_tree_free(&base);
out0:
  free(tree_bytes);
  free(gid);
  free(cth);
  return ok;
}

static void test_treekem_vectors(void) {
  vec_run("treekem.json", "treekem", treekem_case);
}

int main(void) {
  RUN(test_treekem_vectors);
  return check_done();
}
