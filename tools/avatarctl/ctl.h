/*
 * avatarctl: the command framework shared by the command files.
 *
 * A command is a ctl_cmd_t in the table of main.c.  Its run() gets argv
 * with argv[0] = the command's name and returns an exit code (CTL_*).
 * Commands print their results on stdout and errors on stderr through
 * ctl_err(); the library's log lines go to stderr too.
 *
 * Commands that talk to PostgreSQL open a ctl_env_t: the built-in loop and
 * a pool on it, then chain asynchronous calls and set env.done (and
 * env.rc) in the last callback; ctl_env_run() turns the loop until then.
 */
#ifndef AVATARCTL_CTL_H
#define AVATARCTL_CTL_H

#include <avatarcore/core.h>
#include <avatarcore/db.h>
#include <avatarcore/loop.h>

/* exit codes, documented in avatarctl --help */
#define CTL_OK        0
#define CTL_EFAIL     1     /* the operation failed */
#define CTL_EUSAGE    2     /* bad command line */
#define CTL_EDBCONN   3     /* database unreachable */
#define CTL_EVERSION  4     /* database schema newer than this build */

typedef struct {
    const char *name;
    const char *synopsis;       /* the arguments, after the name */
    const char *summary;        /* one line */
    const char *help;           /* options and details */
    int (*run)(int argc, char **argv);
} ctl_cmd_t;

typedef struct {
    avc_loop_t *loop;
    avc_db_t *db;
    int done;
    int rc;
} ctl_env_t;

extern const ctl_cmd_t ctl_cmd_migrate;
extern const ctl_cmd_t ctl_cmd_bootstrap_admin;
extern const ctl_cmd_t ctl_cmd_user;
extern const ctl_cmd_t ctl_cmd_dealership;
extern const ctl_cmd_t ctl_cmd_eval;
extern const ctl_cmd_t ctl_cmd_ingest_worker;
extern const ctl_cmd_t ctl_cmd_reembed;
extern const ctl_cmd_t ctl_cmd_stt;

/* "avatarctl: <message>" on stderr */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "usage: ..." and a pointer to --help on stderr; CTL_EUSAGE. */
int ctl_usage(const ctl_cmd_t *cmd, const char *why);

/*
 * For getopt_long() with an optstring starting with ':' that returned ':'
 * or '?': say which option was wrong; CTL_EUSAGE.
 */
int ctl_bad_option(const ctl_cmd_t *cmd, int c, char **argv);

/* Full help of a command on stdout; CTL_OK. */
int ctl_help(const ctl_cmd_t *cmd);

/* --database, else $DATABASE_URL, else $AVATAR_DATABASE; NULL if none. */
const char *ctl_database(const char *opt);

/* Checks of what an operator types: a plausible e-mail address (one '@'
 * inside, a dot after it, no blanks); 1-max characters of text that are
 * not all blanks. */
int ctl_email_ok(const char *e);
int ctl_text_ok(const char *s, size_t max);

/*
 * The embedder and vector store of the nginx workers, from the same
 * environment variables: AVATAR_EMBEDDINGS=openai (OPENAI_API_KEY,
 * OPENAI_BASE_URL, EMBEDDING_MODEL), else local; PINECONE_API_KEY with
 * PINECONE_HOST or PINECONE_INDEX_NAME.  NULL when out of memory.
 */
avc_config_t *ctl_rag_config(void);

/* The exit code for a library error. */
int ctl_exit_code(int err);

/* Make the loop and the pool; CTL_OK or an exit code (error printed). */
int ctl_env_open(ctl_env_t *env, const char *database);
/* Turn the loop until env->done; returns env->rc. */
int ctl_env_run(ctl_env_t *env);
void ctl_env_close(ctl_env_t *env);

#endif /* AVATARCTL_CTL_H */
