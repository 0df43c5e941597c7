/* test_lua_sandbox.c - the sandbox refuses escapes; budgets and the memory cap hold. */
#include "check.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <time.h>

#include "kameko/log.h"
#include "kameko/lua.h"

static char err[4096];

static kmk_lua *mk(size_t mem, double budget_ms) {
  kmk_lua_opts o = {mem, budget_ms, 0, 0};
  return kmk_lua_new(&o);
}

/* Runs src; returns the rc and leaves the value (if any) popped into *out_str as a string. */
static int run(kmk_lua *v, const char *src, char *out, size_t outlen) {
  err[0] = '\0';
  int rc = kmk_lua_run_string(v, src, strlen(src), "t.lua", err, sizeof err);
  if (out) out[0] = '\0';
  if (rc == 0) {
    lua_State *L = kmk_lua_state(v);
    if (out && lua_type(L, -1) == LUA_TSTRING) snprintf(out, outlen, "%s", lua_tostring(L, -1));
    else if (out && lua_type(L, -1) == LUA_TBOOLEAN)
      snprintf(out, outlen, "%s", lua_toboolean(L, -1) ? "true" : "false");
    lua_pop(L, 1);
  }
  return rc;
}

static double ms_since(struct timespec a) {
  struct timespec b;
  clock_gettime(CLOCK_MONOTONIC, &b);
  return (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
}

static void test_basic_and_stack_balance(void) {
  kmk_lua *v = mk(0, 0);
  char out[256];
  int top = lua_gettop(kmk_lua_state(v));
  CHECK_EQ_INT(run(v, "return string.format('%d-%s', 1 + 2, ('X'):lower())", out, sizeof out), 0);
  CHECK_STR(out, "3-x");
  CHECK_EQ_INT(lua_gettop(kmk_lua_state(v)), top);
  CHECK_EQ_INT(run(v, "error('boom')", out, sizeof out), KMK_LUA_ERUN);
  CHECK(strncmp(err, "t.lua:1: boom", 13) == 0);
  CHECK(strstr(err, "stack traceback") != NULL);
  CHECK_EQ_INT(lua_gettop(kmk_lua_state(v)), top);
  CHECK_EQ_INT(run(v, "error({})", out, sizeof out), KMK_LUA_ERUN);
  CHECK(strncmp(err, "(error object is a table value)", 31) == 0);
  /* no script code runs in the error handler: __tostring of an error object is not called */
  CHECK_EQ_INT(run(v, "error(setmetatable({}, {__tostring = function() while true do end end}))",
                   out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "return 1 +", out, sizeof out), KMK_LUA_ESYNTAX);
  CHECK(strncmp(err, "t.lua:1:", 8) == 0);
  CHECK_EQ_INT(lua_gettop(kmk_lua_state(v)), top);
  kmk_lua_free(v);
}

static void test_absent_globals(void) {
  kmk_lua *v = mk(0, 0);
  char out[256];
  const char *absent[] = {"io", "os", "package", "debug", "require", "dofile", "loadfile",
                          "loadstring", "module", "newproxy", "setfenv", "getfenv", NULL};
  for (int i = 0; absent[i]; i++) {
    char src[128];
    snprintf(src, sizeof src, "return %s", absent[i]);
    CHECK_EQ_INT(run(v, src, out, sizeof out), KMK_LUA_ERUN);
    CHECK(strstr(err, "unknown global") != NULL);
    snprintf(src, sizeof src, "return rawget(_ENV, '%s') == nil", absent[i]);
    CHECK_EQ_INT(run(v, src, out, sizeof out), 0);
    CHECK_STR(out, "true");
  }
  CHECK_EQ_INT(run(v, "return string.dump == nil and tostring(_G == _ENV)", out, sizeof out), 0);
  CHECK_STR(out, "true");
  CHECK_EQ_INT(run(v, "return type(cjson.encode) .. type(kmk.lower) .. type(utf8.char)", out,
                   sizeof out), 0);
  CHECK_STR(out, "functionfunctionfunction");
  CHECK_EQ_INT(run(v, "return collectgarbage('collect')", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "return type(collectgarbage('count'))", out, sizeof out), 0);
  CHECK_STR(out, "number");
  /* unknown global read names the line */
  CHECK_EQ_INT(run(v, "local a = 1\nreturn undefined_thing", out, sizeof out), KMK_LUA_ERUN);
  CHECK(strncmp(err, "t.lua:2: unknown global 'undefined_thing'", 40) == 0);
  /* writing a global then reading it is fine */
  CHECK_EQ_INT(run(v, "x = 5 return tostring(x)", out, sizeof out), 0);
  CHECK_STR(out, "5");
  kmk_lua_free(v);
}

static void test_bytecode_refused(void) {
  kmk_lua *v = mk(0, 0);
  char out[512];
  /* string.dump is gone, from the library and from the string metatable */
  CHECK_EQ_INT(run(v, "return string.dump(function() end)", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "return tostring(getmetatable(''))", out, sizeof out), 0);
  CHECK_STR(out, "false");
  CHECK_EQ_INT(run(v, "return getmetatable('').__index.dump", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "return tostring(('').dump)", out, sizeof out), 0);
  CHECK_STR(out, "nil");
  /* load: binary mode refused, a binary chunk refused even as text, env is required */
  CHECK_EQ_INT(run(v, "return load('return 1', 'x', 'b', {})", out, sizeof out), KMK_LUA_ERUN);
  CHECK(strstr(err, "only text chunks") != NULL);
  CHECK_EQ_INT(run(v, "return load('return 1', 'x', 'bt', {})", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "local f, e = load('\\27Lua\\x54\\0garbage', 'x', 't', {}) return e", out,
                   sizeof out), 0);
  CHECK(strstr(out, "binary chunk") != NULL);
  CHECK_EQ_INT(run(v, "return load('return 1')", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "return load(function() return 'return 1' end, 'x', 't', {})", out,
                   sizeof out), KMK_LUA_ERUN);
  /* with an explicit env, text chunks work and see only that env */
  CHECK_EQ_INT(run(v, "local f = load('return y', 'c', 't', {y = 'ok'}) return f()", out,
                   sizeof out), 0);
  CHECK_STR(out, "ok");
  CHECK_EQ_INT(run(v, "local f = load('return io', 'c', 't', {}) return tostring(f())", out,
                   sizeof out), 0);
  CHECK_STR(out, "nil");
  kmk_lua_free(v);
}

static void test_env_tricks(void) {
  kmk_lua *v = mk(0, 0);
  char out[512];
  /* the env's metatable is protected */
  CHECK_EQ_INT(run(v, "return tostring(getmetatable(_ENV))", out, sizeof out), 0);
  CHECK_STR(out, "false");
  CHECK_EQ_INT(run(v, "setmetatable(_ENV, nil)", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "setmetatable(_G, {__index = function() return 1 end})", out, sizeof out),
               KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "setmetatable('', {})", out, sizeof out), KMK_LUA_ERUN);
  /* __gc finalizers are refused (they would run outside any budget) */
  CHECK_EQ_INT(run(v, "setmetatable({}, {__gc = function() while true do end end})", out,
                   sizeof out), KMK_LUA_ERUN);
  CHECK(strstr(err, "__gc") != NULL);
  /* a script editing its libraries does not affect the next script */
  CHECK_EQ_INT(run(v, "string.upper = nil; kmk.lower = nil; math.pi = 3; _G.print = nil", out,
                   sizeof out), 0);
  CHECK_EQ_INT(run(v, "return string.upper('a') .. kmk.lower('B') .. tostring(math.pi > 3.1)",
                   out, sizeof out), 0);
  CHECK_STR(out, "Abtrue");
  /* nothing reachable leads to the registry or the C side */
  CHECK_EQ_INT(run(v, "local n = 0 for k, val in pairs(_G) do if type(val) == 'userdata' then "
                      "n = n + 1 end end return tostring(n)",
                   out, sizeof out), 0);
  CHECK_STR(out, "0");
  CHECK_EQ_INT(run(v, "return use('nope')", out, sizeof out), KMK_LUA_ERUN);
  kmk_lua_free(v);
}

/* 20 ms of wall time in which this thread uses no CPU (as when the machine is busy elsewhere) */
static int l_sleepy(lua_State *L) {
  struct timespec d = {0, 20 * 1000 * 1000};
  nanosleep(&d, NULL);
  return 0;
}

/* The budget is CPU time: time the loop thread spends descheduled is not charged to the script,
   so a call that uses little CPU survives a machine that is busy elsewhere. */
static void test_budget_counts_cpu_not_wall(void) {
  kmk_lua *v = mk(0, 5);
  lua_State *L = kmk_lua_state(v);
  lua_getfield(L, LUA_REGISTRYINDEX, "kmk.proto");
  CHECK(lua_istable(L, -1));
  lua_pushcfunction(L, l_sleepy);
  lua_setfield(L, -2, "sleepy");
  lua_pop(L, 1);
  char out[64];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ_INT(run(v, "for i = 1, 3 do sleepy() for k = 1, 2000 do end end return 'done'", out,
                   sizeof out), 0);
  CHECK(ms_since(t0) >= 60); /* 60 ms of wall time against a 5 ms budget */
  CHECK_STR(out, "done");
  kmk_lua_free(v);
}

static void test_runaway_killed(void) {
  kmk_lua *v = mk(0, 5);
  char out[256];
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ_INT(run(v, "while true do end", out, sizeof out), KMK_LUA_EBUDGET);
  double el = ms_since(t0);
  CHECK(el < 1000);
  CHECK(strstr(err, "t.lua:1: call killed") != NULL);
  /* pcall in a loop cannot swallow the kill */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ_INT(run(v, "local n = 0 while true do pcall(function() while true do end end) "
                      "n = n + 1 end",
                   out, sizeof out), KMK_LUA_EBUDGET);
  CHECK(ms_since(t0) < 1000); /* killed at all (a loaded machine stretches the wall time) */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ_INT(run(v, "while true do xpcall(function() while true do end end, "
                      "function() while true do end end) end",
                   out, sizeof out), KMK_LUA_EBUDGET);
  CHECK(ms_since(t0) < 1000); /* killed at all (a loaded machine stretches the wall time) */
  clock_gettime(CLOCK_MONOTONIC, &t0);
  CHECK_EQ_INT(run(v, "local ok = pcall(error) while true do local ok2 = pcall(string.rep, 'x', 10) "
                      "end",
                   out, sizeof out), KMK_LUA_EBUDGET);
  CHECK(ms_since(t0) < 1000); /* killed at all (a loaded machine stretches the wall time) */
  /* the state is usable afterwards and a later call gets a fresh budget */
  CHECK_EQ_INT(run(v, "local s = 0 for i = 1, 1000 do s = s + i end return tostring(s)", out,
                   sizeof out), 0);
  CHECK_STR(out, "500500");
  kmk_lua_free(v);
}

static void test_memory_cap(void) {
  kmk_lua *v = mk(4u << 20, 200);
  char out[256];
  CHECK_EQ_INT(run(v, "local s = string.rep('x', 64 * 1024 * 1024) return #s", out, sizeof out),
               KMK_LUA_ENOMEM);
  CHECK(strstr(err, "memory") != NULL);
  CHECK(kmk_lua_mem_used(v) <= (4u << 20));
  CHECK_EQ_INT(run(v, "local t = {} for i = 1, 1e8 do t[i] = {i} end", out, sizeof out),
               KMK_LUA_ENOMEM);
  CHECK(kmk_lua_mem_used(v) <= (4u << 20));
  CHECK_EQ_INT(run(v, "local s = 'x' while true do s = s .. s end", out, sizeof out),
               KMK_LUA_ENOMEM);
  /* a script catching the memory error cannot grow past the cap either */
  int rc = run(v, "local t = {} while true do pcall(function() t[#t + 1] = string.rep('y', 4096) "
                  "end) end",
               out, sizeof out);
  CHECK(rc == KMK_LUA_ENOMEM || rc == KMK_LUA_EBUDGET);
  CHECK(kmk_lua_mem_used(v) <= (4u << 20));
  CHECK_EQ_INT(run(v, "return 'alive'", out, sizeof out), 0);
  CHECK_STR(out, "alive");
  kmk_lua_free(v);
}

static void test_deep_recursion(void) {
  kmk_lua *v = mk(0, 500);
  char out[256];
  int rc = run(v, "local function f(n) return 1 + f(n + 1) end return f(1)", out, sizeof out);
  CHECK(rc == KMK_LUA_ERUN || rc == KMK_LUA_ENOMEM);
  CHECK(strstr(err, "stack overflow") != NULL || rc == KMK_LUA_ENOMEM);
  rc = run(v, "local function f() return pcall(f) end return tostring(f())", out, sizeof out);
  CHECK(rc == 0 || rc == KMK_LUA_ERUN);
  rc = run(v, "local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x",
           out, sizeof out);
  CHECK(rc == KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "return 'alive'", out, sizeof out), 0);
  CHECK_STR(out, "alive");
  kmk_lua_free(v);
}

static void test_api(void) {
  kmk_lua_opts o = {0, 0, 1, 1700000000.0};
  kmk_lua *v = kmk_lua_new(&o);
  char out[512];
  kmk_lua_set_now(v, 12.5);
  CHECK_EQ_INT(run(v, "return tostring(kmk.now()) .. tostring(kmk.llm_available())", out,
                   sizeof out), 0);
  CHECK_STR(out, "12.5true");
  CHECK_EQ_INT(run(v, "return kmk.lower('Камеко ЁЛКА Hello ÀÉ ×')", out, sizeof out), 0);
  CHECK_STR(out, "камеко ёлка hello àé ×");
  CHECK_EQ_INT(run(v, "return kmk.json_encode({a = {1, 2}})", out, sizeof out), 0);
  CHECK_STR(out, "{\"a\":[1,2]}");
  CHECK_EQ_INT(run(v, "local t = kmk.json_decode('{\"x\": [true]}') return tostring(t.x[1])", out,
                   sizeof out), 0);
  CHECK_STR(out, "true");
  CHECK_EQ_INT(run(v, "local v, e = kmk.json_decode('{bad') return tostring(v) .. ' ' .. "
                      "tostring(e ~= nil)",
                   out, sizeof out), 0);
  CHECK_STR(out, "nil true");
  CHECK_EQ_INT(run(v, "local v, e = kmk.json_encode(function() end) return tostring(v == nil)",
                   out, sizeof out), 0);
  CHECK_STR(out, "true");
  CHECK_EQ_INT(run(v, "kmk.json_decode(5, 6, {})", out, sizeof out), 0); /* numbers coerce */
  CHECK_EQ_INT(run(v, "kmk.json_decode({})", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "kmk.log('loud', 'x')", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "kmk.log('debug', 'hello from a test')", out, sizeof out), 0);
  CHECK_EQ_INT(run(v, "kmk.lower(nil)", out, sizeof out), KMK_LUA_ERUN);
  CHECK_EQ_INT(run(v, "local d = kmk.date() return tostring(d.year >= 2023 and d.month >= 1)",
                   out, sizeof out), 0);
  CHECK_STR(out, "true");
  kmk_lua_free(v);
}

static void test_utf8_lower_c(void) {
  char out[64];
  CHECK_EQ_INT(kmk_lua_utf8_lower("ПРИВЕТ", strlen("ПРИВЕТ"), out, sizeof out), strlen("привет"));
  CHECK_STR(out, "привет");
  char small[4];
  CHECK_EQ_INT(kmk_lua_utf8_lower("ABCDEF", 6, small, sizeof small), 6);
  CHECK_STR(small, "abc");
  /* invalid UTF-8 is copied through */
  CHECK_EQ_INT(kmk_lua_utf8_lower("\xD0", 1, out, sizeof out), 1);
  CHECK(out[0] == '\xD0');
}

static void test_json_bridge(void) {
  kmk_lua *v = mk(0, 0);
  char out[512];
  CHECK_EQ_INT(run(v, "return { mod = true, echo = function(x) return x end, "
                      "cyc = function() local t = {} t.t = t return t end }",
                   out, sizeof out), 0);
  /* register as a module via a file-less path: use run_string + the invoke path through a file */
  const char *path = "/tmp/kmk_test_lua_module.lua";
  FILE *f = fopen(path, "w");
  fputs("return { echo = function(x, y) return {x = x, y = y, list = {1, 'two', 3.5}} end,\n"
        "  cyc = function() local t = {} t.t = t return t end,\n"
        "  fail = function() error('nope') end }\n",
        f);
  fclose(f);
  CHECK_EQ_INT(kmk_lua_load_module(v, path, "m", "m.lua", err, sizeof err), 0);
  cJSON *args = cJSON_Parse("[{\"a\": [1, 2, {\"b\": null}]}, \"s\"]");
  cJSON *res = NULL;
  CHECK_EQ_INT(kmk_lua_invoke(v, "m", "echo", args, &res, err, sizeof err), 0);
  char *s = cJSON_PrintUnformatted(res);
  CHECK(s && strstr(s, "\"y\":\"s\"") && strstr(s, "\"list\":[1,\"two\",3.5]") &&
        strstr(s, "\"a\":[1,2,{}]"));
  free(s);
  cJSON_Delete(res);
  CHECK_EQ_INT(kmk_lua_invoke(v, "m", "cyc", NULL, &res, err, sizeof err), KMK_LUA_ERUN);
  CHECK(strstr(err, "cycle") != NULL);
  CHECK_EQ_INT(kmk_lua_invoke(v, "m", "fail", NULL, &res, err, sizeof err), KMK_LUA_ERUN);
  CHECK(strncmp(err, "m.lua:3: nope", 13) == 0);
  CHECK_EQ_INT(kmk_lua_invoke(v, "m", "missing", NULL, &res, err, sizeof err), KMK_LUA_ERUN);
  CHECK_EQ_INT(kmk_lua_invoke(v, "nomod", "x", NULL, &res, err, sizeof err), KMK_LUA_ERUN);
  CHECK_EQ_INT(lua_gettop(kmk_lua_state(v)), 0);
  cJSON_Delete(args);
  remove(path);
  kmk_lua_free(v);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  RUN(test_basic_and_stack_balance);
  RUN(test_absent_globals);
  RUN(test_bytecode_refused);
  RUN(test_env_tricks);
  RUN(test_runaway_killed);
  RUN(test_budget_counts_cpu_not_wall);
  RUN(test_memory_cap);
  RUN(test_deep_recursion);
  RUN(test_api);
  RUN(test_utf8_lower_c);
  RUN(test_json_bridge);
  return check_done();
}
