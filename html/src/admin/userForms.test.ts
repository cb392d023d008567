import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { User } from '../api/types';
import {
  checkUserForm,
  createBody,
  emptyUserForm,
  grantableRoles,
  inviteBody,
  updateBody,
  userFormErrors,
  userFormFrom,
} from './userForms';

const user: User = {
  id: 4,
  email: 'ann@metro.example',
  first_name: 'Ann',
  last_name: 'Lee',
  role: 'user',
  is_active: true,
  is_verified: true,
  dealership_id: 2,
  last_login: null,
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
};

describe('user forms', () => {
  it('lets only super admins grant super_admin', () => {
    expect(grantableRoles('super_admin')).toContain('super_admin');
    expect(grantableRoles('dealership_admin')).toEqual(['dealership_admin', 'user']);
  });

  it('checks a new user as POST /users/ does', () => {
    const v = { ...emptyUserForm(), email: ' bad ', password: 'short', first_name: '', last_name: 'Lee' };
    expect(checkUserForm(v, 'create', true)).toEqual({
      email: 'value is not a valid email address',
      password: 'Password must be at least 8 characters long',
      first_name: 'This field is required',
    });
    const ok = { ...v, email: ' ann@x.io ', password: 'Str0ng!pw', first_name: 'Ann' };
    expect(checkUserForm(ok, 'create', true)).toEqual({});
  });

  it('does not ask for a password when editing', () => {
    expect(checkUserForm(userFormFrom(user), 'edit', true)).toEqual({});
  });

  it('wants a dealership on an invitation from a super admin, except for super admins', () => {
    const v = { ...emptyUserForm(), email: 'a@b.co', role: 'user' as const };
    expect(checkUserForm(v, 'invite', true).dealership_id).toBe('A dealership is required for this role');
    expect(checkUserForm({ ...v, role: 'super_admin' }, 'invite', true)).toEqual({});
    expect(checkUserForm(v, 'invite', false)).toEqual({});
  });

  it('builds bodies: trimmed e-mail, dealership only from a super admin', () => {
    const v = { ...emptyUserForm(), email: ' a@b.co ', password: 'Str0ng!pw', first_name: 'A', last_name: 'B', dealership_id: '7' };
    expect(createBody(v, true)).toEqual({
      email: 'a@b.co',
      password: 'Str0ng!pw',
      first_name: 'A',
      last_name: 'B',
      role: 'user',
      dealership_id: 7,
    });
    expect(createBody(v, false)).not.toHaveProperty('dealership_id');
    expect(createBody({ ...v, dealership_id: '' }, true)).not.toHaveProperty('dealership_id');
    expect(inviteBody({ ...v, role: 'dealership_admin' }, true)).toEqual({
      email: 'a@b.co',
      role: 'dealership_admin',
      dealership_id: 7,
    });
  });

  it('PATCHes only what changed', () => {
    const v = userFormFrom(user);
    expect(updateBody(user, v, true)).toEqual({});
    expect(
      updateBody(user, { ...v, first_name: 'Anne', role: 'dealership_admin', dealership_id: '3' }, true),
    ).toEqual({ first_name: 'Anne', role: 'dealership_admin', dealership_id: 3 });
    expect(updateBody(user, { ...v, dealership_id: '3' }, false)).toEqual({});
    expect(updateBody(user, { ...v, email: ' new@x.io ' }, false)).toEqual({ email: 'new@x.io' });
  });

  it('places server errors on fields', () => {
    const e422 = new ApiError('Field required', {
      status: 422,
      details: [{ field: 'body.last_name', message: 'Field required', type: 'missing' }],
    });
    expect(userFormErrors(e422).fields).toEqual({ last_name: 'Field required' });
    const e409 = new ApiError('Email already registered', { status: 409 });
    expect(userFormErrors(e409).fields).toEqual({ email: 'Email already registered' });
    const e403 = new ApiError('Cannot change your own role', { status: 403 });
    expect(userFormErrors(e403)).toEqual({ fields: {}, other: [] });
  });
});
