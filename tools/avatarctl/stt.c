/*
 * avatarctl stt: transcribe audio files as the product does.
 *
 *   avatarctl stt [--domain PATH]... [--config K=V]... [--json] FILE...
 *
 * Each file's format is taken from its bytes (WAV, WebM, MP4, MP3, Ogg;
 * a file of none of these is read as raw PCM16K).  The speech-to-text
 * client is the configured one (pocketsphinx without stt.key); with
 * --domain, the offline recogniser's language model is built from the
 * material given (text files, or the *.txt of a directory) under one
 * key, once, and reused for every file.  Files are transcribed one after
 * the other on the built-in loop, the decoding on its thread pool.
 */
#include "ctl.h"

#include <avatarcore/http.h>
#include <avatarcore/speech.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <jansson.h>

#define STT_FILE_MAX    (64u * 1024 * 1024)
#define STT_DOMAIN_MAX  (16u * 1024 * 1024)

static int ctl_stt_run(int argc, char **argv);

const ctl_cmd_t ctl_cmd_stt = {
    "stt", "[--domain PATH]... [--config K=V]... [--json] FILE...",
    "transcribe audio files with the configured speech-to-text",
    "Options:\n"
    "  -d, --domain PATH   material for the offline language model: a text\n"
    "                      file, or a directory whose *.txt files are read\n"
    "                      (repeatable; default: the F&I phrases alone)\n"
    "  -k, --key KEY       the domain's key (default \"avatarctl\")\n"
    "  -c, --config K=V    a configuration key (repeatable), e.g.\n"
    "                      stt.provider=openai, stt.key=KEY, stt.timeout=MS\n"
    "  -j, --json          one JSON object a line: file, text, confidence,\n"
    "                      audio_ms, ms, words, error\n"
    "  -h, --help          this help\n"
    "\n"
    "Prints one line per file, \"FILE<TAB>TRANSCRIPT\", in the order given.\n"
    "The format of a file is decided by its bytes; one that is none of\n"
    "WAV, WebM, MP4, MP3 or Ogg is read as raw 16 kHz 16-bit mono PCM.\n"
    "Exit status 1 when any file failed.\n",
    ctl_stt_run
};

typedef struct {
    int done;
    int err;
    char *text;
    char *words;
    char *error;
    double confidence;
    unsigned audio_ms;
} ctl_stt_heard_t;

static char *
ctl_stt_dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void
ctl_stt_done(int err, const avc_stt_result_t *res, void *data)
{
    ctl_stt_heard_t *h = data;

    h->done = 1;
    h->err = err;
    h->text = ctl_stt_dup(res->text ? res->text : "");
    h->words = ctl_stt_dup(res->words_json);
    h->error = ctl_stt_dup(res->error);
    h->confidence = res->confidence;
    h->audio_ms = res->audio_ms;
}

static char *
ctl_stt_read(const char *path, size_t max, size_t *len)
{
    struct stat st;
    char *b;
    FILE *f;

    f = fopen(path, "rb");
    if (f == NULL) {
        ctl_err("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)
        || (size_t) st.st_size > max)
    {
        ctl_err("%s: not a regular file of at most %zu bytes", path, max);
        fclose(f);
        return NULL;
    }
    b = malloc((size_t) st.st_size + 1);
    if (b == NULL
        || fread(b, 1, (size_t) st.st_size, f) != (size_t) st.st_size)
    {
        ctl_err("cannot read %s", path);
        free(b);
        fclose(f);
        return NULL;
    }
    fclose(f);
    b[st.st_size] = '\0';
    *len = (size_t) st.st_size;
    return b;
}

static int
ctl_stt_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* the text of a file, or of a directory's *.txt in name order, appended
 * to out with a line break between files */
static int
ctl_stt_domain(const char *path, char **out, size_t *outlen)
{
    char full[4096], *text, *p, **names = NULL, **nn;
    size_t n = 0, len, i, cap = 0;
    struct dirent *de;
    struct stat st;
    int rc = 0;
    DIR *d;

    if (stat(path, &st) != 0) {
        ctl_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        text = ctl_stt_read(path, STT_DOMAIN_MAX, &len);
        if (text == NULL) {
            return -1;
        }
        if (*outlen + len + 2 > STT_DOMAIN_MAX) {
            ctl_err("the domain text is over %u bytes", STT_DOMAIN_MAX);
            free(text);
            return -1;
        }
        p = realloc(*out, *outlen + len + 2);
        if (p == NULL) {
            free(text);
            return -1;
        }
        memcpy(p + *outlen, text, len);
        p[*outlen + len] = '\n';
        p[*outlen + len + 1] = '\0';
        *out = p;
        *outlen += len + 1;
        free(text);
        return 0;
    }
    d = opendir(path);
    if (d == NULL) {
        ctl_err("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".txt") != 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nn = realloc(names, cap * sizeof(*names));
            if (nn == NULL) {
                rc = -1;
                break;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0) {
        qsort(names, n, sizeof(*names), ctl_stt_cmp);
    }
    for (i = 0; i < n; i++) {
        snprintf(full, sizeof(full), "%s/%s", path, names[i]);
        if (rc == 0 && ctl_stt_domain(full, out, outlen) != 0) {
            rc = -1;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int
ctl_stt_config(avc_config_t *cfg, const char *kv)
{
    char key[256];
    const char *eq = strchr(kv, '=');

    if (eq == NULL || eq == kv || (size_t) (eq - kv) >= sizeof(key)) {
        return AVC_EINVAL;
    }
    memcpy(key, kv, (size_t) (eq - kv));
    key[eq - kv] = '\0';
    return avc_config_set(cfg, key, eq + 1);
}

static uint64_t
ctl_stt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void
ctl_stt_print(const char *file, const ctl_stt_heard_t *h, uint64_t ms,
    int json)
{
    json_t *o, *w;
    char *s;

    if (!json) {
        if (h->err == AVC_OK) {
            printf("%s\t%s\n", file, h->text ? h->text : "");
        } else {
            printf("%s\t\n", file);
            ctl_err("%s: %s", file, h->error ? h->error
                                             : avc_strerror(h->err));
        }
        return;
    }
    w = h->words ? json_loads(h->words, 0, NULL) : NULL;
    o = json_pack("{s:s,s:s,s:f,s:I,s:I,s:o}", "file", file, "text",
                  h->text ? h->text : "", "confidence", h->confidence,
                  "audio_ms", (json_int_t) h->audio_ms, "ms",
                  (json_int_t) ms, "words", w ? w : json_null());
    if (o && h->err != AVC_OK) {
        json_object_set_new(o, "error", json_string(h->error ? h->error
                                                 : avc_strerror(h->err)));
    }
    s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (s) {
        printf("%s\n", s);
    }
    free(s);
    json_decref(o);
}

static int
ctl_stt_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domain", required_argument, NULL, 'd' },
        { "key", required_argument, NULL, 'k' },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *key = "avatarctl";
    char **files = NULL, **nf, *domain = NULL, *audio;
    size_t nfiles = 0, dlen = 0, len, i;
    avc_config_t *cfg;
    avc_loop_t *loop = NULL;
    avc_http_t *http = NULL;
    avc_stt_t *stt = NULL;
    avc_stt_request_t req;
    ctl_stt_heard_t h;
    uint64_t t0;
    int c, rc = CTL_OK, err, json = 0;

    cfg = avc_config_new();
    if (cfg == NULL) {
        return CTL_EFAIL;
    }
    /* avatarctl's getopt stops at the first operand: take it and go on */
    for ( ;; ) {
        c = getopt_long(argc, argv, ":d:k:c:jh", opts, NULL);
        if (c == -1) {
            if (optind >= argc) {
                break;
            }
            nf = realloc(files, (nfiles + 1) * sizeof(*files));
            if (nf == NULL) {
                rc = CTL_EFAIL;
                goto done;
            }
            files = nf;
            files[nfiles++] = argv[optind++];
            continue;
        }
        switch (c) {
        case 'd':
            if (ctl_stt_domain(optarg, &domain, &dlen) != 0) {
                rc = CTL_EFAIL;
                goto done;
            }
            break;
        case 'k':
            key = optarg;
            break;
        case 'c':
            if (ctl_stt_config(cfg, optarg) != AVC_OK) {
                rc = ctl_usage(&ctl_cmd_stt, "--config takes KEY=VALUE");
                goto done;
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            rc = ctl_help(&ctl_cmd_stt);
            goto done;
        default:
            rc = ctl_bad_option(&ctl_cmd_stt, c, argv);
            goto done;
        }
    }
    if (nfiles == 0) {
        rc = ctl_usage(&ctl_cmd_stt, "give at least one audio file");
        goto done;
    }
    /* a batch tool may wait longer than a live turn */
    if (avc_config_get(cfg, "stt.timeout", NULL) == NULL) {
        avc_config_set(cfg, "stt.timeout", "300000");
    }
    loop = avc_loop_new(0);
    http = loop ? avc_http_new(loop) : NULL;
    if (http == NULL) {
        ctl_err("cannot make the event loop");
        rc = CTL_EFAIL;
        goto done;
    }
    stt = avc_stt_new(loop, http, cfg, &err);
    if (stt == NULL) {
        ctl_err("speech-to-text: %s", avc_strerror(err));
        rc = CTL_EUSAGE;
        goto done;
    }
    for (i = 0; i < nfiles; i++) {
        audio = ctl_stt_read(files[i], STT_FILE_MAX, &len);
        if (audio == NULL || len == 0) {
            free(audio);
            rc = CTL_EFAIL;
            continue;
        }
        memset(&req, 0, sizeof(req));
        req.audio = audio;
        req.len = len;
        req.format = avc_audio_detect(audio, len, 1);
        if (domain) {
            req.domain_key = key;
            req.domain_text = avc_stt_has_domain(stt, key) ? NULL : domain;
        }
        memset(&h, 0, sizeof(h));
        t0 = ctl_stt_now();
        err = avc_stt_transcribe(stt, &req, ctl_stt_done, &h, NULL);
        if (err != AVC_OK) {
            h.err = err;
        } else {
            while (!h.done) {
                avc_loop_run_once(loop, -1);
            }
        }
        ctl_stt_print(files[i], &h, ctl_stt_now() - t0, json);
        fflush(stdout);
        if (h.err != AVC_OK) {
            rc = CTL_EFAIL;
        }
        free(h.text);
        free(h.words);
        free(h.error);
        free(audio);
    }

done:
    avc_stt_free(stt);
    avc_http_free(http);
    avc_loop_free(loop);
    avc_config_free(cfg);
    free(domain);
    free(files);
    return rc;
}
