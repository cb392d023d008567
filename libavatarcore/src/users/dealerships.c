/*
 * /api/v1/dealerships: the tenants.
 *
 * A super admin sees and manages every dealership; anyone else sees only
 * its own, and a dealership admin may edit its own (not its active flag)
 * and its knowledge-base settings.  As for users (users_int.h) the scope
 * is a condition of every statement: another dealership is answered like
 * a missing one.
 *
 * Deactivating a dealership cuts its users off at once (the caller's
 * dealership is checked on every request) and revokes their refresh
 * tokens in the same statement.  Deleting one removes its users,
 * documents, chunks, conversations and reports (ON DELETE CASCADE in the
 * schema).
 */
#include "users_int.h"
#include "../rag/kb.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the length limits of the schema's CHECK constraints */
#define AVC_DEALERSHIP_NAME_MAX     255
#define AVC_DEALERSHIP_ADDRESS_MAX  1000
#define AVC_DEALERSHIP_PHONE_MAX    64
#define AVC_DEALERSHIP_TOPICS_MAX   64

#define AVC_DEALERSHIP_SCOPE(n)  "($" n "::bigint IS NULL OR d.id = $" n ")"

static void
avc_dealerships_start(avc_call_t *call, int rc)
{
    if (rc != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static int
avc_dealerships_sa(avc_call_t *call)
{
    if (avc__is_sa(&call->who)) {
        return 1;
    }
    avc__call_error(call, 403, "Not enough permissions");
    return 0;
}

static int
avc_dealerships_admin(avc_call_t *call)
{
    if (avc__is_sa(&call->who) || avc__is_da(&call->who)) {
        return 1;
    }
    avc__call_error(call, 403, "Not enough permissions");
    return 0;
}

/*
 * The dealership fields of POST and PATCH.  The name must hold more than
 * blanks (the schema checks btrim(name)).
 */
typedef struct {
    const char *name;
    const char *address;
    const char *contact_email;
    const char *contact_phone;
} avc_dealership_fields_t;

static void
avc_dealerships_fields(avc__v_t *v, avc_dealership_fields_t *f,
    int name_required)
{
    const char *s;

    memset(f, 0, sizeof(*f));
    if (avc__v_str(v, "name", name_required, 1, AVC_DEALERSHIP_NAME_MAX,
                   &f->name) == 1)
    {
        for (s = f->name; *s && isspace((unsigned char) *s); s++) {
            /* void */
        }
        if (*s == '\0') {
            avc__v_fail(v, "name", "string_too_short",
                        "String should have at least 1 character");
            f->name = NULL;
        }
    }
    avc__v_str(v, "address", 0, 0, AVC_DEALERSHIP_ADDRESS_MAX, &f->address);
    avc__v_email(v, "contact_email", 0, &f->contact_email);
    avc__v_str(v, "contact_phone", 0, 0, AVC_DEALERSHIP_PHONE_MAX,
               &f->contact_phone);
}

static void
avc_dealerships_not_found(avc_call_t *call)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "Dealership with ID %lld not found",
             atoll(avc_call_param(call, "id")));
    avc__call_error(call, 404, msg);
}

/* The answer of a statement returning one dealership (or none: 404). */
static void
avc_dealerships_reply_one(avc_call_t *call, int err, avc_db_res_t *res,
    int status)
{
    if (err == AVC_EDB && strcmp(avc_db_res_sqlstate(res), "23505") == 0
        && strcmp(avc_db_res_constraint(res), "dealerships_name_key") == 0)
    {
        avc__call_error(call, 409, "Dealership with this name already exists");
        return;
    }
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        avc_dealerships_not_found(call);
        return;
    }
    avc__call_json(call, status, avc__dealership_json(res, 0));
}

static void
avc_dealerships_one_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_dealerships_reply_one(call, err, res, 200);
}

static void
avc_dealerships_created(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_dealerships_reply_one(call, err, res, 201);
}

/* the path id: 1, or 0 after replying */
static int
avc_dealerships_id(avc_call_t *call, char buf[AVC__USERS_NUM])
{
    avc__v_t v;
    long long id;

    if (avc__users_v_init(&v, call) != AVC_OK) {
        return 0;
    }
    avc__users_path_id(&v, "id", &id);
    if (avc__users_v_check(&v)) {
        return 0;
    }
    avc__v_end(&v);
    snprintf(buf, AVC__USERS_NUM, "%lld", id);
    return 1;
}

/* POST /api/v1/dealerships/ */

static void
avc_dealerships_create_auth(avc_call_t *call)
{
    avc__v_t v;
    avc_dealership_fields_t f;
    const char *p[4];

    if (!avc_dealerships_sa(call)) {
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc_dealerships_fields(&v, &f, 1);
    if (avc__users_v_check(&v)) {
        return;
    }
    p[0] = f.name;
    p[1] = f.address;
    p[2] = f.contact_email;
    p[3] = f.contact_phone;
    avc_dealerships_start(call, avc__q(call,
        "INSERT INTO dealerships AS d (name, address, contact_email,"
        " contact_phone) VALUES ($1, $2, $3, $4)"
        " RETURNING " AVC__DEALERSHIP_COLS, 4, p, avc_dealerships_created));
    avc__v_end(&v);
}

AVC_API int
avc_op_dealerships_create(avc_call_t *call)
{
    avc__authenticate(call, avc_dealerships_create_auth);
    return AVC_OK;
}

/* GET /api/v1/dealerships/: a super admin all, anyone else [own] or [] */

static void
avc_dealerships_listed(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_rows(call, err, res, avc__dealership_json);
}

static void
avc_dealerships_list_auth(avc_call_t *call)
{
    avc__v_t v;
    long long skip = 0, limit = 100;
    char scope[AVC__USERS_NUM], sbuf[AVC__USERS_NUM], lbuf[AVC__USERS_NUM];
    const char *p[3];

    if (avc__users_v_init(&v, call) != AVC_OK) {
        return;
    }
    avc__v_qint(&v, "skip", 0, 0, LLONG_MAX, &skip);
    avc__v_qint(&v, "limit", 100, 1, 100, &limit);
    if (avc__users_v_check(&v)) {
        return;
    }
    avc__v_end(&v);
    snprintf(sbuf, sizeof(sbuf), "%lld", skip);
    snprintf(lbuf, sizeof(lbuf), "%lld", limit);
    p[0] = avc__users_scope(call, scope);
    p[1] = sbuf;
    p[2] = lbuf;
    avc_dealerships_start(call, avc__q(call,
        "SELECT " AVC__DEALERSHIP_COLS " FROM dealerships d"
        " WHERE " AVC_DEALERSHIP_SCOPE("1")
        " ORDER BY d.id OFFSET $2::bigint LIMIT $3::bigint",
        3, p, avc_dealerships_listed));
}

AVC_API int
avc_op_dealerships_list(avc_call_t *call)
{
    avc__authenticate(call, avc_dealerships_list_auth);
    return AVC_OK;
}

/* GET /api/v1/dealerships/{id} */

static void
avc_dealerships_get_auth(avc_call_t *call)
{
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM];
    const char *p[2];

    if (!avc_dealerships_id(call, idbuf)) {
        return;
    }
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    avc_dealerships_start(call, avc__q(call,
        "SELECT " AVC__DEALERSHIP_COLS " FROM dealerships d"
        " WHERE d.id = $1::bigint AND " AVC_DEALERSHIP_SCOPE("2"),
        2, p, avc_dealerships_one_done));
}

AVC_API int
avc_op_dealerships_get(avc_call_t *call)
{
    avc__authenticate(call, avc_dealerships_get_auth);
    return AVC_OK;
}

/*
 * PATCH /api/v1/dealerships/{id}: one statement reads the dealership in
 * the caller's scope (locked), updates it, and when it is deactivated
 * revokes the refresh tokens of its users.
 */

static void
avc_dealerships_update_auth(avc_call_t *call)
{
    avc__v_t v;
    avc_dealership_fields_t f;
    json_t *rag = NULL;
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM], *ragtext = NULL;
    const char *p[8];
    long long id = 0;
    int active = 1, has_active;

    if (!avc_dealerships_admin(call)) {
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__users_path_id(&v, "id", &id);
    avc_dealerships_fields(&v, &f, 0);
    has_active = avc__v_bool(&v, "is_active", 0, &active) == 1;
    avc__v_object(&v, "rag_config", 0, &rag);
    if (avc__users_v_check(&v)) {
        return;
    }
    if (has_active && !avc__is_sa(&call->who)) {
        avc__v_end(&v);
        avc__call_error(call, 403, "Only a super admin can activate or "
                                   "deactivate a dealership");
        return;
    }
    if (rag) {
        ragtext = json_dumps(rag, JSON_COMPACT);
        if (ragtext == NULL) {
            avc__v_end(&v);
            avc__call_error(call, 500, "Internal server error");
            return;
        }
    }
    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    p[2] = f.name;
    p[3] = f.address;
    p[4] = f.contact_email;
    p[5] = f.contact_phone;
    p[6] = has_active ? (active ? "true" : "false") : NULL;
    p[7] = ragtext;
    avc_dealerships_start(call, avc__q(call,
        "WITH o AS (SELECT d.id, d.is_active FROM dealerships d"
        " WHERE d.id = $1::bigint AND " AVC_DEALERSHIP_SCOPE("2")
        " FOR UPDATE),"
        " n AS (UPDATE dealerships d SET name = COALESCE($3::text, d.name),"
        " address = COALESCE($4::text, d.address),"
        " contact_email = COALESCE($5::text, d.contact_email),"
        " contact_phone = COALESCE($6::text, d.contact_phone),"
        " is_active = COALESCE($7::boolean, d.is_active),"
        " rag_config = COALESCE($8::jsonb, d.rag_config)"
        " FROM o WHERE d.id = o.id"
        " RETURNING d.*, o.is_active AND NOT d.is_active AS cut),"
        " r AS (UPDATE refresh_tokens t SET revoked_at = now()"
        " FROM users u, n WHERE n.cut AND u.dealership_id = n.id"
        " AND t.user_id = u.id AND t.revoked_at IS NULL)"
        " SELECT " AVC__DEALERSHIP_COLS " FROM n d",
        8, p, avc_dealerships_one_done));
    free(ragtext);
    avc__v_end(&v);
}

AVC_API int
avc_op_dealerships_update(avc_call_t *call)
{
    avc__authenticate(call, avc_dealerships_update_auth);
    return AVC_OK;
}

/*
 * PATCH /api/v1/dealerships/{id}/rag-config: the given settings are
 * merged into rag_config (jsonb ||).  The merged overlap must stay below
 * the chunk size; the statement checks it on the locked row and writes
 * nothing otherwise (then the dealership row comes back without an
 * update: 422).
 */

static void
avc_dealerships_rag_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err == AVC_OK && avc_db_res_rows(res) == 1
        && avc_db_res_isnull(res, 0, 0))
    {
        avc__call_invalid(call, "chunk_overlap", "value_error",
                             "chunk_overlap must be smaller than "
                             "chunk_size");
        return;
    }
    avc_dealerships_reply_one(call, err, res, 200);
}

/* a topic as documents.topic allows it: ^[a-z0-9_]{1,64}$ */
static int
avc_dealerships_topic_ok(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= 64
           && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static void
avc_dealerships_rag_auth(avc_call_t *call)
{
    avc__v_t v;
    json_t *patch, *topics, *t, *meta = NULL;
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM], *text;
    const char *p[3];
    long long id = 0, size = 0, overlap = 0;
    int has_size, has_overlap;
    size_t i;

    if (!avc_dealerships_admin(call)) {
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__users_path_id(&v, "id", &id);
    has_size = avc__v_int(&v, "chunk_size", 0, 100, 5000, &size) == 1;
    has_overlap = avc__v_int(&v, "chunk_overlap", 0, 0, 1000,
                             &overlap) == 1;
    topics = json_object_get(v.body, "topics");
    if (topics && json_is_null(topics)) {
        topics = NULL;
    }
    if (topics && !json_is_array(topics)) {
        avc__v_fail(&v, "topics", "list_type", "Input should be a valid list");
        topics = NULL;
    }
    if (json_array_size(topics) > AVC_DEALERSHIP_TOPICS_MAX) {
        avc__v_fail(&v, "topics", "too_long",
                    "List should have at most 64 items");
        topics = NULL;
    }
    json_array_foreach(topics, i, t) {
        if (!json_is_string(t)) {
            avc__v_fail(&v, "topics", "string_type",
                        "Input should be a list of strings");
            break;
        }
        if (!avc_dealerships_topic_ok(json_string_value(t))) {
            avc__v_fail(&v, "topics", "string_pattern_mismatch",
                        "A topic is 1-64 characters of a-z, 0-9 and _");
            break;
        }
    }
    avc__v_object(&v, "metadata", 0, &meta);
    if (has_size && has_overlap && overlap >= size) {
        avc__v_fail(&v, "chunk_overlap", "value_error",
                    "chunk_overlap must be smaller than chunk_size");
    }
    if (avc__users_v_check(&v)) {
        return;
    }

    patch = json_object();
    if (has_size) {
        json_object_set_new(patch, "chunk_size", json_integer(size));
    }
    if (has_overlap) {
        json_object_set_new(patch, "chunk_overlap", json_integer(overlap));
    }
    if (topics) {
        json_object_set(patch, "topics", topics);
    }
    if (meta) {
        json_object_set(patch, "metadata", meta);
    }
    text = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
    json_decref(patch);
    avc__v_end(&v);
    if (text == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    p[2] = text;
    /* the first column is NULL when the dealership exists but the merged
       settings are refused; no row when it is not in scope */
    avc_dealerships_start(call, avc__q(call,
        "WITH o AS (SELECT d.id,"
        " COALESCE(d.rag_config, '{}'::jsonb) || $3::jsonb AS m"
        " FROM dealerships d"
        " WHERE d.id = $1::bigint AND " AVC_DEALERSHIP_SCOPE("2")
        " FOR UPDATE),"
        " ok AS (SELECT id, m FROM o WHERE NOT CASE"
        " WHEN jsonb_typeof(m->'chunk_size') = 'number'"
        " AND jsonb_typeof(m->'chunk_overlap') = 'number'"
        " THEN (m->>'chunk_overlap')::numeric >= (m->>'chunk_size')::numeric"
        " ELSE false END),"
        " n AS (UPDATE dealerships d SET rag_config = ok.m FROM ok"
        " WHERE d.id = ok.id RETURNING d.*)"
        " SELECT " AVC__DEALERSHIP_COLS " FROM o LEFT JOIN n d ON d.id = o.id",
        3, p, avc_dealerships_rag_done));
    free(text);
}

AVC_API int
avc_op_dealerships_rag_config(avc_call_t *call)
{
    avc__authenticate(call, avc_dealerships_rag_auth);
    return AVC_OK;
}

/* DELETE /api/v1/dealerships/{id} */

static void
avc_dealerships_deleted(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        avc_dealerships_not_found(call);
        return;
    }
    /* its vectors outside PostgreSQL (Pinecone) and its snapshot */
    avc__kb_dealership_deleted(call->app,
                               strtoll(avc_db_res_value(res, 0, 0), NULL,
                                       10));
    avc__call_raw(call, 204, NULL, "", 0);
}

static void
avc_dealerships_delete_auth(avc_call_t *call)
{
    char idbuf[AVC__USERS_NUM];
    const char *p[1];

    if (!avc_dealerships_sa(call) || !avc_dealerships_id(call, idbuf)) {
        return;
    }
    p[0] = idbuf;
    avc_dealerships_start(call, avc__q(call,
        "DELETE FROM dealerships d WHERE d.id = $1::bigint RETURNING d.id",
        1, p, avc_dealerships_deleted));
}

AVC_API int
avc_op_dealerships_delete(avc_call_t *call)
{
    avc__authenticate(call, avc_dealerships_delete_auth);
    return AVC_OK;
}
