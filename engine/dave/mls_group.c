/* mls_group.c - owns one member's MLS group state: joining by Welcome (RFC 9420 section
 * 12.4.3.1: open GroupSecrets, decrypt and verify GroupInfo, validate the ratchet tree, locate our
 * leaf, derive path keys from the path secret, run the key schedule, check the confirmation tag,
 * start the interim transcript hash), the exporter, and KeyPackage creation.
 * Not thread-safe: one thread owns a group. Secrets are wiped on free and on every error path.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls_group.h"

static const char KP_REF_LABEL[] = "MLS 1.0 KeyPackage Reference";

int kmk_mls_key_package_ref(const uint8_t *kp, size_t kp_len, uint8_t out[KMK_MLS_NH]) {
  return kmk_mls_ref_hash(KP_REF_LABEL, kp, kp_len, out);
}

void kmk_mls_group_free(kmk_mls_group *g) {
  if (!g) return;
  if (g->path_keys) {
    OPENSSL_cleanse(g->path_keys, kmk_mls_tree_width_of(&g->tree) * sizeof *g->path_keys);
    free(g->path_keys);
  }
  kmk_mls_tree_free(&g->tree);
  kmk_mls_bytes_free(&g->group_id);
  kmk_mls_bytes_free(&g->context_extensions);
  kmk_mls_bytes_free(&g->group_context);
  OPENSSL_cleanse(g, sizeof *g);
}

int kmk_mls_group_export(const kmk_mls_group *g, const char *label, const uint8_t *ctx,
                         size_t clen, uint8_t *out, size_t olen) {
  return kmk_mls_export(g->secrets.exporter, (const uint8_t *)label, strlen(label), ctx, clen, out,
                        olen);
}

int kmk_mls_welcome_open_secrets(const kmk_mls_welcome *w, const uint8_t *key_package,
                                 size_t kp_len, const uint8_t init_priv[KMK_MLS_PRIV],
                                 kmk_mls_bytes *secrets_out) {
  uint8_t ref[KMK_MLS_NH];
  int rc = kmk_mls_key_package_ref(key_package, kp_len, ref);
  if (rc) return rc;
  kmk_mls_r it;
  kmk_mls_r_init(&it, w->secrets.p, w->secrets.len);
  while (kmk_mls_r_left(&it)) {
    kmk_mls_encrypted_group_secrets e;
    if ((rc = kmk_mls_group_secrets_next(&it, &e))) return rc;
    if (e.new_member.len != KMK_MLS_NH || memcmp(e.new_member.p, ref, KMK_MLS_NH) != 0) continue;
    if (e.ct.ciphertext.len < KMK_MLS_NT) return KMK_MLS_ERR_DECODE;
    size_t pt_len = e.ct.ciphertext.len - KMK_MLS_NT;
    uint8_t *pt = malloc(pt_len + 1);
    if (!pt) return KMK_MLS_ERR_NOMEM;
    rc = kmk_mls_decrypt_with_label(init_priv, "Welcome", w->encrypted_group_info.p,
                                    w->encrypted_group_info.len, e.ct.kem_output.p,
                                    e.ct.kem_output.len, e.ct.ciphertext.p, e.ct.ciphertext.len, pt);
    if (!rc) rc = kmk_mls_bytes_set(secrets_out, pt, pt_len);
    OPENSSL_cleanse(pt, pt_len + 1);
    free(pt);
    return rc;
  }
  return KMK_MLS_ERR_INVALID; /* the Welcome is not for this key package */
}

int kmk_mls_welcome_open_group_info(const kmk_mls_welcome *w, const uint8_t welcome_secret[32],
                                    kmk_mls_bytes *gi_out) {
  uint8_t key[KMK_MLS_NK], nonce[KMK_MLS_NN];
  const kmk_mls_view *ct = &w->encrypted_group_info;
  if (ct->len < KMK_MLS_NT) return KMK_MLS_ERR_DECODE;
  int rc = kmk_mls_expand_with_label(welcome_secret, KMK_MLS_NH, "key", NULL, 0, key, sizeof key);
  if (!rc) rc = kmk_mls_expand_with_label(welcome_secret, KMK_MLS_NH, "nonce", NULL, 0, nonce, sizeof nonce);
  uint8_t *pt = rc ? NULL : malloc(ct->len);
  if (!rc && !pt) rc = KMK_MLS_ERR_NOMEM;
  if (!rc) rc = kmk_mls_aead_open(key, nonce, NULL, 0, ct->p, ct->len, pt);
  if (!rc) rc = kmk_mls_bytes_set(gi_out, pt, ct->len - KMK_MLS_NT);
  OPENSSL_cleanse(key, sizeof key);
  if (pt) {
    OPENSSL_cleanse(pt, ct->len);
    free(pt);
  }
  return rc;
}

static int view_is(kmk_mls_view v, const uint8_t *p, size_t n) {
  return v.len == n && memcmp(v.p, p, n) == 0;
}

/* Lowest common ancestor of two distinct leaves' nodes (RFC 9420 appendix C). */
static uint32_t lca(uint32_t a, uint32_t b) {
  uint32_t k = 0;
  while (a != b) {
    a >>= 1;
    b >>= 1;
    k++;
  }
  return k ? (a << k) + (1u << (k - 1)) - 1 : a;
}

/* Derives node keys from the path secret, which belongs to the lowest common ancestor of our
 * leaf and the committer's, checking each public key against the tree. */
static int apply_path_secret(kmk_mls_group *g, uint32_t signer, kmk_mls_view path_secret) {
  if (path_secret.len != KMK_MLS_NH || signer == g->my_leaf) return KMK_MLS_ERR_INVALID;
  return kmk_mls_tree_derive_path(&g->tree, signer, lca(2 * g->my_leaf, 2 * signer), path_secret.p,
                                  g->path_keys, NULL);
}

int kmk_mls_psk_secret_for(const kmk_mls_group *g, kmk_mls_view psk_ids,
                           const kmk_mls_external_psk *psks, size_t n_psks,
                           uint8_t out[KMK_MLS_NH]) {
  enum { MAX_PSKS = 32 };
  kmk_mls_psk_input in[MAX_PSKS];
  kmk_mls_w ids[MAX_PSKS];
  size_t n = 0;
  int rc = 0;
  kmk_mls_r it;
  kmk_mls_r_init(&it, psk_ids.p, psk_ids.len);
  while (!rc && kmk_mls_r_left(&it)) {
    kmk_mls_psk_id id;
    if (n == MAX_PSKS || kmk_mls_psk_ids_next(&it, &id)) {
      rc = KMK_MLS_ERR_INVALID;
      break;
    }
    in[n].psk = NULL;
    if (id.type == 1) {
      for (size_t i = 0; i < n_psks && !in[n].psk; i++)
        if (psks[i].id_len == id.psk_id.len && memcmp(psks[i].id, id.psk_id.p, id.psk_id.len) == 0) {
          in[n].psk = psks[i].psk;
          in[n].psk_len = psks[i].psk_len;
        }
    } else if (g && id.usage == 1 && id.group_id.len == g->group_id.len &&
               memcmp(id.group_id.p, g->group_id.data, g->group_id.len) == 0) {
      for (int i = 0; i < KMK_MLS_RESUMPTION_KEEP && !in[n].psk; i++)
        if (g->resumption[i].present && g->resumption[i].epoch == id.epoch) {
          in[n].psk = g->resumption[i].psk;
          in[n].psk_len = KMK_MLS_NH;
        }
    }
    if (!in[n].psk) {
      rc = id.type == 1 ? KMK_MLS_ERR_INVALID : KMK_MLS_ERR_UNSUPPORTED;
      break;
    }
    kmk_mls_w_init(&ids[n]);
    rc = kmk_mls_psk_id_encode(&ids[n], &id);
    in[n].id = ids[n].buf;
    in[n].id_len = ids[n].len;
    n++;
  }
  if (!rc) rc = kmk_mls_psk_secret(in, n, out);
  for (size_t i = 0; i < n; i++) kmk_mls_w_free(&ids[i]);
  return rc;
}

/* Body of join once the secrets, GroupInfo and tree bytes are in hand. */
static int join_with(kmk_mls_group *g, const kmk_mls_join_keys *keys, const kmk_mls_key_package *kp,
                     const kmk_mls_group_secrets *gs, const uint8_t psk_secret[KMK_MLS_NH],
                     const kmk_mls_group_info *gi, const uint8_t *tree, size_t tree_len) {
  const kmk_mls_group_context *gc = &gi->context;
  if (gc->version != 1 || gc->suite != KMK_MLS_SUITE) return KMK_MLS_ERR_UNSUPPORTED;
  if (gc->tree_hash.len != KMK_MLS_NH || gc->confirmed_transcript_hash.len != KMK_MLS_NH)
    return KMK_MLS_ERR_INVALID;
  kmk_mls_view ext;
  if (!tree) {
    if (!kmk_mls_extensions_find(gi->extensions, KMK_MLS_EXT_RATCHET_TREE, &ext))
      return KMK_MLS_ERR_INVALID; /* DAVE always sends the tree inline */
    tree = ext.p;
    tree_len = ext.len;
  }
  int rc = kmk_mls_tree_decode(&g->tree, tree, tree_len);
  if (rc) return rc;
  if ((rc = kmk_mls_tree_validate(&g->tree, gc->group_id, gc->tree_hash.p))) return rc;
  /* GroupInfo signature by the signer's leaf */
  if (gi->signer >= g->tree.n_leaves || g->tree.nodes[2 * gi->signer].type != KMK_MLS_NODE_LEAF)
    return KMK_MLS_ERR_INVALID;
  const kmk_mls_leaf_node *sl = &g->tree.nodes[2 * gi->signer].leaf;
  rc = kmk_mls_verify_with_label(sl->signature_key.p, sl->signature_key.len, "GroupInfoTBS",
                                 gi->tbs.p, gi->tbs.len, gi->signature.p, gi->signature.len);
  if (rc) return rc == KMK_MLS_ERR_CRYPTO ? KMK_MLS_ERR_VERIFY : rc;
  /* our leaf: identical to the LeafNode of our KeyPackage */
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_leaf_node_encode(&w, &kp->leaf);
  if (w.err) {
    kmk_mls_w_free(&w);
    return w.err;
  }
  int found = 0;
  for (uint32_t l = 0; l < g->tree.n_leaves && !found; l++) {
    const kmk_mls_node *nd = &g->tree.nodes[2 * l];
    if (nd->type == KMK_MLS_NODE_LEAF && nd->enc.len == w.len && memcmp(nd->enc.data, w.buf, w.len) == 0) {
      g->my_leaf = l;
      found = 1;
    }
  }
  kmk_mls_w_free(&w);
  if (!found) return KMK_MLS_ERR_INVALID;
  /* our private keys must match our leaf */
  uint8_t pub[KMK_MLS_PUB];
  const kmk_mls_leaf_node *ml = &g->tree.nodes[2 * g->my_leaf].leaf;
  if (kmk_mls_p256_pub_from_priv(keys->encryption_priv, pub) || !view_is(ml->encryption_key, pub, KMK_MLS_PUB))
    return KMK_MLS_ERR_ARG;
  if (kmk_mls_p256_pub_from_priv(keys->signature_priv, pub) || !view_is(ml->signature_key, pub, KMK_MLS_PUB))
    return KMK_MLS_ERR_ARG;
  memcpy(g->encryption_priv, keys->encryption_priv, KMK_MLS_PRIV);
  memcpy(g->signature_priv, keys->signature_priv, KMK_MLS_PRIV);
  g->path_keys = calloc(kmk_mls_tree_width_of(&g->tree), sizeof *g->path_keys);
  if (!g->path_keys) return KMK_MLS_ERR_NOMEM;
  if (gs->has_path_secret && (rc = apply_path_secret(g, gi->signer, gs->path_secret))) return rc;
  /* key schedule, confirmation tag, transcript */
  if (gs->joiner_secret.len != KMK_MLS_NH) return KMK_MLS_ERR_INVALID;
  rc = kmk_mls_key_schedule_from_joiner(gs->joiner_secret.p, psk_secret, gc->raw.p, gc->raw.len,
                                        &g->secrets);
  if (rc) return rc;
  uint8_t tag[KMK_MLS_NH];
  rc = kmk_mls_confirmation_tag(g->secrets.confirmation_key, gc->confirmed_transcript_hash.p, tag);
  if (rc) return rc;
  if (!view_is(gi->confirmation_tag, tag, KMK_MLS_NH)) return KMK_MLS_ERR_VERIFY;
  memcpy(g->tree_hash, gc->tree_hash.p, KMK_MLS_NH);
  memcpy(g->confirmed_transcript_hash, gc->confirmed_transcript_hash.p, KMK_MLS_NH);
  rc = kmk_mls_transcript_interim(g->confirmed_transcript_hash, tag, KMK_MLS_NH,
                                  g->interim_transcript_hash);
  if (!rc) rc = kmk_mls_bytes_set(&g->group_id, gc->group_id.p, gc->group_id.len);
  if (!rc) rc = kmk_mls_bytes_set(&g->context_extensions, gc->extensions.p, gc->extensions.len);
  if (!rc) rc = kmk_mls_bytes_set(&g->group_context, gc->raw.p, gc->raw.len);
  g->epoch = gc->epoch;
  g->resumption[0].present = 1;
  g->resumption[0].epoch = g->epoch;
  memcpy(g->resumption[0].psk, g->secrets.resumption_psk, KMK_MLS_NH);
  return rc;
}

int kmk_mls_group_join(kmk_mls_group *g, const kmk_mls_join_keys *keys, const uint8_t *welcome,
                       size_t welcome_len, const uint8_t *tree, size_t tree_len) {
  memset(g, 0, sizeof *g);
  kmk_mls_r r;
  kmk_mls_welcome w;
  kmk_mls_key_package kp;
  kmk_mls_r_init(&r, welcome, welcome_len);
  int rc = kmk_mls_welcome_decode(&r, &w);
  if (!rc) rc = kmk_mls_r_done(&r);
  if (rc) return rc;
  if (w.suite != KMK_MLS_SUITE) return KMK_MLS_ERR_UNSUPPORTED;
  kmk_mls_r_init(&r, keys->key_package, keys->key_package_len);
  if ((rc = kmk_mls_key_package_decode(&r, &kp)) || (rc = kmk_mls_r_done(&r))) return rc;
  if (kp.version != 1 || kp.suite != KMK_MLS_SUITE) return KMK_MLS_ERR_UNSUPPORTED;

  kmk_mls_bytes secrets = {0}, gi_bytes = {0};
  uint8_t welcome_secret[KMK_MLS_NH];
  kmk_mls_group_secrets gs;
  kmk_mls_group_info gi;
  rc = kmk_mls_welcome_open_secrets(&w, keys->key_package, keys->key_package_len, keys->init_priv,
                                    &secrets);
  if (!rc) {
    kmk_mls_r_init(&r, secrets.data, secrets.len);
    rc = kmk_mls_group_secrets_decode(&r, &gs);
    if (!rc) rc = kmk_mls_r_done(&r);
  }
  uint8_t psk_secret[KMK_MLS_NH] = {0};
  if (!rc && gs.psks.len) rc = kmk_mls_psk_secret_for(NULL, gs.psks, keys->psks, keys->n_psks, psk_secret);
  if (!rc && gs.joiner_secret.len != KMK_MLS_NH) rc = KMK_MLS_ERR_INVALID;
  if (!rc) rc = kmk_mls_welcome_secret(gs.joiner_secret.p, psk_secret, welcome_secret);
  if (!rc) rc = kmk_mls_welcome_open_group_info(&w, welcome_secret, &gi_bytes);
  if (!rc) {
    kmk_mls_r_init(&r, gi_bytes.data, gi_bytes.len);
    rc = kmk_mls_group_info_decode(&r, &gi);
    if (!rc) rc = kmk_mls_r_done(&r);
  }
  if (!rc) rc = join_with(g, keys, &kp, &gs, psk_secret, &gi, tree, tree_len);
  OPENSSL_cleanse(welcome_secret, sizeof welcome_secret);
  OPENSSL_cleanse(psk_secret, sizeof psk_secret);
  kmk_mls_bytes_free(&secrets);
  kmk_mls_bytes_free(&gi_bytes);
  if (rc) kmk_mls_group_free(g);
  return rc;
}

/* ---------- key packages ---------- */

static void u16_list(kmk_mls_w *w, uint16_t v) {
  size_t m = kmk_mls_w_begin(w);
  kmk_mls_w_u16(w, v);
  kmk_mls_w_end(w, m);
}

int kmk_mls_key_package_create(const uint8_t *identity, size_t id_len, int reuse_signature_key,
                               kmk_mls_key_package_keys *keys, kmk_mls_bytes *out) {
  uint8_t init_pub[KMK_MLS_PUB], enc_pub[KMK_MLS_PUB], sig[KMK_MLS_SIG_MAX];
  size_t sig_len = sizeof sig;
  int rc = kmk_mls_p256_keygen(keys->init_priv, init_pub);
  if (!rc) rc = kmk_mls_p256_keygen(keys->encryption_priv, enc_pub);
  if (!rc)
    rc = reuse_signature_key ? kmk_mls_p256_pub_from_priv(keys->signature_priv, keys->signature_pub)
                             : kmk_mls_p256_keygen(keys->signature_priv, keys->signature_pub);
  if (rc) return rc;
  /* LeafNodeTBS for a key_package leaf = the leaf's fields without the signature */
  kmk_mls_w leaf;
  kmk_mls_w_init(&leaf);
  kmk_mls_w_vec(&leaf, enc_pub, sizeof enc_pub);
  kmk_mls_w_vec(&leaf, keys->signature_pub, KMK_MLS_PUB);
  kmk_mls_w_u16(&leaf, KMK_MLS_CRED_BASIC);
  kmk_mls_w_vec(&leaf, identity, id_len);
  u16_list(&leaf, 1);               /* versions: mls10 */
  u16_list(&leaf, KMK_MLS_SUITE);   /* cipher suites */
  kmk_mls_w_vec(&leaf, NULL, 0);    /* extensions */
  kmk_mls_w_vec(&leaf, NULL, 0);    /* proposals */
  u16_list(&leaf, KMK_MLS_CRED_BASIC);
  kmk_mls_w_u8(&leaf, KMK_MLS_LEAF_KEY_PACKAGE);
  kmk_mls_w_u64(&leaf, 0);
  kmk_mls_w_u64(&leaf, UINT64_MAX);
  kmk_mls_w_vec(&leaf, NULL, 0); /* leaf extensions */
  rc = leaf.err;
  if (!rc) rc = kmk_mls_sign_with_label(keys->signature_priv, "LeafNodeTBS", leaf.buf, leaf.len, sig, &sig_len);
  kmk_mls_w_vec(&leaf, sig, sig_len);
  kmk_mls_w kp;
  kmk_mls_w_init(&kp);
  kmk_mls_w_u16(&kp, 1);
  kmk_mls_w_u16(&kp, KMK_MLS_SUITE);
  kmk_mls_w_vec(&kp, init_pub, sizeof init_pub);
  kmk_mls_w_raw(&kp, leaf.buf, leaf.len);
  kmk_mls_w_vec(&kp, NULL, 0); /* key package extensions */
  if (!rc) rc = leaf.err ? leaf.err : kp.err;
  sig_len = sizeof sig;
  if (!rc) rc = kmk_mls_sign_with_label(keys->signature_priv, "KeyPackageTBS", kp.buf, kp.len, sig, &sig_len);
  kmk_mls_w_vec(&kp, sig, sig_len);
  kmk_mls_w_free(&leaf);
  if (rc) {
    kmk_mls_w_free(&kp);
    return rc;
  }
  return kmk_mls_w_finish(&kp, out);
}
