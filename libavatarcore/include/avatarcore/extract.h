/*
 * avatarcore/extract.h - plain text out of uploaded training documents:
 * .txt (UTF-8), .pdf and .docx.
 *
 *   type = avc_doc_sniff(data, len);
 *   if (type == AVC_DOC_UNKNOWN || type != avc_doc_type_by_name(name)) {
 *       ...reject: the file is not what its name says...
 *   }
 *   rc = avc_extract(data, len, type, 0, 0, 0, &text, &text_len, &why);
 *   ...on error, "why" is the reason to show the user...
 *   free(text); free(why);
 *
 * Documents are untrusted.  Every extraction has a wall-clock deadline, a
 * cap on the text it may produce and a memory budget:
 *
 *   - PDF text comes from a child process, pdftotext(1) from Debian's
 *     poppler-utils, run without a shell, with a clean environment, no
 *     inherited file descriptors, and resource limits (CPU seconds from
 *     the deadline, address space from the memory budget, no files, no
 *     core dumps).  The child is killed (SIGKILL) and reaped when the
 *     deadline passes or the output cap is exceeded, so a hostile PDF can
 *     cost at most one child process for at most the deadline.  The
 *     child is started without an exit signal (no SIGCHLD), so a host that
 *     reaps every child in a SIGCHLD handler (nginx does) cannot steal it;
 *     writes to it never raise SIGPIPE.  No signal disposition or mask of
 *     the calling process is changed.
 *   - DOCX files are read in memory with libzip and libxml2: only the
 *     part word/document.xml is inflated, after checks against zip bombs
 *     (number of entries, declared sizes, compression ratio); the XML is
 *     parsed without network access, without loading DTDs and without
 *     substituting entities.
 *   - TXT must be valid UTF-8; a byte order mark is dropped.
 *
 * The text is normalised the same way for every type: line ends become
 * LF, blanks are collapsed to one, lines are trimmed, a form feed (page
 * break) becomes a paragraph break, at most one blank line separates
 * paragraphs, and control characters other than LF and TAB are dropped.
 * DOCX paragraphs and headings are separated by a blank line, list items
 * start with "- ", table rows become one line each with cells joined by
 * " | ".
 *
 * The functions below block (a PDF can take seconds): a host running an
 * event loop must call avc_extract() from thread-pool work (avc_offload()
 * in avatarcore/loop.h), never on the loop.  They use no global state and
 * are thread-safe: several extractions may run at once.
 */
#ifndef AVATARCORE_EXTRACT_H
#define AVATARCORE_EXTRACT_H

#include <avatarcore/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AVC_DOC_UNKNOWN = 0,
    AVC_DOC_TXT,
    AVC_DOC_PDF,
    AVC_DOC_DOCX
} avc_doc_type_t;

/* Limits used when avc_extract() is passed 0 for them. */
#define AVC_EXTRACT_MAX_OUTPUT   (32u * 1024 * 1024)    /* bytes of text */
#define AVC_EXTRACT_TIMEOUT_MS   60000u
#define AVC_EXTRACT_MAX_MEMORY   (512u * 1024 * 1024)   /* bytes */

/*
 * The type of a document judged by its content only:
 *
 *   AVC_DOC_PDF   "%PDF-" at the start, or within the first 1024 bytes of
 *                 a file that is not text and ends with "%%EOF" (readers
 *                 allow junk before the header);
 *   AVC_DOC_DOCX  a zip archive whose central directory names
 *                 word/document.xml;
 *   AVC_DOC_TXT   valid UTF-8 (a byte order mark allowed) without NUL
 *                 bytes and with at most 1% other control characters;
 *                 an empty file counts as text (and then has no text);
 *   AVC_DOC_UNKNOWN anything else (images, UTF-16, other archives, ...).
 *
 * Cheap: reads at most the zip's central directory and, for text, every
 * byte once.  Thread-safe.
 */
AVC_API avc_doc_type_t avc_doc_sniff(const void *data, size_t len);

/*
 * The type a file name claims: ".txt", ".pdf" or ".docx" at its end, in
 * any letter case; AVC_DOC_UNKNOWN otherwise (also for NULL).  Compare it
 * with avc_doc_sniff() to refuse a file whose name and content disagree.
 */
AVC_API avc_doc_type_t avc_doc_type_by_name(const char *filename);

/* "txt", "pdf", "docx" or "unknown"; static. */
AVC_API const char *avc_doc_type_name(avc_doc_type_t type);

/*
 * Extract the text of a document of the given type (normally the one
 * avc_doc_sniff() found).
 *
 *   max_output   cap on the text in bytes, 0 for AVC_EXTRACT_MAX_OUTPUT;
 *   timeout_ms   wall-clock deadline, 0 for AVC_EXTRACT_TIMEOUT_MS;
 *   max_memory   memory budget in bytes, 0 for AVC_EXTRACT_MAX_MEMORY:
 *                the address-space limit of the PDF child, and a quarter
 *                of it bounds the inflated XML of a DOCX.
 *
 * On AVC_OK, *text is a new NUL-terminated UTF-8 string of *text_len
 * bytes (text_len may be NULL), never empty; free() it.  *why is NULL.
 *
 * On failure *text is NULL and *why (when why is not NULL) a new,
 * human-readable sentence for the user, e.g. "the PDF file is damaged or
 * incomplete", that names no path or internal detail; free() it.  It may
 * be NULL when even that could not be allocated.  Errors:
 *
 *   AVC_EPARSE     unreadable, corrupt, truncated (a PDF must end with
 *                  "%%EOF" within its last 1024 bytes), encrypted, or not
 *                  valid UTF-8;
 *   AVC_ETOOBIG    the text exceeds max_output, a zip-bomb limit was hit,
 *                  or the PDF needed more than max_memory;
 *   AVC_ETIMEDOUT  the deadline passed;
 *   AVC_EINVAL     the document contains no text, or bad arguments
 *                  (unknown type, NULL pointers);
 *   AVC_ESYS       PDF support is unavailable (pdftotext not installed) or
 *                  a system call failed;
 *   AVC_ENOMEM     out of memory.
 *
 * Blocking; see the top of this header.  Thread-safe.
 */
AVC_API int avc_extract(const void *data, size_t len, avc_doc_type_t type,
                        size_t max_output, unsigned timeout_ms,
                        size_t max_memory, char **text, size_t *text_len,
                        char **why);

/*
 * A title for a document: its first non-blank line, trimmed, cut to at
 * most 200 characters (code points, never inside a UTF-8 sequence).  A new
 * string to free(), or NULL when the text has no non-blank line (or out of
 * memory).  Thread-safe.
 */
AVC_API char *avc_doc_title(const char *text, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_EXTRACT_H */
