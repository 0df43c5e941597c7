/* demo.c - synthesizes a short two-speaker conversation with flite and replays it.
 * Main thread, before any loop runs (flite is called directly; nothing else uses it then).
 */
#include "kameko/demo.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kameko/audio.h"
#include "kameko/wav.h"
#include "kameko/replay.h"
#include "kameko/speech.h"

typedef struct {
  int16_t *pcm;
  size_t n, cap;
  int rate;
} pcm_buf;

static int collect(void *ud, const int16_t *pcm, size_t n, int rate) {
  pcm_buf *b = ud;
  if (b->n + n > b->cap) {
    size_t cap = (b->cap + n) * 2;
    int16_t *p = realloc(b->pcm, cap * sizeof *p);
    if (!p) return 1;
    b->pcm = p;
    b->cap = cap;
  }
  memcpy(b->pcm + b->n, pcm, n * sizeof *pcm);
  b->n += n;
  b->rate = rate;
  return 0;
}

/* The demo conversation: who says what, when (seconds on the timeline). Alice and Bob talk to
   each other (the persona should stay out of it) and each addresses the persona once. The persona greets both
   as they join, so the talk starts after its greetings. */
typedef struct {
  const char *speaker, *voice;
  double at;
  const char *text;
} demo_line;

static const demo_line demo_script[] = {
    {"alice", "slt", 6.0, "Hello Bob. Did you see the game last night?"},
    {"bob", "kal16", 10.0, "Yes, it was a great game."},
    {"bob", "kal16", 13.5, "Kameko, how are you today?"},
    {"alice", "slt", 22.0, "Kameko, what can you do?"},
};

/* Writes one speaker's track: their lines at their times, silence between, 2 s of tail. */
static int synth_track(const char *path, const char *speaker, char *err, size_t errlen) {
  pcm_buf b = {0};
  atomic_int cancel = 0;
  for (size_t i = 0; i < sizeof demo_script / sizeof demo_script[0]; i++) {
    const demo_line *l = &demo_script[i];
    if (strcmp(l->speaker, speaker) != 0) continue;
    size_t at = (size_t)(l->at * 16000);
    if (at > b.n) {
      size_t gap = at - b.n;
      int16_t *zeros = calloc(gap, sizeof *zeros);
      if (!zeros || collect(&b, zeros, gap, 16000)) {
        free(zeros);
        free(b.pcm);
        snprintf(err, errlen, "out of memory");
        return -1;
      }
      free(zeros);
    }
    kmk_tts_voice v = {.voice = l->voice};
    char sub[256];
    if (kmk_tts_flite_synth(l->text, &v, collect, &b, &cancel, sub, sizeof sub) < 0) {
      snprintf(err, errlen, "flite: %s", sub);
      free(b.pcm);
      return -1;
    }
  }
  int16_t tail[16000] = {0};
  collect(&b, tail, 16000, 16000);
  collect(&b, tail, 16000, 16000);
  int rc = kmk_wav_write_s16(path, b.pcm, b.n, 16000, 1);
  if (rc < 0) snprintf(err, errlen, "cannot write %s", path);
  free(b.pcm);
  return rc;
}

int kmk_demo_run(const char *out_dir, const char *persona_path, const char *scripts_dir, int fast,
                 const kmk_config *cfg, char *err, size_t errlen) {
  char cmd_dir[1024];
  snprintf(cmd_dir, sizeof cmd_dir, "%s", out_dir);
  for (char *p = cmd_dir + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(cmd_dir, 0755);
      *p = '/';
    }
  mkdir(cmd_dir, 0755);
  char alice[1200], bob[1200];
  snprintf(alice, sizeof alice, "%s/alice.wav", out_dir);
  snprintf(bob, sizeof bob, "%s/bob.wav", out_dir);
  printf("demo: synthesizing two speakers with flite into %s\n", out_dir);
  if (synth_track(alice, "alice", err, errlen) < 0) return -1;
  if (synth_track(bob, "bob", err, errlen) < 0) return -1;
  kmk_replay_track tracks[] = {{"alice", alice, 0.0}, {"bob", bob, 0.0}};
  const char *personas[] = {persona_path};
  kmk_replay_opts o = {.tracks = tracks,
                       .n_tracks = 2,
                       .out_dir = out_dir,
                       .fast = fast,
                       .persona_paths = personas,
                       .n_personas = 1,
                       .scripts_dir = scripts_dir};
  int rc = kmk_replay_run(&o, cfg, err, errlen);
  if (rc >= 0) printf("demo: listen to %s/conversation.wav; every step is in %s/events.jsonl\n",
                      out_dir, out_dir);
  return rc;
}
