// Lip-sync for the built-in avatar.
//
// The live socket sends, per spoken sentence,
//   {"type":"viseme","sentence":i,"offset_ms":n,"visemes":[{"t","d","v"}…]}
// where t is relative to the start of that sentence's audio and offset_ms
// is where the sentence starts in the answer's audio. A VisemeTimeline
// holds one answer's visemes on the answer's own clock (offset_ms + t); the
// playback scheduler says which position of which answer is audible now,
// so the mouth follows what is heard, pauses included.

/** The viseme set of the server (Oculus/Azure style, 15 shapes). */
export const VISEMES = [
  'sil', 'PP', 'FF', 'TH', 'DD', 'kk', 'CH', 'SS', 'nn', 'RR', 'aa', 'E', 'I', 'O', 'U',
] as const;

export type Viseme = (typeof VISEMES)[number];

export function isViseme(v: unknown): v is Viseme {
  return typeof v === 'string' && (VISEMES as readonly string[]).includes(v);
}

export interface VisemeEvent {
  /** Start on the answer's clock, ms. */
  start: number;
  /** Length, ms. */
  duration: number;
  viseme: Viseme;
}

export interface VisemeMessage {
  sentence?: number;
  offset_ms: number;
  visemes: { t: number; d: number; v: string }[];
}

/** One answer's visemes, ordered by start. */
export class VisemeTimeline {
  private events: VisemeEvent[] = [];

  get size(): number {
    return this.events.length;
  }

  /**
   * Add a sentence's visemes. Entries with an unknown shape or bad times
   * are skipped; returns how many were added.
   */
  add(msg: VisemeMessage): number {
    const offset = Number.isFinite(msg.offset_ms) && msg.offset_ms > 0 ? msg.offset_ms : 0;
    let added = 0;
    for (const e of Array.isArray(msg.visemes) ? msg.visemes : []) {
      if (!e || !isViseme(e.v) || !Number.isFinite(e.t) || !Number.isFinite(e.d)) continue;
      if (e.t < 0 || e.d <= 0) continue;
      this.insert({ start: offset + e.t, duration: e.d, viseme: e.v });
      added++;
    }
    return added;
  }

  /**
   * The shape at `ms` on the answer's clock: the latest-starting viseme
   * that covers it, else "sil".
   */
  at(ms: number): Viseme {
    const ev = this.events;
    // The last event starting at or before ms.
    let lo = 0;
    let hi = ev.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ev[mid].start <= ms) lo = mid + 1;
      else hi = mid;
    }
    // An earlier, longer viseme may still cover ms: look back a little.
    for (let i = lo - 1; i >= 0 && i >= lo - 4; i--) {
      if (ms < ev[i].start + ev[i].duration) return ev[i].viseme;
    }
    return 'sil';
  }

  clear(): void {
    this.events = [];
  }

  private insert(e: VisemeEvent): void {
    const ev = this.events;
    let i = ev.length;
    // Sentences arrive in order: appending is the usual case.
    while (i > 0 && ev[i - 1].start > e.start) i--;
    ev.splice(i, 0, e);
  }
}

// ---------------------------------------------------------------------------
// Mouth shapes

export interface MouthShape {
  /** Jaw opening, 0 (closed) to 1. */
  open: number;
  /** Lip spread, 0 (narrow) to 1 (wide). */
  width: number;
  /** Lip rounding, 0 to 1. */
  round: number;
}

export const MOUTH_SHAPES: Record<Viseme, MouthShape> = {
  sil: { open: 0, width: 0.5, round: 0 },
  PP: { open: 0, width: 0.42, round: 0.1 },
  FF: { open: 0.1, width: 0.55, round: 0 },
  TH: { open: 0.2, width: 0.55, round: 0 },
  DD: { open: 0.3, width: 0.55, round: 0 },
  kk: { open: 0.35, width: 0.55, round: 0 },
  CH: { open: 0.3, width: 0.4, round: 0.5 },
  SS: { open: 0.15, width: 0.68, round: 0 },
  nn: { open: 0.25, width: 0.55, round: 0 },
  RR: { open: 0.3, width: 0.42, round: 0.45 },
  aa: { open: 0.95, width: 0.62, round: 0 },
  E: { open: 0.55, width: 0.78, round: 0 },
  I: { open: 0.35, width: 0.85, round: 0 },
  O: { open: 0.7, width: 0.4, round: 0.9 },
  U: { open: 0.35, width: 0.3, round: 1 },
};

export const REST_MOUTH: MouthShape = MOUTH_SHAPES.sil;

/**
 * The mouth for an output level when no visemes are known: louder opens
 * the jaw. `level` is 0..1 (see meterFraction).
 */
export function mouthForLevel(level: number): MouthShape {
  const l = level < 0 ? 0 : level > 1 ? 1 : level;
  return { open: 0.85 * l, width: 0.55 + 0.1 * l, round: 0 };
}

/** Move `from` towards `to` by `k` (0..1). */
export function blendMouth(from: MouthShape, to: MouthShape, k: number): MouthShape {
  const f = k < 0 ? 0 : k > 1 ? 1 : k;
  return {
    open: from.open + (to.open - from.open) * f,
    width: from.width + (to.width - from.width) * f,
    round: from.round + (to.round - from.round) * f,
  };
}

/**
 * The blend factor for `dtMs` of smoothing with a time constant of
 * `tauMs`: fast enough to show each viseme, slow enough not to flicker.
 */
export function smoothing(dtMs: number, tauMs = 35): number {
  if (!(dtMs > 0)) return 0;
  return 1 - Math.exp(-dtMs / tauMs);
}

/**
 * SVG path of the lips' outline for a shape, centred on (cx, cy): the upper
 * lip is a curve between the corners that rises with the opening, the lower
 * lip one that drops further. Rounding narrows the mouth.
 */
export function mouthPath(shape: MouthShape, cx = 100, cy = 150): string {
  const halfWidth = 10 + 14 * shape.width - 7 * shape.round;
  const up = 1.5 + 7 * shape.open;
  const down = 1.5 + 20 * shape.open + 3 * shape.round;
  const r = (n: number) => Math.round(n * 10) / 10;
  return (
    `M ${r(cx - halfWidth)} ${r(cy)} ` +
    `Q ${r(cx)} ${r(cy - 2 * up)} ${r(cx + halfWidth)} ${r(cy)} ` +
    `Q ${r(cx)} ${r(cy + 2 * down)} ${r(cx - halfWidth)} ${r(cy)} Z`
  );
}
