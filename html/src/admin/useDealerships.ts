import { useCallback, useEffect, useState } from 'react';
import { listAllDealerships } from '../api/admin';
import type { Dealership } from '../api/admin';
import { errorMessage } from './validation';

/**
 * Every dealership the caller may see (all of them for a super admin), for
 * pickers and for naming dealerships in lists. `enabled` false loads nothing.
 */
export function useDealerships(enabled: boolean) {
  const [dealerships, setDealerships] = useState<Dealership[]>([]);
  const [loading, setLoading] = useState(enabled);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);

  useEffect(() => {
    if (!enabled) {
      setLoading(false);
      return;
    }
    const ctrl = new AbortController();
    setLoading(true);
    listAllDealerships(ctrl.signal)
      .then((all) => {
        setDealerships([...all].sort((a, b) => a.name.localeCompare(b.name)));
        setError(null);
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(errorMessage(err, 'Could not load the dealerships.'));
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [enabled, version]);

  const reload = useCallback(() => setVersion((v) => v + 1), []);
  const nameOf = useCallback(
    (id: number | null | undefined) => {
      if (id == null) return null;
      return dealerships.find((d) => d.id === id)?.name ?? `#${id}`;
    },
    [dealerships],
  );

  return { dealerships, loading, error, reload, nameOf };
}
