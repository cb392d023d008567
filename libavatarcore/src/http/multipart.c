/*
 * multipart/form-data bodies.
 *
 * Parts are kept (header and content) until avc_multipart_finish(), when
 * the boundary is chosen: only then is all the content known, so only
 * then can the boundary be proven absent from it.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

#define AVC_MP_RANDOM_CHARS  32
#define AVC_MP_BOUNDARY_MAX  70     /* RFC 2046 */

typedef struct avc_mp_part_s avc_mp_part_t;

struct avc_mp_part_s {
    avc_mp_part_t *next;
    char *head;                     /* the part's header lines + CRLF */
    size_t head_len;
    char *data;
    size_t len;
};

struct avc_multipart_s {
    avc_mp_part_t *head;
    avc_mp_part_t *tail;
    int finished;
    char try_boundary[AVC_MP_BOUNDARY_MAX + 1];
    char *content_type;
};

AVC_API avc_multipart_t *
avc_multipart_new(void)
{
    return calloc(1, sizeof(avc_multipart_t));
}

static void
avc_mp_free_parts(avc_multipart_t *mp)
{
    avc_mp_part_t *p, *next;

    for (p = mp->head; p; p = next) {
        next = p->next;
        free(p->head);
        free(p->data);
        free(p);
    }
    mp->head = mp->tail = NULL;
}

AVC_API void
avc_multipart_free(avc_multipart_t *mp)
{
    if (mp == NULL) {
        return;
    }
    avc_mp_free_parts(mp);
    free(mp->content_type);
    free(mp);
}

int
avc__multipart_try_boundary(avc_multipart_t *mp, const char *boundary)
{
    if (mp == NULL || boundary == NULL
        || strlen(boundary) > AVC_MP_BOUNDARY_MAX)
    {
        return AVC_EINVAL;
    }
    strcpy(mp->try_boundary, boundary);
    return AVC_OK;
}

/* name="..." with the HTML form escaping of ", CR and LF */
static int
avc_mp_quoted(avc__buf_t *b, const char *s)
{
    int rc = avc__buf_append(b, "\"", 1);

    for ( ; rc == AVC_OK && *s; s++) {
        switch (*s) {
        case '"':
            rc = avc__buf_append(b, "%22", 3);
            break;
        case '\r':
            rc = avc__buf_append(b, "%0D", 3);
            break;
        case '\n':
            rc = avc__buf_append(b, "%0A", 3);
            break;
        default:
            rc = avc__buf_append(b, s, 1);
        }
    }
    return rc == AVC_OK ? avc__buf_append(b, "\"", 1) : rc;
}

static int
avc_mp_add(avc_multipart_t *mp, const char *name, const char *filename,
    const char *ctype, const void *data, size_t n)
{
    avc_mp_part_t *part;
    avc__buf_t h;
    int rc;

    if (mp == NULL || name == NULL || *name == '\0'
        || (data == NULL && n > 0)
        || (ctype != NULL && strpbrk(ctype, "\r\n") != NULL))
    {
        return AVC_EINVAL;
    }
    if (mp->finished) {
        return AVC_ESTATE;
    }
    part = calloc(1, sizeof(*part));
    if (part == NULL) {
        return AVC_ENOMEM;
    }
    avc__buf_init(&h);
    rc = avc__buf_appends(&h, "Content-Disposition: form-data; name=");
    if (rc == AVC_OK) {
        rc = avc_mp_quoted(&h, name);
    }
    if (rc == AVC_OK && filename != NULL) {
        rc = avc__buf_appends(&h, "; filename=");
        if (rc == AVC_OK) {
            rc = avc_mp_quoted(&h, filename);
        }
    }
    if (rc == AVC_OK && filename != NULL) {
        rc = avc__buf_printf(&h, "\r\nContent-Type: %s",
                             ctype ? ctype : "application/octet-stream");
    }
    if (rc == AVC_OK) {
        rc = avc__buf_appends(&h, "\r\n\r\n");
    }
    if (rc == AVC_OK) {
        part->data = malloc(n ? n : 1);
        if (part->data == NULL) {
            rc = AVC_ENOMEM;
        }
    }
    if (rc != AVC_OK) {
        avc__buf_free(&h);
        free(part);
        return AVC_ENOMEM;
    }
    if (n) {
        memcpy(part->data, data, n);
    }
    part->len = n;
    part->head = avc__buf_steal(&h, &part->head_len);
    if (part->head == NULL) {
        free(part->data);
        free(part);
        return AVC_ENOMEM;
    }
    if (mp->tail) {
        mp->tail->next = part;
    } else {
        mp->head = part;
    }
    mp->tail = part;
    return AVC_OK;
}

AVC_API int
avc_multipart_add_field(avc_multipart_t *mp, const char *name,
    const char *value, size_t n)
{
    return avc_mp_add(mp, name, NULL, NULL, value, n);
}

AVC_API int
avc_multipart_add_file(avc_multipart_t *mp, const char *name,
    const char *filename, const char *content_type, const void *data,
    size_t n)
{
    if (filename == NULL) {
        return AVC_EINVAL;
    }
    return avc_mp_add(mp, name, filename, content_type, data, n);
}

static int
avc_mp_collides(const avc_multipart_t *mp, const char *b)
{
    const avc_mp_part_t *p;
    size_t n = strlen(b);

    for (p = mp->head; p; p = p->next) {
        if (memmem(p->head, p->head_len, b, n) != NULL
            || memmem(p->data, p->len, b, n) != NULL)
        {
            return 1;
        }
    }
    return 0;
}

static void
avc_mp_random_boundary(char *b)
{
    static const char alnum[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char r[AVC_MP_RANDOM_CHARS];
    size_t i;

    avc__http_random(r, sizeof(r));
    memcpy(b, "avc-", 4);
    for (i = 0; i < sizeof(r); i++) {
        b[4 + i] = alnum[r[i] % (sizeof(alnum) - 1)];
    }
    b[4 + sizeof(r)] = '\0';
}

AVC_API char *
avc_multipart_finish(avc_multipart_t *mp, size_t *len)
{
    char b[AVC_MP_BOUNDARY_MAX + 1];
    const avc_mp_part_t *p;
    avc__buf_t body, ct;
    int rc;

    if (mp == NULL || mp->finished) {
        return NULL;
    }
    if (mp->try_boundary[0]) {
        strcpy(b, mp->try_boundary);
    } else {
        avc_mp_random_boundary(b);
    }
    /* 190 random bits make a collision a theoretical event; the loop
     * keeps it from ever producing a broken body */
    while (avc_mp_collides(mp, b)) {
        avc_mp_random_boundary(b);
    }

    avc__buf_init(&ct);
    if (avc__buf_printf(&ct, "multipart/form-data; boundary=%s", b)
        != AVC_OK)
    {
        avc__buf_free(&ct);
        return NULL;
    }
    avc__buf_init(&body);
    rc = AVC_OK;
    for (p = mp->head; p && rc == AVC_OK; p = p->next) {
        rc = avc__buf_printf(&body, "--%s\r\n", b);
        if (rc == AVC_OK) {
            rc = avc__buf_append(&body, p->head, p->head_len);
        }
        if (rc == AVC_OK) {
            rc = avc__buf_append(&body, p->data, p->len);
        }
        if (rc == AVC_OK) {
            rc = avc__buf_append(&body, "\r\n", 2);
        }
    }
    if (rc == AVC_OK) {
        rc = avc__buf_printf(&body, "--%s--\r\n", b);
    }
    if (rc != AVC_OK) {
        avc__buf_free(&body);
        avc__buf_free(&ct);
        return NULL;
    }
    mp->content_type = avc__buf_steal(&ct, NULL);
    mp->finished = 1;
    avc_mp_free_parts(mp);
    return avc__buf_steal(&body, len);
}

AVC_API const char *
avc_multipart_content_type(const avc_multipart_t *mp)
{
    return mp ? mp->content_type : NULL;
}

AVC_API int
avc_multipart_to_request(avc_multipart_t *mp, avc_http_req_t *req)
{
    char *body;
    size_t len;
    int rc;

    if (mp == NULL || req == NULL) {
        return AVC_EINVAL;
    }
    if (mp->finished) {
        return AVC_ESTATE;
    }
    body = avc_multipart_finish(mp, &len);
    if (body == NULL) {
        return AVC_ENOMEM;
    }
    rc = avc_http_req_add_header(req, "Content-Type", mp->content_type);
    if (rc != AVC_OK) {
        free(body);
        return rc;
    }
    return avc_http_req_take_body(req, body, len);
}
