/*
 * The load client of tools/bench/chat: opens many streaming HTTP requests
 * at once (epoll, one connection per stream, "Connection: close"), and
 * times each one: until the request is written, until the first byte of
 * the answer, until the first token (a marker in the body), until the end
 * of the answer (EOF).
 *
 *   chatload -p PORT -r REQFILE -n N [-R RATE] [-m MARKER] [-E]
 *            [-e ENDMARKER] [-t SECONDS]
 *
 *   -p PORT       127.0.0.1:PORT
 *   -r REQFILE    whole HTTP requests, separated by a NUL byte; stream i
 *                 sends request i mod K
 *   -n N          streams
 *   -R RATE       streams opened per second (default 0: all at once)
 *   -m MARKER     the first token: the first occurrence of MARKER in the
 *                 answer (default "event: token")
 *   -E            ... only when the byte after MARKER is not '"' (a JSON
 *                 string that is not empty: '"content":"' of a chunk with
 *                 content, not the role chunk's "")
 *   -e ENDMARKER  an answer is complete only if it holds ENDMARKER
 *                 (default "event: done")
 *   -t SECONDS    give up on whatever is still open (default 120)
 *   -c            close every stream once all have their first token,
 *                 after the "ready" line as soon as a line (or EOF) comes
 *                 on stdin (the caller has sampled what it wanted):
 *                 COMPLETE is 2 for them
 *
 * Output on stdout:
 *   "ready open=O first=F failed=X at=MS" once every stream has its first
 *     token (or failed), while the streams are still open: the moment to
 *     sample the server's memory (the caller reads this line at once);
 *   then one line per stream:
 *     "s IDX STATUS COMPLETE SENT_US FIRSTBYTE_US TTFT_US END_US"
 *     (microseconds from the start of connect(); -1 when never reached;
 *     STATUS is the HTTP status, 0 without one; COMPLETE 1 when the end
 *     marker was seen, 2 when closed by -c);
 *   "end open_max=M elapsed_ms=MS".
 *
 * Built by tools/bench/chat with cc into the build directory.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TAIL 64

typedef struct {
    int fd;
    int state;              /* 0 not started, 1 connecting, 2 writing,
                               3 reading, 4 done */
    const char *req;
    size_t req_len, req_off;
    int64_t t0, t_sent, t_byte, t_first, t_end;
    int status;
    int complete;
    char *head;             /* the answer until the first token */
    size_t head_len, head_cap;
    char tail[TAIL * 2];    /* the last bytes, for the end marker */
    size_t tail_len;
} stream_t;

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
die(const char *msg)
{
    perror(msg);
    exit(2);
}

static int nfirst, nfailed;     /* streams with a first token, streams
                                   that ended without one */
static const char *marker = "event: token";
static size_t marker_len;
static int marker_nonempty;
static const char *endmarker = "event: done";
static size_t endmarker_len;

/* the first token in the head collected so far? */
static int
has_first(stream_t *s)
{
    const char *p = s->head, *end = s->head + s->head_len;

    while ((p = memmem(p, (size_t) (end - p), marker, marker_len))) {
        const char *after = p + marker_len;

        if (!marker_nonempty) {
            return 1;
        }
        if (after >= end) {
            return 0;           /* wait for the next byte */
        }
        if (*after != '"') {
            return 1;
        }
        p = after;
    }
    return 0;
}

static void
finish(stream_t *s, int epfd, int64_t t, int *open)
{
    if (s->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
        (*open)--;
    }
    if (s->t_first < 0 && s->state != 4) {
        nfailed++;
    }
    s->t_end = t;
    s->state = 4;
    free(s->head);
    s->head = NULL;
}

static void
on_bytes(stream_t *s, const char *buf, size_t n, int64_t t)
{
    if (s->t_byte < 0) {
        s->t_byte = t;
    }
    if (s->t_first < 0) {
        if (s->head_len + n + 1 > s->head_cap) {
            size_t cap = (s->head_len + n + 1) * 2;
            char *h = realloc(s->head, cap);

            if (h == NULL) {
                die("realloc");
            }
            s->head = h;
            s->head_cap = cap;
        }
        memcpy(s->head + s->head_len, buf, n);
        s->head_len += n;
        s->head[s->head_len] = '\0';
        if (s->status == 0 && s->head_len >= 12
            && memcmp(s->head, "HTTP/1.", 7) == 0)
        {
            s->status = atoi(s->head + 9);
        }
        if (has_first(s)) {
            s->t_first = t;
            nfirst++;
        }
    }
    /* the end marker, across reads */
    if (!s->complete) {
        char tmp[TAIL * 2 + 65536];
        size_t keep = s->tail_len, m = n;

        if (m > 65536) {
            buf += m - 65536;
            m = 65536;
        }
        memcpy(tmp, s->tail, keep);
        memcpy(tmp + keep, buf, m);
        if (memmem(tmp, keep + m, endmarker, endmarker_len)) {
            s->complete = 1;
        }
        keep = keep + m > TAIL ? TAIL : keep + m;
        memcpy(s->tail, tmp + (s->tail_len + m) - keep, keep);
        s->tail_len = keep;
    }
}

int
main(int argc, char **argv)
{
    int port = 0, n = 0, timeout = 120, opt, epfd, open = 0, open_max = 0;
    int done = 0, ready = 0, started = 0, close_ready = 0;
    double rate = 0;
    const char *reqfile = NULL;
    char *reqs, **req = NULL;
    size_t *req_len = NULL, nreq = 0, i;
    stream_t *st;
    struct sockaddr_in sa;
    struct stat sb;
    int64_t t_start, deadline;
    FILE *f;
    static char buf[65536];

    while ((opt = getopt(argc, argv, "p:r:n:R:m:Ee:t:c")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'r': reqfile = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'R': rate = atof(optarg); break;
        case 'm': marker = optarg; break;
        case 'E': marker_nonempty = 1; break;
        case 'e': endmarker = optarg; break;
        case 't': timeout = atoi(optarg); break;
        case 'c': close_ready = 1; break;
        default:
            fprintf(stderr, "usage: chatload -p PORT -r REQFILE -n N "
                    "[-R RATE] [-m MARKER] [-E] [-e END] [-t S] [-c]\n");
            return 2;
        }
    }
    if (port <= 0 || n <= 0 || reqfile == NULL) {
        fprintf(stderr, "chatload: -p, -r and -n are required\n");
        return 2;
    }
    marker_len = strlen(marker);
    endmarker_len = strlen(endmarker);

    /* the requests */
    f = fopen(reqfile, "rb");
    if (f == NULL || fstat(fileno(f), &sb) != 0) {
        die(reqfile);
    }
    reqs = malloc((size_t) sb.st_size + 1);
    if (reqs == NULL || fread(reqs, 1, (size_t) sb.st_size, f)
                        != (size_t) sb.st_size)
    {
        die("read requests");
    }
    fclose(f);
    reqs[sb.st_size] = '\0';
    for (char *p = reqs; p < reqs + sb.st_size; ) {
        size_t l = strlen(p);

        if (l) {
            req = realloc(req, (nreq + 1) * sizeof(*req));
            req_len = realloc(req_len, (nreq + 1) * sizeof(*req_len));
            req[nreq] = p;
            req_len[nreq++] = l;
        }
        p += l + 1;
    }
    if (nreq == 0) {
        fprintf(stderr, "chatload: no request in %s\n", reqfile);
        return 2;
    }

    st = calloc((size_t) n, sizeof(*st));
    if (st == NULL) {
        die("calloc");
    }
    for (i = 0; i < (size_t) n; i++) {
        st[i].fd = -1;
        st[i].req = req[i % nreq];
        st[i].req_len = req_len[i % nreq];
        st[i].t0 = st[i].t_sent = st[i].t_byte = st[i].t_first =
            st[i].t_end = -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    epfd = epoll_create1(0);
    if (epfd < 0) {
        die("epoll_create1");
    }
    t_start = now_us();
    deadline = t_start + (int64_t) timeout * 1000000;

    while (done < n) {
        struct epoll_event ev[256];
        int64_t t = now_us(), wait_ms = 100;
        int k;

        /* open the streams that are due */
        while (started < n) {
            int64_t due = rate > 0 ? t_start + (int64_t) (started * 1e6
                                                           / rate)
                                   : t_start;
            stream_t *s = &st[started];
            struct epoll_event e;
            int one = 1;

            if (due > t) {
                wait_ms = (due - t) / 1000;
                break;
            }
            s->t0 = now_us();
            s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (s->fd < 0) {
                die("socket");
            }
            setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            open++;
            if (open > open_max) {
                open_max = open;
            }
            e.events = EPOLLOUT;
            e.data.u32 = (uint32_t) started;
            if (connect(s->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0
                && errno != EINPROGRESS)
            {
                finish(s, epfd, now_us(), &open);
                done++;
            } else {
                s->state = 1;
                if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &e) != 0) {
                    die("epoll_ctl");
                }
            }
            started++;
        }

        if (!ready && started == n && nfirst + nfailed == n) {
            ready = 1;
            printf("ready open=%d first=%d failed=%d at=%lld\n", open,
                   nfirst, nfailed, (long long) ((now_us() - t_start) / 1000));
            fflush(stdout);
            if (close_ready) {
                char line[16];

                if (fgets(line, sizeof(line), stdin) == NULL) {
                    /* EOF: go on */
                }
                for (i = 0; i < (size_t) n; i++) {
                    if (st[i].state != 4) {
                        if (!st[i].complete) {
                            st[i].complete = 2;
                        }
                        finish(&st[i], epfd, now_us(), &open);
                        done++;
                    }
                }
                break;
            }
        }

        if (t > deadline) {
            for (i = 0; i < (size_t) n; i++) {
                if (st[i].state != 4) {
                    finish(&st[i], epfd, -1, &open);
                    st[i].t_end = -1;
                    done++;
                }
            }
            break;
        }

        if (wait_ms > 100) {
            wait_ms = 100;
        }
        k = epoll_wait(epfd, ev, 256, (int) wait_ms);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        t = now_us();
        for (int j = 0; j < k; j++) {
            stream_t *s = &st[ev[j].data.u32];

            if (s->state == 1) {
                int err = 0;
                socklen_t el = sizeof(err);

                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    finish(s, epfd, t, &open);
                    done++;
                    continue;
                }
                s->state = 2;
            }
            if (s->state == 2) {
                ssize_t w = write(s->fd, s->req + s->req_off,
                                  s->req_len - s->req_off);

                if (w < 0) {
                    if (errno == EAGAIN || errno == EINTR) {
                        continue;
                    }
                    finish(s, epfd, t, &open);
                    done++;
                    continue;
                }
                s->req_off += (size_t) w;
                if (s->req_off == s->req_len) {
                    struct epoll_event e;

                    s->t_sent = now_us();
                    s->state = 3;
                    e.events = EPOLLIN;
                    e.data.u32 = ev[j].data.u32;
                    epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &e);
                }
                continue;
            }
            if (s->state == 3) {
                ssize_t r = read(s->fd, buf, sizeof(buf));

                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR) {
                        continue;
                    }
                    finish(s, epfd, t, &open);
                    done++;
                    continue;
                }
                if (r == 0) {
                    finish(s, epfd, t, &open);
                    done++;
                    continue;
                }
                on_bytes(s, buf, (size_t) r, t);
            }
        }
    }

    for (i = 0; i < (size_t) n; i++) {
        stream_t *s = &st[i];
#define REL(x) ((x) >= 0 && s->t0 >= 0 ? (long long) ((x) - s->t0) : -1LL)
        printf("s %zu %d %d %lld %lld %lld %lld\n", i, s->status,
               s->complete, REL(s->t_sent), REL(s->t_byte), REL(s->t_first),
               REL(s->t_end));
    }
    printf("end open_max=%d elapsed_ms=%lld\n", open_max,
           (long long) ((now_us() - t_start) / 1000));
    return 0;
}
