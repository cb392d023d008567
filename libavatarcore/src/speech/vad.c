/*
 * Voice activity detection (see avatarcore/speech.h): an energy detector
 * on 10 ms frames.
 *
 * Each frame is high-passed (4th-order Butterworth at 150 Hz, which takes
 * mains hum and rumble down by more than 30 dB) and measured: energy in
 * dBFS, peak-to-mean power (crest) and zero-crossing rate.  A frame is
 * evidence of speech when its energy stands above both an absolute level
 * and an adaptive noise floor by the aggressiveness' margins, and it is
 * none of:
 *
 *   impulsive  a crest no voice has, or the fast decay right after one
 *              (a click, a tap);
 *   rumble     zero crossings too rare for anything but sub-speech
 *              frequencies left over by the filter;
 *   steady     the last half second stayed within a few dB: noise, a
 *              tone or hum (speech always has syllable dips);
 *   hiss-like  crossings as frequent as white noise: such a frame needs a
 *              larger margin.
 *
 * Evidence is voiced when the last 48 ms, low-passed and decimated to
 * 4 kHz, repeat at a voice's period (normalised autocorrelation at lags
 * of 2.5-16.5 ms): noise of any colour does not, vowels do.
 *
 * The noise floor drops at once to any quieter frame, creeps upwards
 * (faster outside speech) and jumps to the level of a steady sound.
 *
 * Onset hysteresis: speech starts when enough of the last few frames are
 * evidence, some of it voiced, and their levels hold (3 of 5 frames at
 * aggressiveness 0 ... 4 of 4 at 3); one click, the ringing after it, or
 * noise switched on never qualifies.  The segment starts at the first
 * evidence frame of the run, so a fricative before the vowel counts.
 * Release hysteresis: inside speech the margins are lower and any
 * evidence holds; speech ends when end_ms pass without evidence.  Segment
 * lengths run from the first to the last evidence frame.
 *
 * Confidence is the frame's margin through a logistic curve, over one
 * half only for a frame that can start (voiced) or carry speech.
 */
#include "audio_int.h"

#include <avatarcore/speech.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AVC_VAD_FRAME_MS   10
#define AVC_VAD_HP_HZ      150.0
#define AVC_VAD_MIN_DB     -100.0
/* stationarity: frames looked at, and the spread that counts as steady */
#define AVC_VAD_HIST       50
#define AVC_VAD_STEADY_DB  5.0
/* peak-to-mean power above which a frame is an impulse (voiced speech
 * stays under about 12 dB, a click fills a fraction of the frame), and
 * the drop per frame of a click's tail */
#define AVC_VAD_CREST_DB   16.0
#define AVC_VAD_TAIL_DB    10.0
/* zero crossings per sample: below a 100 Hz tone's is rumble, above
 * this is hiss-like */
#define AVC_VAD_RUMBLE_HZ  100.0
#define AVC_VAD_HISS_ZCR   0.35
/* voicing: the signal low-passed and decimated to 4 kHz, 48 ms of it
 * searched for a period of 2.5-16.5 ms (F0 60-400 Hz) */
#define AVC_VAD_PITCH_RATE 4000
#define AVC_VAD_PITCH_LP   1000.0
#define AVC_VAD_PITCH_N    192
#define AVC_VAD_LAG_MIN    10
#define AVC_VAD_LAG_MAX    66
/* how far back an onset may reach over unvoiced evidence, frames */
#define AVC_VAD_BACKDATE   30
/* the most the evidence frames of an onset may differ in level */
#define AVC_VAD_ONSET_SPREAD_DB  20.0
/* margins are this much lower inside speech */
#define AVC_VAD_HOLD_DB    3.0
/* noise floor rise in dB per frame, inside and outside evidence */
#define AVC_VAD_RISE_SPEECH  0.005
#define AVC_VAD_RISE_QUIET   0.05

typedef struct {
    double snr_db;              /* margin over the noise floor */
    double abs_db;              /* absolute level, dBFS */
    double hiss_db;             /* extra margin for a hiss-like frame */
    double voicing;             /* periodicity of a voiced frame */
    unsigned need;              /* evidence frames for an onset ... */
    unsigned voiced;            /* ... of which voiced ... */
    unsigned window;            /* ... among the last this many */
} avc_vad_level_t;

static const avc_vad_level_t avc_vad_levels[4] = {
    { 5.0, -60.0, 3.0, 0.50, 3, 2, 5 },
    { 7.0, -57.0, 4.0, 0.55, 3, 2, 4 },
    { 9.0, -54.0, 5.0, 0.60, 3, 2, 3 },
    { 12.0, -50.0, 6.0, 0.65, 4, 3, 4 }
};

typedef struct {
    double b0, b1, b2, a1, a2;
    double z1, z2;
} avc_vad_biquad_t;

struct avc_vad_s {
    unsigned rate;
    unsigned frame;             /* samples per 10 ms */
    unsigned end_frames;
    const avc_vad_level_t *lv;
    double rumble_zcr;

    avc_vad_biquad_t hp[2];
    int prev_neg;
    avc_vad_biquad_t lp;        /* before decimation for the voicing */
    unsigned dec;               /* decimation factor */
    unsigned dec_phase;
    float pitch[AVC_VAD_PITCH_N];   /* ring, silent at the start */
    unsigned pitch_pos;

    int16_t *part;              /* a partial frame */
    size_t have;

    int floor_set;
    double floor_db;
    double hist[AVC_VAD_HIST];  /* ring of frame energies */
    unsigned hist_n;
    unsigned hist_pos;
    double prev_db;
    int prev_impulse;

    uint32_t evidence;          /* bit i: frame (frame_no - i) */
    uint32_t voiced;            /* the same for voiced evidence */
    uint64_t frame_no;
    int speaking;
    uint64_t seg_start;
    uint64_t seg_last;
    unsigned quiet;             /* frames without evidence in speech */
    double conf;
};

/* RBJ low-pass biquad. */
static void
avc_vad_lowpass(avc_vad_biquad_t *q, double f0, double fs, double Q)
{
    double w0 = 2.0 * M_PI * f0 / fs, c = cos(w0);
    double al = sin(w0) / (2.0 * Q), a0 = 1.0 + al;

    q->b0 = (1.0 - c) / 2.0 / a0;
    q->b1 = (1.0 - c) / a0;
    q->b2 = q->b0;
    q->a1 = -2.0 * c / a0;
    q->a2 = (1.0 - al) / a0;
    q->z1 = q->z2 = 0.0;
}

/* RBJ high-pass biquad. */
static void
avc_vad_highpass(avc_vad_biquad_t *q, double f0, double fs, double Q)
{
    double w0 = 2.0 * M_PI * f0 / fs, c = cos(w0);
    double al = sin(w0) / (2.0 * Q), a0 = 1.0 + al;

    q->b0 = (1.0 + c) / 2.0 / a0;
    q->b1 = -(1.0 + c) / a0;
    q->b2 = q->b0;
    q->a1 = -2.0 * c / a0;
    q->a2 = (1.0 - al) / a0;
    q->z1 = q->z2 = 0.0;
}

static double
avc_vad_biquad(avc_vad_biquad_t *q, double x)
{
    double y = q->b0 * x + q->z1;

    q->z1 = q->b1 * x - q->a1 * y + q->z2;
    q->z2 = q->b2 * x - q->a2 * y;
    return y;
}

static void
avc_vad_biquad_settle(avc_vad_biquad_t *q)
{
    /* no denormals in long digital silence */
    if (fabs(q->z1) < 1e-15) {
        q->z1 = 0.0;
    }
    if (fabs(q->z2) < 1e-15) {
        q->z2 = 0.0;
    }
}

static unsigned
avc_vad_bits(uint32_t v)
{
    unsigned n = 0;

    for ( /* void */ ; v; v &= v - 1) {
        n++;
    }
    return n;
}

avc_vad_t *
avc_vad_new(unsigned rate, int aggressiveness, unsigned end_ms, int *err)
{
    avc_vad_t *v;

    if ((rate != 8000 && rate != 16000 && rate != 32000 && rate != 48000)
        || aggressiveness < 0 || aggressiveness > 3)
    {
        if (err) {
            *err = AVC_EINVAL;
        }
        return NULL;
    }
    v = calloc(1, sizeof(*v));
    if (v != NULL) {
        v->frame = rate / 1000 * AVC_VAD_FRAME_MS;
        v->part = malloc(v->frame * sizeof(int16_t));
    }
    if (v == NULL || v->part == NULL) {
        free(v);
        if (err) {
            *err = AVC_ENOMEM;
        }
        return NULL;
    }
    v->rate = rate;
    v->lv = &avc_vad_levels[aggressiveness];
    v->end_frames = (end_ms + AVC_VAD_FRAME_MS - 1) / AVC_VAD_FRAME_MS;
    if (v->end_frames == 0) {
        v->end_frames = 1;
    }
    v->rumble_zcr = 2.0 * AVC_VAD_RUMBLE_HZ / rate;
    v->dec = rate / AVC_VAD_PITCH_RATE;
    avc_vad_reset(v);
    if (err) {
        *err = AVC_OK;
    }
    return v;
}

void
avc_vad_reset(avc_vad_t *v)
{
    if (v == NULL) {
        return;
    }
    /* 4th-order Butterworth: two sections with these Qs */
    avc_vad_highpass(&v->hp[0], AVC_VAD_HP_HZ, v->rate, 0.54119610);
    avc_vad_highpass(&v->hp[1], AVC_VAD_HP_HZ, v->rate, 1.30656296);
    v->prev_neg = 0;
    avc_vad_lowpass(&v->lp, AVC_VAD_PITCH_LP, v->rate, M_SQRT1_2);
    v->dec_phase = 0;
    memset(v->pitch, 0, sizeof(v->pitch));
    v->pitch_pos = 0;
    v->have = 0;
    v->floor_set = 0;
    v->floor_db = AVC_VAD_MIN_DB;
    v->hist_n = v->hist_pos = 0;
    v->prev_db = AVC_VAD_MIN_DB;
    v->prev_impulse = 0;
    v->evidence = 0;
    v->voiced = 0;
    v->frame_no = 0;
    v->speaking = 0;
    v->seg_start = v->seg_last = 0;
    v->quiet = 0;
    v->conf = 0.0;
}

void
avc_vad_free(avc_vad_t *v)
{
    if (v != NULL) {
        free(v->part);
        free(v);
    }
}

/*
 * Do the evidence frames of an onset window hold their level?  A click
 * and the ringing after it fall by tens of dB from frame to frame; a
 * voice does not.
 */
static int
avc_vad_sustained(const avc_vad_t *v, uint32_t win)
{
    double db, lo = 0.0, hi = AVC_VAD_MIN_DB;
    unsigned i;

    for (i = 0; i < v->lv->window; i++) {
        if (win & (1u << i)) {
            db = v->hist[(v->hist_pos + AVC_VAD_HIST - 1 - i) % AVC_VAD_HIST];
            lo = fmin(lo, db);
            hi = fmax(hi, db);
        }
    }
    return hi - lo <= AVC_VAD_ONSET_SPREAD_DB;
}

/*
 * Periodicity of the last 48 ms: the highest normalised autocorrelation
 * at a lag of one voice period, 0-1.
 */
static double
avc_vad_voicing(const avc_vad_t *v)
{
    double x[AVC_VAD_PITCH_N], sq[AVC_VAD_PITCH_N + 1];
    double num, e0, e1, r, best = 0.0;
    unsigned i, lag, n = AVC_VAD_PITCH_N;

    sq[0] = 0.0;
    for (i = 0; i < n; i++) {
        x[i] = v->pitch[(v->pitch_pos + i) % n];
        sq[i + 1] = sq[i] + x[i] * x[i];
    }
    for (lag = AVC_VAD_LAG_MIN; lag <= AVC_VAD_LAG_MAX; lag++) {
        num = 0.0;
        for (i = 0; i + lag < n; i++) {
            num += x[i] * x[i + lag];
        }
        e0 = sq[n - lag];
        e1 = sq[n] - sq[lag];
        if (e0 > 0.0 && e1 > 0.0) {
            r = num / sqrt(e0 * e1);
            if (r > best) {
                best = r;
            }
        }
    }
    return best;
}

/* One frame; started/ended/ended_ms report what happened in it. */
static void
avc_vad_frame(avc_vad_t *v, const int16_t *s, int *started, int *ended,
              unsigned *ended_ms)
{
    const avc_vad_level_t *lv = v->lv;
    double y, lp, sum = 0.0, peak = 0.0, mean, db, crest, zcr, lo, hi;
    double hold, t_snr, t_abs, margin;
    unsigned i, zc = 0, win, vwin;
    int neg, impulse, rumble, steady, hiss, evid, voiced;

    for (i = 0; i < v->frame; i++) {
        y = avc_vad_biquad(&v->hp[1], avc_vad_biquad(&v->hp[0], s[i]));
        lp = avc_vad_biquad(&v->lp, y);
        if (++v->dec_phase == v->dec) {
            v->dec_phase = 0;
            v->pitch[v->pitch_pos] = (float) lp;
            v->pitch_pos = (v->pitch_pos + 1) % AVC_VAD_PITCH_N;
        }
        sum += y * y;
        if (y * y > peak) {
            peak = y * y;
        }
        neg = y < 0.0;
        zc += neg != v->prev_neg;
        v->prev_neg = neg;
    }
    avc_vad_biquad_settle(&v->hp[0]);
    avc_vad_biquad_settle(&v->hp[1]);
    avc_vad_biquad_settle(&v->lp);

    mean = sum / v->frame;
    db = mean > 0.0 ? 10.0 * log10(mean / (32768.0 * 32768.0))
                    : AVC_VAD_MIN_DB;
    if (db < AVC_VAD_MIN_DB) {
        db = AVC_VAD_MIN_DB;
    }
    crest = mean > 0.0 ? 10.0 * log10(peak / mean) : 0.0;
    zcr = (double) zc / v->frame;

    v->hist[v->hist_pos] = db;
    v->hist_pos = (v->hist_pos + 1) % AVC_VAD_HIST;
    if (v->hist_n < AVC_VAD_HIST) {
        v->hist_n++;
    }
    lo = hi = db;
    for (i = 0; i < v->hist_n; i++) {
        lo = fmin(lo, v->hist[i]);
        hi = fmax(hi, v->hist[i]);
    }
    if (!v->floor_set) {
        v->floor_db = db;
        v->floor_set = 1;
    }

    hold = v->speaking ? AVC_VAD_HOLD_DB : 0.0;
    hiss = zcr > AVC_VAD_HISS_ZCR;
    t_snr = lv->snr_db - hold + (hiss ? lv->hiss_db : 0.0);
    t_abs = lv->abs_db - hold;
    impulse = crest > AVC_VAD_CREST_DB
              || (v->prev_impulse && db < v->prev_db - AVC_VAD_TAIL_DB);
    rumble = zcr < v->rumble_zcr;
    steady = v->hist_n == AVC_VAD_HIST && hi - lo < AVC_VAD_STEADY_DB;

    margin = fmin(db - v->floor_db - t_snr, db - t_abs);
    evid = margin > 0.0 && !impulse && !rumble && !steady;
    voiced = evid && avc_vad_voicing(v) >= lv->voicing;
    /* over one half for evidence that can start or carry speech: outside
     * speech it must be voiced */
    v->conf = 1.0 / (1.0 + exp(-margin / 3.0));
    if ((!evid || (!voiced && !v->speaking)) && v->conf > 0.45) {
        v->conf = 0.45;
    }
    if (impulse || rumble || steady) {
        v->conf *= 0.25;
    }

    /* the floor, for the next frame */
    if (db < v->floor_db) {
        v->floor_db = db;
    } else if (steady) {
        v->floor_db = lo;
    } else {
        v->floor_db += fmin(db - v->floor_db, evid ? AVC_VAD_RISE_SPEECH
                                                   : AVC_VAD_RISE_QUIET);
    }
    v->prev_db = db;
    v->prev_impulse = impulse;

    v->evidence = v->evidence << 1 | (uint32_t) evid;
    v->voiced = v->voiced << 1 | (uint32_t) voiced;
    win = v->evidence & ((1u << lv->window) - 1);
    vwin = v->voiced & ((1u << lv->window) - 1);

    if (!v->speaking) {
        if (evid && avc_vad_bits(win) >= lv->need
            && avc_vad_bits(vwin) >= lv->voiced
            && avc_vad_sustained(v, win))
        {
            /* the segment starts at the oldest evidence in the window, or
             * before it where unvoiced evidence (a fricative) leads in */
            for (i = lv->window - 1; !(win & (1u << i)); i--) {
                /* void */
            }
            while (i + 1 < AVC_VAD_BACKDATE
                   && (v->evidence & (1u << (i + 1))))
            {
                i++;
            }
            v->speaking = 1;
            v->seg_start = v->frame_no - i;
            v->seg_last = v->frame_no;
            v->quiet = 0;
            *started = 1;
        }
    } else if (evid) {
        v->seg_last = v->frame_no;
        v->quiet = 0;
    } else if (++v->quiet >= v->end_frames) {
        v->speaking = 0;
        v->evidence = 0;
        v->voiced = 0;
        *ended = 1;
        *ended_ms = (unsigned) (v->seg_last - v->seg_start + 1)
                    * AVC_VAD_FRAME_MS;
    }
    v->frame_no++;
}

void
avc_vad_feed(avc_vad_t *v, const int16_t *pcm, size_t samples,
             avc_vad_event_t *ev)
{
    int started = 0, ended = 0;
    unsigned ended_ms = 0;
    size_t k;

    if (v == NULL) {
        if (ev) {
            memset(ev, 0, sizeof(*ev));
        }
        return;
    }
    if (pcm == NULL) {
        samples = 0;
    }
    if (v->have > 0 && samples > 0) {
        k = v->frame - v->have;
        if (k > samples) {
            k = samples;
        }
        memcpy(v->part + v->have, pcm, k * sizeof(int16_t));
        v->have += k;
        pcm += k;
        samples -= k;
        if (v->have == v->frame) {
            avc_vad_frame(v, v->part, &started, &ended, &ended_ms);
            v->have = 0;
        }
    }
    while (samples >= v->frame) {
        avc_vad_frame(v, pcm, &started, &ended, &ended_ms);
        pcm += v->frame;
        samples -= v->frame;
    }
    if (samples > 0) {
        memcpy(v->part, pcm, samples * sizeof(int16_t));
        v->have = samples;
    }

    if (ev == NULL) {
        return;
    }
    ev->is_speech = v->speaking;
    ev->confidence = v->conf;
    ev->speech_started = started;
    ev->speech_ended = ended;
    if (v->speaking) {
        ev->duration_ms = (unsigned) (v->seg_last - v->seg_start + 1)
                          * AVC_VAD_FRAME_MS;
    } else {
        ev->duration_ms = ended ? ended_ms : 0;
    }
}
