/*
 * Declarations shared by the files of src/rag (avc__ prefix); not
 * installed.
 *
 * The lexical analysis here is the one place where text becomes terms:
 * the local embedder hashes its output, the retriever builds full-text
 * queries and measures query coverage with it.  So a query and a passage
 * always meet on the same normalisation.
 */
#ifndef AVC_RAG_INTERNAL_H
#define AVC_RAG_INTERNAL_H

#include "internal.h"
#include "embedded.h"

#include <avatarcore/db.h>
#include <avatarcore/embed.h>

#include <stddef.h>
#include <stdint.h>

/* data/fi_synonyms.txt is embedded (src/util/embedded.h) */
#define AVC__FI_SYNONYMS  "data/fi_synonyms.txt"

/* a word longer than this is cut (URLs, hashes and noise) */
#define AVC__LX_WORD_MAX  32

/* word classes */
#define AVC__LX_STOP   1        /* function word: no feature of its own */
#define AVC__LX_LIGHT  2        /* frequent, little information: damped */
#define AVC__LX_DIGIT  4        /* contains a digit */

typedef struct {
    uint32_t woff;              /* folded word (lowercase ASCII) in arena */
    uint32_t soff;              /* its Porter stem, in arena */
    uint8_t wlen;
    uint8_t slen;
    uint8_t cls;                /* AVC__LX_* */
    uint8_t span;               /* words the concept's variant covers */
    int32_t concept;            /* concept whose variant starts here, -1 */
} avc__lx_word_t;

/*
 * The analysis of one text: its words in order, each with its stem and
 * class, and the F&I concepts found (longest variant first, not
 * overlapping).  Storage is owned by the analysis.
 */
typedef struct {
    avc__lx_word_t *words;
    size_t n;
    size_t cap;
    char *arena;                /* "word\0stem\0" strings */
    size_t arena_len;
    size_t arena_cap;
    char *fold;                 /* scratch: the folded text */
    size_t fold_cap;
} avc__lx_t;

#define avc__lx_wstr(lx, i)  ((lx)->arena + (lx)->words[i].woff)
#define avc__lx_sstr(lx, i)  ((lx)->arena + (lx)->words[i].soff)

/* Prepare the process-wide tables (thread-safe, once); AVC_OK or
 * AVC_ENOMEM (then every analysis fails: vectors never silently change). */
int avc__lx_init(void);

void avc__lx_init_struct(avc__lx_t *lx);
void avc__lx_free(avc__lx_t *lx);

/*
 * Analyse len bytes of UTF-8 text (invalid bytes are separators).  Words
 * are appended to lx; AVC_OK or AVC_ENOMEM.  Thread-safe.
 */
int avc__lx_analyze(avc__lx_t *lx, const char *text, size_t len);

/* A concept by index: its canonical name and weight (0 < w <= 1). */
size_t avc__lx_concepts(void);
const char *avc__lx_concept_name(int32_t c);
double avc__lx_concept_weight(int32_t c);

/*
 * The variants of concept c, each as its words joined by spaces in the
 * folded (unstemmed) spelling, e.g. "vehicle service contract"; for
 * full-text query expansion.  Borrowed, static.
 */
size_t avc__lx_concept_variants(int32_t c);
const char *avc__lx_concept_variant(int32_t c, size_t i);

/* A hash of the synonym and stopword tables, part of the model name. */
uint32_t avc__lx_tables_hash(void);

/* Porter stemming of a lowercase ASCII word in place; returns the new
 * length.  Exposed for tests. */
size_t avc__lx_stem(char *w, size_t len);

/*
 * The local embedder's model name for a dimension,
 * "avc-local-1-d512-h1a2b3c4d" (written to out, at least 48 bytes).
 */
void avc__embed_local_model(unsigned dim, char *out, size_t n);

/* Embed n texts into out (n * dim floats); thread-safe. */
int avc__embed_local_batch(const char *const *texts, const size_t *lens,
                           size_t n, unsigned dim, float *out,
                           const volatile int *cancel);

/* The OpenAI provider (embed_openai.c), driven by embed.c. */
typedef struct avc__oai_s avc__oai_t;

typedef void (*avc__oai_cb)(int err, float *vectors, size_t n, size_t dim,
                            const char *msg, void *data);

avc__oai_t *avc__oai_new(avc_loop_t *loop, avc_http_t *http,
                         const avc_config_t *cfg, int *err);
void avc__oai_free(avc__oai_t *o);
const char *avc__oai_model(const avc__oai_t *o);
/* the configured dimension, or 0 until the provider told */
size_t avc__oai_dim(const avc__oai_t *o);

typedef struct avc__oai_op_s avc__oai_op_t;

/*
 * Embed n texts: one or more requests (batches of at most 2,048 inputs
 * and about 300,000 tokens), one after the other.  cb gets the vectors
 * (malloc'd, n * dim, handed over: the callee frees them) or an error
 * with a message.  Returns NULL and sets *err when nothing started.
 */
avc__oai_op_t *avc__oai_embed(avc__oai_t *o, const char *const *texts,
                              const size_t *lens, size_t n, avc__oai_cb cb,
                              void *data, int *err);
/* Abort: no callback afterwards. */
void avc__oai_cancel(avc__oai_op_t *op);

/* batch limits, exposed for tests */
#define AVC__OAI_MAX_INPUTS  2048
#define AVC__OAI_MAX_TOKENS  300000

/*
 * The elements of an int8[] as PostgreSQL prints it, "{1,2,3}" or "{}",
 * into *ids (malloc'd, NULL when empty; free() it) and *n: AVC_OK,
 * AVC_EPARSE (not such a literal of positive ids), AVC_ENOMEM.
 */
int avc__ids_parse(const char *lit, int64_t **ids, size_t *n);

/*
 * Index internals for the tests: force a scan kernel by name ("c", "c4",
 * "avx2" ...; NULL: the CPU's best again), and one raw scan of every row
 * at 8 or 4 bits into out[avc_index_size(ix)].
 */
struct avc_index_s;
int avc__index_kernel(const char *name);
int avc__index_scan(const struct avc_index_s *ix, const float *query,
                    int bits, float *out);

/* IEEE half precision, for the index's re-scoring copy */
uint16_t avc__f32_to_f16(float f);
float avc__f16_to_f32(uint16_t h);

/*
 * Re-embedding a dealership's chunks that have no vector of emb's model
 * (src/rag/reembed.c), in batches shared with other workers; the
 * dealership's generation is bumped at the end when any chunk changed.
 * cb (may be NULL) gets the outcome and the number of chunks re-embedded;
 * it is not called after avc__reembed_cancel().  NULL: not started.
 */
typedef struct avc__reembed_s avc__reembed_t;
typedef void (*avc__reembed_cb)(int err, size_t done, void *data);

avc__reembed_t *avc__reembed_start(avc_loop_t *loop, avc_db_t *db,
                                   avc_embedder_t *emb, int64_t dealership_id,
                                   avc__reembed_cb cb, void *data);
void avc__reembed_cancel(avc__reembed_t *re);

#endif /* AVC_RAG_INTERNAL_H */
