/*
 * The OpenAI-compatible embeddings provider: POST {base}/embeddings.
 *
 * An op sends its inputs in batches (at most 2,048 inputs and about
 * 300,000 tokens each, estimated as bytes / 4), one request after the
 * other so that a large upload never floods the provider's rate limit.
 * The HTTP client retries 429 and 5xx, honouring Retry-After.  A
 * response for a full batch of large vectors is tens of megabytes of
 * JSON, so it is parsed on the thread pool, not on the loop.
 */
#include "rag_internal.h"

#include "json_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_OAI_BASE      "https://api.openai.com/v1"
#define AVC_OAI_MODEL     "text-embedding-3-small"
#define AVC_OAI_MSG_MAX   256
/* the part of a provider's error worth a message */
#define AVC_OAI_SNIPPET   200
/* the largest vector accepted, and the size assumed before the first
 * answer when sizing the response buffer */
#define AVC_OAI_DIM_MAX   8192
#define AVC_OAI_DIM_GUESS 3072

struct avc__oai_s {
    avc_loop_t *loop;
    avc_http_t *http;
    char *url;
    char *auth;                 /* "Bearer <key>": a secret */
    char *key;                  /* scrubbed from provider messages */
    char *model;
    size_t dim;                 /* 0: not known yet */
    int send_dim;               /* "dimensions" in the request */
    unsigned timeout_ms;
    unsigned attempts;
    unsigned backoff_ms;
    avc__oai_op_t *ops;
};

struct avc__oai_op_s {
    avc__oai_op_t *prev;
    avc__oai_op_t *next;
    avc__oai_t *o;              /* NULL once cancelled while parsing */
    char *buf;                  /* every input, NUL-separated */
    size_t *offs;
    size_t *lens;
    size_t n;
    size_t first;               /* the current batch: [first, first+count) */
    size_t count;
    float *vecs;                /* n * dim, when dim is known */
    size_t dim;
    avc_http_req_t *req;
    int parsing;                /* on the thread pool */

    /* the parse job's input and output */
    char *body;
    size_t body_len;
    int status;
    int rc;
    size_t got_dim;
    float *part;                /* count * got_dim */
    char msg[AVC_OAI_MSG_MAX];

    avc__oai_cb cb;
    void *data;
};

static int
avc_oai_bad(const char *key, const char *why)
{
    avc_log(AVC_LOG_ERR, "embeddings: bad setting %s: %s", key, why);
    return AVC_EINVAL;
}

avc__oai_t *
avc__oai_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    const char *base, *model, *key;
    long long dim = 0, v;
    avc__oai_t *o;
    int rc = AVC_OK;

    *err = AVC_OK;
    if (http == NULL) {
        *err = avc_oai_bad("embeddings.provider",
                           "openai needs an HTTP client");
        return NULL;
    }
    base = avc_config_get(cfg, "embeddings.base_url", AVC_OAI_BASE);
    model = avc_config_get(cfg, "embeddings.model", AVC_OAI_MODEL);
    key = avc_config_get(cfg, "embeddings.key", NULL);
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
    {
        *err = avc_oai_bad("embeddings.base_url", "not an http(s) URL");
        return NULL;
    }
    if (*model == '\0' || strlen(model) > 200) {
        *err = avc_oai_bad("embeddings.model", "empty or too long");
        return NULL;
    }
    if (key == NULL || *key == '\0') {
        *err = avc_oai_bad("embeddings.key", "required by openai");
        return NULL;
    }
    if (strpbrk(key, "\r\n") != NULL) {
        *err = avc_oai_bad("embeddings.key", "contains a line break");
        return NULL;
    }
    if (avc_config_get(cfg, "embeddings.dimensions", NULL) != NULL
        && avc_config_get_int(cfg, "embeddings.dimensions", 0, 1,
                              AVC_OAI_DIM_MAX, &dim) != AVC_OK)
    {
        *err = avc_oai_bad("embeddings.dimensions", "not 1-8192");
        return NULL;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    o->loop = loop;
    o->http = http;
    o->dim = (size_t) dim;
    o->send_dim = dim > 0;
    if (avc_config_get_int(cfg, "embeddings.timeout", 60000, 100, 600000, &v)
        != AVC_OK)
    {
        rc = avc_oai_bad("embeddings.timeout", "not 100-600000 ms");
    }
    o->timeout_ms = (unsigned) v;
    if (avc_config_get_int(cfg, "embeddings.attempts", 4, 1, 10, &v)
        != AVC_OK)
    {
        rc = avc_oai_bad("embeddings.attempts", "not 1-10");
    }
    o->attempts = (unsigned) v;
    if (avc_config_get_int(cfg, "embeddings.backoff", 500, 0, 60000, &v)
        != AVC_OK)
    {
        rc = avc_oai_bad("embeddings.backoff", "not 0-60000 ms");
    }
    o->backoff_ms = (unsigned) v;
    if (rc != AVC_OK) {
        free(o);
        *err = rc;
        return NULL;
    }

    o->url = avc__url_join(base, "/embeddings");
    o->auth = avc__auth_bearer(key);
    o->key = strdup(key);
    o->model = strdup(model);
    if (o->url == NULL || o->auth == NULL || o->key == NULL
        || o->model == NULL)
    {
        avc__oai_free(o);
        *err = AVC_ENOMEM;
        return NULL;
    }
    return o;
}

static void
avc_oai_op_unlink(avc__oai_op_t *op)
{
    if (op->o == NULL) {
        return;
    }
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        op->o->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
    op->o = NULL;
}

static void
avc_oai_op_free(avc__oai_op_t *op)
{
    free(op->buf);
    free(op->offs);
    free(op->lens);
    free(op->vecs);
    free(op->body);
    free(op->part);
    free(op);
}

void
avc__oai_cancel(avc__oai_op_t *op)
{
    if (op == NULL) {
        return;
    }
    avc_oai_op_unlink(op);
    if (op->req) {
        avc_http_cancel(op->req);
        op->req = NULL;
    }
    op->cb = NULL;
    /* a parse on the thread pool frees the op when it comes back */
    if (!op->parsing) {
        avc_oai_op_free(op);
    }
}

void
avc__oai_free(avc__oai_t *o)
{
    if (o == NULL) {
        return;
    }
    while (o->ops) {
        avc__oai_cancel(o->ops);
    }
    free(o->url);
    avc__free_secret(o->auth);
    avc__free_secret(o->key);
    free(o->model);
    free(o);
}

const char *
avc__oai_model(const avc__oai_t *o)
{
    return o->model;
}

size_t
avc__oai_dim(const avc__oai_t *o)
{
    return o->dim;
}

/* a provider's text as one printable line, without the key */
static void
avc_oai_snippet(const avc__oai_t *o, const char *s, size_t n, char *out,
    size_t outn)
{
    size_t i, kl;
    char *p;

    if (n > AVC_OAI_SNIPPET) {
        n = AVC_OAI_SNIPPET;
    }
    if (n >= outn) {
        n = outn - 1;
    }
    for (i = 0; i < n; i++) {
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : ' ';
    }
    out[n] = '\0';
    /* providers echo keys in errors ("Incorrect API key provided: ...") */
    kl = o && o->key ? strlen(o->key) : 0;
    if (kl >= 4) {
        while ((p = strstr(out, o->key)) != NULL) {
            memset(p, '*', kl);
        }
    }
}

static void avc_oai_next(avc__oai_op_t *op);

static void
avc_oai_finish(avc__oai_op_t *op, int rc, const char *msg)
{
    avc__oai_cb cb = op->cb;
    void *data = op->data;
    float *vecs = NULL;
    size_t dim = op->dim, n = op->n;
    char copy[AVC_OAI_MSG_MAX];

    /* msg may live in the op, which goes before the callback */
    snprintf(copy, sizeof(copy), "%s", msg);
    msg = copy;
    avc_oai_op_unlink(op);
    if (rc == AVC_OK) {
        vecs = op->vecs;
        op->vecs = NULL;
    }
    avc_oai_op_free(op);
    if (cb) {
        cb(rc, vecs, rc == AVC_OK ? n : 0, dim, msg, data);
    } else {
        free(vecs);
    }
}

/* the parse job: fills part, got_dim, rc and msg */
static void
avc_oai_parse_work(void *arg)
{
    avc__oai_op_t *op = arg;
    const char *s;
    json_t *root, *arr, *item, *emb, *x;
    json_error_t jerr;
    long long idx;
    size_t i, k, d = 0;
    unsigned char *seen = NULL;
    double norm;
    float *v;
    int err;

    op->rc = AVC_EUPSTREAM;
    root = avc__json_parse(op->body, op->body_len, 0, &err, &jerr);
    if (root == NULL) {
        snprintf(op->msg, sizeof(op->msg), "embeddings: malformed JSON "
                 "from the provider (%s)", jerr.text);
        if (err == AVC_ENOMEM) {
            op->rc = AVC_ENOMEM;
        }
        return;
    }
    arr = json_object_get(root, "data");
    if (!json_is_array(arr) || json_array_size(arr) != op->count) {
        snprintf(op->msg, sizeof(op->msg), "embeddings: the provider "
                 "answered %zu vectors for %zu inputs",
                 json_is_array(arr) ? json_array_size(arr) : 0, op->count);
        goto done;
    }
    seen = calloc(op->count, 1);
    if (seen == NULL) {
        op->rc = AVC_ENOMEM;
        goto done;
    }
    for (i = 0; i < op->count; i++) {
        item = json_array_get(arr, i);
        emb = json_object_get(item, "embedding");
        if (avc__json_get_int(item, "index", &idx) != AVC_OK) {
            idx = (long long) i;
        }
        if (!json_is_array(emb) || idx < 0 || (size_t) idx >= op->count
            || seen[idx])
        {
            snprintf(op->msg, sizeof(op->msg), "embeddings: item %zu of "
                     "the answer has no embedding or a bad index", i);
            goto done;
        }
        seen[idx] = 1;
        if (i == 0) {
            d = json_array_size(emb);
            if (d == 0 || d > AVC_OAI_DIM_MAX
                || (op->dim && d != op->dim))
            {
                snprintf(op->msg, sizeof(op->msg), "embeddings: the "
                         "provider answered %zu-dimensional vectors, "
                         "expected %zu", d, op->dim);
                goto done;
            }
            op->part = malloc(op->count * d * sizeof(float));
            if (op->part == NULL) {
                op->rc = AVC_ENOMEM;
                goto done;
            }
        }
        if (json_array_size(emb) != d) {
            snprintf(op->msg, sizeof(op->msg), "embeddings: the provider "
                     "answered vectors of %zu and %zu dimensions", d,
                     json_array_size(emb));
            goto done;
        }
        v = op->part + (size_t) idx * d;
        norm = 0;
        for (k = 0; k < d; k++) {
            x = json_array_get(emb, k);
            if (!json_is_number(x)) {
                s = "a non-number";
                snprintf(op->msg, sizeof(op->msg), "embeddings: the "
                         "provider sent %s in a vector", s);
                goto done;
            }
            v[k] = (float) json_number_value(x);
            norm += (double) v[k] * v[k];
        }
        /* cosine is a dot product only between unit vectors */
        if (norm > 0) {
            norm = 1.0 / sqrt(norm);
            for (k = 0; k < d; k++) {
                v[k] = (float) (v[k] * norm);
            }
        }
    }
    op->got_dim = d;
    op->rc = AVC_OK;

done:
    free(seen);
    json_decref(root);
}

static void
avc_oai_parse_done(void *arg, int status)
{
    avc__oai_op_t *op = arg;

    op->parsing = 0;
    free(op->body);
    op->body = NULL;
    if (op->o == NULL || op->cb == NULL) {
        /* cancelled while parsing */
        avc_oai_op_free(op);
        return;
    }
    if (status != AVC_OK) {
        avc_oai_finish(op, AVC_ECANCELED, "embeddings: cancelled");
        return;
    }
    if (op->rc != AVC_OK) {
        avc_oai_finish(op, op->rc, op->msg);
        return;
    }
    if (op->dim == 0) {
        /* the model's own size, learned from its first answer */
        op->dim = op->got_dim;
        if (op->o->dim == 0) {
            op->o->dim = op->got_dim;
        } else if (op->o->dim != op->got_dim) {
            snprintf(op->msg, sizeof(op->msg), "embeddings: the provider "
                     "answered %zu-dimensional vectors, expected %zu",
                     op->got_dim, op->o->dim);
            avc_oai_finish(op, AVC_EUPSTREAM, op->msg);
            return;
        }
    }
    if (op->vecs == NULL) {
        op->vecs = malloc(op->n * op->dim * sizeof(float));
        if (op->vecs == NULL) {
            avc_oai_finish(op, AVC_ENOMEM, "embeddings: out of memory");
            return;
        }
    }
    memcpy(op->vecs + op->first * op->dim, op->part,
           op->count * op->dim * sizeof(float));
    free(op->part);
    op->part = NULL;
    op->first += op->count;
    op->count = 0;
    if (op->first == op->n) {
        avc_oai_finish(op, AVC_OK, "");
        return;
    }
    avc_oai_next(op);
}

static void
avc_oai_done(avc_http_req_t *req, int err, void *data)
{
    avc__oai_op_t *op = data;
    char snippet[AVC_OAI_SNIPPET + 1];
    const char *body, *m;
    json_t *root;
    size_t len;
    int rc;

    op->req = NULL;
    if (err != AVC_OK) {
        snprintf(op->msg, sizeof(op->msg), "embeddings: %s after %u "
                 "attempt(s)", avc_strerror(err), avc_http_req_attempts(req));
        avc_oai_finish(op, err == AVC_ETIMEDOUT ? AVC_ETIMEDOUT
                           : err == AVC_ENOMEM ? AVC_ENOMEM : AVC_EUPSTREAM,
                       op->msg);
        return;
    }
    op->status = avc_http_resp_status(req);
    if (op->status < 200 || op->status > 299) {
        body = avc_http_resp_body(req, &len);
        root = avc__json_parse(body, len, 0, &rc, NULL);
        m = NULL;
        if (root) {
            avc__json_get_str(json_object_get(root, "error"), "message", &m);
        }
        if (m) {
            avc_oai_snippet(op->o, m, strlen(m), snippet, sizeof(snippet));
        } else {
            avc_oai_snippet(op->o, body, len, snippet, sizeof(snippet));
        }
        json_decref(root);
        snprintf(op->msg, sizeof(op->msg), "embeddings: status %d after %u "
                 "attempt(s): %s", op->status, avc_http_req_attempts(req),
                 snippet);
        avc_oai_finish(op, AVC_EUPSTREAM, op->msg);
        return;
    }
    op->body = avc_http_resp_body_take(req, &op->body_len);
    if (op->body == NULL) {
        avc_oai_finish(op, AVC_ENOMEM, "embeddings: out of memory");
        return;
    }
    op->parsing = 1;
    rc = avc_offload(op->o->loop, avc_oai_parse_work, avc_oai_parse_done,
                     op);
    if (rc != AVC_OK) {
        op->parsing = 0;
        avc_oai_finish(op, rc, "embeddings: cannot use the thread pool");
    }
}

/* a copy of s[0..n) that is valid UTF-8 (U+FFFD for bad bytes) */
static char *
avc_oai_utf8_clean(const char *s, size_t n, size_t *out_len)
{
    avc__buf_t b;
    size_t i = 0, k, len;
    unsigned char c;
    int rc = AVC_OK;

    avc__buf_init(&b);
    while (i < n && rc == AVC_OK) {
        c = (unsigned char) s[i];
        len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
              : (c & 0xf8) == 0xf0 ? 4 : 0;
        k = len && i + len <= n && avc__utf8_valid(s + i, len) ? len : 0;
        if (k == 0 || (k == 1 && c == 0)) {
            rc = avc__buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            rc = avc__buf_append(&b, s + i, k);
            i += k;
        }
    }
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, out_len);
}

static json_t *
avc_oai_input(const char *s, size_t n)
{
    json_t *j;
    char *clean;
    size_t cl;

    if (avc__utf8_valid(s, n) && memchr(s, '\0', n) == NULL) {
        return json_stringn(s, n);
    }
    clean = avc_oai_utf8_clean(s, n, &cl);
    if (clean == NULL) {
        return NULL;
    }
    j = json_stringn(clean, cl);
    free(clean);
    return j;
}

/* start the request for the next batch */
static void
avc_oai_next(avc__oai_op_t *op)
{
    avc__oai_t *o = op->o;
    json_t *body, *input;
    avc_http_req_t *req;
    size_t i, tokens = 0, t, blen, max;
    char *json;
    int rc = AVC_OK;

    op->count = 0;
    for (i = op->first; i < op->n; i++) {
        t = (op->lens[i] + 3) / 4;
        if (t == 0) {
            t = 1;
        }
        if (op->count > 0 && (op->count == AVC__OAI_MAX_INPUTS
                              || tokens + t > AVC__OAI_MAX_TOKENS))
        {
            break;
        }
        tokens += t;
        op->count++;
    }

    body = json_object();
    input = json_array();
    if (body == NULL || input == NULL) {
        json_decref(body);
        json_decref(input);
        avc_oai_finish(op, AVC_ENOMEM, "embeddings: out of memory");
        return;
    }
    rc |= json_object_set_new(body, "model", json_string(o->model));
    for (i = op->first; i < op->first + op->count; i++) {
        rc |= json_array_append_new(input,
                                    avc_oai_input(op->buf + op->offs[i],
                                                  op->lens[i]));
    }
    rc |= json_object_set_new(body, "input", input);
    if (o->send_dim) {
        rc |= json_object_set_new(body, "dimensions",
                                  json_integer((json_int_t) o->dim));
    }
    rc |= json_object_set_new(body, "encoding_format", json_string("float"));
    json = rc == 0 ? avc__json_dump(body, &blen) : NULL;
    json_decref(body);
    if (json == NULL) {
        avc_oai_finish(op, AVC_ENOMEM, "embeddings: out of memory");
        return;
    }

    req = avc_http_req_new(o->http, "POST", o->url);
    if (req == NULL) {
        free(json);
        avc_oai_finish(op, AVC_ENOMEM, "embeddings: out of memory");
        return;
    }
    avc_http_req_take_body(req, json, blen);
    avc_http_req_add_header(req, "Content-Type", "application/json");
    avc_http_req_add_header(req, "Accept", "application/json");
    avc_http_req_add_header(req, "Authorization", o->auth);
    avc_http_req_set_timeouts(req, o->timeout_ms < 10000 ? o->timeout_ms
                                                         : 10000,
                              o->timeout_ms, o->timeout_ms);
    avc_http_req_set_retry(req, o->attempts, o->backoff_ms);
    /* floats as JSON text: up to about 24 bytes each */
    max = op->count * (o->dim ? o->dim : AVC_OAI_DIM_GUESS) * 24
          + 1024 * 1024;
    avc_http_req_set_max_body(req, max);
    avc_http_req_set_callbacks(req, NULL, NULL, avc_oai_done, op);
    rc = avc_http_req_start(req);
    if (rc != AVC_OK) {
        snprintf(op->msg, sizeof(op->msg), "embeddings: cannot start the "
                 "request: %s", avc_strerror(rc));
        avc_oai_finish(op, rc == AVC_ENOMEM ? AVC_ENOMEM : AVC_EUPSTREAM,
                       op->msg);
        return;
    }
    op->req = req;
}

/* run avc_oai_next from the loop: the caller never sees its callback */
static void
avc_oai_kick(void *arg)
{
    avc__oai_op_t *op = arg;

    op->parsing = 0;
    if (op->o == NULL || op->cb == NULL) {
        avc_oai_op_free(op);
        return;
    }
    avc_oai_next(op);
}

avc__oai_op_t *
avc__oai_embed(avc__oai_t *o, const char *const *texts, const size_t *lens,
    size_t n, avc__oai_cb cb, void *data, int *err)
{
    avc__oai_op_t *op;
    size_t i, total = 0;

    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    op->offs = malloc(n * sizeof(size_t));
    op->lens = malloc(n * sizeof(size_t));
    if (op->offs == NULL || op->lens == NULL) {
        avc_oai_op_free(op);
        *err = AVC_ENOMEM;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        op->lens[i] = lens ? lens[i] : strlen(texts[i]);
        op->offs[i] = total;
        total += op->lens[i] + 1;
    }
    op->buf = malloc(total ? total : 1);
    if (op->buf == NULL) {
        avc_oai_op_free(op);
        *err = AVC_ENOMEM;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        memcpy(op->buf + op->offs[i], texts[i], op->lens[i]);
        op->buf[op->offs[i] + op->lens[i]] = '\0';
    }
    op->n = n;
    op->dim = o->dim;
    op->cb = cb;
    op->data = data;
    op->o = o;
    /* held like a parse until the kick runs, so cancel defers the free */
    op->parsing = 1;
    if (avc_post(o->loop, avc_oai_kick, op) != AVC_OK) {
        op->o = NULL;
        avc_oai_op_free(op);
        *err = AVC_ENOMEM;
        return NULL;
    }
    op->next = o->ops;
    if (o->ops) {
        o->ops->prev = op;
    }
    o->ops = op;
    *err = AVC_OK;
    return op;
}
