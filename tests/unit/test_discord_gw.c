/* Unit tests for the Discord gateway's pure parts: frame and payload parsers (real-shaped
 * payloads, wrong types, nulls), close-code rules, close codes from the WebSocket reason text,
 * reconnect backoff and the 120/60 s send limiter with its heartbeat reserve. */
#include <stdlib.h>

#include "check.h"
#include "kameko/discord.h"

static cJSON *parse(const char *s) { return cJSON_Parse(s); }

static void test_frame(void) {
  kmk_dgw_frame f;
  const char *hello = "{\"op\":10,\"d\":{\"heartbeat_interval\":41250},\"s\":null,\"t\":null}";
  CHECK(kmk_dgw_parse_frame(hello, strlen(hello), &f) == 0);
  CHECK_EQ_INT(f.op, 10);
  CHECK_EQ_INT(f.seq, -1);
  CHECK_STR(f.t, "");
  CHECK_NEAR(kmk_dgw_parse_hello(f.d), 41250, 1e-9);
  kmk_dgw_frame_free(&f);

  const char *disp = "{\"op\":0,\"s\":42,\"t\":\"MESSAGE_CREATE\",\"d\":{}}";
  CHECK(kmk_dgw_parse_frame(disp, strlen(disp), &f) == 0);
  CHECK_EQ_INT(f.seq, 42);
  CHECK_STR(f.t, "MESSAGE_CREATE");
  kmk_dgw_frame_free(&f);

  const char *bad[] = {"", "[]", "{\"op\":\"1\"}", "{\"op\":1.5}", "{\"op\":-1}", "{\"d\":1}", "{op:1}", "nul"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK(kmk_dgw_parse_frame(bad[i], strlen(bad[i]), &f) == -1);
    CHECK(f.root == NULL);
  }
  /* hello without a usable interval */
  cJSON *d = parse("{\"heartbeat_interval\":\"41250\"}");
  CHECK(kmk_dgw_parse_hello(d) < 0);
  cJSON_Delete(d);
  d = parse("{\"heartbeat_interval\":0}");
  CHECK(kmk_dgw_parse_hello(d) < 0);
  cJSON_Delete(d);
  CHECK(kmk_dgw_parse_hello(NULL) < 0);
}

static void test_ready(void) {
  cJSON *d = parse("{\"v\":10,\"user\":{\"id\":\"800000000000000001\",\"username\":\"kameko\",\"bot\":true},"
                   "\"session_id\":\"abc\",\"resume_gateway_url\":\"wss://gateway-us-east1-b.discord.gg\","
                   "\"application\":{\"id\":\"800000000000000009\",\"flags\":0},\"guilds\":[]}");
  kmk_dgw_ready r;
  CHECK(kmk_dgw_parse_ready(d, &r) == 0);
  CHECK_STR(r.session_id, "abc");
  CHECK_STR(r.resume_url, "wss://gateway-us-east1-b.discord.gg");
  CHECK_STR(r.user_id, "800000000000000001");
  CHECK_STR(r.app_id, "800000000000000009");
  CHECK_STR(r.user_name, "kameko");
  cJSON_Delete(d);
  /* no application: the bot's user id is its application id; non-digit ids are refused */
  d = parse("{\"user\":{\"id\":\"12\"},\"session_id\":\"s\"}");
  CHECK(kmk_dgw_parse_ready(d, &r) == 0);
  CHECK_STR(r.app_id, "12");
  cJSON_Delete(d);
  d = parse("{\"user\":{\"id\":\"12a\"},\"session_id\":\"s\"}");
  CHECK(kmk_dgw_parse_ready(d, &r) == -1);
  cJSON_Delete(d);
}

static int n_members, n_vs, n_channels;
static char last_name[64];
static void v_member(void *ud, const char *g, const char *u, const char *name, int bot) {
  (void)ud, (void)g, (void)u, (void)bot;
  n_members++;
  snprintf(last_name, sizeof last_name, "%s", name);
}
static void v_vs(void *ud, const kmk_dgw_voice_state *v) {
  (void)ud;
  if (!strcmp(v->guild_id, "1") && v->channel_id[0]) n_vs++;
}
static void v_ch(void *ud, const char *g, const char *c, const char *name, int type) {
  (void)ud, (void)g, (void)c, (void)name;
  if (type == 2) n_channels++;
}

static void test_guild_create(void) {
  cJSON *d = parse("{\"id\":\"1\",\"name\":\"G\",\"members\":[{\"user\":{\"id\":\"5\",\"username\":\"alice\"}},"
                   "{\"user\":{\"id\":\"6\",\"username\":\"bob\",\"global_name\":\"Bobby\"},\"nick\":\"B\"},"
                   "{\"user\":{\"id\":\"x\"}},{\"nouser\":1}],"
                   "\"channels\":[{\"id\":\"10\",\"type\":0,\"name\":\"general\"},{\"id\":\"20\",\"type\":2}],"
                   "\"voice_states\":[{\"user_id\":\"5\",\"channel_id\":\"20\",\"session_id\":\"s5\"},"
                   "{\"user_id\":\"6\",\"channel_id\":null},{\"channel_id\":\"20\"}]}");
  kmk_dgw_guild_visitor vis = {v_member, v_vs, v_ch, NULL};
  char gid[KMK_DGW_ID], name[32];
  CHECK(kmk_dgw_parse_guild(d, gid, name, sizeof name, &vis) == 0);
  CHECK_STR(gid, "1");
  CHECK_STR(name, "G");
  CHECK_EQ_INT(n_members, 2);
  CHECK_STR(last_name, "B"); /* nick wins over global_name and username */
  CHECK_EQ_INT(n_vs, 1);
  CHECK_EQ_INT(n_channels, 1);
  cJSON_Delete(d);
  d = parse("{\"unavailable\":true}");
  CHECK(kmk_dgw_parse_guild(d, gid, NULL, 0, &vis) == -1);
  cJSON_Delete(d);
}

static void test_voice_updates(void) {
  cJSON *d = parse("{\"guild_id\":\"1\",\"channel_id\":null,\"user_id\":\"5\",\"session_id\":\"sess\","
                   "\"member\":{\"user\":{\"id\":\"5\",\"username\":\"alice\"}}}");
  kmk_dgw_voice_state v;
  CHECK(kmk_dgw_parse_voice_state(d, NULL, &v) == 0);
  CHECK_STR(v.guild_id, "1");
  CHECK_STR(v.channel_id, ""); /* null = left */
  CHECK_STR(v.session_id, "sess");
  CHECK_STR(v.name, "alice");
  cJSON_Delete(d);

  kmk_dgw_voice_server s;
  d = parse("{\"token\":\"t0k\",\"guild_id\":\"1\",\"endpoint\":\"us-east1.discord.media:443\"}");
  CHECK(kmk_dgw_parse_voice_server(d, &s) == 0);
  CHECK_STR(s.endpoint, "us-east1.discord.media:443");
  CHECK_STR(s.token, "t0k");
  cJSON_Delete(d);
  d = parse("{\"token\":\"t0k\",\"guild_id\":\"1\",\"endpoint\":null}");
  CHECK(kmk_dgw_parse_voice_server(d, &s) == 0);
  CHECK_STR(s.endpoint, ""); /* null endpoint: wait for the next update */
  cJSON_Delete(d);
  d = parse("{\"token\":\"t\",\"guild_id\":\"1\",\"endpoint\":\"wss://h:1\"}");
  CHECK(kmk_dgw_parse_voice_server(d, &s) == 0);
  CHECK_STR(s.endpoint, "h:1");
  cJSON_Delete(d);
}

static void test_interaction_and_message(void) {
  cJSON *d = parse("{\"id\":\"77\",\"type\":2,\"token\":\"itok\",\"guild_id\":\"1\",\"channel_id\":\"10\","
                   "\"member\":{\"user\":{\"id\":\"5\",\"username\":\"alice\"},\"nick\":null},"
                   "\"data\":{\"name\":\"persona\",\"options\":[{\"name\":\"name\",\"type\":3,\"value\":\"shopkeeper\"}]}}");
  kmk_dgw_interaction it;
  CHECK(kmk_dgw_parse_interaction(d, &it) == 0);
  CHECK_STR(it.command, "persona");
  CHECK_STR(it.option, "shopkeeper");
  CHECK_STR(it.user_id, "5");
  CHECK_STR(it.user_name, "alice");
  CHECK_EQ_INT(it.type, 2);
  cJSON_Delete(d);
  /* a DM interaction: user at top level, no guild */
  d = parse("{\"id\":\"78\",\"type\":2,\"token\":\"t\",\"user\":{\"id\":\"6\",\"username\":\"bob\"},\"data\":{\"name\":\"join\"}}");
  CHECK(kmk_dgw_parse_interaction(d, &it) == 0);
  CHECK_STR(it.user_id, "6");
  CHECK_STR(it.guild_id, "");
  cJSON_Delete(d);
  d = parse("{\"id\":\"79\",\"type\":2,\"data\":{\"name\":\"join\"}}"); /* no token: cannot answer */
  CHECK(kmk_dgw_parse_interaction(d, &it) == -1);
  cJSON_Delete(d);

  kmk_dgw_message m;
  d = parse("{\"guild_id\":\"1\",\"channel_id\":\"10\",\"author\":{\"id\":\"6\",\"username\":\"bob\",\"bot\":false},"
            "\"member\":{\"nick\":\"Bobby\"},\"content\":\"hello\"}");
  CHECK(kmk_dgw_parse_message(d, &m) == 0);
  CHECK_STR(m.author_name, "Bobby");
  CHECK_STR(m.content, "hello");
  CHECK_EQ_INT(m.bot, 0);
  cJSON_Delete(d);
}

static void test_close_rules(void) {
  int resume[] = {0, 1006, 4000, 4001, 4002, 4003, 4005, 4008};
  for (size_t i = 0; i < sizeof resume / sizeof resume[0]; i++)
    CHECK_EQ_INT(kmk_dgw_close_action(resume[i]), KMK_DGW_DO_RESUME);
  CHECK_EQ_INT(kmk_dgw_close_action(4007), KMK_DGW_DO_NEW_SESSION);
  CHECK_EQ_INT(kmk_dgw_close_action(4009), KMK_DGW_DO_NEW_SESSION);
  int fatal[] = {4004, 4010, 4011, 4012, 4013, 4014};
  for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
    CHECK_EQ_INT(kmk_dgw_close_action(fatal[i]), KMK_DGW_DO_FATAL);
  CHECK(strstr(kmk_dgw_close_reason(4004), "DISCORD_TOKEN") != NULL);
  CHECK(strstr(kmk_dgw_close_reason(4014), "MESSAGE_CONTENT") != NULL);
  CHECK_EQ_INT(kmk_dgw_close_code_from_reason("closed 4004 Authentication failed."), 4004);
  CHECK_EQ_INT(kmk_dgw_close_code_from_reason("closed 0"), 0);
  CHECK_EQ_INT(kmk_dgw_close_code_from_reason("stalled"), 0);
  CHECK_EQ_INT(kmk_dgw_close_code_from_reason(NULL), 0);
}

static void test_backoff(void) {
  CHECK_NEAR(kmk_dgw_backoff_ms(1, 0.5), 1000, 1e-6);
  CHECK_NEAR(kmk_dgw_backoff_ms(3, 0.5), 4000, 1e-6);
  CHECK_NEAR(kmk_dgw_backoff_ms(30, 0.5), 60000, 1e-6);
  CHECK(kmk_dgw_backoff_ms(2, 0.0) >= 1600 && kmk_dgw_backoff_ms(2, 0.999) <= 2400);
}

static void test_rate_limit(void) {
  kmk_dgw_rl r;
  kmk_dgw_rl_init(&r, 120, 60000, 3);
  /* 117 ordinary sends in the first second, then ordinary sends wait, heartbeats still go */
  for (int i = 0; i < 117; i++) CHECK(kmk_dgw_rl_take(&r, i * 5.0, 0) == 0);
  double w = kmk_dgw_rl_take(&r, 600, 0);
  CHECK_NEAR(w, 60000 - 600, 1e-6); /* until the first send leaves the window */
  CHECK(kmk_dgw_rl_take(&r, 600, 1) == 0);
  CHECK(kmk_dgw_rl_take(&r, 601, 1) == 0);
  CHECK(kmk_dgw_rl_take(&r, 602, 1) == 0);
  CHECK(kmk_dgw_rl_take(&r, 603, 1) > 0); /* 120 in the window: even heartbeats wait */
  /* after the window slides, sends go again */
  CHECK(kmk_dgw_rl_take(&r, 60000.0 + 1, 0) > 0); /* only the send at 0 left the window */
  CHECK(kmk_dgw_rl_take(&r, 60000.0 + 601, 0) == 0);
  kmk_dgw_rl_reset(&r);
  CHECK(kmk_dgw_rl_take(&r, 700, 0) == 0);
}

int main(void) {
  RUN(test_frame);
  RUN(test_ready);
  RUN(test_guild_create);
  RUN(test_voice_updates);
  RUN(test_interaction_and_message);
  RUN(test_close_rules);
  RUN(test_backoff);
  RUN(test_rate_limit);
  return check_done();
}
