/*
 * avatarcore/embed.h - text embeddings behind a provider interface, and
 * the query-embedding cache.
 *
 * Providers (configuration key embeddings.provider):
 *
 *   local    (default) the embedded, deterministic embedder: no network,
 *            no key.  Text is folded to lowercase ASCII, split into words,
 *            Porter-stemmed; F&I synonyms and abbreviations (the built-in
 *            list of data/fi_synonyms.txt: "VSC", "service contract",
 *            "extended warranty" ...) add a shared concept term.  Features
 *            are the content words (stopwords dropped, very frequent words
 *            damped), the concepts, pairs of adjacent content words, and
 *            the character 3- to 5-grams of each content word, weighted
 *            with a sublinear term frequency (1 + ln tf), hashed with a
 *            sign into embeddings.dimensions buckets (default 512), each
 *            feature family normalised and mixed, and the whole
 *            L2-normalised.  The same text always gives the same vector on
 *            every machine.  The model name,
 *            "avc-local-1-d512-h<hash of the tables>", changes with the
 *            dimension and with the built-in lists, so vectors of two
 *            versions are never compared.  It costs about 0.2 ms per
 *            1,000 characters (5,000 chunks a second on one core): a
 *            batch of document chunks is CPU work, which avc_embed() runs
 *            on the loop's thread pool.
 *
 *   openai   POST {embeddings.base_url}/embeddings with
 *            {"model", "input": [...], "dimensions"?, "encoding_format":
 *            "float"} and "Authorization: Bearer {embeddings.key}"; any
 *            OpenAI-compatible server.  Inputs are sent in batches of at
 *            most 2,048 texts and about 300,000 tokens (bytes / 4), one
 *            request after the other; 429 and 5xx are retried with
 *            backoff or the server's Retry-After.
 *
 * Configuration keys read by avc_embedder_new():
 *
 *   embeddings.provider    local | openai (default local)
 *   embeddings.dimensions  local: 64-4096 (default 512); openai: sent as
 *                          "dimensions" when set (text-embedding-3-*
 *                          accept it), else the model's own size (checked
 *                          against every answer)
 *   embeddings.base_url    openai: default https://api.openai.com/v1
 *   embeddings.model       openai: default text-embedding-3-small
 *   embeddings.key         openai: the API key itself (already loaded
 *                          from its secret source; required)
 *   embeddings.timeout     openai: milliseconds per batch, retries
 *                          included (default 60000)
 *   embeddings.attempts    openai: HTTP attempts per batch (default 4)
 *   embeddings.backoff     openai: milliseconds before the first retry,
 *                          doubling (default 500)
 *   embeddings.cache_size  query cache entries (default 2048; 0: none)
 *
 * The key never appears in logs or error messages.
 *
 * Vectors are float32, row-major, L2-normalised (cosine = dot product).
 *
 * Thread safety: an embedder belongs to its loop's thread.  The blocking
 * local functions and the cache are thread-safe.
 */
#ifndef AVATARCORE_EMBED_H
#define AVATARCORE_EMBED_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/http.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_embedder_s avc_embedder_t;
typedef struct avc_embed_op_s avc_embed_op_t;
typedef struct avc_embed_cache_s avc_embed_cache_t;

#define AVC_EMBED_LOCAL_DIM  512

/*
 * The end of an embedding: err is AVC_OK and vectors holds n * dim
 * floats (borrowed: valid during the callback only), or an error:
 * AVC_EUPSTREAM (the provider refused or answered nonsense: a non-2xx
 * status, malformed JSON, a vector of the wrong dimension; see
 * avc_embedder_last_error()), AVC_ETIMEDOUT, AVC_ECANCELED (the
 * embedder is being freed), AVC_ENOMEM.  vectors is NULL on error.
 */
typedef void (*avc_embed_cb)(int err, const float *vectors, size_t n,
                             size_t dim, void *data);

/*
 * An embedder on loop.  http (borrowed, must outlive the embedder) is
 * needed by openai and may be NULL for local.  cfg is read here and not
 * kept.  Returns NULL with *err set: AVC_EINVAL for a bad or missing
 * setting (logged with the key, never a secret's value), AVC_ENOMEM.
 */
AVC_API avc_embedder_t *avc_embedder_new(avc_loop_t *loop, avc_http_t *http,
                                         const avc_config_t *cfg, int *err);

/*
 * Free the embedder.  Operations still running complete with
 * AVC_ECANCELED from within this call (work already on a pool thread
 * finishes there, unobserved).  NULL is a no-op.
 */
AVC_API void avc_embedder_free(avc_embedder_t *e);

/* "local" or "openai" (static). */
AVC_API const char *avc_embedder_provider(const avc_embedder_t *e);

/*
 * The model name stored with each vector (embedding_model), e.g.
 * "text-embedding-3-small" or "avc-local-1-d512-h1a2b3c4d".  Borrowed.
 */
AVC_API const char *avc_embedder_model(const avc_embedder_t *e);

/*
 * The dimension of the vectors; for openai without embeddings.dimensions
 * 0 until the first answer (then the model's size).
 */
AVC_API size_t avc_embedder_dim(const avc_embedder_t *e);

/* The last provider error, one line without secrets; "" when none.
 * Borrowed, valid until the next operation completes. */
AVC_API const char *avc_embedder_last_error(const avc_embedder_t *e);

/*
 * Embed n texts (NUL-terminated; copied: the caller may free them when
 * this returns).  local: on the loop's thread pool; openai: over HTTP on
 * the loop.  cb is called once, on the loop, never from within this
 * call.  Returns AVC_OK, or AVC_EINVAL (n is 0 or a text is NULL),
 * AVC_ENOMEM, AVC_ESYS (the thread pool refused): then cb is not called.
 *
 * avc_embed_start() also returns a handle in *op (when op is not NULL)
 * that cancels the operation until cb is called: avc_embed_cancel() then
 * calls nothing more.
 */
AVC_API int avc_embed(avc_embedder_t *e, const char *const *texts, size_t n,
                      avc_embed_cb cb, void *data);
AVC_API int avc_embed_start(avc_embedder_t *e, const char *const *texts,
                            size_t n, avc_embed_cb cb, void *data,
                            avc_embed_op_t **op);
AVC_API void avc_embed_cancel(avc_embed_op_t *op);

/*
 * Embed one query through the embedder's query cache: a hit answers on
 * the next loop iteration without any work; a miss embeds (as
 * avc_embed) and stores the vector.  Same contract as avc_embed_start.
 * A local query is short, so it is embedded on the loop itself.
 */
AVC_API int avc_embed_query(avc_embedder_t *e, const char *text,
                            avc_embed_cb cb, void *data,
                            avc_embed_op_t **op);

/*
 * Share a cache between embedders (e.g. all the loops of one process):
 * cache is borrowed and must outlive e; NULL goes back to e's own.
 */
AVC_API void avc_embedder_set_cache(avc_embedder_t *e,
                                    avc_embed_cache_t *cache);
/* The cache in use (borrowed; NULL when embeddings.cache_size is 0). */
AVC_API avc_embed_cache_t *avc_embedder_cache(const avc_embedder_t *e);

/*
 * The blocking local embedder, for tools and tests (never a worker's
 * loop with large inputs): embed len bytes of text into out[dim], or n
 * texts into out[n * dim].  dim is 64-4096.  Returns AVC_OK, AVC_EINVAL,
 * AVC_ENOMEM.  Thread-safe.
 */
AVC_API int avc_embed_local_one(const char *text, size_t len, unsigned dim,
                                float *out);
AVC_API int avc_embed_local_many(const char *const *texts, size_t n,
                                 unsigned dim, float *out);

/* The local model name for dim, written to out (n >= 48): AVC_OK, or
 * AVC_EINVAL for a bad dim or a short buffer. */
AVC_API int avc_embed_local_model(unsigned dim, char *out, size_t n);

/*
 * The query-embedding cache: exact text (and model) to vector, least
 * recently used entries evicted beyond max_entries.  Thread-safe (one
 * mutex).  max_entries 0 means 2048.
 */
AVC_API avc_embed_cache_t *avc_embed_cache_new(size_t max_entries);

/*
 * The same interface over the embeddings of a shared cache region
 * (avatarcore/cache.h; borrowed, must outlive the result), so that every
 * process using the region shares one query cache: its size is bounded
 * by the region's bytes, not by a count (AVC_EMBED_CACHE_MAX is 0), its
 * counters are the region's, and clear drops the region's embeddings
 * only.  free frees the wrapper alone.  NULL when shared is NULL or
 * memory is short.
 */
struct avc_shcache_s;
AVC_API avc_embed_cache_t *avc_embed_cache_new_shared(
    struct avc_shcache_s *shared);

AVC_API void avc_embed_cache_free(avc_embed_cache_t *c);

/* Copy the vector of (model, text) into out[dim]: 1 on a hit, 0 on a miss
 * (also when the stored dimension differs). */
AVC_API int avc_embed_cache_get(avc_embed_cache_t *c, const char *model,
                                const char *text, float *out, size_t dim);
/* Store (copies); AVC_OK or AVC_ENOMEM. */
AVC_API int avc_embed_cache_put(avc_embed_cache_t *c, const char *model,
                                const char *text, const float *v,
                                size_t dim);
AVC_API void avc_embed_cache_clear(avc_embed_cache_t *c);

/* Counters for /cache/stats and tests (append-only). */
typedef enum {
    AVC_EMBED_CACHE_SIZE = 0,   /* entries now */
    AVC_EMBED_CACHE_MAX,        /* the cap */
    AVC_EMBED_CACHE_HITS,
    AVC_EMBED_CACHE_MISSES
} avc_embed_cache_stat_t;

AVC_API unsigned long long avc_embed_cache_stat(avc_embed_cache_t *c,
                                                avc_embed_cache_stat_t which);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_EMBED_H */
