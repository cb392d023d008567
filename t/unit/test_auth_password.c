/*
 * Passwords: bcrypt hash and verify, the policy of API.md, generation.
 * Most hashes use cost 4 so that the test stays fast under valgrind; one
 * checks the real cost 12.
 */
#include "tap.h"

#include <avatarcore/auth.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
test_policy(void)
{
    static const struct {
        const char *pw;
        int ok;
        const char *why;
    } cases[] = {
        { "Str0ng!pw", 1, NULL },
        { "Aa1!aaaa", 1, NULL },                        /* exactly 8 */
        { "Aa1!aaa", 0, "at least 8" },
        { "alllower1!", 0, "uppercase" },
        { "ALLUPPER1!", 0, "lowercase" },
        { "NoDigits!!", 0, "digit" },
        { "NoSpecial12", 0, "special" },
        { "With Space1", 0, "special" },                /* space is not */
        { "Ctrl\tChar1!", 0, "control" },
        { "Umlaut\xc3\xa4" "A1", 1, NULL },             /* non-ASCII special */
        { "Bad\xc3(UTF8a1!", 0, "UTF-8" },
    };
    char buf[256];
    const char *why;
    size_t i;
    int rc;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        rc = avc_password_policy(cases[i].pw, &why);
        if (cases[i].ok) {
            TAP_OK(rc == AVC_OK && why == NULL, "policy accepts case %zu", i);
        } else {
            TAP_OK(rc == AVC_EINVAL && why && strstr(why, cases[i].why),
                   "policy refuses case %zu: %s", i, why ? why : "(none)");
        }
    }
    TAP_IS(avc_password_policy(NULL, &why), AVC_EINVAL, "NULL refused");

    /* 72 bytes is the most bcrypt reads */
    memset(buf, 'a', 72);
    memcpy(buf, "A1!", 3);
    buf[72] = '\0';
    TAP_IS(avc_password_policy(buf, NULL), AVC_OK, "72 bytes accepted");
    buf[72] = 'a';
    buf[73] = '\0';
    why = NULL;
    TAP_IS(avc_password_policy(buf, &why), AVC_EINVAL, "73 bytes refused");
    TAP_OK(why && strstr(why, "72 bytes"), "why: %s", why ? why : "");
    memset(buf, 'a', 101);
    memcpy(buf, "A1!", 3);
    buf[101] = '\0';
    avc_password_policy(buf, &why);
    TAP_OK(why && strstr(why, "100 characters"), "101 chars: %s",
           why ? why : "");
    /* 40 two-byte characters: 40 characters but 80 bytes */
    buf[0] = '\0';
    strcat(buf, "Aa1!");
    for (i = 0; i < 36; i++) {
        strcat(buf, "\xc3\xa9");
    }
    avc_password_policy(buf, &why);
    TAP_OK(why && strstr(why, "72 bytes"), "few characters, many bytes: %s",
           why ? why : "");
}

static void
test_hash(void)
{
    char *h = NULL, *h2 = NULL;
    char long_pw[80];
    struct timespec a, b;
    double ms;

    TAP_IS(avc_password_hash_cost("Str0ng!pw", 4, &h), AVC_OK, "hash");
    TAP_OK(h && strncmp(h, "$2b$04$", 7) == 0 && strlen(h) == 60,
           "bcrypt $2b$ format: %s", h ? h : "");
    TAP_IS(avc_password_verify("Str0ng!pw", h), AVC_OK, "verify right");
    TAP_IS(avc_password_verify("Str0ng!pX", h), AVC_EAUTH, "verify wrong");
    TAP_IS(avc_password_verify("", h), AVC_EAUTH, "verify empty");
    TAP_IS(avc_password_hash_cost("Str0ng!pw", 4, &h2), AVC_OK,
           "hash again");
    TAP_OK(h && h2 && strcmp(h, h2) != 0, "fresh salt each time");
    free(h2);

    memset(long_pw, 'x', 73);
    long_pw[73] = '\0';
    h2 = (char *) 1;
    TAP_IS(avc_password_hash_cost(long_pw, 4, &h2), AVC_ETOOBIG,
           "hash of 73 bytes refused, not truncated");
    TAP_OK(h2 == NULL, "no output on error");
    TAP_IS(avc_password_verify(long_pw, h), AVC_EAUTH,
           "verify of 73 bytes: no match");
    TAP_IS(avc_password_hash_cost("", 4, &h2), AVC_EINVAL, "empty refused");
    TAP_IS(avc_password_hash_cost("x", 3, &h2), AVC_EINVAL, "cost 3 refused");
    TAP_IS(avc_password_verify("x", "$1$abc$def"), AVC_EINVAL,
           "non-bcrypt hash refused");
    TAP_IS(avc_password_verify("x", "plain"), AVC_EINVAL, "garbage refused");
    free(h);

    /* a $2a$ hash from another implementation (passlib) still verifies */
    TAP_IS(avc_password_verify("password",
           "$2a$04$RQeUq3pyhW5vyrEr.o1LbuSIkKtCHgYXh7Cpkln6ERquLHg.0OXWO"),
           AVC_OK, "$2a$ hash verifies");

    clock_gettime(CLOCK_MONOTONIC, &a);
    TAP_IS(avc_password_hash("Str0ng!pw", &h), AVC_OK, "hash at cost 12");
    clock_gettime(CLOCK_MONOTONIC, &b);
    ms = (double) (b.tv_sec - a.tv_sec) * 1000
         + (double) (b.tv_nsec - a.tv_nsec) / 1e6;
    TAP_OK(h && strncmp(h, "$2b$12$", 7) == 0, "cost 12 prefix");
    tap_diag("cost 12 hash took %.0f ms", ms);
    TAP_IS(avc_password_verify("Str0ng!pw", h), AVC_OK, "cost 12 verifies");
    free(h);

    TAP_IS(avc_password_verify("anything at all 1A!",
                               avc_password_dummy_hash()), AVC_EAUTH,
           "dummy hash is valid bcrypt and matches nothing usual");
    TAP_OK(strncmp(avc_password_dummy_hash(), "$2b$12$", 7) == 0,
           "dummy hash has the real cost");
}

static void
test_generate(void)
{
    char pw[101], prev[101];
    int i, ok = 1, distinct = 1;

    prev[0] = '\0';
    for (i = 0; i < 200; i++) {
        if (avc_password_generate(pw, 12 + (size_t) (i % 61)) != AVC_OK
            || strlen(pw) != 12 + (size_t) (i % 61)
            || avc_password_policy(pw, NULL) != AVC_OK
            || strpbrk(pw, "$`'\"\\ !&|;<>()*?[]{}#~%+@/") != NULL
            || pw[0] == '-')
        {
            ok = 0;
            tap_diag("bad generated password: %s", pw);
        }
        if (strcmp(pw, prev) == 0) {
            distinct = 0;
        }
        memcpy(prev, pw, sizeof(pw));
    }
    TAP_OK(ok, "200 generated passwords satisfy the policy, shell-safe");
    TAP_OK(distinct, "and differ");
    TAP_IS(avc_password_generate(pw, 11), AVC_EINVAL, "too short refused");
    TAP_IS(avc_password_generate(pw, 73), AVC_EINVAL, "over 72 refused");
}

int
main(void)
{
    test_policy();
    test_hash();
    test_generate();
    return tap_done();
}
