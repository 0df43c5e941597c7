/* mls_framing.c - owns PublicMessage protection (RFC 9420 section 6): FramedContentTBS,
 * signatures, membership tags, ProposalRef and the confirmed-transcript input of a commit.
 * Pure functions; any thread.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/mls_messages.h"

static int needs_context(uint8_t sender_type) {
  return sender_type == KMK_MLS_SENDER_MEMBER || sender_type == KMK_MLS_SENDER_NEW_MEMBER_COMMIT;
}

int kmk_mls_framed_content_tbs(kmk_mls_w *w, uint16_t wire_format, const kmk_mls_framed_content *fc,
                               const uint8_t *gc, size_t gc_len) {
  kmk_mls_w_u16(w, 1);
  kmk_mls_w_u16(w, wire_format);
  kmk_mls_framed_content_encode(w, fc);
  if (needs_context(fc->sender.type)) {
    if (!gc && !w->err) w->err = KMK_MLS_ERR_ARG;
    kmk_mls_w_raw(w, gc, gc_len);
  }
  return w->err;
}

int kmk_mls_public_message_verify_signature(const kmk_mls_public_message *m, const uint8_t *pub,
                                            size_t pub_len, const uint8_t *gc, size_t gc_len) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  int rc = kmk_mls_framed_content_tbs(&w, KMK_MLS_WIRE_PUBLIC, &m->content, gc, gc_len);
  if (!rc)
    rc = kmk_mls_verify_with_label(pub, pub_len, "FramedContentTBS", w.buf, w.len, m->signature.p,
                                   m->signature.len);
  kmk_mls_w_free(&w);
  return rc == KMK_MLS_ERR_CRYPTO ? KMK_MLS_ERR_VERIFY : rc;
}

/* FramedContentAuthData: signature<V> and, for commits, confirmation_tag<V>. */
static void auth_data(kmk_mls_w *w, uint8_t content_type, kmk_mls_view sig, kmk_mls_view tag) {
  kmk_mls_w_vec(w, sig.p, sig.len);
  if (content_type == KMK_MLS_CONTENT_COMMIT) kmk_mls_w_vec(w, tag.p, tag.len);
}

int kmk_mls_membership_tag(const uint8_t key[KMK_MLS_NH], const kmk_mls_public_message *m,
                           const uint8_t *gc, size_t gc_len, uint8_t out[KMK_MLS_NH]) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_framed_content_tbs(&w, KMK_MLS_WIRE_PUBLIC, &m->content, gc, gc_len);
  auth_data(&w, m->content.content_type, m->signature, m->confirmation_tag);
  int rc = w.err ? w.err : kmk_mls_mac(key, KMK_MLS_NH, w.buf, w.len, out);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_public_message_verify_membership(const uint8_t key[KMK_MLS_NH],
                                             const kmk_mls_public_message *m, const uint8_t *gc,
                                             size_t gc_len) {
  if (m->content.sender.type != KMK_MLS_SENDER_MEMBER) return KMK_MLS_ERR_ARG;
  uint8_t tag[KMK_MLS_NH];
  int rc = kmk_mls_membership_tag(key, m, gc, gc_len, tag);
  if (rc) return rc;
  if (m->membership_tag.len != KMK_MLS_NH || CRYPTO_memcmp(tag, m->membership_tag.p, KMK_MLS_NH))
    return KMK_MLS_ERR_VERIFY;
  return 0;
}

int kmk_mls_public_message_protect(kmk_mls_w *w, const kmk_mls_framed_content *fc,
                                   const uint8_t sig_priv[KMK_MLS_PRIV], const uint8_t *gc,
                                   size_t gc_len, const uint8_t *confirmation_tag,
                                   const uint8_t *membership_key) {
  if (fc->content_type == KMK_MLS_CONTENT_COMMIT && !confirmation_tag) return KMK_MLS_ERR_ARG;
  if (fc->sender.type == KMK_MLS_SENDER_MEMBER && !membership_key) return KMK_MLS_ERR_ARG;
  kmk_mls_w tbs;
  kmk_mls_w_init(&tbs);
  uint8_t sig[KMK_MLS_SIG_MAX];
  size_t sig_len = sizeof sig;
  int rc = kmk_mls_framed_content_tbs(&tbs, KMK_MLS_WIRE_PUBLIC, fc, gc, gc_len);
  if (!rc) rc = kmk_mls_sign_with_label(sig_priv, "FramedContentTBS", tbs.buf, tbs.len, sig, &sig_len);
  kmk_mls_view sv = {sig, sig_len}, tv = {confirmation_tag, confirmation_tag ? KMK_MLS_NH : 0};
  if (!rc && fc->sender.type == KMK_MLS_SENDER_MEMBER) {
    uint8_t tag[KMK_MLS_NH];
    auth_data(&tbs, fc->content_type, sv, tv); /* tbs now holds AuthenticatedContentTBM */
    rc = tbs.err ? tbs.err : kmk_mls_mac(membership_key, KMK_MLS_NH, tbs.buf, tbs.len, tag);
    if (!rc) {
      kmk_mls_w_u16(w, 1);
      kmk_mls_w_u16(w, KMK_MLS_WIRE_PUBLIC);
      kmk_mls_framed_content_encode(w, fc);
      auth_data(w, fc->content_type, sv, tv);
      kmk_mls_w_vec(w, tag, sizeof tag);
    }
  } else if (!rc) {
    kmk_mls_w_u16(w, 1);
    kmk_mls_w_u16(w, KMK_MLS_WIRE_PUBLIC);
    kmk_mls_framed_content_encode(w, fc);
    auth_data(w, fc->content_type, sv, tv);
  }
  kmk_mls_w_free(&tbs);
  return rc ? rc : w->err;
}

int kmk_mls_proposal_ref(const kmk_mls_public_message *m, uint8_t out[KMK_MLS_NH]) {
  if (m->content.content_type != KMK_MLS_CONTENT_PROPOSAL) return KMK_MLS_ERR_ARG;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u16(&w, KMK_MLS_WIRE_PUBLIC);
  kmk_mls_w_raw(&w, m->raw_through_signature.p, m->raw_through_signature.len);
  int rc = w.err ? w.err : kmk_mls_ref_hash("MLS 1.0 Proposal Reference", w.buf, w.len, out);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_mls_public_message_confirmed_input(const kmk_mls_public_message *m, kmk_mls_w *w) {
  kmk_mls_w_u16(w, KMK_MLS_WIRE_PUBLIC);
  return kmk_mls_w_raw(w, m->raw_through_signature.p, m->raw_through_signature.len);
}
