/* agent.c - one conversation's pipeline: speaker streams -> STT -> personas -> TTS -> audio out.
 *
 * Owns: the speakers (and their streams), the STT and TTS workers, the personas' brains, the
 * reply queue and the audio-out chain. Loop thread only; workers come back through the evq.
 *
 * Floor arbiter (one voice at a time, several personas): every persona decides on an event on its
 * own; the arbiter then looks at all their replies together:
 *   - a persona called by name (decision.addressed_me) gets the floor: replies to the same event
 *     from personas that were not called are dropped ("reply_dropped", reason "not addressed");
 *   - a yielding reply (decision.yield, or policy.yield) is dropped when any other reply wants the
 *     floor or a reply is being spoken (reason "yielded");
 *   - the rest queue, addressed replies ahead of others, otherwise FIFO; one is spoken at a time
 *     and none starts while a person is speaking; when its turn comes, a reply is dropped as
 *     stale if it was not addressed and a person has started speaking since it was decided (the
 *     moment it answered has passed), or if it waited more than STALE_S of timeline;
 *   - a person starting to speak while a persona talks is a barge-in: synthesis is cancelled,
 *     queued audio dropped, "interrupted" (with the heard part) logged and shown to the personas.
 * Hot reload: each persona file is watched (kmk_file_watch: directory events, debounced); a change
 * runs kmk_brain_reload on the loop between ticks and logs "persona_reload" (ok / error, ms).
 * Timer ticks: once per timeline second a "tick" event goes to the personas that define on_tick,
 * from a zero timer armed by kmk_agent_pull_frame (never inside the frame pull itself).
 * Cloud providers (agent.h): Groq STT with gates and pocketsphinx fallback, the LLM for personas'
 * KMK_ACTION_LLM, Edge-TTS for "edge" voices; all on the loop, counted in net_inflight.
 */
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
#include "kameko/worker.h"

#define MAX_PERSONAS 8
#define MAX_REPLIES 8       /* queued replies; past it the oldest unstarted one is dropped */
#define STT_QUEUE 16        /* utterances waiting for the recognizer */
#define EVQ_CAPACITY 256    /* worker->loop messages (TTS chunks block the worker when full) */
#define STREAM_RATE 16000
#define RELOAD_DEBOUNCE_MS 120
#define STALE_S 15.0 /* any reply that waited longer than this for the floor is dropped */
#define TOPUP_FRAMES 8   /* synthesized audio is encoded into `out` only up to this many frames
                            ahead, a slice at a time: a long TTS chunk never stalls a tick */
#define SLICE_MS 60

typedef enum { BOT_LISTENING, BOT_SPEAKING } bot_state;

struct kmk_speaker {
  kmk_agent *a;
  char name[64];
  double t0; /* timeline time of the stream's sample 0 */
  kmk_speaker_stream *stream;
  int in_speech;
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
  int keywords_dirty;             /* the cast changed while the recognizer was busy */

  /* cloud providers (NULL when no key / setting turns them on: the offline path as before) */
  kmk_http *http;
  kmk_ws *ws;
  kmk_groq *groq;
  kmk_llm *llm;
  kmk_edge *edge;
  kmk_gate_opts gates;
  kmk_echo_memory echo;
  struct cloud_stt *cloud_stt;    /* Groq requests in flight */
  struct llm_call *llm_calls;     /* LLM requests in flight */
  struct edge_call *edge_call;    /* Edge synthesis for `current`, or NULL */
  int net_inflight;               /* all of the above: replay --fast holds its clock */
  const char *tts_provider;       /* "edge" | "flite" | "espeak" for `current` */
  double llm_first_ms, llm_total_ms; /* set while a decision from an LLM answer is handled */
  int llm_lat;
};

static double now(kmk_agent *a) { return a->o.now(a->o.now_ud); }
static double ms_since(uint64_t t_ns) { return (double)(uv_hrtime() - t_ns) / 1e6; }

static void emit(kmk_agent *a, cJSON *ev) {
  if (!ev) return;
  kmk_eventlog_write(a->o.log, ev);
  cJSON_Delete(ev);
}

static void emit_error(kmk_agent *a, const char *speaker, const char *stage, const char *msg) {
  KMK_ERR(stage, "%s", msg);
  cJSON *ev = kmk_event_new(now(a), "error", speaker);
  cJSON_AddStringToObject(ev, "stage", stage);
  cJSON_AddStringToObject(ev, "message", msg);
  emit(a, ev);
}

/* ---------------------------------------------------------------- personas and decisions */

static void speak_next(kmk_agent *a);
static void teach_names(kmk_agent *a);
static void handle_action(kmk_agent *a, int p, const cJSON *trigger, kmk_brain_action *act,
                          uint64_t speech_end_ns, double stt_ms, double brain_ms, reply **out);

static void drop_reply(kmk_agent *a, reply *r, const char *reason) {
  cJSON *ev = kmk_event_new(now(a), "reply_dropped", a->personas[r->persona].info->name);
  cJSON_AddStringToObject(ev, "persona", a->personas[r->persona].info->name);
  cJSON_AddStringToObject(ev, "reason", reason);
  cJSON_AddStringToObject(ev, "response", r->text);
  emit(a, ev);
  free(r->text);
  free(r);
}

static void enqueue_reply(kmk_agent *a, reply *r);

/* The arbiter's look at one event's replies (see the top of the file); takes them all. */
static void arbitrate(kmk_agent *a, reply **batch, size_t n) {
  int addressed = -1;
  for (size_t i = 0; i < n; i++)
    if (batch[i]->addressed_me) addressed = (int)i;
  for (size_t i = 0; i < n; i++) {
    reply *r = batch[i];
    if (addressed >= 0 && !r->addressed_me) {
      char why[160];
      snprintf(why, sizeof why, "not addressed; %s was called by name",
               a->personas[batch[addressed]->persona].info->name);
      drop_reply(a, r, why);
      batch[i] = NULL;
      continue;
    }
    int others = a->current != NULL || a->queue_head != NULL;
    for (size_t k = 0; k < n && !others; k++) others = k != i && batch[k] && !batch[k]->yield;
    if (r->yield && others) {
      drop_reply(a, r, "yielded: another persona has or wants the floor");
      batch[i] = NULL;
    }
  }
  for (int pass = 0; pass < 2; pass++) /* addressed replies first */
    for (size_t i = 0; i < n; i++)
      if (batch[i] && (pass == 0) == (batch[i]->addressed_me != 0)) {
        enqueue_reply(a, batch[i]);
        batch[i] = NULL;
      }
}

/* Shows one event to every persona (the event is also what went to the log); their replies go to
   the arbiter together. only: 1 = just the personas that define on_tick, 2 = on_event. */
static void to_personas_ex(kmk_agent *a, const cJSON *ev, uint64_t speech_end_ns, double stt_ms,
                           int only) {
  reply *batch[MAX_PERSONAS];
  size_t nb = 0;
  a->event_seq++;
  for (size_t p = 0; p < a->n_personas; p++) {
    if (only == 1 && !a->personas[p].info->has_on_tick) continue;
    if (only == 2 && !a->personas[p].info->has_on_event) continue;
    kmk_brain_action act;
    memset(&act, 0, sizeof act);
    uint64_t t0 = uv_hrtime();
    int rc = kmk_brain_event(a->personas[p].brain, ev, now(a), &act);
    double brain_ms = ms_since(t0);
    if (rc < 0) {
      char msg[512];
      snprintf(msg, sizeof msg, "persona %s failed on a %s event (%d); see the log for the script line",
               a->personas[p].info->name, cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type")), rc);
      emit_error(a, a->personas[p].info->name, "brain", msg);
    } else {
      reply *r = NULL;
      handle_action(a, (int)p, ev, &act, speech_end_ns, stt_ms, brain_ms, &r);
      if (r) batch[nb++] = r;
    }
    kmk_brain_action_clear(&act);
  }
  if (nb) arbitrate(a, batch, nb);
}

static void to_personas(kmk_agent *a, const cJSON *ev, uint64_t speech_end_ns, double stt_ms) {
  to_personas_ex(a, ev, speech_end_ns, stt_ms, 0);
}

static void enqueue_reply(kmk_agent *a, reply *r) {
  if (a->n_queued == MAX_REPLIES) { /* bounded: drop the oldest waiting reply, say so */
    reply *old = a->queue_head;
    a->queue_head = old->next;
    if (!a->queue_head) a->queue_tail = NULL;
    a->n_queued--;
    drop_reply(a, old, "reply queue full");
  }
  /* addressed replies go ahead of the unaddressed ones (FIFO within each class) */
  reply **pp = &a->queue_head;
  if (r->addressed_me)
    while (*pp && (*pp)->addressed_me) pp = &(*pp)->next;
  else
    while (*pp) pp = &(*pp)->next;
  r->next = *pp;
  *pp = r;
  if (!r->next) a->queue_tail = r;
  a->n_queued++;
  speak_next(a);
}

/* ---------------------------------------------------------------- LLM
 * A persona's KMK_ACTION_LLM runs through kmk_llm_chat (streamed, json_object); the answer (or the
 * error) goes back to kmk_brain_llm_result, whose decision takes the usual way through the
 * arbiter. 401/402/403 turn the LLM off for every persona (their rules decide from then on). */

typedef struct llm_call {
  struct llm_call *next;
  kmk_agent *a;
  int persona;
  uint64_t request_id;
  cJSON *trigger;
  uint64_t speech_end_ns;
  double stt_ms, brain_ms;
  kmk_llm_req *req;
} llm_call;

static void llm_call_unlink(kmk_agent *a, llm_call *c) {
  for (llm_call **pp = &a->llm_calls; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  a->net_inflight--;
}

static void cancel_llm_calls(kmk_agent *a) {
  while (a->llm_calls) {
    llm_call *c = a->llm_calls;
    a->llm_calls = c->next;
    a->net_inflight--;
    kmk_llm_cancel(c->req);
    cJSON_Delete(c->trigger);
    free(c);
  }
}

static void on_llm_done(void *ud, const kmk_llm_result *r) {
  llm_call *c = ud;
  kmk_agent *a = c->a;
  llm_call_unlink(a, c);
  persona_slot *ps = &a->personas[c->persona];
  const char *err = NULL;
  char msg[512];
  if (r->err) {
    const char *fmsg = NULL;
    int fatal = kmk_llm_fatal(a->llm, &fmsg);
    snprintf(msg, sizeof msg, "LLM request failed (%s); %s's rules decide",
             fatal && fmsg ? fmsg : r->message && *r->message ? r->message : "error", ps->info->name);
    emit_error(a, ps->info->name, "llm", msg);
    err = msg;
    if (fatal)
      for (size_t p = 0; p < a->n_personas; p++)
        kmk_brain_set_llm_available(a->personas[p].brain, 0);
  }
  kmk_brain_action next;
  memset(&next, 0, sizeof next);
  uint64_t t0 = uv_hrtime();
  int rc = kmk_brain_llm_result(ps->brain, c->request_id, r->err ? NULL : r->text, err, &next);
  double brain_ms = c->brain_ms + ms_since(t0);
  if (rc < 0) {
    emit_error(a, ps->info->name, "brain", "the persona failed on the LLM's answer");
  } else {
    reply *out = NULL;
    if (!r->err) {
      a->llm_lat = 1;
      a->llm_first_ms = r->first_token_ms;
      a->llm_total_ms = r->total_ms;
    }
    handle_action(a, c->persona, c->trigger, &next, c->speech_end_ns, c->stt_ms, brain_ms, &out);
    a->llm_lat = 0;
    if (out) arbitrate(a, &out, 1);
  }
  kmk_brain_action_clear(&next);
  cJSON_Delete(c->trigger);
  free(c);
}

/* 0 when the request went out (the answer comes through on_llm_done), else -1. */
static int start_llm(kmk_agent *a, int p, const cJSON *trigger, const kmk_brain_action *act,
                     uint64_t speech_end_ns, double stt_ms, double brain_ms) {
  if (!kmk_llm_available(a->llm) || !act->llm_messages_json) return -1;
  llm_call *c = calloc(1, sizeof *c);
  if (!c || !(c->trigger = cJSON_Duplicate(trigger, 1))) {
    free(c);
    return -1;
  }
  c->a = a;
  c->persona = p;
  c->request_id = act->llm_request_id;
  c->speech_end_ns = speech_end_ns;
  c->stt_ms = stt_ms;
  c->brain_ms = brain_ms;
  kmk_llm_chat_opts co = {.temperature = 0.7, .max_tokens = 400, .json_mode = KMK_LLM_JSON_OBJECT};
  kmk_llm_callbacks cb = {NULL, NULL, on_llm_done};
  int rc = kmk_llm_chat(a->llm, act->llm_messages_json, &co, &cb, c, &c->req);
  if (rc < 0) {
    if (rc != KMK_NET_EOPEN) {
      char msg[160];
      snprintf(msg, sizeof msg, "LLM request not sent (%d); %s's rules decide", rc,
               a->personas[p].info->name);
      emit_error(a, a->personas[p].info->name, "llm", msg);
    }
    cJSON_Delete(c->trigger);
    free(c);
    return -1;
  }
  c->next = a->llm_calls;
  a->llm_calls = c;
  a->net_inflight++;
  return 0;
}

static void handle_action(kmk_agent *a, int p, const cJSON *trigger, kmk_brain_action *act,
                          uint64_t speech_end_ns, double stt_ms, double brain_ms, reply **out) {
  const char *pname = a->personas[p].info->name;
  if (act->kind == KMK_ACTION_NONE) return;
  if (act->kind == KMK_ACTION_LLM) {
    if (a->llm && start_llm(a, p, trigger, act, speech_end_ns, stt_ms, brain_ms) == 0) return;
    /* No LLM (none configured, breaker open, key refused, request refused): answer the request
       with an error so the persona's own rules decide. */
    const char *why = !a->llm ? "no LLM provider configured" : "LLM unavailable";
    kmk_brain_action next;
    memset(&next, 0, sizeof next);
    int rc = kmk_brain_llm_result(a->personas[p].brain, act->llm_request_id, NULL, why, &next);
    if (rc < 0) {
      emit_error(a, pname, "brain", "the persona failed to decide without an LLM");
    } else if (next.kind != KMK_ACTION_LLM) {
      handle_action(a, p, trigger, &next, speech_end_ns, stt_ms, brain_ms, out);
    }
    kmk_brain_action_clear(&next);
    return;
  }
  const kmk_decision *d = &act->decision;
  /* speaker = the persona deciding; to/trigger = whose event it answers */
  cJSON *ev = kmk_event_new(now(a), "decision", pname);
  cJSON_AddStringToObject(ev, "persona", pname);
  const cJSON *tt = cJSON_GetObjectItem(trigger, "type"), *ts = cJSON_GetObjectItem(trigger, "speaker");
  if (cJSON_IsString(tt)) cJSON_AddStringToObject(ev, "trigger", tt->valuestring);
  if (cJSON_IsString(ts)) cJSON_AddStringToObject(ev, "to", ts->valuestring);
  cJSON_AddStringToObject(ev, "thought", d->thought ? d->thought : "");
  cJSON_AddBoolToObject(ev, "should_speak", d->should_speak);
  cJSON_AddStringToObject(ev, "response", d->response ? d->response : "");
  cJSON_AddStringToObject(ev, "lang", d->lang);
  if (d->addressed_me) cJSON_AddBoolToObject(ev, "addressed_me", 1);
  if (d->yield) cJSON_AddBoolToObject(ev, "yield", 1);
  cJSON *lat = cJSON_AddObjectToObject(ev, "latency_ms");
  if (stt_ms >= 0) cJSON_AddNumberToObject(lat, "stt", (double)(int)(stt_ms * 10) / 10);
  cJSON_AddNumberToObject(lat, "brain", (double)(int)(brain_ms * 100) / 100);
  if (a->llm_lat) {
    cJSON *l = cJSON_AddObjectToObject(lat, "llm");
    cJSON_AddNumberToObject(l, "first_token", (double)(int)(a->llm_first_ms * 10) / 10);
    cJSON_AddNumberToObject(l, "total", (double)(int)(a->llm_total_ms * 10) / 10);
  }
  emit(a, ev);
  if (!d->should_speak || !d->response || !*d->response) return;
  reply *r = calloc(1, sizeof *r);
  if (!r || !(r->text = strdup(d->response))) {
    free(r);
    emit_error(a, pname, "agent", "out of memory queueing a reply");
    return;
  }
  r->id = ++a->next_reply_id;
  r->persona = p;
  snprintf(r->lang, sizeof r->lang, "%s", d->lang[0] ? d->lang : "en");
  r->t_decided = now(a);
  r->speech_end_ns = speech_end_ns;
  r->stt_ms = stt_ms;
  r->brain_ms = brain_ms;
  r->trigger = a->event_seq;
  r->addressed_me = d->addressed_me;
  r->yield = d->yield;
  snprintf(r->voice, sizeof r->voice, "%s", d->voice);
  r->rate = d->rate;
  r->pitch = d->pitch;
  *out = r;
}

/* ---------------------------------------------------------------- TTS */

typedef struct {
  kmk_job base;
  kmk_agent *a;
  uint64_t reply_id;
  char *text;
  int use_flite;
  char voice_name[64];
  kmk_tts_voice voice;
  int rc;
  char err[256];
} tts_job;

typedef struct tts_chunk {
  struct tts_chunk *next;
  uint64_t reply_id;
  int rate;
  size_t n, off; /* off: samples already pushed into `out` */
  int16_t pcm[];
} tts_chunk;

static void clear_pending(kmk_agent *a) {
  for (tts_chunk *c = a->pending_head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  a->pending_head = a->pending_tail = NULL;
  a->pending_samples = 0;
}

/* Moves synthesized audio into `out` (resample + Opus encode) a slice at a time, only while
   fewer than TOPUP_FRAMES are queued; ends the reply's stream once synthesis is done and nothing
   is pending. Called on chunk arrival, at synthesis end and before every frame pull. */
static void feed_out(kmk_agent *a) {
  while (a->pending_head && kmk_audio_out_queued(a->out) < TOPUP_FRAMES) {
    tts_chunk *c = a->pending_head;
    size_t slice = (size_t)c->rate * SLICE_MS / 1000, n = c->n - c->off;
    if (n > slice) n = slice;
    if (kmk_audio_out_push(a->out, c->pcm + c->off, n, c->rate) < 0) {
      emit_error(a, NULL, "tts", "audio out refused a chunk (bad rate?)");
      n = c->n - c->off;
    }
    c->off += n;
    a->pending_samples -= n;
    if (c->off >= c->n) {
      a->pending_head = c->next;
      if (!a->pending_head) a->pending_tail = NULL;
      free(c);
    }
  }
  if (a->tts_synth_done && !a->pending_head && !a->tts_finished && a->current) {
    kmk_audio_out_finish(a->out);
    a->tts_finished = 1;
  }
}

static void on_tts_chunk(void *ud, void *msg) {
  kmk_agent *a = ud;
  tts_chunk *c = msg;
  if (a->current && a->current->id == c->reply_id && !a->tts_synth_done) {
    if (a->tts_first_ms < 0) a->tts_first_ms = ms_since(a->tts_submit_ns);
    c->next = NULL;
    c->off = 0;
    if (a->pending_tail) a->pending_tail->next = c; else a->pending_head = c;
    a->pending_tail = c;
    a->pending_samples += c->n;
    feed_out(a);
    return;
  }
  free(c);
}

static int tts_chunk_cb(void *ud, const int16_t *pcm, size_t n, int rate) {
  tts_job *j = ud;
  if (kmk_job_cancelled(&j->base)) return 1;
  tts_chunk *c = malloc(sizeof *c + n * sizeof(int16_t));
  if (!c) return 1;
  c->reply_id = j->reply_id;
  c->rate = rate;
  c->n = n;
  memcpy(c->pcm, pcm, n * sizeof(int16_t));
  if (kmk_job_post(&j->base, on_tts_chunk, j->a, c) < 0) {
    free(c);
    return 1;
  }
  return 0;
}

static void tts_run(kmk_job *job) {
  tts_job *j = (tts_job *)job;
  j->voice.voice = j->voice_name;
  if (j->use_flite)
    j->rc = kmk_tts_flite_synth(j->text, &j->voice, tts_chunk_cb, j, &job->cancel, j->err,
                                sizeof j->err);
  else
    j->rc = kmk_tts_espeak_synth(j->text, &j->voice, tts_chunk_cb, j, &job->cancel, j->err,
                                 sizeof j->err);
}

static void finish_reply(kmk_agent *a, const char *end_reason);

static void tts_done(kmk_job *job, int cancelled) {
  tts_job *j = (tts_job *)job;
  kmk_agent *a = j->a;
  a->tts_inflight--;
  if (a->tts_job == job) a->tts_job = NULL;
  if (!cancelled && a->current && a->current->id == j->reply_id) {
    if (j->rc < 0) {
      char msg[400];
      snprintf(msg, sizeof msg, "speech synthesis failed: %s", j->err);
      emit_error(a, a->personas[a->current->persona].info->name, "tts", msg);
    }
    a->tts_synth_done = 1;
    feed_out(a);
    if (a->tts_finished && !a->audio_started && kmk_audio_out_queued(a->out) == 0)
      finish_reply(a, "empty");
  }
  free(j->text);
  free(j);
}

/* ---------------------------------------------------------------- Edge-TTS
 * A persona voice with engine "edge" (voice "en-US-AriaNeural", ...) is synthesized by Edge when
 * it is on; its audio (24 kHz mono) takes the same way into `out` as the workers' chunks. When
 * Edge fails before any audio arrived, the reply is spoken by the offline fallback voice (flite
 * "slt" for English, espeak with the language's code otherwise). */

typedef struct edge_call {
  kmk_agent *a;
  uint64_t reply_id;
  kmk_edge_req *req;
  size_t samples;
} edge_call;

static int submit_offline_tts(kmk_agent *a, reply *r, const kmk_voice_info *v, int edge_fallback);

static void cancel_edge(kmk_agent *a) {
  edge_call *c = a->edge_call;
  if (!c) return;
  a->edge_call = NULL;
  a->net_inflight--;
  kmk_edge_cancel(c->req);
  free(c);
}

static int edge_pcm(void *ud, const int16_t *pcm, size_t n, int rate) {
  edge_call *c = ud;
  kmk_agent *a = c->a;
  if (!a->current || a->current->id != c->reply_id) { /* not expected: finish_reply cancels */
    a->edge_call = NULL;
    a->net_inflight--;
    free(c);
    return 1; /* ends the request like a cancel: no edge_done */
  }
  tts_chunk *k = malloc(sizeof *k + n * sizeof(int16_t));
  if (!k) return 0;
  k->reply_id = c->reply_id;
  k->rate = rate;
  k->n = n;
  memcpy(k->pcm, pcm, n * sizeof(int16_t));
  c->samples += n;
  on_tts_chunk(a, k); /* takes k */
  return 0;
}

static void edge_done(void *ud, const kmk_edge_result *r) {
  edge_call *c = ud;
  kmk_agent *a = c->a;
  if (a->edge_call == c) {
    a->edge_call = NULL;
    a->net_inflight--;
  }
  if (a->current && a->current->id == c->reply_id) {
    const char *pname = a->personas[a->current->persona].info->name;
    if (r->err && c->samples == 0) {
      char msg[400];
      snprintf(msg, sizeof msg, "Edge speech synthesis failed (%s); using the offline voice",
               r->message && *r->message ? r->message : "error");
      emit_error(a, pname, "tts", msg);
      free(c);
      reply *cur = a->current;
      const kmk_voice_info *v = kmk_persona_voice(a->personas[cur->persona].info, cur->lang);
      if (submit_offline_tts(a, cur, v, 1) < 0) finish_reply(a, "error");
      return;
    }
    if (r->err) {
      char msg[400];
      snprintf(msg, sizeof msg, "Edge speech synthesis broke off (%s)",
               r->message && *r->message ? r->message : "error");
      emit_error(a, pname, "tts", msg);
    }
    a->tts_synth_done = 1;
    feed_out(a);
    if (a->tts_finished && !a->audio_started && kmk_audio_out_queued(a->out) == 0)
      finish_reply(a, "empty");
  }
  free(c);
}

/* 0 when Edge took the reply, -1 to use an offline voice. */
static int start_edge(kmk_agent *a, reply *r, const kmk_voice_info *v) {
  if (!a->edge || !v || strcmp(v->engine, "edge") != 0 || !kmk_edge_available(a->edge)) return -1;
  edge_call *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->a = a;
  c->reply_id = r->id;
  /* persona rate: words per minute (175 = Edge's +0%); pitch 0..100 (50 = +0Hz, 1 Hz a step) */
  int rate = r->rate > 0 ? r->rate : v->rate, pitch = r->pitch > 0 ? r->pitch : v->pitch;
  kmk_edge_prosody pr = {.pitch_hz = pitch > 0 ? pitch - 50 : 0,
                         .rate_pct = rate > 0 ? (rate - 175) * 100 / 175 : 0, .volume_pct = 0};
  kmk_edge_callbacks cb = {edge_pcm, edge_done};
  const char *voice = r->voice[0] && strchr(r->voice, '-') ? r->voice : v->voice;
  a->edge_call = c;
  int rc = kmk_edge_tts_synth(a->edge, r->text, voice, &pr, &cb, c, &c->req);
  if (rc < 0) {
    a->edge_call = NULL;
    free(c);
    if (rc != KMK_NET_EOPEN) {
      char msg[160];
      snprintf(msg, sizeof msg, "Edge request not sent (%d); using the offline voice", rc);
      emit_error(a, a->personas[r->persona].info->name, "tts", msg);
    }
    return -1;
  }
  a->net_inflight++;
  a->tts_provider = "edge";
  return 0;
}

static int humans_speaking(kmk_agent *a) {
  for (kmk_speaker *s = a->speakers; s; s = s->next)
    if (s->in_speech) return 1;
  return 0;
}

static void speak_next(kmk_agent *a) {
  if (a->state != BOT_LISTENING) return;
  for (reply *h; (h = a->queue_head) != NULL;) {
    const char *why = now(a) - h->t_decided > STALE_S ? "stale: waited too long for the floor"
                      : !h->addressed_me && h->t_decided < a->last_speech_start_t
                          ? "stale: someone spoke since it was decided"
                          : NULL;
    if (!why) break;
    a->queue_head = h->next;
    if (!a->queue_head) a->queue_tail = NULL;
    a->n_queued--;
    drop_reply(a, h, why);
  }
  if (!a->queue_head) return;
  if (a->muted) { /* decided and logged, never voiced: a muted agent's replies do not wait */
    while (a->queue_head) {
      reply *h = a->queue_head;
      a->queue_head = h->next;
      a->n_queued--;
      drop_reply(a, h, "muted");
    }
    a->queue_tail = NULL;
    return;
  }
  /* Nobody starts while a person speaks, except a persona whose policy.may_interrupt says so
     (a moderator that must cut in). */
  if (humans_speaking(a) && !a->personas[a->queue_head->persona].info->may_interrupt) return;
  reply *r = a->queue_head;
  a->queue_head = r->next;
  if (!a->queue_head) a->queue_tail = NULL;
  a->n_queued--;
  r->next = NULL;
  a->current = r;
  a->state = BOT_SPEAKING;
  a->tts_finished = 0;
  a->tts_synth_done = 0;
  clear_pending(a);
  a->audio_started = 0;
  a->frames_sent = 0;
  a->tts_first_ms = -1;
  kmk_audio_out_clear(a->out);

  const kmk_persona_info *info = a->personas[r->persona].info;
  const kmk_voice_info *v = kmk_persona_voice(info, r->lang);
  a->tts_submit_ns = uv_hrtime();
  if (start_edge(a, r, v) == 0) return;
  if (submit_offline_tts(a, r, v, v && strcmp(v->engine, "edge") == 0) < 0) finish_reply(a, "error");
}

/* The reply through the espeak/flite worker. edge_fallback: v is an Edge voice, use the offline
   voice for the language instead. -1 (error logged) when the worker refused it. */
static int submit_offline_tts(kmk_agent *a, reply *r, const kmk_voice_info *v, int edge_fallback) {
  const kmk_persona_info *info = a->personas[r->persona].info;
  tts_job *j = calloc(1, sizeof *j);
  if (!j || !(j->text = strdup(r->text))) {
    free(j);
    emit_error(a, info->name, "tts", "out of memory");
    return -1;
  }
  j->a = a;
  j->reply_id = r->id;
  int en = strcmp(r->lang, "en") == 0;
  if (edge_fallback) {
    j->use_flite = en;
    snprintf(j->voice_name, sizeof j->voice_name, "%s", en ? "slt" : r->lang);
  } else {
    j->use_flite = v && strcmp(v->engine, "flite") == 0;
    snprintf(j->voice_name, sizeof j->voice_name, "%s",
             r->voice[0] ? r->voice : v ? v->voice : (strcmp(r->lang, "ru") == 0 ? "ru" : "en-us"));
  }
  /* persona rate is words per minute (0 = default, ~175), pitch 0..100 (0 = default, ~50);
     a decision's voice overrides win */
  int rate = r->rate > 0 ? r->rate : v ? v->rate : 0, pitch = r->pitch > 0 ? r->pitch : v ? v->pitch : 0;
  j->voice.rate_pct = rate > 0 ? (rate - 175) * 100 / 175 : 0;
  j->voice.pitch_pct = pitch > 0 ? pitch - 50 : 0;
  j->base.run = tts_run;
  j->base.done = tts_done;
  kmk_worker *w = j->use_flite ? a->flite_worker : a->espeak_worker;
  int rc = kmk_worker_submit(w, &j->base);
  if (rc < 0) {
    free(j->text);
    free(j);
    emit_error(a, info->name, "tts", "speech synthesis queue refused the reply");
    return -1;
  }
  a->tts_provider = j->use_flite ? "flite" : "espeak";
  a->tts_job = &j->base;
  a->tts_inflight++;
  return 0;
}

/* Ends the current reply (all audio sent, interrupted, or failed) and starts the next one. */
static void finish_reply(kmk_agent *a, const char *end_reason) {
  reply *r = a->current;
  if (!r) return;
  cancel_edge(a);
  if (a->audio_started) {
    cJSON *ev = kmk_event_new(now(a), "audio_out_end", a->personas[r->persona].info->name);
    cJSON_AddStringToObject(ev, "reason", end_reason);
    cJSON_AddNumberToObject(ev, "frames", (double)a->frames_sent);
    emit(a, ev);
    cJSON *said = kmk_event_new(now(a), "bot_speech", a->personas[r->persona].info->name);
    cJSON_AddStringToObject(said, "text", r->text);
    cJSON_AddStringToObject(said, "lang", r->lang);
    cJSON_AddBoolToObject(said, "complete", strcmp(end_reason, "done") == 0);
    /* not written to the log (audio_out_* already are); shown to the personas */
    to_personas(a, said, 0, -1);
    cJSON_Delete(said);
  }
  free(r->text);
  free(r);
  a->current = NULL;
  clear_pending(a);
  a->state = BOT_LISTENING;
  speak_next(a);
}

/* Stops the voice now: synthesis cancelled, queued audio dropped, then "playback_stop" (see
   agent.h) is written before anything else, so a transport watching the log can drop the audio it
   already sent. Returns the share of the reply's text that was heard (caller frees), or NULL. */
static char *stop_playback(kmk_agent *a, const char *reason, const char *by) {
  reply *r = a->current;
  if (!r) return NULL;
  if (a->tts_job) kmk_job_cancel(a->tts_job);
  cancel_edge(a);
  /* What the listener heard: the share of the reply's audio that went out, as a text prefix. */
  size_t queued = kmk_audio_out_queued(a->out);
  size_t pending_frames = a->pending_head ? a->pending_samples * 50 / (size_t)a->pending_head->rate : 0;
  size_t total = a->frames_sent + queued + pending_frames;
  size_t len = strlen(r->text);
  size_t heard = total && a->tts_synth_done ? len * a->frames_sent / total : 0;
  if (!a->tts_synth_done && a->frames_sent) heard = len / 2; /* unknown length: a rough half */
  while (heard < len && (r->text[heard] & 0xC0) == 0x80) heard++; /* whole UTF-8 sequences */
  kmk_audio_out_clear(a->out);
  clear_pending(a);
  const char *pname = a->personas[r->persona].info->name;
  cJSON *ev = kmk_event_new(now(a), "playback_stop", pname);
  cJSON_AddStringToObject(ev, "persona", pname);
  cJSON_AddStringToObject(ev, "reason", reason);
  if (by) cJSON_AddStringToObject(ev, "by", by);
  cJSON_AddNumberToObject(ev, "reply_id", (double)r->id);
  cJSON_AddNumberToObject(ev, "frames_sent", (double)a->frames_sent);
  emit(a, ev);
  return strndup(r->text, heard);
}

static void barge_in(kmk_agent *a, const char *who) {
  if (a->state != BOT_SPEAKING || !a->current) return;
  reply *r = a->current;
  if (a->personas[r->persona].info->may_interrupt) return; /* it holds the floor to the end */
  cancel_llm_calls(a); /* decisions for a moment that has passed */
  char *h = stop_playback(a, "barge_in", who);
  cJSON *ev = kmk_event_new(now(a), "interrupted", a->personas[r->persona].info->name);
  cJSON_AddStringToObject(ev, "by", who);
  cJSON_AddStringToObject(ev, "heard", h ? h : "");
  free(h);
  kmk_eventlog_write(a->o.log, ev);
  finish_reply(a, "interrupted"); /* bot_speech (complete = false) first, then the heard part */
  to_personas(a, ev, 0, -1);
  cJSON_Delete(ev);
}

/* ---------------------------------------------------------------- STT
 * Offline: the utterance goes to the pocketsphinx worker. With GROQ_API_KEY: the audio gate runs
 * first (too short / too quiet never leave the machine), then Groq; its transcript passes the
 * transcript gates and the echo check (bot speech leaking back) or is dropped with the gate's
 * reason. A Groq failure, an open breaker or a fatal key falls back to pocketsphinx with the same
 * audio: the turn is never lost. */

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
} stt_job;

typedef struct cloud_stt {
  struct cloud_stt *next;
  kmk_agent *a;
  stt_job *j;
  kmk_groq_req *req;
} cloud_stt;

static void stt_job_free(stt_job *j) {
  kmk_transcript_clear(&j->tr);
  free(j->pcm);
  free(j);
}

static void stt_run(kmk_job *job) {
  stt_job *j = (stt_job *)job;
  uint64_t t0 = uv_hrtime();
  j->rc = kmk_stt_sphinx_transcribe(j->a->stt, j->pcm, j->n, "en", &job->cancel, &j->tr, j->err,
                                    sizeof j->err);
  j->run_ms = ms_since(t0);
}

static void emit_dropped(kmk_agent *a, const stt_job *j, const char *reason, const char *provider,
                         const char *text) {
  cJSON *ev = kmk_event_new(now(a), "transcript_dropped", j->speaker);
  cJSON_AddStringToObject(ev, "reason", reason);
  if (provider) cJSON_AddStringToObject(ev, "provider", provider);
  if (text) cJSON_AddStringToObject(ev, "text", text);
  cJSON_AddNumberToObject(ev, "audio_s", (double)j->n / STREAM_RATE);
  emit(a, ev);
}

static void emit_transcript(kmk_agent *a, const stt_job *j, const char *text, const char *lang_in,
                            double confidence, const char *provider, double stt_ms,
                            double decode_ms) {
  char lang[8];
  snprintf(lang, sizeof lang, "%s", lang_in && lang_in[0] ? lang_in : "en");
  lang[strcspn(lang, "-_")] = '\0'; /* "en-US" -> "en": personas speak in languages */
  cJSON *ev = kmk_event_new(now(a), "transcript", j->speaker);
  cJSON_AddStringToObject(ev, "text", text);
  cJSON_AddStringToObject(ev, "lang", lang);
  cJSON_AddNumberToObject(ev, "confidence", (double)(int)(confidence * 1000) / 1000);
  cJSON_AddNumberToObject(ev, "audio_s", (double)(int)((double)j->n / STREAM_RATE * 1000) / 1000);
  cJSON_AddStringToObject(ev, "provider", provider);
  cJSON *lat = cJSON_AddObjectToObject(ev, "latency_ms");
  cJSON_AddNumberToObject(lat, "stt", (double)(int)(stt_ms * 10) / 10);
  cJSON_AddNumberToObject(lat, "stt_decode", (double)(int)(decode_ms * 10) / 10);
  kmk_eventlog_write(a->o.log, ev);
  to_personas(a, ev, j->end_ns, stt_ms);
  cJSON_Delete(ev);
}

static void stt_done(kmk_job *job, int cancelled) {
  stt_job *j = (stt_job *)job;
  kmk_agent *a = j->a;
  a->stt_inflight--;
  if (a->keywords_dirty && a->stt_inflight == 0) teach_names(a);
  if (!cancelled) {
    double stt_ms = ms_since(j->submit_ns);
    if (j->rc < 0) {
      char msg[400];
      snprintf(msg, sizeof msg, "speech recognition failed: %s", j->err);
      emit_error(a, j->speaker, "stt", msg);
    } else if (!j->tr.text || !*j->tr.text) {
      emit_dropped(a, j, "no words recognized", a->groq ? "pocketsphinx" : NULL, NULL);
    } else if (a->groq && kmk_echo_match(&a->echo, &a->gates, j->tr.text, now(a))) {
      emit_dropped(a, j, kmk_gate_reason_name(KMK_GATE_ECHO), "pocketsphinx", j->tr.text);
    } else {
      emit_transcript(a, j, j->tr.text, j->tr.lang, j->tr.confidence, "pocketsphinx", stt_ms,
                      j->run_ms);
    }
  }
  stt_job_free(j);
}

/* Takes j: the pocketsphinx worker transcribes it (or an error event says why not). */
static void submit_sphinx(kmk_agent *a, stt_job *j) {
  j->base.run = stt_run;
  j->base.done = stt_done;
  int rc = kmk_worker_submit(a->stt_worker, &j->base);
  if (rc < 0) {
    emit_error(a, j->speaker, "stt",
               rc == -EAGAIN ? "recognizer queue full: utterance not transcribed"
                             : "recognizer stopped");
    stt_job_free(j);
  } else {
    a->stt_inflight++;
  }
}

static void cloud_stt_unlink(kmk_agent *a, cloud_stt *c) {
  for (cloud_stt **pp = &a->cloud_stt; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  a->net_inflight--;
}

static void groq_done(void *ud, const kmk_groq_result *r) {
  cloud_stt *c = ud;
  kmk_agent *a = c->a;
  stt_job *j = c->j;
  cloud_stt_unlink(a, c);
  free(c);
  if (r->err) {
    char msg[512];
    snprintf(msg, sizeof msg, "Groq speech recognition failed (%s%s); using pocketsphinx",
             r->message && *r->message ? r->message : "error",
             kmk_groq_fatal(a->groq, NULL) ? "; Groq disabled until restart" : "");
    emit_error(a, j->speaker, "stt", msg);
    submit_sphinx(a, j);
    return;
  }
  double stt_ms = ms_since(j->submit_ns);
  const char *text = r->t && r->t->text ? r->t->text : "";
  const char *lang = r->t && r->t->lang[0] ? r->t->lang : "en";
  kmk_gate_reason g = kmk_gate_transcript(&a->gates, text, lang, r->segments, r->n_segments);
  if (g == KMK_GATE_PASS && kmk_echo_match(&a->echo, &a->gates, text, now(a))) g = KMK_GATE_ECHO;
  if (g != KMK_GATE_PASS)
    emit_dropped(a, j, kmk_gate_reason_name(g), "groq", text);
  else
    emit_transcript(a, j, text, lang, r->t->confidence, "groq", stt_ms, r->total_ms);
  stt_job_free(j);
}

/* A finished utterance: Groq when configured and available, else pocketsphinx. Takes j. */
static void start_stt(kmk_agent *a, stt_job *j) {
  if (!a->groq) {
    submit_sphinx(a, j);
    return;
  }
  double rms = 0;
  kmk_gate_reason g = kmk_gate_audio(&a->gates, j->pcm, j->n, STREAM_RATE, &rms);
  if (g != KMK_GATE_PASS) {
    emit_dropped(a, j, kmk_gate_reason_name(g), NULL, NULL);
    stt_job_free(j);
    return;
  }
  if (!kmk_groq_available(a->groq)) {
    submit_sphinx(a, j); /* breaker open or key refused: no wait, no request */
    return;
  }
  cloud_stt *c = calloc(1, sizeof *c);
  if (!c) {
    submit_sphinx(a, j);
    return;
  }
  c->a = a;
  c->j = j;
  int rc = kmk_groq_transcribe(a->groq, j->pcm, j->n, NULL, groq_done, c, &c->req);
  if (rc < 0) {
    free(c);
    if (rc != KMK_NET_EOPEN) {
      char msg[160];
      snprintf(msg, sizeof msg, "Groq request not sent (%d); using pocketsphinx", rc);
      emit_error(a, j->speaker, "stt", msg);
    }
    submit_sphinx(a, j);
    return;
  }
  c->next = a->cloud_stt;
  a->cloud_stt = c;
  a->net_inflight++;
}

/* ---------------------------------------------------------------- speakers */

static void on_stream_event(void *ud, const kmk_stream_event *sev) {
  kmk_speaker *s = ud;
  kmk_agent *a = s->a;
  double t;
  switch (sev->type) {
    case KMK_EP_SPEECH_START: {
      /* t = when the turn was detected (the timeline tick); audio_t = where its audio begins,
         pre-roll included, sample-accurate */
      t = s->t0 + (double)sev->start_sample / STREAM_RATE;
      s->in_speech = 1;
      a->last_speech_start_t = now(a);
      cJSON *ev = kmk_event_new(now(a), "speech_start", s->name);
      cJSON_AddNumberToObject(ev, "audio_t", round(t * 1000) / 1000);
      kmk_eventlog_write(a->o.log, ev);
      barge_in(a, s->name);
      to_personas_ex(a, ev, 0, -1, 2); /* stage event: only to on_event hooks */
      cJSON_Delete(ev);
      break;
    }
    case KMK_EP_SPEECH_END: {
      t = s->t0 + (double)(sev->start_sample + sev->length) / STREAM_RATE;
      s->in_speech = 0;
      cJSON *ev = kmk_event_new(now(a), "speech_end", s->name);
      cJSON_AddNumberToObject(ev, "audio_t", round(t * 1000) / 1000);
      cJSON_AddNumberToObject(ev, "duration_s", round((double)sev->length / STREAM_RATE * 1000) / 1000);
      if (sev->forced) cJSON_AddBoolToObject(ev, "forced", 1);
      kmk_eventlog_write(a->o.log, ev);
      to_personas_ex(a, ev, 0, -1, 2);
      cJSON_Delete(ev);
      stt_job *j = calloc(1, sizeof *j);
      int16_t *pcm = kmk_speaker_stream_take_pcm(s->stream);
      if (!j || !pcm) {
        free(j);
        free(pcm);
        emit_error(a, s->name, "stt", "out of memory for an utterance");
        break;
      }
      j->a = a;
      snprintf(j->speaker, sizeof j->speaker, "%s", s->name);
      j->pcm = pcm;
      j->n = (size_t)sev->length;
      j->end_ns = j->submit_ns = uv_hrtime();
      start_stt(a, j);
      speak_next(a); /* a reply may have waited for this person to finish */
      break;
    }
    case KMK_EP_DISCARD: {
      s->in_speech = 0;
      speak_next(a);
      break;
    }
    default: /* KMK_EP_EVENT_NONE and tentative events nothing acts on yet */
      break;
  }
}

kmk_speaker *kmk_agent_speaker_join(kmk_agent *a, const char *name, double t) {
  kmk_speaker *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->a = a;
  snprintf(s->name, sizeof s->name, "%s", name);
  s->t0 = t;
  s->stream = kmk_speaker_stream_new(NULL, on_stream_event, s);
  if (!s->stream) {
    free(s);
    emit_error(a, name, "audio", "cannot create a speaker stream");
    return NULL;
  }
  s->next = a->speakers;
  a->speakers = s;
  cJSON *ev = kmk_event_new(t, "join", name);
  kmk_eventlog_write(a->o.log, ev);
  to_personas(a, ev, 0, -1);
  cJSON_Delete(ev);
  return s;
}

int kmk_agent_speaker_pcm(kmk_speaker *s, const int16_t *pcm, size_t frames, int rate,
                          int channels) {
  return kmk_speaker_stream_push_s16(s->stream, pcm, frames, rate, channels);
}

int kmk_agent_speaker_opus(kmk_speaker *s, const uint8_t *pkt, size_t len) {
  return kmk_speaker_stream_push_opus(s->stream, pkt, len);
}

void kmk_agent_speaker_leave(kmk_agent *a, kmk_speaker *s) {
  kmk_speaker_stream_finish(s->stream); /* finishes an utterance in progress */
  kmk_speaker **pp = &a->speakers;
  while (*pp && *pp != s) pp = &(*pp)->next;
  if (*pp) *pp = s->next;
  double t = s->t0 + (double)kmk_speaker_stream_position(s->stream) / STREAM_RATE;
  cJSON *ev = kmk_event_new(t, "leave", s->name);
  kmk_eventlog_write(a->o.log, ev);
  to_personas(a, ev, 0, -1);
  cJSON_Delete(ev);
  kmk_speaker_stream_free(s->stream);
  free(s);
  speak_next(a);
}

int kmk_agent_chat(kmk_agent *a, const char *speaker, const char *text) {
  if (!a || !speaker || !*speaker || !text || !*text) return -1;
  cJSON *ev = kmk_event_new(now(a), "chat", speaker);
  cJSON_AddStringToObject(ev, "text", text);
  kmk_eventlog_write(a->o.log, ev);
  to_personas(a, ev, 0, -1);
  cJSON_Delete(ev);
  return 0;
}

/* ---------------------------------------------------------------- audio out */

static void maybe_tick(kmk_agent *a);

const kmk_out_frame *kmk_agent_pull_frame(kmk_agent *a) {
  if (a->state != BOT_SPEAKING) {
    maybe_tick(a);
    return NULL;
  }
  feed_out(a);
  const kmk_out_frame *f = kmk_audio_out_pop(a->out);
  if (f) {
    if (!a->audio_started) {
      a->audio_started = 1;
      reply *r = a->current;
      cJSON *ev = kmk_event_new(now(a), "audio_out_start", a->personas[r->persona].info->name);
      cJSON_AddStringToObject(ev, "text", r->text);
      cJSON_AddStringToObject(ev, "lang", r->lang);
      if (a->tts_provider) cJSON_AddStringToObject(ev, "provider", a->tts_provider);
      kmk_echo_add(&a->echo, r->text, now(a)); /* a transcript repeating it is our own voice */
      cJSON *lat = cJSON_AddObjectToObject(ev, "latency_ms");
      if (a->tts_first_ms >= 0)
        cJSON_AddNumberToObject(lat, "tts_first_audio", (double)(int)(a->tts_first_ms * 10) / 10);
      if (r->speech_end_ns)
        cJSON_AddNumberToObject(lat, "speech_end_to_audio",
                                (double)(int)(ms_since(r->speech_end_ns) * 10) / 10);
      emit(a, ev);
    }
    a->frames_sent++;
    maybe_tick(a);
    return f;
  }
  if (a->tts_finished) finish_reply(a, "done");
  maybe_tick(a);
  return NULL;
}

/* ---------------------------------------------------------------- ticks and hot reload */

static void on_tick_due(uv_timer_t *t) {
  kmk_agent *a = t->data;
  /* t = the timeline second that passed (in --fast the timer runs a few ticks later) */
  cJSON *ev = kmk_event_new(a->next_tick_t - 1.0, "tick", NULL);
  to_personas_ex(a, ev, 0, -1, 1); /* not logged: one a second, only deciding ones show */
  cJSON_Delete(ev);
}

/* Called from the frame pull: arms the zero timer once the timeline passed the next second. */
static void maybe_tick(kmk_agent *a) {
  if (!a->any_on_tick || !a->tick_timer) return;
  double t = now(a);
  if (t + 1e-9 < a->next_tick_t) return;
  a->next_tick_t = floor(t) + 1.0;
  uv_timer_start(a->tick_timer, on_tick_due, 0, 0);
}

static void update_on_tick(kmk_agent *a) {
  a->any_on_tick = 0;
  for (size_t p = 0; p < a->n_personas; p++)
    if (a->personas[p].info->has_on_tick) a->any_on_tick = 1;
}

static void on_persona_changed(void *ud) {
  persona_slot *ps = ud;
  kmk_agent *a = ps->a;
  char err[1024], before[64];
  snprintf(before, sizeof before, "%s", ps->info->name);
  uint64_t t0 = uv_hrtime();
  int rc = kmk_brain_reload(ps->brain, err, sizeof err);
  double ms = ms_since(t0);
  cJSON *ev = kmk_event_new(now(a), "persona_reload", ps->info->name);
  cJSON_AddStringToObject(ev, "persona", ps->info->name);
  cJSON_AddStringToObject(ev, "file", kmk_brain_path(ps->brain));
  cJSON_AddBoolToObject(ev, "ok", rc == 0);
  if (rc != 0) {
    cJSON_AddStringToObject(ev, "error", err);
    ps->reload_failures++;
  } else {
    ps->reloads++;
    if (strcmp(before, ps->info->name) != 0) cJSON_AddStringToObject(ev, "was", before);
  }
  cJSON_AddNumberToObject(ev, "ms", round(ms * 100) / 100);
  emit(a, ev);
  if (rc == 0) update_on_tick(a);
}

/* ---------------------------------------------------------------- lifecycle */

int kmk_agent_jobs_pending(const kmk_agent *a) {
  return a->stt_inflight > 0 || a->tts_inflight > 0 || a->llm_inflight > 0 || a->net_inflight > 0 ||
         kmk_evq_pending(a->evq) > 0;
}

int kmk_agent_busy(const kmk_agent *a) {
  if (kmk_agent_jobs_pending(a) || a->state == BOT_SPEAKING || a->queue_head) return 1;
  for (kmk_speaker *s = a->speakers; s; s = s->next)
    if (s->in_speech) return 1;
  return 0;
}

static void free_handle(uv_handle_t *h) { free(h); }

/* Cloud providers from the config: Groq with GROQ_API_KEY, the LLM with LLM_API_KEY (or
   OPENROUTER_API_KEY), Edge-TTS with either key, with EDGE_TTS_URL set to something other than its
   default, or with EDGE_TTS=1 in the environment. Nothing is created without them. */
static int start_cloud(kmk_agent *a) {
  const kmk_config *c = a->o.config;
  if (!c) return 0;
  const char *gk = c->groq_api_key, *lk = kmk_config_llm_key(c), *env = getenv("EDGE_TTS");
  int groq = gk && *gk, llm = lk && *lk;
  int edge = groq || llm || (env && strcmp(env, "1") == 0) ||
             (c->edge_tts_url && strcmp(c->edge_tts_url, KMK_EDGE_DEFAULT_URL) != 0);
  if (!groq && !llm && !edge) return 0;
  if (groq || llm) {
    a->http = kmk_http_new(a->o.loop);
    if (!a->http) return -1;
  }
  if (groq) {
    kmk_groq_opts go = {.base_url = c->groq_base_url, .api_key = gk, .model = c->stt_model};
    if (!(a->groq = kmk_groq_new(a->http, &go))) return -1;
  }
  if (llm) {
    kmk_llm_opts lo = {.base_url = c->llm_base_url, .api_key = lk, .model = c->llm_model,
                       .title = "Kameko"};
    if (!(a->llm = kmk_llm_new(a->http, &lo))) return -1;
  }
  if (edge) {
    a->ws = kmk_ws_new(a->o.loop);
    kmk_edge_opts eo = {.url = c->edge_tts_url};
    if (!a->ws || !(a->edge = kmk_edge_new(a->ws, &eo))) return -1;
  }
  KMK_INFO("agent", "cloud providers: stt %s, llm %s, tts %s", groq ? "groq" : "offline",
           llm ? "on" : "offline", edge ? "edge (for edge voices)" : "offline");
  return 0;
}

static void net_closed(void *ud) { (*(int *)ud)--; }

/* Cancels every request and closes the clients, running the loop until their handles are gone
   (kmk_agent_free is called outside uv_run). */
static void stop_cloud(kmk_agent *a) {
  while (a->cloud_stt) {
    cloud_stt *c = a->cloud_stt;
    a->cloud_stt = c->next;
    kmk_groq_cancel(c->req);
    stt_job_free(c->j);
    free(c);
  }
  cancel_llm_calls(a);
  cancel_edge(a);
  a->net_inflight = 0;
  kmk_groq_free(a->groq);
  kmk_llm_free(a->llm);
  kmk_edge_free(a->edge);
  a->groq = NULL;
  a->llm = NULL;
  a->edge = NULL;
  int open = 0;
  if (a->http) {
    open++;
    kmk_http_close(a->http, net_closed, &open);
  }
  if (a->ws) {
    open++;
    kmk_ws_close(a->ws, net_closed, &open);
  }
  a->http = NULL;
  a->ws = NULL;
  for (int i = 0; open > 0 && i < 100000; i++) uv_run(a->o.loop, UV_RUN_ONCE);
  kmk_echo_free(&a->echo);
}

/* The recognizer learns every persona's name and wake words (only while no utterance is being
   transcribed: the recognizer is not shared between threads; otherwise after the last one). */
static void teach_names(kmk_agent *a) {
  if (a->stt_inflight > 0) {
    a->keywords_dirty = 1;
    return;
  }
  a->keywords_dirty = 0;
  const char *words[32];
  size_t nw = 0;
  for (size_t p = 0; p < a->n_personas; p++) {
    const kmk_persona_info *info = a->personas[p].info;
    for (int k = 0; k <= info->n_wake_words; k++) {
      const char *w = k < info->n_wake_words ? info->wake_words[k] : info->name;
      /* Phrases are left out (their words are listed on their own), and so are non-Latin
         spellings: the English recognizer would write "камеко" into an English transcript, while
         the Latin spelling already catches the same sound. */
      int dup = strchr(w, ' ') != NULL;
      for (const char *c = w; *c && !dup; c++) dup = (unsigned char)*c >= 0x80;
      for (size_t i = 0; i < nw && !dup; i++) dup = strcasecmp(words[i], w) == 0;
      if (!dup && nw < 32) words[nw++] = w;
    }
  }
  if (kmk_stt_sphinx_set_keywords(a->stt, words, nw) < 0)
    KMK_WARN("agent", "some persona names could not be taught to the recognizer");
}

kmk_agent *kmk_agent_new(const kmk_agent_opts *o, char *err, size_t errlen) {
  kmk_agent *a = calloc(1, sizeof *a);
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  a->o = *o;
  if (o->n_personas == 0 || o->n_personas > MAX_PERSONAS) {
    snprintf(err, errlen, "between 1 and %d personas, please", MAX_PERSONAS);
    free(a);
    return NULL;
  }
  a->state = BOT_LISTENING;
  kmk_gate_opts_default(&a->gates);
  kmk_echo_init(&a->echo);
  if (start_cloud(a) < 0) {
    snprintf(err, errlen, "cannot start the cloud providers (bad base URL?)");
    goto fail;
  }
  int llm = a->llm != NULL;
  for (size_t p = 0; p < o->n_personas; p++) {
    kmk_brain_opts bo = {.scripts_dir = o->scripts_dir,
                         .persona_path = o->persona_paths[p],
                         .llm_available = llm,
                         .mem_limit = (size_t)o->config->lua_mem_mb << 20,
                         .budget_ms = o->config->lua_budget_ms};
    a->personas[p].brain = kmk_brain_new(&bo, err, errlen);
    if (!a->personas[p].brain) goto fail;
    a->personas[p].info = kmk_brain_persona(a->personas[p].brain);
    a->personas[p].a = a;
    a->n_personas++;
    if (!o->no_watch) {
      a->personas[p].watch = kmk_file_watch_new(o->loop, o->persona_paths[p], RELOAD_DEBOUNCE_MS,
                                                on_persona_changed, &a->personas[p]);
      if (!a->personas[p].watch)
        KMK_WARN("agent", "cannot watch %s: edits will not be reloaded", o->persona_paths[p]);
    }
  }
  update_on_tick(a);
  a->next_tick_t = 1.0;
  a->tick_timer = calloc(1, sizeof *a->tick_timer);
  if (!a->tick_timer) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  uv_timer_init(o->loop, a->tick_timer);
  a->tick_timer->data = a;
  kmk_stt_sphinx_opts so;
  memset(&so, 0, sizeof so);
  a->stt = kmk_stt_sphinx_new(&so, err, errlen);
  if (!a->stt) goto fail;
  teach_names(a);
  a->out = kmk_audio_out_new(0, 0, err, errlen);
  a->evq = kmk_evq_new(o->loop, EVQ_CAPACITY);
  if (!a->out || !a->evq) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  a->stt_worker = kmk_worker_new(a->evq, "stt", STT_QUEUE);
  a->espeak_worker = kmk_worker_new(a->evq, "espeak", 2);
  a->flite_worker = kmk_worker_new(a->evq, "flite", 2);
  if (!a->stt_worker || !a->espeak_worker || !a->flite_worker) {
    snprintf(err, errlen, "cannot start worker threads");
    goto fail;
  }
  a->state = BOT_LISTENING;
  return a;
fail:
  kmk_agent_free(a);
  return NULL;
}

void kmk_agent_free(kmk_agent *a) {
  if (!a) return;
  if (a->tick_timer) uv_timer_stop(a->tick_timer);
  stop_cloud(a); /* network first (runs the loop until its handles closed; the agent is whole) */
  /* Workers first: their pending done callbacks still see a whole agent. */
  if (a->tts_job) kmk_job_cancel(a->tts_job);
  kmk_worker_free(a->stt_worker);
  kmk_worker_free(a->espeak_worker);
  kmk_worker_free(a->flite_worker);
  a->stt_worker = a->espeak_worker = a->flite_worker = NULL;
  if (a->evq) kmk_evq_close(a->evq); /* frees itself in the close callback */
  while (a->speakers) {
    kmk_speaker *s = a->speakers;
    a->speakers = s->next;
    kmk_speaker_stream_free(s->stream);
    free(s);
  }
  for (reply *r = a->queue_head, *n; r; r = n) {
    n = r->next;
    free(r->text);
    free(r);
  }
  if (a->current) {
    free(a->current->text);
    free(a->current);
  }
  clear_pending(a);
  for (size_t p = 0; p < a->n_personas; p++) {
    kmk_file_watch_free(a->personas[p].watch); /* handles close on the loop's next run */
    kmk_brain_free(a->personas[p].brain);
  }
  if (a->tick_timer) uv_close((uv_handle_t *)a->tick_timer, free_handle);
  kmk_stt_sphinx_free(a->stt);
  kmk_audio_out_free(a->out);
  free(a);
}

/* ---------------------------------------------------------------- controls: cast, forget, mute */

static void watch_persona(kmk_agent *a, size_t p) {
  if (a->o.no_watch) return;
  const char *path = kmk_brain_path(a->personas[p].brain);
  a->personas[p].watch =
      kmk_file_watch_new(a->o.loop, path, RELOAD_DEBOUNCE_MS, on_persona_changed, &a->personas[p]);
  if (!a->personas[p].watch) KMK_WARN("agent", "cannot watch %s: edits will not be reloaded", path);
}

int kmk_agent_set_cast(kmk_agent *a, const char *const *paths, size_t n, char *err,
                       size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  if (!a || !paths || n == 0 || n > MAX_PERSONAS) {
    snprintf(err, errlen, "between 1 and %d personas, please", MAX_PERSONAS);
    return -1;
  }
  /* 1. every new file loads (a persona already in the cast keeps its brain and conversation) */
  kmk_brain *brains[MAX_PERSONAS] = {0};
  int from[MAX_PERSONAS]; /* new slot -> old slot, or -1 for a fresh brain */
  int llm = a->llm && kmk_llm_available(a->llm);
  for (size_t i = 0; i < n; i++) {
    from[i] = -1;
    if (!paths[i] || !*paths[i]) {
      snprintf(err, errlen, "persona %zu: no file given", i + 1);
      goto fail;
    }
    for (size_t k = 0; k < i; k++)
      if (strcmp(paths[k], paths[i]) == 0) {
        snprintf(err, errlen, "%s: listed twice", paths[i]);
        goto fail;
      }
    for (size_t p = 0; p < a->n_personas; p++)
      if (strcmp(kmk_brain_path(a->personas[p].brain), paths[i]) == 0) from[i] = (int)p;
    if (from[i] >= 0) continue;
    kmk_brain_opts bo = {.scripts_dir = a->o.scripts_dir,
                         .persona_path = paths[i],
                         .llm_available = llm,
                         .mem_limit = (size_t)a->o.config->lua_mem_mb << 20,
                         .budget_ms = a->o.config->lua_budget_ms};
    if (!(brains[i] = kmk_brain_new(&bo, err, errlen))) goto fail;
  }
  /* 2. the leaving personas: queued replies dropped, LLM requests and their voice stopped */
  int to[MAX_PERSONAS]; /* old slot -> new slot, or -1 */
  for (size_t p = 0; p < a->n_personas; p++) to[p] = -1;
  for (size_t i = 0; i < n; i++)
    if (from[i] >= 0) to[from[i]] = (int)i;
  for (reply **pp = &a->queue_head; *pp;) {
    reply *r = *pp;
    if (to[r->persona] >= 0) {
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    a->n_queued--;
    drop_reply(a, r, "persona left the cast");
  }
  a->queue_tail = NULL;
  for (reply *r = a->queue_head; r; r = r->next) a->queue_tail = r;
  for (llm_call **pp = &a->llm_calls; *pp;) {
    llm_call *c = *pp;
    if (to[c->persona] >= 0) {
      pp = &c->next;
      continue;
    }
    *pp = c->next;
    a->net_inflight--;
    kmk_llm_cancel(c->req);
    cJSON_Delete(c->trigger);
    free(c);
  }
  if (a->current && to[a->current->persona] < 0) {
    char *h = stop_playback(a, "cast", NULL);
    free(h);
    a->state = BOT_LISTENING; /* finish_reply below must not start the next one mid-change */
    reply *r = a->current;
    a->current = NULL;
    if (a->audio_started) {
      cJSON *ev = kmk_event_new(now(a), "audio_out_end", a->personas[r->persona].info->name);
      cJSON_AddStringToObject(ev, "reason", "cast");
      cJSON_AddNumberToObject(ev, "frames", (double)a->frames_sent);
      emit(a, ev);
    }
    free(r->text);
    free(r);
  }
  /* 3. swap: slots rebuilt in the new order, watchers recreated (they point at slots) */
  persona_slot old[MAX_PERSONAS];
  size_t n_old = a->n_personas;
  memcpy(old, a->personas, sizeof old);
  cJSON *removed = cJSON_CreateArray(), *added = cJSON_CreateArray();
  for (size_t p = 0; p < n_old; p++) {
    kmk_file_watch_free(old[p].watch);
    if (to[p] < 0) {
      cJSON_AddItemToArray(removed, cJSON_CreateString(old[p].info->name));
      kmk_brain_free(old[p].brain);
    }
  }
  memset(a->personas, 0, sizeof a->personas);
  for (size_t i = 0; i < n; i++) {
    persona_slot *ps = &a->personas[i];
    if (from[i] >= 0) {
      *ps = old[from[i]];
    } else {
      ps->brain = brains[i];
      brains[i] = NULL;
    }
    ps->a = a;
    ps->info = kmk_brain_persona(ps->brain);
    ps->watch = NULL;
  }
  a->n_personas = n;
  for (reply *r = a->queue_head; r; r = r->next) r->persona = to[r->persona];
  if (a->current) a->current->persona = to[a->current->persona];
  for (llm_call *c = a->llm_calls; c; c = c->next) c->persona = to[c->persona];
  for (size_t i = 0; i < n; i++) watch_persona(a, i);
  update_on_tick(a);
  teach_names(a);
  /* 4. the newcomers learn who is in the room (joins shown to them, their answers not voiced:
        they did not see those people arrive) */
  for (size_t i = 0; i < n; i++) {
    if (from[i] >= 0) continue;
    cJSON_AddItemToArray(added, cJSON_CreateString(a->personas[i].info->name));
    for (kmk_speaker *s = a->speakers; s; s = s->next) {
      cJSON *ev = kmk_event_new(s->t0, "join", s->name);
      kmk_brain_action act;
      memset(&act, 0, sizeof act);
      kmk_brain_event(a->personas[i].brain, ev, now(a), &act);
      kmk_brain_action_clear(&act);
      cJSON_Delete(ev);
    }
  }
  cJSON *ev = kmk_event_new(now(a), "cast", NULL);
  cJSON *names = cJSON_AddArrayToObject(ev, "personas");
  for (size_t i = 0; i < n; i++)
    cJSON_AddItemToArray(names, cJSON_CreateString(a->personas[i].info->name));
  cJSON_AddItemToObject(ev, "added", added);
  cJSON_AddItemToObject(ev, "removed", removed);
  emit(a, ev);
  if (a->state == BOT_LISTENING) speak_next(a);
  return 0;
fail:
  for (size_t i = 0; i < n; i++) kmk_brain_free(brains[i]);
  return -1;
}

int kmk_agent_forget(kmk_agent *a, const char *speaker) {
  if (!a || !speaker || !*speaker) return -1;
  int total = 0, failed = 0;
  for (size_t p = 0; p < a->n_personas; p++) {
    int rc = kmk_brain_forget(a->personas[p].brain, speaker);
    if (rc < 0) {
      failed = rc;
      char msg[200];
      snprintf(msg, sizeof msg, "persona %s could not forget a user (%d)", a->personas[p].info->name,
               rc);
      emit_error(a, a->personas[p].info->name, "brain", msg);
    } else {
      total += rc;
    }
  }
  cJSON *ev = kmk_event_new(now(a), "forget", speaker);
  cJSON_AddNumberToObject(ev, "erased", total);
  if (failed) cJSON_AddBoolToObject(ev, "complete", 0);
  emit(a, ev);
  return failed ? failed : total;
}

void kmk_agent_set_muted(kmk_agent *a, int muted) {
  if (!a || (muted != 0) == a->muted) return;
  a->muted = muted != 0;
  cJSON *ev = kmk_event_new(now(a), "mute", NULL);
  cJSON_AddBoolToObject(ev, "muted", a->muted);
  emit(a, ev);
  if (!a->muted) return;
  if (a->current) {
    free(stop_playback(a, "muted", NULL));
    finish_reply(a, "muted");
  }
  speak_next(a); /* drops what waited */
}

int kmk_agent_muted(const kmk_agent *a) { return a && a->muted; }
