/* test_lua_specs.c - runs every tests/lua/NAME_spec.lua INSIDE the real sandbox.
 *
 * For each spec file: a fresh state; the engine scripts (kmk_brain_load_scripts), the persona
 * as module "persona_file" (personas/NAME.lua when it exists, e.g. shopkeeper_spec.lua ->
 * personas/shopkeeper.lua; else personas/kameko.lua) and tests/lua/spec.lua as module "spec" are
 * loaded; the spec
 * file runs (registering tests with describe/it); then each test runs through the engine's call
 * funnel with its own budget. One line per failure; the totals count each `it`.
 */
#include "check.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>
#include <time.h>

#include "kameko/brain.h"
#include "kameko/log.h"
#include "kameko/lua.h"

#define LUA_DIR KMK_SOURCE_DIR "/tests/lua"

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_spec(const char *file) {
  char path[1024], chunk[256], err[4096];
  snprintf(path, sizeof path, "%s/%s", LUA_DIR, file);
  snprintf(chunk, sizeof chunk, "tests/lua/%s", file);
  /* 2026-11-24 14:05:00 UTC at t = 0; a generous budget (CI machines get preempted) */
  kmk_lua_opts o = {0, 500.0, 0, 1795529100.0};
  kmk_lua *v = kmk_lua_new(&o);
  char ppath[1024], pchunk[256];
  snprintf(pchunk, sizeof pchunk, "personas/%.*s.lua", (int)(strlen(file) - 9), file);
  snprintf(ppath, sizeof ppath, "%s/%s", KMK_SOURCE_DIR, pchunk);
  if (access(ppath, R_OK) != 0) {
    snprintf(pchunk, sizeof pchunk, "personas/kameko.lua");
    snprintf(ppath, sizeof ppath, "%s/%s", KMK_SOURCE_DIR, pchunk);
  }
  if (!v) {
    fprintf(stderr, "%s: cannot create a state\n", file);
    check_tests_failed++;
    return;
  }
  if (kmk_brain_load_scripts(v, NULL, err, sizeof err) != 0 ||
      kmk_lua_load_module(v, ppath, "persona_file", pchunk, err, sizeof err) != 0 ||
      kmk_lua_load_module(v, LUA_DIR "/spec.lua", "spec", "tests/lua/spec.lua", err,
                          sizeof err) != 0 ||
      kmk_lua_run_file(v, path, chunk, err, sizeof err) != 0) {
    fprintf(stderr, "FAIL %s: %s\n", file, err);
    check_tests_failed++;
    kmk_lua_free(v);
    return;
  }
  lua_settop(kmk_lua_state(v), 0);
  cJSON *n = NULL;
  if (kmk_lua_invoke(v, "spec", "count", NULL, &n, err, sizeof err) != 0 || !cJSON_IsNumber(n)) {
    fprintf(stderr, "FAIL %s: count(): %s\n", file, err);
    check_tests_failed++;
    cJSON_Delete(n);
    kmk_lua_free(v);
    return;
  }
  int count = n->valueint, failed = 0;
  cJSON_Delete(n);
  for (int i = 1; i <= count; i++) {
    cJSON *args = cJSON_CreateArray(), *res = NULL;
    cJSON_AddItemToArray(args, cJSON_CreateNumber(i));
    kmk_lua_set_now(v, 100.0 + i);
    int rc = kmk_lua_invoke(v, "spec", "run", args, &res, err, sizeof err);
    cJSON_Delete(args);
    const cJSON *ok = cJSON_GetObjectItem(res, "ok");
    if (rc != 0 || !cJSON_IsTrue(ok)) {
      const cJSON *name = cJSON_GetObjectItem(res, "name"), *e = cJSON_GetObjectItem(res, "err");
      fprintf(stderr, "FAIL %s #%d %s: %s\n", file, i,
              cJSON_IsString(name) ? name->valuestring : "?",
              rc != 0 ? err : cJSON_IsString(e) ? e->valuestring : "?");
      check_tests_failed++;
      failed++;
    } else {
      check_tests_passed++;
    }
    cJSON_Delete(res);
  }
  printf("%-24s %d tests, %d failed\n", file, count, failed);
  kmk_lua_free(v);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  setenv("TZ", "UTC", 1);
  tzset();
  DIR *d = opendir(LUA_DIR);
  if (!d) {
    fprintf(stderr, "cannot open %s\n", LUA_DIR);
    return 1;
  }
  char *files[256];
  int nf = 0;
  struct dirent *de;
  while ((de = readdir(d)) && nf < 256) {
    size_t l = strlen(de->d_name);
    if (l > 9 && strcmp(de->d_name + l - 9, "_spec.lua") == 0) files[nf++] = strdup(de->d_name);
  }
  closedir(d);
  qsort(files, (size_t)nf, sizeof files[0], cmp);
  if (nf == 0) {
    fprintf(stderr, "no specs in %s\n", LUA_DIR);
    return 1;
  }
  for (int i = 0; i < nf; i++) {
    run_spec(files[i]);
    free(files[i]);
  }
  return check_done();
}
