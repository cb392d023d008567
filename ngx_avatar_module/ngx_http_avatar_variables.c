/*
 * $avatar_user_id, $avatar_role, $avatar_dealership_id: the claims of the
 * request's access token, when its signature, algorithm, expiry and type
 * check out; empty otherwise.  They need no database, so they work in the
 * preaccess phase, for limit_req_zone keys and in log_format.  They are
 * not authorisation: the API reads the account from the database.
 */

#include "ngx_http_avatar_module.h"

#include <avatarcore/token.h>


typedef struct {
    ngx_str_t                  user_id;
    ngx_str_t                  role;
    ngx_str_t                  dealership_id;
} ngx_http_avatar_claims_t;


static ngx_int_t ngx_http_avatar_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_avatar_vars[] = {

    { ngx_string("avatar_user_id"), NULL, ngx_http_avatar_variable,
      offsetof(ngx_http_avatar_claims_t, user_id), 0, 0 },

    { ngx_string("avatar_role"), NULL, ngx_http_avatar_variable,
      offsetof(ngx_http_avatar_claims_t, role), 0, 0 },

    { ngx_string("avatar_dealership_id"), NULL, ngx_http_avatar_variable,
      offsetof(ngx_http_avatar_claims_t, dealership_id), 0, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_avatar_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_avatar_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_avatar_copy_claim(ngx_http_request_t *r, avc_token_t *tok,
    const char *name, ngx_str_t *out)
{
    const char  *s;

    s = avc_token_claim(tok, name);
    if (s == NULL) {
        return NGX_OK;
    }

    out->len = ngx_strlen(s);
    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s, out->len);

    return NGX_OK;
}


/* The token of a request: "Authorization: Bearer ...", or a socket's */

static ngx_int_t
ngx_http_avatar_token(ngx_http_request_t *r, ngx_str_t *tok)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        /* a voice socket's token came another way */
        return ngx_http_avatar_ws_token(r, tok);
    }

    p = h->value.data + 7;
    last = h->value.data + h->value.len;

    while (p < last && *p == ' ') {
        p++;
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    tok->data = p;
    tok->len = last - p;

    return NGX_OK;
}


/* marks the pool cleanup that carries a request's claims */
static void
ngx_http_avatar_claims_mark(void *data)
{
}


static ngx_int_t
ngx_http_avatar_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                     tok, *value;
    avc_token_t                  *t;
    ngx_pool_cleanup_t           *cln;
    ngx_http_request_t           *mr;
    ngx_http_avatar_claims_t     *claims;
    ngx_http_avatar_main_conf_t  *amcf;

    mr = r->main;
    amcf = ngx_http_get_module_main_conf(r, ngx_http_avatar_module);

    /* the three variables share one verification per request */

    claims = NULL;

    for (cln = mr->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_avatar_claims_mark) {
            claims = cln->data;
            break;
        }
    }

    if (claims == NULL) {
        cln = ngx_pool_cleanup_add(mr->pool,
                                   sizeof(ngx_http_avatar_claims_t));
        if (cln == NULL) {
            return NGX_ERROR;
        }

        claims = cln->data;
        ngx_memzero(claims, sizeof(ngx_http_avatar_claims_t));
        cln->handler = ngx_http_avatar_claims_mark;

        if (amcf->secret.len
            && ngx_http_avatar_token(mr, &tok) == NGX_OK
            && avc_token_verify(amcf->secret.data, amcf->secret.len,
                                (char *) tok.data, tok.len, "access",
                                (long long) ngx_time(), &t) == AVC_OK)
        {
            if (ngx_http_avatar_copy_claim(mr, t, "sub", &claims->user_id)
                != NGX_OK
                || ngx_http_avatar_copy_claim(mr, t, "role", &claims->role)
                   != NGX_OK
                || ngx_http_avatar_copy_claim(mr, t, "dealership_id",
                                              &claims->dealership_id)
                   != NGX_OK)
            {
                avc_token_free(t);
                return NGX_ERROR;
            }

            avc_token_free(t);
        }
    }

    value = (ngx_str_t *) ((char *) claims + data);

    if (value->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = value->data;

    return NGX_OK;
}
