/*
 * Internals of the knowledge-base operations.
 */
#ifndef AVC_KB_H
#define AVC_KB_H

#include "../app/app_int.h"
#include "../app/validate.h"

/* The state every knowledge-base operation starts with. */
typedef struct {
    char id[24];                /* the dealership, as in the path */
    int write;
    void (*next)(avc_call_t *call);
    char *name;
    json_t *config;             /* rag_config, or NULL */
    int initialized;
    /* the operation's own state beyond this */
    void *extra;
    void (*extra_free)(void *extra);
} avc__kb_t;

/*
 * Authenticate, check the role (write: super or dealership admin), load
 * the dealership within the caller's scope (404 otherwise), then next().
 */
int avc__kb_begin(avc_call_t *call, int write,
                  void (*next)(avc_call_t *call));
void avc__kb_free(void *p);

void avc__kb_not_initialized(avc_call_t *call);
int avc__kb_topic_ok(const avc__kb_t *kb, const char *topic);

/* What the knowledge base is built with, from the configuration. */
const char *avc__kb_model(avc_app_t *app);
unsigned avc__kb_dimensions(avc_app_t *app);
const char *avc__kb_vector_db(avc_app_t *app);

/*
 * A dealership was deleted (committed): its snapshot and, with Pinecone,
 * its namespace go too, in the background (failures are logged).
 */
void avc__kb_dealership_deleted(avc_app_t *app, int64_t dealership_id);

#endif /* AVC_KB_H */
