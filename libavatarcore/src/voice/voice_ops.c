/*
 * The REST routes of the voice API:
 *   POST /api/v1/voice/chat        a whole spoken turn: audio in, the
 *                                  transcript, the answer and its MP3
 *   POST /api/v1/voice/chat/fast   the same, about 60 tokens, no
 *                                  retrieval
 *   POST /api/v1/voice/tts         text to MP3
 *   POST /api/v1/voice/stt         audio to text
 *   DELETE /api/v1/voice/session/{session_id}
 * Audio arrives as base64 in JSON; its format is decided by its bytes.
 */
#include "voice_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AVC_VOICE_TEXT_MAX   5000

typedef struct {
    /* request */
    unsigned char *audio;
    size_t len;
    avc_audio_format_t format;
    int roleplay;
    int fast;
    char session_id[AVC_CHAT_SESSION_MAX + 1];
    long long did_req;
    int has_did;
    char *text;
    char *voice;
    char *language;

    /* running */
    avc_vturn_t *turn;
    avc_stt_op_t *sop;
    avc_tts_op_t *top;
    avc__buf_t out;             /* MP3 */
    int out_failed;             /* out of memory while collecting it */
    double confidence;
} avc_vop_t;

static void
avc_vop_free(void *p)
{
    avc_vop_t *v = p;

    if (v == NULL) {
        return;
    }
    avc__vturn_free(v->turn);
    if (v->sop) {
        avc_stt_cancel(v->sop);
    }
    if (v->top) {
        avc_tts_cancel(v->top);
    }
    free(v->audio);
    free(v->text);
    free(v->voice);
    free(v->language);
    avc__buf_free(&v->out);
    free(v);
}

static avc_vop_t *
avc_vop_new(avc_call_t *call)
{
    avc_vop_t *v = calloc(1, sizeof(*v));

    if (v == NULL) {
        return NULL;
    }
    avc__buf_init(&v->out);
    call->op = v;
    call->op_free = avc_vop_free;
    return v;
}

/* the collected MP3 as base64 (a new string), NULL when out of memory */
static char *
avc_vop_out_b64(avc_vop_t *v)
{
    avc__buf_t b;

    avc__buf_init(&b);
    if (v->out_failed
        || avc__buf_base64(&b, v->out.data, v->out.len, 0) != AVC_OK)
    {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}

/* audio_base64 (required): decoded, its format detected */
static void
avc_vop_audio(avc__v_t *vv, avc_vop_t *v)
{
    const char *b64 = NULL;
    int err;

    if (avc__v_str(vv, "audio_base64", 1, 1, SIZE_MAX, &b64) != 1) {
        return;
    }
    v->audio = avc__base64_decode(b64, strlen(b64), &v->len, &err);
    if (v->audio == NULL || v->len == 0) {
        avc__v_fail(vv, "audio_base64", "value_error",
                    "Must be base64-encoded audio");
        return;
    }
    v->format = avc_audio_detect(v->audio, v->len, 1);
    if (v->format == AVC_AUDIO_UNKNOWN) {
        avc__v_fail(vv, "audio_base64", "value_error",
                    "The audio format is not supported (WAV, WebM, MP4,"
                    " MP3, OGG or PCM s16le 16 kHz)");
    }
}

/* POST /chat, /chat/fast */

static const char *const avc_vop_modes[] = { "training", "roleplay", NULL };

static int
avc_vop_chat_parse(avc_call_t *call, avc_vop_t *v)
{
    avc__v_t vv;
    const char *mode = NULL, *sid = NULL, *mime = NULL;
    int rc;

    if (avc__v_begin(&vv, call, 1) != AVC_OK) {
        avc__v_end(&vv);
        return AVC_EPARSE;
    }
    avc_vop_audio(&vv, v);
    if (avc__v_enum(&vv, "mode", 0, avc_vop_modes, &mode) == 1) {
        v->roleplay = strcmp(mode, "roleplay") == 0;
    }
    if (avc__v_str(&vv, "session_id", 0, 1, AVC_CHAT_SESSION_MAX, &sid) == 1
        && !avc__chat_session_ok(sid))
    {
        avc__v_fail(&vv, "session_id", "string_pattern_mismatch",
                    "Session id may hold only letters, digits and . _ : -");
    }
    avc__v_str(&vv, "mime_type", 0, 0, 100, &mime);
    rc = avc__v_int(&vv, "dealership_id", 0, 1, LLONG_MAX, &v->did_req);
    v->has_did = rc == 1;
    if (avc__v_failed(&vv)) {
        avc__v_reply(&vv);
        avc__v_end(&vv);
        return AVC_EPARSE;
    }
    if (sid) {
        snprintf(v->session_id, sizeof(v->session_id), "%s", sid);
    }
    avc__v_end(&vv);
    return AVC_OK;
}

static int
avc_vop_on_audio(void *d, const void *p, size_t n)
{
    avc_call_t *call = d;
    avc_vop_t *v = call->op;

    /* MP3 frames one after another are one MP3 */
    if (avc__buf_append(&v->out, p, n) != AVC_OK) {
        v->out_failed = 1;
        return AVC_ENOMEM;
    }
    return AVC_OK;
}

static void
avc_vop_on_transcript(void *d, const char *text, double confidence)
{
    avc_call_t *call = d;
    avc_vop_t *v = call->op;

    v->confidence = confidence;
}

static void
avc_vop_turn_done(void *d, int status, const char *message, const char *text,
                  const char *user_text, const char *session_id)
{
    avc_call_t *call = d;
    avc_vop_t *v = call->op;
    char ts[40];
    char *b64;

    if (status != 200) {
        avc__call_error(call, status, message ? message
                                              : "Internal server error");
        return;
    }
    b64 = avc_vop_out_b64(v);
    if (b64 == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__chat_now(ts);
    avc__call_json(call, 200,
                   json_pack("{s:s, s:s, s:s, s:s, s:f, s:s}",
                             "user_transcript", user_text,
                             "response_text", text,
                             "response_audio_base64", b64,
                             "session_id", session_id,
                             "confidence", v->confidence,
                             "timestamp", ts));
    free(b64);
}

static void
avc_vop_chat_authed(avc_call_t *call)
{
    static const avc_vturn_cbs_t cbs = {
        avc_vop_on_transcript, NULL, avc_vop_on_audio, NULL, NULL,
        avc_vop_turn_done
    };
    avc_vop_t *v = call->op;
    avc_vturn_req_t req;
    long long did;

    did = avc__chat_dealership(call, v->did_req, v->has_did);
    if (did == 0) {
        return;
    }
    memset(&req, 0, sizeof(req));
    req.app = call->app;
    req.uid = call->who.id;
    req.pwc = call->as_pwc;
    req.did = did;
    req.sa = avc__is_sa(&call->who);
    req.roleplay = v->roleplay;
    req.fast = v->fast;
    req.session_id = v->session_id[0] ? v->session_id : NULL;
    req.channel = "rest";
    req.audio = v->audio;
    req.len = v->len;
    req.format = v->format;
    req.speak = 1;
    req.out = AVC_TTS_MP3;
    v->turn = avc__vturn_start(&req, &cbs, call);
    if (v->turn == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__call_begin(call, NULL, NULL);
}

static int
avc_vop_chat(avc_call_t *call, int fast)
{
    avc_vop_t *v = avc_vop_new(call);
    int rc;

    if (v == NULL) {
        return AVC_ENOMEM;
    }
    v->fast = fast;
    rc = avc_vop_chat_parse(call, v);
    if (rc != AVC_OK) {
        return rc == AVC_EPARSE ? AVC_OK : rc;
    }
    avc__authenticate(call, avc_vop_chat_authed);
    return AVC_OK;
}

AVC_API int
avc_op_voice_chat(avc_call_t *call)
{
    return avc_vop_chat(call, 0);
}

AVC_API int
avc_op_voice_chat_fast(avc_call_t *call)
{
    return avc_vop_chat(call, 1);
}

/* POST /tts */

static void
avc_vop_tts_audio(const void *p, size_t n, void *data)
{
    avc_call_t *call = data;
    avc_vop_t *v = call->op;

    if (avc__buf_append(&v->out, p, n) != AVC_OK) {
        v->out_failed = 1;      /* answered at the end */
    }
}

static void
avc_vop_tts_done(int err, const avc_tts_result_t *res, void *data)
{
    avc_call_t *call = data;
    avc_vop_t *v = call->op;
    char *b64;

    v->top = NULL;
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "voice: tts %s failed: %s", res->provider,
                avc_strerror(err));
        avc__call_error(call, err == AVC_ETIMEDOUT ? 504
                              : err == AVC_EINVAL ? 422 : 502,
                        res->error ? res->error
                                   : "The speech service failed");
        return;
    }
    b64 = avc_vop_out_b64(v);
    if (b64 == NULL) {
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__call_json(call, 200, json_pack("{s:s, s:s}", "audio_base64", b64,
                                        "text", v->text));
    free(b64);
}

static void
avc_vop_tts_cancel(avc_call_t *call, void *ctx)
{
    avc_vop_t *v = ctx;

    if (v->top) {
        avc_tts_cancel(v->top);
        v->top = NULL;
    }
}

static void
avc_vop_tts_authed(avc_call_t *call)
{
    avc_vop_t *v = call->op;
    avc_tts_request_t req;

    memset(&req, 0, sizeof(req));
    req.text = v->text;
    req.voice = v->voice;
    req.format = AVC_TTS_MP3;
    avc__call_begin(call, avc_vop_tts_cancel, v);
    if (avc_tts_speak(call->app->tts, &req, avc_vop_tts_audio, NULL,
                      avc_vop_tts_done, call, &v->top) != AVC_OK)
    {
        v->top = NULL;
        avc__call_error(call, 502, "The speech service failed");
    }
}

AVC_API int
avc_op_voice_tts(avc_call_t *call)
{
    avc_vop_t *v = avc_vop_new(call);
    avc__v_t vv;
    const char *text = NULL, *voice = NULL, *voice2 = NULL;

    if (v == NULL) {
        return AVC_ENOMEM;
    }
    if (avc__v_begin(&vv, call, 1) != AVC_OK) {
        avc__v_end(&vv);
        return AVC_OK;
    }
    if (avc__v_str(&vv, "text", 1, 1, AVC_VOICE_TEXT_MAX, &text) == 1
        && text[strspn(text, " \t\r\n")] == '\0')
    {
        avc__v_fail(&vv, "text", "string_too_short",
                    "Text must not be blank");
    }
    if (avc__v_str(&vv, "voice_id", 0, 1, 100, &voice) != 1) {
        if (avc__v_str(&vv, "voice", 0, 1, 100, &voice2) == 1) {
            voice = voice2;
        }
    }
    if (voice && strspn(voice, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                               "qrstuvwxyz0123456789-_+.") != strlen(voice))
    {
        avc__v_fail(&vv, voice2 ? "voice" : "voice_id",
                    "string_pattern_mismatch",
                    "A voice id holds letters, digits and - _ + .");
    }
    if (avc__v_failed(&vv)) {
        avc__v_reply(&vv);
        avc__v_end(&vv);
        return AVC_OK;
    }
    v->text = strdup(text);
    v->voice = voice ? strdup(voice) : NULL;
    avc__v_end(&vv);
    if (v->text == NULL || (voice && v->voice == NULL)) {
        return AVC_ENOMEM;
    }
    avc__authenticate(call, avc_vop_tts_authed);
    return AVC_OK;
}

/* POST /stt */

static void
avc_vop_stt_done(int err, const avc_stt_result_t *res, void *data)
{
    avc_call_t *call = data;
    avc_vop_t *v = call->op;
    json_t *words = NULL;

    v->sop = NULL;
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "voice: stt %s failed: %s", res->provider,
                avc_strerror(err));
        avc__call_error(call, err == AVC_ETIMEDOUT ? 504
                              : err == AVC_EPARSE || err == AVC_ETOOBIG
                              ? 422 : 502,
                        res->error ? res->error
                        : err == AVC_EPARSE ? "The audio could not be decoded"
                        : "The speech recognition service failed");
        return;
    }
    if (res->words_json) {
        words = json_loads(res->words_json, 0, NULL);
    }
    if (!json_is_array(words)) {
        json_decref(words);
        words = json_array();
    }
    avc__call_json(call, 200, json_pack("{s:s, s:f, s:o}", "transcript",
                                        res->text ? res->text : "",
                                        "confidence", res->confidence,
                                        "words", words));
}

static void
avc_vop_stt_cancel(avc_call_t *call, void *ctx)
{
    avc_vop_t *v = ctx;

    if (v->sop) {
        avc_stt_cancel(v->sop);
        v->sop = NULL;
    }
}

static void
avc_vop_stt_authed(avc_call_t *call)
{
    avc_vop_t *v = call->op;
    avc_stt_request_t req;

    memset(&req, 0, sizeof(req));
    req.audio = v->audio;
    req.len = v->len;
    req.format = v->format;
    req.language = v->language;
    avc__call_begin(call, avc_vop_stt_cancel, v);
    if (avc_stt_transcribe(call->app->stt, &req, avc_vop_stt_done, call,
                           &v->sop) != AVC_OK)
    {
        v->sop = NULL;
        avc__call_error(call, 502, "The speech recognition service failed");
    }
}

AVC_API int
avc_op_voice_stt(avc_call_t *call)
{
    avc_vop_t *v = avc_vop_new(call);
    avc__v_t vv;
    const char *mime = NULL, *lang = NULL;

    if (v == NULL) {
        return AVC_ENOMEM;
    }
    if (avc__v_begin(&vv, call, 1) != AVC_OK) {
        avc__v_end(&vv);
        return AVC_OK;
    }
    avc_vop_audio(&vv, v);
    avc__v_str(&vv, "mime_type", 0, 0, 100, &mime);
    if (avc__v_str(&vv, "language", 0, 2, 16, &lang) == 1
        && strspn(lang, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")
           != strlen(lang))
    {
        avc__v_fail(&vv, "language", "string_pattern_mismatch",
                    "A language code such as en or en-US");
    }
    if (avc__v_failed(&vv)) {
        avc__v_reply(&vv);
        avc__v_end(&vv);
        return AVC_OK;
    }
    v->language = lang ? strdup(lang) : NULL;
    avc__v_end(&vv);
    if (lang && v->language == NULL) {
        return AVC_ENOMEM;
    }
    avc__authenticate(call, avc_vop_stt_authed);
    return AVC_OK;
}

/* DELETE /session/{session_id}: the conversation's context is cleared,
 * as POST /api/v1/chat/session/{id}/clear does */
AVC_API int
avc_op_voice_session_delete(avc_call_t *call)
{
    return avc_op_chat_clear(call);
}
