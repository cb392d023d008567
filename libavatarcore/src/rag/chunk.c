/*
 * Chunking text for retrieval (see avatarcore/chunk.h).
 *
 * Every chunk is a slice [start, end) of the input.  A chunk's new content
 * begins at p, the first non-blank byte after the previous chunk; its
 * start may lie before p by the overlap.  Its end is chosen by one scan
 * of the room left after the overlap: each "word end" (a non-blank byte
 * followed by a blank) is a candidate, graded by the blank run after it
 * (section when a heading follows, paragraph, line, sentence or word),
 * and the strongest grade found in the second half of the room wins, the
 * furthest of that grade.
 *
 * Positions are bytes; sizes are code points, counted as the bytes that
 * are not UTF-8 continuation bytes, so the input is validated first.
 */
#include "internal.h"

#include <avatarcore/chunk.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Boundary grades, weakest first. */
enum {
    AVC_CHUNK_CHAR = 0,
    AVC_CHUNK_WORD,
    AVC_CHUNK_SENTENCE,
    AVC_CHUNK_LINE,
    AVC_CHUNK_PARAGRAPH,
    AVC_CHUNK_SECTION,
    AVC_CHUNK_GRADES
};

/* a heading: a line of at most this many bytes, see avc_chunk_heading() */
#define AVC_CHUNK_HEADING_MAX  80

struct avc_chunks_s {
    size_t n;
    size_t *offset;             /* n byte offsets into the input */
    size_t *len;                /* n lengths in bytes */
    char **text;                /* n pointers into arena */
    char *arena;                /* the chunks, each NUL-terminated */
};

typedef struct {
    const unsigned char *t;
    size_t end;                 /* the input without trailing blanks */
} avc_chunker_t;

/* A period after these is not the end of a sentence. */
static const char *const avc_chunk_abbrevs[] = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc",
    "inc", "ltd", "co", "corp", "no", "nos", "approx", "dept", "est",
    "fig", "vol", "pp", "al", "ca", "cf", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue",
    "wed", "thu", "fri", "sat", "sun", "ave", "blvd", "rd", "hwy", "mi",
    "yr", "yrs", "mo", "mos", "min", "max", "misc", "govt", "assn", "bros"
};

static int
avc_chunk_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}

static int
avc_chunk_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

static int
avc_chunk_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Code points in [a, b). */
static size_t
avc_chunk_chars(const unsigned char *t, size_t a, size_t b)
{
    size_t n = 0;

    for ( /* void */ ; a < b; a++) {
        n += !avc_chunk_cont(t[a]);
    }
    return n;
}

static size_t
avc_chunk_skip_blanks(const avc_chunker_t *ck, size_t p)
{
    while (p < ck->end && avc_chunk_blank(ck->t[p])) {
        p++;
    }
    return p;
}

/*
 * Is the '.' at dot the end of a sentence as far as the word before it
 * tells?  Not after an abbreviation, an initial ("J.") or a dotted
 * abbreviation ("e.g.", "U.S.").
 */
static int
avc_chunk_period_ends(const unsigned char *t, size_t dot)
{
    size_t w, i, n;
    char word[8];

    w = dot;
    while (w > 0 && (avc_chunk_alpha(t[w - 1]) || t[w - 1] == '.')) {
        w--;
    }
    n = dot - w;
    if (n == 0) {
        /* after a number, a symbol or a quote */
        return 1;
    }
    if (n == 1 || memchr(t + w, '.', n) != NULL) {
        return 0;
    }
    if (n >= sizeof(word)) {
        return 1;
    }
    memcpy(word, t + w, n);
    word[n] = '\0';
    for (i = 0; i < avc__countof(avc_chunk_abbrevs); i++) {
        if (strcasecmp(word, avc_chunk_abbrevs[i]) == 0) {
            return 0;
        }
    }
    return 1;
}

/*
 * Does a heading start at line start j?  A short line of its own, followed
 * by text on the next line, that does not read as a sentence or as the
 * lead-in of a list: it starts with a capital, a digit or '#' (Markdown)
 * and does not end with . , ; : ! or a closing quote; a list item ("- ",
 * "* ") is no heading.  "Appearance protection", "Filing a claim",
 * "## Eligibility" are; "Exclusions:", "Term: 5 years." are not.
 */
static int
avc_chunk_heading(const avc_chunker_t *ck, size_t j)
{
    const unsigned char *t = ck->t;
    size_t e, last, k;

    if (j >= ck->end
        || !((t[j] >= 'A' && t[j] <= 'Z') || (t[j] >= '0' && t[j] <= '9')
             || t[j] == '#'))
    {
        return 0;
    }
    for (e = j; e < ck->end && t[e] != '\n' && e - j <= AVC_CHUNK_HEADING_MAX;
         e++)
    {
        /* to the end of the line */
    }
    if (e >= ck->end || t[e] != '\n' || e - j > AVC_CHUNK_HEADING_MAX) {
        return 0;
    }
    for (last = e; last > j && avc_chunk_blank(t[last - 1]); last--) {
        /* trailing blanks */
    }
    if (last - j < 3 || strchr(".,;:!\"'", t[last - 1]) != NULL
        || (last >= j + 3 && t[last - 3] == 0xe2 && t[last - 2] == 0x80))
    {
        return 0;
    }
    /* text follows on the next line (not a blank line, not the end) */
    for (k = e + 1; k < ck->end && (t[k] == ' ' || t[k] == '\t'
                                    || t[k] == '\r'); k++)
    {
        /* leading blanks */
    }
    return k < ck->end && t[k] != '\n';
}

/*
 * The grade of the word end at i (t[i - 1] not blank, t[i] blank): by the
 * blank run from i (a line or paragraph break before a heading marks a
 * section), or by the punctuation before i and the letter after.
 */
static int
avc_chunk_grade(const avc_chunker_t *ck, size_t i)
{
    const unsigned char *t = ck->t;
    size_t j, k, newlines;

    newlines = 0;
    for (j = i; j < ck->end && avc_chunk_blank(t[j]); j++) {
        newlines += (t[j] == '\n');
    }
    if (newlines >= 1 && avc_chunk_heading(ck, j)) {
        return AVC_CHUNK_SECTION;
    }
    if (newlines >= 2) {
        return AVC_CHUNK_PARAGRAPH;
    }
    if (newlines == 1) {
        return AVC_CHUNK_LINE;
    }
    if (j < ck->end && t[j] >= 'a' && t[j] <= 'z') {
        return AVC_CHUNK_WORD;
    }

    /* step back over closing quotes and brackets: ." .) .' .” .’ */
    k = i;
    while (k > 0) {
        if (t[k - 1] == '"' || t[k - 1] == '\'' || t[k - 1] == ')'
            || t[k - 1] == ']')
        {
            k--;
        } else if (k >= 3 && t[k - 3] == 0xe2 && t[k - 2] == 0x80
                   && (t[k - 1] == 0x9d || t[k - 1] == 0x99))
        {
            k -= 3;
        } else {
            break;
        }
    }
    if (k == 0) {
        return AVC_CHUNK_WORD;
    }
    if (t[k - 1] == '?' || t[k - 1] == '!') {
        return AVC_CHUNK_SENTENCE;
    }
    if (k >= 3 && t[k - 3] == 0xe2 && t[k - 2] == 0x80 && t[k - 1] == 0xa6) {
        /* an ellipsis */
        return AVC_CHUNK_SENTENCE;
    }
    if (t[k - 1] == '.' && avc_chunk_period_ends(t, k - 1)) {
        return AVC_CHUNK_SENTENCE;
    }
    return AVC_CHUNK_WORD;
}

/*
 * Where the chunk whose new content starts at p, with room for `room`
 * more code points, ends.  Returns the end of the text when the rest
 * fits, else the chosen word end; 0 when there is no word end at all, with
 * *furthest set to the last code point boundary within the room.
 */
static size_t
avc_chunk_pick(const avc_chunker_t *ck, size_t p, size_t room,
               size_t *furthest)
{
    const unsigned char *t = ck->t;
    size_t best[AVC_CHUNK_GRADES], any[AVC_CHUNK_GRADES];
    size_t pos, k, half;
    int g;

    memset(best, 0, sizeof(best));
    memset(any, 0, sizeof(any));
    half = room / 2;

    pos = p;
    for (k = 0; k < room && pos < ck->end; k++) {
        do {
            pos++;
        } while (pos < ck->end && avc_chunk_cont(t[pos]));

        if (pos >= ck->end) {
            return ck->end;
        }
        if (!avc_chunk_blank(t[pos]) || avc_chunk_blank(t[pos - 1])) {
            continue;
        }
        g = avc_chunk_grade(ck, pos);
        any[g] = pos;
        if (k + 1 >= half) {
            best[g] = pos;
        }
    }
    *furthest = pos;
    if (pos >= ck->end) {
        return ck->end;
    }

    for (g = AVC_CHUNK_SECTION; g > AVC_CHUNK_CHAR; g--) {
        if (best[g]) {
            return best[g];
        }
    }
    for (g = AVC_CHUNK_SECTION; g > AVC_CHUNK_CHAR; g--) {
        if (any[g]) {
            return any[g];
        }
    }
    return 0;
}

/*
 * The start of the overlap taken from the previous chunk [ps, pe): within
 * its last `overlap` code points (and after ps), the first start of a
 * sentence, line or paragraph, else the first start of a word, so that a
 * chunk starts mid-sentence only when no sentence starts in the overlap.
 * pe when there is no word start either.
 */
static size_t
avc_chunk_overlap(const avc_chunker_t *ck, size_t ps, size_t pe,
                  size_t overlap)
{
    const unsigned char *t = ck->t;
    size_t q, k, word, b;

    q = pe;
    for (k = 0; k < overlap && q > ps; k++) {
        do {
            q--;
        } while (q > ps && avc_chunk_cont(t[q]));
    }
    /* never all of the previous chunk: each chunk starts further on */
    if (q <= ps) {
        q = ps + 1;
    }

    word = pe;
    for ( /* void */ ; q < pe; q++) {
        if (avc_chunk_blank(t[q]) || !avc_chunk_blank(t[q - 1])) {
            continue;
        }
        if (word == pe) {
            word = q;
        }
        /* the word end before this word start */
        b = q - 1;
        while (b > ps && avc_chunk_blank(t[b - 1])) {
            b--;
        }
        if (b > ps && avc_chunk_grade(ck, b) >= AVC_CHUNK_SENTENCE) {
            return q;
        }
    }
    return word;
}

typedef struct {
    size_t *start;
    size_t *end;
    size_t n;
    size_t cap;
} avc_chunk_list_t;

static int
avc_chunk_push(avc_chunk_list_t *l, size_t start, size_t end)
{
    size_t cap, *s, *e;

    if (l->n == l->cap) {
        cap = l->cap ? l->cap * 2 : 16;
        s = realloc(l->start, cap * sizeof(size_t));
        if (s == NULL) {
            return AVC_ENOMEM;
        }
        l->start = s;
        e = realloc(l->end, cap * sizeof(size_t));
        if (e == NULL) {
            return AVC_ENOMEM;
        }
        l->end = e;
        l->cap = cap;
    }
    l->start[l->n] = start;
    l->end[l->n] = end;
    l->n++;
    return AVC_OK;
}

static int
avc_chunk_split(const avc_chunker_t *ck, size_t size, size_t overlap,
                avc_chunk_list_t *l)
{
    size_t p, s, e, ov, furthest, ps, pe;
    int have_prev;

    have_prev = 0;
    ps = pe = 0;
    p = avc_chunk_skip_blanks(ck, 0);

    while (p < ck->end) {
        s = p;
        ov = 0;
        /* a chunk that starts with a heading needs nothing before it */
        if (have_prev && overlap
            && avc_chunk_grade(ck, pe) != AVC_CHUNK_SECTION)
        {
            s = avc_chunk_overlap(ck, ps, pe, overlap);
            if (s < pe) {
                /* the blanks between the two count as well */
                ov = avc_chunk_chars(ck->t, s, p);
            }
            if (s >= pe || ov >= size) {
                s = p;
                ov = 0;
            }
        }

        furthest = p;
        e = avc_chunk_pick(ck, p, size - ov, &furthest);
        if (e == 0 && s < p) {
            /* a long word: the whole room may avoid cutting it */
            s = p;
            ov = 0;
            e = avc_chunk_pick(ck, p, size, &furthest);
        }
        if (e == 0) {
            e = furthest;
        }

        if (avc_chunk_push(l, s, e) != AVC_OK) {
            return AVC_ENOMEM;
        }
        ps = s;
        pe = e;
        have_prev = 1;
        p = avc_chunk_skip_blanks(ck, e);
    }
    return AVC_OK;
}

static avc_chunks_t *
avc_chunk_fail(int *err, int rc)
{
    if (err != NULL) {
        *err = rc;
    }
    return NULL;
}

AVC_API avc_chunks_t *
avc_chunk(const char *text, size_t len, size_t chunk_size, size_t overlap,
          int *err)
{
    avc_chunk_list_t l;
    avc_chunker_t ck;
    avc_chunks_t *c;
    size_t i, total, n;
    char *at;

    if ((text == NULL && len != 0) || chunk_size == 0
        || overlap >= chunk_size)
    {
        return avc_chunk_fail(err, AVC_EINVAL);
    }
    if (text == NULL) {
        text = "";
    }
    if (!avc__utf8_valid(text, len)) {
        return avc_chunk_fail(err, AVC_EPARSE);
    }

    ck.t = (const unsigned char *) text;
    ck.end = len;
    while (ck.end > 0 && avc_chunk_blank(ck.t[ck.end - 1])) {
        ck.end--;
    }

    memset(&l, 0, sizeof(l));
    c = calloc(1, sizeof(avc_chunks_t));
    if (c == NULL || avc_chunk_split(&ck, chunk_size, overlap, &l) != AVC_OK)
    {
        goto nomem;
    }

    total = 0;
    for (i = 0; i < l.n; i++) {
        total += l.end[i] - l.start[i] + 1;
    }
    if (l.n) {
        c->offset = l.start;
        l.start = NULL;
        c->len = malloc(l.n * sizeof(size_t));
        c->text = malloc(l.n * sizeof(char *));
        c->arena = malloc(total);
        if (c->len == NULL || c->text == NULL || c->arena == NULL) {
            goto nomem;
        }
        at = c->arena;
        for (i = 0; i < l.n; i++) {
            n = l.end[i] - c->offset[i];
            memcpy(at, text + c->offset[i], n);
            at[n] = '\0';
            c->text[i] = at;
            c->len[i] = n;
            at += n + 1;
        }
        c->n = l.n;
    }
    free(l.start);
    free(l.end);
    if (err != NULL) {
        *err = AVC_OK;
    }
    return c;

nomem:
    free(l.start);
    free(l.end);
    avc_chunks_free(c);
    return avc_chunk_fail(err, AVC_ENOMEM);
}

AVC_API size_t
avc_chunks_count(const avc_chunks_t *c)
{
    return c ? c->n : 0;
}

AVC_API const char *
avc_chunks_text(const avc_chunks_t *c, size_t i, size_t *len)
{
    if (c == NULL || i >= c->n) {
        if (len != NULL) {
            *len = 0;
        }
        return NULL;
    }
    if (len != NULL) {
        *len = c->len[i];
    }
    return c->text[i];
}

AVC_API size_t
avc_chunks_offset(const avc_chunks_t *c, size_t i)
{
    return (c == NULL || i >= c->n) ? 0 : c->offset[i];
}

AVC_API void
avc_chunks_free(avc_chunks_t *c)
{
    if (c == NULL) {
        return;
    }
    free(c->offset);
    free(c->len);
    free(c->text);
    free(c->arena);
    free(c);
}
