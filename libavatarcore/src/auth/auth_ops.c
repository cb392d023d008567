/*
 * /api/v1/auth: signup, login, refresh, logout, me, password forgot/reset.
 *
 * Passwords are hashed and checked with bcrypt on the thread pool.  Access
 * tokens are stateless (30 minutes); refresh tokens (7 days) are stored as
 * their SHA-256, rotate on every use, and belong to a family: presenting a
 * token that was already rotated revokes the whole family.  Reset tokens
 * are random, stored hashed, single-use and short-lived.
 */
#include "../app/app_int.h"
#include "../app/validate.h"
#include "authops.h"

#include <avatarcore/auth.h>
#include <avatarcore/token.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define AVC_ACCESS_TTL   1800
#define AVC_REFRESH_TTL  (7 * 24 * 3600)
#define AVC_RESET_TTL    3600

/* per-account slow-down after this many consecutive failures */
#define AVC_LOGIN_FREE_FAILURES 3
#define AVC_LOGIN_MAX_DELAY_MS  30000

static const char *avc_roles[] = {
    "super_admin", "dealership_admin", "user", NULL
};

/* helpers shared with other operations (authops.h) */

int
avc__random_hex(char *out, size_t bytes)
{
    unsigned char buf[64];
    size_t i;

    if (bytes > sizeof(buf)
        || getrandom(buf, bytes, 0) != (ssize_t) bytes)
    {
        return AVC_ESYS;
    }
    for (i = 0; i < bytes; i++) {
        sprintf(out + 2 * i, "%02x", buf[i]);
    }
    explicit_bzero(buf, sizeof(buf));
    return AVC_OK;
}

void
avc__sha256_hex(const char *s, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    int i;

    SHA256((const unsigned char *) s, strlen(s), md);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        sprintf(out + 2 * i, "%02x", md[i]);
    }
}

/* The access token of a user. */
static char *
avc_access_token(avc_app_t *app, const char *id, const char *role,
    const char *dealership_id, const char *email, const char *pwc,
    long long now)
{
    json_t *c;
    char jti[33], *claims, *tok;

    if (avc__random_hex(jti, 16) != AVC_OK) {
        return NULL;
    }
    /* pwc: the password change the token belongs to (ms); a later
       change voids the token */
    c = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:s, s:I}",
                  "sub", id, "type", "access", "role", role,
                  "dealership_id", dealership_id && *dealership_id
                      ? json_integer(atoll(dealership_id)) : json_null(),
                  "email", email, "exp", (json_int_t) (now + AVC_ACCESS_TTL),
                  "iat", (json_int_t) now, "jti", jti,
                  "pwc", (json_int_t) atoll(pwc));
    claims = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    tok = claims ? avc_token_sign(app->secret, app->secret_len, claims)
                 : NULL;
    free(claims);
    return tok;
}

static char *
avc_refresh_token(avc_app_t *app, const char *id, long long now)
{
    json_t *c;
    char jti[33], *claims, *tok;

    if (avc__random_hex(jti, 16) != AVC_OK) {
        return NULL;
    }
    c = json_pack("{s:s, s:s, s:I, s:I, s:s}", "sub", id, "type", "refresh",
                  "exp", (json_int_t) (now + AVC_REFRESH_TTL),
                  "iat", (json_int_t) now, "jti", jti);
    claims = c ? json_dumps(c, JSON_COMPACT) : NULL;
    json_decref(c);
    tok = claims ? avc_token_sign(app->secret, app->secret_len, claims)
                 : NULL;
    free(claims);
    return tok;
}

/*
 * Issuing tokens: the refresh token is stored (hashed) in its family; a
 * NULL family starts a new one.  In a transaction when the call has one.
 * The reply is built by avc_issue_reply after the insert.
 */
typedef struct {
    char *access;
    char *refresh;
    int status;
    avc__tx_cb after;           /* commit, when issuing inside a tx */
} avc_issue_t;

static void
avc_issue_free(void *p)
{
    avc_issue_t *is = p;

    if (is) {
        free(is->access);
        free(is->refresh);
        free(is);
    }
}

static void
avc_issue_reply(avc_call_t *call)
{
    avc_issue_t *is = call->op;

    avc__call_json(call, is->status,
                   json_pack("{s:s, s:s, s:s, s:i}",
                             "access_token", is->access,
                             "refresh_token", is->refresh,
                             "token_type", "bearer",
                             "expires_in", AVC_ACCESS_TTL));
}

static void
avc_issue_committed(avc_call_t *call, int err)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    avc_issue_reply(call);
}

static void
avc_issue_stored(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (call->tx) {
        if (avc__commit(call, avc_issue_committed) != AVC_OK) {
            avc__reply_step_error(call, AVC_EDBCONN, NULL);
        }
        return;
    }
    avc_issue_reply(call);
}

/*
 * Replace the call's op state by the issue state and store the refresh
 * token.  replaces: the id of the refresh token this one rotates, or NULL.
 */
static void
avc_issue(avc_call_t *call, int status, const char *id, const char *role,
    const char *dealership_id, const char *email, const char *pwc,
    const char *family, const char *replaces)
{
    avc_app_t *app = call->app;
    long long now = (long long) time(NULL);
    avc_issue_t *is;
    char hash[65], exp[32], uid[24], fam[40], rep[24];
    const char *p[5];
    int rc;

    /* the arguments may live in the op state this replaces: copy them */
    snprintf(uid, sizeof(uid), "%s", id);
    snprintf(fam, sizeof(fam), "%s", family ? family : "");
    snprintf(rep, sizeof(rep), "%s", replaces ? replaces : "");
    id = uid;
    family = family ? fam : NULL;
    replaces = replaces ? rep : NULL;

    is = calloc(1, sizeof(*is));
    if (is == NULL) {
        avc__rollback(call);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    is->status = status;
    is->access = avc_access_token(app, id, role, dealership_id, email, pwc,
                                  now);
    is->refresh = avc_refresh_token(app, id, now);
    if (is->access == NULL || is->refresh == NULL) {
        avc_issue_free(is);
        avc__rollback(call);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    if (call->op_free) {
        call->op_free(call->op);
    }
    call->op = is;
    call->op_free = avc_issue_free;

    avc__sha256_hex(is->refresh, hash);
    snprintf(exp, sizeof(exp), "%lld", now + AVC_REFRESH_TTL);
    p[0] = id;
    p[1] = family;
    p[2] = hash;
    p[3] = exp;
    p[4] = replaces;
    if (replaces) {
        static const char sql[] =
            "WITH n AS (INSERT INTO refresh_tokens"
            " (user_id, family_id, token_hash, expires_at)"
            " VALUES ($1::bigint, $2::uuid, decode($3, 'hex'),"
            " to_timestamp($4::bigint)) RETURNING id)"
            " UPDATE refresh_tokens SET revoked_at = now(),"
            " replaced_by = (SELECT id FROM n) WHERE id = $5::bigint";

        rc = call->tx ? avc__txq(call, sql, 5, p, avc_issue_stored)
                      : avc__q(call, sql, 5, p, avc_issue_stored);
    } else {
        static const char sql[] =
            "INSERT INTO refresh_tokens"
            " (user_id, family_id, token_hash, expires_at)"
            " VALUES ($1::bigint, COALESCE($2::uuid, gen_random_uuid()),"
            " decode($3, 'hex'), to_timestamp($4::bigint))";

        rc = call->tx ? avc__txq(call, sql, 4, p, avc_issue_stored)
                      : avc__q(call, sql, 4, p, avc_issue_stored);
    }
    if (rc != AVC_OK) {
        avc__reply_step_error(call, rc, NULL);
    }
}

/* login */

typedef struct {
    char *email;
    char *password;
    char *hash;
    int found;
    int match;
    char id[24];
    char role[20];
    char dealership_id[24];
    char user_email[256];
    char pwc[24];
    int active;
} avc_login_t;

static void
avc_login_free(void *p)
{
    avc_login_t *l = p;

    if (l == NULL) {
        return;
    }
    if (l->password) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l->email);
    free(l->hash);
    free(l);
}

static void
avc_login_failed_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_unauthorized(call, "Incorrect email or password");
}

static void
avc_login_touched(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_login_t *l = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    avc_issue(call, 200, l->id, l->role, l->dealership_id, l->user_email,
              l->pwc, NULL, NULL);
}

static void
avc_login_verify(void *arg)
{
    avc_login_t *l = arg;

    /* the same work whether or not the account exists */
    l->match = avc_password_verify(l->password,
                                   l->found ? l->hash
                                            : avc_password_dummy_hash())
               == AVC_OK && l->found;
}

static void
avc_login_verified(avc_call_t *call, void *arg)
{
    avc_login_t *l = call->op;
    const char *p[1];

    p[0] = l->id;
    if (!l->match) {
        if (l->found) {
            if (avc__q(call, "UPDATE users SET failed_logins ="
                       " failed_logins + 1 WHERE id = $1::bigint", 1, p,
                       avc_login_failed_done) == AVC_OK)
            {
                return;
            }
        }
        avc__reply_unauthorized(call, "Incorrect email or password");
        return;
    }
    if (!l->active) {
        avc__reply_unauthorized(call, "Inactive user");
        return;
    }
    if (avc__q(call, "UPDATE users SET last_login = now(), failed_logins = 0"
               " WHERE id = $1::bigint", 1, p, avc_login_touched) != AVC_OK)
    {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

static void
avc_login_check(avc_call_t *call)
{
    avc_login_t *l = call->op;

    if (avc__offload(call, avc_login_verify, avc_login_verified, l, NULL)
        != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_login_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_login_t *l = call->op;
    long long failed = 0;
    uint64_t delay;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 1) {
        /* id, password_hash, role, active, dealership_id, d.active,
           failed_logins, email */
        l->found = 1;
        snprintf(l->id, sizeof(l->id), "%s", avc_db_res_value(res, 0, 0));
        l->hash = strdup(avc_db_res_value(res, 0, 1));
        snprintf(l->role, sizeof(l->role), "%s", avc_db_res_value(res, 0, 2));
        l->active = strcmp(avc_db_res_value(res, 0, 3), "t") == 0
                    && (avc_db_res_isnull(res, 0, 5)
                        || strcmp(avc_db_res_value(res, 0, 5), "t") == 0);
        snprintf(l->dealership_id, sizeof(l->dealership_id), "%s",
                 avc_db_res_value(res, 0, 4));
        failed = atoll(avc_db_res_value(res, 0, 6));
        snprintf(l->user_email, sizeof(l->user_email), "%s",
                 avc_db_res_value(res, 0, 7));
        snprintf(l->pwc, sizeof(l->pwc), "%s", avc_db_res_value(res, 0, 8));
        if (l->hash == NULL) {
            avc__call_error(call, 500, "Internal server error");
            return;
        }
    }

    /* an account under attack answers ever more slowly, from anywhere */
    if (failed > AVC_LOGIN_FREE_FAILURES) {
        delay = 250ULL << (failed - AVC_LOGIN_FREE_FAILURES > 10
                           ? 10 : failed - AVC_LOGIN_FREE_FAILURES);
        if (delay > AVC_LOGIN_MAX_DELAY_MS) {
            delay = AVC_LOGIN_MAX_DELAY_MS;
        }
        if (avc__delay(call, delay, avc_login_check) == AVC_OK) {
            return;
        }
    }
    avc_login_check(call);
}

AVC_API int
avc_op_auth_login(avc_call_t *call)
{
    avc__v_t v;
    const char *email = NULL, *password = NULL;
    const char *p[1];
    avc_login_t *l;

    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return AVC_OK;
    }
    avc__v_str(&v, "email", 1, 1, 254, &email);
    avc__v_str(&v, "password", 1, 1, 1000, &password);
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_OK;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL || (l->email = strdup(email)) == NULL
        || (l->password = strdup(password)) == NULL)
    {
        avc_login_free(l);
        avc__v_end(&v);
        return AVC_ENOMEM;
    }
    avc__v_end(&v);
    call->op = l;
    call->op_free = avc_login_free;
    p[0] = l->email;
    if (avc__q(call, "SELECT u.id, u.password_hash, u.role, u.is_active,"
               " u.dealership_id, d.is_active, u.failed_logins, u.email,"
               " " AVC__PWC("u") " FROM users u LEFT JOIN dealerships d"
               " ON d.id = u.dealership_id"
               " WHERE lower(u.email) = lower($1)", 1, p, avc_login_loaded)
        != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
    return AVC_OK;
}

/* refresh */

typedef struct {
    char hash[65];
    char family[40];
    char token_id[24];
} avc_refresh_t;

static void
avc_refresh_free(void *p)
{
    free(p);
}

static void
avc_reuse_committed(avc_call_t *call, int err)
{
    avc_log(AVC_LOG_WARN, "refresh token reuse: family revoked");
    avc__reply_unauthorized(call, "Refresh token reuse detected; "
                            "please log in again");
}

static void
avc_reuse_revoked(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc__commit(call, avc_reuse_committed) != AVC_OK) {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

static void
avc_refresh_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_refresh_t *r = call->op;
    const char *p[1];
    char id[24], role[20], dealership[24], email[256], pwc[24];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        avc__rollback(call);
        avc__reply_unauthorized(call, "Invalid refresh token");
        return;
    }
    /* rt.id, rt.user_id, rt.family_id, revoked, expired, u.role,
       active (user and dealership), u.dealership_id, u.email */
    snprintf(r->token_id, sizeof(r->token_id), "%s",
             avc_db_res_value(res, 0, 0));
    snprintf(r->family, sizeof(r->family), "%s", avc_db_res_value(res, 0, 2));
    if (strcmp(avc_db_res_value(res, 0, 3), "t") == 0) {
        /* an already rotated or revoked token: theft, revoke the family */
        p[0] = r->family;
        if (avc__txq(call, "UPDATE refresh_tokens SET revoked_at = now()"
                     " WHERE family_id = $1::uuid AND revoked_at IS NULL",
                     1, p, avc_reuse_revoked) != AVC_OK)
        {
            avc__reply_step_error(call, AVC_EDBCONN, NULL);
        }
        return;
    }
    if (strcmp(avc_db_res_value(res, 0, 4), "t") == 0
        || strcmp(avc_db_res_value(res, 0, 6), "t") != 0)
    {
        avc__rollback(call);
        avc__reply_unauthorized(call, strcmp(avc_db_res_value(res, 0, 6), "t")
                                      ? "Inactive user"
                                      : "Invalid refresh token");
        return;
    }
    snprintf(id, sizeof(id), "%s", avc_db_res_value(res, 0, 1));
    snprintf(role, sizeof(role), "%s", avc_db_res_value(res, 0, 5));
    snprintf(dealership, sizeof(dealership), "%s",
             avc_db_res_value(res, 0, 7));
    snprintf(email, sizeof(email), "%s", avc_db_res_value(res, 0, 8));
    snprintf(pwc, sizeof(pwc), "%s", avc_db_res_value(res, 0, 9));
    avc_issue(call, 200, id, role, dealership, email, pwc, r->family,
              r->token_id);
}

static void
avc_refresh_begun(avc_call_t *call, int err)
{
    avc_refresh_t *r = call->op;
    const char *p[1];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    p[0] = r->hash;
    if (avc__txq(call, "SELECT rt.id, rt.user_id, rt.family_id,"
                 " rt.revoked_at IS NOT NULL, rt.expires_at <= now(),"
                 " u.role, u.is_active AND coalesce(d.is_active, true),"
                 " u.dealership_id, u.email, " AVC__PWC("u")
                 " FROM refresh_tokens rt JOIN users u ON u.id = rt.user_id"
                 " LEFT JOIN dealerships d ON d.id = u.dealership_id"
                 " WHERE rt.token_hash = decode($1, 'hex')"
                 " FOR UPDATE OF rt", 1, p, avc_refresh_loaded) != AVC_OK)
    {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

/* Validate {refresh_token} and check the token's signature and type. */
static avc_refresh_t *
avc_refresh_body(avc_call_t *call)
{
    avc__v_t v;
    const char *tok = NULL;
    avc_token_t *t = NULL;
    avc_refresh_t *r;

    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return NULL;
    }
    avc__v_str(&v, "refresh_token", 1, 1, 8192, &tok);
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return NULL;
    }
    if (avc_token_verify(call->app->secret, call->app->secret_len, tok,
                         strlen(tok), "refresh", (long long) time(NULL), &t)
        != AVC_OK)
    {
        avc__v_end(&v);
        avc__reply_unauthorized(call, "Invalid refresh token");
        return NULL;
    }
    avc_token_free(t);
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        avc__v_end(&v);
        avc__call_error(call, 500, "Internal server error");
        return NULL;
    }
    avc__sha256_hex(tok, r->hash);
    avc__v_end(&v);
    call->op = r;
    call->op_free = avc_refresh_free;
    return r;
}

AVC_API int
avc_op_auth_refresh(avc_call_t *call)
{
    if (avc_refresh_body(call) == NULL) {
        return AVC_OK;
    }
    if (avc__begin(call, avc_refresh_begun) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
    return AVC_OK;
}

/* logout: the token's whole family is revoked */

static void
avc_logout_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (atoll(avc_db_res_value(res, 0, 0)) == 0) {
        avc__reply_unauthorized(call, "Invalid refresh token");
        return;
    }
    avc__call_raw(call, 204, NULL, "", 0);
}

AVC_API int
avc_op_auth_logout(avc_call_t *call)
{
    avc_refresh_t *r = avc_refresh_body(call);
    const char *p[1];

    if (r == NULL) {
        return AVC_OK;
    }
    p[0] = r->hash;
    if (avc__q(call, "WITH t AS (SELECT family_id FROM refresh_tokens"
               " WHERE token_hash = decode($1, 'hex')),"
               " r AS (UPDATE refresh_tokens SET revoked_at = now()"
               " WHERE family_id IN (SELECT family_id FROM t)"
               " AND revoked_at IS NULL)"
               " SELECT count(*) FROM t", 1, p, avc_logout_done) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
    return AVC_OK;
}

/* me: the account as authentication read it */

static void
avc_me_authed(avc_call_t *call)
{
    json_t *me = call->who_json;

    call->who_json = NULL;
    avc__call_json(call, 200, me);
}

AVC_API int
avc_op_auth_me(avc_call_t *call)
{
    avc__authenticate(call, avc_me_authed);
    return AVC_OK;
}

/* signup */

typedef struct {
    char *email;
    char *password;
    char *hash;
    char *first_name;
    char *last_name;
    char role[20];
    char dealership_id[24];
    char invite_hash[65];
    char invite_id[24];
    int invited;
    char user_id[24];
    char pwc[24];
} avc_signup_t;

static void
avc_signup_free(void *p)
{
    avc_signup_t *s = p;

    if (s == NULL) {
        return;
    }
    if (s->password) {
        explicit_bzero(s->password, strlen(s->password));
        free(s->password);
    }
    free(s->email);
    free(s->hash);
    free(s->first_name);
    free(s->last_name);
    free(s);
}

static void
avc_signup_user_done(avc_call_t *call, int err, avc_db_res_t *res);

static void
avc_signup_invite_used(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_signup_t *s = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_affected(res) != 1) {
        avc__rollback(call);
        avc__call_invalid(call, "invite_token", "value_error",
                          "Invalid or expired invitation");
        return;
    }
    avc_issue(call, 201, s->user_id, s->role, s->dealership_id, s->email,
              s->pwc, NULL, NULL);
}

static void
avc_signup_user_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_signup_t *s = call->op;
    const char *p[2];

    if (err == AVC_EDB && strcmp(avc_db_res_sqlstate(res), "23505") == 0) {
        avc__rollback(call);
        avc__call_error(call, 409, "Email already registered");
        return;
    }
    if (err == AVC_EDB && strcmp(avc_db_res_sqlstate(res), "23503") == 0) {
        avc__rollback(call);
        avc__call_invalid(call, "dealership_id", "value_error",
                          "Dealership not found");
        return;
    }
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        /* the dealership does not exist or is not active */
        avc__rollback(call);
        avc__call_invalid(call, "dealership_id", "value_error",
                          "Dealership not found");
        return;
    }
    snprintf(s->user_id, sizeof(s->user_id), "%s",
             avc_db_res_value(res, 0, 0));
    snprintf(s->pwc, sizeof(s->pwc), "%s", avc_db_res_value(res, 0, 1));
    if (s->invited) {
        p[0] = s->invite_id;
        p[1] = s->user_id;
        if (avc__txq(call, "UPDATE invites SET used_at = now(),"
                     " used_by = $2::bigint WHERE id = $1::bigint"
                     " AND used_at IS NULL AND expires_at > now()", 2, p,
                     avc_signup_invite_used) != AVC_OK)
        {
            avc__reply_step_error(call, AVC_EDBCONN, NULL);
        }
        return;
    }
    avc_issue(call, 201, s->user_id, s->role, s->dealership_id, s->email,
              s->pwc, NULL, NULL);
}

static void
avc_signup_begun(avc_call_t *call, int err)
{
    avc_signup_t *s = call->op;
    const char *p[7];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    p[0] = s->email;
    p[1] = s->hash;
    p[2] = s->first_name;
    p[3] = s->last_name;
    p[4] = s->role;
    p[5] = s->dealership_id[0] ? s->dealership_id : NULL;
    p[6] = s->invited ? "t" : "f";
    if (avc__txq(call, "INSERT INTO users (email, password_hash, first_name,"
                 " last_name, role, dealership_id, is_verified)"
                 " SELECT $1, $2, $3, $4, $5, $6::bigint, $7::boolean"
                 " WHERE $6::bigint IS NULL OR EXISTS (SELECT 1 FROM"
                 " dealerships WHERE id = $6::bigint AND is_active)"
                 " RETURNING id, " AVC__PWC("users"), 7, p,
                 avc_signup_user_done) != AVC_OK)
    {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

static void
avc_signup_hashed(avc_call_t *call, const char *hash)
{
    avc_signup_t *s = call->op;

    s->hash = strdup(hash);
    if (s->hash == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    if (avc__begin(call, avc_signup_begun) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_signup_hash_start(avc_call_t *call)
{
    avc_signup_t *s = call->op;

    if (avc__hash_password(call, s->password, avc_signup_hashed) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_signup_invite_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_signup_t *s = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    /* id, role, dealership_id, email matches */
    if (avc_db_res_rows(res) != 1
        || strcmp(avc_db_res_value(res, 0, 3), "t") != 0)
    {
        avc__call_invalid(call, "invite_token", "value_error",
                          "Invalid or expired invitation");
        return;
    }
    snprintf(s->invite_id, sizeof(s->invite_id), "%s",
             avc_db_res_value(res, 0, 0));
    snprintf(s->role, sizeof(s->role), "%s", avc_db_res_value(res, 0, 1));
    snprintf(s->dealership_id, sizeof(s->dealership_id), "%s",
             avc_db_res_value(res, 0, 2));
    avc_signup_hash_start(call);
}

AVC_API int
avc_op_auth_signup(avc_call_t *call)
{
    avc_app_t *app = call->app;
    avc__v_t v;
    const char *email = NULL, *password = NULL, *first = NULL, *last = NULL;
    const char *role = "user", *invite = NULL, *why, *p[2];
    long long dealership = 0;
    int has_dealership;
    avc_signup_t *s;

    if (app->signup == AVC__SIGNUP_OFF) {
        avc__call_error(call, 403, "Signup is disabled; ask your "
                        "administrator for an invitation");
        return AVC_OK;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return AVC_OK;
    }
    avc__v_email(&v, "email", 1, &email);
    if (avc__v_str(&v, "password", 1, 1, 100, &password) == 1
        && avc_password_policy(password, &why) != AVC_OK)
    {
        avc__v_fail(&v, "password", "value_error", why);
    }
    avc__v_str(&v, "first_name", 1, 1, 100, &first);
    avc__v_str(&v, "last_name", 1, 1, 100, &last);
    avc__v_enum(&v, "role", 0, avc_roles, &role);
    has_dealership = avc__v_int(&v, "dealership_id", 0, 1, INT64_MAX,
                                &dealership);
    avc__v_str(&v, "invite_token", 0, 1, 200, &invite);
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_OK;
    }
    if (app->signup == AVC__SIGNUP_INVITE && invite == NULL) {
        avc__v_end(&v);
        avc__call_error(call, 403, "Signup requires an invitation");
        return AVC_OK;
    }
    if (invite == NULL && strcmp(role, "user") != 0) {
        avc__v_end(&v);
        avc__call_error(call, 409, "Only the role 'user' can sign up");
        return AVC_OK;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->email = strdup(email)) == NULL
        || (s->password = strdup(password)) == NULL
        || (s->first_name = strdup(first)) == NULL
        || (s->last_name = strdup(last)) == NULL)
    {
        avc_signup_free(s);
        avc__v_end(&v);
        return AVC_ENOMEM;
    }
    snprintf(s->role, sizeof(s->role), "%s", role);
    if (has_dealership == 1) {
        snprintf(s->dealership_id, sizeof(s->dealership_id), "%lld",
                 dealership);
    }
    if (invite) {
        s->invited = 1;
        avc__sha256_hex(invite, s->invite_hash);
    }
    avc__v_end(&v);
    call->op = s;
    call->op_free = avc_signup_free;

    if (!s->invited) {
        avc_signup_hash_start(call);
        return AVC_OK;
    }
    /* the invitation fixes the role and the dealership */
    p[0] = s->invite_hash;
    p[1] = s->email;
    if (avc__q(call, "SELECT id, role, dealership_id,"
               " lower(email) = lower($2) FROM invites"
               " WHERE token_hash = decode($1, 'hex') AND used_at IS NULL"
               " AND expires_at > now()", 2, p, avc_signup_invite_loaded)
        != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
    return AVC_OK;
}

/* password forgot: 202 whatever happens, so addresses cannot be probed */

typedef struct {
    char *email;
    char token[65];
    char hash[65];
    char user_id[24];
} avc_forgot_t;

static void
avc_forgot_free(void *p)
{
    avc_forgot_t *f = p;

    if (f) {
        explicit_bzero(f->token, sizeof(f->token));
        free(f->email);
        free(f);
    }
}

static void
avc_forgot_reply(avc_call_t *call)
{
    avc__call_json(call, 202, json_pack("{s:s}", "message",
                   "If the address is registered, a reset link has been "
                   "sent."));
}

static void
avc_forgot_committed(avc_call_t *call, int err)
{
    if (err != AVC_OK) {
        avc_log(AVC_LOG_ERR, "password reset not stored: %s",
                avc_strerror(err));
    } else {
        avc__mail_kick(call->app);
    }
    avc_forgot_reply(call);
}

static void
avc_forgot_mail_queued(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__rollback(call);
        avc_log(AVC_LOG_ERR, "password reset mail not queued");
        avc_forgot_reply(call);
        return;
    }
    if (avc__commit(call, avc_forgot_committed) != AVC_OK) {
        avc_forgot_reply(call);
    }
}

static void
avc_forgot_stored(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_forgot_t *f = call->op;
    const char *vars[7];
    char *link;
    int rc;

    if (err != AVC_OK) {
        avc__rollback(call);
        avc_log(AVC_LOG_ERR, "password reset not stored");
        avc_forgot_reply(call);
        return;
    }

    /* the mail is queued in the same transaction as the reset */
    link = avc__app_link(call->app, "/reset-password", f->token);
    vars[0] = "email";
    vars[1] = f->email;
    vars[2] = "link";
    vars[3] = link ? link : "";
    vars[4] = "expires_at";
    vars[5] = "in one hour";
    vars[6] = NULL;
    rc = link ? avc__mail_enqueue(call, "password_reset", f->email, vars,
                                  avc_forgot_mail_queued)
              : AVC_ENOMEM;
    free(link);
    if (rc != AVC_OK) {
        avc__rollback(call);
        avc_forgot_reply(call);
    }
}

static void
avc_forgot_begun(avc_call_t *call, int err)
{
    avc_forgot_t *f = call->op;
    const char *p[2];

    if (err != AVC_OK) {
        avc_forgot_reply(call);
        return;
    }
    p[0] = f->user_id;
    p[1] = f->hash;
    if (avc__txq(call, "INSERT INTO password_resets"
                 " (user_id, token_hash, expires_at) VALUES ($1::bigint,"
                 " decode($2, 'hex'), now() + interval '1 hour')", 2, p,
                 avc_forgot_stored) != AVC_OK)
    {
        avc__rollback(call);
        avc_forgot_reply(call);
    }
}

static void
avc_forgot_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_forgot_t *f = call->op;

    if (err != AVC_OK || avc_db_res_rows(res) != 1) {
        avc_forgot_reply(call);
        return;
    }
    snprintf(f->user_id, sizeof(f->user_id), "%s",
             avc_db_res_value(res, 0, 0));
    free(f->email);
    f->email = strdup(avc_db_res_value(res, 0, 1));
    if (f->email == NULL || avc__random_hex(f->token, 32) != AVC_OK) {
        avc_forgot_reply(call);
        return;
    }
    avc__sha256_hex(f->token, f->hash);
    if (avc__begin(call, avc_forgot_begun) != AVC_OK) {
        avc_forgot_reply(call);
    }
}

AVC_API int
avc_op_auth_forgot(avc_call_t *call)
{
    avc__v_t v;
    const char *email = NULL, *p[1];
    avc_forgot_t *f;

    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return AVC_OK;
    }
    avc__v_email(&v, "email", 1, &email);
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_OK;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL || (f->email = strdup(email)) == NULL) {
        avc_forgot_free(f);
        avc__v_end(&v);
        return AVC_ENOMEM;
    }
    avc__v_end(&v);
    call->op = f;
    call->op_free = avc_forgot_free;
    p[0] = f->email;
    if (avc__q(call, "SELECT u.id, u.email FROM users u"
               " LEFT JOIN dealerships d ON d.id = u.dealership_id"
               " WHERE lower(u.email) = lower($1) AND u.is_active"
               " AND coalesce(d.is_active, true)", 1, p, avc_forgot_loaded)
        != AVC_OK)
    {
        avc_forgot_reply(call);
    }
    return AVC_OK;
}

/* password reset */

typedef struct {
    char hash[65];
    char *password;
    char *pwhash;
    char reset_id[24];
    char user_id[24];
} avc_reset_t;

static void
avc_reset_free(void *p)
{
    avc_reset_t *r = p;

    if (r) {
        if (r->password) {
            explicit_bzero(r->password, strlen(r->password));
            free(r->password);
        }
        free(r->pwhash);
        free(r);
    }
}

static void
avc_reset_invalid(avc_call_t *call)
{
    avc__v_t v;

    avc__rollback(call);
    if (avc__v_begin(&v, call, 0) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__v_fail(&v, "token", "value_error", "Invalid or expired reset token");
    avc__v_reply(&v);
    avc__v_end(&v);
}

static void
avc_reset_committed(avc_call_t *call, int err)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    avc__call_raw(call, 204, NULL, "", 0);
}

static void
avc_reset_applied(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (atoll(avc_db_res_value(res, 0, 0)) != 1) {
        avc_reset_invalid(call);            /* used meanwhile */
        return;
    }
    if (avc__commit(call, avc_reset_committed) != AVC_OK) {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

static void
avc_reset_begun(avc_call_t *call, int err)
{
    avc_reset_t *r = call->op;
    const char *p[3];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    p[0] = r->reset_id;
    p[1] = r->user_id;
    p[2] = r->pwhash;
    /* one statement: use the token, set the password, end every session */
    if (avc__txq(call,
                 "WITH used AS (UPDATE password_resets SET used_at = now()"
                 " WHERE id = $1::bigint AND used_at IS NULL"
                 " AND expires_at > now() RETURNING user_id),"
                 " pw AS (UPDATE users SET password_hash = $3,"
                 " password_changed_at = now(), failed_logins = 0"
                 " WHERE id = $2::bigint AND id IN (SELECT user_id FROM used)"
                 " RETURNING id),"
                 " rt AS (UPDATE refresh_tokens SET revoked_at = now()"
                 " WHERE user_id IN (SELECT id FROM pw)"
                 " AND revoked_at IS NULL)"
                 " SELECT count(*) FROM pw", 3, p, avc_reset_applied)
        != AVC_OK)
    {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

static void
avc_reset_hashed(avc_call_t *call, const char *hash)
{
    avc_reset_t *r = call->op;

    r->pwhash = strdup(hash);
    if (r->pwhash == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    if (avc__begin(call, avc_reset_begun) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_reset_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_reset_t *r = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        avc_reset_invalid(call);
        return;
    }
    snprintf(r->reset_id, sizeof(r->reset_id), "%s",
             avc_db_res_value(res, 0, 0));
    snprintf(r->user_id, sizeof(r->user_id), "%s",
             avc_db_res_value(res, 0, 1));
    if (avc__hash_password(call, r->password, avc_reset_hashed) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_auth_reset(avc_call_t *call)
{
    avc__v_t v;
    const char *token = NULL, *password = NULL, *why, *p[1];
    avc_reset_t *r;

    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return AVC_OK;
    }
    avc__v_str(&v, "token", 1, 1, 200, &token);
    if (avc__v_str(&v, "password", 1, 1, 100, &password) == 1
        && avc_password_policy(password, &why) != AVC_OK)
    {
        avc__v_fail(&v, "password", "value_error", why);
    }
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return AVC_OK;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->password = strdup(password)) == NULL) {
        avc_reset_free(r);
        avc__v_end(&v);
        return AVC_ENOMEM;
    }
    avc__sha256_hex(token, r->hash);
    avc__v_end(&v);
    call->op = r;
    call->op_free = avc_reset_free;
    p[0] = r->hash;
    if (avc__q(call, "SELECT id, user_id FROM password_resets"
               " WHERE token_hash = decode($1, 'hex') AND used_at IS NULL"
               " AND expires_at > now()", 1, p, avc_reset_loaded) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
    return AVC_OK;
}
