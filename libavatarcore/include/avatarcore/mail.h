/*
 * avatarcore/mail.h - outgoing mail: a mailer behind a provider interface,
 * templates, and a durable queue on PostgreSQL.
 *
 * Providers (configuration key mail.provider):
 *
 *   outbox   (default) every mail becomes an RFC 5322 .eml file in
 *            mail.dir, written atomically on the thread pool; for
 *            development, tests and machines without a mail service;
 *   mailgun  POST {mail.base_url}/v3/{mail.domain}/messages with HTTP
 *            Basic auth "api:{mail.key}";
 *   smtp     SMTP through libcurl to mail.url (smtp://host:port with
 *            STARTTLS when offered, or smtps://), with mail.user and
 *            mail.password when set.
 *
 * Configuration keys read by avc_mailer_new():
 *
 *   mail.provider    outbox | mailgun | smtp (default outbox)
 *   mail.dir         outbox: the directory (created when missing); unset,
 *                    every send fails with AVC_ESTATE (mails wait in the
 *                    queue until mail is configured)
 *   mail.domain      mailgun: the sending domain (required)
 *   mail.base_url    mailgun: default https://api.mailgun.net; the EU
 *                    region is https://api.eu.mailgun.net
 *   mail.key         mailgun: the API key itself (already loaded from its
 *                    secret source; required)
 *   mail.url         smtp: smtp://host[:port] or smtps://host[:port]
 *   mail.user        smtp: user name (optional)
 *   mail.password    smtp: password (optional)
 *   mail.starttls    smtp:// only: try (default: STARTTLS when the server
 *                    offers it), require, or off
 *   mail.from        default "Avatar Adam <no-reply@localhost>"
 *   mail.recipients  comma-separated addresses receiving reports
 *   mail.templates   a directory whose NAME.subject, NAME.txt and
 *                    NAME.html files replace the built-in templates
 *                    (optional; read once, by avc_mailer_new)
 *   mail.timeout     milliseconds one send may take, provider retries
 *                    included (default 30000, at most 120000)
 *   mail.attempts    mailgun: HTTP attempts per send on connect failures,
 *                    429 and 5xx (default 3)
 *   mail.backoff     mailgun: milliseconds before the first retry,
 *                    doubling (default 1000)
 *
 * Secrets (mail.key, mail.password) never appear in logs or errors.
 *
 * Thread safety: a mailer and a queue belong to their loop's thread.
 */
#ifndef AVATARCORE_MAIL_H
#define AVATARCORE_MAIL_H

#include <avatarcore/core.h>
#include <avatarcore/loop.h>
#include <avatarcore/http.h>
#include <avatarcore/db.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avc_mailer_s avc_mailer_t;
typedef struct avc_mail_queue_s avc_mail_queue_t;

/*
 * The end of one send: err is AVC_OK (the provider accepted the mail, or
 * the .eml file is durably on disk), AVC_EUPSTREAM (the provider refused
 * it: a non-2xx Mailgun status, an SMTP 4xx/5xx reply), AVC_EAUTH (SMTP
 * login refused), AVC_ECONNECT, AVC_ETIMEDOUT, AVC_EHTTP, AVC_ESYS (the
 * outbox file could not be written) or AVC_ENOMEM.
 */
typedef void (*avc_mail_cb)(int err, void *data);

/*
 * A mailer on loop.  http (borrowed, must outlive the mailer) is needed
 * by mailgun and smtp and may be NULL for outbox.  cfg is read here and
 * not kept.  Returns NULL with *err set: AVC_EINVAL for a bad or missing
 * setting (logged with the key, never with a secret's value), AVC_ESYS
 * when mail.templates cannot be read, AVC_ENOMEM.
 */
AVC_API avc_mailer_t *avc_mailer_new(avc_loop_t *loop, avc_http_t *http,
                                     const avc_config_t *cfg, int *err);

/*
 * Free the mailer.  Sends still running are abandoned: their requests
 * are cancelled and their callbacks not called (an outbox file being
 * written is finished by the thread pool).  NULL is a no-op.
 */
AVC_API void avc_mailer_free(avc_mailer_t *m);

/* "outbox", "mailgun" or "smtp" (borrowed). */
AVC_API const char *avc_mailer_provider(const avc_mailer_t *m);

/* mail.recipients as configured, "" when unset (borrowed). */
AVC_API const char *avc_mailer_recipients(const avc_mailer_t *m);

/*
 * Send one mail through the provider, one attempt (Mailgun's HTTP
 * retries on 429/5xx and connect failures included; retrying later is
 * the queue's job).  to: one address or a comma-separated list of bare
 * addresses (user@example.com).  subject: one line (CR and LF are turned
 * into spaces); text and html: the bodies in UTF-8, either may be NULL
 * but not both.  Everything is copied.  cb runs later on the loop, never
 * from within this call; it may free the mailer.  Returns AVC_OK, or
 * AVC_EINVAL (bad address, invalid UTF-8, no body), AVC_ETOOBIG (over
 * 16 MiB in all), AVC_ESTATE (outbox without mail.dir) or AVC_ENOMEM,
 * and then cb is not called.
 */
AVC_API int avc_mailer_send(avc_mailer_t *m, const char *to,
                            const char *subject, const char *text,
                            const char *html, avc_mail_cb cb, void *data);

/*
 * Templates, from m's mail.templates directory or built in (m may be
 * NULL: built in only).  name is one of "invite", "password_reset",
 * "report"; vars is a NULL-terminated list of name, value pairs.  Each
 * {{name}} in the template is replaced by its value ("" when not given):
 * HTML-escaped in the HTML part, with line breaks and control characters
 * turned into spaces in the subject, as is in the text part.  Values are
 * never expanded themselves.
 *
 *   invite          email, dealership_name, role, link, expires_at
 *   password_reset  email, link, expires_at
 *   report          kind, reporter_email, dealership_name, user_input,
 *                   avatar_response, user_note, conversation, session_id,
 *                   mode, report_id
 *
 * On AVC_OK *subject, *text and *html are new strings (free() them).
 * AVC_ENOTFOUND for an unknown name, AVC_EINVAL, AVC_ENOMEM.
 */
AVC_API int avc_mailer_compose(const avc_mailer_t *m, const char *name,
                               const char *const *vars, char **subject,
                               char **text, char **html);

/*
 * The durable queue (table mail_outbox).  To make a mail part of the
 * transaction that causes it (an invite, a password reset, a report),
 * run avc_mail_enqueue_sql() in that transaction with AVC_MAIL_NPARAMS
 * parameters in this order, then kick the queue after the commit:
 *
 *   $1 AVC_MAIL_P_TO       comma-separated recipient addresses
 *   $2 AVC_MAIL_P_SUBJECT  the subject
 *   $3 AVC_MAIL_P_TEXT     the text body
 *   $4 AVC_MAIL_P_HTML     the HTML body, or NULL
 *   $5 AVC_MAIL_P_KIND     'invite', 'password_reset', 'report' ...
 *
 * The statement returns one row with the mail's id.
 */
enum {
    AVC_MAIL_P_TO = 0,
    AVC_MAIL_P_SUBJECT,
    AVC_MAIL_P_TEXT,
    AVC_MAIL_P_HTML,
    AVC_MAIL_P_KIND,
    AVC_MAIL_NPARAMS
};

/* The INSERT statement (static). */
AVC_API const char *avc_mail_enqueue_sql(void);

/*
 * A sender for the queue: every poll_ms (0 means 10000) and whenever
 * kicked, it claims the mails that are due (SELECT ... FOR UPDATE SKIP
 * LOCKED, then a lease: next_attempt_at moves 5 minutes ahead and
 * attempts is incremented), so that several workers and machines sharing
 * the table never send one mail at the same time, and sends them.  A
 * mail sent gets sent_at; a failure keeps last_error and sets
 * next_attempt_at 30 s later, doubling per attempt up to 1 hour; after
 * 10 attempts the mail is given up (logged; the row stays with its
 * last_error).  A worker that dies while sending lets the lease expire,
 * so the mail goes out later (at least once, never lost).
 *
 * db and m are borrowed and must outlive the queue.  The poll timer does
 * not keep a loop alive.  Returns NULL when out of memory.
 */
AVC_API avc_mail_queue_t *avc_mail_queue_new(avc_loop_t *loop, avc_db_t *db,
                                             avc_mailer_t *m,
                                             unsigned poll_ms);

/* Look for due mails now (on the next loop iteration). */
AVC_API void avc_mail_queue_kick(avc_mail_queue_t *q);

/*
 * Stop: the running claim and status queries are cancelled, sends in
 * flight abandoned (their leases expire and they are retried later).
 * NULL is a no-op.
 */
AVC_API void avc_mail_queue_free(avc_mail_queue_t *q);

/* Counters for /metrics and tests (append-only). */
typedef enum {
    AVC_MAIL_Q_SENT = 0,        /* mails sent and marked */
    AVC_MAIL_Q_FAILED,          /* failed attempts */
    AVC_MAIL_Q_GIVEN_UP,        /* mails given up after the last attempt */
    AVC_MAIL_Q_CLAIMS           /* claim queries run */
} avc_mail_queue_stat_t;

AVC_API unsigned long long avc_mail_queue_stat(const avc_mail_queue_t *q,
                                               avc_mail_queue_stat_t which);

#ifdef __cplusplus
}
#endif

#endif /* AVATARCORE_MAIL_H */
