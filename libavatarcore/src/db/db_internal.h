/*
 * Internal declarations of the db subsystem, shared by its files (pool,
 * migrations).  Not installed.
 */
#ifndef AVC_DB_INTERNAL_H
#define AVC_DB_INTERNAL_H

#include <avatarcore/db.h>

/* The loop the pool runs on (borrowed). */
avc_loop_t *avc__db_loop(const avc_db_t *db);

#endif /* AVC_DB_INTERNAL_H */
