// When each piece of Adam's audio plays, on the AudioContext's clock.
//
// Pieces of one answer are placed back to back (each starts exactly where
// the previous one ends), so the answer plays without gaps or overlaps as
// long as the audio arrives faster than it plays. When the queue has run
// dry (the first piece, or audio that arrived late), playback restarts
// `lead` seconds after "now", which absorbs network jitter.
//
// The scheduler also remembers which part of which answer plays when, so
// the avatar can ask "what position of the answer is audible at time t?"
// and look the mouth shape up in the answer's viseme timeline, even when a
// late piece left a pause in the middle.

export interface Segment {
  /** The answer the piece belongs to (see beginAnswer). */
  answer: number;
  /** Where the piece starts within its answer's audio, in seconds. */
  media: number;
  /** AudioContext time at which it starts playing. */
  start: number;
  /** Its length in seconds. */
  duration: number;
}

export interface PlaybackPosition {
  answer: number;
  /** Seconds into the answer's audio. */
  media: number;
}

export interface SchedulerOptions {
  /** Seconds between "now" and a (re)start after the queue ran dry. */
  lead?: number;
  /** A queue ending closer to "now" than this is treated as run dry. */
  margin?: number;
  /** Segments that ended this long ago are forgotten. */
  keep?: number;
}

export class PlaybackScheduler {
  readonly lead: number;
  readonly margin: number;
  readonly keep: number;
  private answer = 0;
  private answerMedia = 0;
  private end = 0;
  private segments: Segment[] = [];
  /** Pieces scheduled since the call began. */
  scheduledCount = 0;
  /** Seconds of audio scheduled since the call began. */
  scheduledSeconds = 0;

  constructor(options: SchedulerOptions = {}) {
    this.lead = options.lead ?? 0.08;
    this.margin = options.margin ?? 0.01;
    this.keep = options.keep ?? 2;
  }

  /** The current answer's id. */
  get currentAnswer(): number {
    return this.answer;
  }

  /**
   * A new answer begins: its audio positions count from 0 again. Audio of
   * the previous answer still queued keeps playing first.
   */
  beginAnswer(): number {
    this.answer++;
    this.answerMedia = 0;
    return this.answer;
  }

  /** Place a piece of `duration` seconds arriving at time `now`. */
  schedule(now: number, duration: number): Segment {
    const start = this.end >= now + this.margin ? this.end : now + this.lead;
    const seg: Segment = { answer: this.answer, media: this.answerMedia, start, duration };
    this.answerMedia += duration;
    this.end = start + duration;
    this.prune(now);
    this.segments.push(seg);
    this.scheduledCount++;
    this.scheduledSeconds += duration;
    return seg;
  }

  /** The time the queued audio ends (0 when nothing was scheduled). */
  get endTime(): number {
    return this.end;
  }

  /** Audio is playing or waiting to play at time `now`. */
  isActive(now: number): boolean {
    return this.end > now && this.segments.length > 0;
  }

  /** Seconds of audio queued beyond `now`. */
  bufferedAhead(now: number): number {
    return Math.max(0, this.end - now);
  }

  /** What is audible at time `t`; null between pieces or when idle. */
  positionAt(t: number): PlaybackPosition | null {
    // Few segments are kept: search from the newest.
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i];
      if (t >= s.start + s.duration) return null;
      if (t >= s.start) return { answer: s.answer, media: s.media + (t - s.start) };
    }
    return null;
  }

  /**
   * Everything queued was stopped (interrupt): the next piece starts after
   * the lead again. The answer keeps its id; a piece of it arriving later
   * would continue its positions, but an interrupted answer sends none.
   */
  reset(): void {
    this.segments = [];
    this.end = 0;
  }

  private prune(now: number): void {
    let drop = 0;
    while (drop < this.segments.length) {
      const s = this.segments[drop];
      if (s.start + s.duration >= now - this.keep) break;
      drop++;
    }
    if (drop > 0) this.segments.splice(0, drop);
  }
}
