/* agent_voice.c - the agent's voice: the reply being spoken (speak_next .. finish_reply), offline
 * TTS workers and Edge-TTS feeding the audio out a slice at a time, barge-in and playback stop,
 * early speech (an LLM answer's first sentence spoken while it streams; the reply's text then
 * grows and is synthesized in segments: start_segment / segment_done). Loop thread only (tts_run
 * on the TTS workers). See agent_priv.h for the file map.
 */
#include "agent_priv.h"

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

void ag_clear_pending(kmk_agent *a) {
  for (tts_chunk *c = a->pending_head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  a->pending_head = a->pending_tail = NULL;
  a->pending_samples = 0;
}

/* Moves synthesized audio into `out` (resampled there; Opus-encoded when pulled) a slice at a time, only while
   fewer than TOPUP_FRAMES are queued; ends the reply's stream once synthesis is done and nothing
   is pending. Called on chunk arrival, at synthesis end and before every frame pull. */
void ag_feed_out(kmk_agent *a) {
  while (a->pending_head && kmk_audio_out_queued(a->out) < TOPUP_FRAMES) {
    tts_chunk *c = a->pending_head;
    size_t slice = (size_t)c->rate * SLICE_MS / 1000, n = c->n - c->off;
    if (n > slice) n = slice;
    if (kmk_audio_out_push(a->out, c->pcm + c->off, n, c->rate) < 0) {
      ag_emit_error(a, NULL, "tts", "audio out refused a chunk (bad rate?)");
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
    ag_feed_out(a);
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


static void start_segment(kmk_agent *a, reply *r);

/* The synthesis of current's segment ended: the next segment if the text grew meanwhile, a wait
   while its LLM answer still streams, else the end of the reply's audio. */
static void segment_done(kmk_agent *a) {
  reply *r = a->current;
  if (r->synth_len < strlen(r->text)) {
    start_segment(a, r);
    return;
  }
  if (r->open) {
    a->seg_idle = 1;
    return;
  }
  a->seg_idle = 0;
  a->tts_synth_done = 1;
  ag_feed_out(a);
  if (a->tts_finished && !a->audio_started && kmk_audio_out_queued(a->out) == 0)
    ag_finish_reply(a, "empty");
}

static void tts_done(kmk_job *job, int cancelled) {
  tts_job *j = (tts_job *)job;
  kmk_agent *a = j->a;
  a->tts_inflight--;
  if (a->tts_job == job) a->tts_job = NULL;
  if (!cancelled && a->current && a->current->id == j->reply_id) {
    if (j->rc < 0) {
      char msg[400];
      snprintf(msg, sizeof msg, "speech synthesis failed: %s", j->err);
      ag_emit_error(a, a->personas[a->current->persona].info->name, "tts", msg);
    }
    segment_done(a);
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

static int submit_offline_tts(kmk_agent *a, reply *r, const kmk_voice_info *v, int edge_fallback,
                              const char *text);

void ag_cancel_edge(kmk_agent *a) {
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
  if (!a->current || a->current->id != c->reply_id) { /* not expected: ag_finish_reply cancels */
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
      ag_emit_error(a, pname, "tts", msg);
      free(c);
      reply *cur = a->current;
      const kmk_voice_info *v = kmk_persona_voice(a->personas[cur->persona].info, cur->lang);
      if (submit_offline_tts(a, cur, v, 1, cur->text + cur->seg_off) < 0) {
        if (cur->seg_off == 0) ag_finish_reply(a, "error");
        else segment_done(a);
      }
      return;
    }
    if (r->err) {
      char msg[400];
      snprintf(msg, sizeof msg, "Edge speech synthesis broke off (%s)",
               r->message && *r->message ? r->message : "error");
      ag_emit_error(a, pname, "tts", msg);
    }
    free(c);
    segment_done(a);
    return;
  }
  free(c);
}

/* 0 when Edge took the reply, -1 to use an offline voice. */
static int start_edge(kmk_agent *a, reply *r, const kmk_voice_info *v, const char *text) {
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
  int rc = kmk_edge_tts_synth(a->edge, text, voice, &pr, &cb, c, &c->req);
  if (rc < 0) {
    a->edge_call = NULL;
    free(c);
    if (rc != KMK_NET_EOPEN) {
      char msg[160];
      snprintf(msg, sizeof msg, "Edge request not sent (%d); using the offline voice", rc);
      ag_emit_error(a, a->personas[r->persona].info->name, "tts", msg);
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

static void start_reply(kmk_agent *a, reply *r);

void ag_speak_next(kmk_agent *a) {
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
    ag_drop_reply(a, h, why);
  }
  if (!a->queue_head) return;
  if (a->muted) { /* decided and logged, never voiced: a muted agent's replies do not wait */
    while (a->queue_head) {
      reply *h = a->queue_head;
      a->queue_head = h->next;
      a->n_queued--;
      ag_drop_reply(a, h, "muted");
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
  start_reply(a, r);
}

/* r becomes current: the voice starts with its text so far. */
static void start_reply(kmk_agent *a, reply *r) {
  a->current = r;
  a->state = BOT_SPEAKING;
  a->tts_finished = 0;
  a->tts_synth_done = 0;
  ag_clear_pending(a);
  a->audio_started = 0;
  a->frames_sent = 0;
  a->tts_first_ms = -1;
  kmk_audio_out_clear(a->out);

  a->seg_idle = 0;
  a->tts_submit_ns = uv_hrtime();
  r->synth_len = 0;
  start_segment(a, r);
}

/* Synthesizes current's text from synth_len to its end (the whole text for most replies). */
static void start_segment(kmk_agent *a, reply *r) {
  const kmk_persona_info *info = a->personas[r->persona].info;
  const kmk_voice_info *v = kmk_persona_voice(info, r->lang);
  r->seg_off = r->synth_len;
  r->synth_len = strlen(r->text);
  a->seg_idle = 0;
  const char *text = r->text + r->seg_off;
  if (start_edge(a, r, v, text) == 0) return;
  if (submit_offline_tts(a, r, v, v && strcmp(v->engine, "edge") == 0, text) == 0) return;
  if (r->seg_off == 0) {
    ag_finish_reply(a, "error");
  } else { /* what was already said stands */
    r->open = 0;
    segment_done(a);
  }
}

/* The reply through the espeak/flite worker. edge_fallback: v is an Edge voice, use the offline
   voice for the language instead. -1 (error logged) when the worker refused it. */
static int submit_offline_tts(kmk_agent *a, reply *r, const kmk_voice_info *v, int edge_fallback,
                              const char *text) {
  const kmk_persona_info *info = a->personas[r->persona].info;
  tts_job *j = calloc(1, sizeof *j);
  if (!j || !(j->text = strdup(text))) {
    free(j);
    ag_emit_error(a, info->name, "tts", "out of memory");
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
    ag_emit_error(a, info->name, "tts", "speech synthesis queue refused the reply");
    return -1;
  }
  a->tts_provider = j->use_flite ? "flite" : "espeak";
  a->tts_job = &j->base;
  a->tts_inflight++;
  return 0;
}

/* Ends the current reply (all audio sent, interrupted, or failed) and starts the next one. */
void ag_finish_reply(kmk_agent *a, const char *end_reason) {
  reply *r = a->current;
  if (!r) return;
  ag_cancel_edge(a);
  if (a->audio_started) {
    cJSON *ev = kmk_event_new(now(a), "audio_out_end", a->personas[r->persona].info->name);
    cJSON_AddStringToObject(ev, "reason", end_reason);
    cJSON_AddNumberToObject(ev, "frames", (double)a->frames_sent);
    ag_emit(a, ev);
    cJSON *said = kmk_event_new(now(a), "bot_speech", a->personas[r->persona].info->name);
    cJSON_AddStringToObject(said, "text", r->text);
    cJSON_AddStringToObject(said, "lang", r->lang);
    cJSON_AddBoolToObject(said, "complete", strcmp(end_reason, "done") == 0);
    /* not written to the log (audio_out_* already are); shown to the personas */
    ag_to_personas(a, said, 0, -1);
    cJSON_Delete(said);
  }
  if (r->call) r->call->early = NULL; /* its LLM answer, still streaming, settles without it */
  a->seg_idle = 0;
  free(r->text);
  free(r);
  a->current = NULL;
  ag_clear_pending(a);
  a->state = BOT_LISTENING;
  ag_speak_next(a);
}

/* Stops the voice now: synthesis cancelled, queued audio dropped, then "playback_stop" (see
   agent.h) is written before anything else, so a transport watching the log can drop the audio it
   already sent. Returns the share of the reply's text that was heard (caller frees), or NULL. */
char *ag_stop_playback(kmk_agent *a, const char *reason, const char *by) {
  reply *r = a->current;
  if (!r) return NULL;
  if (a->tts_job) kmk_job_cancel(a->tts_job);
  ag_cancel_edge(a);
  /* What the listener heard: the share of the reply's audio that went out, as a text prefix. */
  size_t queued = kmk_audio_out_queued(a->out);
  size_t pending_frames = a->pending_head ? a->pending_samples * 50 / (size_t)a->pending_head->rate : 0;
  size_t total = a->frames_sent + queued + pending_frames;
  size_t len = strlen(r->text);
  size_t heard = total && a->tts_synth_done ? len * a->frames_sent / total : 0;
  if (!a->tts_synth_done && a->frames_sent) heard = len / 2; /* unknown length: a rough half */
  while (heard < len && (r->text[heard] & 0xC0) == 0x80) heard++; /* whole UTF-8 sequences */
  kmk_audio_out_clear(a->out);
  ag_clear_pending(a);
  const char *pname = a->personas[r->persona].info->name;
  cJSON *ev = kmk_event_new(now(a), "playback_stop", pname);
  cJSON_AddStringToObject(ev, "persona", pname);
  cJSON_AddStringToObject(ev, "reason", reason);
  if (by) cJSON_AddStringToObject(ev, "by", by);
  cJSON_AddNumberToObject(ev, "reply_id", (double)r->id);
  cJSON_AddNumberToObject(ev, "frames_sent", (double)a->frames_sent);
  ag_emit(a, ev);
  return strndup(r->text, heard);
}

void ag_barge_in(kmk_agent *a, const char *who) {
  if (a->state != BOT_SPEAKING || !a->current) return;
  reply *r = a->current;
  if (a->personas[r->persona].info->may_interrupt) return; /* it holds the floor to the end */
  ag_cancel_llm_calls(a); /* decisions for a moment that has passed */
  char *h = ag_stop_playback(a, "barge_in", who);
  cJSON *ev = kmk_event_new(now(a), "interrupted", a->personas[r->persona].info->name);
  cJSON_AddStringToObject(ev, "by", who);
  cJSON_AddStringToObject(ev, "heard", h ? h : "");
  free(h);
  kmk_eventlog_write(a->o.log, ev);
  ag_finish_reply(a, "interrupted"); /* bot_speech (complete = false) first, then the heard part */
  ag_to_personas(a, ev, 0, -1);
  cJSON_Delete(ev);
}

/* ---------------------------------------------------------------- early speech
 * An LLM answer is followed as it streams (agent_cloud.c feeds a sentence scanner). Once it says
 * "should_speak": true and its response has a complete first sentence, that sentence is spoken
 * at once, if the persona allows it (policy.early_speech), the agent is not muted, nobody holds
 * or waits for the floor (no reply current or queued, no other LLM answer pending that might be
 * the one called by name) and no person is speaking. The reply stays open; when the answer ends,
 * the persona's final decision (after the brain, after_llm and moderation) either continues it
 * (its response starts with the sentence: the rest is synthesized after it) or stops it
 * ("playback_stop" reason "retracted") and takes the usual way. "early_speech" logs the timing. */

static int starts_with_trimmed(const char *full, const char *prefix, size_t *after) {
  while (*full == ' ') full++;
  while (*prefix == ' ') prefix++;
  size_t n = strlen(prefix);
  while (n && prefix[n - 1] == ' ') n--;
  const char *f0 = full;
  if (strncmp(full, prefix, n) != 0) return 0;
  *after = (size_t)(full - f0) + n;
  return 1;
}

void ag_early_try(kmk_agent *a, llm_call *c) {
  if (c->early_tried || !c->first || c->scan.should_speak != 1) return;
  c->early_tried = 1;
  const kmk_persona_info *info = a->personas[c->persona].info;
  if (!info->early_speech || a->muted || a->state != BOT_LISTENING || a->current ||
      a->queue_head || a->llm_calls != c || c->next || (humans_speaking(a) && !info->may_interrupt))
    return;
  reply *r = calloc(1, sizeof *r);
  if (!r || !(r->text = strdup(c->first))) {
    free(r);
    return;
  }
  r->id = ++a->next_reply_id;
  r->persona = c->persona;
  /* the language the final decision will name: Cyrillic -> ru; else the trigger's language if
     the persona speaks it, else English if it does, else its first (checked again at the end) */
  const char *tl = cJSON_GetStringValue(cJSON_GetObjectItem(c->trigger, "lang"));
  const char *lang = info->n_languages ? info->languages[0] : "en";
  int has_tl = 0, has_en = 0;
  for (int i = 0; i < info->n_languages; i++) {
    if (tl && strcmp(info->languages[i], tl) == 0) has_tl = 1;
    if (strcmp(info->languages[i], "en") == 0) has_en = 1;
  }
  if (kmk_decision_has_cyrillic(r->text)) lang = "ru";
  else if (has_tl && strcmp(tl, "ru") != 0) lang = tl;
  else if (has_en) lang = "en";
  snprintf(r->lang, sizeof r->lang, "%s", lang);
  r->t_decided = now(a);
  r->speech_end_ns = c->speech_end_ns;
  r->stt_ms = c->stt_ms;
  r->brain_ms = c->brain_ms;
  r->trigger = a->event_seq;
  r->early = 1;
  r->open = 1;
  r->call = c;
  c->early = r;
  cJSON *ev = kmk_event_new(now(a), "early_speech", info->name);
  cJSON_AddStringToObject(ev, "persona", info->name);
  cJSON_AddStringToObject(ev, "text", r->text);
  cJSON *lat = cJSON_AddObjectToObject(ev, "latency_ms");
  cJSON_AddNumberToObject(lat, "llm_first_sentence", (double)(int)(c->first_sentence_ms * 10) / 10);
  if (c->speech_end_ns)
    cJSON_AddNumberToObject(lat, "speech_end_to_sentence",
                            (double)(int)(ms_since(c->speech_end_ns) * 10) / 10);
  ag_emit(a, ev);
  start_reply(a, r);
}

void ag_early_settle(kmk_agent *a, llm_call *c, reply *out) {
  reply *r = c->early;
  c->early = NULL;
  r->call = NULL;
  r->open = 0;
  size_t after = 0;
  if (out && out->persona == r->persona && strcmp(out->lang, r->lang) == 0 &&
      starts_with_trimmed(out->text, r->text, &after)) {
    /* confirmed: the rest of the response follows the sentence already being spoken */
    const char *rest = out->text + after;
    size_t used = strlen(r->text);
    if (*rest) {
      char *t = malloc(used + strlen(rest) + 1);
      if (t) {
        memcpy(t, r->text, used);
        strcpy(t + used, rest);
        free(r->text);
        r->text = t;
        if (a->audio_started) kmk_echo_add(&a->echo, rest, now(a));
      }
    }
    r->addressed_me = out->addressed_me;
    free(out->text);
    free(out);
    if (a->seg_idle && a->current == r) segment_done(a);
    return;
  }
  /* silent or a different answer (moderation, after_llm, rules after an error): stop */
  if (a->current == r) {
    free(ag_stop_playback(a, "retracted", NULL));
    ag_finish_reply(a, "retracted");
  }
  if (out) ag_arbitrate(a, &out, 1);
}

/* The LLM request ended without an answer for an open reply (cancelled): what was said stands. */
void ag_early_detach(kmk_agent *a, reply *r) {
  r->call = NULL;
  r->open = 0;
  if (a->seg_idle && a->current == r) { /* never finishes the reply here: callers hold it */
    a->seg_idle = 0;
    a->tts_synth_done = 1;
    ag_feed_out(a);
  }
}
