/*
 * The table of provider settings a host may pass to the core, and their
 * validation.  Hosts call avc_setting_check() at configuration time so
 * that a bad value is refused before anything starts.
 */
#include "internal.h"

#include <avatarcore/app.h>

#include <stdlib.h>
#include <string.h>

typedef enum {
    AVC_SET_TEXT,
    AVC_SET_URL,
    AVC_SET_SECRET,
    AVC_SET_UINT,
    AVC_SET_FLAG,
    AVC_SET_PATH,
    AVC_SET_ENUM,               /* one of the words in "values" */
    AVC_SET_MSEC,               /* milliseconds, 0 allowed */
    AVC_SET_NUMBER,             /* a number in [min, max] ("min max") */
    AVC_SET_INTEGER             /* an integer in [min, max] ("min max") */
} avc_set_kind_t;

typedef struct {
    const char *concern;
    const char *providers;      /* space-separated, first is the default */
    const char *key;
    avc_set_kind_t kind;
    const char *values;
} avc_setting_t;

static const avc_setting_t avc_settings[] = {
    { "auth", NULL, "signup", AVC_SET_ENUM, "off invite open" },
    { "app", NULL, "public_url", AVC_SET_URL, NULL },
    { "rag", NULL, "ingest", AVC_SET_ENUM, "on off" },
    { "rag", NULL, "upload_wait", AVC_SET_MSEC, NULL },
    { "rag", NULL, "max_file_size", AVC_SET_UINT, NULL },
    { "chat", NULL, "scenarios", AVC_SET_PATH, NULL },
    { "chat", NULL, "history_turns", AVC_SET_UINT, NULL },
    { "prompts", NULL, "dir", AVC_SET_PATH, NULL },
    { "cache", NULL, "semantic", AVC_SET_ENUM, "on off" },
    { "cache", NULL, "semantic_threshold", AVC_SET_NUMBER,
      "0.01 1" },
    { "llm", "offline openrouter openai local", "base_url", AVC_SET_URL,
      NULL },
    { "llm", NULL, "model", AVC_SET_TEXT, NULL },
    { "llm", NULL, "fallback_models", AVC_SET_TEXT, NULL },
    { "llm", NULL, "key", AVC_SET_SECRET, NULL },
    { "llm", NULL, "max_tokens", AVC_SET_UINT, NULL },
    { "llm", NULL, "timeout", AVC_SET_UINT, NULL },
    { "llm", NULL, "connect_timeout", AVC_SET_UINT, NULL },
    { "llm", NULL, "first_token_timeout", AVC_SET_UINT, NULL },
    { "llm", NULL, "retries", AVC_SET_UINT, NULL },
    { "llm", NULL, "backoff", AVC_SET_MSEC, NULL },
    { "llm", NULL, "offline_pace", AVC_SET_MSEC, NULL },
    { "llm", NULL, "temperature", AVC_SET_NUMBER, "0 2" },
    { "llm", NULL, "context_window", AVC_SET_UINT, NULL },
    { "embeddings", "local openai", "base_url", AVC_SET_URL, NULL },
    { "embeddings", NULL, "model", AVC_SET_TEXT, NULL },
    { "embeddings", NULL, "dimensions", AVC_SET_UINT, NULL },
    { "embeddings", NULL, "key", AVC_SET_SECRET, NULL },
    { "vector_store", "postgres pinecone", "host", AVC_SET_URL, NULL },
    { "vector_store", NULL, "index", AVC_SET_TEXT, NULL },
    { "vector_store", NULL, "key", AVC_SET_SECRET, NULL },
    { "vector_store", NULL, "api_version", AVC_SET_TEXT, NULL },
    { "vector_store", NULL, "timeout", AVC_SET_UINT, NULL },
    { "vector_store", NULL, "query_timeout", AVC_SET_UINT, NULL },
    { "vector_store", NULL, "attempts", AVC_SET_UINT, NULL },
    { "vector_store", NULL, "backoff", AVC_SET_MSEC, NULL },
    { "stt", "pocketsphinx openai", "base_url", AVC_SET_URL, NULL },
    { "stt", NULL, "model", AVC_SET_TEXT, NULL },
    { "stt", NULL, "key", AVC_SET_SECRET, NULL },
    { "stt", NULL, "language", AVC_SET_TEXT, NULL },
    { "stt", NULL, "timeout", AVC_SET_UINT, NULL },
    { "stt", NULL, "retries", AVC_SET_UINT, NULL },
    { "stt", NULL, "backoff", AVC_SET_MSEC, NULL },
    { "stt", NULL, "hmm", AVC_SET_PATH, NULL },
    { "stt", NULL, "dict", AVC_SET_PATH, NULL },
    { "tts", "espeak elevenlabs", "base_url", AVC_SET_URL, NULL },
    { "tts", NULL, "voice", AVC_SET_TEXT, NULL },
    { "tts", NULL, "model", AVC_SET_TEXT, NULL },
    { "tts", NULL, "key", AVC_SET_SECRET, NULL },
    { "tts", NULL, "timeout", AVC_SET_UINT, NULL },
    { "tts", NULL, "first_byte_timeout", AVC_SET_UINT, NULL },
    { "tts", NULL, "rate", AVC_SET_NUMBER, "80 450" },
    { "tts", NULL, "connect_timeout", AVC_SET_UINT, NULL },
    { "tts", NULL, "retries", AVC_SET_UINT, NULL },
    { "tts", NULL, "backoff", AVC_SET_MSEC, NULL },
    { "avatar", "builtin heygen", "base_url", AVC_SET_URL, NULL },
    { "avatar", NULL, "avatar_id", AVC_SET_TEXT, NULL },
    { "avatar", NULL, "sandbox", AVC_SET_FLAG, NULL },
    { "avatar", NULL, "key", AVC_SET_SECRET, NULL },
    { "avatar", NULL, "timeout", AVC_SET_UINT, NULL },
    { "avatar", NULL, "voices", AVC_SET_TEXT, NULL },
    /* the same ranges as avc_app_new(), so that nginx -t refuses */
    { "voice", NULL, "end_silence", AVC_SET_INTEGER, "100 5000" },
    { "voice", NULL, "max_turn", AVC_SET_INTEGER, "1000 600000" },
    { "voice", NULL, "spoken_max_tokens", AVC_SET_INTEGER, "20 4000" },
    { "mail", "outbox mailgun smtp", "dir", AVC_SET_PATH, NULL },
    { "mail", NULL, "domain", AVC_SET_TEXT, NULL },
    { "mail", NULL, "base_url", AVC_SET_URL, NULL },
    { "mail", NULL, "key", AVC_SET_SECRET, NULL },
    { "mail", NULL, "url", AVC_SET_URL, NULL },
    { "mail", NULL, "user", AVC_SET_TEXT, NULL },
    { "mail", NULL, "password", AVC_SET_SECRET, NULL },
    { "mail", NULL, "from", AVC_SET_TEXT, NULL },
    { "mail", NULL, "recipients", AVC_SET_TEXT, NULL },
    { "mail", NULL, "templates", AVC_SET_PATH, NULL },
    { "mail", NULL, "starttls", AVC_SET_ENUM, "try require off" },
    { "mail", NULL, "timeout", AVC_SET_UINT, NULL },
    { "mail", NULL, "attempts", AVC_SET_UINT, NULL },
    { "mail", NULL, "backoff", AVC_SET_UINT, NULL },
};

static const char *
avc_providers_of(const char *concern, size_t n)
{
    size_t i;

    for (i = 0; i < avc__countof(avc_settings); i++) {
        if (avc_settings[i].providers
            && strlen(avc_settings[i].concern) == n
            && strncmp(avc_settings[i].concern, concern, n) == 0)
        {
            return avc_settings[i].providers;
        }
    }
    return NULL;
}

static int
avc_word_in(const char *word, const char *list)
{
    size_t n = strlen(word);
    const char *p = list;

    while ((p = strstr(p, word)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) {
            return 1;
        }
        p += n;
    }
    return 0;
}

AVC_API const char *
avc_setting_check(const char *key, const char *value, int *secret)
{
    const char *dot = strchr(key, '.'), *providers, *name;
    size_t i, n;
    char *end, *end2;
    unsigned long v;

    *secret = 0;
    if (dot == NULL) {
        return "unknown setting";
    }
    n = (size_t) (dot - key);
    providers = avc_providers_of(key, n);
    name = dot + 1;
    if (strcmp(name, "provider") == 0) {
        if (providers == NULL) {
            return "unknown setting";
        }
        return avc_word_in(value, providers) ? NULL : "unknown provider";
    }
    for (i = 0; i < avc__countof(avc_settings); i++) {
        const avc_setting_t *s = &avc_settings[i];

        if (strlen(s->concern) != n || strncmp(s->concern, key, n) != 0
            || strcmp(s->key, name) != 0)
        {
            continue;
        }
        if (*value == '\0') {
            return "empty value";
        }
        switch (s->kind) {
        case AVC_SET_URL:
            if (strncmp(value, "http://", 7) != 0
                && strncmp(value, "https://", 8) != 0
                && strncmp(value, "smtp://", 7) != 0
                && strncmp(value, "smtps://", 8) != 0)
            {
                return "not an http(s) or smtp(s) URL";
            }
            return NULL;
        case AVC_SET_SECRET:
            *secret = 1;
            if (strncmp(value, "env:", 4) != 0
                && strncmp(value, "file:", 5) != 0)
            {
                return "a secret is given as \"env:NAME\" or \"file:/path\","
                       " never in the configuration text";
            }
            return NULL;
        case AVC_SET_UINT:
            v = strtoul(value, &end, 10);
            if (*end != '\0' || v == 0 || v > 1000000000UL) {
                return "not a positive integer";
            }
            return NULL;
        case AVC_SET_FLAG:
            if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0) {
                return "not \"on\" or \"off\"";
            }
            return NULL;
        case AVC_SET_PATH:
            return value[0] == '/' ? NULL : "not an absolute path";
        case AVC_SET_MSEC:
            v = strtoul(value, &end, 10);
            if (end == value || *end != '\0' || v > 3600000UL) {
                return "not a number of milliseconds up to 3600000";
            }
            return NULL;
        case AVC_SET_NUMBER:
        case AVC_SET_INTEGER: {
            double d = strtod(value, &end), lo, hi;

            lo = strtod(s->values, &end2);
            hi = strtod(end2, NULL);
            if (end == value || *end != '\0' || !(d >= lo && d <= hi)) {
                return "a number out of range";
            }
            if (s->kind == AVC_SET_INTEGER
                && strspn(value, "0123456789") != strlen(value))
            {
                return "not a whole number";
            }
            return NULL;
        }
        case AVC_SET_ENUM:
            return avc_word_in(value, s->values) ? NULL : "not one of the "
                   "allowed values";
        default:
            return NULL;
        }
    }
    return "unknown setting";
}
