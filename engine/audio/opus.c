/* opus.c - Opus decoder (16 kHz mono, PLC/FEC) and encoder (48 kHz stereo VOIP) wrappers.
 *
 * Owns: one OpusDecoder / OpusEncoder per object plus its last error text.
 * Thread: any, one owner thread per object (libopus state is not shared).
 */
#include "kameko/opus.h"

#include <opus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kameko/audio.h"

struct kmk_opus_dec {
  OpusDecoder *dec;
  int last_samples; /* duration of the last decoded frame, used for PLC */
  char err[128];
};

struct kmk_opus_enc {
  OpusEncoder *enc;
  int lookahead;
  char err[128];
};

static void set_err(char *err, size_t errlen, const char *what, int rc) {
  if (err && errlen) snprintf(err, errlen, "%s: %s", what, opus_strerror(rc));
}

kmk_opus_dec *kmk_opus_dec_new(char *err, size_t errlen) {
  kmk_opus_dec *d = calloc(1, sizeof *d);
  if (!d) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  int rc = OPUS_OK;
  d->dec = opus_decoder_create(KMK_OPUS_DEC_RATE, 1, &rc);
  if (!d->dec || rc != OPUS_OK) {
    set_err(err, errlen, "opus_decoder_create", rc);
    free(d);
    return NULL;
  }
  d->last_samples = KMK_OPUS_DEC_RATE / 50;
  return d;
}

void kmk_opus_dec_free(kmk_opus_dec *d) {
  if (!d) return;
  opus_decoder_destroy(d->dec);
  free(d);
}

int kmk_opus_dec_decode(kmk_opus_dec *d, const uint8_t *pkt, size_t len, int16_t *pcm,
                        int max_samples) {
  if (!d || !pcm || max_samples <= 0 || len > 0x7fffffff) return KMK_AUDIO_EINVAL;
  int n;
  if (!pkt || !len) {
    int want = d->last_samples < max_samples ? d->last_samples : max_samples;
    n = opus_decode(d->dec, NULL, 0, pcm, want, 0);
  } else {
    n = opus_decode(d->dec, pkt, (opus_int32)len, pcm, max_samples, 0);
  }
  if (n < 0) {
    set_err(d->err, sizeof d->err, pkt ? "opus_decode" : "opus_decode (PLC)", n);
    return n == OPUS_INVALID_PACKET ? KMK_AUDIO_EFORMAT
           : n == OPUS_BUFFER_TOO_SMALL ? KMK_AUDIO_EINVAL
                                        : KMK_AUDIO_ECODEC;
  }
  if (pkt && len) d->last_samples = n;
  return n;
}

int kmk_opus_dec_decode_fec(kmk_opus_dec *d, const uint8_t *next_pkt, size_t len, int16_t *pcm,
                            int max_samples) {
  if (!d || !pcm || !next_pkt || !len || len > 0x7fffffff) return KMK_AUDIO_EINVAL;
  /* The lost frame had the duration of the frames around it: ask for exactly that. */
  int frame = opus_packet_get_samples_per_frame(next_pkt, KMK_OPUS_DEC_RATE);
  if (frame <= 0) frame = d->last_samples;
  if (frame > max_samples) return KMK_AUDIO_EINVAL;
  int n = opus_decode(d->dec, next_pkt, (opus_int32)len, pcm, frame, 1);
  if (n < 0) {
    set_err(d->err, sizeof d->err, "opus_decode (FEC)", n);
    return n == OPUS_INVALID_PACKET ? KMK_AUDIO_EFORMAT : KMK_AUDIO_ECODEC;
  }
  return n;
}

void kmk_opus_dec_reset(kmk_opus_dec *d) {
  if (d) opus_decoder_ctl(d->dec, OPUS_RESET_STATE);
}

const char *kmk_opus_dec_error(const kmk_opus_dec *d) { return d ? d->err : ""; }

kmk_opus_enc *kmk_opus_enc_new(int bitrate, char *err, size_t errlen) {
  if (bitrate == 0) bitrate = KMK_OPUS_DEFAULT_BITRATE;
  if (bitrate < 6000 || bitrate > 510000) {
    if (err && errlen) snprintf(err, errlen, "bitrate %d out of range 6000..510000", bitrate);
    return NULL;
  }
  kmk_opus_enc *e = calloc(1, sizeof *e);
  if (!e) {
    if (err && errlen) snprintf(err, errlen, "out of memory");
    return NULL;
  }
  int rc = OPUS_OK;
  e->enc = opus_encoder_create(KMK_OPUS_ENC_RATE, KMK_OPUS_ENC_CHANNELS, OPUS_APPLICATION_VOIP, &rc);
  if (!e->enc || rc != OPUS_OK) {
    set_err(err, errlen, "opus_encoder_create", rc);
    free(e);
    return NULL;
  }
  opus_encoder_ctl(e->enc, OPUS_SET_BITRATE(bitrate));
  opus_encoder_ctl(e->enc, OPUS_SET_INBAND_FEC(1));
  opus_encoder_ctl(e->enc, OPUS_SET_PACKET_LOSS_PERC(10));
  opus_encoder_ctl(e->enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
  opus_int32 la = 0;
  opus_encoder_ctl(e->enc, OPUS_GET_LOOKAHEAD(&la));
  e->lookahead = (int)la;
  return e;
}

void kmk_opus_enc_free(kmk_opus_enc *e) {
  if (!e) return;
  opus_encoder_destroy(e->enc);
  free(e);
}

int kmk_opus_enc_encode(kmk_opus_enc *e, const int16_t *pcm, uint8_t *out, int out_max) {
  if (!e || !pcm || !out || out_max <= 0) return KMK_AUDIO_EINVAL;
  int n = opus_encode(e->enc, pcm, KMK_OPUS_ENC_FRAME, out, out_max);
  if (n < 0) {
    set_err(e->err, sizeof e->err, "opus_encode", n);
    return n == OPUS_BUFFER_TOO_SMALL ? KMK_AUDIO_EINVAL : KMK_AUDIO_ECODEC;
  }
  return n;
}

void kmk_opus_enc_reset(kmk_opus_enc *e) {
  if (e) opus_encoder_ctl(e->enc, OPUS_RESET_STATE);
}

int kmk_opus_enc_lookahead(const kmk_opus_enc *e) { return e ? e->lookahead : 0; }
const char *kmk_opus_enc_error(const kmk_opus_enc *e) { return e ? e->err : ""; }
