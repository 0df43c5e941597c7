/* dvoice_msg.c - voice gateway v8 JSON/binary message parsing and building (see dvoice_msg.h).
 * Pure; any thread. Every field read is type-checked; strings are bounded.
 */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kameko/rtp.h"
#include "transport/dvoice_msg.h"

static int get_num(const cJSON *o, const char *k, double *v) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(x)) return -1;
  *v = x->valuedouble;
  return 0;
}

/* A snowflake as a string (or a number, tolerated): digits only, bounded. */
static int get_id(const cJSON *o, const char *k, char out[KMK_DVMSG_ID]) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
  if (cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble < 1e19) {
    snprintf(out, KMK_DVMSG_ID, "%.0f", x->valuedouble);
    return 0;
  }
  if (!cJSON_IsString(x) || !x->valuestring) return -1;
  size_t l = strlen(x->valuestring);
  if (l == 0 || l >= KMK_DVMSG_ID) return -1;
  for (size_t i = 0; i < l; i++)
    if (x->valuestring[i] < '0' || x->valuestring[i] > '9') return -1;
  memcpy(out, x->valuestring, l + 1);
  return 0;
}

static int parse_d(const cJSON *d, kmk_dvoice_msg *m) {
  double v;
  switch (m->op) {
  case KMK_DVOP_HELLO:
    if (get_num(d, "heartbeat_interval", &v) < 0 || !(v >= 100 && v <= 600000)) return -1;
    m->heartbeat_interval = v;
    return 0;
  case KMK_DVOP_READY: {
    if (get_num(d, "ssrc", &v) < 0 || v < 0 || v > 4294967295.0) return -1;
    m->ssrc = (uint32_t)v;
    const cJSON *ip = cJSON_GetObjectItemCaseSensitive(d, "ip");
    if (!cJSON_IsString(ip) || !ip->valuestring || !ip->valuestring[0] ||
        strlen(ip->valuestring) >= sizeof m->ip)
      return -1;
    strcpy(m->ip, ip->valuestring);
    if (get_num(d, "port", &v) < 0 || v < 1 || v > 65535) return -1;
    m->port = (int)v;
    const cJSON *modes = cJSON_GetObjectItemCaseSensitive(d, "modes"), *x;
    if (!cJSON_IsArray(modes)) return -1;
    cJSON_ArrayForEach(x, modes) {
      int md = cJSON_IsString(x) ? kmk_rtp_mode_from_name(x->valuestring) : -1;
      if (md >= 0) m->modes |= 1u << md;
    }
    return 0;
  }
  case KMK_DVOP_HEARTBEAT_ACK:
    if (get_num(d, "t", &v) < 0) return -1;
    m->nonce = (int64_t)v;
    return 0;
  case KMK_DVOP_SESSION: {
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(d, "mode"),
                *key = cJSON_GetObjectItemCaseSensitive(d, "secret_key"), *x;
    m->mode = cJSON_IsString(mode) ? kmk_rtp_mode_from_name(mode->valuestring) : -1;
    if (m->mode < 0 || !cJSON_IsArray(key) || cJSON_GetArraySize(key) != 32) return -1;
    int i = 0;
    cJSON_ArrayForEach(x, key) {
      if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble > 255) return -1;
      m->secret_key[i++] = (uint8_t)x->valuedouble;
    }
    if (get_num(d, "dave_protocol_version", &v) == 0 && v >= 0 && v < 256) m->dave_version = (int)v;
    return 0;
  }
  case KMK_DVOP_SPEAKING:
    if (get_id(d, "user_id", m->user_id) < 0) return -1;
    if (get_num(d, "ssrc", &v) < 0 || v < 0 || v > 4294967295.0) return -1;
    m->ssrc = (uint32_t)v;
    if (get_num(d, "speaking", &v) == 0) m->speaking = (int)v;
    return 0;
  case KMK_DVOP_CLIENTS_CONNECT: {
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(d, "user_ids"), *x;
    if (!cJSON_IsArray(ids)) return -1;
    cJSON_ArrayForEach(x, ids) {
      if (m->n_ids >= KMK_DVMSG_MAX_IDS) break;
      if (!cJSON_IsString(x) || !x->valuestring) return -1;
      size_t l = strlen(x->valuestring);
      if (l == 0 || l >= KMK_DVMSG_ID || strspn(x->valuestring, "0123456789") != l) return -1;
      memcpy(m->user_ids[m->n_ids++], x->valuestring, l + 1);
    }
    return 0;
  }
  case KMK_DVOP_CLIENT_DISCONNECT:
    return get_id(d, "user_id", m->user_id);
  case KMK_DVOP_DAVE_PREPARE_TRANSITION:
  case KMK_DVOP_DAVE_EXECUTE_TRANSITION:
    if (get_num(d, "transition_id", &v) < 0 || v < 0 || v > 65535) return -1;
    m->transition_id = (int)v;
    if (get_num(d, "protocol_version", &v) == 0 && v >= 0 && v < 256) m->protocol_version = (int)v;
    return 0;
  case KMK_DVOP_DAVE_PREPARE_EPOCH:
    if (get_num(d, "epoch", &v) < 0 || v < 0 || v > 9007199254740992.0) return -1;
    m->epoch = (uint64_t)v;
    if (get_num(d, "protocol_version", &v) == 0 && v >= 0 && v < 256) m->protocol_version = (int)v;
    return 0;
  default:
    return 0; /* ops we do not read (RESUMED, client flags, platform, ...) */
  }
}

static int needs_d(int op) {
  switch (op) {
  case KMK_DVOP_READY: case KMK_DVOP_HELLO: case KMK_DVOP_SESSION: case KMK_DVOP_SPEAKING:
  case KMK_DVOP_HEARTBEAT_ACK: case KMK_DVOP_CLIENTS_CONNECT: case KMK_DVOP_CLIENT_DISCONNECT:
  case KMK_DVOP_DAVE_PREPARE_TRANSITION: case KMK_DVOP_DAVE_EXECUTE_TRANSITION:
  case KMK_DVOP_DAVE_PREPARE_EPOCH:
    return 1;
  default:
    return 0;
  }
}

int kmk_dvoice_msg_parse(const char *text, size_t len, kmk_dvoice_msg *m) {
  memset(m, 0, sizeof *m);
  m->seq = -1;
  m->op = -1;
  m->mode = -1;
  if (!text) return KMK_DVMSG_EJSON;
  cJSON *j = cJSON_ParseWithLength(text, len);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return KMK_DVMSG_EJSON;
  }
  double v;
  int rc = 0;
  if (get_num(j, "op", &v) < 0 || v < 0 || v > 255) {
    rc = KMK_DVMSG_EJSON;
  } else {
    m->op = (int)v;
    if (get_num(j, "seq", &v) == 0 && v >= 0 && v < 9007199254740992.0) m->seq = (int64_t)v;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "d");
    if (m->op == KMK_DVOP_HEARTBEAT_ACK && cJSON_IsNumber(d)) {
      m->nonce = (int64_t)d->valuedouble; /* older versions: a bare nonce */
    } else if (cJSON_IsObject(d)) {
      if (parse_d(d, m) < 0) rc = KMK_DVMSG_EFIELD;
    } else if (needs_d(m->op)) {
      rc = KMK_DVMSG_EFIELD;
    }
  }
  cJSON_Delete(j);
  return rc;
}

int kmk_dvoice_bin_parse(const uint8_t *p, size_t n, uint16_t *seq, uint8_t *op,
                         const uint8_t **payload, size_t *len) {
  if (!p || n < 3) return KMK_DVMSG_ESHORT;
  *seq = (uint16_t)(p[0] << 8 | p[1]);
  *op = p[2];
  *payload = p + 3;
  *len = n - 3;
  return 0;
}

static int fit(int n, size_t cap) { return n < 0 || (size_t)n >= cap ? -1 : n; }

/* Ids and tokens come from Discord; quote-safe characters only (no escaping needed). */
static const char *safe(const char *s) {
  if (!s) return "";
  for (const char *p = s; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) return "";
  return s;
}

int kmk_dvoice_msg_identify(char *out, size_t cap, const char *server_id, const char *user_id,
                            const char *session_id, const char *token, int max_dave) {
  return fit(snprintf(out, cap,
                      "{\"op\":0,\"d\":{\"server_id\":\"%s\",\"user_id\":\"%s\",\"session_id\":"
                      "\"%s\",\"token\":\"%s\",\"max_dave_protocol_version\":%d}}",
                      safe(server_id), safe(user_id), safe(session_id), safe(token), max_dave),
             cap);
}

int kmk_dvoice_msg_resume(char *out, size_t cap, const char *server_id, const char *session_id,
                          const char *token, int64_t seq_ack) {
  return fit(snprintf(out, cap,
                      "{\"op\":7,\"d\":{\"server_id\":\"%s\",\"session_id\":\"%s\",\"token\":"
                      "\"%s\",\"seq_ack\":%lld}}",
                      safe(server_id), safe(session_id), safe(token), (long long)seq_ack),
             cap);
}

int kmk_dvoice_msg_heartbeat(char *out, size_t cap, int64_t nonce, int64_t seq_ack) {
  return fit(snprintf(out, cap, "{\"op\":3,\"d\":{\"t\":%lld,\"seq_ack\":%lld}}", (long long)nonce,
                      (long long)seq_ack),
             cap);
}

int kmk_dvoice_msg_select(char *out, size_t cap, const char *address, int port, int mode) {
  return fit(snprintf(out, cap,
                      "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":\"%s\","
                      "\"port\":%d,\"mode\":\"%s\"}}}",
                      safe(address), port, kmk_rtp_mode_name((kmk_rtp_mode)mode)),
             cap);
}

int kmk_dvoice_msg_speaking(char *out, size_t cap, int speaking, uint32_t ssrc) {
  return fit(snprintf(out, cap, "{\"op\":5,\"d\":{\"speaking\":%d,\"delay\":0,\"ssrc\":%u}}",
                      speaking, (unsigned)ssrc),
             cap);
}
