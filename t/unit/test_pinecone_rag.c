/*
 * Pinecone as the knowledge base's vector store, end to end in the core:
 * the real ingestion queue and retriever against a private PostgreSQL
 * (t/unit/pg.h) and tools/mock/pinecone.pl, whose request log
 * (GET /__requests) shows what reached "Pinecone".
 *
 *   build/t/test_pinecone_rag [SECTION...]
 *
 * Sections: ingest (upserts: namespace, ids, metadata, key), batches
 * (over 1,000 chunks), retrieve (the same results as the in-core index,
 * the query's filters, no vectors in memory), isolation, orphans (a
 * vector whose chunk is gone), fallback (Pinecone failing at query
 * time), failure (an upsert failing, then the retry), gone (a document
 * deleted while its vectors are sent), forget, cancel.
 *
 * avatarctl (for the schema) is found next to the test's build directory
 * or by $AVC_AVATARCTL; the repository by $AVC_TOP (default ".").
 * Without PostgreSQL or avatarctl everything is skipped.
 */
#include "tap.h"
#include "pg.h"
#include "mock.h"

#include <avatarcore/embed.h>
#include <avatarcore/http.h>
#include <avatarcore/ingest.h>
#include <avatarcore/retrieve.h>

#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>

#include <jansson.h>

#define KEY  "pc-rag-key-7d1c"

static const char *top = ".";
static char **only;
static tpg_t pg;
static avc_loop_t *loop;
static avc_db_t *db;
static avc_http_t *http;
static avc_embedder_t *emb;
static avc_config_t *cfg_pg;
static avc_config_t *cfg_pc;
static mock_t mk;

static int
wanted(const char *section)
{
    char **p;

    if (only == NULL || *only == NULL) {
        return 1;
    }
    for (p = only; *p; p++) {
        if (strcmp(*p, section) == 0) {
            return 1;
        }
    }
    return 0;
}

/* the loop */

static void
run_until(const int *flag, unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (!*flag && avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 20);
    }
}

static void
run_for(unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 10);
    }
}

/* SQL: the first value of the first row, or "" */

typedef struct {
    int done;
    int err;
    int rows;
    char v[4096];
} sql_t;

static void
on_sql(int err, avc_db_res_t *res, void *data)
{
    sql_t *s = data;

    s->done = 1;
    s->err = err;
    if (err == AVC_EDB) {
        printf("# %s\n", avc_db_res_error(res));
    }
    if (err == AVC_OK) {
        s->rows = avc_db_res_rows(res);
        if (s->rows > 0 && avc_db_res_cols(res) > 0
            && !avc_db_res_isnull(res, 0, 0))
        {
            snprintf(s->v, sizeof(s->v), "%s", avc_db_res_value(res, 0, 0));
        }
    }
}

static const char *
sql(const char *q, int n, const char *const *p)
{
    static sql_t s;

    memset(&s, 0, sizeof(s));
    if (avc_db_query(db, q, 0, n, p, 0, on_sql, &s) == NULL) {
        return "";
    }
    run_until(&s.done, 20000);
    return s.v;
}

static const char *
sql1(const char *q, int64_t a)
{
    char as[24];
    const char *p[1] = { as };

    snprintf(as, sizeof(as), "%" PRId64, a);
    return sql(q, 1, p);
}

static int64_t
new_dealership(const char *name, const char *rag_config)
{
    const char *p[2] = { name, rag_config };

    return strtoll(sql("INSERT INTO dealerships (name, rag_config)"
                       " VALUES ($1, $2::jsonb) RETURNING id", 2, p),
                   NULL, 10);
}

/* the chunk ids of a document, sorted, as "1,2,3" */
static const char *
chunk_ids(int64_t doc)
{
    return sql1("SELECT string_agg(id::text, ',' ORDER BY id)"
                " FROM document_chunks WHERE document_id = $1", doc);
}

/* the mock */

static json_t *
mock_json(const mock_t *m, const char *method, const char *path,
    const char *body)
{
    static const char *const hdrs[] = { "Content-Type: application/json",
                                        NULL };
    char url[128], *resp = NULL;
    size_t rlen = 0;
    int status = 0;
    json_t *j;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", m->port, path);
    if (avc_http_fetch_sync(method, url, hdrs, body, body ? strlen(body) : 0,
                            20000, 0, &status, &resp, &rlen) != AVC_OK
        || status != 200)
    {
        free(resp);
        return NULL;
    }
    j = json_loadb(resp, rlen, 0, NULL);
    free(resp);
    return j;
}

static void
mock_fail(const mock_t *m, const char *spec)
{
    json_decref(mock_json(m, "POST", "/__fail", spec));
}

static json_t *
requests(const mock_t *m)
{
    json_t *j = mock_json(m, "GET", "/__requests", NULL), *r;

    r = json_incref(json_object_get(j, "requests"));
    json_decref(j);
    return r ? r : json_array();
}

/* requests to path from index from on */
static size_t
count_requests(json_t *log, const char *path, size_t from)
{
    size_t i, n = 0;

    for (i = from; i < json_array_size(log); i++) {
        n += strcmp(json_string_value(json_object_get(
                        json_array_get(log, i), "path")), path) == 0;
    }
    return n;
}

static int
cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *) a, y = *(const long long *) b;

    return x < y ? -1 : x > y;
}

/* the ids of a JSON array of decimal strings, sorted, as "1,2,3" */
static void
ids_text(json_t *ids, char *out, size_t n)
{
    long long *v;
    size_t i, k = json_array_size(ids), o = 0;

    out[0] = '\0';
    v = calloc(k + 1, sizeof(*v));
    for (i = 0; v && i < k; i++) {
        v[i] = atoll(json_string_value(json_array_get(ids, i)));
    }
    qsort(v, k, sizeof(*v), cmp_ll);
    for (i = 0; v && i < k && o < n; i++) {
        o += (size_t) snprintf(out + o, n - o, "%s%lld", i ? "," : "",
                               v[i]);
    }
    free(v);
}

/* ingestion through the real queue */

static int64_t
add_doc(int64_t did, const char *topic, const char *name, const char *text)
{
    char did_s[24];
    const char *p[4] = { did_s, topic, name, text };
    int64_t doc;

    snprintf(did_s, sizeof(did_s), "%" PRId64, did);
    doc = strtoll(sql("INSERT INTO documents (dealership_id, topic,"
                      " filename, sha256, bytes, content) VALUES ($1, $2,"
                      " $3, sha256(convert_to($4, 'UTF8')), length($4),"
                      " convert_to($4, 'UTF8')) RETURNING id", 4, p),
                  NULL, 10);
    if (doc > 0) {
        sql1("INSERT INTO ingest_jobs (document_id, dealership_id)"
             " SELECT id, dealership_id FROM documents WHERE id = $1", doc);
    }
    return doc;
}

/* run q until doc's status is one of the wanted ones; the status */
static const char *
wait_doc(avc_ingest_t *q, int64_t doc, const char *want, unsigned ms)
{
    static char st[32];
    uint64_t end = avc_loop_now(loop) + ms;

    avc_ingest_kick(q);
    for (;;) {
        snprintf(st, sizeof(st), "%s",
                 sql1("SELECT status FROM documents WHERE id = $1", doc));
        if (strstr(want, st) || avc_loop_now(loop) >= end) {
            return st;
        }
        run_for(50);
        avc_ingest_kick(q);
    }
}

static int64_t
ingest(avc_ingest_t *q, int64_t did, const char *topic, const char *name,
    const char *text)
{
    int64_t doc = add_doc(did, topic, name, text);

    if (doc <= 0 || strcmp(wait_doc(q, doc, "ready failed", 20000), "ready"))
    {
        printf("# document %s did not become ready\n", name);
        return -1;
    }
    return doc;
}

/* retrieval, waited for */

#define RES_MAX 20

typedef struct {
    int done;
    int calls;
    int err;
    size_t n;
    int64_t chunk[RES_MAX];
    int64_t doc[RES_MAX];
    char topic[RES_MAX][32];
    double score[RES_MAX];
} ret_t;

static void
on_ret(int err, const avc_rag_results_t *res, void *data)
{
    ret_t *r = data;
    size_t i;

    r->done = 1;
    r->calls++;
    r->err = err;
    r->n = err == AVC_OK ? avc_rag_results_count(res) : 0;
    for (i = 0; i < r->n && i < RES_MAX; i++) {
        r->chunk[i] = avc_rag_result_chunk_id(res, i);
        r->doc[i] = avc_rag_result_document_id(res, i);
        snprintf(r->topic[i], sizeof(r->topic[i]), "%s",
                 avc_rag_result_topic(res, i));
        r->score[i] = avc_rag_result_score(res, i);
    }
}

static int
ask(avc_retriever_t *rt, int64_t did, const char *q,
    const char *const *topics, ret_t *r)
{
    memset(r, 0, sizeof(*r));
    if (avc_retrieve(rt, did, q, 5, topics, -1, on_ret, r) != AVC_OK) {
        return -1;
    }
    run_until(&r->done, 20000);
    return r->err;
}

static int
has_doc(const ret_t *r, int64_t doc)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        if (r->doc[i] == doc) {
            return 1;
        }
    }
    return 0;
}

/* the same chunks in the same order, scores within 1e-3 */
static int
same_results(const ret_t *a, const ret_t *b)
{
    size_t i;

    if (a->n != b->n) {
        printf("# %zu results against %zu\n", a->n, b->n);
        return 0;
    }
    for (i = 0; i < a->n; i++) {
        if (a->chunk[i] != b->chunk[i]
            || fabs(a->score[i] - b->score[i]) > 1e-3)
        {
            printf("# result %zu: chunk %" PRId64 " %.5f against %" PRId64
                   " %.5f\n", i, a->chunk[i], a->score[i], b->chunk[i],
                   b->score[i]);
            return 0;
        }
    }
    return 1;
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

static const char gap_text[] =
    "GAP Protection\n"
    "Guaranteed asset protection pays the difference between what the "
    "customer still owes on the loan and the insurer's actual cash value "
    "settlement after a total loss or theft. It does not cover the "
    "deductible, late fees or negative equity rolled in over 25 "
    "percent.\n";

static const char *const questions[] = {
    "How much is the rental car benefit on a service contract?",
    "Who must be screened against the OFAC list?",
    "Does tire and wheel cover curb rash?",
    "what is the waiting period on a used car contract",
    "pothole damage to a wheel",
    NULL
};

/* sections */

static int64_t da, db_, d_vsc, d_ofac, d_tw, d_bvsc;

static void
test_ingest(avc_ingest_t *q)
{
    json_t *log, *e, *m;
    size_t i, k, nup = 0;
    char got[4096], want[4096], ns[32];
    int ok_key = 1, ok_ns = 1, ok_meta = 1, ok_batch = 1;

    d_vsc = ingest(q, da, "books", "vsc.txt", vsc_text);
    d_ofac = ingest(q, da, "compliance", "ofac.txt", ofac_text);
    d_tw = ingest(q, da, "product_knowledge", "tire.txt", tw_text);
    d_bvsc = ingest(q, db_, "books", "b-vsc.txt", vsc_text);
    TAP_OK(d_vsc > 0 && d_ofac > 0 && d_tw > 0 && d_bvsc > 0,
           "ingest: four documents ready with Pinecone as the store");

    log = requests(&mk);
    for (i = 0; i < json_array_size(log); i++) {
        e = json_array_get(log, i);
        if (strcmp(json_string_value(json_object_get(e, "path")),
                   "/vectors/upsert") != 0)
        {
            continue;
        }
        nup++;
        ok_key &= json_is_string(json_object_get(e, "api_key"))
                  && strcmp(json_string_value(json_object_get(e, "api_key")),
                            KEY) == 0;
        ok_batch &= json_integer_value(json_object_get(e, "count")) >= 1
                    && json_integer_value(json_object_get(e, "count"))
                       <= 1000
                    && json_integer_value(json_object_get(e, "status"))
                       == 200;
        /* each document's upsert: its namespace, its chunks' ids */
        m = json_array_get(json_object_get(e, "metadata"), 0);
        k = (size_t) json_integer_value(json_object_get(m, "document_id"));
        snprintf(ns, sizeof(ns), "dealership_%" PRId64,
                 (int64_t) json_integer_value(json_object_get(
                     m, "dealership_id")));
        ok_ns &= strcmp(json_string_value(json_object_get(e, "namespace")),
                        ns) == 0
                 && json_integer_value(json_object_get(m, "dealership_id"))
                    == ((int64_t) k == d_bvsc ? db_ : da);
        ids_text(json_object_get(e, "ids"), got, sizeof(got));
        snprintf(want, sizeof(want), "%s", chunk_ids((int64_t) k));
        if (strcmp(got, want) != 0) {
            printf("# upsert ids %s, chunks %s\n", got, want);
            ok_meta = 0;
        }
        ok_meta &= json_is_string(json_object_get(m, "topic"))
                   && json_is_string(json_object_get(m, "filename"))
                   && json_is_integer(json_object_get(m, "position"));
        if ((int64_t) k == d_ofac) {
            ok_meta &= strcmp(json_string_value(json_object_get(m, "topic")),
                              "compliance") == 0
                       && strcmp(json_string_value(json_object_get(
                                     m, "filename")), "ofac.txt") == 0
                       && json_integer_value(json_object_get(m, "position"))
                          == 0;
        }
    }
    TAP_IS(nup, 4, "ingest: one upsert per document");
    TAP_OK(ok_key, "ingest: every upsert carries the Api-Key");
    TAP_OK(ok_ns, "ingest: into namespace dealership_{id}, with "
           "dealership_id in the metadata");
    TAP_OK(ok_meta, "ingest: ids are the chunk ids; metadata document_id, "
           "topic, filename, position");
    TAP_OK(ok_batch, "ingest: batches of 1 to 1,000 vectors, all accepted");
    json_decref(log);
}

static void
test_batches(void)
{
    avc_config_t *c, *ce;
    avc_embedder_t *e64;
    avc_ingest_t *q;
    mock_t m2;
    const char *args[] = { "--key", KEY, NULL };
    char port[64], *text;
    json_t *log, *ev;
    size_t i, n = 0, total = 0, full = 0, len = 0;
    int64_t did, doc;
    int err, ok = 1;

    /* small vectors, so that the 1,000-vector limit binds, not 2 MB */
    if (mock_start_script(&m2, top, "pinecone.pl", args) != 0) {
        TAP_OK(0, "batches: a second mock");
        return;
    }
    c = avc_config_new();
    ce = avc_config_new();
    snprintf(port, sizeof(port), "http://127.0.0.1:%d", m2.port);
    avc_config_set(c, "vector_store.provider", "pinecone");
    avc_config_set(c, "vector_store.host", port);
    avc_config_set(c, "vector_store.key", KEY);
    avc_config_set(c, "embeddings.dimensions", "64");
    avc_config_set(ce, "embeddings.dimensions", "64");
    e64 = avc_embedder_new(loop, NULL, ce, &err);
    (void) e64;
    q = avc_ingest_new(loop, db, http, c, &err);
    TAP_OK(q != NULL, "batches: a queue with 64-dimension vectors");
    did = new_dealership("Batch Motors",
                         "{\"chunk_size\":100,\"chunk_overlap\":0}");
    text = malloc(300000);
    for (i = 0; text && len < 90000; i++) {
        len += (size_t) snprintf(text + len, 300000 - len,
                                 "Sentence %zu of the long playbook, about "
                                 "menu selling and the product menu. ", i);
    }
    doc = q && text ? ingest(q, did, "playbooks", "long.txt", text) : -1;
    free(text);
    log = requests(&m2);
    for (i = 0; i < json_array_size(log); i++) {
        ev = json_array_get(log, i);
        if (strcmp(json_string_value(json_object_get(ev, "path")),
                   "/vectors/upsert") == 0)
        {
            n = (size_t) json_integer_value(json_object_get(ev, "count"));
            ok &= n >= 1 && n <= 1000;
            full += n == 1000;
            total += n;
        }
    }
    TAP_OK(doc > 0, "batches: a document of %s chunks is ready",
           doc > 0 ? sql1("SELECT chunk_count::text FROM documents"
                          " WHERE id = $1", doc) : "?");
    TAP_OK(ok && full >= 1, "batches: upserts of at most 1,000 vectors "
           "(%zu full ones)", full);
    TAP_IS(total, atoll(sql1("SELECT count(*) FROM document_chunks"
                             " WHERE document_id = $1", doc)),
           "batches: every chunk upserted once");
    json_decref(log);
    avc_ingest_free(q);
    run_for(100);
    avc_embedder_free(e64);
    avc_config_free(c);
    avc_config_free(ce);
    mock_stop(&m2);
}

static void
test_retrieve(avc_retriever_t *rpc, avc_retriever_t *rpg)
{
    static const char *const comp[] = { "compliance", NULL };
    ret_t a, b;
    json_t *log, *e, *f;
    size_t i, before;
    int same = 1, found = 1;
    char ns[32];

    for (i = 0; questions[i]; i++) {
        if (ask(rpc, da, questions[i], NULL, &a) != AVC_OK
            || ask(rpg, da, questions[i], NULL, &b) != AVC_OK)
        {
            same = 0;
            continue;
        }
        same &= same_results(&a, &b);
        found &= a.n > 0;
    }
    TAP_OK(found, "retrieve: every question answered through Pinecone");
    TAP_OK(same, "retrieve: the same results and scores as the in-core "
           "index");
    TAP_IS(avc_retriever_stat(rpc, AVC_RETRIEVER_VECTORS), 0,
           "retrieve: no vectors held in memory");
    TAP_OK(avc_retriever_stat(rpg, AVC_RETRIEVER_VECTORS) > 0,
           "retrieve: (the in-core retriever holds them)");
    tap_diag("memory for the dealership: %llu bytes with Pinecone, %llu "
             "in core", avc_retriever_stat(rpc, AVC_RETRIEVER_MEMORY),
             avc_retriever_stat(rpg, AVC_RETRIEVER_MEMORY));

    ask(rpc, da, "Who must be screened against the OFAC list?", NULL, &a);
    TAP_OK(a.n > 0 && a.doc[0] == d_ofac, "retrieve: the OFAC document "
           "first");

    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    ask(rpc, da, "rental car benefit on a service contract", comp, &a);
    for (i = 0, found = 1; i < a.n; i++) {
        found &= strcmp(a.topic[i], "compliance") == 0;
    }
    TAP_OK(found, "retrieve: a topic filter keeps to its topic");
    log = requests(&mk);
    e = json_array_get(log, before);
    f = json_object_get(e, "filter");
    snprintf(ns, sizeof(ns), "dealership_%" PRId64, da);
    TAP_OK(e && strcmp(json_string_value(json_object_get(e, "path")),
                       "/query") == 0
           && strcmp(json_string_value(json_object_get(e, "namespace")),
                     ns) == 0
           && json_integer_value(json_object_get(json_object_get(
                  f, "dealership_id"), "$eq")) == da
           && strcmp(json_string_value(json_array_get(json_object_get(
                  json_object_get(f, "topic"), "$in"), 0)), "compliance")
              == 0
           && json_integer_value(json_object_get(e, "top_k")) == 50
           && strcmp(json_string_value(json_object_get(e, "api_key")), KEY)
              == 0,
           "retrieve: the query names the namespace, filters on "
           "dealership_id and topic, asks 50 candidates, with the key");
    json_decref(log);
}

static void
test_isolation(avc_retriever_t *rpc)
{
    ret_t a;
    json_t *log, *e;
    size_t i, before;
    int ok = 1;
    char ns[32];

    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    ask(rpc, db_, "Who must be screened against the OFAC list?", NULL, &a);
    for (i = 0; i < a.n; i++) {
        ok &= a.doc[i] == d_bvsc;
    }
    TAP_OK(a.err == AVC_OK && ok, "isolation: another dealership's "
           "documents never come back (%zu results, all its own)", a.n);
    ask(rpc, db_, "rental car benefit of a service contract", NULL, &a);
    TAP_OK(a.n > 0 && a.doc[0] == d_bvsc, "isolation: its own document "
           "does");
    log = requests(&mk);
    snprintf(ns, sizeof(ns), "dealership_%" PRId64, db_);
    for (i = before, ok = 1; i < json_array_size(log); i++) {
        e = json_array_get(log, i);
        ok &= strcmp(json_string_value(json_object_get(e, "namespace")), ns)
              == 0
              && json_integer_value(json_object_get(json_object_get(
                     json_object_get(e, "filter"), "dealership_id"), "$eq"))
                 == db_;
    }
    TAP_OK(ok && json_array_size(log) > before, "isolation: its queries "
           "stay in its namespace and filter");
    json_decref(log);
}

static void
test_orphans(avc_retriever_t *rpc)
{
    char ids[4096], got[4096];
    json_t *log, *e;
    size_t i, before, dels = 0;
    ret_t a;

    /* the rows go, the vectors stay: a failed deletion */
    snprintf(ids, sizeof(ids), "%s", chunk_ids(d_tw));
    sql1("DELETE FROM documents WHERE id = $1", d_tw);
    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    ask(rpc, da, "Does tire and wheel cover curb rash and pothole damage?",
        NULL, &a);
    TAP_OK(a.err == AVC_OK && !has_doc(&a, d_tw), "orphans: a vector "
           "whose chunk is gone never comes back");
    run_for(300);
    log = requests(&mk);
    got[0] = '\0';
    for (i = before; i < json_array_size(log); i++) {
        e = json_array_get(log, i);
        if (strcmp(json_string_value(json_object_get(e, "path")),
                   "/vectors/delete") == 0)
        {
            dels++;
            ids_text(json_object_get(e, "ids"), got, sizeof(got));
        }
    }
    TAP_OK(dels == 1 && strcmp(got, ids) == 0, "orphans: and is deleted "
           "from Pinecone (ids %s)", got);
    TAP_OK(avc_retriever_stat(rpc, AVC_RETRIEVER_ORPHANS) >= 1,
           "orphans: counted");
    json_decref(log);
    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    ask(rpc, da, "Does tire and wheel cover curb rash and pothole damage?",
        NULL, &a);
    run_for(200);
    log = requests(&mk);
    TAP_IS(count_requests(log, "/vectors/delete", before), 0,
           "orphans: once");
    json_decref(log);
}

static void
test_fallback(avc_retriever_t *rpc, avc_retriever_t *rpg)
{
    ret_t a, b;

    mock_fail(&mk, "{\"path\":\"/query\",\"status\":503}");
    ask(rpc, da, "Who must be screened against the OFAC list?", NULL, &a);
    TAP_OK(a.err == AVC_OK && a.n > 0 && a.doc[0] == d_ofac,
           "fallback: Pinecone failing, the full-text results answer");
    TAP_IS(avc_retriever_stat(rpc, AVC_RETRIEVER_FALLBACKS), 1,
           "fallback: counted");
    /* a full-text hit keeps its cosine, read from PostgreSQL */
    ask(rpg, da, "Who must be screened against the OFAC list?", NULL, &b);
    TAP_OK(a.n > 0 && b.n > 0 && a.chunk[0] == b.chunk[0]
           && fabs(a.score[0] - b.score[0]) < 1e-3,
           "fallback: scored as with the vectors (%.4f, %.4f)",
           a.n ? a.score[0] : 0, b.n ? b.score[0] : 0);
    ask(rpc, da, "best pizza toppings for a summer barbecue", NULL, &a);
    TAP_OK(a.err == AVC_OK && a.n == 0, "fallback: the floor still "
           "refuses what the material does not cover");
    mock_fail(&mk, "{}");
}

static void
test_failure(avc_ingest_t *q)
{
    json_t *log, *e;
    size_t i, before;
    char first[4096] = "", del[4096] = "", last[4096] = "", why[512];
    int64_t doc;
    const char *st;

    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    mock_fail(&mk, "{\"path\":\"/vectors/upsert\",\"status\":503}");
    doc = add_doc(da, "books", "gap.txt", gap_text);
    avc_ingest_kick(q);
    for (i = 0; i < 100; i++) {
        if (strncmp(sql1("SELECT coalesce(last_error, '') FROM ingest_jobs"
                         " WHERE document_id = $1", doc),
                    "the vector store failed", 23) == 0)
        {
            break;
        }
        run_for(50);
        avc_ingest_kick(q);
    }
    st = sql1("SELECT status FROM documents WHERE id = $1", doc);
    TAP_OK(strcmp(st, "ready") != 0, "failure: an upsert failing leaves "
           "the document not ready (%s)", st);
    snprintf(why, sizeof(why), "%s",
             sql1("SELECT state || ': ' || last_error FROM ingest_jobs"
                  " WHERE document_id = $1", doc));
    TAP_OK(strncmp(why, "queued: the vector store failed", 31) == 0
           && strstr(why, "503") != NULL,
           "failure: the job is queued again with the reason (%s)", why);
    snprintf(first, sizeof(first), "%s", chunk_ids(doc));

    mock_fail(&mk, "{}");
    sql1("UPDATE ingest_jobs SET run_after = now() WHERE document_id = $1",
         doc);
    st = wait_doc(q, doc, "ready failed", 20000);
    TAP_STR(st, "ready", "failure: the retry makes it ready");
    log = requests(&mk);
    for (i = before; i < json_array_size(log); i++) {
        e = json_array_get(log, i);
        if (strcmp(json_string_value(json_object_get(e, "path")),
                   "/vectors/delete") == 0)
        {
            ids_text(json_object_get(e, "ids"), del, sizeof(del));
        }
        if (strcmp(json_string_value(json_object_get(e, "path")),
                   "/vectors/upsert") == 0
            && json_integer_value(json_object_get(e, "status")) == 200)
        {
            ids_text(json_object_get(e, "ids"), last, sizeof(last));
        }
    }
    TAP_OK(first[0] && strcmp(del, first) == 0, "failure: the first "
           "attempt's vectors are deleted (%s)", del);
    TAP_OK(strcmp(last, chunk_ids(doc)) == 0 && strcmp(last, first) != 0,
           "failure: the new chunks' vectors are upserted (%s)", last);
    json_decref(log);
}

static void
test_gone(avc_ingest_t *q)
{
    json_t *log, *e;
    size_t i, before;
    char ids[4096] = "", del[4096] = "";
    int64_t doc;

    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    /* the upsert's answer comes late; the document goes meanwhile */
    mock_fail(&mk, "{\"path\":\"/vectors/upsert\",\"delay\":600,"
              "\"count\":1}");
    doc = add_doc(da, "books", "gone.txt", vsc_text);
    avc_ingest_kick(q);
    for (i = 0; i < 200 && !ids[0]; i++) {
        run_for(20);
        snprintf(ids, sizeof(ids), "%s", chunk_ids(doc));
    }
    sql1("DELETE FROM documents WHERE id = $1", doc);
    run_for(1200);
    log = requests(&mk);
    for (i = before; i < json_array_size(log); i++) {
        e = json_array_get(log, i);
        if (strcmp(json_string_value(json_object_get(e, "path")),
                   "/vectors/delete") == 0)
        {
            ids_text(json_object_get(e, "ids"), del, sizeof(del));
        }
    }
    TAP_OK(ids[0] && strcmp(del, ids) == 0, "gone: a document deleted "
           "while its vectors were sent has them deleted (%s)", del);
    TAP_IS(avc_ingest_busy(q), 0, "gone: the job is over");
    json_decref(log);
    mock_fail(&mk, "{}");
}

typedef struct {
    int done;
    int err;
} fg_t;

static void
on_forget(int err, void *data)
{
    fg_t *f = data;

    f->done++;
    f->err = err;
}

static void
test_forget(avc_retriever_t *rpc, avc_retriever_t *rpg)
{
    int64_t ids[3] = { 900001, 900002, 900003 };
    avc_retrieve_forget_t *h;
    json_t *log, *e;
    size_t before;
    fg_t f = { 0, 0 }, g = { 0, 0 };
    char got[256] = "", ns[32];

    TAP_IS(avc_retriever_forget(rpg, da, ids, 3, on_forget, &f, &h),
           AVC_ESTATE, "forget: nothing to delete with the in-core index");
    TAP_IS(avc_retriever_forget(rpc, da, ids, 0, on_forget, &f, &h),
           AVC_ESTATE, "forget: nor without ids");
    TAP_IS(avc_retriever_forget(rpc, 0, NULL, 0, on_forget, &f, &h),
           AVC_EINVAL, "forget: a dealership is needed");
    log = requests(&mk);
    before = json_array_size(log);
    json_decref(log);
    TAP_IS(avc_retriever_forget(rpc, da, ids, 3, on_forget, &f, &h), AVC_OK,
           "forget: ids");
    TAP_IS(f.done, 0, "forget: never calls back from within");
    run_until(&f.done, 5000);
    TAP_OK(f.done == 1 && f.err == AVC_OK, "forget: called back once");
    TAP_IS(avc_retriever_forget(rpc, 999999, NULL, 0, on_forget, &g, &h),
           AVC_OK, "forget: a namespace");
    avc_retriever_forget_detach(h);
    run_for(300);
    TAP_IS(g.done, 0, "forget: detached, no callback");
    log = requests(&mk);
    e = json_array_get(log, before);
    ids_text(json_object_get(e, "ids"), got, sizeof(got));
    TAP_STR(got, "900001,900002,900003", "forget: the ids reached "
            "Pinecone");
    e = json_array_get(log, before + 1);
    snprintf(ns, sizeof(ns), "dealership_%d", 999999);
    TAP_OK(e && json_is_true(json_object_get(e, "delete_all"))
           && strcmp(json_string_value(json_object_get(e, "namespace")),
                     ns) == 0, "forget: deleteAll of the namespace");
    json_decref(log);
}

static void
test_cancel(void)
{
    avc_retriever_t *r;
    avc_retrieve_op_t *op = NULL;
    ret_t a;

    r = avc_retriever_new(loop, db, emb, cfg_pc);
    ask(r, da, "OFAC screening of cash buyers", NULL, &a);
    mock_fail(&mk, "{\"path\":\"/query\",\"delay\":400,\"count\":1}");
    memset(&a, 0, sizeof(a));
    TAP_IS(avc_retrieve_start(r, da, "OFAC screening of cash buyers", 5,
                              NULL, -1, on_ret, &a, &op), AVC_OK,
           "cancel: a retrieval");
    run_for(150);
    avc_retrieve_cancel(op);
    run_for(600);
    TAP_IS(a.calls, 0, "cancel: while Pinecone answers: no callback");
    memset(&a, 0, sizeof(a));
    mock_fail(&mk, "{\"path\":\"/query\",\"delay\":400,\"count\":1}");
    avc_retrieve(r, da, "OFAC screening of cash buyers", 5, NULL, -1, on_ret,
                 &a);
    run_for(150);
    avc_retriever_free(r);
    TAP_OK(a.calls == 1 && a.err == AVC_ECANCELED, "cancel: freeing the "
           "retriever ends it with AVC_ECANCELED");
    run_for(500);
    mock_fail(&mk, "{}");
}

/* setup */

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    if (getenv("AVC_TEST_VERBOSE")) {
        printf("# [%d] %s\n", (int) level, msg);
    }
}

int
main(int argc, char **argv)
{
    static const char *const args[] = { "--key", KEY, NULL };
    avc_retriever_t *rpc, *rpg;
    avc_ingest_t *q;
    char host[64];
    int err;

    only = argv + 1;
    (void) argc;
    if (getenv("AVC_TOP")) {
        top = getenv("AVC_TOP");
    }
    avc_log_set(log_cb, NULL, AVC_LOG_DEBUG);
    if (tpg_start(&pg) != 0) {
        printf("# skip: no PostgreSQL\n");
        return tap_done();
    }
    if (tpg_migrate(pg.conninfo, top, pg.cmdlog) != 0) {
        tpg_destroy(&pg);
        printf("# skip: no schema\n");
        return tap_done();
    }
    if (mock_start_script(&mk, top, "pinecone.pl", args) != 0) {
        tpg_destroy(&pg);
        TAP_OK(0, "the Pinecone mock starts");
        return tap_done();
    }
    loop = avc_loop_new(2);
    db = avc_db_new(loop, pg.conninfo, 4, 20000);
    http = avc_http_new(loop);
    cfg_pg = avc_config_new();
    cfg_pc = avc_config_new();
    snprintf(host, sizeof(host), "http://127.0.0.1:%d", mk.port);
    avc_config_set(cfg_pc, "vector_store.provider", "pinecone");
    avc_config_set(cfg_pc, "vector_store.host", host);
    avc_config_set(cfg_pc, "vector_store.index", "test-index");
    avc_config_set(cfg_pc, "vector_store.key", KEY);
    avc_config_set(cfg_pc, "vector_store.attempts", "1");
    emb = avc_embedder_new(loop, NULL, cfg_pg, &err);
    rpc = avc_retriever_new(loop, db, emb, cfg_pc);
    rpg = avc_retriever_new(loop, db, emb, cfg_pg);
    q = avc_ingest_new(loop, db, http, cfg_pc, &err);
    TAP_OK(rpc && rpg && q, "retrievers and a queue with Pinecone");
    avc_config_set(cfg_pc, "vector_store.key", "");
    TAP_OK(avc_retriever_new(loop, db, emb, cfg_pc) == NULL,
           "a Pinecone store without a key is refused");
    avc_config_set(cfg_pc, "vector_store.key", KEY);
    avc_config_set(cfg_pg, "vector_store.provider", "elastic");
    TAP_OK(avc_retriever_new(loop, db, emb, cfg_pg) == NULL,
           "an unknown vector store is refused");
    avc_config_set(cfg_pg, "vector_store.provider", "postgres");

    da = new_dealership("Alpha Motors", NULL);
    db_ = new_dealership("Bravo Motors", NULL);
    if (rpc && rpg && q && da > 0 && db_ > 0) {
        test_ingest(q);
        if (wanted("batches")) {
            test_batches();
        }
        test_retrieve(rpc, rpg);
        test_isolation(rpc);
        if (wanted("orphans")) {
            test_orphans(rpc);
        }
        if (wanted("fallback")) {
            test_fallback(rpc, rpg);
        }
        if (wanted("failure")) {
            test_failure(q);
        }
        if (wanted("gone")) {
            test_gone(q);
        }
        if (wanted("forget")) {
            test_forget(rpc, rpg);
        }
        if (wanted("cancel")) {
            test_cancel();
        }
    }

    avc_ingest_free(q);
    avc_retriever_free(rpc);
    avc_retriever_free(rpg);
    run_for(100);
    avc_embedder_free(emb);
    avc_db_free(db);
    avc_http_free(http);
    avc_config_free(cfg_pg);
    avc_config_free(cfg_pc);
    avc_loop_free(loop);
    mock_stop(&mk);
    tpg_destroy(&pg);
    return tap_done();
}
