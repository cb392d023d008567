/*
 * The offline responder: the embedded default for the language model
 * (see offline.h).  Everything here is deterministic: the same request
 * gives the same answer, so tests and demos are repeatable.
 *
 * Training answers choose, among the sentences of the best passages,
 * those sharing the most content words with the question (stopwords
 * dropped, crude suffix stemming), keep them in their passage's order,
 * and say which document each came from.  Markdown marks, headings and
 * the fragments a chunk boundary leaves are dropped, since the text may
 * be spoken.
 *
 * Role-play replays the conversation: the customer's first line is the
 * opening line; each later trainee turn either answers the concern on
 * the table (it asks a real question, shares its content words, or
 * explains at length), and the customer moves to the next objection, or
 * it does not, and the customer presses the point, at most twice before
 * letting it go unresolved.  After the last objection comes a decision:
 * yes when every concern was answered, else a polite no.
 */
#include "offline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AVC_OFF_TERMS       48      /* distinct content words kept */
#define AVC_OFF_STEM        24      /* bytes of a stem, NUL included */
#define AVC_OFF_PASSAGES    3       /* passages an answer draws on */
#define AVC_OFF_SENTENCES   4       /* sentences in an answer */
#define AVC_OFF_PER_PASSAGE 3
#define AVC_OFF_CHARS       700     /* answer length without max_tokens */
#define AVC_OFF_MIN_WORDS   4       /* a shorter line is no sentence */
#define AVC_OFF_HEAD_WORDS  8       /* shorter unpunctuated: a heading */
#define AVC_OFF_PUSHES      2       /* times a concern is pressed */

typedef struct {
    char t[AVC_OFF_TERMS][AVC_OFF_STEM];
    size_t n;
    size_t words;               /* all words seen, stopwords included */
} avc_off_terms_t;

typedef struct {
    char *text;
    size_t passage;
    size_t order;
    unsigned matched;           /* question words in it or its title */
    unsigned own;               /* in the sentence itself */
    int chosen;
} avc_off_sent_t;

typedef struct {
    avc_off_sent_t *v;
    size_t n;
    size_t cap;
} avc_off_sents_t;

/* function words and question words: no content of their own */
static const char *const avc_off_stop[] = {
    "a", "about", "after", "again", "all", "also", "always", "am", "an",
    "and", "any", "are", "as", "at", "be", "because", "been", "before",
    "being", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "done", "each", "else", "even", "every", "explain", "for",
    "from", "get", "gets", "give", "go", "going", "got", "had", "has",
    "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "i", "if", "in", "into", "is", "it", "its", "just", "know", "let",
    "lets", "like", "may", "me", "might", "more", "most", "much", "must",
    "my", "need", "never", "no", "not", "now", "of", "off", "ok", "okay",
    "on", "once", "one", "only", "or", "other", "our", "ours", "out",
    "over", "please", "really", "said", "same", "say", "says", "she",
    "should", "so", "some", "such", "tell", "than", "thank", "thanks",
    "that", "thats", "the", "their", "them", "then", "there", "these",
    "they", "thing", "things", "this", "those", "through", "to", "too",
    "up", "us", "very", "want", "was", "way", "we", "well", "were",
    "what", "whats", "when", "where", "whether", "which", "while", "who",
    "whom", "whose", "why", "will", "with", "would", "yes", "you",
    "youre", "your", "yours", "adam", "hi", "hello", "hey"
};

static int
avc_off_is_stop(const char *w)
{
    size_t i;

    for (i = 0; i < avc__countof(avc_off_stop); i++) {
        if (strcmp(avc_off_stop[i], w) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
avc_off_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c >= 0x80;
}

static char
avc_off_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static int
avc_off_ends(const char *w, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n > k && memcmp(w + n - k, suffix, k) == 0;
}

/* crude suffix stripping, the same for questions and passages */
static void
avc_off_stem(char *w)
{
    size_t n = strlen(w);

    if (avc_off_ends(w, n, "ies") && n > 4) {
        strcpy(w + n - 3, "y");
        return;
    }
    if (avc_off_ends(w, n, "sses")) {
        w[n - 2] = '\0';
        return;
    }
    if (avc_off_ends(w, n, "ing") && n > 5) {
        n -= 3;
    } else if (avc_off_ends(w, n, "ed") && n > 4) {
        n -= 2;
    } else if (avc_off_ends(w, n, "es") && n > 4
               && strchr("sxz", w[n - 3]) != NULL)
    {
        n -= 2;
    } else if (w[n - 1] == 's' && n > 3 && w[n - 2] != 's') {
        n -= 1;
    }
    if (n > 3 && w[n - 1] == 'e') {
        n--;
    }
    w[n] = '\0';
}

/*
 * The next word of [p, end) into w (lowercase, apostrophes dropped, "&"
 * kept between letters: F&I, T&W); returns the position after it, or
 * NULL when there is none.
 */
static const char *
avc_off_word(const char *p, const char *end, char *w, size_t wsize)
{
    size_t n = 0;

    while (p < end && !avc_off_alnum((unsigned char) *p)) {
        p++;
    }
    if (p == end) {
        return NULL;
    }
    while (p < end) {
        if (avc_off_alnum((unsigned char) *p)) {
            if (n + 1 < wsize) {
                w[n++] = avc_off_lower(*p);
            }
        } else if ((*p == '\'' || *p == '&') && p + 1 < end
                   && avc_off_alnum((unsigned char) p[1]))
        {
            if (*p == '&' && n + 1 < wsize) {
                w[n++] = '&';
            }
        } else {
            break;
        }
        p++;
    }
    w[n] = '\0';
    return p;
}

static void
avc_off_terms(const char *s, size_t len, avc_off_terms_t *t)
{
    const char *p = s, *end = s + len;
    char w[64];
    size_t i;

    t->n = 0;
    t->words = 0;
    while ((p = avc_off_word(p, end, w, sizeof(w))) != NULL) {
        t->words++;
        if (avc_off_is_stop(w) || (strlen(w) < 3 && !strchr(w, '&'))) {
            continue;
        }
        avc_off_stem(w);
        w[AVC_OFF_STEM - 1] = '\0';
        for (i = 0; i < t->n; i++) {
            if (strcmp(t->t[i], w) == 0) {
                break;
            }
        }
        if (i == t->n && t->n < AVC_OFF_TERMS) {
            memcpy(t->t[t->n++], w, strlen(w) + 1);
        }
    }
}

static int
avc_off_has(const avc_off_terms_t *s, const char *term)
{
    size_t j;

    for (j = 0; s && j < s->n; j++) {
        if (strcmp(term, s->t[j]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* how many of q's terms s (or its context, when not NULL) has */
static unsigned
avc_off_overlap(const avc_off_terms_t *q, const avc_off_terms_t *s,
    const avc_off_terms_t *context)
{
    unsigned n = 0;
    size_t i;

    for (i = 0; i < q->n; i++) {
        n += avc_off_has(s, q->t[i]) || avc_off_has(context, q->t[i]);
    }
    return n;
}

/* the last user message: the question, or the trainee's turn */
static const char *
avc_off_last_user(const avc_llm_request_t *req)
{
    size_t i;

    for (i = req->n_messages; i > 0; i--) {
        if (req->messages[i - 1].role == AVC_LLM_USER
            && req->messages[i - 1].content)
        {
            return req->messages[i - 1].content;
        }
    }
    return "";
}

/* sentences of passages */

static int
avc_off_terminal(char c)
{
    return c == '.' || c == '!' || c == '?';
}

static int
avc_off_count_words(const char *s, size_t n)
{
    const char *p = s, *end = s + n;
    char w[64];
    int k = 0;

    while ((p = avc_off_word(p, end, w, sizeof(w))) != NULL) {
        k++;
    }
    return k;
}

/* a period after these is no sentence end */
static int
avc_off_abbrev(const char *s, size_t dot)
{
    static const char *const abbr[] = {
        "e.g", "i.e", "mr", "mrs", "ms", "dr", "vs", "etc", "no", "st",
        "inc", "approx", "jr", "sr", "u.s", "co"
    };
    size_t b = dot, i, k;

    while (b > 0 && (avc_off_alnum((unsigned char) s[b - 1])
                     || s[b - 1] == '.'))
    {
        b--;
    }
    k = dot - b;
    if (k == 1 && s[b] >= 'A' && s[b] <= 'Z') {
        return 1;               /* an initial: "J. Smith" */
    }
    for (i = 0; i < avc__countof(abbr); i++) {
        if (strlen(abbr[i]) == k && strncasecmp(abbr[i], s + b, k) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
avc_off_add(avc_off_sents_t *ss, const char *s, size_t n, size_t passage)
{
    avc_off_sent_t *v;
    char *text;
    size_t cap;

    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (avc_off_count_words(s, n) < AVC_OFF_MIN_WORDS || s[n - 1] == ':') {
        return AVC_OK;
    }
    if (ss->n == ss->cap) {
        cap = ss->cap ? ss->cap * 2 : 32;
        v = realloc(ss->v, cap * sizeof(*v));
        if (v == NULL) {
            return AVC_ENOMEM;
        }
        ss->v = v;
        ss->cap = cap;
    }
    text = malloc(n + 2);
    if (text == NULL) {
        return AVC_ENOMEM;
    }
    memcpy(text, s, n);
    /* a bullet without a full stop still ends as a sentence */
    if (!avc_off_terminal(s[n - 1])) {
        text[n++] = '.';
    }
    text[n] = '\0';
    memset(&ss->v[ss->n], 0, sizeof(ss->v[0]));
    ss->v[ss->n].text = text;
    ss->v[ss->n].passage = passage;
    ss->v[ss->n].order = ss->n;
    ss->n++;
    return AVC_OK;
}

/* split one paragraph (markdown already gone) into sentences */
static int
avc_off_split(avc_off_sents_t *ss, const char *s, size_t n, size_t passage)
{
    size_t start = 0, i;
    int rc;

    for (i = 0; i < n; i++) {
        if (avc_off_terminal(s[i]) && i + 1 < n && s[i + 1] == ' '
            && !(s[i] == '.' && avc_off_abbrev(s, i)))
        {
            /* quotes and brackets closing the sentence stay with it */
            rc = avc_off_add(ss, s + start, i + 1 - start, passage);
            if (rc != AVC_OK) {
                return rc;
            }
            start = i + 1;
        }
    }
    return avc_off_add(ss, s + start, n - start, passage);
}

/* the length of s[0, n) up to the end of its last full sentence, or 0 */
static size_t
avc_off_last_end(const char *s, size_t n)
{
    while (n > 0) {
        if (avc_off_terminal(s[n - 1])) {
            return n;
        }
        n--;
    }
    return 0;
}

/* Is an unpunctuated line a heading: short, or in title case? */
static int
avc_off_heading(const char *s, size_t n)
{
    const char *p = s, *end = s + n, *w;
    size_t words = 0, caps = 0;

    for ( ;; ) {
        while (p < end && !avc_off_alnum((unsigned char) *p)) {
            p++;
        }
        if (p == end) {
            break;
        }
        w = p;
        while (p < end && (avc_off_alnum((unsigned char) *p) || *p == '\''
                           || *p == '&'))
        {
            p++;
        }
        if (p - w >= 4) {
            words++;
            caps += *w >= 'A' && *w <= 'Z';
        }
    }
    return avc_off_count_words(s, n) < AVC_OFF_HEAD_WORDS
           || caps * 10 >= words * 6;
}

/* a paragraph that is done: a heading (short, no full stop) is dropped */
static int
avc_off_flush(avc_off_sents_t *ss, avc__buf_t *para, int bullet,
    size_t passage)
{
    int rc = AVC_OK;

    if (para->len
        && (bullet || avc_off_terminal(para->data[para->len - 1])
            || !avc_off_heading(para->data, para->len)))
    {
        rc = avc_off_split(ss, para->data, para->len, passage);
    }
    avc__buf_reset(para);
    return rc;
}

/*
 * A passage's content to sentences: leading markdown marks (# > * - +,
 * bullets, list numbers) and inline * ` dropped, white space collapsed,
 * wrapped lines joined, headings skipped, and the fragments a chunk
 * boundary leaves at either end dropped.
 */
static int
avc_off_sentences(avc_off_sents_t *ss, const char *content, size_t passage)
{
    const char *line = content, *eol, *p, *e, *q;
    avc__buf_t para;
    size_t first = ss->n, k;
    int bullet = 0, rc = AVC_OK, line_bullet, seen = 0;

    avc__buf_init(&para);
    for ( /* void */ ; rc == AVC_OK && *line; line = *eol ? eol + 1 : eol) {
        eol = strchr(line, '\n');
        if (eol == NULL) {
            eol = line + strlen(line);
        }
        p = line;
        e = eol;
        line_bullet = 0;
        for ( ;; ) {
            while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) {
                p++;
            }
            if (p < e && strchr("#>*-+", *p)) {
                line_bullet |= *p != '#' && *p != '>';
                p++;
                continue;
            }
            if (e - p >= 3 && memcmp(p, "\xe2\x80\xa2", 3) == 0) {
                line_bullet = 1;
                p += 3;
                continue;
            }
            for (k = 0; p + k < e && k < 3 && p[k] >= '0' && p[k] <= '9';
                 k++)
            {
                /* void */
            }
            if (k > 0 && p + k + 1 < e && (p[k] == '.' || p[k] == ')')
                && p[k + 1] == ' ')
            {
                line_bullet = 1;
                p += k + 1;
                continue;
            }
            break;
        }
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
            e--;
        }
        if (p == e) {
            /* a blank line ends the paragraph */
            rc = avc_off_flush(ss, &para, bullet, passage);
            continue;
        }
        if (para.len && !line_bullet && *p >= 'a' && *p <= 'z'
            && !avc_off_terminal(para.data[para.len - 1]))
        {
            /* a wrapped line goes on in lowercase */
            rc = avc__buf_append(&para, " ", 1);

        } else {
            rc = avc_off_flush(ss, &para, bullet, passage);
            bullet = line_bullet;
            if (!seen && *p >= 'a' && *p <= 'z') {
                /* a chunk cut inside a sentence: skip to its end */
                for (q = p; q + 1 < e; q++) {
                    if (avc_off_terminal(*q) && q[1] == ' ') {
                        break;
                    }
                }
                p = q + 1 < e ? q + 2 : e;
            }
        }
        seen = 1;
        for ( /* void */ ; p < e && rc == AVC_OK; p++) {
            if (*p == '*' || *p == '`') {
                continue;
            }
            if ((*p == ' ' || *p == '\t')
                && (para.len == 0 || para.data[para.len - 1] == ' '))
            {
                continue;
            }
            rc = avc__buf_append(&para, *p == '\t' ? " " : p, 1);
        }
    }
    /* the last paragraph, cut by the chunk's end unless it ends like a
     * sentence: its last full sentence is where it stops */
    if (rc == AVC_OK && para.len && !bullet
        && !avc_off_terminal(para.data[para.len - 1]))
    {
        para.len = avc_off_last_end(para.data, para.len);
        para.data[para.len] = '\0';
    }
    if (rc == AVC_OK && para.len) {
        rc = avc_off_split(ss, para.data, para.len, passage);
    }
    avc__buf_free(&para);
    for (k = first; k < ss->n; k++) {
        ss->v[k].order = k - first;
    }
    return rc;
}

static void
avc_off_sents_free(avc_off_sents_t *ss)
{
    size_t i;

    for (i = 0; i < ss->n; i++) {
        free(ss->v[i].text);
    }
    free(ss->v);
}

/* a document's name fit to be said: its title, else its file name */
static int
avc_off_title(avc__buf_t *b, const avc_llm_passage_t *p)
{
    const char *s = p->title, *slash, *dot;
    size_t n, i, start = b->len;

    if (s && s[0]) {
        n = strlen(s);
        while (n > 0 && (s[n - 1] == '.' || s[n - 1] == ' ')) {
            n--;
        }
        if (n > 4 && strncmp(s, "The ", 4) == 0) {
            if (avc__buf_appends(b, "the ") != AVC_OK) {
                return AVC_ENOMEM;
            }
            s += 4;
            n -= 4;
        }
        return avc__buf_append(b, s, n);
    }
    s = p->filename ? p->filename : "";
    slash = strrchr(s, '/');
    s = slash ? slash + 1 : s;
    dot = strrchr(s, '.');
    n = dot && dot != s ? (size_t) (dot - s) : strlen(s);
    if (n == 0) {
        return avc__buf_appends(b, "your training material");
    }
    if (avc__buf_append(b, s, n) != AVC_OK) {
        return AVC_ENOMEM;
    }
    for (i = start; i < b->len; i++) {
        if (b->data[i] == '_' || b->data[i] == '-') {
            b->data[i] = ' ';
        }
    }
    /* "tire_and_wheel.txt" is said "Tire and Wheel" */
    for (i = start; i < b->len; i++) {
        if ((i == start || b->data[i - 1] == ' ')
            && b->data[i] >= 'a' && b->data[i] <= 'z'
            && (i == start || strspn(b->data + i,
                                     "abcdefghijklmnopqrstuvwxyz") > 3))
        {
            b->data[i] = (char) (b->data[i] - 'a' + 'A');
        }
    }
    return AVC_OK;
}

/* sentence openers that are no names: lowercased after "According to
 * X, " (besides the stopwords) */
static const char *const avc_off_openers[] = {
    "add", "always", "ask", "avoid", "check", "confirm", "customers",
    "explain", "give", "keep", "list", "make", "many", "mention", "note",
    "offer", "point", "present", "put", "read", "remember", "review",
    "show", "sign", "start", "stop", "use", "walk", "write"
};

/*
 * Append a sentence that follows "..., " or "that ": its first letter
 * lowercased when its first word is a common one ("The", "When", "Show"),
 * never for names and acronyms.
 */
static int
avc_off_inner(avc__buf_t *b, const char *s)
{
    char w[16];
    size_t n = 0, i;
    int common;

    while (n + 1 < sizeof(w) && ((s[n] >= 'A' && s[n] <= 'Z')
                                 || (s[n] >= 'a' && s[n] <= 'z')))
    {
        w[n] = avc_off_lower(s[n]);
        n++;
    }
    w[n] = '\0';
    common = avc_off_is_stop(w);
    for (i = 0; !common && i < avc__countof(avc_off_openers); i++) {
        common = strcmp(avc_off_openers[i], w) == 0;
    }
    if (common && strcmp(w, "i") != 0 && s[0] >= 'A' && s[0] <= 'Z'
        && (n == 1 || (s[1] >= 'a' && s[1] <= 'z')))
    {
        if (avc__buf_printf(b, "%c", avc_off_lower(s[0])) != AVC_OK) {
            return AVC_ENOMEM;
        }
        s++;
    }
    return avc__buf_appends(b, s);
}

static int
avc_off_training(const avc_llm_request_t *req, avc__buf_t *out)
{
    const char *question = avc_off_last_user(req);
    avc_off_terms_t q, st, tt[AVC_OFF_PASSAGES];
    avc_off_sents_t ss = { NULL, 0, 0 };
    const char *title;
    avc_off_sent_t *s, *best;
    size_t np, i, j, taken = 0, chars = 0, limit, per[AVC_OFF_PASSAGES];
    size_t group = 0, last = (size_t) -1, bestp = 0;
    unsigned top = 0;
    int rc = AVC_OK, weak;

    avc_off_terms(question, strlen(question), &q);
    if (q.n == 0) {
        return avc__buf_appends(out, "Hi, I'm Adam. Ask me anything about "
                                "the F&I office, the protection products "
                                "or handling objections, and I'll answer "
                                "from your dealership's training "
                                "material.");
    }
    np = req->n_passages < AVC_OFF_PASSAGES ? req->n_passages
                                            : AVC_OFF_PASSAGES;
    for (i = 0; i < np && rc == AVC_OK; i++) {
        if (req->passages[i].content) {
            rc = avc_off_sentences(&ss, req->passages[i].content, i);
        }
    }
    if (rc != AVC_OK) {
        avc_off_sents_free(&ss);
        return rc;
    }
    if (ss.n == 0) {
        return avc__buf_appends(out, "Our training material does not cover "
                                "that question, and I'd rather not guess. "
                                "Ask your F&I manager or your compliance "
                                "officer, and if it comes up often, ask "
                                "them to add it to the material.");
    }
    /* a word of the title counts for every sentence of its document */
    for (i = 0; i < np; i++) {
        title = req->passages[i].title ? req->passages[i].title : "";
        avc_off_terms(title, strlen(title), &tt[i]);
    }
    for (i = 0; i < ss.n; i++) {
        avc_off_terms(ss.v[i].text, strlen(ss.v[i].text), &st);
        ss.v[i].matched = avc_off_overlap(&q, &st, &tt[ss.v[i].passage]);
        ss.v[i].own = avc_off_overlap(&q, &st, NULL);
        if (ss.v[i].matched > top) {
            top = ss.v[i].matched;
            bestp = ss.v[i].passage;
        }
    }
    /* one word of a longer question is no answer: say so, and offer the
     * closest passage */
    weak = top == 0 || (top == 1 && q.n >= 3);

    limit = req->max_tokens ? req->max_tokens * 4u : AVC_OFF_CHARS;
    if (limit > AVC_OFF_CHARS) {
        limit = AVC_OFF_CHARS;
    }
    memset(per, 0, sizeof(per));

    /* best first: more words of the question, then the better passage,
     * then the earlier sentence; the first one always goes in.  When no
     * sentence has a word of the question itself (only its title has),
     * the answer is the closest passage, said so. */
    while (taken < AVC_OFF_SENTENCES) {
        best = NULL;
        for (i = 0; i < ss.n; i++) {
            s = &ss.v[i];
            if (s->chosen || per[s->passage] >= AVC_OFF_PER_PASSAGE
                || (weak && s->passage != bestp)
                || (!weak && (s->own == 0 || s->matched * 3 < top)))
            {
                continue;
            }
            if (best == NULL || s->matched > best->matched) {
                best = s;
            }
        }
        if (best == NULL && taken == 0 && !weak) {
            weak = 1;
            continue;
        }
        if (best == NULL
            || (taken > 0 && chars + strlen(best->text) > limit)
            || (weak && taken == 2))
        {
            break;
        }
        best->chosen = 1;
        per[best->passage]++;
        chars += strlen(best->text) + 1;
        taken++;
    }

    if (weak) {
        rc = avc__buf_appends(out, "Our training material doesn't answer "
                              "that directly. The closest thing I found "
                              "is in ");
        if (rc == AVC_OK) {
            rc = avc_off_title(out, &req->passages[bestp]);
        }
        if (rc == AVC_OK) {
            rc = avc__buf_appends(out, ":");
        }
        for (i = 0; i < ss.n && rc == AVC_OK; i++) {
            if (ss.v[i].chosen) {
                rc = avc__buf_printf(out, " %s", ss.v[i].text);
            }
        }
        if (rc == AVC_OK) {
            rc = avc__buf_appends(out, " For anything beyond that, check "
                                  "with your F&I manager.");
        }
        avc_off_sents_free(&ss);
        return rc;
    }

    /* in passage order (best first), each passage's in its own order */
    for (j = 0; j < np && rc == AVC_OK; j++) {
        for (i = 0; i < ss.n && rc == AVC_OK; i++) {
            s = &ss.v[i];
            if (!s->chosen || s->passage != j) {
                continue;
            }
            if (last != j) {
                if (group > 0) {
                    rc = avc__buf_appends(out, "\n\n");
                }
                if (rc == AVC_OK) {
                    rc = avc__buf_appends(out, group == 0 ? "According to "
                                          : group == 1 ? "" : "And ");
                }
                if (rc == AVC_OK) {
                    rc = avc_off_title(out, &req->passages[j]);
                }
                if (rc == AVC_OK) {
                    rc = avc__buf_appends(out, group == 0 ? ", "
                                          : " also says that ");
                }
                if (rc == AVC_OK) {
                    rc = avc_off_inner(out, s->text);
                }
                last = j;
                group++;
                continue;
            }
            rc = avc__buf_printf(out, " %s", s->text);
        }
    }
    /* a title that began the answer in lowercase ("the Menu Guide") */
    if (rc == AVC_OK && out->len > 0 && group > 1) {
        for (i = 0; i + 2 < out->len; i++) {
            if (out->data[i] == '\n' && out->data[i + 1] == '\n'
                && out->data[i + 2] >= 'a' && out->data[i + 2] <= 'z')
            {
                out->data[i + 2] = (char) (out->data[i + 2] - 'a' + 'A');
            }
        }
    }
    avc_off_sents_free(&ss);
    return rc;
}

/* role-play */

/* does the trainee's turn answer the customer's concern? */
static int
avc_off_answers(const char *turn, const char *concern)
{
    avc_off_terms_t t, c;

    avc_off_terms(turn, strlen(turn), &t);
    avc_off_terms(concern, strlen(concern), &c);
    if (strchr(turn, '?') && t.words >= 3) {
        return 1;               /* a real question: listening */
    }
    if (t.words >= 6 && avc_off_overlap(&c, &t, NULL) >= 1) {
        return 1;
    }
    return t.words >= 20;       /* an explanation */
}

static const char *const avc_off_acks[] = {
    "Okay, that's fair.",
    "Alright, I hear you.",
    "Hm. Okay, that makes some sense.",
    "Fine, I follow you."
};

static int
avc_off_roleplay(const avc_llm_request_t *req, avc__buf_t *out)
{
    const avc_scenario_t *sc = req->scenario;
    const char *turn, *concern;
    size_t i, t = 0, cur = 0, pushes = 0, unresolved = 0;
    int opened = 0, decided = 0;
    avc__buf_t line;
    int rc = AVC_OK;

    avc__buf_init(&line);

    /* replay the trainee's turns; the answer to the last one is said */
    for (i = 0; i < req->n_messages && rc == AVC_OK; i++) {
        if (req->messages[i].role != AVC_LLM_USER) {
            continue;
        }
        turn = req->messages[i].content ? req->messages[i].content : "";
        avc__buf_reset(&line);
        t++;
        if (!opened) {
            opened = 1;
            rc = avc__buf_appends(&line, sc->opening_line);
            continue;
        }
        if (decided) {
            rc = avc__buf_appends(&line, unresolved == 0
                                  ? "I think we've covered it. What do I "
                                    "need to sign?"
                                  : "I've made up my mind on that one. "
                                    "What else do I need to sign?");
            continue;
        }
        /* cur 0 is the opening line, cur k the objection k - 1 */
        concern = cur == 0 ? sc->opening_line : sc->objections[cur - 1];
        if (avc_off_answers(turn, concern) || pushes >= AVC_OFF_PUSHES) {
            rc = avc__buf_appends(&line, pushes >= AVC_OFF_PUSHES
                                  && !avc_off_answers(turn, concern)
                                  ? "Never mind. Let's move on."
                                  : avc_off_acks[t % 4]);
            if (pushes >= AVC_OFF_PUSHES && !avc_off_answers(turn, concern))
            {
                unresolved++;
            }
            pushes = 0;
            cur++;
            if (rc != AVC_OK) {
                break;
            }
            if (cur <= sc->n_objections) {
                rc = avc__buf_printf(&line, " %s", sc->objections[cur - 1]);
            } else {
                decided = 1;
                rc = avc__buf_appends(&line, unresolved == 0
                                      ? " You've answered my questions "
                                        "straight, so I'll go ahead with "
                                        "it."
                                      : " I appreciate your time, but I'm "
                                        "going to pass on it today.");
            }
            continue;
        }
        pushes++;
        rc = avc__buf_printf(&line, "%s %s", pushes == 1
                             ? "That doesn't really answer my question."
                             : "I'm still not hearing an answer.",
                             concern);
    }
    if (rc == AVC_OK) {
        rc = avc__buf_appends(out, t > 0 && line.data ? line.data
                                                      : sc->opening_line);
    }
    avc__buf_free(&line);
    return rc;
}

int
avc__llm_offline_answer(const avc_llm_request_t *req, avc__buf_t *out)
{
    if (req == NULL || out == NULL) {
        return AVC_EINVAL;
    }
    if (req->n_messages && req->messages == NULL) {
        return AVC_EINVAL;
    }
    if (req->mode == AVC_LLM_ROLEPLAY) {
        if (req->scenario == NULL || req->scenario->opening_line == NULL
            || (req->scenario->n_objections
                && req->scenario->objections == NULL))
        {
            return AVC_EINVAL;
        }
        return avc_off_roleplay(req, out);
    }
    if (req->n_passages && req->passages == NULL) {
        return AVC_EINVAL;
    }
    return avc_off_training(req, out);
}
