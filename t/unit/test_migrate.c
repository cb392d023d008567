/*
 * Schema migrations against a private PostgreSQL (t/unit/pg.h): the real
 * files of sql/ on an empty database, a second run, a database newer than
 * the files, two migrators at once, broken migration directories, and
 * the constraints the schema promises (case-insensitive uniqueness,
 * dealership scoping, cascades, the full-text column, the generation).
 *
 * The migration directory is $AVC_SQL_DIR, else ./sql (make runs tests
 * from the top of the repository).
 */
#include "tap.h"
#include "pg.h"

#include <avatarcore/db.h>
#include <avatarcore/loop.h>
#include <avatarcore/migrate.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static avc_loop_t *loop;
static tpg_t pg;
static const char *sql_dir;
static int nfiles;
static int newest;

typedef struct {
    int done;
    int err;
    int version;
    unsigned applied;
    char msg[512];
} mig_t;

typedef struct {
    int done;
    int err;
    int rows;
    char v[4][128];
    char sqlstate[8];
    char constraint[64];
} res_t;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    printf("# [%d] %s\n", (int) level, msg);
    fflush(stdout);
}

static int
run_until(const int *flag, unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (!*flag && avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 20);
    }
    return *flag;
}

static void
on_mig(int err, int version, unsigned applied, const char *msg, void *data)
{
    mig_t *m = data;

    m->done = 1;
    m->err = err;
    m->version = version;
    m->applied = applied;
    snprintf(m->msg, sizeof(m->msg), "%s", msg);
}

static int
migrate(avc_db_t *db, const char *dir, mig_t *m)
{
    memset(m, 0, sizeof(*m));
    if (avc_migrate(db, dir, on_mig, m) != AVC_OK) {
        return m->err = -100;
    }
    if (!run_until(&m->done, 60000)) {
        m->err = -101;
    }
    return m->err;
}

static void
on_res(int err, avc_db_res_t *res, void *data)
{
    res_t *r = data;
    int i;

    r->done = 1;
    r->err = err;
    r->rows = avc_db_res_rows(res);
    for (i = 0; i < 4 && i < avc_db_res_cols(res) && r->rows > 0; i++) {
        snprintf(r->v[i], sizeof(r->v[i]), "%s", avc_db_res_value(res, 0, i));
    }
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%s",
             avc_db_res_sqlstate(res));
    snprintf(r->constraint, sizeof(r->constraint), "%s",
             avc_db_res_constraint(res));
}

static int
q(avc_db_t *db, const char *sql, int n, const char *const *p, res_t *r)
{
    memset(r, 0, sizeof(*r));
    if (avc_db_query(db, sql, 0, n, p, 0, on_res, r) == NULL) {
        return r->err = -100;
    }
    run_until(&r->done, 20000);
    return r->err;
}

/* a pool on another database of the private server, created empty */
static avc_db_t *
fresh_db(avc_db_t *admin, const char *name)
{
    char sql[128], conninfo[256];
    res_t r;

    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    if (q(admin, sql, 0, NULL, &r) != AVC_OK) {
        printf("# %s: %s\n", sql, r.sqlstate);
        return NULL;
    }
    snprintf(conninfo, sizeof(conninfo),
             "host=%s port=%d dbname=%s user=postgres", pg.dir, pg.port,
             name);
    return avc_db_new(loop, conninfo, 2, 0);
}

static int
count_files(const char *dir, int *max)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    int n = 0, v;
    char *end;

    *max = 0;
    if (d == NULL) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        v = (int) strtol(de->d_name, &end, 10);
        if (end != de->d_name && *end == '_' && len > 4
            && strcmp(de->d_name + len - 4, ".sql") == 0)
        {
            n++;
            if (v > *max) {
                *max = v;
            }
        }
    }
    closedir(d);
    return n;
}

static void
test_fresh(avc_db_t *db)
{
    static const char *tables[] = {
        "dealerships", "users", "refresh_tokens", "invites",
        "password_resets", "documents", "document_chunks", "ingest_jobs",
        "conversations", "messages", "reports", "usage", "mail_outbox",
        "schema_migrations"
    };
    const char *p[1];
    uint64_t t0;
    size_t i;
    res_t r;
    mig_t m;
    int ok = 1;

    t0 = avc_loop_now(loop);
    migrate(db, sql_dir, &m);
    TAP_IS(m.err, AVC_OK, "migrations apply to an empty database (%s)",
           m.msg);
    tap_diag("applied %u files in %llu ms", m.applied,
             (unsigned long long) (avc_loop_now(loop) - t0));
    TAP_IS(m.applied, nfiles, "all %d files applied", nfiles);
    TAP_IS(m.version, newest, "schema at the newest version");
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        p[0] = tables[i];
        q(db, "SELECT to_regclass($1) IS NOT NULL", 1, p, &r);
        if (strcmp(r.v[0], "t") != 0) {
            ok = 0;
            tap_diag("missing table %s", tables[i]);
        }
    }
    TAP_OK(ok, "every table of DESIGN.md section 4 exists");
    q(db, "SELECT count(*), count(DISTINCT name), bool_and(applied_at <= "
          "now()), max(version) FROM schema_migrations", 0, NULL, &r);
    TAP_IS(atoi(r.v[0]), nfiles, "one schema_migrations row per file");
    TAP_IS(atoi(r.v[1]), nfiles, "each with its name");
    TAP_STR(r.v[2], "t", "and its time");

    t0 = avc_loop_now(loop);
    migrate(db, sql_dir, &m);
    TAP_IS(m.err, AVC_OK, "second run succeeds");
    TAP_IS(m.applied, 0, "and applies nothing");
    TAP_IS(m.version, newest, "version unchanged");
    q(db, "SELECT count(*) FROM schema_migrations", 0, NULL, &r);
    TAP_IS(atoi(r.v[0]), nfiles, "no duplicate rows");
    tap_diag("no-op run took %llu ms",
             (unsigned long long) (avc_loop_now(loop) - t0));
}

static void
test_schema(avc_db_t *db)
{
    const char *p[4];
    char a[128], b[128], doc[128], user[128];
    res_t r;

    q(db, "INSERT INTO dealerships (name) VALUES ('Acme Motors') "
          "RETURNING id", 0, NULL, &r);
    TAP_IS(r.err, AVC_OK, "insert a dealership");
    snprintf(a, sizeof(a), "%s", r.v[0]);
    q(db, "INSERT INTO dealerships (name) VALUES ('ACME MOTORS')", 0, NULL,
      &r);
    TAP_STR(r.sqlstate, "23505", "dealership names unique ignoring case");
    TAP_STR(r.constraint, "dealerships_name_key", "named constraint");
    q(db, "INSERT INTO dealerships (name) VALUES ('Other Cars') "
          "RETURNING id, generation", 0, NULL, &r);
    snprintf(b, sizeof(b), "%s", r.v[0]);
    TAP_STR(r.v[1], "1", "generation starts at 1");

    p[0] = "Admin@Example.com";
    p[1] = a;
    q(db, "INSERT INTO users (email, password_hash, first_name, last_name, "
          "dealership_id) VALUES ($1, 'x', 'A', 'B', $2) RETURNING id, role, "
          "is_active, is_verified", 2, p, &r);
    TAP_IS(r.err, AVC_OK, "insert a user");
    snprintf(user, sizeof(user), "%s", r.v[0]);
    TAP_OK(strcmp(r.v[1], "user") == 0 && strcmp(r.v[2], "t") == 0
           && strcmp(r.v[3], "f") == 0, "defaults: user, active, unverified");
    p[0] = "admin@EXAMPLE.com";
    q(db, "INSERT INTO users (email, password_hash, first_name, last_name) "
          "VALUES ($1, 'x', 'A', 'B')", 1, p, &r);
    TAP_STR(r.sqlstate, "23505", "e-mail unique ignoring case");
    TAP_STR(r.constraint, "users_email_key", "users_email_key");
    q(db, "INSERT INTO users (email, password_hash, first_name, last_name, "
          "role) VALUES ('x@y.z', 'x', 'A', 'B', 'god')", 0, NULL, &r);
    TAP_STR(r.sqlstate, "23514", "unknown role refused");
    q(db, "INSERT INTO users (email, password_hash, first_name, last_name) "
          "VALUES ('x@y.z', 'x', '', 'B')", 0, NULL, &r);
    TAP_STR(r.sqlstate, "23514", "empty first name refused");
    q(db, "UPDATE users SET first_name = 'C' WHERE id = " "(SELECT max(id) "
          "FROM users) RETURNING updated_at > created_at", 0, NULL, &r);
    TAP_STR(r.v[0], "t", "updated_at maintained by trigger");

    p[0] = a;
    p[1] = user;
    q(db, "INSERT INTO documents (dealership_id, topic, filename, sha256, "
          "bytes, uploaded_by) VALUES ($1, 'books', 'f.txt', "
          "sha256('x'), 1, $2) RETURNING id, status", 2, p, &r);
    TAP_IS(r.err, AVC_OK, "insert a document");
    TAP_STR(r.v[1], "queued", "status starts queued");
    snprintf(doc, sizeof(doc), "%s", r.v[0]);
    q(db, "INSERT INTO documents (dealership_id, topic, filename, sha256, "
          "bytes) VALUES ($1, 'books', 'f.txt', sha256('x'), 1) "
          "ON CONFLICT DO NOTHING", 1, p, &r);
    TAP_IS(r.err, AVC_OK, "same file again ...");
    q(db, "SELECT count(*) FROM documents", 0, NULL, &r);
    TAP_STR(r.v[0], "1", "... is a no-op");
    q(db, "INSERT INTO documents (dealership_id, topic, filename, sha256, "
          "bytes) VALUES ($1, 'Bad Topic', 'g.txt', sha256('y'), 1)", 1, p,
      &r);
    TAP_STR(r.sqlstate, "23514", "bad topic refused");

    p[0] = doc;
    p[1] = a;
    q(db, "INSERT INTO document_chunks (document_id, dealership_id, topic, "
          "position, title, content) VALUES ($1, $2, 'books', 0, "
          "'Warranties', 'Extended service contracts protect the buyer')",
      2, p, &r);
    TAP_IS(r.err, AVC_OK, "insert a chunk");
    q(db, "SELECT count(*) FROM document_chunks WHERE tsv @@ "
          "plainto_tsquery('english', 'warranty protection')", 0, NULL, &r);
    TAP_STR(r.v[0], "1", "generated tsvector finds it (stemmed, title too)");
    q(db, "SELECT count(*) FROM pg_indexes WHERE indexname = "
          "'document_chunks_tsv_idx' AND indexdef LIKE '%gin%'", 0, NULL,
      &r);
    TAP_STR(r.v[0], "1", "with a GIN index");
    p[1] = b;
    q(db, "INSERT INTO document_chunks (document_id, dealership_id, topic, "
          "position, content) VALUES ($1, $2, 'books', 1, 'x')", 2, p, &r);
    TAP_STR(r.sqlstate, "23503",
            "a chunk cannot claim another dealership's document");
    q(db, "INSERT INTO ingest_jobs (document_id, dealership_id) VALUES "
          "($1, $2)", 2, p, &r);
    TAP_STR(r.sqlstate, "23503", "nor a job");
    p[1] = a;
    q(db, "INSERT INTO ingest_jobs (document_id, dealership_id) VALUES "
          "($1, $2)", 2, p, &r);
    TAP_IS(r.err, AVC_OK, "job for its own document");
    q(db, "SELECT id FROM ingest_jobs WHERE state = 'queued' AND run_after "
          "<= now() ORDER BY run_after, id FOR UPDATE SKIP LOCKED LIMIT 1",
      0, NULL, &r);
    TAP_IS(r.rows, 1, "job picked with SKIP LOCKED");

    p[0] = a;
    q(db, "SELECT updated_at FROM dealerships WHERE id = $1", 1, p, &r);
    snprintf(b, sizeof(b), "%s", r.v[0]);
    p[0] = doc;
    q(db, "UPDATE documents SET status = 'ready', progress = 1 WHERE id = "
          "$1", 1, p, &r);
    p[0] = a;
    q(db, "SELECT generation, updated_at FROM dealerships WHERE id = $1", 1,
      p, &r);
    TAP_STR(r.v[0], "2", "document ready: generation bumped");
    TAP_STR(r.v[1], b, "without touching the dealership's updated_at");

    p[0] = user;
    p[1] = a;
    q(db, "INSERT INTO conversations (session_id, user_id, dealership_id) "
          "VALUES ('s-1', $1, $2) RETURNING id", 2, p, &r);
    TAP_IS(r.err, AVC_OK, "conversation");
    snprintf(doc, sizeof(doc), "%s", r.v[0]);
    p[0] = doc;
    q(db, "INSERT INTO messages (conversation_id, dealership_id, role, "
          "content) VALUES ($1, $2, 'system', 'x')", 2, p, &r);
    TAP_STR(r.sqlstate, "23514", "no 'system' messages");
    q(db, "INSERT INTO messages (conversation_id, dealership_id, role, "
          "content, sources) VALUES ($1, $2, 'user', 'hi', '[]')", 2, p, &r);
    TAP_IS(r.err, AVC_OK, "user message");
    p[0] = user;
    q(db, "INSERT INTO reports (kind, user_id, dealership_id, fields) "
          "VALUES ('inaccuracy', $1, $2, '{\"user_input\":\"q\"}')", 2, p,
      &r);
    TAP_IS(r.err, AVC_OK, "report");
    q(db, "INSERT INTO usage (day, user_id, dealership_id, requests) VALUES "
          "(current_date, $1, $2, 1) ON CONFLICT (day, user_id) DO UPDATE "
          "SET requests = usage.requests + 1", 2, p, &r);
    q(db, "INSERT INTO usage (day, user_id, dealership_id, requests) VALUES "
          "(current_date, $1, $2, 1) ON CONFLICT (day, user_id) DO UPDATE "
          "SET requests = usage.requests + 1 RETURNING requests", 2, p, &r);
    TAP_STR(r.v[0], "2", "usage upserted per day and user");
    q(db, "INSERT INTO refresh_tokens (user_id, token_hash, expires_at) "
          "VALUES ($1, sha256('t'), now() + interval '7 days') RETURNING "
          "family_id IS NOT NULL", 1, p, &r);
    TAP_STR(r.v[0], "t", "refresh token with a family id");
    q(db, "INSERT INTO refresh_tokens (user_id, token_hash, expires_at) "
          "VALUES ($1, 'short', now())", 1, p, &r);
    TAP_STR(r.sqlstate, "23514", "token hash must be 32 bytes");
    q(db, "INSERT INTO mail_outbox (recipients, subject, body_text, kind) "
          "VALUES ('{a@b.c}', 's', 't', 'report')", 0, NULL, &r);
    TAP_IS(r.err, AVC_OK, "mail queued");

    p[0] = a;
    q(db, "DELETE FROM dealerships WHERE id = $1", 1, p, &r);
    TAP_IS(r.err, AVC_OK, "delete the dealership");
    q(db, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM "
          "documents) + (SELECT count(*) FROM document_chunks) + (SELECT "
          "count(*) FROM ingest_jobs) + (SELECT count(*) FROM conversations)"
          " + (SELECT count(*) FROM messages) + (SELECT count(*) FROM usage)"
          " + (SELECT count(*) FROM refresh_tokens) + (SELECT count(*) FROM "
          "reports)", 0, NULL, &r);
    TAP_STR(r.v[0], "0", "its users, documents, chunks, jobs, history, "
            "usage, tokens and reports are gone");
}

static void
test_newer(avc_db_t *admin)
{
    avc_db_t *db = fresh_db(admin, "m_newer");
    res_t r;
    mig_t m;

    TAP_OK(db != NULL, "second database");
    migrate(db, sql_dir, &m);
    TAP_IS(m.err, AVC_OK, "migrated");
    q(db, "INSERT INTO schema_migrations (version, name) VALUES "
          "(999999, 'from_the_future')", 0, NULL, &r);
    migrate(db, sql_dir, &m);
    TAP_IS(m.err, AVC_EVERSION, "newer schema refused with AVC_EVERSION");
    TAP_OK(strstr(m.msg, "999999") && strstr(m.msg, "newer"),
           "clear message: %s", m.msg);
    TAP_IS(m.version, 999999, "reports the database's version");
    TAP_IS(m.applied, 0, "applied nothing");
    avc_db_free(db);
}

static void
test_concurrent(avc_db_t *admin)
{
    avc_db_t *db1 = fresh_db(admin, "m_conc"), *db2;
    char conninfo[256];
    mig_t m1, m2;
    res_t r;

    snprintf(conninfo, sizeof(conninfo),
             "host=%s port=%d dbname=m_conc user=postgres", pg.dir, pg.port);
    db2 = avc_db_new(loop, conninfo, 2, 0);
    memset(&m1, 0, sizeof(m1));
    memset(&m2, 0, sizeof(m2));
    TAP_IS(avc_migrate(db1, sql_dir, on_mig, &m1), AVC_OK, "migrator 1");
    TAP_IS(avc_migrate(db2, sql_dir, on_mig, &m2), AVC_OK, "migrator 2");
    run_until(&m1.done, 60000);
    run_until(&m2.done, 60000);
    TAP_OK(m1.err == AVC_OK && m2.err == AVC_OK,
           "two concurrent migrators both succeed (%s / %s)", m1.msg, m2.msg);
    TAP_IS(m1.applied + m2.applied, nfiles,
           "each file applied once in all (%u + %u)", m1.applied,
           m2.applied);
    q(db1, "SELECT count(*) FROM schema_migrations", 0, NULL, &r);
    TAP_IS(atoi(r.v[0]), nfiles, "one row per file");
    avc_db_free(db1);
    avc_db_free(db2);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void
test_broken(avc_db_t *admin)
{
    char dir[] = "/tmp/avc-mig-XXXXXX", dup[64], empty[64];
    char *rm[] = { (char *) "rm", (char *) "-rf", dir, NULL };
    avc_db_t *db = fresh_db(admin, "m_bad");
    res_t r;
    mig_t m;

    if (mkdtemp(dir) == NULL) {
        TAP_OK(0, "mkdtemp");
        return;
    }
    migrate(db, "/nonexistent/sql", &m);
    TAP_IS(m.err, AVC_ENOTFOUND, "missing directory: AVC_ENOTFOUND (%s)",
           m.msg);
    snprintf(empty, sizeof(empty), "%s/empty", dir);
    mkdir(empty, 0700);
    write_file(empty, "README", "not a migration\n");
    write_file(empty, "abc_x.sql", "SELECT 1;\n");
    migrate(db, empty, &m);
    TAP_IS(m.err, AVC_ENOTFOUND, "no migrations: AVC_ENOTFOUND (%s)", m.msg);
    snprintf(dup, sizeof(dup), "%s/dup", dir);
    mkdir(dup, 0700);
    write_file(dup, "001_a.sql", "SELECT 1;\n");
    write_file(dup, "1_b.sql", "SELECT 1;\n");
    migrate(db, dup, &m);
    TAP_IS(m.err, AVC_EINVAL, "duplicate version: AVC_EINVAL (%s)", m.msg);

    write_file(dir, "001_ok.sql", "CREATE TABLE t_ok (x int);\n"
                                  "INSERT INTO t_ok VALUES (1);\n");
    write_file(dir, "002_bad.sql", "-- half of this must not stay\n"
                                   "CREATE TABLE t_bad (x int);\n"
                                   "SELEC 1;\n");
    write_file(dir, "003_never.sql", "CREATE TABLE t_never (x int);\n");
    migrate(db, dir, &m);
    TAP_IS(m.err, AVC_EDB, "failing migration: AVC_EDB");
    TAP_OK(strstr(m.msg, "002_bad.sql") && strstr(m.msg, "42601"),
           "message names file and SQLSTATE: %s", m.msg);
    TAP_IS(m.applied, 1, "the good one before it was applied");
    TAP_IS(m.version, 1, "schema at version 1");
    q(db, "SELECT to_regclass('t_ok') IS NOT NULL, to_regclass('t_bad') IS "
          "NULL, to_regclass('t_never') IS NULL, (SELECT max(version) FROM "
          "schema_migrations)", 0, NULL, &r);
    TAP_OK(strcmp(r.v[0], "t") == 0 && strcmp(r.v[1], "t") == 0
           && strcmp(r.v[2], "t") == 0 && strcmp(r.v[3], "1") == 0,
           "nothing of the failed file or later ones remains");

    write_file(dir, "002_bad.sql", "CREATE TABLE t_bad (x int);\n");
    migrate(db, dir, &m);
    TAP_IS(m.err, AVC_OK, "fixed file: migration resumes");
    TAP_IS(m.applied, 2, "and applies the remaining two");
    avc_db_free(db);
    tpg_exec(NULL, NULL, rm);
}

static void
test_down(void)
{
    char conninfo[256];
    avc_db_t *db;
    mig_t m;

    snprintf(conninfo, sizeof(conninfo),
             "host=%s port=%d dbname=postgres user=postgres", pg.dir,
             pg.port + 1 > 65535 ? 1 : pg.port + 1);
    db = avc_db_new(loop, conninfo, 1, 0);
    avc_db_set_connect_wait(db, 500);
    migrate(db, sql_dir, &m);
    TAP_IS(m.err, AVC_EDBCONN, "no server: AVC_EDBCONN (%s)", m.msg);
    avc_db_free(db);
}

int
main(void)
{
    avc_db_t *db;

    avc_log_set(log_cb, NULL, AVC_LOG_WARN);
    sql_dir = getenv("AVC_SQL_DIR") ? getenv("AVC_SQL_DIR") : "sql";
    nfiles = count_files(sql_dir, &newest);
    if (nfiles <= 0) {
        printf("1..0 # SKIP no migrations in %s (set AVC_SQL_DIR)\n",
               sql_dir);
        return 0;
    }
    if (tpg_start(&pg) != 0) {
        printf("1..0 # SKIP cannot start a private PostgreSQL\n");
        return 0;
    }
    tap_diag("PostgreSQL in %s, port %d; migrations in %s", pg.dir, pg.port,
             sql_dir);
    loop = avc_loop_new(2);
    db = avc_db_new(loop, pg.conninfo, 2, 0);

    test_fresh(db);
    test_schema(db);
    test_newer(db);
    test_concurrent(db);
    test_broken(db);
    test_down();

    avc_db_free(db);
    avc_loop_free(loop);
    tpg_destroy(&pg);
    return tap_done();
}
