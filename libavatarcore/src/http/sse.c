/*
 * The Server-Sent Events parser (WHATWG HTML, "Interpreting an event
 * stream").
 *
 * Bytes are collected into the current line until CR or LF; a CR sets a
 * flag so that the LF of a CRLF split across two feeds is not taken for
 * an empty line (which would dispatch too early).
 */
#include "internal.h"

#include <avatarcore/sse.h>

#include <stdlib.h>
#include <string.h>

#define AVC_SSE_MAX_EVENT  (1024 * 1024)

struct avc_sse_s {
    size_t max;
    avc_sse_event_cb on_event;
    avc_sse_comment_cb on_comment;
    void *data;

    avc__buf_t line;            /* the line being collected */
    avc__buf_t buf;             /* the event's data, lines + LF */
    avc__buf_t type;            /* the event type */
    avc__buf_t id;              /* the last event id, kept across events */
    long long retry;

    int after_cr;               /* a CR ended the last line */
    int started;                /* the first line (BOM check) is behind */
    int err;                    /* sticky */
};

AVC_API avc_sse_t *
avc_sse_new(size_t max_event, avc_sse_event_cb on_event,
    avc_sse_comment_cb on_comment, void *data)
{
    avc_sse_t *sse;

    if (on_event == NULL) {
        return NULL;
    }
    sse = calloc(1, sizeof(*sse));
    if (sse == NULL) {
        return NULL;
    }
    sse->max = max_event ? max_event : AVC_SSE_MAX_EVENT;
    sse->on_event = on_event;
    sse->on_comment = on_comment;
    sse->data = data;
    sse->retry = -1;
    avc__buf_init(&sse->line);
    avc__buf_init(&sse->buf);
    avc__buf_init(&sse->type);
    avc__buf_init(&sse->id);
    return sse;
}

AVC_API void
avc_sse_free(avc_sse_t *sse)
{
    if (sse == NULL) {
        return;
    }
    avc__buf_free(&sse->line);
    avc__buf_free(&sse->buf);
    avc__buf_free(&sse->type);
    avc__buf_free(&sse->id);
    free(sse);
}

static int
avc_sse_dispatch(avc_sse_t *sse)
{
    const char *type;
    size_t len;
    int done, rc;

    if (sse->buf.len == 0) {
        avc__buf_reset(&sse->type);
        return AVC_OK;
    }
    len = sse->buf.len - 1;             /* the last data line's LF */
    sse->buf.data[len] = '\0';
    type = sse->type.len ? sse->type.data : "message";
    done = len == 6 && memcmp(sse->buf.data, "[DONE]", 6) == 0;

    rc = sse->on_event(sse->data, type, sse->buf.data, len,
                       sse->id.data ? sse->id.data : "", done);

    avc__buf_reset(&sse->buf);
    avc__buf_reset(&sse->type);
    return rc ? AVC_ECANCELED : AVC_OK;
}

static int
avc_sse_field(avc_sse_t *sse, const char *name, size_t nlen,
    const char *v, size_t vlen)
{
    const char *p;
    long long r;

#define avc_sse_is(s) (nlen == sizeof(s) - 1 && memcmp(name, s, nlen) == 0)

    if (avc_sse_is("data")) {
        if (sse->buf.len + sse->type.len + vlen + 1 > sse->max) {
            return AVC_ETOOBIG;
        }
        if (avc__buf_append(&sse->buf, v, vlen) != AVC_OK
            || avc__buf_append(&sse->buf, "\n", 1) != AVC_OK)
        {
            return AVC_ENOMEM;
        }

    } else if (avc_sse_is("event")) {
        if (sse->buf.len + vlen > sse->max) {
            return AVC_ETOOBIG;
        }
        avc__buf_reset(&sse->type);
        if (avc__buf_append(&sse->type, v, vlen) != AVC_OK) {
            return AVC_ENOMEM;
        }

    } else if (avc_sse_is("id")) {
        if (memchr(v, '\0', vlen) == NULL) {
            avc__buf_reset(&sse->id);
            if (avc__buf_append(&sse->id, v, vlen) != AVC_OK) {
                return AVC_ENOMEM;
            }
        }

    } else if (avc_sse_is("retry")) {
        r = 0;
        for (p = v; p < v + vlen && *p >= '0' && *p <= '9'; p++) {
            if (r < 1000000000000LL) {
                r = r * 10 + (*p - '0');
            }
        }
        if (vlen > 0 && p == v + vlen) {
            sse->retry = r;
        }
    }

#undef avc_sse_is

    return AVC_OK;
}

static int
avc_sse_line(avc_sse_t *sse)
{
    const char *s = sse->line.data ? sse->line.data : "";
    const char *colon, *v;
    size_t len = sse->line.len;

    if (!sse->started) {
        sse->started = 1;
        if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            len -= 3;
        }
    }
    if (len == 0) {
        return avc_sse_dispatch(sse);
    }
    if (s[0] == ':') {
        if (sse->on_comment != NULL
            && sse->on_comment(sse->data, s + 1, len - 1) != 0)
        {
            return AVC_ECANCELED;
        }
        return AVC_OK;
    }
    colon = memchr(s, ':', len);
    if (colon == NULL) {
        return avc_sse_field(sse, s, len, "", 0);
    }
    v = colon + 1;
    if (v < s + len && *v == ' ') {
        v++;
    }
    return avc_sse_field(sse, s, (size_t) (colon - s), v,
                         (size_t) (s + len - v));
}

AVC_API int
avc_sse_feed(avc_sse_t *sse, const char *p, size_t n)
{
    const char *end = p + n, *q;
    int rc;

    if (sse == NULL || (p == NULL && n > 0)) {
        return AVC_EINVAL;
    }
    if (sse->err) {
        return sse->err;
    }
    while (p < end) {
        if (sse->after_cr) {
            sse->after_cr = 0;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        for (q = p; q < end && *q != '\r' && *q != '\n'; q++) {
            /* find the end of the line */
        }
        if ((size_t) (q - p) > sse->max - sse->line.len) {
            sse->err = AVC_ETOOBIG;
            return sse->err;
        }
        if (avc__buf_append(&sse->line, p, (size_t) (q - p)) != AVC_OK) {
            sse->err = AVC_ENOMEM;
            return sse->err;
        }
        if (q == end) {
            break;
        }
        sse->after_cr = *q == '\r';
        p = q + 1;
        rc = avc_sse_line(sse);
        avc__buf_reset(&sse->line);
        if (rc != AVC_OK) {
            sse->err = rc;
            return rc;
        }
    }
    return AVC_OK;
}

AVC_API int
avc_sse_finish(avc_sse_t *sse)
{
    int pending;

    if (sse == NULL) {
        return AVC_EINVAL;
    }
    if (sse->err) {
        return sse->err;
    }
    pending = sse->line.len > 0 || sse->buf.len > 0;
    avc__buf_reset(&sse->line);
    avc__buf_reset(&sse->buf);
    avc__buf_reset(&sse->type);
    sse->after_cr = 0;
    return pending ? AVC_EPROTO : AVC_OK;
}

AVC_API long long
avc_sse_retry(const avc_sse_t *sse)
{
    return sse ? sse->retry : -1;
}

AVC_API const char *
avc_sse_last_id(const avc_sse_t *sse)
{
    return sse && sse->id.data ? sse->id.data : "";
}
