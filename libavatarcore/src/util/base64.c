/*
 * Base64 (RFC 4648): one encoder for the standard alphabet with padding
 * (MIME, JSON audio) and the URL-safe one without (JWT), one decoder for
 * audio and files sent by clients.  Tokens have their own strict decoder
 * (auth/token.c): a token has exactly one valid spelling.
 */
#include "internal.h"

#include <stdlib.h>

static const char avc_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char avc_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
avc__buf_base64(avc__buf_t *b, const void *p, size_t n, int url)
{
    const char *a = url ? avc_b64_url : avc_b64_std;
    const unsigned char *s = p;
    char out[1024];
    size_t i, o = 0;
    unsigned v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (unsigned) s[i] << 16 | (unsigned) s[i + 1] << 8 | s[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
        if (o == sizeof(out)) {
            if (avc__buf_append(b, out, o) != AVC_OK) {
                return AVC_ENOMEM;
            }
            o = 0;
        }
    }
    if (i < n) {
        v = (unsigned) s[i] << 16;
        if (i + 1 < n) {
            v |= (unsigned) s[i + 1] << 8;
        }
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = a[(v >> 6) & 63];
        } else if (!url) {
            out[o++] = '=';
        }
        if (!url) {
            out[o++] = '=';
        }
    }
    return o ? avc__buf_append(b, out, o) : AVC_OK;
}

/* the value of a base64 character (both alphabets), 64: CR/LF, 65: '=',
 * 255: not base64 */
static const unsigned char avc_b64_value[256] = {
    ['A'] = 0, ['B'] = 1, ['C'] = 2, ['D'] = 3, ['E'] = 4, ['F'] = 5,
    ['G'] = 6, ['H'] = 7, ['I'] = 8, ['J'] = 9, ['K'] = 10, ['L'] = 11,
    ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15, ['Q'] = 16, ['R'] = 17,
    ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29,
    ['e'] = 30, ['f'] = 31, ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35,
    ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39, ['o'] = 40, ['p'] = 41,
    ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53,
    ['2'] = 54, ['3'] = 55, ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59,
    ['8'] = 60, ['9'] = 61, ['+'] = 62, ['-'] = 62, ['/'] = 63, ['_'] = 63,
    ['\r'] = 64, ['\n'] = 64, ['='] = 65
};

/* 'A' is 0 too: a table entry of 0 for any other byte means "invalid" */
static int
avc_b64_valid(unsigned char c, unsigned v)
{
    return v != 0 || c == 'A';
}

unsigned char *
avc__base64_decode(const char *s, size_t n, size_t *out, int *err)
{
    const unsigned char *p = (const unsigned char *) s;
    unsigned char *r, *o;
    unsigned acc = 0, v;
    size_t i = 0, bits = 0, pad = 0, chars = 0;

    r = malloc(n / 4 * 3 + 3);
    if (r == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    o = r;
    /* four characters at a time while they are plain */
    while (i + 4 <= n) {
        unsigned a = avc_b64_value[p[i]], b = avc_b64_value[p[i + 1]],
                 c = avc_b64_value[p[i + 2]], d = avc_b64_value[p[i + 3]];

        if ((a | b | c | d) >= 64
            || !avc_b64_valid(p[i], a) || !avc_b64_valid(p[i + 1], b)
            || !avc_b64_valid(p[i + 2], c) || !avc_b64_valid(p[i + 3], d))
        {
            break;
        }
        acc = a << 18 | b << 12 | c << 6 | d;
        *o++ = (unsigned char) (acc >> 16);
        *o++ = (unsigned char) (acc >> 8);
        *o++ = (unsigned char) acc;
        chars += 4;
        i += 4;
    }
    /* the rest one by one: line breaks, padding, the last group */
    acc = 0;
    for (; i < n; i++) {
        v = avc_b64_value[p[i]];
        if (!avc_b64_valid(p[i], v)) {
            goto bad;
        }
        if (v == 64) {
            continue;
        }
        if (v == 65) {
            pad++;
            continue;
        }
        if (pad) {
            goto bad;           /* data after padding */
        }
        chars++;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (chars % 4 == 1 || pad > 2 || (pad && (chars + pad) % 4 != 0)) {
        goto bad;
    }
    *out = (size_t) (o - r);
    return r;

bad:
    free(r);
    *err = AVC_EPARSE;
    return NULL;
}
