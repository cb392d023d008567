/*
 * Declarations shared by the text-to-speech files of src/speech (avc__
 * prefix); not installed.
 *
 * tts.c holds the configuration, the dispatcher and the life of a
 * sentence being spoken (avc_tts_op_t); each provider fills in the part
 * of the op that is its own:
 *
 *   tts_elevenlabs.c  the ElevenLabs HTTP stream, cut on MPEG frame or
 *                     sample boundaries as it arrives
 *   tts_espeak.c      espeak-ng on the thread pool, LAME for MP3
 *   visemes.c         mouth shapes estimated from text, and the list
 *                     both providers build their visemes in
 *
 * The life of an op is that of an LLM answer (see llm_internal.h):
 *
 *   linked     in tts->ops from avc_tts_speak() until it finishes or is
 *              cancelled; op->tts is set exactly while linked
 *   finished   avc__tts_finish() ran: on_done has been called (or is
 *              being called); a cancel is then a no-op
 *   cancelled  avc_tts_cancel() or avc_tts_free(): no callback follows
 *
 * Every entry from the loop into an op (an HTTP callback, a timer, the
 * completion of offloaded work) is bracketed by avc__tts_enter() and
 * avc__tts_leave(): the caller's callbacks may cancel the op, or free the
 * whole client, from inside, so the memory of an op is released only by
 * the outermost leave (or at once by a cancel from outside any entry).
 */
#ifndef AVC_TTS_INT_H
#define AVC_TTS_INT_H

#include "internal.h"

#include <avatarcore/speech.h>

#define AVC__TTS_TEXT_MAX     5000  /* characters of one request */
#define AVC__TTS_VOICE_LEN    64
#define AVC__TTS_DETAIL_LEN   256

typedef enum {
    AVC__TTS_ESPEAK = 0,
    AVC__TTS_ELEVENLABS
} avc__tts_kind_t;

struct avc_tts_s {
    avc_loop_t *loop;
    avc_http_t *http;           /* borrowed; NULL for espeak */
    avc__tts_kind_t kind;
    const char *provider;       /* static: "elevenlabs", "espeak" */
    char *base;                 /* tts.base_url without a trailing '/' */
    char *key;                  /* xi-api-key: a secret */
    char *voice;                /* the default voice */
    char *model;                /* ElevenLabs model_id */
    unsigned timeout_ms;        /* one sentence, 0: none */
    unsigned first_byte_ms;     /* to the first audio byte, 0: none */
    unsigned connect_ms;
    unsigned retries;           /* attempts, >= 1 */
    unsigned backoff_ms;
    unsigned rate;              /* espeak words per minute */
    avc__list_t ops;            /* running, and how many */
};

typedef struct avc__espeak_job_s avc__espeak_job_t;

struct avc_tts_op_s {
    avc__link_t link;           /* in tts->ops; first: a link is the op */
    avc_tts_t *tts;             /* NULL once unlinked */
    avc__tts_kind_t kind;
    avc_tts_format_t format;
    avc_tts_audio_cb on_audio;
    avc_tts_viseme_cb on_viseme;
    avc_tts_done_cb on_done;
    void *data;
    unsigned busy;              /* entries running, see above */
    unsigned canceled:1;
    unsigned finished:1;

    char *text;                 /* valid UTF-8, 1-5000 characters */
    char voice[AVC__TTS_VOICE_LEN + 1];
    const char *provider;       /* static */
    const char *error;          /* static client message chosen by the
                                   provider, or NULL for the default */
    size_t bytes;               /* audio delivered */
    unsigned audio_ms;          /* length of the audio delivered */
    char detail[AVC__TTS_DETAIL_LEN];   /* for the log: never to a client */

    avc_timer_t *first_timer;   /* no audio yet: ETIMEDOUT */
    avc_timer_t *total_timer;   /* the whole sentence: ETIMEDOUT */

    /* ElevenLabs */
    avc_http_req_t *req;        /* the running attempt, or NULL */
    unsigned tries;             /* attempts made after a broken stream */
    uint64_t first_deadline;    /* loop ms, 0: none */
    uint64_t total_deadline;
    int status;                 /* of the attempt's response */
    int stop_err;               /* the stream was stopped with this */
    avc__buf_t carry;           /* audio not yet delivered: a partial
                                   MPEG frame or an odd byte */
    avc__buf_t errbody;         /* an error status's body (bounded) */
    int synced;                 /* MP3: carry starts at a frame header */
    size_t skip;                /* MP3: bytes of an ID3v2 tag to drop */
    size_t junk;                /* MP3: bytes dropped between frames */
    uint64_t samples;           /* MP3: samples of the frames delivered */
    unsigned sample_rate;       /* MP3: of the frames delivered */

    /* espeak */
    avc__espeak_job_t *job;     /* the work on the pool, or NULL */
    avc_timer_t *pace_timer;    /* hands out the pieces */
    unsigned char *audio;       /* the whole sentence's audio */
    size_t *cuts;               /* end of each piece in audio */
    size_t ncuts;
    size_t piece;               /* next piece to deliver */
};

/* tts.c */

void avc__tts_enter(avc_tts_op_t *op);
void avc__tts_leave(avc_tts_op_t *op);

/*
 * Give n bytes of audio to the caller.  Returns AVC_OK, or AVC_ECANCELED
 * when the op was cancelled from within the callback: then stop at once
 * and touch nothing but the op's own memory.
 */
int avc__tts_audio(avc_tts_op_t *op, const void *p, size_t n);

/* Give the sentence's visemes to the caller (no-op without on_viseme);
 * AVC_OK or AVC_ECANCELED as above. */
int avc__tts_visemes(avc_tts_op_t *op, const avc_viseme_t *v, size_t n);

/*
 * End the op with err (AVC_OK or an error code), calling on_done once
 * with a client-safe message (op->error, or one for err); the provider's
 * resources are released first.  A no-op on a finished or cancelled op.
 */
void avc__tts_finish(avc_tts_op_t *op, int err);

/* s[0..n) as one printable log line in out, the key masked. */
void avc__tts_snippet(const avc_tts_t *tts, const char *s, size_t n,
                      char *out, size_t outn);

/*
 * Is p[0..n) (n >= 4) the header of an MPEG-1, -2 or -2.5 layer III
 * frame?  Then 1, with the frame's length in bytes (header included),
 * its samples and its sample rate; else 0.  Free-format frames are not
 * recognised.
 */
int avc__mp3_frame(const unsigned char *p, size_t n, unsigned *len,
                   unsigned *samples, unsigned *rate);

/* tts_elevenlabs.c */

/* Start speaking (callbacks only later, from the loop).  AVC_OK, or an
 * error and nothing started. */
int avc__tts_eleven_start(avc_tts_op_t *op);
/* Release what the provider holds (abort the request); no callback. */
void avc__tts_eleven_stop(avc_tts_op_t *op);

/* tts_espeak.c */

int avc__tts_espeak_start(avc_tts_op_t *op);
/* Let go of the work on the pool (it stops early and frees itself) and
 * the audio not yet delivered; no callback. */
void avc__tts_espeak_stop(avc_tts_op_t *op);

/* visemes.c */

/* A growing list of visemes; adjacent equal shapes are merged. */
typedef struct {
    avc_viseme_t *v;
    size_t n;
    size_t cap;
} avc__visemes_t;

/*
 * Append shape v (a static string) from t_ms for d_ms: merged into the
 * last one when it is the same shape and they touch; nothing when d_ms
 * is 0.  AVC_OK or AVC_ENOMEM.
 */
int avc__visemes_add(avc__visemes_t *l, unsigned t_ms, unsigned d_ms,
                     const char *v);

/* The canonical static string of a shape name ("PP"...), or NULL. */
const char *avc__viseme_name(const char *v);

#endif /* AVC_TTS_INT_H */
