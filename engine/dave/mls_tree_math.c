/* mls_tree_math.c - owns the array-based tree index math of RFC 9420 appendix C: levels,
 * root, children, parent, sibling, direct path and copath for complete binary trees whose leaf
 * count is a power of two. Pure functions; any thread. Impossible requests return -1.
 */
#include "kameko/mls.h"

static uint32_t log2_floor(uint32_t x) {
  uint32_t k = 0;
  while (x >> (k + 1)) k++;
  return k;
}

uint32_t kmk_mls_tree_width(uint32_t n_leaves) { return n_leaves ? 2 * (n_leaves - 1) + 1 : 0; }

uint32_t kmk_mls_tree_level(uint32_t x) {
  uint32_t k = 0;
  while ((x >> k) & 1) k++;
  return k;
}

uint32_t kmk_mls_tree_root(uint32_t n_leaves) {
  uint32_t w = kmk_mls_tree_width(n_leaves);
  return w ? (1u << log2_floor(w)) - 1 : 0;
}

int64_t kmk_mls_tree_left(uint32_t x) {
  uint32_t k = kmk_mls_tree_level(x);
  if (k == 0) return -1;
  return x ^ (1u << (k - 1));
}

int64_t kmk_mls_tree_right(uint32_t x) {
  uint32_t k = kmk_mls_tree_level(x);
  if (k == 0) return -1;
  return x ^ (3u << (k - 1));
}

int64_t kmk_mls_tree_parent(uint32_t x, uint32_t n_leaves) {
  if (n_leaves == 0 || x >= kmk_mls_tree_width(n_leaves) || x == kmk_mls_tree_root(n_leaves))
    return -1;
  uint32_t k = kmk_mls_tree_level(x);
  if (k >= 30) return -1;
  uint32_t b = (x >> (k + 1)) & 1;
  return (int64_t)((x | (1u << k)) ^ (b << (k + 1)));
}

int64_t kmk_mls_tree_sibling(uint32_t x, uint32_t n_leaves) {
  int64_t p = kmk_mls_tree_parent(x, n_leaves);
  if (p < 0) return -1;
  return x < (uint32_t)p ? kmk_mls_tree_right((uint32_t)p) : kmk_mls_tree_left((uint32_t)p);
}

int kmk_mls_tree_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *path, int cap) {
  if (n_leaves == 0 || x >= kmk_mls_tree_width(n_leaves)) return -1;
  int n = 0;
  int64_t p = kmk_mls_tree_parent(x, n_leaves);
  while (p >= 0) {
    if (n >= cap) return -1;
    path[n++] = (uint32_t)p;
    p = kmk_mls_tree_parent((uint32_t)p, n_leaves);
  }
  return n;
}

int kmk_mls_tree_copath(uint32_t x, uint32_t n_leaves, uint32_t *path, int cap) {
  if (n_leaves == 0 || x >= kmk_mls_tree_width(n_leaves)) return -1;
  int n = 0;
  uint32_t cur = x;
  int64_t s;
  while ((s = kmk_mls_tree_sibling(cur, n_leaves)) >= 0) {
    if (n >= cap) return -1;
    path[n++] = (uint32_t)s;
    cur = (uint32_t)kmk_mls_tree_parent(cur, n_leaves);
  }
  return n;
}
