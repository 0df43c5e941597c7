/* test_ring.c - kmk_ring: FIFO order, drop-oldest overflow accounting, peek-last for pre-roll. */
#include "check.h"
#include "kameko/audio.h"
#include "kameko/ring.h"

static void test_fifo(void) {
  kmk_ring r;
  CHECK_EQ_INT(kmk_ring_init(&r, 8), 0);
  int16_t a[5] = {1, 2, 3, 4, 5}, b[8];
  CHECK_EQ_INT(kmk_ring_write(&r, a, 5), 0);
  CHECK_EQ_INT(kmk_ring_size(&r), 5);
  CHECK_EQ_INT(kmk_ring_read(&r, b, 3), 3);
  CHECK_EQ_INT(b[0], 1);
  CHECK_EQ_INT(b[2], 3);
  CHECK_EQ_INT(kmk_ring_write(&r, a, 5), 0); /* wraps: 4 5 1 2 3 4 5 */
  CHECK_EQ_INT(kmk_ring_size(&r), 7);
  CHECK_EQ_INT(kmk_ring_read(&r, b, 8), 7);
  int16_t want[7] = {4, 5, 1, 2, 3, 4, 5};
  for (int i = 0; i < 7; i++) CHECK_EQ_INT(b[i], want[i]);
  CHECK_EQ_INT(kmk_ring_read(&r, b, 8), 0);
  kmk_ring_free(&r);
  CHECK(r.buf == NULL);
  CHECK_EQ_INT(kmk_ring_init(&r, 0), KMK_AUDIO_EINVAL);
}

static void test_overflow_drops_oldest(void) {
  kmk_ring r;
  kmk_ring_init(&r, 10);
  int16_t s[25], b[10];
  for (int i = 0; i < 25; i++) s[i] = (int16_t)i;
  CHECK_EQ_INT(kmk_ring_write(&r, s, 7), 0);
  CHECK_EQ_INT(kmk_ring_write(&r, s + 7, 6), 3); /* 13 written, cap 10: 0,1,2 dropped */
  CHECK_EQ_INT(kmk_ring_dropped(&r), 3);
  CHECK_EQ_INT(kmk_ring_read(&r, b, 1), 1);
  CHECK_EQ_INT(b[0], 3);
  /* A write larger than the capacity keeps only the newest cap samples. */
  CHECK_EQ_INT(kmk_ring_write(&r, s, 25), 9 + 15);
  CHECK_EQ_INT(kmk_ring_dropped(&r), 3 + 24);
  CHECK_EQ_INT(kmk_ring_size(&r), 10);
  CHECK_EQ_INT(kmk_ring_read(&r, b, 10), 10);
  for (int i = 0; i < 10; i++) CHECK_EQ_INT(b[i], 15 + i);
  kmk_ring_clear(&r);
  CHECK_EQ_INT(kmk_ring_dropped(&r), 0);
  CHECK_EQ_INT(kmk_ring_size(&r), 0);
  kmk_ring_free(&r);
}

static void test_peek_last(void) {
  kmk_ring r;
  kmk_ring_init(&r, 6);
  int16_t s[20], b[6];
  for (int i = 0; i < 20; i++) s[i] = (int16_t)(100 + i);
  for (int i = 0; i < 20; i += 3) kmk_ring_write(&r, s + i, i + 3 <= 20 ? 3 : 20 - i);
  CHECK_EQ_INT(kmk_ring_peek_last(&r, b, 4), 4);
  for (int i = 0; i < 4; i++) CHECK_EQ_INT(b[i], 116 + i);
  CHECK_EQ_INT(kmk_ring_peek_last(&r, b, 100), 6); /* clamps to size, does not consume */
  CHECK_EQ_INT(b[0], 114);
  CHECK_EQ_INT(kmk_ring_size(&r), 6);
  kmk_ring_free(&r);
}

int main(void) {
  RUN(test_fifo);
  RUN(test_overflow_drops_oldest);
  RUN(test_peek_last);
  return check_done();
}
