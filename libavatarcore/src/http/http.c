/*
 * The HTTP client: libcurl's multi-socket API driven by a loop.
 *
 * curl tells us which sockets to watch (avc_http_sock_cb) and when to
 * wake it up (avc_http_curl_timer_cb); we report readiness back through
 * curl_multi_socket_action() and then collect finished transfers.
 *
 * Invariants:
 *   - every entry from the loop (socket readiness, curl's timer, a
 *     request's timers) is bracketed by avc_http_enter/leave; while the
 *     depth is non-zero no request is freed except by the code finishing
 *     it, and avc_http_cancel / avc_http_free only mark and defer, which
 *     also keeps curl_multi_remove_handle out of curl's own callbacks
 *     (curl forbids that);
 *   - a request is in http->reqs from start until freed; its easy handle
 *     is in the multi handle iff in_multi;
 *   - an attempt is retried only while nothing was given to the caller
 *     (!delivered); the retry decision for a 429/5xx is made when its
 *     headers end, and that response's body is then drained, not passed
 *     on;
 *   - removing a running transfer makes curl close its connection (a
 *     premature "done" never returns an HTTP/1 connection to the pool;
 *     an HTTP/2 stream is reset), which is how aborts reach the server.
 */
#include "http_internal.h"

#include <avatarcore/http.h>

#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>

#define AVC_HTTP_MAX_BODY         (8u * 1024 * 1024)
#define AVC_HTTP_CONNECT_MS       10000
#define AVC_HTTP_BACKOFF_MS       200
#define AVC_HTTP_BACKOFF_MAX_MS   30000
/* without a total deadline, a longer Retry-After is not waited for */
#define AVC_HTTP_RETRY_AFTER_MAX  60000
/* a retried error response's body read to keep its connection; beyond
 * this the connection is dropped instead */
#define AVC_HTTP_DRAIN_MAX        65536
/* all response header lines of one response, in bytes */
#define AVC_HTTP_HEADERS_MAX      (256u * 1024)
#define AVC_HTTP_MAX_IDLE         64

#ifdef CURL_WRITEFUNC_ERROR
#define AVC_HTTP_WRITE_ABORT      CURL_WRITEFUNC_ERROR
#else
#define AVC_HTTP_WRITE_ABORT      0
#endif

typedef struct avc_http_sock_s avc_http_sock_t;

struct avc_http_sock_s {
    avc_http_sock_t *prev;
    avc_http_sock_t *next;
    avc_http_t *http;
    avc_io_t *io;
    curl_socket_t fd;
};

enum {
    AVC_REQ_NEW = 0,
    AVC_REQ_WAITING,            /* before an attempt: first, or a retry */
    AVC_REQ_RUNNING,            /* an attempt is in the multi handle */
    AVC_REQ_DONE                /* finishing: on_done is running */
};

typedef struct {
    size_t name;                /* offsets into hbuf */
    size_t value;
} avc_http_hdr_t;

struct avc_http_req_s {
    avc_http_t *http;
    avc_http_req_t *prev;
    avc_http_req_t *next;
    avc_http_req_t *next_zombie;

    CURL *easy;
    struct curl_slist *headers;
    char *method;
    char *url;
    char *origin;               /* scheme://host:port, safe to log */
    char *body;
    size_t body_len;

    unsigned connect_ms;
    unsigned first_byte_ms;
    unsigned total_ms;
    unsigned max_attempts;
    unsigned backoff_ms;
    unsigned attempts;
    size_t max_body;

    avc_http_response_cb on_response;
    avc_http_data_cb on_data;
    avc_http_done_cb on_done;
    void *data;

    int state;
    int err;                    /* first setter failure */
    int abort_err;              /* why a callback aborted the transfer */
    int status;

    unsigned has_body:1;
    unsigned has_ctype:1;
    unsigned in_multi:1;
    unsigned got_byte:1;        /* this attempt saw a response byte */
    unsigned delivered:1;       /* on_response was called */
    unsigned retrying:1;        /* this attempt's response is discarded */
    unsigned canceled:1;
    unsigned raw:1;             /* the caller's easy handle, see
                                   avc__http_req_new_easy */

    void (*cleanup)(void *arg); /* raw: after curl_easy_cleanup */
    void *cleanup_arg;
    CURLcode result;            /* of the last attempt */

    uint64_t deadline;          /* loop ms, 0: none */
    uint64_t retry_ms;
    size_t drained;

    avc_timer_t *attempt_timer; /* attempt start, or first-byte deadline */
    avc_timer_t *total_timer;

    avc__buf_t hbuf;
    avc_http_hdr_t *hdrs;
    size_t nhdrs;
    size_t hdrs_cap;
    avc__buf_t resp;

    char errbuf[CURL_ERROR_SIZE];
};

struct avc_http_s {
    avc_loop_t *loop;
    CURLM *multi;
    avc_timer_t *timer;
    avc_http_sock_t *socks;
    avc_http_req_t *reqs;
    avc_http_req_t *zombies;
    unsigned depth;
    int free_pending;
    uint64_t rng;
};

static void avc_http_destroy(avc_http_t *http);
static void avc_http_collect(avc_http_t *http);
static void avc_http_release(avc_http_req_t *req);
static void avc_http_req_destroy(avc_http_req_t *req);

/* randomness for jitter and multipart boundaries */

void
avc__http_random(void *buf, size_t n)
{
    static __thread uint64_t state;
    unsigned char *p = buf;
    struct timespec ts;
    ssize_t got;
    size_t i;

    while (n > 0) {
        got = getrandom(p, n, GRND_NONBLOCK);
        if (got <= 0) {
            break;
        }
        p += got;
        n -= (size_t) got;
    }
    if (n == 0) {
        return;
    }
    if (state == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) ts.tv_nsec
                ^ (uint64_t) (uintptr_t) &ts ^ 0x9e3779b97f4a7c15ULL;
    }
    for (i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        p[i] = (unsigned char) (state >> 24);
    }
}

static uint64_t
avc_http_rand(avc_http_t *http)
{
    uint64_t x = http->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    http->rng = x;
    return x;
}

/* dispatch bracketing, see the invariants above */

static void
avc_http_enter(avc_http_t *http)
{
    http->depth++;
}

static void
avc_http_reap(avc_http_t *http)
{
    avc_http_req_t *req;

    while ((req = http->zombies) != NULL) {
        http->zombies = req->next_zombie;
        avc_http_release(req);
    }
}

/* The caller must not touch http after this: it may be freed. */
static void
avc_http_leave(avc_http_t *http)
{
    if (--http->depth > 0) {
        return;
    }
    avc_http_reap(http);
    if (http->free_pending) {
        avc_http_destroy(http);
    }
}

/* curl's socket and timer callbacks */

static void
avc_http_io_cb(avc_io_t *io, int fd, unsigned events, void *arg)
{
    avc_http_sock_t *sk = arg;
    avc_http_t *http = sk->http;   /* sk may be freed by socket_action */
    int flags = 0, running;

    if (events & AVC_IO_READ) {
        flags |= CURL_CSELECT_IN;
    }
    if (events & AVC_IO_WRITE) {
        flags |= CURL_CSELECT_OUT;
    }
    if (events & AVC_IO_ERROR) {
        flags |= CURL_CSELECT_ERR;
    }
    avc_http_enter(http);
    curl_multi_socket_action(http->multi, fd, flags, &running);
    avc_http_reap(http);
    avc_http_collect(http);
    avc_http_leave(http);
}

static int
avc_http_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    avc_http_t *http = userp;
    avc_http_sock_t *sk = socketp;
    unsigned events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            avc_io_stop(sk->io);
            if (sk->prev) {
                sk->prev->next = sk->next;
            } else {
                http->socks = sk->next;
            }
            if (sk->next) {
                sk->next->prev = sk->prev;
            }
            free(sk);
            curl_multi_assign(http->multi, s, NULL);
        }
        return 0;
    }

    if (what & CURL_POLL_IN) {
        events |= AVC_IO_READ;
    }
    if (what & CURL_POLL_OUT) {
        events |= AVC_IO_WRITE;
    }

    if (sk != NULL) {
        if (avc_io_update(sk->io, events) != AVC_OK) {
            avc_log(AVC_LOG_ERR, "http: cannot watch socket %d", (int) s);
            return -1;
        }
        return 0;
    }

    sk = calloc(1, sizeof(*sk));
    if (sk == NULL) {
        avc_log(AVC_LOG_ERR, "http: out of memory watching a socket");
        return -1;
    }
    sk->http = http;
    sk->fd = s;
    sk->io = avc_io_start(http->loop, s, events, avc_http_io_cb, sk);
    if (sk->io == NULL) {
        free(sk);
        avc_log(AVC_LOG_ERR, "http: cannot watch socket %d", (int) s);
        return -1;
    }
    sk->next = http->socks;
    if (http->socks) {
        http->socks->prev = sk;
    }
    http->socks = sk;
    curl_multi_assign(http->multi, s, sk);
    return 0;
}

static void
avc_http_timeout(avc_timer_t *timer, void *arg)
{
    avc_http_t *http = arg;
    int running;

    avc_http_enter(http);
    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    avc_http_reap(http);
    avc_http_collect(http);
    avc_http_leave(http);
}

static int
avc_http_curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    avc_http_t *http = userp;

    if (timeout_ms < 0) {
        avc_timer_stop(http->timer);
    } else {
        /* never call curl back from within curl: 0 runs next iteration */
        avc_timer_start(http->timer, (uint64_t) timeout_ms);
    }
    return 0;
}

/* the client */

AVC_API avc_http_t *
avc_http_new(avc_loop_t *loop)
{
    avc_http_t *http;
    CURLMcode mc = CURLM_OK;

    if (loop == NULL) {
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        avc_log(AVC_LOG_ERR, "http: curl_global_init failed");
        return NULL;
    }
    http = calloc(1, sizeof(*http));
    if (http == NULL) {
        curl_global_cleanup();
        return NULL;
    }
    http->loop = loop;
    avc__http_random(&http->rng, sizeof(http->rng));
    if (http->rng == 0) {
        http->rng = 0x2545f4914f6cdd1dULL;
    }
    http->timer = avc_timer_new(loop, avc_http_timeout, http);
    http->multi = curl_multi_init();
    if (http->timer == NULL || http->multi == NULL) {
        goto failed;
    }
    mc |= curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION,
                            avc_http_sock_cb);
    mc |= curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    mc |= curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION,
                            avc_http_curl_timer_cb);
    mc |= curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    mc |= curl_multi_setopt(http->multi, CURLMOPT_PIPELINING,
                            (long) CURLPIPE_MULTIPLEX);
    if (mc != CURLM_OK
        || avc_http_set_limits(http, AVC_HTTP_MAX_IDLE, 0, 0) != AVC_OK)
    {
        goto failed;
    }
    return http;

failed:
    if (http->multi) {
        curl_multi_cleanup(http->multi);
    }
    avc_timer_free(http->timer);
    free(http);
    curl_global_cleanup();
    return NULL;
}

AVC_API int
avc_http_set_limits(avc_http_t *http, unsigned max_idle, unsigned per_host,
    unsigned total)
{
    CURLMcode mc = CURLM_OK;

    if (http == NULL) {
        return AVC_EINVAL;
    }
    mc |= curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS,
                            (long) max_idle);
    mc |= curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                            (long) per_host);
    mc |= curl_multi_setopt(http->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                            (long) total);
    return mc == CURLM_OK ? AVC_OK : AVC_EINVAL;
}

static void
avc_http_destroy(avc_http_t *http)
{
    avc_http_req_t *req;
    avc_http_sock_t *sk;

    avc_http_reap(http);
    while ((req = http->reqs) != NULL) {
        req->canceled = 1;
        avc_http_release(req);
    }

    /* closes the pooled connections, reporting them through sock_cb */
    curl_multi_cleanup(http->multi);

    while ((sk = http->socks) != NULL) {
        http->socks = sk->next;
        avc_io_stop(sk->io);
        free(sk);
    }
    avc_timer_free(http->timer);
    free(http);
    curl_global_cleanup();
}

AVC_API void
avc_http_free(avc_http_t *http)
{
    avc_http_req_t *req;

    if (http == NULL || http->free_pending) {
        return;
    }
    if (http->depth == 0) {
        avc_http_destroy(http);
        return;
    }
    /* inside one of our callbacks: finish when it returns */
    http->free_pending = 1;
    for (req = http->reqs; req; req = req->next) {
        if (req->state != AVC_REQ_DONE) {
            avc_http_cancel(req);
        }
    }
}

/* requests: building */

static int
avc_http_fail(avc_http_req_t *req, int err)
{
    if (req->err == AVC_OK) {
        req->err = err;
    }
    return err;
}

static int
avc_http_token_char(int c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

/*
 * Check the URL (http or https, parseable) and keep a loggable origin:
 * the query and the path may carry secrets, userinfo certainly does.
 */
static int
avc_http_check_url(avc_http_req_t *req)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *port = NULL;
    avc__buf_t b;
    int rc = AVC_EINVAL;

    u = curl_url();
    if (u == NULL) {
        return AVC_ENOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, req->url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
           != CURLUE_OK)
    {
        goto done;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
    {
        goto done;
    }
    avc__buf_init(&b);
    if (avc__buf_printf(&b, "%s://%s:%s", scheme, host, port) != AVC_OK) {
        avc__buf_free(&b);
        rc = AVC_ENOMEM;
        goto done;
    }
    req->origin = avc__buf_steal(&b, NULL);
    rc = req->origin ? AVC_OK : AVC_ENOMEM;

done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

AVC_API avc_http_req_t *
avc_http_req_new(avc_http_t *http, const char *method, const char *url)
{
    avc_http_req_t *req;
    const char *p;
    int rc;

    if (http == NULL) {
        return NULL;
    }
    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        return NULL;
    }
    req->http = http;
    req->connect_ms = AVC_HTTP_CONNECT_MS;
    req->max_attempts = 1;
    req->backoff_ms = AVC_HTTP_BACKOFF_MS;
    req->max_body = AVC_HTTP_MAX_BODY;
    avc__buf_init(&req->hbuf);
    avc__buf_init(&req->resp);

    req->method = strdup(method ? method : "GET");
    req->url = strdup(url ? url : "");
    if (req->method == NULL || req->url == NULL) {
        avc_http_req_destroy(req);
        return NULL;
    }
    if (http->free_pending) {
        avc_http_fail(req, AVC_ESTATE);
    }
    for (p = req->method; *p; p++) {
        if (!avc_http_token_char((unsigned char) *p)) {
            break;
        }
    }
    if (*req->method == '\0' || *p != '\0') {
        avc_http_fail(req, AVC_EINVAL);
    }
    rc = avc_http_check_url(req);
    if (rc == AVC_ENOMEM) {
        avc_http_req_destroy(req);
        return NULL;
    }
    if (rc != AVC_OK) {
        avc_http_fail(req, rc);
    }
    return req;
}

static void
avc_http_req_destroy(avc_http_req_t *req)
{
    if (req->easy) {
        curl_easy_cleanup(req->easy);
    }
    if (req->cleanup) {
        req->cleanup(req->cleanup_arg);
    }
    avc_timer_free(req->attempt_timer);
    avc_timer_free(req->total_timer);
    curl_slist_free_all(req->headers);
    free(req->method);
    free(req->url);
    free(req->origin);
    free(req->body);
    free(req->hdrs);
    avc__buf_free(&req->hbuf);
    avc__buf_free(&req->resp);
    free(req);
}

AVC_API void
avc_http_req_free(avc_http_req_t *req)
{
    if (req != NULL && req->state == AVC_REQ_NEW) {
        avc_http_req_destroy(req);
    }
}

static int
avc_http_append_header(avc_http_req_t *req, const char *line)
{
    struct curl_slist *l;

    l = curl_slist_append(req->headers, line);
    if (l == NULL) {
        return avc_http_fail(req, AVC_ENOMEM);
    }
    req->headers = l;
    return AVC_OK;
}

AVC_API int
avc_http_req_add_header(avc_http_req_t *req, const char *name,
    const char *value)
{
    avc__buf_t line;
    const char *p;
    int rc;

    if (req == NULL) {
        return AVC_EINVAL;
    }
    if (req->state != AVC_REQ_NEW || name == NULL || value == NULL
        || *name == '\0')
    {
        return avc_http_fail(req, AVC_EINVAL);
    }
    for (p = name; *p; p++) {
        if (!avc_http_token_char((unsigned char) *p)) {
            return avc_http_fail(req, AVC_EINVAL);
        }
    }
    if (strpbrk(value, "\r\n") != NULL) {
        return avc_http_fail(req, AVC_EINVAL);
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    avc__buf_init(&line);
    /* "Name;" is curl's way to send a header with an empty value */
    rc = *value ? avc__buf_printf(&line, "%s: %s", name, value)
                : avc__buf_printf(&line, "%s;", name);
    if (rc != AVC_OK) {
        avc__buf_free(&line);
        return avc_http_fail(req, AVC_ENOMEM);
    }
    rc = avc_http_append_header(req, line.data);
    avc__buf_free(&line);
    if (rc == AVC_OK && strcasecmp(name, "Content-Type") == 0) {
        req->has_ctype = 1;
    }
    return rc;
}

AVC_API int
avc_http_req_take_body(avc_http_req_t *req, void *p, size_t n)
{
    if (req == NULL) {
        free(p);
        return AVC_EINVAL;
    }
    if (req->state != AVC_REQ_NEW || (p == NULL && n > 0)) {
        free(p);
        return avc_http_fail(req, AVC_EINVAL);
    }
    free(req->body);
    req->body = p;
    req->body_len = n;
    req->has_body = 1;
    return AVC_OK;
}

AVC_API int
avc_http_req_set_body(avc_http_req_t *req, const void *p, size_t n)
{
    char *copy;

    if (req == NULL) {
        return AVC_EINVAL;
    }
    if (p == NULL && n > 0) {
        return avc_http_fail(req, AVC_EINVAL);
    }
    copy = malloc(n ? n : 1);
    if (copy == NULL) {
        return avc_http_fail(req, AVC_ENOMEM);
    }
    if (n) {
        memcpy(copy, p, n);
    }
    return avc_http_req_take_body(req, copy, n);
}

AVC_API int
avc_http_req_set_timeouts(avc_http_req_t *req, unsigned connect_ms,
    unsigned first_byte_ms, unsigned total_ms)
{
    if (req == NULL) {
        return AVC_EINVAL;
    }
    if (req->state != AVC_REQ_NEW) {
        return avc_http_fail(req, AVC_EINVAL);
    }
    req->connect_ms = connect_ms;
    req->first_byte_ms = first_byte_ms;
    req->total_ms = total_ms;
    return AVC_OK;
}

AVC_API int
avc_http_req_set_retry(avc_http_req_t *req, unsigned max_attempts,
    unsigned backoff_ms)
{
    if (req == NULL) {
        return AVC_EINVAL;
    }
    if (req->state != AVC_REQ_NEW || max_attempts == 0) {
        return avc_http_fail(req, AVC_EINVAL);
    }
    req->max_attempts = max_attempts;
    req->backoff_ms = backoff_ms;
    return AVC_OK;
}

AVC_API int
avc_http_req_set_max_body(avc_http_req_t *req, size_t max)
{
    if (req == NULL) {
        return AVC_EINVAL;
    }
    if (req->state != AVC_REQ_NEW) {
        return avc_http_fail(req, AVC_EINVAL);
    }
    req->max_body = max;
    return AVC_OK;
}

AVC_API int
avc_http_req_set_callbacks(avc_http_req_t *req,
    avc_http_response_cb on_response, avc_http_data_cb on_data,
    avc_http_done_cb on_done, void *data)
{
    if (req == NULL) {
        return AVC_EINVAL;
    }
    if (req->state != AVC_REQ_NEW || on_done == NULL) {
        return avc_http_fail(req, AVC_EINVAL);
    }
    req->on_response = on_response;
    req->on_data = on_data;
    req->on_done = on_done;
    req->data = data;
    return AVC_OK;
}

/* requests: response headers */

static void
avc_http_clear_headers(avc_http_req_t *req)
{
    avc__buf_reset(&req->hbuf);
    req->nhdrs = 0;
}

static int
avc_http_store_header(avc_http_req_t *req, const char *p, size_t n)
{
    const char *colon, *v, *end = p + n;
    avc_http_hdr_t *h;
    size_t cap;

    if (req->hbuf.len + n > AVC_HTTP_HEADERS_MAX) {
        return AVC_ETOOBIG;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    if (*p == ' ' || *p == '\t') {
        /* obsolete line folding: continues the previous value */
        if (req->nhdrs == 0) {
            return AVC_OK;
        }
        for (v = p; v < end && (*v == ' ' || *v == '\t'); v++) {
            /* skip */
        }
        req->hbuf.len--;                /* reopen the value's NUL */
        if (avc__buf_append(&req->hbuf, " ", 1) != AVC_OK
            || avc__buf_append(&req->hbuf, v, (size_t) (end - v)) != AVC_OK
            || avc__buf_append(&req->hbuf, "", 1) != AVC_OK)
        {
            return AVC_ENOMEM;
        }
        return AVC_OK;
    }

    colon = memchr(p, ':', (size_t) (end - p));
    if (colon == NULL || colon == p) {
        return AVC_OK;                  /* not a header: ignore */
    }
    for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++) {
        /* skip */
    }
    if (req->nhdrs == req->hdrs_cap) {
        cap = req->hdrs_cap ? req->hdrs_cap * 2 : 16;
        h = realloc(req->hdrs, cap * sizeof(*h));
        if (h == NULL) {
            return AVC_ENOMEM;
        }
        req->hdrs = h;
        req->hdrs_cap = cap;
    }
    h = &req->hdrs[req->nhdrs];
    h->name = req->hbuf.len;
    if (avc__buf_append(&req->hbuf, p, (size_t) (colon - p)) != AVC_OK
        || avc__buf_append(&req->hbuf, "", 1) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    h->value = req->hbuf.len;
    if (avc__buf_append(&req->hbuf, v, (size_t) (end - v)) != AVC_OK
        || avc__buf_append(&req->hbuf, "", 1) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    req->nhdrs++;
    return AVC_OK;
}

/* Retry-After in ms from now, or -1 when absent or unreadable. */
static long long
avc_http_retry_after(const avc_http_req_t *req)
{
    const char *v = avc_http_resp_header(req, "Retry-After");
    const char *p;
    long long secs = 0;
    time_t when, now;

    if (v == NULL || *v == '\0') {
        return -1;
    }
    for (p = v; *p >= '0' && *p <= '9'; p++) {
        if (secs < 10000000) {
            secs = secs * 10 + (*p - '0');
        }
    }
    if (*p == '\0') {
        return secs * 1000;
    }
    when = curl_getdate(v, NULL);
    if (when == (time_t) -1) {
        return -1;
    }
    now = time(NULL);
    return when > now ? (long long) (when - now) * 1000 : 0;
}

/*
 * May this request be tried again, and after how long?  status is the
 * response status (429 or 5xx), or 0 after a connect failure.
 */
static int
avc_http_may_retry(avc_http_req_t *req, int status, uint64_t *wait_ms)
{
    uint64_t base, wait;
    long long after;
    unsigned i;

    if (req->attempts >= req->max_attempts || req->delivered || req->raw) {
        return 0;
    }
    base = req->backoff_ms;
    for (i = 1; i < req->attempts && base < AVC_HTTP_BACKOFF_MAX_MS; i++) {
        base *= 2;
    }
    if (base > AVC_HTTP_BACKOFF_MAX_MS) {
        base = AVC_HTTP_BACKOFF_MAX_MS;
    }
    /* "equal jitter": half fixed, half random, so that a burst of
     * clients failing together does not come back together */
    wait = base / 2 + avc_http_rand(req->http) % (base - base / 2 + 1);

    if (status != 0) {
        after = avc_http_retry_after(req);
        if (after >= 0) {
            if (req->total_ms == 0 && after > AVC_HTTP_RETRY_AFTER_MAX) {
                return 0;
            }
            if ((uint64_t) after > wait) {
                wait = (uint64_t) after;
            }
        }
    }
    if (req->deadline
        && avc_loop_now(req->http->loop) + wait >= req->deadline)
    {
        return 0;
    }
    *wait_ms = wait;
    return 1;
}

/* Give the response to the caller; AVC_OK to go on. */
static int
avc_http_deliver(avc_http_req_t *req)
{
    long code = 0;

    if (req->status == 0) {
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
        req->status = (int) code;
    }
    req->delivered = 1;
    if (req->on_response != NULL
        && req->on_response(req, req->status, req->data) != 0
        && !req->canceled)
    {
        req->abort_err = AVC_ECANCELED;
        return AVC_ECANCELED;
    }
    return req->canceled ? AVC_ECANCELED : AVC_OK;
}

static size_t
avc_http_header_cb(char *p, size_t size, size_t nitems, void *arg)
{
    avc_http_req_t *req = arg;
    size_t len = size * nitems, n = len;
    long code = 0;
    uint64_t wait;
    int rc;

    if (req->canceled) {
        return AVC_HTTP_WRITE_ABORT;
    }
    if (!req->got_byte) {
        req->got_byte = 1;
        if (req->first_byte_ms) {
            avc_timer_stop(req->attempt_timer);
        }
    }
    if (req->delivered || req->retrying) {
        return len;                     /* trailers, or a discarded reply */
    }
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response: after a 1xx there is another */
        avc_http_clear_headers(req);
        return len;
    }
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) {
        n--;
    }
    if (n > 0) {
        rc = avc_http_store_header(req, p, n);
        if (rc != AVC_OK) {
            req->abort_err = rc;
            return AVC_HTTP_WRITE_ABORT;
        }
        return len;
    }

    /* the blank line: this response's headers are complete */
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200) {
        return len;
    }
    req->status = (int) code;
    if ((code == 429 || code >= 500) && avc_http_may_retry(req, (int) code,
                                                           &wait))
    {
        req->retrying = 1;
        req->retry_ms = wait;
        return len;
    }
    return avc_http_deliver(req) == AVC_OK ? len : AVC_HTTP_WRITE_ABORT;
}

static size_t
avc_http_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
    avc_http_req_t *req = arg;
    size_t len = size * nmemb;

    if (req->canceled) {
        return AVC_HTTP_WRITE_ABORT;
    }
    if (req->retrying) {
        req->drained += len;
        return req->drained > AVC_HTTP_DRAIN_MAX ? AVC_HTTP_WRITE_ABORT : len;
    }
    if (!req->delivered && avc_http_deliver(req) != AVC_OK) {
        return AVC_HTTP_WRITE_ABORT;
    }
    if (req->on_data != NULL) {
        if (req->on_data(req, p, len, req->data) != 0) {
            if (!req->canceled) {
                req->abort_err = AVC_ECANCELED;
            }
            return AVC_HTTP_WRITE_ABORT;
        }
        return req->canceled ? AVC_HTTP_WRITE_ABORT : len;
    }
    if (len > req->max_body - req->resp.len) {
        req->abort_err = AVC_ETOOBIG;
        return AVC_HTTP_WRITE_ABORT;
    }
    if (avc__buf_append(&req->resp, p, len) != AVC_OK) {
        req->abort_err = AVC_ENOMEM;
        return AVC_HTTP_WRITE_ABORT;
    }
    return len;
}

/* requests: running */

static void
avc_http_unlink(avc_http_req_t *req)
{
    avc_http_t *http = req->http;

    if (req->prev) {
        req->prev->next = req->next;
    } else if (http->reqs == req) {
        http->reqs = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
}

/* Take the transfer out of curl (closing its connection if unfinished)
 * and free the request.  Never from within curl. */
static void
avc_http_release(avc_http_req_t *req)
{
    if (req->in_multi) {
        curl_multi_remove_handle(req->http->multi, req->easy);
        req->in_multi = 0;
    }
    avc_http_unlink(req);
    avc_http_req_destroy(req);
}

static void
avc_http_finish(avc_http_req_t *req, int err)
{
    if (req->in_multi) {
        curl_multi_remove_handle(req->http->multi, req->easy);
        req->in_multi = 0;
    }
    avc_timer_stop(req->attempt_timer);
    if (req->total_timer) {
        avc_timer_stop(req->total_timer);
    }
    req->state = AVC_REQ_DONE;
    if (err != AVC_OK) {
        avc_log(err == AVC_ECANCELED ? AVC_LOG_DEBUG : AVC_LOG_INFO,
                "http: %s %s failed after %u attempt(s): %s%s%s",
                req->method, req->origin, req->attempts, avc_strerror(err),
                req->errbuf[0] ? ": " : "", req->errbuf);
    }
    if (!req->canceled) {
        req->on_done(req, err, req->data);
    }
    avc_http_unlink(req);
    avc_http_req_destroy(req);
}

static void
avc_http_attempt(avc_http_req_t *req)
{
    avc_http_t *http = req->http;

    avc_http_clear_headers(req);
    avc__buf_reset(&req->resp);
    req->status = 0;
    req->abort_err = AVC_OK;
    req->got_byte = 0;
    req->retrying = 0;
    req->drained = 0;
    req->errbuf[0] = '\0';
    req->attempts++;

    if (curl_multi_add_handle(http->multi, req->easy) != CURLM_OK) {
        avc_http_finish(req, AVC_ENOMEM);
        return;
    }
    req->in_multi = 1;
    req->state = AVC_REQ_RUNNING;
    if (req->first_byte_ms) {
        avc_timer_start(req->attempt_timer, req->first_byte_ms);
    }
}

static void
avc_http_attempt_timer(avc_timer_t *timer, void *arg)
{
    avc_http_req_t *req = arg;
    avc_http_t *http = req->http;

    avc_http_enter(http);
    if (req->state == AVC_REQ_WAITING) {
        avc_http_attempt(req);
    } else if (req->state == AVC_REQ_RUNNING) {
        avc_http_finish(req, AVC_ETIMEDOUT);      /* no first byte */
    }
    avc_http_leave(http);
}

static void
avc_http_total_timer(avc_timer_t *timer, void *arg)
{
    avc_http_req_t *req = arg;
    avc_http_t *http = req->http;

    avc_http_enter(http);
    if (req->state == AVC_REQ_WAITING || req->state == AVC_REQ_RUNNING) {
        avc_http_finish(req, AVC_ETIMEDOUT);
    }
    avc_http_leave(http);
}

static int
avc_http_connect_failed(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_OPERATION_TIMEDOUT:      /* only the connect deadline is
                                           curl's; the others are ours */
        return 1;
    default:
        return 0;
    }
}

static int
avc_http_map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return AVC_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return AVC_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return AVC_ECONNECT;
    case CURLE_OUT_OF_MEMORY:
        return AVC_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return AVC_EINVAL;
    default:
        return AVC_EHTTP;
    }
}

/* One attempt ended inside curl with rc. */
static void
avc_http_attempt_done(avc_http_req_t *req, CURLcode rc)
{
    uint64_t wait;

    curl_multi_remove_handle(req->http->multi, req->easy);
    req->in_multi = 0;
    avc_timer_stop(req->attempt_timer);
    req->result = rc;

    if (req->retrying) {
        avc_log(AVC_LOG_INFO, "http: %s %s: status %d, retrying in %llu ms",
                req->method, req->origin, req->status,
                (unsigned long long) req->retry_ms);
        req->state = AVC_REQ_WAITING;
        avc_timer_start(req->attempt_timer, req->retry_ms);
        return;
    }
    if (rc == CURLE_OK) {
        if (!req->delivered && avc_http_deliver(req) != AVC_OK) {
            avc_http_finish(req, AVC_ECANCELED);
            return;
        }
        avc_http_finish(req, AVC_OK);
        return;
    }
    if (req->abort_err != AVC_OK) {
        avc_http_finish(req, req->abort_err);
        return;
    }
    if (avc_http_connect_failed(rc) && !req->got_byte) {
        if (avc_http_may_retry(req, 0, &wait)) {
            avc_log(AVC_LOG_INFO, "http: %s %s: %s, retrying in %llu ms",
                    req->method, req->origin, curl_easy_strerror(rc),
                    (unsigned long long) wait);
            req->state = AVC_REQ_WAITING;
            avc_timer_start(req->attempt_timer, wait);
            return;
        }
        avc_http_finish(req, rc == CURLE_OPERATION_TIMEDOUT
                             ? AVC_ETIMEDOUT : AVC_ECONNECT);
        return;
    }
    avc_http_finish(req, avc_http_map_error(rc));
}

/* Collect finished transfers; called after each socket_action. */
static void
avc_http_collect(avc_http_t *http)
{
    avc_http_req_t *req;
    CURLMsg *msg;
    CURLcode rc;
    CURL *easy;
    char *priv;
    int left;

    while ((msg = curl_multi_info_read(http->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* msg dies with remove_handle: copy what is needed first */
        easy = msg->easy_handle;
        rc = msg->data.result;
        priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        req = (avc_http_req_t *) priv;
        if (req == NULL || req->canceled || !req->in_multi) {
            continue;                   /* reaped in avc_http_leave */
        }
        avc_http_attempt_done(req, rc);
    }
}

/* a raw request: only what the loop integration needs */
static int
avc_http_setup_raw(avc_http_req_t *req)
{
    CURL *e = req->easy;
    CURLcode c = CURLE_OK;

    c |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *) req);
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                          (long) req->connect_ms);
    return c == CURLE_OK ? AVC_OK : AVC_ENOMEM;
}

static int
avc_http_setup(avc_http_req_t *req)
{
    CURL *e;
    CURLcode c = CURLE_OK;
    const char *m = req->method;

    if (req->raw) {
        return avc_http_setup_raw(req);
    }

    /* curl sends "Expect: 100-continue" for large bodies and then waits
     * up to a second for servers that never answer it */
    if (avc_http_append_header(req, "Expect:") != AVC_OK) {
        return AVC_ENOMEM;
    }
    /* curl labels a POST body as a form unless told otherwise */
    if (req->has_body && !req->has_ctype
        && avc_http_append_header(req, "Content-Type:") != AVC_OK)
    {
        return AVC_ENOMEM;
    }

    e = curl_easy_init();
    if (e == NULL) {
        return AVC_ENOMEM;
    }
    req->easy = e;
    c |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *) req);
    c |= curl_easy_setopt(e, CURLOPT_URL, req->url);
    c |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    c |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    c |= curl_easy_setopt(e, CURLOPT_USERAGENT,
                          "avatarcore/" AVC_VERSION_STRING);
    c |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    c |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, avc_http_header_cb);
    c |= curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, avc_http_write_cb);
    c |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    c |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    c |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                          (long) req->connect_ms);
    c |= curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    c |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (strncasecmp(req->url, "https:", 6) == 0) {
        /* let concurrent requests wait for one connection to learn
         * whether it multiplexes, instead of opening one each */
        c |= curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    }

    if (strcmp(m, "HEAD") == 0) {
        c |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") != 0 || req->has_body) {
        if (req->has_body || strcmp(m, "POST") == 0) {
            c |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                  (curl_off_t) req->body_len);
            c |= curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                                  req->body ? req->body : "");
        }
        if (strcmp(m, "POST") != 0) {
            c |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
        }
    }
    return c == CURLE_OK ? AVC_OK : AVC_ENOMEM;
}

AVC_API int
avc_http_req_start(avc_http_req_t *req)
{
    avc_http_t *http;
    int rc;

    if (req == NULL) {
        return AVC_EINVAL;
    }
    http = req->http;
    rc = req->err;
    if (rc == AVC_OK && (req->state != AVC_REQ_NEW || req->on_done == NULL))
    {
        rc = AVC_EINVAL;
    }
    if (rc == AVC_OK && http->free_pending) {
        rc = AVC_ESTATE;
    }
    if (rc == AVC_OK) {
        rc = avc_http_setup(req);
    }
    if (rc == AVC_OK) {
        req->attempt_timer = avc_timer_new(http->loop, avc_http_attempt_timer,
                                           req);
        if (req->attempt_timer == NULL) {
            rc = AVC_ENOMEM;
        }
    }
    if (rc == AVC_OK && req->total_ms) {
        req->total_timer = avc_timer_new(http->loop, avc_http_total_timer,
                                         req);
        if (req->total_timer == NULL) {
            rc = AVC_ENOMEM;
        }
    }
    if (rc != AVC_OK) {
        avc_http_req_destroy(req);
        return rc;
    }

    req->next = http->reqs;
    if (http->reqs) {
        http->reqs->prev = req;
    }
    http->reqs = req;
    req->state = AVC_REQ_WAITING;
    if (req->total_ms) {
        req->deadline = avc_loop_now(http->loop) + req->total_ms;
        avc_timer_start(req->total_timer, req->total_ms);
    }
    avc_timer_start(req->attempt_timer, 0);
    return AVC_OK;
}

AVC_API void
avc_http_cancel(avc_http_req_t *req)
{
    avc_http_t *http;

    if (req == NULL || req->canceled || req->state == AVC_REQ_DONE
        || req->state == AVC_REQ_NEW)
    {
        return;
    }
    http = req->http;
    req->canceled = 1;
    avc_timer_stop(req->attempt_timer);
    if (req->total_timer) {
        avc_timer_stop(req->total_timer);
    }
    if (http->depth > 0) {
        /* inside a callback, maybe inside curl: free when it returns */
        req->next_zombie = http->zombies;
        http->zombies = req;
        return;
    }
    avc_http_release(req);
}

/* requests around the caller's easy handle (http_internal.h) */

avc_http_req_t *
avc__http_req_new_easy(avc_http_t *http, CURL *easy, const char *label,
    const char *origin, void (*cleanup)(void *arg), void *cleanup_arg)
{
    avc_http_req_t *req;

    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        if (easy) {
            curl_easy_cleanup(easy);
        }
        if (cleanup) {
            cleanup(cleanup_arg);
        }
        return NULL;
    }
    req->http = http;
    req->easy = easy;
    req->cleanup = cleanup;
    req->cleanup_arg = cleanup_arg;
    req->raw = 1;
    req->connect_ms = AVC_HTTP_CONNECT_MS;
    req->max_attempts = 1;
    req->backoff_ms = AVC_HTTP_BACKOFF_MS;
    req->max_body = AVC_HTTP_MAX_BODY;
    avc__buf_init(&req->hbuf);
    avc__buf_init(&req->resp);

    req->method = strdup(label ? label : "CURL");
    req->url = strdup("");
    req->origin = strdup(origin ? origin : "-");
    if (req->method == NULL || req->url == NULL || req->origin == NULL) {
        avc_http_req_destroy(req);
        return NULL;
    }
    if (http == NULL || easy == NULL) {
        avc_http_fail(req, AVC_EINVAL);
    } else if (http->free_pending) {
        avc_http_fail(req, AVC_ESTATE);
    }
    return req;
}

CURL *
avc__http_req_easy(const avc_http_req_t *req)
{
    return req ? req->easy : NULL;
}

CURLcode
avc__http_req_result(const avc_http_req_t *req, const char **detail)
{
    if (detail) {
        *detail = req ? req->errbuf : "";
    }
    return req ? req->result : CURLE_OK;
}

/* getters */

AVC_API void *
avc_http_req_data(const avc_http_req_t *req)
{
    return req ? req->data : NULL;
}

AVC_API unsigned
avc_http_req_attempts(const avc_http_req_t *req)
{
    return req ? req->attempts : 0;
}

AVC_API int
avc_http_resp_status(const avc_http_req_t *req)
{
    return req && req->delivered ? req->status : 0;
}

AVC_API const char *
avc_http_resp_header(const avc_http_req_t *req, const char *name)
{
    size_t i;

    if (req == NULL || name == NULL) {
        return NULL;
    }
    for (i = 0; i < req->nhdrs; i++) {
        if (strcasecmp(req->hbuf.data + req->hdrs[i].name, name) == 0) {
            return req->hbuf.data + req->hdrs[i].value;
        }
    }
    return NULL;
}

AVC_API int
avc_http_resp_header_at(const avc_http_req_t *req, size_t i,
    const char **name, const char **value)
{
    if (req == NULL || i >= req->nhdrs) {
        return AVC_ENOTFOUND;
    }
    if (name) {
        *name = req->hbuf.data + req->hdrs[i].name;
    }
    if (value) {
        *value = req->hbuf.data + req->hdrs[i].value;
    }
    return AVC_OK;
}

AVC_API const char *
avc_http_resp_body(const avc_http_req_t *req, size_t *len)
{
    if (len) {
        *len = req && req->resp.data ? req->resp.len : 0;
    }
    return req && req->resp.data ? req->resp.data : "";
}

AVC_API char *
avc_http_resp_body_take(avc_http_req_t *req, size_t *len)
{
    if (req == NULL) {
        return NULL;
    }
    return avc__buf_steal(&req->resp, len);
}

/* the blocking wrapper */

typedef struct {
    int done;
    int err;
    int status;
    int want_body;
    char *body;
    size_t len;
} avc_http_sync_t;

static void
avc_http_sync_done(avc_http_req_t *req, int err, void *data)
{
    avc_http_sync_t *s = data;

    s->done = 1;
    s->err = err;
    s->status = avc_http_resp_status(req);
    if (err == AVC_OK && s->want_body) {
        s->body = avc_http_resp_body_take(req, &s->len);
        if (s->body == NULL) {
            s->err = AVC_ENOMEM;
        }
    }
}

static int
avc_http_sync_headers(avc_http_req_t *req, const char *const *headers)
{
    const char *line, *colon;
    char *name;
    int rc;

    for ( ; headers && *headers; headers++) {
        line = *headers;
        colon = strchr(line, ':');
        if (colon == NULL || colon == line) {
            return AVC_EINVAL;
        }
        name = strndup(line, (size_t) (colon - line));
        if (name == NULL) {
            return AVC_ENOMEM;
        }
        rc = avc_http_req_add_header(req, name, colon + 1);
        free(name);
        if (rc != AVC_OK) {
            return rc;
        }
    }
    return AVC_OK;
}

AVC_API int
avc_http_fetch_sync(const char *method, const char *url,
    const char *const *headers, const void *body, size_t body_len,
    unsigned timeout_ms, size_t max_resp, int *status, char **resp,
    size_t *resp_len)
{
    avc_http_sync_t s;
    avc_loop_t *loop;
    avc_http_t *http = NULL;
    avc_http_req_t *req;
    int rc;

    if (url == NULL || status == NULL || (body == NULL && body_len > 0)) {
        return AVC_EINVAL;
    }
    memset(&s, 0, sizeof(s));
    s.want_body = resp != NULL;

    loop = avc_loop_new(1);
    if (loop == NULL || (http = avc_http_new(loop)) == NULL) {
        avc_loop_free(loop);
        return AVC_ENOMEM;
    }
    req = avc_http_req_new(http, method, url);
    if (req == NULL) {
        rc = AVC_ENOMEM;
        goto done;
    }
    rc = avc_http_sync_headers(req, headers);
    if (rc != AVC_OK) {
        avc_http_req_free(req);
        goto done;
    }
    if (body != NULL) {
        avc_http_req_set_body(req, body, body_len);
    }
    avc_http_req_set_timeouts(req, AVC_HTTP_CONNECT_MS, 0, timeout_ms);
    avc_http_req_set_max_body(req, max_resp ? max_resp : AVC_HTTP_MAX_BODY);
    avc_http_req_set_callbacks(req, NULL, NULL, avc_http_sync_done, &s);
    rc = avc_http_req_start(req);
    if (rc != AVC_OK) {
        goto done;
    }
    while (!s.done) {
        if (avc_loop_run_once(loop, -1) < 0) {
            break;
        }
    }
    rc = s.done ? s.err : AVC_ESYS;

done:
    avc_http_free(http);        /* cancels the request if still running */
    avc_loop_free(loop);
    if (rc != AVC_OK) {
        free(s.body);
        return rc;
    }
    *status = s.status;
    if (resp != NULL) {
        *resp = s.body;
        if (resp_len) {
            *resp_len = s.len;
        }
    }
    return AVC_OK;
}
