/*
 * POST /api/v1/chat/: a question to Adam (training) or a turn of a
 * role-play, answered as JSON or streamed as Server-Sent Events.
 *
 * The steps of one answer:
 *   1. validate the body; authenticate; decide the dealership
 *   2. load the dealership (knowledge base state, generation) and the
 *      session (owner-checked) in one query, then the session's history
 *   3. training: embed the question and look in the semantic answer cache
 *      of the dealership (same generation); a hit is answered at once
 *   4. training: retrieve passages (hybrid, under the relevance floor);
 *      role-play: pick the scenario
 *   5. build the prompt within the model's window; stream the answer from
 *      the language model, token by token to an SSE client
 *   6. store both turns and the usage in one transaction, then answer
 *      (JSON) or send "sources" and "done" (SSE); training answers go into
 *      the semantic cache
 * Freeing the call at any point (the client went away) cancels whatever
 * runs: the embedding, the retrieval, the upstream model request.
 */
#include "chat_int.h"

#include <avatarcore/cache.h>
#include <avatarcore/embed.h>
#include <avatarcore/llm.h>
#include <avatarcore/prompt.h>
#include <avatarcore/retrieve.h>

#include <openssl/rand.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AVC_CHAT_MESSAGE_MAX   5000     /* characters of a question */
#define AVC_CHAT_HISTORY_MAX   100      /* client-sent turns accepted */
#define AVC_CHAT_TURN_MAX      20000    /* characters of one such turn */
#define AVC_CHAT_TITLE_MAX     60

typedef struct {
    /* the request */
    char *message;
    int roleplay;
    int mode_given;
    char session_id[AVC_CHAT_SESSION_MAX + 1];
    long long dealership_req;
    int has_dealership_req;
    char *scenario_req;
    json_t *client_history;     /* [{role, content}] user/assistant only */
    int sse;

    /* loaded */
    long long did;
    char did_s[24];
    char uid_s[24];
    char *dealership_name;
    json_t *rag_config;
    long long generation;
    long long conv_id;          /* 0: a new conversation */
    char *cleared_at;
    const avc_scenario_t *scenario;
    json_t *history;            /* [[role, content]] oldest first */

    /* training */
    avc_embed_op_t *eop;
    float *qvec;
    size_t dim;
    int qvec_stale;             /* the answer rests on the session's
                                   context: not a cacheable answer */
    avc_retrieve_op_t *rop;
    json_t *passages;           /* [{title, filename, topic, content,
                                   score}] best first */
    json_t *sources;            /* the API's sources, or NULL */

    /* the answer */
    avc_llm_op_t *lop;
    avc__buf_t answer;
    char *provider;
    char *model;
    unsigned prompt_tokens;
    unsigned completion_tokens;
    int cache_hit;
    int held;                   /* generated, waiting for its release */
    uint64_t t0;
    char timestamp[40];
} avc_chat_t;

static void avc_chat_answer(avc_call_t *call);
static void avc_chat_store(avc_call_t *call);

static void
avc_chat_free(void *p)
{
    avc_chat_t *c = p;

    if (c == NULL) {
        return;
    }
    if (c->eop) {
        avc_embed_cancel(c->eop);
    }
    if (c->rop) {
        avc_retrieve_cancel(c->rop);
    }
    if (c->lop) {
        avc_llm_cancel(c->lop);
    }
    free(c->message);
    free(c->scenario_req);
    json_decref(c->client_history);
    free(c->dealership_name);
    json_decref(c->rag_config);
    free(c->cleared_at);
    json_decref(c->history);
    free(c->qvec);
    json_decref(c->passages);
    json_decref(c->sources);
    avc__buf_free(&c->answer);
    free(c->provider);
    free(c->model);
    free(c);
}

/* shared helpers */

int
avc__chat_session_ok(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= AVC_CHAT_SESSION_MAX
           && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789._:-") == n;
}

int
avc__chat_new_session(char out[37])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return AVC_ESYS;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return AVC_OK;
}

long long
avc__chat_dealership(avc_call_t *call, long long requested, int has)
{
    if (avc__is_sa(&call->who)) {
        if (!has) {
            avc__call_invalid(call, "dealership_id", "missing",
                              "Super admin must specify dealership_id");
            return 0;
        }
        return requested;
    }
    if (call->who.dealership_id == 0) {
        avc__call_error(call, 422, "User is not assigned to a dealership");
        return 0;
    }
    if (has && requested != call->who.dealership_id) {
        avc__call_error(call, 404, "Dealership not found");
        return 0;
    }
    return call->who.dealership_id;
}

/* now, as the API writes times: 2026-11-21T10:00:00.123456Z */
void
avc__chat_now(char out[40])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int) (ts.tv_nsec / 1000) % 1000000);
}

/* SSE */

static int
avc_chat_event(avc_call_t *call, const char *event, json_t *data)
{
    avc__buf_t b;
    char *s;
    int rc;

    s = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(data);
    if (s == NULL) {
        return AVC_ENOMEM;
    }
    avc__buf_init(&b);
    rc = avc__buf_printf(&b, "event: %s\ndata: %s\n\n", event, s);
    free(s);
    if (rc == AVC_OK) {
        rc = avc__call_stream_write(call, b.data, b.len);
    }
    avc__buf_free(&b);
    return rc;
}

static int
avc_chat_sse_begin(avc_call_t *call)
{
    avc_chat_t *c = call->op;

    if (call->streaming || (call->writer == NULL && call->status)) {
        return AVC_OK;
    }
    avc__call_add_header(call, "X-Avatar-Cache", c->cache_hit ? "hit"
                                                              : "miss");
    avc__call_add_header(call, "X-Accel-Buffering", "no");
    return avc__call_stream_begin(call, 200, "text/event-stream");
}

/* a failure: JSON before anything was sent, else an SSE "error" event */
static void
avc_chat_fail(avc_call_t *call, int status, const char *message)
{
    avc_chat_t *c = call->op;

    if (c->sse && (call->streaming || call->status == 200)) {
        (void) avc_chat_event(call, "error",
                              json_pack("{s:s, s:s, s:i}", "message",
                                        message, "type",
                                        avc_error_type(status), "status",
                                        status));
        avc__call_stream_end(call);
        return;
    }
    avc__call_error(call, status, message);
}

/* 1. the request */

static const char *const avc_chat_modes[] = { "training", "roleplay", NULL };

static int
avc_chat_parse(avc_call_t *call, avc_chat_t *c)
{
    avc__v_t v;
    const char *message = NULL, *mode = NULL, *sid = NULL, *scen = NULL;
    json_t *hist, *t;
    size_t i;
    int rc;

    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return AVC_EPARSE;
    }
    avc__v_str(&v, "message", 1, 1, AVC_CHAT_MESSAGE_MAX, &message);
    if (avc__v_enum(&v, "mode", 0, avc_chat_modes, &mode) == 1) {
        c->mode_given = 1;
        c->roleplay = strcmp(mode, "roleplay") == 0;
    }
    if (avc__v_str(&v, "session_id", 0, 1, AVC_CHAT_SESSION_MAX, &sid) == 1
        && !avc__chat_session_ok(sid))
    {
        avc__v_fail(&v, "session_id", "string_pattern_mismatch",
                    "Session id may hold only letters, digits and . _ : -");
    }
    rc = avc__v_int(&v, "dealership_id", 0, 1, LLONG_MAX,
                    &c->dealership_req);
    c->has_dealership_req = rc == 1;
    avc__v_str(&v, "scenario_id", 0, 1, 100, &scen);

    hist = json_object_get(v.body, "conversation_history");
    if (hist && !json_is_null(hist)) {
        if (!json_is_array(hist)
            || json_array_size(hist) > AVC_CHAT_HISTORY_MAX)
        {
            avc__v_fail(&v, "conversation_history", "list_type",
                        "Must be a list of at most 100 {role, content}");
        } else {
            c->client_history = json_array();
            json_array_foreach(hist, i, t) {
                json_t *role = json_object_get(t, "role");
                json_t *content = json_object_get(t, "content");

                if (!json_is_object(t) || !json_is_string(role)
                    || !json_is_string(content)
                    || json_string_length(content) > AVC_CHAT_TURN_MAX)
                {
                    avc__v_fail(&v, "conversation_history", "value_error",
                                "Each turn must be {role, content} with "
                                "content up to 20000 characters");
                    break;
                }
                /* only user and assistant turns: a client never speaks
                 * for the system */
                if (strcmp(json_string_value(role), "user") != 0
                    && strcmp(json_string_value(role), "assistant") != 0)
                {
                    continue;
                }
                json_array_append_new(c->client_history,
                                      json_pack("[OO]", role, content));
            }
        }
    }
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_EPARSE;
    }
    c->message = strdup(message);
    c->scenario_req = scen ? strdup(scen) : NULL;
    if (sid) {
        snprintf(c->session_id, sizeof(c->session_id), "%s", sid);
    }
    avc__v_end(&v);
    if (c->message == NULL || (scen && c->scenario_req == NULL)
        || (hist && c->client_history == NULL && json_is_array(hist)))
    {
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

/* 2. the dealership, the session, the history */

static void
avc_chat_history_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_chat_t *c = call->op;
    int i, n;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    n = avc_db_res_rows(res);
    for (i = n - 1; i >= 0; i--) {
        json_array_append_new(c->history,
                              json_pack("[ss]", avc_db_res_value(res, i, 0),
                                        avc_db_res_value(res, i, 1)));
    }
    avc_chat_answer(call);
}

static void
avc_chat_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_chat_t *c = call->op;
    const char *p[3];
    char conv[24], limit[16];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        avc__call_error(call, 404, "Dealership not found");
        return;
    }
    c->dealership_name = strdup(avc_db_res_value(res, 0, 0));
    if (!avc_db_res_isnull(res, 0, 1)) {
        c->rag_config = json_loads(avc_db_res_value(res, 0, 1), 0, NULL);
    }
    c->generation = strtoll(avc_db_res_value(res, 0, 2), NULL, 10);
    c->history = json_array();
    if (c->dealership_name == NULL || c->history == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    if (!avc_db_res_isnull(res, 0, 3)) {
        const char *mode = avc_db_res_value(res, 0, 5);
        int roleplay = strcmp(mode, "roleplay") == 0;

        /* another user's session is reported like a missing one */
        if (strtoll(avc_db_res_value(res, 0, 4), NULL, 10) != call->who.id
            || strtoll(avc_db_res_value(res, 0, 7), NULL, 10) != c->did)
        {
            avc__call_error(call, 404, "Session not found");
            return;
        }
        if (c->mode_given && roleplay != c->roleplay) {
            char msg[200];

            snprintf(msg, sizeof(msg), "Session %s is a %s session",
                     c->session_id, mode);
            avc__call_error(call, 422, msg);
            return;
        }
        c->roleplay = roleplay;
        c->conv_id = strtoll(avc_db_res_value(res, 0, 3), NULL, 10);
        if (!avc_db_res_isnull(res, 0, 6) && c->scenario_req == NULL) {
            c->scenario_req = strdup(avc_db_res_value(res, 0, 6));
        }
        if (!avc_db_res_isnull(res, 0, 8)) {
            c->cleared_at = strdup(avc_db_res_value(res, 0, 8));
        }
    }
    if (!c->roleplay && call->spoken != AVC__SPOKEN_FAST
        && !json_is_true(json_object_get(c->rag_config, "initialized")))
    {
        char msg[400];

        snprintf(msg, sizeof(msg), "RAG not initialized for your "
                 "dealership '%s'. Ask an administrator to initialize the "
                 "knowledge base first.", c->dealership_name);
        avc__call_error(call, 422, msg);
        return;
    }
    if (c->roleplay) {
        c->scenario = c->scenario_req
                      ? avc_scenarios_find(call->app->scenarios,
                                           c->scenario_req)
                      : avc_scenarios_random(call->app->scenarios);
        if (c->scenario == NULL) {
            avc__call_error(call, 422, c->scenario_req
                                       ? "Unknown role-play scenario"
                                       : "No role-play scenario available");
            return;
        }
    }
    if (c->conv_id == 0) {
        /* a new conversation: the client's turns, if any, are its past */
        size_t i;
        json_t *t;

        json_array_foreach(c->client_history, i, t) {
            json_array_append(c->history, t);
        }
        avc_chat_answer(call);
        return;
    }
    snprintf(conv, sizeof(conv), "%lld", c->conv_id);
    snprintf(limit, sizeof(limit), "%lld", call->app->history_turns);
    p[0] = conv;
    p[1] = c->cleared_at;
    p[2] = limit;
    if (avc__q(call, "SELECT role, content FROM messages"
               " WHERE conversation_id = $1::bigint"
               " AND ($2::timestamptz IS NULL OR created_at > $2)"
               " ORDER BY id DESC LIMIT $3::int", 3, p,
               avc_chat_history_loaded) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_chat_authed(avc_call_t *call)
{
    avc_chat_t *c = call->op;
    const char *p[2];

    c->did = avc__chat_dealership(call, c->dealership_req,
                                  c->has_dealership_req);
    if (c->did == 0) {
        return;
    }
    snprintf(c->did_s, sizeof(c->did_s), "%lld", c->did);
    snprintf(c->uid_s, sizeof(c->uid_s), "%lld", call->who.id);
    if (c->session_id[0] == '\0'
        && avc__chat_new_session(c->session_id) != AVC_OK)
    {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    p[0] = c->did_s;
    p[1] = c->session_id;
    if (avc__q(call, "SELECT d.name, d.rag_config::text, d.generation,"
               " c.id, c.user_id, c.mode, c.scenario_id, c.dealership_id,"
               " c.cleared_at"
               " FROM dealerships d"
               " LEFT JOIN conversations c ON c.session_id = $2"
               " WHERE d.id = $1::bigint AND d.is_active", 2, p,
               avc_chat_loaded) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_chat(avc_call_t *call)
{
    avc_chat_t *c;
    const char *accept;
    int rc;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return AVC_ENOMEM;
    }
    avc__buf_init(&c->answer);
    call->op = c;
    call->op_free = avc_chat_free;
    c->t0 = avc_loop_now(call->app->loop);
    accept = avc_call_header(call, "Accept");
    c->sse = accept && strstr(accept, "text/event-stream") != NULL;

    rc = avc_chat_parse(call, c);
    if (rc == AVC_EPARSE) {
        return AVC_OK;          /* answered 422 */
    }
    if (rc != AVC_OK) {
        return rc;
    }
    avc__authenticate(call, avc_chat_authed);
    return AVC_OK;
}

/* 3-5. the answer */

static void
avc_chat_on_token(const char *text, size_t len, void *data)
{
    avc_call_t *call = data;
    avc_chat_t *c = call->op;

    if (avc__buf_append(&c->answer, text, len) != AVC_OK) {
        return;
    }
    if (c->sse) {
        if (avc_chat_sse_begin(call) != AVC_OK
            || avc_chat_event(call, "token",
                              json_pack("{s:s%}", "text", text, len))
               != AVC_OK)
        {
            /* the client is gone: the host frees the call, which
             * cancels the model request */
            return;
        }
    }
}

static void
avc_chat_on_done(int err, const avc_llm_result_t *res, void *data)
{
    avc_call_t *call = data;
    avc_chat_t *c = call->op;

    c->lop = NULL;
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "chat: %s %s failed: %s", res->provider,
                res->model ? res->model : "-", avc_strerror(err));
        avc_chat_fail(call, err == AVC_ETIMEDOUT ? 504 : 502,
                      res->error ? res->error
                                 : "The language model failed to answer");
        return;
    }
    c->provider = strdup(res->provider);
    c->model = res->model ? strdup(res->model) : NULL;
    c->prompt_tokens = res->prompt_tokens;
    c->completion_tokens = res->completion_tokens;
    if (c->provider == NULL) {
        avc_chat_fail(call, 500, "Internal server error");
        return;
    }
    if (call->hold) {
        c->held = 1;
        if (c->sse && avc_chat_sse_begin(call) == AVC_OK) {
            (void) avc_chat_event(call, "generated",
                                  json_pack("{s:s, s:i}", "provider",
                                            c->provider, "completion_tokens",
                                            (int) c->completion_tokens));
        }
        return;
    }
    avc_chat_store(call);
}

void
avc__chat_release(avc_call_t *call, const char *text, size_t len)
{
    avc_chat_t *c = call->op;
    avc_app_t *app = call->app;

    if (c == NULL || !call->hold) {
        return;
    }
    call->hold = 0;
    if (c->lop) {
        /* cut short: the model stops, the turn keeps what was heard */
        avc_llm_cancel(c->lop);
        c->lop = NULL;
        c->provider = strdup(avc_llm_provider(app->llm));
        c->completion_tokens = avc_llm_count_tokens(c->answer.data
                                                    ? c->answer.data : "",
                                                    c->answer.len);
        if (c->provider == NULL) {
            avc_chat_fail(call, 500, "Internal server error");
            return;
        }
    } else if (!c->held) {
        return;                 /* not generated yet, nor running */
    }
    if (text) {
        c->answer.len = 0;
        if (avc__buf_append(&c->answer, text, len) != AVC_OK) {
            avc_chat_fail(call, 500, "Internal server error");
            return;
        }
    }
    c->held = 0;
    avc_chat_store(call);
}

static void
avc_chat_ask(avc_call_t *call)
{
    avc_chat_t *c = call->op;
    avc_app_t *app = call->app;
    avc_prompt_input_t in;
    avc_llm_request_t req;
    avc_llm_passage_t *ps = NULL;
    avc_llm_msg_t *hist = NULL;
    avc_prompt_t *prompt;
    const avc_llm_msg_t *msgs;
    size_t i, n, np, nh;
    json_t *t;
    int err;

    np = json_array_size(c->passages);
    nh = json_array_size(c->history);
    ps = calloc(np + 1, sizeof(*ps));
    hist = calloc(nh + 1, sizeof(*hist));
    if (ps == NULL || hist == NULL) {
        free(ps);
        free(hist);
        avc_chat_fail(call, 500, "Internal server error");
        return;
    }
    json_array_foreach(c->passages, i, t) {
        ps[i].title = json_string_value(json_object_get(t, "title"));
        ps[i].filename = json_string_value(json_object_get(t, "filename"));
        ps[i].topic = json_string_value(json_object_get(t, "topic"));
        ps[i].content = json_string_value(json_object_get(t, "content"));
        ps[i].score = json_real_value(json_object_get(t, "score"));
    }
    json_array_foreach(c->history, i, t) {
        hist[i].role = strcmp(json_string_value(json_array_get(t, 0)),
                              "assistant") == 0 ? AVC_LLM_ASSISTANT
                                                : AVC_LLM_USER;
        hist[i].content = json_string_value(json_array_get(t, 1));
    }

    memset(&in, 0, sizeof(in));
    in.mode = c->roleplay ? AVC_LLM_ROLEPLAY : AVC_LLM_TRAINING;
    in.dealership_name = c->dealership_name;
    in.trainee_name = json_string_value(json_object_get(call->who_json,
                                                        "first_name"));
    in.passages = ps;
    in.n_passages = np;
    in.scenario = c->scenario;
    in.history = hist;
    in.n_history = nh;
    in.question = c->message;
    in.context_window = avc_llm_context_window(app->llm);
    in.max_tokens = avc_llm_max_tokens(app->llm);
    in.templates_dir = avc_config_get(app->cfg, "prompts.dir", NULL);
    in.spoken = call->spoken != AVC__SPOKEN_NO;
    if (in.spoken) {
        in.max_tokens = call->spoken == AVC__SPOKEN_FAST
                        ? 60 : (unsigned) app->spoken_max_tokens;
    }

    prompt = avc_prompt_build(&in, &err);
    if (prompt == NULL) {
        free(ps);
        free(hist);
        if (err == AVC_ETOOBIG) {
            avc_chat_fail(call, 422, "The message is too long for the "
                                     "model's context window");
            return;
        }
        avc_chat_fail(call, 500, "Internal server error");
        return;
    }

    msgs = avc_prompt_messages(prompt, &n);
    memset(&req, 0, sizeof(req));
    req.mode = in.mode;
    req.messages = msgs;
    req.n_messages = n;
    req.passages = ps;
    req.n_passages = avc_prompt_passages_used(prompt);
    req.scenario = c->scenario;
    req.max_tokens = in.spoken ? in.max_tokens : 0;

    /* the request is copied as needed: the prompt may go */
    err = avc_llm_chat(app->llm, &req, avc_chat_on_token, avc_chat_on_done,
                       call, &c->lop);
    avc_prompt_free(prompt);
    free(ps);
    free(hist);
    if (err != AVC_OK) {
        avc_chat_fail(call, 500, "Internal server error");
    }
}

/* the sources of the API: [{topic, filename, relevance:"0.87"}] | null */
static json_t *
avc_chat_sources(json_t *passages)
{
    json_t *out, *t;
    size_t i;
    char rel[16];

    if (json_array_size(passages) == 0) {
        return json_null();
    }
    out = json_array();
    json_array_foreach(passages, i, t) {
        snprintf(rel, sizeof(rel), "%.2f",
                 json_real_value(json_object_get(t, "score")));
        json_array_append_new(out, json_pack("{s:O, s:O, s:s}",
                                             "topic",
                                             json_object_get(t, "topic"),
                                             "filename",
                                             json_object_get(t, "filename"),
                                             "relevance", rel));
    }
    return out;
}

/*
 * The session context: the passages of the session's last grounded answer
 * (or of its prewarm), kept in the cache under the session and its owner.
 * A follow-up in a running conversation that finds nothing by itself
 * ("and how long does that last?") is answered from them; an answer that
 * found passages makes them the new context.
 */
static void
avc_chat_context(avc_call_t *call)
{
    avc_chat_t *c = call->op;
    avc_shcache_t *cache = avc__app_cache(call->app);
    void *blob;
    size_t len;
    char *s;
    json_t *ctx;

    if (cache == NULL || c->passages == NULL) {
        return;
    }
    if (json_array_size(c->passages) > 0) {
        s = json_dumps(c->passages, JSON_COMPACT);
        if (s) {
            (void) avc_shcache_session_put(cache, c->session_id,
                                           call->who.id, s, strlen(s));
            free(s);
        }
        return;
    }
    if (json_array_size(c->history) == 0
        || avc_shcache_session_get(cache, c->session_id, call->who.id,
                                   &blob, &len) != AVC_OK)
    {
        return;
    }
    ctx = json_loadb(blob, len, 0, NULL);
    free(blob);
    if (json_is_array(ctx)) {
        json_decref(c->passages);
        c->passages = ctx;
        c->qvec_stale = 1;
        return;
    }
    json_decref(ctx);
}

static void
avc_chat_retrieved(int err, const avc_rag_results_t *res, void *data)
{
    avc_call_t *call = data;
    avc_chat_t *c = call->op;
    size_t i, n;

    c->rop = NULL;
    if (err != AVC_OK) {
        if (err == AVC_EUPSTREAM || err == AVC_ETIMEDOUT) {
            avc_chat_fail(call, err == AVC_ETIMEDOUT ? 504 : 502,
                          "The knowledge base search failed");
            return;
        }
        avc__reply_step_error(call, err, NULL);
        return;
    }
    c->generation = avc_rag_results_generation(res);
    c->passages = json_array();
    n = avc_rag_results_count(res);
    for (i = 0; i < n && c->passages; i++) {
        json_array_append_new(c->passages,
            json_pack("{s:s, s:s, s:s, s:s, s:f}",
                      "title", avc_rag_result_title(res, i),
                      "filename", avc_rag_result_filename(res, i),
                      "topic", avc_rag_result_topic(res, i),
                      "content", avc_rag_result_content(res, i),
                      "score", avc_rag_result_score(res, i)));
    }
    avc_chat_context(call);
    c->sources = avc_chat_sources(c->passages);
    if (c->passages == NULL || c->sources == NULL) {
        avc_chat_fail(call, 500, "Internal server error");
        return;
    }
    avc_chat_ask(call);
}

static void
avc_chat_retrieve(avc_call_t *call)
{
    avc_chat_t *c = call->op;
    json_t *k = json_object_get(c->rag_config, "top_k");
    long long top_k = json_is_integer(k) ? json_integer_value(k) : 5;

    if (top_k < 1 || top_k > 20) {
        top_k = 5;
    }
    if (avc_retrieve_start(call->app->retriever, c->did, c->message,
                           (size_t) top_k, NULL, -1, avc_chat_retrieved,
                           call, &c->rop) != AVC_OK)
    {
        avc_chat_fail(call, 500, "Internal server error");
    }
}

/* a cached answer: {"response", "sources", "provider"} */
static void
avc_chat_hit(avc_call_t *call, json_t *cached)
{
    avc_chat_t *c = call->op;
    const char *text = json_string_value(json_object_get(cached,
                                                         "response"));
    json_t *src = json_object_get(cached, "sources");
    const char *prov = json_string_value(json_object_get(cached,
                                                         "provider"));

    c->cache_hit = 1;
    c->sources = src ? json_incref(src) : json_null();
    c->provider = strdup(prov ? prov : "cache");
    if (text == NULL || c->provider == NULL
        || avc__buf_appends(&c->answer, text) != AVC_OK)
    {
        avc_chat_fail(call, 500, "Internal server error");
        return;
    }
    if (c->sse && (avc_chat_sse_begin(call) != AVC_OK
                   || avc_chat_event(call, "token",
                                     json_pack("{s:s}", "text", text))
                      != AVC_OK))
    {
        return;                 /* the client is gone */
    }
    avc_chat_store(call);
}

static void
avc_chat_embedded(int err, const float *v, size_t n, size_t dim, void *data)
{
    avc_call_t *call = data;
    avc_chat_t *c = call->op;
    avc_shcache_t *cache = avc__app_cache(call->app);
    void *blob = NULL;
    size_t len;
    double sim;

    c->eop = NULL;
    if (err != AVC_OK || n != 1) {
        /* the retrieval embeds the question again and reports */
        avc_chat_retrieve(call);
        return;
    }
    c->qvec = malloc(dim * sizeof(float));
    if (c->qvec) {
        memcpy(c->qvec, v, dim * sizeof(float));
        c->dim = dim;
    }
    if (cache && c->qvec
        && avc_shcache_answer_find(cache, c->did, c->generation, c->qvec,
                                   dim, call->app->semantic_threshold, &blob,
                                   &len, &sim) == AVC_OK)
    {
        json_t *cached = json_loadb(blob, len, 0, NULL);

        free(blob);
        if (json_is_object(cached)) {
            avc_chat_hit(call, cached);
            json_decref(cached);
            return;
        }
        json_decref(cached);
    }
    avc_chat_retrieve(call);
}

static void
avc_chat_answer(avc_call_t *call)
{
    avc_chat_t *c = call->op;

    if (c->roleplay || call->spoken == AVC__SPOKEN_FAST) {
        c->sources = json_null();
        avc_chat_ask(call);
        return;
    }
    if (!call->app->semantic_cache || call->spoken != AVC__SPOKEN_NO) {
        avc_chat_retrieve(call);
        return;
    }
    if (avc_embed_query(call->app->embedder, c->message, avc_chat_embedded,
                        call, &c->eop) != AVC_OK)
    {
        avc_chat_retrieve(call);
    }
}

/* 6. storing, answering */

static void
avc_chat_cache_put(avc_call_t *call)
{
    avc_chat_t *c = call->op;
    avc_shcache_t *cache;
    json_t *blob;
    char *s;

    if (c->roleplay || c->cache_hit || c->qvec == NULL || c->qvec_stale
        || !call->app->semantic_cache || call->spoken != AVC__SPOKEN_NO)
    {
        return;
    }
    cache = avc__app_cache(call->app);
    blob = json_pack("{s:s%, s:O, s:s}", "response", c->answer.data,
                     c->answer.len, "sources", c->sources, "provider",
                     c->provider);
    s = blob ? json_dumps(blob, JSON_COMPACT) : NULL;
    json_decref(blob);
    if (cache && s) {
        (void) avc_shcache_answer_put(cache, c->did, c->generation, c->qvec,
                                      c->dim, s, strlen(s));
    }
    free(s);
}

static void
avc_chat_reply(avc_call_t *call)
{
    avc_chat_t *c = call->op;
    json_t *body;

    avc_chat_cache_put(call);
    if (c->sse) {
        if (avc_chat_sse_begin(call) == AVC_OK
            && avc_chat_event(call, "sources", json_incref(c->sources))
               == AVC_OK)
        {
            (void) avc_chat_event(call, "done",
                json_pack("{s:s, s:{s:i, s:i}, s:s, s:s, s:s}",
                          "session_id", c->session_id, "usage",
                          "prompt_tokens", (int) c->prompt_tokens,
                          "completion_tokens", (int) c->completion_tokens,
                          "cache", c->cache_hit ? "hit" : "miss",
                          "provider", c->provider,
                          "timestamp", c->timestamp));
        }
        avc__call_stream_end(call);
        return;
    }
    body = json_pack("{s:s%, s:s, s:O, s:s, s:s}", "response",
                     c->answer.data ? c->answer.data : "", c->answer.len,
                     "session_id", c->session_id, "sources", c->sources,
                     "timestamp", c->timestamp, "provider", c->provider);
    avc__call_add_header(call, "X-Avatar-Cache", c->cache_hit ? "hit"
                                                              : "miss");
    avc__call_json(call, 200, body);
}

static void
avc_chat_committed(avc_call_t *call, int err)
{
    if (err != AVC_OK) {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
        return;
    }
    avc_chat_reply(call);
}

static void
avc_chat_usage_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__rollback(call);
        avc_chat_fail(call, 503, "Service temporarily unavailable");
        return;
    }
    if (avc__commit(call, avc_chat_committed) != AVC_OK) {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_chat_messages_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_chat_t *c = call->op;
    char pt[16], ct[16];
    const char *p[4];

    if (err != AVC_OK) {
        avc__rollback(call);
        avc_chat_fail(call, 503, "Service temporarily unavailable");
        return;
    }
    snprintf(pt, sizeof(pt), "%u", c->cache_hit ? 0 : c->prompt_tokens);
    snprintf(ct, sizeof(ct), "%u", c->cache_hit ? 0 : c->completion_tokens);
    p[0] = c->uid_s;
    p[1] = c->did_s;
    p[2] = pt;
    p[3] = ct;
    if (avc__txq(call, "INSERT INTO usage (day, user_id, dealership_id,"
                 " prompt_tokens, completion_tokens, requests)"
                 " VALUES ((now() AT TIME ZONE 'UTC')::date, $1::bigint,"
                 " $2::bigint, $3::bigint, $4::bigint, 1)"
                 " ON CONFLICT (day, user_id) DO UPDATE SET"
                 " prompt_tokens = usage.prompt_tokens"
                 " + EXCLUDED.prompt_tokens,"
                 " completion_tokens = usage.completion_tokens"
                 " + EXCLUDED.completion_tokens,"
                 " requests = usage.requests + 1,"
                 " dealership_id = EXCLUDED.dealership_id", 4, p,
                 avc_chat_usage_done) != AVC_OK)
    {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_chat_conv_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_chat_t *c = call->op;
    char lat[24], pt[16], ct[16];
    const char *p[10];
    char *sources = NULL;

    if (err != AVC_OK) {
        avc__rollback(call);
        avc_chat_fail(call, 503, "Service temporarily unavailable");
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        /* the session id was taken meanwhile by someone else */
        avc__rollback(call);
        avc_chat_fail(call, 404, "Session not found");
        return;
    }
    if (!json_is_null(c->sources)) {
        sources = json_dumps(c->sources, JSON_COMPACT);
    }
    snprintf(lat, sizeof(lat), "%llu",
             (unsigned long long) (avc_loop_now(call->app->loop) - c->t0));
    snprintf(pt, sizeof(pt), "%u", c->prompt_tokens);
    snprintf(ct, sizeof(ct), "%u", c->completion_tokens);
    p[0] = avc_db_res_value(res, 0, 0);
    p[1] = c->did_s;
    p[2] = c->message;
    p[3] = c->answer.data ? c->answer.data : "";
    p[4] = sources;
    p[5] = c->provider;
    p[6] = pt;
    p[7] = ct;
    p[8] = lat;
    p[9] = c->cache_hit ? "hit" : "miss";
    err = avc__txq(call, "INSERT INTO messages (conversation_id,"
                   " dealership_id, role, content, sources, provider,"
                   " prompt_tokens, completion_tokens, latency_ms,"
                   " cache_status)"
                   " VALUES ($1::bigint, $2::bigint, 'user', $3, NULL,"
                   " NULL, NULL, NULL, NULL, NULL),"
                   " ($1::bigint, $2::bigint, 'assistant', $4, $5::jsonb,"
                   " $6, $7::int, $8::int, $9::int, $10)", 10, p,
                   avc_chat_messages_done);
    free(sources);
    if (err != AVC_OK) {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_chat_begun(avc_call_t *call, int err)
{
    avc_chat_t *c = call->op;
    char title[AVC_CHAT_TITLE_MAX * 4 + 4];
    const char *p[6];
    size_t n;

    if (err != AVC_OK) {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
        return;
    }
    /* the title: the first question, cut at a character boundary */
    n = avc__utf8_prefix(c->message, AVC_CHAT_TITLE_MAX);
    memcpy(title, c->message, n);
    title[n] = '\0';
    p[0] = c->session_id;
    p[1] = c->uid_s;
    p[2] = c->did_s;
    p[3] = c->roleplay ? "roleplay" : "training";
    p[4] = title;
    p[5] = c->scenario ? c->scenario->id : NULL;
    /* the owner check again, atomically: a conflicting row of another
     * user is not updated and returns nothing */
    if (avc__txq(call, "INSERT INTO conversations (session_id, user_id,"
                 " dealership_id, mode, title, scenario_id)"
                 " VALUES ($1, $2::bigint, $3::bigint, $4, $5, $6)"
                 " ON CONFLICT (session_id) DO UPDATE SET last_at = now()"
                 " WHERE conversations.user_id = EXCLUDED.user_id"
                 " AND conversations.dealership_id = EXCLUDED.dealership_id"
                 " RETURNING id", 6, p, avc_chat_conv_done) != AVC_OK)
    {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_chat_store(avc_call_t *call)
{
    avc_chat_t *c = call->op;

    avc__chat_now(c->timestamp);
    if (avc__begin(call, avc_chat_begun) != AVC_OK) {
        avc_chat_fail(call, 503, "Service temporarily unavailable");
    }
}
