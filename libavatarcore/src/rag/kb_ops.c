/*
 * /api/v1/rag/{id}/...: a dealership's knowledge base.
 *
 * Write routes: super admins, and dealership admins of that dealership.
 * Read routes: super admins and every user of that dealership.  Another
 * dealership's knowledge base answers exactly like a missing dealership:
 * the dealership is loaded with the caller's scope in the SQL itself.
 */
#include "kb.h"

#include <avatarcore/cache.h>
#include "rag_internal.h"

#include <avatarcore/retrieve.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *avc_kb_default_topics =
    "[\"books\",\"objection_handling\",\"playbooks\",\"videos\","
    "\"compliance\",\"product_knowledge\"]";

const char *
avc__kb_model(avc_app_t *app)
{
    if (strcmp(avc_config_get(app->cfg, "embeddings.provider", "local"),
               "openai") == 0)
    {
        return avc_config_get(app->cfg, "embeddings.model",
                              "text-embedding-3-small");
    }
    return "avatar-local-hash";
}

unsigned
avc__kb_dimensions(avc_app_t *app)
{
    long long d;

    if (avc_config_get_int(app->cfg, "embeddings.dimensions", 0, 1, 65536,
                           &d) == AVC_OK && d > 0)
    {
        return (unsigned) d;
    }
    return strcmp(avc__kb_model(app), "avatar-local-hash") == 0 ? 512
                                                                : 1536;
}

const char *
avc__kb_vector_db(avc_app_t *app)
{
    return strcmp(avc_config_get(app->cfg, "vector_store.provider",
                                 "postgres"), "pinecone") == 0
           ? "pinecone" : "postgres";
}

/*
 * The vector store.  PostgreSQL is the record: a deletion commits there
 * first; then this worker's snapshot is dropped (every other worker
 * notices the dealership's generation, bumped by the deletion) and, with
 * Pinecone, the vectors are deleted there.  The call answers when
 * Pinecone did (so a reset is complete before the next upload); its
 * failure is logged and changes nothing for the caller: retrieval never
 * returns a vector whose chunk is gone, and deletes it when it meets it.
 */
static int
avc_kb_pinecone(avc_app_t *app)
{
    return app->retriever && strcmp(avc__kb_vector_db(app), "pinecone") == 0;
}

static void
avc_kb_forget_cancel(avc_call_t *call, void *ctx)
{
    /* the client went away: the deletion goes on, unobserved */
    avc_retriever_forget_detach(ctx);
}

/* 1 when done(err, call) will be called, 0 when there is nothing to wait
   for (no vectors outside PostgreSQL, or the deletion could not start) */
static int
avc_kb_forget(avc_call_t *call, const int64_t *ids, size_t n,
    avc_retrieve_forget_cb done)
{
    avc__kb_t *kb = call->op;
    avc_retrieve_forget_t *f;
    int rc;

    if (call->app->retriever == NULL) {
        return 0;
    }
    rc = avc_retriever_forget(call->app->retriever, atoll(kb->id), ids, n,
                              done, call, &f);
    if (rc != AVC_OK) {
        if (rc != AVC_ESTATE) {
            avc_log(AVC_LOG_WARN, "rag: dealership %s: cannot delete "
                    "vectors: %s", kb->id, avc_strerror(rc));
        }
        return 0;
    }
    avc__call_begin(call, avc_kb_forget_cancel, f);
    return 1;
}

/* The dealership's cached answers rest on material that changed. */
static void
avc_kb_drop_answers(avc_app_t *app, int64_t dealership_id)
{
    avc_shcache_t *cache = avc__app_cache(app);

    if (cache) {
        (void) avc_shcache_answer_invalidate(cache, dealership_id);
    }
}

void
avc__kb_dealership_deleted(avc_app_t *app, int64_t dealership_id)
{
    int rc;

    if (app) {
        avc_kb_drop_answers(app, dealership_id);
    }
    if (app == NULL || app->retriever == NULL) {
        return;
    }
    if (!avc_kb_pinecone(app)) {
        avc_retriever_invalidate(app->retriever, dealership_id);
        return;
    }
    /* nobody waits: the namespace is never used again */
    rc = avc_retriever_forget(app->retriever, dealership_id, NULL, 0, NULL,
                              NULL, NULL);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_WARN, "rag: dealership %lld: cannot delete its "
                "namespace: %s", (long long) dealership_id,
                avc_strerror(rc));
    }
}

void
avc__kb_free(void *p)
{
    avc__kb_t *kb = p;

    if (kb == NULL) {
        return;
    }
    if (kb->extra_free) {
        kb->extra_free(kb->extra);
    }
    json_decref(kb->config);
    free(kb->name);
    free(kb);
}

static void
avc_kb_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__kb_t *kb = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        char msg[96];

        snprintf(msg, sizeof(msg), "Dealership with ID %s not found",
                 kb->id);
        avc__call_error(call, 404, msg);
        return;
    }
    kb->name = strdup(avc_db_res_value(res, 0, 0));
    if (!avc_db_res_isnull(res, 0, 1)) {
        kb->config = json_loads(avc_db_res_value(res, 0, 1), 0, NULL);
    }
    kb->initialized = json_is_true(json_object_get(kb->config,
                                                   "initialized"));
    if (kb->name == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    kb->next(call);
}

static void
avc_kb_authed(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    char scope[24];
    const char *p[2];

    if (kb->write && !avc__is_sa(&call->who) && !avc__is_da(&call->who)) {
        avc__call_error(call, 403, "Not enough permissions");
        return;
    }
    snprintf(scope, sizeof(scope), "%lld", call->who.dealership_id);
    p[0] = kb->id;
    p[1] = avc__is_sa(&call->who) ? NULL : scope;
    /* the caller's scope is part of the query, not a check after it */
    if (avc__q(call, "SELECT name, rag_config::text FROM dealerships"
               " WHERE id = $1::bigint"
               " AND ($2::bigint IS NULL OR id = $2::bigint)", 2, p,
               avc_kb_loaded) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

int
avc__kb_begin(avc_call_t *call, int write, void (*next)(avc_call_t *call))
{
    const char *id = avc_call_param(call, "id");
    avc__kb_t *kb;

    if (id == NULL || *id == '\0' || strlen(id) > 18
        || strspn(id, "0123456789") != strlen(id))
    {
        avc__call_error(call, 404, "Dealership not found");
        return AVC_OK;
    }
    kb = calloc(1, sizeof(*kb));
    if (kb == NULL) {
        return AVC_ENOMEM;
    }
    snprintf(kb->id, sizeof(kb->id), "%s", id);
    kb->write = write;
    kb->next = next;
    call->op = kb;
    call->op_free = avc__kb_free;
    avc__authenticate(call, avc_kb_authed);
    return AVC_OK;
}

void
avc__kb_not_initialized(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    char msg[400];

    snprintf(msg, sizeof(msg), "RAG not initialized for dealership '%s'. "
             "Initialize the knowledge base first.", kb->name);
    avc__call_error(call, 422, msg);
}

int
avc__kb_topic_ok(const avc__kb_t *kb, const char *topic)
{
    json_t *topics = json_object_get(kb->config, "topics"), *t;
    size_t i;

    json_array_foreach(topics, i, t) {
        if (json_is_string(t) && strcmp(json_string_value(t), topic) == 0) {
            return 1;
        }
    }
    return 0;
}

/* initialize */

static void
avc_init_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__kb_t *kb = call->op;
    char msg[400];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    snprintf(msg, sizeof(msg), "RAG initialized for dealership '%s'",
             kb->name);
    avc__call_json(call, 201, json_pack("{s:s, s:O}", "message", msg,
                   "rag_config", json_loads(avc_db_res_value(res, 0, 0), 0,
                                            NULL)));
}

static void
avc_init_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    const char *p[5];
    char dims[16];

    if (kb->initialized) {
        char msg[400];

        snprintf(msg, sizeof(msg), "RAG already initialized for dealership "
                 "'%s'", kb->name);
        avc__call_error(call, 422, msg);
        return;
    }
    snprintf(dims, sizeof(dims), "%u", avc__kb_dimensions(call->app));
    p[0] = kb->id;
    p[1] = avc__kb_model(call->app);
    p[2] = dims;
    p[3] = avc_kb_default_topics;
    p[4] = avc__kb_vector_db(call->app);
    /* settings an admin made before (chunk size, topics) are kept */
    if (avc__q(call,
               "UPDATE dealerships SET rag_config = jsonb_build_object("
               " 'chunk_size', 1000, 'chunk_overlap', 200,"
               " 'topics', $4::jsonb, 'metadata', '{}'::jsonb)"
               " || coalesce(rag_config, '{}'::jsonb)"
               " || jsonb_build_object('initialized', true,"
               " 'model', $2::text, 'dimensions', $3::int,"
               " 'namespace', 'dealership_' || id, 'vector_db', $5::text,"
               " 'initialized_at', to_char(now() AT TIME ZONE 'UTC',"
               " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
               " WHERE id = $1::bigint RETURNING rag_config::text",
               5, p, avc_init_done) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_rag_initialize(avc_call_t *call)
{
    return avc__kb_begin(call, 1, avc_init_next);
}

/* status */

static void
avc_status_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__kb_t *kb = call->op;
    json_t *o, *by;
    long long docs = 0, chunks = 0;
    int i;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    by = json_object();
    for (i = 0; i < avc_db_res_rows(res); i++) {
        long long n = atoll(avc_db_res_value(res, i, 1));

        json_object_set_new(by, avc_db_res_value(res, i, 0),
                            json_integer(n));
        docs += n;
        chunks += atoll(avc_db_res_value(res, i, 2));
    }
    o = json_pack("{s:b, s:I, s:s, s:O, s:I, s:I, s:o, s:s, s:I}",
                  "initialized", 1, "dealership_id",
                  (json_int_t) atoll(kb->id), "dealership_name", kb->name,
                  "config", kb->config, "total_documents",
                  (json_int_t) docs, "total_chunks", (json_int_t) chunks,
                  "documents_by_topic", by, "vector_db",
                  avc__kb_vector_db(call->app), "vector_count",
                  (json_int_t) chunks);
    avc__call_json(call, 200, o);
}

static void
avc_status_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    const char *p[1];

    if (!kb->initialized) {
        char msg[400];

        snprintf(msg, sizeof(msg), "RAG not initialized for dealership "
                 "'%s'", kb->name);
        avc__call_json(call, 200, json_pack("{s:b, s:s}", "initialized", 0,
                                            "message", msg));
        return;
    }
    p[0] = kb->id;
    if (avc__q(call, "SELECT topic, count(*),"
               " coalesce(sum(chunk_count), 0) FROM documents"
               " WHERE dealership_id = $1::bigint GROUP BY topic"
               " ORDER BY topic", 1, p, avc_status_done) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_rag_status(avc_call_t *call)
{
    return avc__kb_begin(call, 0, avc_status_next);
}

/* documents */

#define AVC_DOC_COLS                                                        \
    "id, filename, topic, status, chunk_count, bytes, error, "             \
    AVC__TS("created_at") ", progress"

static json_t *
avc_doc_json(avc_db_res_t *res, int row, int full)
{
    json_t *o;

    o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:s}",
                  "id", (json_int_t) atoll(avc_db_res_value(res, row, 0)),
                  "filename", avc_db_res_value(res, row, 1),
                  "topic", avc_db_res_value(res, row, 2),
                  "status", avc_db_res_value(res, row, 3),
                  "chunk_count",
                  (json_int_t) atoll(avc_db_res_value(res, row, 4)),
                  "bytes", (json_int_t) atoll(avc_db_res_value(res, row, 5)),
                  "created_at", avc_db_res_value(res, row, 7));
    if (o && !avc_db_res_isnull(res, row, 6)) {
        json_object_set_new(o, "error",
                            json_string(avc_db_res_value(res, row, 6)));
    }
    if (o && full) {
        json_object_set_new(o, "progress",
                            json_real(atof(avc_db_res_value(res, row, 8))));
    }
    return o;
}

static json_t *
avc_doc_summary_json(avc_db_res_t *res, int row)
{
    return avc_doc_json(res, row, 0);
}

static void
avc_docs_listed(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_rows(call, err, res, avc_doc_summary_json);
}

static void
avc_docs_list_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    avc__v_t v;
    long long skip, limit;
    char s1[24], s2[24];
    const char *p[4];

    if (avc__v_begin(&v, call, 0) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__v_qint(&v, "skip", 0, 0, 1000000000, &skip);
    avc__v_qint(&v, "limit", 100, 1, 1000, &limit);
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return;
    }
    avc__v_end(&v);
    snprintf(s1, sizeof(s1), "%lld", skip);
    snprintf(s2, sizeof(s2), "%lld", limit);
    p[0] = kb->id;
    p[1] = avc_call_param(call, "topic");
    p[2] = s1;
    p[3] = s2;
    if (avc__q(call, "SELECT " AVC_DOC_COLS " FROM documents"
               " WHERE dealership_id = $1::bigint"
               " AND ($2::text IS NULL OR topic = $2)"
               " ORDER BY created_at DESC, id DESC"
               " OFFSET $3::bigint LIMIT $4::bigint", 4, p, avc_docs_listed)
        != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_rag_documents(avc_call_t *call)
{
    return avc__kb_begin(call, 0, avc_docs_list_next);
}

static int
avc_doc_id(avc_call_t *call)
{
    const char *d = avc_call_param(call, "doc_id");

    if (d == NULL || *d == '\0' || strlen(d) > 18
        || strspn(d, "0123456789") != strlen(d))
    {
        avc__call_error(call, 404, "Document not found");
        return 0;
    }
    return 1;
}

static void
avc_doc_got(avc_call_t *call, int err, avc_db_res_t *res)
{
    char msg[96];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        snprintf(msg, sizeof(msg), "Document with ID %s not found",
                 avc_call_param(call, "doc_id"));
        avc__call_error(call, 404, msg);
        return;
    }
    avc__call_json(call, 200, avc_doc_json(res, 0, 1));
}

static void
avc_doc_get_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    const char *p[2];

    if (!avc_doc_id(call)) {
        return;
    }
    p[0] = kb->id;
    p[1] = avc_call_param(call, "doc_id");
    if (avc__q(call, "SELECT " AVC_DOC_COLS " FROM documents"
               " WHERE dealership_id = $1::bigint AND id = $2::bigint",
               2, p, avc_doc_got) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_rag_document_get(avc_call_t *call)
{
    return avc__kb_begin(call, 0, avc_doc_get_next);
}

static void
avc_doc_deleted(avc_call_t *call, int err, avc_db_res_t *res)
{
    char msg[96];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_affected(res) != 1) {
        snprintf(msg, sizeof(msg), "Document with ID %s not found",
                 avc_call_param(call, "doc_id"));
        avc__call_error(call, 404, msg);
        return;
    }
    avc_kb_drop_answers(call->app, atoll(((avc__kb_t *) call->op)->id));
    if (call->app->retriever) {
        avc_retriever_invalidate(call->app->retriever,
                                 atoll(((avc__kb_t *) call->op)->id));
    }
    avc__call_raw(call, 204, NULL, "", 0);
}

static void
avc_doc_forgotten(int err, void *data)
{
    avc__call_raw(data, 204, NULL, "", 0);
}

/* Pinecone: the document is gone; its chunks' vectors go next */
static void
avc_doc_deleted_pc(avc_call_t *call, int err, avc_db_res_t *res)
{
    int64_t *ids = NULL;
    size_t n = 0;
    char msg[96];
    int rc;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (atoll(avc_db_res_value(res, 0, 0)) != 1) {
        snprintf(msg, sizeof(msg), "Document with ID %s not found",
                 avc_call_param(call, "doc_id"));
        avc__call_error(call, 404, msg);
        return;
    }
    rc = avc__ids_parse(avc_db_res_value(res, 0, 1), &ids, &n);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_WARN, "rag: document %s: its vectors stay in "
                "Pinecone until a retrieval meets them: %s",
                avc_call_param(call, "doc_id"), avc_strerror(rc));
    }
    rc = avc_kb_forget(call, ids, n, avc_doc_forgotten);
    free(ids);
    if (!rc) {
        avc__call_raw(call, 204, NULL, "", 0);
    }
}

static void
avc_doc_delete_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    const char *p[2];

    if (!avc_doc_id(call)) {
        return;
    }
    p[0] = kb->id;
    p[1] = avc_call_param(call, "doc_id");
    if (avc_kb_pinecone(call->app)) {
        /* the chunk ids as they were before the cascade took them */
        if (avc__q(call, "WITH d AS (DELETE FROM documents"
                   " WHERE dealership_id = $1::bigint AND id = $2::bigint"
                   " RETURNING id)"
                   " SELECT (SELECT count(*) FROM d),"
                   " ARRAY(SELECT c.id FROM document_chunks c"
                   " WHERE c.dealership_id = $1::bigint"
                   " AND c.document_id = $2::bigint ORDER BY c.id)::text",
                   2, p, avc_doc_deleted_pc) != AVC_OK)
        {
            avc__call_error(call, 503, "Service temporarily unavailable");
        }
        return;
    }
    /* chunks and the job go with it (cascade); the trigger bumps the
       dealership's generation, which drops cached vectors and answers */
    if (avc__q(call, "DELETE FROM documents WHERE dealership_id = $1::bigint"
               " AND id = $2::bigint", 2, p, avc_doc_deleted) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_rag_document_delete(avc_call_t *call)
{
    return avc__kb_begin(call, 1, avc_doc_delete_next);
}

/* reset: every document, chunk and vector of the dealership */

static void
avc_reset_reply(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    char msg[400];

    snprintf(msg, sizeof(msg), "RAG reset for dealership '%s'", kb->name);
    avc__call_json(call, 200, json_pack("{s:s}", "message", msg));
}

static void
avc_reset_forgotten(int err, void *data)
{
    avc_reset_reply(data);
}

static void
avc_reset_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__kb_t *kb = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    avc_kb_drop_answers(call->app, atoll(kb->id));
    if (!avc_kb_pinecone(call->app)) {
        if (call->app->retriever) {
            avc_retriever_invalidate(call->app->retriever, atoll(kb->id));
        }
        avc_reset_reply(call);
        return;
    }
    /* the whole namespace, before the next upload can fill it again */
    if (!avc_kb_forget(call, NULL, 0, avc_reset_forgotten)) {
        avc_reset_reply(call);
    }
}

static void
avc_reset_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    const char *p[1];

    if (!kb->initialized) {
        avc__kb_not_initialized(call);
        return;
    }
    p[0] = kb->id;
    if (avc__q(call, "WITH d AS (DELETE FROM documents"
               " WHERE dealership_id = $1::bigint RETURNING 1)"
               " UPDATE dealerships SET generation = generation + 1"
               " WHERE id = $1::bigint", 1, p, avc_reset_done) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_rag_reset(avc_call_t *call)
{
    return avc__kb_begin(call, 1, avc_reset_next);
}
