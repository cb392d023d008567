/*
 * Passwords: bcrypt through libxcrypt's reentrant calls, the password
 * policy, and random passwords (see auth.h).
 *
 * struct crypt_data is about 32 KiB: it is allocated, not put on the
 * stack of a thread-pool thread, and wiped after use because it holds
 * the password's key schedule.
 */
#include "internal.h"

#include <avatarcore/auth.h>

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define AVC_BCRYPT_LEN 60

/* a cost-12 hash of a password no account has */
static const char avc_password_dummy[] =
    "$2b$12$e0VBd93Zf6gf0/ppG2Rztu5m8pG0z5JQm9dwOz2JwrFD68cIIjsRW";

AVC_API const char *
avc_password_dummy_hash(void)
{
    return avc_password_dummy;
}

/* "$2a$", "$2b$" or "$2y$", two cost digits, "$", 53 of [./A-Za-z0-9] */
static int
avc_password_is_bcrypt(const char *h)
{
    size_t i;

    if (strlen(h) != AVC_BCRYPT_LEN || h[0] != '$' || h[1] != '2'
        || (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$'
        || h[4] < '0' || h[4] > '3' || h[5] < '0' || h[5] > '9'
        || h[6] != '$')
    {
        return 0;
    }
    for (i = 7; i < AVC_BCRYPT_LEN; i++) {
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z')
              || (h[i] >= '0' && h[i] <= '9') || h[i] == '.'
              || h[i] == '/'))
        {
            return 0;
        }
    }
    return 1;
}

AVC_API int
avc_password_hash_cost(const char *pw, unsigned cost, char **out)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    const char *h;
    int rc;

    if (out == NULL) {
        return AVC_EINVAL;
    }
    *out = NULL;
    if (pw == NULL || *pw == '\0' || cost < 4 || cost > 31) {
        return AVC_EINVAL;
    }
    if (strlen(pw) > AVC_PASSWORD_MAX_BYTES) {
        return AVC_ETOOBIG;
    }
    /* NULL random bytes: libxcrypt reads them from the kernel */
    if (crypt_gensalt_rn("$2b$", cost, NULL, 0, salt, (int) sizeof(salt))
        == NULL)
    {
        return AVC_ESYS;
    }
    cd = calloc(1, sizeof(*cd));
    if (cd == NULL) {
        return AVC_ENOMEM;
    }
    h = crypt_r(pw, salt, cd);
    if (h == NULL || !avc_password_is_bcrypt(h)) {
        rc = AVC_ESYS;
    } else {
        *out = strdup(h);
        rc = *out ? AVC_OK : AVC_ENOMEM;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return rc;
}

AVC_API int
avc_password_hash(const char *pw, char **out)
{
    return avc_password_hash_cost(pw, AVC_PASSWORD_COST, out);
}

AVC_API int
avc_password_verify(const char *pw, const char *hash)
{
    struct crypt_data *cd;
    const char *h;
    unsigned char diff = 0;
    size_t i;
    int rc;

    if (pw == NULL || hash == NULL || !avc_password_is_bcrypt(hash)) {
        return AVC_EINVAL;
    }
    if (strlen(pw) > AVC_PASSWORD_MAX_BYTES) {
        return AVC_EAUTH;
    }
    cd = calloc(1, sizeof(*cd));
    if (cd == NULL) {
        return AVC_ENOMEM;
    }
    h = crypt_r(pw, hash, cd);
    if (h == NULL || strlen(h) != AVC_BCRYPT_LEN) {
        rc = AVC_EINVAL;
    } else {
        /* no early exit: the time must not depend on where they differ */
        for (i = 0; i < AVC_BCRYPT_LEN; i++) {
            diff |= (unsigned char) (h[i] ^ hash[i]);
        }
        rc = diff == 0 ? AVC_OK : AVC_EAUTH;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return rc;
}

AVC_API int
avc_password_policy(const char *pw, const char **why)
{
    const unsigned char *p;
    size_t bytes, chars = 0;
    int upper = 0, lower = 0, digit = 0, special = 0, control = 0;
    const char *w = NULL;

    if (pw == NULL) {
        w = "Password is required";
        goto done;
    }
    bytes = strlen(pw);
    if (!avc__utf8_valid(pw, bytes)) {
        w = "Password must be valid UTF-8";
        goto done;
    }
    for (p = (const unsigned char *) pw; *p; p++) {
        if ((*p & 0xc0) != 0x80) {
            chars++;
        }
        if (*p < 0x20 || *p == 0x7f) {
            control = 1;
        } else if (*p >= 'A' && *p <= 'Z') {
            upper = 1;
        } else if (*p >= 'a' && *p <= 'z') {
            lower = 1;
        } else if (*p >= '0' && *p <= '9') {
            digit = 1;
        } else if (*p != ' ') {
            special = 1;                /* punctuation or non-ASCII */
        }
    }
    if (control) {
        w = "Password must not contain control characters";
    } else if (chars < AVC_PASSWORD_MIN_CHARS) {
        w = "Password must be at least 8 characters long";
    } else if (chars > AVC_PASSWORD_MAX_CHARS) {
        w = "Password must be at most 100 characters long";
    } else if (bytes > AVC_PASSWORD_MAX_BYTES) {
        w = "Password must be at most 72 bytes long";
    } else if (!upper) {
        w = "Password must contain at least one uppercase letter";
    } else if (!lower) {
        w = "Password must contain at least one lowercase letter";
    } else if (!digit) {
        w = "Password must contain at least one digit";
    } else if (!special) {
        w = "Password must contain at least one special character";
    }

done:
    if (why) {
        *why = w;
    }
    return w ? AVC_EINVAL : AVC_OK;
}

/* uniform index below n (n <= 256) from a pool of random bytes */
static int
avc_password_pick(unsigned char *pool, size_t *left, size_t size,
    unsigned n)
{
    unsigned limit = 256 - 256 % n;
    ssize_t got;
    unsigned char b;

    for ( ;; ) {
        if (*left == 0) {
            got = getrandom(pool, size, 0);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) {
                    continue;
                }
                return -1;
            }
            *left = (size_t) got;
        }
        b = pool[--*left];
        if (b < limit) {
            return (int) (b % n);
        }
    }
}

AVC_API int
avc_password_generate(char *out, size_t len)
{
    /* no look-alikes (I O l 0 1); specials inert in shells and URLs; a
     * letter first, so it never reads as a command-line option */
    static const char letters[] =
        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    static const char all[] =
        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.,";
    unsigned char pool[64];
    size_t left = 0, i;
    int tries, k;

    if (out == NULL || len < 12 || len > AVC_PASSWORD_MAX_BYTES) {
        return AVC_EINVAL;
    }
    for (tries = 0; tries < 1000; tries++) {
        for (i = 0; i < len; i++) {
            if (i == 0) {
                k = avc_password_pick(pool, &left, sizeof(pool),
                                      sizeof(letters) - 1);
                out[i] = letters[k < 0 ? 0 : k];
            } else {
                k = avc_password_pick(pool, &left, sizeof(pool),
                                      sizeof(all) - 1);
                out[i] = all[k < 0 ? 0 : k];
            }
            if (k < 0) {
                explicit_bzero(pool, sizeof(pool));
                explicit_bzero(out, len);
                return AVC_ESYS;
            }
        }
        out[len] = '\0';
        if (avc_password_policy(out, NULL) == AVC_OK) {
            explicit_bzero(pool, sizeof(pool));
            return AVC_OK;
        }
    }
    explicit_bzero(pool, sizeof(pool));
    return AVC_ESYS;
}
