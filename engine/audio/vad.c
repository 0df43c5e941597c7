/* vad.c - the detector registry and the built-in "energy" detector ("spectral" lives in
 * vad_spectral.c and is registered here too).
 *
 * Owns: the static registry (written at startup only) and each kmk_vad instance.
 * Thread: instances are single-owner; kmk_vad_register only before detectors are created.
 */
#include "kameko/vad.h"

#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/log.h"

#define TAG "vad"
#define MAX_DETECTORS 16

struct kmk_vad {
  const kmk_vad_ops *ops;
  void *state;
};

/* ---- "energy": mean absolute amplitude over the frame --------------------------------------- */

typedef struct {
  float threshold;
} energy_state;

static void *energy_create(const kmk_vad_params *p) {
  energy_state *s = malloc(sizeof *s);
  if (s) s->threshold = p->threshold;
  return s;
}

static int energy_process(void *state, const int16_t *frame, kmk_vad_result *out) {
  const energy_state *s = state;
  int32_t sum = 0; /* 160 * 32768 fits easily */
  for (int i = 0; i < KMK_VAD_FRAME; i++) sum += frame[i] < 0 ? -(int32_t)frame[i] : frame[i];
  float level = (float)sum / KMK_VAD_FRAME;
  out->level = level;
  out->is_speech = level > s->threshold;
  out->score = level / (level + s->threshold);
  return 0;
}

static void energy_reset(void *state) { (void)state; }
static void energy_destroy(void *state) { free(state); }

static const kmk_vad_ops energy_ops = {"energy", energy_create, energy_process, energy_reset,
                                       energy_destroy};

/* ---- registry -------------------------------------------------------------------------------- */

extern const kmk_vad_ops kmk_vad_spectral_ops; /* vad_spectral.c */

static const kmk_vad_ops *registry[MAX_DETECTORS] = {&energy_ops, &kmk_vad_spectral_ops};
static int n_registered = 2;

static const kmk_vad_ops *find(const char *name) {
  for (int i = 0; i < n_registered; i++)
    if (strcmp(registry[i]->name, name) == 0) return registry[i];
  return NULL;
}

int kmk_vad_register(const kmk_vad_ops *ops) {
  if (!ops || !ops->name || !ops->create || !ops->process || !ops->destroy || find(ops->name))
    return KMK_AUDIO_EINVAL;
  if (n_registered == MAX_DETECTORS) return KMK_AUDIO_EFULL;
  registry[n_registered++] = ops;
  return 0;
}

void kmk_vad_params_default(kmk_vad_params *p) {
  p->threshold = 300.0f;
  p->aggressiveness = 1;
}

kmk_vad *kmk_vad_new(const char *name, const kmk_vad_params *params) {
  const kmk_vad_ops *ops = find(name ? name : "energy");
  if (!ops) {
    KMK_ERR(TAG, "unknown VAD \"%s\"", name);
    return NULL;
  }
  kmk_vad_params p;
  kmk_vad_params_default(&p);
  if (params) {
    if (params->threshold > 0) p.threshold = params->threshold;
    p.aggressiveness = params->aggressiveness;
  }
  kmk_vad *v = malloc(sizeof *v);
  if (!v) return NULL;
  v->ops = ops;
  v->state = ops->create(&p);
  if (!v->state) {
    free(v);
    return NULL;
  }
  return v;
}

int kmk_vad_process(kmk_vad *v, const int16_t *frame, kmk_vad_result *out) {
  if (!v || !frame || !out) return KMK_AUDIO_EINVAL;
  return v->ops->process(v->state, frame, out);
}

void kmk_vad_reset(kmk_vad *v) {
  if (v && v->ops->reset) v->ops->reset(v->state);
}

void kmk_vad_free(kmk_vad *v) {
  if (!v) return;
  v->ops->destroy(v->state);
  free(v);
}

const char *kmk_vad_name(const kmk_vad *v) { return v ? v->ops->name : ""; }
