/* agent_gates.c - the hallucination lists the Groq transcript gates use: scripts/gates.lua
 * (phrases and Lua patterns per language) when cloud STT is on, watched and hot reloaded like a
 * persona. "gates_reload" {file, ok, phrases, patterns, ms | error} tells how a reload went; a
 * broken edit keeps the lists in use. Without the file the built-in lists apply. Loop thread only.
 * See agent_priv.h for the file map.
 */
#include "agent_priv.h"

#include <unistd.h>

static void gates_reload_event(kmk_agent *a, int ok, const char *error, double ms) {
  cJSON *ev = kmk_event_new(now(a), "gates_reload", NULL);
  cJSON_AddStringToObject(ev, "file", a->gates_path);
  cJSON_AddBoolToObject(ev, "ok", ok);
  if (ok) {
    int ph = 0, pt = 0, langs = 0;
    kmk_gate_lists_counts(a->gate_lists, &ph, &pt, &langs);
    cJSON_AddNumberToObject(ev, "languages", langs);
    cJSON_AddNumberToObject(ev, "phrases", ph);
    cJSON_AddNumberToObject(ev, "patterns", pt);
  } else {
    cJSON_AddStringToObject(ev, "error", error);
  }
  cJSON_AddNumberToObject(ev, "ms", round(ms * 100) / 100);
  ag_emit(a, ev);
}

static void on_gates_changed(void *ud) {
  kmk_agent *a = ud;
  char err[512] = "";
  uint64_t t0 = uv_hrtime();
  kmk_gate_lists *g = kmk_gate_lists_load(a->gates_path, err, sizeof err);
  double ms = ms_since(t0);
  if (!g) {
    KMK_WARN("agent", "gate lists not reloaded, keeping the ones in use: %s", err);
    gates_reload_event(a, 0, err, ms);
    return;
  }
  kmk_gate_lists_free(a->gate_lists);
  a->gate_lists = g;
  kmk_gate_lists_apply(g, &a->gates);
  gates_reload_event(a, 1, NULL, ms);
}

void ag_gates_start(kmk_agent *a) {
  if (!a->groq) return; /* the lists only gate cloud transcripts */
  snprintf(a->gates_path, sizeof a->gates_path, "%s/gates.lua",
           a->o.scripts_dir ? a->o.scripts_dir : KMK_SOURCE_DIR "/scripts");
  if (access(a->gates_path, R_OK) != 0) {
    KMK_INFO("agent", "no %s: the built-in hallucination lists apply", a->gates_path);
    return;
  }
  char err[512] = "";
  a->gate_lists = kmk_gate_lists_load(a->gates_path, err, sizeof err);
  if (a->gate_lists) {
    kmk_gate_lists_apply(a->gate_lists, &a->gates);
  } else {
    char msg[700];
    snprintf(msg, sizeof msg, "gate lists not loaded (the built-in ones apply): %s", err);
    ag_emit_error(a, NULL, "gates", msg);
  }
  if (!a->o.no_watch)
    a->gates_watch = kmk_file_watch_new(a->o.loop, a->gates_path, RELOAD_DEBOUNCE_MS,
                                        on_gates_changed, a);
}

void ag_gates_stop(kmk_agent *a) {
  kmk_file_watch_free(a->gates_watch); /* handles close on the loop's next run */
  a->gates_watch = NULL;
  kmk_gate_lists_apply(NULL, &a->gates);
  kmk_gate_lists_free(a->gate_lists);
  a->gate_lists = NULL;
}

/* Tests and tools: reload the lists now (as the watcher would). */
void kmk_agent_reload_gates(kmk_agent *a) {
  if (a && a->gates_path[0]) on_gates_changed(a);
}
