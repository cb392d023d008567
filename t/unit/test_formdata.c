/*
 * The streaming multipart/form-data parser: the same parts whatever the
 * body's split into pieces, delimiter look-alikes inside data, quoted
 * names, truncated bodies, oversized headers, callback errors.
 */
#include "../../libavatarcore/src/http/formdata.h"

#include "tap.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char log[8192];
    size_t n;
    int fail_on_data;
} rec_t;

static void
say(rec_t *r, const char *s, size_t n)
{
    if (r->n + n < sizeof(r->log)) {
        memcpy(r->log + r->n, s, n);
        r->n += n;
        r->log[r->n] = '\0';
    }
}

static int
on_part(const char *name, const char *filename, const char *ctype, void *d)
{
    rec_t *r = d;
    char buf[512];

    snprintf(buf, sizeof(buf), "[%s|%s|%s]", name,
             filename ? filename : "-", ctype ? ctype : "-");
    say(r, buf, strlen(buf));
    return AVC_OK;
}

static int
on_data(const char *p, size_t n, void *d)
{
    rec_t *r = d;

    if (r->fail_on_data) {
        return AVC_ETOOBIG;
    }
    say(r, p, n);
    return AVC_OK;
}

static int
on_end(void *d)
{
    say(d, "<end>", 5);
    return AVC_OK;
}

static const char body[] =
    "preamble to ignore\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"files\"; filename=\"a \\\"b\\\".txt\"\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "line one\r\n--XyZnot a boundary\r\n--Xy\r\nend\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=files; filename=c.pdf\r\n"
    "\r\n"
    "%PDF-1.4 binary\0\x01\x02 data\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"note\"\r\n"
    "\r\n"
    "hello\r\n"
    "--XyZ--\r\n"
    "epilogue";

static const char want[] =
    "[files|a \"b\".txt|text/plain]line one\r\n--XyZnot a boundary\r\n--Xy"
    "\r\nend<end>"
    "[files|c.pdf|-]%PDF-1.4 binary\0\x01\x02 data<end>"
    "[note|-|-]hello<end>";

static int
run(const char *b, size_t len, size_t step, rec_t *r)
{
    avc__formdata_t *fd;
    size_t off, n;
    int rc = AVC_OK;

    memset(r, 0, sizeof(*r));
    fd = avc__formdata_new("XyZ", on_part, on_data, on_end, r);
    for (off = 0; off < len && rc == AVC_OK; off += n) {
        n = len - off < step ? len - off : step;
        rc = avc__formdata_feed(fd, b + off, n);
    }
    if (rc == AVC_OK) {
        rc = avc__formdata_finish(fd);
    }
    avc__formdata_free(fd);
    return rc;
}

int
main(void)
{
    rec_t r;
    size_t step, blen = sizeof(body) - 1, wlen = sizeof(want) - 1;
    int all = 1, rc;
    char *b;

    rc = run(body, blen, blen, &r);
    TAP_IS(rc, AVC_OK, "a whole body parses");
    TAP_OK(r.n == wlen && memcmp(r.log, want, wlen) == 0,
           "parts, quoted filenames, look-alikes kept in data");

    for (step = 1; step < blen; step++) {
        rc = run(body, blen, step, &r);
        if (rc != AVC_OK || r.n != wlen || memcmp(r.log, want, wlen) != 0) {
            all = 0;
            tap_diag("differs when fed %zu bytes at a time", step);
            break;
        }
    }
    TAP_OK(all, "the same parts whatever the size of the pieces");

    rc = run(body, blen - 20, 7, &r);
    TAP_IS(rc, AVC_EPARSE, "a body cut before the closing delimiter fails");

    b = malloc(20000);
    strcpy(b, "--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\nX-Pad: ");
    memset(b + strlen(b), 'a', 10000);
    b[strlen("--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\nX-Pad: ")
      + 10000] = '\0';
    rc = run(b, strlen(b), 1000, &r);
    TAP_IS(rc, AVC_EPARSE, "oversized part headers are refused");
    free(b);

    rc = run("--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", 41, 5,
             &r);
    TAP_IS(rc, AVC_EPARSE, "a part without a name is refused");

    memset(&r, 0, sizeof(r));
    {
        avc__formdata_t *fd = avc__formdata_new("XyZ", on_part, on_data,
                                                on_end, &r);
        r.fail_on_data = 1;
        TAP_IS(avc__formdata_feed(fd, body, blen), AVC_ETOOBIG,
               "a callback's error stops the parse");
        TAP_IS(avc__formdata_feed(fd, "x", 1), AVC_ETOOBIG,
               "... and stays");
        avc__formdata_free(fd);
    }

    b = avc__formdata_boundary("multipart/form-data; charset=utf-8; "
                               "boundary=\"----WebKitFormBoundaryAbC\"");
    TAP_STR(b, "----WebKitFormBoundaryAbC", "a quoted boundary");
    free(b);
    b = avc__formdata_boundary("Multipart/Form-Data;boundary=abc");
    TAP_STR(b, "abc", "a bare boundary, any case");
    free(b);
    TAP_OK(avc__formdata_boundary("application/json") == NULL,
           "no boundary in another type");
    TAP_OK(avc__formdata_boundary("multipart/form-data") == NULL,
           "no boundary parameter");
    return tap_done();
}
