/* ring.h - fixed-capacity ring buffer of int16 samples.
 *
 * Overflow policy: DROP OLDEST. A write that does not fit discards the oldest samples so the
 * newest `capacity` samples are always kept; the number of discarded samples is counted in
 * `dropped`. Used for pre-roll (peek the last N samples) and as a sample FIFO.
 *
 * The struct is public so it can be embedded; the buffer is owned by the ring (init allocates,
 * free releases). Not thread-safe: one owner thread at a time.
 */
#ifndef KAMEKO_RING_H
#define KAMEKO_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int16_t *buf;     /* owned, `cap` samples */
  size_t cap;       /* capacity in samples (> 0) */
  size_t head;      /* index of the oldest sample */
  size_t len;       /* samples currently stored */
  uint64_t dropped; /* samples discarded by overflow since init/clear */
  uint64_t written; /* samples ever written since init/clear (including dropped ones) */
} kmk_ring;

/* Allocates `capacity` samples. Returns 0, KMK_AUDIO_EINVAL (capacity 0) or KMK_AUDIO_ENOMEM. */
int kmk_ring_init(kmk_ring *r, size_t capacity);
/* Releases the buffer and zeroes *r. Safe on a zeroed struct. */
void kmk_ring_free(kmk_ring *r);
/* Appends n samples, dropping the oldest on overflow. Returns how many samples were dropped. */
size_t kmk_ring_write(kmk_ring *r, const int16_t *src, size_t n);
/* Removes up to n of the oldest samples into dst (may be NULL to just discard). Returns count. */
size_t kmk_ring_read(kmk_ring *r, int16_t *dst, size_t n);
/* Copies the newest min(n, size) samples into dst, oldest first, without removing them.
 * Returns the count copied. */
size_t kmk_ring_peek_last(const kmk_ring *r, int16_t *dst, size_t n);
size_t kmk_ring_size(const kmk_ring *r);
size_t kmk_ring_capacity(const kmk_ring *r);
uint64_t kmk_ring_dropped(const kmk_ring *r);
/* Empties the ring and resets the counters; keeps the buffer. */
void kmk_ring_clear(kmk_ring *r);

#endif
