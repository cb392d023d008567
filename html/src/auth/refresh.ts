// The session's tokens and refresh-on-401.
//
// Where the tokens live:
// * The access token (30 minutes) lives only in the API client's memory.
// * The refresh token (7 days) lives in this module's memory and, so that a
//   page reload does not log the user out, in sessionStorage. sessionStorage
//   is per tab and is emptied when the tab closes, so the token does not
//   outlive the tab the user signed in with, and is not shared with other
//   tabs (each tab signs in on its own). Like anything a page script can
//   reach, it is exposed to a script injected into the page (the CSP is the
//   defence there); the damage is bounded because the server rotates the
//   token on every use and revokes the whole family when a rotated token is
//   presented again. localStorage is never used: it would keep the token
//   after the browser closes. (A duplicated tab starts with a copy of the
//   token; whichever tab refreshes second presents a rotated token and both
//   are logged out, which is the server's theft detection working.)
//
// Refresh-on-401 (installed with installRefreshHandler):
// * Every request that answers 401 waits on one shared refresh: the first
//   starts POST /auth/refresh, the others queue behind the same promise, and
//   each is then replayed once by the client with the new access token.
// * A request whose token was already replaced by a refresh that finished
//   in the meantime is replayed at once, without another refresh.
// * The refresh request itself carries no Bearer token, so its own 401 never
//   comes back here; a replayed request that fails again is not handed back
//   either (client.ts), so there is no loop.
// * When the server rejects the refresh token (401 or another 4xx), the
//   session is over: tokens are forgotten and the session-ended listener
//   runs (the app returns to /login with a message); every queued request
//   fails with its 401. When the refresh could not be attempted (server
//   unreachable, 429, 5xx), the session is kept and the queued requests
//   fail with that error, so a network blip does not sign anyone out.

import { ApiError, getAccessToken, setAccessToken, setUnauthorizedHandler } from '../api/client';
import { refreshTokens } from '../api/auth';
import type { Tokens } from '../api/types';

export const SESSION_EXPIRED_MESSAGE = 'Your session has ended. Please sign in again.';

const STORAGE_KEY = 'avatar-adam.refresh-token';

/** The part of the Web Storage API this module uses. */
export interface TokenStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

let refreshToken: string | null = null;
let accessExpiresAt = 0;
let inFlight: Promise<boolean> | null = null;
// Bumped whenever the session is replaced or ended, so that a refresh that
// was running at that moment cannot bring the old session back.
let generation = 0;
let sessionEndedListener: ((message: string) => void) | null = null;
let storageOverride: TokenStorage | null | undefined;

/** For tests: use this storage instead of sessionStorage (null: none). */
export function setTokenStorage(storage: TokenStorage | null | undefined): void {
  storageOverride = storage;
}

function storage(): TokenStorage | null {
  if (storageOverride !== undefined) return storageOverride;
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null; // storage disabled by the browser's settings
  }
}

function store(token: string | null): void {
  const s = storage();
  if (!s) return;
  try {
    if (token) s.setItem(STORAGE_KEY, token);
    else s.removeItem(STORAGE_KEY);
  } catch {
    // Quota or privacy mode: the session then simply ends with the page.
  }
}

/** Take a token pair from login, signup or refresh as the current session. */
export function startSession(tokens: Tokens): void {
  generation++;
  inFlight = null;
  applyTokens(tokens);
}

function applyTokens(tokens: Tokens): void {
  setAccessToken(tokens.access_token);
  accessExpiresAt = Date.now() + (tokens.expires_in > 0 ? tokens.expires_in : 1800) * 1000;
  refreshToken = tokens.refresh_token;
  store(tokens.refresh_token);
}

/**
 * Forget the session's tokens locally (logout revokes server-side first,
 * see AuthContext). A refresh still running is disowned.
 */
export function endSession(): void {
  generation++;
  inFlight = null;
  refreshToken = null;
  accessExpiresAt = 0;
  setAccessToken(null);
  store(null);
}

export function getRefreshToken(): string | null {
  return refreshToken;
}

/**
 * After a reload: take the refresh token kept in sessionStorage, if any, as
 * the current one (without an access token yet). Returns whether there was
 * one; the caller then calls refreshAccessToken().
 */
export function restoreSession(): boolean {
  if (refreshToken) return true;
  let saved: string | null = null;
  try {
    saved = storage()?.getItem(STORAGE_KEY) ?? null;
  } catch {
    saved = null;
  }
  if (!saved) return false;
  refreshToken = saved;
  return true;
}

/** Called (once per ended session) when the server rejected the refresh token. */
export function onSessionEnded(listener: ((message: string) => void) | null): void {
  sessionEndedListener = listener;
}

function expire(): void {
  endSession();
  sessionEndedListener?.(SESSION_EXPIRED_MESSAGE);
}

/** Transient failures keep the session: the token may still be good. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof ApiError)) return false;
  return err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;
}

/**
 * Exchange the refresh token for a new pair. All callers while one exchange
 * runs share it. Resolves true with the new access token in place, false
 * when the session has ended (the listener has run); rejects with the
 * ApiError of a transient failure (the session is kept).
 */
export function refreshAccessToken(): Promise<boolean> {
  if (inFlight) return inFlight;
  const token = refreshToken;
  if (!token) {
    if (getAccessToken()) expire();
    return Promise.resolve(false);
  }
  const gen = generation;
  const run = (async () => {
    try {
      const tokens = await refreshTokens(token);
      if (gen !== generation) return false;
      applyTokens(tokens);
      return true;
    } catch (err) {
      if (gen !== generation) return false;
      if (isTransient(err)) throw err;
      expire();
      return false;
    } finally {
      // Unless a new session replaced it, the shared promise is this one.
      if (gen === generation) inFlight = null;
    }
  })();
  inFlight = run;
  return run;
}

/**
 * The client's 401 handler. `failedToken` is the access token the failed
 * request carried: when a refresh has replaced it since, the request is
 * simply replayed with the current one.
 */
export function handleUnauthorized(failedToken: string): Promise<boolean> {
  const current = getAccessToken();
  if (current && current !== failedToken && !inFlight) return Promise.resolve(true);
  return refreshAccessToken();
}

/**
 * A valid access token for a caller that cannot replay on 401 (a WebSocket
 * sends the token once when it connects): refreshes first when the current
 * token expires within `minValidityMs`. Null when there is no session.
 */
export async function getFreshAccessToken(minValidityMs = 60_000): Promise<string | null> {
  const current = getAccessToken();
  if (current && !inFlight && accessExpiresAt - Date.now() > minValidityMs) return current;
  if (!refreshToken) return current;
  return (await refreshAccessToken()) ? getAccessToken() : null;
}

/** Plug refresh-on-401 into the API client; returns the uninstaller. */
export function installRefreshHandler(listener: (message: string) => void): () => void {
  onSessionEnded(listener);
  setUnauthorizedHandler(handleUnauthorized);
  return () => {
    setUnauthorizedHandler(null);
    if (sessionEndedListener === listener) sessionEndedListener = null;
  };
}
