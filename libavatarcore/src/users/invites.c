/*
 * POST /api/v1/users/invites: an administrator invites someone by e-mail.
 *
 * The invitation fixes the role and the dealership of the account that
 * signs up with it (POST /api/v1/auth/signup with invite_token; signup
 * mode "invite").  Who may invite whom follows POST /api/v1/users/: a
 * super admin anyone, a dealership admin user and dealership_admin
 * accounts of its own dealership.  The token (32 random bytes as hex) is
 * mailed, never stored: the database keeps its SHA-256.  The invitation
 * and its mail are written in one transaction, so a mail is never queued
 * for an invitation that does not exist, nor the reverse.
 */
#include "users_int.h"
#include "../auth/authops.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* how long an invitation is valid */
#define AVC_INVITE_TTL  "7 days"

static const char *const avc_invite_roles[] = {
    "super_admin", "dealership_admin", "user", NULL
};

typedef struct {
    char *email;
    const char *role;           /* static */
    long long dealership_id;
    int has_dealership;
    char *dealership_name;      /* for the mail */
    char token[65];
    char hash[65];
    json_t *reply;              /* {id, email, expires_at} */
} avc_invite_t;

static void
avc_invite_free(void *p)
{
    avc_invite_t *in = p;

    if (in) {
        explicit_bzero(in->token, sizeof(in->token));
        free(in->email);
        free(in->dealership_name);
        json_decref(in->reply);
        free(in);
    }
}

static void
avc_invite_unavailable(avc_call_t *call)
{
    avc__rollback(call);
    avc__call_error(call, 503, "Service temporarily unavailable");
}

static void
avc_invite_no_dealership(avc_call_t *call, long long id)
{
    char msg[80];

    snprintf(msg, sizeof(msg), "Dealership with ID %lld not found", id);
    avc__call_invalid(call, "dealership_id", "value_error", msg);
}

static void
avc_invite_committed(avc_call_t *call, int err)
{
    avc_invite_t *in = call->op;
    json_t *reply;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    avc__mail_kick(call->app);
    reply = in->reply;
    in->reply = NULL;
    avc__call_json(call, 201, reply);
}

static void
avc_invite_mail_queued(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc__commit(call, avc_invite_committed) != AVC_OK) {
        avc_invite_unavailable(call);
    }
}

static void
avc_invite_stored(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_invite_t *in = call->op;
    const char *vars[11], *role;
    char *link;
    int rc;

    if (err == AVC_EDB && strcmp(avc_db_res_sqlstate(res), "23503") == 0) {
        /* the dealership went meanwhile */
        avc__rollback(call);
        avc_invite_no_dealership(call, in->dealership_id);
        return;
    }
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    /* id, email, expires_at (API), expires_at (for people) */
    in->reply = json_pack("{s:I, s:s, s:s}",
                          "id", (json_int_t) atoll(avc_db_res_value(res, 0,
                                                                     0)),
                          "email", avc_db_res_value(res, 0, 1),
                          "expires_at", avc_db_res_value(res, 0, 2));
    link = avc__app_link(call->app, "/signup", in->token);
    if (in->reply == NULL || link == NULL) {
        free(link);
        avc__rollback(call);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    role = strcmp(in->role, "super_admin") == 0 ? "a super admin"
           : strcmp(in->role, "dealership_admin") == 0
           ? "a dealership admin" : "a user";
    vars[0] = "email";
    vars[1] = in->email;
    vars[2] = "dealership_name";
    vars[3] = in->dealership_name ? in->dealership_name
                                  : "the platform team";
    vars[4] = "role";
    vars[5] = role;
    vars[6] = "link";
    vars[7] = link;
    vars[8] = "expires_at";
    vars[9] = avc_db_res_value(res, 0, 3);
    vars[10] = NULL;
    rc = avc__mail_enqueue(call, "invite", in->email, vars,
                           avc_invite_mail_queued);
    avc__free_secret(link);
    if (rc != AVC_OK) {
        avc__rollback(call);
        avc__call_error(call, 500, "Internal server error");
    }
}

static void
avc_invite_begun(avc_call_t *call, int err)
{
    avc_invite_t *in = call->op;
    char dbuf[AVC__USERS_NUM], ubuf[AVC__USERS_NUM];
    const char *p[6];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    snprintf(dbuf, sizeof(dbuf), "%lld", in->dealership_id);
    snprintf(ubuf, sizeof(ubuf), "%lld", call->who.id);
    p[0] = in->hash;
    p[1] = in->email;
    p[2] = in->role;
    p[3] = in->has_dealership ? dbuf : NULL;
    p[4] = ubuf;
    if (avc__txq(call,
        "INSERT INTO invites (token_hash, email, role, dealership_id,"
        " expires_at, created_by) VALUES (decode($1, 'hex'), $2, $3,"
        " $4::bigint, now() + interval '" AVC_INVITE_TTL "', $5::bigint)"
        " RETURNING id, email, " AVC__TS("expires_at") ","
        " to_char(expires_at AT TIME ZONE 'UTC',"
        " 'FMMonth FMDD, YYYY \"at\" HH24:MI \"UTC\"')",
        5, p, avc_invite_stored) != AVC_OK)
    {
        avc_invite_unavailable(call);
    }
}

static void
avc_invite_checked(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_invite_t *in = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    /* registered, dealership name (NULL when none or missing) */
    if (strcmp(avc_db_res_value(res, 0, 0), "t") == 0) {
        avc__call_error(call, 409, "Email already registered");
        return;
    }
    if (in->has_dealership) {
        if (avc_db_res_isnull(res, 0, 1)) {
            avc_invite_no_dealership(call, in->dealership_id);
            return;
        }
        in->dealership_name = strdup(avc_db_res_value(res, 0, 1));
        if (in->dealership_name == NULL) {
            avc__call_error(call, 500, "Internal server error");
            return;
        }
    }
    if (avc__begin(call, avc_invite_begun) != AVC_OK) {
        avc_invite_unavailable(call);
    }
}

static void
avc_invite_auth(avc_call_t *call)
{
    avc__v_t v;
    const char *email = NULL, *role = "user", *p[2];
    long long dealership = 0;
    int has_dealership, sa = avc__is_sa(&call->who);
    avc_invite_t *in;
    char dbuf[AVC__USERS_NUM];

    if (!sa && !avc__is_da(&call->who)) {
        avc__call_error(call, 403, "Not enough permissions");
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__v_email(&v, "email", 1, &email);
    avc__v_enum(&v, "role", 0, avc_invite_roles, &role);
    has_dealership = avc__v_int(&v, "dealership_id", 0, LLONG_MIN,
                                LLONG_MAX, &dealership);
    if (sa && has_dealership == 0 && strcmp(role, "super_admin") != 0) {
        avc__v_fail(&v, "dealership_id", "missing",
                    "A dealership is required for this role");
    }
    if (avc__users_v_check(&v)) {
        return;
    }
    has_dealership = has_dealership == 1;
    if (!sa) {
        if (strcmp(role, "super_admin") == 0) {
            avc__v_end(&v);
            avc__call_error(call, 403,
                            "Dealership admins cannot manage super admins");
            return;
        }
        if (call->who.dealership_id == 0) {
            avc__v_end(&v);
            avc__call_error(call, 403, "You are not assigned to a dealership");
            return;
        }
        if (has_dealership && dealership != call->who.dealership_id) {
            avc__v_end(&v);
            avc_invite_no_dealership(call, dealership);
            return;
        }
        dealership = call->who.dealership_id;
        has_dealership = 1;
    }

    in = calloc(1, sizeof(*in));
    if (in == NULL || (in->email = strdup(email)) == NULL) {
        avc_invite_free(in);
        avc__v_end(&v);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__v_end(&v);
    call->op = in;
    call->op_free = avc_invite_free;
    in->role = role;
    in->dealership_id = dealership;
    in->has_dealership = has_dealership;
    if (avc__random_hex(in->token, 32) != AVC_OK) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__sha256_hex(in->token, in->hash);

    snprintf(dbuf, sizeof(dbuf), "%lld", dealership);
    p[0] = in->email;
    p[1] = has_dealership ? dbuf : NULL;
    if (avc__q(call,
               "SELECT EXISTS (SELECT 1 FROM users"
               " WHERE lower(email) = lower($1)),"
               " (SELECT name FROM dealerships WHERE id = $2::bigint)",
               2, p, avc_invite_checked) != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_users_invite(avc_call_t *call)
{
    avc__authenticate(call, avc_invite_auth);
    return AVC_OK;
}
