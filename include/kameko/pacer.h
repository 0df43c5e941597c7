/* pacer.h - a drift-free frame pacer (pure logic) and a small libuv driver for it.
 *
 * Logic: deadlines are absolute, deadline_k = start + k * period, so rounding or late wake-ups
 * never accumulate drift. kmk_pacer_due(p, now) returns how many frames are due at `now` and
 * consumes them. Far-behind policy: a deadline more than max_late_ns in the past is SKIPPED
 * (counted in p->skipped, never sent), so after a stall of S ns the caller sends at most
 * max_late_ns / period + 1 frames in a burst instead of S / period (default max_late 100 ms: at
 * most 6 frames of 20 ms). Time is whatever clock the caller passes (ns, monotonic).
 *
 * Driver: kmk_pacer_uv_start arms a uv_timer for the remaining time to the next deadline
 * (uv_hrtime clock) and calls cb(pu, frames_due, ud) each time frames are due, then re-arms.
 * Ownership: the kmk_pacer_uv struct is caller-owned, must not move and must stay alive until the
 * close callback passed to kmk_pacer_uv_stop has run (uv_close). handle->data points at it.
 *
 * Thread: the logic is pure (any thread, one owner); the driver runs on its loop's thread only.
 */
#ifndef KAMEKO_PACER_H
#define KAMEKO_PACER_H

#include <stdint.h>
#include <uv.h>

#define KMK_PACER_PERIOD_NS 20000000ull    /* 20 ms */
#define KMK_PACER_MAX_LATE_NS 100000000ull /* 100 ms */

typedef struct {
  uint64_t start_ns;    /* deadline of frame 0 */
  uint64_t period_ns;
  uint64_t max_late_ns; /* deadlines older than this are skipped */
  uint64_t next;        /* index of the next frame not yet due/consumed */
  uint64_t skipped;     /* frames skipped by the far-behind policy */
} kmk_pacer;

/* period_ns 0 = 20 ms; max_late_ns 0 = 100 ms. Frame 0 is due at start_ns. */
void kmk_pacer_init(kmk_pacer *p, uint64_t start_ns, uint64_t period_ns, uint64_t max_late_ns);
/* Frames due at now_ns (consumed by this call; 0 when early). */
uint64_t kmk_pacer_due(kmk_pacer *p, uint64_t now_ns);
/* Absolute deadline of the next frame. */
uint64_t kmk_pacer_next_deadline(const kmk_pacer *p);
/* ns from now_ns to the next deadline (0 when already due). */
uint64_t kmk_pacer_wait_ns(const kmk_pacer *p, uint64_t now_ns);

typedef struct kmk_pacer_uv kmk_pacer_uv;
typedef void (*kmk_pacer_uv_cb)(kmk_pacer_uv *pu, uint64_t frames_due, void *ud);
typedef void (*kmk_pacer_uv_close_cb)(kmk_pacer_uv *pu, void *ud);

struct kmk_pacer_uv {
  uv_timer_t timer; /* timer.data == this */
  kmk_pacer pacer;
  kmk_pacer_uv_cb cb;
  kmk_pacer_uv_close_cb on_closed;
  void *ud;
  int running;      /* 1 between start and stop */
  /* wake-up statistics: lateness of the first due deadline at each callback */
  uint64_t wakeups;
  uint64_t late_max_ns;
  uint64_t late_sum_ns;
};

/* Starts pacing 20 ms frames, frame 0 due one period from now. Returns 0 or a negative libuv
 * error; a failed start calls nothing and needs no stop. */
int kmk_pacer_uv_start(uv_loop_t *loop, kmk_pacer_uv *pu, kmk_pacer_uv_cb cb, void *ud);
/* Same with another period (0 = 20 ms). */
int kmk_pacer_uv_start_period(uv_loop_t *loop, kmk_pacer_uv *pu, uint64_t period_ns,
                              kmk_pacer_uv_cb cb, void *ud);
/* Stops and uv_closes the timer; on_closed(pu, ud) (may be NULL) runs from the loop once the
 * handle is closed, after which pu may be freed. Safe to call from inside the tick callback. */
void kmk_pacer_uv_stop(kmk_pacer_uv *pu, kmk_pacer_uv_close_cb on_closed);

#endif
