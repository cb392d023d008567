/*
 * JSON helpers over jansson.
 */
#include "internal.h"

#include "json_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of key in obj, NULL when missing, null, or obj no object. */
static json_t *
avc__json_field(const json_t *obj, const char *key)
{
    json_t *v;

    if (obj == NULL || key == NULL || !json_is_object(obj)) {
        return NULL;
    }
    v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int
avc__json_get_str(const json_t *obj, const char *key, const char **out)
{
    json_t *v = avc__json_field(obj, key);

    if (v == NULL) {
        return AVC_ENOTFOUND;
    }
    if (!json_is_string(v)) {
        return AVC_EINVAL;
    }
    *out = json_string_value(v);
    return AVC_OK;
}

int
avc__json_get_int(const json_t *obj, const char *key, long long *out)
{
    json_t *v = avc__json_field(obj, key);
    double d;

    if (v == NULL) {
        return AVC_ENOTFOUND;
    }
    if (json_is_integer(v)) {
        *out = (long long) json_integer_value(v);
        return AVC_OK;
    }
    if (json_is_real(v)) {
        /* 3.0 is an integer to a JavaScript client; 2^63 is not */
        d = json_real_value(v);
        if (d == floor(d) && d >= -9223372036854775808.0
            && d < 9223372036854775808.0)
        {
            *out = (long long) d;
            return AVC_OK;
        }
    }
    return AVC_EINVAL;
}

int
avc__json_get_bool(const json_t *obj, const char *key, int *out)
{
    json_t *v = avc__json_field(obj, key);

    if (v == NULL) {
        return AVC_ENOTFOUND;
    }
    if (!json_is_boolean(v)) {
        return AVC_EINVAL;
    }
    *out = json_is_true(v);
    return AVC_OK;
}

char *
avc__json_dump(const json_t *v, size_t *len)
{
    char *s;

    if (v == NULL) {
        return NULL;
    }
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL && len != NULL) {
        *len = strlen(s);
    }
    return s;
}

json_t *
avc__json_parse(const char *buf, size_t len, size_t max, int *err,
    json_error_t *error)
{
    json_error_t e;
    json_t *v;
    int rc;

    if (error == NULL) {
        error = &e;
    }
    memset(error, 0, sizeof(*error));
    if (buf == NULL && len > 0) {
        rc = AVC_EINVAL;
        goto failed;
    }
    if (max && len > max) {
        error->position = (int) (max < 0x7fffffff ? max : 0x7fffffff);
        snprintf(error->text, sizeof(error->text),
                 "input of %zu bytes over the limit of %zu", len, max);
        rc = AVC_ETOOBIG;
        goto failed;
    }
    /* duplicate keys make a body mean different things to different
     * readers; refuse them */
    v = json_loadb(buf ? buf : "", len,
                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, error);
    if (v == NULL) {
        rc = json_error_code(error) == json_error_out_of_memory
             ? AVC_ENOMEM : AVC_EPARSE;
        goto failed;
    }
    if (err) {
        *err = AVC_OK;
    }
    return v;

failed:
    if (err) {
        *err = rc;
    }
    return NULL;
}
