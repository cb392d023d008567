/*
 * avatarcore/core.h - version, error codes, logging and configuration of
 * libavatarcore.
 *
 * Conventions that hold for every header of the library:
 *
 *   - Public names start with avc_ (types avc_*_t, macros AVC_*).
 *   - Handles are opaque; each has a create/destroy pair and destroy(NULL)
 *     is a no-op.
 *   - A function that returns an error never also calls its callback.
 *   - Returned "const char *" strings are borrowed: they stay valid as long
 *     as the object that returned them, and must not be freed.  Returned
 *     "char *" strings are new: free them with free().
 *   - Thread safety: a loop (avatarcore/loop.h) and every object created on
 *     it belong to the thread running that loop.  Functions documented as
 *     "thread-safe" may be called from any thread.  Work handed to the
 *     thread pool (avc_offload) must touch only its own data.
 */
#ifndef AVATARCORE_CORE_H
#define AVATARCORE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(AVC_BUILDING)
#define AVC_API __attribute__((visibility("default")))
#else
#define AVC_API
#endif

#if defined(__GNUC__)
#define AVC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AVC_PRINTF(f, a)
#endif

#define AVC_VERSION_MAJOR 0
#define AVC_VERSION_MINOR 1
#define AVC_VERSION_PATCH 0
#define AVC_VERSION_NUM   ((AVC_VERSION_MAJOR << 16) \
                           | (AVC_VERSION_MINOR << 8) | AVC_VERSION_PATCH)
#define AVC_VERSION_STRING "0.1.0"

/* The version of the library actually loaded, e.g. "0.1.0". */
AVC_API const char *avc_version(void);
AVC_API unsigned avc_version_num(void);

/*
 * Error codes.  Append-only: a code is never renumbered or reused.
 * Functions return AVC_OK (0) on success and a negative code on failure.
 */
typedef enum {
    AVC_OK = 0,
    AVC_ENOMEM = -1,         /* out of memory */
    AVC_EINVAL = -2,         /* invalid argument */
    AVC_ESYS = -3,           /* system call failed (see errno) */
    AVC_ECANCELED = -4,      /* operation cancelled */
    AVC_ETIMEDOUT = -5,      /* deadline passed */
    AVC_ECONNECT = -6,       /* could not connect */
    AVC_EPROTO = -7,         /* peer violated its protocol */
    AVC_EHTTP = -8,          /* HTTP transfer failed */
    AVC_EUPSTREAM = -9,      /* provider answered with an error status */
    AVC_EDB = -10,           /* database reported an error */
    AVC_EDBCONN = -11,       /* database connection unavailable */
    AVC_ENOTFOUND = -12,     /* no such object */
    AVC_ECONFLICT = -13,     /* object already exists */
    AVC_ETOOBIG = -14,       /* input over a limit */
    AVC_EPARSE = -15,        /* malformed input */
    AVC_EBUSY = -16,         /* resource busy, try again */
    AVC_ESTATE = -17,        /* call not valid in the object's state */
    AVC_EVERSION = -18,      /* version mismatch (e.g. newer schema) */
    AVC_EAUTH = -19,         /* authentication failed */
    AVC_EFORBIDDEN = -20     /* not allowed */
} avc_err_t;

/* A static, human-readable message for an error code; never NULL. */
AVC_API const char *avc_strerror(int err);

/* The symbolic name of an error code, e.g. "AVC_ETIMEDOUT". */
AVC_API const char *avc_err_name(int err);

/*
 * Logging.  The library never writes to stdout or stderr; it reports
 * through a callback supplied by the host.  Levels follow syslog.
 */
typedef enum {
    AVC_LOG_ERR = 3,
    AVC_LOG_WARN = 4,
    AVC_LOG_NOTICE = 5,
    AVC_LOG_INFO = 6,
    AVC_LOG_DEBUG = 7
} avc_log_level_t;

typedef void (*avc_log_cb)(void *data, avc_log_level_t level,
                           const char *msg);

/*
 * Set the process-wide log callback and the most verbose level passed to
 * it.  NULL restores the default, which discards messages.  Call it before
 * starting loops; the callback itself may be called from any thread (from
 * thread-pool work), so it must be thread-safe.
 */
AVC_API void avc_log_set(avc_log_cb cb, void *data, avc_log_level_t max);

AVC_API void avc_log(avc_log_level_t level, const char *fmt, ...)
    AVC_PRINTF(2, 3);

/*
 * Configuration: a flat set of string keys and values, e.g.
 * "database" = "host=... dbname=...", "llm.base_url" = "...".  Keys are
 * documented where they are read.  A config is built once, then shared
 * read-only by the objects created from it, so it must outlive them.
 */
typedef struct avc_config_s avc_config_t;

AVC_API avc_config_t *avc_config_new(void);
AVC_API void avc_config_free(avc_config_t *cfg);

/* Set (copying key and value) or, with value NULL, remove a key. */
AVC_API int avc_config_set(avc_config_t *cfg, const char *key,
                           const char *value);

/* The value of key (borrowed), or def when unset. */
AVC_API const char *avc_config_get(const avc_config_t *cfg, const char *key,
                                   const char *def);

/*
 * Integer value with range check: AVC_OK, AVC_EINVAL when the value is not
 * an integer in [min, max] (then *out is left unchanged).  Unset gives def.
 */
AVC_API int avc_config_get_int(const avc_config_t *cfg, const char *key,
                               long long def, long long min, long long max,
                               long long *out);

/*
 * Read the value of key from a secret source: "env:NAME" reads the
 * environment variable NAME, "file:/path" reads a file (trailing newline
 * stripped).  Returns a new string or NULL with *err set.
 */
AVC_API char *avc_secret_load(const char *source, int *err);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_CORE_H */
