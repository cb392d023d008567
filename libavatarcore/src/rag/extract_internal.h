/*
 * Internal declarations of document extraction (src/rag/extract*.c).
 */
#ifndef AVC_EXTRACT_INTERNAL_H
#define AVC_EXTRACT_INTERNAL_H

#include "internal.h"

#include <avatarcore/extract.h>

#include <stdint.h>

/* The limits of one extraction, defaults already applied. */
typedef struct {
    size_t max_output;          /* bytes of normalised text */
    size_t max_memory;          /* bytes */
    unsigned timeout_ms;
    uint64_t deadline;          /* avc__extract_now_ms() based */
} avc__extract_lim_t;

/* A monotonic clock in milliseconds. */
uint64_t avc__extract_now_ms(void);

/*
 * Set *why (may be NULL) to a new copy of the reason and return rc, so
 * that a failure is one statement: return avc__extract_fail(...).
 */
int avc__extract_fail(char **why, int rc, const char *reason);

/*
 * Append the normalised form of n bytes of text to out (see extract.h);
 * invalid UTF-8 becomes U+FFFD.  AVC_OK or AVC_ENOMEM.
 */
int avc__text_normalize(avc__buf_t *out, const char *in, size_t n);

/* Is data a zip archive naming word/document.xml? */
int avc__docx_sniff(const void *data, size_t len);

/*
 * Type-specific extraction: append the raw text to out (normalised
 * later), or fail with a code and *why set.
 */
int avc__extract_docx(const void *data, size_t len,
                      const avc__extract_lim_t *lim, avc__buf_t *out,
                      char **why);
int avc__extract_pdf(const void *data, size_t len,
                     const avc__extract_lim_t *lim, avc__buf_t *out,
                     char **why);

#endif /* AVC_EXTRACT_INTERNAL_H */
