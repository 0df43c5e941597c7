/* watch.c - a debounced watcher of one file: libuv fs events on the file's DIRECTORY (editors that
 * save by writing a temp file and renaming it over the original replace the inode, which a watch
 * on the file itself would lose), filtered by the file's name, debounced by a one-shot timer so a
 * burst of events (truncate, write, chmod, rename) becomes one callback.
 *
 * Owns: one uv_fs_event_t and one uv_timer_t on the heap; both closed by kmk_file_watch_free, the
 * struct freed in the last close callback. Loop thread only.
 */
#include "kameko/brain.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

struct kmk_file_watch {
  uv_fs_event_t fs;
  uv_timer_t timer;
  int closing_left; /* close callbacks still to come */
  unsigned debounce_ms;
  char dir[1024], base[256];
  kmk_file_watch_cb cb;
  void *ud;
  uint64_t changes; /* fs events that matched the file */
};

static void on_debounced(uv_timer_t *t) {
  kmk_file_watch *w = t->data;
  w->cb(w->ud);
}

static void on_fs(uv_fs_event_t *h, const char *filename, int events, int status) {
  (void)events;
  kmk_file_watch *w = h->data;
  if (status < 0) return;
  /* some backends report no name: treat as "something in the directory changed" */
  if (filename && strcmp(filename, w->base) != 0) return;
  w->changes++;
  uv_timer_start(&w->timer, on_debounced, w->debounce_ms, 0); /* restarts: the last event counts */
}

kmk_file_watch *kmk_file_watch_new(uv_loop_t *loop, const char *path, unsigned debounce_ms,
                                   kmk_file_watch_cb cb, void *ud) {
  if (!loop || !path || !cb) return NULL;
  kmk_file_watch *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  const char *slash = strrchr(path, '/');
  if (slash) {
    size_t dl = (size_t)(slash - path);
    if (dl >= sizeof w->dir || strlen(slash + 1) >= sizeof w->base) goto fail;
    memcpy(w->dir, path, dl ? dl : 1); /* "/x.lua" -> "/" */
    w->dir[dl ? dl : 1] = '\0';
    strcpy(w->base, slash + 1);
  } else {
    if (strlen(path) >= sizeof w->base) goto fail;
    strcpy(w->dir, ".");
    strcpy(w->base, path);
  }
  w->debounce_ms = debounce_ms;
  w->cb = cb;
  w->ud = ud;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  uv_fs_event_init(loop, &w->fs);
  w->fs.data = w;
  w->closing_left = 2;
  if (uv_fs_event_start(&w->fs, on_fs, w->dir, 0) < 0) {
    kmk_file_watch_free(w);
    return NULL;
  }
  return w;
fail:
  free(w);
  return NULL;
}

static void on_closed(uv_handle_t *h) {
  kmk_file_watch *w = h->data;
  if (--w->closing_left == 0) free(w);
}

void kmk_file_watch_free(kmk_file_watch *w) {
  if (!w) return;
  uv_close((uv_handle_t *)&w->fs, on_closed);
  uv_close((uv_handle_t *)&w->timer, on_closed);
}

uint64_t kmk_file_watch_changes(const kmk_file_watch *w) { return w ? w->changes : 0; }
