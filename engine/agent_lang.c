/* agent_lang.c - the language hint sent with each utterance to cloud STT (Groq's `language`
 * field), per speaker:
 *   1. set for the speaker (kmk_agent_speaker_set_lang: "ru", "en"; "auto" clears it);
 *   2. learned: two automatic detections in a row agreed on a language the cast speaks; every
 *      RECHECK_EVERY-th utterance after that goes without a hint again, and a detection that
 *      disagrees forgets the learned language (people switch);
 *   3. the room's: every persona speaks exactly one and the same language;
 *   4. none ("auto": Whisper detects).
 * Changes are logged as "speaker_lang" {lang, source: "set" | "learned" | "auto"}. Loop thread only.
 * See agent_priv.h for the file map.
 */
#include "agent_priv.h"

#define RECHECK_EVERY 4

kmk_speaker *ag_find_speaker(kmk_agent *a, const char *name) {
  for (kmk_speaker *s = a->speakers; s; s = s->next)
    if (strcmp(s->name, name) == 0) return s;
  return NULL;
}

static int cast_speaks(kmk_agent *a, const char *lang) {
  for (size_t p = 0; p < a->n_personas; p++)
    for (int i = 0; i < a->personas[p].info->n_languages; i++)
      if (strcmp(a->personas[p].info->languages[i], lang) == 0) return 1;
  return 0;
}

static const char *room_lang(kmk_agent *a) {
  const char *l = NULL;
  for (size_t p = 0; p < a->n_personas; p++) {
    const kmk_persona_info *in = a->personas[p].info;
    if (in->n_languages != 1 || (l && strcmp(l, in->languages[0]) != 0)) return NULL;
    l = in->languages[0];
  }
  return l;
}

static void lang_event(kmk_agent *a, const kmk_speaker *s, const char *lang, const char *source) {
  cJSON *ev = kmk_event_new(now(a), "speaker_lang", s->name);
  cJSON_AddStringToObject(ev, "lang", lang && *lang ? lang : "auto");
  cJSON_AddStringToObject(ev, "source", source);
  ag_emit(a, ev);
}

const char *ag_lang_hint(kmk_agent *a, const char *speaker) {
  kmk_speaker *s = ag_find_speaker(a, speaker);
  if (s && s->lang_set[0]) return s->lang_set;
  if (s && s->lang_learned[0]) {
    if (++s->lang_uses % RECHECK_EVERY == 0) return NULL; /* re-check now and then */
    return s->lang_learned;
  }
  return room_lang(a);
}

void ag_lang_observe(kmk_agent *a, const char *speaker, const char *hint, const char *detected) {
  kmk_speaker *s = ag_find_speaker(a, speaker);
  if (!s || (hint && *hint) || !detected || !*detected || s->lang_set[0]) return;
  char d[8];
  snprintf(d, sizeof d, "%s", detected);
  d[strcspn(d, "-_")] = '\0';
  if (s->lang_learned[0] && strcmp(s->lang_learned, d) != 0) {
    s->lang_learned[0] = '\0'; /* they switched: detect again */
    lang_event(a, s, NULL, "auto");
  }
  if (strcmp(s->lang_last, d) == 0) {
    s->lang_agree++;
  } else {
    snprintf(s->lang_last, sizeof s->lang_last, "%s", d);
    s->lang_agree = 1;
  }
  if (!s->lang_learned[0] && s->lang_agree >= 2 && cast_speaks(a, d)) {
    snprintf(s->lang_learned, sizeof s->lang_learned, "%s", d);
    s->lang_uses = 0;
    lang_event(a, s, d, "learned");
  }
}

int kmk_agent_speaker_set_lang(kmk_agent *a, const char *speaker, const char *lang) {
  if (!a || !speaker) return -1;
  kmk_speaker *s = ag_find_speaker(a, speaker);
  if (!s) return -1;
  int autolang = !lang || !*lang || strcmp(lang, "auto") == 0;
  if (!autolang && (strlen(lang) < 2 || strlen(lang) > 3)) return -1;
  for (const char *c = lang; !autolang && *c; c++)
    if (*c < 'a' || *c > 'z') return -1;
  snprintf(s->lang_set, sizeof s->lang_set, "%s", autolang ? "" : lang);
  if (autolang) s->lang_learned[0] = '\0';
  lang_event(a, s, s->lang_set, autolang ? "auto" : "set");
  return 0;
}
