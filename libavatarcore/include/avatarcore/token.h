/*
 * avatarcore/token.h - JSON Web Tokens, HS256 only.
 *
 * Verification checks everything itself, in this order: three base64url
 * parts; a header that is a JSON object whose "alg" is exactly "HS256"
 * (so "none", HS512 or RS256 are refused whatever the key); the HMAC-SHA256
 * signature, compared in constant time; a payload that is a JSON object;
 * "exp" a number in the future; "iat", when present, not in the future
 * (60 s of clock skew allowed); "type" equal to the expected type; "sub"
 * a non-empty string.  Any failure is AVC_EAUTH; no partial claims leak.
 *
 * All functions are thread-safe and do not block.
 */
#ifndef AVATARCORE_TOKEN_H
#define AVATARCORE_TOKEN_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_token_s avc_token_t;

/*
 * Sign a token.  claims_json is a JSON object text ("exp", "iat", "type",
 * "sub" ... chosen by the caller).  Returns a new string (free()) or NULL
 * on bad input or out of memory.
 */
AVC_API char *avc_token_sign(const void *key, size_t keylen,
                             const char *claims_json);

/*
 * Verify token (len bytes) with key at time now (Unix seconds), expecting
 * "type" == type.  On success *out is a new token object (free with
 * avc_token_free) and AVC_OK is returned; otherwise AVC_EAUTH (or
 * AVC_ENOMEM) and *out is NULL.
 */
AVC_API int avc_token_verify(const void *key, size_t keylen,
                             const char *token, size_t len, const char *type,
                             long long now, avc_token_t **out);

/*
 * A claim of a verified token as text (borrowed from tok): strings as they
 * are, integers in decimal, true/false; NULL when absent, null, or an
 * object or array.
 */
AVC_API const char *avc_token_claim(const avc_token_t *tok, const char *name);

AVC_API void avc_token_free(avc_token_t *tok);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_TOKEN_H */
