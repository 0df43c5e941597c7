/* api.c - the `kmk` table: everything a script may ask of the engine. Mirrored for editors in
 * scripts/meta/kmk.lua. Bad arguments raise (luaL_check*); runtime failures return nil, err.
 *
 *   kmk.log(level, msg)        level: "error" | "warn" | "info" | "debug"; msg capped at 1000 bytes
 *   kmk.now() -> seconds       position on the conversation timeline (events' `t`), set by C
 *   kmk.date() -> table        {year, month, day, hour, min, sec, wday (1 = Sunday), yday} local
 *                              wall-clock time at kmk.now()
 *   kmk.json_encode(v) -> s | nil, err     via cjson.safe
 *   kmk.json_decode(s) -> v | nil, err     via cjson.safe (JSON null -> cjson.null)
 *   kmk.lower(s) -> s          UTF-8 lowercase: ASCII, Latin-1 letters, Cyrillic (incl. Ё)
 *   kmk.llm_available() -> b   whether an LLM provider is configured
 *   -- conversation state (in the registry store; handed to the new state on a hot reload)
 *   kmk.memory(user) -> t | nil, err   facts about one speaker (a table the persona fills),
 *                              created empty; nil, err once STORE_MAX_USERS are remembered
 *   kmk.state() -> t           the persona's own state (seeded from the persona's `state`)
 *   kmk.mute(user [, on])      ignore (true, default) or listen to (false) a user again
 *   kmk.muted(user) -> b
 *   kmk.cooldown(seconds)      hold back unsolicited replies for this long (0 clears)
 *   kmk.cooldown_left() -> s
 *   kmk.language([code|false]) -> code|nil   switch language (false = follow the speaker)
 *   -- replies
 *   kmk.say(text [, opts]) -> decision      opts {lang, voice, rate, pitch, yield, thought}
 *   kmk.silent([thought]) -> decision
 *
 * Owns the registry table "kmk.store" {users, state, muted, cooldown_until, lang}, exported and
 * imported by C (kmk_lua_store_export/import). Thread: loop thread only, inside kmk_lua_call.
 */
#include "kameko/log.h"
#include "kameko/lua.h"

#include <string.h>
#include <time.h>

#include <lauxlib.h>

extern int luaopen_cjson_safe(lua_State *L);

static kmk_lua *api_vm(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return ud;
}

static int api_log(lua_State *L) {
  static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
  int level = luaL_checkoption(L, 1, NULL, levels);
  size_t len;
  const char *msg = luaL_checklstring(L, 2, &len);
  kmk_log((kmk_log_level)level, "persona", "%.1000s", msg);
  return 0;
}

static int api_now(lua_State *L) {
  lua_pushnumber(L, kmk_lua_now(api_vm(L)));
  return 1;
}

static int api_date(lua_State *L) {
  kmk_lua *v = api_vm(L);
  double epoch = kmk_lua_wall_epoch(v);
  time_t t = epoch > 0 ? (time_t)(epoch + kmk_lua_now(v)) : time(NULL);
  struct tm tm;
  if (!localtime_r(&t, &tm)) {
    lua_pushnil(L);
    lua_pushliteral(L, "time out of range");
    return 2;
  }
  lua_createtable(L, 0, 8);
  struct {
    const char *k;
    int v;
  } f[] = {{"year", tm.tm_year + 1900}, {"month", tm.tm_mon + 1}, {"day", tm.tm_mday},
           {"hour", tm.tm_hour},        {"min", tm.tm_min},       {"sec", tm.tm_sec},
           {"wday", tm.tm_wday + 1},    {"yday", tm.tm_yday + 1}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    lua_pushinteger(L, f[i].v);
    lua_setfield(L, -2, f[i].k);
  }
  return 1;
}

/* Upvalue 1 of every kmk function: a private cjson.safe instance. */
static int api_json_call(lua_State *L, const char *fn) {
  lua_getfield(L, lua_upvalueindex(1), fn);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 2);
  return 2;
}

static int api_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  return api_json_call(L, "encode");
}

static int api_json_decode(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 1);
  return api_json_call(L, "decode");
}

size_t kmk_lua_utf8_lower(const char *s, size_t len, char *out, size_t outlen) {
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
#define PUT(c)                             \
  do {                                     \
    if (o + 1 < outlen) out[o] = (char)(c); \
    o++;                                   \
  } while (0)
  for (size_t i = 0; i < len;) {
    unsigned c = p[i];
    if (c < 0x80) {
      PUT(c >= 'A' && c <= 'Z' ? c + 32 : c);
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0 && i + 1 < len && (p[i + 1] & 0xC0) == 0x80) {
      unsigned cp = ((c & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
      if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) cp += 0x20;       /* Latin-1 */
      else if (cp >= 0x410 && cp <= 0x42F) cp += 0x20;               /* А-Я */
      else if (cp >= 0x400 && cp <= 0x40F) cp += 0x50;               /* Ѐ-Џ, incl. Ё */
      PUT(0xC0 | (cp >> 6));
      PUT(0x80 | (cp & 0x3F));
      i += 2;
      continue;
    }
    PUT(c); /* other sequences and stray bytes are copied as they are */
    i++;
  }
#undef PUT
  if (outlen) out[o < outlen ? o : outlen - 1] = '\0';
  return o;
}

static int api_lower(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len + 1);
  size_t n = kmk_lua_utf8_lower(s, len, out, len + 1);
  luaL_pushresultsize(&b, n);
  return 1;
}

static int api_llm_available(lua_State *L) {
  lua_pushboolean(L, kmk_lua_llm_available(api_vm(L)));
  return 1;
}

/* ---- the store ---- */
#define STORE_KEY "kmk.store"
#define MAX_USER_LEN 64
#define STORE_MAX_USERS 1024 /* people remembered per persona (bounded; runtime failure past it) */

/* Pushes the store (creating it with its sub-tables on first use). */
static void push_store(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, STORE_KEY) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 5);
  lua_newtable(L);
  lua_setfield(L, -2, "users");
  lua_newtable(L);
  lua_setfield(L, -2, "state");
  lua_newtable(L);
  lua_setfield(L, -2, "muted");
  lua_pushnumber(L, 0);
  lua_setfield(L, -2, "cooldown_until");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, STORE_KEY);
}

/* Pushes store[field] (a table). */
static void push_store_table(lua_State *L, const char *field) {
  push_store(L);
  if (lua_getfield(L, -1, field) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, field);
  }
  lua_remove(L, -2);
}

/* user names: non-empty strings up to 64 bytes, compared lowercased for mutes */
static const char *check_user(lua_State *L, int idx, size_t *len) {
  const char *u = luaL_checklstring(L, idx, len);
  luaL_argcheck(L, *len > 0 && *len <= MAX_USER_LEN, idx, "a user name of 1..64 bytes");
  return u;
}

static int api_memory(lua_State *L) {
  size_t len;
  const char *u = check_user(L, 1, &len);
  push_store_table(L, "users");
  if (lua_getfield(L, -1, u) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_Integer n = 0; /* counted only when a new user would be added */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      n++;
    }
    if (n >= STORE_MAX_USERS) {
      lua_pushnil(L);
      lua_pushfstring(L, "memory is full (%d users remembered)", STORE_MAX_USERS);
      return 2;
    }
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, u);
  }
  return 1;
}

static int api_state(lua_State *L) {
  push_store_table(L, "state");
  return 1;
}

static int api_mute(lua_State *L) {
  size_t len;
  const char *u = check_user(L, 1, &len);
  int on = lua_isnoneornil(L, 2) ? 1 : (luaL_checktype(L, 2, LUA_TBOOLEAN), lua_toboolean(L, 2));
  char low[MAX_USER_LEN * 2 + 1];
  kmk_lua_utf8_lower(u, len, low, sizeof low);
  push_store_table(L, "muted");
  if (on) lua_pushboolean(L, 1); else lua_pushnil(L);
  lua_setfield(L, -2, low);
  return 0;
}

static int api_muted(lua_State *L) {
  size_t len;
  const char *u = luaL_checklstring(L, 1, &len);
  char low[MAX_USER_LEN * 2 + 1];
  if (len == 0 || len > MAX_USER_LEN) {
    lua_pushboolean(L, 0);
    return 1;
  }
  kmk_lua_utf8_lower(u, len, low, sizeof low);
  push_store_table(L, "muted");
  lua_pushboolean(L, lua_getfield(L, -1, low) == LUA_TBOOLEAN && lua_toboolean(L, -1));
  return 1;
}

static int api_cooldown(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s <= 3600, 1, "seconds 0..3600");
  double until = s > 0 ? kmk_lua_now(api_vm(L)) + s : 0;
  push_store(L);
  lua_getfield(L, -1, "cooldown_until");
  double cur = lua_tonumber(L, -1);
  lua_pop(L, 1);
  lua_pushnumber(L, s > 0 && cur > until ? cur : until);
  lua_setfield(L, -2, "cooldown_until");
  return 0;
}

static int api_cooldown_left(lua_State *L) {
  push_store(L);
  lua_getfield(L, -1, "cooldown_until");
  double left = lua_tonumber(L, -1) - kmk_lua_now(api_vm(L));
  lua_pushnumber(L, left > 0 ? left : 0);
  return 1;
}

static int valid_lang(const char *s, size_t n) {
  if (n < 2 || n > 3) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 'a' || s[i] > 'z') return 0;
  return 1;
}

static int api_language(lua_State *L) {
  int set = !lua_isnone(L, 1);
  lua_settop(L, 1);
  push_store(L); /* index 2 */
  if (set) {
    if (lua_isboolean(L, 1) && !lua_toboolean(L, 1)) {
      lua_pushnil(L);
    } else {
      size_t n;
      const char *l = luaL_checklstring(L, 1, &n);
      luaL_argcheck(L, valid_lang(l, n), 1, "a language code like \"en\" (or false)");
      lua_pushvalue(L, 1);
    }
    lua_setfield(L, -2, "lang");
  }
  lua_getfield(L, -1, "lang");
  return 1;
}

/* kmk.say(text [, opts]) -> a validated decision table */
static int api_say(lua_State *L) {
  size_t n;
  luaL_checklstring(L, 1, &n);
  luaL_argcheck(L, n > 0 && n <= 4000, 1, "non-empty text of at most 4000 bytes");
  int has_opts = !lua_isnoneornil(L, 2);
  if (has_opts) luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_createtable(L, 0, 6);
  lua_pushboolean(L, 1);
  lua_setfield(L, 3, "should_speak");
  lua_pushvalue(L, 1);
  lua_setfield(L, 3, "response");
  if (!has_opts) {
    lua_pushliteral(L, "kmk.say");
    lua_setfield(L, 3, "thought");
    return 1;
  }
  if (lua_getfield(L, 2, "thought") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushliteral(L, "kmk.say");
  } else {
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "opts.thought must be a string");
  }
  lua_setfield(L, 3, "thought");
  if (lua_getfield(L, 2, "lang") != LUA_TNIL) {
    size_t ln = 0;
    const char *l = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &ln) : "";
    luaL_argcheck(L, valid_lang(l, ln), 2,
                  "opts.lang must be a language code like \"en\"");
  }
  lua_setfield(L, 3, "lang");
  if (lua_getfield(L, 2, "yield") != LUA_TNIL)
    luaL_argcheck(L, lua_isboolean(L, -1), 2, "opts.yield must be a boolean");
  lua_setfield(L, 3, "yield");
  lua_createtable(L, 0, 3); /* voice overrides */
  int any = 0;
  if (lua_getfield(L, 2, "voice") != LUA_TNIL) {
    size_t vn = 0;
    if (lua_type(L, -1) == LUA_TSTRING) lua_tolstring(L, -1, &vn);
    luaL_argcheck(L, vn > 0 && vn < 64, 2,
                  "opts.voice must be a voice name (1..63 bytes)");
    any = 1;
    lua_setfield(L, -2, "voice");
  } else {
    lua_pop(L, 1);
  }
  static const struct { const char *k; int lo, hi; } nums[] = {{"rate", 50, 500}, {"pitch", 0, 100}};
  for (int i = 0; i < 2; i++) {
    if (lua_getfield(L, 2, nums[i].k) != LUA_TNIL) {
      int ok = lua_isinteger(L, -1) && lua_tointeger(L, -1) >= nums[i].lo &&
               lua_tointeger(L, -1) <= nums[i].hi;
      if (!ok) return luaL_error(L, "bad argument #2 to 'say' (opts.%s must be an integer %d..%d)",
                                 nums[i].k, nums[i].lo, nums[i].hi);
      any = 1;
      lua_setfield(L, -2, nums[i].k);
    } else {
      lua_pop(L, 1);
    }
  }
  if (any) lua_setfield(L, 3, "voice");
  else lua_pop(L, 1);
  lua_settop(L, 3);
  return 1;
}

static int api_silent(lua_State *L) {
  const char *th = luaL_optstring(L, 1, "staying silent");
  lua_createtable(L, 0, 3);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "should_speak");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "response");
  lua_pushstring(L, th);
  lua_setfield(L, -2, "thought");
  return 1;
}

/* C side of the hand-over: run through the funnel (conversions may raise). */
static int store_export_cf(lua_State *L) {
  cJSON **out = lua_touserdata(L, 1);
  push_store(L);
  *out = kmk_lua_to_json(L, -1);
  return 0;
}

static int store_import_cf(lua_State *L) {
  const cJSON *in = lua_touserdata(L, 1);
  int merge = lua_toboolean(L, 2);
  push_store(L);
  int store = lua_gettop(L);
  static const char *const replace[] = {"users", "muted", "cooldown_until", "lang", NULL};
  for (int i = 0; replace[i]; i++) {
    const cJSON *f = cJSON_GetObjectItem(in, replace[i]);
    if (!f) continue;
    kmk_lua_push_json(L, f);
    if (i < 2 && !lua_istable(L, -1)) { /* [] / {} both arrive as tables; anything else: skip */
      lua_pop(L, 1);
      continue;
    }
    lua_setfield(L, store, replace[i]);
  }
  /* state: the running state wins key by key; keys only the new file seeds are kept */
  const cJSON *st = cJSON_GetObjectItem(in, "state"), *it;
  if (!cJSON_IsObject(st)) st = NULL;
  if (!merge) { /* a restore: the state is exactly the snapshot */
    lua_newtable(L);
    lua_setfield(L, store, "state");
  }
  push_store_table(L, "state");
  cJSON_ArrayForEach(it, st) {
    kmk_lua_push_json(L, it);
    lua_setfield(L, -2, it->string);
  }
  return 0;
}

int kmk_lua_store_export(kmk_lua *v, cJSON **out) {
  *out = NULL;
  lua_State *L = kmk_lua_state(v);
  lua_pushcfunction(L, store_export_cf);
  lua_pushlightuserdata(L, out);
  int rc = kmk_lua_call(v, "store export", 1, 0, NULL, 0);
  if (rc != 0) {
    cJSON_Delete(*out);
    *out = NULL;
  }
  return rc;
}

int kmk_lua_store_import(kmk_lua *v, const cJSON *store, int merge_state) {
  if (!cJSON_IsObject(store)) return 0;
  lua_State *L = kmk_lua_state(v);
  lua_pushcfunction(L, store_import_cf);
  lua_pushlightuserdata(L, (void *)store);
  lua_pushboolean(L, merge_state);
  return kmk_lua_call(v, "store import", 2, 0, NULL, 0);
}

/* THE list. Keep it on one screen; mirror every change in scripts/meta/kmk.lua. */
static const luaL_Reg api_funcs[] = {
    {"log", api_log},
    {"now", api_now},
    {"date", api_date},
    {"json_encode", api_json_encode},
    {"json_decode", api_json_decode},
    {"lower", api_lower},
    {"llm_available", api_llm_available},
    {"memory", api_memory},
    {"state", api_state},
    {"mute", api_mute},
    {"muted", api_muted},
    {"cooldown", api_cooldown},
    {"cooldown_left", api_cooldown_left},
    {"language", api_language},
    {"say", api_say},
    {"silent", api_silent},
    {NULL, NULL},
};

void kmk_lua_push_api(lua_State *L) {
  lua_createtable(L, 0, sizeof api_funcs / sizeof api_funcs[0]);
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_call(L, 0, 1);
  luaL_setfuncs(L, api_funcs, 1);
}
