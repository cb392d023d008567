/*
 * Audio formats (see avatarcore/speech.h): detection by content, decoding
 * to PCM16K, WAV writing and a level meter.
 *
 * WAV and raw PCM are decoded here: a chunk walk that trusts no size it
 * cannot check, a mixdown to mono (the mean of the channels) and a
 * windowed-sinc resampler.  WebM, MP4, MP3 and OGG go through FFmpeg's
 * libraries reading from the caller's buffer: the demuxer is the one the
 * bytes were detected as (no probing, a format whitelist besides), no
 * other file or URL can be opened, only the audio codecs clients send are
 * decoded, and libswresample makes s16 mono 16 kHz.
 *
 * FFmpeg's own log is routed to avc_log() at debug level (warnings and
 * errors only); the callback is process-wide and set once.
 */
#include "audio_int.h"

#include <avatarcore/speech.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* samples of PCM16K per millisecond */
#define AVC_AUDIO_PER_MS      (AVC__AUDIO_RATE / 1000)
/* the ceiling of avc_audio_decode() when max_ms is 0: one hour */
#define AVC_AUDIO_CAP_MS      (60u * 60 * 1000)

/* what a WAV header may claim */
#define AVC_WAV_MIN_RATE      1000
#define AVC_WAV_MAX_RATE      768000
#define AVC_WAV_MAX_CHANNELS  64

#define AVC_WAV_PCM           0x0001
#define AVC_WAV_FLOAT         0x0003
#define AVC_WAV_EXTENSIBLE    0xfffe

/* resampler: zero crossings of the sinc on each side, table steps per
 * crossing, Kaiser beta (about 80 dB stop band), cut-off as a fraction of
 * the lower rate */
#define AVC_RS_ZC             20
#define AVC_RS_RES            512
#define AVC_RS_BETA           8.0
#define AVC_RS_CUTOFF         0.44

/* FFmpeg: read size of the memory I/O, streams a file may declare */
#define AVC_FF_IO_BUF         16384
#define AVC_FF_MAX_STREAMS    16
#define AVC_FF_FORMATS        "matroska,webm,mov,mp4,m4a,mp3,ogg"

/* ------------------------------------------------------------ helpers */

static uint16_t
avc_audio_rd16(const unsigned char *p)
{
    return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t
avc_audio_rd32(const unsigned char *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static void
avc_audio_wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
}

static void
avc_audio_wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) v;
    p[1] = (unsigned char) (v >> 8);
    p[2] = (unsigned char) (v >> 16);
    p[3] = (unsigned char) (v >> 24);
}

static int16_t
avc_audio_clip(double v)
{
    if (!(v > -32768.0)) {
        /* also NaN */
        return v != v ? 0 : -32768;
    }
    if (v >= 32767.0) {
        return 32767;
    }
    return (int16_t) lrint(v);
}

/* ---------------------------------------------------------- detection */

static const unsigned short avc_mpa_kbps[2][3][15] = {
    {   /* MPEG-1: layer I, II, III */
        { 0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416,
          448 },
        { 0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
          384 },
        { 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
          320 }
    },
    {   /* MPEG-2 and 2.5 */
        { 0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224,
          256 },
        { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 },
        { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 }
    }
};

static const unsigned avc_mpa_rates[3] = { 44100, 48000, 32000 };

/*
 * The length in bytes of the MPEG audio frame whose header is at p, or 0
 * when the four bytes are not a valid header (free-format bit rates are
 * refused: they cannot be checked).  *key gets the bits that stay the same
 * from frame to frame (version, layer, sample rate).
 */
static size_t
avc_mpa_frame(const unsigned char *p, uint32_t *key)
{
    unsigned ver, layer, bri, sri, pad, kbps, rate;
    int v2;

    if (p[0] != 0xff || (p[1] & 0xe0) != 0xe0) {
        return 0;
    }
    ver = (p[1] >> 3) & 3;          /* 0: 2.5, 1: reserved, 2: 2, 3: 1 */
    layer = (p[1] >> 1) & 3;        /* 0: reserved, 1: III, 2: II, 3: I */
    bri = p[2] >> 4;
    sri = (p[2] >> 2) & 3;
    pad = (p[2] >> 1) & 1;
    if (ver == 1 || layer == 0 || bri == 0 || bri == 15 || sri == 3
        || (p[3] & 3) == 2)
    {
        return 0;
    }
    v2 = ver != 3;
    kbps = avc_mpa_kbps[v2][3 - layer][bri];
    rate = avc_mpa_rates[sri] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
    *key = ((uint32_t) p[1] << 8 | (p[2] & 0x0c)) & 0x1e0c;

    if (layer == 3) {
        return (12 * kbps * 1000 / rate + pad) * 4;
    }
    if (layer == 1 && v2) {
        return 72 * kbps * 1000 / rate + pad;
    }
    return 144 * kbps * 1000 / rate + pad;
}

/* An MPEG audio frame at p, followed by up to two more of the same kind
 * as far as the buffer reaches. */
static int
avc_mpa_detect(const unsigned char *p, size_t n)
{
    uint32_t key, key2;
    size_t off, len;
    int frames;

    if (n < 4 || (len = avc_mpa_frame(p, &key)) == 0) {
        return 0;
    }
    off = len;
    for (frames = 1; frames < 3 && off + 4 <= n; frames++) {
        len = avc_mpa_frame(p + off, &key2);
        if (len == 0 || key2 != key) {
            return 0;
        }
        off += len;
    }
    return 1;
}

/* An ID3v2 tag header: "ID3", version 2-4, flags, a syncsafe size. */
static int
avc_id3_detect(const unsigned char *p, size_t n)
{
    return n >= 10 && memcmp(p, "ID3", 3) == 0 && p[3] >= 2 && p[3] <= 4
           && p[4] != 0xff && (p[5] & 0x0f) == 0
           && ((p[6] | p[7] | p[8] | p[9]) & 0x80) == 0;
}

avc_audio_format_t
avc_audio_detect(const void *buf, size_t n, int pcm_ok)
{
    const unsigned char *p = buf;

    if (p == NULL || n == 0) {
        return AVC_AUDIO_UNKNOWN;
    }
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WAVE", 4) == 0)
    {
        return AVC_AUDIO_WAV;
    }
    if (n >= 4 && memcmp(p, "\x1a\x45\xdf\xa3", 4) == 0) {
        return AVC_AUDIO_WEBM;
    }
    /* the box size is big-endian; 8 is the smallest ftyp */
    if (n >= 8 && memcmp(p + 4, "ftyp", 4) == 0
        && ((uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
            | (uint32_t) p[2] << 8 | p[3]) >= 8)
    {
        return AVC_AUDIO_MP4;
    }
    if (n >= 4 && memcmp(p, "OggS", 4) == 0) {
        return AVC_AUDIO_OGG;
    }
    if (avc_id3_detect(p, n) || avc_mpa_detect(p, n)) {
        return AVC_AUDIO_MP3;
    }
    if (pcm_ok && n % 2 == 0) {
        return AVC_AUDIO_PCM;
    }
    return AVC_AUDIO_UNKNOWN;
}

const char *
avc_audio_mime(avc_audio_format_t f)
{
    switch (f) {
    case AVC_AUDIO_PCM:
        return "audio/L16;rate=16000;channels=1";
    case AVC_AUDIO_WAV:
        return "audio/wav";
    case AVC_AUDIO_WEBM:
        return "audio/webm";
    case AVC_AUDIO_MP4:
        return "audio/mp4";
    case AVC_AUDIO_MP3:
        return "audio/mpeg";
    case AVC_AUDIO_OGG:
        return "audio/ogg";
    default:
        return "application/octet-stream";
    }
}

const char *
avc_audio_ext(avc_audio_format_t f)
{
    switch (f) {
    case AVC_AUDIO_PCM:
        return "pcm";
    case AVC_AUDIO_WAV:
        return "wav";
    case AVC_AUDIO_WEBM:
        return "webm";
    case AVC_AUDIO_MP4:
        return "m4a";
    case AVC_AUDIO_MP3:
        return "mp3";
    case AVC_AUDIO_OGG:
        return "ogg";
    default:
        return "bin";
    }
}

/* ---------------------------------------------------------- resampler */

static float avc_rs_table[AVC_RS_ZC * AVC_RS_RES + 2];
static pthread_once_t avc_rs_once = PTHREAD_ONCE_INIT;

/* The modified Bessel function I0 by its power series. */
static double
avc_rs_i0(double x)
{
    double sum = 1.0, term = 1.0, q = x * x / 4.0;
    int k;

    for (k = 1; k < 64 && term > sum * 1e-12; k++) {
        term *= q / ((double) k * k);
        sum += term;
    }
    return sum;
}

/* sinc(x) * kaiser(x / ZC) for x = i / RES, 0 <= x <= ZC */
static void
avc_rs_init(void)
{
    double x, r, norm = avc_rs_i0(AVC_RS_BETA);
    size_t i, n = AVC_RS_ZC * AVC_RS_RES;

    avc_rs_table[0] = 1.0f;
    for (i = 1; i <= n; i++) {
        x = (double) i / AVC_RS_RES;
        r = x / AVC_RS_ZC;
        avc_rs_table[i] = (float) (sin(M_PI * x) / (M_PI * x)
                                   * avc_rs_i0(AVC_RS_BETA
                                               * sqrt(fmax(0.0, 1 - r * r)))
                                   / norm);
    }
    avc_rs_table[n + 1] = 0.0f;
}

/* The kernel at a distance of x zero crossings, interpolated. */
static double
avc_rs_kernel(double x)
{
    size_t k;

    x *= AVC_RS_RES;
    k = (size_t) x;
    if (k >= AVC_RS_ZC * AVC_RS_RES) {
        return 0.0;
    }
    return avc_rs_table[k] + (x - k) * (avc_rs_table[k + 1] - avc_rs_table[k]);
}

static unsigned
avc_rs_gcd(unsigned a, unsigned b)
{
    unsigned t;

    while (b != 0) {
        t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int
avc__audio_resample_float(const float *in, size_t n, unsigned in_rate,
                          unsigned out_rate, int16_t **out, size_t *out_n)
{
    double fc, scale, half, pos, acc, x;
    size_t i, j, m, lo, hi, taps, t, ph;
    unsigned g, L, M;
    uint64_t num;
    int64_t first;
    float *bank, *c;
    int16_t *o;

    if ((in == NULL && n > 0) || out == NULL || out_n == NULL
        || in_rate < AVC_WAV_MIN_RATE || in_rate > AVC_WAV_MAX_RATE
        || out_rate < AVC_WAV_MIN_RATE || out_rate > AVC_WAV_MAX_RATE
        || n > ((uint64_t) 1 << 40))
    {
        return AVC_EINVAL;
    }
    m = in_rate == out_rate
        ? n : (size_t) (((uint64_t) n * out_rate + in_rate - 1) / in_rate);
    o = malloc((m ? m : 1) * sizeof(int16_t));
    if (o == NULL) {
        return AVC_ENOMEM;
    }
    *out = o;
    *out_n = m;
    if (in_rate == out_rate) {
        for (i = 0; i < n; i++) {
            o[i] = avc_audio_clip(in[i]);
        }
        return AVC_OK;
    }

    pthread_once(&avc_rs_once, avc_rs_init);

    /* cut-off in cycles per input sample; the kernel is
     * 2fc * sinc(2fc t) * window, t in input samples */
    fc = AVC_RS_CUTOFF * (in_rate < out_rate ? in_rate : out_rate) / in_rate;
    scale = 2.0 * fc;
    half = AVC_RS_ZC / scale;

    /*
     * Output i sits at input position i * M / L: its phase, the remainder,
     * repeats every L outputs.  When the L phases are few next to the
     * output, their coefficients are computed once (polyphase); taps t of
     * phase ph weigh input (i * M / L) - taps / 2 + 1 + t.
     */
    g = avc_rs_gcd(in_rate, out_rate);
    L = out_rate / g;
    M = in_rate / g;
    taps = 2 * (size_t) ceil(half);
    bank = (size_t) L * 4 <= m ? malloc((size_t) L * taps * sizeof(float))
                               : NULL;
    if (bank != NULL) {
        for (ph = 0; ph < L; ph++) {
            for (t = 0; t < taps; t++) {
                x = fabs((double) ph / L + (double) (taps / 2) - 1 - t);
                bank[ph * taps + t] = (float) (avc_rs_kernel(x * scale)
                                               * scale);
            }
        }
        for (i = 0; i < m; i++) {
            num = (uint64_t) i * M;
            c = bank + (num % L) * taps;
            first = (int64_t) (num / L) - (int64_t) (taps / 2) + 1;
            acc = 0.0;
            if (first >= 0 && (uint64_t) first + taps <= n) {
                for (t = 0; t < taps; t++) {
                    acc += in[first + t] * c[t];
                }
            } else {
                for (t = 0; t < taps; t++) {
                    if (first + (int64_t) t >= 0
                        && (uint64_t) (first + (int64_t) t) < n)
                    {
                        acc += in[first + t] * c[t];
                    }
                }
            }
            o[i] = avc_audio_clip(acc);
        }
        free(bank);
        return AVC_OK;
    }

    /* otherwise each output interpolates its own coefficients */
    for (i = 0; i < m; i++) {
        num = (uint64_t) i * in_rate;
        pos = (double) (num / out_rate)
              + (double) (num % out_rate) / out_rate;
        x = ceil(pos - half);
        lo = x < 0 ? 0 : (size_t) x;
        x = floor(pos + half);
        hi = x >= (double) n ? n - 1 : (size_t) x;
        acc = 0.0;
        for (j = lo; j <= hi && j < n; j++) {
            acc += in[j] * avc_rs_kernel(fabs(pos - (double) j) * scale);
        }
        o[i] = avc_audio_clip(acc * scale);
    }
    return AVC_OK;
}

int
avc__audio_resample(const int16_t *in, size_t n, unsigned in_rate,
                    unsigned out_rate, int16_t **out, size_t *out_n)
{
    float *f;
    size_t i;
    int rc;

    if ((in == NULL && n > 0) || n > ((uint64_t) 1 << 40)) {
        return AVC_EINVAL;
    }
    f = malloc((n ? n : 1) * sizeof(float));
    if (f == NULL) {
        return AVC_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        f[i] = in[i];
    }
    rc = avc__audio_resample_float(f, n, in_rate, out_rate, out, out_n);
    free(f);
    return rc;
}

/* ---------------------------------------------------------------- WAV */

typedef struct {
    unsigned tag;               /* AVC_WAV_PCM or AVC_WAV_FLOAT */
    unsigned channels;
    unsigned rate;
    unsigned bits;              /* container bits per sample */
    unsigned frame;             /* bytes per sample frame */
    const unsigned char *data;
    size_t len;                 /* bytes of data present */
} avc_wav_t;

/* KSDATAFORMAT_SUBTYPE_* after its first two bytes (the format tag) */
static const unsigned char avc_wav_guid_tail[14] = {
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38,
    0x9b, 0x71
};

static int
avc_wav_fmt(const unsigned char *q, uint32_t size, avc_wav_t *w)
{
    unsigned tag, ch, rate, align, bits, valid;

    if (size < 16) {
        return AVC_EPARSE;
    }
    tag = avc_audio_rd16(q);
    ch = avc_audio_rd16(q + 2);
    rate = avc_audio_rd32(q + 4);
    align = avc_audio_rd16(q + 12);
    bits = avc_audio_rd16(q + 14);

    if (tag == AVC_WAV_EXTENSIBLE) {
        if (size < 40 || avc_audio_rd16(q + 16) < 22
            || memcmp(q + 26, avc_wav_guid_tail, sizeof(avc_wav_guid_tail))
               != 0)
        {
            return AVC_EPARSE;
        }
        valid = avc_audio_rd16(q + 18);
        tag = avc_audio_rd16(q + 24);
        if (valid > bits) {
            return AVC_EPARSE;
        }
    }

    if (tag == AVC_WAV_PCM) {
        if (bits != 8 && bits != 16 && bits != 24 && bits != 32) {
            return AVC_EPARSE;
        }
    } else if (tag == AVC_WAV_FLOAT) {
        if (bits != 32 && bits != 64) {
            return AVC_EPARSE;
        }
    } else {
        return AVC_EPARSE;
    }
    if (ch == 0 || ch > AVC_WAV_MAX_CHANNELS || rate < AVC_WAV_MIN_RATE
        || rate > AVC_WAV_MAX_RATE || align != ch * (bits / 8))
    {
        return AVC_EPARSE;
    }
    w->tag = tag;
    w->channels = ch;
    w->rate = rate;
    w->bits = bits;
    w->frame = align;
    return AVC_OK;
}

/*
 * Walk the chunks of a RIFF/WAVE file to "fmt " and "data".  A data chunk
 * longer than the file is a truncated recording (or a streamed one whose
 * sizes were never filled in): what is there is used.  Any other chunk
 * must fit; odd-sized chunks are padded to even.
 */
static int
avc_wav_parse(const unsigned char *p, size_t n, avc_wav_t *w)
{
    size_t off = 12, avail;
    uint32_t size;
    int have_fmt = 0, rc;

    if (n < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0)
    {
        return AVC_EPARSE;
    }
    while (n - off >= 8) {
        size = avc_audio_rd32(p + off + 4);
        avail = n - off - 8;
        if (memcmp(p + off, "data", 4) == 0) {
            if (!have_fmt) {
                return AVC_EPARSE;
            }
            w->data = p + off + 8;
            w->len = size < avail ? size : avail;
            w->len -= w->len % w->frame;
            return AVC_OK;
        }
        if (size > avail) {
            return AVC_EPARSE;
        }
        if (memcmp(p + off, "fmt ", 4) == 0) {
            if (have_fmt) {
                return AVC_EPARSE;
            }
            rc = avc_wav_fmt(p + off + 8, size, w);
            if (rc != AVC_OK) {
                return rc;
            }
            have_fmt = 1;
        }
        off += 8 + (size_t) size + (size & 1);
        if (off > n) {
            break;
        }
    }
    return AVC_EPARSE;
}

/* One sample of the data on the int16 scale. */
static double
avc_wav_sample(const avc_wav_t *w, const unsigned char *s)
{
    union {
        uint32_t u;
        float f;
    } f32;
    union {
        uint64_t u;
        double d;
    } f64;
    int32_t v;
    double d;

    if (w->tag == AVC_WAV_FLOAT) {
        if (w->bits == 32) {
            f32.u = avc_audio_rd32(s);
            d = f32.f;
        } else {
            f64.u = (uint64_t) avc_audio_rd32(s)
                    | (uint64_t) avc_audio_rd32(s + 4) << 32;
            d = f64.d;
        }
        if (!isfinite(d)) {
            return 0.0;
        }
        return d * 32768.0;
    }
    switch (w->bits) {
    case 8:
        return ((int) s[0] - 128) * 256.0;
    case 16:
        return (int16_t) avc_audio_rd16(s);
    case 24:
        v = (int32_t) ((uint32_t) s[0] << 8 | (uint32_t) s[1] << 16
                       | (uint32_t) s[2] << 24);
        return v / 65536.0;
    default:
        return (int32_t) avc_audio_rd32(s) / 65536.0;
    }
}

static int
avc_wav_decode(const unsigned char *p, size_t n, size_t max, int16_t **pcm,
               size_t *samples)
{
    avc_wav_t w;
    size_t frames, i, c, bps;
    const unsigned char *s;
    uint64_t out_n;
    double acc;
    float *mono;
    int rc;

    memset(&w, 0, sizeof(w));
    rc = avc_wav_parse(p, n, &w);
    if (rc != AVC_OK) {
        return rc;
    }
    frames = w.len / w.frame;
    out_n = ((uint64_t) frames * AVC__AUDIO_RATE + w.rate - 1) / w.rate;
    if (out_n > max) {
        return AVC_ETOOBIG;
    }
    mono = malloc((frames ? frames : 1) * sizeof(float));
    if (mono == NULL) {
        return AVC_ENOMEM;
    }
    bps = w.bits / 8;
    s = w.data;
    for (i = 0; i < frames; i++) {
        acc = 0.0;
        for (c = 0; c < w.channels; c++, s += bps) {
            acc += avc_wav_sample(&w, s);
        }
        mono[i] = (float) (acc / w.channels);
    }
    rc = avc__audio_resample_float(mono, frames, w.rate, AVC__AUDIO_RATE,
                                   pcm, samples);
    free(mono);
    return rc;
}

int
avc_audio_wav(const int16_t *pcm, size_t samples, unsigned rate, void **out,
              size_t *len)
{
    unsigned char *h;
    size_t i, bytes;

    if ((pcm == NULL && samples > 0) || out == NULL || len == NULL
        || rate == 0 || rate > AVC_WAV_MAX_RATE)
    {
        return AVC_EINVAL;
    }
    if (samples > (UINT32_MAX - 36) / 2) {
        return AVC_ETOOBIG;
    }
    bytes = samples * 2;
    h = malloc(44 + bytes);
    if (h == NULL) {
        return AVC_ENOMEM;
    }
    memcpy(h, "RIFF", 4);
    avc_audio_wr32(h + 4, (uint32_t) (36 + bytes));
    memcpy(h + 8, "WAVEfmt ", 8);
    avc_audio_wr32(h + 16, 16);
    avc_audio_wr16(h + 20, AVC_WAV_PCM);
    avc_audio_wr16(h + 22, 1);
    avc_audio_wr32(h + 24, rate);
    avc_audio_wr32(h + 28, rate * 2);
    avc_audio_wr16(h + 32, 2);
    avc_audio_wr16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    avc_audio_wr32(h + 40, (uint32_t) bytes);
    for (i = 0; i < samples; i++) {
        avc_audio_wr16(h + 44 + 2 * i, (uint16_t) pcm[i]);
    }
    *out = h;
    *len = 44 + bytes;
    return AVC_OK;
}

double
avc_audio_dbfs(const int16_t *pcm, size_t samples)
{
    double sum = 0.0, db;
    size_t i;

    if (pcm == NULL || samples == 0) {
        return -96.0;
    }
    for (i = 0; i < samples; i++) {
        sum += (double) pcm[i] * pcm[i];
    }
    if (sum == 0.0) {
        return -96.0;
    }
    db = 10.0 * log10(sum / samples / (32768.0 * 32768.0));
    return db < -96.0 ? -96.0 : db;
}

/* ------------------------------------------------------------- FFmpeg */

static pthread_once_t avc_ff_once = PTHREAD_ONCE_INIT;

static void
avc_ff_log(void *avcl, int level, const char *fmt, va_list ap)
{
    char line[512];
    int prefix = 1;
    size_t n;

    if (level > av_log_get_level()) {
        return;
    }
    av_log_format_line2(avcl, level, fmt, ap, line, sizeof(line), &prefix);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    if (n > 0) {
        avc_log(AVC_LOG_DEBUG, "ffmpeg: %s", line);
    }
}

static void
avc_ff_init(void)
{
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(avc_ff_log);
}

typedef struct {
    const unsigned char *p;
    size_t n;
    size_t off;
} avc_ff_mem_t;

static int
avc_ff_read(void *opaque, uint8_t *buf, int size)
{
    avc_ff_mem_t *m = opaque;
    size_t left = m->n - m->off;

    if (left == 0 || size <= 0) {
        return AVERROR_EOF;
    }
    if ((size_t) size > left) {
        size = (int) left;
    }
    memcpy(buf, m->p + m->off, (size_t) size);
    m->off += (size_t) size;
    return size;
}

static int64_t
avc_ff_seek(void *opaque, int64_t offset, int whence)
{
    avc_ff_mem_t *m = opaque;
    int64_t pos;

    if (whence & AVSEEK_SIZE) {
        return (int64_t) m->n;
    }
    switch (whence & ~AVSEEK_FORCE) {
    case SEEK_SET:
        pos = offset;
        break;
    case SEEK_CUR:
        pos = (int64_t) m->off + offset;
        break;
    case SEEK_END:
        pos = (int64_t) m->n + offset;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (pos < 0 || pos > (int64_t) m->n) {
        return AVERROR(EINVAL);
    }
    m->off = (size_t) pos;
    return pos;
}

/* A container may name other files (MP4 data references): never opened. */
static int
avc_ff_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url,
               int flags, AVDictionary **options)
{
    return AVERROR(EPERM);
}

static const char *
avc_ff_demuxer(avc_audio_format_t f)
{
    switch (f) {
    case AVC_AUDIO_WEBM:
        return "matroska";
    case AVC_AUDIO_MP4:
        return "mov";
    case AVC_AUDIO_MP3:
        return "mp3";
    case AVC_AUDIO_OGG:
        return "ogg";
    default:
        return NULL;
    }
}

/* The codecs browsers and phones record in, and a few plain ones. */
static int
avc_ff_codec_ok(enum AVCodecID id)
{
    switch (id) {
    case AV_CODEC_ID_OPUS:
    case AV_CODEC_ID_VORBIS:
    case AV_CODEC_ID_AAC:
    case AV_CODEC_ID_MP3:
    case AV_CODEC_ID_MP2:
    case AV_CODEC_ID_MP1:
    case AV_CODEC_ID_FLAC:
    case AV_CODEC_ID_PCM_S16LE:
    case AV_CODEC_ID_PCM_F32LE:
        return 1;
    default:
        return 0;
    }
}

typedef struct {
    int16_t *pcm;
    size_t len;
    size_t cap;
    size_t max;
    SwrContext *swr;
    int rate;                   /* swr's input */
    int fmt;
    AVChannelLayout layout;
    unsigned long good;         /* frames decoded */
    unsigned long bad;          /* packets or frames refused */
} avc_ff_out_t;

static int
avc_ff_reserve(avc_ff_out_t *o, size_t more)
{
    size_t cap;
    int16_t *p;

    if (o->cap - o->len >= more) {
        return AVC_OK;
    }
    cap = o->cap ? o->cap : 16000;
    while (cap - o->len < more) {
        cap *= 2;
    }
    p = realloc(o->pcm, cap * sizeof(int16_t));
    if (p == NULL) {
        return AVC_ENOMEM;
    }
    o->pcm = p;
    o->cap = cap;
    return AVC_OK;
}

/* Run swr on in (NULL: drain) and append its output. */
static int
avc_ff_convert(avc_ff_out_t *o, const uint8_t **in, int nb)
{
    uint8_t *dst;
    int room, got, rc;

    room = swr_get_out_samples(o->swr, nb);
    if (room < 0) {
        return AVC_EPARSE;
    }
    /* one frame never holds more than a minute */
    if (room > 60 * AVC__AUDIO_RATE) {
        return AVC_EPARSE;
    }
    rc = avc_ff_reserve(o, (size_t) room + 1);
    if (rc != AVC_OK) {
        return rc;
    }
    dst = (uint8_t *) (o->pcm + o->len);
    got = swr_convert(o->swr, &dst, room + 1, in, nb);
    if (got < 0) {
        return got == AVERROR(ENOMEM) ? AVC_ENOMEM : AVC_EPARSE;
    }
    o->len += (size_t) got;
    return o->len > o->max ? AVC_ETOOBIG : AVC_OK;
}

/* A resampler for this frame's rate, format and layout: the mean of the
 * channels, s16, 16 kHz. */
static int
avc_ff_setup(avc_ff_out_t *o, const AVFrame *fr)
{
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO, in = { 0 };
    double matrix[AVC_WAV_MAX_CHANNELS];
    int i, rc, ch = fr->ch_layout.nb_channels;

    if (ch < 1 || ch > AVC_WAV_MAX_CHANNELS
        || fr->sample_rate < AVC_WAV_MIN_RATE
        || fr->sample_rate > AVC_WAV_MAX_RATE || fr->format < 0)
    {
        return AVC_EPARSE;
    }
    if (o->swr != NULL) {
        if (o->rate == fr->sample_rate && o->fmt == fr->format
            && av_channel_layout_compare(&o->layout, &fr->ch_layout) == 0)
        {
            return AVC_OK;
        }
        rc = avc_ff_convert(o, NULL, 0);
        swr_free(&o->swr);
        av_channel_layout_uninit(&o->layout);
        if (rc != AVC_OK) {
            return rc;
        }
    }

    if (fr->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        av_channel_layout_default(&in, ch);
    } else if (av_channel_layout_copy(&in, &fr->ch_layout) < 0) {
        return AVC_ENOMEM;
    }
    rc = swr_alloc_set_opts2(&o->swr, &mono, AV_SAMPLE_FMT_S16,
                             AVC__AUDIO_RATE, &in, fr->format,
                             fr->sample_rate, 0, NULL);
    if (rc >= 0) {
        for (i = 0; i < ch; i++) {
            matrix[i] = 1.0 / ch;
        }
        rc = swr_set_matrix(o->swr, matrix, ch);
    }
    if (rc >= 0) {
        rc = swr_init(o->swr);
    }
    if (rc < 0) {
        av_channel_layout_uninit(&in);
        swr_free(&o->swr);
        return rc == AVERROR(ENOMEM) ? AVC_ENOMEM : AVC_EPARSE;
    }
    o->layout = in;
    o->rate = fr->sample_rate;
    o->fmt = fr->format;
    return AVC_OK;
}

/* Take every frame the decoder has ready. */
static int
avc_ff_receive(avc_ff_out_t *o, AVCodecContext *dec, AVFrame *fr)
{
    int rc;

    for ( ;; ) {
        rc = avcodec_receive_frame(dec, fr);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) {
            return AVC_OK;
        }
        if (rc == AVERROR(ENOMEM)) {
            return AVC_ENOMEM;
        }
        if (rc < 0) {
            o->bad++;
            return AVC_OK;
        }
        rc = avc_ff_setup(o, fr);
        if (rc == AVC_OK) {
            rc = avc_ff_convert(o, (const uint8_t **) fr->extended_data,
                                fr->nb_samples);
        }
        av_frame_unref(fr);
        if (rc == AVC_EPARSE) {
            o->bad++;
        } else if (rc != AVC_OK) {
            return rc;
        } else {
            o->good++;
        }
    }
}

static int
avc_ff_decode(const void *p, size_t n, avc_audio_format_t f, size_t max,
              int16_t **pcm, size_t *samples)
{
    avc_ff_mem_t mem = { p, n, 0 };
    avc_ff_out_t o;
    const AVInputFormat *ifmt;
    const AVCodec *codec = NULL;
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVCodecParameters *par;
    AVIOContext *io = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    unsigned char *iobuf;
    unsigned i;
    int rc, idx;

    pthread_once(&avc_ff_once, avc_ff_init);
    memset(&o, 0, sizeof(o));
    o.max = max;

    ifmt = av_find_input_format(avc_ff_demuxer(f));
    if (ifmt == NULL) {
        return AVC_EPARSE;
    }
    iobuf = av_malloc(AVC_FF_IO_BUF);
    if (iobuf == NULL) {
        return AVC_ENOMEM;
    }
    io = avio_alloc_context(iobuf, AVC_FF_IO_BUF, 0, &mem, avc_ff_read, NULL,
                            avc_ff_seek);
    if (io == NULL) {
        av_free(iobuf);
        return AVC_ENOMEM;
    }
    rc = AVC_ENOMEM;
    fmt = avformat_alloc_context();
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (fmt == NULL || pkt == NULL || fr == NULL) {
        goto done;
    }
    fmt->pb = io;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->io_open = avc_ff_io_open;
    fmt->max_streams = AVC_FF_MAX_STREAMS;
    fmt->format_whitelist = av_strdup(AVC_FF_FORMATS);
    if (fmt->format_whitelist == NULL) {
        goto done;
    }
    rc = avformat_open_input(&fmt, NULL, ifmt, NULL);
    if (rc < 0) {
        /* fmt was freed */
        avc_log(AVC_LOG_DEBUG, "audio: %s: not readable (%s)",
                avc_audio_ext(f), av_err2str(rc));
        rc = rc == AVERROR(ENOMEM) ? AVC_ENOMEM : AVC_EPARSE;
        goto done;
    }

    /* the first audio stream (av_find_best_stream wants the rate and
     * channels that some demuxers only learn from the packets) */
    rc = AVC_EPARSE;
    for (idx = 0; (unsigned) idx < fmt->nb_streams; idx++) {
        par = fmt->streams[idx]->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
            codec = avcodec_find_decoder(par->codec_id);
            break;
        }
    }
    if ((unsigned) idx == fmt->nb_streams || codec == NULL) {
        avc_log(AVC_LOG_DEBUG, "audio: %s: no audio stream to decode",
                avc_audio_ext(f));
        goto done;
    }
    if (!avc_ff_codec_ok(fmt->streams[idx]->codecpar->codec_id)) {
        avc_log(AVC_LOG_DEBUG, "audio: %s: codec %s refused",
                avc_audio_ext(f), codec->name);
        goto done;
    }
    for (i = 0; i < fmt->nb_streams; i++) {
        fmt->streams[i]->discard = (int) i == idx ? AVDISCARD_DEFAULT
                                                  : AVDISCARD_ALL;
    }
    dec = avcodec_alloc_context3(codec);
    if (dec == NULL) {
        rc = AVC_ENOMEM;
        goto done;
    }
    if (avcodec_parameters_to_context(dec, fmt->streams[idx]->codecpar) < 0)
    {
        goto done;
    }
    dec->pkt_timebase = fmt->streams[idx]->time_base;
    dec->thread_count = 1;
    if (avcodec_open2(dec, codec, NULL) < 0) {
        goto done;
    }

    for ( ;; ) {
        rc = av_read_frame(fmt, pkt);
        if (rc == AVERROR(ENOMEM)) {
            rc = AVC_ENOMEM;
            goto done;
        }
        if (rc < 0) {
            /* the end, or as far as a truncated file goes */
            break;
        }
        if (pkt->stream_index == idx) {
            rc = avcodec_send_packet(dec, pkt);
            if (rc == AVERROR(ENOMEM)) {
                av_packet_unref(pkt);
                rc = AVC_ENOMEM;
                goto done;
            }
            if (rc < 0) {
                o.bad++;
            }
        }
        av_packet_unref(pkt);
        rc = avc_ff_receive(&o, dec, fr);
        if (rc != AVC_OK) {
            goto done;
        }
    }
    if (avcodec_send_packet(dec, NULL) >= 0) {
        rc = avc_ff_receive(&o, dec, fr);
        if (rc != AVC_OK) {
            goto done;
        }
    }
    if (o.swr != NULL) {
        rc = avc_ff_convert(&o, NULL, 0);
        if (rc != AVC_OK) {
            goto done;
        }
    }

    /* nothing decoded, or mostly garbage */
    if (o.good == 0 || o.bad > o.good) {
        avc_log(AVC_LOG_DEBUG, "audio: %s: %lu frames decoded, %lu refused",
                avc_audio_ext(f), o.good, o.bad);
        rc = AVC_EPARSE;
        goto done;
    }
    if (o.pcm == NULL) {
        o.pcm = malloc(sizeof(int16_t));
        if (o.pcm == NULL) {
            rc = AVC_ENOMEM;
            goto done;
        }
    }
    *pcm = o.pcm;
    *samples = o.len;
    o.pcm = NULL;
    rc = AVC_OK;

done:
    free(o.pcm);
    swr_free(&o.swr);
    av_channel_layout_uninit(&o.layout);
    avcodec_free_context(&dec);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    if (io != NULL) {
        av_freep(&io->buffer);
        avio_context_free(&io);
    }
    return rc;
}

/* ------------------------------------------------------------- decode */

int
avc_audio_decode(const void *p, size_t n, avc_audio_format_t f,
                 unsigned max_ms, int16_t **pcm, size_t *samples)
{
    const unsigned char *b = p;
    size_t max, i;
    int16_t *o;

    if ((p == NULL && n > 0) || pcm == NULL || samples == NULL) {
        return AVC_EINVAL;
    }
    if (n == 0) {
        return AVC_EPARSE;
    }
    /* 0 means the ceiling: nothing decodes without a limit */
    if (max_ms == 0 || max_ms > AVC_AUDIO_CAP_MS) {
        max_ms = AVC_AUDIO_CAP_MS;
    }
    max = (size_t) max_ms * AVC_AUDIO_PER_MS;
    /* left open: the bytes decide, but are never taken for raw PCM */
    if (f == AVC_AUDIO_UNKNOWN) {
        f = avc_audio_detect(p, n, 0);
    }

    switch (f) {
    case AVC_AUDIO_PCM:
        if (n % 2 != 0) {
            return AVC_EPARSE;
        }
        if (n / 2 > max) {
            return AVC_ETOOBIG;
        }
        o = malloc(n);
        if (o == NULL) {
            return AVC_ENOMEM;
        }
        for (i = 0; i < n / 2; i++) {
            o[i] = (int16_t) avc_audio_rd16(b + 2 * i);
        }
        *pcm = o;
        *samples = n / 2;
        return AVC_OK;

    case AVC_AUDIO_WAV:
        return avc_wav_decode(b, n, max, pcm, samples);

    case AVC_AUDIO_WEBM:
    case AVC_AUDIO_MP4:
    case AVC_AUDIO_MP3:
    case AVC_AUDIO_OGG:
        if (n > INT64_MAX / 2) {
            return AVC_ETOOBIG;
        }
        return avc_ff_decode(p, n, f, max, pcm, samples);

    default:
        return AVC_EPARSE;
    }
}
