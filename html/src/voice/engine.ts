// The call's audio on the Web Audio API: one AudioContext (at the device's
// own rate) for the microphone and for Adam's voice.
//
//   microphone  getUserMedia (echo cancellation on, so Adam's voice from
//               the speakers is not sent back) → MediaStreamSource → the
//               capture worklet (capture.worklet.ts) → 20 ms 16 kHz frames.
//               The worklet feeds a muted gain node so the graph pulls it.
//   voice       16 kHz PCM pieces → AudioBuffers played back to back at
//               the times the PlaybackScheduler gives → gain → analyser
//               (the output level for the avatar's fallback mouth) →
//               speakers.

import workletUrl from './capture.worklet.ts?worker&url';
import { CAPTURE_PROCESSOR, FRAME_SAMPLES } from './frames';
import type { CaptureOptions, PcmFrame } from './frames';
import { VOICE_RATE, meterFraction, rms, toDb } from './pcm';
import { PlaybackScheduler } from './scheduler';
import type { PlaybackPosition, Segment } from './scheduler';
import type { AudioEngine } from './call';

/** Thrown when the page cannot reach the microphone APIs at all. */
export class InsecureContextError extends Error {
  constructor() {
    super('The microphone is not available on this page.');
    this.name = 'InsecureContextError';
  }
}

/** How long a stopped answer fades out, seconds (stopping dead clicks). */
const FADE = 0.025;

export class WebAudioEngine implements AudioEngine {
  readonly ctx: AudioContext;
  readonly scheduler = new PlaybackScheduler();
  onChunkEnded: (() => void) | null = null;
  private readonly out: GainNode;
  private readonly analyser: AnalyserNode;
  private readonly levelBuf: Float32Array<ArrayBuffer>;
  private readonly sources = new Set<AudioBufferSourceNode>();
  private stream: MediaStream | null = null;
  private micSource: MediaStreamAudioSourceNode | null = null;
  private worklet: AudioWorkletNode | null = null;
  private sink: GainNode | null = null;
  private closed = false;

  constructor() {
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    // Created in the click that starts the call: allowed to play.
    void this.ctx.resume().catch(() => undefined);
    this.out = this.ctx.createGain();
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 512;
    this.levelBuf = new Float32Array(this.analyser.fftSize);
    this.out.connect(this.analyser);
    this.analyser.connect(this.ctx.destination);
  }

  get sampleRate(): number {
    return this.ctx.sampleRate;
  }

  async startCapture(onFrame: (frame: PcmFrame) => void, onEnded: () => void): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia || !this.ctx.audioWorklet) {
      throw new InsecureContextError();
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
    if (this.closed) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    this.stream = stream;
    for (const track of stream.getAudioTracks()) {
      track.addEventListener('ended', () => {
        if (!this.closed) onEnded();
      });
    }
    await this.ctx.audioWorklet.addModule(workletUrl);
    if (this.closed) return;
    const options: CaptureOptions = { targetRate: VOICE_RATE, frameSamples: FRAME_SAMPLES };
    const node = new AudioWorkletNode(this.ctx, CAPTURE_PROCESSOR, {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      channelCount: 1,
      channelCountMode: 'explicit',
      processorOptions: options,
    });
    node.port.onmessage = (e: MessageEvent<PcmFrame>) => {
      if (!this.closed) onFrame(e.data);
    };
    this.worklet = node;
    this.micSource = this.ctx.createMediaStreamSource(stream);
    this.sink = this.ctx.createGain();
    this.sink.gain.value = 0;
    this.micSource.connect(node);
    node.connect(this.sink);
    this.sink.connect(this.ctx.destination);
    if (this.ctx.state !== 'running') await this.ctx.resume().catch(() => undefined);
  }

  beginAnswer(): number {
    return this.scheduler.beginAnswer();
  }

  play(samples: Float32Array): Segment {
    const buffer = this.ctx.createBuffer(1, samples.length, VOICE_RATE);
    buffer.copyToChannel(samples as Float32Array<ArrayBuffer>, 0);
    return this.startBuffer(buffer);
  }

  async playEncoded(bytes: ArrayBuffer): Promise<Segment | null> {
    const answer = this.scheduler.currentAnswer;
    const buffer = await this.ctx.decodeAudioData(bytes);
    // Stopped, or a new answer began, while it was decoded.
    if (this.closed || answer !== this.scheduler.currentAnswer) return null;
    return this.startBuffer(buffer);
  }

  private startBuffer(buffer: AudioBuffer): Segment {
    const seg = this.scheduler.schedule(this.ctx.currentTime, buffer.duration);
    const src = this.ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.out);
    src.onended = () => {
      this.sources.delete(src);
      src.disconnect();
      this.onChunkEnded?.();
    };
    this.sources.add(src);
    src.start(seg.start);
    return seg;
  }

  stopPlayback(): void {
    const t = this.ctx.currentTime;
    const gain = this.out.gain;
    gain.cancelScheduledValues(t);
    gain.setValueAtTime(gain.value, t);
    gain.linearRampToValueAtTime(0, t + FADE);
    for (const src of this.sources) {
      try {
        src.stop(t + FADE);
      } catch {
        // not started yet in some engines: nothing to stop
      }
    }
    this.sources.clear();
    // Back to full volume for the next answer, which starts after the lead.
    gain.setValueAtTime(1, t + FADE + 0.005);
    this.scheduler.reset();
  }

  isPlaying(): boolean {
    return this.scheduler.isActive(this.ctx.currentTime);
  }

  /**
   * The answer position the speakers play now: the context time being
   * output (the output timestamp, moved on to this moment), which trails
   * currentTime by the output latency.
   */
  position(): PlaybackPosition | null {
    return this.scheduler.positionAt(this.audibleTime());
  }

  private audibleTime(): number {
    const ts = this.ctx.getOutputTimestamp?.();
    if (ts && ts.contextTime !== undefined && ts.performanceTime !== undefined && ts.contextTime > 0) {
      return ts.contextTime + Math.max(0, performance.now() - ts.performanceTime) / 1000;
    }
    return this.ctx.currentTime - (this.ctx.outputLatency || 0) - (this.ctx.baseLatency || 0);
  }

  outputLevel(): number {
    this.analyser.getFloatTimeDomainData(this.levelBuf);
    return meterFraction(toDb(rms(this.levelBuf)), -50, -12);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream?.getTracks().forEach((t) => t.stop());
    if (this.worklet) {
      this.worklet.port.onmessage = null;
      this.worklet.port.postMessage('stop');
      this.worklet.disconnect();
    }
    this.micSource?.disconnect();
    this.sink?.disconnect();
    for (const src of this.sources) {
      try {
        src.stop();
      } catch {
        // never started
      }
    }
    this.sources.clear();
    this.onChunkEnded = null;
    void this.ctx.close().catch(() => undefined);
  }
}
