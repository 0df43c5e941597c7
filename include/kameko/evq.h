/* evq.h - the one way other threads talk to the loop: a bounded FIFO of (fn, msg) drained on uv_async.
 *
 * Workers call kmk_evq_post(); the loop thread runs fn(ud, msg) for every queued item on each
 * wake-up (the whole queue is drained per wake-up). Overflow policy: post() BLOCKS the posting
 * worker until there is room (back-pressure; nothing is dropped), so it must never be called from
 * the loop thread. After kmk_evq_close() begins, post() fails with -EPIPE and the message stays the
 * caller's. fn owns msg.
 */
#ifndef KAMEKO_EVQ_H
#define KAMEKO_EVQ_H

#include <stddef.h>
#include <uv.h>

typedef struct kmk_evq kmk_evq;
typedef void (*kmk_evq_fn)(void *ud, void *msg);

/* Loop thread. capacity > 0. Returns NULL on failure. */
kmk_evq *kmk_evq_new(uv_loop_t *loop, size_t capacity);
/* Any worker thread. 0, or -EPIPE once closing. */
int kmk_evq_post(kmk_evq *q, kmk_evq_fn fn, void *ud, void *msg);
/* Loop thread: runs everything queued now (also done by the async callback). */
void kmk_evq_drain(kmk_evq *q);
/* Loop thread: number of items waiting. */
size_t kmk_evq_pending(kmk_evq *q);
/* Loop thread: refuses new posts, runs what is queued, closes the async handle; the queue is
   freed in the close callback. */
void kmk_evq_close(kmk_evq *q);

#endif
