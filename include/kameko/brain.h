/* brain.h - the persona brain: conversation events in, decisions (or LLM requests) out.
 *
 * engine/brain/brain.c runs the engine-side scripts (the .lua files in scripts/) and one persona
 * (a file in personas/) in a sandboxed Lua state (kameko/lua.h); engine/brain/decision.c validates
 * decisions and parses an LLM's raw text into one.
 *
 * Flow: kmk_brain_event(event) -> the scripts update the context window and either decide with
 * the persona's offline rules (KMK_ACTION_DECISION), ask for an LLM completion (KMK_ACTION_LLM:
 * messages JSON + request id; the caller runs it and hands the text to kmk_brain_llm_result), or
 * stay out of it (KMK_ACTION_NONE). Only the newest LLM request counts: results of older ones
 * are dropped (NONE). Every decision is validated in C before the caller sees it.
 *
 * Thread: loop thread only. Errors are negative ints (KMK_BRAIN_E*); the struct never moves.
 */
#ifndef KAMEKO_BRAIN_H
#define KAMEKO_BRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum {
  KMK_BRAIN_EINVAL = -1,  /* bad argument from C */
  KMK_BRAIN_ESCRIPT = -2, /* a script failed (message logged with script:line) */
  KMK_BRAIN_ENOENT = -3,  /* llm_result for a request id that was never issued */
  KMK_BRAIN_EDECISION = -4, /* the scripts returned something that is not a valid action */
};

#define KMK_DECISION_DEFAULT_MAX_REPLY 400 /* characters (code points) */

typedef struct {
  char *thought;     /* never NULL after a successful parse ("" when missing) */
  int should_speak;  /* 1 only with a non-empty response */
  char *response;    /* trimmed, capped at the persona's max reply length; "" when silent */
  char lang[8];      /* "en", "ru", ...: language of the response */
  char *addressed;   /* speaker the reply is for, or NULL */
  /* floor and voice (all optional; zero = default) */
  int addressed_me;  /* the trigger called this persona by name: it gets the floor first */
  int yield;         /* speak only if no other persona wants the floor */
  char voice[64];    /* voice name override for this reply ("" = the persona's voice) */
  int rate, pitch;   /* overrides: words/min, 0..100 (0 = the persona's) */
} kmk_decision;

/* decision.c ------------------------------------------------------------------------------- */

/* Validates a decision object {"thought","should_speak","response","lang"?,"addressed"?}.
 * Coercions: should_speak may be true/false, "true"/"false"/"yes"/"no", 0/1; missing or null
 * thought/response -> ""; response trimmed and capped at max_reply code points (0 = default) at a
 * word boundary when possible; should_speak with an empty response -> silent. lang: kept when it
 * is 2-3 lowercase letters, else inferred from the response (Cyrillic -> "ru") or lang_hint.
 * Returns 0 or -1 with a message in err. On success the caller owns out (kmk_decision_clear). */
int kmk_decision_from_json(const cJSON *obj, size_t max_reply, const char *lang_hint,
                           kmk_decision *out, char *err, size_t errlen);
/* Parses an LLM's raw answer: JSON, possibly in ```json fences or surrounded by prose, with
 * trailing commas, single-quoted strings, Python True/False/None, bare keys or raw newlines in
 * strings repaired. Returns 0 (decision filled) or -1 with a clear message (-> stay silent). */
int kmk_decision_parse_llm(const char *text, size_t len, size_t max_reply, const char *lang_hint,
                           kmk_decision *out, char *err, size_t errlen);
void kmk_decision_clear(kmk_decision *d);
/* 1 when s contains Cyrillic letters. */
int kmk_decision_has_cyrillic(const char *s);

/* brain.c ---------------------------------------------------------------------------------- */

#define KMK_PERSONA_MAX_LANGS 8
#define KMK_PERSONA_MAX_WAKE 16

typedef struct {
  char lang[8];
  char engine[16]; /* "espeak" | "flite" */
  char voice[64];
  int rate;        /* words per minute; 0 = engine default */
  int pitch;       /* 0..100; 0 = engine default */
} kmk_voice_info;

typedef struct {
  char name[64];
  int n_languages;
  char languages[KMK_PERSONA_MAX_LANGS][8];   /* first = default */
  int n_wake_words;
  char wake_words[KMK_PERSONA_MAX_WAKE][64];  /* lowercase */
  int n_voices;
  kmk_voice_info voices[KMK_PERSONA_MAX_LANGS];
  int context_size;                           /* events kept in the window */
  size_t max_reply_chars;
  int has_on_tick;                            /* defines on_tick: gets "tick" events */
  int has_on_event;                           /* defines on_event: gets stage events */
  int may_interrupt;                          /* policy.may_interrupt: may start while a person
                                                 speaks, and is not cut off by one (agent.c) */
  int early_speech;                           /* policy.early_speech (default 1): speak the LLM
                                                 answer's first sentence while it streams */
  int speculative_stt;                        /* policy.speculative_stt (default 0) */
} kmk_persona_info;

typedef enum { KMK_ACTION_NONE = 0, KMK_ACTION_DECISION, KMK_ACTION_LLM } kmk_action_kind;

typedef struct {
  kmk_action_kind kind;
  kmk_decision decision;     /* KMK_ACTION_DECISION */
  char *llm_messages_json;   /* KMK_ACTION_LLM: OpenAI-style messages array; owned by the action */
  uint64_t llm_request_id;   /* KMK_ACTION_LLM */
  int llm_early_ok;          /* KMK_ACTION_LLM: the answer's first sentence may be spoken before
                                the final decision (0 when the scripts say early = false) */
} kmk_brain_action;

typedef struct kmk_brain kmk_brain;

typedef struct {
  const char *scripts_dir;  /* NULL = KMK_SOURCE_DIR "/scripts" */
  const char *persona_path; /* e.g. "personas/kameko.lua" */
  int llm_available;
  size_t mem_limit;         /* 0 = default (32 MiB) */
  double budget_ms;         /* per call; 0 = default (5 ms) */
  double wall_epoch;        /* Unix time of t=0, for kmk.date(); 0 = the real clock */
} kmk_brain_opts;

/* Loads the scripts and the persona and self-checks them. NULL on failure with err filled (for
 * a broken persona: "path:line: what is wrong"). Caller owns the brain. */
kmk_brain *kmk_brain_new(const kmk_brain_opts *o, char *err, size_t errlen);
/* Persona facts C needs. Owned by b; valid until kmk_brain_free. */
const kmk_persona_info *kmk_brain_persona(const kmk_brain *b);
/* The voice for lang (falls back to the first voice); NULL if the persona has none. */
const kmk_voice_info *kmk_persona_voice(const kmk_persona_info *p, const char *lang);
/* Feeds one conversation event (an events.jsonl object: {"t","type","speaker",...}). */
int kmk_brain_event(kmk_brain *b, const cJSON *event, double now, kmk_brain_action *out);
/* The LLM's raw text answer, or error (text NULL) for a request; produces the decision. */
int kmk_brain_llm_result(kmk_brain *b, uint64_t request_id, const char *text, const char *error,
                         kmk_brain_action *out);
void kmk_brain_set_llm_available(kmk_brain *b, int available);
/* Hot reload as a transaction: rebuilds the scripts and the persona from disk in a fresh state,
 * self-checks it, hands the context window over and swaps. On failure (err says why, with
 * file:line for a broken persona) the running persona is kept untouched. The kmk_persona_info
 * pointer stays valid (its contents may change). */
int kmk_brain_reload(kmk_brain *b, char *err, size_t errlen);
void kmk_brain_action_clear(kmk_brain_action *a);
void kmk_brain_free(kmk_brain *b);

/* watch.c: a debounced watcher of one file (fs events on its directory, so saves by rename are
 * seen; a burst of events within debounce_ms -> one callback on the loop thread). The watcher owns
 * two handles; kmk_file_watch_free closes them and frees the struct in the close callbacks, so the
 * loop must run once more afterwards. NULL if the directory cannot be watched. */
struct uv_loop_s;
typedef struct kmk_file_watch kmk_file_watch;
typedef void (*kmk_file_watch_cb)(void *ud);
kmk_file_watch *kmk_file_watch_new(struct uv_loop_s *loop, const char *path, unsigned debounce_ms,
                                   kmk_file_watch_cb cb, void *ud);
void kmk_file_watch_free(kmk_file_watch *w);
uint64_t kmk_file_watch_changes(const kmk_file_watch *w);

/* A user asked to be forgotten: their lines leave the context window, LLM requests waiting on
 * their words are dropped, kmk.memory(speaker) is erased (names compared case-insensitively) and
 * the persona's on_forget(name, state) hook, if any, erases what it keeps in its own state.
 * Returns the number of items erased (window lines + pending requests + remembered facts + what
 * the hook reports) or a negative KMK_BRAIN_E*. */
int kmk_brain_forget(kmk_brain *b, const char *speaker);

/* The persona's file path (as given to kmk_brain_new). */
const char *kmk_brain_path(const kmk_brain *b);

/* Loads the engine-side scripts (in dependency order) into v as modules. Used by kmk_brain_new
 * and by the Lua spec runner. */
struct kmk_lua;
int kmk_brain_load_scripts(struct kmk_lua *v, const char *scripts_dir, char *err, size_t errlen);

#endif
