/* room_main.c - the `kameko room` job (the default without DISCORD_TOKEN): a loop, events.jsonl in
 * the output folder, the browser room (room.c), and Ctrl-C / SIGTERM for an ordered shutdown
 * (signal handles closed, room and agent freed, every handle closed, uv_loop_close checked).
 * The output folder and the loop's end are job.c's. Main thread (the loop's).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kameko/job.h"
#include "kameko/log.h"
#include "kameko/room.h"

static void on_signal(uv_signal_t *s, int signum) {
  KMK_INFO("room", "%s: shutting down", signum == SIGINT ? "Ctrl-C" : "SIGTERM");
  uv_stop(s->loop);
}

int kmk_room_main(const kmk_config *cfg, const char *const *persona_paths, size_t n_personas,
                  const char *scripts_dir, const char *out_dir, char *err, size_t errlen) {
  char path[1200];
  kmk_eventlog *log = kmk_job_open_log(out_dir, path, sizeof path, err, errlen);
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
  if (kmk_job_close_loop(&loop, "room") < 0) rc = rc ? rc : 1;
  size_t n_events = kmk_eventlog_count(log);
  kmk_eventlog_close(log);
  if (rc == 0) printf("room closed: %zu events in %s\n", n_events, path);
  return rc;
}
