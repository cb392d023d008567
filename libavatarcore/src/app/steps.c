/*
 * Steps: the asynchronous work of an operation, bound to its call, so that
 * a call freed by its host (the client went away) cancels whatever runs:
 * the query is cancelled on the server, an open transaction is rolled
 * back, offloaded work finishes on its thread and is then discarded.  No
 * operation writes cancellation code of its own.
 */
#include "app_int.h"

#include <stdlib.h>
#include <string.h>

typedef enum {
    AVC_STEP_QUERY,
    AVC_STEP_BEGIN,
    AVC_STEP_COMMIT,
    AVC_STEP_OFFLOAD,
    AVC_STEP_DELAY
} avc_step_kind_t;

static void avc_steps_cancel_hook(avc_call_t *call, void *ctx);

typedef struct avc__step_s {
    avc_call_t *call;           /* NULL once the call is gone */
    avc_step_kind_t kind;
    avc_db_query_t *q;
    avc_db_tx_t *tx;            /* the transaction the step runs in */
    avc__q_cb qcb;
    avc__tx_cb tcb;
    void (*work)(void *arg);
    void (*done)(avc_call_t *call, void *arg);
    void *arg;
    void (*arg_free)(void *arg);
    avc_timer_t *timer;
    void (*later)(avc_call_t *call);
    /* the op state of a cancelled call, kept while a thread may use it */
    void *held_op;
    void (*held_free)(void *op);
} avc__step_t;

static void
avc_rollback_done(int err, avc_db_res_t *res, void *data)
{
    /* nothing waits for it: the connection returns to the pool */
}

void
avc__steps_cancel(avc_call_t *call)
{
    if (call->step || call->tx) {
        avc_steps_cancel_hook(call, NULL);
    }
}

static void
avc_steps_cancel_hook(avc_call_t *call, void *ctx)
{
    avc__step_t *st = call->step;
    avc_db_tx_t *tx = call->tx;

    call->step = NULL;
    call->tx = NULL;
    if (st) {
        st->call = NULL;
        if (st->kind == AVC_STEP_QUERY && st->q) {
            /* its callback (AVC_ECANCELED) frees st and rolls back */
            avc_db_cancel(st->q);
            return;
        }
        if (st->kind == AVC_STEP_DELAY) {
            avc_timer_free(st->timer);
            free(st);
            return;
        }
        if (st->kind == AVC_STEP_OFFLOAD) {
            /* the work may be reading the op state: free it after */
            st->held_op = call->op;
            st->held_free = call->op_free;
            call->op = NULL;
            call->op_free = NULL;
            return;
        }
        /* BEGIN, COMMIT and OFFLOAD finish, then see call == NULL */
        return;
    }
    if (tx) {
        avc_db_rollback(tx, avc_rollback_done, NULL);
    }
}

static void
avc_step_attach(avc_call_t *call, avc__step_t *st)
{
    call->step = st;
    avc__call_begin(call, avc_steps_cancel_hook, NULL);
}

static void
avc_query_done(int err, avc_db_res_t *res, void *data)
{
    avc__step_t *st = data;
    avc_call_t *call = st->call;

    if (call == NULL) {
        if (st->tx) {
            avc_db_rollback(st->tx, avc_rollback_done, NULL);
        }
        free(st);
        return;
    }
    call->step = NULL;
    if (err != AVC_OK && err != AVC_EDB) {
        avc_log(AVC_LOG_WARN, "%s %s: query failed: %s", call->method,
                call->path, avc_strerror(err));
    }
    st->qcb(call, err, res);
    free(st);
}

static int
avc_query_start(avc_call_t *call, avc_db_tx_t *tx, const char *sql,
    int named, int nparams, const char *const *params, avc__q_cb cb)
{
    avc__step_t *st;

    if (call->step) {
        return AVC_ESTATE;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->call = call;
    st->kind = AVC_STEP_QUERY;
    st->tx = tx;
    st->qcb = cb;
    st->q = tx ? avc_db_tx_query(tx, sql, named, nparams, params,
                                 avc_query_done, st)
               : avc_db_query(call->app->db, sql, named, nparams, params, 0,
                              avc_query_done, st);
    if (st->q == NULL) {
        free(st);
        return AVC_EDBCONN;
    }
    avc_step_attach(call, st);
    return AVC_OK;
}

int
avc__q(avc_call_t *call, const char *sql, int nparams,
    const char *const *params, avc__q_cb cb)
{
    return avc_query_start(call, NULL, sql, 0, nparams, params, cb);
}

int
avc__qn(avc_call_t *call, const char *name, int nparams,
    const char *const *params, avc__q_cb cb)
{
    return avc_query_start(call, NULL, name, 1, nparams, params, cb);
}

int
avc__txq(avc_call_t *call, const char *sql, int nparams,
    const char *const *params, avc__q_cb cb)
{
    if (call->tx == NULL) {
        return AVC_ESTATE;
    }
    return avc_query_start(call, call->tx, sql, 0, nparams, params, cb);
}

static void
avc_begin_done(int err, avc_db_tx_t *tx, void *data)
{
    avc__step_t *st = data;
    avc_call_t *call = st->call;

    if (call == NULL) {
        if (err == AVC_OK) {
            avc_db_rollback(tx, avc_rollback_done, NULL);
        }
        free(st);
        return;
    }
    call->step = NULL;
    call->tx = err == AVC_OK ? tx : NULL;
    st->tcb(call, err);
    free(st);
}

int
avc__begin(avc_call_t *call, avc__tx_cb cb)
{
    avc__step_t *st;
    int rc;

    if (call->step || call->tx) {
        return AVC_ESTATE;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->call = call;
    st->kind = AVC_STEP_BEGIN;
    st->tcb = cb;
    rc = avc_db_begin(call->app->db, 0, avc_begin_done, st);
    if (rc != AVC_OK) {
        free(st);
        return rc;
    }
    avc_step_attach(call, st);
    return AVC_OK;
}

static void
avc_commit_done(int err, avc_db_res_t *res, void *data)
{
    avc__step_t *st = data;
    avc_call_t *call = st->call;

    if (call != NULL) {
        call->step = NULL;
        st->tcb(call, err);
    }
    free(st);
}

int
avc__commit(avc_call_t *call, avc__tx_cb cb)
{
    avc__step_t *st;
    avc_db_tx_t *tx = call->tx;
    int rc;

    if (call->step || tx == NULL) {
        return AVC_ESTATE;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->call = call;
    st->kind = AVC_STEP_COMMIT;
    st->tcb = cb;
    call->tx = NULL;            /* committing: no longer ours to roll back */
    rc = avc_db_commit(tx, avc_commit_done, st);
    if (rc != AVC_OK) {
        free(st);
        return rc;
    }
    avc_step_attach(call, st);
    return AVC_OK;
}

void
avc__rollback(avc_call_t *call)
{
    if (call->tx) {
        avc_db_rollback(call->tx, avc_rollback_done, NULL);
        call->tx = NULL;
    }
}

static void
avc_offload_work(void *data)
{
    avc__step_t *st = data;

    st->work(st->arg);
}

static void
avc_offload_done(void *data, int status)
{
    avc__step_t *st = data;
    avc_call_t *call = st->call;

    if (call != NULL) {
        call->step = NULL;
        st->done(call, st->arg);
    }
    if (st->arg_free) {
        st->arg_free(st->arg);
    }
    if (st->held_free) {
        st->held_free(st->held_op);
    }
    free(st);
}

int
avc__offload(avc_call_t *call, void (*work)(void *arg),
    void (*done)(avc_call_t *call, void *arg), void *arg,
    void (*arg_free)(void *arg))
{
    avc__step_t *st;
    int rc;

    if (call->step) {
        return AVC_ESTATE;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->call = call;
    st->kind = AVC_STEP_OFFLOAD;
    st->work = work;
    st->done = done;
    st->arg = arg;
    st->arg_free = arg_free;
    rc = avc_offload(call->app->loop, avc_offload_work, avc_offload_done, st);
    if (rc != AVC_OK) {
        free(st);
        return rc;
    }
    avc_step_attach(call, st);
    return AVC_OK;
}

static void
avc_delay_done(avc_timer_t *timer, void *data)
{
    avc__step_t *st = data;
    avc_call_t *call = st->call;

    call->step = NULL;
    avc_timer_free(timer);
    st->later(call);
    free(st);
}

int
avc__delay(avc_call_t *call, uint64_t ms, void (*later)(avc_call_t *call))
{
    avc__step_t *st;

    if (call->step) {
        return AVC_ESTATE;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->call = call;
    st->kind = AVC_STEP_DELAY;
    st->later = later;
    st->timer = avc_timer_new(call->app->loop, avc_delay_done, st);
    if (st->timer == NULL) {
        free(st);
        return AVC_ENOMEM;
    }
    avc_step_attach(call, st);
    avc_timer_start(st->timer, ms);
    return AVC_OK;
}

void
avc__reply_step_error(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc__rollback(call);
    if (err == AVC_EDBCONN || err == AVC_ETIMEDOUT) {
        avc__call_error(call, 503, "Service temporarily unavailable");
        return;
    }
    if (err == AVC_EDB && res) {
        avc_log(AVC_LOG_ERR, "%s %s: database error %s: %s", call->method,
                call->path, avc_db_res_sqlstate(res), avc_db_res_error(res));
    } else {
        avc_log(AVC_LOG_ERR, "%s %s: %s", call->method, call->path,
                avc_strerror(err));
    }
    avc__call_error(call, 500, "Internal server error");
}
