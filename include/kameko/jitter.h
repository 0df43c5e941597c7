/* jitter.h - per-SSRC jitter buffer for 20 ms Opus packets (pure logic, no I/O, no heap).
 *
 * Packets go in by RTP sequence number (any order); they come out in sequence order. A missing
 * packet is declared lost when
 *   - `depth` later packets are already buffered (default 3 = 60 ms), or
 *   - the oldest buffered packet has waited more than max_wait_ms (default 60 ms).
 * A loss whose successor is already buffered is reported as KMK_JITTER_LOST_FEC with the successor
 * in data/len (Opus in-band FEC recovers the lost frame from it; the successor itself is popped
 * next as a normal PACKET); any other loss (no successor yet, or the 1st..(k-1)th of a burst of k)
 * is KMK_JITTER_LOST (conceal with PLC).
 * Packets older than the play position (late or duplicates) are dropped and counted. A jump of
 * more than KMK_JITTER_RESYNC sequence numbers (a stream restarted) resynchronises instead of
 * concealing hundreds of frames; at most KMK_JITTER_MAX_PLC losses are reported per gap.
 * Bounded: KMK_JITTER_SLOTS packets of at most KMK_JITTER_MAX_PKT bytes; a packet that would not
 * fit forces the oldest gap to be declared lost first.
 *
 * Time is whatever millisecond clock the caller passes. One owner thread.
 */
#ifndef KAMEKO_JITTER_H
#define KAMEKO_JITTER_H

#include <stddef.h>
#include <stdint.h>

#define KMK_JITTER_SLOTS 16
#define KMK_JITTER_MAX_PKT 1276
#define KMK_JITTER_RESYNC 250
#define KMK_JITTER_MAX_PLC 5

enum {
  KMK_JITTER_NONE = 0,   /* nothing to play yet */
  KMK_JITTER_PACKET = 1, /* data and len hold the next packet */
  KMK_JITTER_LOST = 2,   /* the next packet is lost: conceal one frame (PLC) */
  KMK_JITTER_LOST_FEC = 3, /* the next packet is lost; data/len hold its buffered successor,
                              whose FEC recovers it (the successor still comes next as PACKET) */
};
enum { KMK_JITTER_ELATE = -1, KMK_JITTER_EDUP = -2, KMK_JITTER_ETOOBIG = -3 };

typedef struct {
  int used;
  uint16_t seq;
  uint16_t len;
  uint64_t arrived_ms;
  uint8_t data[KMK_JITTER_MAX_PKT];
} kmk_jitter_slot;

typedef struct {
  kmk_jitter_slot slot[KMK_JITTER_SLOTS]; /* indexed by seq % SLOTS */
  int started;
  uint16_t next;      /* next sequence number to play */
  int count;          /* packets buffered */
  int depth;          /* packets ahead of a gap before it is declared lost */
  uint64_t max_wait_ms;
  int plc_run;        /* losses reported in the current gap */
  int flushing;       /* kmk_jitter_flush: play out without waiting */
  uint8_t out[KMK_JITTER_MAX_PKT]; /* the packet handed out by the last pop */
  /* counters */
  uint64_t received, played, lost, late, dup, resyncs, reordered;
  uint64_t recoverable; /* losses reported as KMK_JITTER_LOST_FEC (a subset of lost) */
} kmk_jitter;

/* depth 0 = 3 packets; max_wait_ms 0 = 60. */
void kmk_jitter_init(kmk_jitter *j, int depth, uint64_t max_wait_ms);
/* Stores one packet. 0, or KMK_JITTER_ELATE / EDUP / ETOOBIG (dropped, counted). */
int kmk_jitter_put(kmk_jitter *j, uint16_t seq, const uint8_t *data, size_t len, uint64_t now_ms);
/* Next thing to play at now_ms: KMK_JITTER_PACKET (data/len valid until the next call),
 * KMK_JITTER_LOST_FEC (data/len: the successor, valid until the next call), KMK_JITTER_LOST, or
 * KMK_JITTER_NONE. Call until NONE. A caller that ignores FEC may treat LOST_FEC as LOST. */
int kmk_jitter_pop(kmk_jitter *j, uint64_t now_ms, const uint8_t **data, size_t *len);
/* End of stream: everything buffered is playable without waiting (gaps are skipped, not
 * concealed). Pop until NONE afterwards. */
void kmk_jitter_flush(kmk_jitter *j);
/* Packets buffered. */
int kmk_jitter_buffered(const kmk_jitter *j);

#endif
