/* test_brain_controls.c - the agent's controls without audio in: kmk_brain_forget on one brain,
 * then kmk_agent_forget, kmk_agent_set_muted and kmk_agent_set_cast on a whole agent driven by
 * text-chat lines and frame pulls (offline providers, flite voices), watching the event stream
 * through the event log's observer as a transport would.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "check.h"
#include "kameko/agent.h"
#include "kameko/brain.h"
#include "kameko/config.h"
#include "kameko/eventlog.h"

static char dir[256], echo_lua[300], keeper_lua[300], shy_lua[300], broken_lua[300];

/* Answers every line; remembers what each person said in kmk.memory and in its own state. */
static const char *KEEPER_LUA =
    "return {\n"
    "  name = \"Keeper\", languages = {\"en\"}, wake_words = {\"keeper\"},\n"
    "  voices = {en = {engine = \"flite\", voice = \"slt\"}},\n"
    "  state = {seen = {}},\n"
    "  rules = function(ctx)\n"
    "    if ctx.kind ~= \"say\" then return nil end\n"
    "    if ctx.memory then ctx.memory.last = ctx.text; ctx.memory.count = (ctx.memory.count or 0) + 1 end\n"
    "    ctx.state.seen[ctx.speaker] = true\n"
    "    return \"Noted, \" .. ctx.speaker .. \".\"\n"
    "  end,\n"
    "  on_forget = function(name, state)\n"
    "    local n = 0\n"
    "    for k in pairs(state.seen) do\n"
    "      if kmk.lower(k) == kmk.lower(name) then state.seen[k] = nil; n = n + 1 end\n"
    "    end\n"
    "    return n\n"
    "  end,\n"
    "}\n";
static const char *ECHO_LUA =
    "return {\n"
    "  name = \"Echo\", languages = {\"en\"}, wake_words = {\"echo\"},\n"
    "  voices = {en = {engine = \"flite\", voice = \"kal16\"}},\n"
    "  rules = function(ctx)\n"
    "    if ctx.kind == \"say\" then\n"
    "      return \"I heard you, \" .. ctx.speaker .. \". That was a line worth repeating twice.\"\n"
    "    end\n"
    "  end,\n"
    "}\n";
static const char *SHY_LUA =
    "return {\n"
    "  name = \"Shy\", languages = {\"en\"}, wake_words = {\"shy\"},\n"
    "  voices = {en = {engine = \"flite\", voice = \"slt\"}},\n"
    "  rules = function(ctx)\n"
    "    if ctx.kind == \"join\" then return \"Welcome, \" .. ctx.speaker .. \".\" end\n"
    "  end,\n"
    "}\n";
static const char *BROKEN_LUA =
    "return {\n"
    "  name = \"Broken\", languages = {\"en\"},\n"
    "  voices = 42,\n"
    "}\n";

static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  fclose(f);
  return 0;
}

static cJSON *say(const char *speaker, const char *text, double t) {
  cJSON *ev = kmk_event_new(t, "transcript", speaker);
  cJSON_AddStringToObject(ev, "text", text);
  return ev;
}

static void test_brain_forget(void) {
  char err[512];
  kmk_brain_opts bo = {.persona_path = keeper_lua, .llm_available = 0};
  kmk_brain *b = kmk_brain_new(&bo, err, sizeof err);
  CHECK(b != NULL);
  if (!b) return;
  const char *lines[][2] = {{"Alice", "my secret is purple"}, {"bob", "hello there"},
                            {"alice", "and my cat is called Tom"}};
  for (int i = 0; i < 3; i++) {
    cJSON *ev = say(lines[i][0], lines[i][1], i + 1.0);
    kmk_brain_action act;
    CHECK_EQ_INT(kmk_brain_event(b, ev, i + 1.0, &act), 0);
    CHECK_EQ_INT(act.kind, KMK_ACTION_DECISION);
    kmk_brain_action_clear(&act);
    cJSON_Delete(ev);
  }
  /* window: 2 lines of alice; memory: "Alice" {last, count} and "alice" {last, count} (memory
     keys are as spelled); on_forget: 2 ("Alice" and "alice" seen) */
  int n = kmk_brain_forget(b, "ALICE");
  CHECK_EQ_INT(n, 2 + 4 + 2);
  CHECK_EQ_INT(kmk_brain_forget(b, "ALICE"), 0); /* nothing left */
  CHECK_EQ_INT(kmk_brain_forget(b, "bob"), 1 + 2 + 1);
  CHECK(kmk_brain_forget(b, "") < 0);
  /* with the LLM on, the prompt built from the window no longer holds alice's words */
  kmk_brain_set_llm_available(b, 1);
  cJSON *ev = say("carol", "what do you remember", 10);
  kmk_brain_action act;
  CHECK_EQ_INT(kmk_brain_event(b, ev, 10, &act), 0);
  CHECK_EQ_INT(act.kind, KMK_ACTION_LLM);
  CHECK(act.llm_messages_json && strstr(act.llm_messages_json, "what do you remember"));
  CHECK(act.llm_messages_json && !strstr(act.llm_messages_json, "purple"));
  CHECK(act.llm_messages_json && !strstr(act.llm_messages_json, "Tom"));
  CHECK(act.llm_messages_json && !strstr(act.llm_messages_json, "hello there"));
  kmk_brain_action_clear(&act);
  cJSON_Delete(ev);
  /* survives a reload: memory erased from the store stays erased */
  CHECK_EQ_INT(kmk_brain_reload(b, err, sizeof err), 0);
  CHECK_EQ_INT(kmk_brain_forget(b, "alice"), 0);
  kmk_brain_free(b);
}

/* ---------------------------------------------------------------- a whole agent */

typedef struct {
  cJSON *ev[512];
  int n;
} seen;

static void observe(void *ud, const cJSON *ev) {
  seen *s = ud;
  if (s->n < 512) s->ev[s->n++] = cJSON_Duplicate(ev, 1);
}
static const char *str(const cJSON *ev, const char *k) {
  const cJSON *x = cJSON_GetObjectItem(ev, k);
  return cJSON_IsString(x) ? x->valuestring : "";
}
static int find(const seen *s, int from, const char *type, const char *field, const char *value) {
  for (int i = from < 0 ? 0 : from; i < s->n; i++)
    if (strcmp(str(s->ev[i], "type"), type) == 0 &&
        (!field || strcmp(str(s->ev[i], field), value) == 0))
      return i;
  return -1;
}

typedef struct {
  uv_loop_t loop;
  kmk_eventlog *log;
  kmk_config cfg;
  kmk_agent *a;
  seen s;
  double t;
} rig;

static double rig_now(void *ud) { return ((rig *)ud)->t; }

static int rig_open(rig *r, const char *const *paths, size_t n) {
  memset(r, 0, sizeof *r);
  char err[1024];
  uv_loop_init(&r->loop);
  kmk_config_load(&r->cfg, NULL, 0, err, sizeof err);
  free(r->cfg.groq_api_key); /* offline providers only */
  free(r->cfg.openrouter_api_key);
  free(r->cfg.llm_api_key);
  r->cfg.groq_api_key = r->cfg.openrouter_api_key = r->cfg.llm_api_key = NULL;
  setenv("EDGE_TTS", "0", 1);
  r->log = kmk_eventlog_open(NULL, err, sizeof err);
  kmk_eventlog_set_observer(r->log, observe, &r->s);
  kmk_agent_opts o = {.loop = &r->loop, .log = r->log, .config = &r->cfg, .persona_paths = paths,
                      .n_personas = n, .now = rig_now, .now_ud = r, .no_watch = 1};
  r->a = kmk_agent_new(&o, err, sizeof err);
  if (!r->a) fprintf(stderr, "agent: %s\n", err);
  return r->a ? 0 : -1;
}

static void rig_close(rig *r) {
  kmk_agent_free(r->a);
  uv_run(&r->loop, UV_RUN_NOWAIT);
  uv_run(&r->loop, UV_RUN_NOWAIT);
  kmk_eventlog_close(r->log);
  CHECK_EQ_INT(uv_loop_close(&r->loop), 0);
  for (int i = 0; i < r->s.n; i++) cJSON_Delete(r->s.ev[i]);
  kmk_config_free(&r->cfg);
}

/* Pulls frames (20 ms of timeline each) and runs the loop until `type` appears after `from`
   or a generous limit passes; returns its index or -1. */
static int pump_until(rig *r, int from, const char *type, const char *field, const char *value) {
  for (int i = 0; i < 3000; i++) {
    int k = find(&r->s, from, type, field, value);
    if (k >= 0) return k;
    kmk_agent_pull_frame(r->a);
    r->t += 0.02;
    uv_run(&r->loop, UV_RUN_NOWAIT);
    if (!kmk_agent_jobs_pending(r->a)) continue;
    usleep(2000);
  }
  return find(&r->s, from, type, field, value);
}

static void test_mute(void) {
  const char *paths[] = {echo_lua};
  rig r;
  if (rig_open(&r, paths, 1) != 0) {
    CHECK(0);
    return;
  }
  CHECK_EQ_INT(kmk_agent_chat(r.a, "alice", "good morning everyone"), 0);
  int st = pump_until(&r, 0, "audio_out_start", NULL, NULL);
  CHECK(st >= 0);
  kmk_agent_set_muted(r.a, 1);
  CHECK(kmk_agent_muted(r.a));
  int ps = find(&r.s, st, "playback_stop", "reason", "muted");
  CHECK(ps >= 0);
  CHECK(ps >= 0 && strcmp(str(r.s.ev[ps], "persona"), "Echo") == 0);
  int end = find(&r.s, st, "audio_out_end", NULL, NULL);
  CHECK(ps >= 0 && end > ps); /* playback_stop comes first */
  CHECK(kmk_agent_pull_frame(r.a) == NULL);
  CHECK(find(&r.s, 0, "mute", NULL, NULL) >= 0);
  /* decided and logged, not voiced */
  int mark = r.s.n;
  kmk_agent_chat(r.a, "bob", "anybody there");
  CHECK(find(&r.s, mark, "decision", "to", "bob") >= 0);
  CHECK(find(&r.s, mark, "reply_dropped", "reason", "muted") >= 0);
  pump_until(&r, mark, "audio_out_start", NULL, NULL);
  CHECK_EQ_INT(find(&r.s, mark, "audio_out_start", NULL, NULL), -1);
  /* unmuted: speaks again */
  kmk_agent_set_muted(r.a, 0);
  mark = r.s.n;
  kmk_agent_chat(r.a, "bob", "hello again");
  CHECK(pump_until(&r, mark, "audio_out_start", NULL, NULL) >= 0);
  CHECK(pump_until(&r, mark, "audio_out_end", "reason", "done") >= 0);
  rig_close(&r);
}

static void test_forget(void) {
  const char *paths[] = {keeper_lua, echo_lua};
  rig r;
  if (rig_open(&r, paths, 2) != 0) {
    CHECK(0);
    return;
  }
  kmk_agent_set_muted(r.a, 1); /* no audio needed here */
  kmk_agent_chat(r.a, "dave", "my password is hunter2");
  kmk_agent_chat(r.a, "erin", "nice weather");
  int n = kmk_agent_forget(r.a, "dave");
  /* Keeper: 1 window line + memory {last, count} + on_forget 1; Echo: 1 window line */
  CHECK_EQ_INT(n, 1 + 2 + 1 + 1);
  int f = find(&r.s, 0, "forget", "speaker", "dave");
  CHECK(f >= 0);
  if (f >= 0) {
    char *line = cJSON_PrintUnformatted(r.s.ev[f]);
    CHECK(line && !strstr(line, "hunter2"));
    free(line);
    CHECK_EQ_INT(cJSON_GetObjectItem(r.s.ev[f], "erased")->valueint, 5);
  }
  CHECK_EQ_INT(kmk_agent_forget(r.a, "dave"), 0);
  CHECK(kmk_agent_forget(r.a, "") < 0);
  rig_close(&r);
}

static void test_cast(void) {
  const char *paths[] = {echo_lua};
  rig r;
  if (rig_open(&r, paths, 1) != 0) {
    CHECK(0);
    return;
  }
  kmk_speaker *sp = kmk_agent_speaker_join(r.a, "alice", 0);
  CHECK(sp != NULL);
  /* a broken file: nothing changes, err names the file */
  char err[1024] = "";
  const char *bad[] = {echo_lua, shy_lua, broken_lua};
  CHECK_EQ_INT(kmk_agent_set_cast(r.a, bad, 3, err, sizeof err), -1);
  CHECK(strstr(err, "broken.lua") != NULL);
  CHECK_EQ_INT(find(&r.s, 0, "cast", NULL, NULL), -1);
  const char *dup[] = {echo_lua, echo_lua};
  CHECK_EQ_INT(kmk_agent_set_cast(r.a, dup, 2, err, sizeof err), -1);
  /* Echo keeps its window; Shy joins and is told alice is here (without greeting aloud) */
  int mark = r.s.n;
  const char *two[] = {echo_lua, shy_lua};
  CHECK_EQ_INT(kmk_agent_set_cast(r.a, two, 2, err, sizeof err), 0);
  int c = find(&r.s, mark, "cast", NULL, NULL);
  CHECK(c >= 0);
  if (c >= 0) {
    cJSON *added = cJSON_GetObjectItem(r.s.ev[c], "added");
    CHECK_EQ_INT(cJSON_GetArraySize(added), 1);
    CHECK(strcmp(cJSON_GetArrayItem(added, 0)->valuestring, "Shy") == 0);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(r.s.ev[c], "personas")), 2);
  }
  CHECK_EQ_INT(find(&r.s, mark, "decision", "persona", "Shy"), -1);
  /* a newcomer greets people joining after it */
  mark = r.s.n;
  kmk_speaker *sp2 = kmk_agent_speaker_join(r.a, "bob", r.t);
  CHECK(find(&r.s, mark, "decision", "persona", "Shy") >= 0);
  pump_until(&r, mark, "audio_out_end", NULL, NULL);
  /* Echo speaking when it leaves the cast: its voice stops at once */
  mark = r.s.n;
  kmk_agent_chat(r.a, "alice", "tell me something long");
  int st = pump_until(&r, mark, "audio_out_start", "speaker", "Echo");
  CHECK(st >= 0);
  const char *one[] = {shy_lua};
  CHECK_EQ_INT(kmk_agent_set_cast(r.a, one, 1, err, sizeof err), 0);
  int ps = find(&r.s, mark, "playback_stop", "reason", "cast");
  CHECK(ps >= 0);
  CHECK(ps >= 0 && strcmp(str(r.s.ev[ps], "persona"), "Echo") == 0);
  CHECK(kmk_agent_pull_frame(r.a) == NULL);
  c = find(&r.s, mark, "cast", NULL, NULL);
  CHECK(c >= 0 && cJSON_GetArraySize(cJSON_GetObjectItem(r.s.ev[c], "removed")) == 1);
  /* the remaining persona works */
  mark = r.s.n;
  kmk_speaker *sp3 = kmk_agent_speaker_join(r.a, "carol", r.t);
  CHECK(find(&r.s, mark, "decision", "persona", "Shy") >= 0);
  CHECK(pump_until(&r, mark, "audio_out_end", "reason", "done") >= 0);
  kmk_agent_speaker_leave(r.a, sp);
  kmk_agent_speaker_leave(r.a, sp2);
  kmk_agent_speaker_leave(r.a, sp3);
  rig_close(&r);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/kmk_controls_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(echo_lua, sizeof echo_lua, "%s/echo.lua", dir);
  snprintf(keeper_lua, sizeof keeper_lua, "%s/keeper.lua", dir);
  snprintf(shy_lua, sizeof shy_lua, "%s/shy.lua", dir);
  snprintf(broken_lua, sizeof broken_lua, "%s/broken.lua", dir);
  if (write_file(echo_lua, ECHO_LUA) || write_file(keeper_lua, KEEPER_LUA) || write_file(shy_lua, SHY_LUA) ||
      write_file(broken_lua, BROKEN_LUA))
    return 1;
  RUN(test_brain_forget);
  RUN(test_mute);
  RUN(test_forget);
  RUN(test_cast);
  unlink(echo_lua);
  unlink(keeper_lua);
  unlink(shy_lua);
  unlink(broken_lua);
  rmdir(dir);
  return check_done();
}
