/*
 * avatarcore/voice.h - the sockets of the voice API.
 *
 * The host (the nginx module) speaks WebSocket: the handshake, framing,
 * masking, fragmentation, ping/pong, the close handshake, size limits,
 * idle timeouts.  The core speaks the application protocol of API.md over
 * the messages: the live conversation (/api/v1/voice/ws/live/{user_id})
 * and the voice-activity socket (/api/v1/voice/ws/vad/{client_id}).
 *
 * After the upgrade the host opens a session with the path's id and the
 * token it found (?token= or the "bearer.<token>" subprotocol), hands it
 * every complete message, and frees it when the connection ends.  The
 * core answers through the host's functions.  A session authenticates
 * first; a failure closes the socket with 4001 or 4003 as API.md says.
 *
 * Rules for the host:
 *   - host->send queues one message; it never blocks and never calls
 *     back into the core.  It returns AVC_OK, or an error when the
 *     connection is gone or the client is too slow (its queue passed the
 *     host's hard limit: the host then closes with 1008).
 *   - host->pending tells how many bytes are queued and not yet written;
 *     the core stops producing audio above its high-water mark and goes
 *     on when the host calls avc_ws_drained().
 *   - host->close sends a close frame and ends the connection; the host
 *     still calls avc_ws_free() later, never from inside a host function.
 *   - avc_ws_free() cancels everything the session runs (provider
 *     requests are aborted) and no host function is called after it.
 */
#ifndef AVATARCORE_VOICE_H
#define AVATARCORE_VOICE_H

#include <avatarcore/app.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_ws_s avc_ws_t;

typedef enum {
    AVC_WS_LIVE = 0,
    AVC_WS_VAD
} avc_ws_kind_t;

typedef struct {
    int     (*send)(void *host, int binary, const void *p, size_t n);
    size_t  (*pending)(void *host);
    void    (*close)(void *host, int code, const char *reason);
} avc_ws_host_t;

/* Close codes of the application. */
#define AVC_WS_AUTH_REQUIRED  4001
#define AVC_WS_FORBIDDEN      4003

/*
 * A session for a socket that was just upgraded.  id is the path's
 * {user_id} or {client_id}; token may be NULL.  Returns NULL when out of
 * memory (the host closes with 1011).
 */
AVC_API avc_ws_t *avc_ws_open(avc_app_t *app, avc_ws_kind_t kind,
                              const char *id, const char *token,
                              const avc_ws_host_t *host, void *host_data);

/* One complete message (text is valid UTF-8: the host checked it). */
AVC_API void avc_ws_message(avc_ws_t *ws, int binary, const void *p,
                            size_t n);

/* The host's queue went below its low-water mark. */
AVC_API void avc_ws_drained(avc_ws_t *ws);

/* The connection ended: cancel everything, free.  NULL is a no-op. */
AVC_API void avc_ws_free(avc_ws_t *ws);

/* Sessions open in this process, for /metrics and tests. */
AVC_API size_t avc_ws_count(avc_app_t *app);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_VOICE_H */
