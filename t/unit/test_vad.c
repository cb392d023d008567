/*
 * Voice activity detection on real speech: two espeak-ng utterances with
 * a second of silence between them, at 8, 16, 32 and 48 kHz (sox), the
 * segments compared with the truth measured from the signal's energy;
 * silence, low white noise, 50 Hz hum and clicks that must not start
 * speech; speech under noise and hum; end_ms; aggressiveness; feeds of
 * any size; reset; bad arguments.  espeak-ng and sox are required: the
 * test fails without them.
 *
 *   build/t/test_vad [SECTION...]     e.g. "build/t/test_vad click"
 *
 * Sections: args segments rates end quiet click mixed aggr feed reset.
 */
#include "tap.h"

#include <avatarcore/speech.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
#define SAY_A "The extended warranty covers the engine and the transmission"
#define SAY_B "Would you like to protect your new car today"
#define MAXSEG 16
/* how far a segment edge may be from the truth, ms */
#define TOL_MS 60

static char dir[] = "/tmp/avc-test-vad-XXXXXX";

static char *
path(const char *name)
{
    static char buf[16][512];
    static int k;

    k = (k + 1) % 16;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static int
run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc != 0) {
        tap_diag("command failed (%d): %s", rc, cmd);
    }
    return rc == 0;
}

/* A signal: mono s16 at rate. */
typedef struct {
    int16_t *s;
    size_t n;
    unsigned rate;
} sig_t;

/* Raw mono s16le at rate from sox: "in" is a file or "-n" for synth. */
static sig_t
sox_sig(const char *in, const char *effects, unsigned rate)
{
    sig_t g = { NULL, 0, rate };
    unsigned char *b = NULL;
    size_t len = 0, i;
    long sz;
    FILE *f;

    /* -R: the same "random" noise on every run */
    if (!run("sox -R %s -r %u -c 1 -b 16 -e signed -t raw '%s' %s", in, rate,
             path("sig.raw"), effects))
    {
        return g;
    }
    f = fopen(path("sig.raw"), "rb");
    if (f == NULL) {
        return g;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0
        && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t) sz + 2)))
    {
        len = fread(b, 1, (size_t) sz, f);
    }
    fclose(f);
    g.s = malloc(len + 2);
    for (i = 0; g.s && b && i < len / 2; i++) {
        g.s[i] = (int16_t) (b[2 * i] | b[2 * i + 1] << 8);
    }
    g.n = g.s ? len / 2 : 0;
    free(b);
    return g;
}

static sig_t
sox_file(const char *file, unsigned rate)
{
    char in[600];

    snprintf(in, sizeof(in), "'%s'", file);
    return sox_sig(in, "", rate);
}

static sig_t
silence(unsigned rate, unsigned ms)
{
    sig_t g = { calloc((size_t) rate * ms / 1000 + 1, 2),
                (size_t) rate * ms / 1000, rate };

    return g;
}

/* a + b (+ c), one after the other */
static sig_t
concat(sig_t a, sig_t b, sig_t c)
{
    sig_t g = { malloc((a.n + b.n + c.n + 1) * 2), a.n + b.n + c.n, a.rate };

    if (g.s != NULL) {
        memcpy(g.s, a.s, a.n * 2);
        memcpy(g.s + a.n, b.s, b.n * 2);
        memcpy(g.s + a.n + b.n, c.s, c.n * 2);
    }
    return g;
}

/* a with b added (as long as a; b repeats) */
static sig_t
mix(sig_t a, sig_t b)
{
    sig_t g = { malloc((a.n + 1) * 2), a.n, a.rate };
    size_t i;
    int v;

    for (i = 0; g.s && b.n && i < a.n; i++) {
        v = a.s[i] + b.s[i % b.n];
        g.s[i] = (int16_t) (v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
    return g;
}

/*
 * The truth: runs of 10 ms frames above -50 dBFS, joined across gaps under
 * 300 ms; start of the first frame to end of the last, in ms.
 */
static int
truth(sig_t g, double *start, double *end)
{
    size_t f = g.rate / 100, i, nf = g.n / f;
    int n = 0, in = 0;
    double last = -1e9, t;

    for (i = 0; i < nf; i++) {
        t = i * 10.0;
        if (avc_audio_dbfs(g.s + i * f, f) > -50) {
            if (!in || t - last > 300) {
                if (n == MAXSEG) {
                    break;
                }
                start[n++] = t;
                in = 1;
            }
            end[n - 1] = t + 10;
            last = t + 10;
        }
    }
    return n;
}

typedef struct {
    int n;                      /* segments ended */
    double start[MAXSEG];
    double end[MAXSEG];
    int starts;                 /* speech_started seen */
    double started_at[MAXSEG];
    double ended_at[MAXSEG];
    unsigned speech_feeds;      /* feeds ending in is_speech */
    double max_conf;            /* over the signal */
    unsigned feeds;             /* of the signal */
    unsigned conf_high;         /* of those, confidence over 0.5 */
    int conf_in_range;
    int duration_monotonic;
} res_t;

/* Run a detector over g in feeds of `feed` samples, then 2 s of silence. */
static int
vad_run(sig_t g, int aggr, unsigned end_ms, size_t feed, res_t *r)
{
    avc_vad_event_t ev;
    avc_vad_t *v;
    size_t off, k, total, tail = (size_t) g.rate * 2;
    int16_t *s;
    unsigned prev_dur = 0;
    double t;
    int err = 1;

    memset(r, 0, sizeof(*r));
    r->conf_in_range = r->duration_monotonic = 1;
    v = avc_vad_new(g.rate, aggr, end_ms, &err);
    if (v == NULL || err != AVC_OK) {
        return 0;
    }
    total = g.n + tail;
    s = calloc(total, 2);
    memcpy(s, g.s, g.n * 2);
    for (off = 0; off < total; off += k) {
        k = total - off < feed ? total - off : feed;
        avc_vad_feed(v, s + off, k, &ev);
        t = (off + k) * 1000.0 / g.rate;
        if (ev.confidence < 0 || ev.confidence > 1) {
            r->conf_in_range = 0;
        }
        /* the signal's own frames (its abrupt end is a click) */
        if (off + k <= g.n) {
            r->feeds++;
            r->conf_high += ev.confidence > 0.5;
            if (ev.confidence > r->max_conf) {
                r->max_conf = ev.confidence;
            }
        }
        if (ev.speech_started && r->starts < MAXSEG) {
            r->started_at[r->starts++] = t;
            prev_dur = 0;
        }
        if (ev.is_speech) {
            r->speech_feeds++;
            if (ev.duration_ms < prev_dur) {
                r->duration_monotonic = 0;
            }
            prev_dur = ev.duration_ms;
        }
        if (ev.speech_ended && r->n < MAXSEG) {
            if (ev.duration_ms < prev_dur) {
                r->duration_monotonic = 0;
            }
            r->ended_at[r->n] = t;
            r->end[r->n] = t - end_ms;
            r->start[r->n] = t - end_ms - ev.duration_ms;
            r->n++;
        }
    }
    free(s);
    avc_vad_free(v);
    return 1;
}

/* The segments of r against the truth of g. */
static void
check_segments(sig_t g, const res_t *r, double tol, const char *name)
{
    double ts[MAXSEG], te[MAXSEG];
    int n = truth(g, ts, te), i, ok;

    TAP_IS(r->n, n, "%s: %d segments", name, n);
    for (i = 0; i < n && i < r->n; i++) {
        ok = fabs(r->start[i] - ts[i]) <= tol && fabs(r->end[i] - te[i]) <= tol;
        TAP_OK(ok, "%s: segment %d %.0f-%.0f ms, truth %.0f-%.0f ms "
               "(within %.0f)", name, i + 1, r->start[i], r->end[i], ts[i],
               te[i], tol);
        TAP_OK(r->started_at[i] >= ts[i]
               && r->started_at[i] <= ts[i] + tol,
               "%s: speech_started %d at %.0f ms, %.0f ms after the onset",
               name, i + 1, r->started_at[i], r->started_at[i] - ts[i]);
    }
    TAP_OK(r->conf_in_range && r->max_conf > 0.9,
           "%s: confidence within 0-1, over 0.9 in speech (%.3f)", name,
           r->max_conf);
    TAP_OK(r->duration_monotonic, "%s: duration_ms grows through a segment",
           name);
}

/* The utterances, kept at each rate. */
static sig_t speech[4];
static const unsigned rates[4] = { 8000, 16000, 32000, 48000 };

static sig_t
speech_at(unsigned rate)
{
    size_t i;

    for (i = 0; i < COUNTOF(rates); i++) {
        if (rates[i] == rate) {
            return speech[i];
        }
    }
    return speech[1];
}

/* ------------------------------------------------------------ tests */

static void
test_args(void)
{
    static const unsigned bad[] = { 0, 11025, 22050, 44100, 96000, 16001 };
    avc_vad_event_t ev;
    avc_vad_t *v;
    int16_t half[80];
    size_t i;
    int err;

    for (i = 0; i < COUNTOF(bad); i++) {
        err = 0;
        v = avc_vad_new(bad[i], 2, 200, &err);
        TAP_OK(v == NULL && err == AVC_EINVAL, "rate %u: NULL, AVC_EINVAL",
               bad[i]);
        avc_vad_free(v);
    }
    err = 0;
    TAP_OK(avc_vad_new(16000, 4, 200, &err) == NULL && err == AVC_EINVAL,
           "aggressiveness 4: AVC_EINVAL");
    err = 0;
    TAP_OK(avc_vad_new(16000, -1, 200, &err) == NULL && err == AVC_EINVAL,
           "aggressiveness -1: AVC_EINVAL");
    TAP_OK(avc_vad_new(12345, 0, 200, NULL) == NULL, "err may be NULL");
    for (i = 0; i < COUNTOF(rates); i++) {
        err = 1;
        v = avc_vad_new(rates[i], (int) i, 200, &err);
        TAP_OK(v != NULL && err == AVC_OK, "rate %u: a detector", rates[i]);
        avc_vad_free(v);
    }
    avc_vad_free(NULL);
    TAP_OK(1, "avc_vad_free(NULL) is a no-op");

    v = avc_vad_new(16000, 2, 200, NULL);
    memset(&ev, 0x55, sizeof(ev));
    avc_vad_feed(v, NULL, 0, &ev);
    TAP_OK(!ev.is_speech && !ev.speech_started && !ev.speech_ended
           && ev.duration_ms == 0 && ev.confidence >= 0 && ev.confidence <= 1,
           "an empty feed: a quiet event");
    memset(half, 0, sizeof(half));
    avc_vad_feed(v, half, COUNTOF(half), NULL);
    TAP_OK(1, "a NULL event is allowed");
    avc_vad_feed(NULL, half, COUNTOF(half), &ev);
    TAP_OK(!ev.is_speech && !ev.speech_started, "a NULL detector: a quiet "
           "event");
    avc_vad_reset(NULL);
    avc_vad_free(v);
}

/* A, a second of silence, B at 16 kHz, every aggressiveness. */
static void
test_segments(void)
{
    sig_t g = speech_at(16000);
    char name[64];
    res_t r;
    int a;

    for (a = 0; a <= 3; a++) {
        snprintf(name, sizeof(name), "16 kHz, aggressiveness %d", a);
        if (TAP_OK(vad_run(g, a, 200, 160, &r), "%s: runs", name)) {
            check_segments(g, &r, TOL_MS, name);
        }
    }
}

static void
test_rates(void)
{
    char name[64];
    size_t i;
    res_t r;

    for (i = 0; i < COUNTOF(rates); i++) {
        snprintf(name, sizeof(name), "%u Hz, 20 ms feeds", rates[i]);
        if (TAP_OK(vad_run(speech[i], 2, 200, rates[i] / 100, &r),
                   "%s: runs", name))
        {
            check_segments(speech[i], &r, TOL_MS, name);
        }
    }
}

static void
test_end(void)
{
    static const unsigned ends[] = { 200, 300, 500, 800 };
    sig_t g = speech_at(16000);
    double ts[MAXSEG], te[MAXSEG];
    size_t i;
    int n = truth(g, ts, te), ok, k;
    res_t r;

    for (i = 0; i < COUNTOF(ends); i++) {
        vad_run(g, 1, ends[i], 160, &r);
        ok = r.n == n;
        for (k = 0; ok && k < n; k++) {
            ok = fabs(r.ended_at[k] - te[k] - ends[i]) <= TOL_MS;
        }
        TAP_OK(ok, "end_ms %u: speech_ended %u ms after each end (%.0f "
               "after %.0f)", ends[i], ends[i], r.n ? r.ended_at[0] : -1,
               te[0]);
    }
    /* the pause between the utterances is about 1.3 s */
    vad_run(g, 1, 2000, 160, &r);
    TAP_IS(r.n, 1, "end_ms 2000: one segment across the pause");
    TAP_OK(r.n == 1 && fabs(r.start[0] - ts[0]) <= TOL_MS
           && fabs(r.end[0] - te[n - 1]) <= TOL_MS,
           "... from the first onset to the last end");
    vad_run(g, 1, 0, 160, &r);
    TAP_OK(r.n >= n, "end_ms 0: speech ends at the first quiet frame (%d "
           "segments)", r.n);
}

/* Nothing that is not speech starts speech. */
static void
quiet_case(sig_t g, const char *name)
{
    res_t r;
    int a;

    for (a = 0; a <= 3; a++) {
        if (!vad_run(g, a, 200, g.rate / 100, &r)) {
            TAP_OK(0, "%s: runs", name);
            continue;
        }
        TAP_OK(r.starts == 0 && r.speech_feeds == 0,
               "%s, aggressiveness %d: no speech (%d starts)", name, a,
               r.starts);
    }
    vad_run(g, 0, 200, g.rate / 100, &r);
    TAP_OK(r.conf_high * 50 <= r.feeds, "%s: confidence stays under 0.5 "
           "(%u of %u frames over, max %.3f)", name, r.conf_high, r.feeds,
           r.max_conf);
}

static void
test_quiet(void)
{
    static const struct {
        const char *name;
        const char *sox;
    } c[] = {
        { "white noise vol 0.02", "synth 4 whitenoise vol 0.02" },
        { "white noise vol 0.003", "synth 4 whitenoise vol 0.003" },
        { "white noise vol 0.2", "synth 4 whitenoise vol 0.2" },
        { "pink noise vol 0.05", "synth 4 pinknoise vol 0.05" },
        { "50 Hz hum vol 0.5", "synth 4 sine 50 vol 0.5" },
        { "60 Hz hum vol 0.3", "synth 4 sine 60 vol 0.3" },
        { "50 Hz mains hum with harmonics",
          "synth 4 sine 50 sine 100 sine 150 sine 250 remix - vol 0.3" },
        { "1 kHz tone", "synth 4 sine 1000 vol 0.2" },
        { "white noise vol 0.02 after 1 s of digital silence",
          "synth 4 whitenoise vol 0.02 pad 1 0" },
        { "pink noise vol 0.05 after 1 s of digital silence",
          "synth 4 pinknoise vol 0.05 pad 1 0" },
        { "brown noise vol 0.1", "synth 4 brownnoise vol 0.1" }
    };
    char name[96];
    size_t i, k;
    sig_t g;

    for (k = 0; k < COUNTOF(rates); k++) {
        g = silence(rates[k], 3000);
        snprintf(name, sizeof(name), "digital silence at %u Hz", rates[k]);
        quiet_case(g, name);
        free(g.s);
    }
    for (i = 0; i < COUNTOF(c); i++) {
        for (k = 0; k < COUNTOF(rates); k++) {
            g = sox_sig("-n", c[i].sox, rates[k]);
            snprintf(name, sizeof(name), "%s at %u Hz", c[i].name, rates[k]);
            if (TAP_OK(g.n > 0, "%s: sox makes it", name)) {
                quiet_case(g, name);
            }
            free(g.s);
        }
    }
}

/* One click in a second of silence or low noise, at many offsets in the
 * frame. */
static void
test_click(void)
{
    static const struct {
        const char *name;
        unsigned us;            /* length */
        int amp;
    } c[] = {
        { "one-sample impulse", 0, 30000 },
        { "1 ms pulse", 1000, 30000 },
        { "2 ms pulse", 2000, 20000 },
        { "3 ms decaying burst", 3000, 25000 }
    };
    char name[96];
    size_t i, k, off, j, len, at;
    int a, starts, feeds;
    sig_t g, noise = { NULL, 0, 0 };
    res_t r;

    noise = sox_sig("-n", "synth 2 whitenoise vol 0.003", 16000);
    TAP_OK(noise.n >= 32000, "sox makes low noise");
    for (k = 0; k < COUNTOF(rates); k++) {
        for (i = 0; i < COUNTOF(c); i++) {
            starts = feeds = 0;
            for (off = 0; off < 10; off++) {
                /* at 16 kHz over low noise, else in digital silence */
                g = silence(rates[k], 2000);
                if (k == 1 && noise.n >= g.n) {
                    memcpy(g.s, noise.s, g.n * 2);
                }
                len = c[i].us * rates[k] / 1000000 + 1;
                at = rates[k] + off * rates[k] / 1000;
                for (j = 0; j < len && at + j < g.n; j++) {
                    double env = c[i].us >= 3000
                                 ? exp(-5.0 * j / len) : 1.0;
                    g.s[at + j] = (int16_t) (c[i].amp * env
                                             * ((j / 3) % 2 ? -1 : 1));
                }
                for (a = 0; a <= 3; a++) {
                    vad_run(g, a, 200, rates[k] / 100, &r);
                    starts += r.starts;
                    feeds += (int) r.speech_feeds;
                }
                free(g.s);
            }
            snprintf(name, sizeof(name), "%s at %u Hz (10 offsets, every "
                     "aggressiveness)", c[i].name, rates[k]);
            TAP_OK(starts == 0 && feeds == 0, "%s: ignored (%d starts)",
                   name, starts);
        }
    }
    free(noise.s);
}

/* Speech under hum and noise is still found. */
static void
test_mixed(void)
{
    static const struct {
        const char *name;
        const char *sox;
    } c[] = {
        { "50 Hz hum vol 0.3", "synth 1 sine 50 vol 0.3" },
        { "white noise vol 0.01 (about 30 dB below the speech)",
          "synth 7 whitenoise vol 0.01" },
        { "pink noise vol 0.02", "synth 7 pinknoise vol 0.02" }
    };
    sig_t g = speech_at(16000), n, m;
    char name[96];
    size_t i;
    res_t r;

    for (i = 0; i < COUNTOF(c); i++) {
        n = sox_sig("-n", c[i].sox, 16000);
        m = mix(g, n);
        snprintf(name, sizeof(name), "speech with %s", c[i].name);
        if (TAP_OK(m.s != NULL && vad_run(m, 1, 200, 160, &r), "%s: runs",
                   name))
        {
            TAP_IS(r.n, 2, "%s: 2 segments", name);
            /* the truth is that of the clean speech */
            if (r.n == 2) {
                double ts[MAXSEG], te[MAXSEG];
                truth(g, ts, te);
                TAP_OK(fabs(r.start[0] - ts[0]) <= TOL_MS
                       && fabs(r.end[1] - te[1]) <= 2 * TOL_MS,
                       "%s: from %.0f to %.0f ms (truth %.0f to %.0f)", name,
                       r.start[0], r.end[1], ts[0], te[1]);
            }
        }
        free(n.s);
        free(m.s);
    }
}

/* Higher aggressiveness never finds more speech. */
static void
test_aggr(void)
{
    sig_t g = speech_at(16000), n, m;
    unsigned frames[4];
    res_t r;
    int a, mono = 1;

    n = sox_sig("-n", "synth 7 whitenoise vol 0.05", 16000);
    m = mix(g, n);
    for (a = 0; a <= 3; a++) {
        vad_run(m, a, 200, 160, &r);
        frames[a] = r.speech_feeds;
        if (a > 0 && frames[a] > frames[a - 1]) {
            mono = 0;
        }
    }
    TAP_OK(mono && frames[0] > frames[3],
           "speech in noise: speech frames by aggressiveness 0-3 %u %u %u "
           "%u, never more", frames[0], frames[1], frames[2], frames[3]);
    for (a = 0; a <= 3; a++) {
        vad_run(g, a, 200, 160, &r);
        frames[a] = r.speech_feeds;
    }
    TAP_OK(frames[0] >= frames[1] && frames[1] >= frames[2]
           && frames[2] >= frames[3],
           "clean speech: %u %u %u %u, never more", frames[0], frames[1],
           frames[2], frames[3]);
    free(n.s);
    free(m.s);
}

/* Any feed size: the same segments as 10 ms feeds, within one feed. */
static void
test_feed(void)
{
    static const size_t feeds[] = { 1, 37, 160, 441, 4000 };
    sig_t g = speech_at(16000);
    avc_vad_event_t ev;
    avc_vad_t *v;
    res_t ref, r;
    size_t i;
    int k, ok;
    double tol;

    vad_run(g, 2, 200, 160, &ref);
    for (i = 0; i < COUNTOF(feeds); i++) {
        vad_run(g, 2, 200, feeds[i], &r);
        tol = feeds[i] * 1000.0 / 16000 + 10;
        ok = r.n == ref.n;
        for (k = 0; ok && k < r.n; k++) {
            ok = fabs(r.start[k] - ref.start[k]) <= tol
                 && fabs(r.end[k] - ref.end[k]) <= tol;
        }
        TAP_OK(ok, "feeds of %zu samples: the same %d segments", feeds[i],
               ref.n);
    }

    /* all at once: both edges and the last segment's length in one event */
    v = avc_vad_new(16000, 2, 200, NULL);
    {
        sig_t s = silence(16000, 1000), all = concat(speech[1], s, s);
        avc_vad_feed(v, all.s, all.n, &ev);
        TAP_OK(ev.speech_started && ev.speech_ended && !ev.is_speech
               && ref.n == 2 && fabs(ev.duration_ms - (ref.end[1]
                                                       - ref.start[1])) <= 10,
               "one feed of everything: started, ended, the last segment's "
               "%u ms", ev.duration_ms);
        free(s.s);
        free(all.s);
    }
    avc_vad_free(v);
}

static void
test_reset(void)
{
    sig_t g = speech_at(16000);
    avc_vad_event_t ev;
    avc_vad_t *v = avc_vad_new(16000, 2, 200, NULL);
    res_t ref;
    size_t off;
    int n = 0, started = 0;
    double first = -1;

    vad_run(g, 2, 200, 160, &ref);
    /* into the first utterance, then reset */
    avc_vad_feed(v, g.s, 16000, &ev);
    TAP_OK(ev.is_speech, "speaking after 1 s of the first utterance");
    avc_vad_reset(v);
    avc_vad_feed(v, NULL, 0, &ev);
    TAP_OK(!ev.is_speech && ev.duration_ms == 0, "reset: not speaking");
    /* the same detector on the whole signal behaves like a new one */
    for (off = 0; off + 160 <= g.n; off += 160) {
        avc_vad_feed(v, g.s + off, 160, &ev);
        if (ev.speech_started && !started++) {
            first = (off + 160) / 16.0;
        }
        n += ev.speech_ended;
    }
    TAP_OK(ref.starts > 0 && first == ref.started_at[0] && started == 2
           && n == ref.n, "after reset: the same onsets and ends as a new "
           "detector (first at %.0f ms)", first);
    avc_vad_free(v);
}

int
main(int argc, char **argv)
{
    sig_t a, b, s;
    size_t i, k;
    int ok;

    tap_select(argc, argv);

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    TAP_OK(run("espeak-ng --version >/dev/null"), "espeak-ng is installed");
    TAP_OK(run("sox --version >/dev/null"), "sox is installed");
    TAP_OK(run("espeak-ng -w '%s' '%s' && espeak-ng -w '%s' '%s'",
               path("a.wav"), SAY_A, path("b.wav"), SAY_B),
           "espeak-ng speaks the two utterances");
    for (i = 0; i < COUNTOF(rates); i++) {
        a = sox_file(path("a.wav"), rates[i]);
        b = sox_file(path("b.wav"), rates[i]);
        s = silence(rates[i], 1000);
        speech[i] = concat(a, s, b);
        ok = TAP_OK(a.n > rates[i] && b.n > rates[i] && speech[i].s != NULL,
                    "speech, 1 s of silence, speech at %u Hz (%.2f s)",
                    rates[i], (double) speech[i].n / rates[i]);
        free(a.s);
        free(b.s);
        free(s.s);
        if (!ok) {
            /* no speech to test with is a failure, never a skip */
            for (k = 0; k <= i; k++) {
                free(speech[k].s);
            }
            run("rm -rf '%s'", dir);
            return tap_done();
        }
    }

    if (tap_section("args")) {
        test_args();
    }
    if (tap_section("segments")) {
        test_segments();
    }
    if (tap_section("rates")) {
        test_rates();
    }
    if (tap_section("end")) {
        test_end();
    }
    if (tap_section("quiet")) {
        test_quiet();
    }
    if (tap_section("click")) {
        test_click();
    }
    if (tap_section("mixed")) {
        test_mixed();
    }
    if (tap_section("aggr")) {
        test_aggr();
    }
    if (tap_section("feed")) {
        test_feed();
    }
    if (tap_section("reset")) {
        test_reset();
    }

    for (i = 0; i < COUNTOF(rates); i++) {
        free(speech[i].s);
    }
    run("rm -rf '%s'", dir);
    return tap_done();
}
