/*
 * Prompt building: the templates of libavatarcore/templates/prompts/
 * (embedded; an operator's prompts.dir may replace any of them), filled
 * in and fitted to the model's window.
 *
 *   training.txt     Adam's system prompt; {{dealership_name}},
 *                    {{trainee_name}}, {{passages}}
 *   roleplay.txt     the customer's system prompt; {{dealership_name}},
 *                    {{trainee_name}}, {{customer_profile}}, {{product}},
 *                    {{opening_line}}, {{objections}} (a numbered list)
 *   passage.txt      one passage inside {{passages}}; {{number}},
 *                    {{title}}, {{filename}}, {{topic}}, {{content}},
 *                    {{score}}
 *   no_passages.txt  {{passages}} when no passage went in
 *
 * The budget: the window less the completion's max_tokens holds the
 * system prompt and the question (both always in, else AVC_ETOOBIG), then
 * the passages best first while they fit (stopping at the first that
 * does not, so the first k are used), then the history newest first
 * (dropping the oldest turns).  Each message costs its text plus 4
 * tokens of framing, the whole prompt 3 more, as llm.c estimates it.
 */
#include "prompt_int.h"
#include "embedded.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define AVC_PT_TRAINING   0
#define AVC_PT_ROLEPLAY   1
#define AVC_PT_PASSAGE    2
#define AVC_PT_NONE       3
#define AVC_PT_SPOKEN     4
#define AVC_PT_N          5

#define AVC_PT_BUILTIN    "templates/prompts/"
#define AVC_PT_FILE_MAX   (64 * 1024)

/* framing tokens: per message, and once per prompt (see llm.c) */
#define AVC_PT_MSG_TOKENS     4
#define AVC_PT_PROMPT_TOKENS  3

static const char *const avc_pt_names[AVC_PT_N] = {
    "training.txt", "roleplay.txt", "passage.txt", "no_passages.txt",
    "spoken.txt"
};

/*
 * Templates read from operators' directories, newest first.  Entries are
 * never freed: a build may hold their texts on another thread while a
 * reload reads the directory again, and there are as many as reloads.
 */
typedef struct avc_pt_dir_s {
    struct avc_pt_dir_s *next;
    char *dir;
    char *text[AVC_PT_N];       /* NULL: the built-in one */
} avc_pt_dir_t;

static pthread_mutex_t avc_pt_lock = PTHREAD_MUTEX_INITIALIZER;
static avc_pt_dir_t *avc_pt_dirs;

struct avc_prompt_s {
    avc_llm_msg_t *msgs;
    char **own;                 /* msgs[i].content, owned */
    size_t n;
    size_t passages_used;
    size_t history_used;
    unsigned tokens;
};

int
avc__prompt_read_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    size_t got = 0;
    ssize_t n;
    char *s;
    int fd, e;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? AVC_ENOTFOUND : AVC_ESYS;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
        || (unsigned long long) st.st_size > max)
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
        if (n < 0) {
            e = errno;
            free(s);
            close(fd);
            errno = e;
            return AVC_ESYS;
        }
        if (n == 0) {
            break;
        }
        got += (size_t) n;
    }
    close(fd);
    s[got] = '\0';
    if (strlen(s) != got || !avc__utf8_valid(s, got)) {
        free(s);
        return AVC_EPARSE;
    }
    *out = s;
    if (len) {
        *len = got;
    }
    return AVC_OK;
}

/* templates */

static avc_pt_dir_t *
avc_pt_find(const char *dir)
{
    avc_pt_dir_t *d;

    for (d = avc_pt_dirs; d; d = d->next) {
        if (strcmp(d->dir, dir) == 0) {
            return d;
        }
    }
    return NULL;
}

static void
avc_pt_dir_free(avc_pt_dir_t *d)
{
    size_t i;

    if (d) {
        for (i = 0; i < AVC_PT_N; i++) {
            free(d->text[i]);
        }
        free(d->dir);
        free(d);
    }
}

/* read dir's templates into a new entry (not yet linked) */
static int
avc_pt_read(const char *dir, avc_pt_dir_t **out)
{
    avc_pt_dir_t *d;
    char path[4096];
    size_t i;
    int rc;

    *out = NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL || (d->dir = strdup(dir)) == NULL) {
        free(d);
        return AVC_ENOMEM;
    }
    for (i = 0; i < AVC_PT_N; i++) {
        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir,
                              avc_pt_names[i])
            >= sizeof(path))
        {
            avc_log(AVC_LOG_ERR, "prompt: prompts.dir \"%s\": path too "
                    "long", dir);
            avc_pt_dir_free(d);
            return AVC_EINVAL;
        }
        rc = avc__prompt_read_file(path, AVC_PT_FILE_MAX, &d->text[i],
                                   NULL);
        if (rc == AVC_ENOTFOUND) {
            continue;
        }
        if (rc != AVC_OK) {
            if (rc != AVC_ENOMEM) {
                avc_log(AVC_LOG_ERR, "prompt: prompts.dir: cannot use "
                        "\"%s\": %s", path, rc == AVC_EPARSE
                        ? "not UTF-8 text" : rc == AVC_ETOOBIG
                        ? "not a file of at most 64 KiB"
                        : strerror(errno));
                rc = AVC_EINVAL;
            }
            avc_pt_dir_free(d);
            return rc;
        }
    }
    *out = d;
    return AVC_OK;
}

AVC_API int
avc_prompt_templates_load(const char *dir)
{
    avc_pt_dir_t *d;
    struct stat st;
    int rc;

    if (dir == NULL || dir[0] == '\0') {
        return AVC_OK;
    }
    if (stat(dir, &st) != 0) {
        avc_log(AVC_LOG_ERR, "prompt: prompts.dir \"%s\": %s", dir,
                strerror(errno));
        return AVC_EINVAL;
    }
    if (!S_ISDIR(st.st_mode)) {
        avc_log(AVC_LOG_ERR, "prompt: prompts.dir \"%s\": not a "
                "directory", dir);
        return AVC_EINVAL;
    }
    rc = avc_pt_read(dir, &d);
    if (rc != AVC_OK) {
        return rc;
    }
    pthread_mutex_lock(&avc_pt_lock);
    d->next = avc_pt_dirs;
    avc_pt_dirs = d;
    pthread_mutex_unlock(&avc_pt_lock);
    return AVC_OK;
}

/* the texts to use: dir's where it has them, else the built-in ones */
static int
avc_pt_get(const char *dir, const char *t[AVC_PT_N])
{
    avc_pt_dir_t *d = NULL;
    char path[128];
    size_t i;
    int rc;

    if (dir != NULL && dir[0] != '\0') {
        pthread_mutex_lock(&avc_pt_lock);
        d = avc_pt_find(dir);
        pthread_mutex_unlock(&avc_pt_lock);
        if (d == NULL) {
            /* not loaded at start: read it once now */
            rc = avc_prompt_templates_load(dir);
            if (rc != AVC_OK) {
                return rc;
            }
            pthread_mutex_lock(&avc_pt_lock);
            d = avc_pt_find(dir);
            pthread_mutex_unlock(&avc_pt_lock);
        }
    }
    for (i = 0; i < AVC_PT_N; i++) {
        if (d && d->text[i]) {
            t[i] = d->text[i];
            continue;
        }
        snprintf(path, sizeof(path), AVC_PT_BUILTIN "%s", avc_pt_names[i]);
        t[i] = avc__embedded_file(path, NULL);
        if (t[i] == NULL) {
            return AVC_ENOTFOUND;
        }
    }
    return AVC_OK;
}

static int
avc_pt_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Append tmpl to b with each {{name}} (spaces allowed inside the braces)
 * replaced by its value in vars (NULL-terminated name, value pairs), ""
 * for a name not given.  Values are inserted as they are, never expanded
 * again.  Anything else, a lone "{{" included, is copied.
 */
static int
avc_pt_render(avc__buf_t *b, const char *tmpl, const char *const *vars)
{
    const char *p = tmpl, *open, *n, *ne, *q;
    size_t i;

    while ((open = strstr(p, "{{")) != NULL) {
        if (avc__buf_append(b, p, (size_t) (open - p)) != AVC_OK) {
            return AVC_ENOMEM;
        }
        for (n = open + 2; *n == ' '; n++) {
            /* void */
        }
        for (ne = n; avc_pt_name_char(*ne); ne++) {
            /* void */
        }
        for (q = ne; *q == ' '; q++) {
            /* void */
        }
        if (ne == n || q[0] != '}' || q[1] != '}') {
            if (avc__buf_append(b, open, 2) != AVC_OK) {
                return AVC_ENOMEM;
            }
            p = open + 2;
            continue;
        }
        for (i = 0; vars[i]; i += 2) {
            if (strlen(vars[i]) == (size_t) (ne - n)
                && memcmp(vars[i], n, (size_t) (ne - n)) == 0)
            {
                if (vars[i + 1]
                    && avc__buf_appends(b, vars[i + 1]) != AVC_OK)
                {
                    return AVC_ENOMEM;
                }
                break;
            }
        }
        p = q + 2;
    }
    return avc__buf_appends(b, p);
}

static void
avc_pt_rtrim(avc__buf_t *b)
{
    while (b->len > 0 && (b->data[b->len - 1] == '\n'
                          || b->data[b->len - 1] == ' '
                          || b->data[b->len - 1] == '\t'
                          || b->data[b->len - 1] == '\r'))
    {
        b->data[--b->len] = '\0';
    }
}

static const char *
avc_pt_or(const char *s, const char *def)
{
    return s && s[0] ? s : def;
}

/* one passage through passage.txt: a new string, or NULL */
static char *
avc_pt_passage(const char *tmpl, const avc_llm_passage_t *p, size_t i)
{
    const char *vars[13], *content;
    char number[24], score[16];
    avc__buf_t b, c;
    size_t n;

    avc__buf_init(&b);
    avc__buf_init(&c);
    content = p->content ? p->content : "";
    content += strspn(content, " \t\r\n");
    n = strlen(content);
    while (n > 0 && strchr(" \t\r\n", content[n - 1])) {
        n--;
    }
    if (avc__buf_append(&c, content, n) != AVC_OK) {
        return NULL;
    }
    snprintf(number, sizeof(number), "%zu", i + 1);
    snprintf(score, sizeof(score), "%.2f",
             p->score < 0 ? 0.0 : p->score > 1 ? 1.0 : p->score);
    vars[0] = "number";
    vars[1] = number;
    vars[2] = "title";
    vars[3] = avc_pt_or(p->title, avc_pt_or(p->filename, "Untitled"));
    vars[4] = "filename";
    vars[5] = avc_pt_or(p->filename, "unknown");
    vars[6] = "topic";
    vars[7] = avc_pt_or(p->topic, "general");
    vars[8] = "content";
    vars[9] = c.data;
    vars[10] = "score";
    vars[11] = score;
    vars[12] = NULL;
    if (avc_pt_render(&b, tmpl, vars) != AVC_OK) {
        avc__buf_free(&c);
        avc__buf_free(&b);
        return NULL;
    }
    avc__buf_free(&c);
    avc_pt_rtrim(&b);
    return avc__buf_steal(&b, NULL);
}

/* the system prompt with the first k rendered passages */
static char *
avc_pt_system(const avc_prompt_input_t *in, const char *const *t,
    char *const *pass, size_t k)
{
    const char *vars[15];
    avc__buf_t b, list;
    size_t i;
    int rc = AVC_OK;

    avc__buf_init(&b);
    avc__buf_init(&list);
    vars[0] = "dealership_name";
    vars[1] = avc_pt_or(in->dealership_name, "your dealership");
    vars[2] = "trainee_name";
    vars[3] = avc_pt_or(in->trainee_name, "the trainee");
    if (in->mode == AVC_LLM_TRAINING) {
        for (i = 0; i < k && rc == AVC_OK; i++) {
            rc = avc__buf_printf(&list, "%s%s", i ? "\n\n" : "", pass[i]);
        }
        if (k == 0) {
            rc = avc__buf_appends(&list, t[AVC_PT_NONE]);
            avc_pt_rtrim(&list);
        }
        vars[4] = "passages";
        vars[5] = list.data ? list.data : "";
        vars[6] = NULL;

    } else {
        for (i = 0; i < in->scenario->n_objections && rc == AVC_OK; i++) {
            rc = avc__buf_printf(&list, "%s%zu. %s", i ? "\n" : "", i + 1,
                                 in->scenario->objections[i]);
        }
        vars[4] = "customer_profile";
        vars[5] = in->scenario->customer_profile;
        vars[6] = "product";
        vars[7] = in->scenario->product;
        vars[8] = "opening_line";
        vars[9] = in->scenario->opening_line;
        vars[10] = "objections";
        vars[11] = list.data ? list.data : "";
        vars[12] = NULL;
    }
    if (rc == AVC_OK) {
        rc = avc_pt_render(&b, t[in->mode == AVC_LLM_TRAINING
                                 ? AVC_PT_TRAINING : AVC_PT_ROLEPLAY], vars);
    }
    avc__buf_free(&list);
    if (rc == AVC_OK && in->spoken) {
        /* an answer that will be heard, not read */
        avc_pt_rtrim(&b);
        rc = avc__buf_appends(&b, "\n\n");
        if (rc == AVC_OK) {
            rc = avc_pt_render(&b, t[AVC_PT_SPOKEN], vars);
        }
    }
    if (rc != AVC_OK) {
        avc__buf_free(&b);
        return NULL;
    }
    avc_pt_rtrim(&b);
    return avc__buf_steal(&b, NULL);
}

static unsigned
avc_pt_tokens(const char *s)
{
    return avc_llm_count_tokens(s, strlen(s)) + AVC_PT_MSG_TOKENS;
}

static int
avc_pt_check(const avc_prompt_input_t *in)
{
    const avc_scenario_t *s = in->scenario;
    size_t i;

    if (in->question == NULL || in->context_window == 0
        || (in->n_passages && in->passages == NULL)
        || (in->n_history && in->history == NULL))
    {
        return AVC_EINVAL;
    }
    if (in->mode == AVC_LLM_ROLEPLAY) {
        if (s == NULL || s->customer_profile == NULL || s->product == NULL
            || s->opening_line == NULL
            || (s->n_objections && s->objections == NULL))
        {
            return AVC_EINVAL;
        }
        for (i = 0; i < s->n_objections; i++) {
            if (s->objections[i] == NULL) {
                return AVC_EINVAL;
            }
        }

    } else if (in->mode != AVC_LLM_TRAINING) {
        return AVC_EINVAL;
    }
    for (i = 0; i < in->n_history; i++) {
        /* a client's history never speaks for the system */
        if ((in->history[i].role != AVC_LLM_USER
             && in->history[i].role != AVC_LLM_ASSISTANT)
            || in->history[i].content == NULL)
        {
            return AVC_EINVAL;
        }
    }
    return AVC_OK;
}

/* assemble p from the system prompt and the last j history turns */
static int
avc_pt_assemble(avc_prompt_t *p, const avc_prompt_input_t *in, char *sys,
    size_t j)
{
    size_t i, n = j + 2, first = in->n_history - j;
    unsigned total = AVC_PT_PROMPT_TOKENS;

    p->msgs = calloc(n, sizeof(*p->msgs));
    p->own = calloc(n, sizeof(*p->own));
    if (p->msgs == NULL || p->own == NULL) {
        free(sys);
        return AVC_ENOMEM;
    }
    p->n = n;
    p->own[0] = sys;
    p->msgs[0].role = AVC_LLM_SYSTEM;
    for (i = 0; i < j; i++) {
        p->own[i + 1] = strdup(in->history[first + i].content);
        if (p->own[i + 1] == NULL) {
            return AVC_ENOMEM;
        }
        p->msgs[i + 1].role = in->history[first + i].role;
    }
    p->own[n - 1] = strdup(in->question);
    if (p->own[n - 1] == NULL) {
        return AVC_ENOMEM;
    }
    p->msgs[n - 1].role = AVC_LLM_USER;
    for (i = 0; i < n; i++) {
        p->msgs[i].content = p->own[i];
        total += avc_pt_tokens(p->own[i]);
    }
    p->tokens = total;
    return AVC_OK;
}

static void
avc_pt_clear(avc_prompt_t *p)
{
    size_t i;

    if (p->own) {
        for (i = 0; i < p->n; i++) {
            free(p->own[i]);
        }
    }
    free(p->own);
    free(p->msgs);
    p->own = NULL;
    p->msgs = NULL;
    p->n = 0;
}

AVC_API avc_prompt_t *
avc_prompt_build(const avc_prompt_input_t *in, int *err)
{
    const char *t[AVC_PT_N];
    avc_prompt_t *p = NULL;
    char **pass = NULL, *sys;
    size_t np = 0, k = 0, j = 0, i;
    unsigned long long avail, used, cost;
    int rc, dummy;

    if (err == NULL) {
        err = &dummy;
    }
    if (in == NULL) {
        *err = AVC_EINVAL;
        return NULL;
    }
    rc = avc_pt_check(in);
    if (rc == AVC_OK) {
        rc = avc_pt_get(in->templates_dir, t);
    }
    if (rc != AVC_OK) {
        *err = rc;
        return NULL;
    }
    if (in->max_tokens >= in->context_window) {
        *err = AVC_ETOOBIG;
        return NULL;
    }
    avail = in->context_window - in->max_tokens;

    rc = AVC_ENOMEM;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        goto failed;
    }
    if (in->mode == AVC_LLM_TRAINING && in->n_passages) {
        np = in->n_passages;
        pass = calloc(np, sizeof(*pass));
        if (pass == NULL) {
            goto failed;
        }
        for (i = 0; i < np; i++) {
            pass[i] = avc_pt_passage(t[AVC_PT_PASSAGE], &in->passages[i], i);
            if (pass[i] == NULL) {
                goto failed;
            }
        }
    }

    /* the fixed part: the system prompt without passages, the question */
    sys = avc_pt_system(in, t, pass, 0);
    if (sys == NULL) {
        goto failed;
    }
    used = AVC_PT_PROMPT_TOKENS + avc_pt_tokens(sys)
           + avc_pt_tokens(in->question);
    free(sys);
    if (used > avail) {
        rc = AVC_ETOOBIG;
        goto failed;
    }

    /* the passages, best first, while they fit; they replace the text
     * saying there are none, which the fixed part counted */
    if (np) {
        used -= avc_llm_count_tokens(t[AVC_PT_NONE], strlen(t[AVC_PT_NONE]));
        for (k = 0; k < np; k++) {
            cost = avc_llm_count_tokens(pass[k], strlen(pass[k])) + 1;
            if (used + cost > avail) {
                break;
            }
            used += cost;
        }
        if (k == 0) {
            used += avc_llm_count_tokens(t[AVC_PT_NONE],
                                         strlen(t[AVC_PT_NONE]));
        }
    }

    /* the history, newest first, while it fits */
    for (j = 0; j < in->n_history; j++) {
        cost = avc_pt_tokens(in->history[in->n_history - 1 - j].content);
        if (used + cost > avail) {
            break;
        }
        used += cost;
    }

    /* the estimate above adds up parts; the count of the whole decides */
    for ( ;; ) {
        sys = avc_pt_system(in, t, pass, k);
        if (sys == NULL) {
            goto failed;
        }
        rc = avc_pt_assemble(p, in, sys, j);
        if (rc != AVC_OK) {
            goto failed;
        }
        if (p->tokens <= avail) {
            break;
        }
        avc_pt_clear(p);
        if (j > 0) {
            j--;
        } else if (k > 0) {
            k--;
        } else {
            rc = AVC_ETOOBIG;
            goto failed;
        }
    }
    p->passages_used = k;
    p->history_used = j;

    for (i = 0; i < np; i++) {
        free(pass[i]);
    }
    free(pass);
    *err = AVC_OK;
    return p;

failed:
    if (pass) {
        for (i = 0; i < np; i++) {
            free(pass[i]);
        }
        free(pass);
    }
    avc_prompt_free(p);
    *err = rc;
    return NULL;
}

AVC_API void
avc_prompt_free(avc_prompt_t *p)
{
    if (p == NULL) {
        return;
    }
    avc_pt_clear(p);
    free(p);
}

AVC_API const avc_llm_msg_t *
avc_prompt_messages(const avc_prompt_t *p, size_t *n)
{
    if (n) {
        *n = p ? p->n : 0;
    }
    return p ? p->msgs : NULL;
}

AVC_API size_t
avc_prompt_passages_used(const avc_prompt_t *p)
{
    return p ? p->passages_used : 0;
}

AVC_API size_t
avc_prompt_history_used(const avc_prompt_t *p)
{
    return p ? p->history_used : 0;
}

AVC_API unsigned
avc_prompt_tokens(const avc_prompt_t *p)
{
    return p ? p->tokens : 0;
}
