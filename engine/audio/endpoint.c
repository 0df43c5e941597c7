/* endpoint.c - the per-speaker endpointer state machine (see endpoint.h for the diagram).
 *
 * Owns: the pre-roll ring, the growing utterance buffer and the finished utterance until the
 * caller takes it. Thread: one owner thread per endpointer; no I/O, no clock.
 */
#include "kameko/endpoint.h"

#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/ring.h"

#define SPMS (KMK_AUDIO_RATE / 1000) /* samples per ms */
#define NPAUSE 32        /* adaptive end: how many recent in-turn pauses are remembered */
#define MIN_PAUSES 3     /* ... and how many are needed before the learnt value is used */
#define RETRO_MS 100     /* a restart this soon after an end means the end was too early */
#define MIN_PAUSE_MS 100 /* shorter silences are articulation (stops), not hesitations */
#define GRACE_SCORE 0.9f /* adaptive: an end due on a frame the VAD already scores this high ... */
#define GRACE_FRAMES 5   /* ... waits up to this many frames (a restart the VAD confirms late) */

struct kmk_endpoint {
  kmk_endpoint_params p;
  int min_frames, end_frames;   /* thresholds in frames */
  size_t preroll, tail, max_len; /* in samples */
  kmk_endpoint_state state;
  uint64_t pos;       /* start sample of the next frame */
  uint64_t prev_end;  /* end sample of the previous utterance: pre-roll never reaches before it */
  kmk_ring ring;      /* last preroll samples, for the pre-roll */
  int16_t *utt;       /* current utterance (from utt_start), grows up to max_len */
  size_t utt_len, utt_cap;
  uint64_t utt_start;
  uint64_t voiced_start, last_voiced_end;
  int voiced_frames, silence_frames;
  int16_t *done;      /* finished utterance not yet taken */
  /* turn-taking extensions */
  int pause_frames;     /* 0 = no SPEECH_PAUSE events */
  int paused;           /* a SPEECH_PAUSE was emitted for the current silence run */
  int cur_end_frames;   /* end silence in force (adaptive) */
  int min_end_frames, margin_frames;
  int pauses[NPAUSE];   /* recent in-turn pauses, frames (ring) */
  int npauses, pause_next;
  uint64_t prev_voiced_end; /* last voiced sample of the previous utterance (0 = none) */
  int grace;            /* frames the due end has waited for a likely restart */
};

void kmk_endpoint_params_default(kmk_endpoint_params *p) {
  p->min_speech_ms = 250;
  p->end_silence_ms = 1000;
  p->preroll_ms = 300;
  p->max_utterance_ms = 30000;
  p->tail_ms = 100;
  p->pause_ms = 0;
  p->adaptive_end = 0;
  p->min_end_silence_ms = 400;
  p->end_margin_ms = 30;
}

void kmk_endpoint_params_turn(kmk_endpoint_params *p) {
  kmk_endpoint_params_default(p);
  p->end_silence_ms = 550;
  p->pause_ms = 200;
  p->adaptive_end = 1;
  p->min_end_silence_ms = 450;
  p->end_margin_ms = 30;
}

/* Named presets: name, floor, ceiling (= start value), margin, pause; see endpoint.h. */
static const struct {
  const char *name;
  int min_end, end, margin, pause;
} PRESETS[] = {
    {"snappy", 350, 450, 10, 150},  /* game table: answers fast, cuts more long hesitations */
    {"turn", 450, 550, 30, 200},    /* balanced (= kmk_endpoint_params_turn) */
    {"patient", 550, 900, 80, 250}, /* chat / slow speakers: rarely cuts, answers later */
};

int kmk_endpoint_params_preset(kmk_endpoint_params *p, const char *name) {
  if (!p) return KMK_AUDIO_EINVAL;
  kmk_endpoint_params_default(p);
  if (!name || !*name || !strcmp(name, "classic")) return 0;
  for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
    if (!strcmp(name, PRESETS[i].name)) {
      p->end_silence_ms = PRESETS[i].end;
      p->min_end_silence_ms = PRESETS[i].min_end;
      p->end_margin_ms = PRESETS[i].margin;
      p->pause_ms = PRESETS[i].pause;
      p->adaptive_end = 1;
      return 0;
    }
  kmk_endpoint_params_turn(p); /* unknown name: the balanced preset, and say so */
  return KMK_AUDIO_EINVAL;
}

kmk_endpoint *kmk_endpoint_new(const kmk_endpoint_params *in) {
  kmk_endpoint_params p;
  kmk_endpoint_params_default(&p);
  if (in) {
    if (in->min_speech_ms > 0) p.min_speech_ms = in->min_speech_ms;
    if (in->end_silence_ms > 0) p.end_silence_ms = in->end_silence_ms;
    if (in->preroll_ms >= 0) p.preroll_ms = in->preroll_ms;
    if (in->max_utterance_ms > 0) p.max_utterance_ms = in->max_utterance_ms;
    if (in->tail_ms >= 0) p.tail_ms = in->tail_ms;
    p.pause_ms = in->pause_ms > 0 ? in->pause_ms : 0;
    p.adaptive_end = in->adaptive_end ? 1 : 0;
    if (in->min_end_silence_ms > 0) p.min_end_silence_ms = in->min_end_silence_ms;
    if (in->end_margin_ms > 0) p.end_margin_ms = in->end_margin_ms;
  }
  if (p.min_end_silence_ms > p.end_silence_ms) p.min_end_silence_ms = p.end_silence_ms;
  if (p.tail_ms > p.end_silence_ms) p.tail_ms = p.end_silence_ms;
  /* The utterance must be able to hold pre-roll + min speech + one more frame. */
  if (p.preroll_ms > 10000 || p.max_utterance_ms < p.min_speech_ms + p.preroll_ms + 20 ||
      p.max_utterance_ms > 600000)
    return NULL;
  kmk_endpoint *ep = calloc(1, sizeof *ep);
  if (!ep) return NULL;
  ep->p = p;
  ep->min_frames = (p.min_speech_ms + 9) / 10;
  ep->end_frames = (p.end_silence_ms + 9) / 10;
  ep->cur_end_frames = ep->end_frames;
  ep->min_end_frames = (p.min_end_silence_ms + 9) / 10;
  ep->margin_frames = (p.end_margin_ms + 9) / 10;
  ep->pause_frames = (p.pause_ms + 9) / 10;
  ep->preroll = (size_t)p.preroll_ms * SPMS;
  ep->tail = (size_t)p.tail_ms * SPMS;
  ep->max_len = (size_t)p.max_utterance_ms * SPMS;
  if (kmk_ring_init(&ep->ring, ep->preroll ? ep->preroll : 1) < 0) {
    free(ep);
    return NULL;
  }
  return ep;
}

void kmk_endpoint_free(kmk_endpoint *ep) {
  if (!ep) return;
  kmk_ring_free(&ep->ring);
  free(ep->utt);
  free(ep->done);
  free(ep);
}

/* The finished utterance of the previous call was not taken: recycle or drop it. */
static void recycle_done(kmk_endpoint *ep) {
  if (!ep->done) return;
  if (!ep->utt) {
    ep->utt = ep->done;
    ep->utt_cap = 0; /* unknown after hand-out; realloc on first append */
  } else {
    free(ep->done);
  }
  ep->done = NULL;
}

/* Makes room for `need` samples in the utterance buffer (grows by doubling, capped). */
static int reserve(kmk_endpoint *ep, size_t need) {
  if (need <= ep->utt_cap) return 0;
  size_t cap = ep->utt_cap ? ep->utt_cap : (size_t)KMK_AUDIO_RATE;
  while (cap < need) cap *= 2;
  if (cap > ep->max_len) cap = ep->max_len;
  if (cap < need) return KMK_AUDIO_ENOMEM;
  int16_t *u = realloc(ep->utt, cap * sizeof *u);
  if (!u) return KMK_AUDIO_ENOMEM;
  ep->utt = u;
  ep->utt_cap = cap;
  return 0;
}

static int append(kmk_endpoint *ep, const int16_t *s, size_t n) {
  if (reserve(ep, ep->utt_len + n) < 0) return KMK_AUDIO_ENOMEM;
  memcpy(ep->utt + ep->utt_len, s, n * sizeof *s);
  ep->utt_len += n;
  return 0;
}

/* Adaptive end: remembers an in-turn pause of `frames` and recomputes the end silence. */
static void learn_pause(kmk_endpoint *ep, int frames) {
  if (!ep->p.adaptive_end || frames < MIN_PAUSE_MS / 10) return;
  ep->pauses[ep->pause_next] = frames;
  ep->pause_next = (ep->pause_next + 1) % NPAUSE;
  if (ep->npauses < NPAUSE) ep->npauses++;
  if (ep->npauses < MIN_PAUSES) return;
  /* the longest pause seen, plus the expected shortfall of a maximum of n samples (for a uniform
     spread, (max - min) / n), plus the margin */
  int mx = 0, mn = 1 << 30;
  for (int i = 0; i < ep->npauses; i++) {
    mx = ep->pauses[i] > mx ? ep->pauses[i] : mx;
    mn = ep->pauses[i] < mn ? ep->pauses[i] : mn;
  }
  int e = mx + (mx - mn) / ep->npauses + ep->margin_frames;
  if (e < ep->min_end_frames) e = ep->min_end_frames;
  if (e > ep->end_frames) e = ep->end_frames;
  ep->cur_end_frames = e;
}

/* Hands the utterance [utt_start, utt_start + len) out as a SPEECH_END event. */
static int emit_end(kmk_endpoint *ep, size_t len, int forced, kmk_endpoint_event *ev) {
  if (len > ep->utt_len) len = ep->utt_len;
  ev->type = KMK_EP_SPEECH_END;
  ev->start_sample = ep->utt_start;
  ev->length = len;
  ev->pcm = ep->utt;
  ev->forced = forced;
  ep->done = ep->utt;
  ep->utt = NULL;
  ep->utt_len = ep->utt_cap = 0;
  ep->prev_end = ep->utt_start + len;
  ep->prev_voiced_end = forced ? 0 : ep->last_voiced_end; /* forced: not a turn decision */
  ep->state = KMK_EP_SILENCE;
  return 1;
}

static int emit_discard(kmk_endpoint *ep, kmk_endpoint_event *ev) {
  ev->type = KMK_EP_DISCARD;
  ev->start_sample = ep->voiced_start;
  ev->length = ep->last_voiced_end - ep->voiced_start;
  ev->pcm = NULL;
  ev->forced = 0;
  ep->utt_len = 0;
  ep->state = KMK_EP_SILENCE;
  return 1;
}

static int emit_start(kmk_endpoint *ep, kmk_endpoint_event *ev) {
  ev->type = KMK_EP_SPEECH_START;
  ev->start_sample = ep->utt_start;
  ev->length = 0;
  ev->pcm = NULL;
  ev->forced = 0;
  ep->state = KMK_EP_SPEECH;
  /* adaptive: restarting right after our own end means that end cut the turn */
  if (ep->p.adaptive_end && ep->prev_voiced_end && ep->voiced_start > ep->prev_voiced_end) {
    uint64_t gap = (ep->voiced_start - ep->prev_voiced_end) / KMK_VAD_FRAME;
    if (gap < (uint64_t)ep->cur_end_frames + RETRO_MS / 10) learn_pause(ep, (int)gap);
  }
  return 1;
}

static int emit_pause(kmk_endpoint *ep, kmk_endpoint_event *ev, uint64_t end) {
  uint64_t stop = ep->last_voiced_end + ep->tail;
  if (stop > end) stop = end;
  size_t len = (size_t)(stop - ep->utt_start);
  ev->type = KMK_EP_SPEECH_PAUSE;
  ev->start_sample = ep->utt_start;
  ev->length = len < ep->utt_len ? len : ep->utt_len;
  ev->pcm = ep->utt;
  ev->forced = 0;
  ep->paused = 1;
  return 1;
}

int kmk_endpoint_process(kmk_endpoint *ep, const int16_t *frame, const kmk_vad_result *vr,
                         kmk_endpoint_event *ev) {
  if (!ep || !frame || !vr || !ev) return KMK_AUDIO_EINVAL;
  recycle_done(ep);
  memset(ev, 0, sizeof *ev);
  const uint64_t pos = ep->pos, end = pos + KMK_VAD_FRAME;
  const int speech = vr->is_speech != 0;
  int ret = 0, rc = 0;
  switch (ep->state) {
    case KMK_EP_SILENCE:
      if (!speech) break;
      {
        uint64_t room = pos - ep->prev_end;
        size_t n = ep->preroll < room ? ep->preroll : (size_t)room;
        n = kmk_ring_size(&ep->ring) < n ? kmk_ring_size(&ep->ring) : n;
        ep->utt_len = 0;
        if ((rc = reserve(ep, n + KMK_VAD_FRAME)) < 0) break;
        ep->utt_len = kmk_ring_peek_last(&ep->ring, ep->utt, n);
        ep->utt_start = pos - n;
        rc = append(ep, frame, KMK_VAD_FRAME);
        ep->voiced_start = pos;
        ep->last_voiced_end = end;
        ep->voiced_frames = 1;
        ep->silence_frames = 0;
        ep->state = KMK_EP_MAYBE_SPEECH;
        if (ep->voiced_frames >= ep->min_frames) ret = emit_start(ep, ev);
      }
      break;
    case KMK_EP_MAYBE_SPEECH:
      if (ep->utt_len + KMK_VAD_FRAME > ep->max_len) { /* sparse bursts for too long: not speech */
        ret = emit_discard(ep, ev);
        break;
      }
      rc = append(ep, frame, KMK_VAD_FRAME);
      if (speech) {
        ep->voiced_frames++;
        ep->silence_frames = 0;
        ep->last_voiced_end = end;
        if (ep->voiced_frames >= ep->min_frames) ret = emit_start(ep, ev);
      } else if (++ep->silence_frames >= ep->end_frames) {
        ret = emit_discard(ep, ev);
      }
      break;
    case KMK_EP_SPEECH:
    case KMK_EP_TRAILING:
      rc = append(ep, frame, KMK_VAD_FRAME);
      if (speech) {
        if (ep->silence_frames) learn_pause(ep, ep->silence_frames);
        if (ep->paused) {
          ev->type = KMK_EP_SPEECH_RESUME;
          ev->start_sample = ep->utt_start;
          ep->paused = 0;
          ret = 1;
        }
        ep->silence_frames = 0;
        ep->grace = 0;
        ep->last_voiced_end = end;
        ep->state = KMK_EP_SPEECH;
      } else {
        ep->state = KMK_EP_TRAILING;
        if (++ep->silence_frames >= ep->cur_end_frames && ep->p.adaptive_end &&
            vr->score >= GRACE_SCORE && ep->grace < GRACE_FRAMES) {
          ep->grace++; /* the VAD sees a strong frame it has not confirmed yet: wait for it */
        } else if (ep->silence_frames >= ep->cur_end_frames) {
          ep->grace = 0;
          ep->paused = 0;
          uint64_t stop = ep->last_voiced_end + ep->tail;
          if (stop > end) stop = end;
          ret = emit_end(ep, (size_t)(stop - ep->utt_start), 0, ev);
        } else if (ep->pause_frames && !ep->paused && ep->silence_frames == ep->pause_frames) {
          ret = emit_pause(ep, ev, end);
        }
      }
      if (ep->utt_len + KMK_VAD_FRAME > ep->max_len) {
        ep->paused = 0; /* a forced end wins over a pause/resume note in the same frame */
        ret = emit_end(ep, ep->utt_len, 1, ev);
      }
      break;
  }
  kmk_ring_write(&ep->ring, frame, KMK_VAD_FRAME);
  ep->pos = end;
  if (rc < 0) { /* cannot happen within max_len; be safe: drop the utterance */
    ep->utt_len = 0;
    ep->state = KMK_EP_SILENCE;
    return rc;
  }
  return ret;
}

int kmk_endpoint_finish(kmk_endpoint *ep, kmk_endpoint_event *ev) {
  if (!ep || !ev) return KMK_AUDIO_EINVAL;
  recycle_done(ep);
  memset(ev, 0, sizeof *ev);
  switch (ep->state) {
    case KMK_EP_MAYBE_SPEECH: return emit_discard(ep, ev);
    case KMK_EP_SPEECH:
    case KMK_EP_TRAILING: {
      ep->paused = 0;
      uint64_t stop = ep->last_voiced_end + ep->tail;
      if (stop > ep->pos) stop = ep->pos;
      return emit_end(ep, (size_t)(stop - ep->utt_start), 1, ev);
    }
    default: return 0;
  }
}

int16_t *kmk_endpoint_take_pcm(kmk_endpoint *ep) {
  if (!ep) return NULL;
  int16_t *p = ep->done;
  ep->done = NULL;
  return p;
}

void kmk_endpoint_reset(kmk_endpoint *ep) {
  if (!ep) return;
  recycle_done(ep);
  kmk_ring_clear(&ep->ring);
  ep->state = KMK_EP_SILENCE;
  ep->pos = ep->prev_end = 0;
  ep->utt_len = 0;
  ep->voiced_frames = ep->silence_frames = 0;
  ep->paused = 0;
  ep->prev_voiced_end = 0;
  ep->grace = 0;
  ep->npauses = ep->pause_next = 0;
  ep->cur_end_frames = ep->end_frames;
}

int kmk_endpoint_end_silence_ms(const kmk_endpoint *ep) { return ep ? ep->cur_end_frames * 10 : 0; }

kmk_endpoint_state kmk_endpoint_get_state(const kmk_endpoint *ep) { return ep->state; }
uint64_t kmk_endpoint_position(const kmk_endpoint *ep) { return ep->pos; }

const char *kmk_endpoint_state_name(kmk_endpoint_state s) {
  switch (s) {
    case KMK_EP_SILENCE: return "silence";
    case KMK_EP_MAYBE_SPEECH: return "maybe_speech";
    case KMK_EP_SPEECH: return "speech";
    case KMK_EP_TRAILING: return "trailing";
  }
  return "?";
}

const char *kmk_endpoint_event_name(kmk_endpoint_event_type t) {
  switch (t) {
    case KMK_EP_EVENT_NONE: return "none";
    case KMK_EP_SPEECH_START: return "speech_start";
    case KMK_EP_SPEECH_END: return "speech_end";
    case KMK_EP_DISCARD: return "discard";
    case KMK_EP_SPEECH_PAUSE: return "speech_pause";
    case KMK_EP_SPEECH_RESUME: return "speech_resume";
  }
  return "?";
}
