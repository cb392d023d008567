/*
 * Schema migrations (see migrate.h).
 *
 * One run is a chain of callbacks on the loop:
 *
 *   read files (thread pool)
 *   -> BEGIN -> advisory lock -> ensure schema_migrations -> read versions
 *      -> none missing: COMMIT, done
 *      -> else: the file's script -> INSERT its version -> COMMIT -> again
 *
 * Each file gets its own transaction, and each transaction re-reads the
 * recorded versions after taking the lock, so two migrators interleave
 * safely: the second waits for the first's transaction, then sees what it
 * applied.  On any failure the transaction is rolled back before the
 * callback.
 */
#include "internal.h"
#include "db_internal.h"

#include <avatarcore/migrate.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define AVC_MIGRATE_FILE_MAX  (16 * 1024 * 1024)
#define AVC_MIGRATE_TIMEOUT   (15 * 60 * 1000)      /* ms, per statement */
#define AVC_MIGRATE_VERSION_MAX 999999999

#define AVC_STR(x) AVC_STR_(x)
#define AVC_STR_(x) #x

static const char avc_migrate_lock_sql[] =
    "SELECT pg_advisory_xact_lock(" AVC_STR(AVC_MIGRATE_LOCK) ")";

static const char avc_migrate_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

typedef struct {
    int version;
    char *file;                 /* "001_init.sql" */
    char *name;                 /* "init" */
    char *sql;
} avc_migration_t;

typedef struct {
    avc_db_t *db;
    char *dir;
    avc_migrate_cb cb;
    void *data;

    avc_migration_t *files;     /* sorted by version */
    size_t nfiles;
    size_t cap;

    int err;
    char msg[512];
    avc_db_tx_t *tx;
    size_t cur;                 /* the file being applied */
    int version;                /* highest recorded, -1 unknown */
    unsigned applied;
    int warned;                 /* about versions without a file */
} avc_migrate_t;

static void avc_migrate_step(avc_migrate_t *m);

static void
avc_migrate_free(avc_migrate_t *m)
{
    size_t i;

    for (i = 0; i < m->nfiles; i++) {
        free(m->files[i].file);
        free(m->files[i].name);
        free(m->files[i].sql);
    }
    free(m->files);
    free(m->dir);
    free(m);
}

static void
avc_migrate_finish(avc_migrate_t *m)
{
    /* not logged: the callback gets the message and reports it */
    if (m->err == AVC_OK) {
        m->msg[0] = '\0';
    }
    m->cb(m->err, m->version, m->applied, m->msg, m->data);
    avc_migrate_free(m);
}

static void
avc_migrate_rolled_back(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_finish(data);
}

/* Record the first failure; roll back when in a transaction, then finish. */
static void
avc_migrate_fail(avc_migrate_t *m, int err, const char *fmt, ...)
    AVC_PRINTF(3, 4);

static void
avc_migrate_fail(avc_migrate_t *m, int err, const char *fmt, ...)
{
    avc_db_tx_t *tx = m->tx;
    va_list ap;

    m->err = err;
    va_start(ap, fmt);
    vsnprintf(m->msg, sizeof(m->msg), fmt, ap);
    va_end(ap);
    m->tx = NULL;
    if (tx == NULL || avc_db_rollback(tx, avc_migrate_rolled_back, m)
                      != AVC_OK)
    {
        avc_migrate_finish(m);
    }
}

/* the reason of a failed query, for messages */
static const char *
avc_migrate_why(avc_migrate_t *m, int err, avc_db_res_t *res, char *buf,
    size_t size)
{
    if (err == AVC_EDB) {
        snprintf(buf, size, "%s %s", avc_db_res_sqlstate(res),
                 avc_db_res_error(res));
    } else if (err == AVC_EDBCONN && avc_db_last_error(m->db)[0]) {
        snprintf(buf, size, "%s", avc_db_last_error(m->db));
    } else {
        snprintf(buf, size, "%s", avc_strerror(err));
    }
    return buf;
}

/* reading the directory, on the thread pool */

static int
avc_migrate_parse(const char *fname, int *version, size_t *name_len)
{
    const char *p = fname, *name;
    long v = 0;
    size_t n;

    if (*p < '0' || *p > '9') {
        return 0;
    }
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > AVC_MIGRATE_VERSION_MAX) {
            return 0;
        }
    }
    if (*p++ != '_' || v == 0) {
        return 0;
    }
    name = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
           || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')
    {
        p++;
    }
    n = (size_t) (p - name);
    if (n == 0 || strcmp(p, ".sql") != 0) {
        return 0;
    }
    *version = (int) v;
    *name_len = n;
    return 1;
}

static int
avc_migrate_cmp(const void *a, const void *b)
{
    const avc_migration_t *x = a, *y = b;

    return x->version < y->version ? -1 : x->version > y->version;
}

static int
avc_migrate_add(avc_migrate_t *m, const char *fname, int version,
    size_t name_len)
{
    avc_migration_t *f;
    size_t cap;

    if (m->nfiles == m->cap) {
        cap = m->cap ? m->cap * 2 : 16;
        f = realloc(m->files, cap * sizeof(*f));
        if (f == NULL) {
            return AVC_ENOMEM;
        }
        m->files = f;
        m->cap = cap;
    }
    f = &m->files[m->nfiles];
    memset(f, 0, sizeof(*f));
    f->version = version;
    f->file = strdup(fname);
    f->name = strndup(strchr(fname, '_') + 1, name_len);
    if (f->file == NULL || f->name == NULL) {
        free(f->file);
        free(f->name);
        return AVC_ENOMEM;
    }
    m->nfiles++;
    return AVC_OK;
}

static int
avc_migrate_load(avc_migrate_t *m, avc_migration_t *f)
{
    char path[4096], ebuf[128];
    struct stat st;
    size_t len = 0;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", m->dir, f->file);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(m->msg, sizeof(m->msg), "cannot open %.400s: %s", path,
                 strerror_r(errno, ebuf, sizeof(ebuf)));
        return AVC_ESYS;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size > AVC_MIGRATE_FILE_MAX)
    {
        close(fd);
        snprintf(m->msg, sizeof(m->msg),
                 "%.400s is not a regular file of at most 16 MiB", path);
        return AVC_EINVAL;
    }
    f->sql = malloc((size_t) st.st_size + 1);
    if (f->sql == NULL) {
        close(fd);
        snprintf(m->msg, sizeof(m->msg), "out of memory reading %.400s", path);
        return AVC_ENOMEM;
    }
    while (len < (size_t) st.st_size) {
        n = read(fd, f->sql + len, (size_t) st.st_size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t) n;
    }
    close(fd);
    f->sql[len] = '\0';
    if (len != (size_t) st.st_size) {
        snprintf(m->msg, sizeof(m->msg), "short read on %.400s", path);
        return AVC_ESYS;
    }
    if (memchr(f->sql, '\0', len) != NULL) {
        snprintf(m->msg, sizeof(m->msg), "%.400s contains a NUL byte", path);
        return AVC_EINVAL;
    }
    return AVC_OK;
}

static void
avc_migrate_read(void *data)
{
    avc_migrate_t *m = data;
    struct dirent *de;
    char ebuf[128];
    size_t i, name_len;
    int version;
    DIR *d;

    d = opendir(m->dir);
    if (d == NULL) {
        m->err = errno == ENOENT || errno == ENOTDIR ? AVC_ENOTFOUND
                                                     : AVC_ESYS;
        snprintf(m->msg, sizeof(m->msg), "cannot open %s: %s", m->dir,
                 strerror_r(errno, ebuf, sizeof(ebuf)));
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (!avc_migrate_parse(de->d_name, &version, &name_len)) {
            continue;
        }
        if (avc_migrate_add(m, de->d_name, version, name_len) != AVC_OK) {
            m->err = AVC_ENOMEM;
            snprintf(m->msg, sizeof(m->msg), "out of memory");
            closedir(d);
            return;
        }
    }
    closedir(d);
    if (m->nfiles == 0) {
        m->err = AVC_ENOTFOUND;
        snprintf(m->msg, sizeof(m->msg),
                 "no migrations (NNN_name.sql) in %s", m->dir);
        return;
    }
    qsort(m->files, m->nfiles, sizeof(*m->files), avc_migrate_cmp);
    for (i = 1; i < m->nfiles; i++) {
        if (m->files[i].version == m->files[i - 1].version) {
            m->err = AVC_EINVAL;
            snprintf(m->msg, sizeof(m->msg),
                     "%s and %s have the same version in %s",
                     m->files[i - 1].file, m->files[i].file, m->dir);
            return;
        }
    }
    for (i = 0; i < m->nfiles; i++) {
        m->err = avc_migrate_load(m, &m->files[i]);
        if (m->err != AVC_OK) {
            return;
        }
    }
}

/* the transaction chain, on the loop */

static void
avc_migrate_final_commit(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    char why[256];

    m->tx = NULL;
    if (err != AVC_OK) {
        m->err = err;
        snprintf(m->msg, sizeof(m->msg), "commit failed: %s",
                 avc_migrate_why(m, err, res, why, sizeof(why)));
    }
    avc_migrate_finish(m);
}

static void
avc_migrate_committed(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    avc_migration_t *f = &m->files[m->cur];
    char why[256];

    m->tx = NULL;
    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "%s/%s: commit failed: %s", m->dir,
                         f->file, avc_migrate_why(m, err, res, why,
                                                  sizeof(why)));
        return;
    }
    m->applied++;
    if (f->version > m->version) {
        m->version = f->version;
    }
    avc_log(AVC_LOG_NOTICE, "migrate: applied %s", f->file);
    avc_migrate_step(m);
}

static void
avc_migrate_recorded(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    char why[256];

    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "recording %s failed: %s",
                         m->files[m->cur].file,
                         avc_migrate_why(m, err, res, why, sizeof(why)));
        return;
    }
    if (avc_db_commit(m->tx, avc_migrate_committed, m) != AVC_OK) {
        avc_migrate_fail(m, AVC_ENOMEM, "cannot commit");
    }
}

static void
avc_migrate_ran(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    avc_migration_t *f = &m->files[m->cur];
    const char *params[2];
    char version[16], why[384];

    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "%s/%s failed, nothing of it applied: %s",
                         m->dir, f->file,
                         avc_migrate_why(m, err, res, why, sizeof(why)));
        return;
    }
    snprintf(version, sizeof(version), "%d", f->version);
    params[0] = version;
    params[1] = f->name;
    if (avc_db_tx_query(m->tx, "INSERT INTO schema_migrations "
                        "(version, name) VALUES ($1, $2)", 0, 2, params,
                        avc_migrate_recorded, m) == NULL)
    {
        avc_migrate_fail(m, AVC_ENOMEM, "out of memory");
    }
}

static int
avc_migrate_int_cmp(const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;

    return x < y ? -1 : x > y;
}

static void
avc_migrate_versions(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    avc_migration_t *newest = &m->files[m->nfiles - 1];
    int *have = NULL, rows, i, j, found;
    char why[256];
    size_t k;

    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "cannot read schema_migrations: %s",
                         avc_migrate_why(m, err, res, why, sizeof(why)));
        return;
    }
    rows = avc_db_res_rows(res);
    if (rows > 0 && (have = malloc((size_t) rows * sizeof(int))) == NULL) {
        avc_migrate_fail(m, AVC_ENOMEM, "out of memory");
        return;
    }
    for (i = 0; i < rows; i++) {
        have[i] = atoi(avc_db_res_value(res, i, 0));
    }
    if (rows > 1) {
        qsort(have, (size_t) rows, sizeof(int), avc_migrate_int_cmp);
    }
    m->version = rows > 0 ? have[rows - 1] : 0;

    if (m->version > newest->version) {
        free(have);
        avc_migrate_fail(m, AVC_EVERSION,
                         "the database schema is at version %d, newer than "
                         "the newest migration in %s (%s); refusing to run "
                         "an older build against it", m->version, m->dir,
                         newest->file);
        return;
    }

    /* both sorted: the first file whose version is not recorded */
    found = -1;
    for (k = 0, j = 0; k < m->nfiles; k++) {
        while (j < rows && have[j] < m->files[k].version) {
            j++;
        }
        if (j >= rows || have[j] != m->files[k].version) {
            found = (int) k;
            break;
        }
    }
    if (!m->warned) {
        for (i = 0; i < rows; i++) {
            for (k = 0; k < m->nfiles; k++) {
                if (m->files[k].version == have[i]) {
                    break;
                }
            }
            if (k == m->nfiles) {
                avc_log(AVC_LOG_WARN, "migrate: version %d is recorded but "
                        "has no file in %s", have[i], m->dir);
            }
        }
        m->warned = 1;
    }
    free(have);

    if (found < 0) {
        if (avc_db_commit(m->tx, avc_migrate_final_commit, m) != AVC_OK) {
            avc_migrate_fail(m, AVC_ENOMEM, "cannot commit");
        }
        return;
    }
    m->cur = (size_t) found;
    if (avc_db_tx_exec_script(m->tx, m->files[found].sql, avc_migrate_ran, m)
        == NULL)
    {
        avc_migrate_fail(m, AVC_ENOMEM, "out of memory");
    }
}

static void
avc_migrate_table(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    char why[256];

    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "cannot create schema_migrations: %s",
                         avc_migrate_why(m, err, res, why, sizeof(why)));
        return;
    }
    if (avc_db_tx_query(m->tx, "SELECT version FROM schema_migrations", 0,
                        0, NULL, avc_migrate_versions, m) == NULL)
    {
        avc_migrate_fail(m, AVC_ENOMEM, "out of memory");
    }
}

static void
avc_migrate_locked(int err, avc_db_res_t *res, void *data)
{
    avc_migrate_t *m = data;
    char why[256];

    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "cannot take the migration lock: %s",
                         avc_migrate_why(m, err, res, why, sizeof(why)));
        return;
    }
    if (avc_db_tx_query(m->tx, avc_migrate_table_sql, 0, 0, NULL,
                        avc_migrate_table, m) == NULL)
    {
        avc_migrate_fail(m, AVC_ENOMEM, "out of memory");
    }
}

static void
avc_migrate_begun(int err, avc_db_tx_t *tx, void *data)
{
    avc_migrate_t *m = data;
    char why[256];

    if (err != AVC_OK) {
        avc_migrate_fail(m, err, "cannot start a transaction: %s",
                         avc_migrate_why(m, err, NULL, why, sizeof(why)));
        return;
    }
    m->tx = tx;
    if (avc_db_tx_query(tx, avc_migrate_lock_sql, 0, 0, NULL,
                        avc_migrate_locked, m) == NULL)
    {
        avc_migrate_fail(m, AVC_ENOMEM, "out of memory");
    }
}

static void
avc_migrate_step(avc_migrate_t *m)
{
    int rc;

    rc = avc_db_begin(m->db, AVC_MIGRATE_TIMEOUT, avc_migrate_begun, m);
    if (rc != AVC_OK) {
        avc_migrate_fail(m, rc, "cannot start a transaction: %s",
                         avc_strerror(rc));
    }
}

static void
avc_migrate_read_done(void *data, int status)
{
    avc_migrate_t *m = data;

    if (status != AVC_OK) {
        m->err = status;
        snprintf(m->msg, sizeof(m->msg), "cancelled");
    }
    if (m->err != AVC_OK) {
        avc_migrate_finish(m);
        return;
    }
    avc_migrate_step(m);
}

AVC_API int
avc_migrate(avc_db_t *db, const char *dir, avc_migrate_cb cb, void *data)
{
    avc_migrate_t *m;
    int rc;

    if (db == NULL || dir == NULL || *dir == '\0' || cb == NULL) {
        return AVC_EINVAL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return AVC_ENOMEM;
    }
    m->dir = strdup(dir);
    if (m->dir == NULL) {
        free(m);
        return AVC_ENOMEM;
    }
    m->db = db;
    m->cb = cb;
    m->data = data;
    m->version = -1;
    rc = avc_offload(avc__db_loop(db), avc_migrate_read,
                     avc_migrate_read_done, m);
    if (rc != AVC_OK) {
        avc_migrate_free(m);
    }
    return rc;
}
