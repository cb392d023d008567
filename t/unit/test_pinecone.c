/*
 * Pinecone: the vector store client against tools/mock/pinecone.pl.
 *
 *   build/t/test_pinecone [SECTION...]   e.g. "build/t/test_pinecone query"
 *
 * Sections: config, args, mock, store (upsert, query, topic filter,
 * namespace isolation, delete by ids, delete of a namespace), split,
 * errors, retry, deadline, abandon.
 *
 * The mocks are started by this test (perl, from $AVC_TOP, default ".":
 * make runs tests from the repository root) with a pipe on their stdin,
 * so they exit with the test however it ends.  The mock's GET /__stats
 * tells how many requests and vectors reached it.
 */
#include "tap.h"
#include "mock.h"

#include <avatarcore/pinecone.h>
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <jansson.h>

#define KEY     "pc-SECRET-key-4f9a81"
#define DIM     8
#define NVEC    2500
#define BIGDIM  1536
#define NBIG    250

static const char *top = ".";
static avc_loop_t *loop;
static avc_http_t *http;
static char **only;

static const char *const topic_names[] = { "finance", "insurance",
                                           "warranty" };

/* logs, kept to check that the key never reaches them */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static avc__buf_t logs;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    pthread_mutex_lock(&log_mu);
    avc__buf_appends(&logs, msg);
    avc__buf_appends(&logs, "\n");
    pthread_mutex_unlock(&log_mu);
    if (getenv("AVC_TEST_VERBOSE")) {
        printf("# [%d] %s\n", (int) level, msg);
    }
}

static int
logs_contain(const char *s)
{
    int r;

    pthread_mutex_lock(&log_mu);
    r = logs.data && strstr(logs.data, s) != NULL;
    pthread_mutex_unlock(&log_mu);
    return r;
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

/* mocks */

static int
mock_start(mock_t *mk, const char *const *args)
{
    const char *all[34];
    int n = 0, i;

    all[n++] = "--key";
    all[n++] = KEY;
    for (i = 0; args && args[i] && n < 33; i++) {
        all[n++] = args[i];
    }
    all[n] = NULL;
    return mock_start_script(mk, top, "pinecone.pl", all);
}

/* A raw request to the mock, blocking; the status, or -1. */
static int
mock_call(const mock_t *mk, const char *method, const char *path,
    const char *const *headers, const char *body, size_t len, json_t **out)
{
    char url[128], *resp = NULL;
    size_t rlen = 0;
    int status = 0, rc;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mk->port, path);
    rc = avc_http_fetch_sync(method, url, headers, body, len, 20000, 0,
                             &status, &resp, &rlen);
    if (rc != AVC_OK) {
        printf("# %s %s: %s\n", method, path, avc_strerror(rc));
        return -1;
    }
    if (out) {
        *out = json_loadb(resp, rlen, 0, NULL);
    }
    free(resp);
    return status;
}

static json_t *
mock_stats(const mock_t *mk)
{
    json_t *j = NULL;

    if (mock_call(mk, "GET", "/__stats", NULL, NULL, 0, &j) != 200) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* stats.a.b as an integer, -1 when missing */
static long long
stat_int(const mock_t *mk, const char *a, const char *b)
{
    json_t *j = mock_stats(mk), *v;
    long long n = -1;

    v = json_object_get(j, a);
    if (b) {
        v = json_object_get(v, b);
    }
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    }
    json_decref(j);
    return n;
}

/* clients */

static avc_pinecone_t *
pc_new(const mock_t *mk, const char *key, const char *const *kv)
{
    avc_config_t *cfg = avc_config_new();
    avc_pinecone_t *pc;
    char host[64];
    int err = 0;

    snprintf(host, sizeof(host), "http://127.0.0.1:%d/", mk->port);
    avc_config_set(cfg, "vector_store.provider", "pinecone");
    avc_config_set(cfg, "vector_store.host", host);
    avc_config_set(cfg, "vector_store.index", "dealers-test");
    avc_config_set(cfg, "vector_store.key", key);
    avc_config_set(cfg, "vector_store.backoff", "20");
    for (; kv && kv[0]; kv += 2) {
        avc_config_set(cfg, kv[0], kv[1]);
    }
    pc = avc_pinecone_new(loop, http, cfg, &err);
    avc_config_free(cfg);
    if (pc == NULL) {
        printf("# avc_pinecone_new: %s\n", avc_strerror(err));
    }
    return pc;
}

/* test data: deterministic vectors and metadata */

static void
make_vector(float *v, size_t dim, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    size_t i;

    for (i = 0; i < dim; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = (float) ((double) (x % 20001) / 10000.0 - 1.0);
    }
}

typedef struct {
    size_t n;
    size_t dim;
    char **ids;
    float *vecs;
    int64_t *doc_ids;
    const char **topics;
    char **files;
    int *positions;
} batch_t;

static int
batch_make(batch_t *b, const char *prefix, size_t first, size_t n,
    size_t dim)
{
    char s[64];
    size_t i, k;

    memset(b, 0, sizeof(*b));
    b->n = n;
    b->dim = dim;
    b->ids = calloc(n, sizeof(char *));
    b->files = calloc(n, sizeof(char *));
    b->vecs = malloc(n * dim * sizeof(float));
    b->doc_ids = malloc(n * sizeof(int64_t));
    b->topics = malloc(n * sizeof(char *));
    b->positions = malloc(n * sizeof(int));
    if (!b->ids || !b->files || !b->vecs || !b->doc_ids || !b->topics
        || !b->positions)
    {
        return -1;
    }
    for (i = 0; i < n; i++) {
        k = first + i;
        snprintf(s, sizeof(s), "%s-%zu", prefix, k);
        b->ids[i] = strdup(s);
        snprintf(s, sizeof(s), "doc-%zu \"q\".pdf", k / 10);
        b->files[i] = strdup(s);
        if (!b->ids[i] || !b->files[i]) {
            return -1;
        }
        make_vector(b->vecs + i * dim, dim, (unsigned) k);
        b->doc_ids[i] = 100 + (int64_t) (k / 10);
        b->topics[i] = topic_names[k % 3];
        b->positions[i] = (int) (k % 10);
    }
    return 0;
}

static void
batch_free(batch_t *b)
{
    size_t i;

    for (i = 0; i < b->n && b->ids; i++) {
        free(b->ids[i]);
        free(b->files ? b->files[i] : NULL);
    }
    free(b->ids);
    free(b->files);
    free(b->vecs);
    free(b->doc_ids);
    free(b->topics);
    free(b->positions);
}

/* operation results */

typedef struct {
    int done;
    int calls;
    int err;
    size_t count;
    /* query: copies of the borrowed matches */
    size_t n;
    char *ids[16];
    double scores[16];
    int64_t dealers[16];
    int64_t docs[16];
    char *topics[16];
    char *files[16];
    int positions[16];
    int got_null;               /* matches NULL in the callback */
    avc_pinecone_t *free_pc;    /* freed from within the callback */
} res_t;

static void
res_clear(res_t *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->ids[i]);
        free(r->topics[i]);
        free(r->files[i]);
    }
    memset(r, 0, sizeof(*r));
}

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void
on_done(int err, size_t count, void *data)
{
    res_t *r = data;

    r->done = 1;
    r->calls++;
    r->err = err;
    r->count = count;
    if (r->free_pc) {
        avc_pinecone_free(r->free_pc);
        r->free_pc = NULL;
    }
}

static void
on_query(int err, const avc_pinecone_matches_t *m, void *data)
{
    res_t *r = data;
    size_t i;

    r->done = 1;
    r->calls++;
    r->err = err;
    r->got_null = m == NULL;
    r->count = avc_pinecone_matches_count(m);
    for (i = 0; i < r->count && i < 16; i++) {
        r->ids[i] = dup_or_null(avc_pinecone_match_id(m, i));
        r->scores[i] = avc_pinecone_match_score(m, i);
        r->dealers[i] = avc_pinecone_match_dealership_id(m, i);
        r->docs[i] = avc_pinecone_match_document_id(m, i);
        r->topics[i] = dup_or_null(avc_pinecone_match_topic(m, i));
        r->files[i] = dup_or_null(avc_pinecone_match_filename(m, i));
        r->positions[i] = avc_pinecone_match_position(m, i);
    }
    r->n = i;
    if (r->free_pc) {
        avc_pinecone_free(r->free_pc);
        r->free_pc = NULL;
    }
}

/* start, check no callback from within, wait; the error, or 1000 + the
 * start's own return, 2000 for a callback from within, 3000 no end */
static int
upsert_sync(avc_pinecone_t *pc, int64_t dealer, const batch_t *b, res_t *r)
{
    int rc;

    res_clear(r);
    rc = avc_pinecone_upsert(pc, dealer, (const char *const *) b->ids,
                             b->vecs, b->dim, b->doc_ids, b->topics,
                             (const char *const *) b->files, b->positions,
                             b->n, on_done, r);
    if (rc != AVC_OK) {
        return 1000 + rc;
    }
    if (r->done) {
        return 2000;
    }
    run_until(&r->done, 60000);
    return r->done ? r->err : 3000;
}

static int
query_sync(avc_pinecone_t *pc, int64_t dealer, const float *v, size_t dim,
    unsigned k, const char *const *topics, size_t ntopics, res_t *r)
{
    int rc;

    res_clear(r);
    rc = avc_pinecone_query(pc, dealer, v, dim, k, topics, ntopics,
                            on_query, r);
    if (rc != AVC_OK) {
        return 1000 + rc;
    }
    if (r->done) {
        return 2000;
    }
    run_until(&r->done, 30000);
    return r->done ? r->err : 3000;
}

static int
delete_sync(avc_pinecone_t *pc, int64_t dealer, const char *const *ids,
    size_t n, res_t *r)
{
    int rc;

    res_clear(r);
    rc = ids ? avc_pinecone_delete_ids(pc, dealer, ids, n, on_done, r)
             : avc_pinecone_delete_namespace(pc, dealer, on_done, r);
    if (rc != AVC_OK) {
        return 1000 + rc;
    }
    if (r->done) {
        return 2000;
    }
    run_until(&r->done, 30000);
    return r->done ? r->err : 3000;
}

static int
section(const char *name)
{
    char **p;

    if (only == NULL || *only == NULL) {
        return 1;
    }
    for (p = only; *p; p++) {
        if (strcmp(*p, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* configuration */

static void
test_config(void)
{
    static const struct {
        const char *key, *value, *name;
    } bad[] = {
        { "vector_store.provider", "pgvector", "another provider" },
        { "vector_store.host", NULL, "no host" },
        { "vector_store.host", "ftp://x.pinecone.io", "a scheme not http" },
        { "vector_store.host", "https://", "no host name" },
        { "vector_store.host", "https://a b.io", "a space in the host" },
        { "vector_store.host", "https://u:p@x.io", "credentials in the host" },
        { "vector_store.key", NULL, "no key" },
        { "vector_store.key", "abc\r\nX-Evil: 1", "a line break in the key" },
        { "vector_store.api_version", "2025 01", "a bad API version" },
        { "vector_store.attempts", "0", "zero attempts" },
        { "vector_store.timeout", "soon", "a timeout that is no number" },
    };
    avc_config_t *cfg;
    avc_pinecone_t *pc;
    size_t i;
    int err;

    for (i = 0; i < avc__countof(bad); i++) {
        cfg = avc_config_new();
        avc_config_set(cfg, "vector_store.host",
                       "https://idx-abc.svc.aped-4627.pinecone.io");
        avc_config_set(cfg, "vector_store.key", KEY);
        avc_config_set(cfg, bad[i].key, bad[i].value);
        err = 0;
        pc = avc_pinecone_new(loop, http, cfg, &err);
        TAP_OK(pc == NULL && err == AVC_EINVAL, "refused: %s", bad[i].name);
        avc_pinecone_free(pc);
        avc_config_free(cfg);
    }

    cfg = avc_config_new();
    avc_config_set(cfg, "vector_store.host",
                   "idx-abc.svc.aped-4627.pinecone.io");
    avc_config_set(cfg, "vector_store.key", KEY);
    pc = avc_pinecone_new(loop, http, cfg, &err);
    TAP_OK(pc != NULL, "a bare host name (as describe_index gives it)");
    TAP_STR(avc_pinecone_last_error(pc), "", "no error yet");
    TAP_OK(logs_contain("https://idx-abc.svc.aped-4627.pinecone.io"),
           "https:// is added to it");
    avc_pinecone_free(pc);
    avc_pinecone_free(NULL);
    TAP_OK(1, "avc_pinecone_free(NULL) is a no-op");
    avc_config_free(cfg);
}

/* arguments, refused before any request */

static void
test_args(const mock_t *mk)
{
    avc_pinecone_t *pc = pc_new(mk, KEY, NULL);
    const char *ids[] = { "a", "b" }, *topics[] = { "t", "t" };
    const char *bad_utf8[] = { "a", "b\xff" }, *empty[] = { "a", "" };
    char longid[AVC_PINECONE_MAX_ID + 2];
    const char *longids[] = { "a", longid };
    float v[2 * DIM], nan_v[2 * DIM];
    int64_t docs[] = { 1, 2 };
    int pos[] = { 0, 1 };
    res_t r;
    long long before;

    memset(&r, 0, sizeof(r));
    make_vector(v, 2 * DIM, 1);
    memcpy(nan_v, v, sizeof(v));
    nan_v[5] = NAN;
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    before = stat_int(mk, "data_requests", NULL);

#define UPS(d, i, vv, dim, t, n) \
    avc_pinecone_upsert(pc, d, i, vv, dim, docs, t, topics, pos, n, \
                        on_done, &r)

    TAP_IS(UPS(0, ids, v, DIM, topics, 2), AVC_EINVAL, "dealership 0");
    TAP_IS(UPS(1, ids, v, DIM, topics, 0), AVC_EINVAL, "no vectors");
    TAP_IS(UPS(1, ids, v, 0, topics, 2), AVC_EINVAL, "dimension 0");
    TAP_IS(UPS(1, ids, v, AVC_PINECONE_MAX_DIM + 1, topics, 1), AVC_EINVAL,
           "dimension over 20,000");
    TAP_IS(UPS(1, ids, nan_v, DIM, topics, 2), AVC_EINVAL, "a NaN value");
    TAP_IS(UPS(1, bad_utf8, v, DIM, topics, 2), AVC_EINVAL,
           "an id that is not UTF-8");
    TAP_IS(UPS(1, empty, v, DIM, topics, 2), AVC_EINVAL, "an empty id");
    TAP_IS(UPS(1, longids, v, DIM, topics, 2), AVC_EINVAL,
           "an id over 512 bytes");
    TAP_IS(UPS(1, ids, v, DIM, bad_utf8, 2), AVC_EINVAL,
           "a topic that is not UTF-8");
    TAP_IS(UPS(1, ids, v, DIM, NULL, 2), AVC_EINVAL, "no topics");
#undef UPS
    TAP_IS(avc_pinecone_query(pc, 1, v, DIM, 0, NULL, 0, on_query, &r),
           AVC_EINVAL, "top_k 0");
    TAP_IS(avc_pinecone_query(pc, 1, v, DIM, 1001, NULL, 0, on_query, &r),
           AVC_EINVAL, "top_k over 1,000");
    TAP_IS(avc_pinecone_query(pc, 1, v, DIM, 5, NULL, 2, on_query, &r),
           AVC_EINVAL, "topics counted but missing");
    TAP_IS(avc_pinecone_query(pc, 1, nan_v, DIM, 5, NULL, 0, on_query, &r),
           AVC_EINVAL, "a NaN in the query vector");
    TAP_IS(avc_pinecone_query(pc, 1, v, DIM, 5, NULL, 0, NULL, &r),
           AVC_EINVAL, "no callback");
    TAP_IS(avc_pinecone_delete_ids(pc, 1, ids, 0, on_done, &r), AVC_EINVAL,
           "delete no ids");
    TAP_IS(avc_pinecone_delete_ids(pc, 1, empty, 2, on_done, &r),
           AVC_EINVAL, "delete an empty id");
    TAP_IS(avc_pinecone_delete_namespace(pc, -3, on_done, &r), AVC_EINVAL,
           "delete the namespace of dealership -3");
    run_for(100);
    TAP_IS(r.calls, 0, "a refused call never calls back");
    TAP_IS(stat_int(mk, "data_requests", NULL), before,
           "and sends nothing");
    avc_pinecone_free(pc);
}

/* the mock enforces Pinecone's limits, so the client's splitting is
 * really tested */

static void
test_mock_limits(const mock_t *mk)
{
    const char *hdrs[] = { "Api-Key: " KEY,
                           "X-Pinecone-API-Version: 2025-01",
                           "Content-Type: application/json", NULL };
    const char *nover[] = { "Api-Key: " KEY,
                            "Content-Type: application/json", NULL };
    avc__buf_t b;
    json_t *j = NULL;
    const char *msg;
    size_t i;
    int st;

    avc__buf_init(&b);
    avc__buf_appends(&b, "{\"vectors\":[");
    for (i = 0; i < 1001; i++) {
        avc__buf_printf(&b, "%s{\"id\":\"x%zu\",\"values\":[1,2]}",
                        i ? "," : "", i);
    }
    avc__buf_appends(&b, "],\"namespace\":\"limits\"}");
    st = mock_call(mk, "POST", "/vectors/upsert", hdrs, b.data, b.len, &j);
    TAP_IS(st, 400, "mock: 1,001 vectors in one upsert are refused");
    TAP_IS(json_integer_value(json_object_get(j, "code")), 3,
           "with gRPC code 3 (INVALID_ARGUMENT)");
    json_decref(j);

    avc__buf_reset(&b);
    avc__buf_appends(&b, "{\"vectors\":[{\"id\":\"big\",\"values\":[1],"
                     "\"metadata\":{\"pad\":\"");
    for (i = 0; i < 2000000 / 64; i++) {
        avc__buf_appends(&b, "0123456789abcdef0123456789abcdef"
                             "0123456789abcdef0123456789abcdef");
    }
    avc__buf_appends(&b, "\"}}]}");
    j = NULL;
    st = mock_call(mk, "POST", "/vectors/upsert", hdrs, b.data, b.len, &j);
    msg = json_string_value(json_object_get(j, "message"));
    TAP_OK(st == 400 && msg && strstr(msg, "exceeds the maximum"),
           "mock: a body over 2,000,000 bytes is refused (%s)",
           msg ? msg : "?");
    json_decref(j);

    j = NULL;
    st = mock_call(mk, "POST", "/query", nover, "{}", 2, &j);
    TAP_IS(st, 400, "mock: a request without X-Pinecone-API-Version");
    json_decref(j);
    avc__buf_free(&b);
}

/* upsert, query, filters, isolation, deletes */

static void
test_store(const mock_t *mk)
{
    const char *fin_war[] = { "finance", "warranty" };
    const char *war[] = { "warranty" };
    const char *gone[] = { "chunk-1234", "chunk-1235" };
    const char *planted[] = { "planted" };
    const char *hdrs[] = { "Api-Key: " KEY,
                           "X-Pinecone-API-Version: 2025-01",
                           "Content-Type: application/json", NULL };
    const char *plant;
    char **many;
    avc_pinecone_t *pc = pc_new(mk, KEY, NULL);
    batch_t b, b2;
    json_t *st, *a;
    res_t r;
    float q[DIM];
    size_t i;
    int ok;

    memset(&r, 0, sizeof(r));
    if (pc == NULL || batch_make(&b, "chunk", 0, NVEC, DIM) != 0
        || batch_make(&b2, "d2", 0, 10, DIM) != 0)
    {
        TAP_OK(0, "setup");
        return;
    }
    mock_call(mk, "POST", "/__reset", NULL, "", 0, NULL);

    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_OK, "upsert 2,500 vectors");
    TAP_IS(r.count, NVEC, "2,500 reported upserted");
    TAP_IS(r.calls, 1, "one callback");
    st = mock_stats(mk);
    TAP_IS(json_integer_value(json_object_get(json_object_get(st,
               "requests"), "/vectors/upsert")), 3,
           "in 3 requests (at most 1,000 vectors each)");
    a = json_object_get(st, "upsert_batches");
    TAP_OK(json_array_size(a) == 3
           && json_integer_value(json_array_get(a, 0)) == 1000
           && json_integer_value(json_array_get(a, 1)) == 1000
           && json_integer_value(json_array_get(a, 2)) == 500,
           "of 1,000, 1,000 and 500");
    TAP_IS(json_integer_value(json_object_get(json_object_get(st,
               "namespaces"), "dealership_1")), NVEC,
           "all in namespace dealership_1");
    TAP_IS(json_integer_value(json_object_get(json_object_get(st,
               "api_versions"), "2025-01")), 3,
           "with X-Pinecone-API-Version 2025-01");
    json_decref(st);

    /* the nearest */
    memcpy(q, b.vecs + 1234 * DIM, sizeof(q));
    TAP_IS(query_sync(pc, 1, q, DIM, 5, NULL, 0, &r), AVC_OK, "query");
    TAP_IS(r.count, 5, "top 5");
    TAP_STR(r.ids[0], "chunk-1234", "the nearest is the vector itself");
    TAP_OK(r.scores[0] > 0.9999 && r.scores[0] < 1.0001,
           "with cosine score 1 (%f)", r.scores[0]);
    for (ok = 1, i = 1; i < r.n; i++) {
        ok &= r.scores[i] <= r.scores[i - 1];
    }
    TAP_OK(ok, "best first");
    TAP_IS(r.dealers[0], 1, "metadata: dealership_id");
    TAP_IS(r.docs[0], 100 + 123, "metadata: document_id");
    TAP_STR(r.topics[0], topic_names[1234 % 3], "metadata: topic");
    TAP_STR(r.files[0], "doc-123 \"q\".pdf",
            "metadata: filename (escaped and back)");
    TAP_IS(r.positions[0], 4, "metadata: position");

    /* topic filter */
    TAP_IS(query_sync(pc, 1, q, DIM, 10, war, 1, &r), AVC_OK,
           "query with topic warranty");
    for (ok = r.n == 10, i = 0; i < r.n; i++) {
        ok &= r.topics[i] && strcmp(r.topics[i], "warranty") == 0;
    }
    TAP_OK(ok, "10 matches, all warranty");
    TAP_OK(r.ids[0] && strcmp(r.ids[0], "chunk-1234") != 0,
           "the nearest (insurance) is filtered out");
    TAP_IS(query_sync(pc, 1, q, DIM, 10, fin_war, 2, &r), AVC_OK,
           "query with topics finance and warranty");
    for (ok = r.n == 10, i = 0; i < r.n; i++) {
        ok &= r.topics[i] && strcmp(r.topics[i], "insurance") != 0;
    }
    TAP_OK(ok, "none of another topic");

    /* namespace isolation: the same vectors for dealership 2 */
    TAP_IS(upsert_sync(pc, 2, &b2, &r), AVC_OK, "upsert 10 for dealer 2");
    memcpy(q, b.vecs + 5 * DIM, sizeof(q));
    TAP_IS(query_sync(pc, 2, q, DIM, 16, NULL, 0, &r), AVC_OK,
           "query dealership 2");
    for (ok = r.n == 10, i = 0; i < r.n; i++) {
        ok &= strncmp(r.ids[i], "d2-", 3) == 0 && r.dealers[i] == 2;
    }
    TAP_OK(ok, "only dealership 2's 10 vectors");
    TAP_STR(r.ids[0], "d2-5", "the nearest of them");
    TAP_IS(query_sync(pc, 1, q, DIM, 16, NULL, 0, &r), AVC_OK,
           "query dealership 1 with the same vector");
    for (ok = r.n == 16, i = 0; i < r.n; i++) {
        ok &= strncmp(r.ids[i], "chunk-", 6) == 0 && r.dealers[i] == 1;
    }
    TAP_OK(ok, "only dealership 1's");
    TAP_STR(r.ids[0], "chunk-5", "its own nearest");

    /* a vector of another dealership planted in dealership 1's
     * namespace is kept out by the dealership_id filter */
    plant = "{\"vectors\":[{\"id\":\"planted\",\"values\":[1,1,1,1,1,1,1,1],"
            "\"metadata\":{\"dealership_id\":99,\"topic\":\"finance\"}}],"
            "\"namespace\":\"dealership_1\"}";
    TAP_IS(mock_call(mk, "POST", "/vectors/upsert", hdrs, plant,
                     strlen(plant), NULL), 200, "plant a foreign vector");
    for (i = 0; i < DIM; i++) {
        q[i] = 1.0f;
    }
    TAP_IS(query_sync(pc, 1, q, DIM, 3, NULL, 0, &r), AVC_OK,
           "query right at it");
    TAP_OK(r.n == 3 && strcmp(r.ids[0], "planted") != 0 && r.dealers[0] == 1,
           "it is filtered out (filter dealership_id $eq 1)");
    delete_sync(pc, 1, planted, 1, &r);

    /* delete by ids */
    TAP_IS(delete_sync(pc, 1, gone, 2, &r), AVC_OK, "delete 2 ids");
    TAP_IS(r.count, 2, "2 reported");
    TAP_IS(stat_int(mk, "namespaces", "dealership_1"), NVEC - 2,
           "2 fewer vectors");
    memcpy(q, b.vecs + 1234 * DIM, sizeof(q));
    TAP_IS(query_sync(pc, 1, q, DIM, 3, NULL, 0, &r), AVC_OK, "query again");
    TAP_OK(r.n == 3 && strcmp(r.ids[0], "chunk-1234") != 0
           && strcmp(r.ids[0], "chunk-1235") != 0,
           "the deleted vector is gone");
    many = b.ids;
    TAP_IS(delete_sync(pc, 1, (const char *const *) many, 1500, &r), AVC_OK,
           "delete 1,500 ids (two of them gone already)");
    TAP_IS(r.count, 1500, "1,500 reported");
    st = mock_stats(mk);
    a = json_object_get(st, "delete_batches");
    i = json_array_size(a);
    TAP_OK(i >= 2 && json_integer_value(json_array_get(a, i - 2)) == 1000
           && json_integer_value(json_array_get(a, i - 1)) == 500,
           "in requests of 1,000 and 500 ids");
    TAP_IS(json_integer_value(json_object_get(json_object_get(st,
               "namespaces"), "dealership_1")), NVEC - 1500, "1,000 left");
    TAP_IS(json_integer_value(json_object_get(json_object_get(st,
               "namespaces"), "dealership_2")), 10,
           "dealership 2 untouched");
    json_decref(st);

    /* delete a namespace */
    TAP_IS(delete_sync(pc, 2, NULL, 0, &r), AVC_OK,
           "delete the namespace of dealership 2");
    TAP_IS(stat_int(mk, "namespaces", "dealership_2"), -1, "it is gone");
    TAP_IS(stat_int(mk, "namespaces", "dealership_1"), NVEC - 1500,
           "dealership 1 untouched");
    TAP_IS(query_sync(pc, 2, q, DIM, 5, NULL, 0, &r), AVC_OK,
           "query the deleted namespace");
    TAP_IS(r.count, 0, "no matches");
    TAP_OK(!r.got_null, "an empty list, not NULL");
    TAP_IS(delete_sync(pc, 2, NULL, 0, &r), AVC_OK,
           "deleting it again is no error (Pinecone's 404 code 5)");
    TAP_IS(delete_sync(pc, 2, gone, 2, &r), AVC_OK,
           "nor is deleting ids from it");
    TAP_STR(avc_pinecone_last_error(pc), "", "no error recorded");

    avc_pinecone_free(pc);
    batch_free(&b);
    batch_free(&b2);
}

/* splitting by size: 250 vectors of 1,536 floats are ~4.7 MB */

static void
test_split(void)
{
    const char *args[] = { "--dimension", "1536", NULL };
    avc_pinecone_t *pc;
    mock_t mk;
    batch_t b;
    json_t *st, *a;
    long long sum = 0, reqs;
    res_t r;
    size_t i;

    memset(&r, 0, sizeof(r));
    if (mock_start(&mk, args) != 0 || (pc = pc_new(&mk, KEY, NULL)) == NULL
        || batch_make(&b, "big", 0, NBIG, BIGDIM) != 0)
    {
        TAP_OK(0, "setup");
        mock_stop(&mk);
        return;
    }
    TAP_IS(upsert_sync(pc, 3, &b, &r), AVC_OK,
           "upsert 250 vectors of 1,536 floats");
    TAP_IS(r.count, NBIG, "250 reported upserted");
    st = mock_stats(&mk);
    reqs = json_integer_value(json_object_get(json_object_get(st,
               "requests"), "/vectors/upsert"));
    a = json_object_get(st, "upsert_batches");
    for (i = 0; i < json_array_size(a); i++) {
        sum += json_integer_value(json_array_get(a, i));
    }
    TAP_OK(reqs >= 3 && (size_t) reqs == json_array_size(a),
           "split into %lld requests, all accepted", reqs);
    TAP_IS(sum, NBIG, "holding the 250 vectors once each");
    TAP_OK(json_integer_value(json_object_get(json_object_get(st,
               "max_body"), "/vectors/upsert")) <= 2000000,
           "none over 2,000,000 bytes");
    json_decref(st);

    TAP_IS(query_sync(pc, 3, b.vecs + 77 * BIGDIM, BIGDIM, 1, NULL, 0, &r),
           AVC_OK, "query");
    TAP_OK(r.n == 1 && strcmp(r.ids[0], "big-77") == 0
           && r.scores[0] > 0.9999, "values arrived exactly");

    /* freed while a batch is being built on the pool */
    res_clear(&r);
    TAP_IS(avc_pinecone_upsert(pc, 4, (const char *const *) b.ids, b.vecs,
                               BIGDIM, b.doc_ids, b.topics,
                               (const char *const *) b.files, b.positions,
                               NBIG, on_done, &r), AVC_OK,
           "another upsert");
    avc_pinecone_free(pc);
    run_for(500);
    TAP_IS(r.calls, 0, "freed at once: no callback, the build is dropped");
    res_clear(&r);
    batch_free(&b);
    mock_stop(&mk);
}

/* errors */

static void
test_errors(const mock_t *mk)
{
    avc_pinecone_t *pc = pc_new(mk, "pc-wrong-key-77", NULL);
    batch_t b;
    res_t r;
    const char *e;

    memset(&r, 0, sizeof(r));
    if (pc == NULL || batch_make(&b, "e", 0, 3, DIM) != 0) {
        TAP_OK(0, "setup");
        return;
    }
    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_EUPSTREAM,
           "wrong key: upsert fails with AVC_EUPSTREAM");
    TAP_IS(r.count, 0, "nothing upserted");
    e = avc_pinecone_last_error(pc);
    TAP_OK(strstr(e, "Invalid API Key") != NULL,
           "Pinecone's message is kept: %s", e);
    TAP_OK(strstr(e, "401") && strstr(e, "UNAUTHENTICATED")
           && strstr(e, "dealership_1"),
           "with the status, the code and the namespace");
    TAP_OK(strstr(e, "pc-wrong-key-77") == NULL, "never the key");
    TAP_IS(query_sync(pc, 1, b.vecs, DIM, 3, NULL, 0, &r), AVC_EUPSTREAM,
           "a query too");
    TAP_OK(r.got_null && r.count == 0, "with no matches");
    TAP_STR(avc_pinecone_last_error(pc), "query dealership_1: HTTP 401 "
            "(UNAUTHENTICATED): Invalid API Key", "the whole last error");
    TAP_IS(delete_sync(pc, 1, NULL, 0, &r), AVC_EUPSTREAM,
           "a delete too");
    avc_pinecone_free(pc);

    /* a data-plane error: the dimension does not match */
    pc = pc_new(mk, KEY, NULL);
    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_OK,
           "the right key: the upsert is accepted");
    TAP_IS(query_sync(pc, 1, b.vecs, 3, 3, NULL, 0, &r), AVC_EUPSTREAM,
           "a query of the wrong dimension");
    TAP_OK(strstr(avc_pinecone_last_error(pc), "HTTP 400 (3): Query vector "
                  "dimension 3 does not match") != NULL,
           "gives Pinecone's {\"code\",\"message\"}: %s",
           avc_pinecone_last_error(pc));
    avc_pinecone_free(pc);
    batch_free(&b);
    TAP_OK(!logs_contain(KEY) && !logs_contain("pc-wrong-key-77"),
           "no key in the log");
}

/* 500 then success; 500 and 429 until the attempts run out */

static void
test_retry(void)
{
    const char *fail2[] = { "--fail", "2", NULL };
    const char *fail9[] = { "--fail", "9", NULL };
    const char *s429[] = { "--status", "429", NULL };
    const char *one[] = { "vector_store.attempts", "1", NULL };
    avc_pinecone_t *pc;
    mock_t mk;
    batch_t b;
    res_t r;

    memset(&r, 0, sizeof(r));
    if (batch_make(&b, "r", 0, 5, DIM) != 0 || mock_start(&mk, fail2) != 0) {
        TAP_OK(0, "setup");
        return;
    }
    pc = pc_new(&mk, KEY, NULL);
    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_OK,
           "two 500s, then success within 3 attempts");
    TAP_IS(r.count, 5, "5 upserted");
    TAP_IS(stat_int(&mk, "data_requests", NULL), 3, "in 3 requests");
    TAP_STR(avc_pinecone_last_error(pc), "", "no error recorded");
    avc_pinecone_free(pc);
    mock_stop(&mk);

    if (mock_start(&mk, fail9) != 0) {
        TAP_OK(0, "setup");
        batch_free(&b);
        return;
    }
    pc = pc_new(&mk, KEY, NULL);
    TAP_IS(query_sync(pc, 1, b.vecs, DIM, 3, NULL, 0, &r), AVC_EUPSTREAM,
           "500 three times: AVC_EUPSTREAM");
    TAP_IS(stat_int(&mk, "data_requests", NULL), 3, "after 3 attempts");
    TAP_OK(strstr(avc_pinecone_last_error(pc),
                  "HTTP 500 (13): Internal error") != NULL,
           "last error: %s", avc_pinecone_last_error(pc));
    avc_pinecone_free(pc);
    pc = pc_new(&mk, KEY, one);
    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_EUPSTREAM,
           "with vector_store.attempts 1");
    TAP_IS(stat_int(&mk, "data_requests", NULL), 4, "a single request");
    avc_pinecone_free(pc);
    mock_stop(&mk);

    if (mock_start(&mk, s429) != 0) {
        TAP_OK(0, "setup");
        batch_free(&b);
        return;
    }
    pc = pc_new(&mk, KEY, NULL);
    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_EUPSTREAM, "429 each time");
    TAP_IS(stat_int(&mk, "data_requests", NULL), 3, "retried, 3 attempts");
    TAP_OK(strstr(avc_pinecone_last_error(pc), "HTTP 429 (8): ") != NULL,
           "last error: %s", avc_pinecone_last_error(pc));
    avc_pinecone_free(pc);
    mock_stop(&mk);
    batch_free(&b);
}

/* deadlines */

static void
test_deadline(void)
{
    const char *args[] = { "--delay", "1500", NULL };
    const char *kv[] = { "vector_store.query_timeout", "300",
                         "vector_store.timeout", "400", NULL };
    avc_pinecone_t *pc;
    uint64_t t0;
    mock_t mk;
    batch_t b;
    res_t r;

    memset(&r, 0, sizeof(r));
    if (batch_make(&b, "t", 0, 3, DIM) != 0 || mock_start(&mk, args) != 0
        || (pc = pc_new(&mk, KEY, kv)) == NULL)
    {
        TAP_OK(0, "setup");
        return;
    }
    t0 = avc_loop_now(loop);
    TAP_IS(query_sync(pc, 1, b.vecs, DIM, 3, NULL, 0, &r), AVC_ETIMEDOUT,
           "a query answered after 1.5 s with a 300 ms deadline");
    TAP_OK(avc_loop_now(loop) - t0 < 1000, "ends at the deadline (%u ms)",
           (unsigned) (avc_loop_now(loop) - t0));
    TAP_OK(strstr(avc_pinecone_last_error(pc), "timed out") != NULL
           || strstr(avc_pinecone_last_error(pc), "deadline") != NULL,
           "last error: %s", avc_pinecone_last_error(pc));
    t0 = avc_loop_now(loop);
    TAP_IS(upsert_sync(pc, 1, &b, &r), AVC_ETIMEDOUT,
           "an upsert with a 400 ms deadline");
    TAP_OK(avc_loop_now(loop) - t0 < 1000, "ends at the deadline (%u ms)",
           (unsigned) (avc_loop_now(loop) - t0));
    avc_pinecone_free(pc);
    mock_stop(&mk);
    batch_free(&b);
}

/* abandoning: free and cancel with operations running */

static void
test_abandon(void)
{
    const char *args[] = { "--delay", "300", NULL };
    avc_pinecone_t *pc;
    res_t r1, r2, r3;
    mock_t mk;
    batch_t b;
    int tag;

    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    memset(&r3, 0, sizeof(r3));
    if (batch_make(&b, "a", 0, 20, DIM) != 0 || mock_start(&mk, args) != 0
        || (pc = pc_new(&mk, KEY, NULL)) == NULL)
    {
        TAP_OK(0, "setup");
        return;
    }

    /* cancel by data */
    TAP_IS(avc_pinecone_query(pc, 1, b.vecs, DIM, 3, NULL, 0, on_query, &r1),
           AVC_OK, "a query");
    TAP_IS(avc_pinecone_upsert(pc, 1, (const char *const *) b.ids, b.vecs,
                               DIM, b.doc_ids, b.topics,
                               (const char *const *) b.files, b.positions,
                               b.n, on_done, &r2), AVC_OK, "an upsert");
    run_for(50);
    TAP_IS(avc_pinecone_cancel(pc, &r1), 1, "cancel the query by its data");
    TAP_IS(avc_pinecone_cancel(pc, &tag), 0, "nothing else has that data");
    run_until(&r2.done, 5000);
    TAP_IS(r2.err, AVC_OK, "the upsert ends");
    run_for(400);
    TAP_IS(r1.calls, 0, "the cancelled query never calls back");

    /* free from within a callback, with another operation running */
    r1.free_pc = pc;
    TAP_IS(avc_pinecone_query(pc, 1, b.vecs, DIM, 3, NULL, 0, on_query, &r1),
           AVC_OK, "a query that frees the client in its callback");
    run_for(100);
    TAP_IS(avc_pinecone_delete_namespace(pc, 1, on_done, &r3), AVC_OK,
           "and a delete started 100 ms later");
    run_until(&r1.done, 5000);
    TAP_IS(r1.err, AVC_OK, "the query ends");
    TAP_IS(r1.n, 3, "with its matches");
    run_for(600);
    TAP_IS(r3.calls, 0, "the delete, abandoned with the client, does not");

    /* free with operations in flight */
    pc = pc_new(&mk, KEY, NULL);
    res_clear(&r1);
    res_clear(&r2);
    TAP_OK(avc_pinecone_query(pc, 1, b.vecs, DIM, 3, NULL, 0, on_query, &r1)
           == AVC_OK
           && avc_pinecone_delete_ids(pc, 1, (const char *const *) b.ids, 3,
                                      on_done, &r2) == AVC_OK,
           "a query and a delete");
    run_for(50);
    avc_pinecone_free(pc);
    run_for(500);
    TAP_OK(r1.calls == 0 && r2.calls == 0, "freed: neither calls back");
    res_clear(&r1);
    mock_stop(&mk);
    batch_free(&b);
}

int
main(int argc, char **argv)
{
    const char *env = getenv("AVC_TOP");
    mock_t mk;

    signal(SIGPIPE, SIG_IGN);
    if (env && *env) {
        top = env;
    }
    only = argc > 1 ? argv + 1 : NULL;
    avc__buf_init(&logs);
    avc_log_set(log_cb, NULL, AVC_LOG_DEBUG);
    loop = avc_loop_new(2);
    http = avc_http_new(loop);
    if (loop == NULL || http == NULL) {
        printf("Bail out! no loop or HTTP client\n");
        return 1;
    }

    if (section("config")) {
        test_config();
    }
    if (mock_start(&mk, NULL) != 0) {
        printf("Bail out! cannot start tools/mock/pinecone.pl\n");
        return 1;
    }
    if (section("args")) {
        test_args(&mk);
    }
    if (section("mock")) {
        test_mock_limits(&mk);
    }
    if (section("store")) {
        test_store(&mk);
    }
    if (section("errors")) {
        test_errors(&mk);
    }
    mock_stop(&mk);
    if (section("split")) {
        test_split();
    }
    if (section("retry")) {
        test_retry();
    }
    if (section("deadline")) {
        test_deadline();
    }
    if (section("abandon")) {
        test_abandon();
    }

    avc_http_free(http);
    avc_loop_free(loop);
    avc_log_set(NULL, NULL, AVC_LOG_ERR);
    avc__buf_free(&logs);
    return tap_done();
}
