import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Poller } from './poll';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Poller', () => {
  it('ticks at once, then every interval while the tick says so', async () => {
    const answers = [true, true, false];
    const tick = vi.fn(async () => answers.shift() ?? false);
    const p = new Poller(tick, { intervalMs: 1000 });
    p.kick();
    await vi.advanceTimersByTimeAsync(0);
    expect(tick).toHaveBeenCalledTimes(1);
    expect(p.running).toBe(true);
    await vi.advanceTimersByTimeAsync(999);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(tick).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(tick).toHaveBeenCalledTimes(3);
    expect(p.running).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(tick).toHaveBeenCalledTimes(3);
  });

  it('never overlaps a slow tick, and kick() while running is a no-op', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const tick = vi.fn(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 2500));
      inFlight--;
      return true;
    });
    const p = new Poller(tick, { intervalMs: 1000 });
    p.kick();
    p.kick();
    await vi.advanceTimersByTimeAsync(0);
    p.kick();
    await vi.advanceTimersByTimeAsync(7000);
    expect(maxInFlight).toBe(1);
    // 0–2500 tick, 3500–6000 tick, 7000 third starts
    expect(tick).toHaveBeenCalledTimes(3);
    p.stop();
  });

  it('stop() aborts the tick in flight and cancels the next', async () => {
    let signal: AbortSignal | null = null;
    const tick = vi.fn(async (s: AbortSignal) => {
      signal = s;
      await new Promise((r) => setTimeout(r, 100));
      return true;
    });
    const p = new Poller(tick, { intervalMs: 1000 });
    p.kick();
    await vi.advanceTimersByTimeAsync(50);
    p.stop();
    expect(signal!.aborted).toBe(true);
    expect(p.running).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(tick).toHaveBeenCalledTimes(1);
    // and can start again
    p.kick();
    await vi.advanceTimersByTimeAsync(0);
    expect(tick).toHaveBeenCalledTimes(2);
    p.stop();
  });

  it('asks onError whether to go on', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const tick = vi.fn(async () => {
      n++;
      if (n === 1) throw new Error('network');
      if (n === 2) throw new Error('gone');
      return true;
    });
    const p = new Poller(tick, {
      intervalMs: 1000,
      onError: (e) => {
        errors.push(e);
        return (e as Error).message === 'network';
      },
    });
    p.kick();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.running).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors.map((e) => (e as Error).message)).toEqual(['network', 'gone']);
    expect(p.running).toBe(false);
    await vi.advanceTimersByTimeAsync(3000);
    expect(tick).toHaveBeenCalledTimes(2);
  });

  it('stops on an error without onError', async () => {
    const tick = vi.fn(async () => {
      throw new Error('x');
    });
    const p = new Poller(tick, { intervalMs: 10 });
    p.kick();
    await vi.advanceTimersByTimeAsync(100);
    expect(tick).toHaveBeenCalledTimes(1);
    expect(p.running).toBe(false);
  });
});
