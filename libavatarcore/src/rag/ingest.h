/*
 * The ingestion queue (internal): see ingest.c.
 */
#ifndef AVC_INGEST_H
#define AVC_INGEST_H

#include "internal.h"

#include <avatarcore/db.h>
#include <avatarcore/embed.h>
#include <avatarcore/http.h>

typedef struct avc__ingest_s avc__ingest_t;

/* Start processing jobs on loop (embedder borrowed; NULL: local). */
avc__ingest_t *avc__ingest_new(avc_loop_t *loop, avc_db_t *db,
                               avc_embedder_t *embedder);
/*
 * Keep the chunks' vectors in the vector store cfg names as well: nothing
 * to do for vector_store.provider postgres (or none); for pinecone, a
 * client of the queue's own on http (borrowed, must outlive the queue).
 * Call it before the loop runs.  AVC_OK, AVC_EINVAL (bad settings,
 * logged), AVC_ESTATE (set already) or AVC_ENOMEM.
 */
int avc__ingest_set_store(avc__ingest_t *in, avc_http_t *http,
                          const avc_config_t *cfg);
/* Look for a job now. */
void avc__ingest_kick_queue(avc__ingest_t *in);
/* Stop: a job in flight is abandoned (its lease lets another worker
 * take it up later). */
void avc__ingest_free(avc__ingest_t *in);
int avc__ingest_busy(const avc__ingest_t *in);
unsigned long long avc__ingest_stat(const avc__ingest_t *in, int failed);

#endif /* AVC_INGEST_H */
