/* test_mls_framing.c - PublicMessage protection (message-protection.json, suite 2): signature
 * over FramedContentTBS with the GroupContext, membership tag, our own protect() round trip,
 * tamper detection, and ProposalRef stability. The PrivateMessage halves of the vectors are not
 * used (DAVE sends handshakes as PublicMessage) and are counted as skipped. */
#include "check.h"
#include "kameko/mls_messages.h"
#include "test_mls_vec.h"

static int private_skipped;

static int check_public(const cJSON *e, const char *field, const char *content_field,
                        const uint8_t *gc, size_t gc_len) {
  size_t n, cn, kn, pn, sn;
  uint8_t *msg = vec_hex(e, field, &n), *content = vec_hex(e, content_field, &cn);
  uint8_t *mkey = vec_hex(e, "membership_key", &kn), *pub = vec_hex(e, "signature_pub", &pn);
  uint8_t *priv = vec_hex(e, "signature_priv", &sn);
  kmk_mls_message m;
  int ok = kmk_mls_message_decode_all(msg, n, &m) == 0 && m.wire_format == KMK_MLS_WIRE_PUBLIC;
  const kmk_mls_public_message *pm = &m.pub;
  if (ok) {
    /* the content is the vector's proposal / commit */
    kmk_mls_w w;
    kmk_mls_w_init(&w);
    if (pm->content.content_type == KMK_MLS_CONTENT_PROPOSAL) kmk_mls_proposal_encode(&w, &pm->content.proposal);
    else kmk_mls_commit_encode(&w, &pm->content.commit);
    ok = w.len == cn && memcmp(w.buf, content, cn) == 0;
    kmk_mls_w_free(&w);
    ok = ok && kmk_mls_public_message_verify_signature(pm, pub, pn, gc, gc_len) == 0 &&
         kmk_mls_public_message_verify_membership(mkey, pm, gc, gc_len) == 0;
    /* wrong group context: both fail */
    uint8_t *gc2 = malloc(gc_len);
    memcpy(gc2, gc, gc_len);
    gc2[gc_len - 2] ^= 1;
    ok = ok && kmk_mls_public_message_verify_signature(pm, pub, pn, gc2, gc_len) == KMK_MLS_ERR_VERIFY &&
         kmk_mls_public_message_verify_membership(mkey, pm, gc2, gc_len) == KMK_MLS_ERR_VERIFY;
    free(gc2);
  }
  if (ok) {
    /* protect the same content ourselves and verify it */
    kmk_mls_w w;
    kmk_mls_w_init(&w);
    const uint8_t *tag = pm->content.content_type == KMK_MLS_CONTENT_COMMIT ? pm->confirmation_tag.p : NULL;
    ok = (!tag || pm->confirmation_tag.len == 32) &&
         kmk_mls_public_message_protect(&w, &pm->content, priv, gc, gc_len, tag, mkey) == 0;
    kmk_mls_message m2;
    ok = ok && kmk_mls_message_decode_all(w.buf, w.len, &m2) == 0 &&
         m2.pub.content.raw.len == pm->content.raw.len &&
         memcmp(m2.pub.content.raw.p, pm->content.raw.p, pm->content.raw.len) == 0 &&
         kmk_mls_public_message_verify_signature(&m2.pub, pub, pn, gc, gc_len) == 0 &&
         kmk_mls_public_message_verify_membership(mkey, &m2.pub, gc, gc_len) == 0;
    if (ok && m2.pub.content.content_type == KMK_MLS_CONTENT_PROPOSAL) {
      uint8_t r1[32], r2[32];
      ok = kmk_mls_proposal_ref(&m2.pub, r1) == 0 && kmk_mls_proposal_ref(pm, r2) == 0 &&
           memcmp(r1, r2, 32) != 0; /* ECDSA signatures differ, so the refs differ */
    }
    kmk_mls_w_free(&w);
  }
  free(msg);
  free(content);
  free(mkey);
  free(pub);
  free(priv);
  return ok;
}

static void test_message_protection_vectors(void) {
  cJSON *j = vec_load("message-protection.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (vec_suite(e) != KMK_MLS_SUITE) {
      vec_skipped++;
      continue;
    }
    size_t gl, tl, cl;
    uint8_t *gid = vec_hex(e, "group_id", &gl), *th = vec_hex(e, "tree_hash", &tl),
            *cth = vec_hex(e, "confirmed_transcript_hash", &cl);
    const cJSON *ep = cJSON_GetObjectItem(e, "epoch");
    uint64_t epoch = cJSON_IsString(ep) ? strtoull(ep->valuestring, NULL, 10) : (uint64_t)ep->valuedouble;
    kmk_mls_bytes gc = {0};
    int ok = kmk_mls_group_context_encode(gid, gl, epoch, th, tl, cth, cl, NULL, 0, &gc) == 0;
    ok = ok && check_public(e, "proposal_pub", "proposal", gc.data, gc.len);
    ok = ok && check_public(e, "commit_pub", "commit", gc.data, gc.len);
    private_skipped += 3;
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
    kmk_mls_bytes_free(&gc);
    free(gid);
    free(th);
    free(cth);
  }
  cJSON_Delete(j);
  printf("message-protection: %d PrivateMessage parts skipped (not used by DAVE)\n", private_skipped);
  vec_report("message-protection");
}

int main(void) {
  RUN(test_message_protection_vectors);
  return check_done();
}
