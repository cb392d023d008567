// GET /api/v1/analytics/summary (API.md, "Analytics"): a super admin sees
// everything or one dealership, a dealership admin its own dealership, a
// user its own usage.

import { request } from './client';

export interface AnalyticsSummary {
  from: string;
  to: string;
  scope: 'all' | 'dealership' | 'user';
  dealership_id: number | null;
  user_id: number | null;
  /** Conversations started in the range. */
  sessions: number;
  messages: number;
  /** Messages written by trainees (questions and role-play turns). */
  user_messages: number;
  voice_minutes: number;
  requests: number;
  tokens: { prompt: number; completion: number; total: number };
  active_users: number;
  top_questions: Array<{ question: string; count: number }>;
  top_topics: Array<{ topic: string; count: number }>;
  reports: {
    open: number;
    resolved: number;
    dismissed: number;
    total: number;
    inaccuracy: number;
    send_to_team: number;
  };
}

export interface SummaryQuery {
  /** ISO 8601; default: 30 days before `to`. */
  from?: string;
  /** ISO 8601; default: now. */
  to?: string;
  /** Super admins: one dealership (default: all). */
  dealership_id?: number;
  /** How many top questions and topics (1–50, default 10). */
  top?: number;
}

export function getSummary(query: SummaryQuery = {}, signal?: AbortSignal): Promise<AnalyticsSummary> {
  return request<AnalyticsSummary>('analytics/summary', { query: { ...query }, signal });
}
