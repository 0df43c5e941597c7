/* test_brain_state.c - the conversation store and hot reload as a transaction, through the real
 * brain: per-user memory, persona state, mutes, cooldowns and a switched language survive a
 * reload; broken edits (syntax error, runtime error in a hook caught by the dry run, missing
 * fields, wrong types) keep the running persona and say why with file:line; a dry run leaves no
 * trace; kmk.say/kmk.silent build decisions and raise on bad arguments; tick hooks. */
#include "check.h"

#include <stdlib.h>
#include <unistd.h>

#include "kameko/brain.h"
#include "kameko/log.h"

static char err[2048], path[256];

static void write_persona(const char *src) {
  FILE *f = fopen(path, "w");
  fputs(src, f);
  fclose(f);
}

static int feed(kmk_brain *b, double t, const char *type, const char *speaker, const char *text,
                kmk_brain_action *a) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddNumberToObject(e, "t", t);
  cJSON_AddStringToObject(e, "type", type);
  if (speaker) cJSON_AddStringToObject(e, "speaker", speaker);
  if (text) cJSON_AddStringToObject(e, "text", text);
  int rc = kmk_brain_event(b, e, t, a);
  cJSON_Delete(e);
  return rc < 0 ? rc : (int)a->kind;
}

/* Says `text` as `who` at t and returns the response ("" for silence, "ERR" for a failure). */
static const char *say(kmk_brain *b, double t, const char *who, const char *text) {
  static char out[512];
  kmk_brain_action a;
  int rc = feed(b, t, "transcript", who, text, &a);
  snprintf(out, sizeof out, "%s",
           rc < 0 ? "ERR" : rc == KMK_ACTION_DECISION ? a.decision.response : "");
  kmk_brain_action_clear(&a);
  return out;
}

/* A persona counting per user (memory) and in total (state), muting "spam", cooling down. */
#define V1                                                                                   \
  "return {\n"                                                                               \
  "  name = 'Rina', languages = {'en', 'ru'},\n"                                             \
  "  state = {total = 0, tag = 'v1'},\n"                                                     \
  "  policy = {cooldown = 5},\n"                                                             \
  "  rules = function(ctx)\n"                                                                \
  "    local m = ctx.memory\n"                                                               \
  "    m.count = (m.count or 0) + 1\n"                                                       \
  "    ctx.state.total = ctx.state.total + 1\n"                                              \
  "    if ctx.has('mute me') then return {should_speak = false, mute = ctx.speaker} end\n"   \
  "    if ctx.has('russian') then return {should_speak = true, response = 'da',\n"          \
  "                                       language = 'ru'} end\n"                            \
  "    return kmk.say(ctx.state.tag .. ' ' .. m.count .. '/' .. ctx.state.total)\n"          \
  "  end,\n"                                                                                 \
  "}\n"

static void test_store_survives_reload(void) {
  write_persona(V1);
  kmk_brain_opts o = {NULL, path, 0, 0, 200.0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  CHECK(b != NULL);
  if (!b) return;
  CHECK_STR(say(b, 1, "al", "rina hello"), "v1 1/1");     /* addressed: cooldown does not apply */
  CHECK_STR(say(b, 2, "bo", "nice weather"), "");         /* not addressed, cooling down (5 s) */
  CHECK_STR(say(b, 8, "bo", "nice weather"), "v1 2/3");   /* cooldown over */
  CHECK_STR(say(b, 9, "spam", "mute me"), "");
  CHECK_STR(say(b, 20, "spam", "rina hello"), "");        /* muted: never answered */
  /* a reload with a different reply: memory, state, mutes, cooldown come along; the new file's
     seed does not reset the running state (tag stays 'v1'; 'extra' is new and seeded) */
  write_persona("return {\n  name = 'Rina', languages = {'en'},\n  state = {total = 100, tag = 'v2', extra = 7},\n"
                "  rules = function(ctx)\n    local m = ctx.memory\n    m.count = (m.count or 0) + 1\n"
                "    ctx.state.total = ctx.state.total + 1\n"
                "    return 'new ' .. ctx.state.tag .. ' ' .. m.count .. '/' .. ctx.state.total .. ' ' .. ctx.state.extra\n"
                "  end,\n}\n");
  CHECK_EQ_INT(kmk_brain_reload(b, err, sizeof err), 0);
  /* the dry run (rules on the last line) left no trace: al's count is 2 now, total 4 (spam's 2) */
  CHECK_STR(say(b, 30, "al", "rina again"), "new v1 2/5 7");
  CHECK_STR(say(b, 31, "spam", "rina hello"), "");        /* still muted */
  kmk_brain_free(b);
}

static void test_broken_edits_keep_running(void) {
  write_persona(V1);
  kmk_brain_opts o = {NULL, path, 0, 0, 200.0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  CHECK(b != NULL);
  if (!b) return;
  CHECK_STR(say(b, 1, "al", "rina hello"), "v1 1/1");
  struct {
    const char *src, *want;
  } cases[] = {
      {"return {\n  name = 'Rina',\n  languages = {'en'\n", ":4: '}' expected"},           /* syntax */
      {"return {\n  name = 'Rina', languages = {'en'},\n  rules = function(ctx)\n"
       "    return ctx.nothing.here\n  end,\n}\n", ":4: attempt to index"},               /* hook */
      {"return {\n  languages = {'en'},\n}\n", ":1: 'name' is missing"},                    /* missing */
      {"return {\n  name = 'Rina',\n  languages = 'en',\n}\n", ":3: 'languages' must be"},  /* type */
      {"return {\n  name = 'Rina', languages = {'en'},\n  policy = {cooldown = 'x'},\n}\n",
       ":3: policy.cooldown must be"},
      {"return {\n  name = 'Rina', languages = {'en'},\n  on_tick = 5,\n}\n", ":3: 'on_tick' must be"},
      {"return {\n  name = 'Rina', languages = {'en'},\n  rules = function(ctx) return kmk.say(42 > 1) end,\n}\n",
       ":3: bad argument #1 to 'say'"},
      {"return {\n  name = 'Rina', languages = {'en'},\n  on_tick = function(ctx) error('tick broke') end,\n}\n",
       ":3: tick broke"},
      {"return {\n  name = 'Rina', languages = {'en'},\n  rules = function(ctx) while true do end end,\n}\n",
       "budget"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_persona(cases[i].src);
    int rc = kmk_brain_reload(b, err, sizeof err);
    CHECK(rc < 0);
    if (!strstr(err, cases[i].want) || (strncmp(err, path, strlen(path)) != 0 && i < 8))
      fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err, cases[i].want);
    CHECK(strstr(err, cases[i].want) != NULL);
    if (i < 8) CHECK(strncmp(err, path, strlen(path)) == 0); /* file:line first */
    /* the old persona still answers, and its memory moved on */
    char want[64];
    snprintf(want, sizeof want, "v1 %zu/%zu", i + 2, i + 2);
    CHECK_STR(say(b, 10 + (double)i * 10, "al", "rina hello"), want);
  }
  kmk_brain_free(b);
}

static void test_ticks_and_say(void) {
  write_persona("return {\n  name = 'Tock', languages = {'en'},\n  state = {n = 0},\n"
                "  on_tick = function(ctx)\n    ctx.state.n = ctx.state.n + 1\n"
                "    if ctx.state.n % 3 == 0 then return kmk.say('tick ' .. ctx.state.n, {voice = 'kal16', rate = 200, yield = true}) end\n"
                "  end,\n"
                "  on_event = function(ev, ctx)\n"
                "    if ev.type == 'speech_end' and (ev.duration_s or 0) > 10 then return 'too long, ' .. ev.speaker end\n"
                "  end,\n}\n");
  kmk_brain_opts o = {NULL, path, 0, 0, 200.0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  CHECK(b != NULL);
  if (!b) return;
  CHECK(kmk_brain_persona(b)->has_on_tick);
  kmk_brain_action a;
  int spoke = 0;
  for (int t = 1; t <= 6; t++) {
    CHECK(feed(b, t, "tick", NULL, NULL, &a) >= 0);
    if (a.kind == KMK_ACTION_DECISION && a.decision.should_speak) {
      spoke++;
      CHECK_STR(a.decision.voice, "kal16");
      CHECK_EQ_INT(a.decision.rate, 200);
      CHECK(a.decision.yield);
    }
    kmk_brain_action_clear(&a);
  }
  CHECK_EQ_INT(spoke, 2);
  cJSON *e = cJSON_Parse("{\"t\":9,\"type\":\"speech_end\",\"speaker\":\"al\",\"duration_s\":12.5}");
  CHECK_EQ_INT(kmk_brain_event(b, e, 9, &a), 0);
  CHECK(a.kind == KMK_ACTION_DECISION);
  if (a.kind == KMK_ACTION_DECISION) CHECK_STR(a.decision.response, "too long, al");
  kmk_brain_action_clear(&a);
  cJSON_Delete(e);
  kmk_brain_free(b);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  snprintf(path, sizeof path, "/tmp/kmk_test_state_%d.lua", (int)getpid());
  RUN(test_store_survives_reload);
  RUN(test_broken_edits_keep_running);
  RUN(test_ticks_and_say);
  remove(path);
  return check_done();
}
