/* Core: .env parsing, config validation and precedence, secret redaction, evq + worker on a loop. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "kameko/config.h"
#include "kameko/eventlog.h"
#include "kameko/evq.h"
#include "kameko/log.h"
#include "kameko/worker.h"

struct kv {
  char keys[8][64], vals[8][256];
  int n;
};
static int collect(void *ud, const char *k, const char *v) {
  struct kv *c = ud;
  snprintf(c->keys[c->n], 64, "%s", k);
  snprintf(c->vals[c->n], 256, "%s", v);
  c->n++;
  return 0;
}

static void test_dotenv(void) {
  struct kv c = {0};
  char err[256] = "";
  const char *text =
      "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\"\nD='single'\n"
      "E=value # trailing comment\r\n";
  CHECK_EQ_INT(kmk_dotenv_parse(text, collect, &c, err, sizeof err), 0);
  CHECK_EQ_INT(c.n, 5);
  CHECK_STR(c.keys[0], "A");
  CHECK_STR(c.vals[0], "1");
  CHECK_STR(c.keys[1], "B");
  CHECK_STR(c.vals[1], "two words");
  CHECK_STR(c.vals[2], "quoted # not a comment");
  CHECK_STR(c.vals[3], "single");
  CHECK_STR(c.vals[4], "value");
  struct kv d = {0};
  CHECK_EQ_INT(kmk_dotenv_parse("A=1\nNOEQUALS\n", collect, &d, err, sizeof err), -1);
  CHECK(strstr(err, "line 2") != NULL);
  CHECK_EQ_INT(kmk_dotenv_parse("X=\"open\n", collect, &d, err, sizeof err), -1);
  CHECK(strstr(err, "quote") != NULL);
  CHECK_EQ_INT(kmk_dotenv_parse("BAD-KEY=1\n", collect, &d, err, sizeof err), -1);
}

static void test_config(void) {
  char path[] = "/tmp/kmk_env_XXXXXX";
  int fd = mkstemp(path);
  const char *text = "GROQ_API_KEY=gsk_secret_value_123\nLLM_BASE_URL=http://127.0.0.1:9/v1\n"
                     "OTHER_TOOL_KEY=ignored\n";
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  unsetenv("GROQ_API_KEY");
  setenv("LLM_MODEL", "env-model", 1);
  kmk_config c;
  char err[512] = "";
  CHECK_EQ_INT(kmk_config_load(&c, path, 1, err, sizeof err), 0);
  CHECK_STR(c.groq_api_key, "gsk_secret_value_123");
  CHECK_STR(c.llm_base_url, "http://127.0.0.1:9/v1");
  CHECK_STR(c.llm_model, "env-model");
  CHECK_STR(c.groq_base_url, "https://api.groq.com/openai/v1");
  CHECK_STR(kmk_config_llm_key(&c), "");
  CHECK_EQ_INT(kmk_config_set(&c, "OPENROUTER_API_KEY", "sk-or-abcdef", err, sizeof err), 0);
  CHECK_STR(kmk_config_llm_key(&c), "sk-or-abcdef");
  /* bad values name the key and value */
  CHECK_EQ_INT(kmk_config_set(&c, "LLM_BASE_URL", "ftp://x", err, sizeof err), -1);
  CHECK(strstr(err, "LLM_BASE_URL") && strstr(err, "ftp://x"));
  CHECK_EQ_INT(kmk_config_set(&c, "KMK_LUA_MEM_MB", "0", err, sizeof err), -1);
  CHECK(strstr(err, "KMK_LUA_MEM_MB"));
  CHECK_EQ_INT(c.room_port, 8765);
  CHECK_EQ_INT(kmk_config_set(&c, "KMK_ROOM_PORT", "70000", err, sizeof err), -1);
  CHECK(strstr(err, "KMK_ROOM_PORT"));
  CHECK_EQ_INT(kmk_config_set(&c, "KMK_ROOM_PORT", "0", err, sizeof err), 0);
  CHECK_EQ_INT(c.room_port, 0);
  CHECK_EQ_INT(kmk_config_set(&c, "DISCORD_GATEWAY_URL", "https://x", err, sizeof err), -1);
  CHECK_EQ_INT(kmk_config_set(&c, "DISCORD_GATEWAY_URL", "ws://127.0.0.1:9/", err, sizeof err), 0);
  CHECK(strcmp(c.discord_gateway_url, "ws://127.0.0.1:9/") == 0);
  CHECK_EQ_INT(kmk_config_set(&c, "KMK_DISCORD_LEAVE_S", "-1", err, sizeof err), -1);
  CHECK_EQ_INT(kmk_config_set(&c, "NO_SUCH", "1", err, sizeof err), -1);
  CHECK(strstr(err, "NO_SUCH"));
  /* a bad secret is rejected without echoing it */
  CHECK_EQ_INT(kmk_config_set(&c, "DISCORD_TOKEN", "abc def", err, sizeof err), -1);
  CHECK(strstr(err, "abc def") == NULL);
  kmk_config_free(&c);
  /* environment wins over .env; a bad env value is reported with its origin */
  setenv("LLM_BASE_URL", "not a url", 1);
  CHECK_EQ_INT(kmk_config_load(&c, path, 1, err, sizeof err), -1);
  CHECK(strstr(err, "environment") && strstr(err, "LLM_BASE_URL"));
  kmk_config_free(&c);
  unsetenv("LLM_BASE_URL");
  unsetenv("LLM_MODEL");
  CHECK_EQ_INT(kmk_config_load(&c, "/nonexistent/.env", 1, err, sizeof err), -1);
  kmk_config_free(&c);
  CHECK_EQ_INT(kmk_config_load(&c, "/nonexistent/.env", 0, err, sizeof err), 0);
  kmk_config_free(&c);
  unlink(path);
}

static void test_redaction(void) {
  /* Capture stderr into a file and check the secret never appears. */
  char path[] = "/tmp/kmk_log_XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(2);
  dup2(fd, 2);
  kmk_log_add_secret("sk-very-secret-key");
  KMK_WARN("test", "request with key sk-very-secret-key failed, sk-very-secret-key again");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char buf[512] = {0};
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  unlink(path);
  CHECK(n > 0);
  CHECK(strstr(buf, "sk-very-secret-key") == NULL);
  CHECK(strstr(buf, "with key *** failed, *** again") != NULL);
}

/* --- evq + worker --- */
struct job {
  kmk_job base;
  int id;
  int chunks_seen;
  int *order;
  int *norder;
  int *done_count;
  int *cancelled_count;
};
static void on_chunk(void *ud, void *msg) {
  struct job *j = ud;
  j->chunks_seen++;
  free(msg);
}
static void job_run(kmk_job *b) {
  struct job *j = (struct job *)b;
  for (int i = 0; i < 3; i++) {
    if (kmk_job_cancelled(b)) return;
    kmk_job_post(b, on_chunk, j, malloc(8));
    usleep(2000);
  }
}
static void job_done(kmk_job *b, int cancelled) {
  struct job *j = (struct job *)b;
  j->order[(*j->norder)++] = j->id;
  (*j->done_count)++;
  if (cancelled) (*j->cancelled_count)++;
  else CHECK_EQ_INT(j->chunks_seen, 3); /* chunks arrive before done */
  free(j);
}
static int stop_when_done;
static void on_idle_check(uv_timer_t *t) {
  int *done = t->data;
  if (*done >= stop_when_done) uv_stop(t->loop);
}

static void test_worker(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_evq *q = kmk_evq_new(&loop, 2); /* tiny: exercises back-pressure */
  kmk_worker *w = kmk_worker_new(q, "test", 8);
  int order[16], norder = 0, done = 0, cancelled = 0;
  struct job *jobs[5];
  for (int i = 0; i < 5; i++) {
    struct job *j = calloc(1, sizeof *j);
    j->base.run = job_run;
    j->base.done = job_done;
    j->id = i;
    j->order = order;
    j->norder = &norder;
    j->done_count = &done;
    j->cancelled_count = &cancelled;
    jobs[i] = j;
    CHECK_EQ_INT(kmk_worker_submit(w, &j->base), 0);
  }
  kmk_job_cancel(&jobs[4]->base); /* cancelled before it runs: done still comes */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = &done;
  stop_when_done = 5;
  uv_timer_start(&t, on_idle_check, 1, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(done, 5);
  CHECK_EQ_INT(cancelled, 1);
  for (int i = 0; i < 5; i++) CHECK_EQ_INT(order[i], i);
  CHECK_EQ_INT(kmk_worker_busy(w), 0);
  kmk_worker_free(w);
  uv_close((uv_handle_t *)&t, NULL);
  kmk_evq_close(q);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0); /* no live handles remain */
}

/* A full worker refuses a job with -EAGAIN and never calls its done. */
static atomic_int gate_started, gate_open;
static int gated_done;
static void gated_run(kmk_job *b) {
  (void)b;
  atomic_store(&gate_started, 1);
  while (!atomic_load(&gate_open)) usleep(1000);
}
static void gated_finish(kmk_job *b, int cancelled) {
  (void)cancelled;
  gated_done++;
  free(b);
}
static void test_worker_full(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  kmk_evq *q = kmk_evq_new(&loop, 8);
  kmk_worker *w = kmk_worker_new(q, "full", 1);
  kmk_job *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), c = {0};
  a->run = b->run = c.run = gated_run;
  a->done = b->done = c.done = gated_finish;
  CHECK_EQ_INT(kmk_worker_submit(w, a), 0);
  while (!atomic_load(&gate_started)) usleep(1000); /* a is running: the queue is empty */
  CHECK_EQ_INT(kmk_worker_submit(w, b), 0);          /* b waits: the queue is full */
  CHECK_EQ_INT(kmk_worker_submit(w, &c), -EAGAIN);
  CHECK_EQ_INT(kmk_worker_busy(w), 2);
  atomic_store(&gate_open, 1);
  kmk_worker_free(w); /* delivers a's and b's done */
  CHECK_EQ_INT(gated_done, 2);
  kmk_evq_close(q);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_eventlog(void) {
  char path[] = "/tmp/kmk_ev_XXXXXX";
  close(mkstemp(path));
  char err[256];
  kmk_eventlog *log = kmk_eventlog_open(path, err, sizeof err);
  CHECK(log != NULL);
  cJSON *ev = kmk_event_new(1.23456, "transcript", "alice");
  cJSON_AddStringToObject(ev, "text", "привет \"world\"\n");
  CHECK_EQ_INT(kmk_eventlog_write(log, ev), 0);
  cJSON_Delete(ev);
  kmk_eventlog_close(log);
  FILE *f = fopen(path, "r");
  char line[512] = {0};
  CHECK(fgets(line, sizeof line, f) != NULL);
  fclose(f);
  unlink(path);
  cJSON *back = cJSON_Parse(line);
  CHECK(back != NULL);
  CHECK_NEAR(cJSON_GetObjectItem(back, "t")->valuedouble, 1.235, 1e-9);
  CHECK_STR(cJSON_GetObjectItem(back, "text")->valuestring, "привет \"world\"\n");
  CHECK(strchr(line, '\n') == line + strlen(line) - 1); /* exactly one line */
  cJSON_Delete(back);
  CHECK(kmk_eventlog_open("/nonexistent/dir/events.jsonl", err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent/dir") != NULL);
}

int main(void) {
  RUN(test_dotenv);
  RUN(test_config);
  RUN(test_redaction);
  RUN(test_worker);
  RUN(test_worker_full);
  RUN(test_eventlog);
  return check_done();
}
