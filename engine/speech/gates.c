/* gates.c - hallucination gates for cloud Whisper transcripts: audio too short/quiet to send,
 * segment scores (no_speech_prob, avg_logprob, compression_ratio), known artefact phrases per
 * language (English, Russian), and echo of the bot's own recent speech.
 *
 * Pure functions plus a bounded ring of recent bot lines (kmk_echo_memory, owned by the caller).
 * Any thread; no globals except the constant built-in phrase tables. Lists edited in Lua are
 * passed in through kmk_gate_opts.lists and replace the built-in ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/cloud.h"

static const char *REASONS[KMK_GATE__COUNT] = {
    "pass", "too_short", "too_quiet", "empty", "no_speech",
    "low_logprob", "compression", "known_phrase", "echo",
};

const char *kmk_gate_reason_name(kmk_gate_reason r) {
  return (unsigned)r < KMK_GATE__COUNT ? REASONS[r] : "unknown";
}

void kmk_gate_opts_default(kmk_gate_opts *o) {
  o->lists = NULL;
  o->n_lists = 0;
  o->min_speech_s = 0.3;
  o->min_rms_dbfs = -50;
  o->max_no_speech_prob = 0.6;
  o->min_avg_logprob = -1.0;
  o->max_compression = 2.4;
  o->echo_window_s = 20;
  o->echo_similarity = 0.8;
}

kmk_gate_reason kmk_gate_audio(const kmk_gate_opts *o, const int16_t *pcm, size_t n,
                               int sample_rate, double *rms_dbfs_out) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
  double rms = n ? sqrt(sum / (double)n) / 32768.0 : 0;
  double db = rms > 0 ? 20 * log10(rms) : -120;
  if (rms_dbfs_out) *rms_dbfs_out = db;
  if (sample_rate <= 0 || (double)n / sample_rate < o->min_speech_s) return KMK_GATE_TOO_SHORT;
  if (db < o->min_rms_dbfs) return KMK_GATE_TOO_QUIET;
  return KMK_GATE_PASS;
}

/* ---- normalisation: lowercase (ASCII, Cyrillic), punctuation -> space, spaces collapsed ----- */

static size_t utf8_next(const unsigned char *s, unsigned *cp) {
  if (s[0] < 0x80) return *cp = s[0], 1;
  if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80)
    return *cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu), 2;
  if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80)
    return *cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu), 3;
  if ((s[0] & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
      (s[3] & 0xC0) == 0x80)
    return *cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) |
                 (s[3] & 0x3Fu), 4;
  return *cp = 0xFFFD, 1;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), 2;
  if (cp < 0x10000)
    return o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
           o[2] = (char)(0x80 | (cp & 0x3F)), 3;
  return o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
         o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F)), 4;
}

static int is_letter_or_digit(unsigned cp) {
  return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
         (cp >= 0xC0 && cp < 0x2000 && cp != 0xD7 && cp != 0xF7) || cp >= 0x3040;
}

/* Writes the normalised form of s into out (malloc'd, caller frees). */
static char *normalise(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n * 3 + 4); /* every output char comes from an input char of >= 1/3 its size */
  if (!out) return NULL;
  size_t j = 0;
  int space = 1;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned cp;
    size_t l = utf8_next(p, &cp);
    for (size_t k = 0; k < l; k++)
      if (!p[k]) l = k ? k : 1;
    p += l;
    if (cp == 0xFFFD) cp = ' '; /* invalid UTF-8: a separator */
    if (cp >= 'A' && cp <= 'Z') cp += 32;
    else if (cp >= 0x410 && cp <= 0x42F) cp += 32; /* А-Я */
    else if (cp == 0x401) cp = 0x451;              /* Ё */
    if (cp == 0x451) cp = 0x435;                   /* ё -> е */
    if (cp == '\'' || cp == 0x2019) continue;      /* don't -> dont */
    if (!is_letter_or_digit(cp)) {
      if (!space) out[j++] = ' ', space = 1;
      continue;
    }
    j += put_utf8(out + j, cp);
    space = 0;
  }
  while (j > 0 && out[j - 1] == ' ') j--;
  out[j] = 0;
  return out;
}

/* ---- known artefacts ---------------------------------------------------------------------- */

static const char *const EN_EXACT[] = {
    "thank you for watching", "thanks for watching", "thank you so much for watching",
    "thank you for watching and see you next time", "please subscribe", "like and subscribe",
    "dont forget to subscribe", "see you in the next video", "see you next time", "you",
    "bye bye", "music", "applause", "silence", "the end", NULL};
static const char *const EN_CONTAINS[] = {
    "subtitles by the amara org community", "amara org", "subtitles by", "captions by",
    "transcribed by", "thanks for watching", "thank you for watching", "subscribe to my channel",
    "please subscribe", "www ", NULL};
static const char *const RU_EXACT[] = {
    "продолжение следует", "спасибо за просмотр", "спасибо за внимание", "до новых встреч",
    "подписывайтесь на канал", "ставьте лайки", "музыка", "аплодисменты", "конец", NULL};
static const char *const RU_CONTAINS[] = {
    "субтитры сделал", "субтитры создавал", "субтитры подготовил", "редактор субтитров",
    "корректор субтитров", "продолжение следует", "спасибо за просмотр",
    "подписывайтесь на канал", "ставьте лайки", "dimatorzok", "игорь негода", NULL};

static const kmk_gate_list TABLES[] = {
    {"en", EN_EXACT, EN_CONTAINS},
    {"ru", RU_EXACT, RU_CONTAINS},
};

const kmk_gate_list *kmk_gate_default_lists(int *n) {
  if (n) *n = (int)(sizeof TABLES / sizeof TABLES[0]);
  return TABLES;
}

/* Entries are normalised too, so lists edited by people may use any case and punctuation. */
static int entry_match(const char *entry, const char *norm, int exact) {
  char *e = normalise(entry);
  if (!e) return 0;
  int hit = e[0] && (exact ? strcmp(norm, e) == 0 : strstr(norm, e) != NULL);
  free(e);
  return hit;
}

static int table_match(const kmk_gate_list *t, const char *norm) {
  for (const char *const *p = t->exact; p && *p; p++)
    if (entry_match(*p, norm, 1)) return 1;
  for (const char *const *p = t->contains; p && *p; p++)
    if (entry_match(*p, norm, 0)) return 1;
  return 0;
}

/* Text entirely in [brackets], (parentheses), *asterisks* or music notes: a sound caption. */
static int is_caption(const char *s) {
  while (*s == ' ') s++;
  size_t n = strlen(s);
  while (n && s[n - 1] == ' ') n--;
  if (n < 2) return 0;
  if ((s[0] == '[' && s[n - 1] == ']') || (s[0] == '(' && s[n - 1] == ')') ||
      (s[0] == '*' && s[n - 1] == '*'))
    return 1;
  /* only music notes and spaces */
  const unsigned char *p = (const unsigned char *)s;
  int notes = 0;
  while (*p) {
    unsigned cp;
    size_t l = utf8_next(p, &cp);
    if (cp == 0x266A || cp == 0x266B || cp == 0x266C) notes++;
    else if (cp != ' ') return 0;
    p += l;
    if (p > (const unsigned char *)s + n) break;
  }
  return notes > 0;
}

static int known_in(const kmk_gate_list *lists, int n, const char *text, const char *lang) {
  if (!text) return 0;
  if (is_caption(text)) return 1;
  char *norm = normalise(text);
  if (!norm) return 0;
  int hit = 0;
  for (int i = 0; i < n && !hit; i++)
    if (!lang || !*lang || !lists[i].lang || strncmp(lang, lists[i].lang, 2) == 0)
      hit = table_match(&lists[i], norm);
  free(norm);
  return hit;
}

int kmk_gate_known_phrase(const char *text, const char *lang) {
  return known_in(TABLES, (int)(sizeof TABLES / sizeof TABLES[0]), text, lang);
}

int kmk_gate_known_phrase_in(const kmk_gate_opts *o, const char *text, const char *lang) {
  if (!o || !o->lists) return kmk_gate_known_phrase(text, lang);
  return known_in(o->lists, o->n_lists, text, lang);
}

kmk_gate_reason kmk_gate_transcript(const kmk_gate_opts *o, const char *text, const char *lang,
                                    const kmk_groq_segment *segs, int n_segs) {
  char *norm = normalise(text ? text : "");
  int empty = !norm || !norm[0];
  free(norm);
  if (empty) return KMK_GATE_EMPTY;
  if (kmk_gate_known_phrase_in(o, text, lang)) return KMK_GATE_KNOWN_PHRASE;
  if (n_segs > 0) {
    double w = 0, nsp = 0, lp = 0, cr = 0;
    for (int i = 0; i < n_segs; i++) {
      double d = segs[i].end - segs[i].start;
      if (!(d > 0.05)) d = 0.05;
      w += d;
      nsp += d * segs[i].no_speech_prob;
      lp += d * segs[i].avg_logprob;
      if (segs[i].compression_ratio > cr) cr = segs[i].compression_ratio;
    }
    nsp /= w;
    lp /= w;
    /* Whisper's own rule (no_speech above AND weak logprob), plus a very confident no_speech */
    if ((nsp > o->max_no_speech_prob && lp < -0.5) || nsp > 0.9) return KMK_GATE_NO_SPEECH;
    if (lp < o->min_avg_logprob) return KMK_GATE_LOW_LOGPROB;
    if (cr > o->max_compression) return KMK_GATE_COMPRESSION;
  }
  return KMK_GATE_PASS;
}

/* ---- echo of the bot's own speech --------------------------------------------------------- */

void kmk_echo_init(kmk_echo_memory *m) { memset(m, 0, sizeof *m); }

void kmk_echo_add(kmk_echo_memory *m, const char *bot_text, double now) {
  if (!bot_text) return;
  char *norm = normalise(bot_text);
  if (!norm) return;
  int slot = (m->head + m->n) % KMK_ECHO_LINES;
  if (m->n == KMK_ECHO_LINES) { /* full: drop the oldest */
    slot = m->head;
    free(m->text[slot]);
    m->head = (m->head + 1) % KMK_ECHO_LINES;
  } else {
    m->n++;
  }
  m->text[slot] = norm;
  m->t[slot] = now;
}

void kmk_echo_free(kmk_echo_memory *m) {
  for (int i = 0; i < KMK_ECHO_LINES; i++) free(m->text[i]);
  memset(m, 0, sizeof *m);
}

/* Share of the words of `a` that occur as whole words in `b` (both normalised). */
static double word_share(const char *a, const char *b, int *n_words) {
  int total = 0, found = 0;
  size_t bl = strlen(b);
  for (const char *p = a; *p;) {
    const char *e = strchr(p, ' ');
    size_t wl = e ? (size_t)(e - p) : strlen(p);
    total++;
    for (const char *s = b; wl && s + wl <= b + bl; s++) {
      if ((s == b || s[-1] == ' ') && strncmp(s, p, wl) == 0 && (s[wl] == 0 || s[wl] == ' ')) {
        found++;
        break;
      }
    }
    p += wl;
    while (*p == ' ') p++;
  }
  *n_words = total;
  return total ? (double)found / total : 0;
}

int kmk_echo_match(const kmk_echo_memory *m, const kmk_gate_opts *o, const char *text, double now) {
  char *norm = normalise(text ? text : "");
  if (!norm || !norm[0]) {
    free(norm);
    return 0;
  }
  int hit = 0;
  for (int k = 0; k < m->n && !hit; k++) {
    int i = (m->head + k) % KMK_ECHO_LINES;
    if (!m->text[i] || now - m->t[i] > o->echo_window_s) continue;
    int nw;
    double share = word_share(norm, m->text[i], &nw);
    if (nw >= 3 && share >= o->echo_similarity) hit = 1;
    else if (strlen(norm) >= 12 && strstr(m->text[i], norm)) hit = 1;
  }
  free(norm);
  return hit;
}
