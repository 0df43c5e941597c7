/* test_mls_commit.c - the sending side against our own receiving side: a member creates a group
 * with an external sender, commits external Add proposals (UpdatePath, Welcome with the tree
 * inline and path secrets), the new members join, then commits by other members (Remove, Add)
 * are processed by everyone, with equal epoch authenticators at every step. */
#include "check.h"
#include "kameko/dave.h"
#include "kameko/mls_group.h"

#define N 4
static kmk_mls_key_package_keys keys[N];
static kmk_mls_bytes kps[N];
static uint8_t ext_priv[32], ext_pub[65];
static const uint8_t GID[8] = {0, 0, 0, 0, 0, 0, 0, 42};

/* An external proposal (sender external 0) as an MLSMessage, signed by the external sender. */
static int ext_proposal(kmk_mls_bytes *out, uint64_t epoch, uint16_t type, const uint8_t *body,
                        size_t blen) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, GID, sizeof GID);
  kmk_mls_w_u64(&w, epoch);
  kmk_mls_w_u8(&w, KMK_MLS_SENDER_EXTERNAL);
  kmk_mls_w_u32(&w, 0);
  kmk_mls_w_vec(&w, NULL, 0);
  kmk_mls_w_u8(&w, KMK_MLS_CONTENT_PROPOSAL);
  kmk_mls_w_u16(&w, type);
  kmk_mls_w_raw(&w, body, blen);
  kmk_mls_r r;
  kmk_mls_framed_content fc;
  kmk_mls_r_init(&r, w.buf, w.len);
  int rc = kmk_mls_framed_content_decode(&r, &fc);
  kmk_mls_w m;
  kmk_mls_w_init(&m);
  if (!rc) rc = kmk_mls_public_message_protect(&m, &fc, ext_priv, NULL, 0, NULL, NULL);
  kmk_mls_w_free(&w);
  return rc ? rc : kmk_mls_w_finish(&m, out);
}

static int store_all(kmk_mls_group *g, kmk_mls_proposal_store *s, kmk_mls_bytes *props, int n) {
  for (int i = 0; i < n; i++) {
    int rc = kmk_mls_group_store_proposal(g, s, props[i].data, props[i].len);
    if (rc) return rc;
  }
  return 0;
}

static int join(kmk_mls_group *g, int who, const kmk_mls_bytes *welcome) {
  kmk_mls_join_keys jk;
  memset(&jk, 0, sizeof jk);
  jk.key_package = kps[who].data;
  jk.key_package_len = kps[who].len;
  memcpy(jk.init_priv, keys[who].init_priv, 32);
  memcpy(jk.encryption_priv, keys[who].encryption_priv, 32);
  memcpy(jk.signature_priv, keys[who].signature_priv, 32);
  return kmk_mls_group_join(g, &jk, welcome->data, welcome->len, NULL, 0);
}

static void test_create_commit_join_follow(void) {
  for (int i = 0; i < N; i++) CHECK_EQ_INT(kmk_dave_key_package_create(1000 + (uint64_t)i, &keys[i], &kps[i]), 0);
  CHECK_EQ_INT(kmk_mls_p256_keygen(ext_priv, ext_pub), 0);
  /* GroupContext extensions: external_senders = [ {ext_pub, basic("gw")} ] */
  kmk_mls_w ext;
  kmk_mls_w_init(&ext);
  kmk_mls_w_u16(&ext, KMK_MLS_EXT_EXTERNAL_SENDERS);
  size_t m1 = kmk_mls_w_begin(&ext); /* extension_data<V> */
  size_t m2 = kmk_mls_w_begin(&ext); /* ExternalSender external_senders<V> */
  kmk_mls_w_vec(&ext, ext_pub, 65);
  kmk_mls_w_u16(&ext, KMK_MLS_CRED_BASIC);
  kmk_mls_w_vec(&ext, "gw", 2);
  kmk_mls_w_end(&ext, m2);
  kmk_mls_w_end(&ext, m1);

  kmk_mls_group g[N];
  memset(g, 0, sizeof g);
  CHECK_EQ_INT(kmk_mls_group_create(&g[0], GID, sizeof GID, kps[0].data, kps[0].len, keys[0].encryption_priv,
                                    keys[0].signature_priv, ext.buf, ext.len), 0);
  kmk_mls_w_free(&ext);
  CHECK_EQ_INT(g[0].epoch, 0);

  /* epoch 0 -> 1: member 0 commits the gateway's Adds of 1 and 2 */
  kmk_mls_bytes props[2] = {{0}, {0}};
  CHECK_EQ_INT(ext_proposal(&props[0], 0, KMK_MLS_PROP_ADD, kps[1].data, kps[1].len), 0);
  CHECK_EQ_INT(ext_proposal(&props[1], 0, KMK_MLS_PROP_ADD, kps[2].data, kps[2].len), 0);
  kmk_mls_proposal_store s0;
  memset(&s0, 0, sizeof s0);
  CHECK_EQ_INT(store_all(&g[0], &s0, props, 2), 0);
  kmk_mls_pending_commit pc;
  int rc = kmk_mls_group_commit(&g[0], &s0, &pc);
  if (rc) fprintf(stderr, "commit: %d %s\n", rc, kmk_mls_strerror(rc));
  CHECK_EQ_INT(rc, 0);
  if (rc) return;
  CHECK(pc.welcome.len > 0);
  for (int i = 1; i <= 2; i++) {
    rc = join(&g[i], i, &pc.welcome);
    if (rc) fprintf(stderr, "join %d: %d %s\n", i, rc, kmk_mls_strerror(rc));
    CHECK_EQ_INT(rc, 0);
  }
  kmk_mls_group_apply_pending(&g[0], &pc);
  kmk_mls_pending_commit_free(&pc);
  kmk_mls_proposal_store_clear(&s0);
  for (int i = 1; i <= 2; i++) {
    CHECK_EQ_INT(g[i].epoch, 1);
    CHECK(memcmp(g[i].secrets.epoch_authenticator, g[0].secrets.epoch_authenticator, 32) == 0);
    CHECK(memcmp(g[i].secrets.exporter, g[0].secrets.exporter, 32) == 0);
    CHECK_EQ_INT(kmk_mls_tree_validate(&g[i].tree, (kmk_mls_view){GID, 8}, g[0].tree_hash), 0);
  }
  kmk_mls_bytes_free(&props[0]);
  kmk_mls_bytes_free(&props[1]);

  /* epoch 1 -> 2: member 1 commits Remove(2) + Add(3); 0 follows, 2 learns it was removed */
  CHECK_EQ_INT(ext_proposal(&props[0], 1, KMK_MLS_PROP_REMOVE, (const uint8_t *)"\0\0\0\2", 4), 0);
  CHECK_EQ_INT(ext_proposal(&props[1], 1, KMK_MLS_PROP_ADD, kps[3].data, kps[3].len), 0);
  kmk_mls_proposal_store st[N];
  memset(st, 0, sizeof st);
  for (int i = 0; i <= 2; i++) CHECK_EQ_INT(store_all(&g[i], &st[i], props, 2), 0);
  rc = kmk_mls_group_commit(&g[1], &st[1], &pc);
  CHECK_EQ_INT(rc, 0);
  if (rc) return;
  int removed = 0;
  CHECK_EQ_INT(kmk_mls_group_process_commit(&g[0], &st[0], pc.commit.data, pc.commit.len, NULL, 0, &removed), 0);
  CHECK(!removed);
  CHECK_EQ_INT(kmk_mls_group_process_commit(&g[2], &st[2], pc.commit.data, pc.commit.len, NULL, 0, &removed), 0);
  CHECK(removed);
  kmk_mls_group_free(&g[2]);
  CHECK_EQ_INT(join(&g[3], 3, &pc.welcome), 0);
  kmk_mls_group_apply_pending(&g[1], &pc);
  kmk_mls_pending_commit_free(&pc);
  CHECK(g[0].epoch == 2 && g[1].epoch == 2 && g[3].epoch == 2);
  CHECK(memcmp(g[0].secrets.epoch_authenticator, g[1].secrets.epoch_authenticator, 32) == 0);
  CHECK(memcmp(g[3].secrets.epoch_authenticator, g[1].secrets.epoch_authenticator, 32) == 0);
  kmk_mls_bytes_free(&props[0]);
  kmk_mls_bytes_free(&props[1]);
  for (int i = 0; i < N; i++) kmk_mls_proposal_store_clear(&st[i]);

  /* epoch 2 -> 3: an empty commit (path only) by member 3; 0 and 1 follow */
  kmk_mls_proposal_store empty;
  memset(&empty, 0, sizeof empty);
  CHECK_EQ_INT(kmk_mls_group_commit(&g[3], &empty, &pc), 0);
  CHECK_EQ_INT(pc.welcome.len, 0);
  for (int i = 0; i <= 1; i++)
    CHECK_EQ_INT(kmk_mls_group_process_commit(&g[i], &empty, pc.commit.data, pc.commit.len, NULL, 0, &removed), 0);
  kmk_mls_group_apply_pending(&g[3], &pc);
  kmk_mls_pending_commit_free(&pc);
  CHECK(memcmp(g[0].secrets.epoch_authenticator, g[3].secrets.epoch_authenticator, 32) == 0);
  CHECK(memcmp(g[1].secrets.epoch_authenticator, g[3].secrets.epoch_authenticator, 32) == 0);
  /* and media keys agree: 0 encrypts, 3 decrypts */
  uint8_t b0[16], b3[16], frame[64];
  size_t fl, ol;
  CHECK_EQ_INT(kmk_dave_group_sender_secret(&g[0], 1000, b0), 0);
  CHECK_EQ_INT(kmk_dave_group_sender_secret(&g[3], 1000, b3), 0);
  kmk_dave_encryptor e;
  kmk_dave_decryptor d;
  kmk_dave_encryptor_init(&e);
  kmk_dave_decryptor_init(&d);
  kmk_dave_encryptor_set_key(&e, b0, 16);
  kmk_dave_decryptor_set_key(&d, b3, 16, 0);
  CHECK_EQ_INT(kmk_dave_encrypt_opus(&e, (const uint8_t *)"hello", 5, frame, sizeof frame, &fl), 0);
  uint8_t outp[64];
  CHECK_EQ_INT(kmk_dave_decrypt_opus(&d, frame, fl, outp, sizeof outp, &ol, 0), 0);
  CHECK(ol == 5 && memcmp(outp, "hello", 5) == 0);
  kmk_dave_encryptor_wipe(&e);
  kmk_dave_decryptor_wipe(&d);
  kmk_mls_group_free(&g[0]);
  kmk_mls_group_free(&g[1]);
  kmk_mls_group_free(&g[3]);
  for (int i = 0; i < N; i++) kmk_mls_bytes_free(&kps[i]);
}

int main(void) {
  RUN(test_create_commit_join_follow);
  return check_done();
}
