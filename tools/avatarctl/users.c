/*
 * avatarctl user ... and avatarctl dealership ...: accounts and tenants
 * from the command line, for operators (no token needed: whoever can reach
 * the database is already trusted with it).
 *
 *   user create --email E --first-name F --last-name L --role R
 *               [--dealership ID] [--password P]
 *   user list [--dealership ID]
 *   user passwd --email E [--password P]
 *   user deactivate --email E
 *   dealership create --name N [--address A] [--contact-email E]
 *                     [--contact-phone P]
 *   dealership list
 *
 * Each runs one statement (after hashing on the thread pool, for the
 * commands that take a password) on the built-in loop.
 */
#include "ctl.h"

#include <avatarcore/auth.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_USERS_GENERATED_LEN 20
#define CTL_USERS_MAXP          8

static int ctl_user_run(int argc, char **argv);
static int ctl_dealership_run(int argc, char **argv);

const ctl_cmd_t ctl_cmd_user = {
    "user", "create|list|passwd|deactivate [OPTIONS]",
    "create, list, deactivate accounts and set their passwords",
    "Subcommands:\n"
    "  create --email E --first-name F --last-name L --role ROLE\n"
    "         [--dealership ID] [--password PW]\n"
    "      ROLE is user, dealership_admin or super_admin.  The account is\n"
    "      active and verified.  Without --password (or the environment\n"
    "      variable AVATAR_USER_PASSWORD), a strong password is generated\n"
    "      and printed once.\n"
    "  list [--dealership ID]\n"
    "      id, e-mail, role, active flag, dealership and name, newest "
    "first.\n"
    "  passwd --email E [--password PW]\n"
    "      set a new password (generated when not given, as for create);\n"
    "      the account's sessions end: access tokens issued before are\n"
    "      refused and its refresh tokens are revoked; a lock-out after\n"
    "      failed logins is lifted.\n"
    "  deactivate --email E\n"
    "      the account can no longer log in or use its tokens.\n"
    "\n"
    "Every subcommand takes -d, --database URL (default: $DATABASE_URL,\n"
    "then $AVATAR_DATABASE).  E-mail addresses are compared without case.\n"
    "Passwords: 8-100 characters, at most 72 bytes, with an upper-case\n"
    "letter, a lower-case letter, a digit and a special character.\n",
    ctl_user_run
};

const ctl_cmd_t ctl_cmd_dealership = {
    "dealership", "create|list [OPTIONS]",
    "create and list dealerships",
    "Subcommands:\n"
    "  create --name N [--address A] [--contact-email E] "
    "[--contact-phone P]\n"
    "      names are unique without regard to case.\n"
    "  list\n"
    "      id, name, active flag, users, contact.\n"
    "\n"
    "Every subcommand takes -d, --database URL (default: $DATABASE_URL,\n"
    "then $AVATAR_DATABASE).\n",
    ctl_dealership_run
};

/* one command's state: a statement, its parameters, what to print */
typedef struct ctl_users_s ctl_users_t;

struct ctl_users_s {
    ctl_env_t env;
    const char *what;           /* "create the user", for errors */
    const char *sql;
    const char *params[CTL_USERS_MAXP];
    int nparams;
    int hash_param;             /* index of the hash parameter, or -1 */
    void (*print)(ctl_users_t *u, avc_db_res_t *res);
    const char *email;
    const char *name;
    char password[AVC_PASSWORD_MAX_BYTES + 1];
    int generated;
    char *hash;
    int hash_err;
};

static void
ctl_users_finish(ctl_users_t *u, int rc)
{
    u->env.done = 1;
    u->env.rc = rc;
}

static void
ctl_users_done(int err, avc_db_res_t *res, void *data)
{
    ctl_users_t *u = data;
    const char *state;

    if (err == AVC_OK) {
        u->print(u, res);
        return;
    }
    if (err == AVC_EDB) {
        state = avc_db_res_sqlstate(res);
        if (strcmp(state, "42P01") == 0) {
            ctl_err("cannot %s: the schema is missing; run 'avatarctl "
                    "migrate' first", u->what);
        } else if (strcmp(state, "23505") == 0 && u->email) {
            ctl_err("cannot %s: a user with e-mail %s exists", u->what,
                    u->email);
        } else if (strcmp(state, "23505") == 0 && u->name) {
            ctl_err("cannot %s: a dealership named \"%s\" exists "
                    "(names are compared without case)", u->what, u->name);
        } else if (strcmp(state, "23503") == 0) {
            ctl_err("cannot %s: no such dealership", u->what);
        } else {
            ctl_err("cannot %s: %s (SQLSTATE %s)", u->what,
                    avc_db_res_error(res), state);
        }
        ctl_users_finish(u, CTL_EFAIL);
        return;
    }
    if (err == AVC_EDBCONN && avc_db_last_error(u->env.db)[0]) {
        ctl_err("cannot %s: database unavailable: %s", u->what,
                avc_db_last_error(u->env.db));
    } else {
        ctl_err("cannot %s: %s", u->what, avc_strerror(err));
    }
    ctl_users_finish(u, ctl_exit_code(err));
}

static void
ctl_users_query(ctl_users_t *u)
{
    if (avc_db_query(u->env.db, u->sql, 0, u->nparams, u->params, 0,
                     ctl_users_done, u) == NULL)
    {
        ctl_err("cannot %s: out of memory", u->what);
        ctl_users_finish(u, CTL_EFAIL);
    }
}

/* on the thread pool: touches only the password and the hash */
static void
ctl_users_hash_work(void *data)
{
    ctl_users_t *u = data;

    u->hash_err = avc_password_hash(u->password, &u->hash);
}

static void
ctl_users_hashed(void *data, int status)
{
    ctl_users_t *u = data;

    if (status != AVC_OK || u->hash_err != AVC_OK) {
        ctl_err("cannot hash the password: %s",
                avc_strerror(status != AVC_OK ? status : u->hash_err));
        ctl_users_finish(u, CTL_EFAIL);
        return;
    }
    u->params[u->hash_param] = u->hash;
    ctl_users_query(u);
}

/*
 * Open the database, hash the password first when the statement takes
 * one, run the statement, print.  Returns the exit code.
 */
static int
ctl_users_exec(ctl_users_t *u, const char *database)
{
    int rc;

    rc = ctl_env_open(&u->env, ctl_database(database));
    if (rc != CTL_OK) {
        return rc;
    }
    if (u->hash_param >= 0) {
        rc = avc_offload(u->env.loop, ctl_users_hash_work, ctl_users_hashed,
                         u);
        if (rc != AVC_OK) {
            ctl_err("cannot hash the password: %s", avc_strerror(rc));
            ctl_env_close(&u->env);
            return CTL_EFAIL;
        }
    } else {
        ctl_users_query(u);
    }
    rc = ctl_env_run(&u->env);
    ctl_env_close(&u->env);
    return rc;
}

static void
ctl_users_clear(ctl_users_t *u)
{
    explicit_bzero(u->password, sizeof(u->password));
    if (u->hash) {
        explicit_bzero(u->hash, strlen(u->hash));
        free(u->hash);
        u->hash = NULL;
    }
}

/* --password, else the environment, else a generated one */
static int
ctl_users_password(ctl_users_t *u, const char *given)
{
    const char *why;

    if (given == NULL) {
        given = getenv("AVATAR_USER_PASSWORD");
        if (given && *given == '\0') {
            given = NULL;
        }
    }
    if (given) {
        if (avc_password_policy(given, &why) != AVC_OK) {
            ctl_err("the password is refused: %s", why);
            return CTL_EUSAGE;
        }
        snprintf(u->password, sizeof(u->password), "%s", given);
        return CTL_OK;
    }
    if (avc_password_generate(u->password, CTL_USERS_GENERATED_LEN)
        != AVC_OK)
    {
        ctl_err("cannot generate a password");
        return CTL_EFAIL;
    }
    u->generated = 1;
    return CTL_OK;
}

static void
ctl_users_print_password(ctl_users_t *u)
{
    if (u->generated) {
        printf("password: %s\n(shown only now: store it safely)\n",
               u->password);
    }
}

static int
ctl_users_id_ok(const char *s)
{
    size_t n = strlen(s);

    return n >= 1 && n <= 18 && strspn(s, "0123456789") == n;
}

/* user create */

static void
ctl_user_created(ctl_users_t *u, avc_db_res_t *res)
{
    printf("created %s %s (id %s)\n", avc_db_res_value(res, 0, 1), u->email,
           avc_db_res_value(res, 0, 0));
    ctl_users_print_password(u);
    ctl_users_finish(u, CTL_OK);
}

static int
ctl_user_create(const ctl_cmd_t *cmd, ctl_users_t *u, int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", required_argument, NULL, 'e' },
        { "first-name", required_argument, NULL, 'F' },
        { "last-name", required_argument, NULL, 'L' },
        { "role", required_argument, NULL, 'r' },
        { "dealership", required_argument, NULL, 'D' },
        { "password", required_argument, NULL, 'p' },
        { "database", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *first = NULL, *last = NULL, *role = NULL, *dealership = NULL;
    const char *password = NULL, *database = NULL;
    int c, rc;

    while ((c = getopt_long(argc, argv, ":e:p:d:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': u->email = optarg; break;
        case 'F': first = optarg; break;
        case 'L': last = optarg; break;
        case 'r': role = optarg; break;
        case 'D': dealership = optarg; break;
        case 'p': password = optarg; break;
        case 'd': database = optarg; break;
        case 'h': return ctl_help(cmd);
        default: return ctl_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(cmd, "unexpected argument");
    }
    if (u->email == NULL || first == NULL || last == NULL || role == NULL) {
        return ctl_usage(cmd, "user create needs --email, --first-name, "
                              "--last-name and --role");
    }
    if (!ctl_email_ok(u->email)) {
        return ctl_usage(cmd, "--email is not a valid e-mail address");
    }
    if (!ctl_text_ok(first, 100) || !ctl_text_ok(last, 100)) {
        return ctl_usage(cmd, "names must be 1-100 characters");
    }
    if (strcmp(role, "user") != 0 && strcmp(role, "dealership_admin") != 0
        && strcmp(role, "super_admin") != 0)
    {
        return ctl_usage(cmd, "--role must be user, dealership_admin or "
                              "super_admin");
    }
    if (dealership && !ctl_users_id_ok(dealership)) {
        return ctl_usage(cmd, "--dealership must be a dealership id");
    }
    rc = ctl_users_password(u, password);
    if (rc != CTL_OK) {
        return rc;
    }
    u->what = "create the user";
    u->sql = "INSERT INTO users (email, password_hash, first_name,"
             " last_name, role, dealership_id, is_active, is_verified)"
             " VALUES ($1, $2, $3, $4, $5, $6::bigint, true, true)"
             " RETURNING id, role";
    u->params[0] = u->email;
    u->hash_param = 1;
    u->params[2] = first;
    u->params[3] = last;
    u->params[4] = role;
    u->params[5] = dealership;
    u->nparams = 6;
    u->print = ctl_user_created;
    return ctl_users_exec(u, database);
}

/* user list */

static void
ctl_user_listed(ctl_users_t *u, avc_db_res_t *res)
{
    int i, n = avc_db_res_rows(res);

    printf("%-6s %-32s %-16s %-6s %-10s %s\n", "ID", "EMAIL", "ROLE",
           "ACTIVE", "DEALERSHIP", "NAME");
    for (i = 0; i < n; i++) {
        printf("%-6s %-32s %-16s %-6s %-10s %s\n",
               avc_db_res_value(res, i, 0), avc_db_res_value(res, i, 1),
               avc_db_res_value(res, i, 2),
               strcmp(avc_db_res_value(res, i, 3), "t") == 0 ? "yes" : "no",
               avc_db_res_isnull(res, i, 4) ? "-"
                                            : avc_db_res_value(res, i, 4),
               avc_db_res_value(res, i, 5));
    }
    ctl_users_finish(u, CTL_OK);
}

static int
ctl_user_list(const ctl_cmd_t *cmd, ctl_users_t *u, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dealership", required_argument, NULL, 'D' },
        { "database", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *dealership = NULL, *database = NULL;
    int c;

    while ((c = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': dealership = optarg; break;
        case 'd': database = optarg; break;
        case 'h': return ctl_help(cmd);
        default: return ctl_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(cmd, "unexpected argument");
    }
    if (dealership && !ctl_users_id_ok(dealership)) {
        return ctl_usage(cmd, "--dealership must be a dealership id");
    }
    u->what = "list the users";
    u->sql = "SELECT id, email, role, is_active, dealership_id,"
             " first_name || ' ' || last_name FROM users"
             " WHERE $1::bigint IS NULL OR dealership_id = $1"
             " ORDER BY created_at DESC, id DESC";
    u->params[0] = dealership;
    u->nparams = 1;
    u->print = ctl_user_listed;
    return ctl_users_exec(u, database);
}

/* user passwd, user deactivate */

static void
ctl_user_changed(ctl_users_t *u, avc_db_res_t *res)
{
    if (avc_db_res_rows(res) == 0) {
        ctl_err("no user with e-mail %s", u->email);
        ctl_users_finish(u, CTL_EFAIL);
        return;
    }
    if (u->hash_param >= 0) {
        printf("password of %s (id %s) changed; %s session%s ended\n",
               u->email, avc_db_res_value(res, 0, 0),
               avc_db_res_value(res, 0, 1),
               strcmp(avc_db_res_value(res, 0, 1), "1") == 0 ? "" : "s");
        ctl_users_print_password(u);
    } else {
        printf("deactivated %s (id %s); %s session%s ended\n", u->email,
               avc_db_res_value(res, 0, 0), avc_db_res_value(res, 0, 1),
               strcmp(avc_db_res_value(res, 0, 1), "1") == 0 ? "" : "s");
    }
    ctl_users_finish(u, CTL_OK);
}

static int
ctl_user_change(const ctl_cmd_t *cmd, ctl_users_t *u, int argc, char **argv,
    int passwd)
{
    static const struct option opts[] = {
        { "email", required_argument, NULL, 'e' },
        { "password", required_argument, NULL, 'p' },
        { "database", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *password = NULL, *database = NULL;
    int c, rc;

    while ((c = getopt_long(argc, argv, ":e:p:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': u->email = optarg; break;
        case 'p':
            if (!passwd) {
                return ctl_bad_option(cmd, '?', argv);
            }
            password = optarg;
            break;
        case 'd': database = optarg; break;
        case 'h': return ctl_help(cmd);
        default: return ctl_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(cmd, "unexpected argument");
    }
    if (u->email == NULL) {
        return ctl_usage(cmd, "--email is required");
    }
    u->params[0] = u->email;
    u->print = ctl_user_changed;
    if (!passwd) {
        u->what = "deactivate the user";
        u->sql = "WITH n AS (UPDATE users SET is_active = false"
                 " WHERE lower(email) = lower($1) RETURNING id),"
                 " r AS (UPDATE refresh_tokens SET revoked_at = now()"
                 " WHERE user_id IN (SELECT id FROM n)"
                 " AND revoked_at IS NULL RETURNING 1)"
                 " SELECT id, (SELECT count(*) FROM r) FROM n";
        u->nparams = 1;
        return ctl_users_exec(u, database);
    }
    rc = ctl_users_password(u, password);
    if (rc != CTL_OK) {
        return rc;
    }
    u->what = "change the password";
    u->sql = "WITH n AS (UPDATE users SET password_hash = $2,"
             " password_changed_at = now(), failed_logins = 0,"
             " locked_until = NULL"
             " WHERE lower(email) = lower($1) RETURNING id),"
             " r AS (UPDATE refresh_tokens SET revoked_at = now()"
             " WHERE user_id IN (SELECT id FROM n)"
             " AND revoked_at IS NULL RETURNING 1)"
             " SELECT id, (SELECT count(*) FROM r) FROM n";
    u->hash_param = 1;
    u->nparams = 2;
    return ctl_users_exec(u, database);
}

static int
ctl_user_run(int argc, char **argv)
{
    const ctl_cmd_t *cmd = &ctl_cmd_user;
    ctl_users_t u;
    const char *sub;
    int rc;

    if (argc < 2) {
        return ctl_usage(cmd, "no subcommand given");
    }
    sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0
        || strcmp(sub, "help") == 0)
    {
        return ctl_help(cmd);
    }
    memset(&u, 0, sizeof(u));
    u.hash_param = -1;
    argc--;
    argv++;
    optind = 1;
    if (strcmp(sub, "create") == 0) {
        rc = ctl_user_create(cmd, &u, argc, argv);
    } else if (strcmp(sub, "list") == 0) {
        rc = ctl_user_list(cmd, &u, argc, argv);
    } else if (strcmp(sub, "passwd") == 0) {
        rc = ctl_user_change(cmd, &u, argc, argv, 1);
    } else if (strcmp(sub, "deactivate") == 0) {
        rc = ctl_user_change(cmd, &u, argc, argv, 0);
    } else {
        ctl_err("unknown subcommand 'user %s'", sub);
        rc = ctl_usage(cmd, NULL);
    }
    ctl_users_clear(&u);
    return rc;
}

/* dealership create, dealership list */

static void
ctl_dealership_created(ctl_users_t *u, avc_db_res_t *res)
{
    printf("created dealership \"%s\" (id %s)\n", u->name,
           avc_db_res_value(res, 0, 0));
    ctl_users_finish(u, CTL_OK);
}

static void
ctl_dealership_listed(ctl_users_t *u, avc_db_res_t *res)
{
    int i, n = avc_db_res_rows(res);

    printf("%-6s %-32s %-6s %-6s %s\n", "ID", "NAME", "ACTIVE", "USERS",
           "CONTACT");
    for (i = 0; i < n; i++) {
        printf("%-6s %-32s %-6s %-6s %s\n", avc_db_res_value(res, i, 0),
               avc_db_res_value(res, i, 1),
               strcmp(avc_db_res_value(res, i, 2), "t") == 0 ? "yes" : "no",
               avc_db_res_value(res, i, 3),
               avc_db_res_isnull(res, i, 4) ? "-"
                                            : avc_db_res_value(res, i, 4));
    }
    ctl_users_finish(u, CTL_OK);
}

static int
ctl_dealership_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "address", required_argument, NULL, 'a' },
        { "contact-email", required_argument, NULL, 'E' },
        { "contact-phone", required_argument, NULL, 'P' },
        { "database", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const ctl_cmd_t *cmd = &ctl_cmd_dealership;
    const char *sub, *address = NULL, *email = NULL, *phone = NULL;
    const char *database = NULL;
    ctl_users_t u;
    int c, create;

    if (argc < 2) {
        return ctl_usage(cmd, "no subcommand given");
    }
    sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0
        || strcmp(sub, "help") == 0)
    {
        return ctl_help(cmd);
    }
    create = strcmp(sub, "create") == 0;
    if (!create && strcmp(sub, "list") != 0) {
        ctl_err("unknown subcommand 'dealership %s'", sub);
        return ctl_usage(cmd, NULL);
    }
    memset(&u, 0, sizeof(u));
    u.hash_param = -1;
    argc--;
    argv++;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":n:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': u.name = optarg; break;
        case 'a': address = optarg; break;
        case 'E': email = optarg; break;
        case 'P': phone = optarg; break;
        case 'd': database = optarg; break;
        case 'h': return ctl_help(cmd);
        default: return ctl_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(cmd, "unexpected argument");
    }
    if (!create) {
        if (u.name || address || email || phone) {
            return ctl_usage(cmd, "dealership list takes only --database");
        }
        u.what = "list the dealerships";
        u.sql = "SELECT d.id, d.name, d.is_active,"
                " (SELECT count(*) FROM users u"
                " WHERE u.dealership_id = d.id),"
                " concat_ws(', ', d.contact_email, d.contact_phone)"
                " FROM dealerships d ORDER BY d.id";
        u.print = ctl_dealership_listed;
        return ctl_users_exec(&u, database);
    }
    if (u.name == NULL) {
        return ctl_usage(cmd, "dealership create needs --name");
    }
    if (!ctl_text_ok(u.name, 255)) {
        return ctl_usage(cmd, "--name must be 1-255 characters");
    }
    if ((address && strlen(address) > 1000) || (phone && strlen(phone) > 64)
        || (email && !ctl_email_ok(email)))
    {
        return ctl_usage(cmd, "--address is at most 1000 bytes, "
                              "--contact-phone at most 64, "
                              "--contact-email an e-mail address");
    }
    u.what = "create the dealership";
    u.sql = "INSERT INTO dealerships (name, address, contact_email,"
            " contact_phone) VALUES ($1, $2, $3, $4) RETURNING id";
    u.params[0] = u.name;
    u.params[1] = address;
    u.params[2] = email;
    u.params[3] = phone;
    u.nparams = 4;
    u.print = ctl_dealership_created;
    return ctl_users_exec(&u, database);
}
