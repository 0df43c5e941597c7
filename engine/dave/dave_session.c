/* dave_session.c - owns one voice connection's DAVE session: key package and pending group,
 * proposals and commits, Welcome processing, transitions (prepare / ready / execute), the
 * media keys per user and passthrough, and the bounded outbox of frames for the gateway.
 * See the state summary in dave.h. Owned by one thread (the voice loop); no globals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kameko/dave.h"

typedef struct user_keys {
  uint64_t user_id;
  int used;
  kmk_dave_decryptor dec;
} user_keys;

struct kmk_dave_session {
  uint64_t user_id, channel_id;
  kmk_mls_bytes external_sender; /* op-25 package */
  kmk_mls_key_package_keys kp_keys;
  kmk_mls_bytes key_package;
  kmk_mls_group group; /* our pending one-member group, or the joined group */
  int have_group, in_group;
  kmk_mls_proposal_store store;
  kmk_mls_pending_commit pending;
  int have_pending;
  uint64_t *users;
  size_t n_users;
  /* the prepared transition */
  int transition_pending, transition_downgrade;
  uint16_t transition_id;
  /* recovery from a group we cannot decrypt: the last executed transition, consecutive decrypt
     failures, and whether we re-initialised and wait for the gateway to add us again */
  int have_last_tid, reinitializing;
  uint16_t last_tid;
  unsigned fail_run, recoveries;
  /* media */
  int ready, passthrough;
  kmk_dave_encryptor enc;
  user_keys *keys; /* KMK_DAVE_MAX_USERS */
  kmk_dave_out_frame outbox[KMK_DAVE_OUTBOX];
  size_t out_head, out_count;
};

/* ---------- outbox (bounded: control frames never drop; a full outbox is an error) ---------- */

static int push(kmk_dave_session *s, uint8_t op, int json, const uint8_t *p, size_t n) {
  if (s->out_count == KMK_DAVE_OUTBOX) return KMK_DAVE_ERR_ARG;
  kmk_dave_out_frame *f = &s->outbox[(s->out_head + s->out_count) % KMK_DAVE_OUTBOX];
  memset(f, 0, sizeof *f);
  f->op = op;
  f->json = json;
  int rc = kmk_mls_bytes_set(&f->data, p, n);
  if (!rc) s->out_count++;
  return rc;
}

static int push_json(kmk_dave_session *s, uint8_t op, uint16_t transition_id) {
  char buf[64];
  int n = snprintf(buf, sizeof buf, "{\"op\":%u,\"d\":{\"transition_id\":%u}}", op, transition_id);
  return push(s, op, 1, (const uint8_t *)buf, (size_t)n);
}

int kmk_dave_session_pop(kmk_dave_session *s, kmk_dave_out_frame *out) {
  if (!s->out_count) return 0;
  *out = s->outbox[s->out_head];
  memset(&s->outbox[s->out_head], 0, sizeof s->outbox[0]);
  s->out_head = (s->out_head + 1) % KMK_DAVE_OUTBOX;
  s->out_count--;
  return 1;
}

/* ---------- lifecycle ---------- */

kmk_dave_session *kmk_dave_session_new(uint64_t user_id, uint64_t channel_id) {
  kmk_dave_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->keys = calloc(KMK_DAVE_MAX_USERS, sizeof *s->keys);
  if (!s->keys) {
    free(s);
    return NULL;
  }
  s->user_id = user_id;
  s->channel_id = channel_id;
  return s;
}

static void drop_group(kmk_dave_session *s) {
  if (s->have_group) kmk_mls_group_free(&s->group);
  if (s->have_pending) kmk_mls_pending_commit_free(&s->pending);
  kmk_mls_proposal_store_clear(&s->store);
  s->have_group = s->in_group = s->have_pending = 0;
  s->transition_pending = 0;
}

void kmk_dave_session_free(kmk_dave_session *s) {
  if (!s) return;
  drop_group(s);
  kmk_mls_bytes_free(&s->external_sender);
  kmk_mls_bytes_free(&s->key_package);
  OPENSSL_cleanse(&s->kp_keys, sizeof s->kp_keys);
  kmk_dave_encryptor_wipe(&s->enc);
  OPENSSL_cleanse(s->keys, KMK_DAVE_MAX_USERS * sizeof *s->keys);
  free(s->keys);
  free(s->users);
  while (s->out_count) {
    kmk_dave_out_frame f;
    kmk_dave_session_pop(s, &f);
    kmk_mls_bytes_free(&f.data);
  }
  free(s);
}

int kmk_dave_session_set_users(kmk_dave_session *s, const uint64_t *ids, size_t n) {
  uint64_t *u = n ? malloc(n * sizeof *u) : NULL;
  if (n && !u) return KMK_DAVE_ERR_ARG;
  if (n) memcpy(u, ids, n * sizeof *u);
  free(s->users);
  s->users = u;
  s->n_users = n;
  return 0;
}

/* New key package and our own pending one-member group; queues op 26. */
static int reset(kmk_dave_session *s) {
  drop_group(s);
  if (!s->external_sender.len) return 0; /* nothing to do before op 25 */
  kmk_mls_bytes_free(&s->key_package);
  int rc = kmk_dave_key_package_create(s->user_id, &s->kp_keys, &s->key_package);
  kmk_mls_w ext; /* GroupContext extensions: external_senders = [gateway] */
  kmk_mls_w_init(&ext);
  kmk_mls_w_u16(&ext, KMK_MLS_EXT_EXTERNAL_SENDERS);
  size_t m1 = kmk_mls_w_begin(&ext);
  size_t m2 = kmk_mls_w_begin(&ext);
  kmk_mls_w_raw(&ext, s->external_sender.data, s->external_sender.len);
  kmk_mls_w_end(&ext, m2);
  kmk_mls_w_end(&ext, m1);
  uint8_t gid[8];
  for (int i = 0; i < 8; i++) gid[i] = (uint8_t)(s->channel_id >> (56 - 8 * i));
  if (!rc) rc = ext.err;
  if (!rc)
    rc = kmk_mls_group_create(&s->group, gid, sizeof gid, s->key_package.data, s->key_package.len,
                              s->kp_keys.encryption_priv, s->kp_keys.signature_priv, ext.buf,
                              ext.len);
  kmk_mls_w_free(&ext);
  if (rc) return rc;
  s->have_group = 1;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_dave_gw_key_package(&w, s->key_package.data, s->key_package.len);
  rc = w.err ? w.err : push(s, KMK_DAVE_OP_KEY_PACKAGE, 0, w.buf, w.len);
  kmk_mls_w_free(&w);
  return rc;
}

int kmk_dave_session_prepare_epoch(kmk_dave_session *s, uint64_t epoch, int protocol_version) {
  if (epoch == 1 && protocol_version > 0) return reset(s);
  return 0;
}

/* ---------- media keys ---------- */

static user_keys *user_slot(kmk_dave_session *s, uint64_t uid, int create) {
  user_keys *free_slot = NULL;
  for (int i = 0; i < KMK_DAVE_MAX_USERS; i++) {
    if (s->keys[i].used && s->keys[i].user_id == uid) return &s->keys[i];
    if (!s->keys[i].used && !free_slot) free_slot = &s->keys[i];
  }
  if (!create || !free_slot) return NULL;
  kmk_dave_decryptor_init(&free_slot->dec);
  free_slot->used = 1;
  free_slot->user_id = uid;
  return free_slot;
}

/* Installs the current epoch's keys: ours for sending, every other member's for receiving
 * (earlier epochs stay usable for KMK_DAVE_TRANSITION_EXPIRY_MS). */
static int install_keys(kmk_dave_session *s, uint64_t now_ms) {
  uint8_t base[KMK_DAVE_BASE_LEN];
  int rc = kmk_dave_group_sender_secret(&s->group, s->user_id, base);
  if (!rc) rc = kmk_dave_encryptor_set_key(&s->enc, base, sizeof base);
  for (uint32_t l = 0; !rc && l < s->group.tree.n_leaves; l++) {
    const kmk_mls_node *n = &s->group.tree.nodes[2 * l];
    uint64_t uid;
    if (n->type != KMK_MLS_NODE_LEAF || l == s->group.my_leaf) continue;
    if (kmk_dave_leaf_user_id(&n->leaf, &uid)) continue;
    user_keys *k = user_slot(s, uid, 1);
    if (!k) break; /* table full: bounded; further users stay undecryptable */
    rc = kmk_dave_group_sender_secret(&s->group, uid, base);
    if (!rc) rc = kmk_dave_decryptor_set_key(&k->dec, base, sizeof base, now_ms);
  }
  OPENSSL_cleanse(base, sizeof base);
  if (!rc) {
    s->ready = 1;
    s->passthrough = 0;
  }
  return rc;
}

/* A transition took effect: remember it (an op 31 after a decrypt-failure burst names it). */
static void executed(kmk_dave_session *s, uint16_t tid) {
  s->have_last_tid = 1;
  s->last_tid = tid;
  s->reinitializing = 0;
  s->fail_run = 0;
}

/* A new epoch is in place: execute now (transition 0) or say we are ready. */
static int prepare(kmk_dave_session *s, uint16_t tid, uint64_t now_ms) {
  if (tid == 0) {
    executed(s, 0);
    return install_keys(s, now_ms);
  }
  s->transition_pending = 1;
  s->transition_downgrade = 0;
  s->transition_id = tid;
  return push_json(s, KMK_DAVE_OP_READY_FOR_TRANSITION, tid);
}

/* Processing failed: tell the gateway and start over with a new key package. */
static int invalid(kmk_dave_session *s, uint16_t tid, int err) {
  push_json(s, KMK_DAVE_OP_INVALID_COMMIT_WELCOME, tid);
  reset(s);
  return err;
}

int kmk_dave_session_prepare_transition(kmk_dave_session *s, uint16_t tid, int protocol_version) {
  s->transition_pending = 1;
  s->transition_downgrade = protocol_version == 0;
  s->transition_id = tid;
  return tid ? push_json(s, KMK_DAVE_OP_READY_FOR_TRANSITION, tid) : 0;
}

int kmk_dave_session_execute_transition(kmk_dave_session *s, uint16_t tid, uint64_t now_ms) {
  if (!s->transition_pending || s->transition_id != tid) return 0;
  s->transition_pending = 0;
  executed(s, tid);
  if (s->transition_downgrade) {
    s->passthrough = 1;
    s->ready = 0;
    return 0;
  }
  return s->in_group ? install_keys(s, now_ms) : 0;
}

/* ---------- gateway frames ---------- */

static int user_known(const kmk_dave_session *s, uint64_t uid) {
  if (!s->n_users) return 1;
  for (size_t i = 0; i < s->n_users; i++)
    if (s->users[i] == uid) return 1;
  return 0;
}

static int on_proposals(kmk_dave_session *s, const kmk_dave_gw_frame *f) {
  if (!s->have_group) return KMK_DAVE_ERR_NO_KEY;
  kmk_mls_r it;
  kmk_mls_r_init(&it, f->list.p, f->list.len);
  kmk_mls_view v;
  while (kmk_mls_r_left(&it)) {
    if (f->proposals_op == KMK_DAVE_PROPOSALS_REVOKE) {
      if (kmk_dave_gw_next_ref(&it, &v)) return KMK_DAVE_ERR_DECODE;
      kmk_mls_proposal_store_revoke(&s->store, v.p, v.len);
      continue;
    }
    if (kmk_dave_gw_next_proposal(&it, &v)) return KMK_DAVE_ERR_DECODE;
    int rc = kmk_mls_group_store_proposal(&s->group, &s->store, v.p, v.len);
    if (rc) return rc;
    const kmk_mls_proposal *p = &s->store.items[s->store.n - 1].prop;
    uint64_t uid;
    if (p->type == KMK_MLS_PROP_ADD &&
        (kmk_dave_leaf_user_id(&p->add.leaf, &uid) || !user_known(s, uid))) {
      kmk_mls_proposal_store_revoke(&s->store, s->store.items[s->store.n - 1].ref, KMK_MLS_NH);
      return KMK_MLS_ERR_INVALID;
    }
  }
  /* commit whatever is stored (DAVE: every member may commit; the gateway picks one) */
  if (s->have_pending) kmk_mls_pending_commit_free(&s->pending);
  s->have_pending = 0;
  if (!s->store.n) return 0;
  for (size_t i = 0; i < s->store.n; i++) /* we never commit our own removal */
    if (s->store.items[i].prop.type == KMK_MLS_PROP_REMOVE &&
        s->store.items[i].prop.removed == s->group.my_leaf)
      return 0;
  int rc = kmk_mls_group_commit(&s->group, &s->store, &s->pending);
  if (rc) return rc;
  s->have_pending = 1;
  kmk_mls_w w;
  kmk_mls_w_init(&w);
  kmk_dave_gw_commit_welcome(&w, s->pending.commit.data, s->pending.commit.len,
                             s->pending.welcome.data, s->pending.welcome.len);
  rc = w.err ? w.err : push(s, KMK_DAVE_OP_COMMIT_WELCOME, 0, w.buf, w.len);
  kmk_mls_w_free(&w);
  return rc;
}

static int on_commit(kmk_dave_session *s, const kmk_dave_gw_frame *f, uint64_t now_ms) {
  if (s->have_pending && f->message.len == s->pending.commit.len &&
      memcmp(f->message.p, s->pending.commit.data, f->message.len) == 0) {
    kmk_mls_group_apply_pending(&s->group, &s->pending); /* ours won */
    kmk_mls_pending_commit_free(&s->pending);
    s->have_pending = 0;
    kmk_mls_proposal_store_clear(&s->store);
    s->in_group = 1;
    return prepare(s, f->transition_id, now_ms);
  }
  if (!s->in_group) return 0; /* not ours and we are not a member yet: a Welcome follows */
  int removed = 0;
  int rc = kmk_mls_group_process_commit(&s->group, &s->store, f->message.p, f->message.len, NULL,
                                        0, &removed);
  if (rc) return invalid(s, f->transition_id, rc);
  if (s->have_pending) kmk_mls_pending_commit_free(&s->pending);
  s->have_pending = 0;
  if (removed) {
    s->ready = 0; /* our keys belong to a group we are no longer in */
    return reset(s);
  }
  return prepare(s, f->transition_id, now_ms);
}

static int on_welcome(kmk_dave_session *s, const kmk_dave_gw_frame *f, uint64_t now_ms) {
  if (!s->key_package.len) return KMK_DAVE_ERR_NO_KEY;
  kmk_mls_join_keys jk;
  memset(&jk, 0, sizeof jk);
  jk.key_package = s->key_package.data;
  jk.key_package_len = s->key_package.len;
  memcpy(jk.init_priv, s->kp_keys.init_priv, KMK_MLS_PRIV);
  memcpy(jk.encryption_priv, s->kp_keys.encryption_priv, KMK_MLS_PRIV);
  memcpy(jk.signature_priv, s->kp_keys.signature_priv, KMK_MLS_PRIV);
  kmk_mls_group g;
  int rc = kmk_mls_group_join(&g, &jk, f->message.p, f->message.len, NULL, 0);
  OPENSSL_cleanse(&jk, sizeof jk);
  kmk_mls_external_sender es;
  if (!rc) rc = kmk_dave_external_sender_parse(s->external_sender.data, s->external_sender.len, &es);
  if (!rc) rc = kmk_dave_group_check(&g, s->channel_id, &es);
  if (rc) {
    kmk_mls_group_free(&g);
    return invalid(s, f->transition_id, rc);
  }
  drop_group(s);
  s->group = g;
  s->have_group = s->in_group = 1;
  return prepare(s, f->transition_id, now_ms);
}

int kmk_dave_session_binary(kmk_dave_session *s, const uint8_t *frame, size_t n, uint64_t now_ms) {
  kmk_dave_gw_frame f;
  int rc = kmk_dave_gw_parse(frame, n, &f);
  if (rc) return rc;
  switch (f.op) {
    case KMK_DAVE_OP_EXTERNAL_SENDER: {
      kmk_mls_external_sender es;
      if ((rc = kmk_dave_external_sender_parse(f.message.p, f.message.len, &es))) return rc;
      if ((rc = kmk_mls_bytes_set(&s->external_sender, f.message.p, f.message.len))) return rc;
      return reset(s);
    }
    case KMK_DAVE_OP_PROPOSALS: return on_proposals(s, &f);
    case KMK_DAVE_OP_ANNOUNCE_COMMIT: return on_commit(s, &f, now_ms);
    case KMK_DAVE_OP_WELCOME: return on_welcome(s, &f, now_ms);
    default: return 0;
  }
}

/* ---------- media ---------- */

int kmk_dave_session_encrypt(kmk_dave_session *s, const uint8_t *frame, size_t len, uint8_t *out,
                             size_t cap, size_t *out_len) {
  if (s->passthrough) {
    if (cap < len) return KMK_DAVE_ERR_ARG;
    memcpy(out, frame, len);
    *out_len = len;
    return 0;
  }
  if (!s->ready) return KMK_DAVE_ERR_NO_KEY;
  return kmk_dave_encrypt_opus(&s->enc, frame, len, out, cap, out_len);
}

int kmk_dave_session_decrypt(kmk_dave_session *s, uint64_t user_id, const uint8_t *frame,
                             size_t len, uint8_t *out, size_t cap, size_t *out_len,
                             uint64_t now_ms) {
  int marked = len >= 2 && frame[len - 1] == 0xFA && frame[len - 2] == 0xFA;
  user_keys *k = user_slot(s, user_id, 0);
  int rc = k ? kmk_dave_decrypt_opus(&k->dec, frame, len, out, cap, out_len, now_ms)
             : KMK_DAVE_ERR_NO_KEY;
  if (rc && !marked && s->passthrough) {
    if (cap < len) return KMK_DAVE_ERR_ARG;
    memcpy(out, frame, len);
    *out_len = len;
    return 0;
  }
  if (!rc) {
    s->fail_run = 0;
  } else if (s->ready && !s->passthrough && !s->transition_pending && !s->reinitializing &&
             ++s->fail_run > KMK_DAVE_FAILURE_TOLERANCE && s->have_last_tid && s->last_tid) {
    /* our keys no longer match the call (a commit or Welcome we missed or mis-processed): tell
       the gateway the last transition was bad and start over with a new key package. Like
       discord.js, not after transition 0 (nothing earlier to invalidate). */
    s->reinitializing = 1;
    s->fail_run = 0;
    s->recoveries++;
    invalid(s, s->last_tid, 0);
  }
  return rc;
}

unsigned kmk_dave_session_recoveries(const kmk_dave_session *s) { return s->recoveries; }

int kmk_dave_session_ready(const kmk_dave_session *s) { return s->ready; }

const kmk_mls_group *kmk_dave_session_group(const kmk_dave_session *s) {
  return s->in_group ? &s->group : NULL;
}

int kmk_dave_session_privacy_code(const kmk_dave_session *s, char out[31]) {
  if (!s->in_group) return KMK_DAVE_ERR_NO_KEY;
  return kmk_dave_voice_privacy_code(&s->group, out);
}
