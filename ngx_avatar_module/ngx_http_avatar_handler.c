/*
 * The content handler: CORS, routing, reading the body, handing the call
 * to the core, and writing its answer; and the one JSON error helper.
 */

#include "ngx_http_avatar_module.h"


typedef struct {
    ngx_http_request_t        *request;
    avc_call_t                *call;
    ngx_http_avatar_route_t   *route;
    unsigned                   waiting:1;   /* the handler returned */
    unsigned                   done:1;      /* the core answered */
    unsigned                   refused:1;   /* the core wants no more body */
    unsigned                   header_sent:1; /* a streamed answer began */
    unsigned                   gone:1;      /* writing to the client failed */
    ngx_chain_t               *free;        /* streamed answer buffers */
    ngx_chain_t               *busy;
} ngx_http_avatar_ctx_t;


static ngx_str_t  ngx_http_avatar_json_type =
    ngx_string("application/json; charset=utf-8");


/* request headers the core may read */
static ngx_str_t  ngx_http_avatar_pass_headers[] = {
    ngx_string("Authorization"),
    ngx_string("Content-Type"),
    ngx_string("Accept"),
    ngx_string("User-Agent"),
    ngx_null_string
};


ngx_int_t
ngx_http_avatar_add_header(ngx_http_request_t *r, const char *name,
    size_t nlen, u_char *value, size_t vlen)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = nlen;
    h->value.data = value;
    h->value.len = vlen;

    return NGX_OK;
}



static ngx_table_elt_t *
ngx_http_avatar_find_header(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


static ngx_str_t *
ngx_http_avatar_allowed_origin(ngx_http_request_t *r)
{
    ngx_str_t                    *o;
    ngx_uint_t                    i;
    ngx_table_elt_t              *origin;
    ngx_http_avatar_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_avatar_module);

    origin = ngx_http_avatar_find_header(r, "Origin", 6);

    if (origin == NULL || amcf->cors_origins == NULL) {
        return NULL;
    }

    o = amcf->cors_origins->elts;

    for (i = 0; i < amcf->cors_origins->nelts; i++) {
        if (o[i].len == origin->value.len
            && ngx_strncasecmp(o[i].data, origin->value.data, o[i].len) == 0)
        {
            return &origin->value;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_avatar_cors_headers(ngx_http_request_t *r)
{
    ngx_str_t  *origin;

    origin = ngx_http_avatar_allowed_origin(r);

    if (ngx_http_avatar_add_const(r, "Vary", "Origin") != NGX_OK) {
        return NGX_ERROR;
    }

    if (origin == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_avatar_add_header(r, "Access-Control-Allow-Origin",
                                   sizeof("Access-Control-Allow-Origin") - 1,
                                   origin->data, origin->len)
        != NGX_OK
        || ngx_http_avatar_add_const(r, "Access-Control-Allow-Credentials",
                                     "true") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_avatar_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = len;

    if (ngx_http_avatar_add_const(r, "Cache-Control", "no-store") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_HEAD || len == 0) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_avatar_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    char       *json, *path;
    size_t      len;
    u_char     *body;

    path = ngx_pnalloc(r->pool, r->uri.len + 1);
    if (path == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(path, r->uri.data, r->uri.len);
    path[r->uri.len] = '\0';

    json = avc_error_json((int) status, message, path, NULL);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(json);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        free(json);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, json, len);
    free(json);

    if (status == NGX_HTTP_UNAUTHORIZED) {
        if (ngx_http_avatar_add_const(r, "WWW-Authenticate", "Bearer")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_avatar_send(r, status, &ngx_http_avatar_json_type, body,
                                len);
}


static ngx_int_t
ngx_http_avatar_send_call(ngx_http_request_t *r, ngx_http_avatar_ctx_t *ctx)
{
    size_t       len;
    ngx_int_t    status;
    ngx_str_t    type;
    unsigned     i;
    const char  *name, *value, *body;

    status = avc_call_status(ctx->call);
    body = avc_call_body(ctx->call, &len);

    for (i = 0; avc_call_resp_header(ctx->call, i, &name, &value); i++) {
        if (ngx_http_avatar_add_header(r, name, ngx_strlen(name),
                                       (u_char *) value, ngx_strlen(value))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    type.data = (u_char *) avc_call_content_type(ctx->call);
    type.len = ngx_strlen(type.data);

    /* the call, and so the body, lives until the request's cleanup */
    return ngx_http_avatar_send(r, status, &type, (u_char *) body, len);
}


/*
 * Streamed answers (Server-Sent Events): the header goes out when the core
 * has it final, then each piece at once (flushed, never gzipped, never
 * held), in buffers that are reused once nginx has sent them.
 */

static ngx_int_t
ngx_http_avatar_stream_header(ngx_http_request_t *r,
    ngx_http_avatar_ctx_t *ctx)
{
    ngx_int_t    rc;
    unsigned     i;
    ngx_str_t    type;
    const char  *name, *value;

    for (i = 0; avc_call_resp_header(ctx->call, i, &name, &value); i++) {
        if (ngx_http_avatar_add_header(r, name, ngx_strlen(name),
                                       (u_char *) value, ngx_strlen(value))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_avatar_add_const(r, "Cache-Control", "no-store") != NGX_OK) {
        return NGX_ERROR;
    }

    type.data = (u_char *) avc_call_content_type(ctx->call);
    type.len = ngx_strlen(type.data);

    r->headers_out.status = avc_call_status(ctx->call);
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_length_n = -1;

#if (NGX_HTTP_GZIP)
    r->gzip_tested = 1;
    r->gzip_ok = 0;
#endif

    ctx->header_sent = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_avatar_write(avc_call_t *call, const char *p, size_t n, void *data)
{
    ngx_http_avatar_ctx_t  *ctx = data;

    size_t               size;
    ngx_buf_t           *b;
    ngx_int_t            rc;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->gone) {
        return AVC_ECANCELED;
    }

    if (!ctx->header_sent
        && ngx_http_avatar_stream_header(r, ctx) != NGX_OK)
    {
        ctx->gone = 1;
        return AVC_ECANCELED;
    }

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        ctx->gone = 1;
        return AVC_ENOMEM;
    }

    b = cl->buf;

    if (n > 0 && (b->start == NULL || (size_t) (b->end - b->start) < n)) {
        size = ngx_max(n, 512);

        b->start = ngx_palloc(r->pool, size);
        if (b->start == NULL) {
            ctx->gone = 1;
            return AVC_ENOMEM;
        }

        b->end = b->start + size;
    }

    b->pos = b->start;
    b->last = n ? ngx_cpymem(b->start, p, n) : b->start;
    b->temporary = n ? 1 : 0;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_avatar_module;

    rc = ngx_http_output_filter(r, cl);

    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &cl,
                            (ngx_buf_tag_t) &ngx_http_avatar_module);

    if (rc == NGX_ERROR) {
        ctx->gone = 1;
        return AVC_ECANCELED;
    }

    return AVC_OK;
}


static ngx_int_t
ngx_http_avatar_stream_end(ngx_http_request_t *r, ngx_http_avatar_ctx_t *ctx)
{
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ctx->gone) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_avatar_cleanup(void *data)
{
    ngx_http_avatar_ctx_t  *ctx = data;

    /* cancels the operation if it still runs: the client went away */
    avc_call_free(ctx->call);
    ctx->call = NULL;
}


static void
ngx_http_avatar_call_done(avc_call_t *call, void *data)
{
    ngx_http_avatar_ctx_t  *ctx = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    ctx->done = 1;

    if (!ctx->waiting) {
        /* answered synchronously: the starter sends */
        return;
    }

    r = ctx->request;
    c = r->connection;

    if (avc_call_streamed(call)) {
        rc = ngx_http_avatar_stream_end(r, ctx);

    } else {
        rc = ngx_http_avatar_send_call(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_avatar_start(ngx_http_request_t *r, ngx_http_avatar_ctx_t *ctx)
{
    ngx_chain_t  *cl;
    u_char       *p;
    size_t        len;

    if (r->request_body && r->request_body->bufs) {
        len = 0;

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->in_file) {
                /* bodies are kept in memory by the merged configuration */
                return ngx_http_avatar_send_error(r,
                                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "Request body too large");
            }

            if (cl->buf->last > cl->buf->pos) {
                len += cl->buf->last - cl->buf->pos;
            }
        }

        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = 0;

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->last > cl->buf->pos) {
                ngx_memcpy(p + len, cl->buf->pos,
                           cl->buf->last - cl->buf->pos);
                len += cl->buf->last - cl->buf->pos;
            }
        }

        if (avc_call_set_body(ctx->call, p, len) != AVC_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* notice a client that goes away while the core works */
    r->read_event_handler = ngx_http_test_reading;

    if (ctx->route->op(ctx->call) != AVC_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "avatar: operation failed to start");
        return ngx_http_avatar_send_error(r,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "Internal server error");
    }

    if (ctx->done) {
        return avc_call_streamed(ctx->call)
               ? ngx_http_avatar_stream_end(r, ctx)
               : ngx_http_avatar_send_call(r, ctx);
    }

    ctx->waiting = 1;

    return NGX_DONE;
}


static void
ngx_http_avatar_body_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_avatar_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_avatar_module);

    rc = ngx_http_avatar_start(r, ctx);

    if (rc == NGX_DONE) {
        /* the count taken by reading the body is released on answer */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * Streaming bodies (uploads): nginx reads the body unbuffered and each
 * piece goes to the core as it arrives, so a large upload is neither held
 * whole in a buffer nor written to a temporary file by nginx.
 */

static void
ngx_http_avatar_stream_read(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_chain_t            *cl;
    ngx_http_avatar_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_avatar_module);

    /* hold the request: the core may answer and finalize it meanwhile */
    r->main->count++;

    for ( ;; ) {

        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (!ctx->done && cl->buf->last > cl->buf->pos
                && avc_call_feed(ctx->call, cl->buf->pos,
                                 cl->buf->last - cl->buf->pos) != AVC_OK
                && !ctx->done)
            {
                ctx->refused = 1;
            }

            cl->buf->pos = cl->buf->last;
        }

        r->request_body->bufs = NULL;

        if (ctx->done || ctx->refused) {
            /* the rest of the body is not wanted: nginx discards it */
            break;
        }

        if (!r->reading_body) {
            if (avc_call_feed_end(ctx->call) != AVC_OK && !ctx->done) {
                ctx->refused = 1;
            }
            break;
        }

        rc = ngx_http_read_unbuffered_request_body(r);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            /* the client went away or timed out: cancel the operation */
            ngx_http_finalize_request(r, rc);
            break;
        }

        if (r->request_body->bufs == NULL && r->reading_body) {
            break;              /* wait for more */
        }
    }

    if (ctx->refused && !ctx->done) {
        /* a core that refuses a piece answers; if it has not, do so */
        ngx_http_finalize_request(r,
                                  ngx_http_avatar_send_error(r,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "Internal server error"));
        ctx->done = 1;
    }

    ngx_http_finalize_request(r, NGX_DONE);
}


static void
ngx_http_avatar_stream_start(ngx_http_request_t *r)
{
    r->read_event_handler = ngx_http_avatar_stream_read;
    ngx_http_avatar_stream_read(r);
}


static ngx_int_t
ngx_http_avatar_preflight(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_avatar_cors_headers(r);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_avatar_send_error(r, NGX_HTTP_FORBIDDEN,
                                          "Origin not allowed");
    }

    if (ngx_http_avatar_add_const(r, "Access-Control-Allow-Methods",
                                  "GET, POST, PUT, PATCH, DELETE, OPTIONS")
        != NGX_OK
        || ngx_http_avatar_add_const(r, "Access-Control-Allow-Headers",
                                     "Authorization, Content-Type, "
                                     "X-Requested-With") != NGX_OK
        || ngx_http_avatar_add_const(r, "Access-Control-Max-Age", "600")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


ngx_int_t
ngx_http_avatar_handler(ngx_http_request_t *r)
{
    u_char                       allow[64];
    char                        *s;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_uint_t                   i, n, allowed;
    ngx_str_t                   *hn;
    ngx_table_elt_t             *h;
    ngx_list_part_t             *part;
    ngx_pool_cleanup_t          *cln;
    ngx_http_avatar_ctx_t       *ctx;
    ngx_http_avatar_param_t      params[NGX_HTTP_AVATAR_MAX_PARAMS];
    ngx_http_avatar_route_t     *route;
    ngx_http_avatar_loc_conf_t  *alcf;

    if (ngx_http_avatar_worker.app == NULL) {
        return ngx_http_avatar_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "Service unavailable");
    }

    /* the voice sockets: any method, so that a wrong one gets its 405 */
    rc = ngx_http_avatar_ws_handler(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_avatar_preflight(r);
    }

    if (ngx_http_avatar_cors_headers(r) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_avatar_route_find(r, &route, params, &n, &allowed);

    if (rc == NGX_HTTP_NOT_FOUND) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_avatar_send_error(r, NGX_HTTP_NOT_FOUND, "Not Found");
    }

    if (rc == NGX_HTTP_NOT_ALLOWED) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len = ngx_http_avatar_allow_header(allowed, allow, sizeof(allow));

        s = ngx_pnalloc(r->pool, len);
        if (s == NULL
            || ngx_http_avatar_add_header(r, "Allow", 5,
                                          ngx_cpymem(s, allow, len) - len,
                                          len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_avatar_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                          "Method Not Allowed");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_avatar_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->route = route;

    s = ngx_pnalloc(r->pool, r->uri.len + r->method_name.len + 2);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf((u_char *) s, "%V%Z%V%Z", &r->method_name, &r->uri);

    ctx->call = avc_call_new(ngx_http_avatar_worker.app, s,
                             s + r->method_name.len + 1,
                             ngx_http_avatar_call_done, ctx);
    if (ctx->call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        avc_call_free(ctx->call);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_avatar_cleanup;
    cln->data = ctx;

    avc_call_set_writer(ctx->call, ngx_http_avatar_write, ctx);

    ngx_http_set_ctx(r, ctx, ngx_http_avatar_module);

    for (i = 0; i < n; i++) {
        char  *name, *value;

        name = ngx_pnalloc(r->pool, params[i].name.len + 1);
        value = ngx_pnalloc(r->pool, params[i].value.len + 1);
        if (name == NULL || value == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf((u_char *) name, "%V%Z", &params[i].name);
        ngx_sprintf((u_char *) value, "%V%Z", &params[i].value);

        if (avc_call_set_param(ctx->call, name, value) != AVC_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (r->args.len
        && avc_call_set_query(ctx->call, (char *) r->args.data, r->args.len)
           != AVC_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        for (hn = ngx_http_avatar_pass_headers; hn->len; hn++) {
            if (h[i].key.len == hn->len
                && ngx_strncasecmp(h[i].key.data, hn->data, hn->len) == 0)
            {
                char  *name, *value;

                name = ngx_pnalloc(r->pool, hn->len + 1);
                value = ngx_pnalloc(r->pool, h[i].value.len + 1);
                if (name == NULL || value == NULL) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                ngx_sprintf((u_char *) name, "%V%Z", hn);
                ngx_sprintf((u_char *) value, "%V%Z", &h[i].value);

                if (avc_call_set_header(ctx->call, name, value) != AVC_OK) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }
        }
    }

    if (route->body == NGX_HTTP_AVATAR_BODY_STREAM) {
        alcf = ngx_http_get_module_loc_conf(r, ngx_http_avatar_module);

        if (r->headers_in.content_length_n
            > (off_t) alcf->max_upload_size)
        {
            if (ngx_http_discard_request_body(r) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_avatar_send_error(r,
                                         NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "Upload too large");
        }

        /* the operation starts first: it checks who asks, and where */
        if (ctx->route->op(ctx->call) != AVC_OK) {
            return ngx_http_avatar_send_error(r,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          "Internal server error");
        }

        if (ctx->done) {
            if (ngx_http_discard_request_body(r) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_avatar_send_call(r, ctx);
        }

        ctx->waiting = 1;
        r->request_body_no_buffering = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_avatar_stream_start);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (!route->body) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_avatar_start(r, ctx);

        if (rc == NGX_DONE) {
            r->main->count++;
        }

        return rc;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_avatar_module);

    if (r->headers_in.content_length_n > (off_t) alcf->max_body_size) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_avatar_send_error(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          "Request body too large");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_avatar_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * error_page target: "error_page 413 429 502 503 504 @avatar_error;" with
 * "location @avatar_error { avatar_error; }" turns nginx's own error pages
 * into the API's JSON error shape.
 */

ngx_int_t
ngx_http_avatar_error_handler(ngx_http_request_t *r)
{
    ngx_uint_t   status;
    const char  *msg;

    status = r->err_status ? r->err_status : NGX_HTTP_INTERNAL_SERVER_ERROR;

    switch (status) {
    case NGX_HTTP_BAD_REQUEST:
        msg = "Bad request";
        break;
    case NGX_HTTP_NOT_FOUND:
        msg = "Not Found";
        break;
    case NGX_HTTP_NOT_ALLOWED:
        msg = "Method Not Allowed";
        break;
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        msg = "Request body too large";
        break;
    case 429:
        msg = "Too many requests, slow down";
        if (ngx_http_avatar_add_const(r, "Retry-After", "60") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;
    case NGX_HTTP_BAD_GATEWAY:
        msg = "Upstream error";
        break;
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        msg = "Service unavailable";
        break;
    case NGX_HTTP_GATEWAY_TIME_OUT:
        msg = "Upstream timed out";
        break;
    default:
        msg = status >= 500 ? "Internal server error" : "Request refused";
        break;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_avatar_send_error(r, status, msg);
}
