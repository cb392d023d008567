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
 * Results are borrowed: valid only during the callback.
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
 * AVC_ECANCELED before this returns.  NULL is a no-op.
 */
AVC_API void avc_db_free(avc_db_t *db);

/*
 * Register a named statement (name and sql copied) to be prepared on each
 * connection on first use.  Register before the first query.
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

/* Cancel a query: its callback is called with AVC_ECANCELED, at once. */
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

/*
 * Transactions.  avc_db_begin leases one connection, runs BEGIN and calls
 * cb(err, tx, data).  Queries on the transaction run on that connection in
 * order.  avc_db_commit / avc_db_rollback end it and return the connection
 * to the pool; cb is called with the outcome.  A transaction whose
 * connection breaks fails every later query with AVC_EDBCONN; commit then
 * reports AVC_EDBCONN.
 */
typedef void (*avc_db_tx_cb)(int err, avc_db_tx_t *tx, void *data);

AVC_API int avc_db_begin(avc_db_t *db, unsigned timeout_ms, avc_db_tx_cb cb,
                         void *data);
AVC_API avc_db_query_t *avc_db_tx_query(avc_db_tx_t *tx, const char *sql,
                                        int named, int nparams,
                                        const char *const *params,
                                        avc_db_cb cb, void *data);
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

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_DB_H */
