/* mls_messages.h - RFC 9420 message structures: decode (validating) and encode.
 *
 * Zero-copy design: a decoded struct holds kmk_mls_view slices that point INTO the input buffer,
 * which the caller must keep alive and unchanged while the struct is used. Nothing is allocated,
 * so there is nothing to free. Lists (extensions, capabilities, proposals, update path nodes,
 * encrypted group secrets, PSK ids, ratchet tree nodes, external senders) are kept as the raw
 * vector body; decode validates every element once, and the kmk_mls_*_next iterators walk them
 * afterwards (an iterator cannot fail on a body that passed decode, but still checks).
 *
 * Decoders are generic over ciphersuites (key and signature sizes are not checked here; the
 * group layer checks suite 2). Encoders write the structure as given, so encode(decode(x)) == x.
 * Decode functions take a reader positioned at the structure, advance it past the structure on
 * success, and return 0 or KMK_MLS_ERR_DECODE / KMK_MLS_ERR_INVALID. Encoders return the writer's
 * sticky error.
 */
#ifndef KAMEKO_MLS_MESSAGES_H
#define KAMEKO_MLS_MESSAGES_H

#include "kameko/mls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kmk_mls_view {
  const uint8_t *p; /* borrowed */
  size_t len;
} kmk_mls_view;

enum { KMK_MLS_WIRE_PUBLIC = 1, KMK_MLS_WIRE_PRIVATE = 2, KMK_MLS_WIRE_WELCOME = 3,
       KMK_MLS_WIRE_GROUP_INFO = 4, KMK_MLS_WIRE_KEY_PACKAGE = 5 };
enum { KMK_MLS_CRED_BASIC = 1, KMK_MLS_CRED_X509 = 2 };
enum { KMK_MLS_LEAF_KEY_PACKAGE = 1, KMK_MLS_LEAF_UPDATE = 2, KMK_MLS_LEAF_COMMIT = 3 };
enum { KMK_MLS_PROP_ADD = 1, KMK_MLS_PROP_UPDATE = 2, KMK_MLS_PROP_REMOVE = 3, KMK_MLS_PROP_PSK = 4,
       KMK_MLS_PROP_REINIT = 5, KMK_MLS_PROP_EXTERNAL_INIT = 6, KMK_MLS_PROP_GCE = 7 };
enum { KMK_MLS_SENDER_MEMBER = 1, KMK_MLS_SENDER_EXTERNAL = 2, KMK_MLS_SENDER_NEW_MEMBER_PROPOSAL = 3,
       KMK_MLS_SENDER_NEW_MEMBER_COMMIT = 4 };
enum { KMK_MLS_CONTENT_APPLICATION = 1, KMK_MLS_CONTENT_PROPOSAL = 2, KMK_MLS_CONTENT_COMMIT = 3 };
enum { KMK_MLS_EXT_APPLICATION_ID = 1, KMK_MLS_EXT_RATCHET_TREE = 2, KMK_MLS_EXT_REQUIRED_CAPS = 3,
       KMK_MLS_EXT_EXTERNAL_PUB = 4, KMK_MLS_EXT_EXTERNAL_SENDERS = 5 };

/* Extension list: body of Extension extensions<V>; decode rejects duplicate types. */
int kmk_mls_extensions_decode(kmk_mls_r *r, kmk_mls_view *list);
int kmk_mls_extensions_next(kmk_mls_r *it, uint16_t *type, kmk_mls_view *data);
/* Finds an extension by type: 1 found, 0 absent. */
int kmk_mls_extensions_find(kmk_mls_view list, uint16_t type, kmk_mls_view *data);

typedef struct kmk_mls_credential {
  uint16_t type;
  kmk_mls_view identity; /* basic */
  kmk_mls_view certs;    /* x509: body of Certificate certificates<V> */
} kmk_mls_credential;

typedef struct kmk_mls_capabilities {
  kmk_mls_view versions, suites, extensions, proposals, credentials; /* bodies of u16 lists */
} kmk_mls_capabilities;
int kmk_mls_u16_list_has(kmk_mls_view list, uint16_t v);

typedef struct kmk_mls_leaf_node {
  kmk_mls_view encryption_key, signature_key;
  kmk_mls_credential credential;
  kmk_mls_capabilities capabilities;
  uint8_t source;                  /* KMK_MLS_LEAF_* */
  uint64_t not_before, not_after;  /* key_package source */
  kmk_mls_view parent_hash;        /* commit source */
  kmk_mls_view extensions;
  kmk_mls_view signature;
  kmk_mls_view tbs_head; /* encoded fields before the signature (LeafNodeTBS minus group info) */
} kmk_mls_leaf_node;

typedef struct kmk_mls_key_package {
  uint16_t version, suite;
  kmk_mls_view init_key;
  kmk_mls_leaf_node leaf;
  kmk_mls_view extensions;
  kmk_mls_view signature;
  kmk_mls_view tbs; /* KeyPackageTBS: every encoded field before the signature */
  kmk_mls_view raw; /* the whole encoded KeyPackage (for the KeyPackageRef) */
} kmk_mls_key_package;

typedef struct kmk_mls_psk_id {
  uint8_t type; /* 1 external, 2 resumption */
  kmk_mls_view psk_id;
  uint8_t usage;
  kmk_mls_view group_id;
  uint64_t epoch;
  kmk_mls_view nonce;
} kmk_mls_psk_id;

typedef struct kmk_mls_proposal {
  uint16_t type;
  kmk_mls_key_package add;      /* add */
  kmk_mls_leaf_node update;     /* update */
  uint32_t removed;             /* remove */
  kmk_mls_psk_id psk;           /* psk */
  kmk_mls_view reinit_group_id; /* reinit */
  uint16_t reinit_version, reinit_suite;
  kmk_mls_view reinit_extensions;
  kmk_mls_view kem_output;      /* external_init */
  kmk_mls_view extensions;      /* group_context_extensions */
  kmk_mls_view raw;             /* the encoded Proposal */
} kmk_mls_proposal;

typedef struct kmk_mls_proposal_or_ref {
  uint8_t type; /* 1 proposal, 2 reference */
  kmk_mls_proposal proposal;
  kmk_mls_view ref;
} kmk_mls_proposal_or_ref;

typedef struct kmk_mls_update_path {
  kmk_mls_leaf_node leaf;
  kmk_mls_view nodes; /* body of UpdatePathNode nodes<V> */
} kmk_mls_update_path;

typedef struct kmk_mls_update_path_node {
  kmk_mls_view encryption_key;
  kmk_mls_view secrets; /* body of HPKECiphertext encrypted_path_secret<V> */
} kmk_mls_update_path_node;

typedef struct kmk_mls_hpke_ct {
  kmk_mls_view kem_output, ciphertext;
} kmk_mls_hpke_ct;

typedef struct kmk_mls_commit {
  kmk_mls_view proposals; /* body of ProposalOrRef proposals<V> */
  int has_path;
  kmk_mls_update_path path;
} kmk_mls_commit;

typedef struct kmk_mls_sender {
  uint8_t type;   /* KMK_MLS_SENDER_* */
  uint32_t index; /* leaf index (member) or sender index (external) */
} kmk_mls_sender;

typedef struct kmk_mls_framed_content {
  kmk_mls_view group_id;
  uint64_t epoch;
  kmk_mls_sender sender;
  kmk_mls_view authenticated_data;
  uint8_t content_type;
  kmk_mls_view application_data;
  kmk_mls_proposal proposal;
  kmk_mls_commit commit;
  kmk_mls_view raw; /* the encoded FramedContent */
} kmk_mls_framed_content;

typedef struct kmk_mls_public_message {
  kmk_mls_framed_content content;
  kmk_mls_view signature;
  kmk_mls_view confirmation_tag; /* commit only */
  kmk_mls_view membership_tag;   /* member sender only */
  kmk_mls_view raw_through_signature; /* FramedContent || signature<V> (transcript input part) */
} kmk_mls_public_message;

typedef struct kmk_mls_private_message {
  kmk_mls_view group_id;
  uint64_t epoch;
  uint8_t content_type;
  kmk_mls_view authenticated_data, encrypted_sender_data, ciphertext;
} kmk_mls_private_message;

typedef struct kmk_mls_welcome {
  uint16_t suite;
  kmk_mls_view secrets; /* body of EncryptedGroupSecrets secrets<V> */
  kmk_mls_view encrypted_group_info;
} kmk_mls_welcome;

typedef struct kmk_mls_encrypted_group_secrets {
  kmk_mls_view new_member; /* KeyPackageRef */
  kmk_mls_hpke_ct ct;
} kmk_mls_encrypted_group_secrets;

typedef struct kmk_mls_group_secrets {
  kmk_mls_view joiner_secret;
  int has_path_secret;
  kmk_mls_view path_secret;
  kmk_mls_view psks; /* body of PreSharedKeyID psks<V> */
} kmk_mls_group_secrets;

typedef struct kmk_mls_group_context {
  uint16_t version, suite;
  kmk_mls_view group_id;
  uint64_t epoch;
  kmk_mls_view tree_hash, confirmed_transcript_hash, extensions;
  kmk_mls_view raw;
} kmk_mls_group_context;

typedef struct kmk_mls_group_info {
  kmk_mls_group_context context;
  kmk_mls_view extensions;
  kmk_mls_view confirmation_tag;
  uint32_t signer;
  kmk_mls_view signature;
  kmk_mls_view tbs; /* GroupInfoTBS: everything before the signature */
} kmk_mls_group_info;

typedef struct kmk_mls_external_sender {
  kmk_mls_view signature_key;
  kmk_mls_credential credential;
} kmk_mls_external_sender;

typedef struct kmk_mls_message {
  uint16_t version, wire_format;
  kmk_mls_public_message pub;
  kmk_mls_private_message priv;
  kmk_mls_welcome welcome;
  kmk_mls_group_info group_info;
  kmk_mls_key_package key_package;
} kmk_mls_message;

/* ---------- decoders ---------- */
int kmk_mls_credential_decode(kmk_mls_r *r, kmk_mls_credential *c);
int kmk_mls_capabilities_decode(kmk_mls_r *r, kmk_mls_capabilities *c);
int kmk_mls_leaf_node_decode(kmk_mls_r *r, kmk_mls_leaf_node *l);
int kmk_mls_key_package_decode(kmk_mls_r *r, kmk_mls_key_package *k);
int kmk_mls_psk_id_decode(kmk_mls_r *r, kmk_mls_psk_id *p);
int kmk_mls_proposal_decode(kmk_mls_r *r, kmk_mls_proposal *p);
/* Proposal body of a given type (the messages.json "*_proposal" vectors carry only the body). */
int kmk_mls_proposal_body_decode(kmk_mls_r *r, uint16_t type, kmk_mls_proposal *p);
int kmk_mls_proposal_or_ref_decode(kmk_mls_r *r, kmk_mls_proposal_or_ref *p);
int kmk_mls_commit_decode(kmk_mls_r *r, kmk_mls_commit *c);
int kmk_mls_update_path_decode(kmk_mls_r *r, kmk_mls_update_path *p);
int kmk_mls_update_path_node_decode(kmk_mls_r *r, kmk_mls_update_path_node *n);
int kmk_mls_hpke_ct_decode(kmk_mls_r *r, kmk_mls_hpke_ct *c);
int kmk_mls_framed_content_decode(kmk_mls_r *r, kmk_mls_framed_content *f);
int kmk_mls_public_message_decode(kmk_mls_r *r, kmk_mls_public_message *m);
int kmk_mls_private_message_decode(kmk_mls_r *r, kmk_mls_private_message *m);
int kmk_mls_welcome_decode(kmk_mls_r *r, kmk_mls_welcome *w);
int kmk_mls_encrypted_group_secrets_decode(kmk_mls_r *r, kmk_mls_encrypted_group_secrets *e);
int kmk_mls_group_secrets_decode(kmk_mls_r *r, kmk_mls_group_secrets *g);
int kmk_mls_group_context_decode(kmk_mls_r *r, kmk_mls_group_context *g);
int kmk_mls_group_info_decode(kmk_mls_r *r, kmk_mls_group_info *g);
int kmk_mls_external_sender_decode(kmk_mls_r *r, kmk_mls_external_sender *e);
/* Body of the external_senders extension. */
int kmk_mls_external_senders_decode(kmk_mls_r *r, kmk_mls_view *list);
/* RatchetTree = optional<Node> nodes<V>; validates every node; *n_nodes gets the count. */
int kmk_mls_ratchet_tree_decode(kmk_mls_r *r, kmk_mls_view *nodes, uint32_t *n_nodes);
int kmk_mls_message_decode(kmk_mls_r *r, kmk_mls_message *m);
/* Whole-buffer convenience: decode and require that nothing is left over. */
int kmk_mls_message_decode_all(const uint8_t *p, size_t n, kmk_mls_message *m);

/* ---------- iterators over validated list bodies (it = reader over the body) ---------- */
int kmk_mls_proposals_next(kmk_mls_r *it, kmk_mls_proposal_or_ref *p);
int kmk_mls_path_nodes_next(kmk_mls_r *it, kmk_mls_update_path_node *n);
int kmk_mls_group_secrets_next(kmk_mls_r *it, kmk_mls_encrypted_group_secrets *e);
int kmk_mls_psk_ids_next(kmk_mls_r *it, kmk_mls_psk_id *p);
int kmk_mls_external_senders_next(kmk_mls_r *it, kmk_mls_external_sender *e);
/* Ratchet tree node: *present 0 for a blank node; type 1 leaf, 2 parent. */
typedef struct kmk_mls_parent_node {
  kmk_mls_view encryption_key, parent_hash, unmerged_leaves; /* unmerged: body of u32 list */
} kmk_mls_parent_node;
int kmk_mls_tree_nodes_next(kmk_mls_r *it, int *present, uint8_t *type, kmk_mls_leaf_node *leaf,
                            kmk_mls_parent_node *parent, kmk_mls_view *raw);

/* AuthenticatedContent = wire_format || FramedContent || FramedContentAuthData. */
typedef struct kmk_mls_authenticated_content {
  uint16_t wire_format;
  kmk_mls_framed_content content;
  kmk_mls_view signature, confirmation_tag;
  kmk_mls_view confirmed_input; /* wire_format || content || signature<V> */
  kmk_mls_view raw;
} kmk_mls_authenticated_content;
int kmk_mls_authenticated_content_decode(kmk_mls_r *r, kmk_mls_authenticated_content *a);

/* ---------- framing and protection of PublicMessage (mls_framing.c) ---------- */
/* FramedContentTBS: version || wire_format || content || GroupContext (the latter only for
 * member and new_member_commit senders; gc may be NULL otherwise). */
int kmk_mls_framed_content_tbs(kmk_mls_w *w, uint16_t wire_format, const kmk_mls_framed_content *fc,
                               const uint8_t *gc, size_t gc_len);
int kmk_mls_public_message_verify_signature(const kmk_mls_public_message *m, const uint8_t *pub,
                                            size_t pub_len, const uint8_t *gc, size_t gc_len);
/* membership_tag = MAC(membership_key, AuthenticatedContentTBM). */
int kmk_mls_membership_tag(const uint8_t key[KMK_MLS_NH], const kmk_mls_public_message *m,
                           const uint8_t *gc, size_t gc_len, uint8_t out[KMK_MLS_NH]);
int kmk_mls_public_message_verify_membership(const uint8_t key[KMK_MLS_NH],
                                             const kmk_mls_public_message *m, const uint8_t *gc,
                                             size_t gc_len);
/* Signs fc (and tags it when the sender is a member) and writes an MLSMessage(PublicMessage).
 * confirmation_tag (Nh bytes) is required for commits; membership_key for member senders. */
int kmk_mls_public_message_protect(kmk_mls_w *w, const kmk_mls_framed_content *fc,
                                   const uint8_t sig_priv[KMK_MLS_PRIV], const uint8_t *gc,
                                   size_t gc_len, const uint8_t *confirmation_tag,
                                   const uint8_t *membership_key);
/* ProposalRef = RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent) of a proposal sent
 * as a PublicMessage. */
int kmk_mls_proposal_ref(const kmk_mls_public_message *m, uint8_t out[KMK_MLS_NH]);
/* ConfirmedTranscriptHashInput of a commit PublicMessage: wire_format || content || signature. */
int kmk_mls_public_message_confirmed_input(const kmk_mls_public_message *m, kmk_mls_w *w);

/* ---------- encoders ---------- */
int kmk_mls_credential_encode(kmk_mls_w *w, const kmk_mls_credential *c);
int kmk_mls_capabilities_encode(kmk_mls_w *w, const kmk_mls_capabilities *c);
int kmk_mls_leaf_node_encode(kmk_mls_w *w, const kmk_mls_leaf_node *l);
/* LeafNodeTBS: the leaf's fields without signature, plus group_id and leaf_index for the update
 * and commit sources (pass any values for key_package). */
int kmk_mls_leaf_node_tbs_encode(kmk_mls_w *w, const kmk_mls_leaf_node *l, kmk_mls_view group_id,
                                 uint32_t leaf_index);
int kmk_mls_key_package_encode(kmk_mls_w *w, const kmk_mls_key_package *k);
int kmk_mls_key_package_tbs_encode(kmk_mls_w *w, const kmk_mls_key_package *k);
int kmk_mls_psk_id_encode(kmk_mls_w *w, const kmk_mls_psk_id *p);
int kmk_mls_proposal_encode(kmk_mls_w *w, const kmk_mls_proposal *p);
int kmk_mls_proposal_body_encode(kmk_mls_w *w, const kmk_mls_proposal *p);
int kmk_mls_proposal_or_ref_encode(kmk_mls_w *w, const kmk_mls_proposal_or_ref *p);
int kmk_mls_commit_encode(kmk_mls_w *w, const kmk_mls_commit *c);
int kmk_mls_framed_content_encode(kmk_mls_w *w, const kmk_mls_framed_content *f);
int kmk_mls_public_message_encode(kmk_mls_w *w, const kmk_mls_public_message *m);
int kmk_mls_private_message_encode(kmk_mls_w *w, const kmk_mls_private_message *m);
int kmk_mls_welcome_encode(kmk_mls_w *w, const kmk_mls_welcome *m);
int kmk_mls_group_secrets_encode(kmk_mls_w *w, const kmk_mls_group_secrets *g);
int kmk_mls_group_context_encode2(kmk_mls_w *w, const kmk_mls_group_context *g);
int kmk_mls_group_info_tbs_encode(kmk_mls_w *w, const kmk_mls_group_info *g);
int kmk_mls_group_info_encode(kmk_mls_w *w, const kmk_mls_group_info *g);
int kmk_mls_external_sender_encode(kmk_mls_w *w, const kmk_mls_external_sender *e);
int kmk_mls_message_encode(kmk_mls_w *w, const kmk_mls_message *m);

#ifdef __cplusplus
}
#endif
#endif
