import { describe, expect, it } from 'vitest';
import {
  checkFile,
  DEFAULT_LIMITS,
  fileNamedIn,
  formatBytes,
  isBusy,
  planBatches,
  rowView,
  uploadSummary,
  uploadsReducer,
} from './uploads';
import type { UploadRow } from './uploads';

function file(name: string, size: number): File {
  return new File([new Uint8Array(size)], name);
}

function keys() {
  let n = 0;
  return () => `k${++n}`;
}

function add(rows: UploadRow[], files: File[], topic = 'books', makeKey = keys()) {
  return uploadsReducer(rows, { type: 'add', files, topic, makeKey });
}

describe('checkFile', () => {
  it('accepts the three document types, in any case', () => {
    expect(checkFile({ name: 'guide.pdf', size: 10 })).toBeNull();
    expect(checkFile({ name: 'Notes.TXT', size: 10 })).toBeNull();
    expect(checkFile({ name: 'menu é.docx', size: 10 })).toBeNull();
  });

  it('refuses what the server would refuse', () => {
    expect(checkFile({ name: 'slides.pptx', size: 10 })).toMatch(/only \.txt, \.pdf and \.docx/i);
    expect(checkFile({ name: 'empty.txt', size: 0 })).toMatch(/empty/);
    expect(checkFile({ name: 'big.pdf', size: DEFAULT_LIMITS.maxFileBytes + 1 })).toMatch(/larger than 10 MB/);
    expect(checkFile({ name: 'max.pdf', size: DEFAULT_LIMITS.maxFileBytes })).toBeNull();
    expect(checkFile({ name: '.hidden.txt', size: 1 })).toMatch(/invalid file name/i);
    expect(checkFile({ name: 'a..b.txt', size: 1 })).toMatch(/invalid file name/i);
    expect(checkFile({ name: 'a\\b.txt', size: 1 })).toMatch(/invalid file name/i);
    expect(checkFile({ name: 'tab\there.txt', size: 1 })).toMatch(/invalid file name/i);
    expect(checkFile({ name: `${'é'.repeat(127)}.txt`, size: 1 })).toMatch(/invalid file name/i);
  });
});

describe('planBatches', () => {
  const limits = { maxFileBytes: 100, maxRequestBytes: 64 * 1024 + 250, maxFilesPerRequest: 3 };

  it('groups waiting files by count, size and topic, in order', () => {
    const mk = keys();
    let rows = add([], [file('a.txt', 100), file('b.txt', 100)], 'books', mk);
    rows = add(rows, [file('c.txt', 60), file('d.txt', 10), file('e.txt', 10), file('f.txt', 10)], 'books', mk);
    rows = add(rows, [file('g.txt', 10)], 'compliance', mk);
    rows = add(rows, [file('bad.exe', 10)], 'compliance', mk);
    expect(planBatches(rows, limits)).toEqual([['k1', 'k2'], ['k3', 'k4', 'k5'], ['k6'], ['k7']]);
  });

  it('skips rows that are not waiting', () => {
    let rows = add([], [file('a.txt', 5), file('b.txt', 5)]);
    rows = uploadsReducer(rows, { type: 'start', keys: ['k1'] });
    expect(planBatches(rows)).toEqual([['k2']]);
  });
});

describe('uploadsReducer', () => {
  it('adds rows, refusing bad files at once', () => {
    const rows = add([], [file('a.txt', 5), file('b.png', 5)]);
    expect(rows.map((r) => [r.key, r.state, r.topic])).toEqual([
      ['k1', 'waiting', 'books'],
      ['k2', 'invalid', 'books'],
    ]);
    expect(rows[1].message).toMatch(/only/i);
  });

  it('follows a batch from upload to acceptance', () => {
    let rows = add([], [file('a.txt', 5), file('b.txt', 5), file('c.txt', 5)]);
    rows = uploadsReducer(rows, { type: 'start', keys: ['k1', 'k2'] });
    expect(isBusy(rows)).toBe(true);
    rows = uploadsReducer(rows, { type: 'progress', keys: ['k1', 'k2'], fractions: [1, 0.4] });
    expect(rows.map((r) => r.progress)).toEqual([1, 0.4, 0]);
    rows = uploadsReducer(rows, { type: 'sent', keys: ['k1', 'k2'] });
    expect(rows.map((r) => r.state)).toEqual(['processing', 'processing', 'waiting']);
    rows = uploadsReducer(rows, {
      type: 'accepted',
      keys: ['k1', 'k2'],
      documents: [
        { id: 11, filename: 'a.txt', status: 'ready' },
        { id: 12, filename: 'b.txt', status: 'queued' },
      ],
    });
    expect(rows.map((r) => [r.state, r.docId, r.docStatus])).toEqual([
      ['accepted', 11, 'ready'],
      ['accepted', 12, 'queued'],
      ['waiting', undefined, undefined],
    ]);
    expect(isBusy(rows)).toBe(false);
  });

  it('matches documents by name when the order differs', () => {
    let rows = add([], [file('a.txt', 5), file('b.txt', 5)]);
    rows = uploadsReducer(rows, { type: 'start', keys: ['k1', 'k2'] });
    rows = uploadsReducer(rows, {
      type: 'accepted',
      keys: ['k1', 'k2'],
      documents: [
        { id: 2, filename: 'b.txt', status: 'queued' },
        { id: 1, filename: 'a.txt', status: 'queued' },
      ],
    });
    expect(rows.map((r) => r.docId)).toEqual([1, 2]);
  });

  it('blames the file a failure names and explains it to the others', () => {
    let rows = add([], [file('a.txt', 5), file('b.pdf', 5)]);
    rows = uploadsReducer(rows, { type: 'start', keys: ['k1', 'k2'] });
    rows = uploadsReducer(rows, {
      type: 'failed',
      keys: ['k1', 'k2'],
      message: 'File "b.pdf" is not a valid PDF file (its content is plain text)',
    });
    expect(rows[1].message).toBe('File "b.pdf" is not a valid PDF file (its content is plain text)');
    expect(rows[0].state).toBe('failed');
    expect(rows[0].message).toMatch(/"b\.pdf" in the same upload was refused/);
  });

  it('gives a general failure to every file of the batch', () => {
    let rows = add([], [file('a.txt', 5), file('b.txt', 5)]);
    rows = uploadsReducer(rows, { type: 'start', keys: ['k1', 'k2'] });
    rows = uploadsReducer(rows, { type: 'failed', keys: ['k1', 'k2'], message: 'Too many requests' });
    expect(rows.map((r) => r.message)).toEqual(['Too many requests', 'Too many requests']);
  });

  it('cancels, retries, removes and clears', () => {
    let rows = add([], [file('a.txt', 5), file('b.txt', 5), file('c.doc', 5)]);
    rows = uploadsReducer(rows, { type: 'start', keys: ['k1'] });
    rows = uploadsReducer(rows, { type: 'cancelled', keys: ['k1', 'k3'] });
    expect(rows.map((r) => r.state)).toEqual(['cancelled', 'waiting', 'invalid']);
    rows = uploadsReducer(rows, { type: 'retry', keys: ['k1', 'k3'] });
    expect(rows.map((r) => r.state)).toEqual(['waiting', 'waiting', 'invalid']);
    rows = uploadsReducer(rows, { type: 'remove', key: 'k2' });
    expect(rows.map((r) => r.key)).toEqual(['k1', 'k3']);
    rows = uploadsReducer(rows, { type: 'clearFinished' });
    expect(rows.map((r) => r.key)).toEqual(['k1']);
  });

  it('ignores progress for rows not uploading', () => {
    const rows = add([], [file('a.txt', 5)]);
    const same = uploadsReducer(rows, { type: 'progress', keys: ['k1'], fractions: [0.5] });
    expect(same[0].progress).toBe(0);
  });
});

describe('helpers', () => {
  it('finds the file a message names', () => {
    expect(fileNamedIn('File "x.pdf" is empty', ['a.pdf', 'x.pdf'])).toBe('x.pdf');
    expect(fileNamedIn('Upload is larger than 50 MB', ['x.pdf'])).toBeNull();
  });

  it('formats sizes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(200 * 1024)).toBe('200 KB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MB');
  });
});

describe('rowView and uploadSummary', () => {
  function row(state: UploadRow['state'], extra: Partial<UploadRow> = {}): UploadRow {
    return { key: 'k', file: file('a.txt', 3), topic: 'books', state, progress: 0, ...extra };
  }

  it('shows the upload, then the document status', () => {
    expect(rowView(row('uploading', { progress: 0.42 }), undefined)).toMatchObject({
      status: 'uploading',
      label: 'Uploading 42%',
      progress: 0.42,
      phase: 'upload',
    });
    expect(rowView(row('processing'), undefined)).toMatchObject({ status: 'processing', progress: 1 });
    const accepted = row('accepted', { docId: 5, docStatus: 'queued' });
    expect(rowView(accepted, undefined)).toMatchObject({ status: 'queued', progress: null, phase: 'ingest' });
    expect(rowView(accepted, { status: 'embedding', progress: 0.5 })).toMatchObject({
      status: 'embedding',
      label: 'Embedding 50%',
      progress: 0.5,
    });
    expect(rowView(accepted, { status: 'extracting' })).toMatchObject({ label: 'Extracting text', progress: null });
    expect(rowView(accepted, { status: 'ready', chunk_count: 12 })).toMatchObject({
      status: 'ready',
      label: 'Ready · 12 chunks',
      tone: 'success',
    });
    expect(rowView(accepted, { status: 'ready', chunk_count: 1 }).label).toBe('Ready · 1 chunk');
    expect(rowView(accepted, { status: 'failed', error: 'No text found' })).toMatchObject({
      status: 'failed',
      reason: 'No text found',
      tone: 'danger',
    });
    expect(rowView(accepted, undefined, true)).toMatchObject({ status: 'removed' });
  });

  it('carries the reason of local and request failures', () => {
    expect(rowView(row('invalid', { message: 'The file is empty' }), undefined)).toMatchObject({
      status: 'invalid',
      reason: 'The file is empty',
    });
    expect(rowView(row('failed', { message: 'Too many requests' }), undefined).reason).toBe('Too many requests');
  });

  it('summarises without percentages', () => {
    const views = [
      rowView(row('uploading', { progress: 0.3 }), undefined),
      rowView(row('waiting'), undefined),
      rowView(row('accepted', { docStatus: 'queued' }), undefined),
      rowView(row('accepted'), { status: 'ready' }),
      rowView(row('accepted'), { status: 'ready' }),
      rowView(row('invalid', { message: 'x' }), undefined),
    ];
    expect(uploadSummary(views)).toBe(
      'Uploading 1 file. 1 file waiting. 1 file being processed. 2 files ready. 1 file not added.',
    );
    expect(uploadSummary([])).toBe('');
  });
});
