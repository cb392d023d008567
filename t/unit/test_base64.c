/*
 * Base64 (util/base64.c): both alphabets, every length, with and without
 * padding, line breaks, and what the decoder must refuse; and the
 * providers' URL and bearer helpers of util/buf.c.
 */
#include "tap.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* the standard (url 0) or URL-safe (url 1) encoding as a new string */
static char *
enc(const void *p, size_t n, int url)
{
    avc__buf_t b;

    avc__buf_init(&b);
    if (avc__buf_base64(&b, p, n, url) != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}

static void
test_roundtrip(void)
{
    unsigned char buf[600];
    int len, err, good = 1, nopad = 1, crlf = 1;
    size_t n, i;
    char *e, *q, *b;
    unsigned char *d;

    srand(7);
    for (len = 0; len < 600; len++) {
        for (i = 0; i < (size_t) len; i++) {
            buf[i] = (unsigned char) rand();
        }
        e = enc(buf, len, 0);
        d = avc__base64_decode(e, strlen(e), &n, &err);
        good &= d && n == (size_t) len && memcmp(d, buf, len) == 0;
        free(d);
        /* padding left out */
        q = strchr(e, '=');
        if (q) {
            *q = '\0';
        }
        d = avc__base64_decode(e, strlen(e), &n, &err);
        nopad &= d && n == (size_t) len && memcmp(d, buf, len) == 0;
        free(d);
        /* a line break every 76 characters, as MIME writes it */
        b = malloc(strlen(e) * 2 + 4);
        for (i = 0, n = 0; e[i]; i++) {
            if (i && i % 76 == 0) {
                b[n++] = '\r';
                b[n++] = '\n';
            }
            b[n++] = e[i];
        }
        b[n] = '\0';
        d = avc__base64_decode(b, strlen(b), &n, &err);
        crlf &= d && n == (size_t) len && memcmp(d, buf, len) == 0;
        free(d);
        free(b);
        free(e);
    }
    TAP_OK(good, "encode then decode gives the bytes back, lengths 0-599");
    TAP_OK(nopad, "... also without the padding");
    TAP_OK(crlf, "... also with line breaks");
    e = enc("Man", 3, 0);
    TAP_STR(e, "TWFu", "\"Man\" is TWFu");
    free(e);
    e = enc("Ma", 2, 0);
    TAP_STR(e, "TWE=", "\"Ma\" is TWE=");
    free(e);
    e = enc("M", 1, 0);
    TAP_STR(e, "TQ==", "\"M\" is TQ==");
    free(e);
    e = enc("", 0, 0);
    TAP_STR(e, "", "nothing is nothing");
    free(e);
    e = enc("\xfb\xff\xbf\xfb", 4, 1);
    TAP_STR(e, "-_-_-w", "URL-safe: its alphabet, no padding");
    free(e);
    e = enc("\xfb\xff\xbf\xfb", 4, 0);
    TAP_STR(e, "+/+/+w==", "... the standard one: + / and padding");
    free(e);
    memset(buf, 0xab, sizeof(buf));
    e = enc(buf, sizeof(buf), 0);       /* over the encoder's block */
    d = e ? avc__base64_decode(e, strlen(e), &n, &err) : NULL;
    TAP_OK(e && strlen(e) == 800 && d && n == 600
           && memcmp(d, buf, 600) == 0, "600 bytes: 800 characters, back");
    free(d);
    free(e);
    d = avc__base64_decode("-_-_", 4, &n, &err);
    TAP_OK(d && n == 3 && d[0] == 0xfb && d[1] == 0xff && d[2] == 0xbf,
           "the URL-safe alphabet is read too");
    free(d);
}

static void
test_refused(void)
{
    static const char *const bad[] = {
        "@@@@", "QQ=A", "Q", "QUJD\x01", "QUJDRA===", "QU JD", "QUJD\tRA==",
        "=QUJD", "QUJDR", "QUJD\xc3\xa9", NULL
    };
    size_t i, n;
    int err, refused = 1;
    unsigned char *d;

    for (i = 0; bad[i]; i++) {
        err = 0;
        d = avc__base64_decode(bad[i], strlen(bad[i]), &n, &err);
        if (d || err != AVC_EPARSE) {
            TAP_OK(0, "refused: \"%s\"", bad[i]);
            refused = 0;
        }
        free(d);
    }
    TAP_OK(refused, "bad characters, data after padding, too much padding"
                    " and impossible lengths are refused (AVC_EPARSE)");
}

/* the other small string helpers of util/buf.c the providers share */
static void
test_endpoints(void)
{
    char *s;

    s = avc__url_join("https://api.example.com/v1///", "/chat/completions");
    TAP_STR(s, "https://api.example.com/v1/chat/completions",
            "url_join drops the base's trailing slashes");
    free(s);
    s = avc__url_join("http://127.0.0.1:8080/", "");
    TAP_STR(s, "http://127.0.0.1:8080", "... with an empty path: the base");
    free(s);
    s = avc__url_join("", "/x");
    TAP_STR(s, "/x", "... an empty base");
    free(s);
    s = avc__auth_bearer("sk-123");
    TAP_STR(s, "Bearer sk-123", "auth_bearer");
    avc__free_secret(s);
    avc__free_secret(NULL);     /* a no-op: a crash fails the run */
}

int
main(void)
{
    test_roundtrip();
    test_refused();
    test_endpoints();
    return tap_done();
}
