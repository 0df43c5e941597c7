/* mls_create.c - owns the sending side of a group: creating a one-member group (RFC 9420
 * section 11) and committing the stored proposals with a fresh UpdatePath (12.4.1), producing the
 * commit MLSMessage, the Welcome for the members it adds (GroupInfo with the ratchet tree inline,
 * GroupSecrets with the path secret of our common ancestor) and our state for the next epoch,
 * which is installed only once the commit is accepted (DAVE: announced by the gateway).
 * Not thread-safe: one thread owns the group. Secrets wiped on every path.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kameko/mls_group.h"

#define MAX_PROPOSALS 256

static kmk_mls_view bview(const kmk_mls_bytes *b) {
  kmk_mls_view v = {b->data, b->len};
  return v;
}

int kmk_mls_group_create(kmk_mls_group *g, const uint8_t *group_id, size_t gid_len,
                         const uint8_t *key_package, size_t kp_len,
                         const uint8_t encryption_priv[KMK_MLS_PRIV],
                         const uint8_t signature_priv[KMK_MLS_PRIV], const uint8_t *ext,
                         size_t ext_len) {
  memset(g, 0, sizeof *g);
  kmk_mls_r r;
  kmk_mls_key_package kp;
  kmk_mls_r_init(&r, key_package, kp_len);
  int rc = kmk_mls_key_package_decode(&r, &kp);
  if (!rc) rc = kmk_mls_r_done(&r);
  if (rc) return rc;
  if (kp.suite != KMK_MLS_SUITE || kp.version != 1) return KMK_MLS_ERR_UNSUPPORTED;
  /* a one-leaf tree */
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  size_t m = kmk_mls_w_begin(&w);
  kmk_mls_w_u8(&w, 1);
  kmk_mls_w_u8(&w, KMK_MLS_NODE_LEAF);
  kmk_mls_leaf_node_encode(&w, &kp.leaf);
  kmk_mls_w_end(&w, m);
  rc = w.err ? w.err : kmk_mls_tree_decode(&g->tree, w.buf, w.len);
  kmk_mls_w_free(&w);
  if (!rc) rc = kmk_mls_bytes_set(&g->group_id, group_id, gid_len);
  if (!rc) rc = kmk_mls_bytes_set(&g->context_extensions, ext, ext_len);
  if (!rc) rc = kmk_mls_tree_root_hash(&g->tree, g->tree_hash);
  /* epoch 0: empty confirmed transcript hash, random epoch secret */
  if (!rc)
    rc = kmk_mls_group_context_encode(group_id, gid_len, 0, g->tree_hash, KMK_MLS_NH, NULL, 0, ext,
                                      ext_len, &g->group_context);
  if (!rc && RAND_priv_bytes(g->secrets.epoch, KMK_MLS_NH) != 1) rc = KMK_MLS_ERR_CRYPTO;
  if (!rc) rc = kmk_mls_epoch_secrets_derive(&g->secrets);
  uint8_t tag[KMK_MLS_NH];
  if (!rc) rc = kmk_mls_mac(g->secrets.confirmation_key, KMK_MLS_NH, NULL, 0, tag);
  if (!rc) {
    kmk_mls_w_init(&w); /* interim = Hash(confirmed ("") || confirmation_tag<V>) */
    kmk_mls_w_vec(&w, tag, sizeof tag);
    rc = w.err ? w.err : kmk_mls_hash(w.buf, w.len, g->interim_transcript_hash);
    kmk_mls_w_free(&w);
  }
  g->path_keys = rc ? NULL : calloc(1, sizeof *g->path_keys);
  if (!rc && !g->path_keys) rc = KMK_MLS_ERR_NOMEM;
  memcpy(g->encryption_priv, encryption_priv, KMK_MLS_PRIV);
  memcpy(g->signature_priv, signature_priv, KMK_MLS_PRIV);
  g->resumption[0].present = 1;
  memcpy(g->resumption[0].psk, g->secrets.resumption_psk, KMK_MLS_NH);
  if (rc) kmk_mls_group_free(g);
  return rc;
}

void kmk_mls_pending_commit_free(kmk_mls_pending_commit *p) {
  kmk_mls_bytes_free(&p->commit);
  kmk_mls_bytes_free(&p->welcome);
  kmk_mls_group_free(&p->next);
}

void kmk_mls_group_apply_pending(kmk_mls_group *g, kmk_mls_pending_commit *p) {
  kmk_mls_group_free(g);
  *g = p->next;
  memset(&p->next, 0, sizeof p->next);
}

/* Our new leaf: the current one with a new HPKE key, commit source and parent hash, re-signed. */
static int build_leaf(const kmk_mls_group *g, const uint8_t enc_pub[KMK_MLS_PUB],
                      const uint8_t ph[KMK_MLS_NH], size_t ph_len, kmk_mls_bytes *out) {
  const kmk_mls_leaf_node *old = &g->tree.nodes[2 * g->my_leaf].leaf;
  kmk_mls_leaf_node ln = *old;
  ln.encryption_key.p = enc_pub;
  ln.encryption_key.len = KMK_MLS_PUB;
  ln.source = KMK_MLS_LEAF_COMMIT;
  ln.parent_hash.p = ph;
  ln.parent_hash.len = ph_len;
  kmk_mls_w tbs;
  kmk_mls_w_init(&tbs);
  kmk_mls_leaf_node_tbs_encode(&tbs, &ln, bview(&g->group_id), g->my_leaf);
  uint8_t sig[KMK_MLS_SIG_MAX];
  size_t sig_len = sizeof sig;
  int rc = tbs.err ? tbs.err
                   : kmk_mls_sign_with_label(g->signature_priv, "LeafNodeTBS", tbs.buf, tbs.len,
                                             sig, &sig_len);
  kmk_mls_w_free(&tbs);
  if (rc) return rc;
  ln.signature.p = sig;
  ln.signature.len = sig_len;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_leaf_node_encode(&w, &ln);
  return kmk_mls_w_finish(&w, out);
}

static int in_subtree(uint32_t root, uint32_t y) {
  uint32_t span = (1u << kmk_mls_tree_level(root)) - 1;
  return y + span >= root && y <= root + span;
}

/* The whole commit, built into `out`. */
static int commit_into(const kmk_mls_group *g, const kmk_mls_proposal_store *s,
                       kmk_mls_pending_commit *out, kmk_mls_tree *t, uint8_t (*ps)[KMK_MLS_NH],
                       kmk_mls_path_key *keys) {
  /* proposals, applied in RFC order (DAVE: Remove then Add) */
  const kmk_mls_key_package *added[MAX_PROPOSALS];
  uint32_t joiners[MAX_PROPOSALS];
  size_t n_add = 0;
  if (s->n > MAX_PROPOSALS) return KMK_MLS_ERR_INVALID;
  int rc = kmk_mls_tree_copy(t, &g->tree);
  for (size_t i = 0; !rc && i < s->n; i++) {
    const kmk_mls_proposal *p = &s->items[i].prop;
    if (p->type != KMK_MLS_PROP_REMOVE && p->type != KMK_MLS_PROP_ADD) rc = KMK_MLS_ERR_UNSUPPORTED;
    else if (p->type == KMK_MLS_PROP_REMOVE && p->removed == g->my_leaf) rc = KMK_MLS_ERR_INVALID;
    else if (p->type == KMK_MLS_PROP_REMOVE) rc = kmk_mls_tree_remove_leaf(t, p->removed);
  }
  for (size_t i = 0; !rc && i < s->n; i++)
    if (s->items[i].prop.type == KMK_MLS_PROP_ADD) {
      added[n_add] = &s->items[i].prop.add;
      rc = kmk_mls_tree_add_leaf(t, &added[n_add]->leaf, &joiners[n_add]);
      n_add++;
    }
  if (rc) return rc;

  /* path secrets and keys (section 7.4) */
  uint32_t fdp[32];
  int n = kmk_mls_tree_filtered_direct_path(t, g->my_leaf, fdp, 32);
  if (n < 0) return n;
  uint8_t leaf_secret[KMK_MLS_NH], tmp[KMK_MLS_NH], leaf_priv[KMK_MLS_PRIV], leaf_pub[KMK_MLS_PUB];
  uint8_t pubs[32][KMK_MLS_PUB], commit_secret[KMK_MLS_NH];
  kmk_mls_view keyv[32];
  if (RAND_priv_bytes(leaf_secret, sizeof leaf_secret) != 1) return KMK_MLS_ERR_CRYPTO;
  rc = kmk_mls_derive_secret(leaf_secret, KMK_MLS_NH, "node", tmp);
  if (!rc) rc = kmk_mls_hpke_derive_key_pair(tmp, KMK_MLS_NH, leaf_priv, leaf_pub);
  if (!rc) rc = kmk_mls_derive_secret(leaf_secret, KMK_MLS_NH, "path", ps[0]);
  for (int i = 0; !rc && i < n; i++) {
    rc = kmk_mls_derive_secret(ps[i], KMK_MLS_NH, "node", tmp);
    if (!rc) rc = kmk_mls_hpke_derive_key_pair(tmp, KMK_MLS_NH, keys[fdp[i]].priv, pubs[i]);
    keys[fdp[i]].present = 1;
    keyv[i].p = pubs[i];
    keyv[i].len = KMK_MLS_PUB;
    if (!rc) rc = kmk_mls_derive_secret(ps[i], KMK_MLS_NH, "path", ps[i + 1]);
  }
  if (!rc) memcpy(commit_secret, ps[n], KMK_MLS_NH);
  OPENSSL_cleanse(leaf_secret, sizeof leaf_secret);
  OPENSSL_cleanse(tmp, sizeof tmp);
  /* install the path and our re-signed leaf into the provisional tree */
  uint8_t ph[KMK_MLS_NH];
  kmk_mls_bytes leaf_enc = {0};
  if (!rc) rc = kmk_mls_tree_install_path(t, g->my_leaf, keyv, n, ph);
  if (!rc) rc = build_leaf(g, leaf_pub, ph, n ? KMK_MLS_NH : 0, &leaf_enc);
  kmk_mls_leaf_node new_leaf;
  if (!rc) {
    kmk_mls_r r;
    kmk_mls_r_init(&r, leaf_enc.data, leaf_enc.len);
    rc = kmk_mls_leaf_node_decode(&r, &new_leaf);
  }
  if (!rc) rc = kmk_mls_tree_set_leaf(t, g->my_leaf, &new_leaf);
  uint8_t th[KMK_MLS_NH];
  if (!rc) rc = kmk_mls_tree_root_hash(t, th);
  /* provisional context: new epoch and tree hash, previous confirmed transcript hash */
  kmk_mls_group_context oldgc;
  kmk_mls_r gr;
  kmk_mls_r_init(&gr, g->group_context.data, g->group_context.len);
  if (!rc) rc = kmk_mls_group_context_decode(&gr, &oldgc);
  kmk_mls_bytes gc_path = {0};
  if (!rc)
    rc = kmk_mls_group_context_encode(g->group_id.data, g->group_id.len, g->epoch + 1, th,
                                      KMK_MLS_NH, oldgc.confirmed_transcript_hash.p,
                                      oldgc.confirmed_transcript_hash.len,
                                      g->context_extensions.data, g->context_extensions.len, &gc_path);
  /* Commit { proposals<V> (by reference), optional<UpdatePath> } */
  kmk_mls_w commit;
  kmk_mls_w_init(&commit);
  size_t mk = kmk_mls_w_begin(&commit);
  for (size_t i = 0; i < s->n; i++) {
    kmk_mls_w_u8(&commit, 2);
    kmk_mls_w_vec(&commit, s->items[i].ref, KMK_MLS_NH);
  }
  kmk_mls_w_end(&commit, mk);
  kmk_mls_w_u8(&commit, 1);
  kmk_mls_w_raw(&commit, leaf_enc.data, leaf_enc.len);
  mk = kmk_mls_w_begin(&commit);
  uint32_t *res = malloc(4096 * sizeof *res);
  if (!res && !rc) rc = KMK_MLS_ERR_NOMEM;
  for (int i = 0; !rc && i < n; i++) {
    uint32_t copath = (uint32_t)kmk_mls_tree_left(fdp[i]);
    if (in_subtree(copath, 2 * g->my_leaf)) copath = (uint32_t)kmk_mls_tree_right(fdp[i]);
    int nr = kmk_mls_tree_resolution(t, copath, res, 4096);
    if (nr < 0) {
      rc = nr;
      break;
    }
    kmk_mls_w_vec(&commit, pubs[i], KMK_MLS_PUB);
    size_t mc = kmk_mls_w_begin(&commit);
    for (int k = 0; !rc && k < nr; k++) {
      int joiner = 0;
      for (size_t j = 0; j < n_add; j++) joiner |= res[k] == 2 * joiners[j];
      if (joiner) continue;
      const kmk_mls_node *nd = &t->nodes[res[k]];
      kmk_mls_view pk = nd->type == KMK_MLS_NODE_LEAF ? nd->leaf.encryption_key : nd->parent.encryption_key;
      uint8_t kem[KMK_MLS_PUB], ct[KMK_MLS_NH + KMK_MLS_NT];
      rc = kmk_mls_encrypt_with_label(pk.p, pk.len, "UpdatePathNode", gc_path.data, gc_path.len,
                                      ps[i], KMK_MLS_NH, kem, ct);
      kmk_mls_w_vec(&commit, kem, sizeof kem);
      kmk_mls_w_vec(&commit, ct, sizeof ct);
    }
    kmk_mls_w_end(&commit, mc);
  }
  free(res);
  kmk_mls_w_end(&commit, mk);
  if (!rc) rc = commit.err;

  /* FramedContent, signature, transcript, key schedule, tags */
  kmk_mls_w fcw;
  kmk_mls_w_init(&fcw);
  kmk_mls_w_vec(&fcw, g->group_id.data, g->group_id.len);
  kmk_mls_w_u64(&fcw, g->epoch);
  kmk_mls_w_u8(&fcw, KMK_MLS_SENDER_MEMBER);
  kmk_mls_w_u32(&fcw, g->my_leaf);
  kmk_mls_w_vec(&fcw, NULL, 0);
  kmk_mls_w_u8(&fcw, KMK_MLS_CONTENT_COMMIT);
  kmk_mls_w_raw(&fcw, commit.buf, commit.len);
  kmk_mls_w_free(&commit);
  if (!rc) rc = fcw.err;
  kmk_mls_w tbs, tmpw;
  kmk_mls_w_init(&tbs);
  kmk_mls_w_u16(&tbs, 1);
  kmk_mls_w_u16(&tbs, KMK_MLS_WIRE_PUBLIC);
  kmk_mls_w_raw(&tbs, fcw.buf, fcw.len);
  kmk_mls_w_raw(&tbs, g->group_context.data, g->group_context.len);
  uint8_t sig[KMK_MLS_SIG_MAX], cth[KMK_MLS_NH], tag[KMK_MLS_NH], mtag[KMK_MLS_NH];
  size_t sig_len = sizeof sig;
  if (!rc) rc = tbs.err ? tbs.err : kmk_mls_sign_with_label(g->signature_priv, "FramedContentTBS", tbs.buf, tbs.len, sig, &sig_len);
  kmk_mls_w_init(&tmpw); /* ConfirmedTranscriptHashInput */
  kmk_mls_w_u16(&tmpw, KMK_MLS_WIRE_PUBLIC);
  kmk_mls_w_raw(&tmpw, fcw.buf, fcw.len);
  kmk_mls_w_vec(&tmpw, sig, sig_len);
  if (!rc) rc = tmpw.err ? tmpw.err : kmk_mls_transcript_confirmed(g->interim_transcript_hash, KMK_MLS_NH, tmpw.buf, tmpw.len, cth);
  kmk_mls_w_free(&tmpw);
  kmk_mls_group *nx = &out->next;
  if (!rc)
    rc = kmk_mls_group_context_encode(g->group_id.data, g->group_id.len, g->epoch + 1, th,
                                      KMK_MLS_NH, cth, KMK_MLS_NH, g->context_extensions.data,
                                      g->context_extensions.len, &nx->group_context);
  if (!rc) rc = kmk_mls_key_schedule(g->secrets.init, commit_secret, NULL, nx->group_context.data,
                                     nx->group_context.len, &nx->secrets);
  OPENSSL_cleanse(commit_secret, sizeof commit_secret);
  if (!rc) rc = kmk_mls_confirmation_tag(nx->secrets.confirmation_key, cth, tag);
  kmk_mls_w_vec(&tbs, sig, sig_len); /* AuthenticatedContentTBM */
  kmk_mls_w_vec(&tbs, tag, sizeof tag);
  if (!rc) rc = tbs.err ? tbs.err : kmk_mls_mac(g->secrets.membership_key, KMK_MLS_NH, tbs.buf, tbs.len, mtag);
  kmk_mls_w_free(&tbs);
  kmk_mls_w msg;
  kmk_mls_w_init(&msg);
  kmk_mls_w_u16(&msg, 1);
  kmk_mls_w_u16(&msg, KMK_MLS_WIRE_PUBLIC);
  kmk_mls_w_raw(&msg, fcw.buf, fcw.len);
  kmk_mls_w_vec(&msg, sig, sig_len);
  kmk_mls_w_vec(&msg, tag, sizeof tag);
  kmk_mls_w_vec(&msg, mtag, sizeof mtag);
  kmk_mls_w_free(&fcw);
  if (!rc) rc = kmk_mls_w_finish(&msg, &out->commit);
  else kmk_mls_w_free(&msg);

  /* Welcome for the added members */
  if (!rc && n_add) {
    kmk_mls_w gi;
    kmk_mls_w_init(&gi);
    kmk_mls_w_raw(&gi, nx->group_context.data, nx->group_context.len);
    size_t me = kmk_mls_w_begin(&gi); /* extensions: ratchet_tree */
    kmk_mls_w_u16(&gi, KMK_MLS_EXT_RATCHET_TREE);
    size_t md = kmk_mls_w_begin(&gi);
    kmk_mls_tree_encode(t, &gi);
    kmk_mls_w_end(&gi, md);
    kmk_mls_w_end(&gi, me);
    kmk_mls_w_vec(&gi, tag, sizeof tag);
    kmk_mls_w_u32(&gi, g->my_leaf);
    sig_len = sizeof sig;
    rc = gi.err ? gi.err : kmk_mls_sign_with_label(g->signature_priv, "GroupInfoTBS", gi.buf, gi.len, sig, &sig_len);
    kmk_mls_w_vec(&gi, sig, sig_len);
    uint8_t key[KMK_MLS_NK], nonce[KMK_MLS_NN];
    uint8_t *egi = rc || gi.err ? NULL : malloc(gi.len + KMK_MLS_NT);
    if (!rc && !egi) rc = KMK_MLS_ERR_NOMEM;
    if (!rc) rc = kmk_mls_expand_with_label(nx->secrets.welcome, KMK_MLS_NH, "key", NULL, 0, key, sizeof key);
    if (!rc) rc = kmk_mls_expand_with_label(nx->secrets.welcome, KMK_MLS_NH, "nonce", NULL, 0, nonce, sizeof nonce);
    if (!rc) rc = kmk_mls_aead_seal(key, nonce, NULL, 0, gi.buf, gi.len, egi);
    size_t egi_len = gi.len + KMK_MLS_NT;
    kmk_mls_w_free(&gi);
    OPENSSL_cleanse(key, sizeof key);
    kmk_mls_w wel;
    kmk_mls_w_init(&wel);
    kmk_mls_w_u16(&wel, KMK_MLS_SUITE);
    size_t ms = kmk_mls_w_begin(&wel);
    for (size_t j = 0; !rc && j < n_add; j++) {
      /* GroupSecrets { joiner_secret, path_secret of our common ancestor, psks = [] } */
      uint32_t a = 2 * g->my_leaf, b = 2 * joiners[j], k = 0;
      while (a != b) {
        a >>= 1;
        b >>= 1;
        k++;
      }
      uint32_t anc = (a << k) + (1u << (k - 1)) - 1;
      int idx = -1;
      for (int i = 0; i < n; i++)
        if (fdp[i] == anc) idx = i;
      kmk_mls_w gs;
      kmk_mls_w_init(&gs);
      kmk_mls_w_vec(&gs, nx->secrets.joiner, KMK_MLS_NH);
      kmk_mls_w_u8(&gs, idx >= 0);
      if (idx >= 0) kmk_mls_w_vec(&gs, ps[idx], KMK_MLS_NH);
      kmk_mls_w_vec(&gs, NULL, 0);
      uint8_t *ct = gs.err ? NULL : malloc(gs.len + KMK_MLS_NT);
      uint8_t kem[KMK_MLS_PUB], ref[KMK_MLS_NH];
      rc = ct ? 0 : KMK_MLS_ERR_NOMEM;
      if (!rc) rc = kmk_mls_encrypt_with_label(added[j]->init_key.p, added[j]->init_key.len, "Welcome",
                                               egi, egi_len, gs.buf, gs.len, kem, ct);
      if (!rc) rc = kmk_mls_key_package_ref(added[j]->raw.p, added[j]->raw.len, ref);
      kmk_mls_w_vec(&wel, ref, sizeof ref);
      kmk_mls_w_vec(&wel, kem, sizeof kem);
      kmk_mls_w_vec(&wel, ct, gs.len + KMK_MLS_NT);
      kmk_mls_w_free(&gs);
      free(ct);
    }
    kmk_mls_w_end(&wel, ms);
    kmk_mls_w_vec(&wel, egi, egi_len);
    free(egi);
    if (!rc) rc = kmk_mls_w_finish(&wel, &out->welcome);
    else kmk_mls_w_free(&wel);
  }

  /* our state in the next epoch */
  if (!rc) {
    nx->epoch = g->epoch + 1;
    nx->my_leaf = g->my_leaf;
    memcpy(nx->tree_hash, th, KMK_MLS_NH);
    memcpy(nx->confirmed_transcript_hash, cth, KMK_MLS_NH);
    rc = kmk_mls_transcript_interim(cth, tag, KMK_MLS_NH, nx->interim_transcript_hash);
  }
  if (!rc) rc = kmk_mls_bytes_set(&nx->group_id, g->group_id.data, g->group_id.len);
  if (!rc) rc = kmk_mls_bytes_set(&nx->context_extensions, g->context_extensions.data, g->context_extensions.len);
  if (!rc) {
    memcpy(nx->encryption_priv, leaf_priv, KMK_MLS_PRIV);
    memcpy(nx->signature_priv, g->signature_priv, KMK_MLS_PRIV);
    memcpy(&nx->resumption[1], &g->resumption[0], (KMK_MLS_RESUMPTION_KEEP - 1) * sizeof g->resumption[0]);
    nx->resumption[0].present = 1;
    nx->resumption[0].epoch = nx->epoch;
    memcpy(nx->resumption[0].psk, nx->secrets.resumption_psk, KMK_MLS_NH);
  }
  OPENSSL_cleanse(leaf_priv, sizeof leaf_priv);
  kmk_mls_bytes_free(&leaf_enc);
  kmk_mls_bytes_free(&gc_path);
  return rc;
}

int kmk_mls_group_commit(const kmk_mls_group *g, const kmk_mls_proposal_store *s,
                         kmk_mls_pending_commit *out) {
  memset(out, 0, sizeof *out);
  kmk_mls_tree t;
  memset(&t, 0, sizeof t);
  uint8_t(*ps)[KMK_MLS_NH] = calloc(33, KMK_MLS_NH);
  /* keys for every node of the largest tree the commit can produce */
  uint32_t width = kmk_mls_tree_width(2 * (g->tree.n_leaves + (uint32_t)s->n + 1));
  kmk_mls_path_key *keys = calloc(width, sizeof *keys);
  int rc = ps && keys ? commit_into(g, s, out, &t, ps, keys) : KMK_MLS_ERR_NOMEM;
  if (ps) {
    OPENSSL_cleanse(ps, 33 * KMK_MLS_NH);
    free(ps);
  }
  if (!rc) {
    out->next.tree = t;
    uint32_t w = kmk_mls_tree_width_of(&t);
    out->next.path_keys = calloc(w, sizeof *out->next.path_keys);
    if (!out->next.path_keys) rc = KMK_MLS_ERR_NOMEM;
    else
      for (uint32_t x = 0; x < w && x < width; x++) out->next.path_keys[x] = keys[x];
  } else {
    kmk_mls_tree_free(&t);
  }
  if (keys) {
    OPENSSL_cleanse(keys, width * sizeof *keys);
    free(keys);
  }
  if (rc) kmk_mls_pending_commit_free(out);
  return rc;
}
