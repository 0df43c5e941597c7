/* speech.h - offline speech providers: pocketsphinx STT (with keyword/name spotting), espeak-ng
 * and flite TTS, and the small rule-based grapheme-to-phoneme used for names.
 *
 * Threading: every function here is BLOCKING and meant for a provider worker thread, never the
 * loop thread. One request at a time per kmk_stt_sphinx instance. The TTS engines keep global
 * state inside their libraries; kmk_tts_espeak_synth and kmk_tts_flite_synth serialise all calls
 * with one process-wide mutex per engine, so any thread may call them, but two calls of the same
 * engine never run in parallel (a second caller waits).
 *
 * Cancellation: every request takes `const atomic_int *cancel` (may be NULL). When *cancel becomes
 * nonzero the request stops within about 50 ms of audio work and returns KMK_SPEECH_ECANCELED.
 *
 * Errors are negative ints (KMK_SPEECH_E*); `err` (may be NULL) receives a one-line reason.
 * A failed call never calls its chunk callback after reporting failure.
 */
#ifndef KAMEKO_SPEECH_H
#define KAMEKO_SPEECH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
  KMK_SPEECH_OK = 0,
  KMK_SPEECH_EINVAL = -1,    /* bad argument (unknown voice, NULL pointer, language unsupported) */
  KMK_SPEECH_ENOMODEL = -2,  /* model / voice data missing on disk */
  KMK_SPEECH_ENOMEM = -3,
  KMK_SPEECH_EENGINE = -4,   /* the underlying library reported a failure */
  KMK_SPEECH_ECANCELED = -5, /* *cancel was set; partial output (if any) must be discarded */
  KMK_SPEECH_ESTOPPED = -6,  /* the chunk callback returned nonzero */
};

/* ---- transcripts ---------------------------------------------------------------------------- */

typedef struct {
  char *text;       /* owned, malloc'd, UTF-8, never NULL after a successful transcribe ("" = none) */
  char lang[8];     /* BCP-47-ish language tag of the result, e.g. "en-US" */
  float confidence; /* 0..1, see the provider for how it is derived; 0 for empty text */
  double audio_s;   /* seconds of audio decoded */
  double decode_ms; /* wall time spent decoding */
} kmk_transcript;

/* Frees t->text and zeroes *t. Safe on a zeroed struct. */
void kmk_transcript_clear(kmk_transcript *t);

/* ---- STT: pocketsphinx ---------------------------------------------------------------------- */

typedef struct kmk_stt_sphinx kmk_stt_sphinx;

typedef struct {
  const char *hmm_dir;  /* acoustic model; NULL = /usr/share/pocketsphinx/model/en-us/en-us */
  const char *dict;     /* NULL = /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict */
  const char *lm;       /* NULL = /usr/share/pocketsphinx/model/en-us/en-us.lm.bin */
  double kws_threshold; /* keyword-spotter threshold (0 = 1e-30, measured: see stt_sphinx.c) */
  double kw_lm_weight;  /* names' LM share = this / English vocabulary (0 = 100, measured) */
} kmk_stt_sphinx_opts;

/* opts may be NULL (all defaults). Returns NULL and fills err when a model file is missing or the
 * decoder cannot start. The caller owns the result; free with kmk_stt_sphinx_free. */
kmk_stt_sphinx *kmk_stt_sphinx_new(const kmk_stt_sphinx_opts *opts, char *err, size_t errlen);
void kmk_stt_sphinx_free(kmk_stt_sphinx *s);

/* Transcribes one finished utterance: 16 kHz mono int16 PCM (borrowed for the call). lang_hint may
 * be NULL; only English is supported, other hints are logged and decoded as English. On success
 * *out is filled (caller clears it with kmk_transcript_clear); on failure *out is left zeroed.
 * Empty, silent (RMS below ~-72 dBFS) or < 100 ms input yields text "" and returns 0. */
int kmk_stt_sphinx_transcribe(kmk_stt_sphinx *s, const int16_t *pcm16k, size_t n,
                              const char *lang_hint, const atomic_int *cancel,
                              kmk_transcript *out, char *err, size_t errlen);

/* Sets the names / wake words to recognise (replaces the previous set; n = 0 clears it). Words may
 * be Latin or Cyrillic, one word each (no spaces), at most 32. Each gets pronunciations (cmudict
 * if the word is English, else kmk_g2p plus English readings), joins the language model as a
 * unigram and is also spotted by a keyword search run on the same audio; a name appears in the
 * transcript, spelled as given here, only when both agree (see stt_sphinx.c). Returns 0 or a
 * negative error: KMK_SPEECH_EINVAL (a word with spaces, digits or punctuation, nothing
 * pronounceable, n > 32) or an engine failure changes nothing. Strings are copied. Each call
 * builds fresh decoders (~0.5 s): call it on persona changes, not per utterance, on the thread
 * that transcribes (not the loop). */
int kmk_stt_sphinx_set_keywords(kmk_stt_sphinx *s, const char *const *words, size_t n);

/* ---- grapheme-to-phoneme -------------------------------------------------------------------- */

/* Rule-based pronunciation of one Latin or Cyrillic word as CMU phones without stress
 * ("kameko" -> "K AA M EH K OW", "Камеко" -> "K AA M EH K OW"). Writes a NUL-terminated,
 * space-separated phone string into out. Returns the number of phones (> 0), or KMK_SPEECH_EINVAL
 * when the word has no letters it can pronounce or out is too small. Pure; any thread. */
int kmk_g2p(const char *word, char *out, size_t outlen);

/* Transliterates Russian Cyrillic to plain Latin letters ("Камеко" -> "kameko"); ASCII is copied.
 * Returns the output length, or KMK_SPEECH_EINVAL for other scripts / a too small buffer. */
int kmk_g2p_translit(const char *word, char *out, size_t outlen);

/* How flite's English lexicon and letter-to-sound rules read a word (lowercased, ASCII letters
 * only), as CMU phones without stress: the pronunciation an English reader is likely to use for a
 * foreign name ("kameko" -> something like "K AE M EH K OW"). Same return convention as kmk_g2p.
 * Takes the flite mutex; any thread. */
int kmk_tts_flite_lts(const char *word, char *out, size_t outlen);

/* How espeak-ng's rules for `voice` (NULL = "en-us") read a word, mapped to CMU phones without
 * stress ("kameko" -> "K AE M IY K OW"). Same return convention as kmk_g2p. Takes the espeak
 * mutex; any thread. */
int kmk_tts_espeak_phones(const char *word, const char *voice, char *out, size_t outlen);

/* ---- TTS ------------------------------------------------------------------------------------ */

/* The callback gets consecutive mono int16 chunks (pcm borrowed for the call only); return nonzero
 * to stop the synthesis (the synth call then returns KMK_SPEECH_ESTOPPED). */
typedef int (*kmk_tts_chunk_fn)(void *ud, const int16_t *pcm, size_t n, int sample_rate);

typedef struct {
  const char *voice; /* espeak: "en-us", "en", "ru", ... (NULL = "en-us");
                        flite: "slt" (NULL = "slt") or "kal16" */
  int rate_pct;      /* -50..+100, 0 = the voice's default speed; clamped */
  int pitch_pct;     /* -50..+50, 0 = the voice's default pitch; clamped */
} kmk_tts_voice;

/* espeak-ng, 22050 Hz. Text is UTF-8 (v may be NULL = defaults). Empty text: returns 0 without
 * calling cb. Returns 0, or a negative error. */
int kmk_tts_espeak_synth(const char *text, const kmk_tts_voice *v, kmk_tts_chunk_fn cb, void *ud,
                         const atomic_int *cancel, char *err, size_t errlen);

/* flite, 16000 Hz for slt and kal16, English only (a non-English voice name or Cyrillic text is
 * KMK_SPEECH_EINVAL). Audio is streamed while synthesizing, one sentence at a time. */
int kmk_tts_flite_synth(const char *text, const kmk_tts_voice *v, kmk_tts_chunk_fn cb, void *ud,
                        const atomic_int *cancel, char *err, size_t errlen);

#endif
