/*
 * Re-embedding a dealership's chunks whose vector another model made.
 *
 * A stored vector is only comparable with query vectors of the model that
 * made it, so the retriever leaves out of the vector search every chunk
 * whose embedding_model is not the configured embedder's.  That happens
 * after a change of embedder or of its settings, and after an upgrade that
 * changes the local embedder (its model name carries a hash of the F&I
 * synonym list and of the analysis).  Without this, such chunks would be
 * found by full text only until their documents were uploaded again.
 *
 * When a load finds such chunks the retriever starts a re-embedding of the
 * dealership: batches of stale chunks are taken in a transaction with
 * FOR UPDATE SKIP LOCKED (so the workers of every machine share the work
 * and never embed a chunk twice at the same time), embedded from their
 * stored text (the local embedder on the thread pool, a provider over
 * HTTP), updated, committed; then the next batch.  The documents stay
 * searchable throughout.  At the end the dealership's generation is
 * bumped, so every worker reloads its index with the new vectors.
 */
#include "rag_internal.h"

#include <avatarcore/retrieve.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* chunks per batch: one transaction, one embedding request */
#define AVC_REEMBED_BATCH_S  "128"

static const char avc_reembed_sql_take[] =
    "SELECT id, content FROM document_chunks "
    "WHERE dealership_id = $1::bigint"
    " AND embedding_model IS DISTINCT FROM $2 "
    "ORDER BY id LIMIT $3::int FOR UPDATE SKIP LOCKED";

static const char avc_reembed_sql_put[] =
    "UPDATE document_chunks c SET embedding = decode(t.e, 'hex'),"
    " embedding_model = $2 "
    "FROM unnest($3::bigint[], $4::text[]) AS t(id, e) "
    "WHERE c.id = t.id AND c.dealership_id = $1::bigint";

static const char avc_reembed_sql_bump[] =
    "UPDATE dealerships SET generation = generation + 1 "
    "WHERE id = $1::bigint";

struct avc__reembed_s {
    avc_loop_t *loop;
    avc_db_t *db;
    avc_embedder_t *emb;
    char did[24];
    char model[160];
    int local;
    size_t dim;
    avc__reembed_cb cb;
    void *data;
    /* the batch */
    avc_db_tx_t *tx;
    avc_db_query_t *q;
    avc_embed_op_t *eop;
    char *ids;                  /* the batch's ids: a bigint[] literal */
    char **texts;               /* and their texts */
    size_t n;
    float *vectors;
    char *lit;                  /* and their vectors: a text[] of hex */
    int work_err;
    int working;                /* pool work runs: free when it ends */
    int dead;
    size_t updated;             /* of the batch, rows the update changed */
    size_t done;                /* chunks re-embedded */
};

static void avc_reembed_next(avc__reembed_t *re);

static void
avc_reembed_batch_free(avc__reembed_t *re)
{
    size_t i;

    for (i = 0; re->texts && i < re->n; i++) {
        free(re->texts[i]);
    }
    free(re->ids);
    re->ids = NULL;
    free(re->texts);
    re->texts = NULL;
    free(re->vectors);
    re->vectors = NULL;
    free(re->lit);
    re->lit = NULL;
    re->n = 0;
}

static void
avc_reembed_free(avc__reembed_t *re)
{
    avc_reembed_batch_free(re);
    free(re);
}

static void
avc_reembed_ignore(int err, avc_db_res_t *res, void *data)
{
    (void) err;
    (void) res;
    (void) data;
}

/* the end: report, then free (the callback must not touch re) */
static void
avc_reembed_end(avc__reembed_t *re, int err)
{
    if (re->tx) {
        avc_db_rollback(re->tx, avc_reembed_ignore, NULL);
        re->tx = NULL;
    }
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "rag: dealership %s: re-embedding stopped "
                "after %zu chunks: %s", re->did, re->done, avc_strerror(err));
    }
    if (re->cb) {
        re->cb(err, re->done, re->data);
    }
    avc_reembed_free(re);
}

static void
avc_reembed_bumped(int err, avc_db_res_t *res, void *data)
{
    avc__reembed_t *re = data;

    (void) res;
    re->q = NULL;
    if (re->dead) {
        return;
    }
    if (err == AVC_OK) {
        avc_log(AVC_LOG_INFO, "rag: dealership %s: %zu chunks re-embedded "
                "with model %s", re->did, re->done, re->model);
    }
    avc_reembed_end(re, err);
}

static void
avc_reembed_committed(int err, avc_db_res_t *res, void *data)
{
    avc__reembed_t *re = data;

    (void) res;
    re->tx = NULL;
    if (re->dead) {
        return;
    }
    if (err != AVC_OK) {
        avc_reembed_end(re, err);
        return;
    }
    re->done += re->updated;
    avc_reembed_batch_free(re);
    avc_reembed_next(re);
}

static void
avc_reembed_put(int err, avc_db_res_t *res, void *data)
{
    avc__reembed_t *re = data;

    re->q = NULL;
    if (re->dead) {
        return;
    }
    /* a chunk deleted meanwhile (its document re-ingested) is not counted */
    re->updated = err == AVC_OK ? (size_t) avc_db_res_affected(res) : 0;
    if (err != AVC_OK || avc_db_commit(re->tx, avc_reembed_committed, re)
                         != AVC_OK)
    {
        avc_reembed_end(re, err != AVC_OK ? err : AVC_EDB);
    }
}

/*
 * The batch's vectors as a text[] literal of hex (about 1 KiB a vector of
 * 512 dimensions): made on the thread pool with the local embedder's
 * vectors, on the loop with a provider's.
 */
static int
avc_reembed_literal(avc__reembed_t *re)
{
    avc__buf_t vecs;
    char *hex;
    size_t i;
    int rc = AVC_OK;

    avc__buf_init(&vecs);
    rc |= avc__buf_appends(&vecs, "{");
    for (i = 0; i < re->n && rc == AVC_OK; i++) {
        hex = avc_rag_vector_hex(re->vectors + i * re->dim, re->dim);
        if (hex == NULL) {
            rc = AVC_ENOMEM;
            break;
        }
        rc |= avc__buf_printf(&vecs, "%s%s", i ? "," : "", hex);
        free(hex);
    }
    rc |= avc__buf_appends(&vecs, "}");
    re->lit = rc == AVC_OK ? avc__buf_steal(&vecs, NULL) : NULL;
    avc__buf_free(&vecs);
    return re->lit ? AVC_OK : AVC_ENOMEM;
}

/* the batch's vectors: store them in the transaction */
static void
avc_reembed_store(avc__reembed_t *re)
{
    const char *p[4];
    int rc = AVC_OK;

    if (re->lit == NULL) {
        rc = avc_reembed_literal(re);
    }
    if (rc == AVC_OK) {
        p[0] = re->did;
        p[1] = re->model;
        p[2] = re->ids;
        p[3] = re->lit;
        re->q = avc_db_tx_query(re->tx, avc_reembed_sql_put, 0, 4, p,
                                avc_reembed_put, re);
        if (re->q == NULL) {
            rc = AVC_ENOMEM;
        }
    }
    if (rc != AVC_OK) {
        avc_reembed_end(re, rc);
    }
}

static void
avc_reembed_work(void *arg)
{
    avc__reembed_t *re = arg;

    re->work_err = avc_embed_local_many((const char *const *) re->texts,
                                        re->n, (unsigned) re->dim,
                                        re->vectors);
    if (re->work_err == AVC_OK) {
        re->work_err = avc_reembed_literal(re);
    }
}

static void
avc_reembed_worked(void *arg, int status)
{
    avc__reembed_t *re = arg;

    re->working = 0;
    if (re->dead) {
        avc_reembed_free(re);
        return;
    }
    if (status != AVC_OK || re->work_err != AVC_OK) {
        avc_reembed_end(re, status != AVC_OK ? status : re->work_err);
        return;
    }
    avc_reembed_store(re);
}

static void
avc_reembed_embedded(int err, const float *vectors, size_t n, size_t dim,
    void *data)
{
    avc__reembed_t *re = data;

    re->eop = NULL;
    if (re->dead) {
        return;
    }
    if (err == AVC_OK && (n != re->n || dim != re->dim)) {
        err = AVC_EPARSE;
    }
    if (err != AVC_OK) {
        avc_reembed_end(re, err);
        return;
    }
    memcpy(re->vectors, vectors, n * dim * sizeof(float));
    avc_reembed_store(re);
}

static void
avc_reembed_taken(int err, avc_db_res_t *res, void *data)
{
    avc__reembed_t *re = data;
    avc__buf_t ids;
    const char *p[1];
    size_t i, n;
    int rc = AVC_OK;

    re->q = NULL;
    if (re->dead) {
        return;
    }
    if (err != AVC_OK) {
        avc_reembed_end(re, err);
        return;
    }
    n = (size_t) avc_db_res_rows(res);
    if (n == 0) {
        /* nothing left here (or all taken by others) */
        avc_db_rollback(re->tx, avc_reembed_ignore, NULL);
        re->tx = NULL;
        if (re->done == 0) {
            avc_reembed_end(re, AVC_OK);
            return;
        }
        p[0] = re->did;
        re->q = avc_db_query(re->db, avc_reembed_sql_bump, 0, 1, p, 0,
                             avc_reembed_bumped, re);
        if (re->q == NULL) {
            avc_reembed_end(re, AVC_ENOMEM);
        }
        return;
    }
    /* the result is the callback's: copy what the batch needs */
    re->texts = calloc(n, sizeof(*re->texts));
    re->vectors = malloc(n * re->dim * sizeof(float));
    if (re->texts == NULL || re->vectors == NULL) {
        avc_reembed_end(re, AVC_ENOMEM);
        return;
    }
    re->n = n;
    avc__buf_init(&ids);
    for (i = 0; i < n && rc == AVC_OK; i++) {
        re->texts[i] = strdup(avc_db_res_value(res, (int) i, 1));
        rc |= re->texts[i] ? AVC_OK : AVC_ENOMEM;
        rc |= avc__buf_printf(&ids, "%c%s", i ? ',' : '{',
                              avc_db_res_value(res, (int) i, 0));
    }
    rc |= avc__buf_appends(&ids, "}");
    re->ids = rc == AVC_OK ? avc__buf_steal(&ids, NULL) : NULL;
    avc__buf_free(&ids);
    if (re->ids == NULL) {
        avc_reembed_end(re, AVC_ENOMEM);
        return;
    }
    if (re->local) {
        if (avc_offload(re->loop, avc_reembed_work, avc_reembed_worked, re)
            != AVC_OK)
        {
            avc_reembed_end(re, AVC_ENOMEM);
            return;
        }
        re->working = 1;
        return;
    }
    if (avc_embed_start(re->emb, (const char *const *) re->texts, re->n,
                        avc_reembed_embedded, re, &re->eop) != AVC_OK)
    {
        avc_reembed_end(re, AVC_EUPSTREAM);
    }
}

static void
avc_reembed_begun(int err, avc_db_tx_t *tx, void *data)
{
    avc__reembed_t *re = data;
    const char *p[3];

    if (re->dead) {
        if (err == AVC_OK) {
            avc_db_rollback(tx, avc_reembed_ignore, NULL);
        }
        avc_reembed_free(re);
        return;
    }
    re->working = 0;
    if (err != AVC_OK) {
        avc_reembed_end(re, err);
        return;
    }
    re->tx = tx;
    p[0] = re->did;
    p[1] = re->model;
    p[2] = AVC_REEMBED_BATCH_S;
    re->q = avc_db_tx_query(tx, avc_reembed_sql_take, 0, 3, p,
                            avc_reembed_taken, re);
    if (re->q == NULL) {
        avc_reembed_end(re, AVC_ENOMEM);
    }
}

static void
avc_reembed_next(avc__reembed_t *re)
{
    /* begin's callback is not cancellable: it frees re when dead */
    re->working = 1;
    if (avc_db_begin(re->db, 0, avc_reembed_begun, re) != AVC_OK) {
        re->working = 0;
        avc_reembed_end(re, AVC_ENOMEM);
    }
}

avc__reembed_t *
avc__reembed_start(avc_loop_t *loop, avc_db_t *db, avc_embedder_t *emb,
    int64_t dealership_id, avc__reembed_cb cb, void *data)
{
    avc__reembed_t *re;

    if (loop == NULL || db == NULL || emb == NULL || dealership_id <= 0
        || avc_embedder_dim(emb) == 0)
    {
        return NULL;
    }
    re = calloc(1, sizeof(*re));
    if (re == NULL) {
        return NULL;
    }
    re->loop = loop;
    re->db = db;
    re->emb = emb;
    re->cb = cb;
    re->data = data;
    re->dim = avc_embedder_dim(emb);
    re->local = strcmp(avc_embedder_provider(emb), "local") == 0;
    snprintf(re->did, sizeof(re->did), "%" PRId64, dealership_id);
    snprintf(re->model, sizeof(re->model), "%s", avc_embedder_model(emb));
    /* begin's callback is not cancellable: it frees re when dead */
    re->working = 1;
    if (avc_db_begin(db, 0, avc_reembed_begun, re) != AVC_OK) {
        /* never the callback from within this call */
        free(re);
        return NULL;
    }
    avc_log(AVC_LOG_INFO, "rag: dealership %s: re-embedding the chunks "
            "without a vector of model %s", re->did, re->model);
    return re;
}

void
avc__reembed_cancel(avc__reembed_t *re)
{
    if (re == NULL || re->dead) {
        return;
    }
    re->dead = 1;
    if (re->q) {
        avc_db_cancel(re->q);
        re->q = NULL;
    }
    if (re->eop) {
        avc_embed_cancel(re->eop);
        re->eop = NULL;
    }
    if (re->tx) {
        avc_db_rollback(re->tx, avc_reembed_ignore, NULL);
        re->tx = NULL;
    }
    if (!re->working) {
        avc_reembed_free(re);
    }
}
