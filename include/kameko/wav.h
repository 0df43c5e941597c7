/* wav.h - RIFF/WAVE reading (to interleaved float) and 16-bit PCM writing.
 *
 * Reads: PCM 8 (unsigned), 16, 24, 32-bit integer; IEEE float 32/64; WAVE_FORMAT_EXTENSIBLE with a
 * PCM or float sub-format. Rates 8000..192000 Hz, 1..8 channels. Anything else is refused with a
 * message that names the problem (e.g. "WAV codec 0x0055 (MP3) is not supported").
 * A data chunk cut short keeps every complete frame, sets `truncated` and logs a warning.
 *
 * Thread: any; no shared state. Ownership: a successful read fills `out->samples` with a malloc'd
 * buffer the caller owns; release with kmk_wav_free.
 */
#ifndef KAMEKO_WAV_H
#define KAMEKO_WAV_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  float *samples;  /* owned; frames * channels interleaved, nominal range [-1, 1] */
  int rate;        /* Hz */
  int channels;    /* 1..8 */
  size_t frames;   /* samples per channel */
  int format_tag;  /* 1 = PCM, 3 = IEEE float (sub-format for extensible files) */
  int bits;        /* container bits per sample: 8, 16, 24, 32 or 64 */
  int truncated;   /* 1 when the data chunk was shorter than its header said */
} kmk_wav;

/* Reads a whole file. Returns 0 or a negative KMK_AUDIO_E* code with a reason in err (may be
 * NULL). On failure *out is zeroed. */
int kmk_wav_read(const char *path, kmk_wav *out, char *err, size_t errlen);
/* Same, from memory (the parser used by the fuzz target). `data` is not retained. */
int kmk_wav_read_mem(const uint8_t *data, size_t len, kmk_wav *out, char *err, size_t errlen);
/* Frees out->samples and zeroes *w. Safe on a zeroed struct. */
void kmk_wav_free(kmk_wav *w);

/* Writes a canonical 44-byte-header PCM 16-bit WAV. Returns 0 or KMK_AUDIO_EINVAL/EIO. */
int kmk_wav_write_s16(const char *path, const int16_t *pcm, size_t frames, int rate, int channels);

#endif
