/*
 * ngx_http_avatar_module: directives, configuration, and the per-worker
 * start and stop of the core.
 */

#include "ngx_http_avatar_module.h"

#include <avatarcore/cache.h>

#include <avatarcore/db.h>


static void *ngx_http_avatar_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_avatar_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_avatar_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_avatar_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_avatar_init_process(ngx_cycle_t *cycle);
static void ngx_http_avatar_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_avatar_database(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_setting(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_size_setting(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_avatar_num_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_msec_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_size_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_error(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_avatar_min_size(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_avatar_min_msec(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_num_bounds_t  ngx_http_avatar_db_pool_bounds = {
    ngx_conf_check_num_bounds, 1, 256
};


/* the WebSocket limits have a floor: a limit of 0 would refuse all */

static ngx_conf_num_bounds_t  ngx_http_avatar_ws_size_bounds = {
    ngx_http_avatar_min_size, 1024, 0
};

static ngx_conf_num_bounds_t  ngx_http_avatar_ws_msec_bounds = {
    ngx_http_avatar_min_msec, 1, 0
};


static ngx_command_t  ngx_http_avatar_commands[] = {

    { ngx_string("avatar_database"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_database,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_thread_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_cors_origins,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_db_pool_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_avatar_main_conf_t, db_pool_size),
      &ngx_http_avatar_db_pool_bounds },

    { ngx_string("avatar_db_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_avatar_main_conf_t, db_timeout),
      NULL },

    { ngx_string("avatar_llm"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "llm" },

    { ngx_string("avatar_embeddings"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "embeddings" },

    { ngx_string("avatar_vector_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "vector_store" },

    { ngx_string("avatar_stt"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "stt" },

    { ngx_string("avatar_tts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "tts" },

    { ngx_string("avatar_avatar"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "avatar" },

    { ngx_string("avatar_mail"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_avatar_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "mail" },

    { ngx_string("avatar_signup"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "auth.signup" },

    { ngx_string("avatar_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "app.public_url" },

    { ngx_string("avatar_ingest"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "rag.ingest" },

    { ngx_string("avatar_upload_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "rag.upload_wait" },

    { ngx_string("avatar_max_file_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_size_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "rag.max_file_size" },

    { ngx_string("avatar_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_cache_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_semantic_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "cache.semantic" },

    { ngx_string("avatar_semantic_cache_threshold"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "cache.semantic_threshold" },

    { ngx_string("avatar_scenarios"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "chat.scenarios" },

    { ngx_string("avatar_prompts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "prompts.dir" },

    { ngx_string("avatar_voice_end_silence"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "voice.end_silence" },

    { ngx_string("avatar_voice_max_turn"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "voice.max_turn" },

    { ngx_string("avatar_voice_max_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "voice.spoken_max_tokens" },

    { ngx_string("avatar_history_turns"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_setting,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      "chat.history_turns" },

    { ngx_string("avatar_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_avatar_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_error"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_avatar_error,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("avatar_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_avatar_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("avatar_max_upload_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_avatar_loc_conf_t, max_upload_size),
      NULL },

    { ngx_string("avatar_ws_max_message"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_avatar_loc_conf_t, ws_max_message),
      &ngx_http_avatar_ws_size_bounds },

    { ngx_string("avatar_ws_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_avatar_loc_conf_t, ws_max_pending),
      &ngx_http_avatar_ws_size_bounds },

    { ngx_string("avatar_ws_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_avatar_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_avatar_loc_conf_t, ws_idle_timeout),
      &ngx_http_avatar_ws_msec_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_avatar_module_ctx = {
    ngx_http_avatar_add_variables,         /* preconfiguration */
    ngx_http_avatar_ws_init,               /* postconfiguration */

    ngx_http_avatar_create_main_conf,      /* create main configuration */
    ngx_http_avatar_init_main_conf,        /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_avatar_create_loc_conf,       /* create location configuration */
    ngx_http_avatar_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_avatar_module = {
    NGX_MODULE_V1,
    &ngx_http_avatar_module_ctx,           /* module context */
    ngx_http_avatar_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_avatar_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_avatar_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_http_avatar_worker_t  ngx_http_avatar_worker;


static void *
ngx_http_avatar_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_avatar_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_avatar_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     amcf->database = { 0, NULL };
     *     amcf->secret = { 0, NULL };
     *     amcf->thread_pool = NULL;
     *     amcf->cors_origins = NULL;
     *     amcf->enabled = 0;
     */

    amcf->db_pool_size = NGX_CONF_UNSET_UINT;
    amcf->db_timeout = NGX_CONF_UNSET_MSEC;

    amcf->settings = ngx_array_create(cf->pool, 8, sizeof(ngx_keyval_t));
    if (amcf->settings == NULL) {
        return NULL;
    }

    return amcf;
}


static char *
ngx_http_avatar_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    ngx_str_t  name = ngx_string("default");

    ngx_conf_init_uint_value(amcf->db_pool_size, 4);
    ngx_conf_init_msec_value(amcf->db_timeout, 10000);

    if (!amcf->enabled) {
        return NGX_CONF_OK;
    }

    if (amcf->database.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"avatar_api\" requires \"avatar_database\"");
        return NGX_CONF_ERROR;
    }

    if (amcf->secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"avatar_api\" requires \"avatar_secret\"");
        return NGX_CONF_ERROR;
    }

    if (amcf->thread_pool == NULL) {
        amcf->thread_pool_name = name;
        amcf->thread_pool = ngx_thread_pool_add(cf, &name);
        if (amcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_avatar_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_avatar_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_avatar_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    alcf->api = NGX_CONF_UNSET;
    alcf->error = NGX_CONF_UNSET;
    alcf->max_body_size = NGX_CONF_UNSET_SIZE;
    alcf->max_upload_size = NGX_CONF_UNSET_SIZE;
    alcf->ws_max_message = NGX_CONF_UNSET_SIZE;
    alcf->ws_max_pending = NGX_CONF_UNSET_SIZE;
    alcf->ws_idle_timeout = NGX_CONF_UNSET_MSEC;

    return alcf;
}


static char *
ngx_http_avatar_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_avatar_loc_conf_t  *prev = parent;
    ngx_http_avatar_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_value(conf->api, prev->api, 0);
    ngx_conf_merge_value(conf->error, prev->error, 0);
    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              1024 * 1024);
    ngx_conf_merge_size_value(conf->max_upload_size, prev->max_upload_size,
                              50 * 1024 * 1024);
    ngx_conf_merge_size_value(conf->ws_max_message, prev->ws_max_message,
                              1024 * 1024);
    ngx_conf_merge_size_value(conf->ws_max_pending, prev->ws_max_pending,
                              8 * 1024 * 1024);
    ngx_conf_merge_msec_value(conf->ws_idle_timeout, prev->ws_idle_timeout,
                              120000);

    if (conf->api) {
        /*
         * API bodies are parsed in memory: keep them out of temporary
         * files, so that no file I/O happens on the event loop
         */

        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (clcf->client_body_buffer_size < conf->max_body_size) {
            clcf->client_body_buffer_size = conf->max_body_size;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The stock slots, with the bad value quoted in the message: an operator
 * should see what nginx read, not only that it was wrong.
 */

static char *
ngx_http_avatar_quote(ngx_conf_t *cf, ngx_command_t *cmd, char *rv)
{
    ngx_str_t  *value;

    if (rv == NGX_CONF_OK || rv == NGX_CONF_ERROR) {
        return rv;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\" in "
                       "\"%V\": %s", &value[1], &cmd->name,
                       ngx_strcmp(rv, "invalid value") == 0
                       ? "not a valid value" : rv);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_avatar_num_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t   *np;
    ngx_str_t   *value;
    char        *p = conf;

    np = (ngx_int_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* ngx_conf_set_num_slot reports bounds without the value: check here */
    *np = ngx_atoi(value[1].data, value[1].len);

    if (*np == NGX_ERROR) {
        return ngx_http_avatar_quote(cf, cmd, "not a number");
    }

    if (cmd->post) {
        ngx_conf_num_bounds_t  *b = cmd->post;

        if (*np < b->low || *np > b->high) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\" "
                               "in \"%V\": must be between %i and %i",
                               &value[1], &cmd->name, b->low, b->high);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_msec_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_avatar_quote(cf, cmd,
                                 ngx_conf_set_msec_slot(cf, cmd, conf));
}


static char *
ngx_http_avatar_size_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_avatar_quote(cf, cmd,
                                 ngx_conf_set_size_slot(cf, cmd, conf));
}


/* post handlers of the slots above: the value at least bounds->low */

static char *
ngx_http_avatar_min_size(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    size_t                 *sp = data;

    if (*sp < (size_t) bounds->low) {
        return "too small: the least is 1k";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_min_msec(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_msec_t             *msp = data;

    if (*msp < (ngx_msec_t) bounds->low) {
        return "must be more than 0";
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_database(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    char       *why;
    ngx_str_t  *value;

    if (amcf->database.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->database.data = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (amcf->database.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(amcf->database.data, value[1].data, value[1].len);
    amcf->database.data[value[1].len] = '\0';
    amcf->database.len = value[1].len;

    why = avc_db_conninfo_check((char *) amcf->database.data);
    if (why != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid connection string \"%V\": %s",
                           &value[1], why);
        free(why);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "env:NAME" or "file:/path": a secret never stands in the config text */

static char *
ngx_http_avatar_load_secret(ngx_conf_t *cf, ngx_str_t *source,
    ngx_str_t *out)
{
    int         err;
    char       *src, *s;
    size_t      len;
    ngx_str_t   path;

    if (!(source->len > 4 && ngx_strncmp(source->data, "env:", 4) == 0)
        && !(source->len > 5 && ngx_strncmp(source->data, "file:", 5) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid secret source \"%V\": use \"env:NAME\" "
                           "or \"file:/path\", never the secret itself",
                           source);
        return NGX_CONF_ERROR;
    }

    if (source->data[0] == 'f') {
        path.data = source->data + 5;
        path.len = source->len - 5;

        if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        src = ngx_pnalloc(cf->temp_pool, path.len + 6);
        if (src == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf((u_char *) src, "file:%V%Z", &path);

    } else {
        src = ngx_pnalloc(cf->temp_pool, source->len + 1);
        if (src == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf((u_char *) src, "%V%Z", source);
    }

    s = avc_secret_load(src, &err);
    if (s == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot load secret \"%V\": %s", source,
                           err == AVC_ENOTFOUND ? "not set or empty"
                                                : avc_strerror(err));
        return NGX_CONF_ERROR;
    }

    len = ngx_strlen(s);

    out->data = ngx_pnalloc(cf->pool, len + 1);
    if (out->data == NULL) {
        ngx_explicit_memzero(s, len);
        free(s);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(out->data, s, len + 1);
    out->len = len;

    ngx_explicit_memzero(s, len);
    free(s);

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_secret(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    ngx_str_t  *value;

    if (amcf->secret.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_avatar_load_secret(cf, &value[1], &amcf->secret)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (amcf->secret.len < 32) {
        if (amcf->secret.len < 16) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "secret \"%V\" is too short: %uz bytes, "
                               "at least 16 (32 recommended)",
                               &value[1], amcf->secret.len);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "secret \"%V\" is short: %uz bytes, "
                           "32 or more recommended",
                           &value[1], amcf->secret.len);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_thread_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    ngx_str_t  *value;

    if (amcf->thread_pool) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty pool name";
    }

    amcf->thread_pool_name = value[1];

    /* declared by a "thread_pool" directive, or the implicit "default" */
    amcf->thread_pool = ngx_thread_pool_add(cf, &value[1]);
    if (amcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_avatar_valid_origin(ngx_str_t *o)
{
    u_char  *p, *last;

    if (o->len > 8 && ngx_strncmp(o->data, "https://", 8) == 0) {
        p = o->data + 8;

    } else if (o->len > 7 && ngx_strncmp(o->data, "http://", 7) == 0) {
        p = o->data + 7;

    } else {
        return NGX_ERROR;
    }

    last = o->data + o->len;

    /* host[:port], nothing after: an origin has no path */
    for ( /* void */ ; p < last; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
              || *p == ':' || *p == '[' || *p == ']'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static char *
ngx_http_avatar_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (amcf->cors_origins == NULL) {
        amcf->cors_origins = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (amcf->cors_origins == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        /* "*" cannot be combined with credentials */

        if (ngx_http_avatar_valid_origin(&value[i]) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": use "
                               "\"scheme://host[:port]\" without a path",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        o = ngx_array_push(amcf->cors_origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * avatar_llm openai base_url=... model=... key=env:NAME ...;
 *
 * The first argument names the provider, the rest are key=value settings;
 * both are checked against the core's table.  Values of secret keys are
 * sources ("env:NAME", "file:/path") loaded here, in the master.
 */

static char *
ngx_http_avatar_provider(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    int            secret;
    char          *key, *val;
    const char    *concern = cmd->post, *why;
    ngx_str_t     *value, v;
    ngx_uint_t     i, n;
    ngx_keyval_t  *kv;
    u_char        *eq;

    value = cf->args->elts;

    kv = amcf->settings->elts;
    n = ngx_strlen(concern);

    for (i = 0; i < amcf->settings->nelts; i++) {
        if (kv[i].key.len == n + 9
            && ngx_strncmp(kv[i].key.data, concern, n) == 0
            && ngx_strcmp(kv[i].key.data + n, ".provider") == 0)
        {
            return "is duplicate";
        }
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (i == 1) {
            eq = NULL;
            v = value[1];

        } else {
            eq = ngx_strlchr(value[i].data, value[i].data + value[i].len,
                             '=');
            if (eq == NULL || eq == value[i].data) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\": "
                                   "expected key=value", &value[i]);
                return NGX_CONF_ERROR;
            }

            v.data = eq + 1;
            v.len = value[i].data + value[i].len - v.data;
        }

        key = ngx_pnalloc(cf->pool, n + 1 + value[i].len + 10);
        val = ngx_pnalloc(cf->pool, v.len + 1);
        if (key == NULL || val == NULL) {
            return NGX_CONF_ERROR;
        }

        if (eq == NULL) {
            ngx_sprintf((u_char *) key, "%s.provider%Z", concern);

        } else {
            ngx_sprintf((u_char *) key, "%s.%*s%Z", concern,
                        (size_t) (eq - value[i].data), value[i].data);
        }

        ngx_sprintf((u_char *) val, "%V%Z", &v);

        why = avc_setting_check(key, val, &secret);
        if (why != NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": %s",
                               &value[i], why);
            return NGX_CONF_ERROR;
        }

        kv = ngx_array_push(amcf->settings);
        if (kv == NULL) {
            return NGX_CONF_ERROR;
        }

        kv->key.data = (u_char *) key;
        kv->key.len = ngx_strlen(key);

        if (secret) {
            if (ngx_http_avatar_load_secret(cf, &v, &kv->value)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else {
            kv->value.data = (u_char *) val;
            kv->value.len = v.len;
        }
    }

    return NGX_CONF_OK;
}


/* A single core setting: "avatar_signup invite;" sets "auth.signup". */

static char *
ngx_http_avatar_setting(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    int            secret;
    char          *val;
    const char    *key = cmd->post, *why;
    ngx_str_t     *value;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    value = cf->args->elts;
    kv = amcf->settings->elts;

    for (i = 0; i < amcf->settings->nelts; i++) {
        if (ngx_strcmp(kv[i].key.data, key) == 0) {
            return "is duplicate";
        }
    }

    val = ngx_pnalloc(cf->pool, value[1].len + 1);
    if (val == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf((u_char *) val, "%V%Z", &value[1]);

    why = avc_setting_check(key, val, &secret);
    if (why != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\" in "
                           "\"%V\": %s", &value[1], &cmd->name, why);
        return NGX_CONF_ERROR;
    }

    kv = ngx_array_push(amcf->settings);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key.data = (u_char *) key;
    kv->key.len = ngx_strlen(key);
    kv->value.data = (u_char *) val;
    kv->value.len = value[1].len;

    return NGX_CONF_OK;
}


/* A core setting given as an nginx size ("10m"), passed on in bytes. */

static char *
ngx_http_avatar_size_setting(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t     size;
    ngx_str_t  *value;
    u_char     *p;

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);
    if (size <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\" in "
                           "\"%V\": not a size", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_OFF_T_LEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    value[1].len = ngx_sprintf(p, "%z", size) - p;
    value[1].data = p;

    return ngx_http_avatar_setting(cf, cmd, conf);
}


static char *
ngx_http_avatar_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_loc_conf_t  *alcf = conf;

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_avatar_main_conf_t  *amcf;

    if (alcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    alcf->api = 1;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_avatar_module);
    amcf->enabled = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_avatar_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_error(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_loc_conf_t  *alcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->error != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    alcf->error = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_avatar_error_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_avatar_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    char  *p;

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}


static ngx_int_t
ngx_http_avatar_init_process(ngx_cycle_t *cycle)
{
    int                           err;
    char                          buf[32];
    ngx_uint_t                    i;
    ngx_keyval_t                 *kv;
    ngx_http_avatar_worker_t     *w = &ngx_http_avatar_worker;
    ngx_http_avatar_main_conf_t  *amcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_avatar_module);
    if (amcf == NULL || !amcf->enabled) {
        return NGX_OK;
    }

    avc_log_set(ngx_http_avatar_log_handler, NULL, AVC_LOG_DEBUG);

    w->config = avc_config_new();
    if (w->config == NULL) {
        return NGX_ERROR;
    }

    if (avc_config_set(w->config, "database",
                       ngx_http_avatar_cstr(cycle->pool, &amcf->database))
        != AVC_OK
        || avc_config_set(w->config, "secret", (char *) amcf->secret.data)
           != AVC_OK)
    {
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) buf, sizeof(buf), "%ui%Z", amcf->db_pool_size);
    (void) avc_config_set(w->config, "db.pool", buf);
    ngx_snprintf((u_char *) buf, sizeof(buf), "%M%Z", amcf->db_timeout);
    (void) avc_config_set(w->config, "db.timeout", buf);

    kv = amcf->settings->elts;
    for (i = 0; i < amcf->settings->nelts; i++) {
        if (avc_config_set(w->config, (char *) kv[i].key.data,
                           (char *) kv[i].value.data)
            != AVC_OK)
        {
            return NGX_ERROR;
        }
    }

    w->loop = ngx_http_avatar_loop_create(cycle, amcf->thread_pool);
    if (w->loop == NULL) {
        return NGX_ERROR;
    }

    w->app = avc_app_new(w->loop, w->config, &err);
    if (w->app == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "avatar: cannot start the core: %s", avc_strerror(err));
        return NGX_ERROR;
    }

    if (amcf->cache_zone) {
        /* made in the master, mapped into every worker */
        avc_app_set_cache(w->app, amcf->cache_zone->data);
    }

    return NGX_OK;
}


static void
ngx_http_avatar_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_avatar_worker_t  *w = &ngx_http_avatar_worker;

    avc_app_free(w->app);
    avc_loop_free(w->loop);
    avc_config_free(w->config);

    w->app = NULL;
    w->loop = NULL;
    w->config = NULL;
}


/*
 * avatar_cache_zone name:size: the caches (query embeddings, semantic
 * answers, session contexts) in one shared-memory zone for all workers.
 * The core lays the zone out itself (one block of nginx's slab pool); on
 * reload a zone of the same name and size keeps its contents.
 */

static ngx_int_t
ngx_http_avatar_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    int               err;
    size_t            size;
    u_char           *region;
    avc_shcache_t    *cache, *old = data;
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (old != NULL || shm_zone->shm.exists) {
        /* the region made by an earlier cycle */
        region = shpool->data;
        size = (size_t) (shpool->end - region);
        cache = avc_shcache_attach(region, size, &err);
        avc_shcache_free(old);

        if (cache == NULL) {
            /* a layout of another version: start empty */
            cache = avc_shcache_init(region, size, &err);
        }

    } else {
        /* nginx put its slab pool header at the start: the core takes all
         * of the free pages as one block and lays them out itself */
        size = shpool->pfree << ngx_pagesize_shift;

        region = ngx_slab_alloc(shpool, size);
        if (region == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "avatar_cache_zone \"%V\": no memory",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        shpool->data = region;
        cache = avc_shcache_init(region, size, &err);
    }

    if (cache == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "avatar_cache_zone \"%V\": %s", &shm_zone->shm.name,
                      avc_strerror(err));
        return NGX_ERROR;
    }

    shm_zone->data = cache;

    return NGX_OK;
}


static char *
ngx_http_avatar_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_avatar_main_conf_t  *amcf = conf;

    u_char      *p;
    ssize_t      size;
    ngx_str_t   *value, name, s;

    if (amcf->cache_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\" in "
                           "\"%V\": not name:size", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR
        || (size_t) size < avc_shcache_min_size() + 16 * ngx_pagesize)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\" in "
                           "\"%V\": the size must be at least %uz",
                           &value[1], &cmd->name,
                           avc_shcache_min_size() + 16 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    amcf->cache_zone = ngx_shared_memory_add(cf, &name, size,
                                             &ngx_http_avatar_module);
    if (amcf->cache_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (amcf->cache_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "zone \"%V\" is already "
                           "used", &name);
        return NGX_CONF_ERROR;
    }

    amcf->cache_zone->init = ngx_http_avatar_init_zone;

    return NGX_CONF_OK;
}
