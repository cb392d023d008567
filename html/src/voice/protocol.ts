// The live voice socket's messages (API.md, "Voice"), what the page shows
// for each state of a call, the running transcript, and plain-language
// messages for the ways a call can fail.

import type { VisemeMessage } from './visemes';

export type VoiceMode = 'training' | 'roleplay';

export type ServerMessage =
  | { type: 'ready'; message?: string }
  | { type: 'speaking_started' }
  | { type: 'speaking_stopped' }
  | { type: 'processing' }
  | { type: 'transcript'; text: string; is_final?: boolean; full_transcript?: string; confidence?: number }
  | { type: 'response_text'; delta: string }
  | { type: 'audio_chunk'; data: string }
  | ({ type: 'viseme' } & VisemeMessage)
  | { type: 'response_complete'; text: string; user_text?: string }
  | { type: 'interrupted' }
  | { type: 'error'; message: string }
  | { type: 'mode_changed'; mode: VoiceMode }
  | { type: 'cleared' }
  | { type: 'pong' };

export interface InitMessage {
  type: 'init';
  mode: VoiceMode;
  audio_format: 'pcm_s16le_16000';
  dealership_id?: number;
}

export function initMessage(mode: VoiceMode, dealershipId: number | null): InitMessage {
  const m: InitMessage = { type: 'init', mode, audio_format: 'pcm_s16le_16000' };
  if (dealershipId) m.dealership_id = dealershipId;
  return m;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * A text frame as a server message, with its fields checked and defaulted;
 * null for anything that is not a JSON object with a known type.
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
  const m = o as Record<string, unknown>;
  switch (m.type) {
    case 'ready':
      return { type: 'ready', message: str(m.message) };
    case 'speaking_started':
    case 'speaking_stopped':
    case 'processing':
    case 'interrupted':
    case 'cleared':
    case 'pong':
      return { type: m.type };
    case 'transcript':
      return {
        type: 'transcript',
        text: str(m.text) || str(m.full_transcript),
        is_final: m.is_final !== false,
        full_transcript: str(m.full_transcript),
        confidence: typeof m.confidence === 'number' ? m.confidence : undefined,
      };
    case 'response_text':
      return { type: 'response_text', delta: str(m.delta) };
    case 'audio_chunk':
      return { type: 'audio_chunk', data: str(m.data) };
    case 'viseme':
      return {
        type: 'viseme',
        sentence: typeof m.sentence === 'number' ? m.sentence : undefined,
        offset_ms: typeof m.offset_ms === 'number' ? m.offset_ms : 0,
        visemes: Array.isArray(m.visemes) ? (m.visemes as VisemeMessage['visemes']) : [],
      };
    case 'response_complete':
      return { type: 'response_complete', text: str(m.text), user_text: str(m.user_text) };
    case 'error':
      return { type: 'error', message: str(m.message) || 'The server could not handle that turn.' };
    case 'mode_changed':
      return { type: 'mode_changed', mode: m.mode === 'roleplay' ? 'roleplay' : 'training' };
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------
// The state shown to the user

export type CallStatus =
  | 'idle'
  | 'connecting'
  | 'listening'
  | 'user_speaking'
  | 'thinking'
  | 'adam_speaking'
  | 'ended';

export interface StatusInputs {
  /** The call: not started, starting (microphone, socket), open, over. */
  connection: 'idle' | 'connecting' | 'open' | 'closed';
  /** The server has answered init with "ready". */
  ready: boolean;
  /** A turn is with the server (speaking_stopped / processing until it ends). */
  awaiting: boolean;
  /** Adam's audio is playing or queued to play. */
  adamAudible: boolean;
  /** The local detector hears the user. */
  userTalking: boolean;
}

/** What the call is doing now; Adam's voice wins over the rest. */
export function deriveStatus(s: StatusInputs): CallStatus {
  if (s.connection === 'idle') return 'idle';
  if (s.connection === 'closed') return 'ended';
  if (s.connection === 'connecting' || !s.ready) return 'connecting';
  if (s.adamAudible) return 'adam_speaking';
  if (s.userTalking) return 'user_speaking';
  if (s.awaiting) return 'thinking';
  return 'listening';
}

/** The words for a status; `aiName` is "Adam" or "The customer". */
export function statusLabel(status: CallStatus, aiName = 'Adam'): string {
  switch (status) {
    case 'idle':
      return 'Not in a call';
    case 'connecting':
      return 'Connecting…';
    case 'listening':
      return 'Listening';
    case 'user_speaking':
      return 'You are speaking';
    case 'thinking':
      return `${aiName} is thinking…`;
    case 'adam_speaking':
      return `${aiName} is speaking`;
    case 'ended':
      return 'Call ended';
  }
}

// ---------------------------------------------------------------------------
// Transcript

export interface Turn {
  key: string;
  role: 'user' | 'adam' | 'notice';
  text: string;
  /** live: Adam's answer is still arriving. */
  state: 'live' | 'done' | 'interrupted' | 'failed';
}

export interface Transcript {
  turns: Turn[];
  seq: number;
}

export type TranscriptAction =
  | { type: 'user'; text: string }
  | { type: 'delta'; text: string }
  | { type: 'complete'; text: string }
  /** `playing`: the last answer was still being heard, even if complete. */
  | { type: 'interrupted'; playing?: boolean }
  | { type: 'failed' }
  | { type: 'notice'; text: string }
  | { type: 'reset' };

export const EMPTY_TRANSCRIPT: Transcript = { turns: [], seq: 0 };

function liveIndex(turns: Turn[]): number {
  for (let i = turns.length - 1; i >= 0; i--) {
    if (turns[i].role === 'adam' && turns[i].state === 'live') return i;
  }
  return -1;
}

function withTurn(t: Transcript, role: Turn['role'], text: string, state: Turn['state']): Transcript {
  const seq = t.seq + 1;
  return { seq, turns: [...t.turns, { key: `${role}-${seq}`, role, text, state }] };
}

function replaceAt(t: Transcript, i: number, turn: Turn | null): Transcript {
  const turns = t.turns.slice();
  if (turn) turns[i] = turn;
  else turns.splice(i, 1);
  return { ...t, turns };
}

/**
 * User turns come from "transcript", Adam's from "response_text" deltas,
 * finished (and corrected) by "response_complete"'s text.
 */
export function transcriptReducer(t: Transcript, a: TranscriptAction): Transcript {
  switch (a.type) {
    case 'user': {
      const text = a.text.trim();
      return text ? withTurn(t, 'user', text, 'done') : t;
    }
    case 'delta': {
      if (!a.text) return t;
      const i = liveIndex(t.turns);
      if (i < 0) return withTurn(t, 'adam', a.text, 'live');
      return replaceAt(t, i, { ...t.turns[i], text: t.turns[i].text + a.text });
    }
    case 'complete': {
      const i = liveIndex(t.turns);
      if (i < 0) return a.text ? withTurn(t, 'adam', a.text, 'done') : t;
      const text = a.text || t.turns[i].text;
      return replaceAt(t, i, text ? { ...t.turns[i], text, state: 'done' } : null);
    }
    case 'interrupted':
    case 'failed': {
      let i = liveIndex(t.turns);
      if (i < 0 && a.type === 'interrupted' && a.playing) {
        // The server had sent all of it, but the user cut it short.
        i = t.turns.length - 1;
        while (i >= 0 && t.turns[i].role === 'notice') i--;
        if (i < 0 || t.turns[i].role !== 'adam' || t.turns[i].state !== 'done') return t;
        return replaceAt(t, i, { ...t.turns[i], state: 'interrupted' });
      }
      if (i < 0) return t;
      const turn = t.turns[i];
      return replaceAt(t, i, turn.text ? { ...turn, state: a.type } : null);
    }
    case 'notice':
      return withTurn(t, 'notice', a.text, 'done');
    case 'reset':
      return EMPTY_TRANSCRIPT;
  }
}

// ---------------------------------------------------------------------------
// Failures

export type FailureKind = 'auth' | 'forbidden' | 'microphone' | 'connection' | 'server';

export interface Failure {
  kind: FailureKind;
  message: string;
}

/** The socket closed with `code`; null for a close the page asked for. */
export function closeFailure(code: number, reason: string, everOpened: boolean): Failure | null {
  const why = reason.trim();
  switch (code) {
    case 1000:
      return null;
    case 4001:
      return {
        kind: 'auth',
        message: 'The voice service did not accept your sign-in. Please sign in again.',
      };
    case 4003:
      if (/dealership/i.test(why)) {
        return {
          kind: 'forbidden',
          message: `The call was refused: ${why}. Ask an administrator to assign you to a dealership.`,
        };
      }
      return {
        kind: 'forbidden',
        message: why ? `The call was refused: ${why}.` : 'You may not start a voice call.',
      };
    case 1001:
      return {
        kind: 'connection',
        message: 'The voice service is restarting. Please start the call again.',
      };
    case 1009:
      return { kind: 'server', message: 'The call ended: a message was too large for the server.' };
    case 1011:
      return {
        kind: 'server',
        message: `The voice service had a problem${why ? ` (${why})` : ''}. Please try again.`,
      };
    case 1006:
      return {
        kind: 'connection',
        message: everOpened
          ? 'The connection to the voice service was lost. Please start the call again.'
          : 'Could not connect to the voice service. Check your connection and try again; if it keeps failing, sign in again.',
      };
    default:
      return {
        kind: 'server',
        message: `The call ended unexpectedly (${why || `code ${code}`}).`,
      };
  }
}

/** getUserMedia (or the audio setup after it) failed. */
export function microphoneFailure(err: unknown): Failure {
  const name = err && typeof err === 'object' && 'name' in err ? String((err as { name: unknown }).name) : '';
  const detail = err instanceof Error && err.message ? err.message : '';
  let message: string;
  switch (name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      message =
        'Microphone access was denied. Allow the microphone for this site (the icon in the address bar, or the browser’s site settings), then start the call again.';
      break;
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      message = 'No microphone was found. Connect one and start the call again.';
      break;
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      message =
        'The microphone could not be opened; another application may be using it. Close it and try again.';
      break;
    case 'InsecureContextError':
      message =
        'This page cannot use the microphone: voice calls need a secure (https) connection and a current browser.';
      break;
    default:
      message = `The microphone could not be started${detail ? ` (${detail})` : ''}.`;
  }
  return { kind: 'microphone', message };
}
