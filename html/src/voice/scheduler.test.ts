import { describe, expect, it } from 'vitest';
import { PlaybackScheduler } from './scheduler';

describe('PlaybackScheduler', () => {
  it('starts the first piece after the lead and the next ones back to back', () => {
    const s = new PlaybackScheduler({ lead: 0.1 });
    s.beginAnswer();
    const a = s.schedule(5, 0.25);
    const b = s.schedule(5.02, 0.2);
    const c = s.schedule(5.3, 0.5);
    expect(a.start).toBeCloseTo(5.1);
    expect(b.start).toBe(a.start + a.duration);
    expect(c.start).toBe(b.start + b.duration);
    expect(s.endTime).toBeCloseTo(6.05);
    expect(s.scheduledCount).toBe(3);
    expect(s.scheduledSeconds).toBeCloseTo(0.95);
  });

  it('restarts after the lead when the queue ran dry', () => {
    const s = new PlaybackScheduler({ lead: 0.1, margin: 0.01 });
    const a = s.schedule(0, 0.2); // 0.1 .. 0.3
    const late = s.schedule(0.5, 0.2); // arrives after the end
    expect(late.start).toBeCloseTo(0.6);
    // Within the margin of the end counts as dry too (could not start in time).
    const edge = s.schedule(0.795, 0.1);
    expect(edge.start).toBeCloseTo(0.895);
    expect(a.start).toBeCloseTo(0.1);
  });

  it('tells whether audio is queued or playing', () => {
    const s = new PlaybackScheduler({ lead: 0.05 });
    expect(s.isActive(0)).toBe(false);
    s.schedule(1, 0.5); // 1.05 .. 1.55
    expect(s.isActive(1)).toBe(true); // queued
    expect(s.isActive(1.3)).toBe(true);
    expect(s.isActive(1.56)).toBe(false);
    expect(s.bufferedAhead(1.3)).toBeCloseTo(0.25);
    expect(s.bufferedAhead(2)).toBe(0);
  });

  it('maps the clock to answer positions, across a pause', () => {
    const s = new PlaybackScheduler({ lead: 0.1 });
    const first = s.beginAnswer();
    s.schedule(0, 0.3); // media 0..0.3 at 0.1..0.4
    s.schedule(0.7, 0.2); // late: media 0.3..0.5 at 0.8..1.0
    expect(s.positionAt(0.05)).toBeNull();
    expect(s.positionAt(0.2)).toEqual({ answer: first, media: expect.closeTo(0.1, 9) });
    expect(s.positionAt(0.5)).toBeNull(); // the pause
    expect(s.positionAt(0.9)).toEqual({ answer: first, media: expect.closeTo(0.4, 9) });
    expect(s.positionAt(1.0)).toBeNull();
  });

  it('counts a new answer from 0 after the previous one', () => {
    const s = new PlaybackScheduler({ lead: 0.1 });
    const one = s.beginAnswer();
    s.schedule(0, 1); // 0.1 .. 1.1
    const two = s.beginAnswer();
    const seg = s.schedule(0.5, 0.5); // queued behind answer one
    expect(two).toBe(one + 1);
    expect(seg).toMatchObject({ answer: two, media: 0 });
    expect(seg.start).toBeCloseTo(1.1);
    expect(s.positionAt(1.0)?.answer).toBe(one);
    expect(s.positionAt(1.2)).toEqual({ answer: two, media: expect.closeTo(0.1, 9) });
  });

  it('drops everything on reset (interrupt) and restarts after the lead', () => {
    const s = new PlaybackScheduler({ lead: 0.1 });
    s.beginAnswer();
    s.schedule(0, 2);
    s.schedule(0, 2);
    s.reset();
    expect(s.isActive(0.5)).toBe(false);
    expect(s.positionAt(0.5)).toBeNull();
    const next = s.schedule(0.6, 0.2);
    expect(next.start).toBeCloseTo(0.7);
  });

  it('forgets segments long past', () => {
    const s = new PlaybackScheduler({ lead: 0, margin: 0, keep: 1 });
    s.schedule(0, 0.5);
    s.schedule(10, 0.5);
    expect(s.positionAt(0.25)).toBeNull();
    expect(s.positionAt(10.25)?.media).toBeCloseTo(0.75);
  });
});
