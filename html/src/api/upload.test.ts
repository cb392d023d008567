import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, setAccessToken, setUnauthorizedHandler } from './client';
import {
  buildMultipart,
  fileProgress,
  quoteFilename,
  sendMultipart,
  setXhrFactory,
} from './upload';
import type { XhrLike } from './upload';

/** A scripted XMLHttpRequest: the test decides when bytes go and what comes back. */
class FakeXhr implements XhrLike {
  static all: FakeXhr[] = [];
  method = '';
  url = '';
  headers: Record<string, string> = {};
  body: Blob | null = null;
  aborted = false;
  status = 0;
  responseText = '';
  responseHeaders: Record<string, string> = {};
  upload: { onprogress: ((ev: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  ontimeout: (() => void) | null = null;

  constructor() {
    FakeXhr.all.push(this);
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: Blob) {
    this.body = body;
  }
  abort() {
    this.aborted = true;
    this.onabort?.();
  }
  getResponseHeader(name: string) {
    return this.responseHeaders[name.toLowerCase()] ?? null;
  }
  // test side
  progress(loaded: number) {
    this.upload.onprogress?.({ loaded, total: this.body?.size ?? 0 } as ProgressEvent);
  }
  respond(status: number, body: unknown, headers: Record<string, string> = {}) {
    this.status = status;
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.responseHeaders = { 'content-type': 'application/json', ...headers };
    this.onload?.();
  }
  fail() {
    this.onerror?.();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function file(name: string, content: string, type = 'text/plain'): File {
  return new File([content], name, { type });
}

beforeEach(() => {
  FakeXhr.all = [];
  setXhrFactory(() => new FakeXhr());
  setAccessToken(null);
  setUnauthorizedHandler(null);
});

afterEach(() => {
  setXhrFactory(null);
});

describe('buildMultipart', () => {
  it('writes one part per file and knows where each file lies', async () => {
    const a = file('a.txt', 'hello');
    const b = file('b é.pdf', '%PDF-1.4 xx', 'application/pdf');
    const m = buildMultipart([a, b], 'files', 'BOUND');
    const text = await m.body.text();
    expect(m.contentType).toBe('multipart/form-data; boundary=BOUND');
    expect(text).toBe(
      '--BOUND\r\n' +
        'Content-Disposition: form-data; name="files"; filename="a.txt"\r\n' +
        'Content-Type: text/plain\r\n\r\n' +
        'hello\r\n' +
        '--BOUND\r\n' +
        'Content-Disposition: form-data; name="files"; filename="b é.pdf"\r\n' +
        'Content-Type: application/pdf\r\n\r\n' +
        '%PDF-1.4 xx\r\n' +
        '--BOUND--\r\n',
    );
    // Ranges are byte offsets (é is two bytes in UTF-8).
    const bytes = new Uint8Array(await m.body.arrayBuffer());
    const dec = new TextDecoder();
    expect(dec.decode(bytes.slice(m.ranges[0].start, m.ranges[0].end))).toBe('hello');
    expect(dec.decode(bytes.slice(m.ranges[1].start, m.ranges[1].end))).toBe('%PDF-1.4 xx');
    expect(m.body.size).toBe(bytes.length);
  });

  it('defaults an unknown type and escapes quotes in names', async () => {
    const m = buildMultipart([file('x"y\\z.docx', 'PK', '')], 'files', 'B');
    const text = await m.body.text();
    expect(text).toContain('filename="x\\"y\\\\z.docx"');
    expect(text).toContain('Content-Type: application/octet-stream\r\n');
  });

  it('quoteFilename keeps a header on one line', () => {
    expect(quoteFilename('a\r\nb.txt')).toBe('"a  b.txt"');
    expect(quoteFilename('plain.pdf')).toBe('"plain.pdf"');
  });

  it('uses a fresh random boundary by default', () => {
    const one = buildMultipart([file('a.txt', 'x')]).contentType;
    const two = buildMultipart([file('a.txt', 'x')]).contentType;
    expect(one).toMatch(/boundary=----AvatarAdamUpload[0-9a-f]{32}$/);
    expect(one).not.toBe(two);
  });
});

describe('fileProgress', () => {
  const ranges = [
    { start: 100, end: 200 },
    { start: 300, end: 700 },
    { start: 800, end: 800 },
  ];

  it('splits the request progress by file', () => {
    expect(fileProgress(0, ranges)).toEqual([0, 0, 0]);
    expect(fileProgress(150, ranges)).toEqual([0.5, 0, 0]);
    expect(fileProgress(250, ranges)).toEqual([1, 0, 0]);
    expect(fileProgress(400, ranges)).toEqual([1, 0.25, 0]);
    expect(fileProgress(800, ranges)).toEqual([1, 1, 1]);
    expect(fileProgress(10_000, ranges)).toEqual([1, 1, 1]);
  });
});

describe('sendMultipart', () => {
  it('posts with the token, reports progress and parses the answer', async () => {
    setAccessToken('tok');
    const m = buildMultipart([file('a.txt', 'hello')], 'files', 'B');
    const seen: Array<[number, number]> = [];
    const p = sendMultipart<{ message: string }>('rag/3/upload/books', m, {
      onProgress: (loaded, total) => seen.push([loaded, total]),
    });
    const xhr = FakeXhr.all[0];
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/v1/rag/3/upload/books');
    expect(xhr.headers.Authorization).toBe('Bearer tok');
    expect(xhr.headers['Content-Type']).toBe('multipart/form-data; boundary=B');
    expect(xhr.body).toBe(m.body);

    xhr.progress(40);
    xhr.progress(m.body.size + 10); // never more than the body
    xhr.respond(201, { message: 'Successfully uploaded 1 document(s)', documents: [] });
    await expect(p).resolves.toEqual({ message: 'Successfully uploaded 1 document(s)', documents: [] });
    expect(seen[0]).toEqual([40, m.body.size]);
    expect(seen[1]).toEqual([m.body.size, m.body.size]);
  });

  it('rejects with the server error.message and its details', async () => {
    const p = sendMultipart('rag/3/upload/nope', buildMultipart([file('a.txt', 'x')]));
    FakeXhr.all[0].respond(422, {
      error: {
        message: "Unknown topic 'nope'",
        type: 'ValidationError',
        details: [{ field: 'path.topic', message: "Unknown topic 'nope'", type: 'value_error' }],
      },
    });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe("Unknown topic 'nope'");
    expect((err as ApiError).status).toBe(422);
    expect((err as ApiError).details).toHaveLength(1);
  });

  it('keeps Retry-After of a 429 and explains a non-JSON 413', async () => {
    const p = sendMultipart('rag/3/upload/books', buildMultipart([file('a.txt', 'x')]));
    FakeXhr.all[0].respond(429, { error: { message: 'Too many requests' } }, { 'retry-after': '30' });
    const err = (await p.catch((e: unknown) => e)) as ApiError;
    expect(err.message).toBe('Too many requests');
    expect(err.retryAfter).toBe(30);

    const q = sendMultipart('rag/3/upload/books', buildMultipart([file('a.txt', 'x')]));
    FakeXhr.all[1].respond(413, '<html>413 Request Entity Too Large</html>', {
      'content-type': 'text/html',
    });
    const err2 = (await q.catch((e: unknown) => e)) as ApiError;
    expect(err2.status).toBe(413);
    expect(err2.message).toBe('That upload is too large.');
  });

  it('turns a network failure into status 0', async () => {
    const p = sendMultipart('rag/3/upload/books', buildMultipart([file('a.txt', 'x')]));
    FakeXhr.all[0].fail();
    const err = (await p.catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/could not reach the server/i);
  });

  it('aborts the request when the signal fires', async () => {
    const ctrl = new AbortController();
    const p = sendMultipart('rag/3/upload/books', buildMultipart([file('a.txt', 'x')]), {
      signal: ctrl.signal,
    });
    ctrl.abort();
    const err = (await p.catch((e: unknown) => e)) as DOMException;
    expect(FakeXhr.all[0].aborted).toBe(true);
    expect(err.name).toBe('AbortError');
    // An already aborted signal sends nothing.
    await expect(
      sendMultipart('x', buildMultipart([file('a.txt', 'x')]), { signal: ctrl.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(FakeXhr.all).toHaveLength(1);
  });

  it('refreshes the token once after a 401 and sends again', async () => {
    setAccessToken('old');
    const handler = vi.fn(async (failed: string) => {
      expect(failed).toBe('old');
      setAccessToken('new');
      return true;
    });
    setUnauthorizedHandler(handler);
    const m = buildMultipart([file('a.txt', 'x')]);
    const p = sendMultipart<{ ok: boolean }>('rag/3/upload/books', m);
    FakeXhr.all[0].respond(401, { error: { message: 'Token expired' } });
    await tick();
    await tick();
    expect(handler).toHaveBeenCalledTimes(1);
    expect(FakeXhr.all).toHaveLength(2);
    expect(FakeXhr.all[1].headers.Authorization).toBe('Bearer new');
    expect(FakeXhr.all[1].body).toBe(m.body);
    FakeXhr.all[1].respond(201, { ok: true });
    await expect(p).resolves.toEqual({ ok: true });
  });

  it('gives the 401 back when the refresh fails, and retries only once', async () => {
    setAccessToken('old');
    setUnauthorizedHandler(async () => false);
    const p = sendMultipart('x', buildMultipart([file('a.txt', 'x')]));
    FakeXhr.all[0].respond(401, { error: { message: 'Session expired' } });
    const err = (await p.catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(401);
    expect(err.message).toBe('Session expired');
    expect(FakeXhr.all).toHaveLength(1);

    setAccessToken('old');
    setUnauthorizedHandler(async () => {
      setAccessToken('new');
      return true;
    });
    const q = sendMultipart('x', buildMultipart([file('a.txt', 'x')]));
    FakeXhr.all[1].respond(401, { error: { message: 'Token expired' } });
    await tick();
    await tick();
    FakeXhr.all[2].respond(401, { error: { message: 'Still not allowed' } });
    const err2 = (await q.catch((e: unknown) => e)) as ApiError;
    expect(err2.message).toBe('Still not allowed');
    expect(FakeXhr.all).toHaveLength(3);
  });
});
