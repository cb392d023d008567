/*
 * Request validation with FastAPI-style error details (see validate.h).
 */
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
avc__v_begin_args(avc__v_t *v, avc_call_t *call)
{
    v->call = call;
    v->body = json_object();
    v->details = json_array();
    if (v->body == NULL || v->details == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

int
avc__v_begin(avc__v_t *v, avc_call_t *call, int required)
{
    json_error_t jerr;
    const char *ctype;

    v->call = call;
    v->body = NULL;
    v->details = json_array();
    if (v->details == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return AVC_ENOMEM;
    }
    if (call->body_len == 0 && !required) {
        v->body = json_object();
        if (v->body == NULL) {
            avc__call_error(call, 500, "Internal server error");
            return AVC_ENOMEM;
        }
        return AVC_OK;
    }
    ctype = avc_call_header(call, "Content-Type");
    if (call->body_len > 0 && (ctype == NULL
        || strncasecmp(ctype, "application/json", 16) != 0))
    {
        avc__v_fail(v, "body", "content_type",
                    "Content-Type must be application/json");
        avc__v_reply(v);
        return AVC_EPARSE;
    }
    if (!avc__utf8_valid(call->body ? call->body : "", call->body_len)) {
        avc__v_fail(v, "body", "json_invalid", "Body is not valid UTF-8");
        avc__v_reply(v);
        return AVC_EPARSE;
    }
    v->body = json_loadb(call->body ? call->body : "", call->body_len,
                         JSON_REJECT_DUPLICATES, &jerr);
    if (v->body == NULL) {
        char msg[300];

        snprintf(msg, sizeof(msg), "JSON decode error: %s", jerr.text);
        avc__v_fail(v, "body", "json_invalid", msg);
        avc__v_reply(v);
        return AVC_EPARSE;
    }
    if (!json_is_object(v->body)) {
        avc__v_fail(v, "body", "model_attributes_type",
                    "Input should be a valid dictionary or object");
        avc__v_reply(v);
        return AVC_EPARSE;
    }
    return AVC_OK;
}

void
avc__v_end(avc__v_t *v)
{
    json_decref(v->body);
    json_decref(v->details);
    v->body = v->details = NULL;
}

void
avc__v_field_name(const char *field, char *name, size_t size)
{
    if (strcmp(field, "body") == 0 || strncmp(field, "body.", 5) == 0
        || strncmp(field, "query.", 6) == 0
        || strncmp(field, "path.", 5) == 0)
    {
        snprintf(name, size, "%s", field);
    } else {
        snprintf(name, size, "body.%s", field);
    }
}

void
avc__v_fail(avc__v_t *v, const char *field, const char *type,
    const char *message)
{
    char name[160];

    avc__v_field_name(field, name, sizeof(name));
    json_array_append_new(v->details,
                          json_pack("{s:s, s:s, s:s}", "field", name,
                                    "message", message, "type", type));
}

int
avc__v_failed(const avc__v_t *v)
{
    return json_array_size(v->details) > 0;
}

void
avc__v_reply(avc__v_t *v)
{
    avc_call_t *call = v->call;
    json_t *root, *err, *first;
    const char *msg = "Validation error";

    first = json_array_get(v->details, 0);
    if (first) {
        msg = json_string_value(json_object_get(first, "message"));
    }
    root = json_pack("{s:{s:s, s:s, s:s, s:O}}", "error", "message", msg,
                     "type", "ValidationError", "path", call->path,
                     "details", v->details);
    err = root;
    avc__call_json(call, 422, err);
}

static json_t *
avc_field(avc__v_t *v, const char *field, int required)
{
    json_t *j = json_object_get(v->body, field);

    if (j == NULL || json_is_null(j)) {
        if (required) {
            avc__v_fail(v, field, "missing", "Field required");
        }
        return NULL;
    }
    return j;
}

int
avc__v_str(avc__v_t *v, const char *field, int required, size_t min,
    size_t max, const char **out)
{
    json_t *j = avc_field(v, field, required);
    char msg[128];
    size_t n;
    const char *s;

    if (j == NULL) {
        return required ? -1 : 0;
    }
    if (!json_is_string(j)) {
        avc__v_fail(v, field, "string_type", "Input should be a valid string");
        return -1;
    }
    s = json_string_value(j);
    if (memchr(s, '\0', json_string_length(j)) != NULL) {
        avc__v_fail(v, field, "string_type", "NUL characters are not allowed");
        return -1;
    }
    /* lengths in characters, as the old server counted them */
    for (n = 0; *s; s++) {
        n += ((unsigned char) *s & 0xc0) != 0x80;
    }
    if (n < min) {
        snprintf(msg, sizeof(msg), "String should have at least %zu "
                 "character%s", min, min == 1 ? "" : "s");
        avc__v_fail(v, field, "string_too_short", msg);
        return -1;
    }
    if (n > max) {
        snprintf(msg, sizeof(msg), "String should have at most %zu "
                 "characters", max);
        avc__v_fail(v, field, "string_too_long", msg);
        return -1;
    }
    *out = json_string_value(j);
    return 1;
}

int
avc__v_email(avc__v_t *v, const char *field, int required, const char **out)
{
    const char *s, *at, *dot, *p;
    int rc = avc__v_str(v, field, required, 3, 254, &s);

    if (rc <= 0) {
        return rc;
    }
    at = strchr(s, '@');
    dot = at ? strrchr(at, '.') : NULL;
    if (at == NULL || at == s || strchr(at + 1, '@') || dot == NULL
        || dot == at + 1 || dot[1] == '\0')
    {
        goto invalid;
    }
    for (p = s; *p; p++) {
        if (isspace((unsigned char) *p) || *p == '<' || *p == '>'
            || *p == '"' || *p == ',' || *p == ';' || *p == '\\'
            || (unsigned char) *p < 0x20)
        {
            goto invalid;
        }
    }
    *out = s;
    return 1;

invalid:
    avc__v_fail(v, field, "value_error",
                "value is not a valid email address");
    return -1;
}

int
avc__v_int(avc__v_t *v, const char *field, int required, long long min,
    long long max, long long *out)
{
    json_t *j = avc_field(v, field, required);
    char msg[128];
    long long n;

    if (j == NULL) {
        return required ? -1 : 0;
    }
    if (!json_is_integer(j)) {
        avc__v_fail(v, field, "int_type", "Input should be a valid integer");
        return -1;
    }
    n = json_integer_value(j);
    if (n < min || n > max) {
        snprintf(msg, sizeof(msg), "Input should be between %lld and %lld",
                 min, max);
        avc__v_fail(v, field, n < min ? "greater_than_equal"
                                      : "less_than_equal", msg);
        return -1;
    }
    *out = n;
    return 1;
}

int
avc__v_bool(avc__v_t *v, const char *field, int required, int *out)
{
    json_t *j = avc_field(v, field, required);

    if (j == NULL) {
        return required ? -1 : 0;
    }
    if (!json_is_boolean(j)) {
        avc__v_fail(v, field, "bool_type", "Input should be a valid boolean");
        return -1;
    }
    *out = json_is_true(j);
    return 1;
}

int
avc__v_enum(avc__v_t *v, const char *field, int required,
    const char *const *allowed, const char **out)
{
    json_t *j = avc_field(v, field, required);
    const char *const *a;
    avc__buf_t msg;

    if (j == NULL) {
        return required ? -1 : 0;
    }
    if (json_is_string(j)) {
        for (a = allowed; *a; a++) {
            if (strcmp(*a, json_string_value(j)) == 0) {
                *out = *a;
                return 1;
            }
        }
    }
    avc__buf_init(&msg);
    avc__buf_appends(&msg, "Input should be");
    for (a = allowed; *a; a++) {
        avc__buf_printf(&msg, "%s '%s'", a == allowed ? ""
                        : a[1] ? "," : " or", *a);
    }
    avc__v_fail(v, field, "enum", msg.data ? msg.data : "invalid value");
    avc__buf_free(&msg);
    return -1;
}

int
avc__v_object(avc__v_t *v, const char *field, int required, json_t **out)
{
    json_t *j = avc_field(v, field, required);

    if (j == NULL) {
        return required ? -1 : 0;
    }
    if (!json_is_object(j)) {
        avc__v_fail(v, field, "dict_type",
                    "Input should be a valid dictionary");
        return -1;
    }
    *out = j;
    return 1;
}

int
avc__v_qint(avc__v_t *v, const char *name, long long def, long long min,
    long long max, long long *out)
{
    const char *s = avc_call_param(v->call, name);
    char field[96], msg[128], *end;
    long long n;

    snprintf(field, sizeof(field), "query.%s", name);
    if (s == NULL || *s == '\0') {
        *out = def;
        return 0;
    }
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || *end != '\0') {
        avc__v_fail(v, field, "int_parsing",
                    "Input should be a valid integer");
        return -1;
    }
    if (n < min || n > max) {
        snprintf(msg, sizeof(msg), "Input should be between %lld and %lld",
                 min, max);
        avc__v_fail(v, field, n < min ? "greater_than_equal"
                                      : "less_than_equal", msg);
        return -1;
    }
    *out = n;
    return 1;
}
