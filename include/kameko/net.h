/* net.h - network on the engine's libuv loop: HTTP (libcurl multi), WebSocket client
 * (libwebsockets), a Server-Sent-Events parser and a per-provider circuit breaker.
 *
 * Threading: every kmk_http_* / kmk_ws_* function is for the LOOP THREAD only, and every callback
 * runs on the loop thread. The SSE parser and the breaker are pure and any thread may use them.
 *
 * Errors are negative ints (KMK_NET_E*). A call that fails never calls its callback. A cancelled
 * request never calls its callback again. Strings and buffers passed in are copied unless a
 * comment says "borrowed".
 */
#ifndef KAMEKO_NET_H
#define KAMEKO_NET_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

enum {
  KMK_NET_OK = 0,
  KMK_NET_EINVAL = -1,     /* bad argument */
  KMK_NET_ENOMEM = -2,
  KMK_NET_EBUSY = -3,      /* provider lane full (bounded queue) */
  KMK_NET_ETIMEDOUT = -4,  /* total / first-byte deadline passed */
  KMK_NET_ESTALLED = -5,   /* no bytes for stall_ms */
  KMK_NET_ECONNECT = -6,   /* DNS / connect / TLS failure, connection reset */
  KMK_NET_EPROTO = -7,     /* malformed response (bad SSE, bad JSON, truncated stream) */
  KMK_NET_EHTTP = -8,      /* an HTTP status we do not retry (400, 404, 413, ...) */
  KMK_NET_EAUTH = -9,      /* 401/402/403: fatal for this provider until restarted */
  KMK_NET_ERATELIMIT = -10,/* 429 and retries exhausted, or Retry-After longer than allowed */
  KMK_NET_ESERVER = -11,   /* 5xx (or mid-stream error object) and retries exhausted */
  KMK_NET_EOPEN = -12,     /* circuit breaker open: provider skipped without a request */
  KMK_NET_ECLOSED = -13,   /* the client is shutting down */
  KMK_NET_ETOOBIG = -14,   /* response larger than max_body */
  KMK_NET_EDECODE = -15,   /* audio could not be decoded */
};

/* "timeout", "stalled", ... for logs and events. */
const char *kmk_net_strerror(int err);

/* ---- circuit breaker (pure) ----------------------------------------------------------------
 * Closed until `threshold` consecutive failures, then open for `cooldown_s`; after the cool-down
 * one probe is let through (half-open): success closes it, failure opens it again. */
typedef struct {
  int threshold;     /* e.g. 3 */
  double cooldown_s; /* e.g. 30 */
  int fails;         /* consecutive failures */
  double open_until; /* time (same clock as `now`) until which requests are refused */
  int probing;       /* half-open: one request in flight */
} kmk_breaker;

void kmk_breaker_init(kmk_breaker *b, int threshold, double cooldown_s);
/* 1 when a request may go out now (marks the half-open probe), 0 when the provider is skipped. */
int kmk_breaker_allow(kmk_breaker *b, double now);
void kmk_breaker_success(kmk_breaker *b);
void kmk_breaker_failure(kmk_breaker *b, double now);
int kmk_breaker_is_open(const kmk_breaker *b, double now);

/* ---- retry policy (pure) ------------------------------------------------------------------- */
/* 1 for statuses worth retrying: 408, 409, 429, >= 500. */
int kmk_http_status_retryable(long status);
/* Parses a Retry-After value ("3", "1.5", or an HTTP date relative to now_unix). Returns seconds
 * (>= 0) or -1 when absent/unparseable. */
double kmk_http_parse_retry_after(const char *value, double now_unix);
/* Groq's x-ratelimit-reset-* durations: "7.66s", "2m59.56s", "1h2m3s", "250ms" -> seconds, or -1. */
double kmk_parse_duration_s(const char *value);
/* An HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") as unix seconds, or -1. */
double kmk_http_date_to_unix(const char *value);
/* Backoff before retry number `attempt` (1-based): base_ms * 2^(attempt-1), capped at max_ms,
 * with +-20% jitter from `rnd` in [0,1). */
double kmk_backoff_ms(int attempt, double base_ms, double max_ms, double rnd);

/* ---- SSE parser (pure, incremental) -------------------------------------------------------- */
/* Feeds bytes as they arrive (any split). Accepts \n, \r\n and \r line ends; ignores comment lines
 * (":..."), `event:`, `id:`, `retry:`; joins multiple `data:` lines with '\n'; dispatches an event
 * at each blank line. The callback returns nonzero to stop (kmk_sse_feed then returns that value).
 * Events larger than max_event bytes are a protocol error (KMK_NET_EPROTO). */
typedef int (*kmk_sse_event_fn)(void *ud, const char *data, size_t len);
typedef struct {
  char *line;
  size_t line_len, line_cap;
  char *data;
  size_t data_len, data_cap;
  int has_data;
  int last_cr; /* previous byte was \r: a following \n is part of the same line end */
  size_t max_event;
  size_t comments; /* comment lines seen (for tests/metrics) */
  kmk_sse_event_fn fn;
  void *ud;
} kmk_sse;

void kmk_sse_init(kmk_sse *p, size_t max_event, kmk_sse_event_fn fn, void *ud);
int kmk_sse_feed(kmk_sse *p, const char *buf, size_t len);
/* 1 when bytes of an unfinished event are buffered (a stream that ends here was truncated). */
int kmk_sse_pending(const kmk_sse *p);
void kmk_sse_free(kmk_sse *p);

/* ---- HTTP client on the loop --------------------------------------------------------------- */
typedef struct kmk_http kmk_http;
typedef struct kmk_http_req kmk_http_req;
typedef struct kmk_http_lane kmk_http_lane;

/* One response, valid only during the callback that receives it. */
typedef struct {
  long status;           /* HTTP status; 0 when no response arrived */
  const char *body;      /* collected body (NUL-terminated) when not streaming, else NULL */
  size_t body_len;
  const char *headers;   /* raw header block of the final response, NUL-terminated */
  double first_byte_ms;  /* from start to the first body byte (or headers); -1 if none */
  double total_ms;
} kmk_http_resp;

/* Value of header `name` (case-insensitive) copied into out (trimmed). 0, or -1 when absent. */
int kmk_http_header(const kmk_http_resp *r, const char *name, char *out, size_t outlen);

/* Streaming body data. Return nonzero to abort the request (then on_done is NOT called: the
 * callee must finish its own bookkeeping). */
typedef int (*kmk_http_data_fn)(void *ud, kmk_http_req *req, const kmk_http_resp *r,
                                const char *data, size_t len);
/* err is 0 when a response arrived (any status), else a KMK_NET_E* error. Called exactly once per
 * request unless the request was cancelled or on_data aborted it. The request is freed after the
 * callback returns. */
typedef void (*kmk_http_done_fn)(void *ud, kmk_http_req *req, int err, const kmk_http_resp *r);

typedef struct {
  const char *name;         /* form field name */
  const char *data;         /* borrowed until kmk_http_request returns (copied into curl) */
  size_t len;
  const char *filename;     /* NULL for a plain field */
  const char *content_type; /* NULL = default */
} kmk_http_part;

typedef struct {
  const char *method;            /* NULL = GET, or POST when body/parts are given */
  const char *url;
  const char *const *headers;    /* NULL-terminated "Name: value" list; may hold secrets */
  const char *body;              /* copied */
  size_t body_len;
  const kmk_http_part *parts;    /* multipart/form-data (copied) */
  size_t n_parts;
  double delay_ms;               /* start after this delay (retry backoff) */
  double timeout_ms;             /* whole request; 0 = 60 s */
  double connect_timeout_ms;     /* 0 = 10 s */
  double first_byte_ms;          /* deadline for the first response byte; 0 = none */
  double stall_ms;               /* max silence between bytes once started; 0 = none */
  size_t max_body;               /* cap on the collected body; 0 = 8 MiB */
  const char *ca_file;           /* extra CA bundle (PEM) to trust; NULL = the system's */
  kmk_http_lane *lane;           /* NULL = unbounded */
  kmk_http_data_fn on_data;      /* NULL = collect the body */
  kmk_http_done_fn on_done;      /* required */
  void *ud;
} kmk_http_opts;

/* Creates the client on `loop` (borrowed; must outlive the client). NULL on failure. */
kmk_http *kmk_http_new(uv_loop_t *loop);
/* Starts a request. On success *out (may be NULL) gets a handle valid until on_done returns or
 * kmk_http_cancel is called. Returns 0 or a negative error (callback never called). */
int kmk_http_request(kmk_http *h, const kmk_http_opts *o, kmk_http_req **out);
/* An extra deadline measured from now (0 clears it); when it passes the request ends with
 * KMK_NET_ETIMEDOUT. For deadlines only the caller can judge (e.g. "first token", which SSE
 * comment keep-alives must not satisfy). */
void kmk_http_set_deadline(kmk_http_req *req, double ms_from_now);
/* Cancels a queued, delayed or running request: no callback follows, memory is released. Safe
 * inside any callback, including the request's own on_data. */
void kmk_http_cancel(kmk_http_req *req);
/* The loop the client runs on. */
uv_loop_t *kmk_http_loop(const kmk_http *h);
/* Requests running + delayed + queued. */
size_t kmk_http_active(const kmk_http *h);
/* Cancels every request (no callbacks), closes every handle; on_closed (may be NULL) runs when
 * the last uv handle is closed, after which h is freed. */
void kmk_http_close(kmk_http *h, void (*on_closed)(void *ud), void *ud);

/* A lane bounds concurrency for one provider: at most max_active running, max_queued waiting
 * (FIFO); beyond that kmk_http_request fails with KMK_NET_EBUSY. Owned by h (freed with it). */
kmk_http_lane *kmk_http_lane_new(kmk_http *h, const char *name, int max_active, int max_queued);
int kmk_http_lane_running(const kmk_http_lane *l);
int kmk_http_lane_queued(const kmk_http_lane *l);

/* ---- WebSocket client on the loop ---------------------------------------------------------- */
typedef struct kmk_ws kmk_ws;           /* the libwebsockets context */
typedef struct kmk_ws_conn kmk_ws_conn; /* one client connection */

typedef struct {
  /* Connected (101 received). */
  void (*on_open)(void *ud, kmk_ws_conn *c);
  /* A whole message (fragments joined; capped by max_message). */
  void (*on_message)(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary);
  /* Final callback, exactly once unless kmk_ws_close_conn was called first: err 0 after a clean
   * close, else KMK_NET_E*. http_status is the handshake status when the upgrade was refused
   * (e.g. 403), with date_hdr the response's Date header ("" when none). */
  void (*on_close)(void *ud, kmk_ws_conn *c, int err, int http_status, const char *date_hdr,
                   const char *reason);
} kmk_ws_callbacks;

typedef struct {
  const char *url;              /* ws:// or wss:// (copied) */
  const char *const *headers;   /* NULL-terminated "Name: value" extra handshake headers */
  double timeout_ms;            /* whole connection; 0 = 60 s */
  double stall_ms;              /* max silence once open; 0 = none */
  size_t max_message;           /* 0 = 1 MiB */
  kmk_ws_callbacks cb;
  void *ud;
} kmk_ws_opts;

/* Routes libwebsockets' process-wide log into ours (errors as warnings; lws warnings too at debug
 * level). Called by every user of lws before creating a context; loop thread. */
void kmk_net_lws_log_setup(void);

/* Creates the libwebsockets context on our loop. NULL on failure (e.g. no libuv event lib).
 * wss:// uses the system's CAs; kmk_ws_new_ca trusts the PEM bundle ca_file instead (tests). */
kmk_ws *kmk_ws_new(uv_loop_t *loop);
kmk_ws *kmk_ws_new_ca(uv_loop_t *loop, const char *ca_file);
uv_loop_t *kmk_ws_loop(const kmk_ws *w);
int kmk_ws_connect(kmk_ws *w, const kmk_ws_opts *o, kmk_ws_conn **out);
/* Queues a text or binary message (copied). 0 or negative error. */
int kmk_ws_send(kmk_ws_conn *c, const void *data, size_t len, int binary);
/* Closes the connection without any further callback. Safe inside callbacks. */
void kmk_ws_close_conn(kmk_ws_conn *c);
size_t kmk_ws_active(const kmk_ws *w);
/* Closes every connection (no callbacks) and destroys the context; on_closed (may be NULL) runs
 * when lws has released all its loop handles. Keep running the loop until then. */
void kmk_ws_close(kmk_ws *w, void (*on_closed)(void *ud), void *ud);

/* Monotonic milliseconds from the loop's clock (uv_now), for timings. */
double kmk_net_now_ms(uv_loop_t *loop);

#endif
