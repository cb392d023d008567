/*
 * Lexical analysis for retrieval: folding, words, stopwords, Porter
 * stemming and the F&I synonym concepts.
 *
 * Everything here is deterministic and independent of the locale: the
 * local embedder's vectors are stored in the database and compared with
 * vectors made later, maybe by another build on another machine, so the
 * same text must always give the same terms.
 */
#include "rag_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* bump when the analysis changes in a way that changes vectors */
#define AVC_LX_VERSION  "lx-2"

/* a variant of a concept has at most this many words */
#define AVC_LX_VARIANT_MAX  8

/*
 * Function words: no feature of their own (they still take part in
 * synonym phrases such as "truth in lending").  Sorted at init.
 */
static const char *avc_lx_stop[] = {
    "a", "about", "above", "after", "again", "against", "all", "also", "am",
    "an", "and", "any", "are", "aren", "as", "at", "be", "because", "been",
    "before", "being", "below", "between", "both", "but", "by", "can",
    "cannot", "could", "couldn", "d", "did", "didn", "do", "does", "doesn",
    "doing", "don", "dont", "down", "during", "each", "eg", "etc", "few",
    "for", "from", "further", "had", "hadn", "has", "hasn", "have", "haven",
    "having", "he", "her", "here", "hers", "herself", "him", "himself",
    "his", "how", "i", "ie", "if", "in", "into", "is", "isn", "it", "its",
    "itself", "just", "ll", "m", "may", "me", "might", "mightn", "more",
    "most", "must", "mustn", "my", "myself", "needn", "no", "nor", "not",
    "now", "of", "off", "on", "once",
    "only", "or", "other", "ought", "our", "ours", "ourselves", "out",
    "over", "own", "re", "s", "same", "shall", "shan", "she", "should",
    "shouldn", "so", "some", "such", "t", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up",
    "upon", "us", "ve", "very", "via", "was", "wasn", "we", "were",
    "weren", "what", "whatever", "when", "where", "whether", "which",
    "while", "who", "whom", "whose", "why", "will", "with", "won", "would",
    "wouldn", "yet", "you", "your", "yours", "yourself", "yourselves"
};

/*
 * Frequent words that say little about a topic: kept, but damped, the
 * stand-in for an inverse document frequency that a stateless embedder
 * cannot know.  Sorted at init.
 */
static const char *avc_lx_light[] = {
    "able", "actual", "actually", "add", "ago", "almost", "already",
    "always", "another", "anybody", "anyone", "anything", "anywhere",
    "around", "ask", "asked", "asking", "asks", "away", "back", "best",
    "better", "big", "bit", "came", "certain", "come", "comes", "coming",
    "could", "different", "done", "either", "else", "enough", "even",
    "ever", "every", "everybody", "everyone", "everything", "everywhere",
    "example", "fact", "far", "feel", "find",
    "get", "gets", "getting", "give", "given", "gives", "go", "goes",
    "going", "gone", "good", "got", "great", "happen", "happens", "help",
    "however", "important", "instead", "keep", "keeps", "kind", "know",
    "knows", "least", "less", "let", "lets", "like", "likely", "little",
    "look", "looks", "lot", "lots", "made", "make", "makes", "making",
    "many", "mean", "means", "much", "need", "needs", "never", "often",
    "nobody", "nothing", "nowhere",
    "one", "ones", "others", "part", "people", "person", "place", "point",
    "put", "puts", "quite", "rather", "real", "really", "right", "said",
    "say", "says", "see", "seem", "seems", "somebody", "someone",
    "sometimes", "something", "somewhere",
    "soon", "still", "sure", "take", "takes", "taking", "tell", "tells",
    "thing", "things", "think", "though", "told", "took", "try", "trying",
    "usually", "want", "wants", "way", "ways", "well", "whole", "within",
    "without", "yes"
};

/*
 * Number words become numbers, so "five years" meets "5 years" and "a
 * sixty-day notice" meets "60 days".  "one" stays a word (more often a
 * pronoun), and so do "hundred" and "thousand", which multiply the word
 * before them.  Sorted at init.
 */
static const char *avc_lx_numbers[][2] = {
    { "eight", "8" }, { "eighteen", "18" }, { "eighty", "80" },
    { "eleven", "11" }, { "fifteen", "15" }, { "fifty", "50" },
    { "five", "5" }, { "forty", "40" }, { "four", "4" },
    { "fourteen", "14" }, { "nine", "9" },
    { "nineteen", "19" }, { "ninety", "90" }, { "seven", "7" },
    { "seventeen", "17" }, { "seventy", "70" }, { "six", "6" },
    { "sixteen", "16" }, { "sixty", "60" }, { "ten", "10" },
    { "thirteen", "13" }, { "thirty", "30" },
    { "three", "3" }, { "twelve", "12" }, { "twenty", "20" },
    { "two", "2" }, { "zero", "0" }
};

typedef struct {
    const char *name;
    double weight;
    size_t first;               /* its variants: vars[first .. first+n) */
    size_t n;
} avc_lx_concept_t;

typedef struct {
    int32_t concept;
    unsigned nstems;
    const char *stems[AVC_LX_VARIANT_MAX];
    const char *spelling;       /* folded words joined by spaces */
} avc_lx_variant_t;

static struct {
    pthread_once_t once;
    int rc;
    avc_lx_concept_t *concepts;
    size_t nconcepts;
    avc_lx_variant_t *vars;     /* in concept order */
    size_t nvars;
    avc_lx_variant_t **by_stem; /* sorted by first stem, longest first */
    char *strings;              /* every name, stem and spelling */
    uint32_t hash;
} avc_lx = { PTHREAD_ONCE_INIT, AVC_ENOMEM, NULL, 0, NULL, 0, NULL, NULL,
             0 };


/* folding */

/* Latin-1 letters U+00C0-U+00FF; "" is a separator (x and division) */
static const char *const avc_lx_latin1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i",
    "i", "i", "d", "n", "o", "o", "o", "o", "o", "", "o", "u", "u", "u",
    "u", "y", "th", "ss", "a", "a", "a", "a", "a", "a", "ae", "c", "e",
    "e", "e", "e", "i", "i", "i", "i", "d", "n", "o", "o", "o", "o", "o",
    "", "o", "u", "u", "u", "u", "y", "th", "y"
};

/* Latin Extended-A U+0100-U+017F, one base letter each */
static const char avc_lx_latin_a[129] =
    "aaaaaacccccccc" "dddd" "eeeeeeeeee" "gggggggg" "hhhh" "iiiiiiiiii"
    "ii" "jj" "kkk" "llllllllll" "nnnnnnnnn" "oooooo" "oo" "rrrrrr"
    "ssssssss" "tttttt" "uuuuuuuuuuuu" "ww" "yyy" "zzzzzz" "s";

/* decode one UTF-8 sequence at p (n > 0 bytes); *cp, returns its length;
 * an invalid sequence is one byte of U+FFFD */
static size_t
avc_lx_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    uint32_t c = p[0], min;
    size_t len, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        c &= 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        c &= 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    if (len > n) {
        *cp = 0xfffd;
        return 1;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        *cp = 0xfffd;
        return 1;
    }
    *cp = c;
    return len;
}

/*
 * Fold text to lowercase ASCII: letters and digits, the marks the word
 * splitter looks at (' & . , % -), and spaces for everything else.
 */
static int
avc_lx_fold(avc__lx_t *lx, const char *text, size_t len, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0, o = 0, k, need;
    const char *rep;
    char one[2];
    uint32_t cp;
    char *f;

    /* a code point folds to at most 2 bytes, and takes at least 1 */
    if (len > (SIZE_MAX - 1) / 2) {
        return AVC_ETOOBIG;
    }
    need = 2 * len + 1;
    if (need > lx->fold_cap) {
        f = realloc(lx->fold, need);
        if (f == NULL) {
            return AVC_ENOMEM;
        }
        lx->fold = f;
        lx->fold_cap = need;
    }
    f = lx->fold;
    one[1] = '\0';

    while (i < len) {
        i += avc_lx_utf8(p + i, len - i, &cp);
        rep = " ";
        if (cp < 0x80) {
            if (cp >= 'A' && cp <= 'Z') {
                one[0] = (char) (cp + 32);
                rep = one;
            } else if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')
                       || cp == '\'' || cp == '&' || cp == '.' || cp == ','
                       || cp == '%' || cp == '-')
            {
                one[0] = (char) cp;
                rep = one;
            }
        } else if (cp >= 0xc0 && cp <= 0xff) {
            rep = avc_lx_latin1[cp - 0xc0];
            if (*rep == '\0') {
                rep = " ";
            }
        } else if (cp >= 0x100 && cp <= 0x17f) {
            one[0] = avc_lx_latin_a[cp - 0x100];
            rep = one;
        } else if (cp == 0x2018 || cp == 0x2019 || cp == 0x02bc) {
            rep = "'";
        } else if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212) {
            rep = "-";
        }
        for (k = 0; rep[k]; k++) {
            f[o++] = rep[k];
        }
    }
    f[o] = '\0';
    *out_len = o;
    return AVC_OK;
}


/* Porter's stemmer (M.F. Porter, 1980), with his published departures */

typedef struct {
    char *b;
    int k;                      /* the end of the word */
    int j;                      /* a general offset */
} avc_porter_t;

static int
avc_porter_cons(const avc_porter_t *z, int i)
{
    switch (z->b[i]) {
    case 'a': case 'e': case 'i': case 'o': case 'u':
        return 0;
    case 'y':
        return i == 0 ? 1 : !avc_porter_cons(z, i - 1);
    default:
        return 1;
    }
}

/* the number of consonant-vowel sequences in b[0..j] */
static int
avc_porter_m(const avc_porter_t *z)
{
    int n = 0, i = 0;

    for ( ;; ) {
        if (i > z->j) {
            return n;
        }
        if (!avc_porter_cons(z, i)) {
            break;
        }
        i++;
    }
    i++;
    for ( ;; ) {
        for ( ;; ) {
            if (i > z->j) {
                return n;
            }
            if (avc_porter_cons(z, i)) {
                break;
            }
            i++;
        }
        i++;
        n++;
        for ( ;; ) {
            if (i > z->j) {
                return n;
            }
            if (!avc_porter_cons(z, i)) {
                break;
            }
            i++;
        }
        i++;
    }
}

static int
avc_porter_vowel_in_stem(const avc_porter_t *z)
{
    int i;

    for (i = 0; i <= z->j; i++) {
        if (!avc_porter_cons(z, i)) {
            return 1;
        }
    }
    return 0;
}

static int
avc_porter_doublec(const avc_porter_t *z, int j)
{
    if (j < 1 || z->b[j] != z->b[j - 1]) {
        return 0;
    }
    return avc_porter_cons(z, j);
}

/* consonant-vowel-consonant at i, the last not w, x or y */
static int
avc_porter_cvc(const avc_porter_t *z, int i)
{
    int ch;

    if (i < 2 || !avc_porter_cons(z, i) || avc_porter_cons(z, i - 1)
        || !avc_porter_cons(z, i - 2))
    {
        return 0;
    }
    ch = z->b[i];
    return ch != 'w' && ch != 'x' && ch != 'y';
}

/* does b[0..k] end with s?  then j is the offset before it */
static int
avc_porter_ends(avc_porter_t *z, const char *s)
{
    int len = (int) strlen(s);

    if (len > z->k + 1 || z->b[z->k] != s[len - 1]) {
        return 0;
    }
    if (memcmp(z->b + z->k - len + 1, s, (size_t) len) != 0) {
        return 0;
    }
    z->j = z->k - len;
    return 1;
}

static void
avc_porter_setto(avc_porter_t *z, const char *s)
{
    int len = (int) strlen(s);

    memmove(z->b + z->j + 1, s, (size_t) len);
    z->k = z->j + len;
}

static void
avc_porter_r(avc_porter_t *z, const char *s)
{
    if (avc_porter_m(z) > 0) {
        avc_porter_setto(z, s);
    }
}

/* plurals, -ed and -ing */
static void
avc_porter_step1ab(avc_porter_t *z)
{
    int ch;

    if (z->b[z->k] == 's') {
        if (avc_porter_ends(z, "sses")) {
            z->k -= 2;
        } else if (avc_porter_ends(z, "ies")) {
            avc_porter_setto(z, "i");
        } else if (z->b[z->k - 1] != 's') {
            z->k--;
        }
    }
    if (avc_porter_ends(z, "eed")) {
        if (avc_porter_m(z) > 0) {
            z->k--;
        }
    } else if ((avc_porter_ends(z, "ed") || avc_porter_ends(z, "ing"))
               && avc_porter_vowel_in_stem(z))
    {
        z->k = z->j;
        if (avc_porter_ends(z, "at")) {
            avc_porter_setto(z, "ate");
        } else if (avc_porter_ends(z, "bl")) {
            avc_porter_setto(z, "ble");
        } else if (avc_porter_ends(z, "iz")) {
            avc_porter_setto(z, "ize");
        } else if (avc_porter_doublec(z, z->k)) {
            z->k--;
            ch = z->b[z->k];
            if (ch == 'l' || ch == 's' || ch == 'z') {
                z->k++;
            }
        } else {
            z->j = z->k;
            if (avc_porter_m(z) == 1 && avc_porter_cvc(z, z->k)) {
                avc_porter_setto(z, "e");
            }
        }
    }
}

static void
avc_porter_step1c(avc_porter_t *z)
{
    if (avc_porter_ends(z, "y") && avc_porter_vowel_in_stem(z)) {
        z->b[z->k] = 'i';
    }
}

/* suffix pairs: when b ends with the first and m > 0, the second */
static int
avc_porter_table(avc_porter_t *z, const char *const *t)
{
    for ( ; *t; t += 2) {
        if (avc_porter_ends(z, t[0])) {
            avc_porter_r(z, t[1]);
            return 1;
        }
    }
    return 0;
}

static void
avc_porter_step2(avc_porter_t *z)
{
    static const char *const t[] = {
        "ational", "ate", "tional", "tion", "enci", "ence", "anci", "ance",
        "izer", "ize", "bli", "ble", "alli", "al", "entli", "ent",
        "eli", "e", "ousli", "ous", "ization", "ize", "ation", "ate",
        "ator", "ate", "alism", "al", "iveness", "ive", "fulness", "ful",
        "ousness", "ous", "aliti", "al", "iviti", "ive", "biliti", "ble",
        "logi", "log", NULL
    };

    if (z->k < 1) {
        return;
    }
    avc_porter_table(z, t);
}

static void
avc_porter_step3(avc_porter_t *z)
{
    static const char *const t[] = {
        "icate", "ic", "ative", "", "alize", "al", "iciti", "ic",
        "ical", "ic", "ful", "", "ness", "", NULL
    };

    avc_porter_table(z, t);
}

static void
avc_porter_step4(avc_porter_t *z)
{
    static const char *const t[] = {
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement",
        "ment", "ent", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
        NULL
    };
    size_t i;

    if (z->k < 1) {
        return;
    }
    for (i = 0; t[i]; i++) {
        if (avc_porter_ends(z, t[i])) {
            break;
        }
    }
    if (t[i] == NULL) {
        if (!(avc_porter_ends(z, "ion") && z->j >= 0
              && (z->b[z->j] == 's' || z->b[z->j] == 't')))
        {
            return;
        }
    }
    if (avc_porter_m(z) > 1) {
        z->k = z->j;
    }
}

static void
avc_porter_step5(avc_porter_t *z)
{
    int a;

    z->j = z->k;
    if (z->b[z->k] == 'e') {
        a = avc_porter_m(z);
        if (a > 1 || (a == 1 && !avc_porter_cvc(z, z->k - 1))) {
            z->k--;
        }
    }
    /* as Porter's: m is still measured on the word before the e went */
    if (z->b[z->k] == 'l' && avc_porter_doublec(z, z->k)
        && avc_porter_m(z) > 1)
    {
        z->k--;
    }
}

size_t
avc__lx_stem(char *w, size_t len)
{
    avc_porter_t z;

    /* words of one or two letters are left alone */
    if (len <= 2) {
        return len;
    }
    z.b = w;
    z.k = (int) len - 1;
    z.j = 0;
    avc_porter_step1ab(&z);
    if (z.k > 0) {
        avc_porter_step1c(&z);
        avc_porter_step2(&z);
        avc_porter_step3(&z);
        avc_porter_step4(&z);
        avc_porter_step5(&z);
    }
    w[z.k + 1] = '\0';
    return (size_t) z.k + 1;
}


/* word lists */

static int
avc_lx_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int
avc_lx_in(const char **list, size_t n, const char *w)
{
    return bsearch(&w, list, n, sizeof(list[0]), avc_lx_strcmp) != NULL;
}

/* the second of the pair of a sorted table whose first is w, or NULL */
static const char *
avc_lx_pair(const char *(*table)[2], size_t n, const char *w)
{
    const char *(*p)[2];

    p = bsearch(&w, table, n, sizeof(table[0]), avc_lx_strcmp);
    return p ? (*p)[1] : NULL;
}

static int
avc_lx_is_alpha(int c)
{
    return c >= 'a' && c <= 'z';
}

static int
avc_lx_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int
avc_lx_is_alnum(int c)
{
    return avc_lx_is_alpha(c) || avc_lx_is_digit(c);
}


/* analysis */

void
avc__lx_init_struct(avc__lx_t *lx)
{
    memset(lx, 0, sizeof(*lx));
}

void
avc__lx_free(avc__lx_t *lx)
{
    free(lx->words);
    free(lx->arena);
    free(lx->fold);
    memset(lx, 0, sizeof(*lx));
}

static int
avc_lx_arena_add(avc__lx_t *lx, const char *s, size_t n, uint32_t *off)
{
    size_t cap;
    char *p;

    if (lx->arena_len + n + 1 > lx->arena_cap) {
        cap = lx->arena_cap ? lx->arena_cap : 1024;
        while (cap < lx->arena_len + n + 1) {
            cap *= 2;
        }
        if (cap > UINT32_MAX) {
            return AVC_ETOOBIG;
        }
        p = realloc(lx->arena, cap);
        if (p == NULL) {
            return AVC_ENOMEM;
        }
        lx->arena = p;
        lx->arena_cap = cap;
    }
    *off = (uint32_t) lx->arena_len;
    memcpy(lx->arena + lx->arena_len, s, n);
    lx->arena[lx->arena_len + n] = '\0';
    lx->arena_len += n + 1;
    return AVC_OK;
}

static int
avc_lx_add_word(avc__lx_t *lx, char *w, size_t wl)
{
    avc__lx_word_t *wd;
    char stem[AVC__LX_WORD_MAX + 1];
    const char *base;
    size_t sl, i, cap;
    int digit = 0, amp = 0, rc;

    if (lx->n == lx->cap) {
        cap = lx->cap ? lx->cap * 2 : 64;
        wd = realloc(lx->words, cap * sizeof(*wd));
        if (wd == NULL) {
            return AVC_ENOMEM;
        }
        lx->words = wd;
        lx->cap = cap;
    }
    w[wl] = '\0';
    base = avc_lx_pair(avc_lx_numbers, avc__countof(avc_lx_numbers), w);
    if (base) {
        wl = strlen(base);
        memcpy(w, base, wl + 1);
    }
    for (i = 0; i < wl; i++) {
        digit |= avc_lx_is_digit(w[i]);
        amp |= w[i] == '&';
    }
    memcpy(stem, w, wl + 1);
    sl = digit || amp ? wl : avc__lx_stem(stem, wl);

    wd = &lx->words[lx->n];
    memset(wd, 0, sizeof(*wd));
    wd->concept = -1;
    wd->wlen = (uint8_t) wl;
    wd->slen = (uint8_t) sl;
    if (digit) {
        wd->cls = AVC__LX_DIGIT;
    } else if (avc_lx_in(avc_lx_stop, avc__countof(avc_lx_stop), w)) {
        wd->cls = AVC__LX_STOP;
    } else if (avc_lx_in(avc_lx_light, avc__countof(avc_lx_light), w)) {
        wd->cls = AVC__LX_LIGHT;
    }
    rc = avc_lx_arena_add(lx, w, wl, &wd->woff);
    if (rc == AVC_OK) {
        rc = avc_lx_arena_add(lx, stem, sl, &wd->soff);
    }
    if (rc != AVC_OK) {
        return rc;
    }
    lx->n++;
    return AVC_OK;
}

/* the length of the run of letters at f[i] */
static size_t
avc_lx_alpha_run(const char *f, size_t i, size_t m)
{
    size_t n = 0;

    while (i + n < m && avc_lx_is_alpha(f[i + n])) {
        n++;
    }
    return n;
}

/*
 * Split folded text into words.  Inside a word: "customer's" loses its
 * possessive, "don't" becomes "dont", "T&W" and "F&I" stay one word,
 * "0.125" and "36,000" stay numbers ("36000"); "%" is the word "percent";
 * a lone "&" is "and" (so that "tire & wheel" is "tire and wheel").
 */
static int
avc_lx_split(avc__lx_t *lx, const char *f, size_t m)
{
    char w[AVC__LX_WORD_MAX + 2];
    size_t i = 0, wl;
    int c, prev, rc;

    while (i < m) {
        c = f[i];
        if (c == '%') {
            memcpy(w, "percent", 7);
            rc = avc_lx_add_word(lx, w, 7);
            if (rc != AVC_OK) {
                return rc;
            }
            i++;
            continue;
        }
        if (c == '&') {
            memcpy(w, "and", 3);
            rc = avc_lx_add_word(lx, w, 3);
            if (rc != AVC_OK) {
                return rc;
            }
            i++;
            continue;
        }
        if (!avc_lx_is_alnum(c)) {
            i++;
            continue;
        }
        wl = 0;
        while (i < m) {
            c = f[i];
            prev = wl ? w[wl - 1] : 0;
            if (avc_lx_is_alnum(c)) {
                if (wl < AVC__LX_WORD_MAX) {
                    w[wl++] = (char) c;
                }
                i++;
                continue;
            }
            if (c == '\'' && avc_lx_is_alpha(prev) && i + 1 < m
                && avc_lx_is_alpha(f[i + 1]))
            {
                if (f[i + 1] == 's'
                    && (i + 2 >= m || !avc_lx_is_alnum(f[i + 2])))
                {
                    i += 2;
                    break;
                }
                i++;
                continue;
            }
            if (c == '&' && avc_lx_is_alpha(prev) && wl <= 3 && i + 1 < m
                && avc_lx_alpha_run(f, i + 1, m) >= 1
                && avc_lx_alpha_run(f, i + 1, m) <= 3)
            {
                if (wl < AVC__LX_WORD_MAX) {
                    w[wl++] = '&';
                }
                i++;
                continue;
            }
            if (c == '.' && avc_lx_is_digit(prev) && i + 1 < m
                && avc_lx_is_digit(f[i + 1]))
            {
                if (wl < AVC__LX_WORD_MAX) {
                    w[wl++] = '.';
                }
                i++;
                continue;
            }
            if (c == ',' && avc_lx_is_digit(prev) && i + 3 < m
                && avc_lx_is_digit(f[i + 1]) && avc_lx_is_digit(f[i + 2])
                && avc_lx_is_digit(f[i + 3])
                && (i + 4 >= m || !avc_lx_is_digit(f[i + 4])))
            {
                i++;
                continue;
            }
            break;
        }
        rc = avc_lx_add_word(lx, w, wl);
        if (rc != AVC_OK) {
            return rc;
        }
    }
    return AVC_OK;
}

static int
avc_lx_var_cmp_stem(const char *stem, const avc_lx_variant_t *v)
{
    return strcmp(stem, v->stems[0]);
}

/* the longest variant matching the words from i on, or NULL */
static const avc_lx_variant_t *
avc_lx_match(const avc__lx_t *lx, size_t i)
{
    const char *stem = avc__lx_sstr(lx, i);
    size_t lo = 0, hi = avc_lx.nvars, mid, k;
    const avc_lx_variant_t *v;
    int c;

    /* the first variant whose first stem is >= stem */
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (avc_lx_var_cmp_stem(stem, avc_lx.by_stem[mid]) > 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    /* sorted longest first: the first full match is the longest */
    for ( ; lo < avc_lx.nvars; lo++) {
        v = avc_lx.by_stem[lo];
        c = avc_lx_var_cmp_stem(stem, v);
        if (c != 0) {
            break;
        }
        if (i + v->nstems > lx->n) {
            continue;
        }
        for (k = 1; k < v->nstems; k++) {
            if (strcmp(avc__lx_sstr(lx, i + k), v->stems[k]) != 0) {
                break;
            }
        }
        if (k == v->nstems) {
            return v;
        }
    }
    return NULL;
}

static void
avc_lx_concepts_mark(avc__lx_t *lx, size_t from)
{
    const avc_lx_variant_t *v;
    size_t i = from;

    while (i < lx->n) {
        v = avc_lx.nvars ? avc_lx_match(lx, i) : NULL;
        if (v == NULL) {
            i++;
            continue;
        }
        lx->words[i].concept = v->concept;
        lx->words[i].span = (uint8_t) v->nstems;
        i += v->nstems;
    }
}

static int
avc_lx_analyze_plain(avc__lx_t *lx, const char *text, size_t len)
{
    size_t m;
    int rc;

    rc = avc_lx_fold(lx, text, len, &m);
    if (rc != AVC_OK) {
        return rc;
    }
    return avc_lx_split(lx, lx->fold, m);
}

int
avc__lx_analyze(avc__lx_t *lx, const char *text, size_t len)
{
    size_t from = lx->n;
    int rc;

    rc = avc__lx_init();
    if (rc != AVC_OK) {
        return rc;
    }
    rc = avc_lx_analyze_plain(lx, text, len);
    if (rc != AVC_OK) {
        return rc;
    }
    avc_lx_concepts_mark(lx, from);
    return AVC_OK;
}


/* the synonym table */

static uint32_t
avc_lx_fnv(uint32_t h, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char) p[i];
        h *= 16777619u;
    }
    return h;
}

static int
avc_lx_by_stem_cmp(const void *a, const void *b)
{
    const avc_lx_variant_t *x = *(const avc_lx_variant_t *const *) a;
    const avc_lx_variant_t *y = *(const avc_lx_variant_t *const *) b;
    int c;

    c = strcmp(x->stems[0], y->stems[0]);
    if (c != 0) {
        return c;
    }
    if (x->nstems != y->nstems) {
        return x->nstems > y->nstems ? -1 : 1;
    }
    /* a stable order whatever qsort does with equal keys */
    return x < y ? -1 : x > y;
}

/* a growing string pool; pointers are fixed up once it stops moving */
typedef struct {
    char *p;
    size_t len;
    size_t cap;
} avc_lx_pool_t;

static int
avc_lx_pool_add(avc_lx_pool_t *pl, const char *s, size_t n, size_t *off)
{
    size_t cap;
    char *p;

    if (pl->len + n + 1 > pl->cap) {
        cap = pl->cap ? pl->cap : 4096;
        while (cap < pl->len + n + 1) {
            cap *= 2;
        }
        p = realloc(pl->p, cap);
        if (p == NULL) {
            return AVC_ENOMEM;
        }
        pl->p = p;
        pl->cap = cap;
    }
    *off = pl->len;
    memcpy(pl->p + pl->len, s, n);
    pl->p[pl->len + n] = '\0';
    pl->len += n + 1;
    return AVC_OK;
}

static const char *
avc_lx_trim(const char *s, const char *e, const char **end)
{
    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
        e--;
    }
    *end = e;
    return s;
}

/*
 * Parse the list.  While parsing, string pointers hold pool offsets
 * (cast), fixed up at the end: the pool moves as it grows.
 */
static int
avc_lx_build(void)
{
    size_t len = 0;
    const char *s = avc__embedded_file(AVC__FI_SYNONYMS, &len);
    const char *end = s ? s + len : NULL;
    const char *line, *eol, *colon, *name, *name_end, *v, *ve, *comma;
    avc_lx_concept_t *cs = NULL, *c;
    avc_lx_variant_t *vs = NULL, *var;
    size_t ncs = 0, capc = 0, nvs = 0, capv = 0, off, i, k;
    avc_lx_pool_t pool = { NULL, 0, 0 };
    avc__lx_t lx;
    char *num_end;
    double w;
    int rc = AVC_OK;

    avc__lx_init_struct(&lx);
    for (line = s; line < end && rc == AVC_OK; line = eol + 1) {
        eol = memchr(line, '\n', (size_t) (end - line));
        if (eol == NULL) {
            eol = end;
        }
        line = avc_lx_trim(line, eol, &ve);
        if (line == ve || *line == '#') {
            continue;
        }
        /* comments may change without changing the model's name */
        avc_lx.hash = avc_lx_fnv(avc_lx.hash, line, (size_t) (ve - line) + 1);
        colon = memchr(line, ':', (size_t) (ve - line));
        if (colon == NULL) {
            continue;
        }
        name = avc_lx_trim(line, colon, &name_end);
        w = 1.0;
        for (v = name; v < name_end && *v != ' '; v++) {
            /* the name ends at a space; a weight may follow */
        }
        if (v < name_end) {
            w = strtod(v, &num_end);
            if (num_end == v || w <= 0 || w > 1) {
                w = 1.0;
            }
            name_end = v;
        }
        if (ncs == capc) {
            capc = capc ? capc * 2 : 64;
            c = realloc(cs, capc * sizeof(*cs));
            if (c == NULL) {
                rc = AVC_ENOMEM;
                break;
            }
            cs = c;
        }
        c = &cs[ncs];
        rc = avc_lx_pool_add(&pool, name, (size_t) (name_end - name), &off);
        if (rc != AVC_OK) {
            break;
        }
        c->name = (const char *) (uintptr_t) off;
        c->weight = w;
        c->first = nvs;
        c->n = 0;

        for (v = colon + 1; v < ve && rc == AVC_OK; v = comma + 1) {
            const char *vb, *vend;
            char spell[256];
            size_t sl = 0;

            comma = memchr(v, ',', (size_t) (ve - v));
            if (comma == NULL) {
                comma = ve;
            }
            vb = avc_lx_trim(v, comma, &vend);
            lx.n = 0;
            lx.arena_len = 0;
            rc = avc_lx_analyze_plain(&lx, vb, (size_t) (vend - vb));
            if (rc != AVC_OK) {
                break;
            }
            if (lx.n == 0 || lx.n > AVC_LX_VARIANT_MAX) {
                continue;
            }
            if (nvs == capv) {
                capv = capv ? capv * 2 : 256;
                var = realloc(vs, capv * sizeof(*vs));
                if (var == NULL) {
                    rc = AVC_ENOMEM;
                    break;
                }
                vs = var;
            }
            var = &vs[nvs];
            memset(var, 0, sizeof(*var));
            var->concept = (int32_t) ncs;
            var->nstems = (unsigned) lx.n;
            for (k = 0; k < lx.n && rc == AVC_OK; k++) {
                rc = avc_lx_pool_add(&pool, avc__lx_sstr(&lx, k),
                                     lx.words[k].slen, &off);
                var->stems[k] = (const char *) (uintptr_t) off;
                if (sl + lx.words[k].wlen + 2 < sizeof(spell)) {
                    if (sl) {
                        spell[sl++] = ' ';
                    }
                    memcpy(spell + sl, avc__lx_wstr(&lx, k),
                           lx.words[k].wlen);
                    sl += lx.words[k].wlen;
                }
            }
            if (rc == AVC_OK) {
                rc = avc_lx_pool_add(&pool, spell, sl, &off);
                var->spelling = (const char *) (uintptr_t) off;
            }
            nvs++;
            c->n++;
        }
        ncs++;
    }
    avc__lx_free(&lx);

    if (rc == AVC_OK && nvs) {
        avc_lx.by_stem = malloc(nvs * sizeof(avc_lx_variant_t *));
        if (avc_lx.by_stem == NULL) {
            rc = AVC_ENOMEM;
        }
    }
    if (rc != AVC_OK) {
        free(cs);
        free(vs);
        free(pool.p);
        free(avc_lx.by_stem);
        avc_lx.by_stem = NULL;
        return rc;
    }
    for (i = 0; i < ncs; i++) {
        cs[i].name = pool.p + (uintptr_t) cs[i].name;
    }
    for (i = 0; i < nvs; i++) {
        for (k = 0; k < vs[i].nstems; k++) {
            vs[i].stems[k] = pool.p + (uintptr_t) vs[i].stems[k];
        }
        vs[i].spelling = pool.p + (uintptr_t) vs[i].spelling;
        avc_lx.by_stem[i] = &vs[i];
    }
    qsort(avc_lx.by_stem, nvs, sizeof(avc_lx_variant_t *),
          avc_lx_by_stem_cmp);
    avc_lx.concepts = cs;
    avc_lx.nconcepts = ncs;
    avc_lx.vars = vs;
    avc_lx.nvars = nvs;
    avc_lx.strings = pool.p;
    return AVC_OK;
}

static void
avc_lx_once(void)
{
    uint32_t h = 2166136261u;
    size_t i;

    qsort(avc_lx_stop, avc__countof(avc_lx_stop), sizeof(char *),
          avc_lx_strcmp);
    qsort(avc_lx_light, avc__countof(avc_lx_light), sizeof(char *),
          avc_lx_strcmp);
    qsort(avc_lx_numbers, avc__countof(avc_lx_numbers),
          sizeof(avc_lx_numbers[0]), avc_lx_strcmp);

    h = avc_lx_fnv(h, AVC_LX_VERSION, sizeof(AVC_LX_VERSION));
    for (i = 0; i < avc__countof(avc_lx_stop); i++) {
        h = avc_lx_fnv(h, avc_lx_stop[i], strlen(avc_lx_stop[i]) + 1);
    }
    for (i = 0; i < avc__countof(avc_lx_light); i++) {
        h = avc_lx_fnv(h, avc_lx_light[i], strlen(avc_lx_light[i]) + 1);
    }
    for (i = 0; i < avc__countof(avc_lx_numbers); i++) {
        h = avc_lx_fnv(h, avc_lx_numbers[i][0],
                       strlen(avc_lx_numbers[i][0]) + 1);
        h = avc_lx_fnv(h, avc_lx_numbers[i][1],
                       strlen(avc_lx_numbers[i][1]) + 1);
    }
    avc_lx.hash = h;
    avc_lx.rc = avc_lx_build();     /* adds the list's lines to the hash */
}

int
avc__lx_init(void)
{
    if (pthread_once(&avc_lx.once, avc_lx_once) != 0) {
        return AVC_ESYS;
    }
    return avc_lx.rc;
}

size_t
avc__lx_concepts(void)
{
    return avc__lx_init() == AVC_OK ? avc_lx.nconcepts : 0;
}

const char *
avc__lx_concept_name(int32_t c)
{
    if (c < 0 || (size_t) c >= avc__lx_concepts()) {
        return "";
    }
    return avc_lx.concepts[c].name;
}

double
avc__lx_concept_weight(int32_t c)
{
    if (c < 0 || (size_t) c >= avc__lx_concepts()) {
        return 0;
    }
    return avc_lx.concepts[c].weight;
}

size_t
avc__lx_concept_variants(int32_t c)
{
    if (c < 0 || (size_t) c >= avc__lx_concepts()) {
        return 0;
    }
    return avc_lx.concepts[c].n;
}

const char *
avc__lx_concept_variant(int32_t c, size_t i)
{
    if (i >= avc__lx_concept_variants(c)) {
        return "";
    }
    return avc_lx.vars[avc_lx.concepts[c].first + i].spelling;
}

uint32_t
avc__lx_tables_hash(void)
{
    avc__lx_init();
    return avc_lx.hash;
}
