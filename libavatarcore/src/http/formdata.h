/*
 * Streaming multipart/form-data parsing (internal).
 */
#ifndef AVC_FORMDATA_H
#define AVC_FORMDATA_H

#include "internal.h"

typedef struct avc__formdata_s avc__formdata_t;

/*
 * A new part: its field name, its filename (NULL for a plain field) and
 * its Content-Type (may be NULL); borrowed for the call.  Return AVC_OK
 * to go on, or an error that stops the parse.
 */
typedef int (*avc__formdata_part_cb)(const char *name, const char *filename,
                                     const char *ctype, void *data);
/* A piece of the current part's data. */
typedef int (*avc__formdata_data_cb)(const char *p, size_t n, void *data);
/* The current part ended. */
typedef int (*avc__formdata_end_cb)(void *data);

/* The boundary of a multipart/form-data Content-Type (new), or NULL. */
char *avc__formdata_boundary(const char *ctype);

avc__formdata_t *avc__formdata_new(const char *boundary,
                                   avc__formdata_part_cb on_part,
                                   avc__formdata_data_cb on_data,
                                   avc__formdata_end_cb on_end, void *data);
void avc__formdata_free(avc__formdata_t *fd);

/*
 * Feed n bytes of the body.  Returns AVC_OK, AVC_EPARSE for a malformed
 * body, or the first error a callback returned (sticky).
 */
int avc__formdata_feed(avc__formdata_t *fd, const void *p, size_t n);

/* The body ended: AVC_OK when the closing delimiter was seen. */
int avc__formdata_finish(avc__formdata_t *fd);

#endif /* AVC_FORMDATA_H */
