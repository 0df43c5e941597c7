/* worker.c - a thread with a FIFO of blocking jobs; completions go to the loop through the evq.
 * Thread: submit/cancel/free/busy on the loop thread; the job's run and post on the worker thread.
 */
#include "kameko/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kameko/log.h"

struct kmk_worker {
  kmk_evq *q;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  kmk_job *head, *tail, *running;
  size_t waiting, max_jobs;
  size_t busy; /* loop-thread count: submitted, done not yet run */
  int stopping;
  char name[32];
};

static void deliver_done(void *ud, void *msg) {
  kmk_worker *w = ud;
  kmk_job *job = msg;
  w->busy--;
  job->done(job, kmk_job_cancelled(job));
}

static void *worker_main(void *arg) {
  kmk_worker *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stopping) pthread_cond_wait(&w->cv, &w->mu);
    kmk_job *job = w->head;
    if (!job) { /* stopping and empty */
      pthread_mutex_unlock(&w->mu);
      return NULL;
    }
    w->head = job->next;
    if (!w->head) w->tail = NULL;
    w->waiting--;
    w->running = job;
    pthread_mutex_unlock(&w->mu);

    if (!kmk_job_cancelled(job)) job->run(job);

    pthread_mutex_lock(&w->mu);
    w->running = NULL;
    pthread_mutex_unlock(&w->mu);
    if (kmk_evq_post(w->q, deliver_done, w, job) < 0)
      KMK_ERR("worker", "%s: loop queue closed before a job finished", w->name);
  }
}

kmk_worker *kmk_worker_new(kmk_evq *q, const char *name, size_t max_jobs) {
  kmk_worker *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->q = q;
  w->max_jobs = max_jobs ? max_jobs : 1;
  snprintf(w->name, sizeof w->name, "%s", name ? name : "worker");
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return NULL;
  }
  return w;
}

int kmk_worker_submit(kmk_worker *w, kmk_job *job) {
  pthread_mutex_lock(&w->mu);
  if (w->stopping) {
    pthread_mutex_unlock(&w->mu);
    return -EPIPE;
  }
  if (w->waiting >= w->max_jobs) {
    pthread_mutex_unlock(&w->mu);
    return -EAGAIN;
  }
  atomic_store(&job->cancel, 0);
  job->worker = w;
  job->next = NULL;
  if (w->tail) w->tail->next = job; else w->head = job;
  w->tail = job;
  w->waiting++;
  w->busy++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

void kmk_job_cancel(kmk_job *job) { atomic_store(&job->cancel, 1); }

int kmk_job_post(kmk_job *job, kmk_evq_fn fn, void *ud, void *msg) {
  return kmk_evq_post(job->worker->q, fn, ud, msg);
}

size_t kmk_worker_busy(const kmk_worker *w) { return w->busy; }

void kmk_worker_free(kmk_worker *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = 1;
  for (kmk_job *j = w->head; j; j = j->next) kmk_job_cancel(j);
  if (w->running) kmk_job_cancel(w->running);
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  /* The thread may block posting into a full evq; keep draining while it finishes. */
  while (w->busy > 0) {
    kmk_evq_drain(w->q);
    if (w->busy > 0) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  pthread_join(w->thread, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}
