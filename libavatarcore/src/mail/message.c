/*
 * RFC 5322 messages: addresses, header encoding (RFC 2047), quoted-
 * printable bodies (RFC 2045) and the MIME structure (RFC 2046).
 *
 * Every line ends in CRLF and stays within 78 characters (76 in bodies),
 * so a message is valid as a file, as an SMTP DATA payload and to any
 * strict parser.  Header values that came from users never reach a
 * header raw: addresses are checked to a conservative syntax, subjects
 * and display names are reduced to one line and B-encoded when needed.
 */
#include "mail_internal.h"

#include "../http/http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_MAIL_MAX_RCPTS    100
#define AVC_MAIL_LINE_MAX     78
/* bytes per encoded-word: 39 -> 52 base64 characters -> a 64-character
 * word, which fits a line after "Subject: " */
#define AVC_MAIL_WORD_BYTES   39

/* addresses */

int
avc__mail_addr_valid(const char *s, size_t n)
{
    size_t i, at = 0, ats = 0;
    unsigned char c;

    if (n == 0 || n > 254) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("()<>,;:\"[]\\", c) != NULL) {
            return 0;
        }
        if (c == '@') {
            at = i;
            ats++;
        }
    }
    return ats == 1 && at > 0 && at < n - 1 && s[n - 1] != '.'
           && s[at + 1] != '.';
}

void
avc__mail_list_free(char **list)
{
    size_t i;

    if (list == NULL) {
        return;
    }
    for (i = 0; list[i]; i++) {
        free(list[i]);
    }
    free(list);
}

char **
avc__mail_split_list(const char *list, int *err)
{
    const char *p, *end, *s, *e;
    char **out;
    size_t n = 0, cap = 1;

    *err = AVC_EINVAL;
    if (list == NULL) {
        return NULL;
    }
    for (p = list; *p; p++) {
        cap += *p == ',';
    }
    if (cap > AVC_MAIL_MAX_RCPTS) {
        return NULL;
    }
    out = calloc(cap + 1, sizeof(char *));
    if (out == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    for (p = list; ; p = end + 1) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        for (s = p; s < end && (*s == ' ' || *s == '\t'); s++) {
            /* trim */
        }
        for (e = end; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--) {
            /* trim */
        }
        if (e > s) {
            if (!avc__mail_addr_valid(s, (size_t) (e - s))) {
                avc__mail_list_free(out);
                return NULL;
            }
            out[n] = strndup(s, (size_t) (e - s));
            if (out[n] == NULL) {
                avc__mail_list_free(out);
                *err = AVC_ENOMEM;
                return NULL;
            }
            n++;
        }
        if (*end == '\0') {
            break;
        }
    }
    if (n == 0) {
        free(out);
        return NULL;
    }
    *err = AVC_OK;
    return out;
}

int
avc__mail_parse_from(const char *from, char **name, char **addr)
{
    const char *s, *e, *lt, *ns, *ne, *as, *ae;
    size_t i;

    *name = *addr = NULL;
    if (from == NULL) {
        return AVC_EINVAL;
    }
    for (s = from; *s == ' ' || *s == '\t'; s++) {
        /* trim */
    }
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    for (i = 0; s + i < e; i++) {
        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
            return AVC_EINVAL;
        }
    }
    if (e > s && e[-1] == '>') {
        /* "Name <addr>" */
        for (lt = e - 1; lt > s && *lt != '<'; lt--) {
            /* find the opening bracket */
        }
        if (*lt != '<') {
            return AVC_EINVAL;
        }
        as = lt + 1;
        ae = e - 1;
        ns = s;
        ne = lt;
        while (ne > ns && (ne[-1] == ' ' || ne[-1] == '\t')) {
            ne--;
        }
        if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
            ns++;
            ne--;
        }
    } else {
        as = s;
        ae = e;
        ns = ne = s;
    }
    if (!avc__mail_addr_valid(as, (size_t) (ae - as))) {
        return AVC_EINVAL;
    }
    *addr = strndup(as, (size_t) (ae - as));
    *name = strndup(ns, (size_t) (ne - ns));
    if (*addr == NULL || *name == NULL) {
        free(*addr);
        free(*name);
        *name = *addr = NULL;
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

/* headers */

static int
avc_mail_plain_ascii(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e) {
            return 0;
        }
    }
    /* something that looks like an encoded-word would be decoded */
    return memmem(s, n, "=?", 2) == NULL;
}

/* B-encoded words of at most AVC_MAIL_WORD_BYTES bytes, never splitting
 * a UTF-8 sequence, folded onto continuation lines */
static int
avc_mail_encoded_words(avc__buf_t *b, const char *s, size_t n)
{
    size_t i = 0, k;

    while (i < n) {
        k = n - i < AVC_MAIL_WORD_BYTES ? n - i : AVC_MAIL_WORD_BYTES;
        if (i + k < n) {
            while (k > 1 && ((unsigned char) s[i + k] & 0xc0) == 0x80) {
                k--;
            }
        }
        if ((i > 0 && avc__buf_appends(b, "\r\n ") != AVC_OK)
            || avc__buf_appends(b, "=?UTF-8?B?") != AVC_OK
            || avc__buf_base64(b, s + i, k, 0) != AVC_OK
            || avc__buf_appends(b, "?=") != AVC_OK)
        {
            return AVC_ENOMEM;
        }
        i += k;
    }
    return AVC_OK;
}

int
avc__mail_header_encode(avc__buf_t *b, const char *s, size_t name_len)
{
    size_t n = strlen(s);

    if (avc_mail_plain_ascii(s, n) && name_len + 2 + n <= AVC_MAIL_LINE_MAX)
    {
        return avc__buf_append(b, s, n);
    }
    return avc_mail_encoded_words(b, s, n);
}

/* a display name: as is when plain words, quoted when ASCII with
 * specials, B-encoded otherwise */
static int
avc_mail_phrase(avc__buf_t *b, const char *s)
{
    size_t n = strlen(s), i;
    int plain = 1;

    if (!avc_mail_plain_ascii(s, n) || n > 60) {
        return avc_mail_encoded_words(b, s, n);
    }
    for (i = 0; i < n; i++) {
        if (strchr("()<>[]:;@\\,.\"", s[i]) != NULL) {
            plain = 0;
        }
    }
    if (plain) {
        return avc__buf_append(b, s, n);
    }
    if (avc__buf_append(b, "\"", 1) != AVC_OK) {
        return AVC_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        if ((s[i] == '"' || s[i] == '\\')
            && avc__buf_append(b, "\\", 1) != AVC_OK)
        {
            return AVC_ENOMEM;
        }
        if (avc__buf_append(b, s + i, 1) != AVC_OK) {
            return AVC_ENOMEM;
        }
    }
    return avc__buf_append(b, "\"", 1);
}

/* bodies */

static int
avc_mail_qp_token(avc__buf_t *b, const char *tok, size_t n, size_t *col)
{
    if (*col + n > 75) {
        if (avc__buf_appends(b, "=\r\n") != AVC_OK) {
            return AVC_ENOMEM;
        }
        *col = 0;
    }
    *col += n;
    return avc__buf_append(b, tok, n);
}

static int
avc_mail_qp_line(avc__buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, col = 0;
    unsigned char c;
    char esc[3];
    int literal;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];
        if (c == ' ' || c == '\t') {
            /* never at the end of a line, hard or soft */
            literal = i + 1 < n && col + 1 + 3 <= 75;
        } else if (c == '.' || c == 'F') {
            /* a line starting with "." or "From " means something to
             * SMTP and to mbox files; escape it rather than rely on
             * every hop to get it right */
            literal = col != 0
                      || (c == 'F' && (n - i < 5
                                       || memcmp(s + i, "From ", 5) != 0));
            if (col + 1 > 75) {
                literal = 0;    /* it would start the next line */
            }
        } else {
            literal = c >= 33 && c <= 126 && c != '=';
        }
        if (literal) {
            esc[0] = (char) c;
            if (avc_mail_qp_token(b, esc, 1, &col) != AVC_OK) {
                return AVC_ENOMEM;
            }
            continue;
        }
        esc[0] = '=';
        esc[1] = hex[c >> 4];
        esc[2] = hex[c & 15];
        if (avc_mail_qp_token(b, esc, 3, &col) != AVC_OK) {
            return AVC_ENOMEM;
        }
    }
    return AVC_OK;
}

/* every line break of the text becomes one CRLF, no more, no less */
int
avc__mail_qp(avc__buf_t *b, const char *s, size_t n)
{
    size_t i = 0, j;

    while (i < n) {
        for (j = i; j < n && s[j] != '\r' && s[j] != '\n'; j++) {
            /* find the line end: CRLF, LF or CR */
        }
        if (avc_mail_qp_line(b, s + i, j - i) != AVC_OK) {
            return AVC_ENOMEM;
        }
        if (j == n) {
            break;
        }
        if (avc__buf_appends(b, "\r\n") != AVC_OK) {
            return AVC_ENOMEM;
        }
        if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') {
            j++;
        }
        i = j + 1;
    }
    return AVC_OK;
}

/* the message */

static int
avc_mail_date(avc__buf_t *b, time_t now)
{
    static const char *const days[] = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
    };
    static const char *const months[] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
        "Oct", "Nov", "Dec"
    };
    struct tm tm;

    if (gmtime_r(&now, &tm) == NULL) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_mday = 1;
        tm.tm_year = 70;
    }
    return avc__buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
                           days[tm.tm_wday % 7], tm.tm_mday,
                           months[tm.tm_mon % 12], tm.tm_year + 1900,
                           tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int
avc_mail_hex_random(char *out, size_t bytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    size_t i;

    if (bytes > sizeof(r)) {
        return AVC_EINVAL;
    }
    avc__http_random(r, bytes);
    for (i = 0; i < bytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * bytes] = '\0';
    return AVC_OK;
}

/*
 * A body part.  In a multipart body the CRLF before a delimiter belongs
 * to the delimiter, so one is always added: a text that ends in a line
 * break keeps it.  A single body ends in CRLF, as a message must.
 */
static int
avc_mail_part(avc__buf_t *b, const char *boundary, const char *type,
    const char *body)
{
    size_t start;

    if (boundary
        && avc__buf_printf(b, "--%s\r\n", boundary) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    if (avc__buf_printf(b, "Content-Type: %s; charset=UTF-8\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n"
                           "\r\n", type) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    start = b->len;
    if (avc__mail_qp(b, body, strlen(body)) != AVC_OK) {
        return AVC_ENOMEM;
    }
    if (boundary == NULL && b->len - start >= 2
        && memcmp(b->data + b->len - 2, "\r\n", 2) == 0)
    {
        return AVC_OK;
    }
    return avc__buf_appends(b, "\r\n");
}

char *
avc__mail_message(const char *from_name, const char *from_addr,
    char *const *rcpts, const char *subject, const char *text,
    const char *html, time_t now, size_t *len)
{
    char id[33], bnd[25], boundary[40];
    const char *domain;
    avc__buf_t b;
    size_t i, col;
    int rc = AVC_OK;

    domain = strchr(from_addr, '@');
    domain = domain ? domain + 1 : "localhost";
    avc_mail_hex_random(id, 16);
    avc_mail_hex_random(bnd, 12);

    avc__buf_init(&b);
    rc |= avc__buf_appends(&b, "From: ");
    if (from_name && *from_name) {
        rc |= avc_mail_phrase(&b, from_name);
        /* the address on a continuation line when the name is long */
        for (i = b.len; i > 0 && b.data[i - 1] != '\n'; i--) {
            /* the start of the current line */
        }
        col = b.len - i;
        rc |= avc__buf_printf(&b, col + strlen(from_addr) + 3
                                  > AVC_MAIL_LINE_MAX
                                  ? "\r\n <%s>\r\n" : " <%s>\r\n",
                              from_addr);
    } else {
        rc |= avc__buf_printf(&b, "%s\r\n", from_addr);
    }

    rc |= avc__buf_appends(&b, "To: ");
    col = 4;
    for (i = 0; rcpts[i]; i++) {
        if (i > 0) {
            /* room for ", ", the address and the comma that may follow */
            if (col + 3 + strlen(rcpts[i]) > AVC_MAIL_LINE_MAX) {
                rc |= avc__buf_appends(&b, ",\r\n ");
                col = 1;
            } else {
                rc |= avc__buf_appends(&b, ", ");
                col += 2;
            }
        }
        rc |= avc__buf_appends(&b, rcpts[i]);
        col += strlen(rcpts[i]);
    }
    rc |= avc__buf_appends(&b, "\r\nSubject: ");
    rc |= avc__mail_header_encode(&b, subject, 7);
    rc |= avc__buf_appends(&b, "\r\n");
    rc |= avc_mail_date(&b, now);
    rc |= avc__buf_printf(&b, "Message-ID: <%s@%s>\r\n", id, domain);
    rc |= avc__buf_appends(&b, "MIME-Version: 1.0\r\n"
                               "Auto-Submitted: auto-generated\r\n");

    if (text && html) {
        /* "=_" never occurs in quoted-printable output, so the boundary
         * cannot collide with a body */
        snprintf(boundary, sizeof(boundary), "=_avc_%s", bnd);
        rc |= avc__buf_printf(&b, "Content-Type: multipart/alternative; "
                                  "boundary=\"%s\"\r\n\r\n"
                                  "This is a multi-part message in MIME "
                                  "format.\r\n", boundary);
        rc |= avc_mail_part(&b, boundary, "text/plain", text);
        rc |= avc_mail_part(&b, boundary, "text/html", html);
        rc |= avc__buf_printf(&b, "--%s--\r\n", boundary);
    } else {
        rc |= avc_mail_part(&b, NULL, text ? "text/plain" : "text/html",
                            text ? text : html);
    }
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, len);
}

char *
avc__mailgun_url(const char *base, const char *domain)
{
    avc__buf_t b;
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    avc__buf_init(&b);
    if (avc__buf_append(&b, base, n) != AVC_OK
        || avc__buf_printf(&b, "/v3/%s/messages", domain) != AVC_OK)
    {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}
