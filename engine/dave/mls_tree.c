/* mls_tree.c - owns the in-memory ratchet tree: decoding and encoding RatchetTree, tree hashes
 * (RFC 9420 section 7.8), resolutions and filtered direct paths (4.1), parent-hash verification
 * (7.9.2), leaf signature checks and the joiner's tree validation (12.4.3.1).
 * Each node owns its encoding; views point into it. Not thread-safe per tree; no globals.
 */
#include <stdlib.h>
#include <string.h>

#include "kameko/mls_group.h"

#define MAX_RES 4096 /* resolution size cap: the largest tree we accept has 4096 leaves */

static void node_clear(kmk_mls_node *n) {
  kmk_mls_bytes_free(&n->enc);
  memset(n, 0, sizeof *n);
}

void kmk_mls_tree_free(kmk_mls_tree *t) {
  if (t->nodes) {
    uint32_t w = kmk_mls_tree_width(t->n_leaves);
    for (uint32_t i = 0; i < w; i++) node_clear(&t->nodes[i]);
    free(t->nodes);
  }
  memset(t, 0, sizeof *t);
}

uint32_t kmk_mls_tree_width_of(const kmk_mls_tree *t) { return kmk_mls_tree_width(t->n_leaves); }

/* Copies raw node body into n->enc and points the views at the copy. */
static int node_set(kmk_mls_node *n, uint8_t type, kmk_mls_view raw) {
  node_clear(n);
  int rc = kmk_mls_bytes_set(&n->enc, raw.p, raw.len);
  if (rc) return rc;
  kmk_mls_r r;
  kmk_mls_r_init(&r, n->enc.data, n->enc.len);
  if (type == KMK_MLS_NODE_LEAF) rc = kmk_mls_leaf_node_decode(&r, &n->leaf);
  else {
    kmk_mls_view *f[3] = {&n->parent.encryption_key, &n->parent.parent_hash,
                          &n->parent.unmerged_leaves};
    for (int i = 0; i < 3 && !rc; i++) {
      kmk_mls_r sub;
      rc = kmk_mls_r_vec(&r, &sub);
      f[i]->p = sub.p;
      f[i]->len = sub.len;
    }
  }
  if (!rc) rc = kmk_mls_r_done(&r);
  if (rc) {
    node_clear(n);
    return rc;
  }
  n->type = type;
  return 0;
}

int kmk_mls_tree_decode(kmk_mls_tree *t, const uint8_t *p, size_t len) {
  memset(t, 0, sizeof *t);
  kmk_mls_r r;
  kmk_mls_r_init(&r, p, len);
  kmk_mls_view body;
  uint32_t count;
  int rc = kmk_mls_ratchet_tree_decode(&r, &body, &count);
  if (rc) return rc;
  if ((rc = kmk_mls_r_done(&r))) return rc;
  if (count == 0 || count % 2 == 0) return KMK_MLS_ERR_INVALID;
  uint32_t leaves = 1;
  while (kmk_mls_tree_width(leaves) < count) {
    if (leaves >= MAX_RES) return KMK_MLS_ERR_UNSUPPORTED;
    leaves *= 2;
  }
  t->n_leaves = leaves;
  t->nodes = calloc(kmk_mls_tree_width(leaves), sizeof *t->nodes);
  if (!t->nodes) return KMK_MLS_ERR_NOMEM;
  kmk_mls_r it;
  kmk_mls_r_init(&it, body.p, body.len);
  int last_present = 0;
  for (uint32_t i = 0; i < count; i++) {
    int present;
    uint8_t type;
    kmk_mls_leaf_node leaf;
    kmk_mls_parent_node parent;
    kmk_mls_view raw;
    rc = kmk_mls_tree_nodes_next(&it, &present, &type, &leaf, &parent, &raw);
    if (!rc && present) rc = node_set(&t->nodes[i], type, raw);
    if (rc) {
      kmk_mls_tree_free(t);
      return rc;
    }
    last_present = present;
  }
  if (!last_present) {
    kmk_mls_tree_free(t);
    return KMK_MLS_ERR_INVALID;
  }
  return 0;
}

int kmk_mls_tree_encode(const kmk_mls_tree *t, kmk_mls_w *w) {
  uint32_t width = kmk_mls_tree_width_of(t), last = 0;
  for (uint32_t i = 0; i < width; i++)
    if (t->nodes[i].type) last = i + 1;
  size_t m = kmk_mls_w_begin(w);
  for (uint32_t i = 0; i < last; i++) {
    const kmk_mls_node *n = &t->nodes[i];
    kmk_mls_w_u8(w, n->type ? 1 : 0);
    if (n->type) {
      kmk_mls_w_u8(w, n->type);
      kmk_mls_w_raw(w, n->enc.data, n->enc.len);
    }
  }
  return kmk_mls_w_end(w, m);
}

/* ---------- hashing ---------- */

static int in_list(const uint32_t *list, uint32_t n, uint32_t v) {
  for (uint32_t i = 0; i < n; i++)
    if (list[i] == v) return 1;
  return 0;
}

static uint32_t u32_at(kmk_mls_view v, size_t i) {
  const uint8_t *q = v.p + 4 * i;
  return ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
}

static int in_subtree(uint32_t root, uint32_t y);

/* TreeHashInput of node x given its children's hashes (parents only), with the leaves in excl[]
 * treated as blank and removed from unmerged lists. */
static int node_hash(const kmk_mls_tree *t, uint32_t x, const uint32_t *excl, uint32_t n_excl,
                     const uint8_t *lh, const uint8_t *rh, uint8_t out[KMK_MLS_NH]) {
  const kmk_mls_node *n = &t->nodes[x];
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  if (x % 2 == 0) {
    kmk_mls_w_u8(&w, 1);
    kmk_mls_w_u32(&w, x / 2);
    int present = n->type == KMK_MLS_NODE_LEAF && !in_list(excl, n_excl, x / 2);
    kmk_mls_w_u8(&w, (uint8_t)present);
    if (present) kmk_mls_w_raw(&w, n->enc.data, n->enc.len);
  } else {
    kmk_mls_w_u8(&w, 2);
    kmk_mls_w_u8(&w, n->type == KMK_MLS_NODE_PARENT);
    if (n->type == KMK_MLS_NODE_PARENT) {
      kmk_mls_w_vec(&w, n->parent.encryption_key.p, n->parent.encryption_key.len);
      kmk_mls_w_vec(&w, n->parent.parent_hash.p, n->parent.parent_hash.len);
      size_t m = kmk_mls_w_begin(&w);
      for (size_t i = 0; i < n->parent.unmerged_leaves.len / 4; i++) {
        uint32_t l = u32_at(n->parent.unmerged_leaves, i);
        if (!in_list(excl, n_excl, l)) kmk_mls_w_u32(&w, l);
      }
      kmk_mls_w_end(&w, m);
    }
    kmk_mls_w_vec(&w, lh, KMK_MLS_NH);
    kmk_mls_w_vec(&w, rh, KMK_MLS_NH);
  }
  int rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, out);
  kmk_mls_w_free(&w);
  return rc;
}

/* Tree hash of the subtree at x with exclusions. cache (optional) holds every node's plain tree
 * hash and is used for subtrees no exclusion touches, which keeps parent-hash verification
 * close to linear instead of quadratic in the tree size. */
static int hash_node_c(const kmk_mls_tree *t, uint32_t x, const uint32_t *excl, uint32_t n_excl,
                       const uint8_t (*cache)[KMK_MLS_NH], uint8_t out[KMK_MLS_NH]) {
  if (cache) {
    int touched = 0;
    for (uint32_t i = 0; i < n_excl && !touched; i++) touched = in_subtree(x, 2 * excl[i]);
    if (!touched) {
      memcpy(out, cache[x], KMK_MLS_NH);
      return 0;
    }
  }
  if (x % 2 == 0) return node_hash(t, x, excl, n_excl, NULL, NULL, out);
  uint8_t lh[KMK_MLS_NH], rh[KMK_MLS_NH];
  int rc = hash_node_c(t, (uint32_t)kmk_mls_tree_left(x), excl, n_excl, cache, lh);
  if (!rc) rc = hash_node_c(t, (uint32_t)kmk_mls_tree_right(x), excl, n_excl, cache, rh);
  return rc ? rc : node_hash(t, x, excl, n_excl, lh, rh, out);
}

/* Plain tree hashes of every node, level by level from the leaves (caller frees). */
static uint8_t (*all_hashes(const kmk_mls_tree *t))[KMK_MLS_NH] {
  uint32_t w = kmk_mls_tree_width_of(t);
  uint8_t(*c)[KMK_MLS_NH] = malloc((size_t)w * KMK_MLS_NH);
  if (!c) return NULL;
  uint32_t top = kmk_mls_tree_level(kmk_mls_tree_root(t->n_leaves));
  for (uint32_t k = 0; k <= top; k++)
    for (uint32_t x = (1u << k) - 1; x < w; x += 1u << (k + 1)) {
      const uint8_t *lh = k ? c[kmk_mls_tree_left(x)] : NULL, *rh = k ? c[kmk_mls_tree_right(x)] : NULL;
      if (node_hash(t, x, NULL, 0, lh, rh, c[x])) {
        free(c);
        return NULL;
      }
    }
  return c;
}

int kmk_mls_tree_hash(const kmk_mls_tree *t, uint32_t x, uint8_t out[KMK_MLS_NH]) {
  if (x >= kmk_mls_tree_width_of(t)) return KMK_MLS_ERR_ARG;
  return hash_node_c(t, x, NULL, 0, NULL, out);
}

int kmk_mls_tree_root_hash(const kmk_mls_tree *t, uint8_t out[KMK_MLS_NH]) {
  return hash_node_c(t, kmk_mls_tree_root(t->n_leaves), NULL, 0, NULL, out);
}

/* ---------- resolution, filtered direct path ---------- */

static int resolve(const kmk_mls_tree *t, uint32_t x, uint32_t *out, uint32_t cap, uint32_t *n) {
  const kmk_mls_node *nd = &t->nodes[x];
  if (nd->type) {
    if (*n >= cap) return KMK_MLS_ERR_ARG;
    out[(*n)++] = x;
    if (nd->type == KMK_MLS_NODE_PARENT)
      for (size_t i = 0; i < nd->parent.unmerged_leaves.len / 4; i++) {
        if (*n >= cap) return KMK_MLS_ERR_ARG;
        out[(*n)++] = 2 * u32_at(nd->parent.unmerged_leaves, i);
      }
    return 0;
  }
  if (x % 2 == 0) return 0;
  int rc = resolve(t, (uint32_t)kmk_mls_tree_left(x), out, cap, n);
  return rc ? rc : resolve(t, (uint32_t)kmk_mls_tree_right(x), out, cap, n);
}

int kmk_mls_tree_resolution(const kmk_mls_tree *t, uint32_t x, uint32_t *out, uint32_t cap) {
  if (x >= kmk_mls_tree_width_of(t)) return KMK_MLS_ERR_ARG;
  uint32_t n = 0;
  int rc = resolve(t, x, out, cap, &n);
  return rc ? rc : (int)n;
}

int kmk_mls_tree_filtered_direct_path(const kmk_mls_tree *t, uint32_t leaf, uint32_t *out,
                                      uint32_t cap) {
  uint32_t path[32], res[MAX_RES];
  int n = kmk_mls_tree_direct_path(2 * leaf, t->n_leaves, path, 32);
  if (n < 0) return KMK_MLS_ERR_ARG;
  uint32_t child = 2 * leaf, k = 0;
  for (int i = 0; i < n; i++) {
    uint32_t sib = (uint32_t)kmk_mls_tree_sibling(child, t->n_leaves);
    int r = kmk_mls_tree_resolution(t, sib, res, MAX_RES);
    if (r < 0) return r;
    if (r > 0) {
      if (k >= cap) return KMK_MLS_ERR_ARG;
      out[k++] = path[i];
    }
    child = path[i];
  }
  return (int)k;
}

/* ---------- parent hashes ---------- */

static int in_subtree(uint32_t root, uint32_t y) {
  uint32_t k = kmk_mls_tree_level(root);
  uint32_t span = (1u << k) - 1;
  return y + span >= root && y <= root + span;
}

static kmk_mls_view node_parent_hash(const kmk_mls_node *n) {
  kmk_mls_view none = {NULL, 0};
  if (n->type == KMK_MLS_NODE_PARENT) return n->parent.parent_hash;
  if (n->type == KMK_MLS_NODE_LEAF && n->leaf.source == KMK_MLS_LEAF_COMMIT)
    return n->leaf.parent_hash;
  return none;
}

/* Is parent p's hash matched by a node in the resolution of its child c (section 7.9.2)? */
static int child_justifies(const kmk_mls_tree *t, uint32_t p, uint32_t c,
                           const uint8_t (*cache)[KMK_MLS_NH], int *ok) {
  const kmk_mls_node *P = &t->nodes[p];
  uint32_t s = c < p ? (uint32_t)kmk_mls_tree_right(p) : (uint32_t)kmk_mls_tree_left(p);
  uint32_t n_unmerged = (uint32_t)(P->parent.unmerged_leaves.len / 4);
  uint32_t *unmerged = calloc(n_unmerged + 1, sizeof *unmerged);
  uint32_t *res = malloc(MAX_RES * sizeof *res);
  int rc = 0;
  *ok = 0;
  if (!unmerged || !res) {
    rc = KMK_MLS_ERR_NOMEM;
    goto out;
  }
  for (uint32_t i = 0; i < n_unmerged; i++) unmerged[i] = u32_at(P->parent.unmerged_leaves, i);
  uint8_t sib[KMK_MLS_NH], want[KMK_MLS_NH];
  if ((rc = hash_node_c(t, s, unmerged, n_unmerged, cache, sib))) goto out;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, P->parent.encryption_key.p, P->parent.encryption_key.len);
  kmk_mls_w_vec(&w, P->parent.parent_hash.p, P->parent.parent_hash.len);
  kmk_mls_w_vec(&w, sib, sizeof sib);
  rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, want);
  kmk_mls_w_free(&w);
  if (rc) goto out;
  int nres = kmk_mls_tree_resolution(t, c, res, MAX_RES);
  if (nres < 0) {
    rc = nres;
    goto out;
  }
  /* unmerged leaves of P below c, as node indices */
  uint32_t below = 0;
  for (uint32_t i = 0; i < n_unmerged; i++)
    if (in_subtree(c, 2 * unmerged[i])) below++;
  for (int d = 0; d < nres && !*ok; d++) {
    kmk_mls_view ph = node_parent_hash(&t->nodes[res[d]]);
    if (ph.len != KMK_MLS_NH || memcmp(ph.p, want, KMK_MLS_NH) != 0) continue;
    /* resolution(c) minus D must equal P's unmerged leaves under c */
    if ((uint32_t)(nres - 1) != below) continue;
    int match = 1;
    for (int e = 0; e < nres && match; e++) {
      if (e == d) continue;
      match = res[e] % 2 == 0 && in_list(unmerged, n_unmerged, res[e] / 2);
    }
    *ok = match;
  }
out:
  free(unmerged);
  free(res);
  return rc;
}

int kmk_mls_tree_verify_parent_hashes(const kmk_mls_tree *t) {
  uint32_t width = kmk_mls_tree_width_of(t);
  const uint8_t(*cache)[KMK_MLS_NH] = (const uint8_t(*)[KMK_MLS_NH])all_hashes(t);
  if (!cache) return KMK_MLS_ERR_NOMEM;
  int rc = 0;
  for (uint32_t p = 1; p < width && !rc; p += 2) {
    if (t->nodes[p].type != KMK_MLS_NODE_PARENT) continue;
    int ok = 0;
    rc = child_justifies(t, p, (uint32_t)kmk_mls_tree_left(p), cache, &ok);
    if (!rc && !ok) rc = child_justifies(t, p, (uint32_t)kmk_mls_tree_right(p), cache, &ok);
    if (!rc && !ok) rc = KMK_MLS_ERR_INVALID;
  }
  free((void *)cache);
  return rc;
}

int kmk_mls_tree_verify_leaf_signatures(const kmk_mls_tree *t, kmk_mls_view group_id) {
  for (uint32_t l = 0; l < t->n_leaves; l++) {
    const kmk_mls_node *n = &t->nodes[2 * l];
    if (n->type != KMK_MLS_NODE_LEAF) continue;
    kmk_mls_w w;
    kmk_mls_w_init(&w);
    kmk_mls_leaf_node_tbs_encode(&w, &n->leaf, group_id, l);
    int rc = w.err ? w.err
                   : kmk_mls_verify_with_label(n->leaf.signature_key.p, n->leaf.signature_key.len,
                                               "LeafNodeTBS", w.buf, w.len, n->leaf.signature.p,
                                               n->leaf.signature.len);
    kmk_mls_w_free(&w);
    if (rc) return rc == KMK_MLS_ERR_CRYPTO ? KMK_MLS_ERR_VERIFY : rc;
  }
  return 0;
}

static int view_eq(kmk_mls_view a, kmk_mls_view b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int kmk_mls_tree_validate(const kmk_mls_tree *t, kmk_mls_view group_id,
                          const uint8_t *expected_tree_hash) {
  uint32_t width = kmk_mls_tree_width_of(t);
  if (expected_tree_hash) {
    uint8_t h[KMK_MLS_NH];
    int rc = kmk_mls_tree_root_hash(t, h);
    if (rc) return rc;
    if (memcmp(h, expected_tree_hash, KMK_MLS_NH) != 0) return KMK_MLS_ERR_VERIFY;
  }
  for (uint32_t x = 0; x < width; x++) {
    const kmk_mls_node *n = &t->nodes[x];
    if (!n->type) continue;
    if (n->type == KMK_MLS_NODE_LEAF && n->leaf.source == KMK_MLS_LEAF_UPDATE)
      return KMK_MLS_ERR_INVALID; /* not allowed in a tree handed to a joiner */
    kmk_mls_view ek = n->type == KMK_MLS_NODE_LEAF ? n->leaf.encryption_key : n->parent.encryption_key;
    for (uint32_t y = x + 1; y < width; y++) { /* HPKE keys unique across the tree */
      const kmk_mls_node *m = &t->nodes[y];
      if (!m->type) continue;
      kmk_mls_view ek2 = m->type == KMK_MLS_NODE_LEAF ? m->leaf.encryption_key : m->parent.encryption_key;
      if (view_eq(ek, ek2)) return KMK_MLS_ERR_INVALID;
      if (n->type == KMK_MLS_NODE_LEAF && m->type == KMK_MLS_NODE_LEAF &&
          view_eq(n->leaf.signature_key, m->leaf.signature_key))
        return KMK_MLS_ERR_INVALID;
    }
    if (n->type == KMK_MLS_NODE_PARENT) {
      /* each unmerged leaf is a non-blank leaf below x, and listed by every non-blank parent
       * between it and x */
      for (size_t i = 0; i < n->parent.unmerged_leaves.len / 4; i++) {
        uint32_t l = u32_at(n->parent.unmerged_leaves, i);
        if (l >= t->n_leaves || !in_subtree(x, 2 * l) || t->nodes[2 * l].type != KMK_MLS_NODE_LEAF)
          return KMK_MLS_ERR_INVALID;
        int64_t q = kmk_mls_tree_parent(2 * l, t->n_leaves);
        while (q >= 0 && (uint32_t)q != x) {
          const kmk_mls_node *Q = &t->nodes[q];
          if (Q->type == KMK_MLS_NODE_PARENT) {
            int found = 0;
            for (size_t j = 0; j < Q->parent.unmerged_leaves.len / 4; j++)
              found |= u32_at(Q->parent.unmerged_leaves, j) == l;
            if (!found) return KMK_MLS_ERR_INVALID;
          }
          q = kmk_mls_tree_parent((uint32_t)q, t->n_leaves);
        }
      }
    }
  }
  int rc = kmk_mls_tree_verify_leaf_signatures(t, group_id);
  return rc ? rc : kmk_mls_tree_verify_parent_hashes(t);
}

int kmk_mls_tree_copy(kmk_mls_tree *dst, const kmk_mls_tree *src) {
  memset(dst, 0, sizeof *dst);
  uint32_t w = kmk_mls_tree_width_of(src);
  dst->nodes = calloc(w ? w : 1, sizeof *dst->nodes);
  if (!dst->nodes) return KMK_MLS_ERR_NOMEM;
  dst->n_leaves = src->n_leaves;
  for (uint32_t x = 0; x < w; x++) {
    const kmk_mls_node *n = &src->nodes[x];
    if (!n->type) continue;
    kmk_mls_view raw = {n->enc.data, n->enc.len};
    int rc = node_set(&dst->nodes[x], n->type, raw);
    if (rc) {
      kmk_mls_tree_free(dst);
      return rc;
    }
  }
  return 0;
}
