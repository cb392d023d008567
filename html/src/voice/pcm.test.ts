import { describe, expect, it } from 'vitest';
import { PcmReassembler, floatToInt16, floatToS16le, meterFraction, rms, s16leToFloat, toDb } from './pcm';

const int16s = (buf: ArrayBuffer) => {
  const v = new DataView(buf);
  return Array.from({ length: buf.byteLength / 2 }, (_, i) => v.getInt16(i * 2, true));
};

describe('floatToS16le', () => {
  it('scales, rounds and writes little-endian', () => {
    const buf = floatToS16le([0, 0.5, -0.5, 1, -1, 1 / 32767]);
    expect(buf.byteLength).toBe(12);
    expect(int16s(buf)).toEqual([0, 16384, -16384, 32767, -32768, 1]);
    // 16384 = 0x4000: low byte first.
    const bytes = new Uint8Array(buf);
    expect([bytes[2], bytes[3]]).toEqual([0x00, 0x40]);
    expect([bytes[8], bytes[9]]).toEqual([0x00, 0x80]);
  });

  it('clips out-of-range samples and maps NaN to silence', () => {
    expect(int16s(floatToS16le([1.5, -7, Infinity, -Infinity, NaN]))).toEqual([32767, -32768, 32767, -32768, 0]);
    expect(floatToInt16(1.0000001)).toBe(32767);
    expect(floatToInt16(-1.0000001)).toBe(-32768);
  });

  it('round-trips through s16leToFloat within one step', () => {
    const src = Float32Array.from({ length: 200 }, (_, i) => Math.sin(i / 7) * 0.9);
    const back = s16leToFloat(floatToS16le(src));
    expect(back).toHaveLength(200);
    for (let i = 0; i < src.length; i++) expect(Math.abs(back[i] - src[i])).toBeLessThan(1 / 16384);
  });
});

describe('s16leToFloat', () => {
  it('reads a Uint8Array view at an offset and ignores an odd last byte', () => {
    const raw = new Uint8Array([9, 0x00, 0x40, 0xff, 0x7f, 0x00, 0x80, 5]);
    const out = s16leToFloat(raw.subarray(1)); // 7 bytes: three samples
    expect(Array.from(out)).toEqual([0.5, 32767 / 32768, -1]);
  });
});

describe('PcmReassembler', () => {
  it('keeps a half sample for the next piece', () => {
    const whole = floatToS16le([0.25, -0.25, 0.5, -0.5]);
    const bytes = new Uint8Array(whole);
    const r = new PcmReassembler();
    const a = r.push(bytes.slice(0, 3));
    const b = r.push(bytes.slice(3, 4));
    const c = r.push(bytes.slice(4));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(c).toHaveLength(2);
    expect([...a, ...b, ...c].map((x) => Math.round(x * 4) / 4)).toEqual([0.25, -0.25, 0.5, -0.5]);
  });

  it('forgets the half sample on reset', () => {
    const r = new PcmReassembler();
    r.push(new Uint8Array([1]));
    r.reset();
    expect(Array.from(r.push(new Uint8Array([0x00, 0x40])))).toEqual([0.5]);
  });
});

describe('levels', () => {
  it('computes RMS and dBFS', () => {
    expect(rms([])).toBe(0);
    expect(rms([0.5, -0.5, 0.5, -0.5])).toBeCloseTo(0.5);
    const sine = Float32Array.from({ length: 16000 }, (_, i) => Math.sin((2 * Math.PI * 440 * i) / 16000));
    expect(rms(sine)).toBeCloseTo(Math.SQRT1_2, 3);
    expect(toDb(1)).toBe(0);
    expect(toDb(0.1)).toBeCloseTo(-20);
    expect(toDb(0)).toBe(-100);
    expect(toDb(1e-9, -90)).toBe(-90);
  });

  it('maps dBFS onto a meter', () => {
    expect(meterFraction(-80)).toBe(0);
    expect(meterFraction(-60)).toBe(0);
    expect(meterFraction(-35)).toBeCloseTo(0.5);
    expect(meterFraction(0)).toBe(1);
  });
});
