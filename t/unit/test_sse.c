/*
 * The SSE parser: splitting anywhere, line endings, fields, comments,
 * [DONE], limits and malformed lines.
 */
#include "tap.h"

#include <avatarcore/sse.h>

#include <stdlib.h>
#include <string.h>

/* events and comments are logged as text, so runs compare as strings */
typedef struct {
    char log[8192];
    size_t len;
    int events;
    int stop_after;             /* stop at this event (0: never) */
} rec_t;

static void
rec_add(rec_t *r, const char *s, size_t n)
{
    if (r->len + n < sizeof(r->log)) {
        memcpy(r->log + r->len, s, n);
        r->len += n;
        r->log[r->len] = '\0';
    }
}

static int
on_event(void *data, const char *type, const char *payload, size_t len,
    const char *id, int done)
{
    rec_t *r = data;

    rec_add(r, "[", 1);
    rec_add(r, type, strlen(type));
    rec_add(r, "|", 1);
    rec_add(r, payload, len);
    rec_add(r, "|", 1);
    rec_add(r, id, strlen(id));
    rec_add(r, done ? "|done]" : "]", done ? 6 : 1);
    r->events++;
    return r->stop_after && r->events >= r->stop_after;
}

static int
on_comment(void *data, const char *text, size_t len)
{
    rec_t *r = data;

    rec_add(r, "{", 1);
    rec_add(r, text, len);
    rec_add(r, "}", 1);
    return 0;
}

static const char stream[] =
    "\xEF\xBB\xBF: hello comment\r\n"
    "data: hello\n"
    "\n"
    "event: update\n"
    "data: line1\n"
    "data: line2\n"
    "data:\n"
    "id: 42\n"
    "\n"
    "data:no-space\r\n"
    "\r\n"
    "data:  two spaces\r"
    "\r"
    ":\n"
    "retry: 3000\n"
    "retry: 12x\n"
    "data\n"
    "\n"
    "foo: bar\n"
    "garbage line without colon\n"
    "event: lonely\n"
    "\n"
    "data: after: colon\n"
    "\n"
    "id\n"
    "data: {\"x\":1}\r\n"
    "\r\n"
    "data: [DONE]\n"
    "\n";

static const char expect[] =
    "{ hello comment}"
    "[message|hello|]"
    "[update|line1\nline2\n|42]"
    "[message|no-space|42]"
    "[message| two spaces|42]"
    "{}"
    "[message||42]"
    "[message|after: colon|42]"
    "[message|{\"x\":1}|]"
    "[message|[DONE]||done]";

static int
run(const char *s, size_t n, const size_t *cuts, size_t ncuts, rec_t *r,
    avc_sse_t **out)
{
    avc_sse_t *sse;
    size_t i, at = 0;
    int rc = AVC_OK;

    memset(r, 0, sizeof(*r));
    sse = avc_sse_new(0, on_event, on_comment, r);
    if (sse == NULL) {
        return AVC_ENOMEM;
    }
    for (i = 0; i <= ncuts && rc == AVC_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : n;

        rc = avc_sse_feed(sse, s + at, end - at);
        at = end;
    }
    if (rc == AVC_OK) {
        rc = avc_sse_finish(sse);
    }
    if (out) {
        *out = sse;
    } else {
        avc_sse_free(sse);
    }
    return rc;
}

static void
test_reference(void)
{
    rec_t r;
    avc_sse_t *sse;
    int rc;

    rc = run(stream, sizeof(stream) - 1, NULL, 0, &r, &sse);
    TAP_IS(rc, AVC_OK, "whole stream parses");
    TAP_STR(r.log, expect, "events, comments, fields as specified");
    TAP_IS(r.events, 8, "eight events dispatched");
    TAP_IS(avc_sse_retry(sse), 3000, "retry: digits only are taken");
    TAP_STR(avc_sse_last_id(sse), "", "empty id resets the last id");
    avc_sse_free(sse);
}

static void
test_splits(void)
{
    size_t n = sizeof(stream) - 1, i, j, cuts[2];
    int bad1 = 0, bad2 = 0, bad_bytes = 0;
    rec_t r;
    avc_sse_t *sse;

    for (i = 0; i <= n; i++) {
        cuts[0] = i;
        if (run(stream, n, cuts, 1, &r, NULL) != AVC_OK
            || strcmp(r.log, expect) != 0)
        {
            if (bad1++ == 0) {
                tap_diag("split at %zu: %s", i, r.log);
            }
        }
    }
    TAP_IS(bad1, 0, "split at every byte position: same events");

    for (i = 0; i <= n; i += 3) {
        for (j = i; j <= n; j++) {
            cuts[0] = i;
            cuts[1] = j;
            if (run(stream, n, cuts, 2, &r, NULL) != AVC_OK
                || strcmp(r.log, expect) != 0)
            {
                bad2++;
            }
        }
    }
    TAP_IS(bad2, 0, "split at two positions: same events");

    memset(&r, 0, sizeof(r));
    sse = avc_sse_new(0, on_event, on_comment, &r);
    for (i = 0; i < n; i++) {
        if (avc_sse_feed(sse, stream + i, 1) != AVC_OK) {
            bad_bytes++;
        }
    }
    TAP_IS(bad_bytes + avc_sse_finish(sse), 0, "byte by byte: no error");
    TAP_STR(r.log, expect, "byte by byte: same events");
    avc_sse_free(sse);
}

static void
test_line_endings(void)
{
    const char *lf = "event: a\ndata: 1\ndata: 2\n\ndata: 3\n\n";
    const char *crlf = "event: a\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n";
    const char *cr = "event: a\rdata: 1\rdata: 2\r\rdata: 3\r\r";
    const char *want = "[a|1\n2|][message|3|]";
    rec_t r;
    size_t cut;

    run(lf, strlen(lf), NULL, 0, &r, NULL);
    TAP_STR(r.log, want, "LF");
    run(crlf, strlen(crlf), NULL, 0, &r, NULL);
    TAP_STR(r.log, want, "CRLF");
    run(cr, strlen(cr), NULL, 0, &r, NULL);
    TAP_STR(r.log, want, "CR");

    /* a CRLF split between two feeds is one line end, not two */
    cut = strlen("event: a\r\ndata: 1\r");
    run(crlf, strlen(crlf), &cut, 1, &r, NULL);
    TAP_STR(r.log, want, "CRLF split between CR and LF");
}

static void
test_merged(void)
{
    char buf[4096];
    size_t len = 0;
    rec_t r;
    int i, rc;

    for (i = 0; i < 100; i++) {
        len += (size_t) snprintf(buf + len, sizeof(buf) - len,
                                 "data: {\"n\":%d}\n\n", i);
    }
    rc = run(buf, len, NULL, 0, &r, NULL);
    TAP_IS(rc, AVC_OK, "100 events in one chunk");
    TAP_IS(r.events, 100, "all 100 dispatched");
    TAP_OK(strstr(r.log, "[message|{\"n\":99}|]") != NULL, "the last one");
}

static void
test_done_and_stop(void)
{
    const char *s = "data: [DONE] \n\ndata:[DONE]\n\ndata: x\n\n";
    rec_t r;
    avc_sse_t *sse;
    int rc;

    run(s, strlen(s), NULL, 0, &r, NULL);
    TAP_STR(r.log, "[message|[DONE] |][message|[DONE]||done][message|x|]",
            "only data exactly [DONE] is flagged");

    memset(&r, 0, sizeof(r));
    r.stop_after = 1;
    sse = avc_sse_new(0, on_event, NULL, &r);
    rc = avc_sse_feed(sse, s, strlen(s));
    TAP_IS(rc, AVC_ECANCELED, "callback stop -> AVC_ECANCELED");
    TAP_IS(r.events, 1, "no event after the stop");
    TAP_IS(avc_sse_feed(sse, "data: y\n\n", 9), AVC_ECANCELED,
           "the error is sticky");
    avc_sse_free(sse);
}

static void
test_limits(void)
{
    const char *big = "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n";
    rec_t r;
    avc_sse_t *sse;
    int rc;

    memset(&r, 0, sizeof(r));
    sse = avc_sse_new(32, on_event, NULL, &r);
    rc = avc_sse_feed(sse, "data: short\n\n", 13);
    TAP_IS(rc, AVC_OK, "small event under the limit");
    rc = avc_sse_feed(sse, big, strlen(big));
    TAP_IS(rc, AVC_ETOOBIG, "event over the limit -> AVC_ETOOBIG");
    TAP_IS(avc_sse_finish(sse), AVC_ETOOBIG, "finish reports it too");
    TAP_IS(r.events, 1, "nothing dispatched after it");
    avc_sse_free(sse);

    memset(&r, 0, sizeof(r));
    sse = avc_sse_new(32, on_event, NULL, &r);
    rc = avc_sse_feed(sse, ": a comment that goes on and on and on", 38);
    TAP_IS(rc, AVC_ETOOBIG, "an endless line hits the limit unterminated");
    avc_sse_free(sse);
}

static void
test_finish(void)
{
    rec_t r;
    avc_sse_t *sse;

    memset(&r, 0, sizeof(r));
    sse = avc_sse_new(0, on_event, NULL, &r);
    avc_sse_feed(sse, "data: a\n\ndata: truncated\n", 25);
    TAP_IS(avc_sse_finish(sse), AVC_EPROTO,
           "stream ending inside an event -> AVC_EPROTO");
    TAP_STR(r.log, "[message|a|]", "the incomplete event is dropped");
    avc_sse_free(sse);

    memset(&r, 0, sizeof(r));
    sse = avc_sse_new(0, on_event, NULL, &r);
    avc_sse_feed(sse, "data: a\n\ndata: b", 16);
    TAP_IS(avc_sse_finish(sse), AVC_EPROTO, "unterminated line too");
    avc_sse_free(sse);

    TAP_OK(avc_sse_new(0, NULL, NULL, NULL) == NULL, "on_event required");
    avc_sse_free(NULL);
    TAP_OK(1, "avc_sse_free(NULL) is a no-op");
}

static void
test_ids(void)
{
    const char s[] = "id: 7\ndata: a\n\nid: x\0y\ndata: b\n\n";
    rec_t r;

    run(s, sizeof(s) - 1, NULL, 0, &r, NULL);
    TAP_STR(r.log, "[message|a|7][message|b|7]",
            "an id with NUL is ignored, the last id persists");
}

int
main(void)
{
    test_reference();
    test_splits();
    test_line_endings();
    test_merged();
    test_done_and_stop();
    test_limits();
    test_finish();
    test_ids();
    return tap_done();
}
