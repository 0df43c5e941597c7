/* test_gates.c - hallucination gates: audio duration/energy, segment scores, known English and
 * Russian Whisper artefacts (with case, punctuation and ё variations), sound captions, and echo of
 * the bot's own recent speech (window, similarity, bounded memory). */
#include <math.h>

#include "check.h"
#include "kameko/cloud.h"

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

int main(void) {
  RUN(test_audio_gate);
  RUN(test_scores);
  RUN(test_known_phrases);
  RUN(test_echo);
  RUN(test_custom_lists);
  return check_done();
}
