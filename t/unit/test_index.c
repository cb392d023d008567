/*
 * The vector index: exact top-k (after re-scoring) equals a brute-force
 * float search on random data, removal, tags, half precision.
 *
 *   build/t/test_index
 */
#include "tap.h"

#include <avatarcore/index.h>
#include "../../libavatarcore/src/rag/rag_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* a small deterministic generator (xorshift64*) */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* roughly normal: the sum of four uniforms, centred */
static float
rng_gauss(void)
{
    double s = 0;
    int i;

    for (i = 0; i < 4; i++) {
        s += (double) (rng() >> 11) / 9007199254740992.0;
    }
    return (float) (s - 2.0);
}

static void
rand_vec(float *v, size_t dim)
{
    size_t i;

    for (i = 0; i < dim; i++) {
        v[i] = rng_gauss();
    }
}

static double
cosine(const float *a, const float *b, size_t dim)
{
    double d = 0, na = 0, nb = 0;
    size_t i;

    for (i = 0; i < dim; i++) {
        d += (double) a[i] * b[i];
        na += (double) a[i] * a[i];
        nb += (double) b[i] * b[i];
    }
    return na > 0 && nb > 0 ? d / sqrt(na) / sqrt(nb) : 0;
}

typedef struct {
    double score;
    int64_t id;
} hit_t;

static int
hit_cmp(const void *a, const void *b)
{
    const hit_t *x = a, *y = b;

    if (x->score != y->score) {
        return x->score > y->score ? -1 : 1;
    }
    return x->id < y->id ? -1 : x->id > y->id;
}

/* brute force over live entries (ids[i] >= 0), tags optional */
static size_t
brute(const float *vecs, const int64_t *ids, const uint32_t *tags, size_t n,
    size_t dim, const float *q, size_t k, const uint32_t *want,
    size_t nwant, hit_t *out)
{
    hit_t *all = malloc(n * sizeof(*all));
    size_t i, j, m = 0;
    int ok;

    for (i = 0; i < n; i++) {
        if (ids[i] < 0) {
            continue;
        }
        ok = nwant == 0;
        for (j = 0; j < nwant; j++) {
            ok |= tags[i] == want[j];
        }
        if (!ok) {
            continue;
        }
        all[m].id = ids[i];
        all[m].score = cosine(q, vecs + i * dim, dim);
        m++;
    }
    qsort(all, m, sizeof(*all), hit_cmp);
    if (m > k) {
        m = k;
    }
    memcpy(out, all, m * sizeof(*out));
    free(all);
    return m;
}

/* searches of random queries agree with brute force; mismatches counted */
static int
compare(avc_index_t *ix, const float *vecs, const int64_t *ids,
    const uint32_t *tags, size_t n, size_t dim, size_t k, int queries,
    const uint32_t *want, size_t nwant, double *max_err)
{
    int64_t got_ids[64];
    float got[64], *q = malloc(dim * sizeof(float));
    hit_t exp[64];
    size_t m, e, i;
    int qn, bad = 0;

    *max_err = 0;
    for (qn = 0; qn < queries; qn++) {
        rand_vec(q, dim);
        if (avc_index_search(ix, q, k, want, nwant, got_ids, got, &m)
            != AVC_OK)
        {
            bad++;
            continue;
        }
        e = brute(vecs, ids, tags, n, dim, q, k, want, nwant, exp);
        if (m != e) {
            bad++;
            continue;
        }
        for (i = 0; i < m; i++) {
            if (got_ids[i] != exp[i].id) {
                bad++;
                break;
            }
            if (fabs(got[i] - exp[i].score) > *max_err) {
                *max_err = fabs(got[i] - exp[i].score);
            }
        }
    }
    free(q);
    return bad;
}

static void
test_exact(size_t n, size_t dim)
{
    float *vecs = malloc(n * dim * sizeof(float));
    int64_t *ids = malloc(n * sizeof(int64_t));
    uint32_t *tags = malloc(n * sizeof(uint32_t));
    avc_index_t *ix = avc_index_new(dim, 0);
    size_t i, k;
    double err;
    int rc = AVC_OK;

    for (i = 0; i < n; i++) {
        rand_vec(vecs + i * dim, dim);
        ids[i] = (int64_t) (1000 + i * 7);
        tags[i] = (uint32_t) (i % 5);
        rc |= avc_index_add(ix, ids[i], tags[i], vecs + i * dim);
    }
    TAP_IS(rc, AVC_OK, "n=%zu dim=%zu: all added", n, dim);
    TAP_IS(avc_index_size(ix), n, "size is %zu", n);
    for (k = 1; k <= 10; k += k < 5 ? 4 : 5) {
        TAP_IS(compare(ix, vecs, ids, tags, n, dim, k, 25, NULL, 0, &err), 0,
               "n=%zu dim=%zu k=%zu: int8 scan + re-scoring = brute-force "
               "float top-k (25 queries)", n, dim, k);
        TAP_OK(err < 1e-5, "scores are the float cosines (max error %.2g)",
               err);
    }
    avc_index_free(ix);
    free(vecs);
    free(ids);
    free(tags);
}

static void
test_remove_and_tags(void)
{
    size_t n = 3000, dim = 96, i, m;
    float *vecs = malloc(n * dim * sizeof(float)), *v;
    int64_t *ids = malloc(n * sizeof(int64_t)), got_ids[10];
    uint32_t *tags = malloc(n * sizeof(uint32_t)), want[2] = { 1, 3 }, tag;
    avc_index_t *ix = avc_index_new(dim, 0);
    float got[10], s;
    double err;
    int rc = AVC_OK, removed_seen = 0, qn;

    for (i = 0; i < n; i++) {
        rand_vec(vecs + i * dim, dim);
        ids[i] = (int64_t) i + 1;
        tags[i] = (uint32_t) (i % 4);
        rc |= avc_index_add(ix, ids[i], tags[i], vecs + i * dim);
    }
    TAP_IS(rc, AVC_OK, "3000 vectors added");
    TAP_IS(compare(ix, vecs, ids, tags, n, dim, 10, 20, want, 2, &err), 0,
           "tag filter {1,3}: equals brute force on the filtered set");

    /* remove every third entry */
    rc = AVC_OK;
    for (i = 0; i < n; i += 3) {
        rc |= avc_index_remove(ix, ids[i]);
        ids[i] = -1;
    }
    TAP_IS(rc, AVC_OK, "every third removed");
    TAP_IS(avc_index_size(ix), n - (n + 2) / 3, "size after removal");
    TAP_IS(avc_index_remove(ix, 1), AVC_ENOTFOUND,
           "removing a removed id: AVC_ENOTFOUND");
    TAP_IS(avc_index_remove(ix, 999999), AVC_ENOTFOUND,
           "removing an unknown id: AVC_ENOTFOUND");
    TAP_OK(!avc_index_contains(ix, 1, NULL) && avc_index_contains(ix, 2, &tag)
           && tag == 1, "contains() follows removals, tags kept");
    TAP_IS(compare(ix, vecs, ids, tags, n, dim, 10, 20, NULL, 0, &err), 0,
           "after removal: equals brute force over what is left");

    /* a removed vector as the query: never returned */
    for (qn = 0; qn < 30; qn++) {
        v = vecs + (size_t) (qn * 3) * dim;
        avc_index_search(ix, v, 10, NULL, 0, got_ids, got, &m);
        for (i = 0; i < m; i++) {
            removed_seen |= (got_ids[i] - 1) % 3 == 0;
        }
    }
    TAP_OK(!removed_seen, "removed entries are never returned, even for "
           "their own vector");

    /* replacing a vector under an existing id */
    v = vecs + 1 * dim;
    TAP_IS(avc_index_add(ix, 2, 9, vecs + 4 * dim), AVC_OK,
           "re-adding id 2 with another vector");
    TAP_OK(avc_index_score(ix, vecs + 4 * dim, 2, &s) == AVC_OK
           && fabs(s - 1.0) < 1e-5, "id 2 now holds the new vector (%f)",
           s);
    TAP_OK(avc_index_contains(ix, 2, &tag) && tag == 9, "and the new tag");
    TAP_IS(avc_index_size(ix), n - (n + 2) / 3, "size unchanged");
    avc_index_add(ix, 2, 1, v);

    /* removing everything, then adding again */
    rc = AVC_OK;
    for (i = 0; i < n; i++) {
        if (ids[i] >= 0) {
            rc |= avc_index_remove(ix, ids[i]);
        }
    }
    TAP_OK(rc == AVC_OK && avc_index_size(ix) == 0, "emptied");
    TAP_IS(avc_index_search(ix, vecs, 5, NULL, 0, got_ids, got, &m), AVC_OK,
           "searching an empty index");
    TAP_IS(m, 0, "finds nothing");
    TAP_IS(avc_index_add(ix, 42, 0, vecs), AVC_OK, "adding after emptying");
    avc_index_search(ix, vecs, 5, NULL, 0, got_ids, got, &m);
    TAP_OK(m == 1 && got_ids[0] == 42, "and finding it");
    avc_index_free(ix);
    free(vecs);
    free(ids);
    free(tags);
}

static void
test_fp16(void)
{
    size_t n = 2000, dim = 128, i, m, e, k = 10, overlap = 0, j, l;
    float *vecs = malloc(n * dim * sizeof(float)), q[128], got[10];
    int64_t *ids = malloc(n * sizeof(int64_t)), got_ids[10];
    uint32_t *tags = calloc(n, sizeof(uint32_t));
    avc_index_t *ix = avc_index_new(dim, AVC_INDEX_FP16);
    avc_index_t *fx = avc_index_new(dim, 0);
    double err = 0;
    hit_t exp[10];
    int qn;

    for (i = 0; i < n; i++) {
        rand_vec(vecs + i * dim, dim);
        ids[i] = (int64_t) i + 1;
        avc_index_add(ix, ids[i], 0, vecs + i * dim);
        avc_index_add(fx, ids[i], 0, vecs + i * dim);
    }
    for (qn = 0; qn < 30; qn++) {
        rand_vec(q, dim);
        avc_index_search(ix, q, k, NULL, 0, got_ids, got, &m);
        e = brute(vecs, ids, tags, n, dim, q, k, NULL, 0, exp);
        for (j = 0; j < m && j < e; j++) {
            for (l = 0; l < e; l++) {
                overlap += got_ids[j] == exp[l].id;
            }
            for (l = 0; l < e; l++) {
                if (got_ids[j] == exp[l].id
                    && fabs(got[j] - exp[l].score) > err)
                {
                    err = fabs(got[j] - exp[l].score);
                }
            }
        }
    }
    TAP_OK(overlap >= 30 * k * 98 / 100, "fp16 re-scoring: top-10 sets "
           "agree with float (%zu of %zu)", overlap, 30 * k);
    TAP_OK(err < 2e-3, "fp16 scores within 2e-3 of float (%.2g)", err);
    TAP_OK(avc_index_memory(ix) < avc_index_memory(fx) * 7 / 10,
           "fp16 takes less memory (%zu vs %zu bytes)",
           avc_index_memory(ix), avc_index_memory(fx));
    avc_index_free(ix);
    avc_index_free(fx);
    free(vecs);
    free(ids);
    free(tags);
}

static void
test_half(void)
{
    static const float vals[] = { 0.0f, 1.0f, -1.0f, 0.5f, 0.333333f,
                                  -0.0001f, 65504.0f, 1e-6f, 6.1e-5f };
    size_t i;
    int ok = 1;
    float back;

    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        back = avc__f16_to_f32(avc__f32_to_f16(vals[i]));
        if (fabsf(back - vals[i]) > fabsf(vals[i]) / 1024 + 6e-8f) {
            ok = 0;
            printf("# %g -> %g\n", vals[i], back);
        }
    }
    TAP_OK(ok, "half precision round trips within its precision");
    TAP_OK(isinf(avc__f16_to_f32(avc__f32_to_f16(1e6f))),
           "overflow becomes infinity");
    TAP_IS(avc__f32_to_f16(1.0f), 0x3c00, "1.0 is 0x3c00");
}

static void
test_edges(void)
{
    avc_index_t *ix;
    float v[8] = { 1, 0, 0, 0, 0, 0, 0, 0 }, z[8] = { 0 }, got[4];
    float bad[8] = { NAN, 0, 0, 0, 0, 0, 0, 0 }, s;
    int64_t ids[4];
    size_t m;

    TAP_OK(avc_index_new(0, 0) == NULL, "dim 0 refused");
    TAP_OK(avc_index_new(20000, 0) == NULL, "dim 20000 refused");
    ix = avc_index_new(8, 0);
    TAP_OK(ix != NULL && avc_index_dim(ix) == 8, "dim 8");
    TAP_IS(avc_index_add(ix, 1, 0, bad), AVC_EINVAL, "NaN refused");
    TAP_IS(avc_index_add(ix, 1, 0, z), AVC_OK, "a zero vector is accepted");
    TAP_IS(avc_index_add(ix, 2, 0, v), AVC_OK, "a unit vector");
    TAP_IS(avc_index_search(ix, v, 4, NULL, 0, ids, got, &m), AVC_OK,
           "search");
    TAP_OK(m == 2 && ids[0] == 2 && fabs(got[0] - 1) < 1e-6 && ids[1] == 1
           && got[1] == 0, "the zero vector scores 0, last");
    TAP_IS(avc_index_search(ix, v, 0, NULL, 0, ids, got, &m), AVC_OK,
           "k = 0");
    TAP_IS(m, 0, "finds nothing");
    TAP_IS(avc_index_score(ix, v, 3, &s), AVC_ENOTFOUND,
           "score of an unknown id");
    TAP_IS(avc_index_search(NULL, v, 4, NULL, 0, ids, got, &m), AVC_EINVAL,
           "NULL index");
    avc_index_free(ix);
    avc_index_free(NULL);
    TAP_OK(1, "free(NULL) is a no-op");
}

/*
 * Every scan kernel this CPU runs gives exactly the scores of the plain C
 * ones, int8 and 4-bit, for dimensions that fill registers partly or not
 * at all, and for extreme rows (every byte +-127, where a kernel whose
 * 16-bit pairs saturated would fall short); the 4-bit scores approximate
 * the cosines (a layout mixing up dimensions would not); and searches
 * give the same results whatever the kernels.
 */
static void
test_kernels(void)
{
    static const char *const names[] = {
        "avx512vnni", "avxvnni", "avx2", "sse2"
    };
    static const size_t dims[] = { 8, 32, 96, 200, 512, 1536 };
    size_t n = 300, d, dim, i, j, kn, m, ran = 0, bits;
    float *want[2], *got, *vecs, *q, sc[2][10], qmax;
    double err8, err4, c;
    int64_t id[2][10];
    avc_index_t *ix;
    int same, search_same;

    TAP_IS(avc__index_kernel("c"), AVC_OK, "the C kernel is always there");
    TAP_IS(avc__index_kernel("mmx"), AVC_ENOTFOUND, "an unknown kernel");
    for (d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        dim = dims[d];
        vecs = malloc((n + 1) * dim * sizeof(float));
        want[0] = malloc(n * sizeof(float));
        want[1] = malloc(n * sizeof(float));
        got = malloc(n * sizeof(float));
        ix = avc_index_new(dim, 0);
        for (i = 0; i < n; i++) {
            rand_vec(vecs + i * dim, dim);
            if (i % 10 == 0) {
                /* every component at full scale, signs by pattern */
                for (j = 0; j < dim; j++) {
                    vecs[i * dim + j] = (i / 10 + j) % 3 ? 1.0f : -1.0f;
                }
            }
            avc_index_add(ix, (int64_t) i + 1, 0, vecs + i * dim);
        }
        q = vecs + n * dim;
        for (kn = 0; kn < 2; kn++) {
            if (kn == 0) {
                rand_vec(q, dim);
            } else {
                for (j = 0; j < dim; j++) {
                    q[j] = j % 3 ? 1.0f : -1.0f;
                }
            }
            avc__index_kernel("c4");
            avc__index_scan(ix, q, 8, want[0]);
            avc__index_scan(ix, q, 4, want[1]);
            avc_index_search(ix, q, 10, NULL, 0, id[0], sc[0], &m);

            /* in cosines: the scores are in steps of max|q| / 127 */
            for (j = 0, c = 0; j < dim; j++) {
                c += (double) q[j] * q[j];
            }
            for (j = 0, qmax = 0; j < dim; j++) {
                if (fabsf(q[j]) / sqrt(c) > qmax) {
                    qmax = (float) (fabsf(q[j]) / sqrt(c));
                }
            }
            for (i = 0, err8 = 0, err4 = 0; i < n; i++) {
                c = cosine(q, vecs + i * dim, dim);
                err8 = fmax(err8, fabs(want[0][i] * qmax / 127 - c));
                err4 = fmax(err4, fabs(want[1][i] * qmax / 127 - c));
            }
            TAP_OK(err8 < 0.02 && err4 < 0.2, "dim %zu, %s query: int8 and "
                   "4-bit scores near the cosines (%.3f, %.3f)", dim,
                   kn ? "full-scale" : "random", err8, err4);

            for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (avc__index_kernel(names[i]) != AVC_OK) {
                    continue;
                }
                ran++;
                same = 1;
                for (bits = 4; bits <= 8; bits += 4) {
                    memset(got, 0, n * sizeof(float));
                    if (avc__index_scan(ix, q, (int) bits, got)
                        == AVC_ENOTFOUND)
                    {
                        continue;
                    }
                    same &= memcmp(got, want[bits == 4], n * sizeof(float))
                            == 0;
                }
                avc_index_search(ix, q, 10, NULL, 0, id[1], sc[1], &m);
                search_same = memcmp(id[0], id[1], sizeof(id[0])) == 0
                              && memcmp(sc[0], sc[1], sizeof(sc[0])) == 0;
                TAP_OK(same && search_same, "kernel %s, dim %zu, %s query: "
                       "the C kernels' scores and search results",
                       names[i], dim, kn ? "full-scale" : "random");
            }
        }
        avc_index_free(ix);
        free(vecs);
        free(want[0]);
        free(want[1]);
        free(got);
    }
    avc__index_kernel(NULL);
    tap_diag("%zu kernel checks on this CPU", ran);
}

/*
 * Dense scores, as local embeddings of one subject give (every vector
 * near a common direction, cosines within a few hundredths of each other
 * at the top): the 4-bit pre-scan still hands every true top-k row to the
 * int8 and float re-scoring, so the search equals brute force, as the
 * int8-only scan does.
 */
static void
test_dense(void)
{
    size_t n = 20000, dim = 128, k = 50, i, j;
    float *vecs = malloc(n * dim * sizeof(float)), base[128];
    int64_t *ids = malloc(n * sizeof(int64_t));
    uint32_t *tags = calloc(n, sizeof(uint32_t));
    avc_index_t *ix = avc_index_new(dim, 0);
    const char *kern[] = { "c4", "c", NULL };
    double err;
    int kn;

    rand_vec(base, dim);
    for (i = 0; i < n; i++) {
        rand_vec(vecs + i * dim, dim);
        for (j = 0; j < dim; j++) {
            vecs[i * dim + j] = 3 * base[j] + vecs[i * dim + j];
        }
        ids[i] = (int64_t) i + 1;
        avc_index_add(ix, ids[i], 0, vecs + i * dim);
    }
    for (kn = 0; kn < 3; kn++) {
        if (kern[kn] && avc__index_kernel(kern[kn]) != AVC_OK) {
            continue;
        }
        avc__index_kernel(kern[kn]);
        TAP_IS(compare(ix, vecs, ids, tags, n, dim, k, 20, NULL, 0, &err), 0,
               "dense scores, 20,000 rows, top 50, kernels %s: equals "
               "brute force (%s)", kern[kn] ? kern[kn] : "best",
               kn == 1 ? "int8 throughout" : "4-bit pre-scan");
    }
    avc__index_kernel(NULL);
    avc_index_free(ix);
    free(vecs);
    free(ids);
    free(tags);
}

int
main(void)
{
    test_kernels();
    test_edges();
    test_half();
    test_exact(500, 32);
    test_exact(5000, 64);
    test_exact(3000, 512);
    test_remove_and_tags();
    test_fp16();
    test_dense();
    return tap_done();
}
