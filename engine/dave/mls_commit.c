/* mls_commit.c - owns moving a joined group to its next epoch from a member's commit (RFC 9420
 * section 12.4.2): proposals by reference (from the store) or by value - GroupContextExtensions,
 * Update, Remove, Add, PreSharedKey, applied in that order - the optional UpdatePath, PSKs, the
 * new key schedule and confirmation tag; and the store of proposals awaiting a commit (from the
 * external sender, as DAVE's gateway sends them, or from members). Everything is computed on
 * copies; the group changes only when every check has passed. Not thread-safe: one thread owns
 * the group and the store.
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

int kmk_mls_proposal_store_revoke(kmk_mls_proposal_store *s, const uint8_t *ref, size_t ref_len) {
  if (ref_len != KMK_MLS_NH) return 0;
  for (size_t i = 0; i < s->n; i++)
    if (memcmp(s->items[i].ref, ref, KMK_MLS_NH) == 0) {
      kmk_mls_bytes_free(&s->items[i].msg);
      memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof s->items[0]);
      s->n--;
      return 1;
    }
  return 0;
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

/* An Update's leaf: update source, signed over LeafNodeTBS with group id and the proposer. */
static int check_update(const kmk_mls_group *g, const kmk_mls_leaf_node *ln, uint32_t sender) {
  if (ln->source != KMK_MLS_LEAF_UPDATE || sender >= g->tree.n_leaves) return KMK_MLS_ERR_INVALID;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_leaf_node_tbs_encode(&w, ln, gview(&g->group_id), sender);
  int rc = w.err ? w.err
                 : kmk_mls_verify_with_label(ln->signature_key.p, ln->signature_key.len,
                                             "LeafNodeTBS", w.buf, w.len, ln->signature.p,
                                             ln->signature.len);
  kmk_mls_w_free(&w);
  return rc == KMK_MLS_ERR_CRYPTO ? KMK_MLS_ERR_VERIFY : rc;
}

static int check_proposal(const kmk_mls_group *g, const kmk_mls_proposal *p, uint32_t sender) {
  switch (p->type) {
    case KMK_MLS_PROP_ADD: return check_key_package(&p->add);
    case KMK_MLS_PROP_UPDATE: return check_update(g, &p->update, sender);
    case KMK_MLS_PROP_REMOVE:
    case KMK_MLS_PROP_PSK:
    case KMK_MLS_PROP_GCE: return 0;
    default: return KMK_MLS_ERR_UNSUPPORTED;
  }
}

int kmk_mls_group_store_proposal(const kmk_mls_group *g, kmk_mls_proposal_store *s,
                                 const uint8_t *msg, size_t len) {
  if (s->n >= MAX_PROPOSALS) return KMK_MLS_ERR_INVALID;
  kmk_mls_stored_proposal item;
  memset(&item, 0, sizeof item);
  int rc = kmk_mls_bytes_set(&item.msg, msg, len);
  if (rc) return rc;
  kmk_mls_message m;
  rc = kmk_mls_message_decode_all(item.msg.data, item.msg.len, &m);
  const kmk_mls_framed_content *fc = &m.pub.content;
  if (!rc && (m.wire_format != KMK_MLS_WIRE_PUBLIC || fc->content_type != KMK_MLS_CONTENT_PROPOSAL))
    rc = KMK_MLS_ERR_INVALID;
  if (!rc && (fc->epoch != g->epoch || fc->group_id.len != g->group_id.len ||
              memcmp(fc->group_id.p, g->group_id.data, g->group_id.len)))
    rc = KMK_MLS_ERR_INVALID;
  item.sender = UINT32_MAX;
  if (!rc && fc->sender.type == KMK_MLS_SENDER_EXTERNAL) {
    kmk_mls_view key;
    rc = external_sender_key(g, fc->sender.index, &key);
    if (!rc) rc = kmk_mls_public_message_verify_signature(&m.pub, key.p, key.len, NULL, 0);
    if (!rc && fc->proposal.type != KMK_MLS_PROP_ADD && fc->proposal.type != KMK_MLS_PROP_REMOVE &&
        fc->proposal.type != KMK_MLS_PROP_PSK && fc->proposal.type != KMK_MLS_PROP_GCE)
      rc = KMK_MLS_ERR_INVALID;
  } else if (!rc && fc->sender.type == KMK_MLS_SENDER_MEMBER) {
    uint32_t l = fc->sender.index;
    if (l >= g->tree.n_leaves || g->tree.nodes[2 * l].type != KMK_MLS_NODE_LEAF) {
      rc = KMK_MLS_ERR_INVALID;
    } else {
      const kmk_mls_leaf_node *ln = &g->tree.nodes[2 * l].leaf;
      rc = kmk_mls_public_message_verify_signature(&m.pub, ln->signature_key.p, ln->signature_key.len,
                                                   g->group_context.data, g->group_context.len);
      if (!rc)
        rc = kmk_mls_public_message_verify_membership(g->secrets.membership_key, &m.pub,
                                                      g->group_context.data, g->group_context.len);
      item.sender = l;
    }
  } else if (!rc) {
    rc = KMK_MLS_ERR_UNSUPPORTED;
  }
  if (!rc) rc = check_proposal(g, &fc->proposal, item.sender);
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

static const kmk_mls_stored_proposal *find_ref(const kmk_mls_proposal_store *s, kmk_mls_view ref) {
  if (ref.len != KMK_MLS_NH) return NULL;
  for (size_t i = 0; i < s->n; i++)
    if (memcmp(s->items[i].ref, ref.p, KMK_MLS_NH) == 0) return &s->items[i];
  return NULL;
}

static int same_key(const kmk_mls_node *a, const kmk_mls_node *b) {
  if (a->type != KMK_MLS_NODE_PARENT || b->type != KMK_MLS_NODE_PARENT) return 0;
  return a->parent.encryption_key.len == b->parent.encryption_key.len &&
         memcmp(a->parent.encryption_key.p, b->parent.encryption_key.p,
                a->parent.encryption_key.len) == 0;
}

/* A proposal resolved for a commit, with its proposer (UINT32_MAX: external). */
typedef struct resolved {
  const kmk_mls_proposal *p;
  uint32_t sender;
} resolved;

int kmk_mls_group_process_commit(kmk_mls_group *g, kmk_mls_proposal_store *s, const uint8_t *msg,
                                 size_t len, const kmk_mls_external_psk *psks, size_t n_psks,
                                 int *removed) {
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

  /* resolve the proposals */
  static const uint16_t ORDER[] = {KMK_MLS_PROP_GCE, KMK_MLS_PROP_UPDATE, KMK_MLS_PROP_REMOVE,
                                   KMK_MLS_PROP_ADD, KMK_MLS_PROP_PSK};
  kmk_mls_proposal_or_ref *por = malloc(MAX_PROPOSALS * sizeof *por);
  resolved *list = malloc(MAX_PROPOSALS * sizeof *list);
  if (!por || !list) {
    free(por);
    free(list);
    return KMK_MLS_ERR_NOMEM;
  }
  size_t n = 0;
  int needs_path = 0, n_gce = 0;
  kmk_mls_r it;
  kmk_mls_r_init(&it, fc->commit.proposals.p, fc->commit.proposals.len);
  while (!rc && kmk_mls_r_left(&it)) {
    if (n == MAX_PROPOSALS) {
      rc = KMK_MLS_ERR_INVALID;
      break;
    }
    kmk_mls_proposal_or_ref *po = &por[n];
    if ((rc = kmk_mls_proposals_next(&it, po))) break;
    if (po->type == 2) {
      const kmk_mls_stored_proposal *sp = find_ref(s, po->ref);
      if (!sp) rc = KMK_MLS_ERR_INVALID; /* unknown reference */
      else {
        list[n].p = &sp->prop;
        list[n].sender = sp->sender;
      }
    } else {
      list[n].p = &po->proposal;
      list[n].sender = sender;
      if (po->proposal.type == KMK_MLS_PROP_UPDATE) rc = KMK_MLS_ERR_INVALID; /* never by value */
      else rc = check_proposal(g, &po->proposal, sender);
    }
    if (!rc) {
      uint16_t t = list[n].p->type;
      if (t == KMK_MLS_PROP_UPDATE && list[n].sender == sender) rc = KMK_MLS_ERR_INVALID;
      if (t == KMK_MLS_PROP_REMOVE && list[n].p->removed == sender) rc = KMK_MLS_ERR_INVALID;
      if (t == KMK_MLS_PROP_UPDATE || t == KMK_MLS_PROP_REMOVE || t == KMK_MLS_PROP_GCE) needs_path = 1;
      if (t == KMK_MLS_PROP_GCE && ++n_gce > 1) rc = KMK_MLS_ERR_INVALID;
      if (t == KMK_MLS_PROP_REINIT || t == KMK_MLS_PROP_EXTERNAL_INIT) rc = KMK_MLS_ERR_UNSUPPORTED;
    }
    n++;
  }
  if (!rc && (needs_path || n == 0) && !fc->commit.has_path) rc = KMK_MLS_ERR_INVALID;

  /* apply them to a copy of the tree, in RFC order */
  kmk_mls_tree t;
  memset(&t, 0, sizeof t);
  uint32_t joiners[MAX_PROPOSALS];
  size_t n_joiners = 0;
  kmk_mls_view new_ext = gview(&g->context_extensions);
  kmk_mls_w psk_ids;
  kmk_mls_w_init(&psk_ids);
  if (!rc) rc = kmk_mls_tree_copy(&t, &g->tree);
  for (size_t o = 0; !rc && o < sizeof ORDER / sizeof ORDER[0]; o++)
    for (size_t i = 0; !rc && i < n; i++) {
      const kmk_mls_proposal *p = list[i].p;
      if (p->type != ORDER[o]) continue;
      switch (p->type) {
        case KMK_MLS_PROP_GCE: new_ext = p->extensions; break;
        case KMK_MLS_PROP_UPDATE:
          if (list[i].sender == g->my_leaf) rc = KMK_MLS_ERR_UNSUPPORTED; /* needs our pending key */
          else rc = kmk_mls_tree_update_leaf(&t, list[i].sender, &p->update);
          break;
        case KMK_MLS_PROP_REMOVE:
          if (p->removed == g->my_leaf) *removed = 1;
          rc = kmk_mls_tree_remove_leaf(&t, p->removed);
          break;
        case KMK_MLS_PROP_ADD: rc = kmk_mls_tree_add_leaf(&t, &p->add.leaf, &joiners[n_joiners++]); break;
        case KMK_MLS_PROP_PSK: rc = kmk_mls_psk_id_encode(&psk_ids, &p->psk); break;
      }
    }
  free(por);
  free(list);
  if (rc || *removed) {
    kmk_mls_tree_free(&t);
    kmk_mls_w_free(&psk_ids);
    return rc; /* removed: nothing more to derive; the caller tears the group down */
  }
  if (fc->commit.has_path)
    rc = kmk_mls_tree_merge_update_path(&t, sender, &fc->commit.path, gview(&g->group_id));

  /* new transcript and GroupContext */
  uint8_t th[KMK_MLS_NH], cth[KMK_MLS_NH], commit_secret[KMK_MLS_NH] = {0}, ps[KMK_MLS_NH];
  uint8_t psk_secret[KMK_MLS_NH] = {0};
  kmk_mls_bytes gc = {0}, gc_path = {0}, ext_copy = {0};
  kmk_mls_w ci;
  kmk_mls_w_init(&ci);
  if (!rc) rc = kmk_mls_bytes_set(&ext_copy, new_ext.p, new_ext.len);
  if (!rc) rc = kmk_mls_tree_root_hash(&t, th);
  if (!rc) rc = kmk_mls_public_message_confirmed_input(pm, &ci);
  if (!rc) rc = kmk_mls_transcript_confirmed(g->interim_transcript_hash, KMK_MLS_NH, ci.buf, ci.len, cth);
  kmk_mls_w_free(&ci);
  if (!rc)
    rc = kmk_mls_group_context_encode(g->group_id.data, g->group_id.len, g->epoch + 1, th,
                                      KMK_MLS_NH, cth, KMK_MLS_NH, new_ext.p, new_ext.len, &gc);
  /* the path was encrypted under the provisional context: new epoch, tree hash and extensions,
   * but the previous confirmed transcript hash (the commit cannot cover its own ciphertexts) */
  if (!rc)
    rc = kmk_mls_group_context_encode(g->group_id.data, g->group_id.len, g->epoch + 1, th,
                                      KMK_MLS_NH, g->confirmed_transcript_hash, KMK_MLS_NH,
                                      new_ext.p, new_ext.len, &gc_path);
  if (!rc && psk_ids.len) {
    kmk_mls_view ids = {psk_ids.buf, psk_ids.len};
    rc = kmk_mls_psk_secret_for(g, ids, psks, n_psks, psk_secret);
  }
  kmk_mls_w_free(&psk_ids);
  /* our path secret, the node keys above it, the commit secret */
  kmk_mls_path_key *keys = NULL;
  uint32_t w = kmk_mls_tree_width_of(&t), ow = kmk_mls_tree_width_of(&g->tree);
  if (!rc) {
    keys = calloc(w, sizeof *keys);
    if (!keys) rc = KMK_MLS_ERR_NOMEM;
    for (uint32_t x = 0; !rc && x < w && x < ow; x++) /* keep keys of unchanged parents */
      if (g->path_keys[x].present && same_key(&t.nodes[x], &g->tree.nodes[x])) keys[x] = g->path_keys[x];
  }
  if (!rc && fc->commit.has_path) {
    uint32_t node = 0;
    rc = kmk_mls_tree_decrypt_path(&t, sender, g->my_leaf, &fc->commit.path, gc_path.data,
                                   gc_path.len, g->encryption_priv, keys, joiners,
                                   (uint32_t)n_joiners, ps, &node);
    if (!rc) rc = kmk_mls_tree_derive_path(&t, sender, node, ps, keys, commit_secret);
  }
  kmk_mls_epoch_secrets next;
  memset(&next, 0, sizeof next);
  if (!rc) rc = kmk_mls_key_schedule(g->secrets.init, commit_secret, psk_secret, gc.data, gc.len, &next);
  uint8_t tag[KMK_MLS_NH];
  if (!rc) rc = kmk_mls_confirmation_tag(next.confirmation_key, cth, tag);
  if (!rc && CRYPTO_memcmp(tag, pm->confirmation_tag.p, KMK_MLS_NH)) rc = KMK_MLS_ERR_VERIFY;
  uint8_t interim[KMK_MLS_NH];
  if (!rc) rc = kmk_mls_transcript_interim(cth, tag, KMK_MLS_NH, interim);
  OPENSSL_cleanse(ps, sizeof ps);
  OPENSSL_cleanse(commit_secret, sizeof commit_secret);
  OPENSSL_cleanse(psk_secret, sizeof psk_secret);
  kmk_mls_bytes_free(&gc_path);
  if (rc) {
    if (keys) {
      OPENSSL_cleanse(keys, w * sizeof *keys);
      free(keys);
    }
    kmk_mls_tree_free(&t);
    kmk_mls_bytes_free(&gc);
    kmk_mls_bytes_free(&ext_copy);
    kmk_mls_epoch_secrets_wipe(&next);
    return rc;
  }
  /* commit the new epoch */
  OPENSSL_cleanse(g->path_keys, ow * sizeof *g->path_keys);
  free(g->path_keys);
  g->path_keys = keys;
  kmk_mls_tree_free(&g->tree);
  g->tree = t;
  kmk_mls_bytes_free(&g->group_context);
  g->group_context = gc;
  kmk_mls_bytes_free(&g->context_extensions);
  g->context_extensions = ext_copy;
  g->epoch++;
  memcpy(g->tree_hash, th, KMK_MLS_NH);
  memcpy(g->confirmed_transcript_hash, cth, KMK_MLS_NH);
  memcpy(g->interim_transcript_hash, interim, KMK_MLS_NH);
  kmk_mls_epoch_secrets_wipe(&g->secrets);
  g->secrets = next;
  kmk_mls_epoch_secrets_wipe(&next);
  memmove(&g->resumption[1], &g->resumption[0], (KMK_MLS_RESUMPTION_KEEP - 1) * sizeof g->resumption[0]);
  g->resumption[0].present = 1;
  g->resumption[0].epoch = g->epoch;
  memcpy(g->resumption[0].psk, g->secrets.resumption_psk, KMK_MLS_NH);
  kmk_mls_proposal_store_clear(s);
  return 0;
}
