/* jitter.c - per-SSRC jitter buffer (see jitter.h): reorder by sequence number, declare losses
 * after `depth` packets or max_wait_ms (with the successor when it is there, for FEC), drop
 * late/duplicate packets. Pure; one owner thread.
 */
#include <string.h>

#include "kameko/jitter.h"

void kmk_jitter_init(kmk_jitter *j, int depth, uint64_t max_wait_ms) {
  memset(j, 0, sizeof *j);
  j->depth = depth > 0 ? (depth < KMK_JITTER_SLOTS ? depth : KMK_JITTER_SLOTS - 1) : 3;
  j->max_wait_ms = max_wait_ms ? max_wait_ms : 60;
}

int kmk_jitter_buffered(const kmk_jitter *j) { return j->count; }

static void drop_all(kmk_jitter *j) {
  for (int i = 0; i < KMK_JITTER_SLOTS; i++) j->slot[i].used = 0;
  j->count = 0;
}

/* Signed distance seq - next in sequence-number space. */
static int dist(const kmk_jitter *j, uint16_t seq) { return (int16_t)(uint16_t)(seq - j->next); }

int kmk_jitter_put(kmk_jitter *j, uint16_t seq, const uint8_t *data, size_t len, uint64_t now_ms) {
  if (len > KMK_JITTER_MAX_PKT || (!data && len)) {
    j->late++; /* counted with the unusable ones */
    return KMK_JITTER_ETOOBIG;
  }
  if (!j->started) {
    j->started = 1;
    j->next = seq;
  }
  int d = dist(j, seq);
  if (d < 0 && d >= -KMK_JITTER_RESYNC) {
    j->late++;
    return KMK_JITTER_ELATE;
  }
  if (d < 0 || d > KMK_JITTER_RESYNC) { /* the stream restarted elsewhere */
    drop_all(j);
    j->next = seq;
    j->plc_run = 0;
    j->resyncs++;
    d = 0;
  }
  /* beyond the window: declare the oldest positions lost until it fits */
  while (d >= KMK_JITTER_SLOTS) {
    kmk_jitter_slot *s = &j->slot[j->next % KMK_JITTER_SLOTS];
    if (s->used && s->seq == j->next) { /* should not happen: pop first; drop to stay bounded */
      s->used = 0;
      j->count--;
    }
    j->next++;
    j->lost++;
    d--;
  }
  kmk_jitter_slot *s = &j->slot[seq % KMK_JITTER_SLOTS];
  if (s->used && s->seq == seq) {
    j->dup++;
    return KMK_JITTER_EDUP;
  }
  if (s->used) j->count--; /* stale occupant (cannot be reached any more) */
  s->used = 1;
  s->seq = seq;
  s->len = (uint16_t)len;
  s->arrived_ms = now_ms;
  if (len) memcpy(s->data, data, len);
  j->count++;
  j->received++;
  if (j->count > 1) {
    /* arrived while an earlier one is missing, or before a buffered later one */
    for (int k = 1; k < KMK_JITTER_SLOTS; k++) {
      const kmk_jitter_slot *o = &j->slot[(uint16_t)(seq + k) % KMK_JITTER_SLOTS];
      if (o->used && o->seq == (uint16_t)(seq + k)) {
        j->reordered++;
        break;
      }
    }
  }
  return 0;
}

static const kmk_jitter_slot *oldest(const kmk_jitter *j) {
  const kmk_jitter_slot *best = NULL;
  for (int k = 0; k < KMK_JITTER_SLOTS && j->count; k++) {
    const kmk_jitter_slot *s = &j->slot[(uint16_t)(j->next + k) % KMK_JITTER_SLOTS];
    if (s->used && s->seq == (uint16_t)(j->next + k)) {
      if (!best || s->arrived_ms < best->arrived_ms) best = s;
    }
  }
  return best;
}

int kmk_jitter_pop(kmk_jitter *j, uint64_t now_ms, const uint8_t **data, size_t *len) {
  if (!j->started || j->count == 0) {
    j->flushing = 0;
    return KMK_JITTER_NONE;
  }
  kmk_jitter_slot *s = &j->slot[j->next % KMK_JITTER_SLOTS];
  if (s->used && s->seq == j->next) {
    memcpy(j->out, s->data, s->len);
    *data = j->out;
    *len = s->len;
    s->used = 0;
    j->count--;
    j->next++;
    j->played++;
    j->plc_run = 0;
    return KMK_JITTER_PACKET;
  }
  if (j->flushing) j->plc_run = KMK_JITTER_MAX_PLC; /* gaps are skipped, not concealed */
  const kmk_jitter_slot *o = oldest(j);
  int give_up = j->flushing || j->count >= j->depth || (o && now_ms >= o->arrived_ms + j->max_wait_ms);
  if (!give_up) return KMK_JITTER_NONE;
  j->next++;
  j->lost++;
  if (j->plc_run < KMK_JITTER_MAX_PLC) {
    j->plc_run++;
    const kmk_jitter_slot *n = &j->slot[j->next % KMK_JITTER_SLOTS];
    if (n->used && n->seq == j->next && n->len) { /* the successor is here: FEC */
      memcpy(j->out, n->data, n->len);
      *data = j->out;
      *len = n->len;
      j->recoverable++;
      return KMK_JITTER_LOST_FEC;
    }
    return KMK_JITTER_LOST;
  }
  /* a long gap: skip silently to the next buffered packet */
  while (!(j->slot[j->next % KMK_JITTER_SLOTS].used &&
           j->slot[j->next % KMK_JITTER_SLOTS].seq == j->next)) {
    j->next++;
    j->lost++;
  }
  return kmk_jitter_pop(j, now_ms, data, len);
}

void kmk_jitter_flush(kmk_jitter *j) {
  if (j->count) j->flushing = 1;
}
