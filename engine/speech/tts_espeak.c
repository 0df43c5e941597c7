/* tts_espeak.c - espeak-ng TTS provider (any installed espeak-ng voice: "en-us", "en", "ru", ...).
 *
 * Owns: the process-wide espeak-ng state (espeak_Initialize with AUDIO_OUTPUT_SYNCHRONOUS, done
 * once, never terminated) and the mutex that serialises every synthesis. espeak-ng keeps the
 * selected voice, rate, pitch and synth callback in globals, so two syntheses must never overlap:
 * all calls go through g_mu. Any thread may call; calls are blocking and run one at a time.
 *
 * Streaming: in synchronous mode espeak_Synth runs the synthesis in the calling thread and calls
 * synth_cb with ESPEAK_BUF_MS-long buffers as they are produced; synth_cb forwards each buffer to
 * the caller's chunk callback and returns 1 (abort) when *cancel is set or the consumer says stop.
 * Output is 16-bit mono at the rate espeak_Initialize reports (22050 Hz).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <espeak-ng/speak_lib.h>

#include "kameko/log.h"
#include "kameko/speech.h"

#define TAG "tts.espeak"
#define ESPEAK_BUF_MS 40

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_rate_hz; /* > 0 once initialised, < 0 when initialisation failed */

typedef struct {
  kmk_tts_chunk_fn cb;
  void *ud;
  const atomic_int *cancel;
  int rc;
} espeak_req;

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static int synth_cb(short *wav, int n, espeak_EVENT *ev) {
  espeak_req *r = ev ? ev->user_data : NULL;
  if (!r) return 0;
  if (r->rc) return 1;
  if (r->cancel && atomic_load(r->cancel)) {
    r->rc = KMK_SPEECH_ECANCELED;
    return 1;
  }
  if (wav && n > 0 && r->cb(r->ud, (const int16_t *)wav, (size_t)n, g_rate_hz)) {
    r->rc = KMK_SPEECH_ESTOPPED;
    return 1;
  }
  return 0;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static int has_text(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 1;
  return 0;
}

int kmk_tts_espeak_synth(const char *text, const kmk_tts_voice *v, kmk_tts_chunk_fn cb, void *ud,
                         const atomic_int *cancel, char *err, size_t errlen) {
  if (!text || !cb) {
    set_err(err, errlen, "espeak: text and callback are required");
    return KMK_SPEECH_EINVAL;
  }
  const char *name = v && v->voice && v->voice[0] ? v->voice : "en-us";
  pthread_mutex_lock(&g_mu);
  if (g_rate_hz == 0) {
    int hz = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ESPEAK_BUF_MS, NULL,
                               espeakINITIALIZE_DONT_EXIT);
    g_rate_hz = hz > 0 ? hz : -1;
    if (hz > 0) espeak_SetSynthCallback(synth_cb);
    else KMK_ERR(TAG, "espeak_Initialize failed (%d): is espeak-ng-data installed?", hz);
  }
  if (g_rate_hz < 0) {
    pthread_mutex_unlock(&g_mu);
    set_err(err, errlen, "espeak: initialisation failed (espeak-ng-data missing?)");
    return KMK_SPEECH_ENOMODEL;
  }
  /* Select the voice even for empty text so a bad name is always reported. */
  if (espeak_SetVoiceByName(name) != EE_OK) {
    pthread_mutex_unlock(&g_mu);
    if (err && errlen) snprintf(err, errlen, "espeak: unknown voice \"%s\"", name);
    return KMK_SPEECH_EINVAL;
  }
  if (!has_text(text)) {
    pthread_mutex_unlock(&g_mu);
    return 0;
  }
  int rate = clampi(v ? v->rate_pct : 0, -50, 100);
  int pitch = clampi(v ? v->pitch_pct : 0, -50, 50);
  espeak_SetParameter(espeakRATE, clampi(espeakRATE_NORMAL * (100 + rate) / 100, 80, 450), 0);
  espeak_SetParameter(espeakPITCH, clampi(50 * (100 + pitch) / 100, 0, 100), 0);

  espeak_req req = {cb, ud, cancel, 0};
  int rc = 0;
  if (cancel && atomic_load(cancel)) {
    rc = KMK_SPEECH_ECANCELED;
  } else {
    espeak_ERROR e = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8,
                                  NULL, &req);
    if (req.rc) rc = req.rc;
    else if (e != EE_OK) {
      rc = KMK_SPEECH_EENGINE;
      if (err && errlen) snprintf(err, errlen, "espeak: synthesis failed (%d)", (int)e);
    }
  }
  pthread_mutex_unlock(&g_mu);
  if (rc == KMK_SPEECH_ECANCELED) set_err(err, errlen, "espeak: cancelled");
  else if (rc == KMK_SPEECH_ESTOPPED) set_err(err, errlen, "espeak: stopped by the consumer");
  return rc;
}

/* espeak-ng English phoneme names -> CMU phones (pocketsphinx en-us set). Unlisted names (glottal
 * stops, syllabic markers) are dropped. */
static const struct {
  const char *es, *cmu;
} ES2CMU[] = {
    {"a", "AE"},   {"a#", "AE"},    {"aa", "AA"},  {"A:", "AA"},  {"A@", "AA R"}, {"A", "AA"},
    {"@", "AH"},   {"@-", "AH"},    {"@2", "AH"},  {"@5", "AH"},  {"@L", "AH L"}, {"3", "ER"},
    {"3:", "ER"},  {"V", "AH"},     {"E", "EH"},   {"E2", "EH"},  {"e@", "EH R"}, {"eI", "EY"},
    {"I", "IH"},   {"I2", "IH"},    {"I#", "IH"},  {"i", "IY"},   {"i:", "IY"},   {"i@", "IY R"},
    {"i@3", "IY R"}, {"0", "AA"},   {"O", "AO"},   {"O:", "AO"},  {"O@", "AO R"}, {"o@", "AO R"},
    {"oU", "OW"},  {"OI", "OY"},    {"U", "UH"},   {"u:", "UW"},  {"U@", "UH R"}, {"aI", "AY"},
    {"aU", "AW"},  {"aI@", "AY ER"}, {"aI3", "AY ER"}, {"aU@", "AW ER"}, {"b", "B"}, {"d", "D"},
    {"d#", "D"},   {"D", "DH"},     {"dZ", "JH"},  {"f", "F"},    {"g", "G"},     {"h", "HH"},
    {"j", "Y"},    {"k", "K"},      {"l", "L"},    {"m", "M"},    {"n", "N"},     {"n-", "N"},
    {"N", "NG"},   {"p", "P"},      {"r", "R"},    {"r-", "R"},   {"s", "S"},     {"S", "SH"},
    {"t", "T"},    {"t#", "T"},     {"tS", "CH"},  {"T", "TH"},   {"v", "V"},     {"w", "W"},
    {"z", "Z"},    {"Z", "ZH"},     {"x", "K"},    {"l-", "L"},   {"m-", "M"},
};

int kmk_tts_espeak_phones(const char *word, const char *voice, char *out, size_t outlen) {
  if (!word || !*word || !out || !outlen) return KMK_SPEECH_EINVAL;
  pthread_mutex_lock(&g_mu);
  if (g_rate_hz == 0) {
    int hz = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ESPEAK_BUF_MS, NULL,
                               espeakINITIALIZE_DONT_EXIT);
    g_rate_hz = hz > 0 ? hz : -1;
    if (hz > 0) espeak_SetSynthCallback(synth_cb);
  }
  if (g_rate_hz < 0 || espeak_SetVoiceByName(voice ? voice : "en-us") != EE_OK) {
    pthread_mutex_unlock(&g_mu);
    return KMK_SPEECH_EINVAL;
  }
  const void *p = word;
  /* ASCII phoneme names, '_' between phonemes. */
  const char *ph = espeak_TextToPhonemes(&p, espeakCHARS_UTF8, ('_' << 8));
  char buf[512];
  snprintf(buf, sizeof buf, "%s", ph ? ph : "");
  pthread_mutex_unlock(&g_mu);
  size_t len = 0;
  int n = 0;
  out[0] = '\0';
  for (char *save = NULL, *tok = strtok_r(buf, "_ \n", &save); tok;
       tok = strtok_r(NULL, "_ \n", &save)) {
    while (*tok == '\'' || *tok == ',' || *tok == '%' || *tok == '=') tok++;
    const char *cmu = NULL;
    for (size_t i = 0; i < sizeof ES2CMU / sizeof ES2CMU[0] && !cmu; i++)
      if (!strcmp(tok, ES2CMU[i].es)) cmu = ES2CMU[i].cmu;
    if (!cmu) continue;
    size_t l = strlen(cmu);
    if (len + l + 2 > outlen) return KMK_SPEECH_EINVAL;
    if (len) out[len++] = ' ';
    memcpy(out + len, cmu, l + 1);
    len += l;
    n += 1 + (strchr(cmu, ' ') != NULL);
  }
  return n > 0 ? n : KMK_SPEECH_EINVAL;
}
