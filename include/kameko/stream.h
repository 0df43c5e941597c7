/* stream.h - one speaker's input: Opus packets or PCM in, endpointed utterances out.
 *
 *   Opus packet ─> decoder at 16 kHz mono (PLC on loss) ─┐
 *   PCM any rate/channels ─> soxr to 16 kHz mono ────────┴─> 10 ms frames ─> VAD ─> endpointer
 *                                                                                 └─> on_event
 *
 * Samples that do not fill a whole 10 ms frame are carried to the next call. Timestamps in
 * events are 16 kHz sample indices since the stream's first sample (divide by 16000 for seconds).
 *
 * Callback: on_event(ud, ev) is called synchronously from inside push/finish, at most once per
 * 10 ms frame. ev and ev->pcm are valid only during the callback; to keep an utterance's PCM call
 * kmk_speaker_stream_take_pcm(stream) from inside the SPEECH_END callback (the caller then owns it
 * and free()s it). A call that fails returns a negative KMK_AUDIO_E* code; events already emitted
 * for earlier frames of that call stay emitted.
 *
 * Memory is bounded: decoder state, one resampler, a 10 ms remainder and the endpointer's
 * utterance buffer (<= max_utterance_ms). Input chunks are processed in pieces of <= 100 ms.
 *
 * Thread: one owner thread (the loop thread, or a worker that owns the stream). The callback may
 * not free the stream.
 */
#ifndef KAMEKO_STREAM_H
#define KAMEKO_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "kameko/endpoint.h"
#include "kameko/vad.h"

typedef kmk_endpoint_event kmk_stream_event; /* type, start_sample, length, pcm, forced */

typedef void (*kmk_stream_cb)(void *ud, const kmk_stream_event *ev);

/* Turn-taking (issue 8; see engine/audio/README.md for the measured table). The defaults
 * (kmk_stream_params_default, or p == NULL) are the "spectral" detector + the balanced turn
 * endpointer (kmk_endpoint_params_turn: adaptive end silence 450-550 ms, pause_ms 200), so the
 * callback also receives KMK_EP_SPEECH_PAUSE (tentative; ev->pcm = the utterance so far,
 * borrowed, not takeable) and KMK_EP_SPEECH_RESUME (drop speculative work); only SPEECH_END ends
 * a turn. Per persona/room: kmk_stream_params_preset(&p, "snappy" | "turn" | "patient");
 * the original design ("energy" + fixed 1 s silence, no pause events) is "classic". */
typedef struct {
  const char *vad_name;        /* NULL = "spectral" (the default); "energy" = the original */
  kmk_vad_params vad;          /* see vad.h; zeroed = defaults */
  kmk_endpoint_params endpoint; /* see endpoint.h; use kmk_endpoint_params_default */
} kmk_stream_params;

typedef struct kmk_speaker_stream kmk_speaker_stream;

void kmk_stream_params_default(kmk_stream_params *p);
/* Per-persona / per-room turn-taking in one call: "snappy" (game table), "turn" (balanced),
 * "patient" (chat) = the "spectral" detector + kmk_endpoint_params_preset(name); "classic" (or
 * NULL/"") = "energy" + the fixed 1 s endpointer. Unknown name: "turn" and KMK_AUDIO_EINVAL
 * (log it; the stream still works). Other fields are defaults; edit them afterwards if needed. */
int kmk_stream_params_preset(kmk_stream_params *p, const char *name);
/* p may be NULL (defaults). on_event may be NULL (events dropped). Returns NULL on bad params /
 * no memory (logged). Caller owns: kmk_speaker_stream_free. */
kmk_speaker_stream *kmk_speaker_stream_new(const kmk_stream_params *p, kmk_stream_cb on_event,
                                           void *ud);
void kmk_speaker_stream_free(kmk_speaker_stream *s);

/* One Opus packet (any Opus stream; decoded at 16 kHz mono). pkt == NULL = the packet was lost:
 * concealed with PLC. Call it once per missing packet (e.g. per RTP sequence gap) so the
 * stream's sample clock keeps matching real time. Returns samples decoded (>= 0) or KMK_AUDIO_E*. A corrupt packet is
 * replaced by PLC so the timeline keeps its length, and reported as KMK_AUDIO_EFORMAT. */
int kmk_speaker_stream_push_opus(kmk_speaker_stream *s, const uint8_t *pkt, size_t len);
/* The packet before `next_pkt` was lost: recover it from next_pkt's FEC (then push next_pkt). */
int kmk_speaker_stream_push_opus_fec(kmk_speaker_stream *s, const uint8_t *next_pkt, size_t len);
/* Interleaved PCM at any rate (8000..192000) and channel count (1..8). A change of rate or channel
 * count flushes the previous resampler first. Returns 0 or KMK_AUDIO_E*. */
int kmk_speaker_stream_push_s16(kmk_speaker_stream *s, const int16_t *pcm, size_t frames, int rate,
                                int channels);
int kmk_speaker_stream_push_f32(kmk_speaker_stream *s, const float *pcm, size_t frames, int rate,
                                int channels);
/* End of input: drains the resampler, zero-pads the last partial frame, closes any open
 * utterance (SPEECH_END with forced = 1). The stream may be reused afterwards; its sample clock
 * keeps counting. Returns 0 or KMK_AUDIO_E*. */
int kmk_speaker_stream_finish(kmk_speaker_stream *s);
/* Only inside a SPEECH_END callback: takes ownership of ev->pcm (free() it). */
int16_t *kmk_speaker_stream_take_pcm(kmk_speaker_stream *s);
/* 16 kHz samples fed to the VAD so far. */
uint64_t kmk_speaker_stream_position(const kmk_speaker_stream *s);
kmk_endpoint_state kmk_speaker_stream_state(const kmk_speaker_stream *s);
/* Last VAD result (for meters/logs). */
kmk_vad_result kmk_speaker_stream_last_vad(const kmk_speaker_stream *s);

#endif
