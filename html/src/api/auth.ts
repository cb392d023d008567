// Auth routes beside login/logout/me (API.md, "Auth"). None of them carries
// the Bearer token, so a 401 here never starts a refresh.

import { request } from './client';
import type { Tokens } from './types';

/** POST /auth/refresh: a rotated token pair; 401 when the token is spent. */
export function refreshTokens(refreshToken: string): Promise<Tokens> {
  return request<Tokens>('auth/refresh', {
    method: 'POST',
    body: { refresh_token: refreshToken },
    auth: false,
  });
}

/** POST /auth/password/forgot: 202 whether or not the address exists. */
export function forgotPassword(email: string): Promise<void> {
  return request<void>('auth/password/forgot', {
    method: 'POST',
    body: { email },
    auth: false,
  });
}

/** POST /auth/password/reset: 204; 422 for a bad token or a weak password. */
export function resetPassword(token: string, password: string): Promise<void> {
  return request<void>('auth/password/reset', {
    method: 'POST',
    body: { token, password },
    auth: false,
  });
}

export interface InviteSignup {
  invite_token: string;
  email: string;
  password: string;
  first_name: string;
  last_name: string;
}

/**
 * POST /auth/signup with an invitation: the invitation fixes the role and
 * the dealership, and its e-mail address must be the one given. 201 Tokens.
 */
export function signupWithInvite(body: InviteSignup): Promise<Tokens> {
  return request<Tokens>('auth/signup', { method: 'POST', body, auth: false });
}

/**
 * The password rules of API.md, checked before the server does so the form
 * can say what is missing: 8–100 characters with an upper-case letter, a
 * lower-case letter, a digit and a special character, at most 72 bytes.
 * Returns the unmet rules (empty when the password is acceptable).
 */
export function passwordProblems(password: string): string[] {
  const problems: string[] = [];
  const chars = [...password].length;
  if (chars < 8) problems.push('at least 8 characters');
  if (chars > 100) problems.push('at most 100 characters');
  if (new TextEncoder().encode(password).length > 72) {
    problems.push('at most 72 bytes (fewer accented letters or symbols)');
  }
  if (!/[A-Z]/.test(password)) problems.push('an upper-case letter');
  if (!/[a-z]/.test(password)) problems.push('a lower-case letter');
  if (!/[0-9]/.test(password)) problems.push('a digit');
  // Punctuation or any non-ASCII character counts; a space does not.
  if (!/[^A-Za-z0-9 \x00-\x1f\x7f]/.test(password)) problems.push('a special character');
  if (/[\x00-\x1f\x7f]/.test(password)) problems.push('no control characters');
  return problems;
}
