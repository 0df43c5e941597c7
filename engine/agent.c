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
 * The agent is split over engine/agent*.c (file map in agent_priv.h): this file keeps the
 * personas, the arbiter, the speakers, the frame pull, ticks, reload and the lifecycle.
 */
#include <ctype.h>

#include "agent_priv.h"

void ag_emit(kmk_agent *a, cJSON *ev) {
  if (!ev) return;
  kmk_eventlog_write(a->o.log, ev);
  cJSON_Delete(ev);
}

void ag_emit_error(kmk_agent *a, const char *speaker, const char *stage, const char *msg) {
  KMK_ERR(stage, "%s", msg);
  cJSON *ev = kmk_event_new(now(a), "error", speaker);
  cJSON_AddStringToObject(ev, "stage", stage);
  cJSON_AddStringToObject(ev, "message", msg);
  ag_emit(a, ev);
}

/* ---------------------------------------------------------------- personas and decisions */


void ag_drop_reply(kmk_agent *a, reply *r, const char *reason) {
  cJSON *ev = kmk_event_new(now(a), "reply_dropped", a->personas[r->persona].info->name);
  cJSON_AddStringToObject(ev, "persona", a->personas[r->persona].info->name);
  cJSON_AddStringToObject(ev, "reason", reason);
  cJSON_AddStringToObject(ev, "response", r->text);
  ag_emit(a, ev);
  free(r->text);
  free(r);
}

static void enqueue_reply(kmk_agent *a, reply *r);

/* The arbiter's look at one event's replies (see the top of the file); takes them all. */
void ag_arbitrate(kmk_agent *a, reply **batch, size_t n) {
  int addressed = -1;
  for (size_t i = 0; i < n; i++)
    if (batch[i]->addressed_me) addressed = (int)i;
  for (size_t i = 0; i < n; i++) {
    reply *r = batch[i];
    if (addressed >= 0 && !r->addressed_me) {
      char why[160];
      snprintf(why, sizeof why, "not addressed; %s was called by name",
               a->personas[batch[addressed]->persona].info->name);
      ag_drop_reply(a, r, why);
      batch[i] = NULL;
      continue;
    }
    int others = a->current != NULL || a->queue_head != NULL;
    for (size_t k = 0; k < n && !others; k++) others = k != i && batch[k] && !batch[k]->yield;
    if (r->yield && others) {
      ag_drop_reply(a, r, "yielded: another persona has or wants the floor");
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
      ag_emit_error(a, a->personas[p].info->name, "brain", msg);
    } else {
      reply *r = NULL;
      ag_handle_action(a, (int)p, ev, &act, speech_end_ns, stt_ms, brain_ms, &r);
      if (r) batch[nb++] = r;
    }
    kmk_brain_action_clear(&act);
  }
  if (nb) ag_arbitrate(a, batch, nb);
}

void ag_to_personas(kmk_agent *a, const cJSON *ev, uint64_t speech_end_ns, double stt_ms) {
  to_personas_ex(a, ev, speech_end_ns, stt_ms, 0);
}

static void enqueue_reply(kmk_agent *a, reply *r) {
  if (a->n_queued == MAX_REPLIES) { /* bounded: drop the oldest waiting reply, say so */
    reply *old = a->queue_head;
    a->queue_head = old->next;
    if (!a->queue_head) a->queue_tail = NULL;
    a->n_queued--;
    ag_drop_reply(a, old, "reply queue full");
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
  ag_speak_next(a);
}

void ag_handle_action(kmk_agent *a, int p, const cJSON *trigger, kmk_brain_action *act,
                          uint64_t speech_end_ns, double stt_ms, double brain_ms, reply **out) {
  const char *pname = a->personas[p].info->name;
  if (act->kind == KMK_ACTION_NONE) return;
  if (act->kind == KMK_ACTION_LLM) {
    if (a->llm && ag_start_llm(a, p, trigger, act, speech_end_ns, stt_ms, brain_ms) == 0) return;
    /* No LLM (none configured, breaker open, key refused, request refused): answer the request
       with an error so the persona's own rules decide. */
    const char *why = !a->llm ? "no LLM provider configured" : "LLM unavailable";
    kmk_brain_action next;
    memset(&next, 0, sizeof next);
    int rc = kmk_brain_llm_result(a->personas[p].brain, act->llm_request_id, NULL, why, &next);
    if (rc < 0) {
      ag_emit_error(a, pname, "brain", "the persona failed to decide without an LLM");
    } else if (next.kind != KMK_ACTION_LLM) {
      ag_handle_action(a, p, trigger, &next, speech_end_ns, stt_ms, brain_ms, out);
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
    if (a->llm_sentence_ms >= 0)
      cJSON_AddNumberToObject(l, "first_sentence", (double)(int)(a->llm_sentence_ms * 10) / 10);
  }
  ag_emit(a, ev);
  if (!d->should_speak || !d->response || !*d->response) return;
  reply *r = calloc(1, sizeof *r);
  if (!r || !(r->text = strdup(d->response))) {
    free(r);
    ag_emit_error(a, pname, "agent", "out of memory queueing a reply");
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
      ag_barge_in(a, s->name);
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
        ag_emit_error(a, s->name, "stt", "out of memory for an utterance");
        break;
      }
      j->a = a;
      snprintf(j->speaker, sizeof j->speaker, "%s", s->name);
      j->pcm = pcm;
      j->n = (size_t)sev->length;
      j->end_ns = j->submit_ns = uv_hrtime();
      j->spec_saved_ms = -1;
      if (!ag_spec_end(a, s, j, sev->start_sample)) ag_start_stt(a, j);
      ag_speak_next(a); /* a reply may have waited for this person to finish */
      break;
    }
    case KMK_EP_SPEECH_PAUSE: /* tentative: maybe transcribe the audio so far (agent_spec.c) */
      ag_spec_pause(a, s, sev);
      break;
    case KMK_EP_SPEECH_RESUME:
      ag_spec_cancel(a, s, "discarded");
      break;
    case KMK_EP_DISCARD: {
      ag_spec_cancel(a, s, NULL);
      s->in_speech = 0;
      ag_speak_next(a);
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
    ag_emit_error(a, name, "audio", "cannot create a speaker stream");
    return NULL;
  }
  s->next = a->speakers;
  a->speakers = s;
  cJSON *ev = kmk_event_new(t, "join", name);
  kmk_eventlog_write(a->o.log, ev);
  ag_to_personas(a, ev, 0, -1);
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

int kmk_agent_speaker_opus_fec(kmk_speaker *s, const uint8_t *next_pkt, size_t len) {
  int n = kmk_speaker_stream_push_opus_fec(s->stream, next_pkt, len);
  if (n < 0) { /* a corrupt successor: conceal so the timeline keeps its length */
    int p = kmk_speaker_stream_push_opus(s->stream, NULL, 0);
    if (p < 0) return p;
  }
  return n;
}

void kmk_agent_speaker_leave(kmk_agent *a, kmk_speaker *s) {
  kmk_speaker_stream_finish(s->stream); /* finishes an utterance in progress */
  ag_spec_speaker_gone(a, s);
  kmk_speaker **pp = &a->speakers;
  while (*pp && *pp != s) pp = &(*pp)->next;
  if (*pp) *pp = s->next;
  /* the end of their audio, or now when their audio stopped earlier (a muted page, a silent
     Discord user): a live transport's clock runs on while no audio arrives */
  double t = s->t0 + (double)kmk_speaker_stream_position(s->stream) / STREAM_RATE;
  if (now(a) > t) t = now(a);
  cJSON *ev = kmk_event_new(t, "leave", s->name);
  kmk_eventlog_write(a->o.log, ev);
  ag_to_personas(a, ev, 0, -1);
  cJSON_Delete(ev);
  kmk_speaker_stream_free(s->stream);
  free(s);
  ag_speak_next(a);
}

int kmk_agent_chat(kmk_agent *a, const char *speaker, const char *text) {
  if (!a || !speaker || !*speaker || !text || !*text) return -1;
  cJSON *ev = kmk_event_new(now(a), "chat", speaker);
  cJSON_AddStringToObject(ev, "text", text);
  kmk_eventlog_write(a->o.log, ev);
  ag_to_personas(a, ev, 0, -1);
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
  ag_feed_out(a);
  const kmk_out_frame *f = kmk_audio_out_pop(a->out);
  if (f) {
    if (!a->audio_started) {
      a->audio_started = 1;
      reply *r = a->current;
      cJSON *ev = kmk_event_new(now(a), "audio_out_start", a->personas[r->persona].info->name);
      cJSON_AddStringToObject(ev, "text", r->text);
      cJSON_AddStringToObject(ev, "lang", r->lang);
      if (a->tts_provider) cJSON_AddStringToObject(ev, "provider", a->tts_provider);
      if (r->early) cJSON_AddBoolToObject(ev, "early", 1);
      kmk_echo_add(&a->echo, r->text, now(a)); /* a transcript repeating it is our own voice */
      cJSON *lat = cJSON_AddObjectToObject(ev, "latency_ms");
      if (a->tts_first_ms >= 0)
        cJSON_AddNumberToObject(lat, "tts_first_audio", (double)(int)(a->tts_first_ms * 10) / 10);
      if (r->speech_end_ns)
        cJSON_AddNumberToObject(lat, "speech_end_to_audio",
                                (double)(int)(ms_since(r->speech_end_ns) * 10) / 10);
      ag_emit(a, ev);
    }
    a->frames_sent++;
    maybe_tick(a);
    return f;
  }
  if (a->tts_finished) ag_finish_reply(a, "done");
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

void ag_update_on_tick(kmk_agent *a) {
  a->any_on_tick = 0;
  for (size_t p = 0; p < a->n_personas; p++)
    if (a->personas[p].info->has_on_tick) a->any_on_tick = 1;
}

void ag_on_persona_changed(void *ud) {
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
  ag_emit(a, ev);
  if (rc == 0) {
    ag_update_on_tick(a);
    ag_teach_names(a); /* new wake words are heard from the next utterance on */
  }
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

/* The recognizer learns every persona's name and wake words: at start, on a cast change and on a
   reload that changed them. Teaching takes ~0.5 s (pocketsphinx rebuilds its search), so it runs
   as a job on the STT worker, in order between utterances (the recognizer is only ever used on
   that thread); only at start, before the worker exists, is it done in place. Each teaching adds
   dictionary entries for good, so an unchanged set is not taught again. */
typedef struct {
  kmk_job base;
  kmk_agent *a;
  size_t n;
  char words[32][72];
  int rc;
} teach_job;

static void teach_run(kmk_job *job) {
  teach_job *t = (teach_job *)job;
  const char *w[32];
  for (size_t i = 0; i < t->n; i++) w[i] = t->words[i];
  t->rc = kmk_stt_sphinx_set_keywords(t->a->stt, w, t->n);
}

static void teach_done(kmk_job *job, int cancelled) {
  teach_job *t = (teach_job *)job;
  if (!cancelled && t->rc < 0)
    KMK_WARN("agent", "some persona names could not be taught to the recognizer");
  else if (!cancelled)
    KMK_DEBUG("agent", "the recognizer knows %zu names and wake words", t->n);
  free(t);
}

void ag_teach_names(kmk_agent *a) {
  a->keywords_dirty = 0;
  teach_job *t = calloc(1, sizeof *t);
  if (!t) {
    a->keywords_dirty = 1; /* tried again after the next transcript */
    return;
  }
  t->a = a;
  uint64_t h = 1469598103934665603ull; /* FNV-1a over the list */
  for (size_t p = 0; p < a->n_personas; p++) {
    const kmk_persona_info *info = a->personas[p].info;
    for (int k = 0; k <= info->n_wake_words; k++) {
      const char *w = k < info->n_wake_words ? info->wake_words[k] : info->name;
      /* Phrases are left out (their words are listed on their own), and so are non-Latin
         spellings: the English recognizer would write "камеко" into an English transcript, while
         the Latin spelling already catches the same sound. */
      int dup = strchr(w, ' ') != NULL || strlen(w) >= sizeof t->words[0];
      for (const char *c = w; *c && !dup; c++) dup = (unsigned char)*c >= 0x80;
      for (size_t i = 0; i < t->n && !dup; i++) dup = strcasecmp(t->words[i], w) == 0;
      if (dup || t->n == 32) continue;
      snprintf(t->words[t->n++], sizeof t->words[0], "%s", w);
      for (const char *c = w;; c++) {
        h = (h ^ (unsigned char)tolower((unsigned char)*c)) * 1099511628211ull;
        if (!*c) break;
      }
    }
  }
  if (h == a->keywords_hash) {
    free(t);
    return;
  }
  if (!a->stt_worker) { /* at start */
    teach_run(&t->base);
    a->keywords_hash = t->rc < 0 ? 0 : h;
    teach_done(&t->base, 0);
    return;
  }
  t->base.run = teach_run;
  t->base.done = teach_done;
  if (kmk_worker_submit(a->stt_worker, &t->base) < 0) {
    free(t);
    a->keywords_dirty = 1;
    return;
  }
  a->keywords_hash = h;
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
  if (ag_start_cloud(a) < 0) {
    snprintf(err, errlen, "cannot start the cloud providers (bad base URL?)");
    goto fail;
  }
  ag_gates_start(a);
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
                                                ag_on_persona_changed, &a->personas[p]);
      if (!a->personas[p].watch)
        KMK_WARN("agent", "cannot watch %s: edits will not be reloaded", o->persona_paths[p]);
    }
  }
  ag_update_on_tick(a);
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
  ag_teach_names(a);
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
  ag_gates_stop(a);
  ag_stop_cloud(a); /* network first (runs the loop until its handles closed; the agent is whole) */
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
  ag_clear_pending(a);
  for (size_t p = 0; p < a->n_personas; p++) {
    kmk_file_watch_free(a->personas[p].watch); /* handles close on the loop's next run */
    kmk_brain_free(a->personas[p].brain);
  }
  if (a->tick_timer) uv_close((uv_handle_t *)a->tick_timer, free_handle);
  kmk_stt_sphinx_free(a->stt);
  kmk_audio_out_free(a->out);
  free(a);
}
