import type { ReactNode } from 'react';
import type { Role } from '../api/types';
import { useAuth } from '../auth/AuthContext';

/**
 * Renders its children for a signed-in user holding one of `roles`; else a
 * short "no access" page (the server refuses these routes anyway).
 * Use inside RequireAuth.
 */
export function RequireRole({ roles, children }: { roles: readonly Role[]; children: ReactNode }) {
  const { user } = useAuth();
  if (!user) return null;
  if (!roles.includes(user.role)) {
    return (
      <div className="py-16 text-center" data-testid="no-access">
        <h1 className="text-2xl font-semibold tracking-tight text-brand-900">No access</h1>
        <p className="mt-2 text-sm text-slate-500">This page is for administrators.</p>
      </div>
    );
  }
  return <>{children}</>;
}
