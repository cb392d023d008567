/*
 * Declarations shared by the files of src/mail (avc__ prefix); not
 * installed.
 */
#ifndef AVC_MAIL_INTERNAL_H
#define AVC_MAIL_INTERNAL_H

#include "internal.h"

#include <avatarcore/mail.h>

#include <time.h>

/* rendering modes of avc__mail_render */
#define AVC__MAIL_TEXT  0       /* values inserted as they are */
#define AVC__MAIL_HTML  1       /* values HTML-escaped: & < > " ' */
#define AVC__MAIL_LINE  2       /* one line: CR, LF and controls become
                                   spaces, in values and in the result */

/*
 * Replace each {{name}} (spaces allowed inside the braces; name of
 * [A-Za-z0-9_]) in tmpl by the value of name in vars, a NULL-terminated
 * list of name, value pairs; "" for a name not given.  Anything else,
 * a lone "{{" included, is copied.  mode is AVC__MAIL_TEXT, _HTML or
 * _LINE (any other non-zero mode means _HTML).  Returns a new string,
 * or NULL when out of memory.
 */
char *avc__mail_render(const char *tmpl, const char *const *vars, int mode);

/*
 * The built-in templates (templates.c: the files of
 * libavatarcore/templates/mail/, embedded by libavatarcore/embed.sh):
 * part is "subject", "txt" or "html".  NULL when there is no such one.
 */
const char *avc__mail_template_builtin(const char *name, const char *part);

/* The names of the built-in templates, NULL-terminated. */
extern const char *const avc__mail_template_names[];


/*
 * Is s one bare address (local@domain, printable ASCII, none of
 * whitespace ( ) < > , ; : " [ ] \ and one '@' with text on each side)?
 */
int avc__mail_addr_valid(const char *s, size_t n);

/*
 * Split a comma-separated address list: a new NULL-terminated array of
 * new strings, spaces trimmed, empty entries skipped (free it with
 * avc__mail_list_free).  NULL with *err AVC_EINVAL when an entry is not
 * a valid address or none is given, AVC_ENOMEM.
 */
char **avc__mail_split_list(const char *list, int *err);
void avc__mail_list_free(char **list);

/*
 * Parse a From value, "Display Name <user@example.com>" or a bare
 * address: *addr gets a new string with the address, *name a new string
 * with the display name ("" when none).  AVC_EINVAL, AVC_ENOMEM.
 */
int avc__mail_parse_from(const char *from, char **name, char **addr);

/*
 * Build an RFC 5322 message: From, To, Subject (RFC 2047 B-encoded when
 * not plain ASCII or too long for one line), Date (from now), Message-ID
 * (random, at the From domain), MIME-Version, Auto-Submitted, and a
 * multipart/alternative body with quoted-printable UTF-8 text/plain and
 * text/html parts (a single part when one body is NULL).  Lines end in
 * CRLF.  rcpts is NULL-terminated.  Returns a new string of *len bytes or
 * NULL when out of memory.
 */
char *avc__mail_message(const char *from_name, const char *from_addr,
                        char *const *rcpts, const char *subject,
                        const char *text, const char *html, time_t now,
                        size_t *len);

/* Quoted-printable of n bytes of s, CRLF line ends, appended to b. */
int avc__mail_qp(avc__buf_t *b, const char *s, size_t n);

/* An RFC 2047 "encoded-word" form of an unstructured header value (the
 * header name is name_len characters long, for the first fold). */
int avc__mail_header_encode(avc__buf_t *b, const char *s, size_t name_len);

/* The Mailgun endpoint for base (trailing slashes ignored) and domain:
 * a new string, or NULL when out of memory. */
char *avc__mailgun_url(const char *base, const char *domain);

/* SMTP (smtp.c) */

typedef struct {
    const char *url;            /* smtp:// or smtps:// */
    const char *origin;         /* scheme://host:port, for logs */
    const char *user;           /* NULL: no AUTH */
    const char *password;
    int starttls;               /* 0 off, 1 try, 2 require */
    unsigned timeout_ms;
} avc__smtp_conf_t;

/*
 * A request (not started) that sends msg (taken over: freed with the
 * request) from from_addr to rcpts (copied).  Set callbacks and start it
 * like any request.  NULL with *err set on failure (msg freed).
 */
avc_http_req_t *avc__smtp_request(avc_http_t *http,
                                  const avc__smtp_conf_t *conf,
                                  const char *from_addr, char *const *rcpts,
                                  char *msg, size_t len, int *err);

/*
 * The outcome of a finished SMTP request as a mail error code, with a
 * loggable one-line detail (the server's code, curl's message) in
 * detail[n].
 */
int avc__smtp_result(avc_http_req_t *req, int err, char *detail, size_t n);

/*
 * Checks a smtp(s) URL: AVC_OK and a new "scheme://host:port" (safe to
 * log: no credentials) in *origin, or AVC_EINVAL.
 */
int avc__smtp_origin(const char *url, char **origin);

/* Sends with a detailed outcome and a cancellable handle (queue.c). */

typedef struct avc__mail_op_s avc__mail_op_t;

/* detail: one line saying what failed ("" on success), borrowed. */
typedef void (*avc__mail_done_cb)(int err, const char *detail, void *data);

/*
 * As avc_mailer_send; on AVC_OK *op (when opp is not NULL) is a handle
 * valid until cb is called or the op is cancelled.
 */
int avc__mailer_submit(avc_mailer_t *m, const char *to, const char *subject,
                       const char *text, const char *html,
                       avc__mail_done_cb cb, void *data,
                       avc__mail_op_t **opp);

/* Abandon a send: cb is not called.  A no-op from within its own cb. */
void avc__mail_op_cancel(avc__mail_op_t *op);

/* Tests: the queue's batch size (default 16) and lease (300 s). */
void avc__mail_queue_set_batch(avc_mail_queue_t *q, unsigned batch,
                               unsigned lease_s);

#endif /* AVC_MAIL_INTERNAL_H */
