import { useCallback, useEffect, useState } from 'react';
import { ApiError } from './api/client';
import { getHealth, getServiceInfo } from './api/endpoints';
import type { Health, ServiceInfo } from './api/types';

export interface ServiceStatus {
  loading: boolean;
  info: ServiceInfo | null;
  health: Health | null;
  /** HTTP status of /health (200 healthy, 503 degraded, 0 unreachable). */
  healthStatus: number | null;
  infoError: string | null;
  healthError: string | null;
  checkedAt: Date | null;
  refresh: () => void;
}

/** Calls GET /api/v1/ and GET /health (on mount and on refresh()). */
export function useServiceStatus(): ServiceStatus {
  const [state, setState] = useState<Omit<ServiceStatus, 'refresh'>>({
    loading: true,
    info: null,
    health: null,
    healthStatus: null,
    infoError: null,
    healthError: null,
    checkedAt: null,
  });
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true }));

    const infoP = getServiceInfo(ctrl.signal).then(
      (info) => ({ info, infoError: null }),
      (err: unknown) => ({ info: null, infoError: messageOf(err) }),
    );
    const healthP = getHealth(ctrl.signal).then(
      (health) => ({ health, healthStatus: 200, healthError: null }),
      (err: unknown) => {
        // 503 still carries {"status":"degraded", …}: show it rather than fail.
        if (err instanceof ApiError && isHealth(err.body)) {
          return { health: err.body, healthStatus: err.status, healthError: null };
        }
        return {
          health: null,
          healthStatus: err instanceof ApiError ? err.status : null,
          healthError: messageOf(err),
        };
      },
    );

    Promise.all([infoP, healthP]).then(([i, h]) => {
      if (ctrl.signal.aborted) return;
      setState({ loading: false, ...i, ...h, checkedAt: new Date() });
    });
    return () => ctrl.abort();
  }, [tick]);

  return { ...state, refresh };
}

function isHealth(body: unknown): body is Health {
  return !!body && typeof body === 'object' && typeof (body as Health).status === 'string';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : 'Unknown error';
}
