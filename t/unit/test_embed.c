/*
 * Embeddings: the lexical analysis, the local embedder (deterministic,
 * synonyms), the query cache, the asynchronous interface, and the OpenAI
 * provider against tools/mock/openai-embeddings.pl (batching, 429 then
 * success, 500, dimension mismatch, the key kept out of messages).
 *
 *   build/t/test_embed [SECTION...]   e.g. "build/t/test_embed openai"
 *
 * The mock is started by this test (perl, from $AVC_TOP, default ".":
 * make runs tests from the repository root) with a pipe on its stdin, so
 * it exits with the test however it ends.
 */
#include "tap.h"
#include "mock.h"

#include <avatarcore/embed.h>
#include <avatarcore/http.h>
#include "../../libavatarcore/src/rag/rag_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static const char *top = ".";

static double
dot(const float *a, const float *b, size_t n)
{
    double d = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        d += (double) a[i] * b[i];
    }
    return d;
}

static int
vec_eq(const float *a, const float *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

static double
sim(const char *a, const char *b)
{
    float va[AVC_EMBED_LOCAL_DIM], vb[AVC_EMBED_LOCAL_DIM];

    avc_embed_local_one(a, strlen(a), AVC_EMBED_LOCAL_DIM, va);
    avc_embed_local_one(b, strlen(b), AVC_EMBED_LOCAL_DIM, vb);
    return dot(va, vb, AVC_EMBED_LOCAL_DIM);
}

/* lexical analysis */

static const char *
stem(const char *w)
{
    static char buf[64];
    size_t n = strlen(w);

    memcpy(buf, w, n + 1);
    avc__lx_stem(buf, n);
    return buf;
}

/* the words of text as "word/stem" joined by spaces, concepts as [=c] */
static const char *
analyse(const char *text)
{
    static char out[1024];
    avc__lx_t lx;
    size_t i, o = 0;

    avc__lx_init_struct(&lx);
    out[0] = '\0';
    if (avc__lx_analyze(&lx, text, strlen(text)) != AVC_OK) {
        return "(failed)";
    }
    for (i = 0; i < lx.n && o < sizeof(out) - 100; i++) {
        o += (size_t) snprintf(out + o, sizeof(out) - o, "%s%s",
                               o ? " " : "", avc__lx_wstr(&lx, i));
        if (lx.words[i].concept >= 0) {
            o += (size_t) snprintf(out + o, sizeof(out) - o, "[=%s]",
                                   avc__lx_concept_name(lx.words[i].concept));
        }
    }
    avc__lx_free(&lx);
    return out;
}

/* the class of the single word w (AVC__LX_*), -1 when it is not one */
static int
word_class(const char *w)
{
    avc__lx_t lx;
    int cls = -1;

    avc__lx_init_struct(&lx);
    if (avc__lx_analyze(&lx, w, strlen(w)) == AVC_OK && lx.n == 1) {
        cls = lx.words[0].cls;
    }
    avc__lx_free(&lx);
    return cls;
}

static void
test_lexer(void)
{
    char cmd[PATH_MAX + 64];

    TAP_STR(stem("caresses"), "caress", "porter: caresses");
    TAP_STR(stem("ponies"), "poni", "porter: ponies");
    TAP_STR(stem("relational"), "relat", "porter: relational");
    TAP_STR(stem("hopefulness"), "hope", "porter: hopefulness");
    TAP_STR(stem("financing"), stem("finance"),
            "financing and finance share a stem");
    TAP_STR(stem("contracts"), "contract", "porter: contracts");
    TAP_STR(stem("warranties"), stem("warranty"),
            "warranties and warranty share a stem");
    TAP_STR(stem("motoring"), "motor", "porter: motoring");

    TAP_STR(analyse("R\xc3\xa9sum\xc3\xa9 na\xc3\xafve STRASSE \xc3\x9f"),
            "resume naive strasse ss", "ASCII folding of Latin letters");
    TAP_STR(analyse("The customer\xe2\x80\x99s car's don't"),
            "the customer[=customer] car[=vehicle] dont",
            "possessives dropped, apostrophes joined");
    TAP_STR(analyse("36,000 miles at 0.125% or 7.49"),
            "36000 miles at 0.125 percent or 7.49",
            "numbers with separators, %% as a word");
    TAP_STR(analyse("T&W and F&I; tire & wheel"),
            "t&w[=tire_wheel] and f&i[=fi] tire[=tire_wheel] and wheel",
            "T&W and F&I stay words; a lone & is \"and\"");
    TAP_STR(analyse("a Vehicle Service Contracts program"),
            "a vehicle[=vsc] service contracts program",
            "the longest variant wins, plurals match");
    TAP_STR(analyse("Truth-in-Lending (Reg. Z)"),
            "truth[=tila] in lending reg[=tila] z",
            "phrases with stopwords and punctuation");
    TAP_STR(analyse("five years, a sixty-day notice, 30 days"),
            "5 years a 60 day notice 30 days",
            "number words are numbers (\"one\" is not)");
    TAP_OK(strcmp(analyse("one hundred"), "one hundred") == 0,
           "\"one\" and \"hundred\" stay words");
    TAP_OK(word_class("now") == AVC__LX_STOP
           && word_class("needn") == AVC__LX_STOP,
           "now, needn: function words (NLTK's list)");
    TAP_OK(word_class("someone") == AVC__LX_LIGHT
           && word_class("nobody") == AVC__LX_LIGHT
           && word_class("anywhere") == AVC__LX_LIGHT,
           "someone, nobody, anywhere: damped like anyone and everything");
    TAP_OK(sim("a plan for five years", "a plan for 5 years") > 0.99,
           "\"five years\" and \"5 years\" embed alike (%.3f)",
           sim("a plan for five years", "a plan for 5 years"));
    TAP_OK(avc__lx_concepts() > 40, "the built-in list has %zu concepts",
           avc__lx_concepts());

    snprintf(cmd, sizeof(cmd), "sh '%s/libavatarcore/embed.sh' --check",
             top);
    TAP_IS(system(cmd), 0, "src/util/embedded.c is up to date with "
           "data/fi_synonyms.txt");
}

/* the local embedder */

static void
test_local(void)
{
    static const char *texts[] = {
        "GAP covers the difference between the loan payoff and the "
        "insurance settlement after a total loss.",
        "Rental car: up to $40 per day, maximum 5 days per covered claim.",
        ""
    };
    float a[AVC_EMBED_LOCAL_DIM], b[AVC_EMBED_LOCAL_DIM];
    float many[3 * AVC_EMBED_LOCAL_DIM], v64[64];
    char model[64], model2[64];
    double n;

    TAP_IS(avc_embed_local_one(texts[0], strlen(texts[0]),
                               AVC_EMBED_LOCAL_DIM, a), AVC_OK, "embed");
    avc_embed_local_one(texts[0], strlen(texts[0]), AVC_EMBED_LOCAL_DIM, b);
    TAP_OK(memcmp(a, b, sizeof(a)) == 0, "deterministic: the same bytes");
    n = dot(a, a, AVC_EMBED_LOCAL_DIM);
    TAP_OK(fabs(n - 1) < 1e-5, "unit length (%f)", n);
    TAP_IS(avc_embed_local_many(texts, 3, AVC_EMBED_LOCAL_DIM, many),
           AVC_OK, "a batch of three");
    TAP_OK(memcmp(many, a, sizeof(a)) == 0,
           "a batch gives the vectors of single calls");
    TAP_OK(dot(many + 2 * AVC_EMBED_LOCAL_DIM, many + 2 * AVC_EMBED_LOCAL_DIM,
               AVC_EMBED_LOCAL_DIM) == 0, "an empty text: the zero vector");
    TAP_IS(avc_embed_local_one(texts[0], strlen(texts[0]), 64, v64), AVC_OK,
           "64 dimensions");
    TAP_IS(avc_embed_local_one(texts[0], strlen(texts[0]), 32, v64),
           AVC_EINVAL, "32 dimensions refused");
    TAP_IS(avc_embed_local_model(512, model, sizeof(model)), AVC_OK,
           "model name");
    avc_embed_local_model(256, model2, sizeof(model2));
    TAP_OK(strncmp(model, "avc-local-1-d512-h", 18) == 0
           && strcmp(model, model2) != 0,
           "the model name carries the dimension: %s", model);

    TAP_OK(sim("VSC", "vehicle service contract")
           > 4 * fabs(sim("VSC", "vehicle insurance policy")),
           "VSC is close to \"vehicle service contract\" (%.2f), not to "
           "\"vehicle insurance policy\" (%.2f)",
           sim("VSC", "vehicle service contract"),
           sim("VSC", "vehicle insurance policy"));
    TAP_OK(sim("What does the VSC cover?",
               "What does the extended warranty cover?") > 0.6,
           "VSC and extended warranty meet (%.2f)",
           sim("What does the VSC cover?",
               "What does the extended warranty cover?"));
    TAP_OK(sim("VSC", "service contract") > 3 * sim("VSC", "tire and wheel"),
           "VSC is closer to service contract than to tire and wheel "
           "(%.2f vs %.2f)", sim("VSC", "service contract"),
           sim("VSC", "tire and wheel"));
    TAP_OK(sim("GAP", "guaranteed asset protection")
           > 4 * fabs(sim("GAP", "paint protection")),
           "GAP and guaranteed asset protection (%.2f), not paint "
           "protection (%.2f)", sim("GAP", "guaranteed asset protection"),
           sim("GAP", "paint protection"));
    TAP_OK(sim("GAP waiver", "debt cancellation agreement") > 0.3,
           "GAP waiver and debt cancellation agreement (%.2f)",
           sim("GAP waiver", "debt cancellation agreement"));
    TAP_OK(sim("Reg Z disclosures", "Truth in Lending disclosures") > 0.5,
           "Reg Z and Truth in Lending (%.2f)",
           sim("Reg Z disclosures", "Truth in Lending disclosures"));
    TAP_OK(sim("financing the vehicles", "financed vehicle") > 0.5,
           "word forms meet through stems (%.2f)",
           sim("financing the vehicles", "financed vehicle"));
    TAP_OK(sim("What is the rate markup cap?",
               "Chocolate cake recipe with cream") < 0.1,
           "unrelated texts are far apart (%.2f)",
           sim("What is the rate markup cap?",
               "Chocolate cake recipe with cream"));
}

/* the cache */

static void
test_cache(void)
{
    avc_embed_cache_t *c = avc_embed_cache_new(2);
    float v[4] = { 1, 2, 3, 4 }, w[4] = { 5, 6, 7, 8 }, out[4];

    TAP_OK(c != NULL, "cache of 2 entries");
    TAP_IS(avc_embed_cache_get(c, "m", "one", out, 4), 0, "miss");
    TAP_IS(avc_embed_cache_put(c, "m", "one", v, 4), AVC_OK, "put one");
    TAP_IS(avc_embed_cache_get(c, "m", "one", out, 4), 1, "hit");
    TAP_OK(memcmp(out, v, sizeof(v)) == 0, "the stored vector");
    TAP_IS(avc_embed_cache_get(c, "other", "one", out, 4), 0,
           "another model misses");
    TAP_IS(avc_embed_cache_get(c, "m", "one", out, 3), 0,
           "another dimension misses");
    avc_embed_cache_put(c, "m", "two", w, 4);
    avc_embed_cache_get(c, "m", "one", out, 4);         /* one is recent */
    avc_embed_cache_put(c, "m", "three", w, 4);         /* evicts two */
    TAP_IS(avc_embed_cache_get(c, "m", "two", out, 4), 0,
           "the least recently used went");
    TAP_IS(avc_embed_cache_get(c, "m", "one", out, 4), 1, "one stayed");
    TAP_IS(avc_embed_cache_stat(c, AVC_EMBED_CACHE_SIZE), 2, "size 2");
    TAP_IS(avc_embed_cache_stat(c, AVC_EMBED_CACHE_HITS), 3, "3 hits");
    TAP_IS(avc_embed_cache_stat(c, AVC_EMBED_CACHE_MISSES), 4, "4 misses");
    avc_embed_cache_put(c, "m", "one", w, 4);
    avc_embed_cache_get(c, "m", "one", out, 4);
    TAP_OK(memcmp(out, w, sizeof(w)) == 0, "a put replaces");
    avc_embed_cache_clear(c);
    TAP_IS(avc_embed_cache_stat(c, AVC_EMBED_CACHE_SIZE), 0, "cleared");
    avc_embed_cache_free(c);
    avc_embed_cache_free(NULL);
}

/* the asynchronous interface */

typedef struct {
    int done;
    int calls;
    int err;
    size_t n;
    size_t dim;
    float *v;
} res_t;

static void
on_embed(int err, const float *v, size_t n, size_t dim, void *data)
{
    res_t *r = data;

    r->done = 1;
    r->calls++;
    r->err = err;
    r->n = n;
    r->dim = dim;
    free(r->v);
    r->v = NULL;
    if (err == AVC_OK) {
        r->v = malloc(n * dim * sizeof(float));
        memcpy(r->v, v, n * dim * sizeof(float));
    }
}

static void
res_reset(res_t *r)
{
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static void
run_until(avc_loop_t *loop, int *flag, int ms)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!*flag) {
        avc_loop_run_once(loop, 50);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000
            + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
        {
            break;
        }
    }
}

static void
turn(avc_loop_t *loop, int ms)
{
    int never = 0;

    run_until(loop, &never, ms);
}

static void
test_async_local(void)
{
    const char *texts[] = { "service contract", "GAP waiver", "menu" };
    float ref[3 * AVC_EMBED_LOCAL_DIM];
    avc_loop_t *loop = avc_loop_new(2);
    avc_config_t *cfg = avc_config_new();
    avc_embedder_t *e;
    avc_embed_op_t *op;
    avc_embed_cache_t *shared;
    res_t r;
    int err;

    memset(&r, 0, sizeof(r));
    e = avc_embedder_new(loop, NULL, cfg, &err);
    TAP_OK(e != NULL, "local embedder by default");
    TAP_STR(avc_embedder_provider(e), "local", "provider local");
    TAP_IS(avc_embedder_dim(e), 512, "512 dimensions");
    avc_embed_local_many(texts, 3, 512, ref);

    TAP_IS(avc_embed(e, texts, 3, on_embed, &r), AVC_OK, "avc_embed");
    TAP_IS(r.calls, 0, "no callback from within the call");
    run_until(loop, &r.done, 5000);
    TAP_OK(r.err == AVC_OK && r.n == 3 && r.dim == 512
           && memcmp(r.v, ref, sizeof(ref)) == 0,
           "on the thread pool: the vectors of the blocking function");
    TAP_IS(avc_embed(e, texts, 0, on_embed, &r), AVC_EINVAL, "n = 0");

    res_reset(&r);
    TAP_IS(avc_embed_query(e, "What is a VSC?", on_embed, &r, NULL), AVC_OK,
           "query");
    run_until(loop, &r.done, 5000);
    TAP_OK(r.err == AVC_OK && r.n == 1, "query embedded");
    TAP_IS(avc_embed_cache_stat(avc_embedder_cache(e),
                                AVC_EMBED_CACHE_MISSES), 1, "a cache miss");
    r.done = 0;
    avc_embed_query(e, "What is a VSC?", on_embed, &r, NULL);
    TAP_IS(r.calls, 1, "a hit is not answered from within the call");
    run_until(loop, &r.done, 5000);
    TAP_IS(avc_embed_cache_stat(avc_embedder_cache(e),
                                AVC_EMBED_CACHE_HITS), 1, "then a hit");
    TAP_IS(r.calls, 2, "answered once");

    shared = avc_embed_cache_new(10);
    avc_embedder_set_cache(e, shared);
    TAP_OK(avc_embedder_cache(e) == shared, "a shared cache");
    r.done = 0;
    avc_embed_query(e, "What is a VSC?", on_embed, &r, NULL);
    run_until(loop, &r.done, 5000);
    TAP_IS(avc_embed_cache_stat(shared, AVC_EMBED_CACHE_MISSES), 1,
           "the shared cache is used");

    res_reset(&r);
    TAP_IS(avc_embed_start(e, texts, 3, on_embed, &r, &op), AVC_OK,
           "start");
    avc_embed_cancel(op);
    turn(loop, 300);
    TAP_IS(r.calls, 0, "cancelled: no callback");

    res_reset(&r);
    avc_embed(e, texts, 3, on_embed, &r);
    avc_embedder_free(e);
    TAP_OK(r.calls == 1 && r.err == AVC_ECANCELED,
           "freeing the embedder ends its ops with AVC_ECANCELED");
    turn(loop, 300);
    TAP_IS(r.calls, 1, "and calls nothing later");

    avc_config_set(cfg, "embeddings.provider", "nope");
    TAP_OK(avc_embedder_new(loop, NULL, cfg, &err) == NULL
           && err == AVC_EINVAL, "a bad provider is refused");
    avc_config_set(cfg, "embeddings.provider", "openai");
    TAP_OK(avc_embedder_new(loop, NULL, cfg, &err) == NULL
           && err == AVC_EINVAL, "openai without HTTP client or key");
    free(r.v);
    avc_embed_cache_free(shared);
    avc_config_free(cfg);
    avc_loop_free(loop);
}

/* the mock */

static int
mock_start(mock_t *mk, const char *const *args)
{
    return mock_start_script(mk, top, "openai-embeddings.pl", args);
}

/* the lines of the mock's log: "status", "inputs" of each request */
static int
read_log(const char *path, int *status, int *inputs, int max)
{
    FILE *f = fopen(path, "r");
    char line[512], *p;
    int n = 0;

    if (f == NULL) {
        return 0;
    }
    while (n < max && fgets(line, sizeof(line), f)) {
        p = strstr(line, "\"status\":");
        status[n] = p ? atoi(p + 9) : 0;
        p = strstr(line, "\"inputs\":");
        inputs[n] = p ? atoi(p + 9) : 0;
        n++;
    }
    fclose(f);
    return n;
}

typedef struct {
    avc_loop_t *loop;
    avc_http_t *http;
    avc_config_t *cfg;
    avc_embedder_t *e;
    mock_t mk;
    char log[64];
} oai_t;

static int
oai_open(oai_t *o, const char *const *mock_args, const char *key,
    const char *dims)
{
    char base[64];
    int err;

    memset(o, 0, sizeof(*o));
    snprintf(o->log, sizeof(o->log), "/tmp/avc-embed-log-%d",
             (int) getpid());
    unlink(o->log);
    {
        const char *args[16];
        int n = 0, i;

        args[n++] = "--log";
        args[n++] = o->log;
        for (i = 0; mock_args && mock_args[i] && n < 15; i++) {
            args[n++] = mock_args[i];
        }
        args[n] = NULL;
        if (mock_start(&o->mk, args) != 0) {
            return -1;
        }
    }
    o->loop = avc_loop_new(2);
    o->http = avc_http_new(o->loop);
    o->cfg = avc_config_new();
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1/", o->mk.port);
    avc_config_set(o->cfg, "embeddings.provider", "openai");
    avc_config_set(o->cfg, "embeddings.base_url", base);
    avc_config_set(o->cfg, "embeddings.key", key);
    avc_config_set(o->cfg, "embeddings.backoff", "50");
    avc_config_set(o->cfg, "embeddings.attempts", "3");
    avc_config_set(o->cfg, "embeddings.timeout", "10000");
    if (dims) {
        avc_config_set(o->cfg, "embeddings.dimensions", dims);
    }
    o->e = avc_embedder_new(o->loop, o->http, o->cfg, &err);
    return o->e ? 0 : -1;
}

static void
oai_close(oai_t *o)
{
    avc_embedder_free(o->e);
    avc_http_free(o->http);
    avc_config_free(o->cfg);
    avc_loop_free(o->loop);
    mock_stop(&o->mk);
    unlink(o->log);
}

static void
test_openai(void)
{
    static const char *three[] = { "service contract", "GAP waiver",
                                   "service contract" };
    static const char *shuffle[] = { "--shuffle", NULL };
    static const char *limited[] = { "--rate-limit", "1", "--retry-after",
                                     "1", NULL };
    static const char *fail[] = { "--status", "500", NULL };
    static const char *wrong[] = { "--wrong-dim", NULL };
    static const char *slow[] = { "--delay", "3000", NULL };
    int status[16], inputs[16], n, i, ok;
    const char **many;
    char **bufs;
    float first[3 * 8];
    res_t r;
    oai_t o;

    memset(&r, 0, sizeof(r));
    if (!TAP_OK(oai_open(&o, NULL, "sk-test", "8") == 0,
                "openai embedder against the mock"))
    {
        oai_close(&o);
        return;
    }
    TAP_STR(avc_embedder_model(o.e), "text-embedding-3-small",
            "default model");
    TAP_IS(avc_embed(o.e, three, 3, on_embed, &r), AVC_OK, "embed three");
    run_until(o.loop, &r.done, 10000);
    TAP_OK(r.err == AVC_OK && r.n == 3 && r.dim == 8, "3 vectors of 8 "
           "(err %s)", avc_err_name(r.err));
    if (r.v) {
        memcpy(first, r.v, sizeof(first));
        TAP_OK(fabs(dot(r.v, r.v, 8) - 1) < 1e-4, "unit length");
        TAP_OK(vec_eq(r.v, r.v + 16, 8) && !vec_eq(r.v, r.v + 8, 8),
               "in input order (equal texts, equal vectors)");
    }
    n = read_log(o.log, status, inputs, 16);
    TAP_OK(n == 1 && status[0] == 200 && inputs[0] == 3, "one request");
    oai_close(&o);

    /* "index" decides the order, not the position in "data" */
    res_reset(&r);
    oai_open(&o, shuffle, "sk-test", "8");
    avc_embed(o.e, three, 3, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    TAP_OK(r.err == AVC_OK && r.v && memcmp(r.v, first, sizeof(first)) == 0,
           "items out of order are put back by their index");
    oai_close(&o);

    /* 2,049 inputs: two requests */
    res_reset(&r);
    oai_open(&o, NULL, "sk-test", "4");
    many = malloc(2049 * sizeof(char *));
    bufs = malloc(2049 * sizeof(char *));
    for (i = 0; i < 2049; i++) {
        bufs[i] = malloc(32);
        snprintf(bufs[i], 32, "chunk number %d", i);
        many[i] = bufs[i];
    }
    TAP_IS(avc_embed(o.e, many, 2049, on_embed, &r), AVC_OK,
           "embed 2049 texts");
    run_until(o.loop, &r.done, 20000);
    TAP_OK(r.err == AVC_OK && r.n == 2049, "2049 vectors");
    n = read_log(o.log, status, inputs, 16);
    TAP_OK(n == 2 && inputs[0] == 2048 && inputs[1] == 1,
           "in two requests of 2048 and 1 inputs (%d: %d, %d)", n,
           inputs[0], n > 1 ? inputs[1] : 0);
    ok = r.v != NULL;
    for (i = 0; ok && i < 2049; i += 512) {
        float want[4];
        res_t one;

        memset(&one, 0, sizeof(one));
        avc_embed(o.e, &many[i], 1, on_embed, &one);
        run_until(o.loop, &one.done, 5000);
        ok = one.v && memcmp(one.v, r.v + (size_t) i * 4, sizeof(want)) == 0;
        free(one.v);
    }
    TAP_OK(ok, "each vector belongs to its text across the batches");
    for (i = 0; i < 2049; i++) {
        free(bufs[i]);
    }
    free(bufs);
    free((void *) many);
    oai_close(&o);

    /* about 300,000 tokens per request: 3 texts of 125,000 tokens */
    res_reset(&r);
    oai_open(&o, NULL, "sk-test", "4");
    {
        const char *big[3];
        char *b = malloc(500001);

        memset(b, 'a', 500000);
        for (i = 0; i < 500000; i += 6) {
            b[i] = ' ';
        }
        b[500000] = '\0';
        big[0] = big[1] = big[2] = b;
        avc_embed(o.e, big, 3, on_embed, &r);
        run_until(o.loop, &r.done, 20000);
        free(b);
    }
    n = read_log(o.log, status, inputs, 16);
    TAP_OK(r.err == AVC_OK && r.n == 3 && n == 2 && inputs[0] == 2
           && inputs[1] == 1, "token budget: 2 + 1 inputs of 125,000 "
           "tokens (%d requests)", n);
    oai_close(&o);

    /* 429 with Retry-After, then success */
    res_reset(&r);
    oai_open(&o, limited, "sk-test", "8");
    avc_embed(o.e, three, 3, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    n = read_log(o.log, status, inputs, 16);
    TAP_OK(r.err == AVC_OK && r.n == 3, "429 then success: vectors "
           "(err %s)", avc_err_name(r.err));
    TAP_OK(n == 2 && status[0] == 429 && status[1] == 200,
           "the request was retried after the 429");
    oai_close(&o);

    /* 500 every time: an error with a message */
    res_reset(&r);
    oai_open(&o, fail, "sk-test", "8");
    avc_embed(o.e, three, 3, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    n = read_log(o.log, status, inputs, 16);
    TAP_IS(r.err, AVC_EUPSTREAM, "500: AVC_EUPSTREAM");
    TAP_IS(n, 3, "after the 3 attempts configured");
    TAP_OK(strstr(avc_embedder_last_error(o.e), "500") != NULL,
           "the message says 500: %s", avc_embedder_last_error(o.e));
    oai_close(&o);

    /* the wrong dimension */
    res_reset(&r);
    oai_open(&o, wrong, "sk-test", "8");
    avc_embed(o.e, three, 3, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    TAP_IS(r.err, AVC_EUPSTREAM, "9 dimensions for 8: AVC_EUPSTREAM");
    TAP_OK(strstr(avc_embedder_last_error(o.e), "dimension") != NULL,
           "the message says so: %s", avc_embedder_last_error(o.e));
    oai_close(&o);

    /* without "dimensions" the model's size is learned, then checked */
    res_reset(&r);
    oai_open(&o, NULL, "sk-test", NULL);
    TAP_IS(avc_embedder_dim(o.e), 0, "no dimension configured: 0");
    avc_embed(o.e, three, 1, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    TAP_OK(r.err == AVC_OK && r.dim == 1536
           && avc_embedder_dim(o.e) == 1536,
           "learned from the answer: 1536");
    res_reset(&r);
    avc_embed_query(o.e, "what is gap", on_embed, &r, NULL);
    run_until(o.loop, &r.done, 10000);
    r.done = 0;
    avc_embed_query(o.e, "what is gap", on_embed, &r, NULL);
    run_until(o.loop, &r.done, 10000);
    n = read_log(o.log, status, inputs, 16);
    TAP_OK(r.err == AVC_OK && n == 2, "a repeated query is answered by the "
           "cache (%d requests)", n);
    free(r.v);
    r.v = NULL;
    oai_close(&o);

    /* a wrong key: the provider echoes it, the message must not */
    res_reset(&r);
    oai_open(&o, NULL, "sk-secret-0123456789", "8");
    avc_embed(o.e, three, 3, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    TAP_IS(r.err, AVC_EUPSTREAM, "401: AVC_EUPSTREAM");
    TAP_OK(strstr(avc_embedder_last_error(o.e), "401") != NULL
           && strstr(avc_embedder_last_error(o.e), "sk-secret") == NULL,
           "the message has the status, not the key: %s",
           avc_embedder_last_error(o.e));
    oai_close(&o);

    /* a deadline */
    res_reset(&r);
    oai_open(&o, slow, "sk-test", "8");
    avc_config_set(o.cfg, "embeddings.timeout", "300");
    avc_embedder_free(o.e);
    {
        int err;

        o.e = avc_embedder_new(o.loop, o.http, o.cfg, &err);
    }
    avc_embed(o.e, three, 3, on_embed, &r);
    run_until(o.loop, &r.done, 10000);
    TAP_IS(r.err, AVC_ETIMEDOUT, "a slow provider: AVC_ETIMEDOUT");

    /* freeing the embedder with a request in flight */
    res_reset(&r);
    avc_embed(o.e, three, 3, on_embed, &r);
    turn(o.loop, 100);
    avc_embedder_free(o.e);
    o.e = NULL;
    TAP_OK(r.calls == 1 && r.err == AVC_ECANCELED,
           "freed in flight: AVC_ECANCELED");
    free(r.v);
    oai_close(&o);
}

int
main(int argc, char **argv)
{
    if (getenv("AVC_TOP")) {
        top = getenv("AVC_TOP");
    }
    tap_select(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (tap_section("lexer")) {
        test_lexer();
    }
    if (tap_section("local")) {
        test_local();
    }
    if (tap_section("cache")) {
        test_cache();
    }
    if (tap_section("async")) {
        test_async_local();
    }
    if (tap_section("openai")) {
        test_openai();
    }
    return tap_done();
}
