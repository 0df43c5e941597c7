/* test_brain.c - the brain end to end with the real scripts and personas/kameko.lua: offline
 * rules in both languages, silence between people, greetings, the LLM request/answer path, the
 * window bound, and broken persona files reported as file:line. */
#include "check.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kameko/brain.h"
#include "kameko/log.h"

#define PERSONA KMK_SOURCE_DIR "/personas/kameko.lua"

static char err[2048];

/* A generous budget: a loaded CI machine may preempt us for milliseconds; the budget itself is
 * tested with a runaway script below and in test_lua_sandbox. */
static kmk_brain *mk(int llm) {
  kmk_brain_opts o = {NULL, PERSONA, llm, 0, 200.0, 0};
  /* 2026-11-24 14:05:00 UTC at t = 0 */
  o.wall_epoch = 1795529100.0;
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  if (!b) fprintf(stderr, "kmk_brain_new: %s\n", err);
  return b;
}

static cJSON *ev(double t, const char *type, const char *speaker, const char *text) {
  cJSON *e = cJSON_CreateObject();
  cJSON_AddNumberToObject(e, "t", t);
  cJSON_AddStringToObject(e, "type", type);
  cJSON_AddStringToObject(e, "speaker", speaker);
  if (text) cJSON_AddStringToObject(e, "text", text);
  return e;
}

/* Feeds one event; returns the action kind (or the negative error). */
static int feed(kmk_brain *b, double t, const char *type, const char *speaker, const char *text,
                kmk_brain_action *a) {
  cJSON *e = ev(t, type, speaker, text);
  int rc = kmk_brain_event(b, e, t, a);
  cJSON_Delete(e);
  return rc < 0 ? rc : (int)a->kind;
}

static void test_persona_info(void) {
  kmk_brain *b = mk(0);
  CHECK(b != NULL);
  if (!b) return;
  const kmk_persona_info *p = kmk_brain_persona(b);
  CHECK_STR(p->name, "Kameko");
  CHECK_EQ_INT(p->n_languages, 2);
  CHECK_STR(p->languages[0], "en");
  CHECK_STR(p->languages[1], "ru");
  CHECK_EQ_INT(p->context_size, 15);
  CHECK_EQ_INT(p->max_reply_chars, 300);
  int has_ru_wake = 0;
  for (int i = 0; i < p->n_wake_words; i++)
    if (strcmp(p->wake_words[i], "камеко") == 0) has_ru_wake = 1;
  CHECK(has_ru_wake);
  const kmk_voice_info *ru = kmk_persona_voice(p, "ru"), *en = kmk_persona_voice(p, "en");
  CHECK(ru && en);
  if (ru && en) {
    CHECK_STR(ru->engine, "espeak");
    CHECK_STR(ru->voice, "ru");
    CHECK_STR(en->engine, "flite");
    CHECK_STR(en->voice, "slt");
    CHECK_EQ_INT(en->rate, 170);
    CHECK(kmk_persona_voice(p, "de") == en); /* unknown language: the default language's voice */
  }
  kmk_brain_free(b);
}

static void test_addressed_en(void) {
  kmk_brain *b = mk(0);
  if (!b) return;
  kmk_brain_action a;
  CHECK_EQ_INT(feed(b, 1.0, "transcript", "alice", "hey kameko how are you", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak);
  CHECK_STR(a.decision.lang, "en");
  CHECK_STR(a.decision.addressed, "alice");
  CHECK(strstr(a.decision.response, "good") || strstr(a.decision.response, "great") ||
        strstr(a.decision.response, "How are you"));
  kmk_brain_action_clear(&a);

  CHECK_EQ_INT(feed(b, 3.0, "transcript", "alice", "kameko what is your name", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "Kameko"));
  kmk_brain_action_clear(&a);

  CHECK_EQ_INT(feed(b, 5.0, "transcript", "bob", "kameko what time is it", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, ":05"));
  kmk_brain_action_clear(&a);

  CHECK_EQ_INT(feed(b, 7.0, "transcript", "bob", "kameko what day is it", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "November 24"));
  kmk_brain_action_clear(&a);

  CHECK_EQ_INT(feed(b, 9.0, "transcript", "bob", "kameko what is the weather in moscow", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "weather in moscow"));
  kmk_brain_action_clear(&a);

  CHECK_EQ_INT(feed(b, 11.0, "chat", "carol", "Kameko, what can you do?", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "name"));
  kmk_brain_action_clear(&a);
  kmk_brain_free(b);
}

static void test_addressed_ru(void) {
  kmk_brain *b = mk(0);
  if (!b) return;
  kmk_brain_action a;
  CHECK_EQ_INT(feed(b, 1.0, "transcript", "Дима", "Камеко, привет! Как дела?", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak);
  CHECK_STR(a.decision.lang, "ru");
  CHECK(kmk_decision_has_cyrillic(a.decision.response));
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(feed(b, 3.0, "transcript", "Дима", "КАМЕКО как тебя зовут", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "Камеко"));
  CHECK_STR(a.decision.lang, "ru");
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(feed(b, 5.0, "transcript", "Дима", "камеко который час", &a),
               KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "Сейчас"));
  kmk_brain_action_clear(&a);
  kmk_brain_free(b);
}

static void test_people_chatting_silent(void) {
  kmk_brain *b = mk(0);
  if (!b) return;
  kmk_brain_action a;
  const char *lines[] = {"did you watch the game yesterday", "yeah it was great",
                         "how are you doing", "привет как дела", "see you tomorrow", NULL};
  for (int i = 0; lines[i]; i++) {
    int k = feed(b, 1.0 + i, "transcript", i % 2 ? "bob" : "alice", lines[i], &a);
    CHECK(k == KMK_ACTION_DECISION || k == KMK_ACTION_NONE);
    CHECK(!a.decision.should_speak);
    kmk_brain_action_clear(&a);
  }
  /* her own speech is never answered */
  CHECK_EQ_INT(feed(b, 10.0, "bot_said", "Kameko", "kameko hello", &a), KMK_ACTION_NONE);
  /* events that are not conversation are ignored */
  CHECK_EQ_INT(feed(b, 11.0, "vad_start", "alice", NULL, &a), KMK_ACTION_NONE);
  kmk_brain_free(b);
}

static void test_join_greeting(void) {
  kmk_brain *b = mk(0);
  if (!b) return;
  kmk_brain_action a;
  CHECK_EQ_INT(feed(b, 1.0, "transcript", "alice", "hello everyone", &a), KMK_ACTION_DECISION);
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(feed(b, 2.0, "join", "Bob", NULL, &a), KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak && strstr(a.decision.response, "Bob"));
  CHECK_STR(a.decision.lang, "en"); /* the conversation was in English */
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(feed(b, 3.0, "leave", "Bob", NULL, &a), KMK_ACTION_NONE);
  /* she does not greet herself */
  CHECK_EQ_INT(feed(b, 4.0, "join", "Kameko", NULL, &a), KMK_ACTION_NONE);
  kmk_brain_free(b);
}

static void test_llm_flow(void) {
  kmk_brain *b = mk(1);
  if (!b) return;
  kmk_brain_action a;
  CHECK_EQ_INT(feed(b, 1.0, "join", "alice", NULL, &a), KMK_ACTION_LLM);
  uint64_t first = a.llm_request_id;
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(feed(b, 2.0, "transcript", "alice", "kameko tell me a joke", &a), KMK_ACTION_LLM);
  uint64_t id = a.llm_request_id;
  CHECK(id > first);
  cJSON *m = cJSON_Parse(a.llm_messages_json);
  CHECK(cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2);
  const cJSON *sys = cJSON_GetArrayItem(m, 0), *usr = cJSON_GetArrayItem(m, 1);
  CHECK_STR(cJSON_GetObjectItem(sys, "role")->valuestring, "system");
  CHECK(strstr(cJSON_GetObjectItem(sys, "content")->valuestring, "You are Kameko"));
  CHECK(strstr(cJSON_GetObjectItem(sys, "content")->valuestring, "should_speak"));
  const char *u = cJSON_GetObjectItem(usr, "content")->valuestring;
  CHECK(strstr(u, "(alice joined the voice chat)") && strstr(u, "alice: kameko tell me a joke"));
  cJSON_Delete(m);
  kmk_brain_action_clear(&a);

  /* the older request is stale now */
  CHECK_EQ_INT(kmk_brain_llm_result(b, first, "{\"should_speak\": true, \"response\": \"hi\"}",
                                    NULL, &a), 0);
  CHECK_EQ_INT(a.kind, KMK_ACTION_NONE);
  CHECK_EQ_INT(kmk_brain_llm_result(b, 999, "{}", NULL, &a), KMK_BRAIN_ENOENT);
  CHECK_EQ_INT(kmk_brain_llm_result(b, id,
                                    "Sure!\n```json\n{\"thought\": \"a joke\", \"should_speak\": "
                                    "true, \"response\": \"Why did the cat sit on the laptop?\",}\n```",
                                    NULL, &a), 0);
  CHECK_EQ_INT(a.kind, KMK_ACTION_DECISION);
  CHECK(a.decision.should_speak);
  CHECK_STR(a.decision.response, "Why did the cat sit on the laptop?");
  CHECK_STR(a.decision.addressed, "alice");
  CHECK_STR(a.decision.lang, "en");
  kmk_brain_action_clear(&a);

  /* garbage -> silent with a clear thought */
  CHECK_EQ_INT(feed(b, 3.0, "transcript", "bob", "kameko hi", &a), KMK_ACTION_LLM);
  id = a.llm_request_id;
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(kmk_brain_llm_result(b, id, "I think I should say hello!", NULL, &a), 0);
  CHECK_EQ_INT(a.kind, KMK_ACTION_DECISION);
  CHECK(!a.decision.should_speak);
  CHECK(strstr(a.decision.thought, "no JSON") != NULL);
  kmk_brain_action_clear(&a);

  /* LLM failure -> the offline rules answer */
  CHECK_EQ_INT(feed(b, 4.0, "transcript", "Дима", "камеко привет", &a), KMK_ACTION_LLM);
  id = a.llm_request_id;
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(kmk_brain_llm_result(b, id, NULL, "HTTP 503", &a), 0);
  CHECK(a.decision.should_speak && kmk_decision_has_cyrillic(a.decision.response));
  CHECK_STR(a.decision.lang, "ru");
  CHECK(strstr(a.decision.thought, "HTTP 503") != NULL);
  kmk_brain_action_clear(&a);

  /* switching the LLM off at run time */
  kmk_brain_set_llm_available(b, 0);
  CHECK_EQ_INT(feed(b, 5.0, "transcript", "bob", "kameko thanks", &a), KMK_ACTION_DECISION);
  kmk_brain_action_clear(&a);
  kmk_brain_free(b);
}

static void test_window_keeps_15(void) {
  kmk_brain *b = mk(1);
  if (!b) return;
  kmk_brain_action a;
  char line[64];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 1; i <= 40; i++) {
    snprintf(line, sizeof line, "message number %d", i);
    CHECK_EQ_INT(feed(b, i, "transcript", "alice", line, &a), KMK_ACTION_LLM);
    if (i < 40) kmk_brain_action_clear(&a);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("window: %.1f us per event with a full window (LLM request built)\n",
         ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / 40);
  cJSON *m = cJSON_Parse(a.llm_messages_json);
  const char *u = cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "content")->valuestring;
  int lines = 0;
  for (const char *p = u; (p = strstr(p, "alice: message number")); p++) lines++;
  CHECK_EQ_INT(lines, 15);
  CHECK(strstr(u, "message number 26\n") && strstr(u, "message number 40"));
  CHECK(!strstr(u, "message number 25\n"));
  cJSON_Delete(m);
  kmk_brain_action_clear(&a);
  kmk_brain_free(b);
}

static const char *write_persona(const char *name, const char *src) {
  static char path[256];
  snprintf(path, sizeof path, "/tmp/kmk_test_%d_%s.lua", (int)getpid(), name);
  FILE *f = fopen(path, "w");
  fputs(src, f);
  fclose(f);
  return path;
}

static int broken(const char *name, const char *src, const char *want_line_and_msg) {
  const char *path = write_persona(name, src);
  kmk_brain_opts o = {NULL, path, 0, 0, 0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  int ok = b == NULL && strncmp(err, path, strlen(path)) == 0 &&
           strstr(err + strlen(path), want_line_and_msg) == err + strlen(path);
  if (!ok) fprintf(stderr, "  %s: got \"%s\"\n", name, err);
  kmk_brain_free(b);
  remove(path);
  return ok;
}

static void test_broken_personas(void) {
  CHECK(broken("syntax", "return {\n  name = \"X\",\n  languages = {\"en\"\n}\n", ":5: '}' expected"));
  CHECK(broken("noname", "-- no name\nreturn {\n  languages = {\"en\"},\n}\n",
               ":2: 'name' is missing"));
  CHECK(broken("badlang", "return {\n  name = \"X\",\n  languages = \"en\",\n}\n",
               ":3: 'languages' must be"));
  CHECK(broken("badctx", "return {\n  name = \"X\",\n  languages = {\"en\"},\n"
                         "  context_size = \"many\",\n}\n",
               ":4: 'context_size' must be"));
  CHECK(broken("badvoice", "return {\n  name = \"X\",\n  languages = {\"en\"},\n"
                           "  voices = { en = { engine = \"sam\", voice = \"x\" } },\n}\n",
               ":4: voices.en.engine"));
  CHECK(broken("badrules", "return {\n  name = \"X\",\n  languages = {\"en\"},\n"
                           "  rules = 5,\n}\n",
               ":4: 'rules' must be"));
  CHECK(broken("notable", "local x = 1\nreturn 42\n", ":2: a persona file must return a table"));
  CHECK(broken("runtime", "local t = nil\nreturn { name = t.x }\n", ":2: attempt to index"));
  CHECK(broken("unknownglobal", "return { name = NAME }\n", ":1: unknown global 'NAME'"));
  /* missing file */
  kmk_brain_opts o = {NULL, "/nonexistent/persona.lua", 0, 0, 0, 0};
  CHECK(kmk_brain_new(&o, err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent/persona.lua") != NULL);
  /* a rules function that raises: the event fails cleanly, the brain stays usable */
  const char *path = write_persona("raising", "return { name = \"X\", languages = {\"en\"},\n"
                                              "  rules = function(ctx) error('oops') end }\n");
  kmk_brain_opts o2 = {NULL, path, 0, 0, 0, 0};
  kmk_brain *b = kmk_brain_new(&o2, err, sizeof err);
  CHECK(b != NULL);
  if (b) {
    kmk_brain_action a;
    CHECK_EQ_INT(feed(b, 1, "transcript", "a", "x hello", &a), KMK_BRAIN_ESCRIPT);
    CHECK_EQ_INT(feed(b, 2, "leave", "a", NULL, &a), KMK_ACTION_NONE);
    kmk_brain_free(b);
  }
  remove(path);
  /* a runaway rules function is killed by the budget */
  path = write_persona("runaway", "return { name = \"X\", languages = {\"en\"},\n"
                                  "  rules = function(ctx) while true do end end }\n");
  kmk_brain_opts o3 = {NULL, path, 0, 0, 5.0, 0};
  b = kmk_brain_new(&o3, err, sizeof err);
  CHECK(b != NULL);
  if (b) {
    kmk_brain_action a;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(feed(b, 1, "transcript", "a", "x hello", &a), KMK_BRAIN_ESCRIPT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6 < 200);
    kmk_brain_free(b);
  }
  remove(path);
}

static void test_reload_transaction(void) {
  const char *v1 = "return { name = \"Rina\", languages = {\"en\"}, context_size = 15,\n"
                   "  rules = function(ctx) if ctx.addressed then return 'v1' end end }\n";
  const char *v2 = "return { name = \"Rina\", languages = {\"en\"}, context_size = 15,\n"
                   "  rules = function(ctx) if ctx.addressed then return 'v2 ' .. #ctx.window end end }\n";
  const char *path = write_persona("reload", v1);
  kmk_brain_opts o = {NULL, path, 0, 0, 200.0, 0};
  kmk_brain *b = kmk_brain_new(&o, err, sizeof err);
  CHECK(b != NULL);
  if (!b) return;
  kmk_brain_action a;
  CHECK_EQ_INT(feed(b, 1, "transcript", "al", "rina hi", &a), KMK_ACTION_DECISION);
  CHECK_STR(a.decision.response, "v1");
  kmk_brain_action_clear(&a);
  CHECK_EQ_INT(feed(b, 2, "join", "bo", NULL, &a), KMK_ACTION_DECISION);
  kmk_brain_action_clear(&a);
  /* a broken edit: the reload fails with file:line and the old persona keeps running */
  write_persona("reload", "return { name = \"Rina\",\n  languages = 5 }\n");
  CHECK(kmk_brain_reload(b, err, sizeof err) < 0);
  CHECK(strstr(err, ":2: 'languages' must be") != NULL);
  CHECK_EQ_INT(feed(b, 3, "transcript", "al", "rina hi", &a), KMK_ACTION_DECISION);
  CHECK_STR(a.decision.response, "v1");
  kmk_brain_action_clear(&a);
  write_persona("reload", "return {\n");
  CHECK(kmk_brain_reload(b, err, sizeof err) < 0);
  /* a good edit: swapped, and the window (3 entries so far) came along */
  write_persona("reload", v2);
  CHECK_EQ_INT(kmk_brain_reload(b, err, sizeof err), 0);
  CHECK_EQ_INT(feed(b, 4, "transcript", "al", "rina hi", &a), KMK_ACTION_DECISION);
  CHECK_STR(a.decision.response, "v2 4");
  kmk_brain_action_clear(&a);
  CHECK_STR(kmk_brain_persona(b)->name, "Rina");
  kmk_brain_free(b);
  remove(path);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  setenv("TZ", "UTC", 1);
  tzset();
  RUN(test_persona_info);
  RUN(test_addressed_en);
  RUN(test_addressed_ru);
  RUN(test_people_chatting_silent);
  RUN(test_join_greeting);
  RUN(test_llm_flow);
  RUN(test_window_keeps_15);
  RUN(test_broken_personas);
  RUN(test_reload_transaction);
  return check_done();
}
