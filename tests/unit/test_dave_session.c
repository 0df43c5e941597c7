/* test_dave_session.c - three DAVE sessions driven by a simulated voice gateway written here:
 * external sender, key packages, proposals, commit + Welcome, transitions (ready / execute),
 * media between all members, a removal committed by another member, a burst of frames that do
 * not decrypt (tolerated, then op 31 and a fresh key package), an invalid commit (op 31 and a
 * fresh key package), and the downgrade to passthrough. */
#include <stdlib.h>

#include "check.h"
#include "kameko/dave.h"

static uint8_t gw_priv[32], gw_pub[65];
static uint16_t seq;
#define CHANNEL 77

/* u16 seq | u8 op | payload */
static size_t gw_frame(uint8_t *out, uint8_t op, const uint8_t *p1, size_t n1, const uint8_t *p2,
                       size_t n2) {
  seq++;
  out[0] = (uint8_t)(seq >> 8);
  out[1] = (uint8_t)seq;
  out[2] = op;
  if (n1) memcpy(out + 3, p1, n1);
  if (n2) memcpy(out + 3 + n1, p2, n2);
  return 3 + n1 + n2;
}

static int pop_op(kmk_dave_session *s, uint8_t op, kmk_mls_bytes *data) {
  kmk_dave_out_frame f;
  while (kmk_dave_session_pop(s, &f)) {
    if (f.op == op) {
      *data = f.data;
      return 1;
    }
    kmk_mls_bytes_free(&f.data);
  }
  return 0;
}

static void external_proposal(kmk_mls_w *list, uint64_t epoch, uint16_t type, const uint8_t *b, size_t n) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  uint8_t gid[8] = {0, 0, 0, 0, 0, 0, 0, CHANNEL};
  kmk_mls_w_vec(&w, gid, 8);
  kmk_mls_w_u64(&w, epoch);
  kmk_mls_w_u8(&w, KMK_MLS_SENDER_EXTERNAL);
  kmk_mls_w_u32(&w, 0);
  kmk_mls_w_vec(&w, NULL, 0);
  kmk_mls_w_u8(&w, KMK_MLS_CONTENT_PROPOSAL);
  kmk_mls_w_u16(&w, type);
  kmk_mls_w_raw(&w, b, n);
  kmk_mls_r r;
  kmk_mls_framed_content fc;
  kmk_mls_r_init(&r, w.buf, w.len);
  CHECK_EQ_INT(kmk_mls_framed_content_decode(&r, &fc), 0);
  CHECK_EQ_INT(kmk_mls_public_message_protect(list, &fc, gw_priv, NULL, 0, NULL, NULL), 0);
  kmk_mls_w_free(&w);
}

/* Sends an op-27 append with the proposals in `list` to session s. */
static int send_proposals(kmk_dave_session *s, const kmk_mls_w *list) {
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_u8(&w, KMK_DAVE_PROPOSALS_APPEND);
  kmk_mls_w_vec(&w, list->buf, list->len);
  uint8_t *f = malloc(w.len + 3);
  size_t n = gw_frame(f, KMK_DAVE_OP_PROPOSALS, w.buf, w.len, NULL, 0);
  int rc = kmk_dave_session_binary(s, f, n, 0);
  free(f);
  kmk_mls_w_free(&w);
  return rc;
}

/* Splits an op-28 frame into commit and Welcome. */
static void split28(const kmk_mls_bytes *cw, kmk_mls_view *commit, kmk_mls_view *welcome) {
  kmk_mls_r r;
  kmk_mls_r_init(&r, cw->data + 1, cw->len - 1);
  kmk_mls_message m;
  CHECK_EQ_INT(kmk_mls_message_decode(&r, &m), 0);
  commit->p = cw->data + 1;
  commit->len = r.off;
  welcome->p = cw->data + 1 + r.off;
  welcome->len = kmk_mls_r_left(&r);
}

static int send_tid(kmk_dave_session *s, uint8_t op, uint16_t tid, kmk_mls_view msg) {
  uint8_t t[2] = {(uint8_t)(tid >> 8), (uint8_t)tid};
  uint8_t *f = malloc(msg.len + 5);
  size_t n = gw_frame(f, op, t, 2, msg.p, msg.len);
  int rc = kmk_dave_session_binary(s, f, n, 1000);
  free(f);
  return rc;
}

static int media_ok(kmk_dave_session *from, uint64_t from_id, kmk_dave_session *to) {
  uint8_t enc[64], dec[64];
  size_t n, m;
  if (kmk_dave_session_encrypt(from, (const uint8_t *)"opus!", 5, enc, sizeof enc, &n)) return 0;
  if (kmk_dave_session_decrypt(to, from_id, enc, n, dec, sizeof dec, &m, 2000)) return 0;
  return m == 5 && memcmp(dec, "opus!", 5) == 0;
}

static void test_session_lifecycle(void) {
  CHECK_EQ_INT(kmk_mls_p256_keygen(gw_priv, gw_pub), 0);
  uint8_t pkg[80];
  size_t pn = 0;
  pkg[pn++] = 0x40;
  pkg[pn++] = 65;
  memcpy(pkg + pn, gw_pub, 65);
  pn += 65;
  pkg[pn++] = 0;
  pkg[pn++] = 1;
  pkg[pn++] = 0;
  kmk_dave_session *s[4] = {NULL};
  kmk_mls_bytes kp[4] = {{0}};
  uint8_t f[256];
  for (int i = 1; i <= 3; i++) {
    s[i] = kmk_dave_session_new((uint64_t)i, CHANNEL);
    uint64_t users[3] = {1, 2, 3};
    kmk_dave_session_set_users(s[i], users, 3);
    size_t n = gw_frame(f, KMK_DAVE_OP_EXTERNAL_SENDER, pkg, pn, NULL, 0);
    CHECK_EQ_INT(kmk_dave_session_binary(s[i], f, n, 0), 0);
    CHECK(pop_op(s[i], KMK_DAVE_OP_KEY_PACKAGE, &kp[i]));
  }
  /* the gateway asks 1 to add 2 and 3 */
  kmk_mls_w list;
  kmk_mls_w_init(&list);
  external_proposal(&list, 0, KMK_MLS_PROP_ADD, kp[2].data + 1, kp[2].len - 1);
  external_proposal(&list, 0, KMK_MLS_PROP_ADD, kp[3].data + 1, kp[3].len - 1);
  CHECK_EQ_INT(send_proposals(s[1], &list), 0);
  kmk_mls_w_free(&list);
  kmk_mls_bytes cw = {0}, tmp = {0};
  CHECK(pop_op(s[1], KMK_DAVE_OP_COMMIT_WELCOME, &cw));
  kmk_mls_view commit, welcome;
  split28(&cw, &commit, &welcome);
  CHECK(welcome.len > 0);
  CHECK_EQ_INT(send_tid(s[1], KMK_DAVE_OP_ANNOUNCE_COMMIT, 5, commit), 0);
  for (int i = 2; i <= 3; i++) CHECK_EQ_INT(send_tid(s[i], KMK_DAVE_OP_WELCOME, 5, welcome), 0);
  for (int i = 1; i <= 3; i++) {
    CHECK(pop_op(s[i], KMK_DAVE_OP_READY_FOR_TRANSITION, &tmp));
    CHECK(tmp.len && strstr((const char *)tmp.data, "\"transition_id\":5") != NULL);
    kmk_mls_bytes_free(&tmp);
    CHECK(!kmk_dave_session_ready(s[i]) || i == 0);
    CHECK_EQ_INT(kmk_dave_session_execute_transition(s[i], 5, 1000), 0);
    CHECK(kmk_dave_session_ready(s[i]));
  }
  kmk_mls_bytes_free(&cw);
  char c1[31], c2[31], c3[31];
  CHECK(kmk_dave_session_privacy_code(s[1], c1) == 0 && kmk_dave_session_privacy_code(s[2], c2) == 0 &&
        kmk_dave_session_privacy_code(s[3], c3) == 0);
  CHECK(strcmp(c1, c2) == 0 && strcmp(c1, c3) == 0);
  CHECK(media_ok(s[1], 1, s[2]) && media_ok(s[2], 2, s[3]) && media_ok(s[3], 3, s[1]));

  /* the gateway removes 3; both 1 and 2 commit, the gateway picks 2's */
  uint32_t leaf3;
  CHECK_EQ_INT(kmk_dave_group_find_user(kmk_dave_session_group(s[1]), 3, &leaf3), 0);
  uint8_t rem[4] = {(uint8_t)(leaf3 >> 24), (uint8_t)(leaf3 >> 16), (uint8_t)(leaf3 >> 8), (uint8_t)leaf3};
  kmk_mls_w_init(&list);
  external_proposal(&list, 1, KMK_MLS_PROP_REMOVE, rem, 4);
  for (int i = 1; i <= 3; i++) CHECK_EQ_INT(send_proposals(s[i], &list), 0);
  kmk_mls_w_free(&list);
  kmk_mls_bytes cw1 = {0}, cw2 = {0};
  CHECK(pop_op(s[1], KMK_DAVE_OP_COMMIT_WELCOME, &cw1));
  CHECK(pop_op(s[2], KMK_DAVE_OP_COMMIT_WELCOME, &cw2));
  split28(&cw2, &commit, &welcome);
  CHECK_EQ_INT(welcome.len, 0);
  for (int i = 1; i <= 3; i++) CHECK_EQ_INT(send_tid(s[i], KMK_DAVE_OP_ANNOUNCE_COMMIT, 6, commit), 0);
  CHECK(pop_op(s[3], KMK_DAVE_OP_KEY_PACKAGE, &tmp)); /* removed: starts over */
  kmk_mls_bytes_free(&tmp);
  CHECK(!kmk_dave_session_ready(s[3]));
  for (int i = 1; i <= 2; i++) {
    CHECK(pop_op(s[i], KMK_DAVE_OP_READY_FOR_TRANSITION, &tmp));
    kmk_mls_bytes_free(&tmp);
    CHECK_EQ_INT(kmk_dave_session_execute_transition(s[i], 6, 3000), 0);
  }
  CHECK(kmk_dave_session_group(s[1])->epoch == 2 && kmk_dave_session_group(s[2])->epoch == 2);
  CHECK(kmk_dave_session_privacy_code(s[1], c1) == 0 && kmk_dave_session_privacy_code(s[2], c2) == 0);
  CHECK(strcmp(c1, c2) == 0);
  CHECK(media_ok(s[1], 1, s[2]) && media_ok(s[2], 2, s[1]));

  /* frames from 2 that stop decrypting (keys out of step): a burst up to the tolerance is
     absorbed, a good frame restarts the count, one more than the tolerance in a row makes 1
     invalidate transition 6 (op 31) and start over (op 26), once */
  uint8_t junk[40], dout[64];
  size_t dn;
  memset(junk, 0x5a, sizeof junk);
  junk[sizeof junk - 2] = junk[sizeof junk - 1] = 0xFA; /* marked as a DAVE frame */
  for (int i = 0; i < KMK_DAVE_FAILURE_TOLERANCE; i++)
    CHECK(kmk_dave_session_decrypt(s[1], 2, junk, sizeof junk, dout, sizeof dout, &dn, 3100) < 0);
  CHECK(media_ok(s[2], 2, s[1]));
  for (int i = 0; i < KMK_DAVE_FAILURE_TOLERANCE; i++)
    CHECK(kmk_dave_session_decrypt(s[1], 2, junk, sizeof junk, dout, sizeof dout, &dn, 3200) < 0);
  CHECK_EQ_INT((int)kmk_dave_session_recoveries(s[1]), 0);
  CHECK(!pop_op(s[1], KMK_DAVE_OP_INVALID_COMMIT_WELCOME, &tmp));
  CHECK(kmk_dave_session_decrypt(s[1], 2, junk, sizeof junk, dout, sizeof dout, &dn, 3300) < 0);
  CHECK_EQ_INT((int)kmk_dave_session_recoveries(s[1]), 1);
  kmk_dave_out_frame of;
  CHECK(kmk_dave_session_pop(s[1], &of) == 1 && of.op == KMK_DAVE_OP_INVALID_COMMIT_WELCOME && of.json);
  CHECK(strstr((const char *)of.data.data, "\"transition_id\":6") != NULL);
  kmk_mls_bytes_free(&of.data);
  CHECK(kmk_dave_session_pop(s[1], &of) == 1 && of.op == KMK_DAVE_OP_KEY_PACKAGE);
  kmk_mls_bytes_free(&of.data);
  for (int i = 0; i < 3 * KMK_DAVE_FAILURE_TOLERANCE; i++) /* re-initialising: no second op 31 */
    CHECK(kmk_dave_session_decrypt(s[1], 2, junk, sizeof junk, dout, sizeof dout, &dn, 3400) < 0);
  CHECK_EQ_INT((int)kmk_dave_session_recoveries(s[1]), 1);
  CHECK(kmk_dave_session_pop(s[1], &of) == 0);

  /* an announced commit that does not verify: op 31 and a new key package */
  split28(&cw1, &commit, &welcome); /* 1's losing commit, now for a past epoch */
  CHECK(send_tid(s[2], KMK_DAVE_OP_ANNOUNCE_COMMIT, 7, commit) != 0);
  CHECK(pop_op(s[2], KMK_DAVE_OP_INVALID_COMMIT_WELCOME, &tmp));
  CHECK(strstr((const char *)tmp.data, "\"transition_id\":7") != NULL);
  kmk_mls_bytes_free(&tmp);
  CHECK(pop_op(s[2], KMK_DAVE_OP_KEY_PACKAGE, &tmp));
  kmk_mls_bytes_free(&tmp);
  kmk_mls_bytes_free(&cw1);
  kmk_mls_bytes_free(&cw2);

  /* downgrade to protocol version 0: passthrough after execute */
  CHECK_EQ_INT(kmk_dave_session_prepare_transition(s[1], 9, 0), 0);
  CHECK(pop_op(s[1], KMK_DAVE_OP_READY_FOR_TRANSITION, &tmp));
  kmk_mls_bytes_free(&tmp);
  CHECK_EQ_INT(kmk_dave_session_execute_transition(s[1], 9, 4000), 0);
  uint8_t out[16];
  size_t on;
  CHECK_EQ_INT(kmk_dave_session_encrypt(s[1], (const uint8_t *)"plain", 5, out, sizeof out, &on), 0);
  CHECK(on == 5 && memcmp(out, "plain", 5) == 0);
  CHECK_EQ_INT(kmk_dave_session_decrypt(s[1], 42, (const uint8_t *)"plain", 5, out, sizeof out, &on, 4000), 0);
  for (int i = 1; i <= 3; i++) {
    kmk_dave_session_free(s[i]);
    kmk_mls_bytes_free(&kp[i]);
  }
}

int main(void) {
  RUN(test_session_lifecycle);
  return check_done();
}
