/* eventlog.h - the project's public record: events.jsonl, one JSON object per line.
 *
 * Every event has "t" (seconds on the conversation timeline, 3 decimals), "type" and, where it
 * concerns a person or persona, "speaker"; the remaining fields depend on the type (README lists
 * them). Loop thread only.
 */
#ifndef KAMEKO_EVENTLOG_H
#define KAMEKO_EVENTLOG_H

#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct kmk_eventlog kmk_eventlog;

/* path NULL or "-" = no file (events still counted). Returns NULL with err on failure. */
kmk_eventlog *kmk_eventlog_open(const char *path, char *err, size_t errlen);
/* Writes one event (does not take ownership) and flushes the line. 0 or -errno. */
int kmk_eventlog_write(kmk_eventlog *log, const cJSON *event);
/* Optional observer called with every written event (the browser room streams them). */
void kmk_eventlog_set_observer(kmk_eventlog *log, void (*fn)(void *ud, const cJSON *ev), void *ud);
size_t kmk_eventlog_count(const kmk_eventlog *log);
void kmk_eventlog_close(kmk_eventlog *log);

/* A new event object {"t": t, "type": type, "speaker": speaker?}; caller owns it. */
cJSON *kmk_event_new(double t, const char *type, const char *speaker);

#endif
