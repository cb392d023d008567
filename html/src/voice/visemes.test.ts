import { describe, expect, it } from 'vitest';
import {
  MOUTH_SHAPES,
  REST_MOUTH,
  VisemeTimeline,
  blendMouth,
  isViseme,
  mouthForLevel,
  mouthPath,
  smoothing,
} from './visemes';

const sentence0 = {
  sentence: 0,
  offset_ms: 0,
  visemes: [
    { t: 0, d: 80, v: 'sil' },
    { t: 80, d: 100, v: 'PP' },
    { t: 180, d: 150, v: 'aa' },
    // a gap from 330 to 400
    { t: 400, d: 60, v: 'SS' },
  ],
};
const sentence1 = {
  sentence: 1,
  offset_ms: 1000,
  visemes: [
    { t: 0, d: 120, v: 'O' },
    { t: 120, d: 90, v: 'U' },
  ],
};

describe('VisemeTimeline', () => {
  it('gives the shape at a time on the answer clock', () => {
    const tl = new VisemeTimeline();
    expect(tl.add(sentence0)).toBe(4);
    expect(tl.add(sentence1)).toBe(2);
    expect(tl.size).toBe(6);
    expect(tl.at(-5)).toBe('sil');
    expect(tl.at(0)).toBe('sil');
    expect(tl.at(79.9)).toBe('sil');
    expect(tl.at(80)).toBe('PP');
    expect(tl.at(200)).toBe('aa');
    expect(tl.at(350)).toBe('sil'); // the gap
    expect(tl.at(430)).toBe('SS');
    expect(tl.at(999)).toBe('sil');
    // Sentence 1: offset_ms + t.
    expect(tl.at(1000)).toBe('O');
    expect(tl.at(1150)).toBe('U');
    expect(tl.at(1210)).toBe('sil');
  });

  it('accepts sentences out of order', () => {
    const tl = new VisemeTimeline();
    tl.add(sentence1);
    tl.add(sentence0);
    expect(tl.at(90)).toBe('PP');
    expect(tl.at(1050)).toBe('O');
  });

  it('lets a later viseme win where two overlap, and finds a long earlier one', () => {
    const tl = new VisemeTimeline();
    tl.add({ offset_ms: 0, visemes: [{ t: 0, d: 500, v: 'E' }, { t: 100, d: 50, v: 'kk' }] });
    expect(tl.at(120)).toBe('kk');
    expect(tl.at(300)).toBe('E');
  });

  it('skips bad entries', () => {
    const tl = new VisemeTimeline();
    const added = tl.add({
      offset_ms: 0,
      visemes: [
        { t: 0, d: 50, v: 'XX' },
        { t: -1, d: 50, v: 'aa' },
        { t: 10, d: 0, v: 'aa' },
        { t: Number.NaN, d: 10, v: 'aa' },
        null as unknown as { t: number; d: number; v: string },
        { t: 10, d: 20, v: 'I' },
      ],
    });
    expect(added).toBe(1);
    expect(tl.at(15)).toBe('I');
    expect(tl.add({ offset_ms: 0, visemes: 'no' as unknown as [] })).toBe(0);
  });

  it('clears', () => {
    const tl = new VisemeTimeline();
    tl.add(sentence0);
    tl.clear();
    expect(tl.size).toBe(0);
    expect(tl.at(200)).toBe('sil');
  });
});

describe('mouth shapes', () => {
  it('has a shape for every viseme and knows the set', () => {
    for (const v of ['sil', 'PP', 'FF', 'TH', 'DD', 'kk', 'CH', 'SS', 'nn', 'RR', 'aa', 'E', 'I', 'O', 'U']) {
      expect(isViseme(v)).toBe(true);
      expect(MOUTH_SHAPES[v as keyof typeof MOUTH_SHAPES]).toBeDefined();
    }
    expect(isViseme('ah')).toBe(false);
    expect(MOUTH_SHAPES.aa.open).toBeGreaterThan(MOUTH_SHAPES.E.open);
    expect(MOUTH_SHAPES.PP.open).toBe(0);
    expect(MOUTH_SHAPES.U.round).toBeGreaterThan(MOUTH_SHAPES.I.round);
  });

  it('opens the jaw with the output level', () => {
    expect(mouthForLevel(0).open).toBe(0);
    expect(mouthForLevel(1).open).toBeGreaterThan(mouthForLevel(0.3).open);
    expect(mouthForLevel(5)).toEqual(mouthForLevel(1));
  });

  it('blends and smooths', () => {
    const half = blendMouth(REST_MOUTH, MOUTH_SHAPES.aa, 0.5);
    expect(half.open).toBeCloseTo(MOUTH_SHAPES.aa.open / 2);
    expect(blendMouth(REST_MOUTH, MOUTH_SHAPES.aa, 2)).toEqual(MOUTH_SHAPES.aa);
    expect(smoothing(0)).toBe(0);
    expect(smoothing(35)).toBeCloseTo(1 - Math.exp(-1));
    expect(smoothing(1000)).toBeCloseTo(1);
  });

  it('draws an open mouth taller than a closed one', () => {
    const height = (d: string) => {
      const ys = [...d.matchAll(/-?\d+(?:\.\d+)?/g)].map(Number).filter((_, i) => i % 2 === 1);
      return Math.max(...ys) - Math.min(...ys);
    };
    const closed = mouthPath(MOUTH_SHAPES.PP, 100, 150);
    const open = mouthPath(MOUTH_SHAPES.aa, 100, 150);
    expect(closed).toMatch(/^M [\d.]+ 150 Q 100 [\d.]+ [\d.]+ 150 Q 100 [\d.]+ [\d.]+ 150 Z$/);
    expect(height(open)).toBeGreaterThan(4 * height(closed));
  });
});
