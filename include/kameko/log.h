/* log.h - leveled, tagged logging to stderr. Any thread may call; lines are written whole.
 *
 * Level comes from KMK_LOG_LEVEL (error|warn|info|debug) or kmk_log_set_level(). Secrets must
 * never be passed in: use kmk_log_redact() on anything that could hold a key.
 */
#ifndef KAMEKO_LOG_H
#define KAMEKO_LOG_H

#include <stddef.h>

typedef enum { KMK_LOG_ERROR = 0, KMK_LOG_WARN, KMK_LOG_INFO, KMK_LOG_DEBUG } kmk_log_level;

void kmk_log_set_level(kmk_log_level level);
kmk_log_level kmk_log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns -1 when unknown. */
int kmk_log_parse_level(const char *s);
/* Registers a secret value; every later log line has it replaced by "***". Copies the string. */
void kmk_log_add_secret(const char *secret);

void kmk_log(kmk_log_level level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define KMK_ERR(tag, ...) kmk_log(KMK_LOG_ERROR, tag, __VA_ARGS__)
#define KMK_WARN(tag, ...) kmk_log(KMK_LOG_WARN, tag, __VA_ARGS__)
#define KMK_INFO(tag, ...) kmk_log(KMK_LOG_INFO, tag, __VA_ARGS__)
#define KMK_DEBUG(tag, ...) \
  do { if (kmk_log_get_level() >= KMK_LOG_DEBUG) kmk_log(KMK_LOG_DEBUG, tag, __VA_ARGS__); } while (0)

#endif
