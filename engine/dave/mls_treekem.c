/* mls_treekem.c - owns TreeKEM on the receiving side (RFC 9420 sections 7.4-7.6, 12.4.2):
 * merging a committer's UpdatePath into the ratchet tree (blank the direct path, install the new
 * parent nodes, check the parent-hash chain up from the leaf and the leaf's signature),
 * decrypting our path secret from the UpdatePathNode that covers us, and deriving the node keys
 * above it and the commit secret. Not thread-safe per tree; secrets wiped after use.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls_group.h"

static int in_subtree(uint32_t root, uint32_t y) {
  uint32_t span = (1u << kmk_mls_tree_level(root)) - 1;
  return y + span >= root && y <= root + span;
}

/* ParentHash of parent node p as seen from its child `child`: Hash(ParentHashInput{p.key,
 * p.parent_hash, tree hash of the other child}). */
static int parent_hash_of(const kmk_mls_tree *t, uint32_t p, uint32_t child, uint8_t out[KMK_MLS_NH]) {
  const kmk_mls_node *P = &t->nodes[p];
  uint32_t sib = child < p ? (uint32_t)kmk_mls_tree_right(p) : (uint32_t)kmk_mls_tree_left(p);
  uint8_t sh[KMK_MLS_NH];
  int rc = kmk_mls_tree_hash(t, sib, sh);
  if (rc) return rc;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, P->parent.encryption_key.p, P->parent.encryption_key.len);
  kmk_mls_w_vec(&w, P->parent.parent_hash.p, P->parent.parent_hash.len);
  kmk_mls_w_vec(&w, sh, sizeof sh);
  rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, out);
  kmk_mls_w_free(&w);
  return rc;
}

/* Installs a parent node with the given key and parent hash and no unmerged leaves. */
static int set_parent(kmk_mls_tree *t, uint32_t x, kmk_mls_view key, const uint8_t *ph, size_t ph_len) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, key.p, key.len);
  kmk_mls_w_vec(&w, ph, ph_len);
  kmk_mls_w_vec(&w, NULL, 0);
  kmk_mls_node *n = &t->nodes[x];
  kmk_mls_bytes enc = {0};
  int rc = kmk_mls_w_finish(&w, &enc);
  if (rc) return rc;
  kmk_mls_bytes_free(&n->enc);
  memset(n, 0, sizeof *n);
  n->enc = enc;
  n->type = KMK_MLS_NODE_PARENT;
  kmk_mls_r r, sub;
  kmk_mls_r_init(&r, enc.data, enc.len);
  kmk_mls_view *f[3] = {&n->parent.encryption_key, &n->parent.parent_hash, &n->parent.unmerged_leaves};
  for (int i = 0; i < 3; i++) {
    if (kmk_mls_r_vec(&r, &sub)) return KMK_MLS_ERR_DECODE;
    f[i]->p = sub.p;
    f[i]->len = sub.len;
  }
  return 0;
}

static int set_leaf(kmk_mls_tree *t, uint32_t leaf, const kmk_mls_leaf_node *ln) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_leaf_node_encode(&w, ln);
  kmk_mls_bytes enc = {0};
  int rc = kmk_mls_w_finish(&w, &enc);
  if (rc) return rc;
  kmk_mls_node *n = &t->nodes[2 * leaf];
  kmk_mls_bytes_free(&n->enc);
  memset(n, 0, sizeof *n);
  n->enc = enc;
  kmk_mls_r r;
  kmk_mls_r_init(&r, enc.data, enc.len);
  if ((rc = kmk_mls_leaf_node_decode(&r, &n->leaf))) return rc;
  n->type = KMK_MLS_NODE_LEAF;
  return 0;
}

static void blank(kmk_mls_tree *t, uint32_t x) {
  kmk_mls_bytes_free(&t->nodes[x].enc);
  memset(&t->nodes[x], 0, sizeof t->nodes[x]);
}

int kmk_mls_tree_set_leaf(kmk_mls_tree *t, uint32_t leaf, const kmk_mls_leaf_node *ln) {
  if (leaf >= t->n_leaves) return KMK_MLS_ERR_ARG;
  return set_leaf(t, leaf, ln);
}

int kmk_mls_tree_install_path(kmk_mls_tree *t, uint32_t leaf, const kmk_mls_view *keys, int n,
                              uint8_t leaf_parent_hash[KMK_MLS_NH]) {
  uint32_t fdp[32], dp[32];
  int nf = kmk_mls_tree_filtered_direct_path(t, leaf, fdp, 32);
  int nd = kmk_mls_tree_direct_path(2 * leaf, t->n_leaves, dp, 32);
  if (nf < 0 || nd < 0 || nf != n) return KMK_MLS_ERR_INVALID;
  /* Works in place; a failure leaves the tree unusable, so callers work on a copy. */
  for (int i = 0; i < nd; i++) blank(t, dp[i]);
  int rc = 0;
  for (int i = 0; i < n && !rc; i++) rc = set_parent(t, fdp[i], keys[i], NULL, 0);
  /* parent hashes, top down: the root-most node keeps an empty parent hash; fdp[i] links to
   * fdp[i+1] through the child of fdp[i+1] towards fdp[i] */
  uint8_t ph[KMK_MLS_NH];
  for (int i = n - 2; i >= 0 && !rc; i--) {
    uint32_t up = fdp[i + 1], child = (uint32_t)kmk_mls_tree_left(up);
    if (!in_subtree(child, fdp[i])) child = (uint32_t)kmk_mls_tree_right(up);
    rc = parent_hash_of(t, up, child, ph);
    if (!rc) rc = set_parent(t, fdp[i], keys[i], ph, KMK_MLS_NH);
  }
  if (!rc && n > 0) {
    uint32_t up = fdp[0], child = (uint32_t)kmk_mls_tree_left(up);
    if (!in_subtree(child, 2 * leaf)) child = (uint32_t)kmk_mls_tree_right(up);
    rc = parent_hash_of(t, up, child, leaf_parent_hash);
  }
  return rc;
}

int kmk_mls_tree_merge_update_path(kmk_mls_tree *t, uint32_t sender,
                                   const kmk_mls_update_path *path, kmk_mls_view group_id) {
  if (sender >= t->n_leaves || t->nodes[2 * sender].type != KMK_MLS_NODE_LEAF) return KMK_MLS_ERR_INVALID;
  if (path->leaf.source != KMK_MLS_LEAF_COMMIT) return KMK_MLS_ERR_INVALID;
  uint32_t fdp[32];
  int n = kmk_mls_tree_filtered_direct_path(t, sender, fdp, 32);
  if (n < 0) return KMK_MLS_ERR_INVALID;
  /* the path carries one node per filtered direct path entry */
  kmk_mls_update_path_node pn[32];
  kmk_mls_r it;
  kmk_mls_r_init(&it, path->nodes.p, path->nodes.len);
  int count = 0;
  while (kmk_mls_r_left(&it)) {
    if (count == 32 || kmk_mls_path_nodes_next(&it, &pn[count])) return KMK_MLS_ERR_INVALID;
    count++;
  }
  if (count != n) return KMK_MLS_ERR_INVALID;
  kmk_mls_view keys[32] = {{NULL, 0}};
  for (int i = 0; i < n; i++) keys[i] = pn[i].encryption_key;
  uint8_t ph[KMK_MLS_NH];
  int rc = kmk_mls_tree_install_path(t, sender, keys, n, ph);
  if (rc) return rc;
  /* the new leaf's parent_hash must match the lowest path node's hash */
  if (n > 0 ? path->leaf.parent_hash.len != KMK_MLS_NH || memcmp(path->leaf.parent_hash.p, ph, KMK_MLS_NH)
            : path->leaf.parent_hash.len != 0)
    return KMK_MLS_ERR_VERIFY;
  /* the leaf's signature (LeafNodeTBS with group id and leaf index) */
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_leaf_node_tbs_encode(&w, &path->leaf, group_id, sender);
  rc = w.err ? w.err
             : kmk_mls_verify_with_label(path->leaf.signature_key.p, path->leaf.signature_key.len,
                                         "LeafNodeTBS", w.buf, w.len, path->leaf.signature.p,
                                         path->leaf.signature.len);
  kmk_mls_w_free(&w);
  if (rc) return rc == KMK_MLS_ERR_CRYPTO ? KMK_MLS_ERR_VERIFY : rc;
  return set_leaf(t, sender, &path->leaf);
}

int kmk_mls_tree_derive_path(const kmk_mls_tree *t, uint32_t sender, uint32_t node,
                             const uint8_t path_secret[KMK_MLS_NH], kmk_mls_path_key *path_keys,
                             uint8_t commit_secret[KMK_MLS_NH]) {
  uint32_t fdp[32];
  int n = kmk_mls_tree_filtered_direct_path(t, sender, fdp, 32);
  if (n < 0) return n;
  int start = -1;
  for (int i = 0; i < n; i++)
    if (fdp[i] == node) start = i;
  if (start < 0) return KMK_MLS_ERR_INVALID;
  uint8_t secret[KMK_MLS_NH], ns[KMK_MLS_NH], priv[KMK_MLS_PRIV], pub[KMK_MLS_PUB];
  memcpy(secret, path_secret, KMK_MLS_NH);
  int rc = 0;
  for (int i = start; i < n && !rc; i++) {
    const kmk_mls_node *P = &t->nodes[fdp[i]];
    rc = kmk_mls_derive_secret(secret, KMK_MLS_NH, "node", ns);
    if (!rc) rc = kmk_mls_hpke_derive_key_pair(ns, KMK_MLS_NH, priv, pub);
    if (!rc && (P->type != KMK_MLS_NODE_PARENT || P->parent.encryption_key.len != KMK_MLS_PUB ||
                memcmp(P->parent.encryption_key.p, pub, KMK_MLS_PUB)))
      rc = KMK_MLS_ERR_INVALID;
    if (!rc && path_keys) {
      path_keys[fdp[i]].present = 1;
      memcpy(path_keys[fdp[i]].priv, priv, KMK_MLS_PRIV);
    }
    if (!rc) rc = kmk_mls_derive_secret(secret, KMK_MLS_NH, "path", secret);
  }
  if (!rc && commit_secret) memcpy(commit_secret, secret, KMK_MLS_NH);
  OPENSSL_cleanse(secret, sizeof secret);
  OPENSSL_cleanse(ns, sizeof ns);
  OPENSSL_cleanse(priv, sizeof priv);
  return rc;
}

int kmk_mls_tree_decrypt_path(const kmk_mls_tree *t, uint32_t sender, uint32_t me,
                              const kmk_mls_update_path *path, const uint8_t *gc, size_t gc_len,
                              const uint8_t leaf_priv[KMK_MLS_PRIV],
                              const kmk_mls_path_key *path_keys, const uint32_t *joiners,
                              uint32_t n_joiners, uint8_t path_secret[KMK_MLS_NH],
                              uint32_t *node_out) {
  uint32_t fdp[32];
  int n = kmk_mls_tree_filtered_direct_path(t, sender, fdp, 32);
  if (n < 0) return n;
  kmk_mls_r it;
  kmk_mls_r_init(&it, path->nodes.p, path->nodes.len);
  uint32_t *res = malloc(4096 * sizeof *res);
  if (!res) return KMK_MLS_ERR_NOMEM;
  int rc = KMK_MLS_ERR_INVALID;
  for (int i = 0; i < n; i++) {
    kmk_mls_update_path_node pn;
    if (kmk_mls_path_nodes_next(&it, &pn)) break;
    uint32_t up = fdp[i], copath = (uint32_t)kmk_mls_tree_left(up);
    if (in_subtree(copath, 2 * sender)) copath = (uint32_t)kmk_mls_tree_right(up);
    if (!in_subtree(copath, 2 * me)) continue;
    int nr = kmk_mls_tree_resolution(t, copath, res, 4096);
    if (nr < 0) {
      rc = nr;
      break;
    }
    /* leaves added by this commit get the Welcome, not a ciphertext */
    int kept = 0;
    for (int k = 0; k < nr; k++) {
      int joiner = 0;
      for (uint32_t j = 0; j < n_joiners; j++) joiner |= res[k] == 2 * joiners[j];
      if (!joiner) res[kept++] = res[k];
    }
    nr = kept;
    kmk_mls_r ct_it;
    kmk_mls_r_init(&ct_it, pn.secrets.p, pn.secrets.len);
    for (int k = 0; k < nr; k++) {
      kmk_mls_hpke_ct ct;
      if (kmk_mls_hpke_ct_decode(&ct_it, &ct)) break;
      const uint8_t *priv = NULL;
      if (res[k] == 2 * me) priv = leaf_priv;
      else if (res[k] % 2 && path_keys && path_keys[res[k]].present && in_subtree(res[k], 2 * me))
        priv = path_keys[res[k]].priv;
      if (!priv) continue;
      if (ct.ciphertext.len != KMK_MLS_NH + KMK_MLS_NT) break;
      rc = kmk_mls_decrypt_with_label(priv, "UpdatePathNode", gc, gc_len, ct.kem_output.p,
                                      ct.kem_output.len, ct.ciphertext.p, ct.ciphertext.len,
                                      path_secret);
      if (!rc && node_out) *node_out = up;
      break;
    }
    break;
  }
  free(res);
  return rc;
}

/* ---------- membership changes (section 12.1) ---------- */

/* Rewrites parent x with leaf l appended to its unmerged leaves. */
static int add_unmerged(kmk_mls_tree *t, uint32_t x, uint32_t l) {
  kmk_mls_node *n = &t->nodes[x];
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, n->parent.encryption_key.p, n->parent.encryption_key.len);
  kmk_mls_w_vec(&w, n->parent.parent_hash.p, n->parent.parent_hash.len);
  size_t m = kmk_mls_w_begin(&w);
  kmk_mls_w_raw(&w, n->parent.unmerged_leaves.p, n->parent.unmerged_leaves.len);
  kmk_mls_w_u32(&w, l);
  kmk_mls_w_end(&w, m);
  kmk_mls_bytes enc = {0};
  int rc = kmk_mls_w_finish(&w, &enc);
  if (rc) return rc;
  kmk_mls_bytes_free(&n->enc);
  n->enc = enc;
  kmk_mls_r r, sub;
  kmk_mls_r_init(&r, enc.data, enc.len);
  kmk_mls_view *f[3] = {&n->parent.encryption_key, &n->parent.parent_hash, &n->parent.unmerged_leaves};
  for (int i = 0; i < 3; i++) {
    if (kmk_mls_r_vec(&r, &sub)) return KMK_MLS_ERR_DECODE;
    f[i]->p = sub.p;
    f[i]->len = sub.len;
  }
  return 0;
}

int kmk_mls_tree_add_leaf(kmk_mls_tree *t, const kmk_mls_leaf_node *leaf, uint32_t *index) {
  uint32_t l = 0;
  while (l < t->n_leaves && t->nodes[2 * l].type != KMK_MLS_NODE_BLANK) l++;
  if (l == t->n_leaves) { /* full: double the tree to the right */
    if (t->n_leaves >= 4096) return KMK_MLS_ERR_UNSUPPORTED;
    uint32_t old_w = kmk_mls_tree_width(t->n_leaves), new_w = kmk_mls_tree_width(2 * t->n_leaves);
    kmk_mls_node *nn = realloc(t->nodes, new_w * sizeof *nn);
    if (!nn) return KMK_MLS_ERR_NOMEM;
    memset(nn + old_w, 0, (new_w - old_w) * sizeof *nn);
    /* views point into each node's own heap buffer, so moving the structs is safe */
    t->nodes = nn;
    t->n_leaves *= 2;
  }
  uint32_t dp[32];
  int nd = kmk_mls_tree_direct_path(2 * l, t->n_leaves, dp, 32);
  int rc = nd < 0 ? KMK_MLS_ERR_ARG : 0;
  for (int i = 0; i < nd && !rc; i++)
    if (t->nodes[dp[i]].type == KMK_MLS_NODE_PARENT) rc = add_unmerged(t, dp[i], l);
  if (!rc) rc = set_leaf(t, l, leaf);
  if (!rc && index) *index = l;
  return rc;
}

int kmk_mls_tree_update_leaf(kmk_mls_tree *t, uint32_t l, const kmk_mls_leaf_node *leaf) {
  if (l >= t->n_leaves || t->nodes[2 * l].type != KMK_MLS_NODE_LEAF) return KMK_MLS_ERR_INVALID;
  uint32_t dp[32];
  int nd = kmk_mls_tree_direct_path(2 * l, t->n_leaves, dp, 32);
  for (int i = 0; i < nd; i++) blank(t, dp[i]);
  return set_leaf(t, l, leaf);
}

int kmk_mls_tree_remove_leaf(kmk_mls_tree *t, uint32_t l) {
  if (l >= t->n_leaves || t->nodes[2 * l].type != KMK_MLS_NODE_LEAF) return KMK_MLS_ERR_INVALID;
  uint32_t dp[32];
  int nd = kmk_mls_tree_direct_path(2 * l, t->n_leaves, dp, 32);
  blank(t, 2 * l);
  for (int i = 0; i < nd; i++) blank(t, dp[i]);
  /* truncate: drop the right half while it is entirely blank */
  while (t->n_leaves > 1) {
    uint32_t half = t->n_leaves / 2, w = kmk_mls_tree_width(t->n_leaves), empty = 1;
    for (uint32_t x = 2 * half; x < w && empty; x++) empty = t->nodes[x].type == KMK_MLS_NODE_BLANK;
    if (!empty) break;
    blank(t, kmk_mls_tree_root(t->n_leaves)); /* the old root becomes the right half's edge */
    t->n_leaves = half;
  }
  return 0;
}
