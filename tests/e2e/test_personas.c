/* Several personas in one room, through the real replay pipeline (--fast, deterministic): the
 * shipped Kameko, "Echo" (answers every line, never called by name) and "Shy" (policy.yield: speaks
 * only when nobody else wants the floor). Alice talks to Bob; Bob calls Kameko by name. Asserts:
 * every decision names its persona; Kameko answers Bob (addressed_me) and Echo's reply to the same
 * line is dropped as "not addressed"; Shy always yields; Echo answers Alice; no two voices overlap
 * (audio_out_start/end intervals) and no voice starts while a person is speaking.
 * Second run: the three shipped personas (Kameko, Marta the shopkeeper, Warden the moderator);
 * Carl asks Marta what she sells, Dora insults someone: Marta answers Carl with her stock, Warden
 * warns Dora and says nothing else, Kameko stays out of both; a greeting that waited while Carl
 * spoke is dropped as stale; Erin asks Marta about rope in the text chat and gets a spoken price;
 * no overlap.
 */
#include <sys/stat.h>

#include "test_personas_util.h"

static char tmpdir[256], alice_wav[300], bob_wav[300], echo_lua[300], shy_lua[300], outdir[300],
    carl_wav[300], dora_wav[300], outdir2[300], bold_lua[300], outdir3[300];

static const char *ECHO =
    "return {\n"
    "  name = \"Echo\", languages = {\"en\"}, wake_words = {\"echo\"},\n"
    "  voices = {en = {engine = \"flite\", voice = \"kal16\"}},\n"
    "  rules = function(ctx)\n"
    "    if ctx.kind == \"say\" then return \"I heard you, \" .. ctx.speaker .. \".\" end\n"
    "  end,\n"
    "}\n";
static const char *SHY =
    "return {\n"
    "  name = \"Shy\", languages = {\"en\"}, wake_words = {\"shy\"},\n"
    "  voices = {en = {engine = \"flite\", voice = \"slt\"}},\n"
    "  policy = {yield = true},\n"
    "  rules = function(ctx)\n"
    "    if ctx.kind == \"say\" then return \"Sorry, may I add something?\" end\n"
    "  end,\n"
    "}\n";

/* policy.may_interrupt: Bold cuts in as soon as someone starts talking, and a person starting
   to talk does not cut Bold off. */
static const char *BOLD =
    "return {\n"
    "  name = \"Bold\", languages = {\"en\"}, wake_words = {\"bold\"},\n"
    "  voices = {en = {engine = \"flite\", voice = \"kal16\"}},\n"
    "  policy = {may_interrupt = true},\n"
    "  on_event = function(ev, ctx)\n"
    "    if ev.type == \"speech_start\" then\n"
    "      return \"Hold on, \" .. ev.speaker .. \". Before you go on, I have a rather long \" ..\n"
    "        \"announcement to make, and I will finish it whoever else starts talking.\"\n"
    "    end\n"
    "  end,\n"
    "}\n";

static void test_may_interrupt(void) {
  CHECK_EQ_INT(write_file_inplace(bold_lua, BOLD), 0);
  kmk_replay_track tracks[] = {{"alice", alice_wav, 0.0}, {"bob", bob_wav, 0.0}};
  const char *personas[] = {bold_lua};
  kmk_replay_opts o = {.tracks = tracks, .n_tracks = 2, .out_dir = outdir3, .fast = 1,
                       .persona_paths = personas, .n_personas = 1,
};
  CHECK_EQ_INT(replay_offline(&o), 0);
  pevents e;
  pevents_load(outdir3, &e);
  int humans = 0, started_over_human = 0, spoke_while_bob_started = 0, talking = 0, ends = 0;
  for (int i = 0; i < e.n; i++) {
    const cJSON *ev = e.ev[i];
    const char *sp = pstr(ev, "speaker");
    if (ptype(ev, "speech_start")) {
      humans++;
      if (talking && strcmp(sp, "bob") == 0) spoke_while_bob_started++;
    } else if (ptype(ev, "speech_end")) {
      humans--;
    } else if (ptype(ev, "audio_out_start")) {
      printf("%6.2f %s says \"%s\" (%d speaking)\n", pnum(ev, "t"), sp, pstr(ev, "text"), humans);
      if (humans > 0) started_over_human++;
      talking = 1;
    } else if (ptype(ev, "audio_out_end")) {
      CHECK_STR(pstr(ev, "reason"), "done");
      talking = 0;
      ends++;
    }
    CHECK(!ptype(ev, "interrupted"));
  }
  CHECK(started_over_human >= 1);       /* it cut in while alice was talking */
  CHECK_EQ_INT(spoke_while_bob_started, 1); /* bob started during its speech: not cut off */
  CHECK(ends >= 1);
  check_no_overlap(&e);
  pevents_free(&e);
}

static void test_three_personas_share_the_floor(void) {
  CHECK_EQ_INT(write_file_inplace(echo_lua, ECHO), 0);
  CHECK_EQ_INT(write_file_inplace(shy_lua, SHY), 0);
  kmk_replay_track tracks[] = {{"alice", alice_wav, 0.0}, {"bob", bob_wav, 0.0}};
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua", echo_lua, shy_lua};
  kmk_replay_opts o = {.tracks = tracks, .n_tracks = 2, .out_dir = outdir, .fast = 1,
                       .persona_paths = personas, .n_personas = 3,
};
  CHECK_EQ_INT(replay_offline(&o), 0);

  pevents e;
  pevents_load(outdir, &e);
  int kameko_answered_bob = 0, echo_dropped_for_bob = 0, echo_answered_alice = 0, shy_spoke = 0,
      shy_yielded = 0, humans = 0;
  char kameko_reply[512] = "";
  for (int i = 0; i < e.n; i++) {
    const cJSON *ev = e.ev[i];
    const char *sp = pstr(ev, "speaker");
    if (ptype(ev, "decision")) {
      const char *p = pstr(ev, "persona");
      CHECK(strcmp(p, "Kameko") == 0 || strcmp(p, "Echo") == 0 || strcmp(p, "Shy") == 0);
      CHECK_STR(sp, p);
      int speak = cJSON_IsTrue(cJSON_GetObjectItem(ev, "should_speak"));
      if (strcmp(p, "Kameko") == 0 && strcmp(pstr(ev, "to"), "bob") == 0 &&
          strcmp(pstr(ev, "trigger"), "transcript") == 0 && speak) {
        kameko_answered_bob++;
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(ev, "addressed_me")));
        snprintf(kameko_reply, sizeof kameko_reply, "%s", pstr(ev, "response"));
      }
    } else if (ptype(ev, "reply_dropped")) {
      printf("dropped: %s \"%s\" (%s)\n", sp, pstr(ev, "response"), pstr(ev, "reason"));
      if (strcmp(sp, "Echo") == 0 && strstr(pstr(ev, "response"), "bob") &&
          strstr(pstr(ev, "reason"), "not addressed"))
        echo_dropped_for_bob++;
      if (strcmp(sp, "Shy") == 0) shy_yielded++;
    } else if (ptype(ev, "audio_out_start")) {
      printf("%6.2f %s says \"%s\"\n", pnum(ev, "t"), sp, pstr(ev, "text"));
      CHECK_EQ_INT(humans, 0); /* nobody starts while a person speaks */
      if (strcmp(sp, "Kameko") == 0 && strcmp(pstr(ev, "text"), kameko_reply) == 0 &&
          kameko_reply[0])
        kameko_answered_bob++;
      if (strcmp(sp, "Echo") == 0 && strstr(pstr(ev, "text"), "alice")) echo_answered_alice++;
      if (strcmp(sp, "Shy") == 0) shy_spoke++;
    } else if (ptype(ev, "speech_start")) {
      humans++;
    } else if (ptype(ev, "speech_end")) {
      humans--;
    }
  }
  CHECK_EQ_INT(kameko_answered_bob, 2); /* decided, and its audio went out */
  CHECK_EQ_INT(echo_dropped_for_bob, 1);
  CHECK(echo_answered_alice >= 1);
  CHECK_EQ_INT(shy_spoke, 0);
  CHECK(shy_yielded >= 2);
  CHECK(check_no_overlap(&e) >= 2);
  pevents_free(&e);
}

static void test_shipped_personas(void) {
  kmk_replay_track tracks[] = {{"carl", carl_wav, 0.0}, {"dora", dora_wav, 0.0}};
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua",
                            KMK_SOURCE_DIR "/personas/shopkeeper.lua",
                            KMK_SOURCE_DIR "/personas/moderator.lua"};
  kmk_replay_chat chats[] = {{"erin", "Marta, how much is the rope?", 14.0}};
  kmk_replay_opts o = {.tracks = tracks, .n_tracks = 2, .out_dir = outdir2, .fast = 1,
                       .persona_paths = personas, .n_personas = 3,
                       .chats = chats, .n_chats = 1};
  CHECK_EQ_INT(replay_offline(&o), 0);
  pevents e;
  pevents_load(outdir2, &e);
  int marta_stock = 0, warden_warned = 0, warden_other = 0, kameko_transcript = 0, stale = 0,
      chat = 0, marta_rope = 0;
  for (int i = 0; i < e.n; i++) {
    const cJSON *ev = e.ev[i];
    const char *sp = pstr(ev, "speaker");
    if (ptype(ev, "transcript")) printf("%6.2f %s: \"%s\"\n", pnum(ev, "t"), sp, pstr(ev, "text"));
    if (ptype(ev, "decision") && strcmp(sp, "Kameko") == 0 &&
        strcmp(pstr(ev, "trigger"), "transcript") == 0 &&
        cJSON_IsTrue(cJSON_GetObjectItem(ev, "should_speak")))
      kameko_transcript++;
    if (ptype(ev, "reply_dropped") && strstr(pstr(ev, "reason"), "stale")) stale++;
    if (ptype(ev, "chat") && strcmp(sp, "erin") == 0) chat++;
    if (!ptype(ev, "audio_out_start")) continue;
    printf("%6.2f %s says \"%s\"\n", pnum(ev, "t"), sp, pstr(ev, "text"));
    if (strcmp(sp, "Marta") == 0 && strstr(pstr(ev, "text"), "swords at 50 gold")) marta_stock++;
    if (strcmp(sp, "Marta") == 0 && strstr(pstr(ev, "text"), "The rope is 5 gold")) marta_rope++;
    if (strcmp(sp, "Warden") == 0) {
      if (strstr(pstr(ev, "text"), "dora, please keep it civil")) warden_warned++;
      else warden_other++;
    }
  }
  CHECK_EQ_INT(marta_stock, 1);
  CHECK_EQ_INT(warden_warned, 1);
  CHECK_EQ_INT(warden_other, 0);
  CHECK_EQ_INT(kameko_transcript, 0);
  CHECK(stale >= 1);
  CHECK_EQ_INT(chat, 1);
  CHECK_EQ_INT(marta_rope, 1);
  check_no_overlap(&e);
  pevents_free(&e);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kmk_personas_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  snprintf(alice_wav, sizeof alice_wav, "%s/alice.wav", tmpdir);
  snprintf(bob_wav, sizeof bob_wav, "%s/bob.wav", tmpdir);
  snprintf(echo_lua, sizeof echo_lua, "%s/echo.lua", tmpdir);
  snprintf(shy_lua, sizeof shy_lua, "%s/shy.lua", tmpdir);
  snprintf(outdir, sizeof outdir, "%s/out", tmpdir);
  snprintf(outdir2, sizeof outdir2, "%s/out2", tmpdir);
  snprintf(bold_lua, sizeof bold_lua, "%s/bold.lua", tmpdir);
  snprintf(outdir3, sizeof outdir3, "%s/out3", tmpdir);
  snprintf(carl_wav, sizeof carl_wav, "%s/carl.wav", tmpdir);
  snprintf(dora_wav, sizeof dora_wav, "%s/dora.wav", tmpdir);
  pbuf a = {0}, b = {0};
  pbuf_silence(&a, 6.0);
  pbuf_silence(&b, 12.0);
  int rc = pbuf_say(&a, "slt", "Hello Bob. Did you see the game last night?");
  if (rc == 0) rc = pbuf_say(&b, "kal16", "Kameko, what is your name?");
  pbuf_silence(&a, 1.0);
  pbuf_silence(&b, 5.0);
  if (rc == 0) rc = kmk_wav_write_s16(alice_wav, a.pcm, a.n, 16000, 1);
  if (rc == 0) rc = kmk_wav_write_s16(bob_wav, b.pcm, b.n, 16000, 1);
  free(a.pcm);
  free(b.pcm);
  /* Carl asks Marta at 3 s; Dora insults at 10 s */
  pbuf c = {0}, d = {0};
  pbuf_silence(&c, 3.0);
  pbuf_silence(&d, 10.0);
  if (rc == 0) rc = pbuf_say(&c, "kal16", "Marta, what do you sell?");
  if (rc == 0) rc = pbuf_say(&d, "slt", "You are an idiot.");
  pbuf_silence(&c, 8.0);
  pbuf_silence(&d, 3.0);
  if (rc == 0) rc = kmk_wav_write_s16(carl_wav, c.pcm, c.n, 16000, 1);
  if (rc == 0) rc = kmk_wav_write_s16(dora_wav, d.pcm, d.n, 16000, 1);
  free(c.pcm);
  free(d.pcm);
  if (rc != 0) {
    fprintf(stderr, "cannot synthesize the test tracks\n");
    return 1;
  }
  RUN(test_three_personas_share_the_floor);
  RUN(test_shipped_personas);
  RUN(test_may_interrupt);
  remove_output(tmpdir);
  return check_done();
}
