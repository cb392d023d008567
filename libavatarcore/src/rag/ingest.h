/*
 * The ingestion queue (internal): see ingest.c.
 */
#ifndef AVC_INGEST_H
#define AVC_INGEST_H

#include "internal.h"

#include <avatarcore/db.h>
#include <avatarcore/embed.h>

typedef struct avc__ingest_s avc__ingest_t;

/* Start processing jobs on loop (embedder borrowed; NULL: local). */
avc__ingest_t *avc__ingest_new(avc_loop_t *loop, avc_db_t *db,
                               avc_embedder_t *embedder);
/* Look for a job now. */
void avc__ingest_kick_queue(avc__ingest_t *in);
/* Stop: a job in flight is abandoned (its lease lets another worker
 * take it up later). */
void avc__ingest_free(avc__ingest_t *in);
int avc__ingest_busy(const avc__ingest_t *in);
unsigned long long avc__ingest_stat(const avc__ingest_t *in, int failed);

#endif /* AVC_INGEST_H */
