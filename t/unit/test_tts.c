/*
 * Text-to-speech: configuration and request checks, the viseme estimate
 * from text, the ElevenLabs streaming client against
 * tools/mock/elevenlabs.pl (the request on the wire, MP3 pieces on frame
 * boundaries, PCM pieces on samples, error bodies, retries, deadlines, a
 * stream cut short, cancelling), and the offline espeak-ng provider (MP3
 * that parses frame by frame for about as long as espeak-ng's own WAV,
 * PCM16K of the right length, visemes from phoneme events, cancelling,
 * and many sentences at once on the thread pool).
 *
 *   build/t/test_tts [SECTION...]     e.g. "build/t/test_tts espeak"
 *
 * Sections: config visemes eleven errors retry timeout cancel espeak
 * many.  The mock is started by this test (perl, from $AVC_TOP, default
 * ".") with a pipe on its stdin, so it exits with the test however it
 * ends; the MP3 it streams is written here with LAME (a 440 Hz tone
 * behind an ID3v2 tag, which the client must drop).  Time bounds are
 * generous margins, except that a cancelled request must be seen closed
 * by the mock within 100 ms.
 */
#include "tap.h"
#include "mock.h"

#include <avatarcore/speech.h>
#include <avatarcore/http.h>

#include <jansson.h>
#include <lame/lame.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY "xi-test-0123456789abcdef"
#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

static const char *top = ".";

static avc_loop_t *loop;
static avc_http_t *http;
static mock_t mk, mkj;
static char base[128], base_junk[128];
static char mp3_path[256], junk_path[256];
static size_t mp3_tag;          /* bytes of the ID3v2 tag in front */
static size_t mp3_frames_bytes; /* bytes of the frames after it */
static unsigned mp3_ms;         /* their duration */
static size_t junk_frames_bytes;

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* the log, watched for the key */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int key_logged;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    pthread_mutex_lock(&log_mu);
    if (strstr(msg, KEY) != NULL || strstr(msg, "xi-wrong-key-777") != NULL)
    {
        key_logged = 1;
    }
    if (getenv("AVC_TEST_VERBOSE")) {
        printf("# log: %s\n", msg);
    }
    pthread_mutex_unlock(&log_mu);
}

/* MPEG audio frames, parsed independently of the library */

static int
frame_at(const unsigned char *p, size_t n, unsigned *len, unsigned *spf,
    unsigned *rate)
{
    static const int br1[] = { 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160,
                               192, 224, 256, 320, -1 };
    static const int br2[] = { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112,
                               128, 144, 160, -1 };
    static const unsigned sr1[] = { 44100, 48000, 32000 };
    unsigned ver, sr;
    int br;

    if (n < 4 || p[0] != 0xff || (p[1] & 0xe0) != 0xe0
        || ((p[1] >> 1) & 3) != 1 || ((p[2] >> 2) & 3) == 3)
    {
        return 0;
    }
    ver = (p[1] >> 3) & 3;              /* 3: MPEG-1, 2: MPEG-2, 0: 2.5 */
    if (ver == 1) {
        return 0;
    }
    br = ver == 3 ? br1[p[2] >> 4] : br2[p[2] >> 4];
    if (br <= 0) {
        return 0;
    }
    sr = sr1[(p[2] >> 2) & 3] / (ver == 3 ? 1 : ver == 2 ? 2 : 4);
    *len = (ver == 3 ? 144000u : 72000u) * (unsigned) br / sr
           + ((p[2] >> 1) & 1);
    *spf = ver == 3 ? 1152 : 576;
    *rate = sr;
    return 1;
}

/* p[0..n) is whole frames: 1 and their count and samples */
static int
whole_frames(const unsigned char *p, size_t n, size_t *frames,
    uint64_t *samples, unsigned *rate)
{
    unsigned len, spf;
    size_t off = 0;

    while (off < n) {
        if (!frame_at(p + off, n - off, &len, &spf, rate)
            || off + len > n)
        {
            return 0;
        }
        off += len;
        (*frames)++;
        *samples += spf;
    }
    return 1;
}

/* the MP3 the mock streams: 2 s of 440 Hz at 44100 Hz, 128 kbps */
static int
write_mp3(void)
{
    static const unsigned char tag[30] = { 'I', 'D', '3', 4, 0, 0, 0, 0, 0,
                                           20 };
    static int16_t pcm[88200];
    static unsigned char mp3[64 * 1024];
    lame_global_flags *gf = lame_init();
    size_t frames = 0, i, off, cut;
    uint64_t samples = 0;
    unsigned rate = 0, len, spf;
    FILE *f;
    int n, m;

    for (i = 0; i < COUNTOF(pcm); i++) {
        pcm[i] = (int16_t) (8000 * sin(2 * M_PI * 440 * (double) i / 44100));
    }
    lame_set_num_channels(gf, 1);
    lame_set_in_samplerate(gf, 44100);
    lame_set_out_samplerate(gf, 44100);
    lame_set_mode(gf, MONO);
    lame_set_VBR(gf, vbr_off);
    lame_set_brate(gf, 128);
    lame_set_bWriteVbrTag(gf, 0);
    lame_set_write_id3tag_automatic(gf, 0);
    if (lame_init_params(gf) < 0) {
        return -1;
    }
    n = lame_encode_buffer(gf, pcm, pcm, (int) COUNTOF(pcm), mp3,
                           (int) sizeof(mp3));
    m = n >= 0 ? lame_encode_flush(gf, mp3 + n, (int) sizeof(mp3) - n) : -1;
    lame_close(gf);
    if (n < 0 || m < 0) {
        return -1;
    }
    mp3_frames_bytes = (size_t) (n + m);
    if (!whole_frames(mp3, mp3_frames_bytes, &frames, &samples, &rate)) {
        printf("# LAME wrote something that does not parse\n");
        return -1;
    }
    mp3_ms = (unsigned) (samples * 1000 / rate);
    mp3_tag = sizeof(tag);
    snprintf(mp3_path, sizeof(mp3_path), "/tmp/avc-test-tts-%d.mp3",
             (int) getpid());
    f = fopen(mp3_path, "wb");
    if (f == NULL) {
        return -1;
    }
    fwrite(tag, 1, sizeof(tag), f);
    fwrite(mp3, 1, mp3_frames_bytes, f);
    fclose(f);

    /* the same with garbage after the 3rd frame and half a frame at the
     * end */
    snprintf(junk_path, sizeof(junk_path), "/tmp/avc-test-tts-%d-junk.mp3",
             (int) getpid());
    f = fopen(junk_path, "wb");
    if (f == NULL) {
        return -1;
    }
    for (i = 0, off = 0; i < 3; i++) {
        frame_at(mp3 + off, mp3_frames_bytes - off, &len, &spf, &rate);
        off += len;
    }
    fwrite(mp3, 1, off, f);
    fwrite("\xff\xfbjunk!", 1, 7, f);
    for (cut = off; cut < mp3_frames_bytes; cut += len) {
        frame_at(mp3 + cut, mp3_frames_bytes - cut, &len, &spf, &rate);
    }
    cut -= len - len / 2;               /* half of the last frame */
    fwrite(mp3 + off, 1, cut - off, f);
    fclose(f);
    junk_frames_bytes = cut;
    return 0;
}

/* a sentence as the caller sees it */

typedef enum {
    ACT_NONE = 0,
    ACT_CANCEL,                 /* avc_tts_cancel from on_audio */
    ACT_FREE                    /* avc_tts_free from on_audio */
} act_t;

typedef struct {
    avc_tts_t *tts;
    avc_tts_op_t *op;
    avc_tts_format_t format;
    unsigned char *audio;
    size_t len;
    size_t pieces;
    size_t bad_pieces;          /* not whole frames / odd */
    size_t bad_starts;          /* MP3 not starting at a frame header */
    avc_viseme_t *vis;
    size_t nvis;
    int vis_calls;
    int vis_before_audio;
    int vis_after_audio;
    uint64_t start;
    uint64_t first_at;
    uint64_t done_at;
    int done;
    int done_calls;
    int calls_after;            /* callbacks after a cancel: must be 0 */
    int cancelled;
    act_t act;
    size_t act_after;           /* pieces before the act */
    int err;
    char provider[32];
    char error[256];
    unsigned audio_ms;
    size_t bytes;
} sp_t;

static void
sp_reset(sp_t *s)
{
    act_t act = s->act;
    size_t after = s->act_after;

    free(s->audio);
    free(s->vis);
    memset(s, 0, sizeof(*s));
    s->act = act;
    s->act_after = after;
}

static void
on_audio(const void *p, size_t n, void *data)
{
    sp_t *s = data;
    size_t frames = 0;
    uint64_t samples = 0;
    unsigned rate, len, spf;
    unsigned char *a;

    if (s->cancelled) {
        s->calls_after++;
        return;
    }
    if (s->pieces == 0) {
        s->first_at = now_ms();
    }
    s->pieces++;
    if (s->format == AVC_TTS_MP3
        ? !whole_frames(p, n, &frames, &samples, &rate) : (n % 2) != 0)
    {
        s->bad_pieces++;
    }
    if (s->format == AVC_TTS_MP3 && !frame_at(p, n, &len, &spf, &rate)) {
        s->bad_starts++;
    }
    a = realloc(s->audio, s->len + n);
    if (a) {
        memcpy(a + s->len, p, n);
        s->audio = a;
        s->len += n;
    }
    if (s->act != ACT_NONE && s->pieces == s->act_after) {
        s->cancelled = 1;
        if (s->act == ACT_CANCEL) {
            avc_tts_cancel(s->op);
        } else {
            avc_tts_free(s->tts);
            s->tts = NULL;
        }
    }
}

static void
on_viseme(const avc_viseme_t *v, size_t n, void *data)
{
    sp_t *s = data;

    if (s->cancelled) {
        s->calls_after++;
        return;
    }
    s->vis_calls++;
    if (s->pieces == 0) {
        s->vis_before_audio = 1;
    } else {
        s->vis_after_audio = 1;
    }
    free(s->vis);
    s->vis = malloc(n * sizeof(*v));
    if (s->vis) {
        memcpy(s->vis, v, n * sizeof(*v));
        s->nvis = n;
    }
}

static void
copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

static void
on_done(int err, const avc_tts_result_t *res, void *data)
{
    sp_t *s = data;

    s->done_calls++;
    if (s->cancelled) {
        s->calls_after++;
        return;
    }
    s->done = 1;
    s->done_at = now_ms();
    s->err = err;
    copy(s->provider, sizeof(s->provider), res->provider);
    copy(s->error, sizeof(s->error), res->error);
    s->audio_ms = res->audio_ms;
    s->bytes = res->bytes;
    /* a cancel from on_done is a no-op */
    avc_tts_cancel(s->op);
}

static void
run_until(int *flag, uint64_t ms)
{
    uint64_t end = now_ms() + ms;

    while (!*flag && now_ms() < end) {
        avc_loop_run_once(loop, 10);
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

/* a client: the NULL-terminated key/value pairs of kv; NULL on failure */
static avc_tts_t *
new_tts(avc_config_t **cfgp, const char *const *kv)
{
    avc_config_t *cfg = avc_config_new();
    avc_tts_t *tts;
    int err, i;

    for (i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        avc_config_set(cfg, kv[i], kv[i + 1]);
    }
    tts = avc_tts_new(loop, http, cfg, &err);
    if (tts == NULL) {
        printf("# avc_tts_new: %s\n", avc_strerror(err));
        avc_config_free(cfg);
        return NULL;
    }
    *cfgp = cfg;
    return tts;
}

/* an ElevenLabs client for the mock at url, extra settings after */
static avc_tts_t *
eleven(avc_config_t **cfgp, const char *url, const char *const *extra)
{
    const char *kv[40];
    int n = 0, i;

    kv[n++] = "tts.provider";
    kv[n++] = "elevenlabs";
    kv[n++] = "tts.base_url";
    kv[n++] = url;
    kv[n++] = "tts.key";
    kv[n++] = KEY;
    kv[n++] = "tts.backoff";
    kv[n++] = "20";
    for (i = 0; extra && extra[i] && extra[i + 1] && n < 36; i += 2) {
        kv[n++] = extra[i];
        kv[n++] = extra[i + 1];
    }
    kv[n] = NULL;
    return new_tts(cfgp, kv);
}

/*
 * Speak text with tts into s; wait for the end (ms).  Returns the
 * avc_tts_speak result.
 */
static int
speak_with(avc_tts_t *tts, sp_t *s, const char *text, const char *voice,
    avc_tts_format_t fmt, uint64_t ms)
{
    avc_tts_request_t req;
    int rc;

    sp_reset(s);
    s->tts = tts;
    s->format = fmt;
    memset(&req, 0, sizeof(req));
    req.text = text;
    req.voice = voice;
    req.format = fmt;
    s->start = now_ms();
    rc = avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, s, &s->op);
    if (rc != AVC_OK) {
        return rc;
    }
    if (s->pieces || s->done || s->vis_calls) {
        printf("# a callback from within avc_tts_speak\n");
        s->bad_pieces++;
    }
    run_until(&s->done, ms);
    return rc;
}

/* speak through a fresh ElevenLabs client at the main mock */
static int
speak_eleven(sp_t *s, const char *text, avc_tts_format_t fmt,
    const char *const *extra, uint64_t ms)
{
    avc_config_t *cfg = NULL;
    avc_tts_t *tts = eleven(&cfg, base, extra);
    int rc;

    if (tts == NULL) {
        return -1;
    }
    rc = speak_with(tts, s, text, NULL, fmt, ms);
    if (s->tts) {
        if (avc_tts_active(tts) != 0) {
            printf("# %zu sentences still active\n", avc_tts_active(tts));
            rc = -1;
        }
        avc_tts_free(tts);
        s->tts = NULL;
    }
    avc_config_free(cfg);
    return rc;
}

/* the mock's records */

static json_t *
mock_get_at(int port, const char *path)
{
    char url[256], *body = NULL;
    size_t len = 0;
    json_t *j;
    int status = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    if (avc_http_fetch_sync("GET", url, NULL, NULL, 0, 5000, 0, &status,
                            &body, &len) != AVC_OK || status != 200)
    {
        free(body);
        return NULL;
    }
    j = json_loadb(body, len, 0, NULL);
    free(body);
    return j;
}

static void
mock_call(const char *method, const char *path, const char *body)
{
    char url[256], *resp = NULL;
    size_t len = 0;
    int status = 0;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", mk.port, path);
    avc_http_fetch_sync(method, url, NULL, body, body ? strlen(body) : 0,
                        5000, 0, &status, &resp, &len);
    free(resp);
}

/* queue a failure for the next request(s) */
static void
mock_next(const char *json)
{
    mock_call("POST", "/_next", json);
}

static void
mock_clear(void)
{
    mock_call("DELETE", "/_requests", NULL);
}

/* the records since the last clear (new) */
static json_t *
records(void)
{
    json_t *all = mock_get_at(mk.port, "/_requests");
    json_t *r = json_incref(json_object_get(all, "requests"));

    json_decref(all);
    return r ? r : json_array();
}

static const char *
rec_str(json_t *recs, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(recs, i), key));
}

/* wait until the mock records outcome for its last request; the ms it
 * took, or -1 */
static long
wait_outcome(const char *outcome, uint64_t ms)
{
    uint64_t start = now_ms(), end = start + ms;
    const char *o;
    json_t *recs;
    int ok = 0;

    while (!ok && now_ms() < end) {
        recs = records();
        o = rec_str(recs, json_array_size(recs) - 1, "outcome");
        ok = o && strcmp(o, outcome) == 0;
        json_decref(recs);
        if (!ok) {
            avc_loop_run_once(loop, 2);
        }
    }
    return ok ? (long) (now_ms() - start) : -1;
}

/* visemes: from 0, contiguous, known names, ending at end_ms +- slack */
static int
visemes_ok(const avc_viseme_t *v, size_t n, unsigned end_ms,
    unsigned slack, int *has_pp)
{
    static const char *const names[] = { "sil", "PP", "FF", "TH", "DD",
                                         "kk", "CH", "SS", "nn", "RR", "aa",
                                         "E", "I", "O", "U" };
    unsigned t = 0, last;
    size_t i, k;
    int known;

    *has_pp = 0;
    if (n == 0 || v[0].t_ms != 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        known = 0;
        for (k = 0; k < COUNTOF(names); k++) {
            known |= v[i].v && strcmp(v[i].v, names[k]) == 0;
        }
        if (!known || v[i].t_ms != t || v[i].d_ms == 0) {
            printf("#   viseme %zu: %s at %u for %u (expected at %u)\n", i,
                   v[i].v ? v[i].v : "(null)", v[i].t_ms, v[i].d_ms, t);
            return 0;
        }
        if (strcmp(v[i].v, "PP") == 0) {
            *has_pp = 1;
        }
        t += v[i].d_ms;
    }
    last = t;
    if (last + slack < end_ms || last > end_ms + slack) {
        printf("#   visemes end at %u, audio at %u\n", last, end_ms);
        return 0;
    }
    return 1;
}

/* configuration and requests */

static void
test_config(void)
{
    avc_tts_request_t req;
    avc_config_t *cfg = avc_config_new();
    avc_tts_t *tts;
    avc_tts_op_t *op = (avc_tts_op_t *) 1;
    char *big;
    sp_t s;
    int err;

    memset(&s, 0, sizeof(s));
    tts = avc_tts_new(loop, NULL, cfg, &err);
    TAP_OK(tts && err == AVC_OK && strcmp(avc_tts_provider(tts), "espeak")
           == 0, "config: no key means espeak");
    avc_tts_free(tts);

    avc_config_set(cfg, "tts.key", KEY);
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts && strcmp(avc_tts_provider(tts), "elevenlabs") == 0,
           "config: a key means elevenlabs");
    avc_tts_free(tts);
    tts = avc_tts_new(loop, NULL, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL,
           "config: elevenlabs needs an HTTP client");

    avc_config_set(cfg, "tts.provider", "polly");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: unknown provider");

    avc_config_set(cfg, "tts.provider", "elevenlabs");
    avc_config_set(cfg, "tts.key", NULL);
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: elevenlabs needs a "
           "key");
    avc_config_set(cfg, "tts.key", "a\nb");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: a key with a line "
           "break");

    avc_config_set(cfg, "tts.key", KEY);
    avc_config_set(cfg, "tts.base_url", "ftp://x");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: base_url not http");
    avc_config_set(cfg, "tts.base_url", NULL);

    avc_config_set(cfg, "tts.voice", "../../v1/user");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: a voice id with "
           "a path in it");
    avc_config_set(cfg, "tts.voice", NULL);

    avc_config_set(cfg, "tts.provider", "espeak");
    avc_config_set(cfg, "tts.rate", "79");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: rate below 80");
    avc_config_set(cfg, "tts.rate", "fast");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: rate not a number");
    avc_config_set(cfg, "tts.rate", "180.5");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts != NULL, "config: rate 180.5");
    avc_tts_free(tts);
    avc_config_set(cfg, "tts.rate", NULL);
    avc_config_set(cfg, "tts.timeout", "-1");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts == NULL && err == AVC_EINVAL, "config: negative timeout");
    avc_config_set(cfg, "tts.timeout", NULL);
    avc_config_set(cfg, "tts.voice", "en-us+m3");
    tts = avc_tts_new(loop, http, cfg, &err);
    TAP_OK(tts != NULL, "config: espeak voice with a variant");
    TAP_OK(avc_tts_new(NULL, http, cfg, &err) == NULL && err == AVC_EINVAL,
           "config: no loop");

    /* requests refused before anything starts */
    memset(&req, 0, sizeof(req));
    req.text = "";
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, &op),
           AVC_EINVAL, "speak: empty text");
    TAP_OK(op == NULL, "speak: *op is NULL on error");
    req.text = " \n\t ";
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, NULL),
           AVC_EINVAL, "speak: blank text");
    big = malloc(5002);
    memset(big, 'a', 5001);
    big[5001] = '\0';
    req.text = big;
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, NULL),
           AVC_ETOOBIG, "speak: 5001 characters");
    big[5000] = '\0';
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, &op),
           AVC_OK, "speak: 5000 characters");
    avc_tts_cancel(op);
    free(big);
    /* 5000 characters of two bytes each are 5000 characters */
    big = malloc(10001);
    for (err = 0; err < 5000; err++) {
        memcpy(big + 2 * err, "\xc3\xa9", 2);
    }
    big[10000] = '\0';
    req.text = big;
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, &op),
           AVC_OK, "speak: characters are counted, not bytes");
    avc_tts_cancel(op);
    free(big);
    req.text = "Hello.";
    req.voice = "en us";
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, NULL),
           AVC_EINVAL, "speak: bad voice name");
    req.voice = NULL;
    req.format = (avc_tts_format_t) 7;
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &s, NULL),
           AVC_EINVAL, "speak: bad format");
    req.format = AVC_TTS_MP3;
    TAP_IS(avc_tts_speak(tts, &req, NULL, on_viseme, on_done, &s, NULL),
           AVC_EINVAL, "speak: no audio callback");
    TAP_IS(avc_tts_speak(tts, &req, on_audio, on_viseme, NULL, &s, NULL),
           AVC_EINVAL, "speak: no done callback");
    TAP_IS(avc_tts_speak(NULL, &req, on_audio, on_viseme, on_done, &s, NULL),
           AVC_EINVAL, "speak: no client");
    TAP_IS(avc_tts_active(tts), 0, "speak: nothing active after refusals");
    run_for(50);
    TAP_IS(s.done_calls + (int) s.pieces + s.vis_calls, 0,
           "speak: no callback after a refusal or a cancel");
    avc_tts_free(tts);
    avc_tts_free(NULL);
    avc_tts_cancel(NULL);
    avc_config_free(cfg);
}

/* visemes from text */

static void
test_visemes(void)
{
    avc_viseme_t *a, *b, *c;
    size_t na, nb, nc, i;
    int pp, same, sil_mid = 0;

    a = avc_visemes_from_text("Buy my map, 5.9% APR!", 2000, &na);
    b = avc_visemes_from_text("Buy my map, 5.9% APR!", 2000, &nb);
    TAP_OK(a != NULL && na > 5, "visemes: some (%zu)", na);
    TAP_OK(visemes_ok(a, na, 2000, 0, &pp), "visemes: from 0, contiguous, "
           "ending exactly at the audio's end");
    TAP_OK(pp, "visemes: PP for b, m, p");
    same = na == nb;
    for (i = 0; same && i < na; i++) {
        same = a[i].t_ms == b[i].t_ms && a[i].d_ms == b[i].d_ms
               && strcmp(a[i].v, b[i].v) == 0;
        sil_mid |= i > 0 && i + 1 < na && strcmp(a[i].v, "sil") == 0;
    }
    TAP_OK(same, "visemes: deterministic");
    TAP_OK(sil_mid, "visemes: a comma is a pause");
    TAP_STR(na ? a[na - 1].v : NULL, "sil", "visemes: '!' ends in silence");
    for (i = 1; i < na; i++) {
        if (strcmp(a[i].v, a[i - 1].v) == 0) {
            break;
        }
    }
    TAP_IS(i, na, "visemes: equal neighbours are merged");
    free(a);
    free(b);

    c = avc_visemes_from_text("...", 500, &nc);
    TAP_OK(nc == 1 && c && strcmp(c[0].v, "sil") == 0 && c[0].d_ms == 500,
           "visemes: no letters, one silence");
    free(c);
    c = avc_visemes_from_text("Think, then: \xc3\xa9t\xc3\xa9 \xe2\x80\x94 "
                              "shop", 1500, &nc);
    TAP_OK(visemes_ok(c, nc, 1500, 0, &pp), "visemes: UTF-8 and digraphs");
    for (i = 0; i < nc && strcmp(c[i].v, "TH") != 0; i++) {
    }
    TAP_OK(i < nc, "visemes: TH for th");
    for (i = 0; i < nc && strcmp(c[i].v, "CH") != 0; i++) {
    }
    TAP_OK(i < nc, "visemes: CH for sh");
    free(c);
    c = avc_visemes_from_text("Hello", 0, &nc);
    TAP_OK(c == NULL && nc == 0, "visemes: no audio, none");
    c = avc_visemes_from_text("A rather long sentence with many words", 3,
                              &nc);
    TAP_OK(visemes_ok(c, nc, 3, 0, &pp), "visemes: 3 ms still add up");
    free(c);
}

/* ElevenLabs: the stream */

static void
test_eleven(void)
{
    static const char *const pcm_extra[] = { "tts.model", "eleven_flash_v2",
                                             "tts.voice", "voice-xyz", NULL };
    avc_config_t *cfg = NULL;
    const char *text = "Hello, I am Adam.";
    size_t frames = 0;
    uint64_t samples = 0;
    unsigned rate = 0;
    json_t *recs, *rec, *hdr, *body, *q;
    avc_tts_t *tts;
    sp_t s;
    int pp;

    memset(&s, 0, sizeof(s));
    mock_clear();
    TAP_IS(speak_eleven(&s, text, AVC_TTS_MP3, NULL, 10000), AVC_OK,
           "eleven: speak");
    TAP_OK(s.done && s.err == AVC_OK, "eleven: done without error (%s)",
           s.error);
    TAP_STR(s.provider, "elevenlabs", "eleven: provider");
    recs = records();
    rec = json_array_get(recs, 0);
    hdr = json_object_get(rec, "headers");
    body = json_object_get(rec, "body");
    q = json_object_get(rec, "query");
    TAP_IS(json_array_size(recs), 1, "eleven: one request");
    TAP_STR(rec_str(recs, 0, "path"),
            "/v1/text-to-speech/pNInz6obpgDQGcFmaJgB/stream",
            "eleven: the path names the default voice (Adam)");
    TAP_STR(json_string_value(json_object_get(q, "output_format")),
            "mp3_44100_128", "eleven: output_format=mp3_44100_128");
    TAP_IS(json_object_size(q), 1, "eleven: no other query parameter");
    TAP_STR(json_string_value(json_object_get(hdr, "xi-api-key")), KEY,
            "eleven: xi-api-key");
    TAP_STR(json_string_value(json_object_get(hdr, "content-type")),
            "application/json", "eleven: a JSON body");
    TAP_STR(json_string_value(json_object_get(body, "text")), text,
            "eleven: text");
    TAP_STR(json_string_value(json_object_get(body, "model_id")),
            "eleven_turbo_v2_5", "eleven: model_id default");
    TAP_STR(rec_str(recs, 0, "outcome"), "done", "eleven: the mock sent all");
    json_decref(recs);

    TAP_OK(s.pieces > 5, "eleven: audio in pieces (%zu)", s.pieces);
    TAP_IS(s.bad_pieces, 0, "eleven: every MP3 piece is whole frames, "
           "starting at a frame header");
    TAP_IS(s.len, mp3_frames_bytes, "eleven: all the frames, without the "
           "ID3 tag");
    TAP_OK(whole_frames(s.audio, s.len, &frames, &samples, &rate)
           && s.len > 0 && memcmp(s.audio, "\xff", 1) == 0,
           "eleven: the whole audio parses frame by frame");
    TAP_IS(s.bytes, s.len, "eleven: result bytes");
    TAP_IS(s.audio_ms, mp3_ms, "eleven: audio_ms = frames x 1152 / 44100 "
           "(%u)", mp3_ms);
    TAP_IS(s.vis_calls, 1, "eleven: visemes once");
    TAP_OK(s.vis_after_audio && !s.vis_before_audio,
           "eleven: visemes when the audio's length is known");
    TAP_OK(visemes_ok(s.vis, s.nvis, s.audio_ms, 0, &pp), "eleven: visemes "
           "cover the audio");
    TAP_OK(pp, "eleven: PP in \"I am Adam\"");

    /* PCM, another model and voice */
    mock_clear();
    TAP_IS(speak_eleven(&s, text, AVC_TTS_PCM16K, pcm_extra, 10000), AVC_OK,
           "eleven pcm: speak");
    TAP_OK(s.done && s.err == AVC_OK, "eleven pcm: done");
    recs = records();
    rec = json_array_get(recs, 0);
    TAP_STR(rec_str(recs, 0, "path"), "/v1/text-to-speech/voice-xyz/stream",
            "eleven pcm: the voice of tts.voice");
    TAP_STR(json_string_value(json_object_get(json_object_get(rec, "query"),
                                              "output_format")),
            "pcm_16000", "eleven pcm: output_format=pcm_16000");
    TAP_STR(json_string_value(json_object_get(json_object_get(rec, "body"),
                                              "model_id")),
            "eleven_flash_v2", "eleven pcm: model_id of tts.model");
    json_decref(recs);
    TAP_IS(s.bad_pieces, 0, "eleven pcm: every piece is whole samples "
           "(chunks of 1000 and 7 bytes)");
    TAP_IS(s.len, strlen(text) * 60 * 16 * 2, "eleven pcm: all the audio");
    TAP_IS(s.audio_ms, strlen(text) * 60, "eleven pcm: audio_ms");
    TAP_OK(s.nvis > 0 && s.vis_calls == 1, "eleven pcm: visemes");

    /* odd chunks for PCM, tiny ones for MP3 */
    mock_next("{\"chunk\":7}");
    TAP_IS(speak_eleven(&s, "Hi.", AVC_TTS_PCM16K, NULL, 10000), AVC_OK,
           "eleven pcm: 7-byte chunks");
    TAP_OK(s.done && s.err == AVC_OK && s.bad_pieces == 0
           && s.len == 200 * 32 && s.pieces > 100,
           "eleven pcm: 7-byte chunks give even pieces, all of them");
    mock_next("{\"chunk\":29}");
    TAP_IS(speak_eleven(&s, text, AVC_TTS_MP3, NULL, 20000), AVC_OK,
           "eleven: 29-byte chunks");
    TAP_OK(s.done && s.err == AVC_OK && s.bad_pieces == 0
           && s.len == mp3_frames_bytes,
           "eleven: 29-byte chunks still give whole frames, all of them "
           "(%zu pieces)", s.pieces);

    /* the voice of the request */
    tts = eleven(&cfg, base, NULL);
    mock_clear();
    speak_with(tts, &s, text, "21m00Tcm4TlvDq8ikWAM", AVC_TTS_MP3, 10000);
    recs = records();
    TAP_STR(rec_str(recs, 0, "path"),
            "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream",
            "eleven: the request's voice wins");
    json_decref(recs);
    avc_tts_free(tts);
    avc_config_free(cfg);

    /* garbage between frames and half a frame at the end */
    tts = eleven(&cfg, base_junk, NULL);
    speak_with(tts, &s, text, NULL, AVC_TTS_MP3, 10000);
    TAP_OK(s.done && s.err == AVC_OK && s.bad_starts == 0,
           "eleven junk: every piece starts at a frame header");
    TAP_IS(s.bad_pieces, 1, "eleven junk: all but the last (a partial "
           "frame) are whole frames");
    TAP_IS(s.len, junk_frames_bytes, "eleven junk: the junk is dropped, the "
           "last partial frame flushed at the end");
    avc_tts_free(tts);
    avc_config_free(cfg);
    sp_reset(&s);
}

/* ElevenLabs: errors */

static void
error_case(const char *next, const char *const *extra, int want_err,
    const char *want_msg, const char *name)
{
    sp_t s;

    memset(&s, 0, sizeof(s));
    if (next) {
        mock_next(next);
    }
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, extra, 10000);
    TAP_OK(s.done && s.err == want_err && s.pieces == 0 && s.vis_calls == 0,
           "errors: %s: %s", name, avc_err_name(want_err));
    if (!s.done || s.err != want_err) {
        printf("#   got %s (%s)\n", avc_err_name(s.err), s.error);
    }
    TAP_STR(s.error, want_msg, "errors: %s: the client's message", name);
    sp_reset(&s);
}

static void
test_errors(void)
{
    static const char *const wrong_key[] = { "tts.key", "xi-wrong-key-777",
                                             NULL };
    static const char *const missing[] = { "tts.voice", "missing-voice",
                                           NULL };
    static const char *const one_try[] = { "tts.retries", "1", NULL };
    json_t *recs;
    sp_t s;

    memset(&s, 0, sizeof(s));
    key_logged = 0;
    mock_clear();
    error_case(NULL, wrong_key, AVC_EUPSTREAM,
               "The speech service refused the server's credentials",
               "401 invalid_api_key");
    recs = records();
    TAP_IS(json_array_size(recs), 1, "errors: a 401 is not retried");
    json_decref(recs);
    error_case("{\"status\":401,\"detail-status\":\"quota_exceeded\","
               "\"message\":\"This request exceeds your quota.\"}", NULL,
               AVC_EUPSTREAM, "The speech service's quota is used up",
               "401 quota_exceeded");
    error_case("{\"status\":403,\"detail-status\":\"forbidden\"}", NULL,
               AVC_EUPSTREAM, "The speech service refused the request",
               "403");
    error_case("{\"status\":422,\"detail-status\":\"invalid_text\"}", NULL,
               AVC_EUPSTREAM, "The speech service could not accept the text",
               "422");
    error_case(NULL, missing, AVC_EUPSTREAM, "The voice is not available",
               "400 voice_not_found");
    mock_clear();
    error_case("{\"status\":500,\"times\":3}", NULL, AVC_EUPSTREAM,
               "The speech service failed", "500 every time");
    recs = records();
    TAP_IS(json_array_size(recs), 3, "errors: 500 tried tts.retries (3) "
           "times");
    json_decref(recs);
    error_case("{\"status\":429,\"retry-after\":0}", one_try, AVC_EUPSTREAM,
               "The speech service is busy; try again shortly",
               "429 with one attempt");
    TAP_OK(!key_logged, "errors: the key never reaches the log");

    /* a stream cut short after audio */
    mock_next("{\"cut-after\":5}");
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, NULL, 10000);
    TAP_OK(s.done && s.err == AVC_EHTTP && s.bytes > 0 && s.pieces > 0
           && s.bad_pieces == 0,
           "errors: a stream cut short: EHTTP after %zu bytes of whole "
           "frames", s.bytes);
    TAP_STR(s.error, "The connection to the speech service broke off in "
            "mid-sentence", "errors: cut short: the client's message");
    TAP_IS(s.vis_calls, 0, "errors: cut short: no visemes");
    mock_next("{\"reset-after\":3}");
    speak_eleven(&s, "Hello there.", AVC_TTS_PCM16K, NULL, 10000);
    TAP_OK(s.done && s.err == AVC_EHTTP && s.bytes > 0
           && s.bad_pieces == 0, "errors: a reset after audio: EHTTP");
    sp_reset(&s);

    /* refused connection */
    {
        static const char *const dead[] = { "tts.retries", "2", NULL };
        avc_config_t *cfg;
        avc_tts_t *tts = eleven(&cfg, "http://127.0.0.1:1", dead);

        speak_with(tts, &s, "Hello.", NULL, AVC_TTS_MP3, 10000);
        TAP_OK(s.done && s.err == AVC_ECONNECT, "errors: no server: "
               "ECONNECT");
        TAP_STR(s.error, "The speech service could not be reached",
                "errors: no server: the client's message");
        avc_tts_free(tts);
        avc_config_free(cfg);
    }
    sp_reset(&s);
}

/* ElevenLabs: retries before the first byte */

static void
test_retry(void)
{
    json_t *recs;
    sp_t s;
    uint64_t took;

    memset(&s, 0, sizeof(s));
    mock_clear();
    mock_next("{\"status\":429,\"retry-after\":1}");
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, NULL, 10000);
    took = s.done_at - s.start;
    TAP_OK(s.done && s.err == AVC_OK && s.len == mp3_frames_bytes,
           "retry: 429 then audio");
    TAP_OK(took >= 900, "retry: Retry-After 1 s honoured (%llu ms)",
           (unsigned long long) took);
    recs = records();
    TAP_IS(json_array_size(recs), 2, "retry: two requests");
    json_decref(recs);

    mock_clear();
    mock_next("[{\"status\":500},{\"status\":503}]");
    speak_eleven(&s, "Hello there.", AVC_TTS_PCM16K, NULL, 10000);
    TAP_OK(s.done && s.err == AVC_OK && s.bytes > 0,
           "retry: 500, 503, then audio");
    recs = records();
    TAP_IS(json_array_size(recs), 3, "retry: three requests");
    json_decref(recs);

    mock_clear();
    mock_next("{\"reset-after\":0}");
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, NULL, 10000);
    TAP_OK(s.done && s.err == AVC_OK && s.len == mp3_frames_bytes,
           "retry: a stream broken before its first byte is tried again");
    recs = records();
    TAP_IS(json_array_size(recs), 2, "retry: two requests");
    json_decref(recs);
    sp_reset(&s);
}

/* ElevenLabs: deadlines */

static void
test_timeout(void)
{
    static const char *const first[] = { "tts.first_byte_timeout", "300",
                                         NULL };
    static const char *const total[] = { "tts.timeout", "600", NULL };
    uint64_t took;
    long seen;
    sp_t s;

    memset(&s, 0, sizeof(s));
    mock_clear();
    mock_next("{\"first\":3000}");
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, first, 10000);
    took = s.done_at - s.start;
    TAP_OK(s.done && s.err == AVC_ETIMEDOUT && s.bytes == 0,
           "timeout: no first byte within tts.first_byte_timeout");
    TAP_OK(took >= 280 && took < 1500, "timeout: after about 300 ms (%llu)",
           (unsigned long long) took);
    TAP_STR(s.error, "The speech service did not answer in time",
            "timeout: the client's message");
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0, "timeout: the mock saw the connection close");

    mock_clear();
    mock_next("{\"stall-after\":2}");
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, total, 10000);
    TAP_OK(s.done && s.err == AVC_ETIMEDOUT && s.bytes > 0,
           "timeout: a stream that stalls after audio ends at tts.timeout");
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0, "timeout: the mock saw the stalled connection close");
    mock_clear();
    mock_next("{\"delay\":100}");
    speak_eleven(&s, "Hello there.", AVC_TTS_MP3, total, 10000);
    took = s.done_at - s.start;
    TAP_OK(s.done && s.err == AVC_ETIMEDOUT && s.bytes > 0
           && s.bad_pieces == 0,
           "timeout: tts.timeout ends a slow stream after audio (%zu "
           "bytes)", s.bytes);
    TAP_OK(took >= 580 && took < 2000, "timeout: after about 600 ms (%llu)",
           (unsigned long long) took);
    TAP_STR(s.error, "The speech service took too long to finish",
            "timeout: after audio: the client's message");
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0, "timeout: the mock saw the connection close");
    sp_reset(&s);
}

/* ElevenLabs: cancelling */

static void
test_cancel(void)
{
    avc_config_t *cfg;
    avc_tts_t *tts;
    long seen;
    sp_t s;

    memset(&s, 0, sizeof(s));
    tts = eleven(&cfg, base, NULL);

    /* from outside, mid-stream */
    mock_clear();
    mock_next("{\"delay\":300}");
    speak_with(tts, &s, "Hello there.", NULL, AVC_TTS_MP3, 0);
    while (s.pieces == 0 && now_ms() - s.start < 5000) {
        avc_loop_run_once(loop, 10);
    }
    TAP_OK(s.pieces > 0 && !s.done, "cancel: audio is streaming");
    s.cancelled = 1;
    avc_tts_cancel(s.op);
    TAP_IS(avc_tts_active(tts), 0, "cancel: nothing active");
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0 && seen <= 100, "cancel: the mock saw the connection "
           "close within 100 ms (%ld)", seen);
    run_for(400);
    TAP_IS(s.calls_after, 0, "cancel: no callback after the cancel");

    /* before the response */
    mock_clear();
    mock_next("{\"first\":2000}");
    speak_with(tts, &s, "Hello there.", NULL, AVC_TTS_MP3, 0);
    run_for(150);
    s.cancelled = 1;
    avc_tts_cancel(s.op);
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0 && seen <= 100, "cancel: before the first byte too "
           "(%ld ms)", seen);
    run_for(100);
    TAP_IS(s.calls_after, 0, "cancel: no callback");

    /* from the audio callback */
    mock_clear();
    mock_next("{\"delay\":50}");
    s.act = ACT_CANCEL;
    s.act_after = 2;
    speak_with(tts, &s, "Hello there.", NULL, AVC_TTS_MP3, 0);
    run_until(&s.cancelled, 5000);
    TAP_OK(s.cancelled && s.pieces == 2, "cancel: from on_audio");
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0 && seen <= 100, "cancel: from on_audio: the mock saw "
           "the close (%ld ms)", seen);
    run_for(200);
    TAP_IS(s.calls_after, 0, "cancel: from on_audio: nothing after");

    /* freeing the client from the audio callback */
    mock_next("{\"delay\":50}");
    s.act = ACT_FREE;
    s.act_after = 1;
    speak_with(tts, &s, "Hello there.", NULL, AVC_TTS_MP3, 0);
    run_until(&s.cancelled, 5000);
    TAP_OK(s.cancelled && s.tts == NULL, "cancel: avc_tts_free from "
           "on_audio");
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0, "cancel: the free closed the connection");
    run_for(200);
    TAP_IS(s.calls_after, 0, "cancel: nothing after the free");
    s.act = ACT_NONE;
    sp_reset(&s);
    avc_config_free(cfg);

    /* freeing with a sentence running */
    tts = eleven(&cfg, base, NULL);
    mock_next("{\"delay\":100}");
    speak_with(tts, &s, "Hello there.", NULL, AVC_TTS_PCM16K, 0);
    run_for(150);
    s.cancelled = 1;
    avc_tts_free(tts);
    seen = wait_outcome("client-closed", 2000);
    TAP_OK(seen >= 0 && seen <= 100, "cancel: avc_tts_free closes the "
           "connection (%ld ms)", seen);
    run_for(100);
    TAP_IS(s.calls_after, 0, "cancel: nothing after avc_tts_free");
    avc_config_free(cfg);
    sp_reset(&s);
}

/* espeak */

/* espeak-ng's own WAV of text: its samples and rate, or 0 */
static size_t
espeak_wav(const char *text, unsigned *rate)
{
    char path[128], cmd[512];
    unsigned char h[44], buf[8];
    size_t samples = 0;
    uint32_t size;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/avc-test-tts-%d.wav", (int) getpid());
    snprintf(cmd, sizeof(cmd), "espeak-ng -v en-us -s 175 -w %s '%s' "
             "2>/dev/null", path, text);
    if (system(cmd) != 0) {
        return 0;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        return 0;
    }
    if (fread(h, 1, 12, f) == 12 && memcmp(h, "RIFF", 4) == 0) {
        while (fread(buf, 1, 8, f) == 8) {
            size = (uint32_t) buf[4] | (uint32_t) buf[5] << 8
                   | (uint32_t) buf[6] << 16 | (uint32_t) buf[7] << 24;
            if (memcmp(buf, "fmt ", 4) == 0 && size >= 16
                && fread(h, 1, 16, f) == 16)
            {
                *rate = (unsigned) h[4] | (unsigned) h[5] << 8
                        | (unsigned) h[6] << 16;
                fseek(f, (long) size - 16, SEEK_CUR);
            } else if (memcmp(buf, "data", 4) == 0) {
                samples = size / 2;
                break;
            } else {
                fseek(f, (long) size, SEEK_CUR);
            }
        }
    }
    fclose(f);
    unlink(path);
    return samples;
}

static double
rms_dbfs(const unsigned char *p, size_t len)
{
    double sum = 0, v;
    size_t i, n = len / 2;

    for (i = 0; i < n; i++) {
        v = (int16_t) (p[2 * i] | p[2 * i + 1] << 8);
        sum += v * v;
    }
    return n ? 10 * log10(sum / n / (32768.0 * 32768.0) + 1e-12) : -120;
}

static void
test_espeak(void)
{
    static const char *const kv[] = { "tts.provider", "espeak", NULL };
    const char *text = "Hello, I am Adam.";
    avc_config_t *cfg;
    avc_tts_t *tts;
    size_t frames = 0, wav, i;
    uint64_t samples = 0;
    unsigned rate = 0, wav_rate = 0, wav_ms, mp3_dur;
    int pp, mono;
    sp_t s;

    memset(&s, 0, sizeof(s));
    tts = new_tts(&cfg, kv);
    if (tts == NULL) {
        TAP_OK(0, "espeak: client");
        return;
    }
    wav = espeak_wav(text, &wav_rate);
    TAP_OK(wav > 0 && wav_rate == 22050, "espeak: espeak-ng -w wrote %zu "
           "samples at %u Hz", wav, wav_rate);
    wav_ms = wav_rate ? (unsigned) (wav * 1000 / wav_rate) : 0;

    TAP_IS(speak_with(tts, &s, text, NULL, AVC_TTS_MP3, 20000), AVC_OK,
           "espeak mp3: speak");
    TAP_OK(s.done && s.err == AVC_OK, "espeak mp3: done (%s)", s.error);
    TAP_STR(s.provider, "espeak", "espeak mp3: provider");
    pp = s.len > 0 && whole_frames(s.audio, s.len, &frames, &samples,
                                   &rate);
    TAP_OK(pp, "espeak mp3: the whole output parses frame by frame (%zu "
           "frames)", frames);
    TAP_IS(rate, 22050, "espeak mp3: 22050 Hz (MPEG-2)");
    TAP_IS(s.bad_pieces, 0, "espeak mp3: every piece starts at a frame "
           "header and is whole frames");
    TAP_OK(s.pieces >= 2, "espeak mp3: delivered in pieces (%zu)",
           s.pieces);
    TAP_OK(s.len >= 4 && (s.audio[3] & 0xc0) == 0xc0,
           "espeak mp3: mono");
    mp3_dur = rate ? (unsigned) (samples * 1000 / rate) : 0;
    TAP_IS(s.audio_ms, mp3_dur, "espeak mp3: audio_ms is the frames' length");
    TAP_OK(wav_ms && mp3_dur + 50 >= wav_ms && mp3_dur <= wav_ms + 200,
           "espeak mp3: %u ms, near espeak-ng's own WAV (%u ms)", mp3_dur,
           wav_ms);
    TAP_IS(s.bytes, s.len, "espeak mp3: result bytes");
    TAP_OK(s.vis_calls == 1 && s.vis_before_audio,
           "espeak mp3: visemes once, before the audio");
    TAP_OK(visemes_ok(s.vis, s.nvis, s.audio_ms, 0, &pp),
           "espeak mp3: visemes from 0, contiguous, to the audio's end "
           "(%zu)", s.nvis);
    TAP_OK(pp, "espeak mp3: PP for the m of \"am Adam\"");
    for (i = 0, mono = 0; i < s.nvis; i++) {
        mono += strcmp(s.vis[i].v, "sil") != 0;
    }
    TAP_OK(mono >= 8, "espeak mp3: %d spoken visemes", mono);

    TAP_IS(speak_with(tts, &s, text, NULL, AVC_TTS_PCM16K, 20000), AVC_OK,
           "espeak pcm: speak");
    TAP_OK(s.done && s.err == AVC_OK, "espeak pcm: done");
    /* espeak-ng's timing varies by some ms with what it said before */
    TAP_OK(s.len + 60 * 32 >= wav * 320 / 441 * 2
           && s.len <= wav * 320 / 441 * 2 + 60 * 32,
           "espeak pcm: the length of espeak's WAV at 16 kHz (%zu bytes, "
           "WAV %zu)", s.len, wav * 320 / 441 * 2);
    TAP_IS(s.bad_pieces, 0, "espeak pcm: pieces of whole samples");
    TAP_IS(s.audio_ms, s.len / 32, "espeak pcm: audio_ms");
    TAP_OK(s.pieces >= 4, "espeak pcm: pieces of about 250 ms (%zu)",
           s.pieces);
    TAP_OK(rms_dbfs(s.audio, s.len) > -40, "espeak pcm: not silence "
           "(%.1f dBFS)", rms_dbfs(s.audio, s.len));
    TAP_OK(visemes_ok(s.vis, s.nvis, s.audio_ms, 0, &pp) && pp,
           "espeak pcm: visemes to the audio's end, with PP");
    TAP_OK(s.nvis >= 2 && strcmp(s.vis[0].v, "sil") == 0
           && s.vis[0].d_ms < 100, "espeak pcm: speech starts early");

    speak_with(tts, &s, "Buy my map, please.", NULL, AVC_TTS_PCM16K, 20000);
    for (i = 0, pp = 0; i < s.nvis; i++) {
        pp += strcmp(s.vis[i].v, "PP") == 0;
    }
    TAP_OK(s.done && s.err == AVC_OK && pp >= 4,
           "espeak: b, m, m, p, p of \"Buy my map, please\" give PP (%d)",
           pp);

    /* a voice espeak does not have */
    speak_with(tts, &s, "Hello.", "xx-nope", AVC_TTS_MP3, 20000);
    TAP_OK(s.done && s.err == AVC_EINVAL && s.pieces == 0,
           "espeak: an unknown voice fails");
    TAP_STR(s.error, "The voice is not available", "espeak: unknown voice: "
            "the client's message");
    speak_with(tts, &s, "Hello.", "en-us+m3", AVC_TTS_PCM16K, 20000);
    TAP_OK(s.done && s.err == AVC_OK && s.len > 0, "espeak: a voice "
           "variant");

    /* cancelled at once: nothing comes */
    speak_with(tts, &s, "This sentence is cancelled before it is said.",
               NULL, AVC_TTS_MP3, 0);
    s.cancelled = 1;
    avc_tts_cancel(s.op);
    run_for(500);
    TAP_IS(s.calls_after + (int) s.pieces, 0, "espeak: cancelled at once, "
           "no callback");
    TAP_IS(avc_tts_active(tts), 0, "espeak: nothing active");

    /* cancelled from the first piece */
    s.act = ACT_CANCEL;
    s.act_after = 1;
    speak_with(tts, &s, "A long sentence about vehicle service contracts "
               "and the coverage they give.", NULL, AVC_TTS_PCM16K, 0);
    run_until(&s.cancelled, 20000);
    run_for(200);
    TAP_OK(s.cancelled && s.pieces == 1 && s.calls_after == 0,
           "espeak: cancelled from on_audio, nothing after");
    s.act = ACT_NONE;

    /* freed with work on the pool */
    speak_with(tts, &s, "The client goes away while this is made.", NULL,
               AVC_TTS_MP3, 0);
    s.cancelled = 1;
    avc_tts_free(tts);
    run_for(500);
    TAP_IS(s.calls_after, 0, "espeak: avc_tts_free with work running");
    avc_config_free(cfg);
    sp_reset(&s);
}

/* the shapes of two viseme lists are the same, whatever their times */
static int
same_shapes(const sp_t *a, const sp_t *b)
{
    size_t i;

    if (a->nvis != b->nvis || a->vis == NULL || b->vis == NULL) {
        return 0;
    }
    for (i = 0; i < a->nvis; i++) {
        if (strcmp(a->vis[i].v, b->vis[i].v) != 0) {
            return 0;
        }
    }
    return 1;
}

/*
 * Many sentences at once: the same as one by one.  espeak-ng's timing
 * depends a little on what it said just before, so the audio is compared
 * by length (within 5%) and the phonemes by the visemes they give.
 */
static void
test_many(void)
{
    static const char *const kv[] = { "tts.provider", "espeak", NULL };
    static const char *const texts[] = {
        "Hello, I am Adam.",
        "A vehicle service contract covers repairs.",
        "GAP pays the difference on the loan.",
        "Tire and wheel protection is popular.",
        "Let us practise the menu presentation.",
        "The customer says the payment is too high.",
    };
    enum { N = 12 };
    avc_tts_request_t req;
    avc_config_t *cfg;
    avc_tts_t *tts;
    sp_t *one, *all;
    size_t i, same = 0;
    int done, rc = AVC_OK;
    uint64_t start;

    tts = new_tts(&cfg, kv);
    one = calloc(N, sizeof(*one));
    all = calloc(N, sizeof(*all));
    for (i = 0; i < N; i++) {
        speak_with(tts, &one[i], texts[i % COUNTOF(texts)], NULL,
                   i % 2 ? AVC_TTS_MP3 : AVC_TTS_PCM16K, 20000);
    }
    start = now_ms();
    for (i = 0; i < N && rc == AVC_OK; i++) {
        all[i].tts = tts;
        all[i].format = i % 2 ? AVC_TTS_MP3 : AVC_TTS_PCM16K;
        memset(&req, 0, sizeof(req));
        req.text = texts[i % COUNTOF(texts)];
        req.format = all[i].format;
        rc = avc_tts_speak(tts, &req, on_audio, on_viseme, on_done, &all[i],
                           &all[i].op);
    }
    TAP_IS(rc, AVC_OK, "many: %d sentences started", N);
    TAP_IS(avc_tts_active(tts), N, "many: all active");
    do {
        avc_loop_run_once(loop, 10);
        for (i = 0, done = 0; i < N; i++) {
            done += all[i].done;
        }
    } while (done < N && now_ms() - start < 60000);
    TAP_IS(done, N, "many: all done");
    for (i = 0; i < N; i++) {
        same += all[i].err == AVC_OK && all[i].len > 0
                && all[i].len * 20 >= one[i].len * 19
                && all[i].len * 19 <= one[i].len * 20
                && all[i].bad_pieces == 0 && one[i].bad_pieces == 0
                && same_shapes(&all[i], &one[i]);
    }
    TAP_IS(same, N, "many: at once, the same phonemes and about the same "
           "audio as one by one");
    for (i = 0; i < N; i++) {
        sp_reset(&one[i]);
        sp_reset(&all[i]);
    }
    free(one);
    free(all);
    avc_tts_free(tts);
    avc_config_free(cfg);
}

int
main(int argc, char **argv)
{
    static const char *args[] = { "--key", KEY, "--mp3", mp3_path,
                                  "--chunk", "1000", NULL };
    static const char *jargs[] = { "--key", KEY, "--mp3", junk_path,
                                   "--chunk", "333", NULL };

    if (getenv("AVC_TOP")) {
        top = getenv("AVC_TOP");
    }
    tap_select(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    avc_log_set(log_cb, NULL, AVC_LOG_DEBUG);

    loop = avc_loop_new(4);
    http = avc_http_new(loop);
    if (loop == NULL || http == NULL) {
        TAP_OK(0, "loop and HTTP client");
        return tap_done();
    }
    if (tap_section("config")) {
        test_config();
    }
    if (tap_section("visemes")) {
        test_visemes();
    }
    if (tap_section("eleven") || tap_section("errors") || tap_section("retry")
        || tap_section("timeout") || tap_section("cancel"))
    {
        if (write_mp3() != 0
            || mock_start_script(&mk, top, "elevenlabs.pl", args) != 0
            || mock_start_script(&mkj, top, "elevenlabs.pl", jargs) != 0)
        {
            TAP_OK(0, "the mocks started");
        } else {
            snprintf(base, sizeof(base), "http://127.0.0.1:%d/", mk.port);
            snprintf(base_junk, sizeof(base_junk), "http://127.0.0.1:%d",
                     mkj.port);
            if (tap_section("eleven")) {
                test_eleven();
            }
            if (tap_section("errors")) {
                test_errors();
            }
            if (tap_section("retry")) {
                test_retry();
            }
            if (tap_section("timeout")) {
                test_timeout();
            }
            if (tap_section("cancel")) {
                test_cancel();
            }
        }
        mock_stop(&mk);
        mock_stop(&mkj);
        unlink(mp3_path);
        unlink(junk_path);
    }
    if (tap_section("espeak")) {
        test_espeak();
    }
    if (tap_section("many")) {
        test_many();
    }
    avc_http_free(http);
    avc_loop_free(loop);
    return tap_done();
}
