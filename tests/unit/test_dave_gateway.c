/* test_dave_gateway.c - DAVE voice-gateway binary frames: parsing of ops 25, 27 (append and
 * revoke), 29, 30 with MLS payloads from messages.json, malformed frames, client frames, and
 * revoking stored proposals. (The davey interop test drives the same parser with live frames.) */
#include "check.h"
#include "kameko/dave.h"
#include "test_mls_vec.h"

static size_t put(uint8_t *b, const void *p, size_t n) {
  memcpy(b, p, n);
  return n;
}

static void test_gateway_frames(void) {
  cJSON *j = vec_load("messages.json");
  if (!j) return;
  cJSON *e = cJSON_GetArrayItem(j, 0);
  size_t pn, cn, wn;
  uint8_t *prop = vec_hex(e, "public_message_proposal", &pn), *commit = vec_hex(e, "public_message_commit", &cn),
          *welcome = vec_hex(e, "mls_welcome", &wn);
  uint8_t *b = malloc(pn + cn + wn + 64);
  kmk_dave_gw_frame f;
  /* op 27 append with one proposal */
  size_t n = put(b, "\x00\x07\x1b\x00", 4);
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, prop, pn);
  n += put(b + n, w.buf, w.len);
  kmk_mls_w_free(&w);
  CHECK_EQ_INT(kmk_dave_gw_parse(b, n, &f), 0);
  CHECK(f.seq == 7 && f.op == KMK_DAVE_OP_PROPOSALS && f.proposals_op == KMK_DAVE_PROPOSALS_APPEND);
  kmk_mls_r it;
  kmk_mls_view v;
  kmk_mls_r_init(&it, f.list.p, f.list.len);
  CHECK(kmk_dave_gw_next_proposal(&it, &v) == 0 && v.len == pn && kmk_mls_r_left(&it) == 0);
  CHECK(kmk_dave_gw_parse(b, n - 1, &f) != 0);
  b[3] = 2; /* unknown proposals operation */
  CHECK(kmk_dave_gw_parse(b, n, &f) != 0);
  /* a commit is not a proposal */
  n = put(b, "\x00\x07\x1b\x00", 4);
  kmk_mls_w_init(&w);
  kmk_mls_w_vec(&w, commit, cn);
  n += put(b + n, w.buf, w.len);
  kmk_mls_w_free(&w);
  CHECK(kmk_dave_gw_parse(b, n, &f) != 0);
  /* op 27 revoke with two refs */
  uint8_t rv[4 + 2 + 2 * 33] = {0, 8, 27, 1, 0x40, 66}; /* varint 66 takes two bytes */
  for (int i = 0; i < 2; i++) rv[6 + 33 * i] = 32;
  CHECK_EQ_INT(kmk_dave_gw_parse(rv, sizeof rv, &f), 0);
  CHECK(f.proposals_op == KMK_DAVE_PROPOSALS_REVOKE && f.list.len == 66);
  /* op 29 commit, op 30 bare welcome */
  n = put(b, "\x00\x09\x1d\x00\x05", 5);
  n += put(b + n, commit, cn);
  CHECK_EQ_INT(kmk_dave_gw_parse(b, n, &f), 0);
  CHECK(f.transition_id == 5 && f.message.len == cn);
  b[n] = 0;
  CHECK(kmk_dave_gw_parse(b, n + 1, &f) != 0); /* trailing byte */
  n = put(b, "\x00\x0a\x1e\x00\x06", 5);
  n += put(b + n, welcome + 4, wn - 4);
  CHECK_EQ_INT(kmk_dave_gw_parse(b, n, &f), 0);
  CHECK(f.transition_id == 6 && f.message.len == wn - 4);
  CHECK(kmk_dave_gw_parse(b, 4, &f) != 0);
  CHECK(kmk_dave_gw_parse(b, 2, &f) != 0);
  /* JSON-carried ops keep their payload */
  CHECK_EQ_INT(kmk_dave_gw_parse((const uint8_t *)"\x00\x01\x15{}", 5, &f), 0);
  CHECK(f.op == 21 && f.payload.len == 2);
  /* client frames */
  kmk_mls_w_init(&w);
  CHECK_EQ_INT(kmk_dave_gw_key_package(&w, (const uint8_t *)"kp", 2), 0);
  CHECK(w.len == 3 && w.buf[0] == 26);
  kmk_mls_w_free(&w);
  kmk_mls_w_init(&w);
  CHECK_EQ_INT(kmk_dave_gw_commit_welcome(&w, commit, cn, welcome + 4, wn - 4), 0);
  CHECK(w.len == 1 + cn + wn - 4 && w.buf[0] == 28);
  kmk_mls_w_free(&w);
  free(b);
  free(prop);
  free(commit);
  free(welcome);
  cJSON_Delete(j);
}

static void test_store_revoke(void) {
  kmk_mls_proposal_store s;
  memset(&s, 0, sizeof s);
  s.items = calloc(2, sizeof *s.items);
  s.cap = 2;
  s.n = 2;
  memset(s.items[0].ref, 1, 32);
  memset(s.items[1].ref, 2, 32);
  kmk_mls_bytes_set(&s.items[1].msg, "x", 1);
  uint8_t r2[32];
  memset(r2, 2, 32);
  CHECK_EQ_INT(kmk_mls_proposal_store_revoke(&s, r2, 32), 1);
  CHECK_EQ_INT(s.n, 1);
  CHECK_EQ_INT(kmk_mls_proposal_store_revoke(&s, r2, 32), 0);
  CHECK_EQ_INT(kmk_mls_proposal_store_revoke(&s, r2, 31), 0);
  kmk_mls_proposal_store_clear(&s);
  CHECK(s.n == 0 && s.items == NULL);
}

int main(void) {
  RUN(test_gateway_frames);
  RUN(test_store_revoke);
  return check_done();
}
