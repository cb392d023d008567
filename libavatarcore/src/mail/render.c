/*
 * Mail templates: {{name}} substitution with escaping by context.
 *
 * The templates are ours, the values are not: a value can hold anything a
 * user typed (a report's text, a dealership's name), so in HTML every
 * value is escaped, and in a subject a value can never start a new header
 * line.  Substitution is single-pass: a value containing "{{x}}" is
 * inserted as is, never expanded.
 */
#include "mail_internal.h"

#include <stdlib.h>
#include <string.h>

/* one line: CR, LF, tabs and other C0 controls and DEL become spaces */
static int
avc_mail_append_line(avc__buf_t *b, const char *s, size_t n)
{
    size_t start = b->len, i;

    if (avc__buf_append(b, s, n) != AVC_OK) {
        return AVC_ENOMEM;
    }
    for (i = start; i < b->len; i++) {
        if ((unsigned char) b->data[i] < 0x20 || b->data[i] == 0x7f) {
            b->data[i] = ' ';
        }
    }
    return AVC_OK;
}

static int
avc_mail_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_';
}

static const char *
avc_mail_lookup(const char *const *vars, const char *name, size_t n)
{
    size_t i;

    for (i = 0; vars && vars[i] && vars[i + 1]; i += 2) {
        if (strlen(vars[i]) == n && memcmp(vars[i], name, n) == 0) {
            return vars[i + 1];
        }
    }
    return "";
}

/*
 * At p (just after "{{"): the name and the end of the placeholder, or
 * NULL when this is not one.
 */
static const char *
avc_mail_placeholder(const char *p, const char **name, size_t *n)
{
    while (*p == ' ') {
        p++;
    }
    *name = p;
    while (avc_mail_name_char((unsigned char) *p)) {
        p++;
    }
    *n = (size_t) (p - *name);
    while (*p == ' ') {
        p++;
    }
    if (*n == 0 || p[0] != '}' || p[1] != '}') {
        return NULL;
    }
    return p + 2;
}

char *
avc__mail_render(const char *tmpl, const char *const *vars, int mode)
{
    const char *p, *open, *name, *end, *value;
    avc__buf_t b;
    size_t n;
    int rc = AVC_OK;

    if (tmpl == NULL) {
        return NULL;
    }
    if (mode != AVC__MAIL_TEXT && mode != AVC__MAIL_LINE) {
        mode = AVC__MAIL_HTML;
    }
    avc__buf_init(&b);
    p = tmpl;
    while (rc == AVC_OK && (open = strstr(p, "{{")) != NULL) {
        end = avc_mail_placeholder(open + 2, &name, &n);
        if (end == NULL) {
            rc = avc__buf_append(&b, p, (size_t) (open + 2 - p));
            p = open + 2;
            continue;
        }
        rc = avc__buf_append(&b, p, (size_t) (open - p));
        if (rc != AVC_OK) {
            break;
        }
        value = avc_mail_lookup(vars, name, n);
        switch (mode) {
        case AVC__MAIL_HTML:
            rc = avc__buf_html(&b, value, strlen(value));
            break;
        case AVC__MAIL_LINE:
            rc = avc_mail_append_line(&b, value, strlen(value));
            break;
        default:
            rc = avc__buf_appends(&b, value);
        }
        p = end;
    }
    if (rc == AVC_OK) {
        rc = avc__buf_appends(&b, p);
    }
    if (rc == AVC_OK && mode == AVC__MAIL_LINE) {
        /* the template's own line end (a .subject file ends in one) */
        while (b.len > 0 && (b.data[b.len - 1] == '\n'
                             || b.data[b.len - 1] == '\r'))
        {
            b.data[--b.len] = '\0';
        }
        for (n = 0; n < b.len; n++) {
            if ((unsigned char) b.data[n] < 0x20 || b.data[n] == 0x7f) {
                b.data[n] = ' ';
            }
        }
    }
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}
