import { describe, expect, it } from 'vitest';
import {
  EMPTY_TRANSCRIPT,
  closeFailure,
  deriveStatus,
  initMessage,
  microphoneFailure,
  parseServerMessage,
  statusLabel,
  transcriptReducer,
} from './protocol';
import type { StatusInputs, Transcript, TranscriptAction } from './protocol';

describe('parseServerMessage', () => {
  it('reads the messages the server sends', () => {
    expect(parseServerMessage('{"type":"ready","message":"Listening..."}')).toEqual({ type: 'ready', message: 'Listening...' });
    expect(parseServerMessage('{"type":"processing"}')).toEqual({ type: 'processing' });
    expect(
      parseServerMessage('{"type":"transcript","text":"hello","is_final":true,"full_transcript":"hello","confidence":0.8}'),
    ).toEqual({ type: 'transcript', text: 'hello', is_final: true, full_transcript: 'hello', confidence: 0.8 });
    expect(parseServerMessage('{"type":"transcript","full_transcript":"only full"}')).toMatchObject({ text: 'only full' });
    expect(parseServerMessage('{"type":"response_text","delta":"Hi"}')).toEqual({ type: 'response_text', delta: 'Hi' });
    expect(parseServerMessage('{"type":"viseme","sentence":1,"offset_ms":900,"visemes":[{"t":0,"d":50,"v":"aa"}]}')).toEqual({
      type: 'viseme',
      sentence: 1,
      offset_ms: 900,
      visemes: [{ t: 0, d: 50, v: 'aa' }],
    });
    expect(parseServerMessage('{"type":"response_complete","text":"A.","user_text":"Q?"}')).toEqual({
      type: 'response_complete',
      text: 'A.',
      user_text: 'Q?',
    });
    expect(parseServerMessage('{"type":"mode_changed","mode":"roleplay"}')).toEqual({ type: 'mode_changed', mode: 'roleplay' });
    expect(parseServerMessage('{"type":"error","message":"No speech was received"}')).toEqual({
      type: 'error',
      message: 'No speech was received',
    });
    expect(parseServerMessage('{"type":"error"}')).toMatchObject({ type: 'error', message: expect.any(String) });
  });

  it('rejects what is not a known message', () => {
    for (const bad of ['', 'nope', '[]', 'null', '"ready"', '{"type":"bogus"}', '{"message":"x"}']) {
      expect(parseServerMessage(bad)).toBeNull();
    }
  });
});

describe('initMessage', () => {
  it('asks for PCM and names the dealership only when given', () => {
    expect(initMessage('training', null)).toEqual({ type: 'init', mode: 'training', audio_format: 'pcm_s16le_16000' });
    expect(initMessage('roleplay', 7)).toEqual({
      type: 'init',
      mode: 'roleplay',
      audio_format: 'pcm_s16le_16000',
      dealership_id: 7,
    });
  });
});

describe('deriveStatus', () => {
  const base: StatusInputs = { connection: 'open', ready: true, awaiting: false, adamAudible: false, userTalking: false };
  it('follows the call', () => {
    expect(deriveStatus({ ...base, connection: 'idle' })).toBe('idle');
    expect(deriveStatus({ ...base, connection: 'connecting', ready: false })).toBe('connecting');
    expect(deriveStatus({ ...base, ready: false })).toBe('connecting');
    expect(deriveStatus(base)).toBe('listening');
    expect(deriveStatus({ ...base, userTalking: true })).toBe('user_speaking');
    expect(deriveStatus({ ...base, awaiting: true })).toBe('thinking');
    expect(deriveStatus({ ...base, userTalking: true, awaiting: true })).toBe('user_speaking');
    expect(deriveStatus({ ...base, adamAudible: true, userTalking: true, awaiting: true })).toBe('adam_speaking');
    expect(deriveStatus({ ...base, connection: 'closed', adamAudible: true })).toBe('ended');
  });

  it('names each state', () => {
    expect(statusLabel('thinking')).toBe('Adam is thinking…');
    expect(statusLabel('adam_speaking', 'The customer')).toBe('The customer is speaking');
    expect(statusLabel('user_speaking')).toBe('You are speaking');
  });
});

describe('transcriptReducer', () => {
  const run = (actions: TranscriptAction[], from: Transcript = EMPTY_TRANSCRIPT) => actions.reduce(transcriptReducer, from);

  it('builds user turns from transcripts and Adam\'s from deltas', () => {
    const t = run([
      { type: 'user', text: ' What is GAP? ' },
      { type: 'delta', text: 'GAP covers ' },
      { type: 'delta', text: 'the difference' },
    ]);
    expect(t.turns.map((x) => [x.role, x.text, x.state])).toEqual([
      ['user', 'What is GAP?', 'done'],
      ['adam', 'GAP covers the difference', 'live'],
    ]);
    const done = transcriptReducer(t, { type: 'complete', text: 'GAP covers the difference.' });
    expect(done.turns[1]).toMatchObject({ text: 'GAP covers the difference.', state: 'done' });
    expect(done.turns[1].key).toBe(t.turns[1].key);
  });

  it('adds a complete answer that had no deltas, and ignores empty text', () => {
    const t = run([{ type: 'user', text: '   ' }, { type: 'delta', text: '' }, { type: 'complete', text: 'Hello.' }]);
    expect(t.turns).toHaveLength(1);
    expect(t.turns[0]).toMatchObject({ role: 'adam', text: 'Hello.', state: 'done' });
    expect(run([{ type: 'complete', text: '' }]).turns).toHaveLength(0);
  });

  it('keeps an interrupted or failed partial answer, drops an empty one', () => {
    const t = run([{ type: 'delta', text: 'Well' }, { type: 'interrupted' }]);
    expect(t.turns[0]).toMatchObject({ text: 'Well', state: 'interrupted' });
    // A later delta starts a new answer.
    expect(transcriptReducer(t, { type: 'delta', text: 'Next' }).turns).toHaveLength(2);
    expect(run([{ type: 'delta', text: 'Hmm' }, { type: 'failed' }]).turns[0].state).toBe('failed');
    expect(run([{ type: 'complete', text: '' }, { type: 'interrupted' }]).turns).toHaveLength(0);
    expect(run([{ type: 'interrupted' }])).toBe(EMPTY_TRANSCRIPT);
  });

  it('marks a complete answer interrupted when it was cut off while playing', () => {
    const done = run([{ type: 'user', text: 'q' }, { type: 'complete', text: 'A long answer.' }, { type: 'notice', text: 'n' }]);
    expect(transcriptReducer(done, { type: 'interrupted' })).toBe(done);
    const cut = transcriptReducer(done, { type: 'interrupted', playing: true });
    expect(cut.turns[1]).toMatchObject({ text: 'A long answer.', state: 'interrupted' });
    // Nothing to cut when the last turn is the user's.
    const asked = transcriptReducer(done, { type: 'user', text: 'next' });
    expect(transcriptReducer(asked, { type: 'interrupted', playing: true })).toBe(asked);
  });

  it('adds notices and resets', () => {
    const t = run([{ type: 'notice', text: 'History cleared.' }]);
    expect(t.turns[0]).toMatchObject({ role: 'notice', text: 'History cleared.' });
    expect(transcriptReducer(t, { type: 'reset' }).turns).toHaveLength(0);
    const keys = run([{ type: 'user', text: 'a' }, { type: 'user', text: 'b' }]).turns.map((x) => x.key);
    expect(new Set(keys).size).toBe(2);
  });
});

describe('closeFailure', () => {
  it('explains each close code', () => {
    expect(closeFailure(1000, 'call ended', true)).toBeNull();
    expect(closeFailure(4001, 'Authentication required', true)).toMatchObject({ kind: 'auth', message: expect.stringMatching(/sign in again/) });
    expect(closeFailure(4003, 'User ID mismatch', true)).toEqual({ kind: 'forbidden', message: 'The call was refused: User ID mismatch.' });
    expect(closeFailure(4003, 'User not assigned to a dealership', true)?.message).toMatch(
      /User not assigned to a dealership\. Ask an administrator/,
    );
    expect(closeFailure(4003, '', true)?.message).toMatch(/may not/);
    expect(closeFailure(1006, '', false)).toMatchObject({ kind: 'connection', message: expect.stringMatching(/Could not connect/) });
    expect(closeFailure(1006, '', true)?.message).toMatch(/was lost/);
    expect(closeFailure(1011, 'Service unavailable', true)?.message).toMatch(/\(Service unavailable\)/);
    expect(closeFailure(1008, 'init expected', true)?.message).toBe('The call ended unexpectedly (init expected).');
    expect(closeFailure(1009, '', true)?.message).toMatch(/too large/);
    expect(closeFailure(1001, '', true)?.message).toMatch(/restarting/);
    expect(closeFailure(4999, '', true)?.message).toMatch(/code 4999/);
  });
});

describe('microphoneFailure', () => {
  const named = (name: string, message = '') => Object.assign(new Error(message), { name });
  it('explains permission, missing and busy devices', () => {
    expect(microphoneFailure(named('NotAllowedError')).message).toMatch(/denied.*Allow the microphone/);
    expect(microphoneFailure(new DOMException('x', 'NotAllowedError')).message).toMatch(/denied/);
    expect(microphoneFailure(named('NotFoundError')).message).toMatch(/No microphone/);
    expect(microphoneFailure(named('NotReadableError')).message).toMatch(/another application/);
    expect(microphoneFailure(named('InsecureContextError')).message).toMatch(/https/);
    expect(microphoneFailure(named('TypeError', 'boom'))).toEqual({
      kind: 'microphone',
      message: 'The microphone could not be started (boom).',
    });
    expect(microphoneFailure('weird').kind).toBe('microphone');
  });
});
