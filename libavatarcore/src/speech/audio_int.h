/*
 * Audio helpers shared inside the speech subsystem (avc__ prefix).  Not
 * installed.
 */
#ifndef AVC_AUDIO_INT_H
#define AVC_AUDIO_INT_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* The core's PCM rate (PCM16K). */
#define AVC__AUDIO_RATE  16000

/*
 * Resample mono PCM from in_rate to out_rate (each 1000-768000 Hz) with a
 * Kaiser-windowed sinc low-pass at 0.44 of the lower rate.  *out is a new
 * array of *out_n samples (free(); never NULL on success, also for no
 * input).  Thread-safe.  AVC_EINVAL, AVC_ENOMEM.
 */
int avc__audio_resample(const int16_t *in, size_t n, unsigned in_rate,
                        unsigned out_rate, int16_t **out, size_t *out_n);

/* The same from float samples on the int16 scale (+-32768). */
int avc__audio_resample_float(const float *in, size_t n, unsigned in_rate,
                              unsigned out_rate, int16_t **out,
                              size_t *out_n);

#endif /* AVC_AUDIO_INT_H */
