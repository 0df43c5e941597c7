/* agent_control.c - the agent's controls: kmk_agent_set_cast (a transactional persona swap),
 * kmk_agent_forget, kmk_agent_set_muted. Loop thread only. See agent_priv.h for the file map.
 */
#include "agent_priv.h"

/* ---------------------------------------------------------------- controls: cast, forget, mute */

static void watch_persona(kmk_agent *a, size_t p) {
  if (a->o.no_watch) return;
  const char *path = kmk_brain_path(a->personas[p].brain);
  a->personas[p].watch =
      kmk_file_watch_new(a->o.loop, path, RELOAD_DEBOUNCE_MS, ag_on_persona_changed, &a->personas[p]);
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
    ag_drop_reply(a, r, "persona left the cast");
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
    ag_llm_call_free(a, c, 1);
  }
  if (a->current && to[a->current->persona] < 0) {
    char *h = ag_stop_playback(a, "cast", NULL);
    free(h);
    a->state = BOT_LISTENING; /* nothing may start speaking mid-change */
    a->seg_idle = 0;
    reply *r = a->current;
    a->current = NULL;
    if (a->audio_started) {
      cJSON *ev = kmk_event_new(now(a), "audio_out_end", a->personas[r->persona].info->name);
      cJSON_AddStringToObject(ev, "reason", "cast");
      cJSON_AddNumberToObject(ev, "frames", (double)a->frames_sent);
      ag_emit(a, ev);
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
  ag_update_on_tick(a);
  ag_teach_names(a);
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
  ag_emit(a, ev);
  if (a->state == BOT_LISTENING) ag_speak_next(a);
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
      ag_emit_error(a, a->personas[p].info->name, "brain", msg);
    } else {
      total += rc;
    }
  }
  /* LLM requests answering their words (the brains dropped those asks, counted above) */
  for (llm_call **pp = &a->llm_calls; *pp;) {
    llm_call *c = *pp;
    const char *who = cJSON_GetStringValue(cJSON_GetObjectItem(c->trigger, "speaker"));
    if (!who || strcasecmp(who, speaker) != 0) {
      pp = &c->next;
      continue;
    }
    *pp = c->next;
    a->net_inflight--;
    ag_llm_call_free(a, c, 1);
  }
  cJSON *ev = kmk_event_new(now(a), "forget", speaker);
  cJSON_AddNumberToObject(ev, "erased", total);
  if (failed) cJSON_AddBoolToObject(ev, "complete", 0);
  ag_emit(a, ev);
  return failed ? failed : total;
}

void kmk_agent_set_muted(kmk_agent *a, int muted) {
  if (!a || (muted != 0) == a->muted) return;
  a->muted = muted != 0;
  cJSON *ev = kmk_event_new(now(a), "mute", NULL);
  cJSON_AddBoolToObject(ev, "muted", a->muted);
  ag_emit(a, ev);
  if (!a->muted) return;
  if (a->current) {
    free(ag_stop_playback(a, "muted", NULL));
    ag_finish_reply(a, "muted");
  }
  ag_speak_next(a); /* drops what waited */
}

int kmk_agent_muted(const kmk_agent *a) { return a && a->muted; }
