/*
 * /api/v1/report: feedback on Adam's answers.
 *
 * Any signed-in user reports an inaccurate answer (POST /inaccuracy) or
 * writes to the team (POST /send-to-team).  The report is stored first:
 * one transaction inserts it and queues its mail (table mail_outbox, see
 * mailq.c) to the addresses of mail.recipients, so a mail provider that
 * is down delays the mail and never loses the report.  The dealership is
 * the reporter's, read from the database with the caller; a
 * dealership_name sent by the client is accepted for compatibility and
 * ignored.  Every value reaches the mail's HTML part escaped (the
 * templates escape what they insert).
 *
 * Administrators review reports: a super admin sees all, a dealership
 * admin those of its own dealership (the scope is a condition of every
 * statement, as for users: another dealership's report is answered like
 * a missing one), a user none (403).
 */
#include "../users/users_int.h"
#include "json_util.h"

#include <avatarcore/mail.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* caps in characters; the body as a whole is capped by the host */
#define AVC_REPORT_TEXT_MAX     20000
#define AVC_REPORT_NOTE_MAX     5000    /* resolution_note: the schema's */
#define AVC_REPORT_TURNS_MAX    100
#define AVC_REPORT_ROLE_MAX     32
#define AVC_REPORT_SESSION_MAX  128     /* as conversations.session_id */
#define AVC_REPORT_MODE_MAX     32
#define AVC_REPORT_NAME_MAX     255

#define AVC_REPORT_SCOPE(n)                                                 \
    "($" n "::bigint IS NULL OR r.dealership_id = $" n ")"

/* a report as the list and PATCH answer it */
#define AVC_REPORT_JOINS                                                    \
    " LEFT JOIN users u ON u.id = r.user_id"                                \
    " LEFT JOIN dealerships d ON d.id = r.dealership_id"                    \
    " LEFT JOIN mail_outbox m ON m.id = r.mail_id"

#define AVC_REPORT_COLS                                                     \
    "r.id, r.kind, r.status, r.user_id, u.email, r.dealership_id, d.name,"  \
    " r.session_id, r.mode, r.fields::text, r.resolution_note,"             \
    " r.resolved_by, " AVC__TS("r.created_at") ", "                         \
    AVC__TS("r.updated_at") ", " AVC__TS("m.sent_at")

static const char *const avc_report_statuses[] = {
    "open", "resolved", "dismissed", NULL
};

static const char *const avc_report_kinds[] = {
    "inaccuracy", "send_to_team", NULL
};

/* the state of a POST, freed with the call */
typedef struct {
    const char *kind;           /* static: inaccuracy | send_to_team */
    const char *answer;         /* static: the success message */
    json_t *fields;             /* what is stored, and mailed */
    char *session_id;
    char *mode;
    char id[24];                /* once stored */
} avc_report_t;

static void
avc_report_free(void *p)
{
    avc_report_t *rp = p;

    if (rp) {
        json_decref(rp->fields);
        free(rp->session_id);
        free(rp->mode);
        free(rp);
    }
}

static void
avc_report_start(avc_call_t *call, int rc)
{
    if (rc != AVC_OK) {
        avc__rollback(call);
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static size_t
avc_report_chars(const char *s)
{
    size_t n;

    for (n = 0; *s; s++) {
        n += ((unsigned char) *s & 0xc0) != 0x80;
    }
    return n;
}

/*
 * A list of conversation turns [{role, content}] (any other member of a
 * turn is dropped): 1 and a new array in *out, 0 when absent, -1 after
 * recording details.  The old client also sends a transcript as one
 * string where a list is expected (conversation_context), so a string is
 * accepted when text_ok.
 */
static int
avc_report_turns(avc__v_t *v, const char *field, int required, int text_ok,
    json_t **out)
{
    json_t *j = json_object_get(v->body, field), *turn, *role, *content;
    json_t *a;
    char name[96], msg[96];
    size_t i;
    int bad = 0;

    *out = NULL;
    if (j == NULL || json_is_null(j)) {
        if (required) {
            avc__v_fail(v, field, "missing", "Field required");
            return -1;
        }
        return 0;
    }
    if (text_ok && json_is_string(j)) {
        const char *s;

        if (avc__v_str(v, field, 0, 0, AVC_REPORT_TEXT_MAX, &s) != 1) {
            return -1;
        }
        *out = json_string(s);
        return *out ? 1 : -1;
    }
    if (!json_is_array(j)) {
        avc__v_fail(v, field, "list_type", "Input should be a valid list");
        return -1;
    }
    if (json_array_size(j) > AVC_REPORT_TURNS_MAX) {
        snprintf(msg, sizeof(msg), "List should have at most %d items",
                 AVC_REPORT_TURNS_MAX);
        avc__v_fail(v, field, "too_long", msg);
        return -1;
    }
    a = json_array();
    if (a == NULL) {
        avc__v_fail(v, field, "internal", "Out of memory");
        return -1;
    }
    json_array_foreach(j, i, turn) {
        if (!json_is_object(turn)) {
            snprintf(name, sizeof(name), "%s.%zu", field, i);
            avc__v_fail(v, name, "dict_type",
                        "Input should be a valid dictionary");
            bad = 1;
            continue;
        }
        role = json_object_get(turn, "role");
        content = json_object_get(turn, "content");
        snprintf(name, sizeof(name), "%s.%zu.role", field, i);
        if (role == NULL || json_is_null(role)) {
            avc__v_fail(v, name, "missing", "Field required");
            bad = 1;
        } else if (!json_is_string(role)
                   || json_string_length(role) == 0
                   || strlen(json_string_value(role))
                      != json_string_length(role)
                   || avc_report_chars(json_string_value(role))
                      > AVC_REPORT_ROLE_MAX)
        {
            snprintf(msg, sizeof(msg), "Input should be a string of 1 to "
                     "%d characters", AVC_REPORT_ROLE_MAX);
            avc__v_fail(v, name, "string_type", msg);
            bad = 1;
        }
        snprintf(name, sizeof(name), "%s.%zu.content", field, i);
        if (content == NULL || json_is_null(content)) {
            avc__v_fail(v, name, "missing", "Field required");
            bad = 1;
        } else if (!json_is_string(content)
                   || strlen(json_string_value(content))
                      != json_string_length(content))
        {
            avc__v_fail(v, name, "string_type",
                        "Input should be a valid string");
            bad = 1;
        } else if (avc_report_chars(json_string_value(content))
                   > AVC_REPORT_TEXT_MAX)
        {
            snprintf(msg, sizeof(msg), "String should have at most %d "
                     "characters", AVC_REPORT_TEXT_MAX);
            avc__v_fail(v, name, "string_too_long", msg);
            bad = 1;
        }
        if (!bad && json_array_append_new(a, json_pack("{s:O, s:O}",
                                          "role", role, "content", content))
                    != 0)
        {
            avc__v_fail(v, field, "internal", "Out of memory");
            bad = 1;
        }
    }
    if (bad) {
        json_decref(a);
        return -1;
    }
    *out = a;
    return 1;
}

/* The turns as text for the mail: "User: ...", blank line, "Adam: ...". */
static char *
avc_report_transcript(const json_t *turns)
{
    avc__buf_t b;
    const json_t *t;
    const char *role, *who;
    size_t i;
    int rc = AVC_OK;

    avc__buf_init(&b);
    if (json_is_string(turns)) {
        rc = avc__buf_appends(&b, json_string_value(turns));
    } else {
        json_array_foreach(turns, i, t) {
            role = json_string_value(json_object_get(t, "role"));
            who = strcmp(role, "user") == 0 ? "User"
                  : strcmp(role, "assistant") == 0 ? "Adam" : role;
            rc = avc__buf_printf(&b, "%s%s: %s", i ? "\n\n" : "", who,
                                 json_string_value(json_object_get(t,
                                                                   "content")));
            if (rc != AVC_OK) {
                break;
            }
        }
    }
    if (rc == AVC_OK && b.len == 0) {
        rc = avc__buf_appends(&b, "(none)");
    }
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}

static const char *
avc_report_field(const avc_report_t *rp, const char *name)
{
    return json_string_value(json_object_get(rp->fields, name));
}

/* POST: the end */

static void
avc_report_committed(avc_call_t *call, int err)
{
    avc_report_t *rp = call->op;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    avc__mail_kick(call->app);
    avc__call_json(call, 200, json_pack("{s:b, s:s}", "success", 1,
                                        "message", rp->answer));
}

static void
avc_report_commit(avc_call_t *call)
{
    avc_report_start(call, avc__commit(call, avc_report_committed));
}

static void
avc_report_mail_linked(avc_call_t *call, int err, avc_db_res_t *res)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    avc_report_commit(call);
}

/* the mail is queued: the report points at it (the list's mailed_at) */
static void
avc_report_mail_queued(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_report_t *rp = call->op;
    const char *p[2];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    p[0] = avc_db_res_value(res, 0, 0);
    p[1] = rp->id;
    avc_report_start(call, avc__txq(call, "UPDATE reports SET mail_id ="
                                    " $1::bigint WHERE id = $2::bigint", 2,
                                    p, avc_report_mail_linked));
}

/*
 * The report is in (id, dealership name): queue its mail in the same
 * transaction.  A mail that cannot even be composed is logged and the
 * report is kept without it.
 */
static void
avc_report_stored(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_report_t *rp = call->op;
    const char *to, *vars[21], *conv_field;
    char *conversation;
    int inacc, rc;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    snprintf(rp->id, sizeof(rp->id), "%s", avc_db_res_value(res, 0, 0));
    to = avc_mailer_recipients(call->app->mailer);
    if (to == NULL || *to == '\0') {
        avc_log(AVC_LOG_WARN, "report %s stored; not mailed: no "
                "recipients are configured (avatar_mail recipients=)",
                avc_db_res_value(res, 0, 0));
        avc_report_commit(call);
        return;
    }
    inacc = strcmp(rp->kind, "inaccuracy") == 0;
    conv_field = inacc ? "conversation_context" : "conversation_history";
    conversation = avc_report_transcript(json_object_get(rp->fields,
                                                         conv_field));
    if (conversation == NULL) {
        avc__rollback(call);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    vars[0] = "kind";
    vars[1] = inacc ? "Inaccuracy" : "Team message";
    vars[2] = "report_id";
    vars[3] = avc_db_res_value(res, 0, 0);
    vars[4] = "dealership_name";
    vars[5] = avc_db_res_isnull(res, 0, 1) ? "no dealership"
                                           : avc_db_res_value(res, 0, 1);
    vars[6] = "reporter_email";
    vars[7] = call->who.email;
    vars[8] = "session_id";
    vars[9] = rp->session_id ? rp->session_id : "no session";
    vars[10] = "mode";
    vars[11] = rp->mode ? rp->mode : "mode not given";
    vars[12] = "user_input";
    vars[13] = avc_report_field(rp, inacc ? "user_input" : "user_question");
    vars[14] = "avatar_response";
    vars[15] = avc_report_field(rp, inacc ? "avatar_response"
                                          : "ai_response");
    vars[16] = "user_note";
    vars[17] = avc_report_field(rp, inacc ? "user_note"
                                          : "additional_notes");
    if (vars[17] == NULL || *vars[17] == '\0') {
        vars[17] = "(none)";
    }
    vars[18] = "conversation";
    vars[19] = conversation;
    vars[20] = NULL;
    rc = avc__mail_enqueue(call, "report", to, (const char *const *) vars,
                           avc_report_mail_queued);
    free(conversation);
    if (rc != AVC_OK) {
        /* nothing runs in the transaction: keep the report without its
           mail (the cause is logged) rather than lose it */
        avc_log(AVC_LOG_ERR, "report %s stored; its mail was not queued: %s",
                avc_db_res_value(res, 0, 0), avc_strerror(rc));
        avc_report_commit(call);
    }
}

static void
avc_report_begun(avc_call_t *call, int err)
{
    avc_report_t *rp = call->op;
    char ubuf[AVC__USERS_NUM], dbuf[AVC__USERS_NUM], *fields;
    const char *p[6];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    fields = avc__json_dump(rp->fields, NULL);
    if (fields == NULL) {
        avc__rollback(call);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    snprintf(ubuf, sizeof(ubuf), "%lld", call->who.id);
    snprintf(dbuf, sizeof(dbuf), "%lld", call->who.dealership_id);
    p[0] = rp->kind;
    p[1] = ubuf;
    p[2] = call->who.dealership_id ? dbuf : NULL;
    p[3] = rp->session_id;
    p[4] = rp->mode;
    p[5] = fields;
    avc_report_start(call, avc__txq(call,
        "INSERT INTO reports (kind, user_id, dealership_id, session_id,"
        " mode, fields) VALUES ($1, $2::bigint, $3::bigint, $4, $5,"
        " $6::jsonb) RETURNING id,"
        " (SELECT d.name FROM dealerships d WHERE d.id = $3::bigint)",
        6, p, avc_report_stored));
    free(fields);
}

/* POST: validation */

/* an optional or required string field copied into fields */
static void
avc_report_text(avc__v_t *v, json_t *fields, const char *name, int required,
    size_t max)
{
    const char *s;

    if (avc__v_str(v, name, required, 0, max, &s) == 1) {
        json_object_set_new(fields, name, json_string(s));
    }
}

static int
avc_report_mode_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static void
avc_report_create(avc_call_t *call, int inacc)
{
    avc__v_t v;
    avc_report_t *rp;
    json_t *turns = NULL;
    const char *session = NULL, *mode = NULL, *ignored;

    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    rp = calloc(1, sizeof(*rp));
    if (rp == NULL || (rp->fields = json_object()) == NULL) {
        free(rp);
        avc__v_end(&v);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    call->op = rp;
    call->op_free = avc_report_free;

    if (inacc) {
        rp->kind = "inaccuracy";
        rp->answer = "Thank you for your feedback. Your report has been "
                     "submitted for review.";
        avc_report_text(&v, rp->fields, "user_input", 1,
                        AVC_REPORT_TEXT_MAX);
        avc_report_text(&v, rp->fields, "avatar_response", 1,
                        AVC_REPORT_TEXT_MAX);
        if (avc_report_turns(&v, "conversation_context", 0, 1, &turns)
            == 1)
        {
            json_object_set_new(rp->fields, "conversation_context", turns);
        }
        avc_report_text(&v, rp->fields, "user_note", 0,
                        AVC_REPORT_TEXT_MAX);
        if (avc__v_str(&v, "mode", 0, 1, AVC_REPORT_MODE_MAX, &mode) == 1
            && !avc_report_mode_ok(mode))
        {
            avc__v_fail(&v, "mode", "string_pattern_mismatch",
                        "String should match pattern '^[A-Za-z0-9_-]+$'");
            mode = NULL;
        }
    } else {
        rp->kind = "send_to_team";
        rp->answer = "Your message has been sent to the team.";
        avc_report_text(&v, rp->fields, "user_question", 1,
                        AVC_REPORT_TEXT_MAX);
        avc_report_text(&v, rp->fields, "ai_response", 1,
                        AVC_REPORT_TEXT_MAX);
        if (avc_report_turns(&v, "conversation_history", 1, 0, &turns)
            == 1)
        {
            json_object_set_new(rp->fields, "conversation_history", turns);
        }
        avc_report_text(&v, rp->fields, "additional_notes", 0,
                        AVC_REPORT_TEXT_MAX);
    }
    avc__v_str(&v, "session_id", 0, 1, AVC_REPORT_SESSION_MAX, &session);
    /* checked for its type, then ignored: the database knows better */
    avc__v_str(&v, "dealership_name", 0, 0, AVC_REPORT_NAME_MAX, &ignored);
    if (avc__users_v_check(&v)) {
        return;
    }
    if ((session && (rp->session_id = strdup(session)) == NULL)
        || (mode && (rp->mode = strdup(mode)) == NULL))
    {
        avc__v_end(&v);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__v_end(&v);
    avc_report_start(call, avc__begin(call, avc_report_begun));
}

static void
avc_report_inaccuracy_auth(avc_call_t *call)
{
    avc_report_create(call, 1);
}

static void
avc_report_team_auth(avc_call_t *call)
{
    avc_report_create(call, 0);
}

AVC_API int
avc_op_report_inaccuracy(avc_call_t *call)
{
    avc__authenticate(call, avc_report_inaccuracy_auth);
    return AVC_OK;
}

AVC_API int
avc_op_report_send_to_team(avc_call_t *call)
{
    avc__authenticate(call, avc_report_team_auth);
    return AVC_OK;
}

/* review: the report object */

static json_t *
avc_report_text_json(avc_db_res_t *res, int row, int col)
{
    return avc_db_res_isnull(res, row, col)
           ? json_null() : json_string(avc_db_res_value(res, row, col));
}

static json_t *
avc_report_int_json(avc_db_res_t *res, int row, int col)
{
    return avc_db_res_isnull(res, row, col)
           ? json_null()
           : json_integer(atoll(avc_db_res_value(res, row, col)));
}

static json_t *
avc_report_json(avc_db_res_t *res, int row)
{
    json_t *fields;

    fields = json_loads(avc_db_res_value(res, row, 9), 0, NULL);
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
                     " s:o, s:o, s:o, s:o, s:o}",
                     "id", avc_report_int_json(res, row, 0),
                     "kind", avc_report_text_json(res, row, 1),
                     "status", avc_report_text_json(res, row, 2),
                     "user_id", avc_report_int_json(res, row, 3),
                     "reporter_email", avc_report_text_json(res, row, 4),
                     "dealership_id", avc_report_int_json(res, row, 5),
                     "dealership_name", avc_report_text_json(res, row, 6),
                     "session_id", avc_report_text_json(res, row, 7),
                     "mode", avc_report_text_json(res, row, 8),
                     "fields", fields ? fields : json_object(),
                     "resolution_note", avc_report_text_json(res, row, 10),
                     "resolved_by", avc_report_int_json(res, row, 11),
                     "created_at", avc_report_text_json(res, row, 12),
                     "updated_at", avc_report_text_json(res, row, 13),
                     "mailed_at", avc_report_text_json(res, row, 14));
}

/* Users get 403; 0 after replying. */
static int
avc_report_admin(avc_call_t *call)
{
    if (avc__is_sa(&call->who) || avc__is_da(&call->who)) {
        return 1;
    }
    avc__call_error(call, 403, "Not enough permissions");
    return 0;
}

/* GET /api/v1/report/: newest first */

static void
avc_report_listed(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__reply_rows(call, err, res, avc_report_json);
}

static void
avc_report_list_auth(avc_call_t *call)
{
    avc__v_t v;
    long long offset = 0, skip = 0, limit = 100, dealership = 0;
    const char *status = NULL, *kind = NULL, *p[6];
    int has_dealership;
    char scope[AVC__USERS_NUM], dbuf[AVC__USERS_NUM];
    char obuf[AVC__USERS_NUM], lbuf[AVC__USERS_NUM];

    if (!avc_report_admin(call) || avc__users_v_init(&v, call) != AVC_OK) {
        return;
    }
    /* offset, or skip as the other lists call it */
    avc__v_qint(&v, "offset", 0, 0, LLONG_MAX, &offset);
    avc__v_qint(&v, "skip", 0, 0, LLONG_MAX, &skip);
    avc__v_qint(&v, "limit", 100, 1, 100, &limit);
    avc__users_qenum(&v, "status", avc_report_statuses, &status);
    avc__users_qenum(&v, "kind", avc_report_kinds, &kind);
    has_dealership = avc__v_qint(&v, "dealership_id", 0, LLONG_MIN,
                                 LLONG_MAX, &dealership) == 1;
    if (avc__users_v_check(&v)) {
        return;
    }
    avc__v_end(&v);

    snprintf(dbuf, sizeof(dbuf), "%lld", dealership);
    snprintf(obuf, sizeof(obuf), "%lld", offset ? offset : skip);
    snprintf(lbuf, sizeof(lbuf), "%lld", limit);
    p[0] = avc__users_scope(call, scope);
    p[1] = status;
    p[2] = kind;
    p[3] = has_dealership ? dbuf : NULL;
    p[4] = obuf;
    p[5] = lbuf;
    avc_report_start(call, avc__q(call,
        "SELECT " AVC_REPORT_COLS " FROM reports r" AVC_REPORT_JOINS
        " WHERE " AVC_REPORT_SCOPE("1")
        " AND ($2::text IS NULL OR r.status = $2)"
        " AND ($3::text IS NULL OR r.kind = $3)"
        " AND ($4::bigint IS NULL OR r.dealership_id = $4)"
        " ORDER BY r.created_at DESC, r.id DESC"
        " OFFSET $5::bigint LIMIT $6::bigint",
        6, p, avc_report_listed));
}

AVC_API int
avc_op_report_list(avc_call_t *call)
{
    avc__authenticate(call, avc_report_list_auth);
    return AVC_OK;
}

/*
 * PATCH /api/v1/report/{id}: {status, resolution_note?}.  Closing a
 * report (resolved, dismissed) records who did; reopening it clears
 * that.  A note not given is kept.
 */

static void
avc_report_updated(avc_call_t *call, int err, avc_db_res_t *res)
{
    char msg[64];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        snprintf(msg, sizeof(msg), "Report with ID %lld not found",
                 atoll(avc_call_param(call, "id")));
        avc__call_error(call, 404, msg);
        return;
    }
    avc__call_json(call, 200, avc_report_json(res, 0));
}

static void
avc_report_update_auth(avc_call_t *call)
{
    avc__v_t v;
    long long id = 0;
    const char *status = NULL, *note = NULL, *p[5];
    char scope[AVC__USERS_NUM], idbuf[AVC__USERS_NUM];
    char ubuf[AVC__USERS_NUM];

    if (!avc_report_admin(call)) {
        return;
    }
    if (avc__v_begin(&v, call, 1) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    avc__users_path_id(&v, "id", &id);
    avc__v_enum(&v, "status", 1, avc_report_statuses, &status);
    avc__v_str(&v, "resolution_note", 0, 0, AVC_REPORT_NOTE_MAX, &note);
    if (avc__users_v_check(&v)) {
        return;
    }
    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    snprintf(ubuf, sizeof(ubuf), "%lld", call->who.id);
    p[0] = idbuf;
    p[1] = avc__users_scope(call, scope);
    p[2] = status;
    p[3] = note;
    p[4] = ubuf;
    avc_report_start(call, avc__q(call,
        "WITH n AS (UPDATE reports r SET status = $3,"
        " resolution_note = COALESCE($4::text, r.resolution_note),"
        " resolved_by = CASE WHEN $3 = 'open' THEN NULL"
        " ELSE $5::bigint END"
        " WHERE r.id = $1::bigint AND " AVC_REPORT_SCOPE("2")
        " RETURNING r.*)"
        " SELECT " AVC_REPORT_COLS " FROM n r" AVC_REPORT_JOINS,
        5, p, avc_report_updated));
    avc__v_end(&v);
}

AVC_API int
avc_op_report_update(avc_call_t *call)
{
    avc__authenticate(call, avc_report_update_auth);
    return AVC_OK;
}
