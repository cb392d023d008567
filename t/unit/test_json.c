/*
 * The JSON helpers.
 */
#include "tap.h"

#include "json_util.h"
#include <avatarcore/app.h>

#include <stdlib.h>
#include <string.h>

static void
test_getters(void)
{
    const char *src = "{\"s\":\"str\",\"i\":42,\"r\":3.0,\"f\":1.5,"
                      "\"b\":true,\"n\":null,\"big\":1e30}";
    json_t *o;
    const char *s = NULL;
    long long i = 0;
    int b = -1, err;

    o = avc__json_parse(src, strlen(src), 0, &err, NULL);
    TAP_OK(o != NULL && err == AVC_OK, "parse an object");
    TAP_IS(avc__json_get_str(o, "s", &s), AVC_OK, "string field");
    TAP_STR(s, "str", "string value (borrowed)");
    TAP_IS(avc__json_get_str(o, "i", &s), AVC_EINVAL, "int is not a string");
    TAP_IS(avc__json_get_str(o, "missing", &s), AVC_ENOTFOUND, "missing");
    TAP_IS(avc__json_get_str(o, "n", &s), AVC_ENOTFOUND, "null = missing");
    TAP_IS(avc__json_get_int(o, "i", &i), AVC_OK, "int field");
    TAP_IS(i, 42, "int value");
    TAP_IS(avc__json_get_int(o, "r", &i), AVC_OK, "3.0 is an integer");
    TAP_IS(i, 3, "its value");
    TAP_IS(avc__json_get_int(o, "f", &i), AVC_EINVAL, "1.5 is not");
    TAP_IS(avc__json_get_int(o, "big", &i), AVC_EINVAL, "1e30 is not");
    TAP_IS(avc__json_get_int(o, "s", &i), AVC_EINVAL, "string is not");
    TAP_IS(avc__json_get_bool(o, "b", &b), AVC_OK, "bool field");
    TAP_IS(b, 1, "bool value");
    TAP_IS(avc__json_get_bool(o, "i", &b), AVC_EINVAL, "42 is not a bool");
    TAP_IS(avc__json_get_bool(NULL, "b", &b), AVC_ENOTFOUND, "NULL object");
    json_decref(o);

    o = json_array();
    TAP_IS(avc__json_get_int(o, "i", &i), AVC_ENOTFOUND, "not an object");
    json_decref(o);
}

static void
test_parse_errors(void)
{
    json_error_t e;
    json_t *v;
    int err;

    v = avc__json_parse("{\"a\": 1,\n \"b\": }", 16, 0, &err, &e);
    TAP_OK(v == NULL && err == AVC_EPARSE, "malformed -> AVC_EPARSE");
    TAP_IS(e.line, 2, "error line");
    TAP_OK(e.position >= 14 && e.position <= 16,
           "error byte position near the '}' (%d)", e.position);
    TAP_OK(e.text[0] != '\0', "error text: %s", e.text);

    v = avc__json_parse("{\"a\":1}", 7, 6, &err, &e);
    TAP_OK(v == NULL && err == AVC_ETOOBIG, "over the size limit");
    v = avc__json_parse("{\"a\":1,\"a\":2}", 13, 0, &err, NULL);
    TAP_OK(v == NULL && err == AVC_EPARSE, "duplicate keys refused");
    v = avc__json_parse("{\"a\":1} x", 9, 0, &err, NULL);
    TAP_OK(v == NULL && err == AVC_EPARSE, "trailing garbage refused");
    v = avc__json_parse("\"\xff\"", 3, 0, &err, NULL);
    TAP_OK(v == NULL && err == AVC_EPARSE, "invalid UTF-8 refused");
    v = avc__json_parse("\"a\\u0000b\"", 10, 0, &err, NULL);
    TAP_OK(v == NULL && err == AVC_EPARSE, "\\u0000 refused");
    v = avc__json_parse("[1,2] ", 5, 5, &err, NULL);
    TAP_OK(v != NULL && json_array_size(v) == 2,
           "a buffer is read to len only, limit inclusive");
    json_decref(v);
    v = avc__json_parse("17", 2, 0, &err, NULL);
    TAP_OK(v != NULL && json_integer_value(v) == 17, "a bare scalar");
    json_decref(v);
}

static void
test_dump_and_error(void)
{
    json_t *v, *e;
    char *s;
    size_t len = 0;

    v = json_pack("{s:i, s:[s, b], s:s}", "b", 1, "a", "x\"y", 0, "u",
                  "caf\xc3\xa9");
    s = avc__json_dump(v, &len);
    TAP_STR(s, "{\"b\":1,\"a\":[\"x\\\"y\",false],\"u\":\"caf\xc3\xa9\"}",
            "compact, insertion order");
    TAP_IS(len, strlen(s ? s : ""), "length returned");
    free(s);
    json_decref(v);
    v = json_string("scalar");
    s = avc__json_dump(v, NULL);
    TAP_STR(s, "\"scalar\"", "scalars too");
    free(s);
    json_decref(v);
    TAP_OK(avc__json_dump(NULL, NULL) == NULL, "NULL -> NULL");

    /* the one error body helper of the API */
    s = avc_error_json(404, "User with ID 7 not found", "/api/v1/users/7",
                       NULL);
    TAP_STR(s, "{\"error\":{\"message\":\"User with ID 7 not found\","
               "\"type\":\"NotFoundError\",\"path\":\"/api/v1/users/7\"}}",
            "API error body");
    free(s);
    s = avc_error_json(422, "Invalid input", "/x",
                       "[{\"field\":\"body.email\",\"message\":\"bad\","
                       "\"type\":\"value_error\"}]");
    TAP_STR(s, "{\"error\":{\"message\":\"Invalid input\","
               "\"type\":\"ValidationError\",\"path\":\"/x\","
               "\"details\":[{\"field\":\"body.email\",\"message\":"
               "\"bad\",\"type\":\"value_error\"}]}}",
            "ValidationError with details");
    free(s);
    s = avc_error_json(422, "Already initialized", "/x", NULL);
    TAP_STR(s, "{\"error\":{\"message\":\"Already initialized\","
               "\"type\":\"ValidationError\",\"path\":\"/x\","
               "\"details\":[{\"field\":\"body\",\"message\":"
               "\"Already initialized\",\"type\":\"value_error\"}]}}",
            "a ValidationError without details names the body");
    free(s);
    s = avc_error_json(400, "m", "/\xff", NULL);
    TAP_OK(s && strstr(s, "\"path\":\"\""),
           "a path that is not UTF-8 is left out");
    free(s);
    TAP_STR(avc_error_type(401), "AuthenticationError", "401");
    TAP_STR(avc_error_type(403), "AuthorizationError", "403");
    TAP_STR(avc_error_type(404), "NotFoundError", "404");
    TAP_STR(avc_error_type(409), "ConflictError", "409");
    TAP_STR(avc_error_type(413), "PayloadTooLarge", "413");
    TAP_STR(avc_error_type(422), "ValidationError", "422");
    TAP_STR(avc_error_type(429), "RateLimitError", "429");
    TAP_STR(avc_error_type(502), "UpstreamError", "502");
    TAP_STR(avc_error_type(504), "UpstreamError", "504");
    TAP_STR(avc_error_type(503), "ServiceUnavailable", "503");
    TAP_STR(avc_error_type(500), "InternalServerError", "500");
    (void) e;
}

int
main(void)
{
    test_getters();
    test_parse_errors();
    test_dump_and_error();
    return tap_done();
}
