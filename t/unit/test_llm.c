/*
 * The language-model client: configuration, the token estimate, the
 * offline provider's delivery, and the OpenAI-compatible streaming client
 * against tools/mock/openai-chat.pl (comment lines, the usage chunk,
 * [DONE], an error object mid-stream, a slow first token, 429 then
 * success, 500 with and without a fallback model, a reset mid-stream, a
 * malformed chunk, a stalled stream, a non-streamed answer, cancelling,
 * and many streams at once).
 *
 *   build/t/test_llm [SECTION...]     e.g. "build/t/test_llm cancel"
 *
 * Sections: config count offline stream errors retry cancel many.  The
 * mock is started by this test (perl, from $AVC_TOP, default ".") with a
 * pipe on its stdin, so it exits with the test however it ends.  Each
 * case names its own model, and the failure it wants from the mock is
 * spelled in that name ("t-err@error-after=3"); the mock's record of the
 * requests (GET /_requests) is what the assertions about the wire read.
 *
 * Time bounds are generous margins, so that valgrind or a busy machine
 * does not make the test flaky.
 */
#include "tap.h"
#include "mock.h"

#include <avatarcore/llm.h>
#include <avatarcore/http.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#define KEY "sk-test-0123456789"
#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

static const char *top = ".";

static avc_loop_t *loop;
static avc_http_t *http;
static mock_t mk;
static char base[128];

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* the log, watched for the key */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int key_logged;
static int log_lines;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    pthread_mutex_lock(&log_mu);
    log_lines++;
    if (strstr(msg, KEY) != NULL || strstr(msg, "sk-wrong-key-777") != NULL)
    {
        key_logged = 1;
    }
    if (getenv("AVC_TEST_VERBOSE")) {
        printf("# log: %s\n", msg);
    }
    pthread_mutex_unlock(&log_mu);
}

/* an answer as the caller sees it */

typedef enum {
    ACT_NONE = 0,
    ACT_CANCEL,                 /* avc_llm_cancel from the token callback */
    ACT_FREE                    /* avc_llm_free from the token callback */
} act_t;

typedef struct {
    avc_llm_t *llm;
    avc_llm_op_t *op;
    char text[4096];
    size_t len;
    size_t ntokens;
    uint64_t start;
    uint64_t first_at;
    uint64_t done_at;
    int done;
    int calls_after;            /* callbacks after a cancel: must be 0 */
    int cancelled;
    act_t act;
    size_t act_after;           /* tokens before the act */
    /* copied from the result */
    int err;
    char provider[64];
    char model[256];
    char finish[32];
    char error[256];
    unsigned prompt_tokens;
    unsigned completion_tokens;
    int usage_estimated;
    size_t tokens_sent;
    int done_calls;
} ans_t;

static void
copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void
on_token(const char *text, size_t len, void *data)
{
    ans_t *a = data;

    if (a->cancelled) {
        a->calls_after++;
        return;
    }
    if (a->ntokens == 0) {
        a->first_at = now_ms();
    }
    a->ntokens++;
    if (a->len + len < sizeof(a->text)) {
        memcpy(a->text + a->len, text, len);
        a->len += len;
        a->text[a->len] = '\0';
    }
    if (a->act != ACT_NONE && a->ntokens == a->act_after) {
        a->cancelled = 1;
        if (a->act == ACT_CANCEL) {
            avc_llm_cancel(a->op);
        } else {
            avc_llm_free(a->llm);
            a->llm = NULL;
        }
    }
}

static void
on_done(int err, const avc_llm_result_t *res, void *data)
{
    ans_t *a = data;

    a->done_calls++;
    if (a->cancelled) {
        a->calls_after++;
        return;
    }
    a->done = 1;
    a->done_at = now_ms();
    a->err = err;
    copy(a->provider, sizeof(a->provider), res->provider);
    copy(a->model, sizeof(a->model), res->model);
    copy(a->finish, sizeof(a->finish), res->finish_reason);
    copy(a->error, sizeof(a->error), res->error);
    a->prompt_tokens = res->prompt_tokens;
    a->completion_tokens = res->completion_tokens;
    a->usage_estimated = res->usage_estimated;
    a->tokens_sent = res->tokens_sent;
    /* a cancel from on_done is a no-op */
    avc_llm_cancel(a->op);
}

static void
run_until(int *flag, uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (!*flag && now_ms() < end) {
        avc_loop_run_once(loop, 20);
    }
}

/* run the loop for a while (let anything that should not come, come) */
static void
run_for(uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end) {
        avc_loop_run_once(loop, 10);
    }
}

/*
 * A client for the mock: "llm.model" = model, then the NULL-terminated
 * key/value pairs of extra (may override).  NULL on failure.
 */
static avc_llm_t *
mock_llm(avc_config_t **cfgp, const char *model, const char *const *extra)
{
    avc_config_t *cfg = avc_config_new();
    avc_llm_t *llm;
    int err, i;

    avc_config_set(cfg, "llm.provider", "openrouter");
    avc_config_set(cfg, "llm.base_url", base);
    avc_config_set(cfg, "llm.key", KEY);
    avc_config_set(cfg, "llm.model", model);
    avc_config_set(cfg, "llm.backoff", "20");
    avc_config_set(cfg, "llm.max_tokens", "321");
    for (i = 0; extra && extra[i] && extra[i + 1]; i += 2) {
        avc_config_set(cfg, extra[i], extra[i + 1]);
    }
    llm = avc_llm_new(loop, http, cfg, &err);
    if (llm == NULL) {
        printf("# avc_llm_new: %s\n", avc_strerror(err));
        avc_config_free(cfg);
        return NULL;
    }
    *cfgp = cfg;
    return llm;
}

static const avc_llm_msg_t conv[] = {
    { AVC_LLM_SYSTEM, "You are Adam, an F&I trainer." },
    { AVC_LLM_USER, "What is GAP?" },
    { AVC_LLM_ASSISTANT, "Guaranteed asset protection." },
    { AVC_LLM_USER, "And a \"VSC\"? \xc3\xa9t\xc3\xa9 \xff" },
};

/*
 * Ask model with extra settings; wait for the answer (ms).  The client
 * is freed afterwards unless the caller keeps it (llmp).
 */
static int
ask(ans_t *a, const char *model, const char *const *extra, uint64_t ms)
{
    avc_llm_request_t req;
    avc_config_t *cfg = NULL;
    act_t act = a->act;
    size_t act_after = a->act_after;
    int rc;

    /* the caller may have set only the act */
    memset(a, 0, sizeof(*a));
    a->act = act;
    a->act_after = act_after;
    a->llm = mock_llm(&cfg, model, extra);
    if (a->llm == NULL) {
        return -1;
    }
    memset(&req, 0, sizeof(req));
    req.messages = conv;
    req.n_messages = COUNTOF(conv);
    a->start = now_ms();
    rc = avc_llm_chat(a->llm, &req, on_token, on_done, a, &a->op);
    if (rc != AVC_OK) {
        printf("# avc_llm_chat: %s\n", avc_strerror(rc));
        avc_llm_free(a->llm);
        avc_config_free(cfg);
        return -1;
    }
    if (a->ntokens != 0 || a->done) {
        printf("# a callback from within avc_llm_chat\n");
        rc = -1;
    }
    run_until(&a->done, ms);
    if (a->llm) {
        if (avc_llm_active(a->llm) != 0) {
            printf("# %zu answers still active\n", avc_llm_active(a->llm));
            rc = -1;
        }
        avc_llm_free(a->llm);
        a->llm = NULL;
    }
    avc_config_free(cfg);
    return rc;
}

/* the mock's records */

static json_t *
mock_get(const char *path)
{
    char url[256], *body = NULL;
    size_t len = 0;
    json_t *j;
    int status = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mk.port, path);
    if (avc_http_fetch_sync("GET", url, NULL, NULL, 0, 5000, 0, &status,
                            &body, &len) != AVC_OK || status != 200)
    {
        free(body);
        return NULL;
    }
    j = json_loadb(body, len, 0, NULL);
    free(body);
    return j;
}

/* the records of requests for model (new array), in order */
static json_t *
records(const char *model)
{
    json_t *all = mock_get("/_requests"), *out = json_array(), *r;
    size_t i;

    json_array_foreach(json_object_get(all, "requests"), i, r) {
        const char *m = json_string_value(json_object_get(r, "model"));

        if (m && strcmp(m, model) == 0) {
            json_array_append(out, r);
        }
    }
    json_decref(all);
    return out;
}

static const char *
rec_str(json_t *recs, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(recs, i), key));
}

/* wait until the mock records outcome for the last request of model */
static int
wait_outcome(const char *model, const char *outcome, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    json_t *recs;
    const char *o;
    int ok = 0;

    while (!ok && now_ms() < end) {
        recs = records(model);
        o = rec_str(recs, json_array_size(recs) - 1, "outcome");
        ok = o && strcmp(o, outcome) == 0;
        if (!ok && getenv("AVC_TEST_VERBOSE")) {
            printf("# %s: outcome %s\n", model, o ? o : "(none)");
        }
        json_decref(recs);
        if (!ok) {
            run_for(20);
        }
    }
    return ok;
}

/* configuration */

static void
test_config(void)
{
    avc_config_t *cfg = avc_config_new();
    avc_llm_t *llm;
    int err;

    llm = avc_llm_new(loop, NULL, cfg, &err);
    TAP_OK(llm != NULL && err == AVC_OK, "config: no key means offline");
    if (llm) {
        TAP_STR(avc_llm_provider(llm), "offline", "config: provider");
        TAP_IS(avc_llm_max_tokens(llm), 800, "config: max_tokens default");
        TAP_IS(avc_llm_context_window(llm), 128000, "config: window");
    }
    avc_llm_free(llm);

    avc_config_set(cfg, "llm.key", KEY);
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm && strcmp(avc_llm_provider(llm), "openrouter") == 0
           && strcmp(avc_llm_model(llm), "openai/gpt-4o") == 0,
           "config: a key means openrouter with openai/gpt-4o");
    avc_llm_free(llm);

    llm = avc_llm_new(loop, NULL, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL,
           "config: openrouter needs an HTTP client");

    avc_config_set(cfg, "llm.provider", "openai");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm && strcmp(avc_llm_model(llm), "gpt-4o") == 0,
           "config: openai defaults to gpt-4o");
    avc_llm_free(llm);

    avc_config_set(cfg, "llm.provider", "local");
    avc_config_set(cfg, "llm.key", NULL);
    avc_config_set(cfg, "llm.base_url", "http://127.0.0.1:1/v1");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm != NULL, "config: local needs no key");
    avc_llm_free(llm);

    avc_config_set(cfg, "llm.provider", "openai");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL, "config: openai needs a key");

    avc_config_set(cfg, "llm.key", KEY);
    avc_config_set(cfg, "llm.provider", "gpt");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL, "config: unknown provider");

    avc_config_set(cfg, "llm.provider", "openai");
    avc_config_set(cfg, "llm.base_url", "ftp://x");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL, "config: base_url not http");

    avc_config_set(cfg, "llm.base_url", NULL);
    avc_config_set(cfg, "llm.temperature", "hot");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL, "config: bad temperature");

    avc_config_set(cfg, "llm.temperature", "0.7");
    avc_config_set(cfg, "llm.first_token_timeout", "-5");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL, "config: negative timeout");

    avc_config_set(cfg, "llm.first_token_timeout", NULL);
    avc_config_set(cfg, "llm.fallback_models", " a, b ,,c ");
    avc_config_set(cfg, "llm.max_tokens", "55");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm != NULL && avc_llm_max_tokens(llm) == 55,
           "config: fallbacks and max_tokens");
    avc_llm_free(llm);

    avc_config_set(cfg, "llm.fallback_models", "a,b,c,d,e,f,g,h,i");
    llm = avc_llm_new(loop, http, cfg, &err);
    TAP_OK(llm == NULL && err == AVC_EINVAL, "config: too many fallbacks");
    avc_llm_free(NULL);
    avc_llm_cancel(NULL);
    avc_config_free(cfg);
}

/* the token estimate */

static void
test_count(void)
{
    static const char prose[] =
        "In the F&I office, the trainee presents the menu of protection "
        "products: a vehicle service contract, GAP coverage, tire and "
        "wheel protection, and prepaid maintenance. The customer objects "
        "that the payment is already too high, so the trainee reframes "
        "the cost per month and asks which risk worries them most. A "
        "good presentation is honest, compliant with the dealership's "
        "disclosure rules, and never pressures the buyer into a product "
        "they do not need.\n\nWhen the customer says no twice, the "
        "trainee thanks them and moves on to the paperwork.";
    unsigned n, bytes = (unsigned) strlen(prose);

    TAP_IS(avc_llm_count_tokens("", 0), 0, "count: empty");
    TAP_IS(avc_llm_count_tokens(NULL, 0), 0, "count: NULL");
    n = avc_llm_count_tokens("Hello, world!", 13);
    TAP_OK(n >= 3 && n <= 5, "count: \"Hello, world!\" is about 4 (%u)", n);
    n = avc_llm_count_tokens("1234567", 7);
    TAP_IS(n, 3, "count: digits go by three");
    n = avc_llm_count_tokens(prose, bytes);
    /* 90 words and 14 marks (F&I counted as F, &, I): about 105 */
    TAP_OK(n >= 85 && n <= 125, "count: prose near the real count (%u for "
           "%u bytes)", n, bytes);
    n = avc_llm_count_tokens("\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95"
                             "\x8c", 12);
    TAP_IS(n, 4, "count: a CJK character is a token");
    n = avc_llm_count_tokens("caf\xc3\xa9 cr\xc3\xa8me", 12);
    TAP_IS(n, 2, "count: accented letters belong to their words");
    n = avc_llm_count_tokens("------------", 12);
    TAP_IS(n, 3, "count: repeated marks four a token");
    n = avc_llm_count_tokens("a\n\n\nb", 5);
    TAP_IS(n, 3, "count: a run of line breaks is one");
    n = avc_llm_count_tokens("\xff\xfe\x80", 3);
    TAP_OK(n >= 1 && n <= 3, "count: bad UTF-8 is counted, not fatal");
}

/* the offline provider */

static void
test_offline(void)
{
    static const avc_llm_passage_t pass[] = {
        { "F&I Basics", "basics.txt", "products",
          "GAP coverage pays the difference between the loan balance and "
          "the insured value of the vehicle after a total loss. It is "
          "optional and must be disclosed as such.", 0.91 },
    };
    static const avc_llm_msg_t msgs[] = {
        { AVC_LLM_SYSTEM, "You are Adam." },
        { AVC_LLM_USER, "What does GAP coverage pay?" },
    };
    avc_config_t *cfg = avc_config_new();
    avc_llm_request_t req;
    avc_llm_t *llm;
    ans_t a, b;
    int err, rc;

    llm = avc_llm_new(loop, NULL, cfg, &err);
    if (!TAP_OK(llm != NULL, "offline: client")) {
        avc_config_free(cfg);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.mode = AVC_LLM_TRAINING;
    req.messages = msgs;
    req.n_messages = 2;
    req.passages = pass;
    req.n_passages = 1;

    memset(&a, 0, sizeof(a));
    rc = avc_llm_chat(llm, &req, on_token, on_done, &a, &a.op);
    TAP_IS(rc, AVC_OK, "offline: chat started");
    TAP_OK(a.ntokens == 0 && !a.done, "offline: no callback from within "
           "avc_llm_chat");
    TAP_IS(avc_llm_active(llm), 1, "offline: one answer active");
    run_until(&a.done, 5000);
    TAP_OK(a.done && a.err == AVC_OK, "offline: done");
    TAP_OK(a.ntokens > 1, "offline: the answer came in pieces (%zu)",
           a.ntokens);
    TAP_IS(a.tokens_sent, a.ntokens, "offline: tokens_sent counts them");
    TAP_STR(a.provider, "offline", "offline: provider");
    TAP_OK(a.usage_estimated && a.prompt_tokens > 0
           && a.completion_tokens > 0, "offline: estimated usage (%u, %u)",
           a.prompt_tokens, a.completion_tokens);
    TAP_OK(a.len > 0 && strlen(a.text) == a.len,
           "offline: text delivered (%zu bytes)", a.len);
    TAP_IS(avc_llm_active(llm), 0, "offline: none active after");

    /* cancel after the first piece: nothing more */
    memset(&b, 0, sizeof(b));
    b.act = ACT_CANCEL;
    b.act_after = 1;
    rc = avc_llm_chat(llm, &req, on_token, on_done, &b, &b.op);
    run_for(100);
    TAP_OK(rc == AVC_OK && b.ntokens == 1 && b.calls_after == 0
           && b.done_calls == 0, "offline: no callback after a cancel");
    TAP_IS(avc_llm_active(llm), 0, "offline: the cancelled one is gone");

    /* freed while answering: no callback either */
    memset(&b, 0, sizeof(b));
    rc = avc_llm_chat(llm, &req, on_token, on_done, &b, &b.op);
    avc_llm_free(llm);
    run_for(50);
    TAP_OK(rc == AVC_OK && b.ntokens == 0 && b.done_calls == 0,
           "offline: free cancels quietly");
    avc_config_free(cfg);
}

/* streaming */

static void
test_stream(void)
{
    static const char *const slow[] = { "llm.timeout", "10000", NULL };
    json_t *recs, *body, *msgs, *hdrs;
    const char *auth;
    ans_t a = { 0 };
    size_t i;
    int ok;

    /* 5 tokens, 10 a second, after a first token delay with comments */
    ask(&a, "t-stream@tps=10,tokens=5,first=300,comment-every=50", slow,
        10000);
    TAP_OK(a.done && a.err == AVC_OK, "stream: done (%s)",
           avc_err_name(a.err));
    TAP_STR(a.text, "Adam here. A vehicle service", "stream: the tokens "
            "in order, comment lines skipped");
    TAP_IS(a.ntokens, 5, "stream: one callback per chunk");
    TAP_IS(a.tokens_sent, 5, "stream: tokens_sent");
    TAP_OK(a.first_at && a.done_at >= a.first_at + 250,
           "stream: the first token came before the stream ended "
           "(%llu ms before)",
           (unsigned long long) (a.done_at - a.first_at));
    TAP_OK(a.first_at >= a.start + 250, "stream: after the first-token "
           "delay");
    TAP_STR(a.finish, "stop", "stream: finish_reason");
    TAP_OK(!a.usage_estimated && a.completion_tokens == 5
           && a.prompt_tokens > 10, "stream: usage from the usage chunk "
           "(%u, %u)", a.prompt_tokens, a.completion_tokens);
    TAP_STR(a.model, "t-stream@tps=10,tokens=5,first=300,comment-every=50",
            "stream: the model that answered");
    TAP_STR(a.provider, "openrouter", "stream: provider");
    TAP_STR(a.error, "", "stream: no error message");

    /* what went on the wire */
    recs = records("t-stream@tps=10,tokens=5,first=300,comment-every=50");
    TAP_IS(json_array_size(recs), 1, "wire: one request");
    body = json_object_get(json_array_get(recs, 0), "body");
    hdrs = json_object_get(json_array_get(recs, 0), "headers");
    TAP_OK(json_is_true(json_object_get(body, "stream")), "wire: stream");
    TAP_OK(json_is_true(json_object_get(json_object_get(body,
                                                        "stream_options"),
                                        "include_usage")),
           "wire: stream_options.include_usage");
    TAP_IS(json_integer_value(json_object_get(body, "max_tokens")), 321,
           "wire: max_tokens");
    TAP_OK(json_is_number(json_object_get(body, "temperature")),
           "wire: temperature");
    msgs = json_object_get(body, "messages");
    ok = json_array_size(msgs) == COUNTOF(conv);
    for (i = 0; ok && i < COUNTOF(conv); i++) {
        static const char *const roles[] = { "system", "user", "assistant" };
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *c = json_string_value(json_object_get(m, "content"));

        ok = role && c && strcmp(role, roles[conv[i].role]) == 0
             && (i == 3 || strcmp(c, conv[i].content) == 0);
    }
    TAP_OK(ok, "wire: the messages in order with their roles");
    TAP_STR(json_string_value(json_object_get(json_array_get(msgs, 3),
                                              "content")),
            "And a \"VSC\"? \xc3\xa9t\xc3\xa9 \xef\xbf\xbd",
            "wire: invalid UTF-8 replaced, the rest kept");
    auth = json_string_value(json_object_get(hdrs, "authorization"));
    TAP_STR(auth, "Bearer " KEY, "wire: Authorization: Bearer");
    TAP_OK(json_string_value(json_object_get(hdrs, "accept"))
           && strstr(json_string_value(json_object_get(hdrs, "accept")),
                     "text/event-stream"), "wire: Accept: text/event-stream");
    TAP_STR(rec_str(recs, 0, "path"), "/v1/chat/completions", "wire: path");
    json_decref(recs);

    /* no usage chunk: estimated */
    ask(&a, "t-nousage@no-usage", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_OK && a.usage_estimated
           && a.completion_tokens > 5 && a.prompt_tokens > 10,
           "stream: without a usage chunk, usage is estimated (%u, %u)",
           a.prompt_tokens, a.completion_tokens);

    /* max_tokens cuts: finish_reason length */
    {
        static const char *const few[] = { "llm.max_tokens", "3", NULL };

        ask(&a, "t-length", few, 5000);
        TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 3
               && strcmp(a.finish, "length") == 0,
               "stream: max_tokens 3 gives 3 tokens, finish length");
    }

    /* a server that answers with one object in spite of stream: true */
    ask(&a, "t-plain@plain", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 1
           && strncmp(a.text, "Adam here. A vehicle", 20) == 0
           && !a.usage_estimated, "stream: a non-streamed answer is one "
           "token with its usage");

    /* a stream labelled with another Content-Type is still a stream */
    ask(&a, "t-ctype@sse-type=text/plain", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 12,
           "stream: recognised without its Content-Type");

    /* the stream ends after the finish chunk without [DONE]: fine */
    ask(&a, "t-nodone@no-done", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 12,
           "stream: a finish_reason without [DONE] is an end");
}

/* failures */

static void
test_errors(void)
{
    static const char *const fast_first[] = {
        "llm.first_token_timeout", "300", NULL };
    static const char *const short_total[] = { "llm.timeout", "600", NULL };
    static const char *const fb[] = {
        "llm.fallback_models", "t-fb-ok", NULL };
    static const char *const wrong_key[] = {
        "llm.key", "sk-wrong-key-777", NULL };
    json_t *recs;
    ans_t a = { 0 };

    /* an error object mid-stream */
    ask(&a, "t-err@error-after=3", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_EUPSTREAM, "error object: EUPSTREAM (%s)",
           avc_err_name(a.err));
    TAP_IS(a.tokens_sent, 3, "error object: tokens_sent 3 (mid-answer)");
    TAP_OK(a.error[0] && strstr(a.error, "disconnected") == NULL,
           "error object: a client-safe message (%s)", a.error);
    recs = records("t-err@error-after=3");
    TAP_IS(json_array_size(recs), 1, "error object: no retry after the "
           "first token");
    json_decref(recs);

    /* no first token in time */
    ask(&a, "t-slow@first=3000,comment-every=50", fast_first, 5000);
    TAP_OK(a.done && a.err == AVC_ETIMEDOUT, "slow first token: ETIMEDOUT "
           "(%s)", avc_err_name(a.err));
    TAP_OK(a.tokens_sent == 0 && a.done_at - a.start < 2000,
           "slow first token: in about 300 ms (%llu), comments do not count",
           (unsigned long long) (a.done_at - a.start));
    TAP_OK(strstr(a.error, "in time") != NULL, "slow first token: %s",
           a.error);
    TAP_OK(wait_outcome("t-slow@first=3000,comment-every=50",
                        "client-closed", 3000),
           "slow first token: the upstream request was aborted");

    /* a stream that stalls after two tokens */
    ask(&a, "t-stall@stall-after=2", short_total, 5000);
    TAP_OK(a.done && a.err == AVC_ETIMEDOUT && a.tokens_sent == 2,
           "stalled stream: ETIMEDOUT after 2 tokens (%s)",
           avc_err_name(a.err));
    TAP_OK(wait_outcome("t-stall@stall-after=2", "client-closed", 3000),
           "stalled stream: the upstream request was aborted");

    /* a reset mid-stream */
    ask(&a, "t-reset@reset-after=2", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_EHTTP && a.tokens_sent == 2,
           "reset mid-stream: EHTTP after 2 tokens (%s)",
           avc_err_name(a.err));
    recs = records("t-reset@reset-after=2");
    TAP_IS(json_array_size(recs), 1, "reset mid-stream: no retry after the "
           "first token");
    json_decref(recs);

    /* a reset before the first token: tried again (llm.retries 2) */
    ask(&a, "t-reset0@reset-after=0", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_EHTTP && a.tokens_sent == 0,
           "reset before the first token: EHTTP (%s)", avc_err_name(a.err));
    recs = records("t-reset0@reset-after=0");
    TAP_IS(json_array_size(recs), 2, "reset before the first token: tried "
           "twice");
    json_decref(recs);

    /* an error object before the first token: again, then the fallback */
    {
        static const char *const fb2[] = {
            "llm.fallback_models", "t-fb-ok2", NULL };

        ask(&a, "t-err0@error-after=0", fb2, 5000);
        TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 12
               && strcmp(a.model, "t-fb-ok2") == 0,
               "error object before the first token: the fallback answers "
               "(%s)", avc_err_name(a.err));
        recs = records("t-err0@error-after=0");
        TAP_IS(json_array_size(recs), 2, "error object before the first "
               "token: the first model tried llm.retries times");
        json_decref(recs);
    }

    /* a malformed chunk */
    ask(&a, "t-bad@malformed-after=2", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_EPROTO && a.tokens_sent == 2,
           "malformed chunk: EPROTO after 2 tokens (%s)",
           avc_err_name(a.err));

    /* 500: no fallback */
    ask(&a, "t-500@status=500", NULL, 5000);
    TAP_OK(a.done && a.err == AVC_EUPSTREAM && a.tokens_sent == 0,
           "500: EUPSTREAM without a fallback (%s)", avc_err_name(a.err));
    recs = records("t-500@status=500");
    TAP_IS(json_array_size(recs), 2, "500: llm.retries attempts");
    json_decref(recs);

    /* 500 with a fallback model */
    ask(&a, "t-500b@status=500", fb, 5000);
    TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 12,
           "500: the fallback model answers (%s)", avc_err_name(a.err));
    TAP_STR(a.model, "t-fb-ok", "500: the result names the fallback");
    recs = records("t-fb-ok");
    TAP_IS(json_array_size(recs), 1, "500: the fallback was asked once");
    json_decref(recs);

    /* a wrong key: 401, and the key echoed by the provider is not logged */
    key_logged = 0;
    ask(&a, "t-401", wrong_key, 5000);
    TAP_OK(a.done && a.err == AVC_EUPSTREAM, "401: EUPSTREAM");
    TAP_OK(!key_logged && strstr(a.error, "sk-") == NULL,
           "401: the key in the provider's message is not logged");
}

/* retries */

static void
test_retry(void)
{
    json_t *recs;
    ans_t a = { 0 };

    ask(&a, "t-429@status=429,times=1,retry-after=1", NULL, 10000);
    TAP_OK(a.done && a.err == AVC_OK && a.ntokens == 12,
           "429 then success: answered (%s)", avc_err_name(a.err));
    TAP_OK(a.done_at - a.start >= 900, "429 then success: Retry-After "
           "honoured (%llu ms)", (unsigned long long) (a.done_at - a.start));
    recs = records("t-429@status=429,times=1,retry-after=1");
    TAP_IS(json_array_size(recs), 2, "429 then success: two requests");
    TAP_IS(json_integer_value(json_object_get(json_array_get(recs, 0),
                                              "status")), 429,
           "429 then success: the first was a 429");
    json_decref(recs);
}

/* cancelling */

static void
test_cancel(void)
{
    static const char *const keep[] = { "llm.timeout", "20000", NULL };
    avc_llm_request_t req;
    avc_config_t *cfg;
    const char *model = "t-cancel@tps=10,tokens=100";
    size_t n;
    ans_t a = { 0 };

    /* from outside, after two tokens */
    memset(&a, 0, sizeof(a));
    a.start = now_ms();
    a.llm = mock_llm(&cfg, model, keep);
    memset(&req, 0, sizeof(req));
    req.messages = conv;
    req.n_messages = 2;
    if (a.llm == NULL
        || avc_llm_chat(a.llm, &req, on_token, on_done, &a, &a.op)
           != AVC_OK)
    {
        TAP_OK(0, "cancel: started");
        return;
    }
    while (a.ntokens < 2 && now_ms() - a.start < 5000) {
        avc_loop_run_once(loop, 20);
    }
    avc_llm_cancel(a.op);
    a.cancelled = 1;
    n = a.ntokens;
    TAP_IS(avc_llm_active(a.llm), 0, "cancel: none active");
    TAP_OK(wait_outcome(model, "client-closed", 3000),
           "cancel: the mock saw the connection closed");
    run_for(300);
    TAP_OK(n >= 2 && a.ntokens == n && a.calls_after == 0
           && a.done_calls == 0, "cancel: no callback after the cancel");
    avc_llm_free(a.llm);
    avc_config_free(cfg);

    /* from within the token callback */
    memset(&a, 0, sizeof(a));
    a.act = ACT_CANCEL;
    a.act_after = 3;
    ask(&a, "t-cancel2@tps=50,tokens=100", keep, 1000);
    TAP_OK(a.ntokens == 3 && a.calls_after == 0 && a.done_calls == 0,
           "cancel: from the token callback, nothing follows");
    TAP_OK(wait_outcome("t-cancel2@tps=50,tokens=100", "client-closed",
                        3000), "cancel: from the callback, upstream aborted");

    /* the whole client freed from within the token callback */
    memset(&a, 0, sizeof(a));
    a.act = ACT_FREE;
    a.act_after = 2;
    ask(&a, "t-cancel3@tps=50,tokens=100", keep, 1000);
    TAP_OK(a.ntokens == 2 && a.calls_after == 0 && a.done_calls == 0,
           "cancel: avc_llm_free from the token callback");
    TAP_OK(wait_outcome("t-cancel3@tps=50,tokens=100", "client-closed",
                        3000), "cancel: freed, upstream aborted");

    /* cancelled while waiting for a retry */
    memset(&a, 0, sizeof(a));
    a.llm = mock_llm(&cfg, "t-cancel4@status=429,retry-after=1", keep);
    if (a.llm && avc_llm_chat(a.llm, &req, on_token, on_done, &a, &a.op)
                 == AVC_OK)
    {
        run_for(200);
        avc_llm_cancel(a.op);
        a.cancelled = 1;
        run_for(1200);
        TAP_OK(a.done_calls == 0 && a.ntokens == 0,
               "cancel: while waiting to retry");
        {
            json_t *recs = records("t-cancel4@status=429,retry-after=1");

            TAP_IS(json_array_size(recs), 1, "cancel: the retry never went");
            json_decref(recs);
        }
    }
    avc_llm_free(a.llm);
    avc_config_free(cfg);
}

/* many at once ($AVC_TEST_LLM_MANY streams, default 200) */

static void
test_many(void)
{
    static const char *const cfgkv[] = { "llm.timeout", "60000",
                                         "llm.first_token_timeout", "60000",
                                         NULL };
    avc_llm_request_t req;
    avc_config_t *cfg;
    avc_llm_t *llm;
    size_t i, n = 200, ok = 0, active_max = 0;
    uint64_t end, t0;
    ans_t *as;
    int all = 0, rc = AVC_OK;

    if (getenv("AVC_TEST_LLM_MANY")) {
        n = (size_t) atoi(getenv("AVC_TEST_LLM_MANY"));
        n = n ? n : 1;
    }
    as = calloc(n, sizeof(*as));
    llm = mock_llm(&cfg, "t-many@tps=20,tokens=10,first=100", cfgkv);
    if (llm == NULL || as == NULL) {
        TAP_OK(0, "many: client");
        free(as);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.messages = conv;
    req.n_messages = 2;
    t0 = now_ms();
    for (i = 0; i < n && rc == AVC_OK; i++) {
        as[i].start = t0;
        rc = avc_llm_chat(llm, &req, on_token, on_done, &as[i], &as[i].op);
    }
    TAP_IS(rc, AVC_OK, "many: %zu answers started", n);
    end = now_ms() + 60000;
    while (!all && now_ms() < end) {
        avc_loop_run_once(loop, 20);
        if (avc_llm_active(llm) > active_max) {
            active_max = avc_llm_active(llm);
        }
        all = avc_llm_active(llm) == 0;
    }
    for (i = 0; i < n; i++) {
        ok += as[i].done && as[i].err == AVC_OK && as[i].ntokens == 10;
    }
    TAP_IS(ok, n, "many: every answer complete");
    TAP_IS(active_max, n, "many: all were streaming at once");
    tap_diag("many: %zu streams of 10 tokens at 20/s in %llu ms", n,
             (unsigned long long) (now_ms() - t0));
    if (getenv("AVC_TEST_VERBOSE")) {
        json_t *recs = records("t-many@tps=20,tokens=10,first=100"), *r;
        double s0 = 1e9, s1 = 0, f = 0, e = 0;
        size_t k;

        json_array_foreach(recs, k, r) {
            double ts = json_number_value(json_object_get(r, "t_start"));
            double tf = json_number_value(json_object_get(r, "t_first"));
            double te = json_number_value(json_object_get(r, "t_end"));

            s0 = ts < s0 ? ts : s0;
            s1 = ts > s1 ? ts : s1;
            f = tf - ts > f ? tf - ts : f;
            e = te > e ? te : e;
        }
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        tap_diag("many: this process used %ld.%03ld s user, %ld.%03ld s "
                 "system", (long) ru.ru_utime.tv_sec,
                 (long) ru.ru_utime.tv_usec / 1000,
                 (long) ru.ru_stime.tv_sec,
                 (long) ru.ru_stime.tv_usec / 1000);
        tap_diag("many: at the mock, starts over %.3f s, first token at "
                 "most %.3f s late, last end %.3f s after the first start",
                 s1 - s0, f, e - s0);
        json_decref(recs);
    }
    avc_llm_free(llm);
    avc_config_free(cfg);
    free(as);
}

int
main(int argc, char **argv)
{
    static const char *const args[] = { "--key", KEY, NULL };
    json_t *st;

    if (getenv("AVC_TOP")) {
        top = getenv("AVC_TOP");
    }
    tap_select(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    avc_log_set(log_cb, NULL, AVC_LOG_DEBUG);

    loop = avc_loop_new(2);
    http = avc_http_new(loop);
    if (loop == NULL || http == NULL) {
        TAP_OK(0, "loop and HTTP client");
        return tap_done();
    }
    if (tap_section("config")) {
        test_config();
    }
    if (tap_section("count")) {
        test_count();
    }
    if (tap_section("offline")) {
        test_offline();
    }
    if (tap_section("stream") || tap_section("errors") || tap_section("retry")
        || tap_section("cancel") || tap_section("many"))
    {
        if (mock_start_script(&mk, top, "openai-chat.pl", args) != 0) {
            TAP_OK(0, "the mock started");
            avc_http_free(http);
            avc_loop_free(loop);
            return tap_done();
        }
        snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1/", mk.port);
        if (tap_section("stream")) {
            test_stream();
        }
        if (tap_section("errors")) {
            test_errors();
        }
        if (tap_section("retry")) {
            test_retry();
        }
        if (tap_section("cancel")) {
            test_cancel();
        }
        if (tap_section("many")) {
            test_many();
        }
        /* the pool's idle connections close with the client */
        avc_http_free(http);
        http = NULL;
        {
            uint64_t end = now_ms() + 3000;
            long long conns = -1;

            while (now_ms() < end) {
                st = mock_get("/_stats");
                conns = json_integer_value(json_object_get(st,
                                                           "connections"));
                json_decref(st);
                if (conns == 0) {
                    break;
                }
                run_for(20);
            }
            TAP_IS(conns, 0, "no connection left open at the mock");
        }
        mock_stop(&mk);
    }
    avc_http_free(http);
    avc_loop_free(loop);
    TAP_OK(!key_logged, "the key never reached the log (%d lines)",
           log_lines);
    return tap_done();
}
