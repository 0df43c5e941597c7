/* job.h - scaffolding shared by the long-running jobs (`kameko room`, `kameko discord`): the
 * output folder with its events.jsonl, and the ordered end of the job's loop.
 * Main thread (the loop's).
 */
#ifndef KAMEKO_JOB_H
#define KAMEKO_JOB_H

#include <stddef.h>

#include <uv.h>

#include "kameko/eventlog.h"

/* Creates out_dir (and its parents) and opens out_dir/events.jsonl; path receives that file's
 * name. NULL with err filled on failure. */
kmk_eventlog *kmk_job_open_log(const char *out_dir, char *path, size_t pathlen, char *err,
                               size_t errlen);

/* Closes every handle still open on loop, runs it until they are closed and closes the loop.
 * 0, or -1 (logged under tag) when handles were left open. */
int kmk_job_close_loop(uv_loop_t *loop, const char *tag);

#endif
