/*
 * avatarcore/multipart.h - a multipart/form-data body builder (RFC 7578),
 * e.g. for speech-to-text uploads.
 *
 *   mp = avc_multipart_new();
 *   avc_multipart_add_field(mp, "model", "whisper-1", 9);
 *   avc_multipart_add_file(mp, "file", "a.wav", "audio/wav", pcm, n);
 *   avc_multipart_to_request(mp, req);     body and Content-Type set
 *   avc_multipart_free(mp);
 *
 * Every add copies its arguments.  Names and filenames are escaped as
 * browsers do (" as %22, CR as %0D, LF as %0A), so they can never break
 * out of their header.  The boundary is random and checked against every
 * byte added, so it cannot occur in the content.
 *
 * Thread safety: a builder may be used by one thread at a time.
 */
#ifndef AVATARCORE_MULTIPART_H
#define AVATARCORE_MULTIPART_H

#include <avatarcore/core.h>
#include <avatarcore/http.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_multipart_s avc_multipart_t;

/* A new, empty builder, or NULL when out of memory. */
AVC_API avc_multipart_t *avc_multipart_new(void);

/* NULL is a no-op. */
AVC_API void avc_multipart_free(avc_multipart_t *mp);

/*
 * A text field: name (NUL-terminated, not empty) and n bytes of value.
 * AVC_OK, AVC_EINVAL, AVC_ENOMEM or AVC_ESTATE (already finished).
 */
AVC_API int avc_multipart_add_field(avc_multipart_t *mp, const char *name,
                                    const char *value, size_t n);

/*
 * A file part: field name, filename (may be empty, not NULL), content
 * type (NULL means application/octet-stream; CR or LF in it is refused
 * with AVC_EINVAL) and n bytes of content.
 */
AVC_API int avc_multipart_add_file(avc_multipart_t *mp, const char *name,
                                   const char *filename,
                                   const char *content_type,
                                   const void *data, size_t n);

/*
 * Build the body: a new buffer of *len bytes (free() it; also
 * NUL-terminated for convenience).  The parts are released; the builder
 * then only answers avc_multipart_content_type().  Returns NULL when out
 * of memory or already finished.
 */
AVC_API char *avc_multipart_finish(avc_multipart_t *mp, size_t *len);

/*
 * The Content-Type header value for the body, e.g.
 * "multipart/form-data; boundary=...": borrowed, valid until the builder
 * is freed; NULL before avc_multipart_finish().
 */
AVC_API const char *avc_multipart_content_type(const avc_multipart_t *mp);

/*
 * Finish and hand the body to a request that was not started yet, with
 * its Content-Type header.  The builder must still be freed.
 */
AVC_API int avc_multipart_to_request(avc_multipart_t *mp,
                                     avc_http_req_t *req);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_MULTIPART_H */
