/*
 * avatarcore/ingest.h - the ingestion queue, for hosts and tools.
 *
 * Documents accepted by an upload wait in the table ingest_jobs; a queue
 * claims them one at a time (SELECT ... FOR UPDATE SKIP LOCKED, with a
 * lease, so any number of queues on any number of machines share the work
 * and a job whose worker died is taken up again), extracts, chunks and
 * embeds them, and stores the chunks.  Every nginx worker runs one; so
 * does "avatarctl ingest-worker".
 */
#ifndef AVATARCORE_INGEST_H
#define AVATARCORE_INGEST_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/db.h>
#include <avatarcore/http.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_ingest_s avc_ingest_t;

/*
 * A queue on loop using db (borrowed) and an embedder made from cfg (the
 * embeddings.* keys; http borrowed, may be NULL for the local embedder
 * with the default vector store).  It looks for work every 2 s and when
 * kicked.  NULL with *err set.
 *
 * With vector_store.provider "pinecone" (and the vector_store.* keys of
 * avatarcore/pinecone.h; http required) a document's chunks are
 * committed, then their vectors upserted into the dealership's namespace
 * (id: the chunk id; metadata dealership_id, document_id, topic,
 * filename, position; batches of at most 1,000 vectors and 2 MB), and
 * only then is the document ready.  A Pinecone failure puts the job back
 * like any transient one (retried with a growing delay, at most 5
 * attempts) with the reason in the document's error; a later attempt
 * replaces the chunks and deletes the earlier ones' vectors.  Every
 * queue sharing a database must use the same vector store.
 */
AVC_API avc_ingest_t *avc_ingest_new(avc_loop_t *loop, avc_db_t *db,
                                     avc_http_t *http,
                                     const avc_config_t *cfg, int *err);

/* Look for a job now. */
AVC_API void avc_ingest_kick(avc_ingest_t *q);

/* Is a job being processed now? */
AVC_API int avc_ingest_busy(const avc_ingest_t *q);

/* Jobs done (which 0) or failed attempts (which 1) since creation. */
AVC_API unsigned long long avc_ingest_stat(const avc_ingest_t *q,
                                           int which);

/* Stop; a job in flight is left to its lease.  NULL is a no-op. */
AVC_API void avc_ingest_free(avc_ingest_t *q);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_INGEST_H */
