/* test_net_peer.h - starts tests/peers/cloud/server.js on a loopback port for one test process.
 *
 * kmk_peer_start() spawns `node server.js --port 0 [extra args]`, reads the "PORT n" line and
 * returns the port (0 when node or the peer's node_modules is missing: the caller prints
 * "skipped" and passes). The peer's stdin is a pipe we hold; it exits when we close it or die.
 * kmk_node_peer_spawn() is the spawning itself, shared with tests/e2e/test_discord_peer.h. */
#ifndef KMK_TEST_NET_PEER_H
#define KMK_TEST_NET_PEER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Spawns `node KMK_SOURCE_DIR/tests/peers/<peer>/<script> --port 0 [args] [extra]` (args and extra
 * NULL-terminated, either may be NULL) with pipes on its stdin and stdout, and reads its "PORT n"
 * line. *pid and *in_fd (the peer's stdin) are set once it runs; *out_fd gets its stdout after the
 * PORT line, or is closed when out_fd is NULL. Returns the port; 0 (printed "skipped: ...") when
 * node_modules/ws is missing (hint says how to install it) or the peer did not start. */
__attribute__((unused)) static int kmk_node_peer_spawn(const char *peer, const char *script_name,
                                                      const char *const *args,
                                                      const char *const *extra, const char *hint,
                                                      pid_t *pid_out, int *in_fd, int *out_fd) {
  char dir[1024], mods[1100], script[1100];
  snprintf(dir, sizeof dir, "%s/tests/peers/%s", KMK_SOURCE_DIR, peer);
  snprintf(mods, sizeof mods, "%s/node_modules/ws", dir);
  snprintf(script, sizeof script, "%s/%s", dir, script_name);
  if (access(mods, R_OK) != 0) {
    printf("skipped: %s missing (%s)\n", mods, hint);
    return 0;
  }
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return 0;
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    const char *argv[40] = {"node", script, "--port", "0"};
    int n = 4;
    for (const char *const *e = args; e && *e && n < 38; e++) argv[n++] = *e;
    for (const char *const *e = extra; e && *e && n < 38; e++) argv[n++] = *e;
    argv[n] = NULL;
    execvp("node", (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  *pid_out = pid;
  *in_fd = in[1];
  char line[128];
  size_t len = 0;
  while (len + 1 < sizeof line) {
    ssize_t r = read(out[0], line + len, 1);
    if (r <= 0 || line[len] == '\n') break;
    len++;
  }
  line[len] = 0;
  int port = 0;
  if (sscanf(line, "PORT %d", &port) != 1 || port <= 0) {
    printf("skipped: the %s peer did not start (node missing?)\n", peer);
    close(out[0]);
    return 0;
  }
  if (out_fd) *out_fd = out[0];
  else close(out[0]);
  return port;
}

static pid_t kmk_peer_pid = -1;
static int kmk_peer_stdin = -1;

__attribute__((unused)) static int kmk_peer_start(const char *const *extra) {
  return kmk_node_peer_spawn("cloud", "server.js", NULL, extra, "run `npm ci` in tests/peers/cloud",
                             &kmk_peer_pid, &kmk_peer_stdin, NULL);
}

__attribute__((unused)) static void kmk_peer_stop(void) {
  if (kmk_peer_pid > 0) {
    close(kmk_peer_stdin);
    kill(kmk_peer_pid, SIGTERM);
    waitpid(kmk_peer_pid, NULL, 0);
    kmk_peer_pid = -1;
  }
}

#endif
