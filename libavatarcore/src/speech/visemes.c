/*
 * Visemes: the list both providers build theirs in, and the estimate
 * from text for a provider that gives no timing (avc_visemes_from_text).
 *
 * The estimate reads the text as English spelling: digraphs first ("th",
 * "sh", "ch", "ph", "ng", "oo", "ee"...), then single letters, a double
 * consonant once, a silent final "e" skipped; digits and a few symbols
 * are read as their words ("5" five, "%" percent).  Vowels weigh 3,
 * consonants 2, a comma or the like is a pause of weight 3 and the end
 * of a sentence one of 5; the audio's length is shared out in proportion
 * to the weights.  The same text and length always give the same list.
 */
#include "tts_int.h"

#include <stdlib.h>
#include <string.h>

#define AVC_VIS_VOWEL   3
#define AVC_VIS_CONS    2
#define AVC_VIS_COMMA   3
#define AVC_VIS_STOP    5

/* the 15 shapes; the strings handed out are these */
static const char *const avc_vis_names[] = {
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E",
    "I", "O", "U"
};

const char *
avc__viseme_name(const char *v)
{
    size_t i;

    for (i = 0; i < avc__countof(avc_vis_names); i++) {
        if (strcmp(v, avc_vis_names[i]) == 0) {
            return avc_vis_names[i];
        }
    }
    return NULL;
}

int
avc__visemes_add(avc__visemes_t *l, unsigned t_ms, unsigned d_ms,
    const char *v)
{
    avc_viseme_t *nv, *last;
    size_t cap;

    if (d_ms == 0) {
        return AVC_OK;
    }
    last = l->n ? &l->v[l->n - 1] : NULL;
    if (last && last->v == v && last->t_ms + last->d_ms == t_ms) {
        last->d_ms += d_ms;
        return AVC_OK;
    }
    if (l->n == l->cap) {
        cap = l->cap ? l->cap * 2 : 32;
        nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL) {
            return AVC_ENOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n].t_ms = t_ms;
    l->v[l->n].d_ms = d_ms;
    l->v[l->n].v = v;
    l->n++;
    return AVC_OK;
}

/* the estimate from text */

enum {
    V_SIL, V_PP, V_FF, V_TH, V_DD, V_KK, V_CH, V_SS, V_NN, V_RR, V_AA, V_E,
    V_I, V_O, V_U
};

typedef struct {
    unsigned char *shape;       /* index into avc_vis_names */
    unsigned char *weight;
    size_t n;
    size_t cap;
    int oom;
} avc_vis_seq_t;

static void
avc_vis_put(avc_vis_seq_t *s, int shape, int weight)
{
    unsigned char *a, *b;
    size_t cap;

    if (s->oom) {
        return;
    }
    if (s->n == s->cap) {
        cap = s->cap ? s->cap * 2 : 64;
        a = realloc(s->shape, cap);
        if (a == NULL) {
            s->oom = 1;
            return;
        }
        s->shape = a;
        b = realloc(s->weight, cap);
        if (b == NULL) {
            s->oom = 1;
            return;
        }
        s->weight = b;
        s->cap = cap;
    }
    s->shape[s->n] = (unsigned char) shape;
    s->weight[s->n] = (unsigned char) weight;
    s->n++;
}

typedef struct {
    const char *spelling;
    unsigned char shapes[2];    /* the second may be V_SIL: none */
    unsigned char n;
} avc_vis_digraph_t;

static const avc_vis_digraph_t avc_vis_digraphs[] = {
    { "th", { V_TH, 0 }, 1 },
    { "sh", { V_CH, 0 }, 1 },
    { "ch", { V_CH, 0 }, 1 },
    { "ph", { V_FF, 0 }, 1 },
    { "wh", { V_U, 0 }, 1 },
    { "ng", { V_KK, 0 }, 1 },
    { "ck", { V_KK, 0 }, 1 },
    { "qu", { V_KK, V_U }, 2 },
    { "oo", { V_U, 0 }, 1 },
    { "ou", { V_AA, V_U }, 2 },
    { "ow", { V_O, V_U }, 2 },
    { "oa", { V_O, 0 }, 1 },
    { "oi", { V_O, V_I }, 2 },
    { "oy", { V_O, V_I }, 2 },
    { "ee", { V_I, 0 }, 1 },
    { "ea", { V_I, 0 }, 1 },
    { "ai", { V_E, V_I }, 2 },
    { "ay", { V_E, V_I }, 2 },
    { "au", { V_O, 0 }, 1 },
    { "aw", { V_O, 0 }, 1 },
};

static int
avc_vis_is_vowel_shape(int shape)
{
    return shape >= V_AA;
}

static int
avc_vis_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int
avc_vis_alpha(int c)
{
    c = avc_vis_lower(c);
    return c >= 'a' && c <= 'z';
}

static int
avc_vis_letter(int c, int next)
{
    switch (c) {
    case 'a': return V_AA;
    case 'e': return V_E;
    case 'i': case 'y': return V_I;
    case 'o': return V_O;
    case 'u': case 'w': return V_U;
    case 'b': case 'm': case 'p': return V_PP;
    case 'f': case 'v': return V_FF;
    case 't': case 'd': return V_DD;
    case 'c':
        return next == 'e' || next == 'i' || next == 'y' ? V_SS : V_KK;
    case 'k': case 'g': case 'q': case 'h': return V_KK;
    case 's': case 'z': return V_SS;
    case 'j': return V_CH;
    case 'l': case 'n': return V_NN;
    case 'r': return V_RR;
    default: return -1;
    }
}

static void
avc_vis_shape(avc_vis_seq_t *s, int shape)
{
    avc_vis_put(s, shape, avc_vis_is_vowel_shape(shape) ? AVC_VIS_VOWEL
                                                         : AVC_VIS_CONS);
}

/* one word of letters w[0..n) */
static void
avc_vis_word(avc_vis_seq_t *s, const char *w, size_t n)
{
    size_t i = 0, k;
    int c, next, prev = 0, shape;
    const avc_vis_digraph_t *dg;

    while (i < n) {
        c = avc_vis_lower((unsigned char) w[i]);
        next = i + 1 < n ? avc_vis_lower((unsigned char) w[i + 1]) : 0;
        dg = NULL;
        for (k = 0; next && k < avc__countof(avc_vis_digraphs); k++) {
            if (avc_vis_digraphs[k].spelling[0] == c
                && avc_vis_digraphs[k].spelling[1] == next)
            {
                dg = &avc_vis_digraphs[k];
                break;
            }
        }
        if (dg) {
            avc_vis_shape(s, dg->shapes[0]);
            if (dg->n == 2) {
                avc_vis_shape(s, dg->shapes[1]);
            }
            prev = next;
            i += 2;
            continue;
        }
        if (c == 'e' && i == n - 1 && n >= 4 && prev
            && avc_vis_letter(prev, 0) < V_AA)
        {
            break;                      /* a silent final e */
        }
        if (c == prev && avc_vis_letter(c, next) < V_AA) {
            i++;                        /* a double consonant */
            continue;
        }
        if (c == 'x') {
            avc_vis_shape(s, V_KK);
            avc_vis_shape(s, V_SS);
        } else {
            shape = avc_vis_letter(c, next);
            if (shape >= 0) {
                avc_vis_shape(s, shape);
            }
        }
        prev = c;
        i++;
    }
}

static const char *const avc_vis_digits[] = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
    "nine"
};

static void
avc_vis_sil(avc_vis_seq_t *s, int weight)
{
    /* a pause after a pause only lengthens it */
    if (s->n && s->shape[s->n - 1] == V_SIL) {
        if (s->weight[s->n - 1] < weight) {
            s->weight[s->n - 1] = (unsigned char) weight;
        }
        return;
    }
    avc_vis_put(s, V_SIL, weight);
}

static void
avc_vis_text(avc_vis_seq_t *s, const char *text)
{
    const unsigned char *p = (const unsigned char *) text;
    const char *word;
    size_t i, n;
    int c;

    for (i = 0; p[i]; ) {
        c = p[i];
        if (avc_vis_alpha(c)) {
            for (n = i; avc_vis_alpha(p[n]) || p[n] == '\''; n++) {
                /* the word, with its apostrophes */
            }
            avc_vis_word(s, (const char *) p + i, n - i);
            i = n;
            continue;
        }
        word = NULL;
        if (c >= '0' && c <= '9') {
            word = avc_vis_digits[c - '0'];
        } else if (c == '$') {
            word = "dollars";
        } else if (c == '%') {
            word = "percent";
        } else if (c == '&') {
            word = "and";
        } else if (c == '+') {
            word = "plus";
        } else if (c == '@') {
            word = "at";
        } else if (c == '#') {
            word = "number";
        } else if (c == '=') {
            word = "equals";
        }
        if (word) {
            avc_vis_word(s, word, strlen(word));
            i++;
            continue;
        }
        if (c == '.' && i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9'
            && p[i + 1] >= '0' && p[i + 1] <= '9')
        {
            avc_vis_word(s, "point", 5);
        } else if (c == '.' || c == '!' || c == '?') {
            if (p[i + 1] == '\0' || p[i + 1] == ' ' || p[i + 1] == '\n'
                || p[i + 1] == '"' || p[i + 1] == '\'' || p[i + 1] == ')'
                || p[i + 1] == '\t' || p[i + 1] == '\r')
            {
                avc_vis_sil(s, AVC_VIS_STOP);
            }
        } else if (c == ',' || c == ';' || c == ':' || c == '\n'
                   || c == '(' || c == ')')
        {
            avc_vis_sil(s, AVC_VIS_COMMA);
        } else if (c == 0xe2 && p[i + 1] == 0x80
                   && (p[i + 2] == 0xa6 || p[i + 2] == 0x94
                       || p[i + 2] == 0x93))
        {
            avc_vis_sil(s, p[i + 2] == 0xa6 ? AVC_VIS_STOP : AVC_VIS_COMMA);
            i += 3;
            continue;
        } else if (c >= 0xc0) {
            /* a letter of another alphabet: a vowel-like shape */
            avc_vis_shape(s, V_E);
            i++;
            while ((p[i] & 0xc0) == 0x80) {
                i++;
            }
            continue;
        }
        i++;
    }
}

AVC_API avc_viseme_t *
avc_visemes_from_text(const char *text, unsigned audio_ms, size_t *n)
{
    avc__visemes_t out;
    avc_vis_seq_t s;
    uint64_t total = 0, acc = 0, t0, t1;
    size_t i;

    *n = 0;
    if (audio_ms == 0) {
        return NULL;
    }
    memset(&s, 0, sizeof(s));
    memset(&out, 0, sizeof(out));
    if (text) {
        avc_vis_text(&s, text);
    }
    if (s.oom) {
        free(s.shape);
        free(s.weight);
        return NULL;
    }
    for (i = 0; i < s.n; i++) {
        total += s.weight[i];
    }
    if (total == 0) {
        /* nothing to say: a closed mouth throughout */
        if (avc__visemes_add(&out, 0, audio_ms, avc_vis_names[V_SIL])
            != AVC_OK)
        {
            return NULL;
        }
    }
    for (i = 0; i < s.n && total; i++) {
        t0 = acc * audio_ms / total;
        acc += s.weight[i];
        t1 = acc * audio_ms / total;
        if (avc__visemes_add(&out, (unsigned) t0, (unsigned) (t1 - t0),
                             avc_vis_names[s.shape[i]]) != AVC_OK)
        {
            free(out.v);
            out.v = NULL;
            out.n = 0;
            break;
        }
    }
    free(s.shape);
    free(s.weight);
    *n = out.n;
    return out.v;
}
