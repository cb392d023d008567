/*
 * /api/v1/users: accounts.
 *
 * A super admin manages every account.  A dealership admin manages the
 * accounts of its own dealership, user and dealership_admin ones, never a
 * super admin: the scope is a condition of every statement (see
 * users_int.h), so another dealership's account, or a super admin's, is
 * reported exactly like a missing one.  A user gets 403 on every route.
 *
 * Writes that cut an account off (deactivation, a new role, another
 * dealership) revoke its refresh tokens in the same statement; access
 * tokens stop working at once anyway, since the caller is read from the
 * database on every request.  Deleting an account deletes its refresh
 * tokens (ON DELETE CASCADE).
 */
#include "users_int.h"

#include <avatarcore/auth.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const avc_users_roles[] = {
    "super_admin", "dealership_admin", "user", NULL
};

/* helpers shared with dealerships.c (users_int.h) */

const char *
avc__users_scope(const avc_call_t *call, char buf[AVC__USERS_NUM])
{
    if (avc__is_sa(&call->who)) {
        return NULL;
    }
    snprintf(buf, AVC__USERS_NUM, "%lld", call->who.dealership_id);
    return buf;
}

int
avc__users_v_init(avc__v_t *v, avc_call_t *call)
{
    v->call = call;
    v->body = NULL;
    v->details = json_array();
    if (v->details == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

int
avc__users_path_id(avc__v_t *v, const char *name, long long *id)
{
    const char *s = avc_call_param(v->call, name);
    char field[64];
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > 18 || strspn(s, "0123456789") != n) {
        snprintf(field, sizeof(field), "path.%s", name);
        avc__v_fail(v, field, "int_parsing", "Input should be a valid "
                    "integer, unable to parse string as an integer");
        return -1;
    }
    *id = atoll(s);
    return 1;
}

int
avc__users_qbool(avc__v_t *v, const char *name, int *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on", "t", "y",
                                       NULL };
    static const char *const no[] = { "false", "0", "no", "off", "f", "n",
                                      NULL };
    const char *s = avc_call_param(v->call, name);
    const char *const *w;
    char field[64];

    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (w = yes; *w; w++) {
        if (strcasecmp(s, *w) == 0) {
            *out = 1;
            return 1;
        }
    }
    for (w = no; *w; w++) {
        if (strcasecmp(s, *w) == 0) {
            *out = 0;
            return 1;
        }
    }
    snprintf(field, sizeof(field), "query.%s", name);
    avc__v_fail(v, field, "bool_parsing",
                "Input should be a valid boolean, unable to interpret input");
    return -1;
}

int
avc__users_qenum(avc__v_t *v, const char *name, const char *const *allowed,
    const char **out)
{
    const char *s = avc_call_param(v->call, name);
    const char *const *a;
    char field[64];
    avc__buf_t msg;

    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (a = allowed; *a; a++) {
        if (strcmp(s, *a) == 0) {
            *out = *a;
            return 1;
        }
    }
    avc__buf_init(&msg);
    avc__buf_appends(&msg, "Input should be");
    for (a = allowed; *a; a++) {
        avc__buf_printf(&msg, "%s '%s'", a == allowed ? ""
                        : a[1] ? "," : " or", *a);
    }
    snprintf(field, sizeof(field), "query.%s", name);
    avc__v_fail(v, field, "enum", msg.data ? msg.data : "invalid value");
    avc__buf_free(&msg);
    return -1;
}

int
avc__users_v_check(avc__v_t *v)
{
    if (!avc__v_failed(v)) {
        return 0;
    }
    avc__v_reply(v);
    avc__v_end(v);
    return 1;
}

/* common parts of the operations */

/*
 * The scope of a statement on "users u": a dealership admin sees the
 * accounts of its dealership except super admins.
 */
#define AVC_USERS_SCOPE(n)                                                  \
    "($" n "::bigint IS NULL OR (u.dealership_id = $" n                     \
    " AND u.role <> 'super_admin'))"

/* The state of POST and PATCH, freed with the call. */
typedef struct {
    long long dealership_id;    /* the body's, for the 422 */
    char *email;
    char *first_name;
    char *last_name;
    const char *role;           /* static */
    int has_dealership;
    char *password;             /* wiped when freed */
} avc_users_op_t;

static void
avc_users_op_free(void *p)
{
    avc_users_op_t *op = p;

    if (op) {
        free(op->email);
        free(op->first_name);
        free(op->last_name);
        if (op->password) {
            explicit_bzero(op->password, strlen(op->password));
            free(op->password);
        }
        free(op);
    }
}

static avc_users_op_t *
avc_users_op_new(avc_call_t *call)
{
    avc_users_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return NULL;
    }
    call->op = op;
    call->op_free = avc_users_op_free;
    return op;
}

/* Users get 403 on every route; 0 after replying. */
static int
avc_users_admin(avc_call_t *call)
{
    if (avc__is_sa(&call->who) || avc__is_da(&call->who)) {
        return 1;
    }
    avc__call_error(call, 403, "Not enough permissions");
    return 0;
}

static void
avc_users_not_found(avc_call_t *call, long long id)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "User with ID %lld not found", id);
    avc__call_error(call, 404, msg);
}

static void
avc_users_start(avc_call_t *call, int rc)
{
    if (rc != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

/*
 * The answer of a statement that returns one user (AVC__USER_COLS): 404
 * without a row, 409 for a taken e-mail address, 422 for a dealership
 * that does not exist.
 */
static void
avc_users_reply_one(avc_call_t *call, int err, avc_db_res_t *res,
    int status)
{
    avc_users_op_t *op = call->op;
    const char *state, *constraint;
    char msg[80];
    long long id;

    if (err == AVC_EDB) {
        state = avc_db_res_sqlstate(res);
        constraint = avc_db_res_constraint(res);
        if (strcmp(state, "23505") == 0
            && strcmp(constraint, "users_email_key") == 0)
        {
            avc__call_error(call, 409, "Email already registered");
            return;
        }
        if (strcmp(state, "23503") == 0
            && strcmp(constraint, "users_dealership_id_fkey") == 0)
        {
            snprintf(msg, sizeof(msg), "Dealership with ID %lld not found",
                     op ? op->dealership_id : 0);
            avc__call_invalid(call, "dealership_id", "value_error",
                                 msg);
            return;
        }
    }
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        id = atoll(avc_call_param(call, "id"));
        avc_users_not_found(call, id);
        return;
    }
    avc__call_json(call, status, avc__user_json(res, 0));
}

static void
avc_users_one_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_users_reply_one(call, err, res, 200);
}

/* the path id of an operation on one user: 1, or 0 after replying */
static int
avc_users_id(avc_call_t *call, long long *id, char buf[AVC__USERS_NUM])
{
    avc__v_t v;

    if (avc__users_v_init(&v, call) != AVC_OK) {
        return 0;
    }
    avc__users_path_id(&v, "id", id);
    if (avc__users_v_check(&v)) {
        return 0;
    }
    avc__v_end(&v);
    snprintf(buf, AVC__USERS_NUM, "%lld", *id);
    return 1;
}

/* GET /api/v1/users/ and GET /api/v1/users/count */

#define AVC_USERS_FILTER                                                    \
    " FROM users u WHERE " AVC_USERS_SCOPE("1")                             \
    " AND ($2::text IS NULL OR u.role = $2)"                                \
    " AND ($3::boolean IS NULL OR u.is_active = $3)"                        \
    " AND ($4::bigint IS NULL OR u.dealership_id = $4)"

static void
avc_users_listed(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_rows(call, err, res, avc__user_json);
}

static void
avc_users_counted(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    avc__call_json(call, 200, json_pack("{s:I}", "count",
                   (json_int_t) atoll(avc_db_res_value(res, 0, 0))));
}

static void
avc_users_filtered(avc_call_t *call, int count)
{
    avc__v_t v;
    long long skip = 0, limit = 100, dealership = 0;
    const char *role = NULL, *p[6];
    int active = 0, has_active, has_dealership;
    char scope[AVC__USERS_NUM], dbuf[AVC__USERS_NUM];
    char sbuf[AVC__USERS_NUM], lbuf[AVC__USERS_NUM];

    if (!avc_users_admin(call) || avc__users_v_init(&v, call) != AVC_OK) {
        return;
    }
    if (!count) {
        avc__v_qint(&v, "skip", 0, 0, LLONG_MAX, &skip);
        avc__v_qint(&v, "limit", 100, 1, 100, &limit);
    }
    avc__users_qenum(&v, "role", avc_users_roles, &role);
    has_active = avc__users_qbool(&v, "is_active", &active) == 1;
    has_dealership = avc__v_qint(&v, "dealership_id", 0, LLONG_MIN,
                                 LLONG_MAX, &dealership) == 1;
    if (avc__users_v_check(&v)) {
        return;
    }
    avc__v_end(&v);

    snprintf(dbuf, sizeof(dbuf), "%lld", dealership);
    snprintf(sbuf, sizeof(sbuf), "%lld", skip);
    snprintf(lbuf, sizeof(lbuf), "%lld", limit);
    p[0] = avc__users_scope(call, scope);
    p[1] = role;
    p[2] = has_active ? (active ? "true" : "false") : NULL;
    p[3] = has_dealership ? dbuf : NULL;
    p[4] = sbuf;
    p[5] = lbuf;
    if (count) {
        avc_users_start(call, avc__q(call, "SELECT count(*)"
                                     AVC_USERS_FILTER, 4, p,
                                     avc_users_counted));
        return;
    }
    avc_users_start(call, avc__q(call, "SELECT " AVC__USER_COLS
                                 AVC_USERS_FILTER
                                 " ORDER BY u.created_at DESC, u.id DESC"
                                 " OFFSET $5::bigint LIMIT $6::bigint",
                                 6, p, avc_users_listed));
}

static void
avc_users_list_auth(avc_call_t *call)
{
    avc_users_filtered(call, 0);
}

static void
avc_users_count_auth(avc_call_t *call)
{
    avc_users_filtered(call, 1);
}

AVC_API int
avc_op_users_list(avc_call_t *call)
{
    avc__authenticate(call, avc_users_list_auth);
    return AVC_OK;
}

AVC_API int
avc_op_users_count(avc_call_t *call)
{
    avc__authenticate(call, avc_users_count_auth);
    return AVC_OK;
}

/* GET /api/v1/users/{id} */

static void
avc_users_get_auth(avc_call_t *call)
{
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM];
    const char *p[2];
    long long id;

    if (!avc_users_admin(call) || !avc_users_id(call, &id, idbuf)) {
        return;
    }
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    avc_users_start(call, avc__q(call, "SELECT " AVC__USER_COLS
                                 " FROM users u WHERE u.id = $1::bigint"
                                 " AND " AVC_USERS_SCOPE("2"),
                                 2, p, avc_users_one_done));
}

AVC_API int
avc_op_users_get(avc_call_t *call)
{
    avc__authenticate(call, avc_users_get_auth);
    return AVC_OK;
}

/*
 * POST /api/v1/users/: validate, authorise, look for a taken address or
 * a missing dealership (so that bcrypt is not paid for a request that
 * fails anyway), hash on the thread pool, insert.  The insert still
 * reports a concurrent creation (23505) or deletion (23503).
 */

static void
avc_users_created(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_users_reply_one(call, err, res, 201);
}

static void
avc_users_hashed(avc_call_t *call, const char *hash)
{
    avc_users_op_t *op = call->op;
    char dbuf[AVC__USERS_NUM];
    const char *p[6];

    snprintf(dbuf, sizeof(dbuf), "%lld", op->dealership_id);
    p[0] = op->email;
    p[1] = hash;
    p[2] = op->first_name;
    p[3] = op->last_name;
    p[4] = op->role;
    p[5] = op->has_dealership ? dbuf : NULL;
    avc_users_start(call, avc__q(call,
        "INSERT INTO users AS u (email, password_hash, first_name,"
        " last_name, role, dealership_id, is_active, is_verified)"
        " VALUES ($1, $2, $3, $4, $5, $6::bigint, true, true)"
        " RETURNING " AVC__USER_COLS, 6, p, avc_users_created));
}


static void
avc_users_checked(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_users_op_t *op = call->op;
    char msg[80];
    int rc;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (strcmp(avc_db_res_value(res, 0, 0), "t") == 0) {
        avc__call_error(call, 409, "Email already registered");
        return;
    }
    if (strcmp(avc_db_res_value(res, 0, 1), "t") != 0) {
        snprintf(msg, sizeof(msg), "Dealership with ID %lld not found",
                 op->dealership_id);
        avc__call_invalid(call, "dealership_id", "value_error",
                             msg);
        return;
    }
    rc = avc__hash_password(call, op->password, avc_users_hashed);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_ERR, "%s %s: cannot offload: %s", call->method,
                call->path, avc_strerror(rc));
        avc__call_error(call, 500, "Internal server error");
    }
}

/*
 * Who may give which account: a dealership admin creates and edits user
 * and dealership_admin accounts of its own dealership only.  0 after
 * replying.
 */
static int
avc_users_may_grant(avc_call_t *call, const char *role)
{
    if (role && strcmp(role, "super_admin") == 0 && !avc__is_sa(&call->who)) {
        avc__call_error(call, 403,
                        "Dealership admins cannot manage super admins");
        return 0;
    }
    return 1;
}

static char *
avc_users_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void
avc_users_create_auth(avc_call_t *call)
{
    avc__v_t v;
    const char *email = NULL, *pw = NULL, *first = NULL, *last = NULL;
    const char *role = "user", *why, *p[2];
    long long dealership = 0;
    int has_dealership;
    avc_users_op_t *op;
    char dbuf[AVC__USERS_NUM], msg[80];

    if (!avc_users_admin(call)) {
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__v_email(&v, "email", 1, &email);
    if (avc__v_str(&v, "password", 1, 0, (size_t) -1, &pw) == 1
        && avc_password_policy(pw, &why) != AVC_OK)
    {
        avc__v_fail(&v, "password", "value_error", why);
    }
    avc__v_str(&v, "first_name", 1, 1, 100, &first);
    avc__v_str(&v, "last_name", 1, 1, 100, &last);
    avc__v_enum(&v, "role", 0, avc_users_roles, &role);
    has_dealership = avc__v_int(&v, "dealership_id", 0, LLONG_MIN,
                                LLONG_MAX, &dealership) == 1;
    if (avc__users_v_check(&v)) {
        return;
    }

    if (!avc_users_may_grant(call, role)) {
        avc__v_end(&v);
        return;
    }
    if (avc__is_da(&call->who)) {
        if (call->who.dealership_id == 0) {
            avc__v_end(&v);
            avc__call_error(call, 403, "You are not assigned to a dealership");
            return;
        }
        /* another dealership is answered like a missing one */
        if (has_dealership && dealership != call->who.dealership_id) {
            avc__v_end(&v);
            snprintf(msg, sizeof(msg), "Dealership with ID %lld not found",
                     dealership);
            avc__call_invalid(call, "dealership_id", "value_error",
                                 msg);
            return;
        }
        dealership = call->who.dealership_id;
        has_dealership = 1;
    }

    op = avc_users_op_new(call);
    if (op == NULL) {
        avc__v_end(&v);
        return;
    }
    op->email = avc_users_strdup(email);
    op->first_name = avc_users_strdup(first);
    op->last_name = avc_users_strdup(last);
    op->role = role;
    op->dealership_id = dealership;
    op->has_dealership = has_dealership;
    op->password = avc_users_strdup(pw);
    if (op->email == NULL || op->first_name == NULL
        || op->last_name == NULL || op->password == NULL)
    {
        avc__v_end(&v);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__v_end(&v);

    snprintf(dbuf, sizeof(dbuf), "%lld", dealership);
    p[0] = op->email;
    p[1] = has_dealership ? dbuf : NULL;
    avc_users_start(call, avc__q(call,
        "SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1)),"
        " $2::bigint IS NULL"
        " OR EXISTS (SELECT 1 FROM dealerships WHERE id = $2::bigint)",
        2, p, avc_users_checked));
}

AVC_API int
avc_op_users_create(avc_call_t *call)
{
    avc__authenticate(call, avc_users_create_auth);
    return AVC_OK;
}

/*
 * PATCH /api/v1/users/{id}: one statement reads the account within the
 * caller's scope (locked), updates it, and revokes its refresh tokens
 * when the change cuts it off.
 */

static void
avc_users_update_auth(avc_call_t *call)
{
    avc__v_t v;
    const char *email = NULL, *first = NULL, *last = NULL, *role = NULL;
    const char *p[8];
    long long id = 0, dealership = 0;
    int active = 1, has_active, has_dealership, self;
    avc_users_op_t *op;
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM];
    char dbuf[AVC__USERS_NUM];

    if (!avc_users_admin(call)) {
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__users_path_id(&v, "id", &id);
    avc__v_email(&v, "email", 0, &email);
    avc__v_str(&v, "first_name", 0, 1, 100, &first);
    avc__v_str(&v, "last_name", 0, 1, 100, &last);
    has_active = avc__v_bool(&v, "is_active", 0, &active) == 1;
    avc__v_enum(&v, "role", 0, avc_users_roles, &role);
    has_dealership = avc__v_int(&v, "dealership_id", 0, LLONG_MIN,
                                LLONG_MAX, &dealership) == 1;
    if (avc__users_v_check(&v)) {
        return;
    }

    self = id == call->who.id;
    if (self && role && strcmp(role, call->who.role) != 0) {
        avc__v_end(&v);
        avc__call_error(call, 403, "Cannot change your own role");
        return;
    }
    if (self && has_active && !active) {
        avc__v_end(&v);
        avc__call_error(call, 403, "Cannot deactivate your own account");
        return;
    }
    if (!avc_users_may_grant(call, role)) {
        avc__v_end(&v);
        return;
    }
    if (has_dealership && !avc__is_sa(&call->who)
        && dealership != call->who.dealership_id)
    {
        avc__v_end(&v);
        avc__call_error(call, 403, "Only a super admin can move a user to "
                                   "another dealership");
        return;
    }

    op = avc_users_op_new(call);
    if (op == NULL) {
        avc__v_end(&v);
        return;
    }
    op->dealership_id = dealership;

    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    snprintf(dbuf, sizeof(dbuf), "%lld", dealership);
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    if (email == NULL && first == NULL && last == NULL && !has_active
        && role == NULL && !has_dealership)
    {
        /* nothing to change: no write, no new updated_at */
        avc__v_end(&v);
        avc_users_start(call, avc__q(call, "SELECT " AVC__USER_COLS
                                     " FROM users u WHERE u.id = $1::bigint"
                                     " AND " AVC_USERS_SCOPE("2"),
                                     2, p, avc_users_one_done));
        return;
    }
    p[2] = email;
    p[3] = first;
    p[4] = last;
    p[5] = has_active ? (active ? "true" : "false") : NULL;
    p[6] = role;
    p[7] = has_dealership ? dbuf : NULL;
    /* avc__q copies the parameters: the body may go after it */
    avc_users_start(call, avc__q(call,
        "WITH o AS (SELECT u.id, u.role, u.is_active, u.dealership_id"
        " FROM users u WHERE u.id = $1::bigint AND " AVC_USERS_SCOPE("2")
        " FOR UPDATE),"
        " n AS (UPDATE users u SET email = COALESCE($3::text, u.email),"
        " first_name = COALESCE($4::text, u.first_name),"
        " last_name = COALESCE($5::text, u.last_name),"
        " is_active = COALESCE($6::boolean, u.is_active),"
        " role = COALESCE($7::text, u.role),"
        " dealership_id = COALESCE($8::bigint, u.dealership_id)"
        " FROM o WHERE u.id = o.id"
        " RETURNING u.*, (u.role <> o.role"
        " OR (o.is_active AND NOT u.is_active)"
        " OR u.dealership_id IS DISTINCT FROM o.dealership_id) AS cut),"
        " r AS (UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE user_id IN (SELECT id FROM n WHERE cut)"
        " AND revoked_at IS NULL)"
        " SELECT " AVC__USER_COLS " FROM n u",
        8, p, avc_users_one_done));
    avc__v_end(&v);
}

AVC_API int
avc_op_users_update(avc_call_t *call)
{
    avc__authenticate(call, avc_users_update_auth);
    return AVC_OK;
}

/* DELETE /api/v1/users/{id}: refresh tokens go with it (cascade) */

static void
avc_users_deleted(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        avc_users_not_found(call, atoll(avc_call_param(call, "id")));
        return;
    }
    avc__call_raw(call, 204, NULL, "", 0);
}

static void
avc_users_delete_auth(avc_call_t *call)
{
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM];
    const char *p[2];
    long long id;

    if (!avc_users_admin(call) || !avc_users_id(call, &id, idbuf)) {
        return;
    }
    if (id == call->who.id) {
        avc__call_error(call, 403, "Cannot delete your own account");
        return;
    }
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    avc_users_start(call, avc__q(call, "DELETE FROM users u"
                                 " WHERE u.id = $1::bigint"
                                 " AND " AVC_USERS_SCOPE("2")
                                 " RETURNING u.id",
                                 2, p, avc_users_deleted));
}

AVC_API int
avc_op_users_delete(avc_call_t *call)
{
    avc__authenticate(call, avc_users_delete_auth);
    return AVC_OK;
}

/* PATCH /api/v1/users/{id}/toggle-active */

static void
avc_users_toggle_auth(avc_call_t *call)
{
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM];
    const char *p[2];
    long long id;

    if (!avc_users_admin(call) || !avc_users_id(call, &id, idbuf)) {
        return;
    }
    if (id == call->who.id) {
        avc__call_error(call, 403, "Cannot deactivate your own account");
        return;
    }
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    avc_users_start(call, avc__q(call,
        "WITH n AS (UPDATE users u SET is_active = NOT u.is_active"
        " WHERE u.id = $1::bigint AND " AVC_USERS_SCOPE("2")
        " RETURNING u.*),"
        " r AS (UPDATE refresh_tokens SET revoked_at = now()"
        " WHERE user_id IN (SELECT id FROM n WHERE NOT is_active)"
        " AND revoked_at IS NULL)"
        " SELECT " AVC__USER_COLS " FROM n u",
        2, p, avc_users_one_done));
}

AVC_API int
avc_op_users_toggle_active(avc_call_t *call)
{
    avc__authenticate(call, avc_users_toggle_auth);
    return AVC_OK;
}
