/* Unit tests for the Discord REST rate-limit bookkeeping: route keys (major parameters kept,
 * other ids and tokens replaced), per-route buckets from X-RateLimit-* headers, buckets shared by
 * routes, 429 with retry_after (body first, header second), the global limit, LRU eviction, and
 * the registered command list. */
#include <stdlib.h>

#include "check.h"
#include "kameko/discord.h"

static void test_route_keys(void) {
  char k[96];
  kmk_drest_route_key("PUT", "/applications/800000000000000001/guilds/900000000000000001/commands", k, sizeof k);
  CHECK_STR(k, "PUT /applications/{id}/guilds/900000000000000001/commands");
  kmk_drest_route_key("POST", "/interactions/500000000000000001/itok_SECRET/callback", k, sizeof k);
  CHECK_STR(k, "POST /interactions/500000000000000001/{token}/callback");
  kmk_drest_route_key("PATCH", "/webhooks/800000000000000001/itok_SECRET/messages/@original", k, sizeof k);
  CHECK_STR(k, "PATCH /webhooks/800000000000000001/{token}/messages/@original");
  CHECK(strstr(k, "SECRET") == NULL);
  kmk_drest_route_key("GET", "/channels/10/messages/123?limit=5", k, sizeof k);
  CHECK_STR(k, "GET /channels/10/messages/{id}");
  char small[12];
  kmk_drest_route_key("DELETE", "/channels/1234567890/messages/1", small, sizeof small);
  CHECK(strlen(small) < sizeof small);
}

static void test_buckets(void) {
  kmk_drest_limits l;
  kmk_drest_limits_init(&l);
  const char *r1 = "PUT /applications/{id}/guilds/1/commands";
  const char *r2 = "PUT /applications/{id}/guilds/2/commands";
  /* unknown bucket: go */
  CHECK(kmk_drest_limits_delay(&l, r1, 0) == 0);
  /* the answer says: 1 left, window resets in 2.5 s, bucket "abc" */
  kmk_drest_limits_update(&l, r1, "abc", "1", "2.5", 100);
  CHECK(kmk_drest_limits_delay(&l, r1, 200) == 0);  /* uses the last one */
  CHECK_NEAR(kmk_drest_limits_delay(&l, r1, 300), 2600 - 300, 1e-6);
  CHECK(kmk_drest_limits_delay(&l, r1, 2700) == 0); /* window passed */
  /* another route learns it shares bucket abc: it shares the count */
  kmk_drest_limits_update(&l, r2, "abc", "0", "1.0", 3000);
  CHECK_NEAR(kmk_drest_limits_delay(&l, r1, 3100), 900, 1e-6);
}

static void test_429(void) {
  kmk_drest_limits l;
  kmk_drest_limits_init(&l);
  const char *r = "POST /interactions/5/{token}/callback";
  /* the body's precise retry_after wins over the rounded header */
  double ms = kmk_drest_limits_429(&l, r, "1", "{\"message\":\"You are being rate limited.\",\"retry_after\":0.25,\"global\":false}", NULL, 0);
  CHECK_NEAR(ms, 250, 1e-6);
  CHECK_NEAR(kmk_drest_limits_delay(&l, r, 100), 150, 1e-6);
  CHECK(kmk_drest_limits_delay(&l, "GET /other", 100) == 0); /* not global */
  /* no body: the header */
  ms = kmk_drest_limits_429(&l, r, "3", "not json", NULL, 1000);
  CHECK_NEAR(ms, 3000, 1e-6);
  /* global: every route waits */
  ms = kmk_drest_limits_429(&l, r, NULL, "{\"retry_after\":2,\"global\":true}", NULL, 5000);
  CHECK_NEAR(kmk_drest_limits_delay(&l, "GET /anything", 6000), 1000, 1e-6);
  CHECK(kmk_drest_limits_delay(&l, "GET /anything", 7000) == 0);
  /* X-RateLimit-Global header, nothing parsable: 1 s default */
  ms = kmk_drest_limits_429(&l, r, NULL, NULL, "true", 10000);
  CHECK_NEAR(ms, 1000, 1e-6);
  CHECK(kmk_drest_limits_delay(&l, "GET /x", 10500) > 0);
}

static void test_eviction(void) {
  kmk_drest_limits l;
  kmk_drest_limits_init(&l);
  char route[64];
  for (int i = 0; i < KMK_DREST_BUCKETS + 10; i++) {
    snprintf(route, sizeof route, "GET /channels/%d", i);
    kmk_drest_limits_update(&l, route, NULL, "0", "100", i);
  }
  CHECK_EQ_INT(l.n, KMK_DREST_BUCKETS);
  /* the newest is still limited, the oldest was forgotten */
  CHECK(kmk_drest_limits_delay(&l, route, 100) > 0);
  CHECK(kmk_drest_limits_delay(&l, "GET /channels/0", 100) == 0);
}

static void test_commands(void) {
  cJSON *c = kmk_discord_commands_json();
  CHECK_EQ_INT(cJSON_GetArraySize(c), 6);
  const char *want[] = {"join", "leave", "persona", "mute", "unmute", "forget"};
  for (int i = 0; i < 6; i++) {
    cJSON *it = cJSON_GetArrayItem(c, i);
    CHECK_STR(cJSON_GetObjectItem(it, "name")->valuestring, want[i]);
    CHECK(strlen(cJSON_GetObjectItem(it, "description")->valuestring) <= 100);
  }
  cJSON *opt = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(c, 2), "options"), 0);
  CHECK_EQ_INT(cJSON_GetObjectItem(opt, "type")->valueint, 3);
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(opt, "required")));
  cJSON_Delete(c);
}

int main(void) {
  RUN(test_route_keys);
  RUN(test_buckets);
  RUN(test_429);
  RUN(test_eviction);
  RUN(test_commands);
  return check_done();
}
