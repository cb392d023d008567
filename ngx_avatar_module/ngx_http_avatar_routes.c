/*
 * The one routing table: method and path pattern to a core operation.
 * A pattern is matched segment by segment; "{name}" matches one non-empty
 * segment and becomes a parameter of the call.  A path that matches no
 * pattern is a 404; one that matches only with other methods is a 405.
 */

#include "ngx_http_avatar_module.h"


#define NGX_HTTP_AVATAR_GET   (NGX_HTTP_GET|NGX_HTTP_HEAD)


static ngx_http_avatar_route_t  ngx_http_avatar_routes[] = {

    { NGX_HTTP_AVATAR_GET, "/api/v1/", avc_op_root, 0 },
    { NGX_HTTP_AVATAR_GET, "/health", avc_op_health, 0 },
    { NGX_HTTP_AVATAR_GET, "/metrics", avc_op_metrics, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/openapi.json", avc_op_openapi, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/docs", avc_op_docs, 0 },

    /* auth */
    { NGX_HTTP_POST, "/api/v1/auth/signup", avc_op_auth_signup, 1 },
    { NGX_HTTP_POST, "/api/v1/auth/login", avc_op_auth_login, 1 },
    { NGX_HTTP_POST, "/api/v1/auth/refresh", avc_op_auth_refresh, 1 },
    { NGX_HTTP_POST, "/api/v1/auth/logout", avc_op_auth_logout, 1 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/auth/me", avc_op_auth_me, 0 },
    { NGX_HTTP_POST, "/api/v1/auth/password/forgot", avc_op_auth_forgot, 1 },
    { NGX_HTTP_POST, "/api/v1/auth/password/reset", avc_op_auth_reset, 1 },

    /* users */
    { NGX_HTTP_AVATAR_GET, "/api/v1/users/", avc_op_users_list, 0 },
    { NGX_HTTP_POST, "/api/v1/users/", avc_op_users_create, 1 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/users/count", avc_op_users_count, 0 },
    { NGX_HTTP_POST, "/api/v1/users/invites", avc_op_users_invite, 1 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/users/{id}", avc_op_users_get, 0 },
    { NGX_HTTP_PATCH, "/api/v1/users/{id}", avc_op_users_update, 1 },
    { NGX_HTTP_DELETE, "/api/v1/users/{id}", avc_op_users_delete, 0 },
    { NGX_HTTP_PATCH, "/api/v1/users/{id}/toggle-active",
      avc_op_users_toggle_active, 0 },

    /* dealerships */
    { NGX_HTTP_AVATAR_GET, "/api/v1/dealerships/", avc_op_dealerships_list,
      0 },
    { NGX_HTTP_POST, "/api/v1/dealerships/", avc_op_dealerships_create, 1 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/dealerships/{id}",
      avc_op_dealerships_get, 0 },
    { NGX_HTTP_PATCH, "/api/v1/dealerships/{id}", avc_op_dealerships_update,
      1 },
    { NGX_HTTP_DELETE, "/api/v1/dealerships/{id}",
      avc_op_dealerships_delete, 0 },
    { NGX_HTTP_PATCH, "/api/v1/dealerships/{id}/rag-config",
      avc_op_dealerships_rag_config, 1 },

    /* chat */
    { NGX_HTTP_POST, "/api/v1/chat/", avc_op_chat, 1 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/chat/history", avc_op_chat_history, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/chat/sessions", avc_op_chat_sessions,
      0 },
    { NGX_HTTP_POST, "/api/v1/chat/prewarm", avc_op_chat_prewarm, 1 },
    { NGX_HTTP_POST, "/api/v1/chat/session/{session_id}/clear",
      avc_op_chat_clear, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/chat/scenarios",
      avc_op_chat_scenarios, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/chat/cache/stats",
      avc_op_chat_cache_stats, 0 },

    /* knowledge base */
    { NGX_HTTP_POST, "/api/v1/rag/{id}/initialize", avc_op_rag_initialize,
      0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/rag/{id}/status", avc_op_rag_status, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/rag/{id}/documents",
      avc_op_rag_documents, 0 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/rag/{id}/documents/{doc_id}",
      avc_op_rag_document_get, 0 },
    { NGX_HTTP_DELETE, "/api/v1/rag/{id}/documents/{doc_id}",
      avc_op_rag_document_delete, 0 },
    { NGX_HTTP_DELETE, "/api/v1/rag/{id}/reset", avc_op_rag_reset, 0 },
    { NGX_HTTP_POST, "/api/v1/rag/{id}/query", avc_op_rag_query,
      NGX_HTTP_AVATAR_BODY_JSON },
    { NGX_HTTP_POST, "/api/v1/rag/{id}/upload/{topic}", avc_op_rag_upload,
      NGX_HTTP_AVATAR_BODY_STREAM },

    /* reports */
    { NGX_HTTP_POST, "/api/v1/report/inaccuracy", avc_op_report_inaccuracy,
      NGX_HTTP_AVATAR_BODY_JSON },
    { NGX_HTTP_POST, "/api/v1/report/send-to-team",
      avc_op_report_send_to_team, NGX_HTTP_AVATAR_BODY_JSON },
    { NGX_HTTP_AVATAR_GET, "/api/v1/report/", avc_op_report_list, 0 },
    { NGX_HTTP_PATCH, "/api/v1/report/{id}", avc_op_report_update,
      NGX_HTTP_AVATAR_BODY_JSON },

    /* voice: the sockets are routed by ngx_http_avatar_ws.c */
    { NGX_HTTP_POST, "/api/v1/voice/chat", avc_op_voice_chat, 1 },
    { NGX_HTTP_POST, "/api/v1/voice/chat/fast", avc_op_voice_chat_fast, 1 },
    { NGX_HTTP_POST, "/api/v1/voice/tts", avc_op_voice_tts, 1 },
    { NGX_HTTP_POST, "/api/v1/voice/stt", avc_op_voice_stt, 1 },
    { NGX_HTTP_DELETE, "/api/v1/voice/session/{session_id}",
      avc_op_voice_session_delete, 0 },

    /* avatar */
    { NGX_HTTP_POST, "/api/v1/avatar/session", avc_op_avatar_session, 1 },
    { NGX_HTTP_AVATAR_GET, "/api/v1/avatar/voices", avc_op_avatar_voices,
      0 },

    /* analytics */
    { NGX_HTTP_AVATAR_GET, "/api/v1/analytics/summary",
      avc_op_analytics_summary, 0 },

    { 0, NULL, NULL, 0 }
};


/*
 * Match path against pattern; on success fill params (names point into the
 * pattern, values into the path).
 */

static ngx_int_t
ngx_http_avatar_match(const char *pattern, ngx_str_t *path,
    ngx_http_avatar_param_t *params, ngx_uint_t *nparams)
{
    u_char      *p, *last, *seg;
    const char  *q, *name;
    ngx_uint_t   n = 0;

    p = path->data;
    last = path->data + path->len;
    q = pattern;

    while (*q) {

        if (*q != '{') {
            if (p == last || *p != (u_char) *q) {
                return NGX_DECLINED;
            }

            p++;
            q++;
            continue;
        }

        name = ++q;

        while (*q && *q != '}') {
            q++;
        }

        if (*q != '}' || n == NGX_HTTP_AVATAR_MAX_PARAMS) {
            return NGX_DECLINED;
        }

        seg = p;

        while (p < last && *p != '/') {
            p++;
        }

        if (p == seg) {
            return NGX_DECLINED;
        }

        params[n].name.data = (u_char *) name;
        params[n].name.len = q - name;
        params[n].value.data = seg;
        params[n].value.len = p - seg;
        n++;

        q++;
    }

    if (p != last) {
        return NGX_DECLINED;
    }

    *nparams = n;

    return NGX_OK;
}


ngx_int_t
ngx_http_avatar_route_find(ngx_http_request_t *r,
    ngx_http_avatar_route_t **route, ngx_http_avatar_param_t *params,
    ngx_uint_t *nparams, ngx_uint_t *allowed)
{
    ngx_http_avatar_route_t  *rt;

    *allowed = 0;

    for (rt = ngx_http_avatar_routes; rt->pattern; rt++) {

        if (ngx_http_avatar_match(rt->pattern, &r->uri, params, nparams)
            != NGX_OK)
        {
            continue;
        }

        if (rt->methods & r->method) {
            *route = rt;
            return NGX_OK;
        }

        *allowed |= rt->methods;
    }

    return *allowed ? NGX_HTTP_NOT_ALLOWED : NGX_HTTP_NOT_FOUND;
}


size_t
ngx_http_avatar_allow_header(ngx_uint_t methods, u_char *buf, size_t len)
{
    static const struct {
        ngx_uint_t   method;
        const char  *name;
    } names[] = {
        { NGX_HTTP_GET, "GET" },
        { NGX_HTTP_HEAD, "HEAD" },
        { NGX_HTTP_POST, "POST" },
        { NGX_HTTP_PUT, "PUT" },
        { NGX_HTTP_PATCH, "PATCH" },
        { NGX_HTTP_DELETE, "DELETE" },
    };

    u_char      *p = buf, *last = buf + len;
    ngx_uint_t   i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (methods & names[i].method) {
            p = ngx_slprintf(p, last, "%s%s", p == buf ? "" : ", ",
                             names[i].name);
        }
    }

    return p - buf;
}
