// Cutting the 16 kHz microphone signal into socket frames of a fixed length.

import { floatToS16le, rms } from './pcm';

/** 20 ms at 16 kHz: 320 samples, 640 bytes. */
export const FRAME_SAMPLES = 320;

export interface PcmFrame {
  /** FRAME_SAMPLES samples as PCM s16le. */
  pcm: ArrayBuffer;
  /** RMS level of the frame's samples before quantisation (0..1). */
  level: number;
}

/**
 * Collects samples and hands out whole frames of `size` samples in order;
 * what is left over waits for the next push.
 */
export class FrameChunker {
  readonly size: number;
  private pending: Float32Array;
  private fill = 0;

  constructor(size = FRAME_SAMPLES) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError('frame size must be a positive integer');
    this.size = size;
    this.pending = new Float32Array(size);
  }

  /** Samples waiting for a frame to fill. */
  get buffered(): number {
    return this.fill;
  }

  push(samples: ArrayLike<number>): PcmFrame[] {
    const frames: PcmFrame[] = [];
    let i = 0;
    while (i < samples.length) {
      const take = Math.min(this.size - this.fill, samples.length - i);
      for (let j = 0; j < take; j++) this.pending[this.fill + j] = samples[i + j];
      this.fill += take;
      i += take;
      if (this.fill === this.size) {
        frames.push({ pcm: floatToS16le(this.pending), level: rms(this.pending) });
        this.fill = 0;
      }
    }
    return frames;
  }

  /** Drop a partial frame. */
  reset(): void {
    this.fill = 0;
  }
}

/** The name the capture worklet registers (capture.worklet.ts). */
export const CAPTURE_PROCESSOR = 'avatar-voice-capture';

/** processorOptions of the capture worklet. */
export interface CaptureOptions {
  /** The rate frames are sent at (16000). */
  targetRate: number;
  /** Samples per frame at targetRate. */
  frameSamples: number;
}
