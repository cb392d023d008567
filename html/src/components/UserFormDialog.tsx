import { useState } from 'react';
import type { FormEvent } from 'react';
import { createUser, inviteUser, updateUser } from '../api/admin';
import type { Dealership, Invite } from '../api/admin';
import type { Role, User } from '../api/types';
import {
  checkUserForm,
  createBody,
  emptyUserForm,
  grantableRoles,
  inviteBody,
  updateBody,
  userFormErrors,
  userFormFrom,
} from '../admin/userForms';
import type { UserField, UserFormMode, UserFormValues } from '../admin/userForms';
import { errorMessage, hasErrors, PASSWORD_RULES } from '../admin/validation';
import type { FieldErrors } from '../admin/validation';
import { roleLabel } from '../roles';
import { buttonClass } from './buttons';
import { DealershipSelect } from './DealershipSelect';
import { Dialog } from './Dialog';
import { SelectField, TextField } from './FormField';
import { ErrorNotice } from './Notice';

type Result = { mode: 'create' | 'edit'; user: User } | { mode: 'invite'; invite: Invite };

interface UserFormDialogProps {
  mode: UserFormMode;
  /** The account edited (mode 'edit'). */
  user?: User;
  caller: User;
  dealerships: readonly Dealership[];
  /** Pre-selected dealership for a super admin's new user or invitation. */
  defaultDealershipId?: number | null;
  onDone: (result: Result) => void;
  onClose: () => void;
}

const TITLES: Record<UserFormMode, string> = {
  create: 'Create user',
  edit: 'Edit user',
  invite: 'Invite someone',
};

/** Create, edit or invite an account, with the API's checks and its 422 details per field. */
export function UserFormDialog({
  mode,
  user,
  caller,
  dealerships,
  defaultDealershipId,
  onDone,
  onClose,
}: UserFormDialogProps) {
  const isSA = caller.role === 'super_admin';
  const self = mode === 'edit' && user?.id === caller.id;
  const [values, setValues] = useState<UserFormValues>(() =>
    user
      ? userFormFrom(user)
      : { ...emptyUserForm(), dealership_id: isSA && defaultDealershipId ? String(defaultDealershipId) : '' },
  );
  const [errors, setErrors] = useState<FieldErrors<UserField>>({});
  const [error, setError] = useState<string | null>(null);
  const [other, setOther] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);

  const set = <K extends keyof UserFormValues>(key: K) => (value: UserFormValues[K]) =>
    setValues((v) => ({ ...v, [key]: value }));

  const roles = grantableRoles(caller.role);
  // An edited account keeps showing its role even if the caller could not grant it.
  const roleOptions = (roles.includes(values.role) ? roles : [values.role, ...roles]).map((r) => ({
    value: r,
    label: roleLabel(r),
  }));

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found = checkUserForm(values, mode, isSA);
    setErrors(found);
    setError(null);
    setOther([]);
    if (hasErrors(found)) {
      setError('Please correct the highlighted fields.');
      return;
    }
    setBusy(true);
    try {
      if (mode === 'create') {
        onDone({ mode, user: await createUser(createBody(values, isSA)) });
      } else if (mode === 'invite') {
        onDone({ mode, invite: await inviteUser(inviteBody(values, isSA)) });
      } else if (user) {
        const patch = updateBody(user, values, isSA);
        onDone({ mode, user: Object.keys(patch).length ? await updateUser(user.id, patch) : user });
      }
    } catch (err) {
      const mapped = userFormErrors(err);
      setErrors(mapped.fields);
      setOther(mapped.other);
      setError(errorMessage(err));
      setBusy(false);
    }
  }

  // A super admin picks the dealership; an edited account cannot be left without the one it has.
  const showDealership = isSA;
  const dealershipEmpty =
    mode === 'edit' && user?.dealership_id != null
      ? undefined
      : mode === 'invite' && values.role !== 'super_admin'
        ? 'Choose a dealership'
        : 'None';

  return (
    <Dialog
      title={TITLES[mode]}
      onClose={() => !busy && onClose()}
      description={
        mode === 'invite'
          ? 'They receive an e-mail with a link to create their account; the link is valid for 7 days.'
          : mode === 'create'
            ? 'The account is active and verified at once.'
            : undefined
      }
    >
      <form
        onSubmit={submit}
        noValidate
        className="space-y-4"
        data-testid={`user-${mode}-form`}
        aria-busy={busy}
      >
        <TextField
          label="Email address"
          type="email"
          autoComplete="off"
          inputMode="email"
          value={values.email}
          onValue={set('email')}
          error={errors.email}
          testId="user-form-email"
          required
        />
        {mode !== 'invite' && (
          <div className="grid gap-4 sm:grid-cols-2">
            <TextField
              label="First name"
              autoComplete="off"
              value={values.first_name}
              onValue={set('first_name')}
              error={errors.first_name}
              testId="user-form-first-name"
              required
            />
            <TextField
              label="Last name"
              autoComplete="off"
              value={values.last_name}
              onValue={set('last_name')}
              error={errors.last_name}
              testId="user-form-last-name"
              required
            />
          </div>
        )}
        {mode === 'create' && (
          <TextField
            label="Password"
            type="password"
            autoComplete="new-password"
            value={values.password}
            onValue={set('password')}
            error={errors.password}
            hint={PASSWORD_RULES}
            testId="user-form-password"
            required
          />
        )}
        <div className="grid gap-4 sm:grid-cols-2">
          <SelectField
            label="Role"
            value={values.role}
            onValue={(r) => set('role')(r as Role)}
            options={roleOptions}
            error={errors.role}
            disabled={self}
            hint={self ? 'You cannot change your own role.' : undefined}
            testId="user-form-role"
          />
          {showDealership && (
            <DealershipSelect
              dealerships={dealerships}
              value={values.dealership_id}
              onValue={set('dealership_id')}
              emptyLabel={dealershipEmpty}
              error={errors.dealership_id}
              testId="user-form-dealership"
            />
          )}
        </div>
        {!isSA && mode !== 'edit' && (
          <p className="text-xs text-slate-500">The account joins your dealership.</p>
        )}
        <ErrorNotice message={error} details={other} testId="user-form-error" />
        <div className="flex flex-wrap justify-end gap-2">
          <button type="button" className={buttonClass('secondary')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className={buttonClass('primary')} disabled={busy} data-testid="user-form-submit">
            {busy
              ? 'Saving…'
              : mode === 'create'
                ? 'Create user'
                : mode === 'invite'
                  ? 'Send invitation'
                  : 'Save changes'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
