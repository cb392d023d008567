import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { useAuth } from './AuthContext';

/**
 * Renders its children for a signed-in user, else redirects to /login (after
 * waiting for a session kept across a reload to be restored).
 */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { user, restoring } = useAuth();
  const location = useLocation();
  if (!user && restoring) {
    return (
      <p role="status" className="py-16 text-center text-sm text-slate-500">
        Restoring your session…
      </p>
    );
  }
  if (!user) {
    return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  }
  return <>{children}</>;
}
