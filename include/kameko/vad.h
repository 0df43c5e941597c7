/* vad.h - pluggable voice activity detection on 10 ms frames (160 samples, 16 kHz mono int16).
 *
 * A detector is a small vtable (kmk_vad_ops) registered by name; kmk_vad_new("energy", &p)
 * creates an instance. The VAD only reads the caller's frame (const): it never edits it.
 * Results are named: is_speech (the decision), score (0..1 confidence that it is speech) and
 * level (the detector's loudness measure, for logs and tuning).
 *
 * Built in: "energy" — the original design's detector: mean absolute amplitude of the frame
 * (int16 scale) > threshold (default 300) means speech; score = level / (level + threshold).
 * Built in: "spectral" (vad_spectral.c) — per-band SNR over an adaptive noise floor (hum and
 * stationary noise cancel), gated by the speaker's own running level (distant voices stay out),
 * clicks rejected; level = its noise-free speech level in dB, score = confidence from the SNR.
 * threshold (if set and != 300) = its start SNR in dB (5..20); aggressiveness 2/3 = stricter.
 *
 * Thread: instances have one owner thread. The registry is written only by kmk_vad_register,
 * which must be called at startup before other threads create detectors.
 */
#ifndef KAMEKO_VAD_H
#define KAMEKO_VAD_H

#include <stdint.h>

#define KMK_VAD_FRAME 160 /* samples per frame: 10 ms at 16 kHz */

typedef struct {
  int is_speech; /* 1 = speech in this frame */
  float score;   /* 0..1, higher = more likely speech */
  float level;   /* detector-specific loudness (energy: mean |sample|, int16 scale) */
} kmk_vad_result;

typedef struct {
  float threshold;   /* energy: mean |sample| above which a frame is speech; <= 0 = 300 */
  int aggressiveness; /* 0..3 for detectors that have modes (unused by "energy") */
} kmk_vad_params;

typedef struct {
  const char *name;
  /* params is never NULL here (defaults filled in). Returns state or NULL. */
  void *(*create)(const kmk_vad_params *params);
  /* frame: KMK_VAD_FRAME samples, read-only. Fills *out. Returns 0 or KMK_AUDIO_E*. */
  int (*process)(void *state, const int16_t *frame, kmk_vad_result *out);
  void (*reset)(void *state);
  void (*destroy)(void *state);
} kmk_vad_ops;

typedef struct kmk_vad kmk_vad;

/* Fills defaults (threshold 300, aggressiveness 1). */
void kmk_vad_params_default(kmk_vad_params *p);
/* Adds a detector (ops must outlive the process; at most 16). 0, EINVAL (bad/duplicate) or EFULL. */
int kmk_vad_register(const kmk_vad_ops *ops);
/* Creates a detector by name; params may be NULL (defaults). NULL when the name is unknown.
 * Caller owns the result: kmk_vad_free. */
kmk_vad *kmk_vad_new(const char *name, const kmk_vad_params *params);
int kmk_vad_process(kmk_vad *v, const int16_t *frame, kmk_vad_result *out);
void kmk_vad_reset(kmk_vad *v);
void kmk_vad_free(kmk_vad *v);
const char *kmk_vad_name(const kmk_vad *v);

#endif
