/*
 * Starting and stopping the Perl mock servers of tools/mock/ from a C
 * unit test.  A mock prints its port on its first line of output and
 * exits when its standard input closes (--watch-stdin), so a test that
 * dies never leaves one behind.
 */
#ifndef AVC_TEST_MOCK_H
#define AVC_TEST_MOCK_H

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

typedef struct {
    pid_t pid;
    int in;                     /* the mock's stdin: closing it ends it */
    int port;
} mock_t;

/*
 * Run "perl TOP/tools/mock/SCRIPT --watch-stdin --quiet ARGS..." (args is
 * NULL-terminated, may be NULL) and read its port.  0 or -1.
 */
static __attribute__((unused)) int
mock_start_script(mock_t *mk, const char *top, const char *script,
    const char *const *args)
{
    char path[PATH_MAX], line[32];
    const char *argv[40];
    int in[2], out[2], n = 0, i, fd;
    struct pollfd pfd;
    size_t got = 0;
    ssize_t r;

    memset(mk, 0, sizeof(*mk));
    mk->in = -1;
    snprintf(path, sizeof(path), "%s/tools/mock/%s", top, script);
    argv[n++] = "perl";
    argv[n++] = path;
    argv[n++] = "--watch-stdin";
    argv[n++] = "--quiet";
    for (i = 0; args && args[i] && n < 38; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    if (pipe2(in, O_CLOEXEC) != 0) {
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    fflush(stdout);
    mk->pid = fork();
    if (mk->pid < 0) {
        return -1;
    }
    if (mk->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        fd = open("/dev/null", O_WRONLY);
        if (fd >= 0 && !getenv("AVC_TEST_VERBOSE")) {
            dup2(fd, 2);
        }
        execvp("perl", (char *const *) argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    mk->in = in[1];
    pfd.fd = out[0];
    pfd.events = POLLIN;
    while (got < sizeof(line) - 1 && poll(&pfd, 1, 10000) > 0) {
        r = read(out[0], line + got, 1);
        if (r <= 0 || line[got] == '\n') {
            break;
        }
        got++;
    }
    line[got] = '\0';
    close(out[0]);
    mk->port = atoi(line);
    if (mk->port <= 0) {
        printf("# %s did not start\n", script);
        return -1;
    }
    return 0;
}

static __attribute__((unused)) void
mock_stop(mock_t *mk)
{
    int st;

    if (mk->in >= 0) {
        close(mk->in);
        mk->in = -1;
    }
    if (mk->pid > 0) {
        kill(mk->pid, SIGTERM);
        waitpid(mk->pid, &st, 0);
        mk->pid = 0;
    }
}

#endif /* AVC_TEST_MOCK_H */
