/*
 * The voice sockets of API.md over a host's WebSocket (avatarcore/voice.h):
 *
 *   live  /api/v1/voice/ws/live/{user_id}: a spoken conversation.  The
 *         client records (start_recording, audio, binary PCM,
 *         stop_recording) or sends a whole utterance (audio_complete);
 *         the server answers with the transcript, the answer's text,
 *         audio and visemes, sentence by sentence.  Server-side end of
 *         turn: after voice.end_silence of silence following speech the
 *         turn is processed even when stop_recording never comes.
 *         Barge-in: "interrupt", or speech heard while an answer plays,
 *         cancels the answer (see turn.c).
 *   vad   /api/v1/voice/ws/vad/{client_id}: a voice-activity event for
 *         every audio frame.
 *
 * A session authenticates first (the token is checked, then the user is
 * read from the database like any request); messages that arrive
 * meanwhile wait, in order, within a bound.
 */
#include "voice_int.h"

#include <avatarcore/token.h>
#include <avatarcore/voice.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AVC_WS_INIT_TIMEOUT   10000     /* ms for the first message */
#define AVC_WS_EARLY_MAX      64        /* messages before auth */
#define AVC_WS_EARLY_BYTES    (1024 * 1024)
#define AVC_WS_HIGH_WATER     (256 * 1024)
#define AVC_WS_PREROLL_MS     300       /* audio kept before speech */
#define AVC_WS_MIN_TURN_MS    200
#define AVC_WS_RATE           16000

enum {
    AVC_WS_AUTHING = 0,
    AVC_WS_WAIT_INIT,
    AVC_WS_OPEN,
    AVC_WS_CLOSED
};

typedef struct avc_ws_msg_s {
    struct avc_ws_msg_s *next;
    int binary;
    size_t n;
    char p[];
} avc_ws_msg_t;

struct avc_ws_s {
    avc__link_t link;           /* in app->sockets; first: a link is it */
    avc_app_t *app;
    avc_ws_kind_t kind;
    avc_ws_host_t host;
    void *hd;
    int state;
    char id[64];
    char *token;
    avc_timer_t *timer;         /* start, then the init deadline */
    avc_call_t *auth;

    /* waiting for authentication */
    avc_ws_msg_t *early, **early_tail;
    size_t early_n, early_bytes;

    /* the user */
    long long uid;
    long long own_did;
    long long did;
    int sa;
    char pwc[24];

    /* live */
    int roleplay;
    int pcm_out;
    char session_id[AVC_CHAT_SESSION_MAX + 1];
    avc__buf_t pcm;             /* the utterance being recorded */
    avc_vad_t *vad;
    int speech;                 /* speech was heard in it */
    int recording;              /* start_recording: keep all of it */
    int auto_ended;             /* the server ended the turn itself */
    avc_vturn_t *turn;
    int turn_speaking;          /* its answer's audio is going out */
    int interrupted;            /* the client was told */
    void *next_audio;           /* an utterance waiting for the turn */
    size_t next_len;
    avc_audio_format_t next_format;

    /* vad */
    avc_vad_t *vvad;
    unsigned vrate;
    int vaggr;
};

static void avc_ws_turn_start(avc_ws_t *ws, void *audio, size_t len,
                              avc_audio_format_t format);

/* sending */

static int
avc_ws_send(avc_ws_t *ws, json_t *o)
{
    char *s;
    int rc;

    if (o == NULL) {
        return AVC_ENOMEM;
    }
    if (ws->state == AVC_WS_CLOSED) {
        json_decref(o);
        return AVC_ECANCELED;
    }
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL) {
        return AVC_ENOMEM;
    }
    rc = ws->host.send(ws->hd, 0, s, strlen(s));
    free(s);
    return rc;
}

static void
avc_ws_type(avc_ws_t *ws, const char *type)
{
    (void) avc_ws_send(ws, json_pack("{s:s}", "type", type));
}

static void
avc_ws_error(avc_ws_t *ws, const char *message)
{
    (void) avc_ws_send(ws, json_pack("{s:s, s:s}", "type", "error",
                                     "message", message));
}

static void
avc_ws_ready(avc_ws_t *ws)
{
    (void) avc_ws_send(ws, json_pack("{s:s, s:s}", "type", "ready",
                                     "message", "Listening..."));
}

static void
avc_ws_close(avc_ws_t *ws, int code, const char *reason)
{
    if (ws->state == AVC_WS_CLOSED) {
        return;
    }
    ws->state = AVC_WS_CLOSED;
    avc__vturn_free(ws->turn);
    ws->turn = NULL;
    ws->host.close(ws->hd, code, reason);
}

/* the utterance */

static void
avc_ws_utterance_reset(avc_ws_t *ws)
{
    ws->pcm.len = 0;
    ws->speech = 0;
    if (ws->vad) {
        avc_vad_reset(ws->vad);
    }
}

/* the turn's callbacks */

static void
avc_ws_on_transcript(void *d, const char *text, double confidence)
{
    avc_ws_t *ws = d;

    (void) avc_ws_send(ws, json_pack("{s:s, s:s, s:b, s:s, s:f}", "type",
                                     "transcript", "text", text, "is_final",
                                     1, "full_transcript", text,
                                     "confidence", confidence));
}

static void
avc_ws_on_delta(void *d, const char *text, size_t n)
{
    avc_ws_t *ws = d;

    (void) avc_ws_send(ws, json_pack("{s:s, s:s%}", "type", "response_text",
                                     "delta", text, n));
}

static int
avc_ws_on_audio(void *d, const void *p, size_t n)
{
    avc_ws_t *ws = d;
    avc__buf_t b64;
    int rc;

    ws->turn_speaking = 1;
    if (ws->state == AVC_WS_CLOSED) {
        return AVC_ECANCELED;
    }
    if (ws->pcm_out) {
        return ws->host.send(ws->hd, 1, p, n);
    }
    avc__buf_init(&b64);
    if (avc__buf_base64(&b64, p, n, 0) != AVC_OK) {
        avc__buf_free(&b64);
        return AVC_ENOMEM;
    }
    rc = avc_ws_send(ws, json_pack("{s:s, s:s%}", "type", "audio_chunk",
                                   "data", b64.data ? b64.data : "",
                                   b64.len));
    avc__buf_free(&b64);
    return rc;
}

static void
avc_ws_on_visemes(void *d, size_t i, unsigned offset_ms,
                  const avc_viseme_t *v, size_t n)
{
    avc_ws_t *ws = d;
    json_t *list = json_array();
    size_t k;

    for (k = 0; k < n && list; k++) {
        json_array_append_new(list, json_pack("{s:i, s:i, s:s}", "t",
                                              (int) v[k].t_ms, "d",
                                              (int) v[k].d_ms, "v",
                                              v[k].v));
    }
    if (list == NULL) {
        return;
    }
    (void) avc_ws_send(ws, json_pack("{s:s, s:i, s:i, s:o}", "type",
                                     "viseme", "sentence", (int) i,
                                     "offset_ms", (int) offset_ms,
                                     "visemes", list));
}

static int
avc_ws_full(void *d)
{
    avc_ws_t *ws = d;

    return ws->host.pending(ws->hd) > AVC_WS_HIGH_WATER;
}

static void
avc_ws_on_done(void *d, int status, const char *message, const char *text,
               const char *user_text, const char *session_id)
{
    avc_ws_t *ws = d;
    void *next;

    /* the strings belong to the turn: used before it goes */
    if (session_id && session_id[0]) {
        snprintf(ws->session_id, sizeof(ws->session_id), "%s", session_id);
    }
    if (status != 200) {
        avc_ws_error(ws, message ? message : "Internal server error");
    } else if (!ws->interrupted) {
        (void) avc_ws_send(ws, json_pack("{s:s, s:s, s:s}", "type",
                                         "response_complete", "text", text,
                                         "user_text", user_text));
    }
    avc__vturn_free(ws->turn);
    ws->turn = NULL;
    ws->turn_speaking = 0;
    ws->interrupted = 0;
    if (ws->next_audio) {
        next = ws->next_audio;
        ws->next_audio = NULL;
        avc_ws_turn_start(ws, next, ws->next_len, ws->next_format);
        free(next);
        return;
    }
    avc_ws_ready(ws);
}

static void
avc_ws_turn_start(avc_ws_t *ws, void *audio, size_t len,
                  avc_audio_format_t format)
{
    static const avc_vturn_cbs_t cbs = {
        avc_ws_on_transcript, avc_ws_on_delta, avc_ws_on_audio,
        avc_ws_on_visemes, avc_ws_full, avc_ws_on_done
    };
    avc_vturn_req_t req;

    if (ws->turn) {
        /* one at a time: the latest utterance waits for the turn that
         * is finishing (after a barge-in) */
        free(ws->next_audio);
        ws->next_audio = malloc(len);
        if (ws->next_audio) {
            memcpy(ws->next_audio, audio, len);
            ws->next_len = len;
            ws->next_format = format;
        }
        return;
    }
    memset(&req, 0, sizeof(req));
    req.app = ws->app;
    req.uid = ws->uid;
    req.pwc = ws->pwc;
    req.did = ws->did;
    req.sa = ws->sa;
    req.roleplay = ws->roleplay;
    req.session_id = ws->session_id[0] ? ws->session_id : NULL;
    req.channel = "live";
    req.audio = audio;
    req.len = len;
    req.format = format;
    req.speak = 1;
    req.out = ws->pcm_out ? AVC_TTS_PCM16K : AVC_TTS_MP3;
    ws->interrupted = 0;
    ws->turn_speaking = 0;
    ws->turn = avc__vturn_start(&req, &cbs, ws);
    if (ws->turn == NULL) {
        avc_ws_error(ws, "Internal server error");
        avc_ws_ready(ws);
        return;
    }
    avc_ws_type(ws, "processing");
}

/* the recorded utterance is a turn */
static void
avc_ws_end_of_turn(avc_ws_t *ws)
{
    if (ws->pcm.len < AVC_WS_RATE * 2 * AVC_WS_MIN_TURN_MS / 1000
        || !ws->speech)
    {
        avc_ws_utterance_reset(ws);
        avc_ws_error(ws, "No speech was received");
        if (ws->turn == NULL) {
            avc_ws_ready(ws);
        }
        return;
    }
    avc_ws_turn_start(ws, ws->pcm.data, ws->pcm.len, AVC_AUDIO_PCM);
    avc_ws_utterance_reset(ws);
}

static void
avc_ws_barge_in(avc_ws_t *ws)
{
    if (ws->turn && !ws->interrupted) {
        ws->interrupted = 1;
        avc_ws_type(ws, "interrupted");
        avc__vturn_interrupt(ws->turn);     /* done may follow at once */
    }
}

/* PCM16K from the client */
static void
avc_ws_audio(avc_ws_t *ws, const void *p, size_t n)
{
    avc_vad_event_t ev;
    size_t keep, max;

    if (n % 2) {
        avc_ws_error(ws, "Audio must be 16-bit PCM: an even number of"
                         " bytes");
        return;
    }
    max = (size_t) ws->app->voice_max_turn * AVC_WS_RATE * 2 / 1000;
    if (avc__buf_append(&ws->pcm, p, n) != AVC_OK) {
        avc_ws_error(ws, "Internal server error");
        return;
    }
    avc_vad_feed(ws->vad, p, n / 2, &ev);
    if (ev.speech_started) {
        ws->speech = 1;
        if (ws->turn && ws->turn_speaking) {
            /* the trainee talks over Adam */
            avc_ws_barge_in(ws);
        }
    }
    if (!ws->speech && !ws->recording) {
        /* only a little before the speech is kept */
        keep = (size_t) AVC_WS_RATE * 2 * AVC_WS_PREROLL_MS / 1000;
        if (ws->pcm.len > keep) {
            memmove(ws->pcm.data, ws->pcm.data + ws->pcm.len - keep, keep);
            ws->pcm.len = keep;
        }
        return;
    }
    if ((ws->speech && ev.speech_ended) || ws->pcm.len >= max) {
        avc_ws_type(ws, "speaking_stopped");
        ws->auto_ended = 1;
        ws->recording = 0;
        avc_ws_end_of_turn(ws);
    }
}

/* messages of the live socket */

static const char *
avc_ws_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int
avc_ws_set_mode(avc_ws_t *ws, json_t *o)
{
    const char *mode = avc_ws_str(o, "mode");
    int roleplay;

    if (mode == NULL) {
        return AVC_OK;
    }
    if (strcmp(mode, "training") != 0 && strcmp(mode, "roleplay") != 0) {
        avc_ws_error(ws, "mode must be training or roleplay");
        return AVC_EINVAL;
    }
    roleplay = strcmp(mode, "roleplay") == 0;
    if (roleplay != ws->roleplay) {
        /* a conversation has one mode: a new one begins */
        ws->session_id[0] = '\0';
    }
    ws->roleplay = roleplay;
    return AVC_OK;
}

static void
avc_ws_init(avc_ws_t *ws, json_t *o)
{
    json_t *d = json_object_get(o, "dealership_id");
    const char *fmt = avc_ws_str(o, "audio_format");
    int first = ws->state == AVC_WS_WAIT_INIT;

    if (avc_ws_set_mode(ws, o) != AVC_OK) {
        return;
    }
    if (fmt) {
        if (strcmp(fmt, "mp3") != 0 && strcmp(fmt, "pcm_s16le_16000") != 0) {
            avc_ws_error(ws, "audio_format must be mp3 or pcm_s16le_16000");
            return;
        }
        ws->pcm_out = strcmp(fmt, "pcm_s16le_16000") == 0;
    }
    if (d && !json_is_null(d)) {
        if (!json_is_integer(d) || json_integer_value(d) <= 0) {
            avc_ws_error(ws, "dealership_id must be a positive integer");
            return;
        }
        if (!ws->sa && json_integer_value(d) != ws->own_did) {
            avc_ws_error(ws, "Dealership not found");
            return;
        }
        if (json_integer_value(d) != ws->did) {
            ws->session_id[0] = '\0';
        }
        ws->did = json_integer_value(d);
    }
    if (ws->did == 0) {
        avc_ws_error(ws, "Super admin must specify dealership_id");
        return;
    }
    if (first) {
        avc_timer_stop(ws->timer);
        ws->state = AVC_WS_OPEN;
        avc_ws_ready(ws);
        return;
    }
    (void) avc_ws_send(ws, json_pack("{s:s, s:s}", "type", "mode_changed",
                                     "mode", ws->roleplay ? "roleplay"
                                                          : "training"));
}

static unsigned char *
avc_ws_b64_field(avc_ws_t *ws, json_t *o, size_t *n)
{
    const char *s = avc_ws_str(o, "data");
    unsigned char *p;
    int err;

    if (s == NULL) {
        avc_ws_error(ws, "data must be a base64 string");
        return NULL;
    }
    p = avc__base64_decode(s, strlen(s), n, &err);
    if (p == NULL) {
        avc_ws_error(ws, err == AVC_EPARSE ? "data is not valid base64"
                                           : "Internal server error");
    }
    return p;
}

static void
avc_ws_live_text(avc_ws_t *ws, json_t *o)
{
    const char *type = avc_ws_str(o, "type");
    unsigned char *p;
    size_t n;
    json_t *rate;
    avc_audio_format_t f;

    if (type == NULL) {
        avc_ws_error(ws, "A message needs a type");
        return;
    }
    if (strcmp(type, "ping") == 0) {
        avc_ws_type(ws, "pong");
        return;
    }
    if (strcmp(type, "init") == 0) {
        avc_ws_init(ws, o);
        return;
    }
    if (ws->state != AVC_WS_OPEN) {
        avc_ws_error(ws, "Send init first");
        return;
    }
    if (strcmp(type, "start_recording") == 0) {
        avc_ws_utterance_reset(ws);
        ws->recording = 1;
        ws->auto_ended = 0;
        avc_ws_type(ws, "speaking_started");

    } else if (strcmp(type, "audio") == 0) {
        rate = json_object_get(o, "sample_rate");
        if (rate && !(json_is_integer(rate)
                      && json_integer_value(rate) == AVC_WS_RATE))
        {
            avc_ws_error(ws, "sample_rate must be 16000 (PCM s16le mono)");
            return;
        }
        p = avc_ws_b64_field(ws, o, &n);
        if (p) {
            avc_ws_audio(ws, p, n);
            free(p);
        }

    } else if (strcmp(type, "stop_recording") == 0) {
        avc_ws_type(ws, "speaking_stopped");
        ws->recording = 0;
        if (ws->auto_ended && !ws->speech) {
            /* the server already ended this turn on silence */
            ws->auto_ended = 0;
            avc_ws_utterance_reset(ws);
            return;
        }
        ws->speech = ws->speech || ws->pcm.len > 0;
        avc_ws_end_of_turn(ws);

    } else if (strcmp(type, "audio_complete") == 0) {
        p = avc_ws_b64_field(ws, o, &n);
        if (p == NULL) {
            return;
        }
        f = avc_audio_detect(p, n, 1);
        if (f == AVC_AUDIO_UNKNOWN || n == 0) {
            avc_ws_error(ws, "The audio format is not supported");
        } else {
            avc_ws_utterance_reset(ws);
            avc_ws_turn_start(ws, p, n, f);
        }
        free(p);

    } else if (strcmp(type, "interrupt") == 0) {
        if (ws->turn) {
            avc_ws_barge_in(ws);
        } else {
            avc_ws_type(ws, "interrupted");
        }

    } else if (strcmp(type, "clear") == 0) {
        ws->session_id[0] = '\0';
        avc_ws_utterance_reset(ws);
        avc_ws_type(ws, "cleared");

    } else if (strcmp(type, "mode") == 0) {
        if (avc_ws_set_mode(ws, o) == AVC_OK) {
            (void) avc_ws_send(ws, json_pack("{s:s, s:s}", "type",
                                             "mode_changed", "mode",
                                             ws->roleplay ? "roleplay"
                                                          : "training"));
        }

    } else {
        avc_ws_error(ws, "Unknown message type");
    }
}

/* messages of the VAD socket */

static void
avc_ws_vad_text(avc_ws_t *ws, json_t *o)
{
    const char *type = avc_ws_str(o, "type");
    json_t *r, *a;
    unsigned char *p;
    size_t n;
    long long rate, aggr;
    avc_vad_event_t ev;
    int err;

    if (type == NULL) {
        avc_ws_error(ws, "A message needs a type");
        return;
    }
    if (strcmp(type, "ping") == 0) {
        avc_ws_type(ws, "pong");
        return;
    }
    if (strcmp(type, "reset") == 0) {
        if (ws->vvad) {
            avc_vad_reset(ws->vvad);
        }
        avc_ws_type(ws, "reset_ack");
        return;
    }
    if (strcmp(type, "audio_frame") != 0) {
        avc_ws_error(ws, "Unknown message type");
        return;
    }
    r = json_object_get(o, "sample_rate");
    a = json_object_get(o, "aggressiveness");
    rate = r ? (json_is_integer(r) ? json_integer_value(r) : -1)
             : AVC_WS_RATE;
    aggr = a ? (json_is_integer(a) ? json_integer_value(a) : -1) : 2;
    if (rate != 8000 && rate != 16000 && rate != 32000) {
        avc_ws_error(ws, "sample_rate must be 8000, 16000 or 32000");
        return;
    }
    if (aggr < 0 || aggr > 3) {
        avc_ws_error(ws, "aggressiveness must be 0 to 3");
        return;
    }
    if (ws->vvad == NULL || ws->vrate != rate || ws->vaggr != aggr) {
        avc_vad_free(ws->vvad);
        ws->vvad = avc_vad_new((unsigned) rate, (int) aggr, 200, &err);
        ws->vrate = (unsigned) rate;
        ws->vaggr = (int) aggr;
        if (ws->vvad == NULL) {
            avc_ws_error(ws, "Internal server error");
            return;
        }
    }
    p = avc_ws_b64_field(ws, o, &n);
    if (p == NULL) {
        return;
    }
    if (n % 2 || n > (size_t) rate * 2) {
        free(p);
        avc_ws_error(ws, "A frame must be 16-bit PCM of at most one second");
        return;
    }
    avc_vad_feed(ws->vvad, (const int16_t *) p, n / 2, &ev);
    free(p);
    (void) avc_ws_send(ws, json_pack("{s:s, s:b, s:f, s:b, s:b, s:i}",
                                     "type", "vad_event", "is_speech",
                                     ev.is_speech, "confidence",
                                     ev.confidence, "speech_started",
                                     ev.speech_started, "speech_ended",
                                     ev.speech_ended, "duration_ms",
                                     (int) ev.duration_ms));
}

/* one message, authenticated */

static void
avc_ws_dispatch(avc_ws_t *ws, int binary, const void *p, size_t n)
{
    json_t *o;

    if (ws->state == AVC_WS_CLOSED) {
        return;
    }
    if (binary) {
        if (ws->kind != AVC_WS_LIVE) {
            avc_ws_error(ws, "Send audio frames as JSON text messages");
        } else if (ws->state != AVC_WS_OPEN) {
            avc_ws_error(ws, "Send init first");
        } else {
            avc_ws_audio(ws, p, n);
        }
        return;
    }
    o = json_loadb(p, n, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        avc_ws_error(ws, "Messages must be JSON objects");
        return;
    }
    if (ws->kind == AVC_WS_LIVE) {
        avc_ws_live_text(ws, o);
    } else {
        avc_ws_vad_text(ws, o);
    }
    json_decref(o);
}

/* authentication */

static void
avc_ws_init_timeout(avc_timer_t *timer, void *data)
{
    avc_ws_t *ws = data;

    avc_ws_close(ws, 1008, "init expected");
}

static void
avc_ws_auth_free(void *p)
{
    avc_call_free(p);
}

static void
avc_ws_authed(avc_call_t *call, void *data)
{
    avc_ws_t *ws = data;
    int status = avc_call_status(call);
    avc_ws_msg_t *m;
    char uid[24];

    ws->auth = NULL;
    (void) avc_post(ws->app->loop, avc_ws_auth_free, call);
    if (status == 401) {
        avc_ws_close(ws, AVC_WS_AUTH_REQUIRED, "Authentication required");
        return;
    }
    if (status != 200) {
        avc_ws_close(ws, 1011, "Service unavailable");
        return;
    }
    snprintf(uid, sizeof(uid), "%lld", ws->uid);
    if (ws->kind == AVC_WS_LIVE) {
        if (strcmp(uid, ws->id) != 0) {
            avc_ws_close(ws, AVC_WS_FORBIDDEN, "User ID mismatch");
            return;
        }
        if (!ws->sa && ws->own_did == 0) {
            avc_ws_close(ws, AVC_WS_FORBIDDEN,
                         "User not assigned to a dealership");
            return;
        }
        ws->did = ws->sa ? 0 : ws->own_did;
        ws->state = AVC_WS_WAIT_INIT;
        avc_timer_start(ws->timer, AVC_WS_INIT_TIMEOUT);
    } else {
        ws->state = AVC_WS_OPEN;
    }
    /* what came meanwhile, in order */
    while ((m = ws->early) != NULL && ws->state != AVC_WS_CLOSED) {
        ws->early = m->next;
        avc_ws_dispatch(ws, m->binary, m->p, m->n);
        free(m);
    }
}

static void
avc_ws_principal(avc_call_t *call)
{
    avc_ws_t *ws = call->data;

    ws->uid = call->who.id;
    ws->own_did = call->who.dealership_id;
    ws->sa = avc__is_sa(&call->who);
    avc__call_json(call, 200, json_object());
}

static void
avc_ws_start(avc_timer_t *timer, void *data)
{
    avc_ws_t *ws = data;
    avc_app_t *app = ws->app;
    avc_token_t *t = NULL;
    const char *pwc;
    avc__buf_t h;

    avc_timer_free(ws->timer);
    ws->timer = avc_timer_new(app->loop, avc_ws_init_timeout, ws);
    if (ws->timer == NULL) {
        avc_ws_close(ws, 1011, "Internal error");
        return;
    }
    if (ws->token == NULL
        || avc_token_verify(app->secret, app->secret_len, ws->token,
                            strlen(ws->token), "access",
                            (long long) time(NULL), &t) != AVC_OK)
    {
        avc_ws_close(ws, AVC_WS_AUTH_REQUIRED, "Authentication required");
        return;
    }
    pwc = avc_token_claim(t, "pwc");
    snprintf(ws->pwc, sizeof(ws->pwc), "%s", pwc ? pwc : "-");
    avc_token_free(t);

    avc__buf_init(&h);
    ws->auth = avc_call_new(app, "GET", ws->kind == AVC_WS_LIVE
                                        ? "/api/v1/voice/ws/live"
                                        : "/api/v1/voice/ws/vad",
                            avc_ws_authed, ws);
    if (ws->auth == NULL
        || avc__buf_printf(&h, "Bearer %s", ws->token) != AVC_OK
        || avc_call_set_header(ws->auth, "Authorization", h.data) != AVC_OK)
    {
        avc__buf_free(&h);
        avc_call_free(ws->auth);
        ws->auth = NULL;
        avc_ws_close(ws, 1011, "Internal error");
        return;
    }
    avc__buf_free(&h);
    /* the token is no longer needed */
    memset(ws->token, 0, strlen(ws->token));
    free(ws->token);
    ws->token = NULL;
    avc__authenticate(ws->auth, avc_ws_principal);
}

/* the host's side */

AVC_API avc_ws_t *
avc_ws_open(avc_app_t *app, avc_ws_kind_t kind, const char *id,
            const char *token, const avc_ws_host_t *host, void *host_data)
{
    avc_ws_t *ws;
    int err;

    ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return NULL;
    }
    ws->app = app;
    ws->kind = kind;
    ws->host = *host;
    ws->hd = host_data;
    ws->early_tail = &ws->early;
    snprintf(ws->id, sizeof(ws->id), "%s", id ? id : "");
    avc__buf_init(&ws->pcm);
    ws->token = token && *token ? strdup(token) : NULL;
    ws->timer = avc_timer_new(app->loop, avc_ws_start, ws);
    ws->vad = kind == AVC_WS_LIVE
              ? avc_vad_new(AVC_WS_RATE, 2, app->voice_end_silence, &err)
              : NULL;
    if ((token && *token && ws->token == NULL) || ws->timer == NULL
        || (kind == AVC_WS_LIVE && ws->vad == NULL))
    {
        avc_timer_free(ws->timer);
        avc_vad_free(ws->vad);
        free(ws->token);
        free(ws);
        return NULL;
    }
    avc__list_add(&app->sockets, &ws->link);
    /* from the loop, never inside the host's call */
    avc_timer_start(ws->timer, 0);
    return ws;
}

AVC_API void
avc_ws_message(avc_ws_t *ws, int binary, const void *p, size_t n)
{
    avc_ws_msg_t *m;

    if (ws == NULL || ws->app == NULL || ws->state == AVC_WS_CLOSED) {
        return;
    }
    if (ws->state != AVC_WS_AUTHING) {
        avc_ws_dispatch(ws, binary, p, n);
        return;
    }
    if (ws->early_n >= AVC_WS_EARLY_MAX
        || ws->early_bytes + n > AVC_WS_EARLY_BYTES)
    {
        avc_ws_close(ws, 1008, "Too many messages before authentication");
        return;
    }
    m = malloc(sizeof(*m) + n);
    if (m == NULL) {
        avc_ws_close(ws, 1011, "Internal error");
        return;
    }
    m->next = NULL;
    m->binary = binary;
    m->n = n;
    memcpy(m->p, p, n);
    *ws->early_tail = m;
    ws->early_tail = &m->next;
    ws->early_n++;
    ws->early_bytes += n;
}

AVC_API void
avc_ws_drained(avc_ws_t *ws)
{
    if (ws && ws->app && ws->turn) {
        avc__vturn_resume(ws->turn);
    }
}

/* everything but the struct itself */
static void
avc_ws_release(avc_ws_t *ws)
{
    avc_ws_msg_t *m;
    avc_app_t *app = ws->app;

    if (app == NULL) {
        return;
    }
    avc__list_del(&app->sockets, &ws->link);
    avc__vturn_free(ws->turn);
    ws->turn = NULL;
    avc_call_free(ws->auth);
    ws->auth = NULL;
    avc_timer_free(ws->timer);
    ws->timer = NULL;
    while ((m = ws->early) != NULL) {
        ws->early = m->next;
        free(m);
    }
    avc_vad_free(ws->vad);
    avc_vad_free(ws->vvad);
    ws->vad = ws->vvad = NULL;
    avc__buf_free(&ws->pcm);
    free(ws->next_audio);
    ws->next_audio = NULL;
    if (ws->token) {
        memset(ws->token, 0, strlen(ws->token));
        free(ws->token);
        ws->token = NULL;
    }
    ws->app = NULL;
}

AVC_API void
avc_ws_free(avc_ws_t *ws)
{
    if (ws == NULL) {
        return;
    }
    avc_ws_release(ws);
    free(ws);
}

void
avc__ws_close_all(avc_app_t *app)
{
    while (app->sockets.head) {
        avc_ws_t *ws = (avc_ws_t *) app->sockets.head;

        ws->state = AVC_WS_CLOSED;
        avc_ws_release(ws);     /* the host frees it later */
    }
}

AVC_API size_t
avc_ws_count(avc_app_t *app)
{
    return app->sockets.n;
}
