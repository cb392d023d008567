/*
 * Internal declarations shared between the library's subsystems (avc__
 * prefix).  Not installed; never included by hosts.
 */
#ifndef AVC_INTERNAL_H
#define AVC_INTERNAL_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>

#include <stddef.h>
#include <stdint.h>

#define avc__unused(x) ((void) (x))
#define avc__countof(a) (sizeof(a) / sizeof((a)[0]))

/*
 * An intrusive list of running operations with their count (the provider
 * clients keep theirs so that freeing a client cancels them).  An op
 * embeds an avc__link_t as its first member, so a link is its op.
 */
typedef struct avc__link_s {
    struct avc__link_s *prev;
    struct avc__link_s *next;
} avc__link_t;

typedef struct {
    avc__link_t *head;
    size_t n;
} avc__list_t;

static inline void
avc__list_add(avc__list_t *l, avc__link_t *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head) {
        l->head->prev = e;
    }
    l->head = e;
    l->n++;
}

static inline void
avc__list_del(avc__list_t *l, avc__link_t *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        l->head = e->next;
    }
    if (e->next) {
        e->next->prev = e->prev;
    }
    e->prev = e->next = NULL;
    l->n--;
}


/* ms left before a deadline for a timeout: 0 (none) stays 0, else >= 1 */
static inline unsigned
avc__ms_left(uint64_t deadline, uint64_t now)
{
    if (deadline == 0) {
        return 0;
    }
    return deadline > now + 1 ? (unsigned) (deadline - now) : 1;
}

/* Is a loop the built-in one (for tests and diagnostics)? */
int avc__loop_is_builtin(const avc_loop_t *loop);

/* A growable byte buffer; data is always NUL-terminated. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} avc__buf_t;

void avc__buf_init(avc__buf_t *b);
void avc__buf_free(avc__buf_t *b);
void avc__buf_reset(avc__buf_t *b);
int avc__buf_append(avc__buf_t *b, const void *p, size_t n);
int avc__buf_appends(avc__buf_t *b, const char *s);
int avc__buf_printf(avc__buf_t *b, const char *fmt, ...) AVC_PRINTF(2, 3);
/* Hand the storage to the caller (malloc'd, NUL-terminated), reset b. */
char *avc__buf_steal(avc__buf_t *b, size_t *len);

/* base64 of n bytes appended to b (util/base64.c): the standard alphabet
 * with padding, or with url the URL-safe one without */
/* The HTML-escaped form of n bytes of s appended to b. */
int avc__buf_html(avc__buf_t *b, const char *s, size_t n);
int avc__buf_base64(avc__buf_t *b, const void *p, size_t n, int url);
/* Base64 in either alphabet, padding optional, CR/LF skipped: a new
 * buffer of *out bytes, or NULL (*err AVC_EPARSE, AVC_ENOMEM). */
unsigned char *avc__base64_decode(const char *s, size_t n, size_t *out,
                                  int *err);

/*
 * A provider's endpoint: base without its trailing slashes, then path
 * (may be ""); and the "Bearer <key>" value of an Authorization header.
 * Both malloc'd, NULL when out of memory.
 */
char *avc__url_join(const char *base, const char *path);
char *avc__auth_bearer(const char *key);
/* A secret's memory wiped, then freed; NULL is a no-op. */
void avc__free_secret(char *s);

/* Is [p, p+n) valid UTF-8 (no overlongs, no surrogates)? */
int avc__utf8_valid(const char *p, size_t n);
/* The byte length of the first max characters of valid UTF-8 text s. */
size_t avc__utf8_prefix(const char *s, size_t max);

#endif /* AVC_INTERNAL_H */
