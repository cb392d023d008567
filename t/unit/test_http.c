/*
 * The HTTP client against a small HTTP/1.1 server run by this test on
 * 127.0.0.1 (one thread per connection; see "the server" below).
 *
 * Time bounds are ratios or generous margins, so that a busy 2-core
 * machine, or valgrind, does not make the test flaky.
 */
#include "tap.h"

#include <avatarcore/http.h>
#include <avatarcore/multipart.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* the server */

#define SRV_MAX_CONNS  1024
#define SRV_TAGS       64

typedef struct {
    int lfd;
    int port;
    pthread_t accept_thr;
    pthread_mutex_t mu;
    pthread_t conns[SRV_MAX_CONNS];
    int nconns;
    int accepts;
    int hits[SRV_TAGS];             /* /flaky counters by key */
    uint64_t closed_ms[SRV_TAGS];   /* when a tagged client went away */
} srv_t;

static srv_t srv;

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} conn_t;

static long
param(const char *path, const char *name, long def)
{
    char key[32];
    const char *p;

    snprintf(key, sizeof(key), "%s=", name);
    p = strchr(path, '?');
    while (p != NULL) {
        p++;
        if (strncmp(p, key, strlen(key)) == 0) {
            return strtol(p + strlen(key), NULL, 10);
        }
        p = strchr(p, '&');
    }
    return def;
}

static int
send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    ssize_t w;

    while (n > 0) {
        w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        s += w;
        n -= (size_t) w;
    }
    return 0;
}

static int
send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

/* Wait up to ms; 1 when the peer closed (or reset) meanwhile. */
static int
peer_closed(int fd, int ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    char c;
    ssize_t n;

    if (poll(&pfd, 1, ms) <= 0) {
        return 0;
    }
    n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

static void
mark_closed(long tag)
{
    if (tag > 0 && tag < SRV_TAGS) {
        pthread_mutex_lock(&srv.mu);
        srv.closed_ms[tag] = now_ms();
        pthread_mutex_unlock(&srv.mu);
    }
}

static uint64_t
closed_at(long tag)
{
    uint64_t t;

    pthread_mutex_lock(&srv.mu);
    t = srv.closed_ms[tag];
    pthread_mutex_unlock(&srv.mu);
    return t;
}

static int
accepts(void)
{
    int n;

    pthread_mutex_lock(&srv.mu);
    n = srv.accepts;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

/* Read one request; returns the header length or -1 at EOF. */
static int
read_request(conn_t *c, char *method, char *path, char **body,
    size_t *body_len, char *ctype, char *ua, int *gzip_ok)
{
    char *end, *line;
    size_t hlen, clen = 0, need;
    ssize_t n;

    for ( ;; ) {
        c->buf[c->len] = '\0';
        end = strstr(c->buf, "\r\n\r\n");
        if (end != NULL) {
            break;
        }
        if (c->len >= sizeof(c->buf) - 1) {
            return -1;
        }
        n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        c->len += (size_t) n;
    }
    hlen = (size_t) (end - c->buf) + 4;
    *end = '\0';
    if (sscanf(c->buf, "%15s %1023s", method, path) != 2) {
        return -1;
    }
    ctype[0] = ua[0] = '\0';
    *gzip_ok = 0;
    for (line = strstr(c->buf, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            clen = (size_t) strtoul(line + 15, NULL, 10);
        } else if (strncasecmp(line, "Content-Type:", 13) == 0) {
            sscanf(line + 13, " %255[^\r]", ctype);
        } else if (strncasecmp(line, "User-Agent:", 11) == 0) {
            sscanf(line + 11, " %255[^\r]", ua);
        } else if (strncasecmp(line, "Accept-Encoding:", 16) == 0) {
            *gzip_ok = strstr(line, "gzip") != NULL;
        }
    }
    need = hlen + clen;
    if (need >= sizeof(c->buf)) {
        return -1;
    }
    while (c->len < need) {
        n = recv(c->fd, c->buf + c->len, need - c->len, 0);
        if (n <= 0) {
            return -1;
        }
        c->len += (size_t) n;
    }
    *body = c->buf + hlen;
    *body_len = clen;
    return (int) hlen;
}

/* A chunked body of n chunks, one every ms; -1 when the client left. */
static int
stream_chunks(int fd, long n, long ms, long tag)
{
    char chunk[64];
    long i;

    if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n") != 0)
    {
        mark_closed(tag);
        return -1;
    }
    for (i = 0; i < n; i++) {
        snprintf(chunk, sizeof(chunk), "6\r\nchunk%ld\r\n", i % 10);
        if (send_str(fd, chunk) != 0) {
            mark_closed(tag);
            return -1;
        }
        if (i + 1 < n && peer_closed(fd, (int) ms)) {
            mark_closed(tag);
            return -1;
        }
    }
    if (send_str(fd, "0\r\n\r\n") != 0) {
        return -1;
    }
    return 0;
}

static void
respond(int fd, int status, const char *extra, const char *body, size_t n)
{
    char head[512];

    snprintf(head, sizeof(head),
             "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status, n,
             extra ? extra : "");
    if (send_str(fd, head) == 0 && n > 0) {
        send_all(fd, body, n);
    }
}

static void *
conn_main(void *arg)
{
    conn_t *c = arg;
    char method[16], path[1024], ctype[256], ua[256], extra[1024];
    char *body, *big;
    size_t body_len, i;
    long n, key, tag;
    int hlen, gz, hit;

    for ( ;; ) {
        hlen = read_request(c, method, path, &body, &body_len, ctype, ua,
                            &gz);
        if (hlen < 0) {
            break;
        }
        tag = param(path, "tag", 0);

        if (strncmp(path, "/ok", 3) == 0) {
            respond(c->fd, 200, "Content-Type: text/plain\r\nX-Test: Yes\r\n",
                    "hello", 5);

        } else if (strncmp(path, "/slow", 5) == 0) {
            if (stream_chunks(c->fd, param(path, "n", 5),
                              param(path, "ms", 200), tag) != 0)
            {
                break;
            }

        } else if (strncmp(path, "/flaky", 6) == 0) {
            key = param(path, "key", 0) % SRV_TAGS;
            pthread_mutex_lock(&srv.mu);
            hit = srv.hits[key]++;
            pthread_mutex_unlock(&srv.mu);
            if (hit < param(path, "fail", 1)) {
                extra[0] = '\0';
                if ((n = param(path, "ra", -1)) >= 0) {
                    snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", n);
                } else if ((n = param(path, "radate", -1)) >= 0) {
                    time_t t = time(NULL) + n;
                    struct tm tm;

                    gmtime_r(&t, &tm);
                    strftime(extra, sizeof(extra),
                             "Retry-After: %a, %d %b %Y %H:%M:%S GMT\r\n",
                             &tm);
                }
                respond(c->fd, (int) param(path, "code", 503), extra,
                        "busy", 4);
            } else {
                respond(c->fd, 200, NULL, "ok", 2);
            }

        } else if (strncmp(path, "/partial", 8) == 0) {
            struct linger lg = { 1, 0 };

            send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                            "0123456789");
            usleep(300 * 1000);
            /* an abortive close: the client sees a reset */
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            break;

        } else if (strncmp(path, "/hang", 5) == 0) {
            for (i = 0; i < 200 && !peer_closed(c->fd, 50); i++) {
                /* no answer, ever */
            }
            mark_closed(tag);
            break;

        } else if (strncmp(path, "/big", 4) == 0) {
            n = param(path, "n", 1000);
            big = malloc((size_t) n);
            for (i = 0; i < (size_t) n; i++) {
                big[i] = (char) ('a' + i % 26);
            }
            respond(c->fd, 200, NULL, big, (size_t) n);
            free(big);

        } else if (strncmp(path, "/echo", 5) == 0) {
            snprintf(extra, sizeof(extra),
                     "X-Echo-Method: %s\r\nX-Echo-Content-Type: %s\r\n"
                     "X-Echo-UA: %s\r\nX-Echo-Gzip: %d\r\n",
                     method, ctype[0] ? ctype : "-", ua, gz);
            respond(c->fd, 200, extra, body, body_len);

        } else {
            respond(c->fd, 404, NULL, "", 0);
        }

        /* keep what follows this request (curl does not pipeline) */
        i = (size_t) hlen + body_len;
        memmove(c->buf, c->buf + i, c->len - i);
        c->len -= i;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *
accept_main(void *arg)
{
    pthread_attr_t attr;
    conn_t *c;
    int fd;

    /* small stacks: valgrind shadows every byte of every thread's stack */
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);

    for ( ;; ) {
        fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            break;                      /* shut down */
        }
        c = calloc(1, sizeof(*c));
        c->fd = fd;
        pthread_mutex_lock(&srv.mu);
        srv.accepts++;
        if (srv.nconns == SRV_MAX_CONNS
            || pthread_create(&srv.conns[srv.nconns], &attr, conn_main, c)
               != 0)
        {
            close(fd);
            free(c);
        } else {
            srv.nconns++;
        }
        pthread_mutex_unlock(&srv.mu);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

static int
srv_start(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1;

    pthread_mutex_init(&srv.mu, NULL);
    srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(srv.lfd, (struct sockaddr *) &sa, sizeof(sa)) != 0
        || listen(srv.lfd, 1024) != 0
        || getsockname(srv.lfd, (struct sockaddr *) &sa, &len) != 0)
    {
        return -1;
    }
    srv.port = ntohs(sa.sin_port);
    return pthread_create(&srv.accept_thr, NULL, accept_main, NULL);
}

static void
srv_stop(void)
{
    int i;

    shutdown(srv.lfd, SHUT_RDWR);
    pthread_join(srv.accept_thr, NULL);
    close(srv.lfd);
    /* every client is gone by now, so every connection thread ends */
    for (i = 0; i < srv.nconns; i++) {
        pthread_join(srv.conns[i], NULL);
    }
    pthread_mutex_destroy(&srv.mu);
}

/* A port where nothing listens. */
static int
closed_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd, port;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *) &sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *) &sa, &len);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* the client side */

typedef struct {
    int done;
    int err;
    int status;
    int responses;
    int chunks;
    unsigned attempts;
    size_t bytes;
    char head[256];             /* the first bytes of the body */
    char ctype[128];
    uint64_t started;
    uint64_t elapsed;
    int abort_at_chunk;         /* on_data returns 1 at this chunk */
    int cancel_at_chunk;        /* on_data cancels at this chunk */
    int free_http_in_done;
    avc_http_t *http;
    avc_http_req_t *req;
    int *pending;
} res_t;

static int
on_response(avc_http_req_t *req, int status, void *data)
{
    res_t *r = data;
    const char *ct = avc_http_resp_header(req, "content-TYPE");

    r->responses++;
    r->status = status;
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    return 0;
}

static int
on_data(avc_http_req_t *req, const char *p, size_t n, void *data)
{
    res_t *r = data;
    size_t room = sizeof(r->head) - 1 - strlen(r->head);

    r->chunks++;
    if (r->bytes < sizeof(r->head) - 1) {
        strncat(r->head, p, n < room ? n : room);
    }
    r->bytes += n;
    if (r->cancel_at_chunk && r->chunks == r->cancel_at_chunk) {
        avc_http_cancel(req);
        return 0;
    }
    return r->abort_at_chunk && r->chunks == r->abort_at_chunk;
}

static void
on_done(avc_http_req_t *req, int err, void *data)
{
    res_t *r = data;
    size_t len;
    const char *body;

    r->done++;
    r->err = err;
    r->attempts = avc_http_req_attempts(req);
    r->elapsed = now_ms() - r->started;
    if (r->status == 0) {
        r->status = avc_http_resp_status(req);
    }
    body = avc_http_resp_body(req, &len);
    if (len > 0) {
        r->bytes = len;
        snprintf(r->head, sizeof(r->head), "%.*s", (int) len, body);
    }
    if (r->pending) {
        (*r->pending)--;
    }
    if (r->free_http_in_done) {
        avc_http_free(r->http);
    }
}

static char *
url(const char *path)
{
    static char buf[8][256];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "http://127.0.0.1:%d%s", srv.port,
             path);
    return buf[i];
}

/* Make and start a request; returns the start result. */
static int
start(avc_http_t *http, const char *method, const char *path, res_t *r,
    int stream, unsigned connect_ms, unsigned fb_ms, unsigned total_ms,
    unsigned attempts, unsigned backoff_ms)
{
    avc_http_req_t *req;

    memset(r, 0, sizeof(*r));
    r->http = http;
    req = avc_http_req_new(http, method, url(path));
    if (req == NULL) {
        return AVC_ENOMEM;
    }
    avc_http_req_set_timeouts(req, connect_ms, fb_ms, total_ms);
    avc_http_req_set_retry(req, attempts, backoff_ms);
    avc_http_req_set_callbacks(req, on_response, stream ? on_data : NULL,
                               on_done, r);
    r->req = req;
    r->started = now_ms();
    return avc_http_req_start(req);
}

/* Run the loop until *flag is non-zero (or, with want < 0, until *flag
 * reaches 0) or ms pass. */
static void
run_until(avc_loop_t *loop, int *flag, int want_zero, uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end) {
        if (want_zero ? *flag == 0 : *flag != 0) {
            return;
        }
        avc_loop_run_once(loop, 20);
    }
}

/* Run the loop for ms, whatever happens. */
static void
run_for(avc_loop_t *loop, uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end) {
        avc_loop_run_once(loop, 10);
    }
}

static void
test_basic(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    res_t r;

    TAP_OK(http != NULL, "client on the built-in loop");
    TAP_IS(start(http, NULL, "/ok", &r, 0, 0, 0, 0, 1, 0), AVC_OK, "start");
    TAP_IS(r.done, 0, "no callback from within start");
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.done, 1, "on_done once");
    TAP_IS(r.err, AVC_OK, "AVC_OK");
    TAP_IS(r.status, 200, "status 200");
    TAP_IS(r.responses, 1, "on_response once");
    TAP_STR(r.head, "hello", "buffered body");
    TAP_STR(r.ctype, "text/plain", "header by name, case-insensitive");
    TAP_IS(r.attempts, 1, "one attempt");

    /* an idle client keeps nothing armed: avc_loop_run() returns */
    {
        uint64_t t = now_ms();

        avc_loop_run(loop);
        TAP_OK(now_ms() - t < 1000, "idle client: avc_loop_run returns "
               "(%llu ms)", (unsigned long long) (now_ms() - t));
    }

    /* a name, resolved on curl's resolver thread, is no slower */
    {
        avc_http_req_t *req;
        char u[128];

        memset(&r, 0, sizeof(r));
        snprintf(u, sizeof(u), "http://localhost:%d/ok", srv.port);
        req = avc_http_req_new(http, NULL, u);
        avc_http_req_set_callbacks(req, on_response, NULL, on_done, &r);
        r.started = now_ms();
        avc_http_req_start(req);
        run_until(loop, &r.done, 0, 10000);
        TAP_OK(r.err == AVC_OK && r.status == 200 && r.elapsed < 2000,
               "by host name: %s, %llu ms", avc_err_name(r.err),
               (unsigned long long) r.elapsed);
    }
    avc_http_free(http);
}

static int
iter_response(avc_http_req_t *req, int status, void *data)
{
    const char *name, *value;
    size_t i;
    int *found = data;

    for (i = 0; avc_http_resp_header_at(req, i, &name, &value) == AVC_OK;
         i++)
    {
        if (strcmp(name, "X-Test") == 0 && strcmp(value, "Yes") == 0) {
            found[0] = 1;
        }
        if (strcasecmp(name, "content-length") == 0) {
            found[1] = atoi(value);
        }
    }
    return 0;
}

static void
iter_done(avc_http_req_t *req, int err, void *data)
{
    int *found = data;

    found[2] = 1;
}

static void
test_headers_iter(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    int found[3] = { 0, 0, 0 };

    req = avc_http_req_new(http, "GET", url("/ok"));
    avc_http_req_set_callbacks(req, iter_response, NULL, iter_done, found);
    avc_http_req_start(req);
    run_until(loop, &found[2], 0, 10000);
    TAP_OK(found[0], "headers iterate in order with original names");
    TAP_IS(found[1], 5, "Content-Length among them");
    avc_http_free(http);
}

static void
test_reuse(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    res_t r1, r2;
    int before = accepts();

    start(http, NULL, "/ok", &r1, 0, 0, 0, 0, 1, 0);
    run_until(loop, &r1.done, 0, 10000);
    start(http, NULL, "/ok", &r2, 0, 0, 0, 0, 1, 0);
    run_until(loop, &r2.done, 0, 10000);
    TAP_OK(r1.status == 200 && r2.status == 200, "two sequential requests");
    TAP_IS(accepts() - before, 1, "... over one TCP connection");
    avc_http_free(http);
}

static void
test_concurrency(avc_loop_t *loop)
{
    enum { N = 200 };
    static res_t rs[N];
    avc_http_t *http = avc_http_new(loop);
    res_t one;
    uint64_t t0, single, all;
    int i, pending, ok = 0;

    /* one request alone: 5 chunks 500 ms apart (long enough for the
     * fixed costs of 200 requests under valgrind not to dominate) */
    t0 = now_ms();
    start(http, NULL, "/slow?n=5&ms=500", &one, 1, 0, 0, 0, 1, 0);
    run_until(loop, &one.done, 0, 20000);
    single = now_ms() - t0;
    TAP_OK(one.err == AVC_OK && one.chunks >= 1 && one.bytes == 30,
           "a single streamed request (%llu ms)",
           (unsigned long long) single);

    pending = N;
    t0 = now_ms();
    for (i = 0; i < N; i++) {
        start(http, NULL, "/slow?n=5&ms=500", &rs[i], 1, 0, 0, 0, 1, 0);
        rs[i].pending = &pending;
    }
    run_until(loop, &pending, 1, 60000);
    all = now_ms() - t0;
    for (i = 0; i < N; i++) {
        ok += rs[i].done == 1 && rs[i].err == AVC_OK && rs[i].status == 200
              && rs[i].bytes == 30;
    }
    TAP_IS(ok, N, "200 concurrent streamed requests complete");
    TAP_OK(all < 3 * single,
           "... in about the time of one: %llu ms vs %llu ms alone",
           (unsigned long long) all, (unsigned long long) single);
    avc_http_free(http);
}

static void
test_cancel(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    res_t r;
    uint64_t t;
    int chunks;

    /* from outside any callback */
    start(http, NULL, "/slow?n=100&ms=100&tag=1", &r, 1, 0, 0, 0, 1, 0);
    while (r.chunks == 0 && now_ms() - r.started < 10000) {
        avc_loop_run_once(loop, 20);
    }
    TAP_OK(r.chunks > 0, "stream started");
    /* the time before the cancel: the server may see the close at once */
    t = now_ms();
    avc_http_cancel(r.req);
    chunks = r.chunks;
    while (closed_at(1) == 0 && now_ms() - t < 5000) {
        avc_loop_run_once(loop, 20);
    }
    TAP_OK(closed_at(1) != 0 && closed_at(1) >= t && closed_at(1) - t < 2000,
           "cancel closes the connection: server saw it after %lld ms",
           closed_at(1) ? (long long) (closed_at(1) - t) : -1LL);
    run_for(loop, 300);
    TAP_OK(r.done == 0 && r.chunks == chunks, "no callback after cancel");

    /* from within the request's own on_data */
    start(http, NULL, "/slow?n=100&ms=100&tag=2", &r, 1, 0, 0, 0, 1, 0);
    r.cancel_at_chunk = 2;
    t = now_ms();
    while (closed_at(2) == 0 && now_ms() - t < 10000) {
        avc_loop_run_once(loop, 20);
    }
    TAP_OK(closed_at(2) != 0, "cancel from on_data closes the connection");
    run_for(loop, 300);
    TAP_OK(r.done == 0 && r.chunks == 2, "... and no callback after it");

    /* on_data asking to stop: on_done is called, with AVC_ECANCELED */
    start(http, NULL, "/slow?n=100&ms=100&tag=3", &r, 1, 0, 0, 0, 1, 0);
    r.abort_at_chunk = 1;
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.err, AVC_ECANCELED, "on_data returning 1 -> AVC_ECANCELED");
    t = now_ms();
    while (closed_at(3) == 0 && now_ms() - t < 5000) {
        avc_loop_run_once(loop, 20);
    }
    TAP_OK(closed_at(3) != 0, "... and the connection is closed");

    /* freeing the client with a request in flight */
    start(http, NULL, "/slow?n=100&ms=100&tag=4", &r, 1, 0, 0, 0, 1, 0);
    while (r.chunks == 0 && now_ms() - r.started < 10000) {
        avc_loop_run_once(loop, 20);
    }
    avc_http_free(http);
    t = now_ms();
    while (closed_at(4) == 0 && now_ms() - t < 5000) {
        usleep(10000);
    }
    TAP_OK(closed_at(4) != 0 && r.done == 0,
           "avc_http_free aborts in-flight requests, without callbacks");
}

static void
test_retry(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    res_t r;

    start(http, NULL, "/flaky?key=1&fail=1&code=503", &r, 1, 0, 0, 0, 3, 50);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.status == 200, "503 then 200: success");
    TAP_IS(r.attempts, 2, "attempts == 2");
    TAP_IS(r.responses, 1, "on_response once, for the 200");
    TAP_STR(r.head, "ok", "the 503 body is not delivered");

    start(http, NULL, "/flaky?key=2&fail=1&code=429&ra=1", &r, 0, 0, 0, 0,
          3, 10);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.status == 200 && r.attempts == 2,
           "429 with Retry-After: 1, then 200");
    TAP_OK(r.elapsed >= 950, "waited Retry-After (%llu ms)",
           (unsigned long long) r.elapsed);

    start(http, NULL, "/flaky?key=3&fail=1&code=503&radate=2", &r, 0, 0, 0,
          0, 3, 10);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.status == 200 && r.attempts == 2
           && r.elapsed >= 900,
           "Retry-After as an HTTP-date (%llu ms)",
           (unsigned long long) r.elapsed);

    start(http, NULL, "/flaky?key=4&fail=1&code=429&ra=10", &r, 0, 0, 0,
          2000, 3, 10);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.status == 429 && r.attempts == 1
           && r.elapsed < 1500,
           "Retry-After past the total deadline: the 429 is final (%llu ms)",
           (unsigned long long) r.elapsed);
    TAP_STR(r.head, "busy", "... with its body");

    start(http, NULL, "/flaky?key=5&fail=1&code=404", &r, 0, 0, 0, 0, 3, 10);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.status == 404 && r.attempts == 1, "a 4xx is not retried");

    start(http, NULL, "/flaky?key=6&fail=1000&code=500", &r, 0, 0, 0, 0, 3,
          10);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.status == 500 && r.attempts == 3,
           "retries exhausted: the last 500 is delivered, attempts 3");

    start(http, NULL, "/flaky?key=7&fail=1000&code=503", &r, 0, 0, 0, 700,
          100, 100);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.attempts >= 2 && r.elapsed < 1500
           && ((r.err == AVC_OK && r.status == 503)
               || r.err == AVC_ETIMEDOUT),
           "the total deadline bounds the retries (%u attempts, %llu ms)",
           r.attempts, (unsigned long long) r.elapsed);

    start(http, NULL, "/partial", &r, 1, 0, 0, 0, 3, 10);
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.err, AVC_EHTTP, "reset after part of the body -> AVC_EHTTP");
    TAP_IS(r.attempts, 1, "... not retried once bytes were delivered");
    TAP_OK(r.bytes == 10 && r.responses == 1, "the partial body was seen");
    avc_http_free(http);
}

static void
test_connect(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    res_t r;
    char u[128];

    memset(&r, 0, sizeof(r));
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", closed_port());
    req = avc_http_req_new(http, NULL, u);
    avc_http_req_set_retry(req, 3, 20);
    avc_http_req_set_callbacks(req, on_response, on_data, on_done, &r);
    r.started = now_ms();
    TAP_IS(avc_http_req_start(req), AVC_OK, "start towards a closed port");
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.err, AVC_ECONNECT, "connection refused -> AVC_ECONNECT");
    TAP_IS(r.attempts, 3, "... after 3 attempts");
    TAP_IS(r.responses, 0, "no on_response");
    avc_http_free(http);
}

/*
 * A listener whose accept queue is full drops new SYNs, so a connect to
 * it hangs: the connect deadline must end it.
 */
static void
test_connect_deadline(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int lfd, fill[4], i, nfill = 0;
    res_t r;
    char u[128];

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(lfd, (struct sockaddr *) &sa, sizeof(sa));
    listen(lfd, 0);
    getsockname(lfd, (struct sockaddr *) &sa, &len);
    for (i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *) &sa, sizeof(sa));
        nfill++;
    }
    usleep(100 * 1000);

    memset(&r, 0, sizeof(r));
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    req = avc_http_req_new(http, NULL, u);
    avc_http_req_set_timeouts(req, 200, 0, 0);
    avc_http_req_set_retry(req, 2, 10);
    avc_http_req_set_callbacks(req, on_response, on_data, on_done, &r);
    r.started = now_ms();
    avc_http_req_start(req);
    run_until(loop, &r.done, 0, 10000);
    if (r.err == AVC_ECONNECT) {
        /* net.ipv4.tcp_abort_on_overflow=1: refused, not dropped */
        TAP_OK(1, "connect deadline # SKIP full accept queue refuses");
    } else {
        TAP_IS(r.err, AVC_ETIMEDOUT, "connect deadline -> AVC_ETIMEDOUT");
        TAP_IS(r.attempts, 2, "... retried like a connect failure");
        TAP_OK(r.elapsed >= 390 && r.elapsed < 5000,
               "... 2 x 200 ms (%llu ms)", (unsigned long long) r.elapsed);
    }
    avc_http_free(http);
    for (i = 0; i < nfill; i++) {
        close(fill[i]);
    }
    close(lfd);
}

static void
test_deadlines(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    res_t r;
    uint64_t t;

    start(http, NULL, "/hang?tag=10", &r, 1, 0, 300, 0, 3, 10);
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.err, AVC_ETIMEDOUT, "no first byte -> AVC_ETIMEDOUT");
    TAP_OK(r.elapsed >= 290 && r.elapsed < 3000,
           "... at the first-byte deadline (%llu ms)",
           (unsigned long long) r.elapsed);
    TAP_IS(r.attempts, 1, "... not retried");
    t = now_ms();
    while (closed_at(10) == 0 && now_ms() - t < 5000) {
        avc_loop_run_once(loop, 20);
    }
    TAP_OK(closed_at(10) != 0, "... and the connection is closed");

    start(http, NULL, "/slow?n=50&ms=100&tag=11", &r, 1, 0, 0, 500, 1, 0);
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.err, AVC_ETIMEDOUT, "total deadline mid-stream -> AVC_ETIMEDOUT");
    TAP_OK(r.elapsed >= 490 && r.elapsed < 3000 && r.status == 200
           && r.chunks > 0,
           "... at the total deadline, after the stream began (%llu ms)",
           (unsigned long long) r.elapsed);

    /* first-byte deadline met: a slow body is fine */
    start(http, NULL, "/slow?n=4&ms=200", &r, 1, 0, 300, 0, 1, 0);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.bytes == 24,
           "the first-byte deadline stops at the first byte");
    avc_http_free(http);
}

static void
test_buffered(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    res_t r;

    start(http, NULL, "/big?n=100000", &r, 0, 0, 0, 0, 1, 0);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.bytes == 100000
           && strncmp(r.head, "abcdefghijklmnopqrstuvwxyzabc", 29) == 0,
           "buffered body of 100000 bytes");

    memset(&r, 0, sizeof(r));
    req = avc_http_req_new(http, NULL, url("/big?n=100000"));
    avc_http_req_set_max_body(req, 1000);
    avc_http_req_set_callbacks(req, on_response, NULL, on_done, &r);
    avc_http_req_start(req);
    run_until(loop, &r.done, 0, 10000);
    TAP_IS(r.err, AVC_ETOOBIG, "over the buffered body cap -> AVC_ETOOBIG");

    memset(&r, 0, sizeof(r));
    req = avc_http_req_new(http, NULL, url("/big?n=1000"));
    avc_http_req_set_max_body(req, 1000);
    avc_http_req_set_callbacks(req, on_response, NULL, on_done, &r);
    avc_http_req_start(req);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && r.bytes == 1000, "exactly at the cap is fine");
    avc_http_free(http);
}

static void
test_post(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    avc_multipart_t *mp;
    res_t r;

    memset(&r, 0, sizeof(r));
    req = avc_http_req_new(http, "POST", url("/echo"));
    avc_http_req_add_header(req, "Content-Type", "application/json");
    avc_http_req_set_body(req, "{\"a\":1}", 7);
    avc_http_req_set_callbacks(req, on_response, NULL, on_done, &r);
    TAP_IS(avc_http_req_start(req), AVC_OK, "POST with a body");
    run_until(loop, &r.done, 0, 10000);
    TAP_STR(r.head, "{\"a\":1}", "the body arrives");

    memset(&r, 0, sizeof(r));
    mp = avc_multipart_new();
    avc_multipart_add_field(mp, "model", "whisper-1", 9);
    avc_multipart_add_file(mp, "file", "a.wav", "audio/wav", "RIFF", 4);
    req = avc_http_req_new(http, "PUT", url("/echo"));
    TAP_IS(avc_multipart_to_request(mp, req), AVC_OK,
           "multipart body on a request");
    avc_multipart_free(mp);
    avc_http_req_set_callbacks(req, on_response, NULL, on_done, &r);
    avc_http_req_start(req);
    run_until(loop, &r.done, 0, 10000);
    TAP_OK(r.err == AVC_OK && strstr(r.head, "name=\"model\"") != NULL
           && strstr(r.head, "whisper-1") != NULL, "multipart body echoed");
    avc_http_free(http);
}

typedef struct {
    int done;
    char method[32];
    char ctype[256];
    char ua[64];
    char gzip[8];
} echo_t;

static void
echo_done(avc_http_req_t *req, int err, void *data)
{
    echo_t *e = data;
    const char *v;

    e->done = 1;
    v = avc_http_resp_header(req, "x-echo-method");
    snprintf(e->method, sizeof(e->method), "%s", v ? v : "");
    v = avc_http_resp_header(req, "x-echo-content-type");
    snprintf(e->ctype, sizeof(e->ctype), "%s", v ? v : "");
    v = avc_http_resp_header(req, "x-echo-ua");
    snprintf(e->ua, sizeof(e->ua), "%s", v ? v : "");
    v = avc_http_resp_header(req, "x-echo-gzip");
    snprintf(e->gzip, sizeof(e->gzip), "%s", v ? v : "");
}

static void
test_request_headers(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    avc_multipart_t *mp;
    echo_t e;
    char want[256];

    memset(&e, 0, sizeof(e));
    req = avc_http_req_new(http, "POST", url("/echo"));
    avc_http_req_set_body(req, "x", 1);
    avc_http_req_set_callbacks(req, NULL, NULL, echo_done, &e);
    avc_http_req_start(req);
    run_until(loop, &e.done, 0, 10000);
    TAP_STR(e.method, "POST", "method POST");
    TAP_STR(e.ctype, "-", "no form Content-Type invented for a body");
    TAP_STR(e.ua, "avatarcore/" AVC_VERSION_STRING, "User-Agent");
    TAP_STR(e.gzip, "1", "Accept-Encoding offers gzip");

    memset(&e, 0, sizeof(e));
    mp = avc_multipart_new();
    avc_multipart_add_field(mp, "a", "b", 1);
    req = avc_http_req_new(http, "PATCH", url("/echo"));
    avc_multipart_to_request(mp, req);
    snprintf(want, sizeof(want), "%s", avc_multipart_content_type(mp));
    avc_multipart_free(mp);
    avc_http_req_set_callbacks(req, NULL, NULL, echo_done, &e);
    avc_http_req_start(req);
    run_until(loop, &e.done, 0, 10000);
    TAP_STR(e.method, "PATCH", "custom method");
    TAP_STR(e.ctype, want, "multipart Content-Type sent");
    avc_http_free(http);
}

static void
test_invalid(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    avc_http_req_t *req;
    res_t r;

    memset(&r, 0, sizeof(r));
    req = avc_http_req_new(http, NULL, "ftp://127.0.0.1/x");
    avc_http_req_set_callbacks(req, NULL, NULL, on_done, &r);
    TAP_IS(avc_http_req_start(req), AVC_EINVAL, "ftp:// refused");

    req = avc_http_req_new(http, NULL, "not a url");
    avc_http_req_set_callbacks(req, NULL, NULL, on_done, &r);
    TAP_IS(avc_http_req_start(req), AVC_EINVAL, "garbage URL refused");

    req = avc_http_req_new(http, "GE T", url("/ok"));
    avc_http_req_set_callbacks(req, NULL, NULL, on_done, &r);
    TAP_IS(avc_http_req_start(req), AVC_EINVAL, "bad method refused");

    req = avc_http_req_new(http, NULL, url("/ok"));
    TAP_IS(avc_http_req_add_header(req, "X-A", "v\r\nX-Injected: 1"),
           AVC_EINVAL, "CRLF in a header value refused");
    avc_http_req_set_callbacks(req, NULL, NULL, on_done, &r);
    TAP_IS(avc_http_req_start(req), AVC_EINVAL,
           "... and start reports the setter's error");

    req = avc_http_req_new(http, NULL, url("/ok"));
    TAP_IS(avc_http_req_start(req), AVC_EINVAL, "no on_done refused");

    req = avc_http_req_new(http, NULL, url("/ok"));
    avc_http_req_free(req);
    avc_http_req_free(NULL);
    avc_http_cancel(NULL);
    avc_http_free(NULL);
    run_for(loop, 50);
    TAP_IS(r.done, 0, "failed starts never call back");
    avc_http_free(http);
}

static void
test_free_in_done(avc_loop_t *loop)
{
    avc_http_t *http = avc_http_new(loop);
    res_t r, r2;

    start(http, NULL, "/ok", &r, 0, 0, 0, 0, 1, 0);
    start(http, NULL, "/slow?n=100&ms=100&tag=20", &r2, 1, 0, 0, 0, 1, 0);
    r.free_http_in_done = 1;
    run_until(loop, &r.done, 0, 10000);
    run_for(loop, 100);
    TAP_OK(r.done == 1 && r2.done == 0,
           "avc_http_free from on_done: others cancelled silently");
}

static void
test_sync(void)
{
    const char *hdrs[] = { "Content-Type: text/x-test", NULL };
    char *body = NULL, u[128];
    size_t len = 0;
    int status = 0, rc;

    rc = avc_http_fetch_sync("POST", url("/echo"), hdrs, "ping", 4, 5000, 0,
                             &status, &body, &len);
    TAP_IS(rc, AVC_OK, "fetch_sync");
    TAP_IS(status, 200, "fetch_sync status");
    TAP_OK(body && len == 4 && strcmp(body, "ping") == 0,
           "fetch_sync body");
    free(body);

    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", closed_port());
    rc = avc_http_fetch_sync(NULL, u, NULL, NULL, 0, 5000, 0, &status, NULL,
                             NULL);
    TAP_IS(rc, AVC_ECONNECT, "fetch_sync to a closed port");
    rc = avc_http_fetch_sync(NULL, url("/big?n=5000"), NULL, NULL, 0, 5000,
                             100, &status, &body, &len);
    TAP_IS(rc, AVC_ETOOBIG, "fetch_sync body cap");
}

int
main(int argc, char **argv)
{
    avc_loop_t *loop;
    const char *only = argc > 1 ? argv[1] : NULL;

    signal(SIGPIPE, SIG_IGN);
    /* the test talks to 127.0.0.1 directly */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");

    if (srv_start() != 0) {
        printf("1..0 # SKIP cannot listen on 127.0.0.1\n");
        return 0;
    }
    loop = avc_loop_new(2);

#define RUN(name, call) if (only == NULL || strcmp(only, name) == 0) call

    RUN("basic", test_basic(loop));
    RUN("iter", test_headers_iter(loop));
    RUN("reuse", test_reuse(loop));
    RUN("concurrency", test_concurrency(loop));
    RUN("cancel", test_cancel(loop));
    RUN("retry", test_retry(loop));
    RUN("connect", test_connect(loop));
    RUN("connect_deadline", test_connect_deadline(loop));
    RUN("deadlines", test_deadlines(loop));
    RUN("buffered", test_buffered(loop));
    RUN("post", test_post(loop));
    RUN("headers", test_request_headers(loop));
    RUN("invalid", test_invalid(loop));
    RUN("free_in_done", test_free_in_done(loop));
    RUN("sync", test_sync());

    avc_loop_free(loop);
    srv_stop();
    return tap_done();
}
