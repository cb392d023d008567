/*
 * Mail: templates and escaping, the RFC 5322 message, the outbox, the
 * Mailgun client against tools/mock/mailgun.pl, SMTP against
 * tools/mock/smtp-sink.pl, and the PostgreSQL queue.
 *
 *   build/t/test_mail [SECTION...]   e.g. "build/t/test_mail smtp"
 *
 * The mocks are started by this test (perl, from $AVC_TOP, default ".":
 * make runs tests from the repository root) with a pipe on their stdin,
 * so they exit with the test however it ends.  The queue needs
 * PostgreSQL: $AVC_TEST_DB (a libpq conninfo; its mail_outbox is emptied)
 * or else a private server (t/unit/pg.h); the schema is
 * applied with avatarctl migrate (found next to the test's build
 * directory, or $AVC_AVATARCTL).  Without PostgreSQL or avatarctl those
 * checks are skipped.
 */
#include "tap.h"
#include "mock.h"
#include "pg.h"

#include <avatarcore/mail.h>
#include "../../libavatarcore/src/mail/mail_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <jansson.h>

static const char *top = ".";
static avc_loop_t *loop;
static avc_http_t *http;
static char **only;             /* sections named on the command line */

/* logs, kept to check that no secret reaches them */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static avc__buf_t logs;

static void
log_cb(void *data, avc_log_level_t level, const char *msg)
{
    pthread_mutex_lock(&log_mu);
    avc__buf_appends(&logs, msg);
    avc__buf_appends(&logs, "\n");
    pthread_mutex_unlock(&log_mu);
    if (getenv("AVC_TEST_VERBOSE")) {
        printf("# [%d] %s\n", (int) level, msg);
    }
}

static int
logs_contain(const char *s)
{
    int r;

    pthread_mutex_lock(&log_mu);
    r = logs.data && strstr(logs.data, s) != NULL;
    pthread_mutex_unlock(&log_mu);
    return r;
}

static void
logs_clear(void)
{
    pthread_mutex_lock(&log_mu);
    avc__buf_reset(&logs);
    pthread_mutex_unlock(&log_mu);
}

/* the loop */

static void
run_until(const int *flag, unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (!*flag && avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 20);
    }
}

static void
run_for(unsigned ms)
{
    uint64_t end = avc_loop_now(loop) + ms;

    while (avc_loop_now(loop) < end) {
        avc_loop_run_once(loop, 10);
    }
}

typedef struct {
    int done;
    int err;
    int calls;
} sent_t;

static void
on_sent(int err, void *data)
{
    sent_t *s = data;

    s->done = 1;
    s->err = err;
    s->calls++;
}

/* send and wait; the error code, or 1000 + the send's own return */
static int
send_sync(avc_mailer_t *m, const char *to, const char *subject,
    const char *text, const char *html)
{
    sent_t s = { 0, 0, 0 };
    int rc;

    rc = avc_mailer_send(m, to, subject, text, html, on_sent, &s);
    if (rc != AVC_OK) {
        return 1000 + rc;
    }
    if (s.done) {
        return 2000;            /* called from within send: a bug */
    }
    run_until(&s.done, 30000);
    return s.done ? s.err : 3000;
}

static avc_mailer_t *
mailer(int *err, ...)
{
    avc_config_t *cfg = avc_config_new();
    avc_mailer_t *m;
    const char *k, *v;
    va_list ap;

    va_start(ap, err);
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        avc_config_set(cfg, k, v);
    }
    va_end(ap);
    m = avc_mailer_new(loop, http, cfg, err);
    avc_config_free(cfg);
    return m;
}

/* files */

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t) n + 1);
    if (s && fread(s, 1, (size_t) n, f) != (size_t) n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s) {
        s[n] = '\0';
        if (len) {
            *len = (size_t) n;
        }
    }
    return s;
}

static int
count_files(const char *dir, const char *suffix, char *first, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t sl = strlen(suffix), l;
    int count = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        l = strlen(e->d_name);
        if (e->d_name[0] == '.' && strcmp(suffix, ".") == 0
            && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
        {
            count++;            /* hidden files: temporaries */
            continue;
        }
        if (l > sl && strcmp(e->d_name + l - sl, suffix) == 0
            && e->d_name[0] != '.')
        {
            if (count == 0 && first) {
                snprintf(first, n, "%s/%s", dir, e->d_name);
            }
            count++;
        }
    }
    closedir(d);
    return count;
}

static void
rm_rf(const char *dir)
{
    char *argv[] = { (char *) "rm", (char *) "-rf", (char *) dir, NULL };
    pid_t pid;
    int st;

    pid = fork();
    if (pid == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    if (pid > 0) {
        waitpid(pid, &st, 0);
    }
}

/* decoding, to check what was encoded */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* quoted-printable to text with LF line ends; NULL when malformed */
static char *
qp_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    size_t i = 0;
    int h, l;

    while (out && i < n) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n')
        {
            i += 3;
        } else if (s[i] == '=') {
            if (i + 2 >= n || (h = hexval(s[i + 1])) < 0
                || (l = hexval(s[i + 2])) < 0)
            {
                free(out);
                return NULL;
            }
            *o++ = (char) (h * 16 + l);
            i += 3;
        } else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            *o++ = '\n';
            i += 2;
        } else {
            *o++ = s[i++];
        }
    }
    if (out) {
        *o = '\0';
    }
    return out;
}

static int
b64val(int c)
{
    const char *t =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(t, c) : NULL;

    return p ? (int) (p - t) : -1;
}

/* an unstructured header value with encoded-words, decoded */
static char *
header_decode(const char *v)
{
    avc__buf_t b;
    const char *p = v, *end;
    unsigned acc = 0;
    int bits = 0, x;

    avc__buf_init(&b);
    while (*p) {
        if (strncmp(p, "=?UTF-8?B?", 10) == 0
            && (end = strstr(p + 10, "?=")) != NULL)
        {
            for (p += 10; p < end; p++) {
                if (*p == '=') {
                    continue;
                }
                x = b64val(*p);
                acc = (acc << 6) | (unsigned) (x < 0 ? 0 : x);
                bits += 6;
                if (bits >= 8) {
                    bits -= 8;
                    char c = (char) ((acc >> bits) & 0xff);
                    avc__buf_append(&b, &c, 1);
                }
            }
            p = end + 2;
            bits = 0;
            /* whitespace between adjacent encoded-words is dropped */
            while (*p == '\r' || *p == '\n' || *p == ' ') {
                if (strncmp(p + strspn(p, "\r\n "), "=?", 2) != 0) {
                    break;
                }
                p++;
            }
        } else {
            avc__buf_append(&b, p++, 1);
        }
    }
    return avc__buf_steal(&b, NULL);
}

/* the value of a header of a message (unfolded, borrowed into buf) */
static const char *
header(const char *msg, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name), o = 0;
    const char *p = msg, *hend = strstr(msg, "\r\n\r\n");

    while (p && hend && p < hend) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ') {
                p++;
            }
            while (*p && o + 1 < n) {
                if (p[0] == '\r' && p[1] == '\n') {
                    if (p[2] != ' ' && p[2] != '\t') {
                        break;
                    }
                    p += 2;     /* unfold, keeping the space */
                    continue;
                }
                buf[o++] = *p++;
            }
            buf[o] = '\0';
            return buf;
        }
        p = strstr(p, "\r\n");
        if (p) {
            p += 2;
        }
    }
    return NULL;
}

/* lines end in CRLF and stay within limits */
static int
lines_ok(const char *s, size_t n, size_t max)
{
    size_t i, col = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '\n') {
            if (i == 0 || s[i - 1] != '\r') {
                return 0;
            }
            col = 0;
            continue;
        }
        if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n')) {
            return 0;
        }
        if (s[i] != '\r' && ++col > max) {
            return 0;
        }
    }
    return 1;
}

/*
 * A part of a multipart message: its body (decoded from quoted-
 * printable) when its Content-Type starts with type; new string or NULL.
 */
static char *
mime_part(const char *msg, const char *type)
{
    char ct[512], delim[128];
    const char *b, *p, *body, *end;
    size_t bl;

    if (header(msg, "Content-Type", ct, sizeof(ct)) == NULL) {
        return NULL;
    }
    b = strstr(ct, "boundary=\"");
    if (b == NULL) {
        return NULL;
    }
    b += 10;
    bl = strcspn(b, "\"");
    snprintf(delim, sizeof(delim), "\r\n--%.*s", (int) bl, b);
    for (p = strstr(msg, delim); p; p = strstr(p + 1, delim)) {
        p += strlen(delim);
        if (p[0] == '-' && p[1] == '-') {
            break;
        }
        body = strstr(p, "\r\n\r\n");
        end = strstr(p, delim);
        if (body == NULL || end == NULL || body > end) {
            return NULL;
        }
        if (strncasecmp(p + 2, "Content-Type: ", 14) == 0
            && strncasecmp(p + 16, type, strlen(type)) == 0)
        {
            if (strstr(p, "quoted-printable") == NULL
                || strstr(p, "quoted-printable") > body)
            {
                return NULL;
            }
            body += 4;
            return qp_decode(body, (size_t) (end - body));
        }
    }
    return NULL;
}

/* mocks */

/* the mocks of tools/mock/ (see mock.h) */
static int
mock_start(mock_t *mk, const char *script, const char *const *args)
{
    return mock_start_script(mk, top, script, args);
}

static char tmp_root[64];

static void
tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmp_root, name);
}

static int
section(const char *name)
{
    char **p;

    if (only == NULL || *only == NULL) {
        return 1;
    }
    for (p = only; *p; p++) {
        if (strcmp(*p, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* templates and escaping */

static void
test_render(void)
{
    const char *vars[] = { "name", "<script>alert(\"x\")</script> & 'q'",
                           "line", "a\r\nBcc: evil@example.com",
                           "nested", "{{name}}", NULL };
    char *s;

    s = avc__mail_render("Hi {{name}}!", vars, AVC__MAIL_HTML);
    TAP_STR(s, "Hi &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
               "&amp; &#39;q&#39;!", "HTML mode escapes & < > \" '");
    free(s);
    s = avc__mail_render("Hi {{name}}!", vars, AVC__MAIL_TEXT);
    TAP_STR(s, "Hi <script>alert(\"x\")</script> & 'q'!",
            "text mode inserts the value as it is");
    free(s);
    s = avc__mail_render("Re: {{line}}\n", vars, AVC__MAIL_LINE);
    TAP_STR(s, "Re: a  Bcc: evil@example.com",
            "a subject value cannot start a new header line");
    free(s);
    s = avc__mail_render("{{ name }}|{{missing}}|{{nested}}|{{ x|{{}}|}}",
                         vars, AVC__MAIL_TEXT);
    TAP_STR(s, "<script>alert(\"x\")</script> & 'q'||{{name}}|{{ x|{{}}|}}",
            "spaces, missing names, values never expanded, non-names kept");
    free(s);
    s = avc__mail_render("", NULL, AVC__MAIL_HTML);
    TAP_STR(s, "", "empty template");
    free(s);
}

static void
test_compose(void)
{
    const char *vars[] = {
        "kind", "inaccuracy",
        "dealership_name", "Smith & Sons <Motors>",
        "reporter_email", "ann@example.com",
        "user_input", "What's the \"best\" GAP <b>policy</b>?",
        "avatar_response", "<script>steal()</script>",
        "user_note", "It said 'always'\nsecond line",
        NULL
    };
    char *subject = NULL, *text = NULL, *html = NULL;
    int rc;

    rc = avc_mailer_compose(NULL, "report", vars, &subject, &text, &html);
    TAP_IS(rc, AVC_OK, "compose the report template");
    TAP_STR(subject, "[Avatar Adam] inaccuracy report from Smith & Sons "
                     "<Motors>", "subject: one line, not HTML-escaped");
    TAP_OK(text && strstr(text, "What's the \"best\" GAP <b>policy</b>?"),
           "text part: the value as typed");
    TAP_OK(html && strstr(html, "What&#39;s the &quot;best&quot; GAP "
                                "&lt;b&gt;policy&lt;/b&gt;?"),
           "HTML part: quotes and tags escaped");
    TAP_OK(html && strstr(html, "&lt;script&gt;steal()&lt;/script&gt;")
           && strstr(html, "<script>") == NULL,
           "HTML part: no <script> gets through");
    TAP_OK(html && strstr(html, "Smith &amp; Sons &lt;Motors&gt;"),
           "HTML part: dealership name escaped");
    TAP_OK(html && strstr(html, "{{") == NULL && text
           && strstr(text, "{{") == NULL, "every placeholder replaced");
    free(subject);
    free(text);
    free(html);

    TAP_IS(avc_mailer_compose(NULL, "nope", vars, &subject, &text, &html),
           AVC_ENOTFOUND, "unknown template");

    {
        const char *iv[] = { "email", "new@example.com", "dealership_name",
                             "Lakeside Ford", "role", "user", "link",
                             "https://adam.example.com/invite?token=a&b=\"c",
                             "expires_at", "2025-01-01 00:00 UTC", NULL };

        rc = avc_mailer_compose(NULL, "invite", iv, &subject, &text, &html);
        TAP_OK(rc == AVC_OK && strstr(subject, "Lakeside Ford")
               && strstr(text, "https://adam.example.com/invite?token=a&b=")
               && strstr(html, "href=\"https://adam.example.com/invite?"
                               "token=a&amp;b=&quot;c\""),
               "invite: the link is escaped inside its attribute");
        free(subject);
        free(text);
        free(html);
        rc = avc_mailer_compose(NULL, "password_reset", iv, &subject, &text,
                                &html);
        TAP_OK(rc == AVC_OK && strstr(text, "new@example.com")
               && strstr(subject, "password"), "password_reset template");
        free(subject);
        free(text);
        free(html);
    }
}

/* the embedded copies are what the files under templates/mail/ say */
static void
test_templates_embedded(void)
{
    static const char *const parts[] = { "subject", "txt", "html" };
    char path[PATH_MAX];
    const char *builtin;
    char *file;
    size_t i, j;
    int same = 1, n = 0;

    for (i = 0; avc__mail_template_names[i]; i++) {
        for (j = 0; j < 3; j++) {
            snprintf(path, sizeof(path), "%s/libavatarcore/templates/mail/"
                     "%s.%s", top, avc__mail_template_names[i], parts[j]);
            file = slurp(path, NULL);
            builtin = avc__mail_template_builtin(avc__mail_template_names[i],
                                                 parts[j]);
            if (file == NULL || builtin == NULL || strcmp(file, builtin)) {
                printf("# %s differs from the embedded copy: run sh "
                       "libavatarcore/embed.sh\n", path);
                same = 0;
            }
            free(file);
            n++;
        }
    }
    TAP_OK(same && n == 9, "embedded templates match their %d source files",
           n);
}

static void
test_templates_dir(void)
{
    char dir[128], path[160];
    char *subject, *text, *html;
    avc_mailer_t *m;
    FILE *f;
    int err;

    tmp_path(dir, sizeof(dir), "tpl");
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/invite.subject", dir);
    f = fopen(path, "w");
    fputs("Join {{dealership_name}}, {{email}}\n", f);
    fclose(f);

    tmp_path(path, sizeof(path), "outbox-tpl");
    m = mailer(&err, "mail.dir", path, "mail.templates", dir, NULL);
    TAP_OK(m != NULL, "mailer with mail.templates");
    {
        const char *iv[] = { "email", "a@b.c", "dealership_name", "X & Y",
                             NULL };

        err = avc_mailer_compose(m, "invite", iv, &subject, &text, &html);
        TAP_OK(err == AVC_OK && strcmp(subject, "Join X & Y, a@b.c") == 0
               && strstr(html, "X &amp; Y"),
               "a file in mail.templates replaces that part only");
        if (err == AVC_OK) {
            free(subject);
            free(text);
            free(html);
        }
    }
    avc_mailer_free(m);

    snprintf(path, sizeof(path), "%s/report.txt", dir);
    f = fopen(path, "w");
    fputs("bad \xff\xfe\n", f);
    fclose(f);
    tmp_path(path, sizeof(path), "outbox-tpl");
    m = mailer(&err, "mail.dir", path, "mail.templates", dir, NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL,
           "a template that is not UTF-8 is refused at creation");
}

/* the message */

static void
test_message(void)
{
    char *rcpts[] = { (char *) "a@example.com", (char *) "b@example.org",
                      NULL };
    char *msg, *name, *addr, **list, hv[1024], *dec, *body;
    const char *text = "Hello =\n.dot\nFrom here \ncaf\xc3\xa9 "
                       "0123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789\n";
    const char *subject = "Überprüfung: 50% off — "
                          "a very long subject line that goes on and on "
                          "and on past any sensible width";
    avc__buf_t b;
    size_t len;
    int err;

    TAP_OK(avc__mail_addr_valid("a.b+c@ex-ample.com", 18)
           && !avc__mail_addr_valid("a@b\r\nBcc: x", 11)
           && !avc__mail_addr_valid("a b@c.d", 7)
           && !avc__mail_addr_valid("<a@b.c>", 7)
           && !avc__mail_addr_valid("ab.c", 4)
           && !avc__mail_addr_valid("a@@b.c", 6)
           && !avc__mail_addr_valid("@b.c", 4),
           "address syntax");
    list = avc__mail_split_list(" a@b.c, ,d@e.f ", &err);
    TAP_OK(list && strcmp(list[0], "a@b.c") == 0
           && strcmp(list[1], "d@e.f") == 0 && list[2] == NULL,
           "address lists are trimmed, empty entries skipped");
    avc__mail_list_free(list);
    list = avc__mail_split_list("a@b.c, evil\n@x.y", &err);
    TAP_OK(list == NULL && err == AVC_EINVAL, "a bad entry refuses the list");
    list = avc__mail_split_list(" , ", &err);
    TAP_OK(list == NULL && err == AVC_EINVAL, "an empty list is refused");

    TAP_OK(avc__mail_parse_from("Avatar Adam <no-reply@localhost>", &name,
                                &addr) == AVC_OK
           && strcmp(name, "Avatar Adam") == 0
           && strcmp(addr, "no-reply@localhost") == 0, "From with a name");
    free(name);
    free(addr);
    TAP_OK(avc__mail_parse_from(" x@y.z ", &name, &addr) == AVC_OK
           && *name == '\0' && strcmp(addr, "x@y.z") == 0, "bare From");
    free(name);
    free(addr);
    TAP_OK(avc__mail_parse_from("Evil\r\nBcc: <x@y.z>", &name, &addr)
           == AVC_EINVAL, "From with a line break is refused");

    msg = avc__mail_message("Équipe \"Adam\"", "no-reply@adam.example",
                            rcpts, subject, text, "<p>x</p>", 0, &len);
    TAP_OK(msg != NULL && lines_ok(msg, len, 78),
           "the message: CRLF everywhere, no line over 78");
    TAP_STR(header(msg, "To", hv, sizeof(hv)),
            "a@example.com, b@example.org", "To lists the recipients");
    TAP_STR(header(msg, "Date", hv, sizeof(hv)),
            "Thu, 01 Jan 1970 00:00:00 +0000", "Date in RFC 5322 form");
    TAP_OK(header(msg, "Message-ID", hv, sizeof(hv))
           && hv[0] == '<' && strstr(hv, "@adam.example>"),
           "Message-ID at the From domain");
    header(msg, "Subject", hv, sizeof(hv));
    TAP_OK(strncmp(hv, "=?UTF-8?B?", 10) == 0, "non-ASCII subject encoded");
    dec = header_decode(hv);
    TAP_STR(dec, subject, "the encoded subject decodes to the original");
    free(dec);
    header(msg, "From", hv, sizeof(hv));
    dec = header_decode(hv);
    TAP_STR(dec, "Équipe \"Adam\" <no-reply@adam.example>",
            "a non-ASCII display name is encoded too");
    free(dec);
    body = mime_part(msg, "text/plain");
    TAP_STR(body, text, "quoted-printable round trip (=, dots, From, "
            "trailing space, UTF-8, soft breaks)");
    free(body);
    TAP_OK(strstr(msg, "\r\n.") == NULL && strstr(msg, "\r\nFrom ") == NULL,
           "no line starts with \".\" or \"From \"");
    free(msg);

    msg = avc__mail_message("", "x@y.z", rcpts, "plain", "only text", NULL,
                            0, &len);
    TAP_OK(msg && strstr(msg, "\r\nContent-Type: text/plain; charset=UTF-8"
                              "\r\n")
           && strstr(msg, "multipart") == NULL
           && header(msg, "Subject", hv, sizeof(hv))
           && strcmp(hv, "plain") == 0
           && header(msg, "From", hv, sizeof(hv)) && strcmp(hv, "x@y.z") == 0,
           "one body: a single text/plain part, plain subject");
    free(msg);

    {
        char *many[13];
        char addrs[12][40];

        for (len = 0; len < 12; len++) {
            snprintf(addrs[len], sizeof(addrs[len]),
                     "recipient.number.%zu@dealership.example", len);
            many[len] = addrs[len];
        }
        many[12] = NULL;
        msg = avc__mail_message("The Avatar Adam Training Platform for "
                                "Dealership F&I Offices, Inc.",
                                "no-reply@training.dealership.example", many,
                                "s", "t", NULL, 0, &len);
        TAP_OK(msg && lines_ok(msg, len, 78)
               && header(msg, "To", hv, sizeof(hv))
               && strstr(hv, "recipient.number.11@dealership.example")
               && header(msg, "From", hv, sizeof(hv)),
               "long From and To headers are folded within 78 columns");
        dec = header_decode(hv);
        TAP_STR(dec, "The Avatar Adam Training Platform for Dealership F&I "
                     "Offices, Inc. <no-reply@training.dealership.example>",
                "... and unfold to what they were");
        free(dec);
        free(msg);
    }

    avc__buf_init(&b);
    avc__buf_base64(&b, "api:key-123", 11, 0);
    TAP_STR(b.data, "YXBpOmtleS0xMjM=", "base64");
    avc__buf_free(&b);
}

/* outbox */

static void
test_outbox(void)
{
    char dir[128], file[256], ct[256], hv[256];
    char *eml, *html, *text;
    avc_mailer_t *m;
    struct stat st;
    size_t len;
    int err, rc;

    tmp_path(dir, sizeof(dir), "outbox/nested");
    m = mailer(&err, "mail.dir", dir, "mail.from",
               "Adam Trainer <adam@dealer.example>", NULL);
    TAP_OK(m != NULL && strcmp(avc_mailer_provider(m), "outbox") == 0,
           "outbox mailer (the default provider)");
    rc = send_sync(m, "trainee@example.com", "Ihr Bericht über GAP",
                   "Value: <script>alert('x')</script>\n",
                   "<p>Value: &lt;script&gt;alert(&#39;x&#39;)"
                   "&lt;/script&gt;</p>\n");
    TAP_IS(rc, AVC_OK, "send writes the file (directory created)");
    TAP_IS(count_files(dir, ".eml", file, sizeof(file)), 1, "one .eml");
    TAP_IS(count_files(dir, ".", NULL, 0), 0, "no temporary file left");
    TAP_OK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600,
           "the file is private (0600)");
    eml = slurp(file, &len);
    TAP_OK(eml && lines_ok(eml, len, 78), "parseable: CRLF lines, <= 78");
    TAP_OK(eml && header(eml, "From", hv, sizeof(hv))
           && strcmp(hv, "Adam Trainer <adam@dealer.example>") == 0,
           "From header");
    TAP_OK(eml && header(eml, "MIME-Version", hv, sizeof(hv))
           && strcmp(hv, "1.0") == 0 && header(eml, "Date", hv, sizeof(hv))
           && header(eml, "Message-ID", hv, sizeof(hv)),
           "MIME-Version, Date, Message-ID");
    TAP_OK(eml && header(eml, "Content-Type", ct, sizeof(ct))
           && strncmp(ct, "multipart/alternative; boundary=", 32) == 0,
           "multipart/alternative");
    text = eml ? mime_part(eml, "text/plain; charset=UTF-8") : NULL;
    html = eml ? mime_part(eml, "text/html; charset=UTF-8") : NULL;
    TAP_STR(text, "Value: <script>alert('x')</script>\n", "text part");
    TAP_OK(html && strstr(html, "&lt;script&gt;alert(&#39;x&#39;)")
           && strstr(html, "<script>") == NULL,
           "HTML part keeps the escaped value");
    free(text);
    free(html);
    free(eml);

    TAP_IS(avc_mailer_send(m, "a@b.c\r\nBcc: x@y.z", "s", "t", NULL,
                           on_sent, NULL), AVC_EINVAL,
           "a header injection in the address is refused");
    TAP_IS(avc_mailer_send(m, "a@b.c", "s", NULL, NULL, on_sent, NULL),
           AVC_EINVAL, "no body is refused");
    TAP_IS(avc_mailer_send(m, "a@b.c", "s", "\xc3(", NULL, on_sent, NULL),
           AVC_EINVAL, "invalid UTF-8 is refused");
    TAP_IS(send_sync(m, "a@b.c", "Subject\r\nBcc: evil@x.y", "t", NULL),
           AVC_OK, "a subject with a line break is sent");
    {
        char name[512];
        DIR *d = opendir(dir);
        struct dirent *e;
        int clean = 0;

        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || strcmp(e->d_name, file + strlen(dir)
                                              + 1) == 0)
            {
                continue;
            }
            snprintf(name, sizeof(name), "%s/%s", dir, e->d_name);
            eml = slurp(name, NULL);
            clean = eml && header(eml, "Bcc", hv, sizeof(hv)) == NULL
                    && header(eml, "Subject", hv, sizeof(hv))
                    && strcmp(hv, "Subject  Bcc: evil@x.y") == 0;
            free(eml);
        }
        if (d) {
            closedir(d);
        }
        TAP_OK(clean, "... as one line: no Bcc header appears");
    }

    /* abandoned: the file may appear, the callback never runs */
    {
        sent_t s = { 0, 0, 0 };

        rc = avc_mailer_send(m, "a@b.c", "gone", "t", NULL, on_sent, &s);
        avc_mailer_free(m);
        run_for(300);
        TAP_OK(rc == AVC_OK && s.calls == 0,
               "freeing the mailer abandons a running send silently");
    }

    m = mailer(&err, "mail.dir", "/proc/avc-no-such/outbox", NULL);
    rc = send_sync(m, "a@b.c", "s", "t", NULL);
    TAP_IS(rc, AVC_ESYS, "an unwritable outbox fails with AVC_ESYS");
    avc_mailer_free(m);
}

static void
test_config(void)
{
    avc_mailer_t *m;
    int err;

    m = mailer(&err, "mail.provider", "pigeon", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "unknown provider");
    m = mailer(&err, NULL);
    TAP_OK(m != NULL && strcmp(avc_mailer_provider(m), "outbox") == 0,
           "no mail configured: an outbox mailer");
    TAP_IS(avc_mailer_send(m, "a@b.c", "s", "t", NULL, on_sent, NULL),
           AVC_ESTATE, "... that sends nothing until mail.dir is set");
    avc_mailer_free(m);
    m = mailer(&err, "mail.provider", "mailgun", "mail.domain", "x.y", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "mailgun needs mail.key");
    m = mailer(&err, "mail.provider", "mailgun", "mail.key", "k", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "mailgun needs mail.domain");
    m = mailer(&err, "mail.provider", "mailgun", "mail.key", "k",
               "mail.domain", "x.y/../z", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "a domain is a domain");
    logs_clear();
    m = mailer(&err, "mail.provider", "smtp", "mail.url",
               "smtp://me:Pa55w0rd-in-url@127.0.0.1:25", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL && !logs_contain("Pa55w0rd"),
           "credentials in mail.url are refused, and not logged");
    m = mailer(&err, "mail.provider", "smtp", "mail.url", "http://x", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "smtp needs smtp(s)://");
    m = mailer(&err, "mail.provider", "smtp", "mail.url", "smtp://x",
               "mail.starttls", "maybe", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "mail.starttls is checked");
    m = mailer(&err, "mail.dir", "/tmp", "mail.from", "nobody", NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "mail.from is checked");
    m = mailer(&err, "mail.dir", "/tmp", "mail.recipients", "a@b.c;d@e.f",
               NULL);
    TAP_OK(m == NULL && err == AVC_EINVAL, "mail.recipients is checked");
    m = mailer(&err, "mail.dir", "/tmp", "mail.recipients",
               "ops@dealer.example, qa@dealer.example", NULL);
    TAP_STR(m ? avc_mailer_recipients(m) : NULL,
            "ops@dealer.example, qa@dealer.example",
            "mail.recipients is available to report senders");
    avc_mailer_free(m);
}

/* mailgun */

static json_t *
log_line(const char *path, int n)
{
    char *s = slurp(path, NULL), *p, *nl;
    json_t *j = NULL;
    int i;

    for (p = s, i = 0; p && *p; p = nl + 1, i++) {
        nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        if (i == n) {
            *nl = '\0';
            j = json_loads(p, 0, NULL);
            break;
        }
    }
    free(s);
    return j;
}

static int
jstr_is(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
        printf("# %s: got '%s', want '%s'\n", key,
               json_is_string(v) ? json_string_value(v) : "(none)", want);
        return 0;
    }
    return 1;
}

static void
test_mailgun(void)
{
    char logf[128], base[128], port[16];
    const char *args[12];
    avc_mailer_t *m;
    mock_t mk;
    json_t *j;
    char *url;
    int err, rc;

    url = avc__mailgun_url("https://api.eu.mailgun.net/", "mg.example.com");
    TAP_STR(url, "https://api.eu.mailgun.net/v3/mg.example.com/messages",
            "the EU region is just another base URL");
    free(url);

    tmp_path(logf, sizeof(logf), "mailgun.log");
    args[0] = "--key";
    args[1] = "key-Secret123";
    args[2] = "--domain";
    args[3] = "mg.example.com";
    args[4] = "--log";
    args[5] = logf;
    args[6] = NULL;
    if (!TAP_OK(mock_start(&mk, "mailgun.pl", args) == 0,
                "mailgun mock started"))
    {
        return;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", mk.port);
    m = mailer(&err, "mail.provider", "mailgun", "mail.base_url", base,
               "mail.domain", "mg.example.com", "mail.key", "key-Secret123",
               "mail.from", "Avatar Adam <no-reply@mg.example.com>", NULL);
    TAP_OK(m != NULL, "mailgun mailer");
    logs_clear();
    rc = send_sync(m, "one@example.com, two@example.com",
                   "Rapport d'inexactitude — Café", "text body é",
                   "<p>html &amp; body</p>");
    TAP_IS(rc, AVC_OK, "Mailgun accepted the message");
    j = log_line(logf, 0);
    TAP_OK(j && jstr_is(j, "from", "Avatar Adam <no-reply@mg.example.com>")
           && jstr_is(j, "to", "one@example.com, two@example.com")
           && jstr_is(j, "subject", "Rapport d'inexactitude — Café")
           && jstr_is(j, "text", "text body é")
           && jstr_is(j, "html", "<p>html &amp; body</p>")
           && jstr_is(j, "domain", "mg.example.com"),
           "the mock received from, to, subject, text, html");
    json_decref(j);
    avc_mailer_free(m);

    /* trailing slash on the base: still /v3/{domain}/messages */
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/", mk.port);
    m = mailer(&err, "mail.provider", "mailgun", "mail.base_url", base,
               "mail.domain", "mg.example.com", "mail.key", "key-Secret123",
               NULL);
    TAP_IS(send_sync(m, "x@example.com", "s", NULL, "<b>only html</b>"),
           AVC_OK, "a base URL with a trailing slash, HTML only");
    avc_mailer_free(m);

    logs_clear();
    m = mailer(&err, "mail.provider", "mailgun", "mail.base_url", base,
               "mail.domain", "mg.example.com", "mail.key", "key-Wrong999",
               NULL);
    rc = send_sync(m, "x@example.com", "s", "t", NULL);
    TAP_IS(rc, AVC_EUPSTREAM, "a wrong key: AVC_EUPSTREAM");
    TAP_OK(logs_contain("401") && !logs_contain("key-Wrong999")
           && !logs_contain("a2V5LVdyb25nOTk5")
           && !logs_contain("YXBpOmtleS1Xcm9uZzk5OQ"),
           "logged with the status, never with the key");
    avc_mailer_free(m);
    TAP_OK(log_line(logf, 2) == NULL, "nothing else was accepted");
    mock_stop(&mk);

    /* 500 twice, then success: the client's retries */
    snprintf(port, sizeof(port), "2");
    args[0] = "--key";
    args[1] = "k";
    args[2] = "--fail";
    args[3] = port;
    args[4] = NULL;
    if (!TAP_OK(mock_start(&mk, "mailgun.pl", args) == 0,
                "mailgun mock failing twice"))
    {
        return;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", mk.port);
    m = mailer(&err, "mail.provider", "mailgun", "mail.base_url", base,
               "mail.domain", "d.example", "mail.key", "k",
               "mail.backoff", "50", "mail.attempts", "3", NULL);
    TAP_IS(send_sync(m, "x@example.com", "s", "t", NULL), AVC_OK,
           "500, 500, then 200: sent through retries");
    avc_mailer_free(m);
    mock_stop(&mk);

    args[3] = "5";
    mock_start(&mk, "mailgun.pl", args);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", mk.port);
    m = mailer(&err, "mail.provider", "mailgun", "mail.base_url", base,
               "mail.domain", "d.example", "mail.key", "k",
               "mail.backoff", "50", "mail.attempts", "2", NULL);
    logs_clear();
    TAP_IS(send_sync(m, "x@example.com", "s", "t", NULL), AVC_EUPSTREAM,
           "retries exhausted: the last 500 is the error");
    TAP_OK(logs_contain("status 500"), "... logged with its status");
    avc_mailer_free(m);
    mock_stop(&mk);

    /* nobody listening */
    m = mailer(&err, "mail.provider", "mailgun", "mail.base_url",
               "http://127.0.0.1:1", "mail.domain", "d.example",
               "mail.key", "k", "mail.attempts", "1", NULL);
    TAP_IS(send_sync(m, "x@example.com", "s", "t", NULL), AVC_ECONNECT,
           "connection refused: AVC_ECONNECT");
    avc_mailer_free(m);
}

/* smtp */

static json_t *
envelope(const char *dir, int n)
{
    char path[256];
    json_t *j;

    snprintf(path, sizeof(path), "%s/%03d.json", dir, n);
    j = json_load_file(path, 0, NULL);
    return j;
}

static void
test_smtp(void)
{
    char dir[128], url[64], path[256], hv[256];
    const char *args[12];
    avc_mailer_t *m;
    mock_t mk;
    json_t *j;
    char *eml, *text;
    int err, rc;

    tmp_path(dir, sizeof(dir), "sink1");
    args[0] = "--dir";
    args[1] = dir;
    args[2] = NULL;
    if (!TAP_OK(mock_start(&mk, "smtp-sink.pl", args) == 0,
                "SMTP sink started (no AUTH)"))
    {
        return;
    }
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", mk.port);
    m = mailer(&err, "mail.provider", "smtp", "mail.url", url,
               "mail.from", "Avatar Adam <adam@dealer.example>", NULL);
    TAP_OK(m != NULL, "smtp mailer");
    rc = send_sync(m, "one@example.com,two@example.com", "Hello SMTP",
                   ".leading dot line\nsecond\n", "<p>hi</p>");
    TAP_IS(rc, AVC_OK, "the sink accepted the message");
    j = envelope(dir, 1);
    TAP_OK(j && jstr_is(j, "mail_from", "adam@dealer.example")
           && json_array_size(json_object_get(j, "rcpt_to")) == 2
           && json_is_null(json_object_get(j, "auth")),
           "envelope: MAIL FROM, two RCPT TO, no AUTH");
    json_decref(j);
    snprintf(path, sizeof(path), "%s/001.eml", dir);
    eml = slurp(path, NULL);
    text = eml ? mime_part(eml, "text/plain") : NULL;
    TAP_OK(eml && header(eml, "Subject", hv, sizeof(hv))
           && strcmp(hv, "Hello SMTP") == 0 && text
           && strcmp(text, ".leading dot line\nsecond\n") == 0,
           "the message arrived intact");
    free(text);
    free(eml);
    avc_mailer_free(m);
    mock_stop(&mk);

    tmp_path(dir, sizeof(dir), "sink2");
    args[0] = "--dir";
    args[1] = dir;
    args[2] = "--user";
    args[3] = "mailer";
    args[4] = "--pass";
    args[5] = "S3cret-Pass";
    args[6] = "--fail";
    args[7] = "1";
    args[8] = NULL;
    if (!TAP_OK(mock_start(&mk, "smtp-sink.pl", args) == 0,
                "SMTP sink started (AUTH, first message refused)"))
    {
        return;
    }
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", mk.port);
    m = mailer(&err, "mail.provider", "smtp", "mail.url", url,
               "mail.user", "mailer", "mail.password", "S3cret-Pass", NULL);
    logs_clear();
    rc = send_sync(m, "x@example.com", "first", "t", NULL);
    TAP_IS(rc, AVC_EUPSTREAM, "451 after DATA: AVC_EUPSTREAM");
    TAP_OK(logs_contain("451"), "... logged with the reply code");
    rc = send_sync(m, "x@example.com", "second", "t", NULL);
    TAP_IS(rc, AVC_OK, "with AUTH: accepted");
    j = envelope(dir, 1);
    TAP_OK(j && jstr_is(j, "auth", "mailer"), "the sink saw the login");
    json_decref(j);
    avc_mailer_free(m);

    logs_clear();
    m = mailer(&err, "mail.provider", "smtp", "mail.url", url,
               "mail.user", "mailer", "mail.password", "Wrong-Pass", NULL);
    rc = send_sync(m, "x@example.com", "third", "t", NULL);
    TAP_IS(rc, AVC_EAUTH, "a wrong password: AVC_EAUTH");
    TAP_OK(!logs_contain("Wrong-Pass") && !logs_contain("S3cret"),
           "no password in the logs");
    avc_mailer_free(m);

    m = mailer(&err, "mail.provider", "smtp", "mail.url", url, NULL);
    rc = send_sync(m, "x@example.com", "fourth", "t", NULL);
    TAP_IS(rc, AVC_EUPSTREAM, "no login where one is required: refused");
    avc_mailer_free(m);
    mock_stop(&mk);

    m = mailer(&err, "mail.provider", "smtp", "mail.url",
               "smtp://127.0.0.1:1", NULL);
    TAP_IS(send_sync(m, "x@example.com", "s", "t", NULL), AVC_ECONNECT,
           "nobody listening: AVC_ECONNECT");
    avc_mailer_free(m);

    /* abandoned while running */
    tmp_path(dir, sizeof(dir), "sink3");
    args[0] = "--dir";
    args[1] = dir;
    args[2] = NULL;
    mock_start(&mk, "smtp-sink.pl", args);
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", mk.port);
    m = mailer(&err, "mail.provider", "smtp", "mail.url", url, NULL);
    {
        sent_t s = { 0, 0, 0 };

        rc = avc_mailer_send(m, "x@example.com", "s", "t", NULL, on_sent,
                             &s);
        /* connecting: the dialogue takes many more round trips */
        avc_loop_run_once(loop, 0);
        avc_loop_run_once(loop, 0);
        avc_mailer_free(m);
        run_for(200);
        TAP_OK(rc == AVC_OK && s.calls == 0,
               "freeing the mailer cancels a running SMTP send");
    }
    mock_stop(&mk);
}

/* the queue */

static tpg_t pg;
static char conninfo[512];

typedef struct {
    int done;
    int err;
    int rows;
    char v[6][256];
    int isnull[6];
    char msg[256];
} res_t;

static void
on_res(int err, avc_db_res_t *res, void *data)
{
    res_t *r = data;
    int i;

    r->done = 1;
    r->err = err;
    r->rows = avc_db_res_rows(res);
    for (i = 0; i < 6 && i < avc_db_res_cols(res) && r->rows > 0; i++) {
        snprintf(r->v[i], sizeof(r->v[i]), "%s", avc_db_res_value(res, 0, i));
        r->isnull[i] = avc_db_res_isnull(res, 0, i);
    }
    snprintf(r->msg, sizeof(r->msg), "%s", avc_db_res_error(res));
}

static int
q_sync(avc_db_t *db, const char *sql, int n, const char *const *p, res_t *r)
{
    memset(r, 0, sizeof(*r));
    if (avc_db_query(db, sql, 0, n, p, 0, on_res, r) == NULL) {
        return r->err = -1000;
    }
    run_until(&r->done, 20000);
    if (r->err != AVC_OK) {
        printf("# %s: %s %s\n", sql, avc_err_name(r->err), r->msg);
    }
    return r->done ? r->err : -2000;
}

typedef struct {
    int done;
    int err;
    avc_db_tx_t *tx;
} tx_t;

static void
on_tx(int err, avc_db_tx_t *tx, void *data)
{
    tx_t *t = data;

    t->done = 1;
    t->err = err;
    t->tx = tx;
}

/* enqueue in a transaction that commits (or rolls back) */
static int
enqueue(avc_db_t *db, const char *to, const char *subject, int commit)
{
    const char *p[AVC_MAIL_NPARAMS];
    tx_t t = { 0, 0, NULL };
    res_t r;

    if (avc_db_begin(db, 0, on_tx, &t) != AVC_OK) {
        return -1;
    }
    run_until(&t.done, 20000);
    if (t.err != AVC_OK) {
        return t.err;
    }
    p[AVC_MAIL_P_TO] = to;
    p[AVC_MAIL_P_SUBJECT] = subject;
    p[AVC_MAIL_P_TEXT] = "queued text";
    p[AVC_MAIL_P_HTML] = "<p>queued html</p>";
    p[AVC_MAIL_P_KIND] = "test";
    memset(&r, 0, sizeof(r));
    avc_db_tx_query(t.tx, avc_mail_enqueue_sql(), 0, AVC_MAIL_NPARAMS, p,
                    on_res, &r);
    run_until(&r.done, 20000);
    if (r.err != AVC_OK) {
        printf("# enqueue: %s %s\n", avc_err_name(r.err), r.msg);
    }
    memset(&r, 0, sizeof(r));
    if (commit) {
        avc_db_commit(t.tx, on_res, &r);
    } else {
        avc_db_rollback(t.tx, on_res, &r);
    }
    run_until(&r.done, 20000);
    return r.err;
}

static long
count(avc_db_t *db, const char *where)
{
    char sql[512];
    res_t r;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM mail_outbox WHERE %s",
             where);
    if (q_sync(db, sql, 0, NULL, &r) != AVC_OK) {
        return -1;
    }
    return atol(r.v[0]);
}

static void
test_queue(void)
{
    char dir[128], base[128], subj[64];
    const char *args[6];
    avc_mailer_t *m, *m2, *bad;
    avc_mail_queue_t *q, *q2;
    avc_db_t *db, *db2;
    unsigned long long a, b;
    mock_t mk;
    res_t r;
    int err, i, private_pg = 0;

    if (getenv("AVC_TEST_DB")) {
        snprintf(conninfo, sizeof(conninfo), "%s", getenv("AVC_TEST_DB"));
    } else {
        if (tpg_start(&pg) != 0) {
            TAP_OK(1, "queue # SKIP no PostgreSQL");
            return;
        }
        snprintf(conninfo, sizeof(conninfo), "%s", pg.conninfo);
        private_pg = 1;
    }
    if (tpg_migrate(conninfo, top, private_pg ? pg.cmdlog : NULL) != 0
        && private_pg)
    {
        tpg_destroy(&pg);
        TAP_OK(1, "queue # SKIP the schema cannot be applied");
        return;
    }
    db = avc_db_new(loop, conninfo, 2, 10000);
    TAP_IS(q_sync(db, "DELETE FROM mail_outbox", 0, NULL, &r), AVC_OK,
           "mail_outbox is there (and emptied)");

    /* enqueue in the caller's transaction */
    TAP_IS(enqueue(db, "rolled@back.example", "never", 0), AVC_OK,
           "enqueue inside a transaction that rolls back");
    TAP_IS(count(db, "true"), 0, "... leaves nothing queued");
    TAP_IS(enqueue(db, " first@example.com , second@example.com ",
                   "Queued mail", 1), AVC_OK,
           "enqueue inside a transaction that commits");
    TAP_IS(count(db, "recipients = '{first@example.com,second@example.com}'"
                     " AND attempts = 0 AND sent_at IS NULL"), 1,
           "... queued with its trimmed recipients");

    tmp_path(dir, sizeof(dir), "queue-outbox");
    m = mailer(&err, "mail.dir", dir, NULL);
    q = avc_mail_queue_new(loop, db, m, 60000);
    TAP_OK(q != NULL, "a queue");
    avc_mail_queue_kick(q);
    for (i = 0; i < 500 && avc_mail_queue_stat(q, AVC_MAIL_Q_SENT) < 1; i++) {
        avc_loop_run_once(loop, 20);
    }
    run_for(300);               /* the mark */
    TAP_IS(avc_mail_queue_stat(q, AVC_MAIL_Q_SENT), 1, "kicked: sent");
    TAP_IS(count_files(dir, ".eml", NULL, 0), 1, "... through the mailer");
    TAP_IS(count(db, "sent_at IS NOT NULL AND attempts = 1"
                     " AND last_error IS NULL"), 1, "... sent_at set");
    avc_mail_queue_free(q);
    avc_mailer_free(m);

    /* a failing provider */
    args[0] = "--key";
    args[1] = "k";
    args[2] = "--status";
    args[3] = "503";
    args[4] = NULL;
    mock_start(&mk, "mailgun.pl", args);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", mk.port);
    bad = mailer(&err, "mail.provider", "mailgun", "mail.base_url", base,
                 "mail.domain", "d.example", "mail.key", "k",
                 "mail.attempts", "1", NULL);
    q_sync(db, "DELETE FROM mail_outbox", 0, NULL, &r);
    enqueue(db, "x@example.com", "Will fail", 1);
    q = avc_mail_queue_new(loop, db, bad, 60000);
    logs_clear();
    avc_mail_queue_kick(q);
    for (i = 0; i < 500 && avc_mail_queue_stat(q, AVC_MAIL_Q_FAILED) < 1;
         i++)
    {
        avc_loop_run_once(loop, 20);
    }
    run_for(300);
    TAP_IS(avc_mail_queue_stat(q, AVC_MAIL_Q_FAILED), 1, "a failed attempt");
    TAP_IS(count(db, "sent_at IS NULL AND attempts = 1"
                     " AND next_attempt_at > now() + interval '25 seconds'"
                     " AND next_attempt_at < now() + interval '35 seconds'"
                     " AND last_error LIKE 'mailgun: status 503%'"), 1,
           "attempts incremented, next attempt 30 s later, last_error kept");
    TAP_OK(logs_contain("next attempt in 30 s") && !logs_contain("api:k"),
           "the failure is logged");
    a = avc_mail_queue_stat(q, AVC_MAIL_Q_CLAIMS);
    avc_mail_queue_kick(q);
    run_for(500);
    TAP_OK(avc_mail_queue_stat(q, AVC_MAIL_Q_CLAIMS) > a
           && avc_mail_queue_stat(q, AVC_MAIL_Q_FAILED) == 1,
           "a mail backing off is not claimed again");

    q_sync(db, "UPDATE mail_outbox SET attempts = 5,"
               " next_attempt_at = now()", 0, NULL, &r);
    avc_mail_queue_kick(q);
    for (i = 0; i < 500 && avc_mail_queue_stat(q, AVC_MAIL_Q_FAILED) < 2;
         i++)
    {
        avc_loop_run_once(loop, 20);
    }
    run_for(300);
    TAP_IS(count(db, "attempts = 6 AND next_attempt_at > now() + "
                     "interval '950 seconds' AND next_attempt_at < now() + "
                     "interval '970 seconds'"), 1,
           "the sixth attempt backs off 16 minutes (30 s doubling)");
    q_sync(db, "UPDATE mail_outbox SET attempts = 9,"
               " next_attempt_at = now()", 0, NULL, &r);
    avc_mail_queue_kick(q);
    for (i = 0; i < 500 && avc_mail_queue_stat(q, AVC_MAIL_Q_GIVEN_UP) < 1;
         i++)
    {
        avc_loop_run_once(loop, 20);
    }
    run_for(300);
    TAP_IS(avc_mail_queue_stat(q, AVC_MAIL_Q_GIVEN_UP), 1,
           "given up after the tenth attempt");
    TAP_IS(count(db, "attempts = 10 AND sent_at IS NULL"
                     " AND last_error IS NOT NULL"), 1,
           "... with its last_error");
    q_sync(db, "UPDATE mail_outbox SET next_attempt_at = now()", 0, NULL,
           &r);
    a = avc_mail_queue_stat(q, AVC_MAIL_Q_FAILED);
    avc_mail_queue_kick(q);
    run_for(500);
    TAP_IS(avc_mail_queue_stat(q, AVC_MAIL_Q_FAILED), a,
           "a mail given up is never tried again");

    /* a row nobody can send: given up at once */
    q_sync(db, "DELETE FROM mail_outbox", 0, NULL, &r);
    q_sync(db, "INSERT INTO mail_outbox (recipients, subject, body_text,"
               " kind) VALUES ('{not-an-address}', 's', 't', 'test')", 0,
           NULL, &r);
    avc_mail_queue_kick(q);
    for (i = 0; i < 500 && avc_mail_queue_stat(q, AVC_MAIL_Q_GIVEN_UP) < 2;
         i++)
    {
        avc_loop_run_once(loop, 20);
    }
    run_for(300);
    TAP_IS(count(db, "attempts = 10 AND last_error LIKE 'invalid%'"), 1,
           "invalid recipients: given up at once");
    avc_mail_queue_free(q);
    avc_mailer_free(bad);
    mock_stop(&mk);

    /* two senders on one table */
    q_sync(db, "DELETE FROM mail_outbox", 0, NULL, &r);
    for (i = 0; i < 30; i++) {
        snprintf(subj, sizeof(subj), "mail %02d", i);
        enqueue(db, "many@example.com", subj, 1);
    }
    tmp_path(dir, sizeof(dir), "queue-two");
    db2 = avc_db_new(loop, conninfo, 2, 10000);
    m = mailer(&err, "mail.dir", dir, NULL);
    m2 = mailer(&err, "mail.dir", dir, NULL);
    q = avc_mail_queue_new(loop, db, m, 60000);
    q2 = avc_mail_queue_new(loop, db2, m2, 60000);
    avc__mail_queue_set_batch(q, 4, 0);
    avc__mail_queue_set_batch(q2, 4, 0);
    avc_mail_queue_kick(q);
    avc_mail_queue_kick(q2);
    for (i = 0; i < 1000; i++) {
        a = avc_mail_queue_stat(q, AVC_MAIL_Q_SENT);
        b = avc_mail_queue_stat(q2, AVC_MAIL_Q_SENT);
        if (a + b >= 30) {
            break;
        }
        avc_loop_run_once(loop, 20);
    }
    run_for(500);
    a = avc_mail_queue_stat(q, AVC_MAIL_Q_SENT);
    b = avc_mail_queue_stat(q2, AVC_MAIL_Q_SENT);
    printf("# queue A sent %llu, queue B sent %llu\n", a, b);
    TAP_IS(a + b, 30, "two queues sent 30 mails between them");
    TAP_IS(count_files(dir, ".eml", NULL, 0), 30, "... 30 files, no double");
    TAP_IS(count(db, "sent_at IS NOT NULL AND attempts = 1"), 30,
           "... each claimed exactly once");
    TAP_OK(a > 0 && b > 0, "... and both took part");
    avc_mail_queue_free(q);
    avc_mail_queue_free(q2);

    /* freeing a queue in the middle of a cycle */
    q_sync(db, "DELETE FROM mail_outbox", 0, NULL, &r);
    for (i = 0; i < 5; i++) {
        enqueue(db, "late@example.com", "late", 1);
    }
    q = avc_mail_queue_new(loop, db, m, 60000);
    avc_mail_queue_kick(q);
    for (i = 0; i < 50 && avc_mail_queue_stat(q, AVC_MAIL_Q_CLAIMS) < 1;
         i++)
    {
        avc_loop_run_once(loop, 1);
    }
    avc_mail_queue_free(q);
    run_for(300);
    TAP_OK(count(db, "sent_at IS NULL") == 5,
           "freeing a busy queue: its mails stay queued");
    avc_mailer_free(m);
    avc_mailer_free(m2);

    avc_db_free(db2);
    avc_db_free(db);
    if (private_pg) {
        tpg_destroy(&pg);
    }
}

int
main(int argc, char **argv)
{
    const char *env = getenv("AVC_TOP");

    signal(SIGPIPE, SIG_IGN);
    if (env && *env) {
        top = env;
    }
    only = argv + 1;
    avc__buf_init(&logs);
    avc_log_set(log_cb, NULL, AVC_LOG_DEBUG);
    snprintf(tmp_root, sizeof(tmp_root), "/tmp/avc-mail-XXXXXX");
    if (mkdtemp(tmp_root) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    loop = avc_loop_new(2);
    http = avc_http_new(loop);
    if (loop == NULL || http == NULL) {
        printf("Bail out! no loop or HTTP client\n");
        return 1;
    }

    if (section("render")) {
        test_render();
        test_compose();
        test_templates_embedded();
        test_templates_dir();
    }
    if (section("message")) {
        test_message();
    }
    if (section("config")) {
        test_config();
    }
    if (section("outbox")) {
        test_outbox();
    }
    if (section("mailgun")) {
        test_mailgun();
    }
    if (section("smtp")) {
        test_smtp();
    }
    if (section("queue")) {
        test_queue();
    }

    avc_http_free(http);
    run_for(50);
    avc_loop_free(loop);
    avc_log_set(NULL, NULL, AVC_LOG_ERR);
    avc__buf_free(&logs);
    rm_rf(tmp_root);
    return tap_done();
}
