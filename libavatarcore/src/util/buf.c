/*
 * A growable, always NUL-terminated byte buffer, and UTF-8 validation.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
avc__buf_init(avc__buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
avc__buf_free(avc__buf_t *b)
{
    free(b->data);
    avc__buf_init(b);
}

void
avc__buf_reset(avc__buf_t *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

static int
avc__buf_reserve(avc__buf_t *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > SIZE_MAX / 2 - b->len) {
        return AVC_ENOMEM;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) {
        return AVC_OK;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) {
        return AVC_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return AVC_OK;
}

int
avc__buf_append(avc__buf_t *b, const void *p, size_t n)
{
    if (avc__buf_reserve(b, n) != AVC_OK) {
        return AVC_ENOMEM;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return AVC_OK;
}

int
avc__buf_appends(avc__buf_t *b, const char *s)
{
    return avc__buf_append(b, s, strlen(s));
}

int
avc__buf_printf(avc__buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || avc__buf_reserve(b, (size_t) n) != AVC_OK) {
        return AVC_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
    return AVC_OK;
}

char *
avc__buf_steal(avc__buf_t *b, size_t *len)
{
    char *p;

    if (b->data == NULL) {
        /* an empty buffer is still an empty string */
        if (avc__buf_reserve(b, 0) != AVC_OK) {
            return NULL;
        }
        b->data[0] = '\0';
    }
    p = b->data;
    if (len) {
        *len = b->len;
    }
    avc__buf_init(b);
    return p;
}

int
avc__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *) s, *end = p + n;
    unsigned c, need, cp, min;

    while (p < end) {
        c = *p++;
        if (c < 0x80) {
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1; cp = c & 0x1f; min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2; cp = c & 0x0f; min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3; cp = c & 0x07; min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t) (end - p) < need) {
            return 0;
        }
        while (need--) {
            c = *p++;
            if ((c & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (c & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }
    return 1;
}

size_t
avc__utf8_prefix(const char *s, size_t max)
{
    size_t i = 0, chars = 0;

    while (s[i] != '\0') {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            if (chars == max) {
                break;
            }
            chars++;
        }
        i++;
    }
    return i;
}

/* n bytes of s, HTML-escaped (text and attribute values alike) */
int
avc__buf_html(avc__buf_t *b, const char *s, size_t n)
{
    const char *p, *end = s + n, *run = s, *rep;

    for (p = s; p < end; p++) {
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            continue;
        }
        if (avc__buf_append(b, run, (size_t) (p - run)) != AVC_OK
            || avc__buf_appends(b, rep) != AVC_OK)
        {
            return AVC_ENOMEM;
        }
        run = p + 1;
    }
    return avc__buf_append(b, run, (size_t) (end - run));
}

/* provider endpoints and their secrets */

static char *
avc_concat(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    char *p = malloc(alen + blen + 1);

    if (p) {
        memcpy(p, a, alen);
        memcpy(p + alen, b, blen + 1);
    }
    return p;
}

char *
avc__url_join(const char *base, const char *path)
{
    size_t bl = strlen(base);

    while (bl > 0 && base[bl - 1] == '/') {
        bl--;
    }
    return avc_concat(base, bl, path);
}

char *
avc__auth_bearer(const char *key)
{
    return avc_concat("Bearer ", 7, key);
}

void
avc__free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}
