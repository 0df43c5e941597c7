/* test_decision.c - decision validation and the raw-LLM-text parser on many shapes. */
#include "check.h"

#include <stdlib.h>

#include "kameko/brain.h"

static char err[256];

/* Parses text; returns rc; d is cleared by the caller. */
static int parse(const char *text, kmk_decision *d) {
  err[0] = '\0';
  return kmk_decision_parse_llm(text, strlen(text), 0, NULL, d, err, sizeof err);
}

static int validate(const char *json, size_t max, kmk_decision *d) {
  cJSON *j = cJSON_Parse(json);
  err[0] = '\0';
  int rc = kmk_decision_from_json(j, max, NULL, d, err, sizeof err);
  cJSON_Delete(j);
  return rc;
}

static void test_validate_fields(void) {
  kmk_decision d;
  CHECK_EQ_INT(validate("{\"thought\":\"t\",\"should_speak\":true,\"response\":\"  Hi there \\n\"}",
                        0, &d), 0);
  CHECK(d.should_speak);
  CHECK_STR(d.response, "Hi there");
  CHECK_STR(d.thought, "t");
  CHECK_STR(d.lang, "en");
  CHECK(d.addressed == NULL);
  kmk_decision_clear(&d);
  /* missing thought -> "", string booleans */
  CHECK_EQ_INT(validate("{\"should_speak\":\"true\",\"response\":\"ok\"}", 0, &d), 0);
  CHECK(d.should_speak);
  CHECK_STR(d.thought, "");
  kmk_decision_clear(&d);
  CHECK_EQ_INT(validate("{\"should_speak\":\"False\",\"response\":\"ok\"}", 0, &d), 0);
  CHECK(!d.should_speak);
  CHECK_STR(d.response, "");
  kmk_decision_clear(&d);
  CHECK_EQ_INT(validate("{\"should_speak\":\" yes \",\"response\":\"ok\"}", 0, &d), 0);
  CHECK(d.should_speak);
  kmk_decision_clear(&d);
  CHECK_EQ_INT(validate("{\"should_speak\":1,\"response\":\"ok\"}", 0, &d), 0);
  CHECK(d.should_speak);
  kmk_decision_clear(&d);
  /* speak with an empty response -> silent */
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"   \"}", 0, &d), 0);
  CHECK(!d.should_speak);
  kmk_decision_clear(&d);
  CHECK_EQ_INT(validate("{\"should_speak\":true}", 0, &d), 0);
  CHECK(!d.should_speak);
  kmk_decision_clear(&d);
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":null,\"thought\":null}", 0, &d), 0);
  CHECK(!d.should_speak);
  kmk_decision_clear(&d);
  /* errors */
  CHECK_EQ_INT(validate("{\"response\":\"hi\"}", 0, &d), -1);
  CHECK(strstr(err, "should_speak") != NULL);
  CHECK_EQ_INT(validate("{\"should_speak\":\"maybe\",\"response\":\"hi\"}", 0, &d), -1);
  CHECK_EQ_INT(validate("{\"should_speak\":[],\"response\":\"hi\"}", 0, &d), -1);
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":42}", 0, &d), -1);
  CHECK(strstr(err, "response") != NULL);
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"x\",\"thought\":{}}", 0, &d), -1);
  CHECK_EQ_INT(validate("[1,2]", 0, &d), -1);
  CHECK_EQ_INT(kmk_decision_from_json(NULL, 0, NULL, &d, err, sizeof err), -1);
  /* lang and addressed */
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"Привет!\"}", 0, &d), 0);
  CHECK_STR(d.lang, "ru");
  kmk_decision_clear(&d);
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"Hi\",\"lang\":\"EN!\","
                        "\"addressed\":\"bob\"}", 0, &d), 0);
  CHECK_STR(d.lang, "en");
  CHECK_STR(d.addressed, "bob");
  kmk_decision_clear(&d);
  cJSON *j = cJSON_Parse("{\"should_speak\":true,\"response\":\"Hello\"}");
  CHECK_EQ_INT(kmk_decision_from_json(j, 0, "ru", &d, err, sizeof err), 0);
  CHECK_STR(d.lang, "en"); /* a Latin answer is not Russian whatever the hint */
  kmk_decision_clear(&d);
  CHECK_EQ_INT(kmk_decision_from_json(j, 0, "de", &d, err, sizeof err), 0);
  CHECK_STR(d.lang, "de");
  kmk_decision_clear(&d);
  cJSON_Delete(j);
}

static void test_cap(void) {
  kmk_decision d;
  /* cut at a sentence end within the cap */
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"One two three. Four five six seven "
                        "eight nine ten.\"}", 20, &d), 0);
  CHECK_STR(d.response, "One two three.");
  kmk_decision_clear(&d);
  /* else at a word with an ellipsis */
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"alpha beta gamma delta epsilon "
                        "zeta\"}", 20, &d), 0);
  CHECK_STR(d.response, "alpha beta gamma\xE2\x80\xA6");
  kmk_decision_clear(&d);
  /* code points, not bytes: 25 Cyrillic letters capped at 20 without splitting one */
  CHECK_EQ_INT(validate("{\"should_speak\":true,\"response\":\"абвгдеёжзийклмнопрстуфхц\"}", 20,
                        &d), 0);
  CHECK_STR(d.response, "абвгдеёжзийклмнопрст");
  kmk_decision_clear(&d);
  /* default cap */
  char big[3000] = "{\"should_speak\":true,\"response\":\"";
  size_t n = strlen(big);
  for (int i = 0; i < 1000; i++) big[n++] = i % 7 ? 'a' : ' ';
  strcpy(big + n, "\"}");
  CHECK_EQ_INT(validate(big, 0, &d), 0);
  CHECK(strlen(d.response) <= KMK_DECISION_DEFAULT_MAX_REPLY + 3);
  kmk_decision_clear(&d);
}

struct shape {
  const char *text;
  int rc, speak;
  const char *response;
};

static void test_llm_shapes(void) {
  static const struct shape shapes[] = {
      {"{\"thought\": \"x\", \"should_speak\": true, \"response\": \"Hello!\"}", 0, 1, "Hello!"},
      {"```json\n{\"thought\": \"x\", \"should_speak\": true, \"response\": \"Fenced\"}\n```", 0, 1,
       "Fenced"},
      {"```\n{\"should_speak\": false, \"response\": \"\"}\n```", 0, 0, ""},
      {"Here is my answer:\n{\"should_speak\": true, \"response\": \"In prose\"}\nHope it helps!",
       0, 1, "In prose"},
      {"{\"should_speak\": true, \"response\": \"Trailing\",}", 0, 1, "Trailing"},
      {"{'thought': 'single', 'should_speak': True, 'response': 'Single quotes'}", 0, 1,
       "Single quotes"},
      {"{'should_speak': True, 'response': 'I'm fine, thanks'}", 0, 1, "I'm fine, thanks"},
      {"{should_speak: true, response: \"Bare keys\"}", 0, 1, "Bare keys"},
      {"{\"should_speak\": true, \"response\": \"Line one\nLine two\"}", 0, 1,
       "Line one\nLine two"},
      {"{\"should_speak\": true, \"response\": \"He said \"hi\" to me\"}", 0, 1,
       "He said \"hi\" to me"},
      {"{\"should_speak\": true, \"response\": \"Truncated answ", 0, 1, "Truncated answ"},
      {"{\"should_speak\": true, \"response\": \"Cut\", \"thought\":", 0, 1, "Cut"},
      {"{\"thought\": \"None here\", \"should_speak\": None, \"response\": \"x\"}", 0, 0, ""},
      {"Thinking {about it}... {\"should_speak\": true, \"response\": \"Second object\"}", 0, 1,
       "Second object"},
      {"{\"a\": 1} and then {\"should_speak\": true, \"response\": \"Later\"} end", 0, 1, "Later"},
      {"{\"should_speak\": \"true\", \"response\": \"Привет, как дела?\"}", 0, 1,
       "Привет, как дела?"},
      {"{\"shouldSpeak\": true, \"reply\": \"Aliases\"}", 0, 1, "Aliases"},
      {"{\"should_speak\": true, \"response\": \"esc \\u00e9 \\\" ok\"}", 0, 1, "esc é \" ok"},
      {"{\"should_speak\": true, \"response\": \"nested {braces} inside\"}", 0, 1,
       "nested {braces} inside"},
      {"// comment\n{\"should_speak\": false // no\n}", 0, 0, ""},
      /* failures */
      {"", -1, 0, NULL},
      {"I don't want to answer in JSON.", -1, 0, NULL},
      {"{\"response\": \"no flag\"}", -1, 0, NULL},
      {"{\"should_speak\": maybe, \"response\": \"x\"}", -1, 0, NULL},
      {"{{{{{{{{{{{{{{{{", -1, 0, NULL},
      {"}}}}{", -1, 0, NULL},
      {"[\"should_speak\", true]", -1, 0, NULL},
      {"{\"should_speak\": true, \"response\": 12}", -1, 0, NULL},
  };
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    kmk_decision d;
    int rc = parse(shapes[i].text, &d);
    if (rc != shapes[i].rc) {
      fprintf(stderr, "  shape %zu (%s): rc %d, err %s\n", i, shapes[i].text, rc, err);
      CHECK_EQ_INT(rc, shapes[i].rc);
      continue;
    }
    if (rc == 0) {
      CHECK_EQ_INT(d.should_speak, shapes[i].speak);
      if (strcmp(d.response, shapes[i].response) != 0)
        fprintf(stderr, "  shape %zu: response \"%s\"\n", i, d.response);
      CHECK_STR(d.response, shapes[i].response);
      CHECK(d.thought != NULL);
    } else {
      CHECK(err[0] != '\0');
    }
    kmk_decision_clear(&d);
  }
  kmk_decision d;
  CHECK_EQ_INT(kmk_decision_parse_llm(NULL, 5, 0, NULL, &d, err, sizeof err), -1);
  CHECK_STR(err, "empty LLM answer");
  /* length is honoured (no NUL needed) */
  const char *t = "{\"should_speak\": true, \"response\": \"abc\"}GARBAGE";
  CHECK_EQ_INT(kmk_decision_parse_llm(t, strlen(t) - 7, 0, NULL, &d, err, sizeof err), 0);
  CHECK_STR(d.response, "abc");
  kmk_decision_clear(&d);
}

static void test_hostile_sizes(void) {
  /* a flood of braces costs linear time and fails cleanly */
  size_t n = 60000;
  char *s = malloc(n + 1);
  for (size_t i = 0; i < n; i++) s[i] = i % 2 ? '{' : '"';
  s[n] = '\0';
  kmk_decision d;
  CHECK_EQ_INT(kmk_decision_parse_llm(s, n, 0, NULL, &d, err, sizeof err), -1);
  memset(s, '{', n);
  CHECK_EQ_INT(kmk_decision_parse_llm(s, n, 0, NULL, &d, err, sizeof err), -1);
  /* deep nesting inside an otherwise fine object */
  char *deep = malloc(n + 200);
  strcpy(deep, "{\"should_speak\": true, \"response\": \"deep\", \"x\": ");
  size_t k = strlen(deep);
  for (int i = 0; i < 2000; i++) deep[k++] = '[';
  for (int i = 0; i < 2000; i++) deep[k++] = ']';
  strcpy(deep + k, "}");
  int rc = kmk_decision_parse_llm(deep, strlen(deep), 0, NULL, &d, err, sizeof err);
  if (rc == 0) kmk_decision_clear(&d);
  CHECK(rc == 0 || rc == -1);
  free(deep);
  free(s);
}

int main(void) {
  RUN(test_validate_fields);
  RUN(test_cap);
  RUN(test_llm_shapes);
  RUN(test_hostile_sizes);
  return check_done();
}
