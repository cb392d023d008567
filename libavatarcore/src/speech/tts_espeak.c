/*
 * The offline provider: espeak-ng synthesises the sentence on the
 * thread pool (avc_offload), never on the loop.
 *
 * espeak-ng keeps one global state (voice, parameters, the synth
 * callback), so every use of it holds avc_espeak_mu; it runs in
 * AUDIO_OUTPUT_SYNCHRONOUS mode, its callback collecting the 22050 Hz
 * samples and the phoneme events (espeakINITIALIZE_PHONEME_EVENTS, with
 * espeak's own mnemonics: "h", "@", "l", "oU", "_:"...) of the job being
 * synthesised.  The rest of the work needs no lock: the visemes from the
 * phoneme events, then the audio in the format asked for,
 *
 *   PCM16K  resampled 22050 -> 16000 Hz by a windowed-sinc filter
 *           (polyphase: 320 phases of 32 taps, cut-off 7.6 kHz);
 *   MP3     encoded by LAME: mono, 22050 Hz (MPEG-2 layer III, 576
 *           samples a frame), 64 kbps CBR, no Xing/Info frame, no ID3
 *           tag and no bit reservoir, so that any run of frames decodes
 *           on its own.  The visemes move by the encoder's delay.
 *
 * The result goes back to the loop in the work's completion, and from
 * there to the caller: the visemes at once, then the audio in pieces of
 * about a quarter of a second, one per loop iteration, then on_done.
 *
 * Cancelling lets go of the work: its stop flag makes the synth callback
 * end espeak's synthesis early, and its completion frees it unseen.
 */
#include "tts_int.h"

#include <espeak-ng/speak_lib.h>
#include <lame/lame.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AVC_ESPEAK_PIECE_MS   250
#define AVC_ESPEAK_KBPS       64
/* the audio of one request at most (5000 characters at 80 words a
 * minute take about 11 minutes) */
#define AVC_ESPEAK_MAX_S      (15 * 60)
/* PCM16K resampling */
#define AVC_RS_UP             320   /* 16000 / 22050 = 320 / 441 */
#define AVC_RS_DOWN           441
#define AVC_RS_HALF           16    /* taps on each side */
#define AVC_RS_TAPS           (2 * AVC_RS_HALF)
#define AVC_RS_CUTOFF_HZ      7600.0

typedef struct {
    unsigned ms;                /* from the start of the audio */
    char name[9];               /* espeak's mnemonic */
} avc_espeak_ph_t;

struct avc__espeak_job_s {
    avc_tts_op_t *op;           /* loop side: NULL once the op let go */
    atomic_int stop;            /* set on the loop, read by the work */
    avc_tts_format_t format;
    unsigned rate;
    char voice[AVC__TTS_VOICE_LEN + 1];
    char *text;

    /* the work's results */
    int err;
    const char *error;          /* static client message, or NULL */
    int oom;
    unsigned hz;                /* espeak's sample rate */
    int16_t *pcm;
    size_t samples;
    size_t cap;
    avc_espeak_ph_t *ph;
    size_t nph;
    size_t phcap;
    unsigned char *out;         /* the audio in the format asked for */
    size_t out_len;
    size_t *cuts;               /* end of each piece in out */
    size_t ncuts;
    avc__visemes_t vis;
    unsigned audio_ms;
};

/* espeak-ng's global state, all under avc_espeak_mu */
static pthread_mutex_t avc_espeak_mu = PTHREAD_MUTEX_INITIALIZER;
static int avc_espeak_hz;                   /* 0: not yet, -1: failed */
static char avc_espeak_voice[AVC__TTS_VOICE_LEN + 1];   /* set now */
static avc__espeak_job_t *avc_espeak_cur;   /* being synthesised */

/* LAME's parameter set-up fills shared tables */
static pthread_mutex_t avc_lame_mu = PTHREAD_MUTEX_INITIALIZER;

static pthread_once_t avc_rs_once = PTHREAD_ONCE_INIT;
static float avc_rs_table[AVC_RS_UP][AVC_RS_TAPS];

/* the synthesis, under avc_espeak_mu */

static int
avc_espeak_synth_cb(short *wav, int n, espeak_EVENT *ev)
{
    avc__espeak_job_t *job = avc_espeak_cur;
    avc_espeak_ph_t *ph;
    int16_t *pcm;
    size_t cap;

    if (job == NULL || job->oom || job->err
        || atomic_load(&job->stop))
    {
        return 1;
    }
    if (wav != NULL && n > 0) {
        if (job->samples + (size_t) n > job->cap) {
            cap = job->cap ? job->cap : 22050;
            while (cap < job->samples + (size_t) n) {
                cap *= 2;
            }
            pcm = realloc(job->pcm, cap * sizeof(*pcm));
            if (pcm == NULL) {
                job->oom = 1;
                return 1;
            }
            job->pcm = pcm;
            job->cap = cap;
        }
        memcpy(job->pcm + job->samples, wav, (size_t) n * sizeof(*wav));
        job->samples += (size_t) n;
        if (job->samples > (size_t) AVC_ESPEAK_MAX_S * job->hz) {
            job->err = AVC_ETOOBIG;
            job->error = "The text is too long to be spoken";
            return 1;
        }
    }
    for (; ev != NULL && ev->type != espeakEVENT_LIST_TERMINATED; ev++) {
        if (ev->type != espeakEVENT_PHONEME) {
            continue;
        }
        if (job->nph == job->phcap) {
            cap = job->phcap ? job->phcap * 2 : 64;
            ph = realloc(job->ph, cap * sizeof(*ph));
            if (ph == NULL) {
                job->oom = 1;
                return 1;
            }
            job->ph = ph;
            job->phcap = cap;
        }
        ph = &job->ph[job->nph++];
        ph->ms = ev->audio_position > 0 ? (unsigned) ev->audio_position : 0;
        memcpy(ph->name, ev->id.string, sizeof(ev->id.string));
        ph->name[sizeof(ev->id.string)] = '\0';
    }
    return 0;
}

static int
avc_espeak_synth(avc__espeak_job_t *job)
{
    espeak_ERROR e;

    if (avc_espeak_hz == 0) {
        avc_espeak_hz = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200,
                                          NULL,
                                          espeakINITIALIZE_PHONEME_EVENTS
                                          | espeakINITIALIZE_DONT_EXIT);
        if (avc_espeak_hz <= 0) {
            avc_espeak_hz = -1;
            avc_log(AVC_LOG_ERR, "tts: espeak-ng cannot start (is "
                    "espeak-ng-data installed?)");
        } else {
            espeak_SetSynthCallback(avc_espeak_synth_cb);
        }
    }
    if (avc_espeak_hz < 0) {
        job->error = "The offline speech synthesizer is not available";
        return AVC_ESYS;
    }
    job->hz = (unsigned) avc_espeak_hz;
    if (strcmp(avc_espeak_voice, job->voice) != 0) {
        avc_espeak_voice[0] = '\0';
        if (espeak_SetVoiceByName(job->voice) != EE_OK) {
            avc_log(AVC_LOG_ERR, "tts: espeak-ng has no voice \"%s\"",
                    job->voice);
            job->error = "The voice is not available";
            return AVC_EINVAL;
        }
        snprintf(avc_espeak_voice, sizeof(avc_espeak_voice), "%s",
                 job->voice);
    }
    espeak_SetParameter(espeakRATE, (int) job->rate, 0);
    avc_espeak_cur = job;
    e = espeak_Synth(job->text, strlen(job->text) + 1, 0, POS_CHARACTER, 0,
                     espeakCHARS_UTF8 | espeakENDPAUSE, NULL, job);
    avc_espeak_cur = NULL;
    if (job->oom) {
        return AVC_ENOMEM;
    }
    if (job->err) {
        return job->err;
    }
    if (atomic_load(&job->stop)) {
        return AVC_ECANCELED;
    }
    if (e != EE_OK) {
        avc_log(AVC_LOG_ERR, "tts: espeak-ng failed (%d)", (int) e);
        return AVC_ESYS;
    }
    return AVC_OK;
}

/* phonemes to visemes */

typedef struct {
    const char *ph;
    const char *a;
    const char *b;              /* a diphthong's second shape, or NULL */
} avc_espeak_map_t;

/* espeak's en-us mnemonics that the first letter does not tell */
static const avc_espeak_map_t avc_espeak_map[] = {
    { "aI", "aa", "I" }, { "aI@", "aa", "I" }, { "aI3", "aa", "I" },
    { "aU", "aa", "U" }, { "aU@", "aa", "U" }, { "eI", "E", "I" },
    { "OI", "O", "I" }, { "oU", "O", "U" }, { "i@", "I", "E" },
    { "i@3", "I", "E" }, { "@L", "nn", NULL }, { "tS", "CH", NULL },
    { "dZ", "CH", NULL }, { "?", "sil", NULL }, { "j", "I", NULL },
    { "w", "U", NULL }, { "h", "kk", NULL }, { "x", "kk", NULL },
    { "N", "kk", NULL },
};

/* the shapes of a phoneme: 0 (merge into the previous), 1 or 2 */
static int
avc_espeak_shapes(const char *ph, const char **a, const char **b)
{
    size_t i;

    *a = *b = NULL;
    for (i = 0; i < avc__countof(avc_espeak_map); i++) {
        if (strcmp(ph, avc_espeak_map[i].ph) == 0) {
            *a = avc__viseme_name(avc_espeak_map[i].a);
            *b = avc_espeak_map[i].b ? avc__viseme_name(avc_espeak_map[i].b)
                                     : NULL;
            return *b ? 2 : 1;
        }
    }
    switch (ph[0]) {
    case '_':
        *a = "sil";
        break;
    case 'p': case 'b': case 'm':
        *a = "PP";
        break;
    case 'f': case 'v':
        *a = "FF";
        break;
    case 'T': case 'D':
        *a = "TH";
        break;
    case 't': case 'd':
        *a = "DD";
        break;
    case 'k': case 'g': case 'x': case 'N': case 'h': case 'q': case 'c':
        *a = "kk";
        break;
    case 'S': case 'Z': case 'J':
        *a = "CH";
        break;
    case 's': case 'z':
        *a = "SS";
        break;
    case 'n': case 'l': case 'L':
        *a = "nn";
        break;
    case 'r': case 'R':
        *a = "RR";
        break;
    case 'a': case 'A': case 'V': case '&':
        *a = "aa";
        break;
    case 'e': case 'E': case '@': case '3':
        *a = "E";
        break;
    case 'i': case 'I': case 'y': case 'j':
        *a = "I";
        break;
    case 'o': case 'O': case '0':
        *a = "O";
        break;
    case 'u': case 'U': case 'w':
        *a = "U";
        break;
    default:
        return 0;               /* a modifier (";") or unknown */
    }
    *a = avc__viseme_name(*a);
    return 1;
}

/*
 * The visemes of the phoneme events, moved by offset_ms (the MP3
 * encoder's delay), up to end_ms: silence before the first phoneme and
 * after the last one's end.
 */
static int
avc_espeak_visemes(avc__espeak_job_t *job, unsigned offset_ms,
    unsigned end_ms)
{
    unsigned pcm_ms = (unsigned) ((uint64_t) job->samples * 1000 / job->hz);
    unsigned s, e, half, last_end;
    const char *a, *b, *sil = avc__viseme_name("sil");
    avc_viseme_t *last;
    size_t i;
    int rc = AVC_OK, k;

    s = job->nph ? offset_ms + job->ph[0].ms : end_ms;
    rc |= avc__visemes_add(&job->vis, 0, s < end_ms ? s : end_ms, sil);
    for (i = 0; i < job->nph && rc == AVC_OK; i++) {
        s = offset_ms + job->ph[i].ms;
        e = offset_ms + (i + 1 < job->nph ? job->ph[i + 1].ms : pcm_ms);
        if (e > end_ms) {
            e = end_ms;
        }
        if (e <= s) {
            continue;
        }
        k = avc_espeak_shapes(job->ph[i].name, &a, &b);
        last = job->vis.n ? &job->vis.v[job->vis.n - 1] : NULL;
        if (k == 0 && last && last->t_ms + last->d_ms == s) {
            last->d_ms += e - s;
        } else if (k == 0) {
            rc |= avc__visemes_add(&job->vis, s, e - s, sil);
        } else if (k == 1) {
            rc |= avc__visemes_add(&job->vis, s, e - s, a);
        } else {
            half = (e - s) / 2;
            rc |= avc__visemes_add(&job->vis, s, half, a);
            rc |= avc__visemes_add(&job->vis, s + half, e - s - half, b);
        }
    }
    last = job->vis.n ? &job->vis.v[job->vis.n - 1] : NULL;
    last_end = last ? last->t_ms + last->d_ms : 0;
    if (rc == AVC_OK && last_end < end_ms) {
        rc = avc__visemes_add(&job->vis, last_end, end_ms - last_end, sil);
    }
    return rc == AVC_OK ? AVC_OK : AVC_ENOMEM;
}

/* PCM16K */

static void
avc_rs_init(void)
{
    double fc = AVC_RS_CUTOFF_HZ / 22050.0, frac, t, h, w, sum;
    int ph, j;

    for (ph = 0; ph < AVC_RS_UP; ph++) {
        frac = (double) ph / AVC_RS_UP;
        sum = 0;
        for (j = 0; j < AVC_RS_TAPS; j++) {
            t = (double) (j - (AVC_RS_HALF - 1)) - frac;
            h = t == 0 ? 2 * fc : sin(2 * M_PI * fc * t) / (M_PI * t);
            w = 0.42 + 0.5 * cos(M_PI * t / AVC_RS_HALF)
                + 0.08 * cos(2 * M_PI * t / AVC_RS_HALF);
            avc_rs_table[ph][j] = (float) (h * w);
            sum += h * w;
        }
        for (j = 0; j < AVC_RS_TAPS; j++) {
            avc_rs_table[ph][j] = (float) (avc_rs_table[ph][j] / sum);
        }
    }
}

/* job->pcm (22050 Hz) to job->out as s16le at 16000 Hz */
static int
avc_espeak_pcm16k(avc__espeak_job_t *job)
{
    size_t n = job->samples * AVC_RS_UP / AVC_RS_DOWN, m, piece, i;
    const int16_t *in = job->pcm;
    const float *tab;
    uint64_t pos;
    long long k;
    double acc;
    long v;
    int j;

    pthread_once(&avc_rs_once, avc_rs_init);
    job->out = malloc(n * 2 + 1);
    piece = (size_t) 16 * AVC_ESPEAK_PIECE_MS;     /* samples */
    job->cuts = malloc(((n + piece - 1) / piece + 1) * sizeof(size_t));
    if (job->out == NULL || job->cuts == NULL) {
        return AVC_ENOMEM;
    }
    for (m = 0; m < n; m++) {
        if ((m & 4095) == 0 && atomic_load(&job->stop)) {
            return AVC_ECANCELED;
        }
        pos = (uint64_t) m * AVC_RS_DOWN;
        tab = avc_rs_table[pos % AVC_RS_UP];
        k = (long long) (pos / AVC_RS_UP) - (AVC_RS_HALF - 1);
        acc = 0;
        for (j = 0; j < AVC_RS_TAPS; j++, k++) {
            if (k >= 0 && (size_t) k < job->samples) {
                acc += tab[j] * in[k];
            }
        }
        v = lround(acc);
        v = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
        job->out[2 * m] = (unsigned char) (v & 0xff);
        job->out[2 * m + 1] = (unsigned char) (((unsigned long) v >> 8)
                                               & 0xff);
    }
    job->out_len = n * 2;
    for (i = piece; i < n; i += piece) {
        job->cuts[job->ncuts++] = i * 2;
    }
    if (n) {
        job->cuts[job->ncuts++] = n * 2;
    }
    job->audio_ms = (unsigned) (n / 16);
    return avc_espeak_visemes(job, 0, job->audio_ms);
}

/* MP3 */

static int
avc_espeak_mp3(avc__espeak_job_t *job)
{
    unsigned flen, spf, sr, frames = 0, per_piece, delay_ms;
    uint64_t samples = 0;
    lame_global_flags *gf;
    size_t cap, len = 0, pos, i, block = 8192, nb, maxcuts;
    unsigned char *p;
    int r, delay, oom = 0;

    pthread_mutex_lock(&avc_lame_mu);
    gf = lame_init();
    r = -1;
    if (gf != NULL) {
        lame_set_num_channels(gf, 1);
        lame_set_in_samplerate(gf, (int) job->hz);
        lame_set_out_samplerate(gf, (int) job->hz);
        lame_set_mode(gf, MONO);
        lame_set_VBR(gf, vbr_off);
        lame_set_brate(gf, AVC_ESPEAK_KBPS);
        lame_set_quality(gf, 5);
        lame_set_bWriteVbrTag(gf, 0);
        lame_set_write_id3tag_automatic(gf, 0);
        lame_set_disable_reservoir(gf, 1);
        r = lame_init_params(gf);
    }
    pthread_mutex_unlock(&avc_lame_mu);
    if (r < 0) {
        if (gf) {
            lame_close(gf);
        }
        avc_log(AVC_LOG_ERR, "tts: LAME cannot start");
        job->error = "The MP3 encoder failed";
        return AVC_ESYS;
    }

    cap = job->samples * 5 / 4 + 4 * 7200;
    job->out = malloc(cap);
    oom = job->out == NULL;
    r = oom ? -1 : 0;
    for (i = 0; r >= 0 && i < job->samples; i += nb) {
        if (atomic_load(&job->stop)) {
            lame_close(gf);
            return AVC_ECANCELED;
        }
        nb = job->samples - i < block ? job->samples - i : block;
        if (cap - len < nb * 5 / 4 + 7200) {
            cap = cap * 2 + nb * 5 / 4 + 7200;
            p = realloc(job->out, cap);
            if (p == NULL) {
                oom = 1;
                r = -1;
                break;
            }
            job->out = p;
        }
        r = lame_encode_buffer(gf, job->pcm + i, job->pcm + i, (int) nb,
                               job->out + len, (int) (cap - len));
        if (r > 0) {
            len += (size_t) r;
        }
    }
    if (r >= 0 && cap - len < 7200) {
        cap += 7200;
        p = realloc(job->out, cap);
        oom = p == NULL;
        r = oom ? -1 : 0;
        if (p) {
            job->out = p;
        }
    }
    if (r >= 0) {
        r = lame_encode_flush(gf, job->out + len, (int) (cap - len));
        if (r > 0) {
            len += (size_t) r;
        }
    }
    delay = lame_get_encoder_delay(gf);
    lame_close(gf);
    if (r < 0) {
        if (oom) {
            return AVC_ENOMEM;
        }
        avc_log(AVC_LOG_ERR, "tts: LAME failed (%d)", r);
        job->error = "The MP3 encoder failed";
        return AVC_ESYS;
    }
    job->out_len = len;

    /* pieces of whole frames, about AVC_ESPEAK_PIECE_MS each */
    per_piece = (unsigned) ((uint64_t) job->hz * AVC_ESPEAK_PIECE_MS / 1000
                            / 576);
    per_piece = per_piece ? per_piece : 1;
    maxcuts = len / 24 / per_piece + 2;         /* frames >= 24 bytes */
    job->cuts = malloc(maxcuts * sizeof(size_t));
    if (job->cuts == NULL) {
        return AVC_ENOMEM;
    }
    for (pos = 0; pos < len; pos += flen) {
        if (!avc__mp3_frame(job->out + pos, len - pos, &flen, &spf, &sr)
            || pos + flen > len)
        {
            avc_log(AVC_LOG_ERR, "tts: LAME wrote something that is not "
                    "a frame at byte %zu of %zu", pos, len);
            job->error = "The MP3 encoder failed";
            return AVC_ESYS;
        }
        samples += spf;
        if (++frames % per_piece == 0 && job->ncuts < maxcuts) {
            job->cuts[job->ncuts++] = pos + flen;
        }
    }
    if (len && (job->ncuts == 0 || job->cuts[job->ncuts - 1] != len)) {
        job->cuts[job->ncuts++] = len;
    }
    job->audio_ms = (unsigned) (samples * 1000 / job->hz);
    /* what a decoder plays first: the encoder's delay and its own */
    delay_ms = (unsigned) ((uint64_t) (delay > 0 ? delay : 0) + 529) * 1000
               / job->hz;
    return avc_espeak_visemes(job, delay_ms, job->audio_ms);
}

/* the work, on a pool thread */

static void
avc_espeak_work(void *arg)
{
    avc__espeak_job_t *job = arg;
    int rc;

    if (atomic_load(&job->stop)) {
        return;
    }
    pthread_mutex_lock(&avc_espeak_mu);
    rc = avc_espeak_synth(job);
    pthread_mutex_unlock(&avc_espeak_mu);
    if (rc == AVC_OK && job->samples == 0) {
        job->error = "The speech synthesizer produced no audio";
        rc = AVC_ESYS;
    }
    if (rc == AVC_OK) {
        rc = job->format == AVC_TTS_MP3 ? avc_espeak_mp3(job)
                                        : avc_espeak_pcm16k(job);
    }
    free(job->pcm);
    job->pcm = NULL;
    job->err = rc;
}

static void
avc_espeak_job_free(avc__espeak_job_t *job)
{
    free(job->text);
    free(job->pcm);
    free(job->ph);
    free(job->out);
    free(job->cuts);
    free(job->vis.v);
    free(job);
}

/* the pieces, one per loop iteration */
static void
avc_espeak_step(avc_timer_t *timer, void *arg)
{
    avc_tts_op_t *op = arg;
    size_t start;

    avc__tts_enter(op);
    if (op->piece < op->ncuts) {
        start = op->piece ? op->cuts[op->piece - 1] : 0;
        op->piece++;
        if (avc__tts_audio(op, op->audio + start,
                           op->cuts[op->piece - 1] - start) != AVC_OK)
        {
            avc__tts_leave(op);
            return;
        }
    }
    if (op->piece < op->ncuts) {
        avc_timer_start(op->pace_timer, 0);
    } else {
        avc__tts_finish(op, AVC_OK);
    }
    avc__tts_leave(op);
}

/* the work is over, on the loop */
static void
avc_espeak_done(void *arg, int status)
{
    avc__espeak_job_t *job = arg;
    avc_tts_op_t *op = job->op;
    int err;

    if (op == NULL) {
        avc_espeak_job_free(job);
        return;
    }
    op->job = NULL;
    avc__tts_enter(op);
    err = status != AVC_OK ? status : job->err;
    if (err != AVC_OK) {
        if (err != AVC_ECANCELED) {
            avc_log(AVC_LOG_WARN, "tts: espeak voice %s: %s", op->voice,
                    avc_strerror(err));
        }
        op->error = job->error;
        avc__tts_finish(op, err);
    } else {
        op->audio = job->out;
        op->cuts = job->cuts;
        op->ncuts = job->ncuts;
        op->audio_ms = job->audio_ms;
        job->out = NULL;
        job->cuts = NULL;
        if (avc__tts_visemes(op, job->vis.v, job->vis.n) == AVC_OK) {
            avc_timer_start(op->pace_timer, 0);
        }
    }
    avc__tts_leave(op);
    avc_espeak_job_free(job);
}

int
avc__tts_espeak_start(avc_tts_op_t *op)
{
    avc__espeak_job_t *job;
    int rc;

    op->pace_timer = avc_timer_new(op->tts->loop, avc_espeak_step, op);
    job = calloc(1, sizeof(*job));
    if (op->pace_timer == NULL || job == NULL) {
        free(job);
        return AVC_ENOMEM;
    }
    atomic_init(&job->stop, 0);
    job->op = op;
    job->format = op->format;
    job->rate = op->tts->rate;
    snprintf(job->voice, sizeof(job->voice), "%s", op->voice);
    job->text = strdup(op->text);
    if (job->text == NULL) {
        free(job);
        return AVC_ENOMEM;
    }
    rc = avc_offload(op->tts->loop, avc_espeak_work, avc_espeak_done, job);
    if (rc != AVC_OK) {
        avc_espeak_job_free(job);
        return rc;
    }
    op->job = job;
    return AVC_OK;
}

void
avc__tts_espeak_stop(avc_tts_op_t *op)
{
    if (op->job) {
        atomic_store(&op->job->stop, 1);
        op->job->op = NULL;
        op->job = NULL;
    }
    avc_timer_free(op->pace_timer);
    op->pace_timer = NULL;
    free(op->audio);
    free(op->cuts);
    op->audio = NULL;
    op->cuts = NULL;
}
