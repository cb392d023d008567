/*
 * avatarctl bootstrap-admin: create the first super admin.
 *
 * Idempotent: when a user with the e-mail address exists (compared
 * without case), nothing changes and the exit status is 0.  The chain:
 * look the address up, hash the password on the thread pool (bcrypt cost
 * 12 blocks for about 0.2 s), insert with ON CONFLICT DO NOTHING so that
 * a concurrent creation is not an error.
 */
#include "ctl.h"

#include <avatarcore/auth.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_GENERATED_LEN 20

static int ctl_admin_run(int argc, char **argv);

const ctl_cmd_t ctl_cmd_bootstrap_admin = {
    "bootstrap-admin", "--email EMAIL [--password PASSWORD] "
    "[--first-name NAME] [--last-name NAME] [--database URL]",
    "create a super_admin unless that e-mail is taken",
    "Options:\n"
    "  -e, --email EMAIL      the account's e-mail address (required)\n"
    "  -p, --password PW      its password; prefer the environment variable\n"
    "                         AVATAR_ADMIN_PASSWORD, which other users of\n"
    "                         this machine cannot see.  Without either, a\n"
    "                         strong random password is generated and\n"
    "                         printed once.\n"
    "      --first-name NAME  default \"Platform\"\n"
    "      --last-name NAME   default \"Admin\"\n"
    "  -d, --database URL     the database (default: $DATABASE_URL, then\n"
    "                         $AVATAR_DATABASE)\n"
    "  -h, --help             this help\n"
    "\n"
    "Passwords: 8-100 characters, at most 72 bytes, with an upper-case\n"
    "letter, a lower-case letter, a digit and a special character.\n"
    "Run 'avatarctl migrate' first.\n",
    ctl_admin_run
};

typedef struct {
    ctl_env_t env;
    const char *email;
    const char *first;
    const char *last;
    char password[AVC_PASSWORD_MAX_BYTES + 1];
    int generated;
    char *hash;
    int hash_err;
} ctl_admin_t;

static void
ctl_admin_finish(ctl_admin_t *a, int rc)
{
    a->env.done = 1;
    a->env.rc = rc;
}

static void
ctl_admin_db_error(ctl_admin_t *a, const char *what, int err,
    avc_db_res_t *res)
{
    if (err == AVC_EDB && strcmp(avc_db_res_sqlstate(res), "42P01") == 0) {
        ctl_err("%s: the schema is missing; run 'avatarctl migrate' first",
                what);
        ctl_admin_finish(a, CTL_EFAIL);
        return;
    }
    if (err == AVC_EDB) {
        ctl_err("%s: %s (SQLSTATE %s)", what, avc_db_res_error(res),
                avc_db_res_sqlstate(res));
    } else if (err == AVC_EDBCONN && avc_db_last_error(a->env.db)[0]) {
        ctl_err("%s: database unavailable: %s", what,
                avc_db_last_error(a->env.db));
    } else {
        ctl_err("%s: %s", what, avc_strerror(err));
    }
    ctl_admin_finish(a, ctl_exit_code(err));
}

static void
ctl_admin_inserted(int err, avc_db_res_t *res, void *data)
{
    ctl_admin_t *a = data;

    if (err != AVC_OK) {
        ctl_admin_db_error(a, "cannot create the user", err, res);
        return;
    }
    if (avc_db_res_rows(res) == 0) {
        printf("a user with e-mail %s was created meanwhile; nothing "
               "changed\n", a->email);
        ctl_admin_finish(a, CTL_OK);
        return;
    }
    printf("created super_admin %s (id %s)\n", a->email,
           avc_db_res_value(res, 0, 0));
    if (a->generated) {
        printf("password: %s\n(shown only now: store it safely)\n",
               a->password);
    }
    ctl_admin_finish(a, CTL_OK);
}

static void
ctl_admin_hash_work(void *data)
{
    ctl_admin_t *a = data;

    a->hash_err = avc_password_hash(a->password, &a->hash);
}

static void
ctl_admin_hashed(void *data, int status)
{
    ctl_admin_t *a = data;
    const char *p[4];

    if (status != AVC_OK || a->hash_err != AVC_OK) {
        ctl_err("cannot hash the password: %s",
                avc_strerror(status != AVC_OK ? status : a->hash_err));
        ctl_admin_finish(a, CTL_EFAIL);
        return;
    }
    p[0] = a->email;
    p[1] = a->hash;
    p[2] = a->first;
    p[3] = a->last;
    if (avc_db_query(a->env.db,
                     "INSERT INTO users (email, password_hash, first_name, "
                     "last_name, role, is_active, is_verified) "
                     "VALUES ($1, $2, $3, $4, 'super_admin', true, true) "
                     "ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
                     0, 4, p, 0, ctl_admin_inserted, a) == NULL)
    {
        ctl_err("cannot create the user: out of memory");
        ctl_admin_finish(a, CTL_EFAIL);
    }
}

static void
ctl_admin_looked_up(int err, avc_db_res_t *res, void *data)
{
    ctl_admin_t *a = data;
    int rc;

    if (err != AVC_OK) {
        ctl_admin_db_error(a, "cannot look the user up", err, res);
        return;
    }
    if (avc_db_res_rows(res) > 0) {
        printf("a user with e-mail %s already exists (id %s, role %s); "
               "nothing changed\n", a->email, avc_db_res_value(res, 0, 0),
               avc_db_res_value(res, 0, 1));
        ctl_admin_finish(a, CTL_OK);
        return;
    }
    rc = avc_offload(a->env.loop, ctl_admin_hash_work, ctl_admin_hashed, a);
    if (rc != AVC_OK) {
        ctl_err("cannot hash the password: %s", avc_strerror(rc));
        ctl_admin_finish(a, CTL_EFAIL);
    }
}

static int
ctl_admin_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", required_argument, NULL, 'e' },
        { "password", required_argument, NULL, 'p' },
        { "first-name", required_argument, NULL, 'F' },
        { "last-name", required_argument, NULL, 'L' },
        { "database", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *database = NULL, *password = NULL, *why;
    const char *lookup = "SELECT id, role FROM users "
                         "WHERE lower(email) = lower($1)";
    ctl_admin_t a;
    int c, rc;

    memset(&a, 0, sizeof(a));
    a.first = "Platform";
    a.last = "Admin";
    while ((c = getopt_long(argc, argv, ":e:p:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            a.email = optarg;
            break;
        case 'p':
            password = optarg;
            break;
        case 'F':
            a.first = optarg;
            break;
        case 'L':
            a.last = optarg;
            break;
        case 'd':
            database = optarg;
            break;
        case 'h':
            return ctl_help(&ctl_cmd_bootstrap_admin);
        default:
            return ctl_bad_option(&ctl_cmd_bootstrap_admin, c, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(&ctl_cmd_bootstrap_admin, "unexpected argument");
    }
    if (a.email == NULL) {
        return ctl_usage(&ctl_cmd_bootstrap_admin, "--email is required");
    }
    if (!ctl_email_ok(a.email)) {
        return ctl_usage(&ctl_cmd_bootstrap_admin,
                         "--email is not a valid e-mail address");
    }
    if (!ctl_text_ok(a.first, 100) || !ctl_text_ok(a.last, 100)) {
        return ctl_usage(&ctl_cmd_bootstrap_admin,
                         "names must be 1-100 bytes");
    }
    if (password == NULL) {
        password = getenv("AVATAR_ADMIN_PASSWORD");
        if (password && *password == '\0') {
            password = NULL;
        }
    }
    if (password) {
        if (avc_password_policy(password, &why) != AVC_OK) {
            ctl_err("the password is refused: %s", why);
            return CTL_EUSAGE;
        }
        snprintf(a.password, sizeof(a.password), "%s", password);
    } else {
        if (avc_password_generate(a.password, CTL_GENERATED_LEN) != AVC_OK) {
            ctl_err("cannot generate a password");
            return CTL_EFAIL;
        }
        a.generated = 1;
    }

    rc = ctl_env_open(&a.env, ctl_database(database));
    if (rc == CTL_OK) {
        if (avc_db_query(a.env.db, lookup, 0, 1, &a.email, 0,
                         ctl_admin_looked_up, &a) == NULL)
        {
            ctl_err("out of memory");
            rc = CTL_EFAIL;
        } else {
            rc = ctl_env_run(&a.env);
        }
        ctl_env_close(&a.env);
    }
    explicit_bzero(a.password, sizeof(a.password));
    if (a.hash) {
        explicit_bzero(a.hash, strlen(a.hash));
        free(a.hash);
    }
    return rc;
}
