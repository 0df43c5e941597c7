/* endpoint.h - per-speaker utterance endpointer: 10 ms frames + VAD results in, named events out.
 *
 *            speech frame                      voiced >= min_speech_ms
 *  SILENCE ───────────────> MAYBE_SPEECH ──────────────────────────────> SPEECH  (emit SPEECH_START)
 *     ^  ^                      │ silence run >= end_silence_ms            │  ^
 *     │  └──────────────────────┘ (emit DISCARD: a click / short burst;   │  │ speech frame
 *     │                             also when sparse bursts fill max_utterance_ms)
 *     │                                                      silence frame v  │
 *     └─────────────────────────────────────────────────────────────── TRAILING
 *        silence run >= end_silence_ms (emit SPEECH_END)
 *        or utterance length >= max_utterance_ms in SPEECH/TRAILING (emit SPEECH_END, forced = 1)
 *
 * Timestamps are sample indices at 16 kHz since the stream's first frame (frame k starts at
 * k * 160). An utterance starts preroll_ms before its first voiced frame (never before the end of
 * the previous utterance, never before sample 0) so first syllables survive, and ends tail_ms
 * after its last voiced frame (never later than the sample where the end was decided).
 * "Voiced >= min_speech_ms" counts voiced frames, so scattered clicks never add up to speech
 * unless there are min_speech_ms of them before a silence of end_silence_ms.
 *
 * Ownership: SPEECH_END carries `pcm` (length samples) owned by the endpointer. It stays valid
 * until the next process/finish/free call; kmk_endpoint_take_pcm hands it to the caller, who then
 * frees it with free(). At most one event per frame. Memory: the utterance buffer grows on demand
 * up to max_utterance_ms; the pre-roll ring holds preroll_ms.
 *
 * Adaptive end (adaptive_end = 1): "a pause inside the turn" and "the turn is over" are told
 * apart by the speaker's own pause habits. Every silence run inside an utterance that ended with
 * speech resuming is a known in-turn pause; a new utterance that starts less than
 * (end silence + 100 ms) after the previous one's last voiced frame was a turn cut too early, and
 * its whole gap counts as an in-turn pause as well. The end silence in force is then
 * clamp(max + (max - min) / n + end_margin_ms, min_end_silence_ms, end_silence_ms) over the last
 * n <= 32 such pauses (>= 100 ms; (max - min) / n is the expected shortfall of a sample maximum)
 * once 3 pauses are known (end_silence_ms before that). So a speaker with short hesitations gets
 * snappy turn ends, a slow speaker (or a noisy channel whose VAD stretches pauses) longer ones.
 * An adaptive end that falls due on a frame whose VAD score is >= 0.9 (the VAD sees strong speech
 * it has not confirmed yet: a restart's soft onset) waits for up to 5 such frames (50 ms).
 *
 * Thread: one owner thread per endpointer. Pure logic: no I/O, no clock.
 */
#ifndef KAMEKO_ENDPOINT_H
#define KAMEKO_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "kameko/vad.h"

typedef enum {
  KMK_EP_SILENCE = 0,
  KMK_EP_MAYBE_SPEECH,
  KMK_EP_SPEECH,
  KMK_EP_TRAILING,
} kmk_endpoint_state;

typedef enum {
  KMK_EP_EVENT_NONE = 0,
  KMK_EP_SPEECH_START, /* start_sample = where the utterance (including pre-roll) begins */
  KMK_EP_SPEECH_END,   /* start_sample, length, pcm, forced */
  KMK_EP_DISCARD,      /* a burst shorter than min_speech_ms: start_sample/length of the burst */
  /* Only when pause_ms > 0 (see kmk_endpoint_params): */
  KMK_EP_SPEECH_PAUSE, /* tentative: pause_ms of silence inside an utterance. start_sample, length
                          and pcm = the utterance so far (up to the last voiced frame + tail);
                          pcm is borrowed (valid until the next call, not takeable). Speculative
                          work (e.g. STT) may start; the utterance is NOT over. */
  KMK_EP_SPEECH_RESUME, /* speech came back after a SPEECH_PAUSE: discard speculative work.
                           start_sample = the utterance start, length 0 */
} kmk_endpoint_event_type;

typedef struct {
  kmk_endpoint_event_type type;
  uint64_t start_sample; /* 16 kHz sample index since stream start */
  uint64_t length;       /* samples (END, DISCARD); 0 for START */
  const int16_t *pcm;    /* END only: the utterance, owned by the endpointer (see above) */
  int forced;            /* END only: 1 = cut by max_utterance_ms or end of stream */
} kmk_endpoint_event;

typedef struct {
  int min_speech_ms;    /* default 250: fewer voiced ms = click, discarded */
  int end_silence_ms;   /* default 1000: silence that ends an utterance */
  int preroll_ms;       /* default 300: audio kept before the first voiced frame */
  int max_utterance_ms; /* default 30000: force an end */
  int tail_ms;          /* default 100: audio kept after the last voiced frame (<= end_silence) */
  /* Turn-taking extensions (all 0 = off = the behaviour above; kmk_endpoint_params_turn sets them): */
  int pause_ms;           /* > 0: emit SPEECH_PAUSE once per pause after this much silence, and
                             SPEECH_RESUME if speech returns before the end. Must be < the end
                             silence in force, else no pause event is emitted. */
  int adaptive_end;       /* 1: the end silence adapts to this speaker's own pauses (below) */
  int min_end_silence_ms; /* adaptive floor; <= 0 = 400 (clamped to end_silence_ms) */
  int end_margin_ms;      /* adaptive margin over the longest recent pause; <= 0 = 30 */
} kmk_endpoint_params;

typedef struct kmk_endpoint kmk_endpoint;

void kmk_endpoint_params_default(kmk_endpoint_params *p);
/* The turn-taking preset (what bench/vad_eval.c scores for the "spectral" detector): defaults
 * except end_silence_ms 550 (the adaptive ceiling and the value before anything is learnt),
 * pause_ms 200, adaptive_end 1, min_end_silence_ms 450, end_margin_ms 30 (chosen on
 * bench/vad_eval's corpus, whose in-turn pauses are 150-450 ms). Tune per room: a game table may
 * lower min_end_silence_ms / end_silence_ms (snappier, more cuts), a chat or a slow speaker may
 * raise end_silence_ms so the adaptation has room to grow. */
void kmk_endpoint_params_turn(kmk_endpoint_params *p);
/* Named presets for per-persona / per-room tuning (numbers on bench/vad_eval's corpus in
 * engine/audio/README.md):
 *   "classic"  the defaults above (fixed 1 s silence, no pause events; also NULL or "")
 *   "snappy"   game table: adaptive floor 350 / ceiling 450 ms, margin 10, pause 150 ms
 *   "turn"     balanced = kmk_endpoint_params_turn: 450 / 550 ms, margin 30, pause 200 ms
 *   "patient"  chat, slow speakers: 550 / 900 ms, margin 80, pause 250 ms
 * Fills *p (all other fields default). Returns 0, or KMK_AUDIO_EINVAL for an unknown name (then
 * *p holds "turn", so a typo in a persona file still gets sensible turn-taking). */
int kmk_endpoint_params_preset(kmk_endpoint_params *p, const char *name);
/* The end silence currently in force, in ms (end_silence_ms unless adaptive_end learnt another). */
int kmk_endpoint_end_silence_ms(const kmk_endpoint *ep);
/* p may be NULL (defaults); fields <= 0 take their default (preroll_ms/tail_ms may be 0 when
 * given as 0 explicitly: use -1 for "default" there). Returns NULL on bad values or no memory.
 * Caller owns: kmk_endpoint_free. */
kmk_endpoint *kmk_endpoint_new(const kmk_endpoint_params *p);
void kmk_endpoint_free(kmk_endpoint *ep);
/* Consumes one 10 ms frame (KMK_VAD_FRAME samples, not modified) and its VAD result.
 * Returns 1 when *ev was filled, 0 when nothing happened, or KMK_AUDIO_E*. */
int kmk_endpoint_process(kmk_endpoint *ep, const int16_t *frame, const kmk_vad_result *vr,
                         kmk_endpoint_event *ev);
/* End of stream: closes an open utterance (SPEECH_END, forced) or drops a pending burst
 * (DISCARD). Returns 1 when *ev was filled, else 0. */
int kmk_endpoint_finish(kmk_endpoint *ep, kmk_endpoint_event *ev);
/* Takes ownership of the last SPEECH_END's pcm (free() it). NULL when none or already taken. */
int16_t *kmk_endpoint_take_pcm(kmk_endpoint *ep);
/* Back to SILENCE at sample 0, buffers emptied. */
void kmk_endpoint_reset(kmk_endpoint *ep);
kmk_endpoint_state kmk_endpoint_get_state(const kmk_endpoint *ep);
const char *kmk_endpoint_state_name(kmk_endpoint_state s);
const char *kmk_endpoint_event_name(kmk_endpoint_event_type t);
/* Samples consumed so far (= the start sample of the next frame). */
uint64_t kmk_endpoint_position(const kmk_endpoint *ep);

#endif
