/* mixer.h - a 16 kHz mono timeline: add int16 PCM at sample offsets, write the result as WAV.
 *
 * Mixing saturates at the int16 range. The timeline grows as needed up to a hard cap
 * (max_samples); audio placed beyond the cap is cut and the call returns KMK_AUDIO_EFULL after
 * mixing whatever fits. Used by the replay transport to render "what the room heard".
 *
 * Thread: one owner thread. Ownership: the mixer owns its buffer; kmk_mixer_data is a view.
 */
#ifndef KAMEKO_MIXER_H
#define KAMEKO_MIXER_H

#include <stddef.h>
#include <stdint.h>

#define KMK_MIXER_DEFAULT_MAX (16000ull * 3600) /* one hour at 16 kHz */

typedef struct kmk_mixer kmk_mixer;

/* rate: the timeline's rate (0 = 16000), used for the WAV header. max_samples 0 = one hour.
 * Caller owns: kmk_mixer_free. */
kmk_mixer *kmk_mixer_new(int rate, uint64_t max_samples);
void kmk_mixer_free(kmk_mixer *m);
/* Mixes n samples at sample offset `at`. Returns 0, KMK_AUDIO_EFULL (partly/not placed: beyond
 * the cap) or KMK_AUDIO_ENOMEM / EINVAL. */
int kmk_mixer_add(kmk_mixer *m, uint64_t at, const int16_t *pcm, size_t n);
/* Timeline length in samples (end of the latest audio placed). */
uint64_t kmk_mixer_length(const kmk_mixer *m);
const int16_t *kmk_mixer_data(const kmk_mixer *m);
/* Writes the whole timeline as 16-bit mono WAV. Returns 0 or KMK_AUDIO_EIO / EINVAL. */
int kmk_mixer_write_wav(const kmk_mixer *m, const char *path);

#endif
