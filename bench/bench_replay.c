/* bench_replay - per-stage latencies of the offline pipeline, measured through the replay
 * transport on the demo conversation (flite voices; pocketsphinx; Lua persona; espeak/flite reply).
 *
 * Runs the demo N times (--fast; the timeline holds while jobs run, so stage times are real
 * processing times) and prints p50/p95 of: STT (utterance end -> transcript), brain (Lua decision),
 * TTS first audio (synthesis start -> first PCM chunk), speech end -> first agent audio frame.
 * Usage: bench_replay [runs]   (default 5)
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kameko/config.h"
#include "kameko/demo.h"
#include "kameko/log.h"

#define MAXS 512
typedef struct {
  const char *name;
  double v[MAXS];
  int n;
} series;

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static double pct(series *s, double p) {
  if (!s->n) return 0;
  qsort(s->v, (size_t)s->n, sizeof(double), cmp);
  int i = (int)(p * (s->n - 1) + 0.5);
  return s->v[i];
}
static void add_latency(series *s, const cJSON *ev, const char *key) {
  const cJSON *lat = cJSON_GetObjectItem(ev, "latency_ms");
  const cJSON *x = cJSON_GetObjectItem(lat, key);
  if (cJSON_IsNumber(x) && s->n < MAXS) s->v[s->n++] = x->valuedouble;
}

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 5;
  if (runs < 1) runs = 1;
  kmk_log_set_level(KMK_LOG_WARN);
  static series stt = {.name = "stt (queue+decode)"}, dec = {.name = "stt decode only"},
                brain = {.name = "brain (Lua decision)"}, tts = {.name = "tts first audio"},
                e2a = {.name = "speech end -> first audio"};
  char dir[] = "/tmp/kmk_bench_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  kmk_config cfg;
  char err[1024];
  kmk_config_load(&cfg, NULL, 0, err, sizeof err);
  int replies = 0;
  for (int r = 0; r < runs; r++) {
    char out[256];
    snprintf(out, sizeof out, "%s/run%d", dir, r);
    if (kmk_demo_run(out, KMK_SOURCE_DIR "/personas/kameko.lua", KMK_SOURCE_DIR "/scripts", 1, &cfg,
                     err, sizeof err) != 0) {
      fprintf(stderr, "demo run failed: %s\n", err);
      return 1;
    }
    char path[300];
    snprintf(path, sizeof path, "%s/events.jsonl", out);
    FILE *f = fopen(path, "r");
    char line[16384];
    while (f && fgets(line, sizeof line, f)) {
      cJSON *ev = cJSON_Parse(line);
      const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(ev, "type"));
      if (type && !strcmp(type, "transcript")) {
        add_latency(&stt, ev, "stt");
        add_latency(&dec, ev, "stt_decode");
      } else if (type && !strcmp(type, "decision")) {
        add_latency(&brain, ev, "brain");
      } else if (type && !strcmp(type, "audio_out_start")) {
        add_latency(&tts, ev, "tts_first_audio");
        add_latency(&e2a, ev, "speech_end_to_audio");
        replies++;
      }
      cJSON_Delete(ev);
    }
    if (f) fclose(f);
  }
  kmk_config_free(&cfg);
  printf("bench_replay: %d runs of the demo conversation, %d replies\n", runs, replies);
  printf("%-28s %8s %8s %6s\n", "stage", "p50 ms", "p95 ms", "n");
  series *all[] = {&stt, &dec, &brain, &tts, &e2a};
  for (int i = 0; i < 5; i++)
    printf("%-28s %8.1f %8.1f %6d\n", all[i]->name, pct(all[i], 0.5), pct(all[i], 0.95), all[i]->n);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;
  return 0;
}
