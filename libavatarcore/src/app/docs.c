/*
 * The API's own description.
 *
 * GET /api/v1/openapi.json serves the OpenAPI 3.1 document embedded from
 * data/openapi.json, with this server's version in info.version.
 * GET /api/v1/docs serves a page made here from the same document: plain
 * HTML, one section per tag, each operation with its parameters, body and
 * responses, then the schemas.  It has no script and no style of its own,
 * so the site's Content-Security-Policy needs no exception for it.
 *
 * Both are built on first use and kept by the app.
 */
#include "app_int.h"
#include "embedded.h"

#include <stdlib.h>
#include <string.h>

#define AVC_OPENAPI_FILE "data/openapi.json"

static const char *const avc_docs_methods[] = {
    "get", "post", "put", "patch", "delete", NULL
};

/* the document with the version set; a new reference, or NULL */
static json_t *
avc_docs_document(avc_app_t *app)
{
    json_error_t jerr;
    const char *text;
    json_t *doc, *info;
    size_t len;

    text = avc__embedded_file(AVC_OPENAPI_FILE, &len);
    if (text == NULL) {
        return NULL;
    }
    doc = json_loadb(text, len, 0, &jerr);
    info = doc ? json_object_get(doc, "info") : NULL;
    if (!json_is_object(info)) {
        avc_log(AVC_LOG_ERR, "docs: %s: %s", AVC_OPENAPI_FILE,
                doc ? "no info object" : jerr.text);
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(info, "version", json_string(app->version));
    return doc;
}

static int
avc_docs_text(avc__buf_t *b, const char *s)
{
    return s ? avc__buf_html(b, s, strlen(s)) : AVC_OK;
}

static int
avc_docs_tag(avc__buf_t *b, const char *tag, const char *text,
    const char *close)
{
    int rc = avc__buf_printf(b, "<%s>", tag);

    rc |= avc_docs_text(b, text);
    rc |= avc__buf_appends(b, close);
    return rc;
}

/* "#/components/schemas/Name" -> "Name" */
static const char *
avc_docs_ref_name(const char *ref)
{
    const char *p = ref ? strrchr(ref, '/') : NULL;

    return p ? p + 1 : ref;
}

/* a schema in a few words: its type, a link to a named one, a list of */
static int
avc_docs_type(avc__buf_t *b, json_t *s, int depth)
{
    const char *ref = json_string_value(json_object_get(s, "$ref"));
    json_t *type = json_object_get(s, "type"), *v, *one;
    size_t i;
    int rc = AVC_OK;

    if (!json_is_object(s) || depth > 4) {
        return avc__buf_appends(b, "any");
    }
    if (ref) {
        rc |= avc__buf_appends(b, "<a href=\"#schema-");
        rc |= avc_docs_text(b, avc_docs_ref_name(ref));
        rc |= avc__buf_appends(b, "\">");
        rc |= avc_docs_text(b, avc_docs_ref_name(ref));
        return rc | avc__buf_appends(b, "</a>");
    }
    one = json_object_get(s, "oneOf");
    if (one == NULL) {
        one = json_object_get(s, "anyOf");
    }
    if (json_is_array(one)) {
        json_array_foreach(one, i, v) {
            rc |= i ? avc__buf_appends(b, " | ") : AVC_OK;
            rc |= avc_docs_type(b, v, depth + 1);
        }
        return rc;
    }
    if (json_is_array(type)) {
        json_array_foreach(type, i, v) {
            rc |= i ? avc__buf_appends(b, " | ") : AVC_OK;
            rc |= avc_docs_text(b, json_string_value(v));
        }
        return rc;
    }
    if (json_is_string(type) && strcmp(json_string_value(type), "array") == 0)
    {
        rc |= avc__buf_appends(b, "list of ");
        return rc | avc_docs_type(b, json_object_get(s, "items"), depth + 1);
    }
    rc |= avc_docs_text(b, json_is_string(type) ? json_string_value(type)
                                                : "object");
    v = json_object_get(s, "format");
    if (json_is_string(v)) {
        rc |= avc__buf_appends(b, " (");
        rc |= avc_docs_text(b, json_string_value(v));
        rc |= avc__buf_appends(b, ")");
    }
    return rc;
}

/* a response or parameter that is a $ref: the component it names */
static json_t *
avc_docs_deref(json_t *doc, json_t *o, const char *kind)
{
    const char *ref = json_string_value(json_object_get(o, "$ref"));

    if (ref == NULL) {
        return o;
    }
    return json_object_get(json_object_get(json_object_get(doc,
                           "components"), kind), avc_docs_ref_name(ref));
}

/* the media types of a body or response, each with its schema */
static int
avc_docs_content(avc__buf_t *b, json_t *content)
{
    const char *mt;
    json_t *m;
    int rc = AVC_OK, first = 1;

    json_object_foreach(content, mt, m) {
        rc |= avc__buf_appends(b, first ? " " : "; ");
        rc |= avc_docs_tag(b, "code", mt, "</code>: ");
        rc |= avc_docs_type(b, json_object_get(m, "schema"), 0);
        first = 0;
    }
    return rc;
}

static int
avc_docs_operation(avc__buf_t *b, json_t *doc, const char *path,
    const char *method, json_t *op)
{
    json_t *params, *p, *body, *resps, *r, *sec;
    const char *id, *code;
    char up[8];
    size_t i;
    int rc = AVC_OK;

    for (i = 0; method[i] && i < sizeof(up) - 1; i++) {
        up[i] = (char) (method[i] - 'a' + 'A');
    }
    up[i] = '\0';
    id = json_string_value(json_object_get(op, "operationId"));
    rc |= avc__buf_appends(b, "<article");
    if (id) {
        rc |= avc__buf_appends(b, " id=\"op-");
        rc |= avc_docs_text(b, id);
        rc |= avc__buf_appends(b, "\"");
    }
    rc |= avc__buf_printf(b, "><h3><code>%s ", up);
    rc |= avc_docs_text(b, path);
    rc |= avc__buf_appends(b, "</code></h3>\n");
    rc |= avc_docs_tag(b, "p><strong",
                       json_string_value(json_object_get(op, "summary")),
                       "</strong></p>\n");
    if (json_object_get(op, "description")) {
        rc |= avc_docs_tag(b, "p", json_string_value(
                           json_object_get(op, "description")), "</p>\n");
    }
    if (json_object_get(op, "x-websocket") == json_true()) {
        rc |= avc__buf_appends(b, "<p>A WebSocket: upgrade with this GET."
                                  "</p>\n");
    }
    sec = json_object_get(op, "security");
    rc |= avc__buf_appends(b, json_is_array(sec) && json_array_size(sec) == 0
                              ? "<p>Public: no token needed.</p>\n"
                              : "<p>Needs a bearer access token.</p>\n");

    params = json_object_get(op, "parameters");
    if (json_array_size(params) > 0) {
        rc |= avc__buf_appends(b, "<table><caption>Parameters</caption>"
                                  "<tr><th>name</th><th>in</th>"
                                  "<th>type</th><th>required</th>"
                                  "<th>description</th></tr>\n");
        json_array_foreach(params, i, p) {
            p = avc_docs_deref(doc, p, "parameters");
            rc |= avc_docs_tag(b, "tr><td><code", json_string_value(
                               json_object_get(p, "name")), "</code></td>");
            rc |= avc_docs_tag(b, "td", json_string_value(
                               json_object_get(p, "in")), "</td><td>");
            rc |= avc_docs_type(b, json_object_get(p, "schema"), 0);
            rc |= avc__buf_appends(b, json_object_get(p, "required")
                                      == json_true()
                                      ? "</td><td>yes</td>"
                                      : "</td><td>no</td>");
            rc |= avc_docs_tag(b, "td", json_string_value(
                               json_object_get(p, "description")),
                               "</td></tr>\n");
        }
        rc |= avc__buf_appends(b, "</table>\n");
    }
    body = json_object_get(op, "requestBody");
    if (json_is_object(body)) {
        rc |= avc__buf_appends(b, "<p>Body:");
        rc |= avc_docs_content(b, json_object_get(body, "content"));
        rc |= avc__buf_appends(b, "</p>\n");
    }
    resps = json_object_get(op, "responses");
    if (json_is_object(resps)) {
        rc |= avc__buf_appends(b, "<dl>\n");
        json_object_foreach(resps, code, r) {
            r = avc_docs_deref(doc, r, "responses");
            rc |= avc_docs_tag(b, "dt", code, "</dt><dd>");
            rc |= avc_docs_text(b, json_string_value(
                                json_object_get(r, "description")));
            if (json_object_get(r, "content")) {
                rc |= avc_docs_content(b, json_object_get(r, "content"));
            }
            rc |= avc__buf_appends(b, "</dd>\n");
        }
        rc |= avc__buf_appends(b, "</dl>\n");
    }
    return rc | avc__buf_appends(b, "</article>\n");
}

/* the operations of one tag, in the document's order */
static int
avc_docs_section(avc__buf_t *b, json_t *doc, const char *tag,
    const char *text)
{
    json_t *paths = json_object_get(doc, "paths"), *item, *op, *tags, *t;
    const char *path;
    size_t i, k;
    int rc = AVC_OK, any;

    rc |= avc__buf_appends(b, "<section id=\"tag-");
    rc |= avc_docs_text(b, tag);
    rc |= avc__buf_appends(b, "\">");
    rc |= avc_docs_tag(b, "h2", tag, "</h2>\n");
    if (text) {
        rc |= avc_docs_tag(b, "p", text, "</p>\n");
    }
    json_object_foreach(paths, path, item) {
        for (k = 0; avc_docs_methods[k]; k++) {
            op = json_object_get(item, avc_docs_methods[k]);
            tags = json_object_get(op, "tags");
            any = 0;
            json_array_foreach(tags, i, t) {
                any |= json_is_string(t)
                       && strcmp(json_string_value(t), tag) == 0;
            }
            if (any) {
                rc |= avc_docs_operation(b, doc, path, avc_docs_methods[k],
                                         op);
            }
        }
    }
    return rc | avc__buf_appends(b, "</section>\n");
}

static int
avc_docs_schemas(avc__buf_t *b, json_t *doc)
{
    json_t *schemas, *s, *props, *p, *req, *r;
    const char *name, *pname;
    size_t i;
    int rc = AVC_OK, required;

    schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    rc |= avc__buf_appends(b, "<section id=\"schemas\"><h2>Schemas</h2>\n");
    json_object_foreach(schemas, name, s) {
        rc |= avc__buf_appends(b, "<article id=\"schema-");
        rc |= avc_docs_text(b, name);
        rc |= avc__buf_appends(b, "\">");
        rc |= avc_docs_tag(b, "h3", name, "</h3>\n");
        if (json_object_get(s, "description")) {
            rc |= avc_docs_tag(b, "p", json_string_value(
                               json_object_get(s, "description")), "</p>\n");
        }
        props = json_object_get(s, "properties");
        if (!json_is_object(props)) {
            rc |= avc__buf_appends(b, "<p>");
            rc |= avc_docs_type(b, s, 0);
            rc |= avc__buf_appends(b, "</p></article>\n");
            continue;
        }
        req = json_object_get(s, "required");
        rc |= avc__buf_appends(b, "<table><tr><th>field</th><th>type</th>"
                                  "<th>required</th><th>description</th>"
                                  "</tr>\n");
        json_object_foreach(props, pname, p) {
            required = 0;
            json_array_foreach(req, i, r) {
                required |= json_is_string(r)
                            && strcmp(json_string_value(r), pname) == 0;
            }
            rc |= avc_docs_tag(b, "tr><td><code", pname, "</code></td><td>");
            rc |= avc_docs_type(b, p, 0);
            rc |= avc__buf_appends(b, required ? "</td><td>yes</td>"
                                               : "</td><td>no</td>");
            rc |= avc_docs_tag(b, "td", json_string_value(
                               json_object_get(p, "description")),
                               "</td></tr>\n");
        }
        rc |= avc__buf_appends(b, "</table></article>\n");
    }
    return rc | avc__buf_appends(b, "</section>\n");
}

/* the page; NULL when out of memory or the document is unusable */
static char *
avc_docs_page(json_t *doc, size_t *len)
{
    json_t *info = json_object_get(doc, "info"), *tags, *t;
    const char *title = json_string_value(json_object_get(info, "title"));
    avc__buf_t b;
    size_t i;
    int rc = AVC_OK;

    avc__buf_init(&b);
    rc |= avc__buf_appends(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                               "<meta charset=\"utf-8\">"
                               "<meta name=\"viewport\" content=\""
                               "width=device-width, initial-scale=1\">");
    rc |= avc_docs_tag(&b, "title", title, "</title></head><body>\n");
    rc |= avc_docs_tag(&b, "header><h1", title, " ");
    rc |= avc_docs_text(&b, json_string_value(json_object_get(info,
                                                              "version")));
    rc |= avc__buf_appends(&b, "</h1>\n");
    rc |= avc_docs_tag(&b, "p", json_string_value(json_object_get(info,
                       "description")), "</p>\n");
    rc |= avc__buf_appends(&b, "<p>Machine-readable: <a href=\""
                               "/api/v1/openapi.json\">OpenAPI 3.1 "
                               "description</a>.</p></header>\n"
                               "<nav><h2>Contents</h2><ul>\n");
    tags = json_object_get(doc, "tags");
    json_array_foreach(tags, i, t) {
        const char *n = json_string_value(json_object_get(t, "name"));

        rc |= avc__buf_appends(&b, "<li><a href=\"#tag-");
        rc |= avc_docs_text(&b, n);
        rc |= avc__buf_appends(&b, "\">");
        rc |= avc_docs_text(&b, n);
        rc |= avc__buf_appends(&b, "</a></li>\n");
    }
    rc |= avc__buf_appends(&b, "<li><a href=\"#schemas\">Schemas</a></li>"
                               "</ul></nav>\n<main>\n");
    json_array_foreach(tags, i, t) {
        rc |= avc_docs_section(&b, doc,
                               json_string_value(json_object_get(t, "name")),
                               json_string_value(json_object_get(t,
                                                 "description")));
    }
    rc |= avc_docs_schemas(&b, doc);
    rc |= avc__buf_appends(&b, "</main></body></html>\n");
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, len);
}

/* both forms, made once */
static int
avc_docs_build(avc_app_t *app)
{
    json_t *doc;

    if (app->openapi && app->docs) {
        return AVC_OK;
    }
    doc = avc_docs_document(app);
    if (doc == NULL) {
        return AVC_ENOMEM;
    }
    if (app->openapi == NULL) {
        app->openapi = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        app->openapi_len = app->openapi ? strlen(app->openapi) : 0;
    }
    if (app->docs == NULL) {
        app->docs = avc_docs_page(doc, &app->docs_len);
    }
    json_decref(doc);
    return app->openapi && app->docs ? AVC_OK : AVC_ENOMEM;
}

AVC_API int
avc_op_openapi(avc_call_t *call)
{
    if (avc_docs_build(call->app) != AVC_OK) {
        return AVC_ENOMEM;
    }
    avc__call_raw(call, 200, "application/json", call->app->openapi,
                  call->app->openapi_len);
    return AVC_OK;
}

AVC_API int
avc_op_docs(avc_call_t *call)
{
    if (avc_docs_build(call->app) != AVC_OK) {
        return AVC_ENOMEM;
    }
    avc__call_raw(call, 200, "text/html; charset=utf-8", call->app->docs,
                  call->app->docs_len);
    return AVC_OK;
}
