// The user forms of the Users page: what they check before sending, and the
// bodies they send (POST /users/, PATCH /users/{id}, POST /users/invites).

import type { InviteCreate, UserCreate, UserUpdate } from '../api/admin';
import type { Role, User } from '../api/types';
import { ApiError } from '../api/client';
import { checkEmail, checkPassword, checkPersonName, fieldErrorsFrom, validate } from './validation';
import type { FieldErrors } from './validation';

export type UserField = 'email' | 'password' | 'first_name' | 'last_name' | 'role' | 'dealership_id';
export const USER_FIELDS: readonly UserField[] = [
  'email',
  'password',
  'first_name',
  'last_name',
  'role',
  'dealership_id',
];

export interface UserFormValues {
  email: string;
  password: string;
  first_name: string;
  last_name: string;
  role: Role;
  /** '' = none. */
  dealership_id: string;
}

export const ROLES: readonly Role[] = ['super_admin', 'dealership_admin', 'user'];

/** The roles a caller may give: a dealership admin never super_admin. */
export function grantableRoles(callerRole: Role): Role[] {
  return callerRole === 'super_admin' ? [...ROLES] : ['dealership_admin', 'user'];
}

export function emptyUserForm(): UserFormValues {
  return { email: '', password: '', first_name: '', last_name: '', role: 'user', dealership_id: '' };
}

export function userFormFrom(user: User): UserFormValues {
  return {
    email: user.email,
    password: '',
    first_name: user.first_name,
    last_name: user.last_name,
    role: user.role,
    dealership_id: user.dealership_id === null ? '' : String(user.dealership_id),
  };
}

export type UserFormMode = 'create' | 'edit' | 'invite';

/** The API's checks for the fields the mode sends. */
export function checkUserForm(
  v: UserFormValues,
  mode: UserFormMode,
  callerIsSA: boolean,
): FieldErrors<UserField> {
  const values = { ...v, email: v.email.trim() };
  const errors: FieldErrors<UserField> =
    mode === 'invite'
      ? validate(values, { email: checkEmail })
      : validate(values, {
          email: checkEmail,
          first_name: checkPersonName,
          last_name: checkPersonName,
          ...(mode === 'create' ? { password: checkPassword } : {}),
        });
  // An invitation fixes the dealership; a super admin must name one for
  // any role but super_admin (POST /users/invites answers 422 otherwise).
  if (mode === 'invite' && callerIsSA && v.role !== 'super_admin' && v.dealership_id === '') {
    errors.dealership_id = 'A dealership is required for this role';
  }
  return errors;
}

function dealershipOf(v: UserFormValues): number | undefined {
  return v.dealership_id === '' ? undefined : Number(v.dealership_id);
}

export function createBody(v: UserFormValues, callerIsSA: boolean): UserCreate {
  return {
    email: v.email.trim(),
    password: v.password,
    first_name: v.first_name,
    last_name: v.last_name,
    role: v.role,
    // A dealership admin's users always join its own dealership.
    ...(callerIsSA && dealershipOf(v) !== undefined ? { dealership_id: dealershipOf(v) } : {}),
  };
}

export function inviteBody(v: UserFormValues, callerIsSA: boolean): InviteCreate {
  return {
    email: v.email.trim(),
    role: v.role,
    ...(callerIsSA && dealershipOf(v) !== undefined ? { dealership_id: dealershipOf(v) } : {}),
  };
}

/** Only what changed; the dealership only from a super admin. */
export function updateBody(original: User, v: UserFormValues, callerIsSA: boolean): UserUpdate {
  const out: UserUpdate = {};
  const email = v.email.trim();
  if (email !== original.email) out.email = email;
  if (v.first_name !== original.first_name) out.first_name = v.first_name;
  if (v.last_name !== original.last_name) out.last_name = v.last_name;
  if (v.role !== original.role) out.role = v.role;
  const d = dealershipOf(v);
  if (callerIsSA && d !== undefined && d !== original.dealership_id) out.dealership_id = d;
  return out;
}

/** A failed save as per-field messages (422 details, 409 taken address) and the rest. */
export function userFormErrors(err: unknown): { fields: FieldErrors<UserField>; other: string[] } {
  const out = fieldErrorsFrom(err, USER_FIELDS);
  if (err instanceof ApiError && err.status === 409 && /email/i.test(err.message) && !out.fields.email) {
    out.fields.email = err.message;
  }
  return out;
}
