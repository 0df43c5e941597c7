/* ws.c - WebSocket client through libwebsockets, on the engine's libuv loop (lws's libuv event
 * library with our loop as a foreign loop: lws never runs or closes the loop itself).
 *
 * Owns: the lws context, one uv_timer ("tick") for our deadlines (total, stall), and every
 * kmk_ws_conn (its URL parts, handshake headers, send queue, receive buffer). A conn lives until
 * lws destroys its wsi (LWS_CALLBACK_WSI_DESTROY), or is freed at once when it never got one.
 * A conn the caller closed (or that already reported on_close) is "detached": no more callbacks.
 *
 * Host names are resolved with uv_getaddrinfo (libwebsockets 4.1 as packaged would call a blocking
 * getaddrinfo on the loop thread); lws then gets the numeric address and the name for Host/SNI.
 *
 * Thread: loop thread only. Callbacks may call kmk_ws_send / kmk_ws_close_conn / kmk_ws_connect,
 * but not kmk_ws_close.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "kameko/log.h"
#include "kameko/net.h"

#define TAG "ws"
#define TICK_MS 20

typedef struct msg {
  struct msg *next;
  size_t len;
  int binary;
  unsigned char buf[]; /* LWS_PRE + payload */
} msg;

struct kmk_ws_conn {
  kmk_ws *w;
  kmk_ws_conn *prev, *next;
  struct lws *wsi;
  char *url_copy;             /* parsed in place by lws_parse_uri */
  char path[1024];
  const char *host;
  int port, tls;
  char **headers;             /* "Name:" and value pairs, split */
  int n_headers;
  kmk_ws_callbacks cb;
  void *ud;
  msg *q_head, *q_tail;
  size_t q_bytes;
  unsigned char *rx;
  size_t rx_len, rx_cap, max_message;
  int rx_binary, rx_overflow;
  int opened, detached, reported;
  int in_connect, destroyed;  /* inside lws_client_connect_via_info / its wsi is gone */
  uv_getaddrinfo_t gai;       /* name resolution in flight (resolving) */
  int resolving, orphan;      /* orphan: the context closed meanwhile; gai_cb frees */
  char ip[64];
  int pending_err, pending_status; /* an error lws reported inside the connect call */
  char pending_date[64], pending_why[160];
  int close_code;
  char close_reason[124];
  double t0, last_io, timeout_ms, stall_ms;
};

struct kmk_ws {
  uv_loop_t *loop;
  struct lws_context *ctx;
  uv_timer_t tick;
  kmk_ws_conn *conns;
  size_t n_conns;
  int ticking, closing, close_ticks;
  void (*on_closed)(void *);
  void *closed_ud;
};

static double now_ms(kmk_ws *w) { return (double)uv_now(w->loop); }

static void unlink_conn(kmk_ws_conn *c) {
  kmk_ws *w = c->w;
  if (c->prev) c->prev->next = c->next;
  else if (w->conns == c) w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  w->n_conns--;
}

static void free_conn_mem(kmk_ws_conn *c) {
  for (msg *m = c->q_head, *n; m; m = n) {
    n = m->next;
    free(m);
  }
  for (int i = 0; i < c->n_headers * 2; i++) free(c->headers[i]);
  free(c->headers);
  free(c->url_copy);
  free(c->rx);
  free(c);
}

static void free_conn(kmk_ws_conn *c) {
  unlink_conn(c);
  free_conn_mem(c);
}

/* Reports the end once, then detaches. */
static void report(kmk_ws_conn *c, int err, int http_status, const char *date, const char *reason) {
  if (c->detached || c->reported) return;
  if (c->in_connect) { /* never call back from inside kmk_ws_connect: the tick reports it */
    if (!c->pending_err) {
      c->pending_err = err ? err : KMK_NET_ECONNECT;
      c->pending_status = http_status;
      snprintf(c->pending_date, sizeof c->pending_date, "%s", date ? date : "");
      snprintf(c->pending_why, sizeof c->pending_why, "%s", reason ? reason : "");
    }
    return;
  }
  c->reported = 1;
  c->detached = 1;
  if (c->cb.on_close) c->cb.on_close(c->ud, c, err, http_status, date ? date : "", reason ? reason : "");
}

static void kill_wsi(kmk_ws_conn *c) {
  if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void tick_cb(uv_timer_t *t) {
  kmk_ws *w = t->data;
  double now = now_ms(w);
  for (kmk_ws_conn *c = w->conns; c; c = c->next) {
    if (c->detached) continue;
    if (c->pending_err) {
      report(c, c->pending_err, c->pending_status, c->pending_date, c->pending_why);
      break;
    }
    int err = 0;
    if (now - c->t0 >= c->timeout_ms) err = KMK_NET_ETIMEDOUT;
    else if (c->opened && c->stall_ms > 0 && now - c->last_io >= c->stall_ms) err = KMK_NET_ESTALLED;
    if (err) {
      report(c, err, 0, NULL, kmk_net_strerror(err));
      kill_wsi(c);
      break; /* the list may have changed in the callback; next tick continues */
    }
  }
  if (w->n_conns == 0 && w->ticking) {
    uv_timer_stop(&w->tick);
    w->ticking = 0;
  }
}

static void arm_tick(kmk_ws *w) {
  if (!w->ticking && !w->closing) {
    uv_timer_start(&w->tick, tick_cb, TICK_MS, TICK_MS);
    w->ticking = 1;
  }
}

static int rx_append(kmk_ws_conn *c, const void *in, size_t len) {
  if (c->rx_len + len > c->max_message) {
    c->rx_overflow = 1;
    return 0;
  }
  if (c->rx_len + len > c->rx_cap) {
    size_t cap = c->rx_cap ? c->rx_cap * 2 : 4096;
    while (cap < c->rx_len + len) cap *= 2;
    unsigned char *nb = realloc(c->rx, cap);
    if (!nb) return -1;
    c->rx = nb;
    c->rx_cap = cap;
  }
  memcpy(c->rx + c->rx_len, in, len);
  c->rx_len += len;
  return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
  kmk_ws_conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
  switch (reason) {
  case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
    if (!c) break;
    unsigned char **p = (unsigned char **)in, *end = (*p) + len;
    for (int i = 0; i < c->n_headers; i++) {
      const char *v = c->headers[2 * i + 1];
      if (lws_add_http_header_by_name(wsi, (const unsigned char *)c->headers[2 * i],
                                      (const unsigned char *)v, (int)strlen(v), p, end))
        return -1;
    }
    break;
  }
  case LWS_CALLBACK_CLIENT_ESTABLISHED:
    if (!c) break;
    c->opened = 1;
    c->last_io = now_ms(c->w);
    if (!c->detached && c->cb.on_open) c->cb.on_open(c->ud, c);
    if (c->detached) return -1;
    if (c->q_head) lws_callback_on_writable(wsi);
    break;
  case LWS_CALLBACK_CLIENT_RECEIVE:
    if (!c) break;
    c->last_io = now_ms(c->w);
    if (c->detached) return -1;
    if (lws_is_first_fragment(wsi)) {
      c->rx_len = 0;
      c->rx_overflow = 0;
      c->rx_binary = lws_frame_is_binary(wsi);
    }
    if (rx_append(c, in, len) < 0) return -1;
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
      if (c->rx_overflow) {
        report(c, KMK_NET_ETOOBIG, 0, NULL, "message too large");
        return -1;
      }
      if (c->cb.on_message) c->cb.on_message(c->ud, c, c->rx ? c->rx : (unsigned char *)"", c->rx_len, c->rx_binary);
      c->rx_len = 0;
      if (c->detached) return -1;
    }
    break;
  case LWS_CALLBACK_CLIENT_WRITEABLE: {
    if (!c || c->detached) return -1;
    msg *m = c->q_head;
    if (!m) break;
    c->q_head = m->next;
    if (!c->q_head) c->q_tail = NULL;
    c->q_bytes -= m->len;
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    free(m);
    if (n < 0) {
      report(c, KMK_NET_ECONNECT, 0, NULL, "write failed");
      return -1;
    }
    if (c->q_head) lws_callback_on_writable(wsi);
    break;
  }
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    if (!c) break;
    if (len >= 2) {
      const unsigned char *b = in;
      c->close_code = (b[0] << 8) | b[1];
      size_t rl = len - 2 < sizeof c->close_reason - 1 ? len - 2 : sizeof c->close_reason - 1;
      memcpy(c->close_reason, b + 2, rl);
      c->close_reason[rl] = 0;
    }
    break;
  case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
    if (!c) break;
    int status = (int)lws_http_client_http_response(wsi);
    char date[64] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_DATE) > 0)
      lws_hdr_copy(wsi, date, sizeof date, WSI_TOKEN_HTTP_DATE);
    char why[160];
    snprintf(why, sizeof why, "%s", in ? (const char *)in : "connection error");
    if (!status) {
      /* lws 4.1 reports a refused upgrade as text: "HS: ws upgrade response not 101" */
      const char *s = strstr(why, "HTTP/1.1 ");
      if (s) status = atoi(s + 9);
    }
    report(c, KMK_NET_ECONNECT, status, date, why);
    break;
  }
  case LWS_CALLBACK_CLIENT_CLOSED:
    if (!c) break;
    if (c->opened) {
      char why[160];
      snprintf(why, sizeof why, "closed %d%s%s", c->close_code, c->close_reason[0] ? " " : "", c->close_reason);
      int err = c->close_code == 1000 || c->close_code == 1001 ? 0
                : c->close_code == 0 ? KMK_NET_ECONNECT /* no close frame: the socket dropped */
                                     : KMK_NET_EPROTO;
      report(c, err, 0, NULL, why);
    } else {
      report(c, KMK_NET_ECONNECT, 0, NULL, "closed before the upgrade");
    }
    break;
  case LWS_CALLBACK_WSI_DESTROY:
    if (!c) break;
    lws_set_opaque_user_data(wsi, NULL);
    report(c, KMK_NET_ECONNECT, 0, NULL, "connection destroyed");
    c->wsi = NULL;
    c->destroyed = 1;
    if (!c->in_connect) free_conn(c);
    break;
  default:
    break;
  }
  return 0;
}

static const struct lws_protocols protocols[] = {
    {"kmk-ws", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log_emit(int level, const char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
  if (level & LLL_ERR) KMK_WARN("lws", "%.*s", (int)n, line);
  else KMK_DEBUG("lws", "%.*s", (int)n, line);
}

void kmk_net_lws_log_setup(void) {
  lws_set_log_level(LLL_ERR | (kmk_log_get_level() >= KMK_LOG_DEBUG ? LLL_WARN : 0), lws_log_emit);
}

kmk_ws *kmk_ws_new(uv_loop_t *loop) { return kmk_ws_new_ca(loop, NULL); }

kmk_ws *kmk_ws_new_ca(uv_loop_t *loop, const char *ca_file) {
  kmk_ws *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->loop = loop;
  kmk_net_lws_log_setup();
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  void *loops[1] = {loop};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.foreign_loops = loops;
  info.gid = -1;
  info.uid = -1;
  info.timeout_secs = 20;
  info.client_ssl_ca_filepath = ca_file; /* NULL: the system's default verify paths */
  w->ctx = lws_create_context(&info);
  if (!w->ctx) {
    KMK_ERR(TAG, "libwebsockets context on the libuv loop failed (libwebsockets-evlib-uv missing?)");
    free(w);
    return NULL;
  }
  uv_timer_init(loop, &w->tick);
  w->tick.data = w;
  return w;
}

uv_loop_t *kmk_ws_loop(const kmk_ws *w) { return w->loop; }

size_t kmk_ws_active(const kmk_ws *w) {
  size_t n = 0;
  for (kmk_ws_conn *c = w->conns; c; c = c->next) n += !c->detached;
  return n;
}

/* Hands the connection to lws with a numeric address. 0, or KMK_NET_ECONNECT when lws refused it
 * at once (the conn is then wsi-less and the caller frees it; lws's reason is in pending_*). */
static int start_lws(kmk_ws_conn *c, const char *address) {
  struct lws_client_connect_info ci;
  memset(&ci, 0, sizeof ci);
  ci.context = c->w->ctx;
  ci.address = address;
  ci.port = c->port;
  ci.path = c->path;
  ci.host = c->host; /* Host header and TLS SNI / name check */
  ci.origin = NULL;
  ci.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
  ci.protocol = NULL;
  ci.local_protocol_name = "kmk-ws";
  ci.ietf_version_or_minus_one = -1;
  ci.opaque_user_data = c;
  ci.pwsi = &c->wsi;
  c->in_connect = 1;
  struct lws *wsi = lws_client_connect_via_info(&ci);
  c->in_connect = 0;
  if (!wsi || c->destroyed) {
    /* failed inside the call (lws may have run CONNECTION_ERROR and WSI_DESTROY already) */
    c->wsi = NULL;
    return KMK_NET_ECONNECT;
  }
  return 0;
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  kmk_ws_conn *c = req->data;
  c->resolving = 0;
  if (c->orphan) { /* the context is gone; c was unlinked at close */
    if (res) uv_freeaddrinfo(res);
    free_conn_mem(c);
    return;
  }
  if (c->detached) { /* closed or timed out while resolving */
    if (res) uv_freeaddrinfo(res);
    free_conn(c);
    return;
  }
  c->ip[0] = 0;
  if (status == 0 && res) {
    if (res->ai_family == AF_INET)
      uv_ip4_name((const struct sockaddr_in *)res->ai_addr, c->ip, sizeof c->ip);
    else if (res->ai_family == AF_INET6)
      uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, c->ip, sizeof c->ip);
  }
  if (res) uv_freeaddrinfo(res);
  if (!c->ip[0]) {
    char why[160];
    snprintf(why, sizeof why, "cannot resolve %s: %s", c->host, status ? uv_strerror(status) : "no address");
    report(c, KMK_NET_ECONNECT, 0, NULL, why);
    free_conn(c);
    return;
  }
  if (start_lws(c, c->ip) != 0) {
    report(c, c->pending_err ? c->pending_err : KMK_NET_ECONNECT, c->pending_status, c->pending_date,
           c->pending_why[0] ? c->pending_why : "connect failed");
    free_conn(c);
  }
}

int kmk_ws_connect(kmk_ws *w, const kmk_ws_opts *o, kmk_ws_conn **out) {
  if (out) *out = NULL;
  if (!w || !o || !o->url) return KMK_NET_EINVAL;
  if (w->closing) return KMK_NET_ECLOSED;
  kmk_ws_conn *c = calloc(1, sizeof *c);
  if (!c) return KMK_NET_ENOMEM;
  c->w = w;
  c->url_copy = strdup(o->url);
  const char *prot = NULL, *addr = NULL, *path = NULL;
  int port = 0;
  if (!c->url_copy || lws_parse_uri(c->url_copy, &prot, &addr, &port, &path) ||
      (strcmp(prot, "ws") && strcmp(prot, "wss"))) {
    free(c->url_copy);
    free(c);
    return KMK_NET_EINVAL;
  }
  c->tls = strcmp(prot, "wss") == 0;
  c->host = addr;
  c->port = port;
  snprintf(c->path, sizeof c->path, "/%s", path ? path : "");
  int nh = 0;
  for (const char *const *h = o->headers; h && *h; h++) nh++;
  c->headers = calloc((size_t)nh * 2 + 1, sizeof(char *));
  for (int i = 0; c->headers && i < nh; i++) {
    const char *colon = strchr(o->headers[i], ':');
    if (!colon) continue;
    c->headers[2 * c->n_headers] = strndup(o->headers[i], (size_t)(colon - o->headers[i]) + 1);
    const char *v = colon + 1;
    while (*v == ' ') v++;
    c->headers[2 * c->n_headers + 1] = strdup(v);
    c->n_headers++;
  }
  c->cb = o->cb;
  c->ud = o->ud;
  c->max_message = o->max_message ? o->max_message : (1u << 20);
  c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 60000;
  c->stall_ms = o->stall_ms;
  c->t0 = c->last_io = now_ms(w);
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  w->n_conns++;
  if (!c->headers) {
    free_conn(c);
    return KMK_NET_ENOMEM;
  }
  int numeric = 0;
  unsigned char tmp[16];
  if (inet_pton(AF_INET, c->host, tmp) == 1 || inet_pton(AF_INET6, c->host, tmp) == 1) numeric = 1;
  if (numeric) {
    if (start_lws(c, c->host) != 0) {
      free_conn(c);
      return KMK_NET_ECONNECT;
    }
  } else {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    if (uv_getaddrinfo(w->loop, &c->gai, gai_cb, c->host, NULL, &hints) != 0) {
      free_conn(c);
      return KMK_NET_ECONNECT;
    }
    c->resolving = 1;
  }
  arm_tick(w);
  if (out) *out = c;
  return 0;
}

int kmk_ws_send(kmk_ws_conn *c, const void *data, size_t len, int binary) {
  if (!c || c->detached) return KMK_NET_ECLOSED;
  if (c->q_bytes + len > (8u << 20)) return KMK_NET_EBUSY;
  msg *m = malloc(sizeof *m + LWS_PRE + len);
  if (!m) return KMK_NET_ENOMEM;
  m->next = NULL;
  m->len = len;
  m->binary = binary;
  memcpy(m->buf + LWS_PRE, data, len);
  if (c->q_tail) c->q_tail->next = m;
  else c->q_head = m;
  c->q_tail = m;
  c->q_bytes += len;
  if (c->opened && c->wsi) lws_callback_on_writable(c->wsi);
  return 0;
}

void kmk_ws_close_conn(kmk_ws_conn *c) {
  if (!c || c->detached) return;
  c->detached = 1;
  c->reported = 1;
  kill_wsi(c);
}

static void tick_closed(uv_handle_t *h) {
  kmk_ws *w = h->data;
  void (*cb)(void *) = w->on_closed;
  void *ud = w->closed_ud;
  free(w);
  if (cb) cb(ud);
}

/* lws 4.1 on a foreign libuv loop frees its context in two steps: the first
 * lws_context_destroy() closes lws's uv handles, whose close callbacks run on our loop; once they
 * have run, a second lws_context_destroy() frees the context. We wait a few loop iterations with
 * our own timer (timers run after the previous iteration's close callbacks). */
static void close_tick_cb(uv_timer_t *t) {
  kmk_ws *w = t->data;
  if (++w->close_ticks < 3) return;
  uv_timer_stop(&w->tick);
  lws_context_destroy(w->ctx); /* second call: frees the context */
  w->ctx = NULL;
  uv_close((uv_handle_t *)&w->tick, tick_closed);
}

void kmk_ws_close(kmk_ws *w, void (*on_closed)(void *ud), void *ud) {
  if (!w || w->closing) return;
  for (kmk_ws_conn *c = w->conns; c; c = c->next) {
    c->detached = 1;
    c->reported = 1;
  }
  w->closing = 1;
  w->on_closed = on_closed;
  w->closed_ud = ud;
  /* lws reports WSI_DESTROY for these later, inside uv_run: cut them loose from our structs */
  for (kmk_ws_conn *c = w->conns; c; c = c->next)
    if (c->wsi) lws_set_opaque_user_data(c->wsi, NULL);
  while (w->conns) {
    kmk_ws_conn *c = w->conns;
    if (c->resolving) { /* gai_cb still has to run: it frees c */
      unlink_conn(c);
      c->orphan = 1;
      uv_cancel((uv_req_t *)&c->gai);
    } else {
      free_conn(c);
    }
  }
  lws_context_destroy(w->ctx); /* first call: closes every wsi and lws's uv handles */
  uv_timer_stop(&w->tick);
  w->ticking = 0;
  uv_timer_start(&w->tick, close_tick_cb, 0, 1);
}
