/*
 * avatarcore/chunk.h - split a document's text into overlapping chunks
 * for embedding and retrieval.
 *
 *   c = avc_chunk(text, len, AVC_CHUNK_SIZE_DEFAULT,
 *                 AVC_CHUNK_OVERLAP_DEFAULT, &err);
 *   for (i = 0; i < avc_chunks_count(c); i++) {
 *       s = avc_chunks_text(c, i, &n);          borrowed
 *       ...avc_chunks_offset(c, i) is where it starts in text...
 *   }
 *   avc_chunks_free(c);
 *
 * Sizes are in characters (Unicode code points), not bytes.  Every chunk
 * is a contiguous piece of the input, at most chunk_size characters long,
 * never empty, with no blank at either end.
 *
 * Splitting is recursive in spirit (like LangChain's recursive character
 * splitter): a chunk ends at the strongest boundary the text offers in
 * the second half of its room, trying in order
 *
 *   the break before a heading (a line of at most 80 bytes of its own,
 *   followed by text, starting with a capital, a digit or "#", not ending
 *   with . , ; : ! or a quote, not a list item: "Appearance protection",
 *   "## Eligibility"), a paragraph break (a blank line), a line break, the
 *   end of a sentence (". ", "? " or "! " before anything but a
 *   lower-case letter; not after abbreviations such as "e.g.", "Mr." or an
 *   initial), a blank between words,
 *
 * and, when none is there, the strongest one in the first half; only a
 * single word longer than a chunk is cut between two characters (never
 * inside a UTF-8 sequence).  Since splits happen only at blanks, numbers
 * such as "$1,250.00" or "5.9%" stay whole.
 *
 * So chunks follow the sections of a document, and a passage about one
 * product or rule is not shared out between two chunks.
 *
 * From the second chunk on, a chunk starts with up to overlap characters
 * of the previous chunk's end, so that a passage cut in two can still be
 * found whole in one of them; not when it starts with a heading (a new
 * section needs nothing of the one before).  The overlap begins at the
 * first sentence (or line) start within those characters, else at the
 * first word start; it never takes all of the previous chunk, so offsets
 * strictly increase.
 *
 * The result depends only on the input and the two sizes.  Thread-safe;
 * CPU-bound (linear in the input): a host running an event loop should
 * chunk large documents in thread-pool work (avc_offload()).
 */
#ifndef AVATARCORE_CHUNK_H
#define AVATARCORE_CHUNK_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_chunks_s avc_chunks_t;

#define AVC_CHUNK_SIZE_DEFAULT     1000    /* characters */
#define AVC_CHUNK_OVERLAP_DEFAULT  200     /* characters */

/*
 * Split len bytes of UTF-8 text.  chunk_size must be at least 1 and
 * overlap smaller than chunk_size.  Returns a new chunk list (with no
 * chunk when the text is empty or blank) to free with avc_chunks_free(),
 * or NULL with *err (when err is not NULL) set to AVC_EINVAL (bad sizes,
 * NULL text with len > 0), AVC_EPARSE (not valid UTF-8) or AVC_ENOMEM.
 */
AVC_API avc_chunks_t *avc_chunk(const char *text, size_t len,
                                size_t chunk_size, size_t overlap, int *err);

/* The number of chunks. */
AVC_API size_t avc_chunks_count(const avc_chunks_t *c);

/*
 * Chunk i (i < count): borrowed, NUL-terminated, valid until the list is
 * freed; its length in bytes in *len (len may be NULL).  NULL when i is
 * out of range.
 */
AVC_API const char *avc_chunks_text(const avc_chunks_t *c, size_t i,
                                    size_t *len);

/* The byte offset in the input where chunk i starts; 0 when out of range. */
AVC_API size_t avc_chunks_offset(const avc_chunks_t *c, size_t i);

/* NULL is a no-op. */
AVC_API void avc_chunks_free(avc_chunks_t *c);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_CHUNK_H */
