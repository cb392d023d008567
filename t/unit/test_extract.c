/*
 * Document extraction: sniffing and names, plain text, the normaliser,
 * titles, DOCX (structure, zip bombs, damaged files) and PDF through
 * pdftotext (text, damaged files, deadline, output and memory caps, no
 * zombies, a host that reaps every child, several threads at once), and
 * not one byte written to stderr by the library.
 *
 * Fixtures come from t/data (made by t/data/make-fixtures.sh), or from
 * $AVC_TEST_DATA; large inputs are generated here, never committed.
 */
#include "tap.h"

#include <avatarcore/extract.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <zip.h>

static const char *data_dir;

/* ---- helpers ------------------------------------------------------------ */

static char *
slurp(const char *name, size_t *len)
{
    char path[1024];
    struct stat st;
    char *buf;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0
        || (buf = malloc((size_t) st.st_size + 1)) == NULL)
    {
        fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, (size_t) st.st_size, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Children of this process, zombies included. */
static int
count_children(void)
{
    char path[300], buf[512], *p;
    struct dirent *de;
    int n, fd, ppid;
    ssize_t r;
    DIR *d;

    d = opendir("/proc");
    if (d == NULL) {
        return -1;
    }
    n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            continue;
        }
        r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0) {
            continue;
        }
        buf[r] = '\0';
        /* pid (comm) state ppid ...; comm may hold spaces and parens */
        p = strrchr(buf, ')');
        if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/*
 * Wait (up to 3 s) until this process has no child left, reaping the
 * orphans that come back to it as a subreaper.  The number reaped, or -1
 * when a child is still there.
 */
static int
settle(void)
{
    uint64_t until = now_ms() + 3000;
    int n, status;

    n = 0;
    while (count_children() > 0) {
        if (waitpid(-1, &status, WNOHANG) > 0) {
            n++;
            continue;
        }
        if (now_ms() > until) {
            return -1;
        }
        usleep(10000);
    }
    return n;
}

typedef struct {
    const char *name;
    const char *data;
    size_t len;
} entry_t;

/* A zip archive in memory, made with libzip. */
static char *
make_zip(const entry_t *e, size_t n, size_t *len)
{
    zip_source_t *src, *part;
    zip_error_t ze;
    zip_stat_t st;
    zip_t *za;
    char *buf;
    size_t i;

    zip_error_init(&ze);
    src = zip_source_buffer_create(NULL, 0, 0, &ze);
    za = src ? zip_open_from_source(src, ZIP_TRUNCATE, &ze) : NULL;
    zip_error_fini(&ze);
    if (za == NULL) {
        zip_source_free(src);
        return NULL;
    }
    zip_source_keep(src);
    for (i = 0; i < n; i++) {
        part = zip_source_buffer(za, e[i].data, e[i].len, 0);
        if (part == NULL
            || zip_file_add(za, e[i].name, part, ZIP_FL_ENC_UTF_8) < 0)
        {
            zip_source_free(part);
            zip_discard(za);
            zip_source_free(src);
            return NULL;
        }
    }
    if (zip_close(za) != 0) {
        zip_discard(za);
        zip_source_free(src);
        return NULL;
    }
    buf = NULL;
    if (zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0) {
        buf = malloc(st.size + 1);
        if (buf && zip_source_read(src, buf, st.size) == (zip_int64_t) st.size)
        {
            *len = st.size;
        } else {
            free(buf);
            buf = NULL;
        }
        zip_source_close(src);
    }
    zip_source_free(src);
    return buf;
}

#define W_NS "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

static char *
make_docx(const char *body, size_t *len)
{
    entry_t e[2];
    char *xml, *zip;
    size_t n;

    n = strlen(body) + 256;
    xml = malloc(n);
    if (xml == NULL) {
        return NULL;
    }
    snprintf(xml, n, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
             "<w:document xmlns:w=\"" W_NS "\"><w:body>%s</w:body>"
             "</w:document>", body);
    e[0].name = "[Content_Types].xml";
    e[0].data = "<Types/>";
    e[0].len = 8;
    e[1].name = "word/document.xml";
    e[1].data = xml;
    e[1].len = strlen(xml);
    zip = make_zip(e, 2, len);
    free(xml);
    return zip;
}

/* A PDF of n pages sharing one content stream of 50 lines. */
static char *
make_pdf(unsigned pages, size_t *len)
{
    size_t cap, off, *offs, nobj, i;
    char *buf, ops[8192];
    int k, m;

    m = snprintf(ops, sizeof(ops), "BT /F1 10 Tf 40 760 Td\n");
    for (k = 0; k < 50; k++) {
        m += snprintf(ops + m, sizeof(ops) - (size_t) m,
                      "(Line %d: the quick brown fox jumps over the lazy "
                      "dog.) Tj 0 -14 Td\n", k);
    }
    m += snprintf(ops + m, sizeof(ops) - (size_t) m, "ET\n");

    nobj = 4 + pages;
    cap = 16384 + (size_t) pages * 160;
    buf = malloc(cap);
    offs = malloc(sizeof(size_t) * (nobj + 1));
    if (buf == NULL || offs == NULL) {
        free(buf);
        free(offs);
        return NULL;
    }

#define PUT(...) off += (size_t) snprintf(buf + off, cap - off, __VA_ARGS__)
    off = 0;
    PUT("%%PDF-1.4\n");
    offs[1] = off;
    PUT("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    offs[2] = off;
    PUT("2 0 obj\n<< /Type /Pages /Count %u /Kids [", pages);
    for (i = 0; i < pages; i++) {
        PUT("%zu 0 R ", 5 + i);
    }
    PUT("] >>\nendobj\n");
    offs[3] = off;
    PUT("3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\n"
        "endobj\n");
    offs[4] = off;
    PUT("4 0 obj\n<< /Length %d >>\nstream\n%sendstream\nendobj\n", m, ops);
    for (i = 0; i < pages; i++) {
        offs[5 + i] = off;
        PUT("%zu 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]"
            " /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>\n"
            "endobj\n", 5 + i);
    }
    i = off;
    PUT("xref\n0 %zu\n0000000000 65535 f \n", nobj + 1);
    for (k = 1; (size_t) k <= nobj; k++) {
        PUT("%010zu 00000 n \n", offs[k]);
    }
    PUT("trailer\n<< /Size %zu /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
        nobj + 1, i);
#undef PUT

    free(offs);
    *len = off;
    return buf;
}

/* ---- sniffing ----------------------------------------------------------- */

static void
test_sniff(void)
{
    static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    static const char utf16[] = "\xff\xfeH\0i\0\n\0";
    static const char junk_pdf[] = "\x01\x02garbage\x00\x80\xff%PDF-1.4\n"
                                   "1 0 obj\n%%EOF\n";
    char *pdf, *docx, *zip, noisy[200];
    size_t pdf_len, docx_len, zip_len;

    pdf = slurp("sample.pdf", &pdf_len);
    docx = slurp("sample.docx", &docx_len);
    zip = slurp("notword.zip", &zip_len);
    if (!TAP_OK(pdf && docx && zip, "fixtures in %s", data_dir)) {
        free(pdf);
        free(docx);
        free(zip);
        return;
    }

    TAP_IS(avc_doc_sniff(pdf, pdf_len), AVC_DOC_PDF, "PDF by its magic");
    TAP_IS(avc_doc_sniff(docx, docx_len), AVC_DOC_DOCX,
           "DOCX: a zip with word/document.xml");
    TAP_IS(avc_doc_sniff(zip, zip_len), AVC_DOC_UNKNOWN,
           "a zip without word/document.xml is unknown");
    TAP_IS(avc_doc_sniff(docx, docx_len / 2), AVC_DOC_UNKNOWN,
           "a truncated DOCX is unknown");
    TAP_IS(avc_doc_sniff("Hello, Adam.\n", 13), AVC_DOC_TXT, "text");
    TAP_IS(avc_doc_sniff("\xef\xbb\xbf" "caf\xc3\xa9\r\n", 9), AVC_DOC_TXT,
           "UTF-8 text with a BOM");
    TAP_IS(avc_doc_sniff("", 0), AVC_DOC_TXT, "an empty file is text");
    TAP_IS(avc_doc_sniff("caf\xe9 cr\xe8me", 10), AVC_DOC_UNKNOWN,
           "Latin-1 is not UTF-8 text");
    TAP_IS(avc_doc_sniff(png, sizeof(png) - 1), AVC_DOC_UNKNOWN, "PNG");
    TAP_IS(avc_doc_sniff(utf16, sizeof(utf16) - 1), AVC_DOC_UNKNOWN,
           "UTF-16 (NUL bytes)");
    memset(noisy, 'a', sizeof(noisy));
    noisy[10] = '\x1b';
    noisy[20] = '\x07';
    noisy[30] = '\x02';
    TAP_IS(avc_doc_sniff(noisy, sizeof(noisy)), AVC_DOC_UNKNOWN,
           "1.5%% control characters is not text");
    noisy[30] = 'a';
    TAP_IS(avc_doc_sniff(noisy, sizeof(noisy)), AVC_DOC_TXT,
           "1%% control characters is still text");
    TAP_IS(avc_doc_sniff("Save as %PDF-1.7 then %%EOF\n", 28), AVC_DOC_TXT,
           "text quoting the PDF magic stays text");
    TAP_IS(avc_doc_sniff(junk_pdf, sizeof(junk_pdf) - 1), AVC_DOC_PDF,
           "binary junk before %%PDF- with a trailer is a PDF");
    TAP_IS(avc_doc_sniff(NULL, 5), AVC_DOC_UNKNOWN, "NULL data");

    TAP_IS(avc_doc_type_by_name("guide.TXT"), AVC_DOC_TXT, ".TXT");
    TAP_IS(avc_doc_type_by_name("Menu Selling.Pdf"), AVC_DOC_PDF, ".Pdf");
    TAP_IS(avc_doc_type_by_name("a.b.docx"), AVC_DOC_DOCX, ".docx");
    TAP_IS(avc_doc_type_by_name("old.doc"), AVC_DOC_UNKNOWN, ".doc");
    TAP_IS(avc_doc_type_by_name("README"), AVC_DOC_UNKNOWN, "no extension");
    TAP_IS(avc_doc_type_by_name("x.pdf/y"), AVC_DOC_UNKNOWN,
           "a dot in a directory is no extension");
    TAP_IS(avc_doc_type_by_name(".pdf"), AVC_DOC_PDF, "only an extension");
    TAP_IS(avc_doc_type_by_name(NULL), AVC_DOC_UNKNOWN, "NULL name");

    TAP_OK(avc_doc_sniff("plain words\n", 12)
           != avc_doc_type_by_name("fake.pdf"),
           "a text file named .pdf: content and name disagree");
    TAP_OK(avc_doc_sniff(pdf, pdf_len) != avc_doc_type_by_name("x.docx"),
           "a PDF named .docx: content and name disagree");
    TAP_OK(avc_doc_sniff(docx, docx_len) == avc_doc_type_by_name("x.docx"),
           "a DOCX named .docx: they agree");

    TAP_STR(avc_doc_type_name(AVC_DOC_DOCX), "docx", "type name");
    TAP_STR(avc_doc_type_name((avc_doc_type_t) 99), "unknown",
            "unknown type name");

    free(pdf);
    free(docx);
    free(zip);
}

/* ---- plain text and the normaliser -------------------------------------- */

static void
expect_text(const char *in, size_t len, const char *want, const char *name)
{
    char *text, *why;
    size_t n;
    int rc;

    rc = avc_extract(in, len, AVC_DOC_TXT, 0, 0, 0, &text, &n, &why);
    TAP_IS(rc, AVC_OK, "%s: extracted", name);
    TAP_STR(text, want, "%s: text", name);
    TAP_OK(text == NULL || n == strlen(text), "%s: length", name);
    TAP_OK(why == NULL, "%s: no reason on success", name);
    free(text);
    free(why);
}

static void
expect_fail(const void *in, size_t len, avc_doc_type_t type, int want_rc,
            const char *want_why, const char *name)
{
    char *text, *why;
    int rc;

    text = (char *) "unset";
    rc = avc_extract(in, len, type, 0, 0, 0, &text, NULL, &why);
    TAP_IS(rc, want_rc, "%s: %s", name, avc_err_name(want_rc));
    TAP_OK(text == NULL, "%s: no text", name);
    if (want_why) {
        TAP_STR(why, want_why, "%s: reason", name);
    } else {
        TAP_OK(why != NULL && *why, "%s: a reason: %s", name,
               why ? why : "(null)");
    }
    free(why);
}

static void
test_txt(void)
{
    static const char crlf[] =
        "\xef\xbb\xbf  Title line  \r\n\r\n\r\n\r\n"
        "Body  text\twith   spaces \r\n"
        "next\rline\x01\x7f end\r\n";
    static const char mixed[] =
        "page one\fpage two\n\n\n\n\nthird\xc2\xa0\xc2\xa0word"
        " soft\xc2\xadhyphen \xc2\x85" "c1\x1b[0m \t \t tabbed\n \n";
    char *text, *why;
    int rc;

    expect_text(crlf, sizeof(crlf) - 1,
                "Title line\n\nBody text\twith spaces\nnext\nline end",
                "BOM, CRLF, CR, blanks, controls");
    expect_text(mixed, sizeof(mixed) - 1,
                "page one\n\npage two\n\nthird word softhyphen\n"
                "c1[0m\ttabbed",
                "form feed, blank lines, NBSP, soft hyphen, NEL, tabs");
    expect_text("caf\xc3\xa9 \xe2\x80\x94 5.9% APR, $1,250.00", 29,
                "caf\xc3\xa9 \xe2\x80\x94 5.9% APR, $1,250.00",
                "UTF-8 and numbers untouched");

    expect_fail("caf\xe9", 4, AVC_DOC_TXT, AVC_EPARSE,
                "file is not valid UTF-8 text", "Latin-1");
    expect_fail("ok \xed\xa0\x80 surrogate", 16, AVC_DOC_TXT, AVC_EPARSE,
                "file is not valid UTF-8 text", "UTF-8 surrogate");
    expect_fail("", 0, AVC_DOC_TXT, AVC_EINVAL,
                "the document contains no text", "empty");
    expect_fail("\xef\xbb\xbf \r\n\t\f\n ", 10, AVC_DOC_TXT, AVC_EINVAL,
                "the document contains no text", "only blanks");
    expect_fail("hello", 5, AVC_DOC_UNKNOWN, AVC_EINVAL, NULL,
                "unknown type");

    rc = avc_extract("hello world", 11, AVC_DOC_TXT, 5, 0, 0, &text, NULL,
                     &why);
    TAP_IS(rc, AVC_ETOOBIG, "text over max_output");
    TAP_OK(text == NULL && why != NULL, "... no text, a reason");
    free(why);

    rc = avc_extract("hello world", 11, AVC_DOC_TXT, 11, 0, 0, &text, NULL,
                     NULL);
    TAP_IS(rc, AVC_OK, "text of exactly max_output; why may be NULL");
    free(text);

    TAP_IS(avc_extract("x", 1, AVC_DOC_TXT, 0, 0, 0, NULL, NULL, NULL),
           AVC_EINVAL, "NULL text pointer");
    TAP_IS(avc_extract(NULL, 3, AVC_DOC_TXT, 0, 0, 0, &text, NULL, NULL),
           AVC_EINVAL, "NULL data with a length");
}

static void
test_title(void)
{
    char long_line[700], *t;
    size_t i;

    t = avc_doc_title("\n \t\n   GAP Protection: Why  \t \nbody", 35);
    TAP_STR(t, "GAP Protection: Why", "first non-blank line, trimmed");
    free(t);

    t = avc_doc_title("Only line", 9);
    TAP_STR(t, "Only line", "a single line without LF");
    free(t);

    for (i = 0; i < 300; i++) {
        memcpy(long_line + 2 * i, "\xc3\xa9", 2);
    }
    t = avc_doc_title(long_line, 600);
    TAP_OK(t && strlen(t) == 400, "cut at 200 characters, not bytes");
    free(t);

    memset(long_line, 'a', 199);
    memcpy(long_line + 199, " \xe2\x82\xac", 4);
    t = avc_doc_title(long_line, 203);
    TAP_OK(t && strlen(t) == 199, "a blank at the cut is dropped");
    free(t);

    memset(long_line, 'a', 199);
    memcpy(long_line + 199, "\xe2\x82\xac" "b", 4);
    t = avc_doc_title(long_line, 203);
    TAP_OK(t && strlen(t) == 202 && memcmp(t + 199, "\xe2\x82\xac", 3) == 0,
           "a 3-byte character at the cut is whole");
    free(t);

    TAP_OK(avc_doc_title(" \n\t\n", 4) == NULL, "no title in blanks");
    TAP_OK(avc_doc_title("", 0) == NULL, "no title in nothing");
    TAP_OK(avc_doc_title(NULL, 3) == NULL, "NULL text");
}

/* ---- DOCX --------------------------------------------------------------- */

static void
test_docx(void)
{
    static const char want[] =
        "F&I Product Guide\n\n"
        "GAP Protection\n\n"
        "GAP covers the difference between ACV and payoff.\tNote\n\n"
        "- Down payment under 20%\n"
        "- Term of 60 months or longer\n"
        "- Negative equity\n\n"
        "Product | Cost | Term\n"
        "GAP | $895.00 | 72 months\n"
        "VSC | $2,150.00 plus tax | 60 months\n\n"
        "Line one\n"
        "Line two";
    char *docx, *zip, *text, *why, *doc, *title;
    size_t docx_len, zip_len, len;
    int rc;

    docx = slurp("sample.docx", &docx_len);
    zip = slurp("notword.zip", &zip_len);
    if (!TAP_OK(docx && zip, "DOCX fixtures")) {
        free(docx);
        free(zip);
        return;
    }

    rc = avc_extract(docx, docx_len, AVC_DOC_DOCX, 0, 0, 0, &text, &len,
                     &why);
    TAP_IS(rc, AVC_OK, "sample.docx extracted");
    TAP_STR(text, want, "headings, paragraphs, tab, list, table, break");
    TAP_OK(text && strstr(text, "REMOVED") == NULL,
           "tracked deletions are left out");
    title = text ? avc_doc_title(text, len) : NULL;
    TAP_STR(title, "F&I Product Guide", "its title");
    free(title);
    free(text);
    free(why);

    expect_fail(zip, zip_len, AVC_DOC_DOCX, AVC_EPARSE, NULL,
                "a zip without word/document.xml");
    expect_fail(docx, docx_len / 2, AVC_DOC_DOCX, AVC_EPARSE,
                "the Word (.docx) file is damaged or incomplete",
                "a truncated DOCX");
    expect_fail("PK\x03\x04 not really", 16, AVC_DOC_DOCX, AVC_EPARSE, NULL,
                "zip magic, then garbage");

    doc = make_docx("<w:p><w:r><w:t>broken</w:t></w:r>", &len);
    expect_fail(doc, len, AVC_DOC_DOCX, AVC_EPARSE,
                "the Word (.docx) file is damaged or incomplete",
                "malformed XML");
    free(doc);

    doc = make_docx("<w:p/><w:p><w:r><w:t>   </w:t></w:r></w:p>"
                    "<w:tbl><w:tr><w:tc><w:p/></w:tc><w:tc/></w:tr></w:tbl>",
                    &len);
    expect_fail(doc, len, AVC_DOC_DOCX, AVC_EINVAL,
                "the document contains no text", "a DOCX without text");
    free(doc);

    doc = make_docx("<w:p><w:r><w:t>a &amp; b &#8364; &lt;c&gt;</w:t></w:r>"
                    "</w:p><w:p><w:r><w:t>outer</w:t><w:pict><w:txbxContent>"
                    "<w:p><w:r><w:t>boxed</w:t></w:r></w:p></w:txbxContent>"
                    "</w:pict></w:r></w:p>", &len);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 0, &text, NULL, NULL);
    TAP_IS(rc, AVC_OK, "character references and text boxes");
    TAP_STR(text, "a & b \xe2\x82\xac <c>\n\nouter boxed",
            "... decoded, the box's words kept apart");
    free(text);
    free(doc);

    {
        /* entities are never expanded; a DTD is refused outright */
        static const char laughs[] =
            "<?xml version=\"1.0\"?><!DOCTYPE w:document ["
            "<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">"
            "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
            "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">"
            "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"
            "<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">"
            "<!ENTITY f SYSTEM \"file:///etc/passwd\">"
            "]><w:document xmlns:w=\"" W_NS "\"><w:body><w:p><w:r><w:t>"
            "&e;&f;</w:t></w:r></w:p></w:body></w:document>";
        entry_t e = { "word/document.xml", laughs, sizeof(laughs) - 1 };
        uint64_t t0;

        doc = make_zip(&e, 1, &len);
        t0 = now_ms();
        rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 0, &text, NULL, &why);
        TAP_IS(rc, AVC_EPARSE, "a DOCTYPE with entities is refused");
        TAP_OK(text == NULL, "... nothing expanded, nothing read");
        TAP_OK(now_ms() - t0 < 2000, "... quickly");
        free(text);
        free(why);
        free(doc);
    }
    free(docx);
    free(zip);
}

static void
test_docx_bombs(void)
{
    char *xml, *doc, *text, *why;
    size_t xml_len, len, i, n;
    entry_t *many;
    uint64_t t0;
    int rc;

    /* 8 MB of one repeated paragraph: inflates about 1000:1 */
    xml_len = 8u * 1024 * 1024;
    xml = malloc(xml_len);
    if (!TAP_OK(xml != NULL, "bomb buffer")) {
        return;
    }
    n = (size_t) snprintf(xml, xml_len, "<?xml version=\"1.0\"?>"
                          "<w:document xmlns:w=\"" W_NS "\"><w:body>");
    for (i = n; i + 64 < xml_len; i += 34) {
        memcpy(xml + i, "<w:p><w:r><w:t>a</w:t></w:r></w:p>", 34);
    }
    memcpy(xml + i, "</w:body></w:document>", 22);
    memset(xml + i + 22, ' ', xml_len - i - 22);
    {
        entry_t e = { "word/document.xml", xml, xml_len };

        doc = make_zip(&e, 1, &len);
    }
    free(xml);
    if (!TAP_OK(doc != NULL, "zip bomb built (%zu bytes)", len)) {
        return;
    }
    TAP_IS(avc_doc_sniff(doc, len), AVC_DOC_DOCX, "the bomb sniffs as DOCX");
    t0 = now_ms();
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 0, &text, NULL, &why);
    TAP_IS(rc, AVC_ETOOBIG, "zip bomb: AVC_ETOOBIG");
    TAP_OK(now_ms() - t0 < 500, "... without inflating it (%llu ms)",
           (unsigned long long) (now_ms() - t0));
    tap_diag("zip bomb: %s", why ? why : "(null)");
    free(why);
    free(doc);

    /* 1 MB of small paragraphs (under the ratio check): about 250,000
     * XML nodes, far more than 1 ms of work */
    xml_len = 1000000;
    xml = malloc(xml_len + 1);
    if (xml == NULL) {
        return;
    }
    for (i = 0; i + 40 < xml_len; i += 34) {
        memcpy(xml + i, "<w:p><w:r><w:t>b</w:t></w:r></w:p>", 34);
    }
    xml[i] = '\0';
    doc = make_docx(xml, &len);
    free(xml);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 1, 0, &text, NULL, &why);
    TAP_IS(rc, AVC_ETIMEDOUT, "DOCX over its deadline: AVC_ETIMEDOUT");
    TAP_STR(why, "the Word (.docx) file took too long to process",
            "... reason");
    free(why);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 0, &text, &n, NULL);
    TAP_IS(rc, AVC_OK, "... fine with the default deadline");
    TAP_OK(text && strncmp(text, "b\n\nb\n\n", 6) == 0,
           "... a paragraph each");
    free(text);
    free(doc);

    /* a plausible ratio, but more than a quarter of the memory budget */
    xml_len = 300u * 1024;
    xml = malloc(xml_len + 1);
    if (xml == NULL) {
        return;
    }
    n = (size_t) snprintf(xml, xml_len, "<w:p><w:r><w:t>");
    for (i = n; i < xml_len - 32; i++) {
        xml[i] = (char) ('a' + (i * 7919 % 26));
    }
    memcpy(xml + i, "</w:t></w:r></w:p>", 19);
    doc = make_docx(xml, &len);
    free(xml);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 1024 * 1024, &text, NULL,
                     &why);
    TAP_IS(rc, AVC_ETOOBIG, "document part over max_memory/4");
    free(why);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 100000, 0, 0, &text, NULL,
                     &why);
    TAP_IS(rc, AVC_ETOOBIG, "text over max_output");
    free(why);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 0, &text, &n, NULL);
    TAP_IS(rc, AVC_OK, "... and fine with the defaults");
    TAP_OK(n > 290000, "... all of it (%zu bytes)", n);
    free(text);
    free(doc);

    /* more entries than any document has */
    n = 10001;
    many = calloc(n, sizeof(entry_t));
    xml = malloc(n * 16);
    if (many == NULL || xml == NULL) {
        free(many);
        free(xml);
        return;
    }
    for (i = 0; i < n; i++) {
        snprintf(xml + i * 16, 16, "p/%u", (unsigned) i);
        many[i].name = xml + i * 16;
        many[i].data = "";
        many[i].len = 0;
    }
    many[0].name = "word/document.xml";
    many[0].data = "<w:document xmlns:w=\"" W_NS "\"/>";
    many[0].len = strlen(many[0].data);
    doc = make_zip(many, n, &len);
    free(many);
    free(xml);
    rc = avc_extract(doc, len, AVC_DOC_DOCX, 0, 0, 0, &text, NULL, &why);
    TAP_IS(rc, AVC_ETOOBIG, "10,001 entries: AVC_ETOOBIG");
    TAP_STR(why, "the Word (.docx) file has too many parts", "... reason");
    free(why);
    free(doc);
}

/* ---- PDF ---------------------------------------------------------------- */

static volatile sig_atomic_t reaped;

/* What nginx does in every process: reap any child on SIGCHLD. */
static void
on_sigchld(int signo)
{
    int saved = errno, status;

    (void) signo;
    while (waitpid(-1, &status, WNOHANG) > 0) {
        reaped++;
    }
    errno = saved;
}

typedef struct {
    const char *pdf;
    size_t len;
    int rc;
    int found;
} job_t;

static void *
run_job(void *arg)
{
    job_t *job = arg;
    char *text;

    job->rc = avc_extract(job->pdf, job->len, AVC_DOC_PDF, 0, 0, 0, &text,
                          NULL, NULL);
    job->found = text && strstr(text, "Vehicle Service Contracts") != NULL;
    free(text);
    return NULL;
}

static void
test_pdf(void)
{
    static const char garbage[] = "%PDF-1.4\nthis is not a PDF at all\n"
                                  "%%EOF\n";
    struct sigaction sa, old;
    char *pdf, *trunc, *big, *text, *why;
    size_t pdf_len, trunc_len, big_len, len;
    pthread_t th[4];
    job_t jobs[4];
    uint64_t t0, t;
    int rc, i, ok;

    if (access("/usr/bin/pdftotext", X_OK) != 0) {
        TAP_OK(1, "# SKIP pdftotext is not installed (poppler-utils)");
        return;
    }
    pdf = slurp("sample.pdf", &pdf_len);
    trunc = slurp("truncated.pdf", &trunc_len);
    if (!TAP_OK(pdf && trunc, "PDF fixtures")) {
        free(pdf);
        free(trunc);
        return;
    }

    /* orphaned grandchildren come back here, so none can hide */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    rc = avc_extract(pdf, pdf_len, AVC_DOC_PDF, 0, 0, 0, &text, &len, &why);
    TAP_IS(rc, AVC_OK, "sample.pdf extracted");
    TAP_OK(why == NULL, "... no reason");
    TAP_OK(text && strncmp(text, "Vehicle Service Contracts\n", 26) == 0,
           "... starts with its heading");
    TAP_OK(text && strstr(text, "The customer pays $1,250.00 at 5.9% APR "
                          "over 60 months."), "... the numbers intact");
    TAP_OK(text && strstr(text, "every customer.\n\nPage two explains the "
                          "GAP waiver and its limits."),
           "... a page break is a paragraph break");
    TAP_OK(text && strchr(text, '\f') == NULL && text[len - 1] != '\n',
           "... no form feed, no trailing newline");
    if (text) {
        tap_diag("sample.pdf: %zu bytes of text", len);
    }
    free(text);
    free(why);

    expect_fail(trunc, trunc_len, AVC_DOC_PDF, AVC_EPARSE,
                "the PDF file is damaged or incomplete", "a truncated PDF");
    expect_fail(garbage, sizeof(garbage) - 1, AVC_DOC_PDF, AVC_EPARSE,
                "the PDF file is damaged or incomplete",
                "a PDF pdftotext cannot read");

    rc = avc_extract(pdf, pdf_len, AVC_DOC_PDF, 20, 0, 0, &text, NULL, &why);
    TAP_IS(rc, AVC_ETOOBIG, "PDF text over max_output");
    free(why);

    /* 3,000 pages of 50 lines: about 2 s of work for pdftotext */
    big = make_pdf(3000, &big_len);
    if (!TAP_OK(big != NULL, "a 3,000-page PDF (%zu bytes)", big_len)) {
        goto done;
    }

    t0 = now_ms();
    rc = avc_extract(big, big_len, AVC_DOC_PDF, 0, 300, 0, &text, NULL,
                     &why);
    t = now_ms() - t0;
    TAP_IS(rc, AVC_ETIMEDOUT, "slow PDF: AVC_ETIMEDOUT");
    TAP_STR(why, "the PDF file took too long to process", "... reason");
    TAP_OK(t >= 290 && t < 1500, "... at the deadline (%llu ms)",
           (unsigned long long) t);
    free(why);
    TAP_OK(settle() >= 0, "... pdftotext is killed, nothing left running");

    rc = avc_extract(big, big_len, AVC_DOC_PDF, 0, 1, 0, &text, NULL, &why);
    TAP_IS(rc, AVC_ETIMEDOUT, "a 1 ms deadline");
    free(why);

    t0 = now_ms();
    rc = avc_extract(big, big_len, AVC_DOC_PDF, 512 * 1024, 0, 0, &text,
                     NULL, &why);
    TAP_IS(rc, AVC_ETOOBIG, "a PDF that expands to megabytes of text");
    TAP_OK(now_ms() - t0 < 1500, "... stopped early (%llu ms)",
           (unsigned long long) (now_ms() - t0));
    free(why);

    /* the loader cannot even map pdftotext in 16 MB; the child dies while
     * the PDF is still being written: EPIPE, never SIGPIPE */
    signal(SIGPIPE, SIG_DFL);
    rc = avc_extract(big, big_len, AVC_DOC_PDF, 0, 0, 16 * 1024 * 1024,
                     &text, NULL, &why);
    TAP_IS(rc, AVC_ETOOBIG, "max_memory too small for pdftotext");
    TAP_STR(why, "the PDF file needs more memory to process than is "
            "allowed", "... reason, and no SIGPIPE killed us");
    free(why);

    TAP_OK(settle() >= 0, "no zombie or stray process left");

    /* a host that reaps every child on SIGCHLD, as nginx does (and is
     * no subreaper: a killed pdftotext goes to init) */
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, &old);
    rc = avc_extract(pdf, pdf_len, AVC_DOC_PDF, 0, 0, 0, &text, NULL, NULL);
    TAP_IS(rc, AVC_OK, "a SIGCHLD reaper in the host does not interfere");
    TAP_IS(reaped, 0, "... it never sees our children");
    free(text);
    rc = avc_extract(big, big_len, AVC_DOC_PDF, 0, 200, 0, &text, NULL,
                     NULL);
    TAP_IS(rc, AVC_ETIMEDOUT, "... nor a timeout");
    TAP_IS(reaped, 0, "... whose kill it never sees");
    sigaction(SIGCHLD, &old, NULL);

    /* several extractions at once, from threads */
    for (i = 0; i < 4; i++) {
        jobs[i].pdf = pdf;
        jobs[i].len = pdf_len;
        jobs[i].rc = -100;
        jobs[i].found = 0;
        pthread_create(&th[i], NULL, run_job, &jobs[i]);
    }
    ok = 1;
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok = ok && jobs[i].rc == AVC_OK && jobs[i].found;
    }
    TAP_OK(ok, "4 threads extract at once");
    TAP_IS(count_children(), 0, "... and leave no child");

done:
    free(big);
    free(pdf);
    free(trunc);
}

int
main(void)
{
    char errpath[] = "/tmp/avc-extract-stderr-XXXXXX";
    char buf[4096];
    int errfd, saved;
    ssize_t n;

    data_dir = getenv("AVC_TEST_DATA");
    if (data_dir == NULL) {
        data_dir = "t/data";
    }

    /* everything the library might print lands here instead */
    fflush(stderr);
    errfd = mkstemp(errpath);
    saved = dup(2);
    if (errfd >= 0 && saved >= 0) {
        dup2(errfd, 2);
    }

    test_sniff();
    test_txt();
    test_title();
    test_docx();
    test_docx_bombs();
    test_pdf();

    if (errfd >= 0 && saved >= 0) {
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        n = pread(errfd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        TAP_OK(n == 0, "the library wrote nothing to stderr");
        if (n > 0) {
            tap_diag("stderr: %s", buf);
        }
        close(errfd);
        unlink(errpath);
    }

    return tap_done();
}
