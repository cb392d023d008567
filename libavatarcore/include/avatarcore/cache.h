/*
 * avatarcore/cache.h - the caches of a node (DESIGN.md section 6) in one
 * memory region shared by processes.
 *
 * One region holds three kinds of entries:
 *
 *   embed     query embeddings: the exact (model, text) to its vector;
 *   answer    semantic answers of training mode, per dealership: a
 *             question's vector and an opaque answer blob, found by
 *             cosine similarity over a threshold;
 *   session   the context of a conversation: an opaque blob under a
 *             session id, owner-checked (a user id).
 *
 * The region.  In nginx it is a shared-memory zone (avatar_cache_zone
 * name:size), created by the master before the fork, so every worker
 * maps it at the same address:
 *
 *   init_zone(zone, data):
 *       data != NULL (reload, the old zone is reused):
 *           c = avc_shcache_attach(mem, size, &err);
 *           if (c == NULL) c = avc_shcache_init(mem, size, &err);
 *       else
 *           c = avc_shcache_init(mem, size, &err);
 *
 * where mem is the zone's memory past nginx's slab pool header (or one
 * block taken from that pool), the same pointer and size on every
 * reload.  Any other program uses avc_shcache_new_private(): an
 * anonymous MAP_SHARED mapping, which stays shared with children forked
 * afterwards.
 *
 * The region starts with a header: a magic number, the layout version,
 * the region's size, a random hash key, the lock, the counters; then a
 * hash table (one bucket per 512 bytes of region); then the arena.
 * Every link inside the region is an offset from its start, so a region
 * may be mapped at different addresses by different processes.  The
 * handle is a small per-process struct pointing at the region.
 *
 * Memory.  The arena is managed by a boundary-tag allocator with
 * segregated free lists (blocks of 16-byte units, coalesced on free).
 * When an allocation fails, the least recently used entry of any kind
 * is evicted and the allocation retried, so a put only fails for an
 * entry larger than a quarter of the arena (AVC_ETOOBIG): the cache is
 * never "full".  A get that hits makes its entry the most recent.
 *
 * Keys are hashed with SipHash-2-4 under a key drawn at initialisation,
 * so texts chosen by users cannot crowd one hash chain; a hit always
 * compares the whole key.
 *
 * Semantic answers are kept per dealership, at most
 * AVC_SHCACHE_ANSWERS_MAX of them (the least recently used beyond that
 * is dropped), with their vectors normalised to unit length, as floats.
 * A lookup scans the dealership's list only: with 512 entries of 512
 * dimensions that is about 26 microseconds of one x86 core with AVX2
 * (tools/bench/cache).  Each dealership carries the
 * generation of its knowledge base last seen: a put or find with a newer
 * generation drops all its older entries first; one with an older
 * generation is refused (put) or misses (find).
 *
 * Locking.  One process-shared, robust mutex in the region, held only
 * for bounded work inside the region: a hash lookup, one scan of at most
 * AVC_SHCACHE_ANSWERS_MAX vectors, copies, evictions.  No I/O, no
 * allocation outside the region while it is held: a lookup returning a
 * blob allocates a buffer first and, when the blob is larger, looks up
 * again with one of the right size.  A process that dies holding the
 * lock (a worker killed by a signal) leaves the structures possibly
 * half-linked: the next process to take the lock sees EOWNERDEAD, marks
 * the mutex consistent and empties the cache (AVC_SHCACHE_RESETS counts
 * this).  Hit, miss and eviction counters are kept.
 *
 * Thread safety: every function is thread-safe and process-safe, on any
 * number of handles to the same region.
 */
#ifndef AVATARCORE_CACHE_H
#define AVATARCORE_CACHE_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_shcache_s avc_shcache_t;

/* answers kept per dealership */
#define AVC_SHCACHE_ANSWERS_MAX  512
/* the largest vector, in floats */
#define AVC_SHCACHE_DIM_MAX      16384
/* the longest session id, in bytes */
#define AVC_SHCACHE_SID_MAX      256

/*
 * The smallest region accepted (64 KiB).  Regions of up to 1 TiB are
 * accepted; a region must be 16-byte aligned.
 */
AVC_API size_t avc_shcache_min_size(void);

/*
 * Format size bytes at mem as an empty cache (whatever was there is
 * lost), and return a handle to it; mem is borrowed and must outlive the
 * handle.  No other process may use the region during this call.
 * Returns NULL with *err (when err is not NULL) set: AVC_EINVAL (mem
 * NULL or misaligned, size out of range), AVC_ESYS (the mutex could not
 * be made), AVC_ENOMEM (the handle).
 */
AVC_API avc_shcache_t *avc_shcache_init(void *mem, size_t size, int *err);

/*
 * A handle to a region already formatted by avc_shcache_init() (in this
 * or another process, possibly mapped at another address), with all its
 * entries.  Returns NULL with *err set: AVC_EINVAL (mem NULL or
 * misaligned, or not a cache: no magic number), AVC_EVERSION (a cache of
 * another layout version or of another size: format it anew),
 * AVC_ENOMEM.
 */
AVC_API avc_shcache_t *avc_shcache_attach(void *mem, size_t size, int *err);

/*
 * A cache in a private anonymous mapping of size bytes (MAP_SHARED, so
 * processes forked afterwards share it).  Returns NULL with *err set:
 * AVC_EINVAL (size out of range), AVC_ESYS (mmap failed), AVC_ENOMEM.
 */
AVC_API avc_shcache_t *avc_shcache_new_private(size_t size, int *err);

/*
 * Free the handle; a private region is unmapped (in this process: a
 * forked process keeps its own mapping).  The region given to init or
 * attach is left as it is.  NULL is a no-op.
 */
AVC_API void avc_shcache_free(avc_shcache_t *c);

/* Drop every entry.  The counters of hits, misses, evictions and resets
 * are kept. */
AVC_API void avc_shcache_clear(avc_shcache_t *c);

/*
 * Query embeddings.
 *
 * get copies the vector of (model, text) into out[dim] and returns AVC_OK,
 * or AVC_ENOTFOUND (also when the stored vector has another dimension,
 * or an argument is NULL).
 *
 * put stores a copy (replacing an older vector of the key): AVC_OK,
 * AVC_EINVAL (NULL, dim 0 or over AVC_SHCACHE_DIM_MAX), AVC_ETOOBIG (the
 * entry is over a quarter of the arena), AVC_ESYS (the lock).
 */
AVC_API int avc_shcache_embed_get(avc_shcache_t *c, const char *model,
                                  const char *text, float *out, size_t dim);
AVC_API int avc_shcache_embed_put(avc_shcache_t *c, const char *model,
                                  const char *text, const float *v,
                                  size_t dim);
/* Drop the embeddings only. */
AVC_API void avc_shcache_embed_clear(avc_shcache_t *c);

/*
 * Semantic answers.
 *
 * put stores the answer blob (len bytes, copied, opaque) under the
 * question's vector qvec[dim] (any length but 0: it is normalised) for a
 * dealership at a generation of its knowledge base.  A newer generation
 * than the one stored drops the dealership's entries first.  Returns
 * AVC_OK, AVC_ESTATE (an older generation than one already seen: not
 * stored), AVC_EINVAL (NULL, a zero vector, dim 0 or over
 * AVC_SHCACHE_DIM_MAX), AVC_ETOOBIG, AVC_ESYS.
 *
 * find looks for the stored question of that dealership and generation
 * most similar to qvec[dim] (cosine, vectors of the same dimension only).
 * When its similarity is at least threshold it returns AVC_OK with
 * *answer a new copy of the blob (free() it; never NULL, even for len 0)
 * and *len its size.  Otherwise AVC_ENOTFOUND (a newer generation also
 * drops the older entries), AVC_EINVAL (NULL pointers, dim 0), AVC_ENOMEM
 * (the copy), AVC_ESYS.  similarity, when not NULL, receives the best
 * cosine seen (-2 when there was no candidate), hit or not.
 *
 * invalidate drops every answer of the dealership (its knowledge base
 * changed): AVC_OK, AVC_ESYS.
 */
AVC_API int avc_shcache_answer_put(avc_shcache_t *c, int64_t dealership_id,
                                   int64_t generation, const float *qvec,
                                   size_t dim, const void *answer,
                                   size_t len);
AVC_API int avc_shcache_answer_find(avc_shcache_t *c, int64_t dealership_id,
                                    int64_t generation, const float *qvec,
                                    size_t dim, double threshold,
                                    void **answer, size_t *len,
                                    double *similarity);
AVC_API int avc_shcache_answer_invalidate(avc_shcache_t *c,
                                          int64_t dealership_id);

/*
 * Session context, owner-checked.  session_id is a NUL-terminated string
 * of 1 to AVC_SHCACHE_SID_MAX bytes.
 *
 * put stores a copy of blob (len bytes) for the session, replacing the
 * previous one: AVC_OK, AVC_EFORBIDDEN (the session belongs to another
 * user: nothing changed), AVC_EINVAL, AVC_ETOOBIG, AVC_ESYS.
 *
 * get returns AVC_OK with *blob a new copy (free() it; never NULL) and
 * *len, or AVC_ENOTFOUND (no such session, or it belongs to another
 * user), AVC_EINVAL, AVC_ENOMEM, AVC_ESYS.
 *
 * drop removes the session if user_id owns it: AVC_OK, AVC_ENOTFOUND.
 */
AVC_API int avc_shcache_session_put(avc_shcache_t *c, const char *session_id,
                                    int64_t user_id, const void *blob,
                                    size_t len);
AVC_API int avc_shcache_session_get(avc_shcache_t *c, const char *session_id,
                                    int64_t user_id, void **blob,
                                    size_t *len);
AVC_API int avc_shcache_session_drop(avc_shcache_t *c,
                                     const char *session_id,
                                     int64_t user_id);

/* Counters and sizes, shared by every process (append-only). */
typedef enum {
    AVC_SHCACHE_EMBED_ENTRIES = 0,
    AVC_SHCACHE_EMBED_HITS,
    AVC_SHCACHE_EMBED_MISSES,
    AVC_SHCACHE_ANSWER_ENTRIES,
    AVC_SHCACHE_ANSWER_DEALERSHIPS,   /* dealerships with answers */
    AVC_SHCACHE_ANSWER_HITS,
    AVC_SHCACHE_ANSWER_MISSES,
    AVC_SHCACHE_SESSIONS,
    AVC_SHCACHE_BYTES_TOTAL,          /* the region */
    AVC_SHCACHE_BYTES_USED,           /* header, table and live blocks */
    AVC_SHCACHE_EVICTIONS,            /* entries dropped to make room */
    AVC_SHCACHE_SESSION_HITS,
    AVC_SHCACHE_SESSION_MISSES,
    AVC_SHCACHE_RESETS,               /* emptied after a holder died */
    AVC_SHCACHE_STAT_COUNT            /* not a counter: their number */
} avc_shcache_stat_t;

/* One value; 0 for an unknown which or a NULL c. */
AVC_API unsigned long long avc_shcache_stat(avc_shcache_t *c,
                                            avc_shcache_stat_t which);

/*
 * A consistent snapshot of the first n values (n at most
 * AVC_SHCACHE_STAT_COUNT; the rest of out is left alone), under one
 * lock: AVC_OK, AVC_EINVAL, AVC_ESYS.
 */
AVC_API int avc_shcache_stats(avc_shcache_t *c, unsigned long long *out,
                              size_t n);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_CACHE_H */
