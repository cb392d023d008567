/*
 * /api/v1/avatar: the talking face of Adam.
 *
 * Two providers, chosen by avatar.provider:
 *
 *   builtin  the web app draws its own avatar, driven by our audio and
 *            viseme events; the server has no session to open.  POST
 *            /session answers 503 ServiceUnavailable with a stable
 *            message the web app shows while it falls back to it; GET
 *            /voices lists the espeak voices the built-in speech offers.
 *
 *   heygen   HeyGen LiveAvatar in FULL mode.  POST /session mints a
 *            session token for the browser, which then starts and runs
 *            the session itself with LiveAvatar's web SDK:
 *
 *              POST {avatar.base_url}/v1/sessions/token
 *              X-API-KEY: {avatar.key}
 *              Content-Type: application/json
 *
 *              {"mode":"FULL","avatar_id":"{avatar.avatar_id}",
 *               "is_sandbox":{avatar.sandbox, true|false},
 *               "avatar_persona":{"voice_id":"{voice_id}"}}
 *
 *            avatar_persona is required by LiveAvatar in FULL mode and is
 *            always sent; its voice_id only when the client chose one
 *            (else the avatar's own voice speaks).  The answer is
 *            LiveAvatar's envelope {"code":100,"data":{"session_id",
 *            "session_token"},"message"}: data is unwrapped and returned
 *            as {"session_id","session_token"}.  GET /voices lists
 *            avatar.voices, "id[:Name],..." (name = id when not given).
 *
 * Settings (read on each call; they are few and cheap to look up):
 * avatar.provider (default builtin), avatar.base_url (default
 * https://api.liveavatar.com), avatar.avatar_id, avatar.key (the loaded
 * secret), avatar.sandbox on|off (default off), avatar.timeout (ms, the
 * whole request, default 15000), avatar.voices.  heygen without a usable
 * key or avatar_id works as builtin, with a warning in the log.
 *
 * Failures of the provider are told to the client without detail (no
 * key, no upstream body): a timeout is 504, anything else (a status other
 * than 2xx, bad JSON, missing fields, no connection) 502; the cause goes
 * to the log with the key scrubbed.  Minting a token opens a session on
 * the provider's side, so a failed request is not retried.  A client that
 * goes away cancels the request to the provider.
 */
#include "../app/validate.h"

#include "json_util.h"

#include <avatarcore/http.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_AVATAR_BASE         "https://api.liveavatar.com"
#define AVC_AVATAR_PATH         "/v1/sessions/token"
#define AVC_AVATAR_TIMEOUT      15000           /* ms, the whole request */
#define AVC_AVATAR_CONNECT_MAX  10000           /* ms, to connect */
#define AVC_AVATAR_ID_MAX       100             /* voice and avatar ids */
#define AVC_AVATAR_NAME_MAX     100             /* a voice's name */
#define AVC_AVATAR_RESP_MAX     (64 * 1024)     /* the provider's answer */
#define AVC_AVATAR_SESSION_MAX  256             /* a session id */
#define AVC_AVATAR_TOKEN_MAX    8192            /* a session token */
#define AVC_AVATAR_SNIPPET      160             /* provider text in logs */

#define AVC_AVATAR_ID_CHARS                                                 \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

static const char avc_avatar_none[] =
    "No avatar provider is configured; the web app uses its built-in avatar";
static const char avc_avatar_failed[] =
    "The avatar provider could not start a session; please try again";
static const char avc_avatar_slow[] =
    "The avatar provider did not answer in time; please try again";

/* the espeak voices of the built-in avatar's speech */
static const struct {
    const char *id;
    const char *name;
} avc_avatar_builtin_voices[] = {
    { "en-us", "English (US)" },
    { "en-gb", "English (UK)" },
};

typedef struct {
    int heygen;                 /* 0: builtin */
    const char *base;           /* the strings are the config's */
    const char *avatar_id;
    const char *key;
    const char *voices;
    int sandbox;
    unsigned timeout_ms;
} avc_avatar_conf_t;

/* a POST /session waiting for the provider, freed with the call */
typedef struct {
    avc_http_req_t *req;        /* NULL once done or cancelled */
} avc_avatar_op_t;

/* misconfigurations are logged once per process, not per request */
#define AVC_AVATAR_WARN_TIMEOUT  0x1
#define AVC_AVATAR_WARN_HEYGEN   0x2
#define AVC_AVATAR_WARN_VOICES   0x4

static unsigned avc_avatar_warned;

/* log a misconfiguration the first time it is seen */
static int
avc_avatar_warn_once(unsigned what)
{
    if (avc_avatar_warned & what) {
        return 0;
    }
    avc_avatar_warned |= what;
    return 1;
}

static int
avc_avatar_id_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > AVC_AVATAR_ID_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '\0' || strchr(AVC_AVATAR_ID_CHARS, s[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

static void
avc_avatar_conf(const avc_config_t *cfg, avc_avatar_conf_t *c)
{
    const char *prov, *why = NULL;
    long long v;

    memset(c, 0, sizeof(*c));
    prov = avc_config_get(cfg, "avatar.provider", "builtin");
    c->base = avc_config_get(cfg, "avatar.base_url", AVC_AVATAR_BASE);
    c->avatar_id = avc_config_get(cfg, "avatar.avatar_id", "");
    c->key = avc_config_get(cfg, "avatar.key", "");
    c->voices = avc_config_get(cfg, "avatar.voices", "");
    c->sandbox = strcmp(avc_config_get(cfg, "avatar.sandbox", "off"), "on")
                 == 0;
    if (avc_config_get_int(cfg, "avatar.timeout", AVC_AVATAR_TIMEOUT, 1,
                           3600000, &v) != AVC_OK)
    {
        if (avc_avatar_warn_once(AVC_AVATAR_WARN_TIMEOUT)) {
            avc_log(AVC_LOG_WARN, "avatar: bad setting avatar.timeout: not "
                    "1-3600000 ms; using %d", AVC_AVATAR_TIMEOUT);
        }
        v = AVC_AVATAR_TIMEOUT;
    }
    c->timeout_ms = (unsigned) v;
    if (strcmp(prov, "heygen") != 0) {
        return;
    }
    /* never quote the key, not even a broken one */
    if (*c->key == '\0') {
        why = "avatar.key is not set";
    } else if (strpbrk(c->key, "\r\n") != NULL) {
        why = "avatar.key contains a line break";
    } else if (!avc_avatar_id_ok(c->avatar_id, strlen(c->avatar_id))) {
        why = "avatar.avatar_id is missing or not an id";
    } else if (strncmp(c->base, "http://", 7) != 0
               && strncmp(c->base, "https://", 8) != 0)
    {
        why = "avatar.base_url is not an http(s) URL";
    }
    if (why) {
        if (avc_avatar_warn_once(AVC_AVATAR_WARN_HEYGEN)) {
            avc_log(AVC_LOG_WARN, "avatar: heygen is not usable (%s); the "
                    "built-in avatar is offered", why);
        }
        return;
    }
    c->heygen = 1;
}

/*
 * A provider's text as one printable line of at most AVC_AVATAR_SNIPPET
 * bytes, the key masked first (providers echo keys in errors), so that
 * no part of it survives the cut.
 */
static void
avc_avatar_snippet(const char *key, const char *s, char *out, size_t outn)
{
    char work[4 * AVC_AVATAR_SNIPPET + 1], *p;
    size_t i, n = strlen(s), kl = strlen(key);

    if (n >= sizeof(work)) {
        n = sizeof(work) - 1;
    }
    for (i = 0; i < n; i++) {
        work[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : ' ';
    }
    work[n] = '\0';
    if (kl >= 4) {
        while ((p = strstr(work, key)) != NULL) {
            memset(p, '*', kl);
        }
    }
    snprintf(out, outn, "%.*s", AVC_AVATAR_SNIPPET, work);
}

/* POST /session: the provider's answer */

static void
avc_avatar_fail(avc_call_t *call, int status, const char *fmt, ...)
    AVC_PRINTF(3, 4);

static void
avc_avatar_fail(avc_call_t *call, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    avc_log(AVC_LOG_WARN, "avatar: session token: %s", msg);
    avc__call_error(call, status, status == 504 ? avc_avatar_slow
                                                : avc_avatar_failed);
}

/* a string member of data of 1 to max bytes, else NULL */
static const char *
avc_avatar_member(const json_t *data, const char *name, size_t max)
{
    const char *s = NULL;

    if (avc__json_get_str(data, name, &s) != AVC_OK || *s == '\0'
        || strlen(s) > max)
    {
        return NULL;
    }
    return s;
}

static void
avc_avatar_done(avc_http_req_t *req, int err, void *data)
{
    avc_call_t *call = data;
    avc_avatar_op_t *op = call->op;
    const char *body, *sid, *tok, *m = NULL;
    const char *key = avc_config_get(call->app->cfg, "avatar.key", "");
    char snippet[AVC_AVATAR_SNIPPET + 1];
    json_t *root, *d, *o;
    size_t len;
    int status, rc;

    op->req = NULL;
    if (err != AVC_OK) {
        avc_avatar_fail(call, err == AVC_ETIMEDOUT ? 504 : 502, "%s",
                        avc_strerror(err));
        return;
    }
    status = avc_http_resp_status(req);
    body = avc_http_resp_body(req, &len);
    root = avc__json_parse(body, len, 0, &rc, NULL);
    if (status < 200 || status > 299) {
        snippet[0] = '\0';
        if (avc__json_get_str(root, "message", &m) == AVC_OK) {
            avc_avatar_snippet(key, m, snippet, sizeof(snippet));
        }
        json_decref(root);
        avc_avatar_fail(call, 502, "status %d%s%s", status,
                        *snippet ? ": " : "", snippet);
        return;
    }
    if (root == NULL) {
        avc_avatar_fail(call, 502, "status %d with a body that is not JSON "
                        "(%s)", status, avc_strerror(rc));
        return;
    }
    d = json_object_get(root, "data");
    sid = avc_avatar_member(d, "session_id", AVC_AVATAR_SESSION_MAX);
    tok = avc_avatar_member(d, "session_token", AVC_AVATAR_TOKEN_MAX);
    if (!json_is_object(d) || sid == NULL || tok == NULL) {
        json_decref(root);
        avc_avatar_fail(call, 502, "status %d without data.session_id and "
                        "data.session_token", status);
        return;
    }
    o = json_pack("{s:s, s:s}", "session_id", sid, "session_token", tok);
    json_decref(root);
    avc__call_json(call, 200, o);
}

static void
avc_avatar_cancel(avc_call_t *call, void *ctx)
{
    avc_avatar_op_t *op = ctx;

    /* the client went away: abort the request to the provider */
    avc_http_cancel(op->req);
    op->req = NULL;
}

static void
avc_avatar_op_free(void *p)
{
    free(p);
}

/* POST /session: ask the provider */

static void
avc_avatar_request(avc_call_t *call, const avc_avatar_conf_t *c,
    const char *voice_id)
{
    avc_avatar_op_t *op;
    avc_http_req_t *req;
    json_t *persona, *body;
    size_t blen;
    char *json, *u;
    int rc;

    persona = json_object();
    if (persona && voice_id) {
        json_object_set_new(persona, "voice_id", json_string(voice_id));
    }
    body = persona ? json_pack("{s:s, s:s, s:b, s:o}", "mode", "FULL",
                               "avatar_id", c->avatar_id, "is_sandbox",
                               c->sandbox, "avatar_persona", persona)
                   : NULL;
    json = avc__json_dump(body, &blen);
    json_decref(body);

    u = avc__url_join(c->base, AVC_AVATAR_PATH);

    op = calloc(1, sizeof(*op));
    req = json && u && op ? avc_http_req_new(call->app->http, "POST", u)
                          : NULL;
    free(u);
    if (req == NULL) {
        free(json);
        free(op);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    call->op = op;
    call->op_free = avc_avatar_op_free;

    avc_http_req_take_body(req, json, blen);
    avc_http_req_add_header(req, "Content-Type", "application/json");
    avc_http_req_add_header(req, "Accept", "application/json");
    avc_http_req_add_header(req, "X-API-KEY", c->key);
    avc_http_req_set_timeouts(req, c->timeout_ms < AVC_AVATAR_CONNECT_MAX
                                   ? c->timeout_ms : AVC_AVATAR_CONNECT_MAX,
                              c->timeout_ms, c->timeout_ms);
    avc_http_req_set_max_body(req, AVC_AVATAR_RESP_MAX);
    avc_http_req_set_callbacks(req, NULL, NULL, avc_avatar_done, call);
    /* the callbacks never run inside start: the hook is in place first */
    avc__call_begin(call, avc_avatar_cancel, op);
    rc = avc_http_req_start(req);
    if (rc != AVC_OK) {
        avc_avatar_fail(call, 502, "cannot start the request: %s",
                        avc_strerror(rc));
        return;
    }
    op->req = req;
}

static void
avc_avatar_session_authed(avc_call_t *call)
{
    avc_avatar_conf_t c;
    const char *voice = NULL;
    char *voice_id = NULL;
    avc__v_t v;

    if (avc__v_begin(&v, call, 0) != AVC_OK) {
        avc__v_end(&v);
        return;
    }
    if (avc__v_str(&v, "voice_id", 0, 1, AVC_AVATAR_ID_MAX, &voice) == 1
        && !avc_avatar_id_ok(voice, strlen(voice)))
    {
        avc__v_fail(&v, "voice_id", "string_pattern_mismatch",
                    "String should match pattern '^[A-Za-z0-9._-]+$'");
    }
    if (avc__v_failed(&v)) {
        avc__v_reply(&v);
        avc__v_end(&v);
        return;
    }
    if (voice && (voice_id = strdup(voice)) == NULL) {
        avc__v_end(&v);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    avc__v_end(&v);

    avc_avatar_conf(call->app->cfg, &c);
    if (!c.heygen) {
        free(voice_id);
        avc__call_error(call, 503, avc_avatar_none);
        return;
    }
    avc_avatar_request(call, &c, voice_id);
    free(voice_id);
}

AVC_API int
avc_op_avatar_session(avc_call_t *call)
{
    avc__authenticate(call, avc_avatar_session_authed);
    return AVC_OK;
}

/* GET /voices */

/* s[0..*n) without surrounding blanks */
static const char *
avc_avatar_trim(const char *s, size_t *n)
{
    while (*n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        (*n)--;
    }
    while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t')) {
        (*n)--;
    }
    return s;
}

/* avatar.voices "id[:Name],...": the entries that are well formed */
static int
avc_avatar_configured_voices(const char *list, json_t *voices)
{
    const char *p = list, *id, *name, *colon;
    char buf[AVC_AVATAR_ID_MAX + 1];
    size_t seg, idn, namen;
    int rc = 0;

    while (*p && rc == 0) {
        seg = strcspn(p, ",");
        colon = memchr(p, ':', seg);
        idn = colon ? (size_t) (colon - p) : seg;
        id = avc_avatar_trim(p, &idn);
        namen = colon ? seg - (size_t) (colon - p) - 1 : 0;
        name = avc_avatar_trim(colon ? colon + 1 : p, &namen);
        if (namen == 0) {
            name = id;
            namen = idn;
        }
        if (idn == 0 && colon == NULL) {
            /* an empty entry: ",," or a trailing comma */
        } else if (!avc_avatar_id_ok(id, idn)
                   || namen > AVC_AVATAR_NAME_MAX * 4
                   || !avc__utf8_valid(name, namen))
        {
            if (avc_avatar_warn_once(AVC_AVATAR_WARN_VOICES)) {
                avc_log(AVC_LOG_WARN, "avatar: avatar.voices: an entry "
                        "is not \"id\" or \"id:Name\" (ids of up to %d of "
                        "A-Z a-z 0-9 . _ -); it is left out",
                        AVC_AVATAR_ID_MAX);
            }
        } else {
            memcpy(buf, id, idn);
            buf[idn] = '\0';
            rc = json_array_append_new(voices,
                                       json_pack("{s:s, s:o}", "voice_id",
                                                 buf, "name",
                                                 json_stringn(name, namen)));
        }
        p += seg;
        if (*p == ',') {
            p++;
        }
    }
    return rc == 0 ? AVC_OK : AVC_ENOMEM;
}

static void
avc_avatar_voices_authed(avc_call_t *call)
{
    avc_avatar_conf_t c;
    json_t *voices = json_array(), *o;
    size_t i;
    int rc = voices ? AVC_OK : AVC_ENOMEM;

    avc_avatar_conf(call->app->cfg, &c);
    if (rc == AVC_OK && c.heygen) {
        rc = avc_avatar_configured_voices(c.voices, voices);
    } else if (rc == AVC_OK) {
        for (i = 0; i < avc__countof(avc_avatar_builtin_voices); i++) {
            if (json_array_append_new(voices, json_pack("{s:s, s:s}",
                    "voice_id", avc_avatar_builtin_voices[i].id,
                    "name", avc_avatar_builtin_voices[i].name)) != 0)
            {
                rc = AVC_ENOMEM;
            }
        }
    }
    if (rc != AVC_OK) {
        json_decref(voices);
        avc__call_error(call, 500, "Internal server error");
        return;
    }
    o = json_pack("{s:o, s:s}", "voices", voices, "provider",
                  c.heygen ? "heygen" : "builtin");
    avc__call_json(call, 200, o);
}

AVC_API int
avc_op_avatar_voices(avc_call_t *call)
{
    avc__authenticate(call, avc_avatar_voices_authed);
    return AVC_OK;
}
