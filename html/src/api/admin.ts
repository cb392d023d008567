// Typed wrappers for the administration routes (API.md: Users, Dealerships,
// Knowledge base, Reports). Uploads with progress live in ./upload.ts.

import { request } from './client';
import type { Role, User } from './types';

// ---------------------------------------------------------------------------
// Users — /api/v1/users (SA: all; DA: own dealership)

export interface UserFilters {
  role?: Role;
  is_active?: boolean;
  dealership_id?: number;
}

export interface Paging {
  skip?: number;
  /** 1–100 for users, dealerships and reports. */
  limit?: number;
}

export interface UserCreate {
  email: string;
  password: string;
  first_name: string;
  last_name: string;
  role: Role;
  dealership_id?: number;
}

export interface UserUpdate {
  email?: string;
  first_name?: string;
  last_name?: string;
  is_active?: boolean;
  role?: Role;
  /** Super admins only. */
  dealership_id?: number;
}

export interface InviteCreate {
  email: string;
  role: Role;
  /** Required from a super admin unless the role is super_admin. */
  dealership_id?: number;
}

export interface Invite {
  id: number;
  email: string;
  expires_at: string;
}

export function listUsers(
  filters: UserFilters & Paging = {},
  signal?: AbortSignal,
): Promise<User[]> {
  return request<User[]>('users/', { query: { ...filters }, signal });
}

export async function countUsers(filters: UserFilters = {}, signal?: AbortSignal): Promise<number> {
  const out = await request<{ count: number }>('users/count', { query: { ...filters }, signal });
  return out.count;
}

export function createUser(body: UserCreate): Promise<User> {
  return request<User>('users/', { method: 'POST', body });
}

export function updateUser(id: number, body: UserUpdate): Promise<User> {
  return request<User>(`users/${id}`, { method: 'PATCH', body });
}

export function toggleUserActive(id: number): Promise<User> {
  return request<User>(`users/${id}/toggle-active`, { method: 'PATCH' });
}

export function deleteUser(id: number): Promise<void> {
  return request<void>(`users/${id}`, { method: 'DELETE' });
}

export function inviteUser(body: InviteCreate): Promise<Invite> {
  return request<Invite>('users/invites', { method: 'POST', body });
}

// ---------------------------------------------------------------------------
// Dealerships — /api/v1/dealerships

export interface Dealership {
  id: number;
  name: string;
  address: string | null;
  contact_email: string | null;
  contact_phone: string | null;
  is_active: boolean;
  rag_config: RagConfig | null;
  created_at: string;
  updated_at: string;
}

export interface DealershipCreate {
  name: string;
  address?: string;
  contact_email?: string;
  contact_phone?: string;
}

export interface DealershipUpdate extends Partial<DealershipCreate> {
  /** Super admins only. */
  is_active?: boolean;
}

/** The most a list route answers per request. */
export const PAGE_MAX = 100;

export function listDealerships(paging: Paging = {}, signal?: AbortSignal): Promise<Dealership[]> {
  return request<Dealership[]>('dealerships/', { query: { ...paging }, signal });
}

/** Every dealership the caller may see, page after page. */
export async function listAllDealerships(signal?: AbortSignal): Promise<Dealership[]> {
  const all: Dealership[] = [];
  for (let skip = 0; ; skip += PAGE_MAX) {
    const page = await listDealerships({ skip, limit: PAGE_MAX }, signal);
    all.push(...page);
    if (page.length < PAGE_MAX) return all;
  }
}

export function createDealership(body: DealershipCreate): Promise<Dealership> {
  return request<Dealership>('dealerships/', { method: 'POST', body });
}

export function updateDealership(id: number, body: DealershipUpdate): Promise<Dealership> {
  return request<Dealership>(`dealerships/${id}`, { method: 'PATCH', body });
}

export function deleteDealership(id: number): Promise<void> {
  return request<void>(`dealerships/${id}`, { method: 'DELETE' });
}

// ---------------------------------------------------------------------------
// Knowledge base — /api/v1/rag/{id}

export const DEFAULT_TOPICS = [
  'books',
  'objection_handling',
  'playbooks',
  'videos',
  'compliance',
  'product_knowledge',
] as const;

export interface RagConfig {
  initialized?: boolean;
  model?: string;
  dimensions?: number;
  chunk_size?: number;
  chunk_overlap?: number;
  namespace?: string;
  topics?: string[];
  vector_db?: string;
  initialized_at?: string;
  [key: string]: unknown;
}

export type KbStatus =
  | { initialized: false; message: string }
  | {
      initialized: true;
      dealership_id: number;
      dealership_name: string;
      config: RagConfig;
      total_documents: number;
      total_chunks: number;
      documents_by_topic: Record<string, number>;
      vector_db: string;
      vector_count: number;
    };

export type DocumentStatus = 'queued' | 'extracting' | 'embedding' | 'ready' | 'failed';

export interface KbDocument {
  id: number;
  filename: string;
  topic: string;
  status: DocumentStatus;
  chunk_count: number;
  bytes: number;
  /** Why ingestion failed. */
  error?: string;
  created_at: string;
  /** 0–1; only GET documents/{doc_id} reports it. */
  progress?: number;
}

export interface UploadedDocument {
  id: number;
  filename: string;
  status: DocumentStatus;
}

export interface UploadAnswer {
  message: string;
  documents: UploadedDocument[];
}

export interface QueryParams {
  query: string;
  /** 1–20 (server default 5). */
  top_k?: number;
  /** Restrict to these topics (sent as the JSON body). */
  topics?: string[];
  /** Relevance floor 0–1. */
  min_score?: number;
}

export interface QueryResult {
  content: string;
  topic: string;
  filename: string;
  score: number;
  document_id?: number;
}

export interface QueryAnswer {
  query: string;
  results: QueryResult[];
  count: number;
}

export function kbStatus(dealershipId: number, signal?: AbortSignal): Promise<KbStatus> {
  return request<KbStatus>(`rag/${dealershipId}/status`, { signal });
}

export function kbInitialize(
  dealershipId: number,
): Promise<{ message: string; rag_config?: RagConfig }> {
  return request(`rag/${dealershipId}/initialize`, { method: 'POST' });
}

export function kbReset(dealershipId: number): Promise<{ message: string }> {
  return request(`rag/${dealershipId}/reset`, { method: 'DELETE' });
}

export function kbDocuments(
  dealershipId: number,
  params: { topic?: string; skip?: number; limit?: number } = {},
  signal?: AbortSignal,
): Promise<KbDocument[]> {
  return request<KbDocument[]>(`rag/${dealershipId}/documents`, { query: { ...params }, signal });
}

export function kbDocument(
  dealershipId: number,
  documentId: number,
  signal?: AbortSignal,
): Promise<KbDocument> {
  return request<KbDocument>(`rag/${dealershipId}/documents/${documentId}`, { signal });
}

export function kbDeleteDocument(dealershipId: number, documentId: number): Promise<void> {
  return request<void>(`rag/${dealershipId}/documents/${documentId}`, { method: 'DELETE' });
}

export function kbQuery(
  dealershipId: number,
  params: QueryParams,
  signal?: AbortSignal,
): Promise<QueryAnswer> {
  return request<QueryAnswer>(`rag/${dealershipId}/query`, {
    method: 'POST',
    query: { query: params.query, top_k: params.top_k, min_score: params.min_score },
    body: params.topics && params.topics.length > 0 ? params.topics : undefined,
    signal,
  });
}

export function kbUploadPath(dealershipId: number, topic: string): string {
  return `rag/${dealershipId}/upload/${encodeURIComponent(topic)}`;
}

// ---------------------------------------------------------------------------
// Reports — /api/v1/report (SA, DA own)

export type ReportStatus = 'open' | 'resolved' | 'dismissed';
export type ReportKind = 'inaccuracy' | 'send_to_team';

export interface Report {
  id: number;
  kind: ReportKind;
  status: ReportStatus;
  user_id: number | null;
  reporter_email: string | null;
  dealership_id: number | null;
  dealership_name: string | null;
  session_id: string | null;
  mode: string | null;
  /** What the reporter sent (user_input, avatar_response, … by kind). */
  fields: Record<string, unknown>;
  resolution_note: string | null;
  resolved_by: number | null;
  created_at: string;
  updated_at: string;
  /** When its mail left for the team; null while it waits, or when none was sent. */
  mailed_at: string | null;
}

export interface ReportFilters {
  status?: ReportStatus;
  kind?: ReportKind;
  dealership_id?: number;
}

export function listReports(
  filters: ReportFilters & Paging = {},
  signal?: AbortSignal,
): Promise<Report[]> {
  return request<Report[]>('report/', { query: { ...filters }, signal });
}

export function updateReport(
  id: number,
  body: { status: ReportStatus; resolution_note?: string },
): Promise<Report> {
  return request<Report>(`report/${id}`, { method: 'PATCH', body });
}
