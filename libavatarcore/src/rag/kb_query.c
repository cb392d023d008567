/*
 * POST /api/v1/rag/{id}/query?query=...&top_k=5[&min_score=0.3], with an
 * optional JSON array of topics as the body: the knowledge base's best
 * passages for a question, through the hybrid retriever (vectors and full
 * text, fused, under a relevance floor), scoped to the dealership.
 */
#include "kb.h"

#include <avatarcore/retrieve.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_QUERY_MAX_TOPICS 32

typedef struct {
    char *query;
    long long top_k;
    double min_score;
    const char *topics[AVC_QUERY_MAX_TOPICS + 1];
    json_t *topics_json;
    avc_retrieve_op_t *op;
} avc_kbq_t;

static void
avc_kbq_free(void *p)
{
    avc_kbq_t *q = p;

    if (q == NULL) {
        return;
    }
    if (q->op) {
        avc_retrieve_cancel(q->op);
    }
    json_decref(q->topics_json);
    free(q->query);
    free(q);
}

static void
avc_kbq_done(int err, const avc_rag_results_t *res, void *data)
{
    avc_call_t *call = data;
    avc_kbq_t *q = ((avc__kb_t *) call->op)->extra;
    json_t *results;
    char score[16];
    size_t i, n;

    q->op = NULL;
    if (err != AVC_OK) {
        if (err == AVC_EUPSTREAM || err == AVC_ETIMEDOUT) {
            avc__call_error(call, err == AVC_ETIMEDOUT ? 504 : 502,
                            "The embedding provider failed");
            return;
        }
        avc__reply_step_error(call, err, NULL);
        return;
    }
    results = json_array();
    n = avc_rag_results_count(res);
    for (i = 0; i < n; i++) {
        snprintf(score, sizeof(score), "%.4f",
                 avc_rag_result_score(res, i));
        json_array_append_new(results, json_pack(
            "{s:s, s:s, s:s, s:f, s:I}",
            "content", avc_rag_result_content(res, i),
            "topic", avc_rag_result_topic(res, i),
            "filename", avc_rag_result_filename(res, i),
            "score", atof(score),
            "document_id", (json_int_t) avc_rag_result_document_id(res, i)));
    }
    avc__call_json(call, 200, json_pack("{s:s, s:o, s:I}", "query",
                                        q->query, "results", results,
                                        "count", (json_int_t) n));
}

static void
avc_kbq_cancel(avc_call_t *call, void *ctx)
{
    /* the op state's free cancels the retrieval */
}

static void
avc_kbq_next(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    avc_kbq_t *q = kb->extra;

    if (!kb->initialized) {
        avc__kb_not_initialized(call);
        return;
    }
    avc__call_begin(call, avc_kbq_cancel, NULL);
    if (avc_retrieve_start(call->app->retriever, atoll(kb->id), q->query,
                           (size_t) q->top_k,
                           q->topics[0] ? q->topics : NULL, q->min_score,
                           avc_kbq_done, call, &q->op) != AVC_OK)
    {
        avc__call_error(call, 422, "Invalid query");
    }
}

AVC_API int
avc_op_rag_query(avc_call_t *call)
{
    avc__v_t v;
    avc_kbq_t *q;
    const char *query, *ms;
    json_t *t;
    size_t i, n = 0;
    char *end;
    int rc;

    /* the body, if any, is a JSON array of topics: read below */
    if (avc__v_begin_args(&v, call) != AVC_OK) {
        avc__v_end(&v);
        return AVC_OK;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        avc__v_end(&v);
        return AVC_ENOMEM;
    }
    query = avc_call_param(call, "query");
    if (query == NULL || *query == '\0') {
        avc__v_fail(&v, "query.query", "missing", "Field required");
    } else if (strlen(query) > 5000
               || !avc__utf8_valid(query, strlen(query)))
    {
        avc__v_fail(&v, "query.query", "string_too_long",
                    "String should have at most 5000 characters");
    }
    avc__v_qint(&v, "top_k", 5, 1, 20, &q->top_k);
    q->min_score = -1;
    ms = avc_call_param(call, "min_score");
    if (ms && *ms) {
        q->min_score = strtod(ms, &end);
        if (*end != '\0' || q->min_score < 0 || q->min_score > 1) {
            avc__v_fail(&v, "query.min_score", "float_parsing",
                        "Input should be a number between 0 and 1");
        }
    }
    /* the body is either nothing or a JSON array of topic names */
    if (call->body_len > 0) {
        json_t *arr = json_loadb(call->body, call->body_len, 0, NULL);

        if (!json_is_array(arr) || json_array_size(arr) > AVC_QUERY_MAX_TOPICS)
        {
            avc__v_fail(&v, "body", "list_type",
                        "Input should be a list of topic names");
            json_decref(arr);
        } else {
            json_array_foreach(arr, i, t) {
                if (!json_is_string(t)) {
                    avc__v_fail(&v, "body", "string_type",
                                "Topics should be strings");
                    break;
                }
                q->topics[n++] = json_string_value(t);
            }
            q->topics_json = arr;
        }
    }
    q->topics[n] = NULL;
    if (avc__v_failed(&v)) {
        avc_kbq_free(q);
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_OK;
    }
    q->query = strdup(query);
    avc__v_end(&v);
    if (q->query == NULL) {
        avc_kbq_free(q);
        return AVC_ENOMEM;
    }
    rc = avc__kb_begin(call, 0, avc_kbq_next);
    if (rc != AVC_OK || call->op == NULL || call->status != 0) {
        avc_kbq_free(q);
        return rc;
    }
    ((avc__kb_t *) call->op)->extra = q;
    ((avc__kb_t *) call->op)->extra_free = avc_kbq_free;
    return AVC_OK;
}
