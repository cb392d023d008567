import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { VoiceCall } from './call';
import type { AudioEngine, SocketLike, VoiceCallOptions } from './call';
import type { PcmFrame } from './frames';
import { floatToS16le } from './pcm';
import { PlaybackScheduler } from './scheduler';
import type { Segment } from './scheduler';

class FakeEngine implements AudioEngine {
  now = 10;
  readonly sampleRate = 48000;
  readonly scheduler = new PlaybackScheduler({ lead: 0.05 });
  played: Float32Array[] = [];
  stopped = 0;
  closed = false;
  captureError: unknown = null;
  onChunkEnded: (() => void) | null = null;
  onFrame: ((f: PcmFrame) => void) | null = null;
  onEnded: (() => void) | null = null;

  async startCapture(onFrame: (f: PcmFrame) => void, onEnded: () => void): Promise<void> {
    if (this.captureError) throw this.captureError;
    this.onFrame = onFrame;
    this.onEnded = onEnded;
  }
  beginAnswer(): number {
    return this.scheduler.beginAnswer();
  }
  play(samples: Float32Array): Segment {
    this.played.push(samples);
    return this.scheduler.schedule(this.now, samples.length / 16000);
  }
  async playEncoded(): Promise<Segment | null> {
    return null;
  }
  stopPlayback(): void {
    this.stopped++;
    this.scheduler.reset();
  }
  isPlaying(): boolean {
    return this.scheduler.isActive(this.now);
  }
  position() {
    return this.scheduler.positionAt(this.now);
  }
  outputLevel(): number {
    return 0;
  }
  close(): void {
    this.closed = true;
  }
}

class FakeSocket implements SocketLike {
  binaryType: BinaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  sent: (string | ArrayBuffer)[] = [];
  closedWith: [number | undefined, string | undefined] | null = null;
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}

  send(data: string | ArrayBuffer): void {
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
    this.readyState = 3;
  }
  // The server's side
  open(): void {
    this.readyState = 1;
    this.onopen?.({} as Event);
  }
  receive(msg: object | ArrayBuffer): void {
    this.onmessage?.({ data: msg instanceof ArrayBuffer ? msg : JSON.stringify(msg) } as MessageEvent);
  }
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason } as CloseEvent);
  }
  json(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === 'string').map((s) => JSON.parse(s));
  }
  types(): unknown[] {
    return this.json().map((m) => m.type);
  }
  binary(): ArrayBuffer[] {
    return this.sent.filter((s): s is ArrayBuffer => s instanceof ArrayBuffer);
  }
}

/** A 20 ms microphone frame at `db` dBFS. */
function frame(db: number): PcmFrame {
  return { pcm: new ArrayBuffer(640), level: Math.pow(10, db / 20) };
}

/** `seconds` of a 16 kHz tone as PCM s16le. */
function pcm(seconds: number): ArrayBuffer {
  return floatToS16le(Float32Array.from({ length: Math.round(seconds * 16000) }, (_, i) => 0.3 * Math.sin(i / 5)));
}

let engine: FakeEngine;
let socket: FakeSocket | null;
let token: string | null;

function makeCall(options: Partial<VoiceCallOptions> = {}): VoiceCall {
  return new VoiceCall(
    { userId: 42, mode: 'training', dealershipId: null, origin: 'ws://adam.test', ...options },
    {
      createEngine: () => engine,
      openSocket: (url, protocols) => (socket = new FakeSocket(url, protocols)),
      getToken: async () => token,
    },
  );
}

/** A call that is open and ready. */
async function readyCall(options: Partial<VoiceCallOptions> = {}): Promise<[VoiceCall, FakeSocket]> {
  const call = makeCall(options);
  await call.start();
  const s = socket as FakeSocket;
  s.open();
  s.receive({ type: 'ready', message: 'Listening...' });
  return [call, s];
}

beforeEach(() => {
  engine = new FakeEngine();
  socket = null;
  token = 'tok.en-1';
});

afterEach(() => {
  vi.useRealTimers();
});

describe('VoiceCall: connecting', () => {
  it('opens the live socket with the token as a subprotocol and sends init for PCM', async () => {
    const call = makeCall();
    const p = call.start();
    expect(call.snapshot.status).toBe('connecting');
    await p;
    const s = socket as FakeSocket;
    expect(s.url).toBe('ws://adam.test/api/v1/voice/ws/live/42');
    expect(s.protocols).toEqual(['bearer.tok.en-1']);
    expect(s.binaryType).toBe('arraybuffer');
    s.open();
    expect(s.json()).toEqual([{ type: 'init', mode: 'training', audio_format: 'pcm_s16le_16000' }]);
    expect(call.snapshot.status).toBe('connecting');
    s.receive({ type: 'ready', message: 'Listening...' });
    expect(call.snapshot.status).toBe('listening');
    expect(call.stats.state).toBe('listening');
  });

  it('names the dealership of a super admin in init', async () => {
    const [, s] = await readyCall({ dealershipId: 3, mode: 'roleplay' });
    expect(s.json()[0]).toEqual({ type: 'init', mode: 'roleplay', audio_format: 'pcm_s16le_16000', dealership_id: 3 });
  });

  it('streams microphone frames as binary only once the server is ready', async () => {
    const call = makeCall();
    await call.start();
    const s = socket as FakeSocket;
    engine.onFrame?.(frame(-60));
    s.open();
    engine.onFrame?.(frame(-60));
    expect(s.binary()).toHaveLength(0);
    s.receive({ type: 'ready' });
    engine.onFrame?.(frame(-60));
    engine.onFrame?.(frame(-60));
    expect(s.binary()).toHaveLength(2);
    expect(s.binary()[0].byteLength).toBe(640);
    expect(call.stats).toMatchObject({ framesSent: 2, bytesSent: 1280 });
  });

  it('drops frames while the socket is backed up', async () => {
    const [call, s] = await readyCall();
    s.bufferedAmount = 1 << 20;
    engine.onFrame?.(frame(-60));
    s.bufferedAmount = 0;
    engine.onFrame?.(frame(-60));
    expect(call.stats).toMatchObject({ framesSent: 1, framesDropped: 1 });
  });

  it('pings to keep the socket open', async () => {
    vi.useFakeTimers();
    const [, s] = await readyCall();
    vi.advanceTimersByTime(25_000);
    expect(s.types()).toContain('ping');
  });
});

describe('VoiceCall: a turn', () => {
  it('goes listening → thinking → Adam speaking → listening, with the transcript and audio', async () => {
    const [call, s] = await readyCall();
    for (let i = 0; i < 10; i++) engine.onFrame?.(frame(-20));
    expect(call.snapshot.status).toBe('user_speaking');
    for (let i = 0; i < 30; i++) engine.onFrame?.(frame(-70));
    s.receive({ type: 'speaking_stopped' });
    expect(call.snapshot.status).toBe('thinking');
    s.receive({ type: 'processing' });
    s.receive({ type: 'transcript', text: 'what is gap', is_final: true, full_transcript: 'what is gap', confidence: 0.9 });
    s.receive({ type: 'response_text', delta: 'GAP covers ' });
    expect(call.snapshot.status).toBe('thinking');
    s.receive({ type: 'viseme', sentence: 0, offset_ms: 0, visemes: [{ t: 0, d: 100, v: 'DD' }, { t: 100, d: 200, v: 'aa' }] });
    s.receive(pcm(0.5));
    expect(engine.played).toHaveLength(1);
    expect(engine.played[0]).toHaveLength(8000);
    expect(call.snapshot.status).toBe('adam_speaking');
    s.receive({ type: 'response_text', delta: 'the gap.' });
    s.receive(pcm(0.25));
    // Back to back: the second piece starts where the first ends.
    const segs = engine.scheduler;
    expect(segs.endTime).toBeCloseTo(10.05 + 0.75);
    s.receive({ type: 'response_complete', text: 'GAP covers the gap.', user_text: 'what is gap' });
    s.receive({ type: 'ready', message: 'Listening...' });
    expect(call.snapshot.status).toBe('adam_speaking'); // still playing

    // Lip-sync: the answer's timeline at the audible position.
    engine.now = 10.05 + 0.15;
    const pos = engine.position();
    expect(pos).not.toBeNull();
    expect(call.timeline(pos!.answer)?.at(pos!.media * 1000)).toBe('aa');

    engine.now = 11;
    engine.onFrame?.(frame(-70));
    expect(call.snapshot.status).toBe('listening');
    expect(call.snapshot.transcript.turns.map((t) => [t.role, t.text, t.state])).toEqual([
      ['user', 'what is gap', 'done'],
      ['adam', 'GAP covers the gap.', 'done'],
    ]);
    expect(call.stats).toMatchObject({
      audioMessages: 2,
      bytesReceived: 24000,
      chunksPlayed: 2,
      visemes: 2,
      visemeMessages: 1,
    });
    expect(call.stats.secondsScheduled).toBeCloseTo(0.75);
    expect(call.stats.lastMessages.slice(-2)).toEqual(['response_complete', 'ready']);
  });

  it('joins PCM cut in the middle of a sample', async () => {
    const [, s] = await readyCall();
    s.receive({ type: 'processing' });
    const bytes = new Uint8Array(pcm(0.01)); // 160 samples
    s.receive(bytes.slice(0, 101).buffer);
    s.receive(bytes.slice(101).buffer);
    expect(engine.played.map((p) => p.length)).toEqual([50, 110]);
  });

  it('shows a turn the server could not handle, and goes on listening', async () => {
    const [call, s] = await readyCall();
    s.receive({ type: 'speaking_stopped' });
    s.receive({ type: 'processing' });
    s.receive({ type: 'response_text', delta: 'Partial' });
    s.receive({ type: 'error', message: 'The language model failed' });
    s.receive({ type: 'ready' });
    expect(call.snapshot.turnError).toBe('The language model failed');
    expect(call.snapshot.transcript.turns[0]).toMatchObject({ text: 'Partial', state: 'failed' });
    expect(call.snapshot.status).toBe('listening');
    expect(call.snapshot.failure).toBeNull();
    s.receive({ type: 'processing' });
    expect(call.snapshot.turnError).toBeNull();
  });
});

describe('VoiceCall: interrupting', () => {
  async function speaking(): Promise<[VoiceCall, FakeSocket]> {
    const [call, s] = await readyCall();
    s.receive({ type: 'processing' });
    s.receive({ type: 'response_text', delta: 'A long answer' });
    s.receive(pcm(2));
    expect(call.snapshot.status).toBe('adam_speaking');
    return [call, s];
  }

  it('the button sends interrupt, stops playback at once and ignores audio still in flight', async () => {
    const [call, s] = await speaking();
    call.interrupt();
    expect(s.types().filter((t) => t === 'interrupt')).toHaveLength(1);
    expect(engine.stopped).toBe(1);
    expect(engine.isPlaying()).toBe(false);
    expect(call.snapshot.status).toBe('listening');
    expect(call.snapshot.transcript.turns[0]).toMatchObject({ state: 'interrupted' });
    s.receive(pcm(0.5)); // sent before the server heard the interrupt
    s.receive({ type: 'viseme', sentence: 1, offset_ms: 2000, visemes: [{ t: 0, d: 50, v: 'O' }] });
    expect(engine.played).toHaveLength(1);
    expect(call.stats.visemes).toBe(0);
    s.receive({ type: 'interrupted' });
    s.receive({ type: 'ready' });
    // The next answer plays again.
    s.receive({ type: 'processing' });
    s.receive(pcm(0.5));
    expect(engine.played).toHaveLength(2);
    expect(call.stats.interruptsSent).toBe(1);
  });

  it('marks an answer the server had completed as interrupted while it still played', async () => {
    const [call, s] = await speaking();
    s.receive({ type: 'response_complete', text: 'A long answer.' });
    s.receive({ type: 'ready' });
    expect(call.snapshot.transcript.turns[0].state).toBe('done');
    call.interrupt();
    expect(call.snapshot.transcript.turns[0]).toMatchObject({ text: 'A long answer.', state: 'interrupted' });
  });

  it('stops when the server reports its own barge-in', async () => {
    const [call, s] = await speaking();
    s.receive({ type: 'interrupted' });
    expect(engine.stopped).toBe(1);
    expect(call.stats.interruptedReceived).toBe(1);
    expect(call.snapshot.status).toBe('listening');
    s.receive(pcm(0.2));
    expect(engine.played).toHaveLength(1);
  });

  it('interrupts when the user talks over Adam for about 150 ms', async () => {
    const [call, s] = await speaking();
    for (let i = 0; i < 7; i++) engine.onFrame?.(frame(-22));
    expect(s.types()).not.toContain('interrupt');
    engine.onFrame?.(frame(-22)); // 160 ms
    expect(s.types().filter((t) => t === 'interrupt')).toHaveLength(1);
    expect(call.stats.bargeIns).toBe(1);
    expect(engine.stopped).toBe(1);
    for (let i = 0; i < 20; i++) engine.onFrame?.(frame(-22));
    expect(s.types().filter((t) => t === 'interrupt')).toHaveLength(1);
  });

  it('does not interrupt for talking while Adam is silent, nor for a quiet echo', async () => {
    const [, s] = await readyCall();
    for (let i = 0; i < 30; i++) engine.onFrame?.(frame(-22));
    s.receive({ type: 'processing' });
    s.receive(pcm(2));
    for (let i = 0; i < 30; i++) engine.onFrame?.(frame(-70));
    for (let i = 0; i < 30; i++) engine.onFrame?.(frame(-45));
    expect(s.types()).not.toContain('interrupt');
  });
});

describe('VoiceCall: mode and history', () => {
  it('switches mode during the call and waits for mode_changed', async () => {
    const [call, s] = await readyCall();
    call.setMode('roleplay');
    expect(s.json().at(-1)).toEqual({ type: 'mode', mode: 'roleplay' });
    expect(call.snapshot).toMatchObject({ mode: 'roleplay', modePending: true });
    s.receive({ type: 'mode_changed', mode: 'roleplay' });
    expect(call.snapshot.modePending).toBe(false);
    expect(call.snapshot.transcript.turns.at(-1)).toMatchObject({ role: 'notice' });
  });

  it('carries a mode chosen before the socket opened in init', async () => {
    const call = makeCall();
    await call.start();
    call.setMode('roleplay');
    (socket as FakeSocket).open();
    expect((socket as FakeSocket).json()[0]).toMatchObject({ type: 'init', mode: 'roleplay' });
  });

  it('clears the history', async () => {
    const [call, s] = await readyCall();
    call.clearHistory();
    expect(s.json().at(-1)).toEqual({ type: 'clear' });
    s.receive({ type: 'cleared' });
    expect(call.snapshot.transcript.turns.at(-1)?.text).toMatch(/History cleared/);
  });
});

describe('VoiceCall: ending and failures', () => {
  it('ends on stop: closes the socket and the audio, keeps the transcript', async () => {
    const [call, s] = await readyCall();
    s.receive({ type: 'transcript', text: 'hello' });
    call.stop();
    expect(s.closedWith).toEqual([1000, 'call ended']);
    expect(engine.closed).toBe(true);
    expect(call.snapshot).toMatchObject({ status: 'ended', failure: null });
    expect(call.snapshot.transcript.turns).toHaveLength(1);
    s.receive({ type: 'transcript', text: 'late' });
    expect(call.snapshot.transcript.turns).toHaveLength(1);
  });

  it('asks to sign in again on 4001', async () => {
    const call = makeCall();
    await call.start();
    (socket as FakeSocket).open();
    (socket as FakeSocket).serverClose(4001, 'Authentication required');
    expect(call.snapshot.status).toBe('ended');
    expect(call.snapshot.failure).toMatchObject({ kind: 'auth', message: expect.stringMatching(/sign in again/) });
    expect(engine.closed).toBe(true);
  });

  it('gives the reason of a 4003', async () => {
    const call = makeCall();
    await call.start();
    (socket as FakeSocket).open();
    (socket as FakeSocket).serverClose(4003, 'User not assigned to a dealership');
    expect(call.snapshot.failure).toMatchObject({
      kind: 'forbidden',
      message: expect.stringContaining('User not assigned to a dealership'),
    });
  });

  it('reports a socket that never opened', async () => {
    const call = makeCall();
    await call.start();
    (socket as FakeSocket).serverClose(1006);
    expect(call.snapshot.failure?.message).toMatch(/Could not connect/);
  });

  it('explains a denied microphone and opens no socket', async () => {
    engine.captureError = new DOMException('Permission denied', 'NotAllowedError');
    const call = makeCall();
    await call.start();
    expect(socket).toBeNull();
    expect(call.snapshot).toMatchObject({ status: 'ended', failure: { kind: 'microphone' } });
    expect(call.snapshot.failure?.message).toMatch(/denied/);
    expect(engine.closed).toBe(true);
  });

  it('reports a microphone that stops during the call', async () => {
    const [call, s] = await readyCall();
    engine.onEnded?.();
    expect(call.snapshot.failure).toMatchObject({ kind: 'microphone', message: expect.stringMatching(/stopped/) });
    expect(s.closedWith?.[0]).toBe(1000);
  });

  it('asks to sign in when there is no token', async () => {
    token = null;
    const call = makeCall();
    await call.start();
    expect(socket).toBeNull();
    expect(call.snapshot.failure).toMatchObject({ kind: 'auth' });
  });

  it('stopping while the microphone opens leaves nothing running', async () => {
    let release: () => void = () => undefined;
    engine.startCapture = (onFrame) =>
      new Promise<void>((resolve) => {
        engine.onFrame = onFrame;
        release = resolve;
      });
    const call = makeCall();
    const p = call.start();
    call.stop();
    release();
    await p;
    expect(socket).toBeNull();
    expect(engine.closed).toBe(true);
    expect(call.snapshot.status).toBe('ended');
  });

  it('notifies subscribers', async () => {
    const call = makeCall();
    const seen: string[] = [];
    const off = call.subscribe(() => seen.push(call.snapshot.status));
    await call.start();
    (socket as FakeSocket).open();
    (socket as FakeSocket).receive({ type: 'ready' });
    off();
    call.stop();
    expect(seen).toContain('connecting');
    expect(seen.at(-1)).toBe('listening');
  });
});
