/*
 * Chunking: sizes in characters, overlap, boundaries preferred in order
 * (paragraph, line, sentence, word), numbers and UTF-8 sequences never
 * split, determinism, and the sample F&I documents in ../shared/eval/docs
 * (read in place when present, never copied into the repository).
 */
#include "tap.h"

#include <avatarcore/chunk.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Tests only (src/util/internal.h). */
int avc__utf8_valid(const char *p, size_t n);

#define countof(a) (sizeof(a) / sizeof((a)[0]))

static size_t
chars(const char *s, size_t n)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        k += ((unsigned char) s[i] & 0xc0) != 0x80;
    }
    return k;
}

static int
blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}

/*
 * The invariants every chunking must keep; words_whole: the text has no
 * word longer than a chunk, so every edge must be at a blank.
 */
static int
check(const char *text, size_t len, const avc_chunks_t *c, size_t size,
      size_t overlap, int words_whole, const char *name)
{
    size_t i, n, off, prev_off, prev_end, first, last, ov;
    const char *s;
    int ok = 1;

    first = 0;
    while (first < len && blank(text[first])) {
        first++;
    }
    last = len;
    while (last > first && blank(text[last - 1])) {
        last--;
    }
    if (first == last) {
        return TAP_OK(avc_chunks_count(c) == 0, "%s: no chunk", name);
    }

    prev_off = prev_end = 0;
    for (i = 0; i < avc_chunks_count(c); i++) {
        s = avc_chunks_text(c, i, &n);
        off = avc_chunks_offset(c, i);
        if (s == NULL || n == 0 || strlen(s) != n) {
            tap_diag("%s: chunk %zu missing or empty", name, i);
            ok = 0;
            break;
        }
        if (off + n > len || memcmp(text + off, s, n) != 0) {
            tap_diag("%s: chunk %zu is not the input at %zu", name, i, off);
            ok = 0;
            break;
        }
        if (chars(s, n) > size) {
            tap_diag("%s: chunk %zu has %zu > %zu characters", name, i,
                     chars(s, n), size);
            ok = 0;
        }
        if (!avc__utf8_valid(s, n)) {
            tap_diag("%s: chunk %zu splits a UTF-8 sequence", name, i);
            ok = 0;
        }
        if (blank(s[0]) || blank(s[n - 1])) {
            tap_diag("%s: chunk %zu has a blank at an end", name, i);
            ok = 0;
        }
        if (words_whole
            && ((off > 0 && !blank(text[off - 1]))
                || (off + n < len && !blank(text[off + n]))))
        {
            tap_diag("%s: chunk %zu cuts a word: '%.*s'", name, i,
                     (int) (n < 60 ? n : 60), s);
            ok = 0;
        }
        if (i == 0 && off != first) {
            tap_diag("%s: the first chunk starts at %zu, not %zu", name, off,
                     first);
            ok = 0;
        }
        if (i > 0) {
            if (off <= prev_off) {
                tap_diag("%s: chunk %zu does not move on", name, i);
                ok = 0;
            }
            /* nothing but blanks may fall between two chunks */
            for (ov = prev_end; ov < off; ov++) {
                if (!blank(text[ov])) {
                    tap_diag("%s: text lost before chunk %zu", name, i);
                    ok = 0;
                    break;
                }
            }
            if (off < prev_end
                && chars(text + off, prev_end - off) > overlap)
            {
                tap_diag("%s: chunk %zu overlaps by %zu > %zu", name, i,
                         chars(text + off, prev_end - off), overlap);
                ok = 0;
            }
        }
        prev_off = off;
        prev_end = off + n;
    }
    if (ok && prev_end != last) {
        tap_diag("%s: the last chunk ends at %zu, not %zu", name, prev_end,
                 last);
        ok = 0;
    }
    return TAP_OK(ok, "%s: %zu chunks keep the invariants", name,
                  avc_chunks_count(c));
}

/* How many consecutive pairs overlap. */
static size_t
overlapping(const avc_chunks_t *c)
{
    size_t i, n, k = 0;

    for (i = 1; i < avc_chunks_count(c); i++) {
        avc_chunks_text(c, i - 1, &n);
        k += avc_chunks_offset(c, i) < avc_chunks_offset(c, i - 1) + n;
    }
    return k;
}

static void
test_args(void)
{
    avc_chunks_t *c;
    size_t n;
    int err;

    err = 0;
    TAP_OK(avc_chunk("abc", 3, 0, 0, &err) == NULL && err == AVC_EINVAL,
           "chunk_size 0: AVC_EINVAL");
    err = 0;
    TAP_OK(avc_chunk("abc", 3, 10, 10, &err) == NULL && err == AVC_EINVAL,
           "overlap == size: AVC_EINVAL");
    err = 0;
    TAP_OK(avc_chunk(NULL, 3, 10, 2, &err) == NULL && err == AVC_EINVAL,
           "NULL text with a length: AVC_EINVAL");
    err = 0;
    TAP_OK(avc_chunk("caf\xe9", 4, 10, 2, &err) == NULL && err == AVC_EPARSE,
           "invalid UTF-8: AVC_EPARSE");
    TAP_OK(avc_chunk("abc", 3, 0, 0, NULL) == NULL, "err may be NULL");

    c = avc_chunk("", 0, 10, 2, &err);
    TAP_OK(c != NULL && err == AVC_OK && avc_chunks_count(c) == 0,
           "empty text: no chunk");
    avc_chunks_free(c);
    c = avc_chunk(NULL, 0, 10, 2, &err);
    TAP_OK(c != NULL && avc_chunks_count(c) == 0, "NULL, 0: no chunk");
    avc_chunks_free(c);
    c = avc_chunk(" \n\n\t \r\n ", 8, 10, 2, &err);
    TAP_OK(c != NULL && avc_chunks_count(c) == 0, "blank text: no chunk");
    avc_chunks_free(c);

    c = avc_chunk("  \n Hello, Adam.  \n", 19, 1000, 200, &err);
    TAP_IS(avc_chunks_count(c), 1, "a short text is one chunk");
    TAP_STR(avc_chunks_text(c, 0, &n), "Hello, Adam.", "... trimmed");
    TAP_IS(n, 12, "... its length");
    TAP_IS(avc_chunks_offset(c, 0), 4, "... its offset in the input");
    TAP_OK(avc_chunks_text(c, 1, &n) == NULL && n == 0,
           "out of range: NULL");
    TAP_IS(avc_chunks_offset(c, 7), 0, "out of range offset: 0");
    avc_chunks_free(c);

    TAP_IS(avc_chunks_count(NULL), 0, "count of NULL");
    TAP_OK(avc_chunks_text(NULL, 0, NULL) == NULL, "text of NULL");
    avc_chunks_free(NULL);
    TAP_OK(1, "free(NULL) is a no-op");
}

static const char *const sentences[] = {
    "The customer pays $1,250.00 for the service contract.",
    "Rates start at 5.9% APR for buyers with strong credit.",
    "Always present every product on the menu, e.g. GAP and tire care.",
    "Ask Mr. Alvarez whether the lender is Summit Auto Finance.",
    "Why does the payment change when the term changes?",
    "Because interest accrues on the balance for longer!",
    "A reserve of 2.5 points is the cap at Harbor Community C.U. today.",
    "The product costs $895 and covers 72 months or 100,000 miles.",
};

/* Paragraphs of whole sentences; every sentence ends with ". " etc. */
static char *
prose(size_t paragraphs, size_t per_paragraph, size_t *len)
{
    size_t cap, i, j, k, n;
    char *buf;

    cap = paragraphs * per_paragraph * 80 + 16;
    buf = malloc(cap);
    if (buf == NULL) {
        return NULL;
    }
    n = 0;
    k = 0;
    for (i = 0; i < paragraphs; i++) {
        if (i) {
            memcpy(buf + n, "\n\n", 2);
            n += 2;
        }
        for (j = 0; j < per_paragraph; j++) {
            if (j) {
                buf[n++] = ' ';
            }
            n += (size_t) snprintf(buf + n, cap - n, "%s",
                                   sentences[k++ % countof(sentences)]);
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void
test_paragraphs(void)
{
    avc_chunks_t *c;
    size_t len, i, n, at_para;
    const char *s;
    char *text;

    /* paragraphs of about 300 characters */
    text = prose(12, 5, &len);
    c = avc_chunk(text, len, 1000, 200, NULL);
    check(text, len, c, 1000, 200, 1, "12 short paragraphs");
    at_para = 0;
    for (i = 0; i + 1 < avc_chunks_count(c); i++) {
        s = avc_chunks_text(c, i, &n);
        at_para += strncmp(text + avc_chunks_offset(c, i) + n, "\n\n", 2)
                   == 0;
    }
    TAP_IS(at_para, avc_chunks_count(c) - 1,
           "every chunk but the last ends at a paragraph break");
    TAP_IS(overlapping(c), avc_chunks_count(c) - 1,
           "every chunk overlaps the one before");
    s = avc_chunks_text(c, 1, &n);
    TAP_OK(s && chars(s, n) > 600, "chunks are well filled (%zu chars)",
           s ? chars(s, n) : 0);
    avc_chunks_free(c);
    free(text);

    /* one paragraph of 40 sentences: ends at sentence ends */
    text = prose(1, 40, &len);
    c = avc_chunk(text, len, 500, 100, NULL);
    check(text, len, c, 500, 100, 1, "one long paragraph");
    n = 0;
    for (i = 0; i + 1 < avc_chunks_count(c); i++) {
        s = avc_chunks_text(c, i, &len);
        n += strchr(".?!", s[len - 1]) != NULL;
    }
    TAP_IS(n, avc_chunks_count(c) - 1,
           "every chunk but the last ends at a sentence end");
    for (i = 0; i < avc_chunks_count(c); i++) {
        s = avc_chunks_text(c, i, &len);
        if ((len >= 3 && memcmp(s + len - 3, "Mr.", 3) == 0)
            || (len >= 4 && memcmp(s + len - 4, "e.g.", 4) == 0)
            || (len >= 4 && memcmp(s + len - 4, "C.U.", 4) == 0))
        {
            break;
        }
    }
    TAP_IS(i, avc_chunks_count(c), "never after Mr., e.g. or C.U.");
    TAP_IS(overlapping(c), avc_chunks_count(c) - 1, "overlap throughout");
    avc_chunks_free(c);
    free(text);

    /* lines without sentence ends: line breaks beat word breaks */
    {
        char lines[4000];

        n = 0;
        for (i = 0; i < 60; i++) {
            n += (size_t) snprintf(lines + n, sizeof(lines) - n,
                                   "item %zu costs $1,2%02zu.50 monthly\n",
                                   i, i);
        }
        c = avc_chunk(lines, n, 200, 40, NULL);
        check(lines, n, c, 200, 40, 1, "60 lines");
        len = 0;
        for (i = 0; i + 1 < avc_chunks_count(c); i++) {
            s = avc_chunks_text(c, i, &n);
            len += lines[avc_chunks_offset(c, i) + n] == '\n';
        }
        TAP_IS(len, avc_chunks_count(c) - 1, "chunks end at line ends");
        avc_chunks_free(c);
    }
}

/*
 * Sections: a chunk ends before a heading line when one lies in the second
 * half of its room (ahead of paragraph breaks further on), and a chunk
 * that starts with a heading takes no overlap from the section before;
 * lines that end like a sentence or a list's lead-in are no headings.
 */
static void
test_sections(void)
{
    static const char *const heads[] = {
        "Appearance protection", "Filing a tire and wheel claim",
        "## Eligibility", "Cosmetic package (add-on to tire and wheel)"
    };
    char text[8000];
    avc_chunks_t *c;
    size_t i, j, n, len = 0, at_head = 0, heads_seen = 0, ov_head = 0;
    const char *s;

    for (i = 0; i < countof(heads); i++) {
        len += (size_t) snprintf(text + len, sizeof(text) - len, "%s\n",
                                 heads[i]);
        for (j = 0; j < 9; j++) {
            len += (size_t) snprintf(text + len, sizeof(text) - len,
                                     "%s%s", sentences[(i + j)
                                                       % countof(sentences)],
                                     j == 4 ? "\n\n" : j == 8 ? "\n" : " ");
        }
        /* lines that only look like headings */
        len += (size_t) snprintf(text + len, sizeof(text) - len,
                                 "Exclusions:\nTerm: 5 years.\n");
    }
    c = avc_chunk(text, len, 700, 150, NULL);
    check(text, len, c, 700, 150, 1, "four sections");
    for (i = 0; i < avc_chunks_count(c); i++) {
        s = avc_chunks_text(c, i, &n);
        for (j = 0; j < countof(heads); j++) {
            if (strncmp(s, heads[j], strlen(heads[j])) == 0) {
                at_head++;
                ov_head += i > 0 && avc_chunks_offset(c, i)
                                    < avc_chunks_offset(c, i - 1)
                                      + strlen(avc_chunks_text(c, i - 1,
                                                               NULL));
            }
            heads_seen += strstr(s, heads[j]) != NULL;
        }
        TAP_OK(strncmp(s, "Exclusions", 10) != 0
               && strncmp(s, "Term:", 5) != 0, "chunk %zu does not start "
               "at a line that is no heading", i);
    }
    TAP_IS(at_head, countof(heads), "every section's chunk starts at its "
           "heading");
    TAP_IS(ov_head, 0, "no overlap before a heading");
    TAP_IS(heads_seen, countof(heads), "and no heading is repeated");
    avc_chunks_free(c);
}

static void
test_numbers(void)
{
    static const char text[] =
        "Finance $1,250.00 at 5.9% for 72 months; the reserve is 2.5 points "
        "and GAP costs $895.00, not $1,095.00. Rates of 3.49% or 11.75% "
        "apply. A balance of $38,400 drops to $35,900 in 7 months. "
        "Pay 1,234,567.89 dollars or 0.001% more.";
    static const char *const numbers[] = {
        "$1,250.00", "5.9%", "2.5", "$895.00,", "$1,095.00.", "3.49%",
        "11.75%", "$38,400", "$35,900", "1,234,567.89", "0.001%"
    };
    avc_chunks_t *c;
    size_t size, i, j, n, found;
    const char *s;
    int ok;

    /* check() proves every chunk edge is at a blank; numbers have none */
    ok = 1;
    for (size = 12; size <= 60; size += 4) {
        c = avc_chunk(text, sizeof(text) - 1, size, size / 3, NULL);
        if (c == NULL
            || !check(text, sizeof(text) - 1, c, size, size / 3, 1,
                      "numbers"))
        {
            ok = 0;
        }
        for (j = 0; c && j < countof(numbers); j++) {
            found = 0;
            for (i = 0; i < avc_chunks_count(c); i++) {
                s = avc_chunks_text(c, i, &n);
                found += memmem(s, n, numbers[j], strlen(numbers[j]))
                         != NULL;
            }
            if (found == 0) {
                tap_diag("size %zu: %s is in no chunk", size, numbers[j]);
                ok = 0;
            }
        }
        avc_chunks_free(c);
    }
    TAP_OK(ok, "numbers such as $1,250.00 and 5.9%% are never split, "
           "sizes 12..60");
}

static void
test_utf8(void)
{
    char text[2048], word[512];
    avc_chunks_t *c;
    size_t n, i, total, len;
    const char *s;

    /* words of 2-, 3- and 4-byte characters */
    n = 0;
    for (i = 0; i < 40; i++) {
        n += (size_t) snprintf(text + n, sizeof(text) - n, "%s ",
                               (i % 3 == 0) ? "caf\xc3\xa9"
                               : (i % 3 == 1) ? "\xe2\x82\xac" "5"
                               : "\xf0\x9f\x9a\x97" "car");
    }
    c = avc_chunk(text, n, 9, 3, NULL);
    check(text, n, c, 9, 3, 1, "multi-byte words");
    avc_chunks_free(c);

    /* one word of 100 euro signs: cut between characters, no overlap */
    n = 0;
    for (i = 0; i < 100; i++) {
        memcpy(word + n, "\xe2\x82\xac", 3);
        n += 3;
    }
    c = avc_chunk(word, n, 7, 3, NULL);
    check(word, n, c, 7, 3, 0, "a 100-character word");
    total = 0;
    for (i = 0; i < avc_chunks_count(c); i++) {
        s = avc_chunks_text(c, i, &len);
        total += len;
        if (chars(s, len) != 7 && i + 1 < avc_chunks_count(c)) {
            break;
        }
    }
    TAP_OK(i == avc_chunks_count(c) && total == n
           && avc_chunks_count(c) == 15,
           "... cut into full 7-character pieces that add up (%zu)",
           avc_chunks_count(c));
    avc_chunks_free(c);

    /* a long word among short ones: only it is cut */
    n = (size_t) snprintf(text, sizeof(text), "see https://example.com/"
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                          "aaaaaaaaaaaaaaaaaaaaa/terms for the terms");
    c = avc_chunk(text, n, 30, 10, NULL);
    check(text, n, c, 30, 10, 0, "a URL longer than a chunk");
    s = avc_chunks_text(c, 0, &len);
    TAP_OK(s && len == 3 && memcmp(s, "see", 3) == 0,
           "... the words before it stay whole");
    avc_chunks_free(c);
}

static void
test_small_sizes(void)
{
    avc_chunks_t *c;
    size_t size, overlap, len;
    char *text;
    int ok;

    text = prose(3, 4, &len);
    ok = 1;
    for (size = 1; size <= 90 && ok; size += 7) {
        for (overlap = 0; overlap < size && ok; overlap += 1 + size / 4) {
            c = avc_chunk(text, len, size, overlap, NULL);
            ok = c != NULL
                 && check(text, len, c, size, overlap, 0, "small sizes");
            avc_chunks_free(c);
        }
    }
    TAP_OK(ok, "sizes 1..90, every overlap: invariants hold");
    free(text);
}

static void
test_deterministic(void)
{
    avc_chunks_t *a, *b;
    size_t len, i, na, nb;
    const char *sa, *sb;
    char *text;
    int same;

    text = prose(30, 7, &len);
    a = avc_chunk(text, len, 1000, 200, NULL);
    b = avc_chunk(text, len, 1000, 200, NULL);
    same = a && b && avc_chunks_count(a) == avc_chunks_count(b);
    for (i = 0; same && i < avc_chunks_count(a); i++) {
        sa = avc_chunks_text(a, i, &na);
        sb = avc_chunks_text(b, i, &nb);
        same = na == nb && memcmp(sa, sb, na) == 0
               && avc_chunks_offset(a, i) == avc_chunks_offset(b, i);
    }
    TAP_OK(same, "the same input gives the same chunks");
    check(text, len, a, 1000, 200, 1, "30 paragraphs, defaults");
    avc_chunks_free(a);
    avc_chunks_free(b);
    free(text);
}

/* ---- the sample documents ----------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
    struct stat st;
    char *buf;
    FILE *f;

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

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
test_eval_docs(void)
{
    char path[1024], *names[64], *text;
    size_t nnames, i, j, len, n, min, max, sum, total, clean, docs;
    const char *dir, *s, *after;
    struct dirent *de;
    avc_chunks_t *c;
    DIR *d;
    int ok;

    dir = getenv("AVC_EVAL_DOCS");
    if (dir == NULL) {
        dir = "../shared/eval/docs";
    }
    d = opendir(dir);
    if (d == NULL) {
        TAP_OK(1, "# SKIP no sample documents in %s", dir);
        return;
    }
    nnames = 0;
    while ((de = readdir(d)) != NULL && nnames < countof(names)) {
        n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".txt") == 0) {
            names[nnames] = strdup(de->d_name);
            if (names[nnames] != NULL) {
                nnames++;
            }
        }
    }
    closedir(d);
    qsort(names, nnames, sizeof(char *), by_name);

    ok = 1;
    docs = total = clean = 0;
    for (i = 0; i < nnames; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        text = slurp(path, &len);
        if (text == NULL) {
            continue;
        }
        c = avc_chunk(text, len, AVC_CHUNK_SIZE_DEFAULT,
                      AVC_CHUNK_OVERLAP_DEFAULT, NULL);
        if (c == NULL) {
            ok = 0;
            free(text);
            continue;
        }
        docs++;
        ok = check(text, len, c, AVC_CHUNK_SIZE_DEFAULT,
                   AVC_CHUNK_OVERLAP_DEFAULT, 1, names[i]) && ok;

        min = (size_t) -1;
        max = sum = 0;
        for (j = 0; j < avc_chunks_count(c); j++) {
            s = avc_chunks_text(c, j, &n);
            n = chars(s, n);
            sum += n;
            max = n > max ? n : max;
            if (j + 1 < avc_chunks_count(c)) {
                min = n < min ? n : min;
            }
            /* a clean end: a paragraph, line or sentence ends there */
            avc_chunks_text(c, j, &n);
            after = text + avc_chunks_offset(c, j) + n;
            clean += *after == '\n' || *after == '\0'
                     || strchr(".?!:\"')", s[n - 1]) != NULL;
            total++;
        }
        tap_diag("%-34s %5zu bytes -> %2zu chunks of %zu..%zu chars "
                 "(mean %zu)", names[i], len, avc_chunks_count(c),
                 min == (size_t) -1 ? max : min, max,
                 sum / (avc_chunks_count(c) ? avc_chunks_count(c) : 1));
        if (avc_chunks_count(c) < 5 || avc_chunks_count(c) > 15
            || (min != (size_t) -1 && min < 300))
        {
            tap_diag("%s: not a sensible split", names[i]);
            ok = 0;
        }
        avc_chunks_free(c);
        free(text);
    }
    for (i = 0; i < nnames; i++) {
        free(names[i]);
    }
    TAP_OK(ok && docs > 0, "%zu sample documents chunk sensibly", docs);
    TAP_OK(clean == total, "%zu of %zu chunks end at a paragraph, line or "
           "sentence end", clean, total);
}

static void
test_large(void)
{
    avc_chunks_t *c;
    size_t len;
    char *text;

    text = prose(4000, 6, &len);
    c = avc_chunk(text, len, 1000, 200, NULL);
    check(text, len, c, 1000, 200, 1, "1.6 MB of prose");
    avc_chunks_free(c);
    free(text);
}

int
main(void)
{
    test_args();
    test_paragraphs();
    test_sections();
    test_numbers();
    test_utf8();
    test_small_sizes();
    test_deterministic();
    test_eval_docs();
    test_large();
    return tap_done();
}
