// The avatar routes (API.md, "Avatar"): the voices on offer and a session
// with the avatar provider. Without a provider the server answers POST
// /session with 503 and the web app draws its own avatar.

import { ApiError, request } from './client';

export interface AvatarVoice {
  voice_id: string;
  name: string;
}

export interface AvatarVoices {
  voices: AvatarVoice[];
  /** "builtin" or "heygen". */
  provider?: string;
}

export interface AvatarSession {
  session_id: string;
  /** For the provider's SDK only; never shown. */
  session_token: string;
}

export async function listAvatarVoices(signal?: AbortSignal): Promise<AvatarVoices> {
  const out = await request<AvatarVoices>('avatar/voices', { signal });
  return {
    voices: Array.isArray(out?.voices) ? out.voices.filter((v) => v && typeof v.voice_id === 'string') : [],
    provider: typeof out?.provider === 'string' ? out.provider : undefined,
  };
}

export function createAvatarSession(voiceId?: string, signal?: AbortSignal): Promise<AvatarSession> {
  return request<AvatarSession>('avatar/session', {
    method: 'POST',
    body: voiceId ? { voice_id: voiceId } : {},
    signal,
  });
}

/** The 503 of a server without an avatar provider (the built-in avatar is used). */
export function isNoAvatarProvider(err: unknown): boolean {
  return err instanceof ApiError && err.status === 503;
}
