/* The browser room end to end without a browser: the room runs in-process on port 0 and the
 * engine's own WebSocket client (engine/net/ws.c) plays the pages, sending flite-synthesized speech
 * as 20 ms int16 frames in real time.
 *
 *   conversation: two speakers join (welcome, peers); bob talks and disconnects mid-sentence (his
 *     utterance is still transcribed, alice is unaffected); alice asks the persona by name
 *     (speech_start, transcript, decision, non-silent agent audio frames); alice speaks over the
 *     reply: flush arrives, no agent frame after it; the delay from the speech start in the sent
 *     audio to the flush and to the last agent frame is printed; a 100 ms noise burst over the
 *     next reply flushes early but is not confirmed by the agent, and the reply carries on.
 *   limits: bad/missing Origin and wrong path refused before the upgrade; an oversized frame, audio
 *     faster than real time, audio before hello and a JSON flood each close only that socket with
 *     1008; a bad message gets an error and the socket stays; duplicate names made unique; chat and
 *     personas; the 17th connection is closed as "full".
 *   token: with KMK_ROOM_TOKEN a missing or wrong token is refused; a non-loopback bind without a
 *     token refuses to start.
 *   http: static files with their MIME types; traversal, hidden files and unknown types get 404.
 *   tls: with KMK_ROOM_TLS_CERT/KEY (a throw-away self-signed certificate made here) the room
 *     serves https and wss (the page loads and a page joins, trusting that certificate), refuses
 *     an http:// Origin and plain http; half a configuration or an unreadable file does not start.
 * Every test ends with uv_loop_close() == 0: every handle closed.
 */
#include <math.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "kameko/log.h"
#include "kameko/net.h"
#include "kameko/room.h"
#include "test_personas_util.h"

#define MAX_CLIENTS 32
#define FRAME 320 /* 20 ms at 16 kHz */

typedef struct client {
  kmk_ws_conn *c;
  int open, closed, err, status;
  char reason[200];
  char you[80], last_error[300];
  int welcomed, n_errors, n_pongs, peers_n;
  cJSON *events[4096];
  int n_events;
  int n_audio;
  double rms_max;
  double last_audio_ms;
  int n_flush;
  double flush_ms, last_audio_before_flush_ms;
  char flush_reason[32];
  double playback_stop_ms;  /* when the agent's own "playback_stop" event arrived */
  int personas_active;      /* size of "active" in the last "personas" message */
  /* sending */
  int sending;             /* 1: track then silence */
  int stop_after_track;    /* 1: nothing after the track (a stalled or muted page) */
  pbuf track;
  size_t pos;
  size_t onset;            /* sample index of the speech onset in track */
  double onset_ms;         /* when the frame holding it was sent (0 = not yet) */
} client;

static uv_loop_t loop;
static kmk_ws *ws;
static kmk_room *room;
static kmk_eventlog *evlog;
static kmk_config cfg;
static client cl[MAX_CLIENTS];
static uv_timer_t pump, check;
static char tmpdir[256];

static double now_ms(void) { return (double)uv_hrtime() / 1e6; }

/* ---------------------------------------------------------------- client callbacks */

static void on_open(void *ud, kmk_ws_conn *c) { ((client *)ud)->open = 1; }

static void on_message(void *ud, kmk_ws_conn *c, const void *data, size_t len, int binary) {
  client *k = ud;
  if (binary) {
    k->n_audio++;
    k->last_audio_ms = now_ms();
    const unsigned char *b = data;
    double s = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
      double v = (int16_t)(uint16_t)(b[i] | (b[i + 1] << 8));
      s += v * v;
    }
    double rms = len >= 2 ? sqrt(s / (double)(len / 2)) : 0;
    if (rms > k->rms_max) k->rms_max = rms;
    CHECK_EQ_INT(len, 960 * 2);
    return;
  }
  cJSON *j = cJSON_ParseWithLength(data, len);
  CHECK(j != NULL);
  if (!j) return;
  const char *type = pstr(j, "type");
  if (strcmp(type, "welcome") == 0) {
    k->welcomed = 1;
    snprintf(k->you, sizeof k->you, "%s", pstr(j, "you"));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "available")));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "active")));
  } else if (strcmp(type, "event") == 0) {
    cJSON *ev = cJSON_DetachItemFromObject(j, "event");
    if (ptype(ev, "playback_stop") && !k->playback_stop_ms) k->playback_stop_ms = now_ms();
    if (k->n_events < 4096) k->events[k->n_events++] = ev;
    else cJSON_Delete(ev);
  } else if (strcmp(type, "flush") == 0) {
    if (!k->n_flush) {
      k->flush_ms = now_ms();
      k->last_audio_before_flush_ms = k->last_audio_ms;
      snprintf(k->flush_reason, sizeof k->flush_reason, "%s", pstr(j, "reason"));
    }
    k->n_flush++;
  } else if (strcmp(type, "pong") == 0) {
    k->n_pongs++;
  } else if (strcmp(type, "error") == 0) {
    k->n_errors++;
    snprintf(k->last_error, sizeof k->last_error, "%s", pstr(j, "message"));
  } else if (strcmp(type, "personas") == 0) {
    k->personas_active = cJSON_GetArraySize(cJSON_GetObjectItem(j, "active"));
  } else if (strcmp(type, "peers") == 0) {
    k->peers_n = cJSON_GetArraySize(cJSON_GetObjectItem(j, "peers"));
  }
  cJSON_Delete(j);
}

static void on_close(void *ud, kmk_ws_conn *c, int err, int status, const char *date,
                     const char *reason) {
  client *k = ud;
  k->closed = 1;
  k->err = err;
  k->status = status;
  snprintf(k->reason, sizeof k->reason, "%s", reason);
}

static const char *tls_cert, *tls_key; /* for the next setup(): serve https/wss */

static void connect_to(client *k, const char *origin, const char *path) {
  char url[200], oh[200];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", tls_cert ? "wss" : "ws", kmk_room_port(room),
           path ? path : "/ws");
  if (origin && strcmp(origin, "self") == 0)
    snprintf(oh, sizeof oh, "Origin: %s://127.0.0.1:%d", tls_cert ? "https" : "http",
             kmk_room_port(room));
  else
    snprintf(oh, sizeof oh, "Origin: %s", origin ? origin : "");
  const char *hdrs[] = {oh, NULL};
  kmk_ws_opts o = {.url = url,
                   .headers = origin ? hdrs : NULL,
                   .timeout_ms = 600000,
                   .max_message = 1 << 20,
                   .cb = {on_open, on_message, on_close},
                   .ud = k};
  CHECK_EQ_INT(kmk_ws_connect(ws, &o, &k->c), 0);
}

static void send_text(client *k, const char *s) { CHECK_EQ_INT(kmk_ws_send(k->c, s, strlen(s), 0), 0); }

static void hello(client *k, const char *name) {
  char buf[200];
  snprintf(buf, sizeof buf, "{\"type\":\"hello\",\"name\":\"%s\",\"rate\":16000}", name);
  send_text(k, buf);
}

static void reset_client(client *k) {
  for (int i = 0; i < k->n_events; i++) cJSON_Delete(k->events[i]);
  free(k->track.pcm);
  memset(k, 0, sizeof *k);
}

/* ---------------------------------------------------------------- event lookups on a page */

static int find_ev(const client *k, int from, const char *type, const char *speaker) {
  for (int i = from < 0 ? 0 : from; i < k->n_events; i++)
    if (ptype(k->events[i], type) && (!speaker || strcmp(pstr(k->events[i], "speaker"), speaker) == 0))
      return i;
  return -1;
}

static int find_decision_for(const client *k, int from, const char *to) {
  for (int i = from; i < k->n_events; i++)
    if (ptype(k->events[i], "decision") && strcmp(pstr(k->events[i], "to"), to) == 0 &&
        strcmp(pstr(k->events[i], "trigger"), "transcript") == 0 &&
        cJSON_IsTrue(cJSON_GetObjectItem(k->events[i], "should_speak")))
      return i;
  return -1;
}

/* ---------------------------------------------------------------- loop helpers */

/* Every 20 ms: each sending client gets its next 20 ms (track, then silence). */
static void pump_cb(uv_timer_t *t) {
  static int16_t zeros[FRAME];
  for (int i = 0; i < MAX_CLIENTS; i++) {
    client *k = &cl[i];
    if (!k->sending || !k->open || k->closed) continue;
    if (k->stop_after_track && k->pos >= k->track.n) continue;
    const int16_t *p = zeros;
    if (k->pos < k->track.n) {
      size_t n = k->track.n - k->pos >= FRAME ? FRAME : 0;
      if (n) p = k->track.pcm + k->pos;
      if (!k->onset_ms && k->onset >= k->pos && k->onset < k->pos + FRAME) k->onset_ms = now_ms();
      k->pos += FRAME;
    }
    kmk_ws_send(k->c, p, sizeof zeros, 1);
  }
}

static int (*pred_fn)(void);
static double deadline_ms;
static int pred_met;

static void check_cb(uv_timer_t *t) {
  if (pred_fn()) {
    pred_met = 1;
    uv_stop(&loop);
  } else if (now_ms() > deadline_ms) {
    uv_stop(&loop);
  }
}

/* Runs the loop until pred() holds (1) or timeout_ms passes (0). */
static int run_until(int (*pred)(void), double timeout_ms) {
  pred_fn = pred;
  pred_met = 0;
  deadline_ms = now_ms() + timeout_ms;
  if (pred()) return 1;
  uv_timer_start(&check, check_cb, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_timer_stop(&check);
  return pred_met;
}

static double wait_until_ms;
static int p_time(void) { return now_ms() >= wait_until_ms; }
static void run_for(double ms) {
  wait_until_ms = now_ms() + ms;
  run_until(p_time, ms + 1000);
}

/* flite speech at 16 kHz with lead/tail silence; onset = first sample louder than 1000 */
static void make_speech(client *k, const char *voice, const char *text, double lead, double tail) {
  free(k->track.pcm);
  memset(&k->track, 0, sizeof k->track);
  if (lead > 0) pbuf_silence(&k->track, lead); /* (0 s on an empty buffer: memset(NULL, 0, 0)) */
  CHECK_EQ_INT(pbuf_say(&k->track, voice, text), 0);
  if (tail > 0) pbuf_silence(&k->track, tail);
  k->onset = 0;
  for (size_t i = 0; i < k->track.n; i++)
    if (abs(k->track.pcm[i]) > 1000) {
      k->onset = i;
      break;
    }
  k->pos = 0;
  k->onset_ms = 0;
}

static size_t max_ctl_queued; /* for the next setup() */

static int setup(const char *token, const char *web_dir) {
  char err[1024] = "";
  snprintf(tmpdir, sizeof tmpdir, "/tmp/kmk_room_XXXXXX");
  CHECK(mkdtemp(tmpdir) != NULL);
  char path[400];
  snprintf(path, sizeof path, "%s/events.jsonl", tmpdir);
  evlog = kmk_eventlog_open(path, err, sizeof err);
  CHECK(evlog != NULL);
  kmk_config_load(&cfg, NULL, 0, err, sizeof err);
  CHECK_EQ_INT(kmk_config_set(&cfg, "KMK_ROOM_PORT", "0", err, sizeof err), 0);
  if (token) CHECK_EQ_INT(kmk_config_set(&cfg, "KMK_ROOM_TOKEN", token, err, sizeof err), 0);
  if (tls_cert) {
    CHECK_EQ_INT(kmk_config_set(&cfg, "KMK_ROOM_TLS_CERT", tls_cert, err, sizeof err), 0);
    CHECK_EQ_INT(kmk_config_set(&cfg, "KMK_ROOM_TLS_KEY", tls_key, err, sizeof err), 0);
  }
  uv_loop_init(&loop);
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
  kmk_room_opts o = {.loop = &loop,
                     .config = &cfg,
                     .log = evlog,
                     .persona_paths = personas,
                     .n_personas = 1,
                     .scripts_dir = KMK_SOURCE_DIR "/scripts",
                     .web_dir = web_dir,
                     .no_watch = 1,
                     .max_ctl_queued = max_ctl_queued};
  room = kmk_room_new(&o, err, sizeof err);
  if (!room) fprintf(stderr, "room: %s\n", err);
  CHECK(room != NULL);
  CHECK(kmk_room_port(room) > 0);
  ws = tls_cert ? kmk_ws_new_ca(&loop, tls_cert) : kmk_ws_new(&loop);
  CHECK(ws != NULL);
  uv_timer_init(&loop, &pump);
  uv_timer_init(&loop, &check);
  uv_timer_start(&pump, pump_cb, 20, 20);
  for (int i = 0; i < MAX_CLIENTS; i++) reset_client(&cl[i]);
  return room && ws ? 0 : -1;
}

static void ws_closed(void *ud) { *(int *)ud = 1; }
static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void teardown(void) {
  int closed = 0;
  uv_timer_stop(&pump); /* no more sends: the connections are freed below */
  if (ws) {
    kmk_ws_close(ws, ws_closed, &closed);
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
  }
  ws = NULL;
  uv_close((uv_handle_t *)&pump, NULL);
  uv_close((uv_handle_t *)&check, NULL);
  kmk_room_free(room);
  room = NULL;
  uv_run(&loop, UV_RUN_DEFAULT);
  int open_handles = 0;
  uv_walk(&loop, close_walk, &open_handles);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  kmk_eventlog_close(evlog);
  kmk_config_free(&cfg);
  for (int i = 0; i < MAX_CLIENTS; i++) reset_client(&cl[i]);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* ---------------------------------------------------------------- conversation + barge-in */

static client *A = &cl[0], *B = &cl[1];
static double mark_ms;
static int mark_audio;

static int p_a_open(void) { return A->open || A->closed; }
static int p_a_welcomed(void) { return A->welcomed || A->closed; }
static int p_b_open(void) { return B->open || B->closed; }
static int p_b_welcomed(void) { return (B->welcomed && A->peers_n == 2) || B->closed; }
static int p_greeting_settled(void) {
  if (find_ev(A, 0, "audio_out_start", NULL) >= 0) return find_ev(A, 0, "audio_out_end", NULL) >= 0;
  return now_ms() - mark_ms > 4000;
}
static int p_b_midway(void) { return B->onset_ms && now_ms() > B->onset_ms + 1200; }
static int p_bob_done(void) {
  int l = find_ev(A, 0, "leave", "bob");
  return l >= 0 && find_ev(A, l, "transcript", "bob") >= 0 && A->peers_n == 1;
}
static int p_reply_audio(void) { return find_decision_for(A, 0, "alice") >= 0 && A->n_audio - mark_audio >= 15; }
static int p_flushed(void) { return A->n_flush > 0; }
static int mark_events, mark_flush;
static double quiet_since_ms;
static int p_quiet(void) {
  return now_ms() - A->last_audio_ms > 2000 && now_ms() - quiet_since_ms > 4000;
}
static int p_second_reply(void) {
  return find_decision_for(A, mark_events, "alice") >= 0 && A->n_audio - mark_audio >= 10;
}
static int p_flushed_again(void) { return A->n_flush > mark_flush; }
static int p_resumed(void) { return A->n_audio > mark_audio; }

static void test_conversation(void) {
  if (setup(NULL, NULL) < 0) return;
  connect_to(A, "self", NULL);
  CHECK(run_until(p_a_open, 10000) && A->open);
  hello(A, "alice");
  CHECK(run_until(p_a_welcomed, 10000) && A->welcomed);
  CHECK_STR(A->you, "alice");
  A->sending = 1; /* a live microphone: silence until there is something to say */
  connect_to(B, "self", NULL);
  CHECK(run_until(p_b_open, 10000) && B->open);
  hello(B, "bob");
  CHECK(run_until(p_b_welcomed, 10000) && B->welcomed);
  CHECK_EQ_INT(A->peers_n, 2);
  CHECK(find_ev(A, 0, "join", "alice") >= 0); /* a page sees its own join (welcome came first) */
  CHECK(find_ev(A, 0, "join", "bob") >= 0);
  B->sending = 1;
  mark_ms = now_ms();
  CHECK(run_until(p_greeting_settled, 30000));

  /* bob talks and drops out mid-sentence: his words still count, alice is not disturbed */
  make_speech(B, "kal16", "Hello Alice. Did you see the game last night? It was a great match.", 0.2, 0.0);
  CHECK(run_until(p_b_midway, 15000));
  kmk_ws_close_conn(B->c);
  B->sending = 0;
  CHECK(run_until(p_bob_done, 30000));
  int lb = find_ev(A, 0, "leave", "bob"), tb = find_ev(A, lb, "transcript", "bob");
  CHECK(lb >= 0 && tb > lb);
  if (tb > 0) printf("bob (cut off after 1.2 s of speech) heard: \"%s\"\n", pstr(A->events[tb], "text"));
  CHECK(!A->closed);

  /* alice asks the persona */
  make_speech(A, "slt", "Kameko, what is your name?", 0.3, 0.0);
  mark_audio = A->n_audio;
  CHECK(run_until(p_reply_audio, 60000));
  int ss = find_ev(A, 0, "speech_start", "alice"), tr = find_ev(A, ss, "transcript", "alice");
  int dec = find_decision_for(A, 0, "alice");
  CHECK(ss >= 0 && tr > ss && dec > tr);
  if (tr > 0) printf("alice heard: \"%s\"\n", pstr(A->events[tr], "text"));
  if (dec > 0) printf("Kameko: \"%s\"\n", pstr(A->events[dec], "response"));
  CHECK(find_ev(A, dec, "audio_out_start", "Kameko") > dec);
  CHECK(A->n_audio - mark_audio >= 15);
  CHECK(A->rms_max > 300); /* the agent's voice, not silence */

  /* barge-in: alice speaks over the reply */
  make_speech(A, "slt", "Wait, stop please, I have another question.", 0.0, 0.0);
  CHECK(run_until(p_flushed, 15000));
  CHECK_STR(A->flush_reason, "barge_in");
  int audio_at_flush = A->n_audio;
  run_for(300);
  CHECK_EQ_INT(A->n_audio, audio_at_flush); /* nothing of the old reply after the flush */
  int ps = find_ev(A, 0, "playback_stop", "Kameko");
  CHECK(ps >= 0);
  if (ps >= 0) CHECK_STR(pstr(A->events[ps], "by"), "alice");
  if (A->onset_ms > 0 && A->flush_ms > 0) {
    double to_flush = A->flush_ms - A->onset_ms, to_last = A->last_audio_before_flush_ms - A->onset_ms;
    printf("barge-in: speech start (in the sent audio) -> flush at the page %.0f ms, -> last agent "
           "frame %.0f ms (goal <= 150 ms)\n",
           to_flush, to_last);
    CHECK(to_flush > 0 && to_flush < 2000); /* generous: a loaded 2-core machine */
  }
  if (A->onset_ms > 0 && A->playback_stop_ms > 0)
    printf("           the agent's own confirmation (playback_stop at the page) %.0f ms after the "
           "speech start\n", A->playback_stop_ms - A->onset_ms);

  /* a false alarm: a 100 ms noise burst over the next reply flushes the pages early, the agent
     does not confirm (too short for speech), and its voice carries on */
  quiet_since_ms = now_ms();
  CHECK(run_until(p_quiet, 30000));
  mark_events = A->n_events;
  mark_audio = A->n_audio;
  make_speech(A, "slt", "Kameko, what time is it?", 0.3, 0.0);
  CHECK(run_until(p_second_reply, 60000));
  mark_flush = A->n_flush;
  mark_events = A->n_events;
  free(A->track.pcm);
  memset(&A->track, 0, sizeof A->track);
  pbuf_silence(&A->track, 0.1);
  srand(7);
  for (size_t i = 0; i < A->track.n; i++) A->track.pcm[i] = (int16_t)(rand() % 16001 - 8000);
  A->pos = 0;
  CHECK(run_until(p_flushed_again, 5000));
  mark_audio = A->n_audio;
  CHECK(run_until(p_resumed, 3000)); /* the held reply goes out after HOLD_MS */
  CHECK(find_ev(A, mark_events, "playback_stop", NULL) < 0);
  CHECK(find_ev(A, mark_events, "speech_start", "alice") < 0);

  /* what the pages saw is what was logged */
  CHECK(kmk_eventlog_count(evlog) >= (size_t)A->n_events);
  teardown();
}

/* ---------------------------------------------------------------- a page that goes quiet */

static int p_stalled_transcript(void) { return find_ev(A, 0, "transcript", "alice") >= 0 || A->closed; }

/* A page stops sending mid-conversation (tab backgrounded, network stall, mute without a tail):
   the room fills its stream with silence, so the turn still ends and is answered. */
static void test_stall(void) {
  if (setup(NULL, NULL) < 0) return;
  connect_to(A, "self", NULL);
  CHECK(run_until(p_a_open, 10000) && A->open);
  hello(A, "alice");
  CHECK(run_until(p_a_welcomed, 10000) && A->welcomed);
  make_speech(A, "slt", "Kameko, what is your name?", 0.3, 0.0);
  A->stop_after_track = 1;
  A->sending = 1;
  CHECK(run_until(p_stalled_transcript, 30000));
  int se = find_ev(A, 0, "speech_end", "alice");
  CHECK(se >= 0);
  CHECK(find_ev(A, se, "transcript", "alice") > se);
  CHECK(!A->closed);
  teardown();
}

/* ---------------------------------------------------------------- limits */

static int p_settled_2_8(void) {
  for (int i = 2; i < 8; i++)
    if (!cl[i].closed) return 0;
  return 1;
}
static int p_fg_ready(void) { return (cl[0].welcomed && cl[1].welcomed) || cl[0].closed || cl[1].closed; }
static int p_violators_closed(void) {
  for (int i = 8; i < 12; i++)
    if (!cl[i].closed) return 0;
  return cl[0].n_pongs >= 1 && cl[0].n_errors >= 2;
}
static int p_cast(void) {
  return find_ev(&cl[0], 0, "cast", NULL) >= 0 && find_ev(&cl[0], 0, "chat", NULL) >= 0 &&
         cl[0].personas_active == 2 && cl[1].personas_active == 2;
}
static int p_many(void) {
  for (int i = 12; i < MAX_CLIENTS; i++)
    if (!cl[i].open && !cl[i].closed) return 0;
  int full = 0;
  for (int i = 12; i < MAX_CLIENTS; i++) full += cl[i].closed && strstr(cl[i].reason, "full") != NULL;
  return full >= 2 + (MAX_CLIENTS - 12) - KMK_ROOM_MAX_CONNS;
}

static void test_limits(void) {
  if (setup(NULL, NULL) < 0) return;
  client *F = &cl[0], *G = &cl[1];
  connect_to(F, "self", NULL);
  connect_to(G, "self", NULL);
  connect_to(&cl[2], "http://evil.example", NULL);
  connect_to(&cl[3], NULL, NULL);                                 /* no Origin at all */
  connect_to(&cl[4], "http://localhost:1", NULL);                  /* another port */
  connect_to(&cl[5], "self", "/notws");
  connect_to(&cl[6], "null", NULL);
  connect_to(&cl[7], "https://127.0.0.1", NULL);
  CHECK(run_until(p_settled_2_8, 15000));
  for (int i = 2; i < 8; i++) {
    CHECK(!cl[i].open);
    CHECK_EQ_INT(cl[i].status, i == 5 ? 404 : 403);
  }
  hello(F, "Fay");
  hello(G, "fay"); /* names are unique regardless of case */
  CHECK(run_until(p_fg_ready, 10000));
  CHECK_STR(F->you, "Fay");
  CHECK_STR(G->you, "fay 2");

  /* violators: each is closed with 1008, F and G carry on */
  for (int i = 8; i < 12; i++) connect_to(&cl[i], "self", NULL);
  run_for(500);
  for (int i = 8; i < 12; i++) CHECK(cl[i].open);
  static unsigned char big[20000], frame[3200];
  hello(&cl[8], "big");
  kmk_ws_send(cl[8].c, big, sizeof big, 1);                /* one 20 kB frame */
  hello(&cl[9], "fast");
  /* 1.1 s of audio at once: past the 1 s burst allowance with its last frame (nothing more follows
     it, so the close handshake is never racing a flood still being written) */
  for (int i = 0; i < 11; i++) kmk_ws_send(cl[9].c, frame, sizeof frame, 1);
  kmk_ws_send(cl[10].c, frame, sizeof frame, 1);          /* audio before hello */
  for (int i = 0; i < 40; i++) send_text(&cl[11], "{\"type\":\"ping\",\"id\":1}"); /* burst 30 */
  send_text(F, "{");                                      /* bad JSON: an error, not a close */
  send_text(F, "{\"type\":\"chat\"}");                    /* no text: an error */
  send_text(F, "{\"type\":\"ping\",\"id\":5}");
  CHECK(run_until(p_violators_closed, 15000));
  CHECK(strstr(cl[8].reason, "1008") && strstr(cl[8].reason, "too large"));
  CHECK(strstr(cl[9].reason, "1008") && strstr(cl[9].reason, "real time"));
  CHECK(strstr(cl[10].reason, "1008") && strstr(cl[10].reason, "hello"));
  CHECK(strstr(cl[11].reason, "1008") && strstr(cl[11].reason, "per second"));
  for (int i = 8; i < 12; i++) printf("closed as expected: %s\n", cl[i].reason);
  CHECK(!F->closed && !G->closed);
  CHECK_EQ_INT(F->n_errors, 2);

  /* chat and the cast */
  send_text(F, "{\"type\":\"personas\",\"active\":[\"nobody\"]}");
  send_text(F, "{\"type\":\"personas\",\"active\":[\"shopkeeper\",\"kameko\"]}");
  send_text(G, "{\"type\":\"chat\",\"text\":\"hello everyone\"}");
  CHECK(run_until(p_cast, 15000));
  CHECK(strstr(F->last_error, "nobody") != NULL);
  int ch = find_ev(F, 0, "chat", NULL);
  if (ch >= 0) {
    CHECK_STR(pstr(F->events[ch], "speaker"), "fay 2");
    CHECK_STR(pstr(F->events[ch], "text"), "hello everyone");
  }

  /* the connection cap: F, G and 20 more = 22: six of them are turned away */
  run_for(300); /* the violators' sockets are gone on the server too */
  for (int i = 12; i < MAX_CLIENTS; i++) connect_to(&cl[i], "self", NULL);
  CHECK(run_until(p_many, 15000));
  int full = 0;
  for (int i = 12; i < MAX_CLIENTS; i++) full += cl[i].closed && strstr(cl[i].reason, "full") != NULL;
  CHECK_EQ_INT(full, 2 + (MAX_CLIENTS - 12) - KMK_ROOM_MAX_CONNS);
  if (full != 2 + (MAX_CLIENTS - 12) - KMK_ROOM_MAX_CONNS)
    for (int i = 12; i < MAX_CLIENTS; i++)
      fprintf(stderr, "client %d: open %d closed %d status %d reason %s\n", i, cl[i].open, cl[i].closed,
              cl[i].status, cl[i].reason);
  CHECK(!F->closed && !G->closed);
  int pongs = F->n_pongs;
  send_text(F, "{\"type\":\"ping\",\"id\":6}");
  run_for(200);
  CHECK_EQ_INT(F->n_pongs, pongs + 1);
  teardown();
}

/* ---------------------------------------------------------------- token */

static int p_token(void) {
  return (cl[0].closed || cl[0].open) && (cl[1].closed || cl[1].open) && (cl[2].welcomed || cl[2].closed);
}

/* kmk_room_new with these settings (KEY, value pairs, NULL-terminated) must refuse, naming
   `want` in its error, and leave nothing on its loop. */
static void room_refused(const char *const *settings, const char *want) {
  kmk_config c;
  char err[512] = "";
  kmk_config_load(&c, NULL, 0, err, sizeof err);
  for (const char *const *kv = settings; kv[0]; kv += 2)
    CHECK_EQ_INT(kmk_config_set(&c, kv[0], kv[1], err, sizeof err), 0);
  uv_loop_t l;
  uv_loop_init(&l);
  kmk_eventlog *lg = kmk_eventlog_open(NULL, err, sizeof err);
  const char *personas[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
  kmk_room_opts o = {.loop = &l, .config = &c, .log = lg, .persona_paths = personas,
                     .n_personas = 1, .scripts_dir = KMK_SOURCE_DIR "/scripts", .no_watch = 1};
  kmk_room *r = kmk_room_new(&o, err, sizeof err);
  CHECK(r == NULL);
  CHECK(strstr(err, want) != NULL);
  if (!strstr(err, want)) fprintf(stderr, "refused for another reason: %s\n", err);
  kmk_room_free(r);
  uv_run(&l, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&l), 0);
  kmk_eventlog_close(lg);
  kmk_config_free(&c);
}

static void test_token(void) {
  if (setup("s3cret-room-token", NULL) < 0) return;
  connect_to(&cl[0], "self", NULL);
  connect_to(&cl[1], "self", "/ws?token=wrong");
  connect_to(&cl[2], "self", "/ws?token=s3cret-room-token");
  run_for(300);
  if (cl[2].open) hello(&cl[2], "KAMEKO"); /* a persona's name is not for people */
  CHECK(run_until(p_token, 10000));
  CHECK(!cl[0].open && cl[0].status == 403);
  CHECK(!cl[1].open && cl[1].status == 403);
  CHECK(cl[2].welcomed);
  CHECK_STR(cl[2].you, "KAMEKO 2");
  /* a second room on the same port: a clear error, nothing left behind on the loop */
  {
    kmk_config c3;
    char e3[512] = "", port[16];
    kmk_config_load(&c3, NULL, 0, e3, sizeof e3);
    snprintf(port, sizeof port, "%d", kmk_room_port(room));
    CHECK_EQ_INT(kmk_config_set(&c3, "KMK_ROOM_PORT", port, e3, sizeof e3), 0);
    const char *pp[] = {KMK_SOURCE_DIR "/personas/kameko.lua"};
    kmk_room_opts o3 = {.loop = &loop, .config = &c3, .log = evlog, .persona_paths = pp,
                        .n_personas = 1, .scripts_dir = KMK_SOURCE_DIR "/scripts", .no_watch = 1};
    kmk_room *r3 = kmk_room_new(&o3, e3, sizeof e3);
    CHECK(r3 == NULL);
    CHECK(strstr(e3, "cannot listen") != NULL);
    kmk_room_free(r3);
    kmk_config_free(&c3);
  }
  /* shutting down with a page connected: it is told (1001), then every handle closes */
  kmk_room_free(room);
  room = NULL;
  run_for(300);
  CHECK(cl[2].closed && strstr(cl[2].reason, "1001") != NULL);
  if (!strstr(cl[2].reason, "1001")) fprintf(stderr, "shutdown close: %d \"%s\"\n", cl[2].closed, cl[2].reason);
  teardown();

  /* a LAN bind without a token does not start */
  const char *lan[] = {"KMK_ROOM_BIND", "0.0.0.0", NULL};
  room_refused(lan, "KMK_ROOM_TOKEN");
}

/* ---------------------------------------------------------------- a page that stops reading */

/* A raw WebSocket client with a 4 KiB receive buffer that sends the handshake and a hello, then
 * never reads: the server's socket to it blocks once the kernel buffers are full. */
typedef struct {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  char req[600];
  size_t req_len;
  int connected, closed;
} stuck_client;

static void stuck_written(uv_write_t *w, int st) {}
static void stuck_connected(uv_connect_t *c, int st) {
  stuck_client *s = c->data;
  CHECK_EQ_INT(st, 0);
  if (st < 0) return;
  s->connected = 1;
  uv_buf_t b = uv_buf_init(s->req, (unsigned)s->req_len);
  uv_write(&s->wr, (uv_stream_t *)&s->tcp, &b, 1, stuck_written);
}

static stuck_client stuck;
static int p_stuck_connected(void) { return stuck.connected; }
static int p_slow_killed(void) {
  kmk_room_stats st;
  kmk_room_get_stats(room, &st);
  return st.slow_kills >= 1 && find_ev(&cl[0], 0, "chat", NULL) >= 0 && cl[0].n_events > 0 &&
         cl[1].peers_n == 2;
}
static int n_chats;
static int p_chats_done(void) {
  int n = 0;
  for (int i = 0; i < cl[0].n_events; i++) n += ptype(cl[0].events[i], "chat");
  return n >= n_chats;
}

static void test_slow_page(void) {
  max_ctl_queued = 40; /* so its audio (50 frames/s into a ring of 32) overflows first */
  int rc = setup(NULL, NULL);
  max_ctl_queued = 0;
  if (rc < 0) return;
  /* the stuck page: handshake + one masked text frame (mask key 0) with its hello */
  memset(&stuck, 0, sizeof stuck);
  int port = kmk_room_port(room);
  int n = snprintf(stuck.req, sizeof stuck.req,
                   "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:%d\r\n\r\n",
                   port, port);
  const char *hello_json = "{\"type\":\"hello\",\"name\":\"stuck\",\"rate\":16000}";
  size_t hl = strlen(hello_json);
  unsigned char *f = (unsigned char *)stuck.req + n;
  f[0] = 0x81;
  f[1] = (unsigned char)(0x80 | hl);
  memset(f + 2, 0, 4);
  memcpy(f + 6, hello_json, hl);
  stuck.req_len = (size_t)n + 6 + hl;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  uv_tcp_init(&loop, &stuck.tcp);
  CHECK_EQ_INT(uv_tcp_open(&stuck.tcp, fd), 0);
  stuck.conn.data = &stuck;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", port, &a);
  uv_tcp_connect(&stuck.conn, &stuck.tcp, (const struct sockaddr *)&a, stuck_connected);
  CHECK(run_until(p_stuck_connected, 5000));
  run_for(500); /* the persona greets "stuck": its voice fills the pipe */
  /* a normal page joins and chats while the stuck one is not reading */
  connect_to(&cl[0], "self", NULL);
  connect_to(&cl[1], "self", NULL);
  run_for(300);
  hello(&cl[0], "reader");
  hello(&cl[1], "other");
  n_chats = 0;
  for (int i = 0; i < 40; i++) { /* questions: the persona's spoken answers fill the pipe */
    char buf[100];
    snprintf(buf, sizeof buf, "{\"type\":\"chat\",\"text\":\"Kameko, what is your name? %d\"}", i);
    send_text(&cl[0], buf);
    n_chats++;
    run_for(250); /* within the JSON rate */
    kmk_room_stats st;
    kmk_room_get_stats(room, &st);
    if (st.slow_kills) break;
  }
  CHECK(run_until(p_slow_killed, 20000));
  CHECK(run_until(p_chats_done, 5000));
  kmk_room_stats st;
  kmk_room_get_stats(room, &st);
  printf("slow page: cut off after %d chat lines; %llu agent frames dropped for it first\n", n_chats,
         (unsigned long long)st.audio_dropped);
  CHECK_EQ_INT(st.slow_kills, 1);
  CHECK(st.audio_dropped > 0); /* its audio went first (drop oldest), control messages after */
  CHECK(!cl[0].closed && !cl[1].closed);
  CHECK_EQ_INT(cl[1].peers_n, 2); /* reader and other: the stuck page left */
  uv_close((uv_handle_t *)&stuck.tcp, NULL);
  teardown();
}

/* ---------------------------------------------------------------- static files */

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  char req[300];
  char resp[65536];
  size_t len;
  int done;
} http_get;

static void hg_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  http_get *g = h->data;
  b->base = g->resp + g->len;
  b->len = sizeof g->resp - 1 - g->len;
}
static void hg_closed(uv_handle_t *h) { ((http_get *)h->data)->done = 1; }
static void hg_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  http_get *g = s->data;
  if (n > 0) {
    g->len += (size_t)n;
    g->resp[g->len] = 0;
    /* a complete response: headers and content-length bytes */
    char *end = strstr(g->resp, "\r\n\r\n");
    char *cl_hdr = strcasestr(g->resp, "content-length:");
    if (end && cl_hdr && g->len >= (size_t)(end + 4 - g->resp) + (size_t)atol(cl_hdr + 15)) {
      uv_close((uv_handle_t *)s, hg_closed);
    } else if (g->len >= sizeof g->resp - 1) {
      uv_close((uv_handle_t *)s, hg_closed);
    }
  } else if (n < 0) {
    uv_close((uv_handle_t *)s, hg_closed);
  }
}
static void hg_written(uv_write_t *w, int st) {}
static void hg_connected(uv_connect_t *c, int st) {
  http_get *g = c->data;
  if (st < 0) {
    uv_close((uv_handle_t *)&g->tcp, hg_closed);
    return;
  }
  uv_buf_t b = uv_buf_init(g->req, (unsigned)strlen(g->req));
  uv_write(&g->wr, (uv_stream_t *)&g->tcp, &b, 1, hg_written);
  uv_read_start((uv_stream_t *)&g->tcp, hg_alloc, hg_read);
}

static http_get *cur_get;
static int p_get_done(void) { return cur_get->done; }

/* Raw GET (the path is sent as is: no client-side normalisation). Returns the status. */
static int get(const char *path, char *ctype, size_t ctlen, char *body, size_t blen) {
  http_get *g = calloc(1, sizeof *g);
  snprintf(g->req, sizeof g->req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
           path, kmk_room_port(room));
  uv_tcp_init(&loop, &g->tcp);
  g->tcp.data = g;
  g->conn.data = g;
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", kmk_room_port(room), &a);
  uv_tcp_connect(&g->conn, &g->tcp, (const struct sockaddr *)&a, hg_connected);
  cur_get = g;
  CHECK(run_until(p_get_done, 10000));
  int status = 0;
  sscanf(g->resp, "HTTP/1.1 %d", &status);
  ctype[0] = body[0] = 0;
  char *ct = strcasestr(g->resp, "content-type:");
  if (ct) sscanf(ct + 13, " %[^\r]", ctype);
  char *end = strstr(g->resp, "\r\n\r\n");
  if (end) snprintf(body, blen, "%s", end + 4);
  (void)ctlen;
  free(g);
  return status;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void test_http(void) {
  char web[300], p[400];
  snprintf(web, sizeof web, "/tmp/kmk_room_web_XXXXXX");
  CHECK(mkdtemp(web) != NULL);
  snprintf(p, sizeof p, "%s/site", web);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/site/sub", web);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/secret.txt", web);
  write_text(p, "SECRET");
  snprintf(p, sizeof p, "%s/site/index.html", web);
  write_text(p, "<h1>room</h1>");
  snprintf(p, sizeof p, "%s/site/app.js", web);
  write_text(p, "console.log(1)");
  snprintf(p, sizeof p, "%s/site/sub/style.css", web);
  write_text(p, "body{}");
  snprintf(p, sizeof p, "%s/site/.hidden.js", web);
  write_text(p, "SECRET");
  snprintf(p, sizeof p, "%s/site/tool.sh", web);
  write_text(p, "SECRET");
  char site[400];
  snprintf(site, sizeof site, "%s/site", web);
  if (setup(NULL, site) < 0) return;
  char ct[200], body[4096];
  CHECK_EQ_INT(get("/", ct, sizeof ct, body, sizeof body), 200);
  CHECK_STR(ct, "text/html; charset=utf-8");
  CHECK_STR(body, "<h1>room</h1>");
  CHECK_EQ_INT(get("/app.js", ct, sizeof ct, body, sizeof body), 200);
  CHECK_STR(ct, "text/javascript; charset=utf-8");
  CHECK_EQ_INT(get("/sub/style.css", ct, sizeof ct, body, sizeof body), 200);
  CHECK_STR(ct, "text/css; charset=utf-8");
  const char *bad[] = {"/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt", "/.hidden.js",
                       "/tool.sh", "/missing.html", "/sub", "//etc/passwd", "/sub/%2e%2e%2f%2e%2e%2fsecret.txt"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int st = get(bad[i], ct, sizeof ct, body, sizeof body);
    if (st != 404) fprintf(stderr, "%s -> %d\n", bad[i], st);
    CHECK(st == 404 || st == 403 || st == 400);
    CHECK(strstr(body, "SECRET") == NULL);
  }
  teardown();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", web);
  CHECK_EQ_INT(system(cmd), 0);
}

/* ---------------------------------------------------------------- https / wss */

/* A self-signed P-256 certificate for 127.0.0.1 (CN and subjectAltName), valid for an hour. */
static int make_cert(const char *cert_path, const char *key_path) {
  EVP_PKEY *pk = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  int ok = pk && x;
  if (ok) {
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const struct {
      int nid;
      const char *value;
    } exts[] = {{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                {NID_basic_constraints, "critical,CA:TRUE"}};
    for (size_t i = 0; ok && i < sizeof exts / sizeof exts[0]; i++) {
      X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, exts[i].nid, exts[i].value);
      ok = e && X509_add_ext(x, e, -1);
      X509_EXTENSION_free(e);
    }
    ok = ok && X509_sign(x, pk, EVP_sha256()) > 0;
  }
  FILE *fc = ok ? fopen(cert_path, "w") : NULL, *fk = ok ? fopen(key_path, "w") : NULL;
  ok = ok && fc && fk && PEM_write_X509(fc, x) && PEM_write_PrivateKey(fk, pk, NULL, NULL, 0, NULL, NULL);
  if (fc) fclose(fc);
  if (fk) fclose(fk);
  X509_free(x);
  EVP_PKEY_free(pk);
  return ok ? 0 : -1;
}

typedef struct {
  int done, err;
  long status;
  char body[256];
} https_res;
static https_res g_https;
static void https_done(void *ud, kmk_http_req *r, int err, const kmk_http_resp *resp) {
  https_res *x = ud;
  x->done = 1;
  x->err = err;
  x->status = resp ? resp->status : 0;
  if (resp && resp->body) snprintf(x->body, sizeof x->body, "%.*s", (int)resp->body_len, resp->body);
}
static int p_https_done(void) { return g_https.done; }
static int p_tls_joined(void) { return (cl[0].welcomed || cl[0].closed) && cl[1].closed; }
static int g_http_closed;
static void http_closed(void *ud) { *(int *)ud = 1; }
static int p_http_closed(void) { return g_http_closed; }

static void test_tls(void) {
  char dir[] = "/tmp/kmk_room_tls_XXXXXX", cert[200], key[200], missing[200];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(missing, sizeof missing, "%s/none.pem", dir);
  CHECK_EQ_INT(make_cert(cert, key), 0);
  const char *half[] = {"KMK_ROOM_TLS_CERT", cert, NULL};
  const char *unreadable[] = {"KMK_ROOM_TLS_CERT", missing, "KMK_ROOM_TLS_KEY", key, NULL};
  const char *no_key[] = {"KMK_ROOM_TLS_CERT", cert, "KMK_ROOM_TLS_KEY", cert, "KMK_ROOM_PORT", "0", NULL};
  room_refused(half, "KMK_ROOM_TLS_KEY");
  room_refused(unreadable, "cannot read");
  room_refused(no_key, "cannot listen"); /* a certificate is no private key */
  tls_cert = cert;
  tls_key = key;
  if (setup(NULL, NULL) == 0) {
    CHECK(strncmp(kmk_room_url(room), "https://127.0.0.1:", 18) == 0);
    /* the page over https, trusting only our certificate */
    kmk_http *h = kmk_http_new(&loop);
    char url[200];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", kmk_room_port(room));
    memset(&g_https, 0, sizeof g_https);
    kmk_http_opts ho = {.url = url, .ca_file = cert, .on_done = https_done, .ud = &g_https};
    CHECK_EQ_INT(kmk_http_request(h, &ho, NULL), 0);
    CHECK(run_until(p_https_done, 10000));
    CHECK_EQ_INT((int)g_https.status, 200);
    if (g_https.status != 200) fprintf(stderr, "https: err %d status %ld\n", g_https.err, g_https.status);
    CHECK(strstr(g_https.body, "<!doctype html>") != NULL || strstr(g_https.body, "<!DOCTYPE html>") != NULL);
    g_http_closed = 0;
    kmk_http_close(h, http_closed, &g_http_closed);
    CHECK(run_until(p_http_closed, 5000));
    /* a page joins over wss; a page claiming an http:// origin is refused */
    connect_to(&cl[0], "self", NULL);
    char plain[100];
    snprintf(plain, sizeof plain, "http://127.0.0.1:%d", kmk_room_port(room));
    connect_to(&cl[1], plain, NULL);
    run_for(300);
    if (cl[0].open) hello(&cl[0], "Tess");
    CHECK(run_until(p_tls_joined, 10000));
    CHECK(cl[0].welcomed);
    CHECK(!cl[1].open && cl[1].status == 403);
    /* plain http on the https port gets no page */
    char ct[200], body[4096];
    CHECK(get("/", ct, sizeof ct, body, sizeof body) != 200);
    teardown();
  }
  tls_cert = tls_key = NULL;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK_EQ_INT(system(cmd), 0);
}

int main(void) {
  kmk_log_set_level(getenv("ROOM_TEST_DEBUG") ? KMK_LOG_DEBUG : KMK_LOG_WARN);
  const char *only = getenv("ROOM_TEST");
  if (!only || strstr(only, "http")) RUN(test_http);
  if (!only || strstr(only, "tls")) RUN(test_tls);
  if (!only || strstr(only, "token")) RUN(test_token);
  if (!only || strstr(only, "limits")) RUN(test_limits);
  if (!only || strstr(only, "slow")) RUN(test_slow_page);
  if (!only || strstr(only, "conversation")) RUN(test_conversation);
  if (!only || strstr(only, "stall")) RUN(test_stall);
  return check_done();
}
