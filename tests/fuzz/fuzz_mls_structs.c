/* fuzz_mls_structs.c - libFuzzer target for every other MLS structure decoder. The first input
 * byte selects the decoder, the rest is the encoding. Property: a full decode re-encodes to the
 * same bytes (where an encoder exists); iterators over validated lists never fail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/mls_messages.h"

static void same(const kmk_mls_w *w, const uint8_t *p, size_t n) {
  if (w->err || w->len != n || memcmp(w->buf, p, n) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0] % 16;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  kmk_mls_r r;
  kmk_mls_r_init(&r, p, n);
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  int rc;
  switch (sel) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: {
      kmk_mls_proposal pr;
      rc = kmk_mls_proposal_body_decode(&r, (uint16_t)(sel + 1), &pr);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_proposal_body_encode(&w, &pr); same(&w, p, n); }
      break;
    }
    case 7: {
      kmk_mls_commit c;
      rc = kmk_mls_commit_decode(&r, &c);
      if (!rc && !kmk_mls_r_done(&r)) {
        kmk_mls_commit_encode(&w, &c);
        same(&w, p, n);
        kmk_mls_r it;
        kmk_mls_r_init(&it, c.proposals.p, c.proposals.len);
        kmk_mls_proposal_or_ref po;
        while (kmk_mls_r_left(&it)) if (kmk_mls_proposals_next(&it, &po)) abort();
      }
      break;
    }
    case 8: {
      kmk_mls_group_secrets g;
      rc = kmk_mls_group_secrets_decode(&r, &g);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_group_secrets_encode(&w, &g); same(&w, p, n); }
      break;
    }
    case 9: {
      kmk_mls_view nodes;
      uint32_t count;
      rc = kmk_mls_ratchet_tree_decode(&r, &nodes, &count);
      if (!rc) {
        kmk_mls_r it;
        kmk_mls_r_init(&it, nodes.p, nodes.len);
        for (uint32_t i = 0; i < count; i++) {
          int present;
          uint8_t type;
          kmk_mls_leaf_node leaf;
          kmk_mls_parent_node parent;
          if (kmk_mls_tree_nodes_next(&it, &present, &type, &leaf, &parent, NULL)) abort();
        }
        if (kmk_mls_r_left(&it)) abort();
      }
      break;
    }
    case 10: {
      kmk_mls_view list;
      rc = kmk_mls_external_senders_decode(&r, &list);
      if (!rc) {
        kmk_mls_r it;
        kmk_mls_r_init(&it, list.p, list.len);
        kmk_mls_external_sender es;
        while (kmk_mls_r_left(&it)) if (kmk_mls_external_senders_next(&it, &es)) abort();
      }
      break;
    }
    case 11: {
      kmk_mls_leaf_node l;
      rc = kmk_mls_leaf_node_decode(&r, &l);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_leaf_node_encode(&w, &l); same(&w, p, n); }
      break;
    }
    case 12: {
      kmk_mls_framed_content f;
      rc = kmk_mls_framed_content_decode(&r, &f);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_framed_content_encode(&w, &f); same(&w, p, n); }
      break;
    }
    case 13: {
      kmk_mls_group_context g;
      rc = kmk_mls_group_context_decode(&r, &g);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_group_context_encode2(&w, &g); same(&w, p, n); }
      break;
    }
    case 14: {
      kmk_mls_proposal_or_ref po;
      rc = kmk_mls_proposal_or_ref_decode(&r, &po);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_proposal_or_ref_encode(&w, &po); same(&w, p, n); }
      break;
    }
    default: {
      kmk_mls_external_sender es;
      rc = kmk_mls_external_sender_decode(&r, &es);
      if (!rc && !kmk_mls_r_done(&r)) { kmk_mls_external_sender_encode(&w, &es); same(&w, p, n); }
      break;
    }
  }
  (void)rc;
  kmk_mls_w_free(&w);
  return 0;
}
