/*
 * avatarcore/sse.h - an incremental Server-Sent Events parser, following
 * the WHATWG HTML "event stream interpretation".
 *
 * Feed it the body bytes as they arrive, split anywhere (even inside a
 * CRLF or a UTF-8 sequence); it calls back once per dispatched event.
 *
 *   - lines end with CRLF, LF or CR; a leading UTF-8 BOM is dropped;
 *   - "field: value" (one space after the colon is stripped), or a line
 *     without a colon, which is a field of that name with an empty value;
 *   - fields: event (the type), data (lines joined with "\n"), id (kept
 *     across events; ignored when it contains NUL), retry (digits only);
 *     unknown fields are ignored;
 *   - lines starting with ':' are comments (keep-alives): skipped, or
 *     passed to the comment callback;
 *   - a blank line dispatches the event, unless it has no data;
 *   - an event whose data is exactly "[DONE]" (the end marker of
 *     OpenAI-style streams) is flagged with done = 1.
 *
 * Thread safety: a parser may be used by one thread at a time.
 */
#ifndef AVATARCORE_SSE_H
#define AVATARCORE_SSE_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_sse_s avc_sse_t;

/*
 * One event.  type is the event type ("message" when none was given);
 * data holds len bytes and is NUL-terminated; id is the last event id
 * ("" when none).  All are borrowed for the call only.  done is 1 when
 * data is exactly "[DONE]".  Return 0 to go on, non-zero to stop: the
 * running avc_sse_feed() then returns AVC_ECANCELED.
 */
typedef int (*avc_sse_event_cb)(void *data, const char *type,
                                const char *payload, size_t len,
                                const char *id, int done);

/* A comment line, without its leading ':' (borrowed, NUL-terminated);
 * same return convention. */
typedef int (*avc_sse_comment_cb)(void *data, const char *text, size_t len);

/*
 * A parser.  max_event bounds the bytes of one event (its data, type,
 * id) and of any one line; 0 means 1 MiB.  on_event is required,
 * on_comment may be NULL.  NULL when out of memory or on_event is NULL.
 */
AVC_API avc_sse_t *avc_sse_new(size_t max_event, avc_sse_event_cb on_event,
                               avc_sse_comment_cb on_comment, void *data);

/* NULL is a no-op. */
AVC_API void avc_sse_free(avc_sse_t *sse);

/*
 * Parse n more bytes.  Returns AVC_OK; AVC_ETOOBIG when an event or line
 * exceeds max_event; AVC_ECANCELED when a callback asked to stop;
 * AVC_ENOMEM.  After an error the parser is stopped: later calls return
 * the same error.  Not to be called from within its own callbacks.
 */
AVC_API int avc_sse_feed(avc_sse_t *sse, const char *p, size_t n);

/*
 * The stream has ended.  Returns AVC_OK when it ended on an event
 * boundary, AVC_EPROTO when an unterminated line or an undispatched event
 * was pending (it is discarded, as the specification says), or the error
 * the parser stopped with.
 */
AVC_API int avc_sse_finish(avc_sse_t *sse);

/* The last "retry:" value in milliseconds, or -1 when none was seen. */
AVC_API long long avc_sse_retry(const avc_sse_t *sse);

/* The last event id (borrowed; "" when none). */
AVC_API const char *avc_sse_last_id(const avc_sse_t *sse);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_SSE_H */
