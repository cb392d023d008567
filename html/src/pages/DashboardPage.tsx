import { useEffect, useState } from 'react';
import { useNavigate } from 'react-router-dom';
import { ApiError } from '../api/client';
import { getMe } from '../api/endpoints';
import { useAuth } from '../auth/AuthContext';
import { roleLabel } from '../roles';
import { usePageTitle } from '../usePageTitle';

export function DashboardPage() {
  usePageTitle('Dashboard');
  const { user, setUser, logout } = useAuth();
  const navigate = useNavigate();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  // Refresh the profile from GET /api/v1/auth/me on every visit.
  useEffect(() => {
    const ctrl = new AbortController();
    getMe(ctrl.signal)
      .then((me) => {
        setUser(me);
        setError(null);
      })
      .catch(async (err: unknown) => {
        if (ctrl.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) {
          await logout();
          navigate('/login', { replace: true });
          return;
        }
        setError(err instanceof Error ? err.message : 'Could not load your profile.');
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [setUser, logout, navigate]);

  if (!user) return null;

  return (
    <div className="space-y-6">
      <section>
        <h1 className="text-2xl font-semibold tracking-tight text-brand-900">
          Welcome back, {user.first_name}
        </h1>
        <p className="mt-1 text-sm text-slate-500">
          Your F&amp;I training home. Sharpen menu presentations, objection handling and compliance
          with Adam.
        </p>
      </section>

      {error && (
        <div role="alert" className="rounded-md border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900">
          {error}
        </div>
      )}

      <section
        aria-labelledby="profile-heading"
        aria-busy={loading}
        className="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200"
      >
        <div className="flex flex-wrap items-start justify-between gap-4">
          <div className="flex items-center gap-4">
            <span
              aria-hidden="true"
              className="grid h-12 w-12 place-items-center rounded-full bg-brand-100 text-lg font-semibold text-brand-800"
            >
              {initials(user.first_name, user.last_name)}
            </span>
            <div>
              <h2 id="profile-heading" className="text-lg font-semibold text-slate-900">
                {user.first_name} {user.last_name}
              </h2>
              <p className="text-sm text-slate-500">{user.email}</p>
            </div>
          </div>
          <span className="inline-flex items-center rounded-full bg-brand-50 px-3 py-1 text-xs font-semibold text-brand-700 ring-1 ring-inset ring-brand-200">
            {roleLabel(user.role)}
          </span>
        </div>

        <dl className="mt-6 grid gap-4 border-t border-slate-100 pt-6 text-sm sm:grid-cols-3">
          <div>
            <dt className="text-slate-500">Role</dt>
            <dd className="mt-1 font-medium text-slate-900">{roleLabel(user.role)}</dd>
          </div>
          <div>
            <dt className="text-slate-500">Dealership</dt>
            <dd className="mt-1 font-medium text-slate-900">
              {user.dealership_id !== null ? `#${user.dealership_id}` : 'Platform-wide'}
            </dd>
          </div>
          <div>
            <dt className="text-slate-500">Last sign-in</dt>
            <dd className="mt-1 font-medium text-slate-900">
              {user.last_login ? formatDate(user.last_login) : 'First visit'}
            </dd>
          </div>
        </dl>
      </section>
    </div>
  );
}

function initials(first: string, last: string): string {
  return `${first.charAt(0)}${last.charAt(0)}`.toUpperCase() || '?';
}

function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
