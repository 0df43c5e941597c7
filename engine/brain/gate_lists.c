/* gate_lists.c - hallucination phrase/pattern lists loaded from a Lua file (scripts/gates.lua)
 * into C arrays for kmk_gate_opts, plus pattern matching through the file's own match().
 *
 * Owns: a sandboxed kmk_lua state holding the module "gates", and copies of every phrase.
 * Thread: loop thread only (the agent calls it on transcripts and on hot reload).
 */
#include "kameko/gate_lists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/log.h"
#include "kameko/lua.h"

#define MAX_LANGS 16
#define LOAD_BUDGET_MS 200.0
#define MATCH_BUDGET_MS 20.0

struct kmk_gate_lists {
  kmk_lua *vm;
  kmk_gate_list lists[MAX_LANGS];
  char lang[MAX_LANGS][8];
  char **exact[MAX_LANGS], **contains[MAX_LANGS];
  int n_patterns[MAX_LANGS];
  int n;
  char *last; /* the pattern returned by the last kmk_gate_lists_pattern */
};

static void free_strs(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

void kmk_gate_lists_free(kmk_gate_lists *g) {
  if (!g) return;
  for (int i = 0; i < g->n; i++) {
    free_strs(g->exact[i]);
    free_strs(g->contains[i]);
  }
  kmk_lua_free(g->vm);
  free(g->last);
  free(g);
}

/* A JSON array of strings -> a NULL-terminated copy (an empty Lua table may arrive as {}). */
static char **copy_strs(const cJSON *arr) {
  int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return NULL;
  int k = 0;
  for (const cJSON *it = cJSON_IsArray(arr) ? arr->child : NULL; it; it = it->next)
    if (cJSON_IsString(it) && !(v[k++] = strdup(it->valuestring))) {
      free_strs(v);
      return NULL;
    }
  return v;
}

kmk_gate_lists *kmk_gate_lists_load(const char *path, char *err, size_t errlen) {
  kmk_gate_lists *g = calloc(1, sizeof *g);
  kmk_lua_opts lo = {.mem_limit = 4u << 20, .budget_ms = LOAD_BUDGET_MS};
  if (!g || !(g->vm = kmk_lua_new(&lo))) {
    snprintf(err, errlen, "out of memory");
    free(g);
    return NULL;
  }
  cJSON *res = NULL;
  int rc = kmk_lua_load_module(g->vm, path, "gates", path, err, errlen);
  if (rc == 0) rc = kmk_lua_invoke(g->vm, "gates", "export", NULL, &res, err, errlen);
  if (rc != 0) {
    char *nl = strchr(err, '\n');
    if (nl) *nl = '\0';
    goto fail;
  }
  if (!cJSON_IsObject(res) && !(cJSON_IsArray(res) && cJSON_GetArraySize(res) == 0)) {
    snprintf(err, errlen, "%s: export() must return lang -> lists", path);
    goto fail;
  }
  for (const cJSON *l = res->child; l; l = l->next) {
    if (g->n == MAX_LANGS) {
      snprintf(err, errlen, "%s: more than %d languages", path, MAX_LANGS);
      goto fail;
    }
    int i = g->n;
    snprintf(g->lang[i], sizeof g->lang[i], "%s", l->string ? l->string : "");
    g->exact[i] = copy_strs(cJSON_GetObjectItem(l, "exact"));
    g->contains[i] = copy_strs(cJSON_GetObjectItem(l, "contains"));
    const cJSON *pt = cJSON_GetObjectItem(l, "patterns");
    g->n_patterns[i] = cJSON_IsArray(pt) ? cJSON_GetArraySize(pt) : 0;
    g->n++;
    if (!g->exact[i] || !g->contains[i]) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    g->lists[i].lang = g->lang[i];
    g->lists[i].exact = (const char *const *)g->exact[i];
    g->lists[i].contains = (const char *const *)g->contains[i];
  }
  cJSON_Delete(res);
  kmk_lua_set_budget_ms(g->vm, MATCH_BUDGET_MS);
  return g;
fail:
  cJSON_Delete(res);
  kmk_gate_lists_free(g);
  return NULL;
}

void kmk_gate_lists_apply(const kmk_gate_lists *g, kmk_gate_opts *o) {
  o->lists = g ? g->lists : NULL;
  o->n_lists = g ? g->n : 0;
}

void kmk_gate_lists_counts(const kmk_gate_lists *g, int *phrases, int *patterns, int *langs) {
  int ph = 0, pt = 0;
  for (int i = 0; g && i < g->n; i++) {
    for (char **p = g->exact[i]; *p; p++) ph++;
    for (char **p = g->contains[i]; *p; p++) ph++;
    pt += g->n_patterns[i];
  }
  if (phrases) *phrases = ph;
  if (patterns) *patterns = pt;
  if (langs) *langs = g ? g->n : 0;
}

const char *kmk_gate_lists_pattern(kmk_gate_lists *g, const char *text, const char *lang) {
  if (!g || !text) return NULL;
  int any = 0;
  for (int i = 0; i < g->n; i++) any |= g->n_patterns[i] > 0;
  if (!any) return NULL;
  cJSON *args = cJSON_CreateArray(), *res = NULL;
  if (!args) return NULL;
  cJSON_AddItemToArray(args, cJSON_CreateString(text));
  cJSON_AddItemToArray(args, lang && *lang ? cJSON_CreateString(lang) : cJSON_CreateNull());
  char err[256];
  int rc = kmk_lua_invoke(g->vm, "gates", "match", args, &res, err, sizeof err);
  cJSON_Delete(args);
  free(g->last);
  g->last = NULL;
  if (rc == 0 && cJSON_IsString(res)) g->last = strdup(res->valuestring);
  else if (rc != 0) KMK_WARN("gates", "pattern match failed: %s", err);
  cJSON_Delete(res);
  return g->last;
}
