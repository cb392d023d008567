/*
 * The OpenAI-compatible provider: POST {base}/chat/completions with
 * "stream": true, read as Server-Sent Events (OpenRouter, OpenAI,
 * llama.cpp, Ollama, vLLM all speak it).
 *
 * The stream, as these servers send it:
 *
 *   : OPENROUTER PROCESSING                  comments: keep-alives, skipped
 *   data: {"choices":[{"delta":{"role":"assistant","content":""}}]}
 *   data: {"choices":[{"delta":{"content":"Hello"}}]}     one token each
 *   data: {"choices":[{"delta":{},"finish_reason":"stop"}]}
 *   data: {"choices":[],"usage":{"prompt_tokens":..}}     include_usage
 *   data: [DONE]
 *
 * and, when the provider fails after the response began (OpenRouter),
 * a chunk with an "error" object instead, after which the body ends.
 *
 * Before the first token nothing has reached the caller, so a failure
 * may still be repaired: the HTTP client retries 429, 5xx and connect
 * failures (honouring Retry-After), a stream that breaks before its
 * first token is tried again, and then each fallback model in turn.
 * After the first token a failure ends the answer.  The first-token and
 * total deadlines are the op's own timers (llm.c); cancelling aborts the
 * request, which closes its connection.
 */
#include "llm_internal.h"

#include "json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* a successful body that is not a stream (the server ignored "stream") */
#define AVC_LLM_BODY_MAX    (4 * 1024 * 1024)
/* the part of an error body kept for the log */
#define AVC_LLM_ERRBODY_MAX (16 * 1024)
/* one SSE event (a chunk is a few hundred bytes) */
#define AVC_LLM_EVENT_MAX   (1024 * 1024)

static const char *const avc_llm_roles[] = { "system", "user", "assistant" };

static int avc_llm_attempt(avc_llm_op_t *op);

static void
avc_llm_detail(avc_llm_op_t *op, const char *what, const char *s, size_t n)
{
    char snip[161];

    avc__llm_snippet(op->llm, s, n, snip, sizeof(snip));
    snprintf(op->detail, sizeof(op->detail), "%s: %s", what, snip);
}

/* the message of an error object: {"message": ...} or a bare string */
static void
avc_llm_error_detail(avc_llm_op_t *op, const char *what, const json_t *e)
{
    const char *m = NULL;

    if (json_is_string(e)) {
        m = json_string_value(e);
    } else {
        avc__json_get_str(e, "message", &m);
    }
    if (m == NULL) {
        m = "(no message)";
    }
    avc_llm_detail(op, what, m, strlen(m));
}

/* the usage object of a chunk or a completion */
static void
avc_llm_usage(avc_llm_op_t *op, const json_t *root)
{
    const json_t *u = json_object_get(root, "usage");
    long long p, c;

    if (!json_is_object(u)
        || avc__json_get_int(u, "prompt_tokens", &p) != AVC_OK
        || avc__json_get_int(u, "completion_tokens", &c) != AVC_OK
        || p < 0 || c < 0 || p > 0xffffffffLL || c > 0xffffffffLL)
    {
        return;
    }
    op->prompt_tokens = (unsigned) p;
    op->completion_tokens = (unsigned) c;
    op->have_usage = 1;
}

/* the model that actually answers (OpenRouter names the routed one) */
static void
avc_llm_chunk_model(avc_llm_op_t *op, const json_t *root)
{
    const char *m;

    if (avc__json_get_str(root, "model", &m) == AVC_OK && *m
        && strlen(m) <= AVC__LLM_MODEL_LEN && strcmp(m, op->model) != 0)
    {
        snprintf(op->model, sizeof(op->model), "%s", m);
    }
}

static void
avc_llm_finish_reason(avc_llm_op_t *op, const json_t *choice)
{
    const char *f;

    if (avc__json_get_str(choice, "finish_reason", &f) == AVC_OK && *f) {
        snprintf(op->finish, sizeof(op->finish), "%s", f);
    }
}

/* one event of the stream; non-zero stops the parser */
static int
avc_llm_on_event(void *data, const char *type, const char *payload,
    size_t len, const char *id, int done)
{
    avc_llm_op_t *op = data;
    const json_t *e, *choices, *choice, *content;
    json_error_t jerr;
    json_t *root;
    int err = AVC_OK, rc = 0;

    if (op->got_done) {
        return 0;                       /* nothing counts after [DONE] */
    }
    if (done) {
        op->got_done = 1;
        return 0;
    }
    root = avc__json_parse(payload, len, 0, &err, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        if (err == AVC_ENOMEM) {
            op->stop_err = AVC_ENOMEM;
            return 1;
        }
        op->stop_err = AVC_EPROTO;
        avc_llm_detail(op, "a malformed chunk", payload, len);
        return 1;
    }
    e = json_object_get(root, "error");
    if (e != NULL && !json_is_null(e)) {
        op->stop_err = AVC_EUPSTREAM;
        avc_llm_error_detail(op, "an error in the stream", e);
        json_decref(root);
        return 1;
    }
    avc_llm_chunk_model(op, root);
    avc_llm_usage(op, root);
    choices = json_object_get(root, "choices");
    choice = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    if (json_is_object(choice)) {
        avc_llm_finish_reason(op, choice);
        content = json_object_get(json_object_get(choice, "delta"),
                                  "content");
        if (json_is_string(content) && json_string_length(content) > 0
            && avc__llm_token(op, json_string_value(content),
                              json_string_length(content)) != AVC_OK)
        {
            rc = 1;                     /* cancelled by the caller */
        }
    }
    json_decref(root);
    return rc;
}

static int
avc_llm_on_response(avc_http_req_t *req, int status, void *data)
{
    avc_llm_op_t *op = data;
    const char *ct = avc_http_resp_header(req, "Content-Type");

    op->status = status;
    op->streaming = status >= 200 && status <= 299 && ct != NULL
                    && strncasecmp(ct, "text/event-stream", 17) == 0;
    return 0;
}

static int
avc_llm_on_data(avc_http_req_t *req, const char *p, size_t n, void *data)
{
    avc_llm_op_t *op = data;
    size_t max, room;
    int rc, stop = 0;

    avc__llm_enter(op);
    if (!op->streaming && op->resp.len == 0 && n > 0
        && (*p == ':' || *p == 'd') && op->status >= 200
        && op->status <= 299)
    {
        /* a stream under another Content-Type (or none) */
        op->streaming = n >= 5 ? *p == ':' || memcmp(p, "data:", 5) == 0
                               : *p == ':';
    }
    if (op->canceled || op->finished) {
        stop = 1;
    } else if (op->streaming) {
        rc = avc_sse_feed(op->sse, p, n);
        if (rc != AVC_OK) {
            stop = 1;
            if (rc == AVC_ETOOBIG) {
                op->stop_err = AVC_EPROTO;
                snprintf(op->detail, sizeof(op->detail), "an event of "
                         "over %d bytes", AVC_LLM_EVENT_MAX);
            } else if (op->stop_err == AVC_OK && !op->canceled) {
                op->stop_err = rc == AVC_ENOMEM ? AVC_ENOMEM : AVC_EPROTO;
            }
        }
    } else {
        max = op->status >= 200 && op->status <= 299 ? AVC_LLM_BODY_MAX
                                                     : AVC_LLM_ERRBODY_MAX;
        room = max - op->resp.len;
        if (n > room && max == AVC_LLM_BODY_MAX) {
            op->stop_err = AVC_EPROTO;
            snprintf(op->detail, sizeof(op->detail), "an answer of over "
                     "%d bytes", AVC_LLM_BODY_MAX);
            stop = 1;
        } else if (avc__buf_append(&op->resp, p, n < room ? n : room)
                   != AVC_OK)
        {
            op->stop_err = AVC_ENOMEM;
            stop = 1;
        }
    }
    avc__llm_leave(op);
    return stop;
}

/* a complete, non-streamed answer: one token */
static int
avc_llm_whole(avc_llm_op_t *op)
{
    const json_t *e, *choice, *content;
    json_error_t jerr;
    json_t *root;
    int err = AVC_OK, rc = AVC_OK;

    root = avc__json_parse(op->resp.data ? op->resp.data : "", op->resp.len,
                           0, &err, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        if (err == AVC_ENOMEM) {
            return AVC_ENOMEM;
        }
        avc_llm_detail(op, "a malformed answer", op->resp.data,
                       op->resp.len);
        return AVC_EPROTO;
    }
    e = json_object_get(root, "error");
    if (e != NULL && !json_is_null(e)) {
        avc_llm_error_detail(op, "an error", e);
        json_decref(root);
        return AVC_EUPSTREAM;
    }
    avc_llm_chunk_model(op, root);
    avc_llm_usage(op, root);
    choice = json_array_get(json_object_get(root, "choices"), 0);
    content = json_object_get(json_object_get(choice, "message"), "content");
    if (!json_is_string(content)) {
        avc_llm_detail(op, "an answer without a message", op->resp.data,
                       op->resp.len);
        json_decref(root);
        return AVC_EPROTO;
    }
    avc_llm_finish_reason(op, choice);
    if (json_string_length(content) > 0) {
        rc = avc__llm_token(op, json_string_value(content),
                            json_string_length(content));
    }
    json_decref(root);
    return rc;
}

/* how the attempt ended: AVC_OK or the error for the caller */
static int
avc_llm_outcome(avc_llm_op_t *op, avc_http_req_t *req, int err)
{
    const json_t *e;
    json_t *root;
    int rc;

    if (op->stop_err != AVC_OK) {
        return op->stop_err;
    }
    if (err != AVC_OK) {
        snprintf(op->detail, sizeof(op->detail), "%s after %u attempt(s)",
                 avc_strerror(err), avc_http_req_attempts(req));
        switch (err) {
        case AVC_ETIMEDOUT:
        case AVC_ENOMEM:
        case AVC_ECONNECT:
            return err;
        default:
            return AVC_EHTTP;
        }
    }
    if (op->status < 200 || op->status > 299) {
        root = op->resp.len ? avc__json_parse(op->resp.data, op->resp.len,
                                              0, &rc, NULL)
                            : NULL;
        e = json_object_get(root, "error");
        if (e != NULL && !json_is_null(e)) {
            avc_llm_error_detail(op, "status", e);
        } else {
            avc_llm_detail(op, "status", op->resp.data, op->resp.len);
        }
        json_decref(root);
        rc = (int) strlen(op->detail);
        snprintf(op->detail + rc, sizeof(op->detail) - (size_t) rc,
                 " (%d after %u attempt(s))", op->status,
                 avc_http_req_attempts(req));
        return AVC_EUPSTREAM;
    }
    if (!op->streaming) {
        return avc_llm_whole(op);
    }
    rc = avc_sse_finish(op->sse);
    if (op->got_done || (rc == AVC_OK && op->finish[0])) {
        return AVC_OK;
    }
    snprintf(op->detail, sizeof(op->detail), "the stream ended before "
             "[DONE]%s", rc == AVC_OK ? "" : " in mid-event");
    return AVC_EPROTO;
}

/* a failure: try again, or another model, or give up */
static void
avc_llm_failed(avc_llm_op_t *op, int err)
{
    avc_llm_t *llm = op->llm;
    const char *what = NULL;
    int rc;

    /* a connect failure or a deadline would only repeat itself: every
     * model is behind the same URL */
    if (op->tokens_sent == 0 && err != AVC_ETIMEDOUT && err != AVC_ENOMEM
        && err != AVC_ECONNECT)
    {
        /* a final error status comes after the HTTP client's retries */
        if ((op->status == 0 || (op->status >= 200 && op->status <= 299))
            && op->tries + 1 < llm->retries)
        {
            op->tries++;
            what = "trying again";
        } else if (op->model_i + 1 < llm->n_models) {
            op->model_i++;
            op->tries = 0;
            what = "trying the next model";
        }
    }
    avc_log(AVC_LOG_WARN, "llm: %s %s: %s after %zu token(s): %s%s%s",
            op->provider, op->model, avc_strerror(err), op->tokens_sent,
            op->detail[0] ? op->detail : avc_strerror(err),
            what ? "; " : "", what ? what : "");
    if (what != NULL) {
        rc = avc_llm_attempt(op);
        if (rc == AVC_OK) {
            return;
        }
        err = rc;
    }
    avc__llm_finish(op, err);
}

static void
avc_llm_on_done(avc_http_req_t *req, int err, void *data)
{
    avc_llm_op_t *op = data;
    int rc;

    avc__llm_enter(op);
    op->req = NULL;
    if (!op->canceled && !op->finished) {
        rc = avc_llm_outcome(op, req, err);
        if (op->canceled) {
            /* the caller cancelled from the token of a whole answer */
        } else if (rc == AVC_OK) {
            avc__llm_finish(op, AVC_OK);
        } else {
            avc_llm_failed(op, rc);
        }
    }
    avc__llm_leave(op);
}

/* start one attempt at op->models[model_i] */
static int
avc_llm_attempt(avc_llm_op_t *op)
{
    avc_llm_t *llm = op->llm;
    const char *model = llm->models[op->model_i];
    avc_http_req_t *req;
    uint64_t now;
    char *json;
    int rc = AVC_OK;

    op->status = 0;
    op->streaming = 0;
    op->got_done = 0;
    op->stop_err = AVC_OK;
    op->have_usage = 0;
    op->finish[0] = '\0';
    op->detail[0] = '\0';
    avc__buf_reset(&op->resp);
    snprintf(op->model, sizeof(op->model), "%s", model);
    avc_sse_free(op->sse);
    op->sse = avc_sse_new(AVC_LLM_EVENT_MAX, avc_llm_on_event, NULL, op);
    if (op->sse == NULL
        || json_object_set_new(op->body, "model", json_string(model)) != 0)
    {
        return AVC_ENOMEM;
    }
    json = json_dumps(op->body, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (json == NULL) {
        return AVC_ENOMEM;
    }
    req = avc_http_req_new(llm->http, "POST", llm->url);
    if (req == NULL) {
        free(json);
        return AVC_ENOMEM;
    }
    avc_http_req_take_body(req, json, strlen(json));
    avc_http_req_add_header(req, "Content-Type", "application/json");
    avc_http_req_add_header(req, "Accept", "text/event-stream");
    if (llm->auth) {
        avc_http_req_add_header(req, "Authorization", llm->auth);
    }
    if (strcmp(llm->provider, "openrouter") == 0) {
        avc_http_req_add_header(req, "X-Title", "Avatar Adam");
    }
    now = avc_loop_now(llm->loop);
    avc_http_req_set_timeouts(req, llm->connect_ms,
                              avc__ms_left(op->first_deadline, now),
                              avc__ms_left(op->total_deadline, now));
    avc_http_req_set_retry(req, llm->retries, llm->backoff_ms);
    avc_http_req_set_callbacks(req, avc_llm_on_response, avc_llm_on_data,
                               avc_llm_on_done, op);
    rc = avc_http_req_start(req);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_ERR, "llm: %s %s: cannot start the request: %s",
                op->provider, model, avc_strerror(rc));
        return rc;
    }
    op->req = req;
    return AVC_OK;
}

static json_t *
avc_llm_body(const avc_llm_t *llm, const avc_llm_request_t *r)
{
    json_t *body, *msgs, *m, *opts;
    const char *text;
    size_t i;
    int rc = 0;

    body = json_object();
    msgs = json_array();
    opts = json_object();
    if (body == NULL || msgs == NULL || opts == NULL) {
        json_decref(body);
        json_decref(msgs);
        json_decref(opts);
        return NULL;
    }
    /* "model" first, for people reading logs; set per attempt */
    rc |= json_object_set_new(body, "model", json_string(llm->models[0]));
    rc |= json_object_set_new(body, "messages", msgs);
    for (i = 0; i < r->n_messages && rc == 0; i++) {
        text = r->messages[i].content ? r->messages[i].content : "";
        m = json_object();
        rc |= json_array_append_new(msgs, m);
        rc |= json_object_set_new(m, "role",
                                  json_string(avc_llm_roles[
                                      r->messages[i].role]));
        rc |= json_object_set_new(m, "content",
                                  avc__llm_json_text(text, strlen(text)));
    }
    rc |= json_object_set_new(body, "stream", json_true());
    rc |= json_object_set_new(opts, "include_usage", json_true());
    rc |= json_object_set_new(body, "stream_options", opts);
    rc |= json_object_set_new(body, "max_tokens",
                              json_integer(r->max_tokens ? r->max_tokens
                                                         : llm->max_tokens));
    rc |= json_object_set_new(body, "temperature",
                              json_real(llm->temperature));
    if (rc != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int
avc__llm_openai_start(avc_llm_op_t *op, const avc_llm_request_t *req)
{
    avc_llm_t *llm = op->llm;
    uint64_t now = avc_loop_now(llm->loop);

    op->body = avc_llm_body(llm, req);
    if (op->body == NULL) {
        return AVC_ENOMEM;
    }
    op->first_deadline = llm->first_token_ms ? now + llm->first_token_ms : 0;
    op->total_deadline = llm->total_ms ? now + llm->total_ms : 0;
    op->model_i = 0;
    op->tries = 0;
    return avc_llm_attempt(op);
}

void
avc__llm_openai_stop(avc_llm_op_t *op)
{
    if (op->req) {
        avc_http_cancel(op->req);
        op->req = NULL;
    }
    /* the parser may be running below us (a token callback cancelled) */
    if (op->busy == 0) {
        avc_sse_free(op->sse);
        op->sse = NULL;
    }
    json_decref(op->body);
    op->body = NULL;
}
