/* room_main.c - the `kameko room` job (the default without DISCORD_TOKEN): a loop, events.jsonl in
 * the output folder, the browser room (room.c), and Ctrl-C / SIGTERM for an ordered shutdown
 * (signal handles closed, room and agent freed, every handle closed, uv_loop_close checked).
 * Main thread (the loop's).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kameko/log.h"
#include "kameko/room.h"

static void on_signal(uv_signal_t *s, int signum) {
  KMK_INFO("room", "%s: shutting down", signum == SIGINT ? "Ctrl-C" : "SIGTERM");
  uv_stop(s->loop);
}

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

int kmk_room_main(const kmk_config *cfg, const char *const *persona_paths, size_t n_personas,
                  const char *scripts_dir, const char *out_dir, char *err, size_t errlen) {
  char path[1200];
  if (make_dirs(out_dir) < 0) {
    snprintf(err, errlen, "cannot create %s: %s", out_dir, strerror(errno));
    return 1;
  }
  snprintf(path, sizeof path, "%s/events.jsonl", out_dir);
  kmk_eventlog *log = kmk_eventlog_open(path, err, errlen);
  if (!log) return 1;
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_room_opts o = {.loop = &loop,
                     .config = cfg,
                     .log = log,
                     .persona_paths = persona_paths,
                     .n_personas = n_personas,
                     .persona_dir = cfg->persona_dir && *cfg->persona_dir ? cfg->persona_dir : NULL,
                     .scripts_dir = scripts_dir,
                     .web_dir = NULL};
  kmk_room *room = kmk_room_new(&o, err, errlen);
  int rc = 1;
  if (room) {
    uv_signal_t sig_int, sig_term;
    uv_signal_init(&loop, &sig_int);
    uv_signal_init(&loop, &sig_term);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    printf("Kameko room: %s\n", kmk_room_url(room));
    if (cfg->room_token && *cfg->room_token)
      printf("  (open it with ?token=<KMK_ROOM_TOKEN> appended; the token is not printed)\n");
    printf("  events -> %s; Ctrl-C to stop. The offline demo without a browser: kameko demo\n",
           path);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    kmk_room_free(room);
    rc = 0;
  }
  uv_walk(&loop, close_walk, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) {
    KMK_ERR("room", "handles left open at shutdown");
    rc = rc ? rc : 1;
  }
  size_t n_events = kmk_eventlog_count(log);
  kmk_eventlog_close(log);
  if (rc == 0) printf("room closed: %zu events in %s\n", n_events, path);
  return rc;
}
