import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  buildUrl,
  request,
  setAccessToken,
  setFetch,
  setUnauthorizedHandler,
} from './client';

type Call = { url: string; init: RequestInit };

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  });
}

/** Installs a fake fetch answering from `responses` in order; returns the calls. */
function mockFetch(...responses: Array<Response | Error>): Call[] {
  const calls: Call[] = [];
  const queue = [...responses];
  setFetch(
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      calls.push({ url: String(input), init: init ?? {} });
      const next = queue.shift();
      if (!next) throw new Error('unexpected fetch');
      if (next instanceof Error) throw next;
      return next;
    }) as typeof fetch,
  );
  return calls;
}

async function catchError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected the request to fail');
}

beforeEach(() => {
  setAccessToken(null);
  setUnauthorizedHandler(null);
});

afterEach(() => {
  setFetch(null);
});

describe('request: success', () => {
  it('returns the parsed JSON body and sends JSON', async () => {
    const calls = mockFetch(jsonResponse(200, { access_token: 'a', refresh_token: 'r' }));
    const out = await request<{ access_token: string }>('auth/login', {
      method: 'POST',
      body: { email: 'a@b.c', password: 'x' },
      auth: false,
    });
    expect(out.access_token).toBe('a');
    expect(calls[0].url).toBe('/api/v1/auth/login');
    expect(calls[0].init.method).toBe('POST');
    expect(calls[0].init.body).toBe('{"email":"a@b.c","password":"x"}');
    const headers = calls[0].init.headers as Record<string, string>;
    expect(headers['Content-Type']).toBe('application/json');
    expect(headers.Authorization).toBeUndefined();
  });

  it('adds the in-memory Bearer token', async () => {
    setAccessToken('tok123');
    const calls = mockFetch(jsonResponse(200, { id: 1 }));
    await request('auth/me');
    const headers = calls[0].init.headers as Record<string, string>;
    expect(headers.Authorization).toBe('Bearer tok123');
    expect(calls[0].init.method).toBe('GET');
  });

  it('resolves undefined for 204', async () => {
    mockFetch(new Response(null, { status: 204 }));
    await expect(request('auth/logout', { method: 'POST', body: {} })).resolves.toBeUndefined();
  });

  it('keeps absolute paths and builds query strings', () => {
    expect(buildUrl('/health')).toBe('/health');
    expect(buildUrl('/api/v1/')).toBe('/api/v1/');
    expect(buildUrl('users/', { skip: 0, limit: 10, role: undefined, is_active: true })).toBe(
      '/api/v1/users/?skip=0&limit=10&is_active=true',
    );
  });
});

describe('request: errors', () => {
  it('throws ApiError carrying error.message from the error body', async () => {
    mockFetch(
      jsonResponse(401, {
        error: {
          message: 'Incorrect email or password',
          type: 'AuthenticationError',
          path: '/api/v1/auth/login',
        },
      }),
    );
    const err = await catchError(
      request('auth/login', { method: 'POST', body: { email: 'x', password: 'y' }, auth: false }),
    );
    expect(err.message).toBe('Incorrect email or password');
    expect(err.status).toBe(401);
    expect(err.type).toBe('AuthenticationError');
    expect(err.path).toBe('/api/v1/auth/login');
  });

  it('exposes validation details of a 422', async () => {
    mockFetch(
      jsonResponse(422, {
        error: {
          message: 'Validation failed',
          type: 'ValidationError',
          details: [{ field: 'body.password', message: 'too short', type: 'value_error' }],
        },
      }),
    );
    const err = await catchError(request('auth/signup', { method: 'POST', body: {} }));
    expect(err.message).toBe('Validation failed');
    expect(err.details).toEqual([
      { field: 'body.password', message: 'too short', type: 'value_error' },
    ]);
  });

  it('reads Retry-After of a 429', async () => {
    mockFetch(
      jsonResponse(
        429,
        { error: { message: 'Too many requests', type: 'RateLimitError' } },
        { 'Retry-After': '12' },
      ),
    );
    const err = await catchError(request('chat/', { method: 'POST', body: {} }));
    expect(err.message).toBe('Too many requests');
    expect(err.retryAfter).toBe(12);
  });

  it('uses {"detail": "..."} when there is no error object', async () => {
    mockFetch(jsonResponse(401, { detail: 'Not authenticated' }, { 'WWW-Authenticate': 'Bearer' }));
    const err = await catchError(request('auth/me'));
    expect(err.message).toBe('Not authenticated');
    expect(err.status).toBe(401);
  });

  it('falls back to a readable message for non-JSON error pages', async () => {
    mockFetch(
      new Response('<html><body>502 Bad Gateway</body></html>', {
        status: 502,
        headers: { 'Content-Type': 'text/html' },
      }),
    );
    const err = await catchError(request('/health', { auth: false }));
    expect(err.status).toBe(502);
    expect(err.message).toMatch(/did not answer/);
    expect(err.body).toContain('502 Bad Gateway');
  });

  it('keeps the parsed body of a 503 health answer', async () => {
    mockFetch(jsonResponse(503, { status: 'degraded', failing: 'postgresql' }));
    const err = await catchError(request('/health', { auth: false }));
    expect(err.status).toBe(503);
    expect(err.body).toEqual({ status: 'degraded', failing: 'postgresql' });
  });

  it('turns a network failure into ApiError with status 0', async () => {
    mockFetch(new TypeError('Failed to fetch'));
    const err = await catchError(request('auth/me'));
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/could not reach the server/i);
  });
});

describe('request: 401 hook (for refresh-on-401)', () => {
  it('retries once with the new token when the handler resolves true', async () => {
    setAccessToken('old');
    const calls = mockFetch(
      jsonResponse(401, { error: { message: 'Token expired', type: 'AuthenticationError' } }),
      jsonResponse(200, { id: 7 }),
    );
    const handler = vi.fn(async () => {
      setAccessToken('new');
      return true;
    });
    setUnauthorizedHandler(handler);
    await expect(request<{ id: number }>('auth/me')).resolves.toEqual({ id: 7 });
    expect(handler).toHaveBeenCalledTimes(1);
    expect((calls[1].init.headers as Record<string, string>).Authorization).toBe('Bearer new');
  });

  it('throws the 401 when the handler gives up', async () => {
    setAccessToken('old');
    mockFetch(jsonResponse(401, { error: { message: 'Token expired', type: 'AuthenticationError' } }));
    setUnauthorizedHandler(async () => false);
    const err = await catchError(request('auth/me'));
    expect(err.message).toBe('Token expired');
  });

  it('does not call the handler for unauthenticated requests', async () => {
    setAccessToken('old');
    mockFetch(
      jsonResponse(401, { error: { message: 'Incorrect email or password', type: 'AuthenticationError' } }),
    );
    const handler = vi.fn(async () => true);
    setUnauthorizedHandler(handler);
    await catchError(request('auth/login', { method: 'POST', body: {}, auth: false }));
    expect(handler).not.toHaveBeenCalled();
  });
});

describe('request: 401 hook errors', () => {
  it('hands the handler the token that failed', async () => {
    setAccessToken('old');
    mockFetch(jsonResponse(401, { error: { message: 'Token expired' } }));
    const handler = vi.fn(async () => false);
    setUnauthorizedHandler(handler);
    await catchError(request('auth/me'));
    expect(handler).toHaveBeenCalledWith('old');
  });

  it('fails with the ApiError the handler throws (refresh could not be attempted)', async () => {
    setAccessToken('old');
    const calls = mockFetch(jsonResponse(401, { error: { message: 'Token expired' } }));
    setUnauthorizedHandler(async () => {
      throw new ApiError('Could not reach the server.', { status: 0 });
    });
    const err = await catchError(request('auth/me'));
    expect(err.status).toBe(0);
    expect(err.message).toBe('Could not reach the server.');
    expect(calls).toHaveLength(1);
  });

  it('does not replay when the session was dropped meanwhile', async () => {
    setAccessToken('old');
    const calls = mockFetch(jsonResponse(401, { error: { message: 'Token expired' } }));
    setUnauthorizedHandler(async () => {
      setAccessToken(null);
      return true;
    });
    const err = await catchError(request('auth/me'));
    expect(err.status).toBe(401);
    expect(calls).toHaveLength(1);
  });
});
