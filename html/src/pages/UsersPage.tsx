import { useCallback, useEffect, useState } from 'react';
import { countUsers, deleteUser, listUsers, toggleUserActive } from '../api/admin';
import type { UserFilters } from '../api/admin';
import type { Role, User } from '../api/types';
import { formatDateTime } from '../admin/format';
import { ROLES } from '../admin/userForms';
import { useDealerships } from '../admin/useDealerships';
import { errorMessage } from '../admin/validation';
import { useAuth } from '../auth/AuthContext';
import { buttonClass } from '../components/buttons';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { DealershipSelect } from '../components/DealershipSelect';
import { SelectField } from '../components/FormField';
import { Badge, ErrorNotice, SuccessNotice } from '../components/Notice';
import { PageHeader } from '../components/PageHeader';
import { Pager } from '../components/Pager';
import { UserFormDialog } from '../components/UserFormDialog';
import { roleLabel } from '../roles';
import { usePageTitle } from '../usePageTitle';

const PAGE = 20;

type Dialog =
  | { kind: 'create' }
  | { kind: 'invite' }
  | { kind: 'edit'; user: User }
  | { kind: 'delete'; user: User }
  | null;

/** Accounts: SA all (filter by dealership), DA its own dealership. */
export function UsersPage() {
  usePageTitle('Users');
  const { user: caller } = useAuth();
  const isSA = caller?.role === 'super_admin';
  const { dealerships, nameOf, error: dealershipsError } = useDealerships(isSA);

  const [role, setRole] = useState('');
  const [active, setActive] = useState('');
  const [dealership, setDealership] = useState('');
  const [skip, setSkip] = useState(0);
  const [users, setUsers] = useState<User[] | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [dialog, setDialog] = useState<Dialog>(null);
  const [busyId, setBusyId] = useState<number | null>(null);
  const [version, setVersion] = useState(0);
  const reload = useCallback(() => setVersion((v) => v + 1), []);

  useEffect(() => {
    const ctrl = new AbortController();
    const filters: UserFilters = {
      role: role ? (role as Role) : undefined,
      is_active: active === '' ? undefined : active === 'true',
      dealership_id: isSA && dealership ? Number(dealership) : undefined,
    };
    setLoading(true);
    Promise.all([listUsers({ ...filters, skip, limit: PAGE }, ctrl.signal), countUsers(filters, ctrl.signal)])
      .then(([list, count]) => {
        setUsers(list);
        setTotal(count);
        setError(null);
        // A page emptied by deletions: step back.
        if (list.length === 0 && skip > 0) setSkip(Math.max(0, skip - PAGE));
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setError(errorMessage(err, 'Could not load the users.'));
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [role, active, dealership, skip, isSA, version]);

  function filter<T>(setter: (v: T) => void) {
    return (v: T) => {
      setter(v);
      setSkip(0);
    };
  }

  async function toggle(u: User) {
    setBusyId(u.id);
    setError(null);
    setNotice(null);
    try {
      const updated = await toggleUserActive(u.id);
      setUsers((list) => list?.map((x) => (x.id === updated.id ? updated : x)) ?? null);
      setNotice(`${fullName(updated)} is now ${updated.is_active ? 'active' : 'inactive'}.`);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusyId(null);
    }
  }

  if (!caller) return null;

  return (
    <div className="space-y-6">
      <PageHeader
        title="Users"
        actions={
          <>
            <button
              type="button"
              className={buttonClass('secondary')}
              onClick={() => setDialog({ kind: 'invite' })}
              data-testid="user-invite-open"
            >
              Invite
            </button>
            <button
              type="button"
              className={buttonClass('primary')}
              onClick={() => setDialog({ kind: 'create' })}
              data-testid="user-create-open"
            >
              Create user
            </button>
          </>
        }
      >
        {isSA ? 'Every account on the platform.' : 'The accounts of your dealership.'}
      </PageHeader>

      <div className="grid gap-4 rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200 sm:grid-cols-3" role="search" aria-label="Filter users">
        <SelectField
          label="Role"
          value={role}
          onValue={filter(setRole)}
          options={[{ value: '', label: 'All roles' }, ...ROLES.map((r) => ({ value: r, label: roleLabel(r) }))]}
          testId="users-filter-role"
        />
        <SelectField
          label="Status"
          value={active}
          onValue={filter(setActive)}
          options={[
            { value: '', label: 'Active and inactive' },
            { value: 'true', label: 'Active' },
            { value: 'false', label: 'Inactive' },
          ]}
          testId="users-filter-active"
        />
        {isSA && (
          <DealershipSelect
            dealerships={dealerships}
            value={dealership}
            onValue={filter(setDealership)}
            emptyLabel="All dealerships"
            testId="users-filter-dealership"
          />
        )}
      </div>

      <div aria-live="polite">
        <SuccessNotice testId="users-notice">{notice}</SuccessNotice>
      </div>
      <ErrorNotice message={error ?? dealershipsError} testId="users-error" />

      <section aria-labelledby="users-heading" aria-busy={loading}>
        <h2 id="users-heading" className="sr-only">
          User list
        </h2>
        {users && users.length === 0 && !loading && (
          <p className="py-6 text-center text-sm text-slate-500" data-testid="users-empty">
            No users match these filters.
          </p>
        )}
        {users && users.length > 0 && (
          <ul className="divide-y divide-slate-100 rounded-xl bg-white shadow-sm ring-1 ring-slate-200">
            {users.map((u) => {
              const self = u.id === caller.id;
              return (
                <li
                  key={u.id}
                  data-testid="user-row"
                  data-user-id={u.id}
                  data-email={u.email}
                  data-active={u.is_active}
                  className="flex flex-col gap-3 px-4 py-3 lg:flex-row lg:items-center lg:justify-between"
                >
                  <div className="min-w-0">
                    <p className="flex flex-wrap items-center gap-2 text-sm font-medium text-slate-900">
                      <span>{fullName(u)}</span>
                      {self && <Badge tone="info">You</Badge>}
                      <Badge tone={u.role === 'user' ? 'neutral' : 'info'}>{roleLabel(u.role)}</Badge>
                      <span data-testid="user-row-active">
                        <Badge tone={u.is_active ? 'success' : 'warning'}>{u.is_active ? 'Active' : 'Inactive'}</Badge>
                      </span>
                    </p>
                    <p className="break-all text-sm text-slate-600">{u.email}</p>
                    <p className="text-xs text-slate-500">
                      {isSA && <>{u.dealership_id === null ? 'No dealership' : nameOf(u.dealership_id)} · </>}
                      Last sign-in {u.last_login ? formatDateTime(u.last_login) : 'never'}
                    </p>
                  </div>
                  <div className="flex flex-wrap gap-2">
                    <button
                      type="button"
                      className={buttonClass('secondary', 'sm')}
                      onClick={() => setDialog({ kind: 'edit', user: u })}
                      aria-label={`Edit ${fullName(u)}`}
                      data-testid="user-edit"
                    >
                      Edit
                    </button>
                    <button
                      type="button"
                      className={buttonClass('secondary', 'sm')}
                      onClick={() => void toggle(u)}
                      disabled={self || busyId === u.id}
                      title={self ? 'You cannot deactivate your own account' : undefined}
                      aria-label={`${u.is_active ? 'Deactivate' : 'Activate'} ${fullName(u)}`}
                      data-testid="user-toggle-active"
                    >
                      {u.is_active ? 'Deactivate' : 'Activate'}
                    </button>
                    <button
                      type="button"
                      className={buttonClass('ghost', 'sm')}
                      onClick={() => setDialog({ kind: 'delete', user: u })}
                      disabled={self}
                      title={self ? 'You cannot delete your own account' : undefined}
                      aria-label={`Delete ${fullName(u)}`}
                      data-testid="user-delete"
                    >
                      Delete
                    </button>
                  </div>
                </li>
              );
            })}
          </ul>
        )}
        {loading && !users && (
          <p className="text-sm text-slate-500" role="status">
            Loading users…
          </p>
        )}
      </section>

      {users && (users.length > 0 || skip > 0) && (
        <Pager
          skip={skip}
          limit={PAGE}
          shown={users.length}
          total={total}
          onSkip={setSkip}
          label="Users"
          testIdPrefix="users"
        />
      )}

      {(dialog?.kind === 'create' || dialog?.kind === 'invite' || dialog?.kind === 'edit') && (
        <UserFormDialog
          mode={dialog.kind}
          user={dialog.kind === 'edit' ? dialog.user : undefined}
          caller={caller}
          dealerships={dealerships}
          defaultDealershipId={dealership ? Number(dealership) : null}
          onClose={() => setDialog(null)}
          onDone={(result) => {
            setDialog(null);
            setError(null);
            if (result.mode === 'invite') {
              setNotice(
                `Invitation sent to ${result.invite.email}; it is valid until ${formatDateTime(result.invite.expires_at)}.`,
              );
            } else {
              setNotice(
                result.mode === 'create' ? `Created ${fullName(result.user)}.` : `Saved ${fullName(result.user)}.`,
              );
              reload();
            }
          }}
        />
      )}
      {dialog?.kind === 'delete' && (
        <ConfirmDialog
          title="Delete user"
          confirmLabel="Delete user"
          onClose={() => setDialog(null)}
          onConfirm={async () => {
            await deleteUser(dialog.user.id);
            setNotice(`Deleted ${fullName(dialog.user)}.`);
            reload();
          }}
        >
          Delete <strong>{fullName(dialog.user)}</strong> ({dialog.user.email})? Their sign-in stops working at once.
          This cannot be undone; deactivating keeps the account.
        </ConfirmDialog>
      )}
    </div>
  );
}

function fullName(u: User): string {
  return `${u.first_name} ${u.last_name}`.trim() || u.email;
}
