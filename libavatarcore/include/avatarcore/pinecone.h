/*
 * avatarcore/pinecone.h - the Pinecone vector store: a dealership's chunk
 * vectors in a Pinecone index, over its REST data plane, asynchronous on
 * a loop through avatarcore/http.h.
 *
 * Each dealership has its own namespace, "dealership_{id}", and every
 * vector carries the metadata dealership_id, document_id, topic,
 * filename and position, so that a query is confined to one dealership
 * twice: by namespace and by a dealership_id filter.
 *
 * Wire format (X-Pinecone-API-Version 2025-01 by default; the endpoints
 * used are unchanged from 2024-07 to 2025-10), all POST with JSON bodies
 * to the index host and the header "Api-Key: {key}":
 *
 *   /vectors/upsert  {"vectors":[{"id","values":[...],"metadata":{...}}],
 *                     "namespace"} -> {"upsertedCount":N}; at most 1,000
 *                    vectors and 2,000,000 bytes per request, so larger
 *                    upserts are split by both limits and sent one after
 *                    the other;
 *   /query           {"namespace","vector","topK","includeMetadata":true,
 *                     "includeValues":false,"filter"} -> {"matches":[
 *                     {"id","score","metadata"}]};
 *   /vectors/delete  {"ids":[...],"namespace"} (at most 1,000 ids per
 *                    request) or {"deleteAll":true,"namespace"} -> {}.
 *
 * Configuration keys read by avc_pinecone_new():
 *
 *   vector_store.provider     "pinecone" (or unset); anything else is
 *                             refused
 *   vector_store.host         the index host: https://INDEX-PROJECT.svc.
 *                             REGION.pinecone.io, or the bare host name as
 *                             describe_index returns it (https:// is
 *                             added); http:// only for local servers and
 *                             mocks (required)
 *   vector_store.index        the index name, only used in log messages
 *   vector_store.key          the API key itself, already loaded from its
 *                             secret source (required)
 *   vector_store.api_version  the X-Pinecone-API-Version header (default
 *                             2025-01)
 *   vector_store.timeout      milliseconds one upsert or delete request
 *                             may take, retries included (default 30000)
 *   vector_store.query_timeout  the same for a query (default 10000)
 *   vector_store.attempts     HTTP attempts per request on connect
 *                             failures, 429 and 5xx (default 3)
 *   vector_store.backoff      milliseconds before the first retry,
 *                             doubling (default 250)
 *
 * Errors: a provider status other than 2xx ends the operation with
 * AVC_EUPSTREAM, and avc_pinecone_last_error() then holds Pinecone's own
 * message (from {"code","message"}, {"error":{"code","message"}} or a
 * plain-text body) with the HTTP status.  The API key never appears in
 * that message nor in the log.
 *
 * Callbacks run on the loop, never from within the call that started the
 * operation, and may call any function of this header, avc_pinecone_free()
 * included.  A function that returns an error never calls its callback.
 *
 * Thread safety: a client belongs to its loop's thread.
 */
#ifndef AVATARCORE_PINECONE_H
#define AVATARCORE_PINECONE_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/http.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_pinecone_s avc_pinecone_t;
typedef struct avc_pinecone_matches_s avc_pinecone_matches_t;

/* Limits of Pinecone's data plane that the client checks itself. */
#define AVC_PINECONE_MAX_DIM      20000   /* values per vector */
#define AVC_PINECONE_MAX_ID       512     /* bytes of a vector id */
#define AVC_PINECONE_MAX_TOP_K    1000    /* with metadata included */
#define AVC_PINECONE_MAX_TEXT     2048    /* bytes of a topic or filename */

/*
 * The end of an upsert or a delete.  err is AVC_OK, AVC_EUPSTREAM (see
 * avc_pinecone_last_error), AVC_ECONNECT, AVC_ETIMEDOUT, AVC_EHTTP,
 * AVC_EPROTO (a 2xx answer that is not the expected JSON) or
 * AVC_ENOMEM.  count: upsert, the vectors Pinecone reported upserted
 * (on failure, by the requests that succeeded before it: upserts are
 * idempotent, so the whole call may simply be repeated); delete by ids,
 * the ids Pinecone accepted to delete (all of them when the namespace
 * does not exist); delete of a namespace, 0.
 */
typedef void (*avc_pinecone_cb)(int err, size_t count, void *data);

/*
 * The end of a query.  On AVC_OK, matches holds the matches, best first
 * (possibly none); it is borrowed, valid only during the callback.  On
 * an error (as for avc_pinecone_cb) matches is NULL.
 */
typedef void (*avc_pinecone_query_cb)(int err,
                                      const avc_pinecone_matches_t *matches,
                                      void *data);

/*
 * A client on loop, sending through http (both borrowed: they must
 * outlive the client).  cfg is read here and not kept.  Returns NULL with
 * *err set: AVC_EINVAL for a missing or bad setting (logged with its key,
 * never with the API key's value), AVC_ENOMEM.
 */
AVC_API avc_pinecone_t *avc_pinecone_new(avc_loop_t *loop, avc_http_t *http,
                                         const avc_config_t *cfg, int *err);

/*
 * Free the client.  Operations still running are abandoned: their
 * requests are cancelled and their callbacks not called.  NULL is a
 * no-op.
 */
AVC_API void avc_pinecone_free(avc_pinecone_t *pc);

/*
 * The message of the client's most recent failed operation ("" when none
 * failed yet), e.g. "upsert dealership_7: HTTP 401 (UNAUTHENTICATED):
 * Invalid API Key".  Borrowed: valid until the next operation of the
 * client ends.  Inside a failing operation's callback it is that
 * operation's message.
 */
AVC_API const char *avc_pinecone_last_error(const avc_pinecone_t *pc);

/*
 * Upsert n vectors of dim floats each (vectors: n * dim floats, row by
 * row) into the namespace of dealership_id, with the parallel arrays ids
 * (vector ids, 1 to 512 bytes of UTF-8, unique within the dealership),
 * document_ids, topics, filenames and positions giving each vector's
 * metadata.  Everything is copied.  Requests are built off the loop when
 * large (on the thread pool) and sent one after another; cb runs once,
 * at the end.  Returns AVC_OK, or AVC_EINVAL (dealership_id < 1, n or dim
 * 0, dim over 20,000, a NULL array, an empty or over-long id, a value
 * that is not finite, a string that is not UTF-8 or over 2,048 bytes) or
 * AVC_ENOMEM, and then cb is not called.
 */
AVC_API int avc_pinecone_upsert(avc_pinecone_t *pc, int64_t dealership_id,
                                const char *const *ids, const float *vectors,
                                size_t dim, const int64_t *document_ids,
                                const char *const *topics,
                                const char *const *filenames,
                                const int *positions, size_t n,
                                avc_pinecone_cb cb, void *data);

/*
 * The top_k (1 to 1,000) vectors of dealership_id's namespace most
 * similar to vector (dim floats, copied), with their metadata.  With
 * ntopics > 0, only vectors whose topic is one of topics[0..ntopics-1]
 * are considered.  Returns AVC_OK, AVC_EINVAL or AVC_ENOMEM (then cb is
 * not called).
 */
AVC_API int avc_pinecone_query(avc_pinecone_t *pc, int64_t dealership_id,
                               const float *vector, size_t dim,
                               unsigned top_k, const char *const *topics,
                               size_t ntopics, avc_pinecone_query_cb cb,
                               void *data);

/*
 * Delete the vectors ids[0..n-1] from dealership_id's namespace, in
 * requests of at most 1,000 ids.  Ids that do not exist, or a namespace
 * that does not exist, are not an error.  Returns AVC_OK, AVC_EINVAL or
 * AVC_ENOMEM (then cb is not called).
 */
AVC_API int avc_pinecone_delete_ids(avc_pinecone_t *pc, int64_t dealership_id,
                                    const char *const *ids, size_t n,
                                    avc_pinecone_cb cb, void *data);

/*
 * Delete every vector of dealership_id's namespace (deleteAll).  A
 * namespace that does not exist is not an error.  Returns AVC_OK,
 * AVC_EINVAL or AVC_ENOMEM (then cb is not called).
 */
AVC_API int avc_pinecone_delete_namespace(avc_pinecone_t *pc,
                                          int64_t dealership_id,
                                          avc_pinecone_cb cb, void *data);

/*
 * Abandon every running operation of pc that was started with this data
 * pointer (a chat whose client went away): its requests are aborted and
 * its callback is not called.  Returns how many were abandoned.  Calling
 * it from an operation's own callback does not affect that operation.
 */
AVC_API size_t avc_pinecone_cancel(avc_pinecone_t *pc, void *data);

/*
 * Matches of a query, borrowed during the query callback.  m may be NULL
 * (count 0); an index i at or past the count gives the "absent" value.
 * Metadata fields a match does not carry are absent too: NULL for
 * strings, -1 for numbers.
 */
AVC_API size_t avc_pinecone_matches_count(const avc_pinecone_matches_t *m);
AVC_API const char *avc_pinecone_match_id(const avc_pinecone_matches_t *m,
                                          size_t i);
/* The similarity Pinecone reported (for a cosine index, 1 is identical);
 * 0 when absent. */
AVC_API double avc_pinecone_match_score(const avc_pinecone_matches_t *m,
                                        size_t i);
AVC_API int64_t avc_pinecone_match_dealership_id(
    const avc_pinecone_matches_t *m, size_t i);
AVC_API int64_t avc_pinecone_match_document_id(
    const avc_pinecone_matches_t *m, size_t i);
AVC_API const char *avc_pinecone_match_topic(const avc_pinecone_matches_t *m,
                                             size_t i);
AVC_API const char *avc_pinecone_match_filename(
    const avc_pinecone_matches_t *m, size_t i);
AVC_API int avc_pinecone_match_position(const avc_pinecone_matches_t *m,
                                        size_t i);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_PINECONE_H */
