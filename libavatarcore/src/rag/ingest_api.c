/*
 * The public face of the ingestion queue (avatarcore/ingest.h): the queue
 * of ingest.c with an embedder of its own, and the vector store of cfg.
 */
#include "ingest.h"

#include <avatarcore/ingest.h>

#include <stdlib.h>

struct avc_ingest_s {
    avc_embedder_t *embedder;
    avc__ingest_t *queue;
};

AVC_API avc_ingest_t *
avc_ingest_new(avc_loop_t *loop, avc_db_t *db, avc_http_t *http,
    const avc_config_t *cfg, int *err)
{
    avc_ingest_t *q;

    *err = AVC_EINVAL;
    if (loop == NULL || db == NULL) {
        return NULL;
    }
    *err = AVC_ENOMEM;
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return NULL;
    }
    q->embedder = avc_embedder_new(loop, http, cfg, err);
    if (q->embedder == NULL) {
        free(q);
        return NULL;
    }
    q->queue = avc__ingest_new(loop, db, q->embedder);
    if (q->queue == NULL) {
        avc_embedder_free(q->embedder);
        free(q);
        *err = AVC_ENOMEM;
        return NULL;
    }
    *err = avc__ingest_set_store(q->queue, http, cfg);
    if (*err != AVC_OK) {
        avc__ingest_free(q->queue);
        avc_embedder_free(q->embedder);
        free(q);
        return NULL;
    }
    *err = AVC_OK;
    return q;
}

AVC_API void
avc_ingest_kick(avc_ingest_t *q)
{
    avc__ingest_kick_queue(q->queue);
}

AVC_API int
avc_ingest_busy(const avc_ingest_t *q)
{
    return avc__ingest_busy(q->queue);
}

AVC_API unsigned long long
avc_ingest_stat(const avc_ingest_t *q, int which)
{
    return avc__ingest_stat(q->queue, which);
}

AVC_API void
avc_ingest_free(avc_ingest_t *q)
{
    if (q == NULL) {
        return;
    }
    avc__ingest_free(q->queue);
    avc_embedder_free(q->embedder);
    free(q);
}
