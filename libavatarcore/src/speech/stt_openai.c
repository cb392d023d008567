/*
 * The OpenAI-compatible provider: POST {base}/audio/transcriptions as
 * multipart/form-data (OpenAI's whisper-1, and the servers that copy it:
 * whisper.cpp, faster-whisper, LocalAI, Groq):
 *
 *   file             the audio as received, named audio.<ext> with its
 *                    content type; raw PCM16K is wrapped as WAV first
 *   model            stt.model
 *   language         the request's or stt.language, as ISO 639-1 ("en")
 *   response_format  verbose_json
 *
 * and the answer, 200 application/json:
 *
 *   {"task": "transcribe", "language": "english", "duration": 2.7,
 *    "text": " What does it cover?",
 *    "segments": [{"start", "end", "text", "avg_logprob",
 *                  "no_speech_prob", ...}],
 *    "words": [{"word", "start", "end"}]}      (when asked for; kept when
 *                                               a server sends them)
 *
 * The HTTP client retries 429, 5xx and connect failures, honouring
 * Retry-After, within the transcription's deadline.  A 200 whose body is
 * empty or is not such an object is an error (502), never an empty
 * transcript: an empty transcript is "text": "" (silence).
 */
#include "stt_int.h"

#include "json_util.h"

#include <avatarcore/multipart.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenAI's limit on an uploaded file */
#define AVC_STT_UPLOAD_MAX   (25u * 1024 * 1024)
/* an answer: a transcript of a long file with its words */
#define AVC_STT_ANSWER_MAX   (4u * 1024 * 1024)
#define AVC_STT_CONNECT_MS   10000
#define AVC_STT_SNIPPET      160

static void
avc_stt_detail(avc_stt_op_t *op, const char *what, const char *s, size_t n)
{
    char snip[AVC_STT_SNIPPET + 1];

    avc__stt_snippet(op->stt, s, n, snip, sizeof(snip));
    snprintf(op->detail, sizeof(op->detail), "%.80s: %s", what, snip);
}

/* a number field of an object, or -1 */
static double
avc_stt_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : -1;
}

int
avc__stt_openai_parse(const char *body, size_t len, char **text,
    char **words_json, double *confidence, unsigned *audio_ms, char *why,
    size_t whyn)
{
    const json_t *t, *segs, *seg, *words, *w, *e;
    json_t *root, *out = NULL, *item;
    double d, lp, ns, weight = 0, sum = 0, speech = 0, start, end;
    const char *s;
    size_t i, n;
    int err;

    *text = NULL;
    *words_json = NULL;
    *confidence = 0;
    *audio_ms = 0;
    if (len == 0) {
        snprintf(why, whyn, "an empty answer");
        return AVC_EPROTO;
    }
    root = avc__json_parse(body, len, AVC_STT_ANSWER_MAX, &err, NULL);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        if (err == AVC_ENOMEM) {
            return AVC_ENOMEM;
        }
        snprintf(why, whyn, "an answer that is not a JSON object");
        return AVC_EPROTO;
    }
    e = json_object_get(root, "error");
    t = json_object_get(root, "text");
    if ((e != NULL && !json_is_null(e)) || !json_is_string(t)) {
        snprintf(why, whyn, "an answer without \"text\"");
        json_decref(root);
        return AVC_EPROTO;
    }
    /* whisper puts a space before the text */
    s = json_string_value(t);
    n = json_string_length(t);
    if (memchr(s, '\0', n) != NULL) {
        snprintf(why, whyn, "a transcript with a NUL character");
        json_decref(root);
        return AVC_EPROTO;
    }
    while (n > 0 && isspace((unsigned char) *s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char) s[n - 1])) {
        n--;
    }
    *text = malloc(n + 1);
    if (*text == NULL) {
        json_decref(root);
        return AVC_ENOMEM;
    }
    memcpy(*text, s, n);
    (*text)[n] = '\0';

    d = avc_stt_num(root, "duration");
    if (d > 0 && d < 86400) {
        *audio_ms = (unsigned) (d * 1000 + 0.5);
    }
    /* confidence: the mean token log-probability of the segments,
     * weighted by their length, scaled by the chance they are speech */
    segs = json_object_get(root, "segments");
    if (json_is_array(segs)) {
        json_array_foreach(segs, i, seg) {
            lp = avc_stt_num(seg, "avg_logprob");
            if (!json_is_number(json_object_get(seg, "avg_logprob"))) {
                continue;
            }
            start = avc_stt_num(seg, "start");
            end = avc_stt_num(seg, "end");
            d = end > start && start >= 0 ? end - start : 1;
            ns = avc_stt_num(seg, "no_speech_prob");
            weight += d;
            sum += d * (lp < 0 ? lp : 0);
            speech += d * (ns >= 0 && ns <= 1 ? 1 - ns : 1);
        }
    }
    if (n == 0) {
        *confidence = 0;
    } else if (weight > 0) {
        *confidence = exp(sum / weight) * (speech / weight);
    } else {
        /* the provider gives no measure */
        *confidence = 1;
    }
    if (!(*confidence >= 0)) {
        *confidence = 0;
    } else if (*confidence > 1) {
        *confidence = 1;
    }

    /* words, as the offline provider gives them */
    words = json_object_get(root, "words");
    if (json_is_array(words) && json_array_size(words) > 0) {
        out = json_array();
        json_array_foreach(words, i, w) {
            t = json_object_get(w, "word");
            start = avc_stt_num(w, "start");
            end = avc_stt_num(w, "end");
            if (!json_is_string(t) || start < 0 || end < start) {
                continue;
            }
            item = json_pack("{s:O,s:f,s:f}", "word", t, "start",
                             round(start * 100) / 100, "end",
                             round(end * 100) / 100);
            if (item == NULL || out == NULL
                || json_array_append_new(out, item) != 0)
            {
                json_decref(out);
                json_decref(root);
                free(*text);
                *text = NULL;
                return AVC_ENOMEM;
            }
        }
        if (out && json_array_size(out) > 0) {
            *words_json = json_dumps(out, JSON_COMPACT
                                          | JSON_REAL_PRECISION(6));
            if (*words_json == NULL) {
                json_decref(out);
                json_decref(root);
                free(*text);
                *text = NULL;
                return AVC_ENOMEM;
            }
        }
        json_decref(out);
    }
    json_decref(root);
    return AVC_OK;
}

/* how the request ended: AVC_OK with the answer parsed, or an error */
static void
avc_stt_on_done(avc_http_req_t *req, int err, void *data)
{
    avc_stt_op_t *op = data;
    char *text = NULL, *words = NULL, why[128];
    const char *body, *m = NULL;
    avc__stt_out_t out;
    unsigned audio_ms;
    double conf;
    json_t *root;
    size_t len;
    int status, rc;

    avc__stt_enter(op);
    op->req = NULL;
    if (op->canceled || op->finished) {
        avc__stt_leave(op);
        return;
    }
    if (err != AVC_OK) {
        snprintf(op->detail, sizeof(op->detail), "%s after %u attempt(s)",
                 avc_strerror(err), avc_http_req_attempts(req));
        avc__stt_finish(op, err == AVC_ETIMEDOUT || err == AVC_ECONNECT
                            || err == AVC_ENOMEM ? err
                            : err == AVC_ETOOBIG ? AVC_EPROTO : AVC_EHTTP,
                        NULL, NULL);
        avc__stt_leave(op);
        return;
    }
    status = avc_http_resp_status(req);
    body = avc_http_resp_body(req, &len);
    if (status < 200 || status > 299) {
        root = len ? avc__json_parse(body, len, 0, &rc, NULL) : NULL;
        avc__json_get_str(json_object_get(root, "error"), "message", &m);
        if (m) {
            avc_stt_detail(op, "status", m, strlen(m));
        } else {
            avc_stt_detail(op, "status", body, len);
        }
        json_decref(root);
        rc = (int) strlen(op->detail);
        snprintf(op->detail + rc, sizeof(op->detail) - (size_t) rc,
                 " (%d after %u attempt(s))", status,
                 avc_http_req_attempts(req));
        avc__stt_finish(op, AVC_EUPSTREAM, NULL, NULL);
        avc__stt_leave(op);
        return;
    }
    rc = avc__stt_openai_parse(body, len, &text, &words, &conf, &audio_ms,
                               why, sizeof(why));
    if (rc != AVC_OK) {
        avc_stt_detail(op, why, body, len);
        avc__stt_finish(op, rc, NULL, NULL);
        avc__stt_leave(op);
        return;
    }
    memset(&out, 0, sizeof(out));
    out.text = text;
    out.confidence = conf;
    out.words_json = words;
    out.audio_ms = audio_ms;
    avc__stt_finish(op, AVC_OK, &out, NULL);
    free(text);
    free(words);
    avc__stt_leave(op);
}

int
avc__stt_openai_start(avc_stt_op_t *op, const avc_stt_request_t *r)
{
    avc_stt_t *stt = op->stt;
    avc_multipart_t *mp;
    avc_http_req_t *req;
    const char *name, *ctype;
    char lang[AVC__STT_LANG_LEN + 1], fname[32];
    void *wav = NULL;
    const void *file = r->audio;
    size_t flen = r->len, i;
    int rc = AVC_OK;

    if (r->format == AVC_AUDIO_UNKNOWN) {
        avc__stt_fail_soon(op, AVC_EPARSE,
                           "The audio format is not supported");
        return AVC_OK;
    }
    if (r->format == AVC_AUDIO_PCM) {
        if (r->len % 2 != 0) {
            avc__stt_fail_soon(op, AVC_EPARSE, "The audio could not be "
                               "decoded");
            return AVC_OK;
        }
        op->audio_ms = (unsigned) ((unsigned long long) r->len / 2 * 1000
                                   / AVC__STT_RATE);
        if (op->audio_ms > 24 * 3600 * 1000u) {
            avc__stt_fail_soon(op, AVC_ETOOBIG, NULL);
            return AVC_OK;
        }
        rc = avc_audio_wav(r->audio, r->len / 2, AVC__STT_RATE, &wav, &flen);
        if (rc != AVC_OK) {
            return rc;
        }
        file = wav;
        name = "wav";
        ctype = avc_audio_mime(AVC_AUDIO_WAV);
    } else {
        name = avc_audio_ext(r->format);
        ctype = avc_audio_mime(r->format);
    }
    if (flen > AVC_STT_UPLOAD_MAX) {
        free(wav);
        avc__stt_fail_soon(op, AVC_ETOOBIG, "The audio is too large for "
                           "the speech recognition service");
        return AVC_OK;
    }
    snprintf(fname, sizeof(fname), "audio.%s", name ? name : "bin");
    /* whisper takes ISO 639-1: "en-US" is sent as "en" */
    for (i = 0; op->language[i] && op->language[i] != '-'
                && op->language[i] != '_' && i < sizeof(lang) - 1; i++)
    {
        lang[i] = (char) tolower((unsigned char) op->language[i]);
    }
    lang[i] = '\0';

    mp = avc_multipart_new();
    if (mp == NULL) {
        free(wav);
        return AVC_ENOMEM;
    }
    rc |= avc_multipart_add_file(mp, "file", fname, ctype, file, flen);
    free(wav);
    rc |= avc_multipart_add_field(mp, "model", stt->model,
                                  strlen(stt->model));
    rc |= avc_multipart_add_field(mp, "language", lang, strlen(lang));
    rc |= avc_multipart_add_field(mp, "response_format", "verbose_json",
                                  12);
    req = rc == AVC_OK ? avc_http_req_new(stt->http, "POST", stt->url)
                       : NULL;
    if (req == NULL) {
        avc_multipart_free(mp);
        return rc != AVC_OK ? rc : AVC_ENOMEM;
    }
    rc = avc_multipart_to_request(mp, req);
    avc_multipart_free(mp);
    if (rc != AVC_OK) {
        avc_http_req_free(req);
        return rc;
    }
    avc_http_req_add_header(req, "Accept", "application/json");
    if (stt->auth) {
        avc_http_req_add_header(req, "Authorization", stt->auth);
    }
    avc_http_req_set_timeouts(req, stt->timeout_ms
                                   && stt->timeout_ms < AVC_STT_CONNECT_MS
                                   ? stt->timeout_ms : AVC_STT_CONNECT_MS,
                              0, stt->timeout_ms);
    avc_http_req_set_retry(req, stt->attempts, stt->backoff_ms);
    avc_http_req_set_max_body(req, AVC_STT_ANSWER_MAX);
    avc_http_req_set_callbacks(req, NULL, NULL, avc_stt_on_done, op);
    rc = avc_http_req_start(req);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_ERR, "stt: openai: cannot start the request: %s",
                avc_strerror(rc));
        return rc;
    }
    op->req = req;
    return AVC_OK;
}

void
avc__stt_openai_stop(avc_stt_op_t *op)
{
    if (op->req) {
        avc_http_cancel(op->req);
        op->req = NULL;
    }
}
