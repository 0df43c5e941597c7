/* fuzz_discord_gw.c - libFuzzer target for Discord gateway payloads: kmk_dgw_parse_frame on any
 * bytes, then every payload parser (hello, READY, GUILD_CREATE with its visitor, voice state,
 * voice server, interaction, message) on the frame's d whatever its op; and the REST side's
 * route key and 429 body parsing on the same bytes. No crash, no leak; parsed ids are digits. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/discord.h"
#include "kameko/log.h"

static void check_id(const char *s) {
  if (strlen(s) >= KMK_DGW_ID) abort();
  for (; *s; s++)
    if (*s < '0' || *s > '9') abort();
}

static void member(void *ud, const char *g, const char *u, const char *name, int bot) {
  (void)ud, (void)name, (void)bot;
  check_id(g);
  check_id(u);
}
static void vstate(void *ud, const kmk_dgw_voice_state *v) {
  (void)ud;
  check_id(v->user_id);
  check_id(v->channel_id);
}
static void channel(void *ud, const char *g, const char *c, const char *name, int type) {
  (void)ud, (void)g, (void)name, (void)type;
  check_id(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    kmk_log_set_level(KMK_LOG_ERROR);
    quiet = 1;
  }
  kmk_dgw_frame f;
  if (kmk_dgw_parse_frame((const char *)data, size, &f) == 0) {
    if (f.op < 0 || f.op > 64 || strlen(f.t) >= sizeof f.t) abort();
    kmk_dgw_parse_hello(f.d);
    kmk_dgw_ready r;
    if (kmk_dgw_parse_ready(f.d, &r) == 0) {
      check_id(r.user_id);
      check_id(r.app_id);
    }
    char gid[KMK_DGW_ID], name[64];
    kmk_dgw_guild_visitor vis = {member, vstate, channel, NULL};
    if (kmk_dgw_parse_guild(f.d, gid, name, sizeof name, &vis) == 0) check_id(gid);
    kmk_dgw_voice_state v;
    kmk_dgw_parse_voice_state(f.d, NULL, &v);
    kmk_dgw_voice_server s;
    kmk_dgw_parse_voice_server(f.d, &s);
    kmk_dgw_interaction it;
    if (kmk_dgw_parse_interaction(f.d, &it) == 0) check_id(it.id);
    kmk_dgw_message m;
    kmk_dgw_parse_message(f.d, &m);
    kmk_dgw_frame_free(&f);
  }
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;
  char key[96];
  kmk_drest_route_key("GET", s, key, sizeof key);
  if (strlen(key) >= sizeof key) abort();
  kmk_drest_limits l;
  kmk_drest_limits_init(&l);
  double ms = kmk_drest_limits_429(&l, key, s, s, s, 0);
  if (!(ms >= 0 && ms <= 3600e3)) abort();
  kmk_dgw_close_code_from_reason(s);
  free(s);
  return 0;
}
