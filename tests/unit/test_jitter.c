/* test_jitter.c - the per-SSRC jitter buffer on a simulated clock: in-order play, reordering
 * within the depth, loss declared after `depth` packets or max_wait, a loss with its successor
 * buffered reported as recoverable (FEC) with the successor's bytes, late and duplicate packets
 * dropped, sequence wrap-around, resync after a jump, bounded concealment, flush. */
#include <string.h>

#include "check.h"
#include "kameko/jitter.h"

static kmk_jitter J;

static int put(uint16_t seq, uint64_t t) {
  uint8_t b[2] = {(uint8_t)(seq >> 8), (uint8_t)seq};
  return kmk_jitter_put(&J, seq, b, 2, t);
}
static int g_fec_seq; /* the successor handed out with the last LOST_FEC */
/* pops one: returns seq of a packet, -1 for LOST, -4 for LOST_FEC, -2 for NONE */
static int pop(uint64_t t) {
  const uint8_t *d;
  size_t l;
  int r = kmk_jitter_pop(&J, t, &d, &l);
  if (r == KMK_JITTER_PACKET) return l == 2 ? (d[0] << 8 | d[1]) : -3;
  if (r == KMK_JITTER_LOST_FEC) {
    g_fec_seq = l == 2 ? (d[0] << 8 | d[1]) : -3;
    return -4;
  }
  return r == KMK_JITTER_LOST ? -1 : -2;
}

static void test_in_order(void) {
  kmk_jitter_init(&J, 0, 0);
  for (int i = 0; i < 10; i++) {
    CHECK_EQ_INT(put((uint16_t)(100 + i), (uint64_t)i * 20), 0);
    CHECK_EQ_INT(pop((uint64_t)i * 20), 100 + i);
    CHECK_EQ_INT(pop((uint64_t)i * 20), -2);
  }
  CHECK_EQ_INT(J.played, 10);
  CHECK_EQ_INT(J.lost, 0);
}

static void test_reorder(void) {
  kmk_jitter_init(&J, 3, 60);
  put(1, 0);
  CHECK_EQ_INT(pop(0), 1);
  put(3, 20); /* 2 is late */
  CHECK_EQ_INT(pop(20), -2);
  put(2, 25);
  CHECK_EQ_INT(pop(25), 2);
  CHECK_EQ_INT(pop(25), 3);
  CHECK_EQ_INT(pop(25), -2);
  CHECK_EQ_INT(J.lost, 0);
  CHECK_EQ_INT(J.reordered, 1);
  /* duplicate and late */
  CHECK_EQ_INT(put(3, 30), KMK_JITTER_ELATE);
  put(5, 40);
  CHECK_EQ_INT(put(5, 41), KMK_JITTER_EDUP);
  CHECK_EQ_INT(J.late, 1);
  CHECK_EQ_INT(J.dup, 1);
}

static void test_loss_by_depth_and_time(void) {
  kmk_jitter_init(&J, 3, 60);
  put(10, 0);
  CHECK_EQ_INT(pop(0), 10);
  /* 11 lost; 12, 13 arrive: wait */
  put(12, 40);
  put(13, 60);
  CHECK_EQ_INT(pop(60), -2);
  put(14, 80); /* 3 buffered past the gap: 11 is declared lost, 12 (here) can recover it */
  CHECK_EQ_INT(pop(80), -4);
  CHECK_EQ_INT(g_fec_seq, 12);
  CHECK_EQ_INT(pop(80), 12);
  CHECK_EQ_INT(pop(80), 13);
  CHECK_EQ_INT(pop(80), 14);
  /* by time: 15 lost, 16 waits max_wait */
  put(16, 100);
  CHECK_EQ_INT(pop(159), -2);
  CHECK_EQ_INT(pop(160), -4);
  CHECK_EQ_INT(g_fec_seq, 16);
  CHECK_EQ_INT(pop(160), 16);
  CHECK_EQ_INT(J.lost, 2);
  CHECK_EQ_INT(J.recoverable, 2);
  CHECK_EQ_INT(J.played, 5);
}

/* Which losses are recoverable: only one whose successor is buffered. A burst of 3 is PLC, PLC,
 * then FEC from the packet after it; the successor is still played afterwards, unchanged. */
static void test_loss_recoverable(void) {
  kmk_jitter_init(&J, 3, 60);
  put(20, 0);
  CHECK_EQ_INT(pop(0), 20);
  /* 21, 22, 23 lost; 24, 25, 26 arrive */
  put(24, 20);
  put(25, 40);
  put(26, 60);
  CHECK_EQ_INT(pop(60), -1); /* 21: its successor 22 is missing too */
  CHECK_EQ_INT(pop(60), -1); /* 22 */
  CHECK_EQ_INT(pop(60), -4); /* 23: 24 carries its FEC */
  CHECK_EQ_INT(g_fec_seq, 24);
  CHECK_EQ_INT(pop(60), 24);
  CHECK_EQ_INT(pop(60), 25);
  CHECK_EQ_INT(pop(60), 26);
  CHECK_EQ_INT(J.lost, 3);
  CHECK_EQ_INT(J.recoverable, 1);
  CHECK_EQ_INT(J.played, 4);
  /* a loss declared by time with nothing after the gap's successor position: 27 lost, 29 only */
  put(29, 100);
  CHECK_EQ_INT(pop(160), -1); /* 27: 28 is not here */
  CHECK_EQ_INT(pop(160), -4); /* 28: 29 is */
  CHECK_EQ_INT(g_fec_seq, 29);
  CHECK_EQ_INT(pop(160), 29);
  CHECK_EQ_INT(J.recoverable, 2);
  /* the successor's bytes are handed out whole (a real Opus packet, not the 2-byte tag) */
  uint8_t pkt[300];
  for (int i = 0; i < 300; i++) pkt[i] = (uint8_t)(i * 13 + 1);
  CHECK_EQ_INT(kmk_jitter_put(&J, 31, pkt, sizeof pkt, 200), 0);
  const uint8_t *d;
  size_t l;
  CHECK_EQ_INT(kmk_jitter_pop(&J, 260, &d, &l), KMK_JITTER_LOST_FEC); /* 30 */
  CHECK_EQ_INT((int)l, 300);
  CHECK(memcmp(d, pkt, 300) == 0);
  CHECK_EQ_INT(kmk_jitter_pop(&J, 260, &d, &l), KMK_JITTER_PACKET); /* 31 */
  CHECK_EQ_INT((int)l, 300);
  CHECK(memcmp(d, pkt, 300) == 0);
  CHECK_EQ_INT(kmk_jitter_pop(&J, 260, &d, &l), KMK_JITTER_NONE);
}

static void test_wrap_and_resync(void) {
  kmk_jitter_init(&J, 3, 60);
  put(65534, 0);
  put(0, 1);
  put(65535, 2);
  CHECK_EQ_INT(pop(2), 65534);
  CHECK_EQ_INT(pop(2), 65535);
  CHECK_EQ_INT(pop(2), 0);
  /* a jump of 1000: resync, no concealment storm */
  put(1000, 10);
  CHECK_EQ_INT(pop(10), 1000);
  CHECK_EQ_INT(J.resyncs, 1);
  /* a 40-packet gap within range: at most MAX_PLC losses reported, then the next packet */
  put(1041, 20);
  put(1042, 20);
  put(1043, 20);
  int losses = 0, r;
  while ((r = pop(20)) == -1) losses++;
  CHECK_EQ_INT(losses, KMK_JITTER_MAX_PLC);
  CHECK_EQ_INT(r, 1041);
  CHECK_EQ_INT(J.lost, 40);
}

static void test_bounded_and_flush(void) {
  kmk_jitter_init(&J, 3, 60);
  put(0, 0);
  CHECK_EQ_INT(pop(0), 0);
  /* nobody pops; 1 lost; 2..40 arrive: the buffer stays within its slots */
  for (uint16_t s = 2; s <= 40; s++) put(s, 0);
  CHECK(kmk_jitter_buffered(&J) <= KMK_JITTER_SLOTS);
  int n = 0, last = -1, r;
  while ((r = pop(0)) != -2) {
    if (r >= 0) {
      CHECK(r > last);
      last = r;
    }
    n++;
  }
  CHECK_EQ_INT(last, 40);
  CHECK(n < 40);
  /* flush: a tail with a hole plays without waiting and without concealment */
  put(42, 100);
  put(44, 100);
  CHECK_EQ_INT(pop(100), -2);
  kmk_jitter_flush(&J);
  CHECK_EQ_INT(pop(100), 42);
  CHECK_EQ_INT(pop(100), 44);
  CHECK_EQ_INT(pop(100), -2);
  uint8_t big[KMK_JITTER_MAX_PKT + 1] = {0};
  CHECK_EQ_INT(kmk_jitter_put(&J, 45, big, sizeof big, 0), KMK_JITTER_ETOOBIG);
}

int main(void) {
  RUN(test_in_order);
  RUN(test_reorder);
  RUN(test_loss_by_depth_and_time);
  RUN(test_loss_recoverable);
  RUN(test_wrap_and_resync);
  RUN(test_bounded_and_flush);
  return check_done();
}
