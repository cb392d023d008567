import { useCallback, useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { Link } from 'react-router-dom';
import {
  createDealership,
  deleteDealership,
  listDealerships,
  updateDealership,
} from '../api/admin';
import type { Dealership } from '../api/admin';
import {
  checkDealershipForm,
  dealershipCreateBody,
  dealershipFormErrors,
  dealershipFormFrom,
  dealershipUpdateBody,
} from '../admin/dealershipForms';
import type { DealershipField, DealershipFormValues } from '../admin/dealershipForms';
import { formatDateTime } from '../admin/format';
import { errorMessage, hasErrors } from '../admin/validation';
import type { FieldErrors } from '../admin/validation';
import { buttonClass } from '../components/buttons';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { Dialog } from '../components/Dialog';
import { TextAreaField, TextField } from '../components/FormField';
import { Badge, ErrorNotice, SuccessNotice } from '../components/Notice';
import { PageHeader } from '../components/PageHeader';
import { Pager } from '../components/Pager';
import { usePageTitle } from '../usePageTitle';

const PAGE = 20;

type DialogState =
  | { kind: 'form'; dealership: Dealership | null }
  | { kind: 'deactivate'; dealership: Dealership }
  | { kind: 'delete'; dealership: Dealership }
  | null;

/** Dealerships (super admins): list, create, edit, (de)activate, delete. */
export function DealershipsPage() {
  usePageTitle('Dealerships');
  const [skip, setSkip] = useState(0);
  const [rows, setRows] = useState<Dealership[] | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [dialog, setDialog] = useState<DialogState>(null);
  const [busyId, setBusyId] = useState<number | null>(null);
  const [version, setVersion] = useState(0);
  const reload = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    listDealerships({ skip, limit: PAGE }, ctrl.signal)
      .then((list) => {
        setRows(list);
        setError(null);
        if (list.length === 0 && skip > 0) setSkip(Math.max(0, skip - PAGE));
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(errorMessage(err, 'Could not load the dealerships.'));
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [skip, version]);

  function replace(updated: Dealership) {
    setRows((list) => list?.map((d) => (d.id === updated.id ? updated : d)) ?? null);
  }

  async function activate(d: Dealership) {
    setBusyId(d.id);
    setError(null);
    setNotice(null);
    try {
      const updated = await updateDealership(d.id, { is_active: true });
      replace(updated);
      setNotice(`${updated.name} is active again.`);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusyId(null);
    }
  }

  return (
    <div className="space-y-6">
      <PageHeader
        title="Dealerships"
        actions={
          <button
            type="button"
            className={buttonClass('primary')}
            onClick={() => setDialog({ kind: 'form', dealership: null })}
            data-testid="dealership-create-open"
          >
            Create dealership
          </button>
        }
      >
        Each dealership has its own users and knowledge base.
      </PageHeader>

      <div aria-live="polite">
        <SuccessNotice testId="dealerships-notice">{notice}</SuccessNotice>
      </div>
      <ErrorNotice message={error} testId="dealerships-error" />

      <section aria-labelledby="dealerships-heading" aria-busy={loading}>
        <h2 id="dealerships-heading" className="sr-only">
          Dealership list
        </h2>
        {rows && rows.length === 0 && !loading && (
          <p className="py-6 text-center text-sm text-slate-500" data-testid="dealerships-empty">
            No dealerships yet.
          </p>
        )}
        {rows && rows.length > 0 && (
          <ul className="divide-y divide-slate-100 rounded-xl bg-white shadow-sm ring-1 ring-slate-200">
            {rows.map((d) => (
              <li
                key={d.id}
                data-testid="dealership-row"
                data-dealership-id={d.id}
                data-name={d.name}
                data-active={d.is_active}
                className="flex flex-col gap-3 px-4 py-3 lg:flex-row lg:items-center lg:justify-between"
              >
                <div className="min-w-0">
                  <p className="flex flex-wrap items-center gap-2 text-sm font-medium text-slate-900">
                    <span className="break-words">{d.name}</span>
                    <span data-testid="dealership-row-active">
                      <Badge tone={d.is_active ? 'success' : 'warning'}>{d.is_active ? 'Active' : 'Inactive'}</Badge>
                    </span>
                    <Badge tone={d.rag_config?.initialized ? 'info' : 'neutral'}>
                      {d.rag_config?.initialized ? 'Knowledge base ready' : 'No knowledge base'}
                    </Badge>
                  </p>
                  <p className="break-words text-sm text-slate-600">
                    {[d.address, d.contact_email, d.contact_phone].filter(Boolean).join(' · ') || 'No contact details'}
                  </p>
                  <p className="text-xs text-slate-500">
                    #{d.id} · created {formatDateTime(d.created_at)}
                  </p>
                </div>
                <div className="flex flex-wrap gap-2">
                  <Link
                    to={`/knowledge-base?dealership=${d.id}`}
                    className={buttonClass('ghost', 'sm')}
                    aria-label={`Knowledge base of ${d.name}`}
                  >
                    Knowledge base
                  </Link>
                  <button
                    type="button"
                    className={buttonClass('secondary', 'sm')}
                    onClick={() => setDialog({ kind: 'form', dealership: d })}
                    aria-label={`Edit ${d.name}`}
                    data-testid="dealership-edit"
                  >
                    Edit
                  </button>
                  <button
                    type="button"
                    className={buttonClass('secondary', 'sm')}
                    disabled={busyId === d.id}
                    onClick={() => (d.is_active ? setDialog({ kind: 'deactivate', dealership: d }) : void activate(d))}
                    aria-label={`${d.is_active ? 'Deactivate' : 'Activate'} ${d.name}`}
                    data-testid="dealership-toggle-active"
                  >
                    {d.is_active ? 'Deactivate' : 'Activate'}
                  </button>
                  <button
                    type="button"
                    className={buttonClass('ghost', 'sm')}
                    onClick={() => setDialog({ kind: 'delete', dealership: d })}
                    aria-label={`Delete ${d.name}`}
                    data-testid="dealership-delete"
                  >
                    Delete
                  </button>
                </div>
              </li>
            ))}
          </ul>
        )}
        {loading && !rows && (
          <p className="text-sm text-slate-500" role="status">
            Loading dealerships…
          </p>
        )}
      </section>

      {rows && (rows.length > 0 || skip > 0) && (
        <Pager skip={skip} limit={PAGE} shown={rows.length} onSkip={setSkip} label="Dealerships" testIdPrefix="dealerships" />
      )}

      {dialog?.kind === 'form' && (
        <DealershipFormDialog
          dealership={dialog.dealership}
          onClose={() => setDialog(null)}
          onSaved={(saved, created) => {
            setDialog(null);
            setError(null);
            setNotice(created ? `Created ${saved.name}.` : `Saved ${saved.name}.`);
            if (created) reload();
            else replace(saved);
          }}
        />
      )}
      {dialog?.kind === 'deactivate' && (
        <ConfirmDialog
          title="Deactivate dealership"
          confirmLabel="Deactivate"
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            const updated = await updateDealership(dialog.dealership.id, { is_active: false });
            replace(updated);
            setNotice(`${updated.name} is deactivated.`);
          }}
        >
          Deactivate <strong>{dialog.dealership.name}</strong>? Its users are signed out and cannot sign in until it is
          activated again. Nothing is deleted.
        </ConfirmDialog>
      )}
      {dialog?.kind === 'delete' && (
        <ConfirmDialog
          title="Delete dealership"
          confirmLabel="Delete dealership"
          requireText={dialog.dealership.name}
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await deleteDealership(dialog.dealership.id);
            setNotice(`Deleted ${dialog.dealership.name}.`);
            reload();
          }}
        >
          This deletes <strong>{dialog.dealership.name}</strong> with all its users, documents, conversations and
          reports. It cannot be undone.
        </ConfirmDialog>
      )}
    </div>
  );
}

function DealershipFormDialog({
  dealership,
  onClose,
  onSaved,
}: {
  dealership: Dealership | null;
  onClose: () => void;
  onSaved: (saved: Dealership, created: boolean) => void;
}) {
  const [values, setValues] = useState<DealershipFormValues>(() => dealershipFormFrom(dealership));
  const [errors, setErrors] = useState<FieldErrors<DealershipField>>({});
  const [error, setError] = useState<string | null>(null);
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const set = (k: DealershipField) => (v: string) => setValues((x) => ({ ...x, [k]: v }));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found = checkDealershipForm(values, dealership);
    setErrors(found);
    setError(null);
    setOther([]);
    if (hasErrors(found)) {
      setError('Please correct the highlighted fields.');
      return;
    }
    setBusy(true);
    try {
      if (dealership) {
        const patch = dealershipUpdateBody(dealership, values);
        onSaved(Object.keys(patch).length ? await updateDealership(dealership.id, patch) : dealership, false);
      } else {
        onSaved(await createDealership(dealershipCreateBody(values)), true);
      }
    } catch (err) {
      const mapped = dealershipFormErrors(err);
      setErrors(mapped.fields);
      setOther(mapped.other);
      setError(errorMessage(err));
      setBusy(false);
    }
  }

  return (
    <Dialog title={dealership ? 'Edit dealership' : 'Create dealership'} onClose={() => !busy && onClose()}>
      <form onSubmit={submit} noValidate className="space-y-4" data-testid="dealership-form" aria-busy={busy}>
        <TextField
          label="Name"
          value={values.name}
          onValue={set('name')}
          error={errors.name}
          autoComplete="organization"
          testId="dealership-form-name"
          required
        />
        <TextAreaField
          label="Address"
          rows={2}
          value={values.address}
          onValue={set('address')}
          error={errors.address}
          hint="Optional."
          testId="dealership-form-address"
        />
        <div className="grid gap-4 sm:grid-cols-2">
          <TextField
            label="Contact email"
            type="email"
            inputMode="email"
            value={values.contact_email}
            onValue={set('contact_email')}
            error={errors.contact_email}
            hint="Optional."
            testId="dealership-form-email"
          />
          <TextField
            label="Contact phone"
            type="tel"
            value={values.contact_phone}
            onValue={set('contact_phone')}
            error={errors.contact_phone}
            hint="Optional."
            testId="dealership-form-phone"
          />
        </div>
        <ErrorNotice message={error} details={other} testId="dealership-form-error" />
        <div className="flex flex-wrap justify-end gap-2">
          <button type="button" className={buttonClass('secondary')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className={buttonClass('primary')} disabled={busy} data-testid="dealership-form-submit">
            {busy ? 'Saving…' : dealership ? 'Save changes' : 'Create dealership'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
