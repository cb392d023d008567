/*
 * json_util.h - internal helpers over jansson for reading requests and
 * provider answers and for writing API responses.
 *
 * References follow jansson's rules: "new" results are owned by the
 * caller (json_decref() them), "borrowed" ones live as long as the object
 * they came from.  Thread safety: as jansson's (a json_t may be used by
 * one thread at a time).
 */
#ifndef AVC_JSON_UTIL_H
#define AVC_JSON_UTIL_H

#include <avatarcore/core.h>

#include <jansson.h>


/*
 * Typed field getters on an object.  Each returns AVC_OK and sets *out;
 * AVC_ENOTFOUND when obj is not an object or the key is missing or null;
 * AVC_EINVAL when the value has another type (then *out is unchanged).
 */

/* A string (borrowed from obj). */
int avc__json_get_str(const json_t *obj, const char *key,
                             const char **out);

/* An integer: a JSON integer, or a real with an exact integral value. */
int avc__json_get_int(const json_t *obj, const char *key,
                             long long *out);

/* A boolean (true or false, nothing else), as 1 or 0. */
int avc__json_get_bool(const json_t *obj, const char *key, int *out);

/*
 * Serialise compactly (no spaces; keys in insertion order; any value, not
 * only objects and arrays).  Returns a new NUL-terminated string of *len
 * bytes (len may be NULL) to free(), or NULL when out of memory or v is
 * NULL.
 */
char *avc__json_dump(const json_t *v, size_t *len);

/*
 * Parse len bytes of buf as one JSON value.  Returns a new reference, or
 * NULL with *err set: AVC_ETOOBIG when len > max (0: no limit),
 * AVC_EPARSE for malformed input (also duplicate keys, invalid UTF-8,
 * \u0000, trailing garbage), AVC_ENOMEM.  When error is not NULL it
 * receives jansson's detail (line, column, byte position, text).
 */
json_t *avc__json_parse(const char *buf, size_t len, size_t max,
                               int *err, json_error_t *error);


#endif /* AVC_JSON_UTIL_H */
