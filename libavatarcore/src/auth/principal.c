/*
 * Who is calling: the bearer token is verified (signature, algorithm,
 * expiry, type), then the account is read from the database on every
 * request, so a role change or a deactivation (of the user or of its
 * dealership) takes effect at once, whatever the token says.
 */
#include "../app/app_int.h"

#include <avatarcore/token.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct {
    void (*fn)(avc_call_t *call);
    char pwc[24];
} avc_auth_t;

static void
avc_auth_free(void *p)
{
    free(p);
}

void
avc__reply_unauthorized(avc_call_t *call, const char *message)
{
    json_t *o;

    /* "detail" for clients of the old server, "error" for this one */
    o = json_pack("{s:s, s:{s:s, s:s, s:s}}", "detail", message, "error",
                  "message", message, "type", "AuthenticationError",
                  "path", call->path);
    avc__call_add_header(call, "WWW-Authenticate", "Bearer");
    avc__call_json(call, 401, o);
}

/* The bearer token of a call, or NULL. */
const char *
avc__bearer(const avc_call_t *call)
{
    const char *h = avc_call_header(call, "Authorization");

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        return NULL;
    }
    h += 7;
    while (*h == ' ') {
        h++;
    }
    return *h ? h : NULL;
}

static void
avc_auth_loaded(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_auth_t *a = call->auth;
    void (*fn)(avc_call_t *call) = a->fn;
    const char *v;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        avc__reply_unauthorized(call, "Could not validate credentials");
        return;
    }
    /* u.id, u.email, u.role, u.is_active, u.dealership_id, d.is_active,
       pwc, then the User columns */
    if (strcmp(avc_db_res_value(res, 0, 3), "t") != 0
        || (!avc_db_res_isnull(res, 0, 5)
            && strcmp(avc_db_res_value(res, 0, 5), "t") != 0))
    {
        avc__reply_unauthorized(call, "Inactive user");
        return;
    }
    /* tokens issued before the last password change are void */
    if (strcmp(a->pwc, avc_db_res_value(res, 0, 6)) != 0) {
        avc__reply_unauthorized(call, "Could not validate credentials");
        return;
    }
    call->who.id = atoll(avc_db_res_value(res, 0, 0));
    snprintf(call->who.email, sizeof(call->who.email), "%s",
             avc_db_res_value(res, 0, 1));
    snprintf(call->who.role, sizeof(call->who.role), "%s",
             avc_db_res_value(res, 0, 2));
    v = avc_db_res_value(res, 0, 4);
    call->who.dealership_id = avc_db_res_isnull(res, 0, 4) ? 0 : atoll(v);
    call->who_json = avc__user_json_at(res, 0, 7);
    call->authed = 1;
    /* calls the core makes for this caller carry the same stamp */
    snprintf(call->as_pwc, sizeof(call->as_pwc), "%s", a->pwc);

    avc_auth_free(call->auth);
    call->auth = NULL;
    fn(call);
}

void
avc__authenticate(avc_call_t *call, void (*fn)(avc_call_t *call))
{
    avc_app_t *app = call->app;
    const char *tok = avc__bearer(call), *sub, *pwc;
    const char *params[1];
    avc_token_t *t = NULL;
    avc_auth_t *a;

    if (call->as_user > 0) {
        /* a call made inside the core for an authenticated session */
        char uid[24];

        a = calloc(1, sizeof(*a));
        if (a == NULL) {
            avc__call_error(call, 500, "Internal server error");
            return;
        }
        a->fn = fn;
        snprintf(a->pwc, sizeof(a->pwc), "%s", call->as_pwc);
        avc_auth_free(call->auth);
        call->auth = a;
        snprintf(uid, sizeof(uid), "%lld", call->as_user);
        params[0] = uid;
        if (avc__qn(call, AVC__STMT_PRINCIPAL, 1, params, avc_auth_loaded)
            != AVC_OK)
        {
            avc__call_error(call, 503, "Service temporarily unavailable");
        }
        return;
    }
    if (tok == NULL) {
        avc__reply_unauthorized(call, "Not authenticated");
        return;
    }
    if (avc_token_verify(app->secret, app->secret_len, tok, strlen(tok),
                         "access", (long long) time(NULL), &t) != AVC_OK)
    {
        avc__reply_unauthorized(call, "Could not validate credentials");
        return;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        avc_token_free(t);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    a->fn = fn;
    pwc = avc_token_claim(t, "pwc");
    snprintf(a->pwc, sizeof(a->pwc), "%s", pwc ? pwc : "-");
    avc_auth_free(call->auth);
    call->auth = a;

    sub = avc_token_claim(t, "sub");
    params[0] = sub;
    if (strspn(sub, "0123456789") != strlen(sub) || strlen(sub) > 18) {
        avc_token_free(t);
        avc__reply_unauthorized(call, "Could not validate credentials");
        return;
    }
    if (avc__qn(call, AVC__STMT_PRINCIPAL, 1, params, avc_auth_loaded)
        != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
    avc_token_free(t);
}

int
avc__register_statements(avc_db_t *db)
{
    /* the caller of every authenticated request: one indexed lookup */
    return avc_db_statement(db, AVC__STMT_PRINCIPAL,
               "SELECT u.id, u.email, u.role, u.is_active, u.dealership_id,"
               " d.is_active, " AVC__PWC("u") ", " AVC__USER_COLS
               " FROM users u LEFT JOIN dealerships d"
               " ON d.id = u.dealership_id WHERE u.id = $1::bigint");
}
