/*
 * The language-model client: configuration, the dispatcher between the
 * providers, the life of an answer (see llm_internal.h), the offline
 * provider's delivery, and the token estimate used for budgets.
 *
 * The offline responder (offline.c) writes its whole answer at once; it
 * is handed to the caller in word groups from loop timers, so that the
 * caller sees the same streaming shape as from a real model and never a
 * callback from within avc_llm_chat().
 */
#include "llm_internal.h"

#include "offline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_LLM_OPENROUTER_BASE  "https://openrouter.ai/api/v1"
#define AVC_LLM_OPENROUTER_MODEL "openai/gpt-4o"
#define AVC_LLM_OPENAI_BASE      "https://api.openai.com/v1"
#define AVC_LLM_OPENAI_MODEL     "gpt-4o"
#define AVC_LLM_LOCAL_BASE       "http://127.0.0.1:8080/v1"
#define AVC_LLM_LOCAL_MODEL      "local"

/* the answer text kept for the usage estimate; beyond it, bytes / 4 */
#define AVC_LLM_ANSWER_KEEP      (256 * 1024)
/* words in one piece of the offline answer */
#define AVC_LLM_OFFLINE_WORDS    3

static int
avc_llm_bad(const char *key, const char *value, const char *why)
{
    avc_log(AVC_LOG_ERR, "llm: bad setting %s \"%s\": %s", key,
            value ? value : "", why);
    return AVC_EINVAL;
}

static int
avc_llm_uint(const avc_config_t *cfg, const char *key, long long def,
    long long min, long long max, unsigned *out)
{
    long long v = def;

    if (avc_config_get_int(cfg, key, def, min, max, &v) != AVC_OK) {
        avc_log(AVC_LOG_ERR, "llm: bad setting %s \"%s\": not an integer "
                "in %lld-%lld", key, avc_config_get(cfg, key, ""), min,
                max);
        return AVC_EINVAL;
    }
    *out = (unsigned) v;
    return AVC_OK;
}

/* "a, b,,c" into llm->models after the first */
static int
avc_llm_fallbacks(avc_llm_t *llm, const char *list)
{
    const char *p = list, *s, *e;

    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        s = p;
        while (*p && *p != ',') {
            p++;
        }
        e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e == s) {
            continue;
        }
        if (llm->n_models == AVC__LLM_MODELS_MAX) {
            return avc_llm_bad("llm.fallback_models", list,
                               "too many models");
        }
        if ((size_t) (e - s) > AVC__LLM_MODEL_LEN
            || memchr(s, '"', (size_t) (e - s)) != NULL)
        {
            return avc_llm_bad("llm.fallback_models", list,
                               "a model name is too long");
        }
        llm->models[llm->n_models] = strndup(s, (size_t) (e - s));
        if (llm->models[llm->n_models] == NULL) {
            return AVC_ENOMEM;
        }
        llm->n_models++;
    }
    return AVC_OK;
}

static int
avc_llm_configure(avc_llm_t *llm, const avc_config_t *cfg)
{
    const char *prov, *base, *model, *key, *fb, *temp;
    const char *dbase, *dmodel;
    char *end;
    int rc = AVC_OK;

    key = avc_config_get(cfg, "llm.key", "");
    prov = avc_config_get(cfg, "llm.provider", *key ? "openrouter"
                                                      : "offline");
    if (strcmp(prov, "offline") == 0) {
        llm->kind = AVC__LLM_OFFLINE;
        llm->provider = "offline";
        dbase = NULL;
        dmodel = "offline";
    } else if (strcmp(prov, "openrouter") == 0) {
        llm->kind = AVC__LLM_OPENAI;
        llm->provider = "openrouter";
        dbase = AVC_LLM_OPENROUTER_BASE;
        dmodel = AVC_LLM_OPENROUTER_MODEL;
    } else if (strcmp(prov, "openai") == 0) {
        llm->kind = AVC__LLM_OPENAI;
        llm->provider = "openai";
        dbase = AVC_LLM_OPENAI_BASE;
        dmodel = AVC_LLM_OPENAI_MODEL;
    } else if (strcmp(prov, "local") == 0) {
        llm->kind = AVC__LLM_OPENAI;
        llm->provider = "local";
        dbase = AVC_LLM_LOCAL_BASE;
        dmodel = AVC_LLM_LOCAL_MODEL;
    } else {
        return avc_llm_bad("llm.provider", prov,
                           "not openrouter, openai, local or offline");
    }

    rc |= avc_llm_uint(cfg, "llm.connect_timeout", 5000, 1, 600000,
                       &llm->connect_ms);
    rc |= avc_llm_uint(cfg, "llm.first_token_timeout", 30000, 0, 3600000,
                       &llm->first_token_ms);
    rc |= avc_llm_uint(cfg, "llm.timeout", 120000, 0, 3600000,
                       &llm->total_ms);
    rc |= avc_llm_uint(cfg, "llm.retries", 2, 1, 10, &llm->retries);
    rc |= avc_llm_uint(cfg, "llm.backoff", 250, 0, 60000, &llm->backoff_ms);
    rc |= avc_llm_uint(cfg, "llm.max_tokens", 800, 1, 1000000,
                       &llm->max_tokens);
    rc |= avc_llm_uint(cfg, "llm.context_window", 128000, 512, 100000000,
                       &llm->context_window);
    rc |= avc_llm_uint(cfg, "llm.offline_pace", 0, 0, 10000,
                       &llm->offline_pace_ms);
    temp = avc_config_get(cfg, "llm.temperature", "0.4");
    errno = 0;
    llm->temperature = strtod(temp, &end);
    if (errno != 0 || end == temp || *end != '\0'
        || !(llm->temperature >= 0 && llm->temperature <= 2))
    {
        rc = avc_llm_bad("llm.temperature", temp, "not a number in 0-2");
    }
    if (rc != AVC_OK) {
        return AVC_EINVAL;
    }

    model = avc_config_get(cfg, "llm.model", dmodel);
    if (*model == '\0' || strlen(model) > AVC__LLM_MODEL_LEN) {
        return avc_llm_bad("llm.model", model, "empty or too long");
    }
    llm->models[0] = strdup(model);
    if (llm->models[0] == NULL) {
        return AVC_ENOMEM;
    }
    llm->n_models = 1;
    if (llm->kind == AVC__LLM_OFFLINE) {
        return AVC_OK;
    }

    fb = avc_config_get(cfg, "llm.fallback_models", "");
    rc = avc_llm_fallbacks(llm, fb);
    if (rc != AVC_OK) {
        return rc;
    }
    if (llm->http == NULL) {
        return avc_llm_bad("llm.provider", prov, "needs an HTTP client");
    }
    base = avc_config_get(cfg, "llm.base_url", dbase);
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
    {
        return avc_llm_bad("llm.base_url", base, "not an http(s) URL");
    }
    if (*key == '\0' && llm->kind == AVC__LLM_OPENAI
        && strcmp(llm->provider, "local") != 0)
    {
        avc_log(AVC_LOG_ERR, "llm: bad setting llm.key: required by %s",
                llm->provider);
        return AVC_EINVAL;
    }
    if (strpbrk(key, "\r\n") != NULL) {
        /* never quote a key, not even a broken one */
        avc_log(AVC_LOG_ERR, "llm: bad setting llm.key: contains a line "
                "break");
        return AVC_EINVAL;
    }

    llm->url = avc__url_join(base, "/chat/completions");
    if (*key) {
        llm->auth = avc__auth_bearer(key);
        llm->key = strdup(key);
        if (llm->auth == NULL || llm->key == NULL) {
            return AVC_ENOMEM;
        }
    }
    return llm->url ? AVC_OK : AVC_ENOMEM;
}

static void
avc_llm_destroy(avc_llm_t *llm)
{
    size_t i;

    for (i = 0; i < llm->n_models; i++) {
        free(llm->models[i]);
    }
    free(llm->url);
    avc__free_secret(llm->auth);
    avc__free_secret(llm->key);
    free(llm);
}

AVC_API avc_llm_t *
avc_llm_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    avc_llm_t *llm;
    int rc;

    if (loop == NULL || cfg == NULL) {
        if (err) {
            *err = AVC_EINVAL;
        }
        return NULL;
    }
    llm = calloc(1, sizeof(*llm));
    if (llm == NULL) {
        if (err) {
            *err = AVC_ENOMEM;
        }
        return NULL;
    }
    llm->loop = loop;
    llm->http = http;
    rc = avc_llm_configure(llm, cfg);
    if (rc != AVC_OK) {
        avc_llm_destroy(llm);
        if (err) {
            *err = rc;
        }
        return NULL;
    }
    if (err) {
        *err = AVC_OK;
    }
    return llm;
}

AVC_API const char *
avc_llm_provider(const avc_llm_t *llm)
{
    return llm->provider;
}

AVC_API const char *
avc_llm_model(const avc_llm_t *llm)
{
    return llm->models[0];
}

AVC_API unsigned
avc_llm_context_window(const avc_llm_t *llm)
{
    return llm->context_window;
}

AVC_API unsigned
avc_llm_max_tokens(const avc_llm_t *llm)
{
    return llm->max_tokens;
}

AVC_API size_t
avc_llm_active(const avc_llm_t *llm)
{
    return llm ? llm->ops.n : 0;
}

/* the life of an op */

static void
avc_llm_link(avc_llm_t *llm, avc_llm_op_t *op)
{
    op->llm = llm;
    avc__list_add(&llm->ops, &op->link);
}

static void
avc_llm_unlink(avc_llm_op_t *op)
{
    avc_llm_t *llm = op->llm;

    if (llm == NULL) {
        return;
    }
    avc__list_del(&llm->ops, &op->link);
    op->llm = NULL;
}

/* stop everything that could call back into the op */
static void
avc_llm_release(avc_llm_op_t *op)
{
    avc_timer_free(op->first_timer);
    avc_timer_free(op->total_timer);
    avc_timer_free(op->pace_timer);
    op->first_timer = op->total_timer = op->pace_timer = NULL;
    if (op->kind == AVC__LLM_OPENAI) {
        avc__llm_openai_stop(op);
    }
}

static void
avc_llm_op_free(avc_llm_op_t *op)
{
    avc_llm_release(op);
    avc__buf_free(&op->answer);
    avc__buf_free(&op->resp);
    free(op);
}

void
avc__llm_enter(avc_llm_op_t *op)
{
    op->busy++;
}

void
avc__llm_leave(avc_llm_op_t *op)
{
    if (--op->busy == 0 && (op->canceled || op->finished)) {
        avc_llm_op_free(op);
    }
}

AVC_API void
avc_llm_cancel(avc_llm_op_t *op)
{
    if (op == NULL || op->canceled || op->finished) {
        return;
    }
    op->canceled = 1;
    avc_llm_unlink(op);
    avc_llm_release(op);
    if (op->busy == 0) {
        avc_llm_op_free(op);
    }
}

AVC_API void
avc_llm_free(avc_llm_t *llm)
{
    if (llm == NULL) {
        return;
    }
    while (llm->ops.head) {
        avc_llm_cancel((avc_llm_op_t *) llm->ops.head);
    }
    avc_llm_destroy(llm);
}

int
avc__llm_token(avc_llm_op_t *op, const char *p, size_t n)
{
    size_t keep;

    if (op->canceled || op->finished) {
        return AVC_ECANCELED;
    }
    if (n == 0) {
        return AVC_OK;
    }
    op->answer_bytes += n;
    if (op->answer.len < AVC_LLM_ANSWER_KEEP) {
        keep = AVC_LLM_ANSWER_KEEP - op->answer.len;
        /* the estimate only: on failure it falls back to bytes / 4 */
        (void) avc__buf_append(&op->answer, p, n < keep ? n : keep);
    }
    op->tokens_sent++;
    if (op->tokens_sent == 1 && op->first_timer) {
        avc_timer_stop(op->first_timer);
    }
    op->on_token(p, n, op->data);
    return op->canceled ? AVC_ECANCELED : AVC_OK;
}

static const char *
avc_llm_client_message(int err, size_t tokens_sent)
{
    switch (err) {
    case AVC_OK:
        return NULL;
    case AVC_ETIMEDOUT:
        return tokens_sent ? "The language model took too long to answer"
                           : "The language model did not answer in time";
    case AVC_EPROTO:
        return "The language model sent a malformed answer";
    case AVC_ECONNECT:
        return "The language model could not be reached";
    case AVC_EHTTP:
        return tokens_sent ? "The connection to the language model broke "
                             "off in mid-answer"
                           : "The connection to the language model failed";
    case AVC_ENOMEM:
        return "The server is out of memory";
    case AVC_EUPSTREAM:
        return tokens_sent ? "The language model failed in mid-answer"
                           : "The language model reported an error";
    default:
        return "The language model failed";
    }
}

void
avc__llm_finish(avc_llm_op_t *op, int err)
{
    avc_llm_result_t res;
    unsigned extra;

    if (op->finished || op->canceled) {
        return;
    }
    op->finished = 1;
    avc_llm_release(op);
    avc_llm_unlink(op);

    memset(&res, 0, sizeof(res));
    res.provider = op->provider;
    res.model = op->model;
    res.finish_reason = op->finish[0] ? op->finish : NULL;
    res.tokens_sent = op->tokens_sent;
    res.error = avc_llm_client_message(err, op->tokens_sent);
    if (op->have_usage) {
        res.prompt_tokens = op->prompt_tokens;
        res.completion_tokens = op->completion_tokens;
    } else {
        extra = (unsigned) ((op->answer_bytes - op->answer.len + 3) / 4);
        res.prompt_tokens = op->prompt_estimate;
        res.completion_tokens = avc_llm_count_tokens(op->answer.data,
                                                     op->answer.len)
                                + extra;
        res.usage_estimated = 1;
    }
    op->on_done(err, &res, op->data);
}

static void
avc_llm_first_timeout(avc_timer_t *timer, void *arg)
{
    avc_llm_op_t *op = arg;

    avc__llm_enter(op);
    if (op->tokens_sent == 0) {
        avc_log(AVC_LOG_WARN, "llm: %s %s: no token within %u ms",
                op->provider, op->model, op->llm->first_token_ms);
        avc__llm_finish(op, AVC_ETIMEDOUT);
    }
    avc__llm_leave(op);
}

static void
avc_llm_total_timeout(avc_timer_t *timer, void *arg)
{
    avc_llm_op_t *op = arg;

    avc__llm_enter(op);
    avc_log(AVC_LOG_WARN, "llm: %s %s: the answer took over %u ms (%zu "
            "tokens)", op->provider, op->model, op->llm->total_ms,
            op->tokens_sent);
    avc__llm_finish(op, AVC_ETIMEDOUT);
    avc__llm_leave(op);
}

/* helpers for the providers */

json_t *
avc__llm_json_text(const char *s, size_t n)
{
    avc__buf_t b;
    json_t *j;
    size_t i = 0, k;
    unsigned char c;
    int rc = AVC_OK;

    if (avc__utf8_valid(s, n) && memchr(s, '\0', n) == NULL) {
        return json_stringn(s, n);
    }
    avc__buf_init(&b);
    while (i < n && rc == AVC_OK) {
        c = (unsigned char) s[i];
        k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
            : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (k == 0 || i + k > n || c == 0 || !avc__utf8_valid(s + i, k)) {
            rc = avc__buf_append(&b, "\xef\xbf\xbd", 3);     /* U+FFFD */
            i++;
        } else {
            rc = avc__buf_append(&b, s + i, k);
            i += k;
        }
    }
    j = rc == AVC_OK ? json_stringn(b.data ? b.data : "", b.len) : NULL;
    avc__buf_free(&b);
    return j;
}

void
avc__llm_snippet(const avc_llm_t *llm, const char *s, size_t n, char *out,
    size_t outn)
{
    size_t i, kl;
    char *p;

    if (n >= outn) {
        n = outn - 1;
    }
    for (i = 0; i < n; i++) {
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : ' ';
    }
    out[n] = '\0';
    /* providers echo keys in errors ("Incorrect API key provided") */
    kl = llm && llm->key ? strlen(llm->key) : 0;
    if (kl >= 4) {
        while ((p = strstr(out, llm->key)) != NULL) {
            memset(p, '*', kl);
        }
    }
}

/* the offline provider */

/* the next piece: up to AVC_LLM_OFFLINE_WORDS words with the spaces
 * before them */
static size_t
avc_llm_piece(const char *s, size_t len, size_t off)
{
    size_t i = off, k;
    unsigned words = 0;

    while (i < len && words < AVC_LLM_OFFLINE_WORDS) {
        while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t'
                           || s[i] == '\r'))
        {
            i++;
        }
        if (i == len) {
            break;
        }
        while (i < len && s[i] != ' ' && s[i] != '\n' && s[i] != '\t'
               && s[i] != '\r')
        {
            i++;
        }
        words++;
    }
    /* trailing white space goes with the last piece */
    for (k = i; k < len && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t'
                            || s[k] == '\r'); k++)
    {
        /* nothing */
    }
    return (k == len ? len : i) - off;
}

static void
avc_llm_offline_step(avc_timer_t *timer, void *arg)
{
    avc_llm_op_t *op = arg;
    size_t n;

    avc__llm_enter(op);
    n = avc_llm_piece(op->resp.data, op->resp.len, op->off);
    if (n > 0) {
        op->off += n;
        if (avc__llm_token(op, op->resp.data + op->off - n, n) != AVC_OK) {
            avc__llm_leave(op);
            return;
        }
    }
    if (op->off < op->resp.len) {
        avc_timer_start(op->pace_timer, op->llm->offline_pace_ms);
    } else {
        snprintf(op->finish, sizeof(op->finish), "stop");
        avc__llm_finish(op, AVC_OK);
    }
    avc__llm_leave(op);
}

static int
avc_llm_offline_start(avc_llm_op_t *op, const avc_llm_request_t *req)
{
    int rc;

    rc = avc__llm_offline_answer(req, &op->resp);
    if (rc != AVC_OK) {
        return rc;
    }
    op->pace_timer = avc_timer_new(op->llm->loop, avc_llm_offline_step, op);
    if (op->pace_timer == NULL) {
        return AVC_ENOMEM;
    }
    avc_timer_start(op->pace_timer, 0);
    return AVC_OK;
}

/* the dispatcher */

static unsigned
avc_llm_prompt_estimate(const avc_llm_request_t *req)
{
    unsigned n = 3;
    size_t i;

    /* each message costs its text plus about 4 tokens of framing */
    for (i = 0; i < req->n_messages; i++) {
        if (req->messages[i].content) {
            n += avc_llm_count_tokens(req->messages[i].content,
                                      strlen(req->messages[i].content));
        }
        n += 4;
    }
    return n;
}

AVC_API int
avc_llm_chat(avc_llm_t *llm, const avc_llm_request_t *req,
    avc_llm_token_cb on_token, avc_llm_done_cb on_done, void *data,
    avc_llm_op_t **opp)
{
    avc_llm_op_t *op;
    size_t i;
    int rc;

    if (opp) {
        *opp = NULL;
    }
    if (llm == NULL || req == NULL || on_token == NULL || on_done == NULL
        || req->n_messages == 0 || req->messages == NULL
        || (req->n_passages > 0 && req->passages == NULL))
    {
        return AVC_EINVAL;
    }
    for (i = 0; i < req->n_messages; i++) {
        if ((unsigned) req->messages[i].role > AVC_LLM_ASSISTANT) {
            return AVC_EINVAL;
        }
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    avc__buf_init(&op->answer);
    avc__buf_init(&op->resp);
    op->kind = llm->kind;
    op->provider = llm->provider;
    op->on_token = on_token;
    op->on_done = on_done;
    op->data = data;
    op->prompt_estimate = avc_llm_prompt_estimate(req);
    snprintf(op->model, sizeof(op->model), "%s", llm->models[0]);
    avc_llm_link(llm, op);

    if (llm->kind == AVC__LLM_OFFLINE) {
        rc = avc_llm_offline_start(op, req);
    } else {
        rc = AVC_OK;
        if (llm->first_token_ms) {
            op->first_timer = avc_timer_new(llm->loop, avc_llm_first_timeout,
                                            op);
            rc = op->first_timer ? AVC_OK : AVC_ENOMEM;
        }
        if (rc == AVC_OK && llm->total_ms) {
            op->total_timer = avc_timer_new(llm->loop, avc_llm_total_timeout,
                                            op);
            rc = op->total_timer ? AVC_OK : AVC_ENOMEM;
        }
        if (rc == AVC_OK) {
            rc = avc__llm_openai_start(op, req);
        }
        if (rc == AVC_OK && op->first_timer) {
            avc_timer_start(op->first_timer, llm->first_token_ms);
        }
        if (rc == AVC_OK && op->total_timer) {
            avc_timer_start(op->total_timer, llm->total_ms);
        }
    }
    if (rc != AVC_OK) {
        /* nothing was called back: undo quietly */
        avc_llm_unlink(op);
        avc_llm_op_free(op);
        return rc;
    }
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}

/* the token estimate */

static int
avc_llm_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int
avc_llm_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '\'';
}

/*
 * Roughly what a BPE tokenizer of the GPT-4 family makes of English: a
 * common word with the space before it is one token, a long or rare one
 * one more per 4 letters past 8; digits go in groups of 3; punctuation
 * is a token a mark (repeated marks 4 a token); a run of line breaks is
 * one; a 2-byte UTF-8 letter is part of its word, and a character of 3
 * or 4 bytes (CJK, emoji) is a token.  Within about 20% of the real
 * count on prose, which is all a budget needs.
 */
AVC_API unsigned
avc_llm_count_tokens(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text;
    const unsigned char *end = p + len;
    const unsigned char *s;
    unsigned long long n = 0;
    size_t letters;
    unsigned char c;

    if (text == NULL) {
        return 0;
    }
    while (p < end) {
        c = *p;
        if (avc_llm_is_space(c)) {
            p++;
        } else if (c == '\n') {
            while (p < end && (*p == '\n' || avc_llm_is_space(*p))) {
                p++;
            }
            n++;
        } else if (c >= '0' && c <= '9') {
            s = p;
            while (p < end && *p >= '0' && *p <= '9') {
                p++;
            }
            n += ((size_t) (p - s) + 2) / 3;
        } else if (avc_llm_is_alpha(c) || (c & 0xe0) == 0xc0) {
            letters = 0;
            while (p < end) {
                if (avc_llm_is_alpha(*p)) {
                    p++;
                } else if ((*p & 0xe0) == 0xc0 && p + 1 < end
                           && (p[1] & 0xc0) == 0x80)
                {
                    p += 2;
                } else {
                    break;
                }
                letters++;
            }
            n += 1 + (letters > 8 ? (letters - 5) / 4 : 0);
        } else if (c >= 0xe0) {
            /* one character of 3 or 4 bytes */
            p++;
            while (p < end && (*p & 0xc0) == 0x80) {
                p++;
            }
            n++;
        } else {
            s = p;
            while (p < end && *p == c) {
                p++;
            }
            n += ((size_t) (p - s) + 3) / 4;
        }
    }
    return n > 0xffffffffULL ? 0xffffffffu : (unsigned) n;
}
