// Is the user talking? Decided locally from the microphone level of each
// frame, for the "you are speaking" state and for barge-in. (The server
// runs its own voice-activity detection on the same audio to end turns.)

export interface SpeechDetectorOptions {
  /** A frame is never speech below this level, dBFS. */
  minDb?: number;
  /** ... nor less than this far above the noise floor, dB. */
  marginDb?: number;
  /** Loud this long before "talking" starts, ms. */
  onsetMs?: number;
  /** Quiet this long before "talking" ends, ms. */
  hangoverMs?: number;
  /** How fast the noise floor rises towards a louder background, dB/s. */
  floorRiseDbPerSec?: number;
}

/**
 * A level detector with an adaptive noise floor: the floor follows the
 * level down at once and up slowly, so steady background noise (a fan, a
 * showroom) is not taken for speech while the words still stand out.
 */
export class SpeechDetector {
  readonly minDb: number;
  readonly marginDb: number;
  readonly onsetMs: number;
  readonly hangoverMs: number;
  readonly floorRise: number;
  private floor = NaN;
  private loudMs = 0;
  private quietMs = 0;
  private talkingNow = false;
  private loudNow = false;

  constructor(o: SpeechDetectorOptions = {}) {
    this.minDb = o.minDb ?? -48;
    this.marginDb = o.marginDb ?? 12;
    this.onsetMs = o.onsetMs ?? 60;
    this.hangoverMs = o.hangoverMs ?? 450;
    this.floorRise = o.floorRiseDbPerSec ?? 3;
  }

  /** The current noise floor estimate, dBFS. */
  get noiseFloor(): number {
    return this.floor;
  }

  /** The last frame was loud enough to be speech. */
  get loud(): boolean {
    return this.loudNow;
  }

  get talking(): boolean {
    return this.talkingNow;
  }

  /** Feed one frame's level (dBFS) lasting `dtMs`; returns `talking`. */
  feed(levelDb: number, dtMs: number): boolean {
    if (Number.isNaN(this.floor)) {
      // The call has just started: the room's level, within reason.
      this.floor = Math.min(-45, Math.max(-70, levelDb));
    }
    if (levelDb < this.floor) this.floor = levelDb;
    else this.floor = Math.min(levelDb, this.floor + (this.floorRise * dtMs) / 1000);
    this.loudNow = levelDb >= Math.max(this.minDb, this.floor + this.marginDb);
    if (this.loudNow) {
      this.loudMs += dtMs;
      this.quietMs = 0;
      if (this.loudMs >= this.onsetMs) this.talkingNow = true;
    } else {
      this.quietMs += dtMs;
      if (this.quietMs >= this.hangoverMs) {
        this.talkingNow = false;
        this.loudMs = 0;
      } else if (!this.talkingNow) {
        this.loudMs = 0;
      }
    }
    return this.talkingNow;
  }

  reset(): void {
    this.loudMs = 0;
    this.quietMs = 0;
    this.talkingNow = false;
    this.loudNow = false;
  }
}

export interface BargeInOptions {
  /** Talking over Adam this long interrupts him, ms. */
  sustainMs?: number;
  /**
   * While Adam speaks the microphone may pick up his voice from the
   * speakers (when echo cancellation is missing or imperfect): only a
   * frame at least this loud counts, dBFS.
   */
  minDb?: number;
}

/**
 * Decides when the user talks over Adam: `sustainMs` of loud frames while
 * he speaks. A short dip (a consonant, a breath) does not start the count
 * again; it takes back twice its length. Fires once per answer: it is armed
 * again when Adam has stopped speaking.
 */
export class BargeInDetector {
  readonly sustainMs: number;
  readonly minDb: number;
  private runMs = 0;
  private fired = false;

  constructor(o: BargeInOptions = {}) {
    this.sustainMs = o.sustainMs ?? 150;
    this.minDb = o.minDb ?? -40;
  }

  /**
   * One frame: `loud` from the speech detector, its level, whether Adam is
   * audible. Returns true on the frame that should interrupt him.
   */
  feed(loud: boolean, levelDb: number, adamSpeaking: boolean, dtMs: number): boolean {
    if (!adamSpeaking) {
      this.runMs = 0;
      this.fired = false;
      return false;
    }
    if (this.fired) return false;
    if (loud && levelDb >= this.minDb) this.runMs += dtMs;
    else this.runMs = Math.max(0, this.runMs - 2 * dtMs);
    if (this.runMs >= this.sustainMs) {
      this.fired = true;
      this.runMs = 0;
      return true;
    }
    return false;
  }

  reset(): void {
    this.runMs = 0;
    this.fired = false;
  }
}
