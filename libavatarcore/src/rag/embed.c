/*
 * The embedder: provider selection, the common asynchronous interface and
 * the query cache in front of it.
 *
 * An op is listed in its embedder until its callback, so that freeing the
 * embedder can end every op (AVC_ECANCELED).  Local batches run on the
 * thread pool and cannot be stopped there: a cancelled one is detached
 * (its cb cleared, its cancel flag set so the thread stops between texts)
 * and freed by its completion.  Answers that need no work (a cache hit)
 * are delivered through avc_post, so that a callback never runs from
 * within the call that started it.
 */
#include "rag_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_EMBED_LOCAL   0
#define AVC_EMBED_OPENAI  1

/* a local query up to this size is embedded on the loop itself: it takes
 * microseconds, less than a trip through the thread pool */
#define AVC_EMBED_INLINE_MAX  8192

enum {
    AVC_EOP_THREAD = 0,         /* local batch on the thread pool */
    AVC_EOP_OPENAI,             /* over HTTP */
    AVC_EOP_POSTED              /* result ready, delivered by avc_post */
};

struct avc_embedder_s {
    avc_loop_t *loop;
    int provider;
    unsigned local_dim;
    char model[64];             /* local; openai's is in oai */
    avc__oai_t *oai;
    avc_embed_cache_t *own_cache;
    avc_embed_cache_t *cache;
    avc_embed_op_t *ops;
    int freeing;
    char last_error[256];
};

struct avc_embed_op_s {
    avc_embed_op_t *prev;
    avc_embed_op_t *next;
    avc_embedder_t *e;          /* NULL once detached */
    int kind;
    avc_embed_cb cb;
    void *data;

    /* AVC_EOP_THREAD: inputs, output, status */
    char *buf;
    const char **texts;
    size_t *lens;
    size_t n;
    unsigned dim;
    float *out;
    volatile int cancel;
    int rc;

    avc__oai_op_t *oop;         /* AVC_EOP_OPENAI */

    char *query;                /* put into the cache on success */
    char model[64];             /* the model the cache entry is for */
};

static void
avc_embed_op_free(avc_embed_op_t *op)
{
    free(op->buf);
    free(op->texts);
    free(op->lens);
    free(op->out);
    free(op->query);
    free(op);
}

static void
avc_embed_op_link(avc_embedder_t *e, avc_embed_op_t *op)
{
    op->e = e;
    op->prev = NULL;
    op->next = e->ops;
    if (e->ops) {
        e->ops->prev = op;
    }
    e->ops = op;
}

static void
avc_embed_op_unlink(avc_embed_op_t *op)
{
    avc_embedder_t *e = op->e;

    if (e == NULL) {
        return;
    }
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        e->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
    op->e = NULL;
}

avc_embedder_t *
avc_embedder_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    const char *prov;
    avc_embedder_t *e;
    long long dim, cache;
    int rc;

    *err = AVC_OK;
    if (loop == NULL || cfg == NULL) {
        *err = AVC_EINVAL;
        return NULL;
    }
    prov = avc_config_get(cfg, "embeddings.provider", "local");
    if (strcmp(prov, "local") != 0 && strcmp(prov, "openai") != 0) {
        avc_log(AVC_LOG_ERR, "embeddings: bad setting embeddings.provider: "
                "\"%s\" is not local or openai", prov);
        *err = AVC_EINVAL;
        return NULL;
    }
    if (avc_config_get_int(cfg, "embeddings.cache_size", 2048, 0, 10000000,
                           &cache) != AVC_OK)
    {
        avc_log(AVC_LOG_ERR, "embeddings: bad setting embeddings.cache_size:"
                " not 0-10000000");
        *err = AVC_EINVAL;
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    e->loop = loop;
    if (strcmp(prov, "local") == 0) {
        e->provider = AVC_EMBED_LOCAL;
        if (avc_config_get_int(cfg, "embeddings.dimensions",
                               AVC_EMBED_LOCAL_DIM, 64, 4096, &dim)
            != AVC_OK)
        {
            avc_log(AVC_LOG_ERR, "embeddings: bad setting "
                    "embeddings.dimensions: not 64-4096 for local");
            free(e);
            *err = AVC_EINVAL;
            return NULL;
        }
        e->local_dim = (unsigned) dim;
        rc = avc_embed_local_model(e->local_dim, e->model, sizeof(e->model));
        if (rc != AVC_OK) {
            free(e);
            *err = rc;
            return NULL;
        }
    } else {
        e->provider = AVC_EMBED_OPENAI;
        e->oai = avc__oai_new(loop, http, cfg, err);
        if (e->oai == NULL) {
            free(e);
            return NULL;
        }
    }
    if (cache > 0) {
        e->own_cache = avc_embed_cache_new((size_t) cache);
        if (e->own_cache == NULL) {
            avc__oai_free(e->oai);
            free(e);
            *err = AVC_ENOMEM;
            return NULL;
        }
    }
    e->cache = e->own_cache;
    return e;
}

/* end an op on behalf of the embedder: its callback gets err */
static void
avc_embed_op_abandon(avc_embed_op_t *op, int err)
{
    avc_embed_cb cb = op->cb;
    void *data = op->data;

    avc_embed_op_unlink(op);
    op->cb = NULL;
    switch (op->kind) {
    case AVC_EOP_THREAD:
        /* its completion frees it */
        op->cancel = 1;
        break;
    case AVC_EOP_OPENAI:
        avc__oai_cancel(op->oop);
        op->oop = NULL;
        avc_embed_op_free(op);
        break;
    default:
        /* the posted call frees it */
        break;
    }
    if (cb && err != AVC_OK) {
        cb(err, NULL, 0, 0, data);
    }
}

void
avc_embedder_free(avc_embedder_t *e)
{
    if (e == NULL) {
        return;
    }
    e->freeing = 1;
    while (e->ops) {
        avc_embed_op_abandon(e->ops, AVC_ECANCELED);
    }
    avc__oai_free(e->oai);
    avc_embed_cache_free(e->own_cache);
    free(e);
}

const char *
avc_embedder_provider(const avc_embedder_t *e)
{
    return e->provider == AVC_EMBED_LOCAL ? "local" : "openai";
}

const char *
avc_embedder_model(const avc_embedder_t *e)
{
    return e->provider == AVC_EMBED_LOCAL ? e->model : avc__oai_model(e->oai);
}

size_t
avc_embedder_dim(const avc_embedder_t *e)
{
    return e->provider == AVC_EMBED_LOCAL ? e->local_dim
                                          : avc__oai_dim(e->oai);
}

const char *
avc_embedder_last_error(const avc_embedder_t *e)
{
    return e->last_error;
}

void
avc_embedder_set_cache(avc_embedder_t *e, avc_embed_cache_t *cache)
{
    e->cache = cache ? cache : e->own_cache;
}

avc_embed_cache_t *
avc_embedder_cache(const avc_embedder_t *e)
{
    return e->cache;
}

void
avc_embed_cancel(avc_embed_op_t *op)
{
    if (op == NULL || op->e == NULL) {
        return;
    }
    avc_embed_op_abandon(op, AVC_OK);
}

static void
avc_embed_cache_result(avc_embed_op_t *op, avc_embedder_t *e,
    const float *v, size_t dim)
{
    if (op->query && e->cache && dim > 0) {
        /* a full cache only costs a miss later */
        (void) avc_embed_cache_put(e->cache, op->model, op->query, v, dim);
    }
}

/* local batches */

static void
avc_embed_local_work(void *arg)
{
    avc_embed_op_t *op = arg;

    op->rc = avc__embed_local_batch(op->texts, op->lens, op->n, op->dim,
                                    op->out, &op->cancel);
}

static void
avc_embed_local_done(void *arg, int status)
{
    avc_embed_op_t *op = arg;
    avc_embedder_t *e = op->e;
    avc_embed_cb cb = op->cb;

    avc_embed_op_unlink(op);
    if (e == NULL || cb == NULL) {
        avc_embed_op_free(op);
        return;
    }
    if (status == AVC_OK && op->rc == AVC_OK) {
        avc_embed_cache_result(op, e, op->out, op->dim);
        e->last_error[0] = '\0';
        cb(AVC_OK, op->out, op->n, op->dim, op->data);
    } else {
        cb(status != AVC_OK ? status : op->rc, NULL, 0, 0, op->data);
    }
    avc_embed_op_free(op);
}

/* copy the inputs: the thread pool must touch only the op */
static int
avc_embed_copy_inputs(avc_embed_op_t *op, const char *const *texts,
    size_t n)
{
    size_t i, total = 0, off = 0;

    op->texts = malloc(n * sizeof(char *));
    op->lens = malloc(n * sizeof(size_t));
    if (op->texts == NULL || op->lens == NULL) {
        return AVC_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        op->lens[i] = strlen(texts[i]);
        total += op->lens[i] + 1;
    }
    op->buf = malloc(total);
    if (op->buf == NULL) {
        return AVC_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        memcpy(op->buf + off, texts[i], op->lens[i] + 1);
        op->texts[i] = op->buf + off;
        off += op->lens[i] + 1;
    }
    op->n = n;
    return AVC_OK;
}

/* openai */

static void
avc_embed_oai_done(int err, float *vectors, size_t n, size_t dim,
    const char *msg, void *data)
{
    avc_embed_op_t *op = data;
    avc_embedder_t *e = op->e;
    avc_embed_cb cb = op->cb;

    op->oop = NULL;
    avc_embed_op_unlink(op);
    if (e != NULL) {
        snprintf(e->last_error, sizeof(e->last_error), "%s",
                 err == AVC_OK ? "" : msg);
        if (err != AVC_OK) {
            avc_log(AVC_LOG_WARN, "%s", msg);
        } else {
            avc_embed_cache_result(op, e, vectors, dim);
        }
    }
    if (cb) {
        cb(err, err == AVC_OK ? vectors : NULL, n, dim, op->data);
    }
    free(vectors);
    avc_embed_op_free(op);
}

/* posted answers */

static void
avc_embed_posted(void *arg)
{
    avc_embed_op_t *op = arg;
    avc_embedder_t *e = op->e;
    avc_embed_cb cb = op->cb;

    avc_embed_op_unlink(op);
    if (e != NULL && cb != NULL) {
        cb(op->rc, op->rc == AVC_OK ? op->out : NULL,
           op->rc == AVC_OK ? 1 : 0, op->rc == AVC_OK ? op->dim : 0,
           op->data);
    }
    avc_embed_op_free(op);
}

static int
avc_embed_start_op(avc_embedder_t *e, avc_embed_op_t *op,
    const char *const *texts, size_t n)
{
    int rc;

    if (e->provider == AVC_EMBED_OPENAI) {
        op->kind = AVC_EOP_OPENAI;
        op->oop = avc__oai_embed(e->oai, texts, NULL, n, avc_embed_oai_done,
                                 op, &rc);
        return op->oop ? AVC_OK : rc;
    }
    op->kind = AVC_EOP_THREAD;
    op->dim = e->local_dim;
    rc = avc_embed_copy_inputs(op, texts, n);
    if (rc != AVC_OK) {
        return rc;
    }
    op->out = malloc(n * op->dim * sizeof(float));
    if (op->out == NULL) {
        return AVC_ENOMEM;
    }
    return avc_offload(e->loop, avc_embed_local_work, avc_embed_local_done,
                       op);
}

int
avc_embed_start(avc_embedder_t *e, const char *const *texts, size_t n,
    avc_embed_cb cb, void *data, avc_embed_op_t **opp)
{
    avc_embed_op_t *op;
    size_t i;
    int rc;

    if (opp) {
        *opp = NULL;
    }
    if (e == NULL || texts == NULL || n == 0 || cb == NULL) {
        return AVC_EINVAL;
    }
    if (e->freeing) {
        return AVC_ESTATE;
    }
    for (i = 0; i < n; i++) {
        if (texts[i] == NULL) {
            return AVC_EINVAL;
        }
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->cb = cb;
    op->data = data;
    rc = avc_embed_start_op(e, op, texts, n);
    if (rc != AVC_OK) {
        avc_embed_op_free(op);
        return rc;
    }
    avc_embed_op_link(e, op);
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}

int
avc_embed(avc_embedder_t *e, const char *const *texts, size_t n,
    avc_embed_cb cb, void *data)
{
    return avc_embed_start(e, texts, n, cb, data, NULL);
}

int
avc_embed_query(avc_embedder_t *e, const char *text, avc_embed_cb cb,
    void *data, avc_embed_op_t **opp)
{
    avc_embed_op_t *op;
    size_t dim, len;
    const char *model;
    int rc;

    if (opp) {
        *opp = NULL;
    }
    if (e == NULL || text == NULL || cb == NULL) {
        return AVC_EINVAL;
    }
    if (e->freeing) {
        return AVC_ESTATE;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->cb = cb;
    op->data = data;
    model = avc_embedder_model(e);
    snprintf(op->model, sizeof(op->model), "%s", model);
    dim = avc_embedder_dim(e);
    len = strlen(text);

    if (e->cache && dim > 0) {
        op->out = malloc(dim * sizeof(float));
        if (op->out == NULL) {
            avc_embed_op_free(op);
            return AVC_ENOMEM;
        }
        if (avc_embed_cache_get(e->cache, op->model, text, op->out, dim)) {
            op->kind = AVC_EOP_POSTED;
            op->dim = (unsigned) dim;
            op->rc = AVC_OK;
            goto post;
        }
    }
    if (e->provider == AVC_EMBED_LOCAL && len <= AVC_EMBED_INLINE_MAX) {
        if (op->out == NULL) {
            op->out = malloc(dim * sizeof(float));
            if (op->out == NULL) {
                avc_embed_op_free(op);
                return AVC_ENOMEM;
            }
        }
        op->kind = AVC_EOP_POSTED;
        op->dim = (unsigned) dim;
        op->rc = avc_embed_local_one(text, len, op->dim, op->out);
        if (op->rc == AVC_OK && e->cache) {
            (void) avc_embed_cache_put(e->cache, op->model, text, op->out,
                                       dim);
        }
        goto post;
    }

    free(op->out);
    op->out = NULL;
    if (e->cache) {
        op->query = malloc(len + 1);
        if (op->query == NULL) {
            avc_embed_op_free(op);
            return AVC_ENOMEM;
        }
        memcpy(op->query, text, len + 1);
    }
    rc = avc_embed_start_op(e, op, &text, 1);
    if (rc != AVC_OK) {
        avc_embed_op_free(op);
        return rc;
    }
    avc_embed_op_link(e, op);
    if (opp) {
        *opp = op;
    }
    return AVC_OK;

post:
    rc = avc_post(e->loop, avc_embed_posted, op);
    if (rc != AVC_OK) {
        avc_embed_op_free(op);
        return rc;
    }
    avc_embed_op_link(e, op);
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}
