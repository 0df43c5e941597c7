/* End to end: the Discord controller's voice-life decisions against the local peer
 * (tests/peers/discord/peer.js + voice.js), the peer sending a null voice endpoint first.
 *
 *   /join -> a VOICE_SERVER_UPDATE with a null endpoint is waited out, the real one connects;
 *   voice close 4015 -> the voice side resumes (no new op 4);
 *   voice close 4006 (session invalid) -> rejoin with backoff (op 4 again) -> ready again;
 *   moved to another channel (our VOICE_STATE_UPDATE) -> "moved", the new channel is ours;
 *   kicked (our channel becomes null) -> "kicked", out of voice, no op 4;
 *   /join again, voice close 4014 -> "closed" with 4014 and no reconnect for 3 s;
 *   a REST 401 -> fatal with a message naming DISCORD_TOKEN;
 *   closing while in voice -> the leave (op 4, null channel) reaches the gateway first.
 * Every handle is closed at the end (uv_loop_close == 0). Prints "skipped" without node/ws.
 */
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

#define TOKEN "test.bot.TOKEN_SECRET_faults_0123456789"
#define ALICE "700000000000000001"
#define BOT "800000000000000001"
#define VOICE_CH "900000000000000020"
#define VOICE2_CH "900000000000000021"

static int fatal_called;
static char fatal_why[256];

static int voice_ev(int from, const char *state) {
  for (int i = from; i < n_evs; i++)
    if (!strcmp(estr(evs[i], "type"), "discord_voice") && !strcmp(estr(evs[i], "state"), state)) return i;
  return -1;
}
static int op4_count(int from, const char *channel) { /* op 4 records for channel ("" = null) */
  int n = 0;
  for (int i = from; i < P.n; i++) {
    if (strcmp(dpeer_str(P.rec[i], "ev"), "voice_state")) continue;
    const cJSON *c = cJSON_GetObjectItem(P.rec[i], "channel_id");
    if (channel[0] ? (cJSON_IsString(c) && !strcmp(c->valuestring, channel)) : cJSON_IsNull(c)) n++;
  }
  return n;
}
static void on_fatal(void *ud, const char *why) {
  (void)ud;
  fatal_called++;
  snprintf(fatal_why, sizeof fatal_why, "%s", why);
}

static void test_voice_life(void) {
  char tmp[] = "/tmp/kmk-dflt-XXXXXX";
  if (!mkdtemp(tmp)) return;
  const char *extra[] = {"--null-endpoint-first", "1", "--voice-out", tmp, "--voice-hb", "500", NULL};
  if (!dpeer_start(&P, loop, TOKEN, extra)) return;
  char err[256];
  kmk_config cfg;
  denv_config(&cfg, TOKEN);
  kmk_eventlog *log = kmk_eventlog_open(NULL, err, sizeof err);
  kmk_agent *agent = denv_agent(log, &cfg, err, sizeof err);
  kmk_discord_opts o = {.loop = loop, .config = &cfg, .log = log, .agent = agent,
                        .persona_dir = KMK_SOURCE_DIR "/personas", .now = clock_s,
                        .on_fatal = on_fatal};
  kmk_discord *d = agent ? kmk_discord_new(&o, err, sizeof err) : NULL;
  CHECK(d != NULL);
  if (!d) {
    dpeer_stop(&P);
    return;
  }
  CHECK(WAIT_UNTIL(kmk_discord_get_status(d).commands_registered == 1, 20));

  /* /join: the null endpoint is waited out; the real one connects */
  dpeer_cmd(&P, "interaction join %s", ALICE);
  CHECK(WAIT_UNTIL(voice_ev(0, "ready") >= 0, 20));
  CHECK(voice_ev(0, "failed") < 0);

  /* voice close 4015 (voice server crashed): the voice side resumes by itself, no new op 4 */
  int from_ev = n_evs, from = P.n;
  dpeer_cmd(&P, "voice {\"cmd\":\"close\",\"code\":4015}");
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "resuming") >= 0, 20));
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "ready") >= 0, 20));
  CHECK_EQ_INT(op4_count(from, VOICE_CH), 0);
  CHECK(voice_ev(from_ev, "rejoining") < 0);

  /* voice close 4006: the session is invalid -> rejoin with backoff -> ready again */
  from_ev = n_evs;
  from = P.n;
  dpeer_cmd(&P, "voice {\"cmd\":\"close\",\"code\":4006}");
  int i = -1;
  CHECK(WAIT_UNTIL((i = voice_ev(from_ev, "rejoining")) >= 0, 20));
  if (i >= 0) CHECK_EQ_INT(cJSON_GetObjectItem(evs[i], "close_code")->valueint, 4006);
  CHECK(WAIT_UNTIL(op4_count(from, VOICE_CH) >= 1, 20));
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "ready") >= 0, 20));
  CHECK(kmk_discord_get_status(d).voice_retries == 1);

  /* moved by a moderator: our voice state names another channel */
  from_ev = n_evs;
  dpeer_cmd(&P, "voice_state %s %s", BOT, VOICE2_CH);
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "moved") >= 0, 10));
  CHECK_STR(kmk_discord_get_status(d).voice_channel, VOICE2_CH);

  /* kicked: our channel becomes null -> out of voice, no op 4 from us */
  from_ev = n_evs;
  from = P.n;
  dpeer_cmd(&P, "voice_state %s null", BOT);
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "kicked") >= 0, 10));
  CHECK(!kmk_discord_get_status(d).in_voice);
  dpeer_run_for(&P, 0.5);
  CHECK_EQ_INT(op4_count(from, ""), 0);

  /* /join again; voice close 4014 -> closed, never reconnected */
  from_ev = n_evs;
  dpeer_cmd(&P, "interaction join %s", ALICE);
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "ready") >= 0, 20));
  from_ev = n_evs;
  dpeer_cmd(&P, "voice {\"cmd\":\"close\",\"code\":4014}");
  CHECK(WAIT_UNTIL((i = voice_ev(from_ev, "closed")) >= 0, 20));
  if (i >= 0) CHECK_EQ_INT(cJSON_GetObjectItem(evs[i], "close_code")->valueint, 4014);
  from = P.n;
  dpeer_run_for(&P, 3.0);
  CHECK_EQ_INT(op4_count(from, VOICE_CH), 0);
  CHECK(voice_ev(from_ev, "rejoining") < 0);
  CHECK(!kmk_discord_get_status(d).in_voice);

  /* in voice again for the shutdown check below */
  from_ev = n_evs;
  dpeer_cmd(&P, "interaction join %s", ALICE);
  CHECK(WAIT_UNTIL(voice_ev(from_ev, "ready") >= 0, 20));

  /* a REST 401: fatal, with the token named as the thing to check */
  dpeer_cmd(&P, "rest_fail 401 1");
  dpeer_cmd(&P, "interaction mute %s", ALICE);
  CHECK(WAIT_UNTIL(fatal_called == 1, 20));
  CHECK(strstr(fatal_why, "401") != NULL && strstr(fatal_why, "DISCORD_TOKEN") != NULL);

  /* closing while in voice: the last op 4 (leave) reaches the gateway before the socket drops */
  from = P.n;
  kmk_discord_close(d, closed_cb, NULL);
  CHECK(WAIT_UNTIL(closed_flag, 10));
  CHECK(WAIT_UNTIL(op4_count(from, "") == 1, 5));
  denv_free(agent, log, &cfg);
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf %s", tmp);
  CHECK(system(rm) == 0);
}

int main(void) {
  kmk_log_set_level(getenv("KMK_LOG_LEVEL") ? (kmk_log_level)kmk_log_parse_level(getenv("KMK_LOG_LEVEL"))
                                            : KMK_LOG_WARN);
  uv_loop_init(loop);
  RUN(test_voice_life);
  CHECK_EQ_INT(uv_loop_close(loop), 0);
  for (int i = 0; i < n_evs; i++) cJSON_Delete(evs[i]);
  return check_done();
}
