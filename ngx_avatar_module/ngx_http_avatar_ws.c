/*
 * The voice sockets: the server side of WebSocket (RFC 6455) for
 * /api/v1/voice/ws/live/{user_id} and /api/v1/voice/ws/vad/{client_id}.
 *
 * The module does the handshake, the framing and the close handshake; the
 * core (avatarcore/voice.h) speaks the application protocol over whole
 * messages.  After the 101 the request stays alive (one reference held by
 * this file) and the connection's read and write handlers are ours, until
 * the socket ends: then the core's session is freed and the request
 * finalized (a cleanup of the request's pool frees the session too, should
 * anything else end the connection).
 *
 * The core is called only from this file's event handlers (never from a
 * host function it called): messages, and "drained" when the write queue
 * went below its low-water mark.  Frames to the client wait in a queue of
 * malloc()ed blocks, written with c->send as the socket takes them; the
 * queue is bounded by avatar_ws_max_pending, beyond which the client is
 * too slow and the socket is closed with 1008.
 *
 * A token in the query string (?token=) is copied and then overwritten
 * with '*' in the request line, the arguments and the unparsed URI in the
 * rewrite phase, before anything (limit_req, the access log) can log it;
 * the same for a "bearer.<token>" subprotocol in Sec-WebSocket-Protocol.
 */

#include "ngx_http_avatar_module.h"

#include <avatarcore/voice.h>

#include <openssl/evp.h>


#define NGX_HTTP_AVATAR_WS_PREFIX      "/api/v1/voice/ws/"
#define NGX_HTTP_AVATAR_WS_LIVE        "/api/v1/voice/ws/live/"
#define NGX_HTTP_AVATAR_WS_VAD         "/api/v1/voice/ws/vad/"
#define NGX_HTTP_AVATAR_WS_MAX_ID      128

/* bytes read from the socket at once, and per event before yielding */
#define NGX_HTTP_AVATAR_WS_READ_SIZE   8192
#define NGX_HTTP_AVATAR_WS_READ_BUDGET (256 * 1024)

/* the queue's low-water mark (bytes): avc_ws_drained() below it */
#define NGX_HTTP_AVATAR_WS_LOW_WATER   (32 * 1024)

/* a reassembly buffer larger than this is freed after each message */
#define NGX_HTTP_AVATAR_WS_KEEP_BUFFER (64 * 1024)

#define NGX_HTTP_AVATAR_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#define NGX_HTTP_AVATAR_WS_UPGRADE_REQUIRED  426

#define NGX_HTTP_AVATAR_WS_CONT        0x0
#define NGX_HTTP_AVATAR_WS_TEXT        0x1
#define NGX_HTTP_AVATAR_WS_BINARY      0x2
#define NGX_HTTP_AVATAR_WS_CLOSE       0x8
#define NGX_HTTP_AVATAR_WS_PING        0x9
#define NGX_HTTP_AVATAR_WS_PONG        0xa

#define NGX_HTTP_AVATAR_WS_GOING_AWAY  1001
#define NGX_HTTP_AVATAR_WS_PROTOCOL    1002
#define NGX_HTTP_AVATAR_WS_BAD_DATA    1007
#define NGX_HTTP_AVATAR_WS_POLICY      1008
#define NGX_HTTP_AVATAR_WS_TOO_BIG     1009
#define NGX_HTTP_AVATAR_WS_INTERNAL    1011

/* the longest control frame payload, and a close reason */
#define NGX_HTTP_AVATAR_WS_MAX_CONTROL 125
#define NGX_HTTP_AVATAR_WS_MAX_REASON  123


typedef struct ngx_http_avatar_ws_frame_s  ngx_http_avatar_ws_frame_t;

/* a frame to the client: header and payload follow the struct */
struct ngx_http_avatar_ws_frame_s {
    ngx_http_avatar_ws_frame_t   *next;
    u_char                       *pos;
    u_char                       *last;
};


typedef struct {
    ngx_http_request_t           *request;
    avc_ws_t                     *ws;
    avc_ws_kind_t                 kind;
    char                         *id;
    char                         *token;       /* a copy; NULL: none */
    size_t                        token_len;
    ngx_str_t                     protocol;    /* "bearer.<token>" offered */

    /* reading: bytes that came with the handshake, then the socket */
    u_char                       *buf;
    u_char                       *pre;
    u_char                       *pre_last;

    /* the frame being parsed */
    u_char                        hdr[14];
    size_t                        hdr_len;
    size_t                        hdr_need;
    uint64_t                      remaining;   /* payload bytes to come */
    u_char                        mask[4];
    ngx_uint_t                    mask_pos;
    ngx_uint_t                    opcode;

    /* the message being reassembled; message is its opcode, 0: none */
    ngx_uint_t                    message;
    u_char                       *msg;
    size_t                        msg_len;
    size_t                        msg_size;
    u_char                        ctl[NGX_HTTP_AVATAR_WS_MAX_CONTROL];
    size_t                        ctl_len;

    /* writing */
    ngx_http_avatar_ws_frame_t   *out;
    ngx_http_avatar_ws_frame_t  **out_last;
    size_t                        pending;     /* bytes queued, unwritten */

    size_t                        max_message;
    size_t                        max_pending;
    size_t                        low_water;
    ngx_msec_t                    idle_timeout;

    unsigned                      in_payload:1;
    unsigned                      fin:1;
    unsigned                      got_frame:1;  /* since the last read */
    unsigned                      closing:1;    /* our close frame queued */
    unsigned                      close_received:1;
    unsigned                      failed:1;     /* input is not parsed */
    unsigned                      shut:1;       /* our side shut down */
    unsigned                      abort:1;      /* end without a close */
    unsigned                      above_low:1;
    unsigned                      finished:1;
} ngx_http_avatar_ws_ctx_t;


/* a walk over the request headers of one name */
typedef struct {
    ngx_list_part_t              *part;
    ngx_uint_t                    i;
} ngx_http_avatar_ws_iter_t;


static ngx_int_t ngx_http_avatar_ws_rewrite(ngx_http_request_t *r);
static ngx_int_t ngx_http_avatar_ws_prepare(ngx_http_request_t *r,
    ngx_http_avatar_ws_ctx_t **ctxp);
static ngx_int_t ngx_http_avatar_ws_upgrade(ngx_http_request_t *r,
    ngx_http_avatar_ws_ctx_t *ctx, ngx_str_t *key);
static void ngx_http_avatar_ws_read_handler(ngx_event_t *rev);
static void ngx_http_avatar_ws_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_avatar_ws_flush(ngx_http_avatar_ws_ctx_t *ctx);
static void ngx_http_avatar_ws_run(ngx_http_avatar_ws_ctx_t *ctx);
static void ngx_http_avatar_ws_finish(ngx_http_avatar_ws_ctx_t *ctx);
static void ngx_http_avatar_ws_input(ngx_http_avatar_ws_ctx_t *ctx,
    u_char *p, u_char *last);
static void ngx_http_avatar_ws_fail(ngx_http_avatar_ws_ctx_t *ctx,
    ngx_uint_t code, const char *reason, const char *why);
static void ngx_http_avatar_ws_start_close(ngx_http_avatar_ws_ctx_t *ctx,
    ngx_uint_t code, const char *reason, ngx_uint_t drop);
static ngx_int_t ngx_http_avatar_ws_queue(ngx_http_avatar_ws_ctx_t *ctx,
    ngx_uint_t opcode, const u_char *p, size_t n, ngx_uint_t limited);
static ngx_int_t ngx_http_avatar_ws_utf8(const u_char *p, size_t n);

static int ngx_http_avatar_ws_host_send(void *host, int binary,
    const void *p, size_t n);
static size_t ngx_http_avatar_ws_host_pending(void *host);
static void ngx_http_avatar_ws_host_close(void *host, int code,
    const char *reason);


static const avc_ws_host_t  ngx_http_avatar_ws_host = {
    ngx_http_avatar_ws_host_send,
    ngx_http_avatar_ws_host_pending,
    ngx_http_avatar_ws_host_close
};


#if (NGX_SSL)
#define ngx_http_avatar_ws_tls(c)  ((c)->ssl != NULL)
#else
#define ngx_http_avatar_ws_tls(c)  0
#endif


ngx_int_t
ngx_http_avatar_ws_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt          *h;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_avatar_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_avatar_module);

    if (!amcf->enabled) {
        return NGX_OK;
    }

    /* the token is masked before the preaccess phase: limit_req logs
     * the request line when it refuses a request */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_avatar_ws_rewrite;

    return NGX_OK;
}


/* "/api/v1/voice/ws/live/{id}" or ".../vad/{id}": the kind and the id */

static ngx_int_t
ngx_http_avatar_ws_path(ngx_str_t *uri, avc_ws_kind_t *kind, ngx_str_t *id)
{
    size_t  n;

    if (uri->len > sizeof(NGX_HTTP_AVATAR_WS_LIVE) - 1
        && ngx_strncmp(uri->data, NGX_HTTP_AVATAR_WS_LIVE,
                       sizeof(NGX_HTTP_AVATAR_WS_LIVE) - 1) == 0)
    {
        *kind = AVC_WS_LIVE;
        n = sizeof(NGX_HTTP_AVATAR_WS_LIVE) - 1;

    } else if (uri->len > sizeof(NGX_HTTP_AVATAR_WS_VAD) - 1
               && ngx_strncmp(uri->data, NGX_HTTP_AVATAR_WS_VAD,
                              sizeof(NGX_HTTP_AVATAR_WS_VAD) - 1) == 0)
    {
        *kind = AVC_WS_VAD;
        n = sizeof(NGX_HTTP_AVATAR_WS_VAD) - 1;

    } else {
        return NGX_DECLINED;
    }

    id->data = uri->data + n;
    id->len = uri->len - n;

    if (ngx_strlchr(id->data, id->data + id->len, '/') != NULL) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_avatar_ws_header(ngx_http_request_t *r, ngx_http_avatar_ws_iter_t *it,
    const char *name, size_t len)
{
    ngx_table_elt_t  *h;

    if (it->part == NULL) {
        it->part = &r->headers_in.headers.part;
        it->i = 0;
    }

    for ( ;; ) {
        if (it->i >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->i = 0;
            continue;
        }

        h = it->part->elts;
        h = &h[it->i++];

        if (h->key.len == len
            && ngx_strncasecmp(h->key.data, (u_char *) name, len) == 0)
        {
            return h;
        }
    }
}


/*
 * The next element of a comma-separated header value, without the
 * spaces around it; NGX_DONE at the end.
 */

static ngx_int_t
ngx_http_avatar_ws_list_next(u_char **pos, u_char *last, ngx_str_t *item)
{
    u_char  *p, *end;

    p = *pos;

    while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
        p++;
    }

    if (p == last) {
        *pos = p;
        return NGX_DONE;
    }

    item->data = p;

    while (p < last && *p != ',') {
        p++;
    }

    end = p;

    while (end > item->data && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    item->len = end - item->data;
    *pos = p;

    return NGX_OK;
}


/* does some header "name" list "token" (case-insensitive)? */

static ngx_uint_t
ngx_http_avatar_ws_has_token(ngx_http_request_t *r, const char *name,
    size_t nlen, const char *token, size_t tlen)
{
    u_char                     *p;
    ngx_str_t                   item;
    ngx_table_elt_t            *h;
    ngx_http_avatar_ws_iter_t   it;

    ngx_memzero(&it, sizeof(ngx_http_avatar_ws_iter_t));

    while ((h = ngx_http_avatar_ws_header(r, &it, name, nlen)) != NULL) {
        p = h->value.data;

        while (ngx_http_avatar_ws_list_next(&p, h->value.data + h->value.len,
                                            &item)
               == NGX_OK)
        {
            if (item.len == tlen
                && ngx_strncasecmp(item.data, (u_char *) token, tlen) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/*
 * Overwrite the values of "token=" arguments in a query string with '*';
 * the string may go on after the query (" HTTP/1.1" of a request line).
 */

static void
ngx_http_avatar_ws_mask_query(u_char *p, u_char *last)
{
    for ( ;; ) {

        if (last - p > 6 && ngx_strncasecmp(p, (u_char *) "token=", 6) == 0) {
            p += 6;

            while (p < last && *p != '&' && *p != ' ' && *p != '#') {
                *p++ = '*';
            }
        }

        while (p < last && *p != '&') {
            if (*p == ' ' || *p == '#') {
                return;
            }

            p++;
        }

        if (p == last) {
            return;
        }

        p++;
    }
}


static void
ngx_http_avatar_ws_mask_after_query(ngx_str_t *s)
{
    u_char  *q;

    q = ngx_strlchr(s->data, s->data + s->len, '?');

    if (q != NULL) {
        ngx_http_avatar_ws_mask_query(q + 1, s->data + s->len);
    }
}


/* usually one buffer, the request line's; masked in each anyway */

static void
ngx_http_avatar_ws_mask(ngx_http_request_t *r)
{
    ngx_http_avatar_ws_mask_query(r->args.data, r->args.data + r->args.len);
    ngx_http_avatar_ws_mask_after_query(&r->unparsed_uri);
    ngx_http_avatar_ws_mask_after_query(&r->request_line);
}


/*
 * The token of a socket: the subprotocol "bearer.<token>" (kept to be
 * echoed in the 101), else ?token=.  Both are copied, then masked where
 * nginx would log them.
 */

static ngx_int_t
ngx_http_avatar_ws_prepare(ngx_http_request_t *r,
    ngx_http_avatar_ws_ctx_t **ctxp)
{
    u_char                     *p, *src;
    ngx_str_t                   id, arg, item;
    avc_ws_kind_t               kind;
    ngx_table_elt_t            *h;
    ngx_http_avatar_ws_ctx_t   *ctx;
    ngx_http_avatar_ws_iter_t   it;

    if (ngx_http_avatar_ws_path(&r->uri, &kind, &id) != NGX_OK) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_avatar_ws_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->request = r;
    ctx->kind = kind;

    ngx_memzero(&it, sizeof(ngx_http_avatar_ws_iter_t));

    while ((h = ngx_http_avatar_ws_header(r, &it, "Sec-WebSocket-Protocol",
                                          sizeof("Sec-WebSocket-Protocol")
                                          - 1))
           != NULL)
    {
        p = h->value.data;

        while (ngx_http_avatar_ws_list_next(&p, h->value.data + h->value.len,
                                            &item)
               == NGX_OK)
        {
            if (item.len <= 7
                || ngx_strncmp(item.data, "bearer.", 7) != 0)
            {
                continue;
            }

            if (ctx->token == NULL) {
                ctx->protocol.data = ngx_pnalloc(r->pool, item.len + 1);
                if (ctx->protocol.data == NULL) {
                    return NGX_ERROR;
                }

                ngx_memcpy(ctx->protocol.data, item.data, item.len);
                ctx->protocol.data[item.len] = '\0';
                ctx->protocol.len = item.len;

                ctx->token = (char *) ctx->protocol.data + 7;
                ctx->token_len = item.len - 7;
            }

            ngx_memset(item.data + 7, '*', item.len - 7);
        }
    }

    if (ngx_http_arg(r, (u_char *) "token", 5, &arg) == NGX_OK) {

        if (ctx->token == NULL && arg.len) {
            p = ngx_pnalloc(r->pool, arg.len + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ctx->token = (char *) p;
            src = arg.data;
            ngx_unescape_uri(&p, &src, arg.len, 0);
            *p = '\0';
            ctx->token_len = p - (u_char *) ctx->token;

            if (ctx->token_len == 0
                || ngx_strlen(ctx->token) != ctx->token_len)
            {
                ctx->token = NULL;
            }
        }

        ngx_http_avatar_ws_mask(r);
    }

    ngx_http_set_ctx(r, ctx, ngx_http_avatar_module);

    *ctxp = ctx;

    return NGX_OK;
}


static ngx_int_t
ngx_http_avatar_ws_rewrite(ngx_http_request_t *r)
{
    ngx_http_avatar_ws_ctx_t    *ctx;
    ngx_http_avatar_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_avatar_module);

    if (!alcf->api
        || r->uri.len < sizeof(NGX_HTTP_AVATAR_WS_PREFIX) - 1
        || ngx_strncmp(r->uri.data, NGX_HTTP_AVATAR_WS_PREFIX,
                       sizeof(NGX_HTTP_AVATAR_WS_PREFIX) - 1) != 0
        || ngx_http_get_module_ctx(r, ngx_http_avatar_module) != NULL)
    {
        return NGX_DECLINED;
    }

    switch (ngx_http_avatar_ws_prepare(r, &ctx)) {

    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    case NGX_DECLINED:
        /* not a socket (a 404 to come), but a token all the same */
        if (r->args.len) {
            ngx_http_avatar_ws_mask(r);
        }

        break;
    }

    return NGX_DECLINED;
}


/* "scheme://host[:port]" into its parts; NGX_ERROR if it is not one */

static ngx_int_t
ngx_http_avatar_ws_split_origin(ngx_str_t *o, ngx_str_t *scheme,
    ngx_str_t *authority)
{
    u_char  *p, *last;

    last = o->data + o->len;

    p = ngx_strlcasestrn(o->data, last, (u_char *) "://", 3 - 1);

    if (p == NULL || p == o->data) {
        return NGX_ERROR;
    }

    scheme->data = o->data;
    scheme->len = p - o->data;

    authority->data = p + 3;
    authority->len = last - authority->data;

    if (authority->len == 0
        || ngx_strlchr(authority->data, last, '/') != NULL)
    {
        return NGX_ERROR;
    }

    /* the default port of the scheme is the same origin without it */

    if (scheme->len == 4
        && ngx_strncasecmp(scheme->data, (u_char *) "http", 4) == 0
        && authority->len > 3
        && ngx_strncmp(last - 3, ":80", 3) == 0)
    {
        authority->len -= 3;

    } else if (scheme->len == 5
               && ngx_strncasecmp(scheme->data, (u_char *) "https", 5) == 0
               && authority->len > 4
               && ngx_strncmp(last - 4, ":443", 4) == 0)
    {
        authority->len -= 4;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_avatar_ws_same_origin(ngx_str_t *a, ngx_str_t *b)
{
    ngx_str_t  as, aa, bs, ba;

    if (ngx_http_avatar_ws_split_origin(a, &as, &aa) != NGX_OK
        || ngx_http_avatar_ws_split_origin(b, &bs, &ba) != NGX_OK)
    {
        return 0;
    }

    return as.len == bs.len
           && ngx_strncasecmp(as.data, bs.data, as.len) == 0
           && aa.len == ba.len
           && ngx_strncasecmp(aa.data, ba.data, aa.len) == 0;
}


/*
 * A browser names the page's origin; a socket is accepted from the
 * server's own origin and from those of avatar_cors_origins.  Other
 * clients send no Origin.
 */

static ngx_int_t
ngx_http_avatar_ws_origin(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_str_t                     own, *o;
    ngx_uint_t                    i, ok;
    ngx_table_elt_t              *h;
    ngx_http_avatar_ws_iter_t     it;
    ngx_http_avatar_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_avatar_module);

    ngx_str_null(&own);

    if (r->headers_in.host) {
        own.len = sizeof("https://") - 1 + r->headers_in.host->value.len;
        own.data = ngx_pnalloc(r->pool, own.len);
        if (own.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(own.data, "%s://%V",
                        ngx_http_avatar_ws_tls(r->connection)
                        ? "https" : "http",
                        &r->headers_in.host->value);
        own.len = p - own.data;
    }

    ngx_memzero(&it, sizeof(ngx_http_avatar_ws_iter_t));

    while ((h = ngx_http_avatar_ws_header(r, &it, "Origin", 6)) != NULL) {

        ok = own.len && ngx_http_avatar_ws_same_origin(&h->value, &own);

        if (!ok && amcf->cors_origins) {
            o = amcf->cors_origins->elts;

            for (i = 0; i < amcf->cors_origins->nelts; i++) {
                if (ngx_http_avatar_ws_same_origin(&h->value, &o[i])) {
                    ok = 1;
                    break;
                }
            }
        }

        if (!ok) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "websocket from origin \"%V\" refused", &h->value);
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}




/* a refusal before the upgrade, in the API's error shape */

static ngx_int_t
ngx_http_avatar_ws_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *message)
{
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (status == NGX_HTTP_AVATAR_WS_UPGRADE_REQUIRED) {
        /* nginx has no reason phrase for 426 */
        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");

        if (ngx_http_avatar_add_const(r, "Upgrade", "websocket") != NGX_OK
            || ngx_http_avatar_add_const(r, "Sec-WebSocket-Version", "13")
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_avatar_send_error(r, status, message);
}


/*
 * The content handler of the socket paths (NGX_DECLINED for any other
 * path): the handshake's checks, then the upgrade.
 */

ngx_int_t
ngx_http_avatar_ws_handler(ngx_http_request_t *r)
{
    u_char                      buf[18], *p, *last;
    ngx_int_t                   rc;
    ngx_str_t                   id, key, decoded;
    avc_ws_kind_t               kind;
    ngx_table_elt_t            *h;
    ngx_http_avatar_ws_ctx_t   *ctx;
    ngx_http_avatar_ws_iter_t   it;

    if (ngx_http_avatar_ws_path(&r->uri, &kind, &id) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (r != r->main) {
        /* a socket is never a subrequest */
        return NGX_HTTP_NOT_FOUND;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_avatar_module);

    if (ctx == NULL) {
        rc = ngx_http_avatar_ws_prepare(r, &ctx);

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* an id is one printable segment */

    last = id.data + id.len;

    for (p = id.data; p < last; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            break;
        }
    }

    if (id.len > NGX_HTTP_AVATAR_WS_MAX_ID || p != last) {
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_NOT_FOUND, "Not Found");
    }

    ctx->id = ngx_pnalloc(r->pool, id.len + 1);
    if (ctx->id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->id, id.data, id.len);
    ctx->id[id.len] = '\0';

    if (r->method != NGX_HTTP_GET) {
        if (ngx_http_avatar_add_const(r, "Allow", "GET") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_NOT_ALLOWED,
                                         "Method Not Allowed");
    }

    if (r->http_version != NGX_HTTP_VERSION_11) {
        /* nor HTTP/2: nginx has no WebSocket over HTTP/2 (RFC 8441) */
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                         "WebSocket needs HTTP/1.1");
    }

    rc = ngx_http_avatar_ws_origin(r);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_FORBIDDEN,
                                         "Origin not allowed");
    }

    if (!ngx_http_avatar_ws_has_token(r, "Upgrade", 7, "websocket", 9)) {
        return ngx_http_avatar_ws_refuse(r,
                                         NGX_HTTP_AVATAR_WS_UPGRADE_REQUIRED,
                                         "This is a WebSocket endpoint: "
                                         "upgrade to websocket");
    }

    if (!ngx_http_avatar_ws_has_token(r, "Connection", 10, "upgrade", 7)) {
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                         "The Connection header must "
                                         "contain \"upgrade\"");
    }

    ngx_memzero(&it, sizeof(ngx_http_avatar_ws_iter_t));

    h = ngx_http_avatar_ws_header(r, &it, "Sec-WebSocket-Version",
                                  sizeof("Sec-WebSocket-Version") - 1);

    if (h == NULL || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0
        || ngx_http_avatar_ws_header(r, &it, "Sec-WebSocket-Version",
                                     sizeof("Sec-WebSocket-Version") - 1)
           != NULL)
    {
        return ngx_http_avatar_ws_refuse(r,
                                         NGX_HTTP_AVATAR_WS_UPGRADE_REQUIRED,
                                         "Unsupported WebSocket version: "
                                         "13 is required");
    }

    /* the key: 16 random bytes in base64, one header */

    ngx_memzero(&it, sizeof(ngx_http_avatar_ws_iter_t));

    h = ngx_http_avatar_ws_header(r, &it, "Sec-WebSocket-Key",
                                  sizeof("Sec-WebSocket-Key") - 1);

    decoded.data = buf;
    decoded.len = 0;

    if (h == NULL
        || ngx_http_avatar_ws_header(r, &it, "Sec-WebSocket-Key",
                                     sizeof("Sec-WebSocket-Key") - 1)
           != NULL
        || h->value.len != 24
        || h->value.data[22] != '=' || h->value.data[23] != '='
        || ngx_decode_base64(&decoded, &h->value) != NGX_OK
        || decoded.len != 16)
    {
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                         "Invalid Sec-WebSocket-Key");
    }

    key = h->value;

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_BAD_REQUEST,
                                         "A WebSocket handshake has no "
                                         "body");
    }

    if (ngx_exiting) {
        /* this worker no longer takes sockets it would have to close */
        return ngx_http_avatar_ws_refuse(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "Service unavailable");
    }

    return ngx_http_avatar_ws_upgrade(r, ctx, &key);
}


static void
ngx_http_avatar_ws_release(ngx_http_avatar_ws_ctx_t *ctx)
{
    ngx_http_avatar_ws_frame_t  *f;

    ctx->finished = 1;

    /* cancels what the session runs; it calls no host function after */
    avc_ws_free(ctx->ws);
    ctx->ws = NULL;

    while (ctx->out) {
        f = ctx->out;
        ctx->out = f->next;
        ngx_free(f);
    }

    ctx->out_last = &ctx->out;
    ctx->pending = 0;

    if (ctx->msg) {
        ngx_free(ctx->msg);
        ctx->msg = NULL;
        ctx->msg_size = 0;
    }
}


static void
ngx_http_avatar_ws_cleanup(void *data)
{
    ngx_http_avatar_ws_ctx_t  *ctx = data;

    ngx_http_avatar_ws_release(ctx);
}


static ngx_int_t
ngx_http_avatar_ws_upgrade(ngx_http_request_t *r,
    ngx_http_avatar_ws_ctx_t *ctx, ngx_str_t *key)
{
    u_char                       in[24 + sizeof(NGX_HTTP_AVATAR_WS_GUID) - 1];
    u_char                       hash[EVP_MAX_MD_SIZE];
    unsigned int                 hlen;
    ngx_int_t                    rc;
    ngx_str_t                    digest, accept;
    ngx_connection_t            *c;
    ngx_pool_cleanup_t          *cln;
    ngx_http_core_loc_conf_t    *clcf;
    ngx_http_avatar_loc_conf_t  *alcf;

    c = r->connection;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_http_avatar_module);

    /* Sec-WebSocket-Accept: base64(SHA-1(key GUID)) */

    ngx_memcpy(ngx_cpymem(in, key->data, 24), NGX_HTTP_AVATAR_WS_GUID,
               sizeof(NGX_HTTP_AVATAR_WS_GUID) - 1);

    if (EVP_Digest(in, sizeof(in), hash, &hlen, EVP_sha1(), NULL) != 1) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0, "websocket: SHA-1 failed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    digest.data = hash;
    digest.len = hlen;

    accept.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(hlen));
    if (accept.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_encode_base64(&accept, &digest);

    ctx->max_message = alcf->ws_max_message;
    ctx->max_pending = alcf->ws_max_pending;
    ctx->idle_timeout = alcf->ws_idle_timeout;
    ctx->low_water = ngx_min(NGX_HTTP_AVATAR_WS_LOW_WATER,
                             ctx->max_pending / 2);
    ctx->out_last = &ctx->out;
    ctx->hdr_need = 2;

    ctx->buf = ngx_palloc(r->pool, NGX_HTTP_AVATAR_WS_READ_SIZE);
    if (ctx->buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_avatar_ws_cleanup;
    cln->data = ctx;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;

    /* nginx adds "Connection: upgrade" to a 101 itself */

    if (ngx_http_avatar_add_const(r, "Upgrade", "websocket") != NGX_OK
        || ngx_http_avatar_add_header(r, "Sec-WebSocket-Accept",
                                         sizeof("Sec-WebSocket-Accept") - 1,
                                         accept.data, accept.len)
           != NGX_OK
        || (ctx->protocol.len
            && ngx_http_avatar_add_header(r, "Sec-WebSocket-Protocol",
                                         sizeof("Sec-WebSocket-Protocol") - 1,
                                         ctx->protocol.data,
                                         ctx->protocol.len)
               != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->keepalive = 0;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    /* what the write filter keeps (r->out) goes first, in flush() */

    if (ngx_http_send_special(r, NGX_HTTP_FLUSH) == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* frames the client sent right after its handshake */

    if (r->header_in->pos < r->header_in->last) {
        ctx->pre = r->header_in->pos;
        ctx->pre_last = r->header_in->last;
        r->header_in->pos = r->header_in->last;
    }

    c->log->action = "serving a websocket";
    c->read->handler = ngx_http_avatar_ws_read_handler;
    c->write->handler = ngx_http_avatar_ws_write_handler;

    /* a graceful shutdown closes the socket with 1001 */
    c->idle = 1;

    if (clcf->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_add_timer(c->read, ctx->idle_timeout);

    /* the session may send or close at once: both only queue */

    ctx->ws = avc_ws_open(ngx_http_avatar_worker.app, ctx->kind, ctx->id,
                          ctx->token, &ngx_http_avatar_ws_host, ctx);

    if (ctx->token) {
        ngx_explicit_memzero(ctx->token, ctx->token_len);
        ctx->token = NULL;
    }

    if (ctx->ws == NULL) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "websocket: the voice session did not start");
        ngx_http_avatar_ws_start_close(ctx, NGX_HTTP_AVATAR_WS_INTERNAL,
                                       "Internal error", 0);
    }

    /* the request lives on: released by ngx_http_avatar_ws_finish() */
    r->main->count++;

    ngx_post_event(c->read, &ngx_posted_events);
    ngx_post_event(c->write, &ngx_posted_events);

    return NGX_DONE;
}


static void
ngx_http_avatar_ws_read_handler(ngx_event_t *rev)
{
    u_char                    *pre;
    size_t                     total;
    ssize_t                    n;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_avatar_ws_ctx_t  *ctx;

    c = rev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_avatar_module);

    if (c->close) {
        /* a graceful shutdown; with c->error, its timeout */

        c->close = 0;

        if (c->error || ctx->closing) {
            ngx_http_avatar_ws_finish(ctx);
            return;
        }

        ngx_http_avatar_ws_start_close(ctx, NGX_HTTP_AVATAR_WS_GOING_AWAY,
                                       "Server shutting down", 0);
        ngx_http_avatar_ws_run(ctx);
        return;
    }

    if (rev->timedout) {
        rev->timedout = 0;

        if (ctx->closing) {
            ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                          "websocket close timed out");
            ngx_http_avatar_ws_finish(ctx);
            return;
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "websocket idle for %M ms, closing",
                      ctx->idle_timeout);

        ngx_http_avatar_ws_start_close(ctx, NGX_HTTP_AVATAR_WS_GOING_AWAY,
                                       "idle", 0);
        ngx_http_avatar_ws_run(ctx);
        return;
    }

    if (ctx->pre) {
        pre = ctx->pre;
        ctx->pre = NULL;
        ngx_http_avatar_ws_input(ctx, pre, ctx->pre_last);
    }

    total = 0;

    while (!ctx->close_received && !ctx->abort) {

        n = c->recv(c, ctx->buf, NGX_HTTP_AVATAR_WS_READ_SIZE);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "websocket: the client hung up");
            ngx_http_avatar_ws_finish(ctx);
            return;
        }

        if (!ctx->failed) {
            ngx_http_avatar_ws_input(ctx, ctx->buf, ctx->buf + n);
        }

        if (ctx->out && c->write->ready
            && ngx_http_avatar_ws_flush(ctx) == NGX_ERROR)
        {
            /* answers go out as the frames come: only what the socket
             * does not take waits in the queue */
            ngx_http_avatar_ws_finish(ctx);
            return;
        }

        total += n;

        if (total >= NGX_HTTP_AVATAR_WS_READ_BUDGET) {
            /* let other connections run; go on afterwards */
            ngx_post_event(rev, &ngx_posted_events);
            break;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_avatar_ws_finish(ctx);
        return;
    }

    if (ctx->got_frame && !ctx->closing) {
        ctx->got_frame = 0;
        ngx_add_timer(rev, ctx->idle_timeout);
    }

    ngx_http_avatar_ws_run(ctx);
}


static void
ngx_http_avatar_ws_write_handler(ngx_event_t *wev)
{
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_avatar_ws_ctx_t  *ctx;

    c = wev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_avatar_module);

    ngx_http_avatar_ws_run(ctx);
}


/* write what the socket takes: NGX_OK when all is out, or NGX_AGAIN */

static ngx_int_t
ngx_http_avatar_ws_flush(ngx_http_avatar_ws_ctx_t *ctx)
{
    ssize_t                      n;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_avatar_ws_frame_t  *f;

    r = ctx->request;
    c = r->connection;

    if (r->out) {
        /* the rest of the 101 */

        if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (r->out) {
            goto again;
        }
    }

    while (ctx->out) {
        f = ctx->out;

        n = c->send(c, f->pos, f->last - f->pos);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN || n == 0) {
            break;
        }

        f->pos += n;
        ctx->pending -= n;

        if (f->pos < f->last) {
            break;
        }

        ctx->out = f->next;
        ngx_free(f);
    }

    if (ctx->out == NULL) {
        ctx->out_last = &ctx->out;
        return NGX_OK;
    }

again:

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* after every event: write, end a closed socket, tell the core it drained */

static void
ngx_http_avatar_ws_run(ngx_http_avatar_ws_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = ctx->request->connection;

    if (ctx->abort) {
        ngx_http_avatar_ws_finish(ctx);
        return;
    }

    rc = ngx_http_avatar_ws_flush(ctx);

    if (rc == NGX_ERROR) {
        ngx_http_avatar_ws_finish(ctx);
        return;
    }

    if (ctx->closing) {

        if (rc != NGX_OK) {
            return;
        }

        /* the close frame is out */

        if (ctx->close_received || ngx_exiting
            || (ctx->failed && ngx_http_avatar_ws_tls(c)))
        {
            ngx_http_avatar_ws_finish(ctx);
            return;
        }

        if (!ctx->shut) {
            ctx->shut = 1;

            /*
             * we started the close: the client's close frame (or its
             * hanging up) ends the socket; closing it at once would reset
             * the connection over what the client still sends, and could
             * lose our close frame on the way
             */

            if (!ngx_http_avatar_ws_tls(c)
                && ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1)
            {
                ngx_connection_error(c, ngx_socket_errno,
                                     ngx_shutdown_socket_n " failed");
                ngx_http_avatar_ws_finish(ctx);
                return;
            }

            if (c->read->ready) {
                ngx_post_event(c->read, &ngx_posted_events);
            }
        }

        return;
    }

    if (ctx->above_low && ctx->pending < ctx->low_water) {
        ctx->above_low = 0;

        if (ctx->ws) {
            avc_ws_drained(ctx->ws);
        }
    }
}


static void
ngx_http_avatar_ws_finish(ngx_http_avatar_ws_ctx_t *ctx)
{
    if (ctx->finished) {
        return;
    }

    ngx_http_avatar_ws_release(ctx);

    /* the reference of the upgrade: the request and connection end */
    ngx_http_finalize_request(ctx->request, NGX_DONE);
}


/*
 * Frames to the client, unmasked.  A limited frame (a message of the core,
 * a pong) is refused with NGX_DECLINED when the queue would pass
 * avatar_ws_max_pending; a close frame always fits.
 */

static ngx_int_t
ngx_http_avatar_ws_queue(ngx_http_avatar_ws_ctx_t *ctx, ngx_uint_t opcode,
    const u_char *p, size_t n, ngx_uint_t limited)
{
    u_char                      *h;
    size_t                       hlen;
    ngx_uint_t                   i;
    ngx_connection_t            *c;
    ngx_http_avatar_ws_frame_t  *f;

    c = ctx->request->connection;

    hlen = n < 126 ? 2 : (n <= 0xffff ? 4 : 10);

    if (limited
        && (n > ctx->max_pending
            || ctx->pending + hlen + n > ctx->max_pending))
    {
        return NGX_DECLINED;
    }

    f = ngx_alloc(sizeof(ngx_http_avatar_ws_frame_t) + hlen + n, c->log);
    if (f == NULL) {
        return NGX_ERROR;
    }

    h = (u_char *) (f + 1);
    h[0] = (u_char) (0x80 | opcode);

    if (n < 126) {
        h[1] = (u_char) n;

    } else if (n <= 0xffff) {
        h[1] = 126;
        h[2] = (u_char) (n >> 8);
        h[3] = (u_char) n;

    } else {
        h[1] = 127;

        for (i = 0; i < 8; i++) {
            h[2 + i] = (u_char) ((uint64_t) n >> (56 - 8 * i));
        }
    }

    f->next = NULL;
    f->pos = h;
    f->last = h + hlen;

    if (n) {
        f->last = ngx_cpymem(f->last, p, n);
    }

    *ctx->out_last = f;
    ctx->out_last = &f->next;
    ctx->pending += hlen + n;

    if (ctx->pending >= ctx->low_water) {
        ctx->above_low = 1;
    }

    ngx_post_event(c->write, &ngx_posted_events);

    return NGX_OK;
}


/* forget queued frames, but the one partly written: framing must hold */

static void
ngx_http_avatar_ws_drop(ngx_http_avatar_ws_ctx_t *ctx)
{
    ngx_http_avatar_ws_frame_t  *f, *next;

    f = ctx->out;

    if (f && f->pos != (u_char *) (f + 1)) {
        ctx->out_last = &f->next;
        ctx->pending = f->last - f->pos;
        f = f->next;

    } else {
        ctx->out = NULL;
        ctx->out_last = &ctx->out;
        ctx->pending = 0;
    }

    *ctx->out_last = NULL;

    while (f) {
        next = f->next;
        ngx_free(f);
        f = next;
    }
}


/* 1000-1003, 1007-1014 and 3000-4999 may stand in a close frame */

static ngx_uint_t
ngx_http_avatar_ws_valid_code(ngx_uint_t code)
{
    if (code >= 3000 && code <= 4999) {
        return 1;
    }

    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}


/*
 * Send a close frame (code 0: one without a status, the answer to such a
 * frame) after what is queued, or, with drop, instead of it; then wait for
 * it to go out, at most lingering_timeout.  Only queues: host functions
 * call it.
 */

static void
ngx_http_avatar_ws_start_close(ngx_http_avatar_ws_ctx_t *ctx,
    ngx_uint_t code, const char *reason, ngx_uint_t drop)
{
    size_t                     len, n;
    u_char                     payload[2 + NGX_HTTP_AVATAR_WS_MAX_REASON];
    ngx_connection_t          *c;
    ngx_http_core_loc_conf_t  *clcf;

    if (ctx->closing || ctx->finished) {
        return;
    }

    ctx->closing = 1;

    c = ctx->request->connection;

    if (drop) {
        ngx_http_avatar_ws_drop(ctx);
    }

    len = 0;

    if (code) {
        payload[0] = (u_char) (code >> 8);
        payload[1] = (u_char) code;
        len = 2;

        if (reason) {
            n = ngx_strlen(reason);

            if (n > NGX_HTTP_AVATAR_WS_MAX_REASON) {
                /* not inside a UTF-8 sequence */
                n = NGX_HTTP_AVATAR_WS_MAX_REASON;

                while (n && ((u_char) reason[n] & 0xc0) == 0x80) {
                    n--;
                }
            }

            ngx_memcpy(payload + 2, reason, n);
            len += n;
        }
    }

    if (ngx_http_avatar_ws_queue(ctx, NGX_HTTP_AVATAR_WS_CLOSE, payload, len,
                                 0)
        != NGX_OK)
    {
        ctx->abort = 1;
    }

    clcf = ngx_http_get_module_loc_conf(ctx->request, ngx_http_core_module);

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    ngx_add_timer(c->read, clcf->lingering_timeout);

    ngx_post_event(c->write, &ngx_posted_events);
}


/* the client broke the protocol: close with code, read no more */

static void
ngx_http_avatar_ws_fail(ngx_http_avatar_ws_ctx_t *ctx, ngx_uint_t code,
    const char *reason, const char *why)
{
    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "websocket client error: %s, closing with %ui", why, code);

    ngx_http_avatar_ws_start_close(ctx, code, reason, 0);
    ctx->failed = 1;
}


static ngx_int_t
ngx_http_avatar_ws_frame_start(ngx_http_avatar_ws_ctx_t *ctx)
{
    u_char      *h, *p;
    size_t       size;
    uint64_t     len;
    ngx_uint_t   i, opcode;

    h = ctx->hdr;

    if (h[0] & 0x70) {
        ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                "Protocol error", "reserved bits set");
        return NGX_ERROR;
    }

    if (!(h[1] & 0x80)) {
        ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                "Protocol error", "unmasked frame");
        return NGX_ERROR;
    }

    opcode = h[0] & 0x0f;
    ctx->fin = (h[0] & 0x80) ? 1 : 0;

    len = h[1] & 0x7f;
    i = 2;

    if (len == 126) {
        len = ((uint64_t) h[2] << 8) | h[3];
        i = 4;

    } else if (len == 127) {
        len = 0;

        for (i = 2; i < 10; i++) {
            len = (len << 8) | h[i];
        }

        if (len >> 63) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                    "Protocol error", "bad frame length");
            return NGX_ERROR;
        }
    }

    ngx_memcpy(ctx->mask, &h[i], 4);
    ctx->mask_pos = 0;
    ctx->remaining = len;
    ctx->opcode = opcode;

    switch (opcode) {

    case NGX_HTTP_AVATAR_WS_CLOSE:
    case NGX_HTTP_AVATAR_WS_PING:
    case NGX_HTTP_AVATAR_WS_PONG:

        if (!ctx->fin) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                    "Protocol error",
                                    "fragmented control frame");
            return NGX_ERROR;
        }

        if (len > NGX_HTTP_AVATAR_WS_MAX_CONTROL) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                    "Protocol error",
                                    "control frame over 125 bytes");
            return NGX_ERROR;
        }

        ctx->ctl_len = 0;

        return NGX_OK;

    case NGX_HTTP_AVATAR_WS_TEXT:
    case NGX_HTTP_AVATAR_WS_BINARY:

        if (ctx->message) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                    "Protocol error",
                                    "new message inside a fragmented one");
            return NGX_ERROR;
        }

        ctx->message = opcode;
        ctx->msg_len = 0;
        break;

    case NGX_HTTP_AVATAR_WS_CONT:

        if (!ctx->message) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                    "Protocol error",
                                    "continuation frame without a message");
            return NGX_ERROR;
        }

        break;

    default:
        ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                "Protocol error", "unknown opcode");
        return NGX_ERROR;
    }

    if (ctx->closing) {
        /* data after our close frame is read and dropped */
        return NGX_OK;
    }

    if (len > ctx->max_message - ctx->msg_len) {
        ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_TOO_BIG,
                                "Message too big",
                                "message over avatar_ws_max_message");
        return NGX_ERROR;
    }

    if (ctx->msg_len + len > ctx->msg_size) {
        /* fragments grow the buffer by doubling, up to the limit */
        size = ngx_max(ctx->msg_len + (size_t) len,
                       ngx_min(ctx->msg_size * 2, ctx->max_message));

        p = ngx_alloc(size, ctx->request->connection->log);
        if (p == NULL) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_INTERNAL,
                                    "Internal error", "out of memory");
            return NGX_ERROR;
        }

        if (ctx->msg_len) {
            ngx_memcpy(p, ctx->msg, ctx->msg_len);
        }

        if (ctx->msg) {
            ngx_free(ctx->msg);
        }

        ctx->msg = p;
        ctx->msg_size = size;
    }

    return NGX_OK;
}


static void
ngx_http_avatar_ws_close_frame(ngx_http_avatar_ws_ctx_t *ctx)
{
    ngx_uint_t  code;

    if (ctx->ctl_len == 1) {
        ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                "Protocol error", "close frame of one byte");
        return;
    }

    code = 0;

    if (ctx->ctl_len >= 2) {
        code = ((ngx_uint_t) ctx->ctl[0] << 8) | ctx->ctl[1];

        if (!ngx_http_avatar_ws_valid_code(code)) {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_PROTOCOL,
                                    "Protocol error", "invalid close code");
            return;
        }

        if (ngx_http_avatar_ws_utf8(ctx->ctl + 2, ctx->ctl_len - 2)
            != NGX_OK)
        {
            ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_BAD_DATA,
                                    "Invalid UTF-8",
                                    "close reason not UTF-8");
            return;
        }
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "websocket: the client closed with %ui", code);

    ctx->close_received = 1;

    /* the answer echoes the code; after a close of ours it is not sent */
    ngx_http_avatar_ws_start_close(ctx, code, NULL, 0);
}


static void
ngx_http_avatar_ws_frame_end(ngx_http_avatar_ws_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_uint_t  opcode;

    ctx->got_frame = 1;

    switch (ctx->opcode) {

    case NGX_HTTP_AVATAR_WS_PING:

        if (ctx->closing) {
            return;
        }

        rc = ngx_http_avatar_ws_queue(ctx, NGX_HTTP_AVATAR_WS_PONG, ctx->ctl,
                                      ctx->ctl_len, 1);

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                          "websocket client too slow: %uz bytes pending",
                          ctx->pending);
            ngx_http_avatar_ws_start_close(ctx, NGX_HTTP_AVATAR_WS_POLICY,
                                           "Client too slow", 1);

        } else if (rc == NGX_ERROR) {
            ctx->abort = 1;
        }

        return;

    case NGX_HTTP_AVATAR_WS_PONG:
        return;

    case NGX_HTTP_AVATAR_WS_CLOSE:
        ngx_http_avatar_ws_close_frame(ctx);
        return;
    }

    if (!ctx->fin) {
        return;
    }

    opcode = ctx->message;
    ctx->message = 0;

    if (ctx->closing) {
        ctx->msg_len = 0;
        return;
    }

    if (opcode == NGX_HTTP_AVATAR_WS_TEXT
        && ngx_http_avatar_ws_utf8(ctx->msg, ctx->msg_len) != NGX_OK)
    {
        ngx_http_avatar_ws_fail(ctx, NGX_HTTP_AVATAR_WS_BAD_DATA,
                                "Invalid UTF-8",
                                "text message not UTF-8");
        return;
    }

    if (ctx->ws) {
        avc_ws_message(ctx->ws, opcode == NGX_HTTP_AVATAR_WS_BINARY,
                       ctx->msg ? ctx->msg : (u_char *) "", ctx->msg_len);
    }

    ctx->msg_len = 0;

    if (ctx->msg_size > NGX_HTTP_AVATAR_WS_KEEP_BUFFER) {
        ngx_free(ctx->msg);
        ctx->msg = NULL;
        ctx->msg_size = 0;
    }
}


/* parse frames out of what was read; stops after a close or a failure */

static void
ngx_http_avatar_ws_input(ngx_http_avatar_ws_ctx_t *ctx, u_char *p,
    u_char *last)
{
    size_t   n, i, len;
    u_char  *dst;

    for ( ;; ) {

        if (ctx->failed || ctx->close_received || ctx->abort) {
            return;
        }

        if (!ctx->in_payload) {

            while (p < last && ctx->hdr_len < ctx->hdr_need) {
                ctx->hdr[ctx->hdr_len++] = *p++;
            }

            if (ctx->hdr_len < ctx->hdr_need) {
                return;
            }

            if (ctx->hdr_len == 2) {
                /* the extended length and the mask follow */
                len = ctx->hdr[1] & 0x7f;

                ctx->hdr_need = 2 + (len == 126 ? 2 : (len == 127 ? 8 : 0))
                                + ((ctx->hdr[1] & 0x80) ? 4 : 0);

                if (ctx->hdr_need > 2) {
                    continue;
                }
            }

            if (ngx_http_avatar_ws_frame_start(ctx) != NGX_OK) {
                return;
            }

            ctx->in_payload = 1;
        }

        n = (size_t) ngx_min(ctx->remaining, (uint64_t) (last - p));

        switch (ctx->opcode) {

        case NGX_HTTP_AVATAR_WS_CLOSE:
        case NGX_HTTP_AVATAR_WS_PING:
        case NGX_HTTP_AVATAR_WS_PONG:
            dst = ctx->ctl + ctx->ctl_len;
            ctx->ctl_len += n;
            break;

        default:
            if (ctx->closing || n == 0) {
                dst = NULL;
                break;
            }

            dst = ctx->msg + ctx->msg_len;
            ctx->msg_len += n;
            break;
        }

        if (dst) {
            for (i = 0; i < n; i++) {
                dst[i] = p[i] ^ ctx->mask[(ctx->mask_pos + i) & 3];
            }
        }

        ctx->mask_pos = (ctx->mask_pos + n) & 3;
        ctx->remaining -= n;
        p += n;

        if (ctx->remaining) {
            return;
        }

        ctx->in_payload = 0;
        ctx->hdr_len = 0;
        ctx->hdr_need = 2;

        ngx_http_avatar_ws_frame_end(ctx);
    }
}


/* strict UTF-8: no overlong forms, no surrogates, nothing over U+10FFFF */

static ngx_int_t
ngx_http_avatar_ws_utf8(const u_char *p, size_t n)
{
    uint32_t       cp, min;
    ngx_uint_t     more;
    const u_char  *last;

    if (n == 0) {
        return NGX_OK;
    }

    last = p + n;

    while (p < last) {

        if (*p < 0x80) {
            p++;
            continue;
        }

        if (*p >= 0xc2 && *p <= 0xdf) {
            cp = *p & 0x1f;
            more = 1;
            min = 0x80;

        } else if ((*p & 0xf0) == 0xe0) {
            cp = *p & 0x0f;
            more = 2;
            min = 0x800;

        } else if (*p >= 0xf0 && *p <= 0xf4) {
            cp = *p & 0x07;
            more = 3;
            min = 0x10000;

        } else {
            return NGX_ERROR;
        }

        p++;

        if ((size_t) (last - p) < more) {
            return NGX_ERROR;
        }

        while (more--) {
            if ((*p & 0xc0) != 0x80) {
                return NGX_ERROR;
            }

            cp = (cp << 6) | (*p++ & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The host functions of avatarcore/voice.h: they queue, nothing more. */

static int
ngx_http_avatar_ws_host_send(void *host, int binary, const void *p,
    size_t n)
{
    ngx_http_avatar_ws_ctx_t  *ctx = host;

    ngx_int_t  rc;

    if (ctx->finished || ctx->closing) {
        return AVC_ECANCELED;
    }

    rc = ngx_http_avatar_ws_queue(ctx, binary ? NGX_HTTP_AVATAR_WS_BINARY
                                              : NGX_HTTP_AVATAR_WS_TEXT,
                                  p, n, 1);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "websocket client too slow: %uz bytes pending",
                      ctx->pending);
        ngx_http_avatar_ws_start_close(ctx, NGX_HTTP_AVATAR_WS_POLICY,
                                       "Client too slow", 1);
        return AVC_EBUSY;
    }

    if (rc == NGX_ERROR) {
        ngx_http_avatar_ws_start_close(ctx, NGX_HTTP_AVATAR_WS_INTERNAL,
                                       "Internal error", 0);
        return AVC_ENOMEM;
    }

    return AVC_OK;
}


static size_t
ngx_http_avatar_ws_host_pending(void *host)
{
    ngx_http_avatar_ws_ctx_t  *ctx = host;

    return ctx->pending;
}


static void
ngx_http_avatar_ws_host_close(void *host, int code, const char *reason)
{
    ngx_http_avatar_ws_ctx_t  *ctx = host;

    if (code < 0 || !ngx_http_avatar_ws_valid_code((ngx_uint_t) code)) {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "websocket: close code %d is not valid", code);
        code = NGX_HTTP_AVATAR_WS_INTERNAL;
    }

    ngx_http_avatar_ws_start_close(ctx, (ngx_uint_t) code, reason, 0);
}


/*
 * The token of a socket request, for $avatar_user_id (limit_req keys):
 * browsers cannot send Authorization on a WebSocket, so it came as
 * ?token= or the bearer subprotocol, copied here before it was masked.
 */

ngx_int_t
ngx_http_avatar_ws_token(ngx_http_request_t *r, ngx_str_t *tok)
{
    ngx_str_t                  id;
    avc_ws_kind_t              kind;
    ngx_http_avatar_ws_ctx_t  *ctx;

    if (ngx_http_avatar_ws_path(&r->uri, &kind, &id) != NGX_OK) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_avatar_module);

    if (ctx == NULL || ctx->token == NULL) {
        return NGX_DECLINED;
    }

    tok->data = (u_char *) ctx->token;
    tok->len = ctx->token_len;

    return NGX_OK;
}
