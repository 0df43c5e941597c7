/* test_gates.c - hallucination gates: audio duration/energy, segment scores, known English and
 * Russian Whisper artefacts (with case, punctuation and ё variations), sound captions, and echo of
 * the bot's own recent speech (window, similarity, bounded memory). */
#include <math.h>

#include "check.h"
#include "kameko/cloud.h"
#include "kameko/gate_lists.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void test_audio_gate(void) {
  kmk_gate_opts o;
  kmk_gate_opts_default(&o);
  static int16_t pcm[16000];
  double db;
  CHECK_EQ_INT(kmk_gate_audio(&o, pcm, 16000, 16000, &db), KMK_GATE_TOO_QUIET);
  CHECK(db < -100);
  for (int i = 0; i < 16000; i++) pcm[i] = (int16_t)(3000 * sin(i * 0.1));
  CHECK_EQ_INT(kmk_gate_audio(&o, pcm, 16000, 16000, &db), KMK_GATE_PASS);
  CHECK_NEAR(db, 20 * log10(3000 / 32768.0 / sqrt(2)), 0.5);
  CHECK_EQ_INT(kmk_gate_audio(&o, pcm, 3200, 16000, NULL), KMK_GATE_TOO_SHORT);
  CHECK_EQ_INT(kmk_gate_audio(&o, pcm, 0, 16000, NULL), KMK_GATE_TOO_SHORT);
}

static void test_scores(void) {
  kmk_gate_opts o;
  kmk_gate_opts_default(&o);
  kmk_groq_segment ok = {0, 2, -0.2f, 1.1f, 0.01f};
  CHECK_EQ_INT(kmk_gate_transcript(&o, "What time is it?", "en", &ok, 1), KMK_GATE_PASS);
  kmk_groq_segment ns = {0, 2, -0.8f, 1.1f, 0.7f};
  CHECK_EQ_INT(kmk_gate_transcript(&o, "What time is it?", "en", &ns, 1), KMK_GATE_NO_SPEECH);
  kmk_groq_segment ns2 = {0, 2, -0.2f, 1.1f, 0.95f};
  CHECK_EQ_INT(kmk_gate_transcript(&o, "What time is it?", "en", &ns2, 1), KMK_GATE_NO_SPEECH);
  kmk_groq_segment ns3 = {0, 2, -0.2f, 1.1f, 0.7f}; /* confident text despite no_speech 0.7 */
  CHECK_EQ_INT(kmk_gate_transcript(&o, "What time is it?", "en", &ns3, 1), KMK_GATE_PASS);
  kmk_groq_segment lp = {0, 2, -1.4f, 1.1f, 0.1f};
  CHECK_EQ_INT(kmk_gate_transcript(&o, "uh the", "en", &lp, 1), KMK_GATE_LOW_LOGPROB);
  kmk_groq_segment cr = {0, 2, -0.3f, 2.9f, 0.1f};
  CHECK_EQ_INT(kmk_gate_transcript(&o, "yes yes yes yes", "en", &cr, 1), KMK_GATE_COMPRESSION);
  /* duration-weighted: a long good segment outweighs a short weak one */
  kmk_groq_segment two[2] = {{0, 4, -0.2f, 1.1f, 0.05f}, {4, 4.3f, -1.5f, 1.2f, 0.3f}};
  CHECK_EQ_INT(kmk_gate_transcript(&o, "A long sentence here.", "en", two, 2), KMK_GATE_PASS);
  CHECK_EQ_INT(kmk_gate_transcript(&o, "", "en", NULL, 0), KMK_GATE_EMPTY);
  CHECK_EQ_INT(kmk_gate_transcript(&o, " ... !? ", "en", NULL, 0), KMK_GATE_EMPTY);
  CHECK_EQ_INT(kmk_gate_transcript(&o, NULL, "en", NULL, 0), KMK_GATE_EMPTY);
  CHECK_STR(kmk_gate_reason_name(KMK_GATE_NO_SPEECH), "no_speech");
  CHECK_STR(kmk_gate_reason_name(KMK_GATE_ECHO), "echo");
  CHECK_STR(kmk_gate_reason_name((kmk_gate_reason)99), "unknown");
}

static void test_known_phrases(void) {
  const char *en[] = {"Thank you for watching!", "THANKS FOR WATCHING.",
                      "Subtitles by the Amara.org community", "Please subscribe to my channel",
                      "you", "[Music]", "(upbeat music)", "♪ ♪", "Don't forget to subscribe!"};
  for (size_t i = 0; i < sizeof en / sizeof en[0]; i++) {
    if (!kmk_gate_known_phrase(en[i], "en")) fprintf(stderr, "missed: %s\n", en[i]);
    CHECK(kmk_gate_known_phrase(en[i], "en"));
  }
  const char *ru[] = {"Продолжение следует...", "ПРОДОЛЖЕНИЕ СЛЕДУЕТ", "Субтитры сделал DimaTorzok",
                      "Редактор субтитров А.Семкин Корректор А.Егорова", "Спасибо за просмотр!",
                      "Субтитры создавал DimaTorzok", "Подписывайтесь на канал, ставьте лайки"};
  for (size_t i = 0; i < sizeof ru / sizeof ru[0]; i++) {
    if (!kmk_gate_known_phrase(ru[i], "ru")) fprintf(stderr, "missed: %s\n", ru[i]);
    CHECK(kmk_gate_known_phrase(ru[i], "ru"));
  }
  /* lang NULL checks every list; a Russian artefact is not an English one */
  CHECK(kmk_gate_known_phrase("Продолжение следует...", NULL));
  CHECK(!kmk_gate_known_phrase("Продолжение следует...", "en"));
  /* real speech passes */
  const char *real[] = {"Thank you, Kameko, that helps.", "Watch out for the dog",
                        "Какая сегодня погода?", "Kameko, what do you think?", "Спасибо, Камеко!",
                        "Let's continue tomorrow"};
  for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
    if (kmk_gate_known_phrase(real[i], NULL)) fprintf(stderr, "false hit: %s\n", real[i]);
    CHECK(!kmk_gate_known_phrase(real[i], NULL));
  }
}

static void test_echo(void) {
  kmk_gate_opts o;
  kmk_gate_opts_default(&o);
  kmk_echo_memory m;
  kmk_echo_init(&m);
  kmk_echo_add(&m, "Hello there! I am Kameko, nice to meet you.", 10);
  kmk_echo_add(&m, "Привет! Я Камеко, рада знакомству.", 11);
  CHECK(kmk_echo_match(&m, &o, "I am Kameko nice to meet you", 12));
  CHECK(kmk_echo_match(&m, &o, "hello there i am kameko", 12));
  CHECK(kmk_echo_match(&m, &o, "Я Камеко, рада знакомству", 12));
  CHECK(!kmk_echo_match(&m, &o, "Nice to meet you too, Kameko, how old are you?", 12));
  CHECK(!kmk_echo_match(&m, &o, "yes", 12));
  CHECK(!kmk_echo_match(&m, &o, "I am Kameko nice to meet you", 40)); /* outside the window */
  /* bounded: old lines are dropped */
  for (int i = 0; i < KMK_ECHO_LINES + 3; i++) {
    char line[64];
    snprintf(line, sizeof line, "filler line number %d here", i);
    kmk_echo_add(&m, line, 13);
  }
  CHECK_EQ_INT(m.n, KMK_ECHO_LINES);
  CHECK(!kmk_echo_match(&m, &o, "I am Kameko nice to meet you", 14));
  CHECK(kmk_echo_match(&m, &o, "filler line number 18 here", 14));
  kmk_echo_free(&m);
}

static void test_custom_lists(void) {
  kmk_gate_opts o;
  kmk_gate_opts_default(&o);
  static const char *const exact[] = {"Ну, всё.", NULL};
  static const char *const contains[] = {"DimaTorzok", "Radio Kameko FM", NULL};
  kmk_gate_list lists[] = {{"ru", exact, contains}};
  o.lists = lists;
  o.n_lists = 1;
  CHECK(kmk_gate_known_phrase_in(&o, "ну всё", "ru"));
  CHECK(kmk_gate_known_phrase_in(&o, "Субтитры сделал DimaTorzok", "ru"));
  CHECK(!kmk_gate_known_phrase_in(&o, "Продолжение следует...", "ru")); /* replaced, not merged */
  CHECK(!kmk_gate_known_phrase_in(&o, "ну всё", "en"));
  CHECK(kmk_gate_known_phrase_in(&o, "[Music]", "en")); /* captions always */
  CHECK_EQ_INT(kmk_gate_transcript(&o, "You're listening to radio kameko fm!", NULL, NULL, 0),
               KMK_GATE_KNOWN_PHRASE);
  int n;
  const kmk_gate_list *d = kmk_gate_default_lists(&n);
  CHECK_EQ_INT(n, 2);
  CHECK_STR(d[0].lang, "en");
  CHECK_STR(d[1].lang, "ru");
}

/* scripts/gates.lua: the shipped lists load, match like the built-in ones and add patterns */
static void test_lua_lists(void) {
  char err[512] = "";
  kmk_gate_lists *g = kmk_gate_lists_load(KMK_SOURCE_DIR "/scripts/gates.lua", err, sizeof err);
  CHECK(g != NULL);
  if (!g) {
    fprintf(stderr, "%s\n", err);
    return;
  }
  int ph = 0, pt = 0, langs = 0;
  kmk_gate_lists_counts(g, &ph, &pt, &langs);
  CHECK_EQ_INT(langs, 2);
  CHECK(ph > 20 && pt >= 4);
  kmk_gate_opts o;
  kmk_gate_opts_default(&o);
  kmk_gate_lists_apply(g, &o);
  CHECK_EQ_INT(o.n_lists, 2);
  CHECK(kmk_gate_known_phrase_in(&o, "Thank you for watching!", "en"));
  CHECK(kmk_gate_known_phrase_in(&o, "Продолжение следует...", "ru"));
  CHECK(!kmk_gate_known_phrase_in(&o, "Thank you for the tea.", "en"));
  /* patterns: a lone "thank you", a word four times over, a lone Russian "спасибо" */
  CHECK(kmk_gate_lists_pattern(g, "Thank you.", "en") != NULL);
  CHECK(kmk_gate_lists_pattern(g, "Thank you for the tea.", "en") == NULL);
  CHECK(kmk_gate_lists_pattern(g, "okay okay okay okay okay", "en") != NULL);
  CHECK(kmk_gate_lists_pattern(g, "Спасибо!", "ru") != NULL);
  CHECK(kmk_gate_lists_pattern(g, "Спасибо!", "en") == NULL); /* per language */
  CHECK(kmk_gate_lists_pattern(g, "Спасибо!", NULL) != NULL);  /* any */
  CHECK(kmk_gate_lists_pattern(g, "Спасибо за помощь, друг", "ru") == NULL);
  kmk_gate_lists_apply(NULL, &o);
  CHECK(o.lists == NULL);
  kmk_gate_lists_free(g);
}

static int write_tmp(char *path, size_t n, const char *text) {
  snprintf(path, n, "/tmp/kmk_gates_XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  return 0;
}

/* an edited file: its own phrases replace the built-in ones; broken edits are refused */
static void test_lua_lists_edited(void) {
  char path[64], err[512];
  CHECK_EQ_INT(write_tmp(path, sizeof path,
                         "local M = {}\n"
                         "M.lists = {en = {exact = {\"Banana split!\"}, patterns = {\"^be+p$\"}}}\n"
                         "function M.export() return M.lists end\n"
                         "function M.match(t, lang)\n"
                         "  local n = kmk.lower(t):gsub('[%p]', '')\n"
                         "  for _, p in ipairs(M.lists.en.patterns) do if n:find(p) then return p end end\n"
                         "end\n"
                         "return M\n"), 0);
  kmk_gate_lists *g = kmk_gate_lists_load(path, err, sizeof err);
  CHECK(g != NULL);
  if (g) {
    kmk_gate_opts o;
    kmk_gate_opts_default(&o);
    kmk_gate_lists_apply(g, &o);
    CHECK_EQ_INT(kmk_gate_transcript(&o, "banana split", "en", NULL, 0), KMK_GATE_KNOWN_PHRASE);
    CHECK_EQ_INT(kmk_gate_transcript(&o, "Thank you for watching", "en", NULL, 0), KMK_GATE_PASS);
    CHECK(kmk_gate_lists_pattern(g, "Beeeep!", "en") != NULL);
    kmk_gate_lists_free(g);
  }
  unlink(path);
  /* a syntax error names the file and line */
  CHECK_EQ_INT(write_tmp(path, sizeof path, "local M = {}\nM.lists = {en = {exact = {'a'}\nreturn M\n"), 0);
  CHECK(kmk_gate_lists_load(path, err, sizeof err) == NULL);
  CHECK(strstr(err, path) != NULL);
  unlink(path);
  /* the shipped export() validates: a bad pattern and a non-string phrase are refused */
  FILE *f = fopen(KMK_SOURCE_DIR "/scripts/gates.lua", "r");
  static char src[1 << 16];
  size_t n = f ? fread(src, 1, sizeof src - 1, f) : 0;
  if (f) fclose(f);
  src[n] = 0;
  char *ret = strstr(src, "\nreturn M");
  CHECK(ret != NULL);
  if (!ret) return;
  *ret = 0;
  const char *bad[] = {"M.lists.en.patterns = {'[a'}", "M.lists.ru.exact = {'ok', 42}",
                       "M.lists.xx1 = {}"};
  const char *why[] = {"not a valid Lua pattern", "ru.exact[2] must be a string", "language keys"};
  for (int i = 0; i < 3; i++) {
    static char text[(1 << 16) + 256];
    snprintf(text, sizeof text, "%s\n%s\nreturn M\n", src, bad[i]);
    CHECK_EQ_INT(write_tmp(path, sizeof path, text), 0);
    err[0] = 0;
    CHECK(kmk_gate_lists_load(path, err, sizeof err) == NULL);
    if (!strstr(err, why[i])) fprintf(stderr, "got: %s\n", err);
    CHECK(strstr(err, why[i]) != NULL);
    unlink(path);
  }
}

int main(void) {
  RUN(test_lua_lists);
  RUN(test_lua_lists_edited);
  RUN(test_audio_gate);
  RUN(test_scores);
  RUN(test_known_phrases);
  RUN(test_echo);
  RUN(test_custom_lists);
  return check_done();
}
