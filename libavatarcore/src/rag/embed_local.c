/*
 * The local embedder: signed feature hashing of the lexical analysis.
 *
 * Three families of features, each hashed into its own dim-sized
 * accumulator, normalised, then mixed:
 *
 *   words   content-word stems and the F&I concepts found (weight 1,
 *           damped words 0.35, concepts twice their list weight);
 *   pairs   adjacent content units (a concept phrase counts as one unit),
 *           so that "rate markup" is more than "rate" and "markup";
 *   chars   the 3- to 5-grams of each content word with boundary marks,
 *           so that spelling variants and word forms the stemmer misses
 *           still overlap.
 *
 * Normalising each family before mixing keeps the mix stable whatever
 * the text's length: character n-grams are ten times as many as words
 * and would otherwise drown them.  Weights are 1 + ln(tf).
 */
#include "rag_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* part of the model name: bump whenever features or weights change, so
 * that vectors of two versions are never compared */
#define AVC_EL_VERSION    1

#define AVC_EL_WORDS      0
#define AVC_EL_PAIRS      1
#define AVC_EL_CHARS      2
#define AVC_EL_FAMILIES   3

static const double avc_el_family_weight[AVC_EL_FAMILIES] = {
    1.0,                        /* words and concepts */
    0.55,                       /* pairs */
    0.45                        /* character n-grams */
};

#define AVC_EL_W_LIGHT    0.35
/* a concept stands for a phrase of several words: it weighs as two, so
 * that "VSC" and "vehicle service contract" meet on it */
#define AVC_EL_W_CONCEPT  2.0

typedef struct {
    uint64_t key;               /* 0: empty slot */
    float base;
    uint32_t tf;
} avc_el_feat_t;

typedef struct {
    avc_el_feat_t *slots;
    size_t cap;                 /* a power of two */
    size_t n;
    avc__lx_t lx;
    double *acc;                /* AVC_EL_FAMILIES * dim */
    size_t acc_dim;
} avc_el_t;

static uint64_t
avc_el_mix(uint64_t h)
{
    /* MurmurHash3's finaliser: every input bit reaches every output bit */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb3f99fd7a4b3ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t
avc_el_hash(unsigned family, char tag, const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    size_t i;

    h ^= family;
    h *= 1099511628211ULL;
    h ^= (unsigned char) tag;
    h *= 1099511628211ULL;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char) p[i];
        h *= 1099511628211ULL;
    }
    return avc_el_mix(h);
}

static void
avc_el_init(avc_el_t *el)
{
    memset(el, 0, sizeof(*el));
    avc__lx_init_struct(&el->lx);
}

static void
avc_el_free(avc_el_t *el)
{
    free(el->slots);
    free(el->acc);
    avc__lx_free(&el->lx);
    memset(el, 0, sizeof(*el));
}

static int
avc_el_grow(avc_el_t *el)
{
    avc_el_feat_t *old = el->slots, *s;
    size_t cap = el->cap ? el->cap * 2 : 1024, i, j;

    s = calloc(cap, sizeof(*s));
    if (s == NULL) {
        return AVC_ENOMEM;
    }
    for (i = 0; i < el->cap; i++) {
        if (old[i].key == 0) {
            continue;
        }
        for (j = old[i].key & (cap - 1); s[j].key; j = (j + 1) & (cap - 1)) {
            /* linear probing */
        }
        s[j] = old[i];
    }
    free(old);
    el->slots = s;
    el->cap = cap;
    return AVC_OK;
}

/* count one occurrence of a feature; the family is in the top 2 bits */
static int
avc_el_add(avc_el_t *el, unsigned family, uint64_t h, double base)
{
    uint64_t key = (h & ~(3ULL << 62)) | ((uint64_t) family << 62);
    size_t j;

    if (key == 0) {
        key = 1;
    }
    if ((el->n + 1) * 4 > el->cap * 3 && avc_el_grow(el) != AVC_OK) {
        return AVC_ENOMEM;
    }
    for (j = key & (el->cap - 1); el->slots[j].key;
         j = (j + 1) & (el->cap - 1))
    {
        if (el->slots[j].key == key) {
            el->slots[j].tf++;
            if (base > el->slots[j].base) {
                el->slots[j].base = (float) base;
            }
            return AVC_OK;
        }
    }
    el->slots[j].key = key;
    el->slots[j].base = (float) base;
    el->slots[j].tf = 1;
    el->n++;
    return AVC_OK;
}

static int
avc_el_chars(avc_el_t *el, const char *w, size_t wl, double base)
{
    char b[AVC__LX_WORD_MAX + 3];
    size_t bl, n, i;
    int rc = AVC_OK;

    b[0] = '<';
    memcpy(b + 1, w, wl);
    b[wl + 1] = '>';
    bl = wl + 2;
    for (n = 3; n <= 5 && n <= bl; n++) {
        for (i = 0; i + n <= bl; i++) {
            rc |= avc_el_add(el, AVC_EL_CHARS,
                             avc_el_hash(AVC_EL_CHARS, 'g', b + i, n), base);
        }
    }
    return rc == AVC_OK ? AVC_OK : AVC_ENOMEM;
}

/* collect the features of the analysed words */
static int
avc_el_features(avc_el_t *el)
{
    const avc__lx_t *lx = &el->lx;
    const avc__lx_word_t *wd;
    const char *name;
    uint64_t unit, prev = 0;
    double base, ubase, prev_base = 0;
    size_t i, covered = 0;
    int rc = AVC_OK, have_prev = 0;

    for (i = 0; i < lx->n; i++) {
        wd = &lx->words[i];
        if (wd->concept >= 0) {
            name = avc__lx_concept_name(wd->concept);
            base = AVC_EL_W_CONCEPT * avc__lx_concept_weight(wd->concept);
            unit = avc_el_hash(AVC_EL_WORDS, '=', name, strlen(name));
            rc |= avc_el_add(el, AVC_EL_WORDS, unit, base);
            if (have_prev) {
                rc |= avc_el_add(el, AVC_EL_PAIRS,
                                 avc_el_mix(prev * 31 + unit),
                                 sqrt(prev_base * base));
            }
            prev = unit;
            prev_base = base;
            have_prev = 1;
            covered = i + wd->span;
        }
        if (wd->cls & AVC__LX_STOP) {
            continue;
        }
        base = wd->cls & AVC__LX_LIGHT ? AVC_EL_W_LIGHT : 1.0;
        unit = avc_el_hash(AVC_EL_WORDS, 'w', avc__lx_sstr(lx, i),
                           wd->slen);
        rc |= avc_el_add(el, AVC_EL_WORDS, unit, base);
        if (!(wd->cls & AVC__LX_DIGIT)) {
            rc |= avc_el_chars(el, avc__lx_wstr(lx, i), wd->wlen, base);
        }
        /* inside a concept's phrase the concept was the unit */
        if (i >= covered) {
            ubase = base;
            if (have_prev) {
                rc |= avc_el_add(el, AVC_EL_PAIRS,
                                 avc_el_mix(prev * 31 + unit),
                                 sqrt(prev_base * ubase));
            }
            prev = unit;
            prev_base = ubase;
            have_prev = 1;
        }
    }
    return rc == AVC_OK ? AVC_OK : AVC_ENOMEM;
}

static int
avc_el_embed(avc_el_t *el, const char *text, size_t len, unsigned dim,
    float *out)
{
    double *acc, norm[AVC_EL_FAMILIES], total, w, *a;
    const avc_el_feat_t *f;
    unsigned family;
    size_t i, b;
    int rc;

    if (el->acc_dim != dim) {
        free(el->acc);
        el->acc = malloc(AVC_EL_FAMILIES * dim * sizeof(double));
        if (el->acc == NULL) {
            el->acc_dim = 0;
            return AVC_ENOMEM;
        }
        el->acc_dim = dim;
    }
    acc = el->acc;
    memset(acc, 0, AVC_EL_FAMILIES * dim * sizeof(double));
    if (el->cap) {
        memset(el->slots, 0, el->cap * sizeof(el->slots[0]));
    }
    el->n = 0;
    el->lx.n = 0;
    el->lx.arena_len = 0;

    rc = avc__lx_analyze(&el->lx, text, len);
    if (rc == AVC_OK) {
        rc = avc_el_features(el);
    }
    if (rc != AVC_OK) {
        return rc;
    }

    for (i = 0; i < el->cap; i++) {
        f = &el->slots[i];
        if (f->key == 0) {
            continue;
        }
        family = (unsigned) (f->key >> 62);
        /* the bucket from the high half, the sign from the low bit */
        b = (size_t) (((f->key >> 30 & 0xffffffffULL) * dim) >> 32);
        w = f->base * (1.0 + log((double) f->tf));
        acc[family * dim + b] += f->key & 1 ? -w : w;
    }

    for (family = 0; family < AVC_EL_FAMILIES; family++) {
        a = acc + family * dim;
        norm[family] = 0;
        for (b = 0; b < dim; b++) {
            norm[family] += a[b] * a[b];
        }
        norm[family] = norm[family] > 0
                       ? avc_el_family_weight[family] / sqrt(norm[family])
                       : 0;
    }
    total = 0;
    for (b = 0; b < dim; b++) {
        w = 0;
        for (family = 0; family < AVC_EL_FAMILIES; family++) {
            w += acc[family * dim + b] * norm[family];
        }
        acc[b] = w;
        total += w * w;
    }
    total = total > 0 ? 1.0 / sqrt(total) : 0;
    for (b = 0; b < dim; b++) {
        out[b] = (float) (acc[b] * total);
    }
    return AVC_OK;
}

static int
avc_el_dim_ok(unsigned dim)
{
    return dim >= 64 && dim <= 4096;
}

int
avc__embed_local_batch(const char *const *texts, const size_t *lens,
    size_t n, unsigned dim, float *out, const volatile int *cancel)
{
    avc_el_t el;
    size_t i;
    int rc = AVC_OK;

    if (!avc_el_dim_ok(dim)) {
        return AVC_EINVAL;
    }
    avc_el_init(&el);
    for (i = 0; i < n && rc == AVC_OK; i++) {
        if (cancel && *cancel) {
            rc = AVC_ECANCELED;
            break;
        }
        rc = avc_el_embed(&el, texts[i],
                          lens ? lens[i] : strlen(texts[i]), dim,
                          out + i * dim);
    }
    avc_el_free(&el);
    return rc;
}

void
avc__embed_local_model(unsigned dim, char *out, size_t n)
{
    snprintf(out, n, "avc-local-%d-d%u-h%08x", AVC_EL_VERSION, dim,
             (unsigned) avc__lx_tables_hash());
}

int
avc_embed_local_one(const char *text, size_t len, unsigned dim, float *out)
{
    if (text == NULL || out == NULL) {
        return AVC_EINVAL;
    }
    return avc__embed_local_batch(&text, &len, 1, dim, out, NULL);
}

int
avc_embed_local_many(const char *const *texts, size_t n, unsigned dim,
    float *out)
{
    size_t i;

    if (texts == NULL || out == NULL) {
        return AVC_EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (texts[i] == NULL) {
            return AVC_EINVAL;
        }
    }
    return avc__embed_local_batch(texts, NULL, n, dim, out, NULL);
}

int
avc_embed_local_model(unsigned dim, char *out, size_t n)
{
    if (!avc_el_dim_ok(dim) || out == NULL || n < 48) {
        return AVC_EINVAL;
    }
    if (avc__lx_init() != AVC_OK) {
        return AVC_ENOMEM;
    }
    avc__embed_local_model(dim, out, n);
    return AVC_OK;
}
