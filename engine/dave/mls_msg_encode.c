/* mls_msg_encode.c - owns encoding of RFC 9420 message structures from the view structs of
 * mls_messages.h (lists are written from their raw bodies), and the to-be-signed encodings
 * (LeafNodeTBS, KeyPackageTBS, GroupInfoTBS). Pure functions; any thread. Every function returns
 * the writer's sticky error, so a caller may chain calls and check once.
 */
#include "kameko/mls_messages.h"

static int vec(kmk_mls_w *w, kmk_mls_view v) { return kmk_mls_w_vec(w, v.p, v.len); }

int kmk_mls_credential_encode(kmk_mls_w *w, const kmk_mls_credential *c) {
  kmk_mls_w_u16(w, c->type);
  if (c->type == KMK_MLS_CRED_BASIC) return vec(w, c->identity);
  if (c->type == KMK_MLS_CRED_X509) return vec(w, c->certs);
  return w->err = w->err ? w->err : KMK_MLS_ERR_ARG;
}

int kmk_mls_capabilities_encode(kmk_mls_w *w, const kmk_mls_capabilities *c) {
  vec(w, c->versions);
  vec(w, c->suites);
  vec(w, c->extensions);
  vec(w, c->proposals);
  return vec(w, c->credentials);
}

static int leaf_fields(kmk_mls_w *w, const kmk_mls_leaf_node *l) {
  vec(w, l->encryption_key);
  vec(w, l->signature_key);
  kmk_mls_credential_encode(w, &l->credential);
  kmk_mls_capabilities_encode(w, &l->capabilities);
  kmk_mls_w_u8(w, l->source);
  if (l->source == KMK_MLS_LEAF_KEY_PACKAGE) {
    kmk_mls_w_u64(w, l->not_before);
    kmk_mls_w_u64(w, l->not_after);
  } else if (l->source == KMK_MLS_LEAF_COMMIT) {
    vec(w, l->parent_hash);
  } else if (l->source != KMK_MLS_LEAF_UPDATE && !w->err) {
    w->err = KMK_MLS_ERR_ARG;
  }
  return vec(w, l->extensions);
}

int kmk_mls_leaf_node_encode(kmk_mls_w *w, const kmk_mls_leaf_node *l) {
  leaf_fields(w, l);
  return vec(w, l->signature);
}

int kmk_mls_leaf_node_tbs_encode(kmk_mls_w *w, const kmk_mls_leaf_node *l, kmk_mls_view group_id,
                                 uint32_t leaf_index) {
  leaf_fields(w, l);
  if (l->source == KMK_MLS_LEAF_UPDATE || l->source == KMK_MLS_LEAF_COMMIT) {
    vec(w, group_id);
    kmk_mls_w_u32(w, leaf_index);
  }
  return w->err;
}

int kmk_mls_key_package_tbs_encode(kmk_mls_w *w, const kmk_mls_key_package *k) {
  kmk_mls_w_u16(w, k->version);
  kmk_mls_w_u16(w, k->suite);
  vec(w, k->init_key);
  kmk_mls_leaf_node_encode(w, &k->leaf);
  return vec(w, k->extensions);
}

int kmk_mls_key_package_encode(kmk_mls_w *w, const kmk_mls_key_package *k) {
  kmk_mls_key_package_tbs_encode(w, k);
  return vec(w, k->signature);
}

int kmk_mls_psk_id_encode(kmk_mls_w *w, const kmk_mls_psk_id *p) {
  kmk_mls_w_u8(w, p->type);
  if (p->type == 1) {
    vec(w, p->psk_id);
  } else {
    kmk_mls_w_u8(w, p->usage);
    vec(w, p->group_id);
    kmk_mls_w_u64(w, p->epoch);
  }
  return vec(w, p->nonce);
}

int kmk_mls_proposal_body_encode(kmk_mls_w *w, const kmk_mls_proposal *p) {
  switch (p->type) {
    case KMK_MLS_PROP_ADD: return kmk_mls_key_package_encode(w, &p->add);
    case KMK_MLS_PROP_UPDATE: return kmk_mls_leaf_node_encode(w, &p->update);
    case KMK_MLS_PROP_REMOVE: return kmk_mls_w_u32(w, p->removed);
    case KMK_MLS_PROP_PSK: return kmk_mls_psk_id_encode(w, &p->psk);
    case KMK_MLS_PROP_REINIT:
      vec(w, p->reinit_group_id);
      kmk_mls_w_u16(w, p->reinit_version);
      kmk_mls_w_u16(w, p->reinit_suite);
      return vec(w, p->reinit_extensions);
    case KMK_MLS_PROP_EXTERNAL_INIT: return vec(w, p->kem_output);
    case KMK_MLS_PROP_GCE: return vec(w, p->extensions);
    default: return w->err = w->err ? w->err : KMK_MLS_ERR_ARG;
  }
}

int kmk_mls_proposal_encode(kmk_mls_w *w, const kmk_mls_proposal *p) {
  kmk_mls_w_u16(w, p->type);
  return kmk_mls_proposal_body_encode(w, p);
}

int kmk_mls_proposal_or_ref_encode(kmk_mls_w *w, const kmk_mls_proposal_or_ref *p) {
  kmk_mls_w_u8(w, p->type);
  if (p->type == 1) return kmk_mls_proposal_encode(w, &p->proposal);
  return vec(w, p->ref);
}

int kmk_mls_commit_encode(kmk_mls_w *w, const kmk_mls_commit *c) {
  vec(w, c->proposals);
  kmk_mls_w_u8(w, c->has_path ? 1 : 0);
  if (c->has_path) {
    kmk_mls_leaf_node_encode(w, &c->path.leaf);
    vec(w, c->path.nodes);
  }
  return w->err;
}

int kmk_mls_framed_content_encode(kmk_mls_w *w, const kmk_mls_framed_content *f) {
  vec(w, f->group_id);
  kmk_mls_w_u64(w, f->epoch);
  kmk_mls_w_u8(w, f->sender.type);
  if (f->sender.type == KMK_MLS_SENDER_MEMBER || f->sender.type == KMK_MLS_SENDER_EXTERNAL)
    kmk_mls_w_u32(w, f->sender.index);
  vec(w, f->authenticated_data);
  kmk_mls_w_u8(w, f->content_type);
  switch (f->content_type) {
    case KMK_MLS_CONTENT_APPLICATION: return vec(w, f->application_data);
    case KMK_MLS_CONTENT_PROPOSAL: return kmk_mls_proposal_encode(w, &f->proposal);
    case KMK_MLS_CONTENT_COMMIT: return kmk_mls_commit_encode(w, &f->commit);
    default: return w->err = w->err ? w->err : KMK_MLS_ERR_ARG;
  }
}

int kmk_mls_public_message_encode(kmk_mls_w *w, const kmk_mls_public_message *m) {
  kmk_mls_framed_content_encode(w, &m->content);
  vec(w, m->signature);
  if (m->content.content_type == KMK_MLS_CONTENT_COMMIT) vec(w, m->confirmation_tag);
  if (m->content.sender.type == KMK_MLS_SENDER_MEMBER) vec(w, m->membership_tag);
  return w->err;
}

int kmk_mls_private_message_encode(kmk_mls_w *w, const kmk_mls_private_message *m) {
  vec(w, m->group_id);
  kmk_mls_w_u64(w, m->epoch);
  kmk_mls_w_u8(w, m->content_type);
  vec(w, m->authenticated_data);
  vec(w, m->encrypted_sender_data);
  return vec(w, m->ciphertext);
}

int kmk_mls_welcome_encode(kmk_mls_w *w, const kmk_mls_welcome *m) {
  kmk_mls_w_u16(w, m->suite);
  vec(w, m->secrets);
  return vec(w, m->encrypted_group_info);
}

int kmk_mls_group_secrets_encode(kmk_mls_w *w, const kmk_mls_group_secrets *g) {
  vec(w, g->joiner_secret);
  kmk_mls_w_u8(w, g->has_path_secret ? 1 : 0);
  if (g->has_path_secret) vec(w, g->path_secret);
  return vec(w, g->psks);
}

int kmk_mls_group_context_encode2(kmk_mls_w *w, const kmk_mls_group_context *g) {
  kmk_mls_w_u16(w, g->version);
  kmk_mls_w_u16(w, g->suite);
  vec(w, g->group_id);
  kmk_mls_w_u64(w, g->epoch);
  vec(w, g->tree_hash);
  vec(w, g->confirmed_transcript_hash);
  return vec(w, g->extensions);
}

int kmk_mls_group_info_tbs_encode(kmk_mls_w *w, const kmk_mls_group_info *g) {
  kmk_mls_group_context_encode2(w, &g->context);
  vec(w, g->extensions);
  vec(w, g->confirmation_tag);
  return kmk_mls_w_u32(w, g->signer);
}

int kmk_mls_group_info_encode(kmk_mls_w *w, const kmk_mls_group_info *g) {
  kmk_mls_group_info_tbs_encode(w, g);
  return vec(w, g->signature);
}

int kmk_mls_external_sender_encode(kmk_mls_w *w, const kmk_mls_external_sender *e) {
  vec(w, e->signature_key);
  return kmk_mls_credential_encode(w, &e->credential);
}

int kmk_mls_message_encode(kmk_mls_w *w, const kmk_mls_message *m) {
  kmk_mls_w_u16(w, m->version);
  kmk_mls_w_u16(w, m->wire_format);
  switch (m->wire_format) {
    case KMK_MLS_WIRE_PUBLIC: return kmk_mls_public_message_encode(w, &m->pub);
    case KMK_MLS_WIRE_PRIVATE: return kmk_mls_private_message_encode(w, &m->priv);
    case KMK_MLS_WIRE_WELCOME: return kmk_mls_welcome_encode(w, &m->welcome);
    case KMK_MLS_WIRE_GROUP_INFO: return kmk_mls_group_info_encode(w, &m->group_info);
    case KMK_MLS_WIRE_KEY_PACKAGE: return kmk_mls_key_package_encode(w, &m->key_package);
    default: return w->err = w->err ? w->err : KMK_MLS_ERR_ARG;
  }
}
