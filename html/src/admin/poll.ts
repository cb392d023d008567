// Repeat an asynchronous check every `intervalMs` while it says so.
//
// A tick never overlaps the previous one: the next starts `intervalMs` after
// the previous one finished. `kick()` (re)starts a stopped poller at once and
// is a no-op while it runs; `stop()` aborts the tick in flight (through the
// AbortSignal it was given) and cancels the next one.

export interface PollerOptions {
  intervalMs: number;
  /**
   * Called when a tick throws (not for aborts). Return true to keep polling
   * (a passing network failure), false to stop (e.g. a 404).
   */
  onError?: (err: unknown) => boolean;
}

export type PollTick = (signal: AbortSignal) => Promise<boolean>;

export class Poller {
  private readonly tick: PollTick;
  private readonly options: PollerOptions;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private controller: AbortController | null = null;
  private generation = 0;
  private active = false;

  constructor(tick: PollTick, options: PollerOptions) {
    this.tick = tick;
    this.options = options;
  }

  get running(): boolean {
    return this.active;
  }

  /** Start polling now, unless already polling. */
  kick(): void {
    if (this.active) return;
    this.active = true;
    void this.run(this.generation);
  }

  stop(): void {
    this.generation++;
    this.active = false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.controller?.abort();
    this.controller = null;
  }

  private async run(generation: number): Promise<void> {
    this.timer = null;
    const controller = new AbortController();
    this.controller = controller;
    let again: boolean;
    try {
      again = await this.tick(controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return;
      again = this.options.onError ? this.options.onError(err) : false;
    }
    if (generation !== this.generation) return;
    this.controller = null;
    if (!again) {
      this.active = false;
      return;
    }
    this.timer = setTimeout(() => void this.run(generation), this.options.intervalMs);
  }
}
