/*
 * Mails caused by an operation are queued in the operation's own
 * transaction (table mail_outbox), so that the change and its mail are
 * committed together and a mail provider that is down never undoes or
 * delays the change; the app's queue sends them and retries.
 */
#include "app_int.h"

#include <avatarcore/mail.h>

#include <stdlib.h>
#include <string.h>

int
avc__mail_enqueue(avc_call_t *call, const char *kind, const char *to,
    const char *const *vars, avc__q_cb cb)
{
    avc_app_t *app = call->app;
    char *subject = NULL, *text = NULL, *html = NULL;
    const char *p[AVC_MAIL_NPARAMS];
    int rc;

    rc = avc_mailer_compose(app->mailer, kind, vars, &subject, &text, &html);
    if (rc != AVC_OK) {
        avc_log(AVC_LOG_ERR, "mail %s: cannot compose: %s", kind,
                avc_strerror(rc));
        return rc;
    }
    p[AVC_MAIL_P_TO] = to;
    p[AVC_MAIL_P_SUBJECT] = subject;
    p[AVC_MAIL_P_TEXT] = text;
    p[AVC_MAIL_P_HTML] = html;
    p[AVC_MAIL_P_KIND] = kind;
    rc = avc__txq(call, avc_mail_enqueue_sql(), AVC_MAIL_NPARAMS, p, cb);
    free(subject);
    free(text);
    free(html);
    return rc;
}

void
avc__mail_kick(avc_app_t *app)
{
    avc_mail_queue_kick(app->mailq);
}

/* A link into the web app: the configured public URL, never Host. */
char *
avc__app_link(avc_app_t *app, const char *path, const char *token)
{
    avc__buf_t b;
    const char *base = app->public_url;
    size_t n = strlen(base);

    avc__buf_init(&b);
    while (n > 0 && base[n - 1] == '/') {
        n--;
    }
    if (avc__buf_append(&b, base, n) != AVC_OK
        || avc__buf_printf(&b, "%s?token=%s", path, token) != AVC_OK)
    {
        avc__buf_free(&b);
        return NULL;
    }
    return avc__buf_steal(&b, NULL);
}
