/*
 * Speech-to-text: configuration, the dispatcher between the providers
 * and the life of a transcription (see stt_int.h).
 *
 * Every transcription has one deadline (stt.timeout), a loop timer of
 * its own whichever provider runs it: the cloud request is aborted, an
 * offline job is told to stop and its result discarded.  The same timer
 * delivers a failure that a provider found while starting, so that the
 * callback never runs from within avc_stt_transcribe().
 */
#include "stt_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_STT_OPENAI_BASE  "https://api.openai.com/v1"
#define AVC_STT_OPENAI_MODEL "whisper-1"
#define AVC_STT_MODEL_LEN    200

static int
avc_stt_bad(const char *key, const char *value, const char *why)
{
    avc_log(AVC_LOG_ERR, "stt: bad setting %s \"%s\": %s", key,
            value ? value : "", why);
    return AVC_EINVAL;
}

static int
avc_stt_uint(const avc_config_t *cfg, const char *key, long long def,
    long long min, long long max, unsigned *out)
{
    long long v = def;

    if (avc_config_get_int(cfg, key, def, min, max, &v) != AVC_OK) {
        avc_log(AVC_LOG_ERR, "stt: bad setting %s \"%s\": not an integer "
                "in %lld-%lld", key, avc_config_get(cfg, key, ""), min,
                max);
        return AVC_EINVAL;
    }
    *out = (unsigned) v;
    return AVC_OK;
}

/* a language tag: "en", "eng", "en-US" (BCP 47's common forms) */
static int
avc_stt_language_ok(const char *s)
{
    size_t i = 0, k;

    while (isalpha((unsigned char) s[i])) {
        i++;
    }
    if (i < 2 || i > 3) {
        return 0;
    }
    if (s[i] == '\0') {
        return 1;
    }
    if (s[i] != '-' && s[i] != '_') {
        return 0;
    }
    k = ++i;
    while (isalnum((unsigned char) s[i])) {
        i++;
    }
    return s[i] == '\0' && i - k >= 2 && i - k <= 8;
}

static int
avc_stt_configure(avc_stt_t *stt, const avc_config_t *cfg)
{
    const char *key, *prov, *base, *model, *lang;
    unsigned retries;
    int rc = AVC_OK, err;

    key = avc_config_get(cfg, "stt.key", "");
    prov = avc_config_get(cfg, "stt.provider", *key ? "openai"
                                                     : "pocketsphinx");
    lang = avc_config_get(cfg, "stt.language", "en");
    if (!avc_stt_language_ok(lang)) {
        return avc_stt_bad("stt.language", lang, "not a language tag such "
                           "as en or en-US");
    }
    snprintf(stt->language, sizeof(stt->language), "%s", lang);
    rc |= avc_stt_uint(cfg, "stt.timeout", 30000, 0, 3600000,
                       &stt->timeout_ms);
    rc |= avc_stt_uint(cfg, "stt.retries", 2, 0, 10, &retries);
    rc |= avc_stt_uint(cfg, "stt.backoff", 250, 0, 60000, &stt->backoff_ms);
    if (rc != AVC_OK) {
        return AVC_EINVAL;
    }
    stt->attempts = retries ? retries : 1;

    if (strcmp(prov, "pocketsphinx") == 0) {
        stt->kind = AVC__STT_SPHINX;
        stt->provider = "pocketsphinx";
        stt->sphinx = avc__sphinx_new(cfg, &err);
        return stt->sphinx ? AVC_OK : err;
    }
    if (strcmp(prov, "openai") != 0) {
        return avc_stt_bad("stt.provider", prov,
                           "not openai or pocketsphinx");
    }
    stt->kind = AVC__STT_OPENAI;
    stt->provider = "openai";
    if (stt->http == NULL) {
        return avc_stt_bad("stt.provider", prov, "needs an HTTP client");
    }
    base = avc_config_get(cfg, "stt.base_url", AVC_STT_OPENAI_BASE);
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
    {
        return avc_stt_bad("stt.base_url", base, "not an http(s) URL");
    }
    /* a local server (whisper.cpp, faster-whisper) may want no key */
    if (*key == '\0' && avc_config_get(cfg, "stt.base_url", NULL) == NULL) {
        return avc_stt_bad("stt.key", "", "required by "
                           AVC_STT_OPENAI_BASE);
    }
    if (strpbrk(key, "\r\n") != NULL) {
        return avc_stt_bad("stt.key", "", "contains a line break");
    }
    model = avc_config_get(cfg, "stt.model", AVC_STT_OPENAI_MODEL);
    if (*model == '\0' || strlen(model) > AVC_STT_MODEL_LEN
        || strpbrk(model, "\r\n") != NULL)
    {
        return avc_stt_bad("stt.model", model, "empty or too long");
    }
    stt->url = avc__url_join(base, "/audio/transcriptions");
    if (*key) {
        stt->auth = avc__auth_bearer(key);
        stt->key = strdup(key);
        if (stt->auth == NULL || stt->key == NULL) {
            return AVC_ENOMEM;
        }
    }
    stt->model = strdup(model);
    return stt->url && stt->model ? AVC_OK : AVC_ENOMEM;
}

static void
avc_stt_destroy(avc_stt_t *stt)
{
    avc__sphinx_release(stt->sphinx);
    free(stt->url);
    avc__free_secret(stt->auth);
    avc__free_secret(stt->key);
    free(stt->model);
    free(stt);
}

AVC_API avc_stt_t *
avc_stt_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    avc_stt_t *stt;
    int rc;

    if (loop == NULL || cfg == NULL) {
        if (err) {
            *err = AVC_EINVAL;
        }
        return NULL;
    }
    stt = calloc(1, sizeof(*stt));
    if (stt == NULL) {
        if (err) {
            *err = AVC_ENOMEM;
        }
        return NULL;
    }
    stt->loop = loop;
    stt->http = http;
    rc = avc_stt_configure(stt, cfg);
    if (rc != AVC_OK) {
        avc_stt_destroy(stt);
        if (err) {
            *err = rc;
        }
        return NULL;
    }
    if (err) {
        *err = AVC_OK;
    }
    return stt;
}

AVC_API const char *
avc_stt_provider(const avc_stt_t *stt)
{
    return stt->provider;
}

AVC_API int
avc_stt_has_domain(avc_stt_t *stt, const char *key)
{
    if (stt == NULL) {
        return 0;
    }
    if (stt->kind != AVC__STT_SPHINX) {
        return 1;
    }
    return avc__sphinx_has_domain(stt->sphinx, key);
}

AVC_API size_t
avc_stt_active(const avc_stt_t *stt)
{
    return stt ? stt->ops.n : 0;
}

/* the life of an op */

static void
avc_stt_link(avc_stt_t *stt, avc_stt_op_t *op)
{
    op->stt = stt;
    avc__list_add(&stt->ops, &op->link);
}

static void
avc_stt_unlink(avc_stt_op_t *op)
{
    avc_stt_t *stt = op->stt;

    if (stt == NULL) {
        return;
    }
    avc__list_del(&stt->ops, &op->link);
    op->stt = NULL;
}

/* stop everything that could call back into the op */
static void
avc_stt_release(avc_stt_op_t *op)
{
    avc_timer_free(op->timer);
    op->timer = NULL;
    if (op->kind == AVC__STT_OPENAI) {
        avc__stt_openai_stop(op);
    } else {
        avc__sphinx_stop(op);
    }
}

static void
avc_stt_op_free(avc_stt_op_t *op)
{
    avc_stt_release(op);
    free(op);
}

void
avc__stt_enter(avc_stt_op_t *op)
{
    op->busy++;
}

void
avc__stt_leave(avc_stt_op_t *op)
{
    if (--op->busy == 0 && (op->canceled || op->finished)) {
        avc_stt_op_free(op);
    }
}

AVC_API void
avc_stt_cancel(avc_stt_op_t *op)
{
    if (op == NULL || op->canceled || op->finished) {
        return;
    }
    op->canceled = 1;
    avc_stt_unlink(op);
    avc_stt_release(op);
    if (op->busy == 0) {
        avc_stt_op_free(op);
    }
}

AVC_API void
avc_stt_free(avc_stt_t *stt)
{
    if (stt == NULL) {
        return;
    }
    while (stt->ops.head) {
        avc_stt_cancel((avc_stt_op_t *) stt->ops.head);
    }
    avc_stt_destroy(stt);
}

static const char *
avc_stt_client_message(int err)
{
    switch (err) {
    case AVC_ETIMEDOUT:
        return "Speech recognition did not finish in time";
    case AVC_ECONNECT:
        return "The speech recognition service could not be reached";
    case AVC_EHTTP:
        return "The connection to the speech recognition service failed";
    case AVC_EPROTO:
        return "The speech recognition service sent a malformed answer";
    case AVC_EUPSTREAM:
        return "The speech recognition service reported an error";
    case AVC_EPARSE:
        return "The audio could not be decoded";
    case AVC_ETOOBIG:
        return "The audio is too long";
    case AVC_ENOMEM:
        return "The server is out of memory";
    default:
        return "Speech recognition failed";
    }
}

void
avc__stt_finish(avc_stt_op_t *op, int err, const avc__stt_out_t *out,
    const char *message)
{
    avc_stt_result_t res;

    if (op->finished || op->canceled) {
        return;
    }
    op->finished = 1;
    avc_stt_release(op);
    avc_stt_unlink(op);

    memset(&res, 0, sizeof(res));
    res.provider = op->provider;
    res.text = "";
    res.audio_ms = op->audio_ms;
    if (err == AVC_OK && out) {
        res.text = out->text ? out->text : "";
        res.confidence = out->confidence;
        res.words_json = out->words_json;
        if (out->audio_ms) {
            res.audio_ms = out->audio_ms;
        }
    } else {
        res.error = message ? message : avc_stt_client_message(err);
        avc_log(err == AVC_EPARSE || err == AVC_ETOOBIG ? AVC_LOG_INFO
                                                        : AVC_LOG_WARN,
                "stt: %s: %s: %s", op->provider, avc_strerror(err),
                op->detail[0] ? op->detail : res.error);
    }
    op->done(err, &res, op->data);
}

static void
avc_stt_on_timer(avc_timer_t *timer, void *arg)
{
    avc_stt_op_t *op = arg;

    avc__stt_enter(op);
    if (op->early_err) {
        avc__stt_finish(op, op->early_err, NULL, op->early_msg);
    } else {
        if (op->detail[0] == '\0' && op->stt) {
            snprintf(op->detail, sizeof(op->detail), "no transcript within "
                     "%u ms", op->stt->timeout_ms);
        }
        avc__stt_finish(op, AVC_ETIMEDOUT, NULL, NULL);
    }
    avc__stt_leave(op);
}

void
avc__stt_fail_soon(avc_stt_op_t *op, int err, const char *message)
{
    op->early_err = err;
    op->early_msg = message;
    avc_timer_start(op->timer, 0);
}

void
avc__stt_snippet(const avc_stt_t *stt, const char *s, size_t n, char *out,
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
    kl = stt && stt->key ? strlen(stt->key) : 0;
    if (kl >= 4) {
        while ((p = strstr(out, stt->key)) != NULL) {
            memset(p, '*', kl);
        }
    }
}

/* the dispatcher */

AVC_API int
avc_stt_transcribe(avc_stt_t *stt, const avc_stt_request_t *req,
    avc_stt_done_cb done, void *data, avc_stt_op_t **opp)
{
    avc_stt_op_t *op;
    int rc;

    if (opp) {
        *opp = NULL;
    }
    if (stt == NULL || req == NULL || done == NULL || req->audio == NULL
        || req->len == 0 || (unsigned) req->format > AVC_AUDIO_OGG
        || (req->language && !avc_stt_language_ok(req->language)))
    {
        return AVC_EINVAL;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->kind = stt->kind;
    op->provider = stt->provider;
    op->done = done;
    op->data = data;
    snprintf(op->language, sizeof(op->language), "%s",
             req->language ? req->language : stt->language);
    avc_stt_link(stt, op);
    op->timer = avc_timer_new(stt->loop, avc_stt_on_timer, op);
    if (op->timer == NULL) {
        rc = AVC_ENOMEM;
    } else if (stt->kind == AVC__STT_OPENAI) {
        rc = avc__stt_openai_start(op, req);
    } else {
        rc = avc__sphinx_start(op, req);
    }
    if (rc != AVC_OK) {
        /* nothing was called back: undo quietly */
        avc_stt_unlink(op);
        avc_stt_op_free(op);
        return rc;
    }
    if (stt->timeout_ms > 0 && op->early_err == AVC_OK) {
        avc_timer_start(op->timer, stt->timeout_ms);
    }
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}
