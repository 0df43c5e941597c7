/* End to end: the Discord controller (gateway + REST + commands) against the local peer
 * (tests/peers/discord/peer.js) on loopback, with a real agent (kameko persona, offline).
 *
 * One session, faults in order: identify with the four intents; commands PUT for the guild;
 * /join answered (type 4) within 3 s with op 4 to the caller's channel; /join from a user not in
 * voice gets an ephemeral error; a text message becomes a "chat" event; /mute and /unmute reach the
 * agent; /persona is deferred then edited; a 429 on an answer is retried after retry_after; the
 * peer drops the socket (an interaction created meanwhile is replayed on resume and answered);
 * op 7; missed heartbeat ACKs; op 9 (new session); close 4000 (resume); everybody leaves the
 * channel -> the bot leaves after KMK_DISCORD_LEAVE_S; close 4004 -> fatal, no reconnect.
 * Every handle is closed at the end (uv_loop_close == 0). Then kmk_discord_main (the job app.c
 * runs): no token -> refused; a wrong token -> 4004, returns 1 with a clear message; the right
 * token -> runs until SIGINT and shuts down in order (0). Prints "skipped" without node/ws.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kameko/agent.h"
#include "kameko/discord.h"
#include "kameko/eventlog.h"
#include "kameko/log.h"
#include "test_discord_env.h"

#define TOKEN "test.bot.TOKEN_SECRET_0123456789"
#define ALICE "700000000000000001"
#define BOB "700000000000000002"
#define CAROL "700000000000000003"
#define VOICE_CH "900000000000000020"

static int fatal_called;
static char fatal_why[256];

static void on_fatal(void *ud, const char *why) {
  (void)ud;
  fatal_called++;
  snprintf(fatal_why, sizeof fatal_why, "%s", why);
}

/* interaction NAME USER [OPT]: returns the peer's interaction id (static buffer) */
static const char *interact(const char *name, const char *user, const char *opt) {
  static char id[64];
  int from = P.n;
  dpeer_cmd(&P, "interaction %s %s%s%s", name, user, opt ? " " : "", opt ? opt : "");
  int i = -1;
  WAIT_UNTIL((i = dpeer_find(&P, from, "interaction_created", NULL, NULL)) >= 0, 10);
  snprintf(id, sizeof id, "%s", i >= 0 ? dpeer_str(P.rec[i], "id") : "");
  return id;
}

static int response_for(const char *id) { return dpeer_find(&P, 0, "interaction_response", "id", id); }

static void test_gateway_session(void) {
  char tmp[] = "/tmp/kmk-dgw-XXXXXX";
  if (!mkdtemp(tmp)) return;
  const char *extra[] = {"--heartbeat-ms", "400", "--voice-out", tmp, NULL};
  if (!dpeer_start(&P, loop, TOKEN, extra)) return;
  char err[256];
  kmk_config cfg;
  denv_config(&cfg, TOKEN);
  CHECK(kmk_config_set(&cfg, "KMK_DISCORD_LEAVE_S", "1", err, sizeof err) == 0);

  kmk_eventlog *log = kmk_eventlog_open(NULL, err, sizeof err);
  kmk_agent *agent = denv_agent(log, &cfg, err, sizeof err);
  if (!agent) fprintf(stderr, "agent: %s\n", err);

  kmk_discord_opts o = {.loop = loop, .config = &cfg, .log = log, .agent = agent,
                        .persona_dir = KMK_SOURCE_DIR "/personas", .max_dave_version = 0,
                        .now = clock_s, .on_fatal = on_fatal};
  kmk_discord *d = kmk_discord_new(&o, err, sizeof err);
  CHECK(d != NULL);
  if (!d) {
    fprintf(stderr, "discord: %s\n", err);
    return;
  }

  /* identify with GUILDS | GUILD_VOICE_STATES | GUILD_MESSAGES | MESSAGE_CONTENT */
  int i;
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, 0, "identify", NULL, NULL)) >= 0, 20));
  if (i >= 0) {
    CHECK_EQ_INT(dpeer_num(P.rec[i], "intents"), 1 | 128 | 512 | 32768);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(P.rec[i], "token_ok")));
  }
  CHECK(WAIT_UNTIL(ev_find(0, "discord_ready", NULL, NULL) >= 0, 20));

  /* commands registered for the guild: a 200 with six commands */
  CHECK(WAIT_UNTIL(ev_find(0, "discord_commands", NULL, NULL) >= 0, 20));
  i = dpeer_find(&P, 0, "rest", "method", "PUT");
  CHECK(i >= 0);
  if (i >= 0) {
    CHECK_STR(dpeer_str(P.rec[i], "path"), "/applications/800000000000000001/guilds/900000000000000001/commands");
    CHECK_EQ_INT(dpeer_num(P.rec[i], "status"), 200);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(P.rec[i], "body")), 6);
  }
  CHECK_EQ_INT(kmk_discord_get_status(d).commands_registered, 1);

  /* heartbeats flow and are acknowledged */
  CHECK(WAIT_UNTIL(kmk_dgw_get_stats(kmk_discord_gateway(d)).acks >= 2, 10));

  /* /join from alice (in the voice channel): answered within 3 s, op 4 to her channel */
  const char *jid = interact("join", ALICE, NULL);
  char join_id[64];
  snprintf(join_id, sizeof join_id, "%s", jid);
  CHECK(WAIT_UNTIL((i = response_for(join_id)) >= 0, 10));
  if (i >= 0) {
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(P.rec[i], "ok")));
    CHECK_EQ_INT(dpeer_num(P.rec[i], "type"), 4);
    CHECK(dpeer_num(P.rec[i], "ms") >= 0 && dpeer_num(P.rec[i], "ms") < 3000);
    printf("/join answered in %.0f ms (peer clock)\n", dpeer_num(P.rec[i], "ms"));
  }
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, 0, "voice_state", "channel_id", VOICE_CH)) >= 0, 10));
  CHECK(WAIT_UNTIL(ev_find(0, "discord_voice", "state", "joining") >= 0, 5));
  /* both voice updates arrived: the voice connection starts and gets ready (peer's voice half) */
  CHECK(WAIT_UNTIL(ev_find(0, "discord_voice", "state", "connecting") >= 0, 10));
  CHECK(WAIT_UNTIL(ev_find(0, "discord_voice", "state", "ready") >= 0, 20));
  CHECK(kmk_discord_get_status(d).in_voice);
  CHECK_STR(kmk_discord_get_status(d).voice_channel, VOICE_CH);

  /* /join from carol (not in voice): an ephemeral error, no op 4 */
  int vs_before = dpeer_count(&P, 0, "voice_state");
  const char *cid = interact("join", CAROL, NULL);
  CHECK(WAIT_UNTIL((i = response_for(cid)) >= 0, 10));
  if (i >= 0) {
    CHECK_EQ_INT(dpeer_num(P.rec[i], "flags"), 64);
    CHECK(strstr(dpeer_str(P.rec[i], "content"), "voice channel first") != NULL);
  }
  CHECK_EQ_INT(dpeer_count(&P, 0, "voice_state"), vs_before);

  /* a text message in the joined guild becomes a chat event for the personas */
  dpeer_cmd(&P, "message %s kameko what time is it", BOB);
  CHECK(WAIT_UNTIL((i = ev_find(0, "chat", "speaker", "bob")) >= 0, 10));
  if (i >= 0) CHECK_STR(estr(evs[i], "text"), "kameko what time is it");

  /* /mute and /unmute reach the agent */
  interact("mute", ALICE, NULL);
  CHECK(WAIT_UNTIL(ev_find(0, "mute", NULL, NULL) >= 0, 10));
  CHECK(WAIT_UNTIL(kmk_agent_muted(agent) == 1, 5));
  interact("unmute", ALICE, NULL);
  CHECK(WAIT_UNTIL(kmk_agent_muted(agent) == 0, 10));

  /* /persona: deferred (type 5) then PATCH @original */
  const char *pid = interact("persona", ALICE, "shopkeeper");
  char persona_id[64];
  snprintf(persona_id, sizeof persona_id, "%s", pid);
  CHECK(WAIT_UNTIL((i = response_for(persona_id)) >= 0, 10));
  if (i >= 0) CHECK_EQ_INT(dpeer_num(P.rec[i], "type"), 5);
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, 0, "edit_original", "id", persona_id)) >= 0, 10));
  if (i >= 0) CHECK(strstr(dpeer_str(P.rec[i], "content"), "shopkeeper") != NULL);
  CHECK(ev_find(0, "cast", NULL, NULL) >= 0);

  /* a 429 on the answer: retried after retry_after (0.25 s), still inside the 3 s */
  dpeer_cmd(&P, "rest_fail 429 1");
  const char *fid = interact("forget", BOB, NULL);
  char forget_id[64];
  snprintf(forget_id, sizeof forget_id, "%s", fid);
  CHECK(WAIT_UNTIL((i = response_for(forget_id)) >= 0, 10));
  if (i >= 0) {
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(P.rec[i], "ok")));
    CHECK(dpeer_num(P.rec[i], "ms") >= 250);
  }
  CHECK(dpeer_find(&P, 0, "rest", "method", "POST") >= 0);
  CHECK(ev_find(0, "forget", "speaker", "bob") >= 0);

  /* the peer drops the socket; an interaction created meanwhile is replayed on resume */
  kmk_dgw_stats s0 = kmk_dgw_get_stats(kmk_discord_gateway(d));
  int from = P.n;
  dpeer_cmd(&P, "drop");
  CHECK(WAIT_UNTIL(dpeer_find(&P, from, "disconnect", NULL, NULL) >= 0, 10));
  const char *lid = interact("mute", ALICE, NULL);
  char late_id[64];
  snprintf(late_id, sizeof late_id, "%s", lid);
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, from, "resume", NULL, NULL)) >= 0, 20));
  if (i >= 0) {
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(P.rec[i], "known")));
    CHECK(dpeer_num(P.rec[i], "seq") >= 3);
    /* resume goes to resume_gateway_url */
    int c = dpeer_find(&P, from, "connect", NULL, NULL);
    CHECK(c >= 0 && strncmp(dpeer_str(P.rec[c], "path"), "/resume", 7) == 0);
  }
  CHECK(WAIT_UNTIL(response_for(late_id) >= 0, 20));
  CHECK(WAIT_UNTIL(kmk_dgw_get_state(kmk_discord_gateway(d)) == KMK_DGW_CONNECTED, 10));
  kmk_dgw_stats s1 = kmk_dgw_get_stats(kmk_discord_gateway(d));
  CHECK_EQ_INT(s1.identifies, s0.identifies);
  CHECK_EQ_INT(s1.resumes, s0.resumes + 1);
  interact("unmute", ALICE, NULL);

  /* op 7: reconnect and resume */
  from = P.n;
  dpeer_cmd(&P, "reconnect");
  CHECK(WAIT_UNTIL(dpeer_find(&P, from, "resume", NULL, NULL) >= 0, 20));
  CHECK(WAIT_UNTIL(kmk_dgw_get_state(kmk_discord_gateway(d)) == KMK_DGW_CONNECTED, 10));

  /* missed heartbeat ACKs: the bot drops the zombie connection and resumes */
  from = P.n;
  dpeer_cmd(&P, "ack off");
  CHECK(WAIT_UNTIL(kmk_dgw_get_stats(kmk_discord_gateway(d)).missed_acks >= 1, 20));
  dpeer_cmd(&P, "ack on");
  CHECK(WAIT_UNTIL(dpeer_find(&P, from, "resume", NULL, NULL) >= 0, 20));
  CHECK(WAIT_UNTIL(kmk_dgw_get_state(kmk_discord_gateway(d)) == KMK_DGW_CONNECTED, 10));

  /* op 9 false: a new session (identify again, after 1-5 s) */
  from = P.n;
  s0 = kmk_dgw_get_stats(kmk_discord_gateway(d));
  dpeer_cmd(&P, "invalid_session false");
  CHECK(WAIT_UNTIL(dpeer_find(&P, from, "identify", NULL, NULL) >= 0, 20));
  CHECK(WAIT_UNTIL(kmk_dgw_get_state(kmk_discord_gateway(d)) == KMK_DGW_CONNECTED, 10));
  CHECK_EQ_INT(kmk_dgw_get_stats(kmk_discord_gateway(d)).identifies, s0.identifies + 1);

  /* close 4000 (unknown error): resumable */
  from = P.n;
  dpeer_cmd(&P, "close 4000");
  CHECK(WAIT_UNTIL(dpeer_find(&P, from, "resume", NULL, NULL) >= 0, 20));
  CHECK(WAIT_UNTIL(kmk_dgw_get_state(kmk_discord_gateway(d)) == KMK_DGW_CONNECTED, 10));

  /* everybody leaves the voice channel: the bot leaves after the grace time (1 s) */
  from = P.n;
  int ev_from = n_evs;
  dpeer_cmd(&P, "voice_state %s null", ALICE);
  dpeer_cmd(&P, "voice_state %s null", BOB);
  CHECK(WAIT_UNTIL((i = ev_find(ev_from, "discord_voice", "state", "left")) >= 0, 20));
  if (i >= 0) CHECK_STR(estr(evs[i], "why"), "channel empty");
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, from, "voice_state", NULL, NULL)) >= 0, 10));
  if (i >= 0) CHECK(cJSON_IsNull(cJSON_GetObjectItem(P.rec[i], "channel_id")));
  CHECK(!kmk_discord_get_status(d).in_voice);

  /* close 4004: fatal with a clear message, no reconnect */
  from = P.n;
  dpeer_cmd(&P, "close 4004");
  CHECK(WAIT_UNTIL(fatal_called == 1, 20));
  CHECK(strstr(fatal_why, "DISCORD_TOKEN") != NULL);
  CHECK_EQ_INT(kmk_dgw_get_state(kmk_discord_gateway(d)), KMK_DGW_FATAL);
  dpeer_run_for(&P, 3.0);
  CHECK_EQ_INT(dpeer_count(&P, from, "connect"), 0);

  /* the token never appears in any event */
  for (int k = 0; k < n_evs; k++) {
    char *s = cJSON_PrintUnformatted(evs[k]);
    CHECK(strstr(s, "TOKEN_SECRET") == NULL);
    free(s);
  }

  kmk_discord_close(d, closed_cb, NULL);
  CHECK(WAIT_UNTIL(closed_flag, 10));
  denv_free(agent, log, &cfg);
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf %s", tmp);
  CHECK(system(rm) == 0);
}

/* ---- kmk_discord_main: the job app.c runs ----------------------------------------------------- */
static char main_out[64];

/* Waits (polling the file, up to 60 s) until events.jsonl names the registered commands, then
   sends SIGINT to the process: kmk_discord_main must shut down in order and return 0. */
static void *interrupter(void *arg) {
  (void)arg;
  char path[128], line[4096];
  snprintf(path, sizeof path, "%s/events.jsonl", main_out);
  for (int tries = 0; tries < 600; tries++) {
    FILE *f = fopen(path, "r");
    int seen = 0;
    while (f && fgets(line, sizeof line, f))
      if (strstr(line, "\"discord_commands\"")) seen = 1;
    if (f) fclose(f);
    if (seen) break;
    usleep(100 * 1000);
  }
  kill(getpid(), SIGINT);
  return NULL;
}

static void test_main_job(void) {
  if (!dpeer_start(&P, loop, TOKEN, NULL)) return;
  snprintf(main_out, sizeof main_out, "/tmp/kmk-dgwmain-XXXXXX");
  CHECK(mkdtemp(main_out) != NULL);
  char err[256];
  kmk_config cfg;
  denv_config(&cfg, NULL);
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};

  /* no token: refused before anything starts */
  err[0] = 0;
  CHECK_EQ_INT(kmk_discord_main(&cfg, personas, 1, KMK_SOURCE_DIR "/scripts", main_out, err, sizeof err), 1);
  CHECK(strstr(err, "DISCORD_TOKEN") != NULL);

  /* a wrong token: the gateway closes 4004, the job stops with a clear message */
  CHECK(kmk_config_set(&cfg, "DISCORD_TOKEN", "wrong.token.value", err, sizeof err) == 0);
  err[0] = 0;
  CHECK_EQ_INT(kmk_discord_main(&cfg, personas, 1, KMK_SOURCE_DIR "/scripts", main_out, err, sizeof err), 1);
  CHECK(strstr(err, "4004") != NULL && strstr(err, "DISCORD_TOKEN") != NULL);

  /* the right token: runs until Ctrl-C, then an ordered shutdown (0) */
  CHECK(kmk_config_set(&cfg, "DISCORD_TOKEN", TOKEN, err, sizeof err) == 0);
  pthread_t th;
  pthread_create(&th, NULL, interrupter, NULL);
  err[0] = 0;
  int rc = kmk_discord_main(&cfg, personas, 1, KMK_SOURCE_DIR "/scripts", main_out, err, sizeof err);
  pthread_join(th, NULL);
  CHECK_EQ_INT(rc, 0);
  if (rc) fprintf(stderr, "kmk_discord_main: %s\n", err);
  char path[128], rm[160];
  snprintf(path, sizeof path, "%s/events.jsonl", main_out);
  FILE *f = fopen(path, "r");
  char line[4096];
  int ready = 0;
  while (f && fgets(line, sizeof line, f)) {
    if (strstr(line, "\"discord_ready\"")) ready = 1;
    CHECK(strstr(line, "TOKEN_SECRET") == NULL);
  }
  if (f) fclose(f);
  CHECK(ready);
  dpeer_stop(&P);
  uv_run(loop, UV_RUN_DEFAULT);
  kmk_config_free(&cfg);
  snprintf(rm, sizeof rm, "rm -rf %s", main_out);
  CHECK(system(rm) == 0);
}

int main(void) {
  kmk_log_set_level(getenv("KMK_LOG_LEVEL") ? (kmk_log_level)kmk_log_parse_level(getenv("KMK_LOG_LEVEL"))
                                            : KMK_LOG_WARN);
  uv_loop_init(loop);
  RUN(test_gateway_session);
  RUN(test_main_job);
  CHECK_EQ_INT(uv_loop_close(loop), 0);
  for (int i = 0; i < n_evs; i++) cJSON_Delete(evs[i]);
  return check_done();
}
