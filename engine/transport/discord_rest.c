/* discord_rest.c - Discord REST calls over the engine's HTTP client, with rate limits.
 *
 * Route keys keep the major parameter (the first channel, guild, webhook or interaction id) and
 * replace other ids; tokens never enter a key (they are secrets).
 * Owns: the pure rate-limit bookkeeping (routes -> buckets from X-RateLimit-Bucket, Remaining,
 * Reset-After; the global limit) and the requests in flight (a list; each request is one
 * kmk_http_req at a time, re-issued with a delay after a 429). 401 is fatal: on_fatal is called and
 * the request fails with KMK_NET_EAUTH. The bot token goes only into the Authorization header.
 * Thread: loop thread only (the pure functions: any thread).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/discord.h"
#include "kameko/log.h"
#include "kameko/net.h"

#define TAG "discord-rest"
#define MAX_RETRIES 5

/* ---- pure bucket bookkeeping ---------------------------------------------------------------- */
static int all_digits(const char *s, size_t n) {
  if (!n) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i])) return 0;
  return 1;
}

void kmk_drest_route_key(const char *method, const char *path, char *out, size_t outlen) {
  if (!outlen) return;
  size_t o = 0;
  int w = snprintf(out, outlen, "%s ", method ? method : "GET");
  o = w > 0 && (size_t)w < outlen ? (size_t)w : outlen - 1;
  const char *p = path ? path : "";
  char prev[32] = "", prev2[32] = "";
  int major_kept = 0;
  while (*p && o + 1 < outlen) {
    while (*p == '/') p++;
    if (!*p) break;
    const char *e = strchr(p, '/');
    const char *q = strchr(p, '?');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (q && (size_t)(q - p) < n) n = (size_t)(q - p);
    char seg[64];
    if (all_digits(p, n)) {
      int major = !major_kept && (!strcmp(prev, "channels") || !strcmp(prev, "guilds") ||
                                  !strcmp(prev, "webhooks") || !strcmp(prev, "interactions"));
      if (major && n < sizeof seg) {
        memcpy(seg, p, n);
        seg[n] = 0;
        major_kept = 1;
      } else {
        snprintf(seg, sizeof seg, "{id}");
      }
    } else if (!strcmp(prev2, "interactions") || !strcmp(prev2, "webhooks")) {
      snprintf(seg, sizeof seg, "{token}");
    } else {
      snprintf(seg, sizeof seg, "%.*s", (int)(n < 60 ? n : 60), p);
    }
    int k = snprintf(out + o, outlen - o, "/%s", seg);
    if (k < 0 || (size_t)k >= outlen - o) {
      out[outlen - 1] = 0;
      return;
    }
    o += (size_t)k;
    snprintf(prev2, sizeof prev2, "%s", prev);
    snprintf(prev, sizeof prev, "%.*s", (int)(n < 31 ? n : 31), p);
    p += n;
    if (*p == '?') break;
  }
  out[o] = 0;
}

void kmk_drest_limits_init(kmk_drest_limits *l) { memset(l, 0, sizeof *l); }

static kmk_drest_bucket *find(kmk_drest_limits *l, const char *route, double now) {
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->b[i].route, route)) {
      l->b[i].used = now;
      return &l->b[i];
    }
  kmk_drest_bucket *b;
  if (l->n < KMK_DREST_BUCKETS) {
    b = &l->b[l->n++];
  } else { /* evict the least recently used */
    b = &l->b[0];
    for (int i = 1; i < l->n; i++)
      if (l->b[i].used < b->used) b = &l->b[i];
  }
  memset(b, 0, sizeof *b);
  snprintf(b->route, sizeof b->route, "%s", route);
  b->remaining = -1;
  b->used = now;
  return b;
}

double kmk_drest_limits_delay(kmk_drest_limits *l, const char *route, double now) {
  if (now < l->global_until) return l->global_until - now;
  kmk_drest_bucket *b = find(l, route, now);
  if (now >= b->reset_at && b->remaining == 0) b->remaining = -1; /* the window passed */
  if (b->remaining == 0) return b->reset_at - now;
  if (b->remaining > 0) {
    b->remaining--;
    /* routes sharing the bucket share the count */
    if (b->bucket[0])
      for (int i = 0; i < l->n; i++)
        if (&l->b[i] != b && !strcmp(l->b[i].bucket, b->bucket)) l->b[i].remaining = b->remaining;
  }
  return 0;
}

void kmk_drest_limits_update(kmk_drest_limits *l, const char *route, const char *bucket,
                             const char *remaining, const char *reset_after, double now) {
  kmk_drest_bucket *b = find(l, route, now);
  if (bucket && *bucket) snprintf(b->bucket, sizeof b->bucket, "%s", bucket);
  if (remaining && *remaining) {
    long r = strtol(remaining, NULL, 10);
    b->remaining = r < 0 ? 0 : (r > 100000 ? 100000 : (int)r);
  }
  if (reset_after && *reset_after) {
    double s = strtod(reset_after, NULL);
    if (s >= 0 && s < 86400) b->reset_at = now + s * 1000;
  }
  if (b->bucket[0])
    for (int i = 0; i < l->n; i++)
      if (&l->b[i] != b && !strcmp(l->b[i].bucket, b->bucket)) {
        l->b[i].remaining = b->remaining;
        l->b[i].reset_at = b->reset_at;
      }
}

double kmk_drest_limits_429(kmk_drest_limits *l, const char *route, const char *retry_after_hdr,
                            const char *body, const char *global_hdr, double now) {
  double s = -1;
  int global = global_hdr && !strcasecmp(global_hdr, "true");
  cJSON *j = body ? cJSON_Parse(body) : NULL;
  const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retry_after");
  if (cJSON_IsNumber(ra) && ra->valuedouble >= 0) s = ra->valuedouble;
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "global"))) global = 1;
  cJSON_Delete(j);
  if (s < 0 && retry_after_hdr && *retry_after_hdr) s = strtod(retry_after_hdr, NULL);
  if (!(s >= 0)) s = 1;
  if (s > 3600) s = 3600;
  double ms = s * 1000;
  if (global) {
    l->global_until = now + ms;
  } else {
    kmk_drest_bucket *b = find(l, route, now);
    b->remaining = 0;
    b->reset_at = now + ms;
  }
  return ms;
}

/* ---- the client ------------------------------------------------------------------------------ */
typedef struct call {
  struct call *prev, *next;
  kmk_drest *r;
  char *method, *path, *body;
  char route[96];
  kmk_drest_done_fn done;
  void *ud;
  int retries;
  kmk_http_req *req;
} call;

struct kmk_drest {
  kmk_http *http;
  char *api, *auth;
  kmk_drest_limits lim;
  call *calls;
  size_t n;
  int retries_total;
  void (*on_fatal)(void *, const char *);
  void *ud;
};

kmk_drest *kmk_drest_new(kmk_http *http, const char *api_url, const char *token,
                         void (*on_fatal)(void *ud, const char *why), void *ud) {
  if (!http || !api_url || !token) return NULL;
  kmk_drest *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->http = http;
  r->api = strdup(api_url);
  size_t n = strlen(r->api);
  while (n && r->api[n - 1] == '/') r->api[--n] = 0;
  size_t al = strlen(token) + 32;
  r->auth = malloc(al);
  snprintf(r->auth, al, "Authorization: Bot %s", token);
  r->on_fatal = on_fatal;
  r->ud = ud;
  kmk_drest_limits_init(&r->lim);
  return r;
}

static void free_call(call *c) {
  kmk_drest *r = c->r;
  if (c->prev) c->prev->next = c->next;
  else r->calls = c->next;
  if (c->next) c->next->prev = c->prev;
  r->n--;
  free(c->method);
  free(c->path);
  free(c->body);
  free(c);
}

static int issue(call *c, double delay_ms);

static void on_done(void *ud, kmk_http_req *req, int err, const kmk_http_resp *resp) {
  (void)req;
  call *c = ud;
  kmk_drest *r = c->r;
  c->req = NULL;
  double now = kmk_net_now_ms(kmk_http_loop(r->http));
  long status = err ? 0 : resp->status;
  const char *body = !err && resp->body ? resp->body : "";
  if (!err) {
    char bucket[64] = "", rem[32] = "", reset[32] = "";
    int hb = kmk_http_header(resp, "X-RateLimit-Bucket", bucket, sizeof bucket);
    int hr = kmk_http_header(resp, "X-RateLimit-Remaining", rem, sizeof rem);
    int hs = kmk_http_header(resp, "X-RateLimit-Reset-After", reset, sizeof reset);
    if (status == 429) {
      char ra[32] = "", gl[16] = "";
      kmk_http_header(resp, "Retry-After", ra, sizeof ra);
      kmk_http_header(resp, "X-RateLimit-Global", gl, sizeof gl);
      if (hb == 0) kmk_drest_limits_update(&r->lim, c->route, bucket, NULL, NULL, now);
      double wait = kmk_drest_limits_429(&r->lim, c->route, ra, body, gl, now);
      if (c->retries < MAX_RETRIES && wait <= 60000) {
        c->retries++;
        r->retries_total++;
        KMK_WARN(TAG, "429 on %s: retrying in %.0f ms", c->route, wait);
        if (issue(c, wait) == 0) return;
      }
      err = KMK_NET_ERATELIMIT;
    } else {
      kmk_drest_limits_update(&r->lim, c->route, hb == 0 ? bucket : NULL, hr == 0 ? rem : NULL,
                              hs == 0 ? reset : NULL, now);
      if (status == 401) {
        err = KMK_NET_EAUTH;
        KMK_ERR(TAG, "401 Unauthorized on %s: the bot token is invalid", c->route);
        if (r->on_fatal) r->on_fatal(r->ud, "Discord REST answered 401 Unauthorized: check DISCORD_TOKEN");
      } else if (status >= 400) {
        KMK_WARN(TAG, "%s answered %ld: %.200s", c->route, status, body);
      }
    }
  } else {
    KMK_WARN(TAG, "%s failed: %s", c->route, kmk_net_strerror(err));
  }
  kmk_drest_done_fn done = c->done;
  void *dud = c->ud;
  free_call(c);
  if (done) done(dud, err, status, body);
}

static int issue(call *c, double delay_ms) {
  kmk_drest *r = c->r;
  double now = kmk_net_now_ms(kmk_http_loop(r->http));
  double wait = kmk_drest_limits_delay(&r->lim, c->route, now + delay_ms);
  char url[2048];
  snprintf(url, sizeof url, "%s%s%s", r->api, c->path[0] == '/' ? "" : "/", c->path);
  const char *hdrs[] = {r->auth, "Content-Type: application/json",
                        "User-Agent: DiscordBot (https://github.com/kameko, 0.1)", NULL};
  kmk_http_opts o = {.method = c->method,
                     .url = url,
                     .headers = hdrs,
                     .body = c->body,
                     .body_len = c->body ? strlen(c->body) : 0,
                     .delay_ms = delay_ms + wait,
                     .timeout_ms = 15000,
                     .max_body = 1u << 20,
                     .on_done = on_done,
                     .ud = c};
  return kmk_http_request(r->http, &o, &c->req);
}

int kmk_drest_call(kmk_drest *r, const char *method, const char *path, const char *body,
                   kmk_drest_done_fn done, void *ud) {
  if (!r || !method || !path) return KMK_NET_EINVAL;
  call *c = calloc(1, sizeof *c);
  if (!c) return KMK_NET_ENOMEM;
  c->r = r;
  c->method = strdup(method);
  c->path = strdup(path);
  c->body = body ? strdup(body) : NULL;
  c->done = done;
  c->ud = ud;
  kmk_drest_route_key(method, path, c->route, sizeof c->route);
  c->next = r->calls;
  if (r->calls) r->calls->prev = c;
  r->calls = c;
  r->n++;
  int rc = issue(c, 0);
  if (rc != 0) free_call(c);
  return rc;
}

size_t kmk_drest_pending(const kmk_drest *r) { return r ? r->n : 0; }
int kmk_drest_retries(const kmk_drest *r) { return r ? r->retries_total : 0; }

void kmk_drest_free(kmk_drest *r) {
  if (!r) return;
  while (r->calls) { /* each caller hears KMK_NET_ECLOSED once, to release its state */
    call *c = r->calls;
    if (c->req) kmk_http_cancel(c->req);
    kmk_drest_done_fn done = c->done;
    void *ud = c->ud;
    free_call(c);
    if (done) done(ud, KMK_NET_ECLOSED, 0, "");
  }
  free(r->api);
  free(r->auth);
  free(r);
}
