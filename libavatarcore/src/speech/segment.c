/*
 * The sentence segmenter: streamed text (an LLM's answer, a token at a
 * time) cut into sentences as soon as each is complete, so that speech
 * can start before the answer ends.
 *
 * A sentence ends
 *
 *   - after . ! ? or an ellipsis, with any closing quotes or brackets,
 *     followed by white space and then an upper-case letter, a digit, an
 *     opening quote or bracket, or "$" (or the end of the text), except
 *       . after an abbreviation that never ends a sentence ("Mr.",
 *         "Dr.", "St.", "vs.", "e.g.", "i.e.", "approx.", "No." before a
 *         number...);
 *       . after one that may ("etc.", "Inc.", "Jr.", "U.S.", "a.m.",
 *         an initial "J."), unless the next word is a common first word
 *         of a sentence ("The", "We", "It"...);
 *       . after a list number or letter at the start of a line ("1.");
 *       an ellipsis, unless the sentence before it has at least
 *         AVC_SEG_ELLIPSIS bytes and the next one starts with a capital
 *         letter or a quote ("Well... I" goes on);
 *   - at a line break (a list item, a heading, a paragraph);
 *   - in a sentence of over AVC_SEG_LONG bytes, after a comma, semicolon
 *     or colon followed by white space; over AVC_SEG_HARD at a space,
 *     and over AVC_SEG_MAX anywhere between two characters.
 *
 * "$1.50", "5.9%" and "3.14" never cut: a '.' followed by anything but
 * white space does not end a sentence.
 *
 * Every decision depends only on the text up to the character that
 * settles it, never on how the text was cut into pieces: a decision that
 * needs characters not yet pushed waits for them (or for the flush, which
 * decides as at the end of the text).  So the sentences are the same
 * whether the text comes whole or a byte at a time.
 */
#include "tts_int.h"

#include <stdlib.h>
#include <string.h>

#define AVC_SEG_LONG      250
#define AVC_SEG_HARD      500
#define AVC_SEG_MAX       1000
#define AVC_SEG_ELLIPSIS  20
#define AVC_SEG_ABBR_LEN  16

struct avc_segmenter_s {
    avc__buf_t buf;             /* starts with the current sentence */
    size_t scan;                /* bytes of buf known to hold no end */
    int line_start;             /* the current sentence starts a line */
};

typedef enum {
    AVC_SEG_NO = 0,             /* not the end of a sentence */
    AVC_SEG_CUT,                /* the end */
    AVC_SEG_MORE                /* the text that decides is not in yet */
} avc_seg_verdict_t;

/* never the end of a sentence */
static const char *const avc_seg_never[] = {
    "mr", "mrs", "ms", "messrs", "dr", "prof", "st", "mt", "vs", "v", "cf",
    "e.g", "i.e", "approx", "est", "dept", "fig", "figs", "vol", "gen",
    "col", "capt", "lt", "sgt", "rev", "hon", "gov", "sen", "rep", "ext",
    "jan", "feb", "aug", "sep", "sept", "oct", "nov", "dec"
};

/* the end of a sentence only before a sentence's first word */
static const char *const avc_seg_maybe[] = {
    "etc", "inc", "ltd", "co", "corp", "llc", "jr", "sr", "bros", "ave",
    "blvd", "rd", "hwy", "esq", "phd"
};

static const char *const avc_seg_starters[] = {
    "A", "After", "All", "Also", "An", "And", "Any", "Are", "As", "Ask",
    "At", "Be", "Because", "Before", "But", "Can", "Could", "Did", "Do",
    "Does", "Each", "Every", "Finally", "First", "For", "He", "Her", "Here",
    "His", "How", "However", "I", "If", "In", "Is", "It", "It's", "Its",
    "Just", "Let", "Let's", "Make", "Many", "Most", "My", "Next", "No",
    "Not", "Now", "On", "Once", "Or", "Our", "Please", "Remember", "She",
    "Since", "So", "Some", "Tell", "Thank", "Thanks", "That", "That's",
    "The", "Their", "Then", "There", "There's", "These", "They", "This",
    "Those", "To", "We", "What", "When", "Where", "Which", "While", "Who",
    "Why", "Will", "With", "Would", "Yes", "You", "Your"
};

static int
avc_seg_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}

static int
avc_seg_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

static int
avc_seg_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
avc_seg_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The length of a sentence-ending mark at d[i]: 1 for . ! ?, 3 for an
 * ellipsis character, 0 for anything else, -1 when the text ends inside
 * a character that might be one.
 */
static int
avc_seg_mark(const unsigned char *d, size_t i, size_t len)
{
    if (d[i] == '.' || d[i] == '!' || d[i] == '?') {
        return 1;
    }
    if (d[i] == 0xe2) {
        if (i + 3 > len) {
            return -1;
        }
        return d[i + 1] == 0x80 && d[i + 2] == 0xa6 ? 3 : 0;
    }
    return 0;
}

/* a closing quote or bracket at d[i], as avc_seg_mark */
static int
avc_seg_closer(const unsigned char *d, size_t i, size_t len)
{
    unsigned char c = d[i];

    if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '}') {
        return 1;
    }
    if (c == 0xe2) {                    /* ’ ” */
        if (i + 3 > len) {
            return -1;
        }
        return d[i + 1] == 0x80 && (d[i + 2] == 0x99 || d[i + 2] == 0x9d)
               ? 3 : 0;
    }
    if (c == 0xc2) {                    /* » */
        if (i + 2 > len) {
            return -1;
        }
        return d[i + 1] == 0xbb ? 2 : 0;
    }
    return 0;
}

/* how the text at d[k] may start a sentence */
enum {
    AVC_SEG_START_NONE = 0,
    AVC_SEG_START_LETTER,       /* a capital letter or an opening quote */
    AVC_SEG_START_OTHER,        /* a digit or "$" */
    AVC_SEG_START_MORE = -1     /* the text ends inside a character */
};

static int
avc_seg_start(const unsigned char *d, size_t k, size_t len)
{
    unsigned char c = d[k];

    if (avc_seg_upper(c) || c == '"' || c == '\'' || c == '('
        || c == '[')
    {
        return AVC_SEG_START_LETTER;
    }
    if (avc_seg_digit(c) || c == '$') {
        return AVC_SEG_START_OTHER;
    }
    if (c == 0xc3) {                    /* À-Þ but not × */
        if (k + 2 > len) {
            return AVC_SEG_START_MORE;
        }
        return d[k + 1] >= 0x80 && d[k + 1] <= 0x9e && d[k + 1] != 0x97
               ? AVC_SEG_START_LETTER : AVC_SEG_START_NONE;
    }
    if (c == 0xc2) {                    /* « */
        if (k + 2 > len) {
            return AVC_SEG_START_MORE;
        }
        return d[k + 1] == 0xab ? AVC_SEG_START_LETTER : AVC_SEG_START_NONE;
    }
    if (c == 0xe2) {                    /* ‘ “ */
        if (k + 3 > len) {
            return AVC_SEG_START_MORE;
        }
        return d[k + 1] == 0x80 && (d[k + 2] == 0x98 || d[k + 2] == 0x9c)
               ? AVC_SEG_START_LETTER : AVC_SEG_START_NONE;
    }
    return AVC_SEG_START_NONE;
}

static int
avc_seg_in(const char *w, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(w, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "U.S", "a.m", "U.S.A": single letters between dots */
static int
avc_seg_dotted(const unsigned char *w, size_t n)
{
    size_t i;

    if (n < 3 || n % 2 == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (i % 2 == 0 ? !avc_seg_alpha(w[i]) : w[i] != '.') {
            return 0;
        }
    }
    return 1;
}

/*
 * A single '.' at d[i], white space, then a possible start at d[k]: is
 * the word before the '.' an abbreviation or an initial?
 */
static avc_seg_verdict_t
avc_seg_period(const avc_segmenter_t *s, size_t i, size_t k, int final)
{
    const unsigned char *d = (const unsigned char *) s->buf.data;
    size_t len = s->buf.len, w0, w, n, e, j;
    char low[AVC_SEG_ABBR_LEN + 1], next[16];
    int digits = 1, initial, maybe;

    for (w0 = i; w0 > 0 && !avc_seg_space(d[w0 - 1]); w0--) {
        /* back to the start of the word */
    }
    w = w0;
    for (;;) {
        if (w < i && (d[w] == '"' || d[w] == '\'' || d[w] == '('
                      || d[w] == '['))
        {
            w++;
        } else if (w + 3 <= i && d[w] == 0xe2 && d[w + 1] == 0x80
                   && (d[w + 2] == 0x98 || d[w + 2] == 0x9c))
        {
            w += 3;
        } else {
            break;
        }
    }
    n = i - w;
    if (n == 0 || n > AVC_SEG_ABBR_LEN) {
        return AVC_SEG_CUT;
    }
    for (j = 0; j < n; j++) {
        low[j] = (char) (d[w + j] >= 'A' && d[w + j] <= 'Z' ? d[w + j] + 32
                                                            : d[w + j]);
        digits &= avc_seg_digit(d[w + j]);
    }
    low[n] = '\0';

    /* "1." or "a." opening a list item */
    if (w0 == 0 && s->line_start
        && ((digits && n <= 3) || (n == 1 && avc_seg_alpha(d[w]))))
    {
        return AVC_SEG_NO;
    }
    if ((strcmp(low, "no") == 0 || strcmp(low, "nos") == 0)
        && (avc_seg_digit(d[k]) || d[k] == '#'))
    {
        return AVC_SEG_NO;
    }
    if (avc_seg_in(low, avc_seg_never, avc__countof(avc_seg_never))) {
        return AVC_SEG_NO;
    }
    initial = n == 1 && avc_seg_upper(d[w]);
    maybe = initial || avc_seg_dotted(d + w, n)
            || avc_seg_in(low, avc_seg_maybe, avc__countof(avc_seg_maybe));
    if (!maybe) {
        return AVC_SEG_CUT;
    }

    /* the next word decides */
    for (e = k; e < len && (avc_seg_alpha(d[e]) || d[e] == '\''); e++) {
        /* the word */
    }
    if (e == len && !final) {
        return AVC_SEG_MORE;
    }
    if (e == k || e - k >= sizeof(next)) {
        return AVC_SEG_NO;
    }
    memcpy(next, d + k, e - k);
    next[e - k] = '\0';
    if (initial && (strcmp(next, "A") == 0 || strcmp(next, "I") == 0)) {
        return AVC_SEG_NO;              /* "J. A. Smith" */
    }
    return avc_seg_in(next, avc_seg_starters, avc__countof(avc_seg_starters))
           ? AVC_SEG_CUT : AVC_SEG_NO;
}

/*
 * A sentence-ending mark at d[i]: the verdict, and in *end the end of
 * the run of marks and closing quotes (where the sentence would end).
 */
static avc_seg_verdict_t
avc_seg_at_mark(const avc_segmenter_t *s, size_t i, int final, size_t *end)
{
    const unsigned char *d = (const unsigned char *) s->buf.data;
    size_t len = s->buf.len, j = i, k;
    int t, dots = 0, bang = 0, ellipsis = 0, start;

    while (j < len) {
        t = avc_seg_mark(d, j, len);
        if (t < 0 && !final) {
            *end = j;
            return AVC_SEG_MORE;
        }
        if (t <= 0) {
            break;
        }
        if (t == 3) {
            ellipsis = 1;
        } else if (d[j] == '.') {
            dots++;
        } else {
            bang = 1;
        }
        j += (size_t) t;
    }
    while (j < len) {
        t = avc_seg_closer(d, j, len);
        if (t < 0 && !final) {
            *end = j;
            return AVC_SEG_MORE;
        }
        if (t <= 0) {
            break;
        }
        j += (size_t) t;
    }
    *end = j;
    if (j == len) {
        return final ? AVC_SEG_CUT : AVC_SEG_MORE;
    }
    if (!avc_seg_space(d[j])) {
        return AVC_SEG_NO;
    }
    for (k = j; k < len && (d[k] == ' ' || d[k] == '\t'); k++) {
        /* to the next word */
    }
    if (k == len) {
        return final ? AVC_SEG_CUT : AVC_SEG_MORE;
    }
    if (avc_seg_space(d[k])) {
        return AVC_SEG_CUT;             /* a line break */
    }
    start = avc_seg_start(d, k, len);
    if (start == AVC_SEG_START_MORE) {
        return final ? AVC_SEG_NO : AVC_SEG_MORE;
    }
    if (start == AVC_SEG_START_NONE) {
        return AVC_SEG_NO;
    }
    if (bang) {
        return AVC_SEG_CUT;
    }
    if (ellipsis || dots > 1) {
        return i >= AVC_SEG_ELLIPSIS && start == AVC_SEG_START_LETTER
               ? AVC_SEG_CUT : AVC_SEG_NO;
    }
    return avc_seg_period(s, i, k, final);
}

/* the end of the first sentence in buf: 1 and *cut, or 0 */
static int
avc_seg_find(avc_segmenter_t *s, int final, size_t *cut)
{
    const unsigned char *d = (const unsigned char *) s->buf.data;
    size_t len = s->buf.len, i, end;
    avc_seg_verdict_t v;
    unsigned char c;
    int t;

    for (i = s->scan; i < len; i++) {
        c = d[i];
        if (c == '\n' || c == '\r') {
            *cut = i;
            return 1;
        }
        t = avc_seg_mark(d, i, len);
        if (t < 0 && !final) {
            s->scan = i;
            return 0;
        }
        if (t > 0) {
            v = avc_seg_at_mark(s, i, final, &end);
            if (v == AVC_SEG_MORE) {
                s->scan = i;
                return 0;
            }
            if (v == AVC_SEG_CUT) {
                *cut = end;
                return 1;
            }
            i = end - 1;                /* past the run */
            continue;
        }
        if (i >= AVC_SEG_LONG && (c == ',' || c == ';' || c == ':')) {
            if (i + 1 == len) {
                if (!final) {
                    s->scan = i;
                    return 0;
                }
                *cut = len;
                return 1;
            }
            if (avc_seg_space(d[i + 1])) {
                *cut = i + 1;
                return 1;
            }
        }
        if ((i >= AVC_SEG_HARD && (c == ' ' || c == '\t'))
            || (i >= AVC_SEG_MAX && (c & 0xc0) != 0x80))
        {
            *cut = i;
            return 1;
        }
    }
    s->scan = len;
    return 0;
}

/* drop the white space before a sentence, noting a line break in it */
static void
avc_seg_trim(avc_segmenter_t *s)
{
    const unsigned char *d = (const unsigned char *) s->buf.data;
    size_t i = 0;

    while (i < s->buf.len && avc_seg_space(d[i])) {
        if (d[i] == '\n' || d[i] == '\r') {
            s->line_start = 1;
        }
        i++;
    }
    if (i == 0) {
        return;
    }
    memmove(s->buf.data, s->buf.data + i, s->buf.len - i);
    s->buf.len -= i;
    s->buf.data[s->buf.len] = '\0';
    s->scan = s->scan > i ? s->scan - i : 0;
}

/* the sentence buf[0..cut) without its trailing white space (new) */
static char *
avc_seg_take(avc_segmenter_t *s, size_t cut)
{
    size_t n = cut;
    char *out;

    while (n > 0 && avc_seg_space((unsigned char) s->buf.data[n - 1])) {
        n--;
    }
    out = malloc(n + 1);
    if (out == NULL) {
        return NULL;
    }
    memcpy(out, s->buf.data, n);
    out[n] = '\0';
    memmove(s->buf.data, s->buf.data + cut, s->buf.len - cut);
    s->buf.len -= cut;
    s->buf.data[s->buf.len] = '\0';
    s->scan = 0;
    s->line_start = 0;
    return out;
}

AVC_API avc_segmenter_t *
avc_segmenter_new(void)
{
    avc_segmenter_t *s = calloc(1, sizeof(*s));

    if (s) {
        avc__buf_init(&s->buf);
        s->line_start = 1;
    }
    return s;
}

AVC_API char *
avc_segmenter_push(avc_segmenter_t *s, const char *p, size_t n)
{
    size_t cut;

    if (s == NULL) {
        return NULL;
    }
    if (p != NULL && n > 0 && avc__buf_append(&s->buf, p, n) != AVC_OK) {
        return NULL;
    }
    avc_seg_trim(s);
    if (s->buf.len == 0 || !avc_seg_find(s, 0, &cut)) {
        return NULL;
    }
    return avc_seg_take(s, cut);
}

AVC_API char *
avc_segmenter_flush(avc_segmenter_t *s)
{
    size_t cut;
    char *out;

    if (s == NULL) {
        return NULL;
    }
    avc_seg_trim(s);
    if (s->buf.len == 0) {
        s->line_start = 1;
        s->scan = 0;
        return NULL;
    }
    if (!avc_seg_find(s, 1, &cut)) {
        cut = s->buf.len;
    }
    out = avc_seg_take(s, cut);
    avc_seg_trim(s);
    if (s->buf.len == 0) {
        s->line_start = 1;              /* the next text starts afresh */
    }
    return out;
}

AVC_API void
avc_segmenter_free(avc_segmenter_t *s)
{
    if (s) {
        avc__buf_free(&s->buf);
        free(s);
    }
}
