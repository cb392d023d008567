/*
 * Validating a JSON request body into typed fields, collecting every
 * problem as a FastAPI-style detail: {"field":"body.password",
 * "message":"...","type":"string_too_short"}.  An operation makes a
 * validator, asks for each field, then either replies 422 with all the
 * details (avc__v_reply) or uses the values.  Unknown fields are ignored;
 * known fields of the wrong type are errors.
 */
#ifndef AVC_VALIDATE_H
#define AVC_VALIDATE_H

#include "app_int.h"

typedef struct {
    avc_call_t *call;
    json_t *body;           /* the parsed object, owned */
    json_t *details;        /* array of details, owned */
} avc__v_t;

/*
 * Parse the call's body as a JSON object.  On a body that is not valid
 * UTF-8 JSON object text, replies (422) and returns AVC_EPARSE: the
 * operation must then return at once.  required 0 accepts an empty body
 * as {}.
 */
int avc__v_begin(avc__v_t *v, avc_call_t *call, int required);
/* A validator for query and path fields only: the body, if any, is left to
 * the operation.  AVC_ENOMEM (answered 500) or AVC_OK. */
int avc__v_begin_args(avc__v_t *v, avc_call_t *call);
void avc__v_end(avc__v_t *v);

/* Record a problem with a field: "email" is reported as "body.email";
 * names starting with "body.", "query." or "path.", and "body", as they
 * are (avc__v_field_name writes that name). */
void avc__v_fail(avc__v_t *v, const char *field, const char *type,
                 const char *message);
void avc__v_field_name(const char *field, char *name, size_t size);

/*
 * Fields.  Each returns 1 when present and valid (value stored), 0 when
 * absent or null and optional, -1 when invalid (a detail is recorded).
 * A required field that is absent records "missing".  Strings are
 * trimmed of surrounding white space only by avc__v_email.
 */
int avc__v_str(avc__v_t *v, const char *field, int required, size_t min,
               size_t max, const char **out);
int avc__v_email(avc__v_t *v, const char *field, int required,
                 const char **out);
int avc__v_int(avc__v_t *v, const char *field, int required, long long min,
               long long max, long long *out);
int avc__v_bool(avc__v_t *v, const char *field, int required, int *out);
int avc__v_enum(avc__v_t *v, const char *field, int required,
                const char *const *allowed, const char **out);
int avc__v_object(avc__v_t *v, const char *field, int required,
                  json_t **out);

/* Query parameters as integers with bounds (field "query.NAME"). */
int avc__v_qint(avc__v_t *v, const char *name, long long def,
                long long min, long long max, long long *out);

/* Any problems so far? */
int avc__v_failed(const avc__v_t *v);

/* Reply 422 with the collected details (and finish the call). */
void avc__v_reply(avc__v_t *v);

#endif /* AVC_VALIDATE_H */
