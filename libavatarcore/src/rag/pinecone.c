/*
 * The Pinecone vector store client: REST data plane over avatarcore/http.h.
 *
 * An operation (avc_pc_op_t) lives from the call that starts it until its
 * callback returns.  Upserts and deletes by id are sent as a sequence of
 * batches; each batch body is built from the operation's own copy of the
 * input, on the thread pool when it is large (formatting a 2 MB body of
 * floats takes tens of milliseconds, too long for a worker's loop), else
 * inline.
 *
 * Invariants:
 *   - an operation is in pc->ops iff op->pc is set; a detached operation
 *     (client freed, or cancelled) never calls back;
 *   - while op->offloaded, the pool thread owns the operation's body,
 *     fragment and input, and only the completion frees a detached one;
 *   - at most one request per operation is running (op->req), so batches
 *     reach Pinecone in order and one at a time;
 *   - the API key is only ever copied into a request header: every
 *     message that leaves this file is scrubbed of it.
 */
#include "internal.h"
#include "json_util.h"

#include <avatarcore/pinecone.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_PC_API_VERSION      "2025-01"
/*
 * Pinecone's upsert limits: 1,000 vectors and "2 MB" per request.  The
 * smaller reading of 2 MB is used so that a batch is accepted whatever
 * the server means by it.
 */
#define AVC_PC_MAX_BATCH        1000
#define AVC_PC_MAX_REQUEST      2000000
/* values of an $in filter */
#define AVC_PC_MAX_TOPICS       10000
/* a batch of more floats than this is built on the thread pool */
#define AVC_PC_INLINE_FLOATS    16384
#define AVC_PC_MAX_RESPONSE     (16u * 1024 * 1024)
#define AVC_PC_MAX_ERROR_BODY   65536
#define AVC_PC_ERR_MAX          512
#define AVC_PC_MSG_MAX          300
/* gRPC status NOT_FOUND, as Pinecone reports a missing namespace */
#define AVC_PC_RPC_NOT_FOUND    5

typedef enum {
    AVC_PC_UPSERT = 0,
    AVC_PC_QUERY,
    AVC_PC_DELETE_IDS,
    AVC_PC_DELETE_ALL
} avc_pc_kind_t;

static const char *const avc_pc_kind_names[] = {
    "upsert", "query", "delete", "delete all"
};

typedef struct avc_pc_op_s avc_pc_op_t;

struct avc_pinecone_s {
    avc_loop_t *loop;
    avc_http_t *http;
    char *upsert_url;
    char *query_url;
    char *delete_url;
    char *index;                /* for messages only */
    char *key;                  /* a secret */
    char *api_version;
    unsigned timeout_ms;
    unsigned query_timeout_ms;
    unsigned attempts;
    unsigned backoff_ms;
    avc_pc_op_t *ops;
    char errmsg[AVC_PC_ERR_MAX];
};

struct avc_pc_op_s {
    avc_pinecone_t *pc;         /* NULL once detached */
    avc_pc_op_t *prev;
    avc_pc_op_t *next;
    avc_pc_kind_t kind;
    avc_http_req_t *req;        /* the batch being sent */
    unsigned offloaded:1;       /* a batch is being built on the pool */

    int64_t dealership_id;
    char ns[32];                /* "dealership_{id}" */
    avc_pinecone_cb cb;
    avc_pinecone_query_cb qcb;
    void *data;

    /* upsert and delete by ids: the input, copied */
    size_t n;
    size_t dim;
    float *values;              /* n * dim */
    int64_t *document_ids;
    int *positions;
    size_t nstr;                /* strings per item: 3 upsert, 1 delete */
    size_t *str_off;            /* n * nstr offsets into strs */
    avc__buf_t strs;            /* JSON-escaped strings, quotes included */

    /* batches: items [first, end) are in the body being sent */
    size_t first;
    size_t end;
    size_t count;               /* reported to the callback */
    unsigned requests;
    avc__buf_t body;
    avc__buf_t frag;            /* one item, built but not yet placed */
    size_t frag_item;           /* the item frag holds, or SIZE_MAX */
    int build_err;
};

struct avc_pinecone_matches_s {
    json_t *root;
    size_t n;
    struct avc_pc_match_s {
        const char *id;
        double score;
        int64_t dealership_id;
        int64_t document_id;
        const char *topic;
        const char *filename;
        int position;
    } *v;
};

typedef struct avc_pc_match_s avc_pc_match_t;

static int avc_pc_next_batch(avc_pc_op_t *op);

/* helpers */

static char *
avc_pc_concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);

    if (s != NULL) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* NULL-safe, bounded, valid UTF-8 */
static int
avc_pc_text_ok(const char *s, size_t max, int nonempty)
{
    size_t len;

    if (s == NULL) {
        return 0;
    }
    len = strnlen(s, max + 1);
    return len <= max && (len > 0 || !nonempty) && avc__utf8_valid(s, len);
}

/* Append s (valid UTF-8) as a JSON string, quotes included. */
static int
avc_pc_json_str(avc__buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *) s, *run = p;
    char esc[8];
    int rc = AVC_OK;

    rc |= avc__buf_append(b, "\"", 1);
    for (; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\') {
            continue;
        }
        rc |= avc__buf_append(b, run, (size_t) (p - run));
        run = p + 1;
        switch (*p) {
        case '"':  rc |= avc__buf_append(b, "\\\"", 2); break;
        case '\\': rc |= avc__buf_append(b, "\\\\", 2); break;
        case '\n': rc |= avc__buf_append(b, "\\n", 2); break;
        case '\r': rc |= avc__buf_append(b, "\\r", 2); break;
        case '\t': rc |= avc__buf_append(b, "\\t", 2); break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            rc |= avc__buf_append(b, esc, 6);
        }
    }
    rc |= avc__buf_append(b, run, (size_t) (p - run));
    rc |= avc__buf_append(b, "\"", 1);
    return rc ? AVC_ENOMEM : AVC_OK;
}

/*
 * Floats as JSON numbers: %.9g gives back the same float32 when parsed,
 * which is all Pinecone stores.
 */
static int
avc_pc_json_floats(avc__buf_t *b, const float *v, size_t n)
{
    char num[32];
    size_t i;
    int len, rc = AVC_OK;

    rc |= avc__buf_append(b, "[", 1);
    for (i = 0; i < n; i++) {
        len = snprintf(num + 1, sizeof(num) - 1, "%.9g", (double) v[i]);
        num[0] = ',';
        rc |= avc__buf_append(b, i ? num : num + 1,
                              (size_t) len + (i ? 1 : 0));
    }
    rc |= avc__buf_append(b, "]", 1);
    return rc ? AVC_ENOMEM : AVC_OK;
}

static int
avc_pc_floats_ok(const float *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return 0;
        }
    }
    return 1;
}

/* Replace every occurrence of the key in s (a NUL-terminated buffer). */
static void
avc_pc_scrub(const avc_pinecone_t *pc, char *s)
{
    static const char mask[] = "[redacted]";
    size_t klen = strlen(pc->key), mlen = sizeof(mask) - 1;
    char *p = s;

    if (klen == 0) {
        return;
    }
    while ((p = strstr(p, pc->key)) != NULL) {
        if (mlen <= klen) {
            memcpy(p, mask, mlen);
            memmove(p + mlen, p + klen, strlen(p + klen) + 1);
            p += mlen;
        } else {
            /* no room for the mask in place */
            memset(p, '*', klen);
            p += klen;
        }
    }
}

/*
 * One printable line of at most AVC_PC_MSG_MAX bytes from untrusted
 * text: control characters become spaces, invalid UTF-8 becomes '?',
 * surrounding space is trimmed and a cut never splits a character.
 */
static void
avc_pc_sanitize(char *out, size_t outsz, const char *s, size_t n)
{
    size_t i, o = 0, j, need;
    unsigned char c;

    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        n--;
    }
    for (i = 0; i < n && o + 1 < outsz && o < AVC_PC_MSG_MAX; i++) {
        c = (unsigned char) s[i];
        out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char) c;
    }
    if (i < n) {
        /* drop a character the cut left incomplete */
        j = o;
        while (j > 0 && ((unsigned char) out[j - 1] & 0xc0) == 0x80) {
            j--;
        }
        if (j > 0 && (unsigned char) out[j - 1] >= 0xc0) {
            c = (unsigned char) out[j - 1];
            need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (o - (j - 1) < need) {
                o = j - 1;
            }
        }
    }
    out[o] = '\0';
    if (!avc__utf8_valid(out, o)) {
        for (i = 0; i < o; i++) {
            if ((unsigned char) out[i] >= 0x80) {
                out[i] = '?';
            }
        }
    }
    while (o > 0 && out[o - 1] == ' ') {
        out[--o] = '\0';
    }
}

/* configuration */

static int
avc_pc_bad(const char *key, const char *why)
{
    avc_log(AVC_LOG_ERR, "pinecone: %s: %s", key, why);
    return AVC_EINVAL;
}

/* The index host as a base URL without a trailing slash, new. */
static int
avc_pc_base_url(const char *host, char **out)
{
    const char *p, *rest;
    char *base;
    size_t len;

    if (host == NULL || *host == '\0') {
        return avc_pc_bad("vector_store.host", "required");
    }
    for (p = host; *p; p++) {
        if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f
            || *p == '?' || *p == '#' || *p == '@' || *p == '\\')
        {
            return avc_pc_bad("vector_store.host",
                              "not a plain URL (spaces, '?', '#' or '@')");
        }
    }
    if (strncmp(host, "https://", 8) == 0) {
        rest = host + 8;
        base = strdup(host);
    } else if (strncmp(host, "http://", 7) == 0) {
        rest = host + 7;
        base = strdup(host);
    } else if (strstr(host, "://") != NULL) {
        return avc_pc_bad("vector_store.host", "scheme is not https");
    } else {
        /* describe_index gives the host without a scheme */
        rest = host;
        base = avc_pc_concat("https://", host);
    }
    if (base == NULL) {
        return AVC_ENOMEM;
    }
    if (*rest == '\0' || *rest == '/' || *rest == ':') {
        free(base);
        return avc_pc_bad("vector_store.host", "no host name");
    }
    len = strlen(base);
    while (len > 0 && base[len - 1] == '/') {
        base[--len] = '\0';
    }
    *out = base;
    return AVC_OK;
}

static int
avc_pc_configure(avc_pinecone_t *pc, const avc_config_t *cfg)
{
    const char *prov, *key, *ver, *index, *p;
    char *base = NULL;
    long long v;
    int rc;

    prov = avc_config_get(cfg, "vector_store.provider", "pinecone");
    if (strcmp(prov, "pinecone") != 0) {
        return avc_pc_bad("vector_store.provider", "not \"pinecone\"");
    }
    key = avc_config_get(cfg, "vector_store.key", NULL);
    if (key == NULL || *key == '\0') {
        return avc_pc_bad("vector_store.key", "required by pinecone");
    }
    for (p = key; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            return avc_pc_bad("vector_store.key",
                              "contains a control character");
        }
    }
    ver = avc_config_get(cfg, "vector_store.api_version", AVC_PC_API_VERSION);
    if (*ver == '\0' || strlen(ver) > 32
        || strspn(ver, "0123456789abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-") != strlen(ver))
    {
        return avc_pc_bad("vector_store.api_version", "not a version "
                          "such as 2025-01");
    }
    index = avc_config_get(cfg, "vector_store.index", "");

    rc = avc_pc_base_url(avc_config_get(cfg, "vector_store.host", NULL),
                         &base);
    if (rc != AVC_OK) {
        return rc;
    }
    pc->upsert_url = avc_pc_concat(base, "/vectors/upsert");
    pc->query_url = avc_pc_concat(base, "/query");
    pc->delete_url = avc_pc_concat(base, "/vectors/delete");
    free(base);
    pc->key = strdup(key);
    pc->api_version = strdup(ver);
    pc->index = strdup(index);
    if (pc->upsert_url == NULL || pc->query_url == NULL
        || pc->delete_url == NULL || pc->key == NULL
        || pc->api_version == NULL || pc->index == NULL)
    {
        return AVC_ENOMEM;
    }

    if (avc_config_get_int(cfg, "vector_store.timeout", 30000, 100, 600000,
                           &v) != AVC_OK)
    {
        return avc_pc_bad("vector_store.timeout",
                          "not milliseconds in [100, 600000]");
    }
    pc->timeout_ms = (unsigned) v;
    if (avc_config_get_int(cfg, "vector_store.query_timeout", 10000, 100,
                           600000, &v) != AVC_OK)
    {
        return avc_pc_bad("vector_store.query_timeout",
                          "not milliseconds in [100, 600000]");
    }
    pc->query_timeout_ms = (unsigned) v;
    if (avc_config_get_int(cfg, "vector_store.attempts", 3, 1, 10, &v)
        != AVC_OK)
    {
        return avc_pc_bad("vector_store.attempts", "not in [1, 10]");
    }
    pc->attempts = (unsigned) v;
    if (avc_config_get_int(cfg, "vector_store.backoff", 250, 0, 60000, &v)
        != AVC_OK)
    {
        return avc_pc_bad("vector_store.backoff",
                          "not milliseconds in [0, 60000]");
    }
    pc->backoff_ms = (unsigned) v;
    return AVC_OK;
}

AVC_API avc_pinecone_t *
avc_pinecone_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    avc_pinecone_t *pc;
    int rc;

    if (loop == NULL || http == NULL || cfg == NULL) {
        if (err) {
            *err = AVC_EINVAL;
        }
        return NULL;
    }
    pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        if (err) {
            *err = AVC_ENOMEM;
        }
        return NULL;
    }
    pc->loop = loop;
    pc->http = http;
    rc = avc_pc_configure(pc, cfg);
    if (rc != AVC_OK) {
        avc_pinecone_free(pc);
        if (err) {
            *err = rc;
        }
        return NULL;
    }
    avc_log(AVC_LOG_INFO, "pinecone: index \"%s\" at %.*s, API version %s",
            pc->index,
            (int) (strlen(pc->query_url) - strlen("/query")), pc->query_url,
            pc->api_version);
    return pc;
}

AVC_API const char *
avc_pinecone_last_error(const avc_pinecone_t *pc)
{
    return pc ? pc->errmsg : "";
}

/* operations */

static void
avc_pc_link(avc_pinecone_t *pc, avc_pc_op_t *op)
{
    op->pc = pc;
    op->prev = NULL;
    op->next = pc->ops;
    if (pc->ops) {
        pc->ops->prev = op;
    }
    pc->ops = op;
}

static void
avc_pc_unlink(avc_pc_op_t *op)
{
    avc_pinecone_t *pc = op->pc;

    if (pc == NULL) {
        return;
    }
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        pc->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
    op->pc = NULL;
}

static avc_pc_op_t *
avc_pc_op_new(avc_pinecone_t *pc, avc_pc_kind_t kind, int64_t dealership_id,
    void *data)
{
    avc_pc_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL) {
        return NULL;
    }
    op->kind = kind;
    op->dealership_id = dealership_id;
    snprintf(op->ns, sizeof(op->ns), "dealership_%lld",
             (long long) dealership_id);
    op->data = data;
    op->frag_item = SIZE_MAX;
    avc__buf_init(&op->strs);
    avc__buf_init(&op->body);
    avc__buf_init(&op->frag);
    return op;
}

static void
avc_pc_op_free(avc_pc_op_t *op)
{
    free(op->values);
    free(op->document_ids);
    free(op->positions);
    free(op->str_off);
    avc__buf_free(&op->strs);
    avc__buf_free(&op->body);
    avc__buf_free(&op->frag);
    free(op);
}

/* Detach and release an operation without calling back. */
static void
avc_pc_op_abandon(avc_pc_op_t *op)
{
    avc_pc_unlink(op);
    if (op->offloaded) {
        return;                 /* the pool's completion frees it */
    }
    if (op->req) {
        avc_http_cancel(op->req);
        op->req = NULL;
    }
    avc_pc_op_free(op);
}

AVC_API void
avc_pinecone_free(avc_pinecone_t *pc)
{
    if (pc == NULL) {
        return;
    }
    while (pc->ops) {
        avc_pc_op_abandon(pc->ops);
    }
    free(pc->upsert_url);
    free(pc->query_url);
    free(pc->delete_url);
    free(pc->index);
    free(pc->api_version);
    avc__free_secret(pc->key);
    explicit_bzero(pc->errmsg, sizeof(pc->errmsg));
    free(pc);
}

AVC_API size_t
avc_pinecone_cancel(avc_pinecone_t *pc, void *data)
{
    avc_pc_op_t *op, *next;
    size_t n = 0;

    if (pc == NULL) {
        return 0;
    }
    for (op = pc->ops; op; op = next) {
        next = op->next;
        if (op->data == data) {
            avc_pc_op_abandon(op);
            n++;
        }
    }
    return n;
}

/* Record why op failed in its client's last error, and log it. */
static void
avc_pc_fail(avc_pc_op_t *op, const char *fmt, ...) AVC_PRINTF(2, 3);

static void
avc_pc_fail(avc_pc_op_t *op, const char *fmt, ...)
{
    avc_pinecone_t *pc = op->pc;
    va_list ap;
    int n;

    n = snprintf(pc->errmsg, sizeof(pc->errmsg), "%s %s: ",
                 avc_pc_kind_names[op->kind], op->ns);
    if (n < 0 || (size_t) n >= sizeof(pc->errmsg)) {
        n = 0;
    }
    va_start(ap, fmt);
    vsnprintf(pc->errmsg + n, sizeof(pc->errmsg) - (size_t) n, fmt, ap);
    va_end(ap);
    avc_pc_scrub(pc, pc->errmsg);
    avc_log(AVC_LOG_WARN, "pinecone: index \"%s\": %s", pc->index,
            pc->errmsg);
}

/* The end: the operation leaves its client, the caller hears. */
static void
avc_pc_finish(avc_pc_op_t *op, int err, const avc_pinecone_matches_t *m)
{
    int live = op->pc != NULL;

    avc_pc_unlink(op);
    if (live) {
        if (op->kind == AVC_PC_QUERY) {
            op->qcb(err, err == AVC_OK ? m : NULL, op->data);
        } else {
            op->cb(err, op->count, op->data);
        }
    }
    avc_pc_op_free(op);
}

/* requests */

static int
avc_pc_ok_status(int status)
{
    return status >= 200 && status < 300;
}

/*
 * Pinecone's error bodies: {"code":3,"message":"..."} from the data plane
 * (gRPC status codes), {"error":{"code":"UNAUTHENTICATED","message":...}}
 * from its gateway and control plane, or plain text ("Unauthorized").
 * Writes the code (or "") and the message (or "") into the buffers.
 */
static void
avc_pc_error_body(avc_http_req_t *req, char *code, size_t codesz,
    char *msg, size_t msgsz)
{
    const char *body, *s;
    json_t *root, *obj, *c;
    long long num;
    size_t len;
    int err;

    code[0] = msg[0] = '\0';
    body = avc_http_resp_body(req, &len);
    root = avc__json_parse(body, len, AVC_PC_MAX_ERROR_BODY, &err, NULL);
    if (root != NULL) {
        obj = json_is_object(root) ? root : NULL;
        if (obj && json_is_object(json_object_get(obj, "error"))) {
            obj = json_object_get(obj, "error");
        }
        if (obj) {
            c = json_object_get(obj, "code");
            if (json_is_string(c)) {
                avc_pc_sanitize(code, codesz, json_string_value(c),
                                json_string_length(c));
            } else if (avc__json_get_int(obj, "code", &num) == AVC_OK) {
                snprintf(code, codesz, "%lld", num);
            }
            if (avc__json_get_str(obj, "message", &s) == AVC_OK) {
                avc_pc_sanitize(msg, msgsz, s, strlen(s));
            }
        } else if (json_is_string(root)) {
            avc_pc_sanitize(msg, msgsz, json_string_value(root),
                            json_string_length(root));
        }
        json_decref(root);
    } else if (len > 0) {
        avc_pc_sanitize(msg, msgsz, body, len);
    }
    if (msg[0] == '\0') {
        /* a bare 401 explains itself in this header */
        s = avc_http_resp_header(req, "WWW-Authenticate");
        if (s != NULL) {
            avc_pc_sanitize(msg, msgsz, s, strlen(s));
        }
    }
}

static void
avc_pc_http_done(avc_http_req_t *req, int err, void *data);

/* Send op's built body to url; the body is handed to the request. */
static int
avc_pc_send(avc_pc_op_t *op, const char *url)
{
    avc_pinecone_t *pc = op->pc;
    avc_http_req_t *req;
    unsigned timeout;
    size_t len;
    char *body;
    int rc;

    body = avc__buf_steal(&op->body, &len);
    if (body == NULL) {
        return AVC_ENOMEM;
    }
    req = avc_http_req_new(pc->http, "POST", url);
    if (req == NULL) {
        free(body);
        return AVC_ENOMEM;
    }
    timeout = op->kind == AVC_PC_QUERY ? pc->query_timeout_ms
                                       : pc->timeout_ms;
    avc_http_req_take_body(req, body, len);
    avc_http_req_add_header(req, "Api-Key", pc->key);
    avc_http_req_add_header(req, "X-Pinecone-API-Version", pc->api_version);
    avc_http_req_add_header(req, "Content-Type", "application/json");
    avc_http_req_add_header(req, "Accept", "application/json");
    avc_http_req_set_timeouts(req, timeout < 10000 ? timeout : 10000,
                              timeout, timeout);
    avc_http_req_set_retry(req, pc->attempts, pc->backoff_ms);
    avc_http_req_set_max_body(req, AVC_PC_MAX_RESPONSE);
    avc_http_req_set_callbacks(req, NULL, NULL, avc_pc_http_done, op);
    rc = avc_http_req_start(req);
    if (rc == AVC_OK) {
        op->req = req;
        op->requests++;
    }
    return rc;
}

/* upsert and delete by ids: batches */

/* The JSON of item i of op into op->frag. */
static int
avc_pc_fragment(avc_pc_op_t *op, size_t i)
{
    avc__buf_t *f = &op->frag;
    const size_t *off = op->str_off + i * op->nstr;
    const char *s = op->strs.data;
    int rc = AVC_OK;

    avc__buf_reset(f);
    op->frag_item = SIZE_MAX;
    if (op->kind == AVC_PC_DELETE_IDS) {
        rc = avc__buf_appends(f, s + off[0]);
    } else {
        rc |= avc__buf_appends(f, "{\"id\":");
        rc |= avc__buf_appends(f, s + off[0]);
        rc |= avc__buf_appends(f, ",\"values\":");
        rc |= avc_pc_json_floats(f, op->values + i * op->dim, op->dim);
        rc |= avc__buf_printf(f, ",\"metadata\":{\"dealership_id\":%lld,"
                              "\"document_id\":%lld,\"topic\":",
                              (long long) op->dealership_id,
                              (long long) op->document_ids[i]);
        rc |= avc__buf_appends(f, s + off[1]);
        rc |= avc__buf_appends(f, ",\"filename\":");
        rc |= avc__buf_appends(f, s + off[2]);
        rc |= avc__buf_printf(f, ",\"position\":%d}}", op->positions[i]);
    }
    if (rc != AVC_OK) {
        return AVC_ENOMEM;
    }
    op->frag_item = i;
    return AVC_OK;
}

/*
 * The next batch's body: as many items from op->first as fit in both
 * limits.  The item that did not fit stays in op->frag for the next
 * batch.  Touches only op's own buffers: it may run on the pool.
 */
static int
avc_pc_build(avc_pc_op_t *op)
{
    char tail[64];
    size_t i, tail_len;
    int rc = AVC_OK;

    tail_len = (size_t) snprintf(tail, sizeof(tail), "],\"namespace\":\"%s\"}",
                                 op->ns);
    avc__buf_reset(&op->body);
    rc |= avc__buf_appends(&op->body, op->kind == AVC_PC_UPSERT
                                      ? "{\"vectors\":[" : "{\"ids\":[");
    for (i = op->first; rc == AVC_OK && i < op->n
                        && i - op->first < AVC_PC_MAX_BATCH; i++)
    {
        if (op->frag_item != i) {
            rc = avc_pc_fragment(op, i);
            if (rc != AVC_OK) {
                break;
            }
        }
        /* the first item always fits: the per-item limits see to it */
        if (i > op->first
            && op->body.len + 1 + op->frag.len + tail_len > AVC_PC_MAX_REQUEST)
        {
            break;
        }
        if (i > op->first) {
            rc |= avc__buf_append(&op->body, ",", 1);
        }
        rc |= avc__buf_append(&op->body, op->frag.data, op->frag.len);
        op->frag_item = SIZE_MAX;
    }
    op->end = i;
    rc |= avc__buf_append(&op->body, tail, tail_len);
    return rc ? AVC_ENOMEM : AVC_OK;
}

static void
avc_pc_build_work(void *arg)
{
    avc_pc_op_t *op = arg;

    op->build_err = avc_pc_build(op);
}

static const char *
avc_pc_url(const avc_pc_op_t *op)
{
    switch (op->kind) {
    case AVC_PC_UPSERT:
        return op->pc->upsert_url;
    case AVC_PC_QUERY:
        return op->pc->query_url;
    default:
        return op->pc->delete_url;
    }
}

static void
avc_pc_build_done(void *arg, int status)
{
    avc_pc_op_t *op = arg;
    int rc;

    op->offloaded = 0;
    if (op->pc == NULL) {
        avc_pc_op_free(op);     /* abandoned meanwhile */
        return;
    }
    rc = status != AVC_OK ? status : op->build_err;
    if (rc == AVC_OK) {
        rc = avc_pc_send(op, avc_pc_url(op));
    }
    if (rc != AVC_OK) {
        avc_pc_fail(op, "%s", avc_strerror(rc));
        avc_pc_finish(op, rc, NULL);
    }
}

/* Build (here or on the pool) and send the batch starting at op->first. */
static int
avc_pc_next_batch(avc_pc_op_t *op)
{
    size_t items = op->n - op->first;
    int rc;

    if (items > AVC_PC_MAX_BATCH) {
        items = AVC_PC_MAX_BATCH;
    }
    if (op->kind == AVC_PC_UPSERT && items * op->dim > AVC_PC_INLINE_FLOATS) {
        op->offloaded = 1;
        rc = avc_offload(op->pc->loop, avc_pc_build_work, avc_pc_build_done,
                         op);
        if (rc != AVC_OK) {
            op->offloaded = 0;
        }
        return rc;
    }
    rc = avc_pc_build(op);
    return rc == AVC_OK ? avc_pc_send(op, avc_pc_url(op)) : rc;
}

/* Copy s, JSON-escaped, into op->strs; its offset into *off. */
static int
avc_pc_keep_str(avc_pc_op_t *op, const char *s, size_t *off)
{
    *off = op->strs.len;
    if (avc_pc_json_str(&op->strs, s) != AVC_OK
        || avc__buf_append(&op->strs, "", 1) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

/* Start an operation built by the caller: link it and send batch one. */
static int
avc_pc_start(avc_pinecone_t *pc, avc_pc_op_t *op)
{
    int rc;

    avc_pc_link(pc, op);
    if (op->kind == AVC_PC_UPSERT || op->kind == AVC_PC_DELETE_IDS) {
        rc = avc_pc_next_batch(op);
    } else {
        rc = avc_pc_send(op, avc_pc_url(op));
    }
    if (rc != AVC_OK) {
        avc_pc_unlink(op);
        avc_pc_op_free(op);
    }
    return rc;
}

AVC_API int
avc_pinecone_upsert(avc_pinecone_t *pc, int64_t dealership_id,
    const char *const *ids, const float *vectors, size_t dim,
    const int64_t *document_ids, const char *const *topics,
    const char *const *filenames, const int *positions, size_t n,
    avc_pinecone_cb cb, void *data)
{
    avc_pc_op_t *op;
    size_t i, *off;
    int rc = AVC_OK;

    if (pc == NULL || cb == NULL || dealership_id < 1 || n == 0 || dim == 0
        || dim > AVC_PINECONE_MAX_DIM || ids == NULL || vectors == NULL
        || document_ids == NULL || topics == NULL || filenames == NULL
        || positions == NULL || n > SIZE_MAX / sizeof(float) / dim
        || n > SIZE_MAX / 3 / sizeof(size_t))
    {
        return AVC_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (!avc_pc_text_ok(ids[i], AVC_PINECONE_MAX_ID, 1)
            || !avc_pc_text_ok(topics[i], AVC_PINECONE_MAX_TEXT, 0)
            || !avc_pc_text_ok(filenames[i], AVC_PINECONE_MAX_TEXT, 0))
        {
            return AVC_EINVAL;
        }
    }
    if (!avc_pc_floats_ok(vectors, n * dim)) {
        return AVC_EINVAL;
    }

    op = avc_pc_op_new(pc, AVC_PC_UPSERT, dealership_id, data);
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->cb = cb;
    op->n = n;
    op->dim = dim;
    op->nstr = 3;
    op->values = malloc(n * dim * sizeof(float));
    op->document_ids = malloc(n * sizeof(int64_t));
    op->positions = malloc(n * sizeof(int));
    op->str_off = malloc(n * 3 * sizeof(size_t));
    if (op->values == NULL || op->document_ids == NULL
        || op->positions == NULL || op->str_off == NULL)
    {
        avc_pc_op_free(op);
        return AVC_ENOMEM;
    }
    memcpy(op->values, vectors, n * dim * sizeof(float));
    memcpy(op->document_ids, document_ids, n * sizeof(int64_t));
    memcpy(op->positions, positions, n * sizeof(int));
    for (i = 0, off = op->str_off; i < n && rc == AVC_OK; i++, off += 3) {
        rc |= avc_pc_keep_str(op, ids[i], &off[0]);
        rc |= avc_pc_keep_str(op, topics[i], &off[1]);
        rc |= avc_pc_keep_str(op, filenames[i], &off[2]);
    }
    if (rc != AVC_OK) {
        avc_pc_op_free(op);
        return AVC_ENOMEM;
    }
    return avc_pc_start(pc, op);
}

AVC_API int
avc_pinecone_delete_ids(avc_pinecone_t *pc, int64_t dealership_id,
    const char *const *ids, size_t n, avc_pinecone_cb cb, void *data)
{
    avc_pc_op_t *op;
    size_t i;
    int rc = AVC_OK;

    if (pc == NULL || cb == NULL || dealership_id < 1 || n == 0
        || ids == NULL || n > SIZE_MAX / sizeof(size_t))
    {
        return AVC_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (!avc_pc_text_ok(ids[i], AVC_PINECONE_MAX_ID, 1)) {
            return AVC_EINVAL;
        }
    }
    op = avc_pc_op_new(pc, AVC_PC_DELETE_IDS, dealership_id, data);
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->cb = cb;
    op->n = n;
    op->nstr = 1;
    op->str_off = malloc(n * sizeof(size_t));
    if (op->str_off == NULL) {
        avc_pc_op_free(op);
        return AVC_ENOMEM;
    }
    for (i = 0; i < n && rc == AVC_OK; i++) {
        rc = avc_pc_keep_str(op, ids[i], &op->str_off[i]);
    }
    if (rc != AVC_OK) {
        avc_pc_op_free(op);
        return AVC_ENOMEM;
    }
    return avc_pc_start(pc, op);
}

AVC_API int
avc_pinecone_delete_namespace(avc_pinecone_t *pc, int64_t dealership_id,
    avc_pinecone_cb cb, void *data)
{
    avc_pc_op_t *op;

    if (pc == NULL || cb == NULL || dealership_id < 1) {
        return AVC_EINVAL;
    }
    op = avc_pc_op_new(pc, AVC_PC_DELETE_ALL, dealership_id, data);
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->cb = cb;
    if (avc__buf_printf(&op->body, "{\"deleteAll\":true,\"namespace\":\"%s\"}",
                        op->ns) != AVC_OK)
    {
        avc_pc_op_free(op);
        return AVC_ENOMEM;
    }
    return avc_pc_start(pc, op);
}

AVC_API int
avc_pinecone_query(avc_pinecone_t *pc, int64_t dealership_id,
    const float *vector, size_t dim, unsigned top_k,
    const char *const *topics, size_t ntopics, avc_pinecone_query_cb cb,
    void *data)
{
    avc_pc_op_t *op;
    avc__buf_t *b;
    size_t i;
    int rc = AVC_OK;

    if (pc == NULL || cb == NULL || dealership_id < 1 || vector == NULL
        || dim == 0 || dim > AVC_PINECONE_MAX_DIM || top_k == 0
        || top_k > AVC_PINECONE_MAX_TOP_K || ntopics > AVC_PC_MAX_TOPICS
        || (ntopics > 0 && topics == NULL) || !avc_pc_floats_ok(vector, dim))
    {
        return AVC_EINVAL;
    }
    for (i = 0; i < ntopics; i++) {
        if (!avc_pc_text_ok(topics[i], AVC_PINECONE_MAX_TEXT, 0)) {
            return AVC_EINVAL;
        }
    }
    op = avc_pc_op_new(pc, AVC_PC_QUERY, dealership_id, data);
    if (op == NULL) {
        return AVC_ENOMEM;
    }
    op->qcb = cb;
    b = &op->body;
    rc |= avc__buf_printf(b, "{\"namespace\":\"%s\",\"vector\":", op->ns);
    rc |= avc_pc_json_floats(b, vector, dim);
    /* the namespace already confines the query; the filter is the belt
     * to its braces, should a vector ever land in the wrong namespace */
    rc |= avc__buf_printf(b, ",\"topK\":%u,\"includeMetadata\":true,"
                          "\"includeValues\":false,\"filter\":{"
                          "\"dealership_id\":{\"$eq\":%lld}",
                          top_k, (long long) dealership_id);
    if (ntopics > 0) {
        rc |= avc__buf_appends(b, ",\"topic\":{\"$in\":[");
        for (i = 0; i < ntopics; i++) {
            if (i > 0) {
                rc |= avc__buf_append(b, ",", 1);
            }
            rc |= avc_pc_json_str(b, topics[i]);
        }
        rc |= avc__buf_appends(b, "]}");
    }
    rc |= avc__buf_appends(b, "}}");
    if (rc != AVC_OK) {
        avc_pc_op_free(op);
        return AVC_ENOMEM;
    }
    return avc_pc_start(pc, op);
}

/* responses */

/* A 2xx query answer into matches; AVC_EPROTO when it is not one. */
static int
avc_pc_parse_matches(avc_pc_op_t *op, avc_http_req_t *req,
    avc_pinecone_matches_t *m)
{
    const char *body;
    json_t *arr, *it, *meta, *score;
    avc_pc_match_t *v;
    long long num;
    size_t len, i, dropped = 0;
    int err;

    body = avc_http_resp_body(req, &len);
    m->root = avc__json_parse(body, len, 0, &err, NULL);
    if (m->root == NULL) {
        return err == AVC_ENOMEM ? AVC_ENOMEM : AVC_EPROTO;
    }
    if (!json_is_object(m->root)) {
        return AVC_EPROTO;
    }
    arr = json_object_get(m->root, "matches");
    if (arr == NULL || json_is_null(arr)) {
        return AVC_OK;          /* protobuf's JSON omits empty lists */
    }
    if (!json_is_array(arr)) {
        return AVC_EPROTO;
    }
    if (json_array_size(arr) == 0) {
        return AVC_OK;
    }
    m->v = calloc(json_array_size(arr), sizeof(*m->v));
    if (m->v == NULL) {
        return AVC_ENOMEM;
    }
    json_array_foreach(arr, i, it) {
        v = &m->v[m->n];
        if (avc__json_get_str(it, "id", &v->id) != AVC_OK) {
            return AVC_EPROTO;
        }
        /* and a zero score is omitted too */
        score = json_object_get(it, "score");
        if (score != NULL && !json_is_null(score) && !json_is_number(score)) {
            return AVC_EPROTO;
        }
        v->score = score ? json_number_value(score) : 0.0;
        meta = json_object_get(it, "metadata");
        v->dealership_id = v->document_id = -1;
        v->position = -1;
        if (avc__json_get_int(meta, "dealership_id", &num) == AVC_OK) {
            v->dealership_id = num;
        }
        if (v->dealership_id != op->dealership_id) {
            dropped++;
            continue;
        }
        if (avc__json_get_int(meta, "document_id", &num) == AVC_OK) {
            v->document_id = num;
        }
        if (avc__json_get_int(meta, "position", &num) == AVC_OK
            && num >= 0 && num <= 0x7fffffff)
        {
            v->position = (int) num;
        }
        if (avc__json_get_str(meta, "topic", &v->topic) != AVC_OK) {
            v->topic = NULL;
        }
        if (avc__json_get_str(meta, "filename", &v->filename) != AVC_OK) {
            v->filename = NULL;
        }
        m->n++;
    }
    if (dropped > 0) {
        avc_log(AVC_LOG_WARN, "pinecone: index \"%s\": query %s: dropped %zu "
                "match(es) of another dealership", op->pc->index, op->ns,
                dropped);
    }
    return AVC_OK;
}

static void
avc_pc_query_done(avc_pc_op_t *op, avc_http_req_t *req)
{
    avc_pinecone_matches_t m;
    int rc;

    memset(&m, 0, sizeof(m));
    rc = avc_pc_parse_matches(op, req, &m);
    if (rc != AVC_OK) {
        avc_pc_fail(op, "%s", rc == AVC_EPROTO ? "the answer is not a query "
                    "response" : avc_strerror(rc));
    }
    avc_pc_finish(op, rc, &m);
    free(m.v);
    json_decref(m.root);
}

/* The upsertedCount of a 2xx upsert answer, or the batch's size. */
static int
avc_pc_upserted(avc_http_req_t *req, size_t sent, size_t *count)
{
    const char *body;
    long long num;
    json_t *root;
    size_t len;
    int err, rc;

    body = avc_http_resp_body(req, &len);
    root = avc__json_parse(body, len, 0, &err, NULL);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return root == NULL && err == AVC_ENOMEM ? AVC_ENOMEM : AVC_EPROTO;
    }
    rc = avc__json_get_int(root, "upsertedCount", &num);
    json_decref(root);
    if (rc == AVC_ENOTFOUND) {
        *count = sent;
        return AVC_OK;
    }
    if (rc != AVC_OK || num < 0 || (unsigned long long) num > sent) {
        return AVC_EPROTO;
    }
    *count = (size_t) num;
    return AVC_OK;
}

static void
avc_pc_http_done(avc_http_req_t *req, int err, void *data)
{
    avc_pc_op_t *op = data;
    avc_pinecone_t *pc = op->pc;
    char code[64], msg[AVC_PC_MSG_MAX + 1];
    size_t count;
    unsigned attempts = avc_http_req_attempts(req);
    int status, rc;

    op->req = NULL;
    if (err != AVC_OK) {
        avc_pc_fail(op, "%s after %u attempt(s)", avc_strerror(err),
                    attempts);
        avc_pc_finish(op, err, NULL);
        return;
    }
    status = avc_http_resp_status(req);
    if (!avc_pc_ok_status(status)) {
        avc_pc_error_body(req, code, sizeof(code), msg, sizeof(msg));
        /* deleting from a namespace that does not exist deletes nothing,
         * which is what was asked */
        if (status == 404
            && (op->kind == AVC_PC_DELETE_IDS
                || op->kind == AVC_PC_DELETE_ALL)
            && (atoi(code) == AVC_PC_RPC_NOT_FOUND
                || strcmp(code, "NOT_FOUND") == 0))
        {
            avc_log(AVC_LOG_DEBUG, "pinecone: %s %s: %s",
                    avc_pc_kind_names[op->kind], op->ns, msg);
            /* the remaining batches would find no namespace either */
            if (op->kind == AVC_PC_DELETE_IDS) {
                op->count += op->n - op->first;
            }
            avc_pc_finish(op, AVC_OK, NULL);
            return;
        }
        avc_pc_fail(op, "HTTP %d%s%s%s: %s%s", status,
                    code[0] ? " (" : "", code, code[0] ? ")" : "",
                    msg[0] ? msg : "(no message)",
                    attempts > 1 ? " (after retries)" : "");
        avc_pc_finish(op, AVC_EUPSTREAM, NULL);
        return;
    }

    switch (op->kind) {
    case AVC_PC_QUERY:
        avc_pc_query_done(op, req);
        return;
    case AVC_PC_DELETE_ALL:
        avc_log(AVC_LOG_INFO, "pinecone: index \"%s\": deleted namespace %s",
                pc->index, op->ns);
        avc_pc_finish(op, AVC_OK, NULL);
        return;
    case AVC_PC_UPSERT:
        rc = avc_pc_upserted(req, op->end - op->first, &count);
        if (rc != AVC_OK) {
            avc_pc_fail(op, "%s", rc == AVC_EPROTO ? "the answer is not an "
                        "upsert response" : avc_strerror(rc));
            avc_pc_finish(op, rc, NULL);
            return;
        }
        op->count += count;
        break;
    case AVC_PC_DELETE_IDS:
        op->count += op->end - op->first;
        break;
    }
    op->first = op->end;
    if (op->first < op->n) {
        rc = avc_pc_next_batch(op);
        if (rc != AVC_OK) {
            avc_pc_fail(op, "%s", avc_strerror(rc));
            avc_pc_finish(op, rc, NULL);
        }
        return;
    }
    avc_log(AVC_LOG_INFO, "pinecone: index \"%s\": %s %s: %zu in %u "
            "request(s)", pc->index, avc_pc_kind_names[op->kind], op->ns,
            op->count, op->requests);
    avc_pc_finish(op, AVC_OK, NULL);
}

/* matches */

static const avc_pc_match_t *
avc_pc_match(const avc_pinecone_matches_t *m, size_t i)
{
    return m != NULL && i < m->n ? &m->v[i] : NULL;
}

AVC_API size_t
avc_pinecone_matches_count(const avc_pinecone_matches_t *m)
{
    return m ? m->n : 0;
}

AVC_API const char *
avc_pinecone_match_id(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->id : NULL;
}

AVC_API double
avc_pinecone_match_score(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->score : 0.0;
}

AVC_API int64_t
avc_pinecone_match_dealership_id(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->dealership_id : -1;
}

AVC_API int64_t
avc_pinecone_match_document_id(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->document_id : -1;
}

AVC_API const char *
avc_pinecone_match_topic(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->topic : NULL;
}

AVC_API const char *
avc_pinecone_match_filename(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->filename : NULL;
}

AVC_API int
avc_pinecone_match_position(const avc_pinecone_matches_t *m, size_t i)
{
    const avc_pc_match_t *v = avc_pc_match(m, i);

    return v ? v->position : -1;
}
