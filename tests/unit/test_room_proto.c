/* The browser room's pure parts: client-message parsing (hello, chat, personas, ping, PCM frames),
 * UTF-8 validation, the Origin rule, URL-path safety and MIME types. */
#include <stdlib.h>

#include "check.h"
#include "kameko/room.h"

static kmk_room_msg m;
static char err[256];

static int parse_text(const char *s) { return kmk_room_parse(s, strlen(s), 0, 0, &m, err, sizeof err); }

static void test_hello(void) {
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"  Alice \",\"rate\":16000}"), 0);
  CHECK_EQ_INT(m.type, KMK_ROOM_MSG_HELLO);
  CHECK_STR(m.name, "Alice");
  CHECK_EQ_INT(m.rate, 16000);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"Ёжик Пётр\",\"rate\":48000}"), 0);
  CHECK_STR(m.name, "Ёжик Пётр");
  /* 32 characters is fine (Cyrillic: 64 bytes), 33 is not */
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ\",\"rate\":8000}"), 0);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ\",\"rate\":8000}"),
               KMK_ROOM_EINVAL);
  CHECK(strstr(err, "32") != NULL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"   \",\"rate\":16000}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"a\\u0001b\",\"rate\":16000}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"<script>\",\"rate\":16000}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"Bob\",\"rate\":7999}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"Bob\",\"rate\":48001}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"Bob\",\"rate\":16000.5}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"Bob\"}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":7,\"rate\":16000}"), KMK_ROOM_EINVAL);
  /* a lone surrogate escaped in JSON must not become a name */
  CHECK_EQ_INT(parse_text("{\"type\":\"hello\",\"name\":\"a\\ud800\",\"rate\":16000}"), KMK_ROOM_EINVAL);
}

static void test_chat_personas_ping(void) {
  CHECK_EQ_INT(parse_text("{\"type\":\"chat\",\"text\":\" hi\\tthere\\n \"}"), 0);
  CHECK_EQ_INT(m.type, KMK_ROOM_MSG_CHAT);
  CHECK_STR(m.text, "hi there"); /* trimmed; control characters inside become spaces */
  CHECK_EQ_INT(parse_text("{\"type\":\"chat\",\"text\":\"a\\nb\"}"), 0);
  CHECK_STR(m.text, "a b");
  CHECK_EQ_INT(parse_text("{\"type\":\"chat\",\"text\":\"\"}"), KMK_ROOM_EINVAL);
  char big[KMK_ROOM_CHAT_MAX + 100];
  int n = snprintf(big, sizeof big, "{\"type\":\"chat\",\"text\":\"");
  memset(big + n, 'x', KMK_ROOM_CHAT_MAX + 1);
  snprintf(big + n + KMK_ROOM_CHAT_MAX + 1, sizeof big - (size_t)n - KMK_ROOM_CHAT_MAX - 1, "\"}");
  CHECK_EQ_INT(parse_text(big), KMK_ROOM_EINVAL);

  CHECK_EQ_INT(parse_text("{\"type\":\"personas\",\"active\":[\"kameko\",\"shopkeeper\"]}"), 0);
  CHECK_EQ_INT(m.type, KMK_ROOM_MSG_PERSONAS);
  CHECK_EQ_INT(m.n_active, 2);
  CHECK_STR(m.active[1], "shopkeeper");
  CHECK_EQ_INT(parse_text("{\"type\":\"personas\",\"active\":[]}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"personas\",\"active\":[\"a\",\"a\"]}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"personas\",\"active\":[\"../etc/passwd\"]}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{\"type\":\"personas\",\"active\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}"),
               KMK_ROOM_EINVAL);

  CHECK_EQ_INT(parse_text("{\"type\":\"ping\",\"id\":42}"), 0);
  CHECK_EQ_INT(m.type, KMK_ROOM_MSG_PING);
  CHECK_NEAR(m.ping_id, 42, 0);
  CHECK_EQ_INT(parse_text("{\"type\":\"ping\",\"id\":\"x\"}"), KMK_ROOM_EINVAL);

  CHECK_EQ_INT(parse_text("{\"type\":\"dance\"}"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("[1,2]"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(parse_text("{"), KMK_ROOM_EINVAL);
  CHECK_EQ_INT(kmk_room_parse("\xff\xfe", 2, 0, 0, &m, err, sizeof err), KMK_ROOM_EPOLICY);
  char *huge = malloc(KMK_ROOM_MAX_JSON + 10);
  memset(huge, ' ', KMK_ROOM_MAX_JSON + 10);
  CHECK_EQ_INT(kmk_room_parse(huge, KMK_ROOM_MAX_JSON + 10, 0, 0, &m, err, sizeof err), KMK_ROOM_EPOLICY);
  free(huge);
}

static void test_audio(void) {
  unsigned char b[9602];
  for (size_t i = 0; i < sizeof b; i += 2) b[i] = 0x34, b[i + 1] = 0x92; /* 0x9234 = -28108 */
  CHECK_EQ_INT(kmk_room_parse(b, 320, 1, 16000, &m, err, sizeof err), 0); /* 10 ms */
  CHECK_EQ_INT(m.type, KMK_ROOM_MSG_AUDIO);
  CHECK_EQ_INT(m.samples, 160);
  CHECK_EQ_INT(m.pcm[0], -28108);
  CHECK_EQ_INT(kmk_room_parse(b, 3200, 1, 16000, &m, err, sizeof err), 0);  /* 100 ms */
  CHECK_EQ_INT(kmk_room_parse(b, 9600, 1, 48000, &m, err, sizeof err), 0);  /* 100 ms at 48k */
  CHECK_EQ_INT(m.samples, 4800);
  CHECK_EQ_INT(kmk_room_parse(b, 318, 1, 16000, &m, err, sizeof err), KMK_ROOM_EPOLICY);  /* < 10 ms */
  CHECK_EQ_INT(kmk_room_parse(b, 3202, 1, 16000, &m, err, sizeof err), KMK_ROOM_EPOLICY); /* > 100 ms */
  CHECK_EQ_INT(kmk_room_parse(b, 321, 1, 16000, &m, err, sizeof err), KMK_ROOM_EPOLICY);  /* odd */
  CHECK_EQ_INT(kmk_room_parse(b, 9602, 1, 48000, &m, err, sizeof err), KMK_ROOM_EPOLICY);
  CHECK_EQ_INT(kmk_room_parse(b, 320, 1, 0, &m, err, sizeof err), KMK_ROOM_EPOLICY); /* before hello */
  CHECK(strstr(err, "hello") != NULL);
}

static void test_utf8(void) {
  CHECK(kmk_room_utf8_valid("héllo", strlen("héllo")));
  CHECK(!kmk_room_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
  CHECK(!kmk_room_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
  CHECK(!kmk_room_utf8_valid("\xe2\x82", 2));         /* truncated */
  CHECK(!kmk_room_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
  CHECK(kmk_room_utf8_valid("\xf0\x9f\x98\x80", 4));  /* emoji */
}

static void test_origin(void) {
  CHECK(kmk_room_origin_ok("http://127.0.0.1:8765", 0, "127.0.0.1", 8765, "127.0.0.1:8765"));
  CHECK(kmk_room_origin_ok("http://localhost:8765", 0, "127.0.0.1", 8765, NULL));
  CHECK(!kmk_room_origin_ok("http://localhost:8766", 0, "127.0.0.1", 8765, NULL));
  CHECK(!kmk_room_origin_ok("https://127.0.0.1:8765", 0, "127.0.0.1", 8765, NULL));
  /* served over TLS: the page's origin is https://, and plain http:// ones are refused */
  CHECK(kmk_room_origin_ok("https://127.0.0.1:8765", 1, "127.0.0.1", 8765, NULL));
  CHECK(kmk_room_origin_ok("https://localhost:8765", 1, "127.0.0.1", 8765, NULL));
  CHECK(!kmk_room_origin_ok("http://127.0.0.1:8765", 1, "127.0.0.1", 8765, NULL));
  CHECK(kmk_room_origin_ok("https://10.0.0.7:8765", 1, "0.0.0.0", 8765, "10.0.0.7:8765"));
  CHECK(!kmk_room_origin_ok("http://10.0.0.7:8765", 1, "0.0.0.0", 8765, "10.0.0.7:8765"));
  CHECK(!kmk_room_origin_ok("http://evil.example", 0, "127.0.0.1", 8765, "evil.example"));
  /* DNS rebinding: Host and Origin agree on a foreign name; loopback never trusts Host */
  CHECK(!kmk_room_origin_ok("http://evil.example:8765", 0, "127.0.0.1", 8765, "evil.example:8765"));
  CHECK(!kmk_room_origin_ok("", 0, "127.0.0.1", 8765, NULL));
  CHECK(!kmk_room_origin_ok("null", 0, "127.0.0.1", 8765, NULL));
  CHECK(kmk_room_origin_ok("http://192.168.1.5:8765", 0, "192.168.1.5", 8765, NULL));
  CHECK(!kmk_room_origin_ok("http://localhost:8765", 0, "192.168.1.5", 8765, NULL));
  /* a wildcard bind: the page's own address (the token guards it) */
  CHECK(kmk_room_origin_ok("http://10.0.0.7:8765", 0, "0.0.0.0", 8765, "10.0.0.7:8765"));
  CHECK(!kmk_room_origin_ok("http://10.0.0.8:8765", 0, "0.0.0.0", 8765, "10.0.0.7:8765"));
  CHECK(kmk_room_bind_is_loopback("127.0.0.1"));
  CHECK(kmk_room_bind_is_loopback("::1"));
  CHECK(!kmk_room_bind_is_loopback("0.0.0.0"));
  CHECK(!kmk_room_bind_is_loopback("192.168.1.5"));
}

static void test_paths(void) {
  CHECK(kmk_room_path_ok("/index.html"));
  CHECK(kmk_room_path_ok("/img/logo.svg"));
  CHECK(!kmk_room_path_ok("/../etc/passwd"));
  CHECK(!kmk_room_path_ok("/a/../../b"));
  CHECK(!kmk_room_path_ok("/.git/config"));
  CHECK(!kmk_room_path_ok("//etc/passwd"));
  CHECK(!kmk_room_path_ok("/a%2e%2e/b"));
  CHECK(!kmk_room_path_ok("/a\\b"));
  CHECK(!kmk_room_path_ok("index.html"));
  CHECK_STR(kmk_room_mime("/room.js"), "text/javascript; charset=utf-8");
  CHECK_STR(kmk_room_mime("/room.css"), "text/css; charset=utf-8");
  CHECK_STR(kmk_room_mime("/index.html"), "text/html; charset=utf-8");
  CHECK_STR(kmk_room_mime("/a.svg"), "image/svg+xml");
  CHECK(kmk_room_mime("/a.sh") == NULL);
  CHECK(kmk_room_mime("/Makefile") == NULL);
  CHECK(kmk_room_mime("/a.d/b") == NULL);
}

int main(void) {
  RUN(test_hello);
  RUN(test_chat_personas_ping);
  RUN(test_audio);
  RUN(test_utf8);
  RUN(test_origin);
  RUN(test_paths);
  return check_done();
}
