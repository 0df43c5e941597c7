/* test_edge.c - Edge-TTS: Sec-MS-GEC test vector, voice names, prosody validation, SSML, text
 * chunking (size, newline/space preference, never inside UTF-8 or an entity), frame parsing; and
 * the client against the loopback Edge-like peer: MP3 audio decoded to PCM, multi-chunk text,
 * 403 + Date clock-skew correction with one retry, 503, socket closed without audio, stall, bad
 * frame, cancel (direct and from the PCM callback), circuit breaker, clean loop close. */
#include <uv.h>

#include "check.h"
#include "kameko/cloud.h"
#include "test_net_peer.h"

static void test_token_and_voice(void) {
  char tok[65];
  kmk_edge_gec_token(1767225600, tok);
  CHECK_STR(tok, "42D1947403FD94975436C65DBFCA8003073F9CB5C3F1CE25AF8961A11D7C3DFE");
  kmk_edge_gec_token(1767225600 + 299, tok); /* same 5-minute window */
  CHECK_STR(tok, "42D1947403FD94975436C65DBFCA8003073F9CB5C3F1CE25AF8961A11D7C3DFE");
  kmk_edge_gec_token(1767225600 + 300, tok);
  CHECK(strcmp(tok, "42D1947403FD94975436C65DBFCA8003073F9CB5C3F1CE25AF8961A11D7C3DFE") != 0);
  char v[160];
  CHECK_EQ_INT(kmk_edge_voice_name("ru-RU-SvetlanaNeural", v, sizeof v), 0);
  CHECK_STR(v, "Microsoft Server Speech Text to Speech Voice (ru-RU, SvetlanaNeural)");
  CHECK_EQ_INT(kmk_edge_voice_name(v, v, sizeof v), 0);
  CHECK_EQ_INT(kmk_edge_voice_name("en-US-Aria'Neural", v, sizeof v), KMK_NET_EINVAL);
  CHECK_EQ_INT(kmk_edge_voice_name("english", v, sizeof v), KMK_NET_EINVAL);
  CHECK_EQ_INT(kmk_edge_voice_name("Microsoft Server Speech Text to Speech Voice (ru-RU, A'><b)", v, sizeof v),
               KMK_NET_EINVAL);
  CHECK(kmk_edge_prosody_valid("+0Hz", "+0%", "-10%"));
  CHECK(kmk_edge_prosody_valid("-12Hz", "+25%", "+0%"));
  CHECK(!kmk_edge_prosody_valid("0Hz", "+0%", "+0%"));
  CHECK(!kmk_edge_prosody_valid("+0Hz", "+0", "+0%"));
  CHECK(!kmk_edge_prosody_valid("+0Hz", "+0%", "+0%'/>"));
  char ssml[1024];
  kmk_edge_prosody p = {-5, 20, 500};
  int n = kmk_edge_ssml(ssml, sizeof ssml, "Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)",
                        "en-US", &p, "Hi &amp; bye");
  CHECK(n > 0);
  CHECK_STR(ssml, "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'>"
                  "<voice name='Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)'>"
                  "<prosody pitch='-5Hz' rate='+20%' volume='+100%'>Hi &amp; bye</prosody></voice></speak>");
  CHECK_EQ_INT(kmk_edge_ssml(ssml, 50, "x", "en-US", NULL, "long text"), KMK_NET_ETOOBIG);
}

typedef struct {
  int n;
  char *c[64];
} chunks;
static int collect(void *ud, const char *s, size_t n) {
  chunks *x = ud;
  if (x->n < 64) x->c[x->n] = strndup(s, n);
  x->n++;
  return 0;
}
static void chunks_free(chunks *x) {
  for (int i = 0; i < x->n && i < 64; i++) free(x->c[i]);
  x->n = 0;
}
static int valid_utf8_and_entities(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    if (*p == '&') {
      const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
      int ok = 0;
      for (int i = 0; i < 5; i++)
        if (strncmp((const char *)p, ents[i], strlen(ents[i])) == 0) ok = (int)strlen(ents[i]);
      if (!ok) return 0;
      p += ok;
      continue;
    }
    if (*p == '<' || *p == '>' || *p < 0x09) return 0;
    int l = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
    if (!l) return 0;
    for (int i = 1; i < l; i++)
      if ((p[i] & 0xC0) != 0x80) return 0;
    p += l;
  }
  return 1;
}

static void test_chunking(void) {
  chunks x = {0};
  CHECK_EQ_INT(kmk_edge_chunk_text("Tom & \"Jerry\" <b>\x01 it's", 4096, collect, &x), 1);
  CHECK_STR(x.c[0], "Tom &amp; &quot;Jerry&quot; &lt;b&gt;  it&apos;s");
  chunks_free(&x);
  /* words: split at spaces, each chunk <= max */
  char text[3000];
  size_t k = 0;
  while (k + 8 < sizeof text) k += (size_t)snprintf(text + k, sizeof text - k, "word%02d ", (int)(k % 97));
  int n = kmk_edge_chunk_text(text, 100, collect, &x);
  CHECK(n >= 25);
  for (int i = 0; i < x.n; i++) {
    CHECK(strlen(x.c[i]) <= 100);
    size_t l = strlen(x.c[i]);
    CHECK(x.c[i][l - 1] == ' ');
  }
  chunks_free(&x);
  /* newline preferred over a later space */
  n = kmk_edge_chunk_text("first line here\nsecond part goes on and on and on", 40, collect, &x);
  CHECK_EQ_INT(n, 2);
  CHECK_STR(x.c[0], "first line here\n");
  chunks_free(&x);
  /* no spaces at all: Cyrillic and entities are never cut */
  char hard[4000];
  size_t h = 0;
  while (h + 8 < sizeof hard) {
    memcpy(hard + h, "\xD0\xB6&\xE2\x82\xAC<", 7); /* ж & € < */
    h += 7;
  }
  hard[h] = 0;
  n = kmk_edge_chunk_text(hard, 97, collect, &x);
  CHECK(n > 10);
  size_t total = 0;
  for (int i = 0; i < x.n && i < 64; i++) {
    CHECK(strlen(x.c[i]) <= 97);
    CHECK(valid_utf8_and_entities(x.c[i]));
    total += strlen(x.c[i]);
  }
  chunks_free(&x);
  /* invalid UTF-8 becomes spaces; blank text yields no chunk */
  CHECK_EQ_INT(kmk_edge_chunk_text("a\xff\xfe b\xC3", 4096, collect, &x), 1);
  CHECK(valid_utf8_and_entities(x.c[0]));
  chunks_free(&x);
  CHECK_EQ_INT(kmk_edge_chunk_text(" \n \t ", 4096, collect, &x), 0);
  CHECK_EQ_INT(kmk_edge_chunk_text("x", 4, collect, &x), KMK_NET_EINVAL);
}

static void test_frames(void) {
  uint8_t f[64];
  const char *hdr = "X-RequestId:abc\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n";
  size_t hl = strlen(hdr);
  f[0] = 0;
  f[1] = (uint8_t)hl;
  memcpy(f + 2, hdr, hl);
  memcpy(f + 2 + hl, "MP3", 3);
  char path[32], ct[32];
  const uint8_t *a;
  size_t al;
  CHECK_EQ_INT(kmk_edge_parse_binary(f, 2 + hl + 3, path, sizeof path, ct, sizeof ct, &a, &al), 0);
  CHECK_STR(path, "audio");
  CHECK_STR(ct, "audio/mpeg");
  CHECK_EQ_INT(al, 3);
  CHECK(memcmp(a, "MP3", 3) == 0);
  CHECK_EQ_INT(kmk_edge_parse_binary(f, 2 + hl - 1, path, sizeof path, ct, sizeof ct, &a, &al), KMK_NET_EPROTO);
  CHECK_EQ_INT(kmk_edge_parse_binary(f, 1, path, sizeof path, ct, sizeof ct, &a, &al), KMK_NET_EPROTO);
  const char *t = "X-RequestId:abc\r\nContent-Type:application/json\r\nPath:turn.end\r\n\r\n{}";
  CHECK_EQ_INT(kmk_edge_parse_text_path(t, strlen(t), path, sizeof path), 0);
  CHECK_STR(path, "turn.end");
  CHECK_EQ_INT(kmk_edge_parse_text_path("garbage", 7, path, sizeof path), KMK_NET_EPROTO);
}

/* ---- client against the peer ---- */
static int g_port;
typedef struct {
  int done, err, status, chunks, retried, stop_after, pcm_calls, rate;
  size_t samples;
  double skew, first_audio_ms;
  char msg[200];
} res;

static int on_pcm(void *ud, const int16_t *pcm, size_t n, int rate) {
  res *x = ud;
  x->pcm_calls++;
  x->samples += n;
  x->rate = rate;
  return x->stop_after && x->pcm_calls >= x->stop_after;
}
static void on_done(void *ud, const kmk_edge_result *r) {
  res *x = ud;
  x->done++;
  x->err = r->err;
  x->status = r->http_status;
  x->chunks = r->chunks;
  x->retried = r->retried_403;
  x->skew = r->clock_skew_s;
  x->first_audio_ms = r->first_audio_ms;
  snprintf(x->msg, sizeof x->msg, "%s", r->message);
}

typedef struct {
  uv_loop_t loop;
  kmk_ws *ws;
  kmk_edge *edge;
} env;
static void env_init(env *e, const char *mode, const kmk_cloud_policy *pol) {
  uv_loop_init(&e->loop);
  e->ws = kmk_ws_new(&e->loop);
  char url[256];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d%s%s%s/consumer/speech/synthesize/readaloud/edge/v1",
           g_port, mode ? "/m/" : "", mode ? mode : "", "");
  kmk_edge_opts o = {.url = url};
  if (pol) o.policy = *pol;
  e->edge = kmk_edge_new(e->ws, &o);
}
static int env_close(env *e) {
  kmk_edge_free(e->edge);
  kmk_ws_close(e->ws, NULL, NULL);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  return uv_loop_close(&e->loop) == 0;
}
static int synth(env *e, const char *text, const char *voice, res *x) {
  kmk_edge_callbacks cb = {on_pcm, on_done};
  kmk_edge_prosody p = {0, 10, 0};
  int rc = kmk_edge_tts_synth(e->edge, text, voice, &p, &cb, x, NULL);
  if (rc) return rc;
  for (int i = 0; i < 4000 && !x->done && !(x->stop_after && x->pcm_calls >= x->stop_after); i++)
    uv_run(&e->loop, UV_RUN_ONCE);
  return 0;
}

static char g_last[8192];
static void last_done(void *ud, kmk_http_req *r, int err, const kmk_http_resp *resp) {
  snprintf(g_last, sizeof g_last, "%s", resp->body ? resp->body : "");
}
/* What the peer saw of our last handshake and messages (GET /control/last?service=tts). */
static void fetch_last(uv_loop_t *loop) {
  kmk_http *h = kmk_http_new(loop);
  char u[128];
  snprintf(u, sizeof u, "http://127.0.0.1:%d/control/last?service=tts", g_port);
  kmk_http_opts o = {.url = u, .on_done = last_done};
  g_last[0] = 0;
  kmk_http_request(h, &o, NULL);
  while (!g_last[0] && uv_run(loop, UV_RUN_ONCE)) {
  }
  kmk_http_close(h, NULL, NULL);
}

static void test_synth_ok(void) {
  env e;
  env_init(&e, NULL, NULL);
  res x = {0};
  const char *text = "Hello world. This is a test of Kameko's voice.";
  CHECK_EQ_INT(synth(&e, text, "en-US-AriaNeural", &x), 0);
  CHECK_EQ_INT(x.done, 1);
  CHECK_EQ_INT(x.err, 0);
  CHECK_EQ_INT(x.rate, 24000);
  CHECK_EQ_INT(x.chunks, 1);
  double secs = (double)x.samples / 24000;
  CHECK(secs > 0.045 * strlen(text) * 0.8 && secs < 0.045 * strlen(text) * 1.3);
  CHECK(x.first_audio_ms >= 0);
  fetch_last(&e.loop);
  CHECK(strstr(g_last, "\"token_ok\":true") != NULL);
  CHECK(strstr(g_last, "\"origin\":\"chrome-extension://jdiccldimpdaibmpdkjnbmckianbfold\"") != NULL);
  CHECK(strstr(g_last, "\"pragma\":\"no-cache\"") != NULL);
  CHECK(strstr(g_last, "\"cache-control\":\"no-cache\"") != NULL);
  CHECK(strstr(g_last, "Edg/") != NULL);
  CHECK(strstr(g_last, "\"cookie\":\"muid=") != NULL);
  CHECK(strstr(g_last, "Sec-MS-GEC-Version=1-143.0.3650.75") != NULL);
  CHECK(strstr(g_last, "\"voice\":\"Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)\"") != NULL);
  CHECK(strstr(g_last, "\"rate\":\"+10%\"") != NULL);
  CHECK(strstr(g_last, "\"text\":\"Hello world. This is a test of Kameko's voice.\"") != NULL);
  CHECK(strstr(g_last, "audio-24khz-48kbitrate-mono-mp3") != NULL);
  if (!strstr(g_last, "\"pragma\":\"no-cache\"")) fprintf(stderr, "last: %s\n", g_last);
  /* Russian default voice, text longer than one chunk */
  res y = {0};
  char *longtext = malloc(9001);
  for (int i = 0; i < 9000; i++) longtext[i] = (i % 10 == 9) ? ' ' : (char)('a' + i % 7);
  longtext[9000] = 0;
  CHECK_EQ_INT(synth(&e, longtext, NULL, &y), 0);
  CHECK_EQ_INT(y.err, 0);
  CHECK_EQ_INT(y.chunks, 3);
  CHECK(y.samples > 24000 * 8); /* three chunks of capped 8 s... at least two full ones */
  free(longtext);
  CHECK(env_close(&e));
}

static void test_skew_and_failures(void) {
  env e;
  env_init(&e, "skew", NULL);
  res x = {0};
  CHECK_EQ_INT(synth(&e, "Skewed clock test.", NULL, &x), 0);
  CHECK_EQ_INT(x.err, 0);
  CHECK_EQ_INT(x.retried, 1);
  CHECK_NEAR(x.skew, 3600, 3);
  CHECK(x.samples > 0);
  CHECK(env_close(&e));

  struct {
    const char *mode;
    int err, status;
    const char *msg;
  } c[] = {{"403", KMK_NET_ECONNECT, 403, "clock skew"},
           {"503", KMK_NET_ESERVER, 503, "503"},
           {"closenoaudio", KMK_NET_EPROTO, 0, "without audio"},
           {"stall", KMK_NET_ESTALLED, 0, "stalled"},
           {"badframe", KMK_NET_EPROTO, 0, "malformed binary frame"}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    /* a short stall only where the stall is the point: the machine may be busy */
    kmk_cloud_policy pol = {.stall_ms = strcmp(c[i].mode, "stall") == 0 ? 300 : 3000};
    env_init(&e, c[i].mode, &pol);
    res y = {0};
    CHECK_EQ_INT(synth(&e, "A failing request.", NULL, &y), 0);
    CHECK_EQ_INT(y.done, 1);
    if (y.err != c[i].err || !strstr(y.msg, c[i].msg))
      fprintf(stderr, "mode %s: err %d status %d msg '%s'\n", c[i].mode, y.err, y.status, y.msg);
    CHECK_EQ_INT(y.err, c[i].err);
    CHECK_EQ_INT(y.status, c[i].status);
    CHECK(strstr(y.msg, c[i].msg) != NULL);
    CHECK(env_close(&e));
  }
}

static void test_cancel_and_breaker(void) {
  env e;
  env_init(&e, NULL, NULL);
  res x = {.stop_after = 2};
  CHECK_EQ_INT(synth(&e, "Stop me after a couple of chunks of audio please, thank you.", NULL, &x), 0);
  for (int i = 0; i < 50; i++) uv_run(&e.loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(x.pcm_calls, 2);
  CHECK_EQ_INT(x.done, 0);
  res y = {0};
  kmk_edge_req *r;
  kmk_edge_callbacks cb = {on_pcm, on_done};
  CHECK_EQ_INT(kmk_edge_tts_synth(e.edge, "Cancel me.", NULL, NULL, &cb, &y, &r), 0);
  uv_run(&e.loop, UV_RUN_NOWAIT);
  kmk_edge_cancel(r);
  res z = {0};
  CHECK_EQ_INT(kmk_edge_tts_synth(e.edge, "Left running at shutdown.", NULL, NULL, &cb, &z, NULL), 0);
  CHECK_EQ_INT(kmk_edge_tts_synth(e.edge, "   ", NULL, NULL, &cb, &z, NULL), KMK_NET_EINVAL);
  CHECK_EQ_INT(kmk_edge_tts_synth(e.edge, "x", "bad voice", NULL, &cb, &z, NULL), KMK_NET_EINVAL);
  CHECK(env_close(&e));
  CHECK_EQ_INT(y.done + z.done, 0);

  kmk_cloud_policy pol = {.breaker_threshold = 2, .breaker_cooldown_s = 60};
  env_init(&e, "503", &pol);
  for (int i = 0; i < 2; i++) {
    res f = {0};
    CHECK_EQ_INT(synth(&e, "Fail.", NULL, &f), 0);
    CHECK_EQ_INT(f.err, KMK_NET_ESERVER);
  }
  CHECK(!kmk_edge_available(e.edge));
  res g = {0};
  CHECK_EQ_INT(synth(&e, "Skipped.", NULL, &g), KMK_NET_EOPEN);
  CHECK(env_close(&e));
}

int main(void) {
  RUN(test_token_and_voice);
  RUN(test_chunking);
  RUN(test_frames);
  g_port = kmk_peer_start(NULL);
  if (g_port) {
    kmk_mp3 *m = kmk_mp3_new();
    if (!m) {
      printf("skipped: client tests need libmpg123\n");
    } else {
      kmk_mp3_free(m);
      RUN(test_synth_ok);
      RUN(test_skew_and_failures);
      RUN(test_cancel_and_breaker);
    }
    kmk_peer_stop();
  }
  return check_done();
}
