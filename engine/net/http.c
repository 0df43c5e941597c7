/* http.c - HTTP client: one libcurl multi handle driven by the engine's libuv loop.
 *
 * Owns: the CURLM handle, one uv_timer for curl's timeouts, one uv_timer ("sweep") for our own
 * per-request deadlines (total, first byte, stall) and delayed starts, one uv_poll per socket curl
 * asks us to watch, and every kmk_http_req (its CURL easy handle, header list, mime form, buffers).
 * Lanes (per-provider concurrency limits with a bounded FIFO) are owned here too.
 *
 * Thread: loop thread only. No blocking call: curl only ever runs inside
 * curl_multi_socket_action from a poll or timer callback.
 *
 * Re-entrancy: libcurl forbids multi calls from inside its callbacks, so while we are inside
 * curl (h->depth > 0) cancels only mark the request dead and new requests wait; flush() does the
 * removals and starts once curl has returned. User callbacks (on_data inside curl, on_done outside)
 * may therefore call kmk_http_request / kmk_http_cancel freely.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "kameko/log.h"
#include "kameko/net.h"

#define TAG "http"
#define SWEEP_MS 10

typedef enum { RQ_DELAYED, RQ_QUEUED, RQ_RUNNING, RQ_DONE, RQ_DEAD } rq_state;

struct kmk_http_lane {
  kmk_http *h;
  char name[32];
  int max_active, max_queued, running, queued;
  struct kmk_http_lane *next;
};

struct kmk_http_req {
  kmk_http *h;
  kmk_http_req *prev, *next;
  rq_state state;
  int in_multi;
  uint64_t seq;
  CURL *easy;
  struct curl_slist *hdrs;
  curl_mime *mime;
  kmk_http_lane *lane;
  double start_at, t0, deadline_ms, first_byte_ms_lim, stall_ms, last_io;
  double first_byte_at;
  double user_deadline; /* absolute loop ms; 0 = none (kmk_http_set_deadline) */
  char *body;
  size_t body_len, body_cap, max_body;
  char *hdr;
  size_t hdr_len, hdr_cap;
  long status;
  int err_override;
  double timeout_ms;
  kmk_http_data_fn on_data;
  kmk_http_done_fn on_done;
  void *ud;
};

typedef struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  kmk_http *h;
  struct sock *prev, *next;
} sock;

struct kmk_http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t curl_timer, sweep;
  kmk_http_req *reqs;
  sock *socks;
  kmk_http_lane *lanes;
  size_t n_reqs;
  uint64_t seq;
  int depth, closing, pending_closes, sweeping;
  void (*on_closed)(void *);
  void *closed_ud;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

double kmk_net_now_ms(uv_loop_t *loop) {
  uv_update_time(loop);
  return (double)uv_now(loop);
}

static double now_ms(kmk_http *h) { return (double)uv_now(h->loop); }

const char *kmk_net_strerror(int err) {
  switch (err) {
  case KMK_NET_OK: return "ok";
  case KMK_NET_EINVAL: return "invalid argument";
  case KMK_NET_ENOMEM: return "out of memory";
  case KMK_NET_EBUSY: return "provider busy (queue full)";
  case KMK_NET_ETIMEDOUT: return "timeout";
  case KMK_NET_ESTALLED: return "stalled";
  case KMK_NET_ECONNECT: return "connection failed";
  case KMK_NET_EPROTO: return "protocol error";
  case KMK_NET_EHTTP: return "http error";
  case KMK_NET_EAUTH: return "rejected credentials";
  case KMK_NET_ERATELIMIT: return "rate limited";
  case KMK_NET_ESERVER: return "server error";
  case KMK_NET_EOPEN: return "circuit open";
  case KMK_NET_ECLOSED: return "closed";
  case KMK_NET_ETOOBIG: return "response too big";
  case KMK_NET_EDECODE: return "audio decode failed";
  default: return "unknown error";
  }
}

/* ---- request list & lifetime ------------------------------------------------------------- */

static void link_req(kmk_http *h, kmk_http_req *r) {
  r->next = h->reqs;
  if (h->reqs) h->reqs->prev = r;
  h->reqs = r;
  h->n_reqs++;
}

static void free_req(kmk_http_req *r) {
  kmk_http *h = r->h;
  if (r->prev) r->prev->next = r->next;
  else h->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  h->n_reqs--;
  if (r->in_multi) curl_multi_remove_handle(h->multi, r->easy);
  if (r->easy) curl_easy_cleanup(r->easy);
  if (r->mime) curl_mime_free(r->mime);
  curl_slist_free_all(r->hdrs);
  free(r->body);
  free(r->hdr);
  free(r);
}

static void lane_release(kmk_http_req *r) {
  if (!r->lane) return;
  if (r->state == RQ_RUNNING) r->lane->running--;
  else if (r->state == RQ_QUEUED || r->state == RQ_DELAYED) r->lane->queued--;
}

static void sweep_cb(uv_timer_t *t);

static void arm_sweep(kmk_http *h) {
  if (!h->closing && h->n_reqs > 0 && !h->sweeping) {
    uv_timer_start(&h->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
    h->sweeping = 1;
  } else if (h->n_reqs == 0 && h->sweeping) {
    uv_timer_stop(&h->sweep);
    h->sweeping = 0;
  }
}

static void start_req(kmk_http_req *r) {
  kmk_http *h = r->h;
  if (r->lane) r->lane->running++;
  r->state = RQ_RUNNING;
  r->t0 = now_ms(h);
  r->last_io = r->t0;
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
    /* Cannot happen outside curl callbacks; fail it like a connect error on the next sweep. */
    r->err_override = KMK_NET_ECONNECT;
    r->deadline_ms = 0;
    return;
  }
  r->in_multi = 1;
}

/* Removes dead requests and starts what may start. Only at depth 0. */
static void flush(kmk_http *h) {
  if (h->depth > 0) return;
  double now = now_ms(h);
  for (kmk_http_req *r = h->reqs, *n; r; r = n) {
    n = r->next;
    if (r->state == RQ_DEAD) free_req(r);
  }
  for (int again = 1; again;) {
    again = 0;
    /* oldest first: the list is newest-first, so pick the minimum seq each round */
    kmk_http_req *best = NULL;
    for (kmk_http_req *r = h->reqs; r; r = r->next) {
      if (r->state == RQ_DELAYED && r->start_at <= now) {
        if (r->lane && r->lane->running >= r->lane->max_active) {
          r->state = RQ_QUEUED; /* its lane slot was counted as queued already */
          continue;
        }
        if (!best || r->seq < best->seq) best = r;
      } else if (r->state == RQ_QUEUED && (!r->lane || r->lane->running < r->lane->max_active)) {
        if (!best || r->seq < best->seq) best = r;
      }
    }
    if (best) {
      if (best->lane) best->lane->queued--;
      start_req(best);
      again = 1;
    }
  }
  arm_sweep(h);
}

static int map_curl(CURLcode c) {
  switch (c) {
  case CURLE_OK: return 0;
  case CURLE_OPERATION_TIMEDOUT: return KMK_NET_ETIMEDOUT;
  case CURLE_PARTIAL_FILE:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_WEIRD_SERVER_REPLY: return KMK_NET_EPROTO;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL: return KMK_NET_EINVAL;
  default: return KMK_NET_ECONNECT;
  }
}

static void finish(kmk_http_req *r, int err) {
  kmk_http *h = r->h;
  if (r->state != RQ_RUNNING) return;
  lane_release(r);
  r->state = RQ_DONE;
  if (r->in_multi) {
    curl_multi_remove_handle(h->multi, r->easy);
    r->in_multi = 0;
  }
  if (!r->status && r->easy) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  kmk_http_resp resp = {r->status, r->on_data ? NULL : (r->body ? r->body : ""),
                        r->on_data ? 0 : r->body_len, r->hdr ? r->hdr : "",
                        r->first_byte_at > 0 ? r->first_byte_at - r->t0 : -1, now_ms(h) - r->t0};
  h->depth++; /* requests made from on_done start at the flush below */
  r->on_done(r->ud, r, err, &resp);
  h->depth--;
  r->state = RQ_DEAD;
}

static void check_info(kmk_http *h) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    kmk_http_req *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (!r) continue;
    CURLcode res = m->data.result;
    if (r->state != RQ_RUNNING) { /* cancelled or aborted by on_data */
      continue;
    }
    int err = r->err_override ? r->err_override : map_curl(res);
    if (err && res != CURLE_OK)
      KMK_DEBUG(TAG, "request failed: %s (%s)", curl_easy_strerror(res), kmk_net_strerror(err));
    finish(r, err);
  }
}

static void action(kmk_http *h, curl_socket_t fd, int flags) {
  int running;
  h->depth++;
  curl_multi_socket_action(h->multi, fd, flags, &running);
  h->depth--;
  if (h->depth == 0) {
    check_info(h);
    flush(h);
  }
}

/* ---- curl callbacks ------------------------------------------------------------------------ */

static void sock_closed(uv_handle_t *hd) {
  sock *k = hd->data;
  kmk_http *h = k->h;
  free(k);
  h->pending_closes--;
  if (h->closing && h->pending_closes == 0) {
    void (*cb)(void *) = h->on_closed;
    void *ud = h->closed_ud;
    free(h);
    if (cb) cb(ud);
  }
}

static void close_sock(sock *k) {
  kmk_http *h = k->h;
  if (k->prev) k->prev->next = k->next;
  else h->socks = k->next;
  if (k->next) k->next->prev = k->prev;
  h->pending_closes++;
  uv_close((uv_handle_t *)&k->poll, sock_closed);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  sock *k = p->data;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  action(k->h, k->fd, flags);
}

static int socket_fn(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  kmk_http *h = userp;
  sock *k = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      uv_poll_stop(&k->poll);
      close_sock(k);
      curl_multi_assign(h->multi, s, NULL);
    }
    return 0;
  }
  if (!k) {
    k = calloc(1, sizeof *k);
    if (!k) return -1;
    k->fd = s;
    k->h = h;
    if (uv_poll_init_socket(h->loop, &k->poll, s) != 0) {
      free(k);
      return -1;
    }
    k->poll.data = k;
    k->next = h->socks;
    if (h->socks) h->socks->prev = k;
    h->socks = k;
    curl_multi_assign(h->multi, s, k);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  uv_poll_start(&k->poll, ev, poll_cb);
  return 0;
}

static void curl_timer_cb(uv_timer_t *t) { action(t->data, CURL_SOCKET_TIMEOUT, 0); }

static int timer_fn(CURLM *m, long ms, void *userp) {
  kmk_http *h = userp;
  if (h->closing) return 0;
  if (ms < 0) uv_timer_stop(&h->curl_timer);
  else uv_timer_start(&h->curl_timer, curl_timer_cb, (uint64_t)ms, 0);
  return 0;
}

static void got_io(kmk_http_req *r) {
  double t = now_ms(r->h);
  r->last_io = t;
  if (r->first_byte_at <= 0) r->first_byte_at = t;
}

static size_t header_fn(char *p, size_t sz, size_t nm, void *ud) {
  kmk_http_req *r = ud;
  size_t n = sz * nm;
  if (r->state != RQ_RUNNING) return 0;
  got_io(r);
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) r->hdr_len = 0; /* new response (100, redirect) */
  if (r->hdr_len + n + 1 > 65536) return n; /* cap: ignore excess headers */
  if (r->hdr_len + n + 1 > r->hdr_cap) {
    size_t cap = r->hdr_cap ? r->hdr_cap * 2 : 1024;
    while (cap < r->hdr_len + n + 1) cap *= 2;
    char *nb = realloc(r->hdr, cap);
    if (!nb) return 0;
    r->hdr = nb;
    r->hdr_cap = cap;
  }
  memcpy(r->hdr + r->hdr_len, p, n);
  r->hdr_len += n;
  r->hdr[r->hdr_len] = 0;
  return n;
}

static size_t write_fn(char *p, size_t sz, size_t nm, void *ud) {
  kmk_http_req *r = ud;
  size_t n = sz * nm;
  if (r->state != RQ_RUNNING) return 0;
  got_io(r);
  if (!r->status) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  if (r->on_data) {
    kmk_http_resp resp = {r->status, NULL, 0, r->hdr ? r->hdr : "",
                          r->first_byte_at - r->t0, now_ms(r->h) - r->t0};
    if (r->on_data(r->ud, r, &resp, p, n) != 0) {
      if (r->state == RQ_RUNNING) {
        lane_release(r);
        r->state = RQ_DEAD; /* aborted by the caller: no on_done */
      }
      return 0;
    }
    return r->state == RQ_RUNNING ? n : 0;
  }
  if (r->body_len + n > r->max_body) {
    r->err_override = KMK_NET_ETOOBIG;
    return 0;
  }
  if (r->body_len + n + 1 > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap * 2 : 4096;
    while (cap < r->body_len + n + 1) cap *= 2;
    char *nb = realloc(r->body, cap);
    if (!nb) {
      r->err_override = KMK_NET_ENOMEM;
      return 0;
    }
    r->body = nb;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, p, n);
  r->body_len += n;
  r->body[r->body_len] = 0;
  return n;
}

/* ---- deadlines ----------------------------------------------------------------------------- */

static void sweep_cb(uv_timer_t *t) {
  kmk_http *h = t->data;
  double now = now_ms(h);
  int changed = 0;
  for (int again = 1; again;) {
    again = 0;
    for (kmk_http_req *r = h->reqs; r; r = r->next) {
      if (r->state == RQ_DELAYED && r->start_at <= now) changed = 1;
      if (r->state != RQ_RUNNING) continue;
      int err = 0;
      if (r->err_override && !r->in_multi) err = r->err_override;
      else if (now - r->t0 >= r->timeout_ms) err = KMK_NET_ETIMEDOUT;
      else if (r->first_byte_ms_lim > 0 && r->first_byte_at <= 0 &&
               now - r->t0 >= r->first_byte_ms_lim)
        err = KMK_NET_ETIMEDOUT;
      else if (r->stall_ms > 0 && r->first_byte_at > 0 && now - r->last_io >= r->stall_ms)
        err = KMK_NET_ESTALLED;
      else if (r->user_deadline > 0 && now >= r->user_deadline)
        err = KMK_NET_ETIMEDOUT;
      if (err) {
        KMK_DEBUG(TAG, "request %s after %.0f ms", kmk_net_strerror(err), now - r->t0);
        finish(r, err);
        again = changed = 1;
        break; /* the list may have changed inside on_done */
      }
    }
  }
  (void)changed;
  flush(h);
}

/* ---- public API ---------------------------------------------------------------------------- */

kmk_http *kmk_http_new(uv_loop_t *loop) {
  pthread_once(&curl_once, curl_init_once);
  kmk_http *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->loop = loop;
  h->multi = curl_multi_init();
  if (!h->multi) {
    free(h);
    return NULL;
  }
  uv_timer_init(loop, &h->curl_timer);
  uv_timer_init(loop, &h->sweep);
  h->curl_timer.data = h;
  h->sweep.data = h;
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  return h;
}

kmk_http_lane *kmk_http_lane_new(kmk_http *h, const char *name, int max_active, int max_queued) {
  if (!h || max_active < 1 || max_queued < 0) return NULL;
  kmk_http_lane *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->h = h;
  snprintf(l->name, sizeof l->name, "%s", name ? name : "lane");
  l->max_active = max_active;
  l->max_queued = max_queued;
  l->next = h->lanes;
  h->lanes = l;
  return l;
}
uv_loop_t *kmk_http_loop(const kmk_http *h) { return h->loop; }
int kmk_http_lane_running(const kmk_http_lane *l) { return l ? l->running : 0; }
int kmk_http_lane_queued(const kmk_http_lane *l) { return l ? l->queued : 0; }
size_t kmk_http_active(const kmk_http *h) {
  size_t n = 0;
  for (kmk_http_req *r = h->reqs; r; r = r->next)
    if (r->state == RQ_DELAYED || r->state == RQ_QUEUED || r->state == RQ_RUNNING) n++;
  return n;
}

int kmk_http_request(kmk_http *h, const kmk_http_opts *o, kmk_http_req **out) {
  if (out) *out = NULL;
  if (!h || !o || !o->url || !o->on_done) return KMK_NET_EINVAL;
  if (h->closing) return KMK_NET_ECLOSED;
  kmk_http_lane *l = o->lane;
  int immediate = o->delay_ms <= 0 && (!l || l->running < l->max_active);
  if (l && !immediate && l->queued >= l->max_queued) return KMK_NET_EBUSY;
  kmk_http_req *r = calloc(1, sizeof *r);
  if (!r) return KMK_NET_ENOMEM;
  r->h = h;
  r->easy = curl_easy_init();
  if (!r->easy) {
    free(r);
    return KMK_NET_ENOMEM;
  }
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, o->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_fn);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_fn);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1"); /* loopback never via a proxy */
  r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
  long cto = (long)(o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, cto);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms + 2000); /* backstop */
  if (o->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
  r->first_byte_ms_lim = o->first_byte_ms;
  r->stall_ms = o->stall_ms;
  r->max_body = o->max_body ? o->max_body : (8u << 20);
  int bad = 0;
  for (const char *const *hp = o->headers; hp && *hp; hp++) {
    struct curl_slist *n = curl_slist_append(r->hdrs, *hp);
    if (!n) bad = 1;
    else r->hdrs = n;
  }
  if (o->n_parts) {
    r->mime = curl_mime_init(e);
    for (size_t i = 0; r->mime && i < o->n_parts; i++) {
      const kmk_http_part *p = &o->parts[i];
      curl_mimepart *mp = curl_mime_addpart(r->mime);
      if (!mp || curl_mime_name(mp, p->name) != CURLE_OK ||
          curl_mime_data(mp, p->data, p->len) != CURLE_OK)
        bad = 1;
      if (mp && p->filename) curl_mime_filename(mp, p->filename);
      if (mp && p->content_type) curl_mime_type(mp, p->content_type);
    }
    if (!r->mime) bad = 1;
    curl_easy_setopt(e, CURLOPT_MIMEPOST, r->mime);
    struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
    if (n) r->hdrs = n;
  } else if (o->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)o->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body);
  }
  if (o->method) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, o->method);
  if (r->hdrs) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
  r->on_data = o->on_data;
  r->on_done = o->on_done;
  r->ud = o->ud;
  r->lane = l;
  r->seq = ++h->seq;
  link_req(h, r);
  if (bad) {
    r->state = RQ_DEAD;
    free_req(r);
    return KMK_NET_ENOMEM;
  }
  if (immediate && h->depth == 0) {
    start_req(r);
  } else {
    r->state = o->delay_ms > 0 ? RQ_DELAYED : RQ_QUEUED;
    r->start_at = now_ms(h) + (o->delay_ms > 0 ? o->delay_ms : 0);
    if (l) l->queued++;
  }
  if (out) *out = r;
  flush(h);
  return 0;
}

void kmk_http_set_deadline(kmk_http_req *r, double ms_from_now) {
  if (!r || r->state == RQ_DONE || r->state == RQ_DEAD) return;
  r->user_deadline = ms_from_now > 0 ? now_ms(r->h) + ms_from_now : 0;
}

void kmk_http_cancel(kmk_http_req *r) {
  if (!r) return;
  if (r->state == RQ_DONE || r->state == RQ_DEAD) return;
  kmk_http *h = r->h;
  lane_release(r);
  r->state = RQ_DEAD;
  flush(h); /* frees it now unless we are inside curl */
}

static void timer_closed(uv_handle_t *hd) {
  kmk_http *h = hd->data;
  h->pending_closes--;
  if (h->pending_closes == 0) {
    void (*cb)(void *) = h->on_closed;
    void *ud = h->closed_ud;
    free(h);
    if (cb) cb(ud);
  }
}

/* Not from inside an http callback of h. */
void kmk_http_close(kmk_http *h, void (*on_closed)(void *ud), void *ud) {
  if (!h || h->closing) return;
  for (kmk_http_req *r = h->reqs; r; r = r->next) {
    lane_release(r);
    r->state = RQ_DEAD;
  }
  h->depth = 0;
  flush(h);
  h->closing = 1;
  h->on_closed = on_closed;
  h->closed_ud = ud;
  curl_multi_cleanup(h->multi); /* may report sockets removed */
  h->multi = NULL;
  while (h->socks) {
    uv_poll_stop(&h->socks->poll);
    close_sock(h->socks);
  }
  for (kmk_http_lane *l = h->lanes, *n; l; l = n) {
    n = l->next;
    free(l);
  }
  h->lanes = NULL;
  h->pending_closes += 2;
  uv_close((uv_handle_t *)&h->curl_timer, timer_closed);
  uv_close((uv_handle_t *)&h->sweep, timer_closed);
}

int kmk_http_header(const kmk_http_resp *r, const char *name, char *out, size_t outlen) {
  if (!r || !r->headers || !name || !out || outlen == 0) return -1;
  size_t nl = strlen(name);
  const char *p = r->headers;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t ll = eol ? (size_t)(eol - p) : strlen(p);
    if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1, *end = p + ll;
      while (v < end && (*v == ' ' || *v == '\t')) v++;
      while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
      size_t vl = (size_t)(end - v);
      if (vl >= outlen) vl = outlen - 1;
      memcpy(out, v, vl);
      out[vl] = 0;
      return 0;
    }
    if (!eol) break;
    p = eol + 1;
  }
  return -1;
}
