import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import type { ReactNode } from 'react';
import { ApiError } from '../api/client';
import * as api from '../api/endpoints';
import type { Tokens, User } from '../api/types';
import {
  endSession,
  getRefreshToken,
  installRefreshHandler,
  refreshAccessToken,
  restoreSession,
  startSession,
} from './refresh';

interface AuthState {
  /** The signed-in user, or null. */
  user: User | null;
  /** True while a session kept across a reload is being restored. */
  restoring: boolean;
  /** Why the session ended without a logout (shown on the sign-in page). */
  notice: string | null;
  clearNotice: () => void;
  /** Log in, then load the profile. Rejects with ApiError on failure. */
  login: (email: string, password: string) => Promise<User>;
  /** Take tokens from elsewhere (signup with an invitation), then load the profile. */
  signInWithTokens: (tokens: Tokens) => Promise<User>;
  /** Revoke the refresh token server-side (best effort) and forget the session. */
  logout: () => Promise<void>;
  /** Replace the cached profile (e.g. after GET /auth/me). */
  setUser: (user: User) => void;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  // Tokens live in auth/refresh.ts (access token in memory, refresh token in
  // memory and sessionStorage); a reload restores the session from the latter.
  const [restoring, setRestoring] = useState(() => restoreSession());

  useEffect(() => {
    const uninstall = installRefreshHandler((message) => {
      setUser(null);
      setNotice(message);
    });
    return uninstall;
  }, []);

  useEffect(() => {
    if (!restoring) return;
    let cancelled = false;
    // Mounting twice (StrictMode) shares the one refresh in flight.
    refreshAccessToken()
      .then((ok) => (ok ? api.getMe() : null))
      .then((me) => {
        if (!cancelled && me) setUser(me);
      })
      .catch((err: unknown) => {
        if (cancelled) return;
        // The refresh token is kept for a later try when the server could
        // not be reached; the user can also simply sign in again.
        setNotice(
          err instanceof ApiError
            ? `Could not restore your session: ${err.message}`
            : 'Could not restore your session.',
        );
      })
      .finally(() => {
        if (!cancelled) setRestoring(false);
      });
    return () => {
      cancelled = true;
    };
  }, [restoring]);

  const signInWithTokens = useCallback(async (tokens: Tokens) => {
    startSession(tokens);
    try {
      const me = await api.getMe();
      setUser(me);
      setNotice(null);
      setRestoring(false);
      return me;
    } catch (err) {
      endSession();
      throw err;
    }
  }, []);

  const login = useCallback(
    async (email: string, password: string) => signInWithTokens(await api.login(email, password)),
    [signInWithTokens],
  );

  const logout = useCallback(async () => {
    const token = getRefreshToken();
    try {
      if (token) await api.logout(token);
    } catch {
      // The session is dropped locally either way.
    } finally {
      endSession();
      setUser(null);
    }
  }, []);

  const clearNotice = useCallback(() => setNotice(null), []);

  const value = useMemo(
    () => ({ user, restoring, notice, clearNotice, login, signInWithTokens, logout, setUser }),
    [user, restoring, notice, clearNotice, login, signInWithTokens, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error('useAuth must be used inside <AuthProvider>');
  return ctx;
}
