/*
 * Role-play scenarios: the built-in files (the .jsonl files of
 * data/scenarios/, embedded) and an operator's directory of more
 * (chat.scenarios).
 *
 * One scenario per line, a JSON object:
 *   id                  1-64 characters of A-Z a-z 0-9 . _ -
 *   customer_profile    who the customer is (non-empty)
 *   product             what the trainee presents (non-empty)
 *   opening_line        the customer's first words (non-empty)
 *   objections          1-20 non-empty strings, raised in this order
 *   good_trainee_moves  0-30 strings (optional): what a good answer does,
 *                       for reviewers; never shown to the customer side
 * Other keys are ignored; blank lines are skipped.  A loaded set never
 * changes, so it may be shared by threads.
 */
#include "prompt_int.h"
#include "embedded.h"
#include "json_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#define AVC_SCN_ID_MAX        64
#define AVC_SCN_TEXT_MAX      4000    /* bytes of one field */
#define AVC_SCN_OBJECTIONS    20
#define AVC_SCN_MOVES         30
#define AVC_SCN_LINE_MAX      (64 * 1024)
#define AVC_SCN_BUILTIN       "data/scenarios/"

typedef struct {
    avc_scenario_t pub;         /* its strings point into mem */
    void *mem;
    int builtin;
} avc_scn_t;

struct avc_scenarios_s {
    avc_scn_t *v;
    size_t n;
    size_t cap;
};

static int
avc_scn_id_ok(const char *s)
{
    size_t n = 0;

    for ( /* void */ ; s[n]; n++) {
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z')
              || (s[n] >= '0' && s[n] <= '9') || s[n] == '.'
              || s[n] == '_' || s[n] == '-'))
        {
            return 0;
        }
    }
    return n > 0 && n <= AVC_SCN_ID_MAX;
}

/* a non-empty string that is not only white space, of a bounded size */
static int
avc_scn_text_ok(const json_t *v)
{
    const char *s;
    size_t n;

    if (!json_is_string(v)) {
        return 0;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > AVC_SCN_TEXT_MAX || strlen(s) != n) {
        return 0;
    }
    return strspn(s, " \t\r\n") < n;
}

static int
avc_scn_list_ok(const json_t *a, size_t min, size_t max)
{
    size_t i;

    if (!json_is_array(a) || json_array_size(a) < min
        || json_array_size(a) > max)
    {
        return 0;
    }
    for (i = 0; i < json_array_size(a); i++) {
        if (!avc_scn_text_ok(json_array_get(a, i))) {
            return 0;
        }
    }
    return 1;
}

/* copy the strings of a checked object into one block */
static int
avc_scn_copy(const json_t *o, avc_scn_t *out)
{
    static const char *const keys[] = {
        "id", "customer_profile", "product", "opening_line"
    };
    const json_t *obj = json_object_get(o, "objections");
    const json_t *mov = json_object_get(o, "good_trainee_moves");
    const char **ptrs, *s[4];
    size_t nobj = json_array_size(obj), nmov = json_array_size(mov);
    size_t size, i, n;
    char *p;

    size = (nobj + nmov + 1) * sizeof(char *);
    for (i = 0; i < 4; i++) {
        s[i] = json_string_value(json_object_get(o, keys[i]));
        size += strlen(s[i]) + 1;
    }
    for (i = 0; i < nobj; i++) {
        size += json_string_length(json_array_get(obj, i)) + 1;
    }
    for (i = 0; i < nmov; i++) {
        size += json_string_length(json_array_get(mov, i)) + 1;
    }
    out->mem = malloc(size);
    if (out->mem == NULL) {
        return AVC_ENOMEM;
    }
    ptrs = out->mem;
    p = (char *) (ptrs + nobj + nmov + 1);

#define avc_scn_put(dst, src) do {                                          \
        n = strlen(src) + 1;                                                \
        memcpy(p, (src), n);                                                \
        (dst) = p;                                                          \
        p += n;                                                             \
    } while (0)

    avc_scn_put(out->pub.id, s[0]);
    avc_scn_put(out->pub.customer_profile, s[1]);
    avc_scn_put(out->pub.product, s[2]);
    avc_scn_put(out->pub.opening_line, s[3]);
    for (i = 0; i < nobj; i++) {
        avc_scn_put(ptrs[i], json_string_value(json_array_get(obj, i)));
    }
    for (i = 0; i < nmov; i++) {
        avc_scn_put(ptrs[nobj + i],
                    json_string_value(json_array_get(mov, i)));
    }

#undef avc_scn_put

    ptrs[nobj + nmov] = NULL;
    out->pub.objections = ptrs;
    out->pub.n_objections = nobj;
    out->pub.good_trainee_moves = ptrs + nobj;
    out->pub.n_moves = nmov;
    return AVC_OK;
}

/* one line: AVC_OK, AVC_EPARSE with why[], AVC_ENOMEM */
static int
avc_scn_parse(const char *line, size_t len, avc_scn_t *out, char *why,
    size_t whylen)
{
    static const char *const texts[] = {
        "customer_profile", "product", "opening_line"
    };
    json_error_t e;
    json_t *o, *moves;
    size_t i;
    int rc;

    o = avc__json_parse(line, len, AVC_SCN_LINE_MAX, &rc, &e);
    if (o == NULL) {
        if (rc == AVC_ENOMEM) {
            return rc;
        }
        snprintf(why, whylen, "not JSON: %s", e.text);
        return AVC_EPARSE;
    }
    rc = AVC_EPARSE;
    if (!json_is_object(o)) {
        snprintf(why, whylen, "not a JSON object");
        goto done;
    }
    if (!json_is_string(json_object_get(o, "id"))
        || !avc_scn_id_ok(json_string_value(json_object_get(o, "id"))))
    {
        snprintf(why, whylen, "\"id\" must be 1-%d characters of "
                 "A-Z a-z 0-9 . _ -", AVC_SCN_ID_MAX);
        goto done;
    }
    for (i = 0; i < avc__countof(texts); i++) {
        if (!avc_scn_text_ok(json_object_get(o, texts[i]))) {
            snprintf(why, whylen, "\"%s\" must be a non-empty string of "
                     "at most %d bytes", texts[i], AVC_SCN_TEXT_MAX);
            goto done;
        }
    }
    if (!avc_scn_list_ok(json_object_get(o, "objections"), 1,
                         AVC_SCN_OBJECTIONS))
    {
        snprintf(why, whylen, "\"objections\" must be a list of 1-%d "
                 "non-empty strings", AVC_SCN_OBJECTIONS);
        goto done;
    }
    moves = json_object_get(o, "good_trainee_moves");
    if (moves != NULL && !json_is_null(moves)
        && !avc_scn_list_ok(moves, 0, AVC_SCN_MOVES))
    {
        snprintf(why, whylen, "\"good_trainee_moves\" must be a list of "
                 "at most %d non-empty strings", AVC_SCN_MOVES);
        goto done;
    }
    rc = avc_scn_copy(o, out);

done:
    json_decref(o);
    return rc;
}

static avc_scn_t *
avc_scn_find(avc_scenarios_t *s, const char *id)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].pub.id, id) == 0) {
            return &s->v[i];
        }
    }
    return NULL;
}

/* the scenarios of one file's text; name is for messages */
static int
avc_scn_load_text(avc_scenarios_t *s, const char *name, const char *text,
    size_t len, int builtin)
{
    const char *line = text, *end = text + len, *eol;
    avc_scn_t scn, *old, *v;
    size_t lineno = 0, n;
    char why[256];
    int rc;

    for ( /* void */ ; line < end; line = eol + 1) {
        lineno++;
        eol = memchr(line, '\n', (size_t) (end - line));
        if (eol == NULL) {
            eol = end;
        }
        n = (size_t) (eol - line);
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        if (strspn(line, " \t") >= n) {
            continue;
        }
        memset(&scn, 0, sizeof(scn));
        rc = avc_scn_parse(line, n, &scn, why, sizeof(why));
        if (rc == AVC_ENOMEM) {
            return rc;
        }
        if (rc == AVC_OK) {
            old = avc_scn_find(s, scn.pub.id);
            if (old && (builtin || !old->builtin)) {
                snprintf(why, sizeof(why), "duplicate id \"%s\"",
                         scn.pub.id);
                free(scn.mem);
                rc = AVC_EPARSE;

            } else if (old) {
                /* the operator's version of a built-in scenario */
                free(old->mem);
                *old = scn;
                continue;
            }
        }
        if (rc != AVC_OK) {
            avc_log(AVC_LOG_ERR, "scenarios: %s:%zu: %s", name, lineno,
                    why);
            return AVC_EPARSE;
        }
        if (s->n == s->cap) {
            n = s->cap ? s->cap * 2 : 16;
            v = realloc(s->v, n * sizeof(*v));
            if (v == NULL) {
                free(scn.mem);
                return AVC_ENOMEM;
            }
            s->v = v;
            s->cap = n;
        }
        scn.builtin = builtin;
        s->v[s->n++] = scn;
    }
    return AVC_OK;
}

static int
avc_scn_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
avc_scn_load_dir(avc_scenarios_t *s, const char *dir)
{
    char **names = NULL, **nn, *path = NULL, *text;
    size_t n = 0, cap = 0, len, i, plen;
    struct dirent *de;
    DIR *d;
    int rc = AVC_OK;

    d = opendir(dir);
    if (d == NULL) {
        avc_log(AVC_LOG_ERR, "scenarios: chat.scenarios \"%s\": %s", dir,
                strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? AVC_ENOTFOUND
                                                   : AVC_ESYS;
    }
    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len <= 6
            || strcmp(de->d_name + len - 6, ".jsonl") != 0)
        {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            nn = realloc(names, cap * sizeof(*names));
            if (nn == NULL) {
                rc = AVC_ENOMEM;
                break;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = AVC_ENOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == AVC_OK && n > 1) {
        /* the same order everywhere: later files replace nothing, but
         * the first of two duplicates is the one reported */
        qsort(names, n, sizeof(*names), avc_scn_name_cmp);
    }
    for (i = 0; i < n && rc == AVC_OK; i++) {
        plen = strlen(dir) + strlen(names[i]) + 2;
        path = malloc(plen);
        if (path == NULL) {
            rc = AVC_ENOMEM;
            break;
        }
        snprintf(path, plen, "%s/%s", dir, names[i]);
        rc = avc__prompt_read_file(path, AVC__PROMPT_FILE_MAX, &text, &len);
        if (rc == AVC_OK) {
            rc = avc_scn_load_text(s, path, text, len, 0);
            free(text);

        } else if (rc != AVC_ENOMEM) {
            avc_log(AVC_LOG_ERR, "scenarios: cannot use \"%s\": %s", path,
                    rc == AVC_EPARSE ? "not UTF-8 text"
                    : rc == AVC_ETOOBIG ? "not a file of at most 4 MiB"
                    : strerror(errno));
            rc = rc == AVC_EPARSE ? AVC_EPARSE : AVC_ESYS;
        }
        free(path);
    }
    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}

AVC_API avc_scenarios_t *
avc_scenarios_load(const char *dir, int *err)
{
    avc_scenarios_t *s;
    const char *path, *text;
    size_t it = 0, len;
    int rc = AVC_OK, dummy;

    if (err == NULL) {
        err = &dummy;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        *err = AVC_ENOMEM;
        return NULL;
    }
    while (rc == AVC_OK
           && (path = avc__embedded_next(AVC_SCN_BUILTIN, &it, &text, &len))
              != NULL)
    {
        rc = avc_scn_load_text(s, path, text, len, 1);
    }
    if (rc == AVC_OK && dir != NULL && dir[0] != '\0') {
        rc = avc_scn_load_dir(s, dir);
    }
    if (rc == AVC_OK && s->n == 0) {
        avc_log(AVC_LOG_ERR, "scenarios: none loaded");
        rc = AVC_ENOTFOUND;
    }
    if (rc != AVC_OK) {
        avc_scenarios_free(s);
        *err = rc;
        return NULL;
    }
    *err = AVC_OK;
    return s;
}

AVC_API void
avc_scenarios_free(avc_scenarios_t *s)
{
    size_t i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < s->n; i++) {
        free(s->v[i].mem);
    }
    free(s->v);
    free(s);
}

AVC_API size_t
avc_scenarios_count(const avc_scenarios_t *s)
{
    return s ? s->n : 0;
}

AVC_API const avc_scenario_t *
avc_scenarios_get(const avc_scenarios_t *s, size_t i)
{
    return s && i < s->n ? &s->v[i].pub : NULL;
}

AVC_API const avc_scenario_t *
avc_scenarios_find(const avc_scenarios_t *s, const char *id)
{
    size_t i;

    if (s == NULL || id == NULL) {
        return NULL;
    }
    for (i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].pub.id, id) == 0) {
            return &s->v[i].pub;
        }
    }
    return NULL;
}

static uint64_t
avc_scn_random64(void)
{
    static uint64_t fallback;
    struct timespec ts;
    uint64_t r;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t) sizeof(r)) {
        return r;
    }
    /* no entropy yet: a uniform pick matters, secrecy does not */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 32)
        ^ __atomic_add_fetch(&fallback, 0x9e3779b97f4a7c15ULL,
                             __ATOMIC_RELAXED);
    r ^= r >> 33;
    r *= 0xff51afd7ed558ccdULL;
    r ^= r >> 33;
    return r;
}

AVC_API const avc_scenario_t *
avc_scenarios_random(const avc_scenarios_t *s)
{
    uint64_t r, limit;
    int tries;

    if (s == NULL || s->n == 0) {
        return NULL;
    }
    /* reject the top sliver that would favour the first ids */
    limit = UINT64_MAX - UINT64_MAX % s->n;
    r = avc_scn_random64();
    for (tries = 0; r >= limit && tries < 8; tries++) {
        r = avc_scn_random64();
    }
    return &s->v[r % s->n].pub;
}
