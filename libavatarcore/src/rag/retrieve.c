/*
 * Hybrid retrieval (see avatarcore/retrieve.h for the method).
 *
 * Per dealership the retriever keeps a snapshot: the vector index, the
 * document frequencies of terms, the topic names behind the index's tags,
 * and the generation it was built for.  Snapshots are reference-counted:
 * a search on the thread pool holds one, so a reload can publish a new
 * snapshot while the old one is still being searched.
 *
 * A load reads the ready chunks a page at a time (keyset pagination on
 * the chunk id, so no page is big and none is read twice) and hands each
 * page to the thread pool: hex decoding, the index insertion and the
 * lexical analysis for the frequencies run there, one page at a time, on
 * a snapshot nobody else sees yet.  Retrievals that need the snapshot
 * wait on the load.
 *
 * A retrieval (an op): the query embedding and the first SQL statement
 * (generation + full-text search) run at the same time; then the
 * snapshot is made current if needed; the vector search runs (on the
 * thread pool for large indexes); both lists are fused and a second
 * statement reads the candidates' text, from which the text coverage is
 * computed; scores, floor, top_k, callback.
 *
 * With Pinecone as the vector store (r->pc) a snapshot holds no index,
 * only the terms and frequencies, and the vector search is a query of
 * the dealership's namespace.  Its matches are checked in PostgreSQL (a
 * third statement, before the fusion): a match whose chunk is gone is
 * left out and deleted from Pinecone, and the vectors of the full-text
 * hits Pinecone did not return are read, so that the fusion scores every
 * candidate as with the in-core index.  It sees them through a view: a
 * snapshot that shares the dealership's terms and has a small index of
 * its own.
 */
#include "rag_internal.h"

#include <avatarcore/http.h>
#include <avatarcore/index.h>
#include <avatarcore/pinecone.h>
#include <avatarcore/retrieve.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_R_RRF_K          60.0
/*
 * The most matching rows the full-text query ranks: a bound on its cost
 * whatever the query (the pruning below keeps real queries far under it)
 */
#define AVC_R_FTS_RANK_MAX_S "3000"
#define AVC_R_QUERY_MAX      8000
#define AVC_R_TOPK_MAX       100
#define AVC_R_TOPICS_MAX     32
#define AVC_R_TSQUERY_MAX    4000
/*
 * The full-text query's size: ts_rank's cost grows with its operands for
 * every matching row, so a concept brings its first (main) variants only
 */
#define AVC_R_VARIANTS_MAX   8
#define AVC_R_OPERANDS_MAX   48
/* the pruning of the full-text query, see avc_r_op_tsquery() */
#define AVC_R_FTS_DF_MIN     100
#define AVC_R_FTS_DF_SHARE   0.02
#define AVC_R_FTS_ROWS       1000
/* results kept once the question passes: score >= floor * this */
#define AVC_R_KEEP_RATIO     0.5

/*
 * The full-text query with the generation.  It is sent unnamed, so that
 * PostgreSQL plans it with the actual tsquery: a rare word then goes
 * through the GIN index, where a generic plan would scan the dealership.
 */
static const char avc_r_sql_fts[] =
    "SELECT g.generation, h.id, h.rank "
    "FROM (SELECT generation FROM dealerships WHERE id = $1) g "
    "LEFT JOIN LATERAL ("
    " SELECT m.id, ts_rank(m.tsv, to_tsquery('english', $2)) AS rank"
    " FROM ("
    "  SELECT c.id, c.tsv"
    "  FROM document_chunks c JOIN documents d"
    "   ON d.id = c.document_id AND d.dealership_id = c.dealership_id"
    "  WHERE c.dealership_id = $1 AND d.status = 'ready'"
    "   AND c.tsv @@ to_tsquery('english', $2)"
    "   AND ($3::text[] IS NULL OR c.topic = ANY ($3::text[]))"
    "  LIMIT " AVC_R_FTS_RANK_MAX_S
    " ) m ORDER BY rank DESC, m.id LIMIT $4::int"
    ") h ON true "
    "ORDER BY h.rank DESC NULLS LAST, h.id";

/* the generation alone, when there are no words to search */
static const char avc_r_sql_gen[] =
    "SELECT generation FROM dealerships WHERE id = $1";

static const char avc_r_sql_load[] =
    "SELECT c.id, c.topic,"
    " CASE WHEN c.embedding_model = $4 THEN c.embedding END,"
    " coalesce(c.title, '') || ' ' || c.content "
    "FROM document_chunks c JOIN documents d"
    " ON d.id = c.document_id AND d.dealership_id = c.dealership_id "
    "WHERE c.dealership_id = $1 AND d.status = 'ready' AND c.id > $2 "
    "ORDER BY c.id LIMIT $3::int";

/* the same without the vectors: they are in Pinecone */
static const char avc_r_sql_load_terms[] =
    "SELECT c.id, c.topic, NULL::bytea,"
    " coalesce(c.title, '') || ' ' || c.content "
    "FROM document_chunks c JOIN documents d"
    " ON d.id = c.document_id AND d.dealership_id = c.dealership_id "
    "WHERE c.dealership_id = $1 AND d.status = 'ready' AND c.id > $2 "
    "ORDER BY c.id LIMIT $3::int";

/*
 * Pinecone's matches and the full-text hits: which exist and are ready,
 * and the vectors of those in $3 (the hits Pinecone did not return)
 */
static const char avc_r_sql_check[] =
    "SELECT c.id, d.status = 'ready',"
    " CASE WHEN c.id = ANY ($3::bigint[]) AND c.embedding_model = $4"
    " THEN c.embedding END "
    "FROM document_chunks c JOIN documents d"
    " ON d.id = c.document_id AND d.dealership_id = c.dealership_id "
    "WHERE c.dealership_id = $1 AND c.id = ANY ($2::bigint[])";

static const char avc_r_sql_fetch[] =
    "SELECT c.id, c.document_id, d.filename, c.topic,"
    " coalesce(c.title, ''), c.content, c.position "
    "FROM document_chunks c JOIN documents d"
    " ON d.id = c.document_id AND d.dealership_id = c.dealership_id "
    "WHERE c.dealership_id = $1 AND c.id = ANY ($2::bigint[])"
    " AND d.status = 'ready'";

static const char avc_r_sql_insert[] =
    "INSERT INTO document_chunks (document_id, dealership_id, topic,"
    " position, title, content, embedding, embedding_model) "
    "VALUES ($1, $2, $3, $4, $5, $6, decode($7, 'hex'), $8) RETURNING id";


/* document frequencies: term key -> number of chunks holding it */

typedef struct {
    uint32_t *keys;             /* 0: empty */
    uint32_t *counts;
    size_t cap;                 /* a power of two */
    size_t n;
} avc_rdf_t;

static void
avc_rdf_free(avc_rdf_t *df)
{
    free(df->keys);
    free(df->counts);
    memset(df, 0, sizeof(*df));
}

static int
avc_rdf_grow(avc_rdf_t *df)
{
    size_t cap = df->cap ? df->cap * 2 : 1024, i, j;
    uint32_t *keys, *counts;

    keys = calloc(cap, sizeof(*keys));
    counts = calloc(cap, sizeof(*counts));
    if (keys == NULL || counts == NULL) {
        free(keys);
        free(counts);
        return AVC_ENOMEM;
    }
    for (i = 0; i < df->cap; i++) {
        if (df->keys[i] == 0) {
            continue;
        }
        for (j = df->keys[i] & (cap - 1); keys[j]; j = (j + 1) & (cap - 1)) {
            /* linear probing */
        }
        keys[j] = df->keys[i];
        counts[j] = df->counts[i];
    }
    free(df->keys);
    free(df->counts);
    df->keys = keys;
    df->counts = counts;
    df->cap = cap;
    return AVC_OK;
}

static int
avc_rdf_add(avc_rdf_t *df, uint32_t key)
{
    size_t j;

    if ((df->n + 1) * 2 > df->cap && avc_rdf_grow(df) != AVC_OK) {
        return AVC_ENOMEM;
    }
    for (j = key & (df->cap - 1); df->keys[j]; j = (j + 1) & (df->cap - 1)) {
        if (df->keys[j] == key) {
            df->counts[j]++;
            return AVC_OK;
        }
    }
    df->keys[j] = key;
    df->counts[j] = 1;
    df->n++;
    return AVC_OK;
}

static uint32_t
avc_rdf_get(const avc_rdf_t *df, uint32_t key)
{
    size_t j;

    if (df->cap == 0) {
        return 0;
    }
    for (j = key & (df->cap - 1); df->keys[j]; j = (j + 1) & (df->cap - 1)) {
        if (df->keys[j] == key) {
            return df->counts[j];
        }
    }
    return 0;
}


/*
 * Terms: what the text score counts, as 32-bit keys.  A dealership has
 * some 10^4-10^5 distinct terms, so a key stands for one term but with a
 * chance of about 10^-5 per comparison: harmless for a score.
 */

static uint32_t
avc_r_term_key(char tag, const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    uint32_t k;
    size_t i;

    h ^= (unsigned char) tag;
    h *= 1099511628211ULL;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 1099511628211ULL;
    }
    k = (uint32_t) (h ^ (h >> 32));
    return k ? k : 1;
}

static uint32_t
avc_r_concept_key(int32_t c)
{
    const char *name = avc__lx_concept_name(c);

    return avc_r_term_key('=', name, strlen(name));
}

static int
avc_r_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}

/*
 * The set of terms of an analysed text: content-word stems and concepts,
 * sorted, unique, in *out (n in *nout; the array is realloc'd as needed).
 */
static int
avc_r_term_set(const avc__lx_t *lx, uint32_t **out, size_t *cap,
    size_t *nout)
{
    size_t i, n = 0, k;
    uint32_t *s = *out;

    if (*cap < 2 * lx->n + 1) {
        s = realloc(*out, (2 * lx->n + 1) * sizeof(*s));
        if (s == NULL) {
            return AVC_ENOMEM;
        }
        *out = s;
        *cap = 2 * lx->n + 1;
    }
    for (i = 0; i < lx->n; i++) {
        if (lx->words[i].concept >= 0) {
            s[n++] = avc_r_concept_key(lx->words[i].concept);
        }
        if (!(lx->words[i].cls & AVC__LX_STOP)) {
            s[n++] = avc_r_term_key('w', avc__lx_sstr(lx, i),
                                    lx->words[i].slen);
        }
    }
    qsort(s, n, sizeof(*s), avc_r_u32_cmp);
    for (i = 0, k = 0; i < n; i++) {
        if (k == 0 || s[k - 1] != s[i]) {
            s[k++] = s[i];
        }
    }
    *nout = k;
    return AVC_OK;
}

static int
avc_r_set_has(const uint32_t *s, size_t n, uint32_t key)
{
    return key && bsearch(&key, s, n, sizeof(*s), avc_r_u32_cmp) != NULL;
}


/*
 * Snapshots.  Besides the index and the frequencies, each chunk's term
 * set is kept (about 110 keys of 4 bytes for 1,000 characters: some
 * 45 MB per 100,000 chunks), so that scoring a candidate needs neither
 * its text nor a second analysis.
 */

typedef struct avc_rsnap_s {
    unsigned refs;
    int64_t gen;
    avc_index_t *ix;
    avc_rdf_t df;
    size_t nchunks;             /* chunks counted in df */
    size_t skipped;             /* ready chunks without a usable vector */
    char **topics;              /* tag -> name */
    size_t ntopics;
    uint32_t *terms;            /* the chunks' term sets, end to end */
    size_t terms_len;
    size_t terms_cap;
    int64_t *set_ids;           /* chunk id -> its set: open addressing */
    uint32_t *set_off;
    uint32_t *set_len;
    size_t sets_cap;            /* a power of two */
    size_t nsets;
    /*
     * A view (one op's, Pinecone): the parent's terms and frequencies,
     * borrowed while it holds a reference, and an index of its own
     */
    struct avc_rsnap_s *parent;
} avc_rsnap_t;

static void
avc_rsnap_unref(avc_rsnap_t *s)
{
    size_t i;

    if (s == NULL || --s->refs > 0) {
        return;
    }
    if (s->parent) {
        avc_index_free(s->ix);
        avc_rsnap_unref(s->parent);
        free(s);
        return;
    }
    avc_index_free(s->ix);
    avc_rdf_free(&s->df);
    for (i = 0; i < s->ntopics; i++) {
        free(s->topics[i]);
    }
    free(s->topics);
    free(s->terms);
    free(s->set_ids);
    free(s->set_off);
    free(s->set_len);
    free(s);
}

static avc_rsnap_t *
avc_rsnap_ref(avc_rsnap_t *s)
{
    if (s) {
        s->refs++;
    }
    return s;
}

static size_t
avc_rsnap_slot(int64_t id, size_t cap, const int64_t *ids)
{
    uint64_t h = (uint64_t) id * 0x9e3779b97f4a7c15ULL;
    size_t j;

    for (j = (size_t) (h >> 32) & (cap - 1); ids[j] && ids[j] != id;
         j = (j + 1) & (cap - 1))
    {
        /* linear probing; ids are positive, 0 is empty */
    }
    return j;
}

static int
avc_rsnap_sets_grow(avc_rsnap_t *s)
{
    size_t cap = s->sets_cap ? s->sets_cap * 2 : 1024, i, j;
    int64_t *ids;
    uint32_t *off, *len;

    ids = calloc(cap, sizeof(*ids));
    off = calloc(cap, sizeof(*off));
    len = calloc(cap, sizeof(*len));
    if (ids == NULL || off == NULL || len == NULL) {
        free(ids);
        free(off);
        free(len);
        return AVC_ENOMEM;
    }
    for (i = 0; i < s->sets_cap; i++) {
        if (s->set_ids[i]) {
            j = avc_rsnap_slot(s->set_ids[i], cap, ids);
            ids[j] = s->set_ids[i];
            off[j] = s->set_off[i];
            len[j] = s->set_len[i];
        }
    }
    free(s->set_ids);
    free(s->set_off);
    free(s->set_len);
    s->set_ids = ids;
    s->set_off = off;
    s->set_len = len;
    s->sets_cap = cap;
    return AVC_OK;
}

/* keep the term set of chunk id and count its terms */
static int
avc_rsnap_add_set(avc_rsnap_t *s, int64_t id, const uint32_t *set,
    size_t n)
{
    size_t j, cap, k;
    uint32_t *t;

    if (id <= 0 || s->terms_len + n > UINT32_MAX) {
        return AVC_OK;          /* not a chunk id; or far beyond any use */
    }
    if ((s->nsets + 1) * 2 > s->sets_cap && avc_rsnap_sets_grow(s) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    if (s->terms_len + n > s->terms_cap) {
        cap = s->terms_cap ? s->terms_cap : 4096;
        while (cap < s->terms_len + n) {
            cap *= 2;
        }
        t = realloc(s->terms, cap * sizeof(*t));
        if (t == NULL) {
            return AVC_ENOMEM;
        }
        s->terms = t;
        s->terms_cap = cap;
    }
    j = avc_rsnap_slot(id, s->sets_cap, s->set_ids);
    if (s->set_ids[j] == id) {
        return AVC_OK;          /* a page boundary never repeats a row */
    }
    for (k = 0; k < n; k++) {
        if (avc_rdf_add(&s->df, set[k]) != AVC_OK) {
            return AVC_ENOMEM;
        }
    }
    memcpy(s->terms + s->terms_len, set, n * sizeof(*set));
    s->set_ids[j] = id;
    s->set_off[j] = (uint32_t) s->terms_len;
    s->set_len[j] = (uint32_t) n;
    s->terms_len += n;
    s->nsets++;
    s->nchunks++;
    return AVC_OK;
}

/* the term set of chunk id, or NULL (n 0) when the snapshot lacks it */
static const uint32_t *
avc_rsnap_set(const avc_rsnap_t *s, int64_t id, size_t *n)
{
    size_t j;

    *n = 0;
    if (s->sets_cap == 0) {
        return NULL;
    }
    j = avc_rsnap_slot(id, s->sets_cap, s->set_ids);
    if (s->set_ids[j] != id) {
        return NULL;
    }
    *n = s->set_len[j];
    return s->terms + s->set_off[j];
}

static size_t
avc_rsnap_memory(const avc_rsnap_t *s)
{
    return (s->ix ? avc_index_memory(s->ix) : 0)
           + s->df.cap * 2 * sizeof(uint32_t)
           + s->terms_cap * sizeof(uint32_t)
           + s->sets_cap * (sizeof(int64_t) + 2 * sizeof(uint32_t));
}

/* the tag of a topic name, adding it when add is set; -1 when absent */
static long
avc_rsnap_tag(avc_rsnap_t *s, const char *topic, int add)
{
    size_t i;
    char **t, *c;

    for (i = 0; i < s->ntopics; i++) {
        if (strcmp(s->topics[i], topic) == 0) {
            return (long) i;
        }
    }
    if (!add) {
        return -1;
    }
    t = realloc(s->topics, (s->ntopics + 1) * sizeof(*t));
    if (t == NULL) {
        return -1;
    }
    s->topics = t;
    c = strdup(topic);
    if (c == NULL) {
        return -1;
    }
    s->topics[s->ntopics] = c;
    return (long) s->ntopics++;
}


/* the retriever */

typedef struct avc_rds_s avc_rds_t;
typedef struct avc_rload_s avc_rload_t;

/* a re-embedding of a dealership's stale chunks (src/rag/reembed.c) */
typedef struct avc_rreembed_s avc_rreembed_t;

struct avc_rreembed_s {
    avc_rreembed_t *next;
    avc_retriever_t *r;
    int64_t did;
    avc__reembed_t *re;
    avc_retriever_reembed_cb cb;    /* a caller of avc_retriever_reembed */
    void *data;
};

struct avc_rds_s {
    avc_rds_t *prev;            /* most recently used first */
    avc_rds_t *next;
    int64_t id;
    avc_rsnap_t *snap;          /* current, or NULL */
    avc_rload_t *load;          /* running, or NULL */
};

struct avc_retriever_s {
    avc_loop_t *loop;
    avc_db_t *db;
    avc_embedder_t *emb;
    int mode;
    double min_score;
    double w_vector;
    double w_text;
    double cos_low;
    double cos_high;
    int order_by_score;
    unsigned candidates;
    unsigned fts_timeout;
    unsigned max_indexes;
    unsigned offload_above;
    unsigned load_page;
    unsigned index_flags;
    avc_rds_t *ds;              /* LRU list */
    size_t nds;
    avc_retrieve_op_t *ops;
    unsigned long long loads;
    unsigned long long queries;
    int freeing;
    /* Pinecone as the vector store, or NULL: the in-core index */
    avc_http_t *http;
    avc_pinecone_t *pc;
    avc_retrieve_forget_t *forgets;     /* deletions running there */
    unsigned long long fallbacks;
    unsigned long long orphans;
    /* re-embeddings running (the in-core index only) */
    avc_rreembed_t *reembeds;
    unsigned long long reembedded;
};

/* a deletion in the vector store (avc_retriever_forget) */
struct avc_retrieve_forget_s {
    avc_retrieve_forget_t *prev;    /* in r->forgets */
    avc_retrieve_forget_t *next;
    avc_retriever_t *r;
    int64_t did;
    size_t n;                   /* vectors, 0: the whole namespace */
    avc_retrieve_forget_cb cb;  /* NULL: nobody waits */
    void *data;
};

/* one query term of the text score */
typedef struct {
    uint32_t key;
    uint32_t alt;               /* the concept whose phrase holds it, or 0 */
    double weight;
} avc_rterm_t;

/* an operand of the full-text query: its text and its term's key */
typedef struct {
    size_t off;
    uint32_t key;
} avc_rop_t;

/* a fused candidate */
typedef struct {
    int64_t id;
    int vrank;                  /* 1-based rank in each list, 0: absent */
    int trank;
    float cosine;
    int has_cosine;
    double rrf;
    double coverage;
    double score;
    int row;                    /* in the fetch result, -1: not read */
} avc_rcand_t;

struct avc_rag_results_s {
    avc_rcand_t **items;
    size_t n;
    const avc_db_res_t *res;
    int64_t gen;
    double best;
};

struct avc_retrieve_op_s {
    avc_retrieve_op_t *prev;    /* in r->ops */
    avc_retrieve_op_t *next;
    avc_retrieve_op_t *wnext;   /* waiting for a load */
    avc_rload_t *waiting;
    avc_retriever_t *r;
    int dead;                   /* cancelled: callbacks only clean up */
    int mode;

    int64_t did;
    char did_s[24];
    char *query;
    size_t top_k;
    double min_score;
    char **topics;
    size_t ntopics;
    char *topics_lit;           /* '{a,b}' or NULL */
    avc_rterm_t *terms;
    size_t nterms;
    avc_rop_t *ops;             /* full-text operands, in opbuf */
    size_t nops;
    char *opbuf;
    int fts_deferred;           /* no snapshot at the start: ask later */
    int64_t fts_fallback_gen;   /* a snapshot's, if the search times out */

    avc_embed_op_t *eop;
    int embed_done;
    float *qvec;
    size_t dim;

    avc_db_query_t *q;
    int fts_done;
    int64_t gen;
    int64_t *fts_ids;
    size_t nfts;

    avc_rsnap_t *snap;
    int searching;              /* vector search on the thread pool */
    int pc_busy;                /* a Pinecone query runs for the op */
    int64_t *vec_ids;
    float *vec_scores;
    size_t kvec;                /* asked for */
    size_t nvec;
    uint32_t *tags;
    size_t ntags;
    int filter_none;            /* a topic filter no indexed topic meets */

    avc_rcand_t *cands;         /* fused; then the chosen, in order */
    size_t ncands;
    double best;

    avc_retrieve_cb cb;
    void *data;
};

struct avc_rload_s {
    avc_retriever_t *r;         /* NULL once abandoned */
    avc_rds_t *ds;
    avc_rsnap_t *snap;          /* being built: only the load touches it */
    int64_t did;
    char did_s[24];
    int64_t last_id;
    avc_db_query_t *q;
    int job;                    /* a page on the thread pool */
    int rc;
    unsigned ix_flags;
    size_t dim;                 /* of the stored vectors, 0: not known */
    /* the page handed to the thread pool */
    size_t nrows;
    int64_t *ids;
    uint32_t *tags;
    char **hex;
    char **text;
    size_t skipped;
    avc_retrieve_op_t *waiters;
};

static void avc_r_op_prepare(avc_retrieve_op_t *op);
static void avc_r_op_search(avc_retrieve_op_t *op);
static void avc_r_on_fts(int err, avc_db_res_t *res, void *data);
static void avc_r_op_finish(avc_retrieve_op_t *op, int err,
                            const avc_rag_results_t *res);
static void avc_rload_next(avc_rload_t *ld);

static int
avc_r_bad(const char *key, const char *why)
{
    avc_log(AVC_LOG_ERR, "rag: bad setting %s: %s", key, why);
    return AVC_EINVAL;
}

static int
avc_r_get_double(const avc_config_t *cfg, const char *key, double def,
    double min, double max, double *out)
{
    const char *s = avc_config_get(cfg, key, NULL);
    char *end;
    double v;

    if (s == NULL) {
        *out = def;
        return AVC_OK;
    }
    v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= min && v <= max)) {
        return AVC_EINVAL;
    }
    *out = v;
    return AVC_OK;
}

static int avc_r_pinecone_new(avc_retriever_t *r, const avc_config_t *cfg);

avc_retriever_t *
avc_retriever_new(avc_loop_t *loop, avc_db_t *db, avc_embedder_t *emb,
    const avc_config_t *cfg)
{
    avc_retriever_t *r;
    const char *s;
    long long v;
    int local, rc = AVC_OK;

    if (loop == NULL || db == NULL || emb == NULL || cfg == NULL) {
        return NULL;
    }
    if (avc__lx_init() != AVC_OK) {
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    r->loop = loop;
    r->db = db;
    r->emb = emb;
    local = strcmp(avc_embedder_provider(emb), "local") == 0;

    if (avc_r_get_double(cfg, "rag.min_score", 0.38, 0, 1, &r->min_score)
        != AVC_OK)
    {
        rc = avc_r_bad("rag.min_score", "not a number in 0-1");
    }
    if (avc_r_get_double(cfg, "rag.cos_low", local ? 0.05 : 0.15, -1, 1,
                         &r->cos_low) != AVC_OK
        || avc_r_get_double(cfg, "rag.cos_high", local ? 0.45 : 0.60, -1, 1,
                            &r->cos_high) != AVC_OK
        || r->cos_high <= r->cos_low)
    {
        rc = avc_r_bad("rag.cos_low/rag.cos_high",
                       "not numbers in -1-1 with low < high");
    }
    if (avc_r_get_double(cfg, "rag.vector_weight", 0.5, 0, 1, &r->w_vector)
        != AVC_OK)
    {
        rc = avc_r_bad("rag.vector_weight", "not a number in 0-1");
    }
    r->w_text = 1 - r->w_vector;
    s = avc_config_get(cfg, "rag.order", "rrf");
    if (strcmp(s, "rrf") == 0 || strcmp(s, "score") == 0) {
        r->order_by_score = strcmp(s, "score") == 0;
    } else {
        rc = avc_r_bad("rag.order", "not rrf or score");
    }
    if (avc_config_get_int(cfg, "rag.candidates", 50, 5, 500, &v) != AVC_OK)
    {
        rc = avc_r_bad("rag.candidates", "not 5-500");
    }
    r->candidates = (unsigned) v;
    if (avc_config_get_int(cfg, "rag.fts_timeout", 250, 10, 60000, &v)
        != AVC_OK)
    {
        rc = avc_r_bad("rag.fts_timeout", "not 10-60000 ms");
    }
    r->fts_timeout = (unsigned) v;
    if (avc_config_get_int(cfg, "rag.max_indexes", 64, 1, 100000, &v)
        != AVC_OK)
    {
        rc = avc_r_bad("rag.max_indexes", "not 1-100000");
    }
    r->max_indexes = (unsigned) v;
    if (avc_config_get_int(cfg, "rag.offload_above", 20000, 0, 1000000000,
                           &v) != AVC_OK)
    {
        rc = avc_r_bad("rag.offload_above", "not 0-1000000000");
    }
    r->offload_above = (unsigned) v;
    if (avc_config_get_int(cfg, "rag.load_page", 500, 10, 100000, &v)
        != AVC_OK)
    {
        rc = avc_r_bad("rag.load_page", "not 10-100000");
    }
    r->load_page = (unsigned) v;
    s = avc_config_get(cfg, "rag.index_fp16", "off");
    if (strcmp(s, "on") == 0) {
        r->index_flags = AVC_INDEX_FP16;
    } else if (strcmp(s, "off") != 0) {
        rc = avc_r_bad("rag.index_fp16", "not on or off");
    }
    s = avc_config_get(cfg, "vector_store.provider", "postgres");
    if (strcmp(s, "pinecone") == 0) {
        if (rc == AVC_OK) {
            rc = avc_r_pinecone_new(r, cfg);
        }
    } else if (strcmp(s, "postgres") != 0) {
        rc = avc_r_bad("vector_store.provider", "not postgres or pinecone");
    }
    if (rc == AVC_OK) {
        if (avc_db_statement(db, "avc_rag_gen", avc_r_sql_gen) != AVC_OK
            || avc_db_statement(db, "avc_rag_load", avc_r_sql_load)
               != AVC_OK
            || avc_db_statement(db, "avc_rag_fetch", avc_r_sql_fetch)
               != AVC_OK
            || (r->pc
                && (avc_db_statement(db, "avc_rag_load_terms",
                                     avc_r_sql_load_terms) != AVC_OK
                    || avc_db_statement(db, "avc_rag_check",
                                        avc_r_sql_check) != AVC_OK)))
        {
            avc_log(AVC_LOG_ERR, "rag: cannot register the statements");
            rc = AVC_ENOMEM;
        }
    }
    if (rc != AVC_OK) {
        avc_pinecone_free(r->pc);
        avc_http_free(r->http);
        free(r);
        return NULL;
    }
    return r;
}

/*
 * Pinecone as the vector store: a client of its own, on an HTTP handle of
 * its own (the retriever is given none), idle but for the store's work.
 */
static int
avc_r_pinecone_new(avc_retriever_t *r, const avc_config_t *cfg)
{
    int err = AVC_ENOMEM;

    r->http = avc_http_new(r->loop);
    if (r->http) {
        r->pc = avc_pinecone_new(r->loop, r->http, cfg, &err);
    }
    if (r->pc == NULL) {
        avc_log(AVC_LOG_ERR, "rag: cannot use Pinecone as the vector "
                "store: %s", avc_strerror(err));
        return err;
    }
    return AVC_OK;
}

void
avc_retriever_set_mode(avc_retriever_t *r, avc_retrieve_mode_t mode)
{
    if (mode == AVC_RETRIEVE_HYBRID || mode == AVC_RETRIEVE_TEXT
        || mode == AVC_RETRIEVE_VECTOR)
    {
        r->mode = mode;
    }
}


/* dealership states */

static void
avc_rds_unlink(avc_retriever_t *r, avc_rds_t *ds)
{
    if (ds->prev) {
        ds->prev->next = ds->next;
    } else {
        r->ds = ds->next;
    }
    if (ds->next) {
        ds->next->prev = ds->prev;
    }
    ds->prev = ds->next = NULL;
}

static void
avc_rds_push(avc_retriever_t *r, avc_rds_t *ds)
{
    ds->prev = NULL;
    ds->next = r->ds;
    if (r->ds) {
        r->ds->prev = ds;
    }
    r->ds = ds;
}

static void
avc_rds_free(avc_retriever_t *r, avc_rds_t *ds)
{
    avc_rds_unlink(r, ds);
    avc_rsnap_unref(ds->snap);
    r->nds--;
    free(ds);
}

/* drop the least recently used states beyond the cap (not while loading) */
static void
avc_rds_evict(avc_retriever_t *r)
{
    avc_rds_t *ds, *prev;

    for (ds = r->ds; ds && ds->next; ds = ds->next) {
        /* to the tail */
    }
    for ( ; ds && r->nds > r->max_indexes; ds = prev) {
        prev = ds->prev;
        if (ds->load == NULL) {
            avc_rds_free(r, ds);
        }
    }
}

static avc_rds_t *
avc_rds_get(avc_retriever_t *r, int64_t did)
{
    avc_rds_t *ds;

    for (ds = r->ds; ds; ds = ds->next) {
        if (ds->id == did) {
            avc_rds_unlink(r, ds);
            avc_rds_push(r, ds);
            return ds;
        }
    }
    ds = calloc(1, sizeof(*ds));
    if (ds == NULL) {
        return NULL;
    }
    ds->id = did;
    avc_rds_push(r, ds);
    r->nds++;
    avc_rds_evict(r);
    return ds;
}

void
avc_retriever_invalidate(avc_retriever_t *r, int64_t did)
{
    avc_rds_t *ds;

    for (ds = r->ds; ds; ds = ds->next) {
        if (did == 0 || ds->id == did) {
            avc_rsnap_unref(ds->snap);
            ds->snap = NULL;
        }
    }
}

unsigned long long
avc_retriever_stat(const avc_retriever_t *r, avc_retriever_stat_t which)
{
    unsigned long long v = 0;
    avc_rds_t *ds;

    switch (which) {
    case AVC_RETRIEVER_LOADS:
        return r->loads;
    case AVC_RETRIEVER_QUERIES:
        return r->queries;
    case AVC_RETRIEVER_FALLBACKS:
        return r->fallbacks;
    case AVC_RETRIEVER_ORPHANS:
        return r->orphans;
    case AVC_RETRIEVER_REEMBEDDED:
        return r->reembedded;
    default:
        break;
    }
    for (ds = r->ds; ds; ds = ds->next) {
        if (ds->snap == NULL) {
            continue;
        }
        if (which == AVC_RETRIEVER_INDEXES) {
            v++;
        } else if (which == AVC_RETRIEVER_VECTORS && ds->snap->ix) {
            v += avc_index_size(ds->snap->ix);
        } else if (which == AVC_RETRIEVER_MEMORY) {
            v += avc_rsnap_memory(ds->snap);
        }
    }
    return v;
}


/* loads */

static void
avc_rload_page_free(avc_rload_t *ld)
{
    size_t i;

    for (i = 0; i < ld->nrows; i++) {
        free(ld->hex[i]);
        free(ld->text[i]);
    }
    free(ld->ids);
    free(ld->tags);
    free(ld->hex);
    free(ld->text);
    ld->ids = NULL;
    ld->tags = NULL;
    ld->hex = NULL;
    ld->text = NULL;
    ld->nrows = 0;
}

static void
avc_rload_free(avc_rload_t *ld)
{
    avc_rload_page_free(ld);
    avc_rsnap_unref(ld->snap);
    free(ld);
}

/*
 * Chunks without a vector of the embedder's model (another model made
 * theirs, or none was stored) are invisible to the vector search: give
 * them one, once per dealership at a time.  The bump of the generation at
 * the end makes every worker load the index again.
 */
static void
avc_r_reembedded(int err, size_t done, void *data)
{
    avc_rreembed_t *e = data, **pp;
    avc_retriever_t *r = e->r;

    r->reembedded += done;
    for (pp = &r->reembeds; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    if (e->cb) {
        e->cb(err, done, e->data);
    }
    free(e);
}

/* the dealership's re-embedding, started unless one runs; NULL: ENOMEM */
static avc_rreembed_t *
avc_r_reembed(avc_retriever_t *r, int64_t did)
{
    avc_rreembed_t *e;

    for (e = r->reembeds; e; e = e->next) {
        if (e->did == did) {
            return e;
        }
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->r = r;
    e->did = did;
    e->re = avc__reembed_start(r->loop, r->db, r->emb, did,
                               avc_r_reembedded, e);
    if (e->re == NULL) {
        free(e);
        return NULL;
    }
    e->next = r->reembeds;
    r->reembeds = e;
    return e;
}

int
avc_retriever_reembed(avc_retriever_t *r, int64_t dealership_id,
    avc_retriever_reembed_cb cb, void *data)
{
    avc_rreembed_t *e;

    if (r == NULL || cb == NULL || dealership_id <= 0) {
        return AVC_EINVAL;
    }
    if (r->emb == NULL || r->pc || r->freeing) {
        return AVC_ESTATE;
    }
    for (e = r->reembeds; e; e = e->next) {
        if (e->did == dealership_id && e->cb) {
            return AVC_EBUSY;
        }
    }
    e = avc_r_reembed(r, dealership_id);
    if (e == NULL) {
        return AVC_ENOMEM;
    }
    e->cb = cb;
    e->data = data;
    return AVC_OK;
}

/* the end of a load: publish or fail, then wake the waiters */
static void
avc_rload_end(avc_rload_t *ld, int rc)
{
    avc_retriever_t *r = ld->r;
    avc_retrieve_op_t *op, *next;
    avc_rds_t *ds = ld->ds;

    ds->load = NULL;
    if (rc == AVC_OK) {
        ld->snap->skipped = ld->skipped;
        if (ld->snap->ix) {
            /* give back what doubling left over; failing only keeps it */
            (void) avc_index_reserve(ld->snap->ix,
                                     avc_index_size(ld->snap->ix));
        }
        avc_rsnap_unref(ds->snap);
        ds->snap = ld->snap;
        ld->snap = NULL;
        r->loads++;
        if (ds->snap->skipped > 0 && r->pc == NULL && r->emb
            && !r->freeing)
        {
            (void) avc_r_reembed(r, ds->id);
        }
        if (r->pc) {
            avc_log(AVC_LOG_INFO, "rag: dealership %" PRId64 ": terms of "
                    "%zu chunks loaded (generation %" PRId64 "), vectors "
                    "in Pinecone", ds->id, ds->snap->nchunks,
                    ds->snap->gen);
        } else {
            avc_log(AVC_LOG_INFO, "rag: dealership %" PRId64 ": index of "
                    "%zu vectors loaded (generation %" PRId64 ", %zu "
                    "chunks without a vector of model %s)", ds->id,
                    ds->snap->ix ? avc_index_size(ds->snap->ix) : 0,
                    ds->snap->gen, ds->snap->skipped,
                    avc_embedder_model(r->emb));
        }
    } else {
        avc_log(AVC_LOG_WARN, "rag: dealership %" PRId64 ": index load "
                "failed: %s", ds->id, avc_strerror(rc));
    }
    op = ld->waiters;
    ld->waiters = NULL;
    avc_rload_free(ld);
    for ( ; op; op = next) {
        next = op->wnext;
        op->wnext = NULL;
        op->waiting = NULL;
        if (rc != AVC_OK) {
            avc_r_op_finish(op, rc, NULL);
        } else {
            avc_r_op_prepare(op);
        }
    }
    avc_rds_evict(r);
}

/* the page job, on the thread pool: touches only ld's page and snapshot */
static void
avc_rload_work(void *arg)
{
    avc_rload_t *ld = arg;
    avc_rsnap_t *s = ld->snap;
    uint32_t *set = NULL;
    size_t setcap = 0, nset, i, hl;
    float *vec = NULL;
    avc__lx_t lx;
    int rc = AVC_OK;

    avc__lx_init_struct(&lx);
    for (i = 0; i < ld->nrows && rc == AVC_OK; i++) {
        if (ld->hex[i] && ld->hex[i][0]) {
            hl = strlen(ld->hex[i]);
            if (ld->dim == 0 && hl > 2 && (hl - 2) % 8 == 0) {
                ld->dim = (hl - 2) / 8;
            }
            if (ld->dim && s->ix == NULL) {
                s->ix = avc_index_new(ld->dim, ld->ix_flags);
                if (s->ix == NULL) {
                    rc = AVC_ENOMEM;
                    break;
                }
            }
            if (vec == NULL && ld->dim) {
                vec = malloc(ld->dim * sizeof(float));
                if (vec == NULL) {
                    rc = AVC_ENOMEM;
                    break;
                }
            }
            if (ld->dim && hl == 2 + 8 * ld->dim
                && avc_rag_vector_parse(ld->hex[i], vec, ld->dim) == AVC_OK)
            {
                rc = avc_index_add(s->ix, ld->ids[i], ld->tags[i], vec);
                if (rc == AVC_EINVAL) {
                    rc = AVC_OK;
                    ld->skipped++;
                }
            } else {
                ld->skipped++;
            }
        } else {
            ld->skipped++;
        }
        if (rc != AVC_OK) {
            break;
        }
        lx.n = 0;
        lx.arena_len = 0;
        rc = avc__lx_analyze(&lx, ld->text[i], strlen(ld->text[i]));
        if (rc == AVC_OK) {
            rc = avc_r_term_set(&lx, &set, &setcap, &nset);
        }
        if (rc == AVC_OK) {
            rc = avc_rsnap_add_set(s, ld->ids[i], set, nset);
        }
    }
    avc__lx_free(&lx);
    free(set);
    free(vec);
    ld->rc = rc;
}

static void
avc_rload_work_done(void *arg, int status)
{
    avc_rload_t *ld = arg;
    int full = ld->nrows == (ld->r ? ld->r->load_page : 0);

    ld->job = 0;
    avc_rload_page_free(ld);
    if (ld->r == NULL) {
        avc_rload_free(ld);
        return;
    }
    if (status != AVC_OK || ld->rc != AVC_OK) {
        avc_rload_end(ld, status != AVC_OK ? status : ld->rc);
        return;
    }
    if (full) {
        avc_rload_next(ld);
        return;
    }
    avc_rload_end(ld, AVC_OK);
}

static void
avc_rload_page(int err, avc_db_res_t *res, void *data)
{
    avc_rload_t *ld = data;
    avc_rsnap_t *s = ld->snap;
    size_t n, i;
    long tag;
    int rc;

    ld->q = NULL;
    if (ld->r == NULL) {
        avc_rload_free(ld);
        return;
    }
    if (err != AVC_OK) {
        if (err == AVC_EDB) {
            avc_log(AVC_LOG_WARN, "rag: index load: %s",
                    avc_db_res_error(res));
        }
        avc_rload_end(ld, err);
        return;
    }
    n = (size_t) avc_db_res_rows(res);
    if (n == 0) {
        avc_rload_end(ld, AVC_OK);
        return;
    }
    /* copies: the thread pool must not touch the result */
    ld->ids = calloc(n, sizeof(int64_t));
    ld->tags = calloc(n, sizeof(uint32_t));
    ld->hex = calloc(n, sizeof(char *));
    ld->text = calloc(n, sizeof(char *));
    if (ld->ids == NULL || ld->tags == NULL || ld->hex == NULL
        || ld->text == NULL)
    {
        avc_rload_page_free(ld);
        avc_rload_end(ld, AVC_ENOMEM);
        return;
    }
    ld->nrows = n;
    for (i = 0; i < n; i++) {
        ld->ids[i] = strtoll(avc_db_res_value(res, (int) i, 0), NULL, 10);
        tag = avc_rsnap_tag(s, avc_db_res_value(res, (int) i, 1), 1);
        ld->tags[i] = tag < 0 ? UINT32_MAX : (uint32_t) tag;
        if (!avc_db_res_isnull(res, (int) i, 2)) {
            ld->hex[i] = strdup(avc_db_res_value(res, (int) i, 2));
        }
        ld->text[i] = strdup(avc_db_res_value(res, (int) i, 3));
        if (tag < 0 || ld->text[i] == NULL
            || (ld->hex[i] == NULL && !avc_db_res_isnull(res, (int) i, 2)))
        {
            avc_rload_page_free(ld);
            avc_rload_end(ld, AVC_ENOMEM);
            return;
        }
    }
    ld->last_id = ld->ids[n - 1];
    ld->rc = AVC_OK;
    ld->job = 1;
    rc = avc_offload(ld->r->loop, avc_rload_work, avc_rload_work_done, ld);
    if (rc != AVC_OK) {
        ld->job = 0;
        avc_rload_page_free(ld);
        avc_rload_end(ld, rc);
    }
}

static void
avc_rload_next(avc_rload_t *ld)
{
    char last[24], page[16];
    const char *p[4];

    snprintf(last, sizeof(last), "%" PRId64, ld->last_id);
    snprintf(page, sizeof(page), "%u", ld->r->load_page);
    p[0] = ld->did_s;
    p[1] = last;
    p[2] = page;
    p[3] = avc_embedder_model(ld->r->emb);
    /* loading is bulk work: a generous deadline */
    ld->q = ld->r->pc
            ? avc_db_query(ld->r->db, "avc_rag_load_terms", 1, 3, p, 60000,
                           avc_rload_page, ld)
            : avc_db_query(ld->r->db, "avc_rag_load", 1, 4, p, 60000,
                           avc_rload_page, ld);
    if (ld->q == NULL) {
        avc_rload_end(ld, AVC_ENOMEM);
    }
}

static int
avc_rload_start(avc_retriever_t *r, avc_rds_t *ds, int64_t gen)
{
    avc_rload_t *ld;

    ld = calloc(1, sizeof(*ld));
    if (ld == NULL) {
        return AVC_ENOMEM;
    }
    ld->snap = calloc(1, sizeof(avc_rsnap_t));
    if (ld->snap == NULL) {
        free(ld);
        return AVC_ENOMEM;
    }
    ld->snap->refs = 1;
    ld->snap->gen = gen;
    ld->r = r;
    ld->ds = ds;
    ld->ix_flags = r->index_flags;
    ld->did = ds->id;
    snprintf(ld->did_s, sizeof(ld->did_s), "%" PRId64, ds->id);
    ld->last_id = 0;
    ds->load = ld;
    avc_rload_next(ld);
    return AVC_OK;
}

/* the retriever goes: a page on the thread pool frees the load later */
static void
avc_rload_abandon(avc_rload_t *ld)
{
    avc_db_query_t *q = ld->q;

    ld->r = NULL;
    ld->ds->load = NULL;
    if (q) {
        ld->q = NULL;
        /* its callback sees r == NULL and frees the load */
        avc_db_cancel(q);
        return;
    }
    if (!ld->job) {
        avc_rload_free(ld);
    }
}


/* ops */

static void
avc_r_op_free(avc_retrieve_op_t *op)
{
    size_t i;

    for (i = 0; i < op->ntopics; i++) {
        free(op->topics[i]);
    }
    free(op->topics);
    free(op->topics_lit);
    free(op->query);
    free(op->terms);
    free(op->ops);
    free(op->opbuf);
    free(op->qvec);
    free(op->fts_ids);
    free(op->vec_ids);
    free(op->vec_scores);
    free(op->tags);
    free(op->cands);
    avc_rsnap_unref(op->snap);
    free(op);
}

static void
avc_r_op_unwait(avc_retrieve_op_t *op)
{
    avc_retrieve_op_t **pp;

    if (op->waiting == NULL) {
        return;
    }
    for (pp = &op->waiting->waiters; *pp; pp = &(*pp)->wnext) {
        if (*pp == op) {
            *pp = op->wnext;
            break;
        }
    }
    op->wnext = NULL;
    op->waiting = NULL;
}

/* stop everything the op has running; it calls nothing afterwards */
static void
avc_r_op_kill(avc_retrieve_op_t *op)
{
    avc_retriever_t *r = op->r;
    avc_embed_op_t *eop = op->eop;
    avc_db_query_t *q = op->q;

    op->dead = 1;
    if (r) {
        if (op->prev) {
            op->prev->next = op->next;
        } else {
            r->ops = op->next;
        }
        if (op->next) {
            op->next->prev = op->prev;
        }
        op->prev = op->next = NULL;
    }
    op->eop = NULL;
    op->q = NULL;
    if (op->pc_busy && r && r->pc) {
        op->pc_busy = 0;
        avc_pinecone_cancel(r->pc, op);
    }
    avc_embed_cancel(eop);
    /* calls its callback at once, which sees dead and returns */
    avc_db_cancel(q);
    avc_r_op_unwait(op);
}

static void
avc_r_op_finish(avc_retrieve_op_t *op, int err, const avc_rag_results_t *res)
{
    avc_retrieve_cb cb = op->cb;
    void *data = op->data;

    avc_r_op_kill(op);
    if (op->r && err == AVC_OK) {
        op->r->queries++;
    }
    cb(err, err == AVC_OK ? res : NULL, data);
    if (!op->searching) {
        avc_r_op_free(op);
    }
}

void
avc_retrieve_cancel(avc_retrieve_op_t *op)
{
    if (op == NULL || op->dead) {
        return;
    }
    avc_r_op_kill(op);
    if (!op->searching) {
        avc_r_op_free(op);
    }
}

/*
 * The query's terms for the text score, and the operands of its
 * full-text query: every content word, then the main variants of the F&I
 * concepts it names.  Damped words stay out of the full-text query, and
 * broad concepts ("customer") are not expanded: ts_rank knows no document
 * frequency, they would only flood the ranking.
 */
static int
avc_r_op_terms(avc_retrieve_op_t *op)
{
    avc__lx_t lx;
    avc__buf_t tq;
    avc_rterm_t *t;
    size_t i, k, v, nv, end = 0, nt = 0;
    const char *w, *sp;
    uint32_t key, alt = 0;
    double weight;
    int rc = AVC_OK, dup;

    avc__lx_init_struct(&lx);
    avc__buf_init(&tq);
    rc = avc__lx_analyze(&lx, op->query, strlen(op->query));
    if (rc != AVC_OK) {
        avc__lx_free(&lx);
        return rc;
    }
    op->terms = calloc(2 * lx.n + 1, sizeof(avc_rterm_t));
    op->ops = calloc(lx.n * (AVC_R_VARIANTS_MAX + 1) + 1, sizeof(avc_rop_t));
    if (op->terms == NULL || op->ops == NULL) {
        avc__lx_free(&lx);
        return AVC_ENOMEM;
    }
    t = op->terms;
    for (i = 0; i < lx.n && rc == AVC_OK; i++) {
        const avc__lx_word_t *wd = &lx.words[i];

        if (wd->concept >= 0) {
            key = avc_r_concept_key(wd->concept);
            alt = key;
            end = i + wd->span;
            for (k = 0; k < nt && t[k].key != key; k++) {
                /* once per concept */
            }
            if (k == nt) {
                t[nt].key = key;
                t[nt].alt = 0;
                t[nt].weight = avc__lx_concept_weight(wd->concept);
                nt++;
                nv = avc__lx_concept_weight(wd->concept) >= 1
                     ? avc__lx_concept_variants(wd->concept) : 0;
                if (nv > AVC_R_VARIANTS_MAX) {
                    nv = AVC_R_VARIANTS_MAX;
                }
                for (v = 0; v < nv && rc == AVC_OK; v++) {
                    sp = avc__lx_concept_variant(wd->concept, v);
                    if (strchr(sp, '&')) {
                        continue;
                    }
                    op->ops[op->nops].key = key;
                    op->ops[op->nops].off = tq.len;
                    for ( ; *sp; sp++) {
                        rc |= *sp == ' ' ? avc__buf_appends(&tq, " <-> ")
                                         : avc__buf_append(&tq, sp, 1);
                    }
                    rc |= avc__buf_append(&tq, "", 1);
                    op->nops++;
                }
            }
        }
        if (wd->cls & AVC__LX_STOP) {
            continue;
        }
        key = avc_r_term_key('w', avc__lx_sstr(&lx, i), wd->slen);
        weight = wd->cls & AVC__LX_LIGHT ? 0.35 : 1.0;
        dup = 0;
        for (k = 0; k < nt; k++) {
            if (t[k].key == key) {
                dup = 1;
                if (weight > t[k].weight) {
                    t[k].weight = weight;
                }
            }
        }
        if (!dup) {
            t[nt].key = key;
            t[nt].alt = i < end ? alt : 0;
            t[nt].weight = weight;
            nt++;
        }
        w = avc__lx_wstr(&lx, i);
        if (!(wd->cls & AVC__LX_LIGHT) && !dup && !strchr(w, '&')) {
            op->ops[op->nops].key = key;
            op->ops[op->nops].off = tq.len;
            rc |= avc__buf_append(&tq, w, strlen(w) + 1);
            op->nops++;
        }
    }
    op->nterms = nt;
    avc__lx_free(&lx);
    if (rc != AVC_OK) {
        avc__buf_free(&tq);
        return AVC_ENOMEM;
    }
    op->opbuf = avc__buf_steal(&tq, NULL);
    return op->opbuf ? AVC_OK : AVC_ENOMEM;
}

/*
 * The full-text query: operands OR-ed.  ts_rank ranks every row a query
 * matches, so its cost is the number of matching rows: with a snapshot,
 * operands are taken rarest first (their terms' document frequencies)
 * while the rows they may match stay within AVC_R_FTS_ROWS, and none held
 * by more than max(100, 2 %) of the chunks.  A word in half of 100,000
 * chunks would cost seconds and tell the ranking almost nothing; the
 * text score still counts it.  Without a snapshot all operands go, up to
 * AVC_R_OPERANDS_MAX.
 */
typedef struct {
    size_t i;
    uint32_t df;
} avc_rop_df_t;

static int
avc_rop_df_cmp(const void *a, const void *b)
{
    const avc_rop_df_t *x = a, *y = b;

    if (x->df != y->df) {
        return x->df < y->df ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

static char *
avc_r_op_tsquery(const avc_retrieve_op_t *op, const avc_rsnap_t *s)
{
    double limit = 0, rows = 0;
    avc_rop_df_t *order;
    avc__buf_t b;
    size_t i, k, n = 0;
    int rc = AVC_OK, seen;

    order = malloc((op->nops + 1) * sizeof(*order));
    if (order == NULL) {
        return NULL;
    }
    for (i = 0; i < op->nops; i++) {
        order[i].i = i;
        order[i].df = s ? avc_rdf_get(&s->df, op->ops[i].key) : 0;
    }
    if (s) {
        limit = (double) s->nchunks * AVC_R_FTS_DF_SHARE;
        if (limit < AVC_R_FTS_DF_MIN) {
            limit = AVC_R_FTS_DF_MIN;
        }
        qsort(order, op->nops, sizeof(*order), avc_rop_df_cmp);
    }
    avc__buf_init(&b);
    rc |= avc__buf_appends(&b, "");
    for (k = 0; k < op->nops && n < AVC_R_OPERANDS_MAX; k++) {
        i = order[k].i;
        if (s) {
            if ((double) order[k].df > limit) {
                break;
            }
            /* a concept's variants share its frequency: count it once */
            for (seen = 0; seen < (int) k; seen++) {
                if (op->ops[order[seen].i].key == op->ops[i].key) {
                    break;
                }
            }
            if (seen == (int) k) {
                if (n > 0 && rows + order[k].df > AVC_R_FTS_ROWS) {
                    break;
                }
                rows += order[k].df;
            }
        }
        rc |= avc__buf_appends(&b, n ? " | (" : "(");
        rc |= avc__buf_appends(&b, op->opbuf + op->ops[i].off);
        rc |= avc__buf_appends(&b, ")");
        n++;
    }
    free(order);
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}

/* run the full-text query (avc_r_on_fts gets it) */
static int
avc_r_op_fts(avc_retrieve_op_t *op, const char *tsquery)
{
    const char *p[4];
    char lim[16];

    snprintf(lim, sizeof(lim), "%u", op->r->candidates);
    avc_log(AVC_LOG_DEBUG, "rag: dealership %s: full-text query \"%.300s\"",
            op->did_s, tsquery);
    p[0] = op->did_s;
    p[1] = tsquery;
    p[2] = op->topics_lit;
    p[3] = lim;
    if (*tsquery == '\0') {
        op->q = avc_db_query(op->r->db, "avc_rag_gen", 1, 1, p, 0,
                             avc_r_on_fts, op);
        return op->q ? AVC_OK : AVC_ENOMEM;
    }
    /* with a snapshot to fall back on, the search has a short deadline */
    op->q = avc_db_query(op->r->db, avc_r_sql_fts, 0, 4, p,
                         op->fts_fallback_gen > 0 ? op->r->fts_timeout : 0,
                         avc_r_on_fts, op);
    return op->q ? AVC_OK : AVC_ENOMEM;
}

static void avc_r_op_fuse(avc_retrieve_op_t *op);

static void
avc_r_search_work(void *arg)
{
    avc_retrieve_op_t *op = arg;

    if (avc_index_search(op->snap->ix, op->qvec, op->kvec, op->tags,
                         op->ntags, op->vec_ids, op->vec_scores, &op->nvec)
        != AVC_OK)
    {
        op->nvec = 0;
    }
}

static void
avc_r_search_done(void *arg, int status)
{
    avc_retrieve_op_t *op = arg;

    op->searching = 0;
    if (op->dead) {
        avc_r_op_free(op);
        return;
    }
    avc_r_op_fuse(op);
}

/*
 * Pinecone: the vector list is a query of the dealership's namespace,
 * checked against PostgreSQL before the fusion.
 */

/* a vector id as a chunk id: decimal digits, positive */
static int
avc_r_chunk_id(const char *s, int64_t *id)
{
    size_t n = s ? strspn(s, "0123456789") : 0;

    if (n == 0 || n > 18 || s[n] != '\0') {
        return 0;
    }
    *id = strtoll(s, NULL, 10);
    return *id > 0;
}

static void
avc_r_forgotten(int err, size_t count, void *data)
{
    avc_retrieve_forget_t *f = data;
    avc_retriever_t *r = f->r;

    if (f->prev) {
        f->prev->next = f->next;
    } else {
        r->forgets = f->next;
    }
    if (f->next) {
        f->next->prev = f->prev;
    }
    if (err != AVC_OK) {
        /* a retrieval that meets one of them deletes it again */
        avc_log(AVC_LOG_WARN, "rag: dealership %" PRId64 ": %s could not "
                "be deleted from Pinecone: %s", f->did,
                f->n ? "vectors" : "the namespace",
                err == AVC_EUPSTREAM ? avc_pinecone_last_error(r->pc)
                                     : avc_strerror(err));
    }
    if (f->cb) {
        f->cb(err, f->data);
    }
    free(f);
}

/* delete vectors (ids, or the namespace when chunk_ids is NULL) */
static int
avc_r_forget(avc_retriever_t *r, int64_t dealership_id,
    const int64_t *chunk_ids, size_t n, avc_retrieve_forget_cb cb,
    void *data, avc_retrieve_forget_t **fp)
{
    avc_retrieve_forget_t *f;
    char (*num)[24] = NULL;
    const char **ids = NULL;
    size_t i;
    int rc;

    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return AVC_ENOMEM;
    }
    f->r = r;
    f->did = dealership_id;
    f->n = n;
    f->cb = cb;
    f->data = data;
    if (chunk_ids) {
        num = malloc(n * sizeof(*num));
        ids = malloc(n * sizeof(*ids));
        rc = AVC_ENOMEM;
        if (num && ids) {
            for (i = 0; i < n; i++) {
                snprintf(num[i], sizeof(num[i]), "%" PRId64, chunk_ids[i]);
                ids[i] = num[i];
            }
            rc = avc_pinecone_delete_ids(r->pc, dealership_id, ids, n,
                                         avc_r_forgotten, f);
        }
        free(num);
        free(ids);
    } else {
        rc = avc_pinecone_delete_namespace(r->pc, dealership_id,
                                           avc_r_forgotten, f);
    }
    if (rc != AVC_OK) {
        free(f);
        return rc;
    }
    f->next = r->forgets;
    if (r->forgets) {
        r->forgets->prev = f;
    }
    r->forgets = f;
    if (fp) {
        *fp = f;
    }
    return AVC_OK;
}

int
avc_retriever_forget(avc_retriever_t *r, int64_t dealership_id,
    const int64_t *chunk_ids, size_t n, avc_retrieve_forget_cb cb,
    void *data, avc_retrieve_forget_t **fp)
{
    size_t i;

    if (fp) {
        *fp = NULL;
    }
    if (r == NULL || dealership_id <= 0 || (chunk_ids == NULL && n > 0)) {
        return AVC_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (chunk_ids[i] <= 0) {
            return AVC_EINVAL;
        }
    }
    avc_retriever_invalidate(r, dealership_id);
    if (r->pc == NULL || (chunk_ids && n == 0)) {
        return AVC_ESTATE;      /* nothing to delete */
    }
    return avc_r_forget(r, dealership_id, chunk_ids, n, cb, data, fp);
}

void
avc_retriever_forget_detach(avc_retrieve_forget_t *f)
{
    if (f) {
        f->cb = NULL;
    }
}

/* an id literal '{1,2,3}' of ids[0..n-1], appended to b */
static int
avc_r_ids_lit(avc__buf_t *b, const int64_t *ids, size_t n, int *first)
{
    size_t i;
    int rc = AVC_OK;

    for (i = 0; i < n; i++) {
        rc |= avc__buf_printf(b, "%c%" PRId64, *first ? '{' : ',', ids[i]);
        *first = 0;
    }
    return rc;
}

static int
avc_r_has_id(const int64_t *ids, size_t n, int64_t id)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

/*
 * The check's rows: the vector list keeps the matches whose chunk is
 * ready; those whose chunk is gone are deleted from Pinecone; the
 * vectors read go into the op's view.
 */
static void
avc_r_on_check(int err, avc_db_res_t *res, void *data)
{
    avc_retrieve_op_t *op = data;
    avc_retriever_t *r = op->r;
    avc_index_t *ix = NULL;
    avc_rsnap_t *view;
    int64_t *gone = NULL, *rows = NULL;
    size_t i, row, nrows, ngone = 0, nkeep = 0;
    float *vec = NULL;
    int rc = AVC_OK;

    op->q = NULL;
    if (op->dead) {
        return;
    }
    if (err != AVC_OK) {
        if (err == AVC_EDB) {
            avc_log(AVC_LOG_WARN, "rag: checking the vector matches: %s",
                    avc_db_res_error(res));
        }
        avc_r_op_finish(op, err, NULL);
        return;
    }
    nrows = (size_t) avc_db_res_rows(res);
    gone = malloc((op->nvec + 1) * sizeof(*gone));
    rows = malloc((nrows + 1) * sizeof(*rows));
    if (gone == NULL || rows == NULL) {
        free(gone);
        free(rows);
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    for (row = 0; row < nrows; row++) {
        rows[row] = strtoll(avc_db_res_value(res, (int) row, 0), NULL, 10);
    }
    for (i = 0; i < op->nvec; i++) {
        for (row = 0; row < nrows && rows[row] != op->vec_ids[i]; row++) {
            /* a hundred rows at most */
        }
        if (row == nrows) {
            gone[ngone++] = op->vec_ids[i];
        } else if (strcmp(avc_db_res_value(res, (int) row, 1), "t") == 0) {
            op->vec_ids[nkeep] = op->vec_ids[i];
            op->vec_scores[nkeep++] = op->vec_scores[i];
        }
    }
    free(rows);
    op->nvec = nkeep;
    for (i = 0; i < nrows && rc == AVC_OK; i++) {
        if (avc_db_res_isnull(res, (int) i, 2)) {
            continue;
        }
        if (vec == NULL) {
            vec = malloc(op->dim * sizeof(float));
            ix = avc_index_new(op->dim, 0);
            if (vec == NULL || ix == NULL) {
                rc = AVC_ENOMEM;
                break;
            }
        }
        if (avc_rag_vector_parse(avc_db_res_value(res, (int) i, 2), vec,
                                 op->dim) == AVC_OK)
        {
            rc = avc_index_add(ix, strtoll(avc_db_res_value(res, (int) i,
                                                            0), NULL, 10),
                               0, vec);
            /* a vector that is not finite only lacks its cosine */
            if (rc == AVC_EINVAL) {
                rc = AVC_OK;
            }
        }
    }
    free(vec);
    if (rc == AVC_OK && ix && op->snap) {
        view = malloc(sizeof(*view));
        if (view == NULL) {
            rc = AVC_ENOMEM;
        } else {
            /* the op's reference moves to the view */
            *view = *op->snap;
            view->refs = 1;
            view->ix = ix;
            view->parent = op->snap;
            op->snap = view;
            ix = NULL;
        }
    }
    avc_index_free(ix);
    if (rc != AVC_OK) {
        free(gone);
        avc_r_op_finish(op, rc, NULL);
        return;
    }
    if (ngone) {
        /*
         * Their chunks are gone (a deletion from Pinecone failed, or a
         * worker died in between): PostgreSQL is the record.
         */
        avc_log(AVC_LOG_INFO, "rag: dealership %s: %zu vectors without a "
                "chunk, deleting them from Pinecone", op->did_s, ngone);
        r->orphans += ngone;
        if (avc_r_forget(r, op->did, gone, ngone, NULL, NULL, NULL)
            != AVC_OK)
        {
            avc_log(AVC_LOG_WARN, "rag: dealership %s: cannot delete the "
                    "vectors", op->did_s);
        }
    }
    free(gone);
    avc_r_op_fuse(op);
}

/* check the candidates in PostgreSQL (avc_r_on_check gets it) */
static void
avc_r_op_check(avc_retrieve_op_t *op)
{
    avc_retriever_t *r = op->r;
    avc__buf_t all, emb;
    const char *p[4];
    int rc = AVC_OK, first = 1, efirst = 1;
    size_t i;

    if (op->nvec + op->nfts == 0) {
        avc_r_op_fuse(op);
        return;
    }
    avc__buf_init(&all);
    avc__buf_init(&emb);
    rc |= avc_r_ids_lit(&all, op->vec_ids, op->nvec, &first);
    for (i = 0; i < op->nfts; i++) {
        if (avc_r_has_id(op->vec_ids, op->nvec, op->fts_ids[i])) {
            continue;
        }
        rc |= avc_r_ids_lit(&all, &op->fts_ids[i], 1, &first);
        if (op->mode == AVC_RETRIEVE_HYBRID && op->qvec) {
            rc |= avc_r_ids_lit(&emb, &op->fts_ids[i], 1, &efirst);
        }
    }
    rc |= avc__buf_appends(&all, "}");
    rc |= avc__buf_appends(&emb, efirst ? "{}" : "}");
    if (rc != AVC_OK) {
        avc__buf_free(&all);
        avc__buf_free(&emb);
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    p[0] = op->did_s;
    p[1] = all.data;
    p[2] = emb.data;
    p[3] = avc_embedder_model(r->emb);
    op->q = avc_db_query(r->db, "avc_rag_check", 1, 4, p, 0, avc_r_on_check,
                         op);
    avc__buf_free(&all);
    avc__buf_free(&emb);
    if (op->q == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
    }
}

static void
avc_r_on_pc(int err, const avc_pinecone_matches_t *m, void *data)
{
    avc_retrieve_op_t *op = data;
    avc_retriever_t *r = op->r;
    size_t i, n;
    int64_t id;

    op->pc_busy = 0;
    if (op->dead) {
        return;
    }
    if (err == AVC_ENOMEM) {
        avc_r_op_finish(op, err, NULL);
        return;
    }
    if (err != AVC_OK) {
        /*
         * Pinecone failed, its client's retries included: answer from the
         * full-text list, as a full-text timeout answers from the vectors.
         * The floor still decides whether the material covers the
         * question.
         */
        avc_log(AVC_LOG_WARN, "rag: dealership %s: vector search failed, "
                "full-text results only: %s", op->did_s,
                err == AVC_EUPSTREAM ? avc_pinecone_last_error(r->pc)
                                     : avc_strerror(err));
        r->fallbacks++;
        avc_r_op_check(op);
        return;
    }
    n = avc_pinecone_matches_count(m);
    op->vec_ids = malloc((n + 1) * sizeof(int64_t));
    op->vec_scores = malloc((n + 1) * sizeof(float));
    if (op->vec_ids == NULL || op->vec_scores == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    op->kvec = n;
    for (i = 0; i < n; i++) {
        /* the filter asked for this dealership: a match of another one
           (or an id that is not a chunk's) is not ours to use */
        if (!avc_r_chunk_id(avc_pinecone_match_id(m, i), &id)
            || avc_pinecone_match_dealership_id(m, i) != op->did)
        {
            continue;
        }
        op->vec_ids[op->nvec] = id;
        op->vec_scores[op->nvec++] = (float) avc_pinecone_match_score(m, i);
    }
    avc_r_op_check(op);
}

static void
avc_r_pc_search(avc_retrieve_op_t *op)
{
    avc_retriever_t *r = op->r;
    int rc;

    rc = avc_pinecone_query(r->pc, op->did, op->qvec, op->dim,
                            r->candidates, (const char *const *) op->topics,
                            op->ntopics, avc_r_on_pc, op);
    if (rc == AVC_ENOMEM) {
        avc_r_op_finish(op, rc, NULL);
        return;
    }
    if (rc != AVC_OK) {
        /* a query vector Pinecone cannot take (over its dimensions) */
        avc_log(AVC_LOG_WARN, "rag: dealership %s: no vector search in "
                "Pinecone: %s", op->did_s, avc_strerror(rc));
        r->fallbacks++;
        avc_r_op_check(op);
        return;
    }
    op->pc_busy = 1;
}

static void
avc_r_op_search(avc_retrieve_op_t *op)
{
    avc_retriever_t *r = op->r;
    avc_rsnap_t *s = op->snap;
    size_t i, k;
    long tag;
    int rc;

    if (r->pc && op->mode != AVC_RETRIEVE_TEXT && op->qvec) {
        avc_r_pc_search(op);
        return;
    }
    if (op->mode == AVC_RETRIEVE_TEXT || s->ix == NULL || op->qvec == NULL
        || avc_index_size(s->ix) == 0)
    {
        avc_r_op_fuse(op);
        return;
    }
    if (avc_index_dim(s->ix) != op->dim) {
        avc_log(AVC_LOG_WARN, "rag: dealership %" PRId64 ": stored vectors "
                "have %zu dimensions, the query %zu: vector search skipped",
                op->did, avc_index_dim(s->ix), op->dim);
        avc_r_op_fuse(op);
        return;
    }
    if (op->ntopics) {
        op->tags = malloc(op->ntopics * sizeof(uint32_t));
        if (op->tags == NULL) {
            avc_r_op_finish(op, AVC_ENOMEM, NULL);
            return;
        }
        for (i = 0, k = 0; i < op->ntopics; i++) {
            tag = avc_rsnap_tag(s, op->topics[i], 0);
            if (tag >= 0) {
                op->tags[k++] = (uint32_t) tag;
            }
        }
        op->ntags = k;
        if (k == 0) {
            /* none of the topics has a vector: nothing to search */
            avc_r_op_fuse(op);
            return;
        }
    }
    op->kvec = r->candidates;
    op->vec_ids = malloc(r->candidates * sizeof(int64_t));
    op->vec_scores = malloc(r->candidates * sizeof(float));
    if (op->vec_ids == NULL || op->vec_scores == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    if (avc_index_size(s->ix) <= r->offload_above) {
        rc = avc_index_search(s->ix, op->qvec, r->candidates, op->tags,
                              op->ntags, op->vec_ids, op->vec_scores,
                              &op->nvec);
        if (rc != AVC_OK) {
            avc_r_op_finish(op, rc, NULL);
            return;
        }
        avc_r_op_fuse(op);
        return;
    }
    op->searching = 1;
    rc = avc_offload(r->loop, avc_r_search_work, avc_r_search_done, op);
    if (rc != AVC_OK) {
        op->searching = 0;
        avc_r_op_finish(op, rc, NULL);
    }
}

static void
avc_r_op_prepare(avc_retrieve_op_t *op)
{
    avc_retriever_t *r = op->r;
    avc_rds_t *ds;
    int rc;

    ds = avc_rds_get(r, op->did);
    if (ds == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    if (ds->snap && ds->snap->gen >= op->gen) {
        op->snap = avc_rsnap_ref(ds->snap);
        if (op->fts_deferred) {
            /* the full-text query, now with the frequencies to prune it */
            char *tsq = avc_r_op_tsquery(op, op->snap);

            op->fts_deferred = 0;
            op->fts_fallback_gen = op->snap->gen;
            rc = tsq ? avc_r_op_fts(op, tsq) : AVC_ENOMEM;
            free(tsq);
            if (rc != AVC_OK) {
                avc_r_op_finish(op, rc, NULL);
            }
            return;
        }
        avc_r_op_search(op);
        return;
    }
    if (ds->load == NULL) {
        rc = avc_rload_start(r, ds, op->gen);
        if (rc != AVC_OK) {
            avc_r_op_finish(op, rc, NULL);
            return;
        }
    }
    op->waiting = ds->load;
    op->wnext = ds->load->waiters;
    ds->load->waiters = op;
}

static void
avc_r_on_embed(int err, const float *vectors, size_t n, size_t dim,
    void *data)
{
    avc_retrieve_op_t *op = data;

    op->eop = NULL;
    if (op->dead) {
        return;
    }
    if (err != AVC_OK) {
        avc_r_op_finish(op, err, NULL);
        return;
    }
    op->qvec = malloc(dim * sizeof(float));
    if (op->qvec == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    memcpy(op->qvec, vectors, dim * sizeof(float));
    op->dim = dim;
    op->embed_done = 1;
    if (op->fts_done) {
        avc_r_op_prepare(op);
    }
}

static void
avc_r_on_fts(int err, avc_db_res_t *res, void *data)
{
    avc_retrieve_op_t *op = data;
    size_t i, n;

    op->q = NULL;
    if (op->dead) {
        return;
    }
    if (err == AVC_ETIMEDOUT && op->fts_fallback_gen > 0) {
        /*
         * A full-text query over its deadline (a plan that scans a large
         * knowledge base): answer from the vectors rather than late.  The
         * generation is the snapshot's, at worst one change behind.
         */
        avc_log(AVC_LOG_INFO, "rag: dealership %s: full-text search over "
                "%u ms, vector results only", op->did_s, op->r->fts_timeout);
        op->nfts = 0;
        if (op->snap) {
            avc_r_op_search(op);
            return;
        }
        op->gen = op->fts_fallback_gen;
        op->fts_done = 1;
        if (op->embed_done) {
            avc_r_op_prepare(op);
        }
        return;
    }
    if (err != AVC_OK) {
        if (err == AVC_EDB) {
            avc_log(AVC_LOG_WARN, "rag: full-text search: %s",
                    avc_db_res_error(res));
        }
        avc_r_op_finish(op, err, NULL);
        return;
    }
    n = (size_t) avc_db_res_rows(res);
    if (n == 0) {
        avc_r_op_finish(op, AVC_ENOTFOUND, NULL);
        return;
    }
    if (op->snap == NULL) {
        op->gen = strtoll(avc_db_res_value(res, 0, 0), NULL, 10);
    }
    free(op->fts_ids);
    op->nfts = 0;
    op->fts_ids = malloc(n * sizeof(int64_t));
    if (op->fts_ids == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    for (i = 0; i < n && avc_db_res_cols(res) >= 2; i++) {
        if (!avc_db_res_isnull(res, (int) i, 1)) {
            op->fts_ids[op->nfts++] = strtoll(avc_db_res_value(res, (int) i,
                                                               1), NULL, 10);
        }
    }
    if (op->snap) {
        /* the deferred query: the snapshot is ready */
        avc_r_op_search(op);
        return;
    }
    op->fts_done = 1;
    if (op->embed_done) {
        avc_r_op_prepare(op);
    }
}

static int
avc_r_topic_ok(const char *t)
{
    size_t n = 0;

    for ( ; t[n]; n++) {
        if (!((t[n] >= 'a' && t[n] <= 'z') || (t[n] >= '0' && t[n] <= '9')
              || t[n] == '_'))
        {
            return 0;
        }
    }
    return n >= 1 && n <= 64;
}

int
avc_retrieve_start(avc_retriever_t *r, int64_t dealership_id,
    const char *query, size_t top_k, const char *const *topics,
    double min_score, avc_retrieve_cb cb, void *data, avc_retrieve_op_t **opp)
{
    avc_retrieve_op_t *op;
    avc_rds_t *ds;
    size_t i, n = 0, qlen;
    avc__buf_t b;
    char *tsq;
    int rc = AVC_OK;

    if (opp) {
        *opp = NULL;
    }
    if (r == NULL || query == NULL || cb == NULL || top_k == 0
        || top_k > AVC_R_TOPK_MAX || dealership_id <= 0
        || !(min_score <= 1) || isnan(min_score))
    {
        return AVC_EINVAL;
    }
    if (r->freeing) {
        return AVC_ESTATE;
    }
    qlen = strlen(query);
    if (qlen == 0 || qlen > AVC_R_QUERY_MAX || !avc__utf8_valid(query, qlen))
    {
        return AVC_EINVAL;
    }
    for (n = 0; topics && topics[n]; n++) {
        if (n >= AVC_R_TOPICS_MAX || !avc_r_topic_ok(topics[n])) {
            return AVC_EINVAL;
        }
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->r = r;
    op->mode = r->mode;
    op->did = dealership_id;
    snprintf(op->did_s, sizeof(op->did_s), "%" PRId64, dealership_id);
    op->top_k = top_k;
    op->min_score = min_score < 0 ? r->min_score : min_score;
    op->cb = cb;
    op->data = data;
    op->query = strdup(query);
    if (op->query == NULL) {
        free(op);
        return AVC_ENOMEM;
    }
    if (n) {
        op->topics = calloc(n, sizeof(char *));
        avc__buf_init(&b);
        rc = op->topics ? AVC_OK : AVC_ENOMEM;
        for (i = 0; i < n && rc == AVC_OK; i++) {
            op->topics[i] = strdup(topics[i]);
            op->ntopics += op->topics[i] != NULL;
            rc |= op->topics[i] ? AVC_OK : AVC_ENOMEM;
            rc |= avc__buf_appends(&b, i ? "," : "{");
            rc |= avc__buf_appends(&b, topics[i]);
        }
        rc |= avc__buf_appends(&b, "}");
        op->topics_lit = avc__buf_steal(&b, NULL);
        if (rc != AVC_OK || op->topics_lit == NULL) {
            avc_r_op_free(op);
            return AVC_ENOMEM;
        }
    }
    rc = avc_r_op_terms(op);
    if (rc != AVC_OK) {
        avc_r_op_free(op);
        return rc;
    }

    /*
     * Without a snapshot (the first retrieval of this dealership) the
     * full-text query waits for it: unpruned, its common words could cost
     * seconds on a large knowledge base.  This first query then only
     * reads the generation.
     */
    tsq = NULL;
    if (op->mode != AVC_RETRIEVE_VECTOR) {
        for (ds = r->ds; ds && ds->id != dealership_id; ds = ds->next) {
            /* a lookup that creates nothing */
        }
        if (ds && ds->snap) {
            op->fts_fallback_gen = ds->snap->gen;
            tsq = avc_r_op_tsquery(op, ds->snap);
            if (tsq == NULL) {
                avc_r_op_free(op);
                return AVC_ENOMEM;
            }
        } else {
            op->fts_deferred = 1;
        }
    }
    rc = avc_r_op_fts(op, tsq ? tsq : "");
    free(tsq);
    if (rc != AVC_OK) {
        avc_r_op_free(op);
        return rc;
    }
    if (op->mode == AVC_RETRIEVE_TEXT) {
        op->embed_done = 1;
    } else {
        rc = avc_embed_query(r->emb, query, avc_r_on_embed, op, &op->eop);
        if (rc != AVC_OK) {
            op->dead = 1;
            avc_db_cancel(op->q);
            avc_r_op_free(op);
            return rc;
        }
    }
    op->next = r->ops;
    if (r->ops) {
        r->ops->prev = op;
    }
    r->ops = op;
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}

int
avc_retrieve(avc_retriever_t *r, int64_t dealership_id, const char *query,
    size_t top_k, const char *const *topics, double min_score,
    avc_retrieve_cb cb, void *data)
{
    return avc_retrieve_start(r, dealership_id, query, top_k, topics,
                              min_score, cb, data, NULL);
}

void
avc_retriever_free(avc_retriever_t *r)
{
    avc_rds_t *ds;

    if (r == NULL) {
        return;
    }
    r->freeing = 1;
    while (r->ops) {
        avc_r_op_finish(r->ops, AVC_ECANCELED, NULL);
    }
    for (ds = r->ds; ds; ds = ds->next) {
        if (ds->load) {
            avc_rload_abandon(ds->load);
        }
    }
    while (r->ds) {
        avc_rds_free(r, r->ds);
    }
    while (r->reembeds) {
        avc_rreembed_t *e = r->reembeds;

        r->reembeds = e->next;
        avc__reembed_cancel(e->re);
        if (e->cb) {
            e->cb(AVC_ECANCELED, 0, e->data);
        }
        free(e);
    }
    /* deletions still running are abandoned: their callers hear nothing */
    avc_pinecone_free(r->pc);
    while (r->forgets) {
        avc_retrieve_forget_t *f = r->forgets;

        r->forgets = f->next;
        free(f);
    }
    avc_http_free(r->http);
    free(r);
}


/* fusion, scores and results */

static int
avc_r_cand_rrf_cmp(const void *a, const void *b)
{
    const avc_rcand_t *x = a, *y = b;

    if (x->rrf != y->rrf) {
        return x->rrf > y->rrf ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

static int
avc_r_cand_score_cmp(const void *a, const void *b)
{
    const avc_rcand_t *x = a, *y = b;

    if (x->score != y->score) {
        return x->score > y->score ? -1 : 1;
    }
    return avc_r_cand_rrf_cmp(x, y);
}

/* the share of the query's information that a chunk's terms hold */
static double
avc_r_coverage(const avc_retrieve_op_t *op, const uint32_t *set, size_t n)
{
    const avc_rsnap_t *s = op->snap;
    double num = 0, den = 0, idf, w, N = (double) s->nchunks, df;
    size_t i;

    for (i = 0; i < op->nterms; i++) {
        df = (double) avc_rdf_get(&s->df, op->terms[i].key);
        if (df > N) {
            df = N;
        }
        /* BM25's idf: a word no chunk holds weighs most */
        idf = log(1.0 + (N - df + 0.5) / (df + 0.5));
        w = op->terms[i].weight * idf;
        den += w;
        if (avc_r_set_has(set, n, op->terms[i].key)
            || avc_r_set_has(set, n, op->terms[i].alt))
        {
            num += w;
        }
    }
    return den > 0 ? num / den : 0;
}

static void
avc_r_on_fetch(int err, avc_db_res_t *res, void *data)
{
    avc_retrieve_op_t *op = data;
    avc_rag_results_t out;
    avc_rcand_t **items;
    size_t i, k, nrows, n = 0;
    int64_t id;

    op->q = NULL;
    if (op->dead) {
        return;
    }
    if (err != AVC_OK) {
        if (err == AVC_EDB) {
            avc_log(AVC_LOG_WARN, "rag: reading chunks: %s",
                    avc_db_res_error(res));
        }
        avc_r_op_finish(op, err, NULL);
        return;
    }
    items = malloc(op->ncands * sizeof(*items) + 1);
    if (items == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    nrows = (size_t) avc_db_res_rows(res);
    for (i = 0; i < nrows; i++) {
        id = strtoll(avc_db_res_value(res, (int) i, 0), NULL, 10);
        for (k = 0; k < op->ncands; k++) {
            if (op->cands[k].id == id) {
                op->cands[k].row = (int) i;
                break;
            }
        }
    }
    /* in the chosen order; a chunk whose document went is left out */
    for (k = 0; k < op->ncands; k++) {
        if (op->cands[k].row >= 0) {
            items[n++] = &op->cands[k];
        }
    }
    memset(&out, 0, sizeof(out));
    out.items = items;
    out.n = n;
    out.res = res;
    out.gen = op->gen;
    out.best = op->best;
    avc_r_op_finish(op, AVC_OK, &out);
    free(items);
}

static void
avc_r_op_fuse(avc_retrieve_op_t *op)
{
    avc_retriever_t *r = op->r;
    avc_rag_results_t out;
    const uint32_t *set;
    avc_rcand_t *c;
    avc__buf_t ids;
    size_t i, k, n = 0, nset, nkeep;
    double v, wv, wt, keep;
    const char *p[2];
    float cos;
    int rc = AVC_OK;

    op->cands = calloc(op->nvec + op->nfts + 1, sizeof(avc_rcand_t));
    if (op->cands == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    for (i = 0; i < op->nvec; i++) {
        c = &op->cands[n++];
        c->id = op->vec_ids[i];
        c->vrank = (int) i + 1;
        c->cosine = op->vec_scores[i];
        c->has_cosine = 1;
        c->row = -1;
    }
    for (i = 0; i < op->nfts; i++) {
        for (k = 0; k < n && op->cands[k].id != op->fts_ids[i]; k++) {
            /* at most a few hundred: a scan is cheapest */
        }
        c = &op->cands[k];
        if (k == n) {
            n++;
            c->id = op->fts_ids[i];
            c->row = -1;
        }
        if (c->trank == 0) {
            c->trank = (int) i + 1;
        }
    }

    /* the baselines score with the one signal they have */
    wv = op->mode == AVC_RETRIEVE_TEXT ? 0
         : op->mode == AVC_RETRIEVE_VECTOR ? 1 : r->w_vector;
    wt = 1 - wv;
    op->best = 0;
    for (k = 0; k < n; k++) {
        c = &op->cands[k];
        c->rrf = (c->vrank ? 1.0 / (AVC_R_RRF_K + c->vrank) : 0)
                 + (c->trank ? 1.0 / (AVC_R_RRF_K + c->trank) : 0);
        /* a text hit outside the vector list still has a cosine */
        if (!c->has_cosine && op->mode == AVC_RETRIEVE_HYBRID && op->qvec
            && op->snap->ix && avc_index_dim(op->snap->ix) == op->dim
            && avc_index_score(op->snap->ix, op->qvec, c->id, &cos)
               == AVC_OK)
        {
            c->cosine = cos;
            c->has_cosine = 1;
        }
        set = avc_rsnap_set(op->snap, c->id, &nset);
        c->coverage = set && op->mode != AVC_RETRIEVE_VECTOR
                      ? avc_r_coverage(op, set, nset) : 0;
        v = c->has_cosine ? (c->cosine - r->cos_low)
                            / (r->cos_high - r->cos_low) : 0;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        c->score = wv * v + wt * c->coverage;
        if (c->score > op->best) {
            op->best = c->score;
        }
    }

    /*
     * The floor decides whether the material covers the question at all:
     * its best passage must reach it.  If so, passages down to half the
     * floor come along: the right one is often not the best scored (a
     * paraphrase shares few words with it) but ranks well in the fusion.
     */
    keep = op->best >= op->min_score ? op->min_score * AVC_R_KEEP_RATIO : 2;
    for (k = 0, nkeep = 0; k < n; k++) {
        if (op->cands[k].score >= keep) {
            op->cands[nkeep++] = op->cands[k];
        }
    }
    qsort(op->cands, nkeep, sizeof(*op->cands), r->order_by_score
                                                ? avc_r_cand_score_cmp
                                                : avc_r_cand_rrf_cmp);
    op->ncands = nkeep < op->top_k ? nkeep : op->top_k;
    if (op->ncands == 0) {
        memset(&out, 0, sizeof(out));
        out.gen = op->gen;
        out.best = op->best;
        avc_r_op_finish(op, AVC_OK, &out);
        return;
    }
    avc__buf_init(&ids);
    for (k = 0; k < op->ncands; k++) {
        rc |= avc__buf_printf(&ids, "%c%" PRId64, k ? ',' : '{',
                              op->cands[k].id);
    }
    rc |= avc__buf_appends(&ids, "}");
    if (rc != AVC_OK) {
        avc__buf_free(&ids);
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
        return;
    }
    p[0] = op->did_s;
    p[1] = ids.data;
    op->q = avc_db_query(r->db, "avc_rag_fetch", 1, 2, p, 0, avc_r_on_fetch,
                         op);
    avc__buf_free(&ids);
    if (op->q == NULL) {
        avc_r_op_finish(op, AVC_ENOMEM, NULL);
    }
}

size_t
avc_rag_results_count(const avc_rag_results_t *res)
{
    return res ? res->n : 0;
}

int64_t
avc_rag_results_generation(const avc_rag_results_t *res)
{
    return res ? res->gen : 0;
}

double
avc_rag_results_best_score(const avc_rag_results_t *res)
{
    return res ? res->best : 0;
}

static const char *
avc_r_col(const avc_rag_results_t *res, size_t i, int col)
{
    if (res == NULL || i >= res->n) {
        return "";
    }
    return avc_db_res_value(res->res, res->items[i]->row, col);
}

int64_t
avc_rag_result_chunk_id(const avc_rag_results_t *res, size_t i)
{
    return res && i < res->n ? res->items[i]->id : 0;
}

int64_t
avc_rag_result_document_id(const avc_rag_results_t *res, size_t i)
{
    return strtoll(avc_r_col(res, i, 1), NULL, 10);
}

const char *
avc_rag_result_filename(const avc_rag_results_t *res, size_t i)
{
    return avc_r_col(res, i, 2);
}

const char *
avc_rag_result_topic(const avc_rag_results_t *res, size_t i)
{
    return avc_r_col(res, i, 3);
}

const char *
avc_rag_result_title(const avc_rag_results_t *res, size_t i)
{
    return avc_r_col(res, i, 4);
}

const char *
avc_rag_result_content(const avc_rag_results_t *res, size_t i)
{
    return avc_r_col(res, i, 5);
}

int
avc_rag_result_position(const avc_rag_results_t *res, size_t i)
{
    return atoi(avc_r_col(res, i, 6));
}

double
avc_rag_result_score(const avc_rag_results_t *res, size_t i)
{
    return res && i < res->n ? res->items[i]->score : 0;
}

double
avc_rag_result_cosine(const avc_rag_results_t *res, size_t i)
{
    return res && i < res->n && res->items[i]->has_cosine
           ? res->items[i]->cosine : 0;
}

double
avc_rag_result_coverage(const avc_rag_results_t *res, size_t i)
{
    return res && i < res->n ? res->items[i]->coverage : 0;
}

double
avc_rag_result_rrf(const avc_rag_results_t *res, size_t i)
{
    return res && i < res->n ? res->items[i]->rrf : 0;
}

const char *
avc_rag_insert_sql(void)
{
    return avc_r_sql_insert;
}
