/* test_dvoice_msg.c - the voice gateway v8 messages without I/O: every op the connection reads
 * (hello, ready with mode choice input, session description key, speaking, ack in both shapes,
 * clients connect/disconnect, DAVE 21/22/24), rejects (bad JSON, missing or out-of-range fields,
 * non-digit ids, a 31-byte key), binary frame header, and the builders' JSON shapes. */
#include <cjson/cJSON.h>

#include "check.h"
#include "kameko/rtp.h"
#include "transport/dvoice_msg.h"

static int parse(const char *s, kmk_dvoice_msg *m) { return kmk_dvoice_msg_parse(s, strlen(s), m); }

static void test_server_ops(void) {
  kmk_dvoice_msg m;
  CHECK_EQ_INT(parse("{\"op\":8,\"d\":{\"heartbeat_interval\":13750.5}}", &m), 0);
  CHECK_EQ_INT(m.op, 8);
  CHECK_NEAR(m.heartbeat_interval, 13750.5, 1e-9);
  CHECK_EQ_INT(m.seq, -1);
  CHECK_EQ_INT(parse("{\"op\":2,\"seq\":7,\"d\":{\"ssrc\":4294967295,\"ip\":\"10.0.0.1\",\"port\":"
                     "50001,\"modes\":[\"xsalsa20_poly1305\",\"aead_xchacha20_poly1305_rtpsize\"]}}",
                     &m), 0);
  CHECK_EQ_INT(m.seq, 7);
  CHECK_EQ_INT(m.ssrc, 4294967295u);
  CHECK(strcmp(m.ip, "10.0.0.1") == 0);
  CHECK_EQ_INT(m.port, 50001);
  CHECK_EQ_INT(m.modes, 1u << KMK_RTP_XCHACHA20_POLY1305);
  char key[512] = "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\",\"dave_protocol_version\":1,"
                  "\"secret_key\":[";
  for (int i = 0; i < 32; i++) snprintf(key + strlen(key), 8, "%d%s", 200 + i % 50, i < 31 ? "," : "");
  strcat(key, "]}}");
  CHECK_EQ_INT(parse(key, &m), 0);
  CHECK_EQ_INT(m.mode, KMK_RTP_AES256_GCM);
  CHECK_EQ_INT(m.secret_key[0], 200);
  CHECK_EQ_INT(m.secret_key[31], 231);
  CHECK_EQ_INT(m.dave_version, 1);
  CHECK_EQ_INT(parse("{\"op\":5,\"d\":{\"user_id\":\"123456789012345678\",\"ssrc\":42,"
                     "\"speaking\":1}}", &m), 0);
  CHECK(strcmp(m.user_id, "123456789012345678") == 0);
  CHECK_EQ_INT(m.ssrc, 42);
  CHECK_EQ_INT(m.speaking, 1);
  CHECK_EQ_INT(parse("{\"op\":6,\"d\":{\"t\":1700000000123}}", &m), 0);
  CHECK_EQ_INT(m.nonce, 1700000000123ll);
  CHECK_EQ_INT(parse("{\"op\":6,\"d\":99}", &m), 0); /* older versions echo a bare nonce */
  CHECK_EQ_INT(m.nonce, 99);
  CHECK_EQ_INT(parse("{\"op\":11,\"d\":{\"user_ids\":[\"1\",\"22\"]}}", &m), 0);
  CHECK_EQ_INT(m.n_ids, 2);
  CHECK(strcmp(m.user_ids[1], "22") == 0);
  CHECK_EQ_INT(parse("{\"op\":13,\"d\":{\"user_id\":\"5\"}}", &m), 0);
  CHECK(strcmp(m.user_id, "5") == 0);
  CHECK_EQ_INT(parse("{\"op\":9,\"d\":null}", &m), 0);
  CHECK_EQ_INT(m.op, 9);
  CHECK_EQ_INT(parse("{\"op\":21,\"d\":{\"transition_id\":3,\"protocol_version\":1}}", &m), 0);
  CHECK_EQ_INT(m.transition_id, 3);
  CHECK_EQ_INT(m.protocol_version, 1);
  CHECK_EQ_INT(parse("{\"op\":24,\"d\":{\"epoch\":1,\"protocol_version\":1}}", &m), 0);
  CHECK_EQ_INT(m.epoch, 1);
  CHECK_EQ_INT(parse("{\"op\":18,\"d\":{\"flags\":2}}", &m), 0); /* unknown ops parse */
}

static void test_rejects(void) {
  kmk_dvoice_msg m;
  CHECK_EQ_INT(parse("", &m), KMK_DVMSG_EJSON);
  CHECK_EQ_INT(parse("[1]", &m), KMK_DVMSG_EJSON);
  CHECK_EQ_INT(parse("{\"op\":\"8\"}", &m), KMK_DVMSG_EJSON);
  CHECK_EQ_INT(parse("{\"op\":8}", &m), KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":8,\"d\":{\"heartbeat_interval\":-5}}", &m), KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"x\",\"port\":70000,\"modes\":[]}}", &m),
               KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"\",\"port\":7,\"modes\":[]}}", &m),
               KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\",\"secret_key\":[1,2]}}",
                     &m), KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":4,\"d\":{\"mode\":\"xsalsa20_poly1305\",\"secret_key\":[]}}", &m),
               KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":5,\"d\":{\"user_id\":\"12a\",\"ssrc\":1}}", &m), KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":5,\"d\":{\"user_id\":\"1234567890123456789012345\",\"ssrc\":1}}", &m),
               KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":11,\"d\":{\"user_ids\":[1]}}", &m), KMK_DVMSG_EFIELD);
  CHECK_EQ_INT(parse("{\"op\":21,\"d\":{\"transition_id\":70000}}", &m), KMK_DVMSG_EFIELD);
  uint16_t seq;
  uint8_t op;
  const uint8_t *p;
  size_t n;
  const uint8_t b[] = {0x01, 0x02, 27, 9, 9};
  CHECK_EQ_INT(kmk_dvoice_bin_parse(b, 2, &seq, &op, &p, &n), KMK_DVMSG_ESHORT);
  CHECK_EQ_INT(kmk_dvoice_bin_parse(b, sizeof b, &seq, &op, &p, &n), 0);
  CHECK_EQ_INT(seq, 0x0102);
  CHECK_EQ_INT(op, 27);
  CHECK_EQ_INT(n, 2);
}

static void test_builders(void) {
  char buf[512];
  CHECK(kmk_dvoice_msg_identify(buf, sizeof buf, "1", "2", "abc", "tok", 1) > 0);
  cJSON *j = cJSON_Parse(buf);
  CHECK(j != NULL);
  const cJSON *d = cJSON_GetObjectItem(j, "d");
  CHECK_EQ_INT(cJSON_GetObjectItem(j, "op")->valueint, 0);
  CHECK(strcmp(cJSON_GetObjectItem(d, "token")->valuestring, "tok") == 0);
  CHECK_EQ_INT(cJSON_GetObjectItem(d, "max_dave_protocol_version")->valueint, 1);
  cJSON_Delete(j);
  CHECK(kmk_dvoice_msg_resume(buf, sizeof buf, "1", "abc", "tok", 12) > 0);
  j = cJSON_Parse(buf);
  CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "d"), "seq_ack")->valueint, 12);
  cJSON_Delete(j);
  CHECK(kmk_dvoice_msg_heartbeat(buf, sizeof buf, 1700000000123ll, -1) > 0);
  CHECK(strstr(buf, "\"t\":1700000000123") && strstr(buf, "\"seq_ack\":-1"));
  CHECK(kmk_dvoice_msg_select(buf, sizeof buf, "127.0.0.1", 5000, KMK_RTP_XCHACHA20_POLY1305) > 0);
  j = cJSON_Parse(buf);
  const cJSON *data = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "d"), "data");
  CHECK(strcmp(cJSON_GetObjectItem(data, "mode")->valuestring, "aead_xchacha20_poly1305_rtpsize") == 0);
  CHECK_EQ_INT(cJSON_GetObjectItem(data, "port")->valueint, 5000);
  cJSON_Delete(j);
  CHECK(kmk_dvoice_msg_speaking(buf, sizeof buf, 1, 77) > 0);
  CHECK(strcmp(buf, "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":77}}") == 0);
  CHECK_EQ_INT(kmk_dvoice_msg_speaking(buf, 10, 1, 77), -1);
  /* a quote in an id cannot break the JSON */
  CHECK(kmk_dvoice_msg_identify(buf, sizeof buf, "1\"", "2", "s", "t", 0) > 0);
  j = cJSON_Parse(buf);
  CHECK(j != NULL);
  cJSON_Delete(j);
}

int main(void) {
  RUN(test_server_ops);
  RUN(test_rejects);
  RUN(test_builders);
  return check_done();
}
