/*
 * HS256 JSON Web Tokens, with every check done here (see token.h).
 */
#include "internal.h"

#include <avatarcore/token.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tokens longer than this are refused before any parsing */
#define AVC_TOKEN_MAX 8192
#define AVC_TOKEN_SKEW 60

struct avc_token_s {
    json_t *claims;
    /* text forms of claims handed out, kept until free */
    json_t *texts;
};

static int
avc_b64url_val(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

/* Strict decoding: no padding, no other characters, no stray bits. */
static int
avc_b64url_decode(const char *s, size_t n, unsigned char *out, size_t *olen)
{
    size_t i, o = 0;
    unsigned v = 0;
    int bits = 0, d;

    if (n % 4 == 1) {
        return AVC_EPARSE;
    }
    for (i = 0; i < n; i++) {
        d = avc_b64url_val((unsigned char) s[i]);
        if (d < 0) {
            return AVC_EPARSE;
        }
        v = (v << 6) | (unsigned) d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char) (v >> bits);
            v &= (1u << bits) - 1;
        }
    }
    if (v != 0) {
        return AVC_EPARSE;
    }
    *olen = o;
    return AVC_OK;
}

static int
avc_hs256(const void *key, size_t keylen, const char *msg, size_t len,
    unsigned char mac[32])
{
    unsigned int maclen = 0;

    if (HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) msg,
             len, mac, &maclen) == NULL || maclen != 32)
    {
        return AVC_EINVAL;
    }
    return AVC_OK;
}

AVC_API char *
avc_token_sign(const void *key, size_t keylen, const char *claims_json)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    unsigned char mac[32];
    json_t *claims;
    char *compact;
    avc__buf_t b;
    int rc;

    if (key == NULL || keylen == 0 || claims_json == NULL) {
        return NULL;
    }
    claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    compact = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    if (compact == NULL) {
        return NULL;
    }
    avc__buf_init(&b);
    rc = avc__buf_base64(&b, header, sizeof(header) - 1, 1);
    rc |= avc__buf_append(&b, ".", 1);
    rc |= avc__buf_base64(&b, compact, strlen(compact), 1);
    free(compact);
    if (rc != AVC_OK || avc_hs256(key, keylen, b.data, b.len, mac) != AVC_OK)
    {
        avc__buf_free(&b);
        return NULL;
    }
    rc = avc__buf_append(&b, ".", 1);
    rc |= avc__buf_base64(&b, mac, sizeof(mac), 1);
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}

static json_t *
avc_decode_object(const char *s, size_t n)
{
    unsigned char buf[AVC_TOKEN_MAX];
    size_t len;

    if (n > sizeof(buf) * 4 / 3
        || avc_b64url_decode(s, n, buf, &len) != AVC_OK)
    {
        return NULL;
    }
    /* duplicate keys could make two readers see two different claims */
    return json_loadb((const char *) buf, len, JSON_REJECT_DUPLICATES, NULL);
}

AVC_API int
avc_token_verify(const void *key, size_t keylen, const char *token,
    size_t len, const char *type, long long now, avc_token_t **out)
{
    const char *dot1, *dot2, *end = token + len;
    unsigned char mac[32], sig[48];
    size_t siglen;
    json_t *header = NULL, *claims = NULL, *v;
    avc_token_t *tok;

    *out = NULL;
    if (key == NULL || keylen == 0 || token == NULL || len == 0
        || len > AVC_TOKEN_MAX)
    {
        return AVC_EAUTH;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t) (end - dot1 - 1)) : NULL;
    if (dot1 == NULL || dot2 == NULL
        || memchr(dot2 + 1, '.', (size_t) (end - dot2 - 1)) != NULL)
    {
        return AVC_EAUTH;
    }

    /* the algorithm is fixed by us, never chosen by the token */
    header = avc_decode_object(token, (size_t) (dot1 - token));
    v = json_object_get(header, "alg");
    if (!json_is_object(header) || !json_is_string(v)
        || strcmp(json_string_value(v), "HS256") != 0)
    {
        goto invalid;
    }
    v = json_object_get(header, "crit");
    if (v != NULL) {
        goto invalid;           /* no extensions are understood */
    }

    if ((size_t) (end - dot2 - 1) != 43
        || avc_b64url_decode(dot2 + 1, 43, sig, &siglen) != AVC_OK
        || siglen != 32
        || avc_hs256(key, keylen, token, (size_t) (dot2 - token), mac)
           != AVC_OK
        || CRYPTO_memcmp(mac, sig, 32) != 0)
    {
        goto invalid;
    }

    claims = avc_decode_object(dot1 + 1, (size_t) (dot2 - dot1 - 1));
    if (!json_is_object(claims)) {
        goto invalid;
    }
    v = json_object_get(claims, "exp");
    if (!json_is_number(v) || json_number_value(v) <= (double) now) {
        goto invalid;
    }
    v = json_object_get(claims, "iat");
    if (v != NULL && (!json_is_number(v)
                      || json_number_value(v) > (double) (now
                                                          + AVC_TOKEN_SKEW)))
    {
        goto invalid;
    }
    v = json_object_get(claims, "type");
    if (type == NULL || !json_is_string(v)
        || strcmp(json_string_value(v), type) != 0)
    {
        goto invalid;
    }
    v = json_object_get(claims, "sub");
    if (!json_is_string(v) || json_string_length(v) == 0) {
        goto invalid;
    }

    json_decref(header);
    tok = calloc(1, sizeof(*tok));
    if (tok == NULL || (tok->texts = json_object()) == NULL) {
        free(tok);
        json_decref(claims);
        return AVC_ENOMEM;
    }
    tok->claims = claims;
    *out = tok;
    return AVC_OK;

invalid:
    json_decref(header);
    json_decref(claims);
    return AVC_EAUTH;
}

AVC_API const char *
avc_token_claim(const avc_token_t *tok, const char *name)
{
    json_t *v, *t;
    char buf[32];

    if (tok == NULL || name == NULL) {
        return NULL;
    }
    v = json_object_get(tok->claims, name);
    if (json_is_string(v)) {
        return json_string_value(v);
    }
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
    } else if (json_is_true(v) || json_is_false(v)) {
        strcpy(buf, json_is_true(v) ? "true" : "false");
    } else {
        return NULL;
    }
    t = json_object_get(tok->texts, name);
    if (t == NULL) {
        t = json_string(buf);
        if (t == NULL || json_object_set_new(tok->texts, name, t) != 0) {
            return NULL;
        }
    }
    return json_string_value(t);
}

AVC_API void
avc_token_free(avc_token_t *tok)
{
    if (tok == NULL) {
        return;
    }
    json_decref(tok->claims);
    json_decref(tok->texts);
    free(tok);
}
