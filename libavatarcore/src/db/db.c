/*
 * A PostgreSQL connection pool on libpq's non-blocking API.
 *
 * Everything runs on the pool's loop.  The two libpq calls that may block,
 * PQconnectStart (it resolves the host name) and PQcancel (it opens a
 * second connection and waits for the server), run on the thread pool
 * and touch only their own work item, which a closing connection detaches
 * from itself instead of freeing.
 *
 * A query is owned by exactly one place at a time: the pool queue, a
 * transaction's queue, or the connection running it (conn->q).  It is
 * freed right after its callback.
 *
 * Connection states:
 *   CONNECTING  PQconnectStart offloaded, then PQconnectPoll driven by
 *               the socket.  libpq may switch sockets between polls (next
 *               host, SSL retry), so the watcher is restarted after each.
 *   IDLE        established and free; the socket is watched for reading
 *               so that a server going away is noticed before the next
 *               query is sent on it.
 *   BUSY        running conn->q: phase PREPARE (a named statement not yet
 *               prepared on this connection), then EXEC.
 *   DRAIN       the query was abandoned (deadline, avc_db_cancel): the
 *               server has been asked to cancel it and its results are
 *               read and dropped.  The connection is reused only when the
 *               results are drained and the cancel request has returned,
 *               so that a late cancel cannot hit the next query.
 * A connection leased to a transaction (conn->tx) runs only its queries.
 * A connection going back to the pool inside a transaction block (an
 * abandoned BEGIN or COMMIT) is closed rather than reused.
 *
 * When no connection is open, a queued query waits at most connect_wait
 * for one; once connecting has been failing for that long, queries fail
 * at once with AVC_EDBCONN until an attempt succeeds.  Attempts are spaced
 * by the backoff, so a dead server is probed, not hammered.
 *
 * Re-entrancy: callbacks may call any function here, avc_db_free()
 * included.  Every entry that may run callbacks holds db->depth; closed
 * connections are freed, and a freed pool released, only when depth drops
 * to zero, and code after a callback checks db->closing first.
 */
#include "internal.h"
#include "db_internal.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define AVC_DB_DEFAULT_CONNS     4
#define AVC_DB_DEFAULT_TIMEOUT   10000  /* ms: query deadline */
#define AVC_DB_CONNECT_WAIT      3000   /* ms: see avc_db_set_connect_wait */
#define AVC_DB_CONNECT_TIMEOUT   5000   /* ms: one connection attempt */
#define AVC_DB_DRAIN_TIMEOUT     5000   /* ms: an abandoned query to end */
#define AVC_DB_BACKOFF_MIN       100    /* ms */
#define AVC_DB_BACKOFF_MAX       5000   /* ms */
#define AVC_DB_MAX_PARAMS        65535  /* protocol limit */
#define AVC_DB_NAME_MAX          63     /* NAMEDATALEN - 1 */
#define AVC_DB_NEVER             UINT64_MAX

enum {
    AVC_DBQ_SQL,
    AVC_DBQ_NAMED,
    AVC_DBQ_SCRIPT,
    AVC_DBQ_BEGIN,
    AVC_DBQ_COMMIT,
    AVC_DBQ_ROLLBACK
};

enum {
    AVC_DBC_CONNECTING,
    AVC_DBC_IDLE,
    AVC_DBC_BUSY,
    AVC_DBC_DRAIN,
    AVC_DBC_DEAD
};

enum {
    AVC_DBP_PREPARE,
    AVC_DBP_EXEC
};

typedef struct avc_db_conn_s avc_db_conn_t;

typedef struct {
    avc_db_query_t *head;
    avc_db_query_t *tail;
    size_t n;
} avc_db_list_t;

struct avc_db_res_s {
    PGresult *pg;
    const char *sqlstate;       /* set for errors the server did not send */
    const char *message;
};

struct avc_db_query_s {
    avc_db_query_t *prev;
    avc_db_query_t *next;
    avc_db_list_t *list;        /* the queue holding it, NULL otherwise */
    avc_db_t *db;
    avc_db_tx_t *tx;            /* transaction queries, BEGIN, COMMIT ... */
    avc_db_conn_t *conn;        /* running on it */
    avc_timer_t *timer;
    int kind;
    int stmt;                   /* AVC_DBQ_NAMED: index in db->stmts */
    int nparams;
    int retried;                /* re-queued once after a failed send */
    int done;                   /* its callback is being called */
    const char *sql;
    const char *const *params;
    uint64_t queued_at;
    uint64_t deadline;          /* 0: from when it starts (COMMIT ...) */
    avc_db_cb cb;
    avc_db_tx_cb tx_cb;
    void *data;
    /* the parameter pointers, then sql and the parameters, follow */
};

struct avc_db_tx_s {
    avc_db_tx_t *prev;
    avc_db_tx_t *next;
    avc_db_t *db;
    avc_db_conn_t *conn;        /* leased; NULL once broken */
    avc_db_list_t queue;
    unsigned timeout_ms;
    int broken;                 /* its connection was lost */
    int ending;                 /* COMMIT or ROLLBACK queued */
};

typedef struct {
    avc_db_conn_t *conn;        /* NULL once the connection gave up */
    PGconn *pg;
    char *conninfo;
} avc_db_connect_t;

typedef struct {
    avc_db_conn_t *conn;        /* NULL once the connection gave up */
    PGcancel *cancel;
    int ok;
    char err[256];
} avc_db_cancel_t;

struct avc_db_conn_s {
    avc_db_conn_t *prev;
    avc_db_conn_t *next;        /* db->conns, or db->dead */
    avc_db_t *db;
    PGconn *pg;
    avc_io_t *io;
    unsigned events;
    int state;
    int established;
    int phase;
    int drained;                /* DRAIN: the last result has arrived */
    int drain_stmt;             /* statement in PREPARE when abandoned */
    int copy;                   /* a COPY began: not supported */
    avc_db_tx_t *tx;
    avc_db_query_t *q;
    PGresult *res;              /* first error, else the last result */
    avc_timer_t *timer;         /* connect timeout, then drain timeout */
    avc_db_connect_t *connecting;
    avc_db_cancel_t *cancelling;
    unsigned char *prepared;    /* by statement index */
    size_t nprepared;
};

typedef struct {
    char *name;
    char *sql;
} avc_db_stmt_t;

struct avc_db_s {
    avc_loop_t *loop;
    char *conninfo;
    unsigned max_conns;
    unsigned timeout_ms;
    unsigned connect_wait_ms;

    avc_db_conn_t *conns;
    avc_db_conn_t *dead;        /* closed, freed when depth is 0 */
    unsigned nconns;
    unsigned nopen;
    unsigned nconnecting;

    avc_db_list_t queue;
    avc_db_tx_t *txs;

    avc_db_stmt_t *stmts;
    size_t nstmts;
    size_t stmts_cap;

    avc_timer_t *kick;          /* runs avc_db_process on the next turn */
    avc_timer_t *retry;         /* armed while backing off */
    unsigned backoff_ms;
    int failing;                /* the last connection attempt failed */
    int wanted;                 /* failing, and queries came: probe */
    uint64_t fail_since;
    uint64_t zero_since;        /* when nopen last became 0 */
    unsigned lost;              /* established connections lost */

    unsigned depth;
    int closing;

    unsigned long long stats[AVC_DB_RECONNECTS + 1];
    char last_error[256];
};

static void avc_db_process(avc_db_t *db);
static void avc_db_finish(avc_db_query_t *q, int err, avc_db_res_t *res);
static void avc_db_conn_next(avc_db_conn_t *c);
static void avc_db_conn_end(avc_db_conn_t *c, const char *why);
static void avc_db_conn_io(avc_io_t *io, int fd, unsigned events,
    void *data);

avc_loop_t *
avc__db_loop(const avc_db_t *db)
{
    return db->loop;
}

static uint64_t
avc_db_now(avc_db_t *db)
{
    return avc_loop_now(db->loop);
}

/* lists of queries */

static void
avc_db_list_push(avc_db_list_t *l, avc_db_query_t *q)
{
    q->list = l;
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail) {
        l->tail->next = q;
    } else {
        l->head = q;
    }
    l->tail = q;
    l->n++;
}

static void
avc_db_list_unshift(avc_db_list_t *l, avc_db_query_t *q)
{
    q->list = l;
    q->prev = NULL;
    q->next = l->head;
    if (l->head) {
        l->head->prev = q;
    } else {
        l->tail = q;
    }
    l->head = q;
    l->n++;
}

static void
avc_db_list_remove(avc_db_query_t *q)
{
    avc_db_list_t *l = q->list;

    if (q->prev) {
        q->prev->next = q->next;
    } else {
        l->head = q->next;
    }
    if (q->next) {
        q->next->prev = q->prev;
    } else {
        l->tail = q->prev;
    }
    l->n--;
    q->list = NULL;
    q->prev = q->next = NULL;
}

/* messages from libpq end with a newline and may span lines */
static void
avc_db_set_error(avc_db_t *db, const char *msg)
{
    size_t n = 0, max = sizeof(db->last_error) - 1;
    int space = 0;

    for ( ; msg && *msg && n < max; msg++) {
        if (*msg == '\n' || *msg == '\r' || *msg == '\t' || *msg == ' ') {
            space = 1;
            continue;
        }
        if (space && n > 0 && n < max - 1) {
            db->last_error[n++] = ' ';
        }
        space = 0;
        db->last_error[n++] = *msg;
    }
    db->last_error[n] = '\0';
}

static void
avc_db_notice(void *arg, const char *msg)
{
    size_t n = strlen(msg);

    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        n--;
    }
    avc_log(AVC_LOG_DEBUG, "postgres: %.*s", (int) n, msg);
}

static int
avc_db_pgres_ok(const PGresult *r)
{
    switch (PQresultStatus(r)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        return 1;
    default:
        return 0;
    }
}

static void
avc_db_kick(avc_db_t *db)
{
    if (!db->closing && !avc_timer_active(db->kick)) {
        avc_timer_start(db->kick, 0);
    }
}

/* Freeing happens only here, outside every callback of this file. */
static void
avc_db_leave(avc_db_t *db)
{
    avc_db_conn_t *c;
    size_t i;

    if (--db->depth > 0) {
        return;
    }
    while ((c = db->dead) != NULL) {
        db->dead = c->next;
        free(c->prepared);
        free(c);
    }
    if (!db->closing) {
        return;
    }
    for (i = 0; i < db->nstmts; i++) {
        free(db->stmts[i].name);
        free(db->stmts[i].sql);
    }
    free(db->stmts);
    free(db->conninfo);
    free(db);
}

/* deadlines */

/*
 * When a queued query gives up, and with which error: its deadline, or
 * earlier when no connection is open (see the comment at the top).
 */
static uint64_t
avc_db_query_expiry(avc_db_query_t *q, int *err)
{
    avc_db_t *db = q->db;
    uint64_t exp = q->deadline, w;

    *err = AVC_ETIMEDOUT;
    if (q->deadline == 0) {
        return AVC_DB_NEVER;
    }
    if (q->list == &db->queue && db->nopen == 0) {
        *err = AVC_EDBCONN;
        w = q->queued_at > db->zero_since ? q->queued_at : db->zero_since;
        w += db->connect_wait_ms;
        if (w < exp) {
            exp = w;
        }
        if (db->failing) {
            w = db->fail_since + db->connect_wait_ms;
            if (w < exp) {
                exp = w;
            }
        }
    } else if (q->tx && q->tx->broken) {
        *err = AVC_EDBCONN;
    }
    return exp;
}

static void
avc_db_query_arm(avc_db_query_t *q)
{
    uint64_t now = avc_db_now(q->db), exp;
    int err;

    exp = avc_db_query_expiry(q, &err);
    if (exp == AVC_DB_NEVER) {
        avc_timer_stop(q->timer);
        return;
    }
    avc_timer_start(q->timer, exp > now ? exp - now : 0);
}

static void
avc_db_rearm_queue(avc_db_t *db)
{
    avc_db_query_t *q;

    if (db->closing) {
        return;
    }
    for (q = db->queue.head; q; q = q->next) {
        avc_db_query_arm(q);
    }
}

static void avc_db_conn_abandon(avc_db_conn_t *c);

static void
avc_db_query_timer(avc_timer_t *t, void *data)
{
    avc_db_query_t *q = data;
    avc_db_t *db = q->db;
    uint64_t now = avc_db_now(db), exp;
    int err;

    db->depth++;
    if (q->conn) {
        if (now >= q->deadline) {
            avc_db_conn_abandon(q->conn);
            avc_db_finish(q, AVC_ETIMEDOUT, NULL);
        } else {
            avc_timer_start(t, q->deadline - now);
        }
    } else {
        exp = avc_db_query_expiry(q, &err);
        if (now >= exp) {
            avc_db_finish(q, err, NULL);
        } else if (exp != AVC_DB_NEVER) {
            avc_timer_start(t, exp - now);
        }
    }
    avc_db_leave(db);
}

/* queries */

static avc_db_query_t *
avc_db_query_new(avc_db_t *db, int kind, const char *sql, int nparams,
    const char *const *params)
{
    avc_db_query_t *q;
    size_t len, n;
    char **pv, *p;
    int i;

    len = strlen(sql) + 1;
    for (i = 0; i < nparams; i++) {
        if (params[i]) {
            len += strlen(params[i]) + 1;
        }
    }
    q = calloc(1, sizeof(*q) + (size_t) nparams * sizeof(char *) + len);
    if (q == NULL) {
        return NULL;
    }
    q->timer = avc_timer_new(db->loop, avc_db_query_timer, q);
    if (q->timer == NULL) {
        free(q);
        return NULL;
    }
    pv = (char **) (q + 1);
    p = (char *) (pv + nparams);
    n = strlen(sql) + 1;
    memcpy(p, sql, n);
    q->sql = p;
    p += n;
    for (i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            pv[i] = NULL;
            continue;
        }
        n = strlen(params[i]) + 1;
        memcpy(p, params[i], n);
        pv[i] = p;
        p += n;
    }
    q->params = (const char *const *) pv;
    q->db = db;
    q->kind = kind;
    q->stmt = -1;
    q->nparams = nparams;
    q->queued_at = avc_db_now(db);
    return q;
}

static void
avc_db_tx_end(avc_db_tx_t *tx)
{
    avc_db_t *db = tx->db;
    avc_db_query_t *q;

    if (tx->conn) {
        tx->conn->tx = NULL;
        tx->conn = NULL;
    }
    if (tx->prev) {
        tx->prev->next = tx->next;
    } else {
        db->txs = tx->next;
    }
    if (tx->next) {
        tx->next->prev = tx->prev;
    }
    /* empty unless the pool is closing: COMMIT and ROLLBACK queue last */
    while ((q = tx->queue.head) != NULL) {
        avc_db_finish(q, AVC_ECANCELED, NULL);
    }
    free(tx);
}

/* Complete a query: the one place that calls the user's callbacks. */
static void
avc_db_finish(avc_db_query_t *q, int err, avc_db_res_t *res)
{
    avc_db_t *db = q->db;
    avc_db_tx_t *tx = q->tx;

    if (q->list) {
        avc_db_list_remove(q);
    }
    if (q->conn) {
        q->conn->q = NULL;
        q->conn = NULL;
    }
    avc_timer_free(q->timer);
    q->timer = NULL;
    q->done = 1;
    if (q->kind == AVC_DBQ_ROLLBACK && err == AVC_EDBCONN) {
        /* the server discarded the transaction with the connection */
        err = AVC_OK;
    }
    db->stats[AVC_DB_QUERIES]++;
    if (err != AVC_OK) {
        db->stats[AVC_DB_ERRORS]++;
    }

    switch (q->kind) {
    case AVC_DBQ_BEGIN:
        if (err == AVC_OK) {
            q->tx_cb(AVC_OK, tx, q->data);
        } else {
            avc_db_tx_end(tx);
            q->tx_cb(err, NULL, q->data);
        }
        break;
    case AVC_DBQ_COMMIT:
    case AVC_DBQ_ROLLBACK:
        avc_db_tx_end(tx);
        if (q->cb) {
            q->cb(err, res, q->data);
        }
        break;
    default:
        q->cb(err, res, q->data);
    }
    free(q);
}

/* connections */

static int
avc_db_conn_prepared(avc_db_conn_t *c, int stmt)
{
    return (size_t) stmt < c->nprepared && c->prepared[stmt];
}

static void
avc_db_conn_set_prepared(avc_db_conn_t *c, int stmt)
{
    unsigned char *p;
    size_t n = c->db->nstmts;

    if ((size_t) stmt >= c->nprepared) {
        p = realloc(c->prepared, n);
        if (p == NULL) {
            /* harmless: the next PREPARE gets 42P05, taken as success */
            return;
        }
        memset(p + c->nprepared, 0, n - c->nprepared);
        c->prepared = p;
        c->nprepared = n;
    }
    c->prepared[stmt] = 1;
}

static int
avc_db_conn_watch(avc_db_conn_t *c, unsigned mask)
{
    if (c->events == mask) {
        return AVC_OK;
    }
    if (avc_io_update(c->io, mask) != AVC_OK) {
        return AVC_ESYS;
    }
    c->events = mask;
    return AVC_OK;
}

/* libpq may have switched sockets: always start a fresh watcher */
static int
avc_db_conn_rewatch(avc_db_conn_t *c, unsigned mask)
{
    int fd = PQsocket(c->pg);

    avc_io_stop(c->io);
    c->io = NULL;
    if (fd < 0) {
        avc_db_conn_end(c, "connection has no socket");
        return AVC_EDBCONN;
    }
    c->io = avc_io_start(c->db->loop, fd, mask, avc_db_conn_io, c);
    if (c->io == NULL) {
        avc_db_conn_end(c, "cannot watch the connection's socket");
        return AVC_EDBCONN;
    }
    c->events = mask;
    return AVC_OK;
}

static void
avc_db_conn_close(avc_db_conn_t *c)
{
    avc_db_t *db = c->db;

    avc_io_stop(c->io);
    c->io = NULL;
    avc_timer_free(c->timer);
    c->timer = NULL;
    if (c->connecting) {
        c->connecting->conn = NULL;
        c->connecting = NULL;
    }
    if (c->cancelling) {
        c->cancelling->conn = NULL;
        c->cancelling = NULL;
    }
    if (c->res) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        db->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    db->nconns--;
    if (c->established) {
        db->nopen--;
        if (db->nopen == 0) {
            db->zero_since = avc_db_now(db);
            avc_db_rearm_queue(db);
        }
    } else {
        db->nconnecting--;
    }
    c->state = AVC_DBC_DEAD;
    c->prev = NULL;
    c->next = db->dead;
    db->dead = c;
}

static void
avc_db_connect_failed(avc_db_t *db)
{
    if (!db->failing) {
        db->failing = 1;
        db->fail_since = avc_db_now(db);
        avc_log(AVC_LOG_WARN, "cannot connect to PostgreSQL: %s",
                db->last_error);
    } else {
        avc_log(AVC_LOG_DEBUG, "cannot connect to PostgreSQL: %s",
                db->last_error);
    }
    if (db->backoff_ms == 0) {
        db->backoff_ms = AVC_DB_BACKOFF_MIN;
    } else if (db->backoff_ms < AVC_DB_BACKOFF_MAX / 2) {
        db->backoff_ms *= 2;
    } else {
        db->backoff_ms = AVC_DB_BACKOFF_MAX;
    }
    avc_timer_start(db->retry, db->backoff_ms);
    if (db->nopen == 0) {
        avc_db_rearm_queue(db);
    }
}

/*
 * Close a connection; why is NULL when it is closed on purpose (no
 * failure to count, no backoff).  Its query fails with AVC_EDBCONN and
 * its transaction is marked broken.  Callers return right after.
 */
static void
avc_db_conn_end(avc_db_conn_t *c, const char *why)
{
    avc_db_t *db = c->db;
    avc_db_query_t *q = c->q;
    int established = c->established;

    if (q) {
        q->conn = NULL;
        c->q = NULL;
    }
    if (c->tx) {
        c->tx->conn = NULL;
        c->tx->broken = 1;
        c->tx = NULL;
    }
    if (why) {
        avc_db_set_error(db, why);
    }
    avc_db_conn_close(c);
    if (why && established) {
        db->lost++;
        avc_log(AVC_LOG_WARN, "PostgreSQL connection lost: %s",
                db->last_error);
    } else if (why) {
        avc_db_connect_failed(db);
    }
    avc_db_kick(db);
    if (q) {
        avc_db_finish(q, AVC_EDBCONN, NULL);
    }
}

static void
avc_db_cancel_work(void *data)
{
    avc_db_cancel_t *w = data;

    w->ok = PQcancel(w->cancel, w->err, (int) sizeof(w->err));
}

static void
avc_db_conn_drain_check(avc_db_conn_t *c)
{
    if (c->state != AVC_DBC_DRAIN || !c->drained || c->cancelling) {
        return;
    }
    avc_timer_stop(c->timer);
    c->state = AVC_DBC_IDLE;
    avc_db_conn_next(c);
}

static void
avc_db_cancel_done(void *data, int status)
{
    avc_db_cancel_t *w = data;
    avc_db_conn_t *c = w->conn;
    avc_db_t *db;

    if (c && status == AVC_OK && !w->ok) {
        avc_log(AVC_LOG_INFO, "PostgreSQL cancel request failed: %s",
                w->err);
    }
    PQfreeCancel(w->cancel);
    free(w);
    if (c == NULL) {
        return;
    }
    c->cancelling = NULL;
    db = c->db;
    db->depth++;
    avc_db_conn_drain_check(c);
    avc_db_leave(db);
}

/*
 * Give up on the running query (the caller completes it): ask the server
 * to cancel it and drain its results; the drain timeout closes the
 * connection when that does not end.
 */
static void
avc_db_conn_abandon(avc_db_conn_t *c)
{
    avc_db_query_t *q = c->q;
    avc_db_cancel_t *w;

    c->drain_stmt = c->phase == AVC_DBP_PREPARE ? q->stmt : -1;
    q->conn = NULL;
    c->q = NULL;
    c->state = AVC_DBC_DRAIN;
    c->drained = 0;
    avc_timer_start(c->timer, AVC_DB_DRAIN_TIMEOUT);

    w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->cancel = PQgetCancel(c->pg);
        if (w->cancel != NULL) {
            w->conn = c;
            if (avc_offload(c->db->loop, avc_db_cancel_work,
                            avc_db_cancel_done, w) == AVC_OK)
            {
                c->cancelling = w;
                return;
            }
            PQfreeCancel(w->cancel);
        }
        free(w);
    }
    avc_log(AVC_LOG_WARN, "cannot send a PostgreSQL cancel request");
}

static int
avc_db_send(avc_db_conn_t *c, avc_db_query_t *q)
{
    avc_db_stmt_t *st;

    switch (q->kind) {
    case AVC_DBQ_NAMED:
        st = &c->db->stmts[q->stmt];
        return PQsendQueryPrepared(c->pg, st->name, q->nparams, q->params,
                                   NULL, NULL, 0);
    case AVC_DBQ_SCRIPT:
        /* several statements: the simple protocol, never with params */
        return PQsendQuery(c->pg, q->sql);
    default:
        return PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, q->params,
                                 NULL, NULL, 0);
    }
}

static int
avc_db_conn_flush(avc_db_conn_t *c)
{
    int rc = PQflush(c->pg);

    if (rc < 0) {
        return AVC_EDBCONN;
    }
    return avc_db_conn_watch(c, rc ? AVC_IO_READ | AVC_IO_WRITE
                                   : AVC_IO_READ);
}

static void
avc_db_conn_start(avc_db_conn_t *c, avc_db_query_t *q)
{
    avc_db_t *db = c->db;
    avc_db_stmt_t *st;
    uint64_t now = avc_db_now(db);
    int ok;

    if (q->kind == AVC_DBQ_BEGIN) {
        c->tx = q->tx;
        q->tx->conn = c;
    }
    c->q = q;
    q->conn = c;
    c->state = AVC_DBC_BUSY;
    c->copy = 0;
    if (q->deadline == 0) {
        q->deadline = now + (q->tx ? q->tx->timeout_ms : db->timeout_ms);
    }
    avc_timer_start(q->timer, q->deadline > now ? q->deadline - now : 0);

    if (q->kind == AVC_DBQ_NAMED && !avc_db_conn_prepared(c, q->stmt)) {
        c->phase = AVC_DBP_PREPARE;
        st = &db->stmts[q->stmt];
        ok = PQsendPrepare(c->pg, st->name, st->sql, 0, NULL);
    } else {
        c->phase = AVC_DBP_EXEC;
        ok = avc_db_send(c, q);
    }
    if (ok && avc_db_conn_flush(c) == AVC_OK) {
        return;
    }

    /*
     * The server has not executed it: a message cut short is never run
     * and the implicit transaction dies with the connection.  Outside a
     * transaction, give the query one more chance on another connection.
     */
    if (!q->retried && (q->tx == NULL || q->kind == AVC_DBQ_BEGIN)) {
        q->retried = 1;
        if (q->kind == AVC_DBQ_BEGIN) {
            q->tx->conn = NULL;
            c->tx = NULL;
        }
        c->q = NULL;
        q->conn = NULL;
        avc_db_list_unshift(&db->queue, q);
        avc_db_query_arm(q);
    }
    avc_db_conn_end(c, PQerrorMessage(c->pg));
}

/* An idle connection takes its next query, if any. */
static void
avc_db_conn_next(avc_db_conn_t *c)
{
    avc_db_t *db = c->db;
    avc_db_query_t *q;

    if (c->state != AVC_DBC_IDLE || db->closing) {
        return;
    }
    if (c->tx) {
        q = c->tx->queue.head;
    } else {
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
            avc_log(AVC_LOG_DEBUG, "closing a PostgreSQL connection left "
                    "inside a transaction block");
            avc_db_conn_end(c, NULL);
            return;
        }
        q = db->queue.head;
    }
    if (q == NULL) {
        return;
    }
    avc_db_list_remove(q);
    avc_db_conn_start(c, q);
}

static void
avc_db_conn_established(avc_db_conn_t *c)
{
    avc_db_t *db = c->db;

    avc_timer_stop(c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        avc_db_conn_end(c, PQerrorMessage(c->pg));
        return;
    }
    c->established = 1;
    c->state = AVC_DBC_IDLE;
    db->nconnecting--;
    db->nopen++;
    if (db->lost > 0 || db->failing) {
        db->stats[AVC_DB_RECONNECTS]++;
        if (db->lost > 0) {
            db->lost--;
        }
    }
    if (db->failing) {
        avc_log(AVC_LOG_NOTICE, "PostgreSQL connection restored");
    }
    db->failing = 0;
    db->wanted = 0;
    db->fail_since = 0;
    db->backoff_ms = 0;
    avc_timer_stop(db->retry);
    if (avc_db_conn_rewatch(c, AVC_IO_READ) != AVC_OK) {
        return;
    }
    avc_db_kick(db);
    avc_db_conn_next(c);
}

static void
avc_db_conn_poll(avc_db_conn_t *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        avc_db_conn_rewatch(c, AVC_IO_READ);
        return;
    case PGRES_POLLING_WRITING:
        avc_db_conn_rewatch(c, AVC_IO_WRITE);
        return;
    case PGRES_POLLING_OK:
        avc_db_conn_established(c);
        return;
    default:
        avc_db_conn_end(c, PQerrorMessage(c->pg));
        return;
    }
}

static void
avc_db_conn_collect(avc_db_conn_t *c, PGresult *r)
{
    switch (PQresultStatus(r)) {
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_COPY_BOTH:
        c->copy = 1;
        PQclear(r);
        return;
    default:
        break;
    }
    if (c->res == NULL) {
        c->res = r;
    } else if (!avc_db_pgres_ok(c->res)) {
        PQclear(r);                     /* keep the first error */
    } else {
        PQclear(c->res);
        c->res = r;
    }
}

/*
 * The current phase has delivered all its results.  Returns 1 when the
 * next phase was sent (more results to read), 0 otherwise.
 */
static int
avc_db_conn_complete(avc_db_conn_t *c)
{
    avc_db_t *db = c->db;
    avc_db_query_t *q = c->q;
    PGresult *r = c->res;
    avc_db_res_t res;
    const char *state;
    int err, prepared;

    c->res = NULL;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        PQclear(r);
        avc_db_conn_end(c, PQerrorMessage(c->pg));
        return 0;
    }
    prepared = 0;
    if (c->phase == AVC_DBP_PREPARE && r != NULL) {
        state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        /* 42P05: already prepared, though not recorded (out of memory) */
        prepared = avc_db_pgres_ok(r)
                   || (state != NULL && strcmp(state, "42P05") == 0);
    }

    if (q == NULL) {
        if (prepared && c->drain_stmt >= 0) {
            avc_db_conn_set_prepared(c, c->drain_stmt);
        }
        PQclear(r);
        c->drained = 1;
        avc_db_conn_drain_check(c);
        return 0;
    }

    if (prepared) {
        PQclear(r);
        avc_db_conn_set_prepared(c, q->stmt);
        c->phase = AVC_DBP_EXEC;
        if (!avc_db_send(c, q) || avc_db_conn_flush(c) != AVC_OK) {
            avc_db_conn_end(c, PQerrorMessage(c->pg));
            return 0;
        }
        return 1;
    }

    memset(&res, 0, sizeof(res));
    res.pg = r;
    if (r == NULL) {
        err = AVC_EDBCONN;
    } else if (!avc_db_pgres_ok(r)) {
        err = AVC_EDB;
    } else {
        err = AVC_OK;
        if (q->kind == AVC_DBQ_COMMIT
            && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        {
            /* COMMIT of a failed transaction: the server rolled back */
            err = AVC_EDB;
            res.sqlstate = "40000";
            res.message = "the transaction had failed and was rolled back";
        }
    }
    c->q = NULL;
    q->conn = NULL;
    c->state = AVC_DBC_IDLE;
    avc_db_finish(q, err, r ? &res : NULL);
    PQclear(r);
    if (!db->closing) {
        avc_db_conn_next(c);
    }
    return 0;
}

static void
avc_db_conn_input(avc_db_conn_t *c, unsigned events)
{
    PGnotify *n;
    PGresult *r;

    if ((events & AVC_IO_WRITE) && c->state != AVC_DBC_IDLE) {
        if (avc_db_conn_flush(c) != AVC_OK) {
            avc_db_conn_end(c, PQerrorMessage(c->pg));
            return;
        }
    }
    if (events & (AVC_IO_READ | AVC_IO_ERROR)) {
        if (!PQconsumeInput(c->pg)) {
            avc_db_conn_end(c, PQerrorMessage(c->pg));
            return;
        }
        while ((n = PQnotifies(c->pg)) != NULL) {
            PQfreemem(n);
        }
    }
    if (c->state == AVC_DBC_IDLE) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            avc_db_conn_end(c, PQerrorMessage(c->pg));
        }
        return;
    }
    for ( ;; ) {
        if (PQisBusy(c->pg)) {
            return;
        }
        r = PQgetResult(c->pg);
        if (r == NULL) {
            if (!avc_db_conn_complete(c)) {
                return;
            }
            continue;
        }
        avc_db_conn_collect(c, r);
        if (c->copy) {
            avc_db_conn_end(c, "COPY is not supported");
            return;
        }
    }
}

static void
avc_db_conn_io(avc_io_t *io, int fd, unsigned events, void *data)
{
    avc_db_conn_t *c = data;
    avc_db_t *db = c->db;

    db->depth++;
    if (c->state == AVC_DBC_CONNECTING) {
        avc_db_conn_poll(c);
    } else if (c->state != AVC_DBC_DEAD) {
        avc_db_conn_input(c, events);
    }
    avc_db_leave(db);
}

static void
avc_db_conn_timer(avc_timer_t *t, void *data)
{
    avc_db_conn_t *c = data;
    avc_db_t *db = c->db;

    db->depth++;
    if (c->state == AVC_DBC_CONNECTING) {
        avc_db_conn_end(c, "timed out connecting");
    } else if (c->state == AVC_DBC_DRAIN) {
        avc_log(AVC_LOG_WARN, "a cancelled PostgreSQL query did not end "
                "in time: closing its connection");
        avc_db_conn_end(c, NULL);
    }
    avc_db_leave(db);
}

/* PQconnectStart resolves host names: on the thread pool */
static void
avc_db_connect_work(void *data)
{
    static const char *const keys[] = {
        "fallback_application_name", "dbname", "client_encoding", NULL
    };
    avc_db_connect_t *w = data;
    const char *values[4];

    /* later keywords win: the caller's string cannot change the encoding */
    values[0] = "avatar-adam";
    values[1] = w->conninfo;
    values[2] = "UTF8";
    values[3] = NULL;
    w->pg = PQconnectStartParams(keys, values, 1);
    if (w->pg != NULL) {
        /* libpq's default prints notices to stderr */
        PQsetNoticeProcessor(w->pg, avc_db_notice, NULL);
    }
}

static void
avc_db_connect_done(void *data, int status)
{
    avc_db_connect_t *w = data;
    avc_db_conn_t *c = w->conn;
    PGconn *pg = w->pg;
    avc_db_t *db;

    free(w->conninfo);
    free(w);
    if (c == NULL) {
        if (pg) {
            PQfinish(pg);
        }
        return;
    }
    c->connecting = NULL;
    c->pg = pg;
    db = c->db;
    db->depth++;
    if (status != AVC_OK) {
        avc_db_conn_end(c, "connection attempt cancelled");
    } else if (pg == NULL) {
        avc_db_conn_end(c, "out of memory");
    } else if (PQstatus(pg) == CONNECTION_BAD) {
        avc_db_conn_end(c, PQerrorMessage(pg));
    } else {
        /* as libpq documents: first wait as if it said POLLING_WRITING */
        avc_db_conn_rewatch(c, AVC_IO_WRITE);
    }
    avc_db_leave(db);
}

static int
avc_db_conn_open(avc_db_t *db)
{
    avc_db_connect_t *w;
    avc_db_conn_t *c;

    c = calloc(1, sizeof(*c));
    w = calloc(1, sizeof(*w));
    if (c == NULL || w == NULL) {
        goto failed;
    }
    w->conninfo = strdup(db->conninfo);
    c->timer = avc_timer_new(db->loop, avc_db_conn_timer, c);
    if (w->conninfo == NULL || c->timer == NULL) {
        goto failed;
    }
    c->db = db;
    c->state = AVC_DBC_CONNECTING;
    c->drain_stmt = -1;
    c->connecting = w;
    w->conn = c;
    if (avc_offload(db->loop, avc_db_connect_work, avc_db_connect_done, w)
        != AVC_OK)
    {
        goto failed;
    }
    c->next = db->conns;
    if (db->conns) {
        db->conns->prev = c;
    }
    db->conns = c;
    db->nconns++;
    db->nconnecting++;
    avc_timer_start(c->timer, AVC_DB_CONNECT_TIMEOUT);
    return AVC_OK;

failed:
    if (c) {
        avc_timer_free(c->timer);
    }
    if (w) {
        free(w->conninfo);
    }
    free(w);
    free(c);
    return AVC_ENOMEM;
}

/*
 * Open connections for the queued queries.  While failing, queries may
 * have failed fast and left the queue before the backoff ends, so the
 * demand they showed (db->wanted) is enough for the next probe.
 */
static void
avc_db_open_more(avc_db_t *db)
{
    size_t need;

    if ((db->queue.n == 0 && !db->wanted) || avc_timer_active(db->retry)
        || (db->failing && db->nconnecting > 0))
    {
        return;
    }
    need = db->queue.n ? db->queue.n : 1;
    need = need > db->nconnecting ? need - db->nconnecting : 0;
    db->wanted = 0;
    while (need-- > 0 && db->nconns < db->max_conns) {
        if (avc_db_conn_open(db) != AVC_OK) {
            avc_db_set_error(db, "out of memory opening a connection");
            avc_db_connect_failed(db);
            return;
        }
        if (db->failing) {
            return;                     /* one probe at a time */
        }
    }
}

/* Hand queued work to idle connections, fail broken transactions' work,
 * open connections as needed.  One step per pass: callbacks may change
 * anything. */
static void
avc_db_process(avc_db_t *db)
{
    avc_db_conn_t *c;
    avc_db_query_t *q;
    avc_db_tx_t *tx;

again:
    if (db->closing) {
        return;
    }
    for (tx = db->txs; tx; tx = tx->next) {
        if (tx->broken && (q = tx->queue.head) != NULL) {
            avc_db_finish(q, AVC_EDBCONN, NULL);
            goto again;
        }
    }
    for (c = db->conns; c; c = c->next) {
        if (c->state == AVC_DBC_IDLE
            && (c->tx ? c->tx->queue.head != NULL : db->queue.head != NULL))
        {
            avc_db_conn_next(c);
            goto again;
        }
    }
    avc_db_open_more(db);
}

static void
avc_db_kick_timer(avc_timer_t *t, void *data)
{
    avc_db_t *db = data;

    db->depth++;
    avc_db_process(db);
    avc_db_leave(db);
}

/* the pool */

static int
avc_db_conninfo_valid(const char *conninfo)
{
    PQconninfoOption *opts;
    char *err = NULL;

    /* a bare word is a database name; only strings and URIs are parsed */
    if (strchr(conninfo, '=') == NULL
        && strncmp(conninfo, "postgresql://", 13) != 0
        && strncmp(conninfo, "postgres://", 11) != 0)
    {
        return 1;
    }
    opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL) {
        avc_log(AVC_LOG_ERR, "invalid PostgreSQL connection string: %s",
                err ? err : "out of memory");
        PQfreemem(err);
        return 0;
    }
    PQconninfoFree(opts);
    return 1;
}

AVC_API avc_db_t *
avc_db_new(avc_loop_t *loop, const char *conninfo, unsigned max_conns,
    unsigned timeout_ms)
{
    avc_db_t *db;

    if (loop == NULL || conninfo == NULL || !avc_db_conninfo_valid(conninfo))
    {
        return NULL;
    }
    db = calloc(1, sizeof(*db));
    if (db == NULL) {
        return NULL;
    }
    db->loop = loop;
    db->conninfo = strdup(conninfo);
    db->kick = avc_timer_new(loop, avc_db_kick_timer, db);
    db->retry = avc_timer_new(loop, avc_db_kick_timer, db);
    if (db->conninfo == NULL || db->kick == NULL || db->retry == NULL) {
        avc_timer_free(db->kick);
        avc_timer_free(db->retry);
        free(db->conninfo);
        free(db);
        return NULL;
    }
    db->max_conns = max_conns ? max_conns : AVC_DB_DEFAULT_CONNS;
    db->timeout_ms = timeout_ms ? timeout_ms : AVC_DB_DEFAULT_TIMEOUT;
    db->connect_wait_ms = AVC_DB_CONNECT_WAIT;
    db->zero_since = avc_db_now(db);
    return db;
}

AVC_API void
avc_db_free(avc_db_t *db)
{
    avc_db_conn_t *c;
    avc_db_query_t *q;

    if (db == NULL || db->closing) {
        return;
    }
    db->closing = 1;
    db->depth++;
    avc_timer_free(db->kick);
    avc_timer_free(db->retry);
    db->kick = db->retry = NULL;

    /* one step at a time: the callbacks may cancel other queries */
    for ( ;; ) {
        if ((q = db->queue.head) != NULL) {
            avc_db_finish(q, AVC_ECANCELED, NULL);
            continue;
        }
        if ((c = db->conns) != NULL) {
            q = c->q;
            if (q) {
                q->conn = NULL;
                c->q = NULL;
            }
            if (c->tx) {
                c->tx->conn = NULL;
                c->tx = NULL;
            }
            avc_db_conn_close(c);
            if (q) {
                avc_db_finish(q, AVC_ECANCELED, NULL);
            }
            continue;
        }
        if (db->txs != NULL) {
            if ((q = db->txs->queue.head) != NULL) {
                avc_db_finish(q, AVC_ECANCELED, NULL);
            } else {
                avc_db_tx_end(db->txs);
            }
            continue;
        }
        break;
    }
    avc_db_leave(db);
}

AVC_API void
avc_db_set_connect_wait(avc_db_t *db, unsigned ms)
{
    if (db != NULL) {
        db->connect_wait_ms = ms;
    }
}

AVC_API const char *
avc_db_last_error(const avc_db_t *db)
{
    return db ? db->last_error : "";
}

static int
avc_db_stmt_find(const avc_db_t *db, const char *name)
{
    size_t i;

    for (i = 0; i < db->nstmts; i++) {
        if (strcmp(db->stmts[i].name, name) == 0) {
            return (int) i;
        }
    }
    return -1;
}

AVC_API int
avc_db_statement(avc_db_t *db, const char *name, const char *sql)
{
    avc_db_stmt_t *st;
    size_t len, cap;
    const char *p;
    int i;

    if (db == NULL || name == NULL || sql == NULL || db->closing) {
        return AVC_EINVAL;
    }
    len = strlen(name);
    if (len == 0 || len > AVC_DB_NAME_MAX) {
        return AVC_EINVAL;
    }
    for (p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
        {
            return AVC_EINVAL;
        }
    }
    i = avc_db_stmt_find(db, name);
    if (i >= 0) {
        return strcmp(db->stmts[i].sql, sql) == 0 ? AVC_OK : AVC_ECONFLICT;
    }
    if (db->nstmts == db->stmts_cap) {
        cap = db->stmts_cap ? db->stmts_cap * 2 : 16;
        st = realloc(db->stmts, cap * sizeof(*st));
        if (st == NULL) {
            return AVC_ENOMEM;
        }
        db->stmts = st;
        db->stmts_cap = cap;
    }
    st = &db->stmts[db->nstmts];
    st->name = strdup(name);
    st->sql = strdup(sql);
    if (st->name == NULL || st->sql == NULL) {
        free(st->name);
        free(st->sql);
        return AVC_ENOMEM;
    }
    db->nstmts++;
    return AVC_OK;
}

static void
avc_db_enqueue(avc_db_t *db, avc_db_query_t *q)
{
    avc_db_list_push(&db->queue, q);
    avc_db_query_arm(q);
    if (db->failing) {
        db->wanted = 1;
    }
    avc_db_kick(db);
}

static avc_db_query_t *
avc_db_query_make(avc_db_t *db, const char *sql, int named, int nparams,
    const char *const *params)
{
    avc_db_query_t *q;
    int stmt = -1;

    if (db == NULL || sql == NULL || db->closing || nparams < 0
        || nparams > AVC_DB_MAX_PARAMS || (nparams > 0 && params == NULL))
    {
        return NULL;
    }
    if (named) {
        stmt = avc_db_stmt_find(db, sql);
        if (stmt < 0) {
            avc_log(AVC_LOG_ERR, "unknown database statement \"%s\"", sql);
            return NULL;
        }
    }
    q = avc_db_query_new(db, named ? AVC_DBQ_NAMED : AVC_DBQ_SQL, sql,
                         nparams, params);
    if (q != NULL) {
        q->stmt = stmt;
    }
    return q;
}

AVC_API avc_db_query_t *
avc_db_query(avc_db_t *db, const char *sql, int named, int nparams,
    const char *const *params, unsigned timeout_ms, avc_db_cb cb,
    void *data)
{
    avc_db_query_t *q;

    if (cb == NULL) {
        return NULL;
    }
    q = avc_db_query_make(db, sql, named, nparams, params);
    if (q == NULL) {
        return NULL;
    }
    q->deadline = q->queued_at + (timeout_ms ? timeout_ms : db->timeout_ms);
    q->cb = cb;
    q->data = data;
    avc_db_enqueue(db, q);
    return q;
}

AVC_API void
avc_db_cancel(avc_db_query_t *q)
{
    avc_db_t *db;

    if (q == NULL || q->done) {
        return;
    }
    db = q->db;
    db->depth++;
    if (q->conn) {
        avc_db_conn_abandon(q->conn);
    }
    avc_db_finish(q, AVC_ECANCELED, NULL);
    avc_db_leave(db);
}

/* results */

AVC_API int
avc_db_res_rows(const avc_db_res_t *res)
{
    return res && res->pg ? PQntuples(res->pg) : 0;
}

AVC_API int
avc_db_res_cols(const avc_db_res_t *res)
{
    return res && res->pg ? PQnfields(res->pg) : 0;
}

AVC_API const char *
avc_db_res_value(const avc_db_res_t *res, int row, int col)
{
    if (res == NULL || res->pg == NULL || row < 0 || col < 0
        || row >= PQntuples(res->pg) || col >= PQnfields(res->pg))
    {
        return NULL;
    }
    return PQgetvalue(res->pg, row, col);
}

AVC_API int
avc_db_res_isnull(const avc_db_res_t *res, int row, int col)
{
    if (res == NULL || res->pg == NULL || row < 0 || col < 0
        || row >= PQntuples(res->pg) || col >= PQnfields(res->pg))
    {
        return 1;
    }
    return PQgetisnull(res->pg, row, col);
}

AVC_API int
avc_db_res_col(const avc_db_res_t *res, const char *name)
{
    if (res == NULL || res->pg == NULL || name == NULL) {
        return -1;
    }
    return PQfnumber(res->pg, name);
}

AVC_API long long
avc_db_res_affected(const avc_db_res_t *res)
{
    const char *s;

    if (res == NULL || res->pg == NULL) {
        return 0;
    }
    s = PQcmdTuples(res->pg);
    return s && *s ? strtoll(s, NULL, 10) : 0;
}

static const char *
avc_db_res_field(const avc_db_res_t *res, int field)
{
    const char *s;

    if (res == NULL || res->pg == NULL) {
        return "";
    }
    s = PQresultErrorField(res->pg, field);
    return s ? s : "";
}

AVC_API const char *
avc_db_res_sqlstate(const avc_db_res_t *res)
{
    if (res && res->sqlstate) {
        return res->sqlstate;
    }
    return avc_db_res_field(res, PG_DIAG_SQLSTATE);
}

AVC_API const char *
avc_db_res_error(const avc_db_res_t *res)
{
    if (res && res->message) {
        return res->message;
    }
    return avc_db_res_field(res, PG_DIAG_MESSAGE_PRIMARY);
}

AVC_API const char *
avc_db_res_constraint(const avc_db_res_t *res)
{
    return avc_db_res_field(res, PG_DIAG_CONSTRAINT_NAME);
}

/* transactions */

AVC_API int
avc_db_begin(avc_db_t *db, unsigned timeout_ms, avc_db_tx_cb cb, void *data)
{
    avc_db_query_t *q;
    avc_db_tx_t *tx;

    if (db == NULL || cb == NULL) {
        return AVC_EINVAL;
    }
    if (db->closing) {
        return AVC_ESTATE;
    }
    tx = calloc(1, sizeof(*tx));
    if (tx == NULL) {
        return AVC_ENOMEM;
    }
    q = avc_db_query_new(db, AVC_DBQ_BEGIN, "BEGIN", 0, NULL);
    if (q == NULL) {
        free(tx);
        return AVC_ENOMEM;
    }
    tx->db = db;
    tx->timeout_ms = timeout_ms ? timeout_ms : db->timeout_ms;
    tx->next = db->txs;
    if (db->txs) {
        db->txs->prev = tx;
    }
    db->txs = tx;
    q->tx = tx;
    q->tx_cb = cb;
    q->data = data;
    q->deadline = q->queued_at + tx->timeout_ms;
    avc_db_enqueue(db, q);
    return AVC_OK;
}

static avc_db_query_t *
avc_db_tx_add(avc_db_tx_t *tx, avc_db_query_t *q, avc_db_cb cb, void *data)
{
    q->tx = tx;
    q->cb = cb;
    q->data = data;
    if (q->kind != AVC_DBQ_COMMIT && q->kind != AVC_DBQ_ROLLBACK) {
        q->deadline = q->queued_at + tx->timeout_ms;
    }
    avc_db_list_push(&tx->queue, q);
    avc_db_query_arm(q);
    avc_db_kick(tx->db);
    return q;
}

AVC_API avc_db_query_t *
avc_db_tx_query(avc_db_tx_t *tx, const char *sql, int named, int nparams,
    const char *const *params, avc_db_cb cb, void *data)
{
    avc_db_query_t *q;

    if (tx == NULL || cb == NULL || tx->ending) {
        return NULL;
    }
    q = avc_db_query_make(tx->db, sql, named, nparams, params);
    if (q == NULL) {
        return NULL;
    }
    return avc_db_tx_add(tx, q, cb, data);
}

AVC_API avc_db_query_t *
avc_db_tx_exec_script(avc_db_tx_t *tx, const char *sql, avc_db_cb cb,
    void *data)
{
    avc_db_query_t *q;

    if (tx == NULL || sql == NULL || cb == NULL || tx->ending
        || tx->db->closing)
    {
        return NULL;
    }
    q = avc_db_query_new(tx->db, AVC_DBQ_SCRIPT, sql, 0, NULL);
    if (q == NULL) {
        return NULL;
    }
    return avc_db_tx_add(tx, q, cb, data);
}

static int
avc_db_tx_finish(avc_db_tx_t *tx, int kind, avc_db_cb cb, void *data)
{
    avc_db_query_t *q;

    if (tx == NULL) {
        return AVC_EINVAL;
    }
    if (tx->ending || tx->db->closing) {
        return AVC_ESTATE;
    }
    q = avc_db_query_new(tx->db, kind,
                         kind == AVC_DBQ_COMMIT ? "COMMIT" : "ROLLBACK",
                         0, NULL);
    if (q == NULL) {
        return AVC_ENOMEM;
    }
    tx->ending = 1;
    avc_db_tx_add(tx, q, cb, data);
    return AVC_OK;
}

AVC_API int
avc_db_commit(avc_db_tx_t *tx, avc_db_cb cb, void *data)
{
    return avc_db_tx_finish(tx, AVC_DBQ_COMMIT, cb, data);
}

AVC_API int
avc_db_rollback(avc_db_tx_t *tx, avc_db_cb cb, void *data)
{
    return avc_db_tx_finish(tx, AVC_DBQ_ROLLBACK, cb, data);
}

/* counters */

AVC_API unsigned long long
avc_db_stat(const avc_db_t *db, avc_db_stat_t which)
{
    const avc_db_conn_t *c;
    unsigned long long n = 0;

    if (db == NULL) {
        return 0;
    }
    switch (which) {
    case AVC_DB_CONNS_OPEN:
        return db->nopen;
    case AVC_DB_CONNS_BUSY:
        for (c = db->conns; c; c = c->next) {
            if (c->established && (c->state != AVC_DBC_IDLE || c->tx)) {
                n++;
            }
        }
        return n;
    case AVC_DB_QUEUED:
        return db->queue.n;
    case AVC_DB_QUERIES:
    case AVC_DB_ERRORS:
    case AVC_DB_RECONNECTS:
        return db->stats[which];
    default:
        return 0;
    }
}
