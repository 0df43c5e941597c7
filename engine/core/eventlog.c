/* eventlog.c - events.jsonl writer. Owns its FILE*. Loop thread only. */
#include "kameko/eventlog.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct kmk_eventlog {
  FILE *f;
  size_t count;
  void (*observer)(void *ud, const cJSON *ev);
  void *observer_ud;
};

kmk_eventlog *kmk_eventlog_open(const char *path, char *err, size_t errlen) {
  kmk_eventlog *log = calloc(1, sizeof *log);
  if (!log) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (path && strcmp(path, "-") != 0) {
    log->f = fopen(path, "w");
    if (!log->f) {
      snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
      free(log);
      return NULL;
    }
  }
  return log;
}

int kmk_eventlog_write(kmk_eventlog *log, const cJSON *event) {
  log->count++;
  if (log->observer) log->observer(log->observer_ud, event);
  if (!log->f) return 0;
  char *s = cJSON_PrintUnformatted(event);
  if (!s) return -ENOMEM;
  int rc = (fputs(s, log->f) < 0 || fputc('\n', log->f) < 0 || fflush(log->f) != 0) ? -EIO : 0;
  free(s);
  return rc;
}

void kmk_eventlog_set_observer(kmk_eventlog *log, void (*fn)(void *, const cJSON *), void *ud) {
  log->observer = fn;
  log->observer_ud = ud;
}

size_t kmk_eventlog_count(const kmk_eventlog *log) { return log->count; }

void kmk_eventlog_close(kmk_eventlog *log) {
  if (!log) return;
  if (log->f) fclose(log->f);
  free(log);
}

cJSON *kmk_event_new(double t, const char *type, const char *speaker) {
  cJSON *ev = cJSON_CreateObject();
  if (!ev) return NULL;
  cJSON_AddNumberToObject(ev, "t", round(t * 1000.0) / 1000.0);
  cJSON_AddStringToObject(ev, "type", type);
  if (speaker) cJSON_AddStringToObject(ev, "speaker", speaker);
  return ev;
}
