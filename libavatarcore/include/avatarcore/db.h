/*
 * avatarcore/db.h - PostgreSQL through libpq's non-blocking API.
 *
 * A pool (avc_db_t) belongs to one loop.  It keeps up to max_conns
 * connections, opened lazily, each watched on the loop; queries wait in a
 * FIFO for a free connection.  Parameters are always bound (never string
 * built); named statements are prepared once per connection on first use.
 * A connection that breaks is dropped and reopened with exponential
 * backoff (100 ms doubling to 5 s), so a server restart is survived:
 * queries in flight on it fail with AVC_EDBCONN, queries still queued run
 * once a connection is back.  Every query has a deadline; at the deadline
 * the server is asked to cancel it (on the thread pool, since libpq's
 * cancel blocks) and the callback gets AVC_ETIMEDOUT.
 *
 * While no connection is open, a queued query waits at most the connect
 * wait (avc_db_set_connect_wait, 3 s by default) for one, then fails with
 * AVC_EDBCONN; once connecting has failed for that long, new queries fail
 * with AVC_EDBCONN at once (on the next loop iteration) until an attempt
 * succeeds.  So a health check answers promptly when the server is down,
 * and a short restart is ridden out.
 *
 * Results are borrowed: valid only during the callback.  Values are in
 * text format (bytea as "\x..." hex).  Parameters are NUL-terminated
 * text, so binary data must be sent hex-encoded.
 *
 * Callbacks run on the loop, never from within the call that started the
 * operation (except avc_db_cancel, see there), and may call any function
 * of this header, avc_db_free() included.
 */
#ifndef AVATARCORE_DB_H
#define AVATARCORE_DB_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_db_s avc_db_t;
typedef struct avc_db_res_s avc_db_res_t;
typedef struct avc_db_tx_s avc_db_tx_t;
typedef struct avc_db_query_s avc_db_query_t;

/*
 * Query completion.  err is AVC_OK (res holds the rows), AVC_EDB (the
 * server reported an error: see avc_db_res_sqlstate / avc_db_res_error;
 * res is non-NULL), AVC_EDBCONN, AVC_ETIMEDOUT or AVC_ECANCELED (res NULL).
 */
typedef void (*avc_db_cb)(int err, avc_db_res_t *res, void *data);

/*
 * Create a pool.  conninfo is a libpq connection string or URI (copied).
 * max_conns 0 means 4; timeout_ms 0 means 10000 (the default query
 * deadline).  No connection is made until the first query.
 */
AVC_API avc_db_t *avc_db_new(avc_loop_t *loop, const char *conninfo,
                             unsigned max_conns, unsigned timeout_ms);

/*
 * Close every connection; queued and running queries complete with
 * AVC_ECANCELED before this returns, open transactions are abandoned
 * (the server rolls them back) and their handles become invalid.  May be
 * called from a callback.  NULL is a no-op.
 */
AVC_API void avc_db_free(avc_db_t *db);

/*
 * The longest a query waits for a connection while none is open, in
 * milliseconds (default 3000; see above).  The query's own deadline still
 * applies when shorter.
 */
AVC_API void avc_db_set_connect_wait(avc_db_t *db, unsigned ms);

/*
 * The last connection-level error (connect failure, connection lost), one
 * line, for logs and operator messages; "" when none.  Borrowed, valid
 * until the next call into the pool.
 */
AVC_API const char *avc_db_last_error(const avc_db_t *db);

/*
 * Register a named statement (name and sql copied) to be prepared on each
 * connection on first use.  Register before the first query.  name is 1-63
 * characters of [A-Za-z0-9_].  Registering the same name again with the
 * same sql is a no-op; with different sql it is AVC_ECONFLICT.
 */
AVC_API int avc_db_statement(avc_db_t *db, const char *name, const char *sql);

/*
 * Run sql (or, when named is non-zero, the registered statement called
 * sql) with nparams text parameters (NULL for SQL NULL; copied).
 * timeout_ms 0 uses the pool's default.  Returns a handle that can cancel
 * the query until cb is called, or NULL on failure (cb is not called).
 */
AVC_API avc_db_query_t *avc_db_query(avc_db_t *db, const char *sql,
                                     int named, int nparams,
                                     const char *const *params,
                                     unsigned timeout_ms, avc_db_cb cb,
                                     void *data);

/*
 * Cancel a query: its callback is called with AVC_ECANCELED, at once
 * (from within this call).  A query already sent is cancelled on the
 * server too.  A no-op from within the query's own callback.
 */
AVC_API void avc_db_cancel(avc_db_query_t *q);

/* Results. */
AVC_API int avc_db_res_rows(const avc_db_res_t *res);
AVC_API int avc_db_res_cols(const avc_db_res_t *res);
/* The value as text (borrowed, "" for NULL), or NULL when out of range. */
AVC_API const char *avc_db_res_value(const avc_db_res_t *res, int row,
                                     int col);
AVC_API int avc_db_res_isnull(const avc_db_res_t *res, int row, int col);
/* Column index by name, -1 when absent. */
AVC_API int avc_db_res_col(const avc_db_res_t *res, const char *name);
/* Rows affected by INSERT/UPDATE/DELETE. */
AVC_API long long avc_db_res_affected(const avc_db_res_t *res);
/* SQLSTATE ("23505" ...) and message of a server error, else "". */
AVC_API const char *avc_db_res_sqlstate(const avc_db_res_t *res);
AVC_API const char *avc_db_res_error(const avc_db_res_t *res);
/* The constraint a server error names (e.g. which unique index), else "". */
AVC_API const char *avc_db_res_constraint(const avc_db_res_t *res);

/*
 * Transactions.  avc_db_begin leases one connection, runs BEGIN and calls
 * cb(err, tx, data).  Queries on the transaction run on that connection in
 * order.  avc_db_commit / avc_db_rollback end it and return the connection
 * to the pool; cb is called with the outcome.  A transaction whose
 * connection breaks fails every later query with AVC_EDBCONN; commit then
 * reports AVC_EDBCONN.
 *
 * timeout_ms (0: the pool's default) bounds the wait for a connection and
 * is the deadline of BEGIN and of each later query, commit and rollback.
 * A query that fails or times out inside the transaction aborts it on the
 * server; commit then reports AVC_EDB with SQLSTATE "40000".  A commit
 * that times out has an unknown outcome.  Rollback of a transaction whose
 * connection broke reports AVC_OK: the server discarded it.  The cb of
 * commit and rollback may be NULL.  After commit or rollback is called the
 * transaction takes no more queries, and after its cb it is freed.  A
 * transaction never ended holds its connection until avc_db_free().
 */
typedef void (*avc_db_tx_cb)(int err, avc_db_tx_t *tx, void *data);

AVC_API int avc_db_begin(avc_db_t *db, unsigned timeout_ms, avc_db_tx_cb cb,
                         void *data);
AVC_API avc_db_query_t *avc_db_tx_query(avc_db_tx_t *tx, const char *sql,
                                        int named, int nparams,
                                        const char *const *params,
                                        avc_db_cb cb, void *data);

/*
 * Run a script of several SQL statements separated by semicolons, sent as
 * one simple query (PQsendQuery): no parameters, so it must never contain
 * user input.  Made for migration files.  It runs inside the transaction,
 * so it must not contain BEGIN, COMMIT or COPY.  cb gets the first error,
 * or the result of the last statement.
 */
AVC_API avc_db_query_t *avc_db_tx_exec_script(avc_db_tx_t *tx,
                                              const char *sql, avc_db_cb cb,
                                              void *data);
AVC_API int avc_db_commit(avc_db_tx_t *tx, avc_db_cb cb, void *data);
AVC_API int avc_db_rollback(avc_db_tx_t *tx, avc_db_cb cb, void *data);

/* Counters for /metrics and tests (append-only). */
typedef enum {
    AVC_DB_CONNS_OPEN = 0,   /* connections established now */
    AVC_DB_CONNS_BUSY,       /* running a query or leased to a tx */
    AVC_DB_QUEUED,           /* queries waiting for a connection */
    AVC_DB_QUERIES,          /* queries completed, in total */
    AVC_DB_ERRORS,           /* queries failed, in total */
    AVC_DB_RECONNECTS        /* connections re-opened after a failure */
} avc_db_stat_t;

AVC_API unsigned long long avc_db_stat(const avc_db_t *db, avc_db_stat_t which);

/*
 * Check a connection string without connecting: NULL when it parses, else
 * a new string saying why (free it).
 */
AVC_API char *avc_db_conninfo_check(const char *conninfo);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_DB_H */
