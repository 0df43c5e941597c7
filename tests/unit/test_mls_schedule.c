/* test_mls_schedule.c - key schedule and exporter (key-schedule.json), transcript hashes and
 * confirmation tag (transcript-hashes.json), secret tree and sender-data keys (secret-tree.json),
 * suite 2 only; other suites are counted as skipped. */
#include "check.h"
#include "kameko/mls_messages.h"
#include "test_mls_vec.h"

static int key_schedule_case(const cJSON *e) {
  size_t n, gid_len;
  uint8_t *gid = vec_hex(e, "group_id", &gid_len);
  uint8_t init[32];
  uint8_t *ii = vec_hex(e, "initial_init_secret", &n);
  memcpy(init, ii, 32);
  free(ii);
  int ok = 1;
  const cJSON *ep;
  uint64_t epoch = 0;
  cJSON_ArrayForEach(ep, cJSON_GetObjectItem(e, "epochs")) {
    size_t thn, cthn;
    uint8_t *th = vec_hex(ep, "tree_hash", &thn), *cth = vec_hex(ep, "confirmed_transcript_hash", &cthn);
    uint8_t *cs = vec_hex(ep, "commit_secret", &n), *psk = vec_hex(ep, "psk_secret", &n);
    kmk_mls_bytes gc = {0};
    ok &= kmk_mls_group_context_encode(gid, gid_len, epoch, th, thn, cth, cthn, NULL, 0, &gc) == 0;
    ok &= vec_hex_eq(ep, "group_context", gc.data, gc.len);
    kmk_mls_epoch_secrets s;
    ok &= kmk_mls_key_schedule(init, cs, psk, gc.data, gc.len, &s) == 0;
    ok &= vec_hex_eq(ep, "joiner_secret", s.joiner, 32) && vec_hex_eq(ep, "welcome_secret", s.welcome, 32) &&
          vec_hex_eq(ep, "init_secret", s.init, 32) &&
          vec_hex_eq(ep, "sender_data_secret", s.sender_data, 32) &&
          vec_hex_eq(ep, "encryption_secret", s.encryption, 32) &&
          vec_hex_eq(ep, "exporter_secret", s.exporter, 32) &&
          vec_hex_eq(ep, "epoch_authenticator", s.epoch_authenticator, 32) &&
          vec_hex_eq(ep, "external_secret", s.external, 32) &&
          vec_hex_eq(ep, "confirmation_key", s.confirmation_key, 32) &&
          vec_hex_eq(ep, "membership_key", s.membership_key, 32) &&
          vec_hex_eq(ep, "resumption_psk", s.resumption_psk, 32);
    uint8_t w2[32];
    ok &= kmk_mls_welcome_secret(s.joiner, psk, w2) == 0 && memcmp(w2, s.welcome, 32) == 0;
    uint8_t xpriv[32], xpub[65];
    ok &= kmk_mls_hpke_derive_key_pair(s.external, 32, xpriv, xpub) == 0 &&
          vec_hex_eq(ep, "external_pub", xpub, 65);
    const cJSON *x = cJSON_GetObjectItem(ep, "exporter");
    size_t ln, cn, len = (size_t)vec_num(x, "length");
    /* The upstream generator feeds the label's hex text itself as the label string. */
    const char *label = cJSON_GetObjectItem(x, "label")->valuestring;
    ln = strlen(label);
    uint8_t *ctx = vec_hex(x, "context", &cn), out[64];
    ok &= len <= sizeof out &&
          kmk_mls_export(s.exporter, (const uint8_t *)label, ln, ctx, cn, out, len) == 0 &&
          vec_hex_eq(x, "secret", out, len);
    memcpy(init, s.init, 32);
    kmk_mls_epoch_secrets_wipe(&s);
    kmk_mls_bytes_free(&gc);
    free(th);
    free(cth);
    free(cs);
    free(psk);
    free(ctx);
    epoch++;
  }
  free(gid);
  return ok;
}

static void test_key_schedule_vectors(void) {
  vec_run("key-schedule.json", "key-schedule", key_schedule_case);
}

static void test_transcript_vectors(void) {
  cJSON *j = vec_load("transcript-hashes.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (vec_suite(e) != KMK_MLS_SUITE) {
      vec_skipped++;
      continue;
    }
    size_t n, ibn, kn;
    uint8_t *ac = vec_hex(e, "authenticated_content", &n);
    uint8_t *ib = vec_hex(e, "interim_transcript_hash_before", &ibn);
    uint8_t *key = vec_hex(e, "confirmation_key", &kn);
    /* Split AuthenticatedContent into the confirmed input and the confirmation tag. */
    kmk_mls_r r;
    kmk_mls_authenticated_content a;
    kmk_mls_r_init(&r, ac, n);
    int ok = kmk_mls_authenticated_content_decode(&r, &a) == 0 && kmk_mls_r_done(&r) == 0 &&
             a.content.content_type == KMK_MLS_CONTENT_COMMIT && a.confirmation_tag.len == 32;
    uint8_t confirmed[32], interim[32], tag[32];
    ok = ok &&
         kmk_mls_transcript_confirmed(ib, ibn, a.confirmed_input.p, a.confirmed_input.len, confirmed) == 0 &&
         vec_hex_eq(e, "confirmed_transcript_hash_after", confirmed, 32) &&
         kmk_mls_confirmation_tag(key, confirmed, tag) == 0 &&
         memcmp(tag, a.confirmation_tag.p, 32) == 0 &&
         kmk_mls_transcript_interim(confirmed, a.confirmation_tag.p, 32, interim) == 0 &&
         vec_hex_eq(e, "interim_transcript_hash_after", interim, 32);
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
    free(ac);
    free(ib);
    free(key);
  }
  cJSON_Delete(j);
  vec_report("transcript-hashes");
}

static int secret_tree_case(const cJSON *e) {
  size_t n;
  int ok = 1;
  const cJSON *sd = cJSON_GetObjectItem(e, "sender_data");
  uint8_t *sds = vec_hex(sd, "sender_data_secret", &n);
  size_t ctn;
  uint8_t *ct = vec_hex(sd, "ciphertext", &ctn), key[16], nonce[12];
  ok &= kmk_mls_sender_data_keys(sds, ct, ctn, key, nonce) == 0 && vec_hex_eq(sd, "key", key, 16) &&
        vec_hex_eq(sd, "nonce", nonce, 12);
  free(sds);
  free(ct);
  uint8_t *enc = vec_hex(e, "encryption_secret", &n);
  const cJSON *leaves = cJSON_GetObjectItem(e, "leaves");
  uint32_t n_leaves = (uint32_t)cJSON_GetArraySize(leaves);
  for (uint32_t leaf = 0; leaf < n_leaves; leaf++) {
    uint8_t leaf_secret[32];
    ok &= kmk_mls_secret_tree_leaf(enc, n_leaves, leaf, leaf_secret) == 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetArrayItem(leaves, (int)leaf)) {
      uint32_t gen = (uint32_t)vec_num(g, "generation");
      for (int hs = 0; hs < 2; hs++) {
        uint8_t s[32];
        ok &= kmk_mls_expand_with_label(leaf_secret, 32, hs ? "handshake" : "application", NULL, 0,
                                        s, 32) == 0;
        for (uint32_t i = 0; i < gen; i++) ok &= kmk_mls_ratchet_step(s, 32, i, NULL, NULL, s) == 0;
        ok &= kmk_mls_ratchet_step(s, 32, gen, key, nonce, NULL) == 0;
        ok &= vec_hex_eq(g, hs ? "handshake_key" : "application_key", key, 16) &&
              vec_hex_eq(g, hs ? "handshake_nonce" : "application_nonce", nonce, 12);
      }
    }
  }
  free(enc);
  return ok;
}

static void test_secret_tree_vectors(void) {
  vec_run("secret-tree.json", "secret-tree", secret_tree_case);
}

static void test_psk_secret_vectors(void) {
  cJSON *j = vec_load("psk_secret.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (vec_suite(e) != KMK_MLS_SUITE) {
      vec_skipped++;
      continue;
    }
    const cJSON *list = cJSON_GetObjectItem(e, "psks");
    int n = cJSON_GetArraySize(list);
    kmk_mls_psk_input in[16];
    kmk_mls_w ids[16];
    uint8_t *keys[16];
    int ok = n <= 16;
    for (int i = 0; ok && i < n; i++) {
      const cJSON *p = cJSON_GetArrayItem(list, i);
      size_t il, nl, kl;
      uint8_t *id = vec_hex(p, "psk_id", &il), *nonce = vec_hex(p, "psk_nonce", &nl);
      keys[i] = vec_hex(p, "psk", &kl);
      kmk_mls_w_init(&ids[i]); /* PreSharedKeyID, external */
      kmk_mls_w_u8(&ids[i], 1);
      kmk_mls_w_vec(&ids[i], id, il);
      kmk_mls_w_vec(&ids[i], nonce, nl);
      in[i].id = ids[i].buf;
      in[i].id_len = ids[i].len;
      in[i].psk = keys[i];
      in[i].psk_len = kl;
      free(id);
      free(nonce);
    }
    uint8_t out[32];
    ok = ok && kmk_mls_psk_secret(in, (size_t)n, out) == 0 && vec_hex_eq(e, "psk_secret", out, 32);
    for (int i = 0; i < n && i < 16; i++) {
      kmk_mls_w_free(&ids[i]);
      free(keys[i]);
    }
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
  }
  cJSON_Delete(j);
  vec_report("psk_secret");
}

int main(void) {
  RUN(test_psk_secret_vectors);
  RUN(test_key_schedule_vectors);
  RUN(test_transcript_vectors);
  RUN(test_secret_tree_vectors);
  return check_done();
}
