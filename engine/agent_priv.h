/* agent_priv.h - the agent's insides, shared by its files (engine/agent*.c); not a public header.
 *
 *   agent.c          personas, the floor arbiter, decisions, speakers, frame pulls, ticks, hot
 *                    reload, lifecycle
 *   agent_voice.c    the voice: TTS workers and Edge-TTS, the reply being spoken (in segments
 *                    when it grows), barge-in, playback stop, speaking at the LLM's first
 *                    sentence (early speech)
 *   agent_cloud.c    LLM requests, STT (pocketsphinx worker, Groq with its gates), the cloud
 *                    clients' start and stop
 *   agent_control.c  cast, forget, mute
 *   agent_spec.c     speculative STT at a speech pause
 *   agent_lang.c     the per-speaker language hint for cloud STT
 *   agent_gates.c    scripts/gates.lua (hallucination lists), hot reloaded
 * Loop thread only (the workers' run functions excepted: they touch only their job).
 */
#ifndef KMK_AGENT_PRIV_H
#define KMK_AGENT_PRIV_H

#include "kameko/agent.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kameko/audio.h"
#include "kameko/out.h"
#include "kameko/stream.h"
#include "kameko/brain.h"
#include "kameko/cloud.h"
#include "kameko/evq.h"
#include "kameko/log.h"
#include "kameko/speech.h"
#include "kameko/gate_lists.h"
#include "kameko/worker.h"

#define MAX_PERSONAS 8
#define MAX_REPLIES 8       /* queued replies; past it the oldest unstarted one is dropped */
#define STT_QUEUE 16        /* utterances waiting for the recognizer */
#define EVQ_CAPACITY 256    /* worker->loop messages (TTS chunks block the worker when full) */
#define STREAM_RATE 16000
#define RELOAD_DEBOUNCE_MS 120
#define STALE_S 15.0 /* any reply that waited longer than this for the floor is dropped */
#define TOPUP_FRAMES 8   /* synthesized audio is resampled into `out` only up to this many frames
                            ahead, a slice at a time (`out` encodes one frame per pull): a long
                            TTS chunk never stalls a tick, and barge-in drops little */
#define SLICE_MS 60

typedef enum { BOT_LISTENING, BOT_SPEAKING } bot_state;

struct kmk_speaker {
  kmk_agent *a;
  char name[64];
  double t0; /* timeline time of the stream's sample 0 */
  kmk_speaker_stream *stream;
  int in_speech;
  /* language hint for cloud STT (agent_lang.c) */
  char lang_set[8];     /* kmk_agent_speaker_set_lang: "ru", "en" ("" = not set) */
  char lang_learned[8]; /* agreed by two detections in a row ("" = none yet) */
  char lang_last[8];    /* the last detected language (auto requests only) */
  int lang_agree;       /* detections in a row that agreed with lang_last */
  int lang_uses;        /* hinted requests since the learned language was last re-checked */
  struct spec_stt *spec; /* speculative STT of the utterance so far (agent_spec.c) */
  kmk_speaker *next;
};

typedef struct reply {
  uint64_t id;
  int persona;
  char *text;
  char lang[8];
  double t_decided;
  uint64_t speech_end_ns; /* wall clock at the end of the utterance that led here (0 = none) */
  double stt_ms, brain_ms;
  uint64_t trigger;        /* sequence number of the event it answers */
  int addressed_me, yield;
  char voice[64];          /* overrides ("" / 0 = the persona's voice) */
  int rate, pitch;
  /* early speech (agent_voice.c): the first sentence of a streaming LLM answer is spoken while
     the rest streams; text grows when the final decision confirms it */
  int early;               /* started from an LLM answer's first sentence */
  int open;                /* the LLM is still answering: more text may follow */
  size_t synth_len;        /* bytes of text handed to synthesis so far */
  size_t seg_off;          /* where the segment being synthesized starts */
  struct llm_call *call;   /* the request feeding an open reply (NULL once it ended) */
  struct reply *next;
} reply;

typedef struct persona_slot {
  kmk_agent *a;
  kmk_brain *brain;
  const kmk_persona_info *info;
  kmk_file_watch *watch;
  unsigned reloads, reload_failures;
} persona_slot;

struct kmk_agent {
  kmk_agent_opts o;
  kmk_evq *evq;
  kmk_worker *stt_worker, *espeak_worker, *flite_worker;
  kmk_stt_sphinx *stt;
  persona_slot personas[MAX_PERSONAS];
  size_t n_personas;
  kmk_speaker *speakers;
  kmk_audio_out *out;

  bot_state state;
  reply *queue_head, *queue_tail; /* replies waiting to be spoken */
  size_t n_queued;
  reply *current;                 /* being synthesized/spoken */
  kmk_job *tts_job;               /* in flight for current, or NULL */
  int tts_finished;               /* all of current's audio is in `out` */
  int tts_synth_done;             /* synthesis ended; `pending` may still hold audio */
  struct tts_chunk *pending_head, *pending_tail; /* synthesized, not yet encoded */
  size_t pending_samples;
  int audio_started;
  uint64_t tts_submit_ns;
  double tts_first_ms;
  size_t frames_sent;
  uint64_t next_reply_id;
  int stt_inflight, tts_inflight, llm_inflight;
  int humans_speaking;
  uint64_t event_seq;             /* events shown to the personas (reply.trigger) */
  double last_speech_start_t;     /* timeline of the latest person's speech_start */
  uv_timer_t *tick_timer;         /* heap: closed in kmk_agent_free */
  double next_tick_t;             /* timeline second of the next "tick" */
  int any_on_tick;
  int muted;                      /* kmk_agent_set_muted: decisions logged, nothing voiced */
  int keywords_dirty;             /* names to teach could not be queued: try again later */
  uint64_t keywords_hash;         /* of the names last taught (0 = none yet): re-teach on change only */

  /* cloud providers (NULL when no key / setting turns them on: the offline path as before) */
  kmk_http *http;
  kmk_ws *ws;
  kmk_groq *groq;
  kmk_llm *llm;
  kmk_edge *edge;
  kmk_gate_opts gates;
  kmk_gate_lists *gate_lists;     /* scripts/gates.lua (NULL: the built-in lists) */
  kmk_file_watch *gates_watch;
  char gates_path[1024];
  kmk_echo_memory echo;
  struct cloud_stt *cloud_stt;    /* Groq requests in flight */
  struct spec_stt *specs;         /* speculative Groq requests (agent_spec.c) */
  struct llm_call *llm_calls;     /* LLM requests in flight */
  struct edge_call *edge_call;    /* Edge synthesis for `current`, or NULL */
  int net_inflight;               /* all of the above: replay --fast holds its clock */
  const char *tts_provider;       /* "edge" | "flite" | "espeak" for `current` */
  double llm_first_ms, llm_total_ms; /* set while a decision from an LLM answer is handled */
  int llm_lat;
  double llm_sentence_ms;         /* first sentence of that answer (-1 = none) */
  int seg_idle;                   /* current's synthesis is waiting for more LLM text */
};

typedef struct llm_call {
  struct llm_call *next;
  kmk_agent *a;
  int persona;
  uint64_t request_id;
  cJSON *trigger;
  uint64_t speech_end_ns;
  double stt_ms, brain_ms;
  kmk_llm_req *req;
  uint64_t start_ns;
  kmk_sentence_scanner scan; /* follows the streamed answer: should_speak, first sentence */
  char *first;               /* the response's first complete sentence, once seen */
  double first_sentence_ms;  /* request start -> first sentence, -1 until then */
  int early_tried;           /* early speech was started (or ruled out) for this answer */
  reply *early;              /* the reply speaking the first sentence, while it lives */
} llm_call;

typedef struct {
  kmk_job base;
  kmk_agent *a;
  char speaker[64];
  int16_t *pcm;
  size_t n;
  uint64_t end_ns;
  uint64_t submit_ns;
  double run_ms;
  kmk_transcript tr;
  int rc;
  char err[256];
  char hint[8]; /* the language hint sent with it ("" = auto) */
  double spec_saved_ms; /* >= 0: its transcript came from speculative STT, this much sooner */
} stt_job;

/* agent_cloud.c: Groq results (shared with speculative STT) */
void ag_stt_job_free(stt_job *j);
kmk_gate_reason ag_groq_gate(kmk_agent *a, const kmk_groq_result *r, const char **pattern);
/* takes j: the transcript (or transcript_dropped) event, shown to the personas */
void ag_groq_finish(kmk_agent *a, stt_job *j, const char *text, const char *lang, double conf,
                    kmk_gate_reason g, const char *pattern, double stt_ms, double total_ms);
/* agent_spec.c: speculative STT at a pause in a speaker's utterance (policy.speculative_stt) */
struct spec_stt;
void ag_spec_pause(kmk_agent *a, kmk_speaker *s, const kmk_stream_event *sev);
void ag_spec_cancel(kmk_agent *a, kmk_speaker *s, const char *why);
/* at SPEECH_END: 1 when the speculative result stands for j (j taken), else 0 */
int ag_spec_end(kmk_agent *a, kmk_speaker *s, stt_job *j, uint64_t start_sample);
void ag_spec_speaker_gone(kmk_agent *a, kmk_speaker *s);
void ag_spec_stop_all(kmk_agent *a);

static inline double now(kmk_agent *a) { return a->o.now(a->o.now_ud); }
static inline double ms_since(uint64_t t_ns) { return (double)(uv_hrtime() - t_ns) / 1e6; }

void ag_arbitrate(kmk_agent *a, reply **batch, size_t n);
void ag_barge_in(kmk_agent *a, const char *who);
void ag_cancel_edge(kmk_agent *a);
void ag_cancel_llm_calls(kmk_agent *a);
void ag_clear_pending(kmk_agent *a);
void ag_drop_reply(kmk_agent *a, reply *r, const char *reason);
void ag_emit(kmk_agent *a, cJSON *ev);
void ag_emit_error(kmk_agent *a, const char *speaker, const char *stage, const char *msg);
void ag_feed_out(kmk_agent *a);
void ag_finish_reply(kmk_agent *a, const char *end_reason);
void ag_handle_action(kmk_agent *a, int p, const cJSON *trigger, kmk_brain_action *act,
                      uint64_t speech_end_ns, double stt_ms, double brain_ms, reply **out);
void ag_on_persona_changed(void *ud);
void ag_speak_next(kmk_agent *a);
int ag_start_cloud(kmk_agent *a);
int ag_start_llm(kmk_agent *a, int p, const cJSON *trigger, const kmk_brain_action *act,
                 uint64_t speech_end_ns, double stt_ms, double brain_ms);
void ag_start_stt(kmk_agent *a, stt_job *j);
void ag_stop_cloud(kmk_agent *a);
char *ag_stop_playback(kmk_agent *a, const char *reason, const char *by);
void ag_teach_names(kmk_agent *a);
void ag_to_personas(kmk_agent *a, const cJSON *ev, uint64_t speech_end_ns, double stt_ms);
void ag_update_on_tick(kmk_agent *a);
/* agent_lang.c: the cloud STT language hint per speaker (NULL = let Whisper detect) and what a
   detection teaches */
kmk_speaker *ag_find_speaker(kmk_agent *a, const char *name);
const char *ag_lang_hint(kmk_agent *a, const char *speaker);
void ag_lang_observe(kmk_agent *a, const char *speaker, const char *hint, const char *detected);
/* agent_gates.c: the Lua-edited hallucination lists (loaded with cloud STT on, hot reloaded) */
void ag_gates_start(kmk_agent *a);
void ag_gates_stop(kmk_agent *a);
/* frees an LLM call (cancelled when req still set), detaching an early reply it feeds */
void ag_llm_call_free(kmk_agent *a, llm_call *c, int cancel);
/* early speech: an LLM answer's first sentence (agent_voice.c) */
void ag_early_try(kmk_agent *a, llm_call *c);
/* the final decision for an answer that started speaking early: out (or NULL: silent) is
   merged into the early reply, or the early reply is stopped and out takes the usual way */
void ag_early_settle(kmk_agent *a, llm_call *c, reply *out);
/* the request feeding an open early reply ended without an answer: what was said stands */
void ag_early_detach(kmk_agent *a, reply *r);

#endif
