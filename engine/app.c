/* app.c - command line: global flags, the config, and the job (room, demo, replay). Main thread.
 * With no command: the Discord transport when DISCORD_TOKEN is set, else the browser room. */
#include "kameko/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kameko/config.h"
#include "kameko/log.h"
#include "kameko/replay.h"
#include "kameko/demo.h"
#include "kameko/discord.h"
#include "kameko/room.h"

#define MAX_TRACKS 32
#define MAX_PERSONAS 8
#define MAX_CHATS 256

static void usage(FILE *f) {
  fprintf(f,
          "usage: kameko [global flags] [command] [command flags]\n"
          "\n"
          "commands:\n"
          "  room      (default without DISCORD_TOKEN) the browser room: open the printed URL,\n"
          "            join with a name and talk; events go to DIR/events.jsonl\n"
          "            flags: --out DIR (default out/room)  --persona FILE|NAME ...\n"
          "            (address: KMK_ROOM_BIND, KMK_ROOM_PORT; KMK_ROOM_TOKEN off loopback)\n"
          "  discord   (default with DISCORD_TOKEN) the Discord bot: slash commands /join,\n"
          "            /leave, /persona, /mute, /unmute, /forget; events go to DIR/events.jsonl\n"
          "            flags: --out DIR (default out/discord)  --persona FILE|NAME ...\n"
          "  demo      synthesize a two-person conversation and replay it through the\n"
          "            agent; prints where events.jsonl and conversation.wav went\n"
          "            flags: --out DIR (default out/demo)  --realtime  --persona FILE\n"
          "  replay    play recorded tracks through the agent:\n"
          "            --speaker NAME=FILE.wav [--speaker ...] [--at NAME=SECONDS] --out DIR\n"
          "            [--fast] [--persona FILE|NAME ...] [--chat NAME@SECONDS=TEXT ...]\n"
          "\n"
          "global flags:\n"
          "  --env FILE         settings file (default .env; missing is fine unless given)\n"
          "  --set KEY=VALUE    override one setting\n"
          "  --log-level LEVEL  error|warn|info|debug\n"
          "  --help, --version\n"
          "\n"
          "settings (.env, environment, --set):\n");
  for (const kmk_config_key *k = kmk_config_keys(); k->key; k++)
    fprintf(f, "  %-20s %s%s%s%s\n", k->key, k->help, k->def[0] && !k->secret ? " [" : "",
            k->def[0] && !k->secret ? k->def : "", k->def[0] && !k->secret ? "]" : "");
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* --persona takes a path (has a '/' or ends in .lua) or a name looked up in the persona folder. */
static const char *resolve_persona(const kmk_config *cfg, const char *arg, char *buf, size_t n) {
  size_t len = strlen(arg);
  if (strchr(arg, '/') || (len > 4 && strcmp(arg + len - 4, ".lua") == 0)) return arg;
  const char *dir = cfg->persona_dir && *cfg->persona_dir ? cfg->persona_dir
                                                          : KMK_SOURCE_DIR "/personas";
  snprintf(buf, n, "%s/%s.lua", dir, arg);
  if (is_file(buf)) return buf;
  return buf; /* let the brain report the missing file by name */
}

static const char *scripts_dir(const kmk_config *cfg) {
  return cfg->scripts_dir && *cfg->scripts_dir ? cfg->scripts_dir : KMK_SOURCE_DIR "/scripts";
}

static int need_arg(int i, int argc, char **argv) {
  if (i + 1 >= argc) {
    fprintf(stderr, "kameko: %s needs a value\n", argv[i]);
    return 0;
  }
  return 1;
}

static int cmd_replay(int argc, char **argv, const kmk_config *cfg) {
  kmk_replay_track tracks[MAX_TRACKS];
  static char names[MAX_TRACKS][64];
  static char pbuf[MAX_PERSONAS][1024];
  const char *personas[MAX_PERSONAS];
  static char chat_names[MAX_CHATS][64];
  kmk_replay_chat chats[MAX_CHATS];
  size_t nt = 0, np = 0, nc = 0;
  const char *out = NULL;
  int fast = 0;
  struct {
    char name[64];
    double at;
  } ats[MAX_TRACKS];
  size_t nat = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--speaker") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      const char *v = argv[++i];
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || !eq[1] || (size_t)(eq - v) >= sizeof names[0]) {
        fprintf(stderr, "kameko replay: --speaker wants NAME=FILE.wav, got '%s'\n", v);
        return 2;
      }
      if (nt == MAX_TRACKS) {
        fprintf(stderr, "kameko replay: at most %d speakers\n", MAX_TRACKS);
        return 2;
      }
      memcpy(names[nt], v, (size_t)(eq - v));
      names[nt][eq - v] = '\0';
      for (size_t k = 0; k < nt; k++)
        if (strcmp(tracks[k].name, names[nt]) == 0) {
          fprintf(stderr, "kameko replay: speaker '%s' given twice\n", names[nt]);
          return 2;
        }
      tracks[nt] = (kmk_replay_track){names[nt], eq + 1, 0};
      nt++;
    } else if (strcmp(a, "--at") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      const char *v = argv[++i];
      const char *eq = strchr(v, '=');
      char *end = NULL;
      double at = eq ? strtod(eq + 1, &end) : -1;
      if (!eq || eq == v || (size_t)(eq - v) >= sizeof ats[0].name || !end || *end || at < 0 ||
          at > 86400 || nat == MAX_TRACKS) {
        fprintf(stderr, "kameko replay: --at wants NAME=SECONDS (0..86400), got '%s'\n", v);
        return 2;
      }
      memcpy(ats[nat].name, v, (size_t)(eq - v));
      ats[nat].name[eq - v] = '\0';
      ats[nat++].at = at;
    } else if (strcmp(a, "--chat") == 0) {
      /* NAME@SECONDS=TEXT: a text-chat line on the timeline */
      if (!need_arg(i, argc, argv)) return 2;
      const char *v = argv[++i];
      const char *at = strchr(v, '@'), *eq = at ? strchr(at, '=') : NULL;
      char *end = NULL;
      double when = at && eq ? strtod(at + 1, &end) : -1;
      if (!at || at == v || (size_t)(at - v) >= sizeof chat_names[0] || !eq || end != eq ||
          when < 0 || when > 86400 || !eq[1] || nc == MAX_CHATS) {
        fprintf(stderr, "kameko replay: --chat wants NAME@SECONDS=TEXT, got '%s'\n", v);
        return 2;
      }
      memcpy(chat_names[nc], v, (size_t)(at - v));
      chat_names[nc][at - v] = '\0';
      chats[nc] = (kmk_replay_chat){.speaker = chat_names[nc], .text = eq + 1, .at = when};
      nc++;
    } else if (strcmp(a, "--out") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      out = argv[++i];
    } else if (strcmp(a, "--fast") == 0) {
      fast = 1;
    } else if (strcmp(a, "--persona") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      if (np == MAX_PERSONAS) {
        fprintf(stderr, "kameko replay: at most %d personas\n", MAX_PERSONAS);
        return 2;
      }
      personas[np] = resolve_persona(cfg, argv[++i], pbuf[np], sizeof pbuf[np]);
      np++;
    } else {
      fprintf(stderr, "kameko replay: unknown flag '%s' (see kameko --help)\n", a);
      return 2;
    }
  }
  if (nt == 0) {
    fprintf(stderr, "kameko replay: give at least one --speaker NAME=FILE.wav\n");
    return 2;
  }
  if (!out) {
    fprintf(stderr, "kameko replay: --out DIR is required\n");
    return 2;
  }
  for (size_t k = 0; k < nat; k++) {
    size_t j = 0;
    while (j < nt && strcmp(tracks[j].name, ats[k].name) != 0) j++;
    if (j == nt) {
      fprintf(stderr, "kameko replay: --at names '%s', which is not a --speaker\n", ats[k].name);
      return 2;
    }
    tracks[j].at = ats[k].at;
  }
  if (np == 0) personas[np++] = resolve_persona(cfg, "kameko", pbuf[0], sizeof pbuf[0]);
  kmk_replay_opts o = {.tracks = tracks,
                       .n_tracks = nt,
                       .out_dir = out,
                       .fast = fast,
                       .persona_paths = personas,
                       .n_personas = np,
                       .scripts_dir = scripts_dir(cfg),
                       .chats = chats,
                       .n_chats = nc};
  char err[1024] = "";
  int rc = kmk_replay_run(&o, cfg, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "kameko replay: %s\n", err);
    return 1;
  }
  return rc;
}

static int cmd_demo(int argc, char **argv, const kmk_config *cfg) {
  const char *out = "out/demo";
  const char *persona = "kameko";
  int realtime = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      out = argv[++i];
    } else if (strcmp(argv[i], "--realtime") == 0) {
      realtime = 1;
    } else if (strcmp(argv[i], "--persona") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      persona = argv[++i];
    } else {
      fprintf(stderr, "kameko demo: unknown flag '%s' (see kameko --help)\n", argv[i]);
      return 2;
    }
  }
  char pbuf[1024];
  const char *ppath = resolve_persona(cfg, persona, pbuf, sizeof pbuf);
  char err[1024] = "";
  int rc = kmk_demo_run(out, ppath, scripts_dir(cfg), !realtime, cfg, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "kameko demo: %s\n", err);
    return 1;
  }
  return rc;
}

typedef int (*live_main_fn)(const kmk_config *cfg, const char *const *persona_paths,
                            size_t n_personas, const char *scripts_dir, const char *out_dir,
                            char *err, size_t errlen);

/* The live jobs (room, discord): --out DIR and --persona FILE|NAME ..., then the job's main. */
static int cmd_live(const char *name, const char *def_out, live_main_fn fn, int argc, char **argv,
                    const kmk_config *cfg) {
  static char pbuf[MAX_PERSONAS][1024];
  const char *personas[MAX_PERSONAS];
  size_t np = 0;
  const char *out = def_out;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      out = argv[++i];
    } else if (strcmp(argv[i], "--persona") == 0) {
      if (!need_arg(i, argc, argv)) return 2;
      if (np == MAX_PERSONAS) {
        fprintf(stderr, "kameko %s: at most %d personas\n", name, MAX_PERSONAS);
        return 2;
      }
      personas[np] = resolve_persona(cfg, argv[++i], pbuf[np], sizeof pbuf[np]);
      np++;
    } else {
      fprintf(stderr, "kameko %s: unknown flag '%s' (see kameko --help)\n", name, argv[i]);
      return 2;
    }
  }
  if (np == 0) personas[np++] = resolve_persona(cfg, "kameko", pbuf[0], sizeof pbuf[0]);
  char err[1024] = "";
  int rc = fn(cfg, personas, np, scripts_dir(cfg), out, err, sizeof err);
  if (rc != 0) fprintf(stderr, "kameko %s: %s\n", name, err[0] ? err : "failed");
  return rc;
}

int kmk_app_main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines interleave with the log in order */
  const char *env_path = ".env";
  int env_given = 0;
  int i = 1;
  /* First pass: --env, --help and --version need no config. */
  for (int k = 1; k < argc; k++) {
    if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(argv[k], "--version") == 0) {
      printf("kameko 0.1.0\n");
      return 0;
    }
    if (strcmp(argv[k], "--env") == 0 && k + 1 < argc) {
      env_path = argv[k + 1];
      env_given = 1;
    }
  }
  kmk_config cfg;
  char err[1024] = "";
  if (kmk_config_load(&cfg, env_path, env_given, err, sizeof err) < 0) {
    fprintf(stderr, "kameko: %s\n", err);
    kmk_config_free(&cfg);
    return 2;
  }
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--env") == 0) {
      i++;
    } else if (strcmp(a, "--set") == 0 || strcmp(a, "--log-level") == 0) {
      if (!need_arg(i, argc, argv)) goto usage_err;
      char kv[4096];
      if (strcmp(a, "--log-level") == 0) snprintf(kv, sizeof kv, "KMK_LOG_LEVEL=%s", argv[i + 1]);
      else snprintf(kv, sizeof kv, "%s", argv[i + 1]);
      i++;
      char *eq = strchr(kv, '=');
      if (!eq) {
        fprintf(stderr, "kameko: --set wants KEY=VALUE, got '%s'\n", kv);
        goto usage_err;
      }
      *eq = '\0';
      if (kmk_config_set(&cfg, kv, eq + 1, err, sizeof err) < 0) {
        fprintf(stderr, "kameko: %s\n", err);
        goto usage_err;
      }
    } else {
      break; /* command flags (e.g. `kameko --fast`) are checked by the command */
    }
  }
  kmk_log_set_level((kmk_log_level)kmk_log_parse_level(cfg.log_level));
  int rc;
  /* no command: Discord when a bot token is configured, else the browser room */
  const char *cmd = i < argc ? argv[i] : cfg.discord_token && *cfg.discord_token ? "discord" : "room";
  int sub_argc = i < argc ? argc - i - 1 : 0;
  char **sub_argv = i < argc ? argv + i + 1 : argv + argc;
  if (strcmp(cmd, "discord") == 0) {
    rc = cmd_live("discord", "out/discord", kmk_discord_main, sub_argc, sub_argv, &cfg);
  } else if (strcmp(cmd, "room") == 0) {
    rc = cmd_live("room", "out/room", kmk_room_main, sub_argc, sub_argv, &cfg);
  } else if (strcmp(cmd, "replay") == 0) {
    rc = cmd_replay(sub_argc, sub_argv, &cfg);
  } else if (strcmp(cmd, "demo") == 0) {
    rc = cmd_demo(sub_argc, sub_argv, &cfg);
  } else if (cmd[0] == '-') {
    fprintf(stderr, "kameko: unknown flag '%s' (see kameko --help)\n", cmd);
    rc = 2;
  } else {
    fprintf(stderr, "kameko: unknown command '%s' (see kameko --help)\n", cmd);
    rc = 2;
  }
  kmk_config_free(&cfg);
  return rc;
usage_err:
  kmk_config_free(&cfg);
  return 2;
}
