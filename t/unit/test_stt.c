/*
 * Speech-to-text: configuration; the language-model builder (the text
 * normaliser, the lexicon's guesses, a well-formed ARPA model whose
 * probabilities sum to one and which pocketsphinx reads); the
 * OpenAI-compatible client against tools/mock/openai-audio.pl (the
 * multipart request byte for byte, PCM wrapped as WAV, each failure mode,
 * retries, the deadline, cancelling); and the offline recogniser on
 * sentences spoken by espeak-ng.
 *
 *   build/t/test_stt [SECTION...]     e.g. "build/t/test_stt offline"
 *
 * Sections: config lm openai errors cancel offline.  The mock is
 * started by this test (perl, from $AVC_TOP, default ".") with a pipe on
 * its stdin, so it exits with the test however it ends.  espeak-ng is
 * required: without it the offline section fails.
 *
 * Time bounds are generous margins, so that valgrind or a busy machine
 * does not make the test flaky.
 */
#include "tap.h"
#include "mock.h"

#include <avatarcore/http.h>
#include <avatarcore/speech.h>
#include "../../libavatarcore/src/speech/stt_int.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "sk-test-stt-0123456789"
#define DICT "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"

static const char *top = ".";

static avc_loop_t *loop;
static avc_http_t *http;
static mock_t mk;
static char base[128];
static char tmpdir[256];

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* the log, watched for the key and for model builds */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int key_logged;
static int log_lines;
static int models_built;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    pthread_mutex_lock(&log_mu);
    log_lines++;
    if (strstr(msg, KEY) != NULL || strstr(msg, "sk-wrong-777") != NULL) {
        key_logged = 1;
    }
    if (strstr(msg, "pocketsphinx: model") && strstr(msg, "words")) {
        models_built++;
    }
    if (getenv("AVC_TEST_VERBOSE")) {
        printf("# log: %s\n", msg);
    }
    pthread_mutex_unlock(&log_mu);
}

static int
built(void)
{
    int n;

    pthread_mutex_lock(&log_mu);
    n = models_built;
    pthread_mutex_unlock(&log_mu);
    return n;
}

/* a transcription as the caller sees it */

typedef struct {
    avc_stt_t *stt;
    avc_stt_op_t *op;
    int done;
    int calls;
    int err;
    char text[1024];
    char words[4096];
    char provider[32];
    char error[256];
    double confidence;
    unsigned audio_ms;
    int free_in_cb;             /* avc_stt_free from the callback */
    uint64_t start;
    uint64_t end;
} heard_t;

static void
copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void
on_heard(int err, const avc_stt_result_t *res, void *data)
{
    heard_t *h = data;

    h->calls++;
    h->done = 1;
    h->end = now_ms();
    h->err = err;
    copy(h->text, sizeof(h->text), res->text);
    copy(h->words, sizeof(h->words), res->words_json);
    copy(h->provider, sizeof(h->provider), res->provider);
    copy(h->error, sizeof(h->error), res->error);
    h->confidence = res->confidence;
    h->audio_ms = res->audio_ms;
    /* a cancel from the callback is a no-op */
    avc_stt_cancel(h->op);
    if (h->free_in_cb) {
        avc_stt_free(h->stt);
        h->stt = NULL;
    }
}

static void
run_until(int *flag, uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (!*flag && now_ms() < end) {
        avc_loop_run_once(loop, 20);
    }
}

static void
run_for(uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end) {
        avc_loop_run_once(loop, 10);
    }
}

/* a client: the NULL-terminated key/value pairs of kv */
static avc_stt_t *
new_stt(avc_config_t **cfgp, const char *const *kv, int *errp)
{
    avc_config_t *cfg = avc_config_new();
    avc_stt_t *stt;
    int err, i;

    for (i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        avc_config_set(cfg, kv[i], kv[i + 1]);
    }
    stt = avc_stt_new(loop, http, cfg, &err);
    if (errp) {
        *errp = err;
    }
    if (stt == NULL) {
        avc_config_free(cfg);
        return NULL;
    }
    *cfgp = cfg;
    return stt;
}

static avc_stt_t *
mock_stt(avc_config_t **cfgp, const char *const *extra)
{
    const char *kv[32];
    int n = 0, i;

    kv[n++] = "stt.provider";
    kv[n++] = "openai";
    kv[n++] = "stt.base_url";
    kv[n++] = base;
    kv[n++] = "stt.key";
    kv[n++] = KEY;
    kv[n++] = "stt.backoff";
    kv[n++] = "20";
    for (i = 0; extra && extra[i] && n < 30; i++) {
        kv[n++] = extra[i];
    }
    kv[n] = NULL;
    return new_stt(cfgp, kv, NULL);
}

/* transcribe with stt, wait up to ms */
static int
hear(heard_t *h, avc_stt_t *stt, const void *audio, size_t len,
    avc_audio_format_t f, const char *key, const char *domain, uint64_t ms)
{
    avc_stt_request_t req;
    int free_in_cb = h->free_in_cb, rc;

    memset(h, 0, sizeof(*h));
    h->free_in_cb = free_in_cb;
    h->stt = stt;
    memset(&req, 0, sizeof(req));
    req.audio = audio;
    req.len = len;
    req.format = f;
    req.domain_key = key;
    req.domain_text = domain;
    h->start = now_ms();
    rc = avc_stt_transcribe(stt, &req, on_heard, h, &h->op);
    if (rc != AVC_OK) {
        printf("# avc_stt_transcribe: %s\n", avc_strerror(rc));
        return rc;
    }
    if (h->done) {
        printf("# a callback from within avc_stt_transcribe\n");
        return -1;
    }
    run_until(&h->done, ms);
    return AVC_OK;
}

/* the mock */

static json_t *
mock_call(const char *method, const char *path, const char *body)
{
    char url[256], *resp = NULL;
    size_t len = 0;
    json_t *j;
    int status = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mk.port, path);
    if (avc_http_fetch_sync(method, url, NULL, body,
                            body ? strlen(body) : 0, 5000, 0, &status,
                            &resp, &len) != AVC_OK || status != 200)
    {
        free(resp);
        return NULL;
    }
    j = json_loadb(resp, len, 0, NULL);
    free(resp);
    return j;
}

static void
mock_next(const char *json)
{
    json_decref(mock_call("POST", "/_next", json));
}

static void
mock_clear(void)
{
    json_decref(mock_call("DELETE", "/_requests", NULL));
    json_decref(mock_call("DELETE", "/_next", NULL));
}

/* the records of the requests so far (new) */
static json_t *
records(void)
{
    json_t *all = mock_call("GET", "/_requests", NULL);
    json_t *r = json_incref(json_object_get(all, "requests"));

    json_decref(all);
    return r ? r : json_array();
}

static const char *
jstr(const json_t *o, const char *path)
{
    char key[64];
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int) (dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    return json_string_value(json_object_get(o, path));
}

static long long
jint(const json_t *o, const char *path)
{
    char key[64];
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int) (dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    o = json_object_get(o, path);
    return json_is_integer(o) ? json_integer_value(o) : -1;
}

/* wait for the mock to record outcome for its last request */
static int
wait_outcome(const char *outcome, uint64_t ms)
{
    uint64_t end = now_ms() + ms;
    json_t *recs;
    const char *o;
    int ok = 0;

    while (!ok && now_ms() < end) {
        recs = records();
        o = jstr(json_array_get(recs, json_array_size(recs) - 1),
                 "outcome");
        ok = o && strcmp(o, outcome) == 0;
        json_decref(recs);
        if (!ok) {
            run_for(20);
        }
    }
    return ok;
}

/* audio */

/* a WAV file of mono s16le PCM at rate, a tone of ms (0: silence) */
static void *
make_wav(unsigned rate, unsigned ms, int tone, size_t *len)
{
    size_t n = (size_t) rate * ms / 1000, i;
    int16_t *pcm = malloc(n * 2 + 2);
    void *wav = NULL;

    for (i = 0; i < n; i++) {
        pcm[i] = tone ? (int16_t) (8000 * sin(2 * M_PI * 440 * i / rate))
                      : 0;
    }
    if (avc_audio_wav(pcm, n, rate, &wav, len) != AVC_OK) {
        wav = NULL;
    }
    free(pcm);
    return wav;
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t) n + 1);
    if (b == NULL || fread(b, 1, (size_t) n, f) != (size_t) n) {
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = '\0';
    fclose(f);
    *len = (size_t) n;
    return b;
}

/* the md5 of p[0..n) as hex, by md5sum (the test has no MD5 of its own) */
static void
md5_hex(const void *p, size_t n, char out[33])
{
    char path[512], cmd[600];
    FILE *f;

    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/md5.bin", tmpdir);
    f = fopen(path, "wb");
    if (f == NULL) {
        return;
    }
    fwrite(p, 1, n, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "md5sum '%s'", path);
    f = popen(cmd, "r");
    if (f) {
        if (fscanf(f, "%32s", out) != 1) {
            out[0] = '\0';
        }
        pclose(f);
    }
    remove(path);
}

/* ------------------------------------------------------------ config */

static void
test_config(void)
{
    static const char *const openai_nokey[] = {
        "stt.provider", "openai", NULL };
    static const char *const local_nokey[] = {
        "stt.provider", "openai", "stt.base_url", "http://127.0.0.1:9/v1",
        NULL };
    static const char *const keyed[] = { "stt.key", KEY, NULL };
    static const char *const bad_prov[] = { "stt.provider", "vosk", NULL };
    static const char *const bad_url[] = {
        "stt.key", KEY, "stt.base_url", "ftp://x", NULL };
    static const char *const bad_lang[] = { "stt.language", "english!",
                                            NULL };
    static const char *const bad_timeout[] = { "stt.timeout", "-1", NULL };
    static const char *const bad_retries[] = { "stt.retries", "11", NULL };
    static const char *const bad_hmm[] = { "stt.hmm", "/nonexistent/hmm",
                                           NULL };
    static const char *const bad_dict[] = { "stt.dict", "/nonexistent.dict",
                                            NULL };
    static const char *const bad_model[] = {
        "stt.key", KEY, "stt.model", "", NULL };
    avc_config_t *cfg = NULL;
    avc_stt_t *stt;
    avc_stt_request_t req;
    heard_t h = { 0 };
    int err;

    stt = new_stt(&cfg, NULL, &err);
    TAP_OK(stt != NULL && strcmp(avc_stt_provider(stt), "pocketsphinx")
           == 0, "config: no key means pocketsphinx");
    if (stt) {
        TAP_OK(!avc_stt_has_domain(stt, "d1.g1"),
               "config: no offline model yet");
        TAP_OK(!avc_stt_has_domain(stt, NULL), "config: no key, no model");
        TAP_IS(avc_stt_active(stt), 0, "config: nothing active");
        memset(&req, 0, sizeof(req));
        TAP_IS(avc_stt_transcribe(stt, &req, on_heard, &h, NULL),
               AVC_EINVAL, "config: no audio is refused at once");
        req.audio = "x";
        req.len = 1;
        req.format = (avc_audio_format_t) 99;
        TAP_IS(avc_stt_transcribe(stt, &req, on_heard, &h, NULL),
               AVC_EINVAL, "config: a bad format is refused at once");
        req.format = AVC_AUDIO_WAV;
        req.language = "not a language";
        TAP_IS(avc_stt_transcribe(stt, &req, on_heard, &h, NULL),
               AVC_EINVAL, "config: a bad language is refused at once");
        req.language = NULL;
        TAP_IS(avc_stt_transcribe(stt, &req, NULL, &h, NULL), AVC_EINVAL,
               "config: no callback is refused at once");
        avc_stt_free(stt);
        avc_config_free(cfg);
    }
    stt = new_stt(&cfg, keyed, &err);
    TAP_OK(stt != NULL && strcmp(avc_stt_provider(stt), "openai") == 0,
           "config: a key means openai");
    if (stt) {
        TAP_OK(avc_stt_has_domain(stt, "anything"),
               "config: a cloud provider has every domain");
        avc_stt_free(stt);
        avc_config_free(cfg);
    }
    stt = new_stt(&cfg, openai_nokey, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL,
           "config: openai at OpenAI needs a key");
    stt = new_stt(&cfg, local_nokey, &err);
    TAP_OK(stt != NULL, "config: a local server needs no key");
    if (stt) {
        avc_stt_free(stt);
        avc_config_free(cfg);
    }
    stt = new_stt(&cfg, bad_prov, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL, "config: unknown provider");
    stt = new_stt(&cfg, bad_url, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL, "config: base_url not http");
    stt = new_stt(&cfg, bad_lang, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL, "config: bad language");
    stt = new_stt(&cfg, bad_timeout, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL, "config: negative timeout");
    stt = new_stt(&cfg, bad_retries, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL, "config: too many retries");
    stt = new_stt(&cfg, bad_hmm, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL,
           "config: a missing acoustic model fails at start-up");
    stt = new_stt(&cfg, bad_dict, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL,
           "config: a missing dictionary fails at start-up");
    stt = new_stt(&cfg, bad_model, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL, "config: empty model");

    cfg = avc_config_new();
    avc_config_set(cfg, "stt.key", KEY);
    stt = avc_stt_new(loop, NULL, cfg, &err);
    TAP_OK(stt == NULL && err == AVC_EINVAL,
           "config: openai needs an HTTP client");
    avc_config_free(cfg);
    avc_stt_free(NULL);
    avc_stt_cancel(NULL);
    TAP_IS(avc_stt_active(NULL), 0, "config: NULL is idle");
}

/* ---------------------------------------------------------------- lm */

typedef struct {
    char text[4096];
    size_t len;
    int sentences;
} sent_t;

static int
collect(char *const *w, size_t n, void *data)
{
    sent_t *s = data;
    size_t i;

    for (i = 0; i < n; i++) {
        s->len += (size_t) snprintf(s->text + s->len,
                                    sizeof(s->text) - s->len, "%s%s",
                                    i ? " " : "", w[i]);
    }
    s->len += (size_t) snprintf(s->text + s->len, sizeof(s->text) - s->len,
                                " | ");
    s->sentences++;
    return AVC_OK;
}

static void
norm_is(const avc__lex_t *lex, const char *in, const char *want)
{
    sent_t s;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = avc__lm_normalise(in, strlen(in), lex, 1, collect, &s);
    TAP_OK(rc == AVC_OK && strcmp(s.text, want) == 0, "lm: normalise "
           "\"%s\"", in);
    if (strcmp(s.text, want) != 0) {
        printf("#   got  '%s'\n#   want '%s'\n", s.text, want);
    }
}

/* an ARPA file parsed back */
typedef struct {
    size_t declared[4];
    size_t counted[4];
    json_t *p[4];               /* "w1 w2" -> log10 p */
    json_t *bow[4];             /* "w1 w2" -> log10 bow */
    json_t *vocab;              /* word -> 1 */
    int bad_lines;
    int prob_over_zero;
    int missing_bow;            /* a context without a back-off weight */
    int missing_prefix;         /* an n-gram whose history is absent */
    int end_seen;
} arpa_t;

static void
arpa_parse(arpa_t *a, char *text)
{
    char *line, *save = NULL, *tok[6], *s2;
    int order = 0, n, i;
    size_t k;
    double p;
    char key[512];

    memset(a, 0, sizeof(*a));
    for (i = 0; i < 4; i++) {
        a->p[i] = json_object();
        a->bow[i] = json_object();
    }
    a->vocab = json_object();
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
    {
        if (strcmp(line, "\\data\\") == 0) {
            order = 0;
            continue;
        }
        if (sscanf(line, "ngram %d=%zu", &n, &k) == 2 && n >= 1 && n <= 3) {
            a->declared[n] = k;
            continue;
        }
        if (sscanf(line, "\\%d-grams:", &n) == 1 && n >= 1 && n <= 3) {
            order = n;
            continue;
        }
        if (strcmp(line, "\\end\\") == 0) {
            a->end_seen = 1;
            order = 0;
            continue;
        }
        if (order == 0) {
            continue;
        }
        n = 0;
        for (s2 = strtok(line, " \t"); s2 && n < 6; s2 = strtok(NULL, " \t"))
        {
            tok[n++] = s2;
        }
        if (n != order + 1 && n != order + 2) {
            a->bad_lines++;
            continue;
        }
        p = strtod(tok[0], NULL);
        if (p > 0) {
            a->prob_over_zero++;
        }
        key[0] = '\0';
        for (i = 1; i <= order; i++) {
            strncat(key, tok[i], sizeof(key) - strlen(key) - 2);
            if (i < order) {
                strcat(key, " ");
            }
        }
        json_object_set_new(a->p[order], key, json_real(p));
        if (n == order + 2) {
            json_object_set_new(a->bow[order], key,
                                json_real(strtod(tok[order + 1], NULL)));
        }
        if (order == 1) {
            json_object_set_new(a->vocab, key, json_true());
        }
        a->counted[order]++;
    }
}

static void
arpa_free(arpa_t *a)
{
    int i;

    for (i = 0; i < 4; i++) {
        json_decref(a->p[i]);
        json_decref(a->bow[i]);
    }
    json_decref(a->vocab);
}

static double
arpa_get(json_t *o, const char *key, double def)
{
    json_t *v = json_object_get(o, key);

    return v ? json_real_value(v) : def;
}

/* log10 p(w | h), h of 0-2 words ("" or "a" or "a b"), by back-off */
static double
arpa_prob(const arpa_t *a, const char *h, const char *w)
{
    char key[512];
    const char *sp;

    if (*h == '\0') {
        return arpa_get(a->p[1], w, -99);
    }
    snprintf(key, sizeof(key), "%s %s", h, w);
    sp = strchr(h, ' ');
    if (json_object_get(a->p[sp ? 3 : 2], key)) {
        return arpa_get(a->p[sp ? 3 : 2], key, -99);
    }
    return arpa_get(a->bow[sp ? 2 : 1], h, 0)
           + arpa_prob(a, sp ? sp + 1 : "", w);
}

/* sum over the vocabulary of p(w | h) */
static double
arpa_sum(const arpa_t *a, const char *h)
{
    const char *w;
    json_t *v;
    double sum = 0;

    json_object_foreach(a->vocab, w, v) {
        if (strcmp(w, "<s>") != 0) {
            sum += pow(10, arpa_prob(a, h, w));
        }
    }
    return sum;
}

static void
test_lm(void)
{
    static const char dict_text[] =
        ";;; a small dictionary\n"
        "a AH\na(2) EY\nand AE N D\nb B IY\nc S IY\n"
        "contract K AA N T R AE K T\n"
        "cover K AH V ER\ncovers K AH V ER Z\ndoes D AH Z\n"
        "dollars D AA L ER Z\n"
        "f EH F\ni AY\nis IH Z\nit IH T\nkey K IY\nline L AY N\n"
        "loan L OW N\n"
        "office AO F AH S\np P IY\npercent P ER S EH N T\nr AA R\n"
        "rate R EY T\n"
        "road R OW D\nguard G AA R D\nservice S ER V AH S\nthe DH AH\n"
        "vehicle V IY HH IH K AH L\nwhat W AH T\nv V IY\ns EH S\nto T UW\n"
        "value V AE L Y UW\nfive F AY V\nhundred HH AH N D R AH D\n"
        "fifty F IH F T IY\nthousand TH AW Z AH N D\nmister M IH S T ER\n"
        "smith S M IH TH\npaid P EY D\nnine N AY N\npoint P OY N T\n"
        "seventy S EH V AH N T IY\nthree TH R IY\neighty EY T IY\n"
        "four F AO R\nmonths M AH N TH S\nof AH V\nterms T ER M Z\non AA N\n"
        "twenty T W EH N T IY\nfirst F ER S T\nzero Z IY R OW\n"
        "one W AH N\ntwo T UW\nnumber N AH M B ER\nfor F AO R\n"
        "example IH G Z AE M P AH L\nnineteen N AY N T IY N\n"
        "nineties N AY N T IY Z\n";
    static const char corpus[] =
        "# a comment line, skipped\n"
        "What does the vehicle service contract cover?\n"
        "The service contract covers the vehicle.  What does it cover?\n"
        "The F&I office: the APR is 5.9 percent.\n"
        "Keyline's Roadguard covers the vehicle.\n"
        "The vehicle service contract is the contract.\n";
    avc__lex_t *lex, *big;
    avc__buf_t arpa, dict, out;
    avc__lm_source_t src;
    avc__lm_stats_t st;
    arpa_t a;
    const char *w;
    json_t *v;
    char path[512], *copy_arpa;
    double sum, worst = 0;
    int err, rc, bad_sum = 0, contexts = 0;
    size_t n;
    ngram_model_t *ngm;
    logmath_t *lmath;
    FILE *f;

    lex = avc__lex_parse(dict_text, sizeof(dict_text) - 1, &err);
    if (!TAP_OK(lex != NULL, "lm: a lexicon from text")) {
        return;
    }
    TAP_IS(avc__lex_size(lex), 59, "lm: every entry read, the comment not");

    /* the lexicon's guesses */
    avc__buf_init(&out);
    n = avc__lex_resolve(lex, "a", &out);
    TAP_OK(n == 2 && strcmp(out.data, "AH\nEY\n") == 0,
           "lm: alternative pronunciations");
    avc__buf_reset(&out);
    n = avc__lex_resolve(lex, "roadguard", &out);
    TAP_OK(n == 1 && strcmp(out.data, "R OW D G AA R D\n") == 0,
           "lm: two known words run together");
    avc__buf_reset(&out);
    n = avc__lex_resolve(lex, "keyline's", &out);
    TAP_OK(n == 1 && strcmp(out.data, "K IY L AY N Z\n") == 0,
           "lm: the possessive of a compound (%s)", out.data);
    avc__buf_reset(&out);
    n = avc__lex_resolve(lex, "contracts", &out);
    TAP_OK(n == 1 && strcmp(out.data, "K AA N T R AE K T S\n") == 0,
           "lm: a plural after a voiceless consonant");
    avc__buf_reset(&out);
    n = avc__lex_resolve(lex, "services", &out);
    TAP_OK(n == 1 && strcmp(out.data, "S ER V AH S IH Z\n") == 0,
           "lm: a plural after a sibilant");
    avc__buf_reset(&out);
    n = avc__lex_resolve(lex, "ofac", &out);
    TAP_OK(n == 1 && strcmp(out.data, "OW F AE K\n") == 0,
           "lm: a built-in term of the trade");
    TAP_IS(avc__lex_resolve(lex, "zzqx", NULL), 0, "lm: an unknown word");
    TAP_IS(avc__lex_resolve(lex, "Contract", NULL), 0,
           "lm: words are looked up in lower case only");
    avc__buf_free(&out);

    /* the normaliser, without a lexicon (nothing is dropped) */
    norm_is(NULL, "What does the vehicle service contract cover?",
            "what does the vehicle service contract cover | ");
    norm_is(NULL, "The F&I office sells a VSC for $1,450.",
            "the f and i office sells a v s c for one thousand four "
            "hundred fifty dollars | ");
    norm_is(NULL, "Mr. Smith paid $1.5 million, e.g. 150% of MSRP!",
            "mister smith paid one point five million dollars for example "
            "one hundred fifty percent of m s r p | ");
    norm_is(NULL, "The APR is 5.9% (0.125) on terms of 73-84 months.",
            "the a p r is five point nine percent zero point one two five "
            "on terms of seventy three to eighty four months | ");
    norm_is(NULL, "In 2024 and the 1990s; the 21st, 2nd and 100th.",
            "in twenty twenty four and the nineteen nineties | the twenty "
            "first second and one hundredth | ");
    norm_is(NULL, "3 years/36,000 miles at 9:30, $19.99 or $40k",
            "three years thirty six thousand miles at nine thirty nineteen "
            "dollars and ninety nine cents or forty thousand dollars | ");
    norm_is(NULL, "Keystone\xe2\x80\x99s loan-to-value \xe2\x80\x94 "
            "\xe2\x80\x9cU.S.\xe2\x80\x9d lenders\xe2\x80\x99 VSCs\xc2\xa0"
            "#5",
            "keystone's loan to value u s lenders v s c number five | ");
    norm_is(NULL, "# only a comment\n\nLine one\nLine two",
            "line one | line two | ");
    /* with the lexicon: an unknown word cuts the sentence */
    norm_is(lex, "What does the zzqx service contract cover?",
            "what does the | service contract cover | ");
    norm_is(lex, "Caf\xc3\xa9 vehicle.", "vehicle | ");

    /* the model */
    memset(&src, 0, sizeof(src));
    src.text = corpus;
    src.len = sizeof(corpus) - 1;
    src.comments = 1;
    avc__buf_init(&arpa);
    avc__buf_init(&dict);
    rc = avc__lm_build(lex, &src, 1, &arpa, &dict, &st);
    TAP_IS(rc, AVC_OK, "lm: built");
    TAP_IS(st.sentences, 7, "lm: sentences counted (\"Keyline's\" "
           "resolves as a compound, the colon ends one)");
    TAP_OK(st.discount[1] > 0 && st.discount[1] < 1 && st.discount[2] > 0
           && st.discount[2] < 1, "lm: discounts in (0, 1): %.3f %.3f",
           st.discount[1], st.discount[2]);
    copy_arpa = strdup(arpa.data ? arpa.data : "");
    arpa_parse(&a, copy_arpa);
    TAP_OK(a.end_seen && a.bad_lines == 0, "lm: ARPA sections and lines "
           "well-formed");
    TAP_OK(a.declared[1] == a.counted[1] && a.declared[2] == a.counted[2]
           && a.declared[3] == a.counted[3] && a.counted[3] > 0,
           "lm: the counts header matches (%zu %zu %zu)", a.counted[1],
           a.counted[2], a.counted[3]);
    TAP_OK(a.declared[1] == st.vocab && a.declared[2] == st.ngrams[1]
           && a.declared[3] == st.ngrams[2], "lm: the stats agree");
    TAP_IS(a.prob_over_zero, 0, "lm: every log10 probability <= 0");
    TAP_OK(json_real_value(json_object_get(a.p[1], "<s>")) == -99,
           "lm: <s> has no probability of its own");
    /* every word but </s> starts some bigram: it needs a back-off
     * weight; every bigram that starts a trigram too */
    json_object_foreach(a.p[1], w, v) {
        if (strcmp(w, "</s>") != 0 && json_object_get(a.bow[1], w) == NULL)
        {
            a.missing_bow++;
        }
    }
    json_object_foreach(a.p[3], w, v) {
        char hist[256];
        const char *sp = strrchr(w, ' ');

        snprintf(hist, sizeof(hist), "%.*s", (int) (sp - w), w);
        if (json_object_get(a.bow[2], hist) == NULL) {
            a.missing_bow++;
        }
        if (json_object_get(a.p[2], hist) == NULL
            || json_object_get(a.p[2], strchr(w, ' ') + 1) == NULL)
        {
            a.missing_prefix++;
        }
    }
    TAP_IS(a.missing_bow, 0, "lm: back-off weights present for every "
           "context");
    TAP_IS(a.missing_prefix, 0, "lm: every trigram's history and suffix "
           "are bigrams");
    TAP_OK(json_object_get(a.vocab, "roadguard")
           && json_object_get(a.vocab, "keyline's")
           && json_object_get(a.vocab, "p")
           && json_object_get(a.vocab, "nine")
           && !json_object_get(a.vocab, "APR")
           && !json_object_get(a.vocab, "comment"),
           "lm: the vocabulary is the normalised words, comments skipped");
    /* a proper distribution after each history */
    sum = arpa_sum(&a, "");
    worst = fabs(sum - 1);
    json_object_foreach(a.p[1], w, v) {
        if (strcmp(w, "</s>") != 0) {
            sum = arpa_sum(&a, w);
            contexts++;
            if (fabs(sum - 1) > worst) {
                worst = fabs(sum - 1);
            }
            bad_sum += fabs(sum - 1) > 1e-3;
        }
    }
    json_object_foreach(a.bow[2], w, v) {
        sum = arpa_sum(&a, w);
        contexts++;
        if (fabs(sum - 1) > worst) {
            worst = fabs(sum - 1);
        }
        bad_sum += fabs(sum - 1) > 1e-3;
    }
    TAP_OK(bad_sum == 0 && contexts > 20, "lm: p(. | h) sums to 1 after "
           "each of %d histories (worst off by %.2g)", contexts, worst);
    TAP_OK(arpa_prob(&a, "vehicle service", "contract")
           > arpa_prob(&a, "vehicle service", "vehicle") + 0.5,
           "lm: seen continuations are likelier");
    TAP_OK(strstr(dict.data ? dict.data : "", "roadguard R OW D G AA R D\n")
           && strstr(dict.data ? dict.data : "", "a(2) EY\n")
           && !strstr(dict.data ? dict.data : "", "<s>"),
           "lm: the decoder dictionary has the model's words");
    arpa_free(&a);
    free(copy_arpa);

    /* pocketsphinx reads it */
    snprintf(path, sizeof(path), "%s/t.arpa", tmpdir);
    f = fopen(path, "w");
    if (f) {
        fwrite(arpa.data, 1, arpa.len, f);
        fclose(f);
    }
    err_set_logfp(NULL);
    lmath = logmath_init(1.0001, 0, 0);
    ngm = ngram_model_read(NULL, path, NGRAM_ARPA, lmath);
    TAP_OK(ngm != NULL && (size_t) ngram_model_get_size(ngm) == 3
           && (size_t) ngram_model_get_counts(ngm)[0] == st.vocab,
           "lm: pocketsphinx reads the model");
    if (ngm) {
        ngram_model_free(ngm);
    }
    logmath_free(lmath);
    remove(path);
    avc__buf_free(&arpa);
    avc__buf_free(&dict);

    /* nothing usable */
    src.text = "zzqx qqq.";
    src.len = 9;
    avc__buf_init(&arpa);
    avc__buf_init(&dict);
    TAP_IS(avc__lm_build(lex, &src, 1, &arpa, &dict, NULL), AVC_ENOTFOUND,
           "lm: no known word, no model");
    avc__buf_free(&arpa);
    avc__buf_free(&dict);
    avc__lex_free(lex);

    /* Debian's dictionary */
    big = avc__lex_load(DICT, &err);
    TAP_OK(big != NULL && avc__lex_size(big) > 100000,
           "lm: the CMU dictionary loads (%zu entries)",
           avc__lex_size(big));
    TAP_OK(avc__lex_load("/nonexistent.dict", &err) == NULL
           && err == AVC_ESYS, "lm: a missing dictionary is an error");
    avc__lex_free(big);
}

/* ------------------------------------------------------------ openai */

static void
test_openai(void)
{
    static const char *const lang_de[] = { "stt.language", "de-DE", NULL };
    avc_config_t *cfg;
    avc_stt_t *stt;
    json_t *recs, *r, *file;
    void *wav;
    size_t wlen, i;
    int16_t pcm[8000];
    char md5[33];
    heard_t h = { 0 };
    json_t *words;

    mock_clear();
    stt = mock_stt(&cfg, NULL);
    if (!TAP_OK(stt != NULL, "openai: client")) {
        return;
    }
    TAP_STR(avc_stt_provider(stt), "openai", "openai: provider");

    /* a WAV file goes as it is */
    wav = make_wav(16000, 1500, 1, &wlen);
    mock_next("{\"text\": \"What does GAP cover?\", \"words\": 1,"
              " \"avg_logprob\": -0.2, \"no_speech_prob\": 0.1}");
    hear(&h, stt, wav, wlen, AVC_AUDIO_WAV, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_OK, "openai: transcribed (%s)",
           avc_strerror(h.err));
    TAP_STR(h.text, "What does GAP cover?", "openai: the text, trimmed");
    TAP_STR(h.provider, "openai", "openai: the result names the provider");
    TAP_IS(h.audio_ms, 1500, "openai: the duration from the answer");
    TAP_OK(fabs(h.confidence - exp(-0.2) * 0.9) < 0.001,
           "openai: confidence from avg_logprob and no_speech_prob (%.3f)",
           h.confidence);
    words = json_loads(h.words, 0, NULL);
    TAP_OK(json_array_size(words) == 4
           && strcmp(jstr(json_array_get(words, 3), "word"), "cover?") == 0
           && json_real_value(json_object_get(json_array_get(words, 1),
                                              "start")) == 0.3,
           "openai: words with times (%s)", h.words);
    json_decref(words);
    recs = records();
    r = json_array_get(recs, 0);
    file = json_array_get(json_object_get(r, "files"), 0);
    md5_hex(wav, wlen, md5);
    TAP_IS(json_array_size(recs), 1, "openai: one request");
    TAP_OK(jstr(r, "path")
           && strcmp(jstr(r, "path"), "/v1/audio/transcriptions") == 0,
           "openai: POST {base_url}/audio/transcriptions");
    TAP_STR(jstr(r, "headers.authorization"), "Bearer " KEY,
            "openai: the Bearer key");
    TAP_OK(jstr(r, "content_type")
           && strncmp(jstr(r, "content_type"), "multipart/form-data; "
                      "boundary=", 30) == 0,
           "openai: multipart/form-data with a boundary");
    TAP_OK(json_array_size(json_object_get(r, "parts")) == 4
           && strcmp(json_string_value(json_array_get(
                  json_object_get(r, "parts"), 0)), "file") == 0
           && strcmp(json_string_value(json_array_get(
                  json_object_get(r, "parts"), 1)), "model") == 0
           && strcmp(json_string_value(json_array_get(
                  json_object_get(r, "parts"), 2)), "language") == 0
           && strcmp(json_string_value(json_array_get(
                  json_object_get(r, "parts"), 3)), "response_format")
              == 0, "openai: the parts file, model, language, "
           "response_format");
    TAP_STR(jstr(r, "fields.model"), "whisper-1", "openai: model whisper-1");
    TAP_STR(jstr(r, "fields.language"), "en", "openai: language en");
    TAP_STR(jstr(r, "fields.response_format"), "verbose_json",
            "openai: response_format verbose_json");
    TAP_STR(jstr(file, "filename"), "audio.wav", "openai: file audio.wav");
    TAP_STR(jstr(file, "content_type"), "audio/wav",
            "openai: its content type");
    TAP_IS(jint(file, "bytes"), wlen, "openai: the file's length");
    TAP_STR(jstr(file, "md5"), md5, "openai: the file's bytes as received");
    TAP_IS(jint(file, "wav.rate"), 16000, "openai: the mock read a WAV");
    json_decref(recs);
    free(wav);

    /* raw PCM is wrapped as WAV */
    mock_clear();
    for (i = 0; i < 8000; i++) {
        pcm[i] = (int16_t) (i * 7);
    }
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_OK, "openai: PCM transcribed");
    TAP_STR(h.text, "What does the vehicle service contract cover?",
            "openai: the mock's default text");
    TAP_IS(h.audio_ms, 500, "openai: PCM's length");
    TAP_OK(strcmp(h.words, "") == 0, "openai: no words when none given");
    recs = records();
    file = json_array_get(json_object_get(json_array_get(recs, 0), "files"),
                          0);
    TAP_STR(jstr(file, "filename"), "audio.wav", "openai: PCM sent as "
            "audio.wav");
    TAP_STR(jstr(file, "content_type"), "audio/wav", "openai: audio/wav");
    TAP_OK(jint(file, "wav.rate") == 16000 && jint(file, "wav.channels") == 1
           && jint(file, "wav.bits") == 16 && jint(file, "wav.format") == 1
           && jint(file, "wav.data_bytes") == (long long) sizeof(pcm)
           && jint(file, "bytes") == (long long) sizeof(pcm) + 44,
           "openai: a valid WAV of 16 kHz mono 16-bit with every sample");
    json_decref(recs);

    /* other containers go as they are, named by their format */
    mock_clear();
    hear(&h, stt, "\x1a\x45\xdf\xa3 webm bytes", 16, AVC_AUDIO_WEBM, NULL,
         NULL, 10000);
    TAP_OK(h.done && h.err == AVC_OK, "openai: WebM transcribed");
    recs = records();
    file = json_array_get(json_object_get(json_array_get(recs, 0), "files"),
                          0);
    TAP_OK(jstr(file, "filename") && strcmp(jstr(file, "filename"),
                                            "audio.webm") == 0
           && strcmp(jstr(file, "content_type"), "audio/webm") == 0
           && jint(file, "bytes") == 16
           && json_is_null(json_object_get(file, "wav")),
           "openai: WebM sent as audio.webm, audio/webm, untouched");
    json_decref(recs);
    mock_clear();
    hear(&h, stt, "ID3\x03 mp3 bytes", 13, AVC_AUDIO_MP3, NULL, NULL, 10000);
    recs = records();
    file = json_array_get(json_object_get(json_array_get(recs, 0), "files"),
                          0);
    TAP_OK(h.err == AVC_OK && jstr(file, "filename")
           && strcmp(jstr(file, "filename"), "audio.mp3") == 0
           && strcmp(jstr(file, "content_type"), "audio/mpeg") == 0,
           "openai: MP3 sent as audio.mp3, audio/mpeg");
    json_decref(recs);

    /* silence: an empty transcript is not an error */
    mock_next("{\"text\": \"\"}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_OK && h.text[0] == '\0'
           && h.confidence == 0, "openai: silence gives \"\" and "
           "confidence 0");
    avc_stt_free(stt);
    avc_config_free(cfg);

    /* the language: the request's, or stt.language as ISO 639-1 */
    mock_clear();
    stt = mock_stt(&cfg, lang_de);
    if (stt) {
        hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
        recs = records();
        TAP_STR(jstr(json_array_get(recs, 0), "fields.language"), "de",
                "openai: stt.language de-DE sent as de");
        json_decref(recs);
        avc_stt_free(stt);
        avc_config_free(cfg);
    }
}

static void
test_errors(void)
{
    static const char *const one_try[] = { "stt.retries", "1", NULL };
    static const char *const wrong_key[] = { "stt.key", "sk-wrong-777",
                                             NULL };
    static const char *const fast[] = { "stt.timeout", "600", NULL };
    avc_config_t *cfg, *cfg2;
    avc_stt_t *stt, *stt2;
    avc_stt_request_t req;
    json_t *recs;
    int16_t pcm[1600];
    char *big;
    heard_t h = { 0 };
    uint64_t t;

    memset(pcm, 0, sizeof(pcm));
    mock_clear();
    stt = mock_stt(&cfg, NULL);
    if (!TAP_OK(stt != NULL, "errors: client")) {
        return;
    }

    /* 500 on every attempt: two attempts, then 502's error */
    mock_next("{\"status\": 500, \"times\": 5}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    recs = records();
    TAP_OK(h.done && h.err == AVC_EUPSTREAM, "errors: 500 is EUPSTREAM "
           "(%s)", avc_strerror(h.err));
    TAP_IS(json_array_size(recs), 2, "errors: stt.retries attempts made");
    TAP_STR(h.error, "The speech recognition service reported an error",
            "errors: a message fit for a client");
    TAP_OK(h.text[0] == '\0' && h.confidence == 0 && h.words[0] == '\0',
           "errors: no transcript with an error");
    json_decref(recs);
    mock_clear();

    /* 500 once, then an answer */
    mock_next("{\"status\": 500}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    recs = records();
    TAP_OK(h.done && h.err == AVC_OK && json_array_size(recs) == 2,
           "errors: a 500 is retried");
    json_decref(recs);
    mock_clear();

    /* 429 with Retry-After: 1 is waited for */
    mock_next("{\"status\": 429, \"retry-after\": 1}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    recs = records();
    TAP_OK(h.done && h.err == AVC_OK && json_array_size(recs) == 2,
           "errors: a 429 is retried");
    TAP_OK(h.end - h.start >= 950, "errors: after Retry-After (%llu ms)",
           (unsigned long long) (h.end - h.start));
    json_decref(recs);
    mock_clear();

    /* no retry when asked for none */
    stt2 = mock_stt(&cfg2, one_try);
    mock_next("{\"status\": 503}");
    hear(&h, stt2, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    recs = records();
    TAP_OK(h.err == AVC_EUPSTREAM && json_array_size(recs) == 1,
           "errors: stt.retries 1 makes one attempt");
    json_decref(recs);
    avc_stt_free(stt2);
    avc_config_free(cfg2);
    mock_clear();

    /* a connection reset instead of an answer */
    mock_next("{\"reset\": 1, \"times\": 3}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_EHTTP, "errors: a reset is EHTTP (%s)",
           avc_strerror(h.err));
    TAP_STR(h.error, "The connection to the speech recognition service "
            "failed", "errors: its message");
    mock_clear();

    /* a 200 that is not a transcript */
    mock_next("{\"malformed\": 1}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_EPROTO && h.text[0] == '\0',
           "errors: malformed JSON in a 200 is EPROTO, not a transcript");
    TAP_STR(h.error, "The speech recognition service sent a malformed "
            "answer", "errors: its message");
    mock_next("{\"empty\": 1}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_EPROTO,
           "errors: an empty 200 is EPROTO, not \"\"");
    mock_next("{\"no-text\": 1}");
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_EPROTO,
           "errors: a 200 without text is EPROTO");
    mock_clear();

    /* a wrong key: 401, never logged */
    stt2 = mock_stt(&cfg2, wrong_key);
    key_logged = 0;
    hear(&h, stt2, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_EUPSTREAM, "errors: 401 is EUPSTREAM");
    TAP_OK(!key_logged && strstr(h.error, "sk-") == NULL,
           "errors: the echoed key is in neither the log nor the message");
    avc_stt_free(stt2);
    avc_config_free(cfg2);
    mock_clear();

    /* the deadline: the mock sees the connection close */
    stt2 = mock_stt(&cfg2, fast);
    mock_next("{\"delay\": 5000}");
    t = now_ms();
    hear(&h, stt2, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_ETIMEDOUT, "errors: stt.timeout is "
           "ETIMEDOUT (%s)", avc_strerror(h.err));
    TAP_OK(now_ms() - t >= 550 && now_ms() - t < 3000,
           "errors: at the deadline (%llu ms)",
           (unsigned long long) (now_ms() - t));
    TAP_STR(h.error, "Speech recognition did not finish in time",
            "errors: its message");
    TAP_OK(wait_outcome("client-closed", 3000),
           "errors: the request was aborted (the mock saw the close)");
    avc_stt_free(stt2);
    avc_config_free(cfg2);
    mock_clear();

    /* nobody listening */
    cfg2 = avc_config_new();
    avc_config_set(cfg2, "stt.provider", "openai");
    avc_config_set(cfg2, "stt.base_url", "http://127.0.0.1:9/v1");
    avc_config_set(cfg2, "stt.backoff", "10");
    stt2 = avc_stt_new(loop, http, cfg2, NULL);
    hear(&h, stt2, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.err == AVC_ECONNECT, "errors: connect failure is "
           "ECONNECT (%s)", avc_strerror(h.err));
    avc_stt_free(stt2);
    avc_config_free(cfg2);

    /* audio the service cannot take: refused without a request, through
     * the callback */
    hear(&h, stt, "????", 4, AVC_AUDIO_UNKNOWN, NULL, NULL, 5000);
    TAP_OK(h.done && h.err == AVC_EPARSE && h.calls == 1,
           "errors: an unknown format is EPARSE");
    TAP_STR(h.error, "The audio format is not supported",
            "errors: its message");
    hear(&h, stt, pcm, 3, AVC_AUDIO_PCM, NULL, NULL, 5000);
    TAP_OK(h.done && h.err == AVC_EPARSE, "errors: odd PCM is EPARSE");
    big = calloc(1, 26u * 1024 * 1024);
    if (big) {
        memcpy(big, "ID3", 3);
        hear(&h, stt, big, 26u * 1024 * 1024, AVC_AUDIO_MP3, NULL, NULL,
             5000);
        TAP_OK(h.done && h.err == AVC_ETOOBIG, "errors: over 25 MB is "
               "ETOOBIG");
        free(big);
    }
    recs = records();
    TAP_IS(json_array_size(recs), 0, "errors: none of those reached the "
           "service");
    json_decref(recs);

    /* free from the callback */
    h.free_in_cb = 1;
    hear(&h, stt, pcm, sizeof(pcm), AVC_AUDIO_PCM, NULL, NULL, 10000);
    TAP_OK(h.done && h.calls == 1 && h.stt == NULL,
           "errors: the client may be freed from its callback");
    h.free_in_cb = 0;
    avc_config_free(cfg);

    memset(&req, 0, sizeof(req));
    (void) req;
}

static void
test_cancel(void)
{
    avc_config_t *cfg;
    avc_stt_t *stt;
    avc_stt_request_t req;
    avc_stt_op_t *op;
    int16_t pcm[1600];
    heard_t h = { 0 }, h2 = { 0 };

    memset(pcm, 0, sizeof(pcm));
    mock_clear();
    stt = mock_stt(&cfg, NULL);
    if (!TAP_OK(stt != NULL, "cancel: client")) {
        return;
    }
    memset(&req, 0, sizeof(req));
    req.audio = pcm;
    req.len = sizeof(pcm);
    req.format = AVC_AUDIO_PCM;

    mock_next("{\"delay\": 3000}");
    memset(&h, 0, sizeof(h));
    TAP_IS(avc_stt_transcribe(stt, &req, on_heard, &h, &op), AVC_OK,
           "cancel: started");
    TAP_IS(avc_stt_active(stt), 1, "cancel: one active");
    TAP_OK(wait_outcome("pending", 3000), "cancel: the mock has it");
    avc_stt_cancel(op);
    TAP_IS(avc_stt_active(stt), 0, "cancel: none active");
    TAP_OK(wait_outcome("client-closed", 3000),
           "cancel: the request was aborted (the mock saw the close)");
    run_for(300);
    TAP_IS(h.calls, 0, "cancel: no callback after a cancel");
    mock_clear();

    /* freeing the client cancels what it runs */
    mock_next("[{\"delay\": 3000}, {\"delay\": 3000}]");
    memset(&h, 0, sizeof(h));
    memset(&h2, 0, sizeof(h2));
    avc_stt_transcribe(stt, &req, on_heard, &h, NULL);
    avc_stt_transcribe(stt, &req, on_heard, &h2, NULL);
    TAP_IS(avc_stt_active(stt), 2, "cancel: two active");
    run_for(300);
    avc_stt_free(stt);
    run_for(500);
    TAP_OK(h.calls == 0 && h2.calls == 0,
           "cancel: no callback after avc_stt_free");
    avc_config_free(cfg);
    mock_clear();
}

/* ----------------------------------------------------------- offline */

static int
have_espeak(void)
{
    return system("espeak-ng --version >/dev/null 2>&1") == 0;
}

/* a sentence spoken by espeak-ng into a WAV file (new buffer) */
static char *
speak(const char *text, size_t *len)
{
    char path[512], cmd[2048];
    char *wav;

    snprintf(path, sizeof(path), "%s/say.wav", tmpdir);
    snprintf(cmd, sizeof(cmd), "espeak-ng -v en-us+f2 -w '%s' \"%s\" "
             ">/dev/null 2>&1", path, text);
    if (system(cmd) != 0) {
        return NULL;
    }
    wav = slurp(path, len);
    remove(path);
    return wav;
}

/* words of s, lower-case letters and apostrophes only */
static size_t
split_words(const char *s, char w[][32], size_t max)
{
    size_t n = 0, k;

    while (*s && n < max) {
        while (*s && !isalpha((unsigned char) *s) && *s != '\'') {
            s++;
        }
        k = 0;
        while (*s && (isalpha((unsigned char) *s) || *s == '\'')) {
            if (k < 31) {
                w[n][k++] = (char) tolower((unsigned char) *s);
            }
            s++;
        }
        if (k) {
            w[n++][k] = '\0';
        }
    }
    return n;
}

/* the word error rate of hyp against ref (edit distance over words) */
static double
wer(const char *ref, const char *hyp)
{
    char r[64][32], h[64][32];
    size_t nr = split_words(ref, r, 64), nh = split_words(hyp, h, 64);
    size_t d[65][65], i, j, best;

    for (i = 0; i <= nr; i++) {
        d[i][0] = i;
    }
    for (j = 0; j <= nh; j++) {
        d[0][j] = j;
    }
    for (i = 1; i <= nr; i++) {
        for (j = 1; j <= nh; j++) {
            best = d[i - 1][j - 1] + (strcmp(r[i - 1], h[j - 1]) != 0);
            if (d[i - 1][j] + 1 < best) {
                best = d[i - 1][j] + 1;
            }
            if (d[i][j - 1] + 1 < best) {
                best = d[i][j - 1] + 1;
            }
            d[i][j] = best;
        }
    }
    return nr ? (double) d[nr][nh] / (double) nr : (double) nh;
}

/* a dealership's material about its products (not the sentences said) */
static const char domain[] =
    "Vehicle Service Contracts\n"
    "A vehicle service contract covers the cost of repairs after a "
    "mechanical breakdown once the factory warranty ends. The service "
    "contract is sold separately and is not a warranty. Our Premier "
    "contract covers every part except the exclusion list: tires, brake "
    "pads, glass and routine maintenance. The deductible is $100 per "
    "visit. Coverage lasts up to 7 years or 100,000 miles.\n"
    "What the service contract covers: the engine, the transmission, air "
    "conditioning, steering and the electrical system.\n"
    "GAP Protection\n"
    "GAP pays the difference between what the customer owes on the loan "
    "and what the insurance company pays if the vehicle is totaled or "
    "stolen. The GAP waiver is optional. Tire and wheel protection covers "
    "road hazard damage to the tires and wheels.\n"
    "When the customer asks what the coverage includes, show the list "
    "of covered parts and explain the deductible and the term.\n";

static void
test_offline(void)
{
    static const struct {
        const char *say;
        double max_wer;
    } sentences[] = {
        { "What does the vehicle service contract cover?", 0.15 },
        { "Is the GAP waiver optional?", 0.25 },
        { "What is the deductible per visit?", 0.25 },
    };
    static const char *const fast[] = { "stt.timeout", "1", NULL };
    avc_config_t *cfg, *cfg2;
    avc_stt_t *stt, *stt2;
    avc_stt_request_t req;
    avc_stt_op_t *op;
    char *wav = NULL, *sil;
    size_t len = 0, slen, i;
    double w, total = 0;
    json_t *words;
    heard_t h = { 0 }, h2 = { 0 };
    int b;

    if (!TAP_OK(have_espeak(), "offline: espeak-ng is installed (apt-get "
                "install espeak-ng)"))
    {
        return;
    }
    stt = new_stt(&cfg, NULL, NULL);
    if (!TAP_OK(stt != NULL, "offline: client")) {
        return;
    }
    TAP_STR(avc_stt_provider(stt), "pocketsphinx", "offline: provider");

    /* with the dealership's material */
    TAP_OK(!avc_stt_has_domain(stt, "d7.g1"), "offline: no model for the "
           "key yet");
    for (i = 0; i < sizeof(sentences) / sizeof(sentences[0]); i++) {
        free(wav);
        wav = speak(sentences[i].say, &len);
        if (!TAP_OK(wav != NULL, "offline: espeak-ng spoke")) {
            break;
        }
        b = built();
        hear(&h, stt, wav, len, AVC_AUDIO_WAV, "d7.g1", i == 0 ? domain
                                                               : NULL,
             60000);
        w = wer(sentences[i].say, h.text);
        total += w;
        TAP_OK(h.done && h.err == AVC_OK, "offline: transcribed (%s)",
               avc_strerror(h.err));
        TAP_OK(w <= sentences[i].max_wer, "offline: \"%s\" heard as \"%s\" "
               "(WER %.2f, confidence %.2f, %llu ms)", sentences[i].say,
               h.text, w, h.confidence,
               (unsigned long long) (h.end - h.start));
        TAP_OK(h.confidence > 0.2 && h.confidence <= 1,
               "offline: a confidence in (0.2, 1]");
        TAP_OK(h.audio_ms > 1000 && h.audio_ms < 6000,
               "offline: the audio's length (%u ms)", h.audio_ms);
        if (i == 0) {
            TAP_IS(built() - b, 1, "offline: the model was built");
            TAP_OK(avc_stt_has_domain(stt, "d7.g1"),
                   "offline: then it exists for the key");
            words = json_loads(h.words, 0, NULL);
            TAP_OK(json_array_size(words) >= 5
                   && json_is_string(json_object_get(json_array_get(words,
                                                                    0),
                                                     "word"))
                   && json_real_value(json_object_get(json_array_get(
                          words, 1), "start"))
                      >= json_real_value(json_object_get(json_array_get(
                          words, 0), "end")) - 0.001,
                   "offline: words with times in order (%s)", h.words);
            json_decref(words);
        } else {
            TAP_IS(built() - b, 0, "offline: the kept model is reused");
        }
    }
    tap_diag("offline: mean WER %.3f with the material", total / 3);

    /* without the material: the F&I phrases alone */
    if (wav) {
        b = built();
        hear(&h, stt, wav, len, AVC_AUDIO_WAV, NULL, NULL, 60000);
        TAP_OK(h.done && h.err == AVC_OK, "offline: transcribed without a "
               "domain (\"%s\")", h.text);
        TAP_IS(built() - b, 1, "offline: the F&I model was built");
        hear(&h, stt, wav, len, AVC_AUDIO_WAV, "d8.g1", NULL, 60000);
        TAP_OK(h.done && h.err == AVC_OK && built() - b == 1
               && !avc_stt_has_domain(stt, "d8.g1"),
               "offline: a key without material uses the F&I model");
    }

    /* silence */
    sil = make_wav(22050, 1500, 0, &slen);
    hear(&h, stt, sil, slen, AVC_AUDIO_WAV, "d7.g1", NULL, 60000);
    TAP_OK(h.done && h.err == AVC_OK && h.text[0] == '\0'
           && h.confidence == 0 && h.audio_ms == 1500,
           "offline: silence gives \"\" and confidence 0 (\"%s\")", h.text);
    free(sil);

    /* bytes that do not decode */
    hear(&h, stt, "RIFF\x10\x00\x00\x00WAVEjunk", 16, AVC_AUDIO_WAV, NULL,
         NULL, 60000);
    TAP_OK(h.done && h.err == AVC_EPARSE, "offline: a broken WAV is "
           "EPARSE (%s)", avc_strerror(h.err));
    TAP_STR(h.error, "The audio could not be decoded", "offline: its "
            "message");

    /* longer than the recogniser takes (two minutes) */
    sil = calloc(1, 121u * 16000 * 2);
    if (sil) {
        hear(&h, stt, sil, 121u * 16000 * 2, AVC_AUDIO_PCM, NULL, NULL,
             60000);
        TAP_OK(h.done && h.err == AVC_ETOOBIG, "offline: over two minutes "
               "is ETOOBIG (%s)", avc_strerror(h.err));
        TAP_STR(h.error, "The audio is too long", "offline: its message");
        free(sil);
    }
    hear(&h, stt, "????", 4, AVC_AUDIO_UNKNOWN, NULL, NULL, 60000);
    TAP_OK(h.done && h.err == AVC_EPARSE, "offline: an unknown format is "
           "EPARSE (%s)", avc_strerror(h.err));

    /* cancel while the job runs, and free with one running */
    if (wav) {
        memset(&req, 0, sizeof(req));
        req.audio = wav;
        req.len = len;
        req.format = AVC_AUDIO_WAV;
        req.domain_key = "d7.g1";
        memset(&h, 0, sizeof(h));
        TAP_IS(avc_stt_transcribe(stt, &req, on_heard, &h, &op), AVC_OK,
               "offline: started");
        avc_stt_cancel(op);
        TAP_IS(avc_stt_active(stt), 0, "offline: none active after a "
               "cancel");
        memset(&h2, 0, sizeof(h2));
        avc_stt_transcribe(stt, &req, on_heard, &h2, NULL);
        run_for(50);
        avc_stt_free(stt);
        stt = NULL;
        run_for(3000);
        TAP_OK(h.calls == 0 && h2.calls == 0, "offline: no callback after "
               "a cancel or avc_stt_free (the jobs finished quietly)");

        /* the deadline */
        stt2 = new_stt(&cfg2, fast, NULL);
        if (stt2) {
            hear(&h, stt2, wav, len, AVC_AUDIO_WAV, NULL, NULL, 10000);
            TAP_OK(h.done && h.err == AVC_ETIMEDOUT && h.calls == 1,
                   "offline: stt.timeout is ETIMEDOUT (%s)",
                   avc_strerror(h.err));
            avc_stt_free(stt2);
            avc_config_free(cfg2);
            run_for(3000);
            TAP_IS(h.calls, 1, "offline: one callback only");
        }
    }
    avc_stt_free(stt);
    avc_config_free(cfg);
    free(wav);
}

int
main(int argc, char **argv)
{
    static const char *const args[] = { "--key", KEY, NULL };
    const char *t;

    if (getenv("AVC_TOP")) {
        top = getenv("AVC_TOP");
    }
    tap_select(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    avc_log_set(log_cb, NULL, AVC_LOG_DEBUG);
    t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/avc-test-stt-XXXXXX",
             t && *t ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        TAP_OK(0, "a temporary directory");
        return tap_done();
    }

    loop = avc_loop_new(2);
    http = avc_http_new(loop);
    if (loop == NULL || http == NULL) {
        TAP_OK(0, "loop and HTTP client");
        return tap_done();
    }
    if (tap_section("config")) {
        test_config();
    }
    if (tap_section("lm")) {
        test_lm();
    }
    if (tap_section("openai") || tap_section("errors") || tap_section("cancel")) {
        if (mock_start_script(&mk, top, "openai-audio.pl", args) != 0) {
            TAP_OK(0, "the mock started");
        } else {
            snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1/",
                     mk.port);
            if (tap_section("openai")) {
                test_openai();
            }
            if (tap_section("errors")) {
                test_errors();
            }
            if (tap_section("cancel")) {
                test_cancel();
            }
            mock_stop(&mk);
        }
    }
    if (tap_section("offline")) {
        test_offline();
    }
    avc_http_free(http);
    avc_loop_free(loop);
    rmdir(tmpdir);
    TAP_OK(!key_logged, "the key never reached the log (%d lines)",
           log_lines);
    return tap_done();
}
