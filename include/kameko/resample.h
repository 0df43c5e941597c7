/* resample.h - streaming sample-rate and channel conversion (libsoxr underneath).
 *
 * Input: interleaved float ([-1, 1]) or int16 with in_channels (1..8); output: interleaved int16
 * with out_channels (1 or 2). Channel mapping happens before resampling: N -> 1 averages all
 * channels; 1 -> 2 duplicates; N -> 2 (N > 2) keeps the first two channels; N -> N copies.
 * When in_rate == out_rate soxr is skipped entirely (only channel mapping and conversion).
 *
 * Streaming: call process() with chunks of any size; soxr keeps its filter state and remainders
 * between calls, so the concatenated output equals one-shot conversion. At end of input call
 * flush() once to drain the filter tail. The output pointer returned by process/flush points into
 * the resampler's own buffer and stays valid until the next call on the same resampler.
 *
 * Thread: one owner thread per resampler; no shared state.
 */
#ifndef KAMEKO_RESAMPLE_H
#define KAMEKO_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kmk_resampler kmk_resampler;

/* Rates 1000..384000, in_channels 1..8, out_channels 1..2. Returns NULL on bad arguments or when
 * soxr cannot be created (logged). The caller owns the result: kmk_resampler_free. */
kmk_resampler *kmk_resampler_new(int in_rate, int in_channels, int out_rate, int out_channels);
void kmk_resampler_free(kmk_resampler *r);

/* Converts in_frames frames. Returns the number of output frames (>= 0) and sets *out to them, or
 * a negative KMK_AUDIO_E* code. */
long kmk_resampler_process_f32(kmk_resampler *r, const float *in, size_t in_frames,
                               const int16_t **out);
long kmk_resampler_process_s16(kmk_resampler *r, const int16_t *in, size_t in_frames,
                               const int16_t **out);
/* Drains what soxr still holds at the end of input. After flush the resampler is reset and may
 * be used for a new, unrelated signal. */
long kmk_resampler_flush(kmk_resampler *r, const int16_t **out);
/* Forgets all buffered input (e.g. barge-in) without producing output. */
void kmk_resampler_reset(kmk_resampler *r);

int kmk_resampler_in_rate(const kmk_resampler *r);
int kmk_resampler_in_channels(const kmk_resampler *r);
int kmk_resampler_out_rate(const kmk_resampler *r);
int kmk_resampler_out_channels(const kmk_resampler *r);

#endif
