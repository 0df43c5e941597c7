/* agent_cloud.c - the agent's providers: LLM requests for personas, speech recognition
 * (pocketsphinx worker, or Groq behind the audio/transcript gates and the echo check, falling back
 * to pocketsphinx), and the cloud clients' start and stop. Loop thread only (stt_run on the STT
 * worker). See agent_priv.h for the file map.
 */
#include "agent_priv.h"

/* ---------------------------------------------------------------- LLM
 * A persona's KMK_ACTION_LLM runs through kmk_llm_chat (streamed, json_object); the answer (or the
 * error) goes back to kmk_brain_llm_result, whose decision takes the usual way through the
 * arbiter. 401/402/403 turn the LLM off for every persona (their rules decide from then on). */


static void llm_call_unlink(kmk_agent *a, llm_call *c) {
  for (llm_call **pp = &a->llm_calls; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  a->net_inflight--;
}

void ag_llm_call_free(kmk_agent *a, llm_call *c, int cancel) {
  if (c->early) ag_early_detach(a, c->early);
  if (cancel) kmk_llm_cancel(c->req);
  kmk_sscan_free(&c->scan);
  free(c->first);
  cJSON_Delete(c->trigger);
  free(c);
}

void ag_cancel_llm_calls(kmk_agent *a) {
  while (a->llm_calls) {
    llm_call *c = a->llm_calls;
    a->llm_calls = c->next;
    a->net_inflight--;
    ag_llm_call_free(a, c, 1);
  }
}

/* The streamed answer, as it arrives: the scanner finds should_speak and the first sentence. */
static void on_llm_sentence(void *ud, const char *s, size_t len, int index) {
  llm_call *c = ud;
  if (index != 0 || c->first) return;
  c->first = strndup(s, len);
  c->first_sentence_ms = ms_since(c->start_ns);
}

static void on_llm_delta(void *ud, const char *text, size_t len) {
  llm_call *c = ud;
  kmk_sscan_feed(&c->scan, text, len);
  ag_early_try(c->a, c);
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
    ag_emit_error(a, ps->info->name, "llm", msg);
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
    ag_emit_error(a, ps->info->name, "brain", "the persona failed on the LLM's answer");
    if (c->early) ag_early_settle(a, c, NULL);
  } else {
    reply *out = NULL;
    if (!r->err) {
      a->llm_lat = 1;
      a->llm_first_ms = r->first_token_ms;
      a->llm_total_ms = r->total_ms;
      a->llm_sentence_ms = c->first_sentence_ms;
    }
    ag_handle_action(a, c->persona, c->trigger, &next, c->speech_end_ns, c->stt_ms, brain_ms, &out);
    a->llm_lat = 0;
    if (c->early) ag_early_settle(a, c, out); /* takes out */
    else if (out) ag_arbitrate(a, &out, 1);
  }
  kmk_brain_action_clear(&next);
  ag_llm_call_free(a, c, 0);
}

/* 0 when the request went out (the answer comes through on_llm_done), else -1. */
int ag_start_llm(kmk_agent *a, int p, const cJSON *trigger, const kmk_brain_action *act,
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
  c->early_tried = !act->llm_early_ok; /* the scripts ruled early speech out for this answer */
  c->speech_end_ns = speech_end_ns;
  c->stt_ms = stt_ms;
  c->brain_ms = brain_ms;
  c->start_ns = uv_hrtime();
  c->first_sentence_ms = -1;
  kmk_sscan_init(&c->scan, on_llm_sentence, c);
  kmk_llm_chat_opts co = {.temperature = 0.7, .max_tokens = 400, .json_mode = KMK_LLM_JSON_OBJECT};
  kmk_llm_callbacks cb = {on_llm_delta, NULL, on_llm_done};
  int rc = kmk_llm_chat(a->llm, act->llm_messages_json, &co, &cb, c, &c->req);
  if (rc < 0) {
    if (rc != KMK_NET_EOPEN) {
      char msg[160];
      snprintf(msg, sizeof msg, "LLM request not sent (%d); %s's rules decide", rc,
               a->personas[p].info->name);
      ag_emit_error(a, a->personas[p].info->name, "llm", msg);
    }
    ag_llm_call_free(a, c, 0);
    return -1;
  }
  c->next = a->llm_calls;
  a->llm_calls = c;
  a->net_inflight++;
  return 0;
}

/* ---------------------------------------------------------------- STT
 * Offline: the utterance goes to the pocketsphinx worker. With GROQ_API_KEY: the audio gate runs
 * first (too short / too quiet never leave the machine), then Groq; its transcript passes the
 * transcript gates and the echo check (bot speech leaking back) or is dropped with the gate's
 * reason. A Groq failure, an open breaker or a fatal key falls back to pocketsphinx with the same
 * audio: the turn is never lost. */


typedef struct cloud_stt {
  struct cloud_stt *next;
  kmk_agent *a;
  stt_job *j;
  kmk_groq_req *req;
} cloud_stt;

void ag_stt_job_free(stt_job *j) {
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

static void emit_dropped_p(kmk_agent *a, const stt_job *j, const char *reason,
                           const char *provider, const char *text, const char *pattern) {
  cJSON *ev = kmk_event_new(now(a), "transcript_dropped", j->speaker);
  cJSON_AddStringToObject(ev, "reason", reason);
  if (provider) cJSON_AddStringToObject(ev, "provider", provider);
  if (text) cJSON_AddStringToObject(ev, "text", text);
  if (pattern) cJSON_AddStringToObject(ev, "pattern", pattern);
  cJSON_AddNumberToObject(ev, "audio_s", (double)j->n / STREAM_RATE);
  ag_emit(a, ev);
}

static void emit_dropped(kmk_agent *a, const stt_job *j, const char *reason, const char *provider,
                         const char *text) {
  emit_dropped_p(a, j, reason, provider, text, NULL);
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
  if (j->hint[0] && strcmp(provider, "groq") == 0) cJSON_AddStringToObject(ev, "lang_hint", j->hint);
  cJSON *lat = cJSON_AddObjectToObject(ev, "latency_ms");
  cJSON_AddNumberToObject(lat, "stt", (double)(int)(stt_ms * 10) / 10);
  cJSON_AddNumberToObject(lat, "stt_decode", (double)(int)(decode_ms * 10) / 10);
  if (j->spec_saved_ms >= 0) { /* transcribed at a pause, reused at the turn's end */
    cJSON_AddBoolToObject(ev, "speculative", 1);
    cJSON_AddNumberToObject(lat, "stt_saved", (double)(int)(j->spec_saved_ms * 10) / 10);
  }
  kmk_eventlog_write(a->o.log, ev);
  ag_to_personas(a, ev, j->end_ns, stt_ms);
  cJSON_Delete(ev);
}

static void stt_done(kmk_job *job, int cancelled) {
  stt_job *j = (stt_job *)job;
  kmk_agent *a = j->a;
  a->stt_inflight--;
  if (a->keywords_dirty) ag_teach_names(a); /* the worker's queue was full */
  if (!cancelled) {
    double stt_ms = ms_since(j->submit_ns);
    if (j->rc < 0) {
      char msg[400];
      snprintf(msg, sizeof msg, "speech recognition failed: %s", j->err);
      ag_emit_error(a, j->speaker, "stt", msg);
    } else if (!j->tr.text || !*j->tr.text) {
      emit_dropped(a, j, "no words recognized", a->groq ? "pocketsphinx" : NULL, NULL);
    } else if (a->groq && kmk_echo_match(&a->echo, &a->gates, j->tr.text, now(a))) {
      emit_dropped(a, j, kmk_gate_reason_name(KMK_GATE_ECHO), "pocketsphinx", j->tr.text);
    } else {
      emit_transcript(a, j, j->tr.text, j->tr.lang, j->tr.confidence, "pocketsphinx", stt_ms,
                      j->run_ms);
    }
  }
  ag_stt_job_free(j);
}

/* Takes j: the pocketsphinx worker transcribes it (or an error event says why not). */
static void submit_sphinx(kmk_agent *a, stt_job *j) {
  j->base.run = stt_run;
  j->base.done = stt_done;
  int rc = kmk_worker_submit(a->stt_worker, &j->base);
  if (rc < 0) {
    ag_emit_error(a, j->speaker, "stt",
               rc == -EAGAIN ? "recognizer queue full: utterance not transcribed"
                             : "recognizer stopped");
    ag_stt_job_free(j);
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
    ag_emit_error(a, j->speaker, "stt", msg);
    submit_sphinx(a, j);
    return;
  }
  const char *pattern = NULL;
  kmk_gate_reason g = ag_groq_gate(a, r, &pattern);
  ag_groq_finish(a, j, r->t && r->t->text ? r->t->text : "", r->t && r->t->lang[0] ? r->t->lang : "en",
                 r->t ? r->t->confidence : 0, g, pattern, ms_since(j->submit_ns), r->total_ms);
}

kmk_gate_reason ag_groq_gate(kmk_agent *a, const kmk_groq_result *r, const char **pattern) {
  const char *text = r->t && r->t->text ? r->t->text : "";
  const char *lang = r->t && r->t->lang[0] ? r->t->lang : "en";
  kmk_gate_reason g = kmk_gate_transcript(&a->gates, text, lang, r->segments, r->n_segments);
  *pattern = g == KMK_GATE_PASS ? kmk_gate_lists_pattern(a->gate_lists, text, lang) : NULL;
  if (*pattern) g = KMK_GATE_KNOWN_PHRASE;
  return g;
}

void ag_groq_finish(kmk_agent *a, stt_job *j, const char *text, const char *lang, double conf,
                    kmk_gate_reason g, const char *pattern, double stt_ms, double total_ms) {
  if (g == KMK_GATE_PASS) ag_lang_observe(a, j->speaker, j->hint, lang);
  if (g == KMK_GATE_PASS && kmk_echo_match(&a->echo, &a->gates, text, now(a))) g = KMK_GATE_ECHO;
  if (g != KMK_GATE_PASS)
    emit_dropped_p(a, j, kmk_gate_reason_name(g), "groq", text, pattern);
  else
    emit_transcript(a, j, text, lang, conf, "groq", stt_ms, total_ms);
  ag_stt_job_free(j);
}

/* A finished utterance: Groq when configured and available, else pocketsphinx. Takes j. */
void ag_start_stt(kmk_agent *a, stt_job *j) {
  if (!a->groq) {
    submit_sphinx(a, j);
    return;
  }
  double rms = 0;
  kmk_gate_reason g = kmk_gate_audio(&a->gates, j->pcm, j->n, STREAM_RATE, &rms);
  if (g != KMK_GATE_PASS) {
    emit_dropped(a, j, kmk_gate_reason_name(g), NULL, NULL);
    ag_stt_job_free(j);
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
  const char *hint = ag_lang_hint(a, j->speaker);
  snprintf(j->hint, sizeof j->hint, "%s", hint ? hint : "");
  int rc = kmk_groq_transcribe(a->groq, j->pcm, j->n, hint, groq_done, c, &c->req);
  if (rc < 0) {
    free(c);
    if (rc != KMK_NET_EOPEN) {
      char msg[160];
      snprintf(msg, sizeof msg, "Groq request not sent (%d); using pocketsphinx", rc);
      ag_emit_error(a, j->speaker, "stt", msg);
    }
    submit_sphinx(a, j);
    return;
  }
  c->next = a->cloud_stt;
  a->cloud_stt = c;
  a->net_inflight++;
}

/* Cloud providers from the config: Groq with GROQ_API_KEY, the LLM with LLM_API_KEY (or
   OPENROUTER_API_KEY), Edge-TTS with either key, with EDGE_TTS_URL set to something other than its
   default, or with EDGE_TTS=1 in the environment. Nothing is created without them. */
int ag_start_cloud(kmk_agent *a) {
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
void ag_stop_cloud(kmk_agent *a) {
  ag_spec_stop_all(a);
  while (a->cloud_stt) {
    cloud_stt *c = a->cloud_stt;
    a->cloud_stt = c->next;
    kmk_groq_cancel(c->req);
    ag_stt_job_free(c->j);
    free(c);
  }
  ag_cancel_llm_calls(a);
  ag_cancel_edge(a);
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
