/* test_discord_env.h - what the Discord e2e tests (test_discord_conversation.c, _faults.c,
 * _gateway.c) share on top of test_discord_peer.h: the test's loop and peer, the engine events
 * seen through the event log's observer, WAIT_UNTIL, the loop clock, a config aimed at the peer,
 * the offline agent (kameko persona) and the end of a session.
 * One test process; its main thread (the loop's).
 */
#ifndef KMK_TEST_DISCORD_ENV_H
#define KMK_TEST_DISCORD_ENV_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "kameko/agent.h"
#include "kameko/config.h"
#include "kameko/discord.h"
#include "kameko/eventlog.h"
#include "test_discord_peer.h"

static uv_loop_t loop_s, *loop = &loop_s;
static dpeer P;
static cJSON *evs[4096];
static int n_evs;
static int closed_flag;

/* Runs the loop until expr holds (1) or secs pass (0). */
#define WAIT_UNTIL(expr, secs)                                                   \
  ({                                                                             \
    uint64_t end_ = uv_now(loop) + (uint64_t)((secs) * 1000);                    \
    int ok_ = 0;                                                                 \
    while (!(ok_ = !!(expr)) && uv_now(loop) < end_) uv_run(loop, UV_RUN_ONCE); \
    ok_;                                                                         \
  })

/* the event log's observer: every engine event is kept in evs[] */
static void observe(void *ud, const cJSON *ev) {
  (void)ud;
  if (n_evs < 4096) evs[n_evs++] = cJSON_Duplicate(ev, 1);
}

static const char *estr(const cJSON *e, const char *k) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(e, k);
  return cJSON_IsString(x) ? x->valuestring : "";
}

/* first engine event at/after from with type (and key == val when key is given) */
__attribute__((unused)) static int ev_find(int from, const char *type, const char *key, const char *val) {
  for (int i = from; i < n_evs; i++) {
    if (strcmp(estr(evs[i], "type"), type)) continue;
    if (key && strcmp(estr(evs[i], key), val)) continue;
    return i;
  }
  return -1;
}

static double clock_s(void *ud) {
  (void)ud;
  return (double)uv_now(loop) / 1000.0;
}

static void closed_cb(void *ud) {
  (void)ud;
  closed_flag = 1;
}

/* Loads an empty config aimed at the running peer P: its REST API and gateway URLs, and
   DISCORD_TOKEN = token unless token is NULL. */
static void denv_config(kmk_config *cfg, const char *token) {
  char err[256], url[256];
  CHECK(kmk_config_load(cfg, "/nonexistent/.env", 0, err, sizeof err) == 0);
  if (token) CHECK(kmk_config_set(cfg, "DISCORD_TOKEN", token, err, sizeof err) == 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v10", P.port);
  CHECK(kmk_config_set(cfg, "DISCORD_API_URL", url, err, sizeof err) == 0);
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/?v=10&encoding=json", P.port);
  CHECK(kmk_config_set(cfg, "DISCORD_GATEWAY_URL", url, err, sizeof err) == 0);
}

/* The kameko persona's agent on the test's loop, offline (no file watch), its events observed. */
static kmk_agent *denv_agent(kmk_eventlog *log, const kmk_config *cfg, char *err, size_t errlen) {
  kmk_eventlog_set_observer(log, observe, NULL);
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
  kmk_agent_opts ao = {.loop = loop, .log = log, .config = cfg, .persona_paths = personas,
                       .n_personas = 1, .scripts_dir = KMK_SOURCE_DIR "/scripts", .now = clock_s,
                       .no_watch = 1};
  kmk_agent *agent = kmk_agent_new(&ao, err, errlen);
  CHECK(agent != NULL);
  return agent;
}

/* After the controller has closed: frees the agent, stops the peer, runs the loop until their
   handles are closed, closes the log and frees the config. */
static void denv_free(kmk_agent *agent, kmk_eventlog *log, kmk_config *cfg) {
  kmk_agent_free(agent);
  dpeer_stop(&P);
  uv_run(loop, UV_RUN_DEFAULT);
  kmk_eventlog_close(log);
  kmk_config_free(cfg);
}

#endif
