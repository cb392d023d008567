/*
 * SMTP through libcurl, on the HTTP client's multi handle (a "raw"
 * request, see http_internal.h), so it shares the loop integration,
 * deadlines and cancellation of every other provider call and never
 * blocks.
 *
 * curl does the protocol: EHLO, STARTTLS when asked, AUTH with the best
 * mechanism the server offers, MAIL FROM, RCPT TO, DATA with dot-stuffing
 * and QUIT.  The message is already a complete CRLF-terminated RFC 5322
 * text (message.c).
 */
#include "mail_internal.h"

#include "../http/http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char *msg;
    size_t len;
    size_t off;
    struct curl_slist *rcpts;
} avc_smtp_upload_t;

static size_t
avc_smtp_read(char *buf, size_t size, size_t nitems, void *arg)
{
    avc_smtp_upload_t *u = arg;
    size_t n = size * nitems;

    if (n > u->len - u->off) {
        n = u->len - u->off;
    }
    memcpy(buf, u->msg + u->off, n);
    u->off += n;
    return n;
}

/* nothing is downloaded for a send, but curl's default would write any
 * such data to stdout */
static size_t
avc_smtp_discard(char *p, size_t size, size_t nmemb, void *arg)
{
    return size * nmemb;
}

static void
avc_smtp_cleanup(void *arg)
{
    avc_smtp_upload_t *u = arg;

    free(u->msg);
    curl_slist_free_all(u->rcpts);
    free(u);
}

int
avc__smtp_origin(const char *url, char **origin)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
    avc__buf_t b;
    int rc = AVC_EINVAL;

    *origin = NULL;
    u = curl_url();
    if (u == NULL) {
        return AVC_ENOMEM;
    }
    if (url == NULL
        || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)
           != CURLUE_OK)
    {
        goto done;
    }
    if (strcasecmp(scheme, "smtp") != 0 && strcasecmp(scheme, "smtps") != 0)
    {
        goto done;
    }
    /* credentials belong in mail.user and mail.password, not in a URL
     * that ends up in configuration files and logs */
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        goto done;
    }
    avc__buf_init(&b);
    if (avc__buf_printf(&b, "%s://%s:%s", scheme, host, port) != AVC_OK) {
        avc__buf_free(&b);
        rc = AVC_ENOMEM;
        goto done;
    }
    *origin = avc__buf_steal(&b, NULL);
    rc = *origin ? AVC_OK : AVC_ENOMEM;

done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

avc_http_req_t *
avc__smtp_request(avc_http_t *http, const avc__smtp_conf_t *conf,
    const char *from_addr, char *const *rcpts, char *msg, size_t len,
    int *err)
{
    avc_smtp_upload_t *u;
    struct curl_slist *l;
    avc_http_req_t *req;
    avc__buf_t b;
    CURLcode c = CURLE_OK;
    CURL *e;
    size_t i;
    long ssl;

    *err = AVC_ENOMEM;
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        free(msg);
        return NULL;
    }
    u->msg = msg;
    u->len = len;
    avc__buf_init(&b);
    for (i = 0; rcpts[i]; i++) {
        avc__buf_reset(&b);
        if (avc__buf_printf(&b, "<%s>", rcpts[i]) != AVC_OK) {
            goto failed;
        }
        l = curl_slist_append(u->rcpts, b.data);
        if (l == NULL) {
            goto failed;
        }
        u->rcpts = l;
    }
    avc__buf_reset(&b);
    if (avc__buf_printf(&b, "<%s>", from_addr) != AVC_OK) {
        goto failed;
    }
    e = curl_easy_init();
    if (e == NULL) {
        goto failed;
    }

    switch (conf->starttls) {
    case 0:
        ssl = CURLUSESSL_NONE;
        break;
    case 2:
        ssl = CURLUSESSL_ALL;
        break;
    default:
        ssl = CURLUSESSL_TRY;
    }
    c |= curl_easy_setopt(e, CURLOPT_URL, conf->url);
    c |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    c |= curl_easy_setopt(e, CURLOPT_MAIL_FROM, b.data);
    c |= curl_easy_setopt(e, CURLOPT_MAIL_RCPT, u->rcpts);
    c |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    c |= curl_easy_setopt(e, CURLOPT_READFUNCTION, avc_smtp_read);
    c |= curl_easy_setopt(e, CURLOPT_READDATA, u);
    c |= curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t) len);
    c |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, avc_smtp_discard);
    c |= curl_easy_setopt(e, CURLOPT_USE_SSL, ssl);
    if (conf->user && *conf->user) {
        c |= curl_easy_setopt(e, CURLOPT_USERNAME, conf->user);
        c |= curl_easy_setopt(e, CURLOPT_PASSWORD,
                              conf->password ? conf->password : "");
    }
    avc__buf_free(&b);

    /* from here on the request owns e and u, also when it fails */
    req = avc__http_req_new_easy(http, e, "SMTP", conf->origin,
                                 avc_smtp_cleanup, u);
    if (req == NULL) {
        return NULL;
    }
    if (c != CURLE_OK) {
        avc_http_req_free(req);
        return NULL;
    }
    avc_http_req_set_timeouts(req, conf->timeout_ms < 10000
                                   ? conf->timeout_ms : 10000,
                              0, conf->timeout_ms);
    *err = AVC_OK;
    return req;

failed:
    avc__buf_free(&b);
    avc_smtp_cleanup(u);
    return NULL;
}

int
avc__smtp_result(avc_http_req_t *req, int err, char *detail, size_t n)
{
    CURLcode rc;
    const char *msg;
    long code = 0;

    detail[0] = '\0';
    if (err == AVC_OK) {
        return AVC_OK;
    }
    rc = avc__http_req_result(req, &msg);
    curl_easy_getinfo(avc__http_req_easy(req), CURLINFO_RESPONSE_CODE,
                      &code);
    if (err != AVC_ETIMEDOUT && err != AVC_ECANCELED) {
        if (rc == CURLE_LOGIN_DENIED) {
            err = AVC_EAUTH;
        } else if (code >= 400) {
            err = AVC_EUPSTREAM;
        }
    }
    if (msg == NULL || *msg == '\0') {
        msg = curl_easy_strerror(rc);
    }
    if (code > 0) {
        snprintf(detail, n, "smtp: %s: %s (reply %ld)", avc_strerror(err),
                 msg, code);
    } else {
        snprintf(detail, n, "smtp: %s: %s", avc_strerror(err), msg);
    }
    return err;
}
