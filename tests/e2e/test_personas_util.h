/* test_personas_util.h - helpers shared by the end-to-end tests (replay, personas, reload, cloud):
 * flite-synthesized tracks, events.jsonl loading and lookups, temp persona files.
 */
#ifndef KMK_TEST_PERSONAS_UTIL_H
#define KMK_TEST_PERSONAS_UTIL_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kameko/config.h"
#include "kameko/replay.h"
#include "kameko/speech.h"
#include "kameko/wav.h"

typedef struct {
  int16_t *pcm;
  size_t n, cap;
} pbuf;

/* Removes a test's output folder, or keeps it (and says where) with KMK_KEEP_OUTPUT set. */
static inline void remove_output(const char *dir) {
  if (getenv("KMK_KEEP_OUTPUT")) {
    printf("output kept in %s\n", dir);
    return;
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Runs a replay with offline providers (default settings, no .env) and the engine's own scripts
   when o->scripts_dir is NULL. Returns kmk_replay_run's rc; a failure is printed. */
static inline int replay_offline(kmk_replay_opts *o) {
  kmk_config cfg;
  char err[1024] = "";
  if (kmk_config_load(&cfg, NULL, 0, err, sizeof err) < 0) {
    fprintf(stderr, "config: %s\n", err);
    kmk_config_free(&cfg);
    return -1;
  }
  if (!o->scripts_dir) o->scripts_dir = KMK_SOURCE_DIR "/scripts";
  int rc = kmk_replay_run(o, &cfg, err, sizeof err);
  if (rc != 0) fprintf(stderr, "replay: %d %s\n", rc, err);
  kmk_config_free(&cfg);
  return rc;
}

static inline int pbuf_grow(pbuf *b, size_t n) {
  if (b->n + n <= b->cap) return 0;
  size_t cap = (b->n + n) * 2;
  int16_t *p = realloc(b->pcm, cap * sizeof *p);
  if (!p) return -1;
  b->pcm = p;
  b->cap = cap;
  return 0;
}
static inline int pbuf_chunk(void *ud, const int16_t *pcm, size_t n, int rate) {
  (void)rate; /* flite voices used here are 16 kHz */
  pbuf *b = ud;
  if (pbuf_grow(b, n) < 0) return 1;
  memcpy(b->pcm + b->n, pcm, n * sizeof *pcm);
  b->n += n;
  return 0;
}
static inline void pbuf_silence(pbuf *b, double s) {
  size_t n = (size_t)(s * 16000);
  if (pbuf_grow(b, n) < 0) return;
  memset(b->pcm + b->n, 0, n * sizeof *b->pcm);
  b->n += n;
}
static inline int pbuf_say(pbuf *b, const char *voice, const char *text) {
  kmk_tts_voice v = {.voice = voice};
  atomic_int cancel = 0;
  char err[256];
  return kmk_tts_flite_synth(text, &v, pbuf_chunk, b, &cancel, err, sizeof err);
}

typedef struct {
  cJSON *ev[1024];
  int n;
} pevents;

static inline void pevents_load(const char *dir, pevents *e) {
  char path[512];
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  FILE *f = fopen(path, "r");
  e->n = 0;
  CHECK(f != NULL);
  if (!f) return;
  char line[16384];
  while (fgets(line, sizeof line, f) && e->n < 1024) {
    cJSON *j = cJSON_Parse(line);
    CHECK(j != NULL);
    if (j) e->ev[e->n++] = j;
  }
  fclose(f);
}
static inline void pevents_free(pevents *e) {
  for (int i = 0; i < e->n; i++) cJSON_Delete(e->ev[i]);
  e->n = 0;
}
static const char *pstr(const cJSON *ev, const char *k) {
  const cJSON *x = cJSON_GetObjectItem(ev, k);
  return cJSON_IsString(x) ? x->valuestring : "";
}
static inline double pnum(const cJSON *ev, const char *k) {
  const cJSON *x = cJSON_GetObjectItem(ev, k);
  return cJSON_IsNumber(x) ? x->valuedouble : -1;
}
static inline int ptype(const cJSON *ev, const char *type) { return strcmp(pstr(ev, "type"), type) == 0; }

/* Index of the first event at or after `from` with this type (and speaker, if given), or -1. */
static inline int pfind(const pevents *e, int from, const char *type, const char *speaker) {
  for (int i = from < 0 ? 0 : from; i < e->n; i++)
    if (ptype(e->ev[i], type) && (!speaker || strcmp(pstr(e->ev[i], "speaker"), speaker) == 0))
      return i;
  return -1;
}
/* Index of the first decision at or after `from` that answers `to`'s transcript, or -1. */
static inline int pfind_decision_for(const pevents *e, int from, const char *to) {
  for (int i = from < 0 ? 0 : from; i < e->n; i++)
    if (ptype(e->ev[i], "decision") && strcmp(pstr(e->ev[i], "to"), to) == 0 &&
        strcmp(pstr(e->ev[i], "trigger"), "transcript") == 0)
      return i;
  return -1;
}

/* Writes text to path atomically (temp file + rename, as editors do). */
static inline int write_file_rename(const char *path, const char *text) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp~", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return -1;
  fputs(text, f);
  fclose(f);
  return rename(tmp, path);
}
/* Writes text in place (truncate + write). */
static inline int write_file_inplace(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  fclose(f);
  return 0;
}

/* Checks that no two audio_out_start..audio_out_end intervals overlap; returns the count. */
static inline int check_no_overlap(const pevents *e) {
  int open = 0, n = 0;
  for (int i = 0; i < e->n; i++) {
    if (ptype(e->ev[i], "audio_out_start")) {
      CHECK(!open); /* a second voice started before the first ended */
      open = 1;
      n++;
    } else if (ptype(e->ev[i], "audio_out_end")) {
      CHECK(open);
      open = 0;
    }
  }
  return n;
}

#endif
