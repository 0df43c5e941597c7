/* test_mls_messages.c - codec round trips of every message type in messages.json (decode fully,
 * re-encode, compare bytes), plus truncation and mutation robustness of the decoders. */
#include "check.h"
#include "kameko/mls_messages.h"
#include "test_mls_vec.h"

enum { K_MESSAGE, K_TREE, K_GROUP_SECRETS, K_PROPOSAL, K_COMMIT };

static const struct {
  const char *field;
  int kind;
  uint16_t arg; /* expected wire format, or proposal type */
} FIELDS[] = {
    {"mls_welcome", K_MESSAGE, KMK_MLS_WIRE_WELCOME},
    {"mls_group_info", K_MESSAGE, KMK_MLS_WIRE_GROUP_INFO},
    {"mls_key_package", K_MESSAGE, KMK_MLS_WIRE_KEY_PACKAGE},
    {"ratchet_tree", K_TREE, 0},
    {"group_secrets", K_GROUP_SECRETS, 0},
    {"add_proposal", K_PROPOSAL, KMK_MLS_PROP_ADD},
    {"update_proposal", K_PROPOSAL, KMK_MLS_PROP_UPDATE},
    {"remove_proposal", K_PROPOSAL, KMK_MLS_PROP_REMOVE},
    {"pre_shared_key_proposal", K_PROPOSAL, KMK_MLS_PROP_PSK},
    {"re_init_proposal", K_PROPOSAL, KMK_MLS_PROP_REINIT},
    {"external_init_proposal", K_PROPOSAL, KMK_MLS_PROP_EXTERNAL_INIT},
    {"group_context_extensions_proposal", K_PROPOSAL, KMK_MLS_PROP_GCE},
    {"commit", K_COMMIT, 0},
    {"public_message_application", K_MESSAGE, KMK_MLS_WIRE_PUBLIC},
    {"public_message_proposal", K_MESSAGE, KMK_MLS_WIRE_PUBLIC},
    {"public_message_commit", K_MESSAGE, KMK_MLS_WIRE_PUBLIC},
    {"private_message", K_MESSAGE, KMK_MLS_WIRE_PRIVATE},
};
#define N_FIELDS (sizeof FIELDS / sizeof FIELDS[0])

/* Decodes p as FIELDS[f] and re-encodes into w. Returns 0 when decode consumed everything. */
static int decode_encode(size_t f, const uint8_t *p, size_t n, kmk_mls_w *w) {
  kmk_mls_r r;
  kmk_mls_r_init(&r, p, n);
  int rc;
  switch (FIELDS[f].kind) {
    case K_MESSAGE: {
      kmk_mls_message m;
      rc = kmk_mls_message_decode(&r, &m);
      if (!rc && m.wire_format != FIELDS[f].arg) rc = -100;
      if (!rc) kmk_mls_message_encode(w, &m);
      break;
    }
    case K_TREE: {
      kmk_mls_view nodes;
      uint32_t count;
      rc = kmk_mls_ratchet_tree_decode(&r, &nodes, &count);
      if (!rc) kmk_mls_w_vec(w, nodes.p, nodes.len);
      break;
    }
    case K_GROUP_SECRETS: {
      kmk_mls_group_secrets g;
      rc = kmk_mls_group_secrets_decode(&r, &g);
      if (!rc) kmk_mls_group_secrets_encode(w, &g);
      break;
    }
    case K_PROPOSAL: {
      kmk_mls_proposal prop;
      rc = kmk_mls_proposal_body_decode(&r, FIELDS[f].arg, &prop);
      if (!rc) kmk_mls_proposal_body_encode(w, &prop);
      break;
    }
    default: {
      kmk_mls_commit c;
      rc = kmk_mls_commit_decode(&r, &c);
      if (!rc) kmk_mls_commit_encode(w, &c);
      break;
    }
  }
  if (!rc) rc = kmk_mls_r_done(&r);
  return rc;
}

static int per_field_pass[N_FIELDS];

static void test_messages_roundtrip(void) {
  cJSON *j = vec_load("messages.json");
  if (!j) return;
  cJSON *e;
  cJSON_ArrayForEach(e, j) {
    for (size_t f = 0; f < N_FIELDS; f++) {
      size_t n;
      uint8_t *p = vec_hex(e, FIELDS[f].field, &n);
      if (!p) {
        vec_skipped++;
        continue;
      }
      kmk_mls_w w;
      kmk_mls_w_init(&w);
      int rc = decode_encode(f, p, n, &w);
      int ok = rc == 0 && w.err == 0 && w.len == n && memcmp(w.buf, p, n) == 0;
      if (!ok) fprintf(stderr, "  %s: rc=%d len %zu vs %zu\n", FIELDS[f].field, rc, w.len, n);
      CHECK(ok);
      ok ? (vec_passed++, per_field_pass[f]++) : vec_failed++;
      kmk_mls_w_free(&w);
      free(p);
    }
  }
  for (size_t f = 0; f < N_FIELDS; f++) printf("  %-36s %d round trips\n", FIELDS[f].field, per_field_pass[f]);
  cJSON_Delete(j);
  vec_report("messages");
}

/* Every strict prefix of a valid encoding must be rejected (or, for a list, decode to something
 * shorter that leaves bytes unconsumed); single-byte mutations must never crash. */
static void test_truncation_and_mutation(void) {
  cJSON *j = vec_load("messages.json");
  if (!j) return;
  int ok = 1;
  int checked = 0;
  for (int i = 0; i < 3; i++) {
    cJSON *e = cJSON_GetArrayItem(j, i);
    for (size_t f = 0; f < N_FIELDS; f++) {
      size_t n;
      uint8_t *p = vec_hex(e, FIELDS[f].field, &n);
      if (!p) continue;
      for (size_t l = 0; l < n; l++) {
        kmk_mls_w w;
        kmk_mls_w_init(&w);
        if (decode_encode(f, p, l, &w) == 0) {
          fprintf(stderr, "  %s: prefix %zu of %zu accepted\n", FIELDS[f].field, l, n);
          ok = 0;
        }
        kmk_mls_w_free(&w);
        checked++;
      }
      for (size_t k = 0; k < n; k += 1 + n / 200) {
        uint8_t save = p[k];
        p[k] ^= 0xA5;
        kmk_mls_w w;
        kmk_mls_w_init(&w);
        (void)decode_encode(f, p, n, &w); /* must not crash; ASan watches */
        kmk_mls_w_free(&w);
        p[k] = save;
      }
      free(p);
    }
  }
  CHECK(ok);
  CHECK(checked > 1000);
  cJSON_Delete(j);
}

static void test_extension_rules(void) {
  /* duplicate extension types are rejected */
  const uint8_t dup[] = {0x08, 0x00, 0x05, 0x01, 0xaa, 0x00, 0x05, 0x01, 0xbb};
  kmk_mls_r r;
  kmk_mls_view v;
  kmk_mls_r_init(&r, dup, sizeof dup);
  CHECK_EQ_INT(kmk_mls_extensions_decode(&r, &v), KMK_MLS_ERR_DECODE);
  const uint8_t two[] = {0x08, 0x00, 0x05, 0x01, 0xaa, 0x00, 0x02, 0x01, 0xbb};
  kmk_mls_r_init(&r, two, sizeof two);
  CHECK_EQ_INT(kmk_mls_extensions_decode(&r, &v), 0);
  kmk_mls_view data;
  CHECK_EQ_INT(kmk_mls_extensions_find(v, 2, &data), 1);
  CHECK(data.len == 1 && data.p[0] == 0xbb);
  CHECK_EQ_INT(kmk_mls_extensions_find(v, 3, &data), 0);
  /* optional<> flag other than 0/1, unknown sender type, unknown content type */
  const uint8_t commit_bad_opt[] = {0x00, 0x02};
  kmk_mls_commit c;
  kmk_mls_r_init(&r, commit_bad_opt, 2);
  CHECK_EQ_INT(kmk_mls_commit_decode(&r, &c), KMK_MLS_ERR_DECODE);
  const uint8_t fc_bad_sender[] = {0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x07};
  kmk_mls_framed_content fc;
  kmk_mls_r_init(&r, fc_bad_sender, sizeof fc_bad_sender);
  CHECK_EQ_INT(kmk_mls_framed_content_decode(&r, &fc), KMK_MLS_ERR_DECODE);
  const uint8_t wrong_version[] = {0x00, 0x02, 0x00, 0x05};
  kmk_mls_message m;
  CHECK_EQ_INT(kmk_mls_message_decode_all(wrong_version, 4, &m), KMK_MLS_ERR_UNSUPPORTED);
}

int main(void) {
  RUN(test_messages_roundtrip);
  RUN(test_truncation_and_mutation);
  RUN(test_extension_rules);
  return check_done();
}
