// The microphone's AudioWorklet: mixes the input to mono, converts it from
// the context's rate to 16 kHz and posts 20 ms frames of PCM s16le to the
// page as { pcm: ArrayBuffer, level: number } (the buffer is transferred).
// Built by Vite as a separate script (imported with ?worker&url), so the
// helpers below are bundled into it.

import { CAPTURE_PROCESSOR, FRAME_SAMPLES, FrameChunker } from './frames';
import type { CaptureOptions } from './frames';
import { VOICE_RATE } from './pcm';
import { Resampler } from './resample';

// The AudioWorkletGlobalScope, which TypeScript's DOM library does not describe.
declare const sampleRate: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: unknown);
}
declare function registerProcessor(
  name: string,
  ctor: new (options: { processorOptions?: Partial<CaptureOptions> }) => AudioWorkletProcessor,
): void;

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly resampler: Resampler;
  private readonly chunker: FrameChunker;
  private mono = new Float32Array(128);
  private stopped = false;

  constructor(options: { processorOptions?: Partial<CaptureOptions> }) {
    super(options);
    const o = options.processorOptions ?? {};
    this.resampler = new Resampler(sampleRate, o.targetRate ?? VOICE_RATE);
    this.chunker = new FrameChunker(o.frameSamples ?? FRAME_SAMPLES);
    this.port.onmessage = (e: MessageEvent) => {
      if (e.data === 'stop') this.stopped = true;
    };
  }

  process(inputs: Float32Array[][]): boolean {
    if (this.stopped) return false;
    const channels = inputs[0];
    // No channels: the track is muted or not connected yet.
    if (!channels || channels.length === 0) return true;
    let mono = channels[0];
    if (channels.length > 1) {
      if (this.mono.length !== mono.length) this.mono = new Float32Array(mono.length);
      this.mono.fill(0);
      for (const ch of channels) for (let i = 0; i < ch.length; i++) this.mono[i] += ch[i];
      for (let i = 0; i < this.mono.length; i++) this.mono[i] /= channels.length;
      mono = this.mono;
    }
    for (const frame of this.chunker.push(this.resampler.process(mono))) {
      this.port.postMessage(frame, [frame.pcm]);
    }
    return true;
  }
}

registerProcessor(CAPTURE_PROCESSOR, CaptureProcessor);
