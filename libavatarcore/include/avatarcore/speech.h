/*
 * avatarcore/speech.h - audio, voice activity, speech-to-text and
 * text-to-speech.
 *
 * Audio inside the core is PCM, signed 16-bit little-endian, mono, at
 * 16 kHz ("PCM16K") unless said otherwise.  Audio from clients arrives as
 * raw PCM16K or in a container; the format is decided by the bytes, never
 * by a label.
 *
 * The providers follow the pattern of llm.h: one interface, a cloud
 * implementation speaking the provider's wire format through the core's
 * HTTP client, and an embedded default that needs no network:
 *
 *   speech-to-text  "openai"        POST {base_url}/audio/transcriptions
 *                                   (multipart: file, model, language,
 *                                   response_format=verbose_json)
 *                   "pocketsphinx"  offline (Debian's en-us model), with a
 *                                   language model built from the
 *                                   dealership's material and F&I phrases
 *   text-to-speech  "elevenlabs"    POST {base_url}/v1/text-to-speech/
 *                                   {voice_id}/stream?output_format=...
 *                                   with xi-api-key
 *                   "espeak"        offline espeak-ng, MP3 by LAME,
 *                                   visemes from phoneme events
 *
 * Configuration keys read by avc_stt_new():
 *   stt.provider   pocketsphinx | openai (default: openai when stt.key is
 *                  set, else pocketsphinx)
 *   stt.base_url   default https://api.openai.com/v1
 *   stt.model      default whisper-1
 *   stt.key        Bearer key
 *   stt.language   default en
 *   stt.timeout    ms for one transcription, default 30000
 *   stt.retries    attempts on 429/5xx/connect failures, default 2
 *   stt.hmm, stt.dict  offline acoustic model and dictionary (default
 *                  Debian's pocketsphinx-en-us)
 * and by avc_tts_new():
 *   tts.provider   espeak | elevenlabs (default: elevenlabs when tts.key
 *                  is set, else espeak)
 *   tts.base_url   default https://api.elevenlabs.io
 *   tts.voice      default voice (ElevenLabs voice id; espeak voice name,
 *                  default en-us)
 *   tts.model      ElevenLabs model_id, default eleven_turbo_v2_5
 *   tts.key        xi-api-key
 *   tts.timeout    ms for one sentence, default 20000
 *   tts.first_byte_timeout  ms to the first audio byte, default 10000
 *   tts.rate       espeak words per minute, default 175
 */
#ifndef AVATARCORE_SPEECH_H
#define AVATARCORE_SPEECH_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/http.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- audio */

typedef enum {
    AVC_AUDIO_UNKNOWN = 0,
    AVC_AUDIO_PCM,              /* raw PCM16K (no header) */
    AVC_AUDIO_WAV,              /* RIFF/WAVE */
    AVC_AUDIO_WEBM,             /* EBML (WebM/Matroska, Opus inside) */
    AVC_AUDIO_MP4,              /* ISO BMFF (ftyp), AAC inside */
    AVC_AUDIO_MP3,              /* ID3 tag or an MPEG audio frame sync */
    AVC_AUDIO_OGG               /* OggS (Opus or Vorbis) */
} avc_audio_format_t;

/*
 * The format of the bytes.  A buffer with no known signature is PCM when
 * pcm_ok and its length is even, else UNKNOWN.
 */
AVC_API avc_audio_format_t avc_audio_detect(const void *p, size_t n,
                                            int pcm_ok);
/* "audio/wav", "audio/webm" ... and a file name extension "wav" ... */
AVC_API const char *avc_audio_mime(avc_audio_format_t f);
AVC_API const char *avc_audio_ext(avc_audio_format_t f);

/*
 * Decode any supported format into PCM16K (new array of *samples samples,
 * free()).  WAV (PCM 8/16/24/32-bit, float, any rate, any channel count,
 * mixed down and resampled) and raw PCM natively; WebM, MP4, MP3 and OGG
 * through FFmpeg's libraries, from memory, no files, no network.  At most
 * max_ms milliseconds of audio are accepted (AVC_ETOOBIG beyond).  CPU
 * work: call it off the loop.  AVC_EPARSE for bytes that do not decode.
 */
AVC_API int avc_audio_decode(const void *p, size_t n, avc_audio_format_t f,
                             unsigned max_ms, int16_t **pcm,
                             size_t *samples);

/* A WAV file (44-byte header + data) of mono s16le PCM at rate. */
AVC_API int avc_audio_wav(const int16_t *pcm, size_t samples, unsigned rate,
                          void **out, size_t *len);

/* Root-mean-square level of PCM in dBFS (-96 for silence). */
AVC_API double avc_audio_dbfs(const int16_t *pcm, size_t samples);

/* ------------------------------------------------- voice activity (VAD) */

typedef struct avc_vad_s avc_vad_t;

typedef struct {
    int       is_speech;        /* the last frame was speech (after
                                   hysteresis) */
    double    confidence;       /* 0-1 */
    int       speech_started;   /* speech began within this feed */
    int       speech_ended;     /* speech ended within this feed: the
                                   silence after it reached end_ms */
    unsigned  duration_ms;      /* length of the current (or just ended)
                                   speech segment */
} avc_vad_event_t;

/*
 * A detector for PCM at rate (8000, 16000, 32000 or 48000 Hz; else NULL,
 * *err AVC_EINVAL).  aggressiveness 0-3 as WebRTC's: higher needs more
 * evidence before calling a frame speech.  end_ms: the silence that ends
 * speech (the API's VAD socket uses 200, a live turn 500).  It works in
 * 10 ms frames with an adaptive noise floor, onset and release
 * hysteresis.
 */
AVC_API avc_vad_t *avc_vad_new(unsigned rate, int aggressiveness,
                               unsigned end_ms, int *err);
/* Feed any number of samples; *ev describes the state after them. */
AVC_API void avc_vad_feed(avc_vad_t *vad, const int16_t *pcm,
                          size_t samples, avc_vad_event_t *ev);
AVC_API void avc_vad_reset(avc_vad_t *vad);
AVC_API void avc_vad_free(avc_vad_t *vad);

/* ------------------------------------------------------ speech-to-text */

typedef struct avc_stt_s avc_stt_t;
typedef struct avc_stt_op_s avc_stt_op_t;

typedef struct {
    const void          *audio;     /* the bytes as received */
    size_t               len;
    avc_audio_format_t   format;    /* from avc_audio_detect */
    const char          *language;  /* NULL: stt.language */
    /*
     * Offline recognition: the material the language model is built
     * from, under a key naming it (a dealership and its knowledge-base
     * generation).  A model already built for domain_key is reused and
     * domain_text may then be NULL (see avc_stt_has_domain).
     */
    const char          *domain_key;
    const char          *domain_text;
} avc_stt_request_t;

typedef struct {
    const char *text;           /* "" when nothing was said */
    double      confidence;     /* 0-1 */
    const char *words_json;     /* [{"word","start","end"}] or NULL */
    const char *provider;
    unsigned    audio_ms;       /* length of the audio */
    const char *error;          /* on error: fit for a client */
} avc_stt_result_t;

/* err: AVC_OK; AVC_ETIMEDOUT (504); AVC_EUPSTREAM/EHTTP/ECONNECT/EPROTO
 * (502); AVC_EPARSE (the audio does not decode: 422). */
typedef void (*avc_stt_done_cb)(int err, const avc_stt_result_t *res,
                                void *data);

AVC_API avc_stt_t *avc_stt_new(avc_loop_t *loop, avc_http_t *http,
                               const avc_config_t *cfg, int *err);
AVC_API void avc_stt_free(avc_stt_t *stt);
AVC_API const char *avc_stt_provider(const avc_stt_t *stt);
/* An offline language model is ready for key (always 1 for cloud). */
AVC_API int avc_stt_has_domain(avc_stt_t *stt, const char *key);
/* The request is copied; *op (optional) cancels: no callback follows. */
AVC_API int avc_stt_transcribe(avc_stt_t *stt, const avc_stt_request_t *req,
                               avc_stt_done_cb done, void *data,
                               avc_stt_op_t **op);
AVC_API void avc_stt_cancel(avc_stt_op_t *op);
AVC_API size_t avc_stt_active(const avc_stt_t *stt);

/* ------------------------------------------------------ text-to-speech */

typedef struct avc_tts_s avc_tts_t;
typedef struct avc_tts_op_s avc_tts_op_t;

typedef enum {
    AVC_TTS_MP3 = 0,            /* MPEG-1/2 layer III frames */
    AVC_TTS_PCM16K              /* PCM16K */
} avc_tts_format_t;

/*
 * A mouth shape for lip-sync, at a time from the start of this
 * sentence's audio.  The set is the 15 of the Oculus/Meta visemes:
 * sil PP FF TH DD kk CH SS nn RR aa E I O U.
 */
typedef struct {
    unsigned    t_ms;
    unsigned    d_ms;
    const char *v;
} avc_viseme_t;

typedef struct {
    const char *provider;
    unsigned    audio_ms;       /* length of the audio produced */
    size_t      bytes;
    const char *error;          /* on error: fit for a client */
} avc_tts_result_t;

/* Audio as it is produced: MP3 pieces always end on a frame boundary. */
typedef void (*avc_tts_audio_cb)(const void *p, size_t n, void *data);
/* Visemes of the sentence (all at once, before or with its audio). */
typedef void (*avc_tts_viseme_cb)(const avc_viseme_t *v, size_t n,
                                  void *data);
typedef void (*avc_tts_done_cb)(int err, const avc_tts_result_t *res,
                                void *data);

typedef struct {
    const char        *text;    /* one sentence or a few, 1-5000 chars */
    const char        *voice;   /* NULL: tts.voice */
    avc_tts_format_t   format;
} avc_tts_request_t;

AVC_API avc_tts_t *avc_tts_new(avc_loop_t *loop, avc_http_t *http,
                               const avc_config_t *cfg, int *err);
AVC_API void avc_tts_free(avc_tts_t *tts);
AVC_API const char *avc_tts_provider(const avc_tts_t *tts);
/* The request is copied; *op (optional) cancels: the provider request is
 * aborted (its connection closed) and no callback follows. */
AVC_API int avc_tts_speak(avc_tts_t *tts, const avc_tts_request_t *req,
                          avc_tts_audio_cb on_audio,
                          avc_tts_viseme_cb on_viseme, avc_tts_done_cb done,
                          void *data, avc_tts_op_t **op);
AVC_API void avc_tts_cancel(avc_tts_op_t *op);
AVC_API size_t avc_tts_active(const avc_tts_t *tts);

/*
 * Visemes estimated from text timing (for providers without phoneme
 * events): letters mapped to mouth shapes, spread over audio_ms.  A new
 * array of *n (free()); the v strings are static.
 */
AVC_API avc_viseme_t *avc_visemes_from_text(const char *text,
                                            unsigned audio_ms, size_t *n);

/* --------------------------------------------------- sentence segmenter */

typedef struct avc_segmenter_s avc_segmenter_t;

/*
 * Cuts streamed text into sentences as soon as each is complete, without
 * splitting "$1.50", "5.9%", "Mr.", "e.g.", "U.S.", "No. 3" or "...".
 */
AVC_API avc_segmenter_t *avc_segmenter_new(void);
/* Add text; returns a complete sentence (new string, free()) or NULL
 * when none is complete yet; call again with NULL, 0 for more. */
AVC_API char *avc_segmenter_push(avc_segmenter_t *s, const char *p,
                                 size_t n);
/* The rest at the end of the text (new string), or NULL when empty. */
AVC_API char *avc_segmenter_flush(avc_segmenter_t *s);
AVC_API void avc_segmenter_free(avc_segmenter_t *s);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_SPEECH_H */
