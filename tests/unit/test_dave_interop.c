/* test_dave_interop.c - interop with an independent DAVE implementation: spawns the node peer in
 * tests/peers/dave (which plays the voice gateway's external sender and drives two
 * @snazzah/davey clients), sends our KeyPackage, joins by the Welcome a davey client creates,
 * compares epoch authenticator and voice privacy code, and round-trips Opus frames both ways.
 * SKIPs (passes with a message) when node or the peer's node_modules are absent; install them
 * with `npm ci --prefix tests/peers/dave`. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kameko/dave.h"
#include "kameko/mls_group.h"

#define PEER_DIR KMK_SOURCE_DIR "/tests/peers/dave"
#define MY_USER 1003ull
#define CHANNEL 1234567890123456789ull

static FILE *to_peer, *from_peer;
static pid_t peer_pid;

static int spawn_peer(const char *mode) {
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return -1;
  peer_pid = fork();
  if (peer_pid < 0) return -1;
  if (peer_pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    if (chdir(PEER_DIR) != 0) _exit(127);
    execlp("node", "node", "peer.mjs", mode, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_peer = fdopen(in[1], "w");
  from_peer = fdopen(out[0], "r");
  return to_peer && from_peer ? 0 : -1;
}

static char *read_line(void) {
  static char *buf;
  static size_t cap;
  ssize_t n = getline(&buf, &cap, from_peer);
  if (n <= 0) return NULL;
  if (buf[n - 1] == '\n') buf[n - 1] = 0;
  return buf;
}

static void send_hex(const char *tag, const uint8_t *p, size_t n, const char *extra) {
  fprintf(to_peer, "%s ", tag);
  for (size_t i = 0; i < n; i++) fprintf(to_peer, "%02x", p[i]);
  if (extra) fprintf(to_peer, " %s", extra);
  fputc('\n', to_peer);
  fflush(to_peer);
}

static uint8_t *unhex(const char *s, size_t *n) {
  size_t l = strcspn(s, " ");
  uint8_t *b = malloc(l / 2 + 1);
  for (size_t i = 0; i < l / 2; i++) {
    unsigned v;
    sscanf(s + 2 * i, "%2x", &v);
    b[i] = (uint8_t)v;
  }
  *n = l / 2;
  return b;
}

/* Our ProposalRefs of the gateway's proposals must be exactly the refs davey's commit carries,
 * and each external proposal's signature must verify with the external sender's key. */
static int check_commit_refs(const uint8_t *props, size_t pn, const uint8_t *commit, size_t cn,
                             const kmk_mls_external_sender *es) {
  uint8_t refs[8][32];
  int nrefs = 0;
  kmk_mls_r it;
  kmk_mls_r_init(&it, props, pn); /* the op-27 list body */
  while (kmk_mls_r_left(&it) && nrefs < 8) {
    kmk_mls_view one;
    kmk_mls_message m;
    if (kmk_dave_gw_next_proposal(&it, &one) || kmk_mls_message_decode_all(one.p, one.len, &m)) return 0;
    if (m.pub.content.sender.type != KMK_MLS_SENDER_EXTERNAL ||
        kmk_mls_public_message_verify_signature(&m.pub, es->signature_key.p, es->signature_key.len,
                                                NULL, 0) != 0)
      return 0;
    if (kmk_mls_proposal_ref(&m.pub, refs[nrefs++])) return 0;
  }
  kmk_mls_message cm;
  if (kmk_mls_message_decode_all(commit, cn, &cm) || cm.wire_format != KMK_MLS_WIRE_PUBLIC ||
      cm.pub.content.content_type != KMK_MLS_CONTENT_COMMIT)
    return 0;
  kmk_mls_r_init(&it, cm.pub.content.commit.proposals.p, cm.pub.content.commit.proposals.len);
  int seen = 0;
  while (kmk_mls_r_left(&it)) {
    kmk_mls_proposal_or_ref po;
    if (kmk_mls_proposals_next(&it, &po) || po.type != 2 || po.ref.len != 32) return 0;
    int found = 0;
    for (int i = 0; i < nrefs; i++) found |= memcmp(refs[i], po.ref.p, 32) == 0;
    if (!found) return 0;
    seen++;
  }
  printf("davey's commit references our %d ProposalRefs; external proposal signatures verify\n", seen);
  return seen == nrefs && nrefs == 2;
}

/* Decodes a hex line argument holding a binary gateway frame of the expected op. */
static uint8_t *gw_frame(const char *hexs, uint8_t op, kmk_dave_gw_frame *f) {
  size_t n;
  uint8_t *b = unhex(hexs, &n);
  int rc = kmk_dave_gw_parse(b, n, f);
  if (rc || f->op != op) {
    fprintf(stderr, "bad gateway frame for op %u: %d\n", op, rc);
    memset(f, 0, sizeof *f);
  }
  return b;
}

static void test_interop_with_davey(void) {
  if (access(PEER_DIR "/node_modules/@snazzah/davey/package.json", R_OK) != 0) {
    printf("SKIP davey interop: %s/node_modules missing (run: npm ci --prefix tests/peers/dave)\n",
           PEER_DIR);
    return;
  }
  signal(SIGPIPE, SIG_IGN);
  CHECK_EQ_INT(spawn_peer("join"), 0);
  if (!to_peer) return;

  kmk_mls_key_package_keys keys;
  kmk_mls_bytes kp = {0};
  CHECK_EQ_INT(kmk_dave_key_package_create(MY_USER, &keys, &kp), 0);
  send_hex("KP", kp.data, kp.len, NULL);

  kmk_mls_group g;
  memset(&g, 0, sizeof g);
  kmk_dave_encryptor enc;
  kmk_dave_encryptor_init(&enc);
  kmk_dave_decryptor dec_a, dec_b;
  kmk_dave_decryptor_init(&dec_a);
  kmk_dave_decryptor_init(&dec_b);
  kmk_mls_proposal_store store;
  memset(&store, 0, sizeof store);
  int epochs = 0;
  int joined = 0, done = 0, frames_in = 0, frames_out = 0;
  uint8_t *ext_pkg = NULL, *props = NULL;
  kmk_mls_view props_list = {NULL, 0};
  kmk_mls_external_sender es;
  memset(&es, 0, sizeof es);
  char *line;
  while ((line = read_line())) {
    kmk_dave_gw_frame gf;
    if (strncmp(line, "EXTERNAL ", 9) == 0) {
      ext_pkg = gw_frame(line + 9, KMK_DAVE_OP_EXTERNAL_SENDER, &gf);
      CHECK_EQ_INT(kmk_dave_external_sender_parse(gf.message.p, gf.message.len, &es), 0);
    } else if (strncmp(line, "PROPOSALS ", 10) == 0) {
      props = gw_frame(line + 10, KMK_DAVE_OP_PROPOSALS, &gf);
      CHECK(gf.proposals_op == KMK_DAVE_PROPOSALS_APPEND);
      props_list = gf.list;
    } else if (strncmp(line, "COMMIT ", 7) == 0) {
      uint8_t *c = gw_frame(line + 7, KMK_DAVE_OP_ANNOUNCE_COMMIT, &gf);
      CHECK_EQ_INT(gf.transition_id, 1);
      CHECK(props && ext_pkg && check_commit_refs(props_list.p, props_list.len, gf.message.p, gf.message.len, &es));
      free(c);
    } else if (strncmp(line, "WELCOME ", 8) == 0) {
      uint8_t *w = gw_frame(line + 8, KMK_DAVE_OP_WELCOME, &gf);
      CHECK_EQ_INT(gf.transition_id, 1);
      const uint8_t *body = gf.message.p;
      size_t body_len = gf.message.len, n = gf.message.len;
      kmk_mls_message m;
      if (n > 4 && body[0] == 0 && body[1] == 1 && body[2] == 0 && body[3] == 3 &&
          kmk_mls_message_decode_all(body, n, &m) == 0) { /* an MLSMessage-wrapped Welcome */
        body += 4;
        body_len -= 4;
        printf("davey's Welcome is an MLSMessage\n");
      } else if (body_len >= 2) {
        printf("davey's Welcome is a bare Welcome (suite %u)\n", (unsigned)(body[0] << 8 | body[1]));
      }
      kmk_mls_join_keys jk;
      memset(&jk, 0, sizeof jk);
      jk.key_package = kp.data;
      jk.key_package_len = kp.len;
      memcpy(jk.init_priv, keys.init_priv, 32);
      memcpy(jk.encryption_priv, keys.encryption_priv, 32);
      memcpy(jk.signature_priv, keys.signature_priv, 32);
      int rc = kmk_mls_group_join(&g, &jk, body, body_len, NULL, 0);
      if (rc) fprintf(stderr, "join failed: %d %s\n", rc, kmk_mls_strerror(rc));
      CHECK_EQ_INT(rc, 0);
      free(w);
      if (rc) break;
      joined = 1;
      CHECK(ext_pkg != NULL);
      if (ext_pkg) CHECK_EQ_INT(kmk_dave_group_check(&g, CHANNEL, &es), 0);
      uint32_t leaf_a, leaf_b, leaf_me;
      CHECK(kmk_dave_group_find_user(&g, 1001, &leaf_a) == 0 && kmk_dave_group_find_user(&g, 1002, &leaf_b) == 0 &&
            kmk_dave_group_find_user(&g, MY_USER, &leaf_me) == 0 && leaf_me == g.my_leaf);
      uint8_t base[16];
      CHECK_EQ_INT(kmk_dave_group_sender_secret(&g, MY_USER, base), 0);
      kmk_dave_encryptor_set_key(&enc, base, 16);
      CHECK_EQ_INT(kmk_dave_group_sender_secret(&g, 1001, base), 0);
      kmk_dave_decryptor_set_key(&dec_a, base, 16, 0);
      CHECK_EQ_INT(kmk_dave_group_sender_secret(&g, 1002, base), 0);
      kmk_dave_decryptor_set_key(&dec_b, base, 16, 0);
      char code[31];
      CHECK_EQ_INT(kmk_dave_voice_privacy_code(&g, code), 0);
      printf("joined epoch %llu at leaf %u of %u; voice privacy code %s\n",
             (unsigned long long)g.epoch, g.my_leaf, g.tree.n_leaves, code);
      send_hex("JOINED", g.secrets.epoch_authenticator, 32, code);
    } else if (strncmp(line, "PROPOSALS2 ", 11) == 0) {
      uint8_t *p = gw_frame(line + 11, KMK_DAVE_OP_PROPOSALS, &gf);
      kmk_mls_r it;
      kmk_mls_r_init(&it, gf.list.p, gf.list.len);
      kmk_mls_view one;
      while (kmk_mls_r_left(&it) && kmk_dave_gw_next_proposal(&it, &one) == 0) {
        /* a tampered copy is refused and not stored */
        uint8_t *bad = malloc(one.len);
        memcpy(bad, one.p, one.len);
        bad[one.len - 5] ^= 1; /* inside the signature */
        CHECK(kmk_mls_group_store_proposal(&g, &store, bad, one.len) != 0);
        free(bad);
        int rc = kmk_mls_group_store_proposal(&g, &store, one.p, one.len);
        if (rc) fprintf(stderr, "store proposal: %d %s\n", rc, kmk_mls_strerror(rc));
        CHECK_EQ_INT(rc, 0);
      }
      CHECK_EQ_INT(store.n, 2);
      free(p);
    } else if (strncmp(line, "COMMIT2 ", 8) == 0) {
      uint8_t *frame = gw_frame(line + 8, KMK_DAVE_OP_ANNOUNCE_COMMIT, &gf);
      CHECK_EQ_INT(gf.transition_id, 2);
      const uint8_t *c = gf.message.p;
      size_t n = gf.message.len;
      int removed = 0;
      /* tampered or unresolvable commits are refused and leave the group as it was */
      uint8_t *bad = malloc(n);
      memcpy(bad, c, n);
      bad[n - 1] ^= 1; /* membership tag */
      CHECK_EQ_INT(kmk_mls_group_process_commit(&g, &store, bad, n, NULL, 0, &removed), KMK_MLS_ERR_VERIFY);
      memcpy(bad, c, n);
      bad[n / 2] ^= 1; /* somewhere in the signed content */
      CHECK(kmk_mls_group_process_commit(&g, &store, bad, n, NULL, 0, &removed) != 0);
      kmk_mls_proposal_store empty;
      memset(&empty, 0, sizeof empty);
      CHECK_EQ_INT(kmk_mls_group_process_commit(&g, &empty, c, n, NULL, 0, &removed), KMK_MLS_ERR_INVALID);
      CHECK_EQ_INT(g.epoch, 1);
      free(bad);
      int rc = kmk_mls_group_process_commit(&g, &store, c, n, NULL, 0, &removed);
      if (rc) fprintf(stderr, "process commit: %d %s\n", rc, kmk_mls_strerror(rc));
      CHECK_EQ_INT(rc, 0);
      CHECK(!removed);
      free(frame);
      if (rc) break;
      epochs++;
      uint32_t leaf;
      CHECK(kmk_dave_group_find_user(&g, 1002, &leaf) != 0);  /* removed */
      CHECK(kmk_dave_group_find_user(&g, 1004, &leaf) == 0);  /* added */
      uint8_t base[16];
      CHECK_EQ_INT(kmk_dave_group_sender_secret(&g, MY_USER, base), 0);
      kmk_dave_encryptor_set_key(&enc, base, 16);
      CHECK_EQ_INT(kmk_dave_group_sender_secret(&g, 1001, base), 0);
      kmk_dave_decryptor_set_key(&dec_a, base, 16, 0);
      CHECK_EQ_INT(kmk_dave_group_sender_secret(&g, 1004, base), 0);
      kmk_dave_decryptor_set_key(&dec_b, base, 16, 0); /* slot b now decrypts 1004 */
      char code[31], tag[32];
      CHECK_EQ_INT(kmk_dave_voice_privacy_code(&g, code), 0);
      snprintf(tag, sizeof tag, "EPOCH %llu", (unsigned long long)g.epoch);
      printf("processed davey's commit: epoch %llu, voice privacy code %s\n",
             (unsigned long long)g.epoch, code);
      send_hex(tag, g.secrets.epoch_authenticator, 32, code);
    } else if (strncmp(line, "DECRYPT ", 8) == 0) {
      char *sp = strchr(line + 8, ' ');
      uint64_t user = strtoull(line + 8, NULL, 10);
      size_t n, m = 0;
      uint8_t *f = unhex(sp + 1, &n);
      uint8_t *out = malloc(n + 1);
      int rc = kmk_dave_decrypt_opus(user == 1001 ? &dec_a : &dec_b, f, n, out, n, &m, 0);
      if (rc) fprintf(stderr, "decrypt from %llu failed: %s\n", (unsigned long long)user, kmk_dave_strerror(rc));
      CHECK_EQ_INT(rc, 0);
      send_hex("PLAIN", out, rc ? 0 : m, NULL);
      frames_in++;
      free(f);
      free(out);
    } else if (strncmp(line, "ENCRYPT ", 8) == 0) {
      size_t n, m = 0;
      uint8_t *f = unhex(line + 8, &n);
      uint8_t *out = malloc(n + KMK_DAVE_MAX_OVERHEAD);
      CHECK_EQ_INT(kmk_dave_encrypt_opus(&enc, f, n, out, n + KMK_DAVE_MAX_OVERHEAD, &m), 0);
      send_hex("CIPHER", out, m, NULL);
      frames_out++;
      free(f);
      free(out);
    } else if (strcmp(line, "DONE") == 0) {
      done = 1;
      break;
    } else {
      fprintf(stderr, "peer says: %s\n", line);
      break;
    }
  }
  CHECK(joined);
  CHECK(done);
  CHECK_EQ_INT(epochs, 1);
  printf("davey interop: joined=%d, commits processed=%d, %d frames davey->C, %d frames C->davey, %s\n",
         joined, epochs, frames_in, frames_out, done ? "peer verified everything" : "peer did NOT finish");
  kmk_mls_proposal_store_clear(&store);
  fclose(to_peer);
  fclose(from_peer);
  int status = 0;
  waitpid(peer_pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  kmk_dave_encryptor_wipe(&enc);
  kmk_dave_decryptor_wipe(&dec_a);
  kmk_dave_decryptor_wipe(&dec_b);
  kmk_mls_group_free(&g);
  kmk_mls_bytes_free(&kp);
  free(ext_pkg);
  free(props);
}

/* The C client creates the group and commits; davey clients join by our Welcome. */
static void test_davey_joins_our_group(void) {
  if (access(PEER_DIR "/node_modules/@snazzah/davey/package.json", R_OK) != 0) {
    printf("SKIP davey create scenario: node_modules missing\n");
    return;
  }
  signal(SIGPIPE, SIG_IGN);
  CHECK_EQ_INT(spawn_peer("create"), 0);
  if (!to_peer) return;
  kmk_mls_key_package_keys keys;
  kmk_mls_bytes kp = {0};
  CHECK_EQ_INT(kmk_dave_key_package_create(MY_USER, &keys, &kp), 0);
  kmk_mls_group g;
  memset(&g, 0, sizeof g);
  kmk_mls_proposal_store store;
  memset(&store, 0, sizeof store);
  kmk_mls_pending_commit pc;
  memset(&pc, 0, sizeof pc);
  kmk_dave_encryptor enc;
  kmk_dave_decryptor dec_a, dec_b;
  kmk_dave_encryptor_init(&enc);
  kmk_dave_decryptor_init(&dec_a);
  kmk_dave_decryptor_init(&dec_b);
  uint8_t *ext_frame = NULL;
  int done = 0, applied = 0;
  char *line;
  while ((line = read_line())) {
    kmk_dave_gw_frame gf;
    if (strncmp(line, "EXTERNAL ", 9) == 0) {
      ext_frame = gw_frame(line + 9, KMK_DAVE_OP_EXTERNAL_SENDER, &gf);
      /* GroupContext extensions: external_senders = [the gateway's sender] */
      kmk_mls_w ext;
      kmk_mls_w_init(&ext);
      kmk_mls_w_u16(&ext, KMK_MLS_EXT_EXTERNAL_SENDERS);
      size_t m1 = kmk_mls_w_begin(&ext);
      size_t m2 = kmk_mls_w_begin(&ext);
      kmk_mls_w_raw(&ext, gf.message.p, gf.message.len);
      kmk_mls_w_end(&ext, m2);
      kmk_mls_w_end(&ext, m1);
      uint8_t gid[8];
      for (int i = 0; i < 8; i++) gid[i] = (uint8_t)(CHANNEL >> (56 - 8 * i));
      CHECK_EQ_INT(kmk_mls_group_create(&g, gid, 8, kp.data, kp.len, keys.encryption_priv,
                                        keys.signature_priv, ext.buf, ext.len), 0);
      kmk_mls_w_free(&ext);
    } else if (strncmp(line, "PROPOSALS ", 10) == 0) {
      uint8_t *p = gw_frame(line + 10, KMK_DAVE_OP_PROPOSALS, &gf);
      kmk_mls_r it;
      kmk_mls_r_init(&it, gf.list.p, gf.list.len);
      kmk_mls_view one;
      while (kmk_mls_r_left(&it) && kmk_dave_gw_next_proposal(&it, &one) == 0)
        CHECK_EQ_INT(kmk_mls_group_store_proposal(&g, &store, one.p, one.len), 0);
      free(p);
      int rc = kmk_mls_group_commit(&g, &store, &pc);
      if (rc) fprintf(stderr, "commit: %d %s\n", rc, kmk_mls_strerror(rc));
      CHECK_EQ_INT(rc, 0);
      kmk_mls_w w;
      kmk_mls_w_init(&w);
      CHECK_EQ_INT(kmk_dave_gw_commit_welcome(&w, pc.commit.data, pc.commit.len, pc.welcome.data, pc.welcome.len), 0);
      char len_s[24];
      snprintf(len_s, sizeof len_s, "%zu", pc.commit.len);
      send_hex("COMMITWELCOME", w.buf, w.len, len_s);
      kmk_mls_w_free(&w);
    } else if (strncmp(line, "COMMIT ", 7) == 0) {
      uint8_t *c = gw_frame(line + 7, KMK_DAVE_OP_ANNOUNCE_COMMIT, &gf);
      /* the gateway announced our own commit: install the pending epoch */
      CHECK(gf.message.len == pc.commit.len && memcmp(gf.message.p, pc.commit.data, pc.commit.len) == 0);
      kmk_mls_group_apply_pending(&g, &pc);
      kmk_mls_pending_commit_free(&pc);
      kmk_mls_proposal_store_clear(&store);
      applied = 1;
      free(c);
      uint8_t base[16];
      kmk_dave_group_sender_secret(&g, MY_USER, base);
      kmk_dave_encryptor_set_key(&enc, base, 16);
      kmk_dave_group_sender_secret(&g, 1001, base);
      kmk_dave_decryptor_set_key(&dec_a, base, 16, 0);
      kmk_dave_group_sender_secret(&g, 1002, base);
      kmk_dave_decryptor_set_key(&dec_b, base, 16, 0);
      char code[31], tag[32];
      CHECK_EQ_INT(kmk_dave_voice_privacy_code(&g, code), 0);
      snprintf(tag, sizeof tag, "EPOCH %llu", (unsigned long long)g.epoch);
      printf("davey joined our group: epoch %llu, voice privacy code %s\n", (unsigned long long)g.epoch, code);
      send_hex(tag, g.secrets.epoch_authenticator, 32, code);
    } else if (strncmp(line, "DECRYPT ", 8) == 0) {
      char *sp = strchr(line + 8, ' ');
      uint64_t user = strtoull(line + 8, NULL, 10);
      size_t n, m = 0;
      uint8_t *fr = unhex(sp + 1, &n);
      uint8_t *out = malloc(n + 1);
      int rc = kmk_dave_decrypt_opus(user == 1001 ? &dec_a : &dec_b, fr, n, out, n, &m, 0);
      CHECK_EQ_INT(rc, 0);
      send_hex("PLAIN", out, rc ? 0 : m, NULL);
      free(fr);
      free(out);
    } else if (strncmp(line, "ENCRYPT ", 8) == 0) {
      size_t n, m = 0;
      uint8_t *fr = unhex(line + 8, &n);
      uint8_t *out = malloc(n + KMK_DAVE_MAX_OVERHEAD);
      CHECK_EQ_INT(kmk_dave_encrypt_opus(&enc, fr, n, out, n + KMK_DAVE_MAX_OVERHEAD, &m), 0);
      send_hex("CIPHER", out, m, NULL);
      free(fr);
      free(out);
    } else if (strcmp(line, "DONE") == 0) {
      done = 1;
      break;
    } else {
      fprintf(stderr, "peer says: %s\n", line);
      break;
    }
  }
  CHECK(applied);
  CHECK(done);
  printf("davey create scenario: %s\n", done ? "peer verified everything" : "peer did NOT finish");
  fclose(to_peer);
  fclose(from_peer);
  to_peer = NULL;
  int status = 0;
  waitpid(peer_pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  kmk_dave_encryptor_wipe(&enc);
  kmk_dave_decryptor_wipe(&dec_a);
  kmk_dave_decryptor_wipe(&dec_b);
  kmk_mls_pending_commit_free(&pc);
  kmk_mls_proposal_store_clear(&store);
  kmk_mls_group_free(&g);
  kmk_mls_bytes_free(&kp);
  free(ext_frame);
}

/* The create scenario again, driven through kmk_dave_session (gateway frames in, frames out). */
static void test_davey_with_session(void) {
  if (access(PEER_DIR "/node_modules/@snazzah/davey/package.json", R_OK) != 0) {
    printf("SKIP davey session scenario: node_modules missing\n");
    return;
  }
  signal(SIGPIPE, SIG_IGN);
  CHECK_EQ_INT(spawn_peer("create"), 0);
  if (!to_peer) return;
  kmk_dave_session *s = kmk_dave_session_new(MY_USER, CHANNEL);
  int done = 0;
  char *line;
  kmk_dave_out_frame out;
  while ((line = read_line())) {
    const char *sp = strchr(line, ' ');
    size_t n = 0;
    uint8_t *b = sp ? unhex(sp + 1, &n) : NULL;
    if (strncmp(line, "EXTERNAL ", 9) == 0 || strncmp(line, "PROPOSALS ", 10) == 0) {
      int rc = kmk_dave_session_binary(s, b, n, 0);
      if (rc) fprintf(stderr, "session: %d\n", rc);
      CHECK_EQ_INT(rc, 0);
      while (kmk_dave_session_pop(s, &out)) {
        if (out.op == KMK_DAVE_OP_COMMIT_WELCOME) {
          kmk_mls_r r;
          kmk_mls_message m;
          kmk_mls_r_init(&r, out.data.data + 1, out.data.len - 1);
          CHECK_EQ_INT(kmk_mls_message_decode(&r, &m), 0);
          char len_s[24];
          snprintf(len_s, sizeof len_s, "%zu", r.off);
          send_hex("COMMITWELCOME", out.data.data, out.data.len, len_s);
        }
        kmk_mls_bytes_free(&out.data);
      }
    } else if (strncmp(line, "COMMIT ", 7) == 0) {
      CHECK_EQ_INT(kmk_dave_session_binary(s, b, n, 0), 0);
      int ready = 0;
      while (kmk_dave_session_pop(s, &out)) {
        ready |= out.op == KMK_DAVE_OP_READY_FOR_TRANSITION;
        kmk_mls_bytes_free(&out.data);
      }
      CHECK(ready);
      CHECK_EQ_INT(kmk_dave_session_execute_transition(s, 1, 0), 0); /* the gateway's op 22 */
      CHECK(kmk_dave_session_ready(s));
      const kmk_mls_group *g = kmk_dave_session_group(s);
      char code[31], tag[32];
      CHECK_EQ_INT(kmk_dave_session_privacy_code(s, code), 0);
      snprintf(tag, sizeof tag, "EPOCH %llu", (unsigned long long)g->epoch);
      send_hex(tag, g->secrets.epoch_authenticator, 32, code);
    } else if (strncmp(line, "DECRYPT ", 8) == 0) {
      uint64_t user = strtoull(line + 8, NULL, 10);
      free(b);
      b = unhex(strchr(line + 8, ' ') + 1, &n);
      uint8_t *o = malloc(n + 1);
      size_t m = 0;
      CHECK_EQ_INT(kmk_dave_session_decrypt(s, user, b, n, o, n, &m, 0), 0);
      send_hex("PLAIN", o, m, NULL);
      free(o);
    } else if (strncmp(line, "ENCRYPT ", 8) == 0) {
      uint8_t *o = malloc(n + KMK_DAVE_MAX_OVERHEAD);
      size_t m = 0;
      CHECK_EQ_INT(kmk_dave_session_encrypt(s, b, n, o, n + KMK_DAVE_MAX_OVERHEAD, &m), 0);
      send_hex("CIPHER", o, m, NULL);
      free(o);
    } else if (strcmp(line, "DONE") == 0) {
      done = 1;
    } else {
      fprintf(stderr, "peer says: %s\n", line);
    }
    free(b);
    if (done || strncmp(line, "FAIL", 4) == 0) break;
  }
  CHECK(done);
  printf("davey session scenario: %s\n", done ? "peer verified everything" : "peer did NOT finish");
  fclose(to_peer);
  fclose(from_peer);
  to_peer = NULL;
  int status = 0;
  waitpid(peer_pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  kmk_dave_session_free(s);
}

int main(void) {
  RUN(test_interop_with_davey);
  RUN(test_davey_with_session);
  RUN(test_davey_joins_our_group);
  return check_done();
}
