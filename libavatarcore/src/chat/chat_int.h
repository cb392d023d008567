/*
 * Internals of the chat operations.
 */
#ifndef AVC_CHAT_INT_H
#define AVC_CHAT_INT_H

#include "../app/app_int.h"
#include "../app/validate.h"

#define AVC_CHAT_SESSION_MAX  128

/*
 * A session id the client may hold: 1-128 characters of [A-Za-z0-9._:-]
 * (UUIDs and the old client's ids), so that it is safe in logs and keys.
 */
int avc__chat_session_ok(const char *s);

/* A new random session id (a UUID, version 4) into out[37]. */
int avc__chat_new_session(char out[37]);

/*
 * Which dealership a chat request is for: a super admin must name one;
 * others use their own (naming another is a 404).  Returns the id, or 0
 * after answering the call (422 or 404).
 */
long long avc__chat_dealership(avc_call_t *call, long long requested,
                               int has_requested);

/* now as the API writes times, into out[40] */
void avc__chat_now(char out[40]);

#endif /* AVC_CHAT_INT_H */
