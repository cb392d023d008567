// The one place the web app talks JSON to the server.
//
// * The access token lives in this module's memory only (never in storage);
//   after a reload auth/refresh.ts gets a new one with the refresh token.
// * Every non-2xx answer becomes a thrown ApiError whose `message` is the
//   server's `error.message` (or a sensible fallback for other shapes).
// * Requests go through `send()`, which reads the current token on every
//   attempt. The refresh-on-401 flow (auth/refresh.ts) plugs in through
//   `setUnauthorizedHandler`: it is awaited once per failed request with the
//   token that failed, and when it resolves `true` the request is retried
//   once with the (new) token; an ApiError it throws (refresh could not be
//   attempted, e.g. the server is unreachable) replaces the 401. A retried
//   request that fails again is never handed back to the handler, so a
//   server that keeps answering 401 cannot cause a refresh loop.

import type { ErrorBody, ValidationDetail } from './types';

export const API_BASE = '/api/v1';

export class ApiError extends Error {
  /** HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  /** `error.type` from the body, e.g. "AuthenticationError". */
  readonly type: string | undefined;
  /** `error.path` from the body. */
  readonly path: string | undefined;
  /** Field errors of a 422 ValidationError. */
  readonly details: ValidationDetail[];
  /** Seconds from `Retry-After` (429, 503). */
  readonly retryAfter: number | undefined;
  /** The parsed body (or raw text), for callers that need more. */
  readonly body: unknown;

  constructor(
    message: string,
    init: {
      status: number;
      type?: string;
      path?: string;
      details?: ValidationDetail[];
      retryAfter?: number;
      body?: unknown;
    },
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = init.status;
    this.type = init.type;
    this.path = init.path;
    this.details = init.details ?? [];
    this.retryAfter = init.retryAfter;
    this.body = init.body;
  }
}

// ---------------------------------------------------------------------------
// In-memory auth state and hooks

let accessToken: string | null = null;
let unauthorizedHandler: UnauthorizedHandler | null = null;
let fetchImpl: typeof fetch | null = null;

export function setAccessToken(token: string | null): void {
  accessToken = token;
}

export function getAccessToken(): string | null {
  return accessToken;
}

/**
 * Called when an authenticated request answers 401, with the access token
 * that request carried. Resolve `true` once a new access token is in place
 * to retry the request once; `false` to give up (the 401 is thrown); throw
 * an ApiError to fail the request with that error instead.
 */
export type UnauthorizedHandler = (failedToken: string) => Promise<boolean>;

export function setUnauthorizedHandler(handler: UnauthorizedHandler | null): void {
  unauthorizedHandler = handler;
}

/**
 * For requests sent without `request` (XHR uploads with progress): after a
 * 401 to a request that carried `failedToken`, run the 401 handler as
 * `request` does. Resolves `true` when the request should be retried once
 * with the new token; rethrows an ApiError the handler throws.
 */
export async function recoverUnauthorized(failedToken: string): Promise<boolean> {
  if (!unauthorizedHandler) return false;
  try {
    return (await unauthorizedHandler(failedToken)) && accessToken !== null;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    return false;
  }
}

/** For tests: replace `fetch` (null restores the global one). */
export function setFetch(impl: typeof fetch | null): void {
  fetchImpl = impl;
}

// ---------------------------------------------------------------------------
// Requests

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestOptions {
  method?: HttpMethod;
  /** Serialised as JSON. */
  body?: unknown;
  /** Send the Bearer token (default true). */
  auth?: boolean;
  query?: Record<string, string | number | boolean | null | undefined>;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/**
 * Perform a JSON request. `path` is absolute ("/health") or relative to
 * API_BASE ("auth/me" → "/api/v1/auth/me"). Resolves to the parsed body
 * (undefined for 204 or an empty body); rejects with ApiError.
 */
export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  return parseResponse<T>(await requestRaw(path, options));
}

/**
 * Like `request`, with the same auth and refresh-on-401 handling, but
 * resolves to the Response of any status without reading its body (for
 * streamed answers). Rejects only when the server cannot be reached (ApiError
 * with status 0), on abort, or with an ApiError thrown by the 401 handler.
 */
export async function requestRaw(path: string, options: RequestOptions = {}): Promise<Response> {
  const url = buildUrl(path, options.query);
  const useAuth = options.auth !== false;

  const sentToken = useAuth ? accessToken : null;
  const response = await send(url, options, useAuth);
  if (response.status !== 401 || !sentToken || !unauthorizedHandler) return response;

  let retry = false;
  try {
    retry = await unauthorizedHandler(sentToken);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    retry = false;
  }
  if (!retry || !accessToken) return response;
  void response.body?.cancel().catch(() => undefined);
  return send(url, options, useAuth);
}

export function buildUrl(path: string, query?: RequestOptions['query']): string {
  let url = path.startsWith('/') ? path : `${API_BASE}/${path}`;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) params.append(key, String(value));
    }
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  return url;
}

async function send(url: string, options: RequestOptions, useAuth: boolean): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  const init: RequestInit = {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers,
    signal: options.signal,
    credentials: 'same-origin',
  };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  if (useAuth && accessToken) headers.Authorization = `Bearer ${accessToken}`;

  try {
    return await (fetchImpl ?? fetch)(url, init);
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError('Could not reach the server. Check your connection and try again.', {
      status: 0,
      body: err,
    });
  }
}

/**
 * Read a Response as `request` does: the parsed JSON body of a 2xx (undefined
 * for 204 or an empty body), else a thrown ApiError.
 */
export async function parseResponse<T>(response: Response): Promise<T> {
  const text = response.status === 204 ? '' : await response.text();
  let body: unknown = undefined;
  let isJson = false;
  if (text) {
    try {
      body = JSON.parse(text);
      isJson = true;
    } catch {
      body = text;
    }
  }

  if (response.ok) {
    if (text && !isJson) {
      throw new ApiError('The server sent an unexpected response.', {
        status: response.status,
        body,
      });
    }
    return body as T;
  }
  throw toApiError(response, body);
}

function toApiError(response: Response, body: unknown): ApiError {
  const retryHeader = response.headers.get('Retry-After');
  const retryAfter =
    retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : undefined;

  if (isErrorBody(body)) {
    const e = body.error;
    return new ApiError(e.message, {
      status: response.status,
      type: e.type,
      path: e.path,
      details: Array.isArray(e.details) ? e.details : [],
      retryAfter,
      body,
    });
  }

  // `{"detail": "Not authenticated"}` (missing token) and other detail shapes.
  if (body && typeof body === 'object' && 'detail' in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === 'string' && detail) {
      return new ApiError(detail, { status: response.status, retryAfter, body });
    }
  }

  return new ApiError(fallbackMessage(response.status), {
    status: response.status,
    retryAfter,
    body,
  });
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (!body || typeof body !== 'object' || !('error' in body)) return false;
  const e = (body as { error: unknown }).error;
  return (
    !!e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string'
  );
}

function fallbackMessage(status: number): string {
  switch (status) {
    case 401:
      return 'Your session has ended. Please sign in again.';
    case 403:
      return 'You do not have permission to do that.';
    case 404:
      return 'Not found.';
    case 413:
      return 'That upload is too large.';
    case 429:
      return 'Too many requests. Please wait a moment and try again.';
    case 502:
    case 504:
      return 'A service the server depends on did not answer. Please try again.';
    case 503:
      return 'The service is temporarily unavailable. Please try again shortly.';
    default:
      return status >= 500
        ? 'Something went wrong on the server. Please try again.'
        : `Request failed (HTTP ${status}).`;
  }
}
