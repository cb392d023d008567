// Streamed chat answers: POST /api/v1/chat/ with `Accept: text/event-stream`
// read through fetch and a ReadableStream (EventSource cannot POST or send
// an Authorization header).
//
// The parser follows the Server-Sent Events rules of the HTML standard:
// lines end in CRLF, LF or CR (a CR at the end of one chunk and an LF at the
// start of the next are one line end); "data" lines accumulate with "\n"
// between them; a blank line dispatches the event; lines starting with ":"
// are comments; "field" without a colon is the field with an empty value;
// one space after the colon is dropped; a leading BOM is dropped; an event
// left unterminated at the end of the stream is discarded. Bytes are decoded
// as a stream, so a UTF-8 character split between chunks is kept whole.

import { ApiError, parseResponse, requestRaw } from './client';

export interface SseEvent {
  /** The "event" field, "message" when absent. */
  event: string;
  data: string;
  /** The last "id" field seen so far, if any. */
  id?: string;
}

/** Incremental SSE parser: push text as it arrives, get complete events. */
export class SseParser {
  private buffer = '';
  private started = false;
  private eventType = '';
  private data: string[] = [];
  private hasData = false;
  private lastId: string | undefined;

  /** Feed decoded text; returns the events completed by it. */
  push(text: string): SseEvent[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      let end: number;
      let next: number;
      if (cr === -1 && lf === -1) break;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        // A CR as the last character may be the first half of a CRLF.
        if (cr === this.buffer.length - 1) break;
        end = cr;
        next = this.buffer.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      const ev = this.line(this.buffer.slice(start, end));
      if (ev) events.push(ev);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /**
   * The stream has ended: a held-back final CR still ends its line, and an
   * event without its terminating blank line is discarded.
   */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.buffer.endsWith('\r')) {
      const ev = this.line(this.buffer.slice(0, -1));
      if (ev) events.push(ev);
    }
    this.buffer = '';
    this.reset();
    return events;
  }

  private reset(): void {
    this.eventType = '';
    this.data = [];
    this.hasData = false;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (!this.hasData) {
        this.reset();
        return null;
      }
      const ev: SseEvent = { event: this.eventType || 'message', data: this.data.join('\n') };
      if (this.lastId !== undefined) ev.id = this.lastId;
      this.reset();
      return ev;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        // "retry" and unknown fields: nothing to do for a one-shot stream.
        break;
    }
    return null;
  }
}

/** Read a byte stream as SSE events, calling onEvent for each in order. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (ev: SseEvent) => void | 'stop',
  signal?: AbortSignal,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser();
  const onAbort = () => {
    void reader.cancel().catch(() => undefined);
  };
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      if (signal?.aborted) throw abortError();
      const { done, value } = await reader.read();
      if (signal?.aborted) throw abortError();
      const events = done
        ? parser.push(decoder.decode()).concat(parser.end())
        : parser.push(decoder.decode(value, { stream: true }));
      for (const ev of events) {
        if (onEvent(ev) === 'stop') {
          await reader.cancel().catch(() => undefined);
          return;
        }
      }
      if (done) return;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

function abortError(): DOMException {
  return new DOMException('The answer was stopped.', 'AbortError');
}

// ---------------------------------------------------------------------------
// The chat stream

export type ChatMode = 'training' | 'roleplay';

export interface ChatRequest {
  message: string;
  mode?: ChatMode;
  session_id?: string;
  dealership_id?: number;
  /** Role-play: the scenario to play (a random one when absent). */
  scenario_id?: string;
  conversation_history?: Array<{ role: 'user' | 'assistant'; content: string }>;
}

export interface ChatSource {
  topic: string;
  filename: string;
  /** Two decimals as a string, e.g. "0.87". */
  relevance: string;
}

export interface ChatDone {
  session_id: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  cache?: 'hit' | 'miss';
  /** e.g. "openrouter", "offline" (the embedded responder), "cache". */
  provider?: string;
  timestamp?: string;
}

/** The JSON answer of POST /chat/ (when the server does not stream). */
export interface ChatResponse {
  response: string;
  session_id: string;
  sources: ChatSource[] | null;
  timestamp: string;
  provider?: string;
}

export interface ChatStreamHandlers {
  /** Each piece of the answer as the model writes it. */
  onToken?: (text: string) => void;
  onSources?: (sources: ChatSource[] | null) => void;
  onDone?: (done: ChatDone) => void;
}

export interface ChatStreamResult {
  text: string;
  sources: ChatSource[] | null;
  done: ChatDone;
}

/**
 * Ask Adam and stream the answer. Resolves after the "done" event; rejects
 * with an ApiError (a non-2xx answer with its error.message, an "error"
 * event, or a stream that ends early) or with an AbortError when `signal`
 * aborts. A 401 goes through the refresh-on-401 path like any request.
 */
export async function streamChat(
  body: ChatRequest,
  handlers: ChatStreamHandlers = {},
  signal?: AbortSignal,
): Promise<ChatStreamResult> {
  const response = await requestRaw('chat/', {
    method: 'POST',
    body,
    signal,
    headers: { Accept: 'text/event-stream' },
  });
  if (!response.ok) {
    await parseResponse(response); // throws the ApiError of the body
    throw new ApiError(`Request failed (HTTP ${response.status}).`, { status: response.status });
  }

  const type = response.headers.get('Content-Type') ?? '';
  if (!type.includes('text/event-stream')) {
    // A server that answers with JSON instead: the same callbacks, at once.
    const answer = await parseResponse<ChatResponse>(response);
    if (!answer || typeof answer.response !== 'string') {
      throw new ApiError('The server sent an unexpected response.', {
        status: response.status,
        body: answer,
      });
    }
    handlers.onToken?.(answer.response);
    handlers.onSources?.(answer.sources ?? null);
    const done: ChatDone = {
      session_id: answer.session_id,
      provider: answer.provider,
      timestamp: answer.timestamp,
    };
    handlers.onDone?.(done);
    return { text: answer.response, sources: answer.sources ?? null, done };
  }
  if (!response.body) {
    throw new ApiError('The server sent an empty answer stream.', { status: response.status });
  }

  let text = '';
  let sources: ChatSource[] | null = null;
  let done: ChatDone | null = null;
  let failure: ApiError | null = null;

  await readSse(
    response.body,
    (ev) => {
      switch (ev.event) {
        case 'token': {
          const piece = parseData<{ text?: unknown }>(ev);
          if (typeof piece.text === 'string' && piece.text) {
            text += piece.text;
            handlers.onToken?.(piece.text);
          }
          return;
        }
        case 'sources': {
          const list = parseData<unknown>(ev);
          sources = Array.isArray(list) ? (list as ChatSource[]) : null;
          handlers.onSources?.(sources);
          return;
        }
        case 'done': {
          done = parseData<ChatDone>(ev);
          handlers.onDone?.(done);
          return 'stop';
        }
        case 'error': {
          failure = streamError(ev, response.status);
          return 'stop';
        }
        default:
          return; // unknown events are ignored, as EventSource does
      }
    },
    signal,
  );

  if (failure) throw failure;
  if (!done) {
    throw new ApiError('The answer stream ended unexpectedly. Please try again.', {
      status: 502,
    });
  }
  return { text, sources, done };
}

function parseData<T>(ev: SseEvent): T {
  try {
    return JSON.parse(ev.data) as T;
  } catch {
    throw new ApiError('The server sent an unreadable answer stream.', {
      status: 502,
      body: ev.data,
    });
  }
}

/** An "error" event: {message, type, status} like the JSON error body. */
function streamError(ev: SseEvent, httpStatus: number): ApiError {
  let data: unknown;
  try {
    data = JSON.parse(ev.data);
  } catch {
    data = ev.data;
  }
  const obj = (data && typeof data === 'object' ? data : {}) as {
    message?: unknown;
    type?: unknown;
    status?: unknown;
    error?: { message?: unknown; type?: unknown };
  };
  const inner = obj.error && typeof obj.error === 'object' ? obj.error : obj;
  const message =
    typeof inner.message === 'string' && inner.message
      ? inner.message
      : typeof data === 'string' && data
        ? data
        : 'The answer failed. Please try again.';
  return new ApiError(message, {
    status: typeof obj.status === 'number' ? obj.status : httpStatus,
    type: typeof inner.type === 'string' ? inner.type : undefined,
    body: data,
  });
}
