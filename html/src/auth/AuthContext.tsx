import { createContext, useCallback, useContext, useMemo, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { setAccessToken } from '../api/client';
import * as api from '../api/endpoints';
import type { User } from '../api/types';

interface AuthState {
  /** The signed-in user, or null. */
  user: User | null;
  /** Log in, then load the profile. Rejects with ApiError on failure. */
  login: (email: string, password: string) => Promise<User>;
  /** Revoke the refresh token (best effort) and forget the session. */
  logout: () => Promise<void>;
  /** Replace the cached profile (e.g. after GET /auth/me). */
  setUser: (user: User) => void;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  // Tokens are kept in memory only: the access token inside the API client,
  // the refresh token here (for logout, and later for refresh-on-401).
  const refreshToken = useRef<string | null>(null);

  const login = useCallback(async (email: string, password: string) => {
    const tokens = await api.login(email, password);
    setAccessToken(tokens.access_token);
    refreshToken.current = tokens.refresh_token;
    try {
      const me = await api.getMe();
      setUser(me);
      return me;
    } catch (err) {
      setAccessToken(null);
      refreshToken.current = null;
      throw err;
    }
  }, []);

  const logout = useCallback(async () => {
    const token = refreshToken.current;
    refreshToken.current = null;
    try {
      if (token) await api.logout(token);
    } catch {
      // The session is dropped locally either way.
    } finally {
      setAccessToken(null);
      setUser(null);
    }
  }, []);

  const value = useMemo(() => ({ user, login, logout, setUser }), [user, login, logout]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error('useAuth must be used inside <AuthProvider>');
  return ctx;
}
