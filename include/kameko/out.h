/* out.h - the agent's output chain: TTS PCM -> 48 kHz stereo -> 20 ms frames in a queue -> Opus,
 * one packet per pop.
 *
 *   push(mono int16 at any rate) ─> soxr to 48 kHz stereo ─> 960-frame cuts ─> PCM frame queue
 *   pop()    = one frame per pacer tick (see pacer.h): the oldest queued PCM frame is Opus-encoded
 *              right there (20 ms of audio, ~0.3 ms of CPU, bench/bench_out.c) and returned.
 *   finish() = end of reply: the last partial frame is zero-padded, then 5 Opus silence frames
 *              (F8 FF FE) are queued, as Discord expects when a speaker stops.
 *   clear()  = barge-in: everything queued or half-cut is dropped at once; the encoder is reset.
 *
 * Why encode at pop: push used to encode the whole chunk, which held the loop thread for up to
 * ~90 ms on a long TTS chunk (send-pacing jitter, late barge-in). Now push costs only the
 * resampling, and the encoding is spread one frame per tick. There is one encoder per chain and it
 * sees the frames in send order, so its state is continuous across the frames of a reply (it is
 * not reset between replies, only by clear()). kmk_audio_out_encoded() counts the frames encoded.
 *
 * Each popped frame also carries the exact 48 kHz stereo PCM that was encoded (zeros for the
 * silence frames), so a replay transport can mix what was actually sent.
 *
 * Bounded: the queue holds at most max_frames frames. Overflow policy: DROP OLDEST (the engine's
 * rule for audio), counted in kmk_audio_out_dropped(); producers that must not lose audio throttle
 * on kmk_audio_out_space(). Slots are allocated once (calloc) at creation (~3.9 KB of PCM each).
 *
 * Thread: one owner thread (the loop thread). TTS workers hand PCM over through the event queue.
 */
#ifndef KAMEKO_OUT_H
#define KAMEKO_OUT_H

#include <stddef.h>
#include <stdint.h>

#include "kameko/opus.h"

#define KMK_OUT_SILENCE_FRAMES 5

typedef struct {
  uint8_t data[KMK_OPUS_MAX_PACKET]; /* the Opus packet */
  int len;                           /* bytes in data */
  int silence;                       /* 1 = one of the end-of-reply F8 FF FE frames */
  uint64_t seq;                      /* frame number since the out chain was created */
  int16_t pcm[KMK_OPUS_ENC_FRAME * KMK_OPUS_ENC_CHANNELS]; /* 48 kHz stereo that was encoded */
} kmk_out_frame;

typedef struct kmk_audio_out kmk_audio_out;

/* bitrate in bit/s (0 = 64000); max_frames = queue bound (0 = 3000 = 60 s). NULL + err on failure.
 * Caller owns: kmk_audio_out_free. */
kmk_audio_out *kmk_audio_out_new(int bitrate, size_t max_frames, char *err, size_t errlen);
void kmk_audio_out_free(kmk_audio_out *o);
/* Mono int16 PCM at `rate` (8000..192000): resampled and queued as PCM frames, nothing is encoded
 * here. A rate change inside a reply drains the previous resampler first. Returns 0 or
 * KMK_AUDIO_E* (nothing is queued for a failed chunk). */
int kmk_audio_out_push(kmk_audio_out *o, const int16_t *pcm, size_t frames, int rate);
/* End of the current reply (see above). Returns 0 or KMK_AUDIO_E*. */
int kmk_audio_out_finish(kmk_audio_out *o);
/* Drops everything queued and pending; resets resampler and encoder. */
void kmk_audio_out_clear(kmk_audio_out *o);
/* Oldest queued frame, removed from the queue and Opus-encoded now (silence frames are the fixed
 * 3-byte packet); NULL when empty. The pointer stays valid until the next call on `o`. A frame the
 * encoder fails on (not expected) is skipped and counted in kmk_audio_out_dropped(). */
const kmk_out_frame *kmk_audio_out_pop(kmk_audio_out *o);
size_t kmk_audio_out_queued(const kmk_audio_out *o);
size_t kmk_audio_out_space(const kmk_audio_out *o);
/* Frames lost: dropped as oldest on overflow, or refused by the encoder. */
uint64_t kmk_audio_out_dropped(const kmk_audio_out *o);
/* Audio frames Opus-encoded so far (by pop; silence frames are not encoded). */
uint64_t kmk_audio_out_encoded(const kmk_audio_out *o);

#endif
