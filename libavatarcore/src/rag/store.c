/*
 * Storing chunks: vectors as bytea (little-endian float32, sent as hex
 * because parameters are text), and the multi-row insert of a document's
 * chunks inside the ingestion job's transaction.
 */
#include "rag_internal.h"

#include <avatarcore/retrieve.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rows per INSERT: bounds one statement to a few MB */
#define AVC_STORE_BATCH  256

/* one statement for a batch: arrays unnested into rows */
static const char avc_store_sql[] =
    "INSERT INTO document_chunks (document_id, dealership_id, topic,"
    " position, title, content, embedding, embedding_model) "
    "SELECT $1, $2, $3, t.pos, $4, t.content, decode(t.emb, 'hex'), $5 "
    "FROM unnest($6::int[], $7::text[], $8::text[]) AS t(pos, content, emb)";

static const char avc_hex[] = "0123456789abcdef";

/* the bytes of v as little-endian float32, whatever the host's order */
static void
avc_store_le(float f, unsigned char b[4])
{
    uint32_t x;

    memcpy(&x, &f, sizeof(x));
    b[0] = (unsigned char) x;
    b[1] = (unsigned char) (x >> 8);
    b[2] = (unsigned char) (x >> 16);
    b[3] = (unsigned char) (x >> 24);
}

char *
avc_rag_vector_hex(const float *v, size_t dim)
{
    unsigned char b[4];
    size_t i, k, o = 0;
    char *s;

    if (v == NULL || dim == 0 || dim > SIZE_MAX / 8 - 1) {
        return NULL;
    }
    s = malloc(dim * 8 + 1);
    if (s == NULL) {
        return NULL;
    }
    for (i = 0; i < dim; i++) {
        avc_store_le(v[i], b);
        for (k = 0; k < 4; k++) {
            s[o++] = avc_hex[b[k] >> 4];
            s[o++] = avc_hex[b[k] & 15];
        }
    }
    s[o] = '\0';
    return s;
}

static int
avc_store_nibble(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int
avc_rag_vector_parse(const char *bytea, float *out, size_t dim)
{
    const char *p;
    unsigned char b[4];
    size_t i, k;
    uint32_t x;
    int hi, lo;

    if (bytea == NULL || out == NULL || dim == 0) {
        return AVC_EINVAL;
    }
    /* bytea_output = hex: "\x" then two digits a byte */
    if (bytea[0] != '\\' || bytea[1] != 'x'
        || strlen(bytea + 2) != dim * 8)
    {
        return AVC_EPARSE;
    }
    p = bytea + 2;
    for (i = 0; i < dim; i++) {
        for (k = 0; k < 4; k++) {
            hi = avc_store_nibble(p[0]);
            lo = avc_store_nibble(p[1]);
            if (hi < 0 || lo < 0) {
                return AVC_EPARSE;
            }
            b[k] = (unsigned char) (hi << 4 | lo);
            p += 2;
        }
        x = (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16
            | (uint32_t) b[3] << 24;
        memcpy(&out[i], &x, sizeof(x));
    }
    return AVC_OK;
}

/* a PostgreSQL array element: "text" with \ and " escaped */
static int
avc_store_elem(avc__buf_t *b, const char *s)
{
    int rc = avc__buf_append(b, "\"", 1);
    const char *p;

    for (p = s; *p && rc == AVC_OK; p++) {
        if (*p == '"' || *p == '\\') {
            rc = avc__buf_append(b, "\\", 1);
        }
        if (rc == AVC_OK) {
            rc = avc__buf_append(b, p, 1);
        }
    }
    return rc == AVC_OK ? avc__buf_append(b, "\"", 1) : rc;
}

typedef struct {
    avc_db_tx_t *tx;
    char did[24];
    char doc[24];
    char *topic;
    char *title;
    char *model;
    char **contents;
    char **hex;                 /* NULL entries: no vector */
    size_t n;
    size_t next;                /* the first chunk of the next batch */
    int err;
    avc_db_cb cb;
    void *data;
} avc_store_t;

static void
avc_store_free(avc_store_t *st)
{
    size_t i;

    for (i = 0; i < st->n; i++) {
        free(st->contents[i]);
        if (st->hex) {
            free(st->hex[i]);
        }
    }
    free(st->contents);
    free(st->hex);
    free(st->topic);
    free(st->title);
    free(st->model);
    free(st);
}

static int avc_store_batch(avc_store_t *st);

static void
avc_store_done(int err, avc_db_res_t *res, void *data)
{
    avc_store_t *st = data;
    avc_db_cb cb = st->cb;
    void *cbdata = st->data;

    if (err != AVC_OK) {
        if (err == AVC_EDB) {
            avc_log(AVC_LOG_WARN, "rag: storing chunks: %s",
                    avc_db_res_error(res));
        }
        avc_store_free(st);
        cb(err, res, cbdata);
        return;
    }
    if (st->next < st->n) {
        err = avc_store_batch(st);
        if (err == AVC_OK) {
            return;
        }
    }
    avc_store_free(st);
    cb(err, NULL, cbdata);
}

static int
avc_store_batch(avc_store_t *st)
{
    avc__buf_t pos, con, emb;
    const char *p[8];
    size_t i, end;
    int rc = AVC_OK;

    end = st->next + AVC_STORE_BATCH;
    if (end > st->n) {
        end = st->n;
    }
    avc__buf_init(&pos);
    avc__buf_init(&con);
    avc__buf_init(&emb);
    for (i = st->next; i < end && rc == AVC_OK; i++) {
        rc |= avc__buf_printf(&pos, "%c%zu", i > st->next ? ',' : '{', i);
        rc |= avc__buf_appends(&con, i > st->next ? "," : "{");
        rc |= avc_store_elem(&con, st->contents[i]);
        rc |= avc__buf_appends(&emb, i > st->next ? "," : "{");
        if (st->hex && st->hex[i]) {
            rc |= avc__buf_appends(&emb, st->hex[i]);
        } else {
            rc |= avc__buf_appends(&emb, "NULL");
        }
    }
    rc |= avc__buf_appends(&pos, "}");
    rc |= avc__buf_appends(&con, "}");
    rc |= avc__buf_appends(&emb, "}");
    if (rc == AVC_OK) {
        p[0] = st->doc;
        p[1] = st->did;
        p[2] = st->topic;
        p[3] = st->title;
        p[4] = st->model;
        p[5] = pos.data;
        p[6] = con.data;
        p[7] = emb.data;
        rc = avc_db_tx_query(st->tx, avc_store_sql, 0, 8, p,
                             avc_store_done, st) ? AVC_OK : AVC_ENOMEM;
    } else {
        rc = AVC_ENOMEM;
    }
    if (rc == AVC_OK) {
        st->next = end;
    }
    avc__buf_free(&pos);
    avc__buf_free(&con);
    avc__buf_free(&emb);
    return rc;
}

static char *
avc_store_dup(const char *s, int *rc)
{
    char *p;

    if (s == NULL) {
        return NULL;
    }
    p = strdup(s);
    if (p == NULL) {
        *rc = AVC_ENOMEM;
    }
    return p;
}

int
avc_rag_store_chunks(avc_db_tx_t *tx, int64_t document_id,
    int64_t dealership_id, const char *topic, const char *title,
    const char *const *contents, size_t n, const float *vectors, size_t dim,
    const char *model, avc_db_cb cb, void *data)
{
    avc_store_t *st;
    size_t i;
    int rc = AVC_OK;

    if (tx == NULL || topic == NULL || contents == NULL || n == 0
        || cb == NULL || (vectors && dim == 0))
    {
        return AVC_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (contents[i] == NULL) {
            return AVC_EINVAL;
        }
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->tx = tx;
    st->cb = cb;
    st->data = data;
    snprintf(st->doc, sizeof(st->doc), "%" PRId64, document_id);
    snprintf(st->did, sizeof(st->did), "%" PRId64, dealership_id);
    st->topic = avc_store_dup(topic, &rc);
    st->title = avc_store_dup(title, &rc);
    st->model = avc_store_dup(model, &rc);
    st->contents = calloc(n, sizeof(char *));
    st->hex = vectors ? calloc(n, sizeof(char *)) : NULL;
    if (st->contents == NULL || (vectors && st->hex == NULL)) {
        rc = AVC_ENOMEM;
    }
    st->n = n;
    for (i = 0; i < n && rc == AVC_OK; i++) {
        st->contents[i] = avc_store_dup(contents[i], &rc);
        if (vectors && rc == AVC_OK) {
            st->hex[i] = avc_rag_vector_hex(vectors + i * dim, dim);
            if (st->hex[i] == NULL) {
                rc = AVC_ENOMEM;
            }
        }
    }
    if (rc == AVC_OK) {
        rc = avc_store_batch(st);
    }
    if (rc != AVC_OK) {
        if (st->contents == NULL) {
            st->n = 0;
        }
        avc_store_free(st);
        return rc;
    }
    return AVC_OK;
}

int
avc__ids_parse(const char *lit, int64_t **ids, size_t *n)
{
    const char *p;
    int64_t *v;
    size_t cap = 1, k = 0, len;

    *ids = NULL;
    *n = 0;
    if (lit == NULL || lit[0] != '{') {
        return AVC_EPARSE;
    }
    if (strcmp(lit, "{}") == 0) {
        return AVC_OK;
    }
    for (p = lit; *p; p++) {
        cap += *p == ',';
    }
    v = malloc(cap * sizeof(*v));
    if (v == NULL) {
        return AVC_ENOMEM;
    }
    for (p = lit + 1; ; p += len + 1) {
        len = strspn(p, "0123456789");
        if (len == 0 || len > 18 || k == cap
            || (p[len] != ',' && p[len] != '}'))
        {
            free(v);
            return AVC_EPARSE;
        }
        v[k] = strtoll(p, NULL, 10);
        if (v[k++] <= 0) {
            free(v);
            return AVC_EPARSE;
        }
        if (p[len] == '}') {
            if (p[len + 1] != '\0') {
                free(v);
                return AVC_EPARSE;
            }
            break;
        }
    }
    *ids = v;
    *n = k;
    return AVC_OK;
}
