/* discord_gw_parse.c - pure parts of the Discord gateway: payload parsers (frame, hello, READY,
 * GUILD_CREATE, VOICE_STATE_UPDATE, VOICE_SERVER_UPDATE, INTERACTION_CREATE, MESSAGE_CREATE),
 * close-code rules, reconnect backoff and the send rate limiter. No I/O; any thread.
 * Every parser accepts any bytes (fuzzed by tests/fuzz/fuzz_discord_gw.c): wrong types are
 * treated as absent, strings are truncated to their fields.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/discord.h"

static void copy_str(char *dst, size_t n, const cJSON *item) {
  dst[0] = 0;
  if (cJSON_IsString(item) && item->valuestring) snprintf(dst, n, "%s", item->valuestring);
}

/* Snowflakes arrive as strings; accept integral numbers too. Digits only. */
static void copy_id(char dst[KMK_DGW_ID], const cJSON *item) {
  dst[0] = 0;
  if (cJSON_IsString(item) && item->valuestring) {
    const char *s = item->valuestring;
    size_t n = strlen(s);
    if (n == 0 || n >= KMK_DGW_ID) return;
    for (size_t i = 0; i < n; i++)
      if (s[i] < '0' || s[i] > '9') return;
    memcpy(dst, s, n + 1);
  } else if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble < 9e15 &&
             item->valuedouble == floor(item->valuedouble)) {
    snprintf(dst, KMK_DGW_ID, "%.0f", item->valuedouble);
    if (dst[0] < '0' || dst[0] > '9') dst[0] = 0; /* -0 prints as "-0" */
  }
}

static const cJSON *get(const cJSON *o, const char *k) {
  return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

int kmk_dgw_parse_frame(const char *buf, size_t len, kmk_dgw_frame *f) {
  memset(f, 0, sizeof *f);
  f->seq = -1;
  if (!buf) return -1;
  cJSON *root = cJSON_ParseWithLength(buf, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return -1;
  }
  const cJSON *op = get(root, "op");
  if (!cJSON_IsNumber(op) || op->valuedouble < 0 || op->valuedouble > 64 ||
      op->valuedouble != floor(op->valuedouble)) {
    cJSON_Delete(root);
    return -1;
  }
  f->op = (int)op->valuedouble;
  const cJSON *s = get(root, "s");
  if (cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble < 9e15) f->seq = (int64_t)s->valuedouble;
  copy_str(f->t, sizeof f->t, get(root, "t"));
  f->d = get(root, "d");
  f->root = root;
  return 0;
}

void kmk_dgw_frame_free(kmk_dgw_frame *f) {
  if (!f) return;
  cJSON_Delete(f->root);
  f->root = NULL;
  f->d = NULL;
}

double kmk_dgw_parse_hello(const cJSON *d) {
  const cJSON *hb = get(d, "heartbeat_interval");
  if (!cJSON_IsNumber(hb) || !(hb->valuedouble > 0) || hb->valuedouble > 3600e3) return -1;
  return hb->valuedouble;
}

int kmk_dgw_parse_ready(const cJSON *d, kmk_dgw_ready *r) {
  memset(r, 0, sizeof *r);
  copy_str(r->session_id, sizeof r->session_id, get(d, "session_id"));
  copy_str(r->resume_url, sizeof r->resume_url, get(d, "resume_gateway_url"));
  const cJSON *user = get(d, "user");
  copy_id(r->user_id, get(user, "id"));
  copy_str(r->user_name, sizeof r->user_name, get(user, "username"));
  copy_id(r->app_id, get(get(d, "application"), "id"));
  if (!r->app_id[0]) memcpy(r->app_id, r->user_id, sizeof r->app_id); /* bots: app id = user id */
  return r->session_id[0] && r->user_id[0] ? 0 : -1;
}

/* Display name: member nick, then user global_name, then username. */
static void member_name(const cJSON *member, const cJSON *user, char *out, size_t n) {
  out[0] = 0;
  copy_str(out, n, get(member, "nick"));
  if (!out[0]) copy_str(out, n, get(user, "global_name"));
  if (!out[0]) copy_str(out, n, get(user, "username"));
}

int kmk_dgw_parse_voice_state(const cJSON *d, const char *guild_id, kmk_dgw_voice_state *v) {
  memset(v, 0, sizeof *v);
  if (guild_id) snprintf(v->guild_id, sizeof v->guild_id, "%s", guild_id);
  else copy_id(v->guild_id, get(d, "guild_id"));
  copy_id(v->channel_id, get(d, "channel_id"));
  copy_id(v->user_id, get(d, "user_id"));
  copy_str(v->session_id, sizeof v->session_id, get(d, "session_id"));
  const cJSON *member = get(d, "member");
  member_name(member, get(member, "user"), v->name, sizeof v->name);
  return v->user_id[0] ? 0 : -1;
}

int kmk_dgw_parse_voice_server(const cJSON *d, kmk_dgw_voice_server *v) {
  memset(v, 0, sizeof *v);
  copy_id(v->guild_id, get(d, "guild_id"));
  copy_str(v->token, sizeof v->token, get(d, "token"));
  copy_str(v->endpoint, sizeof v->endpoint, get(d, "endpoint"));
  /* some payloads carry a scheme; the voice side wants host[:port] */
  if (strncmp(v->endpoint, "wss://", 6) == 0) memmove(v->endpoint, v->endpoint + 6, strlen(v->endpoint + 6) + 1);
  else if (strncmp(v->endpoint, "ws://", 5) == 0) memmove(v->endpoint, v->endpoint + 5, strlen(v->endpoint + 5) + 1);
  return v->guild_id[0] && v->token[0] ? 0 : -1;
}

int kmk_dgw_parse_guild(const cJSON *d, char guild_id[KMK_DGW_ID], char *name, size_t namelen,
                        const kmk_dgw_guild_visitor *vis) {
  copy_id(guild_id, get(d, "id"));
  if (name && namelen) copy_str(name, namelen, get(d, "name"));
  if (!guild_id[0]) return -1;
  if (!vis) return 0;
  const cJSON *it;
  const cJSON *members = get(d, "members");
  if (cJSON_IsArray(members) && vis->member) {
    cJSON_ArrayForEach(it, members) {
      const cJSON *user = get(it, "user");
      char uid[KMK_DGW_ID], nm[64];
      copy_id(uid, get(user, "id"));
      if (!uid[0]) continue;
      member_name(it, user, nm, sizeof nm);
      vis->member(vis->ud, guild_id, uid, nm, cJSON_IsTrue(get(user, "bot")));
    }
  }
  const cJSON *channels = get(d, "channels");
  if (cJSON_IsArray(channels) && vis->channel) {
    cJSON_ArrayForEach(it, channels) {
      char cid[KMK_DGW_ID], nm[100];
      copy_id(cid, get(it, "id"));
      if (!cid[0]) continue;
      copy_str(nm, sizeof nm, get(it, "name"));
      const cJSON *type = get(it, "type");
      vis->channel(vis->ud, guild_id, cid, nm, cJSON_IsNumber(type) ? (int)type->valueint : -1);
    }
  }
  const cJSON *vs = get(d, "voice_states");
  if (cJSON_IsArray(vs) && vis->voice_state) {
    cJSON_ArrayForEach(it, vs) {
      kmk_dgw_voice_state v;
      if (kmk_dgw_parse_voice_state(it, guild_id, &v) == 0) vis->voice_state(vis->ud, &v);
    }
  }
  return 0;
}

int kmk_dgw_parse_interaction(const cJSON *d, kmk_dgw_interaction *it) {
  memset(it, 0, sizeof *it);
  copy_id(it->id, get(d, "id"));
  copy_str(it->token, sizeof it->token, get(d, "token"));
  const cJSON *type = get(d, "type");
  it->type = cJSON_IsNumber(type) && type->valuedouble >= 0 && type->valuedouble < 100 ? (int)type->valuedouble : 0;
  copy_id(it->guild_id, get(d, "guild_id"));
  copy_id(it->channel_id, get(d, "channel_id"));
  const cJSON *member = get(d, "member");
  const cJSON *user = member ? get(member, "user") : get(d, "user");
  copy_id(it->user_id, get(user, "id"));
  member_name(member, user, it->user_name, sizeof it->user_name);
  const cJSON *data = get(d, "data");
  copy_str(it->command, sizeof it->command, get(data, "name"));
  const cJSON *opts = get(data, "options"), *o;
  if (cJSON_IsArray(opts)) {
    cJSON_ArrayForEach(o, opts) {
      const cJSON *val = get(o, "value");
      if (cJSON_IsString(val)) {
        copy_str(it->option, sizeof it->option, val);
        break;
      }
    }
  }
  return it->id[0] && it->token[0] ? 0 : -1;
}

int kmk_dgw_parse_message(const cJSON *d, kmk_dgw_message *m) {
  memset(m, 0, sizeof *m);
  copy_id(m->guild_id, get(d, "guild_id"));
  copy_id(m->channel_id, get(d, "channel_id"));
  const cJSON *author = get(d, "author");
  copy_id(m->author_id, get(author, "id"));
  member_name(get(d, "member"), author, m->author_name, sizeof m->author_name);
  m->bot = cJSON_IsTrue(get(author, "bot"));
  copy_str(m->content, sizeof m->content, get(d, "content"));
  return m->author_id[0] && m->channel_id[0] ? 0 : -1;
}

kmk_dgw_action kmk_dgw_close_action(int code) {
  switch (code) {
  case 4004: case 4010: case 4011: case 4012: case 4013: case 4014:
    return KMK_DGW_DO_FATAL;
  case 4007: case 4009:
    return KMK_DGW_DO_NEW_SESSION;
  case 1000: case 1001:
    return KMK_DGW_DO_NEW_SESSION; /* a clean close ends the session */
  default:
    return KMK_DGW_DO_RESUME; /* 0 (dropped), 1006, 4000-4003, 4005, 4008, unknown */
  }
}

const char *kmk_dgw_close_reason(int code) {
  switch (code) {
  case 4004: return "authentication failed (4004): check DISCORD_TOKEN";
  case 4010: return "invalid shard (4010)";
  case 4011: return "sharding required (4011): the bot is in too many guilds for one connection";
  case 4012: return "invalid API version (4012): check DISCORD_GATEWAY_URL (?v=10)";
  case 4013: return "invalid intents (4013)";
  case 4014: return "disallowed intents (4014): enable the MESSAGE_CONTENT privileged intent in the "
                    "Developer Portal (Bot > Privileged Gateway Intents)";
  case 4007: return "invalid seq on resume (4007): starting a new session";
  case 4009: return "session timed out (4009): starting a new session";
  case 4008: return "rate limited (4008)";
  case 0: return "connection dropped";
  default: return "gateway closed";
  }
}

int kmk_dgw_close_code_from_reason(const char *reason) {
  int code = 0;
  if (reason && sscanf(reason, "closed %d", &code) == 1 && code > 0 && code < 5000) return code;
  return 0;
}

double kmk_dgw_backoff_ms(int attempt, double rnd) {
  if (attempt < 1) attempt = 1;
  double ms = 1000.0;
  for (int i = 1; i < attempt && ms < 60000; i++) ms *= 2;
  if (ms > 60000) ms = 60000;
  if (rnd < 0) rnd = 0;
  if (rnd >= 1) rnd = 0.999;
  return ms * (0.8 + 0.4 * rnd);
}

void kmk_dgw_rl_init(kmk_dgw_rl *r, int limit, double window_ms, int reserve) {
  memset(r, 0, sizeof *r);
  if (limit > KMK_DGW_RL_MAX) limit = KMK_DGW_RL_MAX;
  if (limit < 1) limit = 1;
  if (reserve >= limit) reserve = limit - 1;
  if (reserve < 0) reserve = 0;
  r->limit = limit;
  r->reserve = reserve;
  r->window_ms = window_ms;
}

void kmk_dgw_rl_reset(kmk_dgw_rl *r) { r->head = r->count = 0; }

double kmk_dgw_rl_take(kmk_dgw_rl *r, double now, int priority) {
  /* forget sends older than the window (the ring holds them oldest first from head) */
  while (r->count > 0 && now - r->times[r->head] >= r->window_ms) {
    r->head = (r->head + 1) % KMK_DGW_RL_MAX;
    r->count--;
  }
  int cap = priority ? r->limit : r->limit - r->reserve;
  if (r->count >= cap) {
    /* the send that frees a slot for us: the (count - cap + 1)-th oldest */
    int idx = (r->head + (r->count - cap)) % KMK_DGW_RL_MAX;
    double wait = r->times[idx] + r->window_ms - now;
    return wait > 0 ? wait : 1;
  }
  r->times[(r->head + r->count) % KMK_DGW_RL_MAX] = now;
  r->count++;
  return 0;
}
