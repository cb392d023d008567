/*
 * avatarctl ingest-worker: ingestion on another machine (or beside nginx),
 * sharing the queue in PostgreSQL with the nginx workers.
 */
#include "ctl.h"

#include <avatarcore/ingest.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t ingest_stop;

static void
ingest_signal(int sig)
{
    ingest_stop = 1;
}

typedef struct {
    ctl_env_t *env;
    avc_ingest_t *q;
    int once;
    int idle;
    avc_timer_t *tick;
} ingest_ctx_t;

static void
ingest_tick(avc_timer_t *t, void *data)
{
    ingest_ctx_t *c = data;

    if (ingest_stop) {
        c->env->done = 1;
        avc_loop_stop(c->env->loop);
        return;
    }
    /* --once: stop after a few quiet looks at an empty queue */
    if (c->once) {
        if (avc_ingest_busy(c->q)) {
            c->idle = 0;
        } else if (++c->idle > 15) {
            c->env->done = 1;
            avc_loop_stop(c->env->loop);
            return;
        }
        avc_ingest_kick(c->q);
    }
    avc_timer_start(t, 200);
}

static int
ingest_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "database", required_argument, NULL, 'd' },
        { "once", no_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *database = NULL;
    ctl_env_t env;
    ingest_ctx_t c;
    avc_config_t *cfg;
    avc_http_t *http;
    int ch, rc, err;

    memset(&c, 0, sizeof(c));
    while ((ch = getopt_long(argc, argv, ":d:oh", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            database = optarg;
            break;
        case 'o':
            c.once = 1;
            break;
        case 'h':
            return ctl_help(&ctl_cmd_ingest_worker);
        default:
            return ctl_bad_option(&ctl_cmd_ingest_worker, ch, argv);
        }
    }
    rc = ctl_env_open(&env, ctl_database(database));
    if (rc != CTL_OK) {
        return rc;
    }
    cfg = ctl_rag_config();
    http = avc_http_new(env.loop);
    c.env = &env;
    c.q = cfg && http ? avc_ingest_new(env.loop, env.db, http, cfg, &err)
                      : NULL;
    if (c.q == NULL) {
        ctl_err("ingest-worker: cannot start the queue");
        avc_http_free(http);
        avc_config_free(cfg);
        ctl_env_close(&env);
        return CTL_EFAIL;
    }
    signal(SIGINT, ingest_signal);
    signal(SIGTERM, ingest_signal);
    c.tick = avc_timer_new(env.loop, ingest_tick, &c);
    avc_timer_start(c.tick, 200);
    avc_ingest_kick(c.q);
    while (!env.done) {
        avc_loop_run_once(env.loop, 500);
    }
    printf("ingest-worker: %llu document(s) ingested, %llu failed "
           "attempt(s)\n", avc_ingest_stat(c.q, 0), avc_ingest_stat(c.q, 1));
    avc_timer_free(c.tick);
    avc_ingest_free(c.q);
    /* let cancelled work come back before the pool closes */
    avc_loop_run_once(env.loop, 100);
    avc_http_free(http);
    avc_config_free(cfg);
    ctl_env_close(&env);
    return CTL_OK;
}

const ctl_cmd_t ctl_cmd_ingest_worker = {
    "ingest-worker", "[--database URL] [--once]",
    "ingest uploaded documents from the shared queue",
    "  --database URL  PostgreSQL (else DATABASE_URL or AVATAR_DATABASE)\n"
    "  --once          stop when the queue stays empty\n"
    "Embeddings: local unless AVATAR_EMBEDDINGS=openai (OPENAI_API_KEY,\n"
    "OPENAI_BASE_URL, EMBEDDING_MODEL), as the nginx workers use.\n"
    "Vectors: PostgreSQL unless PINECONE_API_KEY and PINECONE_HOST (or\n"
    "PINECONE_INDEX_NAME) are set: then upserted to Pinecone too.\n"
    "Runs until SIGINT or SIGTERM.\n",
    ingest_run
};
