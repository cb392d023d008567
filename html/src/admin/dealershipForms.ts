// The dealership form: POST /dealerships/ and PATCH /dealerships/{id}.

import type { Dealership, DealershipCreate, DealershipUpdate } from '../api/admin';
import { ApiError } from '../api/client';
import {
  checkAddress,
  checkDealershipName,
  checkOptionalEmail,
  checkPhone,
  fieldErrorsFrom,
  validate,
} from './validation';
import type { FieldErrors } from './validation';

export type DealershipField = 'name' | 'address' | 'contact_email' | 'contact_phone';
export const DEALERSHIP_FIELDS: readonly DealershipField[] = ['name', 'address', 'contact_email', 'contact_phone'];

export type DealershipFormValues = Record<DealershipField, string>;

export function dealershipFormFrom(d: Dealership | null): DealershipFormValues {
  return {
    name: d?.name ?? '',
    address: d?.address ?? '',
    contact_email: d?.contact_email ?? '',
    contact_phone: d?.contact_phone ?? '',
  };
}

/**
 * The API's checks. An existing contact e-mail can be changed but not
 * removed: PATCH keeps a field that is not sent, and '' is no address.
 */
export function checkDealershipForm(
  v: DealershipFormValues,
  original: Dealership | null,
): FieldErrors<DealershipField> {
  const errors = validate(
    { ...v, contact_email: v.contact_email.trim() },
    {
      name: checkDealershipName,
      address: checkAddress,
      contact_email: checkOptionalEmail,
      contact_phone: checkPhone,
    },
  );
  if (original?.contact_email && v.contact_email.trim() === '') {
    errors.contact_email = 'The contact email can be changed but not removed';
  }
  return errors;
}

export function dealershipCreateBody(v: DealershipFormValues): DealershipCreate {
  const out: DealershipCreate = { name: v.name };
  if (v.address !== '') out.address = v.address;
  if (v.contact_email.trim() !== '') out.contact_email = v.contact_email.trim();
  if (v.contact_phone !== '') out.contact_phone = v.contact_phone;
  return out;
}

/** Only what changed. */
export function dealershipUpdateBody(original: Dealership, v: DealershipFormValues): DealershipUpdate {
  const out: DealershipUpdate = {};
  if (v.name !== original.name) out.name = v.name;
  if (v.address !== (original.address ?? '')) out.address = v.address;
  const email = v.contact_email.trim();
  if (email !== '' && email !== original.contact_email) out.contact_email = email;
  if (v.contact_phone !== (original.contact_phone ?? '')) out.contact_phone = v.contact_phone;
  return out;
}

export function dealershipFormErrors(err: unknown): { fields: FieldErrors<DealershipField>; other: string[] } {
  const out = fieldErrorsFrom(err, DEALERSHIP_FIELDS);
  if (err instanceof ApiError && err.status === 409 && !out.fields.name) out.fields.name = err.message;
  return out;
}
