/*
 * The in-memory vector index: a 4-bit pre-scan, int8 re-scoring of its
 * best, full-precision re-scoring of theirs.
 *
 * Layout: structure of arrays indexed by slot (0..n-1), dense; removal
 * moves the last slot into the hole, so a scan never skips holes.  The
 * quantised rows start on a cache line and cover the dimensions padded
 * with zeros to a multiple of 128, so that the dot-product kernels run
 * over whole registers without an epilogue.  An open-addressing map
 * (linear probing, backward-shift deletion) finds a slot by id.
 *
 * 4-bit rows: per block of 128 dimensions 64 bytes, byte j holding
 * dimension j in its low half and dimension 64 + j in its high half, each
 * as v + 8 (v in -7..7), so that one register of bytes gives two
 * registers of values with a mask and a shift.
 */
#include "rag_internal.h"

#include <avatarcore/index.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AVC_IX_BLOCK     128
#define AVC_IX_DIM_MAX   16384
/*
 * Candidates re-scored at full precision: cap = max(64, 2k + 32).  The
 * int8 error of a cosine is about 1e-3; real score lists are not that
 * dense at their top, so the true top k is always among these.
 */
#define AVC_IX_CAND_MIN  64
#define AVC_IX_CAND_MUL  2
#define AVC_IX_CAND_ADD  32
/*
 * Rows the 4-bit pre-scan hands to the int8 scoring: 16 cap (2,112 for
 * k = 50).  Its error is some ten times the int8 one; on the benchmark's
 * 100,000 chunks of local embeddings the float top 50 were never below
 * 4-bit rank 500 (tools/bench/retrieval checks this against an exact
 * float search on every run).  Indexes of fewer than 2 * 16 cap rows,
 * and CPUs without a SIMD 4-bit kernel, are scanned in int8 throughout.
 */
#define AVC_IX_PRE_MUL   16
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
    uint8_t *q4;                /* cap * dpad / 2, see above */
    float *scale4;              /* cap: value = (nibble - 8) * scale4 */
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
    free(ix->q4);
    free(ix->scale4);
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
    size_t per = ix->dpad + ix->dpad / 2 + 2 * sizeof(float)
                 + sizeof(int64_t)
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

/*
 * Quantised rows (size bytes each) to want entries, on a cache-line
 * boundary so that no 64-byte load of a scan straddles two lines
 * (realloc() aligns to 16).  Same failure rule as above.
 */
static int
avc_ix_resize_rows(avc_index_t *ix, void **arr, size_t size, size_t want)
{
    void *p;

    if (want > SIZE_MAX / size || posix_memalign(&p, 64, want * size) != 0) {
        if (want < ix->cap) {
            ix->cap = want;
        }
        return AVC_ENOMEM;
    }
    if (*arr) {
        memcpy(p, *arr, (ix->n < want ? ix->n : want) * size);
    }
    free(*arr);
    *arr = p;
    return AVC_OK;
}

int
avc_index_reserve(avc_index_t *ix, size_t want)
{
    void *scale = ix->scale, *scale4 = ix->scale4, *full, *ids = ix->ids;
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
    rc = avc_ix_resize_rows(ix, (void **) &ix->q8, ix->dpad, want);
    if (rc == AVC_OK) {
        rc = avc_ix_resize_rows(ix, (void **) &ix->q4, ix->dpad / 2, want);
    }
    if (rc == AVC_OK) {
        rc = avc_ix_resize(ix, &scale, sizeof(float), want);
        ix->scale = scale;
    }
    if (rc == AVC_OK) {
        rc = avc_ix_resize(ix, &scale4, sizeof(float), want);
        ix->scale4 = scale4;
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

/* the same in 4 bits, laid out as the file's comment says */
static float
avc_ix_quantise4(const float *v, size_t dim, size_t dpad, uint8_t *q)
{
    float m = 0, a, inv;
    size_t i, b, j;
    long r;

    for (i = 0; i < dim; i++) {
        a = fabsf(v[i]);
        if (a > m) {
            m = a;
        }
    }
    memset(q, 0x88, dpad / 2);
    if (m == 0) {
        return 0;
    }
    inv = 7.0f / m;
    for (i = 0; i < dim; i++) {
        r = lrintf(v[i] * inv);
        r = (r > 7 ? 7 : r < -7 ? -7 : r) + 8;
        b = i / AVC_IX_BLOCK * (AVC_IX_BLOCK / 2);
        j = i % AVC_IX_BLOCK;
        if (j < AVC_IX_BLOCK / 2) {
            q[b + j] = (uint8_t) ((q[b + j] & 0xf0) | r);
        } else {
            j -= AVC_IX_BLOCK / 2;
            q[b + j] = (uint8_t) ((q[b + j] & 0x0f) | r << 4);
        }
    }
    return m / 7.0f;
}

static void
avc_ix_store(avc_index_t *ix, size_t slot, int64_t id, uint32_t tag,
    const float *unit)
{
    size_t i;

    ix->scale[slot] = avc_ix_quantise(unit, ix->dim, ix->dpad,
                                      ix->q8 + slot * ix->dpad);
    ix->scale4[slot] = avc_ix_quantise4(unit, ix->dim, ix->dpad,
                                        ix->q4 + slot * (ix->dpad / 2));
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
        memcpy(ix->q4 + slot * (ix->dpad / 2), ix->q4 + last * (ix->dpad / 2),
               ix->dpad / 2);
        ix->scale4[slot] = ix->scale4[last];
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
 * The query as the scan kernels take it, each array dpad long: the int8
 * quantisation and the forms that some kernels want instead.
 */
typedef struct {
    const int8_t *q8;
    const uint8_t *qabs;        /* |q8| */
    const int16_t *q16;         /* q8 widened */
    int32_t bias;               /* 128 * the sum of q8 */
    int32_t bias4;              /* 8 * the sum of q8 */
} avc_ix_query_t;

/*
 * The dot products of the query with n rows, into out[]: of int8 rows of
 * dpad bytes, or of 4-bit rows of dpad / 2 bytes.
 */
typedef void (*avc_ix_dots_pt)(const avc_ix_query_t *qz, const void *rows,
    size_t dpad, size_t n, int32_t *out);

/*
 * Plain C, for other machines and as the reference of the tests.  Every
 * kernel gives exactly these: quantisation never produces -128, so no
 * product or partial sum below can saturate or overflow (dim <= 16384).
 */
static void
avc_ix_dots_c(const avc_ix_query_t *qz, const void *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const int8_t *b;
    size_t r, i;
    int32_t s;

    for (r = 0; r < n; r++) {
        b = (const int8_t *) rows + r * dpad;
        s = 0;
        for (i = 0; i < dpad; i++) {
            s += (int32_t) qz->q8[i] * b[i];
        }
        out[r] = s;
    }
}

static void
avc_ix_dots4_c(const avc_ix_query_t *qz, const void *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const size_t half = AVC_IX_BLOCK / 2;
    const uint8_t *b;
    size_t r, i, j;
    int32_t s;

    for (r = 0; r < n; r++) {
        b = (const uint8_t *) rows + r * (dpad / 2);
        s = 0;
        for (i = 0; i < dpad; i += AVC_IX_BLOCK) {
            for (j = 0; j < half; j++, b++) {
                s += (int32_t) qz->q8[i + j] * (*b & 0x0f)
                     + (int32_t) qz->q8[i + half + j] * (*b >> 4);
            }
        }
        out[r] = s - qz->bias4;
    }
}

/*
 * x86-64: the widest kernels the CPU has, chosen once.  A scan reads
 * every row and is bound by memory bandwidth once a register of bytes
 * costs about one multiply-add instruction, which is what these do: on
 * 100,000 rows of 512 dimensions about 2 ms for int8 here and half that
 * for 4 bits, where widening int8 to 16 bits first took 4.
 */
#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#if defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11
#define AVC_IX_AVXVNNI  1
#endif

/*
 * vpdpbusd multiplies unsigned bytes by signed ones and adds each four
 * products into a 32-bit lane, exactly.  int8 rows are signed: flipping
 * their top bit gives v + 128 as an unsigned byte, so the sum is
 * q.v + 128 sum(q), and the bias goes once per row.  4-bit rows hold
 * v + 8 already.
 */
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void
avc_ix_dots_vnni512(const avc_ix_query_t *qz, const void *rows,
    size_t dpad, size_t n, int32_t *out)
{
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    const int8_t *b;
    __m512i acc, x;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = (const int8_t *) rows + r * dpad;
        acc = _mm512_setzero_si512();
        for (i = 0; i < dpad; i += 64) {
            x = _mm512_xor_si512(_mm512_loadu_si512((const void *) (b + i)),
                                 flip);
            acc = _mm512_dpbusd_epi32(acc, x,
                      _mm512_loadu_si512((const void *) (qz->q8 + i)));
        }
        out[r] = _mm512_reduce_add_epi32(acc) - qz->bias;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void
avc_ix_dots4_vnni512(const avc_ix_query_t *qz, const void *rows,
    size_t dpad, size_t n, int32_t *out)
{
    const __m512i low = _mm512_set1_epi8(0x0f);
    const uint8_t *b;
    __m512i acc0, acc1, x;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = (const uint8_t *) rows + r * (dpad / 2);
        acc0 = _mm512_setzero_si512();
        acc1 = _mm512_setzero_si512();
        for (i = 0; i < dpad; i += 128) {
            x = _mm512_loadu_si512((const void *) (b + i / 2));
            acc0 = _mm512_dpbusd_epi32(acc0, _mm512_and_si512(x, low),
                       _mm512_loadu_si512((const void *) (qz->q8 + i)));
            acc1 = _mm512_dpbusd_epi32(acc1,
                       _mm512_and_si512(_mm512_srli_epi16(x, 4), low),
                       _mm512_loadu_si512((const void *) (qz->q8 + i + 64)));
        }
        out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1))
                 - qz->bias4;
    }
}

#ifdef AVC_IX_AVXVNNI

/* the same with the 256-bit VEX encoding (CPUs without AVX-512) */
__attribute__((target("avx2,avxvnni")))
static void
avc_ix_dots_vnni256(const avc_ix_query_t *qz, const void *rows,
    size_t dpad, size_t n, int32_t *out)
{
    const __m256i flip = _mm256_set1_epi8((char) 0x80);
    const int8_t *b;
    __m256i acc0, acc1, x, y;
    __m128i h;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = (const int8_t *) rows + r * dpad;
        acc0 = _mm256_setzero_si256();
        acc1 = _mm256_setzero_si256();
        for (i = 0; i < dpad; i += 64) {
            x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)
                                                    (b + i)), flip);
            y = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)
                                                    (b + i + 32)), flip);
            acc0 = _mm256_dpbusd_avx_epi32(acc0, x,
                       _mm256_loadu_si256((const __m256i *) (qz->q8 + i)));
            acc1 = _mm256_dpbusd_avx_epi32(acc1, y,
                       _mm256_loadu_si256((const __m256i *)
                                          (qz->q8 + i + 32)));
        }
        acc0 = _mm256_add_epi32(acc0, acc1);
        h = _mm_add_epi32(_mm256_castsi256_si128(acc0),
                          _mm256_extracti128_si256(acc0, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        out[r] = _mm_cvtsi128_si32(h) - qz->bias;
    }
}

#endif

/*
 * vpmaddubsw multiplies unsigned by signed bytes and adds pairs into
 * saturating 16-bit lanes: with |q| as the unsigned operand and the row's
 * bytes carrying q's sign (vpsignb), a pair is at most 2 * 127 * 127 and
 * never saturates; vpmaddwd by ones then widens to 32 bits.
 */
__attribute__((target("avx2")))
static void
avc_ix_dots_avx2(const avc_ix_query_t *qz, const void *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const int8_t *b;
    __m256i acc0, acc1, x, y, s;
    __m128i h;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = (const int8_t *) rows + r * dpad;
        acc0 = _mm256_setzero_si256();
        acc1 = _mm256_setzero_si256();
        for (i = 0; i < dpad; i += 64) {
            s = _mm256_loadu_si256((const __m256i *) (qz->q8 + i));
            x = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)
                                                    (b + i)), s);
            x = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)
                                                        (qz->qabs + i)), x);
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(x, ones));
            s = _mm256_loadu_si256((const __m256i *) (qz->q8 + i + 32));
            y = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)
                                                    (b + i + 32)), s);
            y = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)
                                                     (qz->qabs + i + 32)),
                                     y);
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(y, ones));
        }
        acc0 = _mm256_add_epi32(acc0, acc1);
        h = _mm_add_epi32(_mm256_castsi256_si128(acc0),
                          _mm256_extracti128_si256(acc0, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        out[r] = _mm_cvtsi128_si32(h);
    }
}

/*
 * 4 bits: nibbles (at most 15) times q bytes, pairs at most 2 * 15 * 127,
 * so the four products of a 128-dimension block add up in 16 bits.
 */
__attribute__((target("avx2")))
static void
avc_ix_dots4_avx2(const avc_ix_query_t *qz, const void *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    const uint8_t *b;
    const int8_t *q;
    __m256i acc, x, y, s;
    __m128i h;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = (const uint8_t *) rows + r * (dpad / 2);
        acc = _mm256_setzero_si256();
        for (i = 0; i < dpad; i += 128) {
            q = qz->q8 + i;
            x = _mm256_loadu_si256((const __m256i *) (b + i / 2));
            y = _mm256_loadu_si256((const __m256i *) (b + i / 2 + 32));
            s = _mm256_maddubs_epi16(_mm256_and_si256(x, low),
                    _mm256_loadu_si256((const __m256i *) q));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(
                    _mm256_and_si256(y, low),
                    _mm256_loadu_si256((const __m256i *) (q + 32))));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(
                    _mm256_and_si256(_mm256_srli_epi16(x, 4), low),
                    _mm256_loadu_si256((const __m256i *) (q + 64))));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(
                    _mm256_and_si256(_mm256_srli_epi16(y, 4), low),
                    _mm256_loadu_si256((const __m256i *) (q + 96))));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, ones));
        }
        h = _mm_add_epi32(_mm256_castsi256_si128(acc),
                          _mm256_extracti128_si256(acc, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        out[r] = _mm_cvtsi128_si32(h) - qz->bias4;
    }
}

/* the x86-64 baseline: widen to 16 bits (no SSSE3 for the above) */
static void
avc_ix_dots_sse2(const avc_ix_query_t *qz, const void *rows, size_t dpad,
    size_t n, int32_t *out)
{
    const int8_t *b;
    __m128i acc, x, lo, hi;
    size_t r, i;

    for (r = 0; r < n; r++) {
        b = (const int8_t *) rows + r * dpad;
        acc = _mm_setzero_si128();
        for (i = 0; i < dpad; i += 16) {
            x = _mm_loadu_si128((const __m128i *) (b + i));
            /* sign extension without SSE4.1: bytes into high halves */
            lo = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8);
            hi = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
            acc = _mm_add_epi32(acc, _mm_madd_epi16(lo,
                      _mm_loadu_si128((const __m128i *) (qz->q16 + i))));
            acc = _mm_add_epi32(acc, _mm_madd_epi16(hi,
                      _mm_loadu_si128((const __m128i *) (qz->q16 + i + 8))));
        }
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
        out[r] = _mm_cvtsi128_si32(acc);
    }
}

static int
avc_ix_cpu_has(const char *name)
{
    __builtin_cpu_init();
    if (strcmp(name, "avx512vnni") == 0) {
        return __builtin_cpu_supports("avx512vnni")
               && __builtin_cpu_supports("avx512bw");
    }
#ifdef AVC_IX_AVXVNNI
    if (strcmp(name, "avxvnni") == 0) {
        return __builtin_cpu_supports("avxvnni")
               && __builtin_cpu_supports("avx2");
    }
#endif
    if (strcmp(name, "avx2") == 0) {
        return __builtin_cpu_supports("avx2");
    }
    return 1;
}

#else

static int
avc_ix_cpu_has(const char *name)
{
    return 1;
}

#endif

/*
 * The kernels, best first.  Without a SIMD 4-bit kernel there is no
 * pre-scan: it would cost as much as the int8 scan it saves.
 */
typedef struct {
    const char *name;
    avc_ix_dots_pt dots;
    avc_ix_dots_pt dots4;       /* NULL: no pre-scan */
} avc_ix_kernel_t;

static const avc_ix_kernel_t avc_ix_kernels[] = {
#if defined(__x86_64__) && defined(__GNUC__)
    { "avx512vnni", avc_ix_dots_vnni512, avc_ix_dots4_vnni512 },
#ifdef AVC_IX_AVXVNNI
    { "avxvnni", avc_ix_dots_vnni256, avc_ix_dots4_avx2 },
#endif
    { "avx2", avc_ix_dots_avx2, avc_ix_dots4_avx2 },
    { "sse2", avc_ix_dots_sse2, NULL },
#endif
    { "c", avc_ix_dots_c, NULL }
};

static const avc_ix_kernel_t *avc_ix_kernel_now;

/* the best kernel this CPU runs; racing threads store the same answer */
static const avc_ix_kernel_t *
avc_ix_kernel(void)
{
    const avc_ix_kernel_t *k;
    size_t i;

    k = __atomic_load_n(&avc_ix_kernel_now, __ATOMIC_RELAXED);
    if (k == NULL) {
        for (i = 0; k == NULL; i++) {
            if (avc_ix_cpu_has(avc_ix_kernels[i].name)) {
                k = &avc_ix_kernels[i];
            }
        }
        __atomic_store_n(&avc_ix_kernel_now, k, __ATOMIC_RELAXED);
    }
    return k;
}

/*
 * Tests: use the kernels called name ("avx512vnni", "avxvnni", "avx2",
 * "sse2", "c"), NULL for the best; "c4" is "c" with the C 4-bit kernel
 * and so a pre-scan.  AVC_ENOTFOUND when this build or CPU has no such
 * kernel.  Not while searches run.
 */
int
avc__index_kernel(const char *name)
{
    static const avc_ix_kernel_t c4 = { "c4", avc_ix_dots_c, avc_ix_dots4_c };
    const avc_ix_kernel_t *k = NULL;
    size_t i;

    if (name != NULL && strcmp(name, "c4") == 0) {
        k = &c4;
    }
    for (i = 0; name != NULL && k == NULL && i < avc__countof(avc_ix_kernels);
         i++)
    {
        if (strcmp(avc_ix_kernels[i].name, name) == 0
            && avc_ix_cpu_has(name))
        {
            k = &avc_ix_kernels[i];
        }
    }
    if (name != NULL && k == NULL) {
        return AVC_ENOTFOUND;
    }
    __atomic_store_n(&avc_ix_kernel_now, k, __ATOMIC_RELAXED);
    return AVC_OK;
}

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

/*
 * Partial selection: move the m best of h[0..n) to the front, in no
 * order (quickselect, median of three; expected linear time).
 */
static void
avc_ix_select(avc_ix_hit_t *h, size_t n, size_t m)
{
    size_t lo = 0, hi = n, i, j, mid;
    avc_ix_hit_t pivot, t;

    while (hi - lo > 2 && m > lo && m < hi) {
        mid = lo + (hi - lo) / 2;
        /* the median of three at mid */
        if (avc_ix_worse(&h[lo], &h[mid])) {
            t = h[lo]; h[lo] = h[mid]; h[mid] = t;
        }
        if (avc_ix_worse(&h[mid], &h[hi - 1])) {
            t = h[mid]; h[mid] = h[hi - 1]; h[hi - 1] = t;
            if (avc_ix_worse(&h[lo], &h[mid])) {
                t = h[lo]; h[lo] = h[mid]; h[mid] = t;
            }
        }
        pivot = h[mid];
        /* Hoare: better than the pivot to the left, worse to the right */
        i = lo;
        j = hi - 1;
        for ( ;; ) {
            while (avc_ix_worse(&pivot, &h[i])) {
                i++;
            }
            while (avc_ix_worse(&h[j], &pivot)) {
                j--;
            }
            if (i >= j) {
                break;
            }
            t = h[i]; h[i] = h[j]; h[j] = t;
            i++;
            j--;
        }
        /* h[lo..j] are at least as good as h[j+1..hi), lo <= j < hi - 1 */
        if (m <= j + 1) {
            hi = j + 1;
        } else {
            lo = j + 1;
        }
    }
    if (hi - lo == 2 && m == lo + 1 && avc_ix_worse(&h[lo], &h[lo + 1])) {
        t = h[lo]; h[lo] = h[lo + 1]; h[lo + 1] = t;
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

/* the unit query q for the kernels, in buffers of dpad entries */
static void
avc_ix_query(const avc_index_t *ix, const float *q, int8_t *q8,
    uint8_t *qabs, int16_t *q16, avc_ix_query_t *qz)
{
    int32_t sum = 0;
    size_t i;

    /* the common scale of the query does not change the order */
    avc_ix_quantise(q, ix->dim, ix->dpad, q8);
    for (i = 0; i < ix->dpad; i++) {
        q16[i] = q8[i];
        qabs[i] = (uint8_t) (q8[i] < 0 ? -q8[i] : q8[i]);
        sum += q8[i];
    }
    qz->q8 = q8;
    qz->qabs = qabs;
    qz->q16 = q16;
    qz->bias = 128 * sum;
    qz->bias4 = 8 * sum;
}

/*
 * Tests: the int8 (bits 8) or 4-bit (bits 4) scores of query with every
 * entry (dot products times the rows' scales, in units of the query's
 * int8 step), in slot order, by the current kernels; AVC_ENOTFOUND when
 * they have no 4-bit one.  out has room for avc_index_size() values.
 */
int
avc__index_scan(const avc_index_t *ix, const float *query, int bits,
    float *out)
{
    const avc_ix_kernel_t *k = avc_ix_kernel();
    avc_ix_query_t qz;
    unsigned char *mem;
    int32_t *dots;
    size_t i;
    float *q;
    int rc;

    if (bits == 4 && k->dots4 == NULL) {
        return AVC_ENOTFOUND;
    }
    mem = malloc(ix->dim * sizeof(float) + ix->dpad * (sizeof(int16_t) + 2)
                 + ix->n * sizeof(int32_t));
    if (mem == NULL) {
        return AVC_ENOMEM;
    }
    q = (float *) mem;
    dots = (int32_t *) ((unsigned char *) (q + ix->dim) + ix->dpad * 4);
    rc = avc_ix_normalise(query, ix->dim, q);
    if (rc == AVC_OK) {
        avc_ix_query(ix, q, (int8_t *) (q + ix->dim) + ix->dpad * 2,
                     (uint8_t *) (q + ix->dim) + ix->dpad * 3,
                     (int16_t *) (q + ix->dim), &qz);
        if (bits == 4) {
            k->dots4(&qz, ix->q4, ix->dpad, ix->n, dots);
        } else {
            k->dots(&qz, ix->q8, ix->dpad, ix->n, dots);
        }
        for (i = 0; i < ix->n; i++) {
            out[i] = (float) dots[i] * (bits == 4 ? ix->scale4[i]
                                                  : ix->scale[i]);
        }
    }
    free(mem);
    return rc;
}

/*
 * The buffers of a search live on the stack up to this size (the int8
 * path of k 50 up to 3,072 dimensions), else in one allocation (the
 * pre-scan's 4,000 hits for k 50).
 */
#define AVC_IX_STACK  32768

int
avc_index_search(const avc_index_t *ix, const float *query, size_t k,
    const uint32_t *tags, size_t ntags, int64_t *ids, float *scores,
    size_t *nout)
{
    _Alignas(64) unsigned char stack[AVC_IX_STACK];
    avc_ix_hit_t *pre, *cand, *best, hit;
    size_t npre = 0, ncand = 0, nbest = 0, cap, mpre, i, j, k2, run, need;
    const avc_ix_kernel_t *kern;
    int32_t dots[AVC_IX_RUN];
    avc_ix_query_t qz;
    unsigned char *mem, *heap = NULL;
    int8_t *q8;
    uint8_t *qabs;
    int16_t *q16;
    float *q, floor;
    int rc;

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
    kern = avc_ix_kernel();
    mpre = kern->dots4 && ix->n > 2 * AVC_IX_PRE_MUL * cap
           ? AVC_IX_PRE_MUL * cap : 0;
    /* hits first (8-byte aligned), then floats, int16s and bytes */
    need = (2 * mpre + cap + k) * sizeof(avc_ix_hit_t)
           + ix->dim * sizeof(float) + ix->dpad * (sizeof(int16_t) + 2);
    mem = stack;
    if (need > sizeof(stack)) {
        heap = malloc(need);
        if (heap == NULL) {
            return AVC_ENOMEM;
        }
        mem = heap;
    }
    pre = (avc_ix_hit_t *) mem;
    cand = pre + 2 * mpre;
    best = cand + cap;
    q = (float *) (best + k);
    q16 = (int16_t *) (q + ix->dim);
    q8 = (int8_t *) (q16 + ix->dpad);
    qabs = (uint8_t *) (q8 + ix->dpad);

    rc = avc_ix_normalise(query, ix->dim, q);
    if (rc != AVC_OK) {
        goto done;
    }
    avc_ix_query(ix, q, q8, qabs, q16, &qz);

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
    } else if (mpre == 0) {
        /* every row in int8 */
        floor = -INFINITY;
        for (i = 0; i < ix->n; i += AVC_IX_RUN) {
            run = ix->n - i < AVC_IX_RUN ? ix->n - i : AVC_IX_RUN;
            kern->dots(&qz, ix->q8 + i * ix->dpad, ix->dpad, run, dots);
            for (j = 0; j < run; j++) {
                hit.score = (float) dots[j] * ix->scale[i + j];
                /* most rows lose to the worst candidate kept: skip early */
                if (hit.score < floor) {
                    continue;
                }
                if (ntags && !avc_ix_tag_ok(ix->tags[i + j], tags, ntags)) {
                    continue;
                }
                hit.slot = (uint32_t) (i + j);
                hit.id = ix->ids[i + j];
                avc_ix_heap_push(cand, &ncand, cap, hit);
                if (ncand == cap) {
                    floor = cand[0].score;
                }
            }
        }
    } else {
        /*
         * Every row in 4 bits, the best mpre of them in int8.  Rows
         * above the floor collect in pre (room for 2 mpre); when it is
         * full, a partial selection keeps the best mpre and the worst of
         * those becomes the floor: linear time, where a heap of 2,000
         * cost a third of the scan.
         */
        floor = -INFINITY;
        for (i = 0; i < ix->n; i += AVC_IX_RUN) {
            run = ix->n - i < AVC_IX_RUN ? ix->n - i : AVC_IX_RUN;
            kern->dots4(&qz, ix->q4 + i * (ix->dpad / 2), ix->dpad, run,
                        dots);
            for (j = 0; j < run; j++) {
                hit.score = (float) dots[j] * ix->scale4[i + j];
                if (hit.score < floor) {
                    continue;
                }
                if (ntags && !avc_ix_tag_ok(ix->tags[i + j], tags, ntags)) {
                    continue;
                }
                if (npre == 2 * mpre) {
                    avc_ix_select(pre, npre, mpre);
                    npre = mpre;
                    floor = pre[0].score;
                    for (k2 = 1; k2 < npre; k2++) {
                        if (pre[k2].score < floor) {
                            floor = pre[k2].score;
                        }
                    }
                    if (hit.score < floor) {
                        continue;
                    }
                }
                pre[npre].score = hit.score;
                pre[npre].slot = (uint32_t) (i + j);
                pre[npre].id = ix->ids[i + j];
                npre++;
            }
        }
        if (npre > mpre) {
            avc_ix_select(pre, npre, mpre);
            npre = mpre;
        }
        for (i = 0; i < npre; i++) {
            hit = pre[i];
            kern->dots(&qz, ix->q8 + (size_t) hit.slot * ix->dpad, ix->dpad,
                       1, dots);
            hit.score = (float) dots[0] * ix->scale[hit.slot];
            avc_ix_heap_push(cand, &ncand, cap, hit);
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
    free(heap);
    return rc;
}
