// The upload queue of the knowledge-base page: which files wait, which are
// being sent (and how far), which the server accepted (with their document
// id, whose ingestion is then followed by the document poller) and which
// failed and why. Pure state; the page drives it with useReducer.

import type { DocumentStatus, UploadedDocument } from '../api/admin';

/** The server's defaults (rag.max_file_size, rag.max_upload_size) and its cap on files. */
export interface UploadLimits {
  maxFileBytes: number;
  maxRequestBytes: number;
  maxFilesPerRequest: number;
}

export const DEFAULT_LIMITS: UploadLimits = {
  maxFileBytes: 10 * 1024 * 1024,
  maxRequestBytes: 50 * 1024 * 1024,
  maxFilesPerRequest: 20,
};

export const ACCEPTED_EXTENSIONS = ['.txt', '.pdf', '.docx'] as const;

/** For the file input's `accept`. */
export const ACCEPT_ATTRIBUTE = [
  ...ACCEPTED_EXTENSIONS,
  'text/plain',
  'application/pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
].join(',');

/** Room left in each request for the multipart headers around the files. */
const MULTIPART_MARGIN = 64 * 1024;

export type UploadState =
  | 'invalid' // refused here, never sent
  | 'waiting' // queued, not sent yet
  | 'uploading' // bytes on their way; see progress
  | 'processing' // all bytes sent, waiting for the server's answer
  | 'accepted' // stored by the server; docId set
  | 'failed' // the request failed; see message
  | 'cancelled';

export interface UploadRow {
  key: string;
  file: File;
  topic: string;
  state: UploadState;
  /** Fraction of the file's bytes sent, 0–1. */
  progress: number;
  message?: string;
  docId?: number;
  /** The document's status in the upload's answer. */
  docStatus?: DocumentStatus;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** Why the server would refuse this file by its name or size, or null. */
export function checkFile(
  file: { name: string; size: number },
  limits: UploadLimits = DEFAULT_LIMITS,
): string | null {
  const name = file.name;
  const lower = name.toLowerCase();
  if (
    name === '' ||
    new TextEncoder().encode(name).length > 255 ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('..') ||
    name.startsWith('.') ||
    /[\u0000-\u001f\u007f]/.test(name)
  ) {
    return 'Invalid file name: use a plain name such as "guide.pdf", without a path';
  }
  if (!ACCEPTED_EXTENSIONS.some((ext) => lower.endsWith(ext))) {
    return 'Only .txt, .pdf and .docx files are accepted';
  }
  if (file.size === 0) return 'The file is empty';
  if (file.size > limits.maxFileBytes) {
    return `The file is larger than ${Math.round(limits.maxFileBytes / (1024 * 1024))} MB`;
  }
  return null;
}

/**
 * Group the waiting rows into requests: in order, at most
 * maxFilesPerRequest files and maxRequestBytes (less a margin for the
 * multipart headers) per request.
 */
export function planBatches(rows: readonly UploadRow[], limits: UploadLimits = DEFAULT_LIMITS): string[][] {
  const budget = Math.max(1, limits.maxRequestBytes - MULTIPART_MARGIN);
  const batches: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  let topic: string | null = null;
  for (const row of rows) {
    if (row.state !== 'waiting') continue;
    const size = row.file.size;
    if (
      current.length > 0 &&
      (current.length >= limits.maxFilesPerRequest || bytes + size > budget || row.topic !== topic)
    ) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row.key);
    bytes += size;
    topic = row.topic;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The name a server message like `File "x.pdf" is empty` is about, among `names`. */
export function fileNamedIn(message: string, names: readonly string[]): string | null {
  for (const name of names) {
    if (message.startsWith(`File "${name}"`)) return name;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Reducer

export type UploadAction =
  | { type: 'add'; files: File[]; topic: string; limits?: UploadLimits; makeKey?: () => string }
  | { type: 'start'; keys: string[] }
  | { type: 'progress'; keys: string[]; fractions: number[] }
  | { type: 'sent'; keys: string[] }
  | { type: 'accepted'; keys: string[]; documents: UploadedDocument[] }
  | { type: 'failed'; keys: string[]; message: string }
  | { type: 'cancelled'; keys: string[] }
  | { type: 'retry'; keys: string[] }
  | { type: 'remove'; key: string }
  | { type: 'clearFinished' };

let keySeq = 0;
const nextKey = () => `u${++keySeq}`;

export function uploadsReducer(rows: UploadRow[], action: UploadAction): UploadRow[] {
  switch (action.type) {
    case 'add': {
      const makeKey = action.makeKey ?? nextKey;
      const added = action.files.map<UploadRow>((file) => {
        const why = checkFile(file, action.limits);
        return {
          key: makeKey(),
          file,
          topic: action.topic,
          state: why ? 'invalid' : 'waiting',
          progress: 0,
          message: why ?? undefined,
        };
      });
      return [...rows, ...added];
    }
    case 'start':
      return update(rows, action.keys, () => ({ state: 'uploading', progress: 0, message: undefined }));
    case 'progress': {
      const index = new Map(action.keys.map((k, i) => [k, i]));
      return rows.map((row) => {
        const i = index.get(row.key);
        if (i === undefined || row.state !== 'uploading') return row;
        const progress = action.fractions[i] ?? row.progress;
        return progress === row.progress ? row : { ...row, progress };
      });
    }
    case 'sent':
      return update(rows, action.keys, (row) =>
        row.state === 'uploading' ? { state: 'processing', progress: 1 } : {},
      );
    case 'accepted': {
      // The answer lists the files in the order they were sent.
      const batch = action.keys
        .map((k) => rows.find((r) => r.key === k))
        .filter((r): r is UploadRow => r !== undefined);
      const docs = new Map<string, UploadedDocument>();
      const unclaimed = [...action.documents];
      batch.forEach((row, i) => {
        let doc = action.documents[i];
        if (!doc || doc.filename !== row.file.name) {
          doc = unclaimed.find((d) => d.filename === row.file.name) ?? doc;
        }
        if (doc) {
          docs.set(row.key, doc);
          unclaimed.splice(unclaimed.indexOf(doc), 1);
        }
      });
      return update(rows, action.keys, (row) => {
        const doc = docs.get(row.key);
        return doc
          ? { state: 'accepted', progress: 1, docId: doc.id, docStatus: doc.status, message: undefined }
          : { state: 'accepted', progress: 1, message: undefined };
      });
    }
    case 'failed': {
      const batch = rows.filter((r) => action.keys.includes(r.key));
      const culprit = fileNamedIn(
        action.message,
        batch.map((r) => r.file.name),
      );
      return update(rows, action.keys, (row) => ({
        state: 'failed',
        message:
          culprit === null || culprit === row.file.name
            ? action.message
            : `Not uploaded: "${culprit}" in the same upload was refused. Upload it again without that file.`,
      }));
    }
    case 'cancelled':
      return update(rows, action.keys, (row) =>
        row.state === 'accepted' || row.state === 'invalid'
          ? {}
          : { state: 'cancelled', progress: 0, message: 'Cancelled' },
      );
    case 'retry':
      return update(rows, action.keys, (row) =>
        row.state === 'failed' || row.state === 'cancelled'
          ? { state: 'waiting', progress: 0, message: undefined }
          : {},
      );
    case 'remove':
      return rows.filter((r) => r.key !== action.key);
    case 'clearFinished':
      return rows.filter((r) => r.state === 'waiting' || r.state === 'uploading' || r.state === 'processing');
  }
}

function update(
  rows: UploadRow[],
  keys: readonly string[],
  change: (row: UploadRow) => Partial<UploadRow>,
): UploadRow[] {
  const set = new Set(keys);
  return rows.map((row) => {
    if (!set.has(row.key)) return row;
    const patch = change(row);
    return Object.keys(patch).length === 0 ? row : { ...row, ...patch };
  });
}

/** True while a request is in flight or files wait for one. */
export function isBusy(rows: readonly UploadRow[]): boolean {
  return rows.some((r) => r.state === 'uploading' || r.state === 'processing');
}

// ---------------------------------------------------------------------------
// What a row shows

/** The parts of a document the upload rows show (a KbDocument fits). */
export interface DocProgress {
  status: DocumentStatus;
  progress?: number;
  error?: string;
  chunk_count?: number;
}

export interface RowView {
  /** Machine-readable: the upload state, or the document's status once accepted. */
  status: UploadState | DocumentStatus | 'removed';
  label: string;
  /** 0–1, or null when the work is not measurable (yet). */
  progress: number | null;
  phase: 'upload' | 'ingest' | 'none';
  tone: 'brand' | 'success' | 'danger';
  /** The failure reason, when there is one. */
  reason?: string;
}

/**
 * What to show for a row. Once the server accepted a file, its document's
 * live status (`doc`, from the poller) takes over; before the first poll the
 * status of the upload's answer is used.
 */
export function rowView(row: UploadRow, doc: DocProgress | undefined, gone = false): RowView {
  const pct = (f: number) => `${Math.round(f * 100)}%`;
  switch (row.state) {
    case 'invalid':
      return { status: 'invalid', label: 'Not uploaded', progress: null, phase: 'none', tone: 'danger', reason: row.message };
    case 'waiting':
      return { status: 'waiting', label: 'Waiting', progress: 0, phase: 'upload', tone: 'brand' };
    case 'uploading':
      return { status: 'uploading', label: `Uploading ${pct(row.progress)}`, progress: row.progress, phase: 'upload', tone: 'brand' };
    case 'processing':
      return { status: 'processing', label: 'Checking on the server…', progress: 1, phase: 'upload', tone: 'brand' };
    case 'failed':
      return { status: 'failed', label: 'Upload failed', progress: null, phase: 'none', tone: 'danger', reason: row.message };
    case 'cancelled':
      return { status: 'cancelled', label: 'Cancelled', progress: null, phase: 'none', tone: 'danger' };
    case 'accepted': {
      if (gone) return { status: 'removed', label: 'Removed', progress: null, phase: 'none', tone: 'brand' };
      const status = doc?.status ?? row.docStatus ?? 'queued';
      switch (status) {
        case 'ready':
          return {
            status,
            label:
              doc?.chunk_count !== undefined
                ? `Ready · ${doc.chunk_count} chunk${doc.chunk_count === 1 ? '' : 's'}`
                : 'Ready',
            progress: 1,
            phase: 'ingest',
            tone: 'success',
          };
        case 'failed':
          return {
            status,
            label: 'Ingestion failed',
            progress: null,
            phase: 'none',
            tone: 'danger',
            reason: doc?.error ?? 'The document could not be processed.',
          };
        case 'queued':
          return { status, label: 'Queued for processing', progress: doc?.progress ?? null, phase: 'ingest', tone: 'brand' };
        case 'extracting':
        case 'embedding': {
          const p = doc?.progress;
          const name = status === 'extracting' ? 'Extracting text' : 'Embedding';
          return {
            status,
            label: p !== undefined ? `${name} ${pct(p)}` : name,
            progress: p ?? null,
            phase: 'ingest',
            tone: 'brand',
          };
        }
      }
    }
  }
}

/** One sentence for the live region: no percentages, so it changes only on real news. */
export function uploadSummary(views: readonly RowView[]): string {
  if (views.length === 0) return '';
  const count = (pred: (v: RowView) => boolean) => views.filter(pred).length;
  const files = (n: number) => `${n} file${n === 1 ? '' : 's'}`;
  const parts: string[] = [];
  const uploading = count((v) => v.status === 'uploading' || v.status === 'processing');
  const waiting = count((v) => v.status === 'waiting');
  const ingesting = count((v) => v.status === 'queued' || v.status === 'extracting' || v.status === 'embedding');
  const ready = count((v) => v.status === 'ready');
  const failed = count((v) => v.tone === 'danger');
  if (uploading) parts.push(`Uploading ${files(uploading)}.`);
  if (waiting) parts.push(`${files(waiting)} waiting.`);
  if (ingesting) parts.push(`${files(ingesting)} being processed.`);
  if (ready) parts.push(`${files(ready)} ready.`);
  if (failed) parts.push(`${files(failed)} not added.`);
  return parts.join(' ');
}
