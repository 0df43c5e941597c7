/* test_g2p.c - rule-based grapheme-to-phoneme for names (pure, no I/O). */
#include "check.h"
#include "kameko/speech.h"

static void expect(const char *w, const char *want) {
  char out[256];
  int n = kmk_g2p(w, out, sizeof out);
  CHECK(n > 0);
  if (n <= 0) return;
  if (strcmp(out, want)) fprintf(stderr, "  g2p(%s) = \"%s\", want \"%s\"\n", w, out, want);
  CHECK_STR(out, want);
}

static void test_latin(void) {
  expect("kameko", "K AA M EH K OW");
  expect("Kameko", "K AA M EH K OW");
  expect("KAMEKO", "K AA M EH K OW");
  expect("sasha", "S AA SH AA");
  expect("Yuki", "Y UW K IY");
  expect("Kate", "K AA T");
  expect("Anna", "AA N AA");
  expect("Mitch", "M IY CH");
  expect("Chen", "CH EH N");
  expect("Xena", "Z EH N AA");
  expect("Lindqvist", "L IY N D K V IY S T");
  expect("Haruki", "HH AA R UW K IY");
  expect("Cecilia", "S EH S IY L IY AA");
}

static void test_cyrillic(void) {
  expect("Камеко", "K AA M EH K OW");
  expect("камеко", "K AA M EH K OW");
  expect("Яна", "Y AA N AA");
  expect("Алёна", "AA L OW N AA");
  expect("Юля", "Y UW L AA");
  expect("Жора", "ZH OW R AA");
  expect("Щукин", "SH UW K IY N");
  expect("Ульяна", "UW L Y AA N AA");
  expect("Анна", "AA N AA");
}

static void test_errors(void) {
  char out[8];
  CHECK_EQ_INT(kmk_g2p("", out, sizeof out), KMK_SPEECH_EINVAL);
  CHECK_EQ_INT(kmk_g2p("123 !", out, sizeof out), KMK_SPEECH_EINVAL);
  CHECK_EQ_INT(kmk_g2p("\xe4\xb8\xad", out, sizeof out), KMK_SPEECH_EINVAL); /* CJK */
  CHECK_EQ_INT(kmk_g2p("kameko", out, sizeof out), KMK_SPEECH_EINVAL);       /* too small */
  CHECK_EQ_INT(kmk_g2p(NULL, out, sizeof out), KMK_SPEECH_EINVAL);
  CHECK_EQ_INT(kmk_g2p("\xff\xfe", out, sizeof out), KMK_SPEECH_EINVAL); /* invalid UTF-8 */
  char big[32];
  CHECK_EQ_INT(kmk_g2p("kameko", big, sizeof big), 6);
}

static void test_translit(void) {
  char out[64];
  CHECK(kmk_g2p_translit("Камеко", out, sizeof out) > 0);
  CHECK_STR(out, "kameko");
  CHECK(kmk_g2p_translit("Щукин", out, sizeof out) > 0);
  CHECK_STR(out, "shchukin");
  CHECK(kmk_g2p_translit("Alice", out, sizeof out) > 0);
  CHECK_STR(out, "Alice");
  CHECK_EQ_INT(kmk_g2p_translit("\xe4\xb8\xad", out, sizeof out), KMK_SPEECH_EINVAL);
  CHECK_EQ_INT(kmk_g2p_translit("Камеко", out, 4), KMK_SPEECH_EINVAL);
}

int main(void) {
  RUN(test_translit);
  RUN(test_latin);
  RUN(test_cyrillic);
  RUN(test_errors);
  return check_done();
}
