/* fuzz_room_msg.c - libFuzzer target for what a browser-room client sends (room_proto.c): the first
 * byte picks text or binary and the connection's PCM rate, the rest is the WebSocket message
 * (hello/chat/personas/ping JSON, or a PCM frame). The same bytes also go through the Origin rule,
 * the URL-path check and the MIME lookup. Any input: no crash, no leak, and every accepted message
 * satisfies the limits it claims (name length, UTF-8, rate range, sample count). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/log.h"
#include "kameko/room.h"

static kmk_room_msg m;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    kmk_log_set_level(KMK_LOG_ERROR);
    quiet = 1;
  }
  if (size < 1) return 0;
  static const int rates[] = {0, 8000, 16000, 22050, 44100, 48000, 12345, 7999};
  int binary = data[0] & 1, rate = rates[(data[0] >> 1) & 7];
  char err[256];
  int rc = kmk_room_parse(data + 1, size - 1, binary, rate, &m, err, sizeof err);
  if (rc != 0 && rc != KMK_ROOM_EINVAL && rc != KMK_ROOM_EPOLICY) abort();
  if (rc != 0 && !err[0]) abort(); /* every refusal says why */
  if (rc == 0) {
    switch (m.type) {
      case KMK_ROOM_MSG_HELLO: {
        size_t chars = 0;
        for (const char *p = m.name; *p; p++) chars += ((unsigned char)*p & 0xC0) != 0x80;
        if (!m.name[0] || chars > KMK_ROOM_NAME_MAX || !kmk_room_utf8_valid(m.name, strlen(m.name)))
          abort();
        if (m.rate < KMK_ROOM_MIN_RATE || m.rate > KMK_ROOM_MAX_RATE) abort();
        break;
      }
      case KMK_ROOM_MSG_CHAT:
        if (!m.text[0] || strlen(m.text) > KMK_ROOM_CHAT_MAX) abort();
        for (const char *p = m.text; *p; p++)
          if ((unsigned char)*p < 0x20) abort();
        break;
      case KMK_ROOM_MSG_PERSONAS:
        if (m.n_active < 1 || m.n_active > KMK_ROOM_MAX_ACTIVE) abort();
        for (size_t i = 0; i < m.n_active; i++)
          if (strchr(m.active[i], '/') || strchr(m.active[i], '.')) abort();
        break;
      case KMK_ROOM_MSG_AUDIO:
        if (!binary || m.samples * 2 != size - 1 || m.samples > KMK_ROOM_MAX_FRAME_SAMPLES) abort();
        break;
      case KMK_ROOM_MSG_PING:
        break;
      default:
        abort();
    }
  }
  /* the same bytes as an Origin header, a URL path, a file name */
  char s[512];
  size_t n = size - 1 < sizeof s - 1 ? size - 1 : sizeof s - 1;
  memcpy(s, data + 1, n);
  s[n] = '\0';
  (void)kmk_room_origin_ok(s, 0, "127.0.0.1", 8765, s);
  (void)kmk_room_origin_ok(s, 1, "0.0.0.0", 8765, s);
  if (kmk_room_path_ok(s) && (strstr(s, "..") || strstr(s, "//") || strchr(s, '\\'))) abort();
  (void)kmk_room_mime(s);
  return 0;
}
