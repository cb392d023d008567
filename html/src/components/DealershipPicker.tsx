import { useCallback, useEffect, useRef, useState } from 'react';
import { listAllDealerships } from '../api/admin';
import type { Dealership } from '../api/admin';

const STORAGE_KEY = 'avatar-adam.dealership';

/**
 * The dealership a super admin works on, shared by the dashboard and the
 * chat and kept for the tab (sessionStorage) so it survives a reload.
 */
export function usePickedDealership(): [number | null, (id: number | null) => void] {
  const [id, setId] = useState<number | null>(() => {
    try {
      const v = Number(sessionStorage.getItem(STORAGE_KEY));
      return Number.isInteger(v) && v > 0 ? v : null;
    } catch {
      return null;
    }
  });
  const set = useCallback((next: number | null) => {
    setId(next);
    try {
      if (next) sessionStorage.setItem(STORAGE_KEY, String(next));
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch {
      // Without storage the choice lasts as long as the page.
    }
  }, []);
  return [id, set];
}

/** A labelled select of the dealerships the caller may see (GET /dealerships/). */
export function DealershipPicker({
  id,
  label,
  value,
  onChange,
  allowAll = false,
  onLoaded,
  className = '',
}: {
  id: string;
  label: string;
  value: number | null;
  onChange: (id: number | null) => void;
  /** Offer "All dealerships" (null). */
  allowAll?: boolean;
  onLoaded?: (dealerships: Dealership[]) => void;
  className?: string;
}) {
  const [dealerships, setDealerships] = useState<Dealership[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  // A notification only: a new callback does not reload the list.
  const onLoadedRef = useRef(onLoaded);
  onLoadedRef.current = onLoaded;

  useEffect(() => {
    const ctrl = new AbortController();
    listAllDealerships(ctrl.signal)
      .then((list) => {
        if (ctrl.signal.aborted) return;
        const sorted = [...list].sort((a, b) => a.name.localeCompare(b.name));
        setDealerships(sorted);
        onLoadedRef.current?.(sorted);
      })
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return;
        setError(err instanceof Error ? err.message : 'Could not load the dealerships.');
      });
    return () => ctrl.abort();
  }, []);

  // A remembered dealership that no longer exists is dropped.
  useEffect(() => {
    if (dealerships && value !== null && !dealerships.some((d) => d.id === value)) {
      onChange(null);
    }
  }, [dealerships, value, onChange]);

  return (
    <div className={className}>
      <label htmlFor={id} className="mb-1 block text-xs font-medium text-slate-600">
        {label}
      </label>
      <select
        id={id}
        value={value ?? ''}
        onChange={(e) => onChange(e.target.value ? Number(e.target.value) : null)}
        disabled={!dealerships}
        aria-invalid={!allowAll && value === null ? true : undefined}
        aria-describedby={error ? `${id}-error` : undefined}
        data-testid="dealership-picker"
        className="block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm text-slate-900 shadow-sm focus:border-brand-500 focus:outline-none focus:ring-2 focus:ring-brand-200 disabled:bg-slate-100"
      >
        {allowAll ? (
          <option value="">All dealerships</option>
        ) : (
          <option value="">{dealerships ? 'Choose a dealership…' : 'Loading…'}</option>
        )}
        {dealerships?.map((d) => (
          <option key={d.id} value={d.id}>
            {d.name}
            {d.is_active ? '' : ' (inactive)'}
          </option>
        ))}
      </select>
      {error && (
        <p id={`${id}-error`} role="alert" className="mt-1 text-xs text-red-700">
          {error}
        </p>
      )}
    </div>
  );
}
