/* cloud_common.c - what every cloud provider client sets up the same way: policy defaults, the
 * endpoint URL from a configurable base, and the bearer header (whose key is registered for log
 * redaction). Pure; any thread. Returned strings are malloc'd and owned by the caller. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/cloud.h"
#include "kameko/log.h"

void kmk_cloud_policy_defaults(kmk_cloud_policy *p, double timeout_ms, double first_byte_ms,
                               double stall_ms) {
  if (p->timeout_ms <= 0) p->timeout_ms = timeout_ms;
  if (p->first_byte_ms <= 0) p->first_byte_ms = first_byte_ms;
  if (p->stall_ms <= 0) p->stall_ms = stall_ms;
  if (p->max_retries == 0) p->max_retries = 2;
  else if (p->max_retries < 0) p->max_retries = 0;
  if (p->max_retry_after_s <= 0) p->max_retry_after_s = 5;
  if (p->backoff_base_ms <= 0) p->backoff_base_ms = 250;
  if (p->backoff_max_ms <= 0) p->backoff_max_ms = 4000;
  if (p->max_active <= 0) p->max_active = 2;
  if (p->max_queued <= 0) p->max_queued = 4;
  if (p->breaker_threshold <= 0) p->breaker_threshold = 3;
  if (p->breaker_cooldown_s <= 0) p->breaker_cooldown_s = 30;
}

char *kmk_cloud_url(const char *base, const char *path) {
  size_t ul = strlen(base);
  while (ul && base[ul - 1] == '/') ul--;
  size_t n = ul + strlen(path) + 1;
  char *url = malloc(n);
  if (url) snprintf(url, n, "%.*s%s", (int)ul, base, path);
  return url;
}

char *kmk_cloud_bearer(const char *api_key) {
  if (!api_key || !*api_key) return NULL;
  kmk_log_add_secret(api_key);
  size_t n = strlen(api_key) + 32;
  char *h = malloc(n);
  if (h) snprintf(h, n, "Authorization: Bearer %s", api_key);
  return h;
}
