/*
 * The shared cache's micro-benchmark (driver of tools/bench/cache).
 *
 *   cache [seconds per figure] [processes]
 *
 * answer find   512 answers of 512 dimensions in one dealership (the
 *               per-dealership cap), one lookup = a scan of all 512:
 *               a miss (a random question) and a hit (a stored question,
 *               answer of 1 KB copied out)
 * embed get     20,000 query embeddings of 512 dimensions, random hits
 * embed put     replacing them
 * session get   a 2 KB session blob
 *
 * Each is measured in one process, then in N processes at once (default
 * the number of cores) on the same region: the aggregate rate.  Rates
 * are by the wall clock; "cpu" is the process's CPU time per operation,
 * which other load on the machine does not inflate.
 */
#include <avatarcore/cache.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define DIM       512
#define ANSWERS   AVC_SHCACHE_ANSWERS_MAX
#define EMBEDS    20000
#define REGION    ((size_t) 128 << 20)

typedef enum { FIND_MISS, FIND_HIT, EMBED_GET, EMBED_PUT, SESSION_GET,
               NKINDS } kind_t;

static const char *names[NKINDS] = {
    "answer find, miss (scan of 512 x 512)",
    "answer find, hit (scan + 1 KB copy)",
    "embed get (512 floats)",
    "embed put (replace)",
    "session get (2 KB)"
};

static float (*questions)[DIM];
static avc_shcache_t *cache;

static double
clock_s(clockid_t id)
{
    struct timespec t;

    clock_gettime(id, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

#define now()  clock_s(CLOCK_MONOTONIC)
#define cpu()  clock_s(CLOCK_PROCESS_CPUTIME_ID)

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
rand_vec(float *v, uint64_t *s)
{
    int i;

    for (i = 0; i < DIM; i++) {
        v[i] = (float) ((double) (rnd(s) % 20001) / 10000.0 - 1.0);
    }
}

/*
 * Operations per second of one kind, for secs, in this process; the CPU
 * seconds per operation in *cpu_op when not NULL.
 */
static double
run(kind_t kind, double secs, uint64_t seed, double *cpu_op)
{
    float q[DIM], out[DIM];
    double t0 = now(), c0 = cpu(), t;
    unsigned long n = 0;
    uint64_t s = seed;
    char text[32];
    void *p;
    size_t len;
    int i, bad = 0;

    do {
        for (i = 0; i < 64; i++, n++) {
            switch (kind) {
            case FIND_MISS:
                rand_vec(q, &s);
                bad += avc_shcache_answer_find(cache, 1, 1, q, DIM, 0.92,
                                               &p, &len, NULL) == AVC_OK;
                break;
            case FIND_HIT:
                bad += avc_shcache_answer_find(cache, 1, 1,
                                               questions[rnd(&s) % ANSWERS],
                                               DIM, 0.92, &p, &len, NULL)
                       != AVC_OK;
                free(p);
                break;
            case EMBED_GET:
                snprintf(text, sizeof(text), "what is a vsc %lu",
                         (unsigned long) (rnd(&s) % EMBEDS));
                bad += avc_shcache_embed_get(cache, "avc-local-1", text, out,
                                             DIM) != AVC_OK;
                break;
            case EMBED_PUT:
                snprintf(text, sizeof(text), "what is a vsc %lu",
                         (unsigned long) (rnd(&s) % EMBEDS));
                bad += avc_shcache_embed_put(cache, "avc-local-1", text,
                                             questions[n % ANSWERS], DIM)
                       != AVC_OK;
                break;
            default:
                bad += avc_shcache_session_get(cache, "session-1", 1, &p,
                                               &len) != AVC_OK;
                free(p);
            }
        }
        t = now() - t0;
    } while (t < secs);
    if (bad) {
        fprintf(stderr, "cache: %d unexpected results in %s\n", bad,
                names[kind]);
        exit(1);
    }
    if (cpu_op) {
        *cpu_op = (cpu() - c0) / (double) n;
    }
    return (double) n / t;
}

/* the aggregate of nproc processes at once */
static double
run_many(kind_t kind, double secs, int nproc)
{
    double *rates, sum = 0;
    pid_t pid;
    int i, status;

    rates = mmap(NULL, sizeof(double) * (size_t) nproc,
                 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rates == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    for (i = 0; i < nproc; i++) {
        pid = fork();
        if (pid == 0) {
            rates[i] = run(kind, secs, 0x9e3779b97f4a7c15ULL * (i + 2),
                           NULL);
            _exit(0);
        }
    }
    for (i = 0; i < nproc; i++) {
        if (wait(&status) < 0 || !WIFEXITED(status)
            || WEXITSTATUS(status) != 0)
        {
            exit(1);
        }
    }
    for (i = 0; i < nproc; i++) {
        sum += rates[i];
    }
    munmap(rates, sizeof(double) * (size_t) nproc);
    return sum;
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0, one, many, cpu_op;
    int nproc = argc > 2 ? atoi(argv[2]) : (int) sysconf(_SC_NPROCESSORS_ONLN);
    char answer[1024], blob[2048], text[32];
    uint64_t s = 88172645463325252ULL;
    int i, err, k;

    if (secs <= 0 || nproc < 1) {
        fprintf(stderr, "usage: cache [seconds] [processes]\n");
        return 2;
    }
    cache = avc_shcache_new_private(REGION, &err);
    questions = malloc(sizeof(*questions) * ANSWERS);
    if (cache == NULL || questions == NULL) {
        fprintf(stderr, "cache: %s\n", avc_strerror(err));
        return 1;
    }
    memset(answer, 'a', sizeof(answer));
    memset(blob, 's', sizeof(blob));
    for (i = 0; i < ANSWERS; i++) {
        rand_vec(questions[i], &s);
        if (avc_shcache_answer_put(cache, 1, 1, questions[i], DIM, answer,
                                   sizeof(answer)) != AVC_OK)
        {
            fprintf(stderr, "cache: answer put failed\n");
            return 1;
        }
    }
    for (i = 0; i < EMBEDS; i++) {
        snprintf(text, sizeof(text), "what is a vsc %d", i);
        avc_shcache_embed_put(cache, "avc-local-1", text,
                              questions[i % ANSWERS], DIM);
    }
    avc_shcache_session_put(cache, "session-1", 1, blob, sizeof(blob));
    if (avc_shcache_stat(cache, AVC_SHCACHE_EVICTIONS) != 0) {
        fprintf(stderr, "cache: the region is too small for the set\n");
        return 1;
    }

    printf("cache: %d MiB region, %.1f s per figure, 1 process and %d at "
           "once (%ld cores)\n", (int) (REGION >> 20), secs, nproc,
           sysconf(_SC_NPROCESSORS_ONLN));
    for (k = 0; k < NKINDS; k++) {
        one = run((kind_t) k, secs, 0x2545f4914f6cdd1dULL, &cpu_op);
        many = run_many((kind_t) k, secs, nproc);
        printf("  %-38s %9.0f /s  cpu %7.2f us   %d procs: %9.0f /s\n",
               names[k], one, cpu_op * 1e6, nproc, many);
    }
    printf("  bytes used %llu of %llu, evictions %llu\n",
           avc_shcache_stat(cache, AVC_SHCACHE_BYTES_USED),
           avc_shcache_stat(cache, AVC_SHCACHE_BYTES_TOTAL),
           avc_shcache_stat(cache, AVC_SHCACHE_EVICTIONS));
    avc_shcache_free(cache);
    free(questions);
    return 0;
}
