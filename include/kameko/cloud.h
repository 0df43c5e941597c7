/* cloud.h - cloud providers on the loop: OpenAI-compatible chat LLM (streaming SSE, first
 * sentence of the decision's `response` while the rest streams), Groq Whisper STT (multipart WAV,
 * verbose_json) with hallucination gates, and Edge-TTS (WebSocket, MP3 decoded to PCM).
 *
 * Threading: the clients (kmk_llm_*, kmk_groq_*, kmk_edge_*) are LOOP THREAD only; their callbacks
 * run on the loop thread. The pure helpers (sentence scanner, gates, SSML, Sec-MS-GEC, frame
 * parsing) are any-thread.
 *
 * Contract shared by every request: a call that returns an error never calls a callback; the
 * final callback (on_done) runs exactly once otherwise, unless the request was cancelled with its
 * _cancel function (then nothing more is called and all its memory is released at once).
 * Errors are KMK_NET_E* (net.h). 401/402/403 make a provider fatal until restarted
 * (kmk_*_fatal); N consecutive failures open its circuit breaker for a cool-down, during which
 * calls fail at once with KMK_NET_EOPEN so the caller falls back to an offline provider.
 * Keys are registered with kmk_log_add_secret and never logged.
 */
#ifndef KAMEKO_CLOUD_H
#define KAMEKO_CLOUD_H

#include <stddef.h>
#include <stdint.h>

#include "kameko/net.h"
#include "kameko/speech.h"

/* ---- resilience settings shared by the providers ------------------------------------------ */
typedef struct {
  double timeout_ms;        /* whole request; 0 = provider default */
  double first_byte_ms;     /* 0 = provider default */
  double stall_ms;          /* 0 = provider default */
  int max_retries;          /* retries after the first attempt; 0 = default 2; <0 = none */
  double max_retry_after_s; /* a longer Retry-After fails at once (fall back); 0 = 5 s */
  double backoff_base_ms;   /* 0 = 250 */
  double backoff_max_ms;    /* 0 = 4000 */
  int max_active;           /* concurrent requests; 0 = 2 */
  int max_queued;           /* waiting requests; 0 = 4 */
  int breaker_threshold;    /* 0 = 3 */
  double breaker_cooldown_s;/* 0 = 30 */
} kmk_cloud_policy;

/* Fills the zero fields of p with the defaults above and the given per-provider timeouts. */
void kmk_cloud_policy_defaults(kmk_cloud_policy *p, double timeout_ms, double first_byte_ms,
                               double stall_ms);
/* base (trailing slashes dropped) + path, e.g. ("https://x/v1/", "/chat/completions"). */
char *kmk_cloud_url(const char *base, const char *path);
/* "Authorization: Bearer KEY" with KEY registered for log redaction; NULL when no key (or OOM). */
char *kmk_cloud_bearer(const char *api_key);

/* ---- incremental sentence scanner over a streamed decision JSON ---------------------------
 * Feed the LLM's content as it streams; the scanner skips anything before the first '{' (prose,
 * ```json fences), follows the top-level object and, inside the string value of "response",
 * decodes escapes (\uXXXX with surrogate pairs) and reports each complete sentence (ended by
 * . ! ? … followed by white space, or by the end of the string; common abbreviations are not
 * ends). Sentences are not reported once "should_speak" is known to be false. */
typedef void (*kmk_sentence_fn)(void *ud, const char *sentence, size_t len, int index);
typedef struct {
  int depth, in_str, esc, upos, top_done;
  unsigned uval, hi;
  int role;        /* what the current string / literal is: 0 other, 1 key, 2 response, 3 speak */
  int expect;      /* at depth 1: 0 key, 1 colon, 2 value, 3 comma */
  char key[24];
  size_t key_len;
  char lit[16];
  size_t lit_len;
  int in_lit;
  int should_speak; /* -1 unknown, 0, 1 */
  char *resp;
  size_t resp_len, resp_cap, emitted;
  int response_done;
  int n_sentences;
  size_t max_resp;
  kmk_sentence_fn fn;
  void *ud;
} kmk_sentence_scanner;

void kmk_sscan_init(kmk_sentence_scanner *s, kmk_sentence_fn fn, void *ud);
void kmk_sscan_feed(kmk_sentence_scanner *s, const char *buf, size_t len);
/* The decoded response so far (NUL-terminated; "" when none). */
const char *kmk_sscan_response(const kmk_sentence_scanner *s);
void kmk_sscan_free(kmk_sentence_scanner *s);

/* ---- LLM: OpenAI-compatible chat completions ---------------------------------------------- */
typedef struct kmk_llm kmk_llm;
typedef struct kmk_llm_req kmk_llm_req;

typedef struct {
  const char *base_url;  /* e.g. https://openrouter.ai/api/v1 (copied) */
  const char *api_key;   /* may be "" for a local server (copied, registered as a secret) */
  const char *model;
  const char *referer;   /* optional OpenRouter HTTP-Referer / X-Title */
  const char *title;
  kmk_cloud_policy policy; /* defaults: timeout 30 s, first byte 8 s, stall 5 s */
} kmk_llm_opts;

enum { KMK_LLM_JSON_NONE = 0, KMK_LLM_JSON_OBJECT, KMK_LLM_JSON_SCHEMA };

typedef struct {
  double temperature;      /* < 0 = omit */
  int max_tokens;          /* 0 = omit */
  int json_mode;           /* KMK_LLM_JSON_* */
  const char *json_schema; /* JSON text of the schema for KMK_LLM_JSON_SCHEMA */
  int no_stream;           /* 1 = one JSON answer instead of SSE */
  int require_parameters;  /* OpenRouter: provider.require_parameters = true */
} kmk_llm_chat_opts;

typedef struct {
  int err;                   /* 0 or KMK_NET_E* */
  long http_status;          /* last HTTP status (0 = none) */
  const char *text;          /* the assistant content (partial when err), NUL-terminated */
  size_t text_len;
  const char *finish_reason; /* "stop", "length", "error", ... or "" */
  const char *message;       /* one-line reason when err ("" otherwise); never holds the key */
  int prompt_tokens, completion_tokens; /* -1 when unknown */
  int attempts;
  int sentences;
  double first_byte_ms, first_token_ms, first_sentence_ms, total_ms; /* -1 when none */
} kmk_llm_result;

typedef struct {
  void (*on_delta)(void *ud, const char *text, size_t len);              /* may be NULL */
  void (*on_sentence)(void *ud, const char *s, size_t len, int index);   /* may be NULL */
  void (*on_done)(void *ud, const kmk_llm_result *r);                    /* required */
} kmk_llm_callbacks;

/* http borrowed (must outlive the client). NULL on bad options. */
kmk_llm *kmk_llm_new(kmk_http *http, const kmk_llm_opts *o);
/* Cancels every request of this client (no callbacks) and frees it. Before kmk_http_close; not
 * from inside one of this client's callbacks (the same holds for kmk_groq_free/kmk_edge_free). */
void kmk_llm_free(kmk_llm *l);
/* messages_json: an OpenAI messages array (borrowed for the call). cb copied. */
int kmk_llm_chat(kmk_llm *l, const char *messages_json, const kmk_llm_chat_opts *o,
                 const kmk_llm_callbacks *cb, void *ud, kmk_llm_req **out);
void kmk_llm_cancel(kmk_llm_req *r);
/* 401/402/403 seen: that status, with a clear message in *msg; else 0. */
int kmk_llm_fatal(const kmk_llm *l, const char **msg);
/* 1 when a request would go out now (not fatal, breaker not open). */
int kmk_llm_available(const kmk_llm *l);

/* ---- STT: Groq Whisper (OpenAI-compatible /audio/transcriptions) -------------------------- */
typedef struct kmk_groq kmk_groq;
typedef struct kmk_groq_req kmk_groq_req;

typedef struct {
  const char *base_url; /* e.g. https://api.groq.com/openai/v1 */
  const char *api_key;
  const char *model;    /* whisper-large-v3 */
  kmk_cloud_policy policy; /* defaults: timeout 15 s, first byte 10 s, stall 5 s */
} kmk_groq_opts;

#define KMK_GROQ_MAX_SEGMENTS 64
typedef struct {
  double start, end;
  float avg_logprob, compression_ratio, no_speech_prob;
} kmk_groq_segment;

typedef struct {
  int err;                 /* 0 or KMK_NET_E* */
  long http_status;
  const char *message;     /* one-line reason when err */
  kmk_transcript *t;       /* on success: text, lang, confidence (exp(mean avg_logprob)),
                              audio_s, decode_ms (request wall time). The callee owns it: take
                              t->text (set it NULL) to keep it. */
  const char *language;    /* as the service names it ("english"); "" when absent */
  double duration_s;
  int n_segments;          /* parsed, at most KMK_GROQ_MAX_SEGMENTS */
  const kmk_groq_segment *segments;
  int attempts;
  double total_ms;
} kmk_groq_result;

typedef void (*kmk_groq_done_fn)(void *ud, const kmk_groq_result *r);

kmk_groq *kmk_groq_new(kmk_http *http, const kmk_groq_opts *o);
void kmk_groq_free(kmk_groq *g);
/* 16 kHz mono int16 (copied into a WAV). lang_hint "ru", "en", NULL/"auto" = let Whisper detect. */
int kmk_groq_transcribe(kmk_groq *g, const int16_t *pcm16k, size_t n, const char *lang_hint,
                        kmk_groq_done_fn cb, void *ud, kmk_groq_req **out);
void kmk_groq_cancel(kmk_groq_req *r);
int kmk_groq_fatal(const kmk_groq *g, const char **msg);
int kmk_groq_available(const kmk_groq *g);
/* Parses a verbose_json (or json) body. Pure; used by the client and the fuzzer. Returns 0 and
 * fills out (caller clears with kmk_transcript_clear), segs (up to max) and *n_segs, or
 * KMK_NET_EPROTO. lang_out (may be NULL) gets the language as given. */
int kmk_groq_parse(const char *body, size_t len, kmk_transcript *out, kmk_groq_segment *segs,
                   int max_segs, int *n_segs, char *lang_out, size_t lang_len, double *duration);

/* ---- hallucination gates (pure) ----------------------------------------------------------- */
typedef enum {
  KMK_GATE_PASS = 0,
  KMK_GATE_TOO_SHORT,       /* before STT: speech shorter than min_speech_s */
  KMK_GATE_TOO_QUIET,       /* before STT: RMS below min_rms_dbfs */
  KMK_GATE_EMPTY,           /* empty or only punctuation */
  KMK_GATE_NO_SPEECH,       /* no_speech_prob above the threshold (with weak logprob) */
  KMK_GATE_LOW_LOGPROB,     /* avg_logprob below the threshold */
  KMK_GATE_COMPRESSION,     /* compression_ratio above the threshold (repetition loops) */
  KMK_GATE_KNOWN_PHRASE,    /* a known Whisper artefact ("Thank you for watching", ...) */
  KMK_GATE_ECHO,            /* repeats the bot's own recent speech */
  KMK_GATE__COUNT
} kmk_gate_reason;

/* "too_short", "too_quiet", "empty", "no_speech", "low_logprob", "compression",
 * "known_phrase", "echo" (the transcript_dropped event's reason). */
const char *kmk_gate_reason_name(kmk_gate_reason r);

/* Known-artefact phrases for one language: whole-transcript matches and substrings, compared
 * after normalising both sides (lowercase incl. Cyrillic, ё -> е, punctuation -> space,
 * apostrophes dropped). NULL-terminated arrays; strings borrowed. */
typedef struct {
  const char *lang; /* "en", "ru", ... */
  const char *const *exact;
  const char *const *contains;
} kmk_gate_list;

/* The built-in English and Russian lists (static; *n gets the count). */
const kmk_gate_list *kmk_gate_default_lists(int *n);

typedef struct {
  const kmk_gate_list *lists; /* NULL = the built-in lists (Lua-edited lists go here) */
  int n_lists;
  double min_speech_s;        /* 0.3 */
  double min_rms_dbfs;        /* -50 */
  double max_no_speech_prob;  /* 0.6 (dropped when above AND avg_logprob < -0.5, Whisper's rule) */
  double min_avg_logprob;     /* -1.0 */
  double max_compression;     /* 2.4 */
  double echo_window_s;       /* 20: bot speech younger than this counts */
  double echo_similarity;     /* 0.8: share of the transcript's words found in one bot line */
} kmk_gate_opts;

void kmk_gate_opts_default(kmk_gate_opts *o);
/* Before sending audio: duration and energy. */
kmk_gate_reason kmk_gate_audio(const kmk_gate_opts *o, const int16_t *pcm, size_t n,
                               int sample_rate, double *rms_dbfs_out);
/* After STT: segment scores (may be n=0) and the text. lang "en", "ru" or NULL (all lists). */
kmk_gate_reason kmk_gate_transcript(const kmk_gate_opts *o, const char *text, const char *lang,
                                    const kmk_groq_segment *segs, int n_segs);
/* 1 when text is a known artefact for lang (NULL/"" = every list) in the built-in lists, or is a
 * sound caption ("[Music]", "(applause)", "♪♪"). _in uses o->lists when set. */
int kmk_gate_known_phrase(const char *text, const char *lang);
int kmk_gate_known_phrase_in(const kmk_gate_opts *o, const char *text, const char *lang);

/* Recent bot speech, a bounded ring (oldest dropped). */
#define KMK_ECHO_LINES 16
typedef struct {
  char *text[KMK_ECHO_LINES];
  double t[KMK_ECHO_LINES];
  int head, n;
} kmk_echo_memory;
void kmk_echo_init(kmk_echo_memory *m);
void kmk_echo_add(kmk_echo_memory *m, const char *bot_text, double now);
/* 1 when text repeats one of the bot's lines from the last window_s seconds. */
int kmk_echo_match(const kmk_echo_memory *m, const kmk_gate_opts *o, const char *text, double now);
void kmk_echo_free(kmk_echo_memory *m);

/* ---- TTS: Edge read-aloud over WebSocket -------------------------------------------------- */
#define KMK_EDGE_TRUSTED_TOKEN "6A5AA1D4EAFF4E9FB37E23D68491D6F4"
#define KMK_EDGE_DEFAULT_URL \
  "wss://speech.platform.bing.com/consumer/speech/synthesize/readaloud/edge/v1"
#define KMK_EDGE_GEC_VERSION "1-143.0.3650.75"
#define KMK_EDGE_DEFAULT_VOICE "ru-RU-SvetlanaNeural"
#define KMK_EDGE_CHUNK_MAX 4096

/* Sec-MS-GEC for unix time (+skew already added): 64 uppercase hex chars + NUL into out[65]. */
void kmk_edge_gec_token(double unix_seconds, char out[65]);
/* "ru-RU-SvetlanaNeural" or the full form -> the full voice name. 0 or KMK_NET_EINVAL. */
int kmk_edge_voice_name(const char *voice, char *out, size_t outlen);
/* Prosody: pitch in Hz, rate and volume in percent (clamped to -100..+100 / -100..+200).
 * Writes "+0Hz", "+10%", "-5%". */
typedef struct {
  int pitch_hz, rate_pct, volume_pct;
} kmk_edge_prosody;
/* Validates strings like "+5Hz"/"-10%" (the only forms Edge accepts). 1 when valid. */
int kmk_edge_prosody_valid(const char *pitch, const char *rate, const char *volume);
/* XML-escapes text (control characters -> spaces) and splits it into chunks of at most max_bytes
 * escaped bytes, at a newline or space when possible, never inside a UTF-8 sequence or an
 * entity. Calls fn per chunk (escaped, NUL-terminated). Returns the number of chunks or error. */
int kmk_edge_chunk_text(const char *text, size_t max_bytes,
                        int (*fn)(void *ud, const char *chunk, size_t len), void *ud);
/* Builds the SSML for one escaped chunk. Returns length written or KMK_NET_EINVAL/ETOOBIG. */
int kmk_edge_ssml(char *out, size_t outlen, const char *full_voice, const char *lang,
                  const kmk_edge_prosody *p, const char *escaped_chunk);
/* Parses a server binary frame: 2-byte big-endian header length, header lines, audio. Returns 0
 * and the header's Path and Content-Type (empty when absent) and the audio slice, or EPROTO. */
int kmk_edge_parse_binary(const uint8_t *frame, size_t len, char *path, size_t path_len,
                          char *ctype, size_t ctype_len, const uint8_t **audio, size_t *audio_len);
/* Parses a server text frame's Path header ("turn.end", ...). 0 or EPROTO. */
int kmk_edge_parse_text_path(const char *frame, size_t len, char *path, size_t path_len);

typedef struct kmk_edge kmk_edge;
typedef struct kmk_edge_req kmk_edge_req;

typedef struct {
  const char *url;          /* NULL = KMK_EDGE_DEFAULT_URL (ws:// for local peers) */
  const char *gec_version;  /* NULL = KMK_EDGE_GEC_VERSION */
  const char *output_format;/* NULL = "audio-24khz-48kbitrate-mono-mp3" */
  kmk_cloud_policy policy;  /* defaults: timeout 20 s, first audio 5 s, stall 5 s; no retries
                               except the one 403 clock-skew retry */
} kmk_edge_opts;

typedef struct {
  int err;
  int http_status;           /* handshake status when refused */
  const char *message;
  int chunks;                /* text chunks (connections) used */
  size_t samples;            /* PCM samples delivered */
  int sample_rate;
  double connect_ms;         /* first WebSocket open (handshake done); -1 when none */
  double first_frame_ms;     /* first audio bytes received; -1 when none */
  double first_audio_ms, total_ms; /* first PCM decoded; whole request */
  double clock_skew_s;       /* skew in use after this request */
  int retried_403;
} kmk_edge_result;

typedef struct {
  /* Mono int16 PCM as decoded (borrowed for the call). Return nonzero to stop (the request then
   * ends like a cancel: no on_done). */
  kmk_tts_chunk_fn on_pcm;
  void (*on_done)(void *ud, const kmk_edge_result *r);
} kmk_edge_callbacks;

kmk_edge *kmk_edge_new(kmk_ws *ws, const kmk_edge_opts *o);
void kmk_edge_free(kmk_edge *e);
/* voice NULL = KMK_EDGE_DEFAULT_VOICE; prosody NULL = +0. */
int kmk_edge_tts_synth(kmk_edge *e, const char *text, const char *voice,
                       const kmk_edge_prosody *prosody, const kmk_edge_callbacks *cb, void *ud,
                       kmk_edge_req **out);
void kmk_edge_cancel(kmk_edge_req *r);
int kmk_edge_available(const kmk_edge *e);
double kmk_edge_clock_skew(const kmk_edge *e);

/* ---- MP3 decoding (libmpg123; feed mode) --------------------------------------------------- */
typedef struct kmk_mp3 kmk_mp3;
/* NULL when built without libmpg123. */
kmk_mp3 *kmk_mp3_new(void);
/* Feeds encoded bytes; calls fn with decoded mono int16 PCM (stereo is down-mixed). Returns 0,
 * 1 when fn returned nonzero (stop), or KMK_NET_EDECODE. */
int kmk_mp3_feed(kmk_mp3 *m, const void *data, size_t len, kmk_tts_chunk_fn fn, void *ud);
void kmk_mp3_free(kmk_mp3 *m);

#endif
