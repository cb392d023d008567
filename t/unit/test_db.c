/*
 * The PostgreSQL pool against a private, real PostgreSQL (t/unit/pg.h):
 * queries, bound parameters, named statements, NULLs, server errors,
 * deadlines and cancellation, concurrency over a small pool,
 * transactions, a server restart in the middle of a run, and a server
 * that is down.
 */
#include "tap.h"
#include "pg.h"

#include <avatarcore/db.h>
#include <avatarcore/loop.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static avc_loop_t *loop;
static tpg_t pg;

typedef struct {
    int done;
    int err;
    int rows;
    int cols;
    long long affected;
    char v[4][128];             /* row 0, first columns */
    int isnull[4];
    char sqlstate[8];
    char msg[256];
    uint64_t at;
} res_t;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    printf("# [%d] %s\n", (int) level, msg);
    fflush(stdout);
}

static void
on_res(int err, avc_db_res_t *res, void *data)
{
    res_t *r = data;
    int i;

    r->done = 1;
    r->err = err;
    r->at = avc_loop_now(loop);
    r->rows = avc_db_res_rows(res);
    r->cols = avc_db_res_cols(res);
    r->affected = avc_db_res_affected(res);
    for (i = 0; i < 4 && i < r->cols; i++) {
        if (r->rows > 0) {
            snprintf(r->v[i], sizeof(r->v[i]), "%s",
                     avc_db_res_value(res, 0, i));
            r->isnull[i] = avc_db_res_isnull(res, 0, i);
        }
    }
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%s",
             avc_db_res_sqlstate(res));
    snprintf(r->msg, sizeof(r->msg), "%s", avc_db_res_error(res));
}

static int
run_until(const int *flag, unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (!*flag && avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 20);
    }
    return *flag;
}

static void
run_for(unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 10);
    }
}

/* run one query to completion; returns the error code */
static int
q_sync(avc_db_t *db, const char *sql, int named, int n,
    const char *const *p, unsigned timeout, res_t *r)
{
    memset(r, 0, sizeof(*r));
    if (avc_db_query(db, sql, named, n, p, timeout, on_res, r) == NULL) {
        r->err = 1;
        return 1;
    }
    if (!run_until(&r->done, 20000)) {
        r->err = 2;
    }
    return r->err;
}

static int
sql_ok(avc_db_t *db, const char *sql)
{
    res_t r;

    if (q_sync(db, sql, 0, 0, NULL, 0, &r) != AVC_OK) {
        printf("# %s: %s %s %s\n", sql, avc_err_name(r.err), r.sqlstate,
               r.msg);
        return 0;
    }
    return 1;
}

/* transactions, synchronously */

typedef struct {
    int done;
    int err;
    avc_db_tx_t *tx;
} txr_t;

static void
on_tx(int err, avc_db_tx_t *tx, void *data)
{
    txr_t *t = data;

    t->done = 1;
    t->err = err;
    t->tx = tx;
}

static avc_db_tx_t *
tx_begin(avc_db_t *db, unsigned timeout)
{
    txr_t t;

    memset(&t, 0, sizeof(t));
    if (avc_db_begin(db, timeout, on_tx, &t) != AVC_OK
        || !run_until(&t.done, 10000) || t.err != AVC_OK)
    {
        return NULL;
    }
    return t.tx;
}

static int
tx_q(avc_db_tx_t *tx, const char *sql, int n, const char *const *p,
    res_t *r)
{
    memset(r, 0, sizeof(*r));
    if (avc_db_tx_query(tx, sql, 0, n, p, on_res, r) == NULL) {
        return r->err = 1;
    }
    run_until(&r->done, 10000);
    return r->err;
}

static int
tx_end(avc_db_tx_t *tx, int commit, res_t *r)
{
    int rc;

    memset(r, 0, sizeof(*r));
    rc = commit ? avc_db_commit(tx, on_res, r) : avc_db_rollback(tx, on_res, r);
    if (rc != AVC_OK) {
        return r->err = rc;
    }
    run_until(&r->done, 10000);
    return r->err;
}

/* the tests */

static void
test_basics(avc_db_t *db)
{
    const char *inj = "x'); DROP TABLE people; --\"\\";
    const char *p[3];
    res_t r;

    q_sync(db, "SELECT 1 + 1 AS two, 'a' AS letter", 0, 0, NULL, 0, &r);
    TAP_IS(r.err, AVC_OK, "simple query");
    TAP_IS(r.rows, 1, "one row");
    TAP_IS(r.cols, 2, "two columns");
    TAP_STR(r.v[0], "2", "value as text");

    TAP_OK(sql_ok(db, "CREATE TABLE people (id serial PRIMARY KEY, "
                      "name text NOT NULL UNIQUE)"), "create table");
    p[0] = inj;
    q_sync(db, "INSERT INTO people (name) VALUES ($1)", 0, 1, p, 0, &r);
    TAP_IS(r.err, AVC_OK, "insert with a hostile bound parameter");
    TAP_IS(r.affected, 1, "one row affected");
    q_sync(db, "SELECT name, length(name) FROM people WHERE name = $1", 0,
           1, p, 0, &r);
    TAP_IS(r.rows, 1, "found by the same parameter");
    TAP_STR(r.v[0], inj, "stored byte for byte, no injection");
    q_sync(db, "SELECT to_regclass('people') IS NOT NULL", 0, 0, NULL, 0,
           &r);
    TAP_STR(r.v[0], "t", "table still exists");

    p[0] = NULL;
    p[1] = "";
    q_sync(db, "SELECT $1::text IS NULL, $1::text, $2::text", 0, 2, p, 0,
           &r);
    TAP_IS(r.err, AVC_OK, "query with NULL parameter");
    TAP_STR(r.v[0], "t", "NULL parameter arrives as NULL");
    TAP_OK(r.isnull[1] && strcmp(r.v[1], "") == 0,
           "NULL value: isnull, text \"\"");
    TAP_OK(!r.isnull[2], "empty string is not NULL");

    q_sync(db, "SELECT * FROM no_such_table", 0, 0, NULL, 0, &r);
    TAP_IS(r.err, AVC_EDB, "server error gives AVC_EDB");
    TAP_STR(r.sqlstate, "42P01", "with its SQLSTATE");
    TAP_OK(strstr(r.msg, "no_such_table") != NULL, "and its message: %s",
           r.msg);
    q_sync(db, "SELECT 1/0", 0, 0, NULL, 0, &r);
    TAP_STR(r.sqlstate, "22012", "division by zero: 22012");
    p[0] = inj;
    q_sync(db, "INSERT INTO people (name) VALUES ($1)", 0, 1, p, 0, &r);
    TAP_STR(r.sqlstate, "23505", "duplicate: 23505");
    TAP_IS(r.err, AVC_EDB, "duplicate: AVC_EDB");
    TAP_OK(sql_ok(db, "SELECT 1"), "the connection is fine after errors");

    TAP_OK(avc_db_query(db, "SELECT 1", 0, -1, NULL, 0, on_res, &r) == NULL,
           "negative nparams refused");
    TAP_OK(avc_db_query(db, "SELECT 1", 0, 0, NULL, 0, NULL, &r) == NULL,
           "missing callback refused");
    TAP_OK(avc_db_query(db, "nope", 1, 0, NULL, 0, on_res, &r) == NULL,
           "unknown named statement refused");
}

static void
test_named(void)
{
    avc_db_t *db = avc_db_new(loop, pg.conninfo, 1, 0);
    const char *p[2] = { "2", "3" };
    char pid[128];
    res_t r;
    int i, ok = 1;

    TAP_IS(avc_db_statement(db, "add2", "SELECT $1::int + $2::int AS s"),
           AVC_OK, "register a statement");
    TAP_IS(avc_db_statement(db, "add2", "SELECT $1::int + $2::int AS s"),
           AVC_OK, "registering it again is a no-op");
    TAP_IS(avc_db_statement(db, "add2", "SELECT 1"), AVC_ECONFLICT,
           "same name, other sql: conflict");
    TAP_IS(avc_db_statement(db, "bad name", "SELECT 1"), AVC_EINVAL,
           "bad name refused");
    TAP_IS(avc_db_statement(db, "broken", "SELEC 1"), AVC_OK,
           "register a broken statement");
    q_sync(db, "SELECT pg_backend_pid()", 0, 0, NULL, 0, &r);
    snprintf(pid, sizeof(pid), "%s", r.v[0]);
    for (i = 0; i < 5; i++) {
        q_sync(db, "add2", 1, 2, p, 0, &r);
        ok = ok && r.err == AVC_OK && strcmp(r.v[0], "5") == 0;
    }
    TAP_OK(ok, "named statement run 5 times");
    q_sync(db, "SELECT count(*), pg_backend_pid() FROM "
               "pg_prepared_statements WHERE name = 'add2'", 0, 0, NULL, 0,
           &r);
    TAP_STR(r.v[0], "1", "prepared once on the connection");
    TAP_STR(r.v[1], pid, "same connection throughout");
    q_sync(db, "broken", 1, 0, NULL, 0, &r);
    TAP_IS(r.err, AVC_EDB, "preparing a broken statement: AVC_EDB");
    TAP_STR(r.sqlstate, "42601", "syntax error SQLSTATE");
    q_sync(db, "add2", 1, 2, p, 0, &r);
    TAP_STR(r.v[0], "5", "other statements still work");
    avc_db_free(db);
}

static int cancel_seen;

static void
on_cancel_timer(avc_timer_t *t, void *data)
{
    avc_db_query_t *q = data;
    res_t *r = avc_loop_get_data(loop);

    avc_db_cancel(q);
    cancel_seen = r->done;      /* the callback ran inside avc_db_cancel */
    avc_timer_free(t);
}

static void
test_deadline_cancel(void)
{
    avc_db_t *db = avc_db_new(loop, pg.conninfo, 1, 0);
    avc_db_query_t *q;
    avc_timer_t *t;
    char pid[128];
    uint64_t t0;
    res_t r, r2;

    q_sync(db, "SELECT pg_backend_pid()", 0, 0, NULL, 0, &r);
    snprintf(pid, sizeof(pid), "%s", r.v[0]);

    t0 = avc_loop_now(loop);
    q_sync(db, "SELECT pg_sleep(5)", 0, 0, NULL, 300, &r);
    TAP_IS(r.err, AVC_ETIMEDOUT, "pg_sleep(5) with a 300 ms deadline");
    TAP_OK(r.at - t0 >= 280 && r.at - t0 < 1000,
           "times out quickly (%llu ms)", (unsigned long long) (r.at - t0));
    t0 = avc_loop_now(loop);
    q_sync(db, "SELECT pg_backend_pid()", 0, 0, NULL, 0, &r);
    TAP_IS(r.err, AVC_OK, "the connection is usable afterwards");
    TAP_STR(r.v[0], pid, "the same connection (cancelled, not dropped)");
    TAP_OK(r.at - t0 < 2000, "without waiting for the sleep (%llu ms)",
           (unsigned long long) (r.at - t0));

    /* cancel a running query */
    memset(&r, 0, sizeof(r));
    q = avc_db_query(db, "SELECT pg_sleep(5)", 0, 0, NULL, 10000, on_res,
                     &r);
    avc_loop_set_data(loop, &r);
    t = avc_timer_new(loop, on_cancel_timer, q);
    avc_timer_start(t, 150);
    t0 = avc_loop_now(loop);
    run_until(&r.done, 3000);
    TAP_IS(r.err, AVC_ECANCELED, "cancelled query: AVC_ECANCELED");
    TAP_OK(cancel_seen, "callback called from within avc_db_cancel");
    q_sync(db, "SELECT pg_backend_pid()", 0, 0, NULL, 0, &r2);
    TAP_STR(r2.v[0], pid, "connection reused after the cancel");
    TAP_OK(r2.at - t0 < 2000, "server stopped the sleep (%llu ms)",
           (unsigned long long) (r2.at - t0));

    /* cancel a queued query; time out a queued query */
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    avc_db_query(db, "SELECT pg_sleep(0.5)", 0, 0, NULL, 0, on_res, &r);
    q = avc_db_query(db, "SELECT 1", 0, 0, NULL, 0, on_res, &r2);
    avc_db_cancel(q);
    TAP_IS(r2.err, AVC_ECANCELED, "queued query cancelled at once");
    memset(&r2, 0, sizeof(r2));
    avc_db_query(db, "SELECT 2", 0, 0, NULL, 150, on_res, &r2);
    run_until(&r2.done, 2000);
    TAP_IS(r2.err, AVC_ETIMEDOUT, "queued behind a busy pool: ETIMEDOUT");
    run_until(&r.done, 3000);
    TAP_IS(r.err, AVC_OK, "the running query was not disturbed");
    q_sync(db, "SELECT count(*) FROM pg_stat_activity WHERE state = "
               "'active' AND query LIKE 'SELECT pg_sleep(5%'", 0, 0, NULL,
           0, &r);
    TAP_STR(r.v[0], "0", "no abandoned query still running on the server");
    TAP_IS(avc_db_stat(db, AVC_DB_RECONNECTS), 0, "no reconnection needed");
    avc_db_free(db);
}

typedef struct {
    int n;
    int ok;
    int wrong;
    unsigned max_open;
    unsigned max_queued;
    avc_db_t *db;
} many_t;

typedef struct {
    many_t *m;
    int i;
} one_t;

static void
on_many(int err, avc_db_res_t *res, void *data)
{
    one_t *o = data;
    many_t *m = o->m;
    unsigned v;

    m->n++;
    if (err == AVC_OK && atoi(avc_db_res_value(res, 0, 0)) == o->i) {
        m->ok++;
    } else {
        m->wrong++;
    }
    v = (unsigned) avc_db_stat(m->db, AVC_DB_CONNS_OPEN);
    if (v > m->max_open) {
        m->max_open = v;
    }
    v = (unsigned) avc_db_stat(m->db, AVC_DB_QUEUED);
    if (v > m->max_queued) {
        m->max_queued = v;
    }
}

static void
test_concurrent(void)
{
    avc_db_t *db = avc_db_new(loop, pg.conninfo, 4, 0);
    one_t ones[50];
    char nums[50][16];
    const char *p[1];
    many_t m;
    res_t r;
    int i;
    uint64_t t0;

    memset(&m, 0, sizeof(m));
    m.db = db;
    for (i = 0; i < 50; i++) {
        ones[i].m = &m;
        ones[i].i = i;
        snprintf(nums[i], sizeof(nums[i]), "%d", i);
        p[0] = nums[i];
        if (avc_db_query(db, "SELECT $1::int, pg_sleep(0.02)", 0, 1, p, 0,
                         on_many, &ones[i]) == NULL)
        {
            break;
        }
    }
    TAP_IS(avc_db_stat(db, AVC_DB_QUEUED), 50, "50 queries queued");
    t0 = avc_loop_now(loop);
    while (m.n < 50 && avc_loop_now(loop) - t0 < 20000) {
        avc_loop_run_once(loop, 20);
    }
    TAP_IS(m.ok, 50, "50 concurrent queries over a pool of 4 all succeed");
    TAP_IS(m.wrong, 0, "each got its own answer");
    TAP_OK(m.max_open <= 4, "never more than 4 connections (%u)",
           m.max_open);
    TAP_IS(avc_db_stat(db, AVC_DB_CONNS_OPEN), 4, "4 connections open");
    TAP_OK(avc_loop_now(loop) - t0 < 20 * 50,
           "ran in parallel (%llu ms for 50 x 20 ms)",
           (unsigned long long) (avc_loop_now(loop) - t0));
    q_sync(db, "SELECT count(*) FROM pg_stat_activity WHERE "
               "application_name = 'avatar-adam' AND pid <> "
               "pg_backend_pid() AND backend_type = 'client backend'", 0, 0,
           NULL, 0, &r);
    TAP_OK(atoi(r.v[0]) <= 7, "server sees the pools' connections only (%s)",
           r.v[0]);
    TAP_IS(avc_db_stat(db, AVC_DB_QUERIES), 51, "query counter");
    TAP_IS(avc_db_stat(db, AVC_DB_ERRORS), 0, "error counter");
    TAP_IS(avc_db_stat(db, AVC_DB_CONNS_BUSY), 0, "nothing busy at rest");
    avc_db_free(db);
}

static void
test_tx(avc_db_t *db)
{
    avc_db_tx_t *tx;
    const char *p[1];
    res_t r;

    TAP_OK(sql_ok(db, "CREATE TABLE acct (id serial PRIMARY KEY, "
                      "name text UNIQUE)"), "create table for tx");

    tx = tx_begin(db, 0);
    TAP_OK(tx != NULL, "begin");
    TAP_IS(avc_db_stat(db, AVC_DB_CONNS_BUSY), 1, "leased connection busy");
    p[0] = "alice";
    TAP_IS(tx_q(tx, "INSERT INTO acct (name) VALUES ($1)", 1, p, &r),
           AVC_OK, "insert in tx");
    TAP_IS(tx_end(tx, 1, &r), AVC_OK, "commit");
    q_sync(db, "SELECT count(*) FROM acct WHERE name = 'alice'", 0, 0, NULL,
           0, &r);
    TAP_STR(r.v[0], "1", "committed row visible");

    tx = tx_begin(db, 0);
    p[0] = "bob";
    tx_q(tx, "INSERT INTO acct (name) VALUES ($1)", 1, p, &r);
    TAP_IS(tx_end(tx, 0, &r), AVC_OK, "rollback");
    q_sync(db, "SELECT count(*) FROM acct WHERE name = 'bob'", 0, 0, NULL,
           0, &r);
    TAP_STR(r.v[0], "0", "rolled back row gone");

    tx = tx_begin(db, 0);
    p[0] = "alice";
    TAP_IS(tx_q(tx, "INSERT INTO acct (name) VALUES ($1)", 1, p, &r),
           AVC_EDB, "duplicate in tx fails");
    TAP_IS(tx_q(tx, "SELECT 1", 0, NULL, &r), AVC_EDB,
           "later queries fail too");
    TAP_STR(r.sqlstate, "25P02", "in failed sql transaction");
    memset(&r, 0, sizeof(r));
    TAP_OK(avc_db_tx_query(tx, "SELECT 1", 0, 0, NULL, on_res, &r) != NULL,
           "tx takes queries before commit");
    run_until(&r.done, 2000);
    TAP_IS(tx_end(tx, 1, &r), AVC_EDB, "commit of a failed tx: AVC_EDB");
    TAP_STR(r.sqlstate, "40000", "with SQLSTATE 40000");

    tx = tx_begin(db, 0);
    memset(&r, 0, sizeof(r));
    avc_db_tx_exec_script(tx, "CREATE TABLE s1 (x int);\n"
                              "INSERT INTO s1 VALUES (1), (2);\n"
                              "SELECT count(*) FROM s1;", on_res, &r);
    run_until(&r.done, 5000);
    TAP_IS(r.err, AVC_OK, "script of three statements in a tx");
    TAP_STR(r.v[0], "2", "result of the last statement");
    tx_end(tx, 0, &r);
    q_sync(db, "SELECT to_regclass('s1') IS NULL", 0, 0, NULL, 0, &r);
    TAP_STR(r.v[0], "t", "script rolled back with its tx");

    tx = tx_begin(db, 0);
    memset(&r, 0, sizeof(r));
    avc_db_tx_exec_script(tx, "CREATE TABLE s2 (x int); SELECT 1/0; "
                              "CREATE TABLE s3 (x int);", on_res, &r);
    run_until(&r.done, 5000);
    TAP_IS(r.err, AVC_EDB, "failing script: AVC_EDB");
    TAP_STR(r.sqlstate, "22012", "with the failing statement's SQLSTATE");
    TAP_IS(avc_db_commit(tx, NULL, NULL), AVC_OK, "commit with no callback");
    TAP_IS(avc_db_commit(tx, NULL, NULL), AVC_ESTATE,
           "second commit refused");
    run_for(200);
    q_sync(db, "SELECT to_regclass('s2') IS NULL", 0, 0, NULL, 0, &r);
    TAP_STR(r.v[0], "t", "nothing of the failed script committed");
    TAP_IS(avc_db_stat(db, AVC_DB_CONNS_BUSY), 0, "leases returned");

    tx = tx_begin(db, 300);
    memset(&r, 0, sizeof(r));
    TAP_IS(tx_q(tx, "SELECT pg_sleep(3)", 0, NULL, &r), AVC_ETIMEDOUT,
           "tx query past the tx deadline: ETIMEDOUT");
    TAP_IS(tx_end(tx, 0, &r), AVC_OK, "rollback after a timeout");
    TAP_OK(sql_ok(db, "SELECT 1"), "pool fine afterwards");
}

typedef struct {
    avc_db_t *db;
    int issued;
    int done;
    int ok;
    int conn;
    int other;
    int other_err;
    int stop;
    avc_timer_t *timer;
} stream_t;

static void
on_stream(int err, avc_db_res_t *res, void *data)
{
    stream_t *s = data;

    s->done++;
    if (err == AVC_OK) {
        s->ok++;
    } else if (err == AVC_EDBCONN) {
        s->conn++;
    } else {
        s->other++;
        s->other_err = err;
    }
}

static void
on_stream_tick(avc_timer_t *t, void *data)
{
    stream_t *s = data;

    if (s->stop) {
        return;
    }
    /* every 8th query is slow, so that some are in flight at the stop */
    if (avc_db_query(s->db,
                     s->issued % 8 ? "SELECT 1" : "SELECT pg_sleep(0.2)", 0,
                     0, NULL, 4000, on_stream, s))
    {
        s->issued++;
    }
    avc_timer_start(t, 20);
}

typedef struct {
    int done;
    int rc;
} restart_t;

static void
restart_work(void *data)
{
    restart_t *rs = data;

    rs->rc = tpg_server_stop(&pg) || tpg_server_start(&pg);
}

static void
restart_done(void *data, int status)
{
    restart_t *rs = data;

    rs->done = 1;
}

static void
test_restart(void)
{
    avc_db_t *db = avc_db_new(loop, pg.conninfo_tcp, 4, 0);
    restart_t rs;
    stream_t s;
    res_t r;
    int i, ok;

    TAP_OK(db != NULL, "pool over TCP");
    TAP_OK(sql_ok(db, "SELECT 1"), "connected over TCP");
    memset(&s, 0, sizeof(s));
    memset(&rs, 0, sizeof(rs));
    s.db = db;
    s.timer = avc_timer_new(loop, on_stream_tick, &s);
    avc_timer_start(s.timer, 0);
    run_for(300);
    avc_offload(loop, restart_work, restart_done, &rs);
    run_until(&rs.done, 60000);
    TAP_IS(rs.rc, 0, "server restarted during the run");
    run_for(300);
    s.stop = 1;
    avc_timer_free(s.timer);
    while (s.done < s.issued) {
        if (avc_loop_run_once(loop, 100) < 0) {
            break;
        }
    }
    tap_diag("%d queries: %d ok, %d AVC_EDBCONN, %d other", s.issued, s.ok,
             s.conn, s.other);
    TAP_IS(s.other, 0, "every query succeeded or failed with AVC_EDBCONN "
           "(other: %s)", avc_err_name(s.other_err));
    TAP_OK(s.ok > 10, "queries succeeded around the restart");
    ok = 1;
    for (i = 0; i < 20; i++) {
        ok = ok && q_sync(db, "SELECT 1", 0, 0, NULL, 0, &r) == AVC_OK;
    }
    TAP_OK(ok, "the same pool works after the restart");
    TAP_OK(avc_db_stat(db, AVC_DB_RECONNECTS) >= 1,
           "reconnects counted (%llu)", avc_db_stat(db, AVC_DB_RECONNECTS));
    avc_db_free(db);
}

static void
test_down(void)
{
    avc_db_t *db = avc_db_new(loop, pg.conninfo, 2, 0);
    avc_db_t *db2;
    uint64_t t0;
    res_t r;
    int i;

    TAP_OK(sql_ok(db, "SELECT 1"), "connected before the server stops");
    TAP_IS(tpg_server_stop(&pg), 0, "server stopped");

    /* the first may be in flight on a connection not yet seen dead */
    for (i = 0; i < 2; i++) {
        t0 = avc_loop_now(loop);
        q_sync(db, "SELECT 1", 0, 0, NULL, 0, &r);
        TAP_IS(r.err, AVC_EDBCONN, "query %d while down: AVC_EDBCONN", i);
        TAP_OK(r.at - t0 < 3500, "within the connect wait (%llu ms)",
               (unsigned long long) (r.at - t0));
    }
    t0 = avc_loop_now(loop);
    q_sync(db, "SELECT 1", 0, 0, NULL, 0, &r);
    TAP_IS(r.err, AVC_EDBCONN, "next query: AVC_EDBCONN");
    TAP_OK(r.at - t0 < 300, "at once, server known down (%llu ms)",
           (unsigned long long) (r.at - t0));
    TAP_OK(avc_db_last_error(db)[0] != '\0', "last error: %s",
           avc_db_last_error(db));

    db2 = avc_db_new(loop, pg.conninfo, 2, 0);
    t0 = avc_loop_now(loop);
    q_sync(db2, "SELECT 1", 0, 0, NULL, 500, &r);
    TAP_IS(r.err, AVC_EDBCONN, "fresh pool, 500 ms deadline: AVC_EDBCONN");
    TAP_OK(r.at - t0 >= 450 && r.at - t0 < 1000,
           "at its deadline (%llu ms)", (unsigned long long) (r.at - t0));
    avc_db_free(db2);

    TAP_IS(tpg_server_start(&pg), 0, "server started again");
    t0 = avc_loop_now(loop);
    for (i = 0; i < 60; i++) {
        if (q_sync(db, "SELECT 1", 0, 0, NULL, 0, &r) == AVC_OK) {
            break;
        }
        run_for(200);
    }
    TAP_IS(r.err, AVC_OK, "pool recovers by itself");
    TAP_OK(avc_loop_now(loop) - t0 < 8000, "within the backoff (%llu ms)",
           (unsigned long long) (avc_loop_now(loop) - t0));
    avc_db_free(db);
}

typedef struct {
    int n;
    int canceled;
} count_t;

static void
on_count(int err, avc_db_res_t *res, void *data)
{
    count_t *c = data;

    c->n++;
    c->canceled += err == AVC_ECANCELED;
}

static void
on_count_tx(int err, avc_db_tx_t *tx, void *data)
{
    on_count(err, NULL, data);
}

static void
on_free_inside(int err, avc_db_res_t *res, void *data)
{
    avc_db_t **db = data;

    avc_db_free(*db);
    *db = NULL;
}

static void
test_free(void)
{
    avc_db_t *db = avc_db_new(loop, pg.conninfo, 2, 0);
    count_t c = { 0, 0 };
    int i;

    for (i = 0; i < 4; i++) {
        avc_db_query(db, "SELECT pg_sleep(1)", 0, 0, NULL, 0, on_count, &c);
    }
    avc_db_begin(db, 0, on_count_tx, &c);
    run_for(200);
    avc_db_free(db);
    TAP_IS(c.n, 5, "free completes every query and begin");
    TAP_IS(c.canceled, 5, "with AVC_ECANCELED");

    db = avc_db_new(loop, pg.conninfo, 2, 0);
    avc_db_query(db, "SELECT 1", 0, 0, NULL, 0, on_free_inside, &db);
    avc_db_query(db, "SELECT pg_sleep(1)", 0, 0, NULL, 0, on_count, &c);
    avc_db_query(db, "SELECT 2", 0, 0, NULL, 0, on_count, &c);
    for (i = 0; i < 100 && db != NULL; i++) {
        avc_loop_run_once(loop, 20);
    }
    TAP_OK(db == NULL, "pool freed from inside a callback");
    TAP_IS(c.n, 7, "the other queries completed");
    avc_db_free(NULL);
    TAP_OK(avc_db_new(loop, "host='unterminated", 1, 0) == NULL,
           "malformed conninfo refused");
}

int
main(void)
{
    avc_db_t *db;

    avc_log_set(log_cb, NULL, AVC_LOG_WARN);
    if (tpg_start(&pg) != 0) {
        printf("1..0 # SKIP cannot start a private PostgreSQL\n");
        return 0;
    }
    tap_diag("PostgreSQL in %s, port %d", pg.dir, pg.port);
    loop = avc_loop_new(2);
    db = avc_db_new(loop, pg.conninfo, 2, 0);
    TAP_OK(db != NULL, "pool created");

    test_basics(db);
    test_named();
    test_deadline_cancel();
    test_concurrent();
    test_tx(db);
    avc_db_free(db);
    test_restart();
    test_down();
    test_free();

    avc_loop_free(loop);
    tpg_destroy(&pg);
    return tap_done();
}
