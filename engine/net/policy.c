/* policy.c - pure resilience helpers: circuit breaker, retryable statuses, Retry-After parsing,
 * exponential backoff with jitter. No I/O, no globals; any thread. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kameko/net.h"

void kmk_breaker_init(kmk_breaker *b, int threshold, double cooldown_s) {
  memset(b, 0, sizeof *b);
  b->threshold = threshold > 0 ? threshold : 3;
  b->cooldown_s = cooldown_s > 0 ? cooldown_s : 30;
}

int kmk_breaker_is_open(const kmk_breaker *b, double now) {
  return b->fails >= b->threshold && now < b->open_until;
}

int kmk_breaker_allow(kmk_breaker *b, double now) {
  if (b->fails < b->threshold) return 1;
  if (now < b->open_until) return 0;
  if (b->probing) return 0; /* half-open: one probe at a time */
  b->probing = 1;
  return 1;
}

void kmk_breaker_success(kmk_breaker *b) {
  b->fails = 0;
  b->probing = 0;
  b->open_until = 0;
}

void kmk_breaker_failure(kmk_breaker *b, double now) {
  b->probing = 0;
  if (b->fails < 1000000) b->fails++;
  if (b->fails >= b->threshold) b->open_until = now + b->cooldown_s;
}

int kmk_http_status_retryable(long s) { return s == 408 || s == 409 || s == 429 || s >= 500; }

static int month_index(const char *m) {
  static const char *names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; i++)
    if (strncmp(m, names[i], 3) == 0) return i;
  return -1;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" -> unix seconds, or -1. */
static double parse_http_date(const char *v) {
  int d, y, hh, mm, ss;
  char mon[4] = {0};
  const char *p = strchr(v, ',');
  p = p ? p + 1 : v;
  if (sscanf(p, " %d %3s %d %d:%d:%d", &d, mon, &y, &hh, &mm, &ss) != 6) return -1;
  int mi = month_index(mon);
  if (mi < 0 || d < 1 || d > 31 || y < 1970 || hh > 23 || mm > 59 || ss > 60) return -1;
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mi;
  tm.tm_mday = d;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return (double)timegm(&tm);
}

double kmk_http_parse_retry_after(const char *v, double now_unix) {
  if (!v) return -1;
  while (*v == ' ' || *v == '\t') v++;
  if (!*v) return -1;
  if (isdigit((unsigned char)*v)) {
    char *end;
    double s = strtod(v, &end);
    while (*end == ' ' || *end == '\r' || *end == '\n') end++;
    if (*end || !isfinite(s) || s < 0) return -1;
    return s;
  }
  double t = parse_http_date(v);
  if (t < 0) return -1;
  return t > now_unix ? t - now_unix : 0;
}

double kmk_http_date_to_unix(const char *v) { return v ? parse_http_date(v) : -1; }

double kmk_backoff_ms(int attempt, double base_ms, double max_ms, double rnd) {
  if (attempt < 1) attempt = 1;
  double d = base_ms * pow(2.0, attempt - 1 > 30 ? 30 : attempt - 1);
  if (d > max_ms) d = max_ms;
  d *= 0.8 + 0.4 * (rnd < 0 ? 0 : rnd >= 1 ? 0.999 : rnd);
  return d;
}

double kmk_parse_duration_s(const char *v) {
  if (!v) return -1;
  double total = 0;
  int any = 0;
  const char *p = v;
  while (*p == ' ') p++;
  while (*p) {
    char *end;
    double x = strtod(p, &end);
    if (end == p || !isfinite(x) || x < 0) return -1;
    p = end;
    if (p[0] == 'm' && p[1] == 's') x /= 1000, p += 2;
    else if (*p == 'h') x *= 3600, p++;
    else if (*p == 'm') x *= 60, p++;
    else if (*p == 's') p++;
    else if (*p == 0 && !any) { /* a bare number: seconds */ }
    else return -1;
    total += x;
    any = 1;
    while (*p == ' ' || *p == '\r' || *p == '\n') p++;
  }
  return any ? total : -1;
}
