/*
 * Helpers of the voice API: base64 both ways (every length, with and
 * without padding, line breaks, the URL-safe alphabet, and what must be
 * refused).
 */
#include "tap.h"

#include "../../libavatarcore/src/voice/voice_int.h"

#include <stdlib.h>
#include <string.h>

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
        e = avc__b64_encode(buf, len);
        d = avc__b64_decode(e, strlen(e), &n, &err);
        good &= d && n == (size_t) len && memcmp(d, buf, len) == 0;
        free(d);
        /* padding left out */
        q = strchr(e, '=');
        if (q) {
            *q = '\0';
        }
        d = avc__b64_decode(e, strlen(e), &n, &err);
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
        d = avc__b64_decode(b, strlen(b), &n, &err);
        crlf &= d && n == (size_t) len && memcmp(d, buf, len) == 0;
        free(d);
        free(b);
        free(e);
    }
    TAP_OK(good, "encode then decode gives the bytes back, lengths 0-599");
    TAP_OK(nopad, "... also without the padding");
    TAP_OK(crlf, "... also with line breaks");
    e = avc__b64_encode("Man", 3);
    TAP_STR(e, "TWFu", "\"Man\" is TWFu");
    free(e);
    e = avc__b64_encode("Ma", 2);
    TAP_STR(e, "TWE=", "\"Ma\" is TWE=");
    free(e);
    d = avc__b64_decode("-_-_", 4, &n, &err);
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
        d = avc__b64_decode(bad[i], strlen(bad[i]), &n, &err);
        if (d || err != AVC_EPARSE) {
            TAP_OK(0, "refused: \"%s\"", bad[i]);
            refused = 0;
        }
        free(d);
    }
    TAP_OK(refused, "bad characters, data after padding, too much padding"
                    " and impossible lengths are refused (AVC_EPARSE)");
}

int
main(void)
{
    test_roundtrip();
    test_refused();
    return tap_done();
}
