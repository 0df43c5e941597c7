/* pacer.c - drift-free frame pacing (pure logic) and its libuv timer driver.
 *
 * Owns: nothing on the heap. The driver owns one uv_timer_t inside the caller's kmk_pacer_uv
 * (closed by kmk_pacer_uv_stop). Thread: logic any (one owner); driver: its loop thread only.
 */
#include "kameko/pacer.h"

#include <string.h>

#include "kameko/audio.h"

void kmk_pacer_init(kmk_pacer *p, uint64_t start_ns, uint64_t period_ns, uint64_t max_late_ns) {
  memset(p, 0, sizeof *p);
  p->start_ns = start_ns;
  p->period_ns = period_ns ? period_ns : KMK_PACER_PERIOD_NS;
  p->max_late_ns = max_late_ns ? max_late_ns : KMK_PACER_MAX_LATE_NS;
}

uint64_t kmk_pacer_next_deadline(const kmk_pacer *p) { return p->start_ns + p->next * p->period_ns; }

uint64_t kmk_pacer_due(kmk_pacer *p, uint64_t now_ns) {
  if (now_ns < kmk_pacer_next_deadline(p)) return 0;
  uint64_t last = (now_ns - p->start_ns) / p->period_ns; /* newest deadline <= now */
  /* oldest deadline still within max_late of now */
  uint64_t oldest_ok = 0;
  if (now_ns - p->start_ns > p->max_late_ns)
    oldest_ok = (now_ns - p->start_ns - p->max_late_ns + p->period_ns - 1) / p->period_ns;
  if (p->next < oldest_ok) {
    p->skipped += oldest_ok - p->next;
    p->next = oldest_ok;
  }
  uint64_t due = last + 1 - p->next;
  p->next = last + 1;
  return due;
}

uint64_t kmk_pacer_wait_ns(const kmk_pacer *p, uint64_t now_ns) {
  uint64_t d = kmk_pacer_next_deadline(p);
  return d > now_ns ? d - now_ns : 0;
}

/* ---- libuv driver ---------------------------------------------------------------------------- */

static void arm(kmk_pacer_uv *pu);

static void on_timer(uv_timer_t *t) {
  kmk_pacer_uv *pu = t->data;
  uint64_t now = uv_hrtime();
  uint64_t deadline = kmk_pacer_next_deadline(&pu->pacer);
  uint64_t due = kmk_pacer_due(&pu->pacer, now);
  if (due) {
    uint64_t late = now - deadline;
    pu->wakeups++;
    pu->late_sum_ns += late;
    if (late > pu->late_max_ns) pu->late_max_ns = late;
    pu->cb(pu, due, pu->ud);
  }
  if (pu->running) arm(pu);
}

static void arm(kmk_pacer_uv *pu) {
  /* uv timers have ms resolution and fire at or after the timeout: round up so we are never
   * early by more than the loop's clock granularity; the absolute deadline keeps us drift-free. */
  uint64_t wait = kmk_pacer_wait_ns(&pu->pacer, uv_hrtime());
  uint64_t ms = (wait + 999999) / 1000000;
  uv_update_time(pu->timer.loop);
  uv_timer_start(&pu->timer, on_timer, ms, 0);
}

int kmk_pacer_uv_start(uv_loop_t *loop, kmk_pacer_uv *pu, kmk_pacer_uv_cb cb, void *ud) {
  return kmk_pacer_uv_start_period(loop, pu, 0, cb, ud);
}

int kmk_pacer_uv_start_period(uv_loop_t *loop, kmk_pacer_uv *pu, uint64_t period_ns,
                              kmk_pacer_uv_cb cb, void *ud) {
  if (!loop || !pu || !cb) return UV_EINVAL;
  memset(pu, 0, sizeof *pu);
  int rc = uv_timer_init(loop, &pu->timer);
  if (rc < 0) return rc;
  pu->timer.data = pu;
  pu->cb = cb;
  pu->ud = ud;
  if (!period_ns) period_ns = KMK_PACER_PERIOD_NS;
  kmk_pacer_init(&pu->pacer, uv_hrtime() + period_ns, period_ns, 0);
  pu->running = 1;
  arm(pu);
  return 0;
}

static void on_close(uv_handle_t *h) {
  kmk_pacer_uv *pu = h->data;
  if (pu->on_closed) pu->on_closed(pu, pu->ud);
}

void kmk_pacer_uv_stop(kmk_pacer_uv *pu, kmk_pacer_uv_close_cb on_closed) {
  if (!pu || !pu->running) return;
  pu->running = 0;
  pu->on_closed = on_closed;
  uv_timer_stop(&pu->timer);
  uv_close((uv_handle_t *)&pu->timer, on_close);
}
