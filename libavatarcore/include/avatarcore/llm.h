/*
 * avatarcore/llm.h - the language-model provider interface.
 *
 * One interface, several providers:
 *   "openrouter", "openai", "local"  any OpenAI-compatible
 *                 /chat/completions endpoint, streamed (SSE), by base URL
 *   "offline"     the embedded default: answers training questions from
 *                 the retrieved passages (cited) and plays a role-play
 *                 customer from the scenario, with no network at all
 *
 * A request carries the rendered prompt (messages, system first) for the
 * model, and beside it the structured material the prompt was made from
 * (passages, scenario), which the offline responder uses instead of
 * reading prose.  Text reaches the caller piece by piece through the token
 * callback as it arrives; the done callback is called exactly once, after
 * the last token, unless the operation was cancelled first.
 *
 * Configuration keys read by avc_llm_new() (prefix "llm."):
 *   llm.provider             openrouter | openai | local | offline
 *                            (default: openrouter when llm.key is set,
 *                            else offline)
 *   llm.base_url             default https://openrouter.ai/api/v1
 *                            (https://api.openai.com/v1 for openai)
 *   llm.model                default openai/gpt-4o (gpt-4o for openai)
 *   llm.fallback_models      comma-separated models tried in turn when
 *                            the first fails before its first token
 *   llm.key                  the API key (Bearer); may be empty for local
 *   llm.connect_timeout      ms, default 5000
 *   llm.first_token_timeout  ms from avc_llm_chat() to the first token,
 *                            retries and fallbacks included (comment
 *                            keep-alives do not count); default 30000,
 *                            0 none
 *   llm.timeout              ms for the whole answer, default 120000,
 *                            0 none
 *   llm.retries              attempts per model on 429/5xx/connect
 *                            failures, or a stream that breaks, before
 *                            the first token, default 2
 *   llm.backoff              ms before the first retry (doubling, with
 *                            jitter; a longer Retry-After wins),
 *                            default 250
 *   llm.max_tokens           completion cap, default 800
 *   llm.temperature          default 0.4
 *   llm.context_window       the model's window in tokens, default 128000
 *   llm.offline_pace         offline: ms between the pieces (a few words
 *                            each) of an answer, default 0 (each on the
 *                            next loop iteration)
 *
 * For the OpenAI-compatible providers (base_url defaults: openrouter
 * https://openrouter.ai/api/v1, openai https://api.openai.com/v1, local
 * http://127.0.0.1:8080/v1 with model "local") the request is
 * POST {base_url}/chat/completions with "stream": true and
 * "stream_options": {"include_usage": true}.  Nothing is retried after
 * the first token: a failure then ends the answer (tokens_sent > 0).
 */
#ifndef AVATARCORE_LLM_H
#define AVATARCORE_LLM_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/http.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_llm_s avc_llm_t;
typedef struct avc_llm_op_s avc_llm_op_t;

typedef enum {
    AVC_LLM_SYSTEM = 0,
    AVC_LLM_USER,
    AVC_LLM_ASSISTANT
} avc_llm_role_t;

typedef struct {
    avc_llm_role_t  role;
    const char     *content;
} avc_llm_msg_t;

/* A retrieved passage the answer may use. */
typedef struct {
    const char *title;          /* "" when none */
    const char *filename;
    const char *topic;
    const char *content;
    double      score;          /* 0-1 */
} avc_llm_passage_t;

/* A role-play scenario (the format of the scenario files). */
typedef struct {
    const char         *id;
    const char         *customer_profile;
    const char         *product;
    const char         *opening_line;
    const char *const  *objections;        /* n_objections */
    size_t              n_objections;
    const char *const  *good_trainee_moves; /* n_moves */
    size_t              n_moves;
} avc_scenario_t;

typedef enum {
    AVC_LLM_TRAINING = 0,
    AVC_LLM_ROLEPLAY
} avc_llm_mode_t;

typedef struct {
    avc_llm_mode_t            mode;
    const avc_llm_msg_t      *messages;     /* system first, user last */
    size_t                    n_messages;
    const avc_llm_passage_t  *passages;     /* training: what was found */
    size_t                    n_passages;
    const avc_scenario_t     *scenario;     /* role-play; else NULL */
    unsigned                  max_tokens;   /* 0: llm.max_tokens */
} avc_llm_request_t;

/* What an answer cost and how it ended (borrowed, valid in the callback). */
typedef struct {
    const char *provider;       /* "openrouter", "offline" ... */
    const char *model;          /* the model that answered */
    const char *finish_reason;  /* "stop", "length" ... or NULL */
    unsigned    prompt_tokens;  /* as reported, else estimated */
    unsigned    completion_tokens;
    int         usage_estimated; /* 1 when the provider gave no usage */
    size_t      tokens_sent;    /* token callbacks made */
    /* on error: a message fit for a client ("The language model did not
     * answer in time"), never a key or an upstream body */
    const char *error;
} avc_llm_result_t;

typedef void (*avc_llm_token_cb)(const char *text, size_t len, void *data);
/*
 * err: AVC_OK; AVC_ETIMEDOUT (a deadline passed: 504); AVC_EUPSTREAM,
 * AVC_EPROTO, AVC_EHTTP, AVC_ECONNECT (the provider failed: 502).  When
 * res->tokens_sent > 0 the failure came mid-answer.
 */
typedef void (*avc_llm_done_cb)(int err, const avc_llm_result_t *res,
                                void *data);

/* NULL with *err set on a bad configuration (logged with the key). */
AVC_API avc_llm_t *avc_llm_new(avc_loop_t *loop, avc_http_t *http,
                               const avc_config_t *cfg, int *err);
/* Cancels running answers (no callbacks) and frees. */
AVC_API void avc_llm_free(avc_llm_t *llm);

AVC_API const char *avc_llm_provider(const avc_llm_t *llm);
AVC_API const char *avc_llm_model(const avc_llm_t *llm);
/* the window the prompt must fit, in tokens */
AVC_API unsigned avc_llm_context_window(const avc_llm_t *llm);
AVC_API unsigned avc_llm_max_tokens(const avc_llm_t *llm);

/*
 * Start an answer.  The request and everything it points to are copied as
 * needed; they may be freed when this returns.  *op (optional) can cancel
 * it: the upstream request is aborted and no callback follows.
 */
AVC_API int avc_llm_chat(avc_llm_t *llm, const avc_llm_request_t *req,
                         avc_llm_token_cb on_token, avc_llm_done_cb on_done,
                         void *data, avc_llm_op_t **op);
AVC_API void avc_llm_cancel(avc_llm_op_t *op);

/* Answers running now, for tests and /metrics. */
AVC_API size_t avc_llm_active(const avc_llm_t *llm);

/* An approximate token count of UTF-8 text (about 4 bytes a token,
 * words and punctuation counted), for budgets. */
AVC_API unsigned avc_llm_count_tokens(const char *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_LLM_H */
