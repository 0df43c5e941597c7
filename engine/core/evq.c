/* evq.c - bounded worker->loop message queue on uv_async. Owns its uv_async_t (heap, never moves).
 * Thread: kmk_evq_post from workers; everything else on the loop thread.
 */
#include "kameko/evq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct {
  kmk_evq_fn fn;
  void *ud;
  void *msg;
} evq_item;

struct kmk_evq {
  uv_async_t async; /* first: the handle's data points back at us */
  pthread_mutex_t mu;
  pthread_cond_t room;
  evq_item *items;
  size_t cap, head, len;
  int closing;
};

static void on_async(uv_async_t *h) { kmk_evq_drain(h->data); }

kmk_evq *kmk_evq_new(uv_loop_t *loop, size_t capacity) {
  if (capacity == 0) return NULL;
  kmk_evq *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->items = calloc(capacity, sizeof *q->items);
  if (!q->items || uv_async_init(loop, &q->async, on_async) != 0) {
    free(q->items);
    free(q);
    return NULL;
  }
  q->async.data = q;
  q->cap = capacity;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->room, NULL);
  return q;
}

int kmk_evq_post(kmk_evq *q, kmk_evq_fn fn, void *ud, void *msg) {
  pthread_mutex_lock(&q->mu);
  while (q->len == q->cap && !q->closing) pthread_cond_wait(&q->room, &q->mu);
  if (q->closing) {
    pthread_mutex_unlock(&q->mu);
    return -EPIPE;
  }
  q->items[(q->head + q->len) % q->cap] = (evq_item){fn, ud, msg};
  q->len++;
  pthread_mutex_unlock(&q->mu);
  uv_async_send(&q->async);
  return 0;
}

void kmk_evq_drain(kmk_evq *q) {
  for (;;) {
    pthread_mutex_lock(&q->mu);
    if (q->len == 0) {
      pthread_mutex_unlock(&q->mu);
      return;
    }
    evq_item it = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    pthread_cond_signal(&q->room);
    pthread_mutex_unlock(&q->mu);
    it.fn(it.ud, it.msg);
  }
}

size_t kmk_evq_pending(kmk_evq *q) {
  pthread_mutex_lock(&q->mu);
  size_t n = q->len;
  pthread_mutex_unlock(&q->mu);
  return n;
}

static void on_closed(uv_handle_t *h) {
  kmk_evq *q = h->data;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->room);
  free(q->items);
  free(q);
}

void kmk_evq_close(kmk_evq *q) {
  pthread_mutex_lock(&q->mu);
  q->closing = 1;
  pthread_cond_broadcast(&q->room);
  pthread_mutex_unlock(&q->mu);
  kmk_evq_drain(q);
  uv_close((uv_handle_t *)&q->async, on_closed);
}
