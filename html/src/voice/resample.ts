// Streaming sample-rate conversion for the microphone: the audio graph runs
// at the device's rate (48 kHz, 44.1 kHz, ...) and the socket wants 16 kHz.
//
// Each output sample is a windowed-sinc interpolation of the input around
// its exact (fractional) position, with the sinc's cutoff below the lower
// of the two Nyquist frequencies, so one step both removes what 16 kHz
// cannot carry (no aliasing) and handles ratios that are not whole numbers
// (44.1 → 16 kHz). The kernel is tabulated for PHASES sub-sample positions
// (the nearest one is used: at 256 phases the position error is below
// 1/512 of an input sample) and each phase is normalised to a DC gain of 1.
// The delay is half the kernel: about half a millisecond. Equal rates pass
// through untouched.

const PHASES = 256;
/** Zero crossings of the sinc on each side of the centre. */
const ZERO_CROSSINGS = 8;
/** Cutoff as a fraction of the lower Nyquist frequency. */
const CUTOFF = 0.92;

export class Resampler {
  readonly inRate: number;
  readonly outRate: number;
  /** Input samples per output sample. */
  private readonly step: number;
  /** Kernel taps on each side of the centre. */
  private readonly half: number;
  /** PHASES + 1 rows of 2·half taps: row p is for the fraction p/PHASES. */
  private readonly table: Float32Array;

  /** Input not yet consumed; buf[0] is input sample number bufStart. */
  private buf: Float32Array;
  private bufLen = 0;
  private bufStart = 0;
  /** Outputs produced so far: output k sits at input position k·step. */
  private produced = 0;

  constructor(inRate: number, outRate: number) {
    if (!(inRate > 0) || !(outRate > 0)) throw new RangeError('sample rates must be positive');
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate;
    // Cutoff in cycles per input sample.
    const fc = (CUTOFF * Math.min(inRate, outRate)) / 2 / inRate;
    this.half = Math.max(2, Math.ceil(ZERO_CROSSINGS / (2 * fc)));
    const taps = 2 * this.half;
    this.table = new Float32Array((PHASES + 1) * taps);
    for (let p = 0; p <= PHASES; p++) {
      const frac = p / PHASES;
      let sum = 0;
      for (let j = 0; j < taps; j++) {
        // Tap j weighs input sample (base - half + 1 + j); x is its distance
        // from the output position base + frac.
        const x = j - this.half + 1 - frac;
        const v = sinc(2 * fc * x) * blackman(x / this.half);
        this.table[p * taps + j] = v;
        sum += v;
      }
      for (let j = 0; j < taps; j++) this.table[p * taps + j] /= sum;
    }
    this.buf = new Float32Array(4096);
    // The first outputs need input before sample 0: start with silence.
    this.bufLen = this.half;
    this.bufStart = -this.half;
  }

  /** Feed input; returns the output samples it completes. */
  process(input: ArrayLike<number>): Float32Array {
    // Same rate (a 16 kHz device): nothing to filter.
    if (this.inRate === this.outRate) return Float32Array.from(input);
    this.append(input);
    const taps = 2 * this.half;
    const end = this.bufStart + this.bufLen; // first input sample not held
    // Output k needs input up to floor(k·step) + half.
    let count = 0;
    for (let k = this.produced; ; k++) {
      if (Math.floor(k * this.step) + this.half >= end) break;
      count++;
    }
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const pos = (this.produced + i) * this.step;
      const base = Math.floor(pos);
      const row = Math.round((pos - base) * PHASES) * taps;
      const first = base - this.half + 1 - this.bufStart;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += this.table[row + j] * this.buf[first + j];
      out[i] = acc;
    }
    this.produced += count;
    // Drop input that no later output reaches.
    const keepFrom = Math.floor(this.produced * this.step) - this.half + 1;
    const drop = Math.min(this.bufLen, Math.max(0, keepFrom - this.bufStart));
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.bufLen);
      this.bufLen -= drop;
      this.bufStart += drop;
    }
    return out;
  }

  private append(input: ArrayLike<number>): void {
    const need = this.bufLen + input.length;
    if (need > this.buf.length) {
      let size = this.buf.length;
      while (size < need) size *= 2;
      const grown = new Float32Array(size);
      grown.set(this.buf.subarray(0, this.bufLen));
      this.buf = grown;
    }
    for (let i = 0; i < input.length; i++) this.buf[this.bufLen + i] = input[i];
    this.bufLen = need;
  }
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Blackman window over -1..1 (0 outside). */
function blackman(u: number): number {
  if (u <= -1 || u >= 1) return 0;
  const t = (u + 1) / 2; // 0..1
  return 0.42 - 0.5 * Math.cos(2 * Math.PI * t) + 0.08 * Math.cos(4 * Math.PI * t);
}
