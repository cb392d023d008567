/*
 * ngx_http_avatar_module: Avatar Adam's HTTP face.  The module is thin: it
 * routes requests to operations of libavatarcore, reads bodies, writes
 * JSON, and runs the core's asynchronous work on nginx's event loop and
 * thread pool.
 */

#ifndef _NGX_HTTP_AVATAR_MODULE_H_INCLUDED_
#define _NGX_HTTP_AVATAR_MODULE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/app.h>


typedef struct {
    ngx_str_t                  database;
    ngx_str_t                  secret;        /* the loaded value */
    ngx_thread_pool_t         *thread_pool;
    ngx_str_t                  thread_pool_name;
    ngx_array_t               *cors_origins;  /* of ngx_str_t */
    ngx_uint_t                 db_pool_size;
    ngx_msec_t                 db_timeout;
    ngx_array_t               *settings;      /* of ngx_keyval_t, core keys */
    ngx_shm_zone_t            *cache_zone;    /* avatar_cache_zone */
    ngx_flag_t                 enabled;       /* some location uses it */
} ngx_http_avatar_main_conf_t;


typedef struct {
    ngx_flag_t                 api;
    ngx_flag_t                 error;
    size_t                     max_body_size;
    size_t                     max_upload_size;
    size_t                     ws_max_message;   /* avatar_ws_max_message */
    size_t                     ws_max_pending;   /* avatar_ws_max_pending */
    ngx_msec_t                 ws_idle_timeout;  /* avatar_ws_idle_timeout */
} ngx_http_avatar_loc_conf_t;


/* per-worker state */
typedef struct {
    avc_loop_t                *loop;
    avc_config_t              *config;
    avc_app_t                 *app;
} ngx_http_avatar_worker_t;


typedef struct {
    ngx_uint_t                 methods;       /* NGX_HTTP_GET | ... */
    const char                *pattern;       /* "/api/v1/users/{id}" */
    avc_op_t                   op;
    ngx_uint_t                 body;          /* NGX_HTTP_AVATAR_BODY_* */
} ngx_http_avatar_route_t;


#define NGX_HTTP_AVATAR_BODY_NONE    0
#define NGX_HTTP_AVATAR_BODY_JSON    1     /* read whole, in memory */
#define NGX_HTTP_AVATAR_BODY_STREAM  2     /* fed to the core as it comes */


#define NGX_HTTP_AVATAR_MAX_PARAMS  4

typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  value;
} ngx_http_avatar_param_t;


extern ngx_module_t  ngx_http_avatar_module;
extern ngx_http_avatar_worker_t  ngx_http_avatar_worker;


/* ngx_http_avatar_loop.c */
avc_loop_t *ngx_http_avatar_loop_create(ngx_cycle_t *cycle,
    ngx_thread_pool_t *tp);
void ngx_http_avatar_log_handler(void *data, avc_log_level_t level,
    const char *msg);

/* ngx_http_avatar_routes.c */
ngx_int_t ngx_http_avatar_route_find(ngx_http_request_t *r,
    ngx_http_avatar_route_t **route, ngx_http_avatar_param_t *params,
    ngx_uint_t *nparams, ngx_uint_t *allowed);
size_t ngx_http_avatar_allow_header(ngx_uint_t methods, u_char *buf,
    size_t len);

/* ngx_http_avatar_variables.c */
ngx_int_t ngx_http_avatar_add_variables(ngx_conf_t *cf);

/* ngx_http_avatar_handler.c */
ngx_int_t ngx_http_avatar_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_avatar_error_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_avatar_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *message);

/* ngx_http_avatar_ws.c */
ngx_int_t ngx_http_avatar_ws_init(ngx_conf_t *cf);
ngx_int_t ngx_http_avatar_ws_handler(ngx_http_request_t *r);

/* ngx_http_avatar_handler.c: a response header (name and value borrowed) */
ngx_int_t ngx_http_avatar_add_header(ngx_http_request_t *r, const char *name,
    size_t nlen, u_char *value, size_t vlen);

#define ngx_http_avatar_add_const(r, n, v)                                  \
    ngx_http_avatar_add_header(r, n, sizeof(n) - 1, (u_char *) v,           \
                               sizeof(v) - 1)
ngx_int_t ngx_http_avatar_ws_token(ngx_http_request_t *r, ngx_str_t *tok);

#endif /* _NGX_HTTP_AVATAR_MODULE_H_INCLUDED_ */
