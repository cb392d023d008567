/*
 * Declarations shared by prompt.c and scenarios.c (avc__ prefix); not
 * installed.
 */
#ifndef AVC_PROMPT_INT_H
#define AVC_PROMPT_INT_H

#include "internal.h"

#include <avatarcore/prompt.h>

/* the largest template or scenario file read from an operator's dir */
#define AVC__PROMPT_FILE_MAX  (4 * 1024 * 1024)

/*
 * Read a whole regular file of at most max bytes that is UTF-8 text (no
 * NUL): AVC_OK and a new string in *out (its length in *len, optional);
 * AVC_ENOTFOUND (no such file), AVC_ETOOBIG (not a regular file, or over
 * max), AVC_EPARSE (not UTF-8 text), AVC_ESYS (see errno), AVC_ENOMEM.
 */
int avc__prompt_read_file(const char *path, size_t max, char **out,
                          size_t *len);

#endif /* AVC_PROMPT_INT_H */
