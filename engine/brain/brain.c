/* brain.c - one persona's brain: a sandboxed Lua state holding the engine-side scripts
 * (scripts/text, window, prompt, persona, brain) and the persona file; events in, validated
 * decisions or LLM requests out.
 *
 * Owns: the kmk_lua state, the persona facts (kmk_persona_info) and the request-id counter.
 * Reload is a transaction: a fresh state is built and self-checked, the old one exports its
 * conversation (the window) and the new one imports it; only then are they swapped. Any failure
 * keeps the running state. Request ids live in C, so they survive a reload.
 * Only the newest LLM request is live: a result for an older id is dropped (KMK_ACTION_NONE).
 * Every decision, from the rules or from the LLM, passes kmk_decision_from_json before C sees it.
 * Thread: loop thread only.
 */
#include "kameko/brain.h"

#include "kameko/log.h"
#include "kameko/lua.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BRAIN_TAG "brain"
#define BRAIN_LOAD_BUDGET_MS 500.0 /* compiling and self-checking scripts at start */

struct kmk_brain {
  kmk_lua *vm;
  char persona_path[1024], scripts_dir[1024]; /* for reloads; scripts_dir "" = default */
  int llm_available;
  size_t mem_limit;
  double budget_ms, wall_epoch;
  kmk_persona_info info;
  uint64_t next_id;   /* the id the next LLM request will get */
  uint64_t latest_id; /* the live request, 0 = none */
  char latest_lang[8];
};

static const char *const brain_scripts[] = {"text", "window", "prompt", "persona", "brain", NULL};

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b) {
  if (err && errlen) snprintf(err, errlen, fmt, a, b);
}

/* Keeps the first line of a Lua failure (the traceback is in the log). */
static void first_line(char *s) {
  char *nl = s ? strchr(s, '\n') : NULL;
  if (nl) *nl = '\0';
}

int kmk_brain_load_scripts(kmk_lua *v, const char *scripts_dir, char *err, size_t errlen) {
  if (!scripts_dir) scripts_dir = KMK_SOURCE_DIR "/scripts";
  for (int i = 0; brain_scripts[i]; i++) {
    char path[1024], chunk[128];
    snprintf(path, sizeof path, "%s/%s.lua", scripts_dir, brain_scripts[i]);
    snprintf(chunk, sizeof chunk, "scripts/%s.lua", brain_scripts[i]);
    int rc = kmk_lua_load_module(v, path, brain_scripts[i], chunk, err, errlen);
    if (rc != 0) {
      first_line(err);
      return KMK_BRAIN_ESCRIPT;
    }
  }
  return 0;
}

/* Line of `field =` in the persona file (first match); for a missing field the line of the last
 * top-level `return`; else 1. */
static int persona_line(const char *path, const char *fieldname) {
  FILE *f = fopen(path, "r");
  if (!f) return 1;
  char line[1024];
  int n = 0, found = 0, ret = 0;
  size_t fl = fieldname ? strlen(fieldname) : 0;
  while (fgets(line, sizeof line, f)) {
    n++;
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (fl && !found && strncmp(p, fieldname, fl) == 0) {
      const char *q = p + fl;
      while (*q == ' ' || *q == '\t') q++;
      if (*q == '=' && q[1] != '=') found = n;
    }
    if (p == line && strncmp(p, "return", 6) == 0 && !isalnum((unsigned char)p[6])) ret = n;
  }
  fclose(f);
  return found ? found : ret ? ret : 1;
}

static void copy_str(char *dst, size_t cap, const cJSON *j) {
  snprintf(dst, cap, "%s", cJSON_IsString(j) ? j->valuestring : "");
}

static void fill_info(kmk_persona_info *pi, const cJSON *info) {
  memset(pi, 0, sizeof *pi);
  copy_str(pi->name, sizeof pi->name, cJSON_GetObjectItem(info, "name"));
  const cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(info, "languages")) {
    if (pi->n_languages == KMK_PERSONA_MAX_LANGS) break;
    copy_str(pi->languages[pi->n_languages++], sizeof pi->languages[0], it);
  }
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(info, "wake_words")) {
    if (pi->n_wake_words == KMK_PERSONA_MAX_WAKE) break;
    copy_str(pi->wake_words[pi->n_wake_words++], sizeof pi->wake_words[0], it);
  }
  cJSON_ArrayForEach(it, cJSON_GetObjectItem(info, "voices")) {
    if (pi->n_voices == KMK_PERSONA_MAX_LANGS) break;
    kmk_voice_info *vi = &pi->voices[pi->n_voices++];
    copy_str(vi->lang, sizeof vi->lang, cJSON_GetObjectItem(it, "lang"));
    copy_str(vi->engine, sizeof vi->engine, cJSON_GetObjectItem(it, "engine"));
    copy_str(vi->voice, sizeof vi->voice, cJSON_GetObjectItem(it, "voice"));
    const cJSON *r = cJSON_GetObjectItem(it, "rate"), *p = cJSON_GetObjectItem(it, "pitch");
    vi->rate = cJSON_IsNumber(r) ? r->valueint : 0;
    vi->pitch = cJSON_IsNumber(p) ? p->valueint : 0;
  }
  const cJSON *cs = cJSON_GetObjectItem(info, "context_size");
  const cJSON *mr = cJSON_GetObjectItem(info, "max_reply_chars");
  pi->context_size = cJSON_IsNumber(cs) ? cs->valueint : 15;
  pi->max_reply_chars = cJSON_IsNumber(mr) ? (size_t)mr->valuedouble : KMK_DECISION_DEFAULT_MAX_REPLY;
  pi->has_on_tick = cJSON_IsTrue(cJSON_GetObjectItem(info, "has_on_tick"));
  pi->has_on_event = cJSON_IsTrue(cJSON_GetObjectItem(info, "has_on_event"));
  pi->may_interrupt = cJSON_IsTrue(cJSON_GetObjectItem(info, "may_interrupt"));
  pi->early_speech = !cJSON_IsFalse(cJSON_GetObjectItem(info, "early_speech"));
  pi->speculative_stt = cJSON_IsTrue(cJSON_GetObjectItem(info, "speculative_stt"));
}

/* Builds and self-checks a complete state: scripts, persona, brain.init(). On success *vm_out
 * and *info are filled and the state has the run-time budget; on failure err says why. */
static int brain_build(const kmk_brain *b, kmk_lua **vm_out, kmk_persona_info *info, char *err,
                       size_t errlen) {
  const char *path = b->persona_path;
  kmk_lua_opts lo = {b->mem_limit, BRAIN_LOAD_BUDGET_MS, b->llm_available, b->wall_epoch};
  kmk_lua *vm = kmk_lua_new(&lo);
  if (!vm) {
    set_err(err, errlen, "%s%s", "cannot create the Lua state", "");
    return KMK_BRAIN_ESCRIPT;
  }
  char msg[1024];
  if (kmk_brain_load_scripts(vm, b->scripts_dir[0] ? b->scripts_dir : NULL, msg, sizeof msg) != 0) {
    set_err(err, errlen, "%s%s", msg, "");
    goto fail;
  }
  int rc = kmk_lua_load_module(vm, path, "persona_file", path, msg, sizeof msg);
  if (rc != 0) {
    first_line(msg);
    size_t pl = strlen(path);
    int has_line = strncmp(msg, path, pl) == 0 && msg[pl] == ':' && isdigit((unsigned char)msg[pl + 1]);
    if (rc != KMK_LUA_EIO && !has_line) {
      /* it ran but did not return a table: point at its return statement */
      const char *got = strstr(msg, "(got ");
      if (err && errlen)
        snprintf(err, errlen, "%s:%d: a persona file must return a table %s", path,
                 persona_line(path, NULL), got ? got : "");
    } else {
      set_err(err, errlen, "%s%s", msg, "");
    }
    goto fail;
  }
  cJSON *res = NULL;
  if (kmk_lua_invoke(vm, "brain", "init", NULL, &res, msg, sizeof msg) != 0) {
    first_line(msg);
    set_err(err, errlen, "%s%s", msg, "");
    goto fail;
  }
  const cJSON *e = cJSON_GetObjectItem(res, "error");
  if (cJSON_IsString(e)) {
    const cJSON *fld = cJSON_GetObjectItem(res, "field");
    int line = persona_line(path, cJSON_IsString(fld) ? fld->valuestring : NULL);
    if (err && errlen) snprintf(err, errlen, "%s:%d: %s", path, line, e->valuestring);
    cJSON_Delete(res);
    goto fail;
  }
  fill_info(info, cJSON_GetObjectItem(res, "info"));
  cJSON_Delete(res);
  kmk_lua_set_budget_ms(vm, b->budget_ms);
  *vm_out = vm;
  return 0;
fail:
  kmk_lua_free(vm);
  return KMK_BRAIN_ESCRIPT;
}

kmk_brain *kmk_brain_new(const kmk_brain_opts *o, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  if (!o || !o->persona_path || strlen(o->persona_path) >= sizeof ((kmk_brain *)0)->persona_path ||
      (o->scripts_dir && strlen(o->scripts_dir) >= sizeof ((kmk_brain *)0)->scripts_dir)) {
    set_err(err, errlen, "%s%s", "kmk_brain_new: persona_path is required (and paths < 1 KiB)", "");
    return NULL;
  }
  kmk_brain *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->next_id = 1;
  snprintf(b->persona_path, sizeof b->persona_path, "%s", o->persona_path);
  snprintf(b->scripts_dir, sizeof b->scripts_dir, "%s", o->scripts_dir ? o->scripts_dir : "");
  b->llm_available = o->llm_available;
  b->mem_limit = o->mem_limit;
  b->budget_ms = o->budget_ms > 0 ? o->budget_ms : KMK_LUA_DEFAULT_BUDGET_MS;
  b->wall_epoch = o->wall_epoch;
  if (brain_build(b, &b->vm, &b->info, err, errlen) != 0) {
    KMK_ERR(BRAIN_TAG, "%s", err ? err : "kmk_brain_new failed");
    free(b);
    return NULL;
  }
  KMK_INFO(BRAIN_TAG, "persona %s loaded from %s (%d languages, window %d, llm %s)",
           b->info.name, b->persona_path, b->info.n_languages, b->info.context_size,
           b->llm_available ? "on" : "off");
  return b;
}

int kmk_brain_reload(kmk_brain *b, char *err, size_t errlen) {
  if (!b) return KMK_BRAIN_EINVAL;
  if (err && errlen) err[0] = '\0';
  kmk_lua *vm = NULL;
  kmk_persona_info info;
  if (brain_build(b, &vm, &info, err, errlen) != 0) {
    KMK_WARN(BRAIN_TAG, "reload of %s failed, keeping the running persona: %s", b->persona_path,
             err ? err : "");
    return KMK_BRAIN_ESCRIPT;
  }
  /* hand the conversation over: the old state exports, the new one imports */
  cJSON *state = NULL, *args = cJSON_CreateArray();
  char msg[1024];
  if (kmk_lua_invoke(b->vm, "brain", "export_state", NULL, &state, msg, sizeof msg) != 0)
    KMK_WARN(BRAIN_TAG, "reload: the old state could not export (%s); starting fresh", msg);
  if (state) cJSON_AddItemToArray(args, state);
  kmk_lua_set_now(vm, kmk_lua_now(b->vm));
  int rc = state ? kmk_lua_invoke(vm, "brain", "import_state", args, NULL, msg, sizeof msg) : 0;
  cJSON_Delete(args);
  const char *what = "the new scripts could not import the state";
  /* the conversation store (per-user memory, persona state, mutes, cooldown, language) */
  cJSON *store = NULL, *snap = NULL;
  if (rc == 0 && kmk_lua_store_export(b->vm, &store) != 0)
    KMK_WARN(BRAIN_TAG, "reload: the old store could not export; starting with an empty one");
  if (rc == 0 && store && kmk_lua_store_import(vm, store, 1) != 0) {
    snprintf(msg, sizeof msg, "the store could not be imported (memory cap?)");
    rc = -1;
  }
  cJSON_Delete(store);
  if (rc == 0 && kmk_lua_store_export(vm, &snap) != 0) {
    snprintf(msg, sizeof msg, "the store could not be snapshotted");
    rc = -1;
  }
  if (rc == 0) {
    /* dry run: the new persona's hooks on the current window; the window is restored in Lua,
       the store from the snapshot */
    cJSON *res = NULL;
    rc = kmk_lua_invoke(vm, "brain", "dry_run", NULL, &res, msg, sizeof msg);
    const cJSON *e = rc == 0 ? cJSON_GetObjectItem(res, "error") : NULL;
    if (cJSON_IsString(e)) {
      snprintf(msg, sizeof msg, "%s", e->valuestring);
      rc = -1;
    }
    cJSON_Delete(res);
    what = "dry run on the current window failed";
    if (rc == 0 && kmk_lua_store_import(vm, snap, 0) != 0) {
      snprintf(msg, sizeof msg, "the store could not be restored after the dry run");
      what = "reload";
      rc = -1;
    }
  }
  cJSON_Delete(snap);
  if (rc != 0) {
    first_line(msg);
    set_err(err, errlen, "%s: %s", msg, what);
    KMK_WARN(BRAIN_TAG, "%s", err ? err : "reload failed");
    kmk_lua_free(vm);
    return KMK_BRAIN_ESCRIPT;
  }
  kmk_lua_free(b->vm);
  b->vm = vm;
  b->info = info;
  KMK_INFO(BRAIN_TAG, "persona %s reloaded from %s", info.name, b->persona_path);
  return 0;
}

const kmk_persona_info *kmk_brain_persona(const kmk_brain *b) { return &b->info; }

const char *kmk_brain_path(const kmk_brain *b) { return b ? b->persona_path : NULL; }

const kmk_voice_info *kmk_persona_voice(const kmk_persona_info *p, const char *lang) {
  if (!p || p->n_voices == 0) return NULL;
  for (int i = 0; lang && i < p->n_voices; i++)
    if (strcmp(p->voices[i].lang, lang) == 0) return &p->voices[i];
  for (int i = 0; i < p->n_voices; i++) /* the default language's voice, else the first */
    if (p->n_languages && strcmp(p->voices[i].lang, p->languages[0]) == 0) return &p->voices[i];
  return &p->voices[0];
}

void kmk_brain_set_llm_available(kmk_brain *b, int available) {
  b->llm_available = available;
  kmk_lua_set_llm_available(b->vm, available);
}

void kmk_brain_action_clear(kmk_brain_action *a) {
  if (!a) return;
  kmk_decision_clear(&a->decision);
  free(a->llm_messages_json);
  memset(a, 0, sizeof *a);
}

/* Turns the scripts' action table into out. */
static int take_action(kmk_brain *b, const cJSON *res, kmk_brain_action *out) {
  if (!res || cJSON_IsNull(res)) return 0;
  const cJSON *kind = cJSON_GetObjectItem(res, "kind");
  char msg[256];
  if (cJSON_IsString(kind) && strcmp(kind->valuestring, "decision") == 0) {
    if (kmk_decision_from_json(cJSON_GetObjectItem(res, "decision"), b->info.max_reply_chars, NULL,
                               &out->decision, msg, sizeof msg) != 0) {
      KMK_WARN(BRAIN_TAG, "%s: the scripts returned an invalid decision: %s", b->info.name, msg);
      return KMK_BRAIN_EDECISION;
    }
    out->kind = KMK_ACTION_DECISION;
    return 0;
  }
  if (cJSON_IsString(kind) && strcmp(kind->valuestring, "llm") == 0) {
    const cJSON *m = cJSON_GetObjectItem(res, "messages");
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) == 0) {
      KMK_WARN(BRAIN_TAG, "%s: LLM request without messages", b->info.name);
      return KMK_BRAIN_EDECISION;
    }
    out->llm_messages_json = cJSON_PrintUnformatted(m);
    if (!out->llm_messages_json) return KMK_BRAIN_EDECISION;
    out->kind = KMK_ACTION_LLM;
    out->llm_early_ok = !cJSON_IsFalse(cJSON_GetObjectItem(res, "early"));
    out->llm_request_id = b->next_id++;
    b->latest_id = out->llm_request_id;
    const cJSON *lang = cJSON_GetObjectItem(res, "lang");
    copy_str(b->latest_lang, sizeof b->latest_lang, lang);
    return 0;
  }
  KMK_WARN(BRAIN_TAG, "%s: the scripts returned an action of unknown kind", b->info.name);
  return KMK_BRAIN_EDECISION;
}

int kmk_brain_event(kmk_brain *b, const cJSON *event, double now, kmk_brain_action *out) {
  if (!b || !out) return KMK_BRAIN_EINVAL;
  memset(out, 0, sizeof *out);
  if (!cJSON_IsObject(event)) return KMK_BRAIN_EINVAL;
  kmk_lua_set_now(b->vm, now);
  cJSON *args = cJSON_CreateArray();
  if (!args) return KMK_BRAIN_EINVAL;
  cJSON_AddItemReferenceToArray(args, (cJSON *)event);
  cJSON_AddItemToArray(args, cJSON_CreateNumber((double)b->next_id));
  cJSON *res = NULL;
  int rc = kmk_lua_invoke(b->vm, "brain", "on_event", args, &res, NULL, 0);
  cJSON_Delete(args);
  if (rc != 0) return KMK_BRAIN_ESCRIPT;
  rc = take_action(b, res, out);
  cJSON_Delete(res);
  if (rc != 0) kmk_brain_action_clear(out);
  return rc;
}

static cJSON *decision_json(const kmk_decision *d) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "thought", d->thought ? d->thought : "");
  cJSON_AddBoolToObject(o, "should_speak", d->should_speak);
  cJSON_AddStringToObject(o, "response", d->response ? d->response : "");
  cJSON_AddStringToObject(o, "lang", d->lang);
  if (d->addressed) cJSON_AddStringToObject(o, "addressed", d->addressed);
  return o;
}

int kmk_brain_llm_result(kmk_brain *b, uint64_t request_id, const char *text, const char *error,
                         kmk_brain_action *out) {
  if (!b || !out) return KMK_BRAIN_EINVAL;
  memset(out, 0, sizeof *out);
  if (request_id == 0 || request_id >= b->next_id) return KMK_BRAIN_ENOENT;
  if (request_id != b->latest_id) {
    KMK_DEBUG(BRAIN_TAG, "dropping the answer to stale LLM request %llu",
              (unsigned long long)request_id);
    return 0;
  }
  b->latest_id = 0;
  cJSON *args = cJSON_CreateArray();
  cJSON_AddItemToArray(args, cJSON_CreateNumber((double)request_id));
  char perr[256] = "";
  if (error || !text) {
    cJSON_AddItemToArray(args, cJSON_CreateNull());
    cJSON_AddItemToArray(args, cJSON_CreateString(error ? error : "no answer"));
    cJSON_AddItemToArray(args, cJSON_CreateTrue()); /* the LLM failed: offline rules may answer */
  } else {
    kmk_decision d;
    if (kmk_decision_parse_llm(text, strlen(text), b->info.max_reply_chars, b->latest_lang, &d,
                               perr, sizeof perr) != 0) {
      KMK_WARN(BRAIN_TAG, "%s: unusable LLM answer (%s), staying silent", b->info.name, perr);
      cJSON_AddItemToArray(args, cJSON_CreateNull());
      cJSON_AddItemToArray(args, cJSON_CreateString(perr));
      cJSON_AddItemToArray(args, cJSON_CreateFalse());
    } else {
      cJSON_AddItemToArray(args, decision_json(&d));
      kmk_decision_clear(&d);
    }
  }
  cJSON *res = NULL;
  int rc = kmk_lua_invoke(b->vm, "brain", "on_llm", args, &res, NULL, 0);
  cJSON_Delete(args);
  if (rc != 0) return KMK_BRAIN_ESCRIPT;
  rc = take_action(b, res, out);
  cJSON_Delete(res);
  if (rc == 0 && out->kind != KMK_ACTION_DECISION) {
    kmk_brain_action_clear(out);
    rc = KMK_BRAIN_EDECISION;
  }
  if (rc != 0) kmk_brain_action_clear(out);
  return rc;
}

static int same_user(const char *a, const char *b) {
  char la[256], lb[256];
  kmk_lua_utf8_lower(a, strlen(a), la, sizeof la);
  kmk_lua_utf8_lower(b, strlen(b), lb, sizeof lb);
  return strcmp(la, lb) == 0;
}

int kmk_brain_forget(kmk_brain *b, const char *speaker) {
  if (!b || !speaker || !*speaker || strlen(speaker) > 200) return KMK_BRAIN_EINVAL;
  /* the scripts: window lines, pending requests, the persona's on_forget */
  cJSON *args = cJSON_CreateArray(), *res = NULL;
  if (!args) return KMK_BRAIN_EINVAL;
  cJSON_AddItemToArray(args, cJSON_CreateString(speaker));
  int rc = kmk_lua_invoke(b->vm, "brain", "forget", args, &res, NULL, 0);
  cJSON_Delete(args);
  if (rc != 0) {
    cJSON_Delete(res);
    return KMK_BRAIN_ESCRIPT;
  }
  int n = cJSON_IsNumber(res) && res->valuedouble > 0 ? (int)res->valuedouble : 0;
  cJSON_Delete(res);
  /* the store: kmk.memory(speaker), matched case-insensitively, each remembered fact counted */
  cJSON *store = NULL;
  if (kmk_lua_store_export(b->vm, &store) != 0) return KMK_BRAIN_ESCRIPT;
  cJSON *users = cJSON_GetObjectItem(store, "users");
  int erased = 0;
  for (cJSON *u = users ? users->child : NULL, *next; u; u = next) {
    next = u->next;
    if (!u->string || !same_user(u->string, speaker)) continue;
    int k = cJSON_IsObject(u) || cJSON_IsArray(u) ? cJSON_GetArraySize(u) : 1;
    n += k; /* an empty table (ctx.memory creates one on first sight) holds nothing */
    cJSON_DetachItemViaPointer(users, u);
    cJSON_Delete(u);
    erased = 1;
  }
  if (erased && kmk_lua_store_import(b->vm, store, 0) != 0) {
    cJSON_Delete(store);
    return KMK_BRAIN_ESCRIPT;
  }
  cJSON_Delete(store);
  return n;
}

void kmk_brain_free(kmk_brain *b) {
  if (!b) return;
  kmk_lua_free(b->vm);
  free(b);
}
