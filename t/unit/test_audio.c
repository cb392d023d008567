/*
 * Audio formats: detection by content, decoding to PCM16K and the WAV
 * writer, on real speech made at test time by espeak-ng and sox (both
 * required: the test fails without them), encoded to MP3 with LAME and to
 * WebM/Opus, OGG/Opus and M4A/AAC with FFmpeg's libraries (no tool here
 * writes those), OGG/Vorbis by sox.
 *
 *   build/t/test_audio [SECTION...]     e.g. "build/t/test_audio wav"
 *
 * Sections: detect wav resample hostile writer pcm containers broken
 * limits random threads fuzz.
 */
#include "tap.h"

#include <avatarcore/speech.h>

#include <lame/lame.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Tests only (src/speech/audio_int.h). */
int avc__audio_resample(const int16_t *in, size_t n, unsigned in_rate,
                        unsigned out_rate, int16_t **out, size_t *out_n);

#define COUNTOF(a) (sizeof(a) / sizeof((a)[0]))
#define SPEECH "The extended warranty covers the engine and the transmission"

static char dir[] = "/tmp/avc-test-audio-XXXXXX";

/* the espeak-ng utterance: its file, bytes and length by sox */
static unsigned char *speech_wav;
static size_t speech_len;
static double speech_sec;

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

static unsigned char *
slurp(const char *file, size_t *len)
{
    unsigned char *p = NULL;
    long n;
    FILE *f = fopen(file, "rb");

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0
        && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t) n + 1)))
    {
        *len = fread(p, 1, (size_t) n, f);
    }
    fclose(f);
    return p;
}

/* The length of an audio file in seconds, as sox reports it. */
static double
sox_seconds(const char *file)
{
    char cmd[1024], out[64] = "";
    FILE *f;

    snprintf(cmd, sizeof(cmd), "sox --i -D '%s'", file);
    f = popen(cmd, "r");
    if (f == NULL) {
        return -1;
    }
    if (fgets(out, sizeof(out), f) == NULL) {
        out[0] = '\0';
    }
    pclose(f);
    return out[0] ? atof(out) : -1;
}

/* Raw s16le samples written by sox (any rate, channels interleaved). */
static int16_t *
sox_raw(const char *in, unsigned rate, unsigned ch, size_t *n)
{
    unsigned char *b;
    int16_t *s;
    size_t len, i;

    *n = 0;
    if (!run("sox -R '%s' -r %u -c %u -b 16 -e signed -t raw '%s'", in, rate,
             ch, path("raw.tmp")))
    {
        return NULL;
    }
    b = slurp(path("raw.tmp"), &len);
    if (b == NULL) {
        return NULL;
    }
    s = malloc(len + 2);
    for (i = 0; s && i < len / 2; i++) {
        s[i] = (int16_t) (b[2 * i] | b[2 * i + 1] << 8);
    }
    free(b);
    *n = len / 2;
    return s;
}

static void
wr16(unsigned char *p, unsigned v)
{
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
}

static void
wr32(unsigned char *p, uint32_t v)
{
    wr16(p, v & 0xffff);
    wr16(p + 2, v >> 16);
}

static double
rms_db(const int16_t *s, size_t n)
{
    return avc_audio_dbfs(s, n);
}

/* the utterance decoded from its WAV: what other decodes should sound
 * like */
static int16_t *ref16;
static size_t ref16_n;

/*
 * How alike two PCM16K signals sound: the correlation of their 10 ms
 * level envelopes (dB, floored at -60), at the best shift within 100 ms.
 */
static double
envelope_match(const int16_t *a, size_t an, const int16_t *b, size_t bn)
{
    size_t na = an / 160, nb = bn / 160, i, n;
    double *ea = calloc(na + 1, sizeof(double));
    double *eb = calloc(nb + 1, sizeof(double));
    double best = -1, sa, sb, sab, saa, sbb, r, x, y;
    long lag;

    for (i = 0; ea && i < na; i++) {
        ea[i] = fmax(-60, avc_audio_dbfs(a + i * 160, 160));
    }
    for (i = 0; eb && i < nb; i++) {
        eb[i] = fmax(-60, avc_audio_dbfs(b + i * 160, 160));
    }
    for (lag = -10; ea && eb && lag <= 10; lag++) {
        sa = sb = sab = saa = sbb = 0;
        n = 0;
        for (i = 0; i < na; i++) {
            if ((long) i + lag < 0 || (size_t) ((long) i + lag) >= nb) {
                continue;
            }
            x = ea[i];
            y = eb[i + lag];
            sa += x;
            sb += y;
            sab += x * y;
            saa += x * x;
            sbb += y * y;
            n++;
        }
        if (n < 10) {
            continue;
        }
        r = (sab - sa * sb / n)
            / sqrt((saa - sa * sa / n) * (sbb - sb * sb / n) + 1e-9);
        if (r > best) {
            best = r;
        }
    }
    free(ea);
    free(eb);
    return best;
}

/* Decode and check the length against the truth in seconds. */
static int
decodes_to(const unsigned char *p, size_t n, avc_audio_format_t want,
           double sec, double tol, const char *name)
{
    int16_t *pcm = NULL;
    size_t samples = 0;
    avc_audio_format_t f = avc_audio_detect(p, n, 1);
    double got;
    int rc, ok;

    TAP_IS(f, want, "%s: detected as %s", name, avc_audio_ext(want));
    rc = avc_audio_decode(p, n, f, 60000, &pcm, &samples);
    TAP_IS(rc, AVC_OK, "%s: decodes", name);
    got = samples / 16000.0;
    ok = TAP_OK(rc == AVC_OK && fabs(got - sec) <= sec * tol,
                "%s: %.3f s of PCM16K for %.3f s (within %.1f%%)", name, got,
                sec, tol * 100);
    if (rc == AVC_OK) {
        /* speech, not silence or garbage at full scale */
        double db = rms_db(pcm, samples);
        TAP_OK(db > -35 && db < -10, "%s: speech level %.1f dBFS", name,
               db);
        if (ref16 != NULL) {
            double m = envelope_match(ref16, ref16_n, pcm, samples);
            TAP_OK(m > 0.95, "%s: sounds like the utterance (envelope "
                   "correlation %.3f)", name, m);
        }
    }
    free(pcm);
    return ok;
}

/* ---------------------------------------------------------- encoders */

/*
 * Encode interleaved s16 PCM with FFmpeg's libraries into a file of the
 * muxer's format.
 */
static int
av_encode(const char *file, const char *muxer, const char *codec_name,
          unsigned rate, unsigned ch, const int16_t *pcm, size_t frames)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(codec_name);
    AVFormatContext *oc = NULL;
    AVCodecContext *enc = NULL;
    AVStream *st;
    AVFrame *fr = NULL;
    AVPacket *pkt = NULL;
    size_t off, i, c, fs;
    int ok = 0, rc;

    if (codec == NULL) {
        tap_diag("no encoder %s", codec_name);
        return 0;
    }
    if (avformat_alloc_output_context2(&oc, NULL, muxer, file) < 0) {
        return 0;
    }
    st = avformat_new_stream(oc, NULL);
    enc = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (st == NULL || enc == NULL || pkt == NULL || fr == NULL) {
        goto done;
    }
    enc->sample_rate = (int) rate;
    av_channel_layout_default(&enc->ch_layout, (int) ch);
    enc->sample_fmt = codec->sample_fmts[0];
    enc->bit_rate = 64000;
    enc->time_base = (AVRational) { 1, (int) rate };
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) {
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    if (avcodec_open2(enc, codec, NULL) < 0
        || avcodec_parameters_from_context(st->codecpar, enc) < 0)
    {
        goto done;
    }
    st->time_base = enc->time_base;
    if (avio_open(&oc->pb, file, AVIO_FLAG_WRITE) < 0) {
        goto done;
    }
    if (avformat_write_header(oc, NULL) < 0) {
        goto done;
    }
    fs = enc->frame_size > 0 ? (size_t) enc->frame_size : 1024;
    fr->nb_samples = (int) fs;
    fr->format = enc->sample_fmt;
    fr->sample_rate = (int) rate;
    av_channel_layout_copy(&fr->ch_layout, &enc->ch_layout);
    if (av_frame_get_buffer(fr, 0) < 0) {
        goto done;
    }

    for (off = 0; ; off += fs) {
        if (off < frames) {
            if (av_frame_make_writable(fr) < 0) {
                goto done;
            }
            for (i = 0; i < fs; i++) {
                for (c = 0; c < ch; c++) {
                    int16_t v = off + i < frames ? pcm[(off + i) * ch + c]
                                                 : 0;
                    switch (enc->sample_fmt) {
                    case AV_SAMPLE_FMT_S16:
                        ((int16_t *) fr->data[0])[i * ch + c] = v;
                        break;
                    case AV_SAMPLE_FMT_FLT:
                        ((float *) fr->data[0])[i * ch + c] = v / 32768.0f;
                        break;
                    case AV_SAMPLE_FMT_FLTP:
                        ((float *) fr->data[c])[i] = v / 32768.0f;
                        break;
                    case AV_SAMPLE_FMT_S16P:
                        ((int16_t *) fr->data[c])[i] = v;
                        break;
                    default:
                        tap_diag("sample format %d", enc->sample_fmt);
                        goto done;
                    }
                }
            }
            fr->pts = (int64_t) off;
            rc = avcodec_send_frame(enc, fr);
        } else {
            rc = avcodec_send_frame(enc, NULL);
        }
        if (rc < 0) {
            goto done;
        }
        while ((rc = avcodec_receive_packet(enc, pkt)) == 0) {
            av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
            pkt->stream_index = st->index;
            if (av_interleaved_write_frame(oc, pkt) < 0) {
                goto done;
            }
        }
        if (rc == AVERROR_EOF) {
            break;
        }
        if (rc != AVERROR(EAGAIN)) {
            goto done;
        }
    }
    ok = av_write_trailer(oc) == 0;

done:
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&enc);
    if (oc != NULL) {
        avio_closep(&oc->pb);
        avformat_free_context(oc);
    }
    if (!ok) {
        tap_diag("encoding %s/%s failed", muxer, codec_name);
    }
    return ok;
}

/* MP3 by LAME, with the gapless info frame, optionally an ID3v2 tag. */
static unsigned char *
lame_encode(const int16_t *pcm, size_t frames, unsigned rate, unsigned ch,
            int id3, size_t *len)
{
    lame_t l = lame_init();
    unsigned char *out, tag[4096];
    size_t cap = frames * 5 / 4 + 16384, n = 0, start;
    int k;

    *len = 0;
    out = malloc(cap);
    if (l == NULL || out == NULL) {
        free(out);
        return NULL;
    }
    lame_set_in_samplerate(l, (int) rate);
    lame_set_num_channels(l, (int) ch);
    lame_set_mode(l, ch == 1 ? MONO : JOINT_STEREO);
    lame_set_brate(l, 64);
    lame_set_quality(l, 5);
    lame_set_write_id3tag_automatic(l, 0);
    if (id3) {
        id3tag_init(l);
        id3tag_add_v2(l);
        id3tag_set_title(l, "F&I training");
    }
    if (lame_init_params(l) < 0) {
        lame_close(l);
        free(out);
        return NULL;
    }
    if (id3) {
        n = lame_get_id3v2_tag(l, out, cap);
    }
    start = n;
    k = ch == 1
        ? lame_encode_buffer(l, pcm, pcm, (int) frames, out + n,
                             (int) (cap - n))
        : lame_encode_buffer_interleaved(l, (short *) pcm, (int) frames,
                                         out + n, (int) (cap - n));
    if (k >= 0) {
        n += (size_t) k;
        k = lame_encode_flush(l, out + n, (int) (cap - n));
    }
    if (k < 0) {
        lame_close(l);
        free(out);
        return NULL;
    }
    n += (size_t) k;
    /* the Xing/LAME frame written first is a placeholder until now */
    k = (int) lame_get_lametag_frame(l, tag, sizeof(tag));
    if (k > 0 && start + (size_t) k <= n) {
        memcpy(out + start, tag, (size_t) k);
    }
    lame_close(l);
    *len = n;
    return out;
}

/* -------------------------------------------------------------- tests */

static void
test_detect(void)
{
    static const unsigned char ebml[] = { 0x1a, 0x45, 0xdf, 0xa3, 0x9f };
    static const unsigned char ftyp[] = "\0\0\0\x20" "ftypM4A \0\0\0\0";
    static const unsigned char ogg[] = "OggS\0\x02";
    static const unsigned char id3[] = "ID3\x04\0\0\0\0\x01\x7f";
    static const unsigned char bad_id3[] = "ID3\x04\0\0\x80\0\x01\x7f";
    unsigned char pcm[64];

    TAP_IS(avc_audio_detect(speech_wav, speech_len, 1), AVC_AUDIO_WAV,
           "RIFF/WAVE is WAV");
    TAP_IS(avc_audio_detect(ebml, sizeof(ebml), 1), AVC_AUDIO_WEBM,
           "EBML is WebM");
    TAP_IS(avc_audio_detect(ftyp, sizeof(ftyp) - 1, 1), AVC_AUDIO_MP4,
           "ftyp at 4 is MP4");
    TAP_IS(avc_audio_detect(ogg, sizeof(ogg) - 1, 1), AVC_AUDIO_OGG,
           "OggS is OGG");
    TAP_IS(avc_audio_detect(id3, sizeof(id3) - 1, 1), AVC_AUDIO_MP3,
           "an ID3v2 tag is MP3");
    TAP_IS(avc_audio_detect(bad_id3, sizeof(bad_id3) - 1, 1), AVC_AUDIO_PCM,
           "'ID3' with a size that is not syncsafe is not MP3");
    TAP_IS(avc_audio_detect("RIFF\0\0\0\0WAVX", 12, 0), AVC_AUDIO_UNKNOWN,
           "RIFF that is not WAVE is unknown");

    memset(pcm, 0, sizeof(pcm));
    pcm[0] = 3;
    TAP_IS(avc_audio_detect(pcm, sizeof(pcm), 1), AVC_AUDIO_PCM,
           "unknown bytes of even length are PCM when allowed");
    TAP_IS(avc_audio_detect(pcm, sizeof(pcm), 0), AVC_AUDIO_UNKNOWN,
           "... and unknown when not");
    TAP_IS(avc_audio_detect(pcm, sizeof(pcm) - 1, 1), AVC_AUDIO_UNKNOWN,
           "odd length is never PCM");
    TAP_IS(avc_audio_detect(pcm, 0, 1), AVC_AUDIO_UNKNOWN,
           "nothing is unknown");
    TAP_IS(avc_audio_detect(NULL, 10, 1), AVC_AUDIO_UNKNOWN,
           "NULL is unknown");

    TAP_STR(avc_audio_mime(AVC_AUDIO_WAV), "audio/wav", "mime wav");
    TAP_STR(avc_audio_mime(AVC_AUDIO_WEBM), "audio/webm", "mime webm");
    TAP_STR(avc_audio_mime(AVC_AUDIO_MP4), "audio/mp4", "mime mp4");
    TAP_STR(avc_audio_mime(AVC_AUDIO_MP3), "audio/mpeg", "mime mp3");
    TAP_STR(avc_audio_mime(AVC_AUDIO_OGG), "audio/ogg", "mime ogg");
    TAP_OK(strncmp(avc_audio_mime(AVC_AUDIO_PCM), "audio/L16", 9) == 0,
           "mime pcm is audio/L16");
    TAP_STR(avc_audio_mime(AVC_AUDIO_UNKNOWN), "application/octet-stream",
            "mime unknown");
    TAP_STR(avc_audio_ext(AVC_AUDIO_WAV), "wav", "ext wav");
    TAP_STR(avc_audio_ext(AVC_AUDIO_WEBM), "webm", "ext webm");
    TAP_STR(avc_audio_ext(AVC_AUDIO_MP4), "m4a", "ext m4a");
    TAP_STR(avc_audio_ext(AVC_AUDIO_MP3), "mp3", "ext mp3");
    TAP_STR(avc_audio_ext(AVC_AUDIO_OGG), "ogg", "ext ogg");
    TAP_STR(avc_audio_ext(AVC_AUDIO_PCM), "pcm", "ext pcm");
    TAP_STR(avc_audio_ext((avc_audio_format_t) 99), "bin", "ext unknown");
}

/* Convert the utterance with sox and decode it. */
static void
wav_variant(const char *name, const char *sox_args, double level_db,
            const int16_t *ref, size_t ref_n)
{
    unsigned char *b;
    int16_t *pcm = NULL;
    size_t len, n = 0, i, m;
    double err = 0, sig = 0;
    char file[64];

    snprintf(file, sizeof(file), "%s.wav", name);
    if (!TAP_OK(run("sox -R '%s' %s '%s'", path("speech.wav"), sox_args,
                    path(file)), "%s: sox writes it", name))
    {
        return;
    }
    b = slurp(path(file), &len);
    decodes_to(b, len, AVC_AUDIO_WAV, sox_seconds(path(file)), 0.01, name);
    if (ref != NULL
        && avc_audio_decode(b, len, AVC_AUDIO_WAV, 0, &pcm, &n) == AVC_OK)
    {
        /* the same samples as the 16-bit mono decode, up to the
         * quantisation of the format */
        m = n < ref_n ? n : ref_n;
        for (i = 0; i < m; i++) {
            err += ((double) pcm[i] - ref[i]) * ((double) pcm[i] - ref[i]);
            sig += (double) ref[i] * ref[i];
        }
        TAP_OK(m > 0 && 10 * log10(sig / (err + 1)) > level_db,
               "%s: matches the 16-bit decode (SNR %.1f dB > %.0f)", name,
               10 * log10(sig / (err + 1)), level_db);
    }
    free(pcm);
    free(b);
}

static void
test_wav(void)
{
    int16_t *ref = NULL, *st = NULL;
    size_t n = 0, sn = 0;
    unsigned char *b;
    size_t len;

    decodes_to(speech_wav, speech_len, AVC_AUDIO_WAV, speech_sec, 0.002,
               "espeak-ng WAV (22050 Hz)");
    TAP_IS(avc_audio_decode(speech_wav, speech_len, AVC_AUDIO_WAV, 0, &ref,
                            &n), AVC_OK, "decode with no limit given");
    /* the stereo L + silence mix is the same sound 6 dB down */
    ref16 = ref;
    ref16_n = n;

    wav_variant("stereo44k", "-r 44100 -c 2", 30, NULL, 0);
    wav_variant("u8", "-b 8 -e unsigned", 20, ref, n);
    wav_variant("s24", "-b 24", 60, ref, n);
    wav_variant("s32", "-b 32", 60, ref, n);
    wav_variant("f32", "-e floating-point -b 32", 60, ref, n);
    wav_variant("f64", "-e floating-point -b 64", 60, ref, n);
    wav_variant("mono48k", "-r 48000", 30, NULL, 0);
    wav_variant("mono8k", "-r 8000", 30, NULL, 0);
    wav_variant("six", "-c 6", 60, ref, n);

    /* stereo mixdown is the mean: the right channel the inverse of the
     * left cancels, the right silent halves the level */
    if (TAP_OK(run("sox -R '%s' -r 44100 '%s'"
                   " && sox -R '%s' -r 44100 '%s' vol -1"
                   " && sox -R -M '%s' '%s' '%s'"
                   " && sox -R '%s' -r 44100 -c 2 '%s' remix 1 0",
                   path("speech.wav"), path("l.wav"), path("speech.wav"),
                   path("r.wav"), path("l.wav"), path("r.wav"),
                   path("cancel.wav"), path("speech.wav"), path("half.wav")),
               "sox writes the stereo files"))
    {
        b = slurp(path("cancel.wav"), &len);
        if (avc_audio_decode(b, len, AVC_AUDIO_UNKNOWN, 0, &st, &sn)
            == AVC_OK)
        {
            TAP_OK(rms_db(st, sn) < -70,
                   "L + (-L) mixes down to silence (%.1f dBFS)",
                   rms_db(st, sn));
        } else {
            TAP_OK(0, "stereo decodes");
        }
        free(st);
        st = NULL;
        free(b);
        b = slurp(path("half.wav"), &len);
        if (avc_audio_decode(b, len, AVC_AUDIO_WAV, 0, &st, &sn) == AVC_OK) {
            TAP_OK(fabs(rms_db(st, sn) - (rms_db(ref, n) - 6.02)) < 0.3,
                   "L + silence mixes down 6 dB lower (%.2f vs %.2f dBFS)",
                   rms_db(st, sn), rms_db(ref, n));
        } else {
            TAP_OK(0, "stereo decodes");
        }
        free(st);
        free(b);
    }
}

/* A sine at rate through the decoder: level and frequency at 16 kHz (a
 * prime rate takes the resampler's path without a polyphase bank). */
static void
test_resample(void)
{
    static const struct {
        unsigned rate;
        unsigned hz;
        int pass;               /* 1: kept, 0: removed (above 8 kHz) */
    } c[] = {
        { 44100, 1000, 1 }, { 48000, 3000, 1 }, { 22050, 440, 1 },
        { 8000, 1000, 1 }, { 11025, 2500, 1 }, { 32000, 5000, 1 },
        { 7919, 1500, 1 }, { 96000, 700, 1 },
        { 44100, 10000, 0 }, { 48000, 12000, 0 }, { 32000, 9000, 0 },
        { 22050, 8500, 0 }
    };
    unsigned char *b;
    int16_t *pcm;
    size_t len, n, i, k, zc;
    char file[64];
    double db, hz;

    for (k = 0; k < COUNTOF(c); k++) {
        snprintf(file, sizeof(file), "sine%u_%u.wav", c[k].rate, c[k].hz);
        if (!run("sox -R -n -r %u -b 16 -c 1 '%s' synth 1 sine %u vol 0.5",
                 c[k].rate, path(file), c[k].hz))
        {
            TAP_OK(0, "sox makes a sine");
            continue;
        }
        b = slurp(path(file), &len);
        pcm = NULL;
        n = 0;
        if (!TAP_OK(avc_audio_decode(b, len, AVC_AUDIO_WAV, 0, &pcm, &n)
                    == AVC_OK && n > 8000, "%u Hz at %u decodes", c[k].hz,
                    c[k].rate))
        {
            free(b);
            free(pcm);
            continue;
        }
        /* the middle, away from the edges */
        db = rms_db(pcm + 2000, n - 4000);
        if (c[k].pass) {
            for (i = 2001, zc = 0; i < n - 2000; i++) {
                zc += (pcm[i - 1] < 0) != (pcm[i] < 0);
            }
            hz = zc / 2.0 / ((n - 4001) / 16000.0);
            TAP_OK(fabs(db - -9.03) < 0.2 && fabs(hz - c[k].hz) < 3,
                   "%u Hz at %u Hz: %.2f dBFS, %.1f Hz at 16 kHz", c[k].hz,
                   c[k].rate, db, hz);
        } else {
            TAP_OK(db < -60, "%u Hz at %u Hz is filtered out, not aliased "
                   "(%.1f dBFS)", c[k].hz, c[k].rate, db);
        }
        free(pcm);
        free(b);
    }
}

/* The resampler the speech code shares, on s16 (espeak's 22050 Hz). */
static void
test_resample_s16(void)
{
    int16_t in[22050], *out = NULL;
    size_t i, n = 0, zc = 0;

    for (i = 0; i < COUNTOF(in); i++) {
        in[i] = (int16_t) lrint(16384 * sin(2 * M_PI * 300.0 * i / 22050));
    }
    TAP_IS(avc__audio_resample(in, COUNTOF(in), 22050, 16000, &out, &n),
           AVC_OK, "s16 22050 -> 16000");
    TAP_IS(n, 16000, "... 1 s in, 1 s out");
    for (i = 2001; i + 2000 < n; i++) {
        zc += (out[i - 1] < 0) != (out[i] < 0);
    }
    TAP_OK(n == 16000 && fabs(rms_db(out + 2000, n - 4000) - -9.03) < 0.1
           && fabs(zc / 2.0 / ((n - 4001) / 16000.0) - 300) < 2,
           "... the same 300 Hz sine at the same level");
    free(out);
    out = NULL;
    TAP_IS(avc__audio_resample(in, 0, 22050, 16000, &out, &n), AVC_OK,
           "nothing resamples to nothing");
    TAP_OK(out != NULL && n == 0, "... a valid empty array");
    free(out);
    TAP_IS(avc__audio_resample(in, 10, 0, 16000, &out, &n), AVC_EINVAL,
           "rate 0: AVC_EINVAL");
    TAP_IS(avc__audio_resample(in, 10, 16000, 1000000, &out, &n),
           AVC_EINVAL, "rate 1 MHz: AVC_EINVAL");
}

/* A WAV built by hand: fmt as given, LIST and odd chunks before data. */
static unsigned char *
wav_build(unsigned tag, unsigned ch, uint32_t rate, unsigned bits,
          unsigned align, uint32_t fmt_size, int extras, uint32_t data_size,
          size_t data_have, size_t *len)
{
    size_t n = 12 + 8 + (fmt_size < 64 ? fmt_size : 16) + 8 + data_have
               + (extras ? 8 + 26 + 8 + 5 + 1 : 0);
    unsigned char *p = calloc(1, n), *q;
    size_t i;

    memcpy(p, "RIFF", 4);
    wr32(p + 4, (uint32_t) (n - 8));
    memcpy(p + 8, "WAVE", 4);
    q = p + 12;
    if (extras) {
        memcpy(q, "LIST", 4);
        wr32(q + 4, 26);
        memcpy(q + 8, "INFOISFT\x0e\0\0\0Lavf59.27.100\0", 26);
        q += 8 + 26;
    }
    memcpy(q, "fmt ", 4);
    wr32(q + 4, fmt_size);
    wr16(q + 8, tag);
    wr16(q + 10, ch);
    wr32(q + 12, rate);
    wr32(q + 16, rate * align);
    wr16(q + 20, align);
    wr16(q + 22, bits);
    q += 8 + (fmt_size < 64 ? fmt_size : 16);
    if (extras) {
        /* an odd-sized chunk and its pad byte */
        memcpy(q, "junk", 4);
        wr32(q + 4, 5);
        memcpy(q + 8, "abcde", 5);
        q[13] = 0;
        q += 14;
    }
    memcpy(q, "data", 4);
    wr32(q + 4, data_size);
    q += 8;
    /* a 500 Hz square wave */
    for (i = 0; i + 1 < data_have; i += 2) {
        wr16(q + i, ((i / 2 / 16) & 1) ? 8000 : (uint16_t) -8000);
    }
    *len = (size_t) (q - p) + data_have;
    return p;
}

static void
hostile(const char *name, unsigned char *p, size_t len, int want)
{
    int16_t *pcm = (int16_t *) 1;
    size_t n = 7;
    int rc = avc_audio_decode(p, len, AVC_AUDIO_WAV, 60000, &pcm, &n);

    TAP_IS(rc, want, "%s: %s", name, avc_err_name(want));
    if (rc == AVC_OK) {
        free(pcm);
    } else {
        TAP_OK(pcm == (int16_t *) 1 && n == 7,
               "%s: outputs untouched on error", name);
    }
    free(p);
}

static void
bad_wav(const char *name, unsigned tag, unsigned ch, uint32_t rate,
        unsigned bits, unsigned align, uint32_t fmt_size, int extras,
        uint32_t data_size, size_t data_have)
{
    size_t len;
    unsigned char *p = wav_build(tag, ch, rate, bits, align, fmt_size,
                                 extras, data_size, data_have, &len);

    hostile(name, p, len, AVC_EPARSE);
}

static void
test_hostile(void)
{
    unsigned char *p, *ok_wav;
    int16_t *pcm = NULL;
    size_t len, ok_len, n = 0;

    /* the valid base: 16 kHz mono, LIST and an odd chunk, 1 s */
    ok_wav = wav_build(1, 1, 16000, 16, 2, 16, 1, 32000, 32000, &ok_len);
    TAP_IS(avc_audio_decode(ok_wav, ok_len, AVC_AUDIO_WAV, 0, &pcm, &n),
           AVC_OK, "LIST, fmt, odd chunk with pad, data: decodes");
    TAP_IS(n, 16000, "... all of its 16000 samples");
    TAP_OK(n == 16000 && pcm[0] == -8000 && pcm[16] == 8000
           && pcm[15999] == 8000, "... exactly (16 kHz passes unchanged)");
    free(pcm);

    p = wav_build(0xfffe, 1, 16000, 16, 2, 40, 0, 32000, 32000, &len);
    /* WAVE_FORMAT_EXTENSIBLE, PCM sub-format */
    {
        unsigned char *f = p + 12 + 8;
        static const unsigned char guid[16] = {
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71
        };
        wr16(f + 16, 22);
        wr16(f + 18, 16);
        wr32(f + 20, 4);
        memcpy(f + 24, guid, 16);
        pcm = NULL;
        TAP_IS(avc_audio_decode(p, len, AVC_AUDIO_WAV, 0, &pcm, &n), AVC_OK,
               "WAVE_FORMAT_EXTENSIBLE PCM decodes");
        TAP_IS(n, 16000, "... to 16000 samples");
        free(pcm);
        f[24] = 2;              /* ADPCM sub-format */
        hostile("EXTENSIBLE with an unsupported sub-format",
                p, len, AVC_EPARSE);
    }

    /* truncated: data claims more than there is, or everything */
    p = wav_build(1, 1, 16000, 16, 2, 16, 0, 320000, 32000, &len);
    pcm = NULL;
    TAP_IS(avc_audio_decode(p, len, AVC_AUDIO_WAV, 0, &pcm, &n), AVC_OK,
           "data size beyond the end: what is there decodes");
    TAP_IS(n, 16000, "... 1 s of it");
    free(pcm);
    free(p);
    p = wav_build(1, 1, 16000, 16, 2, 16, 0, 0xffffffff, 32001, &len);
    pcm = NULL;
    TAP_IS(avc_audio_decode(p, len, AVC_AUDIO_WAV, 0, &pcm, &n), AVC_OK,
           "streamed WAV (sizes 0xffffffff) decodes");
    TAP_IS(n, 16000, "... whole frames only");
    free(pcm);
    free(p);

    p = wav_build(1, 1, 16000, 16, 2, 16, 0, 32000, 32000, &len);
    hostile("first 30 bytes only", p, 30, AVC_EPARSE);
    bad_wav("0 channels",
            1, 0, 16000, 16, 0, 16, 0, 32000, 32000);
    bad_wav("65535 channels",
            1, 65535, 16000, 16, 65535u * 2 & 0xffff, 16, 0, 32000, 32000);
    bad_wav("rate 0",
            1, 1, 0, 16, 2, 16, 0, 32000, 32000);
    bad_wav("rate 4000000000",
            1, 1, 4000000000u, 16, 2, 16, 0, 32000, 32000);
    bad_wav("12 bits",
            1, 1, 16000, 12, 2, 16, 0, 32000, 32000);
    bad_wav("block align that does not match",
            1, 2, 16000, 16, 2, 16, 0, 32000, 32000);
    bad_wav("16-bit float",
            3, 1, 16000, 16, 2, 16, 0, 32000, 32000);
    bad_wav("A-law (unsupported)",
            6, 1, 8000, 8, 1, 16, 0, 32000, 32000);
    bad_wav("fmt chunk of 14 bytes",
            1, 1, 16000, 16, 2, 14, 0, 32000, 32000);
    bad_wav("fmt chunk claiming 0xfffffff0 bytes",
            1, 1, 16000, 16, 2, 0xfffffff0u, 0, 32000, 32000);
    p = wav_build(1, 1, 16000, 16, 2, 16, 1, 32000, 32000, &len);
    wr32(p + 16, 0xfffffffe);   /* the LIST chunk's size */
    hostile("LIST chunk claiming 4 GB", p, len, AVC_EPARSE);
    p = wav_build(1, 1, 16000, 16, 2, 16, 0, 32000, 32000, &len);
    memcpy(p + 12, "fmx ", 4);
    hostile("no fmt chunk before data", p, len, AVC_EPARSE);
    p = wav_build(1, 1, 16000, 16, 2, 16, 0, 32000, 32000, &len);
    memcpy(p + 36, "dat!", 4);
    hostile("no data chunk", p, len, AVC_EPARSE);
    p = wav_build(1, 1, 16000, 16, 2, 16, 1, 32000, 32000, &len);
    memcpy(p + 12 + 34 + 24, "fmt ", 4);  /* junk chunk becomes a 2nd fmt */
    hostile("two fmt chunks", p, len, AVC_EPARSE);
    p = malloc(12);
    memcpy(p, "RIFF\xff\xff\xff\xffWAVE", 12);
    hostile("RIFF/WAVE and nothing else", p, 12, AVC_EPARSE);
    p = wav_build(1, 1, 16000, 16, 2, 16, 0, 0, 0, &len);
    pcm = NULL;
    TAP_IS(avc_audio_decode(p, len, AVC_AUDIO_WAV, 0, &pcm, &n), AVC_OK,
           "an empty data chunk decodes");
    TAP_OK(n == 0 && pcm != NULL, "... to no samples (a valid array)");
    free(pcm);
    free(p);
    hostile("WAV declared, other bytes given",
            (unsigned char *) strdup("OggS and more bytes"), 19, AVC_EPARSE);
    free(ok_wav);
}

static void
test_writer(void)
{
    int16_t pcm[1000], *back = NULL;
    void *out = NULL;
    unsigned char *h;
    size_t len = 0, n = 0, i;
    int same = 1;

    for (i = 0; i < COUNTOF(pcm); i++) {
        pcm[i] = (int16_t) (i * 97 - 30000);
    }
    TAP_IS(avc_audio_wav(pcm, COUNTOF(pcm), 16000, &out, &len), AVC_OK,
           "avc_audio_wav");
    h = out;
    TAP_IS(len, 44 + 2000, "44-byte header + data");
    TAP_OK(len >= 44 && memcmp(h, "RIFF", 4) == 0
           && memcmp(h + 8, "WAVEfmt ", 8) == 0
           && memcmp(h + 36, "data", 4) == 0, "canonical chunk layout");
    TAP_OK(len >= 44 && h[4] == (36 + 2000) % 256 && h[5] == (36 + 2000) / 256
           && h[16] == 16 && h[20] == 1 && h[22] == 1
           && h[24] == 0x80 && h[25] == 0x3e && h[28] == 0x00 && h[29] == 0x7d
           && h[32] == 2 && h[34] == 16 && h[40] == 2000 % 256
           && h[41] == 2000 / 256, "header fields (sizes, PCM, mono, 16000 "
           "Hz, 32000 B/s, align 2, 16 bits)");
    TAP_IS(avc_audio_detect(out, len, 0), AVC_AUDIO_WAV, "detected as WAV");
    TAP_IS(avc_audio_decode(out, len, AVC_AUDIO_WAV, 0, &back, &n), AVC_OK,
           "decodes");
    for (i = 0; i < n && i < COUNTOF(pcm); i++) {
        same &= back[i] == pcm[i];
    }
    TAP_OK(n == COUNTOF(pcm) && same, "round trip is exact");
    free(back);
    free(out);
    TAP_IS(avc_audio_wav(pcm, 0, 22050, &out, &len), AVC_OK, "empty WAV");
    TAP_IS(len, 44, "... is the header");
    free(out);
    TAP_IS(avc_audio_wav(NULL, 5, 16000, &out, &len), AVC_EINVAL,
           "NULL pcm: AVC_EINVAL");
    TAP_IS(avc_audio_wav(pcm, 5, 0, &out, &len), AVC_EINVAL,
           "rate 0: AVC_EINVAL");
    TAP_IS(avc_audio_wav(pcm, (size_t) 1 << 31, 16000, &out, &len),
           AVC_ETOOBIG, "more than a RIFF size holds: AVC_ETOOBIG");

    /* the level meter */
    TAP_IS((long) avc_audio_dbfs(NULL, 0), -96, "dbfs of nothing");
    memset(pcm, 0, sizeof(pcm));
    TAP_IS((long) avc_audio_dbfs(pcm, COUNTOF(pcm)), -96, "dbfs of silence");
    for (i = 0; i < COUNTOF(pcm); i++) {
        pcm[i] = (int16_t) (16384 * sin(2 * M_PI * i / 40.0));
    }
    TAP_OK(fabs(avc_audio_dbfs(pcm, COUNTOF(pcm)) - -9.03) < 0.01,
           "a half-scale sine is -9.03 dBFS (%.3f)",
           avc_audio_dbfs(pcm, COUNTOF(pcm)));
    for (i = 0; i < COUNTOF(pcm); i++) {
        pcm[i] = i & 1 ? 32767 : -32767;
    }
    TAP_OK(fabs(avc_audio_dbfs(pcm, COUNTOF(pcm))) < 0.01,
           "a full-scale square is 0 dBFS");
    pcm[0] = 1;
    TAP_OK(fabs(avc_audio_dbfs(pcm, 1) - -90.31) < 0.01,
           "one LSB is -90.31 dBFS");
}

static void
test_pcm(void)
{
    int16_t *s, *pcm = NULL;
    size_t n, m = 0, i;
    unsigned char *b;
    int same = 1;

    s = sox_raw(path("speech.wav"), 16000, 1, &n);
    if (!TAP_OK(s != NULL && n > 16000, "sox writes raw PCM16K")) {
        free(s);
        return;
    }
    b = malloc(n * 2);
    for (i = 0; i < n; i++) {
        b[2 * i] = (unsigned char) s[i];
        b[2 * i + 1] = (unsigned char) ((uint16_t) s[i] >> 8);
    }
    TAP_IS(avc_audio_detect(b, n * 2, 1), AVC_AUDIO_PCM,
           "raw speech is PCM (not taken for MP3 or anything else)");
    TAP_IS(avc_audio_decode(b, n * 2, AVC_AUDIO_PCM, 60000, &pcm, &m), AVC_OK,
           "PCM decodes");
    for (i = 0; i < n && i < m; i++) {
        same &= pcm[i] == s[i];
    }
    TAP_OK(m == n && same, "PCM decodes to itself");
    free(pcm);
    TAP_IS(avc_audio_decode(b, n * 2 - 1, AVC_AUDIO_PCM, 60000, &pcm, &m),
           AVC_EPARSE, "PCM of odd length: AVC_EPARSE");
    TAP_IS(avc_audio_decode(b, n * 2, AVC_AUDIO_PCM, 1000, &pcm, &m),
           AVC_ETOOBIG, "PCM over max_ms: AVC_ETOOBIG");
    TAP_IS(avc_audio_decode(b, 32000, AVC_AUDIO_PCM, 1000, &pcm, &m),
           AVC_OK, "PCM of exactly max_ms is accepted");
    free(pcm);
    TAP_IS(avc_audio_decode(b, 0, AVC_AUDIO_PCM, 1000, &pcm, &m),
           AVC_EPARSE, "no bytes: AVC_EPARSE");
    TAP_IS(avc_audio_decode(NULL, 4, AVC_AUDIO_PCM, 1000, &pcm, &m),
           AVC_EINVAL, "NULL bytes: AVC_EINVAL");
    TAP_IS(avc_audio_decode(b, 4, AVC_AUDIO_PCM, 1000, NULL, &m),
           AVC_EINVAL, "NULL output: AVC_EINVAL");
    TAP_IS(avc_audio_decode(b, n * 2, AVC_AUDIO_UNKNOWN, 60000, &pcm, &m),
           AVC_EPARSE, "UNKNOWN format is detected, never assumed PCM");
    TAP_IS(avc_audio_decode(b, n * 2, (avc_audio_format_t) 42, 60000, &pcm,
                            &m), AVC_EPARSE, "an invalid format: AVC_EPARSE");
    free(b);
    free(s);
}

/* The containers, each made from the utterance and kept for later. */
typedef struct {
    const char *name;
    avc_audio_format_t f;
    unsigned char *p;
    size_t n;
} container_t;

static container_t cont[8];
static size_t ncont;

static void
container_add(const char *name, avc_audio_format_t f, unsigned char *p,
              size_t n)
{
    if (TAP_OK(p != NULL && n > 1000, "%s: encoded (%zu bytes)", name, n)) {
        if (getenv("AVC_TEST_KEEP") != NULL) {
            char file[32];
            FILE *fp;

            snprintf(file, sizeof(file), "kept%zu.%s", ncont,
                     avc_audio_ext(f));
            if ((fp = fopen(path(file), "wb")) != NULL) {
                fwrite(p, 1, n, fp);
                fclose(fp);
            }
        }
        cont[ncont].name = name;
        cont[ncont].f = f;
        cont[ncont].p = p;
        cont[ncont].n = n;
        ncont++;
    } else {
        free(p);
    }
}

static void
make_containers(void)
{
    static const struct {
        const char *name;
        const char *muxer;
        const char *codec;
        unsigned rate, ch;
        avc_audio_format_t f;
    } av[] = {
        { "WebM/Opus 48 kHz stereo", "webm", "libopus", 48000, 2,
          AVC_AUDIO_WEBM },
        { "OGG/Opus 16 kHz mono", "ogg", "libopus", 16000, 1, AVC_AUDIO_OGG },
        { "M4A/AAC 44.1 kHz stereo", "ipod", "aac", 44100, 2,
          AVC_AUDIO_MP4 },
        { "MP4/AAC 16 kHz mono", "mp4", "aac", 16000, 1, AVC_AUDIO_MP4 }
    };
    static const char *ext[] = { "webm", "ogg", "m4a", "mp4" };
    unsigned char *p;
    int16_t *s;
    size_t n, len, i;
    char file[64];

    ncont = 0;
    for (i = 0; i < COUNTOF(av); i++) {
        s = sox_raw(path("speech.wav"), av[i].rate, av[i].ch, &n);
        snprintf(file, sizeof(file), "c%zu.%s", i, ext[i]);
        if (s != NULL
            && av_encode(path(file), av[i].muxer, av[i].codec, av[i].rate,
                         av[i].ch, s, n / av[i].ch))
        {
            p = slurp(path(file), &len);
            container_add(av[i].name, av[i].f, p, len);
        } else {
            TAP_OK(0, "%s: encoded", av[i].name);
        }
        free(s);
    }

    s = sox_raw(path("speech.wav"), 16000, 1, &n);
    p = lame_encode(s, n, 16000, 1, 0, &len);
    container_add("MP3 16 kHz mono (MPEG-2)", AVC_AUDIO_MP3, p, len);
    free(s);
    s = sox_raw(path("speech.wav"), 44100, 2, &n);
    p = lame_encode(s, n / 2, 44100, 2, 1, &len);
    container_add("MP3 44.1 kHz stereo with ID3v2 (MPEG-1)", AVC_AUDIO_MP3,
                  p, len);
    free(s);

    if (run("sox -R '%s' -C 3 '%s'", path("speech.wav"), path("v.ogg"))) {
        p = slurp(path("v.ogg"), &len);
        container_add("OGG/Vorbis by sox", AVC_AUDIO_OGG, p, len);
    } else {
        TAP_OK(0, "sox writes OGG/Vorbis");
    }
}

static void
test_containers(void)
{
    size_t i;

    for (i = 0; i < ncont; i++) {
        decodes_to(cont[i].p, cont[i].n, cont[i].f, speech_sec, 0.05,
                   cont[i].name);
    }
    /* the first bytes of an MP3 without a tag: a frame, then more */
    for (i = 0; i < ncont; i++) {
        if (strncmp(cont[i].name, "MP3 16", 6) == 0) {
            TAP_OK(cont[i].p[0] == 0xff, "MP3 without ID3 starts with a "
                   "frame sync");
        }
    }
}

static void
test_broken(void)
{
    unsigned char junk[4096], *p;
    uint32_t x = 2463534242u;
    int16_t *pcm = (int16_t *) 1;
    size_t i, n;
    int rc;

    for (i = 0; i < sizeof(junk); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char) x;
    }
    for (i = 0; i < ncont; i++) {
        /* a head of the file: MP4 writes its index at the end, the others
         * are cut inside their headers */
        size_t cut = cont[i].f == AVC_AUDIO_MP4 ? cont[i].n * 3 / 5 : 40;
        rc = avc_audio_decode(cont[i].p, cut, cont[i].f, 60000, &pcm, &n);
        TAP_IS(rc, AVC_EPARSE, "%s cut to %zu bytes: AVC_EPARSE",
               cont[i].name, cut);
        if (rc == AVC_OK) {
            free(pcm);
        }

        /* its signature, then garbage */
        p = malloc(sizeof(junk));
        memcpy(p, junk, sizeof(junk));
        memcpy(p, cont[i].p, 16);
        rc = avc_audio_decode(p, sizeof(junk), cont[i].f, 60000, &pcm, &n);
        TAP_IS(rc, AVC_EPARSE, "%s signature then garbage: AVC_EPARSE",
               cont[i].name);
        if (rc == AVC_OK) {
            free(pcm);
        }
        free(p);
    }
    rc = avc_audio_decode(junk, sizeof(junk), AVC_AUDIO_WEBM, 60000, &pcm,
                          &n);
    TAP_IS(rc, AVC_EPARSE, "garbage declared WebM: AVC_EPARSE");
    rc = avc_audio_decode(junk, sizeof(junk), AVC_AUDIO_MP3, 60000, &pcm,
                          &n);
    TAP_IS(rc, AVC_EPARSE, "garbage declared MP3: AVC_EPARSE");
    rc = avc_audio_decode(junk, sizeof(junk), AVC_AUDIO_MP4, 60000, &pcm,
                          &n);
    TAP_IS(rc, AVC_EPARSE, "garbage declared MP4: AVC_EPARSE");
    rc = avc_audio_decode(junk, sizeof(junk), AVC_AUDIO_OGG, 60000, &pcm,
                          &n);
    TAP_IS(rc, AVC_EPARSE, "garbage declared OGG: AVC_EPARSE");
    TAP_OK(pcm == (int16_t *) 1, "outputs untouched on error");
}

static void
test_limits(void)
{
    unsigned ms = (unsigned) (speech_sec * 1000);
    int16_t *pcm = NULL;
    size_t i, n;
    int rc;

    TAP_IS(avc_audio_decode(speech_wav, speech_len, AVC_AUDIO_WAV, ms / 2,
                            &pcm, &n), AVC_ETOOBIG,
           "WAV over max_ms: AVC_ETOOBIG");
    for (i = 0; i < ncont; i++) {
        rc = avc_audio_decode(cont[i].p, cont[i].n, cont[i].f, ms / 2, &pcm,
                              &n);
        TAP_IS(rc, AVC_ETOOBIG, "%s over max_ms (%u ms): AVC_ETOOBIG",
               cont[i].name, ms / 2);
        if (rc == AVC_OK) {
            free(pcm);
        }
        rc = avc_audio_decode(cont[i].p, cont[i].n, AVC_AUDIO_UNKNOWN,
                              ms + 500, &pcm, &n);
        TAP_IS(rc, AVC_OK, "%s within max_ms, format left to detection",
               cont[i].name);
        if (rc == AVC_OK) {
            free(pcm);
        }
    }
}

/* Random bytes, even with a valid MPEG frame header in front, are PCM. */
static void
test_random(void)
{
    static const unsigned char heads[][4] = {
        { 0xff, 0xfb, 0x90, 0x64 },     /* MPEG-1 III 128k 44.1k */
        { 0xff, 0xf3, 0x58, 0xc4 },     /* MPEG-2 III 64k 16k */
        { 0xff, 0xfd, 0x94, 0x00 },     /* MPEG-1 II */
        { 0xff, 0xe3, 0x18, 0xc4 }      /* MPEG-2.5 III */
    };
    unsigned char buf[4096];
    uint64_t x = 88172645463325252ull;
    size_t i, k, trial, mp3 = 0, pcm = 0;

    for (trial = 0; trial < 20000; trial++) {
        for (i = 0; i < sizeof(buf); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (unsigned char) (x >> 24);
        }
        k = trial % (COUNTOF(heads) + 1);
        if (k < COUNTOF(heads)) {
            memcpy(buf, heads[k], 4);
        }
        switch (avc_audio_detect(buf, sizeof(buf), 1)) {
        case AVC_AUDIO_MP3:
            mp3++;
            break;
        case AVC_AUDIO_PCM:
            pcm++;
            break;
        default:
            break;
        }
    }
    TAP_IS(mp3, 0, "20000 random buffers (16000 with a valid frame header "
           "first): none is MP3");
    TAP_IS(pcm, 20000, "... all are PCM");

    /* sox's white noise as raw PCM */
    if (TAP_OK(run("sox -R -n -r 16000 -b 16 -c 1 -e signed -t raw '%s' synth 5"
                   " whitenoise", path("noise.raw")), "sox makes noise"))
    {
        unsigned char *b = slurp(path("noise.raw"), &k);
        for (i = 0, mp3 = 0; b && i + 4096 <= k; i += 2) {
            mp3 += avc_audio_detect(b + i, 4096, 1) == AVC_AUDIO_MP3;
        }
        TAP_IS(mp3, 0, "white noise at every offset: never MP3");
        free(b);
    }
}

/* Mutated files: any answer but a crash, a leak or a hang. */
static void
test_fuzz(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char *p;
    int16_t *pcm;
    size_t i, k, j, n, len, pos, bad = 0, ok = 0, runs = 0;
    int rc;

#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    for (i = 0; i <= ncont; i++) {
        const unsigned char *src = i < ncont ? cont[i].p : speech_wav;
        size_t sn = i < ncont ? cont[i].n : speech_len;

        for (k = 0; k < 60; k++) {
            p = malloc(sn);
            memcpy(p, src, sn);
            len = sn;
            n = 1 + NEXT() % 16;
            for (j = 0; j < n; j++) {
                /* half of the damage in the headers */
                pos = NEXT() % (k % 2 ? sn : (sn < 512 ? sn : 512));
                p[pos] = (unsigned char) NEXT();
            }
            if (k % 5 == 0) {
                len = 1 + NEXT() % sn;
            }
            pcm = NULL;
            rc = avc_audio_decode(p, len, avc_audio_detect(p, len, 0), 20000,
                                  &pcm, &n);
            runs++;
            if (rc == AVC_OK) {
                ok++;
                free(pcm);
            } else if (rc != AVC_EPARSE && rc != AVC_ETOOBIG) {
                bad++;
                tap_diag("fuzz %zu/%zu: %s", i, k, avc_err_name(rc));
            }
            free(p);
        }
    }
#undef NEXT
    TAP_OK(bad == 0, "%zu damaged files: each decodes or is refused with "
           "AVC_EPARSE/AVC_ETOOBIG (%zu decoded)", runs, ok);
}

typedef struct {
    const container_t *c;
    int16_t *ref;
    size_t ref_n;
    int ok;
} job_t;

static void *
worker(void *arg)
{
    job_t *j = arg;
    int16_t *pcm;
    size_t n, r;

    j->ok = 1;
    for (r = 0; r < 4; r++) {
        if (avc_audio_decode(j->c->p, j->c->n, j->c->f, 60000, &pcm, &n)
            != AVC_OK)
        {
            j->ok = 0;
            continue;
        }
        j->ok &= n == j->ref_n && memcmp(pcm, j->ref, n * 2) == 0;
        free(pcm);
    }
    return NULL;
}

static void
test_threads(void)
{
    job_t jobs[8];
    pthread_t t[8];
    size_t i, k = 0;
    int ok = 1;

    if (!TAP_OK(ncont > 0, "containers for the threads")) {
        return;
    }
    for (i = 0; i < 8; i++) {
        jobs[i].c = &cont[i % ncont];
        if (avc_audio_decode(jobs[i].c->p, jobs[i].c->n, jobs[i].c->f, 60000,
                             &jobs[i].ref, &jobs[i].ref_n) != AVC_OK)
        {
            jobs[i].ref = NULL;
            jobs[i].ref_n = 0;
        }
    }
    for (i = 0; i < 8; i++) {
        k += pthread_create(&t[i], NULL, worker, &jobs[i]) == 0;
    }
    for (i = 0; i < k; i++) {
        pthread_join(t[i], NULL);
        ok &= jobs[i].ok;
    }
    TAP_OK(k == 8 && ok, "8 threads decoding at once get the same PCM as "
           "one");
    for (i = 0; i < 8; i++) {
        free(jobs[i].ref);
    }
}

/* AVC_TEST_LOG=1: the library's log (FFmpeg's included) as comments */
static void
log_diag(void *data, avc_log_level_t level, const char *msg)
{
    tap_diag("log %d: %s", (int) level, msg);
}

int
main(int argc, char **argv)
{
    size_t i;

    tap_select(argc, argv);
    if (getenv("AVC_TEST_LOG") != NULL) {
        avc_log_set(log_diag, NULL, AVC_LOG_DEBUG);
    }
    /* the encoders' statistics */
    av_log_set_level(getenv("AVC_TEST_LOG") ? AV_LOG_INFO : AV_LOG_ERROR);

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    /* required tools: a missing one is a failure, never a skip */
    TAP_OK(run("espeak-ng --version >/dev/null"), "espeak-ng is installed");
    TAP_OK(run("sox --version >/dev/null"), "sox is installed");
    TAP_OK(run("espeak-ng -w '%s' '%s'", path("speech.wav"), SPEECH),
           "espeak-ng speaks the test sentence");
    speech_wav = slurp(path("speech.wav"), &speech_len);
    speech_sec = sox_seconds(path("speech.wav"));
    if (!TAP_OK(speech_wav != NULL && speech_sec > 2,
                "the utterance: %.3f s", speech_sec))
    {
        run("rm -rf '%s'", dir);
        return tap_done();
    }

    if (tap_section("detect")) {
        test_detect();
    }
    if (tap_section("wav")) {
        test_wav();
    }
    if (tap_section("resample")) {
        test_resample();
        test_resample_s16();
    }
    if (tap_section("hostile")) {
        test_hostile();
    }
    if (tap_section("writer")) {
        test_writer();
    }
    if (tap_section("pcm")) {
        test_pcm();
    }
    if (tap_section("containers") || tap_section("broken") || tap_section("limits")
        || tap_section("threads") || tap_section("fuzz"))
    {
        make_containers();
    }
    if (tap_section("containers")) {
        test_containers();
    }
    if (tap_section("broken")) {
        test_broken();
    }
    if (tap_section("limits")) {
        test_limits();
    }
    if (tap_section("random")) {
        test_random();
    }
    if (tap_section("threads")) {
        test_threads();
    }
    if (tap_section("fuzz")) {
        test_fuzz();
    }

    for (i = 0; i < ncont; i++) {
        free(cont[i].p);
    }
    free(speech_wav);
    free(ref16);
    if (getenv("AVC_TEST_KEEP") == NULL) {
        run("rm -rf '%s'", dir);
    } else {
        tap_diag("files kept in %s", dir);
    }
    return tap_done();
}
