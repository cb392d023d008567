/*
 * Internals of the application object shared by the operations.
 */
#ifndef AVC_APP_INT_H
#define AVC_APP_INT_H

#include "internal.h"

#include <avatarcore/app.h>
#include <avatarcore/db.h>

#include <jansson.h>

typedef struct avc__kv_s {
    struct avc__kv_s *next;
    char *name;
    char *value;
} avc__kv_t;

struct avc_app_s {
    avc_loop_t *loop;
    const avc_config_t *cfg;
    avc_db_t *db;
    struct avc_http_s *http;
    char *secret;
    size_t secret_len;
    int signup;                 /* AVC__SIGNUP_* */
    char *public_url;           /* links in mails point here */
    struct avc_mailer_s *mailer;
    struct avc_mail_queue_s *mailq;
    struct avc_embedder_s *embedder;
    struct avc__ingest_s *ingest;
    struct avc_retriever_s *retriever;
    struct avc_llm_s *llm;
    struct avc_scenarios_s *scenarios;
    struct avc_shcache_s *cache;
    int cache_owned;            /* a private cache made by the app */
    struct avc_embed_cache_s *embed_cache;  /* query embeddings in it */
    /* chat settings, read once: cache.semantic, cache.semantic_threshold,
     * chat.history_turns */
    int semantic_cache;
    double semantic_threshold;
    long long history_turns;
    long long spoken_max_tokens;    /* voice.spoken_max_tokens */
    unsigned voice_end_silence;     /* voice.end_silence, ms */
    unsigned voice_max_turn;        /* voice.max_turn, ms */
    struct avc_stt_s *stt;
    struct avc_tts_s *tts;
    avc__list_t sockets;            /* open voice sockets */
    int bcrypt_cost;
    char *version;
    char *openapi;              /* GET /api/v1/openapi.json, made once */
    size_t openapi_len;
    char *docs;                 /* GET /api/v1/docs */
    size_t docs_len;
    avc_call_t *calls;          /* running calls, for cancellation */
    unsigned long long calls_total;
    unsigned long long calls_by_class[6];   /* 1xx..5xx by status / 100 */
};

typedef void (*avc__cancel_fn)(avc_call_t *call, void *ctx);

#define AVC__SIGNUP_OFF    0
#define AVC__SIGNUP_INVITE 1
#define AVC__SIGNUP_OPEN   2

/* Who is calling: read from the database on every request. */
typedef struct {
    long long id;
    long long dealership_id;    /* 0: none */
    char role[20];              /* super_admin | dealership_admin | user */
    char email[256];
} avc__principal_t;

#define avc__is_sa(w)  (strcmp((w)->role, "super_admin") == 0)
#define avc__is_da(w)  (strcmp((w)->role, "dealership_admin") == 0)

struct avc_call_s {
    avc_app_t *app;
    avc_call_t *prev, *next;    /* in app->calls while running */
    int running;
    char *method;
    char *path;
    avc_call_done_cb done;
    void *data;
    avc__kv_t *params;
    avc__kv_t *headers;
    char *body;
    size_t body_len;

    /* the operation's hook to abort its work when the call is freed */
    avc__cancel_fn cancel;
    void *cancel_ctx;

    int status;
    char *resp;
    size_t resp_len;
    const char *ctype;
    avc__kv_t *resp_headers;
    avc__kv_t **resp_tail;

    /* set by avc__authenticate: the caller, and its User object */
    int authed;
    avc__principal_t who;
    json_t *who_json;
    void *auth;                 /* authentication in progress (freed) */

    /* the running step (query, transaction, offloaded work) */
    struct avc__step_s *step;
    avc_db_tx_t *tx;

    /* the operation's own state, freed with the call */
    void *op;
    void (*op_free)(void *op);

    /* a streaming body goes here instead of into body (see app.h) */
    int (*feed)(avc_call_t *call, const char *p, size_t n);
    int (*feed_end)(avc_call_t *call);

    /* a streamed answer (see avc_call_set_writer) */
    avc_call_write_cb writer;
    void *writer_data;
    int streaming;              /* the header went out through the writer */
    int stream_gone;            /* the writer failed: the client is gone */

    /* set by the voice layer on the calls it makes, never from a request:
     * the caller is this user (its session was authenticated by token;
     * the user is read again, and pwc must still match), and how a chat
     * answer is made (see avc__chat_release) */
    long long as_user;
    char as_pwc[24];
    int spoken;                 /* AVC__SPOKEN_* */
    int hold;                   /* keep the answer until released */
};

#define AVC__SPOKEN_NO    0
#define AVC__SPOKEN       1     /* spoken style, shorter */
#define AVC__SPOKEN_FAST  2     /* about 60 tokens, no retrieval */

/*
 * A held chat answer (call->hold): the chat operation streams it, sends
 * the SSE event "generated" when the model has finished instead of
 * storing, and waits.  Release it with the text that was actually
 * delivered (NULL: all of it); a model still answering is cancelled.
 * Then the turn is stored and the call finishes as usual.
 */
void avc__chat_release(avc_call_t *call, const char *text, size_t len);

/* Close every voice socket of the app (the app is going away). */
void avc__ws_close_all(avc_app_t *app);

/*
 * Steps: asynchronous work bound to a call.  At most one runs at a time;
 * if the call is freed (the client went away) the step is cancelled and
 * its callback is never called, an open transaction is rolled back.
 */
typedef void (*avc__q_cb)(avc_call_t *call, int err, avc_db_res_t *res);
typedef void (*avc__tx_cb)(avc_call_t *call, int err);

/* Run a query with bound parameters. */
int avc__q(avc_call_t *call, const char *sql, int nparams,
           const char *const *params, avc__q_cb cb);
/* Run a statement registered in avc_app_new (prepared per connection). */
int avc__qn(avc_call_t *call, const char *name, int nparams,
            const char *const *params, avc__q_cb cb);
/* Begin a transaction: later avc__txq calls run in it. */
int avc__begin(avc_call_t *call, avc__tx_cb cb);
int avc__txq(avc_call_t *call, const char *sql, int nparams,
             const char *const *params, avc__q_cb cb);
int avc__commit(avc_call_t *call, avc__tx_cb cb);
/* Cancel the running step and roll back (a call that answered early). */
void avc__steps_cancel(avc_call_t *call);

/* Roll back (if a transaction is open) without waiting. */
void avc__rollback(avc_call_t *call);

/* Run work(arg) on the thread pool, then done(call, arg) on the loop. */
int avc__offload(avc_call_t *call, void (*work)(void *arg),
                 void (*done)(avc_call_t *call, void *arg), void *arg,
                 void (*arg_free)(void *arg));

/*
 * Queue a templated mail (see avatarcore/mail.h for the names and vars)
 * in the call's open transaction; kick the sender after the commit.
 */
int avc__mail_enqueue(avc_call_t *call, const char *kind, const char *to,
                      const char *const *vars, avc__q_cb cb);
void avc__mail_kick(avc_app_t *app);

/* public_url + path + "?token=" + token, a new string */
char *avc__app_link(avc_app_t *app, const char *path, const char *token);

/*
 * bcrypt a password (copied, wiped after) on the thread pool, then
 * done(call, hash) on the loop with the hash (borrowed for the call);
 * a failure to hash is answered 500 by the step.
 */
int avc__hash_password(avc_call_t *call, const char *pw,
                       void (*done)(avc_call_t *call, const char *hash));

/* Wait ms milliseconds on the loop, then later(call). */
int avc__delay(avc_call_t *call, uint64_t ms,
               void (*later)(avc_call_t *call));

/* Reply for a failed step: 503 when the database is unavailable, else 500
 * (an unexpected server error is logged, never shown). */
void avc__reply_step_error(avc_call_t *call, int err, avc_db_res_t *res);

/*
 * Authenticate the call's bearer token and load the caller from the
 * database (role, active flags, dealership).  fn runs with call->who set;
 * otherwise the call is answered 401 and fn is not called.  It keeps its
 * own state: call->op is left to the operation.
 */
void avc__authenticate(avc_call_t *call, void (*fn)(avc_call_t *call));

/*
 * Shared objects.  AVC__USER_COLS selects, from "users u", the columns
 * avc__user_json reads; AVC__DEALERSHIP_COLS from "dealerships d" those
 * of avc__dealership_json.  Times are ISO 8601 UTC with "Z".
 */
#define AVC__TS(col)                                                        \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#define AVC__USER_COLS                                                      \
    "u.id, u.email, u.first_name, u.last_name, u.role, u.is_active,"        \
    " u.is_verified, u.dealership_id, " AVC__TS("u.last_login") ", "        \
    AVC__TS("u.created_at") ", " AVC__TS("u.updated_at")

#define AVC__DEALERSHIP_COLS                                                \
    "d.id, d.name, d.address, d.contact_email, d.contact_phone,"            \
    " d.is_active, d.rag_config::text, " AVC__TS("d.created_at") ", "       \
    AVC__TS("d.updated_at")

/* password_changed_at of a users row in ms: the "pwc" token claim */
#define AVC__PWC(t)                                                         \
    "floor(extract(epoch FROM " t ".password_changed_at) * 1000)::bigint"

json_t *avc__user_json(avc_db_res_t *res, int row);

/*
 * The answer of a listing: 200 with a JSON array of row(res, i) for every
 * row of the query's result, in order, or the query's error.
 */
void avc__reply_rows(avc_call_t *call, int err, avc_db_res_t *res,
                     json_t *(*row)(avc_db_res_t *res, int i));
json_t *avc__user_json_at(avc_db_res_t *res, int row, int col);

/* The statements every process prepares (avc__qn). */
#define AVC__STMT_PRINCIPAL "avc_principal"
int avc__register_statements(avc_db_t *db);
json_t *avc__dealership_json(avc_db_res_t *res, int row);

/* 401 with both {"detail"} (old clients) and the error shape. */
void avc__reply_unauthorized(avc_call_t *call, const char *message);

/* The bearer token of a call, or NULL. */
const char *avc__bearer(const avc_call_t *call);

/* Kick the ingestion queue (new documents are waiting). */
void avc__ingest_kick(avc_app_t *app);

/* Mark a call as running (the op will finish it later). */
void avc__call_begin(avc_call_t *call, avc__cancel_fn cancel, void *ctx);

/* Reply with a JSON value (reference stolen) and finish the call. */
void avc__call_json(avc_call_t *call, int status, json_t *body);

/*
 * Reply with the API error shape and finish the call.  A 422 always has
 * its details: avc__call_invalid names the field ("body.x", "query.x",
 * "path.x"; a bare name is the body's), avc__call_error(call, 422, m)
 * the body as a whole (avc_error_json).
 */
void avc__call_error(avc_call_t *call, int status, const char *message);
void avc__call_invalid(avc_call_t *call, const char *field, const char *type,
                       const char *message);

/* Reply with raw bytes (copied) of a media type and finish. */
void avc__call_raw(avc_call_t *call, int status, const char *ctype,
                   const char *body, size_t len);

int avc__call_add_header(avc_call_t *call, const char *name,
                         const char *value);

/*
 * Stream the answer: begin fixes the status and the media type (headers
 * added before go with it), write sends a piece (collected into the body
 * when the host set no writer), end finishes the call.  write returns
 * AVC_ECANCELED once the client is gone.
 */
int avc__call_stream_begin(avc_call_t *call, int status, const char *ctype);
int avc__call_stream_write(avc_call_t *call, const char *p, size_t n);
void avc__call_stream_end(avc_call_t *call);

/* The app's caches, made on first use (NULL when out of memory). */
struct avc_shcache_s *avc__app_cache(avc_app_t *app);

#endif /* AVC_APP_INT_H */
