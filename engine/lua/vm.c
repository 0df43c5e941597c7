/* vm.c - the sandboxed Lua state: capped allocator, allow-listed environment, per-script _ENV,
 * the CPU-time budget hook and THE call funnel (kmk_lua_call). Nothing else enters Lua.
 *
 * Owns: the lua_State, its allocator accounting, the registry tables "kmk.proto" (the allow-list
 * every script env is copied from) and "kmk.modules" (tables registered by kmk_lua_load_module).
 * Thread: loop thread only (the owner of the state). Not re-entrant across states' threads.
 */
#include "kameko/log.h"
#include "kameko/lua.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

extern int luaopen_cjson_safe(lua_State *L);

#define VM_TAG "lua"
#define VM_HOOK_COUNT 1000 /* instructions between wall-clock checks */
#define VM_PROTO_KEY "kmk.proto"
#define VM_MODULES_KEY "kmk.modules"

struct kmk_lua {
  lua_State *L;
  size_t used, limit;
  int alloc_refused; /* the cap refused an allocation during the current call */
  double budget_ms;
  double deadline;   /* thread CPU seconds */
  int depth;         /* nesting of kmk_lua_call (only the outermost arms the budget) */
  int killed;        /* the current call ran out of budget; the hook raises on every tick */
  int syntax_error;  /* the current call failed to compile a chunk */
  double now;
  int llm_available;
  double wall_epoch;
};

/* The budget counts this thread's CPU time, not wall time: a script cannot block (no I/O, no
 * sleep), so its cost is CPU; wall time would also charge it for the scheduler running other
 * processes, and a loaded machine then killed ordinary calls (a persona skipping a turn). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- allocator with a hard cap ---- */

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  kmk_lua *v = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    v->used -= old;
    return NULL;
  }
  if (nsize > old && v->used - old + nsize > v->limit) {
    v->alloc_refused = 1;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (!p) return NULL;
  v->used = v->used - old + nsize;
  return p;
}

static kmk_lua *vm_of(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return ud;
}

/* ---- budget hook ---- */

static void vm_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  kmk_lua *v = vm_of(L);
  if (!v->killed) {
    if (cpu_now() < v->deadline) return;
    v->killed = 1;
    lua_sethook(L, vm_hook, LUA_MASKCOUNT, 1); /* from now on: raise on every instruction */
  }
  lua_Debug d;
  if (lua_getstack(L, 0, &d) && lua_getinfo(L, "Sl", &d) && d.currentline > 0)
    lua_pushfstring(L, "%s:%d: call killed: budget of %f ms exceeded", d.short_src, d.currentline,
                    v->budget_ms);
  else
    lua_pushfstring(L, "call killed: budget of %f ms exceeded", v->budget_ms);
  lua_error(L);
}

/* ---- sandboxed replacements of base functions ---- */

/* load(chunk, chunkname, mode, env): text chunks only, string source only, explicit env. */
static int sb_load(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  const char *name = luaL_optstring(L, 2, "=(load)");
  const char *mode = luaL_optstring(L, 3, "t");
  if (strcmp(mode, "t") != 0) return luaL_argerror(L, 3, "only text chunks (mode 't') are allowed");
  luaL_checktype(L, 4, LUA_TTABLE);
  if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2; /* nil, message */
  }
  lua_pushvalue(L, 4);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  return 1;
}

/* setmetatable without __gc: finalizers would run outside any budget (e.g. in lua_close). */
static int sb_setmetatable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_argerror(L, 2, "__gc is not allowed");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

static int sb_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "count");
  if (strcmp(opt, "count") != 0) return luaL_argerror(L, 1, "only \"count\" is allowed");
  lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
  return 1;
}

static int sb_print(lua_State *L) {
  luaL_Buffer b;
  int n = lua_gettop(L);
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  KMK_INFO(VM_TAG, "print: %.1000s", lua_tostring(L, -1));
  return 0;
}

/* pcall(f, ...): as the base one, but a killed call is re-raised at once. */
static int sb_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (st != LUA_OK && vm_of(L)->killed) return lua_error(L);
  lua_pushboolean(L, st == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* xpcall(f, handler, ...): the handler runs after the stack unwound (a handler called from inside
 * the budget hook would run with hooks disabled, out of reach of the budget). Scripts have no
 * debug library, so they lose nothing by this. A killed call is re-raised without the handler. */
static int sb_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  for (int i = 3; i <= n; i++) lua_pushvalue(L, i);
  int st = lua_pcall(L, n - 2, LUA_MULTRET, 0);
  if (st == LUA_OK) {
    lua_pushboolean(L, 1);
    lua_insert(L, n + 1); /* results start at n + 1: put true just before them */
    return lua_gettop(L) - n;
  }
  if (vm_of(L)->killed) return lua_error(L);
  lua_pushvalue(L, 2);
  lua_insert(L, -2);
  st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK && vm_of(L)->killed) return lua_error(L);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

/* use(name): a module registered from C. Upvalue 1: the modules table. */
static int sb_use(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (lua_getfield(L, lua_upvalueindex(1), name) == LUA_TNIL)
    return luaL_error(L, "no module '%s' (modules are loaded by the engine, not by scripts)", name);
  return 1;
}

/* __index of every script env: unknown globals are errors. */
static int sb_unknown_global(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "unknown global '%s'", lua_tostring(L, 2));
  return luaL_error(L, "unknown global (a %s key)", luaL_typename(L, 2));
}

/* ---- state setup ---- */

static const char *const base_allow[] = {
    "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawlen",
    "rawset", "select", "getmetatable", "tonumber", "tostring", "type", "_VERSION",
    NULL};

/* Protected: builds the proto table and the modules table. */
static int vm_setup(lua_State *L) {
  luaL_requiref(L, "_G", luaopen_base, 1);
  int g = lua_gettop(L);
  lua_newtable(L); /* proto */
  int proto = lua_gettop(L);
  for (const char *const *n = base_allow; *n; n++) {
    lua_getfield(L, g, *n);
    lua_setfield(L, proto, *n);
  }
  lua_pushcfunction(L, sb_load);
  lua_setfield(L, proto, "load");
  lua_pushcfunction(L, sb_setmetatable);
  lua_setfield(L, proto, "setmetatable");
  lua_pushcfunction(L, sb_collectgarbage);
  lua_setfield(L, proto, "collectgarbage");
  lua_pushcfunction(L, sb_print);
  lua_setfield(L, proto, "print");
  lua_pushcfunction(L, sb_pcall);
  lua_setfield(L, proto, "pcall");
  lua_pushcfunction(L, sb_xpcall);
  lua_setfield(L, proto, "xpcall");

  luaL_requiref(L, "string", luaopen_string, 0);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_setfield(L, proto, "string");
  /* protect the shared string metatable: getmetatable("") -> false, cannot be replaced */
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  luaL_requiref(L, "table", luaopen_table, 0);
  lua_setfield(L, proto, "table");
  luaL_requiref(L, "math", luaopen_math, 0);
  lua_setfield(L, proto, "math");
  luaL_requiref(L, "utf8", luaopen_utf8, 0);
  lua_setfield(L, proto, "utf8");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_call(L, 0, 1);
  lua_setfield(L, proto, "cjson");
  kmk_lua_push_api(L);
  lua_setfield(L, proto, "kmk");

  lua_newtable(L); /* modules */
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, VM_MODULES_KEY);
  lua_pushcclosure(L, sb_use, 1);
  lua_setfield(L, proto, "use");

  lua_pushvalue(L, proto);
  lua_setfield(L, LUA_REGISTRYINDEX, VM_PROTO_KEY);

  /* empty the real globals table: scripts never see it, but keep nothing reachable there */
  lua_pushnil(L);
  while (lua_next(L, g)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, g);
  }
  /* lua_next after clearing the current key is allowed (assigning nil to existing fields) */
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  return 0;
}

/* Pushes a fresh env: copies of the proto (library tables copied shallowly, so a script that
 * edits `string` only edits its own), _G = the env itself, unknown reads raise. */
static void vm_push_env(lua_State *L) {
  lua_newtable(L);
  int env = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, VM_PROTO_KEY);
  int proto = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, proto)) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      int lib = lua_gettop(L);
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, lib)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, lib + 1);
      }
      lua_remove(L, lib);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, env);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");
  lua_newtable(L);
  lua_pushcfunction(L, sb_unknown_global);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, env);
}

static int vm_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    /* no __tostring: no script code runs inside the handler */
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int vm_panic(lua_State *L) {
  KMK_ERR(VM_TAG, "unprotected Lua error (a bug in the C side): %s", lua_tostring(L, -1));
  abort();
}

kmk_lua *kmk_lua_new(const kmk_lua_opts *opts) {
  kmk_lua *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->limit = opts && opts->mem_limit ? opts->mem_limit : KMK_LUA_DEFAULT_MEM_LIMIT;
  v->budget_ms = opts && opts->budget_ms > 0 ? opts->budget_ms : KMK_LUA_DEFAULT_BUDGET_MS;
  v->llm_available = opts ? opts->llm_available : 0;
  v->wall_epoch = opts ? opts->wall_epoch : 0;
  v->L = lua_newstate(vm_alloc, v);
  if (!v->L) {
    free(v);
    return NULL;
  }
  lua_atpanic(v->L, vm_panic);
  lua_pushcfunction(v->L, vm_setup);
  /* setup is not budgeted by time (it runs no script), only by memory */
  double saved = v->budget_ms;
  v->budget_ms = 1000.0;
  int rc = kmk_lua_call(v, "sandbox setup", 0, 0, NULL, 0);
  v->budget_ms = saved;
  if (rc != 0) {
    kmk_lua_free(v);
    return NULL;
  }
  lua_gc(v->L, LUA_GCGEN, 0, 0);
  return v;
}

void kmk_lua_free(kmk_lua *v) {
  if (!v) return;
  if (v->L) lua_close(v->L);
  free(v);
}

lua_State *kmk_lua_state(kmk_lua *v) { return v->L; }
void kmk_lua_set_now(kmk_lua *v, double now) { v->now = now; }
double kmk_lua_now(const kmk_lua *v) { return v->now; }
void kmk_lua_set_llm_available(kmk_lua *v, int available) { v->llm_available = available; }
int kmk_lua_llm_available(const kmk_lua *v) { return v->llm_available; }
double kmk_lua_wall_epoch(const kmk_lua *v) { return v->wall_epoch; }
void kmk_lua_set_budget_ms(kmk_lua *v, double budget_ms) {
  if (budget_ms > 0) v->budget_ms = budget_ms;
}
size_t kmk_lua_mem_used(const kmk_lua *v) { return v->used; }

/* ---- THE funnel ---- */

int kmk_lua_call(kmk_lua *v, const char *what, int nargs, int nresults, char *err, size_t errlen) {
  lua_State *L = v->L;
  if (!what) what = "lua call";
  int base = lua_gettop(L) - nargs - 1;
  if (base < 0 || nargs < 0 || nresults < 0 || !lua_checkstack(L, nresults + 8)) {
    if (err && errlen) snprintf(err, errlen, "%s: bad call from C", what);
    KMK_ERR(VM_TAG, "%s: bad call from C (top %d, nargs %d)", what, lua_gettop(L), nargs);
    return KMK_LUA_EINVAL;
  }
  lua_pushcfunction(L, vm_msgh);
  lua_insert(L, base + 1);
  int outer = v->depth++ == 0;
  if (outer) {
    v->killed = 0;
    v->syntax_error = 0;
    v->alloc_refused = 0;
    v->deadline = cpu_now() + v->budget_ms / 1000.0;
    lua_sethook(L, vm_hook, LUA_MASKCOUNT, VM_HOOK_COUNT);
  }
  int st = lua_pcall(L, nargs, nresults, base + 1);
  int killed = v->killed, syntax = v->syntax_error, refused = v->alloc_refused;
  if (outer) {
    lua_sethook(L, NULL, 0, 0);
    v->killed = 0;
  }
  v->depth--;
  lua_remove(L, base + 1);
  if (st == LUA_OK) {
    if (lua_gettop(L) != base + nresults) {
      KMK_ERR(VM_TAG, "%s: stack unbalanced (%d, expected %d)", what, lua_gettop(L),
              base + nresults);
      lua_settop(L, base + nresults);
    }
    return 0;
  }
  const char *msg = lua_tostring(L, -1);
  if (!msg) msg = "(no message)";
  int rc = killed ? KMK_LUA_EBUDGET
           : (st == LUA_ERRMEM || refused) ? KMK_LUA_ENOMEM
           : syntax ? KMK_LUA_ESYNTAX
                    : KMK_LUA_ERUN;
  if (rc == KMK_LUA_ENOMEM && st == LUA_ERRMEM)
    msg = "not enough memory (the state's memory cap was hit)";
  if (err && errlen) snprintf(err, errlen, "%s", msg);
  KMK_WARN(VM_TAG, "%s failed: %.2000s", what, msg);
  lua_settop(L, base);
  if (rc == KMK_LUA_ENOMEM) lua_gc(L, LUA_GCCOLLECT);
  return rc;
}

/* ---- running chunks ---- */

struct vm_chunk {
  const char *src;
  size_t len;
  const char *chunkname;
};

static int vm_run_chunk(lua_State *L) {
  struct vm_chunk *c = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushfstring(L, "@%s", c->chunkname);
  if (luaL_loadbufferx(L, c->src, c->len, lua_tostring(L, 1), "t") != LUA_OK) {
    vm_of(L)->syntax_error = 1;
    return lua_error(L);
  }
  vm_push_env(L);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  lua_call(L, 0, 1);
  return 1;
}

int kmk_lua_run_string(kmk_lua *v, const char *src, size_t len, const char *chunkname, char *err,
                       size_t errlen) {
  struct vm_chunk c = {src, len, chunkname ? chunkname : "(chunk)"};
  lua_pushcfunction(v->L, vm_run_chunk);
  lua_pushlightuserdata(v->L, &c);
  return kmk_lua_call(v, c.chunkname, 1, 1, err, errlen);
}

int kmk_lua_run_file(kmk_lua *v, const char *path, const char *chunkname, char *err,
                     size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return KMK_LUA_EIO;
  }
  char *buf = malloc(KMK_LUA_MAX_SCRIPT_BYTES + 1);
  size_t n = buf ? fread(buf, 1, KMK_LUA_MAX_SCRIPT_BYTES + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad || n > KMK_LUA_MAX_SCRIPT_BYTES) {
    if (err && errlen)
      snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory" : bad ? "read error" : "script too large");
    free(buf);
    return KMK_LUA_EIO;
  }
  int rc = kmk_lua_run_string(v, buf, n, chunkname ? chunkname : path, err, errlen);
  free(buf);
  return rc;
}

static int vm_register_module(lua_State *L) {
  /* 1: name (light userdata: a C string), 2: value */
  const char *name = lua_touserdata(L, 1);
  if (!lua_istable(L, 2))
    return luaL_error(L, "module '%s' must return a table (got %s)", name, luaL_typename(L, 2));
  lua_getfield(L, LUA_REGISTRYINDEX, VM_MODULES_KEY);
  lua_pushstring(L, name);
  lua_pushvalue(L, 2);
  lua_rawset(L, -3);
  return 0;
}

int kmk_lua_load_module(kmk_lua *v, const char *path, const char *name, const char *chunkname,
                        char *err, size_t errlen) {
  int rc = kmk_lua_run_file(v, path, chunkname, err, errlen);
  if (rc != 0) return rc;
  lua_State *L = v->L;
  lua_pushcfunction(L, vm_register_module);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, (void *)name);
  lua_insert(L, -2);
  char msg[512];
  rc = kmk_lua_call(v, "register module", 2, 0, msg, sizeof msg);
  if (rc != 0 && err && errlen) snprintf(err, errlen, "%s: %s", chunkname ? chunkname : path, msg);
  return rc;
}

/* ---- calling module functions with JSON in and out ---- */

struct vm_invoke {
  const char *module, *fn;
  const cJSON *args;
  cJSON *result;
};

static int vm_invoke_tramp(lua_State *L) {
  struct vm_invoke *in = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, VM_MODULES_KEY);
  if (lua_getfield(L, 1, in->module) != LUA_TTABLE)
    return luaL_error(L, "no module '%s'", in->module);
  if (lua_getfield(L, 2, in->fn) != LUA_TFUNCTION)
    return luaL_error(L, "module '%s' has no function '%s'", in->module, in->fn);
  int n = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, in->args) {
    luaL_checkstack(L, 2, "too many arguments");
    kmk_lua_push_json(L, a);
    n++;
  }
  lua_call(L, n, 1);
  if (!lua_isnil(L, -1)) in->result = kmk_lua_to_json(L, -1);
  return 0;
}

int kmk_lua_invoke(kmk_lua *v, const char *module, const char *fn, const cJSON *args,
                   cJSON **result, char *err, size_t errlen) {
  struct vm_invoke in = {module, fn, args, NULL};
  if (result) *result = NULL;
  char what[128];
  snprintf(what, sizeof what, "%s.%s", module, fn);
  lua_pushcfunction(v->L, vm_invoke_tramp);
  lua_pushlightuserdata(v->L, &in);
  int rc = kmk_lua_call(v, what, 1, 0, err, errlen);
  if (rc != 0) {
    cJSON_Delete(in.result); /* a conversion may have finished before a later failure */
    return rc;
  }
  if (result) *result = in.result;
  else cJSON_Delete(in.result);
  return 0;
}
