/*
 * avatarcore/http.h - an asynchronous HTTP client on libcurl's multi-socket
 * API, driven by a loop (avatarcore/loop.h).
 *
 * One client (avc_http_t) per loop: it owns one curl multi handle, so
 * connections are reused across requests (keep-alive, and HTTP/2
 * multiplexing where the server offers it over TLS).  The client never
 * blocks; DNS runs on curl's resolver thread.
 *
 * A request's life:
 *
 *   req = avc_http_req_new(http, "POST", url);     caller owns req
 *   avc_http_req_add_header(req, "Content-Type", "application/json");
 *   avc_http_req_set_body(req, json, len);
 *   avc_http_req_set_timeouts(req, 5000, 30000, 120000);
 *   avc_http_req_set_retry(req, 3, 250);
 *   avc_http_req_set_callbacks(req, on_response, on_data, on_done, ctx);
 *   rc = avc_http_req_start(req);                  the library owns req
 *
 * Ownership: a request belongs to the caller from avc_http_req_new() until
 * avc_http_req_start(), which hands it to the library whether it succeeds
 * or not (on failure it is freed at once and no callback is called).  A
 * request that is never started is released with avc_http_req_free().
 * After a successful start the request stays valid until its on_done
 * callback returns, or until avc_http_cancel(); then the library frees
 * it.  Do not keep the pointer beyond that.
 *
 * Setters record their first failure in the request; avc_http_req_start()
 * then fails with it, so callers may check only the start.
 *
 * Callbacks, in order, for a started request:
 *
 *   on_response  at most once, when the final response's headers are in;
 *   on_data      zero or more times, for each body chunk as it arrives;
 *   on_done      exactly once, at the end (unless cancelled).
 *
 * err given to on_done:
 *   AVC_OK         a response was received in full, whatever its status
 *                  (the client never turns a status into an error: check
 *                  avc_http_resp_status());
 *   AVC_ECONNECT   could not connect (after the allowed attempts);
 *   AVC_ETIMEDOUT  a deadline passed (connect, first byte or total);
 *   AVC_EHTTP      the transfer failed after it started (reset, truncated
 *                  body, protocol error);
 *   AVC_ETOOBIG    buffered body over its limit;
 *   AVC_ECANCELED  on_response or on_data returned non-zero;
 *   AVC_ENOMEM, AVC_EINVAL (bad URL, unsupported scheme).
 *
 * Retries: an attempt is retried only when it failed to connect, or when
 * the server answered 429 or 5xx, and only while nothing has been given
 * to the caller (on_response not yet called).  The wait is the base
 * backoff doubled per attempt with jitter, or the server's Retry-After
 * (delta-seconds or HTTP-date) when longer.  No retry is made when the
 * wait would end after the total deadline, or when Retry-After asks for
 * more than 60 s without a total deadline: then the last response (e.g.
 * the 429 itself) is delivered as final.
 *
 * Cancellation (avc_http_cancel, avc_http_free, a deadline, or a callback
 * returning non-zero) aborts the transfer: its connection is closed, not
 * returned to the pool, so the server sees the client go away.  Over
 * HTTP/2, where other requests may share the connection, the request's
 * stream is reset instead.
 *
 * Thread safety: a client and its requests belong to the loop's thread.
 */
#ifndef AVATARCORE_HTTP_H
#define AVATARCORE_HTTP_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_http_s avc_http_t;
typedef struct avc_http_req_s avc_http_req_t;

/*
 * The final response's headers are in.  status is the HTTP status; the
 * headers are readable with avc_http_resp_header().  Return 0 to go on,
 * non-zero to abort (on_done then gets AVC_ECANCELED).
 */
typedef int (*avc_http_response_cb)(avc_http_req_t *req, int status,
                                    void *data);

/*
 * A chunk of the (decoded) body; p is borrowed for the call only.  Return
 * 0 to go on, non-zero to abort (on_done then gets AVC_ECANCELED).
 */
typedef int (*avc_http_data_cb)(avc_http_req_t *req, const char *p,
                                size_t n, void *data);

/*
 * The end.  The request and everything it returns stay valid until this
 * returns; then the library frees it.
 */
typedef void (*avc_http_done_cb)(avc_http_req_t *req, int err, void *data);

/*
 * A client on loop (borrowed: it must outlive the client).  Returns NULL
 * when out of memory or when libcurl cannot be initialised.
 */
AVC_API avc_http_t *avc_http_new(avc_loop_t *loop);

/*
 * Abort every request still running (their callbacks are not called),
 * close every connection and free the client.  May be called from a
 * request callback of this client; the release then completes when the
 * callback returns.  NULL is a no-op.
 */
AVC_API void avc_http_free(avc_http_t *http);

/*
 * Connection limits.  max_idle: connections kept open in the pool for
 * reuse (default 64; 0 lets curl choose); per_host and total:
 * concurrently open connections per host and overall, 0 meaning
 * unlimited (the default).  Requests over a limit wait for a connection.
 */
AVC_API int avc_http_set_limits(avc_http_t *http, unsigned max_idle,
                                unsigned per_host, unsigned total);

/*
 * A new request.  method NULL means "GET"; url is an http:// or https://
 * URL.  Both are copied.  Returns NULL only when out of memory; an invalid
 * method or URL is reported by avc_http_req_start() (AVC_EINVAL).
 */
AVC_API avc_http_req_t *avc_http_req_new(avc_http_t *http,
                                         const char *method,
                                         const char *url);

/* Free a request that was never started; a no-op on a started one (the
 * library owns it: use avc_http_cancel).  NULL is a no-op. */
AVC_API void avc_http_req_free(avc_http_req_t *req);

/*
 * Add a request header (name and value copied).  CR, LF and NUL are
 * refused (AVC_EINVAL), so a header can never inject another.  A header
 * the client sets by itself (User-Agent, Accept-Encoding) is replaced.
 */
AVC_API int avc_http_req_add_header(avc_http_req_t *req, const char *name,
                                    const char *value);

/* The request body: n bytes copied from p. */
AVC_API int avc_http_req_set_body(avc_http_req_t *req, const void *p,
                                  size_t n);

/*
 * The request body, taking ownership of p (allocated with malloc; freed
 * by the library with free(), also when this fails).
 */
AVC_API int avc_http_req_take_body(avc_http_req_t *req, void *p, size_t n);

/*
 * Deadlines in milliseconds, 0 meaning none.  connect_ms: per attempt,
 * to establish the connection (DNS, TCP, TLS; default 10000).
 * first_byte_ms: per attempt, from its start until the first response
 * header arrives.  total_ms: the whole request, retries and waits
 * included.  A missed deadline aborts with AVC_ETIMEDOUT; a connect
 * deadline counts as a connect failure for the retry policy.
 */
AVC_API int avc_http_req_set_timeouts(avc_http_req_t *req,
                                      unsigned connect_ms,
                                      unsigned first_byte_ms,
                                      unsigned total_ms);

/*
 * Retry policy: at most max_attempts attempts in all (default 1: no
 * retry), waiting about backoff_ms before the second (default 200),
 * doubling after each, with jitter.
 */
AVC_API int avc_http_req_set_retry(avc_http_req_t *req,
                                   unsigned max_attempts,
                                   unsigned backoff_ms);

/*
 * Largest response body kept when no on_data callback is set (default
 * 8 MiB); a larger body aborts with AVC_ETOOBIG.
 */
AVC_API int avc_http_req_set_max_body(avc_http_req_t *req, size_t max);

/*
 * Callbacks and the caller's data.  on_response and on_data may be NULL;
 * without on_data the body is buffered for avc_http_resp_body().
 * on_done is required.
 */
AVC_API int avc_http_req_set_callbacks(avc_http_req_t *req,
                                       avc_http_response_cb on_response,
                                       avc_http_data_cb on_data,
                                       avc_http_done_cb on_done,
                                       void *data);

/*
 * Start the request; ownership passes to the library (see above).  The
 * first attempt begins on the next loop iteration; the callbacks are
 * never called from within this function.  Returns AVC_OK, a setter's
 * recorded error, AVC_EINVAL (no on_done, bad method or URL) or
 * AVC_ESTATE (the client is being freed).
 */
AVC_API int avc_http_req_start(avc_http_req_t *req);

/*
 * Abort a started request: no callback is called afterwards, the
 * connection is closed and the request is freed.  A no-op when called
 * from the request's own on_done.  NULL is a no-op.
 */
AVC_API void avc_http_cancel(avc_http_req_t *req);

/* The data given to avc_http_req_set_callbacks(). */
AVC_API void *avc_http_req_data(const avc_http_req_t *req);

/* Attempts made so far (1 when the first attempt is running). */
AVC_API unsigned avc_http_req_attempts(const avc_http_req_t *req);

/* The response status, or 0 before on_response. */
AVC_API int avc_http_resp_status(const avc_http_req_t *req);

/*
 * A response header by name, compared case-insensitively: the value of
 * its first occurrence (borrowed, surrounding spaces trimmed), or NULL.
 */
AVC_API const char *avc_http_resp_header(const avc_http_req_t *req,
                                         const char *name);

/* Response headers by position, in order of arrival: AVC_OK, or
 * AVC_ENOTFOUND past the last.  *name and *value are borrowed. */
AVC_API int avc_http_resp_header_at(const avc_http_req_t *req, size_t i,
                                    const char **name, const char **value);

/*
 * The buffered body (no on_data set), NUL-terminated after *len bytes;
 * borrowed, valid in on_done.  Never NULL ("" when empty).
 */
AVC_API const char *avc_http_resp_body(const avc_http_req_t *req,
                                       size_t *len);

/*
 * The buffered body, handed over: a new string (free() it), or NULL when
 * out of memory.  avc_http_resp_body() is empty afterwards.
 */
AVC_API char *avc_http_resp_body_take(avc_http_req_t *req, size_t *len);

/*
 * Blocking convenience for simple callers (tools, never a worker): run
 * one request on a private built-in loop.  headers is a NULL-terminated
 * array of "Name: value" lines, or NULL; body may be NULL.  timeout_ms is
 * the total deadline (0: none; the connect deadline is 10 s).  On AVC_OK,
 * *status is the response status and *resp (when resp is not NULL) a new
 * NUL-terminated string of *resp_len bytes, to free(); max_resp bounds it
 * (0: 8 MiB).  Any other return is an error code as for on_done.
 */
AVC_API int avc_http_fetch_sync(const char *method, const char *url,
                                const char *const *headers,
                                const void *body, size_t body_len,
                                unsigned timeout_ms, size_t max_resp,
                                int *status, char **resp, size_t *resp_len);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_HTTP_H */
