/*
 * The loop: a thin dispatch over host functions, and the built-in loop
 * (epoll, a binary timer heap, a FIFO of deferred calls and a pthread
 * pool whose completions come back through an eventfd).
 *
 * Invariants of the built-in loop:
 *   - a stopped io is unlinked at once but freed only at the end of the
 *     iteration, because the current epoll batch may still name it;
 *   - a timer is in the heap iff armed (heap_index != -1);
 *   - work items are owned by the pool queue, then by the done queue, then
 *     by the loop thread, which frees them after calling done().
 */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

typedef struct avc_call_s {
    struct avc_call_s *next;
    avc_call_cb fn;
    void *data;
} avc_call_t;

typedef struct avc_work_s {
    struct avc_work_s *next;
    avc_call_cb work;
    avc_done_cb done;
    void *data;
} avc_work_t;

struct avc_io_s {
    avc_loop_t *loop;
    int fd;
    unsigned events;
    int dead;
    avc_io_cb cb;
    void *data;
    void *hio;                  /* host handle */
    struct avc_io_s *next_dead;
};

struct avc_timer_s {
    avc_loop_t *loop;
    avc_timer_cb cb;
    void *data;
    uint64_t due;
    long heap_index;            /* -1 when disarmed */
    int armed;                  /* host loops */
    int unref;
    void *htimer;               /* host handle */
};

struct avc_loop_s {
    int builtin;
    avc_loop_host_t host;
    void *host_data;
    void *data;

    /* built-in only */
    int epfd;
    int wakefd;
    int stop;
    unsigned active_ios;
    avc_io_t *dead_ios;
    avc_timer_t **heap;
    size_t heap_len;
    size_t heap_cap;
    avc_call_t *calls_head;
    avc_call_t *calls_tail;

    pthread_mutex_t mtx;
    pthread_cond_t cond;
    pthread_t *threads;
    unsigned nthreads;
    int quit;
    avc_work_t *queue_head;
    avc_work_t *queue_tail;
    avc_work_t *done_head;
    avc_work_t *done_tail;
    unsigned pending_work;      /* loop thread only */
    unsigned unref_armed;       /* armed timers that do not count */
};

int
avc__loop_is_builtin(const avc_loop_t *loop)
{
    return loop->builtin;
}

static uint64_t
avc_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* host loops */

AVC_API avc_loop_t *
avc_loop_new_host(const avc_loop_host_t *fns, void *host)
{
    avc_loop_t *loop;

    if (fns == NULL
        || fns->size < offsetof(avc_loop_host_t, timer_unref)
        || !fns->io_add || !fns->io_mod || !fns->io_del || !fns->timer_new
        || !fns->timer_start || !fns->timer_stop || !fns->timer_free
        || !fns->post || !fns->offload || !fns->now_ms)
    {
        return NULL;
    }
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    memcpy(&loop->host, fns, fns->size < sizeof(avc_loop_host_t)
                             ? fns->size : sizeof(avc_loop_host_t));
    loop->host_data = host;
    loop->epfd = -1;
    loop->wakefd = -1;
    return loop;
}

/* the thread pool of the built-in loop */

static void *
avc_pool_main(void *arg)
{
    avc_loop_t *loop = arg;
    avc_work_t *w;
    uint64_t one = 1;
    ssize_t n;

    pthread_mutex_lock(&loop->mtx);
    for ( ;; ) {
        while (loop->queue_head == NULL && !loop->quit) {
            pthread_cond_wait(&loop->cond, &loop->mtx);
        }
        if (loop->queue_head == NULL) {
            break;
        }
        w = loop->queue_head;
        loop->queue_head = w->next;
        if (loop->queue_head == NULL) {
            loop->queue_tail = NULL;
        }
        pthread_mutex_unlock(&loop->mtx);

        w->work(w->data);

        pthread_mutex_lock(&loop->mtx);
        w->next = NULL;
        if (loop->done_tail) {
            loop->done_tail->next = w;
        } else {
            loop->done_head = w;
        }
        loop->done_tail = w;
        do {
            n = write(loop->wakefd, &one, sizeof(one));
        } while (n < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&loop->mtx);
    return NULL;
}

AVC_API avc_loop_t *
avc_loop_new(unsigned threads)
{
    avc_loop_t *loop;
    struct epoll_event ev;
    unsigned i;

    loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    loop->builtin = 1;
    loop->nthreads = threads ? threads : 4;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    loop->threads = calloc(loop->nthreads, sizeof(pthread_t));
    if (loop->epfd < 0 || loop->wakefd < 0 || loop->threads == NULL) {
        goto failed;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;                 /* NULL marks the wake fd */
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) != 0) {
        goto failed;
    }
    pthread_mutex_init(&loop->mtx, NULL);
    pthread_cond_init(&loop->cond, NULL);
    for (i = 0; i < loop->nthreads; i++) {
        if (pthread_create(&loop->threads[i], NULL, avc_pool_main, loop)
            != 0)
        {
            loop->nthreads = i;
            avc_loop_free(loop);
            return NULL;
        }
    }
    return loop;

failed:
    if (loop->epfd >= 0) {
        close(loop->epfd);
    }
    if (loop->wakefd >= 0) {
        close(loop->wakefd);
    }
    free(loop->threads);
    free(loop);
    return NULL;
}

static void avc_run_done(avc_loop_t *loop);
static void avc_free_dead(avc_loop_t *loop);

AVC_API void
avc_loop_free(avc_loop_t *loop)
{
    unsigned i;
    avc_call_t *c;
    avc_work_t *w;

    if (loop == NULL) {
        return;
    }
    if (!loop->builtin) {
        free(loop);
        return;
    }
    pthread_mutex_lock(&loop->mtx);
    loop->quit = 1;
    /* work not yet started is cancelled, work started is waited for */
    while ((w = loop->queue_head) != NULL) {
        loop->queue_head = w->next;
        w->next = NULL;
        if (loop->done_tail) {
            loop->done_tail->next = w;
        } else {
            loop->done_head = w;
        }
        loop->done_tail = w;
        w->work = NULL;
    }
    loop->queue_tail = NULL;
    pthread_cond_broadcast(&loop->cond);
    pthread_mutex_unlock(&loop->mtx);
    for (i = 0; i < loop->nthreads; i++) {
        pthread_join(loop->threads[i], NULL);
    }
    avc_run_done(loop);
    while ((c = loop->calls_head) != NULL) {
        loop->calls_head = c->next;
        free(c);
    }
    avc_free_dead(loop);
    pthread_mutex_destroy(&loop->mtx);
    pthread_cond_destroy(&loop->cond);
    close(loop->epfd);
    close(loop->wakefd);
    free(loop->threads);
    free(loop->heap);
    free(loop);
}

AVC_API uint64_t
avc_loop_now(avc_loop_t *loop)
{
    if (!loop->builtin) {
        return loop->host.now_ms(loop->host_data);
    }
    return avc_mono_ms();
}

AVC_API void
avc_loop_set_data(avc_loop_t *loop, void *data)
{
    loop->data = data;
}

AVC_API void *
avc_loop_get_data(avc_loop_t *loop)
{
    return loop->data;
}

/* fd watchers */

static void
avc_io_host_ready(void *arg, unsigned events)
{
    avc_io_t *io = arg;

    io->cb(io, io->fd, events, io->data);
}

static uint32_t
avc_epoll_mask(unsigned events)
{
    uint32_t m = 0;

    if (events & AVC_IO_READ) {
        m |= EPOLLIN | EPOLLRDHUP;
    }
    if (events & AVC_IO_WRITE) {
        m |= EPOLLOUT;
    }
    return m;
}

AVC_API avc_io_t *
avc_io_start(avc_loop_t *loop, int fd, unsigned events, avc_io_cb cb,
    void *data)
{
    avc_io_t *io;
    struct epoll_event ev;

    if (fd < 0 || cb == NULL) {
        return NULL;
    }
    io = calloc(1, sizeof(*io));
    if (io == NULL) {
        return NULL;
    }
    io->loop = loop;
    io->fd = fd;
    io->events = events & (AVC_IO_READ | AVC_IO_WRITE);
    io->cb = cb;
    io->data = data;

    if (!loop->builtin) {
        io->hio = loop->host.io_add(loop->host_data, fd, io->events,
                                    avc_io_host_ready, io);
        if (io->hio == NULL) {
            free(io);
            return NULL;
        }
        return io;
    }

    memset(&ev, 0, sizeof(ev));
    ev.events = avc_epoll_mask(io->events);
    ev.data.ptr = io;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(io);
        return NULL;
    }
    if (io->events) {
        loop->active_ios++;
    }
    return io;
}

AVC_API int
avc_io_update(avc_io_t *io, unsigned events)
{
    avc_loop_t *loop = io->loop;
    struct epoll_event ev;

    events &= AVC_IO_READ | AVC_IO_WRITE;
    if (io->dead) {
        return AVC_ESTATE;
    }
    if (!loop->builtin) {
        if (loop->host.io_mod(loop->host_data, io->hio, events) != 0) {
            return AVC_ESYS;
        }
        io->events = events;
        return AVC_OK;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = avc_epoll_mask(events);
    ev.data.ptr = io;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) {
        return AVC_ESYS;
    }
    if (io->events && !events) {
        loop->active_ios--;
    } else if (!io->events && events) {
        loop->active_ios++;
    }
    io->events = events;
    return AVC_OK;
}

AVC_API void
avc_io_stop(avc_io_t *io)
{
    avc_loop_t *loop;

    if (io == NULL || io->dead) {
        return;
    }
    loop = io->loop;
    if (!loop->builtin) {
        loop->host.io_del(loop->host_data, io->hio);
        free(io);
        return;
    }
    /* the fd may already be closed by its owner: ignore EBADF */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    if (io->events) {
        loop->active_ios--;
    }
    io->dead = 1;
    io->next_dead = loop->dead_ios;
    loop->dead_ios = io;
}

static void
avc_free_dead(avc_loop_t *loop)
{
    avc_io_t *io;

    while ((io = loop->dead_ios) != NULL) {
        loop->dead_ios = io->next_dead;
        free(io);
    }
}

/* timers */

static void
avc_timer_host_fire(void *arg)
{
    avc_timer_t *t = arg;

    t->armed = 0;
    t->cb(t, t->data);
}

AVC_API avc_timer_t *
avc_timer_new(avc_loop_t *loop, avc_timer_cb cb, void *data)
{
    avc_timer_t *t;

    if (cb == NULL) {
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->loop = loop;
    t->cb = cb;
    t->data = data;
    t->heap_index = -1;
    if (!loop->builtin) {
        t->htimer = loop->host.timer_new(loop->host_data, avc_timer_host_fire,
                                         t);
        if (t->htimer == NULL) {
            free(t);
            return NULL;
        }
    }
    return t;
}

static void
avc_heap_swap(avc_loop_t *loop, size_t a, size_t b)
{
    avc_timer_t *t = loop->heap[a];

    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = (long) a;
    loop->heap[b]->heap_index = (long) b;
}

static int
avc_heap_less(avc_loop_t *loop, size_t a, size_t b)
{
    return loop->heap[a]->due < loop->heap[b]->due;
}

static void
avc_heap_up(avc_loop_t *loop, size_t i)
{
    while (i > 0 && avc_heap_less(loop, i, (i - 1) / 2)) {
        avc_heap_swap(loop, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
avc_heap_down(avc_loop_t *loop, size_t i)
{
    size_t l, r, m;

    for ( ;; ) {
        l = 2 * i + 1;
        r = l + 1;
        m = i;
        if (l < loop->heap_len && avc_heap_less(loop, l, m)) {
            m = l;
        }
        if (r < loop->heap_len && avc_heap_less(loop, r, m)) {
            m = r;
        }
        if (m == i) {
            return;
        }
        avc_heap_swap(loop, i, m);
        i = m;
    }
}

static void
avc_heap_remove(avc_loop_t *loop, avc_timer_t *t)
{
    size_t i = (size_t) t->heap_index, last = loop->heap_len - 1;

    if (i != last) {
        avc_heap_swap(loop, i, last);
    }
    loop->heap_len--;
    t->heap_index = -1;
    if (t->unref) {
        loop->unref_armed--;
    }
    if (i < loop->heap_len) {
        avc_heap_down(loop, i);
        avc_heap_up(loop, i);
    }
}

AVC_API void
avc_timer_start(avc_timer_t *t, uint64_t ms)
{
    avc_loop_t *loop = t->loop;
    avc_timer_t **heap;
    size_t cap;

    if (!loop->builtin) {
        loop->host.timer_start(loop->host_data, t->htimer, ms);
        t->armed = 1;
        return;
    }
    if (t->heap_index >= 0) {
        avc_heap_remove(loop, t);
    }
    t->due = avc_mono_ms() + ms;
    if (loop->heap_len == loop->heap_cap) {
        cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        heap = realloc(loop->heap, cap * sizeof(*heap));
        if (heap == NULL) {
            /* cannot arm: fire on the next iteration instead of never */
            avc_log(AVC_LOG_ERR, "timer heap: out of memory");
            return;
        }
        loop->heap = heap;
        loop->heap_cap = cap;
    }
    loop->heap[loop->heap_len] = t;
    t->heap_index = (long) loop->heap_len++;
    if (t->unref) {
        loop->unref_armed++;
    }
    avc_heap_up(loop, (size_t) t->heap_index);
}

AVC_API void
avc_timer_stop(avc_timer_t *t)
{
    avc_loop_t *loop = t->loop;

    if (!loop->builtin) {
        if (t->armed) {
            loop->host.timer_stop(loop->host_data, t->htimer);
            t->armed = 0;
        }
        return;
    }
    if (t->heap_index >= 0) {
        avc_heap_remove(loop, t);
    }
}

AVC_API int
avc_timer_active(const avc_timer_t *t)
{
    return t->loop->builtin ? t->heap_index >= 0 : t->armed;
}

AVC_API void
avc_timer_unref(avc_timer_t *t)
{
    avc_loop_t *loop = t->loop;

    if (t->unref) {
        return;
    }
    t->unref = 1;
    if (!loop->builtin) {
        if (loop->host.size >= sizeof(avc_loop_host_t)
            && loop->host.timer_unref)
        {
            loop->host.timer_unref(loop->host_data, t->htimer);
        }
        return;
    }
    if (t->heap_index >= 0) {
        loop->unref_armed++;
    }
}

AVC_API void
avc_timer_free(avc_timer_t *t)
{
    if (t == NULL) {
        return;
    }
    avc_timer_stop(t);
    if (!t->loop->builtin) {
        t->loop->host.timer_free(t->loop->host_data, t->htimer);
    }
    free(t);
}

/* deferred calls and offloaded work */

AVC_API int
avc_post(avc_loop_t *loop, avc_call_cb fn, void *data)
{
    avc_call_t *c;

    if (fn == NULL) {
        return AVC_EINVAL;
    }
    if (!loop->builtin) {
        return loop->host.post(loop->host_data, fn, data) == 0
               ? AVC_OK : AVC_ENOMEM;
    }
    c = malloc(sizeof(*c));
    if (c == NULL) {
        return AVC_ENOMEM;
    }
    c->next = NULL;
    c->fn = fn;
    c->data = data;
    if (loop->calls_tail) {
        loop->calls_tail->next = c;
    } else {
        loop->calls_head = c;
    }
    loop->calls_tail = c;
    return AVC_OK;
}

AVC_API int
avc_offload(avc_loop_t *loop, avc_call_cb work, avc_done_cb done, void *data)
{
    avc_work_t *w;

    if (work == NULL || done == NULL) {
        return AVC_EINVAL;
    }
    if (!loop->builtin) {
        return loop->host.offload(loop->host_data, work, done, data) == 0
               ? AVC_OK : AVC_ENOMEM;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        return AVC_ENOMEM;
    }
    w->next = NULL;
    w->work = work;
    w->done = done;
    w->data = data;
    pthread_mutex_lock(&loop->mtx);
    if (loop->queue_tail) {
        loop->queue_tail->next = w;
    } else {
        loop->queue_head = w;
    }
    loop->queue_tail = w;
    pthread_cond_signal(&loop->cond);
    pthread_mutex_unlock(&loop->mtx);
    loop->pending_work++;
    return AVC_OK;
}

static void
avc_run_done(avc_loop_t *loop)
{
    avc_work_t *w, *next;
    uint64_t v;
    ssize_t n;

    do {
        n = read(loop->wakefd, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);

    pthread_mutex_lock(&loop->mtx);
    w = loop->done_head;
    loop->done_head = loop->done_tail = NULL;
    pthread_mutex_unlock(&loop->mtx);

    for ( ; w; w = next) {
        next = w->next;
        loop->pending_work--;
        w->done(w->data, w->work ? AVC_OK : AVC_ECANCELED);
        free(w);
    }
}

/* running the built-in loop */

AVC_API int
avc_loop_run_once(avc_loop_t *loop, int timeout_ms)
{
    struct epoll_event evs[64];
    avc_call_t *c, *calls;
    avc_timer_t *t;
    avc_io_t *io;
    uint64_t now;
    unsigned m;
    int n, i, ran = 0;

    if (!loop->builtin) {
        return AVC_ESTATE;
    }
    if (loop->calls_head) {
        timeout_ms = 0;
    } else if (loop->heap_len) {
        now = avc_mono_ms();
        t = loop->heap[0];
        if (t->due <= now) {
            timeout_ms = 0;
        } else if (timeout_ms < 0 || t->due - now < (uint64_t) timeout_ms) {
            timeout_ms = (int) (t->due - now);
        }
    }

    n = epoll_wait(loop->epfd, evs, (int) avc__countof(evs), timeout_ms);
    if (n < 0 && errno != EINTR) {
        return AVC_ESYS;
    }
    for (i = 0; i < n; i++) {
        io = evs[i].data.ptr;
        if (io == NULL) {
            avc_run_done(loop);
            ran++;
            continue;
        }
        if (io->dead) {
            continue;
        }
        m = 0;
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP)) {
            m |= AVC_IO_READ;
        }
        if (evs[i].events & EPOLLOUT) {
            m |= AVC_IO_WRITE;
        }
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
            m |= AVC_IO_ERROR | (io->events & (AVC_IO_READ | AVC_IO_WRITE));
        }
        m &= io->events | AVC_IO_ERROR;
        if (m) {
            io->cb(io, io->fd, m, io->data);
            ran++;
        }
    }

    now = avc_mono_ms();
    while (loop->heap_len && loop->heap[0]->due <= now) {
        t = loop->heap[0];
        avc_heap_remove(loop, t);
        t->cb(t, t->data);
        ran++;
    }

    /* calls posted by these calls run on the next iteration */
    calls = loop->calls_head;
    loop->calls_head = loop->calls_tail = NULL;
    while ((c = calls) != NULL) {
        calls = c->next;
        c->fn(c->data);
        free(c);
        ran++;
    }

    avc_free_dead(loop);
    return ran;
}

AVC_API int
avc_loop_run(avc_loop_t *loop)
{
    int rc;

    if (!loop->builtin) {
        return AVC_ESTATE;
    }
    loop->stop = 0;
    while (!loop->stop) {
        if (loop->active_ios == 0 && loop->heap_len == loop->unref_armed
            && loop->calls_head == NULL && loop->pending_work == 0)
        {
            break;
        }
        rc = avc_loop_run_once(loop, -1);
        if (rc < 0) {
            return rc;
        }
    }
    return AVC_OK;
}

AVC_API void
avc_loop_stop(avc_loop_t *loop)
{
    loop->stop = 1;
}
