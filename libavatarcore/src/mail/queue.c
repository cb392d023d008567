/*
 * The durable mail queue on PostgreSQL (table mail_outbox, sql/003).
 *
 * A cycle: claim up to batch due rows in one statement (FOR UPDATE SKIP
 * LOCKED picks rows no other sender is claiming at that instant; the
 * UPDATE then moves next_attempt_at a lease ahead and counts the
 * attempt, so once the statement commits no other sender sees the rows
 * as due), send each through the mailer, then mark it sent or schedule
 * the next attempt.  Only then does the next cycle start: a queue never
 * has two claims of its own in flight.
 *
 * The lease is longer than any send may take (mail.timeout is at most
 * 120 s), so a mail being sent is never claimed again; if the sender dies
 * the lease expires and another sender retries it.
 *
 * Two timers: the poll timer is unref'd (housekeeping must not keep a
 * loop alive), the kick timer is not (work was asked for, or a full batch
 * suggests more is due).
 */
#include "mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_MAILQ_POLL_MS       10000
#define AVC_MAILQ_BATCH         16
#define AVC_MAILQ_LEASE_S       300
#define AVC_MAILQ_MAX_ATTEMPTS  10
#define AVC_MAILQ_BACKOFF_S     30
#define AVC_MAILQ_BACKOFF_MAX_S 3600
/* last_error is for operators; keep it a line */
#define AVC_MAILQ_ERROR_MAX     500

static const char avc_mailq_enqueue_sql[] =
    "INSERT INTO mail_outbox (recipients, subject, body_text, body_html, "
    "kind) VALUES (ARRAY(SELECT btrim(r) FROM unnest(string_to_array($1, "
    "',')) AS r WHERE btrim(r) <> ''), $2, $3, $4, $5) RETURNING id";

static const char avc_mailq_claim_sql[] =
    "WITH due AS MATERIALIZED ("
    "SELECT id FROM mail_outbox"
    " WHERE sent_at IS NULL AND next_attempt_at <= now()"
    " AND attempts < $3::integer"
    " ORDER BY next_attempt_at, id LIMIT $1::integer"
    " FOR UPDATE SKIP LOCKED) "
    "UPDATE mail_outbox AS o SET attempts = o.attempts + 1,"
    " next_attempt_at = now() + make_interval(secs => $2::integer) "
    "FROM due WHERE o.id = due.id "
    "RETURNING o.id, array_to_string(o.recipients, ','), o.subject,"
    " o.body_text, o.body_html, o.attempts";

static const char avc_mailq_sent_sql[] =
    "UPDATE mail_outbox SET sent_at = now(), last_error = NULL "
    "WHERE id = $1::bigint";

static const char avc_mailq_failed_sql[] =
    "UPDATE mail_outbox SET attempts = greatest(attempts, $4::integer),"
    " next_attempt_at = now() + make_interval(secs => $2::integer),"
    " last_error = $3 WHERE id = $1::bigint";

typedef struct avc_mailq_job_s avc_mailq_job_t;

struct avc_mailq_job_s {
    avc_mailq_job_t *prev;
    avc_mailq_job_t *next;
    avc_mail_queue_t *q;
    char id[24];
    long attempts;
    avc__mail_op_t *op;         /* while sending */
    avc_db_query_t *upd;        /* while marking */
};

struct avc_mail_queue_s {
    avc_loop_t *loop;
    avc_db_t *db;
    avc_mailer_t *m;
    unsigned poll_ms;
    unsigned batch;
    unsigned lease_s;
    avc_timer_t *poll;
    avc_timer_t *kick;
    avc_db_query_t *claim;
    avc_mailq_job_t *jobs;
    unsigned njobs;
    int again;                  /* kicked during a cycle */
    int full;                   /* the last claim filled the batch */
    int closing;
    unsigned long long stats[AVC_MAIL_Q_CLAIMS + 1];
};

AVC_API const char *
avc_mail_enqueue_sql(void)
{
    return avc_mailq_enqueue_sql;
}

static void avc_mailq_claim(avc_mail_queue_t *q);

static int
avc_mailq_busy(const avc_mail_queue_t *q)
{
    return q->claim != NULL || q->njobs > 0;
}

/* a cycle ended: when to look again */
static void
avc_mailq_schedule(avc_mail_queue_t *q)
{
    if (q->again || q->full) {
        q->again = 0;
        avc_timer_start(q->kick, 0);
        return;
    }
    avc_timer_start(q->poll, q->poll_ms);
}

static void
avc_mailq_timer(avc_timer_t *timer, void *data)
{
    avc_mail_queue_t *q = data;

    if (avc_mailq_busy(q)) {
        q->again = 1;
        return;
    }
    avc_timer_stop(q->poll);
    avc_timer_stop(q->kick);
    avc_mailq_claim(q);
}

static void
avc_mailq_job_free(avc_mailq_job_t *job)
{
    avc_mail_queue_t *q = job->q;

    if (job->prev) {
        job->prev->next = job->next;
    } else {
        q->jobs = job->next;
    }
    if (job->next) {
        job->next->prev = job->prev;
    }
    q->njobs--;
    free(job);
}

static void
avc_mailq_marked(int err, avc_db_res_t *res, void *data)
{
    avc_mailq_job_t *job = data;
    avc_mail_queue_t *q = job->q;

    job->upd = NULL;
    if (q->closing) {
        return;                 /* avc_mail_queue_free frees the job */
    }
    if (err != AVC_OK) {
        /* the lease runs out and the mail is tried again: a mail sent
         * whose mark is lost goes out twice, never zero times */
        avc_log(AVC_LOG_ERR, "mail queue: cannot record the outcome of "
                "mail %s: %s%s%s", job->id, avc_strerror(err),
                res ? ": " : "", res ? avc_db_res_error(res) : "");
    }
    avc_mailq_job_free(job);
    if (!avc_mailq_busy(q)) {
        avc_mailq_schedule(q);
    }
}

static unsigned
avc_mailq_backoff(long attempts)
{
    unsigned s = AVC_MAILQ_BACKOFF_S;
    long i;

    for (i = 1; i < attempts && s < AVC_MAILQ_BACKOFF_MAX_S; i++) {
        s *= 2;
    }
    return s < AVC_MAILQ_BACKOFF_MAX_S ? s : AVC_MAILQ_BACKOFF_MAX_S;
}

/* record a failed attempt; permanent: no point in trying again */
static void
avc_mailq_failed(avc_mailq_job_t *job, int err, const char *detail,
    int permanent)
{
    avc_mail_queue_t *q = job->q;
    char wait[16], attempts[16], error[AVC_MAILQ_ERROR_MAX + 1];
    const char *params[4];
    long total = job->attempts;
    unsigned delay;

    snprintf(error, sizeof(error), "%s", detail && *detail ? detail
                                                           : avc_strerror(err));
    q->stats[AVC_MAIL_Q_FAILED]++;
    if (permanent) {
        total = AVC_MAILQ_MAX_ATTEMPTS;
    }
    delay = avc_mailq_backoff(job->attempts);
    if (total >= AVC_MAILQ_MAX_ATTEMPTS) {
        q->stats[AVC_MAIL_Q_GIVEN_UP]++;
        avc_log(AVC_LOG_ERR, "mail queue: giving up mail %s after %ld "
                "attempt(s): %s", job->id, job->attempts, error);
    } else {
        avc_log(AVC_LOG_WARN, "mail queue: mail %s, attempt %ld failed: %s;"
                " next attempt in %u s", job->id, job->attempts, error,
                delay);
    }
    snprintf(wait, sizeof(wait), "%u", delay);
    snprintf(attempts, sizeof(attempts), "%ld", total);
    params[0] = job->id;
    params[1] = wait;
    params[2] = error;
    params[3] = attempts;
    job->upd = avc_db_query(q->db, "avc_mail_failed", 1, 4, params, 0,
                            avc_mailq_marked, job);
    if (job->upd == NULL) {
        avc_log(AVC_LOG_ERR, "mail queue: cannot record the failure of "
                "mail %s", job->id);
        avc_mailq_job_free(job);
    }
}

static void
avc_mailq_sent(int err, const char *detail, void *data)
{
    avc_mailq_job_t *job = data;
    avc_mail_queue_t *q = job->q;
    const char *params[1];

    job->op = NULL;
    if (err != AVC_OK) {
        avc_mailq_failed(job, err, detail, 0);
    } else {
        q->stats[AVC_MAIL_Q_SENT]++;
        avc_log(AVC_LOG_INFO, "mail queue: mail %s sent", job->id);
        params[0] = job->id;
        job->upd = avc_db_query(q->db, "avc_mail_sent", 1, 1, params, 0,
                                avc_mailq_marked, job);
        if (job->upd == NULL) {
            avc_log(AVC_LOG_ERR, "mail queue: cannot record mail %s as "
                    "sent", job->id);
            avc_mailq_job_free(job);
        }
    }
    if (!avc_mailq_busy(q)) {
        avc_mailq_schedule(q);
    }
}

static void
avc_mailq_start_job(avc_mail_queue_t *q, avc_db_res_t *res, int row)
{
    avc_mailq_job_t *job;
    const char *html;
    int rc;

    job = calloc(1, sizeof(*job));
    if (job == NULL) {
        /* the lease expires and the mail is tried again */
        avc_log(AVC_LOG_ERR, "mail queue: out of memory");
        return;
    }
    job->q = q;
    snprintf(job->id, sizeof(job->id), "%s", avc_db_res_value(res, row, 0));
    job->attempts = strtol(avc_db_res_value(res, row, 5), NULL, 10);
    job->next = q->jobs;
    if (q->jobs) {
        q->jobs->prev = job;
    }
    q->jobs = job;
    q->njobs++;

    html = avc_db_res_isnull(res, row, 4) ? NULL
                                          : avc_db_res_value(res, row, 4);
    rc = avc__mailer_submit(q->m, avc_db_res_value(res, row, 1),
                            avc_db_res_value(res, row, 2),
                            avc_db_res_value(res, row, 3), html,
                            avc_mailq_sent, job, &job->op);
    if (rc != AVC_OK) {
        job->op = NULL;
        /* a bad address or body never gets better; memory might */
        avc_mailq_failed(job, rc, rc == AVC_ENOMEM ? "out of memory"
                                  : rc == AVC_ESTATE ? "mail is not "
                                  "configured (mail.dir)"
                                  : "invalid recipients or body",
                         rc == AVC_EINVAL || rc == AVC_ETOOBIG);
    }
}

static void
avc_mailq_claimed(int err, avc_db_res_t *res, void *data)
{
    avc_mail_queue_t *q = data;
    int i, rows;

    q->claim = NULL;
    if (q->closing) {
        return;
    }
    q->full = 0;
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "mail queue: cannot claim mails: %s%s%s",
                avc_strerror(err), res ? ": " : "",
                res ? avc_db_res_error(res) : "");
        avc_mailq_schedule(q);
        return;
    }
    rows = avc_db_res_rows(res);
    q->full = rows >= (int) q->batch;
    for (i = 0; i < rows; i++) {
        avc_mailq_start_job(q, res, i);
    }
    if (!avc_mailq_busy(q)) {
        avc_mailq_schedule(q);
    }
}

static void
avc_mailq_claim(avc_mail_queue_t *q)
{
    char batch[16], lease[16], max[16];
    const char *params[3];

    snprintf(batch, sizeof(batch), "%u", q->batch);
    snprintf(lease, sizeof(lease), "%u", q->lease_s);
    snprintf(max, sizeof(max), "%d", AVC_MAILQ_MAX_ATTEMPTS);
    params[0] = batch;
    params[1] = lease;
    params[2] = max;
    q->stats[AVC_MAIL_Q_CLAIMS]++;
    q->claim = avc_db_query(q->db, "avc_mail_claim", 1, 3, params, 0,
                            avc_mailq_claimed, q);
    if (q->claim == NULL) {
        avc_log(AVC_LOG_ERR, "mail queue: cannot start a claim");
        avc_mailq_schedule(q);
    }
}

AVC_API avc_mail_queue_t *
avc_mail_queue_new(avc_loop_t *loop, avc_db_t *db, avc_mailer_t *m,
    unsigned poll_ms)
{
    avc_mail_queue_t *q;

    if (loop == NULL || db == NULL || m == NULL) {
        return NULL;
    }
    if (avc_db_statement(db, "avc_mail_claim", avc_mailq_claim_sql)
        != AVC_OK
        || avc_db_statement(db, "avc_mail_sent", avc_mailq_sent_sql)
           != AVC_OK
        || avc_db_statement(db, "avc_mail_failed", avc_mailq_failed_sql)
           != AVC_OK)
    {
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    q->loop = loop;
    q->db = db;
    q->m = m;
    q->poll_ms = poll_ms ? poll_ms : AVC_MAILQ_POLL_MS;
    q->batch = AVC_MAILQ_BATCH;
    q->lease_s = AVC_MAILQ_LEASE_S;
    q->poll = avc_timer_new(loop, avc_mailq_timer, q);
    q->kick = avc_timer_new(loop, avc_mailq_timer, q);
    if (q->poll == NULL || q->kick == NULL) {
        avc_timer_free(q->poll);
        avc_timer_free(q->kick);
        free(q);
        return NULL;
    }
    avc_timer_unref(q->poll);
    /* mails left from before a restart go out soon, not after a poll */
    avc_timer_start(q->poll, 0);
    return q;
}

AVC_API void
avc_mail_queue_kick(avc_mail_queue_t *q)
{
    if (q == NULL || q->closing) {
        return;
    }
    if (avc_mailq_busy(q)) {
        q->again = 1;
        return;
    }
    avc_timer_start(q->kick, 0);
}

AVC_API void
avc_mail_queue_free(avc_mail_queue_t *q)
{
    avc_mailq_job_t *job;

    if (q == NULL || q->closing) {
        return;
    }
    q->closing = 1;
    avc_timer_free(q->poll);
    avc_timer_free(q->kick);
    if (q->claim) {
        avc_db_cancel(q->claim);
        q->claim = NULL;
    }
    while ((job = q->jobs) != NULL) {
        if (job->op) {
            avc__mail_op_cancel(job->op);
            job->op = NULL;
        }
        if (job->upd) {
            avc_db_cancel(job->upd);
            job->upd = NULL;
        }
        avc_mailq_job_free(job);
    }
    free(q);
}

AVC_API unsigned long long
avc_mail_queue_stat(const avc_mail_queue_t *q, avc_mail_queue_stat_t which)
{
    if (q == NULL || (unsigned) which > AVC_MAIL_Q_CLAIMS) {
        return 0;
    }
    return q->stats[which];
}

void
avc__mail_queue_set_batch(avc_mail_queue_t *q, unsigned batch,
    unsigned lease_s)
{
    if (batch > 0) {
        q->batch = batch;
    }
    if (lease_s > 0) {
        q->lease_s = lease_s;
    }
}
