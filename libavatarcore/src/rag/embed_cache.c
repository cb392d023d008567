/*
 * The query-embedding cache: (model, exact text) -> vector, least
 * recently used evicted beyond the cap.  One mutex: an entry is a hash
 * lookup and a memcpy of at most a few KiB, far below the cost of any
 * embedding, so contention is not worth more machinery.
 *
 * A cache made by avc_embed_cache_new_shared() holds no entries of its
 * own: every call goes to the embeddings of a shared cache region
 * (src/cache), which all the processes using that region see.
 */
#include "rag_internal.h"

#include <avatarcore/cache.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AVC_EC_DEFAULT_MAX  2048

typedef struct avc_ec_entry_s avc_ec_entry_t;

struct avc_ec_entry_s {
    avc_ec_entry_t *hnext;      /* hash chain */
    avc_ec_entry_t *prev;       /* LRU list, most recent first */
    avc_ec_entry_t *next;
    uint64_t hash;
    size_t klen;                /* model "\0" text */
    size_t dim;
    float *vec;                 /* after the key, aligned */
    char key[];
};

struct avc_embed_cache_s {
    avc_shcache_t *shared;      /* borrowed; then nothing below is used */
    pthread_mutex_t lock;
    avc_ec_entry_t **buckets;
    size_t nbuckets;            /* a power of two */
    size_t n;
    size_t max;
    avc_ec_entry_t *head;
    avc_ec_entry_t *tail;
    unsigned long long hits;
    unsigned long long misses;
};

static uint64_t
avc_ec_hash(const char *model, const char *text, size_t *klen)
{
    uint64_t h = 14695981039346656037ULL;
    size_t ml = strlen(model), tl = strlen(text), i;

    for (i = 0; i <= ml; i++) {
        h ^= (unsigned char) model[i];
        h *= 1099511628211ULL;
    }
    for (i = 0; i < tl; i++) {
        h ^= (unsigned char) text[i];
        h *= 1099511628211ULL;
    }
    *klen = ml + 1 + tl;
    return h;
}

static int
avc_ec_key_eq(const avc_ec_entry_t *e, const char *model, const char *text,
    size_t klen)
{
    size_t ml = strlen(model);

    return e->klen == klen && memcmp(e->key, model, ml + 1) == 0
           && memcmp(e->key + ml + 1, text, klen - ml - 1) == 0;
}

avc_embed_cache_t *
avc_embed_cache_new(size_t max_entries)
{
    avc_embed_cache_t *c;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->max = max_entries ? max_entries : AVC_EC_DEFAULT_MAX;
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof(c->buckets[0]));
    if (c->buckets == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    return c;
}

static void
avc_ec_clear_locked(avc_embed_cache_t *c)
{
    avc_ec_entry_t *e, *next;

    for (e = c->head; e; e = next) {
        next = e->next;
        free(e);
    }
    memset(c->buckets, 0, c->nbuckets * sizeof(c->buckets[0]));
    c->head = c->tail = NULL;
    c->n = 0;
}

avc_embed_cache_t *
avc_embed_cache_new_shared(avc_shcache_t *shared)
{
    avc_embed_cache_t *c;

    if (shared == NULL) {
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->shared = shared;
    return c;
}

void
avc_embed_cache_free(avc_embed_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->shared) {
        free(c);
        return;
    }
    avc_ec_clear_locked(c);
    pthread_mutex_destroy(&c->lock);
    free(c->buckets);
    free(c);
}

void
avc_embed_cache_clear(avc_embed_cache_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->shared) {
        avc_shcache_embed_clear(c->shared);
        return;
    }
    pthread_mutex_lock(&c->lock);
    avc_ec_clear_locked(c);
    pthread_mutex_unlock(&c->lock);
}

static void
avc_ec_unlink(avc_embed_cache_t *c, avc_ec_entry_t *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        c->head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    } else {
        c->tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void
avc_ec_push_front(avc_embed_cache_t *c, avc_ec_entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) {
        c->head->prev = e;
    } else {
        c->tail = e;
    }
    c->head = e;
}

static avc_ec_entry_t **
avc_ec_find(avc_embed_cache_t *c, uint64_t h, const char *model,
    const char *text, size_t klen)
{
    avc_ec_entry_t **pp;

    for (pp = &c->buckets[h & (c->nbuckets - 1)]; *pp; pp = &(*pp)->hnext) {
        if ((*pp)->hash == h && avc_ec_key_eq(*pp, model, text, klen)) {
            return pp;
        }
    }
    return pp;
}

int
avc_embed_cache_get(avc_embed_cache_t *c, const char *model,
    const char *text, float *out, size_t dim)
{
    avc_ec_entry_t **pp, *e;
    size_t klen;
    uint64_t h;
    int hit = 0;

    if (c == NULL || model == NULL || text == NULL) {
        return 0;
    }
    if (c->shared) {
        return avc_shcache_embed_get(c->shared, model, text, out, dim)
               == AVC_OK;
    }
    h = avc_ec_hash(model, text, &klen);
    pthread_mutex_lock(&c->lock);
    pp = avc_ec_find(c, h, model, text, klen);
    e = *pp;
    if (e && e->dim == dim) {
        memcpy(out, e->vec, dim * sizeof(float));
        avc_ec_unlink(c, e);
        avc_ec_push_front(c, e);
        hit = 1;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void
avc_ec_grow(avc_embed_cache_t *c)
{
    avc_ec_entry_t **nb, *e;
    size_t n = c->nbuckets * 2, i;

    nb = calloc(n, sizeof(nb[0]));
    if (nb == NULL) {
        return;                 /* longer chains, still correct */
    }
    for (e = c->head; e; e = e->next) {
        i = e->hash & (n - 1);
        e->hnext = nb[i];
        nb[i] = e;
    }
    free(c->buckets);
    c->buckets = nb;
    c->nbuckets = n;
}

static void
avc_ec_remove(avc_embed_cache_t *c, avc_ec_entry_t *e)
{
    avc_ec_entry_t **pp;

    pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e) {
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    avc_ec_unlink(c, e);
    c->n--;
    free(e);
}

int
avc_embed_cache_put(avc_embed_cache_t *c, const char *model,
    const char *text, const float *v, size_t dim)
{
    avc_ec_entry_t **pp, *e;
    size_t klen, off;
    uint64_t h;

    if (c == NULL || model == NULL || text == NULL || v == NULL) {
        return AVC_EINVAL;
    }
    if (c->shared) {
        return avc_shcache_embed_put(c->shared, model, text, v, dim);
    }
    h = avc_ec_hash(model, text, &klen);
    off = (klen + sizeof(float)) & ~(sizeof(float) - 1);
    if (klen > SIZE_MAX / 2 || dim > SIZE_MAX / 8 / sizeof(float)) {
        return AVC_ETOOBIG;
    }
    e = malloc(sizeof(*e) + off + dim * sizeof(float));
    if (e == NULL) {
        return AVC_ENOMEM;
    }
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->klen = klen;
    e->dim = dim;
    memcpy(e->key, model, strlen(model) + 1);
    memcpy(e->key + strlen(model) + 1, text, klen - strlen(model) - 1);
    e->vec = (float *) (void *) (e->key + off);
    memcpy(e->vec, v, dim * sizeof(float));

    pthread_mutex_lock(&c->lock);
    pp = avc_ec_find(c, h, model, text, klen);
    if (*pp) {
        avc_ec_remove(c, *pp);
    }
    while (c->n >= c->max && c->tail) {
        avc_ec_remove(c, c->tail);
    }
    if (c->n >= c->nbuckets) {
        avc_ec_grow(c);
    }
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->hnext = *pp;
    *pp = e;
    avc_ec_push_front(c, e);
    c->n++;
    pthread_mutex_unlock(&c->lock);
    return AVC_OK;
}

unsigned long long
avc_embed_cache_stat(avc_embed_cache_t *c, avc_embed_cache_stat_t which)
{
    unsigned long long v = 0;

    if (c == NULL) {
        return 0;
    }
    if (c->shared) {
        switch (which) {
        case AVC_EMBED_CACHE_SIZE:
            return avc_shcache_stat(c->shared, AVC_SHCACHE_EMBED_ENTRIES);
        case AVC_EMBED_CACHE_HITS:
            return avc_shcache_stat(c->shared, AVC_SHCACHE_EMBED_HITS);
        case AVC_EMBED_CACHE_MISSES:
            return avc_shcache_stat(c->shared, AVC_SHCACHE_EMBED_MISSES);
        default:
            return 0;           /* bounded by the region's bytes */
        }
    }
    pthread_mutex_lock(&c->lock);
    switch (which) {
    case AVC_EMBED_CACHE_SIZE:
        v = c->n;
        break;
    case AVC_EMBED_CACHE_MAX:
        v = c->max;
        break;
    case AVC_EMBED_CACHE_HITS:
        v = c->hits;
        break;
    case AVC_EMBED_CACHE_MISSES:
        v = c->misses;
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return v;
}
