// The knowledge base's document list and the live ingestion status of its
// documents. The list (GET documents) gives every document's status and
// failure reason; GET documents/{id} also gives the progress of one. While
// documents are queued, extracting or embedding, the page polls both; each
// answer is stamped with a sequence number so that whichever is newer wins.

import type { DocumentStatus, KbDocument } from '../api/admin';

export const ACTIVE_STATUSES: readonly DocumentStatus[] = ['queued', 'extracting', 'embedding'];

export function isActive(status: string | undefined): boolean {
  return status !== undefined && (ACTIVE_STATUSES as readonly string[]).includes(status);
}

export function isTerminal(status: string | undefined): boolean {
  return status === 'ready' || status === 'failed';
}

export const STATUS_LABELS: Record<DocumentStatus, string> = {
  queued: 'Queued',
  extracting: 'Extracting text',
  embedding: 'Embedding',
  ready: 'Ready',
  failed: 'Failed',
};

export function statusLabel(status: string): string {
  return (STATUS_LABELS as Record<string, string>)[status] ?? status;
}

interface Stamped {
  doc: KbDocument;
  seq: number;
}

export interface DocsState {
  /** The page shown, as last listed; null before the first answer. */
  list: KbDocument[] | null;
  listSeq: number;
  /** Single documents as last fetched (watched ones). */
  details: Record<number, Stamped>;
  /** Documents known to be gone (deleted, or 404 when fetched). */
  gone: number[];
  seq: number;
}

export const initialDocsState: DocsState = { list: null, listSeq: 0, details: {}, gone: [], seq: 0 };

export type DocsAction =
  | { type: 'list'; docs: KbDocument[] }
  | { type: 'details'; docs: KbDocument[]; missing?: number[] }
  | { type: 'removed'; id: number }
  | { type: 'reset' };

export function docsReducer(state: DocsState, action: DocsAction): DocsState {
  const seq = state.seq + 1;
  switch (action.type) {
    case 'list': {
      const present = new Set(action.docs.map((d) => d.id));
      return {
        ...state,
        seq,
        list: action.docs,
        listSeq: seq,
        gone: state.gone.filter((id) => !present.has(id)),
      };
    }
    case 'details': {
      const details = { ...state.details };
      for (const doc of action.docs) details[doc.id] = { doc, seq };
      const missing = action.missing ?? [];
      for (const id of missing) delete details[id];
      return {
        ...state,
        seq,
        details,
        gone: missing.length ? [...new Set([...state.gone, ...missing])] : state.gone,
      };
    }
    case 'removed': {
      const details = { ...state.details };
      delete details[action.id];
      return {
        ...state,
        seq,
        details,
        list: state.list ? state.list.filter((d) => d.id !== action.id) : null,
        gone: state.gone.includes(action.id) ? state.gone : [...state.gone, action.id],
      };
    }
    case 'reset':
      return { ...initialDocsState, seq };
  }
}

/**
 * Combine a listed document with a fetched one: the newer answer's status
 * and failure reason; the progress only a fetched document has, kept while
 * the status it was measured in still holds.
 */
function merge(listed: KbDocument, listSeq: number, fetched: Stamped | undefined): KbDocument {
  if (!fetched) return listed;
  if (fetched.seq > listSeq) return { ...listed, ...fetched.doc };
  if (fetched.doc.status === listed.status && fetched.doc.progress !== undefined) {
    return { ...listed, progress: fetched.doc.progress };
  }
  return listed;
}

/** The page's rows, each with the newest status known. */
export function visibleDocs(state: DocsState): KbDocument[] {
  if (!state.list) return [];
  return state.list
    .filter((d) => !state.gone.includes(d.id))
    .map((d) => merge(d, state.listSeq, state.details[d.id]));
}

/** The newest known version of one document (listed or fetched), or undefined. */
export function findDoc(state: DocsState, id: number): KbDocument | undefined {
  if (state.gone.includes(id)) return undefined;
  const listed = state.list?.find((d) => d.id === id);
  const fetched = state.details[id];
  if (listed) return merge(listed, state.listSeq, fetched);
  return fetched?.doc;
}

/**
 * The documents to fetch one by one on the next poll: those of `listed`
 * still being ingested, and those of `extra` (just uploaded) whose newest
 * known status is not final. At most `max`, the listed ones first.
 */
export function idsToWatch(
  listed: readonly KbDocument[],
  state: DocsState,
  extra: readonly number[],
  max = 20,
): number[] {
  const ids: number[] = [];
  const seen = new Set<number>();
  const add = (id: number) => {
    if (!seen.has(id) && !state.gone.includes(id)) {
      seen.add(id);
      ids.push(id);
    }
  };
  for (const d of listed) if (isActive(d.status)) add(d.id);
  const listedById = new Map(listed.map((d) => [d.id, d]));
  for (const id of extra) {
    const known = listedById.get(id) ?? findDoc(state, id);
    if (!known || isActive(known.status)) add(id);
  }
  return ids.slice(0, max);
}

/** True while any of these documents is still being ingested. */
export function anyActive(docs: readonly { status: string }[]): boolean {
  return docs.some((d) => isActive(d.status));
}
