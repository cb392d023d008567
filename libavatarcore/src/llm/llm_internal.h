/*
 * Declarations shared by the files of src/llm (avc__ prefix); not
 * installed.
 *
 * llm.c holds the configuration, the dispatcher and the life of an
 * answer (avc_llm_op_t); each provider fills in the part of the op that
 * is its own.  The life of an op:
 *
 *   linked     in llm->ops from avc_llm_chat() until it finishes or is
 *              cancelled; op->llm is set exactly while linked, so a
 *              linked op may use its llm (avc_llm_free cancels them all)
 *   finished   avc__llm_finish() ran: on_done has been called (or is
 *              being called); a cancel is then a no-op
 *   cancelled  avc_llm_cancel() or avc_llm_free(): no callback follows
 *
 * Every entry from the loop into an op (an HTTP callback, a timer) is
 * bracketed by avc__llm_enter() and avc__llm_leave(): the caller's
 * callbacks may cancel the op, or free the whole client, from inside, so
 * the memory of an op is released only by the outermost leave (or at
 * once by a cancel from outside any entry).
 */
#ifndef AVC_LLM_INTERNAL_H
#define AVC_LLM_INTERNAL_H

#include "internal.h"

#include <avatarcore/llm.h>
#include <avatarcore/sse.h>

#include <jansson.h>

#define AVC__LLM_MODELS_MAX   8     /* llm.model and its fallbacks */
#define AVC__LLM_MODEL_LEN    200
#define AVC__LLM_FINISH_LEN   32

typedef enum {
    AVC__LLM_OFFLINE = 0,
    AVC__LLM_OPENAI             /* any OpenAI-compatible endpoint */
} avc__llm_kind_t;

struct avc_llm_s {
    avc_loop_t *loop;
    avc_http_t *http;           /* borrowed; NULL for offline */
    avc__llm_kind_t kind;
    const char *provider;       /* static: "openrouter", "offline"... */
    char *url;                  /* {base_url}/chat/completions */
    char *auth;                 /* "Bearer <key>" or NULL: a secret */
    char *key;                  /* scrubbed from logged messages */
    char *models[AVC__LLM_MODELS_MAX];  /* [0] llm.model, then fallbacks */
    size_t n_models;
    unsigned connect_ms;
    unsigned first_token_ms;    /* 0: no deadline */
    unsigned total_ms;          /* 0: no deadline */
    unsigned retries;           /* attempts per model, >= 1 */
    unsigned backoff_ms;
    unsigned max_tokens;
    unsigned context_window;
    unsigned offline_pace_ms;   /* between the offline answer's pieces */
    double temperature;
    avc__list_t ops;            /* running, and how many */
};

struct avc_llm_op_s {
    avc__link_t link;           /* in llm->ops; first: a link is the op */
    avc_llm_t *llm;             /* NULL once unlinked */
    avc__llm_kind_t kind;
    avc_llm_token_cb on_token;
    avc_llm_done_cb on_done;
    void *data;
    unsigned busy;              /* entries running, see above */
    unsigned canceled:1;
    unsigned finished:1;

    /* the result */
    const char *provider;       /* static */
    char model[AVC__LLM_MODEL_LEN + 1];     /* the model that answers */
    char finish[AVC__LLM_FINISH_LEN + 1];   /* "" when none */
    unsigned prompt_estimate;
    unsigned prompt_tokens;
    unsigned completion_tokens;
    int have_usage;
    size_t tokens_sent;
    size_t answer_bytes;
    avc__buf_t answer;          /* the text so far, for the estimate */

    avc_timer_t *first_timer;   /* no token yet: ETIMEDOUT */
    avc_timer_t *total_timer;   /* the whole answer: ETIMEDOUT */

    /* OpenAI-compatible streaming */
    json_t *body;               /* the request, "model" set per attempt */
    avc_http_req_t *req;        /* the running attempt, or NULL */
    avc_sse_t *sse;
    size_t model_i;             /* into llm->models */
    unsigned tries;             /* attempts of this model after a 2xx */
    uint64_t first_deadline;    /* loop ms, 0: none */
    uint64_t total_deadline;
    int status;                 /* of the attempt's response */
    int streaming;              /* text/event-stream, else buffered */
    int got_done;               /* [DONE] seen */
    int stop_err;               /* the stream was stopped with this */
    avc__buf_t resp;            /* non-streamed or error body (bounded) */
    char detail[256];           /* for the log: never to a client */

    /* offline */
    avc_timer_t *pace_timer;
    size_t off;                 /* next byte of answer to deliver */
};

/* llm.c */

/* Bracket an entry from the loop into op; leave may free it. */
void avc__llm_enter(avc_llm_op_t *op);
void avc__llm_leave(avc_llm_op_t *op);

/*
 * Give n bytes of answer to the caller.  Returns AVC_OK, or AVC_ECANCELED
 * when the op was cancelled from within the callback: then stop at once
 * and touch nothing but the op's own memory.
 */
int avc__llm_token(avc_llm_op_t *op, const char *p, size_t n);

/*
 * End the op with err (AVC_OK or an error code), calling on_done once
 * with a client-safe message for err; the provider's resources (request,
 * timers) are released first.  A no-op on a finished or cancelled op.
 */
void avc__llm_finish(avc_llm_op_t *op, int err);

/* The text of s[0..n) as a JSON string, invalid UTF-8 replaced (new). */
json_t *avc__llm_json_text(const char *s, size_t n);

/* s[0..n) as one printable log line in out, the key masked. */
void avc__llm_snippet(const avc_llm_t *llm, const char *s, size_t n,
                      char *out, size_t outn);

/* llm_openai.c */

/* Start an answer (callbacks only later, from the loop); the request is
 * copied into op->body.  AVC_OK, or an error and nothing started. */
int avc__llm_openai_start(avc_llm_op_t *op, const avc_llm_request_t *req);

/* Release what the provider holds (abort the request); no callback. */
void avc__llm_openai_stop(avc_llm_op_t *op);

#endif /* AVC_LLM_INTERNAL_H */
