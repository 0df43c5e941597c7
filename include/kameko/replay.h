/* replay.h - the replay transport: several speakers' WAV tracks on one timeline, through the real
 * pipeline, in real time or as fast as possible (--fast holds the timeline while STT/TTS jobs run,
 * so both modes produce the same events). Writes DIR/events.jsonl and DIR/conversation.wav (every
 * speaker plus the agent's voice, mixed at 16 kHz mono on the timeline).
 */
#ifndef KAMEKO_REPLAY_H
#define KAMEKO_REPLAY_H

#include <stddef.h>

#include "kameko/config.h"

typedef struct {
  const char *name;
  const char *path;
  double at; /* seconds on the timeline where the track starts */
} kmk_replay_track;

typedef struct {
  const char *speaker, *text;
  double at; /* seconds on the timeline */
} kmk_replay_chat;

typedef struct {
  const kmk_replay_track *tracks;
  size_t n_tracks;
  const char *out_dir;
  int fast;
  const char *const *persona_paths;
  size_t n_personas;
  const char *scripts_dir;
  double tail_s;    /* timeline kept running after the last track ends (default 2 s) */
  double max_wait_s; /* how long past the end the agent may stay busy (default 120 s) */
  const kmk_replay_chat *chats; /* text-chat messages on the timeline (optional) */
  size_t n_chats;
} kmk_replay_opts;

/* Returns 0; -1 with err for bad input (files, persona) before anything ran; 1 when the run
   finished but errors were logged (see events.jsonl). */
int kmk_replay_run(const kmk_replay_opts *o, const kmk_config *cfg, char *err, size_t errlen);

#endif
