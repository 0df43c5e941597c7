/* opus.h - thin Opus codec wrappers for the two directions the engine needs.
 *
 * Decoder: created DIRECTLY at 16 kHz mono. Opus decodes any stream (Discord sends 48 kHz stereo)
 * at the rate/channel count asked for, which is cheaper than decoding at 48 kHz and resampling.
 * A lost packet is concealed (PLC) by decoding NULL; when the packet after a loss carries in-band
 * FEC, kmk_opus_dec_decode_fec recovers the lost one from it.
 *
 * Encoder: 48 kHz stereo, 20 ms frames (960 samples per channel), OPUS_APPLICATION_VOIP, in-band
 * FEC on — what Discord voice expects.
 *
 * Errors: negative KMK_AUDIO_E* codes; the libopus message of the last failure is kept in the
 * object (kmk_opus_dec_error / kmk_opus_enc_error). Thread: one owner thread per object.
 */
#ifndef KAMEKO_OPUS_H
#define KAMEKO_OPUS_H

#include <stddef.h>
#include <stdint.h>

#define KMK_OPUS_DEC_RATE 16000
#define KMK_OPUS_DEC_MAX_SAMPLES 1920 /* 120 ms at 16 kHz: the largest Opus frame */
#define KMK_OPUS_ENC_RATE 48000
#define KMK_OPUS_ENC_CHANNELS 2
#define KMK_OPUS_ENC_FRAME 960        /* samples per channel in 20 ms at 48 kHz */
#define KMK_OPUS_MAX_PACKET 1275
#define KMK_OPUS_DEFAULT_BITRATE 64000

typedef struct kmk_opus_dec kmk_opus_dec;
typedef struct kmk_opus_enc kmk_opus_enc;

/* Returns NULL with a reason in err (may be NULL) on failure. Caller owns: kmk_opus_dec_free. */
kmk_opus_dec *kmk_opus_dec_new(char *err, size_t errlen);
void kmk_opus_dec_free(kmk_opus_dec *d);
/* Decodes one packet into pcm (16 kHz mono, room for max_samples; KMK_OPUS_DEC_MAX_SAMPLES is
 * always enough). pkt == NULL (or len 0) = packet lost: conceals one frame of the last decoded
 * duration (20 ms before anything was decoded). Returns samples written or KMK_AUDIO_E*. */
int kmk_opus_dec_decode(kmk_opus_dec *d, const uint8_t *pkt, size_t len, int16_t *pcm,
                        int max_samples);
/* Recovers the packet lost just before `next_pkt` from next_pkt's in-band FEC (falls back to PLC
 * inside libopus when it carries none). Decode next_pkt normally afterwards. Returns samples. */
int kmk_opus_dec_decode_fec(kmk_opus_dec *d, const uint8_t *next_pkt, size_t len, int16_t *pcm,
                            int max_samples);
void kmk_opus_dec_reset(kmk_opus_dec *d);
const char *kmk_opus_dec_error(const kmk_opus_dec *d);

/* bitrate in bit/s (0 = KMK_OPUS_DEFAULT_BITRATE). Caller owns: kmk_opus_enc_free. */
kmk_opus_enc *kmk_opus_enc_new(int bitrate, char *err, size_t errlen);
void kmk_opus_enc_free(kmk_opus_enc *e);
/* Encodes exactly one 20 ms frame: pcm holds KMK_OPUS_ENC_FRAME stereo frames (interleaved).
 * Returns packet bytes written to out (<= out_max) or KMK_AUDIO_E*. */
int kmk_opus_enc_encode(kmk_opus_enc *e, const int16_t *pcm, uint8_t *out, int out_max);
void kmk_opus_enc_reset(kmk_opus_enc *e);
/* Encoder lookahead in samples at 48 kHz (the codec delay a round trip adds). */
int kmk_opus_enc_lookahead(const kmk_opus_enc *e);
const char *kmk_opus_enc_error(const kmk_opus_enc *e);

#endif
