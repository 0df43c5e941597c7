/* mls_msg_decode.c - owns decoding and validation of RFC 9420 message structures into zero-copy
 * views (see mls_messages.h), and the iterators over validated list bodies. Every length is
 * checked by the reader; every enum is checked against the values RFC 9420 defines; lists are
 * validated element by element at decode time. Pure functions; any thread; nothing allocated.
 */
#include <string.h>

#include "kameko/mls_messages.h"

#define MAX_EXTENSIONS 256

#define TRY(x)                                                                                  \
  do {                                                                                          \
    int rc_ = (x);                                                                              \
    if (rc_) return rc_;                                                                        \
  } while (0)

static int vec_view(kmk_mls_r *r, kmk_mls_view *v) {
  kmk_mls_r sub;
  TRY(kmk_mls_r_vec(r, &sub));
  v->p = sub.p;
  v->len = sub.len;
  return 0;
}

static kmk_mls_view span(const kmk_mls_r *r, size_t start) {
  kmk_mls_view v = {r->p + start, r->off - start};
  return v;
}

static int optional_flag(kmk_mls_r *r, int *present) {
  uint8_t b;
  TRY(kmk_mls_r_u8(r, &b));
  if (b > 1) return KMK_MLS_ERR_DECODE;
  *present = b;
  return 0;
}

/* Runs an element decoder over a list body until it is consumed. */
#define VALIDATE_LIST(view, elem_type, decode_fn)                                               \
  do {                                                                                          \
    kmk_mls_r it_;                                                                              \
    kmk_mls_r_init(&it_, (view).p, (view).len);                                                 \
    while (kmk_mls_r_left(&it_)) {                                                              \
      elem_type e_;                                                                             \
      TRY(decode_fn(&it_, &e_));                                                                \
    }                                                                                           \
  } while (0)

/* ---------- extensions ---------- */

int kmk_mls_extensions_next(kmk_mls_r *it, uint16_t *type, kmk_mls_view *data) {
  size_t save = it->off;
  if (kmk_mls_r_u16(it, type) || vec_view(it, data)) {
    it->off = save;
    return KMK_MLS_ERR_DECODE;
  }
  return 0;
}

int kmk_mls_extensions_decode(kmk_mls_r *r, kmk_mls_view *list) {
  size_t save = r->off;
  TRY(vec_view(r, list));
  uint16_t seen[MAX_EXTENSIONS];
  size_t n = 0;
  kmk_mls_r it;
  kmk_mls_r_init(&it, list->p, list->len);
  while (kmk_mls_r_left(&it)) {
    uint16_t type;
    kmk_mls_view data;
    if (kmk_mls_extensions_next(&it, &type, &data) || n == MAX_EXTENSIONS) goto bad;
    for (size_t i = 0; i < n; i++)
      if (seen[i] == type) goto bad;
    seen[n++] = type;
  }
  return 0;
bad:
  r->off = save;
  return KMK_MLS_ERR_DECODE;
}

int kmk_mls_extensions_find(kmk_mls_view list, uint16_t type, kmk_mls_view *data) {
  kmk_mls_r it;
  kmk_mls_r_init(&it, list.p, list.len);
  uint16_t t;
  while (kmk_mls_r_left(&it) && kmk_mls_extensions_next(&it, &t, data) == 0)
    if (t == type) return 1;
  return 0;
}

/* ---------- credential, capabilities, leaf node, key package ---------- */

static int cert_decode(kmk_mls_r *r, kmk_mls_view *v) { return vec_view(r, v); }

int kmk_mls_credential_decode(kmk_mls_r *r, kmk_mls_credential *c) {
  memset(c, 0, sizeof *c);
  TRY(kmk_mls_r_u16(r, &c->type));
  if (c->type == KMK_MLS_CRED_BASIC) return vec_view(r, &c->identity);
  if (c->type == KMK_MLS_CRED_X509) {
    TRY(vec_view(r, &c->certs));
    VALIDATE_LIST(c->certs, kmk_mls_view, cert_decode);
    return 0;
  }
  return KMK_MLS_ERR_DECODE; /* no way to skip an unknown credential */
}

static int u16_list(kmk_mls_r *r, kmk_mls_view *v) {
  TRY(vec_view(r, v));
  return v->len % 2 ? KMK_MLS_ERR_DECODE : 0;
}

int kmk_mls_u16_list_has(kmk_mls_view list, uint16_t v) {
  for (size_t i = 0; i + 1 < list.len; i += 2)
    if (((list.p[i] << 8) | list.p[i + 1]) == v) return 1;
  return 0;
}

int kmk_mls_capabilities_decode(kmk_mls_r *r, kmk_mls_capabilities *c) {
  TRY(u16_list(r, &c->versions));
  TRY(u16_list(r, &c->suites));
  TRY(u16_list(r, &c->extensions));
  TRY(u16_list(r, &c->proposals));
  return u16_list(r, &c->credentials);
}

int kmk_mls_leaf_node_decode(kmk_mls_r *r, kmk_mls_leaf_node *l) {
  memset(l, 0, sizeof *l);
  size_t start = r->off;
  TRY(vec_view(r, &l->encryption_key));
  TRY(vec_view(r, &l->signature_key));
  TRY(kmk_mls_credential_decode(r, &l->credential));
  TRY(kmk_mls_capabilities_decode(r, &l->capabilities));
  TRY(kmk_mls_r_u8(r, &l->source));
  switch (l->source) {
    case KMK_MLS_LEAF_KEY_PACKAGE:
      TRY(kmk_mls_r_u64(r, &l->not_before));
      TRY(kmk_mls_r_u64(r, &l->not_after));
      break;
    case KMK_MLS_LEAF_UPDATE: break;
    case KMK_MLS_LEAF_COMMIT: TRY(vec_view(r, &l->parent_hash)); break;
    default: return KMK_MLS_ERR_DECODE;
  }
  TRY(kmk_mls_extensions_decode(r, &l->extensions));
  l->tbs_head = span(r, start);
  return vec_view(r, &l->signature);
}

int kmk_mls_key_package_decode(kmk_mls_r *r, kmk_mls_key_package *k) {
  memset(k, 0, sizeof *k);
  size_t start = r->off;
  TRY(kmk_mls_r_u16(r, &k->version));
  TRY(kmk_mls_r_u16(r, &k->suite));
  TRY(vec_view(r, &k->init_key));
  TRY(kmk_mls_leaf_node_decode(r, &k->leaf));
  TRY(kmk_mls_extensions_decode(r, &k->extensions));
  k->tbs = span(r, start);
  TRY(vec_view(r, &k->signature));
  k->raw = span(r, start);
  return 0;
}

/* ---------- proposals ---------- */

int kmk_mls_psk_id_decode(kmk_mls_r *r, kmk_mls_psk_id *p) {
  memset(p, 0, sizeof *p);
  TRY(kmk_mls_r_u8(r, &p->type));
  if (p->type == 1) {
    TRY(vec_view(r, &p->psk_id));
  } else if (p->type == 2) {
    TRY(kmk_mls_r_u8(r, &p->usage));
    if (p->usage < 1 || p->usage > 3) return KMK_MLS_ERR_DECODE;
    TRY(vec_view(r, &p->group_id));
    TRY(kmk_mls_r_u64(r, &p->epoch));
  } else {
    return KMK_MLS_ERR_DECODE;
  }
  return vec_view(r, &p->nonce);
}

int kmk_mls_proposal_body_decode(kmk_mls_r *r, uint16_t type, kmk_mls_proposal *p) {
  memset(p, 0, sizeof *p);
  p->type = type;
  switch (type) {
    case KMK_MLS_PROP_ADD: return kmk_mls_key_package_decode(r, &p->add);
    case KMK_MLS_PROP_UPDATE: return kmk_mls_leaf_node_decode(r, &p->update);
    case KMK_MLS_PROP_REMOVE: return kmk_mls_r_u32(r, &p->removed);
    case KMK_MLS_PROP_PSK: return kmk_mls_psk_id_decode(r, &p->psk);
    case KMK_MLS_PROP_REINIT:
      TRY(vec_view(r, &p->reinit_group_id));
      TRY(kmk_mls_r_u16(r, &p->reinit_version));
      TRY(kmk_mls_r_u16(r, &p->reinit_suite));
      return kmk_mls_extensions_decode(r, &p->reinit_extensions);
    case KMK_MLS_PROP_EXTERNAL_INIT: return vec_view(r, &p->kem_output);
    case KMK_MLS_PROP_GCE: return kmk_mls_extensions_decode(r, &p->extensions);
    default: return KMK_MLS_ERR_DECODE;
  }
}

int kmk_mls_proposal_decode(kmk_mls_r *r, kmk_mls_proposal *p) {
  size_t start = r->off;
  uint16_t type;
  TRY(kmk_mls_r_u16(r, &type));
  int rc = kmk_mls_proposal_body_decode(r, type, p);
  if (rc) {
    r->off = start;
    return rc;
  }
  p->raw = span(r, start);
  return 0;
}

int kmk_mls_proposal_or_ref_decode(kmk_mls_r *r, kmk_mls_proposal_or_ref *p) {
  memset(p, 0, sizeof *p);
  TRY(kmk_mls_r_u8(r, &p->type));
  if (p->type == 1) return kmk_mls_proposal_decode(r, &p->proposal);
  if (p->type == 2) return vec_view(r, &p->ref);
  return KMK_MLS_ERR_DECODE;
}

/* ---------- commit ---------- */

int kmk_mls_hpke_ct_decode(kmk_mls_r *r, kmk_mls_hpke_ct *c) {
  TRY(vec_view(r, &c->kem_output));
  return vec_view(r, &c->ciphertext);
}

int kmk_mls_update_path_node_decode(kmk_mls_r *r, kmk_mls_update_path_node *n) {
  TRY(vec_view(r, &n->encryption_key));
  TRY(vec_view(r, &n->secrets));
  VALIDATE_LIST(n->secrets, kmk_mls_hpke_ct, kmk_mls_hpke_ct_decode);
  return 0;
}

int kmk_mls_update_path_decode(kmk_mls_r *r, kmk_mls_update_path *p) {
  TRY(kmk_mls_leaf_node_decode(r, &p->leaf));
  TRY(vec_view(r, &p->nodes));
  VALIDATE_LIST(p->nodes, kmk_mls_update_path_node, kmk_mls_update_path_node_decode);
  return 0;
}

int kmk_mls_commit_decode(kmk_mls_r *r, kmk_mls_commit *c) {
  memset(c, 0, sizeof *c);
  TRY(vec_view(r, &c->proposals));
  VALIDATE_LIST(c->proposals, kmk_mls_proposal_or_ref, kmk_mls_proposal_or_ref_decode);
  TRY(optional_flag(r, &c->has_path));
  if (!c->has_path) return 0;
  return kmk_mls_update_path_decode(r, &c->path);
}

/* ---------- framing ---------- */

static int sender_decode(kmk_mls_r *r, kmk_mls_sender *s) {
  s->index = 0;
  TRY(kmk_mls_r_u8(r, &s->type));
  if (s->type == KMK_MLS_SENDER_MEMBER || s->type == KMK_MLS_SENDER_EXTERNAL)
    return kmk_mls_r_u32(r, &s->index);
  if (s->type == KMK_MLS_SENDER_NEW_MEMBER_PROPOSAL || s->type == KMK_MLS_SENDER_NEW_MEMBER_COMMIT)
    return 0;
  return KMK_MLS_ERR_DECODE;
}

int kmk_mls_framed_content_decode(kmk_mls_r *r, kmk_mls_framed_content *f) {
  memset(f, 0, sizeof *f);
  size_t start = r->off;
  TRY(vec_view(r, &f->group_id));
  TRY(kmk_mls_r_u64(r, &f->epoch));
  TRY(sender_decode(r, &f->sender));
  TRY(vec_view(r, &f->authenticated_data));
  TRY(kmk_mls_r_u8(r, &f->content_type));
  switch (f->content_type) {
    case KMK_MLS_CONTENT_APPLICATION: TRY(vec_view(r, &f->application_data)); break;
    case KMK_MLS_CONTENT_PROPOSAL: TRY(kmk_mls_proposal_decode(r, &f->proposal)); break;
    case KMK_MLS_CONTENT_COMMIT: TRY(kmk_mls_commit_decode(r, &f->commit)); break;
    default: return KMK_MLS_ERR_DECODE;
  }
  f->raw = span(r, start);
  return 0;
}

int kmk_mls_public_message_decode(kmk_mls_r *r, kmk_mls_public_message *m) {
  memset(m, 0, sizeof *m);
  size_t start = r->off;
  TRY(kmk_mls_framed_content_decode(r, &m->content));
  TRY(vec_view(r, &m->signature));
  m->raw_through_signature = span(r, start);
  if (m->content.content_type == KMK_MLS_CONTENT_COMMIT) TRY(vec_view(r, &m->confirmation_tag));
  if (m->content.sender.type == KMK_MLS_SENDER_MEMBER) TRY(vec_view(r, &m->membership_tag));
  return 0;
}

int kmk_mls_private_message_decode(kmk_mls_r *r, kmk_mls_private_message *m) {
  memset(m, 0, sizeof *m);
  TRY(vec_view(r, &m->group_id));
  TRY(kmk_mls_r_u64(r, &m->epoch));
  TRY(kmk_mls_r_u8(r, &m->content_type));
  if (m->content_type < 1 || m->content_type > 3) return KMK_MLS_ERR_DECODE;
  TRY(vec_view(r, &m->authenticated_data));
  TRY(vec_view(r, &m->encrypted_sender_data));
  return vec_view(r, &m->ciphertext);
}

/* ---------- welcome, group secrets, group info ---------- */

int kmk_mls_encrypted_group_secrets_decode(kmk_mls_r *r, kmk_mls_encrypted_group_secrets *e) {
  TRY(vec_view(r, &e->new_member));
  return kmk_mls_hpke_ct_decode(r, &e->ct);
}

int kmk_mls_welcome_decode(kmk_mls_r *r, kmk_mls_welcome *w) {
  memset(w, 0, sizeof *w);
  TRY(kmk_mls_r_u16(r, &w->suite));
  TRY(vec_view(r, &w->secrets));
  VALIDATE_LIST(w->secrets, kmk_mls_encrypted_group_secrets, kmk_mls_encrypted_group_secrets_decode);
  return vec_view(r, &w->encrypted_group_info);
}

int kmk_mls_group_secrets_decode(kmk_mls_r *r, kmk_mls_group_secrets *g) {
  memset(g, 0, sizeof *g);
  TRY(vec_view(r, &g->joiner_secret));
  TRY(optional_flag(r, &g->has_path_secret));
  if (g->has_path_secret) TRY(vec_view(r, &g->path_secret));
  TRY(vec_view(r, &g->psks));
  VALIDATE_LIST(g->psks, kmk_mls_psk_id, kmk_mls_psk_id_decode);
  return 0;
}

int kmk_mls_group_context_decode(kmk_mls_r *r, kmk_mls_group_context *g) {
  memset(g, 0, sizeof *g);
  size_t start = r->off;
  TRY(kmk_mls_r_u16(r, &g->version));
  TRY(kmk_mls_r_u16(r, &g->suite));
  TRY(vec_view(r, &g->group_id));
  TRY(kmk_mls_r_u64(r, &g->epoch));
  TRY(vec_view(r, &g->tree_hash));
  TRY(vec_view(r, &g->confirmed_transcript_hash));
  TRY(kmk_mls_extensions_decode(r, &g->extensions));
  g->raw = span(r, start);
  return 0;
}

int kmk_mls_group_info_decode(kmk_mls_r *r, kmk_mls_group_info *g) {
  memset(g, 0, sizeof *g);
  size_t start = r->off;
  TRY(kmk_mls_group_context_decode(r, &g->context));
  TRY(kmk_mls_extensions_decode(r, &g->extensions));
  TRY(vec_view(r, &g->confirmation_tag));
  TRY(kmk_mls_r_u32(r, &g->signer));
  g->tbs = span(r, start);
  return vec_view(r, &g->signature);
}

int kmk_mls_external_sender_decode(kmk_mls_r *r, kmk_mls_external_sender *e) {
  TRY(vec_view(r, &e->signature_key));
  return kmk_mls_credential_decode(r, &e->credential);
}

int kmk_mls_external_senders_decode(kmk_mls_r *r, kmk_mls_view *list) {
  TRY(vec_view(r, list));
  VALIDATE_LIST(*list, kmk_mls_external_sender, kmk_mls_external_sender_decode);
  return 0;
}

/* ---------- ratchet tree ---------- */

static int parent_node_decode(kmk_mls_r *r, kmk_mls_parent_node *p) {
  TRY(vec_view(r, &p->encryption_key));
  TRY(vec_view(r, &p->parent_hash));
  TRY(vec_view(r, &p->unmerged_leaves));
  return p->unmerged_leaves.len % 4 ? KMK_MLS_ERR_DECODE : 0;
}

int kmk_mls_tree_nodes_next(kmk_mls_r *it, int *present, uint8_t *type, kmk_mls_leaf_node *leaf,
                            kmk_mls_parent_node *parent, kmk_mls_view *raw) {
  size_t start = it->off;
  int rc = optional_flag(it, present);
  *type = 0;
  if (!rc && *present) {
    size_t body = 0;
    rc = kmk_mls_r_u8(it, type);
    body = it->off;
    if (!rc && *type == 1) rc = kmk_mls_leaf_node_decode(it, leaf);
    else if (!rc && *type == 2) rc = parent_node_decode(it, parent);
    else if (!rc) rc = KMK_MLS_ERR_DECODE;
    if (!rc && raw) {
      raw->p = it->p + body;
      raw->len = it->off - body;
    }
  }
  if (rc) it->off = start;
  return rc;
}

int kmk_mls_ratchet_tree_decode(kmk_mls_r *r, kmk_mls_view *nodes, uint32_t *n_nodes) {
  size_t save = r->off;
  TRY(vec_view(r, nodes));
  kmk_mls_r it;
  kmk_mls_r_init(&it, nodes->p, nodes->len);
  uint32_t n = 0;
  while (kmk_mls_r_left(&it)) {
    int present;
    uint8_t type;
    kmk_mls_leaf_node leaf;
    kmk_mls_parent_node parent;
    int rc = kmk_mls_tree_nodes_next(&it, &present, &type, &leaf, &parent, NULL);
    /* leaves sit at even indices, parents at odd ones */
    if (!rc && present && type != (n % 2 ? 2 : 1)) rc = KMK_MLS_ERR_DECODE;
    if (rc || n == UINT32_MAX / 2) {
      r->off = save;
      return rc ? rc : KMK_MLS_ERR_DECODE;
    }
    n++;
  }
  *n_nodes = n;
  return 0;
}

int kmk_mls_authenticated_content_decode(kmk_mls_r *r, kmk_mls_authenticated_content *a) {
  memset(a, 0, sizeof *a);
  size_t start = r->off;
  TRY(kmk_mls_r_u16(r, &a->wire_format));
  if (a->wire_format != KMK_MLS_WIRE_PUBLIC && a->wire_format != KMK_MLS_WIRE_PRIVATE)
    return KMK_MLS_ERR_DECODE;
  TRY(kmk_mls_framed_content_decode(r, &a->content));
  TRY(vec_view(r, &a->signature));
  a->confirmed_input = span(r, start);
  if (a->content.content_type == KMK_MLS_CONTENT_COMMIT) TRY(vec_view(r, &a->confirmation_tag));
  a->raw = span(r, start);
  return 0;
}

/* ---------- MLSMessage ---------- */

int kmk_mls_message_decode(kmk_mls_r *r, kmk_mls_message *m) {
  memset(m, 0, sizeof *m);
  TRY(kmk_mls_r_u16(r, &m->version));
  if (m->version != 1) return KMK_MLS_ERR_UNSUPPORTED;
  TRY(kmk_mls_r_u16(r, &m->wire_format));
  switch (m->wire_format) {
    case KMK_MLS_WIRE_PUBLIC: return kmk_mls_public_message_decode(r, &m->pub);
    case KMK_MLS_WIRE_PRIVATE: return kmk_mls_private_message_decode(r, &m->priv);
    case KMK_MLS_WIRE_WELCOME: return kmk_mls_welcome_decode(r, &m->welcome);
    case KMK_MLS_WIRE_GROUP_INFO: return kmk_mls_group_info_decode(r, &m->group_info);
    case KMK_MLS_WIRE_KEY_PACKAGE: return kmk_mls_key_package_decode(r, &m->key_package);
    default: return KMK_MLS_ERR_DECODE;
  }
}

int kmk_mls_message_decode_all(const uint8_t *p, size_t n, kmk_mls_message *m) {
  kmk_mls_r r;
  kmk_mls_r_init(&r, p, n);
  TRY(kmk_mls_message_decode(&r, m));
  return kmk_mls_r_done(&r);
}

/* ---------- iterators ---------- */

int kmk_mls_proposals_next(kmk_mls_r *it, kmk_mls_proposal_or_ref *p) {
  return kmk_mls_proposal_or_ref_decode(it, p);
}
int kmk_mls_path_nodes_next(kmk_mls_r *it, kmk_mls_update_path_node *n) {
  return kmk_mls_update_path_node_decode(it, n);
}
int kmk_mls_group_secrets_next(kmk_mls_r *it, kmk_mls_encrypted_group_secrets *e) {
  return kmk_mls_encrypted_group_secrets_decode(it, e);
}
int kmk_mls_psk_ids_next(kmk_mls_r *it, kmk_mls_psk_id *p) { return kmk_mls_psk_id_decode(it, p); }
int kmk_mls_external_senders_next(kmk_mls_r *it, kmk_mls_external_sender *e) {
  return kmk_mls_external_sender_decode(it, e);
}
