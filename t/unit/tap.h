/*
 * A minimal TAP producer for the core's unit tests.  Each test binary is
 * run by prove(1); each check prints "ok N - name" or "not ok N - name".
 *
 *   TAP_OK(cond, "name");  TAP_IS(got, want, "name");  return tap_done();
 */
#ifndef AVC_TAP_H
#define AVC_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static int
tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s line %d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define TAP_OK(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define TAP_IS(got, want, ...) do {                                         \
    long long tap_g_ = (long long) (got), tap_w_ = (long long) (want);      \
    if (!TAP_OK(tap_g_ == tap_w_, __VA_ARGS__)) {                           \
        printf("#   got %lld, want %lld\n", tap_g_, tap_w_);                \
    }                                                                       \
} while (0)

#define TAP_STR(got, want, ...) do {                                        \
    const char *tap_g_ = (got), *tap_w_ = (want);                           \
    if (!TAP_OK(tap_g_ && tap_w_ && strcmp(tap_g_, tap_w_) == 0,            \
                __VA_ARGS__)) {                                             \
        printf("#   got '%s', want '%s'\n", tap_g_ ? tap_g_ : "(null)",     \
               tap_w_ ? tap_w_ : "(null)");                                 \
    }                                                                       \
} while (0)

static __attribute__((unused)) void
tap_diag(const char *fmt, ...)
{
    va_list ap;

    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/*
 * Sections: a test binary given names on its command line runs only the
 * parts of those names (tap_section), all of them without any.
 */
static char **tap_sel;
static int tap_nsel;

static __attribute__((unused)) void
tap_select(int argc, char **argv)
{
    tap_sel = argv + 1;
    tap_nsel = argc - 1;
}

static __attribute__((unused)) int
tap_section(const char *name)
{
    int i;

    for (i = 0; i < tap_nsel; i++) {
        if (strcmp(tap_sel[i], name) == 0) {
            return 1;
        }
    }
    return tap_nsel == 0;
}

static int
tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif /* AVC_TAP_H */
