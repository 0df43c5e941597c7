/* test_mls_passive.c - a passive client follows a group (passive-client-handling-commit.json,
 * suite 2): join by Welcome (with the external PSK the vectors use), then for every epoch store
 * the proposals, process the commit and compare the epoch authenticator. */
#include "check.h"
#include "kameko/mls_group.h"
#include "test_mls_vec.h"

static int epochs_followed;

static int passive_case(const cJSON *e) {
  size_t kn, wn, tn = 0, n;
  uint8_t *kpm = vec_hex(e, "key_package", &kn), *wm = vec_hex(e, "welcome", &wn);
  uint8_t *tree = vec_hex(e, "ratchet_tree", &tn);
  kmk_mls_external_psk psks[8];
  uint8_t *bufs[16];
  int n_psks = 0;
  const cJSON *pe;
  cJSON_ArrayForEach(pe, cJSON_GetObjectItem(e, "external_psks")) {
    if (n_psks == 8) break;
    bufs[2 * n_psks] = vec_hex(pe, "psk_id", &psks[n_psks].id_len);
    bufs[2 * n_psks + 1] = vec_hex(pe, "psk", &psks[n_psks].psk_len);
    psks[n_psks].id = bufs[2 * n_psks];
    psks[n_psks].psk = bufs[2 * n_psks + 1];
    n_psks++;
  }
  kmk_mls_join_keys keys;
  memset(&keys, 0, sizeof keys);
  uint8_t *a = vec_hex(e, "init_priv", &n), *b = vec_hex(e, "encryption_priv", &n),
          *c = vec_hex(e, "signature_priv", &n);
  memcpy(keys.init_priv, a, 32);
  memcpy(keys.encryption_priv, b, 32);
  memcpy(keys.signature_priv, c, 32);
  free(a);
  free(b);
  free(c);
  keys.psks = psks;
  keys.n_psks = (size_t)n_psks;
  kmk_mls_message km;
  int ok = kmk_mls_message_decode_all(kpm, kn, &km) == 0 && wn > 4;
  keys.key_package = km.key_package.raw.p;
  keys.key_package_len = km.key_package.raw.len;
  kmk_mls_group g;
  int rc = ok ? kmk_mls_group_join(&g, &keys, wm + 4, wn - 4, tree, tn) : -99;
  ok = ok && rc == 0 && vec_hex_eq(e, "initial_epoch_authenticator", g.secrets.epoch_authenticator, 32);
  kmk_mls_proposal_store store;
  memset(&store, 0, sizeof store);
  const cJSON *ep;
  int i = 0;
  cJSON_ArrayForEach(ep, cJSON_GetObjectItem(e, "epochs")) {
    if (!ok) break;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(ep, "proposals")) {
      size_t pn;
      uint8_t *pb = vec_hex(p, NULL, &pn);
      rc = kmk_mls_group_store_proposal(&g, &store, pb, pn);
      if (rc) fprintf(stderr, "  epoch %d: store proposal: %d %s\n", i, rc, kmk_mls_strerror(rc));
      ok = rc == 0;
      free(pb);
    }
    size_t cn;
    uint8_t *cb = vec_hex(ep, "commit", &cn);
    int removed = 0;
    rc = ok ? kmk_mls_group_process_commit(&g, &store, cb, cn, psks, (size_t)n_psks, &removed) : -99;
    if (rc) fprintf(stderr, "  epoch %d: commit: %d %s\n", i, rc, kmk_mls_strerror(rc));
    ok = ok && rc == 0 && !removed && vec_hex_eq(ep, "epoch_authenticator", g.secrets.epoch_authenticator, 32);
    if (ok) epochs_followed++;
    free(cb);
    i++;
  }
  kmk_mls_proposal_store_clear(&store);
  if (rc == 0 || ok) kmk_mls_group_free(&g);
  free(kpm);
  free(wm);
  free(tree);
  for (int k = 0; k < 2 * n_psks; k++) free(bufs[k]);
  return ok;
}

static void run_file(const char *name) {
  vec_run(name, name, passive_case);
  printf("%s: %d epochs followed\n", name, epochs_followed);
  epochs_followed = 0;
}

static void test_passive_handling_commit(void) { run_file("passive-client-handling-commit.json"); }

int main(void) {
  RUN(test_passive_handling_commit);
  return check_done();
}
