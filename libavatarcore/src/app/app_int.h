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
    char *version;
    avc_call_t *calls;          /* running calls, for cancellation */
    unsigned long long calls_total;
    unsigned long long calls_by_class[6];   /* 1xx..5xx by status / 100 */
};

typedef void (*avc__cancel_fn)(avc_call_t *call, void *ctx);

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
};

/* Mark a call as running (the op will finish it later). */
void avc__call_begin(avc_call_t *call, avc__cancel_fn cancel, void *ctx);

/* Reply with a JSON value (reference stolen) and finish the call. */
void avc__call_json(avc_call_t *call, int status, json_t *body);

/* Reply with the API error shape and finish the call. */
void avc__call_error(avc_call_t *call, int status, const char *message);

/* Reply with raw bytes (copied) of a media type and finish. */
void avc__call_raw(avc_call_t *call, int status, const char *ctype,
                   const char *body, size_t len);

int avc__call_add_header(avc_call_t *call, const char *name,
                         const char *value);

#endif /* AVC_APP_INT_H */
