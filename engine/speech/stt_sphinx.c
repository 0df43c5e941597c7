/* stt_sphinx.c - offline STT provider on pocketsphinx (en-US), with name / wake-word recognition.
 *
 * Owns: per instance, two pocketsphinx decoders, a sphinxbase front end and the keyword table.
 *   lm  - the language-model decoder (Debian's en-us model + en-us.lm.bin + cmudict).
 *   kws - keyword-spotting search over the persona names (same acoustic model and dictionary).
 *         Every kmk_stt_sphinx_set_keywords builds both decoders afresh with the names in place
 *         (lm_decoder: nothing is ever added to a live search).
 *   fe  - computes each utterance's cepstral mean (see utterance_cmn).
 *
 * Names and wake words ("Kameko", "Камеко") are not English words; the plain en-US LM hears
 * "can make a". Design, measured by tests/unit/test_stt_keywords.c:
 *   1. Pronunciations: cmudict if the word is English, else up to three variants: the rule-based
 *      kmk_g2p reading (K AA M EH K OW) and two English letter-to-sound readings (flite cmulex
 *      K AE M EY K OW, espeak-ng en-us K AE M IY K OW). Each variant is a dictionary word
 *      "k<gen>w<i>v<j>" in both decoders.
 *   2. The LM decoder gets the variants through an interpolated names LM (share kw_lm_weight /
 *      English vocabulary, see lm_decoder), so the name competes
 *      with every English word sequence, in context: "Kameko what time is it" beats "can nato what
 *      time is it", while "I can make coffee" stays English.
 *   3. The keyword spotter runs on the same audio at the same time (kws_threshold) and acts as an
 *      acoustic veto: a name the LM chose is kept only if the spotter also fired on an overlapping
 *      stretch (the name beat a free phone loop there); otherwise it is dropped (agree()).
 *   Output uses the caller's spelling. Spotting alone (splicing every spotter hit into the LM
 *   words) was tried first: all flite hits but false alarms on "I can make coffee", "the camel can
 *   make it", at every threshold that kept the hits; the LM context is what separates them.
 * Both decoders get the same audio in 50 ms chunks (cancel is checked between chunks); a fresh
 * stream per utterance keeps frame numbers aligned.
 * Threads: one request at a time per instance, on any (worker) thread; blocking.
 *
 * Confidence: with -bestpath on, ps_get_prob() computes word posteriors on the lattice; each
 * word's posterior is exp(ps_seg_prob), the probability mass of all lattice paths through that
 * word at that time. The transcript confidence is the mean word posterior (names included, they
 * are LM words too); 0 for empty text. It is a decoder-internal posterior, not a calibrated
 * probability of correctness: on clean synthetic speech correct sentences score ~0.7-1.0,
 * garbled ones ~0.0-0.5.
 *
 * Logging: sphinxbase's global log callback is replaced once by err_cb, which forwards errors and
 * warnings to our log (warnings at debug level) and drops pocketsphinx's chatty info output.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/fe.h>
#include <sphinxbase/feat.h>
#include <sphinxbase/ngram_model.h>

#include "kameko/log.h"
#include "kameko/speech.h"

#define TAG "stt.sphinx"
#define MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#define FEED 800 /* samples per ps_process_raw call: 50 ms at 16 kHz */
#define MAX_KW 32
#define MIN_SAMPLES 1600 /* 100 ms */
#define MAX_VARIANTS 4
/* Measured on test_stt_keywords with the interpolated names LM (see lm_decoder), hits of 32 /
 * false alarms of 112: share 1000/vocab, spotter 1e-30: 24 / 3; share 100/vocab (and 30, 10) with
 * 1e-30 or 1e-25: 24 / 1 (espeak klatt "I can make coffee for everyone" -> "i Kameko ..."); share
 * 100/vocab with 1e-20: 23 / 0, but then bob's "Kameko, what is your name?" through Opus in
 * test_discord_conversation was heard as "dammit ago ..." in one of two runs (1e-30: both
 * heard). Recall wins: a missed name is a persona that ignores its caller. */
#define DEFAULT_KWS_THRESHOLD 1e-30
#define DEFAULT_KW_LM_WEIGHT 100.0 /* the names' share of the LM = this / English vocabulary */

typedef struct {
  char *spelling; /* as the caller gave it */
  char dictname[16]; /* "kmkkwN" (+ "(v)" for variants in the dict) */
} keyword;

struct kmk_stt_sphinx {
  ps_decoder_t *lm, *kws;
  char hmm[512], dict[512], lmpath[512];
  double kws_threshold, kw_lm_weight;
  keyword kw[MAX_KW];
  size_t nkw;
  mfcc_t cmninit[32]; /* the model's initial cepstral mean (-cmninit) */
  int ncmninit;
  unsigned kw_generation; /* dictionary words cannot be removed: each set gets new names */
  fe_t *fe;           /* our own front end (same parameters) for the utterance's cepstral mean */
};

/* ---- logging ---------------------------------------------------------------------------------- */

static void err_cb(void *ud, err_lvl_t lvl, const char *fmt, ...) {
  if (lvl < ERR_WARN) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  size_t l = strlen(buf);
  while (l && (buf[l - 1] == '\n' || buf[l - 1] == ' ')) buf[--l] = '\0';
  if (!l) return;
  if (lvl == ERR_WARN) KMK_DEBUG(TAG, "pocketsphinx: %s", buf);
  else KMK_ERR(TAG, "pocketsphinx: %s", buf);
}

static pthread_once_t g_log_once = PTHREAD_ONCE_INIT;
static void log_init(void) {
  err_set_logfp(NULL); /* also silences the config tables printed straight to the log file */
  err_set_callback(err_cb, NULL);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

void kmk_transcript_clear(kmk_transcript *t) {
  if (!t) return;
  free(t->text);
  memset(t, 0, sizeof *t);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- decoders --------------------------------------------------------------------------------- */

static ps_decoder_t *make_decoder(const kmk_stt_sphinx *s, const char *lm, const char *keyphrase) {
  cmd_ln_t *cfg;
  if (lm)
    cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", s->hmm, "-dict", s->dict, "-lm", lm, NULL);
  else
    cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", s->hmm, "-dict", s->dict, "-keyphrase",
                      keyphrase, NULL);
  if (!cfg) return NULL;
  ps_decoder_t *ps = ps_init(cfg);
  cmd_ln_free_r(cfg); /* ps_init retained it */
  return ps;
}

static int file_exists(const char *p) { return access(p, R_OK) == 0; }

kmk_stt_sphinx *kmk_stt_sphinx_new(const kmk_stt_sphinx_opts *opts, char *err, size_t errlen) {
  pthread_once(&g_log_once, log_init);
  const char *hmm = opts && opts->hmm_dir ? opts->hmm_dir : MODEL_DIR "/en-us";
  const char *dict = opts && opts->dict ? opts->dict : MODEL_DIR "/cmudict-en-us.dict";
  const char *lm = opts && opts->lm ? opts->lm : MODEL_DIR "/en-us.lm.bin";
  char mdef[600];
  snprintf(mdef, sizeof mdef, "%s/mdef", hmm);
  const char *missing = !file_exists(mdef) ? mdef : !file_exists(dict) ? dict
                        : !file_exists(lm) ? lm : NULL;
  if (missing) {
    set_err(err, errlen,
            "pocketsphinx model file missing: %s (install pocketsphinx-en-us or set the model "
            "paths)", missing);
    KMK_ERR(TAG, "model file missing: %s", missing);
    return NULL;
  }
  kmk_stt_sphinx *s = calloc(1, sizeof *s);
  if (!s) {
    set_err(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(s->hmm, sizeof s->hmm, "%s", hmm);
  snprintf(s->dict, sizeof s->dict, "%s", dict);
  snprintf(s->lmpath, sizeof s->lmpath, "%s", lm);
  s->kws_threshold = opts && opts->kws_threshold > 0 ? opts->kws_threshold : DEFAULT_KWS_THRESHOLD;
  s->kw_lm_weight = opts && opts->kw_lm_weight > 0 ? opts->kw_lm_weight : DEFAULT_KW_LM_WEIGHT;
  s->lm = make_decoder(s, lm, NULL);
  /* the -lm search is "_default" (ps_get_search() leaks an iterator in this pocketsphinx) */
  if (!s->lm) {
    set_err(err, errlen, "pocketsphinx failed to load the model from %s", hmm);
    free(s);
    return NULL;
  }
  s->fe = fe_init_auto_r(ps_get_config(s->lm));
  if (!s->fe) {
    set_err(err, errlen, "pocketsphinx front end failed to start");
    kmk_stt_sphinx_free(s);
    return NULL;
  }
  const char *ci = cmd_ln_str_r(ps_get_config(s->lm), "-cmninit");
  while (ci && *ci && s->ncmninit < 32) {
    char *end;
    double x = strtod(ci, &end);
    if (end == ci) break;
    s->cmninit[s->ncmninit++] = (mfcc_t)x;
    ci = *end == ',' ? end + 1 : end;
  }
  return s;
}

void kmk_stt_sphinx_free(kmk_stt_sphinx *s) {
  if (!s) return;
  if (s->lm) ps_free(s->lm);
  if (s->kws) ps_free(s->kws);
  if (s->fe) fe_free(s->fe);
  for (size_t i = 0; i < s->nkw; i++) free(s->kw[i].spelling);
  free(s);
}

/* ---- keywords --------------------------------------------------------------------------------- */

/* Pronunciation variants of one keyword, deduplicated, at most MAX_VARIANTS: the cmudict entry
 * when the word is English; otherwise the rule-based kmk_g2p reading (how the owner of a name
 * like "Kameko" says it) plus, for Latin spellings, the readings of two independent English
 * letter-to-sound rule sets, flite's cmulex and espeak-ng's en-us (how English speakers who only
 * saw the name written tend to say it: "K AE M EY K OW", "K AE M IY K OW"). A Cyrillic name
 * gets the English readings of its transliteration ("Камеко" -> "kameko"). */
typedef struct {
  char p[MAX_VARIANTS][256];
  int n;
} variants;

static void add_variant(variants *v, const char *pron) {
  for (int i = 0; i < v->n; i++)
    if (!strcmp(v->p[i], pron)) return;
  if (v->n < MAX_VARIANTS) snprintf(v->p[v->n++], sizeof v->p[0], "%s", pron);
}

static int pronounce(kmk_stt_sphinx *s, const char *w, variants *v) {
  char lower[80], buf[256];
  size_t k = 0;
  int ascii = 1;
  for (; w[k] && k < sizeof lower - 1; k++) {
    unsigned char c = (unsigned char)w[k];
    if (c >= 0x80) ascii = 0;
    lower[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  lower[k] = '\0';
  v->n = 0;
  char *dictpron = ascii ? ps_lookup_word(s->lm, lower) : NULL;
  if (dictpron) {
    add_variant(v, dictpron);
    free(dictpron);
    return 0;
  }
  if (kmk_g2p(w, buf, sizeof buf) > 0) add_variant(v, buf);
  /* English readings of the Latin spelling (of the transliteration for Cyrillic names). */
  char latin[160];
  const char *lw = ascii ? w : kmk_g2p_translit(w, latin, sizeof latin) > 0 ? latin : NULL;
  if (lw && kmk_tts_flite_lts(lw, buf, sizeof buf) > 0) add_variant(v, buf);
  if (lw && kmk_tts_espeak_phones(lw, "en-us", buf, sizeof buf) > 0) add_variant(v, buf);
  return v->n ? 0 : KMK_SPEECH_EINVAL;
}

/* The dictionary name of keyword i's variant j in set `gen`. */
static void variant_name(char *out, size_t cap, unsigned gen, size_t i, int j) {
  snprintf(out, cap, "k%uw%zuv%d", gen % 100000u, i, j);
}

/* A unigram language model (ARPA, written to a temporary file and read back) of the variants,
 * equally likely. NULL on failure. */
static ngram_model_t *names_lm(ps_decoder_t *ps, unsigned gen, const variants *pron, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) total += (size_t)pron[i].n;
  char path[] = "/tmp/kmk-names-XXXXXX";
  int fd = mkstemp(path);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    return NULL;
  }
  double lp = log10(1.0 / (double)total);
  fprintf(f, "\\data\\\nngram 1=%zu\n\n\\1-grams:\n-99.0000 <s> 0.0000\n%.4f </s> 0.0000\n", total + 2, lp);
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < pron[i].n; j++) {
      char name[32];
      variant_name(name, sizeof name, gen, i, j);
      fprintf(f, "%.4f %s 0.0000\n", lp, name);
    }
  fprintf(f, "\n\\end\\\n");
  ngram_model_t *lm = fclose(f) == 0 ? ngram_model_read(ps_get_config(ps), path, NGRAM_ARPA,
                                                         ps_get_logmath(ps))
                                     : NULL;
  unlink(path);
  return lm;
}

/* A fresh LM decoder that knows the names. The variants go into its dictionary while it has no
 * search yet; its language model is the English one interpolated with names_lm, so a name gets
 * about the probability kw_lm_weight / (English vocabulary) - enough to compete in context - and
 * English words keep theirs (scaled by 1 - that share). Adding the names to the English model
 * itself (ngram_model_add_word / ps_add_word on a live search, as this file first did) makes
 * Debian's sphinxbase 5prealpha read out of bounds: its trie LM looks up n-grams by word id and
 * the new ids lie beyond the vocabulary it was built for (valgrind: invalid reads in
 * lm_trie_score on most utterances; the third re-teaching crashed). Here no model ever sees an
 * id it was not built with: the set maps each word to each model's own ids. */
static ps_decoder_t *lm_decoder(kmk_stt_sphinx *s, unsigned gen, const variants *pron, size_t n) {
  if (!n) return make_decoder(s, s->lmpath, NULL);
  cmd_ln_t *cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", s->hmm, "-dict", s->dict, NULL);
  if (!cfg) return NULL;
  ps_decoder_t *ps = ps_init(cfg);
  cmd_ln_free_r(cfg); /* ps_init retained it */
  if (!ps) return NULL;
  int ok = 1;
  for (size_t i = 0; ok && i < n; i++)
    for (int j = 0; ok && j < pron[i].n; j++) {
      char name[32];
      variant_name(name, sizeof name, gen, i, j);
      ok = ps_add_word(ps, name, pron[i].p[j], 0) >= 0;
    }
  ngram_model_t *en = ok ? ngram_model_read(ps_get_config(ps), s->lmpath, NGRAM_AUTO, ps_get_logmath(ps)) : NULL;
  ngram_model_t *names = en ? names_lm(ps, gen, pron, n) : NULL, *set = NULL;
  if (names) {
    uint32 vocab = ngram_model_get_counts(en)[0];
    float32 share = (float32)(s->kw_lm_weight / (double)(vocab > 0 ? vocab : 1));
    if (share > 0.5f) share = 0.5f;
    ngram_model_t *models[2] = {en, names};
    char *mnames[2] = {"en", "names"};
    float32 weights[2] = {1.0f - share, share};
    set = ngram_model_set_init(ps_get_config(ps), models, mnames, weights, 2);
    if (set) { /* the set holds its own references to both models */
      ngram_model_free(en);
      ngram_model_free(names);
    }
  }
  if (set) {
    ok = ps_set_lm(ps, "_default", set) >= 0 && ps_set_search(ps, "_default") >= 0;
    ngram_model_free(set); /* the search holds its own reference */
  } else {
    if (names) ngram_model_free(names);
    if (en) ngram_model_free(en);
    ok = 0;
  }
  if (!ok) {
    ps_free(ps);
    return NULL;
  }
  return ps;
}

/* A fresh keyword spotter for the names (NULL when there are none or on failure). */
static ps_decoder_t *kws_decoder(kmk_stt_sphinx *s, unsigned gen, const variants *pron, size_t n) {
  if (!n) return NULL;
  ps_decoder_t *ps = make_decoder(s, NULL, "go");
  char path[] = "/tmp/kmk-kws-XXXXXX";
  int fd = ps ? mkstemp(path) : -1;
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  int ok = f != NULL;
  if (!f && fd >= 0) close(fd);
  for (size_t i = 0; ok && i < n; i++)
    for (int j = 0; ok && j < pron[i].n; j++) {
      char name[32];
      variant_name(name, sizeof name, gen, i, j);
      ok = ps_add_word(ps, name, pron[i].p[j], 1) >= 0;
      if (ok) fprintf(f, "%s /%g/\n", name, s->kws_threshold);
    }
  if (f) {
    ok = fclose(f) == 0 && ok;
    ok = ok && ps_set_kws(ps, "names", path) >= 0 && ps_set_search(ps, "names") >= 0;
    unlink(path);
  }
  if (!ok && ps) {
    ps_free(ps);
    ps = NULL;
  }
  return ps;
}

int kmk_stt_sphinx_set_keywords(kmk_stt_sphinx *s, const char *const *words, size_t n) {
  if (!s || (n && !words) || n > MAX_KW) return KMK_SPEECH_EINVAL;
  /* Pronunciations first, so that nothing changes on a bad word. */
  variants *pron = calloc(n ? n : 1, sizeof *pron);
  if (!pron) return KMK_SPEECH_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    const char *w = words[i];
    if (!w || !*w || strpbrk(w, " \t\r\n0123456789.,;:!?\"()[]{}<>/\\") || strlen(w) > 64)
      rc = KMK_SPEECH_EINVAL;
    else if ((rc = pronounce(s, w, &pron[i]))) KMK_WARN(TAG, "cannot pronounce keyword \"%s\"", w);
  }
  if (rc) {
    free(pron);
    return rc;
  }
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < pron[i].n; j++) KMK_DEBUG(TAG, "keyword \"%s\" variant %d = %s", words[i], j, pron[i].p[j]);
  /* Unigrams cannot be removed from a language model: each set gets fresh decoders (~0.5 s;
     callers run this on their STT thread, between utterances), and keeps the old ones on failure. */
  unsigned gen = ++s->kw_generation;
  keyword kw[MAX_KW];
  memset(kw, 0, sizeof kw);
  ps_decoder_t *lm = lm_decoder(s, gen, pron, n), *kws = kws_decoder(s, gen, pron, n);
  fe_t *fe = lm ? fe_init_auto_r(ps_get_config(lm)) : NULL;
  for (size_t i = 0; i < n; i++) {
    snprintf(kw[i].dictname, sizeof kw[i].dictname, "k%uw%zu", gen % 100000u, i);
    kw[i].spelling = strdup(words[i]);
    if (!kw[i].spelling) rc = KMK_SPEECH_ENOMEM;
  }
  free(pron);
  if (!lm || !fe || (n && !kws) || rc) {
    if (lm) ps_free(lm);
    if (kws) ps_free(kws);
    if (fe) fe_free(fe);
    for (size_t i = 0; i < n; i++) free(kw[i].spelling);
    KMK_ERR(TAG, "setting keywords failed: the previous set stays");
    return rc ? rc : KMK_SPEECH_EENGINE;
  }
  ps_free(s->lm);
  s->lm = lm;
  if (s->kws) ps_free(s->kws);
  s->kws = kws;
  fe_free(s->fe);
  s->fe = fe;
  for (size_t i = 0; i < s->nkw; i++) free(s->kw[i].spelling);
  memcpy(s->kw, kw, sizeof kw);
  s->nkw = n;
  return 0;
}

/* ---- transcription ---------------------------------------------------------------------------- */

typedef struct {
  char *word; /* owned */
  int sf, ef;
  double post; /* posterior, 0..1 */
  int is_kw;
} tword;

typedef struct {
  tword *v;
  size_t n, cap;
} tlist;

static int tl_push(tlist *l, const char *w, size_t wl, int sf, int ef, double post, int is_kw) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    tword *v = realloc(l->v, cap * sizeof *v);
    if (!v) return KMK_SPEECH_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  char *c = malloc(wl + 1);
  if (!c) return KMK_SPEECH_ENOMEM;
  memcpy(c, w, wl);
  c[wl] = '\0';
  l->v[l->n++] = (tword){c, sf, ef, post, is_kw};
  return 0;
}

static void tl_free(tlist *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].word);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Real words only: drops <s>, </s>, <sil>, [NOISE], ...; strips "(2)" variant suffixes. */
static size_t word_len(const char *w) {
  if (!w || w[0] == '<' || w[0] == '[' || w[0] == '+') return 0;
  const char *p = strchr(w, '(');
  return p ? (size_t)(p - w) : strlen(w);
}

static const keyword *find_kw(const kmk_stt_sphinx *s, const char *w, size_t wl) {
  for (size_t i = 0; i < s->nkw; i++) {
    size_t bl = strlen(s->kw[i].dictname);
    if (wl > bl && w[bl] == 'v' && !strncmp(w, s->kw[i].dictname, bl)) return &s->kw[i];
  }
  return NULL;
}

/* Keywords of earlier sets stay in the dictionary (never in the active LM, see set_keywords);
 * should one ever surface, it is not output. */
static int is_old_kw(const char *w, size_t wl) {
  size_t i = 0;
  if (wl < 6 || w[i++] != 'k') return 0;
  const char *seps = "wv";
  for (int part = 0; part < 3; part++) {
    if (i >= wl || w[i] < '0' || w[i] > '9') return 0;
    while (i < wl && w[i] >= '0' && w[i] <= '9') i++;
    if (part < 2 && (i >= wl || w[i++] != seps[part])) return 0;
  }
  return i == wl;
}

static int collect_lm(const kmk_stt_sphinx *s, ps_decoder_t *ps, tlist *out) {
  logmath_t *lmath = ps_get_logmath(ps);
  (void)ps_get_prob(ps); /* computes lattice posteriors for ps_seg_prob */
  int rc = 0;
  for (ps_seg_t *seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
    const char *w = ps_seg_word(seg);
    size_t wl = word_len(w);
    if (!wl) continue;
    int sf, ef;
    int32 a, l, b;
    ps_seg_frames(seg, &sf, &ef);
    double post = logmath_exp(lmath, ps_seg_prob(seg, &a, &l, &b));
    if (post > 1) post = 1;
    KMK_DEBUG(TAG, "lm word %.*s %d-%d post %.2f", (int)wl, w, sf, ef, post);
    const keyword *k = find_kw(s, w, wl);
    if (k) rc = tl_push(out, k->spelling, strlen(k->spelling), sf, ef, post, 1);
    else if (!is_old_kw(w, wl)) rc = tl_push(out, w, wl, sf, ef, post, 0);
    if (rc) {
      ps_seg_free(seg);
      break;
    }
  }
  return rc;
}

/* Keyword detections, at most one per overlapping stretch (the earliest-listed wins). */
static int collect_kws(kmk_stt_sphinx *s, tlist *out) {
  int rc = 0;
  for (ps_seg_t *seg = ps_seg_iter(s->kws); seg; seg = ps_seg_next(seg)) {
    const char *w = ps_seg_word(seg);
    size_t wl = word_len(w);
    int sf, ef;
    int32 a, l, b;
    ps_seg_frames(seg, &sf, &ef);
    int32 prob = ps_seg_prob(seg, &a, &l, &b);
    const keyword *k = find_kw(s, w, wl);
    if (!k) continue;
    KMK_DEBUG(TAG, "keyword %s (%s) detected at frames %d-%d, score %d", k->spelling, w, sf, ef,
              (int)prob);
    int dup = 0;
    for (size_t i = 0; i < out->n; i++)
      if (sf <= out->v[i].ef && ef >= out->v[i].sf) dup = 1;
    if (dup) continue;
    if ((rc = tl_push(out, k->spelling, strlen(k->spelling), sf, ef, 0, 1))) {
      ps_seg_free(seg);
      break;
    }
  }
  return rc;
}

/* Agreement: a keyword the LM search put in its transcript (it competed there with every English
 * word sequence, in context) is kept only when the keyword spotter also detected it at an
 * overlapping time (acoustically better than a free phone loop). Unconfirmed LM keywords are
 * dropped; spotter detections the LM did not choose are ignored. */
static int agree(tlist *lm, tlist *kws, tlist *out) {
  int rc = 0;
  for (size_t i = 0; i < lm->n && !rc; i++) {
    tword *w = &lm->v[i];
    if (w->is_kw) {
      int ok = 0;
      for (size_t k = 0; k < kws->n; k++)
        if (w->sf <= kws->v[k].ef && w->ef >= kws->v[k].sf) ok = 1;
      if (!ok) {
        KMK_DEBUG(TAG, "LM keyword %s at %d-%d not confirmed by the spotter: dropped", w->word,
                  w->sf, w->ef);
        continue;
      }
    }
    rc = tl_push(out, w->word, strlen(w->word), w->sf, w->ef, w->post, w->is_kw);
  }
  return rc;
}

static int is_silent(const int16_t *pcm, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)pcm[i] * pcm[i];
  return sqrt(sum / (double)n) < 8.0; /* ~ -72 dBFS: digital silence or dither only */
}

static int feed(kmk_stt_sphinx *s, const int16_t *pcm, size_t n, const atomic_int *cancel) {
  int use_kws = s->kws && s->nkw;
  for (size_t off = 0; off < n; off += FEED) {
    if (cancel && atomic_load(cancel)) return KMK_SPEECH_ECANCELED;
    size_t m = n - off < FEED ? n - off : FEED;
    if (ps_process_raw(s->lm, pcm + off, m, FALSE, FALSE) < 0) return KMK_SPEECH_EENGINE;
    if (use_kws && ps_process_raw(s->kws, pcm + off, m, FALSE, FALSE) < 0)
      return KMK_SPEECH_EENGINE;
  }
  return 0;
}

/* Cepstral mean normalisation. The en-us model was trained with batch CMN (the mean of each whole
 * utterance), but audio fed in chunks makes sphinxbase switch to live CMN, whose running mean
 * starts from wherever the previous utterance (often another speaker) left it. We have the whole
 * utterance, so compute its mean over the speech frames with our own front end and start both
 * decoders from it: results match batch CMN closely and never depend on earlier utterances.
 * Falls back to the model's -cmninit for very short input. */
static int utterance_cmn(kmk_stt_sphinx *s, const int16_t *pcm, size_t n, mfcc_t *mean,
                         const atomic_int *cancel) {
  int veclen = fe_get_output_size(s->fe);
  if (veclen > 32 || veclen > s->ncmninit) return -1;
  enum { NF = 64 };
  mfcc_t cepbuf[NF][32];
  mfcc_t *rows[NF];
  for (int i = 0; i < NF; i++) rows[i] = cepbuf[i];
  double sum[32] = {0};
  long frames = 0;
  fe_start_stream(s->fe);
  fe_start_utt(s->fe);
  const int16 *p = pcm;
  size_t left = n;
  while (left) {
    if (cancel && atomic_load(cancel)) return KMK_SPEECH_ECANCELED;
    int32 nf = NF;
    size_t before = left;
    if (fe_process_frames(s->fe, &p, &left, rows, &nf, NULL) < 0) return -1;
    for (int f = 0; f < nf; f++, frames++)
      for (int c = 0; c < veclen; c++) sum[c] += rows[f][c];
    if (nf == 0 && left == before) break;
  }
  int32 nf = 0;
  fe_end_utt(s->fe, rows[0], &nf);
  for (int f = 0; f < nf; f++, frames++)
    for (int c = 0; c < veclen; c++) sum[c] += rows[0][c];
  for (int c = 0; c < veclen; c++)
    mean[c] = frames >= 20 ? (mfcc_t)(sum[c] / frames) : s->cmninit[c];
  return 0;
}

static void set_cmn(ps_decoder_t *ps, const mfcc_t *mean) {
  feat_t *fe = ps_get_feat(ps);
  if (fe && fe->cmn_struct) cmn_live_set(fe->cmn_struct, mean);
}

int kmk_stt_sphinx_transcribe(kmk_stt_sphinx *s, const int16_t *pcm16k, size_t n,
                              const char *lang_hint, const atomic_int *cancel,
                              kmk_transcript *out, char *err, size_t errlen) {
  if (!s || !out || (n && !pcm16k)) {
    set_err(err, errlen, "stt: bad arguments");
    return KMK_SPEECH_EINVAL;
  }
  memset(out, 0, sizeof *out);
  if (lang_hint && *lang_hint && strncmp(lang_hint, "en", 2))
    KMK_DEBUG(TAG, "language hint \"%s\" ignored: this model is English only", lang_hint);
  if (cancel && atomic_load(cancel)) {
    set_err(err, errlen, "stt: cancelled");
    return KMK_SPEECH_ECANCELED;
  }
  double t0 = now_ms();
  double audio_s = (double)n / 16000.0;
  /* Under 100 ms nothing can be a word (and the decoder logs errors on a few frames). */
  if (n < MIN_SAMPLES || is_silent(pcm16k, n)) {
    out->text = strdup("");
    if (!out->text) return KMK_SPEECH_ENOMEM;
    snprintf(out->lang, sizeof out->lang, "en-US");
    out->audio_s = audio_s;
    out->decode_ms = now_ms() - t0;
    return 0;
  }
  int use_kws = s->kws && s->nkw;
  /* A fresh stream per utterance: frame numbers start at 0 in both decoders, and with
   * utterance_cmn a result does not depend on earlier utterances. */
  mfcc_t mean[32];
  int crc = utterance_cmn(s, pcm16k, n, mean, cancel);
  if (crc == KMK_SPEECH_ECANCELED) {
    set_err(err, errlen, "stt: cancelled");
    return crc;
  }
  ps_start_stream(s->lm);
  if (crc == 0) set_cmn(s->lm, mean);
  if (use_kws) {
    ps_start_stream(s->kws);
    if (crc == 0) set_cmn(s->kws, mean);
  }
  if (ps_start_utt(s->lm) < 0 || (use_kws && ps_start_utt(s->kws) < 0)) {
    set_err(err, errlen, "stt: pocketsphinx could not start an utterance");
    return KMK_SPEECH_EENGINE;
  }
  int rc = feed(s, pcm16k, n, cancel);
  ps_end_utt(s->lm);
  if (use_kws) ps_end_utt(s->kws);
  if (rc) {
    set_err(err, errlen, rc == KMK_SPEECH_ECANCELED ? "stt: cancelled" : "stt: decoding failed");
    return rc;
  }
  tlist lm = {0}, kws = {0}, all = {0};
  rc = collect_lm(s, s->lm, &lm);
  if (!rc && use_kws) rc = collect_kws(s, &kws);
  if (!rc) rc = agree(&lm, &kws, &all);
  size_t len = 1;
  for (size_t i = 0; i < all.n; i++) len += strlen(all.v[i].word) + 1;
  char *text = rc ? NULL : malloc(len);
  double sum = 0;
  int cnt = 0;
  if (text) {
    size_t p = 0;
    for (size_t i = 0; i < all.n; i++) {
      size_t wl = strlen(all.v[i].word);
      if (p) text[p++] = ' ';
      memcpy(text + p, all.v[i].word, wl);
      p += wl;
      if (all.v[i].post >= 0) {
        sum += all.v[i].post;
        cnt++;
      }
    }
    text[p] = '\0';
  } else if (!rc) {
    rc = KMK_SPEECH_ENOMEM;
  }
  tl_free(&lm);
  tl_free(&kws);
  tl_free(&all);
  if (rc) {
    free(text);
    set_err(err, errlen, "stt: out of memory");
    return rc;
  }
  out->text = text;
  snprintf(out->lang, sizeof out->lang, "en-US");
  out->confidence = text[0] ? (cnt ? (float)(sum / cnt) : 0.5f) : 0.0f;
  out->audio_s = audio_s;
  out->decode_ms = now_ms() - t0;
  return 0;
}
