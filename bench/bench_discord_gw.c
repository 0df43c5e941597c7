/* bench_discord_gw.c - Discord gateway/REST figures (pure functions, one core, no network):
 *
 * 1. Gateway payload parsing: frame parse + the payload parser for a GUILD_CREATE of a large guild
 *    (N members, N/5 voice states, 50 channels, visited like the controller does), a
 *    VOICE_STATE_UPDATE, an INTERACTION_CREATE and a MESSAGE_CREATE. Prints µs per payload.
 * 2. REST bookkeeping: route key + bucket lookup per call with 64 routes in the table.
 * Usage: bench_discord_gw [members, default 5000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kameko/discord.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *guild_json(int members) {
  size_t cap = (size_t)members * 200 + 10000, n = 0;
  char *s = malloc(cap);
  n += (size_t)snprintf(s + n, cap - n, "{\"op\":0,\"s\":2,\"t\":\"GUILD_CREATE\",\"d\":{\"id\":\"900000000000000001\","
                                        "\"name\":\"big\",\"channels\":[");
  for (int i = 0; i < 50; i++)
    n += (size_t)snprintf(s + n, cap - n, "%s{\"id\":\"9100000000000%05d\",\"type\":%d,\"name\":\"ch%d\"}",
                          i ? "," : "", i, i % 5 == 0 ? 2 : 0, i);
  n += (size_t)snprintf(s + n, cap - n, "],\"members\":[");
  for (int i = 0; i < members; i++)
    n += (size_t)snprintf(s + n, cap - n,
                          "%s{\"user\":{\"id\":\"7000000000%08d\",\"username\":\"user%d\",\"global_name\":\"User %d\"},"
                          "\"nick\":null,\"roles\":[]}",
                          i ? "," : "", i, i, i);
  n += (size_t)snprintf(s + n, cap - n, "],\"voice_states\":[");
  for (int i = 0; i < members / 5; i++)
    n += (size_t)snprintf(s + n, cap - n,
                          "%s{\"user_id\":\"7000000000%08d\",\"channel_id\":\"910000000000000%02d\",\"session_id\":\"s%d\"}",
                          i ? "," : "", i, (i % 10) * 5, i);
  snprintf(s + n, cap - n, "]}}");
  return s;
}

static long visited;
static void v_member(void *ud, const char *g, const char *u, const char *n, int b) {
  (void)ud, (void)g, (void)u, (void)n, (void)b;
  visited++;
}
static void v_vs(void *ud, const kmk_dgw_voice_state *v) {
  (void)ud, (void)v;
  visited++;
}

static double bench_payload(const char *name, const char *json, int iters) {
  size_t len = strlen(json);
  double t0 = now_s();
  for (int i = 0; i < iters; i++) {
    kmk_dgw_frame f;
    if (kmk_dgw_parse_frame(json, len, &f) != 0) {
      fprintf(stderr, "%s: parse failed\n", name);
      exit(1);
    }
    if (!strcmp(f.t, "GUILD_CREATE")) {
      char gid[KMK_DGW_ID];
      kmk_dgw_guild_visitor vis = {v_member, v_vs, NULL, NULL};
      kmk_dgw_parse_guild(f.d, gid, NULL, 0, &vis);
    } else if (!strcmp(f.t, "VOICE_STATE_UPDATE")) {
      kmk_dgw_voice_state v;
      kmk_dgw_parse_voice_state(f.d, NULL, &v);
    } else if (!strcmp(f.t, "INTERACTION_CREATE")) {
      kmk_dgw_interaction it;
      kmk_dgw_parse_interaction(f.d, &it);
    } else {
      kmk_dgw_message m;
      kmk_dgw_parse_message(f.d, &m);
    }
    kmk_dgw_frame_free(&f);
  }
  double us = (now_s() - t0) / iters * 1e6;
  printf("  %-22s %8zu bytes  %10.2f us/payload  (%.1f MB/s)\n", name, len, us, len / us);
  return us;
}

int main(int argc, char **argv) {
  int members = argc > 1 ? atoi(argv[1]) : 5000;
  if (members < 1) members = 1;
  printf("gateway payload parsing (frame + payload parser, one core):\n");
  char *g = guild_json(members);
  char label[64];
  snprintf(label, sizeof label, "GUILD_CREATE %d mbr", members);
  bench_payload(label, g, 20);
  free(g);
  bench_payload("VOICE_STATE_UPDATE",
                "{\"op\":0,\"s\":9,\"t\":\"VOICE_STATE_UPDATE\",\"d\":{\"guild_id\":\"900000000000000001\","
                "\"channel_id\":\"900000000000000020\",\"user_id\":\"700000000000000001\",\"session_id\":\"abc\","
                "\"deaf\":false,\"mute\":false,\"self_deaf\":false,\"self_mute\":false,\"member\":{\"user\":"
                "{\"id\":\"700000000000000001\",\"username\":\"alice\"},\"roles\":[]}}}",
                200000);
  bench_payload("INTERACTION_CREATE",
                "{\"op\":0,\"s\":10,\"t\":\"INTERACTION_CREATE\",\"d\":{\"id\":\"500000000000000001\",\"type\":2,"
                "\"token\":\"aW50ZXJhY3Rpb246NTAwMDAwMDAwMDAwMDAwMDAxOnNlY3JldHRva2VuMTIzNDU2Nzg5MA\","
                "\"guild_id\":\"900000000000000001\",\"channel_id\":\"900000000000000010\",\"member\":{\"user\":"
                "{\"id\":\"700000000000000001\",\"username\":\"alice\"},\"roles\":[]},\"data\":{\"id\":\"1\","
                "\"name\":\"persona\",\"type\":1,\"options\":[{\"name\":\"name\",\"type\":3,\"value\":\"shopkeeper\"}]}}}",
                200000);
  bench_payload("MESSAGE_CREATE",
                "{\"op\":0,\"s\":11,\"t\":\"MESSAGE_CREATE\",\"d\":{\"id\":\"1\",\"guild_id\":\"900000000000000001\","
                "\"channel_id\":\"900000000000000010\",\"author\":{\"id\":\"700000000000000002\",\"username\":\"bob\"},"
                "\"content\":\"kameko what do you think about the weather today\",\"type\":0}}",
                200000);
  printf("  (%ld members/voice states visited)\n", visited);

  printf("REST rate-limit bookkeeping (route key + bucket lookup, 64 routes in the table):\n");
  kmk_drest_limits l;
  kmk_drest_limits_init(&l);
  char path[128], key[96];
  for (int i = 0; i < KMK_DREST_BUCKETS; i++) {
    snprintf(path, sizeof path, "/channels/9000000000000%05d/messages", i);
    kmk_drest_route_key("POST", path, key, sizeof key);
    kmk_drest_limits_update(&l, key, "abc", "1000000", "1", 0);
  }
  int iters = 1000000;
  double t0 = now_s();
  for (int i = 0; i < iters; i++) {
    snprintf(path, sizeof path, "/channels/9000000000000%05d/messages", i % KMK_DREST_BUCKETS);
    kmk_drest_route_key("POST", path, key, sizeof key);
    kmk_drest_limits_delay(&l, key, 1);
  }
  printf("  %.3f us per call\n", (now_s() - t0) / iters * 1e6);
  return 0;
}
