/*
 * The built-in loop: fds, timers (order, re-arm, stop, free in callback),
 * deferred calls, offloaded work, unref'd timers, and a host loop built on
 * a table of functions.
 */
#include <avatarcore/loop.h>

#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

static int order[8], norder;

static void
timer_cb(avc_timer_t *t, void *data)
{
    order[norder++] = (int) (long) data;
}

static void
timer_free_self(avc_timer_t *t, void *data)
{
    *(int *) data += 1;
    avc_timer_free(t);
}

static void
post_cb(void *data)
{
    *(int *) data += 1;
}

static pthread_t loop_thread;

static void
work_cb(void *data)
{
    /* runs on a pool thread */
    *(int *) data = pthread_equal(pthread_self(), loop_thread) ? -1 : 1;
}

static void
done_cb(void *data, int status)
{
    int *v = data;

    v[1] = pthread_equal(pthread_self(), loop_thread) ? status + 10 : -1;
}

typedef struct {
    int fds[2];
    int reads;
    char got[16];
    avc_io_t *io;
} pipe_ctx;

static void
io_cb(avc_io_t *io, int fd, unsigned events, void *data)
{
    pipe_ctx *p = data;
    ssize_t n;

    if (events & AVC_IO_READ) {
        n = read(fd, p->got + p->reads, sizeof(p->got) - 1 - p->reads);
        if (n > 0) {
            p->reads += (int) n;
        }
        if (p->reads >= 5) {
            avc_io_stop(io);        /* stopping inside the callback */
            p->io = NULL;
        }
    }
}

static void
write_later(avc_timer_t *t, void *data)
{
    pipe_ctx *p = data;

    (void) !write(p->fds[1], "hello", 5);
    avc_timer_free(t);
}

/* a toy host loop: only enough to show dispatch through the table */
static int host_posts;

static void *h_io_add(void *h, int fd, unsigned ev,
    void (*ready)(void *, unsigned), void *arg) { return NULL; }
static int h_io_mod(void *h, void *io, unsigned ev) { return 0; }
static void h_io_del(void *h, void *io) {}
static void *h_timer_new(void *h, void (*fire)(void *), void *arg)
{ return malloc(1); }
static void h_timer_start(void *h, void *t, uint64_t ms) {}
static void h_timer_stop(void *h, void *t) {}
static void h_timer_free(void *h, void *t) { free(t); }
static int h_post(void *h, void (*fn)(void *), void *arg)
{ host_posts++; fn(arg); return 0; }
static int h_offload(void *h, void (*w)(void *),
    void (*d)(void *, int), void *arg) { w(arg); d(arg, 0); return 0; }
static uint64_t h_now(void *h) { return 42; }

int
main(void)
{
    avc_loop_t *loop, *host;
    avc_timer_t *t1, *t2, *t3, *t4, *weak;
    pipe_ctx p;
    int posted = 0, freed = 0, work[2] = { 0, 0 };
    uint64_t t0;

    loop_thread = pthread_self();
    loop = avc_loop_new(2);
    TAP_OK(loop != NULL, "built-in loop created");

    t1 = avc_timer_new(loop, timer_cb, (void *) 1L);
    t2 = avc_timer_new(loop, timer_cb, (void *) 2L);
    t3 = avc_timer_new(loop, timer_cb, (void *) 3L);
    t4 = avc_timer_new(loop, timer_free_self, &freed);
    avc_timer_start(t1, 60);
    avc_timer_start(t2, 20);
    avc_timer_start(t3, 40);
    avc_timer_start(t3, 80);        /* re-armed: now last */
    avc_timer_start(t4, 10);
    TAP_OK(avc_timer_active(t3), "an armed timer is active");
    avc_post(loop, post_cb, &posted);
    t0 = avc_loop_now(loop);
    TAP_IS(avc_loop_run(loop), AVC_OK, "loop runs until nothing is left");
    TAP_OK(avc_loop_now(loop) - t0 >= 75, "it waited for the last timer");
    TAP_IS(norder, 3, "three timers fired");
    TAP_OK(order[0] == 2 && order[1] == 1 && order[2] == 3,
           "in deadline order, a re-armed timer moved");
    TAP_IS(posted, 1, "a deferred call ran once");
    TAP_IS(freed, 1, "a timer freed itself in its callback");
    TAP_OK(!avc_timer_active(t1), "a fired timer is inactive");

    /* a stopped timer does not fire */
    norder = 0;
    avc_timer_start(t1, 10);
    avc_timer_stop(t1);
    avc_loop_run(loop);
    TAP_IS(norder, 0, "a stopped timer does not fire");

    /* an unref'd timer does not keep the loop running */
    weak = avc_timer_new(loop, timer_cb, (void *) 7L);
    avc_timer_unref(weak);
    avc_timer_start(weak, 5000);
    t0 = avc_loop_now(loop);
    avc_loop_run(loop);
    TAP_OK(avc_loop_now(loop) - t0 < 1000,
           "an unref'd timer does not keep the loop alive");
    avc_timer_free(weak);

    /* fds */
    memset(&p, 0, sizeof(p));
    TAP_OK(pipe(p.fds) == 0, "pipe");
    p.io = avc_io_start(loop, p.fds[0], AVC_IO_READ, io_cb, &p);
    TAP_OK(p.io != NULL, "watching a pipe");
    avc_timer_start(avc_timer_new(loop, write_later, &p), 20);
    avc_loop_run(loop);
    TAP_STR(p.got, "hello", "data read when the fd became readable");
    TAP_OK(p.io == NULL, "the watcher stopped itself");
    close(p.fds[0]);
    close(p.fds[1]);

    /* offloaded work runs off the loop thread, completes on it */
    TAP_IS(avc_offload(loop, work_cb, done_cb, work), AVC_OK, "offload");
    avc_loop_run(loop);
    TAP_IS(work[0], 1, "work ran on a pool thread");
    TAP_IS(work[1], 10 + AVC_OK, "completion ran on the loop thread, OK");

    avc_timer_free(t1);
    avc_timer_free(t2);
    avc_timer_free(t3);
    avc_loop_free(loop);

    /* a host loop dispatches through its table */
    {
        avc_loop_host_t fns = {
            sizeof(avc_loop_host_t), h_io_add, h_io_mod, h_io_del,
            h_timer_new, h_timer_start, h_timer_stop, h_timer_free, h_post,
            h_offload, h_now, NULL
        };
        int v = 0;

        host = avc_loop_new_host(&fns, NULL);
        TAP_OK(host != NULL, "host loop created");
        TAP_IS(avc_loop_now(host), 42, "host clock");
        avc_post(host, post_cb, &v);
        TAP_IS(host_posts, 1, "post goes to the host");
        TAP_IS(v, 1, "... which runs it");
        TAP_IS(avc_loop_run(host), AVC_ESTATE,
               "a host loop cannot be run by the library");
        TAP_OK(avc_io_start(host, 0, AVC_IO_READ,
                            (avc_io_cb) io_cb, NULL) == NULL,
               "a host refusing a watcher is an error");
        fns.size = 8;
        TAP_OK(avc_loop_new_host(&fns, NULL) == NULL,
               "a truncated host table is refused");
        avc_loop_free(host);
    }
    return tap_done();
}
