/*
 * avatarcore/retrieve.h - hybrid retrieval over one dealership's
 * knowledge base, and storing chunks for it.
 *
 * A retrieval, always scoped by dealership:
 *
 *   1. the query is embedded (through the embedder's query cache) while
 *      one SQL statement reads the dealership's generation (so every
 *      retrieval sees a change at once, at no extra round trip) and runs
 *      the full-text search: the query's content words and the variants
 *      of the F&I concepts it names (data/fi_synonyms.txt) OR-ed into a
 *      tsquery on document_chunks.tsv, ranked by ts_rank, ready documents
 *      only, topic filter applied.  ts_rank ranks every row a query
 *      matches, so operands are taken rarest first (document frequencies
 *      of the snapshot, step 2) while they may match at most about 1,000
 *      rows, none held by more than max(100, 2 %) of the chunks, at most
 *      48 (and at most 3,000 matching rows are ranked); on the first
 *      retrieval of a dealership the search waits for the snapshot for
 *      that reason.  ts_rank rather than ts_rank_cd: cover density
 *      costs time quadratic in the operands of such a query (30 ms for a
 *      40-operand question over 100 chunks) and ranked worse on the
 *      sample set;
 *   2. the dealership's snapshot is used when its generation is current,
 *      else (re)loaded first: the vector index (avatarcore/index.h) of
 *      the ready chunks' embeddings made by the embedder's model, each
 *      chunk's set of terms and the document frequency of every term,
 *      read a page of rows at a time and processed on the thread pool.
 *      Chunks whose vector another model made (a changed embedder, or a
 *      local model changed by an upgrade) are found by full text only
 *      until the re-embedding the load then starts has given them new
 *      vectors from their stored text, in batches shared by all workers
 *      (FOR UPDATE SKIP LOCKED); it then bumps the generation, so every
 *      worker loads the new vectors (AVC_RETRIEVER_REEMBEDDED counts
 *      them; not with Pinecone, whose vectors are re-made by uploading);
 *   3. the vector index is searched (topic filter applied; on the thread
 *      pool when it holds more than rag.offload_above vectors);
 *   4. both lists (rag.candidates each) are fused by reciprocal rank,
 *      1/(60 + rank) summed over the lists, which orders the results;
 *   5. each candidate gets a relevance score in [0, 1] (below); when the
 *      best score is under the floor the material does not cover the
 *      question and there are no results at all; else the results are
 *      the top_k candidates, in fused order, scoring at least half the
 *      floor (the passage that answers a paraphrased question often
 *      shares few words with it, yet ranks well in the fusion);
 *   6. the results' text and document are read in one query.
 *
 * The relevance score of a chunk is the mean of two signals in [0, 1],
 * weighted rag.vector_weight and 1 - rag.vector_weight (default 0.5):
 *
 *   vector  its cosine with the query, mapped linearly from rag.cos_low
 *           (0) to rag.cos_high (1): what "unrelated" and "clearly about
 *           it" mean for the embedder in use;
 *   text    the share of the query's information the chunk holds: the
 *           query's content words and F&I concepts, each weighted by its
 *           inverse document frequency among this dealership's chunks
 *           (BM25's idf: a word no chunk holds weighs most), frequent
 *           words damped; a word of a concept's phrase also counts as
 *           held when the chunk names the concept another way.
 *
 * So the floor (rag.min_score, or the min_score argument) reads as "how
 * much of the question the material must be seen to cover".  The
 * full-text-only and vector-only modes (for baselines) score with their
 * own signal alone.
 *
 * Configuration keys read by avc_retriever_new():
 *
 *   rag.min_score        the default floor, 0-1 (default 0.38: where
 *                        the share of answerable questions refused and
 *                        of unanswerable ones answered meet, on the
 *                        sample F&I set with the local embedder)
 *   rag.vector_weight    weight of the vector signal, 0-1 (default 0.5)
 *   rag.cos_low, rag.cos_high   the cosine calibration: default 0.05 and
 *                        0.45 for the local embedder, 0.15 and 0.60 for
 *                        others
 *   rag.order            rrf (default) or score: the order of results
 *   rag.candidates       entries taken from each list, 5-500 (default 50)
 *   rag.fts_timeout      ms the full-text query may take when a snapshot
 *                        exists (default 250); past it the results come
 *                        from the vector list alone (logged)
 *   rag.index_fp16       "on": re-score from half precision (half the
 *                        memory; see index.h); default off
 *   rag.max_indexes      dealerships whose snapshot a loop keeps, least
 *                        recently used dropped (default 64)
 *   rag.offload_above    larger indexes are searched on the thread pool
 *                        (default 20000 vectors)
 *   rag.load_page        rows per page when loading (default 500)
 *   vector_store.provider   postgres (default: the vectors are stored
 *                        with the chunks and searched in memory) or
 *                        pinecone (with the vector_store.* keys of
 *                        avatarcore/pinecone.h)
 *
 * Memory per 100,000 chunks of 512 dimensions: the index (index.h, about
 * 260 MB with float32 re-scoring, 157 MB with fp16) plus the term sets
 * and frequencies (about 45 MB).
 *
 * With Pinecone the vectors are not loaded: step 2 reads the terms only,
 * and step 3 queries the dealership's namespace for rag.candidates
 * matches, filtered by dealership_id and by topic (the ingestion queue
 * keeps the index in step, see avatarcore/ingest.h).  One statement then
 * checks the matches against PostgreSQL (a match whose chunk is gone or
 * not ready is left out; a vector whose chunk is gone is deleted from
 * Pinecone) and reads the vectors of the full-text hits Pinecone did not
 * return, so every candidate is scored as with the in-core index.  The
 * index must use the cosine metric.  When Pinecone fails (its client
 * retries first: vector_store.attempts), the results come from the
 * full-text list alone, logged and counted (AVC_RETRIEVER_FALLBACKS):
 * a trainee keeps answers grounded in the material during an outage, and
 * the floor still refuses a question the text does not cover.
 *
 * Thread safety: a retriever belongs to its loop's thread.
 */
#ifndef AVATARCORE_RETRIEVE_H
#define AVATARCORE_RETRIEVE_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/db.h>
#include <avatarcore/embed.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_retriever_s avc_retriever_t;
typedef struct avc_rag_results_s avc_rag_results_t;
typedef struct avc_retrieve_op_s avc_retrieve_op_t;

/*
 * A retriever on loop over db and emb (borrowed: they must outlive it).
 * cfg is read here and not kept.  Returns NULL for a bad setting (logged
 * with its key) or when out of memory.
 */
AVC_API avc_retriever_t *avc_retriever_new(avc_loop_t *loop, avc_db_t *db,
                                           avc_embedder_t *emb,
                                           const avc_config_t *cfg);

/*
 * Free: retrievals still running complete with AVC_ECANCELED from within
 * this call; index loads on the thread pool finish there, unobserved.
 * NULL is a no-op.
 */
AVC_API void avc_retriever_free(avc_retriever_t *r);

/* Which lists are used: both (the default), or one, for baselines. */
typedef enum {
    AVC_RETRIEVE_HYBRID = 0,
    AVC_RETRIEVE_TEXT,          /* full-text search only */
    AVC_RETRIEVE_VECTOR         /* vector index only */
} avc_retrieve_mode_t;

AVC_API void avc_retriever_set_mode(avc_retriever_t *r,
                                    avc_retrieve_mode_t mode);

/*
 * Results, borrowed: valid during the callback only.  err is AVC_OK (res
 * has 0 or more results, best first), or AVC_ENOTFOUND (no such
 * dealership), AVC_EDB, AVC_EDBCONN, AVC_ETIMEDOUT, AVC_EUPSTREAM (the
 * embedder failed: see avc_embedder_last_error), AVC_ECANCELED,
 * AVC_ENOMEM; res is NULL on error.
 */
typedef void (*avc_retrieve_cb)(int err, const avc_rag_results_t *res,
                                void *data);

/*
 * Retrieve up to top_k (1-100) chunks of dealership_id for query (1-8000
 * bytes of UTF-8, copied).  topics is NULL or a NULL-terminated list of
 * topic names (^[a-z0-9_]{1,64}$, at most 32) the results must be in.
 * min_score in [0, 1] is the floor; a negative value takes rag.min_score.
 * cb is called once, on the loop, never from within this call.  Returns
 * AVC_OK, AVC_EINVAL (then cb is not called) or AVC_ENOMEM.
 *
 * avc_retrieve_start() also gives a handle in *op that cancels the
 * retrieval (its queries are cancelled, no callback) until cb is called.
 */
AVC_API int avc_retrieve(avc_retriever_t *r, int64_t dealership_id,
                         const char *query, size_t top_k,
                         const char *const *topics, double min_score,
                         avc_retrieve_cb cb, void *data);
AVC_API int avc_retrieve_start(avc_retriever_t *r, int64_t dealership_id,
                               const char *query, size_t top_k,
                               const char *const *topics, double min_score,
                               avc_retrieve_cb cb, void *data,
                               avc_retrieve_op_t **op);
AVC_API void avc_retrieve_cancel(avc_retrieve_op_t *op);

/*
 * Forget the index of a dealership (e.g. after a reset), or of all with
 * dealership_id 0; the next retrieval reloads it.
 */
AVC_API void avc_retriever_invalidate(avc_retriever_t *r,
                                      int64_t dealership_id);

/*
 * Chunks whose rows were deleted leave the vector store too.  Call it
 * after the deletion committed: PostgreSQL is the record.  The
 * dealership's snapshot in this retriever is dropped (other workers
 * notice the generation); with Pinecone the vectors chunk_ids[0..n-1] of
 * dealership_id are deleted (requests of at most 1,000 ids), or with
 * chunk_ids NULL and n 0 every vector of the dealership (its namespace).
 *
 * cb (may be NULL) runs once, on the loop, never from within this call,
 * with AVC_OK or the store's error (already logged), unless the deletion
 * was detached with avc_retriever_forget_detach() or the retriever freed;
 * the deletion itself goes on when the caller goes away.  *f (may be
 * NULL) gets a handle valid until cb runs.
 *
 * A vector left behind by a failed deletion never reaches a result: a
 * retrieval reads the chunks of the matches from PostgreSQL, leaves out
 * those that are gone and deletes their vectors.
 *
 * Returns AVC_OK, AVC_ESTATE (no vector store outside PostgreSQL, or no
 * ids: nothing to delete), AVC_EINVAL or AVC_ENOMEM; then cb is not
 * called.
 */
typedef struct avc_retrieve_forget_s avc_retrieve_forget_t;
typedef void (*avc_retrieve_forget_cb)(int err, void *data);

AVC_API int avc_retriever_forget(avc_retriever_t *r, int64_t dealership_id,
                                 const int64_t *chunk_ids, size_t n,
                                 avc_retrieve_forget_cb cb, void *data,
                                 avc_retrieve_forget_t **f);
/* Nobody waits for f any more: cb will not be called.  NULL is a no-op. */
AVC_API void avc_retriever_forget_detach(avc_retrieve_forget_t *f);

/*
 * Re-embed now the chunks of dealership_id that have no vector of the
 * embedder's model (another embedder, or an older local model, made
 * theirs), as a retrieval's index load does by itself: in batches shared
 * with other workers and machines (FOR UPDATE SKIP LOCKED), the
 * dealership's generation bumped at the end when any chunk changed.  If a
 * re-embedding of the dealership already runs here, cb waits for it.
 *
 * cb runs once, on the loop, never from within this call, with AVC_OK and
 * the number of chunks re-embedded (0: none was stale), or the error that
 * stopped it (logged; chunks done so far stay done), or AVC_ECANCELED
 * from avc_retriever_free().  Returns AVC_OK, AVC_EINVAL, AVC_ESTATE (no
 * embedder, or Pinecone is the vector store: its vectors are written at
 * ingestion, so upload the documents again), AVC_EBUSY (another caller
 * already waits for this dealership) or AVC_ENOMEM; then cb is not called.
 */
typedef void (*avc_retriever_reembed_cb)(int err, size_t chunks,
                                         void *data);

AVC_API int avc_retriever_reembed(avc_retriever_t *r, int64_t dealership_id,
                                  avc_retriever_reembed_cb cb, void *data);

/* Counters for /metrics and tests (append-only). */
typedef enum {
    AVC_RETRIEVER_LOADS = 0,    /* index loads completed */
    AVC_RETRIEVER_INDEXES,      /* indexes held now */
    AVC_RETRIEVER_VECTORS,      /* vectors held now, all indexes */
    AVC_RETRIEVER_MEMORY,       /* bytes held by the indexes */
    AVC_RETRIEVER_QUERIES,      /* retrievals completed */
    AVC_RETRIEVER_FALLBACKS,    /* of them without the vector store (it
                                   failed: full-text results only) */
    AVC_RETRIEVER_ORPHANS,      /* vectors met without their chunk, and
                                   deleted from the vector store */
    AVC_RETRIEVER_REEMBEDDED    /* chunks whose vector of another model
                                   was replaced (see step 2 above) */
} avc_retriever_stat_t;

AVC_API unsigned long long avc_retriever_stat(const avc_retriever_t *r,
                                              avc_retriever_stat_t which);

/* Results (i < count).  Strings are borrowed, like res. */
AVC_API size_t avc_rag_results_count(const avc_rag_results_t *res);
/* the dealership's generation the results reflect */
AVC_API int64_t avc_rag_results_generation(const avc_rag_results_t *res);
/* the best relevance score before the floor (0 when no candidate): how
 * close the material came to covering the question */
AVC_API double avc_rag_results_best_score(const avc_rag_results_t *res);

AVC_API int64_t avc_rag_result_chunk_id(const avc_rag_results_t *res,
                                        size_t i);
AVC_API int64_t avc_rag_result_document_id(const avc_rag_results_t *res,
                                           size_t i);
AVC_API const char *avc_rag_result_filename(const avc_rag_results_t *res,
                                            size_t i);
AVC_API const char *avc_rag_result_topic(const avc_rag_results_t *res,
                                         size_t i);
/* the document's title, "" when none */
AVC_API const char *avc_rag_result_title(const avc_rag_results_t *res,
                                         size_t i);
AVC_API const char *avc_rag_result_content(const avc_rag_results_t *res,
                                           size_t i);
/* the chunk's position in its document, from 0 */
AVC_API int avc_rag_result_position(const avc_rag_results_t *res, size_t i);
/* the relevance score, 0-1 (the API's "score" and "relevance") */
AVC_API double avc_rag_result_score(const avc_rag_results_t *res, size_t i);
/* its parts, for diagnostics: cosine (-1-1, 0 when not in the vector
 * list), text coverage (0-1), fused rank score */
AVC_API double avc_rag_result_cosine(const avc_rag_results_t *res, size_t i);
AVC_API double avc_rag_result_coverage(const avc_rag_results_t *res,
                                       size_t i);
AVC_API double avc_rag_result_rrf(const avc_rag_results_t *res, size_t i);

/*
 * Storing chunks: the ingestion job inserts a document's chunks in its own
 * transaction with avc_rag_insert_sql() and AVC_RAG_NPARAMS parameters in
 * this order, one execution per chunk:
 *
 *   $1 AVC_RAG_P_DOCUMENT_ID   documents.id
 *   $2 AVC_RAG_P_DEALERSHIP_ID its dealership (the composite foreign key
 *                              refuses any other)
 *   $3 AVC_RAG_P_TOPIC         the document's topic
 *   $4 AVC_RAG_P_POSITION      0, 1, ... in document order
 *   $5 AVC_RAG_P_TITLE         the document's title, or NULL
 *   $6 AVC_RAG_P_CONTENT       the chunk's text
 *   $7 AVC_RAG_P_EMBEDDING     avc_rag_vector_hex() of its vector, or NULL
 *   $8 AVC_RAG_P_MODEL         avc_embedder_model(), or NULL
 *
 * The statement returns the chunk's id.  Or let avc_rag_store_chunks()
 * insert them all.  Either way the chunks become searchable when the
 * document's status turns 'ready': that update bumps the dealership's
 * generation (a trigger of sql/002), which every worker notices.
 */
enum {
    AVC_RAG_P_DOCUMENT_ID = 0,
    AVC_RAG_P_DEALERSHIP_ID,
    AVC_RAG_P_TOPIC,
    AVC_RAG_P_POSITION,
    AVC_RAG_P_TITLE,
    AVC_RAG_P_CONTENT,
    AVC_RAG_P_EMBEDDING,
    AVC_RAG_P_MODEL,
    AVC_RAG_NPARAMS
};

/* The INSERT statement (static). */
AVC_API const char *avc_rag_insert_sql(void);

/*
 * A vector as the hex of its little-endian float32 bytes, the form $7
 * takes: a new string (free() it), or NULL when out of memory.
 */
AVC_API char *avc_rag_vector_hex(const float *v, size_t dim);

/*
 * Parse a bytea value as the database returns it ("\x" and hex) into
 * out[dim]: AVC_OK, or AVC_EPARSE (not hex, or not dim float32 values).
 */
AVC_API int avc_rag_vector_parse(const char *bytea, float *out, size_t dim);

/*
 * Insert n chunks of one document on tx (several multi-row statements of
 * at most 256 chunks), contents[i] with vectors + i * dim (vectors may be
 * NULL: stored without embedding), title and model may be NULL.
 * Everything is copied.  cb(err, NULL, data) once, on the loop, after the
 * last insert: AVC_OK or the first error (the transaction is then aborted
 * on the server; roll it back).  Returns AVC_OK, AVC_EINVAL or
 * AVC_ENOMEM (then cb is not called).
 */
AVC_API int avc_rag_store_chunks(avc_db_tx_t *tx, int64_t document_id,
                                 int64_t dealership_id, const char *topic,
                                 const char *title,
                                 const char *const *contents, size_t n,
                                 const float *vectors, size_t dim,
                                 const char *model, avc_db_cb cb,
                                 void *data);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_RETRIEVE_H */
