/* log.c - leveled, tagged logging with secret redaction.
 * Thread: any. A mutex keeps lines whole and guards the secret list.
 */
#include "kameko/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KMK_LOG_MAX_SECRETS 16

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static kmk_log_level log_level = KMK_LOG_INFO;
static int log_level_from_env_done;
static char *log_secrets[KMK_LOG_MAX_SECRETS];
static int log_nsecrets;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int kmk_log_parse_level(const char *s) {
  if (!s) return -1;
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

void kmk_log_set_level(kmk_log_level level) {
  log_level = level;
  log_level_from_env_done = 1;
}

kmk_log_level kmk_log_get_level(void) {
  if (!log_level_from_env_done) {
    int l = kmk_log_parse_level(getenv("KMK_LOG_LEVEL"));
    if (l >= 0) log_level = (kmk_log_level)l;
    log_level_from_env_done = 1;
  }
  return log_level;
}

void kmk_log_add_secret(const char *secret) {
  if (!secret || strlen(secret) < 4) return; /* too short to redact without mangling text */
  pthread_mutex_lock(&log_mu);
  for (int i = 0; i < log_nsecrets; i++)
    if (strcmp(log_secrets[i], secret) == 0) goto out;
  if (log_nsecrets < KMK_LOG_MAX_SECRETS) log_secrets[log_nsecrets++] = strdup(secret);
out:
  pthread_mutex_unlock(&log_mu);
}

/* Replaces every registered secret in buf (in place; "***" is never longer than a secret). */
static void redact(char *buf) {
  for (int i = 0; i < log_nsecrets; i++) {
    size_t sl = strlen(log_secrets[i]);
    char *p;
    while ((p = strstr(buf, log_secrets[i])) != NULL) {
      memcpy(p, "***", 3);
      memmove(p + 3, p + sl, strlen(p + sl) + 1);
    }
  }
}

void kmk_log(kmk_log_level level, const char *tag, const char *fmt, ...) {
  if (level > kmk_log_get_level()) return;
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  pthread_mutex_lock(&log_mu);
  redact(msg);
  fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s [%s] %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
          ts.tv_nsec / 1000000, level_names[level], tag ? tag : "-", msg);
  pthread_mutex_unlock(&log_mu);
}
