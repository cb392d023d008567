/*
 * avatarcore/index.h - an in-memory vector index for one dealership's
 * chunks: exact nearest-neighbour search by cosine similarity.
 *
 * Each vector is kept twice: int8-quantised with a per-vector scale (for
 * the scan) and at full precision (float32, or IEEE half precision with
 * AVC_INDEX_FP16) for re-scoring.  A search quantises the query, scans
 * every vector with an int8 dot product into int32 (SSE2, or AVX2 where
 * the CPU has it), keeps the best max(64, 2k + 32) candidates in a
 * min-heap, re-scores those at full precision and returns the best k.
 * With float32 re-scoring the answer equals a brute-force float search whenever the int8 error (about 1e-3
 * of a cosine) is smaller than the gap between the k-th and the
 * candidate-th best score, which holds for real embeddings.
 *
 * Memory per vector: dim bytes (int8) + 4 dim (float32) or 2 dim (fp16)
 * + about 40 bytes (id, tag, scale, id map).  For 100,000 chunks of 512
 * dimensions: 51 MB + 205 MB (float32) or 102 MB (fp16) + 4 MB, i.e.
 * about 260 MB or 157 MB; at 1,536 dimensions about 770 MB or 465 MB.
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
