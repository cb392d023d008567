/*
 * The allocator of a shared cache region's arena: boundary tags and
 * segregated free lists, every link an offset.
 *
 * A block is a 16-byte header (its size, with bit 0 set when in use, and
 * the size of the block just before it) and a payload; sizes are
 * multiples of 16 and at least 32, since a free block keeps the links of
 * its free list in the first 16 bytes of its payload.  Free blocks are
 * coalesced at once, so no two free blocks touch.  Every operation is
 * O(1) but for a walk of at most AVC_SA_WALK blocks of one bin: it runs
 * with the region's lock held.
 */
#include "cache_internal.h"

#include <string.h>

#define AVC_SA_HDR    16
#define AVC_SA_MIN    32
#define AVC_SA_USED   1ULL
#define AVC_SA_WALK   8         /* first fit within a request's own bin */

typedef struct {
    uint64_t size;              /* bytes of the block; bit 0: in use */
    uint64_t prev_size;         /* of the block just before; 0: first */
    uint64_t next;              /* free list, when free */
    uint64_t prev;
} avc_sa_blk_t;

#define avc_sa_blk(h, off)   ((avc_sa_blk_t *) avc__sc_ptr(h, off))
#define avc_sa_size(b)       ((b)->size & ~AVC_SA_USED)

static unsigned
avc_sa_bin(uint64_t size)
{
    uint64_t u = size >> 4;
    unsigned p;

    if (u < 32) {
        return (unsigned) u;
    }
    p = 63 - (unsigned) __builtin_clzll(u);
    return 32 + (p - 5) * 8 + (unsigned) ((u >> (p - 3)) & 7);
}

static void
avc_sa_insert(avc__sc_hdr_t *h, uint64_t off)
{
    avc_sa_blk_t *b = avc_sa_blk(h, off);
    unsigned bin = avc_sa_bin(b->size);

    b->prev = 0;
    b->next = h->bins[bin];
    if (b->next) {
        avc_sa_blk(h, b->next)->prev = off;
    }
    h->bins[bin] = off;
    h->binmap[bin / 64] |= 1ULL << (bin % 64);
}

static void
avc_sa_remove(avc__sc_hdr_t *h, uint64_t off)
{
    avc_sa_blk_t *b = avc_sa_blk(h, off);
    unsigned bin = avc_sa_bin(b->size);

    if (b->prev) {
        avc_sa_blk(h, b->prev)->next = b->next;
    } else {
        h->bins[bin] = b->next;
        if (b->next == 0) {
            h->binmap[bin / 64] &= ~(1ULL << (bin % 64));
        }
    }
    if (b->next) {
        avc_sa_blk(h, b->next)->prev = b->prev;
    }
}

/* the first non-empty bin above bin, or AVC__SC_NBINS */
static unsigned
avc_sa_next_bin(avc__sc_hdr_t *h, unsigned bin)
{
    unsigned w = (bin + 1) / 64;
    uint64_t m;

    if (bin + 1 >= AVC__SC_NBINS) {
        return AVC__SC_NBINS;
    }
    m = h->binmap[w] & (~0ULL << ((bin + 1) % 64));
    for (;;) {
        if (m) {
            return w * 64 + (unsigned) __builtin_ctzll(m);
        }
        if (++w == AVC__SC_MAPWORDS) {
            return AVC__SC_NBINS;
        }
        m = h->binmap[w];
    }
}

void
avc__sc_arena_reset(avc__sc_hdr_t *h)
{
    avc_sa_blk_t *b;

    memset(h->bins, 0, sizeof(h->bins));
    memset(h->binmap, 0, sizeof(h->binmap));
    b = avc_sa_blk(h, h->arena);
    b->size = h->arena_end - h->arena;
    b->prev_size = 0;
    avc_sa_insert(h, h->arena);
    h->used = 0;
}

size_t
avc__sc_alloc_max(avc__sc_hdr_t *h)
{
    return (size_t) (((h->arena_end - h->arena) / 4) & ~15ULL) - AVC_SA_HDR;
}

uint64_t
avc__sc_alloc(avc__sc_hdr_t *h, size_t n)
{
    uint64_t need, off, rest, roff, next;
    avc_sa_blk_t *b, *r;
    unsigned bin, i;

    if (n > avc__sc_alloc_max(h)) {
        return 0;
    }
    need = ((uint64_t) n + AVC_SA_HDR + 15) & ~15ULL;
    if (need < AVC_SA_MIN) {
        need = AVC_SA_MIN;
    }

    bin = avc_sa_bin(need);
    off = h->bins[bin];
    for (i = 0; off && i < AVC_SA_WALK; i++) {
        if (avc_sa_blk(h, off)->size >= need) {
            break;
        }
        off = avc_sa_blk(h, off)->next;
    }
    if (off == 0 || i == AVC_SA_WALK) {
        bin = avc_sa_next_bin(h, bin);
        if (bin == AVC__SC_NBINS) {
            return 0;
        }
        off = h->bins[bin];
    }

    b = avc_sa_blk(h, off);
    avc_sa_remove(h, off);
    rest = b->size - need;
    if (rest >= AVC_SA_MIN) {
        roff = off + need;
        r = avc_sa_blk(h, roff);
        r->size = rest;
        r->prev_size = need;
        next = roff + rest;
        if (next < h->arena_end) {
            avc_sa_blk(h, next)->prev_size = rest;
        }
        avc_sa_insert(h, roff);
        b->size = need;
    }
    h->used += b->size;
    b->size |= AVC_SA_USED;
    return off + AVC_SA_HDR;
}

void
avc__sc_free(avc__sc_hdr_t *h, uint64_t payload)
{
    uint64_t off = payload - AVC_SA_HDR, size, next, prev;
    avc_sa_blk_t *b = avc_sa_blk(h, off), *n;

    size = avc_sa_size(b);
    h->used -= size;

    next = off + size;
    if (next < h->arena_end) {
        n = avc_sa_blk(h, next);
        if (!(n->size & AVC_SA_USED)) {
            avc_sa_remove(h, next);
            size += n->size;
        }
    }
    if (b->prev_size) {
        prev = off - b->prev_size;
        if (!(avc_sa_blk(h, prev)->size & AVC_SA_USED)) {
            avc_sa_remove(h, prev);
            size += b->prev_size;
            off = prev;
            b = avc_sa_blk(h, off);
        }
    }
    b->size = size;
    next = off + size;
    if (next < h->arena_end) {
        avc_sa_blk(h, next)->prev_size = size;
    }
    avc_sa_insert(h, off);
}

size_t
avc__sc_usable(avc__sc_hdr_t *h, uint64_t payload)
{
    return (size_t) (avc_sa_size(avc_sa_blk(h, payload - AVC_SA_HDR))
                     - AVC_SA_HDR);
}

const char *
avc__sc_arena_check(avc__sc_hdr_t *h, uint64_t *blocks)
{
    uint64_t off, prev_size = 0, used = 0, nfree = 0, listed = 0, size;
    uint64_t limit = (h->arena_end - h->arena) / AVC_SA_MIN + 1, back, n;
    int prev_free = 0;
    avc_sa_blk_t *b;
    unsigned bin;

    *blocks = 0;
    for (off = h->arena; off < h->arena_end; off += size) {
        b = avc_sa_blk(h, off);
        size = avc_sa_size(b);
        if (size < AVC_SA_MIN || size % 16 || size > h->arena_end - off) {
            return "a block has a bad size";
        }
        if (b->prev_size != prev_size) {
            return "a block's prev_size is wrong";
        }
        if (b->size & AVC_SA_USED) {
            used += size;
            (*blocks)++;
            prev_free = 0;
        } else {
            if (prev_free) {
                return "two free blocks touch";
            }
            nfree++;
            prev_free = 1;
        }
        prev_size = size;
    }
    if (used != h->used) {
        return "used bytes differ from the blocks";
    }
    for (bin = 0; bin < AVC__SC_NBINS; bin++) {
        if (!!h->bins[bin]
            != !!(h->binmap[bin / 64] & (1ULL << (bin % 64))))
        {
            return "the bin map is wrong";
        }
        back = 0;
        n = 0;
        for (off = h->bins[bin]; off; off = b->next) {
            if (off < h->arena || off >= h->arena_end || off % 16
                || ++n > limit)
            {
                return "a free list is broken";
            }
            b = avc_sa_blk(h, off);
            if ((b->size & AVC_SA_USED) || avc_sa_bin(b->size) != bin
                || b->prev != back)
            {
                return "a free list holds a wrong block";
            }
            back = off;
            listed++;
        }
    }
    if (listed != nfree) {
        return "free blocks are missing from the lists";
    }
    return NULL;
}
