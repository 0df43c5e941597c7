/* test_stt_keywords.c - names / wake words through pocketsphinx: "Kameko" in several positions,
 * synthesized by flite (slt, kal16) and espeak-ng (en-us, en-us+klatt), must be recognised; a
 * negative set full of near misses ("I can make coffee", "the camel can make it", "Come on,
 * Echo") must never produce it. Prints hit / false-alarm figures per voice. Also: API errors,
 * clearing the set, a Cyrillic keyword. */
#include <stdio.h>

#include "check.h"
#include "test_stt_synth.h"

static kmk_stt_sphinx *S;

static const char *POS[] = {
    "Kameko, what time is it?",       "Hey Kameko how are you",
    "I think Kameko is nice",         "Can you help me, Kameko?",
    "Kameko.",                        "Tell me a joke Kameko",
    "Good morning Kameko, did you sleep well?", "What does Kameko think about that?",
};
#define NPOS (sizeof POS / sizeof POS[0])

static const char *NEG[] = {
    "What time is it?", "Hey there how are you", "I think it is nice", "Can you make a cake?",
    "The camera came back", "I came home at ten", "Call me tomorrow morning",
    "Go forward ten meters", "Can we make it go faster?", "My cat likes milk", "Tell me a joke",
    "Come back here, Michael", "Hey Mako, how are you", "I need a camel and a cake",
    "Come on, Echo, play some music", "We went to Mexico last year",
    "The camel can make it across", "Can you make a copy of this?", "She came back with a cake",
    "My computer keeps crashing", "Call Monica and ask her to come over",
    "The comedian made a joke", "Do you know where my keys are?",
    "Let's meet at the cafe at noon", "I can make coffee for everyone", "Hey, come look at this",
    "Kim Becker is my neighbor", "The gecko ate a cricket",
};
#define NNEG (sizeof NEG / sizeof NEG[0])

typedef struct {
  const char *engine, *voice;
  int min_hits;   /* required hits out of NPOS: measured, see below */
  int max_alarms; /* allowed false alarms out of NNEG: measured */
} voice_case;

/* Measured (defaults: kws_threshold 1e-30, kw_lm_weight 100): flite slt 8/8, flite kal16 8/8,
 * espeak en-us+klatt 7/8, espeak en-us (default formant voice) 0/8 (its speech is barely
 * recognised at all, WER ~90 % on plain English), false alarms 1/112 (espeak klatt "I can make
 * coffee for everyone"; pinned per voice below). The 0/112 measured before the names LM was
 * taken while the old way of adding names made the LM read out of bounds. */
static const voice_case VOICES[] = {
    {"flite", "slt", 8, 0},
    {"flite", "kal16", 8, 0},
    {"espeak", "en-us+klatt", 6, 1},
    {"espeak", "en-us", 0, 0},
};

/* No keyword token from any set may leak into a transcript as its internal dictionary name. */
static int has_internal_name(const char *t) {
  for (const char *p = t; *p; p++)
    if (p[0] == 'k' && p[1] >= '0' && p[1] <= '9' && (p == t || p[-1] == ' ')) return 1;
  return 0;
}

static void test_kameko(void) {
  const char *kw[] = {"Kameko"};
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, kw, 1), 0);
  int tot_hits = 0, tot_fa = 0, n_pos = 0, n_neg = 0;
  for (size_t v = 0; v < sizeof VOICES / sizeof VOICES[0]; v++) {
    const voice_case *vc = &VOICES[v];
    int hits = 0, fa = 0;
    for (size_t i = 0; i < NPOS; i++) {
      pcmbuf b = synth16k(vc->engine, vc->voice, POS[i]);
      CHECK(b.n > 0);
      kmk_transcript t;
      CHECK_EQ_INT(kmk_stt_sphinx_transcribe(S, b.pcm, b.n, "en", NULL, &t, NULL, 0), 0);
      int h = t.text && strstr(t.text, "Kameko") != NULL;
      hits += h;
      if (!h || getenv("KMK_TEST_VERBOSE"))
        printf("  %s %s: \"%s\" -> \"%s\"%s\n", vc->engine, vc->voice, POS[i], t.text,
               h ? "" : "  (missed)");
      CHECK(t.text && !has_internal_name(t.text));
      kmk_transcript_clear(&t);
      free(b.pcm);
    }
    for (size_t i = 0; i < NNEG; i++) {
      pcmbuf b = synth16k(vc->engine, vc->voice, NEG[i]);
      kmk_transcript t;
      CHECK_EQ_INT(kmk_stt_sphinx_transcribe(S, b.pcm, b.n, "en", NULL, &t, NULL, 0), 0);
      int f = t.text && strstr(t.text, "Kameko") != NULL;
      fa += f;
      if (f) printf("  FALSE ALARM %s %s: \"%s\" -> \"%s\"\n", vc->engine, vc->voice, NEG[i], t.text);
      CHECK(t.text && !has_internal_name(t.text));
      kmk_transcript_clear(&t);
      free(b.pcm);
    }
    printf("%-6s %-12s hits %d/%zu (required >= %d), false alarms %d/%zu (allowed %d)\n",
           vc->engine, vc->voice, hits, NPOS, vc->min_hits, fa, NNEG, vc->max_alarms);
    CHECK(hits >= vc->min_hits);
    CHECK(fa <= vc->max_alarms);
    tot_hits += hits;
    tot_fa += fa;
    n_pos += (int)NPOS;
    n_neg += (int)NNEG;
  }
  printf("keyword \"Kameko\": hits %d/%d, false alarms %d/%d\n", tot_hits, n_pos, tot_fa, n_neg);
}

static void test_without_keywords(void) {
  /* Without the keyword set (cleared), the name is never produced, and the old dictionary
   * entries never leak. */
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, NULL, 0), 0);
  pcmbuf b = synth16k("flite", "slt", "Hey Kameko how are you");
  kmk_transcript t;
  CHECK_EQ_INT(kmk_stt_sphinx_transcribe(S, b.pcm, b.n, NULL, NULL, &t, NULL, 0), 0);
  printf("no keywords: \"%s\"\n", t.text);
  CHECK(t.text && !strstr(t.text, "Kameko") && !has_internal_name(t.text));
  kmk_transcript_clear(&t);
  /* Set again (new generation of dictionary names): recognised again. */
  const char *kw[] = {"Kameko", "Alice"};
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, kw, 2), 0);
  CHECK_EQ_INT(kmk_stt_sphinx_transcribe(S, b.pcm, b.n, NULL, NULL, &t, NULL, 0), 0);
  printf("keywords again: \"%s\"\n", t.text);
  CHECK(t.text && strstr(t.text, "Kameko"));
  kmk_transcript_clear(&t);
  free(b.pcm);
}

static void test_reteach(void) {
  /* The sets a session goes through (personas reloaded with other wake words, casts changed):
   * each one is heard, the one before is gone. Re-teaching used to add words to the live LM
   * search; on this very sequence the third set crashed in ngram_fwdtree_search (valgrind:
   * reads of freed memory in lm_trie_score). */
  const char *k1[] = {"kameko"}, *k2[] = {"kameko", "marta"}, *k3[] = {"kameko", "tanuki"};
  const struct {
    const char *const *kw;
    size_t n;
    int tanuki;
  } steps[] = {{k1, 1, 0}, {k2, 2, 0}, {k3, 2, 1}, {k2, 2, 0}, {k3, 2, 1}};
  pcmbuf b = synth16k("flite", "kal16", "Tanuki, what is your name?");
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, steps[i].kw, steps[i].n), 0);
    kmk_transcript t;
    CHECK_EQ_INT(kmk_stt_sphinx_transcribe(S, b.pcm, b.n, "en", NULL, &t, NULL, 0), 0);
    printf("set %zu (%s%s%s): \"%s\"\n", i, steps[i].kw[0], steps[i].n > 1 ? ", " : "",
           steps[i].n > 1 ? steps[i].kw[1] : "", t.text);
    CHECK(t.text && (strstr(t.text, "tanuki") != NULL) == steps[i].tanuki);
    CHECK(t.text && !has_internal_name(t.text));
    kmk_transcript_clear(&t);
  }
  free(b.pcm);
}

static void test_cyrillic(void) {
  /* The Cyrillic spelling gets the g2p reading K AA M EH K OW plus the English readings of its
   * transliteration, and is output in Cyrillic. */
  const char *kw[] = {"Камеко"};
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, kw, 1), 0);
  const char *v[][2] = {{"flite", "kal16"}, {"espeak", "en-us+klatt"}, {"espeak", "ru"}};
  const char *txt[] = {"Hey Kameko how are you", "Hey Kameko how are you",
                       "Камеко, который час?"};
  int hits = 0;
  for (int i = 0; i < 3; i++) {
    pcmbuf b = synth16k(v[i][0], v[i][1], txt[i]);
    kmk_transcript t;
    CHECK_EQ_INT(kmk_stt_sphinx_transcribe(S, b.pcm, b.n, "ru", NULL, &t, NULL, 0), 0);
    int h = t.text && strstr(t.text, "Камеко") != NULL;
    hits += h;
    printf("  Cyrillic keyword, %s %s \"%s\" -> \"%s\"\n", v[i][0], v[i][1], txt[i], t.text);
    CHECK(t.text && !has_internal_name(t.text));
    kmk_transcript_clear(&t);
    free(b.pcm);
  }
  printf("Cyrillic keyword: %d/3\n", hits);
  /* Measured: flite kal16 and espeak en-us+klatt hit; Russian espeak speech through the English
   * acoustic model does not. */
  CHECK(hits >= 2);
}

static void test_errors(void) {
  const char *space[] = {"Kameko san"};
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, space, 1), KMK_SPEECH_EINVAL);
  const char *digits[] = {"1234"};
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, digits, 1), KMK_SPEECH_EINVAL);
  const char *empty[] = {""};
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, empty, 1), KMK_SPEECH_EINVAL);
  const char *many[33];
  for (int i = 0; i < 33; i++) many[i] = "Kameko";
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, many, 33), KMK_SPEECH_EINVAL);
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(NULL, space, 1), KMK_SPEECH_EINVAL);
  CHECK_EQ_INT(kmk_stt_sphinx_set_keywords(S, NULL, 1), KMK_SPEECH_EINVAL);
}

int main(void) {
  char err[256] = "";
  S = kmk_stt_sphinx_new(NULL, err, sizeof err);
  if (!S) {
    fprintf(stderr, "cannot load the pocketsphinx model: %s\n", err);
    return 1;
  }
  const char *only = getenv("KMK_STT_TEST"); /* e.g. "reteach" (tests/e2e/stt_reteach_valgrind.sh) */
  if (!only || strstr(only, "errors")) RUN(test_errors);
  if (!only || strstr(only, "kameko")) RUN(test_kameko);
  if (!only || strstr(only, "without")) RUN(test_without_keywords);
  if (!only || strstr(only, "reteach")) RUN(test_reteach);
  if (!only || strstr(only, "cyrillic")) RUN(test_cyrillic);
  kmk_stt_sphinx_free(S);
  return check_done();
}
