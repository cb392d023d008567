/*
 * The sentence segmenter (avc_segmenter_*): where sentences end and
 * where they do not (numbers, money, abbreviations, initials, ellipses,
 * list items, line breaks, long sentences), and the streaming property:
 * the sentences are the same whether the text is pushed whole, a byte at
 * a time, or in pieces of random sizes.
 *
 *   build/t/test_segment
 */
#include "tap.h"

#include <avatarcore/speech.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXS 64

typedef struct {
    char *s[MAXS];
    size_t n;
    int overflow;
} sents_t;

static void
sents_add(sents_t *o, char *s)
{
    if (o->n < MAXS) {
        o->s[o->n++] = s;
    } else {
        o->overflow = 1;
        free(s);
    }
}

static void
sents_free(sents_t *o)
{
    size_t i;

    for (i = 0; i < o->n; i++) {
        free(o->s[i]);
    }
    o->n = 0;
}

/* push text in pieces of the sizes step() gives, draining each time */
static void
segment(const char *text, size_t (*step)(size_t), sents_t *o)
{
    avc_segmenter_t *seg = avc_segmenter_new();
    size_t len = strlen(text), off = 0, n;
    char *s;

    memset(o, 0, sizeof(*o));
    while (off < len) {
        n = step(off);
        if (n > len - off) {
            n = len - off;
        }
        s = avc_segmenter_push(seg, text + off, n);
        while (s) {
            sents_add(o, s);
            s = avc_segmenter_push(seg, NULL, 0);
        }
        off += n;
    }
    while ((s = avc_segmenter_flush(seg)) != NULL) {
        sents_add(o, s);
    }
    avc_segmenter_free(seg);
}

static size_t
step_whole(size_t off)
{
    return (size_t) -1;
}

static size_t
step_one(size_t off)
{
    return 1;
}

static unsigned rnd_state = 12345;

static size_t
step_random(size_t off)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return 1 + (rnd_state >> 16) % 9;
}

static size_t
step_two(size_t off)
{
    return 2;
}

/*
 * Segment text and compare with the expected sentences, given as one
 * string with " | " between them.
 */
static void
expect(const char *text, const char *want)
{
    char *w = strdup(want), *p, *q, name[200];
    sents_t got;
    size_t i = 0;
    int ok = 1;

    segment(text, step_whole, &got);
    for (p = *w ? w : NULL; ok && p; p = q) {
        q = strstr(p, " | ");
        if (q) {
            *q = '\0';
            q += 3;
        }
        ok = i < got.n && strcmp(got.s[i], p) == 0;
        i++;
    }
    ok = ok && i == got.n;
    for (i = 0, p = name; text[i] && p < name + sizeof(name) - 3; i++) {
        if (text[i] == '\n' || text[i] == '\r') {
            *p++ = '\\';
            *p++ = text[i] == '\n' ? 'n' : 'r';
        } else {
            *p++ = text[i];
        }
    }
    *p = '\0';
    if (!TAP_OK(ok, "segment: %s", name)) {
        printf("#   want: %s\n", want);
        for (i = 0; i < got.n; i++) {
            printf("#   got[%zu]: '%s'\n", i, got.s[i]);
        }
    }
    sents_free(&got);
    free(w);
}

static void
test_cases(void)
{
    expect("Hello there. How are you? I am fine!",
           "Hello there. | How are you? | I am fine!");
    expect("The payment is $1.50 a day. That is cheap.",
           "The payment is $1.50 a day. | That is cheap.");
    expect("Your APR 5.9% is low. Rates were 5.9% last year.",
           "Your APR 5.9% is low. | Rates were 5.9% last year.");
    expect("We offer 3.5 years. 2 plans exist.",
           "We offer 3.5 years. | 2 plans exist.");
    expect("Mr. Smith and Mrs. Jones met Ms. Lee and Dr. Brown on "
           "St. Charles Ave. today.",
           "Mr. Smith and Mrs. Jones met Ms. Lee and Dr. Brown on "
           "St. Charles Ave. today.");
    expect("John Smith Jr. Was here. Bob Sr. The elder arrived.",
           "John Smith Jr. Was here. | Bob Sr. | The elder arrived.");
    expect("GAP vs. VSC is a common question. Ask about both.",
           "GAP vs. VSC is a common question. | Ask about both.");
    expect("We sell GAP, tires, etc. The customer decides.",
           "We sell GAP, tires, etc. | The customer decides.");
    expect("Products, e.g. GAP or VSC, help. Add-ons, i.e. Extras, too.",
           "Products, e.g. GAP or VSC, help. | Add-ons, i.e. Extras, too.");
    expect("Made in the U.S. Cars are popular. Made in the U.S. We "
           "build them.",
           "Made in the U.S. Cars are popular. | Made in the U.S. | We "
           "build them.");
    expect("Come at 9 a.m. Tomorrow works. Leave by 5 p.m. Then rest.",
           "Come at 9 a.m. Tomorrow works. | Leave by 5 p.m. | "
           "Then rest.");
    expect("See form No. 3 for details. No. That is wrong.",
           "See form No. 3 for details. | No. | That is wrong.");
    expect("Acme Inc. Sells cars. Acme Inc. It sells cars.",
           "Acme Inc. Sells cars. | Acme Inc. | It sells cars.");
    expect("It costs approx. 500 dollars. Fine.",
           "It costs approx. 500 dollars. | Fine.");
    expect("J. R. R. Tolkien wrote books. John F. Kennedy spoke.",
           "J. R. R. Tolkien wrote books. | John F. Kennedy spoke.");
    expect("Well... I think so. Sure.",
           "Well... I think so. | Sure.");
    expect("I was going to mention the warranty... But never mind.",
           "I was going to mention the warranty... | But never mind.");
    expect("The warranty covers a lot\xe2\x80\xa6 Like engines.",
           "The warranty covers a lot\xe2\x80\xa6 | Like engines.");
    expect("It covers... engines and more. Good.",
           "It covers... engines and more. | Good.");
    expect("He said \"Stop.\" Then he left.",
           "He said \"Stop.\" | Then he left.");
    expect("(This is covered.) The rest is not.",
           "(This is covered.) | The rest is not.");
    expect("Is it covered?! Yes.", "Is it covered?! | Yes.");
    expect("Really? yes, really.", "Really? yes, really.");
    expect("Visit example.com. Then call.",
           "Visit example.com. | Then call.");
    expect("Price: $20.\n\"Quoted\" start.",
           "Price: $20. | \"Quoted\" start.");
    expect("Options:\n- GAP insurance\n- Vehicle service contract\n"
           "- Tire and wheel",
           "Options: | - GAP insurance | - Vehicle service contract | "
           "- Tire and wheel");
    expect("Steps:\n1. Greet the customer.\n2. Present the menu.\n"
           "3. Close.",
           "Steps: | 1. Greet the customer. | 2. Present the menu. | "
           "3. Close.");
    expect("A. First option. B. Second option.",
           "A. First option. | B. Second option.");
    expect("  \n  Leading space. Trailing space.   \n\n  ",
           "Leading space. | Trailing space.");
    expect("No ending punctuation", "No ending punctuation");
    expect("Line one\r\nLine two", "Line one | Line two");
    expect("He paid $1,500. 2 years later he paid again.",
           "He paid $1,500. | 2 years later he paid again.");
    expect("Je suis \xc3\xa0 Paris. \xc3\x89t\xc3\xa9 arrive.",
           "Je suis \xc3\xa0 Paris. | \xc3\x89t\xc3\xa9 arrive.");
    expect("Ends with a quote.\xe2\x80\x9d \xe2\x80\x9cNew one.\xe2\x80\x9d",
           "Ends with a quote.\xe2\x80\x9d | \xe2\x80\x9cNew one."
           "\xe2\x80\x9d");
    expect("", "");
}

static void
test_empty(void)
{
    avc_segmenter_t *seg = avc_segmenter_new();
    char *s;

    TAP_OK(seg != NULL, "new");
    TAP_OK(avc_segmenter_push(seg, NULL, 0) == NULL, "push nothing");
    TAP_OK(avc_segmenter_flush(seg) == NULL, "flush of nothing is NULL");
    TAP_OK(avc_segmenter_push(seg, "  \n ", 4) == NULL, "blank");
    TAP_OK(avc_segmenter_flush(seg) == NULL, "flush of blank is NULL");
    s = avc_segmenter_push(seg, "1. One.", 7);
    TAP_OK(s == NULL, "nothing complete before the end");
    s = avc_segmenter_flush(seg);
    TAP_STR(s, "1. One.", "a list item after a flush starts a line");
    free(s);
    TAP_OK(avc_segmenter_push(NULL, "x", 1) == NULL
           && avc_segmenter_flush(NULL) == NULL, "NULL segmenter");
    avc_segmenter_free(seg);
    avc_segmenter_free(NULL);
}

/* one sentence of 600 bytes with commas: cut early */
static void
test_long(void)
{
    char text[2600];
    sents_t got;
    size_t i, n = 0;
    int ok = 1;

    text[0] = '\0';
    while (strlen(text) < 600) {
        strcat(text, "and the customer wanted more coverage, ");
    }
    strcat(text, "the end.");
    segment(text, step_whole, &got);
    TAP_OK(got.n >= 2, "long: a long sentence is cut (%zu parts)", got.n);
    ok = got.n >= 2 && strlen(got.s[0]) >= 250 && strlen(got.s[0]) < 300
         && got.s[0][strlen(got.s[0]) - 1] == ',';
    TAP_OK(ok, "long: the first cut is at a comma after 250 bytes (%zu)",
           got.n ? strlen(got.s[0]) : 0);
    for (i = 0; i < got.n; i++) {
        n += strlen(got.s[i]);
    }
    TAP_OK(n + got.n - 1 == strlen(text) - 1
           || n + got.n - 1 == strlen(text), "long: nothing lost");
    sents_free(&got);

    /* no comma at all: a space after 500 bytes, then anything at 1000 */
    text[0] = '\0';
    while (strlen(text) < 700) {
        strcat(text, "word ");
    }
    segment(text, step_whole, &got);
    TAP_OK(got.n == 2 && strlen(got.s[0]) >= 500 && strlen(got.s[0]) < 510,
           "long: without commas cut at a space after 500 bytes");
    sents_free(&got);
    memset(text, 'x', 2500);
    text[2500] = '\0';
    segment(text, step_whole, &got);
    TAP_OK(got.n == 3 && strlen(got.s[0]) == 1000,
           "long: one endless word is cut at 1000 bytes");
    (void) ok;
    sents_free(&got);
}

static const char *const corpus[] = {
    "Hello there. How are you? I am fine! The payment is $1.50 a day.",
    "Your APR 5.9% is low. Rates were 5.9% last year... Well... I think "
    "so. Mr. Smith met Dr. Brown at 9 a.m. Then they left.",
    "Made in the U.S. We build them. Acme Inc. Sells cars. Acme Inc. It "
    "sells.",
    "Options:\n- GAP insurance\n- Vehicle service contract\n\n1. Greet.\n"
    "2. Present the menu.\n3. Close the deal, etc. Thanks!",
    "He said \"Stop.\" Then he left. (This is covered.) The rest is not. "
    "J. R. R. Tolkien. John F. Kennedy spoke. No. 3 is the form. No. "
    "Wrong.",
    "I was going to mention the warranty\xe2\x80\xa6 But never mind. "
    "\xe2\x80\x9cQuoted.\xe2\x80\x9d \xc3\x89t\xc3\xa9 arrive.",
    "A long one: and the customer wanted more coverage, and the customer "
    "wanted more coverage, and the customer wanted more coverage, and the "
    "customer wanted more coverage, and the customer wanted more "
    "coverage, and the customer wanted more coverage, and the customer "
    "wanted more coverage; and the end.",
    "e.g. this, i.e. that. vs. the other. St. Louis. Ave. Maria. "
    "Really? yes. Visit example.com. Then call.\r\nDone",
    "Trailing dots...",
    "Mr.",
    "Ends with spaces.   ",
    "  ",
};

static int
same(const sents_t *a, const sents_t *b)
{
    size_t i;

    if (a->n != b->n || a->overflow || b->overflow) {
        return 0;
    }
    for (i = 0; i < a->n; i++) {
        if (strcmp(a->s[i], b->s[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* the streaming property on the corpus and on random texts */
static void
test_streaming(void)
{
    static const char *const words[] = {
        "Mr.", "Dr.", "St.", "etc.", "e.g.", "i.e.", "U.S.", "a.m.",
        "p.m.", "No.", "Inc.", "approx.", "$1.50", "5.9%", "APR", "...",
        "\xe2\x80\xa6", "The", "We", "it", "car", "GAP", "warranty", "J.",
        "\"Yes.\"", "(ok.)", "?", "!", ".", ",", "\n", "\n- ", "\n1. ",
        "3.", "I", "Then", "price", "\xc3\x89t\xc3\xa9", "x", "  "
    };
    sents_t whole, one, rnd, two;
    char text[4096];
    size_t i, k, bad = 0, total = 0;
    unsigned r = 7;

    for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        segment(corpus[i], step_whole, &whole);
        segment(corpus[i], step_one, &one);
        segment(corpus[i], step_random, &rnd);
        segment(corpus[i], step_two, &two);
        TAP_OK(same(&whole, &one) && same(&whole, &rnd)
               && same(&whole, &two),
               "streaming: corpus %zu gives the same %zu sentences in "
               "any pieces", i, whole.n);
        sents_free(&whole);
        sents_free(&one);
        sents_free(&rnd);
        sents_free(&two);
    }
    for (i = 0; i < 500; i++) {
        text[0] = '\0';
        for (k = 0; k < 60; k++) {
            r = r * 1103515245u + 12345u;
            strcat(text, words[(r >> 16) % (sizeof(words)
                                             / sizeof(words[0]))]);
            r = r * 1103515245u + 12345u;
            if ((r >> 16) % 4) {
                strcat(text, " ");
            }
        }
        segment(text, step_whole, &whole);
        segment(text, step_one, &one);
        segment(text, step_random, &rnd);
        total += whole.n;
        if (!same(&whole, &one) || !same(&whole, &rnd)) {
            if (bad++ == 0) {
                printf("# differs: '%s'\n", text);
            }
        }
        sents_free(&whole);
        sents_free(&one);
        sents_free(&rnd);
    }
    TAP_IS(bad, 0, "streaming: 500 random texts (%zu sentences) give the "
           "same sentences whole, a byte at a time and in random pieces",
           total);
}

int
main(void)
{
    test_empty();
    test_cases();
    test_long();
    test_streaming();
    return tap_done();
}
