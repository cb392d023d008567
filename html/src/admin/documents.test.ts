import { describe, expect, it } from 'vitest';
import type { KbDocument } from '../api/admin';
import {
  anyActive,
  docsReducer,
  findDoc,
  idsToWatch,
  initialDocsState,
  isActive,
  visibleDocs,
} from './documents';

function doc(id: number, status: KbDocument['status'], extra: Partial<KbDocument> = {}): KbDocument {
  return {
    id,
    filename: `doc${id}.pdf`,
    topic: 'books',
    status,
    chunk_count: 0,
    bytes: 100,
    created_at: '2025-01-01T00:00:00Z',
    ...extra,
  };
}

describe('status helpers', () => {
  it('knows which statuses are still moving', () => {
    expect(['queued', 'extracting', 'embedding'].every(isActive)).toBe(true);
    expect(isActive('ready')).toBe(false);
    expect(isActive('failed')).toBe(false);
    expect(isActive(undefined)).toBe(false);
    expect(anyActive([{ status: 'ready' }, { status: 'queued' }])).toBe(true);
    expect(anyActive([{ status: 'ready' }, { status: 'failed' }])).toBe(false);
  });
});

describe('docsReducer', () => {
  it('shows nothing before the first list', () => {
    expect(visibleDocs(initialDocsState)).toEqual([]);
  });

  it('overlays a newer fetched document on the list', () => {
    let s = docsReducer(initialDocsState, { type: 'list', docs: [doc(1, 'queued'), doc(2, 'ready')] });
    s = docsReducer(s, { type: 'details', docs: [doc(1, 'embedding', { progress: 0.5 })] });
    expect(visibleDocs(s).map((d) => [d.id, d.status, d.progress])).toEqual([
      [1, 'embedding', 0.5],
      [2, 'ready', undefined],
    ]);
  });

  it('lets a newer list win over an older fetch, keeping progress of the same status', () => {
    let s = docsReducer(initialDocsState, { type: 'list', docs: [doc(1, 'queued')] });
    s = docsReducer(s, { type: 'details', docs: [doc(1, 'embedding', { progress: 0.3 })] });
    s = docsReducer(s, { type: 'list', docs: [doc(1, 'embedding')] });
    expect(visibleDocs(s)[0]).toMatchObject({ status: 'embedding', progress: 0.3 });
    s = docsReducer(s, {
      type: 'list',
      docs: [doc(1, 'failed', { error: 'PDF has no text layer' })],
    });
    expect(visibleDocs(s)[0]).toMatchObject({ status: 'failed', error: 'PDF has no text layer' });
    expect(visibleDocs(s)[0].progress).toBeUndefined();
  });

  it('drops removed and missing documents', () => {
    let s = docsReducer(initialDocsState, { type: 'list', docs: [doc(1, 'ready'), doc(2, 'queued')] });
    s = docsReducer(s, { type: 'removed', id: 1 });
    expect(visibleDocs(s).map((d) => d.id)).toEqual([2]);
    s = docsReducer(s, { type: 'details', docs: [], missing: [2] });
    expect(visibleDocs(s)).toEqual([]);
    expect(findDoc(s, 2)).toBeUndefined();
    // A document listed again (same id) is back.
    s = docsReducer(s, { type: 'list', docs: [doc(2, 'ready')] });
    expect(visibleDocs(s).map((d) => d.id)).toEqual([2]);
  });

  it('finds documents outside the page through their fetch', () => {
    let s = docsReducer(initialDocsState, { type: 'list', docs: [] });
    s = docsReducer(s, { type: 'details', docs: [doc(9, 'extracting', { progress: 0.1 })] });
    expect(findDoc(s, 9)).toMatchObject({ status: 'extracting', progress: 0.1 });
    expect(findDoc(s, 10)).toBeUndefined();
  });

  it('resets', () => {
    const s = docsReducer(initialDocsState, { type: 'list', docs: [doc(1, 'ready')] });
    expect(visibleDocs(docsReducer(s, { type: 'reset' }))).toEqual([]);
  });
});

describe('idsToWatch', () => {
  it('watches listed documents in progress and unfinished uploads', () => {
    let s = docsReducer(initialDocsState, { type: 'details', docs: [doc(7, 'ready'), doc(8, 'embedding')] });
    s = docsReducer(s, { type: 'list', docs: [] });
    const listed = [doc(1, 'queued'), doc(2, 'ready'), doc(3, 'embedding'), doc(4, 'failed')];
    // 5: unknown yet; 7: ready already; 8: still embedding; 1: listed and active (once)
    expect(idsToWatch(listed, s, [5, 7, 8, 1])).toEqual([1, 3, 5, 8]);
  });

  it('prefers what the list says over an older fetch', () => {
    const s = docsReducer(initialDocsState, { type: 'details', docs: [doc(5, 'queued')] });
    expect(idsToWatch([doc(5, 'ready')], s, [5])).toEqual([]);
  });

  it('skips gone documents and caps the count', () => {
    let s = docsReducer(initialDocsState, { type: 'list', docs: [] });
    s = docsReducer(s, { type: 'removed', id: 3 });
    const listed = [1, 2, 3, 4, 5].map((i) => doc(i, 'queued'));
    expect(idsToWatch(listed, s, [], 3)).toEqual([1, 2, 4]);
  });
});
