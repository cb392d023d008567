/*
 * The application object, calls, and the API error shape.
 */
#include "app_int.h"

#include <avatarcore/http.h>
#include <avatarcore/mail.h>
#include <avatarcore/embed.h>
#include <avatarcore/retrieve.h>
#include <avatarcore/llm.h>
#include <avatarcore/speech.h>
#include <avatarcore/prompt.h>
#include <avatarcore/cache.h>

#include "../rag/ingest.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

AVC_API avc_app_t *
avc_app_new(avc_loop_t *loop, const avc_config_t *cfg, int *err)
{
    avc_app_t *app;
    const char *conninfo, *secret, *s;
    char *end;
    long long pool, timeout;
    int bad;

    *err = AVC_EINVAL;
    conninfo = avc_config_get(cfg, "database", NULL);
    secret = avc_config_get(cfg, "secret", NULL);
    if (loop == NULL || conninfo == NULL || *conninfo == '\0') {
        avc_log(AVC_LOG_ERR, "app: no database configured");
        return NULL;
    }
    if (secret == NULL || strlen(secret) < 16) {
        avc_log(AVC_LOG_ERR, "app: the secret must be at least 16 bytes");
        return NULL;
    }
    if (avc_config_get_int(cfg, "db.pool", 4, 1, 256, &pool) != AVC_OK
        || avc_config_get_int(cfg, "db.timeout", 10000, 100, 600000,
                              &timeout) != AVC_OK)
    {
        avc_log(AVC_LOG_ERR, "app: bad db.pool or db.timeout");
        return NULL;
    }

    *err = AVC_ENOMEM;
    app = calloc(1, sizeof(*app));
    if (app == NULL) {
        return NULL;
    }
    app->loop = loop;
    app->cfg = cfg;
    app->version = strdup(avc_config_get(cfg, "version",
                                         AVC_VERSION_STRING));
    app->db = avc_db_new(loop, conninfo, (unsigned) pool,
                         (unsigned) timeout);
    if (app->db && avc__register_statements(app->db) != AVC_OK) {
        avc_app_free(app);
        return NULL;
    }
    app->http = avc_http_new(loop);
    app->secret = strdup(secret);
    app->secret_len = strlen(secret);
    app->signup = AVC__SIGNUP_OFF;
    s = avc_config_get(cfg, "auth.signup", "off");
    if (strcmp(s, "invite") == 0) {
        app->signup = AVC__SIGNUP_INVITE;
    } else if (strcmp(s, "open") == 0) {
        app->signup = AVC__SIGNUP_OPEN;
    }
    app->public_url = strdup(avc_config_get(cfg, "app.public_url",
                                            "http://localhost"));
    if (app->http) {
        app->mailer = avc_mailer_new(loop, app->http, cfg, err);
        if (app->mailer == NULL) {
            avc_log(AVC_LOG_ERR, "app: mail: %s", avc_strerror(*err));
            avc_app_free(app);
            return NULL;
        }
        *err = AVC_ENOMEM;
    }
    if (app->mailer && app->db) {
        app->mailq = avc_mail_queue_new(loop, app->db, app->mailer, 0);
    }
    if (app->http) {
        app->embedder = avc_embedder_new(loop, app->http, cfg, err);
        if (app->embedder == NULL) {
            avc_log(AVC_LOG_ERR, "app: embeddings: %s", avc_strerror(*err));
            avc_app_free(app);
            return NULL;
        }
        *err = AVC_ENOMEM;
    }
    if (app->embedder && app->db) {
        app->retriever = avc_retriever_new(loop, app->db, app->embedder,
                                           cfg);
        if (app->retriever == NULL) {
            avc_app_free(app);
            return NULL;
        }
    }
    if (app->embedder && app->db
        && strcmp(avc_config_get(cfg, "rag.ingest", "on"), "off") != 0)
    {
        app->ingest = avc__ingest_new(loop, app->db, app->embedder);
        if (app->ingest == NULL
            || avc__ingest_set_store(app->ingest, app->http, cfg) != AVC_OK)
        {
            avc_app_free(app);
            return NULL;
        }
    }
    if (app->http) {
        app->llm = avc_llm_new(loop, app->http, cfg, err);
        if (app->llm == NULL) {
            avc_log(AVC_LOG_ERR, "app: llm: %s", avc_strerror(*err));
            avc_app_free(app);
            return NULL;
        }
        *err = AVC_ENOMEM;
    }
    if (app->http) {
        app->stt = avc_stt_new(loop, app->http, cfg, err);
        app->tts = app->stt ? avc_tts_new(loop, app->http, cfg, err) : NULL;
        if (app->tts == NULL) {
            avc_log(AVC_LOG_ERR, "app: %s: %s",
                    app->stt ? "tts" : "stt", avc_strerror(*err));
            avc_app_free(app);
            return NULL;
        }
        *err = AVC_ENOMEM;
    }
    {
        long long end_ms, turn_ms;

        if (avc_config_get_int(cfg, "voice.spoken_max_tokens", 100, 20, 4000,
                               &app->spoken_max_tokens) != AVC_OK
            || avc_config_get_int(cfg, "voice.end_silence", 500, 100, 5000,
                                  &end_ms) != AVC_OK
            || avc_config_get_int(cfg, "voice.max_turn", 60000, 1000,
                                  600000, &turn_ms) != AVC_OK)
        {
            avc_log(AVC_LOG_ERR, "app: bad voice.spoken_max_tokens"
                    " (20-4000), voice.end_silence (100-5000 ms) or"
                    " voice.max_turn (1000-600000 ms)");
            *err = AVC_EINVAL;
            avc_app_free(app);
            return NULL;
        }
        app->voice_end_silence = (unsigned) end_ms;
        app->voice_max_turn = (unsigned) turn_ms;
    }
    s = avc_config_get(cfg, "cache.semantic", "on");
    app->semantic_cache = strcmp(s, "on") == 0;
    bad = !app->semantic_cache && strcmp(s, "off") != 0;
    s = avc_config_get(cfg, "cache.semantic_threshold", "0.92");
    app->semantic_threshold = strtod(s, &end);
    if (bad || end == s || *end != '\0' || !(app->semantic_threshold > 0)
        || app->semantic_threshold > 1
        || avc_config_get_int(cfg, "chat.history_turns", 20, 0, 1000,
                              &app->history_turns) != AVC_OK)
    {
        avc_log(AVC_LOG_ERR, "app: bad cache.semantic (on, off),"
                " cache.semantic_threshold (0-1) or chat.history_turns"
                " (0-1000)");
        *err = AVC_EINVAL;
        avc_app_free(app);
        return NULL;
    }
    s = avc_config_get(cfg, "prompts.dir", NULL);
    if (s && (*err = avc_prompt_templates_load(s)) != AVC_OK) {
        avc_log(AVC_LOG_ERR, "app: prompts in %s: %s", s,
                avc_strerror(*err));
        avc_app_free(app);
        return NULL;
    }
    app->scenarios = avc_scenarios_load(avc_config_get(cfg, "chat.scenarios",
                                                       NULL), err);
    if (app->scenarios == NULL) {
        avc_log(AVC_LOG_ERR, "app: scenarios: %s", avc_strerror(*err));
        avc_app_free(app);
        return NULL;
    }
    *err = AVC_ENOMEM;
    if (app->version == NULL || app->db == NULL || app->http == NULL
        || app->secret == NULL || app->public_url == NULL
        || app->mailq == NULL)
    {
        avc_app_free(app);
        return NULL;
    }
    *err = AVC_OK;
    return app;
}

AVC_API void
avc_app_free(avc_app_t *app)
{
    if (app == NULL) {
        return;
    }
    /* cancel what still runs; hosts free the calls themselves */
    while (app->calls) {
        avc_call_t *call = app->calls;

        app->calls = call->next;
        call->prev = call->next = NULL;
        call->running = 0;
        if (call->cancel) {
            call->cancel(call, call->cancel_ctx);
            call->cancel = NULL;
        }
        call->app = NULL;
    }
    avc__ws_close_all(app);
    avc_retriever_free(app->retriever);
    avc_llm_free(app->llm);
    avc_stt_free(app->stt);
    avc_tts_free(app->tts);
    avc_scenarios_free(app->scenarios);
    avc__ingest_free(app->ingest);
    if (app->embedder) {
        avc_embedder_set_cache(app->embedder, NULL);
    }
    avc_embed_cache_free(app->embed_cache);
    if (app->cache_owned) {
        avc_shcache_free(app->cache);
    }
    avc_mail_queue_free(app->mailq);
    avc_mailer_free(app->mailer);
    avc_embedder_free(app->embedder);
    avc_db_free(app->db);
    avc_http_free(app->http);
    free(app->public_url);
    free(app->openapi);
    free(app->docs);
    if (app->secret) {
        explicit_bzero(app->secret, app->secret_len);
        free(app->secret);
    }
    free(app->version);
    free(app);
}

/* The embedder's query cache lives in the shared cache. */
static void
avc__app_embed_cache(avc_app_t *app)
{
    if (app->embedder == NULL) {
        return;
    }
    avc_embedder_set_cache(app->embedder, NULL);
    avc_embed_cache_free(app->embed_cache);
    app->embed_cache = app->cache ? avc_embed_cache_new_shared(app->cache)
                                  : NULL;
    if (app->embed_cache) {
        avc_embedder_set_cache(app->embedder, app->embed_cache);
    }
}

AVC_API void
avc_app_set_cache(avc_app_t *app, avc_shcache_t *cache)
{
    if (app->cache_owned) {
        avc_shcache_free(app->cache);
    }
    app->cache = cache;
    app->cache_owned = 0;
    avc__app_embed_cache(app);
}

avc_shcache_t *
avc__app_cache(avc_app_t *app)
{
    long long size;
    int err;

    if (app->cache) {
        return app->cache;
    }
    if (avc_config_get_int(app->cfg, "cache.size", 16 << 20,
                           (long long) avc_shcache_min_size(), 1LL << 40,
                           &size) != AVC_OK)
    {
        size = 16 << 20;
    }
    app->cache = avc_shcache_new_private((size_t) size, &err);
    if (app->cache == NULL) {
        avc_log(AVC_LOG_ERR, "app: cache: %s", avc_strerror(err));
        return NULL;
    }
    app->cache_owned = 1;
    avc__app_embed_cache(app);
    return app->cache;
}

void
avc__ingest_kick(avc_app_t *app)
{
    avc__ingest_kick_queue(app->ingest);
}

AVC_API avc_loop_t *
avc_app_loop(avc_app_t *app)
{
    return app->loop;
}

/* calls */

static void
avc_kv_free(avc__kv_t *kv)
{
    avc__kv_t *next;

    for ( ; kv; kv = next) {
        next = kv->next;
        free(kv->name);
        free(kv->value);
        free(kv);
    }
}

static avc__kv_t *
avc_kv_new(const char *name, size_t nlen, const char *value, size_t vlen)
{
    avc__kv_t *kv = calloc(1, sizeof(*kv));

    if (kv == NULL) {
        return NULL;
    }
    kv->name = strndup(name, nlen);
    kv->value = strndup(value, vlen);
    if (kv->name == NULL || kv->value == NULL) {
        avc_kv_free(kv);
        return NULL;
    }
    return kv;
}

static const char *
avc_kv_get(const avc__kv_t *kv, const char *name, int icase)
{
    for ( ; kv; kv = kv->next) {
        if ((icase ? strcasecmp(kv->name, name)
                   : strcmp(kv->name, name)) == 0)
        {
            return kv->value;
        }
    }
    return NULL;
}

AVC_API avc_call_t *
avc_call_new(avc_app_t *app, const char *method, const char *path,
    avc_call_done_cb done, void *data)
{
    avc_call_t *call;

    if (app == NULL || method == NULL || path == NULL || done == NULL) {
        return NULL;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        return NULL;
    }
    call->app = app;
    call->method = strdup(method);
    call->path = strdup(path);
    call->done = done;
    call->data = data;
    call->resp_tail = &call->resp_headers;
    if (call->method == NULL || call->path == NULL) {
        avc_call_free(call);
        return NULL;
    }
    return call;
}

static void
avc_call_unlink(avc_call_t *call)
{
    if (!call->running) {
        return;
    }
    if (call->prev) {
        call->prev->next = call->next;
    } else if (call->app) {
        call->app->calls = call->next;
    }
    if (call->next) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
    call->running = 0;
}

AVC_API void
avc_call_free(avc_call_t *call)
{
    if (call == NULL) {
        return;
    }
    if (call->running) {
        avc_call_unlink(call);
        if (call->cancel) {
            call->cancel(call, call->cancel_ctx);
        }
    }
    if (call->app) {
        avc__rollback(call);
    }
    if (call->op_free) {
        call->op_free(call->op);
    }
    json_decref(call->who_json);
    free(call->auth);
    avc_kv_free(call->params);
    avc_kv_free(call->headers);
    avc_kv_free(call->resp_headers);
    free(call->method);
    free(call->path);
    free(call->body);
    free(call->resp);
    free(call);
}

static int
avc_kv_push(avc__kv_t **head, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    avc__kv_t *kv = avc_kv_new(name, nlen, value, vlen);

    if (kv == NULL) {
        return AVC_ENOMEM;
    }
    kv->next = *head;
    *head = kv;
    return AVC_OK;
}

AVC_API int
avc_call_set_param(avc_call_t *call, const char *name, const char *value)
{
    return avc_kv_push(&call->params, name, strlen(name), value,
                       strlen(value));
}

static int
avc_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decode %XX and '+' in place; returns the new length. */
static size_t
avc_urldecode(char *s, size_t len)
{
    size_t i, o = 0;
    int h, l;

    for (i = 0; i < len; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len
                   && (h = avc_hexval((unsigned char) s[i + 1])) >= 0
                   && (l = avc_hexval((unsigned char) s[i + 2])) >= 0)
        {
            s[o++] = (char) (h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

AVC_API int
avc_call_set_query(avc_call_t *call, const char *qs, size_t len)
{
    const char *p = qs, *end = qs + len, *amp, *eq;
    char *name, *value;
    size_t nlen, vlen;
    int rc;

    while (p < end) {
        amp = memchr(p, '&', (size_t) (end - p));
        if (amp == NULL) {
            amp = end;
        }
        eq = memchr(p, '=', (size_t) (amp - p));
        if (amp > p) {
            nlen = (size_t) ((eq ? eq : amp) - p);
            vlen = eq ? (size_t) (amp - eq - 1) : 0;
            name = strndup(p, nlen);
            value = strndup(eq ? eq + 1 : "", vlen);
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                return AVC_ENOMEM;
            }
            nlen = avc_urldecode(name, nlen);
            vlen = avc_urldecode(value, vlen);
            /* a query argument never overrides a path parameter */
            rc = AVC_OK;
            if (avc_kv_get(call->params, name, 0) == NULL) {
                rc = avc_kv_push(&call->params, name, nlen, value, vlen);
            }
            free(name);
            free(value);
            if (rc != AVC_OK) {
                return rc;
            }
        }
        p = amp + 1;
    }
    return AVC_OK;
}

AVC_API int
avc_call_set_header(avc_call_t *call, const char *name, const char *value)
{
    return avc_kv_push(&call->headers, name, strlen(name), value,
                       strlen(value));
}

AVC_API int
avc_call_set_body(avc_call_t *call, const void *body, size_t len)
{
    char *p = malloc(len + 1);

    if (p == NULL) {
        return AVC_ENOMEM;
    }
    memcpy(p, body, len);
    p[len] = '\0';
    free(call->body);
    call->body = p;
    call->body_len = len;
    return AVC_OK;
}

/* a streamed body that no operation consumes is kept up to this size */
#define AVC_CALL_MAX_BODY (1024 * 1024)

AVC_API int
avc_call_feed(avc_call_t *call, const void *p, size_t n)
{
    char *b;

    if (call->status != 0) {
        return AVC_ESTATE;      /* answered already */
    }
    if (call->feed) {
        return call->feed(call, p, n);
    }
    if (call->body_len + n > AVC_CALL_MAX_BODY) {
        return AVC_ETOOBIG;
    }
    b = realloc(call->body, call->body_len + n + 1);
    if (b == NULL) {
        return AVC_ENOMEM;
    }
    memcpy(b + call->body_len, p, n);
    call->body = b;
    call->body_len += n;
    b[call->body_len] = '\0';
    return AVC_OK;
}

AVC_API int
avc_call_feed_end(avc_call_t *call)
{
    if (call->status != 0) {
        return AVC_ESTATE;
    }
    return call->feed_end ? call->feed_end(call) : AVC_OK;
}

AVC_API const char *
avc_call_param(const avc_call_t *call, const char *name)
{
    return avc_kv_get(call->params, name, 0);
}

AVC_API const char *
avc_call_header(const avc_call_t *call, const char *name)
{
    return avc_kv_get(call->headers, name, 1);
}

AVC_API int
avc_call_status(const avc_call_t *call)
{
    return call->status;
}

AVC_API const char *
avc_call_body(const avc_call_t *call, size_t *len)
{
    if (len) {
        *len = call->resp_len;
    }
    return call->resp ? call->resp : "";
}

AVC_API const char *
avc_call_content_type(const avc_call_t *call)
{
    return call->ctype ? call->ctype : "application/json; charset=utf-8";
}

AVC_API int
avc_call_resp_header(const avc_call_t *call, unsigned i, const char **name,
    const char **value)
{
    const avc__kv_t *kv = call->resp_headers;

    while (kv && i--) {
        kv = kv->next;
    }
    if (kv == NULL) {
        return 0;
    }
    *name = kv->name;
    *value = kv->value;
    return 1;
}

int
avc__call_add_header(avc_call_t *call, const char *name, const char *value)
{
    avc__kv_t *kv = avc_kv_new(name, strlen(name), value, strlen(value));

    if (kv == NULL) {
        return AVC_ENOMEM;
    }
    *call->resp_tail = kv;
    call->resp_tail = &kv->next;
    return AVC_OK;
}

void
avc__call_begin(avc_call_t *call, avc__cancel_fn cancel, void *ctx)
{
    avc_app_t *app = call->app;

    call->cancel = cancel;
    call->cancel_ctx = ctx;
    if (call->running || app == NULL) {
        return;
    }
    call->running = 1;
    call->prev = NULL;
    call->next = app->calls;
    if (app->calls) {
        app->calls->prev = call;
    }
    app->calls = call;
}

AVC_API void
avc_call_set_writer(avc_call_t *call, avc_call_write_cb write, void *data)
{
    call->writer = write;
    call->writer_data = data;
}

AVC_API int
avc_call_streamed(const avc_call_t *call)
{
    return call->streaming;
}

int
avc__call_stream_begin(avc_call_t *call, int status, const char *ctype)
{
    call->status = status;
    call->ctype = ctype;
    free(call->resp);
    call->resp = NULL;
    call->resp_len = 0;
    if (call->writer == NULL) {
        return AVC_OK;
    }
    call->streaming = 1;
    if (call->writer(call, "", 0, call->writer_data) != AVC_OK) {
        call->stream_gone = 1;
        return AVC_ECANCELED;
    }
    return AVC_OK;
}

int
avc__call_stream_write(avc_call_t *call, const char *p, size_t n)
{
    char *r;

    if (call->stream_gone) {
        return AVC_ECANCELED;
    }
    if (call->writer) {
        if (n && call->writer(call, p, n, call->writer_data) != AVC_OK) {
            call->stream_gone = 1;
            return AVC_ECANCELED;
        }
        return AVC_OK;
    }
    r = realloc(call->resp, call->resp_len + n + 1);
    if (r == NULL) {
        return AVC_ENOMEM;
    }
    memcpy(r + call->resp_len, p, n);
    call->resp = r;
    call->resp_len += n;
    r[call->resp_len] = '\0';
    return AVC_OK;
}

static void avc_call_finish(avc_call_t *call);

void
avc__call_stream_end(avc_call_t *call)
{
    avc_call_finish(call);
}

static void
avc_call_finish(avc_call_t *call)
{
    avc_app_t *app = call->app;

    /* an operation that answers early abandons what still runs */
    avc__steps_cancel(call);
    avc_call_unlink(call);
    call->cancel = NULL;
    if (app) {
        app->calls_total++;
        if (call->status >= 100 && call->status < 600) {
            app->calls_by_class[call->status / 100]++;
        }
    }
    call->done(call, call->data);
}

void
avc__call_raw(avc_call_t *call, int status, const char *ctype,
    const char *body, size_t len)
{
    free(call->resp);
    call->resp = malloc(len + 1);
    if (call->resp == NULL) {
        call->status = 500;
        call->resp_len = 0;
    } else {
        memcpy(call->resp, body, len);
        call->resp[len] = '\0';
        call->resp_len = len;
        call->status = status;
        call->ctype = ctype;
    }
    avc_call_finish(call);
}

void
avc__call_json(avc_call_t *call, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (s == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    free(call->resp);
    call->resp = s;
    call->resp_len = strlen(s);
    call->status = status;
    call->ctype = NULL;
    avc_call_finish(call);
}

static void avc_call_error_reply(avc_call_t *call, int status,
                                 const char *message,
                                 const char *details_json);

/* the error shape with details (a JSON array, stolen; may be NULL) */
static void
avc_call_error_details(avc_call_t *call, int status, const char *message,
    json_t *details)
{
    char *s = NULL;

    if (details) {
        s = json_dumps(details, JSON_COMPACT);
        json_decref(details);
    }
    avc_call_error_reply(call, status, message, s);
    free(s);
}

void
avc__call_error(avc_call_t *call, int status, const char *message)
{
    avc_call_error_details(call, status, message, NULL);
}

void
avc__call_invalid(avc_call_t *call, const char *field, const char *type,
    const char *message)
{
    char name[160];

    avc__v_field_name(field, name, sizeof(name));
    avc_call_error_details(call, 422, message,
                           json_pack("[{s:s, s:s, s:s}]", "field", name,
                                     "message", message ? message : "Error",
                                     "type", type));
}

static void
avc_call_error_reply(avc_call_t *call, int status, const char *message,
    const char *details_json)
{
    char *s = avc_error_json(status, message, call->path, details_json);

    free(call->resp);
    call->resp = s;
    call->resp_len = s ? strlen(s) : 0;
    call->status = status;
    call->ctype = NULL;
    if (status == 401) {
        avc__call_add_header(call, "WWW-Authenticate", "Bearer");
    }
    avc_call_finish(call);
}

/* the error shape */

AVC_API const char *
avc_error_type(int status)
{
    switch (status) {
    case 401: return "AuthenticationError";
    case 403: return "AuthorizationError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowed";
    case 409: return "ConflictError";
    case 413: return "PayloadTooLarge";
    case 422: return "ValidationError";
    case 429: return "RateLimitError";
    case 502:
    case 504: return "UpstreamError";
    case 503: return "ServiceUnavailable";
    default:
        return status >= 400 && status < 500 ? "BadRequest"
                                             : "InternalServerError";
    }
}

AVC_API char *
avc_error_json(int status, const char *message, const char *path,
    const char *details_json)
{
    json_t *err, *root, *details = NULL;
    char *s;

    if (details_json) {
        details = json_loads(details_json, 0, NULL);
    } else if (status == 422) {
        /* API.md: a ValidationError always has its details; without a
           field at fault, the body as a whole */
        details = json_pack("[{s:s, s:s, s:s}]", "field", "body", "message",
                            message ? message : "Error", "type",
                            "value_error");
    }
    err = json_object();
    root = json_object();
    if (err == NULL || root == NULL) {
        json_decref(err);
        json_decref(root);
        json_decref(details);
        return NULL;
    }
    json_object_set_new(err, "message", json_string(message ? message
                                                     : "Error"));
    json_object_set_new(err, "type", json_string(avc_error_type(status)));
    json_object_set_new(err, "path",
                        json_string(path && avc__utf8_valid(path,
                                                            strlen(path))
                                    ? path : ""));
    if (details) {
        json_object_set_new(err, "details", details);
    }
    json_object_set_new(root, "error", err);
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}
