/* tts_flite.c - flite TTS provider (English only; voices cmu_us_slt "slt" and cmu_us_kal16 "kal16").
 *
 * Owns: the process-wide flite state (flite_init, the two registered voices, created once and
 * never freed) and the mutex that serialises every synthesis, because flite voices carry mutable
 * features that we change per request (rate, pitch, streaming callback).
 * Threads: any thread may call kmk_tts_flite_synth; calls run one at a time (blocking).
 *
 * Streaming: the text is cut into sentences here; each sentence is one flite utterance, and flite's
 * audio streaming callback (asi->asc) hands us samples while the waveform is generated, so the
 * first chunk leaves before the sentence (let alone the text) is finished. Cancel is checked in
 * every streaming callback (returning CST_AUDIO_STREAM_STOP) and between sentences.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flite/flite.h>

#include "kameko/log.h"
#include "kameko/speech.h"

/* Exported by libflite_cmu_us_*; not declared in any installed header. */
cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);

#define TAG "tts.flite"
#define FLITE_CHUNK 800 /* samples per streamed chunk: 50 ms at 16 kHz */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_inited;
static cst_voice *g_slt, *g_kal;
static float g_slt_f0, g_kal_f0; /* the voices' own int_f0_target_mean */

typedef struct {
  kmk_tts_chunk_fn cb;
  void *ud;
  const atomic_int *cancel;
  int rc; /* 0, KMK_SPEECH_ECANCELED or KMK_SPEECH_ESTOPPED once stopped */
} flite_req;

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static int is_cancelled(const atomic_int *c) { return c && atomic_load(c) != 0; }

static int stream_cb(const cst_wave *w, int start, int size, int last,
                     cst_audio_streaming_info *asi) {
  flite_req *r = asi->userdata;
  if (r->rc) return CST_AUDIO_STREAM_STOP;
  if (is_cancelled(r->cancel)) {
    r->rc = KMK_SPEECH_ECANCELED;
    return CST_AUDIO_STREAM_STOP;
  }
  if (size > 0 && r->cb(r->ud, w->samples + start, (size_t)size, w->sample_rate)) {
    r->rc = KMK_SPEECH_ESTOPPED;
    return CST_AUDIO_STREAM_STOP;
  }
  return CST_AUDIO_STREAM_CONT;
}

static void init_once(void) {
  if (g_inited) return;
  flite_init();
  g_slt = register_cmu_us_slt(NULL);
  g_kal = register_cmu_us_kal16(NULL);
  if (g_slt) g_slt_f0 = get_param_float(g_slt->features, "int_f0_target_mean", 100.0f);
  if (g_kal) g_kal_f0 = get_param_float(g_kal->features, "int_f0_target_mean", 100.0f);
  g_inited = 1;
}

/* UTF-8 Cyrillic letters are U+0400..U+04FF: lead bytes 0xD0..0xD3. */
static int has_cyrillic(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p >= 0xD0 && *p <= 0xD3 && (p[1] & 0xC0) == 0x80) return 1;
  return 0;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Length of the next sentence starting at s: through . ! ? ; or a newline followed by space/end. */
static size_t next_sentence(const char *s) {
  size_t i = 0;
  for (; s[i]; i++) {
    char c = s[i];
    if (c == '\n') return i + 1;
    if ((c == '.' || c == '!' || c == '?' || c == ';') &&
        (s[i + 1] == '\0' || isspace((unsigned char)s[i + 1])))
      return i + 1;
  }
  return i;
}

static int has_word_chars(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (isalnum((unsigned char)s[i]) || ((unsigned char)s[i] & 0x80)) return 1;
  return 0;
}

int kmk_tts_flite_synth(const char *text, const kmk_tts_voice *v, kmk_tts_chunk_fn cb, void *ud,
                        const atomic_int *cancel, char *err, size_t errlen) {
  if (!text || !cb) {
    set_err(err, errlen, "flite: text and callback are required");
    return KMK_SPEECH_EINVAL;
  }
  const char *name = v && v->voice && v->voice[0] ? v->voice : "slt";
  int use_kal;
  if (!strcmp(name, "slt") || !strcmp(name, "cmu_us_slt")) {
    use_kal = 0;
  } else if (!strcmp(name, "kal16") || !strcmp(name, "cmu_us_kal16")) {
    use_kal = 1;
  } else {
    if (err && errlen)
      snprintf(err, errlen, "flite: unknown voice \"%s\" (English only: \"slt\" or \"kal16\")",
               name);
    return KMK_SPEECH_EINVAL;
  }
  if (has_cyrillic(text)) {
    set_err(err, errlen, "flite: English only; Cyrillic text needs espeak-ng (voice \"ru\")");
    return KMK_SPEECH_EINVAL;
  }
  if (!has_word_chars(text, strlen(text))) return 0;
  if (is_cancelled(cancel)) {
    set_err(err, errlen, "flite: cancelled");
    return KMK_SPEECH_ECANCELED;
  }

  pthread_mutex_lock(&g_mu);
  init_once();
  cst_voice *voice = use_kal ? g_kal : g_slt;
  if (!voice) {
    pthread_mutex_unlock(&g_mu);
    set_err(err, errlen, "flite: voice failed to register");
    return KMK_SPEECH_ENOMODEL;
  }
  int rate = clampi(v ? v->rate_pct : 0, -50, 100);
  int pitch = clampi(v ? v->pitch_pct : 0, -50, 50);
  float f0 = use_kal ? g_kal_f0 : g_slt_f0;
  /* duration_stretch > 1 is slower: +100 % rate halves durations. */
  feat_set_float(voice->features, "duration_stretch", 100.0f / (float)(100 + rate));
  feat_set_float(voice->features, "int_f0_target_mean", f0 * (float)(100 + pitch) / 100.0f);

  flite_req req = {cb, ud, cancel, 0};
  cst_audio_streaming_info *asi = new_audio_streaming_info();
  asi->min_buffsize = FLITE_CHUNK;
  asi->asc = stream_cb;
  asi->userdata = &req;
  feat_set(voice->features, "streaming_info", audio_streaming_info_val(asi));

  int rc = 0;
  const char *p = text;
  while (*p && !rc) {
    size_t len = next_sentence(p);
    if (has_word_chars(p, len)) {
      char *sent = malloc(len + 1);
      if (!sent) {
        rc = KMK_SPEECH_ENOMEM;
        break;
      }
      memcpy(sent, p, len);
      sent[len] = '\0';
      cst_utterance *u = flite_synth_text(sent, voice);
      free(sent);
      if (!u && !req.rc) {
        rc = KMK_SPEECH_EENGINE;
        set_err(err, errlen, "flite: synthesis failed");
      }
      if (u) delete_utterance(u);
    }
    p += len;
    if (req.rc) rc = req.rc;
    else if (is_cancelled(cancel)) rc = KMK_SPEECH_ECANCELED;
  }
  /* The feature owns asi (deleted with the val); leave the voice with no callback and defaults. */
  feat_remove(voice->features, "streaming_info");
  feat_set_float(voice->features, "duration_stretch", 1.0f);
  feat_set_float(voice->features, "int_f0_target_mean", f0);
  pthread_mutex_unlock(&g_mu);
  if (rc == KMK_SPEECH_ECANCELED) set_err(err, errlen, "flite: cancelled");
  else if (rc == KMK_SPEECH_ESTOPPED) set_err(err, errlen, "flite: stopped by the consumer");
  return rc;
}

/* Forward declaration: exported by libflite_cmulex, not declared in an installed header. */
cst_lexicon *cmu_lex_init(void);

int kmk_tts_flite_lts(const char *word, char *out, size_t outlen) {
  if (!word || !out || !outlen || !*word || has_cyrillic(word)) return KMK_SPEECH_EINVAL;
  char lower[64];
  size_t k = 0;
  for (const unsigned char *p = (const unsigned char *)word; *p; p++) {
    if (*p >= 0x80) return KMK_SPEECH_EINVAL;
    if (isalpha(*p) && k < sizeof lower - 1) lower[k++] = (char)tolower(*p);
  }
  lower[k] = '\0';
  if (!k) return KMK_SPEECH_EINVAL;
  pthread_mutex_lock(&g_mu);
  init_once();
  cst_lexicon *lex = cmu_lex_init();
  cst_val *ph = lex ? lex_lookup(lex, lower, NULL, NULL) : NULL;
  int n = 0;
  size_t len = 0;
  out[0] = '\0';
  for (const cst_val *v = ph; v && n >= 0; v = val_cdr(v)) {
    const char *p = val_string(val_car(v));
    char up[8];
    size_t l = 0;
    for (; p[l] && l < sizeof up - 1 && !isdigit((unsigned char)p[l]); l++)
      up[l] = (char)toupper((unsigned char)p[l]);
    up[l] = '\0';
    if (!l || !strcmp(up, "PAU")) continue;
    /* flite's phone set has two the pocketsphinx model lacks. */
    if (!strcmp(up, "AX")) memcpy(up, "AH", 3), l = 2;
    else if (!strcmp(up, "AXR")) memcpy(up, "ER", 3), l = 2;
    if (len + l + 2 > outlen) {
      n = KMK_SPEECH_EINVAL;
      break;
    }
    if (len) out[len++] = ' ';
    memcpy(out + len, up, l + 1);
    len += l;
    n++;
  }
  if (ph) delete_val(ph);
  pthread_mutex_unlock(&g_mu);
  return n > 0 ? n : KMK_SPEECH_EINVAL;
}
