/*
 * The in-memory vector index: int8 scan, full-precision re-scoring.
 *
 * Layout: structure of arrays indexed by slot (0..n-1), dense; removal
 * moves the last slot into the hole, so a scan never skips holes.  The
 * int8 rows are padded to a multiple of 32 bytes with zeros, so the dot
 * product runs over whole blocks that the compiler turns into SIMD code
 * without an epilogue.  An open-addressing map (linear probing,
 * backward-shift deletion) finds a slot by id.
 */
#include "rag_internal.h"

#include <avatarcore/index.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AVC_IX_BLOCK     32
#define AVC_IX_DIM_MAX   16384
/*
 * Candidates re-scored: max(64, 2k + 32).  The int8 error of a cosine is
 * about 1e-3; real score lists are not that dense at their top, so the
 * true top k is always among these.
 */
#define AVC_IX_CAND_MIN  64
#define AVC_IX_CAND_MUL  2
#define AVC_IX_CAND_ADD  32
/* rows scored per call of the dot-product kernel */
#define AVC_IX_RUN       256

struct avc_index_s {
    size_t dim;
    size_t dpad;                /* dim rounded up to AVC_IX_BLOCK */
    unsigned flags;
    size_t n;
    size_t cap;
    int8_t *q8;                 /* cap * dpad */
    float *scale;               /* cap: value = q8 * scale */
    float *f32;                 /* cap * dim, or */
    uint16_t *f16;              /* cap * dim with AVC_INDEX_FP16 */
    int64_t *ids;
    uint32_t *tags;
    uint32_t *map;              /* slot + 1, 0 empty */
    size_t map_cap;             /* a power of two */
};

typedef struct {
    float score;
    uint32_t slot;
    int64_t id;
} avc_ix_hit_t;

/* half precision */

uint16_t
avc__f32_to_f16(float f)
{
    uint32_t x, sign, mant;
    int32_t exp;

    memcpy(&x, &f, sizeof(x));
    sign = (x >> 16) & 0x8000u;
    exp = (int32_t) ((x >> 23) & 0xff) - 127 + 15;
    mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) {
        return (uint16_t) (sign | 0x7c00u | (mant ? 0x200u : 0));
    }
    if (exp >= 31) {
        return (uint16_t) (sign | 0x7c00u);
    }
    if (exp <= 0) {
        if (exp < -10) {
            return (uint16_t) sign;
        }
        mant |= 0x800000u;
        /* round to nearest even into the subnormal */
        {
            uint32_t shift = (uint32_t) (14 - exp);
            uint32_t h = mant >> shift;
            uint32_t rem = mant & ((1u << shift) - 1);
            uint32_t half = 1u << (shift - 1);

            if (rem > half || (rem == half && (h & 1))) {
                h++;
            }
            return (uint16_t) (sign | h);
        }
    }
    {
        uint32_t h = ((uint32_t) exp << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1fffu;

        if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) {
            h++;                /* may carry into the exponent: correct */
        }
        return (uint16_t) (sign | h);
    }
}

float
avc__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
    float f;

    if (exp == 0) {
        f = (float) mant / 16777216.0f;     /* 2^-24 */
        return sign ? -f : f;
    }
    if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    memcpy(&f, &x, sizeof(f));
    return f;
}

/* the map */

static uint64_t
avc_ix_hash(int64_t id)
{
    uint64_t h = (uint64_t) id;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb3f99fd7a4b3ULL;
    h ^= h >> 33;
    return h;
}

/* the map position of id, or of the empty place where it would go */
static size_t
avc_ix_map_pos(const avc_index_t *ix, int64_t id)
{
    size_t mask = ix->map_cap - 1, j;

    for (j = avc_ix_hash(id) & mask; ix->map[j]; j = (j + 1) & mask) {
        if (ix->ids[ix->map[j] - 1] == id) {
            break;
        }
    }
    return j;
}

static int
avc_ix_map_grow(avc_index_t *ix, size_t want)
{
    size_t cap = ix->map_cap ? ix->map_cap : 64, i, j;
    uint32_t *old = ix->map, *m;
    size_t old_cap = ix->map_cap;

    while (cap / 2 < want) {
        cap *= 2;
    }
    if (cap == ix->map_cap) {
        return AVC_OK;
    }
    m = calloc(cap, sizeof(*m));
    if (m == NULL) {
        return AVC_ENOMEM;
    }
    for (i = 0; i < old_cap; i++) {
        if (old[i] == 0) {
            continue;
        }
        for (j = avc_ix_hash(ix->ids[old[i] - 1]) & (cap - 1); m[j];
             j = (j + 1) & (cap - 1))
        {
            /* linear probing */
        }
        m[j] = old[i];
    }
    free(old);
    ix->map = m;
    ix->map_cap = cap;
    return AVC_OK;
}

/* backward-shift deletion keeps every probe chain unbroken */
static void
avc_ix_map_del(avc_index_t *ix, size_t j)
{
    size_t mask = ix->map_cap - 1, k = j, home;

    for ( ;; ) {
        ix->map[j] = 0;
        for ( ;; ) {
            k = (k + 1) & mask;
            if (ix->map[k] == 0) {
                return;
            }
            home = avc_ix_hash(ix->ids[ix->map[k] - 1]) & mask;
            /* can the entry at k move to j?  only if home is not in (j, k] */
            if (j <= k ? (home <= j || home > k) : (home <= j && home > k)) {
                break;
            }
        }
        ix->map[j] = ix->map[k];
        j = k;
    }
}

/* creation */

avc_index_t *
avc_index_new(size_t dim, unsigned flags)
{
    avc_index_t *ix;

    if (dim == 0 || dim > AVC_IX_DIM_MAX) {
        return NULL;
    }
    ix = calloc(1, sizeof(*ix));
    if (ix == NULL) {
        return NULL;
    }
    ix->dim = dim;
    ix->dpad = (dim + AVC_IX_BLOCK - 1) / AVC_IX_BLOCK * AVC_IX_BLOCK;
    ix->flags = flags & AVC_INDEX_FP16;
    if (avc_ix_map_grow(ix, 16) != AVC_OK) {
        free(ix);
        return NULL;
    }
    return ix;
}

void
avc_index_free(avc_index_t *ix)
{
    if (ix == NULL) {
        return;
    }
    free(ix->q8);
    free(ix->scale);
    free(ix->f32);
    free(ix->f16);
    free(ix->ids);
    free(ix->tags);
    free(ix->map);
    free(ix);
}

size_t
avc_index_dim(const avc_index_t *ix)
{
    return ix->dim;
}

size_t
avc_index_size(const avc_index_t *ix)
{
    return ix->n;
}

size_t
avc_index_memory(const avc_index_t *ix)
{
    size_t per = ix->dpad + sizeof(float) + sizeof(int64_t)
                 + sizeof(uint32_t)
                 + ix->dim * (ix->flags & AVC_INDEX_FP16 ? 2 : 4);

    return sizeof(*ix) + ix->cap * per + ix->map_cap * sizeof(uint32_t);
}

static void *
avc_ix_realloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        return NULL;
    }
    return realloc(p, n * size);
}

/* one array of the index to want entries; on failure the capacity drops
 * to what every array is sure to hold */
static int
avc_ix_resize(avc_index_t *ix, void **arr, size_t size, size_t want)
{
    void *p = avc_ix_realloc(*arr, want, size);

    if (p == NULL) {
        if (want < ix->cap) {
            ix->cap = want;
        }
        return AVC_ENOMEM;
    }
    *arr = p;
    return AVC_OK;
}

int
avc_index_reserve(avc_index_t *ix, size_t want)
{
    void *q8 = ix->q8, *scale = ix->scale, *full, *ids = ix->ids;
    void *tags = ix->tags;
    size_t fsize;
    int rc;

    if (want < ix->n) {
        want = ix->n;
    }
    if (want == ix->cap || want == 0) {
        return AVC_OK;
    }
    if (want > UINT32_MAX - 1) {
        return AVC_ENOMEM;
    }
    if (ix->flags & AVC_INDEX_FP16) {
        full = ix->f16;
        fsize = ix->dim * sizeof(uint16_t);
    } else {
        full = ix->f32;
        fsize = ix->dim * sizeof(float);
    }
    /*
     * Exactly as asked, growing or trimming (avc_index_add() asks for
     * doubling itself).  Each array moves on its own: when one fails,
     * every array still holds at least min(old, want) entries, which is
     * what the capacity then says, so the index stays usable.
     */
    rc = avc_ix_resize(ix, &q8, ix->dpad, want);
    ix->q8 = q8;
    if (rc == AVC_OK) {
        rc = avc_ix_resize(ix, &scale, sizeof(float), want);
        ix->scale = scale;
    }
    if (rc == AVC_OK) {
        rc = avc_ix_resize(ix, &full, fsize, want);
        if (ix->flags & AVC_INDEX_FP16) {
            ix->f16 = full;
        } else {
            ix->f32 = full;
        }
    }
    if (rc == AVC_OK) {
        rc = avc_ix_resize(ix, &ids, sizeof(int64_t), want);
        ix->ids = ids;
    }
    if (rc == AVC_OK) {
        rc = avc_ix_resize(ix, &tags, sizeof(uint32_t), want);
        ix->tags = tags;
    }
    if (rc != AVC_OK) {
        return rc;
    }
    ix->cap = want;
    return avc_ix_map_grow(ix, want);
}

/* quantise unit vector v into q (dpad, zero-padded); returns the scale */
static float
avc_ix_quantise(const float *v, size_t dim, size_t dpad, int8_t *q)
{
    float m = 0, a, inv;
    size_t i;
    long r;

    for (i = 0; i < dim; i++) {
        a = fabsf(v[i]);
        if (a > m) {
            m = a;
        }
    }
    memset(q, 0, dpad);
    if (m == 0) {
        return 0;
    }
    inv = 127.0f / m;
    for (i = 0; i < dim; i++) {
        r = lrintf(v[i] * inv);
        q[i] = (int8_t) (r > 127 ? 127 : r < -127 ? -127 : r);
    }
    return m / 127.0f;
}

static void
avc_ix_store(avc_index_t *ix, size_t slot, int64_t id, uint32_t tag,
    const float *unit)
{
    size_t i;

    ix->scale[slot] = avc_ix_quantise(unit, ix->dim, ix->dpad,
                                      ix->q8 + slot * ix->dpad);
    if (ix->flags & AVC_INDEX_FP16) {
        for (i = 0; i < ix->dim; i++) {
            ix->f16[slot * ix->dim + i] = avc__f32_to_f16(unit[i]);
        }
    } else {
        memcpy(ix->f32 + slot * ix->dim, unit, ix->dim * sizeof(float));
    }
    ix->ids[slot] = id;
    ix->tags[slot] = tag;
}

/* v / |v| into out; AVC_EINVAL for NaN or infinity */
static int
avc_ix_normalise(const float *v, size_t dim, float *out)
{
    double s = 0;
    size_t i;

    for (i = 0; i < dim; i++) {
        if (!isfinite(v[i])) {
            return AVC_EINVAL;
        }
        s += (double) v[i] * v[i];
    }
    s = s > 0 ? 1.0 / sqrt(s) : 0;
    for (i = 0; i < dim; i++) {
        out[i] = (float) (v[i] * s);
    }
    return AVC_OK;
}

int
avc_index_add(avc_index_t *ix, int64_t id, uint32_t tag, const float *vec)
{
    float *unit;
    size_t j, slot;
    int rc;

    if (ix == NULL || vec == NULL) {
        return AVC_EINVAL;
    }
    unit = malloc(ix->dim * sizeof(float));
    if (unit == NULL) {
        return AVC_ENOMEM;
    }
    rc = avc_ix_normalise(vec, ix->dim, unit);
    if (rc != AVC_OK) {
        free(unit);
        return rc;
    }
    j = avc_ix_map_pos(ix, id);
    if (ix->map[j]) {
        avc_ix_store(ix, ix->map[j] - 1, id, tag, unit);
        free(unit);
        return AVC_OK;
    }
    if (ix->n == ix->cap) {
        rc = avc_index_reserve(ix, ix->cap ? 2 * ix->cap : 64);
        if (rc != AVC_OK) {
            free(unit);
            return rc;
        }
        j = avc_ix_map_pos(ix, id);
    }
    slot = ix->n++;
    avc_ix_store(ix, slot, id, tag, unit);
    ix->map[j] = (uint32_t) slot + 1;
    free(unit);
    return AVC_OK;
}

int
avc_index_remove(avc_index_t *ix, int64_t id)
{
    size_t j, slot, last, k;

    if (ix == NULL) {
        return AVC_EINVAL;
    }
    j = avc_ix_map_pos(ix, id);
    if (ix->map[j] == 0) {
        return AVC_ENOTFOUND;
    }
    slot = ix->map[j] - 1;
    avc_ix_map_del(ix, j);
    last = ix->n - 1;
    if (slot != last) {
        /* the last entry fills the hole; its map entry follows it */
        memcpy(ix->q8 + slot * ix->dpad, ix->q8 + last * ix->dpad, ix->dpad);
        ix->scale[slot] = ix->scale[last];
        if (ix->flags & AVC_INDEX_FP16) {
            memcpy(ix->f16 + slot * ix->dim, ix->f16 + last * ix->dim,
                   ix->dim * sizeof(uint16_t));
        } else {
            memcpy(ix->f32 + slot * ix->dim, ix->f32 + last * ix->dim,
                   ix->dim * sizeof(float));
        }
        ix->ids[slot] = ix->ids[last];
        ix->tags[slot] = ix->tags[last];
        k = avc_ix_map_pos(ix, ix->ids[slot]);
        ix->map[k] = (uint32_t) slot + 1;
    }
    ix->n--;
    return AVC_OK;
}

int
avc_index_contains(const avc_index_t *ix, int64_t id, uint32_t *tag)
{
    size_t j;

    if (ix == NULL) {
        return 0;
    }
    j = avc_ix_map_pos(ix, id);
    if (ix->map[j] == 0) {
        return 0;
    }
    if (tag) {
        *tag = ix->tags[ix->map[j] - 1];
    }
    return 1;
}

static float avc_ix_dot_full(const avc_index_t *ix, size_t slot,
                             const float *q);

int
avc_index_score(const avc_index_t *ix, const float *query, int64_t id,
    float *score)
{
    size_t j;
    float *q;
    int rc;

    if (ix == NULL || query == NULL || score == NULL) {
        return AVC_EINVAL;
    }
    j = avc_ix_map_pos(ix, id);
    if (ix->map[j] == 0) {
        return AVC_ENOTFOUND;
    }
    q = malloc(ix->dim * sizeof(float));
    if (q == NULL) {
        return AVC_ENOMEM;
    }
    rc = avc_ix_normalise(query, ix->dim, q);
    if (rc == AVC_OK) {
        *score = avc_ix_dot_full(ix, ix->map[j] - 1, q);
    }
    free(q);
    return rc;
}

/* search */

/*
 * int8 dot products of the query with n rows of dpad bytes (a multiple of
 * 32), into out[].  The query comes sign-extended to int16 once (q16), so
 * a row costs one widening and one multiply-add per 16 bytes, summed in
 * 32-bit lanes and reduced once per row.  x86-64: SSE2 always, AVX2 where
 * the CPU has it (chosen once); elsewhere plain C.
 */
#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

__attribute__((target("avx2")))
static void
avc_ix_dots_avx2(const int16_t *q16, const int8_t *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const int8_t *b;
    __m256i acc, x, y;
    __m128i h;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = rows + r * dpad;
        acc = _mm256_setzero_si256();
        for (i = 0; i < dpad; i += 32) {
            x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)
                                                     (b + i)));
            y = _mm256_loadu_si256((const __m256i *) (q16 + i));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
            x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)
                                                     (b + i + 16)));
            y = _mm256_loadu_si256((const __m256i *) (q16 + i + 16));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
        }
        h = _mm_add_epi32(_mm256_castsi256_si128(acc),
                          _mm256_extracti128_si256(acc, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        out[r] = _mm_cvtsi128_si32(h);
    }
}

static void
avc_ix_dots_sse2(const int16_t *q16, const int8_t *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const int8_t *b;
    __m128i acc, x, lo, hi;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = rows + r * dpad;
        acc = _mm_setzero_si128();
        for (i = 0; i < dpad; i += 16) {
            x = _mm_loadu_si128((const __m128i *) (b + i));
            /* sign extension without SSE4.1: bytes into high halves */
            lo = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8);
            hi = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
            acc = _mm_add_epi32(acc, _mm_madd_epi16(lo,
                      _mm_loadu_si128((const __m128i *) (q16 + i))));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(hi,
                      _mm_loadu_si128((const __m128i *) (q16 + i + 8))));
        }
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
        out[r] = _mm_cvtsi128_si32(acc);
    }
}

static void
avc_ix_dots(const int16_t *q16, const int8_t *rows, size_t dpad, size_t n,
    int32_t *out)
{
    static int avx2 = -1;
    int have = __atomic_load_n(&avx2, __ATOMIC_RELAXED);

    if (have < 0) {
        /* racing threads all store the same answer */
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&avx2, have, __ATOMIC_RELAXED);
    }
    if (have) {
        avc_ix_dots_avx2(q16, rows, dpad, n, out);
    } else {
        avc_ix_dots_sse2(q16, rows, dpad, n, out);
    }
}

#else

static void
avc_ix_dots(const int16_t *q16, const int8_t *rows, size_t dpad, size_t n,
    int32_t *out)
{
    const int8_t *b;
    size_t r, i;
    int32_t s;

    for (r = 0; r < n; r++) {
        b = rows + r * dpad;
        s = 0;
        for (i = 0; i < dpad; i++) {
            s += (int32_t) q16[i] * b[i];
        }
        out[r] = s;
    }
}

#endif

static float
avc_ix_dot_full(const avc_index_t *ix, size_t slot, const float *q)
{
    double s = 0;
    size_t i;

    if (ix->flags & AVC_INDEX_FP16) {
        const uint16_t *v = ix->f16 + slot * ix->dim;

        for (i = 0; i < ix->dim; i++) {
            s += (double) q[i] * avc__f16_to_f32(v[i]);
        }
    } else {
        const float *v = ix->f32 + slot * ix->dim;

        for (i = 0; i < ix->dim; i++) {
            s += (double) q[i] * v[i];
        }
    }
    return (float) s;
}

/* is a worse than b?  lower score, then larger id */
static int
avc_ix_worse(const avc_ix_hit_t *a, const avc_ix_hit_t *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

/* a bounded min-heap: the root is the worst hit kept */
static void
avc_ix_heap_push(avc_ix_hit_t *h, size_t *n, size_t cap, avc_ix_hit_t x)
{
    size_t i, p, c;
    avc_ix_hit_t t;

    if (*n < cap) {
        i = (*n)++;
        h[i] = x;
        while (i > 0) {
            p = (i - 1) / 2;
            if (!avc_ix_worse(&h[i], &h[p])) {
                break;
            }
            t = h[i];
            h[i] = h[p];
            h[p] = t;
            i = p;
        }
        return;
    }
    if (!avc_ix_worse(&h[0], &x)) {
        return;
    }
    h[0] = x;
    i = 0;
    for ( ;; ) {
        c = 2 * i + 1;
        if (c >= *n) {
            break;
        }
        if (c + 1 < *n && avc_ix_worse(&h[c + 1], &h[c])) {
            c++;
        }
        if (!avc_ix_worse(&h[c], &h[i])) {
            break;
        }
        t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

static int
avc_ix_hit_cmp(const void *a, const void *b)
{
    const avc_ix_hit_t *x = a, *y = b;

    if (avc_ix_worse(y, x)) {
        return -1;
    }
    return avc_ix_worse(x, y) ? 1 : 0;
}

static int
avc_ix_tag_ok(uint32_t tag, const uint32_t *tags, size_t ntags)
{
    size_t i;

    if (ntags == 0) {
        return 1;
    }
    for (i = 0; i < ntags; i++) {
        if (tags[i] == tag) {
            return 1;
        }
    }
    return 0;
}

int
avc_index_search(const avc_index_t *ix, const float *query, size_t k,
    const uint32_t *tags, size_t ntags, int64_t *ids, float *scores,
    size_t *nout)
{
    avc_ix_hit_t *cand = NULL, *best = NULL, hit;
    size_t ncand = 0, nbest = 0, cap, i, j, run;
    int32_t dots[AVC_IX_RUN];
    int8_t *qq = NULL;
    int16_t *q16 = NULL;
    float *q = NULL;
    int rc = AVC_ENOMEM;

    if (nout) {
        *nout = 0;
    }
    if (ix == NULL || query == NULL || ids == NULL || scores == NULL
        || nout == NULL || (ntags > 0 && tags == NULL))
    {
        return AVC_EINVAL;
    }
    if (k == 0 || ix->n == 0) {
        return AVC_OK;
    }
    if (k > ix->n) {
        k = ix->n;
    }
    cap = AVC_IX_CAND_MUL * k + AVC_IX_CAND_ADD;
    if (cap < AVC_IX_CAND_MIN) {
        cap = AVC_IX_CAND_MIN;
    }
    q = malloc(ix->dim * sizeof(float));
    qq = malloc(ix->dpad);
    q16 = malloc(ix->dpad * sizeof(int16_t));
    cand = malloc(cap * sizeof(*cand));
    best = malloc(k * sizeof(*best));
    if (q == NULL || qq == NULL || q16 == NULL || cand == NULL
        || best == NULL)
    {
        goto done;
    }
    rc = avc_ix_normalise(query, ix->dim, q);
    if (rc != AVC_OK) {
        goto done;
    }

    if (ix->n <= cap) {
        /* small: every entry is a candidate */
        for (i = 0; i < ix->n; i++) {
            if (avc_ix_tag_ok(ix->tags[i], tags, ntags)) {
                cand[ncand].slot = (uint32_t) i;
                cand[ncand].id = ix->ids[i];
                cand[ncand].score = 0;
                ncand++;
            }
        }
    } else {
        /* the common scale of the query does not change the order */
        avc_ix_quantise(q, ix->dim, ix->dpad, qq);
        for (i = 0; i < ix->dpad; i++) {
            q16[i] = qq[i];
        }
        for (i = 0; i < ix->n; i += AVC_IX_RUN) {
            run = ix->n - i < AVC_IX_RUN ? ix->n - i : AVC_IX_RUN;
            avc_ix_dots(q16, ix->q8 + i * ix->dpad, ix->dpad, run, dots);
            for (j = 0; j < run; j++) {
                if (ntags && !avc_ix_tag_ok(ix->tags[i + j], tags, ntags)) {
                    continue;
                }
                hit.score = (float) dots[j] * ix->scale[i + j];
                /* most rows lose to the worst candidate kept: skip early */
                if (ncand == cap && hit.score < cand[0].score) {
                    continue;
                }
                hit.slot = (uint32_t) (i + j);
                hit.id = ix->ids[i + j];
                avc_ix_heap_push(cand, &ncand, cap, hit);
            }
        }
    }

    for (i = 0; i < ncand; i++) {
        hit = cand[i];
        hit.score = avc_ix_dot_full(ix, hit.slot, q);
        avc_ix_heap_push(best, &nbest, k, hit);
    }
    qsort(best, nbest, sizeof(*best), avc_ix_hit_cmp);
    for (i = 0; i < nbest; i++) {
        ids[i] = best[i].id;
        scores[i] = best[i].score;
    }
    *nout = nbest;
    rc = AVC_OK;

done:
    free(q);
    free(qq);
    free(q16);
    free(cand);
    free(best);
    return rc;
}
