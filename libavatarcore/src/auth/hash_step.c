/*
 * Hashing a password for an operation: bcrypt on the thread pool, never
 * on the loop.  The step owns a copy of the password, wipes it when the
 * work is done (even when the call went away meanwhile), and answers 500
 * itself if hashing fails, so an operation only sees a hash.
 */
#include "../app/app_int.h"

#include <avatarcore/auth.h>

#include <stdlib.h>
#include <string.h>

typedef struct {
    char pw[AVC_PASSWORD_MAX_BYTES + 1];
    char *hash;
    int err;
    void (*done)(avc_call_t *call, const char *hash);
} avc_hash_job_t;

static void
avc_hash_job_free(void *p)
{
    avc_hash_job_t *j = p;

    explicit_bzero(j->pw, sizeof(j->pw));
    if (j->hash) {
        explicit_bzero(j->hash, strlen(j->hash));
        free(j->hash);
    }
    free(j);
}

static void
avc_hash_work(void *p)
{
    avc_hash_job_t *j = p;

    j->err = avc_password_hash(j->pw, &j->hash);
}

static void
avc_hash_done(avc_call_t *call, void *p)
{
    avc_hash_job_t *j = p;

    if (j->err != AVC_OK || j->hash == NULL) {
        avc_log(AVC_LOG_ERR, "%s %s: cannot hash the password: %s",
                call->method, call->path, avc_strerror(j->err));
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    j->done(call, j->hash);
}

int
avc__hash_password(avc_call_t *call, const char *pw,
    void (*done)(avc_call_t *call, const char *hash))
{
    avc_hash_job_t *j;
    int rc;

    if (strlen(pw) > AVC_PASSWORD_MAX_BYTES) {
        return AVC_ETOOBIG;     /* the policy refuses these before */
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return AVC_ENOMEM;
    }
    memcpy(j->pw, pw, strlen(pw) + 1);
    j->done = done;
    rc = avc__offload(call, avc_hash_work, avc_hash_done, j,
                      avc_hash_job_free);
    if (rc != AVC_OK) {
        avc_hash_job_free(j);
    }
    return rc;
}
