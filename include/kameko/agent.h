/* agent.h - one conversation's pipeline, independent of the transport:
 *
 *   transport audio ─> speaker stream (decode/resample, VAD, endpoint) ─> utterance ─> STT worker
 *   ─> transcript ─> persona brain (Lua) ─> decision ─> TTS worker ─> audio out (48 kHz Opus, 20 ms)
 *   ─> transport pulls one frame per pacer tick.
 *
 * Every step is written to the event log. Timeline: the transport supplies the clock (seconds since
 * the conversation started); the agent never reads wall time for timeline positions, so replay in
 * --fast mode gives the same events as real time. Loop thread only.
 *
 * Bot states (one reply at a time):
 *
 *     LISTENING ──decision.should_speak──> SPEAKING ──last frame pulled──> LISTENING
 *         ^                                   │ human speech_start (barge-in)
 *         └──────── INTERRUPTED <─────────────┘ (TTS cancelled, queue cleared, persona told)
 *
 * Several personas share the floor through the arbiter in agent.c (addressed by name first,
 * yielding replies dropped when another wants the floor). Each persona file is watched and
 * hot-reloaded (events "persona_reload"); personas with on_tick get a "tick" event per second.
 * kmk_agent_free closes handles (file watchers, the tick timer): run the loop once afterwards.
 *
 * Cloud providers (from the config; none without keys, so the offline path is unchanged):
 *   GROQ_API_KEY          utterances -> audio gate -> Groq Whisper -> transcript gates + echo check
 *                         ("transcript_dropped" with the gate's reason); a failed request, an open
 *                         breaker or a refused key falls back to pocketsphinx with the same audio.
 *   LLM_API_KEY / OPENROUTER_API_KEY
 *                         personas ask the LLM (kmk_llm_chat); an error goes to the brain, whose
 *                         rules decide; a refused key (401/402/403) turns the LLM off.
 *   Edge-TTS              on with either key, with EDGE_TTS_URL set to a non-default value, or
 *                         EDGE_TTS=1 in the environment; used for persona voices with engine
 *                         "edge"; a failure before any audio falls back to the offline voice.
 * Barge-in cancels Edge synthesis and LLM requests in flight; kmk_agent_free cancels everything.
 * Early speech: a streaming LLM answer's first sentence is spoken once it says should_speak and
 * the floor is free ("early_speech"); the final decision continues or stops it ("playback_stop"
 * reason "retracted"). Speculative STT (persona policy.speculative_stt): Groq hears the audio so
 * far at a speech pause; reused when the turn ends there ("stt_speculative"). The hallucination
 * lists are scripts/gates.lua (hot reloaded, "gates_reload"); Groq gets a per-speaker language
 * hint (kmk_agent_speaker_set_lang, learned, or the room's). README "Cloud providers" has more.
 */
#ifndef KAMEKO_AGENT_H
#define KAMEKO_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kameko/config.h"
#include "kameko/eventlog.h"
#include "kameko/out.h"

typedef struct kmk_agent kmk_agent;
typedef struct kmk_speaker kmk_speaker;

typedef struct {
  uv_loop_t *loop;
  kmk_eventlog *log;
  const kmk_config *config;
  const char *const *persona_paths; /* one or more persona files */
  size_t n_personas;
  const char *scripts_dir;
  double (*now)(void *ud); /* timeline clock, seconds */
  void *now_ud;
  int no_watch; /* 1: do not watch the persona files (no hot reload) */
} kmk_agent_opts;

/* Returns NULL with err (naming the file and line for a broken persona). */
kmk_agent *kmk_agent_new(const kmk_agent_opts *o, char *err, size_t errlen);
/* Stops workers (cancelling in-flight jobs and network requests), closes handles; call before
   the loop is closed, outside uv_run: with cloud providers on it runs the loop itself until the
   HTTP/WebSocket clients' handles are closed. Safe with NULL. */
void kmk_agent_free(kmk_agent *a);

/* A person joins at timeline time t; their audio sample 0 is at t. Emits "join". */
kmk_speaker *kmk_agent_speaker_join(kmk_agent *a, const char *name, double t);
/* PCM at any rate/channel count (interleaved int16) or one Opus packet (NULL = lost packet). */
int kmk_agent_speaker_pcm(kmk_speaker *s, const int16_t *pcm, size_t frames, int rate, int channels);
int kmk_agent_speaker_opus(kmk_speaker *s, const uint8_t *pkt, size_t len);
/* The packet before next_pkt was lost: recovers it from next_pkt's in-band FEC (libopus conceals
   when next_pkt carries none). Push next_pkt itself with kmk_agent_speaker_opus afterwards. */
int kmk_agent_speaker_opus_fec(kmk_speaker *s, const uint8_t *next_pkt, size_t len);
/* The person leaves: an utterance in progress is finished and still transcribed. Emits "leave".
   The speaker pointer is invalid afterwards. */
void kmk_agent_speaker_leave(kmk_agent *a, kmk_speaker *s);

/* The language a person speaks, as a hint for cloud STT: "ru", "en" (any 2-3 letter code), or
 * "auto"/NULL to let Whisper detect it. Without a setting the agent learns it (two detections in
 * a row agreeing on a language the cast speaks; re-checked every 4th utterance) or uses the
 * room's (every persona speaks one and the same language). Emits "speaker_lang". 0, or -1 for
 * an unknown speaker or a bad code. */
int kmk_agent_speaker_set_lang(kmk_agent *a, const char *speaker, const char *lang);

/* A text-chat message from a person (a room's chat, a Discord text channel): logged as "chat"
   and shown to the personas like a transcript. Returns 0 or -1 for a bad argument. */
int kmk_agent_chat(kmk_agent *a, const char *speaker, const char *text);

/* Transport's pacer tick: the next 20 ms Opus frame of the agent's voice (48 kHz stereo, with the
   PCM that was encoded), or NULL while the agent is silent. Valid until the next agent call. */
const kmk_out_frame *kmk_agent_pull_frame(kmk_agent *a);

/* True while any work that will produce events is pending: an utterance being transcribed, a
   decision, a reply being synthesized or still queued for sending, or a speaker mid-utterance. */
int kmk_agent_busy(const kmk_agent *a);
/* True while background jobs (STT/TTS workers, Groq/LLM/Edge requests) are running; replay --fast
   holds its clock then. */
int kmk_agent_jobs_pending(const kmk_agent *a);

/* ---- controls (a room's or a bot's commands) */

/* Replaces the active personas with the files in persona_paths (1..8), as a transaction: every new
 * file is loaded first; if any fails nothing changes and err names it ("path:line: what"), -1.
 * A file already in the cast keeps its brain (conversation window, memory); speakers, their
 * audio streams and the cloud clients are kept. Personas that leave: their queued replies are
 * dropped ("reply_dropped", reason "persona left the cast"), their LLM requests cancelled, and if
 * one is speaking its voice stops ("playback_stop", reason "cast"). Newcomers are shown a "join"
 * for every person present (their answers are not voiced). Emits
 * "cast" {personas: [names], added: [names], removed: [names]}. 0 on success. */
int kmk_agent_set_cast(kmk_agent *a, const char *const *persona_paths, size_t n, char *err,
                       size_t errlen);

/* A user asks to be forgotten: every persona drops their lines from its context window, LLM
 * requests waiting on their words and kmk.memory(speaker); a persona's on_forget(name, state)
 * hook erases what it keeps itself. Emits "forget" {speaker, erased} (never the erased text).
 * The event log already written is not rewritten. Returns the number of items erased, or < 0. */
int kmk_agent_forget(kmk_agent *a, const char *speaker);

/* Muted: the agent stops speaking at once (like a barge-in, "playback_stop" reason "muted") and
 * from then on decisions are still made and logged but their replies are dropped
 * ("reply_dropped", reason "muted") instead of voiced. Emits "mute" {muted} on a change. */
void kmk_agent_set_muted(kmk_agent *a, int muted);
int kmk_agent_muted(const kmk_agent *a);

/* Reloads scripts/gates.lua (the hallucination phrase/pattern lists for cloud STT) now, as a
 * change to the file would; "gates_reload" tells how it went. No-op without cloud STT. */
void kmk_agent_reload_gates(kmk_agent *a);

/* Barge-in and playback control for transports. Whenever the agent's voice is cut off (a person
 * starts speaking over it, a mute, the speaking persona leaving the cast) the event
 *     "playback_stop" {t, speaker: persona, persona, reason: "barge_in" | "muted" | "cast",
 *                      by?: the person who spoke over it, reply_id, frames_sent}
 * is written to the event log the moment the queued audio is dropped - before "interrupted",
 * "audio_out_end" or anything else about it. kmk_agent_pull_frame returns NULL from then on until
 * the next reply starts. A transport that buffers audio downstream (the browser room's pages)
 * watches for it with kmk_eventlog_set_observer and drops what it already sent. */

#endif
