/* replay.c - the replay transport: WAV tracks on one timeline through the real agent pipeline.
 *
 * Owns: the loop of the run, the decoded tracks, the timeline clock, the mixer of
 * conversation.wav and the tick timer. Single thread (the loop); the agent's workers report back
 * through its evq.
 *
 * Timeline: ticks of 20 ms. Each tick feeds every active track's next 20 ms (at the file's own rate
 * and channel count: the speaker stream resamples) and pulls one frame of the agent's voice, which
 * is mixed into conversation.wav at the tick's time. Real time: a pacer with absolute deadlines
 * drives the ticks. --fast: ticks run back to back, but the clock holds while the agent's
 * background jobs (recognition, synthesis) run, as if they were instant; the events are therefore
 * the same in both modes, while latency_ms fields report the real processing times.
 */
#include "kameko/replay.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "kameko/agent.h"
#include "kameko/audio.h"
#include "kameko/mixer.h"
#include "kameko/pacer.h"
#include "kameko/resample.h"
#include "kameko/wav.h"
#include "kameko/eventlog.h"
#include "kameko/log.h"

#define TICK_MS 20
#define MIX_RATE 16000

typedef struct {
  const kmk_replay_track *def;
  int16_t *pcm; /* interleaved, file rate/channels */
  size_t frames;
  int rate, channels;
  size_t pos;   /* frames fed so far */
  int state;    /* 0 waiting, 1 playing, 2 done */
  kmk_speaker *sp;
} track;

typedef struct {
  uv_loop_t loop;
  uv_timer_t timer;
  kmk_pacer pacer;
  const kmk_replay_opts *o;
  track *tracks;
  size_t n;
  kmk_agent *agent;
  kmk_eventlog *log;
  kmk_mixer *mix;
  uint64_t tick;      /* ticks done: timeline = tick * 20 ms */
  kmk_resampler *agent_rs; /* the agent's 48 kHz stereo frames -> 16 kHz mono for the mix */
  uint64_t agent_pos;      /* mix position (16 kHz samples) of the agent's next output */
  int agent_was_talking;   /* a frame was pulled on the previous tick */
  double end_t;       /* when the last track ends */
  int finished;
  int timed_out;
  size_t agent_frames;
  /* real time: pacing of the ticks (a tick more than LATE_MS after its deadline is late) */
  uint64_t late_ticks, late_max_ns;
  double late_at[8]; /* timeline positions of the first late ticks */
} replay;

#define LATE_MS 10 /* half a frame: later than this and a jitter buffer may run dry */

static double timeline(void *ud) {
  replay *r = ud;
  return (double)r->tick * TICK_MS / 1000.0;
}

/* Loads a track and converts it to int16 interleaved; errors name the file. */
static int load_track(track *t, char *err, size_t errlen) {
  kmk_wav w;
  char sub[512] = "";
  if (kmk_wav_read(t->def->path, &w, sub, sizeof sub) < 0) {
    snprintf(err, errlen, "speaker '%s': %s", t->def->name, sub);
    return -1;
  }
  size_t total = w.frames * (size_t)w.channels;
  t->pcm = malloc((total ? total : 1) * sizeof(int16_t));
  if (!t->pcm) {
    kmk_wav_free(&w);
    snprintf(err, errlen, "speaker '%s': out of memory", t->def->name);
    return -1;
  }
  for (size_t i = 0; i < total; i++) {
    float v = w.samples[i] * 32767.0f;
    t->pcm[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : lrintf(v));
  }
  t->frames = w.frames;
  t->rate = w.rate;
  t->channels = w.channels;
  kmk_wav_free(&w);
  if (t->frames == 0) KMK_WARN("replay", "speaker '%s': %s has no audio", t->def->name, t->def->path);
  return 0;
}

/* Mixes the whole track (as 16 kHz mono) into the conversation at its start time. */
static int mix_track(replay *r, track *t) {
  if (t->frames == 0) return 0;
  kmk_resampler *rs = kmk_resampler_new(t->rate, t->channels, MIX_RATE, 1);
  if (!rs) return -1;
  uint64_t at = (uint64_t)llround(t->def->at * MIX_RATE);
  const int16_t *out;
  int rc = 0;
  /* in pieces, so the resampler's buffer stays small */
  for (size_t pos = 0; pos < t->frames && rc == 0;) {
    size_t n = t->frames - pos < 48000 ? t->frames - pos : 48000;
    long got = kmk_resampler_process_s16(rs, t->pcm + pos * (size_t)t->channels, n, &out);
    if (got < 0) rc = -1;
    else if (got > 0) rc = kmk_mixer_add(r->mix, at, out, (size_t)got), at += (uint64_t)got;
    pos += n;
  }
  long got = rc == 0 ? kmk_resampler_flush(rs, &out) : -1;
  if (got > 0) rc = kmk_mixer_add(r->mix, at, out, (size_t)got);
  else if (got < 0) rc = -1;
  kmk_resampler_free(rs);
  return rc;
}

/* Mixes what the agent sent: its frames, back to 16 kHz mono, at the ticks they went out. */
static void mix_agent(replay *r, const kmk_out_frame *f, double t) {
  const int16_t *out;
  long got;
  if (!f) {
    if (r->agent_was_talking && (got = kmk_resampler_flush(r->agent_rs, &out)) > 0) {
      kmk_mixer_add(r->mix, r->agent_pos, out, (size_t)got);
      r->agent_pos += (uint64_t)got;
    }
    r->agent_was_talking = 0;
    return;
  }
  if (!r->agent_was_talking) r->agent_pos = (uint64_t)llround(t * MIX_RATE);
  r->agent_was_talking = 1;
  got = kmk_resampler_process_s16(r->agent_rs, f->pcm, KMK_OPUS_ENC_FRAME, &out);
  if (got > 0) {
    kmk_mixer_add(r->mix, r->agent_pos, out, (size_t)got);
    r->agent_pos += (uint64_t)got;
  }
}

static void replay_stop(replay *r) {
  r->finished = 1;
  uv_timer_stop(&r->timer);
  uv_stop(&r->loop);
}

/* One 20 ms step of the timeline. */
static void step(replay *r) {
  double t = timeline(r);
  double t_next = t + TICK_MS / 1000.0;
  for (size_t i = 0; i < r->n; i++) {
    track *tr = &r->tracks[i];
    if (tr->state == 0 && t + 1e-9 >= tr->def->at) {
      tr->state = 1;
      tr->sp = kmk_agent_speaker_join(r->agent, tr->def->name, t);
      if (!tr->sp) tr->state = 2;
    }
    if (tr->state == 1) {
      /* frames up to the end of this tick, counted from the track's own start */
      size_t upto = (size_t)llround((t_next - tr->def->at) * tr->rate);
      if (upto > tr->frames) upto = tr->frames;
      if (upto > tr->pos) {
        kmk_agent_speaker_pcm(tr->sp, tr->pcm + tr->pos * (size_t)tr->channels, upto - tr->pos,
                              tr->rate, tr->channels);
        tr->pos = upto;
      }
      if (tr->pos >= tr->frames) {
        kmk_agent_speaker_leave(r->agent, tr->sp);
        tr->sp = NULL;
        tr->state = 2;
      }
    }
  }
  for (size_t i = 0; i < r->o->n_chats; i++) /* chat lines due in this tick */
    if (r->o->chats[i].at >= t - 1e-9 && r->o->chats[i].at < t_next - 1e-9)
      kmk_agent_chat(r->agent, r->o->chats[i].speaker, r->o->chats[i].text);
  const kmk_out_frame *f = kmk_agent_pull_frame(r->agent);
  if (f) r->agent_frames++;
  mix_agent(r, f, t);
  r->tick++;
}

static int all_tracks_done(replay *r) {
  for (size_t i = 0; i < r->n; i++)
    if (r->tracks[i].state != 2) return 0;
  return 1;
}

/* After the tracks: keep the clock running for the tail, and while the agent is still busy. */
static int should_end(replay *r) {
  double t = timeline(r);
  if (!all_tracks_done(r)) return 0;
  if (t < r->end_t + r->o->tail_s) return 0;
  if (!kmk_agent_busy(r->agent)) return 1;
  if (t > r->end_t + r->o->tail_s + r->o->max_wait_s) {
    r->timed_out = 1;
    return 1;
  }
  return 0;
}

static void on_tick(uv_timer_t *h) {
  replay *r = h->data;
  if (r->o->fast) {
    /* Hold the timeline while background work runs; the evq's async wakes us again. */
    if (kmk_agent_jobs_pending(r->agent)) {
      uv_timer_start(&r->timer, on_tick, 1, 0);
      return;
    }
    for (int i = 0; i < 50 && !kmk_agent_jobs_pending(r->agent); i++) {
      if (should_end(r)) {
        replay_stop(r);
        return;
      }
      step(r);
    }
    uv_timer_start(&r->timer, on_tick, 0, 0);
    return;
  }
  uint64_t deadline = kmk_pacer_next_deadline(&r->pacer), t_now = uv_hrtime();
  uint64_t due = kmk_pacer_due(&r->pacer, t_now);
  for (uint64_t i = 0; i < due; i++) {
    uint64_t d_i = deadline + i * TICK_MS * 1000000ull, late = t_now > d_i ? t_now - d_i : 0;
    if (late > r->late_max_ns) r->late_max_ns = late;
    if (late > LATE_MS * 1000000ull && r->late_ticks++ < 8)
      r->late_at[r->late_ticks - 1] = timeline(r) + i * TICK_MS / 1000.0;
    if (should_end(r)) {
      replay_stop(r);
      return;
    }
    step(r);
  }
  uint64_t wait_ns = kmk_pacer_wait_ns(&r->pacer, uv_hrtime());
  uv_timer_start(&r->timer, on_tick, wait_ns / 1000000, 0);
}

static int make_dir(const char *path, char *err, size_t errlen) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) goto fail;
    *p = '/';
  }
  if (mkdir(buf, 0755) < 0 && errno != EEXIST) goto fail;
  return 0;
fail:
  snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
  return -1;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int kmk_replay_run(const kmk_replay_opts *o_in, const kmk_config *cfg, char *err, size_t errlen) {
  kmk_replay_opts o = *o_in;
  if (o.tail_s <= 0) o.tail_s = 2.0;
  if (o.max_wait_s <= 0) o.max_wait_s = 120.0;
  replay r;
  memset(&r, 0, sizeof r);
  r.o = &o;
  r.n = o.n_tracks;
  r.tracks = calloc(r.n ? r.n : 1, sizeof *r.tracks);
  int rc = -1;
  if (!r.tracks) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  /* 1. every input is checked before anything runs */
  for (size_t i = 0; i < r.n; i++) {
    r.tracks[i].def = &o.tracks[i];
    if (load_track(&r.tracks[i], err, errlen) < 0) goto out;
    double end = o.tracks[i].at + (double)r.tracks[i].frames / r.tracks[i].rate;
    if (end > r.end_t) r.end_t = end;
  }
  if (make_dir(o.out_dir, err, errlen) < 0) goto out;
  char path[1200];
  snprintf(path, sizeof path, "%s/events.jsonl", o.out_dir);
  r.log = kmk_eventlog_open(path, err, errlen);
  if (!r.log) goto out;
  r.mix = kmk_mixer_new(MIX_RATE, (uint64_t)MIX_RATE * 4 * 3600); /* at most 4 hours */
  r.agent_rs = kmk_resampler_new(KMK_OPUS_ENC_RATE, KMK_OPUS_ENC_CHANNELS, MIX_RATE, 1);
  if (!r.mix || !r.agent_rs) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < r.n; i++)
    if (mix_track(&r, &r.tracks[i]) < 0) {
      snprintf(err, errlen, "speaker '%s': cannot resample for the mix", o.tracks[i].name);
      goto out;
    }

  /* 2. the loop and the agent */
  uv_loop_init(&r.loop);
  kmk_agent_opts ao = {.loop = &r.loop,
                       .log = r.log,
                       .config = cfg,
                       .persona_paths = o.persona_paths,
                       .n_personas = o.n_personas,
                       .scripts_dir = o.scripts_dir,
                       .now = timeline,
                       .now_ud = &r};
  r.agent = kmk_agent_new(&ao, err, errlen);
  if (!r.agent) goto out_loop;
  uv_timer_init(&r.loop, &r.timer);
  r.timer.data = &r;
  kmk_pacer_init(&r.pacer, uv_hrtime(), TICK_MS * 1000000ull, 200 * 1000000ull);
  uv_timer_start(&r.timer, on_tick, 0, 0);
  KMK_INFO("replay", "%zu speaker(s), %.1f s of audio, %s", r.n, r.end_t,
           o.fast ? "as fast as possible" : "in real time");
  uv_run(&r.loop, UV_RUN_DEFAULT);

  if (r.timed_out) {
    cJSON *ev = kmk_event_new(timeline(&r), "error", NULL);
    cJSON_AddStringToObject(ev, "stage", "replay");
    cJSON_AddStringToObject(ev, "message", "agent still busy long after the last track ended");
    kmk_eventlog_write(r.log, ev);
    cJSON_Delete(ev);
  }
  if (!o.fast) {
    cJSON *ev = kmk_event_new(timeline(&r), "replay_stats", NULL);
    cJSON_AddNumberToObject(ev, "ticks", (double)r.tick);
    cJSON_AddNumberToObject(ev, "late_ticks", (double)r.late_ticks);
    cJSON_AddNumberToObject(ev, "late_max_ms", round((double)r.late_max_ns / 1e4) / 100);
    cJSON_AddNumberToObject(ev, "skipped_frames", (double)r.pacer.skipped);
    cJSON_AddNumberToObject(ev, "late_limit_ms", LATE_MS);
    cJSON *at = cJSON_AddArrayToObject(ev, "late_at");
    for (uint64_t i = 0; i < r.late_ticks && i < 8; i++)
      cJSON_AddItemToArray(at, cJSON_CreateNumber(round(r.late_at[i] * 100) / 100));
    kmk_eventlog_write(r.log, ev);
    cJSON_Delete(ev);
  }
  kmk_agent_free(r.agent);
  r.agent = NULL;
  uv_close((uv_handle_t *)&r.timer, NULL);

  snprintf(path, sizeof path, "%s/conversation.wav", o.out_dir);
  mix_agent(&r, NULL, timeline(&r)); /* the resampler's tail */
  if (kmk_mixer_write_wav(r.mix, path) < 0) {
    snprintf(err, errlen, "cannot write %s", path);
    goto out_loop;
  }
  printf("replay: %zu events -> %s/events.jsonl; conversation (%.1f s, %zu agent frames) -> %s\n",
         kmk_eventlog_count(r.log), o.out_dir, (double)kmk_mixer_length(r.mix) / MIX_RATE,
         r.agent_frames, path);
  rc = r.timed_out ? 1 : 0;
out_loop:
  if (r.agent) kmk_agent_free(r.agent);
  uv_walk(&r.loop, close_walk, NULL);
  uv_run(&r.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&r.loop) != 0) KMK_ERR("replay", "handles left open at shutdown");
out:
  for (size_t i = 0; i < r.n; i++) free(r.tracks[i].pcm);
  free(r.tracks);
  kmk_mixer_free(r.mix);
  kmk_resampler_free(r.agent_rs);
  kmk_eventlog_close(r.log);
  return rc;
}
