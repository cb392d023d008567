/*
 * avatarcore/loop.h - the event-loop interface the core runs on.
 *
 * The core never blocks.  It talks to the outside only through a loop:
 * watch a file descriptor, run a timer, defer a call to the next loop
 * iteration, and hand CPU-heavy work to a thread pool with a completion
 * callback that runs back on the loop.
 *
 * Two kinds of loop exist:
 *
 *   - a host loop, made with avc_loop_new_host() from a table of host
 *     functions (the nginx module supplies one built on nginx events and
 *     ngx_thread_task_post);
 *   - the built-in loop, made with avc_loop_new(): epoll, a timer heap and
 *     a pthread pool, for tools, tests and other C programs.
 *
 * Objects created on a loop belong to the thread that runs it; none of the
 * functions below is thread-safe unless it says so.
 */
#ifndef AVATARCORE_LOOP_H
#define AVATARCORE_LOOP_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_loop_s avc_loop_t;
typedef struct avc_io_s avc_io_t;
typedef struct avc_timer_s avc_timer_t;

#define AVC_IO_READ  0x01u
#define AVC_IO_WRITE 0x02u
#define AVC_IO_ERROR 0x04u   /* reported only: error or hang-up on the fd */

/* fd readiness: events is a mask of AVC_IO_*. */
typedef void (*avc_io_cb)(avc_io_t *io, int fd, unsigned events, void *data);
typedef void (*avc_timer_cb)(avc_timer_t *timer, void *data);
typedef void (*avc_call_cb)(void *data);
/* Completion of offloaded work, on the loop; status is AVC_OK or
 * AVC_ECANCELED when the loop is being destroyed. */
typedef void (*avc_done_cb)(void *data, int status);

/*
 * The host function table.  Append-only: new members are added at the end
 * and size tells the library which ones the host knows.  Every function
 * receives the host's own pointer given to avc_loop_new_host().
 *
 * Watching: io_add starts level-triggered watching of fd for events and
 * returns a host handle (NULL on failure); whenever the fd is ready the
 * host calls ready(arg, events).  io_mod changes the mask (0 pauses),
 * io_del stops watching (the fd stays open; the core closes it).
 * Timers: timer_new returns a host timer that calls fire(arg) on expiry,
 * timer_start (re)arms it, timer_stop disarms it, timer_free releases it.
 * post: call fn(arg) from the loop soon, not from within the caller.
 * offload: run work(arg) on a pool thread, then done(arg, status) on the
 * loop; returns 0 or -1.  now_ms: a monotonic clock in milliseconds.
 */
typedef struct {
    size_t size;   /* sizeof(avc_loop_host_t) as the host compiled it */
    void *(*io_add)(void *host, int fd, unsigned events,
                    void (*ready)(void *arg, unsigned events), void *arg);
    int (*io_mod)(void *host, void *hio, unsigned events);
    void (*io_del)(void *host, void *hio);
    void *(*timer_new)(void *host, void (*fire)(void *arg), void *arg);
    void (*timer_start)(void *host, void *htimer, uint64_t ms);
    void (*timer_stop)(void *host, void *htimer);
    void (*timer_free)(void *host, void *htimer);
    int (*post)(void *host, void (*fn)(void *arg), void *arg);
    int (*offload)(void *host, void (*work)(void *arg),
                   void (*done)(void *arg, int status), void *arg);
    uint64_t (*now_ms)(void *host);
    /* optional (may be NULL): the timer must not keep the host alive */
    void (*timer_unref)(void *host, void *htimer);
} avc_loop_host_t;

/* A loop over host functions; the table is copied, host is borrowed. */
AVC_API avc_loop_t *avc_loop_new_host(const avc_loop_host_t *fns, void *host);

/*
 * The built-in loop: epoll for fds, a timer heap, and a pool of threads
 * (threads 0 means 4) for avc_offload().
 */
AVC_API avc_loop_t *avc_loop_new(unsigned threads);

/*
 * Destroy a loop.  Every io and timer must already be freed; pending
 * offloaded work is waited for and its completions called with
 * AVC_ECANCELED.  NULL is a no-op.
 */
AVC_API void avc_loop_free(avc_loop_t *loop);

/*
 * Built-in loop only: run until avc_loop_stop() or until nothing is left
 * to wait for (no watched fd, armed timer, deferred call or pending work).
 * Returns AVC_OK, or AVC_ESTATE for a host loop.
 */
AVC_API int avc_loop_run(avc_loop_t *loop);

/* Built-in loop only: one iteration, waiting at most timeout_ms (-1: as
 * long as needed).  Returns the number of callbacks run or an error. */
AVC_API int avc_loop_run_once(avc_loop_t *loop, int timeout_ms);

/* Ask avc_loop_run() to return after the current iteration. */
AVC_API void avc_loop_stop(avc_loop_t *loop);

/* Monotonic milliseconds as the loop sees them. */
AVC_API uint64_t avc_loop_now(avc_loop_t *loop);

/* The data slot for the caller. */
AVC_API void avc_loop_set_data(avc_loop_t *loop, void *data);
AVC_API void *avc_loop_get_data(avc_loop_t *loop);

/*
 * Watch fd for events (AVC_IO_READ | AVC_IO_WRITE).  Returns a new watcher
 * or NULL (out of memory, or the host refused).  Level-triggered: cb is
 * called on every iteration while the fd stays ready.
 */
AVC_API avc_io_t *avc_io_start(avc_loop_t *loop, int fd, unsigned events,
                               avc_io_cb cb, void *data);
/* Change the events watched; 0 pauses the watcher. */
AVC_API int avc_io_update(avc_io_t *io, unsigned events);
/* Stop watching and free the watcher; the fd is not closed.  Safe from
 * within the watcher's own callback.  NULL is a no-op. */
AVC_API void avc_io_stop(avc_io_t *io);

/* A timer, disarmed at creation. */
AVC_API avc_timer_t *avc_timer_new(avc_loop_t *loop, avc_timer_cb cb,
                                   void *data);
/* Arm (or re-arm) to fire once after ms milliseconds. */
AVC_API void avc_timer_start(avc_timer_t *timer, uint64_t ms);
AVC_API void avc_timer_stop(avc_timer_t *timer);
AVC_API int avc_timer_active(const avc_timer_t *timer);
/*
 * Mark a timer as housekeeping (a reconnect backoff, a cache sweep): it
 * does not keep avc_loop_run() running, nor a host from shutting down.
 */
AVC_API void avc_timer_unref(avc_timer_t *timer);
/* Disarm and free; safe from within its own callback; NULL is a no-op. */
AVC_API void avc_timer_free(avc_timer_t *timer);

/* Call fn(data) from the loop on its next iteration. */
AVC_API int avc_post(avc_loop_t *loop, avc_call_cb fn, void *data);

/*
 * Run work(data) on a pool thread, then done(data, status) on the loop.
 * work must touch only data.  Returns AVC_OK or an error (then neither
 * callback is called).
 */
AVC_API int avc_offload(avc_loop_t *loop, avc_call_cb work, avc_done_cb done,
                        void *data);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_LOOP_H */
