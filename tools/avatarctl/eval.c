/*
 * avatarctl eval: measure retrieval on a question set.
 *
 *   DIR/docs/NAME.txt    the material, one document per file, line 1 the
 *                        title
 *   DIR/questions.jsonl  {"id", "question", "doc", "kind"} per line; doc is
 *                        a file name of docs/, several joined by "|" for a
 *                        multi-hop question, "" for a negative one (the
 *                        material does not answer it)
 *
 * Everything goes through the core as the product runs it: a scratch
 * dealership, documents chunked (avc_chunk, 1000/200) and embedded by the
 * configured embedder (local by default), stored with the chunk insert of
 * retrieve.h and made 'ready', then every question retrieved by the
 * hybrid retriever and by its full-text-only and vector-only baselines.
 */
#include "ctl.h"

#include <avatarcore/chunk.h>
#include <avatarcore/embed.h>
#include <avatarcore/extract.h>
#include <avatarcore/http.h>
#include <avatarcore/retrieve.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define EVAL_MODES     3
#define EVAL_TOPK_MAX  20
#define EVAL_DOCS_MAX  1000

static int ctl_eval_run(int argc, char **argv);

const ctl_cmd_t ctl_cmd_eval = {
    "eval", "DIR [--database URL] [options]",
    "measure retrieval quality and latency on a question set",
    "Options:\n"
    "  -d, --database URL  the database, migrated (default: $DATABASE_URL,\n"
    "                      then $AVATAR_DATABASE)\n"
    "  -k, --top-k N       results asked per question (default 5)\n"
    "      --min-score X   the relevance floor, 0-1 (default: rag.min_score)\n"
    "      --repeat N      ask every question N times for the latency\n"
    "                      figures (default 3)\n"
    "  -c, --config K=V    a configuration key (repeatable), e.g.\n"
    "                      rag.min_score=0.3, embeddings.provider=openai\n"
    "                      (with embeddings.key=...)\n"
    "      --keep          keep the scratch dealership (default: deleted)\n"
    "      --sweep         also the hybrid figures for floors 0.20-0.60\n"
    "  -v, --verbose       one line per question and mode\n"
    "  -h, --help          this help\n"
    "\n"
    "DIR holds docs/*.txt (line 1 is the title) and questions.jsonl:\n"
    "{\"id\", \"question\", \"doc\", \"kind\"}, doc a file of docs/, several\n"
    "joined by \"|\" (multi-hop: all must be within k), \"\" for a negative\n"
    "question.  Documents go in a scratch dealership as topic \"books\",\n"
    "chunked 1000/200 and embedded by the configured embedder.  Printed per\n"
    "mode (hybrid, full-text only, vector only): recall@1 and recall@5 over\n"
    "the answerable questions, MRR (first relevant result), the share of\n"
    "negative questions answered with no result, and query latency p50 and\n"
    "p99 (milliseconds, embedding included, query cache off).\n",
    ctl_eval_run
};

typedef struct {
    char *id;
    char *question;
    char *docs[4];              /* the relevant files */
    size_t ndocs;
    char *kind;
} eval_q_t;

/* what a retrieval gave */
typedef struct {
    int done;
    int err;
    size_t n;
    char *files[EVAL_TOPK_MAX];
    double scores[EVAL_TOPK_MAX];
    double cos[EVAL_TOPK_MAX];
    double cov[EVAL_TOPK_MAX];
    double rrf[EVAL_TOPK_MAX];
    double best;
    uint64_t t0;
    uint64_t t1;
} eval_ret_t;

typedef struct {
    int done;
    int err;
    char msg[256];
    char v[64];                 /* first column of the first row */
    int rows;
    avc_db_tx_t *tx;
} eval_sql_t;

typedef struct {
    double r1;
    double r5;
    double mrr;
    double neg;
    double p50;
    double p99;
    size_t answerable;
    size_t negatives;
} eval_fig_t;

static ctl_env_t eval_env;

static uint64_t
eval_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int
eval_turn(int *done)
{
    while (!*done) {
        if (avc_loop_run_once(eval_env.loop, -1) < 0) {
            return -1;
        }
    }
    return 0;
}

static void
eval_on_sql(int err, avc_db_res_t *res, void *data)
{
    eval_sql_t *s = data;

    s->done = 1;
    s->err = err;
    if (res && err == AVC_EDB) {
        snprintf(s->msg, sizeof(s->msg), "%s", avc_db_res_error(res));
    }
    if (res && err == AVC_OK) {
        s->rows = avc_db_res_rows(res);
        if (s->rows > 0 && avc_db_res_cols(res) > 0) {
            snprintf(s->v, sizeof(s->v), "%s", avc_db_res_value(res, 0, 0));
        }
    }
}

static void
eval_on_tx(int err, avc_db_tx_t *tx, void *data)
{
    eval_sql_t *s = data;

    s->done = 1;
    s->err = err;
    s->tx = tx;
}

/* one statement, waited for; on a transaction when tx is not NULL */
static int
eval_sql(avc_db_tx_t *tx, const char *sql, int n, const char *const *p,
    eval_sql_t *s)
{
    memset(s, 0, sizeof(*s));
    if ((tx ? avc_db_tx_query(tx, sql, 0, n, p, eval_on_sql, s)
            : avc_db_query(eval_env.db, sql, 0, n, p, 0, eval_on_sql, s))
        == NULL)
    {
        return AVC_ENOMEM;
    }
    eval_turn(&s->done);
    if (s->err != AVC_OK) {
        ctl_err("%s%s%s", avc_strerror(s->err), s->msg[0] ? ": " : "",
                s->msg);
    }
    return s->err;
}

static char *
eval_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, *p;
    size_t cap = 0, n = 0, r;

    if (f == NULL) {
        return NULL;
    }
    for ( ;; ) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 131072;
            p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int
eval_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
eval_free_questions(eval_q_t *qs, size_t n)
{
    size_t i, k;

    for (i = 0; i < n; i++) {
        free(qs[i].id);
        free(qs[i].question);
        free(qs[i].kind);
        for (k = 0; k < qs[i].ndocs; k++) {
            free(qs[i].docs[k]);
        }
    }
    free(qs);
}

static eval_q_t *
eval_read_questions(const char *dir, size_t *nq)
{
    char path[4096], *text, *line, *save = NULL, *d, *dsave;
    eval_q_t *qs = NULL, *q;
    const char *s;
    json_t *j;
    size_t len, n = 0, cap = 0;

    snprintf(path, sizeof(path), "%s/questions.jsonl", dir);
    text = eval_slurp(path, &len);
    if (text == NULL) {
        ctl_err("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        if (line[strspn(line, " \t\r")] == '\0') {
            continue;
        }
        j = json_loads(line, 0, NULL);
        s = json_string_value(json_object_get(j, "question"));
        if (j == NULL || s == NULL) {
            ctl_err("%s: a line is not a question object", path);
            json_decref(j);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            q = realloc(qs, cap * sizeof(*q));
            if (q == NULL) {
                json_decref(j);
                break;
            }
            qs = q;
        }
        q = &qs[n++];
        memset(q, 0, sizeof(*q));
        q->question = strdup(s);
        s = json_string_value(json_object_get(j, "id"));
        q->id = strdup(s ? s : "?");
        s = json_string_value(json_object_get(j, "kind"));
        q->kind = strdup(s ? s : "");
        s = json_string_value(json_object_get(j, "doc"));
        if (s && *s) {
            char *docs = strdup(s);

            for (d = strtok_r(docs, "|", &dsave); d && q->ndocs < 4;
                 d = strtok_r(NULL, "|", &dsave))
            {
                q->docs[q->ndocs++] = strdup(d + strspn(d, " "));
            }
            free(docs);
        }
        json_decref(j);
    }
    free(text);
    *nq = n;
    return qs;
}

/* ingestion: one document in its own transaction */

static void
eval_on_store(int err, avc_db_res_t *res, void *data)
{
    eval_sql_t *s = data;

    s->done = 1;
    s->err = err;
    if (res && err == AVC_EDB) {
        snprintf(s->msg, sizeof(s->msg), "%s", avc_db_res_error(res));
    }
}

typedef struct {
    int done;
    int err;
    float *vecs;
    size_t dim;
} eval_emb_t;

static void
eval_on_embed(int err, const float *v, size_t n, size_t dim, void *data)
{
    eval_emb_t *e = data;

    e->done = 1;
    e->err = err;
    if (err == AVC_OK) {
        e->vecs = malloc(n * dim * sizeof(float));
        if (e->vecs) {
            memcpy(e->vecs, v, n * dim * sizeof(float));
            e->dim = dim;
        } else {
            e->err = AVC_ENOMEM;
        }
    }
}

static int
eval_ingest(avc_embedder_t *emb, const char *did, const char *name,
    const char *text, size_t len, size_t *nchunks, double *embed_s)
{
    const char *p[6], **texts = NULL;
    char bytes[32], n_s[32], doc[64], *title;
    avc_chunks_t *ch;
    eval_emb_t e;
    eval_sql_t s, t;
    size_t i, n;
    uint64_t t0;
    int err = AVC_OK;

    ch = avc_chunk(text, len, 1000, 200, &err);
    if (ch == NULL) {
        ctl_err("%s: cannot chunk: %s", name, avc_strerror(err));
        return err;
    }
    n = avc_chunks_count(ch);
    if (n == 0) {
        avc_chunks_free(ch);
        *nchunks = 0;
        return AVC_OK;
    }
    texts = malloc(n * sizeof(char *));
    if (texts == NULL) {
        avc_chunks_free(ch);
        return AVC_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        texts[i] = avc_chunks_text(ch, i, NULL);
    }
    memset(&e, 0, sizeof(e));
    t0 = eval_now_us();
    err = avc_embed(emb, texts, n, eval_on_embed, &e);
    if (err == AVC_OK) {
        eval_turn(&e.done);
        err = e.err;
    }
    *embed_s += (double) (eval_now_us() - t0) / 1e6;
    if (err != AVC_OK) {
        ctl_err("%s: cannot embed: %s %s", name, avc_strerror(err),
                avc_embedder_last_error(emb));
        goto done;
    }

    memset(&t, 0, sizeof(t));
    if (avc_db_begin(eval_env.db, 30000, eval_on_tx, &t) != AVC_OK) {
        err = AVC_ENOMEM;
        goto done;
    }
    eval_turn(&t.done);
    if (t.err != AVC_OK) {
        err = t.err;
        ctl_err("cannot begin: %s", avc_strerror(err));
        goto done;
    }
    title = avc_doc_title(text, len);
    snprintf(bytes, sizeof(bytes), "%zu", len);
    p[0] = did;
    p[1] = name;
    p[2] = text;
    p[3] = bytes;
    err = eval_sql(t.tx, "INSERT INTO documents (dealership_id, topic,"
                   " filename, mime, sha256, bytes, status) VALUES ($1,"
                   " 'books', $2, 'text/plain',"
                   " sha256(convert_to($3, 'UTF8')), $4, 'embedding')"
                   " RETURNING id", 4, p, &s);
    if (err == AVC_OK) {
        snprintf(doc, sizeof(doc), "%s", s.v);
        s.done = 0;
        err = avc_rag_store_chunks(t.tx, strtoll(doc, NULL, 10),
                                   strtoll(did, NULL, 10), "books", title,
                                   texts, n, e.vecs, e.dim,
                                   avc_embedder_model(emb), eval_on_store,
                                   &s);
        if (err == AVC_OK) {
            eval_turn(&s.done);
            err = s.err;
            if (err != AVC_OK) {
                ctl_err("%s: storing chunks: %s %s", name,
                        avc_strerror(err), s.msg);
            }
        }
    }
    if (err == AVC_OK) {
        /* 'ready' bumps the dealership's generation (trigger) */
        snprintf(n_s, sizeof(n_s), "%zu", n);
        p[0] = doc;
        p[1] = n_s;
        err = eval_sql(t.tx, "UPDATE documents SET status = 'ready',"
                       " progress = 1, chunk_count = $2 WHERE id = $1", 2,
                       p, &s);
    }
    free(title);
    memset(&s, 0, sizeof(s));
    if (err == AVC_OK) {
        avc_db_commit(t.tx, eval_on_sql, &s);
    } else {
        avc_db_rollback(t.tx, eval_on_sql, &s);
    }
    eval_turn(&s.done);
    if (err == AVC_OK) {
        err = s.err;
    }
    *nchunks = n;

done:
    free(e.vecs);
    free(texts);
    avc_chunks_free(ch);
    return err;
}

/* questions */

static void
eval_on_ret(int err, const avc_rag_results_t *res, void *data)
{
    eval_ret_t *r = data;
    size_t i;

    r->t1 = eval_now_us();
    r->done = 1;
    r->err = err;
    if (err != AVC_OK) {
        return;
    }
    r->best = avc_rag_results_best_score(res);
    r->n = avc_rag_results_count(res);
    if (r->n > EVAL_TOPK_MAX) {
        r->n = EVAL_TOPK_MAX;
    }
    for (i = 0; i < r->n; i++) {
        r->files[i] = strdup(avc_rag_result_filename(res, i));
        r->scores[i] = avc_rag_result_score(res, i);
        r->cos[i] = avc_rag_result_cosine(res, i);
        r->cov[i] = avc_rag_result_coverage(res, i);
        r->rrf[i] = avc_rag_result_rrf(res, i) * 61 / 2;
    }
}

static void
eval_ret_clear(eval_ret_t *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->files[i]);
    }
    memset(r, 0, sizeof(*r));
}

static int
eval_ask(avc_retriever_t *rt, int64_t did, const char *q, size_t k,
    double floor, eval_ret_t *r)
{
    int err;

    memset(r, 0, sizeof(*r));
    r->t0 = eval_now_us();
    err = avc_retrieve(rt, did, q, k, NULL, floor, eval_on_ret, r);
    if (err != AVC_OK) {
        return err;
    }
    eval_turn(&r->done);
    return r->err;
}

static int
eval_dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}

static double
eval_pct(double *v, size_t n, double p)
{
    size_t i;

    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof(*v), eval_dbl_cmp);
    i = (size_t) ceil(p * (double) n) - 1;
    return v[i < n ? i : n - 1];
}

/* the rank (1-based) within the first k results of the first relevant
 * one, and whether all relevant documents are within k */
static void
eval_judge(const eval_q_t *q, const eval_ret_t *r, size_t k, size_t *first,
    int *all)
{
    size_t i, d, found = 0;
    int seen;

    *first = 0;
    for (i = 0; i < r->n && i < k; i++) {
        for (d = 0; d < q->ndocs; d++) {
            if (strcmp(r->files[i], q->docs[d]) == 0 && *first == 0) {
                *first = i + 1;
            }
        }
    }
    for (d = 0; d < q->ndocs; d++) {
        seen = 0;
        for (i = 0; i < r->n && i < k; i++) {
            seen |= strcmp(r->files[i], q->docs[d]) == 0;
        }
        found += seen;
    }
    *all = q->ndocs > 0 && found == q->ndocs;
}

static int
eval_mode(avc_retriever_t *rt, avc_retrieve_mode_t mode, const char *name,
    int64_t did, eval_q_t *qs, size_t nq, size_t topk, double floor,
    unsigned repeat, int verbose, eval_fig_t *fig)
{
    eval_ret_t r;
    double *lat;
    size_t i, first, nlat = 0, k;
    unsigned rep;
    int all, err;

    memset(fig, 0, sizeof(*fig));
    avc_retriever_set_mode(rt, mode);
    lat = malloc(nq * repeat * sizeof(double) + 1);
    if (lat == NULL) {
        return AVC_ENOMEM;
    }
    /* the first retrieval loads the index: not a query's latency */
    err = eval_ask(rt, did, "warm up", topk, floor, &r);
    eval_ret_clear(&r);
    if (err != AVC_OK) {
        ctl_err("retrieval failed: %s", avc_strerror(err));
        free(lat);
        return err;
    }
    for (i = 0; i < nq; i++) {
        for (rep = 0; rep < repeat; rep++) {
            err = eval_ask(rt, did, qs[i].question, topk, floor, &r);
            if (err != AVC_OK) {
                ctl_err("%s: retrieval failed: %s", qs[i].id,
                        avc_strerror(err));
                free(lat);
                return err;
            }
            lat[nlat++] = (double) (r.t1 - r.t0) / 1000.0;
            if (rep + 1 < repeat) {
                eval_ret_clear(&r);
            }
        }
        if (qs[i].ndocs == 0) {
            fig->negatives++;
            fig->neg += r.n == 0;
        } else {
            fig->answerable++;
            eval_judge(&qs[i], &r, 1, &first, &all);
            fig->r1 += all;
            eval_judge(&qs[i], &r, 5, &first, &all);
            fig->r5 += all;
            eval_judge(&qs[i], &r, topk, &first, &all);
            fig->mrr += first ? 1.0 / (double) first : 0;
        }
        if (verbose) {
            printf("%-7s %-4s %-10s %6.2f ms best %.3f n %zu:", name,
                   qs[i].id, qs[i].kind, lat[nlat - 1], r.best, r.n);
            for (k = 0; k < r.n; k++) {
                printf(" %.12s(%.2f c%.2f t%.2f a%.2f)", r.files[k],
                       r.scores[k], r.cos[k], r.cov[k], r.rrf[k]);
            }
            printf("%s\n", qs[i].ndocs == 0 ? "" : "");
        }
        eval_ret_clear(&r);
    }
    if (fig->answerable) {
        fig->r1 /= (double) fig->answerable;
        fig->r5 /= (double) fig->answerable;
        fig->mrr /= (double) fig->answerable;
    }
    if (fig->negatives) {
        fig->neg /= (double) fig->negatives;
    }
    fig->p50 = eval_pct(lat, nlat, 0.50);
    fig->p99 = eval_pct(lat, nlat, 0.99);
    free(lat);
    return AVC_OK;
}

static int
eval_add_config(avc_config_t *cfg, const char *kv)
{
    char key[128];
    const char *eq = strchr(kv, '=');

    if (eq == NULL || eq == kv || (size_t) (eq - kv) >= sizeof(key)) {
        return AVC_EINVAL;
    }
    memcpy(key, kv, (size_t) (eq - kv));
    key[eq - kv] = '\0';
    return avc_config_set(cfg, key, eq + 1);
}

static int
ctl_eval_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "database", required_argument, NULL, 'd' },
        { "top-k", required_argument, NULL, 'k' },
        { "min-score", required_argument, NULL, 'm' },
        { "repeat", required_argument, NULL, 'r' },
        { "config", required_argument, NULL, 'c' },
        { "keep", no_argument, NULL, 'K' },
        { "sweep", no_argument, NULL, 'S' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    static const char *const mode_names[EVAL_MODES] = {
        "hybrid", "text", "vector"
    };
    static const avc_retrieve_mode_t modes[EVAL_MODES] = {
        AVC_RETRIEVE_HYBRID, AVC_RETRIEVE_TEXT, AVC_RETRIEVE_VECTOR
    };
    const char *database = NULL, *dir = NULL, *p[2];
    char path[4096], name[96], did[64], *text, *end, **files = NULL;
    avc_config_t *cfg = NULL;
    avc_embedder_t *emb = NULL;
    avc_retriever_t *rt = NULL;
    avc_http_t *http = NULL;
    eval_fig_t fig[EVAL_MODES];
    eval_q_t *qs = NULL;
    size_t nq = 0, nfiles = 0, i, len, nch = 0, total = 0, topk = 5;
    unsigned repeat = 3;
    double floor = -1, embed_s = 0;
    int c, rc = CTL_EFAIL, err, keep = 0, verbose = 0, sweep = 0, m;
    double f;
    struct dirent *de;
    eval_sql_t s;
    DIR *dd;

    cfg = avc_config_new();
    if (cfg == NULL) {
        return CTL_EFAIL;
    }
    /* every query embedded anew: latency without the query cache */
    avc_config_set(cfg, "embeddings.cache_size", "0");
    /* avatarctl's getopt stops at the first operand: take it and go on */
    for ( ;; ) {
        c = getopt_long(argc, argv, ":d:k:c:vh", opts, NULL);
        if (c == -1) {
            if (optind >= argc) {
                break;
            }
            if (dir != NULL) {
                avc_config_free(cfg);
                return ctl_usage(&ctl_cmd_eval, "give one directory");
            }
            dir = argv[optind++];
            continue;
        }
        switch (c) {
        case 'd':
            database = optarg;
            break;
        case 'k':
            topk = (size_t) strtoul(optarg, &end, 10);
            if (*end || topk < 5 || topk > EVAL_TOPK_MAX) {
                avc_config_free(cfg);
                return ctl_usage(&ctl_cmd_eval, "--top-k is 5-20");
            }
            break;
        case 'm':
            floor = strtod(optarg, &end);
            if (*end || !(floor >= 0 && floor <= 1)) {
                avc_config_free(cfg);
                return ctl_usage(&ctl_cmd_eval, "--min-score is 0-1");
            }
            break;
        case 'r':
            repeat = (unsigned) strtoul(optarg, &end, 10);
            if (*end || repeat < 1 || repeat > 100) {
                avc_config_free(cfg);
                return ctl_usage(&ctl_cmd_eval, "--repeat is 1-100");
            }
            break;
        case 'c':
            if (eval_add_config(cfg, optarg) != AVC_OK) {
                avc_config_free(cfg);
                return ctl_usage(&ctl_cmd_eval, "--config takes KEY=VALUE");
            }
            break;
        case 'K':
            keep = 1;
            break;
        case 'S':
            sweep = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            avc_config_free(cfg);
            return ctl_help(&ctl_cmd_eval);
        default:
            avc_config_free(cfg);
            return ctl_bad_option(&ctl_cmd_eval, c, argv);
        }
    }
    if (dir == NULL) {
        avc_config_free(cfg);
        return ctl_usage(&ctl_cmd_eval, "give one directory");
    }

    qs = eval_read_questions(dir, &nq);
    snprintf(path, sizeof(path), "%s/docs", dir);
    dd = opendir(path);
    if (qs == NULL || nq == 0 || dd == NULL) {
        if (dd == NULL) {
            ctl_err("cannot open %s: %s", path, strerror(errno));
        }
        eval_free_questions(qs, nq);
        if (dd) {
            closedir(dd);
        }
        avc_config_free(cfg);
        return CTL_EFAIL;
    }
    while ((de = readdir(dd)) != NULL && nfiles < EVAL_DOCS_MAX) {
        len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".txt") == 0) {
            char **f = realloc(files, (nfiles + 1) * sizeof(char *));

            if (f == NULL) {
                break;
            }
            files = f;
            files[nfiles++] = strdup(de->d_name);
        }
    }
    closedir(dd);
    qsort(files, nfiles, sizeof(char *), eval_strcmp);

    rc = ctl_env_open(&eval_env, ctl_database(database));
    if (rc != CTL_OK) {
        goto out;
    }
    rc = CTL_EFAIL;
    http = avc_http_new(eval_env.loop);
    emb = http ? avc_embedder_new(eval_env.loop, http, cfg, &err) : NULL;
    if (emb == NULL) {
        ctl_err("cannot create the embedder: %s",
                avc_strerror(http ? err : AVC_ENOMEM));
        goto out;
    }
    rt = avc_retriever_new(eval_env.loop, eval_env.db, emb, cfg);
    if (rt == NULL) {
        ctl_err("cannot create the retriever");
        goto out;
    }

    snprintf(name, sizeof(name), "eval %ld-%d", (long) time(NULL),
             (int) getpid());
    p[0] = name;
    if (eval_sql(NULL, "INSERT INTO dealerships (name) VALUES ($1)"
                 " RETURNING id", 1, p, &s) != AVC_OK)
    {
        rc = ctl_exit_code(s.err);
        goto out;
    }
    snprintf(did, sizeof(did), "%s", s.v);

    for (i = 0; i < nfiles; i++) {
        snprintf(path, sizeof(path), "%s/docs/%s", dir, files[i]);
        text = eval_slurp(path, &len);
        if (text == NULL) {
            ctl_err("cannot read %s: %s", path, strerror(errno));
            goto drop;
        }
        err = eval_ingest(emb, did, files[i], text, len, &nch, &embed_s);
        free(text);
        if (err != AVC_OK) {
            goto drop;
        }
        total += nch;
    }
    printf("eval: %zu documents, %zu chunks (1000/200), %zu questions; "
           "embedder %s (%zu dimensions), embedding %.0f chunks/s\n",
           nfiles, total, nq, avc_embedder_model(emb), avc_embedder_dim(emb),
           embed_s > 0 ? (double) total / embed_s : 0);

    for (m = 0; m < EVAL_MODES; m++) {
        if (eval_mode(rt, modes[m], mode_names[m], strtoll(did, NULL, 10), qs,
                      nq, topk, floor, repeat, verbose, &fig[m]) != AVC_OK)
        {
            goto drop;
        }
    }
    printf("\n%-26s %10s %10s %10s\n", "", "hybrid", "text only",
           "vector only");
    printf("%-26s %10.3f %10.3f %10.3f\n", "recall@1", fig[0].r1, fig[1].r1,
           fig[2].r1);
    printf("%-26s %10.3f %10.3f %10.3f\n", "recall@5", fig[0].r5, fig[1].r5,
           fig[2].r5);
    printf("%-26s %10.3f %10.3f %10.3f\n", "MRR", fig[0].mrr, fig[1].mrr,
           fig[2].mrr);
    printf("%-26s %10.3f %10.3f %10.3f\n", "negatives with no result",
           fig[0].neg, fig[1].neg, fig[2].neg);
    printf("%-26s %10.2f %10.2f %10.2f\n", "latency p50 (ms)", fig[0].p50,
           fig[1].p50, fig[2].p50);
    printf("%-26s %10.2f %10.2f %10.2f\n", "latency p99 (ms)", fig[0].p99,
           fig[1].p99, fig[2].p99);
    printf("(%zu answerable and %zu negative questions, top %zu, floor %s, "
           "%u run%s each)\n", fig[0].answerable, fig[0].negatives, topk,
           floor < 0 ? "rag.min_score" : "--min-score", repeat,
           repeat == 1 ? "" : "s");
    if (sweep) {
        printf("\nhybrid by floor:  recall@1 recall@5      MRR negatives\n");
        for (f = 0.20; f < 0.605; f += 0.02) {
            if (eval_mode(rt, AVC_RETRIEVE_HYBRID, "hybrid",
                          strtoll(did, NULL, 10), qs, nq, topk, f, 1, 0,
                          &fig[0]) != AVC_OK)
            {
                goto drop;
            }
            printf("  %.2f            %8.3f %8.3f %8.3f %9.3f\n", f,
                   fig[0].r1, fig[0].r5, fig[0].mrr, fig[0].neg);
        }
    }
    rc = CTL_OK;

drop:
    if (!keep) {
        p[0] = did;
        eval_sql(NULL, "DELETE FROM dealerships WHERE id = $1", 1, p, &s);
    } else {
        printf("kept dealership %s\n", did);
    }

out:
    avc_retriever_free(rt);
    avc_embedder_free(emb);
    avc_http_free(http);
    if (eval_env.loop) {
        ctl_env_close(&eval_env);
    }
    for (i = 0; i < nfiles; i++) {
        free(files[i]);
    }
    free(files);
    eval_free_questions(qs, nq);
    avc_config_free(cfg);
    return rc;
}
