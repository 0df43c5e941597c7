/* wav.c - the RIFF/WAVE parser (outside bytes: fuzzed by tests/fuzz/fuzz_wav.c) and writer.
 *
 * Owns: nothing beyond one call; the sample buffer it returns belongs to the caller.
 * Thread: any (no globals).
 */
#include "kameko/wav.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"
#include "kameko/log.h"

#define TAG "wav"
#define WAV_MAX_FILE ((size_t)1 << 31) /* 2 GiB: RIFF sizes are 32-bit anyway */

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *codec_name(unsigned tag) {
  switch (tag) {
    case 0x0002: return "MS ADPCM";
    case 0x0006: return "A-law";
    case 0x0007: return "mu-law";
    case 0x0011: return "IMA ADPCM";
    case 0x0031: return "GSM 6.10";
    case 0x0050: return "MPEG";
    case 0x0055: return "MP3";
    case 0x00FF: return "AAC";
    case 0x0161: return "WMA";
    case 0x1610: return "HE-AAC";
    case 0x674F: return "Ogg Vorbis";
    case 0x6750: return "Ogg Vorbis";
    case 0xF1AC: return "FLAC";
    default: return "unknown";
  }
}

void kmk_wav_free(kmk_wav *w) {
  free(w->samples);
  memset(w, 0, sizeof *w);
}

/* Converts one sample of `bytes` bytes (format tag 1 or 3) at p to float. */
static float sample_at(const uint8_t *p, int tag, int bytes) {
  if (tag == 3) {
    if (bytes == 4) {
      uint32_t u = le32(p);
      float f;
      memcpy(&f, &u, 4);
      if (f != f) return 0.0f; /* NaN -> silence */
      if (f > 1e6f) return 1e6f;  /* inf and absurd values clamped */
      if (f < -1e6f) return -1e6f;
      return f;
    }
    uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
    double d;
    memcpy(&d, &u, 8);
    if (d != d) return 0.0f;
    if (d > 1e6) d = 1e6;
    if (d < -1e6) d = -1e6;
    return (float)d;
  }
  switch (bytes) {
    case 1: return ((int)p[0] - 128) / 128.0f;
    case 2: return (int16_t)le16(p) / 32768.0f;
    case 3: {
      int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24);
      return (float)(v / 2147483648.0);
    }
    default: return (float)((int32_t)le32(p) / 2147483648.0);
  }
}

int kmk_wav_read_mem(const uint8_t *data, size_t len, kmk_wav *out, char *err, size_t errlen) {
  if (!out) return fail(err, errlen, KMK_AUDIO_EINVAL, "no output struct");
  memset(out, 0, sizeof *out);
  if (!data) return fail(err, errlen, KMK_AUDIO_EINVAL, "no input bytes");
  if (len < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WAVE", 4) != 0) {
    if (len >= 4 && memcmp(data, "RF64", 4) == 0)
      return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED, "RF64 (64-bit WAV) is not supported");
    return fail(err, errlen, KMK_AUDIO_EFORMAT, "not a RIFF/WAVE file");
  }
  /* Walk the chunks. The RIFF size field is often wrong; trust the buffer length instead. */
  const uint8_t *fmt = NULL, *pcm = NULL;
  size_t fmt_len = 0, pcm_len = 0;
  int truncated = 0;
  size_t pos = 12;
  while (pos + 8 <= len) {
    const uint8_t *id = data + pos;
    size_t csize = le32(data + pos + 4);
    size_t body = pos + 8;
    size_t avail = len - body;
    if (memcmp(id, "fmt ", 4) == 0 && !fmt) {
      if (csize > avail) csize = avail;
      fmt = data + body;
      fmt_len = csize;
    } else if (memcmp(id, "data", 4) == 0 && !pcm) {
      pcm = data + body;
      if (csize > avail) { /* cut short (or a streaming writer's 0xFFFFFFFF placeholder) */
        truncated = csize != 0xFFFFFFFFu;
        csize = avail;
      }
      pcm_len = csize;
    }
    if (csize > avail) break;
    pos = body + csize + (csize & 1);
    if (fmt && pcm) break;
  }
  if (!fmt) return fail(err, errlen, KMK_AUDIO_EFORMAT, "missing fmt chunk");
  if (fmt_len < 16)
    return fail(err, errlen, KMK_AUDIO_EFORMAT, "fmt chunk too short (%zu bytes)", fmt_len);
  unsigned tag = le16(fmt);
  int channels = le16(fmt + 2);
  uint32_t rate = le32(fmt + 4);
  int bits = le16(fmt + 14);
  if (tag == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: sub-format GUID at offset 24 */
    static const uint8_t guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                          0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    if (fmt_len < 40)
      return fail(err, errlen, KMK_AUDIO_EFORMAT, "extensible fmt chunk too short (%zu bytes)",
                  fmt_len);
    if (memcmp(fmt + 26, guid_tail, sizeof guid_tail) != 0)
      return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED, "WAV extensible sub-format is not PCM/float");
    tag = le16(fmt + 24);
  }
  if (tag != 1 && tag != 3)
    return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED, "WAV codec 0x%04X (%s) is not supported", tag,
                codec_name(tag));
  if (channels == 0) return fail(err, errlen, KMK_AUDIO_EFORMAT, "WAV has zero channels");
  if (channels > 8)
    return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED, "WAV has %d channels (at most 8 supported)",
                channels);
  if (rate < 8000 || rate > 192000)
    return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED,
                "WAV sample rate %u Hz is out of range (8000..192000)", (unsigned)rate);
  if (tag == 1 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
    return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED, "WAV PCM with %d bits per sample is not supported",
                bits);
  if (tag == 3 && bits != 32 && bits != 64)
    return fail(err, errlen, KMK_AUDIO_EUNSUPPORTED,
                "WAV float with %d bits per sample is not supported", bits);
  if (!pcm) return fail(err, errlen, KMK_AUDIO_EFORMAT, "missing data chunk");

  int bytes = bits / 8;
  size_t frame_bytes = (size_t)bytes * (size_t)channels;
  size_t frames = pcm_len / frame_bytes;
  if (pcm_len % frame_bytes) truncated = 1;
  if (truncated)
    KMK_WARN(TAG, "data chunk truncated: keeping %zu complete frames (%.3f s)", frames,
             (double)frames / rate);
  float *s = malloc((frames ? frames : 1) * (size_t)channels * sizeof *s);
  if (!s) return fail(err, errlen, KMK_AUDIO_ENOMEM, "out of memory for %zu frames", frames);
  size_t n = frames * (size_t)channels;
  for (size_t i = 0; i < n; i++) s[i] = sample_at(pcm + i * (size_t)bytes, (int)tag, bytes);
  out->samples = s;
  out->rate = (int)rate;
  out->channels = channels;
  out->frames = frames;
  out->format_tag = (int)tag;
  out->bits = bits;
  out->truncated = truncated;
  if (err && errlen) err[0] = 0;
  return 0;
}

int kmk_wav_read(const char *path, kmk_wav *out, char *err, size_t errlen) {
  if (!out) return fail(err, errlen, KMK_AUDIO_EINVAL, "no output struct");
  memset(out, 0, sizeof *out);
  if (!path) return fail(err, errlen, KMK_AUDIO_EINVAL, "no path");
  FILE *f = fopen(path, "rb");
  if (!f) return fail(err, errlen, KMK_AUDIO_EIO, "cannot open %s: %s", path, strerror(errno));
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      if (ncap > WAV_MAX_FILE) {
        free(buf);
        fclose(f);
        return fail(err, errlen, KMK_AUDIO_ENOMEM, "%s is larger than 2 GiB", path);
      }
      uint8_t *nb = realloc(buf, ncap);
      if (!nb) {
        free(buf);
        fclose(f);
        return fail(err, errlen, KMK_AUDIO_ENOMEM, "out of memory reading %s", path);
      }
      buf = nb;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  int ioerr = ferror(f);
  fclose(f);
  if (ioerr) {
    free(buf);
    return fail(err, errlen, KMK_AUDIO_EIO, "read error on %s", path);
  }
  char why[200];
  int rc = kmk_wav_read_mem(buf, len, out, why, sizeof why);
  free(buf);
  if (rc < 0) return fail(err, errlen, rc, "%s: %s", path, why);
  if (err && errlen) err[0] = 0;
  return 0;
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) {
  put16(p, v & 0xFFFF);
  put16(p + 2, v >> 16);
}

int kmk_wav_write_s16(const char *path, const int16_t *pcm, size_t frames, int rate, int channels) {
  if (!path || (!pcm && frames) || rate <= 0 || channels < 1 || channels > 8)
    return KMK_AUDIO_EINVAL;
  uint64_t data_bytes = (uint64_t)frames * (uint64_t)channels * 2;
  if (data_bytes > 0xFFFFFFFFu - 36) return KMK_AUDIO_EINVAL;
  uint8_t h[44];
  memcpy(h, "RIFF", 4);
  put32(h + 4, (uint32_t)(36 + data_bytes));
  memcpy(h + 8, "WAVEfmt ", 8);
  put32(h + 16, 16);
  put16(h + 20, 1);
  put16(h + 22, (unsigned)channels);
  put32(h + 24, (uint32_t)rate);
  put32(h + 28, (uint32_t)rate * (uint32_t)channels * 2);
  put16(h + 32, (unsigned)channels * 2);
  put16(h + 34, 16);
  memcpy(h + 36, "data", 4);
  put32(h + 40, (uint32_t)data_bytes);
  FILE *f = fopen(path, "wb");
  if (!f) {
    KMK_ERR(TAG, "cannot create %s: %s", path, strerror(errno));
    return KMK_AUDIO_EIO;
  }
  int ok = fwrite(h, 1, sizeof h, f) == sizeof h;
  /* Little-endian samples regardless of host order, in blocks. */
  uint8_t block[4096];
  size_t n = frames * (size_t)channels, i = 0;
  while (ok && i < n) {
    size_t k = 0;
    for (; k + 2 <= sizeof block && i < n; i++, k += 2) put16(block + k, (uint16_t)pcm[i]);
    ok = fwrite(block, 1, k, f) == k;
  }
  if (fclose(f) != 0) ok = 0;
  if (!ok) {
    KMK_ERR(TAG, "write error on %s", path);
    return KMK_AUDIO_EIO;
  }
  return 0;
}
