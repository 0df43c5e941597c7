/* g2p.c - rule-based grapheme-to-phoneme for names and wake words (kmk_g2p).
 *
 * Owns nothing; pure functions, any thread. Output is the CMU phone set used by the pocketsphinx
 * en-US model, without stress marks. This is deliberately small: it is for persona names that
 * cmudict does not know ("Kameko", "Камеко"), read the way a speaker of English or Russian would
 * read a foreign name letter by letter, not a general English G2P:
 *   - Latin: consonant digraphs (sh ch th ph kh zh ts ck qu ng wh gh), a few vowel digraphs
 *     (ee ea oo ou ai ay ei ey ie oa au aw oi oy ue eu), otherwise "continental" vowels
 *     a->AA e->EH i->IY o->OW u->UW; doubled letters collapse; a magic final e (VCe, e.g. "Kate")
 *     is silent; c/g soften to S/JH before e, i, y.
 *   - Cyrillic (Russian letters): one table, iotated vowels (е ё ю я) give Y + vowel at the start
 *     of a word or after a vowel / ъ / ь, and the plain vowel after a consonant.
 */
#include <stdio.h>
#include <string.h>

#include "kameko/speech.h"

#define MAXPH 64

typedef struct {
  const char *ph[MAXPH];
  int n;
} phones;

static void push(phones *p, const char *ph) {
  /* Split multi-phone strings like "K S" into separate entries. */
  static const char *const table[] = {"AA", "AE", "AH", "AO", "AW", "AY", "B",  "CH", "D",  "DH",
                                      "EH", "ER", "EY", "F",  "G",  "HH", "IH", "IY", "JH", "K",
                                      "L",  "M",  "N",  "NG", "OW", "OY", "P",  "R",  "S",  "SH",
                                      "T",  "TH", "UH", "UW", "V",  "W",  "Y",  "Z",  "ZH"};
  char buf[16];
  const char *s = ph;
  while (*s) {
    while (*s == ' ') s++;
    size_t k = 0;
    while (s[k] && s[k] != ' ' && k < sizeof buf - 1) {
      buf[k] = s[k];
      k++;
    }
    buf[k] = '\0';
    s += k;
    if (!k) break;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
      if (!strcmp(table[i], buf)) {
        /* A doubled consonant letter ("nn", "кк") is one phone. */
        if (p->n > 0 && p->ph[p->n - 1] == table[i] && !strchr("AEIOU", buf[0])) break;
        if (p->n < MAXPH) p->ph[p->n++] = table[i];
        break;
      }
    }
  }
}

static int is_vowel_l(char c) { return c && strchr("aeiouy", c) != NULL; }

typedef struct {
  const char *g, *ph;
} rule;

/* Longest match first within each starting letter: order matters. */
static const rule LATIN[] = {
    {"tch", "CH"}, {"sch", "SH"}, {"sh", "SH"},  {"ch", "CH"},  {"th", "TH"},  {"ph", "F"},
    {"kh", "K"},   {"zh", "ZH"},  {"ts", "T S"}, {"tz", "T S"}, {"ck", "K"},   {"qu", "K W"},
    {"wh", "W"},   {"gh", "G"},   {"ee", "IY"},  {"ea", "IY"},  {"oo", "UW"},  {"ou", "AW"},
    {"ai", "AY"},  {"ay", "EY"},  {"ei", "EY"},  {"ey", "EY"},  {"ie", "IY"},  {"oa", "OW"},
    {"au", "AO"},  {"aw", "AO"},  {"oi", "OY"},  {"oy", "OY"},  {"ue", "UW"},  {"eu", "Y UW"},
};

static int latin_word(const char *w, size_t n, phones *p) {
  char s[128];
  size_t m = 0;
  for (size_t i = 0; i < n && m < sizeof s - 1; i++) {
    char c = w[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c >= 'a' && c <= 'z') s[m++] = c;
  }
  s[m] = '\0';
  for (size_t i = 0; i < m;) {
    size_t used = 0;
    for (size_t r = 0; r < sizeof LATIN / sizeof LATIN[0]; r++) {
      size_t gl = strlen(LATIN[r].g);
      if (!strncmp(s + i, LATIN[r].g, gl)) {
        push(p, LATIN[r].ph);
        used = gl;
        break;
      }
    }
    if (used) {
      i += used;
      continue;
    }
    char c = s[i], nx = s[i + 1];
    int soft = nx == 'e' || nx == 'i' || nx == 'y';
    switch (c) {
      case 'a': push(p, "AA"); break;
      case 'e':
        /* Magic e: final, after one consonant after a vowel, in a word of 4+ letters. */
        if (i == m - 1 && m >= 4 && !is_vowel_l(s[i - 1]) && is_vowel_l(s[i - 2])) break;
        push(p, "EH");
        break;
      case 'i': push(p, "IY"); break;
      case 'o':
        push(p, "OW");
        if (nx == 'w' && i + 2 == m) i++; /* final "ow" is one vowel */
        break;
      case 'u': push(p, "UW"); break;
      case 'y': push(p, (i == 0 || is_vowel_l(nx)) ? "Y" : "IY"); break;
      case 'b': push(p, "B"); break;
      case 'c': push(p, soft ? "S" : "K"); break;
      case 'd': push(p, "D"); break;
      case 'f': push(p, "F"); break;
      case 'g': push(p, soft && i > 0 ? "JH" : "G"); break;
      case 'h':
        if (i + 1 < m && !(i > 0 && is_vowel_l(s[i - 1]) && !is_vowel_l(nx))) push(p, "HH");
        break;
      case 'j': push(p, "JH"); break;
      case 'k': push(p, "K"); break;
      case 'l': push(p, "L"); break;
      case 'm': push(p, "M"); break;
      case 'n':
        if (nx == 'g' && (i + 2 == m || !is_vowel_l(s[i + 2]))) {
          push(p, "NG");
          i++;
        } else if (nx == 'k') {
          push(p, "NG");
        } else {
          push(p, "N");
        }
        break;
      case 'p': push(p, "P"); break;
      case 'q': push(p, "K"); break;
      case 'r': push(p, "R"); break;
      case 's': push(p, "S"); break;
      case 't': push(p, "T"); break;
      case 'v': push(p, "V"); break;
      case 'w': push(p, "W"); break;
      case 'x': push(p, i == 0 ? "Z" : "K S"); break;
      case 'z': push(p, "Z"); break;
      default: break;
    }
    i++;
  }
  return 0;
}

/* Russian letters, lowercase, indexed by code point - 0x430 (а..я); ё separately. */
static const char *const CYR[32] = {
    "AA", "B", "V",  "G",  "D",  "EH", "ZH",  "Z",  "IY", "Y", "K", "L",   "M", "N",  "OW", "P",
    "R",  "S", "T",  "UW", "F",  "HH", "T S", "CH", "SH", "SH", "", "IH", "",  "EH", "UW", "AA"};

static int cyr_is_vowel(unsigned cp) {
  return cp == 0x430 || cp == 0x435 || cp == 0x438 || cp == 0x43E || cp == 0x443 ||
         cp == 0x44B || cp == 0x44D || cp == 0x44E || cp == 0x44F || cp == 0x451;
}

/* Decodes one UTF-8 code point; returns its length (1 for an invalid byte). */
static size_t utf8_next(const unsigned char *s, unsigned *cp) {
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
    *cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
    return 2;
  }
  if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
    *cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
    return 3;
  }
  *cp = 0xFFFD;
  return 1;
}

int kmk_g2p(const char *word, char *out, size_t outlen) {
  if (!word || !out || !outlen) return KMK_SPEECH_EINVAL;
  phones p = {.n = 0};
  const unsigned char *s = (const unsigned char *)word;
  unsigned prev = 0; /* previous Cyrillic letter (lowercase) or 0 at word start / after Latin */
  while (*s) {
    if (*s < 0x80) {
      /* A run of ASCII letters is one Latin chunk. */
      size_t k = 0;
      while (s[k] && s[k] < 0x80) k++;
      latin_word((const char *)s, k, &p);
      s += k;
      prev = 0;
      continue;
    }
    unsigned cp;
    s += utf8_next(s, &cp);
    if (cp >= 0x410 && cp <= 0x42F) cp += 0x20; /* А..Я -> а..я */
    if (cp == 0x401) cp = 0x451;                /* Ё -> ё */
    if (!(cp >= 0x430 && cp <= 0x44F) && cp != 0x451) continue;
    int iot = prev == 0 || cyr_is_vowel(prev) || prev == 0x44A || prev == 0x44C;
    if (cp == 0x451) push(&p, iot ? "Y OW" : "OW");
    else if (cp == 0x435) push(&p, iot ? "Y EH" : "EH");
    else if (cp == 0x44E) push(&p, iot ? "Y UW" : "UW");
    else if (cp == 0x44F) push(&p, iot ? "Y AA" : "AA");
    else push(&p, CYR[cp - 0x430]);
    prev = cp;
  }
  if (p.n == 0) return KMK_SPEECH_EINVAL;
  size_t len = 0;
  for (int i = 0; i < p.n; i++) {
    size_t l = strlen(p.ph[i]);
    if (len + l + (i ? 1 : 0) + 1 > outlen) return KMK_SPEECH_EINVAL;
    if (i) out[len++] = ' ';
    memcpy(out + len, p.ph[i], l);
    len += l;
  }
  out[len] = '\0';
  return p.n;
}

/* Russian letters а..я -> Latin (a simple passport-style transliteration). */
static const char *const TRANSLIT[32] = {"a", "b", "v", "g", "d", "e", "zh", "z", "i", "y", "k",
                                         "l", "m", "n", "o", "p", "r", "s", "t", "u", "f", "kh",
                                         "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"};

int kmk_g2p_translit(const char *word, char *out, size_t outlen) {
  if (!word || !out || !outlen) return KMK_SPEECH_EINVAL;
  const unsigned char *s = (const unsigned char *)word;
  size_t len = 0;
  while (*s) {
    const char *piece;
    char one[2] = {0, 0};
    if (*s < 0x80) {
      one[0] = (char)*s++;
      piece = one;
    } else {
      unsigned cp;
      s += utf8_next(s, &cp);
      if (cp >= 0x410 && cp <= 0x42F) cp += 0x20;
      if (cp == 0x401) cp = 0x451;
      if (cp == 0x451) piece = "yo";
      else if (cp >= 0x430 && cp <= 0x44F) piece = TRANSLIT[cp - 0x430];
      else return KMK_SPEECH_EINVAL; /* not Russian: no transliteration */
    }
    size_t l = strlen(piece);
    if (len + l + 1 > outlen) return KMK_SPEECH_EINVAL;
    memcpy(out + len, piece, l);
    len += l;
  }
  out[len] = '\0';
  return len ? (int)len : KMK_SPEECH_EINVAL;
}
