/* dave_mls.c - owns DAVE's profile of MLS (protocol version 1): key packages with the user id
 * credential, user-to-leaf lookup, per-sender media secrets and the voice privacy code from a
 * joined group, parsing the gateway's external sender package (op 25) and DAVE's acceptance
 * checks on a joined group. Pure functions over a group owned by the caller; any thread that
 * owns the group.
 */
#include <string.h>

#include "kameko/dave.h"

int kmk_dave_key_package_create(uint64_t user_id, kmk_mls_key_package_keys *keys,
                                kmk_mls_bytes *out) {
  uint8_t id[8];
  for (int i = 0; i < 8; i++) id[i] = (uint8_t)(user_id >> (56 - 8 * i));
  return kmk_mls_key_package_create(id, sizeof id, 0, keys, out);
}

int kmk_dave_leaf_user_id(const kmk_mls_leaf_node *leaf, uint64_t *user_id) {
  if (leaf->credential.type != KMK_MLS_CRED_BASIC || leaf->credential.identity.len != 8)
    return KMK_DAVE_ERR_DECODE;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | leaf->credential.identity.p[i];
  *user_id = v;
  return 0;
}

int kmk_dave_group_find_user(const kmk_mls_group *g, uint64_t user_id, uint32_t *leaf) {
  for (uint32_t l = 0; l < g->tree.n_leaves; l++) {
    const kmk_mls_node *n = &g->tree.nodes[2 * l];
    uint64_t uid;
    if (n->type == KMK_MLS_NODE_LEAF && kmk_dave_leaf_user_id(&n->leaf, &uid) == 0 &&
        uid == user_id) {
      *leaf = l;
      return 0;
    }
  }
  return KMK_DAVE_ERR_NO_KEY;
}

int kmk_dave_group_sender_secret(const kmk_mls_group *g, uint64_t user_id,
                                 uint8_t out[KMK_DAVE_BASE_LEN]) {
  return kmk_dave_sender_base_secret(g->secrets.exporter, user_id, out);
}

int kmk_dave_voice_privacy_code(const kmk_mls_group *g, char out[31]) {
  return kmk_dave_displayable_code(g->secrets.epoch_authenticator, KMK_MLS_NH, 30, 5, out);
}

int kmk_dave_external_sender_parse(const uint8_t *p, size_t n, kmk_mls_external_sender *es) {
  kmk_mls_r r;
  kmk_mls_r_init(&r, p, n);
  if (kmk_mls_external_sender_decode(&r, es) || kmk_mls_r_done(&r)) return KMK_DAVE_ERR_DECODE;
  if (es->credential.type != KMK_MLS_CRED_BASIC) return KMK_DAVE_ERR_DECODE;
  if (kmk_mls_p256_check_pub(es->signature_key.p, es->signature_key.len))
    return KMK_DAVE_ERR_DECODE;
  return 0;
}

static int same(kmk_mls_view a, kmk_mls_view b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int kmk_dave_group_check(const kmk_mls_group *g, uint64_t channel_id,
                         const kmk_mls_external_sender *es) {
  uint8_t gid[8];
  for (int i = 0; i < 8; i++) gid[i] = (uint8_t)(channel_id >> (56 - 8 * i));
  if (g->group_id.len != 8 || memcmp(g->group_id.data, gid, 8) != 0) return KMK_MLS_ERR_INVALID;
  kmk_mls_view exts = {g->context_extensions.data, g->context_extensions.len}, senders;
  if (!kmk_mls_extensions_find(exts, KMK_MLS_EXT_EXTERNAL_SENDERS, &senders))
    return KMK_MLS_ERR_INVALID;
  kmk_mls_r r;
  kmk_mls_view list;
  kmk_mls_r_init(&r, senders.p, senders.len);
  if (kmk_mls_external_senders_decode(&r, &list) || kmk_mls_r_done(&r)) return KMK_MLS_ERR_DECODE;
  kmk_mls_r it;
  kmk_mls_r_init(&it, list.p, list.len);
  kmk_mls_external_sender first;
  if (kmk_mls_external_senders_next(&it, &first) || kmk_mls_r_left(&it)) return KMK_MLS_ERR_INVALID;
  if (!same(first.signature_key, es->signature_key) || first.credential.type != es->credential.type ||
      !same(first.credential.identity, es->credential.identity))
    return KMK_MLS_ERR_INVALID;
  for (uint32_t l = 0; l < g->tree.n_leaves; l++) {
    const kmk_mls_node *n = &g->tree.nodes[2 * l];
    uint64_t uid;
    if (n->type != KMK_MLS_NODE_LEAF) continue;
    if (kmk_dave_leaf_user_id(&n->leaf, &uid)) return KMK_MLS_ERR_INVALID;
    if (!kmk_mls_u16_list_has(n->leaf.capabilities.suites, KMK_MLS_SUITE) ||
        !kmk_mls_u16_list_has(n->leaf.capabilities.versions, 1) ||
        !kmk_mls_u16_list_has(n->leaf.capabilities.credentials, KMK_MLS_CRED_BASIC))
      return KMK_MLS_ERR_INVALID;
  }
  return 0;
}
