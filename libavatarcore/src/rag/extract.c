/*
 * Document extraction: sniffing, the per-type dispatch, plain text, the
 * text normaliser shared by every type, and titles.  DOCX lives in
 * extract_docx.c, PDF in extract_pdf.c.
 */
#include "extract_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define AVC_EX_PDF_MAGIC_WINDOW  1024
#define AVC_EX_TITLE_MAX         200     /* code points */
#define AVC_EX_STAGE             4096

uint64_t
avc__extract_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int
avc__extract_fail(char **why, int rc, const char *reason)
{
    if (why != NULL && *why == NULL) {
        /* NULL when out of memory: documented in extract.h */
        *why = strdup(reason);
    }
    return rc;
}

/*
 * Decode one code point at p (p < end).  Invalid or truncated sequences
 * decode as U+FFFD of length 1, so that a scan always advances.
 */
static size_t
avc_ex_decode(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
    uint32_t c = p[0], v, min;
    size_t need, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1; v = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2; v = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3; v = c & 0x07; min = 0x10000;
    } else {
        goto invalid;
    }
    if ((size_t) (end - p) <= need) {
        goto invalid;
    }
    for (i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            goto invalid;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        goto invalid;
    }
    *cp = v;
    return need + 1;

invalid:
    *cp = 0xfffd;
    return 1;
}

/* Horizontal blanks, collapsed to one; NBSP and the Unicode spaces too. */
static int
avc_ex_is_blank(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == 0xa0 || cp == 0x1680
           || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f
           || cp == 0x205f || cp == 0x3000;
}

/*
 * Characters that carry no text: C0 and C1 controls (line ends and tabs
 * are handled before), DEL, and invisible format characters that would
 * otherwise split words for search (soft hyphen, zero-width space, word
 * joiner, stray byte order marks).
 */
static int
avc_ex_is_dropped(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0xad
           || cp == 0x200b || cp == 0x2060 || cp == 0xfeff;
}

typedef struct {
    avc__buf_t *out;
    size_t n;
    int rc;
    char stage[AVC_EX_STAGE];
} avc_ex_stage_t;

static void
avc_ex_put(avc_ex_stage_t *st, const void *p, size_t n)
{
    if (st->n + n > sizeof(st->stage)) {
        if (st->rc == AVC_OK
            && avc__buf_append(st->out, st->stage, st->n) != AVC_OK)
        {
            st->rc = AVC_ENOMEM;
        }
        st->n = 0;
    }
    memcpy(st->stage + st->n, p, n);
    st->n += n;
}

int
avc__text_normalize(avc__buf_t *out, const char *in, size_t n)
{
    const unsigned char *p = (const unsigned char *) in, *end = p + n;
    avc_ex_stage_t *st;
    unsigned newlines;
    uint32_t cp;
    size_t len;
    int blank, content, rc;

    /* the staging area keeps the per-character work off the buffer */
    st = malloc(sizeof(avc_ex_stage_t));
    if (st == NULL) {
        return AVC_ENOMEM;
    }
    st->out = out;
    st->n = 0;
    st->rc = AVC_OK;

    newlines = 0;
    blank = 0;
    content = 0;

    while (p < end) {
        len = avc_ex_decode(p, end, &cp);

        if (cp == '\r' || cp == '\n' || cp == 0x85 || cp == 0x2028) {
            if (cp == '\r' && p + 1 < end && p[1] == '\n') {
                len = 2;
            }
            newlines++;
            blank = 0;

        } else if (cp == '\f' || cp == 0x2029) {
            /* a page or paragraph separator ends a paragraph */
            newlines += 2;
            blank = 0;

        } else if (avc_ex_is_blank(cp)) {
            if (blank != '\t') {
                blank = (cp == '\t') ? '\t' : ' ';
            }

        } else if (!avc_ex_is_dropped(cp)) {
            if (content) {
                if (newlines) {
                    avc_ex_put(st, "\n\n", newlines > 1 ? 2 : 1);
                } else if (blank) {
                    avc_ex_put(st, blank == '\t' ? "\t" : " ", 1);
                }
            }
            if (cp == 0xfffd && len == 1) {
                avc_ex_put(st, "\xef\xbf\xbd", 3);
            } else {
                avc_ex_put(st, p, len);
            }
            content = 1;
            newlines = 0;
            blank = 0;
        }

        p += len;
    }

    if (st->rc == AVC_OK && st->n
        && avc__buf_append(out, st->stage, st->n) != AVC_OK)
    {
        st->rc = AVC_ENOMEM;
    }
    rc = st->rc;
    free(st);
    return rc;
}

static int
avc_ex_has_bom(const unsigned char *p, size_t len)
{
    return len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf;
}

static int
avc_ex_sniff_text(const unsigned char *p, size_t len)
{
    size_t i, controls;

    if (avc_ex_has_bom(p, len)) {
        p += 3;
        len -= 3;
    }
    controls = 0;
    for (i = 0; i < len; i++) {
        if (p[i] == '\0') {
            return 0;
        }
        if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r'
             && p[i] != '\f')
            || p[i] == 0x7f)
        {
            controls++;
        }
    }
    /* at most 1%: stray escapes survive, binary formats do not */
    if (controls * 100 > len) {
        return 0;
    }
    return avc__utf8_valid((const char *) p, len);
}

AVC_API avc_doc_type_t
avc_doc_sniff(const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t window;

    if (data == NULL) {
        return len == 0 ? AVC_DOC_TXT : AVC_DOC_UNKNOWN;
    }
    if (len >= 5 && memcmp(p, "%PDF-", 5) == 0) {
        return AVC_DOC_PDF;
    }
    if (len >= 4 && p[0] == 'P' && p[1] == 'K') {
        return avc__docx_sniff(data, len) ? AVC_DOC_DOCX : AVC_DOC_UNKNOWN;
    }

    /*
     * Readers accept junk before the header; require the trailer too, so
     * that a text file quoting "%PDF-" stays text.
     */
    window = len < AVC_EX_PDF_MAGIC_WINDOW ? len : AVC_EX_PDF_MAGIC_WINDOW;
    if (memmem(p, window, "%PDF-", 5) != NULL
        && memmem(p + len - window, window, "%%EOF", 5) != NULL
        && !avc_ex_sniff_text(p, len))
    {
        return AVC_DOC_PDF;
    }

    return avc_ex_sniff_text(p, len) ? AVC_DOC_TXT : AVC_DOC_UNKNOWN;
}

AVC_API avc_doc_type_t
avc_doc_type_by_name(const char *filename)
{
    const char *dot;

    if (filename == NULL) {
        return AVC_DOC_UNKNOWN;
    }
    dot = strrchr(filename, '.');
    if (dot == NULL || strchr(dot, '/') != NULL) {
        return AVC_DOC_UNKNOWN;
    }
    if (strcasecmp(dot, ".txt") == 0) {
        return AVC_DOC_TXT;
    }
    if (strcasecmp(dot, ".pdf") == 0) {
        return AVC_DOC_PDF;
    }
    if (strcasecmp(dot, ".docx") == 0) {
        return AVC_DOC_DOCX;
    }
    return AVC_DOC_UNKNOWN;
}

AVC_API const char *
avc_doc_type_name(avc_doc_type_t type)
{
    switch (type) {
    case AVC_DOC_TXT:
        return "txt";
    case AVC_DOC_PDF:
        return "pdf";
    case AVC_DOC_DOCX:
        return "docx";
    default:
        return "unknown";
    }
}

static int
avc_ex_txt(const unsigned char *p, size_t len, avc__buf_t *out, char **why)
{
    if (avc_ex_has_bom(p, len)) {
        p += 3;
        len -= 3;
    }
    if (!avc__utf8_valid((const char *) p, len)) {
        return avc__extract_fail(why, AVC_EPARSE,
                                 "file is not valid UTF-8 text");
    }
    if (avc__text_normalize(out, (const char *) p, len) != AVC_OK) {
        return avc__extract_fail(why, AVC_ENOMEM, "out of memory");
    }
    return AVC_OK;
}

AVC_API int
avc_extract(const void *data, size_t len, avc_doc_type_t type,
            size_t max_output, unsigned timeout_ms, size_t max_memory,
            char **text, size_t *text_len, char **why)
{
    avc__extract_lim_t lim;
    avc__buf_t raw, out;
    int rc;

    if (why != NULL) {
        *why = NULL;
    }
    if (text_len != NULL) {
        *text_len = 0;
    }
    if (text == NULL || (data == NULL && len != 0)) {
        return avc__extract_fail(why, AVC_EINVAL, "invalid arguments");
    }
    *text = NULL;
    if (data == NULL) {
        data = "";
    }

    lim.max_output = max_output ? max_output : AVC_EXTRACT_MAX_OUTPUT;
    lim.max_memory = max_memory ? max_memory : AVC_EXTRACT_MAX_MEMORY;
    lim.timeout_ms = timeout_ms ? timeout_ms : AVC_EXTRACT_TIMEOUT_MS;
    lim.deadline = avc__extract_now_ms() + lim.timeout_ms;

    avc__buf_init(&raw);
    avc__buf_init(&out);

    switch (type) {
    case AVC_DOC_TXT:
        rc = avc_ex_txt(data, len, &out, why);
        break;
    case AVC_DOC_DOCX:
        rc = avc__extract_docx(data, len, &lim, &raw, why);
        break;
    case AVC_DOC_PDF:
        rc = avc__extract_pdf(data, len, &lim, &raw, why);
        break;
    default:
        rc = avc__extract_fail(why, AVC_EINVAL, "the file is not a text, "
                               "PDF or Word (.docx) document");
    }

    if (rc == AVC_OK && type != AVC_DOC_TXT
        && avc__text_normalize(&out, raw.data ? raw.data : "", raw.len)
           != AVC_OK)
    {
        rc = avc__extract_fail(why, AVC_ENOMEM, "out of memory");
    }
    avc__buf_free(&raw);

    if (rc == AVC_OK && out.len == 0) {
        rc = avc__extract_fail(why, AVC_EINVAL, type == AVC_DOC_PDF
                               ? "the PDF file contains no text (scanned "
                                 "pages are images, not text)"
                               : "the document contains no text");
    }
    if (rc == AVC_OK && out.len > lim.max_output) {
        rc = avc__extract_fail(why, AVC_ETOOBIG, "the document contains "
                               "more text than is allowed");
    }
    if (rc != AVC_OK) {
        avc__buf_free(&out);
        return rc;
    }

    *text = avc__buf_steal(&out, text_len);
    return AVC_OK;
}

AVC_API char *
avc_doc_title(const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *) text, *end, *eol;
    const unsigned char *s, *e;
    uint32_t cp;
    size_t n, chars;
    char *title;

    if (text == NULL) {
        return NULL;
    }
    end = p + len;

    for ( /* void */ ; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }
        s = p;
        e = eol;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) {
            s++;
        }
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
            e--;
        }
        if (s == e) {
            if (eol == end) {
                break;
            }
            continue;
        }

        /* cut at a code point boundary, then drop blanks left at the cut */
        chars = 0;
        for (p = s; p < e && chars < AVC_EX_TITLE_MAX; chars++) {
            p += avc_ex_decode(p, e, &cp);
        }
        e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        n = (size_t) (e - s);
        title = malloc(n + 1);
        if (title == NULL) {
            return NULL;
        }
        memcpy(title, s, n);
        title[n] = '\0';
        return title;
    }

    return NULL;
}
