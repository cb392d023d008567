import { NavLink } from 'react-router-dom';
import { adminPagesFor } from '../admin/access';
import { useAuth } from '../auth/AuthContext';

const linkClass = ({ isActive }: { isActive: boolean }) =>
  `whitespace-nowrap rounded-md px-3 py-1.5 text-sm font-medium transition-colors focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 ${
    isActive ? 'bg-brand-100 text-brand-900' : 'text-slate-600 hover:bg-slate-100 hover:text-brand-900'
  }`;

/** The administration pages the signed-in user may open; nothing for a trainee. */
export function AdminNav() {
  const { user } = useAuth();
  const pages = adminPagesFor(user?.role);
  if (pages.length === 0) return null;
  return (
    <div className="border-b border-slate-200 bg-white">
      <nav
        aria-label="Administration"
        className="mx-auto flex max-w-6xl items-center gap-1 overflow-x-auto px-4 py-2 sm:px-6"
        data-testid="admin-nav"
      >
        <span className="mr-2 hidden text-xs font-semibold uppercase tracking-wide text-slate-400 sm:inline">Admin</span>
        {pages.map((p) => (
          <NavLink key={p.path} to={p.path} className={linkClass} data-testid={`admin-nav-${p.path.slice(1)}`}>
            {p.label}
          </NavLink>
        ))}
      </nav>
    </div>
  );
}
