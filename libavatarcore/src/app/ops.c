/*
 * Service operations: the API root, health and metrics.
 */
#include "app_int.h"

#include <avatarcore/cache.h>
#include <avatarcore/llm.h>
#include <avatarcore/retrieve.h>

#include <stdlib.h>
#include <string.h>

/* how long /health waits for PostgreSQL before calling it degraded, ms */
#define AVC_HEALTH_DB_TIMEOUT 2000

AVC_API int
avc_op_root(avc_call_t *call)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "message", "Avatar Adam API",
                          "version", call->app->version,
                          "docs", "/api/v1/docs");

    if (o == NULL) {
        return AVC_ENOMEM;
    }
    avc__call_json(call, 200, o);
    return AVC_OK;
}

typedef struct {
    avc_call_t *call;
    avc_db_query_t *q;
} avc_health_t;

static void
avc_health_cancel(avc_call_t *call, void *ctx)
{
    avc_health_t *h = ctx;

    avc_db_cancel(h->q);
    /* the query callback (AVC_ECANCELED) frees h */
}

static void
avc_health_done(int err, avc_db_res_t *res, void *data)
{
    avc_health_t *h = data;
    avc_call_t *call = h->call;
    json_t *o;

    free(h);
    if (err == AVC_ECANCELED) {
        return;                 /* the call is gone */
    }
    if (err == AVC_OK) {
        o = json_pack("{s:s, s:s, s:{s:s}}", "status", "healthy",
                      "version", call->app->version,
                      "checks", "database", "ok");
        avc__call_json(call, 200, o);
        return;
    }
    avc_log(AVC_LOG_WARN, "health: database check failed: %s",
            err == AVC_EDB ? avc_db_res_error(res) : avc_strerror(err));
    o = json_pack("{s:s, s:s, s:[s], s:{s:s}}", "status", "degraded",
                  "version", call->app->version, "failing", "database",
                  "checks", "database",
                  err == AVC_ETIMEDOUT ? "timeout" : "unreachable");
    avc__call_json(call, 503, o);
}

AVC_API int
avc_op_health(avc_call_t *call)
{
    avc_health_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        return AVC_ENOMEM;
    }
    h->call = call;
    avc__call_begin(call, avc_health_cancel, h);
    h->q = avc_db_query(call->app->db, "SELECT 1", 0, 0, NULL,
                        AVC_HEALTH_DB_TIMEOUT, avc_health_done, h);
    if (h->q == NULL) {
        call->cancel = NULL;
        free(h);
        avc__call_error(call, 503, "Service unavailable");
    }
    return AVC_OK;
}

AVC_API int
avc_op_metrics(avc_call_t *call)
{
    avc_app_t *app = call->app;
    avc__buf_t b;
    static const char *classes[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
    unsigned i;
    int rc = 0;

    avc__buf_init(&b);
    rc |= avc__buf_printf(&b,
        "# HELP avatar_build_info Build information.\n"
        "# TYPE avatar_build_info gauge\n"
        "avatar_build_info{version=\"%s\"} 1\n"
        "# HELP avatar_api_requests_total API calls completed by this "
        "worker, by status class.\n"
        "# TYPE avatar_api_requests_total counter\n", app->version);
    for (i = 1; i < 6; i++) {
        rc |= avc__buf_printf(&b,
                              "avatar_api_requests_total{class=\"%s\"} %llu\n",
                              classes[i], app->calls_by_class[i]);
    }
    rc |= avc__buf_printf(&b,
        "# HELP avatar_db_connections Open PostgreSQL connections.\n"
        "# TYPE avatar_db_connections gauge\n"
        "avatar_db_connections %llu\n"
        "# HELP avatar_db_queries_total Queries completed.\n"
        "# TYPE avatar_db_queries_total counter\n"
        "avatar_db_queries_total %llu\n"
        "# HELP avatar_db_errors_total Queries failed.\n"
        "# TYPE avatar_db_errors_total counter\n"
        "avatar_db_errors_total %llu\n"
        "# HELP avatar_db_reconnects_total Reconnections after failures.\n"
        "# TYPE avatar_db_reconnects_total counter\n"
        "avatar_db_reconnects_total %llu\n",
        avc_db_stat(app->db, AVC_DB_CONNS_OPEN),
        avc_db_stat(app->db, AVC_DB_QUERIES),
        avc_db_stat(app->db, AVC_DB_ERRORS),
        avc_db_stat(app->db, AVC_DB_RECONNECTS));
    if (app->llm) {
        rc |= avc__buf_printf(&b,
            "# HELP avatar_llm_active Language-model answers running now.\n"
            "# TYPE avatar_llm_active gauge\n"
            "avatar_llm_active %zu\n", avc_llm_active(app->llm));
    }
    if (app->cache) {
        static const struct {
            avc_shcache_stat_t which;
            const char *name;
            const char *help;
        } st[] = {
            { AVC_SHCACHE_EMBED_HITS, "avatar_cache_embedding_hits_total",
              "Query embeddings found in the cache." },
            { AVC_SHCACHE_EMBED_MISSES,
              "avatar_cache_embedding_misses_total",
              "Query embeddings not in the cache." },
            { AVC_SHCACHE_ANSWER_HITS, "avatar_cache_semantic_hits_total",
              "Training answers served from the semantic cache." },
            { AVC_SHCACHE_ANSWER_MISSES,
              "avatar_cache_semantic_misses_total",
              "Training questions not in the semantic cache." },
            { AVC_SHCACHE_EVICTIONS, "avatar_cache_evictions_total",
              "Cache entries dropped to make room." },
        };

        for (i = 0; i < avc__countof(st); i++) {
            rc |= avc__buf_printf(&b, "# HELP %s %s (all workers)\n"
                                  "# TYPE %s counter\n%s %llu\n",
                                  st[i].name, st[i].help, st[i].name,
                                  st[i].name,
                                  avc_shcache_stat(app->cache, st[i].which));
        }
        rc |= avc__buf_printf(&b,
            "# HELP avatar_cache_bytes_used Bytes of the cache in use.\n"
            "# TYPE avatar_cache_bytes_used gauge\n"
            "avatar_cache_bytes_used %llu\n",
            avc_shcache_stat(app->cache, AVC_SHCACHE_BYTES_USED));
    }
    if (app->retriever) {
        static const struct {
            avc_retriever_stat_t which;
            const char *name;
            const char *type;
            const char *help;
        } rs[] = {
            { AVC_RETRIEVER_QUERIES, "avatar_rag_queries_total", "counter",
              "Retrievals completed." },
            { AVC_RETRIEVER_LOADS, "avatar_rag_index_loads_total",
              "counter", "Dealership indexes (re)loaded." },
            { AVC_RETRIEVER_INDEXES, "avatar_rag_indexes", "gauge",
              "Dealership indexes held." },
            { AVC_RETRIEVER_VECTORS, "avatar_rag_vectors", "gauge",
              "Vectors held in all indexes." },
            { AVC_RETRIEVER_MEMORY, "avatar_rag_index_bytes", "gauge",
              "Bytes held by the indexes." },
            { AVC_RETRIEVER_FALLBACKS, "avatar_rag_fallbacks_total",
              "counter", "Retrievals answered by full text alone because "
              "the vector store failed." },
            { AVC_RETRIEVER_ORPHANS, "avatar_rag_orphans_total", "counter",
              "Vectors without their chunk, deleted from the vector "
              "store." },
            { AVC_RETRIEVER_REEMBEDDED, "avatar_rag_reembedded_total",
              "counter", "Chunks given a vector of the current model." },
        };

        for (i = 0; i < avc__countof(rs); i++) {
            rc |= avc__buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
                                  rs[i].name, rs[i].help, rs[i].name,
                                  rs[i].type, rs[i].name,
                                  avc_retriever_stat(app->retriever,
                                                     rs[i].which));
        }
    }
    if (rc != 0) {
        avc__buf_free(&b);
        return AVC_ENOMEM;
    }
    avc__call_raw(call, 200, "text/plain; version=0.0.4; charset=utf-8",
                  b.data, b.len);
    avc__buf_free(&b);
    return AVC_OK;
}
