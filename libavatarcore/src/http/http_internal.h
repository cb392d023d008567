/*
 * Declarations shared by the files of src/http (avc__ prefix); not
 * installed.
 */
#ifndef AVC_HTTP_INTERNAL_H
#define AVC_HTTP_INTERNAL_H

#include "internal.h"

#include <avatarcore/http.h>
#include <avatarcore/multipart.h>

#include <curl/curl.h>

/*
 * Fill buf with n random bytes: getrandom(2), or, where it fails, a
 * clock-seeded generator.  Not for secrets: boundaries and jitter only.
 */
void avc__http_random(void *buf, size_t n);

/*
 * Tests only: the boundary avc_multipart_finish() tries first, so that a
 * collision with the content can be provoked (copied; at most 70 bytes).
 */
int avc__multipart_try_boundary(avc_multipart_t *mp, const char *boundary);

/*
 * A request around an easy handle the caller prepared for another
 * protocol curl speaks (SMTP for mail), run on the client's multi handle
 * with the usual deadlines, cancellation and on_done; set them with
 * avc_http_req_set_timeouts / _set_callbacks and start it with
 * avc_http_req_start.
 *
 * The request owns easy from this call on, even when it fails (NULL is
 * returned only when out of memory): curl_easy_cleanup() runs when the
 * request is freed, and then cleanup(cleanup_arg) when cleanup is not
 * NULL, so whatever the handle points to (read callback data, slists)
 * lives exactly as long as it.  The library sets CURLOPT_PRIVATE,
 * CURLOPT_NOSIGNAL, CURLOPT_ERRORBUFFER and CURLOPT_CONNECTTIMEOUT_MS;
 * the caller sets everything else, a write function included.  Such a
 * request makes one attempt (no retry: an upload cannot be replayed).
 * label (e.g. "SMTP") and origin (scheme://host:port, no credentials)
 * are copied and appear in logs.  avc_http_resp_status() gives the
 * protocol's last response code (CURLINFO_RESPONSE_CODE) after success.
 */
avc_http_req_t *avc__http_req_new_easy(avc_http_t *http, CURL *easy,
                                       const char *label, const char *origin,
                                       void (*cleanup)(void *arg),
                                       void *cleanup_arg);

/* The request's easy handle, for curl_easy_getinfo() in on_done. */
CURL *avc__http_req_easy(const avc_http_req_t *req);

/*
 * The curl result of the last attempt (CURLE_OK before one ended) and,
 * when detail is not NULL, curl's error text for it ("" when none;
 * borrowed, valid in on_done).
 */
CURLcode avc__http_req_result(const avc_http_req_t *req,
                              const char **detail);

#endif /* AVC_HTTP_INTERNAL_H */
