/*
 * Version, error codes, logging, configuration and secrets.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

AVC_API const char *
avc_version(void)
{
    return AVC_VERSION_STRING;
}

AVC_API unsigned
avc_version_num(void)
{
    return AVC_VERSION_NUM;
}

static const struct {
    const char *name;
    const char *msg;
} avc_errors[] = {
    { "AVC_OK", "success" },
    { "AVC_ENOMEM", "out of memory" },
    { "AVC_EINVAL", "invalid argument" },
    { "AVC_ESYS", "system call failed" },
    { "AVC_ECANCELED", "operation cancelled" },
    { "AVC_ETIMEDOUT", "deadline passed" },
    { "AVC_ECONNECT", "could not connect" },
    { "AVC_EPROTO", "protocol violation by the peer" },
    { "AVC_EHTTP", "HTTP transfer failed" },
    { "AVC_EUPSTREAM", "provider answered with an error" },
    { "AVC_EDB", "database error" },
    { "AVC_EDBCONN", "database unavailable" },
    { "AVC_ENOTFOUND", "not found" },
    { "AVC_ECONFLICT", "already exists" },
    { "AVC_ETOOBIG", "input over a limit" },
    { "AVC_EPARSE", "malformed input" },
    { "AVC_EBUSY", "resource busy" },
    { "AVC_ESTATE", "call not valid in this state" },
    { "AVC_EVERSION", "version mismatch" },
    { "AVC_EAUTH", "authentication failed" },
    { "AVC_EFORBIDDEN", "not allowed" },
};

AVC_API const char *
avc_strerror(int err)
{
    if (err > 0 || (size_t) -err >= avc__countof(avc_errors)) {
        return "unknown error";
    }
    return avc_errors[-err].msg;
}

AVC_API const char *
avc_err_name(int err)
{
    if (err > 0 || (size_t) -err >= avc__countof(avc_errors)) {
        return "AVC_EUNKNOWN";
    }
    return avc_errors[-err].name;
}

/* logging */

static avc_log_cb avc_log_fn;
static void *avc_log_data;
static avc_log_level_t avc_log_max = AVC_LOG_INFO;

AVC_API void
avc_log_set(avc_log_cb cb, void *data, avc_log_level_t max)
{
    avc_log_fn = cb;
    avc_log_data = data;
    avc_log_max = max;
}

AVC_API void
avc_log(avc_log_level_t level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    avc_log_cb fn = avc_log_fn;

    if (fn == NULL || level > avc_log_max) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fn(avc_log_data, level, msg);
}

/* configuration: a small sorted-by-insertion list; lookups are rare */

typedef struct avc_kv_s {
    struct avc_kv_s *next;
    char *key;
    char *value;
} avc_kv_t;

struct avc_config_s {
    avc_kv_t *head;
};

AVC_API avc_config_t *
avc_config_new(void)
{
    return calloc(1, sizeof(avc_config_t));
}

AVC_API void
avc_config_free(avc_config_t *cfg)
{
    avc_kv_t *kv, *next;

    if (cfg == NULL) {
        return;
    }
    for (kv = cfg->head; kv; kv = next) {
        next = kv->next;
        free(kv->key);
        free(kv->value);
        free(kv);
    }
    free(cfg);
}

AVC_API int
avc_config_set(avc_config_t *cfg, const char *key, const char *value)
{
    avc_kv_t **pp, *kv;
    char *v = NULL;

    if (cfg == NULL || key == NULL) {
        return AVC_EINVAL;
    }
    if (value && (v = strdup(value)) == NULL) {
        return AVC_ENOMEM;
    }
    for (pp = &cfg->head; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            kv = *pp;
            if (v == NULL) {
                *pp = kv->next;
                free(kv->key);
                free(kv->value);
                free(kv);
            } else {
                free(kv->value);
                kv->value = v;
            }
            return AVC_OK;
        }
    }
    if (v == NULL) {
        return AVC_OK;
    }
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL || (kv->key = strdup(key)) == NULL) {
        free(kv);
        free(v);
        return AVC_ENOMEM;
    }
    kv->value = v;
    *pp = kv;
    return AVC_OK;
}

AVC_API const char *
avc_config_get(const avc_config_t *cfg, const char *key, const char *def)
{
    const avc_kv_t *kv;

    if (cfg == NULL || key == NULL) {
        return def;
    }
    for (kv = cfg->head; kv; kv = kv->next) {
        if (strcmp(kv->key, key) == 0) {
            return kv->value;
        }
    }
    return def;
}

AVC_API int
avc_config_get_int(const avc_config_t *cfg, const char *key, long long def,
    long long min, long long max, long long *out)
{
    const char *s = avc_config_get(cfg, key, NULL);
    char *end;
    long long v;

    if (s == NULL) {
        *out = def;
        return AVC_OK;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        return AVC_EINVAL;
    }
    *out = v;
    return AVC_OK;
}

/* secrets: "env:NAME" or "file:/path"; at most 64 KiB */

#define AVC_SECRET_MAX 65536

AVC_API char *
avc_secret_load(const char *source, int *err)
{
    char *s = NULL;
    size_t len;
    int fd;
    ssize_t n;
    struct stat st;

    *err = AVC_EINVAL;
    if (source == NULL) {
        return NULL;
    }
    if (strncmp(source, "env:", 4) == 0) {
        const char *v = getenv(source + 4);
        if (v == NULL || *v == '\0') {
            *err = AVC_ENOTFOUND;
            return NULL;
        }
        s = strdup(v);
        *err = s ? AVC_OK : AVC_ENOMEM;
        return s;
    }
    if (strncmp(source, "file:", 5) != 0) {
        return NULL;
    }
    fd = open(source + 5, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *err = errno == ENOENT ? AVC_ENOTFOUND : AVC_ESYS;
        return NULL;
    }
    if (fstat(fd, &st) != 0 || st.st_size > AVC_SECRET_MAX) {
        close(fd);
        *err = AVC_ETOOBIG;
        return NULL;
    }
    s = malloc((size_t) st.st_size + 1);
    if (s == NULL) {
        close(fd);
        *err = AVC_ENOMEM;
        return NULL;
    }
    len = 0;
    while (len < (size_t) st.st_size) {
        n = read(fd, s + len, (size_t) st.st_size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t) n;
    }
    close(fd);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r')) {
        len--;
    }
    s[len] = '\0';
    if (len == 0) {
        free(s);
        *err = AVC_ENOTFOUND;
        return NULL;
    }
    *err = AVC_OK;
    return s;
}
