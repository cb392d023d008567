/*
 * avatarcore/index.h - an in-memory vector index for one dealership's
 * chunks: exact nearest-neighbour search by cosine similarity.
 *
 * Each vector is kept three times: quantised to 4 bits and to int8, each
 * with a per-vector scale (for the scans), and at full precision
 * (float32, or IEEE half precision with AVC_INDEX_FP16) for re-scoring.
 * A search quantises the query and
 *
 *   1. scans every vector with a 4-bit dot product (AVX-512 VNNI or AVX2
 *      where the CPU has them) and keeps the best 16 c by partial
 *      selection, where c = max(64, 2k + 32);
 *   2. re-scores those in int8 and keeps the best c;
 *   3. re-scores those at full precision and returns the best k.
 *
 * Small indexes (under 32 c vectors) and CPUs without a SIMD 4-bit
 * kernel skip step 1: every vector is scanned in int8.  The answer equals
 * a brute-force float search whenever the quantisation errors (about
 * 1e-2 of a cosine in 4 bits, 1e-3 in int8) are smaller than the gaps
 * they must not cross: on the benchmark's 100,000 chunks of local
 * embeddings (tools/bench/retrieval checks it on every run) the exact top
 * 50 are always found; the lowest of them ranked about 500th of the 2,112
 * kept in 4 bits.
 *
 * Memory per vector: dim bytes (int8) + dim / 2 (4 bits) + 4 dim
 * (float32) or 2 dim (fp16) + about 44 bytes (id, tag, scales, id map).
 * For 100,000 chunks of 512 dimensions: 51 + 26 + 205 MB (float32) or
 * 102 MB (fp16) + 4 MB, i.e. about 286 MB or 183 MB; at 1,536 dimensions
 * about 850 MB or 540 MB.
 *
 * Vectors are L2-normalised on insertion (a zero vector stays zero and
 * scores 0), so scores are cosines in [-1, 1].
 *
 * Each entry carries a 64-bit id (the chunk id, unique in the index) and
 * a 32-bit tag the caller chooses (the retriever stores its topic number
 * there) that searches can filter on.
 *
 * Thread safety: searches only read, so several threads may search one
 * index at once; add and remove need exclusive access.
 */
#ifndef AVATARCORE_INDEX_H
#define AVATARCORE_INDEX_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_index_s avc_index_t;

/* re-score from half-precision copies (half the memory, ~1e-4 error) */
#define AVC_INDEX_FP16  0x01u

/* A new, empty index of dim-dimensional vectors (1-16384); NULL when out
 * of memory or dim is out of range. */
AVC_API avc_index_t *avc_index_new(size_t dim, unsigned flags);
AVC_API void avc_index_free(avc_index_t *ix);

AVC_API size_t avc_index_dim(const avc_index_t *ix);
AVC_API size_t avc_index_size(const avc_index_t *ix);
/* Bytes held by the index. */
AVC_API size_t avc_index_memory(const avc_index_t *ix);

/*
 * Room for exactly max(n, size) vectors: ahead of a bulk load, or after
 * it to give back what doubling left over.  AVC_OK or AVC_ENOMEM (the
 * index is unchanged and usable).
 */
AVC_API int avc_index_reserve(avc_index_t *ix, size_t n);

/*
 * Add vec (dim floats, copied) under id, replacing the vector an existing
 * id had.  AVC_OK, AVC_ENOMEM or AVC_EINVAL (NaN or infinite values).
 */
AVC_API int avc_index_add(avc_index_t *ix, int64_t id, uint32_t tag,
                          const float *vec);

/* Remove id: AVC_OK or AVC_ENOTFOUND. */
AVC_API int avc_index_remove(avc_index_t *ix, int64_t id);

/* Is id in the index?  Its tag in *tag when tag is not NULL. */
AVC_API int avc_index_contains(const avc_index_t *ix, int64_t id,
                               uint32_t *tag);

/*
 * The cosine of query with the vector of id in *score: AVC_OK,
 * AVC_ENOTFOUND, AVC_EINVAL.
 */
AVC_API int avc_index_score(const avc_index_t *ix, const float *query,
                            int64_t id, float *score);

/*
 * The k best entries for query (dim floats; need not be normalised):
 * ids[] and scores[] (cosines, best first; ties by smaller id) receive
 * up to k results, their number in *n.  With ntags > 0 only entries whose
 * tag is one of tags[] are considered.  Returns AVC_OK, AVC_EINVAL, or
 * AVC_ENOMEM.
 */
AVC_API int avc_index_search(const avc_index_t *ix, const float *query,
                             size_t k, const uint32_t *tags, size_t ntags,
                             int64_t *ids, float *scores, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_INDEX_H */
