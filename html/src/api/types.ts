// Shapes from the HTTP contract (API.md, "Shared objects" and "Service").

export type Role = 'super_admin' | 'dealership_admin' | 'user';

export interface User {
  id: number;
  email: string;
  first_name: string;
  last_name: string;
  role: Role;
  is_active: boolean;
  is_verified: boolean;
  dealership_id: number | null;
  last_login: string | null;
  created_at: string;
  updated_at: string;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: 'bearer';
  expires_in: number;
}

/** GET /api/v1/ */
export interface ServiceInfo {
  message: string;
  version: string;
  docs: string;
}

/** GET /health (200 "healthy", 503 "degraded" with the failing dependency). */
export interface Health {
  status: 'healthy' | 'degraded' | string;
  version?: string;
  [key: string]: unknown;
}

/** The error body every route of our server uses. */
export interface ErrorBody {
  error: {
    message: string;
    type?: string;
    path?: string;
    details?: ValidationDetail[];
  };
}

export interface ValidationDetail {
  field: string;
  message: string;
  type?: string;
}
