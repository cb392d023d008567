/*
 * avatarctl - operate an Avatar Adam installation from the command line.
 *
 *   avatarctl [-v|-q] <command> [options]
 *
 * The command table below is the whole dispatch: add a ctl_cmd_t in its
 * own file and a line here.
 */
#include "ctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ctl_cmd_version_run(int argc, char **argv);
static int ctl_cmd_help_run(int argc, char **argv);

static const ctl_cmd_t ctl_cmd_version = {
    "version", "",
    "print the versions of avatarctl and libavatarcore",
    "",
    ctl_cmd_version_run
};

static const ctl_cmd_t ctl_cmd_help = {
    "help", "[COMMAND]",
    "list the commands, or show the help of one",
    "",
    ctl_cmd_help_run
};

static const ctl_cmd_t *const ctl_cmds[] = {
    &ctl_cmd_migrate,
    &ctl_cmd_bootstrap_admin,
    &ctl_cmd_user,
    &ctl_cmd_dealership,
    &ctl_cmd_eval,
    &ctl_cmd_ingest_worker,
    &ctl_cmd_reembed,
    &ctl_cmd_stt,
    &ctl_cmd_version,
    &ctl_cmd_help,
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

static avc_log_level_t ctl_log_level = AVC_LOG_NOTICE;

void
ctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("avatarctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* may run on a pool thread: one fprintf per line keeps lines whole */
static void
ctl_log(void *data, avc_log_level_t level, const char *msg)
{
    const char *tag = level <= AVC_LOG_ERR ? "error: "
                      : level == AVC_LOG_WARN ? "warning: " : "";

    fprintf(stderr, "avatarctl: %s%s\n", tag, msg);
}

int
ctl_usage(const ctl_cmd_t *cmd, const char *why)
{
    if (why) {
        ctl_err("%s", why);
    }
    if (cmd) {
        fprintf(stderr, "usage: avatarctl %s %s\n"
                "Try 'avatarctl %s --help'.\n", cmd->name, cmd->synopsis,
                cmd->name);
    } else {
        fprintf(stderr, "usage: avatarctl [-v|-q] COMMAND [OPTIONS]\n"
                "Try 'avatarctl --help'.\n");
    }
    return CTL_EUSAGE;
}

int
ctl_bad_option(const ctl_cmd_t *cmd, int c, char **argv)
{
    char opt[3] = { '-', (char) optopt, '\0' };
    const char *arg = argv[optind - 1];
    /* long options are named by argv; short ones may be in a cluster */
    const char *name = strncmp(arg, "--", 2) == 0 || optopt == 0 ? arg : opt;

    if (c == ':') {
        ctl_err("option '%s' needs a value", name);
    } else {
        ctl_err("unknown option '%s'", name);
    }
    return ctl_usage(cmd, NULL);
}

int
ctl_help(const ctl_cmd_t *cmd)
{
    printf("usage: avatarctl %s %s\n\n%s.\n", cmd->name, cmd->synopsis,
           cmd->summary);
    if (cmd->help[0]) {
        printf("\n%s", cmd->help);
    }
    return CTL_OK;
}

static int
ctl_main_help(void)
{
    size_t i;

    printf("usage: avatarctl [-v|-q] COMMAND [OPTIONS]\n\n"
           "Operate an Avatar Adam installation.\n\nCommands:\n");
    for (i = 0; i < CTL_NCMDS; i++) {
        printf("  %-16s %s\n", ctl_cmds[i]->name, ctl_cmds[i]->summary);
    }
    printf("\nGlobal options:\n"
           "  -v, --verbose    also print the library's debug messages\n"
           "  -q, --quiet      print only warnings and errors\n"
           "  -h, --help       this help; 'avatarctl COMMAND --help' for "
           "a command\n"
           "  -V, --version    same as 'avatarctl version'\n"
           "\nThe database is named by --database, else the environment\n"
           "variable DATABASE_URL, else AVATAR_DATABASE: a libpq connection\n"
           "string or URI (postgresql://user@host:port/dbname).\n"
           "\nExit status: 0 success, 1 failure, 2 bad command line,\n"
           "3 database unreachable, 4 database schema newer than this "
           "build.\n");
    return CTL_OK;
}

const char *
ctl_database(const char *opt)
{
    const char *s;

    if (opt && *opt) {
        return opt;
    }
    s = getenv("DATABASE_URL");
    if (s && *s) {
        return s;
    }
    s = getenv("AVATAR_DATABASE");
    return s && *s ? s : NULL;
}

avc_config_t *
ctl_rag_config(void)
{
    avc_config_t *cfg;
    const char *v;

    /* the embedder of the nginx workers, from the same variables */
    cfg = avc_config_new();
    if (cfg == NULL) {
        return NULL;
    }
    v = getenv("AVATAR_EMBEDDINGS");
    if (v && strcmp(v, "openai") == 0) {
        avc_config_set(cfg, "embeddings.provider", "openai");
        avc_config_set(cfg, "embeddings.key", getenv("OPENAI_API_KEY"));
        if (getenv("OPENAI_BASE_URL")) {
            avc_config_set(cfg, "embeddings.base_url",
                           getenv("OPENAI_BASE_URL"));
        }
        if (getenv("EMBEDDING_MODEL")) {
            avc_config_set(cfg, "embeddings.model", getenv("EMBEDDING_MODEL"));
        }
    }
    /* the vector store of the nginx workers, from the same variables */
    if (getenv("PINECONE_API_KEY")
        && (getenv("PINECONE_HOST") || getenv("PINECONE_INDEX_NAME")))
    {
        avc_config_set(cfg, "vector_store.provider", "pinecone");
        avc_config_set(cfg, "vector_store.key", getenv("PINECONE_API_KEY"));
        if (getenv("PINECONE_HOST")) {
            avc_config_set(cfg, "vector_store.host", getenv("PINECONE_HOST"));
        }
        if (getenv("PINECONE_INDEX_NAME")) {
            avc_config_set(cfg, "vector_store.index",
                           getenv("PINECONE_INDEX_NAME"));
        }
    }
    return cfg;
}

int
ctl_exit_code(int err)
{
    switch (err) {
    case AVC_OK:
        return CTL_OK;
    case AVC_EDBCONN:
        return CTL_EDBCONN;
    case AVC_EVERSION:
        return CTL_EVERSION;
    default:
        return CTL_EFAIL;
    }
}

int
ctl_env_open(ctl_env_t *env, const char *database)
{
    char *why;

    memset(env, 0, sizeof(*env));
    if (database == NULL) {
        return ctl_usage(NULL, "no database: pass --database or set "
                               "DATABASE_URL");
    }
    why = avc_db_conninfo_check(database);
    if (why) {
        /* the message of libpq never repeats the string (a password) */
        ctl_err("bad database connection string: %s", why);
        free(why);
        return CTL_EUSAGE;
    }
    env->loop = avc_loop_new(2);
    if (env->loop == NULL) {
        ctl_err("cannot create the event loop");
        return CTL_EFAIL;
    }
    env->db = avc_db_new(env->loop, database, 1, 0);
    if (env->db == NULL) {
        ctl_err("cannot create the database pool");
        avc_loop_free(env->loop);
        env->loop = NULL;
        return CTL_EFAIL;
    }
    return CTL_OK;
}

int
ctl_env_run(ctl_env_t *env)
{
    /* the pool watches its idle connection, so avc_loop_run would not
     * return by itself: turn until the command says it is done */
    while (!env->done) {
        if (avc_loop_run_once(env->loop, -1) < 0) {
            ctl_err("event loop failed");
            return CTL_EFAIL;
        }
    }
    return env->rc;
}

void
ctl_env_close(ctl_env_t *env)
{
    avc_db_free(env->db);
    avc_loop_free(env->loop);
    env->db = NULL;
    env->loop = NULL;
}

static const ctl_cmd_t *
ctl_find(const char *name)
{
    size_t i;

    for (i = 0; i < CTL_NCMDS; i++) {
        if (strcmp(ctl_cmds[i]->name, name) == 0) {
            return ctl_cmds[i];
        }
    }
    return NULL;
}

static int
ctl_cmd_version_run(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            return ctl_help(&ctl_cmd_version);
        }
        return ctl_usage(&ctl_cmd_version, "version takes no arguments");
    }
    printf("avatarctl %s (libavatarcore %s)\n", AVC_VERSION_STRING,
           avc_version());
    return CTL_OK;
}

static int
ctl_cmd_help_run(int argc, char **argv)
{
    const ctl_cmd_t *cmd;

    if (argc < 2) {
        return ctl_main_help();
    }
    cmd = ctl_find(argv[1]);
    if (cmd == NULL) {
        ctl_err("unknown command '%s'", argv[1]);
        return ctl_usage(NULL, NULL);
    }
    return ctl_help(cmd);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    const ctl_cmd_t *cmd;
    int c;

    opterr = 0;
    /* "+": stop at the command name; its options are its own */
    while ((c = getopt_long(argc, argv, "+:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            ctl_log_level = AVC_LOG_DEBUG;
            break;
        case 'q':
            ctl_log_level = AVC_LOG_WARN;
            break;
        case 'h':
            return ctl_main_help();
        case 'V':
            return ctl_cmd_version_run(1, argv);
        default:
            return ctl_bad_option(NULL, c, argv);
        }
    }
    if (optind >= argc) {
        return ctl_usage(NULL, "no command given");
    }
    cmd = ctl_find(argv[optind]);
    if (cmd == NULL) {
        ctl_err("unknown command '%s'", argv[optind]);
        return ctl_usage(NULL, NULL);
    }
    avc_log_set(ctl_log, NULL, ctl_log_level);
    argv += optind;
    argc -= optind;
    optind = 1;                 /* commands parse their own argv afresh */
    opterr = 0;
    return cmd->run(argc, argv);
}

/* a plausible address: one '@' inside, a dot after it, no blanks */
int
ctl_email_ok(const char *e)
{
    const char *at = strchr(e, '@');
    size_t n = strlen(e);
    const unsigned char *p;

    if (n < 3 || n > 254 || at == NULL || at == e || at[1] == '\0'
        || strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL)
    {
        return 0;
    }
    for (p = (const unsigned char *) e; *p; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* 1-max characters (UTF-8), not only blanks */
int
ctl_text_ok(const char *s, size_t max)
{
    size_t chars = 0;
    int blank = 1;

    for ( ; *s; s++) {
        chars += ((unsigned char) *s & 0xc0) != 0x80;
        blank &= *s == ' ' || *s == '\t';
    }
    return chars >= 1 && chars <= max && !blank;
}
