/* worker.h - one thread running blocking jobs (offline STT, TTS) in order, results back via evq.
 *
 * A provider that is not thread-safe (espeak-ng's global state, one pocketsphinx decoder) gets its
 * own worker, so its calls are serialized on one thread.
 *
 * Job lifetime: the caller allocates a struct that starts with a kmk_job, fills run/done and
 * submits it. run(job) executes on the worker thread and should poll kmk_job_cancelled(); it may
 * send intermediate messages to the loop with kmk_job_post() (delivered in order, before done).
 * done(job, cancelled) runs on the loop thread exactly once per submitted job (also for a job
 * cancelled before it started) and owns the job from then on (usually frees it).
 */
#ifndef KAMEKO_WORKER_H
#define KAMEKO_WORKER_H

#include <stdatomic.h>
#include <stddef.h>

#include "kameko/evq.h"

typedef struct kmk_worker kmk_worker;
typedef struct kmk_job kmk_job;

struct kmk_job {
  void (*run)(kmk_job *job);                /* worker thread */
  void (*done)(kmk_job *job, int cancelled); /* loop thread */
  atomic_int cancel;                         /* set by kmk_job_cancel */
  kmk_worker *worker;                        /* set on submit */
  kmk_job *next;                             /* worker-private */
};

/* Loop thread. max_jobs bounds the waiting jobs (submit fails with -EAGAIN past it). */
kmk_worker *kmk_worker_new(kmk_evq *q, const char *name, size_t max_jobs);
/* Loop thread. 0, -EAGAIN when full, -EPIPE when stopping. On failure done is not called. */
int kmk_worker_submit(kmk_worker *w, kmk_job *job);
/* Loop thread. Asks the job to stop; its done still comes, with cancelled = 1. */
void kmk_job_cancel(kmk_job *job);
/* Worker thread. */
static inline int kmk_job_cancelled(kmk_job *job) { return atomic_load(&job->cancel) != 0; }
/* Worker thread: runs fn(ud, msg) on the loop thread, in order with the job's done. */
int kmk_job_post(kmk_job *job, kmk_evq_fn fn, void *ud, void *msg);
/* Loop thread: number of jobs submitted whose done has not run yet. */
size_t kmk_worker_busy(const kmk_worker *w);
/* Loop thread: cancels every job, joins the thread, delivers the remaining done callbacks
   (by draining the evq), frees the worker. Call before closing the evq. */
void kmk_worker_free(kmk_worker *w);

#endif
