/*
 * One spoken turn: speech-to-text, the chat answer streamed into the
 * sentence segmenter, each sentence to text-to-speech as soon as it is
 * complete, barge-in, and the record of the turn.
 *
 * The answer comes from the chat operation itself (avc_op_chat on a call
 * made here for the session's user), so a spoken turn is authorised,
 * grounded, stored and counted exactly like a typed one.  The call holds
 * its answer (call->hold) until every sentence has been spoken, or until
 * a barge-in cuts it short; it is then released with the text that was
 * actually delivered, which is what the conversation keeps.
 */
#include "voice_int.h"

#include <avatarcore/db.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_VT_DOMAIN_CHUNKS  "4000"    /* chunks read for the offline
                                           recogniser's language model */

struct avc_vturn_s {
    avc_app_t *app;
    avc_vturn_cbs_t cbs;
    void *data;

    /* the request */
    long long uid;
    long long did;
    char uid_s[24];
    char did_s[24];
    char pwc[24];
    int sa;
    int roleplay;
    int fast;
    int speak;
    char session_id[AVC_CHAT_SESSION_MAX + 1];
    const char *channel;
    void *audio;
    size_t len;
    avc_audio_format_t format;
    avc_tts_format_t out;
    char *voice;

    /* what runs */
    avc_db_query_t *q;
    avc_stt_op_t *sop;
    avc_call_t *chat;
    avc_tts_op_t *top;
    avc_timer_t *kick;          /* the first step, from the loop */
    avc_timer_t *later;         /* a barge-in asked from a callback */

    /* the answer */
    avc_segmenter_t *seg;
    char **queue;               /* sentences to speak, oldest first */
    size_t qhead, qtail, qcap;
    size_t sentences;           /* sentences started */
    char *sentence;             /* the one being spoken */
    int sentence_heard;         /* some of its audio went out */
    avc__buf_t answer;          /* generated */
    avc__buf_t spoken;          /* delivered: sentences heard */
    char *transcript;
    const char *stt_provider;
    unsigned audio_in_ms;
    unsigned audio_out_ms;
    int generated;              /* the model has finished */
    int interrupted;
    int waiting;                /* for the receiver to drain */
    int fail_status;
    char *fail_message;
    int finished;

    /* timings from the end of speech, ms */
    uint64_t t0;
    long long t_transcript;
    long long t_first_token;
    long long t_first_audio;
};

static void avc_vt_finish(avc_vturn_t *t, int status, const char *message);
static void avc_vt_speak_next(avc_vturn_t *t);
static void avc_vt_later(avc_timer_t *timer, void *data);

static long long
avc_vt_since(avc_vturn_t *t)
{
    return (long long) (avc_loop_now(t->app->loop) - t->t0);
}

static void
avc_vt_fail_set(avc_vturn_t *t, int status, const char *message)
{
    if (t->fail_status == 0) {
        t->fail_status = status;
        free(t->fail_message);
        t->fail_message = strdup(message);
    }
}

/* the record of a turn: timings, and the audio in the day's usage */

static void
avc_vt_recorded(int err, avc_db_res_t *res, void *data)
{
    if (err != AVC_OK && err != AVC_ECANCELED) {
        avc_log(AVC_LOG_WARN, "voice: turn record not stored: %s",
                err == AVC_EDB ? avc_db_res_error(res) : avc_strerror(err));
    }
}

static void
avc_vt_record(avc_vturn_t *t, long long total)
{
    char in_ms[16], out_ms[16], tr[24], ft[24], fa[24], tot[24];
    const char *p[13];

    snprintf(in_ms, sizeof(in_ms), "%u", t->audio_in_ms);
    snprintf(out_ms, sizeof(out_ms), "%u", t->audio_out_ms);
    snprintf(tr, sizeof(tr), "%lld", t->t_transcript);
    snprintf(ft, sizeof(ft), "%lld", t->t_first_token);
    snprintf(fa, sizeof(fa), "%lld", t->t_first_audio);
    snprintf(tot, sizeof(tot), "%lld", total);
    p[0] = t->uid_s;
    p[1] = t->did_s;
    p[2] = t->session_id;
    p[3] = t->channel;
    p[4] = t->stt_provider;
    p[5] = t->speak ? avc_tts_provider(t->app->tts) : NULL;
    p[6] = in_ms;
    p[7] = out_ms;
    p[8] = t->t_transcript >= 0 ? tr : NULL;
    p[9] = t->t_first_token >= 0 ? ft : NULL;
    p[10] = t->t_first_audio >= 0 ? fa : NULL;
    p[11] = tot;
    p[12] = t->interrupted ? "t" : "f";
    (void) avc_db_query(t->app->db,
        "WITH turn AS (INSERT INTO voice_turns (user_id, dealership_id,"
        " session_id, channel, stt_provider, tts_provider, audio_in_ms,"
        " audio_out_ms, transcript_ms, first_token_ms, first_audio_ms,"
        " total_ms, interrupted) VALUES ($1::bigint, $2::bigint, $3, $4,"
        " $5, $6, $7::int, $8::int, $9::int, $10::int, $11::int, $12::int,"
        " $13::boolean) RETURNING audio_in_ms + audio_out_ms AS ms)"
        " INSERT INTO usage (day, user_id, dealership_id, audio_seconds)"
        " SELECT (now() AT TIME ZONE 'UTC')::date, $1::bigint, $2::bigint,"
        " ms / 1000.0 FROM turn"
        " ON CONFLICT (day, user_id) DO UPDATE SET"
        " audio_seconds = usage.audio_seconds + EXCLUDED.audio_seconds",
        0, 13, p, 10000, avc_vt_recorded, NULL);
}

/* the end: nothing touches t after the done callback */
static void
avc_vt_finish(avc_vturn_t *t, int status, const char *message)
{
    avc_vturn_cbs_t cbs = t->cbs;
    long long total;

    if (t->finished) {
        return;
    }
    t->finished = 1;
    total = avc_vt_since(t);
    avc_log(AVC_LOG_INFO, "voice: turn user=%lld dealership=%lld %s"
            " status=%d audio_in=%ums transcript=%lldms first_token=%lldms"
            " first_audio=%lldms total=%lldms audio_out=%ums%s",
            t->uid, t->did, t->channel, status, t->audio_in_ms,
            t->t_transcript, t->t_first_token, t->t_first_audio, total,
            t->audio_out_ms, t->interrupted ? " interrupted" : "");
    if (t->transcript && t->transcript[0]) {
        avc_vt_record(t, total);
    }
    /* the text delivered: all of it, unless speech was cut short */
    cbs.done(t->data, status, message,
             t->speak && (t->interrupted || t->fail_status)
             ? (t->spoken.data ? t->spoken.data : "")
             : (t->answer.data ? t->answer.data : ""),
             t->transcript ? t->transcript : "", t->session_id);
}

/* the sentences */

static int
avc_vt_enqueue(avc_vturn_t *t, char *s)
{
    char **q;
    size_t n;

    if (s == NULL) {
        return AVC_OK;
    }
    if (s[strspn(s, " \t\r\n")] == '\0' || t->interrupted) {
        free(s);
        return AVC_OK;
    }
    if (t->qtail == t->qcap) {
        /* slide down, or grow */
        n = t->qtail - t->qhead;
        if (t->qhead > 0) {
            memmove(t->queue, t->queue + t->qhead, n * sizeof(char *));
            t->qhead = 0;
            t->qtail = n;
        } else {
            q = realloc(t->queue, (t->qcap ? t->qcap * 2 : 8)
                                  * sizeof(char *));
            if (q == NULL) {
                free(s);
                return AVC_ENOMEM;
            }
            t->queue = q;
            t->qcap = t->qcap ? t->qcap * 2 : 8;
        }
    }
    t->queue[t->qtail++] = s;
    return AVC_OK;
}

static void
avc_vt_queue_drop(avc_vturn_t *t)
{
    while (t->qhead < t->qtail) {
        free(t->queue[t->qhead++]);
    }
    t->qhead = t->qtail = 0;
}

/* all spoken and generated: the answer is released as generated */
static void
avc_vt_maybe_release(avc_vturn_t *t)
{
    if (!t->generated || t->top || t->qhead < t->qtail || t->chat == NULL
        || !t->chat->hold)
    {
        return;
    }
    /* the chat call stores the turn and finishes (avc_vt_chat_done) */
    avc__chat_release(t->chat, t->fail_status ? t->spoken.data : NULL,
                      t->fail_status ? t->spoken.len : 0);
}

static void
avc_vt_on_audio(const void *p, size_t n, void *data)
{
    avc_vturn_t *t = data;

    if (t->interrupted || n == 0) {
        return;
    }
    if (t->t_first_audio < 0) {
        t->t_first_audio = avc_vt_since(t);
    }
    if (!t->sentence_heard) {
        t->sentence_heard = 1;
        if ((t->spoken.len
             && avc__buf_append(&t->spoken, " ", 1) != AVC_OK)
            || avc__buf_appends(&t->spoken, t->sentence) != AVC_OK)
        {
            avc_vt_fail_set(t, 500, "Internal server error");
        }
    }
    if (t->cbs.audio(t->data, p, n) != AVC_OK) {
        /* the receiver is gone or too slow: stop like a barge-in, from
         * the loop rather than inside the provider's callback */
        t->interrupted = 1;
        avc_timer_start(t->later, 0);
    }
}

static void
avc_vt_on_visemes(const avc_viseme_t *v, size_t n, void *data)
{
    avc_vturn_t *t = data;

    if (!t->interrupted && t->cbs.visemes) {
        t->cbs.visemes(t->data, t->sentences - 1, t->audio_out_ms, v, n);
    }
}

static void
avc_vt_on_spoken(int err, const avc_tts_result_t *res, void *data)
{
    avc_vturn_t *t = data;

    t->top = NULL;
    t->audio_out_ms += res->audio_ms;
    free(t->sentence);
    t->sentence = NULL;
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "voice: %s failed: %s", res->provider,
                avc_strerror(err));
        avc_vt_fail_set(t, err == AVC_ETIMEDOUT ? 504 : 502,
                        res->error ? res->error
                                   : "The speech service failed");
        avc_vt_queue_drop(t);
        if (t->chat && t->chat->hold && !t->generated) {
            /* the model need not go on: keep what was heard */
            avc__chat_release(t->chat, t->spoken.data ? t->spoken.data : "",
                              t->spoken.len);
            return;
        }
    }
    avc_vt_speak_next(t);
}

static void
avc_vt_speak_next(avc_vturn_t *t)
{
    avc_tts_request_t req;

    if (t->top || t->interrupted) {
        return;
    }
    if (t->qhead == t->qtail) {
        avc_vt_maybe_release(t);
        return;
    }
    if (t->cbs.full && t->cbs.full(t->data)) {
        t->waiting = 1;         /* avc__vturn_resume goes on */
        return;
    }
    t->waiting = 0;
    t->sentence = t->queue[t->qhead++];
    t->sentence_heard = 0;
    t->sentences++;
    memset(&req, 0, sizeof(req));
    req.text = t->sentence;
    req.voice = t->voice;
    req.format = t->out;
    if (avc_tts_speak(t->app->tts, &req, avc_vt_on_audio, avc_vt_on_visemes,
                      avc_vt_on_spoken, t, &t->top) != AVC_OK)
    {
        avc_tts_result_t res = { avc_tts_provider(t->app->tts), 0, 0,
                                 "The speech service failed" };

        t->top = NULL;
        avc_vt_on_spoken(AVC_EUPSTREAM, &res, t);
    }
}

void
avc__vturn_resume(avc_vturn_t *t)
{
    if (t && t->waiting) {
        avc_vt_speak_next(t);
    }
}

/* the answer: the chat call's events */

static void
avc_vt_event(avc_vturn_t *t, const char *event, json_t *data)
{
    const char *s;
    char *sentence;

    if (strcmp(event, "token") == 0) {
        s = json_string_value(json_object_get(data, "text"));
        if (s == NULL || t->interrupted) {
            return;
        }
        if (t->t_first_token < 0) {
            t->t_first_token = avc_vt_since(t);
        }
        if (avc__buf_appends(&t->answer, s) != AVC_OK) {
            avc_vt_fail_set(t, 500, "Internal server error");
            return;
        }
        if (t->cbs.delta) {
            t->cbs.delta(t->data, s, strlen(s));
        }
        if (!t->speak) {
            return;
        }
        sentence = avc_segmenter_push(t->seg, s, strlen(s));
        while (sentence) {
            (void) avc_vt_enqueue(t, sentence);
            sentence = avc_segmenter_push(t->seg, NULL, 0);
        }
        avc_vt_speak_next(t);

    } else if (strcmp(event, "generated") == 0) {
        t->generated = 1;
        if (t->speak) {
            (void) avc_vt_enqueue(t, avc_segmenter_flush(t->seg));
            avc_vt_speak_next(t);
        }

    } else if (strcmp(event, "done") == 0) {
        s = json_string_value(json_object_get(data, "session_id"));
        if (s && avc__chat_session_ok(s)) {
            snprintf(t->session_id, sizeof(t->session_id), "%s", s);
        }

    } else if (strcmp(event, "error") == 0) {
        json_t *st = json_object_get(data, "status");

        s = json_string_value(json_object_get(data, "message"));
        avc_vt_fail_set(t, json_is_integer(st) ? (int) json_integer_value(st)
                                               : 502,
                        s ? s : "The language model failed to answer");
    }
}

/* every write of the chat operation is one whole event */
static int
avc_vt_write(avc_call_t *call, const char *p, size_t n, void *data)
{
    avc_vturn_t *t = data;
    const char *e, *d, *nl;
    char event[32];
    json_t *j;

    if (n == 0) {
        return AVC_OK;
    }
    if (n < 7 || strncmp(p, "event: ", 7) != 0) {
        return AVC_OK;
    }
    e = p + 7;
    nl = memchr(e, '\n', n - 7);
    if (nl == NULL || (size_t) (nl - e) >= sizeof(event)) {
        return AVC_OK;
    }
    memcpy(event, e, nl - e);
    event[nl - e] = '\0';
    d = nl + 1;
    if ((size_t) (d - p) + 6 > n || strncmp(d, "data: ", 6) != 0) {
        return AVC_OK;
    }
    d += 6;
    nl = memchr(d, '\n', n - (size_t) (d - p));
    j = json_loadb(d, nl ? (size_t) (nl - d) : n - (size_t) (d - p),
                   JSON_DECODE_ANY, NULL);
    if (j) {
        avc_vt_event(t, event, j);
        json_decref(j);
    }
    return AVC_OK;
}

static void
avc_vt_call_free(void *data)
{
    avc_call_free(data);
}

static void
avc_vt_chat_done(avc_call_t *call, void *data)
{
    avc_vturn_t *t = data;
    int status = avc_call_status(call);
    const char *msg = NULL;
    json_t *body = NULL;
    size_t len;
    const char *b;

    t->chat = NULL;
    if (!avc_call_streamed(call) && status != 200) {
        b = avc_call_body(call, &len);
        body = b ? json_loadb(b, len, 0, NULL) : NULL;
        msg = json_string_value(json_object_get(json_object_get(body,
                                                                "error"),
                                                "message"));
        avc_vt_fail_set(t, status ? status : 500,
                        msg ? msg : "Internal server error");
        json_decref(body);
    }
    /* the call is freed from the loop, outside its own callback */
    if (avc_post(t->app->loop, avc_vt_call_free, call) != AVC_OK) {
        avc_log(AVC_LOG_ERR, "voice: a call could not be freed");
    }
    if (t->top) {
        avc_tts_cancel(t->top);
        t->top = NULL;
    }
    avc_vt_queue_drop(t);
    if (t->fail_status && !t->interrupted) {
        char m[300];

        snprintf(m, sizeof(m), "%s", t->fail_message ? t->fail_message
                                                     : "Internal error");
        avc_vt_finish(t, t->fail_status, m);
        return;
    }
    avc_vt_finish(t, 200, NULL);
}

static void
avc_vt_ask(avc_vturn_t *t)
{
    json_t *body;
    char *s;
    avc_call_t *call;
    int rc;

    body = json_pack("{s:s, s:s}", "message", t->transcript, "mode",
                     t->roleplay ? "roleplay" : "training");
    if (body && t->session_id[0]) {
        json_object_set_new(body, "session_id", json_string(t->session_id));
    }
    if (body && t->sa) {
        json_object_set_new(body, "dealership_id", json_integer(t->did));
    }
    s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    call = s ? avc_call_new(t->app, "POST", "/api/v1/chat/",
                            avc_vt_chat_done, t) : NULL;
    if (call == NULL || avc_call_set_body(call, s, strlen(s)) != AVC_OK
        || avc_call_set_header(call, "Accept", "text/event-stream")
           != AVC_OK
        || avc_call_set_header(call, "Content-Type", "application/json")
           != AVC_OK)
    {
        free(s);
        avc_call_free(call);
        avc_vt_finish(t, 500, "Internal server error");
        return;
    }
    free(s);
    call->as_user = t->uid;
    snprintf(call->as_pwc, sizeof(call->as_pwc), "%s", t->pwc);
    call->spoken = t->fast ? AVC__SPOKEN_FAST : AVC__SPOKEN;
    call->hold = t->speak;
    avc_call_set_writer(call, avc_vt_write, t);
    t->chat = call;
    rc = avc_op_chat(call);
    if (rc != AVC_OK) {
        /* it did not start: no callback */
        t->chat = NULL;
        avc_call_free(call);
        avc_vt_finish(t, 500, "Internal server error");
    }
}

/* the transcript */

static void
avc_vt_heard(int err, const avc_stt_result_t *res, void *data)
{
    avc_vturn_t *t = data;

    t->sop = NULL;
    t->audio_in_ms = res->audio_ms;
    t->t_transcript = avc_vt_since(t);
    if (err != AVC_OK) {
        avc_log(AVC_LOG_WARN, "voice: %s failed: %s", res->provider,
                avc_strerror(err));
        avc_vt_finish(t, err == AVC_ETIMEDOUT ? 504
                         : err == AVC_EPARSE || err == AVC_ETOOBIG ? 422
                         : 502,
                      res->error ? res->error
                      : err == AVC_EPARSE ? "The audio could not be decoded"
                      : "The speech recognition service failed");
        return;
    }
    t->transcript = strdup(res->text ? res->text : "");
    if (t->transcript == NULL) {
        avc_vt_finish(t, 500, "Internal server error");
        return;
    }
    if (t->cbs.transcript) {
        t->cbs.transcript(t->data, t->transcript, res->confidence);
    }
    if (t->transcript[strspn(t->transcript, " \t\r\n.")] == '\0') {
        avc_vt_finish(t, 422, "No speech was recognised in the audio");
        return;
    }
    if (t->interrupted) {
        avc_vt_finish(t, 200, NULL);
        return;
    }
    avc_vt_ask(t);
}

static void
avc_vt_transcribe(avc_vturn_t *t, const char *key, const char *domain)
{
    avc_stt_request_t req;
    avc_stt_result_t res;

    memset(&req, 0, sizeof(req));
    req.audio = t->audio;
    req.len = t->len;
    req.format = t->format;
    req.domain_key = key;
    req.domain_text = domain;
    if (avc_stt_transcribe(t->app->stt, &req, avc_vt_heard, t, &t->sop)
        != AVC_OK)
    {
        t->sop = NULL;
        memset(&res, 0, sizeof(res));
        res.provider = t->stt_provider;
        res.error = "The speech recognition service failed";
        avc_vt_heard(AVC_EUPSTREAM, &res, t);
    }
}

static void
avc_vt_domain_loaded(int err, avc_db_res_t *res, void *data)
{
    avc_vturn_t *t = data;
    char key[64];
    const char *text = NULL;

    t->q = NULL;
    if (err == AVC_ECANCELED) {
        return;
    }
    if (err == AVC_OK && avc_db_res_rows(res) == 1) {
        snprintf(key, sizeof(key), "d%s.g%s", t->did_s,
                 avc_db_res_value(res, 0, 0));
        if (!avc_db_res_isnull(res, 0, 1)) {
            text = avc_db_res_value(res, 0, 1);
        }
        avc_vt_transcribe(t, key, text);
        return;
    }
    /* without the material: the F&I phrases alone */
    avc_vt_transcribe(t, NULL, NULL);
}

static void
avc_vt_generation(int err, avc_db_res_t *res, void *data)
{
    avc_vturn_t *t = data;
    char key[64];
    const char *p[1];

    t->q = NULL;
    if (err == AVC_ECANCELED) {
        return;
    }
    if (err != AVC_OK || avc_db_res_rows(res) != 1) {
        avc_vt_transcribe(t, NULL, NULL);
        return;
    }
    snprintf(key, sizeof(key), "d%s.g%s", t->did_s,
             avc_db_res_value(res, 0, 0));
    if (avc_stt_has_domain(t->app->stt, key)) {
        avc_vt_transcribe(t, key, NULL);
        return;
    }
    p[0] = t->did_s;
    t->q = avc_db_query(t->app->db,
                        "SELECT d.generation, (SELECT string_agg(content,"
                        " E'\\n' ORDER BY id) FROM (SELECT id, content"
                        " FROM document_chunks WHERE dealership_id = d.id"
                        " ORDER BY id LIMIT " AVC_VT_DOMAIN_CHUNKS ") c)"
                        " FROM dealerships d WHERE d.id = $1::bigint",
                        0, 1, p, 10000, avc_vt_domain_loaded, t);
    if (t->q == NULL) {
        avc_vt_transcribe(t, NULL, NULL);
    }
}

static void
avc_vt_begin(avc_timer_t *timer, void *data)
{
    avc_vturn_t *t = data;
    const char *p[1];

    if (strcmp(t->stt_provider, "pocketsphinx") != 0) {
        avc_vt_transcribe(t, NULL, NULL);
        return;
    }
    /* the offline recogniser listens for the dealership's own words */
    p[0] = t->did_s;
    t->q = avc_db_query(t->app->db, "SELECT generation FROM dealerships"
                        " WHERE id = $1::bigint", 0, 1, p, 10000,
                        avc_vt_generation, t);
    if (t->q == NULL) {
        avc_vt_transcribe(t, NULL, NULL);
    }
}

avc_vturn_t *
avc__vturn_start(const avc_vturn_req_t *req, const avc_vturn_cbs_t *cbs,
                 void *data)
{
    avc_vturn_t *t;

    if (req->app->stt == NULL || req->app->tts == NULL || req->len == 0
        || req->did <= 0 || cbs->done == NULL || cbs->audio == NULL)
    {
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->app = req->app;
    t->cbs = *cbs;
    t->data = data;
    t->uid = req->uid;
    t->did = req->did;
    snprintf(t->uid_s, sizeof(t->uid_s), "%lld", req->uid);
    snprintf(t->did_s, sizeof(t->did_s), "%lld", req->did);
    snprintf(t->pwc, sizeof(t->pwc), "%s", req->pwc ? req->pwc : "-");
    t->sa = req->sa;
    t->roleplay = req->roleplay;
    t->fast = req->fast;
    t->speak = req->speak;
    if (req->session_id) {
        snprintf(t->session_id, sizeof(t->session_id), "%s",
                 req->session_id);
    }
    t->channel = req->channel ? req->channel : "live";
    t->format = req->format;
    t->out = req->out;
    t->stt_provider = avc_stt_provider(req->app->stt);
    t->t_transcript = t->t_first_token = t->t_first_audio = -1;
    t->t0 = avc_loop_now(req->app->loop);
    avc__buf_init(&t->answer);
    avc__buf_init(&t->spoken);
    t->audio = malloc(req->len);
    t->voice = req->voice ? strdup(req->voice) : NULL;
    t->seg = avc_segmenter_new();
    t->kick = avc_timer_new(req->app->loop, avc_vt_begin, t);
    t->later = avc_timer_new(req->app->loop, avc_vt_later, t);
    if (t->audio == NULL || (req->voice && t->voice == NULL)
        || t->seg == NULL || t->kick == NULL || t->later == NULL)
    {
        avc__vturn_free(t);
        return NULL;
    }
    memcpy(t->audio, req->audio, req->len);
    t->len = req->len;
    /* from the loop: the caller sees no callback before this returns */
    avc_timer_start(t->kick, 0);
    return t;
}

static void
avc_vt_later(avc_timer_t *timer, void *data)
{
    avc_vturn_t *t = data;

    t->interrupted = 0;
    avc__vturn_interrupt(t);
}

void
avc__vturn_interrupt(avc_vturn_t *t)
{
    if (t == NULL || t->finished || t->interrupted) {
        return;
    }
    t->interrupted = 1;
    avc_vt_queue_drop(t);
    if (t->top) {
        avc_tts_cancel(t->top);
        t->top = NULL;
        free(t->sentence);
        t->sentence = NULL;
    }
    if (t->chat) {
        /* the model stops; the turn keeps what was heard; the call then
         * finishes through avc_vt_chat_done */
        if (t->chat->hold) {
            avc__chat_release(t->chat, t->spoken.data ? t->spoken.data : "",
                              t->spoken.len);
        }
        return;
    }
    if (t->sop) {
        avc_stt_cancel(t->sop);
        t->sop = NULL;
    }
    if (t->q) {
        avc_db_cancel(t->q);
        t->q = NULL;
    }
    avc_timer_stop(t->kick);
    avc_vt_finish(t, 200, NULL);
}

void
avc__vturn_free(avc_vturn_t *t)
{
    if (t == NULL) {
        return;
    }
    if (t->q) {
        avc_db_query_t *q = t->q;

        t->q = NULL;
        avc_db_cancel(q);
    }
    if (t->sop) {
        avc_stt_cancel(t->sop);
    }
    if (t->top) {
        avc_tts_cancel(t->top);
    }
    if (t->chat) {
        avc_call_free(t->chat);
    }
    if (t->kick) {
        avc_timer_free(t->kick);
    }
    if (t->later) {
        avc_timer_free(t->later);
    }
    avc_vt_queue_drop(t);
    free(t->queue);
    free(t->sentence);
    avc_segmenter_free(t->seg);
    avc__buf_free(&t->answer);
    avc__buf_free(&t->spoken);
    free(t->transcript);
    free(t->fail_message);
    free(t->audio);
    free(t->voice);
    free(t);
}
