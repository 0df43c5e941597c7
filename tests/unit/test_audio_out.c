/* test_audio_out.c - output chain: frame counts (ceil + 5 silence), silence frame bytes, decoded
 * content, clear() for barge-in, drop-oldest bound, carried PCM; push never encodes (pop encodes
 * one frame each), and the packets are what one continuous encoder makes of the carried PCM. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/opus.h"
#include "kameko/out.h"

#define PI 3.14159265358979323846

static int16_t *tone(int rate, size_t n, double hz) {
  int16_t *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = (int16_t)(8000 * sin(2 * PI * hz * (double)i / rate));
  return x;
}

static void test_one_second_22050(void) {
  char err[128];
  kmk_audio_out *o = kmk_audio_out_new(64000, 0, err, sizeof err);
  CHECK(o != NULL);
  int16_t *x = tone(22050, 22050, 300);
  /* pushed in uneven chunks, as a TTS engine would */
  for (size_t p = 0, c = 1000; p < 22050; p += c, c = c * 7 % 3001 + 17)
    CHECK_EQ_INT(kmk_audio_out_push(o, x + p, p + c <= 22050 ? c : 22050 - p, 22050), 0);
  CHECK(kmk_audio_out_queued(o) >= 45); /* most frames are ready before finish */
  CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 50 + 5); /* 48000 samples = exactly 50 frames */
  kmk_opus_dec *d = kmk_opus_dec_new(err, sizeof err);
  int16_t pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  const kmk_out_frame *f;
  int audio = 0, silence = 0;
  uint64_t seq = 0;
  double energy = 0;
  while ((f = kmk_audio_out_pop(o)) != NULL) {
    CHECK_EQ_INT(f->seq, seq++);
    if (f->silence) {
      silence++;
      CHECK_EQ_INT(f->len, 3);
      CHECK(f->data[0] == 0xF8 && f->data[1] == 0xFF && f->data[2] == 0xFE);
      continue;
    }
    CHECK_EQ_INT(silence, 0); /* silence frames come last */
    audio++;
    CHECK(f->len > 0 && f->len <= KMK_OPUS_MAX_PACKET);
    CHECK_EQ_INT(kmk_opus_dec_decode(d, f->data, (size_t)f->len, pcm, KMK_OPUS_DEC_MAX_SAMPLES), 320);
    if (audio > 5 && audio < 45)
      for (int i = 0; i < 320; i++) energy += (double)pcm[i] * pcm[i];
    if (audio == 25) { /* the carried 48 kHz stereo PCM is the tone, both channels equal */
      double e = 0;
      int lr = 1;
      for (int i = 0; i < 960; i++) {
        e += (double)f->pcm[2 * i] * f->pcm[2 * i];
        lr &= f->pcm[2 * i] == f->pcm[2 * i + 1];
      }
      CHECK(lr);
      CHECK_NEAR(sqrt(e / 960), 8000 / sqrt(2.0), 300);
    }
  }
  CHECK_EQ_INT(audio, 50);
  CHECK_EQ_INT(silence, 5);
  CHECK_NEAR(sqrt(energy / (39 * 320)), 8000 / sqrt(2.0), 1500); /* decoded level matches */
  kmk_opus_dec_free(d);
  free(x);
  kmk_audio_out_free(o);
}

static void test_partial_frame_padded(void) {
  char err[128];
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  int16_t *x = tone(16000, 1000, 200); /* 62.5 ms -> 3000 samples at 48k -> 4 frames (ceil) */
  CHECK_EQ_INT(kmk_audio_out_push(o, x, 1000, 16000), 0);
  CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 4 + 5);
  /* the next reply at another rate starts clean */
  CHECK_EQ_INT(kmk_audio_out_push(o, x, 1000, 8000), 0);
  CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 9 + 7 + 5); /* 125 ms -> 6000 -> 7 frames */
  free(x);
  kmk_audio_out_free(o);
}

static void test_clear_barge_in(void) {
  char err[128];
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  int16_t *x = tone(22050, 22050 * 3, 250);
  CHECK_EQ_INT(kmk_audio_out_push(o, x, 22050 * 3, 22050), 0);
  CHECK(kmk_audio_out_queued(o) > 100);
  CHECK(kmk_audio_out_pop(o) != NULL);
  kmk_audio_out_clear(o);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 0);
  CHECK(kmk_audio_out_pop(o) == NULL);
  /* nothing half-cut survives the clear: finish now gives only the 5 silence frames */
  CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 5);
  free(x);
  kmk_audio_out_free(o);
}

static void test_bounded_drop_oldest(void) {
  char err[128];
  kmk_audio_out *o = kmk_audio_out_new(0, 20, err, sizeof err);
  int16_t *x = tone(48000, 48000, 250); /* 50 frames into a 20-frame queue */
  CHECK_EQ_INT(kmk_audio_out_push(o, x, 48000, 48000), 0);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 20);
  CHECK_EQ_INT(kmk_audio_out_space(o), 0);
  CHECK_EQ_INT(kmk_audio_out_dropped(o), 30);
  const kmk_out_frame *f = kmk_audio_out_pop(o);
  CHECK(f != NULL);
  if (f) CHECK_EQ_INT(f->seq, 30); /* the oldest were dropped */
  CHECK_EQ_INT(kmk_audio_out_push(o, x, 10, 4000), KMK_AUDIO_EINVAL);
  while (kmk_audio_out_pop(o)) {
  }
  CHECK_EQ_INT(kmk_audio_out_encoded(o), 20); /* the dropped frames were never encoded */
  free(x);
  kmk_audio_out_free(o);
}

/* The property the loop thread relies on: pushing a long TTS chunk (10 s) only resamples and
 * queues; every Opus encode happens in pop, exactly one per audio frame. */
static void test_push_does_not_encode(void) {
  char err[128];
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  size_t n = 24000 * 10;
  int16_t *x = tone(24000, n, 180);
  CHECK_EQ_INT(kmk_audio_out_push(o, x, n, 24000), 0);
  CHECK_EQ_INT(kmk_audio_out_encoded(o), 0);
  CHECK(kmk_audio_out_queued(o) >= 495);
  CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
  CHECK_EQ_INT(kmk_audio_out_encoded(o), 0);
  CHECK_EQ_INT(kmk_audio_out_queued(o), 500 + 5);
  const kmk_out_frame *f;
  uint64_t audio = 0;
  while ((f = kmk_audio_out_pop(o)) != NULL) {
    if (!f->silence) audio++;
    CHECK_EQ_INT(kmk_audio_out_encoded(o), audio); /* one encode per audio pop, none for silence */
  }
  CHECK_EQ_INT(audio, 500);
  CHECK_EQ_INT(kmk_audio_out_encoded(o), 500);
  free(x);
  kmk_audio_out_free(o);
}

/* Packets popped across two replies (no reset between them) are bit-identical to one reference
 * encoder fed the carried PCM in order: one continuous encoder per chain, and the carried PCM is
 * exactly what was encoded. After clear() the chain matches a freshly reset encoder. */
static void test_encoder_continuous(void) {
  char err[128];
  kmk_audio_out *o = kmk_audio_out_new(48000, 0, err, sizeof err);
  kmk_opus_enc *ref = kmk_opus_enc_new(48000, err, sizeof err);
  CHECK(o != NULL && ref != NULL);
  int16_t *x = tone(16000, 16000, 220);
  uint8_t pkt[KMK_OPUS_MAX_PACKET];
  int compared = 0, equal = 0;
  for (int round = 0; round < 3; round++) {
    if (round == 2) { /* barge-in mid-reply: both encoders start over */
      CHECK_EQ_INT(kmk_audio_out_push(o, x, 8000, 16000), 0);
      for (int i = 0; i < 3; i++) CHECK(kmk_audio_out_pop(o) != NULL);
      kmk_audio_out_clear(o);
      kmk_opus_enc_reset(ref);
    }
    /* interleave pushes and pops, as the pacer does while TTS audio arrives */
    for (size_t p = 0; p < 16000; p += 1600) {
      CHECK_EQ_INT(kmk_audio_out_push(o, x + p, 1600, 16000), 0);
      const kmk_out_frame *f = kmk_audio_out_pop(o);
      if (f && !f->silence) {
        int n = kmk_opus_enc_encode(ref, f->pcm, pkt, sizeof pkt);
        compared++;
        equal += n == f->len && memcmp(pkt, f->data, (size_t)n) == 0;
      }
    }
    CHECK_EQ_INT(kmk_audio_out_finish(o), 0);
    const kmk_out_frame *f;
    while ((f = kmk_audio_out_pop(o)) != NULL) {
      if (f->silence) continue;
      int n = kmk_opus_enc_encode(ref, f->pcm, pkt, sizeof pkt);
      compared++;
      equal += n == f->len && memcmp(pkt, f->data, (size_t)n) == 0;
    }
  }
  CHECK_EQ_INT(compared, 150);
  CHECK_EQ_INT(equal, compared);
  kmk_opus_enc_free(ref);
  free(x);
  kmk_audio_out_free(o);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  RUN(test_one_second_22050);
  RUN(test_partial_frame_padded);
  RUN(test_clear_barge_in);
  RUN(test_bounded_drop_oldest);
  RUN(test_push_does_not_encode);
  RUN(test_encoder_continuous);
  return check_done();
}
