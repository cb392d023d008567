import { describe, expect, it } from 'vitest';
import { BargeInDetector, SpeechDetector } from './activity';

/** Feed `ms` of 20 ms frames at `db`; returns the last result. */
function feedFor(d: SpeechDetector, db: number, ms: number): boolean {
  let talking = d.talking;
  for (let t = 0; t < ms; t += 20) talking = d.feed(db, 20);
  return talking;
}

describe('SpeechDetector', () => {
  it('starts after the onset and ends after the hangover', () => {
    const d = new SpeechDetector({ onsetMs: 60, hangoverMs: 400 });
    expect(feedFor(d, -65, 1000)).toBe(false);
    expect(d.feed(-25, 20)).toBe(false);
    expect(d.feed(-25, 20)).toBe(false);
    expect(d.feed(-25, 20)).toBe(true); // 60 ms
    expect(feedFor(d, -65, 380)).toBe(true); // a pause between words
    expect(d.feed(-25, 20)).toBe(true);
    expect(feedFor(d, -65, 400)).toBe(false);
  });

  it('hears speech from the very first frame', () => {
    const d = new SpeechDetector({ onsetMs: 60 });
    expect(feedFor(d, -22, 100)).toBe(true);
  });

  it('ignores a click shorter than the onset', () => {
    const d = new SpeechDetector({ onsetMs: 60 });
    feedFor(d, -65, 500);
    d.feed(-20, 20);
    d.feed(-65, 20);
    d.feed(-20, 20);
    expect(d.talking).toBe(false);
  });

  it('never takes quiet frames for speech, and adapts to steady noise', () => {
    const d = new SpeechDetector({ minDb: -48, marginDb: 12 });
    expect(feedFor(d, -52, 2000)).toBe(false); // below minDb
    const noisy = new SpeechDetector({ minDb: -48, marginDb: 12 });
    feedFor(noisy, -60, 500);
    // A fan starts at -44 dBFS: speech for a few seconds, then background.
    feedFor(noisy, -44, 10_000);
    expect(noisy.noiseFloor).toBeGreaterThan(-50);
    expect(feedFor(noisy, -44, 500)).toBe(false);
    expect(feedFor(noisy, -20, 200)).toBe(true);
  });

  it('resets', () => {
    const d = new SpeechDetector();
    feedFor(d, -70, 200);
    feedFor(d, -20, 200);
    d.reset();
    expect(d.talking).toBe(false);
    expect(d.loud).toBe(false);
  });
});

describe('BargeInDetector', () => {
  it('fires after 150 ms of talking over Adam, once', () => {
    const b = new BargeInDetector({ sustainMs: 150, minDb: -40 });
    const fired: number[] = [];
    for (let i = 0; i < 20; i++) if (b.feed(true, -25, true, 20)) fired.push(i);
    expect(fired).toEqual([7]); // the 8th frame: 160 ms
  });

  it('does nothing while Adam is silent, and is armed again after he stops', () => {
    const b = new BargeInDetector({ sustainMs: 100 });
    for (let i = 0; i < 20; i++) expect(b.feed(true, -25, false, 20)).toBe(false);
    let n = 0;
    for (let i = 0; i < 10; i++) if (b.feed(true, -25, true, 20)) n++;
    expect(n).toBe(1);
    b.feed(false, -70, false, 20); // the answer ended
    for (let i = 0; i < 10; i++) if (b.feed(true, -25, true, 20)) n++;
    expect(n).toBe(2);
  });

  it('ignores frames below its level (echo of Adam)', () => {
    const b = new BargeInDetector({ sustainMs: 100, minDb: -40 });
    for (let i = 0; i < 50; i++) expect(b.feed(true, -45, true, 20)).toBe(false);
  });

  it('takes back twice a dip, so short dips do not restart the count', () => {
    const b = new BargeInDetector({ sustainMs: 150 });
    const seq = [true, true, true, true, false, true, true, true, true, true, true, true, true];
    const out = seq.map((loud) => b.feed(loud, loud ? -25 : -60, true, 20));
    // 80 ms, the dip takes 40 back, then six frames reach 160 ms (a
    // restart from zero would need eight).
    expect(out.indexOf(true)).toBe(10);
    const c = new BargeInDetector({ sustainMs: 150 });
    for (let i = 0; i < 5; i++) c.feed(true, -25, true, 20);
    for (let i = 0; i < 10; i++) c.feed(false, -60, true, 20);
    expect(c.feed(true, -25, true, 20)).toBe(false);
  });
});
