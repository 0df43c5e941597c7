/* convert.c - the Lua <-> cJSON bridge: event objects in, decision/request tables out.
 *
 * Owns nothing beyond the cJSON trees it returns (the caller owns them). Raw access only: no
 * metamethod of a script's table ever runs while converting. Depth is capped so cycles and
 * pathological nesting raise instead of recursing without bound.
 * Thread: loop thread only, and only inside a protected call (everything here may raise).
 */
#include "kameko/lua.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <lauxlib.h>

#define CONV_MAX_DEPTH 32

static void push_json(lua_State *L, const cJSON *j, int depth) {
  if (depth > CONV_MAX_DEPTH) luaL_error(L, "JSON value nested deeper than %d", CONV_MAX_DEPTH);
  luaL_checkstack(L, 4, "JSON conversion");
  if (!j || cJSON_IsNull(j) || cJSON_IsInvalid(j)) {
    lua_pushnil(L);
  } else if (cJSON_IsBool(j)) {
    lua_pushboolean(L, cJSON_IsTrue(j));
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d == floor(d) && fabs(d) < 9.007199254740992e15) lua_pushinteger(L, (lua_Integer)d);
    else lua_pushnumber(L, d);
  } else if (cJSON_IsString(j)) {
    lua_pushstring(L, j->valuestring ? j->valuestring : "");
  } else if (cJSON_IsArray(j)) {
    int n = cJSON_GetArraySize(j), i = 0;
    lua_createtable(L, n, 0);
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
      i++;
      push_json(L, c, depth + 1);
      lua_rawseti(L, -2, i);
    }
  } else if (cJSON_IsObject(j)) {
    lua_createtable(L, 0, cJSON_GetArraySize(j));
    const cJSON *c;
    cJSON_ArrayForEach(c, j) {
      if (!c->string) continue;
      lua_pushstring(L, c->string);
      push_json(L, c, depth + 1);
      lua_rawset(L, -3);
    }
  } else {
    lua_pushnil(L);
  }
}

void kmk_lua_push_json(lua_State *L, const cJSON *j) { push_json(L, j, 0); }

/* Is the table at idx a non-empty sequence 1..n with no other keys? */
static int is_array(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1)) {
      lua_pop(L, 1);
      return 0;
    }
    lua_Integer k = lua_tointeger(L, -1);
    if (k < 1 || k > n) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  return count == n;
}

/* Creates the JSON for the value at idx and attaches it to parent (under key, or appended when
 * key is NULL) or, at the top, to *rootp, BEFORE filling containers: whatever was built is
 * always reachable from the root, so the caller frees it all if a raise cuts the walk short.
 * Values JSON cannot hold (functions, userdata, threads) are skipped in objects, null in arrays. */
static void to_json(lua_State *L, int idx, int depth, cJSON *parent, const char *key,
                    cJSON **rootp) {
  if (depth > CONV_MAX_DEPTH)
    luaL_error(L, "value nested deeper than %d (a cycle?)", CONV_MAX_DEPTH);
  luaL_checkstack(L, 6, "JSON conversion");
  cJSON *r = NULL;
  int t = lua_type(L, idx), arr = 0;
  switch (t) {
    case LUA_TBOOLEAN: r = cJSON_CreateBool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER: {
      double d = lua_isinteger(L, idx) ? (double)lua_tointeger(L, idx) : lua_tonumber(L, idx);
      r = isfinite(d) ? cJSON_CreateNumber(d) : cJSON_CreateNull();
      break;
    }
    case LUA_TSTRING: r = cJSON_CreateString(lua_tostring(L, idx)); break;
    case LUA_TTABLE:
      arr = is_array(L, idx);
      r = arr ? cJSON_CreateArray() : cJSON_CreateObject();
      break;
    case LUA_TNIL: r = cJSON_CreateNull(); break;
    case LUA_TLIGHTUSERDATA: /* cjson.null */
      if (lua_touserdata(L, idx) == NULL) {
        r = cJSON_CreateNull();
        break;
      }
      /* fallthrough */
    default:
      if (parent && !key) r = cJSON_CreateNull();
      else if (parent) return;
      else r = cJSON_CreateNull();
      break;
  }
  if (!r) luaL_error(L, "out of memory converting to JSON");
  if (!parent) *rootp = r;
  else if (key) cJSON_AddItemToObject(parent, key, r);
  else cJSON_AddItemToArray(parent, r);
  if (t != LUA_TTABLE) return;
  if (arr) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      to_json(L, lua_gettop(L), depth + 1, r, NULL, rootp);
      lua_pop(L, 1);
    }
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    char keybuf[32];
    const char *k = NULL;
    if (lua_type(L, -2) == LUA_TSTRING) {
      k = lua_tostring(L, -2);
    } else if (lua_isinteger(L, -2)) {
      snprintf(keybuf, sizeof keybuf, "%lld", (long long)lua_tointeger(L, -2));
      k = keybuf;
    }
    if (k) to_json(L, lua_gettop(L), depth + 1, r, k, rootp);
    lua_pop(L, 1);
  }
}

struct conv_job {
  cJSON *root;
};

/* 1: the value, 2: the job. Runs under a nested pcall that owns the partial root. */
static int conv_protected(lua_State *L) {
  struct conv_job *job = lua_touserdata(L, 2);
  to_json(L, 1, 0, NULL, NULL, &job->root);
  return 0;
}

cJSON *kmk_lua_to_json(lua_State *L, int idx) {
  struct conv_job job = {NULL};
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 4, "JSON conversion");
  lua_pushcfunction(L, conv_protected);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, &job);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    cJSON_Delete(job.root);
    lua_error(L);
  }
  if (!job.root) job.root = cJSON_CreateNull();
  if (!job.root) luaL_error(L, "out of memory converting to JSON");
  return job.root;
}
