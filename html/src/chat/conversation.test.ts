import { describe, expect, it } from 'vitest';
import { chatReducer, contextBefore, fromHistory, turnsUpTo, REPORT_TURNS } from './conversation';
import type { ChatAction, ChatMessage } from './conversation';

const run = (actions: ChatAction[], start: ChatMessage[] = []) => actions.reduce(chatReducer, start);

const send = (n: number, question: string): ChatAction => ({
  type: 'send',
  question,
  userKey: `u${n}`,
  answerKey: `a${n}`,
  timestamp: '2025-01-01T00:00:00Z',
});

describe('chatReducer', () => {
  it('grows a streamed answer and completes it', () => {
    const m = run([
      send(1, 'What is GAP?'),
      { type: 'token', key: 'a1', text: 'GAP covers ' },
      { type: 'token', key: 'a1', text: 'the difference.' },
      { type: 'sources', key: 'a1', sources: [{ topic: 'books', filename: 'gap.pdf', relevance: '0.91' }] },
      { type: 'done', key: 'a1', done: { session_id: 's', provider: 'offline', cache: 'miss', timestamp: 't' } },
    ]);
    expect(m).toHaveLength(2);
    expect(m[0]).toMatchObject({ role: 'user', content: 'What is GAP?', state: 'done' });
    expect(m[1]).toMatchObject({
      role: 'assistant',
      content: 'GAP covers the difference.',
      state: 'done',
      question: 'What is GAP?',
      provider: 'offline',
      cache: 'miss',
      timestamp: 't',
    });
    expect(m[1].sources).toHaveLength(1);
  });

  it('keeps the partial answer when stopped and ignores late tokens', () => {
    const m = run([
      send(1, 'q'),
      { type: 'token', key: 'a1', text: 'part' },
      { type: 'stop', key: 'a1' },
      { type: 'token', key: 'a1', text: 'late' },
    ]);
    expect(m[1]).toMatchObject({ content: 'part', state: 'stopped' });
  });

  it('records the error.message of a failed answer', () => {
    const m = run([send(1, 'q'), { type: 'fail', key: 'a1', message: 'RAG not initialized' }]);
    expect(m[1]).toMatchObject({ state: 'error', error: 'RAG not initialized' });
  });

  it('only touches the message it names', () => {
    const m = run([send(1, 'q1'), send(2, 'q2'), { type: 'token', key: 'a2', text: 'x' }]);
    expect(m[1].content).toBe('');
    expect(m[3].content).toBe('x');
  });

  it('loads history with each answer knowing its question', () => {
    const m = chatReducer(
      [],
      {
        type: 'load',
        history: [
          { id: 1, session_id: 's', role: 'user', content: 'Q1', sources: null, timestamp: 't1' },
          { id: 2, session_id: 's', role: 'assistant', content: 'A1', sources: [], timestamp: 't2' },
          { id: 3, session_id: 's', role: 'user', content: 'Q2', sources: null, timestamp: 't3' },
          { id: 4, session_id: 's', role: 'assistant', content: 'A2', sources: null, timestamp: 't4' },
        ],
      },
    );
    expect(m.map((x) => [x.key, x.role, x.question])).toEqual([
      ['h1', 'user', undefined],
      ['h2', 'assistant', 'Q1'],
      ['h3', 'user', undefined],
      ['h4', 'assistant', 'Q2'],
    ]);
  });
});

describe('report turns', () => {
  const convo = run([
    send(1, 'Q1'),
    { type: 'token', key: 'a1', text: 'A1' },
    { type: 'done', key: 'a1', done: { session_id: 's' } },
    send(2, 'Q2'),
    { type: 'fail', key: 'a2', message: 'boom' },
    send(3, 'Q3'),
    { type: 'token', key: 'a3', text: 'A3' },
    { type: 'done', key: 'a3', done: { session_id: 's' } },
  ]);

  it('sends the conversation through the answer, without failed answers', () => {
    expect(turnsUpTo(convo, 'a3', true)).toEqual([
      { role: 'user', content: 'Q1' },
      { role: 'assistant', content: 'A1' },
      { role: 'user', content: 'Q2' },
      { role: 'user', content: 'Q3' },
      { role: 'assistant', content: 'A3' },
    ]);
  });

  it('gives the context before a question, without the question itself', () => {
    expect(contextBefore(convo, 'a3')).toEqual([
      { role: 'user', content: 'Q1' },
      { role: 'assistant', content: 'A1' },
      { role: 'user', content: 'Q2' },
    ]);
    expect(contextBefore(convo, 'a1')).toEqual([]);
  });

  it('stops at a "context cleared" notice', () => {
    const cleared = run(
      [
        { type: 'notice', key: 'n1', text: 'Context cleared' },
        send(4, 'Q4'),
        { type: 'token', key: 'a4', text: 'A4' },
        { type: 'done', key: 'a4', done: { session_id: 's' } },
      ],
      convo,
    );
    expect(turnsUpTo(cleared, 'a4', true)).toEqual([
      { role: 'user', content: 'Q4' },
      { role: 'assistant', content: 'A4' },
    ]);
  });

  it('caps the turns sent', () => {
    const long = run(
      Array.from({ length: 30 }, (_, i) => i + 10).flatMap((n): ChatAction[] => [
        send(n, `Q${n}`),
        { type: 'token', key: `a${n}`, text: `A${n}` },
        { type: 'done', key: `a${n}`, done: { session_id: 's' } },
      ]),
    );
    const turns = turnsUpTo(long, 'a39', true);
    expect(turns).toHaveLength(REPORT_TURNS);
    expect(turns[turns.length - 1]).toEqual({ role: 'assistant', content: 'A39' });
  });

  it('answers nothing for an unknown message', () => {
    expect(turnsUpTo(convo, 'nope', true)).toEqual([]);
    expect(fromHistory([])).toEqual([]);
  });
});
