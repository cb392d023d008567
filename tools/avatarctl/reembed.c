/*
 * avatarctl reembed: give every chunk a vector of the current embedder's
 * model now, rather than at each dealership's next retrieval.
 *
 * After a change of embedder (or an upgrade that changes the local
 * embedder's model) the stored vectors of the old model are left out of
 * the vector search until re-embedded.  The nginx workers do it when they
 * next load a dealership's index; this command does it for every
 * dealership (or one) at once, through the library's own re-embedding:
 * batches shared with running workers, the generation bumped at the end
 * so that they load the new vectors.  The dealerships go one at a time.
 */
#include "ctl.h"

#include <avatarcore/embed.h>
#include <avatarcore/http.h>
#include <avatarcore/retrieve.h>

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ctl_reembed_run(int argc, char **argv);

const ctl_cmd_t ctl_cmd_reembed = {
    "reembed", "[--dealership ID] [--database URL]",
    "re-embed the chunks without a vector of the current embedder",
    "Options:\n"
    "      --dealership ID  only this dealership (default: every one)\n"
    "  -d, --database URL   the database (default: $DATABASE_URL, then\n"
    "                       $AVATAR_DATABASE)\n"
    "  -h, --help           this help\n"
    "\n"
    "The embedder is the nginx workers': local unless\n"
    "AVATAR_EMBEDDINGS=openai (OPENAI_API_KEY, OPENAI_BASE_URL,\n"
    "EMBEDDING_MODEL).  Safe while nginx runs: the workers share the\n"
    "batches and load the new vectors when a dealership is done.  With\n"
    "Pinecone as the vector store (PINECONE_API_KEY), upload the documents\n"
    "again instead.\n",
    ctl_reembed_run
};

static const char ctl_reembed_sql_list[] =
    "SELECT d.id, count(c.id) FROM dealerships d "
    "LEFT JOIN document_chunks c ON c.dealership_id = d.id"
    " AND c.embedding_model IS DISTINCT FROM $1 "
    "WHERE $2::bigint IS NULL OR d.id = $2::bigint "
    "GROUP BY d.id ORDER BY d.id";

typedef struct {
    ctl_env_t env;
    avc_retriever_t *rt;
    const char *model;
    int64_t *ids;               /* dealerships with stale chunks */
    size_t n;
    size_t next;
    size_t chunks;              /* re-embedded, all dealerships */
    size_t failed;              /* dealerships */
} ctl_reembed_t;

static void ctl_reembed_next(ctl_reembed_t *c);

static void
ctl_reembed_done(int err, size_t chunks, void *data)
{
    ctl_reembed_t *c = data;
    int64_t id = c->ids[c->next - 1];

    c->chunks += chunks;
    if (err == AVC_OK) {
        printf("dealership %" PRId64 ": %zu chunk(s) re-embedded\n", id,
               chunks);
    } else {
        ctl_err("dealership %" PRId64 ": re-embedding stopped after %zu "
                "chunk(s): %s", id, chunks, avc_strerror(err));
        c->failed++;
    }
    fflush(stdout);
    ctl_reembed_next(c);
}

static void
ctl_reembed_next(ctl_reembed_t *c)
{
    int err;

    while (c->next < c->n) {
        err = avc_retriever_reembed(c->rt, c->ids[c->next++],
                                    ctl_reembed_done, c);
        if (err == AVC_OK) {
            return;
        }
        ctl_err("dealership %" PRId64 ": cannot re-embed: %s",
                c->ids[c->next - 1], avc_strerror(err));
        c->failed++;
    }
    if (c->failed == 0) {
        printf("reembed: %zu chunk(s) of %zu dealership(s) re-embedded with "
               "model %s\n", c->chunks, c->n, c->model);
    }
    c->env.rc = c->failed ? CTL_EFAIL : CTL_OK;
    c->env.done = 1;
}

static void
ctl_reembed_listed(int err, avc_db_res_t *res, void *data)
{
    ctl_reembed_t *c = data;
    int i, rows;

    if (err != AVC_OK) {
        if (err == AVC_EDB) {
            ctl_err("cannot list the chunks: %s (SQLSTATE %s)",
                    avc_db_res_error(res), avc_db_res_sqlstate(res));
        } else {
            ctl_err("cannot list the chunks: %s", avc_strerror(err));
        }
        c->env.rc = ctl_exit_code(err);
        c->env.done = 1;
        return;
    }
    rows = avc_db_res_rows(res);
    c->ids = calloc((size_t) rows + 1, sizeof(*c->ids));
    if (c->ids == NULL) {
        c->env.rc = CTL_EFAIL;
        c->env.done = 1;
        return;
    }
    for (i = 0; i < rows; i++) {
        if (strcmp(avc_db_res_value(res, i, 1), "0") != 0) {
            c->ids[c->n++] = strtoll(avc_db_res_value(res, i, 0), NULL, 10);
        }
    }
    if (rows == 0) {
        ctl_err("no such dealership");
        c->env.rc = CTL_EFAIL;
        c->env.done = 1;
        return;
    }
    if (c->n == 0) {
        printf("reembed: nothing to do, every chunk has a vector of model "
               "%s\n", c->model);
    }
    ctl_reembed_next(c);
}

static int
ctl_reembed_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dealership", required_argument, NULL, 'D' },
        { "database", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *database = NULL, *did = NULL, *p[2];
    avc_config_t *cfg = NULL;
    avc_http_t *http = NULL;
    avc_embedder_t *emb = NULL;
    ctl_reembed_t c;
    char *end;
    long long v;
    int ch, rc, err;

    memset(&c, 0, sizeof(c));
    while ((ch = getopt_long(argc, argv, ":d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'D':
            did = optarg;
            break;
        case 'd':
            database = optarg;
            break;
        case 'h':
            return ctl_help(&ctl_cmd_reembed);
        default:
            return ctl_bad_option(&ctl_cmd_reembed, ch, argv);
        }
    }
    if (optind < argc) {
        return ctl_usage(&ctl_cmd_reembed, "unexpected argument");
    }
    if (did) {
        v = strtoll(did, &end, 10);
        if (*did < '0' || *did > '9' || *end || v <= 0) {
            return ctl_usage(&ctl_cmd_reembed,
                             "--dealership takes a dealership's id");
        }
    }
    cfg = ctl_rag_config();
    if (cfg == NULL) {
        return CTL_EFAIL;
    }
    if (strcmp(avc_config_get(cfg, "vector_store.provider", "postgres"),
               "pinecone") == 0)
    {
        ctl_err("reembed: the vectors are in Pinecone; upload the "
                "documents again to embed them with another model");
        avc_config_free(cfg);
        return CTL_EFAIL;
    }
    rc = ctl_env_open(&c.env, ctl_database(database));
    if (rc != CTL_OK) {
        avc_config_free(cfg);
        return rc;
    }
    rc = CTL_EFAIL;
    http = avc_http_new(c.env.loop);
    emb = http ? avc_embedder_new(c.env.loop, http, cfg, &err) : NULL;
    if (emb == NULL) {
        ctl_err("cannot create the embedder: %s",
                avc_strerror(http ? err : AVC_ENOMEM));
        goto out;
    }
    c.rt = avc_retriever_new(c.env.loop, c.env.db, emb, cfg);
    if (c.rt == NULL) {
        ctl_err("cannot create the retriever");
        goto out;
    }
    c.model = avc_embedder_model(emb);
    p[0] = c.model;
    p[1] = did;
    if (avc_db_query(c.env.db, ctl_reembed_sql_list, 0, 2, p, 0,
                     ctl_reembed_listed, &c) == NULL)
    {
        goto out;
    }
    rc = ctl_env_run(&c.env);

out:
    avc_retriever_free(c.rt);
    avc_embedder_free(emb);
    avc_http_free(http);
    avc_config_free(cfg);
    ctl_env_close(&c.env);
    free(c.ids);
    return rc;
}
