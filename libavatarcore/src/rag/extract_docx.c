/*
 * Word (.docx) documents: a zip archive read from memory with libzip, of
 * which only word/document.xml is inflated, walked with libxml2's
 * streaming reader (memory bounded by nesting depth, not document size).
 *
 * A DOCX is untrusted input.  Before anything is inflated the central
 * directory is checked against zip bombs: the number of entries, the sum
 * of the declared sizes, the declared size of the document part and its
 * compression ratio.  Inflating never produces more than the declared
 * size (a lying header is an error), and the XML is parsed without
 * network access, DTD loading or entity substitution; a document type
 * declaration, which Word never writes, is refused outright.
 */
#include "extract_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zip.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>

#define AVC_DOCX_MAIN          "word/document.xml"
#define AVC_DOCX_MAX_ENTRIES   10000
#define AVC_DOCX_MAX_XML       (50u * 1024 * 1024)  /* inflated bytes */
#define AVC_DOCX_MAX_TOTAL     (100u * 1024 * 1024) /* all entries, bytes */
#define AVC_DOCX_MAX_RATIO     100                  /* inflated/deflated */
#define AVC_DOCX_RATIO_FLOOR   (1024u * 1024)       /* ratio checked above */
#define AVC_DOCX_READ          65536
#define AVC_DOCX_CHECK_EVERY   4096                 /* reader nodes */

#define AVC_DOCX_NS_W      "http://schemas.openxmlformats.org/" \
                           "wordprocessingml/2006/main"
#define AVC_DOCX_NS_W_STRICT "http://purl.oclc.org/ooxml/wordprocessingml/main"
#define AVC_DOCX_NS_MC     "http://schemas.openxmlformats.org/" \
                           "markup-compatibility/2006"

#define AVC_DOCX_DAMAGED   "the Word (.docx) file is damaged or incomplete"

/* What the block last written to the output was, for its separator. */
typedef enum {
    AVC_DOCX_NONE = 0,
    AVC_DOCX_PARA,
    AVC_DOCX_LIST,
    AVC_DOCX_ROW
} avc_docx_block_t;

typedef struct {
    xmlTextReaderPtr reader;
    const xmlChar *ns;          /* the WordprocessingML namespace in use */
    avc__buf_t *out;
    avc__buf_t para;            /* the current paragraph */
    avc__buf_t cell;            /* the current cell of the outer table */
    avc__buf_t row;             /* the current row of the outer table */
    size_t cap;                 /* bytes of raw text allowed */
    unsigned p_depth;           /* text boxes nest paragraphs */
    unsigned tbl_depth;
    unsigned cells;             /* cells so far in the current row */
    unsigned in_t:1;
    unsigned in_ppr:1;
    unsigned heading:1;
    unsigned list:1;
    unsigned first_row:1;
    avc_docx_block_t last;
} avc_docx_t;

static pthread_once_t avc_docx_once = PTHREAD_ONCE_INIT;

static void
avc_docx_init_libxml(void)
{
    /* xmlInitParser() is not safe to race in libxml2 2.9 */
    xmlInitParser();
}

static void
avc_docx_xml_error(void *data, xmlErrorPtr err)
{
    /* swallowed: libxml2 would print to stderr; the result says enough */
    avc__unused(data);
    avc__unused(err);
}

static zip_t *
avc_docx_open(const void *data, size_t len, int *zerr)
{
    zip_error_t ze;
    zip_source_t *src;
    zip_t *za;

    zip_error_init(&ze);
    src = zip_source_buffer_create(data, len, 0, &ze);
    if (src == NULL) {
        *zerr = zip_error_code_zip(&ze);
        zip_error_fini(&ze);
        return NULL;
    }
    za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (za == NULL) {
        *zerr = zip_error_code_zip(&ze);
        zip_source_free(src);
    }
    zip_error_fini(&ze);
    return za;
}

int
avc__docx_sniff(const void *data, size_t len)
{
    zip_t *za;
    int zerr, found;

    za = avc_docx_open(data, len, &zerr);
    if (za == NULL) {
        return 0;
    }
    found = zip_name_locate(za, AVC_DOCX_MAIN, 0) >= 0;
    zip_discard(za);
    return found;
}

/*
 * Check the central directory, then inflate word/document.xml into a new
 * buffer of *xml_len bytes.
 */
static int
avc_docx_read_main(zip_t *za, const avc__extract_lim_t *lim, char **xml,
                   size_t *xml_len, char **why)
{
    zip_int64_t n, i, idx, got;
    zip_uint64_t total, cap, want;
    zip_stat_t st;
    zip_file_t *zf;
    size_t have;
    char *buf;

    n = zip_get_num_entries(za, 0);
    if (n < 0) {
        return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
    }
    if (n > AVC_DOCX_MAX_ENTRIES) {
        return avc__extract_fail(why, AVC_ETOOBIG,
                                 "the Word (.docx) file has too many parts");
    }

    /* never inflated, but a bomb-sized archive is not a real document */
    total = 0;
    for (i = 0; i < n; i++) {
        if (zip_stat_index(za, (zip_uint64_t) i, 0, &st) != 0) {
            return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
        }
        if ((st.valid & ZIP_STAT_SIZE)
            && (st.size > AVC_DOCX_MAX_TOTAL
                || total + st.size > AVC_DOCX_MAX_TOTAL))
        {
            return avc__extract_fail(why, AVC_ETOOBIG, "the Word (.docx) "
                                     "file expands to more than 100 MB");
        }
        if (st.valid & ZIP_STAT_SIZE) {
            total += st.size;
        }
    }

    idx = zip_name_locate(za, AVC_DOCX_MAIN, 0);
    if (idx < 0) {
        return avc__extract_fail(why, AVC_EPARSE, "the file is not a Word "
                                 "(.docx) document: it has no main part");
    }
    if (zip_stat_index(za, (zip_uint64_t) idx, 0, &st) != 0
        || (st.valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE))
           != (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE))
    {
        return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
    }
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD)
        && st.encryption_method != ZIP_EM_NONE)
    {
        return avc__extract_fail(why, AVC_EPARSE,
                                 "the Word (.docx) file is encrypted");
    }

    /* the streaming parser needs little, but the text can be as large */
    cap = lim->max_memory / 4;
    if (cap > AVC_DOCX_MAX_XML) {
        cap = AVC_DOCX_MAX_XML;
    }
    if (st.size > cap) {
        return avc__extract_fail(why, AVC_ETOOBIG, "the Word (.docx) "
                                 "document is too large to process");
    }
    if (st.size > AVC_DOCX_RATIO_FLOOR
        && (st.comp_size == 0
            || st.size / st.comp_size > AVC_DOCX_MAX_RATIO))
    {
        return avc__extract_fail(why, AVC_ETOOBIG, "the Word (.docx) file "
                                 "is compressed beyond any real document "
                                 "(a zip bomb?)");
    }

    buf = malloc((size_t) st.size + 1);
    if (buf == NULL) {
        return avc__extract_fail(why, AVC_ENOMEM, "out of memory");
    }
    zf = zip_fopen_index(za, (zip_uint64_t) idx, 0);
    if (zf == NULL) {
        free(buf);
        return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
    }

    /* ask for one byte more than declared: getting it means a lie */
    have = 0;
    for ( ;; ) {
        want = st.size + 1 - have;
        if (want > AVC_DOCX_READ) {
            want = AVC_DOCX_READ;
        }
        got = zip_fread(zf, buf + have, want);
        if (got < 0) {
            zip_fclose(zf);
            free(buf);
            return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
        }
        if (got == 0) {
            break;
        }
        have += (size_t) got;
        if (have > st.size) {
            zip_fclose(zf);
            free(buf);
            return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
        }
        if (avc__extract_now_ms() > lim->deadline) {
            zip_fclose(zf);
            free(buf);
            return avc__extract_fail(why, AVC_ETIMEDOUT, "the Word (.docx) "
                                     "file took too long to process");
        }
    }
    zip_fclose(zf);

    if (have != st.size) {
        free(buf);
        return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
    }
    buf[have] = '\0';
    *xml = buf;
    *xml_len = have;
    return AVC_OK;
}

static int
avc_docx_blank(const avc__buf_t *b)
{
    size_t i;

    for (i = 0; i < b->len; i++) {
        if (b->data[i] != ' ' && b->data[i] != '\t' && b->data[i] != '\n') {
            return 0;
        }
    }
    return 1;
}

/* Append a block of text to the output with the separator it needs. */
static int
avc_docx_emit(avc_docx_t *dx, avc_docx_block_t kind, const char *prefix,
              const avc__buf_t *text)
{
    const char *sep;

    if (dx->out->len == 0) {
        sep = "";
    } else if ((kind == AVC_DOCX_LIST && dx->last == AVC_DOCX_LIST)
               || (kind == AVC_DOCX_ROW && !dx->first_row))
    {
        /* list items and the rows of one table stay one block */
        sep = "\n";
    } else {
        sep = "\n\n";
    }
    if (avc__buf_appends(dx->out, sep) != AVC_OK
        || avc__buf_appends(dx->out, prefix) != AVC_OK
        || avc__buf_append(dx->out, text->data, text->len) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    dx->last = kind;
    return dx->out->len > dx->cap ? AVC_ETOOBIG : AVC_OK;
}

/* Inside a table cell, line and tab breaks would break the row apart. */
static int
avc_docx_append_flat(avc__buf_t *to, const avc__buf_t *from)
{
    size_t i, start;

    if (avc_docx_blank(from)) {
        return AVC_OK;
    }
    if (to->len && avc__buf_append(to, " ", 1) != AVC_OK) {
        return AVC_ENOMEM;
    }
    start = to->len;
    if (avc__buf_append(to, from->data, from->len) != AVC_OK) {
        return AVC_ENOMEM;
    }
    for (i = start; i < to->len; i++) {
        if (to->data[i] == '\n' || to->data[i] == '\t') {
            to->data[i] = ' ';
        }
    }
    return AVC_OK;
}

static int
avc_docx_end_paragraph(avc_docx_t *dx)
{
    int rc;

    if (dx->p_depth > 1) {
        dx->p_depth--;
        return avc__buf_append(&dx->para, " ", 1);
    }
    dx->p_depth = 0;

    if (dx->tbl_depth) {
        rc = avc_docx_append_flat(&dx->cell, &dx->para);

    } else if (avc_docx_blank(&dx->para)) {
        rc = AVC_OK;

    } else if (dx->list && !dx->heading) {
        rc = avc_docx_emit(dx, AVC_DOCX_LIST, "- ", &dx->para);

    } else {
        /* headings too stand alone, so a chunk can start at them */
        rc = avc_docx_emit(dx, AVC_DOCX_PARA, "", &dx->para);
    }

    avc__buf_reset(&dx->para);
    return rc;
}

static int
avc_docx_end_cell(avc_docx_t *dx)
{
    if (dx->tbl_depth > 1) {
        return avc__buf_append(&dx->cell, " ", 1);
    }
    if ((dx->cells++ && avc__buf_append(&dx->row, " | ", 3) != AVC_OK)
        || avc__buf_append(&dx->row, dx->cell.data ? dx->cell.data : "",
                           dx->cell.len) != AVC_OK)
    {
        return AVC_ENOMEM;
    }
    avc__buf_reset(&dx->cell);
    return AVC_OK;
}

static int
avc_docx_end_row(avc_docx_t *dx)
{
    int rc;

    if (dx->tbl_depth > 1) {
        return avc__buf_append(&dx->cell, " ", 1);
    }
    rc = AVC_OK;
    /* a row of empty cells is only " | " separators */
    if (dx->row.len > 3 * (dx->cells ? dx->cells - 1 : 0)) {
        rc = avc_docx_emit(dx, AVC_DOCX_ROW, "", &dx->row);
        dx->first_row = 0;
    }
    avc__buf_reset(&dx->row);
    dx->cells = 0;
    return rc;
}

static int
avc_docx_is_heading_style(const xmlChar *val)
{
    const char *v = (const char *) val;

    return strncasecmp(v, "heading", 7) == 0
           || strcasecmp(v, "title") == 0 || strcasecmp(v, "subtitle") == 0;
}

/* Word's built-in list styles carry their numbering in styles.xml. */
static int
avc_docx_is_list_style(const xmlChar *val)
{
    const char *v = (const char *) val;

    return strncasecmp(v, "listbullet", 10) == 0
           || strncasecmp(v, "listnumber", 10) == 0;
}

/* An element start (empty: also its end) of the WordprocessingML. */
static int
avc_docx_element(avc_docx_t *dx, const char *name, int empty)
{
    xmlChar *val;

    if (strcmp(name, "p") == 0) {
        if (dx->p_depth++ == 0) {
            avc__buf_reset(&dx->para);
            dx->heading = 0;
            dx->list = 0;
            dx->in_ppr = 0;
        } else if (avc__buf_append(&dx->para, " ", 1) != AVC_OK) {
            /* a text box's paragraph inside another: keep words apart */
            return AVC_ENOMEM;
        }
        return empty ? avc_docx_end_paragraph(dx) : AVC_OK;
    }

    if (strcmp(name, "pPr") == 0) {
        dx->in_ppr = (dx->p_depth == 1 && !empty);
        return AVC_OK;
    }

    if (dx->in_ppr) {
        if (strcmp(name, "pStyle") == 0) {
            val = xmlTextReaderGetAttributeNs(dx->reader, BAD_CAST "val",
                                              dx->ns);
            if (val != NULL) {
                if (avc_docx_is_heading_style(val)) {
                    dx->heading = 1;
                } else if (avc_docx_is_list_style(val)) {
                    dx->list = 1;
                }
                xmlFree(val);
            }
        } else if (strcmp(name, "outlineLvl") == 0) {
            dx->heading = 1;
        } else if (strcmp(name, "numPr") == 0) {
            dx->list = 1;
        }
        /* w:tabs/w:tab in pPr are tab stops, not text */
        return AVC_OK;
    }

    if (strcmp(name, "t") == 0) {
        dx->in_t = !empty;
        return AVC_OK;
    }

    if (dx->p_depth) {
        if (strcmp(name, "tab") == 0 || strcmp(name, "ptab") == 0) {
            return avc__buf_append(&dx->para, "\t", 1);
        }
        if (strcmp(name, "br") == 0 || strcmp(name, "cr") == 0) {
            return avc__buf_append(&dx->para, "\n", 1);
        }
        if (strcmp(name, "noBreakHyphen") == 0) {
            return avc__buf_append(&dx->para, "-", 1);
        }
    }

    if (strcmp(name, "tbl") == 0) {
        if (dx->tbl_depth++ == 0) {
            dx->first_row = 1;
            avc__buf_reset(&dx->row);
            dx->cells = 0;
        }
        if (empty) {
            dx->tbl_depth--;
        }
        return AVC_OK;
    }
    if (dx->tbl_depth == 0) {
        return AVC_OK;
    }
    if (strcmp(name, "tc") == 0) {
        if (dx->tbl_depth == 1) {
            avc__buf_reset(&dx->cell);
        }
        return empty ? avc_docx_end_cell(dx) : AVC_OK;
    }
    if (strcmp(name, "tr") == 0) {
        if (dx->tbl_depth == 1) {
            avc__buf_reset(&dx->row);
            dx->cells = 0;
        }
        return empty ? avc_docx_end_row(dx) : AVC_OK;
    }
    return AVC_OK;
}

static int
avc_docx_element_end(avc_docx_t *dx, const char *name)
{
    if (strcmp(name, "p") == 0) {
        return dx->p_depth ? avc_docx_end_paragraph(dx) : AVC_OK;
    }
    if (strcmp(name, "pPr") == 0) {
        dx->in_ppr = 0;
    } else if (strcmp(name, "t") == 0) {
        dx->in_t = 0;
    } else if (strcmp(name, "tbl") == 0 && dx->tbl_depth) {
        dx->tbl_depth--;
    } else if (strcmp(name, "tc") == 0 && dx->tbl_depth) {
        return avc_docx_end_cell(dx);
    } else if (strcmp(name, "tr") == 0 && dx->tbl_depth) {
        return avc_docx_end_row(dx);
    }
    return AVC_OK;
}

static int
avc_docx_walk(avc_docx_t *dx, const avc__extract_lim_t *lim, char **why)
{
    xmlTextReaderPtr r = dx->reader;
    const xmlChar *ns, *name, *value;
    unsigned long nodes;
    int ret, type, rc;

    nodes = 0;
    rc = AVC_OK;
    ret = xmlTextReaderRead(r);

    while (ret == 1) {
        if (++nodes % AVC_DOCX_CHECK_EVERY == 0
            && avc__extract_now_ms() > lim->deadline)
        {
            return avc__extract_fail(why, AVC_ETIMEDOUT, "the Word (.docx) "
                                     "file took too long to process");
        }

        type = xmlTextReaderNodeType(r);

        switch (type) {

        case XML_READER_TYPE_DOCUMENT_TYPE:
            return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);

        case XML_READER_TYPE_ELEMENT:
        case XML_READER_TYPE_END_ELEMENT:
            ns = xmlTextReaderConstNamespaceUri(r);
            name = xmlTextReaderConstLocalName(r);
            if (ns == NULL || name == NULL) {
                break;
            }
            if (type == XML_READER_TYPE_ELEMENT
                && xmlStrEqual(ns, BAD_CAST AVC_DOCX_NS_MC)
                && xmlStrEqual(name, BAD_CAST "Fallback"))
            {
                /* the same content again, for older readers */
                ret = xmlTextReaderNext(r);
                continue;
            }
            if (dx->ns == NULL
                && (xmlStrEqual(ns, BAD_CAST AVC_DOCX_NS_W)
                    || xmlStrEqual(ns, BAD_CAST AVC_DOCX_NS_W_STRICT)))
            {
                dx->ns = xmlStrEqual(ns, BAD_CAST AVC_DOCX_NS_W)
                         ? BAD_CAST AVC_DOCX_NS_W
                         : BAD_CAST AVC_DOCX_NS_W_STRICT;
            }
            if (dx->ns == NULL || !xmlStrEqual(ns, dx->ns)) {
                break;
            }
            if (type == XML_READER_TYPE_ELEMENT
                && (xmlStrEqual(name, BAD_CAST "del")
                    || xmlStrEqual(name, BAD_CAST "moveFrom")))
            {
                /* tracked changes: text deleted or moved away */
                ret = xmlTextReaderNext(r);
                continue;
            }
            if (type == XML_READER_TYPE_ELEMENT) {
                rc = avc_docx_element(dx, (const char *) name,
                                      xmlTextReaderIsEmptyElement(r) == 1);
            } else {
                rc = avc_docx_element_end(dx, (const char *) name);
            }
            break;

        case XML_READER_TYPE_TEXT:
        case XML_READER_TYPE_CDATA:
        case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
            if (dx->in_t && dx->p_depth) {
                value = xmlTextReaderConstValue(r);
                if (value != NULL) {
                    rc = avc__buf_appends(&dx->para, (const char *) value);
                }
            }
            break;

        default:
            break;
        }

        if (rc == AVC_OK
            && (dx->para.len > dx->cap || dx->cell.len > dx->cap
                || dx->row.len > dx->cap))
        {
            rc = AVC_ETOOBIG;
        }
        if (rc == AVC_ETOOBIG) {
            return avc__extract_fail(why, rc, "the document contains more "
                                     "text than is allowed");
        }
        if (rc != AVC_OK) {
            return avc__extract_fail(why, AVC_ENOMEM, "out of memory");
        }

        ret = xmlTextReaderRead(r);
    }

    if (ret < 0) {
        return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
    }
    if (dx->ns == NULL) {
        return avc__extract_fail(why, AVC_EPARSE, "the file is not a Word "
                                 "(.docx) document");
    }
    return AVC_OK;
}

int
avc__extract_docx(const void *data, size_t len,
                  const avc__extract_lim_t *lim, avc__buf_t *out, char **why)
{
    avc_docx_t dx;
    zip_t *za;
    char *xml;
    size_t xml_len;
    int zerr, rc;

    zerr = ZIP_ER_OK;
    za = avc_docx_open(data, len, &zerr);
    if (za == NULL) {
        if (zerr == ZIP_ER_MEMORY) {
            return avc__extract_fail(why, AVC_ENOMEM, "out of memory");
        }
        return avc__extract_fail(why, AVC_EPARSE, AVC_DOCX_DAMAGED);
    }
    xml = NULL;
    xml_len = 0;
    rc = avc_docx_read_main(za, lim, &xml, &xml_len, why);
    zip_discard(za);
    if (rc != AVC_OK) {
        return rc;
    }

    pthread_once(&avc_docx_once, avc_docx_init_libxml);

    memset(&dx, 0, sizeof(dx));
    dx.out = out;
    avc__buf_init(&dx.para);
    avc__buf_init(&dx.cell);
    avc__buf_init(&dx.row);
    /* raw text shrinks when normalised; the exact cap is checked after */
    dx.cap = lim->max_output > SIZE_MAX / 2 ? SIZE_MAX / 2
                                            : lim->max_output * 2;

    /*
     * No XML_PARSE_NOENT (entities stay unexpanded), no DTDLOAD/DTDATTR,
     * no HUGE (libxml2's own size limits stay on), no network.
     */
    dx.reader = xmlReaderForMemory(xml, (int) xml_len, NULL, NULL,
                                   XML_PARSE_NONET | XML_PARSE_NOERROR
                                   | XML_PARSE_NOWARNING);
    if (dx.reader == NULL) {
        free(xml);
        return avc__extract_fail(why, AVC_ENOMEM, "out of memory");
    }
    xmlTextReaderSetStructuredErrorHandler(dx.reader, avc_docx_xml_error,
                                           NULL);

    rc = avc_docx_walk(&dx, lim, why);

    xmlFreeTextReader(dx.reader);
    free(xml);
    avc__buf_free(&dx.para);
    avc__buf_free(&dx.cell);
    avc__buf_free(&dx.row);
    return rc;
}
