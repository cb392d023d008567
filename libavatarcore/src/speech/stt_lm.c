/*
 * The offline recogniser's language: a pronunciation lexicon, a text
 * normaliser that turns written training material into the words people
 * say, and a trigram language model built from that text.
 *
 * The model is what makes an offline recogniser usable for one
 * dealership: a general English model spreads its probability over a
 * hundred thousand words, while a trainee asks about "the vehicle service
 * contract", "GAP" and "the APR".  The model is counted from the words
 * of the material and of a list of F&I phrases, smoothed by interpolated
 * absolute discounting (Ney, Essen and Kneser 1994: a fixed discount D
 * per order, D = n1 / (n1 + 2 n2) from the numbers of n-grams seen once
 * and twice, the mass taken given to the next lower order) and written in
 * the ARPA back-off form pocketsphinx reads:
 *
 *   p(w | u v) = max(c(uvw) - D3, 0) / c(uv.) + g(uv) p(w | v)
 *   g(uv)      = D3 N1+(uv.) / c(uv.)
 *   bow(uv)    = (1 - sum of p(w | u v) kept) / (1 - sum of p(w | v) kept)
 *
 * (the same one order down; unigrams by relative frequency), so that an
 * n-gram dropped by pruning gives its mass to the back-off instead of
 * losing it.  Only words the lexicon can pronounce are counted; an
 * unknown word cuts its sentence, so no n-gram spans it.
 */
#include "stt_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* bounds: the text read from one source, and n-grams kept per order */
#define AVC_LM_SOURCE_MAX    (8u * 1024 * 1024)
#define AVC_LM_NGRAMS_MAX    400000u
#define AVC_LM_LEX_MAX       (64u * 1024 * 1024)
#define AVC_LM_WORD_MAX      48
#define AVC_LM_PRONS_MAX     6
/* word ids are packed three to a 64-bit key */
#define AVC_LM_ID_BITS       21
#define AVC_LM_ID_MAX        ((1u << AVC_LM_ID_BITS) - 1)
#define AVC_LM_BOS           1u
#define AVC_LM_EOS           2u

/* ------------------------------------------------------------ lexicon */

typedef struct {
    uint32_t word;              /* offsets into lex->text */
    uint32_t phones;
    int32_t next;               /* the word's next pronunciation, or -1 */
} avc_lex_ent_t;

struct avc__lex_s {
    char *text;
    size_t len;
    avc_lex_ent_t *ents;
    size_t n;
    int32_t *slots;             /* first entry of a word, -1: empty */
    size_t mask;
};

static uint64_t
avc_lm_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char) s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static int32_t
avc_lex_find(const avc__lex_t *lex, const char *w, size_t n)
{
    size_t i = (size_t) avc_lm_hash(w, n) & lex->mask;
    const char *k;
    int32_t e;

    while ((e = lex->slots[i]) >= 0) {
        k = lex->text + lex->ents[e].word;
        if (strncmp(k, w, n) == 0 && k[n] == '\0') {
            return e;
        }
        i = (i + 1) & lex->mask;
    }
    return -1;
}

/* a phone list is upper-case letters and stress digits, single-spaced */
static int
avc_lex_phones_ok(const char *p)
{
    if (*p == '\0') {
        return 0;
    }
    for (; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || (*p == ' ' && p[1] != ' ' && p[1] != '\0')))
        {
            return 0;
        }
    }
    return 1;
}

/* cut lex->text into entries and index them */
static int
avc_lex_index(avc__lex_t *lex)
{
    char *p = lex->text, *end = lex->text + lex->len, *line, *eol, *w, *we;
    char *ph, *q, *r;
    size_t lines = 1, cap, i;
    int32_t e, prev;

    for (q = p; q < end; q++) {
        lines += *q == '\n';
    }
    lex->ents = malloc(lines * sizeof(*lex->ents));
    for (cap = 16; cap < lines * 2; cap *= 2) {
        /* nothing */
    }
    lex->slots = malloc(cap * sizeof(*lex->slots));
    if (lex->ents == NULL || lex->slots == NULL) {
        return AVC_ENOMEM;
    }
    memset(lex->slots, 0xff, cap * sizeof(*lex->slots));
    lex->mask = cap - 1;

    for (line = p; line < end; line = eol + 1) {
        eol = memchr(line, '\n', (size_t) (end - line));
        if (eol == NULL) {
            eol = end;
        }
        *eol = '\0';
        w = line;
        while (*w == ' ' || *w == '\t' || *w == '\r') {
            w++;
        }
        if (*w == '\0' || *w == '#' || strncmp(w, ";;;", 3) == 0) {
            continue;
        }
        for (we = w; *we && *we != ' ' && *we != '\t'; we++) {
            *we = (char) tolower((unsigned char) *we);
        }
        if (*we == '\0') {
            continue;
        }
        *we = '\0';
        /* "word(2)": an alternative pronunciation of "word" */
        q = strchr(w, '(');
        if (q && q > w && we[-1] == ')') {
            *q = '\0';
        }
        /* the phones, white space squeezed to single spaces */
        ph = we + 1;
        for (q = r = ph; *q; q++) {
            if (*q == ' ' || *q == '\t' || *q == '\r') {
                if (r > ph && r[-1] != ' ') {
                    *r++ = ' ';
                }
            } else {
                *r++ = *q;
            }
        }
        if (r > ph && r[-1] == ' ') {
            r--;
        }
        *r = '\0';
        if (strlen(w) > AVC_LM_WORD_MAX || !avc_lex_phones_ok(ph)) {
            continue;
        }
        e = (int32_t) lex->n;
        lex->ents[e].word = (uint32_t) (w - lex->text);
        lex->ents[e].phones = (uint32_t) (ph - lex->text);
        lex->ents[e].next = -1;
        prev = avc_lex_find(lex, w, strlen(w));
        if (prev >= 0) {
            while (lex->ents[prev].next >= 0) {
                prev = lex->ents[prev].next;
            }
            lex->ents[prev].next = e;
        } else {
            i = (size_t) avc_lm_hash(w, strlen(w)) & lex->mask;
            while (lex->slots[i] >= 0) {
                i = (i + 1) & lex->mask;
            }
            lex->slots[i] = e;
        }
        lex->n++;
    }
    return lex->n > 0 ? AVC_OK : AVC_EPARSE;
}

avc__lex_t *
avc__lex_parse(const char *text, size_t len, int *err)
{
    avc__lex_t *lex;
    int rc;

    if (len >= AVC_LM_LEX_MAX) {
        *err = AVC_ETOOBIG;
        return NULL;
    }
    lex = calloc(1, sizeof(*lex));
    if (lex == NULL || (lex->text = malloc(len + 1)) == NULL) {
        free(lex);
        *err = AVC_ENOMEM;
        return NULL;
    }
    memcpy(lex->text, text, len);
    lex->text[len] = '\0';
    lex->len = len;
    rc = avc_lex_index(lex);
    if (rc != AVC_OK) {
        avc__lex_free(lex);
        *err = rc;
        return NULL;
    }
    *err = AVC_OK;
    return lex;
}

avc__lex_t *
avc__lex_load(const char *path, int *err)
{
    avc__buf_t b;
    avc__lex_t *lex;
    struct stat st;
    char chunk[65536];
    size_t n;
    FILE *f;

    f = fopen(path, "re");
    if (f == NULL) {
        *err = AVC_ESYS;
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || st.st_size >= AVC_LM_LEX_MAX) {
        fclose(f);
        *err = st.st_size >= AVC_LM_LEX_MAX ? AVC_ETOOBIG : AVC_ESYS;
        return NULL;
    }
    avc__buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (avc__buf_append(&b, chunk, n) != AVC_OK) {
            fclose(f);
            avc__buf_free(&b);
            *err = AVC_ENOMEM;
            return NULL;
        }
    }
    if (ferror(f)) {
        fclose(f);
        avc__buf_free(&b);
        *err = AVC_ESYS;
        return NULL;
    }
    fclose(f);
    /* parse in place: the buffer becomes the lexicon's text */
    lex = calloc(1, sizeof(*lex));
    if (lex == NULL) {
        avc__buf_free(&b);
        *err = AVC_ENOMEM;
        return NULL;
    }
    lex->len = b.len;
    lex->text = avc__buf_steal(&b, NULL);
    if (lex->text == NULL) {
        free(lex);
        *err = AVC_EPARSE;
        return NULL;
    }
    *err = avc_lex_index(lex);
    if (*err != AVC_OK) {
        avc__lex_free(lex);
        return NULL;
    }
    return lex;
}

void
avc__lex_free(avc__lex_t *lex)
{
    if (lex == NULL) {
        return;
    }
    free(lex->text);
    free(lex->ents);
    free(lex->slots);
    free(lex);
}

size_t
avc__lex_size(const avc__lex_t *lex)
{
    return lex ? lex->n : 0;
}

/*
 * Terms of the trade that general dictionaries lack, said as words.
 * (Acronyms said letter by letter need no entry: see avc_lm_spelled.)
 */
static const struct {
    const char *word;
    const char *phones;
} avc_lm_terms[] = {
    { "esign", "IY S AY N" },
    { "fintech", "F IH N T EH K" },
    { "ofac", "OW F AE K" },
    { "tila", "T IY L AH" },
    { "titling", "T AY T L IH NG" },
    { "upsell", "AH P S EH L" },
    { "upselling", "AH P S EH L IH NG" },
    { "upsold", "AH P S OW L D" },
};

static int
avc_lm_term(const char *w, size_t n)
{
    size_t i;

    for (i = 0; i < avc__countof(avc_lm_terms); i++) {
        if (strncmp(avc_lm_terms[i].word, w, n) == 0
            && avc_lm_terms[i].word[n] == '\0')
        {
            return (int) i;
        }
    }
    return -1;
}

/* the pronunciations of w[0..n) exactly as listed (no guessing) */
static size_t
avc_lex_exact(const avc__lex_t *lex, const char *w, size_t n,
    const char *suffix, avc__buf_t *out)
{
    int32_t e = avc_lex_find(lex, w, n);
    size_t k = 0;
    int t;

    for (; e >= 0 && k < AVC_LM_PRONS_MAX; e = lex->ents[e].next, k++) {
        if (out) {
            (void) avc__buf_appends(out, lex->text + lex->ents[e].phones);
            if (suffix) {
                (void) avc__buf_appends(out, suffix);
            }
            (void) avc__buf_append(out, "\n", 1);
        }
    }
    if (k == 0 && (t = avc_lm_term(w, n)) >= 0) {
        if (out) {
            (void) avc__buf_appends(out, avc_lm_terms[t].phones);
            if (suffix) {
                (void) avc__buf_appends(out, suffix);
            }
            (void) avc__buf_append(out, "\n", 1);
        }
        k = 1;
    }
    return k;
}

/* the -s of a plural or possessive after a pronunciation: /Iz/ after a
 * sibilant, /s/ after another voiceless consonant, else /z/ */
static const char *
avc_lm_s_suffix(const char *phones)
{
    const char *last = strrchr(phones, ' ');
    char ph[4];
    size_t i = 0;

    last = last ? last + 1 : phones;
    while (*last && *last >= 'A' && *last <= 'Z' && i < 3) {
        ph[i++] = *last++;
    }
    ph[i] = '\0';
    if (strcmp(ph, "S") == 0 || strcmp(ph, "Z") == 0
        || strcmp(ph, "SH") == 0 || strcmp(ph, "ZH") == 0
        || strcmp(ph, "CH") == 0 || strcmp(ph, "JH") == 0)
    {
        return " IH Z";
    }
    if (strcmp(ph, "P") == 0 || strcmp(ph, "T") == 0
        || strcmp(ph, "K") == 0 || strcmp(ph, "F") == 0
        || strcmp(ph, "TH") == 0)
    {
        return " S";
    }
    return " Z";
}

/* base + s: each pronunciation of the base (resolved as a word of its
 * own) with the suffix */
static size_t
avc_lex_with_s(const avc__lex_t *lex, const char *w, size_t n,
    avc__buf_t *out)
{
    char base[AVC_LM_WORD_MAX + 1];
    avc__buf_t tmp;
    size_t k, i;
    char *line, *nl;

    memcpy(base, w, n);
    base[n] = '\0';
    avc__buf_init(&tmp);
    k = avc__lex_resolve(lex, base, &tmp);
    if (k > 0 && out) {
        line = tmp.data;
        for (i = 0; i < k && line && (nl = strchr(line, '\n')); i++) {
            *nl = '\0';
            (void) avc__buf_appends(out, line);
            (void) avc__buf_appends(out, avc_lm_s_suffix(line));
            (void) avc__buf_append(out, "\n", 1);
            line = nl + 1;
        }
    }
    avc__buf_free(&tmp);
    return k;
}

/* two known words run together: the split at i */
static size_t
avc_lex_compound(const avc__lex_t *lex, const char *w, size_t n, size_t i,
    avc__buf_t *out)
{
    avc__buf_t a, b;
    char *pa, *pb;

    if (avc_lex_find(lex, w, i) < 0 || avc_lex_find(lex, w + i, n - i) < 0) {
        return 0;
    }
    if (out) {
        avc__buf_init(&a);
        avc__buf_init(&b);
        avc_lex_exact(lex, w, i, NULL, &a);
        avc_lex_exact(lex, w + i, n - i, NULL, &b);
        pa = a.data ? strchr(a.data, '\n') : NULL;
        pb = b.data ? strchr(b.data, '\n') : NULL;
        if (pa && pb) {
            *pa = *pb = '\0';
            (void) avc__buf_printf(out, "%s %s\n", a.data, b.data);
        }
        avc__buf_free(&a);
        avc__buf_free(&b);
    }
    return 1;
}

size_t
avc__lex_resolve(const avc__lex_t *lex, const char *word, avc__buf_t *out)
{
    size_t n = strlen(word), i, k;

    if (n == 0 || n > AVC_LM_WORD_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!((word[i] >= 'a' && word[i] <= 'z') || word[i] == '\'')) {
            return 0;
        }
    }
    k = avc_lex_exact(lex, word, n, NULL, out);
    if (k > 0) {
        return k;
    }
    /* "keyline's" */
    if (n > 3 && word[n - 2] == '\'' && word[n - 1] == 's') {
        return avc_lex_with_s(lex, word, n - 2, out);
    }
    /* "lenders'": as "lenders" */
    if (n > 3 && word[n - 1] == '\'' && word[n - 2] == 's') {
        char base[AVC_LM_WORD_MAX + 1];

        memcpy(base, word, n - 1);
        base[n - 1] = '\0';
        return avc__lex_resolve(lex, base, out);
    }
    if (strchr(word, '\'') != NULL) {
        return 0;
    }
    /* "roadguards" */
    if (n > 3 && word[n - 1] == 's' && word[n - 2] != 's'
        && (k = avc_lex_with_s(lex, word, n - 1, out)) > 0)
    {
        return k;
    }
    /* "roadguard", "lienholder": two known words of 3+ letters, the
     * longest first part first, one that ends in "s" last ("ride share"
     * before "rides hare") */
    if (n < 6) {
        return 0;
    }
    for (i = n - 3; i >= 3; i--) {
        if (word[i - 1] != 's' && avc_lex_compound(lex, word, n, i, out)) {
            return 1;
        }
    }
    for (i = n - 3; i >= 3; i--) {
        if (word[i - 1] == 's' && avc_lex_compound(lex, word, n, i, out)) {
            return 1;
        }
    }
    return 0;
}

/* --------------------------------------------------------- normaliser */

typedef struct {
    const avc__lex_t *lex;
    avc__lm_sentence_cb cb;
    void *data;
    avc__buf_t words;           /* the sentence so far, NUL-separated */
    size_t nwords;
    char **vec;
    size_t vcap;
    int rc;
    const char *pending;        /* "dollars" after a scale word */
} avc_lm_norm_t;

static void avc_lm_push(avc_lm_norm_t *nz, const char *w);

static void
avc_lm_flush(avc_lm_norm_t *nz)
{
    const char *pending = nz->pending;
    char **v, *p;
    size_t i;

    if (pending) {
        /* the money had no scale word after it */
        nz->pending = NULL;
        avc_lm_push(nz, pending);
    }
    if (nz->rc != AVC_OK || nz->nwords == 0) {
        avc__buf_reset(&nz->words);
        nz->nwords = 0;
        return;
    }
    if (nz->nwords > nz->vcap) {
        v = realloc(nz->vec, nz->nwords * 2 * sizeof(*v));
        if (v == NULL) {
            nz->rc = AVC_ENOMEM;
            return;
        }
        nz->vec = v;
        nz->vcap = nz->nwords * 2;
    }
    p = nz->words.data;
    for (i = 0; i < nz->nwords; i++) {
        nz->vec[i] = p;
        p += strlen(p) + 1;
    }
    nz->rc = nz->cb(nz->vec, nz->nwords, nz->data);
    avc__buf_reset(&nz->words);
    nz->nwords = 0;
}

/* one spoken word (lower-case) into the sentence; an unknown one cuts
 * the sentence there */
static void
avc_lm_push(avc_lm_norm_t *nz, const char *w)
{
    if (nz->rc != AVC_OK || *w == '\0') {
        return;
    }
    if (nz->lex && avc__lex_resolve(nz->lex, w, NULL) == 0) {
        avc_lm_flush(nz);
        return;
    }
    if (avc__buf_append(&nz->words, w, strlen(w) + 1) != AVC_OK) {
        nz->rc = AVC_ENOMEM;
        return;
    }
    nz->nwords++;
}

static int
avc_lm_is_scale(const char *w)
{
    return strcmp(w, "thousand") == 0 || strcmp(w, "million") == 0
           || strcmp(w, "billion") == 0 || strcmp(w, "trillion") == 0;
}

/* the next word; "dollars" of "$1.5 million" goes after the scale */
static void
avc_lm_word(avc_lm_norm_t *nz, const char *w)
{
    const char *pending = nz->pending;

    if (pending) {
        nz->pending = NULL;
        if (avc_lm_is_scale(w)) {
            avc_lm_push(nz, w);
            avc_lm_push(nz, pending);
            return;
        }
        avc_lm_push(nz, pending);
    }
    avc_lm_push(nz, w);
}

/* several words separated by spaces */
static void
avc_lm_words(avc_lm_norm_t *nz, const char *s)
{
    char w[AVC_LM_WORD_MAX + 1];
    size_t n;

    while (*s) {
        while (*s == ' ') {
            s++;
        }
        n = strcspn(s, " ");
        if (n > 0 && n <= AVC_LM_WORD_MAX) {
            memcpy(w, s, n);
            w[n] = '\0';
            avc_lm_word(nz, w);
        }
        s += n;
    }
}

static const char *const avc_lm_ones[] = {
    "zero", "one", "two", "three", "four", "five", "six", "seven",
    "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen",
    "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"
};

static const char *const avc_lm_tens[] = {
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
    "eighty", "ninety"
};

/* 1-999 in words, appended with a leading space */
static void
avc_lm_num999(avc__buf_t *b, unsigned n)
{
    if (n >= 100) {
        (void) avc__buf_printf(b, " %s hundred", avc_lm_ones[n / 100]);
        n %= 100;
    }
    if (n >= 20) {
        (void) avc__buf_printf(b, " %s", avc_lm_tens[n / 10]);
        n %= 10;
        if (n) {
            (void) avc__buf_printf(b, " %s", avc_lm_ones[n]);
        }
    } else if (n > 0) {
        (void) avc__buf_printf(b, " %s", avc_lm_ones[n]);
    }
}

/* a cardinal (US style, no "and") */
static void
avc_lm_cardinal(avc__buf_t *b, unsigned long long n)
{
    static const char *const scales[] = {
        "", " thousand", " million", " billion", " trillion"
    };
    unsigned groups[5];
    int i, k = 0;

    if (n == 0) {
        (void) avc__buf_appends(b, " zero");
        return;
    }
    while (n > 0 && k < 5) {
        groups[k++] = (unsigned) (n % 1000);
        n /= 1000;
    }
    for (i = k - 1; i >= 0; i--) {
        if (groups[i]) {
            avc_lm_num999(b, groups[i]);
            (void) avc__buf_appends(b, scales[i]);
        }
    }
}

/* a year as said: 1984 nineteen eighty four, 1900 nineteen hundred,
 * 2024 twenty twenty four, 1205 twelve oh five */
static void
avc_lm_year(avc__buf_t *b, unsigned y)
{
    unsigned hi = y / 100, lo = y % 100;

    avc_lm_num999(b, hi);
    if (lo == 0) {
        (void) avc__buf_appends(b, " hundred");
    } else if (lo < 10) {
        (void) avc__buf_printf(b, " oh %s", avc_lm_ones[lo]);
    } else {
        avc_lm_num999(b, lo);
    }
}

/* the last word of b made ordinal (first, twelfth, twentieth, ...) or
 * plural (nineties, sixes, hundreds) */
static void
avc_lm_inflect(avc__buf_t *b, int ordinal)
{
    static const struct {
        const char *card;
        const char *ord;
    } irregular[] = {
        { "one", "first" }, { "two", "second" }, { "three", "third" },
        { "five", "fifth" }, { "eight", "eighth" }, { "nine", "ninth" },
        { "twelve", "twelfth" },
    };
    char *last, w[32];
    size_t i, n;

    if (b->len == 0) {
        return;
    }
    last = strrchr(b->data, ' ');
    last = last ? last + 1 : b->data;
    n = strlen(last);
    if (n == 0 || n >= sizeof(w) - 8) {
        return;
    }
    memcpy(w, last, n + 1);
    b->len = (size_t) (last - b->data);
    b->data[b->len] = '\0';
    if (ordinal) {
        for (i = 0; i < avc__countof(irregular); i++) {
            if (strcmp(w, irregular[i].card) == 0) {
                (void) avc__buf_appends(b, irregular[i].ord);
                return;
            }
        }
        if (w[n - 1] == 'y') {
            (void) avc__buf_append(b, w, n - 1);
            (void) avc__buf_appends(b, "ieth");
        } else {
            (void) avc__buf_printf(b, "%sth", w);
        }
        return;
    }
    if (w[n - 1] == 'y') {
        (void) avc__buf_append(b, w, n - 1);
        (void) avc__buf_appends(b, "ies");
    } else if (w[n - 1] == 'x') {
        (void) avc__buf_printf(b, "%ses", w);
    } else {
        (void) avc__buf_printf(b, "%ss", w);
    }
}

static int
avc_lm_isdigit(int c)
{
    return c >= '0' && c <= '9';
}

static int
avc_lm_isalpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* the length of a UTF-8 "right single quotation mark" (U+2019) at p */
static size_t
avc_lm_rsquo(const char *p, const char *end)
{
    return end - p >= 3 && (unsigned char) p[0] == 0xe2
           && (unsigned char) p[1] == 0x80 && (unsigned char) p[2] == 0x99
           ? 3 : 0;
}

/* a dash between numbers: "-", en dash (U+2013), em dash (U+2014) */
static size_t
avc_lm_dash(const char *p, const char *end)
{
    if (p < end && *p == '-') {
        return 1;
    }
    return end - p >= 3 && (unsigned char) p[0] == 0xe2
           && (unsigned char) p[1] == 0x80
           && ((unsigned char) p[2] == 0x93 || (unsigned char) p[2] == 0x94)
           ? 3 : 0;
}

/*
 * A number at p (digits, "," groups of three, one "." and decimals),
 * with what is around it: "$" before, "%", "st/nd/rd/th", "s" or "k"
 * after.  Returns the bytes consumed.
 */
static size_t
avc_lm_number(avc_lm_norm_t *nz, const char *p, const char *end, int money)
{
    char ip[32], fp[16];
    const char *s = p;
    size_t ni = 0, nf = 0, i;
    unsigned long long v = 0;
    int commas = 0, ordinal = 0, plural = 0, percent = 0, kilo = 0;
    int year;
    avc__buf_t b;

    while (p < end) {
        if (avc_lm_isdigit(*p)) {
            if (ni < sizeof(ip) - 1) {
                ip[ni++] = *p;
            }
            p++;
        } else if (*p == ',' && ni >= 1 + 3 * (size_t) commas
                   && ni <= 3 + 3 * (size_t) commas
                   && end - p >= 4 && avc_lm_isdigit(p[1])
                   && avc_lm_isdigit(p[2]) && avc_lm_isdigit(p[3])
                   && (end - p == 4 || !avc_lm_isdigit(p[4])))
        {
            commas++;
            p++;
        } else {
            break;
        }
    }
    ip[ni] = '\0';
    if (p < end - 1 && *p == '.' && avc_lm_isdigit(p[1])) {
        p++;
        while (p < end && avc_lm_isdigit(*p)) {
            if (nf < sizeof(fp) - 1) {
                fp[nf++] = *p;
            }
            p++;
        }
    }
    fp[nf] = '\0';
    if (end - p >= 2 && !(end - p > 2 && avc_lm_isalpha(p[2]))
        && (strncasecmp(p, "st", 2) == 0 || strncasecmp(p, "nd", 2) == 0
            || strncasecmp(p, "rd", 2) == 0 || strncasecmp(p, "th", 2) == 0)
        && nf == 0)
    {
        ordinal = 1;
        p += 2;
    } else if (p < end && *p == 's' && !(end - p > 1 && avc_lm_isalpha(p[1]))
               && nf == 0)
    {
        plural = 1;
        p++;
    } else if (p < end && (*p == 'k' || *p == 'K')
               && !(end - p > 1 && avc_lm_isalpha(p[1])))
    {
        kilo = 1;
        p++;
    } else if (p < end && *p == '%') {
        percent = 1;
        p++;
    }

    avc__buf_init(&b);
    year = ni == 4 && commas == 0 && nf == 0 && !money && !percent
           && !ordinal && !kilo;
    for (i = 0; i < ni; i++) {
        v = v * 10 + (unsigned long long) (ip[i] - '0');
    }
    if (ni > 15 || (ni > 1 && ip[0] == '0') || (ni > 6 && commas == 0)) {
        /* a code, an account or a phone number: digit by digit */
        for (i = 0; i < ni; i++) {
            (void) avc__buf_printf(&b, " %s", avc_lm_ones[ip[i] - '0']);
        }
    } else if (year && ((v >= 1100 && v <= 1999) || (v >= 2010
                                                     && v <= 2099)))
    {
        avc_lm_year(&b, (unsigned) v);
    } else {
        avc_lm_cardinal(&b, v);
    }
    if (money && nf == 2) {
        /* "$19.99": dollars and cents */
        if (kilo) {
            (void) avc__buf_appends(&b, " thousand");
        }
        (void) avc__buf_appends(&b, v == 1 && !kilo ? " dollar"
                                                    : " dollars");
        if (strcmp(fp, "00") != 0) {
            (void) avc__buf_appends(&b, " and");
            avc_lm_cardinal(&b, (unsigned long long) atoi(fp));
            (void) avc__buf_appends(&b, strcmp(fp, "01") == 0 ? " cent"
                                                              : " cents");
        }
        money = 0;
    } else {
        if (nf > 0) {
            (void) avc__buf_appends(&b, " point");
            for (i = 0; i < nf; i++) {
                (void) avc__buf_printf(&b, " %s", avc_lm_ones[fp[i] - '0']);
            }
        }
        if (ordinal || plural) {
            avc_lm_inflect(&b, ordinal);
        }
        if (kilo) {
            (void) avc__buf_appends(&b, " thousand");
        }
    }
    if (percent) {
        (void) avc__buf_appends(&b, " percent");
    }
    if (b.len == 0) {
        nz->rc = AVC_ENOMEM;    /* a number always has a word */
    }
    avc_lm_words(nz, b.data ? b.data : "");
    avc__buf_free(&b);
    if (money) {
        /* after "million" if one follows, else before the next word */
        nz->pending = v == 1 && nf == 0 && !kilo ? "dollar" : "dollars";
    }
    return (size_t) (p - s);
}

/* acronyms said letter by letter, even where a word of the same letters
 * exists ("CIT" is not "sit") */
static const char *const avc_lm_spelled[] = {
    "ach", "acv", "apr", "atv", "cfpb", "cit", "cpo", "dmv", "dti", "ecoa",
    "fcra", "ftc", "gps", "id", "irs", "llc", "ltv", "msrp", "pdf", "pti",
    "rv", "ssn", "suv", "usa", "vsc",
};

/* abbreviations written with a final period */
static const struct {
    const char *abbr;           /* lower-case, without the period */
    const char *says;
} avc_lm_abbrevs[] = {
    { "approx", "approximately" }, { "dept", "department" },
    { "dr", "doctor" }, { "e.g", "for example" }, { "etc", "et cetera" },
    { "i.e", "that is" }, { "jr", "junior" }, { "mr", "mister" },
    { "mrs", "missus" }, { "ms", "miz" }, { "sr", "senior" },
    { "vs", "versus" },
};

static int
avc_lm_in(const char *const *list, size_t n, const char *w)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(list[i], w) == 0) {
            return 1;
        }
    }
    return 0;
}

/* letters one by one: "a p r" */
static void
avc_lm_spell(avc_lm_norm_t *nz, const char *w)
{
    char l[2] = { 0, 0 };

    for (; *w; w++) {
        if (avc_lm_isalpha(*w)) {
            l[0] = (char) tolower((unsigned char) *w);
            avc_lm_word(nz, l);
        }
    }
}

static int
avc_lm_known(const avc_lm_norm_t *nz, const char *lower)
{
    return nz->lex == NULL || avc__lex_resolve(nz->lex, lower, NULL) > 0;
}

/* one written word without '&' or digits: w as in the text, n bytes */
static void
avc_lm_written(avc_lm_norm_t *nz, const char *w, size_t n)
{
    char lower[AVC_LM_WORD_MAX + 1];
    size_t i, upper = 0, letters = 0, start;

    if (n == 0) {
        return;
    }
    if (n > AVC_LM_WORD_MAX) {
        avc_lm_flush(nz);
        return;
    }
    for (i = 0; i < n; i++) {
        lower[i] = (char) tolower((unsigned char) w[i]);
        if (avc_lm_isalpha(w[i])) {
            letters++;
            upper += w[i] >= 'A' && w[i] <= 'Z';
        }
    }
    lower[n] = '\0';
    if (memchr(w, '.', n) != NULL) {
        /* "U.S", "e.g": an expansion, else the letters */
        for (i = 0; i < avc__countof(avc_lm_abbrevs); i++) {
            if (strcmp(lower, avc_lm_abbrevs[i].abbr) == 0) {
                avc_lm_words(nz, avc_lm_abbrevs[i].says);
                return;
            }
        }
        avc_lm_spell(nz, lower);
        return;
    }
    if (n >= 3 && w[n - 1] == 's' && upper == letters - 1 && letters >= 3)
    {
        /* "VSCs", "APRs": the letters */
        lower[n - 1] = '\0';
        if (avc_lm_in(avc_lm_spelled, avc__countof(avc_lm_spelled), lower)
            || (nz->lex && avc__lex_resolve(nz->lex, lower, NULL) == 0))
        {
            avc_lm_spell(nz, lower);
            return;
        }
        lower[n - 1] = 's';
    }
    if (upper == letters && letters >= 2) {
        /* an acronym: listed ones and unknown short ones are spelled */
        if (avc_lm_in(avc_lm_spelled, avc__countof(avc_lm_spelled), lower)
            || (letters <= 5 && !avc_lm_known(nz, lower)))
        {
            avc_lm_spell(nz, lower);
            return;
        }
        avc_lm_word(nz, lower);
        return;
    }
    if (avc_lm_known(nz, lower) || upper < 2) {
        avc_lm_word(nz, lower);
        return;
    }
    /* "TrueLane", "eContract": its capitalised parts */
    start = 0;
    for (i = 1; i <= n; i++) {
        if (i == n || (w[i] >= 'A' && w[i] <= 'Z' && w[i - 1] >= 'a'
                       && w[i - 1] <= 'z'))
        {
            lower[i < n ? i : n] = '\0';
            avc_lm_word(nz, lower + start);
            if (i < n) {
                lower[i] = (char) tolower((unsigned char) w[i]);
            }
            start = i;
        }
    }
}

/* a word at p: letters, inner apostrophes, inner '&' ("F&I"), dotted
 * letters ("U.S."); returns the bytes consumed */
static size_t
avc_lm_scan_word(avc_lm_norm_t *nz, const char *p, const char *end)
{
    char w[AVC_LM_WORD_MAX * 2 + 1];
    const char *s = p;
    size_t n = 0, q, i, start;
    int nonascii = 0, dotted = 0, amp = 0;

    while (p < end) {
        if (avc_lm_isalpha(*p)) {
            if (n < sizeof(w) - 1) {
                w[n++] = *p;
            }
            p++;
        } else if ((*p == '\'' || avc_lm_rsquo(p, end))
                   && n > 0 && w[n - 1] != '\''
                   && p + (*p == '\'' ? 1 : 3) < end
                   && avc_lm_isalpha(p[*p == '\'' ? 1 : 3]))
        {
            if (n < sizeof(w) - 1) {
                w[n++] = '\'';
            }
            p += *p == '\'' ? 1 : 3;
        } else if (*p == '\'' && n > 1 && w[n - 1] == 's') {
            /* "dealers'" */
            if (n < sizeof(w) - 1) {
                w[n++] = '\'';
            }
            p++;
        } else if (*p == '&' && n > 0 && p + 1 < end
                   && avc_lm_isalpha(p[1]))
        {
            amp = 1;
            if (n < sizeof(w) - 1) {
                w[n++] = '&';
            }
            p++;
        } else if (*p == '.' && n > 0 && p + 1 < end && avc_lm_isalpha(p[1])
                   && (p + 2 >= end || p[2] == '.')
                   && (n == 1 || w[n - 2] == '.'))
        {
            dotted = 1;
            if (n < sizeof(w) - 1) {
                w[n++] = '.';
            }
            p++;
        } else if ((unsigned char) *p >= 0x80 && (unsigned char) *p != 0xc2
                   && (unsigned char) *p != 0xe2)
        {
            /* a letter outside ASCII ("café"): no pronunciation */
            nonascii = 1;
            p++;
        } else {
            break;
        }
    }
    w[n] = '\0';
    if (nonascii) {
        avc_lm_flush(nz);
        return (size_t) (p - s);
    }
    /* a final period of an abbreviation is part of it, not the end of a
     * sentence */
    if (p < end && *p == '.') {
        char lower[AVC_LM_WORD_MAX * 2 + 1];

        for (i = 0; i <= n; i++) {
            lower[i] = (char) tolower((unsigned char) w[i]);
        }
        for (i = 0; i < avc__countof(avc_lm_abbrevs); i++) {
            if (strcmp(lower, avc_lm_abbrevs[i].abbr) == 0) {
                avc_lm_words(nz, avc_lm_abbrevs[i].says);
                return (size_t) (p + 1 - s);
            }
        }
        if (dotted) {
            p++;
        }
        if (strcmp(lower, "no") == 0 && p + 2 < end && p[1] == ' '
            && avc_lm_isdigit(p[2]))
        {
            avc_lm_word(nz, "number");
            return (size_t) (p + 1 - s);
        }
    }
    if (amp) {
        /* "F&I": f and i */
        start = 0;
        for (i = 0; i <= n; i++) {
            if (i == n || w[i] == '&') {
                q = i - start;
                if (q > 0) {
                    w[i] = '\0';
                    if (q <= 3) {
                        avc_lm_spell(nz, w + start);
                    } else {
                        avc_lm_written(nz, w + start, q);
                    }
                }
                if (i < n) {
                    avc_lm_word(nz, "and");
                }
                start = i + 1;
            }
        }
        return (size_t) (p - s);
    }
    avc_lm_written(nz, w, n);
    return (size_t) (p - s);
}

int
avc__lm_normalise(const char *text, size_t len, const avc__lex_t *lex,
    int comments, avc__lm_sentence_cb cb, void *data)
{
    const char *p = text, *end = text + len;
    avc_lm_norm_t nz;
    int bol = 1, money = 0;
    unsigned char c;
    size_t k;

    memset(&nz, 0, sizeof(nz));
    nz.lex = lex;
    nz.cb = cb;
    nz.data = data;
    avc__buf_init(&nz.words);

    while (p < end && nz.rc == AVC_OK) {
        c = (unsigned char) *p;
        if (bol && comments) {
            while (p < end && (*p == ' ' || *p == '\t')) {
                p++;
            }
            if (p < end && *p == '#') {
                while (p < end && *p != '\n') {
                    p++;
                }
                continue;
            }
            bol = 0;
            continue;
        }
        if (c == '\n') {
            avc_lm_flush(&nz);
            bol = 1;
            money = 0;
            p++;
            continue;
        }
        if (avc_lm_isdigit(c)
            || (c == '.' && p + 1 < end && avc_lm_isdigit(p[1])
                && (p == text || !avc_lm_isdigit(p[-1]))))
        {
            if (c == '.') {
                avc_lm_word(&nz, "point");
                p++;
                continue;
            }
            p += avc_lm_number(&nz, p, end, money);
            money = 0;
            /* a range "73-84", a time "9:30", "3/36,000": the words
             * between */
            if ((k = avc_lm_dash(p, end)) > 0 && p + k < end
                && (avc_lm_isdigit(p[k]) || p[k] == '$'))
            {
                avc_lm_word(&nz, "to");
                p += k;
            } else if (p + 1 < end && (*p == ':' || *p == '/')
                       && avc_lm_isdigit(p[1]))
            {
                if (*p == ':' && p + 2 < end && p[1] == '0' && p[2] == '0')
                {
                    p += 3;
                } else {
                    p++;
                }
            }
            continue;
        }
        if (avc_lm_isalpha(c) || (c >= 0xc3 && c < 0xf8 && c != 0xe2)) {
            p += avc_lm_scan_word(&nz, p, end);
            money = 0;
            continue;
        }
        money = 0;
        switch (c) {
        case '$':
            money = p + 1 < end && avc_lm_isdigit(p[1]);
            if (!money) {
                avc_lm_word(&nz, "dollars");
            }
            break;
        case '%':
            avc_lm_word(&nz, "percent");
            break;
        case '&':
            avc_lm_word(&nz, "and");
            break;
        case '+':
            avc_lm_word(&nz, "plus");
            break;
        case '@':
            avc_lm_word(&nz, "at");
            break;
        case '=':
            avc_lm_word(&nz, "equals");
            break;
        case '#':
            if (p + 1 < end && avc_lm_isdigit(p[1])) {
                avc_lm_word(&nz, "number");
            }
            break;
        case '.':
        case '!':
        case '?':
        case ';':
        case ':':
            avc_lm_flush(&nz);
            break;
        case 0xc2:
            /* Latin-1 signs and spaces (no-break space, quotes, degrees) */
            p += end - p >= 2 ? 2 : 1;
            continue;
        case 0xe2:
            /* an ellipsis ends a sentence; dashes and quotes do not */
            if (end - p >= 3 && (unsigned char) p[1] == 0x80
                && (unsigned char) p[2] == 0xa6)
            {
                avc_lm_flush(&nz);
            }
            p += end - p >= 3 ? 3 : 1;
            continue;
        default:
            break;
        }
        p++;
    }
    if (nz.rc == AVC_OK) {
        avc_lm_flush(&nz);
    }
    avc__buf_free(&nz.words);
    free(nz.vec);
    return nz.rc;
}

/* ------------------------------------------------------------ counting */

/* an open-addressing table of n-gram keys (never 0) and counts */
typedef struct {
    uint64_t *keys;
    uint32_t *counts;
    size_t cap;                 /* power of two */
    size_t n;
} avc_lm_tab_t;

static int
avc_lm_tab_init(avc_lm_tab_t *t, size_t cap)
{
    t->keys = calloc(cap, sizeof(*t->keys));
    t->counts = calloc(cap, sizeof(*t->counts));
    t->cap = cap;
    t->n = 0;
    return t->keys && t->counts ? AVC_OK : AVC_ENOMEM;
}

static void
avc_lm_tab_free(avc_lm_tab_t *t)
{
    free(t->keys);
    free(t->counts);
    memset(t, 0, sizeof(*t));
}

static size_t
avc_lm_slot(const avc_lm_tab_t *t, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ULL;
    size_t i = (size_t) (h >> 17) & (t->cap - 1);

    while (t->keys[i] != 0 && t->keys[i] != key) {
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

static int
avc_lm_tab_add(avc_lm_tab_t *t, uint64_t key, uint32_t c)
{
    avc_lm_tab_t g;
    size_t i, j;

    if ((t->n + 1) * 2 > t->cap) {
        if (avc_lm_tab_init(&g, t->cap * 2) != AVC_OK) {
            avc_lm_tab_free(&g);
            return AVC_ENOMEM;
        }
        for (i = 0; i < t->cap; i++) {
            if (t->keys[i]) {
                j = avc_lm_slot(&g, t->keys[i]);
                g.keys[j] = t->keys[i];
                g.counts[j] = t->counts[i];
            }
        }
        g.n = t->n;
        avc_lm_tab_free(t);
        *t = g;
    }
    i = avc_lm_slot(t, key);
    if (t->keys[i] == 0) {
        t->keys[i] = key;
        t->n++;
    }
    t->counts[i] = t->counts[i] + c < t->counts[i] ? UINT32_MAX
                                                    : t->counts[i] + c;
    return AVC_OK;
}

#define AVC_LM_K2(u, v)    (((uint64_t) (u) << AVC_LM_ID_BITS) | (v))
#define AVC_LM_K3(u, v, w) (((uint64_t) (u) << (2 * AVC_LM_ID_BITS)) \
                            | ((uint64_t) (v) << AVC_LM_ID_BITS) | (w))
#define AVC_LM_ID(k, i)    ((uint32_t) ((k) >> ((i) * AVC_LM_ID_BITS)) \
                            & AVC_LM_ID_MAX)

typedef struct {
    /* vocabulary: id -> offset of the word in words; ids from 1 */
    avc__buf_t words;
    size_t *off;
    size_t nids;                /* ids used + 1 */
    size_t offcap;
    int32_t *slots;             /* word hash -> id, -1 empty */
    size_t smask;
    uint64_t *uni;              /* counts by id */
    avc_lm_tab_t bi;
    avc_lm_tab_t tri;
    uint32_t *seq;              /* the sentence as ids */
    size_t seqcap;
    size_t sentences;
    size_t tokens;
    int rc;
} avc_lm_counts_t;

static const char *
avc_lm_w(const avc_lm_counts_t *lc, uint32_t id)
{
    return lc->words.data + lc->off[id];
}

static int
avc_lm_rehash(avc_lm_counts_t *lc, size_t cap)
{
    int32_t *s = malloc(cap * sizeof(*s));
    size_t id, i;
    const char *w;

    if (s == NULL) {
        return AVC_ENOMEM;
    }
    memset(s, 0xff, cap * sizeof(*s));
    for (id = 1; id < lc->nids; id++) {
        w = avc_lm_w(lc, (uint32_t) id);
        i = (size_t) avc_lm_hash(w, strlen(w)) & (cap - 1);
        while (s[i] >= 0) {
            i = (i + 1) & (cap - 1);
        }
        s[i] = (int32_t) id;
    }
    free(lc->slots);
    lc->slots = s;
    lc->smask = cap - 1;
    return AVC_OK;
}

/* the id of word w, added when new; 0 when out of memory or ids */
static uint32_t
avc_lm_id(avc_lm_counts_t *lc, const char *w)
{
    size_t n = strlen(w), i, *o;
    uint64_t *u;
    int32_t id;

    i = (size_t) avc_lm_hash(w, n) & lc->smask;
    while ((id = lc->slots[i]) >= 0) {
        if (strcmp(avc_lm_w(lc, (uint32_t) id), w) == 0) {
            return (uint32_t) id;
        }
        i = (i + 1) & lc->smask;
    }
    if (lc->nids > AVC_LM_ID_MAX) {
        return 0;
    }
    if (lc->nids == lc->offcap) {
        o = realloc(lc->off, lc->offcap * 2 * sizeof(*o));
        u = o ? realloc(lc->uni, lc->offcap * 2 * sizeof(*u)) : NULL;
        if (o) {
            lc->off = o;
        }
        if (u == NULL) {
            return 0;
        }
        memset(u + lc->offcap, 0, lc->offcap * sizeof(*u));
        lc->uni = u;
        lc->offcap *= 2;
    }
    lc->off[lc->nids] = lc->words.len;
    if (avc__buf_append(&lc->words, w, n + 1) != AVC_OK) {
        return 0;
    }
    lc->slots[i] = (int32_t) lc->nids;
    lc->nids++;
    if (lc->nids * 2 > lc->smask + 1
        && avc_lm_rehash(lc, (lc->smask + 1) * 2) != AVC_OK)
    {
        return 0;
    }
    return (uint32_t) (lc->nids - 1);
}

static int
avc_lm_count_sentence(char *const *words, size_t n, void *data)
{
    avc_lm_counts_t *lc = data;
    uint32_t *s;
    size_t i, m = n + 2;

    if (m > lc->seqcap) {
        s = realloc(lc->seq, m * 2 * sizeof(*s));
        if (s == NULL) {
            return AVC_ENOMEM;
        }
        lc->seq = s;
        lc->seqcap = m * 2;
    }
    lc->seq[0] = AVC_LM_BOS;
    for (i = 0; i < n; i++) {
        lc->seq[i + 1] = avc_lm_id(lc, words[i]);
        if (lc->seq[i + 1] == 0) {
            return AVC_ENOMEM;
        }
    }
    lc->seq[n + 1] = AVC_LM_EOS;
    s = lc->seq;
    for (i = 0; i < m; i++) {
        lc->uni[s[i]]++;
        if (i >= 1 && avc_lm_tab_add(&lc->bi, AVC_LM_K2(s[i - 1], s[i]), 1)
                      != AVC_OK)
        {
            return AVC_ENOMEM;
        }
        if (i >= 2 && avc_lm_tab_add(&lc->tri, AVC_LM_K3(s[i - 2], s[i - 1],
                                                          s[i]), 1)
                      != AVC_OK)
        {
            return AVC_ENOMEM;
        }
    }
    lc->sentences++;
    lc->tokens += n;
    return AVC_OK;
}

/* ---------------------------------------------------------- the model */

typedef struct {
    uint64_t key;
    uint32_t count;
    double p;                   /* probability */
    double bow;                 /* back-off weight when a context */
    double tot;                 /* as a context: c(h.), and N1+(h.) */
    double types;
    double kept_p;              /* as a context: sums over kept n-grams */
    double kept_lower;
} avc_lm_gram_t;

static int
avc_lm_cmp_gram(const void *a, const void *b)
{
    uint64_t x = ((const avc_lm_gram_t *) a)->key;
    uint64_t y = ((const avc_lm_gram_t *) b)->key;

    return x < y ? -1 : x > y;
}

/* the grams of t with count >= cut, sorted by key */
static avc_lm_gram_t *
avc_lm_grams(const avc_lm_tab_t *t, uint32_t cut, size_t *n)
{
    avc_lm_gram_t *g;
    size_t i, k = 0;

    g = calloc(t->n ? t->n : 1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    for (i = 0; i < t->cap; i++) {
        if (t->keys[i] && t->counts[i] >= cut) {
            g[k].key = t->keys[i];
            g[k].count = t->counts[i];
            k++;
        }
    }
    qsort(g, k, sizeof(*g), avc_lm_cmp_gram);
    *n = k;
    return g;
}

static avc_lm_gram_t *
avc_lm_find(avc_lm_gram_t *g, size_t n, uint64_t key)
{
    size_t lo = 0, hi = n, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (g[mid].key == key) {
            return &g[mid];
        }
        if (g[mid].key < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

/* Ney's absolute discount from the counts of counts */
static double
avc_lm_discount(const avc_lm_tab_t *t)
{
    double n1 = 0, n2 = 0, d;
    size_t i;

    for (i = 0; i < t->cap; i++) {
        if (t->keys[i]) {
            n1 += t->counts[i] == 1;
            n2 += t->counts[i] == 2;
        }
    }
    d = n1 + n2 > 0 ? n1 / (n1 + 2 * n2) : 0.5;
    return d < 0.1 ? 0.1 : d > 0.9 ? 0.9 : d;
}

/* the smallest count cut that keeps at most max grams */
static uint32_t
avc_lm_cutoff(const avc_lm_tab_t *t, size_t max)
{
    uint32_t cut = 1;
    size_t i, kept;

    for (;;) {
        kept = 0;
        for (i = 0; i < t->cap; i++) {
            kept += t->keys[i] && t->counts[i] >= cut;
        }
        if (kept <= max) {
            return cut;
        }
        cut++;
    }
}

static double
avc_lm_log10(double p)
{
    return p > 0 ? log10(p < 1 ? p : 1) : -99;
}

/* ids ordered by their words, so that the ARPA file is sorted */
static int
avc_lm_cmp_id(const void *a, const void *b, void *data)
{
    const avc_lm_counts_t *lc = data;

    return strcmp(avc_lm_w(lc, *(const uint32_t *) a),
                  avc_lm_w(lc, *(const uint32_t *) b));
}

static int
avc_lm_write(avc_lm_counts_t *lc, const avc__lex_t *lex, avc__buf_t *arpa,
    avc__buf_t *dict, avc__lm_stats_t *st)
{
    avc_lm_gram_t *g2 = NULL, *g3 = NULL, *c, *lo;
    size_t n2 = 0, n3 = 0, i, k, np;
    uint32_t *order = NULL, *rank = NULL, u, v, w, cut2, cut3;
    double *p1 = NULL, *ctx1 = NULL, *typ1 = NULL, *kp1 = NULL, *kl1 = NULL;
    double d2, d3, total = 0, pl, gamma, num, den, bow;
    avc__buf_t prons;
    char *line, *nl;
    int rc = AVC_ENOMEM;

    avc__buf_init(&prons);
    d2 = avc_lm_discount(&lc->bi);
    d3 = avc_lm_discount(&lc->tri);
    /* bigrams are never cut harder than trigrams, so that every kept
     * trigram has its bigrams */
    cut3 = avc_lm_cutoff(&lc->tri, AVC_LM_NGRAMS_MAX);
    cut2 = avc_lm_cutoff(&lc->bi, AVC_LM_NGRAMS_MAX);
    if (cut2 > cut3) {
        cut3 = cut2;
    }
    g2 = avc_lm_grams(&lc->bi, cut2, &n2);
    g3 = avc_lm_grams(&lc->tri, cut3, &n3);
    p1 = calloc(lc->nids, sizeof(double));
    ctx1 = calloc(lc->nids, sizeof(double));
    typ1 = calloc(lc->nids, sizeof(double));
    kp1 = calloc(lc->nids, sizeof(double));
    kl1 = calloc(lc->nids, sizeof(double));
    order = malloc(lc->nids * sizeof(*order));
    rank = malloc(lc->nids * sizeof(*rank));
    if (g2 == NULL || g3 == NULL || p1 == NULL || ctx1 == NULL
        || typ1 == NULL || kp1 == NULL || kl1 == NULL || order == NULL
        || rank == NULL)
    {
        goto done;
    }

    /* unigrams: relative frequency over the words and </s> */
    for (i = AVC_LM_EOS; i < lc->nids; i++) {
        total += (double) lc->uni[i];
    }
    for (i = AVC_LM_EOS; i < lc->nids; i++) {
        p1[i] = (double) lc->uni[i] / total;
    }
    /* context totals from every bigram and trigram, pruned or not */
    for (i = 0; i < lc->bi.cap; i++) {
        if (lc->bi.keys[i]) {
            u = AVC_LM_ID(lc->bi.keys[i], 1);
            ctx1[u] += lc->bi.counts[i];
            typ1[u] += 1;
        }
    }
    for (i = 0; i < lc->tri.cap; i++) {
        if (lc->tri.keys[i]) {
            c = avc_lm_find(g2, n2, lc->tri.keys[i] >> AVC_LM_ID_BITS);
            if (c) {
                c->tot += lc->tri.counts[i];
                c->types += 1;
            }
        }
    }
    /* bigrams: p(v | u) */
    for (i = 0; i < n2; i++) {
        u = AVC_LM_ID(g2[i].key, 1);
        v = AVC_LM_ID(g2[i].key, 0);
        gamma = d2 * typ1[u] / ctx1[u];
        g2[i].p = ((double) g2[i].count - d2) / ctx1[u] + gamma * p1[v];
        kp1[u] += g2[i].p;
        kl1[u] += p1[v];
    }
    /* trigrams: p(w | u v), the lower order as the model gives it */
    for (i = 0; i < n3; i++) {
        v = AVC_LM_ID(g3[i].key, 1);
        w = AVC_LM_ID(g3[i].key, 0);
        c = avc_lm_find(g2, n2, g3[i].key >> AVC_LM_ID_BITS);
        lo = avc_lm_find(g2, n2, AVC_LM_K2(v, w));
        if (c == NULL || lo == NULL || c->tot <= 0) {
            continue;           /* cannot happen: see the cut-offs */
        }
        pl = lo->p;
        gamma = d3 * c->types / c->tot;
        g3[i].p = ((double) g3[i].count - d3) / c->tot + gamma * pl;
        c->kept_p += g3[i].p;
        c->kept_lower += pl;
    }
    /* back-off weights: the mass left over, normalised over what the
     * lower order gives the words not kept */
    for (i = 0; i < n2; i++) {
        if (g2[i].tot <= 0) {
            g2[i].bow = -1;
            continue;
        }
        num = 1 - g2[i].kept_p;
        den = 1 - g2[i].kept_lower;
        gamma = d3 * g2[i].types / g2[i].tot;
        bow = num > 1e-12 && den > 1e-12 ? num / den : gamma;
        g2[i].bow = bow > 0 ? bow : 1e-12;
    }

    /* ids in word order */
    for (i = 0; i < lc->nids; i++) {
        order[i] = (uint32_t) i;
    }
    qsort_r(order + 1, lc->nids - 1, sizeof(*order), avc_lm_cmp_id, lc);
    for (i = 1; i < lc->nids; i++) {
        rank[order[i]] = (uint32_t) i;
    }
    /* sort the grams by the ranks of their words */
    for (i = 0; i < n2; i++) {
        g2[i].key = AVC_LM_K2(rank[AVC_LM_ID(g2[i].key, 1)],
                              rank[AVC_LM_ID(g2[i].key, 0)]);
    }
    for (i = 0; i < n3; i++) {
        g3[i].key = AVC_LM_K3(rank[AVC_LM_ID(g3[i].key, 2)],
                              rank[AVC_LM_ID(g3[i].key, 1)],
                              rank[AVC_LM_ID(g3[i].key, 0)]);
    }
    qsort(g2, n2, sizeof(*g2), avc_lm_cmp_gram);
    qsort(g3, n3, sizeof(*g3), avc_lm_cmp_gram);

    rc = AVC_OK;
    rc |= avc__buf_printf(arpa, "\\data\\\nngram 1=%zu\nngram 2=%zu\n"
                          "ngram 3=%zu\n\n\\1-grams:\n", lc->nids - 1, n2,
                          n3);
    for (i = 1; i < lc->nids && rc == AVC_OK; i++) {
        u = order[i];
        if (ctx1[u] > 0) {
            num = 1 - kp1[u];
            den = 1 - kl1[u];
            gamma = d2 * typ1[u] / ctx1[u];
            bow = num > 1e-12 && den > 1e-12 ? num / den : gamma;
            rc |= avc__buf_printf(arpa, "%.6f %s %.6f\n",
                                  u == AVC_LM_BOS ? -99.0
                                                  : avc_lm_log10(p1[u]),
                                  avc_lm_w(lc, u),
                                  avc_lm_log10(bow > 0 ? bow : 1e-12));
        } else {
            rc |= avc__buf_printf(arpa, "%.6f %s\n", avc_lm_log10(p1[u]),
                                  avc_lm_w(lc, u));
        }
    }
    rc |= avc__buf_appends(arpa, "\n\\2-grams:\n");
    for (i = 0; i < n2 && rc == AVC_OK; i++) {
        u = order[AVC_LM_ID(g2[i].key, 1)];
        v = order[AVC_LM_ID(g2[i].key, 0)];
        rc |= avc__buf_printf(arpa, "%.6f %s %s", avc_lm_log10(g2[i].p),
                              avc_lm_w(lc, u), avc_lm_w(lc, v));
        rc |= g2[i].bow > 0 ? avc__buf_printf(arpa, " %.6f\n",
                                              avc_lm_log10(g2[i].bow))
                            : avc__buf_append(arpa, "\n", 1);
    }
    rc |= avc__buf_appends(arpa, "\n\\3-grams:\n");
    for (i = 0; i < n3 && rc == AVC_OK; i++) {
        rc |= avc__buf_printf(arpa, "%.6f %s %s %s\n",
                              avc_lm_log10(g3[i].p),
                              avc_lm_w(lc, order[AVC_LM_ID(g3[i].key, 2)]),
                              avc_lm_w(lc, order[AVC_LM_ID(g3[i].key, 1)]),
                              avc_lm_w(lc, order[AVC_LM_ID(g3[i].key, 0)]));
    }
    rc |= avc__buf_appends(arpa, "\n\\end\\\n");

    /* the decoder's dictionary: every word of the model */
    for (i = 1; i < lc->nids && rc == AVC_OK; i++) {
        u = order[i];
        if (u == AVC_LM_BOS || u == AVC_LM_EOS) {
            continue;
        }
        avc__buf_reset(&prons);
        np = avc__lex_resolve(lex, avc_lm_w(lc, u), &prons);
        line = prons.data;
        for (k = 0; k < np && line && *line && rc == AVC_OK; k++) {
            nl = strchr(line, '\n');
            if (nl == NULL) {
                break;
            }
            *nl = '\0';
            rc |= k == 0 ? avc__buf_printf(dict, "%s %s\n", avc_lm_w(lc, u),
                                           line)
                         : avc__buf_printf(dict, "%s(%zu) %s\n",
                                           avc_lm_w(lc, u), k + 1, line);
            line = nl + 1;
        }
    }
    rc = rc != AVC_OK ? AVC_ENOMEM : AVC_OK;
    if (st) {
        st->sentences = lc->sentences;
        st->tokens = lc->tokens;
        st->vocab = lc->nids - 1;
        st->ngrams[0] = lc->nids - 1;
        st->ngrams[1] = n2;
        st->ngrams[2] = n3;
        st->discount[0] = 1;
        st->discount[1] = d2;
        st->discount[2] = d3;
    }

done:
    avc__buf_free(&prons);
    free(g2);
    free(g3);
    free(p1);
    free(ctx1);
    free(typ1);
    free(kp1);
    free(kl1);
    free(order);
    free(rank);
    return rc;
}

int
avc__lm_build(const avc__lex_t *lex, const avc__lm_source_t *src,
    size_t nsrc, avc__buf_t *arpa, avc__buf_t *dict,
    avc__lm_stats_t *stats)
{
    avc_lm_counts_t lc;
    size_t i, len;
    int rc = AVC_OK;

    memset(&lc, 0, sizeof(lc));
    avc__buf_init(&lc.words);
    lc.offcap = 1024;
    lc.off = malloc(lc.offcap * sizeof(*lc.off));
    lc.uni = calloc(lc.offcap, sizeof(*lc.uni));
    if (lc.off == NULL || lc.uni == NULL
        || avc_lm_rehash(&lc, 2048) != AVC_OK
        || avc_lm_tab_init(&lc.bi, 4096) != AVC_OK
        || avc_lm_tab_init(&lc.tri, 4096) != AVC_OK)
    {
        rc = AVC_ENOMEM;
        goto done;
    }
    /* id 0 is never used; 1 and 2 are the sentence marks */
    lc.off[0] = 0;
    lc.nids = 1;
    if (avc_lm_id(&lc, "<s>") != AVC_LM_BOS
        || avc_lm_id(&lc, "</s>") != AVC_LM_EOS)
    {
        rc = AVC_ENOMEM;
        goto done;
    }
    for (i = 0; i < nsrc && rc == AVC_OK; i++) {
        len = src[i].len;
        if (len > AVC_LM_SOURCE_MAX) {
            avc_log(AVC_LOG_NOTICE, "stt: language model: %zu bytes of "
                    "text, the first %u used", len, AVC_LM_SOURCE_MAX);
            len = AVC_LM_SOURCE_MAX;
        }
        if (src[i].text && len > 0) {
            rc = avc__lm_normalise(src[i].text, len, lex, src[i].comments,
                                   avc_lm_count_sentence, &lc);
        }
    }
    if (rc == AVC_OK && lc.tokens == 0) {
        rc = AVC_ENOTFOUND;
    }
    if (rc == AVC_OK) {
        rc = avc_lm_write(&lc, lex, arpa, dict, stats);
    }

done:
    avc__buf_free(&lc.words);
    free(lc.off);
    free(lc.uni);
    free(lc.slots);
    free(lc.seq);
    avc_lm_tab_free(&lc.bi);
    avc_lm_tab_free(&lc.tri);
    return rc;
}
