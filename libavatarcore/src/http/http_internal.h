/*
 * Declarations shared by the files of src/http (avc__ prefix); not
 * installed.
 */
#ifndef AVC_HTTP_INTERNAL_H
#define AVC_HTTP_INTERNAL_H

#include "internal.h"

#include <avatarcore/multipart.h>

/*
 * Fill buf with n random bytes: getrandom(2), or, where it fails, a
 * clock-seeded generator.  Not for secrets: boundaries and jitter only.
 */
void avc__http_random(void *buf, size_t n);

/*
 * Tests only: the boundary avc_multipart_finish() tries first, so that a
 * collision with the content can be provoked (copied; at most 70 bytes).
 */
int avc__multipart_try_boundary(avc_multipart_t *mp, const char *boundary);

#endif /* AVC_HTTP_INTERNAL_H */
