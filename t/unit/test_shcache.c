/*
 * The shared cache (avatarcore/cache.h): each kind of entry, collisions,
 * eviction under memory pressure, generations, thresholds, owners,
 * attach, sharing across fork(), concurrent processes, and a process
 * killed while it holds the lock.  Every test checks the region's
 * structures afterwards (avc__shcache_check).
 */
#include "tap.h"

#include <avatarcore/cache.h>
#include <avatarcore/embed.h>
#include "../../libavatarcore/src/cache/cache_internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define SMALL  (64 * 1024)

static void
check(avc_shcache_t *c, const char *what)
{
    const char *why = avc__shcache_check(c);

    TAP_OK(why == NULL, "%s: the region is consistent", what);
    if (why) {
        tap_diag("%s", why);
    }
}

static unsigned long long
st(avc_shcache_t *c, avc_shcache_stat_t w)
{
    return avc_shcache_stat(c, w);
}

static uint64_t rs = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void
rand_vec(float *v, size_t dim)
{
    size_t i;

    for (i = 0; i < dim; i++) {
        v[i] = (float) ((double) (rnd() % 20001) / 10000.0 - 1.0);
    }
}

static void
fill_vec(float *v, size_t dim, unsigned seed)
{
    size_t i;

    for (i = 0; i < dim; i++) {
        v[i] = (float) (seed * 1000 + i);
    }
}

static double
now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

/* the reference vectors of SipHash-2-4: key 00..0f, input 00..len-1 */
static void
test_siphash(void)
{
    uint64_t key[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };
    unsigned char in[64];
    avc__sip_t s;
    size_t i;
    uint64_t a, b;

    for (i = 0; i < sizeof(in); i++) {
        in[i] = (unsigned char) i;
    }
    avc__sip_init(&s, key);
    TAP_OK(avc__sip_final(&s) == 0x726fdb47dd0e0e31ULL,
           "siphash: the empty input's reference value");
    avc__sip_init(&s, key);
    avc__sip_update(&s, in, 15);
    TAP_OK(avc__sip_final(&s) == 0xa129ca6149be45e5ULL,
           "siphash: 15 bytes' reference value");

    avc__sip_init(&s, key);
    avc__sip_update(&s, in, 63);
    a = avc__sip_final(&s);
    avc__sip_init(&s, key);
    avc__sip_update(&s, in, 3);
    avc__sip_update(&s, in + 3, 9);
    avc__sip_update(&s, in + 12, 0);
    avc__sip_update(&s, in + 12, 51);
    b = avc__sip_final(&s);
    TAP_OK(a == b, "siphash: pieces hash as the whole");
}

static void
test_create(void)
{
    avc_shcache_t *c;
    void *mem;
    int err = 0;

    TAP_IS(avc_shcache_min_size(), SMALL, "min size 64 KiB");
    c = avc_shcache_new_private(1000, &err);
    TAP_OK(c == NULL && err == AVC_EINVAL, "a region too small is refused");
    mem = aligned_alloc(64, SMALL + 64);
    TAP_OK(avc_shcache_init(NULL, SMALL, &err) == NULL && err == AVC_EINVAL,
           "init of NULL is refused");
    TAP_OK(avc_shcache_init((char *) mem + 8, SMALL, &err) == NULL
           && err == AVC_EINVAL, "init of a misaligned region is refused");
    memset(mem, 0, SMALL);
    TAP_OK(avc_shcache_attach(mem, SMALL, &err) == NULL && err == AVC_EINVAL,
           "attach to zeroes is refused");
    memset(mem, 0xa5, SMALL);
    TAP_OK(avc_shcache_attach(mem, SMALL, NULL) == NULL,
           "attach to garbage is refused");
    c = avc_shcache_init(mem, SMALL, &err);
    TAP_OK(c != NULL && err == AVC_OK, "init formats a malloc'd region");
    TAP_IS(st(c, AVC_SHCACHE_BYTES_TOTAL), SMALL, "bytes total");
    TAP_OK(st(c, AVC_SHCACHE_BYTES_USED) < 8192,
           "an empty region uses only its header and table (%llu)",
           st(c, AVC_SHCACHE_BYTES_USED));
    TAP_IS(st(c, AVC_SHCACHE_EMBED_ENTRIES), 0, "no entries");
    TAP_IS(avc_shcache_stat(c, AVC_SHCACHE_STAT_COUNT), 0,
           "an unknown counter reads 0");
    check(c, "empty");
    avc_shcache_free(c);
    avc_shcache_free(NULL);
    free(mem);
}

static void
test_embed(void)
{
    avc_shcache_t *c = avc_shcache_new_private(1 << 20, NULL);
    float v[8], w[16], out[16];
    char big[40000];

    fill_vec(v, 8, 1);
    fill_vec(w, 16, 2);
    TAP_IS(avc_shcache_embed_get(c, "m", "hello", out, 8), AVC_ENOTFOUND,
           "embed: miss");
    TAP_IS(avc_shcache_embed_put(c, "m", "hello", v, 8), AVC_OK, "put");
    memset(out, 0, sizeof(out));
    TAP_IS(avc_shcache_embed_get(c, "m", "hello", out, 8), AVC_OK, "hit");
    TAP_OK(memcmp(out, v, sizeof(v)) == 0, "the vector put");
    TAP_IS(avc_shcache_embed_get(c, "m2", "hello", out, 8), AVC_ENOTFOUND,
           "another model misses");
    TAP_IS(avc_shcache_embed_get(c, "m", "hello ", out, 8), AVC_ENOTFOUND,
           "another text misses");
    TAP_IS(avc_shcache_embed_get(c, "m", "hello", out, 7), AVC_ENOTFOUND,
           "another dimension misses");
    /* the model and text boundary is part of the key */
    TAP_IS(avc_shcache_embed_put(c, "ab", "c", w, 16), AVC_OK, "put ab|c");
    TAP_IS(avc_shcache_embed_get(c, "a", "bc", out, 16), AVC_ENOTFOUND,
           "a|bc is not ab|c");
    TAP_IS(avc_shcache_embed_put(c, "m", "hello", w, 16), AVC_OK,
           "put again with another dimension");
    TAP_IS(avc_shcache_embed_get(c, "m", "hello", out, 16), AVC_OK,
           "... replaces");
    TAP_OK(memcmp(out, w, sizeof(w)) == 0, "... with the new vector");
    TAP_IS(avc_shcache_embed_get(c, "m", "hello", out, 8), AVC_ENOTFOUND,
           "... and the old dimension is gone");
    TAP_IS(st(c, AVC_SHCACHE_EMBED_ENTRIES), 2, "2 entries");
    TAP_IS(st(c, AVC_SHCACHE_EMBED_HITS), 2, "2 hits");
    TAP_IS(st(c, AVC_SHCACHE_EMBED_MISSES), 6, "6 misses");
    TAP_IS(avc_shcache_embed_put(c, "m", "", v, 8), AVC_OK,
           "an empty text is a key");
    TAP_IS(avc_shcache_embed_get(c, "m", "", out, 8), AVC_OK, "... found");
    TAP_IS(avc_shcache_embed_put(c, "m", "x", v, 0), AVC_EINVAL,
           "dimension 0 is refused");
    TAP_IS(avc_shcache_embed_put(c, NULL, "x", v, 8), AVC_EINVAL,
           "NULL model is refused");
    TAP_IS(avc_shcache_embed_get(NULL, "m", "x", out, 8), AVC_ENOTFOUND,
           "NULL cache misses");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    TAP_IS(avc_shcache_embed_put(c, "m", big, v, 8), AVC_OK,
           "a 40 KB text fits a 1 MiB region");
    c = (avc_shcache_free(c), avc_shcache_new_private(SMALL, NULL));
    TAP_IS(avc_shcache_embed_put(c, "m", big, v, 8), AVC_ETOOBIG,
           "... but not a 64 KiB one (over a quarter)");
    TAP_IS(st(c, AVC_SHCACHE_EVICTIONS), 0, "... and evicts nothing");
    check(c, "embed");
    avc_shcache_free(c);
}

/* every key in one hash chain: only the full key tells them apart */
static void
test_collisions(void)
{
    avc_shcache_t *c = avc_shcache_new_private(1 << 20, NULL);
    char text[32], sid[32];
    float v[4], out[4];
    void *blob;
    size_t len;
    int i, ok = 1;

    avc__shcache_test_weak_hash(c, 1);
    for (i = 0; i < 200; i++) {
        snprintf(text, sizeof(text), "q%d", i);
        fill_vec(v, 4, (unsigned) i);
        ok &= avc_shcache_embed_put(c, "m", text, v, 4) == AVC_OK;
        snprintf(sid, sizeof(sid), "q%d", i);
        ok &= avc_shcache_session_put(c, sid, i, text, strlen(text))
              == AVC_OK;
    }
    TAP_OK(ok, "collisions: 200 embeddings and 200 sessions in one chain");
    for (i = 0; i < 200; i++) {
        snprintf(text, sizeof(text), "q%d", i);
        fill_vec(v, 4, (unsigned) i);
        if (avc_shcache_embed_get(c, "m", text, out, 4) != AVC_OK
            || memcmp(out, v, sizeof(v)) != 0
            || avc_shcache_session_get(c, text, i, &blob, &len) != AVC_OK)
        {
            ok = 0;
            break;
        }
        ok &= len == strlen(text) && memcmp(blob, text, len) == 0;
        free(blob);
    }
    TAP_OK(ok, "each get returns its own key's value (same hash, same "
           "length keys, two kinds)");
    TAP_IS(avc_shcache_embed_get(c, "m", "q200", out, 4), AVC_ENOTFOUND,
           "an absent key in the chain misses");
    TAP_IS(avc_shcache_session_drop(c, "q7", 7), AVC_OK,
           "drop from the middle of the chain");
    TAP_IS(avc_shcache_session_get(c, "q8", 8, &blob, &len), AVC_OK,
           "... its neighbour stays");
    free(blob);
    TAP_IS(avc_shcache_embed_get(c, "m", "q7", out, 4), AVC_OK,
           "... and the embedding of the same name");
    check(c, "collisions");
    avc_shcache_free(c);
}

/* fill a 64 KiB region far beyond its size */
static void
test_eviction(void)
{
    avc_shcache_t *c = avc_shcache_new_private(SMALL, NULL);
    float v[64], out[64];
    char text[32];
    int i, ok = 1, present = 0, first_gone = -1;
    unsigned long long used;

    for (i = 0; i < 2000; i++) {
        snprintf(text, sizeof(text), "question %d", i);
        fill_vec(v, 64, (unsigned) i);
        if (avc_shcache_embed_put(c, "m", text, v, 64) != AVC_OK) {
            ok = 0;
        }
        /* "question 0" is read all along: recently used, never evicted */
        if (avc_shcache_embed_get(c, "m", "question 0", out, 64) != AVC_OK) {
            ok = 0;
        }
    }
    TAP_OK(ok, "eviction: 2000 puts into 64 KiB never fail, and an entry "
           "read all along stays");
    for (i = 1; i < 2000; i++) {
        snprintf(text, sizeof(text), "question %d", i);
        fill_vec(v, 64, (unsigned) i);
        if (avc_shcache_embed_get(c, "m", text, out, 64) == AVC_OK) {
            present++;
            if (memcmp(out, v, sizeof(v)) != 0) {
                ok = 0;
            }
        } else if (first_gone < 0 || i > first_gone) {
            first_gone = i;
        }
    }
    TAP_OK(ok, "every entry left holds its own vector");
    snprintf(text, sizeof(text), "question %d", 1999);
    TAP_IS(avc_shcache_embed_get(c, "m", text, out, 64), AVC_OK,
           "the newest is present");
    TAP_IS(avc_shcache_embed_get(c, "m", "question 1", out, 64),
           AVC_ENOTFOUND, "the oldest is gone");
    TAP_OK(first_gone < 2000 - present, "what is left is the most recent "
           "(last gone %d, %d present)", first_gone, present);
    TAP_IS(st(c, AVC_SHCACHE_EMBED_ENTRIES), present + 1,
           "the entry count is what a get finds");
    TAP_IS(st(c, AVC_SHCACHE_EVICTIONS), 2000 - present - 1,
           "every entry not found was counted as evicted");
    used = st(c, AVC_SHCACHE_BYTES_USED);
    TAP_OK(used <= SMALL && used > SMALL / 2,
           "bytes used %llu of %d: the region is put to use", used, SMALL);
    check(c, "after eviction");

    /* mixed sizes and kinds */
    {
        char blob[3000];
        int k;

        memset(blob, 'b', sizeof(blob));
        for (i = 0; i < 3000; i++) {
            k = i % 3;
            snprintf(text, sizeof(text), "s%d", i);
            rand_vec(v, 64);
            if (k == 0) {
                ok &= avc_shcache_session_put(c, text, 1, blob,
                                              (size_t) (rnd() % 3000))
                      == AVC_OK;
            } else if (k == 1) {
                ok &= avc_shcache_answer_put(c, (int64_t) (rnd() % 5), 1, v,
                                             64, blob,
                                             (size_t) (rnd() % 2000))
                      == AVC_OK;
            } else {
                ok &= avc_shcache_embed_put(c, "m", text, v,
                                            (size_t) (1 + rnd() % 64))
                      == AVC_OK;
            }
        }
        TAP_OK(ok, "3000 entries of three kinds and random sizes: no put "
               "fails");
        check(c, "mixed eviction");
        TAP_IS(st(c, AVC_SHCACHE_EMBED_ENTRIES) + st(c, AVC_SHCACHE_SESSIONS)
               + st(c, AVC_SHCACHE_ANSWER_ENTRIES) + st(c,
               AVC_SHCACHE_EVICTIONS), 2000 + 3000,
               "entries + evictions = puts");
    }
    /* eviction drops the dealership records with their last answer */
    for (i = 0; i < 400; i++) {
        snprintf(text, sizeof(text), "z%d", i);
        fill_vec(v, 64, (unsigned) i);
        avc_shcache_embed_put(c, "m", text, v, 64);
    }
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_ENTRIES), 0,
           "newer embeddings evicted every answer");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_DEALERSHIPS), 0,
           "... and every dealership record");
    check(c, "after the answers went");
    avc_shcache_clear(c);
    TAP_IS(st(c, AVC_SHCACHE_EMBED_ENTRIES), 0, "clear empties");
    TAP_OK(st(c, AVC_SHCACHE_BYTES_USED) < 8192, "... and frees the arena");
    TAP_OK(st(c, AVC_SHCACHE_EVICTIONS) > 0, "... but keeps the counters");
    check(c, "cleared");
    avc_shcache_free(c);
}

static void
unit(float *v, size_t dim, size_t axis)
{
    memset(v, 0, dim * sizeof(float));
    v[axis] = 1;
}

static void
test_answers(void)
{
    avc_shcache_t *c = avc_shcache_new_private(4 << 20, NULL);
    float a[64], b[64], q[64], vs[600][64];
    char big[10000], tag[16];
    double sim, th = 0.92, x, xs[2] = { 0.918, 0.922 };
    void *ans;
    size_t len;
    int i, ok;

    unit(a, 64, 0);
    unit(b, 64, 1);
    TAP_IS(avc_shcache_answer_find(c, 7, 1, a, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "answers: miss on an empty cache");
    TAP_OK(sim == -2, "... with no candidate");
    TAP_IS(avc_shcache_answer_put(c, 7, 1, a, 64, "A", 1), AVC_OK, "put A");
    TAP_IS(avc_shcache_answer_put(c, 7, 1, b, 64, "B", 1), AVC_OK, "put B");
    TAP_IS(avc_shcache_answer_find(c, 7, 1, a, 64, th, &ans, &len, &sim),
           AVC_OK, "the identical vector hits");
    TAP_OK(len == 1 && memcmp(ans, "A", 1) == 0 && fabs(sim - 1) < 1e-6,
           "... answer A, similarity 1");
    free(ans);
    for (i = 0; i < 64; i++) {
        q[i] = b[i] * 3.5f;
    }
    TAP_IS(avc_shcache_answer_find(c, 7, 1, q, 64, th, &ans, &len, &sim),
           AVC_OK, "a longer vector of the same direction hits");
    TAP_OK(len == 1 && memcmp(ans, "B", 1) == 0, "... answer B");
    free(ans);
    unit(q, 64, 2);
    TAP_IS(avc_shcache_answer_find(c, 7, 1, q, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "an orthogonal vector misses");
    TAP_OK(fabs(sim) < 1e-6, "... similarity 0");

    /* q at an angle from a: cosine just below and just above 0.92 */
    for (i = 0; i < 2; i++) {
        x = xs[i];
        memset(q, 0, sizeof(q));
        q[0] = (float) x;
        q[2] = (float) sqrt(1 - x * x);
        ok = avc_shcache_answer_find(c, 7, 1, q, 64, th, &ans, &len, &sim);
        TAP_IS(ok, x < th ? AVC_ENOTFOUND : AVC_OK,
               "cosine %.3f against a threshold of %.2f %s", x, th,
               x < th ? "misses" : "hits");
        TAP_OK(fabs(sim - x) < 1e-5, "... similarity %.6f", sim);
        if (ok == AVC_OK) {
            free(ans);
        }
    }
    TAP_IS(avc_shcache_answer_find(c, 8, 1, a, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "another dealership misses");
    TAP_IS(avc_shcache_answer_find(c, 7, 1, a, 32, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "another dimension misses");
    memset(q, 0, sizeof(q));
    TAP_IS(avc_shcache_answer_find(c, 7, 1, q, 64, th, &ans, &len, &sim),
           AVC_EINVAL, "a zero vector is refused");
    TAP_IS(avc_shcache_answer_put(c, 7, 1, q, 64, "x", 1), AVC_EINVAL,
           "... by put too");

    /* generations */
    TAP_IS(avc_shcache_answer_find(c, 7, 0, a, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "an older generation misses");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_ENTRIES), 2, "... and drops nothing");
    TAP_IS(avc_shcache_answer_put(c, 7, 0, a, 64, "old", 3), AVC_ESTATE,
           "a put of an older generation is refused");
    TAP_IS(avc_shcache_answer_put(c, 9, 1, a, 64, "nine", 4), AVC_OK,
           "put for dealership 9");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_DEALERSHIPS), 2, "2 dealerships");
    TAP_IS(avc_shcache_answer_find(c, 7, 2, a, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "a newer generation misses");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_ENTRIES), 1,
           "... and drops the older entries");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_DEALERSHIPS), 1,
           "... and their dealership");
    TAP_IS(avc_shcache_answer_put(c, 9, 1, b, 64, "nine-b", 6), AVC_OK,
           "9 again");
    TAP_IS(avc_shcache_answer_put(c, 9, 2, b, 64, "nine-2", 6), AVC_OK,
           "a put of a newer generation");
    TAP_IS(avc_shcache_answer_find(c, 9, 2, a, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "... dropped the older answers");
    TAP_IS(avc_shcache_answer_find(c, 9, 2, b, 64, th, &ans, &len, &sim),
           AVC_OK, "... and keeps its own");
    free(ans);
    TAP_IS(avc_shcache_answer_put(c, 9, 2, b, 64, "nine-3", 6), AVC_OK,
           "the same question again");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_ENTRIES), 1, "... replaces it");
    TAP_IS(avc_shcache_answer_find(c, 9, 2, b, 64, th, &ans, &len, &sim),
           AVC_OK, "... with the new answer");
    TAP_OK(len == 6 && memcmp(ans, "nine-3", 6) == 0, "... nine-3");
    free(ans);

    /* invalidate */
    avc_shcache_answer_put(c, 7, 2, a, 64, "A", 1);
    avc_shcache_answer_put(c, 7, 2, b, 64, "B", 1);
    TAP_IS(avc_shcache_answer_invalidate(c, 7), AVC_OK, "invalidate 7");
    TAP_IS(avc_shcache_answer_find(c, 7, 2, a, 64, th, &ans, &len, &sim),
           AVC_ENOTFOUND, "... its answers are gone");
    TAP_IS(avc_shcache_answer_find(c, 9, 2, b, 64, th, &ans, &len, &sim),
           AVC_OK, "... 9's stay");
    free(ans);
    TAP_IS(avc_shcache_answer_invalidate(c, 12345), AVC_OK,
           "invalidating an unknown dealership is fine");

    /* a large answer is copied out whole (beyond the first guess) */
    for (i = 0; i < (int) sizeof(big); i++) {
        big[i] = (char) ('a' + i % 26);
    }
    TAP_IS(avc_shcache_answer_put(c, 9, 2, a, 64, big, sizeof(big)), AVC_OK,
           "put a 10 KB answer");
    TAP_IS(avc_shcache_answer_find(c, 9, 2, a, 64, th, &ans, &len, &sim),
           AVC_OK, "... found");
    TAP_OK(len == sizeof(big) && memcmp(ans, big, len) == 0,
           "... all of it");
    free(ans);
    TAP_IS(avc_shcache_answer_put(c, 9, 2, b, 64, NULL, 0), AVC_OK,
           "an empty answer");
    ans = NULL;
    TAP_IS(avc_shcache_answer_find(c, 9, 2, b, 64, th, &ans, &len, &sim),
           AVC_OK, "... found");
    TAP_OK(ans != NULL && len == 0, "... not NULL, length 0");
    free(ans);

    /* the cap: the least recently used of a dealership go */
    ok = 1;
    for (i = 0; i < 600; i++) {
        rand_vec(vs[i], 64);
        snprintf(tag, sizeof(tag), "%d", i);
        ok &= avc_shcache_answer_put(c, 11, 5, vs[i], 64, tag, strlen(tag))
              == AVC_OK;
    }
    TAP_OK(ok, "600 answers for one dealership");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_ENTRIES), 2 + AVC_SHCACHE_ANSWERS_MAX,
           "%d are kept", AVC_SHCACHE_ANSWERS_MAX);
    TAP_IS(avc_shcache_answer_find(c, 11, 5, vs[0], 64, 0.999, &ans, &len,
                                   &sim), AVC_ENOTFOUND, "the first went");
    for (i = 600 - AVC_SHCACHE_ANSWERS_MAX; i < 600; i++) {
        snprintf(tag, sizeof(tag), "%d", i);
        if (avc_shcache_answer_find(c, 11, 5, vs[i], 64, 0.999, &ans, &len,
                                    &sim) != AVC_OK)
        {
            ok = 0;
            continue;
        }
        ok &= len == strlen(tag) && memcmp(ans, tag, len) == 0;
        free(ans);
    }
    TAP_OK(ok, "the last %d are found, each with its answer",
           AVC_SHCACHE_ANSWERS_MAX);
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_HITS), 8 + AVC_SHCACHE_ANSWERS_MAX,
           "hits counted");
    TAP_IS(st(c, AVC_SHCACHE_ANSWER_MISSES), 10, "misses counted");
    check(c, "answers");
    avc_shcache_free(c);
}

static void
test_sessions(void)
{
    avc_shcache_t *c = avc_shcache_new_private(1 << 20, NULL);
    char sid[AVC_SHCACHE_SID_MAX + 2], big[9000];
    void *blob;
    size_t len;

    TAP_IS(avc_shcache_session_get(c, "s1", 1, &blob, &len), AVC_ENOTFOUND,
           "sessions: miss");
    TAP_IS(avc_shcache_session_put(c, "s1", 1, "ctx-one", 7), AVC_OK, "put");
    TAP_IS(avc_shcache_session_get(c, "s1", 1, &blob, &len), AVC_OK, "get");
    TAP_OK(len == 7 && memcmp(blob, "ctx-one", 7) == 0, "... the blob");
    free(blob);
    TAP_IS(avc_shcache_session_get(c, "s1", 2, &blob, &len), AVC_ENOTFOUND,
           "another user does not get it");
    TAP_IS(avc_shcache_session_put(c, "s1", 2, "evil", 4), AVC_EFORBIDDEN,
           "another user cannot replace it");
    TAP_IS(avc_shcache_session_drop(c, "s1", 2), AVC_ENOTFOUND,
           "another user cannot drop it");
    TAP_IS(avc_shcache_session_get(c, "s1", 1, &blob, &len), AVC_OK,
           "the owner still gets it");
    TAP_OK(len == 7 && memcmp(blob, "ctx-one", 7) == 0, "... unchanged");
    free(blob);
    TAP_IS(avc_shcache_session_put(c, "s1", 1, "ctx", 3), AVC_OK,
           "the owner replaces it (shorter)");
    memset(big, 'q', sizeof(big));
    TAP_IS(avc_shcache_session_put(c, "s1", 1, big, sizeof(big)), AVC_OK,
           "... and again (longer than the first copy guess)");
    TAP_IS(avc_shcache_session_get(c, "s1", 1, &blob, &len), AVC_OK, "get");
    TAP_OK(len == sizeof(big) && memcmp(blob, big, len) == 0,
           "... the whole new blob");
    free(blob);
    TAP_IS(st(c, AVC_SHCACHE_SESSIONS), 1, "1 session");
    TAP_IS(avc_shcache_session_drop(c, "s1", 1), AVC_OK, "the owner drops it");
    TAP_IS(avc_shcache_session_get(c, "s1", 1, &blob, &len), AVC_ENOTFOUND,
           "... gone");
    TAP_IS(avc_shcache_session_drop(c, "s1", 1), AVC_ENOTFOUND,
           "... dropping twice is not found");
    TAP_IS(st(c, AVC_SHCACHE_SESSION_HITS), 3, "3 hits");
    TAP_IS(st(c, AVC_SHCACHE_SESSION_MISSES), 3, "3 misses");
    TAP_IS(avc_shcache_session_put(c, "", 1, "x", 1), AVC_EINVAL,
           "an empty id is refused");
    memset(sid, 's', sizeof(sid) - 1);
    sid[sizeof(sid) - 1] = '\0';
    TAP_IS(avc_shcache_session_put(c, sid, 1, "x", 1), AVC_EINVAL,
           "an id over %d bytes is refused", AVC_SHCACHE_SID_MAX);
    sid[AVC_SHCACHE_SID_MAX] = '\0';
    TAP_IS(avc_shcache_session_put(c, sid, 1, "x", 1), AVC_OK,
           "an id of %d bytes is fine", AVC_SHCACHE_SID_MAX);
    TAP_IS(avc_shcache_session_put(c, "s2", 1, NULL, 0), AVC_OK,
           "an empty blob");
    TAP_IS(avc_shcache_session_get(c, "s2", 1, &blob, &len), AVC_OK, "get");
    TAP_OK(blob != NULL && len == 0, "... not NULL, length 0");
    free(blob);
    check(c, "sessions");
    avc_shcache_free(c);
}

/* the same region through two handles, at two addresses */
static void
test_attach(void)
{
    avc_shcache_t *c, *d;
    float v[8], out[8];
    void *a, *b, *blob;
    size_t size = 256 * 1024, len;
    int err, fd;

    fd = memfd_create("shcache-test", 0);
    if (fd < 0 || ftruncate(fd, (off_t) size) != 0) {
        TAP_OK(0, "attach: memfd (%s)", strerror(errno));
        return;
    }
    a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    TAP_OK(a != MAP_FAILED && b != MAP_FAILED && a != b,
           "attach: one region mapped at two addresses");
    c = avc_shcache_init(a, size, &err);
    fill_vec(v, 8, 3);
    avc_shcache_embed_put(c, "m", "text", v, 8);
    avc_shcache_session_put(c, "sess", 5, "ctx", 3);
    avc_shcache_answer_put(c, 1, 1, v, 8, "ans", 3);
    d = avc_shcache_attach(b, size, &err);
    TAP_OK(d != NULL && err == AVC_OK, "attach at the other address");
    TAP_IS(avc_shcache_embed_get(d, "m", "text", out, 8), AVC_OK,
           "... sees the embedding");
    TAP_OK(memcmp(out, v, sizeof(v)) == 0, "... with its vector");
    TAP_IS(avc_shcache_session_get(d, "sess", 5, &blob, &len), AVC_OK,
           "... sees the session");
    free(blob);
    TAP_IS(avc_shcache_answer_find(d, 1, 1, v, 8, 0.9, &blob, &len, NULL),
           AVC_OK, "... sees the answer");
    free(blob);
    avc_shcache_embed_put(d, "m", "more", v, 8);
    TAP_IS(avc_shcache_embed_get(c, "m", "more", out, 8), AVC_OK,
           "a put through the second is seen by the first");
    TAP_IS(avc_shcache_stat(c, AVC_SHCACHE_EMBED_HITS), 2,
           "the counters are shared");
    check(d, "attach");
    TAP_OK(avc_shcache_attach(b, size - 4096, &err) == NULL
           && err == AVC_EVERSION, "attach with another size is refused");
    ((avc__sc_hdr_t *) b)->version++;
    TAP_OK(avc_shcache_attach(b, size, &err) == NULL && err == AVC_EVERSION,
           "attach to another layout version is refused");
    ((avc__sc_hdr_t *) b)->version--;
    avc_shcache_free(d);
    avc_shcache_free(c);
    d = avc_shcache_attach(b, size, &err);
    TAP_IS(avc_shcache_session_get(d, "sess", 5, &blob, &len), AVC_OK,
           "entries outlive the handles (reload)");
    free(blob);
    c = avc_shcache_init(b, size, &err);
    TAP_IS(avc_shcache_session_get(c, "sess", 5, &blob, &len), AVC_ENOTFOUND,
           "init formats anew");
    avc_shcache_free(d);
    avc_shcache_free(c);
    munmap(a, size);
    munmap(b, size);
}

static void
test_fork(void)
{
    avc_shcache_t *c = avc_shcache_new_private(1 << 20, NULL);
    float v[16], out[16];
    void *blob;
    size_t len;
    pid_t pid;
    int status;

    fill_vec(v, 16, 42);
    pid = fork();
    if (pid == 0) {
        avc_shcache_embed_put(c, "m", "from the child", v, 16);
        avc_shcache_session_put(c, "child", 9, "hello", 5);
        avc_shcache_answer_put(c, 3, 1, v, 16, "child answer", 12);
        avc_shcache_free(c);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    TAP_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "fork: the child wrote and exited");
    TAP_IS(avc_shcache_embed_get(c, "m", "from the child", out, 16), AVC_OK,
           "the parent reads the child's embedding");
    TAP_OK(memcmp(out, v, sizeof(v)) == 0, "... its vector");
    TAP_IS(avc_shcache_session_get(c, "child", 9, &blob, &len), AVC_OK,
           "... its session");
    TAP_OK(len == 5 && memcmp(blob, "hello", 5) == 0, "... its blob");
    free(blob);
    TAP_IS(avc_shcache_answer_find(c, 3, 1, v, 16, 0.99, &blob, &len, NULL),
           AVC_OK, "... its answer");
    free(blob);
    check(c, "fork");
    avc_shcache_free(c);
}

/*
 * Values describe themselves: a vector's floats are a function of (key,
 * writer, round), with key, writer and round stored in its first three,
 * so a get that returns anything but a whole value put for that key is
 * caught.
 */
#define SDIM   48
#define SKEYS  300

static void
stress_vec(float *v, int key, int writer, int round)
{
    uint32_t x = (uint32_t) (key * 7919 + writer * 104729 + round * 31);
    int i;

    v[0] = (float) key;
    v[1] = (float) writer;
    v[2] = (float) round;
    for (i = 3; i < SDIM; i++) {
        x = x * 1103515245u + 12345u;
        v[i] = (float) (x >> 8) / 16777216.0f + 0.5f;
    }
}

/* the question of a key: the same for every writer, far from others' */
static void
stress_question(float *q, int key)
{
    uint32_t x = (uint32_t) key * 2654435761u + 1;
    int i;

    for (i = 0; i < SDIM; i++) {
        x = x * 1103515245u + 12345u;
        q[i] = (float) (x >> 8) / 8388608.0f - 1.0f;
    }
}

static int
stress_ok(const float *v, int key)
{
    float w[SDIM];

    if (v[0] != (float) key) {
        return 0;
    }
    stress_vec(w, key, (int) v[1], (int) v[2]);
    return memcmp(v, w, sizeof(w)) == 0;
}

static int
stress_child(avc_shcache_t *c, int writer, double until)
{
    char text[32], blob[600];
    float v[SDIM], out[SDIM], q[SDIM];
    int key, round = 0, bad = 0, n;
    uint32_t x = (uint32_t) writer * 2654435761u;
    void *got;
    size_t len, i;

    while (now() < until) {
        for (n = 0; n < 64; n++) {
            x = x * 1103515245u + 12345u;
            key = (int) ((x >> 8) % SKEYS);
            snprintf(text, sizeof(text), "k%d", key);
            round++;
            switch ((x >> 4) % 6) {
            case 0:
                stress_vec(v, key, writer, round);
                if (avc_shcache_embed_put(c, "m", text, v, SDIM) != AVC_OK) {
                    bad++;
                }
                break;
            case 1:
                if (avc_shcache_embed_get(c, "m", text, out, SDIM) == AVC_OK
                    && !stress_ok(out, key))
                {
                    bad++;
                }
                break;
            case 2:
                /* a session blob: its length and bytes from its header */
                len = 16 + (size_t) (round % 500);
                memset(blob, 0, 16);
                snprintf(blob, 16, "%d:%zu", key, len);
                for (i = 16; i < len; i++) {
                    blob[i] = (char) (key + i);
                }
                if (avc_shcache_session_put(c, text, key, blob, len)
                    != AVC_OK)
                {
                    bad++;
                }
                break;
            case 3:
                if (avc_shcache_session_get(c, text, key, &got, &len)
                    == AVC_OK)
                {
                    snprintf(blob, 16, "%d:%zu", key, len);
                    if (len < 16 || strcmp(got, blob) != 0) {
                        bad++;
                    } else {
                        for (i = 16; i < len; i++) {
                            bad += ((char *) got)[i] != (char) (key + i);
                        }
                    }
                    free(got);
                }
                break;
            case 4:
                stress_vec(v, key, writer, round);
                stress_question(q, key);
                if (avc_shcache_answer_put(c, key % 4, 1, q, SDIM, v,
                                           sizeof(v)) != AVC_OK)
                {
                    bad++;
                }
                break;
            default:
                stress_question(q, key);
                if (avc_shcache_answer_find(c, key % 4, 1, q, SDIM, 0.9999,
                                            &got, &len, NULL) == AVC_OK)
                {
                    bad += len != sizeof(v) || !stress_ok(got, key);
                    free(got);
                }
            }
        }
    }
    return bad;
}

static void
test_stress(void)
{
    avc_shcache_t *c = avc_shcache_new_private(256 * 1024, NULL);
    double until = now() + 1.0;
    int i, status, bad = 0, nproc = 3;
    pid_t pids[3];

    for (i = 0; i < nproc; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            _exit(stress_child(c, i + 1, until) ? 1 : 0);
        }
    }
    bad = stress_child(c, 0, until);
    for (i = 0; i < nproc; i++) {
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            bad++;
        }
    }
    TAP_IS(bad, 0, "stress: 4 processes for a second, every get returned "
           "exactly a value put for its key");
    TAP_OK(st(c, AVC_SHCACHE_EVICTIONS) > 0,
           "... under memory pressure (%llu evictions)",
           st(c, AVC_SHCACHE_EVICTIONS));
    tap_diag("embed %llu hits %llu misses, answers %llu hits, sessions "
             "%llu hits", st(c, AVC_SHCACHE_EMBED_HITS),
             st(c, AVC_SHCACHE_EMBED_MISSES), st(c, AVC_SHCACHE_ANSWER_HITS),
             st(c, AVC_SHCACHE_SESSION_HITS));
    TAP_OK(st(c, AVC_SHCACHE_EMBED_HITS) > 0
           && st(c, AVC_SHCACHE_SESSION_HITS) > 0
           && st(c, AVC_SHCACHE_ANSWER_HITS) > 0, "... with hits of each kind");
    TAP_IS(st(c, AVC_SHCACHE_RESETS), 0, "... and no reset");
    check(c, "stress");
    avc_shcache_free(c);
}

static void
on_alarm(int sig)
{
    static const char msg[] = "not ok - deadlock: the lock was never "
                              "recovered\n";

    (void) sig;
    (void) write(1, msg, sizeof(msg) - 1);
    _exit(1);
}

/* a process killed with the lock held, halfway through an update */
static void
test_dead_holder(void)
{
    avc_shcache_t *c = avc_shcache_new_private(1 << 20, NULL);
    float v[8], out[8];
    int p[2], status;
    char ch;
    pid_t pid;

    fill_vec(v, 8, 5);
    avc_shcache_embed_put(c, "m", "before", v, 8);
    avc_shcache_session_put(c, "s", 1, "x", 1);
    avc_shcache_embed_get(c, "m", "before", out, 8);
    if (pipe(p) != 0) {
        TAP_OK(0, "pipe");
        return;
    }
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (avc__shcache_test_hold(c, 1) == AVC_OK) {
            (void) write(p[1], "h", 1);
        }
        for (;;) {
            pause();
        }
    }
    close(p[1]);
    TAP_IS(read(p[0], &ch, 1), 1, "dead holder: the child holds the lock "
           "and broke the lists");
    close(p[0]);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    TAP_OK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
           "... and was killed");

    signal(SIGALRM, on_alarm);
    alarm(10);
    TAP_IS(avc_shcache_embed_get(c, "m", "before", out, 8), AVC_ENOTFOUND,
           "the next get returns: the cache was emptied");
    alarm(0);
    TAP_IS(st(c, AVC_SHCACHE_RESETS), 1, "one reset counted");
    TAP_IS(st(c, AVC_SHCACHE_EMBED_ENTRIES), 0, "no entries");
    TAP_IS(st(c, AVC_SHCACHE_SESSIONS), 0, "no sessions");
    check(c, "after the reset");
    TAP_IS(avc_shcache_embed_put(c, "m", "after", v, 8), AVC_OK,
           "puts work again");
    TAP_IS(avc_shcache_embed_get(c, "m", "after", out, 8), AVC_OK,
           "... and gets");
    TAP_IS(avc_shcache_stat(c, AVC_SHCACHE_EMBED_HITS), 2,
           "the hits before the reset were kept");

    /* the same in this process: a lock held and released is no reset */
    TAP_IS(avc__shcache_test_hold(c, 0), AVC_OK, "hold");
    avc__shcache_test_release(c);
    TAP_IS(st(c, AVC_SHCACHE_RESETS), 1, "a released lock resets nothing");
    check(c, "after hold and release");
    avc_shcache_free(c);
}

/* the embedder's cache interface, backed by the region */
static void
test_embed_cache(void)
{
    avc_shcache_t *c = avc_shcache_new_private(1 << 20, NULL);
    avc_embed_cache_t *ec, *ec2;
    float v[4] = { 1, 2, 3, 4 }, out[4];
    void *blob;
    size_t len;

    TAP_OK(avc_embed_cache_new_shared(NULL) == NULL,
           "embed cache: NULL region gives NULL");
    ec = avc_embed_cache_new_shared(c);
    ec2 = avc_embed_cache_new_shared(c);
    TAP_OK(ec != NULL && ec2 != NULL, "two wrappers of one region");
    TAP_IS(avc_embed_cache_get(ec, "m", "one", out, 4), 0, "miss");
    TAP_IS(avc_embed_cache_put(ec, "m", "one", v, 4), AVC_OK, "put");
    TAP_IS(avc_embed_cache_get(ec2, "m", "one", out, 4), 1,
           "the other wrapper hits");
    TAP_OK(memcmp(out, v, sizeof(v)) == 0, "... the vector");
    TAP_IS(avc_shcache_embed_get(c, "m", "one", out, 4), AVC_OK,
           "the region has it");
    TAP_IS(avc_embed_cache_stat(ec, AVC_EMBED_CACHE_SIZE), 1, "size 1");
    TAP_IS(avc_embed_cache_stat(ec, AVC_EMBED_CACHE_HITS), 2,
           "the region's hits");
    TAP_IS(avc_embed_cache_stat(ec, AVC_EMBED_CACHE_MISSES), 1,
           "the region's misses");
    TAP_IS(avc_embed_cache_stat(ec, AVC_EMBED_CACHE_MAX), 0, "no count cap");
    avc_shcache_session_put(c, "s", 1, "x", 1);
    avc_embed_cache_clear(ec);
    TAP_IS(avc_embed_cache_get(ec, "m", "one", out, 4), 0,
           "clear drops the embeddings");
    TAP_IS(avc_shcache_session_get(c, "s", 1, &blob, &len), AVC_OK,
           "... but not the sessions");
    free(blob);
    avc_embed_cache_free(ec);
    avc_embed_cache_put(ec2, "m", "two", v, 4);
    TAP_IS(avc_embed_cache_get(ec2, "m", "two", out, 4), 1,
           "freeing a wrapper leaves the region alone");
    avc_embed_cache_free(ec2);
    check(c, "embed cache");
    avc_shcache_free(c);
}

int
main(void)
{
    test_siphash();
    test_create();
    test_embed();
    test_collisions();
    test_eviction();
    test_answers();
    test_sessions();
    test_attach();
    test_fork();
    test_stress();
    test_dead_holder();
    test_embed_cache();
    return tap_done();
}
