/*
 * avatarcore/auth.h - passwords: hashing, verification, policy.
 *
 * Hashes are bcrypt "$2b$" strings (cost 12, about 0.2 s of CPU) made
 * with libxcrypt; hashes written by other bcrypt implementations ($2a$,
 * $2y$, e.g. the previous Python server's) verify too.  bcrypt reads only
 * the first 72 bytes of a password, so longer ones are refused rather
 * than silently truncated.
 *
 * Thread safety: every function here is thread-safe.  avc_password_hash
 * and avc_password_verify are slow on purpose and block: a caller on a
 * loop must run them with avc_offload(), never on the loop itself.
 */
#ifndef AVATARCORE_AUTH_H
#define AVATARCORE_AUTH_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVC_PASSWORD_COST       12
#define AVC_PASSWORD_MIN_CHARS  8
#define AVC_PASSWORD_MAX_CHARS  100
#define AVC_PASSWORD_MAX_BYTES  72

/*
 * Hash pw with a fresh random salt.  On AVC_OK *out is a new string
 * (free() it).  Errors: AVC_EINVAL (NULL or empty), AVC_ETOOBIG (over 72
 * bytes), AVC_ENOMEM, AVC_ESYS (no randomness, or libxcrypt refused).
 * Blocking; thread-safe.
 */
AVC_API int avc_password_hash(const char *pw, char **out);

/* The same with another cost (4-31), for tests and benchmarks. */
AVC_API int avc_password_hash_cost(const char *pw, unsigned cost,
                                   char **out);

/*
 * Check pw against a bcrypt hash, in constant time for the comparison.
 * AVC_OK when it matches, AVC_EAUTH when it does not (also for a password
 * over 72 bytes, which no hash of ours can match), AVC_EINVAL for a hash
 * that is not bcrypt, AVC_ENOMEM.  Blocking; thread-safe.
 */
AVC_API int avc_password_verify(const char *pw, const char *hash);

/*
 * A valid cost-12 hash that no account uses: verify against it when the
 * account does not exist, so that a login takes the same time whether or
 * not the e-mail address is known.  Static.
 */
AVC_API const char *avc_password_dummy_hash(void);

/*
 * The password policy of API.md: 8-100 characters (UTF-8, counted as
 * characters), at most 72 bytes, at least one upper-case letter, one
 * lower-case letter and one digit (all ASCII) and one special character
 * (ASCII punctuation or any non-ASCII character), no control characters.
 * AVC_OK, or AVC_EINVAL with *why (if why is non-NULL) set to a static
 * English sentence for the 422 details.  Thread-safe, fast.
 */
AVC_API int avc_password_policy(const char *pw, const char **why);

/*
 * Write a random password of len characters (12-72) that satisfies the
 * policy into out (which holds len + 1 bytes).  Its specials avoid
 * characters that shells and URLs treat specially.  AVC_OK, AVC_EINVAL or
 * AVC_ESYS (no randomness).  Thread-safe.
 */
AVC_API int avc_password_generate(char *out, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_AUTH_H */
