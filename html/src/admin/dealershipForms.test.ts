import { describe, expect, it } from 'vitest';
import type { Dealership } from '../api/admin';
import { ApiError } from '../api/client';
import {
  checkDealershipForm,
  dealershipCreateBody,
  dealershipFormErrors,
  dealershipFormFrom,
  dealershipUpdateBody,
} from './dealershipForms';

const metro: Dealership = {
  id: 2,
  name: 'Metro Motors',
  address: '1 Main St',
  contact_email: 'office@metro.example',
  contact_phone: null,
  is_active: true,
  rag_config: null,
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
};

describe('dealership form', () => {
  it('checks as the API does', () => {
    expect(checkDealershipForm({ name: '  ', address: '', contact_email: 'abc', contact_phone: '1'.repeat(65) }, null)).toEqual({
      name: 'Enter a name',
      contact_email: 'value is not a valid email address',
      contact_phone: 'String should have at most 64 characters',
    });
    expect(checkDealershipForm(dealershipFormFrom(null), null)).toEqual({ name: 'Enter a name' });
    expect(checkDealershipForm({ ...dealershipFormFrom(null), name: 'A' }, null)).toEqual({});
  });

  it('will not clear a contact e-mail the API cannot clear', () => {
    const v = { ...dealershipFormFrom(metro), contact_email: '' };
    expect(checkDealershipForm(v, metro).contact_email).toMatch(/not removed/);
  });

  it('leaves empty optional fields out of a new dealership', () => {
    expect(dealershipCreateBody({ name: 'A', address: '', contact_email: ' a@b.co ', contact_phone: '' })).toEqual({
      name: 'A',
      contact_email: 'a@b.co',
    });
  });

  it('sends only changes, clearing address and phone with ""', () => {
    const v = dealershipFormFrom(metro);
    expect(dealershipUpdateBody(metro, v)).toEqual({});
    expect(dealershipUpdateBody(metro, { ...v, name: 'Metro Motors East', address: '', contact_phone: '555' })).toEqual({
      name: 'Metro Motors East',
      address: '',
      contact_phone: '555',
    });
  });

  it('puts a duplicate name on the name field', () => {
    const out = dealershipFormErrors(new ApiError('Dealership with this name already exists', { status: 409 }));
    expect(out.fields.name).toBe('Dealership with this name already exists');
  });
});
