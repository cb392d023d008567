import { useState } from 'react';
import { NavLink, Outlet, useNavigate } from 'react-router-dom';
import { useAuth } from '../auth/AuthContext';
import { roleLabel } from '../roles';
import { AdminNav } from './AdminNav';
import { Logo } from './Logo';
import { StatusFooter } from './StatusFooter';

const navClass = ({ isActive }: { isActive: boolean }) =>
  `rounded-md px-3 py-2 text-sm font-medium transition-colors focus:outline-none focus-visible:ring-2 focus-visible:ring-accent-400 ${
    isActive ? 'bg-brand-800 text-white' : 'text-brand-100 hover:bg-brand-800/60 hover:text-white'
  }`;

export function Layout() {
  const { user, logout } = useAuth();
  const navigate = useNavigate();
  const [leaving, setLeaving] = useState(false);

  async function onLogout() {
    setLeaving(true);
    await logout();
    setLeaving(false);
    navigate('/login', { replace: true });
  }

  return (
    <div className="flex min-h-screen flex-col bg-slate-50">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-4 focus:z-50 focus:rounded focus:bg-white focus:px-3 focus:py-2 focus:text-brand-900 focus:shadow"
      >
        Skip to content
      </a>
      <header className="bg-brand-900 shadow">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-x-4 gap-y-2 px-4 py-3 sm:px-6">
          <div className="flex flex-wrap items-center gap-x-3 gap-y-2 sm:gap-6">
            <NavLink to="/" className="rounded focus:outline-none focus-visible:ring-2 focus-visible:ring-accent-400">
              <Logo inverted />
            </NavLink>
            <nav aria-label="Main" className="flex items-center gap-1">
              {user && (
                <NavLink to="/" end className={navClass}>
                  Dashboard
                </NavLink>
              )}
              {user && (
                <NavLink to="/chat" className={navClass} data-testid="nav-chat">
                  Chat
                </NavLink>
              )}
              {user && (
                <NavLink to="/voice" className={navClass} data-testid="nav-voice">
                  Voice
                </NavLink>
              )}
              <NavLink to="/status" className={navClass}>
                Status
              </NavLink>
            </nav>
          </div>
          <div className="flex items-center gap-3">
            {user ? (
              <>
                <div className="hidden text-right leading-tight md:block">
                  <div className="text-sm font-medium text-white">
                    {user.first_name} {user.last_name}
                  </div>
                  <div className="text-xs text-brand-200">{roleLabel(user.role)}</div>
                </div>
                <button
                  type="button"
                  onClick={onLogout}
                  disabled={leaving}
                  className="rounded-md border border-brand-600 px-3 py-1.5 text-sm font-medium text-white transition-colors hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-accent-400 disabled:opacity-60"
                >
                  {leaving ? 'Logging out…' : 'Log out'}
                </button>
              </>
            ) : (
              <NavLink
                to="/login"
                className="rounded-md bg-accent-500 px-3 py-1.5 text-sm font-semibold text-brand-950 hover:bg-accent-400 focus:outline-none focus-visible:ring-2 focus-visible:ring-white"
              >
                Sign in
              </NavLink>
            )}
          </div>
        </div>
      </header>
      <AdminNav />
      <main id="main" className="mx-auto w-full max-w-6xl flex-1 px-4 py-8 sm:px-6">
        <Outlet />
      </main>
      <StatusFooter />
    </div>
  );
}
