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
 *
 * Owns nothing. Thread: loop thread only, called from Lua inside kmk_lua_call.
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

/* THE list. Keep it on one screen; mirror every change in scripts/meta/kmk.lua. */
static const luaL_Reg api_funcs[] = {
    {"log", api_log},
    {"now", api_now},
    {"date", api_date},
    {"json_encode", api_json_encode},
    {"json_decode", api_json_decode},
    {"lower", api_lower},
    {"llm_available", api_llm_available},
    {NULL, NULL},
};

void kmk_lua_push_api(lua_State *L) {
  lua_createtable(L, 0, sizeof api_funcs / sizeof api_funcs[0]);
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_call(L, 0, 1);
  luaL_setfuncs(L, api_funcs, 1);
}
