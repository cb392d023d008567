/*
 * avatarcore/migrate.h - schema migrations.
 *
 * A migration directory holds files named NNN_name.sql (a version number
 * of one or more digits, an underscore, a name of [A-Za-z0-9_-]); other
 * files are ignored.  avc_migrate() brings a database up to the newest
 * version found there:
 *
 *   - the files are listed and read on the thread pool (avc_offload),
 *     never on the loop;
 *   - each missing version, in ascending order, is applied in its own
 *     transaction together with its row in schema_migrations (version,
 *     name, applied_at), so a failing file leaves nothing behind;
 *   - every transaction first takes a transaction-level advisory lock
 *     (pg_advisory_xact_lock(AVC_MIGRATE_LOCK)) and then re-reads
 *     schema_migrations, so concurrent migrators apply each file once;
 *   - running it again is a no-op;
 *   - a database whose schema_migrations holds a version newer than the
 *     newest file is refused with AVC_EVERSION and nothing is applied: an
 *     older build must not run against a newer schema.
 *
 * A file is sent as one simple query (avc_db_tx_exec_script), so it may
 * hold many statements but no BEGIN/COMMIT and no COPY.  Each statement
 * of a migration has a deadline of 15 minutes.
 */
#ifndef AVATARCORE_MIGRATE_H
#define AVATARCORE_MIGRATE_H

#include <avatarcore/core.h>
#include <avatarcore/db.h>

#ifdef __cplusplus
extern "C" {
#endif

/* the advisory lock key taken by every migration transaction */
#define AVC_MIGRATE_LOCK 7262846511

/*
 * Completion.  err: AVC_OK; AVC_EVERSION (database newer than the files);
 * AVC_ENOTFOUND (no directory, or no migration in it); AVC_EINVAL (two
 * files with one version, a file with a NUL byte or over 16 MiB);
 * AVC_ESYS (cannot read); AVC_EDB (a statement failed: msg names the file
 * and the server's SQLSTATE and message); AVC_EDBCONN, AVC_ETIMEDOUT,
 * AVC_ECANCELED.  version is the schema version after the run (highest
 * recorded version, 0 for none, -1 when unknown), applied how many files
 * this run applied.  msg is a one-line human explanation ("" on success),
 * borrowed for the callback.
 */
typedef void (*avc_migrate_cb)(int err, int version, unsigned applied,
                               const char *msg, void *data);

/*
 * Start migrating the database behind db from the files in dir (copied).
 * Returns AVC_OK and later calls cb once, on the loop; or returns an
 * error and never calls cb.  db must stay alive until cb is called.
 */
AVC_API int avc_migrate(avc_db_t *db, const char *dir, avc_migrate_cb cb,
                        void *data);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_MIGRATE_H */
