/*
 * POST /api/v1/rag/{id}/upload/{topic}: documents for the knowledge base.
 *
 * The multipart body is parsed as it streams in (avc_call_feed), with the
 * limits applied on the way: a file over the per-file limit or a request
 * over the total is refused at once (413).  Meanwhile the caller and the
 * dealership are checked.  Once both are done, every file is checked by
 * its content (and its name must agree), hashed on the thread pool, and
 * stored with its ingestion job in one transaction before the answer:
 * an accepted upload survives a crash.  The same name and content again
 * is a no-op for that file.  The answer waits a little for ingestion, so
 * that small files report their chunks; slower ones report their status.
 */
#include "kb.h"
#include "../http/formdata.h"

#include <avatarcore/extract.h>

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_UPLOAD_MAX_FILES 20
#define AVC_UPLOAD_POLL_MS   200

typedef struct {
    char *filename;
    avc__buf_t data;
    avc_doc_type_t type;
    char sha[65];
    char *hex;                  /* the content for the INSERT */
    char id[24];
    char status[16];
    long long chunks;
    int is_new;
    int xerr;                   /* extraction: AVC_OK or why it failed */
    char *why;
} avc_upfile_t;

typedef struct {
    avc__formdata_t *fd;
    avc_upfile_t files[AVC_UPLOAD_MAX_FILES];
    int nfiles;
    avc_upfile_t *cur;          /* the file part being received */
    int skipping;               /* a part that is not a file */
    size_t total;
    size_t max_file;
    size_t max_total;
    int body_done;
    int checked;                /* caller and dealership are fine */
    int bad;                    /* a 4xx is being or was sent */
    int step;                   /* which file the transaction is at */
    char topic[72];
    char user[24];
    uint64_t wait_until;
} avc_upload_t;

static void
avc_upload_free(void *p)
{
    avc_upload_t *u = p;
    int i;

    if (u == NULL) {
        return;
    }
    avc__formdata_free(u->fd);
    for (i = 0; i < u->nfiles; i++) {
        free(u->files[i].filename);
        avc__buf_free(&u->files[i].data);
        free(u->files[i].hex);
        free(u->files[i].why);
    }
    free(u);
}

static avc_upload_t *
avc_up(avc_call_t *call)
{
    return ((avc__kb_t *) call->op)->extra;
}

/* refuse the upload once (the first reason wins): nothing is kept; a 422
 * names field (NULL: the body) */
static void
avc_upload_refuse(avc_call_t *call, int status, const char *field,
    const char *msg)
{
    avc_upload_t *u = avc_up(call);

    if (u->bad) {
        return;
    }
    u->bad = 1;
    avc__rollback(call);
    if (status == 422 && field) {
        avc__call_invalid(call, field, "value_error", msg);
    } else {
        avc__call_error(call, status, msg);
    }
}

static void
avc_upload_fail(avc_call_t *call, int status, const char *msg)
{
    avc_upload_refuse(call, status, NULL, msg);
}

/* A file name as a client sent it: no path, no control characters. */
static int
avc_filename_ok(const char *s)
{
    size_t n = strlen(s);
    const unsigned char *p;

    if (n == 0 || n > 255 || !avc__utf8_valid(s, n)
        || strchr(s, '/') || strchr(s, '\\') || strstr(s, "..")
        || s[0] == '.')
    {
        return 0;
    }
    for (p = (const unsigned char *) s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* streaming: the parser's callbacks, with the call as data */

static int
avc_up_part(const char *name, const char *filename, const char *ctype,
    void *data)
{
    avc_call_t *call = data;
    avc_upload_t *u = avc_up(call);
    avc_upfile_t *f;
    char msg[400];

    u->cur = NULL;
    u->skipping = strcmp(name, "files") != 0 || filename == NULL;
    if (u->skipping) {
        return AVC_OK;
    }
    if (!avc_filename_ok(filename)) {
        snprintf(msg, sizeof(msg), "Invalid file name: use a plain name "
                 "such as \"guide.pdf\", without a path");
        avc_upload_fail(call, 422, msg);
        return AVC_EINVAL;
    }
    if (u->nfiles == AVC_UPLOAD_MAX_FILES) {
        snprintf(msg, sizeof(msg), "At most %d files per upload",
                 AVC_UPLOAD_MAX_FILES);
        avc_upload_fail(call, 422, msg);
        return AVC_EINVAL;
    }
    f = &u->files[u->nfiles];
    memset(f, 0, sizeof(*f));
    avc__buf_init(&f->data);
    f->filename = strdup(filename);
    if (f->filename == NULL) {
        avc_upload_fail(call, 500, "Internal server error");
        return AVC_ENOMEM;
    }
    u->nfiles++;
    u->cur = f;
    return AVC_OK;
}

static int
avc_up_data(const char *p, size_t n, void *data)
{
    avc_call_t *call = data;
    avc_upload_t *u = avc_up(call);
    char msg[200];

    if (u->skipping || u->cur == NULL) {
        return AVC_OK;
    }
    u->total += n;
    if (u->cur->data.len + n > u->max_file) {
        snprintf(msg, sizeof(msg), "File \"%s\" is larger than %zu MB",
                 u->cur->filename, u->max_file / (1024 * 1024));
        avc_upload_fail(call, 413, msg);
        return AVC_ETOOBIG;
    }
    if (u->total > u->max_total) {
        snprintf(msg, sizeof(msg), "Upload is larger than %zu MB",
                 u->max_total / (1024 * 1024));
        avc_upload_fail(call, 413, msg);
        return AVC_ETOOBIG;
    }
    if (avc__buf_append(&u->cur->data, p, n) != AVC_OK) {
        avc_upload_fail(call, 500, "Internal server error");
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

static int
avc_up_end(void *data)
{
    avc_upload_t *u = avc_up(data);

    u->cur = NULL;
    u->skipping = 0;
    return AVC_OK;
}

static void avc_upload_go(avc_call_t *call);

static int
avc_upload_feed(avc_call_t *call, const char *p, size_t n)
{
    avc_upload_t *u = avc_up(call);
    int rc;

    if (u->bad) {
        return AVC_ESTATE;
    }
    rc = avc__formdata_feed(u->fd, p, n);
    if (rc == AVC_EPARSE) {
        avc_upload_fail(call, 422, "Malformed multipart body");
    }
    return rc;
}

static int
avc_upload_feed_end(avc_call_t *call)
{
    avc_upload_t *u = avc_up(call);

    if (u->bad) {
        return AVC_ESTATE;
    }
    if (avc__formdata_finish(u->fd) != AVC_OK) {
        avc_upload_fail(call, 422, "Malformed multipart body: it ends "
                        "before its closing boundary");
        return AVC_EPARSE;
    }
    u->body_done = 1;
    if (u->checked) {
        avc_upload_go(call);
    }
    return AVC_OK;
}

/* after the body and the checks: validate, hash, store */

static void
avc_upload_prepare(void *arg)
{
    avc_upload_t *u = arg;
    unsigned char md[SHA256_DIGEST_LENGTH];
    static const char hexd[] = "0123456789abcdef";
    avc_upfile_t *f;
    size_t j;
    int i, k;

    /* CPU work off the loop: sniffing, reading the text (so that an
       unreadable file is refused now, not later), hashing, hex */
    for (i = 0; i < u->nfiles; i++) {
        char *text = NULL;

        f = &u->files[i];
        f->type = avc_doc_sniff(f->data.data, f->data.len);
        f->xerr = AVC_EINVAL;
        if (f->data.len > 0 && f->type != AVC_DOC_UNKNOWN
            && f->type == avc_doc_type_by_name(f->filename))
        {
            f->xerr = avc_extract(f->data.data, f->data.len, f->type, 0, 0,
                                  0, &text, NULL, &f->why);
            free(text);
        }
        SHA256((const unsigned char *) (f->data.data ? f->data.data : ""),
               f->data.len, md);
        for (k = 0; k < SHA256_DIGEST_LENGTH; k++) {
            f->sha[2 * k] = hexd[md[k] >> 4];
            f->sha[2 * k + 1] = hexd[md[k] & 15];
        }
        f->sha[64] = '\0';
        f->hex = malloc(2 * f->data.len + 1);
        if (f->hex == NULL) {
            continue;
        }
        for (j = 0; j < f->data.len; j++) {
            unsigned char c = (unsigned char) f->data.data[j];

            f->hex[2 * j] = hexd[c >> 4];
            f->hex[2 * j + 1] = hexd[c & 15];
        }
        f->hex[2 * f->data.len] = '\0';
    }
}

static void avc_upload_store(avc_call_t *call);
static void avc_upload_reply(avc_call_t *call);

static void
avc_upload_poll(avc_call_t *call);

static void
avc_upload_polled(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_upload_t *u = avc_up(call);
    int i, j, pending = 0;

    if (err != AVC_OK) {
        avc_upload_reply(call);     /* the files are stored all the same */
        return;
    }
    for (i = 0; i < avc_db_res_rows(res); i++) {
        for (j = 0; j < u->nfiles; j++) {
            if (strcmp(u->files[j].id, avc_db_res_value(res, i, 0)) == 0) {
                snprintf(u->files[j].status, sizeof(u->files[j].status),
                         "%s", avc_db_res_value(res, i, 1));
                u->files[j].chunks = atoll(avc_db_res_value(res, i, 2));
            }
        }
    }
    for (j = 0; j < u->nfiles; j++) {
        if (strcmp(u->files[j].status, "ready") != 0
            && strcmp(u->files[j].status, "failed") != 0)
        {
            pending = 1;
        }
    }
    if (!pending || avc_loop_now(call->app->loop) >= u->wait_until) {
        avc_upload_reply(call);
        return;
    }
    if (avc__delay(call, AVC_UPLOAD_POLL_MS, avc_upload_poll) != AVC_OK) {
        avc_upload_reply(call);
    }
}

static void
avc_upload_poll(avc_call_t *call)
{
    avc_upload_t *u = avc_up(call);
    avc__buf_t ids;
    const char *p[1];
    int i;

    avc__buf_init(&ids);
    avc__buf_appends(&ids, "{");
    for (i = 0; i < u->nfiles; i++) {
        avc__buf_printf(&ids, "%s%s", i ? "," : "", u->files[i].id);
    }
    avc__buf_appends(&ids, "}");
    p[0] = ids.data;
    if (ids.data == NULL
        || avc__q(call, "SELECT id, status, chunk_count FROM documents"
                  " WHERE id = ANY($1::bigint[])", 1, p, avc_upload_polled)
           != AVC_OK)
    {
        avc_upload_reply(call);
    }
    avc__buf_free(&ids);
}

static void
avc_upload_reply(avc_call_t *call)
{
    avc_upload_t *u = avc_up(call);
    json_t *docs = json_array();
    long long chunks = 0;
    char msg[512];
    int i;

    for (i = 0; i < u->nfiles; i++) {
        chunks += u->files[i].chunks;
        json_array_append_new(docs, json_pack("{s:I, s:s, s:s}",
            "id", (json_int_t) atoll(u->files[i].id),
            "filename", u->files[i].filename,
            "status", u->files[i].status));
    }
    snprintf(msg, sizeof(msg), "Successfully uploaded %d document(s) "
             "(%lld chunks) to '%s' knowledge base", u->nfiles, chunks,
             u->topic);
    avc__call_json(call, 201, json_pack("{s:s, s:o}", "message", msg,
                                        "documents", docs));
}

static void
avc_upload_committed(avc_call_t *call, int err)
{
    avc_upload_t *u = avc_up(call);
    long long wait;

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    avc__ingest_kick(call->app);
    if (avc_config_get_int(call->app->cfg, "rag.upload_wait", 15000, 0,
                           600000, &wait) != AVC_OK)
    {
        wait = 15000;
    }
    u->wait_until = avc_loop_now(call->app->loop) + (uint64_t) wait;
    avc_upload_poll(call);
}

static void
avc_upload_job_added(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_upload_t *u = avc_up(call);

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    u->step++;
    avc_upload_store(call);
}

static void
avc_upload_found(avc_call_t *call, int err, avc_db_res_t *res)
{
    avc_upload_t *u = avc_up(call);
    avc_upfile_t *f = &u->files[u->step];
    const char *p[2];

    if (err != AVC_OK) {
        avc__reply_step_error(call, err, res);
        return;
    }
    if (avc_db_res_rows(res) != 1) {
        avc__reply_step_error(call, AVC_ENOTFOUND, NULL);
        return;
    }
    snprintf(f->id, sizeof(f->id), "%s", avc_db_res_value(res, 0, 0));
    snprintf(f->status, sizeof(f->status), "%s",
             avc_db_res_value(res, 0, 1));
    f->chunks = atoll(avc_db_res_value(res, 0, 2));
    f->is_new = strcmp(avc_db_res_value(res, 0, 3), "t") == 0;
    if (!f->is_new) {
        /* the same name and content again: nothing to do for it */
        u->step++;
        avc_upload_store(call);
        return;
    }
    p[0] = f->id;
    p[1] = ((avc__kb_t *) call->op)->id;
    if (avc__txq(call, "INSERT INTO ingest_jobs (document_id, dealership_id)"
                 " VALUES ($1::bigint, $2::bigint)", 2, p,
                 avc_upload_job_added) != AVC_OK)
    {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
}

static void
avc_upload_store(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    avc_upload_t *u = kb->extra;
    avc_upfile_t *f;
    char bytes[24];
    const char *p[8];

    if (u->step == u->nfiles) {
        if (avc__commit(call, avc_upload_committed) != AVC_OK) {
            avc__reply_step_error(call, AVC_EDBCONN, NULL);
        }
        return;
    }
    f = &u->files[u->step];
    snprintf(bytes, sizeof(bytes), "%zu", f->data.len);
    p[0] = kb->id;
    p[1] = u->topic;
    p[2] = f->filename;
    p[3] = f->type == AVC_DOC_PDF ? "application/pdf"
           : f->type == AVC_DOC_DOCX
             ? "application/vnd.openxmlformats-officedocument."
               "wordprocessingml.document"
             : "text/plain";
    p[4] = f->sha;
    p[5] = bytes;
    p[6] = f->hex;
    p[7] = u->user;
    /* the row is either new or the same file uploaded before */
    if (avc__txq(call,
                 "WITH n AS (INSERT INTO documents (dealership_id, topic,"
                 " filename, mime, sha256, bytes, content, uploaded_by)"
                 " VALUES ($1::bigint, $2, $3, $4, decode($5, 'hex'),"
                 " $6::bigint, decode($7, 'hex'), $8::bigint)"
                 " ON CONFLICT (dealership_id, filename, sha256) DO NOTHING"
                 " RETURNING id, status, chunk_count)"
                 " SELECT id, status, chunk_count, true FROM n"
                 " UNION ALL SELECT id, status, chunk_count, false"
                 " FROM documents WHERE dealership_id = $1::bigint"
                 " AND filename = $3 AND sha256 = decode($5, 'hex')"
                 " AND NOT EXISTS (SELECT 1 FROM n)", 8, p,
                 avc_upload_found) != AVC_OK)
    {
        avc__reply_step_error(call, AVC_EDBCONN, NULL);
    }
    /* the parameters are copied: the hex copy can go */
    free(f->hex);
    f->hex = NULL;
}

static void
avc_upload_begun(avc_call_t *call, int err)
{
    if (err != AVC_OK) {
        avc__reply_step_error(call, err, NULL);
        return;
    }
    avc_upload_store(call);
}

static void
avc_upload_prepared(avc_call_t *call, void *arg)
{
    avc_upload_t *u = arg;
    avc_upfile_t *f;
    avc_doc_type_t named;
    char msg[512];
    int i;

    for (i = 0; i < u->nfiles; i++) {
        f = &u->files[i];
        named = avc_doc_type_by_name(f->filename);
        if (f->hex == NULL) {
            avc_upload_fail(call, 500, "Internal server error");
            return;
        }
        if (f->data.len == 0) {
            snprintf(msg, sizeof(msg), "File \"%s\" is empty", f->filename);
            avc_upload_fail(call, 422, msg);
            return;
        }
        if (named == AVC_DOC_UNKNOWN) {
            snprintf(msg, sizeof(msg), "File \"%s\": only .txt, .pdf and "
                     ".docx files are accepted", f->filename);
            avc_upload_fail(call, 422, msg);
            return;
        }
        if (f->type != named) {
            snprintf(msg, sizeof(msg), "File \"%s\" is not a valid %s file "
                     "(its content %s)", f->filename,
                     avc_doc_type_name(named),
                     f->type == AVC_DOC_UNKNOWN
                     ? "is of no accepted type"
                     : f->type == AVC_DOC_TXT ? "is plain text"
                     : f->type == AVC_DOC_PDF ? "is a PDF" : "is a DOCX");
            avc_upload_fail(call, 422, msg);
            return;
        }
        if (f->xerr != AVC_OK) {
            snprintf(msg, sizeof(msg), "File \"%s\" cannot be read: %s",
                     f->filename, f->why ? f->why
                     : f->xerr == AVC_EINVAL ? "it contains no text"
                     : "it is damaged or too large");
            avc_upload_fail(call, f->xerr == AVC_ETOOBIG ? 413 : 422, msg);
            return;
        }
    }
    if (avc__begin(call, avc_upload_begun) != AVC_OK) {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_upload_go(avc_call_t *call)
{
    avc_upload_t *u = avc_up(call);

    if (u->nfiles == 0) {
        avc_upload_fail(call, 422, "No files: send them as the multipart "
                        "field \"files\"");
        return;
    }
    if (avc__offload(call, avc_upload_prepare, avc_upload_prepared, u, NULL)
        != AVC_OK)
    {
        avc__call_error(call, 503, "Service temporarily unavailable");
    }
}

static void
avc_upload_checked(avc_call_t *call)
{
    avc__kb_t *kb = call->op;
    avc_upload_t *u = kb->extra;
    char msg[200];

    if (u->bad) {
        return;                 /* the body was refused meanwhile */
    }
    if (!kb->initialized) {
        u->bad = 1;
        avc__kb_not_initialized(call);
        return;
    }
    if (!avc__kb_topic_ok(kb, u->topic)) {
        snprintf(msg, sizeof(msg), "Unknown topic '%s'", u->topic);
        avc_upload_refuse(call, 422, "path.topic", msg);
        return;
    }
    snprintf(u->user, sizeof(u->user), "%lld", call->who.id);
    u->checked = 1;
    if (u->body_done) {
        avc_upload_go(call);
    }
}

AVC_API int
avc_op_rag_upload(avc_call_t *call)
{
    const char *topic = avc_call_param(call, "topic");
    char *boundary;
    avc_upload_t *u;
    avc__kb_t *kb;
    long long max_file, max_total;
    int rc;

    boundary = avc__formdata_boundary(avc_call_header(call,
                                                      "Content-Type"));
    if (boundary == NULL) {
        avc__call_error(call, 422, "Send the files as multipart/form-data");
        return AVC_OK;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        free(boundary);
        return AVC_ENOMEM;
    }
    if (avc_config_get_int(call->app->cfg, "rag.max_file_size",
                           10 * 1024 * 1024, 1, 1LL << 32, &max_file)
        != AVC_OK
        || avc_config_get_int(call->app->cfg, "rag.max_upload_size",
                              50 * 1024 * 1024, 1, 1LL << 34, &max_total)
           != AVC_OK)
    {
        max_file = 10 * 1024 * 1024;
        max_total = 50 * 1024 * 1024;
    }
    u->max_file = (size_t) max_file;
    u->max_total = (size_t) max_total;
    snprintf(u->topic, sizeof(u->topic), "%s", topic ? topic : "");
    u->fd = avc__formdata_new(boundary, avc_up_part, avc_up_data, avc_up_end,
                              call);
    free(boundary);
    if (u->fd == NULL) {
        avc_upload_free(u);
        avc__call_error(call, 422, "Invalid multipart boundary");
        return AVC_OK;
    }

    rc = avc__kb_begin(call, 1, avc_upload_checked);
    kb = call->op;
    if (rc != AVC_OK || kb == NULL || kb->extra != NULL
        || call->status != 0)
    {
        avc_upload_free(u);
        return rc;
    }
    kb->extra = u;
    kb->extra_free = avc_upload_free;
    /* the body streams in while the caller is checked */
    call->feed = avc_upload_feed;
    call->feed_end = avc_upload_feed_end;
    return AVC_OK;
}
