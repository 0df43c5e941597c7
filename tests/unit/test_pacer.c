/* test_pacer.c - pacer logic on simulated clocks (due counts, no drift over 10,000 frames,
 * far-behind skip policy) and a ~1 s sanity run of the libuv driver (loose bounds only). */
#include <stdlib.h>
#include <uv.h>

#include "check.h"
#include "kameko/pacer.h"

#define MS 1000000ull

static void test_due_counts(void) {
  kmk_pacer p;
  kmk_pacer_init(&p, 1000 * MS, 0, 0);
  CHECK_EQ_INT(p.period_ns, 20 * MS);
  CHECK_EQ_INT(kmk_pacer_due(&p, 999 * MS), 0);        /* early */
  CHECK_EQ_INT(kmk_pacer_wait_ns(&p, 999 * MS), 1 * MS);
  CHECK_EQ_INT(kmk_pacer_due(&p, 1000 * MS), 1);       /* frame 0 exactly on time */
  CHECK_EQ_INT(kmk_pacer_due(&p, 1000 * MS), 0);       /* consumed */
  CHECK_EQ_INT(kmk_pacer_due(&p, 1019 * MS), 0);
  CHECK_EQ_INT(kmk_pacer_due(&p, 1020 * MS), 1);
  CHECK_EQ_INT(kmk_pacer_due(&p, 1075 * MS), 2);       /* 1040, 1060 */
  CHECK_EQ_INT(kmk_pacer_next_deadline(&p), 1080 * MS);
  CHECK_EQ_INT(kmk_pacer_wait_ns(&p, 1075 * MS), 5 * MS);
  CHECK_EQ_INT(kmk_pacer_due(&p, 1139 * MS), 3);       /* 1080, 1100, 1120: 59 ms late, within policy */
  CHECK_EQ_INT(p.skipped, 0);
}

static void test_no_drift(void) {
  /* Wake-ups that are always 0.7 ms late and sometimes 15 ms late: after 10,000 frames the frame
   * count is exact and the next deadline is exactly start + 10000 * 20 ms. */
  kmk_pacer p;
  const uint64_t start = 5 * MS;
  kmk_pacer_init(&p, start, 20 * MS, 100 * MS);
  uint64_t total = 0;
  unsigned seed = 7;
  while (total < 10000) {
    uint64_t now = kmk_pacer_next_deadline(&p) + 700000;
    seed = seed * 1103515245u + 12345u;
    if ((seed >> 16) % 10 == 0) now += 15 * MS;
    total += kmk_pacer_due(&p, now);
  }
  /* the last wake-up may have consumed one frame beyond 10,000 */
  CHECK(total == 10000 || total == 10001);
  CHECK_EQ_INT(kmk_pacer_next_deadline(&p), start + total * 20 * MS);
  CHECK_EQ_INT(p.skipped, 0);
}

static void test_far_behind_skips(void) {
  kmk_pacer p;
  kmk_pacer_init(&p, 0, 20 * MS, 100 * MS);
  CHECK_EQ_INT(kmk_pacer_due(&p, 0), 1);
  /* a 1 s stall: deadlines 20..1000 ms are due; only those within 100 ms (900..1000) are sent */
  uint64_t due = kmk_pacer_due(&p, 1000 * MS);
  CHECK_EQ_INT(due, 6);
  CHECK_EQ_INT(p.skipped, 44);
  CHECK_EQ_INT(due + p.skipped, 50); /* nothing lost from the accounting */
  CHECK_EQ_INT(kmk_pacer_next_deadline(&p), 1020 * MS);
  /* back on schedule afterwards */
  CHECK_EQ_INT(kmk_pacer_due(&p, 1020 * MS), 1);
  CHECK_EQ_INT(p.skipped, 44);
}

typedef struct {
  uint64_t frames, calls, t0;
  int stop_at;
  int closed;
} run_state;

static void on_tick(kmk_pacer_uv *pu, uint64_t due, void *ud) {
  run_state *s = ud;
  s->frames += due;
  s->calls++;
  if (s->frames >= (uint64_t)s->stop_at) kmk_pacer_uv_stop(pu, NULL);
}

static void on_closed(kmk_pacer_uv *pu, void *ud) {
  (void)pu;
  ((run_state *)ud)->closed = 1;
}

static void walk_cb(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) (*(int *)arg)++;
}

static void test_uv_driver(void) {
  uv_loop_t loop;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  kmk_pacer_uv *pu = malloc(sizeof *pu); /* heap: handles never move */
  run_state s = {0, 0, uv_hrtime(), 50, 0};
  CHECK_EQ_INT(kmk_pacer_uv_start(&loop, pu, on_tick, &s), 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the timer is closed by on_tick */
  uint64_t wall = uv_hrtime() - s.t0;
  CHECK_EQ_INT(s.frames, 50);
  CHECK_EQ_INT(pu->running, 0);
  double mean_late = pu->wakeups ? (double)pu->late_sum_ns / (double)pu->wakeups / 1e6 : 0;
  fprintf(stderr, "uv pacer: 50 frames in %.1f ms, %llu wake-ups, late mean %.3f ms max %.3f ms, skipped %llu\n",
          wall / 1e6, (unsigned long long)pu->wakeups, mean_late, pu->late_max_ns / 1e6,
          (unsigned long long)pu->pacer.skipped);
  /* loose sanity bounds only: a loaded CI machine may be slow, never early */
  CHECK(wall >= 990 * MS);
  CHECK(wall < 10000 * MS);
  CHECK(mean_late < 50.0);
  int live = 0;
  uv_walk(&loop, walk_cb, &live);
  CHECK_EQ_INT(live, 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  free(pu);
}

static void test_uv_stop_with_close_cb(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_pacer_uv *pu = malloc(sizeof *pu);
  run_state s = {0};
  s.stop_at = 1000000;
  CHECK_EQ_INT(kmk_pacer_uv_start_period(&loop, pu, 5 * MS, on_tick, &s), 0);
  uv_run(&loop, UV_RUN_ONCE);
  kmk_pacer_uv_stop(pu, on_closed);
  kmk_pacer_uv_stop(pu, on_closed); /* second stop is a no-op */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(s.closed, 1);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  free(pu);
  CHECK_EQ_INT(kmk_pacer_uv_start(&loop, NULL, on_tick, &s), UV_EINVAL);
}

int main(void) {
  RUN(test_due_counts);
  RUN(test_no_drift);
  RUN(test_far_behind_skips);
  RUN(test_uv_driver);
  RUN(test_uv_stop_with_close_cb);
  return check_done();
}
