/* dave_gateway.c - owns the binary framing of DAVE's voice-gateway opcodes (protocol v1):
 * parsing server frames (u16 seq | u8 op | payload) with structural validation of the MLS
 * payloads of ops 25, 27, 29 and 30, iterating op-27 lists, and building the client's op-26 and
 * op-28 frames. Pure functions over caller buffers (views point into the input); any thread.
 */
#include <string.h>

#include "kameko/dave.h"

static int msg_span(kmk_mls_r *r, kmk_mls_view *out) {
  size_t start = r->off;
  kmk_mls_message m;
  if (kmk_mls_message_decode(r, &m)) return KMK_DAVE_ERR_DECODE;
  out->p = r->p + start;
  out->len = r->off - start;
  return 0;
}

int kmk_dave_gw_next_proposal(kmk_mls_r *it, kmk_mls_view *msg) {
  size_t save = it->off;
  kmk_mls_message m;
  if (msg_span(it, msg)) {
    it->off = save;
    return KMK_DAVE_ERR_DECODE;
  }
  /* proposals are PublicMessages carrying a proposal */
  if (kmk_mls_message_decode_all(msg->p, msg->len, &m) || m.wire_format != KMK_MLS_WIRE_PUBLIC ||
      m.pub.content.content_type != KMK_MLS_CONTENT_PROPOSAL) {
    it->off = save;
    return KMK_DAVE_ERR_DECODE;
  }
  return 0;
}

int kmk_dave_gw_next_ref(kmk_mls_r *it, kmk_mls_view *ref) {
  kmk_mls_r sub;
  if (kmk_mls_r_vec(it, &sub)) return KMK_DAVE_ERR_DECODE;
  ref->p = sub.p;
  ref->len = sub.len;
  return 0;
}

int kmk_dave_gw_parse(const uint8_t *p, size_t n, kmk_dave_gw_frame *f) {
  memset(f, 0, sizeof *f);
  kmk_mls_r r;
  kmk_mls_r_init(&r, p, n);
  if (kmk_mls_r_u16(&r, &f->seq) || kmk_mls_r_u8(&r, &f->op)) return KMK_DAVE_ERR_DECODE;
  f->payload.p = r.p + r.off;
  f->payload.len = kmk_mls_r_left(&r);
  switch (f->op) {
    case KMK_DAVE_OP_EXTERNAL_SENDER: {
      kmk_mls_external_sender es;
      f->message = f->payload;
      if (kmk_mls_external_sender_decode(&r, &es)) return KMK_DAVE_ERR_DECODE;
      break;
    }
    case KMK_DAVE_OP_PROPOSALS: {
      kmk_mls_r list;
      if (kmk_mls_r_u8(&r, &f->proposals_op) || f->proposals_op > KMK_DAVE_PROPOSALS_REVOKE ||
          kmk_mls_r_vec(&r, &list))
        return KMK_DAVE_ERR_DECODE;
      f->list.p = list.p;
      f->list.len = list.len;
      while (kmk_mls_r_left(&list)) {
        kmk_mls_view v;
        int rc = f->proposals_op == KMK_DAVE_PROPOSALS_APPEND ? kmk_dave_gw_next_proposal(&list, &v)
                                                              : kmk_dave_gw_next_ref(&list, &v);
        if (rc) return rc;
      }
      break;
    }
    case KMK_DAVE_OP_ANNOUNCE_COMMIT: {
      kmk_mls_message m;
      if (kmk_mls_r_u16(&r, &f->transition_id) || msg_span(&r, &f->message)) return KMK_DAVE_ERR_DECODE;
      if (kmk_mls_message_decode_all(f->message.p, f->message.len, &m) ||
          m.wire_format != KMK_MLS_WIRE_PUBLIC || m.pub.content.content_type != KMK_MLS_CONTENT_COMMIT)
        return KMK_DAVE_ERR_DECODE;
      break;
    }
    case KMK_DAVE_OP_WELCOME: {
      kmk_mls_welcome w;
      if (kmk_mls_r_u16(&r, &f->transition_id)) return KMK_DAVE_ERR_DECODE;
      size_t start = r.off;
      if (kmk_mls_welcome_decode(&r, &w)) return KMK_DAVE_ERR_DECODE;
      f->message.p = r.p + start;
      f->message.len = r.off - start;
      break;
    }
    default:
      r.off = r.len; /* JSON-carried or client ops: payload kept as is */
      break;
  }
  return kmk_mls_r_done(&r) ? KMK_DAVE_ERR_DECODE : 0;
}

int kmk_dave_gw_key_package(kmk_mls_w *w, const uint8_t *kp, size_t kp_len) {
  kmk_mls_w_u8(w, KMK_DAVE_OP_KEY_PACKAGE);
  return kmk_mls_w_raw(w, kp, kp_len);
}

int kmk_dave_gw_commit_welcome(kmk_mls_w *w, const uint8_t *commit, size_t commit_len,
                               const uint8_t *welcome, size_t welcome_len) {
  kmk_mls_w_u8(w, KMK_DAVE_OP_COMMIT_WELCOME);
  kmk_mls_w_raw(w, commit, commit_len);
  if (welcome && welcome_len) kmk_mls_w_raw(w, welcome, welcome_len);
  return w->err;
}
