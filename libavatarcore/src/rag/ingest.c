/*
 * The ingestion queue: documents accepted by an upload wait in ingest_jobs
 * and are turned into searchable chunks here, by every nginx worker and by
 * "avatarctl ingest-worker" on other machines alike.
 *
 * A job is claimed with SELECT ... FOR UPDATE SKIP LOCKED and a lease
 * (locked_at); a job whose lease is older than AVC_INGEST_LEASE (its
 * worker died or restarted) is claimed again, so an accepted upload is
 * never lost.  The document goes queued -> extracting -> embedding ->
 * ready | failed with its progress.  Extraction, chunking and local
 * embedding run on the thread pool; the database work on the loop.
 * Chunks are stored with their vectors (little-endian float32) in one
 * transaction that also marks the document ready; with Pinecone as the
 * vector store the vectors are upserted there between the two (see
 * "storing with Pinecone" below).
 */
#include "ingest.h"
#include "rag_internal.h"

#include <avatarcore/chunk.h>
#include <avatarcore/embed.h>
#include <avatarcore/extract.h>
#include <avatarcore/pinecone.h>
#include <avatarcore/retrieve.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AVC_INGEST_LEASE     "10 minutes"
#define AVC_INGEST_POLL_MS   2000
#define AVC_INGEST_ATTEMPTS  5

typedef struct avc__ingest_job_s avc__ingest_job_t;

struct avc__ingest_s {
    avc_loop_t *loop;
    avc_db_t *db;
    avc_embedder_t *embedder;   /* borrowed */
    avc_pinecone_t *pc;         /* the vector store, or NULL: PostgreSQL */
    avc_timer_t *poll;
    char worker[64];
    int busy;                   /* a job is being processed */
    int stopping;
    avc_db_query_t *q;
    avc__ingest_job_t *job;
    unsigned long long done;
    unsigned long long failed;
};

struct avc__ingest_job_s {
    avc__ingest_t *in;
    char id[24];
    char document_id[24];
    char dealership_id[24];
    int attempts;
    char topic[72];
    char *filename;
    char *hex;                  /* the content as the database sent it */
    avc_doc_type_t type;
    long long chunk_size;
    long long overlap;
    /* results of the pool work */
    int err;
    char *why;
    char *title;
    avc_chunks_t *chunks;
    float *vectors;
    size_t dim;
    int local;
    /* the chunks' texts and vectors as text[] literals for the insert:
     * made with the local embedder's vectors in the pool work */
    char *lit_texts;
    char *lit_vecs;
    avc_db_tx_t *tx;
    avc_embed_op_t *eop;
    /* Pinecone: the chunks' ids, by position, and an earlier attempt's */
    int64_t *new_ids;
    size_t nnew;
    int64_t *old_ids;
    size_t nold;
    int pc_busy;                /* a Pinecone operation runs for the job */
};

static void avc_ingest_claim(avc__ingest_t *in);
static void avc_ingest_next(avc__ingest_t *in);

static void
avc_job_free(avc__ingest_job_t *j)
{
    if (j == NULL) {
        return;
    }
    free(j->filename);
    free(j->hex);
    free(j->why);
    free(j->title);
    avc_chunks_free(j->chunks);
    free(j->vectors);
    free(j->lit_texts);
    free(j->lit_vecs);
    free(j->new_ids);
    free(j->old_ids);
    free(j);
}

static void
avc_ignore(int err, avc_db_res_t *res, void *data)
{
}

/* The job is over, whatever happened: look for the next one. */
static void
avc_job_end(avc__ingest_job_t *j)
{
    avc__ingest_t *in = j->in;

    in->job = NULL;
    in->busy = 0;
    avc_job_free(j);
    if (in->stopping) {
        free(in);               /* the queue waited for its last job */
        return;
    }
    avc_ingest_next(in);
}

/* While stopping, a job only ends: no more database work. */
static int
avc_job_stopping(avc__ingest_job_t *j)
{
    if (!j->in->stopping) {
        return 0;
    }
    j->tx = NULL;               /* the pool closes with its connections */
    avc_job_end(j);
    return 1;
}

/*
 * A failure: permanent ones (the file cannot be read) fail the document;
 * transient ones (database, provider) put the job back with a delay.
 */
static void
avc_job_fail(avc__ingest_job_t *j, int permanent, const char *why)
{
    avc__ingest_t *in = j->in;
    const char *p[3];

    if (j->tx) {
        avc_db_rollback(j->tx, avc_ignore, NULL);
        j->tx = NULL;
    }
    in->failed++;
    avc_log(AVC_LOG_WARN, "ingest: document %s: %s", j->document_id, why);
    p[0] = j->id;
    p[1] = why;
    if (permanent || j->attempts >= AVC_INGEST_ATTEMPTS) {
        p[2] = j->document_id;
        avc_db_query(in->db,
                     "WITH j AS (UPDATE ingest_jobs SET state = 'failed',"
                     " last_error = $2, locked_by = NULL"
                     " WHERE id = $1::bigint)"
                     " UPDATE documents SET status = 'failed', error = $2,"
                     " progress = 1 WHERE id = $3::bigint", 0, 3, p, 0,
                     avc_ignore, NULL);
    } else {
        avc_db_query(in->db,
                     "UPDATE ingest_jobs SET state = 'queued',"
                     " last_error = $2, locked_by = NULL,"
                     " run_after = now() + (interval '10 seconds'"
                     " * power(2, attempts))"
                     " WHERE id = $1::bigint", 0, 2, p, 0, avc_ignore,
                     NULL);
    }
    avc_job_end(j);
}

/* storing */

static void
avc_job_committed(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;

    j->tx = NULL;
    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_job_fail(j, 0, "the chunks could not be stored");
        return;
    }
    j->in->done++;
    avc_log(AVC_LOG_INFO, "ingest: document %s ready: %zu chunks",
            j->document_id, avc_chunks_count(j->chunks));
    avc_job_end(j);
}

static void
avc_job_marked(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;

    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_job_fail(j, 0, "the document could not be marked ready");
        return;
    }
    if (avc_db_commit(j->tx, avc_job_committed, j) != AVC_OK) {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

/* A text[] literal element: "..." with \ and " escaped. */
static int
avc_array_elem(avc__buf_t *b, const char *s, size_t n)
{
    size_t i;
    int rc = avc__buf_append(b, "\"", 1);

    for (i = 0; i < n && rc == AVC_OK; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            rc = avc__buf_append(b, "\\", 1);
        }
        if (rc == AVC_OK) {
            rc = avc__buf_append(b, &s[i], 1);
        }
    }
    return rc == AVC_OK ? avc__buf_append(b, "\"", 1) : rc;
}

static void
avc_job_chunks_stored(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;
    char n[24];
    const char *p[2];

    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_log(AVC_LOG_ERR, "ingest: %s", err == AVC_EDB
                ? avc_db_res_error(res) : avc_strerror(err));
        avc_job_fail(j, 0, "the chunks could not be stored");
        return;
    }
    snprintf(n, sizeof(n), "%zu", avc_chunks_count(j->chunks));
    p[0] = j->document_id;
    p[1] = n;
    if (avc_db_tx_query(j->tx,
                        "WITH d AS (UPDATE documents SET status = 'ready',"
                        " progress = 1, error = NULL,"
                        " chunk_count = $2::int WHERE id = $1::bigint)"
                        " UPDATE ingest_jobs SET state = 'done',"
                        " last_error = NULL, locked_by = NULL"
                        " WHERE document_id = $1::bigint", 0, 2, p,
                        avc_job_marked, j) == NULL)
    {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

/*
 * storing with Pinecone as the vector store: the chunks are committed
 * first (the document not yet ready), then their vectors are upserted,
 * then the document is marked ready.  So a vector never exists without
 * its chunk's row, except when a deletion races the job or a worker dies
 * between: retrieval deletes such a vector when it meets one.  A failed
 * upsert puts the job back; the next attempt replaces the chunks and
 * deletes the vectors of the old ones.
 */

static void
avc_job_forgotten(int err, size_t count, void *data)
{
    /* logged by the client; retrieval repairs what is left */
}

/* a job's vectors of a document that went meanwhile: not ours to keep */
static void
avc_job_forget(avc__ingest_job_t *j, const int64_t *ids, size_t n)
{
    char (*num)[24];
    const char **p;
    size_t i;

    num = malloc((n + 1) * sizeof(*num));
    p = malloc((n + 1) * sizeof(*p));
    if (num && p) {
        for (i = 0; i < n; i++) {
            snprintf(num[i], sizeof(num[i]), "%" PRId64, ids[i]);
            p[i] = num[i];
        }
        if (avc_pinecone_delete_ids(j->in->pc, atoll(j->dealership_id), p,
                                    n, avc_job_forgotten, j->in) != AVC_OK)
        {
            avc_log(AVC_LOG_WARN, "ingest: document %s: cannot delete its "
                    "vectors", j->document_id);
        }
    }
    free(num);
    free(p);
}

static void
avc_job_marked_pc(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;

    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_job_fail(j, 0, "the document could not be marked ready");
        return;
    }
    if (atoll(avc_db_res_value(res, 0, 0)) == 0) {
        /* deleted while its vectors were sent */
        avc_log(AVC_LOG_INFO, "ingest: document %s was deleted meanwhile",
                j->document_id);
        avc_job_forget(j, j->new_ids, j->nnew);
        avc_job_end(j);
        return;
    }
    j->in->done++;
    avc_log(AVC_LOG_INFO, "ingest: document %s ready: %zu chunks, %zu "
            "vectors in Pinecone", j->document_id,
            avc_chunks_count(j->chunks), j->nnew);
    avc_job_end(j);
}

static void
avc_job_upserted(int err, size_t count, void *data)
{
    avc__ingest_job_t *j = data;
    char n[24], why[400];
    const char *p[2];

    j->pc_busy = 0;
    if (err != AVC_OK) {
        snprintf(why, sizeof(why), "the vector store failed: %s",
                 err == AVC_EUPSTREAM ? avc_pinecone_last_error(j->in->pc)
                                      : avc_strerror(err));
        avc_job_fail(j, 0, why);
        return;
    }
    snprintf(n, sizeof(n), "%zu", avc_chunks_count(j->chunks));
    p[0] = j->document_id;
    p[1] = n;
    if (avc_db_query(j->in->db,
                     "WITH d AS (UPDATE documents SET status = 'ready',"
                     " progress = 1, error = NULL, chunk_count = $2::int"
                     " WHERE id = $1::bigint RETURNING id),"
                     " j AS (UPDATE ingest_jobs SET state = 'done',"
                     " last_error = NULL, locked_by = NULL"
                     " WHERE document_id = $1::bigint)"
                     " SELECT count(*) FROM d", 0, 2, p, 0,
                     avc_job_marked_pc, j) == NULL)
    {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

static void
avc_job_upsert(avc__ingest_job_t *j)
{
    size_t i, n = j->nnew;
    char (*num)[24];
    const char **ids, **topics, **names;
    int64_t *docs;
    int *pos;
    int rc = AVC_ENOMEM;

    num = malloc(n * sizeof(*num));
    ids = malloc(n * sizeof(*ids));
    topics = malloc(n * sizeof(*topics));
    names = malloc(n * sizeof(*names));
    docs = malloc(n * sizeof(*docs));
    pos = malloc(n * sizeof(*pos));
    if (num && ids && topics && names && docs && pos) {
        for (i = 0; i < n; i++) {
            snprintf(num[i], sizeof(num[i]), "%" PRId64, j->new_ids[i]);
            ids[i] = num[i];
            topics[i] = j->topic;
            names[i] = j->filename;
            docs[i] = atoll(j->document_id);
            pos[i] = (int) i;
        }
        /* copied: the arrays go at once */
        rc = avc_pinecone_upsert(j->in->pc, atoll(j->dealership_id), ids,
                                 j->vectors, j->dim, docs, topics, names,
                                 pos, n, avc_job_upserted, j);
    }
    free(num);
    free(ids);
    free(topics);
    free(names);
    free(docs);
    free(pos);
    if (rc != AVC_OK) {
        /* EINVAL: a vector or a name Pinecone cannot take, for good */
        avc_job_fail(j, rc == AVC_EINVAL, rc == AVC_EINVAL
                     ? "the vectors cannot be stored in the vector store"
                     : "out of memory");
        return;
    }
    j->pc_busy = 1;
}

static void
avc_job_old_forgotten(int err, size_t count, void *data)
{
    avc__ingest_job_t *j = data;

    j->pc_busy = 0;
    if (err != AVC_OK) {
        /* left to retrieval, which deletes vectors without a chunk */
        avc_log(AVC_LOG_WARN, "ingest: document %s: the vectors of its "
                "earlier chunks stay in Pinecone for now", j->document_id);
    }
    avc_job_upsert(j);
}

static void
avc_job_committed_pc(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;
    char (*num)[24];
    const char **p;
    size_t i;
    int rc = AVC_ENOMEM;

    j->tx = NULL;
    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_job_fail(j, 0, "the chunks could not be stored");
        return;
    }
    if (j->nold == 0) {
        avc_job_upsert(j);
        return;
    }
    /* an earlier attempt's chunks, replaced: their vectors go first */
    num = malloc(j->nold * sizeof(*num));
    p = malloc(j->nold * sizeof(*p));
    if (num && p) {
        for (i = 0; i < j->nold; i++) {
            snprintf(num[i], sizeof(num[i]), "%" PRId64, j->old_ids[i]);
            p[i] = num[i];
        }
        rc = avc_pinecone_delete_ids(j->in->pc, atoll(j->dealership_id), p,
                                     j->nold, avc_job_old_forgotten, j);
    }
    free(num);
    free(p);
    if (rc != AVC_OK) {
        avc_job_upsert(j);
        return;
    }
    j->pc_busy = 1;
}

static void
avc_job_chunks_stored_pc(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;
    int rc;

    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_log(AVC_LOG_ERR, "ingest: %s", err == AVC_EDB
                ? avc_db_res_error(res) : avc_strerror(err));
        avc_job_fail(j, 0, "the chunks could not be stored");
        return;
    }
    rc = avc__ids_parse(avc_db_res_value(res, 0, 0), &j->old_ids, &j->nold);
    if (rc == AVC_OK) {
        rc = avc__ids_parse(avc_db_res_value(res, 0, 1), &j->new_ids,
                            &j->nnew);
    }
    if (rc == AVC_OK && j->nnew != avc_chunks_count(j->chunks)) {
        rc = AVC_EPROTO;
    }
    if (rc != AVC_OK) {
        avc_job_fail(j, 0, rc == AVC_ENOMEM ? "out of memory"
                                            : "the chunks could not be "
                                              "stored");
        return;
    }
    if (avc_db_commit(j->tx, avc_job_committed_pc, j) != AVC_OK) {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

/*
 * Every chunk goes in one statement: its texts and vectors as two text[]
 * literals (escaped text; hex), unnested.  For a large document that is
 * tens of megabytes of text: made in the pool work when the vectors are
 * the local embedder's, on the loop when a provider's came back.
 */
static int
avc_job_literals(avc__ingest_job_t *j)
{
    avc__buf_t texts, vecs;
    const char *text;
    char *hex;
    size_t i, len, count = avc_chunks_count(j->chunks);
    int rc = AVC_OK;

    avc__buf_init(&texts);
    avc__buf_init(&vecs);
    rc |= avc__buf_append(&texts, "{", 1);
    rc |= avc__buf_append(&vecs, "{", 1);
    for (i = 0; i < count && rc == AVC_OK; i++) {
        text = avc_chunks_text(j->chunks, i, &len);
        if (i) {
            rc |= avc__buf_append(&texts, ",", 1);
            rc |= avc__buf_append(&vecs, ",", 1);
        }
        rc |= avc_array_elem(&texts, text, len);
        hex = avc_rag_vector_hex(j->vectors + i * j->dim, j->dim);
        rc |= hex ? avc__buf_appends(&vecs, hex) : AVC_ENOMEM;
        free(hex);
    }
    rc |= avc__buf_append(&texts, "}", 1);
    rc |= avc__buf_append(&vecs, "}", 1);
    if (rc == AVC_OK) {
        j->lit_texts = avc__buf_steal(&texts, NULL);
        j->lit_vecs = avc__buf_steal(&vecs, NULL);
    }
    avc__buf_free(&texts);
    avc__buf_free(&vecs);
    if (j->lit_texts == NULL || j->lit_vecs == NULL) {
        free(j->lit_texts);
        free(j->lit_vecs);
        j->lit_texts = NULL;
        j->lit_vecs = NULL;
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

static void
avc_job_store_begun(int err, avc_db_tx_t *tx, void *data)
{
    avc__ingest_job_t *j = data;
    const char *p[8];
    char model[128];

    if (avc_job_stopping(j)) {
        if (err == AVC_OK) {
            avc_db_rollback(tx, avc_ignore, NULL);
        }
        return;
    }
    if (err != AVC_OK) {
        avc_job_fail(j, 0, "the database is unavailable");
        return;
    }
    j->tx = tx;
    if (j->lit_texts == NULL && avc_job_literals(j) != AVC_OK) {
        avc_job_fail(j, 0, "out of memory");
        return;
    }
    snprintf(model, sizeof(model), "%s",
             j->in->embedder ? avc_embedder_model(j->in->embedder) : "");
    p[0] = j->document_id;
    p[1] = j->dealership_id;
    p[2] = j->topic;
    p[3] = j->title;
    p[4] = model;
    p[5] = j->lit_texts;
    p[6] = j->lit_vecs;
    if (j->in->pc) {
        /* the same, telling the chunks' ids, and the replaced ones' */
        if (avc_db_tx_query(tx,
                "WITH old AS (DELETE FROM document_chunks"
                " WHERE document_id = $1::bigint RETURNING id),"
                " new AS (INSERT INTO document_chunks (document_id,"
                " dealership_id, topic, position, title, content,"
                " embedding, embedding_model)"
                " SELECT $1::bigint, $2::bigint, $3, t.ord - 1, $4, t.c,"
                " decode(t.e, 'hex'), $5"
                " FROM unnest($6::text[], $7::text[]) WITH ORDINALITY"
                " AS t(c, e, ord) RETURNING id, position)"
                " SELECT ARRAY(SELECT id FROM old ORDER BY id)::text,"
                " ARRAY(SELECT id FROM new ORDER BY position)::text", 0, 7,
                p, avc_job_chunks_stored_pc, j) == NULL)
        {
            avc_job_fail(j, 0, "the database is unavailable");
        }
        return;
    }
    if (avc_db_tx_query(tx,
            "WITH old AS (DELETE FROM document_chunks"
            " WHERE document_id = $1::bigint)"
            " INSERT INTO document_chunks (document_id, dealership_id,"
            " topic, position, title, content, embedding, embedding_model)"
            " SELECT $1::bigint, $2::bigint, $3, t.ord - 1, $4, t.c,"
            " decode(t.e, 'hex'), $5"
            " FROM unnest($6::text[], $7::text[]) WITH ORDINALITY"
            " AS t(c, e, ord)", 0, 7, p, avc_job_chunks_stored, j) == NULL)
    {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

static void
avc_job_store(avc__ingest_job_t *j)
{
    if (avc_db_begin(j->in->db, 0, avc_job_store_begun, j) != AVC_OK) {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

/* embedding through a provider (the local one runs in the pool work) */

static void
avc_job_embedded(int err, const float *vectors, size_t n, size_t dim,
    void *data)
{
    avc__ingest_job_t *j = data;

    j->eop = NULL;
    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK) {
        avc_job_fail(j, 0, "the embedding provider failed");
        return;
    }
    j->vectors = malloc(n * dim * sizeof(float));
    if (j->vectors == NULL) {
        avc_job_fail(j, 0, "out of memory");
        return;
    }
    memcpy(j->vectors, vectors, n * dim * sizeof(float));
    j->dim = dim;
    avc_job_store(j);
}

static void
avc_job_embedding(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_job_t *j = data;
    const char **texts;
    size_t i, n = avc_chunks_count(j->chunks), len;

    if (avc_job_stopping(j)) {
        return;
    }
    if (j->local) {
        avc_job_store(j);
        return;
    }
    texts = calloc(n, sizeof(*texts));
    if (texts == NULL) {
        avc_job_fail(j, 0, "out of memory");
        return;
    }
    for (i = 0; i < n; i++) {
        texts[i] = avc_chunks_text(j->chunks, i, &len);
    }
    if (avc_embed_start(j->in->embedder, texts, n, avc_job_embedded, j,
                        &j->eop) != AVC_OK)
    {
        free(texts);
        avc_job_fail(j, 0, "the embedding provider is unavailable");
        return;
    }
    free(texts);
}

/* the pool work: decode, extract, chunk, and embed locally */

static int
avc_hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void
avc_job_work(void *arg)
{
    avc__ingest_job_t *j = arg;
    const char *h = j->hex;
    unsigned char *raw;
    char *text = NULL;
    size_t n, i, tlen = 0;
    int a, b;

    /* bytea arrives as "\x" and hex digits */
    if (h == NULL || h[0] != '\\' || h[1] != 'x') {
        j->err = AVC_EPARSE;
        return;
    }
    h += 2;
    n = strlen(h) / 2;
    raw = malloc(n + 1);
    if (raw == NULL) {
        j->err = AVC_ENOMEM;
        return;
    }
    for (i = 0; i < n; i++) {
        a = avc_hexval((unsigned char) h[2 * i]);
        b = avc_hexval((unsigned char) h[2 * i + 1]);
        if (a < 0 || b < 0) {
            free(raw);
            j->err = AVC_EPARSE;
            return;
        }
        raw[i] = (unsigned char) (a << 4 | b);
    }
    free(j->hex);
    j->hex = NULL;

    j->type = avc_doc_sniff(raw, n);
    j->err = avc_extract(raw, n, j->type, 0, 0, 0, &text, &tlen, &j->why);
    free(raw);
    if (j->err != AVC_OK) {
        return;
    }
    j->title = avc_doc_title(text, tlen);
    if (j->title == NULL) {
        j->title = strdup(j->filename);
    }
    j->chunks = avc_chunk(text, tlen, (size_t) j->chunk_size,
                          (size_t) j->overlap, &j->err);
    free(text);
    if (j->chunks == NULL || avc_chunks_count(j->chunks) == 0) {
        if (j->err == AVC_OK) {
            j->err = AVC_EINVAL;
        }
        return;
    }
    if (j->local) {
        size_t count = avc_chunks_count(j->chunks);
        const char **texts = calloc(count, sizeof(*texts));

        j->vectors = malloc(count * j->dim * sizeof(float));
        if (texts == NULL || j->vectors == NULL) {
            free(texts);
            j->err = AVC_ENOMEM;
            return;
        }
        for (i = 0; i < count; i++) {
            texts[i] = avc_chunks_text(j->chunks, i, &n);
        }
        j->err = avc_embed_local_many(texts, count, (unsigned) j->dim,
                                      j->vectors);
        free(texts);
        if (j->err == AVC_OK) {
            j->err = avc_job_literals(j);
        }
    }
}

static void
avc_job_worked(void *arg, int status)
{
    avc__ingest_job_t *j = arg;
    avc__ingest_t *in = j->in;
    const char *p[1];
    char why[400];

    if (status != AVC_OK || in->stopping) {
        avc_job_end(j);         /* the lease expires; it runs again */
        return;
    }
    if (j->err != AVC_OK) {
        snprintf(why, sizeof(why), "%s",
                 j->why ? j->why
                 : j->err == AVC_EINVAL ? "the file contains no text"
                 : j->err == AVC_ETOOBIG ? "the file is too large to read"
                 : j->err == AVC_ETIMEDOUT ? "reading the file took too long"
                 : "the file could not be read");
        avc_job_fail(j, j->err != AVC_ENOMEM && j->err != AVC_ESYS, why);
        return;
    }
    p[0] = j->document_id;
    if (avc_db_query(in->db, "UPDATE documents SET status = 'embedding',"
                     " progress = 0.5 WHERE id = $1::bigint", 0, 1, p, 0,
                     avc_job_embedding, j) == NULL)
    {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

/* claiming */

static void
avc_job_loaded(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_t *in = data;
    avc__ingest_job_t *j = in->job;

    in->q = NULL;
    if (avc_job_stopping(j)) {
        return;
    }
    if (err != AVC_OK || avc_db_res_rows(res) != 1) {
        avc_job_fail(j, err == AVC_OK, err == AVC_OK
                     ? "the document is gone" : "the database failed");
        return;
    }
    /* topic, filename, content, chunk_size, chunk_overlap */
    snprintf(j->topic, sizeof(j->topic), "%s", avc_db_res_value(res, 0, 0));
    j->filename = strdup(avc_db_res_value(res, 0, 1));
    j->hex = strdup(avc_db_res_value(res, 0, 2));
    j->chunk_size = atoll(avc_db_res_value(res, 0, 3));
    j->overlap = atoll(avc_db_res_value(res, 0, 4));
    if (j->chunk_size < 100 || j->chunk_size > 5000) {
        j->chunk_size = 1000;
    }
    if (j->overlap < 0 || j->overlap >= j->chunk_size) {
        j->overlap = j->chunk_size / 5;
    }
    j->local = in->embedder == NULL
               || strcmp(avc_embedder_provider(in->embedder), "local") == 0;
    j->dim = in->embedder ? avc_embedder_dim(in->embedder)
                          : AVC_EMBED_LOCAL_DIM;
    if (j->dim == 0) {
        j->dim = AVC_EMBED_LOCAL_DIM;
    }
    if (j->filename == NULL || j->hex == NULL
        || avc_offload(in->loop, avc_job_work, avc_job_worked, j) != AVC_OK)
    {
        avc_job_fail(j, 0, "out of memory");
    }
}

static void
avc_claimed(int err, avc_db_res_t *res, void *data)
{
    avc__ingest_t *in = data;
    avc__ingest_job_t *j;
    const char *p[1];

    in->q = NULL;
    if (in->stopping) {
        free(in);               /* stopping waited for this claim */
        return;
    }
    if (err != AVC_OK || avc_db_res_rows(res) != 1) {
        in->busy = 0;
        if (err != AVC_OK && err != AVC_ECANCELED) {
            avc_log(AVC_LOG_WARN, "ingest: claim failed: %s",
                    err == AVC_EDB ? avc_db_res_error(res)
                                   : avc_strerror(err));
        }
        return;                 /* nothing to do: wait for the poll */
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        in->busy = 0;
        return;
    }
    j->in = in;
    snprintf(j->id, sizeof(j->id), "%s", avc_db_res_value(res, 0, 0));
    snprintf(j->document_id, sizeof(j->document_id), "%s",
             avc_db_res_value(res, 0, 1));
    snprintf(j->dealership_id, sizeof(j->dealership_id), "%s",
             avc_db_res_value(res, 0, 2));
    j->attempts = atoi(avc_db_res_value(res, 0, 3));
    in->job = j;
    p[0] = j->document_id;
    in->q = avc_db_query(in->db,
                         "UPDATE documents d SET status = 'extracting',"
                         " progress = 0.1, error = NULL"
                         " FROM dealerships s WHERE d.id = $1::bigint"
                         " AND s.id = d.dealership_id"
                         " RETURNING d.topic, d.filename, d.content,"
                         " coalesce((s.rag_config->>'chunk_size')::int,"
                         " 1000), coalesce((s.rag_config->>"
                         "'chunk_overlap')::int, 200)", 0, 1, p, 0,
                         avc_job_loaded, in);
    if (in->q == NULL) {
        avc_job_fail(j, 0, "the database is unavailable");
    }
}

static void
avc_ingest_claim(avc__ingest_t *in)
{
    const char *p[1];

    if (in->busy || in->stopping) {
        return;
    }
    in->busy = 1;
    p[0] = in->worker;
    in->q = avc_db_query(in->db,
                         "UPDATE ingest_jobs SET state = 'running',"
                         " locked_by = $1, locked_at = now(),"
                         " attempts = attempts + 1"
                         " WHERE id = (SELECT id FROM ingest_jobs"
                         " WHERE (state = 'queued' AND run_after <= now())"
                         " OR (state = 'running' AND locked_at < now()"
                         " - interval '" AVC_INGEST_LEASE "')"
                         " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                         " RETURNING id, document_id, dealership_id,"
                         " attempts", 0, 1, p, 0, avc_claimed, in);
    if (in->q == NULL) {
        in->busy = 0;
    }
}

static void
avc_ingest_next(avc__ingest_t *in)
{
    avc_ingest_claim(in);
}

static void
avc_ingest_poll(avc_timer_t *t, void *data)
{
    avc__ingest_t *in = data;

    avc_ingest_claim(in);
    avc_timer_start(in->poll, AVC_INGEST_POLL_MS);
}

avc__ingest_t *
avc__ingest_new(avc_loop_t *loop, avc_db_t *db, avc_embedder_t *embedder)
{
    avc__ingest_t *in = calloc(1, sizeof(*in));
    char host[32];

    if (in == NULL) {
        return NULL;
    }
    in->loop = loop;
    in->db = db;
    in->embedder = embedder;
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "host");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(in->worker, sizeof(in->worker), "%s:%ld", host,
             (long) getpid());
    in->poll = avc_timer_new(loop, avc_ingest_poll, in);
    if (in->poll == NULL) {
        free(in);
        return NULL;
    }
    avc_timer_unref(in->poll);
    avc_timer_start(in->poll, 100);
    return in;
}

int
avc__ingest_set_store(avc__ingest_t *in, avc_http_t *http,
    const avc_config_t *cfg)
{
    const char *s;
    int err = AVC_ENOMEM;

    if (in == NULL || cfg == NULL) {
        return AVC_EINVAL;
    }
    s = avc_config_get(cfg, "vector_store.provider", "postgres");
    if (strcmp(s, "postgres") == 0) {
        return AVC_OK;
    }
    if (strcmp(s, "pinecone") != 0 || http == NULL) {
        avc_log(AVC_LOG_ERR, "ingest: vector store \"%s\" %s", s,
                http ? "unknown" : "needs an HTTP handle");
        return AVC_EINVAL;
    }
    if (in->pc) {
        return AVC_ESTATE;
    }
    in->pc = avc_pinecone_new(in->loop, http, cfg, &err);
    if (in->pc == NULL) {
        avc_log(AVC_LOG_ERR, "ingest: cannot use Pinecone as the vector "
                "store: %s", avc_strerror(err));
        return err;
    }
    return AVC_OK;
}

void
avc__ingest_kick_queue(avc__ingest_t *in)
{
    if (in) {
        avc_ingest_claim(in);
    }
}

int
avc__ingest_busy(const avc__ingest_t *in)
{
    return in->busy;
}

unsigned long long
avc__ingest_stat(const avc__ingest_t *in, int failed)
{
    return failed ? in->failed : in->done;
}

void
avc__ingest_free(avc__ingest_t *in)
{
    if (in == NULL) {
        return;
    }
    in->stopping = 1;
    avc_timer_free(in->poll);
    in->poll = NULL;
    /* abandons its operations (no callbacks), the job's included */
    avc_pinecone_free(in->pc);
    in->pc = NULL;
    if (in->job && in->job->pc_busy) {
        in->job->pc_busy = 0;
        avc_job_end(in->job);   /* the lease expires; it runs again */
        return;
    }
    if (in->job) {
        /* the job's next callback ends it and frees the queue */
        if (in->job->eop) {
            avc_embed_cancel(in->job->eop);
            in->job->eop = NULL;
            avc_job_end(in->job);
            return;
        }
        if (in->q) {
            avc_db_cancel(in->q);   /* calls back: the job ends */
        }
        return;
    }
    if (in->q) {
        avc_db_cancel(in->q);       /* a claim: its callback frees */
        return;
    }
    free(in);
}
