// One live voice call: microphone → socket → Adam's voice and face.
//
//   start()   open the audio engine (in the click that starts the call, so
//             the browser lets it play), the microphone, then the socket
//             GET /api/v1/voice/ws/live/{user_id} with the access token as
//             the subprotocol "bearer.<token>"; send init asking for PCM
//             s16le 16 kHz answers; once "ready" comes, stream 20 ms
//             microphone frames as binary messages. The server ends each
//             turn itself after a silence.
//   answers   binary PCM frames are scheduled back to back on the audio
//             context; "viseme" messages go to the answer's timeline.
//   barge-in  talking over Adam for ~150 ms (local level), the interrupt
//             button, or the server's own "interrupted": playback stops at
//             once, queued audio is dropped, and audio still in flight for
//             the interrupted answer is ignored until the next turn.
//
// The call is independent of React: the page subscribes to snapshots. For
// end-to-end tests the page publishes `stats` as window.__avatarVoice.

import type { PcmFrame } from './frames';
import { BargeInDetector, SpeechDetector } from './activity';
import { PcmReassembler, toDb } from './pcm';
import {
  EMPTY_TRANSCRIPT,
  closeFailure,
  deriveStatus,
  initMessage,
  microphoneFailure,
  parseServerMessage,
  transcriptReducer,
} from './protocol';
import type { CallStatus, Failure, ServerMessage, Transcript, TranscriptAction, VoiceMode } from './protocol';
import type { PlaybackPosition, Segment } from './scheduler';
import { VisemeTimeline } from './visemes';

/** The part of WebSocket the call uses. */
export interface SocketLike {
  binaryType: BinaryType;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}

const OPEN = 1;

/** Audio in and out (see engine.ts for the Web Audio one). */
export interface AudioEngine {
  /** Open the microphone and deliver 16 kHz frames; rejects like getUserMedia. */
  startCapture(onFrame: (frame: PcmFrame) => void, onEnded: () => void): Promise<void>;
  /** Begin a new answer (positions for lip-sync restart at 0). */
  beginAnswer(): number;
  /** Schedule 16 kHz samples right after what is queued. */
  play(samples: Float32Array): Segment;
  /** Schedule encoded audio (MP3) after what is queued, in call order. */
  playEncoded(bytes: ArrayBuffer): Promise<Segment | null>;
  /** Stop what plays and drop what is queued. */
  stopPlayback(): void;
  /** Adam's audio is playing or queued. */
  isPlaying(): boolean;
  /** The answer position audible now. */
  position(): PlaybackPosition | null;
  /** The output level now, 0..1. */
  outputLevel(): number;
  readonly sampleRate: number;
  /** Called when a scheduled piece has finished playing (or was stopped). */
  onChunkEnded: (() => void) | null;
  close(): void;
}

export interface VoiceCallDeps {
  /** Called synchronously inside start(). */
  createEngine(): AudioEngine;
  openSocket(url: string, protocols: string[]): SocketLike;
  /** A valid access token, or null when signed out. */
  getToken(): Promise<string | null>;
}

export interface VoiceCallOptions {
  userId: number;
  mode: VoiceMode;
  /** Required for a super admin; others use their own dealership. */
  dealershipId: number | null;
  /** ws(s)://host, no trailing slash. */
  origin: string;
}

/** Counters for tests and diagnostics (window.__avatarVoice). */
export interface VoiceStats {
  /** The status shown (CallStatus). */
  state: CallStatus;
  /** Microphone frames sent as binary messages. */
  framesSent: number;
  bytesSent: number;
  /** Frames not sent because the socket was backed up. */
  framesDropped: number;
  /** Binary (PCM) messages received and their bytes. */
  audioMessages: number;
  bytesReceived: number;
  /** Audio buffers scheduled on the AudioContext, and their seconds. */
  chunksPlayed: number;
  secondsScheduled: number;
  /** Scheduled buffers the AudioContext has finished (or stopped). */
  chunksEnded: number;
  /** AudioContext time at which the last scheduled buffer ends. */
  playbackEnd: number;
  /** Viseme entries received (and the messages that carried them). */
  visemes: number;
  visemeMessages: number;
  /** The avatar's current mouth: a viseme, "level" (no visemes) or "rest". */
  mouth: string;
  /** Interrupts sent (button or local barge-in) and local barge-ins. */
  interruptsSent: number;
  bargeIns: number;
  /** Server "interrupted" messages. */
  interruptedReceived: number;
  /** Types of the last server messages, newest last. */
  lastMessages: string[];
  /** The AudioContext's rate, once known. */
  sampleRate: number;
  /** The last microphone frame's level, dBFS. */
  micLevelDb: number;
}

export function newStats(): VoiceStats {
  return {
    state: 'idle',
    framesSent: 0,
    bytesSent: 0,
    framesDropped: 0,
    audioMessages: 0,
    bytesReceived: 0,
    chunksPlayed: 0,
    secondsScheduled: 0,
    chunksEnded: 0,
    playbackEnd: 0,
    visemes: 0,
    visemeMessages: 0,
    mouth: 'rest',
    interruptsSent: 0,
    bargeIns: 0,
    interruptedReceived: 0,
    lastMessages: [],
    sampleRate: 0,
    micLevelDb: -100,
  };
}

export interface VoiceSnapshot {
  status: CallStatus;
  mode: VoiceMode;
  transcript: Transcript;
  /** Why the call ended or could not start. */
  failure: Failure | null;
  /** A turn the server could not handle (the call goes on). */
  turnError: string | null;
  /** A mode change is waiting for the server's answer. */
  modePending: boolean;
}

/** Seconds of sending backlog beyond which microphone frames are dropped. */
const MAX_BUFFERED_BYTES = 64 * 1024;
const PING_MS = 25_000;
const FRAME_MS = 20;
const LAST_MESSAGES = 20;

export class VoiceCall {
  readonly stats: VoiceStats = newStats();
  private snap: VoiceSnapshot;
  private listeners = new Set<() => void>();

  private engine: AudioEngine | null = null;
  private socket: SocketLike | null = null;
  private connection: 'idle' | 'connecting' | 'open' | 'closed' = 'idle';
  private ready = false;
  private everOpened = false;
  private awaiting = false;
  private userTalking = false;
  private discardAudio = false;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private readonly reassembler = new PcmReassembler();
  private readonly detector = new SpeechDetector();
  private readonly bargeIn = new BargeInDetector();
  private readonly timelines = new Map<number, VisemeTimeline>();
  private encodedChain: Promise<unknown> = Promise.resolve();
  private encodedGen = 0;
  /** The answer being received (the engine's id from beginAnswer). */
  private answerId = 0;

  constructor(
    private readonly options: VoiceCallOptions,
    private readonly deps: VoiceCallDeps,
  ) {
    this.snap = {
      status: 'idle',
      mode: options.mode,
      transcript: EMPTY_TRANSCRIPT,
      failure: null,
      turnError: null,
      modePending: false,
    };
  }

  // -------------------------------------------------------------------------
  // For the page

  get snapshot(): VoiceSnapshot {
    return this.snap;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The engine, for the avatar's animation (null before start / after the end). */
  get audio(): AudioEngine | null {
    return this.engine;
  }

  /** The visemes of an answer, if any arrived. */
  timeline(answer: number): VisemeTimeline | undefined {
    return this.timelines.get(answer);
  }

  /** Start the call. Call it from the click handler (user activation). */
  async start(): Promise<void> {
    if (this.connection !== 'idle') return;
    this.connection = 'connecting';
    this.update({ failure: null, turnError: null });

    let engine: AudioEngine;
    try {
      engine = this.deps.createEngine();
    } catch (err) {
      this.fail(microphoneFailure(err));
      return;
    }
    this.engine = engine;
    this.stats.sampleRate = engine.sampleRate;
    engine.onChunkEnded = () => {
      this.stats.chunksEnded++;
    };
    try {
      await engine.startCapture(
        (f) => this.onFrame(f),
        () => this.fail({ kind: 'microphone', message: 'The microphone stopped (was it unplugged or switched off?).' }),
      );
    } catch (err) {
      if (this.connection === 'connecting') this.fail(microphoneFailure(err));
      return;
    }
    if (this.connection !== 'connecting') return; // stopped meanwhile

    let token: string | null = null;
    try {
      token = await this.deps.getToken();
    } catch {
      if (this.connection === 'connecting') {
        this.fail({ kind: 'connection', message: 'Could not reach the server. Check your connection and try again.' });
      }
      return;
    }
    if (this.connection !== 'connecting') return;
    if (!token) {
      this.fail({ kind: 'auth', message: 'Your session has ended. Please sign in again.' });
      return;
    }

    const url = `${this.options.origin}/api/v1/voice/ws/live/${encodeURIComponent(String(this.options.userId))}`;
    let socket: SocketLike;
    try {
      socket = this.deps.openSocket(url, [`bearer.${token}`]);
    } catch {
      this.fail({ kind: 'connection', message: 'Could not connect to the voice service.' });
      return;
    }
    this.socket = socket;
    socket.binaryType = 'arraybuffer';
    socket.onopen = () => {
      this.everOpened = true;
      this.sendJson(initMessage(this.snap.mode, this.options.dealershipId));
      this.pingTimer = setInterval(() => this.sendJson({ type: 'ping' }), PING_MS);
    };
    socket.onmessage = (ev) => this.onMessage(ev.data);
    socket.onclose = (ev) => this.onClose(ev.code, ev.reason);
    socket.onerror = () => undefined; // the close event follows with the code
    this.emit();
  }

  /** End the call (the transcript stays). */
  stop(): void {
    if (this.connection === 'idle' || this.connection === 'closed') return;
    this.teardown(1000, 'call ended');
    this.update({});
  }

  /** Stop Adam now: the button, Escape, or local barge-in. */
  interrupt(): void {
    if (!this.ready || this.connection !== 'open') return;
    this.sendJson({ type: 'interrupt' });
    this.stats.interruptsSent++;
    this.stopAnswer();
  }

  /** Training or role-play; during a call the server confirms with mode_changed. */
  setMode(mode: VoiceMode): void {
    if (mode === this.snap.mode) return;
    if (this.socket?.readyState === OPEN) {
      // After init on the same socket: the server handles them in order.
      this.sendJson({ type: 'mode', mode });
      this.update({ mode, modePending: true });
    } else {
      this.update({ mode });
    }
  }

  /** Adam forgets the conversation so far (the server's history). */
  clearHistory(): void {
    if (this.connection === 'open' && this.ready) this.sendJson({ type: 'clear' });
  }

  /** Forget the transcript on the page (not the server's history). */
  resetTranscript(): void {
    this.update({ transcript: EMPTY_TRANSCRIPT });
  }

  // -------------------------------------------------------------------------
  // Microphone

  private onFrame(frame: PcmFrame): void {
    if (this.connection !== 'open' && this.connection !== 'connecting') return;
    const db = toDb(frame.level);
    this.stats.micLevelDb = db;
    const talking = this.detector.feed(db, FRAME_MS);
    const adamAudible = this.engine?.isPlaying() ?? false;
    if (this.bargeIn.feed(this.detector.loud, db, adamAudible, FRAME_MS) && this.ready) {
      this.stats.bargeIns++;
      this.interrupt();
    }
    const socket = this.socket;
    if (socket && this.ready && socket.readyState === OPEN) {
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.stats.framesDropped++;
      } else {
        socket.send(frame.pcm);
        this.stats.framesSent++;
        this.stats.bytesSent += frame.pcm.byteLength;
      }
    }
    this.userTalking = talking;
    // Frames are the call's clock: playback starting or ending changes
    // the status without any message.
    this.refresh();
  }

  // -------------------------------------------------------------------------
  // Messages

  private onMessage(data: unknown): void {
    if (this.connection !== 'connecting' && this.connection !== 'open') return;
    if (data instanceof ArrayBuffer) {
      this.onAudio(data);
      return;
    }
    if (typeof data !== 'string') return;
    const msg = parseServerMessage(data);
    if (!msg) return;
    const last = this.stats.lastMessages;
    last.push(msg.type);
    if (last.length > LAST_MESSAGES) last.splice(0, last.length - LAST_MESSAGES);
    this.handle(msg);
  }

  private onAudio(data: ArrayBuffer): void {
    this.stats.audioMessages++;
    this.stats.bytesReceived += data.byteLength;
    const engine = this.engine;
    if (this.discardAudio || !engine) return;
    const samples = this.reassembler.push(data);
    if (samples.length === 0) return;
    this.scheduled(engine.play(samples));
  }

  private scheduled(seg: Segment): void {
    this.stats.chunksPlayed++;
    this.stats.secondsScheduled += seg.duration;
    this.stats.playbackEnd = seg.start + seg.duration;
    this.refresh();
  }

  private handle(msg: ServerMessage): void {
    switch (msg.type) {
      case 'ready':
        if (!this.ready) {
          this.ready = true;
          this.connection = 'open';
        }
        this.awaiting = false;
        this.discardAudio = false;
        this.update({});
        break;
      case 'speaking_started':
        break;
      case 'speaking_stopped':
        this.awaiting = true;
        this.refresh();
        break;
      case 'processing':
        this.awaiting = true;
        this.discardAudio = false;
        this.beginAnswer();
        this.update({ turnError: null });
        break;
      case 'transcript':
        this.transcript({ type: 'user', text: msg.text });
        break;
      case 'response_text':
        this.transcript({ type: 'delta', text: msg.delta });
        break;
      case 'audio_chunk':
        this.onEncodedAudio(msg.data);
        break;
      case 'viseme': {
        if (this.discardAudio || !this.engine) break;
        const answer = this.answerId;
        let tl = this.timelines.get(answer);
        if (!tl) {
          tl = new VisemeTimeline();
          this.timelines.set(answer, tl);
        }
        this.stats.visemeMessages++;
        this.stats.visemes += tl.add(msg);
        break;
      }
      case 'response_complete':
        this.awaiting = false;
        this.transcript({ type: 'complete', text: msg.text });
        break;
      case 'interrupted':
        this.stats.interruptedReceived++;
        this.stopAnswer();
        break;
      case 'error':
        this.awaiting = false;
        this.snap = { ...this.snap, transcript: transcriptReducer(this.snap.transcript, { type: 'failed' }) };
        this.update({ turnError: msg.message, modePending: false });
        break;
      case 'mode_changed':
        this.snap = {
          ...this.snap,
          transcript: transcriptReducer(this.snap.transcript, {
            type: 'notice',
            text:
              msg.mode === 'roleplay'
                ? 'Role-play: Adam now plays the customer.'
                : 'Training: Adam now answers as your trainer.',
          }),
        };
        this.update({ mode: msg.mode, modePending: false });
        break;
      case 'cleared':
        this.transcript({ type: 'notice', text: 'History cleared: Adam starts afresh.' });
        break;
      case 'pong':
        break;
    }
  }

  private beginAnswer(): void {
    this.reassembler.reset();
    if (this.engine) this.answerId = this.engine.beginAnswer();
    // Only the answers that can still be heard need their visemes.
    for (const id of this.timelines.keys()) {
      if (id < this.answerId - 1) this.timelines.delete(id);
    }
  }

  /** MP3 from a server that ignored the PCM request: decoded in order. */
  private onEncodedAudio(b64: string): void {
    const engine = this.engine;
    if (this.discardAudio || !engine || !b64) return;
    let bytes: Uint8Array;
    try {
      const bin = atob(b64);
      bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    } catch {
      return;
    }
    this.stats.audioMessages++;
    this.stats.bytesReceived += bytes.length;
    const gen = this.encodedGen;
    this.encodedChain = this.encodedChain
      .then(async () => {
        if (gen !== this.encodedGen || this.engine !== engine) return;
        const seg = await engine.playEncoded(bytes.buffer as ArrayBuffer);
        if (seg) this.scheduled(seg);
      })
      .catch(() => undefined);
  }

  private stopAnswer(): void {
    const playing = this.engine?.isPlaying() ?? false;
    this.engine?.stopPlayback();
    this.encodedGen++;
    this.reassembler.reset();
    this.discardAudio = true;
    this.awaiting = false;
    this.bargeIn.reset();
    this.transcript({ type: 'interrupted', playing });
  }

  // -------------------------------------------------------------------------
  // The end

  private onClose(code: number, reason: string): void {
    if (this.connection === 'closed' || this.connection === 'idle') return;
    const failure = closeFailure(code, reason, this.everOpened);
    this.teardown(null, '');
    this.update({ failure });
  }

  private fail(failure: Failure): void {
    if (this.connection === 'closed') return;
    this.teardown(1000, 'call ended');
    this.update({ failure });
  }

  private teardown(code: number | null, reason: string): void {
    this.connection = 'closed';
    this.ready = false;
    this.awaiting = false;
    this.userTalking = false;
    this.encodedGen++;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      if (code !== null) {
        try {
          socket.close(code, reason);
        } catch {
          // already closing
        }
      }
    }
    const engine = this.engine;
    this.engine = null;
    engine?.close();
    this.snap = { ...this.snap, transcript: transcriptReducer(this.snap.transcript, { type: 'interrupted' }) };
  }

  // -------------------------------------------------------------------------
  // Helpers

  private sendJson(msg: object): void {
    const socket = this.socket;
    if (socket && socket.readyState === OPEN) socket.send(JSON.stringify(msg));
  }

  private transcript(action: TranscriptAction): void {
    const next = transcriptReducer(this.snap.transcript, action);
    if (next !== this.snap.transcript) this.update({ transcript: next });
    else this.refresh();
  }

  private computeStatus(): CallStatus {
    return deriveStatus({
      connection: this.connection,
      ready: this.ready,
      awaiting: this.awaiting,
      adamAudible: this.engine?.isPlaying() ?? false,
      userTalking: this.userTalking,
    });
  }

  /** Re-derive the status; emit only when it changed. */
  private refresh(): void {
    const status = this.computeStatus();
    if (status !== this.snap.status) this.update({});
  }

  private update(patch: Partial<VoiceSnapshot>): void {
    this.snap = { ...this.snap, ...patch, status: this.computeStatus() };
    this.emit();
  }

  private emit(): void {
    this.stats.state = this.snap.status;
    for (const l of this.listeners) l();
  }
}
