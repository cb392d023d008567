import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, setAccessToken, setFetch, setUnauthorizedHandler } from './client';
import { SseParser, readSse, streamChat } from './sse';
import type { SseEvent } from './sse';

const enc = new TextEncoder();

/** Parse `text` fed in the given pieces. */
function parseIn(pieces: string[]): SseEvent[] {
  const p = new SseParser();
  const out: SseEvent[] = [];
  for (const piece of pieces) out.push(...p.push(piece));
  out.push(...p.end());
  return out;
}

/** Every way of cutting `text` in two, plus one character at a time. */
function splits(text: string): string[][] {
  const all: string[][] = [[text], [...text]];
  for (let i = 1; i < text.length; i++) all.push([text.slice(0, i), text.slice(i)]);
  return all;
}

/** A body stream that yields `bytes` cut at the given offsets. */
function byteStream(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const bounds = [0, ...cuts, bytes.length];
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= bounds.length - 1) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(bounds[i], bounds[i + 1]));
      i++;
    },
  });
}

const STREAM = [
  ': keep-alive comment\n',
  '\n',
  'event: token\n',
  'data: {"text":"Hel"}\n',
  '\n',
  'event: token\n',
  'data: {"text":"lo, wörld ✓"}\n',
  '\n',
  'event: sources\n',
  'data: [{"topic":"books","filename":"menu.pdf",\n',
  'data: "relevance":"0.87"}]\n',
  '\n',
  'event: done\n',
  'data: {"session_id":"s-1","usage":{"prompt_tokens":5,"completion_tokens":2},"cache":"miss","provider":"offline"}\n',
  '\n',
].join('');

const EXPECTED: SseEvent[] = [
  { event: 'token', data: '{"text":"Hel"}' },
  { event: 'token', data: '{"text":"lo, wörld ✓"}' },
  {
    event: 'sources',
    data: '[{"topic":"books","filename":"menu.pdf",\n"relevance":"0.87"}]',
  },
  {
    event: 'done',
    data: '{"session_id":"s-1","usage":{"prompt_tokens":5,"completion_tokens":2},"cache":"miss","provider":"offline"}',
  },
];

describe('SseParser', () => {
  for (const [name, eol] of [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    it(`parses ${name} line ends at every chunk boundary`, () => {
      const text = STREAM.replace(/\n/g, eol);
      for (const pieces of splits(text)) {
        expect(parseIn(pieces)).toEqual(EXPECTED);
      }
    });
  }

  it('handles mixed line ends, a BOM, comments and field edge cases', () => {
    const text =
      '\uFEFFevent:token\r\ndata:{"a":1}\n\r\n' + // no space after colon; CRLF, LF
      ':comment\rdata\r\r' + // field without colon = empty data, type "message"
      'data:  two spaces\nid: 42\nretry: 100\nunknown: x\n\n' +
      'event: ignored-without-data\n\n' +
      'data: line1\ndata:\ndata: line3\n\n';
    const expected: SseEvent[] = [
      { event: 'token', data: '{"a":1}' },
      { event: 'message', data: '' },
      { event: 'message', data: ' two spaces', id: '42' },
      { event: 'message', data: 'line1\n\nline3', id: '42' },
    ];
    for (const pieces of splits(text)) {
      expect(parseIn(pieces)).toEqual(expected);
    }
  });

  it('discards an event left unterminated at the end', () => {
    expect(parseIn(['data: complete\n\n', 'event: token\ndata: partial\n'])).toEqual([
      { event: 'message', data: 'complete' },
    ]);
  });

  it('does not treat CR then LF in the next chunk as two line ends', () => {
    // Were "\r" + "\n" two line ends, the blank line would dispatch early.
    expect(parseIn(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual([
      { event: 'message', data: 'a\nb' },
    ]);
  });
});

describe('readSse', () => {
  it('keeps multi-byte UTF-8 characters split between chunks', async () => {
    const bytes = enc.encode(STREAM);
    for (let cut = 1; cut < bytes.length; cut++) {
      const got: SseEvent[] = [];
      await readSse(byteStream(bytes, [cut]), (ev) => {
        got.push(ev);
      });
      expect(got).toEqual(EXPECTED);
    }
    const got: SseEvent[] = [];
    const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    await readSse(byteStream(bytes, everyByte), (ev) => {
      got.push(ev);
    });
    expect(got).toEqual(EXPECTED);
  });
});

// ---------------------------------------------------------------------------

type Call = { url: string; init: RequestInit };

function sseResponse(text: string, cuts: number[] = [], status = 200): Response {
  const bytes = enc.encode(text);
  return new Response(byteStream(bytes, cuts), {
    status,
    headers: { 'Content-Type': 'text/event-stream' },
  });
}

function jsonResponse(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
  });
}

function mockFetch(...responses: Array<Response | (() => Response)>): Call[] {
  const calls: Call[] = [];
  setFetch(
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      calls.push({ url: String(input), init: init ?? {} });
      const next = responses.shift();
      if (!next) throw new Error('unexpected fetch');
      return typeof next === 'function' ? next() : next;
    }) as typeof fetch,
  );
  return calls;
}

beforeEach(() => {
  setAccessToken('tok');
  setUnauthorizedHandler(null);
});

afterEach(() => {
  setFetch(null);
  setAccessToken(null);
  setUnauthorizedHandler(null);
});

describe('streamChat', () => {
  it('streams tokens, sources and done at every chunk boundary', async () => {
    const bytes = enc.encode(STREAM);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const calls = mockFetch(sseResponse(STREAM, [cut, Math.min(cut + 7, bytes.length - 1)]));
      const seen: string[] = [];
      const result = await streamChat(
        { message: 'hi', mode: 'training', dealership_id: 3 },
        {
          onToken: (t) => seen.push(`token:${t}`),
          onSources: (s) => seen.push(`sources:${s?.length}`),
          onDone: (d) => seen.push(`done:${d.session_id}`),
        },
      );
      expect(seen).toEqual(['token:Hel', 'token:lo, wörld ✓', 'sources:1', 'done:s-1']);
      expect(result.text).toBe('Hello, wörld ✓');
      expect(result.sources).toEqual([{ topic: 'books', filename: 'menu.pdf', relevance: '0.87' }]);
      expect(result.done.provider).toBe('offline');
      expect(result.done.usage).toEqual({ prompt_tokens: 5, completion_tokens: 2 });

      expect(calls[0].url).toBe('/api/v1/chat/');
      expect(calls[0].init.method).toBe('POST');
      const headers = calls[0].init.headers as Record<string, string>;
      expect(headers.Accept).toBe('text/event-stream');
      expect(headers.Authorization).toBe('Bearer tok');
      expect(JSON.parse(String(calls[0].init.body))).toEqual({
        message: 'hi',
        mode: 'training',
        dealership_id: 3,
      });
    }
  });

  it('passes null sources through', async () => {
    mockFetch(
      sseResponse('event: token\ndata: {"text":"x"}\n\nevent: sources\ndata: null\n\nevent: done\ndata: {"session_id":"s"}\n\n'),
    );
    const onSources = vi.fn();
    const r = await streamChat({ message: 'q' }, { onSources });
    expect(onSources).toHaveBeenCalledWith(null);
    expect(r.sources).toBeNull();
  });

  it('turns an error event into ApiError with its message, after the tokens so far', async () => {
    mockFetch(
      sseResponse(
        'event: token\ndata: {"text":"Par"}\n\n' +
          'event: error\ndata: {"message":"The language model did not answer in time","type":"UpstreamError","status":504}\n\n',
        [10, 40],
      ),
    );
    const tokens: string[] = [];
    const err = await streamChat({ message: 'q' }, { onToken: (t) => tokens.push(t) }).catch(
      (e: unknown) => e,
    );
    expect(tokens).toEqual(['Par']);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toBe('The language model did not answer in time');
    expect((err as ApiError).status).toBe(504);
    expect((err as ApiError).type).toBe('UpstreamError');
  });

  it('turns a non-2xx JSON answer into ApiError with error.message', async () => {
    mockFetch(
      jsonResponse(422, {
        error: {
          message: 'Super admin must specify dealership_id',
          type: 'ValidationError',
          path: '/api/v1/chat/',
        },
      }),
    );
    const err = await streamChat({ message: 'q' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(422);
    expect((err as ApiError).message).toBe('Super admin must specify dealership_id');
  });

  it('keeps Retry-After of a 429', async () => {
    mockFetch(
      new Response(JSON.stringify({ error: { message: 'Too many requests', type: 'RateLimitError' } }), {
        status: 429,
        headers: { 'Content-Type': 'application/json', 'Retry-After': '7' },
      }),
    );
    const err = (await streamChat({ message: 'q' }).catch((e: unknown) => e)) as ApiError;
    expect(err.message).toBe('Too many requests');
    expect(err.retryAfter).toBe(7);
  });

  it('refreshes on an initial 401 and replays the request', async () => {
    const calls = mockFetch(
      jsonResponse(401, { error: { message: 'Token expired', type: 'AuthenticationError' } }),
      sseResponse('event: done\ndata: {"session_id":"s-2"}\n\n'),
    );
    const handler = vi.fn(async () => {
      setAccessToken('tok2');
      return true;
    });
    setUnauthorizedHandler(handler);
    const r = await streamChat({ message: 'q' });
    expect(r.done.session_id).toBe('s-2');
    expect(handler).toHaveBeenCalledTimes(1);
    expect(handler).toHaveBeenCalledWith('tok');
    expect((calls[1].init.headers as Record<string, string>).Authorization).toBe('Bearer tok2');
    expect((calls[1].init.headers as Record<string, string>).Accept).toBe('text/event-stream');
  });

  it('fails with the 401 message when the refresh gives up', async () => {
    mockFetch(jsonResponse(401, { error: { message: 'Token expired', type: 'AuthenticationError' } }));
    setUnauthorizedHandler(async () => false);
    const err = (await streamChat({ message: 'q' }).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(401);
    expect(err.message).toBe('Token expired');
  });

  it('reports a stream that ends before done', async () => {
    mockFetch(sseResponse('event: token\ndata: {"text":"half"}\n\n'));
    const err = (await streamChat({ message: 'q' }).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toMatch(/ended unexpectedly/);
  });

  it('reports unreadable event data', async () => {
    mockFetch(sseResponse('event: token\ndata: {not json\n\n'));
    const err = (await streamChat({ message: 'q' }).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.message).toMatch(/unreadable/);
  });

  it('aborts mid-stream and cancels the body', async () => {
    const ctrl = new AbortController();
    let cancelled = false;
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) {
          controller.enqueue(enc.encode('event: token\ndata: {"text":"one"}\n\n'));
          sent++;
          return;
        }
        // The server keeps the stream open; only the abort ends it.
        return new Promise<void>(() => undefined);
      },
      cancel() {
        cancelled = true;
      },
    });
    mockFetch(new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }));
    const tokens: string[] = [];
    const p = streamChat(
      { message: 'q' },
      {
        onToken: (t) => {
          tokens.push(t);
          ctrl.abort();
        },
      },
      ctrl.signal,
    );
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DOMException);
    expect((err as DOMException).name).toBe('AbortError');
    expect(tokens).toEqual(['one']);
    expect(cancelled).toBe(true);
  });

  it('passes the signal to fetch', async () => {
    const calls = mockFetch(sseResponse('event: done\ndata: {"session_id":"s"}\n\n'));
    const ctrl = new AbortController();
    await streamChat({ message: 'q' }, {}, ctrl.signal);
    expect(calls[0].init.signal).toBe(ctrl.signal);
  });

  it('accepts a plain JSON answer from a server that does not stream', async () => {
    mockFetch(
      jsonResponse(200, {
        response: 'Whole answer',
        session_id: 's-3',
        sources: [{ topic: 'compliance', filename: 'regs.docx', relevance: '0.55' }],
        timestamp: '2025-01-01T00:00:00Z',
        provider: 'openrouter',
      }),
    );
    const tokens: string[] = [];
    const r = await streamChat({ message: 'q' }, { onToken: (t) => tokens.push(t) });
    expect(tokens).toEqual(['Whole answer']);
    expect(r.done).toMatchObject({ session_id: 's-3', provider: 'openrouter' });
    expect(r.sources).toHaveLength(1);
  });
});
