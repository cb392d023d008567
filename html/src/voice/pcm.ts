// 16-bit PCM helpers for the live voice socket (API.md, "Voice"): the
// socket carries raw PCM s16le, 16 kHz, mono in both directions when the
// client asks for "audio_format":"pcm_s16le_16000".

/** The socket's sample rate, both ways. */
export const VOICE_RATE = 16000;

/**
 * Float samples (-1..1) as little-endian signed 16-bit PCM. Values outside
 * -1..1 are clipped, NaN becomes 0; negative values scale by 32768 and
 * positive by 32767 so that -1 and 1 map to the ends of the range.
 * Returns a new buffer of 2 × length bytes.
 */
export function floatToS16le(samples: ArrayLike<number>): ArrayBuffer {
  const out = new ArrayBuffer(samples.length * 2);
  const view = new DataView(out);
  for (let i = 0; i < samples.length; i++) {
    view.setInt16(i * 2, floatToInt16(samples[i]), true);
  }
  return out;
}

/** One sample: clipped, rounded to the nearest 16-bit value. */
export function floatToInt16(x: number): number {
  if (!(x > -1)) return x === x ? -32768 : 0; // NaN fails both tests
  if (x >= 1) return 32767;
  return x < 0 ? Math.round(x * 32768) : Math.round(x * 32767);
}

/**
 * Little-endian signed 16-bit PCM as float samples (-1..1). An odd trailing
 * byte is ignored (see PcmReassembler for data cut at any byte).
 */
export function s16leToFloat(bytes: ArrayBuffer | Uint8Array): Float32Array {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const n = u8.length >> 1;
  const view = new DataView(u8.buffer, u8.byteOffset, n * 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

/**
 * Joins PCM that arrives in pieces of any byte length: a piece that ends in
 * the middle of a sample keeps that byte for the next one.
 */
export class PcmReassembler {
  private carry: number | null = null;

  /** The whole samples completed by `bytes`, as floats. */
  push(bytes: ArrayBuffer | Uint8Array): Float32Array {
    let u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    if (this.carry !== null && u8.length > 0) {
      const joined = new Uint8Array(u8.length + 1);
      joined[0] = this.carry;
      joined.set(u8, 1);
      u8 = joined;
      this.carry = null;
    }
    if (u8.length % 2 === 1) {
      this.carry = u8[u8.length - 1];
      u8 = u8.subarray(0, u8.length - 1);
    }
    return s16leToFloat(u8);
  }

  /** Forget a half sample (a new answer starts). */
  reset(): void {
    this.carry = null;
  }
}

/** Root mean square of float samples (0 for none). */
export function rms(samples: ArrayLike<number>): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length);
}

/** A linear level (RMS of -1..1 samples) in dBFS, floored at `floor`. */
export function toDb(level: number, floor = -100): number {
  if (!(level > 0)) return floor;
  return Math.max(floor, 20 * Math.log10(level));
}

/**
 * A level in dBFS as 0..1 for a meter: `minDb` (silence) is 0, `maxDb`
 * (loud speech) is 1.
 */
export function meterFraction(db: number, minDb = -60, maxDb = -10): number {
  const f = (db - minDb) / (maxDb - minDb);
  return f < 0 ? 0 : f > 1 ? 1 : f;
}
