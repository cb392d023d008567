/*
 * avatarctl migrate: bring the database schema up to date from sql/.
 */
#include "ctl.h"

#include <avatarcore/migrate.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static int ctl_migrate_run(int argc, char **argv);

const ctl_cmd_t ctl_cmd_migrate = {
    "migrate", "[--database URL] [--dir DIR]",
    "apply the missing schema migrations (sql/NNN_name.sql)",
    "Options:\n"
    "  -d, --database URL  the database (default: $DATABASE_URL, then\n"
    "                      $AVATAR_DATABASE)\n"
    "      --dir DIR       the migrations (default: $AVATAR_SQL_DIR, then\n"
    "                      ./sql)\n"
    "  -h, --help          this help\n"
    "\n"
    "Each missing file is applied in its own transaction and recorded in\n"
    "schema_migrations; a failing file leaves nothing behind.  Running it\n"
    "again is a no-op, and concurrent runs are serialised by an advisory\n"
    "lock.  A database whose schema is newer than the newest file here is\n"
    "refused (exit status 4).\n",
    ctl_migrate_run
};

static void
ctl_migrate_done(int err, int version, unsigned applied, const char *msg,
    void *data)
{
    ctl_env_t *env = data;

    env->done = 1;
    env->rc = ctl_exit_code(err);
    if (err != AVC_OK) {
        ctl_err("migrate failed: %s", msg);
        return;
    }
    if (applied == 0) {
        printf("schema is up to date (version %d)\n", version);
    } else {
        printf("schema is at version %d (%u migration%s applied)\n", version,
               applied, applied == 1 ? "" : "s");
    }
}

static int
ctl_migrate_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "database", required_argument, NULL, 'd' },
        { "dir", required_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *database = NULL, *dir = NULL;
    ctl_env_t env;
    int c, rc;

    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            database = optarg;
            break;
        case 'D':
            dir = optarg;
            break;
        case 'h':
            return ctl_help(&ctl_cmd_migrate);
        default:
            return ctl_bad_option(&ctl_cmd_migrate, c, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(&ctl_cmd_migrate, "unexpected argument");
    }
    if (dir == NULL) {
        dir = getenv("AVATAR_SQL_DIR");
        if (dir == NULL || *dir == '\0') {
            dir = "sql";
        }
    }
    rc = ctl_env_open(&env, ctl_database(database));
    if (rc != CTL_OK) {
        return rc;
    }
    rc = avc_migrate(env.db, dir, ctl_migrate_done, &env);
    if (rc != AVC_OK) {
        ctl_err("cannot start: %s", avc_strerror(rc));
        ctl_env_close(&env);
        return CTL_EFAIL;
    }
    rc = ctl_env_run(&env);
    ctl_env_close(&env);
    return rc;
}
