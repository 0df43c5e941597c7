/* test_net_peer.h - starts tests/peers/cloud/server.js on a loopback port for one test process.
 *
 * kmk_peer_start() spawns `node server.js --port 0 [extra args]`, reads the "PORT n" line and
 * returns the port (0 when node or the peer's node_modules is missing: the caller prints
 * "skipped" and passes). The peer's stdin is a pipe we hold; it exits when we close it or die. */
#ifndef KMK_TEST_NET_PEER_H
#define KMK_TEST_NET_PEER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t kmk_peer_pid = -1;
static int kmk_peer_stdin = -1;

static int kmk_peer_start(const char *const *extra) {
  char dir[1024], mods[1100], script[1100];
  snprintf(dir, sizeof dir, "%s/tests/peers/cloud", KMK_SOURCE_DIR);
  snprintf(mods, sizeof mods, "%s/node_modules/ws", dir);
  snprintf(script, sizeof script, "%s/server.js", dir);
  if (access(mods, R_OK) != 0) {
    printf("skipped: %s missing (run `npm ci` in tests/peers/cloud)\n", mods);
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
    const char *argv[32] = {"node", script, "--port", "0"};
    int n = 4;
    for (const char *const *e = extra; e && *e && n < 30; e++) argv[n++] = *e;
    argv[n] = NULL;
    execvp("node", (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  kmk_peer_pid = pid;
  kmk_peer_stdin = in[1];
  char line[128];
  size_t len = 0;
  while (len + 1 < sizeof line) {
    ssize_t r = read(out[0], line + len, 1);
    if (r <= 0) break;
    if (line[len] == '\n') break;
    len++;
  }
  line[len] = 0;
  close(out[0]);
  int port = 0;
  if (sscanf(line, "PORT %d", &port) != 1 || port <= 0) {
    printf("skipped: the cloud peer did not start (node missing?)\n");
    return 0;
  }
  return port;
}

static void kmk_peer_stop(void) {
  if (kmk_peer_pid > 0) {
    close(kmk_peer_stdin);
    kill(kmk_peer_pid, SIGTERM);
    waitpid(kmk_peer_pid, NULL, 0);
    kmk_peer_pid = -1;
  }
}

#endif
