import { Link } from 'react-router-dom';
import { useServiceStatus } from '../useServiceStatus';

/** A one-line footer with the API version and health, linking to /status. */
export function StatusFooter() {
  const { loading, info, health, healthError } = useServiceStatus();

  let dot = 'bg-slate-300';
  let label = 'Checking service…';
  if (!loading) {
    if (health?.status === 'healthy') {
      dot = 'bg-emerald-500';
      label = 'All systems operational';
    } else if (health) {
      dot = 'bg-amber-500';
      label = `Service ${health.status}`;
    } else {
      dot = 'bg-red-500';
      label = healthError ? 'Service unreachable' : 'Status unknown';
    }
  }

  return (
    <footer className="border-t border-slate-200 bg-white">
      <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-2 px-4 py-3 text-xs text-slate-500 sm:px-6">
        <span>© {new Date().getFullYear()} Avatar Adam</span>
        <Link
          to="/status"
          className="inline-flex items-center gap-2 rounded px-1 hover:text-brand-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
        >
          <span aria-hidden="true" className={`h-2 w-2 rounded-full ${dot}`} />
          <span role="status" aria-live="polite">
            {label}
          </span>
          {info?.version && <span className="text-slate-400">· API v{info.version}</span>}
        </Link>
      </div>
    </footer>
  );
}
