/*
 * avatarcore/app.h - the application object and API operations.
 *
 * An application (avc_app_t) is the per-process state of Avatar Adam: the
 * loop it runs on, the database pool, the HTTP client for providers, and
 * the configuration.  A host (the nginx module, a tool, a test) makes one
 * per loop.
 *
 * A call (avc_call_t) is one API request handed to an operation: the host
 * fills in the method, the path, path parameters, query arguments, a few
 * request headers and the body, then starts an operation (avc_op_*).  The
 * operation completes asynchronously by calling the call's done callback
 * once, after which the host reads the status, headers and body and frees
 * the call.  Freeing a call before completion cancels the operation (the
 * done callback is then never called), which is how a host propagates "the
 * client went away".
 *
 * Error responses use one JSON shape everywhere (see avc_error_json).
 */
#ifndef AVATARCORE_APP_H
#define AVATARCORE_APP_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_app_s avc_app_t;
typedef struct avc_call_s avc_call_t;

/*
 * Configuration keys read by avc_app_new():
 *   database      libpq connection string (required)
 *   db.pool       connections per process (default 4)
 *   db.timeout    default query deadline in ms (default 10000)
 *   secret        the token signing key (required, >= 16 bytes)
 *   version       reported by GET /api/v1/ (default the library version)
 * cfg is borrowed and must outlive the app.  On failure returns NULL and
 * sets *err.
 */
AVC_API avc_app_t *avc_app_new(avc_loop_t *loop, const avc_config_t *cfg,
                               int *err);

/* Cancel every running call (no callbacks), close connections, free. */
AVC_API void avc_app_free(avc_app_t *app);

AVC_API avc_loop_t *avc_app_loop(avc_app_t *app);

/*
 * The caches (avatarcore/cache.h): a host whose processes share memory
 * (nginx's avatar_cache_zone) hands the app a cache in that region before
 * the first call; the app borrows it.  Without one, the app makes a
 * private cache of cache.size bytes (default 16 MiB) when first needed.
 */
struct avc_shcache_s;
AVC_API void avc_app_set_cache(avc_app_t *app, struct avc_shcache_s *cache);

typedef void (*avc_call_done_cb)(avc_call_t *call, void *data);

/* A new call; method and path are copied. */
AVC_API avc_call_t *avc_call_new(avc_app_t *app, const char *method,
                                 const char *path, avc_call_done_cb done,
                                 void *data);

/*
 * Free a call.  If its operation is still running it is cancelled and the
 * done callback is not called.  NULL is a no-op.
 */
AVC_API void avc_call_free(avc_call_t *call);

/* Request side (all values copied). */
AVC_API int avc_call_set_param(avc_call_t *call, const char *name,
                               const char *value);
/* Parse and add the arguments of a query string "a=1&b=x%20y". */
AVC_API int avc_call_set_query(avc_call_t *call, const char *qs, size_t len);
AVC_API int avc_call_set_header(avc_call_t *call, const char *name,
                                const char *value);
AVC_API int avc_call_set_body(avc_call_t *call, const void *body, size_t len);

/*
 * Streaming request bodies (uploads).  For a route whose body streams, the
 * host starts the operation first, then feeds the body piece by piece as
 * it arrives and says when it ended.  AVC_OK: go on; any other value: the
 * call has answered or will (a refused upload, a client error), and the
 * rest of the body is not wanted.  Pieces are copied or consumed at once.
 */
AVC_API int avc_call_feed(avc_call_t *call, const void *p, size_t n);
AVC_API int avc_call_feed_end(avc_call_t *call);

/*
 * Streaming responses (Server-Sent Events).  A host that can send a
 * response piece by piece sets a writer before it starts the operation.
 * An operation that streams calls the writer first with n == 0 once the
 * status, the content type and the extra headers are final (the host
 * sends the header then), then with each piece as it is produced, and
 * finally calls done with an empty body: avc_call_streamed() then tells
 * the host that the answer went out through the writer.  The writer
 * returns AVC_OK, or an error when the client is gone (the operation then
 * stops and finishes).  It must not free the call.  Without a writer the
 * same answer is collected into the body.
 */
typedef int (*avc_call_write_cb)(avc_call_t *call, const char *p, size_t n,
                                 void *data);

AVC_API void avc_call_set_writer(avc_call_t *call, avc_call_write_cb write,
                                 void *data);
AVC_API int avc_call_streamed(const avc_call_t *call);

/* Borrowed request values; NULL when absent. */
AVC_API const char *avc_call_param(const avc_call_t *call, const char *name);
AVC_API const char *avc_call_header(const avc_call_t *call,
                                    const char *name);

/* Response side, valid after done (or after an operation returned). */
AVC_API int avc_call_status(const avc_call_t *call);
/* The body (borrowed), its length, and its media type. */
AVC_API const char *avc_call_body(const avc_call_t *call, size_t *len);
AVC_API const char *avc_call_content_type(const avc_call_t *call);
/* Extra response headers: the i-th pair, or 0 past the end. */
AVC_API int avc_call_resp_header(const avc_call_t *call, unsigned i,
                                 const char **name, const char **value);

/*
 * An operation.  It is started with a filled call; it returns AVC_OK when
 * it has completed or will complete through the done callback, or an error
 * when it could not start (then done is not called and the host answers
 * 500).  Operations never block.
 */
typedef int (*avc_op_t)(avc_call_t *call);

/* GET /api/v1/ */
AVC_API int avc_op_root(avc_call_t *call);
/* GET /health: 200 healthy, 503 degraded when PostgreSQL is unreachable. */
AVC_API int avc_op_health(avc_call_t *call);
/* GET /metrics: Prometheus text format. */
AVC_API int avc_op_metrics(avc_call_t *call);
/* GET /api/v1/openapi.json: the OpenAPI 3.1 description of the API. */
AVC_API int avc_op_openapi(avc_call_t *call);
/* GET /api/v1/docs: an HTML page made from that description. */
AVC_API int avc_op_docs(avc_call_t *call);

/* /api/v1/auth/...: signup, login, refresh, logout, me, password. */
AVC_API int avc_op_auth_signup(avc_call_t *call);
AVC_API int avc_op_auth_login(avc_call_t *call);
AVC_API int avc_op_auth_refresh(avc_call_t *call);
AVC_API int avc_op_auth_logout(avc_call_t *call);
AVC_API int avc_op_auth_me(avc_call_t *call);
AVC_API int avc_op_auth_forgot(avc_call_t *call);
AVC_API int avc_op_auth_reset(avc_call_t *call);

/* /api/v1/users/... */
/* GET /: skip, limit, role, is_active, dealership_id; newest first. */
AVC_API int avc_op_users_list(avc_call_t *call);
/* GET /count: the same filters, {"count":n}. */
AVC_API int avc_op_users_count(avc_call_t *call);
/* GET /{id} */
AVC_API int avc_op_users_get(avc_call_t *call);
/* POST /: 201, the account active and verified. */
AVC_API int avc_op_users_create(avc_call_t *call);
/* PATCH /{id} */
AVC_API int avc_op_users_update(avc_call_t *call);
/* DELETE /{id}: 204. */
AVC_API int avc_op_users_delete(avc_call_t *call);
/* PATCH /{id}/toggle-active */
AVC_API int avc_op_users_toggle_active(avc_call_t *call);
/* POST /invites: 201 {id, email, expires_at}; the invitation is mailed. */
AVC_API int avc_op_users_invite(avc_call_t *call);

/* /api/v1/dealerships/... */
/* POST / (super admin): 201. */
AVC_API int avc_op_dealerships_create(avc_call_t *call);
/* GET /: skip, limit; a super admin all, others [own] or []. */
AVC_API int avc_op_dealerships_list(avc_call_t *call);
/* GET /{id} */
AVC_API int avc_op_dealerships_get(avc_call_t *call);
/* PATCH /{id} */
AVC_API int avc_op_dealerships_update(avc_call_t *call);
/* PATCH /{id}/rag-config: merged into rag_config. */
AVC_API int avc_op_dealerships_rag_config(avc_call_t *call);
/* DELETE /{id} (super admin): 204. */
AVC_API int avc_op_dealerships_delete(avc_call_t *call);

/* /api/v1/rag/{id}/...: the knowledge base */
AVC_API int avc_op_rag_initialize(avc_call_t *call);
AVC_API int avc_op_rag_status(avc_call_t *call);
AVC_API int avc_op_rag_documents(avc_call_t *call);
AVC_API int avc_op_rag_document_get(avc_call_t *call);
AVC_API int avc_op_rag_document_delete(avc_call_t *call);
AVC_API int avc_op_rag_reset(avc_call_t *call);
AVC_API int avc_op_rag_query(avc_call_t *call);
/* streams its body: start it, then avc_call_feed / avc_call_feed_end */
AVC_API int avc_op_rag_upload(avc_call_t *call);

/* /api/v1/chat/...: Adam the trainer and the role-play customer */
/* POST /: JSON, or Server-Sent Events with Accept: text/event-stream */
AVC_API int avc_op_chat(avc_call_t *call);
AVC_API int avc_op_chat_history(avc_call_t *call);
AVC_API int avc_op_chat_sessions(avc_call_t *call);
AVC_API int avc_op_chat_prewarm(avc_call_t *call);
AVC_API int avc_op_chat_clear(avc_call_t *call);
AVC_API int avc_op_chat_cache_stats(avc_call_t *call);

/* /api/v1/report/...: feedback, stored, then mailed to mail.recipients */
/* POST /inaccuracy, POST /send-to-team: any signed-in user */
AVC_API int avc_op_report_inaccuracy(avc_call_t *call);
AVC_API int avc_op_report_send_to_team(avc_call_t *call);
/* GET /: status, kind, dealership_id, offset (or skip), limit; newest
   first; a super admin all, a dealership admin its own */
AVC_API int avc_op_report_list(avc_call_t *call);
/* PATCH /{id}: {status, resolution_note?} */
AVC_API int avc_op_report_update(avc_call_t *call);

/* GET /api/v1/analytics/summary: from, to, dealership_id, top */
AVC_API int avc_op_analytics_summary(avc_call_t *call);

/* /api/v1/voice/...: one spoken turn, speech in and out (REST) */
/* POST /chat, POST /chat/fast (shorter answers, no retrieval) */
AVC_API int avc_op_voice_chat(avc_call_t *call);
AVC_API int avc_op_voice_chat_fast(avc_call_t *call);
/* POST /tts, POST /stt */
AVC_API int avc_op_voice_tts(avc_call_t *call);
AVC_API int avc_op_voice_stt(avc_call_t *call);
/* DELETE /session/{session_id} */
AVC_API int avc_op_voice_session_delete(avc_call_t *call);
/* the sockets: avatarcore/voice.h */

/* /api/v1/avatar/...: POST /session (HeyGen LiveAvatar token), GET /voices */
AVC_API int avc_op_avatar_session(avc_call_t *call);
AVC_API int avc_op_avatar_voices(avc_call_t *call);

/* GET /api/v1/chat/scenarios: the role-play scenarios {id, title, product} */
AVC_API int avc_op_chat_scenarios(avc_call_t *call);

/*
 * The error body of the API contract, as a new string:
 *   {"error":{"message":..,"type":..,"path":..}}
 * type follows status (401 AuthenticationError, 403 AuthorizationError,
 * 404 NotFoundError, 405 MethodNotAllowed, 409 ConflictError,
 * 413 PayloadTooLarge, 422 ValidationError, 429 RateLimitError,
 * 502/504 UpstreamError, 503 ServiceUnavailable, 500
 * InternalServerError, other 4xx BadRequest).  details_json, when not
 * NULL, is a JSON array text inserted as "details"; a 422 without it gets
 * one detail naming the body ({"field":"body","message":message,
 * "type":"value_error"}).  Returns NULL only when out of memory.
 */
AVC_API char *avc_error_json(int status, const char *message,
                             const char *path, const char *details_json);

/*
 * Check one provider setting, e.g. key "llm.provider" value "openai" or
 * key "llm.key" value "env:OPENROUTER_API_KEY".  Returns NULL when valid
 * (then *secret tells whether the value is a secret source to load), or a
 * static reason.
 */
AVC_API const char *avc_setting_check(const char *key, const char *value,
                                      int *secret);

/* The "type" of an error status, as above. */
AVC_API const char *avc_error_type(int status);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_APP_H */
