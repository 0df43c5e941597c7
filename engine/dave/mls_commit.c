/* mls_commit.c - owns moving a joined group to its next epoch from a commit (RFC 9420 section
 * 12.4.2), for the subset DAVE uses: Add and Remove proposals (by reference from the external
 * sender, or by value), an optional UpdatePath, no PSKs, no extension changes. Also the store of
 * external proposals awaiting a commit. Everything is computed on copies; the group changes only
 * when every check has passed. Not thread-safe: one thread owns the group and the store.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls_group.h"

#define MAX_PROPOSALS 256

void kmk_mls_proposal_store_clear(kmk_mls_proposal_store *s) {
  for (size_t i = 0; i < s->n; i++) kmk_mls_bytes_free(&s->items[i].msg);
  free(s->items);
  memset(s, 0, sizeof *s);
}

static kmk_mls_view gview(const kmk_mls_bytes *b) {
  kmk_mls_view v = {b->data, b->len};
  return v;
}

/* The signature key of external sender `index` from the GroupContext extensions. */
static int external_sender_key(const kmk_mls_group *g, uint32_t index, kmk_mls_view *key) {
  kmk_mls_view data, list;
  if (!kmk_mls_extensions_find(gview(&g->context_extensions), KMK_MLS_EXT_EXTERNAL_SENDERS, &data))
    return KMK_MLS_ERR_INVALID;
  kmk_mls_r r, it;
  kmk_mls_r_init(&r, data.p, data.len);
  if (kmk_mls_external_senders_decode(&r, &list) || kmk_mls_r_done(&r)) return KMK_MLS_ERR_DECODE;
  kmk_mls_r_init(&it, list.p, list.len);
  for (uint32_t i = 0; kmk_mls_r_left(&it); i++) {
    kmk_mls_external_sender es;
    if (kmk_mls_external_senders_next(&it, &es)) return KMK_MLS_ERR_DECODE;
    if (i == index) {
      *key = es.signature_key;
      return 0;
    }
  }
  return KMK_MLS_ERR_INVALID;
}

/* An Add's KeyPackage: suite 2, mls10, key_package leaf source, both signatures. */
static int check_key_package(const kmk_mls_key_package *kp) {
  if (kp->version != 1 || kp->suite != KMK_MLS_SUITE) return KMK_MLS_ERR_UNSUPPORTED;
  if (kp->leaf.source != KMK_MLS_LEAF_KEY_PACKAGE) return KMK_MLS_ERR_INVALID;
  if (kp->init_key.len == kp->leaf.encryption_key.len &&
      memcmp(kp->init_key.p, kp->leaf.encryption_key.p, kp->init_key.len) == 0)
    return KMK_MLS_ERR_INVALID;
  const kmk_mls_view *sk = &kp->leaf.signature_key;
  int rc = kmk_mls_verify_with_label(sk->p, sk->len, "KeyPackageTBS", kp->tbs.p, kp->tbs.len,
                                     kp->signature.p, kp->signature.len);
  if (!rc) {
    kmk_mls_w w;
    kmk_mls_w_init(&w);
    kmk_mls_view none = {NULL, 0};
    kmk_mls_leaf_node_tbs_encode(&w, &kp->leaf, none, 0);
    rc = w.err ? w.err
               : kmk_mls_verify_with_label(sk->p, sk->len, "LeafNodeTBS", w.buf, w.len,
                                           kp->leaf.signature.p, kp->leaf.signature.len);
    kmk_mls_w_free(&w);
  }
  return rc == KMK_MLS_ERR_CRYPTO ? KMK_MLS_ERR_VERIFY : rc;
}

static int check_proposal(const kmk_mls_proposal *p) {
  if (p->type == KMK_MLS_PROP_ADD) return check_key_package(&p->add);
  if (p->type == KMK_MLS_PROP_REMOVE) return 0;
  return KMK_MLS_ERR_UNSUPPORTED;
}

int kmk_mls_group_store_external_proposal(const kmk_mls_group *g, kmk_mls_proposal_store *s,
                                          const uint8_t *msg, size_t len) {
  if (s->n >= MAX_PROPOSALS) return KMK_MLS_ERR_INVALID;
  kmk_mls_stored_proposal item;
  memset(&item, 0, sizeof item);
  int rc = kmk_mls_bytes_set(&item.msg, msg, len);
  if (rc) return rc;
  kmk_mls_message m;
  rc = kmk_mls_message_decode_all(item.msg.data, item.msg.len, &m);
  const kmk_mls_framed_content *fc = &m.pub.content;
  if (!rc && (m.wire_format != KMK_MLS_WIRE_PUBLIC || fc->content_type != KMK_MLS_CONTENT_PROPOSAL ||
              fc->sender.type != KMK_MLS_SENDER_EXTERNAL))
    rc = KMK_MLS_ERR_INVALID;
  if (!rc && (fc->epoch != g->epoch || fc->group_id.len != g->group_id.len ||
              memcmp(fc->group_id.p, g->group_id.data, g->group_id.len)))
    rc = KMK_MLS_ERR_INVALID;
  kmk_mls_view key;
  if (!rc) rc = external_sender_key(g, fc->sender.index, &key);
  if (!rc) rc = kmk_mls_public_message_verify_signature(&m.pub, key.p, key.len, NULL, 0);
  if (!rc) rc = check_proposal(&fc->proposal);
  if (!rc) rc = kmk_mls_proposal_ref(&m.pub, item.ref);
  if (!rc && s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 8;
    kmk_mls_stored_proposal *ni = realloc(s->items, cap * sizeof *ni);
    if (!ni) rc = KMK_MLS_ERR_NOMEM;
    else {
      s->items = ni;
      s->cap = cap;
    }
  }
  if (rc) {
    kmk_mls_bytes_free(&item.msg);
    return rc;
  }
  item.prop = fc->proposal; /* views into item.msg, whose heap buffer never moves */
  s->items[s->n++] = item;
  return 0;
}

static const kmk_mls_proposal *find_ref(const kmk_mls_proposal_store *s, kmk_mls_view ref) {
  if (ref.len != KMK_MLS_NH) return NULL;
  for (size_t i = 0; i < s->n; i++)
    if (memcmp(s->items[i].ref, ref.p, KMK_MLS_NH) == 0) return &s->items[i].prop;
  return NULL;
}

static int same_key(const kmk_mls_node *a, const kmk_mls_node *b) {
  if (a->type != KMK_MLS_NODE_PARENT || b->type != KMK_MLS_NODE_PARENT) return 0;
  return a->parent.encryption_key.len == b->parent.encryption_key.len &&
         memcmp(a->parent.encryption_key.p, b->parent.encryption_key.p,
                a->parent.encryption_key.len) == 0;
}

int kmk_mls_group_process_commit(kmk_mls_group *g, kmk_mls_proposal_store *s, const uint8_t *msg,
                                 size_t len, int *removed) {
  *removed = 0;
  kmk_mls_message m;
  int rc = kmk_mls_message_decode_all(msg, len, &m);
  if (rc) return rc;
  const kmk_mls_public_message *pm = &m.pub;
  const kmk_mls_framed_content *fc = &pm->content;
  if (m.wire_format != KMK_MLS_WIRE_PUBLIC || fc->content_type != KMK_MLS_CONTENT_COMMIT)
    return KMK_MLS_ERR_INVALID;
  if (fc->sender.type != KMK_MLS_SENDER_MEMBER) return KMK_MLS_ERR_UNSUPPORTED;
  if (fc->epoch != g->epoch || fc->group_id.len != g->group_id.len ||
      memcmp(fc->group_id.p, g->group_id.data, g->group_id.len))
    return KMK_MLS_ERR_INVALID;
  uint32_t sender = fc->sender.index;
  if (sender >= g->tree.n_leaves || g->tree.nodes[2 * sender].type != KMK_MLS_NODE_LEAF)
    return KMK_MLS_ERR_INVALID;
  if (sender == g->my_leaf) return KMK_MLS_ERR_UNSUPPORTED; /* our own commits: part 3 */
  /* authenticity under the current epoch */
  const kmk_mls_leaf_node *sl = &g->tree.nodes[2 * sender].leaf;
  rc = kmk_mls_public_message_verify_signature(pm, sl->signature_key.p, sl->signature_key.len,
                                               g->group_context.data, g->group_context.len);
  if (!rc) rc = kmk_mls_public_message_verify_membership(g->secrets.membership_key, pm,
                                                         g->group_context.data, g->group_context.len);
  if (rc) return rc;
  if (pm->confirmation_tag.len != KMK_MLS_NH) return KMK_MLS_ERR_INVALID;

  /* resolve the proposals: removes first, then adds (section 12.3 order) */
  const kmk_mls_proposal *adds[MAX_PROPOSALS], *rems[MAX_PROPOSALS];
  size_t n_adds = 0, n_rems = 0;
  kmk_mls_r it;
  kmk_mls_r_init(&it, fc->commit.proposals.p, fc->commit.proposals.len);
  kmk_mls_proposal_or_ref por[MAX_PROPOSALS];
  size_t n_por = 0;
  while (kmk_mls_r_left(&it)) {
    if (n_por == MAX_PROPOSALS) return KMK_MLS_ERR_INVALID;
    kmk_mls_proposal_or_ref *po = &por[n_por++];
    if ((rc = kmk_mls_proposals_next(&it, po))) return rc;
    const kmk_mls_proposal *p = po->type == 2 ? find_ref(s, po->ref) : &po->proposal;
    if (!p) return KMK_MLS_ERR_INVALID; /* unknown reference */
    if (po->type == 1 && (rc = check_proposal(p))) return rc;
    if (p->type == KMK_MLS_PROP_ADD) adds[n_adds++] = p;
    else if (p->type == KMK_MLS_PROP_REMOVE) rems[n_rems++] = p;
    else return KMK_MLS_ERR_UNSUPPORTED;
  }
  /* a commit with removes (or nothing at all) must carry a path */
  if ((n_rems || n_por == 0) && !fc->commit.has_path) return KMK_MLS_ERR_INVALID;

  kmk_mls_tree t;
  if ((rc = kmk_mls_tree_copy(&t, &g->tree))) return rc;
  uint32_t joiners[MAX_PROPOSALS];
  for (size_t i = 0; i < n_rems && !rc; i++) {
    uint32_t l = rems[i]->removed;
    if (l == sender) rc = KMK_MLS_ERR_INVALID;
    else if (l == g->my_leaf) *removed = 1;
    if (!rc) rc = kmk_mls_tree_remove_leaf(&t, l);
  }
  for (size_t i = 0; i < n_adds && !rc; i++) rc = kmk_mls_tree_add_leaf(&t, &adds[i]->add.leaf, &joiners[i]);
  if (!rc && *removed) {
    kmk_mls_tree_free(&t);
    return 0; /* nothing more to derive for us; the caller tears the group down */
  }
  if (!rc && fc->commit.has_path)
    rc = kmk_mls_tree_merge_update_path(&t, sender, &fc->commit.path, gview(&g->group_id));

  /* new transcript and GroupContext */
  uint8_t th[KMK_MLS_NH], cth[KMK_MLS_NH], commit_secret[KMK_MLS_NH] = {0}, ps[KMK_MLS_NH];
  kmk_mls_bytes gc = {0}, gc_path = {0};
  kmk_mls_w ci;
  kmk_mls_w_init(&ci);
  if (!rc) rc = kmk_mls_tree_root_hash(&t, th);
  if (!rc) rc = kmk_mls_public_message_confirmed_input(pm, &ci);
  if (!rc) rc = kmk_mls_transcript_confirmed(g->interim_transcript_hash, KMK_MLS_NH, ci.buf, ci.len, cth);
  kmk_mls_w_free(&ci);
  if (!rc)
    rc = kmk_mls_group_context_encode(g->group_id.data, g->group_id.len, g->epoch + 1, th,
                                      KMK_MLS_NH, cth, KMK_MLS_NH, g->context_extensions.data,
                                      g->context_extensions.len, &gc);
  /* the path was encrypted under the provisional context: new epoch and tree hash, but the
   * previous confirmed transcript hash (the commit cannot cover its own ciphertexts) */
  if (!rc)
    rc = kmk_mls_group_context_encode(g->group_id.data, g->group_id.len, g->epoch + 1, th,
                                      KMK_MLS_NH, g->confirmed_transcript_hash, KMK_MLS_NH,
                                      g->context_extensions.data, g->context_extensions.len,
                                      &gc_path);
  /* our path secret, the node keys above it, the commit secret */
  kmk_mls_path_key *keys = NULL;
  if (!rc) {
    uint32_t w = kmk_mls_tree_width_of(&t), ow = kmk_mls_tree_width_of(&g->tree);
    keys = calloc(w, sizeof *keys);
    if (!keys) rc = KMK_MLS_ERR_NOMEM;
    for (uint32_t x = 0; !rc && x < w && x < ow; x++) /* keep keys of unchanged parents */
      if (g->path_keys[x].present && same_key(&t.nodes[x], &g->tree.nodes[x])) keys[x] = g->path_keys[x];
  }
  if (!rc && fc->commit.has_path) {
    uint32_t node = 0;
    rc = kmk_mls_tree_decrypt_path(&t, sender, g->my_leaf, &fc->commit.path, gc_path.data, gc_path.len,
                                   g->encryption_priv, keys, joiners, (uint32_t)n_adds, ps,
                                   &node);
    if (!rc) rc = kmk_mls_tree_derive_path(&t, sender, node, ps, keys, commit_secret);
  }
  kmk_mls_epoch_secrets next;
  memset(&next, 0, sizeof next);
  if (!rc) rc = kmk_mls_key_schedule(g->secrets.init, commit_secret, NULL, gc.data, gc.len, &next);
  uint8_t tag[KMK_MLS_NH];
  if (!rc) rc = kmk_mls_confirmation_tag(next.confirmation_key, cth, tag);
  if (!rc && CRYPTO_memcmp(tag, pm->confirmation_tag.p, KMK_MLS_NH)) rc = KMK_MLS_ERR_VERIFY;
  uint8_t interim[KMK_MLS_NH];
  if (!rc) rc = kmk_mls_transcript_interim(cth, tag, KMK_MLS_NH, interim);
  OPENSSL_cleanse(ps, sizeof ps);
  OPENSSL_cleanse(commit_secret, sizeof commit_secret);
  kmk_mls_bytes_free(&gc_path);
  if (rc) {
    if (keys) {
      OPENSSL_cleanse(keys, kmk_mls_tree_width_of(&t) * sizeof *keys);
      free(keys);
    }
    kmk_mls_tree_free(&t);
    kmk_mls_bytes_free(&gc);
    kmk_mls_epoch_secrets_wipe(&next);
    return rc;
  }
  /* commit the new epoch */
  OPENSSL_cleanse(g->path_keys, kmk_mls_tree_width_of(&g->tree) * sizeof *g->path_keys);
  free(g->path_keys);
  g->path_keys = keys;
  kmk_mls_tree_free(&g->tree);
  g->tree = t;
  kmk_mls_bytes_free(&g->group_context);
  g->group_context = gc;
  g->epoch++;
  memcpy(g->tree_hash, th, KMK_MLS_NH);
  memcpy(g->confirmed_transcript_hash, cth, KMK_MLS_NH);
  memcpy(g->interim_transcript_hash, interim, KMK_MLS_NH);
  kmk_mls_epoch_secrets_wipe(&g->secrets);
  g->secrets = next;
  kmk_mls_epoch_secrets_wipe(&next);
  kmk_mls_proposal_store_clear(s);
  return 0;
}
