/*
 * JWT attacks and checks: alg none, HS512 with the right key, wrong key,
 * tampered payload, expiry, token type, malformed encodings.
 */
#include <avatarcore/token.h>

#include "tap.h"

#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

static const char key[] = "0123456789abcdef0123456789abcdef";
#define KL (sizeof(key) - 1)
#define NOW 1800000000LL

static int
verify(const char *tok, const char *type)
{
    avc_token_t *t = NULL;
    int rc = avc_token_verify(key, KL, tok, strlen(tok), type, NOW, &t);

    if ((rc == AVC_OK) != (t != NULL)) {
        return 99;
    }
    avc_token_free(t);
    return rc;
}

static void
b64url(const unsigned char *p, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i, o = 0;
    unsigned v;

    for (i = 0; i < n; i += 3) {
        v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0)
            | (i + 2 < n ? p[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n) out[o++] = a[v >> 6 & 63];
        if (i + 2 < n) out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

/* a token made by hand: any header, any payload, signed with md */
static char *
forge(const char *header, const char *payload, const EVP_MD *md,
    const char *k)
{
    char *s = malloc(4096), sig[200];
    unsigned char mac[64];
    unsigned int maclen = 0;

    b64url((const unsigned char *) header, strlen(header), s);
    strcat(s, ".");
    b64url((const unsigned char *) payload, strlen(payload), s + strlen(s));
    if (md) {
        HMAC(md, k, (int) strlen(k), (unsigned char *) s, strlen(s), mac,
             &maclen);
        b64url(mac, maclen, sig);
        strcat(s, ".");
        strcat(s, sig);
    } else {
        strcat(s, ".");
    }
    return s;
}

int
main(void)
{
    char *good, *tok, *p;
    avc_token_t *t;
    const char *claims = "{\"sub\":\"42\",\"type\":\"access\",\"role\":"
                         "\"user\",\"dealership_id\":7,\"exp\":1800001800,"
                         "\"iat\":1800000000,\"jti\":\"abc\"}";
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

    good = avc_token_sign(key, KL, claims);
    TAP_OK(good != NULL, "a token is signed");
    TAP_IS(verify(good, "access"), AVC_OK, "and verifies");

    TAP_IS(avc_token_verify(key, KL, good, strlen(good), "access", NOW, &t),
           AVC_OK, "claims are readable");
    TAP_STR(avc_token_claim(t, "sub"), "42", "sub");
    TAP_STR(avc_token_claim(t, "dealership_id"), "7", "an integer claim");
    TAP_STR(avc_token_claim(t, "role"), "user", "role");
    TAP_OK(avc_token_claim(t, "nope") == NULL, "an absent claim is NULL");
    avc_token_free(t);

    TAP_IS(verify(good, "refresh"), AVC_EAUTH,
           "an access token is not a refresh token");

    tok = avc_token_sign(key, KL, "{\"sub\":\"42\",\"type\":\"refresh\","
                         "\"exp\":1800001800}");
    TAP_IS(verify(tok, "access"), AVC_EAUTH,
           "a refresh token is refused as an access token");
    free(tok);

    tok = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL, NULL);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "alg none is refused");
    free(tok);

    tok = forge("{\"alg\":\"None\"}", claims, EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH,
           "alg None with a valid HS256 signature is refused");
    free(tok);

    tok = forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", claims, EVP_sha512(),
                key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH,
           "HS512 signed with the right key is refused");
    free(tok);

    tok = forge(hs, claims, EVP_sha256(), "another key of the same length!!");
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a wrong key is refused");
    free(tok);

    tok = forge(hs, claims, EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_OK, "a hand-made token verifies");
    free(tok);

    /* tamper with the payload, keep the signature */
    tok = strdup(good);
    p = strchr(tok, '.') + 5;
    *p = *p == 'A' ? 'B' : 'A';
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a tampered payload is refused");
    free(tok);

    tok = forge(hs, "{\"sub\":\"42\",\"type\":\"access\",\"exp\":1799999999}",
                EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "an expired token is refused");
    free(tok);

    tok = forge(hs, "{\"sub\":\"42\",\"type\":\"access\"}", EVP_sha256(),
                key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a token without exp is refused");
    free(tok);

    tok = forge(hs, "{\"sub\":\"42\",\"type\":\"access\",\"exp\":\"never\"}",
                EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a string exp is refused");
    free(tok);

    tok = forge(hs, "{\"sub\":\"42\",\"type\":\"access\",\"exp\":1800001800,"
                "\"iat\":1900000000}", EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH,
           "a token issued in the future is refused");
    free(tok);

    tok = forge(hs, "{\"type\":\"access\",\"exp\":1800001800}", EVP_sha256(),
                key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a token without sub is refused");
    free(tok);

    tok = forge(hs, "{\"sub\":\"1\",\"sub\":\"42\",\"type\":\"access\","
                "\"exp\":1800001800}", EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "duplicate claims are refused");
    free(tok);

    tok = forge("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", claims,
                EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH,
           "unknown critical extensions are refused");
    free(tok);

    tok = forge(hs, "[1,2,3]", EVP_sha256(), key);
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a non-object payload is refused");
    free(tok);

    TAP_IS(verify("", "access"), AVC_EAUTH, "an empty token is refused");
    TAP_IS(verify("a.b", "access"), AVC_EAUTH, "two parts are refused");
    TAP_IS(verify("a.b.c.d", "access"), AVC_EAUTH, "four parts are refused");
    tok = malloc(strlen(good) + 3);
    strcpy(tok, good);
    strcat(tok, "==");
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "padding is refused");
    free(tok);
    tok = strdup(good);
    tok[strlen(tok) - 1] = tok[strlen(tok) - 1] == 'A' ? 'B' : 'A';
    TAP_IS(verify(tok, "access"), AVC_EAUTH, "a changed signature is refused");
    free(tok);

    TAP_OK(avc_token_sign(key, KL, "not json") == NULL,
           "signing needs a JSON object");
    TAP_OK(avc_token_verify(key, 0, good, strlen(good), "access", NOW, &t)
           == AVC_EAUTH, "no key, no verification");
    free(good);
    return tap_done();
}
