/*
 * The offline provider: pocketsphinx (Debian's 5prealpha and its en-us
 * model) on the thread pool.
 *
 * A transcription is one job handed to avc_offload(): decode the audio
 * to PCM16K, find (or build) the language model of its domain, take a
 * decoder for that model, recognise, give the decoder back.  Nothing of
 * it runs on the loop.
 *
 * Models.  Each domain key (a dealership and the generation of its
 * knowledge base) has its own trigram model, built by stt_lm.c from the
 * caller's text and the built-in F&I phrases, together with a decoder
 * dictionary of exactly the model's words: a decoder over a 1,800-word
 * dictionary starts in tens of milliseconds and takes a few megabytes,
 * one over the whole CMU dictionary takes seconds and ninety.  Models
 * are kept in an LRU list bounded in number and in bytes; the F&I-only
 * model (no domain) is kept apart and never evicted.
 *
 * Decoders.  Each model keeps a few idle decoders for reuse, bounded per
 * model and in all; a job that finds none makes one (the model's ARPA
 * text and dictionary go through private temporary files, removed as
 * soon as pocketsphinx has read them).  A decoder is used by one job at
 * a time, so decoders need no lock; the lists do (sx->mu).
 *
 * Lifetimes.  The engine is reference-counted: the client holds one
 * reference and each job another, so that avc_stt_free() while jobs run
 * leaves them a valid engine; the last one out frees it.  A job belongs
 * to the thread pool until its completion runs on the loop; an op that
 * goes first (cancel, deadline) only detaches itself and raises the
 * job's stop flag, which the job reads before its costly steps.
 */
#include "stt_int.h"

#include "embedded.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define AVC_SX_HMM           "/usr/share/pocketsphinx/model/en-us/en-us"
#define AVC_SX_DICT          "/usr/share/pocketsphinx/model/en-us/" \
                             "cmudict-en-us.dict"
#define AVC_SX_PHRASES       "data/fi_phrases.txt"

#define AVC_SX_MODELS_MAX    8              /* keyed models kept */
#define AVC_SX_BYTES_MAX     (96u << 20)    /* their text, in all */
#define AVC_SX_IDLE_MODEL    2              /* idle decoders per model */
#define AVC_SX_IDLE_MAX      4              /* idle decoders in all */
#define AVC_SX_AUDIO_MAX_MS  120000         /* longest audio accepted */
#define AVC_SX_FRAMES_PER_S  100            /* the model's frame rate */
#define AVC_SX_KEY_MAX       256

typedef struct avc_sx_model_s avc_sx_model_t;

struct avc_sx_model_s {
    avc_sx_model_t *prev;       /* the LRU list, most recent first */
    avc_sx_model_t *next;
    char *key;                  /* NULL: the F&I phrases alone */
    avc__buf_t arpa;
    avc__buf_t dict;
    ps_decoder_t *idle[AVC_SX_IDLE_MODEL];
    size_t nidle;
    unsigned refs;              /* jobs using it, + 1 while kept */
    int kept;                   /* in the list (or the F&I slot) */
};

struct avc__sphinx_s {
    pthread_mutex_t mu;
    unsigned refs;              /* the client + running jobs */
    char *hmm;
    char *dict;
    avc_sx_model_t *fi;         /* the F&I-only model, once built */
    avc_sx_model_t *lru;
    size_t nmodels;
    size_t bytes;
    size_t idle;                /* idle decoders in all */
};

struct avc__sphinx_job_s {
    avc__sphinx_t *sx;
    avc_stt_op_t *op;           /* NULL once the op is gone (loop) */
    atomic_int stop;
    void *audio;
    size_t len;
    avc_audio_format_t format;
    char *key;
    char *text;

    /* the outcome, written by the work */
    int rc;
    const char *message;        /* for the client, static */
    char detail[AVC__STT_DETAIL_LEN];
    avc__buf_t hyp;
    avc__buf_t words;
    double confidence;
    unsigned audio_ms;
};

static pthread_once_t avc_sx_once = PTHREAD_ONCE_INIT;

static void
avc_sx_quiet(void)
{
    /* pocketsphinx logs every setting and every utterance to stderr */
    err_set_logfp(NULL);
}

static char *
avc_sx_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p) {
        memcpy(p, s, n);
    }
    return p;
}

/* ------------------------------------------------------------ models */

static size_t
avc_sx_model_bytes(const avc_sx_model_t *m)
{
    return m->arpa.len + m->dict.len;
}

static void
avc_sx_model_free(avc_sx_model_t *m)
{
    size_t i;

    for (i = 0; i < m->nidle; i++) {
        ps_free(m->idle[i]);
    }
    avc__buf_free(&m->arpa);
    avc__buf_free(&m->dict);
    free(m->key);
    free(m);
}

/* drop a reference (under sx->mu); the model to free, or NULL */
static avc_sx_model_t *
avc_sx_model_unref(avc__sphinx_t *sx, avc_sx_model_t *m)
{
    if (--m->refs > 0) {
        return NULL;
    }
    sx->idle -= m->nidle;
    return m;
}

static void
avc_sx_unlink(avc__sphinx_t *sx, avc_sx_model_t *m)
{
    if (m->prev) {
        m->prev->next = m->next;
    } else {
        sx->lru = m->next;
    }
    if (m->next) {
        m->next->prev = m->prev;
    }
    m->prev = m->next = NULL;
}

static void
avc_sx_push_front(avc__sphinx_t *sx, avc_sx_model_t *m)
{
    m->prev = NULL;
    m->next = sx->lru;
    if (sx->lru) {
        sx->lru->prev = m;
    }
    sx->lru = m;
}

static avc_sx_model_t *
avc_sx_lookup(avc__sphinx_t *sx, const char *key)
{
    avc_sx_model_t *m;

    for (m = sx->lru; m; m = m->next) {
        if (strcmp(m->key, key) == 0) {
            return m;
        }
    }
    return NULL;
}

/*
 * Keep m under its key (under sx->mu), evicting the least recently used
 * beyond the bounds; the evicted models no job uses are chained on
 * *dead for the caller to free outside the lock.
 */
static void
avc_sx_keep(avc__sphinx_t *sx, avc_sx_model_t *m, avc_sx_model_t **dead)
{
    avc_sx_model_t *old, *last;

    m->kept = 1;
    m->refs++;
    avc_sx_push_front(sx, m);
    sx->nmodels++;
    sx->bytes += avc_sx_model_bytes(m);
    while (sx->nmodels > 1 && (sx->nmodels > AVC_SX_MODELS_MAX
                               || sx->bytes > AVC_SX_BYTES_MAX))
    {
        for (last = sx->lru; last->next; last = last->next) {
            /* nothing */
        }
        avc_sx_unlink(sx, last);
        last->kept = 0;
        sx->nmodels--;
        sx->bytes -= avc_sx_model_bytes(last);
        avc_log(AVC_LOG_INFO, "stt: pocketsphinx: model \"%s\" evicted",
                last->key);
        old = avc_sx_model_unref(sx, last);
        if (old) {
            old->next = *dead;
            *dead = old;
        }
    }
}

/* a new model of the F&I phrases and text (may be NULL) */
static avc_sx_model_t *
avc_sx_build(avc__sphinx_t *sx, const char *key, const char *text,
    avc__sphinx_job_t *job)
{
    avc__lm_source_t src[2];
    avc__lm_stats_t st;
    avc_sx_model_t *m;
    avc__lex_t *lex;
    size_t n = 1;
    int rc;

    src[0].text = avc__embedded_file(AVC_SX_PHRASES, &src[0].len);
    src[0].comments = 1;
    if (text) {
        src[1].text = text;
        src[1].len = strlen(text);
        src[1].comments = 0;
        n = 2;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL || (key && (m->key = avc_sx_strdup(key)) == NULL)) {
        free(m);
        job->rc = AVC_ENOMEM;
        return NULL;
    }
    avc__buf_init(&m->arpa);
    avc__buf_init(&m->dict);
    /* the whole dictionary is read for the build only (~10 MB) */
    lex = avc__lex_load(sx->dict, &rc);
    if (lex == NULL) {
        snprintf(job->detail, sizeof(job->detail), "cannot read the "
                 "dictionary %s: %s", sx->dict, rc == AVC_ESYS
                 ? strerror(errno) : avc_strerror(rc));
        avc_sx_model_free(m);
        job->rc = rc == AVC_ENOMEM ? AVC_ENOMEM : AVC_ESYS;
        return NULL;
    }
    rc = avc__lm_build(lex, src, n, &m->arpa, &m->dict, &st);
    avc__lex_free(lex);
    if (rc != AVC_OK) {
        snprintf(job->detail, sizeof(job->detail), "cannot build the "
                 "language model: %s", avc_strerror(rc));
        avc_sx_model_free(m);
        job->rc = rc == AVC_ENOMEM ? AVC_ENOMEM : AVC_ESYS;
        return NULL;
    }
    avc_log(AVC_LOG_INFO, "stt: pocketsphinx: model \"%s\": %zu words, "
            "%zu bigrams, %zu trigrams from %zu sentences", key ? key : "",
            st.vocab, st.ngrams[1], st.ngrams[2], st.sentences);
    return m;
}

/*
 * The model for the job (a reference the caller drops): the one kept
 * under its key; else, with text, a new one (kept under the key when it
 * has one); else the F&I phrases' own.
 */
static avc_sx_model_t *
avc_sx_model_get(avc__sphinx_t *sx, avc__sphinx_job_t *job)
{
    const char *key = job->key, *text = job->text;
    avc_sx_model_t *m, *have, *dead = NULL;

    pthread_mutex_lock(&sx->mu);
    if (key && (m = avc_sx_lookup(sx, key)) != NULL) {
        m->refs++;
        avc_sx_unlink(sx, m);
        avc_sx_push_front(sx, m);
        pthread_mutex_unlock(&sx->mu);
        return m;
    }
    if (text == NULL && sx->fi) {
        m = sx->fi;
        m->refs++;
        pthread_mutex_unlock(&sx->mu);
        return m;
    }
    pthread_mutex_unlock(&sx->mu);

    /* two jobs may build the same model at once: the first kept wins */
    m = avc_sx_build(sx, text ? key : NULL, text, job);
    if (m == NULL) {
        return NULL;
    }
    m->refs = 1;
    pthread_mutex_lock(&sx->mu);
    if (text == NULL) {
        if (sx->fi) {
            have = sx->fi;
            have->refs++;
            pthread_mutex_unlock(&sx->mu);
            avc_sx_model_free(m);
            return have;
        }
        m->kept = 1;
        m->refs++;
        sx->fi = m;
    } else if (key) {
        have = avc_sx_lookup(sx, key);
        if (have) {
            have->refs++;
            pthread_mutex_unlock(&sx->mu);
            avc_sx_model_free(m);
            return have;
        }
        avc_sx_keep(sx, m, &dead);
    }
    pthread_mutex_unlock(&sx->mu);
    while (dead) {
        have = dead->next;
        avc_sx_model_free(dead);
        dead = have;
    }
    return m;
}

static void
avc_sx_model_put(avc__sphinx_t *sx, avc_sx_model_t *m)
{
    avc_sx_model_t *dead;

    pthread_mutex_lock(&sx->mu);
    dead = avc_sx_model_unref(sx, m);
    pthread_mutex_unlock(&sx->mu);
    if (dead) {
        avc_sx_model_free(dead);
    }
}

/* ---------------------------------------------------------- decoders */

/* text into a new private temporary file; its path in path */
static int
avc_sx_tmpfile(const char *text, size_t len, char *path, size_t pathn)
{
    const char *dir = getenv("TMPDIR");
    ssize_t w;
    size_t off = 0;
    int fd;

    if (dir == NULL || *dir == '\0') {
        dir = "/tmp";
    }
    if ((size_t) snprintf(path, pathn, "%s/avc-stt-XXXXXX", dir) >= pathn) {
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    while (off < len) {
        w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t) w;
    }
    if (close(fd) != 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

static ps_decoder_t *
avc_sx_decoder_new(avc__sphinx_t *sx, avc_sx_model_t *m,
    avc__sphinx_job_t *job)
{
    char dpath[4096], lpath[4096];
    ps_decoder_t *ps = NULL;
    cmd_ln_t *cfg;

    if (avc_sx_tmpfile(m->dict.data, m->dict.len, dpath, sizeof(dpath))
        != 0)
    {
        snprintf(job->detail, sizeof(job->detail), "cannot write a "
                 "temporary file: %s", strerror(errno));
        return NULL;
    }
    if (avc_sx_tmpfile(m->arpa.data, m->arpa.len, lpath, sizeof(lpath))
        != 0)
    {
        snprintf(job->detail, sizeof(job->detail), "cannot write a "
                 "temporary file: %s", strerror(errno));
        unlink(dpath);
        return NULL;
    }
    /* -topn: the Gaussians scored per frame and codebook; 8 instead of 4
     * costs a little time and recognises noticeably better with this
     * semi-continuous model */
    cfg = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", sx->hmm, "-dict", dpath,
                      "-lm", lpath, "-topn", "8", NULL);
    if (cfg != NULL) {
        ps = ps_init(cfg);
        cmd_ln_free_r(cfg);
    }
    unlink(dpath);
    unlink(lpath);
    if (ps == NULL) {
        snprintf(job->detail, sizeof(job->detail), "pocketsphinx could not "
                 "load the model %s with a language model of %zu bytes",
                 sx->hmm, m->arpa.len);
    }
    return ps;
}

static ps_decoder_t *
avc_sx_decoder_get(avc__sphinx_t *sx, avc_sx_model_t *m,
    avc__sphinx_job_t *job)
{
    ps_decoder_t *ps = NULL;

    pthread_mutex_lock(&sx->mu);
    if (m->nidle > 0) {
        ps = m->idle[--m->nidle];
        sx->idle--;
    }
    pthread_mutex_unlock(&sx->mu);
    return ps ? ps : avc_sx_decoder_new(sx, m, job);
}

static void
avc_sx_decoder_put(avc__sphinx_t *sx, avc_sx_model_t *m, ps_decoder_t *ps)
{
    int kept = 0;

    pthread_mutex_lock(&sx->mu);
    if (m->kept && m->nidle < AVC_SX_IDLE_MODEL && sx->idle < AVC_SX_IDLE_MAX)
    {
        m->idle[m->nidle++] = ps;
        sx->idle++;
        kept = 1;
    }
    pthread_mutex_unlock(&sx->mu);
    if (!kept) {
        ps_free(ps);
    }
}

/* ------------------------------------------------------- recognition */

static int
avc_sx_filler(const char *w)
{
    return *w == '<' || *w == '[' || *w == '+';
}

/* the word without its "(2)" */
static size_t
avc_sx_word_len(const char *w)
{
    const char *p = strchr(w, '(');

    return p && p > w ? (size_t) (p - w) : strlen(w);
}

/* decode pcm with ps: job->hyp, words, confidence */
static int
avc_sx_recognise(avc__sphinx_job_t *job, ps_decoder_t *ps,
    const int16_t *pcm, size_t samples)
{
    logmath_t *lm;
    ps_seg_t *seg;
    const char *w;
    int32 score, prob;
    int sf, ef, rc = AVC_OK;
    size_t n, nwords = 0;

    if (ps_start_utt(ps) < 0) {
        snprintf(job->detail, sizeof(job->detail), "ps_start_utt failed");
        return AVC_ESYS;
    }
    /* the whole utterance at once: the model normalises its cepstra over
     * all of it (cmn batch), which streaming would not */
    if (samples > 0
        && ps_process_raw(ps, pcm, samples, FALSE, TRUE) < 0)
    {
        ps_end_utt(ps);
        snprintf(job->detail, sizeof(job->detail), "ps_process_raw failed");
        return AVC_ESYS;
    }
    if (ps_end_utt(ps) < 0) {
        snprintf(job->detail, sizeof(job->detail), "ps_end_utt failed");
        return AVC_ESYS;
    }
    lm = ps_get_logmath(ps);
    rc |= avc__buf_append(&job->words, "[", 1);
    for (seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
        w = ps_seg_word(seg);
        if (w == NULL || avc_sx_filler(w)) {
            continue;
        }
        n = avc_sx_word_len(w);
        ps_seg_frames(seg, &sf, &ef);
        if (nwords > 0) {
            rc |= avc__buf_append(&job->hyp, " ", 1);
        }
        rc |= avc__buf_append(&job->hyp, w, n);
        /* the words are the dictionary's: lower-case letters and
         * apostrophes, nothing to escape */
        rc |= avc__buf_printf(&job->words, "%s{\"word\":\"%.*s\","
                              "\"start\":%.2f,\"end\":%.2f}",
                              nwords ? "," : "", (int) n, w,
                              (double) sf / AVC_SX_FRAMES_PER_S,
                              (double) (ef + 1) / AVC_SX_FRAMES_PER_S);
        nwords++;
    }
    rc |= avc__buf_append(&job->words, "]", 1);
    if (rc != AVC_OK) {
        return AVC_ENOMEM;
    }
    job->confidence = 0;
    if (nwords > 0) {
        (void) ps_get_hyp(ps, &score);
        prob = ps_get_prob(ps);
        (void) score;
        /* the posterior of the whole hypothesis, as a mean per word: a
         * sentence's posterior falls with its length */
        job->confidence = exp(logmath_log_to_ln(lm, prob) / (double) nwords);
        if (!(job->confidence >= 0)) {
            job->confidence = 0;
        } else if (job->confidence > 1) {
            job->confidence = 1;
        }
    }
    return AVC_OK;
}

static void
avc_sx_work(void *arg)
{
    avc__sphinx_job_t *job = arg;
    avc__sphinx_t *sx = job->sx;
    avc_sx_model_t *m = NULL;
    ps_decoder_t *ps = NULL;
    int16_t *pcm = NULL;
    size_t samples = 0;
    int rc;

    pthread_once(&avc_sx_once, avc_sx_quiet);
    rc = avc_audio_decode(job->audio, job->len, job->format,
                          AVC_SX_AUDIO_MAX_MS, &pcm, &samples);
    free(job->audio);
    job->audio = NULL;
    if (rc != AVC_OK) {
        job->rc = rc;
        job->message = rc == AVC_ETOOBIG ? "The audio is too long"
                       : rc == AVC_ENOMEM ? NULL
                       : "The audio could not be decoded";
        snprintf(job->detail, sizeof(job->detail), "the audio (%zu bytes) "
                 "did not decode: %s", job->len, avc_strerror(rc));
        if (rc != AVC_ETOOBIG && rc != AVC_ENOMEM) {
            job->rc = AVC_EPARSE;
        }
        return;
    }
    job->audio_ms = (unsigned) (samples * 1000 / AVC__STT_RATE);
    if (atomic_load(&job->stop)) {
        goto done;
    }
    m = avc_sx_model_get(sx, job);
    if (m == NULL) {
        if (job->rc == AVC_OK) {
            job->rc = AVC_ESYS;
        }
        goto done;
    }
    if (atomic_load(&job->stop)) {
        goto done;
    }
    ps = avc_sx_decoder_get(sx, m, job);
    if (ps == NULL) {
        job->rc = AVC_ESYS;
        goto done;
    }
    job->rc = avc_sx_recognise(job, ps, pcm, samples);

done:
    if (ps) {
        avc_sx_decoder_put(sx, m, ps);
    }
    if (m) {
        avc_sx_model_put(sx, m);
    }
    free(pcm);
}

/* ------------------------------------------------------------ the job */

static void
avc_sx_ref(avc__sphinx_t *sx)
{
    pthread_mutex_lock(&sx->mu);
    sx->refs++;
    pthread_mutex_unlock(&sx->mu);
}

static void
avc_sx_destroy(avc__sphinx_t *sx)
{
    avc_sx_model_t *m;

    while ((m = sx->lru) != NULL) {
        avc_sx_unlink(sx, m);
        avc_sx_model_free(m);
    }
    if (sx->fi) {
        avc_sx_model_free(sx->fi);
    }
    pthread_mutex_destroy(&sx->mu);
    free(sx->hmm);
    free(sx->dict);
    free(sx);
}

void
avc__sphinx_release(avc__sphinx_t *sx)
{
    unsigned left;

    if (sx == NULL) {
        return;
    }
    pthread_mutex_lock(&sx->mu);
    left = --sx->refs;
    pthread_mutex_unlock(&sx->mu);
    if (left == 0) {
        avc_sx_destroy(sx);
    }
}

static void
avc_sx_job_free(avc__sphinx_job_t *job)
{
    free(job->audio);
    free(job->key);
    free(job->text);
    avc__buf_free(&job->hyp);
    avc__buf_free(&job->words);
    free(job);
}

static void
avc_sx_done(void *arg, int status)
{
    avc__sphinx_job_t *job = arg;
    avc_stt_op_t *op = job->op;
    avc__stt_out_t out;
    int rc = status != AVC_OK ? status : job->rc;

    if (op != NULL) {
        op->job = NULL;
        avc__stt_enter(op);
        if (rc == AVC_OK) {
            memset(&out, 0, sizeof(out));
            out.text = job->hyp.data ? job->hyp.data : "";
            out.confidence = job->confidence;
            out.words_json = job->words.data;
            out.audio_ms = job->audio_ms;
            op->audio_ms = job->audio_ms;
            avc__stt_finish(op, AVC_OK, &out, NULL);
        } else {
            if (job->detail[0]) {
                snprintf(op->detail, sizeof(op->detail), "%s", job->detail);
            }
            op->audio_ms = job->audio_ms;
            avc__stt_finish(op, rc, NULL, job->message);
        }
        avc__stt_leave(op);
    }
    avc__sphinx_release(job->sx);
    avc_sx_job_free(job);
}

int
avc__sphinx_start(avc_stt_op_t *op, const avc_stt_request_t *req)
{
    avc__sphinx_t *sx = op->stt->sphinx;
    avc__sphinx_job_t *job;
    const char *key = req->domain_key;
    int rc, need_text;

    if (key && *key == '\0') {
        key = NULL;
    }
    if (key && strlen(key) > AVC_SX_KEY_MAX) {
        return AVC_EINVAL;
    }
    job = calloc(1, sizeof(*job));
    if (job == NULL) {
        return AVC_ENOMEM;
    }
    atomic_init(&job->stop, 0);
    avc__buf_init(&job->hyp);
    avc__buf_init(&job->words);
    job->len = req->len;
    job->format = req->format;
    job->audio = malloc(req->len);
    job->key = key ? avc_sx_strdup(key) : NULL;
    /* the material matters only for a model not built yet */
    need_text = req->domain_text != NULL
                && (key == NULL || !avc__sphinx_has_domain(sx, key));
    job->text = need_text ? avc_sx_strdup(req->domain_text) : NULL;
    if (job->audio == NULL || (key && job->key == NULL)
        || (need_text && job->text == NULL))
    {
        avc_sx_job_free(job);
        return AVC_ENOMEM;
    }
    memcpy(job->audio, req->audio, req->len);
    job->sx = sx;
    job->op = op;
    avc_sx_ref(sx);
    rc = avc_offload(op->stt->loop, avc_sx_work, avc_sx_done, job);
    if (rc != AVC_OK) {
        avc__sphinx_release(sx);
        avc_sx_job_free(job);
        return rc;
    }
    op->job = job;
    return AVC_OK;
}

void
avc__sphinx_stop(avc_stt_op_t *op)
{
    avc__sphinx_job_t *job = op->job;

    if (job) {
        job->op = NULL;
        atomic_store(&job->stop, 1);
        op->job = NULL;
    }
}

int
avc__sphinx_has_domain(avc__sphinx_t *sx, const char *key)
{
    int found;

    if (key == NULL || *key == '\0') {
        return 0;
    }
    pthread_mutex_lock(&sx->mu);
    found = avc_sx_lookup(sx, key) != NULL;
    pthread_mutex_unlock(&sx->mu);
    return found;
}

/* ------------------------------------------------------------ setting */

static int
avc_sx_bad(const char *key, const char *value, const char *why)
{
    avc_log(AVC_LOG_ERR, "stt: bad setting %s \"%s\": %s", key, value, why);
    return AVC_EINVAL;
}

avc__sphinx_t *
avc__sphinx_new(const avc_config_t *cfg, int *err)
{
    const char *hmm = avc_config_get(cfg, "stt.hmm", AVC_SX_HMM);
    const char *dict = avc_config_get(cfg, "stt.dict", AVC_SX_DICT);
    char path[4096];
    avc__sphinx_t *sx;
    struct stat st;

    /* read at start-up, so that a wrong path fails the configuration
     * instead of every transcription */
    if ((size_t) snprintf(path, sizeof(path), "%s/mdef", hmm) >= sizeof(path)
        || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    {
        *err = avc_sx_bad("stt.hmm", hmm, "not an acoustic model directory "
                          "(no mdef; install pocketsphinx-en-us)");
        return NULL;
    }
    if (stat(dict, &st) != 0 || !S_ISREG(st.st_mode)
        || access(dict, R_OK) != 0)
    {
        *err = avc_sx_bad("stt.dict", dict, "not a readable dictionary");
        return NULL;
    }
    if (avc__embedded_file(AVC_SX_PHRASES, NULL) == NULL) {
        *err = AVC_ESTATE;
        return NULL;
    }
    sx = calloc(1, sizeof(*sx));
    if (sx == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    if (pthread_mutex_init(&sx->mu, NULL) != 0) {
        free(sx);
        *err = AVC_ENOMEM;
        return NULL;
    }
    sx->refs = 1;
    sx->hmm = avc_sx_strdup(hmm);
    sx->dict = avc_sx_strdup(dict);
    if (sx->hmm == NULL || sx->dict == NULL) {
        avc_sx_destroy(sx);
        *err = AVC_ENOMEM;
        return NULL;
    }
    *err = AVC_OK;
    return sx;
}
