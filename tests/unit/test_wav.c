/* test_wav.c - WAV reader/writer: every supported encoding, truncation keeps complete frames,
 * corrupt headers give the right error, and the real pocketsphinx recordings load. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "kameko/audio.h"
#include "kameko/log.h"
#include "kameko/wav.h"

#define PS_DATA "/usr/share/pocketsphinx/test/data"

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }

/* Builds a WAV in buf: fmt (16 or 40 bytes for extensible), then data of `data_len` bytes copied
 * from `data`. Returns the total length. declared_data may differ from data_len (truncation). */
static size_t build(uint8_t *buf, unsigned tag, int ch, uint32_t rate, int bits, int extensible,
                    const uint8_t *data, size_t data_len, uint32_t declared_data) {
  size_t fmt_len = extensible ? 40 : 16;
  memcpy(buf, "RIFF", 4);
  put32(buf + 4, (uint32_t)(4 + 8 + fmt_len + 8 + data_len));
  memcpy(buf + 8, "WAVE", 4);
  /* an unrelated chunk with odd length first, to exercise padding */
  memcpy(buf + 12, "LIST", 4);
  put32(buf + 16, 3);
  memcpy(buf + 20, "abc", 3);
  buf[23] = 0;
  uint8_t *f = buf + 24;
  memcpy(f, "fmt ", 4);
  put32(f + 4, (uint32_t)fmt_len);
  put16(f + 8, extensible ? 0xFFFE : tag);
  put16(f + 10, (unsigned)ch);
  put32(f + 12, rate);
  put32(f + 16, rate * (uint32_t)ch * (uint32_t)bits / 8);
  put16(f + 20, (unsigned)(ch * bits / 8));
  put16(f + 22, (unsigned)bits);
  if (extensible) {
    static const uint8_t tail[14] = {0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71};
    put16(f + 24, 22);
    put16(f + 26, (unsigned)bits);
    put32(f + 28, ch == 2 ? 3 : 4);
    put16(f + 32, tag);
    memcpy(f + 34, tail, 14);
  }
  uint8_t *d = f + 8 + fmt_len;
  memcpy(d, "data", 4);
  put32(d + 4, declared_data);
  memcpy(d + 8, data, data_len);
  return (size_t)(d + 8 + data_len - buf);
}

static const float ref[6] = {0.0f, 0.5f, -0.5f, 0.25f, -1.0f, 0.75f};

/* Encodes ref[] (3 stereo frames) in the given format. */
static size_t encode(uint8_t *out, unsigned tag, int bits) {
  size_t k = 0;
  for (int i = 0; i < 6; i++) {
    double v = ref[i];
    if (tag == 3 && bits == 32) {
      float f = (float)v;
      memcpy(out + k, &f, 4);
    } else if (tag == 3) {
      memcpy(out + k, &v, 8);
    } else if (bits == 8) {
      out[k] = (uint8_t)(128 + (int)(v * 128));
    } else if (bits == 16) {
      put16(out + k, (uint16_t)(int16_t)(v * 32768 > 32767 ? 32767 : v * 32768));
    } else if (bits == 24) {
      int32_t s = (int32_t)(v * 8388608.0);
      out[k] = (uint8_t)s;
      out[k + 1] = (uint8_t)(s >> 8);
      out[k + 2] = (uint8_t)(s >> 16);
    } else {
      int64_t s = (int64_t)(v * 2147483648.0);
      if (s > INT32_MAX) s = INT32_MAX;
      put32(out + k, (uint32_t)(int32_t)s);
    }
    k += (size_t)bits / 8;
  }
  return k;
}

static void test_formats(void) {
  struct { unsigned tag; int bits; int ext; double tol; } fm[] = {
      {1, 8, 0, 1.0 / 128}, {1, 16, 0, 1e-4}, {1, 24, 0, 1e-6}, {1, 32, 0, 1e-6},
      {3, 32, 0, 1e-7},     {3, 64, 0, 1e-7}, {1, 16, 1, 1e-4}, {1, 24, 1, 1e-6}, {3, 32, 1, 1e-7}};
  for (size_t t = 0; t < sizeof fm / sizeof fm[0]; t++) {
    uint8_t data[64], buf[256];
    size_t dl = encode(data, fm[t].tag, fm[t].bits);
    size_t n = build(buf, fm[t].tag, 2, 44100, fm[t].bits, fm[t].ext, data, dl, (uint32_t)dl);
    kmk_wav w;
    char err[200];
    int rc = kmk_wav_read_mem(buf, n, &w, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) {
      fprintf(stderr, "format %u/%d: %s\n", fm[t].tag, fm[t].bits, err);
      continue;
    }
    CHECK_EQ_INT(w.channels, 2);
    CHECK_EQ_INT(w.rate, 44100);
    CHECK_EQ_INT(w.frames, 3);
    CHECK_EQ_INT(w.bits, fm[t].bits);
    CHECK_EQ_INT(w.format_tag, (int)fm[t].tag);
    CHECK_EQ_INT(w.truncated, 0);
    for (int i = 0; i < 6; i++) CHECK_NEAR(w.samples[i], ref[i], fm[t].tol + 1.0 / 32768);
    kmk_wav_free(&w);
  }
}

static void test_write_read_file(void) {
  char path[] = "/tmp/kmk_test_wav_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  int16_t pcm[2000];
  for (int i = 0; i < 2000; i++) pcm[i] = (int16_t)((i * 37) % 65536 - 32768);
  CHECK_EQ_INT(kmk_wav_write_s16(path, pcm, 1000, 22050, 2), 0);
  kmk_wav w;
  char err[256];
  CHECK_EQ_INT(kmk_wav_read(path, &w, err, sizeof err), 0);
  CHECK_EQ_INT(w.frames, 1000);
  CHECK_EQ_INT(w.channels, 2);
  CHECK_EQ_INT(w.rate, 22050);
  int exact = 1;
  for (int i = 0; i < 2000; i++)
    if ((int)lrintf(w.samples[i] * 32768.0f) != pcm[i]) exact = 0;
  CHECK(exact);
  kmk_wav_free(&w);
  unlink(path);
  CHECK_EQ_INT(kmk_wav_write_s16(path, pcm, 10, 16000, 0), KMK_AUDIO_EINVAL);
}

static void test_truncated_keeps_frames(void) {
  uint8_t data[64], buf[256];
  size_t dl = encode(data, 1, 16); /* 12 bytes, 3 frames */
  /* header claims 1000 bytes, only 10 present: 2 complete frames + 2 stray bytes */
  size_t n = build(buf, 1, 2, 16000, 16, 0, data, 10, 1000);
  kmk_wav w;
  char err[200];
  CHECK_EQ_INT(kmk_wav_read_mem(buf, n, &w, err, sizeof err), 0);
  CHECK_EQ_INT(w.frames, 2);
  CHECK_EQ_INT(w.truncated, 1);
  CHECK_NEAR(w.samples[3], ref[3], 1e-4);
  kmk_wav_free(&w);
  (void)dl;
}

static int read_err(const uint8_t *buf, size_t n, char *err, size_t errlen) {
  kmk_wav w;
  int rc = kmk_wav_read_mem(buf, n, &w, err, errlen);
  if (rc == 0) kmk_wav_free(&w);
  return rc;
}

static void test_errors(void) {
  uint8_t data[64], buf[256];
  char err[200];
  size_t dl = encode(data, 1, 16);
  size_t n = build(buf, 1, 2, 16000, 16, 0, data, dl, (uint32_t)dl);

  CHECK_EQ_INT(kmk_wav_read("/nonexistent/x.wav", &(kmk_wav){0}, err, sizeof err), KMK_AUDIO_EIO);
  CHECK(strstr(err, "cannot open") != NULL);

  uint8_t bad[256];
  memcpy(bad, buf, n);
  memcpy(bad + 8, "AVI ", 4);
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EFORMAT);
  CHECK_STR(err, "not a RIFF/WAVE file");
  CHECK_EQ_INT(read_err((const uint8_t *)"RIFF", 4, err, sizeof err), KMK_AUDIO_EFORMAT);

  memcpy(bad, buf, n);
  memcpy(bad + 24, "junk", 4); /* fmt chunk renamed */
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EFORMAT);
  CHECK_STR(err, "missing fmt chunk");

  memcpy(bad, buf, n);
  put16(bad + 32, 0x0055);
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EUNSUPPORTED);
  CHECK_STR(err, "WAV codec 0x0055 (MP3) is not supported");

  memcpy(bad, buf, n);
  put16(bad + 34, 0);
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EFORMAT);
  CHECK_STR(err, "WAV has zero channels");

  memcpy(bad, buf, n);
  put16(bad + 34, 9);
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EUNSUPPORTED);

  memcpy(bad, buf, n);
  put32(bad + 36, 4000000);
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EUNSUPPORTED);
  CHECK(strstr(err, "4000000 Hz") != NULL);

  memcpy(bad, buf, n);
  put16(bad + 46, 12); /* 12-bit PCM */
  CHECK_EQ_INT(read_err(bad, n, err, sizeof err), KMK_AUDIO_EUNSUPPORTED);

  /* fmt present, data chunk missing */
  CHECK_EQ_INT(read_err(buf, 48, err, sizeof err), KMK_AUDIO_EFORMAT);
  CHECK_STR(err, "missing data chunk");
}

static void test_real_recordings(void) {
  const char *files[] = {PS_DATA "/cards/001.wav", PS_DATA "/cards/005.wav",
                         PS_DATA "/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"};
  for (size_t i = 0; i < 3; i++) {
    if (access(files[i], R_OK) != 0) {
      fprintf(stderr, "skip %s (missing)\n", files[i]);
      continue;
    }
    kmk_wav w;
    char err[256];
    CHECK_EQ_INT(kmk_wav_read(files[i], &w, err, sizeof err), 0);
    CHECK_EQ_INT(w.rate, 16000);
    CHECK_EQ_INT(w.channels, 1);
    CHECK(w.frames > 16000); /* > 1 s of audio */
    double peak = 0;
    for (size_t k = 0; k < w.frames; k++)
      if (fabs(w.samples[k]) > peak) peak = fabs(w.samples[k]);
    CHECK(peak > 0.05 && peak <= 1.0);
    kmk_wav_free(&w);
  }
}

static void test_odd_layouts(void) {
  /* data chunk before fmt chunk: legal, must parse */
  uint8_t buf[128];
  size_t k = 0;
  memcpy(buf, "RIFF", 4);
  memcpy(buf + 8, "WAVEdata", 8);
  put32(buf + 16, 4);
  put16(buf + 20, 0x4000); /* 0.5 */
  put16(buf + 22, 0xC000); /* -0.5 */
  memcpy(buf + 24, "fmt ", 4);
  put32(buf + 28, 16);
  put16(buf + 32, 1);
  put16(buf + 34, 1);
  put32(buf + 36, 8000);
  put32(buf + 40, 16000);
  put16(buf + 44, 2);
  put16(buf + 46, 16);
  k = 48;
  put32(buf + 4, (uint32_t)(k - 8));
  kmk_wav w;
  char err[200];
  CHECK_EQ_INT(kmk_wav_read_mem(buf, k, &w, err, sizeof err), 0);
  CHECK_EQ_INT(w.frames, 2);
  CHECK_NEAR(w.samples[0], 0.5, 1e-6);
  CHECK_NEAR(w.samples[1], -0.5, 1e-6);
  kmk_wav_free(&w);

  /* extensible with a non-PCM sub-format GUID */
  uint8_t data[64], b2[256];
  size_t dl = encode(data, 1, 16);
  size_t n = build(b2, 1, 2, 16000, 16, 1, data, dl, (uint32_t)dl);
  b2[24 + 8 + 26 + 5] ^= 0x55; /* corrupt the GUID tail */
  CHECK_EQ_INT(read_err(b2, n, err, sizeof err), KMK_AUDIO_EUNSUPPORTED);
  CHECK(strstr(err, "sub-format") != NULL);

  /* NaN / inf float samples become silence / clamped, never propagate NaN */
  float fl[4] = {NAN, INFINITY, -INFINITY, 0.25f};
  n = build(b2, 3, 1, 16000, 32, 0, (const uint8_t *)fl, sizeof fl, sizeof fl);
  CHECK_EQ_INT(kmk_wav_read_mem(b2, n, &w, err, sizeof err), 0);
  CHECK_EQ_INT(w.frames, 4);
  CHECK(w.samples[0] == 0.0f);
  CHECK(isfinite(w.samples[1]) && w.samples[1] > 0);
  CHECK(isfinite(w.samples[2]) && w.samples[2] < 0);
  kmk_wav_free(&w);
}

int main(void) {
  kmk_log_set_level(KMK_LOG_ERROR);
  RUN(test_formats);
  RUN(test_write_read_file);
  RUN(test_truncated_keeps_frames);
  RUN(test_errors);
  RUN(test_odd_layouts);
  RUN(test_real_recordings);
  return check_done();
}
