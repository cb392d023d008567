/*
 * The layout of a shared cache region and the declarations shared by the
 * files of src/cache (avc__ prefix); not installed.
 *
 *   [0, hdr)               avc__sc_hdr_t: identity, lock, counters, bins
 *   [buckets, +8 * n)      hash table: uint64_t offsets of chains
 *   [arena, arena_end)     blocks of the allocator (shalloc.c)
 *
 * Every link is an offset from the region's start; 0 is "none" (offset 0
 * is the header, never a block).  All fields after the lock change only
 * with the lock held, except the identity fields, which are written once
 * by avc_shcache_init() before the region is published.
 */
#ifndef AVC_CACHE_INTERNAL_H
#define AVC_CACHE_INTERNAL_H

#include "internal.h"

#include <avatarcore/cache.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define AVC__SC_MAGIC      0x3148435343564141ULL    /* "AAVCSCH1" */
#define AVC__SC_VERSION    1

#define AVC__SC_MIN_SIZE   (64 * 1024)
#define AVC__SC_MAX_SIZE   ((uint64_t) 1 << 40)

/*
 * Free-list bins: a block of u 16-byte units lands in bin u below 32,
 * else in one of 8 sub-bins per power of two (at most 1/8 apart), so a
 * bin above a request's own holds only blocks large enough for it.
 */
#define AVC__SC_NBINS      288
#define AVC__SC_MAPWORDS   ((AVC__SC_NBINS + 63) / 64)

/* entry kinds */
#define AVC__SC_EMBED      1
#define AVC__SC_ANSWER     2
#define AVC__SC_SESSION    3
#define AVC__SC_DEALER     4

typedef struct {
    /* identity, written once */
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;          /* sizeof(avc__sc_hdr_t): the layout */
    uint64_t size;              /* of the region, bytes */
    uint64_t sipkey[2];
    uint64_t buckets;           /* offset of uint64_t[nbuckets] */
    uint64_t nbuckets;          /* a power of two */
    uint64_t arena;             /* offset of the first block */
    uint64_t arena_end;         /* one past the last block */

    pthread_mutex_t lock;

    /* under the lock */
    uint64_t lru_head;          /* entries but dealerships, most recent */
    uint64_t lru_tail;          /* first */
    uint64_t used;              /* bytes in allocated blocks */
    uint64_t stats[AVC_SHCACHE_STAT_COUNT];
    uint64_t binmap[AVC__SC_MAPWORDS];
    uint64_t bins[AVC__SC_NBINS];   /* free lists */
} avc__sc_hdr_t;

#define avc__sc_ptr(h, off)  ((void *) ((char *) (h) + (off)))
#define avc__sc_off(h, p)    ((uint64_t) ((char *) (p) - (char *) (h)))

/* the arena: shalloc.c */
void avc__sc_arena_reset(avc__sc_hdr_t *h);
/* a block of at least n bytes, 16-byte aligned: its offset, or 0 */
uint64_t avc__sc_alloc(avc__sc_hdr_t *h, size_t n);
void avc__sc_free(avc__sc_hdr_t *h, uint64_t off);
/* the bytes a block at off may hold (at least what was asked) */
size_t avc__sc_usable(avc__sc_hdr_t *h, uint64_t off);
/* the largest n avc__sc_alloc() may be asked for */
size_t avc__sc_alloc_max(avc__sc_hdr_t *h);
/* walk the arena and the free lists: 0, or a static reason */
const char *avc__sc_arena_check(avc__sc_hdr_t *h, uint64_t *blocks);

/* SipHash-2-4, incremental */
typedef struct {
    uint64_t v[4];
    uint64_t tail;              /* bytes not yet compressed, LE */
    uint64_t total;             /* bytes seen */
} avc__sip_t;

void avc__sip_init(avc__sip_t *s, const uint64_t key[2]);
void avc__sip_update(avc__sip_t *s, const void *p, size_t n);
uint64_t avc__sip_final(avc__sip_t *s);

/*
 * For tests.  check walks the whole region (arena, hash chains, LRU and
 * dealership lists, counts) under the lock: NULL, or what is wrong.
 * hold takes the lock and keeps it; with scribble it then breaks the
 * lists, as a process dying in the middle of an update would.  release
 * gives the lock back.  weak_hash makes every key of this handle hash to
 * the same chain (1) or back (0).
 */
const char *avc__shcache_check(avc_shcache_t *c);
int avc__shcache_test_hold(avc_shcache_t *c, int scribble);
void avc__shcache_test_release(avc_shcache_t *c);
void avc__shcache_test_weak_hash(avc_shcache_t *c, int on);

#endif /* AVC_CACHE_INTERNAL_H */
