/* End to end, the whole Discord path: the controller (gateway + REST + commands) and the voice
 * connection it creates, against the local peer (tests/peers/discord/peer.js with its voice half
 * voice.js), with an offline agent running the kameko persona.
 *
 * alice asks /join: answered within 3 s, op 4 to her channel, both voice updates, the voice
 * connection gets ready. alice and bob join the call (names come from GUILD_CREATE through the
 * controller); the persona greets. alice talks to bob (flite speech, Opus-encoded by the engine):
 * transcribed, a decision not to speak, no new bot utterance. bob addresses the persona: the peer
 * decrypts the bot's RTP and writes the reply's Opus packets; the test decodes them and asserts a
 * non-silent reply with seq/timestamp/nonce steps right, 5 silence frames at the end and 20 ms
 * pacing (mean interval within 1 ms of 20 ms, p99 deviation <= 60 ms: the bound holds under ASan on
 * a loaded 2-core machine; bench/ has the real figures). /leave closes the voice
 * connection and sends op 4 with a null channel. The whole run is repeated with DAVE (protocol
 * version 1, the users being @snazzah/davey clients of the peer; skipped without davey). Every
 * handle is closed (uv_loop_close == 0).
 * Prints "skipped" and passes without node / the peer's node_modules.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kameko/agent.h"
#include "kameko/discord.h"
#include "kameko/eventlog.h"
#include "kameko/log.h"
#include "kameko/opus.h"
#include "kameko/out.h"
#include "test_discord_env.h"
#include "test_personas_util.h"
#include "test_packet_file.h"

#define TOKEN "test.bot.TOKEN_SECRET_conv_0123456789"
#define ALICE "700000000000000001"
#define BOB "700000000000000002"
#define VOICE_CH "900000000000000020"
#define ALICE_LINE "hello bob did you see the game last night"
#define BOB_LINE "kameko what is your name"

static char tmpdir[64];

static int decision_for(int from, const char *to) {
  for (int i = from; i < n_evs; i++)
    if (ptype(evs[i], "decision") && !strcmp(pstr(evs[i], "to"), to) &&
        !strcmp(pstr(evs[i], "trigger"), "transcript"))
      return i;
  return -1;
}

static void check_reply(const cJSON *u) {
  int n = 0;
  double rms = packets_rms(pstr(u, "file"), &n);
  double packets = pnum(u, "packets"), span = pnum(u, "span_ms");
  double mean = packets > 1 ? span / (packets - 1) : 0;
  printf("reply: %d packets (%d voiced, %d silence at the end), rms %.0f, interval mean %.3f ms, "
         "deviation p50 %.2f p99 %.2f max %.2f ms\n",
         n, (int)pnum(u, "voiced"), (int)pnum(u, "silence_tail"), rms, mean, pnum(u, "gap_p50"),
         pnum(u, "gap_p99"), pnum(u, "gap_max"));
  CHECK_EQ_INT(n, (int)packets);
  CHECK(pnum(u, "voiced") >= 25);
  CHECK_EQ_INT((int)pnum(u, "silence_tail"), 5);
  CHECK(rms > 300);
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(u, "seq_ok")));
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(u, "ts_ok")));
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(u, "nonce_ok")));
  CHECK(fabs(mean - 20.0) < 1.0);
  CHECK(pnum(u, "gap_p99") <= 60.0); /* stated jitter bound on a loaded 2-core machine (ASan) */
}

static void run_conversation(int dave) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kmk-dconv-XXXXXX");
  if (!mkdtemp(tmpdir)) return;
  n_evs = 0;
  char alice[300], bob[300], path[300], err[256];
  snprintf(alice, sizeof alice, "%s/alice.pkt", tmpdir);
  snprintf(bob, sizeof bob, "%s/bob.pkt", tmpdir);
  CHECK(write_packets(alice, "slt", ALICE_LINE) == 0);
  CHECK(write_packets(bob, "kal16", BOB_LINE) == 0);

  /* without DAVE the list ends at the NULL: users join the call by command instead */
  const char *extra[] = {"--heartbeat-ms", "1000", "--voice-out", tmpdir, "--voice-hb", "500",
                         dave ? "--voice-dave" : NULL, "1", "--voice-users", ALICE "," BOB, NULL};
  if (!dpeer_start(&P, loop, TOKEN, extra)) return;
  kmk_config cfg;
  denv_config(&cfg, TOKEN);

  snprintf(path, sizeof path, "%s/events.jsonl", tmpdir);
  kmk_eventlog *log = kmk_eventlog_open(path, err, sizeof err);
  CHECK(log != NULL);
  kmk_agent *agent = denv_agent(log, &cfg, err, sizeof err);
  kmk_discord_opts o = {.loop = loop, .config = &cfg, .log = log, .agent = agent,
                        .persona_dir = KMK_SOURCE_DIR "/personas", .max_dave_version = dave,
                        .now = clock_s};
  kmk_discord *d = agent ? kmk_discord_new(&o, err, sizeof err) : NULL;
  CHECK(d != NULL);
  if (!d) {
    fprintf(stderr, "discord: %s\n", err);
    dpeer_stop(&P);
    return;
  }
  CHECK(WAIT_UNTIL(ev_find(0, "discord_commands", NULL, NULL) >= 0, 20));

  /* /join: answered within 3 s; the voice connection gets ready */
  int from = P.n, i = -1;
  dpeer_cmd(&P, "interaction join %s", ALICE);
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, from, "interaction_response", NULL, NULL)) >= 0, 10));
  if (i >= 0) {
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(P.rec[i], "ok")));
    CHECK(dpeer_num(P.rec[i], "ms") < 3000);
    printf("/join answered in %.0f ms\n", dpeer_num(P.rec[i], "ms"));
  }
  CHECK(WAIT_UNTIL(ev_find(0, "discord_voice", "state", "ready") >= 0, 20));
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, 0, "v.identify", NULL, NULL)) >= 0, 5));
  if (i >= 0) CHECK(cJSON_IsTrue(cJSON_GetObjectItem(P.rec[i], "ok")));

  if (dave) { /* the MLS group forms (the users were in the call before the bot) */
    CHECK(WAIT_UNTIL((i = dpeer_find(&P, 0, "v.dave_ready", NULL, NULL)) >= 0, 30));
    if (i >= 0) printf("DAVE ready: voice privacy code %s\n", dpeer_str(P.rec[i], "code"));
    CHECK_EQ_INT(dpeer_count(&P, 0, "v.dave_error"), 0);
  } else { /* both join the call */
    dpeer_cmd(&P, "voice {\"cmd\":\"join\",\"user\":\"%s\"}", ALICE);
    dpeer_cmd(&P, "voice {\"cmd\":\"join\",\"user\":\"%s\"}", BOB);
  }
  /* the speakers are named from the guild's member list; the persona greets */
  CHECK(WAIT_UNTIL(ev_find(0, "join", "speaker", "alice") >= 0, 10));
  CHECK(WAIT_UNTIL(ev_find(0, "join", "speaker", "bob") >= 0, 10));
  CHECK(WAIT_UNTIL(dpeer_find(&P, 0, "v.utterance", NULL, NULL) >= 0, 90));

  /* alice talks to bob: heard, not answered */
  dpeer_cmd(&P, "voice {\"cmd\":\"play\",\"user\":\"%s\",\"file\":\"%s\"}", ALICE, alice);
  CHECK(WAIT_UNTIL((i = ev_find(0, "transcript", "speaker", "alice")) >= 0, 60));
  int ad = -1;
  if (i >= 0) {
    printf("alice heard: \"%s\"\n", pstr(evs[i], "text"));
    CHECK(WAIT_UNTIL((ad = decision_for(i, "alice")) >= 0, 30));
  }
  if (ad >= 0) CHECK(cJSON_IsFalse(cJSON_GetObjectItem(evs[ad], "should_speak")));
  dpeer_run_for(&P, 1.0);
  CHECK_EQ_INT(dpeer_count(&P, 0, "v.utterance"), 1); /* only the greeting so far */

  /* bob addresses the persona: the reply comes back as RTP, decrypted by the peer */
  from = P.n;
  dpeer_cmd(&P, "voice {\"cmd\":\"play\",\"user\":\"%s\",\"file\":\"%s\"}", BOB, bob);
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, from, "v.utterance", NULL, NULL)) >= 0, 90));
  if (i >= 0) check_reply(P.rec[i]);
  if (i >= 0 && dave) CHECK_EQ_INT((int)dpeer_num(P.rec[i], "dave_failed"), 0);
  int bt = ev_find(0, "transcript", "speaker", "bob");
  CHECK(bt >= 0);
  if (bt >= 0) printf("bob heard: \"%s\"\n", pstr(evs[bt], "text"));
  int bd = bt >= 0 ? decision_for(bt, "bob") : -1;
  CHECK(bd >= 0);
  if (bd >= 0) CHECK(cJSON_IsTrue(cJSON_GetObjectItem(evs[bd], "should_speak")));
  CHECK_EQ_INT(dpeer_count(&P, 0, "v.bad_bot_packet"), 0);

  /* /leave: the voice connection closes, op 4 with a null channel */
  from = P.n;
  dpeer_cmd(&P, "interaction leave %s", BOB);
  CHECK(WAIT_UNTIL(ev_find(0, "discord_voice", "state", "left") >= 0, 10));
  CHECK(WAIT_UNTIL((i = dpeer_find(&P, from, "voice_state", NULL, NULL)) >= 0, 10));
  if (i >= 0) CHECK(cJSON_IsNull(cJSON_GetObjectItem(P.rec[i], "channel_id")));
  CHECK(WAIT_UNTIL(ev_find(0, "leave", "speaker", "alice") >= 0, 10));
  CHECK(WAIT_UNTIL(dpeer_find(&P, from, "interaction_response", NULL, NULL) >= 0, 10));

  kmk_discord_close(d, closed_cb, NULL);
  CHECK(WAIT_UNTIL(closed_flag, 10));
  denv_free(agent, log, &cfg);
  for (int k = 0; k < n_evs; k++) cJSON_Delete(evs[k]);
  n_evs = 0;
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf %s", tmpdir);
  CHECK(system(rm) == 0);
}

static void test_conversation(void) { run_conversation(0); }

/* The same through DAVE (protocol version 1, what Discord requires): the users are @snazzah/davey
   clients of the peer; their speech is DAVE-encrypted and the bot's reply must decrypt. */
static void test_conversation_dave(void) {
  if (access(KMK_SOURCE_DIR "/tests/peers/discord/node_modules/@snazzah/davey", R_OK) != 0) {
    printf("DAVE: skipped (no @snazzah/davey)\n");
    return;
  }
  run_conversation(1);
}

int main(void) {
  kmk_log_set_level(getenv("KMK_LOG_LEVEL") ? (kmk_log_level)kmk_log_parse_level(getenv("KMK_LOG_LEVEL"))
                                            : KMK_LOG_WARN);
  uv_loop_init(loop);
  RUN(test_conversation);
  RUN(test_conversation_dave);
  CHECK_EQ_INT(uv_loop_close(loop), 0);
  return check_done();
}
