// Presenting a report's content (its `fields`, whose members depend on the
// kind: POST /report/inaccuracy or /report/send-to-team).

import type { Report, ReportKind, ReportStatus } from '../api/admin';

export const REPORT_STATUSES: readonly ReportStatus[] = ['open', 'resolved', 'dismissed'];

export const KIND_LABELS: Record<ReportKind, string> = {
  inaccuracy: 'Inaccurate answer',
  send_to_team: 'Message to the team',
};

export const STATUS_LABELS: Record<ReportStatus, string> = {
  open: 'Open',
  resolved: 'Resolved',
  dismissed: 'Dismissed',
};

export function kindLabel(kind: string): string {
  return (KIND_LABELS as Record<string, string>)[kind] ?? kind;
}

export function reportStatusLabel(status: string): string {
  return (STATUS_LABELS as Record<string, string>)[status] ?? status;
}

export interface Turn {
  role: string;
  content: string;
}

export type Section = { label: string; text: string } | { label: string; turns: Turn[] };

const FIELD_LABELS: Array<[string, string]> = [
  ['user_input', 'What the trainee said'],
  ['user_question', 'Question'],
  ['avatar_response', "Adam's answer"],
  ['ai_response', "Adam's answer"],
  ['user_note', "Reporter's note"],
  ['additional_notes', "Reporter's notes"],
  ['conversation_context', 'Conversation'],
  ['conversation_history', 'Conversation'],
];

function asTurns(value: unknown): Turn[] | null {
  if (!Array.isArray(value)) return null;
  const turns: Turn[] = [];
  for (const t of value) {
    if (!t || typeof t !== 'object') return null;
    const { role, content } = t as { role?: unknown; content?: unknown };
    turns.push({ role: String(role ?? ''), content: typeof content === 'string' ? content : JSON.stringify(content) });
  }
  return turns;
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** The report's fields in reading order, known ones labelled, unknown ones after them. */
export function reportSections(report: Pick<Report, 'fields'>): Section[] {
  const fields = report.fields ?? {};
  const out: Section[] = [];
  const seen = new Set<string>();
  const push = (key: string, label: string) => {
    seen.add(key);
    const value = fields[key];
    if (value === undefined || value === null || value === '') return;
    const turns = asTurns(value);
    if (turns) {
      if (turns.length > 0) out.push({ label, turns });
    } else {
      out.push({ label, text: asText(value) });
    }
  };
  for (const [key, label] of FIELD_LABELS) push(key, label);
  for (const key of Object.keys(fields)) if (!seen.has(key)) push(key, key.replace(/_/g, ' '));
  return out;
}

/** A one-line excerpt for the list. */
export function reportExcerpt(report: Pick<Report, 'fields'>, max = 140): string {
  const f = report.fields ?? {};
  const text = [f.user_input, f.user_question, f.user_note, f.additional_notes].find(
    (v): v is string => typeof v === 'string' && v.trim() !== '',
  );
  if (!text) return '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
