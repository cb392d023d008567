// Chat routes beside the streamed answer (see ./sse.ts), and the two
// feedback reports a trainee sends about an answer (API.md, "Chat",
// "Reports").

import { request } from './client';
import type { ChatMode, ChatSource } from './sse';

/** GET /chat/sessions: the caller's conversations, most recent first. */
export interface ChatSession {
  session_id: string;
  mode: ChatMode;
  title: string | null;
  started_at: string;
  last_at: string;
  messages: number;
}

/** GET /chat/history: one stored message. */
export interface HistoryMessage {
  id: number;
  session_id: string;
  role: 'user' | 'assistant';
  content: string;
  sources: ChatSource[] | null;
  timestamp: string;
}

/** GET /chat/scenarios: a role-play customer. */
export interface Scenario {
  id: string;
  product: string;
  customer_profile: string;
  opening_line: string;
  /** How many objections the customer raises (or the objections themselves). */
  objections: number | string[];
}

export function listSessions(limit = 50, signal?: AbortSignal): Promise<ChatSession[]> {
  return request<ChatSession[]>('chat/sessions', { query: { limit }, signal });
}

/** The session's messages, oldest first (the newest `limit`). */
export function getHistory(
  sessionId: string,
  limit = 200,
  signal?: AbortSignal,
): Promise<HistoryMessage[]> {
  return request<HistoryMessage[]>('chat/history', {
    query: { session_id: sessionId, limit },
    signal,
  });
}

export async function listScenarios(signal?: AbortSignal): Promise<Scenario[]> {
  const out = await request<{ scenarios: Scenario[] }>('chat/scenarios', { signal });
  return Array.isArray(out?.scenarios) ? out.scenarios : [];
}

/** POST /chat/session/{id}/clear: Adam forgets the earlier turns of the session. */
export function clearSessionContext(sessionId: string): Promise<{ message: string }> {
  return request<{ message: string }>(`chat/session/${encodeURIComponent(sessionId)}/clear`, {
    method: 'POST',
  });
}

export interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

export interface InaccuracyReport {
  user_input: string;
  avatar_response: string;
  conversation_context?: Turn[];
  user_note?: string;
  session_id?: string;
  mode?: ChatMode;
}

export interface TeamMessage {
  user_question: string;
  ai_response: string;
  conversation_history: Turn[];
  additional_notes?: string;
  session_id?: string;
}

export interface ReportAnswer {
  success: boolean;
  message: string;
}

export function reportInaccuracy(body: InaccuracyReport): Promise<ReportAnswer> {
  return request<ReportAnswer>('report/inaccuracy', { method: 'POST', body });
}

export function sendToTeam(body: TeamMessage): Promise<ReportAnswer> {
  return request<ReportAnswer>('report/send-to-team', { method: 'POST', body });
}
