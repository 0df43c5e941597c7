/* audio.h - the audio path of the engine: shared error codes and constants, and the module map.
 *
 * Modules (one header each, include what you use; all plain C, no libuv except pacer.h's driver):
 *   ring.h      int16 sample ring buffer (drop-oldest overflow)
 *   wav.h       RIFF/WAVE reader (PCM 8/16/24/32, float 32/64, extensible) and s16 writer
 *   resample.h  soxr-based streaming resampler with channel down/upmix
 *   opus.h      Opus decoder at 16 kHz mono (PLC, FEC) and encoder at 48 kHz stereo
 *   vad.h       pluggable voice activity detectors ("energy" built in)
 *   endpoint.h  per-speaker utterance endpointer state machine
 *   stream.h    per-speaker input stream: decode/resample -> VAD -> endpointer -> events
 *   out.h       the agent's output chain: TTS PCM -> 48 kHz stereo -> 20 ms Opus packets
 *   pacer.h     drift-free 20 ms pacer (pure logic) plus a libuv timer driver
 *   mixer.h     16 kHz mono timeline mixer that writes WAV
 *
 * Errors: every function that can fail returns one of the negative KMK_AUDIO_E* codes below
 * (or NULL for constructors, with a reason in an err buffer where one is taken).
 */
#ifndef KAMEKO_AUDIO_H
#define KAMEKO_AUDIO_H

enum {
  KMK_AUDIO_OK = 0,
  KMK_AUDIO_EINVAL = -1,       /* bad argument */
  KMK_AUDIO_ENOMEM = -2,       /* allocation failed or a hard size cap was reached */
  KMK_AUDIO_EIO = -3,          /* file could not be opened, read or written */
  KMK_AUDIO_EFORMAT = -4,      /* input bytes are not what they claim to be */
  KMK_AUDIO_EUNSUPPORTED = -5, /* valid input we do not handle (codec, channel count, rate) */
  KMK_AUDIO_ECODEC = -6,       /* libopus / libsoxr reported a failure */
  KMK_AUDIO_EFULL = -7,        /* bounded buffer is full */
};

/* Short static description of a KMK_AUDIO_E* code ("invalid argument", ...). */
const char *kmk_audio_strerror(int code);

/* Processing rate inside the engine: 16 kHz mono int16; VAD frames are 10 ms. */
#define KMK_AUDIO_RATE 16000
#define KMK_AUDIO_FRAME 160

#endif
