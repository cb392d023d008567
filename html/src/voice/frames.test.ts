import { describe, expect, it } from 'vitest';
import { FRAME_SAMPLES, FrameChunker } from './frames';
import { s16leToFloat } from './pcm';

const ramp = (from: number, n: number) => Float32Array.from({ length: n }, (_, i) => ((from + i) % 1000) / 1000);

describe('FrameChunker', () => {
  it('cuts 20 ms frames of 320 samples (640 bytes)', () => {
    expect(FRAME_SAMPLES).toBe(320);
    const c = new FrameChunker();
    const frames = c.push(ramp(0, 1000));
    expect(frames).toHaveLength(3);
    for (const f of frames) expect(f.pcm.byteLength).toBe(640);
    expect(c.buffered).toBe(40);
  });

  it('keeps the samples in order across pushes of any size', () => {
    const c = new FrameChunker(100);
    const input = ramp(0, 1234);
    const out: number[] = [];
    let i = 0;
    for (const n of [1, 99, 7, 250, 3, 500, 374]) {
      for (const f of c.push(input.subarray(i, i + n))) out.push(...s16leToFloat(f.pcm));
      i += n;
    }
    expect(i).toBe(1234);
    expect(out).toHaveLength(1200);
    expect(c.buffered).toBe(34);
    out.forEach((v, k) => expect(v).toBeCloseTo(input[k], 4));
  });

  it('reports each frame\'s level', () => {
    const c = new FrameChunker(4);
    const [quiet, loud] = c.push([0, 0, 0, 0, 0.5, -0.5, 0.5, -0.5]);
    expect(quiet.level).toBe(0);
    expect(loud.level).toBeCloseTo(0.5);
  });

  it('drops a partial frame on reset', () => {
    const c = new FrameChunker(4);
    c.push([0.1, 0.1, 0.1]);
    c.reset();
    expect(c.buffered).toBe(0);
    const [f] = c.push([0.5, 0.5, 0.5, 0.5]);
    expect(Array.from(s16leToFloat(f.pcm)).every((v) => Math.abs(v - 0.5) < 1e-4)).toBe(true);
  });

  it('rejects a bad size', () => {
    expect(() => new FrameChunker(0)).toThrow(RangeError);
    expect(() => new FrameChunker(2.5)).toThrow(RangeError);
  });
});
