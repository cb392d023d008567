/*
 * The ElevenLabs provider: one sentence is one request,
 *
 *   POST {base_url}/v1/text-to-speech/{voice_id}/stream
 *        ?output_format=mp3_44100_128 | pcm_16000
 *   xi-api-key: {tts.key}
 *   {"text": ..., "model_id": ...}
 *
 * answered with the audio as a chunked body, delivered to the caller as
 * it arrives.  The chunks of the body fall anywhere, so the audio is cut
 * again before it goes on: MP3 at MPEG frame boundaries (a frame's length
 * is read from its header; the partial frame at the end of a chunk waits
 * in op->carry for the next one), PCM on whole 16-bit samples.  Bytes
 * that are not frames (an ID3 tag, garbage between frames) are dropped.
 *
 * Errors come as JSON, {"detail": {"status": "invalid_api_key",
 * "message": ...}} (or FastAPI's {"detail": [{"msg": ...}]} for a body
 * that does not validate); the detail goes to the log, the client gets a
 * message chosen by status.  Before the first byte of audio a failure may
 * still be repaired: the HTTP client retries 429, 5xx and connect
 * failures (honouring Retry-After), and a stream that breaks before its
 * first byte is tried again.  After it, a failure ends the sentence with
 * an error after audio.  The deadlines are the op's timers (tts.c);
 * cancelling aborts the request, which closes its connection.
 *
 * ElevenLabs sends no timing with this endpoint, so the visemes are
 * estimated from the text over the audio's length, once it is known:
 * after the last piece of audio, before on_done.
 */
#include "tts_int.h"

#include "json_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the part of an error body kept */
#define AVC_ELEVEN_ERRBODY_MAX (16 * 1024)

static int avc_eleven_attempt(avc_tts_op_t *op);

static int
avc_eleven_ok(int status)
{
    return status >= 200 && status <= 299;
}

/* MP3 */

/* an ID3v2 tag at p (n >= 10): its whole length, else 0 */
static size_t
avc_eleven_id3(const unsigned char *p, size_t n)
{
    if (n < 10 || memcmp(p, "ID3", 3) != 0 || p[3] == 0xff || p[4] == 0xff
        || ((p[6] | p[7] | p[8] | p[9]) & 0x80))
    {
        return 0;
    }
    return 10 + ((size_t) p[6] << 21 | (size_t) p[7] << 14
                 | (size_t) p[8] << 7 | p[9]) + ((p[5] & 0x10) ? 10 : 0);
}

/*
 * The frames at the start of the carry, up to the last complete one,
 * with junk between frames dropped: each contiguous run of frames goes
 * to the caller as one piece.  At the end of the stream (final) the
 * partial frame that is left goes too.  AVC_OK or AVC_ECANCELED.
 */
static int
avc_eleven_mp3_cut(avc_tts_op_t *op, int final)
{
    const unsigned char *d;
    unsigned flen, spf, sr, flen2, spf2, sr2;
    size_t len, pos = 0, start = 0, id3;
    int rc;

    d = (const unsigned char *) op->carry.data;
    len = op->carry.len;
    while (pos < len) {
        if (op->skip) {
            id3 = op->skip < len - pos ? op->skip : len - pos;
            op->skip -= id3;
            pos += id3;
            start = pos;
            continue;
        }
        if (!op->synced) {
            /* a header counts when the next frame starts where it says */
            if (len - pos < 10 && !final) {
                break;
            }
            id3 = avc_eleven_id3(d + pos, len - pos);
            if (id3) {
                op->skip = id3;
                continue;
            }
            if (avc__mp3_frame(d + pos, len - pos, &flen, &spf, &sr)) {
                if (pos + flen + 4 <= len) {
                    if (avc__mp3_frame(d + pos + flen, len - pos - flen,
                                       &flen2, &spf2, &sr2)
                        && sr2 == sr
                        && (op->sample_rate == 0 || sr == op->sample_rate))
                    {
                        op->synced = 1;
                        start = pos;
                        continue;
                    }
                } else if (!final) {
                    break;              /* wait for the next header */
                } else if (pos + flen <= len) {
                    op->synced = 1;
                    start = pos;
                    continue;
                }
            }
            pos++;
            op->junk++;
            start = pos;
            continue;
        }
        if (len - pos < 4) {
            break;
        }
        if (!avc__mp3_frame(d + pos, len - pos, &flen, &spf, &sr)
            || (op->sample_rate && sr != op->sample_rate))
        {
            /* lost: hand out the frames so far, then look again */
            if (pos > start) {
                rc = avc__tts_audio(op, d + start, pos - start);
                if (rc != AVC_OK) {
                    return rc;
                }
            }
            op->synced = 0;
            start = pos;
            continue;
        }
        if (pos + flen > len) {
            break;
        }
        pos += flen;
        op->samples += spf;
        op->sample_rate = sr;
    }
    if (final && op->synced && pos < len
        && avc__mp3_frame(d + pos, len - pos, &flen, &spf, &sr)
        && (op->sample_rate == 0 || sr == op->sample_rate))
    {
        pos = len;                      /* the last, partial frame */
    }
    if (pos > start) {
        rc = avc__tts_audio(op, d + start, pos - start);
        if (rc != AVC_OK) {
            return rc;
        }
    }
    if (op->sample_rate) {
        op->audio_ms = (unsigned) (op->samples * 1000 / op->sample_rate);
    }
    if (final) {
        if (pos < len) {
            op->junk += len - pos;
        }
        avc__buf_reset(&op->carry);
        return AVC_OK;
    }
    memmove(op->carry.data, op->carry.data + pos, len - pos);
    op->carry.len = len - pos;
    op->carry.data[op->carry.len] = '\0';
    return AVC_OK;
}

/* PCM: whole samples only; an odd byte waits for the next chunk */
static int
avc_eleven_pcm(avc_tts_op_t *op, const char *p, size_t n)
{
    size_t even;
    int rc;

    if (op->carry.len) {
        if (avc__buf_append(&op->carry, p, 1) != AVC_OK) {
            return AVC_ENOMEM;
        }
        rc = avc__tts_audio(op, op->carry.data, 2);
        if (rc != AVC_OK) {
            return rc;
        }
        avc__buf_reset(&op->carry);
        p++;
        n--;
    }
    even = n & ~(size_t) 1;
    if (even) {
        rc = avc__tts_audio(op, p, even);
        if (rc != AVC_OK) {
            return rc;
        }
    }
    if (n > even && avc__buf_append(&op->carry, p + even, 1) != AVC_OK) {
        return AVC_ENOMEM;
    }
    op->audio_ms = (unsigned) (op->bytes / 32);
    return AVC_OK;
}

static int
avc_eleven_on_response(avc_http_req_t *req, int status, void *data)
{
    avc_tts_op_t *op = data;

    op->status = status;
    return 0;
}

static int
avc_eleven_on_data(avc_http_req_t *req, const char *p, size_t n,
    void *data)
{
    avc_tts_op_t *op = data;
    size_t room;
    int rc = AVC_OK, stop = 0;

    avc__tts_enter(op);
    if (op->canceled || op->finished) {
        stop = 1;
    } else if (!avc_eleven_ok(op->status)) {
        room = AVC_ELEVEN_ERRBODY_MAX - op->errbody.len;
        if (avc__buf_append(&op->errbody, p, n < room ? n : room)
            != AVC_OK)
        {
            op->stop_err = AVC_ENOMEM;
            stop = 1;
        }
    } else if (op->format == AVC_TTS_PCM16K) {
        rc = avc_eleven_pcm(op, p, n);
    } else if (avc__buf_append(&op->carry, p, n) != AVC_OK) {
        rc = AVC_ENOMEM;
    } else {
        rc = avc_eleven_mp3_cut(op, 0);
    }
    if (rc != AVC_OK) {
        stop = 1;
        if (rc == AVC_ENOMEM) {
            op->stop_err = AVC_ENOMEM;
        }
    }
    avc__tts_leave(op);
    return stop;
}

/* the client's message and the log's detail for an error status */
static void
avc_eleven_status_error(avc_tts_op_t *op, avc_http_req_t *req)
{
    const char *st = NULL, *msg = NULL;
    const json_t *d, *first;
    char snip[161];
    json_t *root;
    int rc;

    root = op->errbody.len ? avc__json_parse(op->errbody.data,
                                             op->errbody.len, 0, &rc, NULL)
                           : NULL;
    d = json_object_get(root, "detail");
    if (json_is_object(d)) {
        avc__json_get_str(d, "status", &st);
        avc__json_get_str(d, "message", &msg);
    } else if (json_is_string(d)) {
        msg = json_string_value(d);
    } else if (json_is_array(d)) {
        first = json_array_get(d, 0);
        avc__json_get_str(first, "msg", &msg);
        avc__json_get_str(first, "type", &st);
    }
    if (msg) {
        avc__tts_snippet(op->tts, msg, strlen(msg), snip, sizeof(snip));
    } else {
        avc__tts_snippet(op->tts, op->errbody.data, op->errbody.len, snip,
                         sizeof(snip));
    }
    snprintf(op->detail, sizeof(op->detail), "status %d (%s%s%s) after %u "
             "attempt(s)", op->status, st ? st : "", st ? ": " : "", snip,
             avc_http_req_attempts(req));

    if (st && strcmp(st, "quota_exceeded") == 0) {
        op->error = "The speech service's quota is used up";
    } else if (st && (strcmp(st, "voice_not_found") == 0
                      || strcmp(st, "voice_does_not_exist") == 0))
    {
        op->error = "The voice is not available";
    } else if (op->status == 401) {
        op->error = "The speech service refused the server's credentials";
    } else if (op->status == 403) {
        op->error = "The speech service refused the request";
    } else if (op->status == 404) {
        op->error = "The voice is not available";
    } else if (op->status == 400 || op->status == 422) {
        op->error = "The speech service could not accept the text";
    } else if (op->status == 429) {
        op->error = "The speech service is busy; try again shortly";
    } else if (op->status >= 500) {
        op->error = "The speech service failed";
    } else {
        op->error = "The speech service reported an error";
    }
    json_decref(root);
}

/* how the attempt ended: AVC_OK or the error for the caller */
static int
avc_eleven_outcome(avc_tts_op_t *op, avc_http_req_t *req, int err)
{
    if (op->stop_err != AVC_OK) {
        return op->stop_err;
    }
    if (err != AVC_OK) {
        snprintf(op->detail, sizeof(op->detail), "%s after %u attempt(s) "
                 "and %zu bytes of audio", avc_strerror(err),
                 avc_http_req_attempts(req), op->bytes);
        switch (err) {
        case AVC_ETIMEDOUT:
        case AVC_ENOMEM:
        case AVC_ECONNECT:
            return err;
        default:
            return AVC_EHTTP;
        }
    }
    if (!avc_eleven_ok(op->status)) {
        avc_eleven_status_error(op, req);
        return AVC_EUPSTREAM;
    }
    return AVC_OK;
}

/* the end of a complete stream: the rest, then the visemes */
static int
avc_eleven_complete(avc_tts_op_t *op)
{
    avc_viseme_t *v;
    size_t nv = 0;
    int rc;

    if (op->format == AVC_TTS_MP3) {
        rc = avc_eleven_mp3_cut(op, 1);
        if (rc != AVC_OK) {
            return rc;
        }
        if (op->junk) {
            avc_log(AVC_LOG_WARN, "tts: elevenlabs: %zu bytes of the MP3 "
                    "stream were not frames", op->junk);
        }
    } else if (op->carry.len) {
        avc_log(AVC_LOG_WARN, "tts: elevenlabs: the PCM stream ended in "
                "mid-sample");
        avc__buf_reset(&op->carry);
    }
    if (op->bytes == 0) {
        snprintf(op->detail, sizeof(op->detail), "a response without "
                 "audio");
        return AVC_EPROTO;
    }
    v = avc_visemes_from_text(op->text, op->audio_ms, &nv);
    if (v == NULL && nv == 0 && op->audio_ms > 0) {
        return AVC_ENOMEM;
    }
    rc = avc__tts_visemes(op, v, nv);
    free(v);
    return rc;
}

static void
avc_eleven_failed(avc_tts_op_t *op, int err)
{
    const char *what = NULL;
    int rc;

    /* a stream that broke before any audio: the HTTP client retries
     * only what failed before the response */
    if (op->bytes == 0 && err == AVC_EHTTP
        && (op->status == 0 || avc_eleven_ok(op->status))
        && op->tries + 1 < op->tts->retries)
    {
        op->tries++;
        what = "trying again";
    }
    avc_log(AVC_LOG_WARN, "tts: elevenlabs voice %s: %s: %s%s%s", op->voice,
            avc_strerror(err), op->detail[0] ? op->detail
                                             : avc_strerror(err),
            what ? "; " : "", what ? what : "");
    if (what != NULL) {
        rc = avc_eleven_attempt(op);
        if (rc == AVC_OK) {
            return;
        }
        err = rc;
    }
    avc__tts_finish(op, err);
}

static void
avc_eleven_on_done(avc_http_req_t *req, int err, void *data)
{
    avc_tts_op_t *op = data;
    int rc;

    avc__tts_enter(op);
    op->req = NULL;
    if (!op->canceled && !op->finished) {
        rc = avc_eleven_outcome(op, req, err);
        if (rc == AVC_OK) {
            rc = avc_eleven_complete(op);
            if (rc == AVC_OK) {
                avc__tts_finish(op, AVC_OK);
            } else if (rc != AVC_ECANCELED) {
                avc_eleven_failed(op, rc);
            }
        } else {
            avc_eleven_failed(op, rc);
        }
    }
    avc__tts_leave(op);
}

static int
avc_eleven_attempt(avc_tts_op_t *op)
{
    avc_tts_t *tts = op->tts;
    avc_http_req_t *req;
    json_t *body;
    avc__buf_t url;
    uint64_t now;
    char *json;
    int rc = AVC_OK;

    op->status = 0;
    op->stop_err = AVC_OK;
    op->synced = 0;
    op->skip = 0;
    op->error = NULL;
    op->detail[0] = '\0';
    avc__buf_reset(&op->carry);
    avc__buf_reset(&op->errbody);

    body = json_object();
    if (body == NULL
        || json_object_set_new(body, "text", json_string(op->text)) != 0
        || json_object_set_new(body, "model_id", json_string(tts->model))
           != 0)
    {
        json_decref(body);
        return AVC_ENOMEM;
    }
    json = avc__json_dump(body, NULL);
    json_decref(body);
    if (json == NULL) {
        return AVC_ENOMEM;
    }
    avc__buf_init(&url);
    rc |= avc__buf_printf(&url, "%s/v1/text-to-speech/%s/stream"
                          "?output_format=%s", tts->base, op->voice,
                          op->format == AVC_TTS_MP3 ? "mp3_44100_128"
                                                    : "pcm_16000");
    if (rc != AVC_OK) {
        avc__buf_free(&url);
        free(json);
        return AVC_ENOMEM;
    }
    req = avc_http_req_new(tts->http, "POST", url.data);
    avc__buf_free(&url);
    if (req == NULL) {
        free(json);
        return AVC_ENOMEM;
    }
    avc_http_req_take_body(req, json, strlen(json));
    avc_http_req_add_header(req, "Content-Type", "application/json");
    avc_http_req_add_header(req, "Accept", op->format == AVC_TTS_MP3
                                           ? "audio/mpeg" : "audio/pcm");
    avc_http_req_add_header(req, "xi-api-key", tts->key);
    now = avc_loop_now(tts->loop);
    avc_http_req_set_timeouts(req, tts->connect_ms,
                              avc__ms_left(op->first_deadline, now),
                              avc__ms_left(op->total_deadline, now));
    avc_http_req_set_retry(req, tts->retries, tts->backoff_ms);
    avc_http_req_set_callbacks(req, avc_eleven_on_response,
                               avc_eleven_on_data, avc_eleven_on_done, op);
    rc = avc_http_req_start(req);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_ERR, "tts: elevenlabs: cannot start the request: "
                "%s", avc_strerror(rc));
        return rc;
    }
    op->req = req;
    return AVC_OK;
}

int
avc__tts_eleven_start(avc_tts_op_t *op)
{
    avc_tts_t *tts = op->tts;
    uint64_t now = avc_loop_now(tts->loop);

    op->first_deadline = tts->first_byte_ms ? now + tts->first_byte_ms : 0;
    op->total_deadline = tts->timeout_ms ? now + tts->timeout_ms : 0;
    op->tries = 0;
    return avc_eleven_attempt(op);
}

void
avc__tts_eleven_stop(avc_tts_op_t *op)
{
    if (op->req) {
        avc_http_cancel(op->req);
        op->req = NULL;
    }
}
