/* sse.c - incremental Server-Sent-Events parser (text/event-stream), pure and bounded.
 *
 * Owns its line and event buffers (freed by kmk_sse_free). Any thread; one parser per stream.
 * Handles \n, \r\n and \r line ends split anywhere between feeds, comment lines, multi-line data,
 * and an optional single space after "data:". Field names other than data are ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "kameko/net.h"

void kmk_sse_init(kmk_sse *p, size_t max_event, kmk_sse_event_fn fn, void *ud) {
  memset(p, 0, sizeof *p);
  p->max_event = max_event ? max_event : (1u << 20);
  p->fn = fn;
  p->ud = ud;
}

void kmk_sse_free(kmk_sse *p) {
  free(p->line);
  free(p->data);
  p->line = p->data = NULL;
  p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}

int kmk_sse_pending(const kmk_sse *p) { return p->line_len > 0 || p->has_data; }

static int grow(char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap : 256;
  while (c < need) c *= 2;
  char *n = realloc(*buf, c);
  if (!n) return KMK_NET_ENOMEM;
  *buf = n;
  *cap = c;
  return 0;
}

static int dispatch(kmk_sse *p) {
  if (!p->has_data) return 0;
  p->has_data = 0;
  if (grow(&p->data, &p->data_cap, p->data_len + 1)) return KMK_NET_ENOMEM;
  p->data[p->data_len] = 0;
  size_t n = p->data_len;
  p->data_len = 0;
  return p->fn ? p->fn(p->ud, p->data, n) : 0;
}

static int end_line(kmk_sse *p) {
  const char *l = p->line;
  size_t n = p->line_len;
  p->line_len = 0;
  if (n == 0) return dispatch(p);
  if (l[0] == ':') {
    p->comments++;
    return 0;
  }
  size_t colon = 0;
  while (colon < n && l[colon] != ':') colon++;
  if (colon == 4 && memcmp(l, "data", 4) == 0) {
    size_t v = colon < n ? colon + 1 : n;
    if (v < n && l[v] == ' ') v++;
    size_t vl = n - v;
    size_t need = p->data_len + (p->has_data ? 1 : 0) + vl + 1;
    if (need > p->max_event) return KMK_NET_EPROTO;
    if (grow(&p->data, &p->data_cap, need)) return KMK_NET_ENOMEM;
    if (p->has_data) p->data[p->data_len++] = '\n';
    memcpy(p->data + p->data_len, l + v, vl);
    p->data_len += vl;
    p->has_data = 1;
  }
  return 0; /* event:, id:, retry:, unknown fields: ignored */
}

int kmk_sse_feed(kmk_sse *p, const char *buf, size_t len) {
  for (size_t i = 0; i < len; i++) {
    char c = buf[i];
    if (c == '\n' && p->last_cr) {
      p->last_cr = 0;
      continue;
    }
    p->last_cr = 0;
    if (c == '\r' || c == '\n') {
      if (c == '\r') p->last_cr = 1;
      int rc = end_line(p);
      if (rc) return rc;
      continue;
    }
    if (p->line_len + 2 > p->max_event) return KMK_NET_EPROTO;
    /* copy a run of ordinary bytes at once */
    size_t j = i;
    while (j < len && buf[j] != '\r' && buf[j] != '\n') j++;
    size_t run = j - i;
    if (p->line_len + run + 1 > p->max_event) return KMK_NET_EPROTO;
    if (grow(&p->line, &p->line_cap, p->line_len + run + 1)) return KMK_NET_ENOMEM;
    memcpy(p->line + p->line_len, buf + i, run);
    p->line_len += run;
    i = j - 1;
  }
  return 0;
}
