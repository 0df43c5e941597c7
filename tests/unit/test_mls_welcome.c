/* test_mls_welcome.c - Welcome processing (welcome.json), joining by Welcome and the initial
 * epoch authenticator (passive-client-welcome.json, cases without PSKs), and KeyPackage creation
 * with a basic credential (user id u64 big-endian) and DAVE's capabilities. Suite 2 only. */
#include "check.h"
#include "kameko/mls_group.h"
#include "test_mls_vec.h"

/* Strips the MLSMessage header (version 1, wire format wf) and returns the body view. */
static int unwrap(const uint8_t *p, size_t n, uint16_t wf, kmk_mls_message *m) {
  if (kmk_mls_message_decode_all(p, n, m) || m->wire_format != wf) return -1;
  return 0;
}

static int welcome_case(const cJSON *e) {
  size_t kn, wn, n;
  uint8_t *kpm = vec_hex(e, "key_package", &kn), *wm = vec_hex(e, "welcome", &wn);
  uint8_t *init = vec_hex(e, "init_priv", &n), *signer = vec_hex(e, "signer_pub", &n);
  size_t signer_len = n;
  kmk_mls_message km, wmsg;
  int ok = unwrap(kpm, kn, KMK_MLS_WIRE_KEY_PACKAGE, &km) == 0 &&
           unwrap(wm, wn, KMK_MLS_WIRE_WELCOME, &wmsg) == 0;
  kmk_mls_bytes secrets = {0}, gi_bytes = {0};
  if (ok) {
    const kmk_mls_key_package *kp = &wmsg.key_package;
    (void)kp;
    ok = kmk_mls_welcome_open_secrets(&wmsg.welcome, km.key_package.raw.p, km.key_package.raw.len,
                                      init, &secrets) == 0;
  }
  kmk_mls_group_secrets gs;
  kmk_mls_group_info gi;
  uint8_t ws[32];
  if (ok) {
    kmk_mls_r r;
    kmk_mls_r_init(&r, secrets.data, secrets.len);
    ok = kmk_mls_group_secrets_decode(&r, &gs) == 0 && kmk_mls_r_done(&r) == 0 &&
         gs.joiner_secret.len == 32 && gs.psks.len == 0 &&
         kmk_mls_welcome_secret(gs.joiner_secret.p, NULL, ws) == 0 &&
         kmk_mls_welcome_open_group_info(&wmsg.welcome, ws, &gi_bytes) == 0;
  }
  if (ok) {
    kmk_mls_r r;
    kmk_mls_r_init(&r, gi_bytes.data, gi_bytes.len);
    ok = kmk_mls_group_info_decode(&r, &gi) == 0 && kmk_mls_r_done(&r) == 0;
    ok = ok && kmk_mls_verify_with_label(signer, signer_len, "GroupInfoTBS", gi.tbs.p, gi.tbs.len,
                                         gi.signature.p, gi.signature.len) == 0;
    kmk_mls_epoch_secrets s;
    uint8_t tag[32];
    ok = ok && kmk_mls_key_schedule_from_joiner(gs.joiner_secret.p, NULL, gi.context.raw.p,
                                                gi.context.raw.len, &s) == 0 &&
         kmk_mls_confirmation_tag(s.confirmation_key, gi.context.confirmed_transcript_hash.p, tag) == 0 &&
         gi.confirmation_tag.len == 32 && memcmp(tag, gi.confirmation_tag.p, 32) == 0;
    kmk_mls_epoch_secrets_wipe(&s);
  }
  /* a different init key cannot open it */
  if (ok) {
    kmk_mls_bytes other = {0};
    init[5] ^= 1;
    ok = kmk_mls_welcome_open_secrets(&wmsg.welcome, km.key_package.raw.p, km.key_package.raw.len,
                                      init, &other) != 0;
    kmk_mls_bytes_free(&other);
  }
  kmk_mls_bytes_free(&secrets);
  kmk_mls_bytes_free(&gi_bytes);
  free(kpm);
  free(wm);
  free(init);
  free(signer);
  return ok;
}

static void test_welcome_vectors(void) {
  vec_run("welcome.json", "welcome", welcome_case);
}

static int passive_case(const cJSON *e, int *skip) {
  *skip = 0;
  size_t kn, wn, tn = 0, n;
  kmk_mls_external_psk psks[8];
  uint8_t *psk_bufs[16];
  int n_psks = 0;
  const cJSON *pe;
  cJSON_ArrayForEach(pe, cJSON_GetObjectItem(e, "external_psks")) {
    if (n_psks == 8) break;
    psk_bufs[2 * n_psks] = vec_hex(pe, "psk_id", &psks[n_psks].id_len);
    psk_bufs[2 * n_psks + 1] = vec_hex(pe, "psk", &psks[n_psks].psk_len);
    psks[n_psks].id = psk_bufs[2 * n_psks];
    psks[n_psks].psk = psk_bufs[2 * n_psks + 1];
    n_psks++;
  }
  uint8_t *kpm = vec_hex(e, "key_package", &kn), *wm = vec_hex(e, "welcome", &wn);
  uint8_t *tree = vec_hex(e, "ratchet_tree", &tn); /* null in the file -> NULL here */
  kmk_mls_join_keys keys;
  memset(&keys, 0, sizeof keys);
  uint8_t *a = vec_hex(e, "init_priv", &n), *b = vec_hex(e, "encryption_priv", &n),
          *c = vec_hex(e, "signature_priv", &n);
  memcpy(keys.init_priv, a, 32);
  memcpy(keys.encryption_priv, b, 32);
  memcpy(keys.signature_priv, c, 32);
  keys.psks = psks;
  keys.n_psks = (size_t)n_psks;
  free(a);
  free(b);
  free(c);
  kmk_mls_message km, wmsg;
  int ok = unwrap(kpm, kn, KMK_MLS_WIRE_KEY_PACKAGE, &km) == 0 && unwrap(wm, wn, KMK_MLS_WIRE_WELCOME, &wmsg) == 0;
  keys.key_package = km.key_package.raw.p;
  keys.key_package_len = km.key_package.raw.len;
  kmk_mls_group g;
  int rc = ok ? kmk_mls_group_join(&g, &keys, wm + 4, wn - 4, tree, tn) : -99;
  if (rc) fprintf(stderr, "  join: %d (%s)\n", rc, kmk_mls_strerror(rc));
  ok = ok && rc == 0 && vec_hex_eq(e, "initial_epoch_authenticator", g.secrets.epoch_authenticator, 32);
  if (rc == 0) {
    /* the joined state is coherent: our leaf holds our key, the tree hash matches */
    uint8_t h[32];
    ok = ok && kmk_mls_tree_root_hash(&g.tree, h) == 0 && memcmp(h, g.tree_hash, 32) == 0;
    int held = 0;
    for (uint32_t x = 0; x < kmk_mls_tree_width_of(&g.tree); x++) held += g.path_keys[x].present;
    printf("  joined at leaf %u of %u, epoch %llu, %d path keys from the path secret\n", g.my_leaf,
           g.tree.n_leaves, (unsigned long long)g.epoch, held);
    kmk_mls_group_free(&g);
  }
  free(kpm);
  free(wm);
  free(tree);
  for (int i = 0; i < 2 * n_psks; i++) free(psk_bufs[i]);
  return ok;
}

static void test_passive_client_welcome(void) {
  cJSON *j = vec_load("passive-client-welcome.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (vec_suite(e) != KMK_MLS_SUITE) {
      vec_skipped++;
      continue;
    }
    int skip;
    int ok = passive_case(e, &skip);
    if (skip) continue;
    CHECK(ok);
    ok ? vec_passed++ : vec_failed++;
  }
  cJSON_Delete(j);
  vec_report("passive-client-welcome");
}

static void test_key_package_create(void) {
  uint8_t id[8] = {0x02, 0x31, 0x8e, 0x1f, 0x0c, 0x40, 0x00, 0x00}; /* user id, u64 big-endian */
  kmk_mls_key_package_keys keys;
  kmk_mls_bytes kp = {0};
  CHECK_EQ_INT(kmk_mls_key_package_create(id, 8, 0, &keys, &kp), 0);
  kmk_mls_r r;
  kmk_mls_key_package k;
  kmk_mls_r_init(&r, kp.data, kp.len);
  CHECK_EQ_INT(kmk_mls_key_package_decode(&r, &k), 0);
  CHECK_EQ_INT(kmk_mls_r_done(&r), 0);
  CHECK(k.version == 1 && k.suite == 2);
  CHECK(k.leaf.credential.type == KMK_MLS_CRED_BASIC && k.leaf.credential.identity.len == 8 &&
        memcmp(k.leaf.credential.identity.p, id, 8) == 0);
  CHECK(kmk_mls_u16_list_has(k.leaf.capabilities.versions, 1) && k.leaf.capabilities.versions.len == 2);
  CHECK(kmk_mls_u16_list_has(k.leaf.capabilities.suites, 2) && k.leaf.capabilities.suites.len == 2);
  CHECK(kmk_mls_u16_list_has(k.leaf.capabilities.credentials, 1) && k.leaf.capabilities.credentials.len == 2);
  CHECK(k.leaf.capabilities.extensions.len == 0 && k.leaf.capabilities.proposals.len == 0);
  CHECK(k.leaf.source == KMK_MLS_LEAF_KEY_PACKAGE && k.leaf.not_after == UINT64_MAX);
  CHECK(k.leaf.signature_key.len == 65 && memcmp(k.leaf.signature_key.p, keys.signature_pub, 65) == 0);
  /* both signatures verify */
  CHECK_EQ_INT(kmk_mls_verify_with_label(k.leaf.signature_key.p, 65, "KeyPackageTBS", k.tbs.p, k.tbs.len,
                                         k.signature.p, k.signature.len), 0);
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_view none = {NULL, 0};
  kmk_mls_leaf_node_tbs_encode(&w, &k.leaf, none, 0);
  CHECK_EQ_INT(kmk_mls_verify_with_label(k.leaf.signature_key.p, 65, "LeafNodeTBS", w.buf, w.len,
                                         k.leaf.signature.p, k.leaf.signature.len), 0);
  kmk_mls_w_free(&w);
  /* keys match */
  uint8_t pub[65];
  CHECK(kmk_mls_p256_pub_from_priv(keys.init_priv, pub) == 0 && memcmp(pub, k.init_key.p, 65) == 0);
  CHECK(kmk_mls_p256_pub_from_priv(keys.encryption_priv, pub) == 0 && memcmp(pub, k.leaf.encryption_key.p, 65) == 0);
  /* reusing the signature key keeps it */
  kmk_mls_bytes kp2 = {0};
  CHECK_EQ_INT(kmk_mls_key_package_create(id, 8, 1, &keys, &kp2), 0);
  kmk_mls_r_init(&r, kp2.data, kp2.len);
  CHECK_EQ_INT(kmk_mls_key_package_decode(&r, &k), 0);
  CHECK(memcmp(k.leaf.signature_key.p, keys.signature_pub, 65) == 0);
  uint8_t ref1[32], ref2[32];
  CHECK_EQ_INT(kmk_mls_key_package_ref(kp.data, kp.len, ref1), 0);
  CHECK_EQ_INT(kmk_mls_key_package_ref(kp2.data, kp2.len, ref2), 0);
  CHECK(memcmp(ref1, ref2, 32) != 0);
  kmk_mls_bytes_free(&kp);
  kmk_mls_bytes_free(&kp2);
}

int main(void) {
  RUN(test_welcome_vectors);
  RUN(test_passive_client_welcome);
  RUN(test_key_package_create);
  return check_done();
}
