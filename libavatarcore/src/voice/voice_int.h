/*
 * Internals of the voice API: one spoken turn (the engine shared by the
 * live socket and the REST routes) and small helpers.
 *
 * A turn: audio in -> speech-to-text -> the chat operation (the same one
 * as POST /api/v1/chat/, run inside the core for the session's user, in
 * spoken style, its answer held until it has been spoken) -> sentences
 * -> text-to-speech, sentence after sentence as each is complete -> the
 * turn is stored with the text that was actually delivered.
 */
#ifndef AVC_VOICE_INT_H
#define AVC_VOICE_INT_H

#include "../chat/chat_int.h"

#include <avatarcore/speech.h>

typedef struct avc_vturn_s avc_vturn_t;

typedef struct {
    avc_app_t          *app;
    long long           uid;            /* the user, authenticated */
    const char         *pwc;            /* its token's password stamp */
    long long           did;            /* the dealership of the turn */
    int                 sa;             /* the user is a super admin */
    int                 roleplay;
    int                 fast;           /* short answer, no retrieval */
    const char         *session_id;     /* a conversation, or NULL */
    const char         *channel;        /* "live" | "rest" */
    const void         *audio;          /* copied */
    size_t              len;
    avc_audio_format_t  format;
    int                 speak;          /* make audio of the answer */
    avc_tts_format_t    out;
    const char         *voice;          /* NULL: the provider's default */
} avc_vturn_req_t;

/* What happened to a turn, in the callbacks' order. */
typedef struct {
    /* the transcript (may be "") and its confidence */
    void (*transcript)(void *d, const char *text, double confidence);
    /* a piece of the answer's text as it is generated */
    void (*delta)(void *d, const char *text, size_t n);
    /* audio of the answer, in order; returns AVC_OK or an error when the
     * receiver cannot take more (the turn then stops) */
    int  (*audio)(void *d, const void *p, size_t n);
    /* the visemes of sentence i, starting at offset_ms into the answer */
    void (*visemes)(void *d, size_t i, unsigned offset_ms,
                    const avc_viseme_t *v, size_t n);
    /* whether the receiver's queue is above its high-water mark: the
     * next sentence waits for avc__vturn_resume */
    int  (*full)(void *d);
    /*
     * The end, exactly once (unless freed first): status 200, or the
     * HTTP status of the failure with a message fit for a client.  text
     * is what was delivered of the answer, user_text the transcript,
     * session_id the conversation.
     */
    void (*done)(void *d, int status, const char *message, const char *text,
                 const char *user_text, const char *session_id);
} avc_vturn_cbs_t;

/* NULL when out of memory or when the request is malformed. */
avc_vturn_t *avc__vturn_start(const avc_vturn_req_t *req,
                              const avc_vturn_cbs_t *cbs, void *data);
/* Barge-in: stop the answer where it is; done follows (200, the text
 * delivered so far) once the shortened turn is stored. */
void avc__vturn_interrupt(avc_vturn_t *t);
/* The receiver can take audio again. */
void avc__vturn_resume(avc_vturn_t *t);
/* Cancel everything, no callbacks. */
void avc__vturn_free(avc_vturn_t *t);

#endif /* AVC_VOICE_INT_H */
