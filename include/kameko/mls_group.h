/* mls_group.h - the ratchet tree (owned, mutable for later commits) and the MLS group state of
 * one member: joining by Welcome, epoch secrets, exporter, epoch authenticator; and KeyPackage
 * creation with a basic credential.
 *
 * Ownership: kmk_mls_tree and kmk_mls_group own heap memory; release with kmk_mls_tree_free /
 * kmk_mls_group_free (which wipe secrets). Views inside nodes point into the node's own `enc`
 * buffer, so a node is self-contained and survives tree reallocation. Input buffers are borrowed
 * for the call only. Not thread-safe: one thread owns a group at a time.
 * Errors are negative KMK_MLS_ERR_* values.
 */
#ifndef KAMEKO_MLS_GROUP_H
#define KAMEKO_MLS_GROUP_H

#include "kameko/mls_messages.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- ratchet tree ---------- */
enum { KMK_MLS_NODE_BLANK = 0, KMK_MLS_NODE_LEAF = 1, KMK_MLS_NODE_PARENT = 2 };

typedef struct kmk_mls_node {
  uint8_t type;               /* KMK_MLS_NODE_* */
  kmk_mls_bytes enc;          /* owned encoding of the LeafNode or ParentNode */
  kmk_mls_leaf_node leaf;     /* views into enc (leaf) */
  kmk_mls_parent_node parent; /* views into enc (parent) */
} kmk_mls_node;

typedef struct kmk_mls_tree {
  kmk_mls_node *nodes; /* owned array of width(n_leaves) nodes */
  uint32_t n_leaves;   /* a power of two */
} kmk_mls_tree;

/* Parses an encoded RatchetTree (optional<Node> nodes<V>, with its length prefix) and pads it on
 * the right with blanks to a complete tree. Rejects a trailing blank node. */
int kmk_mls_tree_decode(kmk_mls_tree *t, const uint8_t *p, size_t n);
/* Encodes the tree, trailing blank nodes stripped. */
int kmk_mls_tree_encode(const kmk_mls_tree *t, kmk_mls_w *w);
void kmk_mls_tree_free(kmk_mls_tree *t);
int kmk_mls_tree_copy(kmk_mls_tree *dst, const kmk_mls_tree *src); /* deep copy */
uint32_t kmk_mls_tree_width_of(const kmk_mls_tree *t);
/* Tree hash of the subtree rooted at node x (RFC 9420 section 7.8). */
int kmk_mls_tree_hash(const kmk_mls_tree *t, uint32_t x, uint8_t out[KMK_MLS_NH]);
int kmk_mls_tree_root_hash(const kmk_mls_tree *t, uint8_t out[KMK_MLS_NH]);
/* Resolution of node x (section 4.1.1) into out[cap]; returns the count or a negative error. */
int kmk_mls_tree_resolution(const kmk_mls_tree *t, uint32_t x, uint32_t *out, uint32_t cap);
/* Filtered direct path of leaf index `leaf` (section 4.1.2); returns count or negative error. */
int kmk_mls_tree_filtered_direct_path(const kmk_mls_tree *t, uint32_t leaf, uint32_t *out,
                                      uint32_t cap);
/* Every non-blank parent node is parent-hash valid (section 7.9.2). */
int kmk_mls_tree_verify_parent_hashes(const kmk_mls_tree *t);
/* Every leaf's signature verifies (LeafNodeTBS with group_id / leaf index where required). */
int kmk_mls_tree_verify_leaf_signatures(const kmk_mls_tree *t, kmk_mls_view group_id);
/* The checks a joiner runs (section 12.4.3.1): structure, unique keys, leaf signatures, parent
 * hashes, unmerged-leaf consistency, and tree hash == expected_tree_hash (NULL to skip). */
int kmk_mls_tree_validate(const kmk_mls_tree *t, kmk_mls_view group_id,
                          const uint8_t *expected_tree_hash);

/* ---------- TreeKEM, receiving side (mls_treekem.c) ---------- */
typedef struct kmk_mls_path_key kmk_mls_path_key;
/* Merges a committer's UpdatePath (section 7.5): blanks the sender's direct path, installs the
 * filtered direct path's new parent nodes with their parent hashes, checks the leaf's parent
 * hash and signature, replaces the leaf. On error the tree is partly modified: merge into a
 * copy. Leaves added by the same commit must already be in the tree (part 2: exclusions). */
int kmk_mls_tree_merge_update_path(kmk_mls_tree *t, uint32_t sender,
                                   const kmk_mls_update_path *path, kmk_mls_view group_id);
/* Blanks leaf's direct path and installs parent nodes with keys[i] on its filtered direct path
 * (n must equal its length) with their parent hashes; outputs the parent hash the leaf must
 * carry. Used by both merge (receiving) and commit creation (sending). */
int kmk_mls_tree_install_path(kmk_mls_tree *t, uint32_t leaf, const kmk_mls_view *keys, int n,
                              uint8_t leaf_parent_hash[KMK_MLS_NH]);
/* Replaces a leaf without touching its direct path (the node is copied). */
int kmk_mls_tree_set_leaf(kmk_mls_tree *t, uint32_t leaf, const kmk_mls_leaf_node *ln);
/* Decrypts the path secret meant for leaf `me` (after the merge, with the provisional
 * GroupContext gc); *node_out is the filtered-direct-path node it belongs to. path_keys (one per
 * node, may be NULL) are the parent private keys we hold; joiners[] are the leaves added by the
 * same commit (left out of the resolutions the ciphertexts follow). */
int kmk_mls_tree_decrypt_path(const kmk_mls_tree *t, uint32_t sender, uint32_t me,
                              const kmk_mls_update_path *path, const uint8_t *gc, size_t gc_len,
                              const uint8_t leaf_priv[KMK_MLS_PRIV],
                              const kmk_mls_path_key *path_keys, const uint32_t *joiners,
                              uint32_t n_joiners, uint8_t path_secret[KMK_MLS_NH],
                              uint32_t *node_out);
/* From the path secret of `node` on the sender's filtered direct path: checks every derived
 * public key up to the root, stores private keys in path_keys (optional) and outputs the commit
 * secret (optional). */
int kmk_mls_tree_derive_path(const kmk_mls_tree *t, uint32_t sender, uint32_t node,
                             const uint8_t path_secret[KMK_MLS_NH], kmk_mls_path_key *path_keys,
                             uint8_t commit_secret[KMK_MLS_NH]);

/* Membership changes (section 12.1). add_leaf takes the leftmost blank leaf (doubling the tree
 * when full) and lists it as unmerged in the non-blank parents above it; update_leaf replaces a
 * leaf and blanks its direct path; remove_leaf blanks the leaf and its direct path, then drops
 * blank right halves. The leaf node is copied. */
int kmk_mls_tree_add_leaf(kmk_mls_tree *t, const kmk_mls_leaf_node *leaf, uint32_t *index);
int kmk_mls_tree_update_leaf(kmk_mls_tree *t, uint32_t leaf, const kmk_mls_leaf_node *ln);
int kmk_mls_tree_remove_leaf(kmk_mls_tree *t, uint32_t leaf);

/* ---------- group ---------- */
#define KMK_MLS_RESUMPTION_KEEP 8
struct kmk_mls_path_key {
  int present;
  uint8_t priv[KMK_MLS_PRIV];
};

typedef struct kmk_mls_group {
  kmk_mls_bytes group_id;
  uint64_t epoch;
  kmk_mls_tree tree;
  uint32_t my_leaf;
  kmk_mls_bytes context_extensions; /* GroupContext extensions body */
  kmk_mls_bytes group_context;      /* encoded current GroupContext */
  uint8_t tree_hash[KMK_MLS_NH];
  uint8_t confirmed_transcript_hash[KMK_MLS_NH];
  uint8_t interim_transcript_hash[KMK_MLS_NH];
  kmk_mls_epoch_secrets secrets;
  uint8_t signature_priv[KMK_MLS_PRIV]; /* our leaf's signing key */
  uint8_t encryption_priv[KMK_MLS_PRIV]; /* our leaf's HPKE key */
  kmk_mls_path_key *path_keys; /* owned, one per tree node: private keys we hold for parents */
  /* resumption PSKs of the latest epochs (resumption PSK proposals may name them) */
  struct {
    uint64_t epoch;
    int present;
    uint8_t psk[KMK_MLS_NH];
  } resumption[KMK_MLS_RESUMPTION_KEEP];
} kmk_mls_group;

/* What a joiner holds from the KeyPackage it published. */
/* An external PSK the application shares with the group (DAVE uses none). */
typedef struct kmk_mls_external_psk {
  const uint8_t *id, *psk;
  size_t id_len, psk_len;
} kmk_mls_external_psk;

typedef struct kmk_mls_join_keys {
  const uint8_t *key_package; /* encoded KeyPackage (bare, not an MLSMessage) */
  size_t key_package_len;
  const kmk_mls_external_psk *psks; /* external PSKs the Welcome may name (may be NULL) */
  size_t n_psks;
  uint8_t init_priv[KMK_MLS_PRIV];
  uint8_t encryption_priv[KMK_MLS_PRIV];
  uint8_t signature_priv[KMK_MLS_PRIV];
} kmk_mls_join_keys;

/* Joins from a Welcome (bare Welcome struct, not an MLSMessage). The ratchet tree comes from the
 * GroupInfo's ratchet_tree extension, or from `tree`/`tree_len` when given (encoded RatchetTree).
 * External PSKs are looked up in keys->psks; resumption PSKs are not supported
 * (KMK_MLS_ERR_UNSUPPORTED). On success *g is initialised (caller frees);
 * on failure *g is left zeroed. */
int kmk_mls_group_join(kmk_mls_group *g, const kmk_mls_join_keys *keys, const uint8_t *welcome,
                       size_t welcome_len, const uint8_t *tree, size_t tree_len);
/* psk_secret for a list body of PreSharedKeyID (GroupSecrets.psks or PSK proposals) with the
 * given external PSKs; resumption PSKs (usage application) resolve from the group's recent
 * epochs (g may be NULL). KMK_MLS_ERR_INVALID when a PSK is unknown. */
int kmk_mls_psk_secret_for(const kmk_mls_group *g, kmk_mls_view psk_ids,
                           const kmk_mls_external_psk *psks, size_t n_psks,
                           uint8_t out[KMK_MLS_NH]);
void kmk_mls_group_free(kmk_mls_group *g);
int kmk_mls_group_export(const kmk_mls_group *g, const char *label, const uint8_t *ctx,
                         size_t clen, uint8_t *out, size_t olen);

/* Opens a Welcome's GroupSecrets for us (RFC 9420 section 12.4.3.1 steps 1-3): finds our entry
 * by KeyPackageRef and decrypts it. *secrets_out receives the owned plaintext. */
int kmk_mls_welcome_open_secrets(const kmk_mls_welcome *w, const uint8_t *key_package,
                                 size_t kp_len, const uint8_t init_priv[KMK_MLS_PRIV],
                                 kmk_mls_bytes *secrets_out);
/* Decrypts encrypted_group_info with the welcome secret. *gi_out receives the owned plaintext. */
int kmk_mls_welcome_open_group_info(const kmk_mls_welcome *w, const uint8_t welcome_secret[32],
                                    kmk_mls_bytes *gi_out);

/* ---------- commits (mls_commit.c) ---------- */
/* Proposals sent by the external sender (DAVE op 27), kept by ProposalRef until a commit uses
 * them; owned by the caller next to the group, cleared on every epoch change. */
typedef struct kmk_mls_stored_proposal {
  uint8_t ref[KMK_MLS_NH];
  uint32_t sender; /* proposer's leaf index, or UINT32_MAX for an external sender */
  kmk_mls_bytes msg; /* the MLSMessage bytes; `prop` views into it */
  kmk_mls_proposal prop;
} kmk_mls_stored_proposal;

typedef struct kmk_mls_proposal_store {
  kmk_mls_stored_proposal *items;
  size_t n, cap;
} kmk_mls_proposal_store;

void kmk_mls_proposal_store_clear(kmk_mls_proposal_store *s);
/* Drops the proposal with this ref (DAVE op 27 revoke); 1 if found, 0 if not. */
int kmk_mls_proposal_store_revoke(kmk_mls_proposal_store *s, const uint8_t *ref, size_t ref_len);
/* Verifies an MLSMessage(PublicMessage) proposal for the current epoch and stores it: from an
 * external sender listed in the group's external_senders extension (signature), or from a
 * member (signature and membership tag). Add (suite-2 KeyPackage with valid signatures),
 * Remove, Update (signed leaf), PSK and GroupContextExtensions are accepted. */
int kmk_mls_group_store_proposal(const kmk_mls_group *g, kmk_mls_proposal_store *s,
                                 const uint8_t *msg, size_t len);
/* Processes an MLSMessage(PublicMessage) commit from a member: signature and membership tag,
 * proposals by reference (from the store) or by value (Add/Remove), the UpdatePath, the new
 * key schedule and the confirmation tag. On success the group is in the next epoch and the store
 * is cleared; *removed is set when the commit removed us (the group is then unusable). PSK
 * proposals resolve against psks[] (external) or the group's recent resumption PSKs. On error
 * the group is unchanged. */
int kmk_mls_group_process_commit(kmk_mls_group *g, kmk_mls_proposal_store *s, const uint8_t *msg,
                                 size_t len, const kmk_mls_external_psk *psks, size_t n_psks,
                                 int *removed);

/* ---------- creating groups and commits (mls_create.c) ---------- */
/* A one-member group at epoch 0 (section 11): our leaf is the LeafNode of our KeyPackage, `ext`
 * the GroupContext extensions body (DAVE: external_senders). */
int kmk_mls_group_create(kmk_mls_group *g, const uint8_t *group_id, size_t gid_len,
                         const uint8_t *key_package, size_t kp_len,
                         const uint8_t encryption_priv[KMK_MLS_PRIV],
                         const uint8_t signature_priv[KMK_MLS_PRIV], const uint8_t *ext,
                         size_t ext_len);

/* A commit we made, waiting to be accepted. Owns everything; free with
 * kmk_mls_pending_commit_free (or install `next` with kmk_mls_group_apply_pending). */
typedef struct kmk_mls_pending_commit {
  kmk_mls_bytes commit;  /* MLSMessage(PublicMessage) */
  kmk_mls_bytes welcome; /* bare Welcome; empty when nobody is added */
  kmk_mls_group next;    /* our state in the next epoch */
} kmk_mls_pending_commit;

/* Commits every stored proposal (by reference; Add and Remove only) with a fresh UpdatePath
 * (section 12.4.1). The group itself is not changed. */
int kmk_mls_group_commit(const kmk_mls_group *g, const kmk_mls_proposal_store *s,
                         kmk_mls_pending_commit *out);
void kmk_mls_pending_commit_free(kmk_mls_pending_commit *p);
/* Replaces g by the pending next epoch (p->next is moved out; free p afterwards). */
void kmk_mls_group_apply_pending(kmk_mls_group *g, kmk_mls_pending_commit *p);

/* ---------- key packages ---------- */
typedef struct kmk_mls_key_package_keys {
  uint8_t init_priv[KMK_MLS_PRIV], encryption_priv[KMK_MLS_PRIV], signature_priv[KMK_MLS_PRIV];
  uint8_t signature_pub[KMK_MLS_PUB];
} kmk_mls_key_package_keys;

/* Builds a suite-2 KeyPackage with a basic credential `identity`, capabilities versions [1],
 * suites [2], no extensions or proposals, credentials [basic], lifetime [0, 2^64-1]. Fresh keys
 * unless keys->signature_priv is already set (reuse_signature_key != 0). *out is the bare
 * KeyPackage (caller owns). */
int kmk_mls_key_package_create(const uint8_t *identity, size_t id_len, int reuse_signature_key,
                               kmk_mls_key_package_keys *keys, kmk_mls_bytes *out);
/* KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage). */
int kmk_mls_key_package_ref(const uint8_t *kp, size_t kp_len, uint8_t out[KMK_MLS_NH]);

#ifdef __cplusplus
}
#endif
#endif
