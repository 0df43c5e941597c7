/* discord_gw_main.c - the `kameko discord` job: a loop, events.jsonl in the output folder, one
 * agent (the personas), the Discord controller (gateway, REST, voice), and Ctrl-C / SIGTERM for an
 * ordered shutdown (controller closed first: voice left, gateway and REST closed; then the agent;
 * every handle closed, uv_loop_close checked). A fatal gateway or REST error (bad token,
 * disallowed intents) stops the job with that message. The output folder and the loop's end are
 * job.c's. Main thread (the loop's).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kameko/agent.h"
#include "kameko/discord.h"
#include "kameko/job.h"
#include "kameko/log.h"

#define TAG "discord"

typedef struct {
  uv_loop_t loop;
  uv_signal_t sig_int, sig_term;
  uv_timer_t fatal_timer;
  int fatal_armed;
  kmk_discord *d;
  uint64_t t0;
  int stopping, closed;
  char fatal[256];
} job;

static double clock_s(void *ud) {
  job *j = ud;
  return (double)(uv_hrtime() - j->t0) / 1e9;
}

static void on_closed(void *ud) {
  job *j = ud;
  j->closed = 1;
  j->d = NULL;
}

static void stop(job *j) {
  if (j->stopping) return;
  j->stopping = 1;
  uv_close((uv_handle_t *)&j->sig_int, NULL);
  uv_close((uv_handle_t *)&j->sig_term, NULL);
  if (j->d) kmk_discord_close(j->d, on_closed, j);
}

static void on_signal(uv_signal_t *s, int signum) {
  KMK_INFO(TAG, "%s: leaving voice and closing the gateway", signum == SIGINT ? "Ctrl-C" : "SIGTERM");
  stop(s->data);
}

/* the close is started from a timer: on_fatal runs inside the gateway's own callbacks */
static void fatal_cb(uv_timer_t *t) {
  stop(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void on_fatal(void *ud, const char *why) {
  job *j = ud;
  if (!j->fatal[0]) snprintf(j->fatal, sizeof j->fatal, "%s", why);
  if (j->fatal_armed || j->stopping) return;
  j->fatal_armed = 1;
  uv_timer_init(&j->loop, &j->fatal_timer);
  j->fatal_timer.data = j;
  uv_timer_start(&j->fatal_timer, fatal_cb, 0, 0);
}

int kmk_discord_main(const kmk_config *cfg, const char *const *persona_paths, size_t n_personas,
                     const char *scripts_dir, const char *out_dir, char *err, size_t errlen) {
  if (!cfg->discord_token || !cfg->discord_token[0]) {
    snprintf(err, errlen, "DISCORD_TOKEN is not set (README: Discord)");
    return 1;
  }
  char path[1200];
  kmk_eventlog *log = kmk_job_open_log(out_dir, path, sizeof path, err, errlen);
  if (!log) return 1;
  static job j; /* one job per process; handles must not move */
  memset(&j, 0, sizeof j);
  uv_loop_init(&j.loop);
  j.t0 = uv_hrtime();
  int rc = 1;
  kmk_agent_opts ao = {.loop = &j.loop, .log = log, .config = cfg, .persona_paths = persona_paths,
                       .n_personas = n_personas, .scripts_dir = scripts_dir, .now = clock_s,
                       .now_ud = &j};
  kmk_agent *agent = kmk_agent_new(&ao, err, errlen);
  if (agent) {
    const char *pdir = cfg->persona_dir && *cfg->persona_dir ? cfg->persona_dir : KMK_SOURCE_DIR "/personas";
    /* the local peer (ws://) runs without DAVE unless it offers it; Discord requires DAVE */
    int plain = strncmp(cfg->discord_gateway_url, "ws://", 5) == 0;
    kmk_discord_opts o = {.loop = &j.loop, .config = cfg, .log = log, .agent = agent,
                          .persona_dir = pdir, .max_dave_version = plain ? 0 : 1, .now = clock_s,
                          .now_ud = &j, .on_fatal = on_fatal, .ud = &j};
    j.d = kmk_discord_new(&o, err, errlen);
    if (j.d) {
      uv_signal_init(&j.loop, &j.sig_int);
      uv_signal_init(&j.loop, &j.sig_term);
      j.sig_int.data = j.sig_term.data = &j;
      uv_signal_start(&j.sig_int, on_signal, SIGINT);
      uv_signal_start(&j.sig_term, on_signal, SIGTERM);
      printf("Kameko on Discord: connecting to %s\n", cfg->discord_gateway_url);
      printf("  use /join in a server's text channel while you are in a voice channel; "
             "events -> %s; Ctrl-C to stop\n", path);
      while (!j.closed) uv_run(&j.loop, UV_RUN_ONCE);
      if (j.fatal[0]) snprintf(err, errlen, "%s", j.fatal);
      else rc = 0;
    }
    kmk_agent_free(agent);
  }
  if (kmk_job_close_loop(&j.loop, TAG) < 0) {
    if (rc == 0) {
      snprintf(err, errlen, "handles left open at shutdown");
      rc = 1;
    }
  }
  size_t n_events = kmk_eventlog_count(log);
  kmk_eventlog_close(log);
  if (rc == 0) printf("discord closed: %zu events in %s\n", n_events, path);
  return rc;
}
