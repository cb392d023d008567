import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, getAccessToken, request, requestRaw, setAccessToken, setFetch } from '../api/client';
import {
  SESSION_EXPIRED_MESSAGE,
  endSession,
  getFreshAccessToken,
  getRefreshToken,
  installRefreshHandler,
  refreshAccessToken,
  restoreSession,
  setTokenStorage,
  startSession,
} from './refresh';
import type { TokenStorage } from './refresh';

type Call = { url: string; auth: string | undefined; body: unknown };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

const expired = () =>
  json(401, { error: { message: 'Token expired', type: 'AuthenticationError' } });

function tokens(n: number) {
  return {
    access_token: `access-${n}`,
    refresh_token: `refresh-${n}`,
    token_type: 'bearer' as const,
    expires_in: 1800,
  };
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A fake server: /auth/refresh answers from `onRefresh`; every other path
 * answers 200 {ok, path} to the Bearer token in `valid`, else 401.
 */
function fakeServer(onRefresh: (body: { refresh_token: string }) => Promise<Response> | Response) {
  const calls: Call[] = [];
  const valid = new Set<string>();
  setFetch(
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const headers = (init?.headers ?? {}) as Record<string, string>;
      const body = init?.body ? JSON.parse(String(init.body)) : undefined;
      const url = String(input);
      calls.push({ url, auth: headers.Authorization, body });
      if (url === '/api/v1/auth/refresh') return onRefresh(body);
      const token = headers.Authorization?.replace(/^Bearer /, '');
      if (token && valid.has(token)) return json(200, { ok: true, path: url });
      return expired();
    }) as typeof fetch,
  );
  return { calls, valid };
}

class MemoryStorage implements TokenStorage {
  items = new Map<string, string>();
  getItem(k: string) {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.items.set(k, v);
  }
  removeItem(k: string) {
    this.items.delete(k);
  }
}

let storage: MemoryStorage;
let ended: string[];
let uninstall: () => void;

beforeEach(() => {
  storage = new MemoryStorage();
  setTokenStorage(storage);
  endSession();
  ended = [];
  uninstall = installRefreshHandler((msg) => ended.push(msg));
});

afterEach(() => {
  uninstall();
  setFetch(null);
  setTokenStorage(undefined);
});

const refreshCalls = (calls: Call[]) => calls.filter((c) => c.url === '/api/v1/auth/refresh');

describe('refresh-on-401', () => {
  it('shares one refresh between parallel 401s and replays each request once', async () => {
    startSession(tokens(1));
    const gate = deferred<void>();
    const server = fakeServer(async (body) => {
      await gate.promise;
      expect(body.refresh_token).toBe('refresh-1');
      server.valid.add('access-2');
      return json(200, tokens(2));
    });

    const paths = ['a', 'b', 'c', 'd', 'e'];
    const all = Promise.all(paths.map((p) => request<{ path: string }>(`x/${p}`)));
    // Let every first attempt fail and queue behind the refresh.
    await vi.waitFor(() => expect(server.calls.length).toBe(paths.length + 1));
    gate.resolve();
    const out = await all;

    expect(out.map((o) => o.path)).toEqual(paths.map((p) => `/api/v1/x/${p}`));
    expect(refreshCalls(server.calls)).toHaveLength(1);
    // The refresh itself carries no Bearer token.
    expect(refreshCalls(server.calls)[0].auth).toBeUndefined();
    const replays = server.calls.filter((c) => c.auth === 'Bearer access-2');
    expect(replays.map((c) => c.url).sort()).toEqual(paths.map((p) => `/api/v1/x/${p}`));
    expect(server.calls).toHaveLength(paths.length * 2 + 1);
    expect(getAccessToken()).toBe('access-2');
    expect(getRefreshToken()).toBe('refresh-2');
    expect(storage.getItem('avatar-adam.refresh-token')).toBe('refresh-2');
    expect(ended).toEqual([]);
  });

  it('rejects every queued request and ends the session when the refresh is refused', async () => {
    startSession(tokens(1));
    const gate = deferred<void>();
    const server = fakeServer(async () => {
      await gate.promise;
      return json(401, { error: { message: 'Invalid refresh token', type: 'AuthenticationError' } });
    });

    const all = ['a', 'b', 'c'].map((p) =>
      request(`x/${p}`).then(
        () => null,
        (e: unknown) => e,
      ),
    );
    await vi.waitFor(() => expect(server.calls.length).toBe(4));
    gate.resolve();
    const errors = await Promise.all(all);

    for (const e of errors) {
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).status).toBe(401);
      expect((e as ApiError).message).toBe('Token expired');
    }
    expect(refreshCalls(server.calls)).toHaveLength(1);
    expect(server.calls).toHaveLength(4); // nothing replayed
    expect(ended).toEqual([SESSION_EXPIRED_MESSAGE]);
    expect(getAccessToken()).toBeNull();
    expect(getRefreshToken()).toBeNull();
    expect(storage.getItem('avatar-adam.refresh-token')).toBeNull();
  });

  it('does not loop when the replayed request is refused again', async () => {
    startSession(tokens(1));
    // The refresh succeeds but the server still refuses the new token.
    const server = fakeServer(() => json(200, tokens(2)));

    const err = await request('x/a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(401);
    expect(server.calls.map((c) => [c.url, c.auth])).toEqual([
      ['/api/v1/x/a', 'Bearer access-1'],
      ['/api/v1/auth/refresh', undefined],
      ['/api/v1/x/a', 'Bearer access-2'],
    ]);
  });

  it('replays a late 401 with the already refreshed token, without a second refresh', async () => {
    startSession(tokens(1));
    const server = fakeServer(() => {
      server.valid.add('access-2');
      return json(200, tokens(2));
    });
    await request('x/first');
    expect(refreshCalls(server.calls)).toHaveLength(1);

    // A request sent with the old token, whose 401 arrives after the refresh.
    const slow = deferred<Response>();
    setFetch(
      vi.fn(async (_input: RequestInfo | URL, init?: RequestInit) => {
        const auth = ((init?.headers ?? {}) as Record<string, string>).Authorization;
        server.calls.push({ url: 'late', auth, body: undefined });
        if (auth === 'Bearer access-1') return slow.promise;
        return json(200, { ok: true });
      }) as typeof fetch,
    );
    setAccessToken('access-1');
    const late = request<{ ok: boolean }>('x/late');
    setAccessToken('access-2');
    slow.resolve(expired());
    await expect(late).resolves.toEqual({ ok: true });
    expect(server.calls.filter((c) => c.url === '/api/v1/auth/refresh')).toHaveLength(1);
    expect(server.calls.at(-1)?.auth).toBe('Bearer access-2');
  });

  it('keeps the session when the refresh cannot reach the server', async () => {
    startSession(tokens(1));
    let attempts = 0;
    const server = fakeServer(() => {
      attempts++;
      if (attempts === 1) throw new TypeError('Failed to fetch');
      server.valid.add('access-2');
      return json(200, tokens(2));
    });

    const err = await request('x/a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(0);
    expect(ended).toEqual([]);
    expect(getRefreshToken()).toBe('refresh-1');

    // The next 401 tries again and succeeds.
    await expect(request('x/b')).resolves.toMatchObject({ ok: true });
    expect(attempts).toBe(2);
  });

  it('treats a 5xx from the refresh as transient too', async () => {
    startSession(tokens(1));
    fakeServer(() => json(503, { error: { message: 'Service temporarily unavailable' } }));
    const err = await request('x/a').catch((e: unknown) => e);
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).message).toBe('Service temporarily unavailable');
    expect(ended).toEqual([]);
    expect(getRefreshToken()).toBe('refresh-1');
  });

  it('discards a refresh that finishes after logout', async () => {
    startSession(tokens(1));
    const gate = deferred<void>();
    const server = fakeServer(async () => {
      await gate.promise;
      server.valid.add('access-2');
      return json(200, tokens(2));
    });
    const pending = request('x/a').catch((e: unknown) => e);
    await vi.waitFor(() => expect(refreshCalls(server.calls)).toHaveLength(1));
    endSession();
    gate.resolve();
    const err = await pending;
    expect((err as ApiError).status).toBe(401);
    expect(getAccessToken()).toBeNull();
    expect(getRefreshToken()).toBeNull();
    expect(storage.getItem('avatar-adam.refresh-token')).toBeNull();
    expect(server.calls).toHaveLength(2);
  });

  it('goes through the same path for raw (streamed) requests', async () => {
    startSession(tokens(1));
    const server = fakeServer(() => {
      server.valid.add('access-2');
      return json(200, tokens(2));
    });
    const res = await requestRaw('chat/', { method: 'POST', body: { message: 'hi' } });
    expect(res.status).toBe(200);
    expect(refreshCalls(server.calls)).toHaveLength(1);
  });

  it('does not refresh for requests sent without a token', async () => {
    const server = fakeServer(() => json(200, tokens(2)));
    const err = await request('x/a').catch((e: unknown) => e);
    expect((err as ApiError).status).toBe(401);
    expect(refreshCalls(server.calls)).toHaveLength(0);
    expect(ended).toEqual([]);
  });
});

describe('session restore and fresh tokens', () => {
  it('restores the refresh token from storage after a reload', async () => {
    storage.setItem('avatar-adam.refresh-token', 'refresh-7');
    const server = fakeServer((body) => {
      expect(body.refresh_token).toBe('refresh-7');
      return json(200, tokens(8));
    });
    expect(restoreSession()).toBe(true);
    // Two callers at start-up (StrictMode mounts twice): one refresh.
    const [a, b] = await Promise.all([refreshAccessToken(), refreshAccessToken()]);
    expect(a && b).toBe(true);
    expect(refreshCalls(server.calls)).toHaveLength(1);
    expect(getAccessToken()).toBe('access-8');
    expect(storage.getItem('avatar-adam.refresh-token')).toBe('refresh-8');
  });

  it('has nothing to restore in a new tab', () => {
    expect(restoreSession()).toBe(false);
  });

  it('ends a restored session whose token was revoked', async () => {
    storage.setItem('avatar-adam.refresh-token', 'refresh-7');
    fakeServer(() => json(401, { error: { message: 'Invalid refresh token' } }));
    expect(restoreSession()).toBe(true);
    await expect(refreshAccessToken()).resolves.toBe(false);
    expect(storage.getItem('avatar-adam.refresh-token')).toBeNull();
    expect(ended).toEqual([SESSION_EXPIRED_MESSAGE]);
  });

  it('refreshes ahead of expiry for callers that cannot replay', async () => {
    startSession({ ...tokens(1), expires_in: 30 });
    const server = fakeServer(() => json(200, tokens(2)));
    await expect(getFreshAccessToken(60_000)).resolves.toBe('access-2');
    expect(refreshCalls(server.calls)).toHaveLength(1);
    // Now valid for 30 minutes: no further refresh.
    await expect(getFreshAccessToken(60_000)).resolves.toBe('access-2');
    expect(refreshCalls(server.calls)).toHaveLength(1);
  });
});
