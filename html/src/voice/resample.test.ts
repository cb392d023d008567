import { describe, expect, it } from 'vitest';
import { Resampler } from './resample';
import { rms } from './pcm';

const tone = (freq: number, rate: number, seconds: number, amp = 0.5) =>
  Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));

/** Frequency from the rising zero crossings of the steady part. */
function frequency(x: Float32Array, rate: number): number {
  const part = x.subarray(Math.floor(x.length * 0.1), Math.floor(x.length * 0.9));
  let first = -1;
  let last = -1;
  let count = 0;
  for (let i = 1; i < part.length; i++) {
    if (part[i - 1] < 0 && part[i] >= 0) {
      // Interpolate the crossing between the two samples.
      const at = i - 1 + -part[i - 1] / (part[i] - part[i - 1]);
      if (first < 0) first = at;
      else count++;
      last = at;
    }
  }
  return (count * rate) / (last - first);
}

/** Run input through in pieces of the given sizes, cycling. */
function run(r: Resampler, input: Float32Array, pieces: number[]): Float32Array {
  const out: number[] = [];
  let i = 0;
  for (let k = 0; i < input.length; k++) {
    const n = pieces[k % pieces.length];
    out.push(...r.process(input.subarray(i, i + n)));
    i += n;
  }
  return Float32Array.from(out);
}

describe('Resampler', () => {
  for (const inRate of [48000, 44100]) {
    it(`${inRate} → 16000: length and a 1 kHz tone's frequency and level`, () => {
      const r = new Resampler(inRate, 16000);
      const input = tone(1000, inRate, 1);
      const out = run(r, input, [128]);
      // One second in, one second out, less the filter's half-kernel delay.
      expect(out.length).toBeLessThanOrEqual(16000);
      expect(out.length).toBeGreaterThan(16000 - 40);
      expect(frequency(out, 16000)).toBeCloseTo(1000, 0);
      const steady = out.subarray(1000, 15000);
      expect(rms(steady)).toBeCloseTo(0.5 * Math.SQRT1_2, 2);
    });

    it(`${inRate} → 16000 keeps 3.4 kHz speech band and removes what 16 kHz cannot carry`, () => {
      const pass = run(new Resampler(inRate, 16000), tone(3400, inRate, 0.5), [128]);
      expect(frequency(pass, 16000)).toBeCloseTo(3400, -1);
      expect(rms(pass.subarray(500, 7500))).toBeGreaterThan(0.34);
      // 11 kHz would fold back to 5 kHz (48 k) or 5.1 kHz (44.1 k) without the filter.
      const alias = run(new Resampler(inRate, 16000), tone(11000, inRate, 0.5), [128]);
      expect(rms(alias.subarray(500, 7500))).toBeLessThan(0.005);
    });
  }

  it('gives the same output whatever the input pieces', () => {
    const input = tone(700, 44100, 0.3);
    const a = run(new Resampler(44100, 16000), input, [input.length]);
    const b = run(new Resampler(44100, 16000), input, [1, 127, 5, 333, 64]);
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i], 6);
  });

  it('passes DC at unity gain', () => {
    const out = run(new Resampler(48000, 16000), new Float32Array(4800).fill(0.25), [480]);
    for (const v of out.subarray(50)) expect(v).toBeCloseTo(0.25, 5);
  });

  it('passes 16 kHz through unchanged', () => {
    const input = tone(440, 16000, 0.1);
    expect(run(new Resampler(16000, 16000), input, [160, 33])).toEqual(input);
  });

  it('upsamples 8 kHz to 16 kHz keeping the tone', () => {
    const out = run(new Resampler(8000, 16000), tone(500, 8000, 1), [128]);
    expect(out.length).toBeGreaterThan(16000 - 80);
    expect(frequency(out, 16000)).toBeCloseTo(500, 0);
  });

  it('rejects bad rates', () => {
    expect(() => new Resampler(0, 16000)).toThrow(RangeError);
    expect(() => new Resampler(48000, NaN)).toThrow(RangeError);
  });
});
