// Typed wrappers for the routes the app uses so far.

import { request } from './client';
import type { Health, ServiceInfo, Tokens, User } from './types';

export function login(email: string, password: string): Promise<Tokens> {
  return request<Tokens>('auth/login', {
    method: 'POST',
    body: { email, password },
    auth: false,
  });
}

/** The refresh token itself authorises its revocation: no Bearer, no refresh-on-401. */
export function logout(refreshToken: string): Promise<void> {
  return request<void>('auth/logout', {
    method: 'POST',
    body: { refresh_token: refreshToken },
    auth: false,
  });
}

export function getMe(signal?: AbortSignal): Promise<User> {
  return request<User>('auth/me', { signal });
}

export function getServiceInfo(signal?: AbortSignal): Promise<ServiceInfo> {
  return request<ServiceInfo>(`/api/v1/`, { auth: false, signal });
}

export function getHealth(signal?: AbortSignal): Promise<Health> {
  return request<Health>('/health', { auth: false, signal });
}
