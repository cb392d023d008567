/*
 * The core's loop interface on nginx: fds are watched through nginx
 * connections with level-triggered events (libcurl and libpq do not
 * promise to drain a socket, so edge triggering would lose wake-ups),
 * timers are nginx timers, deferred calls are posted events, and offloaded
 * work runs on an nginx thread pool.
 */

#include "ngx_http_avatar_module.h"


typedef struct {
    ngx_connection_t          *c;
    void                     (*ready)(void *arg, unsigned events);
    void                      *arg;
} ngx_http_avatar_io_t;


typedef struct {
    ngx_event_t                ev;
    void                     (*fire)(void *arg);
    void                      *arg;
} ngx_http_avatar_timer_t;


typedef struct {
    ngx_event_t                ev;
    void                     (*fn)(void *arg);
    void                      *arg;
} ngx_http_avatar_post_t;


typedef struct {
    void                     (*work)(void *arg);
    void                     (*done)(void *arg, int status);
    void                      *arg;
} ngx_http_avatar_work_t;


static ngx_thread_pool_t  *ngx_http_avatar_tp;


static void
ngx_http_avatar_io_handler(ngx_event_t *ev)
{
    ngx_connection_t      *c = ev->data;
    ngx_http_avatar_io_t  *io = c->data;
    unsigned               events;

    events = ev->write ? AVC_IO_WRITE : AVC_IO_READ;

    if (ev->error || ev->eof) {
        events |= AVC_IO_ERROR;
    }

    /* the callback may stop the watcher and free the connection */
    io->ready(io->arg, events);
}


static ngx_int_t
ngx_http_avatar_io_set(ngx_http_avatar_io_t *io, unsigned events)
{
    ngx_connection_t  *c = io->c;

    if ((events & AVC_IO_READ) && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!(events & AVC_IO_READ) && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if ((events & AVC_IO_WRITE) && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!(events & AVC_IO_WRITE) && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_avatar_io_free(ngx_http_avatar_io_t *io)
{
    ngx_uint_t         flags;
    ngx_connection_t  *c = io->c;

    /*
     * libpq closes its socket itself when the server goes away, before
     * the core can stop watching it; the kernel has then already dropped
     * it from epoll, and asking again would fail
     */

    flags = 0;

    if (fcntl(c->fd, F_GETFD) == -1 && ngx_errno == NGX_EBADF) {
        flags = NGX_CLOSE_EVENT;
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    /* the fd belongs to the core: nginx must not close it */
    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    ngx_free(io);
}


static void *
ngx_http_avatar_io_add(void *host, int fd, unsigned events,
    void (*ready)(void *arg, unsigned events), void *arg)
{
    ngx_connection_t      *c;
    ngx_http_avatar_io_t  *io;

    io = ngx_alloc(sizeof(ngx_http_avatar_io_t), ngx_cycle->log);
    if (io == NULL) {
        return NULL;
    }

    c = ngx_get_connection(fd, ngx_cycle->log);
    if (c == NULL) {
        ngx_free(io);
        return NULL;
    }

    io->c = c;
    io->ready = ready;
    io->arg = arg;

    c->data = io;
    c->read->handler = ngx_http_avatar_io_handler;
    c->write->handler = ngx_http_avatar_io_handler;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;

    if (ngx_http_avatar_io_set(io, events) != NGX_OK) {
        ngx_http_avatar_io_free(io);
        return NULL;
    }

    return io;
}


static int
ngx_http_avatar_io_mod(void *host, void *hio, unsigned events)
{
    return ngx_http_avatar_io_set(hio, events) == NGX_OK ? 0 : -1;
}


static void
ngx_http_avatar_io_del(void *host, void *hio)
{
    ngx_http_avatar_io_free(hio);
}


static void
ngx_http_avatar_timer_handler(ngx_event_t *ev)
{
    ngx_http_avatar_timer_t  *t = ev->data;

    t->fire(t->arg);
}


static void *
ngx_http_avatar_timer_new(void *host, void (*fire)(void *arg), void *arg)
{
    ngx_http_avatar_timer_t  *t;

    t = ngx_calloc(sizeof(ngx_http_avatar_timer_t), ngx_cycle->log);
    if (t == NULL) {
        return NULL;
    }

    t->fire = fire;
    t->arg = arg;
    t->ev.handler = ngx_http_avatar_timer_handler;
    t->ev.data = t;
    t->ev.log = ngx_cycle->log;

    return t;
}


static void
ngx_http_avatar_timer_start(void *host, void *htimer, uint64_t ms)
{
    ngx_http_avatar_timer_t  *t = htimer;

    /*
     * ngx_add_timer() keeps an armed timer whose new deadline is within
     * NGX_TIMER_LAZY_DELAY (300 ms) of the old one; the core's timers
     * (libcurl's "now" among them) must fire when asked: re-arm exactly
     */
    if (t->ev.timer_set) {
        ngx_del_timer(&t->ev);
    }

    ngx_add_timer(&t->ev, (ngx_msec_t) ms);
}


static void
ngx_http_avatar_timer_stop(void *host, void *htimer)
{
    ngx_http_avatar_timer_t  *t = htimer;

    if (t->ev.timer_set) {
        ngx_del_timer(&t->ev);
    }
}


static void
ngx_http_avatar_timer_free(void *host, void *htimer)
{
    ngx_http_avatar_timer_stop(host, htimer);
    ngx_free(htimer);
}


static void
ngx_http_avatar_timer_unref(void *host, void *htimer)
{
    ngx_http_avatar_timer_t  *t = htimer;

    /* a housekeeping timer must not delay a graceful shutdown */
    t->ev.cancelable = 1;
}


static void
ngx_http_avatar_post_handler(ngx_event_t *ev)
{
    ngx_http_avatar_post_t  *p = ev->data;
    void                   (*fn)(void *arg) = p->fn;
    void                    *arg = p->arg;

    ngx_free(p);
    fn(arg);
}


static int
ngx_http_avatar_post(void *host, void (*fn)(void *arg), void *arg)
{
    ngx_http_avatar_post_t  *p;

    p = ngx_calloc(sizeof(ngx_http_avatar_post_t), ngx_cycle->log);
    if (p == NULL) {
        return -1;
    }

    p->fn = fn;
    p->arg = arg;
    p->ev.handler = ngx_http_avatar_post_handler;
    p->ev.data = p;
    p->ev.log = ngx_cycle->log;

    ngx_post_event(&p->ev, &ngx_posted_events);

    return 0;
}


static void
ngx_http_avatar_work_handler(void *data, ngx_log_t *log)
{
    ngx_http_avatar_work_t  *w = data;

    w->work(w->arg);
}


static void
ngx_http_avatar_work_done(ngx_event_t *ev)
{
    ngx_thread_task_t       *task = ev->data;
    ngx_http_avatar_work_t  *w = task->ctx;

    w->done(w->arg, AVC_OK);
    ngx_free(task);
}


static int
ngx_http_avatar_offload(void *host, void (*work)(void *arg),
    void (*done)(void *arg, int status), void *arg)
{
    ngx_thread_task_t       *task;
    ngx_http_avatar_work_t  *w;

    if (ngx_http_avatar_tp == NULL) {
        return -1;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_avatar_work_t), ngx_cycle->log);
    if (task == NULL) {
        return -1;
    }

    w = (ngx_http_avatar_work_t *) (task + 1);
    w->work = work;
    w->done = done;
    w->arg = arg;

    task->ctx = w;
    task->handler = ngx_http_avatar_work_handler;
    task->event.handler = ngx_http_avatar_work_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(ngx_http_avatar_tp, task) != NGX_OK) {
        ngx_free(task);
        return -1;
    }

    return 0;
}


static uint64_t
ngx_http_avatar_now(void *host)
{
    return (uint64_t) ngx_current_msec;
}


avc_loop_t *
ngx_http_avatar_loop_create(ngx_cycle_t *cycle, ngx_thread_pool_t *tp)
{
    static avc_loop_host_t  fns = {
        sizeof(avc_loop_host_t),
        ngx_http_avatar_io_add,
        ngx_http_avatar_io_mod,
        ngx_http_avatar_io_del,
        ngx_http_avatar_timer_new,
        ngx_http_avatar_timer_start,
        ngx_http_avatar_timer_stop,
        ngx_http_avatar_timer_free,
        ngx_http_avatar_post,
        ngx_http_avatar_offload,
        ngx_http_avatar_now,
        ngx_http_avatar_timer_unref
    };

    ngx_http_avatar_tp = tp;

    return avc_loop_new_host(&fns, cycle);
}


void
ngx_http_avatar_log_handler(void *data, avc_log_level_t level,
    const char *msg)
{
    ngx_uint_t  nl;

    switch (level) {
    case AVC_LOG_ERR:
        nl = NGX_LOG_ERR;
        break;
    case AVC_LOG_WARN:
        nl = NGX_LOG_WARN;
        break;
    case AVC_LOG_NOTICE:
        nl = NGX_LOG_NOTICE;
        break;
    case AVC_LOG_INFO:
        nl = NGX_LOG_INFO;
        break;
    default:
        nl = NGX_LOG_DEBUG;
        break;
    }

    ngx_log_error(nl, ngx_cycle->log, 0, "avatar: %s", msg);
}
