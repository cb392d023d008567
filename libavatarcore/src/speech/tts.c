/*
 * The text-to-speech client: configuration, the dispatcher between the
 * providers, the life of a sentence being spoken (see tts_int.h), its
 * deadlines and the messages a client may see.
 *
 * Besides the keys documented in avatarcore/speech.h, avc_tts_new()
 * reads three tuning keys of the ElevenLabs client: tts.connect_timeout
 * (ms, default 5000), tts.retries (attempts on 429/5xx/connect failures
 * and on a stream that breaks before its first byte, default 3) and
 * tts.backoff (ms before the second attempt, doubled after each, default
 * 250; a Retry-After from the server wins when longer).
 */
#include "tts_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_TTS_ELEVEN_BASE   "https://api.elevenlabs.io"
/* ElevenLabs' premade voice "Adam" */
#define AVC_TTS_ELEVEN_VOICE  "pNInz6obpgDQGcFmaJgB"
#define AVC_TTS_ELEVEN_MODEL  "eleven_turbo_v2_5"
#define AVC_TTS_ESPEAK_VOICE  "en-us"
#define AVC_TTS_MODEL_LEN     100

static int
avc_tts_bad(const char *key, const char *value, const char *why)
{
    avc_log(AVC_LOG_ERR, "tts: bad setting %s \"%s\": %s", key,
            value ? value : "", why);
    return AVC_EINVAL;
}

static int
avc_tts_uint(const avc_config_t *cfg, const char *key, long long def,
    long long min, long long max, unsigned *out)
{
    long long v = def;

    if (avc_config_get_int(cfg, key, def, min, max, &v) != AVC_OK) {
        avc_log(AVC_LOG_ERR, "tts: bad setting %s \"%s\": not an integer "
                "in %lld-%lld", key, avc_config_get(cfg, key, ""), min,
                max);
        return AVC_EINVAL;
    }
    *out = (unsigned) v;
    return AVC_OK;
}

/*
 * A voice name fit for a URL path segment (an ElevenLabs voice id) or
 * for espeak ("en-us", "en-us+m3", "mb-us1").
 */
static int
avc_tts_voice_ok(const char *v, avc__tts_kind_t kind)
{
    size_t n = strlen(v), i;
    char c;

    if (n == 0 || n > AVC__TTS_VOICE_LEN) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'
              || (kind == AVC__TTS_ESPEAK && c == '+')))
        {
            return 0;
        }
    }
    return 1;
}

static int
avc_tts_configure(avc_tts_t *tts, const avc_config_t *cfg)
{
    const char *prov, *key, *base, *voice, *model, *rate;
    double r;
    char *end;
    int rc = AVC_OK;

    key = avc_config_get(cfg, "tts.key", "");
    prov = avc_config_get(cfg, "tts.provider", *key ? "elevenlabs"
                                                      : "espeak");
    if (strcmp(prov, "espeak") == 0) {
        tts->kind = AVC__TTS_ESPEAK;
        tts->provider = "espeak";
    } else if (strcmp(prov, "elevenlabs") == 0) {
        tts->kind = AVC__TTS_ELEVENLABS;
        tts->provider = "elevenlabs";
    } else {
        return avc_tts_bad("tts.provider", prov,
                           "not espeak or elevenlabs");
    }

    rc |= avc_tts_uint(cfg, "tts.timeout", 20000, 0, 3600000,
                       &tts->timeout_ms);
    rc |= avc_tts_uint(cfg, "tts.first_byte_timeout", 10000, 0, 3600000,
                       &tts->first_byte_ms);
    rc |= avc_tts_uint(cfg, "tts.connect_timeout", 5000, 1, 600000,
                       &tts->connect_ms);
    rc |= avc_tts_uint(cfg, "tts.retries", 3, 1, 10, &tts->retries);
    rc |= avc_tts_uint(cfg, "tts.backoff", 250, 0, 60000, &tts->backoff_ms);
    rate = avc_config_get(cfg, "tts.rate", "175");
    errno = 0;
    r = strtod(rate, &end);
    if (errno != 0 || end == rate || *end != '\0' || !(r >= 80 && r <= 450))
    {
        rc = avc_tts_bad("tts.rate", rate, "not a number in 80-450");
    }
    tts->rate = (unsigned) lround(r >= 80 && r <= 450 ? r : 175);
    if (rc != AVC_OK) {
        return AVC_EINVAL;
    }

    voice = avc_config_get(cfg, "tts.voice",
                           tts->kind == AVC__TTS_ESPEAK
                           ? AVC_TTS_ESPEAK_VOICE : AVC_TTS_ELEVEN_VOICE);
    if (!avc_tts_voice_ok(voice, tts->kind)) {
        return avc_tts_bad("tts.voice", voice, "not a voice name (letters, "
                           "digits, '-', '_', at most 64)");
    }
    tts->voice = strdup(voice);
    if (tts->voice == NULL) {
        return AVC_ENOMEM;
    }
    if (tts->kind == AVC__TTS_ESPEAK) {
        return AVC_OK;
    }

    if (tts->http == NULL) {
        return avc_tts_bad("tts.provider", prov, "needs an HTTP client");
    }
    if (*key == '\0') {
        avc_log(AVC_LOG_ERR, "tts: bad setting tts.key: required by "
                "elevenlabs");
        return AVC_EINVAL;
    }
    if (strpbrk(key, "\r\n") != NULL) {
        /* never quote a key, not even a broken one */
        avc_log(AVC_LOG_ERR, "tts: bad setting tts.key: contains a line "
                "break");
        return AVC_EINVAL;
    }
    model = avc_config_get(cfg, "tts.model", AVC_TTS_ELEVEN_MODEL);
    if (*model == '\0' || strlen(model) > AVC_TTS_MODEL_LEN) {
        return avc_tts_bad("tts.model", model, "empty or too long");
    }
    base = avc_config_get(cfg, "tts.base_url", AVC_TTS_ELEVEN_BASE);
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
    {
        return avc_tts_bad("tts.base_url", base, "not an http(s) URL");
    }
    tts->base = avc__url_join(base, "");
    tts->key = strdup(key);
    tts->model = strdup(model);
    if (tts->base == NULL || tts->key == NULL || tts->model == NULL) {
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

static void
avc_tts_destroy(avc_tts_t *tts)
{
    free(tts->base);
    avc__free_secret(tts->key);
    free(tts->voice);
    free(tts->model);
    free(tts);
}

AVC_API avc_tts_t *
avc_tts_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    avc_tts_t *tts;
    int rc;

    if (loop == NULL || cfg == NULL) {
        if (err) {
            *err = AVC_EINVAL;
        }
        return NULL;
    }
    tts = calloc(1, sizeof(*tts));
    if (tts == NULL) {
        if (err) {
            *err = AVC_ENOMEM;
        }
        return NULL;
    }
    tts->loop = loop;
    tts->http = http;
    rc = avc_tts_configure(tts, cfg);
    if (rc != AVC_OK) {
        avc_tts_destroy(tts);
        if (err) {
            *err = rc;
        }
        return NULL;
    }
    if (err) {
        *err = AVC_OK;
    }
    return tts;
}

AVC_API const char *
avc_tts_provider(const avc_tts_t *tts)
{
    return tts->provider;
}

AVC_API size_t
avc_tts_active(const avc_tts_t *tts)
{
    return tts ? tts->ops.n : 0;
}

/* the life of an op */

static void
avc_tts_link(avc_tts_t *tts, avc_tts_op_t *op)
{
    op->tts = tts;
    avc__list_add(&tts->ops, &op->link);
}

static void
avc_tts_unlink(avc_tts_op_t *op)
{
    avc_tts_t *tts = op->tts;

    if (tts == NULL) {
        return;
    }
    avc__list_del(&tts->ops, &op->link);
    op->tts = NULL;
}

/* stop everything that could call back into the op */
static void
avc_tts_release(avc_tts_op_t *op)
{
    avc_timer_free(op->first_timer);
    avc_timer_free(op->total_timer);
    op->first_timer = op->total_timer = NULL;
    if (op->kind == AVC__TTS_ELEVENLABS) {
        avc__tts_eleven_stop(op);
    } else {
        avc__tts_espeak_stop(op);
    }
}

static void
avc_tts_op_free(avc_tts_op_t *op)
{
    avc_tts_release(op);
    avc__buf_free(&op->carry);
    avc__buf_free(&op->errbody);
    free(op->text);
    free(op);
}

void
avc__tts_enter(avc_tts_op_t *op)
{
    op->busy++;
}

void
avc__tts_leave(avc_tts_op_t *op)
{
    if (--op->busy == 0 && (op->canceled || op->finished)) {
        avc_tts_op_free(op);
    }
}

AVC_API void
avc_tts_cancel(avc_tts_op_t *op)
{
    if (op == NULL || op->canceled || op->finished) {
        return;
    }
    op->canceled = 1;
    avc_tts_unlink(op);
    avc_tts_release(op);
    if (op->busy == 0) {
        avc_tts_op_free(op);
    }
}

AVC_API void
avc_tts_free(avc_tts_t *tts)
{
    if (tts == NULL) {
        return;
    }
    while (tts->ops.head) {
        avc_tts_cancel((avc_tts_op_t *) tts->ops.head);
    }
    avc_tts_destroy(tts);
}

int
avc__tts_audio(avc_tts_op_t *op, const void *p, size_t n)
{
    if (op->canceled || op->finished) {
        return AVC_ECANCELED;
    }
    if (n == 0) {
        return AVC_OK;
    }
    if (op->bytes == 0 && op->first_timer) {
        avc_timer_stop(op->first_timer);
    }
    op->bytes += n;
    op->on_audio(p, n, op->data);
    return op->canceled ? AVC_ECANCELED : AVC_OK;
}

int
avc__tts_visemes(avc_tts_op_t *op, const avc_viseme_t *v, size_t n)
{
    if (op->canceled || op->finished) {
        return AVC_ECANCELED;
    }
    if (op->on_viseme == NULL || n == 0) {
        return AVC_OK;
    }
    op->on_viseme(v, n, op->data);
    return op->canceled ? AVC_ECANCELED : AVC_OK;
}

static const char *
avc_tts_client_message(int err, size_t bytes)
{
    switch (err) {
    case AVC_OK:
        return NULL;
    case AVC_ETIMEDOUT:
        return bytes ? "The speech service took too long to finish"
                     : "The speech service did not answer in time";
    case AVC_ECONNECT:
        return "The speech service could not be reached";
    case AVC_EHTTP:
        return bytes ? "The connection to the speech service broke off "
                       "in mid-sentence"
                     : "The connection to the speech service failed";
    case AVC_EPROTO:
        return "The speech service sent audio that could not be used";
    case AVC_ENOMEM:
        return "The server is out of memory";
    case AVC_EUPSTREAM:
        return "The speech service reported an error";
    default:
        return "The speech synthesis failed";
    }
}

void
avc__tts_finish(avc_tts_op_t *op, int err)
{
    avc_tts_result_t res;

    if (op->finished || op->canceled) {
        return;
    }
    op->finished = 1;
    avc_tts_release(op);
    avc_tts_unlink(op);

    memset(&res, 0, sizeof(res));
    res.provider = op->provider;
    res.audio_ms = op->audio_ms;
    res.bytes = op->bytes;
    if (err != AVC_OK) {
        res.error = op->error ? op->error
                              : avc_tts_client_message(err, op->bytes);
    }
    op->on_done(err, &res, op->data);
}

static void
avc_tts_first_timeout(avc_timer_t *timer, void *arg)
{
    avc_tts_op_t *op = arg;

    avc__tts_enter(op);
    if (op->bytes == 0) {
        avc_log(AVC_LOG_WARN, "tts: %s: no audio within %u ms",
                op->provider, op->tts->first_byte_ms);
        op->error = NULL;
        avc__tts_finish(op, AVC_ETIMEDOUT);
    }
    avc__tts_leave(op);
}

static void
avc_tts_total_timeout(avc_timer_t *timer, void *arg)
{
    avc_tts_op_t *op = arg;

    avc__tts_enter(op);
    avc_log(AVC_LOG_WARN, "tts: %s: the sentence took over %u ms (%zu "
            "bytes of audio)", op->provider, op->tts->timeout_ms, op->bytes);
    op->error = NULL;
    avc__tts_finish(op, AVC_ETIMEDOUT);
    avc__tts_leave(op);
}

void
avc__tts_snippet(const avc_tts_t *tts, const char *s, size_t n, char *out,
    size_t outn)
{
    size_t i, kl;
    char *p;

    if (outn == 0) {
        return;
    }
    if (s == NULL) {
        n = 0;
    }
    if (n >= outn) {
        n = outn - 1;
    }
    for (i = 0; i < n; i++) {
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : ' ';
    }
    out[n] = '\0';
    kl = tts && tts->key ? strlen(tts->key) : 0;
    if (kl >= 4) {
        while ((p = strstr(out, tts->key)) != NULL) {
            memset(p, '*', kl);
        }
    }
}

/* MPEG audio frame headers */

int
avc__mp3_frame(const unsigned char *p, size_t n, unsigned *len,
    unsigned *samples, unsigned *rate)
{
    static const unsigned short kbps[2][16] = {
        /* MPEG-1 layer III */
        { 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
          0 },
        /* MPEG-2 and 2.5 layer III */
        { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0 }
    };
    static const unsigned rates[4][3] = {
        { 11025, 12000, 8000 },     /* 2.5 */
        { 0, 0, 0 },                /* reserved */
        { 22050, 24000, 16000 },    /* 2 */
        { 44100, 48000, 32000 }     /* 1 */
    };
    unsigned ver, layer, bi, si, pad, br, sr, lsf;

    if (n < 4 || p[0] != 0xff || (p[1] & 0xe0) != 0xe0) {
        return 0;
    }
    ver = (p[1] >> 3) & 3;
    layer = (p[1] >> 1) & 3;
    bi = p[2] >> 4;
    si = (p[2] >> 2) & 3;
    pad = (p[2] >> 1) & 1;
    if (ver == 1 || layer != 1 || bi == 0 || bi == 15 || si == 3
        || (p[3] & 3) == 2)             /* reserved emphasis */
    {
        return 0;
    }
    lsf = ver != 3;
    br = kbps[lsf][bi] * 1000u;
    sr = rates[ver][si];
    *len = (lsf ? 72 : 144) * br / sr + pad;
    *samples = lsf ? 576 : 1152;
    *rate = sr;
    return 1;
}

/* the dispatcher */

/*
 * A copy of the request's text fit for any provider: invalid UTF-8 and
 * control characters become spaces.  *chars counts the characters and
 * *blank tells whether nothing but white space is left.
 */
static char *
avc_tts_clean_text(const char *s, size_t *chars, int *blank)
{
    size_t n = strlen(s), i = 0, k, out = 0, count = 0;
    unsigned char c;
    char *t;

    t = malloc(n + 1);
    if (t == NULL) {
        return NULL;
    }
    *blank = 1;
    while (i < n) {
        c = (unsigned char) s[i];
        k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
            : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (k == 0 || i + k > n || (k > 1 && !avc__utf8_valid(s + i, k))) {
            t[out++] = ' ';
            i++;
        } else if (k == 1 && (c < 0x20 || c == 0x7f)) {
            t[out++] = c == '\n' || c == '\t' || c == '\r' ? (char) c : ' ';
            i++;
        } else {
            memcpy(t + out, s + i, k);
            out += k;
            i += k;
            if (k > 1 || c != ' ') {
                *blank = 0;
            }
        }
        count++;
    }
    t[out] = '\0';
    *chars = count;
    return t;
}

AVC_API int
avc_tts_speak(avc_tts_t *tts, const avc_tts_request_t *req,
    avc_tts_audio_cb on_audio, avc_tts_viseme_cb on_viseme,
    avc_tts_done_cb done, void *data, avc_tts_op_t **opp)
{
    const char *voice;
    avc_tts_op_t *op;
    size_t chars;
    int blank, rc;
    char *text;

    if (opp) {
        *opp = NULL;
    }
    if (tts == NULL || req == NULL || req->text == NULL || on_audio == NULL
        || done == NULL
        || (req->format != AVC_TTS_MP3 && req->format != AVC_TTS_PCM16K))
    {
        return AVC_EINVAL;
    }
    voice = req->voice && *req->voice ? req->voice : tts->voice;
    if (!avc_tts_voice_ok(voice, tts->kind)) {
        return AVC_EINVAL;
    }
    text = avc_tts_clean_text(req->text, &chars, &blank);
    if (text == NULL) {
        return AVC_ENOMEM;
    }
    if (blank || chars > AVC__TTS_TEXT_MAX) {
        free(text);
        return blank ? AVC_EINVAL : AVC_ETOOBIG;
    }
    op = calloc(1, sizeof(*op));
    if (op == NULL) {
        free(text);
        return AVC_ENOMEM;
    }
    avc__buf_init(&op->carry);
    avc__buf_init(&op->errbody);
    op->kind = tts->kind;
    op->format = req->format;
    op->on_audio = on_audio;
    op->on_viseme = on_viseme;
    op->on_done = done;
    op->data = data;
    op->text = text;
    op->provider = tts->provider;
    snprintf(op->voice, sizeof(op->voice), "%s", voice);
    avc_tts_link(tts, op);

    rc = AVC_OK;
    if (tts->first_byte_ms) {
        op->first_timer = avc_timer_new(tts->loop, avc_tts_first_timeout,
                                        op);
        rc = op->first_timer ? AVC_OK : AVC_ENOMEM;
    }
    if (rc == AVC_OK && tts->timeout_ms) {
        op->total_timer = avc_timer_new(tts->loop, avc_tts_total_timeout,
                                        op);
        rc = op->total_timer ? AVC_OK : AVC_ENOMEM;
    }
    if (rc == AVC_OK) {
        rc = tts->kind == AVC__TTS_ELEVENLABS ? avc__tts_eleven_start(op)
                                              : avc__tts_espeak_start(op);
    }
    if (rc != AVC_OK) {
        /* nothing was called back: undo quietly */
        avc_tts_unlink(op);
        avc_tts_op_free(op);
        return rc;
    }
    if (op->first_timer) {
        avc_timer_start(op->first_timer, tts->first_byte_ms);
    }
    if (op->total_timer) {
        avc_timer_start(op->total_timer, tts->timeout_ms);
    }
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}
