import type { ReactNode } from 'react';
import { useServiceStatus } from '../useServiceStatus';
import { usePageTitle } from '../usePageTitle';

export function StatusPage() {
  usePageTitle('Service status');
  const { loading, info, health, healthStatus, infoError, healthError, checkedAt, refresh } =
    useServiceStatus();

  const healthy = health?.status === 'healthy';
  const details = health
    ? Object.entries(health).filter(([k]) => k !== 'status' && k !== 'version')
    : [];

  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-end justify-between gap-4">
        <div>
          <h1 className="text-2xl font-semibold tracking-tight text-brand-900">Service status</h1>
          <p className="mt-1 text-sm text-slate-500" aria-live="polite">
            {loading
              ? 'Checking…'
              : checkedAt
                ? `Last checked ${checkedAt.toLocaleTimeString()}`
                : ''}
          </p>
        </div>
        <button
          type="button"
          onClick={refresh}
          disabled={loading}
          className="rounded-md bg-white px-3 py-2 text-sm font-medium text-brand-800 shadow-sm ring-1 ring-inset ring-slate-300 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 disabled:opacity-60"
        >
          Check again
        </button>
      </div>

      <div className="grid gap-6 md:grid-cols-2">
        <Card title="Health" subtitle="GET /health">
          {health ? (
            <>
              <p className="flex items-center gap-2 text-lg font-semibold">
                <span
                  aria-hidden="true"
                  className={`h-3 w-3 rounded-full ${healthy ? 'bg-emerald-500' : 'bg-amber-500'}`}
                />
                <span className={healthy ? 'text-emerald-700' : 'text-amber-700'}>
                  {capitalise(health.status)}
                </span>
                {healthStatus !== null && (
                  <span className="text-xs font-normal text-slate-400">HTTP {healthStatus}</span>
                )}
              </p>
              {details.length > 0 && (
                <dl className="mt-4 space-y-1 text-sm">
                  {details.map(([k, v]) => (
                    <div key={k} className="flex gap-2">
                      <dt className="text-slate-500">{k}:</dt>
                      <dd className="break-all font-mono text-slate-800">
                        {typeof v === 'string' ? v : JSON.stringify(v)}
                      </dd>
                    </div>
                  ))}
                </dl>
              )}
            </>
          ) : (
            <Problem loading={loading} message={healthError} />
          )}
        </Card>

        <Card title="API" subtitle="GET /api/v1/">
          {info ? (
            <dl className="space-y-2 text-sm">
              <Row label="Service">{info.message}</Row>
              <Row label="Version">
                <span className="font-mono">{info.version}</span>
              </Row>
              {health?.version && health.version !== info.version && (
                <Row label="Health version">
                  <span className="font-mono">{health.version}</span>
                </Row>
              )}
              <Row label="Docs">
                <a
                  href={info.docs}
                  className="font-medium text-brand-700 underline-offset-2 hover:underline"
                >
                  {info.docs}
                </a>
              </Row>
            </dl>
          ) : (
            <Problem loading={loading} message={infoError} />
          )}
        </Card>
      </div>
    </div>
  );
}

function Card({ title, subtitle, children }: { title: string; subtitle: string; children: ReactNode }) {
  return (
    <section className="rounded-xl bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <h2 className="text-sm font-semibold uppercase tracking-wide text-slate-500">{title}</h2>
      <p className="mb-4 font-mono text-xs text-slate-400">{subtitle}</p>
      {children}
    </section>
  );
}

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="flex gap-3">
      <dt className="w-28 shrink-0 text-slate-500">{label}</dt>
      <dd className="text-slate-900">{children}</dd>
    </div>
  );
}

function Problem({ loading, message }: { loading: boolean; message: string | null }) {
  if (loading) return <p className="text-sm text-slate-500">Checking…</p>;
  return (
    <p role="alert" className="text-sm text-red-700">
      {message ?? 'No answer.'}
    </p>
  );
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
