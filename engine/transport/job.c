/* job.c - scaffolding shared by room_main.c and discord_gw_main.c: the output folder and its
 * events.jsonl, and closing every handle of the job's loop at the end.
 * Main thread (the loop's).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kameko/job.h"
#include "kameko/log.h"

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static int make_dirs(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

kmk_eventlog *kmk_job_open_log(const char *out_dir, char *path, size_t pathlen, char *err,
                               size_t errlen) {
  if (make_dirs(out_dir) < 0) {
    snprintf(err, errlen, "cannot create %s: %s", out_dir, strerror(errno));
    return NULL;
  }
  snprintf(path, pathlen, "%s/events.jsonl", out_dir);
  return kmk_eventlog_open(path, err, errlen);
}

int kmk_job_close_loop(uv_loop_t *loop, const char *tag) {
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) {
    KMK_ERR(tag, "handles left open at shutdown");
    return -1;
  }
  return 0;
}
