/* test_packet_file.h - packet files for the Discord voice tests: a line synthesized with flite,
 * Opus-encoded by the engine's own output chain, stored as (u16 big-endian length, packet) records;
 * and the RMS of such a file decoded again (what the peer recorded from the bot).
 * Include after test_personas_util.h (pbuf, pbuf_say). */
#ifndef KMK_TEST_PACKET_FILE_H
#define KMK_TEST_PACKET_FILE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kameko/opus.h"
#include "kameko/out.h"

static int write_packets(const char *path, const char *voice, const char *text) {
  pbuf b = {0};
  if (pbuf_say(&b, voice, text) != 0) return -1;
  char err[256];
  kmk_audio_out *o = kmk_audio_out_new(0, 0, err, sizeof err);
  int rc = o ? kmk_audio_out_push(o, b.pcm, b.n, 16000) : -1;
  free(b.pcm);
  if (rc == 0) rc = kmk_audio_out_finish(o);
  FILE *f = rc == 0 ? fopen(path, "wb") : NULL;
  if (!f) rc = -1;
  const kmk_out_frame *fr;
  while (rc == 0 && (fr = kmk_audio_out_pop(o)) != NULL) {
    uint8_t h[2] = {(uint8_t)(fr->len >> 8), (uint8_t)fr->len};
    fwrite(h, 1, 2, f);
    fwrite(fr->data, 1, (size_t)fr->len, f);
  }
  if (f) fclose(f);
  kmk_audio_out_free(o);
  return rc;
}

/* RMS of the decoded packet file (-1 when it cannot be read); packets in *n. */
static double packets_rms(const char *path, int *n) {
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  kmk_opus_dec *d = kmk_opus_dec_new(NULL, 0);
  double sum = 0;
  long count = 0;
  uint8_t h[2], pkt[1500];
  int16_t pcm[KMK_OPUS_DEC_MAX_SAMPLES];
  while (d && fread(h, 1, 2, f) == 2) {
    size_t l = (size_t)(h[0] << 8 | h[1]);
    if (l > sizeof pkt || fread(pkt, 1, l, f) != l) break;
    (*n)++;
    int s = kmk_opus_dec_decode(d, pkt, l, pcm, KMK_OPUS_DEC_MAX_SAMPLES);
    for (int i = 0; i < s; i++) sum += (double)pcm[i] * pcm[i];
    if (s > 0) count += s;
  }
  fclose(f);
  kmk_opus_dec_free(d);
  return count ? sqrt(sum / count) : 0;
}

#endif
