/*
 * The mailer: configuration, the three providers (outbox, mailgun,
 * smtp), and templates.
 *
 * A send is an op: validated and turned into the provider's form on the
 * loop, then either handed to the thread pool (outbox: the file write
 * and fsync may block) or to the HTTP client (mailgun, smtp).  Ops are
 * listed in the mailer so that freeing it abandons them; an op whose
 * file write is running cannot be stopped, so it is detached instead and
 * freed by its completion.
 */
#include "mail_internal.h"

#include "../http/http_internal.h"

#include <avatarcore/multipart.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define AVC_MAIL_FROM_DEFAULT   "Avatar Adam <no-reply@localhost>"
#define AVC_MAILGUN_BASE        "https://api.mailgun.net"
#define AVC_MAIL_BODY_MAX       (16u * 1024 * 1024)
#define AVC_MAIL_TEMPLATE_MAX   (256 * 1024)
#define AVC_MAIL_DETAIL_MAX     256
/* the part of a provider's error body worth a log line */
#define AVC_MAIL_SNIPPET_MAX    200

enum {
    AVC_MAIL_OUTBOX = 0,
    AVC_MAIL_MAILGUN,
    AVC_MAIL_SMTP
};

static const char *const avc_mail_providers[] = { "outbox", "mailgun",
                                                  "smtp" };
static const char *const avc_mail_parts[] = { "subject", "txt", "html" };

#define AVC_MAIL_NPARTS  3
#define AVC_MAIL_NTPL    16

struct avc_mailer_s {
    avc_loop_t *loop;
    avc_http_t *http;
    int provider;

    char *from;                 /* as configured, for Mailgun's field */
    char *from_name;
    char *from_addr;
    char *recipients;

    char *dir;                  /* outbox */

    char *mailgun_url;          /* mailgun */
    char *auth;                 /* "Basic ...": a secret */

    avc__smtp_conf_t smtp;      /* smtp; its strings are owned here */

    unsigned timeout_ms;
    unsigned attempts;
    unsigned backoff_ms;

    char *tpl[AVC_MAIL_NTPL][AVC_MAIL_NPARTS];  /* overrides, or NULL */

    avc__mail_op_t *ops;
};

struct avc__mail_op_s {
    avc__mail_op_t *prev;
    avc__mail_op_t *next;
    avc_mailer_t *m;            /* NULL once abandoned */
    avc_mail_cb cb;
    avc__mail_done_cb dcb;
    void *data;
    avc_http_req_t *req;        /* mailgun, smtp: while running */
    int in_cb;
    int offloaded;

    /* outbox: touched only by the pool thread while offloaded */
    char *dir;
    char *msg;
    size_t len;
    char name[64];
    const char *failed_call;
    int sys_errno;
};

static char *
avc_mail_strdup(const char *s, int *rc)
{
    char *d;

    if (s == NULL) {
        return NULL;
    }
    d = strdup(s);
    if (d == NULL) {
        *rc = AVC_ENOMEM;
    }
    return d;
}

/* configuration */

static int
avc_mail_bad(const char *key, const char *why)
{
    avc_log(AVC_LOG_ERR, "mail: %s: %s", key, why);
    return AVC_EINVAL;
}

static int
avc_mail_domain_valid(const char *s)
{
    const char *p;

    if (*s == '\0' || strlen(s) > 253) {
        return 0;
    }
    for (p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
        {
            return 0;
        }
    }
    return 1;
}

static int
avc_mail_read_file(const char *path, char **out)
{
    struct stat st;
    ssize_t n;
    size_t got = 0;
    char *s;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? AVC_ENOTFOUND : AVC_ESYS;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || st.st_size > AVC_MAIL_TEMPLATE_MAX)
    {
        close(fd);
        return AVC_ETOOBIG;
    }
    s = malloc((size_t) st.st_size + 1);
    if (s == NULL) {
        close(fd);
        return AVC_ENOMEM;
    }
    while (got < (size_t) st.st_size) {
        n = read(fd, s + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
    }
    close(fd);
    s[got] = '\0';
    if (!avc__utf8_valid(s, got) || strlen(s) != got) {
        free(s);
        return AVC_EPARSE;
    }
    *out = s;
    return AVC_OK;
}

/*
 * Templates from mail.templates: read once, at creation (configuration
 * time, like nginx reading its files), never on a send.
 */
static int
avc_mail_load_templates(avc_mailer_t *m, const char *dir)
{
    char path[4096];
    size_t i, j;
    int rc;

    for (i = 0; avc__mail_template_names[i] && i < AVC_MAIL_NTPL; i++) {
        for (j = 0; j < AVC_MAIL_NPARTS; j++) {
            snprintf(path, sizeof(path), "%s/%s.%s", dir,
                     avc__mail_template_names[i], avc_mail_parts[j]);
            rc = avc_mail_read_file(path, &m->tpl[i][j]);
            if (rc == AVC_ENOTFOUND) {
                continue;
            }
            if (rc == AVC_ENOMEM) {
                return rc;
            }
            if (rc != AVC_OK) {
                avc_log(AVC_LOG_ERR, "mail: mail.templates: cannot use "
                        "\"%s\": %s", path, rc == AVC_EPARSE
                        ? "not UTF-8 text" : rc == AVC_ETOOBIG
                        ? "not a file of at most 256 KiB"
                        : strerror(errno));
                return rc == AVC_EPARSE ? AVC_EINVAL : AVC_ESYS;
            }
        }
    }
    return AVC_OK;
}

static int
avc_mail_configure_mailgun(avc_mailer_t *m, const avc_config_t *cfg)
{
    const char *domain, *key, *base;
    avc__buf_t b;
    int rc = AVC_OK;

    domain = avc_config_get(cfg, "mail.domain", NULL);
    key = avc_config_get(cfg, "mail.key", NULL);
    base = avc_config_get(cfg, "mail.base_url", AVC_MAILGUN_BASE);
    if (domain == NULL || !avc_mail_domain_valid(domain)) {
        return avc_mail_bad("mail.domain", domain ? "not a domain name"
                                                  : "required by mailgun");
    }
    if (key == NULL || *key == '\0') {
        return avc_mail_bad("mail.key", "required by mailgun");
    }
    if (strpbrk(key, "\r\n") != NULL) {
        return avc_mail_bad("mail.key", "contains a line break");
    }
    if (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)
    {
        return avc_mail_bad("mail.base_url", "not an http(s) URL");
    }
    m->mailgun_url = avc__mailgun_url(base, domain);
    if (m->mailgun_url == NULL) {
        return AVC_ENOMEM;
    }
    avc__buf_init(&b);
    rc |= avc__buf_appends(&b, "api:");
    rc |= avc__buf_appends(&b, key);
    if (rc == AVC_OK) {
        avc__buf_t h;

        avc__buf_init(&h);
        rc |= avc__buf_appends(&h, "Basic ");
        rc |= avc__buf_base64(&h, b.data, b.len, 0);
        m->auth = h.data;
    }
    explicit_bzero(b.data, b.len);
    avc__buf_free(&b);
    return rc == AVC_OK ? AVC_OK : AVC_ENOMEM;
}

static int
avc_mail_configure_smtp(avc_mailer_t *m, const avc_config_t *cfg)
{
    const char *url, *tls;
    char *origin;
    int rc = AVC_OK;

    url = avc_config_get(cfg, "mail.url", NULL);
    if (url == NULL) {
        return avc_mail_bad("mail.url", "required by smtp");
    }
    rc = avc__smtp_origin(url, &origin);
    if (rc == AVC_ENOMEM) {
        return rc;
    }
    if (rc != AVC_OK) {
        /* the value is not logged: it might carry a password */
        return avc_mail_bad("mail.url", "not an smtp:// or smtps:// URL "
                            "without credentials");
    }
    m->smtp.origin = origin;
    tls = avc_config_get(cfg, "mail.starttls", "try");
    if (strcmp(tls, "off") == 0) {
        m->smtp.starttls = 0;
    } else if (strcmp(tls, "try") == 0) {
        m->smtp.starttls = 1;
    } else if (strcmp(tls, "require") == 0) {
        m->smtp.starttls = 2;
    } else {
        return avc_mail_bad("mail.starttls", "not one of try, require, off");
    }
    m->smtp.url = avc_mail_strdup(url, &rc);
    m->smtp.user = avc_mail_strdup(avc_config_get(cfg, "mail.user", NULL),
                                   &rc);
    m->smtp.password = avc_mail_strdup(avc_config_get(cfg, "mail.password",
                                                      NULL), &rc);
    m->smtp.timeout_ms = m->timeout_ms;
    return rc;
}

static int
avc_mail_configure(avc_mailer_t *m, const avc_config_t *cfg)
{
    const char *prov, *from, *rcpts, *dir, *tpl;
    long long v;
    char **list;
    size_t i;
    int rc;

    prov = avc_config_get(cfg, "mail.provider", "outbox");
    for (i = 0; i < avc__countof(avc_mail_providers); i++) {
        if (strcmp(prov, avc_mail_providers[i]) == 0) {
            break;
        }
    }
    if (i == avc__countof(avc_mail_providers)) {
        return avc_mail_bad("mail.provider", "not one of outbox, mailgun, "
                            "smtp");
    }
    m->provider = (int) i;

    from = avc_config_get(cfg, "mail.from", AVC_MAIL_FROM_DEFAULT);
    rc = avc__mail_parse_from(from, &m->from_name, &m->from_addr);
    if (rc == AVC_EINVAL) {
        return avc_mail_bad("mail.from", "not \"Name <user@domain>\" or "
                            "\"user@domain\"");
    }
    if (rc != AVC_OK) {
        return rc;
    }
    m->from = strdup(from);
    rcpts = avc_config_get(cfg, "mail.recipients", "");
    m->recipients = strdup(rcpts);
    if (m->from == NULL || m->recipients == NULL) {
        return AVC_ENOMEM;
    }
    if (*rcpts) {
        list = avc__mail_split_list(rcpts, &rc);
        if (list == NULL) {
            return rc == AVC_ENOMEM ? rc : avc_mail_bad("mail.recipients",
                                     "not a comma-separated address list");
        }
        avc__mail_list_free(list);
    }

    if (avc_config_get_int(cfg, "mail.timeout", 30000, 100, 120000, &v)
        != AVC_OK)
    {
        return avc_mail_bad("mail.timeout", "not milliseconds in "
                            "100..120000");
    }
    m->timeout_ms = (unsigned) v;
    if (avc_config_get_int(cfg, "mail.attempts", 3, 1, 10, &v) != AVC_OK) {
        return avc_mail_bad("mail.attempts", "not a number in 1..10");
    }
    m->attempts = (unsigned) v;
    if (avc_config_get_int(cfg, "mail.backoff", 1000, 0, 60000, &v)
        != AVC_OK)
    {
        return avc_mail_bad("mail.backoff", "not milliseconds in 0..60000");
    }
    m->backoff_ms = (unsigned) v;

    tpl = avc_config_get(cfg, "mail.templates", NULL);
    if (tpl != NULL) {
        rc = avc_mail_load_templates(m, tpl);
        if (rc != AVC_OK) {
            return rc;
        }
    }

    switch (m->provider) {
    case AVC_MAIL_OUTBOX:
        dir = avc_config_get(cfg, "mail.dir", NULL);
        if (dir == NULL || *dir == '\0') {
            /* no guessed directory: mails would land where nobody looks,
             * or somewhere others can reach; they wait in the queue */
            avc_log(AVC_LOG_NOTICE, "mail: no mail.dir for the outbox: "
                    "mail is not sent until it is configured");
            return AVC_OK;
        }
        m->dir = strdup(dir);
        return m->dir ? AVC_OK : AVC_ENOMEM;
    case AVC_MAIL_MAILGUN:
        if (m->http == NULL) {
            return avc_mail_bad("mail.provider", "mailgun needs an HTTP "
                                "client");
        }
        return avc_mail_configure_mailgun(m, cfg);
    default:
        if (m->http == NULL) {
            return avc_mail_bad("mail.provider", "smtp needs an HTTP "
                                "client");
        }
        return avc_mail_configure_smtp(m, cfg);
    }
}

AVC_API avc_mailer_t *
avc_mailer_new(avc_loop_t *loop, avc_http_t *http, const avc_config_t *cfg,
    int *err)
{
    avc_mailer_t *m;
    int rc;

    if (loop == NULL) {
        *err = AVC_EINVAL;
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    m->loop = loop;
    m->http = http;
    rc = avc_mail_configure(m, cfg);
    if (rc != AVC_OK) {
        avc_mailer_free(m);
        *err = rc;
        return NULL;
    }
    *err = AVC_OK;
    return m;
}

static void avc_mail_op_free(avc__mail_op_t *op);
static void avc_mail_op_unlink(avc__mail_op_t *op);

AVC_API void
avc_mailer_free(avc_mailer_t *m)
{
    avc__mail_op_t *op;
    size_t i, j;

    if (m == NULL) {
        return;
    }
    while ((op = m->ops) != NULL) {
        avc__mail_op_cancel(op);
    }
    for (i = 0; i < AVC_MAIL_NTPL; i++) {
        for (j = 0; j < AVC_MAIL_NPARTS; j++) {
            free(m->tpl[i][j]);
        }
    }
    free(m->from);
    free(m->from_name);
    free(m->from_addr);
    free(m->recipients);
    free(m->dir);
    free(m->mailgun_url);
    avc__free_secret(m->auth);
    free((char *) m->smtp.url);
    free((char *) m->smtp.origin);
    free((char *) m->smtp.user);
    avc__free_secret((char *) m->smtp.password);
    free(m);
}

AVC_API const char *
avc_mailer_provider(const avc_mailer_t *m)
{
    return m ? avc_mail_providers[m->provider] : "";
}

AVC_API const char *
avc_mailer_recipients(const avc_mailer_t *m)
{
    return m ? m->recipients : "";
}

/* templates */

AVC_API int
avc_mailer_compose(const avc_mailer_t *m, const char *name,
    const char *const *vars, char **subject, char **text, char **html)
{
    const char *src[AVC_MAIL_NPARTS];
    char *out[AVC_MAIL_NPARTS];
    static const int modes[AVC_MAIL_NPARTS] = {
        AVC__MAIL_LINE, AVC__MAIL_TEXT, AVC__MAIL_HTML
    };
    size_t i, j;

    if (name == NULL || subject == NULL || text == NULL || html == NULL) {
        return AVC_EINVAL;
    }
    for (i = 0; avc__mail_template_names[i]; i++) {
        if (strcmp(avc__mail_template_names[i], name) == 0) {
            break;
        }
    }
    if (avc__mail_template_names[i] == NULL) {
        return AVC_ENOTFOUND;
    }
    for (j = 0; j < AVC_MAIL_NPARTS; j++) {
        src[j] = m && i < AVC_MAIL_NTPL && m->tpl[i][j] ? m->tpl[i][j]
                 : avc__mail_template_builtin(name, avc_mail_parts[j]);
        out[j] = avc__mail_render(src[j] ? src[j] : "", vars, modes[j]);
    }
    if (out[0] == NULL || out[1] == NULL || out[2] == NULL) {
        for (j = 0; j < AVC_MAIL_NPARTS; j++) {
            free(out[j]);
        }
        return AVC_ENOMEM;
    }
    *subject = out[0];
    *text = out[1];
    *html = out[2];
    return AVC_OK;
}

/* ops */

static void
avc_mail_op_unlink(avc__mail_op_t *op)
{
    avc_mailer_t *m = op->m;

    if (m == NULL) {
        return;
    }
    if (op->prev) {
        op->prev->next = op->next;
    } else if (m->ops == op) {
        m->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
    op->m = NULL;
}

static void
avc_mail_op_free(avc__mail_op_t *op)
{
    free(op->dir);
    free(op->msg);
    free(op);
}

/* The end of a send: the op leaves the mailer, the caller hears. */
static void
avc_mail_op_finish(avc__mail_op_t *op, int err, const char *detail)
{
    int live = op->m != NULL;

    if (err != AVC_OK && live) {
        /* the queue logs its failures itself, with the mail's id */
        avc_log(op->dcb ? AVC_LOG_INFO : AVC_LOG_WARN, "mail: %s", detail);
    }
    avc_mail_op_unlink(op);
    op->req = NULL;
    if (live) {
        op->in_cb = 1;
        if (op->dcb) {
            op->dcb(err, err == AVC_OK ? "" : detail, op->data);
        } else if (op->cb) {
            op->cb(err, op->data);
        }
    }
    avc_mail_op_free(op);
}

void
avc__mail_op_cancel(avc__mail_op_t *op)
{
    if (op == NULL || op->in_cb) {
        return;
    }
    avc_mail_op_unlink(op);
    if (op->offloaded) {
        return;                 /* detached: freed by the completion */
    }
    if (op->req) {
        avc_http_cancel(op->req);
    }
    avc_mail_op_free(op);
}

/* outbox */

static int
avc_mail_mkdirs(const char *dir)
{
    char path[4096], *p;

    if (strlen(dir) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(path, dir);
    for (p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/*
 * On a pool thread: the file appears complete or not at all (temporary
 * name, fsync, rename, fsync of the directory), so a reader of the
 * outbox never sees half a message, and a crash never loses a mail
 * reported as written.
 */
static void
avc_outbox_work(void *arg)
{
    avc__mail_op_t *op = arg;
    char tmp[4200], path[4200];
    size_t off = 0;
    ssize_t n;
    int fd, dfd;

    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", op->dir, op->name);
    snprintf(path, sizeof(path), "%s/%s", op->dir, op->name);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        if (avc_mail_mkdirs(op->dir) != 0) {
            op->failed_call = "mkdir";
            op->sys_errno = errno;
            return;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        op->failed_call = "open";
        op->sys_errno = errno;
        return;
    }
    while (off < op->len) {
        n = write(fd, op->msg + off, op->len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            op->failed_call = "write";
            op->sys_errno = n < 0 ? errno : EIO;
            goto failed;
        }
        off += (size_t) n;
    }
    if (fsync(fd) != 0) {
        op->failed_call = "fsync";
        op->sys_errno = errno;
        goto failed;
    }
    if (close(fd) != 0) {
        fd = -1;
        op->failed_call = "close";
        op->sys_errno = errno;
        goto failed;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        op->failed_call = "rename";
        op->sys_errno = errno;
        goto failed;
    }
    dfd = open(op->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL) {
            op->failed_call = "fsync";
            op->sys_errno = errno;
        }
        close(dfd);
    }
    return;

failed:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
}

static void
avc_outbox_done(void *arg, int status)
{
    avc__mail_op_t *op = arg;
    char detail[AVC_MAIL_DETAIL_MAX + 4200];
    int err = AVC_OK;

    op->offloaded = 0;
    if (status != AVC_OK) {
        err = status;
        snprintf(detail, sizeof(detail), "outbox: %s", avc_strerror(err));
    } else if (op->failed_call) {
        err = AVC_ESYS;
        snprintf(detail, sizeof(detail), "outbox: %s %s/%s: %s",
                 op->failed_call, op->dir, op->name,
                 strerror(op->sys_errno));
    } else {
        avc_log(AVC_LOG_INFO, "mail: outbox: wrote %s/%s", op->dir,
                op->name);
        detail[0] = '\0';
    }
    avc_mail_op_finish(op, err, detail);
}

static int
avc_outbox_start(avc_mailer_t *m, avc__mail_op_t *op, char *const *rcpts,
    const char *subject, const char *text, const char *html)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[8];
    struct tm tm;
    time_t now = time(NULL);
    size_t i, n;
    int rc;

    if (m->dir == NULL) {
        return AVC_ESTATE;
    }
    op->msg = avc__mail_message(m->from_name, m->from_addr, rcpts, subject,
                                text, html, now, &op->len);
    op->dir = strdup(m->dir);
    if (op->msg == NULL || op->dir == NULL) {
        return AVC_ENOMEM;
    }
    /* sortable by time, unique by 64 random bits */
    gmtime_r(&now, &tm);
    n = strftime(op->name, sizeof(op->name), "%Y%m%dT%H%M%SZ-", &tm);
    avc__http_random(r, sizeof(r));
    for (i = 0; i < sizeof(r); i++) {
        op->name[n++] = hex[r[i] >> 4];
        op->name[n++] = hex[r[i] & 15];
    }
    memcpy(op->name + n, ".eml", 5);

    op->offloaded = 1;
    rc = avc_offload(m->loop, avc_outbox_work, avc_outbox_done, op);
    if (rc != AVC_OK) {
        op->offloaded = 0;
    }
    return rc;
}

/* mailgun */

static void
avc_mailgun_done(avc_http_req_t *req, int err, void *data)
{
    avc__mail_op_t *op = data;
    char detail[AVC_MAIL_DETAIL_MAX + AVC_MAIL_SNIPPET_MAX];
    char snippet[AVC_MAIL_SNIPPET_MAX + 1];
    const char *body;
    size_t len, i;
    int status;

    op->req = NULL;
    if (err != AVC_OK) {
        snprintf(detail, sizeof(detail), "mailgun: %s after %u attempt(s)",
                 avc_strerror(err), avc_http_req_attempts(req));
        avc_mail_op_finish(op, err, detail);
        return;
    }
    status = avc_http_resp_status(req);
    body = avc_http_resp_body(req, &len);
    if (len > AVC_MAIL_SNIPPET_MAX) {
        len = AVC_MAIL_SNIPPET_MAX;
    }
    /* one printable line, whatever the provider sent */
    for (i = 0; i < len; i++) {
        snippet[i] = body[i] >= 0x20 && body[i] < 0x7f ? body[i] : ' ';
    }
    snippet[len] = '\0';
    if (status >= 200 && status < 300) {
        avc_log(AVC_LOG_INFO, "mail: mailgun accepted: %s", snippet);
        avc_mail_op_finish(op, AVC_OK, "");
        return;
    }
    snprintf(detail, sizeof(detail), "mailgun: status %d after %u "
             "attempt(s): %s", status, avc_http_req_attempts(req), snippet);
    avc_mail_op_finish(op, AVC_EUPSTREAM, detail);
}

static int
avc_mailgun_start(avc_mailer_t *m, avc__mail_op_t *op, char *const *rcpts,
    const char *subject, const char *text, const char *html)
{
    avc_multipart_t *mp;
    avc_http_req_t *req;
    avc__buf_t to;
    size_t i;
    int rc = AVC_OK;

    avc__buf_init(&to);
    for (i = 0; rcpts[i] && rc == AVC_OK; i++) {
        rc = avc__buf_printf(&to, "%s%s", i ? ", " : "", rcpts[i]);
    }
    mp = avc_multipart_new();
    if (rc != AVC_OK || mp == NULL) {
        avc__buf_free(&to);
        avc_multipart_free(mp);
        return AVC_ENOMEM;
    }
    rc |= avc_multipart_add_field(mp, "from", m->from, strlen(m->from));
    rc |= avc_multipart_add_field(mp, "to", to.data, to.len);
    rc |= avc_multipart_add_field(mp, "subject", subject, strlen(subject));
    if (text) {
        rc |= avc_multipart_add_field(mp, "text", text, strlen(text));
    }
    if (html) {
        rc |= avc_multipart_add_field(mp, "html", html, strlen(html));
    }
    rc |= avc_multipart_add_field(mp, "h:Auto-Submitted", "auto-generated",
                                  14);
    avc__buf_free(&to);

    req = avc_http_req_new(m->http, "POST", m->mailgun_url);
    if (rc != AVC_OK || req == NULL) {
        avc_multipart_free(mp);
        avc_http_req_free(req);
        return AVC_ENOMEM;
    }
    avc_multipart_to_request(mp, req);
    avc_multipart_free(mp);
    avc_http_req_add_header(req, "Authorization", m->auth);
    avc_http_req_add_header(req, "Accept", "application/json");
    avc_http_req_set_timeouts(req, m->timeout_ms < 10000 ? m->timeout_ms
                                                         : 10000,
                              m->timeout_ms, m->timeout_ms);
    avc_http_req_set_retry(req, m->attempts, m->backoff_ms);
    avc_http_req_set_max_body(req, 65536);
    avc_http_req_set_callbacks(req, NULL, NULL, avc_mailgun_done, op);
    rc = avc_http_req_start(req);
    if (rc == AVC_OK) {
        op->req = req;
    }
    return rc;
}

/* smtp */

static void
avc_smtp_done(avc_http_req_t *req, int err, void *data)
{
    avc__mail_op_t *op = data;
    char detail[AVC_MAIL_DETAIL_MAX + CURL_ERROR_SIZE];

    op->req = NULL;
    err = avc__smtp_result(req, err, detail, sizeof(detail));
    if (err == AVC_OK) {
        avc_log(AVC_LOG_INFO, "mail: smtp: %s accepted the message",
                op->m ? op->m->smtp.origin : "server");
    }
    avc_mail_op_finish(op, err, detail);
}

static int
avc_smtp_start(avc_mailer_t *m, avc__mail_op_t *op, char *const *rcpts,
    const char *subject, const char *text, const char *html)
{
    avc_http_req_t *req;
    char *msg;
    size_t len;
    int rc;

    msg = avc__mail_message(m->from_name, m->from_addr, rcpts, subject,
                            text, html, time(NULL), &len);
    if (msg == NULL) {
        return AVC_ENOMEM;
    }
    req = avc__smtp_request(m->http, &m->smtp, m->from_addr, rcpts, msg,
                            len, &rc);
    if (req == NULL) {
        return rc;
    }
    avc_http_req_set_callbacks(req, NULL, NULL, avc_smtp_done, op);
    rc = avc_http_req_start(req);
    if (rc == AVC_OK) {
        op->req = req;
    }
    return rc;
}

/* sending */

static int
avc_mail_text_ok(const char *s)
{
    return s == NULL || avc__utf8_valid(s, strlen(s));
}

static int
avc_mail_start(avc_mailer_t *m, const char *to, const char *subject,
    const char *text, const char *html, avc_mail_cb cb,
    avc__mail_done_cb dcb, void *data, avc__mail_op_t **opp)
{
    avc__mail_op_t *op;
    char **rcpts, *subj;
    size_t i, total;
    int rc;

    if (m == NULL || subject == NULL || (text == NULL && html == NULL)
        || !avc_mail_text_ok(subject) || !avc_mail_text_ok(text)
        || !avc_mail_text_ok(html))
    {
        return AVC_EINVAL;
    }
    total = strlen(subject) + (text ? strlen(text) : 0)
            + (html ? strlen(html) : 0);
    if (total > AVC_MAIL_BODY_MAX) {
        return AVC_ETOOBIG;
    }
    rcpts = avc__mail_split_list(to, &rc);
    if (rcpts == NULL) {
        return rc;
    }
    subj = strdup(subject);
    op = calloc(1, sizeof(*op));
    if (subj == NULL || op == NULL) {
        free(subj);
        free(op);
        avc__mail_list_free(rcpts);
        return AVC_ENOMEM;
    }
    /* a subject is one header line whatever the caller passed */
    for (i = 0; subj[i]; i++) {
        if ((unsigned char) subj[i] < 0x20 || subj[i] == 0x7f) {
            subj[i] = ' ';
        }
    }
    op->cb = cb;
    op->dcb = dcb;
    op->data = data;

    switch (m->provider) {
    case AVC_MAIL_OUTBOX:
        rc = avc_outbox_start(m, op, rcpts, subj, text, html);
        break;
    case AVC_MAIL_MAILGUN:
        rc = avc_mailgun_start(m, op, rcpts, subj, text, html);
        break;
    default:
        rc = avc_smtp_start(m, op, rcpts, subj, text, html);
    }
    free(subj);
    avc__mail_list_free(rcpts);
    if (rc != AVC_OK) {
        avc_mail_op_free(op);
        return rc;
    }
    op->m = m;
    op->next = m->ops;
    if (m->ops) {
        m->ops->prev = op;
    }
    m->ops = op;
    if (opp) {
        *opp = op;
    }
    return AVC_OK;
}

AVC_API int
avc_mailer_send(avc_mailer_t *m, const char *to, const char *subject,
    const char *text, const char *html, avc_mail_cb cb, void *data)
{
    return avc_mail_start(m, to, subject, text, html, cb, NULL, data, NULL);
}

int
avc__mailer_submit(avc_mailer_t *m, const char *to, const char *subject,
    const char *text, const char *html, avc__mail_done_cb cb, void *data,
    avc__mail_op_t **opp)
{
    return avc_mail_start(m, to, subject, text, html, NULL, cb, data, opp);
}
