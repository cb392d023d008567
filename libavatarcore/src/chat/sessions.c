/*
 * The chat routes beside the answer itself: the caller's history and
 * sessions, clearing a session's context, prewarming a session, and the
 * cache counters.  Every session access is owner-checked in the query: a
 * session of another user is reported like a missing one.
 */
#include "chat_int.h"

#include <avatarcore/cache.h>
#include <avatarcore/prompt.h>
#include <avatarcore/retrieve.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GET /history?session_id=&limit= */

static json_t *
avc_history_json(avc_db_res_t *res, int i)
{
    json_t *src = avc_db_res_isnull(res, i, 4)
                  ? json_null()
                  : json_loads(avc_db_res_value(res, i, 4), 0, NULL);

    return json_pack("{s:I, s:s, s:s, s:s, s:o*, s:s}",
                     "id", (json_int_t) strtoll(avc_db_res_value(res, i, 0),
                                                NULL, 10),
                     "session_id", avc_db_res_value(res, i, 1),
                     "role", avc_db_res_value(res, i, 2),
                     "content", avc_db_res_value(res, i, 3),
                     "sources", src,
                     "timestamp", avc_db_res_value(res, i, 5));
}

static void
avc_history_rows(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_rows(call, err, res, avc_history_json);
}

typedef struct {
    char uid[24];
    char limit[16];
    char *session_id;
    char did[24];
    long long did_req;          /* the dealership_id asked for */
    int has_did_req;
    long long queries;
    long long chunks;
    uint64_t t0;
    json_t *titles;
    json_t *passages;
    json_t *seen;
    avc_retrieve_op_t *rop;
} avc_sess_t;

static void
avc_sess_free(void *p)
{
    avc_sess_t *s = p;

    if (s == NULL) {
        return;
    }
    if (s->rop) {
        avc_retrieve_cancel(s->rop);
    }
    free(s->session_id);
    json_decref(s->titles);
    json_decref(s->passages);
    json_decref(s->seen);
    free(s);
}

static avc_sess_t *
avc_sess_new(avc_call_t *call)
{
    avc_sess_t *s = calloc(1, sizeof(*s));

    if (s) {
        call->op = s;
        call->op_free = avc_sess_free;
    }
    return s;
}

/* the newest messages (limit), answered newest last */
static void
avc_history_list(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    const char *p[3];

    p[0] = s->uid;
    p[1] = s->session_id;
    p[2] = s->limit;
    if (avc__q(call, "SELECT * FROM (SELECT m.id, c.session_id, m.role,"
               " m.content, m.sources::text, " AVC__TS("m.created_at")
               " FROM messages m JOIN conversations c"
               " ON c.id = m.conversation_id"
               " AND c.dealership_id = m.dealership_id"
               " WHERE c.user_id = $1::bigint"
               " AND ($2::text IS NULL OR c.session_id = $2)"
               " ORDER BY m.id DESC LIMIT $3::int) h ORDER BY h.id", 3, p,
               avc_history_rows) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_history_checked(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        avc__call_error(call, 404, "Session not found");
        return;
    }
    avc_history_list(call);
}

static void
avc_history_authed(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    const char *p[2];

    snprintf(s->uid, sizeof(s->uid), "%lld", call->who.id);
    if (s->session_id == NULL) {
        avc_history_list(call);
        return;
    }
    /* a session named must be the caller's (404, not an empty list) */
    p[0] = s->uid;
    p[1] = s->session_id;
    if (avc__q(call, "SELECT 1 FROM conversations"
               " WHERE user_id = $1::bigint AND session_id = $2", 2, p,
               avc_history_checked) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static int
avc_sess_query(avc_call_t *call, avc_sess_t *s, int with_session)
{
    avc__v_t v;
    long long limit;
    const char *sid;

    if (avc__v_begin_args(&v, call) != AVC_OK) {
        avc__v_end(&v);
        return AVC_EPARSE;      /* answered */
    }
    avc__v_qint(&v, "limit", with_session ? 50 : 100, 1, 500, &limit);
    sid = avc_call_param(call, "session_id");
    if (with_session && sid && *sid) {
        if (!avc__chat_session_ok(sid)) {
            avc__v_fail(&v, "query.session_id", "string_pattern_mismatch",
                        "Not a session id");
        } else {
            s->session_id = strdup(sid);
            if (s->session_id == NULL) {
                avc__v_end(&v);
                return AVC_ENOMEM;
            }
        }
    }
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_EPARSE;
    }
    avc__v_end(&v);
    snprintf(s->limit, sizeof(s->limit), "%lld", limit);
    return AVC_OK;
}

AVC_API int
avc_op_chat_history(avc_call_t *call)
{
    avc_sess_t *s = avc_sess_new(call);
    int rc;

    if (s == NULL) {
        return AVC_ENOMEM;
    }
    rc = avc_sess_query(call, s, 1);
    if (rc != AVC_OK) {
        return rc == AVC_EPARSE ? AVC_OK : rc;
    }
    avc__authenticate(call, avc_history_authed);
    return AVC_OK;
}

/* GET /sessions */

static json_t *
avc_session_json(avc_db_res_t *res, int i)
{
    return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I}",
                     "session_id", avc_db_res_value(res, i, 0),
                     "mode", avc_db_res_value(res, i, 1),
                     "title", avc_db_res_isnull(res, i, 2)
                              ? NULL : avc_db_res_value(res, i, 2),
                     "started_at", avc_db_res_value(res, i, 3),
                     "last_at", avc_db_res_value(res, i, 4),
                     "messages", (json_int_t) strtoll(
                         avc_db_res_value(res, i, 5), NULL, 10));
}

static void
avc_sessions_rows(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_rows(call, err, res, avc_session_json);
}

static void
avc_sessions_authed(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    const char *p[2];

    snprintf(s->uid, sizeof(s->uid), "%lld", call->who.id);
    p[0] = s->uid;
    p[1] = s->limit;
    if (avc__q(call, "SELECT c.session_id, c.mode, c.title, "
               AVC__TS("c.started_at") ", " AVC__TS("c.last_at") ","
               " (SELECT count(*) FROM messages m"
               "  WHERE m.conversation_id = c.id)"
               " FROM conversations c WHERE c.user_id = $1::bigint"
               " ORDER BY c.last_at DESC, c.id DESC LIMIT $2::int", 2, p,
               avc_sessions_rows) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_chat_sessions(avc_call_t *call)
{
    avc_sess_t *s = avc_sess_new(call);
    int rc;

    if (s == NULL) {
        return AVC_ENOMEM;
    }
    rc = avc_sess_query(call, s, 0);
    if (rc != AVC_OK) {
        return rc == AVC_EPARSE ? AVC_OK : rc;
    }
    avc__authenticate(call, avc_sessions_authed);
    return AVC_OK;
}

/* POST /session/{session_id}/clear */

static void
avc_clear_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_sess_t *s = call->op;
    avc_shcache_t *cache;
    char msg[200];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        avc__call_error(call, 404, "Session not found");
        return;
    }
    cache = avc__app_cache(call->app);
    if (cache) {
        (void) avc_shcache_session_drop(cache, s->session_id, call->who.id);
    }
    if (strncmp(call->path, "/api/v1/voice/", 14) == 0) {
        /* DELETE /api/v1/voice/session/{id}: the same, in its words */
        snprintf(msg, sizeof(msg), "Session %s cleared", s->session_id);
    } else {
        snprintf(msg, sizeof(msg), "Session %s context cleared",
                 s->session_id);
    }
    avc__call_json(call, 200, json_pack("{s:s}", "message", msg));
}

static void
avc_clear_authed(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    const char *p[2];

    snprintf(s->uid, sizeof(s->uid), "%lld", call->who.id);
    p[0] = s->session_id;
    p[1] = s->uid;
    if (avc__q(call, "UPDATE conversations SET cleared_at = now()"
               " WHERE session_id = $1 AND user_id = $2::bigint"
               " RETURNING id", 2, p, avc_clear_done) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_chat_clear(avc_call_t *call)
{
    const char *sid = avc_call_param(call, "session_id");
    avc_sess_t *s;

    if (sid == NULL || !avc__chat_session_ok(sid)) {
        avc__call_error(call, 404, "Session not found");
        return AVC_OK;
    }
    s = avc_sess_new(call);
    if (s == NULL || (s->session_id = strdup(sid)) == NULL) {
        return AVC_ENOMEM;
    }
    avc__authenticate(call, avc_clear_authed);
    return AVC_OK;
}

/*
 * POST /prewarm {session_id, dealership_id?}: load the dealership's index
 * into this worker and warm the caches by running the knowledge base's
 * own headings as queries; the passages found become the session's
 * context.
 */

#define AVC_PREWARM_QUERIES "5"     /* headings run as queries */

static void avc_prewarm_next(avc_call_t *call);

static void
avc_prewarm_finish(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    avc_shcache_t *cache = avc__app_cache(call->app);
    char *blob;

    if (cache && json_array_size(s->passages)) {
        blob = json_dumps(s->passages, JSON_COMPACT);
        if (blob) {
            (void) avc_shcache_session_put(cache, s->session_id,
                                           call->who.id, blob,
                                           strlen(blob));
            free(blob);
        }
    }
    avc__call_json(call, 200,
        json_pack("{s:s, s:I, s:I, s:I, s:I}",
                  "session_id", s->session_id,
                  "dealership_id", (json_int_t) strtoll(s->did, NULL, 10),
                  "chunks_prewarmed", (json_int_t) s->chunks,
                  "queries_run", (json_int_t) s->queries,
                  "elapsed_ms", (json_int_t) (avc_loop_now(call->app->loop)
                                              - s->t0)));
}

static void
avc_prewarm_found(int err, const avc_rag_results_t *res, void *data)
{
    avc_call_t *call = data;
    avc_sess_t *s = call->op;
    size_t i, n;
    char key[24];

    s->rop = NULL;
    if (err != AVC_OK) {
        if (err == AVC_EUPSTREAM || err == AVC_ETIMEDOUT) {
            avc__call_error(call, err == AVC_ETIMEDOUT ? 504 : 502,
                            "The knowledge base search failed");
            return;
        }
        avc__reply_step_error(call, err, NULL);
        return;
    }
    s->queries++;
    n = avc_rag_results_count(res);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%lld",
                 (long long) avc_rag_result_chunk_id(res, i));
        if (json_object_get(s->seen, key)) {
            continue;
        }
        json_object_set_new(s->seen, key, json_true());
        s->chunks++;
        json_array_append_new(s->passages,
            json_pack("{s:s, s:s, s:s, s:s, s:f}",
                      "title", avc_rag_result_title(res, i),
                      "filename", avc_rag_result_filename(res, i),
                      "topic", avc_rag_result_topic(res, i),
                      "content", avc_rag_result_content(res, i),
                      "score", avc_rag_result_score(res, i)));
    }
    avc_prewarm_next(call);
}

static void
avc_prewarm_next(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    const char *q;

    if ((size_t) s->queries >= json_array_size(s->titles)) {
        avc_prewarm_finish(call);
        return;
    }
    q = json_string_value(json_array_get(s->titles, (size_t) s->queries));
    if (avc_retrieve_start(call->app->retriever, strtoll(s->did, NULL, 10),
                           q, 5, NULL, 0, avc_prewarm_found, call, &s->rop)
        != AVC_OK)
    {
        avc__call_error(call, 500, "Internal server error");
    }
}

static void
avc_prewarm_titles(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_sess_t *s = call->op;
    int i, n;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    n = avc_db_res_rows(res);
    if (n > 0 && !avc_db_res_isnull(res, 0, 1)) {
        avc__call_error(call, 404, "Session not found");
        return;
    }
    s->titles = json_array();
    s->passages = json_array();
    s->seen = json_object();
    if (s->titles == NULL || s->passages == NULL || s->seen == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    for (i = 0; i < n; i++) {
        if (!avc_db_res_isnull(res, i, 0)) {
            json_array_append_new(s->titles,
                                  json_string(avc_db_res_value(res, i, 0)));
        }
    }
    avc_prewarm_next(call);
}

static void
avc_prewarm_dealership(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_sess_t *s = call->op;
    const char *p[3];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        avc__call_error(call, 404, "Dealership not found");
        return;
    }
    p[0] = s->did;
    p[1] = s->session_id;
    p[2] = s->uid;
    /* one row per heading, and a marker row when the session belongs to
     * someone else (column 2 not null), which wins */
    if (avc__q(call, "SELECT NULL::text, c.id::text FROM conversations c"
               " WHERE c.session_id = $2 AND (c.user_id <> $3::bigint"
               " OR c.dealership_id <> $1::bigint)"
               " UNION ALL"
               " (SELECT coalesce(nullif(k.title, ''), d.filename), NULL"
               " FROM documents d JOIN document_chunks k"
               " ON k.document_id = d.id AND k.position = 0"
               " WHERE d.dealership_id = $1::bigint AND d.status = 'ready'"
               " ORDER BY d.id DESC LIMIT " AVC_PREWARM_QUERIES ")", 3, p,
               avc_prewarm_titles) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_prewarm_authed(avc_call_t *call)
{
    avc_sess_t *s = call->op;
    const char *p[1];
    long long did;

    did = avc__chat_dealership(call, s->did_req, s->has_did_req);
    if (did == 0) {
        return;
    }
    snprintf(s->did, sizeof(s->did), "%lld", did);
    snprintf(s->uid, sizeof(s->uid), "%lld", call->who.id);
    p[0] = s->did;
    if (avc__q(call, "SELECT id FROM dealerships"
               " WHERE id = $1::bigint AND is_active", 1, p,
               avc_prewarm_dealership) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_chat_prewarm(avc_call_t *call)
{
    avc_sess_t *s = avc_sess_new(call);
    avc__v_t v;
    const char *sid = NULL;
    long long did = 0;
    int has;

    if (s == NULL) {
        return AVC_ENOMEM;
    }
    s->t0 = avc_loop_now(call->app->loop);
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return AVC_OK;
    }
    if (avc__v_str(&v, "session_id", 1, 1, AVC_CHAT_SESSION_MAX, &sid) == 1
        && !avc__chat_session_ok(sid))
    {
        avc__v_fail(&v, "session_id", "string_pattern_mismatch",
                    "Session id may hold only letters, digits and . _ : -");
    }
    has = avc__v_int(&v, "dealership_id", 0, 1, LLONG_MAX, &did) == 1;
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_OK;
    }
    s->session_id = strdup(sid);
    avc__v_end(&v);
    if (s->session_id == NULL) {
        return AVC_ENOMEM;
    }
    s->did_req = did;
    s->has_did_req = has;
    avc__authenticate(call, avc_prewarm_authed);
    return AVC_OK;
}

/* GET /cache/stats (super admin) */

static void
avc_stats_authed(avc_call_t *call)
{
    avc_shcache_t *c;
    unsigned long long eh, em, ah, am;

    if (!avc__is_sa(&call->who)) {
        avc__call_error(call, 403, "Not enough permissions");
        return;
    }
    c = avc__app_cache(call->app);
    if (c == NULL) {
        avc__call_error(call, 503, "Service temporarily unavailable");
        return;
    }
    eh = avc_shcache_stat(c, AVC_SHCACHE_EMBED_HITS);
    em = avc_shcache_stat(c, AVC_SHCACHE_EMBED_MISSES);
    ah = avc_shcache_stat(c, AVC_SHCACHE_ANSWER_HITS);
    am = avc_shcache_stat(c, AVC_SHCACHE_ANSWER_MISSES);
    avc__call_json(call, 200, json_pack(
        "{s:{s:I, s:I, s:I, s:f},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:f},"
        " s:I, s:{s:I, s:I, s:I}}",
        "embedding_cache",
        "size", (json_int_t) avc_shcache_stat(c, AVC_SHCACHE_EMBED_ENTRIES),
        "hits", (json_int_t) eh, "misses", (json_int_t) em,
        "hit_rate", eh + em ? (double) eh / (double) (eh + em) : 0.0,
        "semantic_cache",
        "total_entries",
        (json_int_t) avc_shcache_stat(c, AVC_SHCACHE_ANSWER_ENTRIES),
        "total_hits", (json_int_t) ah,
        "dealerships",
        (json_int_t) avc_shcache_stat(c, AVC_SHCACHE_ANSWER_DEALERSHIPS),
        "hits", (json_int_t) ah, "misses", (json_int_t) am,
        "hit_rate", ah + am ? (double) ah / (double) (ah + am) : 0.0,
        "session_contexts",
        (json_int_t) avc_shcache_stat(c, AVC_SHCACHE_SESSIONS),
        "memory",
        "bytes_total", (json_int_t) avc_shcache_stat(c,
                                                   AVC_SHCACHE_BYTES_TOTAL),
        "bytes_used", (json_int_t) avc_shcache_stat(c,
                                                  AVC_SHCACHE_BYTES_USED),
        "evictions", (json_int_t) avc_shcache_stat(c,
                                                 AVC_SHCACHE_EVICTIONS)));
}

AVC_API int
avc_op_chat_cache_stats(avc_call_t *call)
{
    avc__authenticate(call, avc_stats_authed);
    return AVC_OK;
}

/* GET /api/v1/chat/scenarios: what a trainee may pick for a role-play */

static void
avc_scenarios_authed(avc_call_t *call)
{
    const avc_scenarios_t *s = call->app->scenarios;
    json_t *list = json_array();
    size_t i, n = s ? avc_scenarios_count(s) : 0;

    for (i = 0; i < n && list; i++) {
        const avc_scenario_t *sc = avc_scenarios_get(s, i);

        json_array_append_new(list,
            json_pack("{s:s, s:s, s:s, s:s, s:i}", "id", sc->id,
                      "product", sc->product ? sc->product : "",
                      "customer_profile",
                      sc->customer_profile ? sc->customer_profile : "",
                      "opening_line",
                      sc->opening_line ? sc->opening_line : "",
                      "objections", (int) sc->n_objections));
    }
    if (list == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__call_json(call, 200, json_pack("{s:o}", "scenarios", list));
}

AVC_API int
avc_op_chat_scenarios(avc_call_t *call)
{
    avc__authenticate(call, avc_scenarios_authed);
    return AVC_OK;
}
