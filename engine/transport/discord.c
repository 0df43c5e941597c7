/* discord.c - the Discord controller: guild state from the gateway, slash commands, the voice
 * connection's life (join, move, kick, empty channel, voice close codes) and text chat into the agent.
 *
 * Owns: the WebSocket and HTTP clients it creates, the gateway session (kmk_dgw), the REST client
 * (kmk_drest), the guild tables (members' names, voice states; bounded), one kmk_dvoice at a time
 * and three timers (leave-when-empty, voice rejoin backoff, deferred voice teardown).
 *
 * Voice life:
 *
 *   IDLE ──/join──> JOINING (op 4 sent) ──our VOICE_STATE_UPDATE + VOICE_SERVER_UPDATE──> VOICE
 *     ^                                                                                   │
 *     └─── /leave, kicked (our channel becomes null), empty channel for LEAVE_S, 4014 ─────┘
 *   voice close 4006/4015/network (after the voice side gave up): rejoin with backoff (at most 5);
 *   4016/4017/4020: our bug, stop and report; 4021: rejoin after a longer wait.
 *
 * One voice connection per process (one agent); /join in another guild moves it there.
 * Thread: loop thread only.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/agent.h"
#include "kameko/discord.h"
#include "kameko/discord_voice.h"
#include "kameko/log.h"
#include "kameko/net.h"

#define TAG "discord"
#define MAX_GUILDS 32
#define MAX_USERS 4096   /* names kept; when full the table starts afresh (names are re-learned
                            from voice states, messages and interactions) */
#define USER_SLOTS 8192  /* open-addressing index over users[] (power of two, > 2 x MAX_USERS) */
#define MAX_VSTATES 4096 /* voice states kept across guilds */
#define MAX_VOICE_RETRIES 5

typedef struct {
  char id[KMK_DGW_ID];
  char name[100];
  int registered; /* commands PUT done */
  int registering;
} guild;

typedef struct {
  char user_id[KMK_DGW_ID], name[64];
  int bot;
} user;

typedef struct {
  char guild_id[KMK_DGW_ID], user_id[KMK_DGW_ID], channel_id[KMK_DGW_ID];
} vstate;

typedef enum { V_IDLE, V_JOINING, V_VOICE } vphase;

typedef struct reply_ctx {
  kmk_discord *d;
  char command[32], user[64];
  uint64_t t0;
  int edit; /* PATCH @original follows */
  char app_id[KMK_DGW_ID], token[512], content[512];
} reply_ctx;

struct kmk_discord {
  kmk_discord_opts o;
  uv_loop_t *loop;
  kmk_ws *ws;
  kmk_http *http;
  kmk_drest *rest;
  kmk_dgw *gw;
  guild guilds[MAX_GUILDS];
  int n_guilds;
  user users[MAX_USERS];
  int n_users;
  int16_t user_slot[USER_SLOTS]; /* index into users[] + 1; 0 = empty */
  vstate vs[MAX_VSTATES];
  int n_vs;
  /* voice */
  vphase phase;
  char v_guild[KMK_DGW_ID], v_channel[KMK_DGW_ID];
  char v_session[128], v_token[256], v_endpoint[256];
  kmk_dvoice *voice;
  kmk_dvoice *voice_dying; /* closed from the reap timer, never inside its own callback */
  int voice_attempt;
  int muted;
  uv_timer_t leave_timer, rejoin_timer, reap_timer;
  int timers_open;
  kmk_discord_status st;
  int fatal, closing, pending_close;
  void (*closed)(void *);
  void *closed_ud;
};

static double now_s(kmk_discord *d) {
  return d->o.now ? d->o.now(d->o.now_ud) : (double)uv_now(d->loop) / 1000.0;
}

static void emit(kmk_discord *d, cJSON *ev) {
  if (d->o.log) kmk_eventlog_write(d->o.log, ev);
  cJSON_Delete(ev);
}

static cJSON *event(kmk_discord *d, const char *type, const char *speaker) {
  return kmk_event_new(now_s(d), type, speaker);
}

/* ---- tables --------------------------------------------------------------------------------- */
static guild *find_guild(kmk_discord *d, const char *id, int create) {
  for (int i = 0; i < d->n_guilds; i++)
    if (!strcmp(d->guilds[i].id, id)) return &d->guilds[i];
  if (!create || d->n_guilds == MAX_GUILDS) return NULL;
  guild *g = &d->guilds[d->n_guilds++];
  memset(g, 0, sizeof *g);
  snprintf(g->id, sizeof g->id, "%s", id);
  return g;
}

static uint32_t id_hash(const char *id) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *id; id++) h = (h ^ (uint8_t)*id) * 16777619u;
  return h;
}

static user *find_user(kmk_discord *d, const char *id) {
  for (uint32_t k = id_hash(id) & (USER_SLOTS - 1);; k = (k + 1) & (USER_SLOTS - 1)) {
    int i = d->user_slot[k];
    if (!i) return NULL;
    if (!strcmp(d->users[i - 1].user_id, id)) return &d->users[i - 1];
  }
}

static void set_user(kmk_discord *d, const char *id, const char *name, int bot) {
  if (!id[0]) return;
  user *u = find_user(d, id);
  if (!u) {
    if (d->n_users == MAX_USERS) { /* start afresh: bounded memory, O(1) lookups */
      KMK_DEBUG(TAG, "user name table full: cleared");
      d->n_users = 0;
      memset(d->user_slot, 0, sizeof d->user_slot);
    }
    u = &d->users[d->n_users++];
    memset(u, 0, sizeof *u);
    snprintf(u->user_id, sizeof u->user_id, "%s", id);
    uint32_t k = id_hash(u->user_id) & (USER_SLOTS - 1);
    while (d->user_slot[k]) k = (k + 1) & (USER_SLOTS - 1);
    d->user_slot[k] = (int16_t)d->n_users;
  }
  if (name && name[0]) snprintf(u->name, sizeof u->name, "%s", name);
  if (bot >= 0) u->bot = bot;
}

static const char *user_name_cb(void *ud, const char *user_id) {
  kmk_discord *d = ud;
  user *u = find_user(d, user_id);
  return u && u->name[0] ? u->name : user_id;
}

static void set_vstate(kmk_discord *d, const char *guild_id, const char *user_id, const char *channel_id) {
  for (int i = 0; i < d->n_vs; i++)
    if (!strcmp(d->vs[i].guild_id, guild_id) && !strcmp(d->vs[i].user_id, user_id)) {
      if (!channel_id[0]) d->vs[i] = d->vs[--d->n_vs];
      else snprintf(d->vs[i].channel_id, sizeof d->vs[i].channel_id, "%s", channel_id);
      return;
    }
  if (!channel_id[0]) return;
  if (d->n_vs == MAX_VSTATES) {
    KMK_WARN(TAG, "voice state table full: ignoring a voice state");
    return;
  }
  vstate *v = &d->vs[d->n_vs++];
  snprintf(v->guild_id, sizeof v->guild_id, "%s", guild_id);
  snprintf(v->user_id, sizeof v->user_id, "%s", user_id);
  snprintf(v->channel_id, sizeof v->channel_id, "%s", channel_id);
}

static const char *user_channel(kmk_discord *d, const char *guild_id, const char *user_id) {
  for (int i = 0; i < d->n_vs; i++)
    if (!strcmp(d->vs[i].guild_id, guild_id) && !strcmp(d->vs[i].user_id, user_id)) return d->vs[i].channel_id;
  return NULL;
}

static const char *bot_id(kmk_discord *d) {
  const kmk_dgw_ready *r = kmk_dgw_get_ready(d->gw);
  return r ? r->user_id : "";
}

/* People (not bots, not us) in our voice channel. */
static int humans_in_channel(kmk_discord *d) {
  int n = 0;
  for (int i = 0; i < d->n_vs; i++) {
    if (strcmp(d->vs[i].guild_id, d->v_guild) || strcmp(d->vs[i].channel_id, d->v_channel)) continue;
    if (!strcmp(d->vs[i].user_id, bot_id(d))) continue;
    user *u = find_user(d, d->vs[i].user_id);
    if (u && u->bot) continue;
    n++;
  }
  return n;
}

/* ---- REST helpers --------------------------------------------------------------------------- */
static void reply_done(void *ud, int err, long status, const char *body) {
  (void)body;
  reply_ctx *c = ud;
  kmk_discord *d = c->d;
  double ms = (double)(uv_now(d->loop) - c->t0);
  if (err == KMK_NET_ECLOSED) { /* shutting down */
    free(c);
    return;
  }
  if (!c->edit) {
    cJSON *ev = event(d, "discord_command", c->user);
    cJSON_AddStringToObject(ev, "command", c->command);
    cJSON_AddNumberToObject(ev, "status", (double)status);
    cJSON_AddNumberToObject(ev, "reply_ms", ms);
    if (err) cJSON_AddStringToObject(ev, "error", kmk_net_strerror(err));
    emit(d, ev);
  }
  if (err || status >= 300) KMK_WARN(TAG, "answer to /%s failed (%ld)", c->command, status);
  free(c);
}

static reply_ctx *new_ctx(kmk_discord *d, const kmk_dgw_interaction *it, uint64_t t0) {
  reply_ctx *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->d = d;
  c->t0 = t0;
  snprintf(c->command, sizeof c->command, "%s", it->command);
  snprintf(c->user, sizeof c->user, "%s", it->user_name[0] ? it->user_name : it->user_id);
  return c;
}

/* type 4 (message) or 5 (deferred); ephemeral = only the caller sees it */
static void respond(kmk_discord *d, const kmk_dgw_interaction *it, uint64_t t0, int type,
                    const char *content, int ephemeral) {
  reply_ctx *c = new_ctx(d, it, t0);
  if (!c) return;
  cJSON *b = cJSON_CreateObject();
  cJSON_AddNumberToObject(b, "type", type);
  cJSON *data = cJSON_AddObjectToObject(b, "data");
  if (content) cJSON_AddStringToObject(data, "content", content);
  if (ephemeral) cJSON_AddNumberToObject(data, "flags", 64);
  char *body = cJSON_PrintUnformatted(b);
  cJSON_Delete(b);
  char path[700];
  snprintf(path, sizeof path, "/interactions/%s/%s/callback", it->id, it->token);
  if (!body || kmk_drest_call(d->rest, "POST", path, body, reply_done, c) != 0) free(c);
  free(body);
}

static void edit_original(kmk_discord *d, const kmk_dgw_interaction *it, const char *content) {
  const kmk_dgw_ready *r = kmk_dgw_get_ready(d->gw);
  if (!r) return;
  reply_ctx *c = new_ctx(d, it, uv_now(d->loop));
  if (!c) return;
  c->edit = 1;
  cJSON *b = cJSON_CreateObject();
  cJSON_AddStringToObject(b, "content", content);
  char *body = cJSON_PrintUnformatted(b);
  cJSON_Delete(b);
  char path[700];
  snprintf(path, sizeof path, "/webhooks/%s/%s/messages/@original", r->app_id, it->token);
  if (!body || kmk_drest_call(d->rest, "PATCH", path, body, reply_done, c) != 0) free(c);
  free(body);
}

cJSON *kmk_discord_commands_json(void) {
  static const struct { const char *name, *desc, *opt, *opt_desc; } cmds[] = {
      {"join", "Join your voice channel", NULL, NULL},
      {"leave", "Leave the voice channel", NULL, NULL},
      {"persona", "Switch the persona", "name", "persona file name (without .lua)"},
      {"mute", "Stop speaking (still listens)", NULL, NULL},
      {"unmute", "Speak again", NULL, NULL},
      {"forget", "Forget what was said by you", NULL, NULL},
  };
  cJSON *arr = cJSON_CreateArray();
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "name", cmds[i].name);
    cJSON_AddStringToObject(c, "description", cmds[i].desc);
    cJSON_AddNumberToObject(c, "type", 1);
    if (cmds[i].opt) {
      cJSON *opts = cJSON_AddArrayToObject(c, "options");
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", cmds[i].opt);
      cJSON_AddStringToObject(o, "description", cmds[i].opt_desc);
      cJSON_AddNumberToObject(o, "type", 3); /* STRING */
      cJSON_AddBoolToObject(o, "required", 1);
      cJSON_AddItemToArray(opts, o);
    }
    cJSON_AddItemToArray(arr, c);
  }
  return arr;
}

typedef struct {
  kmk_discord *d;
  char guild[KMK_DGW_ID];
} reg_ctx;

static void registered(void *ud, int err, long status, const char *body) {
  (void)body;
  reg_ctx *c = ud;
  kmk_discord *d = c->d;
  guild *g = find_guild(d, c->guild, 0);
  if (g) g->registering = 0;
  if (err == KMK_NET_ECLOSED) { /* shutting down */
    free(c);
    return;
  }
  if (!err && status >= 200 && status < 300) {
    if (g && !g->registered) {
      g->registered = 1;
      d->st.commands_registered++;
    }
    cJSON *ev = event(d, "discord_commands", NULL);
    cJSON_AddStringToObject(ev, "guild", c->guild);
    emit(d, ev);
  } else {
    KMK_WARN(TAG, "registering commands in guild %s failed (%s, status %ld)", c->guild,
             err ? kmk_net_strerror(err) : "http", status);
  }
  free(c);
}

static void register_commands(kmk_discord *d, guild *g) {
  const kmk_dgw_ready *r = kmk_dgw_get_ready(d->gw);
  if (!r || g->registered || g->registering) return;
  reg_ctx *c = calloc(1, sizeof *c);
  if (!c) return;
  c->d = d;
  snprintf(c->guild, sizeof c->guild, "%s", g->id);
  cJSON *cmds = kmk_discord_commands_json();
  char *body = cJSON_PrintUnformatted(cmds);
  cJSON_Delete(cmds);
  char path[160];
  snprintf(path, sizeof path, "/applications/%s/guilds/%s/commands", r->app_id, g->id);
  if (body && kmk_drest_call(d->rest, "PUT", path, body, registered, c) == 0) g->registering = 1;
  else free(c);
  free(body);
}

/* ---- voice ---------------------------------------------------------------------------------- */
static void send_voice_state(kmk_discord *d, const char *guild_id, const char *channel_id) {
  cJSON *v = cJSON_CreateObject();
  cJSON_AddStringToObject(v, "guild_id", guild_id);
  if (channel_id && channel_id[0]) cJSON_AddStringToObject(v, "channel_id", channel_id);
  else cJSON_AddNullToObject(v, "channel_id");
  cJSON_AddBoolToObject(v, "self_mute", 0);
  cJSON_AddBoolToObject(v, "self_deaf", 0);
  kmk_dgw_send(d->gw, KMK_DGW_OP_VOICE_STATE, v);
}

static void voice_event(kmk_discord *d, const char *state, int code, const char *why) {
  cJSON *ev = event(d, "discord_voice", NULL);
  cJSON_AddStringToObject(ev, "state", state);
  cJSON_AddStringToObject(ev, "guild", d->v_guild);
  cJSON_AddStringToObject(ev, "channel", d->v_channel);
  if (code) cJSON_AddNumberToObject(ev, "close_code", code);
  if (why && why[0]) cJSON_AddStringToObject(ev, "why", why);
  emit(d, ev);
}

static void reap_cb(uv_timer_t *t) {
  kmk_discord *d = t->data;
  if (d->voice_dying) kmk_dvoice_close(d->voice_dying, NULL, NULL);
  d->voice_dying = NULL;
}

/* Drops the voice object (deferred close: we may be inside its callback). */
static void drop_voice(kmk_discord *d) {
  if (!d->voice) return;
  if (d->voice_dying) kmk_dvoice_close(d->voice_dying, NULL, NULL);
  d->voice_dying = d->voice;
  d->voice = NULL;
  d->st.in_voice = 0;
  uv_timer_start(&d->reap_timer, reap_cb, 0, 0);
}

static void leave_voice(kmk_discord *d, const char *why) {
  if (d->phase == V_IDLE) return;
  KMK_INFO(TAG, "leaving voice channel %s (%s)", d->v_channel, why);
  send_voice_state(d, d->v_guild, NULL);
  drop_voice(d);
  voice_event(d, "left", 0, why);
  d->phase = V_IDLE;
  d->st.leaves++;
  d->v_channel[0] = d->v_session[0] = d->v_token[0] = d->v_endpoint[0] = 0;
  uv_timer_stop(&d->leave_timer);
  uv_timer_stop(&d->rejoin_timer);
}

static void voice_state_cb(void *ud, kmk_dvoice_state st, int code, const char *why);

static void try_connect_voice(kmk_discord *d) {
  if (d->phase != V_JOINING || !d->v_session[0] || !d->v_token[0] || !d->v_endpoint[0]) return;
  d->phase = V_VOICE;
  const kmk_dgw_ready *r = kmk_dgw_get_ready(d->gw);
  kmk_dvoice_opts vo = {.loop = d->loop,
                        .agent = d->o.agent,
                        .endpoint = d->v_endpoint,
                        .plain_ws = strncmp(d->o.config->discord_gateway_url, "ws://", 5) == 0,
                        .guild_id = d->v_guild,
                        .channel_id = d->v_channel,
                        .user_id = r ? r->user_id : "",
                        .session_id = d->v_session,
                        .token = d->v_token,
                        .max_dave_version = d->o.max_dave_version,
                        .user_name = user_name_cb,
                        .on_state = voice_state_cb,
                        .ud = d,
                        .now = d->o.now,
                        .now_ud = d->o.now_ud,
                        .ws = d->ws /* one libwebsockets context per process (lws 4.1 leaks with two) */};
  char err[256] = "";
  d->voice = kmk_dvoice_new(&vo, err, sizeof err);
  if (!d->voice) {
    KMK_ERR(TAG, "voice connection failed to start: %s", err);
    voice_event(d, "failed", 0, err);
    return;
  }
  d->st.in_voice = 1;
  if (d->muted) kmk_dvoice_set_mute(d->voice, 1);
  voice_event(d, "connecting", 0, NULL);
}

static void join_channel(kmk_discord *d, const char *guild_id, const char *channel_id) {
  if (d->phase != V_IDLE && strcmp(d->v_guild, guild_id)) leave_voice(d, "joining another guild");
  drop_voice(d);
  snprintf(d->v_guild, sizeof d->v_guild, "%s", guild_id);
  snprintf(d->v_channel, sizeof d->v_channel, "%s", channel_id);
  d->v_session[0] = d->v_token[0] = d->v_endpoint[0] = 0;
  d->phase = V_JOINING;
  d->st.joins++;
  send_voice_state(d, guild_id, channel_id);
  voice_event(d, "joining", 0, NULL);
}

static void rejoin_cb(uv_timer_t *t) {
  kmk_discord *d = t->data;
  if (d->phase == V_IDLE) return;
  char g[KMK_DGW_ID], c[KMK_DGW_ID];
  snprintf(g, sizeof g, "%s", d->v_guild);
  snprintf(c, sizeof c, "%s", d->v_channel);
  d->phase = V_IDLE;
  join_channel(d, g, c);
}

static void voice_state_cb(void *ud, kmk_dvoice_state st, int code, const char *why) {
  kmk_discord *d = ud;
  if (st == KMK_DVOICE_READY) {
    d->voice_attempt = 0;
    voice_event(d, "ready", 0, NULL);
    return;
  }
  if (st == KMK_DVOICE_RESUMING) {
    voice_event(d, "resuming", code, why);
    return;
  }
  if (st != KMK_DVOICE_CLOSED) return;
  drop_voice(d);
  if (code == 4014 || code == 4022) { /* disconnected, moved or call ended: never reconnect */
    voice_event(d, "closed", code, "disconnected from the channel: not reconnecting");
    d->phase = V_IDLE;
    d->v_channel[0] = 0;
    uv_timer_stop(&d->leave_timer);
    return;
  }
  if (code == 4016 || code == 4017 || code == 4020) {
    KMK_ERR(TAG, "voice gateway refused us (%d: %s): this is a bug, not reconnecting", code, why);
    voice_event(d, "failed", code, why);
    leave_voice(d, "voice protocol error");
    return;
  }
  if (++d->voice_attempt > MAX_VOICE_RETRIES) {
    voice_event(d, "failed", code, "too many voice reconnects");
    leave_voice(d, "voice kept failing");
    return;
  }
  double ms = kmk_dgw_backoff_ms(d->voice_attempt, (double)(uv_hrtime() % 1000) / 1000.0);
  if (code == 4021 && ms < 5000) ms = 5000; /* rate limited */
  d->st.voice_retries++;
  voice_event(d, "rejoining", code, why);
  d->phase = V_JOINING;
  uv_timer_start(&d->rejoin_timer, rejoin_cb, (uint64_t)ms, 0);
}

static void leave_timer_cb(uv_timer_t *t) {
  kmk_discord *d = t->data;
  if (d->phase != V_IDLE && humans_in_channel(d) == 0) leave_voice(d, "channel empty");
}

static void check_empty(kmk_discord *d) {
  if (d->phase == V_IDLE) return;
  if (humans_in_channel(d) == 0) {
    if (!uv_is_active((uv_handle_t *)&d->leave_timer)) {
      double s = d->o.config->discord_leave_s;
      uv_timer_start(&d->leave_timer, leave_timer_cb, (uint64_t)((s > 0 ? s : 0) * 1000), 0);
    }
  } else {
    uv_timer_stop(&d->leave_timer);
  }
}

/* ---- dispatch ------------------------------------------------------------------------------- */
static void on_member(void *ud, const char *gid, const char *uid, const char *name, int bot) {
  (void)gid;
  set_user(ud, uid, name, bot);
}
static void on_gvs(void *ud, const kmk_dgw_voice_state *v) {
  set_vstate(ud, v->guild_id, v->user_id, v->channel_id);
}

static int valid_persona_name(const char *s) {
  if (!s[0] || strlen(s) > 64) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return 0;
  return 1;
}

static void command(kmk_discord *d, const kmk_dgw_interaction *it) {
  uint64_t t0 = uv_now(d->loop);
  char msg[300];
  d->st.interactions++;
  if (it->user_id[0]) set_user(d, it->user_id, it->user_name, -1);
  if (it->type != 2) return; /* only application commands */
  if (!it->guild_id[0]) {
    respond(d, it, t0, 4, "Use me in a server.", 1);
    return;
  }
  if (!strcmp(it->command, "join")) {
    const char *ch = user_channel(d, it->guild_id, it->user_id);
    if (!ch || !ch[0]) {
      respond(d, it, t0, 4, "Join a voice channel first, then use /join.", 1);
      return;
    }
    d->voice_attempt = 0;
    join_channel(d, it->guild_id, ch);
    snprintf(msg, sizeof msg, "Joining <#%s>.", ch);
    respond(d, it, t0, 4, msg, 0);
  } else if (!strcmp(it->command, "leave")) {
    if (d->phase == V_IDLE || strcmp(d->v_guild, it->guild_id)) {
      respond(d, it, t0, 4, "I am not in a voice channel here.", 1);
      return;
    }
    leave_voice(d, "/leave");
    respond(d, it, t0, 4, "Bye!", 0);
  } else if (!strcmp(it->command, "persona")) {
    if (!valid_persona_name(it->option)) {
      respond(d, it, t0, 4, "Persona names are letters, digits, '-' and '_'.", 1);
      return;
    }
    respond(d, it, t0, 5, NULL, 0); /* deferred: loading a persona may take a moment */
    char path[1200], err[300] = "";
    snprintf(path, sizeof path, "%s/%s.lua", d->o.persona_dir ? d->o.persona_dir : "personas", it->option);
    const char *paths[1] = {path};
    int rc = d->o.agent ? kmk_agent_set_cast(d->o.agent, paths, 1, err, sizeof err) : -1;
    if (rc == 0) snprintf(msg, sizeof msg, "Persona is now **%s**.", it->option);
    else snprintf(msg, sizeof msg, "Could not load persona %s.", it->option);
    if (rc != 0) KMK_WARN(TAG, "/persona %s: %s", it->option, err);
    edit_original(d, it, msg);
  } else if (!strcmp(it->command, "mute") || !strcmp(it->command, "unmute")) {
    d->muted = !strcmp(it->command, "mute");
    if (d->o.agent) kmk_agent_set_muted(d->o.agent, d->muted);
    if (d->voice) kmk_dvoice_set_mute(d->voice, d->muted);
    respond(d, it, t0, 4, d->muted ? "Muted." : "Unmuted.", 0);
  } else if (!strcmp(it->command, "forget")) {
    const char *who = user_name_cb(d, it->user_id);
    int n = d->o.agent ? kmk_agent_forget(d->o.agent, who) : -1;
    if (n >= 0) snprintf(msg, sizeof msg, "Forgotten: %d item%s about you.", n, n == 1 ? "" : "s");
    else snprintf(msg, sizeof msg, "Nothing to forget.");
    respond(d, it, t0, 4, msg, 1);
  } else {
    respond(d, it, t0, 4, "Unknown command.", 1);
  }
}

static void on_dispatch(void *ud, const char *t, const cJSON *data) {
  kmk_discord *d = ud;
  if (d->closing || !d->gw) return;
  if (!strcmp(t, "READY")) {
    const kmk_dgw_ready *r = kmk_dgw_get_ready(d->gw);
    set_user(d, r->user_id, r->user_name, 1);
    cJSON *ev = event(d, "discord_ready", NULL);
    cJSON_AddStringToObject(ev, "user", r->user_id);
    cJSON_AddStringToObject(ev, "application", r->app_id);
    emit(d, ev);
    for (int i = 0; i < d->n_guilds; i++) register_commands(d, &d->guilds[i]);
  } else if (!strcmp(t, "GUILD_CREATE")) {
    char gid[KMK_DGW_ID], name[100];
    kmk_dgw_guild_visitor vis = {.member = on_member, .voice_state = on_gvs, .ud = d};
    if (kmk_dgw_parse_guild(data, gid, name, sizeof name, &vis) != 0) return;
    guild *g = find_guild(d, gid, 1);
    if (!g) {
      KMK_WARN(TAG, "more than %d guilds: ignoring %s", MAX_GUILDS, gid);
      return;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    register_commands(d, g);
    if (d->phase != V_IDLE && !strcmp(gid, d->v_guild)) check_empty(d);
  } else if (!strcmp(t, "VOICE_STATE_UPDATE")) {
    kmk_dgw_voice_state v;
    if (kmk_dgw_parse_voice_state(data, NULL, &v) != 0 || !v.guild_id[0]) return;
    if (v.name[0]) set_user(d, v.user_id, v.name, -1);
    set_vstate(d, v.guild_id, v.user_id, v.channel_id);
    if (!strcmp(v.user_id, bot_id(d)) && d->phase != V_IDLE && !strcmp(v.guild_id, d->v_guild)) {
      if (!v.channel_id[0]) { /* kicked or disconnected by someone */
        if (d->phase == V_JOINING && !d->v_session[0]) return; /* our own leave echo */
        drop_voice(d);
        voice_event(d, "kicked", 0, "removed from the voice channel");
        d->phase = V_IDLE;
        d->v_channel[0] = 0;
        uv_timer_stop(&d->leave_timer);
        uv_timer_stop(&d->rejoin_timer);
        return;
      }
      if (strcmp(v.channel_id, d->v_channel)) { /* moved by someone */
        snprintf(d->v_channel, sizeof d->v_channel, "%s", v.channel_id);
        voice_event(d, "moved", 0, NULL);
      }
      snprintf(d->v_session, sizeof d->v_session, "%s", v.session_id);
      try_connect_voice(d);
    }
    if (d->phase != V_IDLE && !strcmp(v.guild_id, d->v_guild)) check_empty(d);
  } else if (!strcmp(t, "VOICE_SERVER_UPDATE")) {
    kmk_dgw_voice_server vs;
    if (kmk_dgw_parse_voice_server(data, &vs) != 0 || d->phase == V_IDLE || strcmp(vs.guild_id, d->v_guild))
      return;
    if (!vs.endpoint[0]) return; /* null endpoint: the server is being allocated, another update follows */
    snprintf(d->v_token, sizeof d->v_token, "%s", vs.token);
    snprintf(d->v_endpoint, sizeof d->v_endpoint, "%s", vs.endpoint);
    if (d->voice) kmk_dvoice_server_update(d->voice, vs.endpoint, vs.token);
    else try_connect_voice(d);
  } else if (!strcmp(t, "INTERACTION_CREATE")) {
    kmk_dgw_interaction it;
    if (kmk_dgw_parse_interaction(data, &it) == 0) command(d, &it);
  } else if (!strcmp(t, "MESSAGE_CREATE")) {
    kmk_dgw_message m;
    if (kmk_dgw_parse_message(data, &m) != 0 || m.bot || !m.content[0]) return;
    if (!strcmp(m.author_id, bot_id(d)) || d->phase == V_IDLE || strcmp(m.guild_id, d->v_guild)) return;
    set_user(d, m.author_id, m.author_name, 0);
    d->st.messages++;
    if (d->o.agent) kmk_agent_chat(d->o.agent, user_name_cb(d, m.author_id), m.content);
  }
}

static void on_gw_state(void *ud, kmk_dgw_state st, int code, const char *why) {
  kmk_discord *d = ud;
  d->st.gateway = st;
  cJSON *ev = event(d, "discord_gateway", NULL);
  static const char *names[] = {"connecting", "identifying", "connected", "waiting", "fatal", "closed"};
  cJSON_AddStringToObject(ev, "state", names[st]);
  if (code) cJSON_AddNumberToObject(ev, "close_code", code);
  if (why && why[0]) cJSON_AddStringToObject(ev, "why", why);
  emit(d, ev);
  if (st == KMK_DGW_FATAL && !d->fatal) {
    d->fatal = 1;
    if (d->o.on_fatal) d->o.on_fatal(d->o.ud, why);
  }
}

static void on_rest_fatal(void *ud, const char *why) {
  kmk_discord *d = ud;
  if (d->fatal) return;
  d->fatal = 1;
  cJSON *ev = event(d, "discord_gateway", NULL);
  cJSON_AddStringToObject(ev, "state", "fatal");
  cJSON_AddStringToObject(ev, "why", why);
  emit(d, ev);
  if (d->o.on_fatal) d->o.on_fatal(d->o.ud, why);
}

/* ---- life ----------------------------------------------------------------------------------- */
kmk_discord *kmk_discord_new(const kmk_discord_opts *o, char *err, size_t errlen) {
  if (!o || !o->loop || !o->config) {
    snprintf(err, errlen, "discord: loop and config are required");
    return NULL;
  }
  const kmk_config *c = o->config;
  if (!c->discord_token || !c->discord_token[0]) {
    snprintf(err, errlen, "DISCORD_TOKEN is not set (see README: Discord)");
    return NULL;
  }
  kmk_discord *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->o = *o;
  d->loop = o->loop;
  d->ws = kmk_ws_new(d->loop);
  d->http = kmk_http_new(d->loop);
  if (!d->ws || !d->http) {
    snprintf(err, errlen, "discord: cannot create the WebSocket/HTTP clients");
    if (d->ws) kmk_ws_close(d->ws, NULL, NULL);
    if (d->http) kmk_http_close(d->http, NULL, NULL);
    free(d);
    return NULL;
  }
  d->rest = kmk_drest_new(d->http, c->discord_api_url, c->discord_token, on_rest_fatal, d);
  uv_timer_init(d->loop, &d->leave_timer);
  uv_timer_init(d->loop, &d->rejoin_timer);
  uv_timer_init(d->loop, &d->reap_timer);
  d->leave_timer.data = d->rejoin_timer.data = d->reap_timer.data = d;
  d->timers_open = 3;
  kmk_dgw_opts go = {.loop = d->loop,
                     .ws = d->ws,
                     .url = c->discord_gateway_url,
                     .token = c->discord_token,
                     .intents = KMK_DGW_INTENTS,
                     .on_dispatch = on_dispatch,
                     .on_state = on_gw_state,
                     .ud = d};
  d->gw = kmk_dgw_new(&go, err, errlen);
  if (!d->gw) {
    d->closing = 1;
    kmk_discord_close(d, NULL, NULL);
    return NULL;
  }
  return d;
}

kmk_discord_status kmk_discord_get_status(const kmk_discord *d) {
  kmk_discord_status s = d->st;
  s.gateway = d->gw ? kmk_dgw_get_state(d->gw) : KMK_DGW_CLOSED;
  s.in_voice = d->phase != V_IDLE;
  snprintf(s.voice_guild, sizeof s.voice_guild, "%s", d->phase != V_IDLE ? d->v_guild : "");
  snprintf(s.voice_channel, sizeof s.voice_channel, "%s", d->phase != V_IDLE ? d->v_channel : "");
  return s;
}

kmk_dgw *kmk_discord_gateway(kmk_discord *d) { return d->gw; }

static void maybe_finish(kmk_discord *d);
static void part_closed(void *ud);
/* the gateway is closed: now the WebSocket context (shared with the voice connection) may go */
static void gw_closed(void *ud) {
  kmk_discord *d = ud;
  kmk_ws_close(d->ws, part_closed, d);
}

static void maybe_finish(kmk_discord *d) {
  if (--d->pending_close > 0) return;
  void (*cb)(void *) = d->closed;
  void *ud = d->closed_ud;
  free(d);
  if (cb) cb(ud);
}
static void part_closed(void *ud) { maybe_finish(ud); }
static void timer_closed(uv_handle_t *h) { maybe_finish(h->data); }

void kmk_discord_close(kmk_discord *d, void (*closed)(void *ud), void *ud) {
  if (!d || d->pending_close) return;
  d->closing = 1;
  d->closed = closed;
  d->closed_ud = ud;
  if (d->phase != V_IDLE && d->gw && kmk_dgw_get_state(d->gw) == KMK_DGW_CONNECTED)
    send_voice_state(d, d->v_guild, NULL);
  kmk_drest_free(d->rest);
  d->rest = NULL;
  d->pending_close = 1 + 3 + 1 + 1; /* guard + timers + ws (after the gateway) + http */
  kmk_dvoice *vs[2] = {d->voice, d->voice_dying};
  d->voice = d->voice_dying = NULL;
  for (int i = 0; i < 2; i++)
    if (vs[i]) {
      d->pending_close++;
      kmk_dvoice_close(vs[i], part_closed, d);
    }
  if (d->gw) kmk_dgw_close(d->gw, gw_closed, d); /* lingers while a last op 4 goes out */
  else kmk_ws_close(d->ws, part_closed, d);
  d->gw = NULL;
  uv_close((uv_handle_t *)&d->leave_timer, timer_closed);
  uv_close((uv_handle_t *)&d->rejoin_timer, timer_closed);
  uv_close((uv_handle_t *)&d->reap_timer, timer_closed);
  kmk_http_close(d->http, part_closed, d);
  maybe_finish(d); /* the guard */
}
