/* lua.h - the sandboxed Lua state (engine/lua/vm.c), the kmk table (api.c) and the
 * Lua <-> cJSON bridge (convert.c).
 *
 * Thread: every function here is for the loop thread only (the thread that owns the state).
 *
 * Sandbox (allow-list): base (no dofile/loadfile; `load` takes text chunks only and needs an
 * explicit env), string (no dump), table, math, utf8, cjson (= cjson.safe), kmk, `use(name)` for
 * modules already loaded by C, and collectgarbage("count"). No io, os, package, debug, require.
 * Each script runs in its own _ENV (own copies of the library tables); reading an unknown global
 * raises. Memory is capped per state; every call through kmk_lua_call has a CPU-time budget
 * checked from an instruction-count hook, and once a call is killed the hook keeps raising until
 * the call returns, so `pcall` inside the script cannot swallow the kill.
 *
 * Errors are negative ints (KMK_LUA_E*); messages are "script:line: what" plus a traceback.
 */
#ifndef KAMEKO_LUA_H
#define KAMEKO_LUA_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <lua.h>

#define KMK_LUA_DEFAULT_MEM_LIMIT (32u * 1024u * 1024u)
#define KMK_LUA_DEFAULT_BUDGET_MS 5.0
#define KMK_LUA_MAX_SCRIPT_BYTES (1024 * 1024)

enum {
  KMK_LUA_OK = 0,
  KMK_LUA_ERUN = -1,    /* runtime error raised by the script (or a bad argument) */
  KMK_LUA_ESYNTAX = -2, /* the chunk did not compile */
  KMK_LUA_ENOMEM = -3,  /* the state's memory cap was hit */
  KMK_LUA_EBUDGET = -4, /* the call ran past its CPU-time budget and was killed */
  KMK_LUA_EIO = -5,     /* a script file could not be read */
  KMK_LUA_EINVAL = -6,  /* bad argument from C */
};

typedef struct kmk_lua kmk_lua;

typedef struct {
  size_t mem_limit;  /* bytes; 0 = KMK_LUA_DEFAULT_MEM_LIMIT */
  double budget_ms;  /* CPU time (of the calling thread) per kmk_lua_call; 0 = KMK_LUA_DEFAULT_BUDGET_MS */
  int llm_available; /* what kmk.llm_available() returns */
  double wall_epoch; /* Unix time of t=0 on the timeline, for kmk.date(); 0 = time(NULL) now */
} kmk_lua_opts;

/* Creates a sandboxed state. Returns NULL on allocation failure. Caller owns it. */
kmk_lua *kmk_lua_new(const kmk_lua_opts *opts);
void kmk_lua_free(kmk_lua *v);
/* The raw state, for pushing a function and arguments before kmk_lua_call. Owned by v. */
lua_State *kmk_lua_state(kmk_lua *v);

/* Seconds on the conversation timeline; what kmk.now() returns during the next calls. */
void kmk_lua_set_now(kmk_lua *v, double now);
double kmk_lua_now(const kmk_lua *v);
void kmk_lua_set_llm_available(kmk_lua *v, int available);
int kmk_lua_llm_available(const kmk_lua *v);
double kmk_lua_wall_epoch(const kmk_lua *v);
void kmk_lua_set_budget_ms(kmk_lua *v, double budget_ms);
size_t kmk_lua_mem_used(const kmk_lua *v);

/* THE funnel: every entry into Lua goes through here. Stack on entry: function, nargs args.
 * Runs it under pcall with a traceback handler and the budget armed. On success leaves exactly
 * nresults values (nresults >= 0) and returns 0; on failure leaves nothing, writes
 * "script:line: message\nstack traceback: ..." to err (may be NULL), logs it as `what` and
 * returns KMK_LUA_ERUN / ENOMEM / EBUDGET. */
int kmk_lua_call(kmk_lua *v, const char *what, int nargs, int nresults, char *err, size_t errlen);

/* Reads a text script (at most KMK_LUA_MAX_SCRIPT_BYTES), compiles it as chunk `chunkname`
 * (shown in messages, e.g. "scripts/window.lua"), runs it in a fresh _ENV through the funnel and
 * leaves its single return value on the stack (nil if it returned nothing). */
int kmk_lua_run_file(kmk_lua *v, const char *path, const char *chunkname, char *err, size_t errlen);
/* Same for text in memory. */
int kmk_lua_run_string(kmk_lua *v, const char *src, size_t len, const char *chunkname, char *err,
                       size_t errlen);
/* Runs a file and registers its return value (must be a table) as module `name`, reachable from
 * scripts as use(name). Leaves nothing on the stack. */
int kmk_lua_load_module(kmk_lua *v, const char *path, const char *name, const char *chunkname,
                        char *err, size_t errlen);
/* Calls use(module)[fn](args...) through the funnel: args is a cJSON array (each element becomes
 * one Lua argument, null -> nil; may be NULL for none); the single result is converted back to
 * cJSON (*result = NULL when the function returned nil). Caller owns *result. */
int kmk_lua_invoke(kmk_lua *v, const char *module, const char *fn, const cJSON *args,
                   cJSON **result, char *err, size_t errlen);

/* ---- api.c: the kmk table ---- */
/* Pushes a fresh kmk table (called once per script env; raises on memory errors). */
void kmk_lua_push_api(lua_State *L);
/* UTF-8 lowercase for ASCII, Latin-1 letters and Cyrillic (U+0400..U+042F). Writes at most
 * outlen-1 bytes plus NUL and returns the length it needed (like snprintf). */
size_t kmk_lua_utf8_lower(const char *s, size_t len, char *out, size_t outlen);

/* The conversation store (kmk.memory/state/mute/cooldown/language) as JSON, for a hot reload's
 * hand-over: export from the old state (caller owns *out), import into the new one (users, mutes,
 * cooldown and language replaced; with merge_state the state is merged key by key - the running
 * values win, keys only the new file seeds stay - else it is replaced: a restore). Both run
 * through the funnel; 0 or a KMK_LUA_E* code. */
int kmk_lua_store_export(kmk_lua *v, cJSON **out);
int kmk_lua_store_import(kmk_lua *v, const cJSON *store, int merge_state);

/* ---- convert.c: only inside a protected call (they raise on memory errors) ---- */
/* Pushes a cJSON value as Lua (objects/arrays -> tables, null -> nil). Depth is capped. */
void kmk_lua_push_json(lua_State *L, const cJSON *j);
/* Converts the Lua value at idx to a new cJSON (raw access, no metamethods; functions are
 * skipped; a table with keys 1..n is an array). Raises on cycles/too deep. Caller owns. */
cJSON *kmk_lua_to_json(lua_State *L, int idx);

#endif
