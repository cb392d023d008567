/*
 * GET /api/v1/analytics/summary: how a dealership trains.
 *
 * Over a time range [from, to) (ISO 8601; by default the 30 days up to
 * now) it counts sessions (conversations started), messages (all, and
 * the trainees' own), tokens and voice minutes (the usage table), active
 * users, the most asked questions, the topics of the material Adam cited
 * (messages.sources), and reports by status and kind.
 *
 * Scope: a super admin sees everything, or one dealership with
 * dealership_id; a dealership admin its own dealership (another id is
 * answered like a missing dealership: 404); a user only its own usage,
 * conversations and reports.  The scope is bound into the one statement
 * that computes the summary, never spliced into its text.
 *
 * The usage table counts per UTC day, so tokens, voice minutes and
 * requests cover every UTC day the range touches; the other figures are
 * exact to the microsecond.
 */
#include "../users/users_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AVC_ANALYTICS_DEFAULT_DAYS  30
#define AVC_ANALYTICS_TOP           10
#define AVC_ANALYTICS_TOP_MAX       50
#define AVC_ANALYTICS_QUESTION_MAX  "300"   /* characters shown */

#define AVC_USEC_PER_DAY  (86400LL * 1000000LL)

/* the range's bounds as the statement takes them */
#define AVC_ANALYTICS_TS_LEN  96

/* --- ISO 8601 ----------------------------------------------------------- */

static int
avc_analytics_num(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return 0;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

/* days since 1970-01-01 of a proleptic Gregorian date */
static long long
avc_analytics_days(int y, int m, int d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
avc_analytics_mdays(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                                31 };

    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return 29;
    }
    return days[m - 1];
}

/*
 * Parse "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|+HH:MM|-HH:MM]"
 * (a time without an offset is UTC; a "+" that the query string turned
 * into a space is read as "+") into microseconds since the epoch.
 * *date_only tells whether only a date was given.  0 when invalid.
 */
static int
avc_analytics_parse(const char *s, long long *usec, int *date_only)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    long long frac = 0, scale = 100000;

    if (!avc_analytics_num(&p, 4, &y) || *p++ != '-'
        || !avc_analytics_num(&p, 2, &mo) || *p++ != '-'
        || !avc_analytics_num(&p, 2, &d))
    {
        return 0;
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1
        || d > avc_analytics_mdays(y, mo))
    {
        return 0;
    }
    *date_only = *p == '\0';
    if (!*date_only) {
        if (*p != 'T' && *p != 't' && *p != ' ') {
            return 0;
        }
        p++;
        if (!avc_analytics_num(&p, 2, &h) || *p++ != ':'
            || !avc_analytics_num(&p, 2, &mi))
        {
            return 0;
        }
        if (*p == ':') {
            p++;
            if (!avc_analytics_num(&p, 2, &sec)) {
                return 0;
            }
            if (*p == '.' || *p == ',') {
                p++;
                if (*p < '0' || *p > '9') {
                    return 0;
                }
                for (; *p >= '0' && *p <= '9'; p++) {
                    /* digits past microseconds are dropped */
                    frac += (*p - '0') * scale;
                    scale /= 10;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == ' ' || *p == '-') {
            sign = *p == '-' ? -1 : 1;
            p++;
            if (!avc_analytics_num(&p, 2, &oh)) {
                return 0;
            }
            if (*p == ':') {
                p++;
            }
            if (*p != '\0' && !avc_analytics_num(&p, 2, &om)) {
                return 0;
            }
        }
        if (*p != '\0' || h > 23 || mi > 59 || sec > 59 || oh > 23
            || om > 59)
        {
            return 0;
        }
    }
    *usec = (avc_analytics_days(y, mo, d) * 86400LL + h * 3600LL
             + mi * 60LL + sec - sign * (oh * 3600LL + om * 60LL))
            * 1000000LL + frac;
    return 1;
}

/* microseconds since the epoch as a timestamptz literal in UTC */
static int
avc_analytics_format(long long usec, char buf[AVC_ANALYTICS_TS_LEN])
{
    time_t t;
    struct tm tm;
    long long s = usec / 1000000, us = usec % 1000000;

    if (us < 0) {
        us += 1000000;
        s--;
    }
    t = (time_t) s;
    if (gmtime_r(&t, &tm) == NULL) {
        return 0;
    }
    snprintf(buf, AVC_ANALYTICS_TS_LEN, "%04d-%02d-%02d %02d:%02d:%02d.%06lld"
             "+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, us);
    return 1;
}

/* query.NAME as a time: 1, 0 when absent, -1 with a detail recorded */
static int
avc_analytics_qtime(avc__v_t *v, const char *name, int end,
    long long *usec)
{
    const char *s = avc_call_param(v->call, name);
    char field[32];
    int date_only;

    if (s == NULL || *s == '\0') {
        return 0;
    }
    if (strlen(s) > 64 || !avc_analytics_parse(s, usec, &date_only)) {
        snprintf(field, sizeof(field), "query.%s", name);
        avc__v_fail(v, field, "datetime_parsing", "Input should be a valid "
                    "ISO 8601 date or datetime (1970-01-01 to 9999-12-31),"
                    " e.g. 2024-05-01 or 2024-05-01T08:00:00Z");
        return -1;
    }
    /* a date alone as the end means the whole of that day */
    if (date_only && end) {
        *usec += AVC_USEC_PER_DAY;
    }
    return 1;
}

/* --- the summary -------------------------------------------------------- */

typedef struct {
    const char *scope;          /* static: all | dealership | user */
    long long dealership_id;    /* 0: none */
    long long user_id;          /* 0: none */
    long long asked;            /* the dealership_id asked for, for a 404 */
} avc_analytics_t;

static void
avc_analytics_free(void *p)
{
    free(p);
}

/*
 * $1 from, $2 to (timestamptz), $3 the dealership (NULL: every one),
 * $4 the user (NULL: every one), $5 how many top questions and topics.
 * Messages and conversations are read through their (dealership_id,
 * time) indexes; the messages of the range are read once.
 */
static const char avc_analytics_sql[] =
    "WITH m AS MATERIALIZED ("
    "SELECT m.role, m.content, m.sources, c.user_id"
    " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
    /* as the foreign key says: the dealership filter reaches both */
    " AND c.dealership_id = m.dealership_id"
    " WHERE m.created_at >= $1::timestamptz AND m.created_at < $2::timestamptz"
    " AND ($3::bigint IS NULL OR m.dealership_id = $3::bigint)"
    " AND ($4::bigint IS NULL OR c.user_id = $4::bigint)),"
    " g AS MATERIALIZED ("
    "SELECT g.user_id, g.prompt_tokens, g.completion_tokens,"
    " g.audio_seconds, g.requests FROM usage g"
    " WHERE g.day >= ($1::timestamptz AT TIME ZONE 'UTC')::date"
    " AND g.day <= (($2::timestamptz - interval '1 microsecond')"
    " AT TIME ZONE 'UTC')::date"
    " AND ($3::bigint IS NULL OR g.dealership_id = $3::bigint)"
    " AND ($4::bigint IS NULL OR g.user_id = $4::bigint)),"
    /* one question however it is spaced, cased or punctuated at the end */
    " q AS (SELECT min(left(btrim(m.content), " AVC_ANALYTICS_QUESTION_MAX
    ")) AS question, count(*) AS n FROM m WHERE m.role = 'user'"
    " GROUP BY lower(rtrim(regexp_replace(btrim(m.content), '\\s+', ' ',"
    " 'g'), ' ?!.')) ORDER BY n DESC, question LIMIT $5::integer),"
    /* a topic counts once per answer that cited it */
    " t AS (SELECT x.topic, count(*) AS n FROM m,"
    " LATERAL (SELECT DISTINCT e->>'topic' AS topic"
    " FROM jsonb_array_elements(m.sources) e) x"
    " WHERE m.sources IS NOT NULL AND x.topic IS NOT NULL"
    " AND x.topic <> '' GROUP BY x.topic ORDER BY n DESC, x.topic"
    " LIMIT $5::integer),"
    " r AS (SELECT count(*) FILTER (WHERE r.status = 'open') AS open,"
    " count(*) FILTER (WHERE r.status = 'resolved') AS resolved,"
    " count(*) FILTER (WHERE r.status = 'dismissed') AS dismissed,"
    " count(*) AS total,"
    " count(*) FILTER (WHERE r.kind = 'inaccuracy') AS inaccuracy,"
    " count(*) FILTER (WHERE r.kind = 'send_to_team') AS send_to_team"
    " FROM reports r"
    " WHERE r.created_at >= $1::timestamptz AND r.created_at < $2::timestamptz"
    " AND ($3::bigint IS NULL OR r.dealership_id = $3::bigint)"
    " AND ($4::bigint IS NULL OR r.user_id = $4::bigint))"
    " SELECT " AVC__TS("$1::timestamptz") ", " AVC__TS("$2::timestamptz") ","
    " $3::bigint IS NULL"
    " OR EXISTS (SELECT 1 FROM dealerships d WHERE d.id = $3::bigint),"
    " (SELECT count(*) FROM conversations c"
    " WHERE c.started_at >= $1::timestamptz"
    " AND c.started_at < $2::timestamptz"
    " AND ($3::bigint IS NULL OR c.dealership_id = $3::bigint)"
    " AND ($4::bigint IS NULL OR c.user_id = $4::bigint)),"
    " (SELECT count(*) FROM m),"
    " (SELECT count(*) FROM m WHERE m.role = 'user'),"
    " (SELECT coalesce(sum(g.prompt_tokens), 0) FROM g),"
    " (SELECT coalesce(sum(g.completion_tokens), 0) FROM g),"
    " (SELECT round(coalesce(sum(g.audio_seconds), 0)::numeric / 60, 2)"
    " FROM g),"
    " (SELECT coalesce(sum(g.requests), 0) FROM g),"
    " (SELECT count(*) FROM (SELECT m.user_id FROM m UNION"
    " SELECT g.user_id FROM g WHERE g.requests > 0 OR g.prompt_tokens > 0"
    " OR g.completion_tokens > 0 OR g.audio_seconds > 0) a),"
    " (SELECT coalesce(json_agg(json_build_object('question', q.question,"
    " 'count', q.n) ORDER BY q.n DESC, q.question), '[]') FROM q)::text,"
    " (SELECT coalesce(json_agg(json_build_object('topic', t.topic,"
    " 'count', t.n) ORDER BY t.n DESC, t.topic), '[]') FROM t)::text,"
    " r.open, r.resolved, r.dismissed, r.total, r.inaccuracy,"
    " r.send_to_team FROM r";

static json_int_t
avc_analytics_int(avc_db_res_t *res, int col)
{
    return (json_int_t) atoll(avc_db_res_value(res, 0, col));
}

static json_t *
avc_analytics_id(long long id)
{
    return id ? json_integer((json_int_t) id) : json_null();
}

static void
avc_analytics_done(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_analytics_t *an = call->op;
    json_t *questions, *topics, *o;
    json_int_t prompt, completion;
    char msg[64];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (strcmp(avc_db_res_value(res, 0, 2), "t") != 0) {
        snprintf(msg, sizeof(msg), "Dealership with ID %lld not found",
                 an->asked);
        avc__call_error(call, 404, msg);
        return;
    }
    questions = json_loads(avc_db_res_value(res, 0, 11), 0, NULL);
    topics = json_loads(avc_db_res_value(res, 0, 12), 0, NULL);
    prompt = avc_analytics_int(res, 6);
    completion = avc_analytics_int(res, 7);
    o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:f, s:I,"
                  " s:{s:I, s:I, s:I}, s:I, s:o, s:o,"
                  " s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
                  "from", avc_db_res_value(res, 0, 0),
                  "to", avc_db_res_value(res, 0, 1),
                  "scope", an->scope,
                  "dealership_id", avc_analytics_id(an->dealership_id),
                  "user_id", avc_analytics_id(an->user_id),
                  "sessions", avc_analytics_int(res, 3),
                  "messages", avc_analytics_int(res, 4),
                  "user_messages", avc_analytics_int(res, 5),
                  "voice_minutes", strtod(avc_db_res_value(res, 0, 8), NULL),
                  "requests", avc_analytics_int(res, 9),
                  "tokens", "prompt", prompt, "completion", completion,
                  "total", prompt + completion,
                  "active_users", avc_analytics_int(res, 10),
                  "top_questions", questions ? questions : json_array(),
                  "top_topics", topics ? topics : json_array(),
                  "reports", "open", avc_analytics_int(res, 13),
                  "resolved", avc_analytics_int(res, 14),
                  "dismissed", avc_analytics_int(res, 15),
                  "total", avc_analytics_int(res, 16),
                  "inaccuracy", avc_analytics_int(res, 17),
                  "send_to_team", avc_analytics_int(res, 18));
    avc__call_json(call, 200, o);
}

static void
avc_analytics_not_found(avc_call_t *call, long long id)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "Dealership with ID %lld not found", id);
    avc__call_error(call, 404, msg);
}

static void
avc_analytics_auth(avc_call_t *call)
{
    avc__v_t v;
    avc_analytics_t *an;
    struct timespec now;
    long long from = 0, to = 0, dealership = 0, top = AVC_ANALYTICS_TOP;
    int has_from, has_to, has_dealership;
    char fbuf[AVC_ANALYTICS_TS_LEN], tbuf[AVC_ANALYTICS_TS_LEN];
    char dbuf[AVC__USERS_NUM], ubuf[AVC__USERS_NUM], nbuf[AVC__USERS_NUM];
    const char *p[5];

    if (avc__users_v_init(&v, call) != AVC_OK) {
        return;
    }
    has_from = avc_analytics_qtime(&v, "from", 0, &from) == 1;
    has_to = avc_analytics_qtime(&v, "to", 1, &to) == 1;
    has_dealership = avc__v_qint(&v, "dealership_id", 0, LLONG_MIN,
                                 LLONG_MAX, &dealership) == 1;
    avc__v_qint(&v, "top", AVC_ANALYTICS_TOP, 1, AVC_ANALYTICS_TOP_MAX,
                &top);
    if (!avc__v_failed(&v)) {
        if (!has_to) {
            clock_gettime(CLOCK_REALTIME, &now);
            to = (long long) now.tv_sec * 1000000LL + now.tv_nsec / 1000;
        }
        if (!has_from) {
            from = to - AVC_ANALYTICS_DEFAULT_DAYS * AVC_USEC_PER_DAY;
        }
        if (from >= to) {
            avc__v_fail(&v, has_from ? "query.from" : "query.to",
                        "value_error", "from must be earlier than to");
        }
    }
    if (avc__users_v_check(&v)) {
        return;
    }
    avc__v_end(&v);

    an = calloc(1, sizeof(*an));
    if (an == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    call->op = an;
    call->op_free = avc_analytics_free;
    an->asked = dealership;

    if (avc__is_sa(&call->who)) {
        an->scope = has_dealership ? "dealership" : "all";
        an->dealership_id = has_dealership ? dealership : 0;
        if (has_dealership && dealership <= 0) {
            avc_analytics_not_found(call, dealership);
            return;
        }
    } else {
        /* another dealership is answered like a missing one */
        if (has_dealership && dealership != call->who.dealership_id) {
            avc_analytics_not_found(call, dealership);
            return;
        }
        if (avc__is_da(&call->who)) {
            if (call->who.dealership_id == 0) {
                avc__call_error(call, 403,
                                "You are not assigned to a dealership");
                return;
            }
            an->scope = "dealership";
            an->dealership_id = call->who.dealership_id;
        } else {
            an->scope = "user";
            an->user_id = call->who.id;
            an->dealership_id = call->who.dealership_id;
        }
    }

    if (!avc_analytics_format(from, fbuf) || !avc_analytics_format(to, tbuf))
    {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    snprintf(dbuf, sizeof(dbuf), "%lld", an->dealership_id);
    snprintf(ubuf, sizeof(ubuf), "%lld", an->user_id);
    snprintf(nbuf, sizeof(nbuf), "%lld", top);
    p[0] = fbuf;
    p[1] = tbuf;
    /* a user is scoped by its id alone: its rows carry its dealership */
    p[2] = an->user_id == 0 && an->dealership_id ? dbuf : NULL;
    p[3] = an->user_id ? ubuf : NULL;
    p[4] = nbuf;
    if (avc__q(call, avc_analytics_sql, 5, p, avc_analytics_done) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

AVC_API int
avc_op_analytics_summary(avc_call_t *call)
{
    avc__authenticate(call, avc_analytics_auth);
    return AVC_OK;
}
