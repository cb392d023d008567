// The messages of the chat page as a reducer, kept apart from React so the
// rules (how a streamed answer grows, what a report sends) are testable.

import type { HistoryMessage, Turn } from '../api/chat';
import type { ChatDone, ChatSource } from '../api/sse';

export type MessageState = 'streaming' | 'done' | 'stopped' | 'error';

export interface ChatMessage {
  /** Local key (history messages: "h" + the server's id). */
  key: string;
  role: 'user' | 'assistant' | 'notice';
  content: string;
  state: MessageState;
  /** assistant: the question this answers. */
  question?: string;
  sources?: ChatSource[] | null;
  provider?: string;
  cache?: 'hit' | 'miss';
  timestamp?: string;
  /** assistant, state "error": the error.message of the failure. */
  error?: string;
}

export type ChatAction =
  | { type: 'reset' }
  | { type: 'load'; history: HistoryMessage[] }
  | { type: 'send'; question: string; userKey: string; answerKey: string; timestamp: string }
  | { type: 'token'; key: string; text: string }
  | { type: 'sources'; key: string; sources: ChatSource[] | null }
  | { type: 'done'; key: string; done: ChatDone }
  | { type: 'stop'; key: string }
  | { type: 'fail'; key: string; message: string }
  | { type: 'notice'; key: string; text: string };

export function chatReducer(messages: ChatMessage[], action: ChatAction): ChatMessage[] {
  switch (action.type) {
    case 'reset':
      return [];
    case 'load':
      return fromHistory(action.history);
    case 'send':
      return [
        ...messages,
        {
          key: action.userKey,
          role: 'user',
          content: action.question,
          state: 'done',
          timestamp: action.timestamp,
        },
        {
          key: action.answerKey,
          role: 'assistant',
          content: '',
          state: 'streaming',
          question: action.question,
        },
      ];
    case 'token':
      return update(messages, action.key, (m) =>
        m.state === 'streaming' ? { ...m, content: m.content + action.text } : m,
      );
    case 'sources':
      return update(messages, action.key, (m) => ({ ...m, sources: action.sources }));
    case 'done':
      return update(messages, action.key, (m) => ({
        ...m,
        state: 'done',
        provider: action.done.provider,
        cache: action.done.cache,
        timestamp: action.done.timestamp ?? new Date().toISOString(),
      }));
    case 'stop':
      return update(messages, action.key, (m) =>
        m.state === 'streaming' ? { ...m, state: 'stopped' } : m,
      );
    case 'fail':
      return update(messages, action.key, (m) => ({ ...m, state: 'error', error: action.message }));
    case 'notice':
      return [...messages, { key: action.key, role: 'notice', content: action.text, state: 'done' }];
  }
}

function update(
  messages: ChatMessage[],
  key: string,
  fn: (m: ChatMessage) => ChatMessage,
): ChatMessage[] {
  return messages.map((m) => (m.key === key ? fn(m) : m));
}

/** Stored messages (oldest first) as page messages; answers learn their question. */
export function fromHistory(history: HistoryMessage[]): ChatMessage[] {
  let lastQuestion: string | undefined;
  return history.map((h) => {
    if (h.role === 'user') lastQuestion = h.content;
    return {
      key: `h${h.id}`,
      role: h.role === 'user' ? 'user' : 'assistant',
      content: h.content,
      state: 'done',
      question: h.role === 'user' ? undefined : lastQuestion,
      sources: h.sources,
      timestamp: h.timestamp,
    };
  });
}

/** The most turns a report carries (the server accepts up to 100). */
export const REPORT_TURNS = 20;

/**
 * The conversation turns up to the message `key`: before it (`include`
 * false) or through it (true), after the last "context cleared" notice, at
 * most REPORT_TURNS, oldest first. Failed and empty answers are left out.
 */
export function turnsUpTo(messages: ChatMessage[], key: string, include: boolean): Turn[] {
  const end = messages.findIndex((m) => m.key === key);
  if (end === -1) return [];
  const turns: Turn[] = [];
  for (let i = include ? end : end - 1; i >= 0 && turns.length < REPORT_TURNS; i--) {
    const m = messages[i];
    if (m.role === 'notice') break;
    if (m.state === 'error' || !m.content) continue;
    turns.push({ role: m.role, content: m.content });
  }
  return turns.reverse();
}

/** The user turn an answer replies to, excluded from the turns before it. */
export function contextBefore(messages: ChatMessage[], answerKey: string): Turn[] {
  const turns = turnsUpTo(messages, answerKey, false);
  const last = turns[turns.length - 1];
  if (last && last.role === 'user') turns.pop();
  return turns;
}
