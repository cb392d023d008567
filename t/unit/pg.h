/*
 * A private PostgreSQL for one test binary: initdb into a fresh temporary
 * directory, start on a free loopback port with the unix socket in that
 * directory, stop and remove it at the end.
 *
 *   tpg_t pg;
 *   if (tpg_start(&pg) != 0) { ...skip... }
 *   ... pg.conninfo (unix socket), pg.conninfo_tcp (127.0.0.1) ...
 *   tpg_destroy(&pg);
 *
 * As root, initdb and pg_ctl run as the postgres user (runuser) and the
 * directory belongs to postgres.  Cleanup happens even when the test
 * crashes or is killed: a watchdog shell, started first, waits for EOF on
 * a pipe only this process holds, then stops the server (immediate mode)
 * and removes the directory.  Commands are run with fork/exec (no shell
 * quoting) and their output goes to DIR/cmd.log, kept out of the TAP
 * stream.
 */
#ifndef AVC_TEST_PG_H
#define AVC_TEST_PG_H

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pwd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#define TPG_BIN "/usr/lib/postgresql/15/bin"

typedef struct {
    char dir[64];               /* /tmp/avc-pg-XXXXXX */
    char data[96];
    char log[96];               /* the server's log */
    char cmdlog[96];            /* initdb and pg_ctl output */
    char conninfo[256];
    char conninfo_tcp[256];
    int port;
    int as_postgres;            /* running as root: commands as postgres */
    int running;
    int watch_fd;               /* write end: closed when we exit */
    pid_t watchdog;
} tpg_t;

/* fork/exec argv, output appended to log (or /dev/null); 0 on exit 0 */
static int
tpg_exec(const char *cwd, const char *log, char *const argv[])
{
    pid_t pid;
    int status, fd;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
        }
        fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)
                 : open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        closefrom(3);
        if (cwd == NULL || chdir(cwd) != 0) {
            if (chdir("/") != 0) {
                _exit(126);
            }
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* run a PostgreSQL program (name under TPG_BIN) with up to 12 args */
static int
tpg_pgcmd(tpg_t *pg, const char *prog, const char *const *args)
{
    char path[128];
    char *argv[20];
    int n = 0, i;

    snprintf(path, sizeof(path), "%s/%s", TPG_BIN, prog);
    if (pg->as_postgres) {
        argv[n++] = (char *) "runuser";
        argv[n++] = (char *) "-u";
        argv[n++] = (char *) "postgres";
        argv[n++] = (char *) "--";
    }
    argv[n++] = path;
    for (i = 0; args[i] && n < 19; i++) {
        argv[n++] = (char *) args[i];
    }
    argv[n] = NULL;
    return tpg_exec(pg->dir, pg->cmdlog, argv);
}

static int
tpg_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd, port = -1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0
        && getsockname(fd, (struct sockaddr *) &sa, &len) == 0)
    {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    return port;
}

/* start the server on pg->port; 0 on success */
static int
tpg_server_start(tpg_t *pg)
{
    char opts[256];
    const char *args[12];
    int rc;

    snprintf(opts, sizeof(opts),
             "-p %d -k %s -c listen_addresses=127.0.0.1 -F "
             "-c max_connections=60 -c shared_buffers=16MB", pg->port,
             pg->dir);
    args[0] = "-D";
    args[1] = pg->data;
    args[2] = "-l";
    args[3] = pg->log;
    args[4] = "-o";
    args[5] = opts;
    args[6] = "-w";
    args[7] = "-t";
    args[8] = "30";
    args[9] = "start";
    args[10] = NULL;
    rc = tpg_pgcmd(pg, "pg_ctl", args);
    if (rc == 0) {
        pg->running = 1;
    }
    return rc;
}

/* fast shutdown (clients are disconnected); 0 on success */
static int
tpg_server_stop(tpg_t *pg)
{
    const char *args[] = { "-D", pg->data, "-m", "fast", "-w", "stop",
                           NULL };
    int rc;

    rc = tpg_pgcmd(pg, "pg_ctl", args);
    if (rc == 0) {
        pg->running = 0;
    }
    return rc;
}

static int
tpg_watchdog(tpg_t *pg)
{
    static const char script[] =
        "cat >/dev/null 2>&1; "
        "if [ \"$3\" = 1 ]; then "
        "  runuser -u postgres -- \"$4/pg_ctl\" -D \"$1\" -m immediate "
        "    -w stop; "
        "else \"$4/pg_ctl\" -D \"$1\" -m immediate -w stop; fi; "
        "rm -rf \"$2\"";
    char flag[2] = { (char) ('0' + pg->as_postgres), '\0' };
    int fds[2], fd;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        /* a new session: a ^C to the test must not kill the watchdog */
        setsid();
        dup2(fds[0], 0);
        fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        closefrom(3);
        if (chdir("/") != 0) {
            _exit(126);
        }
        execl("/bin/sh", "sh", "-c", script, "tpg-watchdog", pg->data,
              pg->dir, flag, TPG_BIN, (char *) NULL);
        _exit(127);
    }
    close(fds[0]);
    pg->watch_fd = fds[1];
    pg->watchdog = pid;
    return 0;
}

static void tpg_destroy(tpg_t *pg);

/* create, initdb and start; 0 on success (diagnostics on stdout as #) */
static int
tpg_start(tpg_t *pg)
{
    const char *args[16];
    struct passwd *pw = NULL;
    char *dir;
    int tries;

    memset(pg, 0, sizeof(*pg));
    pg->watch_fd = -1;
    if (access(TPG_BIN "/initdb", X_OK) != 0) {
        printf("# no %s/initdb\n", TPG_BIN);
        return -1;
    }
    if (geteuid() == 0) {
        pw = getpwnam("postgres");
        if (pw == NULL) {
            printf("# running as root and no postgres user\n");
            return -1;
        }
        pg->as_postgres = 1;
    }
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/avc-pg-XXXXXX");
    dir = mkdtemp(pg->dir);
    if (dir == NULL) {
        printf("# mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (pw && chown(dir, pw->pw_uid, pw->pw_gid) != 0) {
        printf("# chown %s: %s\n", dir, strerror(errno));
        rmdir(dir);
        return -1;
    }
    snprintf(pg->data, sizeof(pg->data), "%s/data", pg->dir);
    snprintf(pg->log, sizeof(pg->log), "%s/postgres.log", pg->dir);
    snprintf(pg->cmdlog, sizeof(pg->cmdlog), "%s/cmd.log", pg->dir);
    if (tpg_watchdog(pg) != 0) {
        printf("# cannot start the cleanup watchdog\n");
        rmdir(pg->dir);
        return -1;
    }

    args[0] = "-D";
    args[1] = pg->data;
    args[2] = "-U";
    args[3] = "postgres";
    args[4] = "-A";
    args[5] = "trust";
    args[6] = "-E";
    args[7] = "UTF8";
    args[8] = "--locale=C";
    args[9] = "-N";
    args[10] = NULL;
    if (tpg_pgcmd(pg, "initdb", args) != 0) {
        printf("# initdb failed, see %s\n", pg->cmdlog);
        tpg_destroy(pg);
        return -1;
    }
    for (tries = 0; tries < 5; tries++) {
        pg->port = tpg_free_port();
        if (pg->port > 0 && tpg_server_start(pg) == 0) {
            break;
        }
    }
    if (!pg->running) {
        printf("# pg_ctl start failed\n");
        tpg_destroy(pg);
        return -1;
    }
    snprintf(pg->conninfo, sizeof(pg->conninfo),
             "host=%s port=%d dbname=postgres user=postgres", pg->dir,
             pg->port);
    snprintf(pg->conninfo_tcp, sizeof(pg->conninfo_tcp),
             "host=127.0.0.1 port=%d dbname=postgres user=postgres "
             "sslmode=disable gssencmode=disable", pg->port);
    return 0;
}

static void
tpg_destroy(tpg_t *pg)
{
    char *argv[] = { (char *) "rm", (char *) "-rf", pg->dir, NULL };
    int status;

    if (pg->running) {
        tpg_server_stop(pg);
    }
    if (pg->dir[0]) {
        tpg_exec(NULL, NULL, argv);
    }
    if (pg->watch_fd >= 0) {
        close(pg->watch_fd);
        pg->watch_fd = -1;
        waitpid(pg->watchdog, &status, 0);
    }
    pg->dir[0] = '\0';
}

/*
 * Apply the project's migrations (top/sql) to conninfo with avatarctl:
 * $AVC_AVATARCTL, else the avatarctl beside the test binary's directory
 * (build/t/test_x -> build/avatarctl).  Its output goes to log (or
 * nowhere).  0 on success.
 */
static __attribute__((unused)) int
tpg_migrate(const char *conninfo, const char *top, const char *log)
{
    char ctl[PATH_MAX], exe[PATH_MAX], sqldir[PATH_MAX + 8];
    const char *env = getenv("AVC_AVATARCTL");
    char *argv[8];
    ssize_t n;

    if (env) {
        snprintf(ctl, sizeof(ctl), "%s", env);
    } else {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0) {
            return -1;
        }
        exe[n] = '\0';
        snprintf(ctl, sizeof(ctl), "%s/../avatarctl", dirname(exe));
    }
    if (access(ctl, X_OK) != 0) {
        printf("# no avatarctl at %s (make ctl, or set AVC_AVATARCTL)\n",
               ctl);
        return -1;
    }
    /* the command runs in "/": the path must be absolute */
    if (realpath(top, exe) == NULL) {
        return -1;
    }
    snprintf(sqldir, sizeof(sqldir), "%s/sql", exe);
    argv[0] = ctl;
    argv[1] = (char *) "migrate";
    argv[2] = (char *) "--database";
    argv[3] = (char *) conninfo;
    argv[4] = (char *) "--dir";
    argv[5] = sqldir;
    argv[6] = NULL;
    if (tpg_exec(NULL, log, argv) != 0) {
        printf("# avatarctl migrate failed%s%s\n", log ? ", see " : "",
               log ? log : "");
        return -1;
    }
    return 0;
}

#endif /* AVC_TEST_PG_H */
