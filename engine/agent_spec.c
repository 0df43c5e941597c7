/* agent_spec.c - speculative STT (issue 8 item 2): when the endpointer reports a pause inside a
 * person's utterance (KMK_EP_SPEECH_PAUSE), the audio so far goes to Groq at once; if they speak
 * again (SPEECH_RESUME) the request is dropped; if the turn ends there (SPEECH_END with no new
 * speech) its result stands for the utterance, so the STT latency has (partly) passed already.
 * Never a reply to half a turn: nothing is emitted before SPEECH_END. On when a persona in the
 * cast sets policy.speculative_stt and Groq is on and available. Events: "stt_speculative"
 * {outcome: "discarded" | "reused" | "failed", ms}; a transcript that came from it has
 * "speculative": true and latency_ms.stt_saved. Loop thread only. See agent_priv.h.
 */
#include "agent_priv.h"

#define SPEC_TAIL_TOLERANCE (STREAM_RATE / 5) /* END may carry up to 200 ms more tail */

typedef struct spec_stt {
  struct spec_stt *next; /* a->specs: every speculative request, adopted or not */
  kmk_agent *a;
  kmk_speaker *s;
  uint64_t start, length;
  uint64_t submit_ns;
  kmk_groq_req *req; /* NULL once done */
  stt_job *j;        /* the audio (and, once adopted at SPEECH_END, the turn's job) */
  int adopted;       /* SPEECH_END came while the request ran: its result is the transcript */
  int failed;
  /* the result, once done and not adopted yet */
  char *text;
  char lang[8];
  double conf, total_ms;
  kmk_gate_reason g;
  char *pattern;
  uint64_t done_ns;
} spec_stt;

static int spec_on(kmk_agent *a) {
  if (!a->groq || !kmk_groq_available(a->groq)) return 0;
  for (size_t p = 0; p < a->n_personas; p++)
    if (a->personas[p].info->speculative_stt) return 1;
  return 0;
}

static void spec_event(kmk_agent *a, const char *speaker, const char *outcome, double ms) {
  cJSON *ev = kmk_event_new(now(a), "stt_speculative", speaker);
  cJSON_AddStringToObject(ev, "outcome", outcome);
  if (ms >= 0) cJSON_AddNumberToObject(ev, "ms", (double)(int)(ms * 10) / 10);
  ag_emit(a, ev);
}

static void spec_free(kmk_agent *a, spec_stt *sp) {
  for (spec_stt **pp = (spec_stt **)&a->specs; *pp; pp = &(*pp)->next)
    if (*pp == sp) {
      *pp = sp->next;
      break;
    }
  if (sp->s && sp->s->spec == sp) sp->s->spec = NULL;
  if (sp->req) {
    kmk_groq_cancel(sp->req);
    a->net_inflight--;
  }
  if (sp->j) ag_stt_job_free(sp->j);
  free(sp->text);
  free(sp->pattern);
  free(sp);
}

static void spec_done(void *ud, const kmk_groq_result *r) {
  spec_stt *sp = ud;
  kmk_agent *a = sp->a;
  sp->req = NULL;
  a->net_inflight--;
  sp->done_ns = uv_hrtime();
  if (r->err) {
    sp->failed = 1;
    if (sp->adopted) { /* the turn ended waiting for it: the usual way, from the start */
      stt_job *j = sp->j;
      sp->j = NULL;
      if (sp->s) sp->s->spec = NULL;
      spec_event(a, j->speaker, "failed", -1);
      spec_free(a, sp);
      j->submit_ns = uv_hrtime();
      j->spec_saved_ms = -1;
      ag_start_stt(a, j);
    }
    return;
  }
  const char *pattern = NULL;
  sp->g = ag_groq_gate(a, r, &pattern);
  sp->text = strdup(r->t && r->t->text ? r->t->text : "");
  snprintf(sp->lang, sizeof sp->lang, "%s", r->t && r->t->lang[0] ? r->t->lang : "en");
  sp->conf = r->t ? r->t->confidence : 0;
  sp->total_ms = r->total_ms;
  sp->pattern = pattern ? strdup(pattern) : NULL;
  if (!sp->adopted) return; /* kept until SPEECH_END or RESUME */
  stt_job *j = sp->j;
  sp->j = NULL;
  if (sp->s) sp->s->spec = NULL;
  double after_end = ms_since(j->end_ns);
  j->spec_saved_ms = sp->total_ms - after_end > 0 ? sp->total_ms - after_end : 0;
  spec_event(a, j->speaker, "reused", j->spec_saved_ms);
  ag_groq_finish(a, j, sp->text ? sp->text : "", sp->lang, sp->conf, sp->g, sp->pattern,
                 after_end, sp->total_ms);
  spec_free(a, sp);
}

void ag_spec_pause(kmk_agent *a, kmk_speaker *s, const kmk_stream_event *sev) {
  ag_spec_cancel(a, s, NULL); /* a second pause: the newer audio replaces it */
  if (!spec_on(a) || !sev->pcm || sev->length == 0) return;
  if (kmk_gate_audio(&a->gates, sev->pcm, (size_t)sev->length, STREAM_RATE, NULL) != KMK_GATE_PASS)
    return;
  spec_stt *sp = calloc(1, sizeof *sp);
  stt_job *j = calloc(1, sizeof *j);
  int16_t *pcm = malloc((size_t)sev->length * sizeof *pcm);
  if (!sp || !j || !pcm) {
    free(sp);
    free(j);
    free(pcm);
    return;
  }
  memcpy(pcm, sev->pcm, (size_t)sev->length * sizeof *pcm);
  j->a = a;
  snprintf(j->speaker, sizeof j->speaker, "%s", s->name);
  j->pcm = pcm;
  j->n = (size_t)sev->length;
  j->spec_saved_ms = -1;
  sp->a = a;
  sp->s = s;
  sp->start = sev->start_sample;
  sp->length = sev->length;
  sp->j = j;
  sp->submit_ns = uv_hrtime();
  const char *hint = ag_lang_hint(a, s->name);
  snprintf(j->hint, sizeof j->hint, "%s", hint ? hint : "");
  if (kmk_groq_transcribe(a->groq, j->pcm, j->n, hint, spec_done, sp, &sp->req) < 0) {
    sp->req = NULL;
    spec_free(a, sp);
    return;
  }
  a->net_inflight++;
  s->spec = sp;
  sp->next = a->specs;
  a->specs = sp;
}

void ag_spec_cancel(kmk_agent *a, kmk_speaker *s, const char *why) {
  spec_stt *sp = s->spec;
  if (!sp) return;
  s->spec = NULL;
  if (sp->adopted) { /* its result is the transcript of a finished turn: it runs on */
    sp->s = NULL;
    return;
  }
  if (why) spec_event(a, s->name, why, ms_since(sp->submit_ns));
  spec_free(a, sp);
}

int ag_spec_end(kmk_agent *a, kmk_speaker *s, stt_job *j, uint64_t start_sample) {
  spec_stt *sp = s->spec;
  if (!sp) return 0;
  if (sp->failed || sp->start != start_sample || j->n < sp->length ||
      j->n > sp->length + SPEC_TAIL_TOLERANCE) {
    ag_spec_cancel(a, s, "discarded");
    return 0;
  }
  /* the same audio: the speculative request stands for this utterance */
  snprintf(j->hint, sizeof j->hint, "%s", sp->j->hint);
  ag_stt_job_free(sp->j);
  sp->j = j;
  if (sp->req) { /* still running: its result will be the transcript */
    sp->adopted = 1;
    s->spec = NULL;
    sp->s = NULL;
    return 1;
  }
  s->spec = NULL;
  j->spec_saved_ms = sp->total_ms;
  spec_event(a, j->speaker, "reused", j->spec_saved_ms);
  sp->j = NULL;
  ag_groq_finish(a, j, sp->text ? sp->text : "", sp->lang, sp->conf, sp->g, sp->pattern, 0,
                 sp->total_ms);
  spec_free(a, sp);
  return 1;
}

/* The speaker leaves: a pending speculation is dropped (its turn was finished before). */
void ag_spec_speaker_gone(kmk_agent *a, kmk_speaker *s) {
  ag_spec_cancel(a, s, NULL);
  for (spec_stt *sp = a->specs; sp; sp = sp->next)
    if (sp->s == s) sp->s = NULL;
}

/* Shutdown: every request cancelled, nothing emitted. */
void ag_spec_stop_all(kmk_agent *a) {
  while (a->specs) spec_free(a, a->specs);
}
