/*
 * A streaming multipart/form-data parser (RFC 7578): the body is fed in
 * pieces of any size as it arrives, and parts are reported as they are
 * found, their data in pieces too, so a large upload is never held whole
 * by the parser.  The parser keeps at most one delimiter's length of data
 * between pieces, plus the headers of one part (capped).
 */
#include "formdata.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AVC_FD_MAX_HEADERS 8192

typedef enum {
    AVC_FD_PREAMBLE,
    AVC_FD_AFTER_BOUNDARY,
    AVC_FD_HEADERS,
    AVC_FD_BODY,
    AVC_FD_DONE,
    AVC_FD_FAILED
} avc_fd_state_t;

struct avc__formdata_s {
    avc_fd_state_t state;
    char *delim;                /* "\r\n--" boundary */
    size_t dlen;
    avc__buf_t buf;             /* unconsumed input */
    avc__formdata_part_cb on_part;
    avc__formdata_data_cb on_data;
    avc__formdata_end_cb on_end;
    void *data;
    int err;
};

/* The boundary parameter of a Content-Type value, as a new string. */
char *
avc__formdata_boundary(const char *ctype)
{
    const char *p, *end;
    size_t n;

    if (ctype == NULL || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
        return NULL;
    }
    for (p = ctype + 19; (p = strchr(p, ';')) != NULL; ) {
        p++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (strncasecmp(p, "boundary=", 9) != 0) {
            continue;
        }
        p += 9;
        if (*p == '"') {
            p++;
            end = strchr(p, '"');
            if (end == NULL) {
                return NULL;
            }
        } else {
            end = p + strcspn(p, "; \t");
        }
        n = (size_t) (end - p);
        /* RFC 2046: 1 to 70 characters */
        if (n == 0 || n > 70) {
            return NULL;
        }
        return strndup(p, n);
    }
    return NULL;
}

avc__formdata_t *
avc__formdata_new(const char *boundary, avc__formdata_part_cb on_part,
    avc__formdata_data_cb on_data, avc__formdata_end_cb on_end, void *data)
{
    avc__formdata_t *fd;
    size_t n = boundary ? strlen(boundary) : 0;

    if (n == 0 || n > 70) {
        return NULL;
    }
    fd = calloc(1, sizeof(*fd));
    if (fd == NULL) {
        return NULL;
    }
    fd->delim = malloc(n + 5);
    if (fd->delim == NULL) {
        free(fd);
        return NULL;
    }
    memcpy(fd->delim, "\r\n--", 4);
    memcpy(fd->delim + 4, boundary, n + 1);
    fd->dlen = n + 4;
    /* the first boundary may start the body: pretend a CRLF came before */
    avc__buf_init(&fd->buf);
    if (avc__buf_append(&fd->buf, "\r\n", 2) != AVC_OK) {
        avc__formdata_free(fd);
        return NULL;
    }
    fd->on_part = on_part;
    fd->on_data = on_data;
    fd->on_end = on_end;
    fd->data = data;
    return fd;
}

void
avc__formdata_free(avc__formdata_t *fd)
{
    if (fd == NULL) {
        return;
    }
    avc__buf_free(&fd->buf);
    free(fd->delim);
    free(fd);
}

static int
avc_fd_fail(avc__formdata_t *fd, int err)
{
    fd->state = AVC_FD_FAILED;
    fd->err = err;
    return err;
}

/*
 * Is the delimiter match at hit a real one?  Only when "--" (the last) or
 * optional white space and CRLF follow it; "--boundaryX" in data is not.
 * 1 yes, 0 no, -1 cannot tell yet.
 */
static int
avc_fd_real(avc__formdata_t *fd, const char *hit)
{
    const char *p = hit + fd->dlen, *end = fd->buf.data + fd->buf.len;

    if (end - p < 2) {
        return -1;
    }
    if (p[0] == '-' && p[1] == '-') {
        return 1;
    }
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    if (p - (hit + fd->dlen) > 256) {
        return 0;
    }
    if (end - p < 2) {
        return -1;
    }
    return p[0] == '\r' && p[1] == '\n';
}

/* The first real delimiter at or after from; *wait when undecided. */
static char *
avc_fd_find(avc__formdata_t *fd, int *wait)
{
    char *hit, *from = fd->buf.data;
    int real;

    *wait = 0;
    for ( ;; ) {
        hit = memmem(from, (size_t) (fd->buf.data + fd->buf.len - from),
                     fd->delim, fd->dlen);
        if (hit == NULL) {
            return NULL;
        }
        real = avc_fd_real(fd, hit);
        if (real == 1) {
            return hit;
        }
        if (real == -1) {
            *wait = 1;
            return hit;
        }
        from = hit + 1;
    }
}

static void
avc_fd_consume(avc__formdata_t *fd, size_t n)
{
    memmove(fd->buf.data, fd->buf.data + n, fd->buf.len - n);
    fd->buf.len -= n;
    fd->buf.data[fd->buf.len] = '\0';
}

/*
 * A parameter of a Content-Disposition value (name="files";
 * filename="a b.pdf"), unquoted, as a new string; NULL when absent.
 */
static char *
avc_fd_param(const char *v, const char *name)
{
    size_t n = strlen(name);
    const char *p = v, *q;
    avc__buf_t out;

    while ((p = strchr(p, ';')) != NULL) {
        p++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (strncasecmp(p, name, n) != 0 || p[n] != '=') {
            continue;
        }
        p += n + 1;
        avc__buf_init(&out);
        if (*p == '"') {
            for (q = p + 1; *q && *q != '"'; q++) {
                if (*q == '\\' && q[1]) {
                    q++;
                }
                if (avc__buf_append(&out, q, 1) != AVC_OK) {
                    avc__buf_free(&out);
                    return NULL;
                }
            }
        } else {
            q = p + strcspn(p, "; \t");
            if (avc__buf_append(&out, p, (size_t) (q - p)) != AVC_OK) {
                avc__buf_free(&out);
                return NULL;
            }
        }
        return avc__buf_steal(&out, NULL);
    }
    return NULL;
}

/* Parse one part's header block (without the final CRLF CRLF). */
static int
avc_fd_headers(avc__formdata_t *fd, const char *h, size_t len)
{
    char *block, *line, *save = NULL, *name = NULL, *filename = NULL;
    char *ctype = NULL, *colon, *v;
    int rc;

    block = strndup(h, len);
    if (block == NULL) {
        return AVC_ENOMEM;
    }
    for (line = strtok_r(block, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save))
    {
        colon = strchr(line, ':');
        if (colon == NULL) {
            continue;
        }
        *colon = '\0';
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {
            /* void */
        }
        if (strcasecmp(line, "Content-Disposition") == 0) {
            if (strncasecmp(v, "form-data", 9) != 0) {
                continue;
            }
            free(name);
            free(filename);
            name = avc_fd_param(v, "name");
            filename = avc_fd_param(v, "filename");
        } else if (strcasecmp(line, "Content-Type") == 0) {
            free(ctype);
            ctype = strdup(v);
        }
    }
    if (name == NULL) {
        rc = AVC_EPARSE;
    } else {
        rc = fd->on_part(name, filename, ctype, fd->data);
    }
    free(name);
    free(filename);
    free(ctype);
    free(block);
    return rc;
}

int
avc__formdata_feed(avc__formdata_t *fd, const void *p, size_t n)
{
    char *hit, *end;
    size_t keep, avail;
    int rc, wait;

    if (fd->state == AVC_FD_FAILED) {
        return fd->err;
    }
    if (fd->state == AVC_FD_DONE) {
        return AVC_OK;          /* the epilogue is ignored */
    }
    if (avc__buf_append(&fd->buf, p, n) != AVC_OK) {
        return avc_fd_fail(fd, AVC_ENOMEM);
    }

    for ( ;; ) {
        switch (fd->state) {

        case AVC_FD_PREAMBLE:
            hit = avc_fd_find(fd, &wait);
            if (wait) {
                avc_fd_consume(fd, (size_t) (hit - fd->buf.data));
                return AVC_OK;
            }
            if (hit == NULL) {
                /* keep only what may begin a delimiter */
                if (fd->buf.len >= fd->dlen) {
                    avc_fd_consume(fd, fd->buf.len - (fd->dlen - 1));
                }
                return AVC_OK;
            }
            avc_fd_consume(fd, (size_t) (hit - fd->buf.data) + fd->dlen);
            fd->state = AVC_FD_AFTER_BOUNDARY;
            break;

        case AVC_FD_AFTER_BOUNDARY:
            if (fd->buf.len < 2) {
                return AVC_OK;
            }
            if (fd->buf.data[0] == '-' && fd->buf.data[1] == '-') {
                fd->state = AVC_FD_DONE;
                fd->buf.len = 0;
                return AVC_OK;
            }
            /* transport padding: optional white space before the CRLF */
            hit = memmem(fd->buf.data, fd->buf.len, "\r\n", 2);
            if (hit == NULL) {
                if (fd->buf.len > 256) {
                    return avc_fd_fail(fd, AVC_EPARSE);
                }
                return AVC_OK;
            }
            avc_fd_consume(fd, (size_t) (hit - fd->buf.data) + 2);
            fd->state = AVC_FD_HEADERS;
            break;

        case AVC_FD_HEADERS:
            end = memmem(fd->buf.data, fd->buf.len, "\r\n\r\n", 4);
            if (end == NULL) {
                if (fd->buf.len > AVC_FD_MAX_HEADERS) {
                    return avc_fd_fail(fd, AVC_EPARSE);
                }
                return AVC_OK;
            }
            rc = avc_fd_headers(fd, fd->buf.data,
                                (size_t) (end - fd->buf.data));
            if (rc != AVC_OK) {
                return avc_fd_fail(fd, rc);
            }
            avc_fd_consume(fd, (size_t) (end - fd->buf.data) + 4);
            fd->state = AVC_FD_BODY;
            break;

        case AVC_FD_BODY:
            hit = avc_fd_find(fd, &wait);
            if (wait) {
                /* pass on what precedes the undecided match, keep it */
                avail = (size_t) (hit - fd->buf.data);
                if (avail) {
                    rc = fd->on_data(fd->buf.data, avail, fd->data);
                    if (rc != AVC_OK) {
                        return avc_fd_fail(fd, rc);
                    }
                    avc_fd_consume(fd, avail);
                }
                return AVC_OK;
            }
            if (hit == NULL) {
                /* pass on all but a possible start of the delimiter */
                keep = fd->dlen - 1;
                if (fd->buf.len > keep) {
                    avail = fd->buf.len - keep;
                    rc = fd->on_data(fd->buf.data, avail, fd->data);
                    if (rc != AVC_OK) {
                        return avc_fd_fail(fd, rc);
                    }
                    avc_fd_consume(fd, avail);
                }
                return AVC_OK;
            }
            avail = (size_t) (hit - fd->buf.data);
            if (avail) {
                rc = fd->on_data(fd->buf.data, avail, fd->data);
                if (rc != AVC_OK) {
                    return avc_fd_fail(fd, rc);
                }
            }
            rc = fd->on_end(fd->data);
            if (rc != AVC_OK) {
                return avc_fd_fail(fd, rc);
            }
            avc_fd_consume(fd, avail + fd->dlen);
            fd->state = AVC_FD_AFTER_BOUNDARY;
            break;

        default:
            return fd->state == AVC_FD_FAILED ? fd->err : AVC_OK;
        }
    }
}

int
avc__formdata_finish(avc__formdata_t *fd)
{
    if (fd->state == AVC_FD_FAILED) {
        return fd->err;
    }
    /* a body that ends before the closing delimiter is truncated */
    return fd->state == AVC_FD_DONE ? AVC_OK : AVC_EPARSE;
}
