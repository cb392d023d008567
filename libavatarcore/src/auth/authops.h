/*
 * Helpers shared by the operations that issue secrets and mails.
 */
#ifndef AVC_AUTHOPS_H
#define AVC_AUTHOPS_H

#include "../app/app_int.h"

/* bytes random bytes as 2 * bytes hex digits (+ NUL) into out */
int avc__random_hex(char *out, size_t bytes);

/* SHA-256 of a string as 64 hex digits (+ NUL) */
void avc__sha256_hex(const char *s, char out[65]);

#endif /* AVC_AUTHOPS_H */
