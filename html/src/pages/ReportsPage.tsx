import { useCallback, useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { listReports, updateReport } from '../api/admin';
import type { Report, ReportKind, ReportStatus } from '../api/admin';
import { formatDateTime } from '../admin/format';
import {
  KIND_LABELS,
  kindLabel,
  REPORT_STATUSES,
  reportExcerpt,
  reportSections,
  reportStatusLabel,
} from '../admin/reports';
import { useDealerships } from '../admin/useDealerships';
import { checkNote, errorMessage, fieldErrorsFrom } from '../admin/validation';
import { useAuth } from '../auth/AuthContext';
import { buttonClass } from '../components/buttons';
import { DealershipSelect } from '../components/DealershipSelect';
import { Dialog } from '../components/Dialog';
import { SelectField, TextAreaField } from '../components/FormField';
import { Badge, ErrorNotice, SuccessNotice } from '../components/Notice';
import type { BadgeTone } from '../components/Notice';
import { PageHeader } from '../components/PageHeader';
import { Pager } from '../components/Pager';
import { usePageTitle } from '../usePageTitle';

const PAGE = 20;

const STATUS_TONES: Record<ReportStatus, BadgeTone> = {
  open: 'warning',
  resolved: 'success',
  dismissed: 'neutral',
};

/** Reports of inaccurate answers and messages to the team: SA all, DA its dealership's. */
export function ReportsPage() {
  usePageTitle('Reports');
  const { user } = useAuth();
  const isSA = user?.role === 'super_admin';
  const { dealerships } = useDealerships(isSA);

  const [status, setStatus] = useState<string>('open');
  const [kind, setKind] = useState('');
  const [dealership, setDealership] = useState('');
  const [skip, setSkip] = useState(0);
  const [reports, setReports] = useState<Report[] | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [reviewing, setReviewing] = useState<Report | null>(null);
  const [version, setVersion] = useState(0);
  const reload = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    listReports(
      {
        status: status ? (status as ReportStatus) : undefined,
        kind: kind ? (kind as ReportKind) : undefined,
        dealership_id: isSA && dealership ? Number(dealership) : undefined,
        skip,
        limit: PAGE,
      },
      ctrl.signal,
    )
      .then((list) => {
        setReports(list);
        setError(null);
        if (list.length === 0 && skip > 0) setSkip(Math.max(0, skip - PAGE));
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(errorMessage(err, 'Could not load the reports.'));
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [status, kind, dealership, skip, isSA, version]);

  function filter(setter: (v: string) => void) {
    return (v: string) => {
      setter(v);
      setSkip(0);
    };
  }

  return (
    <div className="space-y-6">
      <PageHeader title="Reports">
        What trainees flagged as inaccurate or sent to the team. Review each one and resolve or dismiss it.
      </PageHeader>

      <div
        className="grid gap-4 rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200 sm:grid-cols-3"
        role="search"
        aria-label="Filter reports"
      >
        <SelectField
          label="Status"
          value={status}
          onValue={filter(setStatus)}
          options={[
            { value: '', label: 'All' },
            ...REPORT_STATUSES.map((s) => ({ value: s, label: reportStatusLabel(s) })),
          ]}
          testId="reports-filter-status"
        />
        <SelectField
          label="Kind"
          value={kind}
          onValue={filter(setKind)}
          options={[
            { value: '', label: 'All kinds' },
            ...Object.entries(KIND_LABELS).map(([value, label]) => ({ value, label })),
          ]}
          testId="reports-filter-kind"
        />
        {isSA && (
          <DealershipSelect
            dealerships={dealerships}
            value={dealership}
            onValue={filter(setDealership)}
            emptyLabel="All dealerships"
            testId="reports-filter-dealership"
          />
        )}
      </div>

      <div aria-live="polite">
        <SuccessNotice testId="reports-notice">{notice}</SuccessNotice>
      </div>
      <ErrorNotice message={error} testId="reports-error" />

      <section aria-labelledby="reports-heading" aria-busy={loading}>
        <h2 id="reports-heading" className="sr-only">
          Report list
        </h2>
        {reports && reports.length === 0 && !loading && (
          <p className="py-6 text-center text-sm text-slate-500" data-testid="reports-empty">
            No reports match these filters.
          </p>
        )}
        {reports && reports.length > 0 && (
          <ul className="divide-y divide-slate-100 rounded-xl bg-white shadow-sm ring-1 ring-slate-200">
            {reports.map((r) => (
              <li
                key={r.id}
                data-testid="report-row"
                data-report-id={r.id}
                data-status={r.status}
                data-kind={r.kind}
                className="flex flex-col gap-3 px-4 py-3 lg:flex-row lg:items-center lg:justify-between"
              >
                <div className="min-w-0">
                  <p className="flex flex-wrap items-center gap-2 text-sm font-medium text-slate-900">
                    <span>{kindLabel(r.kind)}</span>
                    <span data-testid="report-row-status">
                      <Badge tone={STATUS_TONES[r.status] ?? 'neutral'}>{reportStatusLabel(r.status)}</Badge>
                    </span>
                  </p>
                  {reportExcerpt(r) && <p className="break-words text-sm text-slate-700">{reportExcerpt(r)}</p>}
                  <p className="text-xs text-slate-500">
                    #{r.id} · {formatDateTime(r.created_at)} · {r.reporter_email ?? 'deleted user'}
                    {isSA && r.dealership_name ? ` · ${r.dealership_name}` : ''}
                  </p>
                </div>
                <button
                  type="button"
                  className={buttonClass('secondary', 'sm')}
                  onClick={() => setReviewing(r)}
                  aria-label={`Review report #${r.id}`}
                  data-testid="report-review"
                >
                  Review
                </button>
              </li>
            ))}
          </ul>
        )}
        {loading && !reports && (
          <p className="text-sm text-slate-500" role="status">
            Loading reports…
          </p>
        )}
      </section>

      {reports && (reports.length > 0 || skip > 0) && (
        <Pager skip={skip} limit={PAGE} shown={reports.length} onSkip={setSkip} label="Reports" testIdPrefix="reports" />
      )}

      {reviewing && (
        <ReviewDialog
          report={reviewing}
          onClose={() => setReviewing(null)}
          onSaved={(updated) => {
            setReviewing(null);
            setNotice(`Report #${updated.id} is now ${reportStatusLabel(updated.status).toLowerCase()}.`);
            setReports((list) => list?.map((x) => (x.id === updated.id ? updated : x)) ?? null);
            // A report that left the filtered status goes on the next load.
            if (status && updated.status !== status) reload();
          }}
        />
      )}
    </div>
  );
}

function ReviewDialog({
  report,
  onClose,
  onSaved,
}: {
  report: Report;
  onClose: () => void;
  onSaved: (r: Report) => void;
}) {
  const [status, setStatus] = useState<ReportStatus>(report.status === 'open' ? 'resolved' : report.status);
  const [note, setNote] = useState(report.resolution_note ?? '');
  const [noteError, setNoteError] = useState<string | undefined>();
  const [error, setError] = useState<string | null>(null);
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const sections = reportSections(report);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const why = checkNote(note) ?? undefined;
    setNoteError(why);
    setError(null);
    setOther([]);
    if (why) return;
    setBusy(true);
    try {
      // An emptied note is sent as '' (an absent one keeps the old note).
      const body =
        note === '' && !report.resolution_note ? { status } : { status, resolution_note: note };
      onSaved(await updateReport(report.id, body));
    } catch (err) {
      const mapped = fieldErrorsFrom(err, ['resolution_note', 'status'] as const);
      setNoteError(mapped.fields.resolution_note);
      setOther([...(mapped.fields.status ? [mapped.fields.status] : []), ...mapped.other]);
      setError(errorMessage(err));
      setBusy(false);
    }
  }

  return (
    <Dialog
      title={`Report #${report.id}: ${kindLabel(report.kind)}`}
      onClose={() => !busy && onClose()}
      wide
      testId="report-dialog"
      description={
        <>
          {formatDateTime(report.created_at)} · {report.reporter_email ?? 'deleted user'}
          {report.dealership_name ? ` · ${report.dealership_name}` : ''}
          {report.mode ? ` · ${report.mode} mode` : ''}
          {' · '}
          <span data-testid="report-mailed">
            {report.mailed_at ? `mailed to the team ${formatDateTime(report.mailed_at)}` : 'not mailed'}
          </span>
        </>
      }
    >
      <div className="space-y-4 focus:outline-none" data-testid="report-content" tabIndex={-1} data-autofocus="">
        {sections.length === 0 && <p className="text-sm text-slate-500">The report has no content.</p>}
        {sections.map((s, i) => (
          <section key={`${s.label}-${i}`}>
            <h3 className="text-sm font-semibold text-slate-700">{s.label}</h3>
            {'text' in s ? (
              <p className="mt-1 whitespace-pre-wrap break-words rounded-md bg-slate-50 p-3 text-sm text-slate-800">
                {s.text}
              </p>
            ) : (
              <ol className="mt-1 space-y-2">
                {s.turns.map((t, j) => (
                  <li key={j} className="rounded-md bg-slate-50 p-3 text-sm">
                    <span className="block text-xs font-semibold uppercase tracking-wide text-slate-500">
                      {t.role === 'assistant' ? 'Adam' : t.role === 'user' ? 'Trainee' : t.role}
                    </span>
                    <span className="whitespace-pre-wrap break-words text-slate-800">{t.content}</span>
                  </li>
                ))}
              </ol>
            )}
          </section>
        ))}
        {report.session_id && (
          <p className="text-xs text-slate-500">
            Session <span className="font-mono">{report.session_id}</span>
          </p>
        )}
      </div>

      <form onSubmit={submit} noValidate className="mt-6 space-y-4 border-t border-slate-100 pt-4" data-testid="report-resolve-form">
        <SelectField
          label="Outcome"
          value={status}
          onValue={(v) => setStatus(v as ReportStatus)}
          options={REPORT_STATUSES.map((s) => ({
            value: s,
            label: s === 'open' ? 'Open (reopen)' : reportStatusLabel(s),
          }))}
          testId="report-resolve-status"
        />
        <TextAreaField
          label="Resolution note"
          rows={3}
          value={note}
          onValue={setNote}
          error={noteError}
          hint="What was done about it; up to 5000 characters."
          testId="report-resolve-note"
        />
        <ErrorNotice message={error} details={other} testId="report-resolve-error" />
        <div className="flex flex-wrap justify-end gap-2">
          <button type="button" className={buttonClass('secondary')} onClick={onClose} disabled={busy}>
            Close
          </button>
          <button type="submit" className={buttonClass('primary')} disabled={busy} data-testid="report-resolve-submit">
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
