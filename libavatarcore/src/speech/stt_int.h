/*
 * Declarations shared by the speech-to-text files of src/speech (avc__
 * prefix); not installed.
 *
 *   stt.c          configuration, the dispatcher, the life of an op
 *   stt_openai.c   POST {base_url}/audio/transcriptions (multipart)
 *   stt_sphinx.c   pocketsphinx on the thread pool: language models per
 *                  domain key (LRU) and a small pool of decoders each
 *   stt_lm.c       the pronunciation lexicon, the text normaliser and the
 *                  trigram language-model builder (ARPA)
 *
 * The life of an op (as for llm.h's answers):
 *
 *   linked     in stt->ops from avc_stt_transcribe() until it finishes or
 *              is cancelled; op->stt is set exactly while linked
 *   finished   avc__stt_finish() ran: done has been (or is being) called;
 *              a cancel is then a no-op
 *   cancelled  avc_stt_cancel() or avc_stt_free(): no callback follows
 *
 * Every entry from the loop into an op (the HTTP client's done, the
 * deadline timer, a finished decoding job) is bracketed by
 * avc__stt_enter() and avc__stt_leave(): the caller's callback may
 * cancel ops or free the whole client from inside, so an op's memory is
 * released only by the outermost leave (or at once by a cancel from
 * outside any entry).
 */
#ifndef AVC_STT_INT_H
#define AVC_STT_INT_H

#include "internal.h"

#include <avatarcore/speech.h>

#define AVC__STT_RATE        16000  /* PCM16K */
#define AVC__STT_LANG_LEN    16
#define AVC__STT_DETAIL_LEN  256

typedef enum {
    AVC__STT_SPHINX = 0,
    AVC__STT_OPENAI
} avc__stt_kind_t;

typedef struct avc__sphinx_s avc__sphinx_t;
typedef struct avc__sphinx_job_s avc__sphinx_job_t;

struct avc_stt_s {
    avc_loop_t *loop;
    avc_http_t *http;           /* borrowed; may be NULL offline */
    avc__stt_kind_t kind;
    const char *provider;       /* static: "openai", "pocketsphinx" */
    char language[AVC__STT_LANG_LEN + 1];
    unsigned timeout_ms;        /* one transcription, 0: none */

    /* openai */
    char *url;                  /* {base_url}/audio/transcriptions */
    char *auth;                 /* "Bearer <key>": a secret */
    char *key;                  /* masked in logged provider messages */
    char *model;
    unsigned attempts;          /* >= 1 */
    unsigned backoff_ms;

    /* pocketsphinx: shared with the jobs on the thread pool */
    avc__sphinx_t *sphinx;

    avc__list_t ops;            /* running, and how many */
};

struct avc_stt_op_s {
    avc__link_t link;           /* in stt->ops; first: a link is the op */
    avc_stt_t *stt;             /* NULL once unlinked */
    avc__stt_kind_t kind;
    const char *provider;       /* static */
    avc_stt_done_cb done;
    void *data;
    unsigned busy;              /* entries running, see above */
    unsigned canceled:1;
    unsigned finished:1;
    avc_timer_t *timer;         /* the deadline, or an early failure */
    int early_err;              /* reported from the timer when set */
    const char *early_msg;      /* static */
    unsigned audio_ms;          /* known from the request (PCM), else 0 */
    char language[AVC__STT_LANG_LEN + 1];

    /* openai */
    avc_http_req_t *req;        /* running, or NULL */

    /* pocketsphinx */
    avc__sphinx_job_t *job;     /* on the thread pool, or NULL */

    char detail[AVC__STT_DETAIL_LEN];   /* for the log, never a client */
};

/* what a provider hands to avc__stt_finish() on success */
typedef struct {
    const char *text;
    double confidence;
    const char *words_json;     /* may be NULL */
    unsigned audio_ms;
} avc__stt_out_t;

/* stt.c */

void avc__stt_enter(avc_stt_op_t *op);
void avc__stt_leave(avc_stt_op_t *op);

/*
 * End the op: err AVC_OK with out, or an error with message (fit for a
 * client; NULL: the default for err).  The provider's resources are
 * released first, then done is called once.  A no-op on a finished or
 * cancelled op.
 */
void avc__stt_finish(avc_stt_op_t *op, int err, const avc__stt_out_t *out,
                     const char *message);

/*
 * Fail the op from the loop soon (never from within transcribe): err
 * with message (static, fit for a client).  For a provider's start that
 * finds the request unusable after the op exists.
 */
void avc__stt_fail_soon(avc_stt_op_t *op, int err, const char *message);

/* s[0..n) as one printable log line in out, the key masked. */
void avc__stt_snippet(const avc_stt_t *stt, const char *s, size_t n,
                      char *out, size_t outn);

/* stt_openai.c */

/* Start the request (callbacks only later, from the loop).  AVC_OK, or
 * an error and nothing started. */
int avc__stt_openai_start(avc_stt_op_t *op, const avc_stt_request_t *req);
/* Abort the request (its connection is closed); no callback. */
void avc__stt_openai_stop(avc_stt_op_t *op);

/*
 * Parse a verbose_json (or json) answer of len bytes.  On AVC_OK, *text
 * (trimmed) and *words_json are new strings (words_json NULL when the
 * answer has no words), *confidence 0-1 and *audio_ms (0 when the answer
 * gives no duration).  AVC_EPROTO for anything else, with a reason in
 * why (for the log).  Thread-safe.
 */
int avc__stt_openai_parse(const char *body, size_t len, char **text,
                          char **words_json, double *confidence,
                          unsigned *audio_ms, char *why, size_t whyn);

/* stt_sphinx.c */

/*
 * The offline engine: stt.hmm and stt.dict (checked here), pools and
 * models.  It is reference-counted: the client holds one reference and
 * every running job another, so a job that outlives avc_stt_free()
 * still finds it.
 */
avc__sphinx_t *avc__sphinx_new(const avc_config_t *cfg, int *err);
void avc__sphinx_release(avc__sphinx_t *sx);
int avc__sphinx_has_domain(avc__sphinx_t *sx, const char *key);
/* Start decoding on the thread pool.  AVC_OK or an error (nothing
 * started). */
int avc__sphinx_start(avc_stt_op_t *op, const avc_stt_request_t *req);
/* Detach the job from the op (it stops at its next check); no callback. */
void avc__sphinx_stop(avc_stt_op_t *op);

/* stt_lm.c: the lexicon */

typedef struct avc__lex_s avc__lex_t;

/*
 * A pronunciation dictionary in CMU format, one "word PH ON ES" per line,
 * alternatives as "word(2) ...".  From a file (read whole) or from text
 * (copied).  Words are kept lower-case.  Read-only afterwards: safe to
 * share between threads.  NULL with *err AVC_ESYS (the file), AVC_EPARSE
 * (no entry) or AVC_ENOMEM.
 */
avc__lex_t *avc__lex_load(const char *path, int *err);
avc__lex_t *avc__lex_parse(const char *text, size_t len, int *err);
void avc__lex_free(avc__lex_t *lex);
size_t avc__lex_size(const avc__lex_t *lex);

/*
 * The pronunciations of word (lower-case), appended to out one per line:
 * the lexicon's own, else made from known parts (a possessive or plural
 * of a known word, two known words run together) or from the built-in
 * list of F&I terms.  Returns how many (0: unknown).
 */
size_t avc__lex_resolve(const avc__lex_t *lex, const char *word,
                        avc__buf_t *out);

/* stt_lm.c: the normaliser */

/* One sentence: n words (lower-case, borrowed for the call).  Return
 * AVC_OK to go on, or an error that stops the walk. */
typedef int (*avc__lm_sentence_cb)(char *const *words, size_t n,
                                   void *data);

/*
 * Cut text into sentences of spoken words: lower-case, numbers, money,
 * percentages, ordinals and years in words ("$1,450" gives "one thousand
 * four hundred fifty dollars"), abbreviations expanded ("F&I" gives "f and
 * i", "APR" "a p r", "e.g." "for example"), punctuation dropped.  With
 * lex, a word that cannot be resolved (avc__lex_resolve) ends the
 * sentence there: the words on each side become sentences of their own,
 * so that no n-gram spans a gap.  With comments, lines starting with '#'
 * are skipped.  AVC_OK, AVC_ENOMEM or the callback's error.
 */
int avc__lm_normalise(const char *text, size_t len, const avc__lex_t *lex,
                      int comments, avc__lm_sentence_cb cb, void *data);

/* stt_lm.c: the model */

typedef struct {
    const char *text;
    size_t len;
    int comments;               /* skip lines that start with '#' */
} avc__lm_source_t;

typedef struct {
    size_t sentences;
    size_t tokens;              /* words counted, </s> not included */
    size_t vocab;               /* unigrams, <s> and </s> included */
    size_t ngrams[3];           /* written per order */
    double discount[3];         /* absolute discount per order (1: n/a) */
} avc__lm_stats_t;

/*
 * Build a trigram model of the sources: interpolated absolute
 * discounting (Ney's discount per order from the counts of counts),
 * written in ARPA back-off form with log10 probabilities and back-off
 * weights; only words lex resolves.  A corpus too large for the bounds
 * is pruned by count (the mass of what is dropped goes to the back-off).
 * arpa receives the model, dict the pronunciations of its words (CMU
 * format, for the decoder's -dict).  AVC_OK; AVC_ENOTFOUND when no word
 * at all was usable; AVC_ENOMEM.  Thread-safe (lex is only read).
 */
int avc__lm_build(const avc__lex_t *lex, const avc__lm_source_t *src,
                  size_t nsrc, avc__buf_t *arpa, avc__buf_t *dict,
                  avc__lm_stats_t *stats);

#endif /* AVC_STT_INT_H */
