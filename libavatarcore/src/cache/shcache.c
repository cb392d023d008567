/*
 * The shared cache: query embeddings, semantic answers and session
 * context in one region (see avatarcore/cache.h for the contract).
 *
 * Entries live in arena blocks.  Embeddings, sessions and dealership
 * records are found through one hash table; answers through their
 * dealership's list.  Every entry but a dealership record is on one
 * global LRU list, the eviction order; a dealership record lives as long
 * as it has answers.
 *
 *   entry:   avc_sc_item_t | float vector[dim] | key[klen] | blob[len]
 *   record:  avc_sc_dealer_t
 *
 * The item header is a multiple of 16 bytes, so a vector is aligned.
 */
#include "cache_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define AVC_SC_BUCKET_BYTES  512    /* of region per hash bucket */
#define AVC_SC_MIN_BUCKETS   64
#define AVC_SC_COPY_HINT     4096   /* first guess at a blob's size */
#define AVC_SC_COPY_TRIES    4
/* a put this close to a stored question replaces it */
#define AVC_SC_SAME_COSINE   0.99999

struct avc_shcache_s {
    avc__sc_hdr_t *h;
    void *map;                  /* a private mapping, or NULL */
    size_t map_size;
    uint64_t hash_mask;         /* all ones; 0 in tests: one chain */
};

/* what the hash chains link: an entry's or a record's first bytes */
typedef struct {
    uint64_t hnext;
    uint64_t hash;
    uint32_t kind;              /* AVC__SC_* */
    uint32_t klen;              /* key bytes */
} avc_sc_node_t;

typedef struct {
    avc_sc_node_t n;
    uint32_t dim;               /* floats of the vector */
    uint32_t pad;
    uint64_t prev;              /* LRU: toward the most recent */
    uint64_t next;              /* toward the least recent */
    uint64_t len;               /* blob bytes */
    int64_t owner;              /* session: user id; answer: its record */
    uint64_t dprev;             /* answer: its dealership's list */
    uint64_t dnext;
} avc_sc_item_t;

typedef struct {
    avc_sc_node_t n;
    int64_t id;
    int64_t generation;
    uint64_t head;              /* answers, most recently used first */
    uint64_t tail;
    uint64_t count;
} avc_sc_dealer_t;

_Static_assert(sizeof(avc_sc_item_t) % 16 == 0,
               "an entry's vector must stay 16-byte aligned");
_Static_assert(offsetof(avc_sc_dealer_t, n) == 0
               && offsetof(avc_sc_item_t, n) == 0,
               "hash chains see the node first");

#define avc_sc_node(h, off)    ((avc_sc_node_t *) avc__sc_ptr(h, off))
#define avc_sc_item(h, off)    ((avc_sc_item_t *) avc__sc_ptr(h, off))
#define avc_sc_dealer(h, off)  ((avc_sc_dealer_t *) avc__sc_ptr(h, off))
#define avc_sc_vec(it)         ((float *) (void *) ((it) + 1))
#define avc_sc_key(it)         ((char *) ((it) + 1) + (it)->dim * 4)
#define avc_sc_blob(it)        (avc_sc_key(it) + (it)->n.klen)

/* the thread that last took the lock emptied a dead holder's cache */
static __thread int avc_sc_was_reset;


/* region and lock */

static void
avc_sc_format_data(avc__sc_hdr_t *h)
{
    memset(avc__sc_ptr(h, h->buckets), 0, h->nbuckets * sizeof(uint64_t));
    h->lru_head = 0;
    h->lru_tail = 0;
    avc__sc_arena_reset(h);
    h->stats[AVC_SHCACHE_EMBED_ENTRIES] = 0;
    h->stats[AVC_SHCACHE_ANSWER_ENTRIES] = 0;
    h->stats[AVC_SHCACHE_ANSWER_DEALERSHIPS] = 0;
    h->stats[AVC_SHCACHE_SESSIONS] = 0;
}

static int
avc_sc_lock(avc_shcache_t *c)
{
    int rc;

    rc = pthread_mutex_lock(&c->h->lock);
    if (rc == 0) {
        return AVC_OK;
    }
    if (rc == EOWNERDEAD) {
        /*
         * The holder died, maybe halfway through relinking a list: no
         * structure can be trusted, but the geometry never changes, so
         * the contents can be formatted anew.
         */
        pthread_mutex_consistent(&c->h->lock);
        avc_sc_format_data(c->h);
        c->h->stats[AVC_SHCACHE_RESETS]++;
        avc_sc_was_reset = 1;
        return AVC_OK;
    }
    return AVC_ESYS;
}

static void
avc_sc_unlock(avc_shcache_t *c)
{
    pthread_mutex_unlock(&c->h->lock);
    if (avc_sc_was_reset) {
        avc_sc_was_reset = 0;
        avc_log(AVC_LOG_WARN, "cache: a process died holding the shared "
                "cache's lock; the cache was emptied");
    }
}

static void
avc_sc_random_key(uint64_t key[2])
{
    unsigned char *p = (unsigned char *) key;
    size_t n = 2 * sizeof(uint64_t);
    struct timespec ts;
    ssize_t got;

    while (n > 0) {
        got = getrandom(p, n, GRND_NONBLOCK);
        if (got <= 0) {
            break;
        }
        p += got;
        n -= (size_t) got;
    }
    if (n > 0) {
        /* no entropy yet (early boot): weaker, never fatal */
        clock_gettime(CLOCK_REALTIME, &ts);
        key[0] ^= ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) ts.tv_nsec
                  ^ 0x9e3779b97f4a7c15ULL;
        key[1] ^= ((uint64_t) getpid() << 17) ^ (uint64_t) (uintptr_t) p
                  ^ (uint64_t) clock();
    }
}

size_t
avc_shcache_min_size(void)
{
    return AVC__SC_MIN_SIZE;
}

static uint64_t
avc_sc_align(uint64_t n, uint64_t a)
{
    return (n + a - 1) & ~(a - 1);
}

static int
avc_sc_size_ok(const void *mem, size_t size)
{
    return mem != NULL && (uintptr_t) mem % 16 == 0
           && size >= AVC__SC_MIN_SIZE && (uint64_t) size <= AVC__SC_MAX_SIZE;
}

static avc_shcache_t *
avc_sc_handle(void *mem, int *err)
{
    avc_shcache_t *c;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    c->h = mem;
    c->hash_mask = ~0ULL;
    return c;
}

avc_shcache_t *
avc_shcache_init(void *mem, size_t size, int *err)
{
    pthread_mutexattr_t ma;
    avc__sc_hdr_t *h = mem;
    avc_shcache_t *c;
    uint64_t nb;
    int dummy, rc;

    if (err == NULL) {
        err = &dummy;
    }
    if (!avc_sc_size_ok(mem, size)) {
        *err = AVC_EINVAL;
        return NULL;
    }
    c = avc_sc_handle(mem, err);
    if (c == NULL) {
        return NULL;
    }

    memset(h, 0, sizeof(*h));
    h->version = AVC__SC_VERSION;
    h->hdr_size = sizeof(*h);
    h->size = size;
    avc_sc_random_key(h->sipkey);
    for (nb = AVC_SC_MIN_BUCKETS; nb * 2 * AVC_SC_BUCKET_BYTES <= size;
         nb *= 2)
    {
        /* void */
    }
    h->buckets = avc_sc_align(sizeof(*h), 64);
    h->nbuckets = nb;
    h->arena = avc_sc_align(h->buckets + nb * sizeof(uint64_t), 64);
    h->arena_end = size & ~15ULL;

    rc = pthread_mutexattr_init(&ma);
    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
        if (rc == 0) {
            rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
        }
        if (rc == 0) {
            rc = pthread_mutex_init(&h->lock, &ma);
        }
        pthread_mutexattr_destroy(&ma);
    }
    if (rc != 0) {
        free(c);
        *err = AVC_ESYS;
        return NULL;
    }

    avc_sc_format_data(h);
    /* published last: a region formatted halfway is never attached */
    __atomic_store_n(&h->magic, AVC__SC_MAGIC, __ATOMIC_RELEASE);
    *err = AVC_OK;
    return c;
}

avc_shcache_t *
avc_shcache_attach(void *mem, size_t size, int *err)
{
    avc__sc_hdr_t *h = mem;
    int dummy;

    if (err == NULL) {
        err = &dummy;
    }
    if (!avc_sc_size_ok(mem, size)
        || __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != AVC__SC_MAGIC)
    {
        *err = AVC_EINVAL;
        return NULL;
    }
    if (h->version != AVC__SC_VERSION || h->hdr_size != sizeof(*h)
        || h->size != size)
    {
        *err = AVC_EVERSION;
        return NULL;
    }
    if (h->nbuckets < AVC_SC_MIN_BUCKETS
        || (h->nbuckets & (h->nbuckets - 1)) != 0
        || h->buckets != avc_sc_align(sizeof(*h), 64)
        || h->arena != avc_sc_align(h->buckets
                                    + h->nbuckets * sizeof(uint64_t), 64)
        || h->arena_end != (size & ~15ULL) || h->arena >= h->arena_end)
    {
        *err = AVC_EINVAL;
        return NULL;
    }
    *err = AVC_OK;
    return avc_sc_handle(mem, err);
}

avc_shcache_t *
avc_shcache_new_private(size_t size, int *err)
{
    avc_shcache_t *c;
    void *map;
    int dummy;

    if (err == NULL) {
        err = &dummy;
    }
    if (size < AVC__SC_MIN_SIZE || (uint64_t) size > AVC__SC_MAX_SIZE) {
        *err = AVC_EINVAL;
        return NULL;
    }
    map = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        *err = AVC_ESYS;
        return NULL;
    }
    c = avc_shcache_init(map, size, err);
    if (c == NULL) {
        munmap(map, size);
        return NULL;
    }
    c->map = map;
    c->map_size = size;
    return c;
}

void
avc_shcache_free(avc_shcache_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->map) {
        munmap(c->map, c->map_size);
    }
    free(c);
}


/* hash table */

static uint64_t
avc_sc_hash(avc_shcache_t *c, unsigned kind, const void *a, size_t alen,
    const void *b, size_t blen)
{
    unsigned char k = (unsigned char) kind;
    avc__sip_t s;

    avc__sip_init(&s, c->h->sipkey);
    avc__sip_update(&s, &k, 1);
    avc__sip_update(&s, a, alen);
    if (blen) {
        avc__sip_update(&s, b, blen);
    }
    return avc__sip_final(&s) & c->hash_mask;
}

static uint64_t *
avc_sc_bucket(avc__sc_hdr_t *h, uint64_t hash)
{
    return (uint64_t *) avc__sc_ptr(h, h->buckets)
           + (hash & (h->nbuckets - 1));
}

static void
avc_sc_hash_insert(avc__sc_hdr_t *h, uint64_t off)
{
    avc_sc_node_t *n = avc_sc_node(h, off);
    uint64_t *b = avc_sc_bucket(h, n->hash);

    n->hnext = *b;
    *b = off;
}

static void
avc_sc_hash_remove(avc__sc_hdr_t *h, uint64_t off)
{
    avc_sc_node_t *n = avc_sc_node(h, off);
    uint64_t *pp = avc_sc_bucket(h, n->hash);

    while (*pp && *pp != off) {
        pp = &avc_sc_node(h, *pp)->hnext;
    }
    if (*pp) {
        *pp = n->hnext;
    }
}

/* the entry of kind whose key is a[alen] b[blen], or 0 */
static uint64_t
avc_sc_find(avc__sc_hdr_t *h, uint64_t hash, unsigned kind, const char *a,
    size_t alen, const char *b, size_t blen)
{
    avc_sc_item_t *it;
    uint64_t off;
    char *key;

    for (off = *avc_sc_bucket(h, hash); off; off = it->n.hnext) {
        it = avc_sc_item(h, off);
        if (it->n.hash != hash || it->n.kind != kind
            || it->n.klen != alen + blen)
        {
            continue;
        }
        key = avc_sc_key(it);
        if (memcmp(key, a, alen) == 0
            && (blen == 0 || memcmp(key + alen, b, blen) == 0))
        {
            return off;
        }
    }
    return 0;
}

static uint64_t
avc_sc_find_dealer(avc__sc_hdr_t *h, uint64_t hash, int64_t id)
{
    avc_sc_dealer_t *d;
    uint64_t off;

    for (off = *avc_sc_bucket(h, hash); off; off = d->n.hnext) {
        d = avc_sc_dealer(h, off);
        if (d->n.hash == hash && d->n.kind == AVC__SC_DEALER && d->id == id) {
            return off;
        }
    }
    return 0;
}


/* lists */

static void
avc_sc_lru_push(avc__sc_hdr_t *h, uint64_t off)
{
    avc_sc_item_t *it = avc_sc_item(h, off);

    it->prev = 0;
    it->next = h->lru_head;
    if (h->lru_head) {
        avc_sc_item(h, h->lru_head)->prev = off;
    } else {
        h->lru_tail = off;
    }
    h->lru_head = off;
}

static void
avc_sc_lru_unlink(avc__sc_hdr_t *h, uint64_t off)
{
    avc_sc_item_t *it = avc_sc_item(h, off);

    if (it->prev) {
        avc_sc_item(h, it->prev)->next = it->next;
    } else {
        h->lru_head = it->next;
    }
    if (it->next) {
        avc_sc_item(h, it->next)->prev = it->prev;
    } else {
        h->lru_tail = it->prev;
    }
}

static void
avc_sc_lru_touch(avc__sc_hdr_t *h, uint64_t off)
{
    if (h->lru_head != off) {
        avc_sc_lru_unlink(h, off);
        avc_sc_lru_push(h, off);
    }
}

static void
avc_sc_dl_push(avc__sc_hdr_t *h, avc_sc_dealer_t *d, uint64_t off)
{
    avc_sc_item_t *it = avc_sc_item(h, off);

    it->dprev = 0;
    it->dnext = d->head;
    if (d->head) {
        avc_sc_item(h, d->head)->dprev = off;
    } else {
        d->tail = off;
    }
    d->head = off;
}

static void
avc_sc_dl_unlink(avc__sc_hdr_t *h, avc_sc_dealer_t *d, uint64_t off)
{
    avc_sc_item_t *it = avc_sc_item(h, off);

    if (it->dprev) {
        avc_sc_item(h, it->dprev)->dnext = it->dnext;
    } else {
        d->head = it->dnext;
    }
    if (it->dnext) {
        avc_sc_item(h, it->dnext)->dprev = it->dprev;
    } else {
        d->tail = it->dprev;
    }
}


/* removal, eviction, allocation */

static void
avc_sc_dealer_free(avc__sc_hdr_t *h, uint64_t doff)
{
    avc_sc_hash_remove(h, doff);
    h->stats[AVC_SHCACHE_ANSWER_DEALERSHIPS]--;
    avc__sc_free(h, doff);
}

/* keep_record: an answer's dealership record stays even when empty */
static void
avc_sc_remove(avc__sc_hdr_t *h, uint64_t off, int keep_record)
{
    avc_sc_item_t *it = avc_sc_item(h, off);
    avc_sc_dealer_t *d;
    uint64_t doff;

    avc_sc_lru_unlink(h, off);
    switch (it->n.kind) {
    case AVC__SC_EMBED:
        avc_sc_hash_remove(h, off);
        h->stats[AVC_SHCACHE_EMBED_ENTRIES]--;
        break;
    case AVC__SC_SESSION:
        avc_sc_hash_remove(h, off);
        h->stats[AVC_SHCACHE_SESSIONS]--;
        break;
    case AVC__SC_ANSWER:
        doff = (uint64_t) it->owner;
        d = avc_sc_dealer(h, doff);
        avc_sc_dl_unlink(h, d, off);
        d->count--;
        h->stats[AVC_SHCACHE_ANSWER_ENTRIES]--;
        if (d->count == 0 && !keep_record) {
            avc_sc_dealer_free(h, doff);
        }
        break;
    }
    avc__sc_free(h, off);
}

static void
avc_sc_dealer_empty(avc__sc_hdr_t *h, uint64_t doff, int keep_record)
{
    avc_sc_dealer_t *d = avc_sc_dealer(h, doff);

    while (d->head) {
        avc_sc_remove(h, d->head, 1);
    }
    if (!keep_record) {
        avc_sc_dealer_free(h, doff);
    }
}

/*
 * A block of n bytes, evicting the least recently used entries until it
 * fits: 0 only when n is over the limit (checked by the callers) or the
 * arena holds nothing evictable, which cannot happen below the limit.
 * Whatever the caller holds but has not linked yet is safe; an offset it
 * looked up before may be gone.
 */
static uint64_t
avc_sc_alloc(avc__sc_hdr_t *h, size_t n)
{
    uint64_t off;

    if (n > avc__sc_alloc_max(h)) {
        return 0;
    }
    for (;;) {
        off = avc__sc_alloc(h, n);
        if (off || h->lru_tail == 0) {
            return off;
        }
        avc_sc_remove(h, h->lru_tail, 0);
        h->stats[AVC_SHCACHE_EVICTIONS]++;
    }
}

/* the size of an entry with parts of a and b bytes, or 0 when too big */
static size_t
avc_sc_entry_size(avc__sc_hdr_t *h, size_t dim, size_t a, size_t b)
{
    size_t max = avc__sc_alloc_max(h), n;

    if (dim > AVC_SHCACHE_DIM_MAX || a > max || b > max) {
        return 0;
    }
    n = sizeof(avc_sc_item_t) + dim * sizeof(float) + a + b;
    return n <= max ? n : 0;
}

static avc_sc_item_t *
avc_sc_item_init(avc__sc_hdr_t *h, uint64_t off, unsigned kind,
    uint64_t hash, size_t dim, size_t klen, size_t len)
{
    avc_sc_item_t *it = avc_sc_item(h, off);

    memset(it, 0, sizeof(*it));
    it->n.kind = kind;
    it->n.hash = hash;
    it->n.klen = (uint32_t) klen;
    it->dim = (uint32_t) dim;
    it->len = len;
    return it;
}

/* may a block of usable bytes be reused for an entry of need bytes? */
static int
avc_sc_reusable(size_t usable, size_t need)
{
    return usable >= need && usable - need <= need / 2 + 64;
}

void
avc_shcache_clear(avc_shcache_t *c)
{
    if (c == NULL || avc_sc_lock(c) != AVC_OK) {
        return;
    }
    avc_sc_format_data(c->h);
    avc_sc_unlock(c);
}


/* query embeddings */

int
avc_shcache_embed_get(avc_shcache_t *c, const char *model, const char *text,
    float *out, size_t dim)
{
    size_t ml, tl;
    avc_sc_item_t *it;
    uint64_t hash, off;
    int rc;

    if (c == NULL || model == NULL || text == NULL || out == NULL) {
        return AVC_ENOTFOUND;
    }
    ml = strlen(model) + 1;
    tl = strlen(text);
    hash = avc_sc_hash(c, AVC__SC_EMBED, model, ml, text, tl);

    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ENOTFOUND;
    }
    off = avc_sc_find(c->h, hash, AVC__SC_EMBED, model, ml, text, tl);
    it = off ? avc_sc_item(c->h, off) : NULL;
    if (it && it->dim == dim) {
        memcpy(out, avc_sc_vec(it), dim * sizeof(float));
        avc_sc_lru_touch(c->h, off);
        c->h->stats[AVC_SHCACHE_EMBED_HITS]++;
        rc = AVC_OK;
    } else {
        c->h->stats[AVC_SHCACHE_EMBED_MISSES]++;
        rc = AVC_ENOTFOUND;
    }
    avc_sc_unlock(c);
    return rc;
}

int
avc_shcache_embed_put(avc_shcache_t *c, const char *model, const char *text,
    const float *v, size_t dim)
{
    size_t ml, tl, need;
    avc__sc_hdr_t *h;
    avc_sc_item_t *it;
    uint64_t hash, off;

    if (c == NULL || model == NULL || text == NULL || v == NULL || dim == 0
        || dim > AVC_SHCACHE_DIM_MAX)
    {
        return AVC_EINVAL;
    }
    h = c->h;
    ml = strlen(model) + 1;
    tl = strlen(text);
    need = avc_sc_entry_size(h, dim, ml, tl);
    if (need == 0) {
        return AVC_ETOOBIG;
    }
    hash = avc_sc_hash(c, AVC__SC_EMBED, model, ml, text, tl);

    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ESYS;
    }
    off = avc_sc_find(h, hash, AVC__SC_EMBED, model, ml, text, tl);
    if (off) {
        it = avc_sc_item(h, off);
        if (it->dim == dim) {
            memcpy(avc_sc_vec(it), v, dim * sizeof(float));
            avc_sc_lru_touch(h, off);
            avc_sc_unlock(c);
            return AVC_OK;
        }
        avc_sc_remove(h, off, 0);
    }
    off = avc_sc_alloc(h, need);
    if (off == 0) {
        avc_sc_unlock(c);
        return AVC_ENOMEM;
    }
    it = avc_sc_item_init(h, off, AVC__SC_EMBED, hash, dim, ml + tl, 0);
    memcpy(avc_sc_vec(it), v, dim * sizeof(float));
    memcpy(avc_sc_key(it), model, ml);
    memcpy(avc_sc_key(it) + ml, text, tl);
    avc_sc_hash_insert(h, off);
    avc_sc_lru_push(h, off);
    h->stats[AVC_SHCACHE_EMBED_ENTRIES]++;
    avc_sc_unlock(c);
    return AVC_OK;
}

void
avc_shcache_embed_clear(avc_shcache_t *c)
{
    uint64_t off, next;

    if (c == NULL || avc_sc_lock(c) != AVC_OK) {
        return;
    }
    for (off = c->h->lru_head; off; off = next) {
        next = avc_sc_item(c->h, off)->next;
        if (avc_sc_item(c->h, off)->n.kind == AVC__SC_EMBED) {
            avc_sc_remove(c->h, off, 0);
        }
    }
    avc_sc_unlock(c);
}


/* semantic answers */

/*
 * Dot products for the scan: four independent sums (so the loop is bound
 * by loads, not by one chain of additions) of 4-float vectors, which
 * every target has; on x86 with AVX2 and FMA, of 8-float vectors.  The
 * vectors are loaded with memcpy: the query need not be aligned.
 */
typedef float avc_sc_f4 __attribute__((vector_size(16)));

static float
avc_sc_dot4(const float *a, const float *b, size_t n)
{
    avc_sc_f4 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 }, x, y;
    size_t i;
    float r;

    for (i = 0; i + 16 <= n; i += 16) {
        memcpy(&x, a + i, 16);
        memcpy(&y, b + i, 16);
        s0 += x * y;
        memcpy(&x, a + i + 4, 16);
        memcpy(&y, b + i + 4, 16);
        s1 += x * y;
        memcpy(&x, a + i + 8, 16);
        memcpy(&y, b + i + 8, 16);
        s2 += x * y;
        memcpy(&x, a + i + 12, 16);
        memcpy(&y, b + i + 12, 16);
        s3 += x * y;
    }
    s0 = (s0 + s1) + (s2 + s3);
    r = (s0[0] + s0[1]) + (s0[2] + s0[3]);
    for (; i < n; i++) {
        r += a[i] * b[i];
    }
    return r;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)

#define AVC_SC_HAVE_AVX2  1

typedef float avc_sc_f8 __attribute__((vector_size(32)));

__attribute__((target("avx2,fma")))
static float
avc_sc_dot8(const float *a, const float *b, size_t n)
{
    avc_sc_f8 s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 }, x, y;
    size_t i;
    float r = 0;
    int k;

    for (i = 0; i + 32 <= n; i += 32) {
        memcpy(&x, a + i, 32);
        memcpy(&y, b + i, 32);
        s0 += x * y;
        memcpy(&x, a + i + 8, 32);
        memcpy(&y, b + i + 8, 32);
        s1 += x * y;
        memcpy(&x, a + i + 16, 32);
        memcpy(&y, b + i + 16, 32);
        s2 += x * y;
        memcpy(&x, a + i + 24, 32);
        memcpy(&y, b + i + 24, 32);
        s3 += x * y;
    }
    s0 = (s0 + s1) + (s2 + s3);
    for (k = 0; k < 8; k++) {
        r += s0[k];
    }
    for (; i < n; i++) {
        r += a[i] * b[i];
    }
    return r;
}

#endif

typedef float (*avc_sc_dot_pt)(const float *a, const float *b, size_t n);

static avc_sc_dot_pt
avc_sc_dot_impl(void)
{
#ifdef AVC_SC_HAVE_AVX2
    static int avx2 = -1;

    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (avx2) {
        return avc_sc_dot8;
    }
#endif
    return avc_sc_dot4;
}

/* 1 / |v|, or 0 for a zero or non-finite vector */
static double
avc_sc_inv_norm(const float *v, size_t dim)
{
    double s = 0;
    size_t i;

    for (i = 0; i < dim; i++) {
        s += (double) v[i] * v[i];
    }
    if (!(s > 0) || !isfinite(s)) {
        return 0;
    }
    return 1.0 / sqrt(s);
}

/*
 * The answer of the dealership whose question is nearest to the unit
 * vector q (of dim floats), and its cosine in *best; 0 when none.
 */
static uint64_t
avc_sc_nearest(avc__sc_hdr_t *h, avc_sc_dealer_t *d, const float *q,
    size_t dim, double scale, double *best)
{
    avc_sc_dot_pt dot = avc_sc_dot_impl();
    uint64_t off, found = 0;
    avc_sc_item_t *it;
    double s;

    *best = -2;
    for (off = d->head; off; off = it->dnext) {
        it = avc_sc_item(h, off);
        if (it->dim != dim) {
            continue;
        }
        s = dot(q, avc_sc_vec(it), dim) * scale;
        if (s > *best) {
            *best = s;
            found = off;
        }
    }
    return found;
}

int
avc_shcache_answer_put(avc_shcache_t *c, int64_t dealership_id,
    int64_t generation, const float *qvec, size_t dim, const void *answer,
    size_t len)
{
    uint64_t dhash, doff, off, same;
    avc_sc_dealer_t *d;
    avc_sc_item_t *it;
    avc__sc_hdr_t *h;
    double inv, best;
    size_t need, i;
    float *vec;

    if (c == NULL || qvec == NULL || (answer == NULL && len > 0) || dim == 0
        || dim > AVC_SHCACHE_DIM_MAX)
    {
        return AVC_EINVAL;
    }
    inv = avc_sc_inv_norm(qvec, dim);
    if (inv == 0) {
        return AVC_EINVAL;
    }
    h = c->h;
    need = avc_sc_entry_size(h, dim, 0, len);
    if (need == 0) {
        return AVC_ETOOBIG;
    }
    dhash = avc_sc_hash(c, AVC__SC_DEALER, &dealership_id,
                        sizeof(dealership_id), NULL, 0);

    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ESYS;
    }
    /* first the block: evicting may free the dealership's record */
    off = avc_sc_alloc(h, need);
    if (off == 0) {
        avc_sc_unlock(c);
        return AVC_ENOMEM;
    }
    it = avc_sc_item_init(h, off, AVC__SC_ANSWER, 0, dim, 0, len);
    vec = avc_sc_vec(it);
    for (i = 0; i < dim; i++) {
        vec[i] = (float) (qvec[i] * inv);
    }

    doff = avc_sc_find_dealer(h, dhash, dealership_id);
    if (doff) {
        d = avc_sc_dealer(h, doff);
        if (generation < d->generation) {
            avc__sc_free(h, off);
            avc_sc_unlock(c);
            return AVC_ESTATE;
        }
        if (generation > d->generation) {
            avc_sc_dealer_empty(h, doff, 1);
            d->generation = generation;
        }
        /* the same question again (two workers missed at once) */
        same = avc_sc_nearest(h, d, vec, dim, 1.0, &best);
        if (same && best >= AVC_SC_SAME_COSINE) {
            avc_sc_remove(h, same, 1);
        }
        while (d->count >= AVC_SHCACHE_ANSWERS_MAX) {
            avc_sc_remove(h, d->tail, 1);
            h->stats[AVC_SHCACHE_EVICTIONS]++;
        }
    } else {
        /* the entry is not linked yet: evicting cannot take it */
        doff = avc_sc_alloc(h, sizeof(avc_sc_dealer_t));
        if (doff == 0) {
            avc__sc_free(h, off);
            avc_sc_unlock(c);
            return AVC_ENOMEM;
        }
        d = avc_sc_dealer(h, doff);
        memset(d, 0, sizeof(*d));
        d->n.kind = AVC__SC_DEALER;
        d->n.hash = dhash;
        d->id = dealership_id;
        d->generation = generation;
        avc_sc_hash_insert(h, doff);
        h->stats[AVC_SHCACHE_ANSWER_DEALERSHIPS]++;
    }

    it->owner = (int64_t) doff;
    if (len) {
        memcpy(avc_sc_blob(it), answer, len);
    }
    avc_sc_lru_push(h, off);
    avc_sc_dl_push(h, d, off);
    d->count++;
    h->stats[AVC_SHCACHE_ANSWER_ENTRIES]++;
    avc_sc_unlock(c);
    return AVC_OK;
}

int
avc_shcache_answer_find(avc_shcache_t *c, int64_t dealership_id,
    int64_t generation, const float *qvec, size_t dim, double threshold,
    void **answer, size_t *len, double *similarity)
{
    size_t cap = AVC_SC_COPY_HINT;
    avc_sc_dealer_t *d = NULL;
    uint64_t dhash, doff, off;
    avc_sc_item_t *it;
    avc__sc_hdr_t *h;
    double inv, best;
    void *buf;
    int tries;

    if (similarity) {
        *similarity = -2;
    }
    if (c == NULL || qvec == NULL || answer == NULL || len == NULL
        || dim == 0 || dim > AVC_SHCACHE_DIM_MAX)
    {
        return AVC_EINVAL;
    }
    inv = avc_sc_inv_norm(qvec, dim);
    if (inv == 0) {
        return AVC_EINVAL;
    }
    h = c->h;
    dhash = avc_sc_hash(c, AVC__SC_DEALER, &dealership_id,
                        sizeof(dealership_id), NULL, 0);

    for (tries = 0; tries < AVC_SC_COPY_TRIES; tries++) {
        /* allocated before the lock, which allows none outside the region */
        buf = malloc(cap ? cap : 1);
        if (buf == NULL) {
            return AVC_ENOMEM;
        }
        if (avc_sc_lock(c) != AVC_OK) {
            free(buf);
            return AVC_ESYS;
        }
        best = -2;
        off = 0;
        doff = avc_sc_find_dealer(h, dhash, dealership_id);
        if (doff) {
            d = avc_sc_dealer(h, doff);
            if (generation > d->generation) {
                avc_sc_dealer_empty(h, doff, 0);
            } else if (generation == d->generation) {
                off = avc_sc_nearest(h, d, qvec, dim, inv, &best);
            }
        }
        if (similarity) {
            *similarity = best;
        }
        if (off == 0 || !(best >= threshold)) {
            h->stats[AVC_SHCACHE_ANSWER_MISSES]++;
            avc_sc_unlock(c);
            free(buf);
            return AVC_ENOTFOUND;
        }
        it = avc_sc_item(h, off);
        if (it->len > cap) {
            cap = it->len;
            avc_sc_unlock(c);
            free(buf);
            continue;
        }
        memcpy(buf, avc_sc_blob(it), it->len);
        *len = it->len;
        avc_sc_lru_touch(h, off);
        if (d->head != off) {
            avc_sc_dl_unlink(h, d, off);
            avc_sc_dl_push(h, d, off);
        }
        h->stats[AVC_SHCACHE_ANSWER_HITS]++;
        avc_sc_unlock(c);
        *answer = buf;
        return AVC_OK;
    }
    /* the answer kept growing under us: a miss, not worth a counter */
    return AVC_ENOTFOUND;
}

int
avc_shcache_answer_invalidate(avc_shcache_t *c, int64_t dealership_id)
{
    uint64_t dhash, doff;

    if (c == NULL) {
        return AVC_EINVAL;
    }
    dhash = avc_sc_hash(c, AVC__SC_DEALER, &dealership_id,
                        sizeof(dealership_id), NULL, 0);
    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ESYS;
    }
    doff = avc_sc_find_dealer(c->h, dhash, dealership_id);
    if (doff) {
        avc_sc_dealer_empty(c->h, doff, 0);
    }
    avc_sc_unlock(c);
    return AVC_OK;
}


/* session context */

/* the length of a valid session id, or 0 */
static size_t
avc_sc_sid_len(const char *sid)
{
    size_t n;

    if (sid == NULL) {
        return 0;
    }
    n = strnlen(sid, AVC_SHCACHE_SID_MAX + 1);
    return n <= AVC_SHCACHE_SID_MAX ? n : 0;
}

int
avc_shcache_session_put(avc_shcache_t *c, const char *session_id,
    int64_t user_id, const void *blob, size_t len)
{
    avc__sc_hdr_t *h;
    avc_sc_item_t *it;
    uint64_t hash, off;
    size_t sl, need;

    sl = avc_sc_sid_len(session_id);
    if (c == NULL || sl == 0 || (blob == NULL && len > 0)) {
        return AVC_EINVAL;
    }
    h = c->h;
    need = avc_sc_entry_size(h, 0, sl, len);
    if (need == 0) {
        return AVC_ETOOBIG;
    }
    hash = avc_sc_hash(c, AVC__SC_SESSION, session_id, sl, NULL, 0);

    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ESYS;
    }
    off = avc_sc_find(h, hash, AVC__SC_SESSION, session_id, sl, NULL, 0);
    if (off) {
        it = avc_sc_item(h, off);
        if (it->owner != user_id) {
            avc_sc_unlock(c);
            return AVC_EFORBIDDEN;
        }
        if (avc_sc_reusable(avc__sc_usable(h, off), need)) {
            if (len) {
                memcpy(avc_sc_blob(it), blob, len);
            }
            it->len = len;
            avc_sc_lru_touch(h, off);
            avc_sc_unlock(c);
            return AVC_OK;
        }
        avc_sc_remove(h, off, 0);
    }
    off = avc_sc_alloc(h, need);
    if (off == 0) {
        avc_sc_unlock(c);
        return AVC_ENOMEM;
    }
    it = avc_sc_item_init(h, off, AVC__SC_SESSION, hash, 0, sl, len);
    it->owner = user_id;
    memcpy(avc_sc_key(it), session_id, sl);
    if (len) {
        memcpy(avc_sc_blob(it), blob, len);
    }
    avc_sc_hash_insert(h, off);
    avc_sc_lru_push(h, off);
    h->stats[AVC_SHCACHE_SESSIONS]++;
    avc_sc_unlock(c);
    return AVC_OK;
}

int
avc_shcache_session_get(avc_shcache_t *c, const char *session_id,
    int64_t user_id, void **blob, size_t *len)
{
    size_t cap = AVC_SC_COPY_HINT, sl;
    avc__sc_hdr_t *h;
    avc_sc_item_t *it;
    uint64_t hash, off;
    int tries;
    void *buf;

    sl = avc_sc_sid_len(session_id);
    if (c == NULL || sl == 0 || blob == NULL || len == NULL) {
        return AVC_EINVAL;
    }
    h = c->h;
    hash = avc_sc_hash(c, AVC__SC_SESSION, session_id, sl, NULL, 0);

    for (tries = 0; tries < AVC_SC_COPY_TRIES; tries++) {
        buf = malloc(cap ? cap : 1);
        if (buf == NULL) {
            return AVC_ENOMEM;
        }
        if (avc_sc_lock(c) != AVC_OK) {
            free(buf);
            return AVC_ESYS;
        }
        off = avc_sc_find(h, hash, AVC__SC_SESSION, session_id, sl, NULL, 0);
        it = off ? avc_sc_item(h, off) : NULL;
        if (it == NULL || it->owner != user_id) {
            h->stats[AVC_SHCACHE_SESSION_MISSES]++;
            avc_sc_unlock(c);
            free(buf);
            return AVC_ENOTFOUND;
        }
        if (it->len > cap) {
            cap = it->len;
            avc_sc_unlock(c);
            free(buf);
            continue;
        }
        memcpy(buf, avc_sc_blob(it), it->len);
        *len = it->len;
        avc_sc_lru_touch(h, off);
        h->stats[AVC_SHCACHE_SESSION_HITS]++;
        avc_sc_unlock(c);
        *blob = buf;
        return AVC_OK;
    }
    return AVC_ENOTFOUND;
}

int
avc_shcache_session_drop(avc_shcache_t *c, const char *session_id,
    int64_t user_id)
{
    uint64_t hash, off;
    size_t sl;
    int rc = AVC_ENOTFOUND;

    sl = avc_sc_sid_len(session_id);
    if (c == NULL || sl == 0) {
        return AVC_EINVAL;
    }
    hash = avc_sc_hash(c, AVC__SC_SESSION, session_id, sl, NULL, 0);
    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ESYS;
    }
    off = avc_sc_find(c->h, hash, AVC__SC_SESSION, session_id, sl, NULL, 0);
    if (off && avc_sc_item(c->h, off)->owner == user_id) {
        avc_sc_remove(c->h, off, 0);
        rc = AVC_OK;
    }
    avc_sc_unlock(c);
    return rc;
}


/* counters */

static void
avc_sc_snapshot(avc__sc_hdr_t *h, unsigned long long *out, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        switch (i) {
        case AVC_SHCACHE_BYTES_TOTAL:
            out[i] = h->size;
            break;
        case AVC_SHCACHE_BYTES_USED:
            out[i] = h->arena + h->used;
            break;
        default:
            out[i] = h->stats[i];
        }
    }
}

int
avc_shcache_stats(avc_shcache_t *c, unsigned long long *out, size_t n)
{
    if (c == NULL || out == NULL || n > AVC_SHCACHE_STAT_COUNT) {
        return AVC_EINVAL;
    }
    if (avc_sc_lock(c) != AVC_OK) {
        return AVC_ESYS;
    }
    avc_sc_snapshot(c->h, out, n);
    avc_sc_unlock(c);
    return AVC_OK;
}

unsigned long long
avc_shcache_stat(avc_shcache_t *c, avc_shcache_stat_t which)
{
    unsigned long long v[AVC_SHCACHE_STAT_COUNT];

    if ((unsigned) which >= AVC_SHCACHE_STAT_COUNT
        || avc_shcache_stats(c, v, (size_t) which + 1) != AVC_OK)
    {
        return 0;
    }
    return v[which];
}


/* tests */

void
avc__shcache_test_weak_hash(avc_shcache_t *c, int on)
{
    c->hash_mask = on ? 0 : ~0ULL;
}

int
avc__shcache_test_hold(avc_shcache_t *c, int scribble)
{
    avc__sc_hdr_t *h = c->h;
    int rc;

    rc = avc_sc_lock(c);
    if (rc == AVC_OK && scribble) {
        /* an unlink and a free list cut in the middle */
        h->lru_head = h->arena + 8;
        h->lru_tail = h->size + 4096;
        *(uint64_t *) avc__sc_ptr(h, h->buckets) = h->arena + 24;
        h->bins[3] = h->arena_end - 16;
        h->used += 12345;
        h->stats[AVC_SHCACHE_EMBED_ENTRIES] += 7;
    }
    return rc;
}

void
avc__shcache_test_release(avc_shcache_t *c)
{
    avc_sc_unlock(c);
}

const char *
avc__shcache_check(avc_shcache_t *c)
{
    uint64_t blocks, off, back, limit, i, *bk, n[5] = { 0 }, lru[5] = { 0 };
    uint64_t answers = 0, cnt;
    avc__sc_hdr_t *h = c->h;
    const char *why;
    avc_sc_dealer_t *d;
    avc_sc_item_t *it;
    avc_sc_node_t *nd;

    if (avc_sc_lock(c) != AVC_OK) {
        return "the lock";
    }
    why = avc__sc_arena_check(h, &blocks);
    if (why) {
        goto done;
    }
    limit = blocks + 1;
    bk = avc__sc_ptr(h, h->buckets);

    why = "a hash chain is broken";
    for (i = 0; i < h->nbuckets; i++) {
        cnt = 0;
        for (off = bk[i]; off; off = nd->hnext) {
            if (off < h->arena || off >= h->arena_end || off % 16
                || ++cnt > limit)
            {
                goto done;
            }
            nd = avc_sc_node(h, off);
            if ((nd->hash & (h->nbuckets - 1)) != i
                || (nd->kind != AVC__SC_EMBED && nd->kind != AVC__SC_SESSION
                    && nd->kind != AVC__SC_DEALER))
            {
                goto done;
            }
            n[nd->kind]++;
            if (nd->kind != AVC__SC_DEALER) {
                continue;
            }
            d = (avc_sc_dealer_t *) nd;
            back = 0;
            answers = 0;
            for (off = d->head; off; off = it->dnext) {
                it = avc_sc_item(h, off);
                if (++answers > limit || it->n.kind != AVC__SC_ANSWER
                    || it->owner != (int64_t) avc__sc_off(h, d)
                    || it->dprev != back)
                {
                    why = "a dealership's list is broken";
                    goto done;
                }
                back = off;
            }
            if (back != d->tail || answers != d->count || answers == 0
                || answers > AVC_SHCACHE_ANSWERS_MAX)
            {
                why = "a dealership's count or tail is wrong";
                goto done;
            }
            n[AVC__SC_ANSWER] += answers;
            off = avc__sc_off(h, d);
        }
    }

    why = "the LRU list is broken";
    back = 0;
    cnt = 0;
    for (off = h->lru_head; off; off = it->next) {
        if (off < h->arena || off >= h->arena_end || ++cnt > limit) {
            goto done;
        }
        it = avc_sc_item(h, off);
        if (it->prev != back || it->n.kind < AVC__SC_EMBED
            || it->n.kind > AVC__SC_SESSION)
        {
            goto done;
        }
        lru[it->n.kind]++;
        back = off;
    }
    if (back != h->lru_tail) {
        goto done;
    }

    why = "the counts disagree";
    if (lru[AVC__SC_EMBED] != n[AVC__SC_EMBED]
        || lru[AVC__SC_SESSION] != n[AVC__SC_SESSION]
        || lru[AVC__SC_ANSWER] != n[AVC__SC_ANSWER]
        || h->stats[AVC_SHCACHE_EMBED_ENTRIES] != n[AVC__SC_EMBED]
        || h->stats[AVC_SHCACHE_SESSIONS] != n[AVC__SC_SESSION]
        || h->stats[AVC_SHCACHE_ANSWER_ENTRIES] != n[AVC__SC_ANSWER]
        || h->stats[AVC_SHCACHE_ANSWER_DEALERSHIPS] != n[AVC__SC_DEALER]
        || blocks != n[1] + n[2] + n[3] + n[4])
    {
        goto done;
    }
    why = NULL;

done:
    avc_sc_unlock(c);
    return why;
}
