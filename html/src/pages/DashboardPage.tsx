import { useEffect, useState } from 'react';
import type { ReactNode } from 'react';
import { Link } from 'react-router-dom';
import { getSummary } from '../api/analytics';
import type { AnalyticsSummary } from '../api/analytics';
import { listSessions } from '../api/chat';
import type { ChatSession } from '../api/chat';
import { getMe } from '../api/endpoints';
import { useAuth } from '../auth/AuthContext';
import { DealershipPicker, usePickedDealership } from '../components/DealershipPicker';
import { ModeBadge } from '../components/ModeBadge';
import { formatDateTime, formatDay, formatNumber, humanTopic } from '../format';
import { roleLabel } from '../roles';
import { usePageTitle } from '../usePageTitle';

const RANGES = [
  { days: 7, label: 'Last 7 days' },
  { days: 30, label: 'Last 30 days' },
  { days: 90, label: 'Last 90 days' },
];

const DAY_MS = 86_400_000;

/**
 * The home page, by role: a trainee sees their recent sessions and own
 * usage; a dealership admin the dealership's usage, active users, top
 * questions and report counts; a super admin the same for all dealerships
 * or the one picked.
 */
export function DashboardPage() {
  usePageTitle('Dashboard');
  const { user, setUser } = useAuth();
  const isAdmin = user?.role === 'super_admin' || user?.role === 'dealership_admin';
  const isSuper = user?.role === 'super_admin';

  const [days, setDays] = useState(30);
  const [dealershipId, setDealershipId] = usePickedDealership();
  const [summary, setSummary] = useState<AnalyticsSummary | null>(null);
  const [summaryError, setSummaryError] = useState<string | null>(null);
  const [summaryLoading, setSummaryLoading] = useState(true);
  const [sessions, setSessions] = useState<ChatSession[] | null>(null);
  const [sessionsError, setSessionsError] = useState<string | null>(null);
  const [dealershipNames, setDealershipNames] = useState<Map<number, string>>(new Map());

  // Refresh the profile (role, dealership) on every visit.
  useEffect(() => {
    const ctrl = new AbortController();
    getMe(ctrl.signal)
      .then((me) => {
        if (!ctrl.signal.aborted) setUser(me);
      })
      .catch(() => {
        // A failed refresh of the profile keeps the one from sign-in; an
        // ended session is handled by the refresh module.
      });
    return () => ctrl.abort();
  }, [setUser]);

  useEffect(() => {
    const ctrl = new AbortController();
    setSummaryLoading(true);
    setSummaryError(null);
    const to = new Date();
    const from = new Date(to.getTime() - days * DAY_MS);
    getSummary(
      {
        from: from.toISOString(),
        to: to.toISOString(),
        dealership_id: isSuper && dealershipId ? dealershipId : undefined,
      },
      ctrl.signal,
    )
      .then((s) => {
        if (!ctrl.signal.aborted) setSummary(s);
      })
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return;
        setSummary(null);
        setSummaryError(err instanceof Error ? err.message : 'Could not load the figures.');
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setSummaryLoading(false);
      });
    return () => ctrl.abort();
  }, [days, dealershipId, isSuper]);

  useEffect(() => {
    const ctrl = new AbortController();
    listSessions(5, ctrl.signal)
      .then((list) => {
        if (!ctrl.signal.aborted) setSessions(list);
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) {
          setSessionsError(err instanceof Error ? err.message : 'Could not load your sessions.');
        }
      });
    return () => ctrl.abort();
  }, []);

  if (!user) return null;

  const scopeLabel = !isAdmin
    ? 'Your training'
    : isSuper
      ? dealershipId
        ? (dealershipNames.get(dealershipId) ?? 'The dealership')
        : 'All dealerships'
      : 'Your dealership';

  const recent = <RecentSessions sessions={sessions} error={sessionsError} />;

  return (
    <div className="space-y-6">
      <section className="flex flex-wrap items-end justify-between gap-4">
        <div className="min-w-0">
          <h1 className="text-2xl font-semibold tracking-tight text-brand-900">
            Welcome back, {user.first_name}
          </h1>
          <p className="mt-1 text-sm text-slate-500">
            {roleLabel(user.role)}
            {user.last_login ? ` · last sign-in ${formatDateTime(user.last_login)}` : ''}
          </p>
        </div>
        <div className="flex flex-wrap gap-2">
          <Link
            to="/chat"
            className="rounded-md bg-brand-700 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2"
          >
            Ask Adam
          </Link>
          <Link
            to="/chat?mode=roleplay"
            className="rounded-md bg-white px-4 py-2 text-sm font-semibold text-brand-800 shadow-sm ring-1 ring-inset ring-slate-300 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
          >
            Start a role-play
          </Link>
        </div>
      </section>

      {!isAdmin && recent}

      <section
        aria-labelledby="usage-heading"
        aria-busy={summaryLoading}
        className="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200 sm:p-6"
        data-testid="usage-summary"
      >
        <div className="flex flex-wrap items-end justify-between gap-4">
          <div>
            <h2 id="usage-heading" className="text-lg font-semibold text-slate-900">
              {scopeLabel}
            </h2>
            {summary && (
              <p className="text-xs text-slate-500">
                {formatDay(summary.from)} – {formatDay(summary.to)}
              </p>
            )}
          </div>
          <div className="flex w-full flex-wrap gap-3 sm:w-auto">
            {isSuper && (
              <DealershipPicker
                id="dashboard-dealership"
                label="Dealership"
                value={dealershipId}
                onChange={setDealershipId}
                onLoaded={(list) => setDealershipNames(new Map(list.map((d) => [d.id, d.name])))}
                allowAll
                className="w-full sm:w-56"
              />
            )}
            <div className="w-full sm:w-40">
              <label htmlFor="dashboard-range" className="mb-1 block text-xs font-medium text-slate-600">
                Period
              </label>
              <select
                id="dashboard-range"
                value={days}
                onChange={(e) => setDays(Number(e.target.value))}
                className="block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm focus:border-brand-500 focus:outline-none focus:ring-2 focus:ring-brand-200"
              >
                {RANGES.map((r) => (
                  <option key={r.days} value={r.days}>
                    {r.label}
                  </option>
                ))}
              </select>
            </div>
          </div>
        </div>

        {summaryError && (
          <div
            role="alert"
            className="mt-4 rounded-md border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900"
          >
            {summaryError}
          </div>
        )}

        {summaryLoading && !summary && (
          <p role="status" className="mt-4 text-sm text-slate-500">
            Loading the figures…
          </p>
        )}

        {summary && (
          <dl
            className={`mt-4 grid grid-cols-2 gap-3 sm:grid-cols-3 ${isAdmin ? 'lg:grid-cols-6' : 'lg:grid-cols-5'}`}
          >
            <Stat label={isAdmin ? 'Sessions' : 'Your sessions'} value={summary.sessions} />
            {isAdmin && <Stat label="Active users" value={summary.active_users} />}
            <Stat
              label={isAdmin ? 'Trainee messages' : 'Messages you sent'}
              value={summary.user_messages}
            />
            {isAdmin && <Stat label="All messages" value={summary.messages} />}
            <Stat label="Voice minutes" value={summary.voice_minutes} decimals={1} />
            <Stat
              label="Tokens"
              value={summary.tokens.total}
              hint={`${formatNumber(summary.tokens.prompt)} in, ${formatNumber(summary.tokens.completion)} out`}
            />
            {!isAdmin && <Stat label="Requests" value={summary.requests} />}
          </dl>
        )}
      </section>

      {summary && (
        <div className="grid gap-6 lg:grid-cols-2">
          {isAdmin && <ReportCounts reports={summary.reports} />}
          <RankedList
            id="top-questions"
            title={isAdmin ? 'Top questions' : 'Your most asked questions'}
            empty="No questions in this period."
            items={summary.top_questions.map((q) => ({ label: q.question, count: q.count }))}
          />
          <RankedList
            id="top-topics"
            title="Topics Adam cited"
            empty="No answers from the knowledge base in this period."
            items={summary.top_topics.map((t) => ({ label: humanTopic(t.topic), count: t.count }))}
          />
          {!isAdmin && (
            <ReportCounts reports={summary.reports} own />
          )}
        </div>
      )}

      {isAdmin && recent}
    </div>
  );
}

function Stat({
  label,
  value,
  decimals = 0,
  hint,
}: {
  label: string;
  value: number;
  decimals?: number;
  hint?: string;
}) {
  return (
    <div className="rounded-lg bg-slate-50 px-3 py-3 ring-1 ring-inset ring-slate-200">
      <dt className="text-xs font-medium text-slate-500">{label}</dt>
      <dd className="mt-1 text-xl font-semibold tabular-nums text-brand-900">
        {formatNumber(value, decimals)}
      </dd>
      {hint && <dd className="text-[11px] text-slate-500">{hint}</dd>}
    </div>
  );
}

function Card({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section
      aria-labelledby={id}
      className="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200 sm:p-6"
    >
      <h2 id={id} className="text-base font-semibold text-slate-900">
        {title}
      </h2>
      <div className="mt-3">{children}</div>
    </section>
  );
}

function ReportCounts({
  reports,
  own = false,
}: {
  reports: AnalyticsSummary['reports'];
  own?: boolean;
}) {
  return (
    <Card id="reports-heading" title={own ? 'Your reports' : 'Reports'}>
      <dl className="grid grid-cols-3 gap-3" data-testid="report-counts">
        <Stat label="Open" value={reports.open} />
        <Stat label="Resolved" value={reports.resolved} />
        <Stat label="Dismissed" value={reports.dismissed} />
      </dl>
      <p className="mt-3 text-xs text-slate-500">
        {formatNumber(reports.inaccuracy)} inaccuracy report{reports.inaccuracy === 1 ? '' : 's'},{' '}
        {formatNumber(reports.send_to_team)} message{reports.send_to_team === 1 ? '' : 's'} to the
        team in this period.
      </p>
    </Card>
  );
}

function RankedList({
  id,
  title,
  items,
  empty,
}: {
  id: string;
  title: string;
  items: Array<{ label: string; count: number }>;
  empty: string;
}) {
  const max = Math.max(1, ...items.map((i) => i.count));
  return (
    <Card id={id} title={title}>
      {items.length === 0 ? (
        <p className="text-sm text-slate-500">{empty}</p>
      ) : (
        <ol className="space-y-2" data-testid={id}>
          {items.map((item, i) => (
            <li key={`${i}-${item.label}`} className="text-sm">
              <div className="flex items-start justify-between gap-3">
                <span className="min-w-0 break-words text-slate-800">{item.label}</span>
                <span className="shrink-0 tabular-nums text-slate-500">
                  {formatNumber(item.count)}
                  <span className="sr-only"> times</span>
                </span>
              </div>
              <div aria-hidden="true" className="mt-1 h-1.5 rounded-full bg-slate-100">
                <div
                  className="h-1.5 rounded-full bg-brand-400"
                  style={{ width: `${Math.round((item.count / max) * 100)}%` }}
                />
              </div>
            </li>
          ))}
        </ol>
      )}
    </Card>
  );
}

function RecentSessions({
  sessions,
  error,
}: {
  sessions: ChatSession[] | null;
  error: string | null;
}) {
  return (
    <Card id="recent-heading" title="Recent sessions">
      {error ? (
        <p role="alert" className="text-sm text-red-700">
          {error}
        </p>
      ) : !sessions ? (
        <p className="text-sm text-slate-500">Loading…</p>
      ) : sessions.length === 0 ? (
        <p className="text-sm text-slate-500">
          No sessions yet.{' '}
          <Link to="/chat" className="font-medium text-brand-700 hover:underline">
            Ask Adam your first question
          </Link>
          .
        </p>
      ) : (
        <ul className="divide-y divide-slate-100" data-testid="recent-sessions">
          {sessions.map((s) => (
            <li key={s.session_id}>
              <Link
                to={`/chat?session=${encodeURIComponent(s.session_id)}`}
                className="flex items-center justify-between gap-3 rounded px-1 py-2.5 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
              >
                <span className="min-w-0">
                  <span className="block truncate text-sm font-medium text-slate-900">
                    {s.title || 'Untitled session'}
                  </span>
                  <span className="block text-xs text-slate-500">
                    {formatDateTime(s.last_at)} · {s.messages} message{s.messages === 1 ? '' : 's'}
                  </span>
                </span>
                <ModeBadge mode={s.mode} />
              </Link>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}
