/*
 * Hybrid retrieval against a private PostgreSQL (t/unit/pg.h) with the
 * schema applied by avatarctl migrate: storing chunks, dealership
 * isolation, topic filters, generation invalidation, the relevance floor,
 * cancellation, the thread-pool search path, and a smoke run of a few
 * questions of ../shared/eval when it exists.
 *
 *   build/t/test_retrieve [SECTION...]
 *
 * avatarctl is found next to the test's build directory (build/t/.. ) or
 * by $AVC_AVATARCTL; the repository by $AVC_TOP (default ".").  Without
 * PostgreSQL or avatarctl the database checks are skipped.
 */
#include "tap.h"
#include "pg.h"

#include <avatarcore/chunk.h>
#include <avatarcore/embed.h>
#include <avatarcore/retrieve.h>

#include <dirent.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <time.h>

static const char *top = ".";
static tpg_t pg;
static avc_loop_t *loop;
static avc_db_t *db;
static avc_embedder_t *emb;
static avc_config_t *cfg;

/* helpers: run the loop until a flag is set */

static void
run_for(int *flag, int ms, int quiet)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!*flag) {
        avc_loop_run_once(loop, 50);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000
            + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
        {
            if (!quiet) {
                printf("# timed out\n");
            }
            break;
        }
    }
}

static void
run_until(int *flag, int ms)
{
    run_for(flag, ms, 0);
}

typedef struct {
    int done;
    int err;
    int rows;
    char v[128];
    char msg[256];
    avc_db_tx_t *tx;
} sql_t;

static void
on_sql(int err, avc_db_res_t *res, void *data)
{
    sql_t *s = data;

    s->done = 1;
    s->err = err;
    if (res && err == AVC_EDB) {
        snprintf(s->msg, sizeof(s->msg), "%s", avc_db_res_error(res));
    }
    if (res && err == AVC_OK) {
        s->rows = avc_db_res_rows(res);
        if (s->rows > 0) {
            snprintf(s->v, sizeof(s->v), "%s", avc_db_res_value(res, 0, 0));
        }
    }
}

static void
on_tx(int err, avc_db_tx_t *tx, void *data)
{
    sql_t *s = data;

    s->done = 1;
    s->err = err;
    s->tx = tx;
}

static int
sql(avc_db_tx_t *tx, const char *q, int n, const char *const *p, sql_t *s)
{
    memset(s, 0, sizeof(*s));
    if ((tx ? avc_db_tx_query(tx, q, 0, n, p, on_sql, s)
            : avc_db_query(db, q, 0, n, p, 0, on_sql, s)) == NULL)
    {
        return -1;
    }
    run_until(&s->done, 20000);
    if (s->err != AVC_OK) {
        printf("# %s: %s %s\n", q, avc_err_name(s->err), s->msg);
    }
    return s->err;
}

static int64_t
new_dealership(const char *name)
{
    const char *p[1] = { name };
    sql_t s;

    if (sql(NULL, "INSERT INTO dealerships (name) VALUES ($1) RETURNING id",
            1, p, &s) != AVC_OK)
    {
        return -1;
    }
    return strtoll(s.v, NULL, 10);
}

/*
 * A document the way ingestion stores one: chunks with local embeddings
 * in a transaction, status 'embedding', then 'ready' (which bumps the
 * dealership's generation).  Returns the document id, or -1.
 */
static int64_t
add_doc(int64_t did, const char *topic, const char *name, const char *text)
{
    char did_s[32], bytes[32], doc[160], n_s[32];
    const char *p[5], **texts;
    float *vecs;
    avc_chunks_t *ch;
    sql_t t, s;
    size_t n, i;
    int err = AVC_OK;

    ch = avc_chunk(text, strlen(text), 1000, 200, &err);
    if (ch == NULL) {
        return -1;
    }
    n = avc_chunks_count(ch);
    texts = malloc(n * sizeof(char *));
    vecs = malloc(n * 512 * sizeof(float));
    for (i = 0; i < n; i++) {
        texts[i] = avc_chunks_text(ch, i, NULL);
    }
    avc_embed_local_many(texts, n, 512, vecs);

    memset(&t, 0, sizeof(t));
    avc_db_begin(db, 0, on_tx, &t);
    run_until(&t.done, 20000);
    snprintf(did_s, sizeof(did_s), "%" PRId64, did);
    snprintf(bytes, sizeof(bytes), "%zu", strlen(text));
    p[0] = did_s;
    p[1] = topic;
    p[2] = name;
    p[3] = text;
    p[4] = bytes;
    if (t.err != AVC_OK
        || sql(t.tx, "INSERT INTO documents (dealership_id, topic, filename,"
               " sha256, bytes, status) VALUES ($1, $2, $3,"
               " sha256(convert_to($4, 'UTF8')), $5, 'embedding')"
               " RETURNING id", 5, p, &s) != AVC_OK)
    {
        err = -1;
        goto done;
    }
    snprintf(doc, sizeof(doc), "%s", s.v);
    memset(&s, 0, sizeof(s));
    err = avc_rag_store_chunks(t.tx, strtoll(doc, NULL, 10), did, topic,
                               name, texts, n, vecs, 512,
                               avc_embedder_model(emb), on_sql, &s);
    if (err == AVC_OK) {
        run_until(&s.done, 20000);
        err = s.err;
    }
    if (err == AVC_OK) {
        snprintf(n_s, sizeof(n_s), "%zu", n);
        p[0] = doc;
        p[1] = n_s;
        err = sql(t.tx, "UPDATE documents SET status = 'ready',"
                  " chunk_count = $2 WHERE id = $1", 2, p, &s);
    }
    memset(&s, 0, sizeof(s));
    if (err == AVC_OK) {
        avc_db_commit(t.tx, on_sql, &s);
    } else {
        avc_db_rollback(t.tx, on_sql, &s);
    }
    run_until(&s.done, 20000);

done:
    free(texts);
    free(vecs);
    avc_chunks_free(ch);
    return err == AVC_OK && s.err == AVC_OK ? strtoll(doc, NULL, 10) : -1;
}

/* a retrieval, waited for; results copied */

#define RES_MAX 20

typedef struct {
    int done;
    int calls;
    int err;
    size_t n;
    int64_t chunk[RES_MAX];
    int64_t doc[RES_MAX];
    char file[RES_MAX][64];
    char topic[RES_MAX][64];
    double score[RES_MAX];
    double rrf[RES_MAX];
    int content_ok;
    double best;
    int64_t gen;
} ret_t;

static void
on_ret(int err, const avc_rag_results_t *res, void *data)
{
    ret_t *r = data;
    size_t i;

    r->done = 1;
    r->calls++;
    r->err = err;
    if (err != AVC_OK) {
        return;
    }
    r->n = avc_rag_results_count(res);
    r->best = avc_rag_results_best_score(res);
    r->gen = avc_rag_results_generation(res);
    r->content_ok = 1;
    for (i = 0; i < r->n && i < RES_MAX; i++) {
        r->chunk[i] = avc_rag_result_chunk_id(res, i);
        r->doc[i] = avc_rag_result_document_id(res, i);
        snprintf(r->file[i], sizeof(r->file[i]), "%s",
                 avc_rag_result_filename(res, i));
        snprintf(r->topic[i], sizeof(r->topic[i]), "%s",
                 avc_rag_result_topic(res, i));
        r->score[i] = avc_rag_result_score(res, i);
        r->rrf[i] = avc_rag_result_rrf(res, i);
        r->content_ok &= strlen(avc_rag_result_content(res, i)) > 0;
    }
}

static int
ask(avc_retriever_t *rt, int64_t did, const char *q, size_t k,
    const char *const *topics, ret_t *r)
{
    memset(r, 0, sizeof(*r));
    if (avc_retrieve(rt, did, q, k, topics, -1, on_ret, r) != AVC_OK) {
        return -1;
    }
    run_until(&r->done, 20000);
    return r->err;
}

static int
has_file(const ret_t *r, const char *file, size_t k)
{
    size_t i;

    for (i = 0; i < r->n && i < k; i++) {
        if (strcmp(r->file[i], file) == 0) {
            return 1;
        }
    }
    return 0;
}

/* material */

static const char vsc_text[] =
    "Vehicle Service Contracts\n"
    "A vehicle service contract pays for covered repairs after a "
    "mechanical breakdown. Customers often call it an extended warranty. "
    "Our administrator offers Powertrain, Powertrain Plus and Premier "
    "coverage levels. Every level includes a rental car benefit of $40 a "
    "day for up to five days per claim, and towing up to $100. The "
    "deductible is per visit, not per repair. Contracts on used vehicles "
    "have a waiting period of 30 days and 1,000 miles.\n";

static const char ofac_text[] =
    "OFAC Screening\n"
    "Every customer is checked against the OFAC Specially Designated "
    "Nationals list before the deal is signed, cash buyers included. A "
    "possible match stops the transaction until compliance reviews it; a "
    "confirmed match is blocked and reported within ten business days.\n";

static const char tw_text[] =
    "Tire and Wheel Protection\n"
    "Tire and wheel protection repairs or replaces tires and wheels "
    "damaged by road hazards such as potholes, nails and debris. Tires "
    "with less than 2/32 inch of tread are excluded. Cosmetic damage such "
    "as curb rash is covered only by the cosmetic wheel package.\n";

static void
test_store(int64_t did)
{
    const char *p[AVC_RAG_NPARAMS];
    char did_s[32], doc[160], *hex;
    float v[512], back[512];
    sql_t s;

    avc_embed_local_one("a vector", 8, 512, v);
    hex = avc_rag_vector_hex(v, 512);
    TAP_OK(hex && strlen(hex) == 4096, "a 512-float vector is 4096 hex "
           "digits");
    snprintf(did_s, sizeof(did_s), "%" PRId64, did);
    p[0] = did_s;
    if (sql(NULL, "INSERT INTO documents (dealership_id, topic, filename,"
            " sha256, bytes) VALUES ($1, 'books', 'one.txt',"
            " sha256('x'::bytea), 1) RETURNING id", 1, p, &s) != AVC_OK)
    {
        free(hex);
        return;
    }
    snprintf(doc, sizeof(doc), "%s", s.v);
    p[AVC_RAG_P_DOCUMENT_ID] = doc;
    p[AVC_RAG_P_DEALERSHIP_ID] = did_s;
    p[AVC_RAG_P_TOPIC] = "books";
    p[AVC_RAG_P_POSITION] = "0";
    p[AVC_RAG_P_TITLE] = NULL;
    p[AVC_RAG_P_CONTENT] = "one chunk";
    p[AVC_RAG_P_EMBEDDING] = hex;
    p[AVC_RAG_P_MODEL] = "m";
    TAP_IS(sql(NULL, avc_rag_insert_sql(), AVC_RAG_NPARAMS, p, &s), AVC_OK,
           "avc_rag_insert_sql() with its parameters");
    TAP_OK(s.rows == 1 && atoll(s.v) > 0, "returns the chunk id");
    {
        sql_t w;
        char id[160];

        snprintf(id, sizeof(id), "%s", s.v);
        p[0] = id;
        p[1] = hex;
        sql(NULL, "SELECT (embedding = decode($2, 'hex'))::text FROM"
            " document_chunks WHERE id = $1", 2, p, &w);
        TAP_STR(w.v, "true", "stored as the bytes of the vector");
    }
    TAP_IS(avc_rag_vector_parse("\\x0000803f", back, 1), AVC_OK,
           "parse \\x0000803f");
    TAP_OK(back[0] == 1.0f, "little-endian float32 1.0");
    TAP_IS(avc_rag_vector_parse("\\x0000803", back, 1), AVC_EPARSE,
           "odd length refused");
    TAP_IS(avc_rag_vector_parse("0000803f", back, 1), AVC_EPARSE,
           "without \\x refused");
    TAP_IS(avc_rag_vector_parse("\\x0000803g", back, 1), AVC_EPARSE,
           "not hex refused");
    {
        char *h2 = malloc(4096 + 3);

        h2[0] = '\\';
        h2[1] = 'x';
        memcpy(h2 + 2, hex, 4097);
        TAP_OK(avc_rag_vector_parse(h2, back, 512) == AVC_OK
               && memcmp(back, v, sizeof(v)) == 0,
               "a vector survives hex and back");
        free(h2);
    }
    free(hex);
    p[0] = doc;
    sql(NULL, "DELETE FROM documents WHERE id = $1", 1, p, &s);
}

static void
test_isolation(avc_retriever_t *rt, int64_t a, int64_t b, int64_t c)
{
    ret_t ra, rb;
    int64_t da, db_;
    size_t i;
    int ok;

    da = add_doc(a, "books", "vsc.txt", vsc_text);
    db_ = add_doc(b, "books", "vsc.txt", vsc_text);
    TAP_OK(da > 0 && db_ > 0, "the same document in dealerships A and B");

    TAP_IS(ask(rt, a, "What rental car benefit comes with a service "
               "contract?", 5, NULL, &ra), AVC_OK, "A asks");
    TAP_IS(ask(rt, b, "What rental car benefit comes with a service "
               "contract?", 5, NULL, &rb), AVC_OK, "B asks");
    TAP_OK(ra.n > 0 && rb.n > 0, "both find it (%zu, %zu)", ra.n, rb.n);
    ok = 1;
    for (i = 0; i < ra.n; i++) {
        ok &= ra.doc[i] == da;
    }
    for (i = 0; i < rb.n; i++) {
        ok &= rb.doc[i] == db_;
    }
    TAP_OK(ok, "each sees only its own chunks, though the text is the "
           "same");
    TAP_OK(ra.content_ok && strcmp(ra.file[0], "vsc.txt") == 0
           && strcmp(ra.topic[0], "books") == 0 && ra.score[0] > 0
           && ra.score[0] <= 1, "results carry file, topic, text and a "
           "score in (0, 1] (%.2f)", ra.score[0]);
    ok = 1;
    for (i = 1; i < ra.n; i++) {
        ok &= ra.rrf[i] <= ra.rrf[i - 1];
    }
    TAP_OK(ok, "in fused (reciprocal rank) order");

    TAP_IS(ask(rt, c, "What rental car benefit comes with a service "
               "contract?", 5, NULL, &rb), AVC_OK,
           "a dealership without material");
    TAP_IS(rb.n, 0, "finds nothing of the others'");
    TAP_IS(ask(rt, 999999, "service contract", 5, NULL, &rb), AVC_ENOTFOUND,
           "an unknown dealership: AVC_ENOTFOUND");

    avc_retriever_set_mode(rt, AVC_RETRIEVE_TEXT);
    ask(rt, b, "rental car benefit of a service contract", 5, NULL, &rb);
    ok = rb.n > 0;
    for (i = 0; i < rb.n; i++) {
        ok &= rb.doc[i] == db_;
    }
    TAP_OK(ok, "full-text only: B's chunks only");
    avc_retriever_set_mode(rt, AVC_RETRIEVE_VECTOR);
    ask(rt, b, "rental car benefit of a service contract", 5, NULL, &rb);
    ok = rb.n > 0;
    for (i = 0; i < rb.n; i++) {
        ok &= rb.doc[i] == db_;
    }
    TAP_OK(ok, "vector only: B's chunks only");
    avc_retriever_set_mode(rt, AVC_RETRIEVE_HYBRID);
}

static void
test_topics(avc_retriever_t *rt, int64_t a)
{
    static const char *books[] = { "books", NULL };
    static const char *compliance[] = { "compliance", NULL };
    static const char *both[] = { "books", "compliance", NULL };
    static const char *bad[] = { "Books!", NULL };
    static const char *none[] = { "videos", NULL };
    const char *q = "Do cash buyers have to be screened against the OFAC "
                    "SDN list?";
    ret_t r;
    size_t i;
    int ok, m;

    TAP_OK(add_doc(a, "compliance", "ofac.txt", ofac_text) > 0,
           "an OFAC document in topic compliance");
    ask(rt, a, q, 5, NULL, &r);
    TAP_OK(r.n > 0 && strcmp(r.file[0], "ofac.txt") == 0,
           "without a filter the OFAC document comes first");
    for (m = 0; m < 3; m++) {
        avc_retriever_set_mode(rt, m == 0 ? AVC_RETRIEVE_HYBRID
                                   : m == 1 ? AVC_RETRIEVE_TEXT
                                            : AVC_RETRIEVE_VECTOR);
        ask(rt, a, q, 5, books, &r);
        ok = r.err == AVC_OK;
        for (i = 0; i < r.n; i++) {
            ok &= strcmp(r.topic[i], "books") == 0;
        }
        TAP_OK(ok, "%s: topic books never returns compliance",
               m == 0 ? "hybrid" : m == 1 ? "text" : "vector");
        ask(rt, a, q, 5, compliance, &r);
        ok = r.n > 0;
        for (i = 0; i < r.n; i++) {
            ok &= strcmp(r.topic[i], "compliance") == 0;
        }
        TAP_OK(ok, "%s: topic compliance finds only OFAC",
               m == 0 ? "hybrid" : m == 1 ? "text" : "vector");
    }
    avc_retriever_set_mode(rt, AVC_RETRIEVE_HYBRID);
    ask(rt, a, q, 5, both, &r);
    TAP_OK(r.n > 0 && strcmp(r.file[0], "ofac.txt") == 0,
           "two topics: both searched");
    ask(rt, a, q, 5, none, &r);
    TAP_OK(r.err == AVC_OK && r.n == 0, "a topic without documents: none");
    memset(&r, 0, sizeof(r));
    TAP_IS(avc_retrieve(rt, a, q, 5, bad, -1, on_ret, &r), AVC_EINVAL,
           "a malformed topic is refused");
    TAP_IS(avc_retrieve(rt, a, "", 5, NULL, -1, on_ret, &r), AVC_EINVAL,
           "an empty query is refused");
    TAP_IS(avc_retrieve(rt, a, q, 0, NULL, -1, on_ret, &r), AVC_EINVAL,
           "top_k 0 is refused");
    TAP_IS(avc_retrieve(rt, a, "\xff\xfe", 5, NULL, -1, on_ret, &r),
           AVC_EINVAL, "invalid UTF-8 is refused");
    TAP_IS(r.calls, 0, "and none calls back");
}

static void
test_generation(avc_retriever_t *rt, int64_t a)
{
    const char *q = "Does tire and wheel protection cover a tire with "
                    "worn tread?";
    unsigned long long loads;
    int64_t gen;
    ret_t r;
    sql_t s;
    char did[32];
    const char *p[1] = { did };

    ask(rt, a, q, 5, NULL, &r);
    TAP_OK(r.err == AVC_OK && !has_file(&r, "tw.txt", 5),
           "before the document exists: not found (%zu results)", r.n);
    gen = r.gen;
    loads = avc_retriever_stat(rt, AVC_RETRIEVER_LOADS);
    ask(rt, a, q, 5, NULL, &r);
    TAP_IS(avc_retriever_stat(rt, AVC_RETRIEVER_LOADS), loads,
           "an unchanged generation: no reload");

    TAP_OK(add_doc(a, "books", "tw.txt", tw_text) > 0, "add tw.txt (ready)");
    ask(rt, a, q, 5, NULL, &r);
    TAP_OK(r.n > 0 && strcmp(r.file[0], "tw.txt") == 0,
           "found at once, without a restart");
    TAP_OK(r.gen > gen, "the generation moved (%" PRId64 " -> %" PRId64 ")",
           gen, r.gen);
    TAP_IS(avc_retriever_stat(rt, AVC_RETRIEVER_LOADS), loads + 1,
           "the index was reloaded once");

    snprintf(did, sizeof(did), "%" PRId64, a);
    sql(NULL, "UPDATE documents SET status = 'failed' WHERE dealership_id ="
        " $1 AND filename = 'tw.txt'", 1, p, &s);
    ask(rt, a, q, 5, NULL, &r);
    TAP_OK(r.err == AVC_OK && !has_file(&r, "tw.txt", 5),
           "a document leaving 'ready' leaves the results");
    sql(NULL, "UPDATE documents SET status = 'ready' WHERE dealership_id ="
        " $1 AND filename = 'tw.txt'", 1, p, &s);
    avc_retriever_invalidate(rt, a);
    ask(rt, a, q, 5, NULL, &r);
    TAP_OK(has_file(&r, "tw.txt", 5), "invalidate: reloaded on demand");
    TAP_OK(avc_retriever_stat(rt, AVC_RETRIEVER_INDEXES) >= 1
           && avc_retriever_stat(rt, AVC_RETRIEVER_VECTORS) > 0
           && avc_retriever_stat(rt, AVC_RETRIEVER_MEMORY) > 0,
           "stats: %llu indexes, %llu vectors, %llu bytes",
           avc_retriever_stat(rt, AVC_RETRIEVER_INDEXES),
           avc_retriever_stat(rt, AVC_RETRIEVER_VECTORS),
           avc_retriever_stat(rt, AVC_RETRIEVER_MEMORY));
}

static void
test_floor(avc_retriever_t *rt, int64_t a)
{
    ret_t r;

    ask(rt, a, "What is a good recipe for chocolate chip cookies?", 5, NULL,
        &r);
    TAP_OK(r.err == AVC_OK && r.n == 0, "an unrelated question: no result "
           "(best %.2f)", r.best);
    ask(rt, a, "How many goals did the home team score in the cup final?",
        5, NULL, &r);
    TAP_OK(r.err == AVC_OK && r.n == 0, "a sports question: no result "
           "(best %.2f)", r.best);
    ask(rt, a, "What is the deductible on a service contract, per visit or "
        "per repair?", 5, NULL, &r);
    TAP_OK(r.n > 0 && r.best >= 0.38, "a covered question passes (best "
           "%.2f)", r.best);
    memset(&r, 0, sizeof(r));
    avc_retrieve(rt, a, "chocolate chip cookies", 5, NULL, 0, on_ret, &r);
    run_until(&r.done, 20000);
    TAP_OK(r.n > 0, "min_score 0 lets anything through (%zu)", r.n);
}

static void
test_cancel(avc_retriever_t *rt, int64_t a)
{
    avc_retrieve_op_t *op;
    avc_retriever_t *r2;
    ret_t r;
    int never = 0;

    memset(&r, 0, sizeof(r));
    TAP_IS(avc_retrieve_start(rt, a, "service contract deductible", 5, NULL,
                              -1, on_ret, &r, &op), AVC_OK, "start");
    avc_retrieve_cancel(op);
    run_for(&never, 300, 1);
    TAP_IS(r.calls, 0, "cancelled: no callback");

    r2 = avc_retriever_new(loop, db, emb, cfg);
    memset(&r, 0, sizeof(r));
    avc_retrieve(r2, a, "service contract deductible", 5, NULL, -1, on_ret,
                 &r);
    avc_loop_run_once(loop, 0);
    avc_retriever_free(r2);
    TAP_OK(r.calls == 1 && r.err == AVC_ECANCELED,
           "freeing the retriever: AVC_ECANCELED");
    run_for(&never, 300, 1);
    TAP_IS(r.calls, 1, "nothing later");
}

static void
test_offload(int64_t a)
{
    avc_config_t *c2 = avc_config_new();
    avc_retriever_t *r2, *r1;
    ret_t x, y;
    size_t i;
    int same;

    avc_config_set(c2, "rag.offload_above", "0");
    avc_config_set(c2, "rag.load_page", "10");
    avc_config_set(c2, "rag.index_fp16", "on");
    r2 = avc_retriever_new(loop, db, emb, c2);
    r1 = avc_retriever_new(loop, db, emb, cfg);
    ask(r1, a, "towing and rental car on a service contract", 5, NULL, &x);
    ask(r2, a, "towing and rental car on a service contract", 5, NULL, &y);
    same = x.n == y.n && x.n > 0;
    for (i = 0; same && i < x.n; i++) {
        same = x.chunk[i] == y.chunk[i];
    }
    TAP_OK(same, "searched on the thread pool, loaded in pages of 10, fp16 "
           "re-scoring: the same results");
    avc_retriever_free(r1);
    avc_retriever_free(r2);
    avc_config_free(c2);
}

/* ../shared/eval: a few questions, if the set is there */

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t) n + 1);
    if (fread(b, 1, (size_t) n, f) != (size_t) n) {
        n = 0;
    }
    b[n] = '\0';
    fclose(f);
    return b;
}

/* the value of "key" in a one-line JSON object (no escapes needed here) */
static int
json_field(const char *line, const char *key, char *out, size_t n)
{
    char pat[64];
    const char *p, *e;

    snprintf(pat, sizeof(pat), "\"%s\": \"", key);
    p = strstr(line, pat);
    if (p == NULL) {
        return -1;
    }
    p += strlen(pat);
    e = strchr(p, '"');
    if (e == NULL || (size_t) (e - p) >= n) {
        return -1;
    }
    memcpy(out, p, (size_t) (e - p));
    out[e - p] = '\0';
    return 0;
}

static void
test_eval(avc_retriever_t *rt)
{
    char dir[PATH_MAX], path[PATH_MAX + 300], q[1024], doc[256], kind[32];
    char *text, *qs, *line, *save = NULL;
    int lexical = 0, lexical_hit = 0, negative = 0, negative_empty = 0;
    struct dirent *de;
    int64_t did;
    ret_t r;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/../shared/eval", top);
    snprintf(path, sizeof(path), "%s/docs", dir);
    d = opendir(path);
    snprintf(path, sizeof(path), "%s/questions.jsonl", dir);
    qs = d ? slurp(path) : NULL;
    if (qs == NULL) {
        printf("# skip: no %s\n", dir);
        if (d) {
            closedir(d);
        }
        return;
    }
    did = new_dealership("eval smoke");
    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, ".txt") == NULL) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/docs/%s", dir, de->d_name);
        text = slurp(path);
        if (text) {
            add_doc(did, "books", de->d_name, text);
            free(text);
        }
    }
    closedir(d);
    for (line = strtok_r(qs, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        if (json_field(line, "question", q, sizeof(q)) != 0
            || json_field(line, "kind", kind, sizeof(kind)) != 0)
        {
            continue;
        }
        doc[0] = '\0';
        json_field(line, "doc", doc, sizeof(doc));
        if (strcmp(kind, "lexical") == 0) {
            lexical++;
            ask(rt, did, q, 5, NULL, &r);
            lexical_hit += has_file(&r, doc, 5);
        } else if (strcmp(kind, "negative") == 0) {
            negative++;
            ask(rt, did, q, 5, NULL, &r);
            negative_empty += r.err == AVC_OK && r.n == 0;
        }
    }
    free(qs);
    TAP_OK(lexical > 0 && lexical_hit >= lexical - 1,
           "eval smoke: %d of %d lexical questions find their document in "
           "the top 5", lexical_hit, lexical);
    TAP_OK(negative > 0 && negative_empty * 2 >= negative,
           "eval smoke: %d of %d negative questions get no result",
           negative_empty, negative);
}

/* setup */

static void
test_args(void)
{
    avc_retriever_t *rt;
    avc_config_t *c = avc_config_new();
    avc_loop_t *l = avc_loop_new(1);
    avc_db_t *d = avc_db_new(l, "host=/nonexistent", 1, 0);
    avc_embedder_t *e;
    int err;

    e = avc_embedder_new(l, NULL, c, &err);
    TAP_OK(avc_retriever_new(l, d, NULL, c) == NULL, "no embedder: NULL");
    avc_config_set(c, "rag.min_score", "1.5");
    TAP_OK(avc_retriever_new(l, d, e, c) == NULL, "a floor of 1.5 is "
           "refused");
    avc_config_set(c, "rag.min_score", "0.5");
    avc_config_set(c, "rag.cos_low", "0.9");
    TAP_OK(avc_retriever_new(l, d, e, c) == NULL, "cos_low over cos_high "
           "is refused");
    avc_config_set(c, "rag.cos_low", NULL);
    rt = avc_retriever_new(l, d, e, c);
    TAP_OK(rt != NULL, "valid settings");
    avc_retriever_free(rt);
    avc_retriever_free(NULL);
    avc_embedder_free(e);
    avc_db_free(d);
    avc_loop_free(l);
    avc_config_free(c);
}

/*
 * Chunks whose vectors another model made (a changed embedder or local
 * model) are re-embedded from their text, the generation is bumped and
 * the next retrieval loads the new vectors; meanwhile the document is
 * still found by full text.
 */
static void
test_reembed(avc_retriever_t *rt)
{
    const char *q = "What rental car benefit does the service contract "
                    "include?";
    char did[32], model[160], *hex;
    const char *p[2] = { did, model };
    unsigned long long before, loads;
    struct timespec t0, t;
    int64_t d, gen;
    float vec[512];
    ret_t r;
    sql_t s;
    long n;

    d = new_dealership("Delta Motors");
    snprintf(did, sizeof(did), "%" PRId64, d);
    snprintf(model, sizeof(model), "%s", avc_embedder_model(emb));
    TAP_OK(add_doc(d, "books", "vsc.txt", vsc_text) > 0, "add vsc.txt");
    {
        /* and enough chunks for several batches */
        size_t k, len = strlen(ofac_text);
        char *big = malloc(500 * len + 1);

        for (k = 0; k < 500; k++) {
            memcpy(big + k * len, ofac_text, len);
        }
        big[500 * len] = '\0';
        TAP_OK(add_doc(d, "books", "ofac.txt", big) > 0, "add ofac.txt");
        free(big);
    }
    ask(rt, d, q, 5, NULL, &r);
    TAP_OK(has_file(&r, "vsc.txt", 1), "found");
    before = avc_retriever_stat(rt, AVC_RETRIEVER_REEMBEDDED);
    TAP_IS(before, 0, "nothing to re-embed while the models agree");

    sql(NULL, "SELECT count(*) FROM document_chunks WHERE dealership_id ="
        " $1", 1, p, &s);
    n = atol(s.v);
    sql(NULL, "UPDATE document_chunks SET embedding_model = 'older-model',"
        " embedding = '\\x00' WHERE dealership_id = $1", 1, p, &s);
    sql(NULL, "UPDATE dealerships SET generation = generation + 1"
        " WHERE id = $1 RETURNING generation", 1, p, &s);
    gen = strtoll(s.v, NULL, 10);
    ask(rt, d, q, 5, NULL, &r);
    TAP_OK(has_file(&r, "vsc.txt", 1),
           "vectors of another model: still found (full text)");

    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        avc_loop_run_once(loop, 50);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (avc_retriever_stat(rt, AVC_RETRIEVER_REEMBEDDED) < before + n
             && t.tv_sec - t0.tv_sec < 20);
    TAP_IS(avc_retriever_stat(rt, AVC_RETRIEVER_REEMBEDDED), before + n,
           "re-embedded every chunk of the dealership (%ld)", n);
    sql(NULL, "SELECT count(*) FROM document_chunks WHERE dealership_id ="
        " $1 AND embedding_model = $2", 2, p, &s);
    TAP_IS(atol(s.v), n, "stored with the embedder's model");
    {
        /* the first chunk's vector: the local embedding of its text */
        sql_t c;
        const char *pp[2];
        avc_chunks_t *ch;
        int err = AVC_OK;
        const char *t0text;

        ch = avc_chunk(vsc_text, strlen(vsc_text), 1000, 200, &err);
        t0text = ch ? avc_chunks_text(ch, 0, NULL) : "";
        avc_embed_local_many(&t0text, 1, 512, vec);
        hex = avc_rag_vector_hex(vec, 512);
        pp[0] = did;
        pp[1] = hex;
        sql(NULL, "SELECT (encode(embedding, 'hex') = $2)::text FROM"
            " document_chunks WHERE dealership_id = $1 AND position = 0",
            2, pp, &c);
        TAP_STR(c.v, "true", "its vector is the local embedding of its "
                   "text");
        free(hex);
        avc_chunks_free(ch);
    }
    sql(NULL, "SELECT generation FROM dealerships WHERE id = $1", 1, p, &s);
    TAP_OK(strtoll(s.v, NULL, 10) > gen, "the generation was bumped");
    loads = avc_retriever_stat(rt, AVC_RETRIEVER_LOADS);
    ask(rt, d, q, 5, NULL, &r);
    TAP_OK(has_file(&r, "vsc.txt", 1) && r.rrf[0] > 1.5 / 61,
           "found by both lists again (rrf %.4f)", r.rrf[0]);
    TAP_IS(avc_retriever_stat(rt, AVC_RETRIEVER_LOADS), loads + 1,
           "reloaded once");
    ask(rt, d, q, 5, NULL, &r);
    TAP_IS(avc_retriever_stat(rt, AVC_RETRIEVER_REEMBEDDED), before + n,
           "nothing more to re-embed");
}

typedef struct {
    int calls;
    int err;
    size_t chunks;
} reembed_seen_t;

static void
on_reembed(int err, size_t chunks, void *data)
{
    reembed_seen_t *s = data;

    s->calls++;
    s->err = err;
    s->chunks = chunks;
}

static void
wait_reembed(reembed_seen_t *s)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        avc_loop_run_once(loop, 50);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (s->calls == 0 && t.tv_sec - t0.tv_sec < 20);
}

/*
 * avc_retriever_reembed: a re-embedding on demand (avatarctl reembed),
 * without waiting for a retrieval to load the index.
 */
static void
test_reembed_now(avc_retriever_t *rt)
{
    avc_retriever_t *rt2;
    reembed_seen_t s1, s2;
    char did[32];
    const char *p[1] = { did };
    avc_config_t *pc;
    int64_t d;
    sql_t s;
    long n;

    d = new_dealership("Epsilon Motors");
    snprintf(did, sizeof(did), "%" PRId64, d);
    TAP_OK(add_doc(d, "books", "vsc.txt", vsc_text) > 0, "add vsc.txt");
    sql(NULL, "SELECT count(*) FROM document_chunks WHERE dealership_id ="
        " $1", 1, p, &s);
    n = atol(s.v);

    TAP_IS(avc_retriever_reembed(NULL, d, on_reembed, &s1), AVC_EINVAL,
           "reembed: no retriever is EINVAL");
    TAP_IS(avc_retriever_reembed(rt, 0, on_reembed, &s1), AVC_EINVAL,
           "reembed: no dealership is EINVAL");
    TAP_IS(avc_retriever_reembed(rt, d, NULL, NULL), AVC_EINVAL,
           "reembed: no callback is EINVAL");

    memset(&s1, 0, sizeof(s1));
    TAP_IS(avc_retriever_reembed(rt, d, on_reembed, &s1), AVC_OK,
           "reembed with nothing stale");
    TAP_IS(s1.calls, 0, "... its callback never runs within the call");
    wait_reembed(&s1);
    TAP_OK(s1.calls == 1 && s1.err == AVC_OK && s1.chunks == 0,
           "... and reports 0 chunks (%d, %d, %zu)", s1.calls, s1.err,
           s1.chunks);

    sql(NULL, "UPDATE document_chunks SET embedding_model = 'older-model'"
        " WHERE dealership_id = $1", 1, p, &s);
    memset(&s1, 0, sizeof(s1));
    memset(&s2, 0, sizeof(s2));
    TAP_IS(avc_retriever_reembed(rt, d, on_reembed, &s1), AVC_OK,
           "reembed of stale chunks");
    TAP_IS(avc_retriever_reembed(rt, d, on_reembed, &s2), AVC_EBUSY,
           "... a second caller meanwhile is EBUSY");
    wait_reembed(&s1);
    TAP_OK(s1.calls == 1 && s1.err == AVC_OK && s1.chunks == (size_t) n,
           "... reports the %ld chunks (%d, %d, %zu)", n, s1.calls, s1.err,
           s1.chunks);
    TAP_IS(s2.calls, 0, "... the refused caller hears nothing");
    sql(NULL, "SELECT count(*) FROM document_chunks WHERE dealership_id ="
        " $1 AND embedding_model = 'older-model'", 1, p, &s);
    TAP_STR(s.v, "0", "... none is left of the older model");

    /* freeing the retriever tells the waiting caller */
    sql(NULL, "UPDATE document_chunks SET embedding_model = 'older-model'"
        " WHERE dealership_id = $1", 1, p, &s);
    rt2 = avc_retriever_new(loop, db, emb, cfg);
    memset(&s1, 0, sizeof(s1));
    TAP_IS(avc_retriever_reembed(rt2, d, on_reembed, &s1), AVC_OK,
           "reembed on a second retriever");
    avc_retriever_free(rt2);
    TAP_OK(s1.calls == 1 && s1.err == AVC_ECANCELED,
           "... freed at once: the caller hears ECANCELED (%d, %d)",
           s1.calls, s1.err);
    avc_loop_run_once(loop, 100);

    /* with Pinecone the vectors are not PostgreSQL's to rewrite */
    pc = avc_config_new();
    avc_config_set(pc, "vector_store.provider", "pinecone");
    avc_config_set(pc, "vector_store.key", "pc-test-key");
    avc_config_set(pc, "vector_store.host", "http://127.0.0.1:9");
    rt2 = avc_retriever_new(loop, db, emb, pc);
    TAP_OK(rt2 != NULL, "a retriever over Pinecone");
    TAP_IS(avc_retriever_reembed(rt2, d, on_reembed, &s1), AVC_ESTATE,
           "... refuses to re-embed: ESTATE");
    avc_retriever_free(rt2);
    avc_config_free(pc);
}

int
main(int argc, char **argv)
{
    avc_retriever_t *rt;
    int64_t a, b, c;
    int err;

    (void) argc;
    (void) argv;
    if (getenv("AVC_TOP")) {
        top = getenv("AVC_TOP");
    }
    test_args();
    if (tpg_start(&pg) != 0) {
        printf("# skip: no PostgreSQL\n");
        return tap_done();
    }
    if (tpg_migrate(pg.conninfo, top, pg.cmdlog) != 0) {
        tpg_destroy(&pg);
        printf("# skip: no schema\n");
        return tap_done();
    }
    loop = avc_loop_new(2);
    db = avc_db_new(loop, pg.conninfo, 4, 20000);
    cfg = avc_config_new();
    emb = avc_embedder_new(loop, NULL, cfg, &err);
    rt = avc_retriever_new(loop, db, emb, cfg);
    TAP_OK(rt != NULL, "a retriever");

    a = new_dealership("Alpha Motors");
    b = new_dealership("Beta Motors");
    c = new_dealership("Gamma Motors");
    TAP_OK(a > 0 && b > 0 && c > 0, "three dealerships");
    test_store(c);
    test_isolation(rt, a, b, c);
    test_topics(rt, a);
    test_generation(rt, a);
    test_floor(rt, a);
    test_cancel(rt, a);
    test_offload(a);
    test_reembed(rt);
    test_reembed_now(rt);
    test_eval(rt);

    avc_retriever_free(rt);
    avc_embedder_free(emb);
    avc_db_free(db);
    avc_config_free(cfg);
    avc_loop_free(loop);
    tpg_destroy(&pg);
    return tap_done();
}
