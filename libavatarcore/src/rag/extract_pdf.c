/*
 * PDF documents: the text comes from pdftotext(1) (poppler-utils) in a
 * child process, so that a hostile or broken PDF can crash, spin or bloat
 * only that child.
 *
 * Process layout: the calling thread starts a "keeper" with a raw clone()
 * that has no exit signal, and the keeper starts pdftotext and waits for
 * it.  nginx reaps every child in its SIGCHLD handler with waitpid(-1),
 * which would steal a plain child (and log it as an unknown process); a
 * child without an exit signal is invisible to waitpid() unless asked for
 * with __WALL.  execve() resets the exit signal to SIGCHLD, hence the
 * keeper, which never executes anything.  It writes pdftotext's wait
 * status to a pipe and then waits to be killed rather than calling
 * _exit(): it is a copy of the host, and a memory checker running the
 * host (valgrind) would audit that copy at its exit, reporting the
 * allocations the host's other threads had in flight.  Both run in a
 * process group of their own, so one kill() ends both; should the
 * keeper die anyway, pdftotext gets SIGKILL from PR_SET_PDEATHSIG.
 *
 * Between clone() and execve() only async-signal-safe system calls run:
 * other threads of the host may hold locks (malloc) at the moment of the
 * clone.  The keeper blocks every signal and resets SIGCHLD, so no handler
 * of the host ever runs in it.
 *
 * The PDF goes to pdftotext's stdin over a socket pair, so send() with
 * MSG_NOSIGNAL reports a child that stopped reading as EPIPE instead of
 * raising SIGPIPE in the host; the text and the diagnostics come back
 * over pipes.  One poll() loop writes and reads at once (a child may
 * answer before it has read everything), enforces the wall-clock
 * deadline and the output cap, and the keeper is always reaped.
 */
#include "extract_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define AVC_PDF_IO           65536
#define AVC_PDF_STDERR_MAX   2048        /* diagnostics kept, bytes */
#define AVC_PDF_NOFILE       64
#define AVC_PDF_EOF_WINDOW   1024        /* where %%EOF must be */
#define AVC_PDF_EXIT_SETUP   126         /* the child could not set up */
#define AVC_PDF_EXIT_EXEC    127         /* execve() failed */

#define AVC_PDF_DAMAGED      "the PDF file is damaged or incomplete"
#define AVC_PDF_SLOW         "the PDF file took too long to process"
#define AVC_PDF_MEMORY       "the PDF file needs more memory to process " \
                             "than is allowed"

/* Where Debian and a local build put it; the PATH of a server is not. */
static const char *const avc_pdf_programs[] = {
    "/usr/bin/pdftotext",
    "/usr/local/bin/pdftotext",
    "/bin/pdftotext",
};

/*
 * Reading order rather than -layout: -layout sets the columns of a page
 * side by side on one line, which interleaves their sentences once the
 * blanks are collapsed.  Form feeds between pages are kept; the
 * normaliser makes them paragraph breaks.
 */
static const char *const avc_pdf_argv[] = {
    "pdftotext", "-enc", "UTF-8", "-eol", "unix", "-", "-", NULL
};

/* A clean environment: the host's may hold provider keys. */
static const char *const avc_pdf_envp[] = {
    "PATH=/usr/bin:/bin", "LC_ALL=C", NULL
};

/* Everything the children need, prepared before the clone. */
typedef struct {
    const char *program;
    pid_t parent;               /* of the process reading this */
    int fd[3];                  /* pdftotext's stdin, stdout, stderr */
    int status_fd;              /* the keeper writes the wait status */
    int close_max;              /* fallback: close up to close_max-1 */
    struct rlimit cpu;
    struct rlimit as;
    struct rlimit fsize;
    struct rlimit core;
    struct rlimit nofile;
    struct sigaction dfl;
    sigset_t none;
    sigset_t all;
} avc_pdf_spawn_t;

typedef struct {
    pid_t pid;                  /* the keeper */
    int in;                     /* our ends: pdftotext's stdin, */
    int out;                    /* stdout, */
    int err;                    /* stderr */
    int status;                 /* and the keeper's report */
    char diag[AVC_PDF_STDERR_MAX + 1];
    size_t diag_len;
} avc_pdf_child_t;

static const char *
avc_pdf_program(void)
{
    size_t i;

    for (i = 0; i < avc__countof(avc_pdf_programs); i++) {
        if (access(avc_pdf_programs[i], X_OK) == 0) {
            return avc_pdf_programs[i];
        }
    }
    return NULL;
}

static void
avc_pdf_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Keep descriptors off 0-2, so the child's dup2() never clobbers one. */
static int
avc_pdf_high(int *fd)
{
    int nfd;

    if (*fd > 2) {
        return 0;
    }
    nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    close(*fd);
    *fd = nfd;
    return nfd < 0 ? -1 : 0;
}

static int
avc_pdf_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Async-signal-safe: close descriptors from .. to, both included. */
static void
avc_pdf_close_range(const avc_pdf_spawn_t *sp, int from, unsigned to)
{
    int fd;

    if ((unsigned) from > to) {
        return;
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned) from, to, 0U) == 0) {
        return;
    }
#endif
    for (fd = from; fd < sp->close_max && (unsigned) fd <= to; fd++) {
        close(fd);
    }
}

/*
 * pdftotext's side, from clone() to execve(): async-signal-safe calls
 * only, and no return.
 */
static void __attribute__((noreturn))
avc_pdf_exec(const avc_pdf_spawn_t *sp, pid_t keeper)
{
    /* die with the keeper, even when it is killed */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != keeper) {
        _exit(AVC_PDF_EXIT_SETUP);
    }

    /* exec keeps the mask and SIG_IGN; pdftotext expects defaults */
    sigaction(SIGPIPE, &sp->dfl, NULL);
    sigaction(SIGXCPU, &sp->dfl, NULL);
    sigaction(SIGXFSZ, &sp->dfl, NULL);
    sigaction(SIGCHLD, &sp->dfl, NULL);
    sigprocmask(SIG_SETMASK, &sp->none, NULL);

    if (dup2(sp->fd[0], 0) < 0 || dup2(sp->fd[1], 1) < 0
        || dup2(sp->fd[2], 2) < 0)
    {
        _exit(AVC_PDF_EXIT_SETUP);
    }

    /* the host's descriptors (listening sockets, files) are not its */
    avc_pdf_close_range(sp, 3, ~0U);

    if (setrlimit(RLIMIT_CPU, &sp->cpu) != 0
        || setrlimit(RLIMIT_AS, &sp->as) != 0
        || setrlimit(RLIMIT_FSIZE, &sp->fsize) != 0
        || setrlimit(RLIMIT_CORE, &sp->core) != 0)
    {
        _exit(AVC_PDF_EXIT_SETUP);
    }
    /* only a hardening: valgrind, for one, refuses to change it */
    (void) setrlimit(RLIMIT_NOFILE, &sp->nofile);

    execve(sp->program, (char *const *) avc_pdf_argv,
           (char *const *) avc_pdf_envp);
    _exit(AVC_PDF_EXIT_EXEC);
}

/* The keeper: start pdftotext, wait, pass its status on.  No return. */
static void __attribute__((noreturn))
avc_pdf_keeper(const avc_pdf_spawn_t *sp)
{
    pid_t self;
    long pid;
    int status;
    ssize_t n;

    /* no host handler (nginx's SIGCHLD reaper) may run in here */
    sigprocmask(SIG_SETMASK, &sp->all, NULL);
    sigaction(SIGCHLD, &sp->dfl, NULL);

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != sp->parent) {
        _exit(AVC_PDF_EXIT_SETUP);
    }
    /* one kill(-keeper) ends both */
    setpgid(0, 0);
    self = getpid();

    pid = syscall(SYS_clone, (unsigned long) SIGCHLD, NULL, NULL, NULL,
                  NULL);
    if (pid == 0) {
        avc_pdf_exec(sp, self);
    }

    /* holding pdftotext's pipes would keep their ends from closing */
    avc_pdf_close_range(sp, 0, (unsigned) sp->status_fd - 1);
    avc_pdf_close_range(sp, sp->status_fd + 1, ~0U);
    if (pid < 0) {
        _exit(AVC_PDF_EXIT_SETUP);
    }

    while (waitpid((pid_t) pid, &status, 0) < 0) {
        if (errno != EINTR) {
            _exit(AVC_PDF_EXIT_SETUP);
        }
    }

    /* 4 bytes to a pipe: atomic, and the pipe is empty */
    do {
        n = write(sp->status_fd, &status, sizeof(status));
    } while (n < 0 && errno == EINTR);

    /* every signal is blocked: this waits for SIGKILL (see the top) */
    for ( ;; ) {
        pause();
    }
}

static int
avc_pdf_spawn(const char *program, const avc__extract_lim_t *lim,
              avc_pdf_child_t *c)
{
    avc_pdf_spawn_t sp;
    int sv[2], po[2], pe[2], ps[2], i;
    struct rlimit cur;
    rlim_t secs;
    long pid;

    sv[0] = sv[1] = po[0] = po[1] = pe[0] = pe[1] = ps[0] = ps[1] = -1;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0
        || pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0
        || pipe2(ps, O_CLOEXEC) != 0
        || avc_pdf_high(&sv[0]) || avc_pdf_high(&sv[1])
        || avc_pdf_high(&po[0]) || avc_pdf_high(&po[1])
        || avc_pdf_high(&pe[0]) || avc_pdf_high(&pe[1])
        || avc_pdf_high(&ps[0]) || avc_pdf_high(&ps[1])
        || avc_pdf_nonblock(sv[0]) || avc_pdf_nonblock(po[0])
        || avc_pdf_nonblock(pe[0]) || avc_pdf_nonblock(ps[0]))
    {
        goto failed;
    }

    memset(&sp, 0, sizeof(sp));
    sp.program = program;
    sp.parent = getpid();
    sp.fd[0] = sv[1];
    sp.fd[1] = po[1];
    sp.fd[2] = pe[1];
    sp.status_fd = ps[1];

    /* SIGXCPU at the deadline's seconds, SIGKILL one second later */
    secs = (lim->timeout_ms + 999) / 1000;
    sp.cpu.rlim_cur = secs;
    sp.cpu.rlim_max = secs + 1;
    sp.as.rlim_cur = sp.as.rlim_max = lim->max_memory;
    sp.fsize.rlim_cur = sp.fsize.rlim_max = 0;
    sp.core.rlim_cur = sp.core.rlim_max = 0;
    sp.nofile.rlim_cur = sp.nofile.rlim_max = AVC_PDF_NOFILE;

    /* never raise a limit the host lowered (EPERM) */
    if (getrlimit(RLIMIT_CPU, &cur) == 0 && cur.rlim_max < sp.cpu.rlim_max) {
        sp.cpu.rlim_max = cur.rlim_max;
        if (sp.cpu.rlim_cur > cur.rlim_max) {
            sp.cpu.rlim_cur = cur.rlim_max;
        }
    }
    if (getrlimit(RLIMIT_AS, &cur) == 0 && cur.rlim_max < sp.as.rlim_max) {
        sp.as.rlim_cur = sp.as.rlim_max = cur.rlim_max;
    }
    /* without close_range() the children close up to the host's limit */
    sp.close_max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &cur) == 0) {
        if (cur.rlim_cur < (rlim_t) sp.close_max) {
            sp.close_max = (int) cur.rlim_cur;
        }
        if (cur.rlim_max < AVC_PDF_NOFILE) {
            sp.nofile.rlim_cur = sp.nofile.rlim_max = cur.rlim_max;
        }
    }

    sp.dfl.sa_handler = SIG_DFL;
    sigemptyset(&sp.dfl.sa_mask);
    sigemptyset(&sp.none);
    sigfillset(&sp.all);

    /* like fork(), but with no exit signal: see the top of the file */
    pid = syscall(SYS_clone, 0UL, NULL, NULL, NULL, NULL);
    if (pid < 0) {
        goto failed;
    }
    if (pid == 0) {
        avc_pdf_keeper(&sp);
    }

    close(sv[1]);
    close(po[1]);
    close(pe[1]);
    close(ps[1]);
    c->pid = (pid_t) pid;
    c->in = sv[0];
    c->out = po[0];
    c->err = pe[0];
    c->status = ps[0];
    c->diag_len = 0;
    c->diag[0] = '\0';
    return 0;

failed:
    for (i = 0; i < 2; i++) {
        avc_pdf_close(&sv[i]);
        avc_pdf_close(&po[i]);
        avc_pdf_close(&pe[i]);
        avc_pdf_close(&ps[i]);
    }
    return -1;
}

/* poll()'s timeout until the deadline (now < deadline). */
static int
avc_pdf_poll_ms(const avc__extract_lim_t *lim, uint64_t now)
{
    uint64_t ms = lim->deadline - now;

    return ms > INT_MAX ? INT_MAX : (int) ms;
}

static void
avc_pdf_kill(avc_pdf_child_t *c)
{
    int status;

    avc_pdf_close(&c->in);
    avc_pdf_close(&c->out);
    avc_pdf_close(&c->err);
    avc_pdf_close(&c->status);
    /* the group, in case the keeper made it; the keeper in any case */
    kill(-c->pid, SIGKILL);
    kill(c->pid, SIGKILL);
    while (waitpid(c->pid, &status, __WALL) < 0 && errno == EINTR) {
        /* void */
    }
}

/*
 * Once the output is complete: take pdftotext's wait status from the
 * keeper, then end and reap the keeper, which waits for that.  1 with
 * *status set, 0 when the deadline passed first, -1 on failure.
 */
static int
avc_pdf_finish(avc_pdf_child_t *c, const avc__extract_lim_t *lim,
               int *status)
{
    struct pollfd pfd;
    uint64_t now;
    ssize_t n;
    int rc;

    for ( ;; ) {
        now = avc__extract_now_ms();
        if (now >= lim->deadline) {
            rc = 0;
            break;
        }
        pfd.fd = c->status;
        pfd.events = POLLIN;
        n = poll(&pfd, 1, avc_pdf_poll_ms(lim, now));
        if (n == 0 || (n < 0 && errno == EINTR)) {
            continue;
        }
        if (n < 0) {
            rc = -1;
            break;
        }
        n = read(c->status, status, sizeof(*status));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        /* EOF: the keeper died without a report */
        rc = (n == (ssize_t) sizeof(*status)) ? 1 : -1;
        break;
    }

    avc_pdf_kill(c);
    return rc;
}

static int
avc_pdf_diag_has(const avc_pdf_child_t *c, const char *s)
{
    return strstr(c->diag, s) != NULL;
}

/* What pdftotext's exit means for the user. */
static int
avc_pdf_status(const avc_pdf_child_t *c, int status, char **why)
{
    int code, sig;

    if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
        if (code == 0) {
            return AVC_OK;
        }
        if (code == 1 && avc_pdf_diag_has(c, "password")) {
            return avc__extract_fail(why, AVC_EPARSE,
                                     "the PDF file is password-protected");
        }
        if (code == 3) {
            return avc__extract_fail(why, AVC_EPARSE, "the PDF file does "
                                     "not allow copying its text");
        }
        if (code == AVC_PDF_EXIT_EXEC && c->diag_len == 0) {
            return avc__extract_fail(why, AVC_ESYS, "PDF text extraction "
                                     "is not available on this server");
        }
        if (code == AVC_PDF_EXIT_SETUP) {
            return avc__extract_fail(why, AVC_ESYS,
                                     "PDF text extraction failed");
        }
        /* the dynamic loader failing under the address-space limit */
        if (code == AVC_PDF_EXIT_EXEC || avc_pdf_diag_has(c, "memory")) {
            return avc__extract_fail(why, AVC_ETOOBIG, AVC_PDF_MEMORY);
        }
        return avc__extract_fail(why, AVC_EPARSE, AVC_PDF_DAMAGED);
    }

    sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (sig == SIGXCPU || sig == SIGKILL) {
        /* the CPU limit, soft then hard: we had not killed it yet */
        return avc__extract_fail(why, AVC_ETIMEDOUT, AVC_PDF_SLOW);
    }
    if (avc_pdf_diag_has(c, "memory") || avc_pdf_diag_has(c, "bad_alloc")) {
        return avc__extract_fail(why, AVC_ETOOBIG, AVC_PDF_MEMORY);
    }
    return avc__extract_fail(why, AVC_EPARSE, AVC_PDF_DAMAGED);
}

static int
avc_pdf_has_eof(const unsigned char *p, size_t len)
{
    size_t window = len < AVC_PDF_EOF_WINDOW ? len : AVC_PDF_EOF_WINDOW;

    return memmem(p + len - window, window, "%%EOF", 5) != NULL;
}

/*
 * Feed the PDF and collect the text until the child closes its output.
 * AVC_OK, or a failure with the child killed and reaped.
 */
static int
avc_pdf_pump(avc_pdf_child_t *c, const unsigned char *data, size_t len,
             const avc__extract_lim_t *lim, size_t cap, avc__buf_t *out,
             char **why)
{
    struct pollfd pfd[3];
    char buf[AVC_PDF_IO];
    size_t off, want;
    uint64_t now;
    ssize_t n;
    nfds_t k, nfds;
    int rc;

    off = 0;
    if (len == 0) {
        avc_pdf_close(&c->in);
    }

    while (c->in >= 0 || c->out >= 0 || c->err >= 0) {
        now = avc__extract_now_ms();
        if (now >= lim->deadline) {
            avc_pdf_kill(c);
            return avc__extract_fail(why, AVC_ETIMEDOUT, AVC_PDF_SLOW);
        }

        nfds = 0;
        if (c->in >= 0) {
            pfd[nfds].fd = c->in;
            pfd[nfds++].events = POLLOUT;
        }
        if (c->out >= 0) {
            pfd[nfds].fd = c->out;
            pfd[nfds++].events = POLLIN;
        }
        if (c->err >= 0) {
            pfd[nfds].fd = c->err;
            pfd[nfds++].events = POLLIN;
        }

        rc = poll(pfd, nfds, avc_pdf_poll_ms(lim, now));
        if (rc < 0) {
            if (errno == EINTR) {
                continue;
            }
            avc_pdf_kill(c);
            return avc__extract_fail(why, AVC_ESYS,
                                     "PDF text extraction failed");
        }

        for (k = 0; k < nfds; k++) {
            if (pfd[k].revents == 0) {
                continue;
            }

            if (pfd[k].fd == c->in) {
                want = len - off < AVC_PDF_IO ? len - off : AVC_PDF_IO;
                n = send(c->in, data + off, want,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                    off += (size_t) n;
                }
                if (off == len
                    || (n < 0 && errno != EAGAIN && errno != EINTR))
                {
                    /* done, or the child stopped reading: its exit says */
                    avc_pdf_close(&c->in);
                }

            } else if (pfd[k].fd == c->out) {
                n = read(c->out, buf, sizeof(buf));
                if (n > 0) {
                    if (avc__buf_append(out, buf, (size_t) n) != AVC_OK) {
                        avc_pdf_kill(c);
                        return avc__extract_fail(why, AVC_ENOMEM,
                                                 "out of memory");
                    }
                    if (out->len > cap) {
                        avc_pdf_kill(c);
                        return avc__extract_fail(why, AVC_ETOOBIG,
                                                 "the document contains "
                                                 "more text than is "
                                                 "allowed");
                    }
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    avc_pdf_close(&c->out);
                }

            } else if (pfd[k].fd == c->err) {
                n = read(c->err, buf, sizeof(buf));
                if (n > 0) {
                    want = AVC_PDF_STDERR_MAX - c->diag_len;
                    if ((size_t) n < want) {
                        want = (size_t) n;
                    }
                    memcpy(c->diag + c->diag_len, buf, want);
                    c->diag_len += want;
                    c->diag[c->diag_len] = '\0';
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    avc_pdf_close(&c->err);
                }
            }
        }
    }

    return AVC_OK;
}

int
avc__extract_pdf(const void *data, size_t len,
                 const avc__extract_lim_t *lim, avc__buf_t *out, char **why)
{
    avc_pdf_child_t c;
    const char *program;
    size_t cap;
    int rc, status;

    /* a cut-off upload would otherwise give part of the text, silently */
    if (!avc_pdf_has_eof(data, len)) {
        return avc__extract_fail(why, AVC_EPARSE, AVC_PDF_DAMAGED);
    }

    program = avc_pdf_program();
    if (program == NULL) {
        return avc__extract_fail(why, AVC_ESYS, "PDF text extraction is "
                                 "not available on this server");
    }

    memset(&c, 0, sizeof(c));
    if (avc_pdf_spawn(program, lim, &c) != 0) {
        return avc__extract_fail(why, AVC_ESYS,
                                 "PDF text extraction failed");
    }

    /* raw text shrinks when normalised; the exact cap is checked after */
    cap = lim->max_output > SIZE_MAX / 2 ? SIZE_MAX / 2
                                         : lim->max_output * 2;

    rc = avc_pdf_pump(&c, data, len, lim, cap, out, why);
    if (rc != AVC_OK) {
        return rc;
    }

    switch (avc_pdf_finish(&c, lim, &status)) {
    case 1:
        rc = avc_pdf_status(&c, status, why);
        break;
    case 0:
        rc = avc__extract_fail(why, AVC_ETIMEDOUT, AVC_PDF_SLOW);
        break;
    default:
        rc = avc__extract_fail(why, AVC_ESYS, "PDF text extraction failed");
    }

    return rc;
}
