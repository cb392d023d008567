// Client-side checks that mirror the server's (libavatarcore app/validate.c,
// auth/password.c, users/dealerships.c), so a form can point at the field
// before the request; the server's 422 details are mapped onto the same
// fields afterwards (fieldErrorsFrom).

import { ApiError } from '../api/client';

/** Length in characters (code points), as the server counts them. */
export function charLength(s: string): number {
  return Array.from(s).length;
}

/** null when `s` is acceptable, else why not. */
export type Check = (s: string) => string | null;

export function textLength(min: number, max: number, emptyMessage?: string): Check {
  return (s) => {
    const n = charLength(s);
    if (n === 0 && min > 0 && emptyMessage) return emptyMessage;
    if (n < min) return `String should have at least ${min} character${min === 1 ? '' : 's'}`;
    if (n > max) return `String should have at most ${max} characters`;
    return null;
  };
}

/** The server's e-mail check: 3–254 characters, one @, a dot in the domain. */
export function checkEmail(s: string): string | null {
  if (s === '') return 'Enter an email address';
  const length = textLength(3, 254)(s);
  if (length) return length;
  const at = s.indexOf('@');
  const dot = at >= 0 ? s.lastIndexOf('.') : -1;
  const bad =
    at <= 0 ||
    s.indexOf('@', at + 1) !== -1 ||
    dot <= at ||
    dot === at + 1 ||
    dot === s.length - 1 ||
    /[\s<>",;\\\u0000-\u001f]/.test(s);
  return bad ? 'value is not a valid email address' : null;
}

/** The password policy of auth/password.c, with its messages. */
export function checkPassword(pw: string): string | null {
  let chars = 0;
  let upper = false;
  let lower = false;
  let digit = false;
  let special = false;
  let control = false;
  for (const ch of pw) {
    chars++;
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x20 || cp === 0x7f) control = true;
    else if (ch >= 'A' && ch <= 'Z') upper = true;
    else if (ch >= 'a' && ch <= 'z') lower = true;
    else if (ch >= '0' && ch <= '9') digit = true;
    else if (ch !== ' ') special = true;
  }
  if (control) return 'Password must not contain control characters';
  if (chars < 8) return 'Password must be at least 8 characters long';
  if (chars > 100) return 'Password must be at most 100 characters long';
  if (new TextEncoder().encode(pw).length > 72) return 'Password must be at most 72 bytes long';
  if (!upper) return 'Password must contain at least one uppercase letter';
  if (!lower) return 'Password must contain at least one lowercase letter';
  if (!digit) return 'Password must contain at least one digit';
  if (!special) return 'Password must contain at least one special character';
  return null;
}

export const PASSWORD_RULES =
  '8–100 characters (at most 72 bytes) with an upper-case letter, a lower-case letter, a digit and a special character.';

export const checkPersonName: Check = textLength(1, 100, 'This field is required');

/** A dealership's name: 1–255 characters, not only blanks. */
export function checkDealershipName(s: string): string | null {
  if (s.trim() === '') return 'Enter a name';
  return textLength(1, 255)(s);
}

export const checkAddress: Check = textLength(0, 1000);
export const checkPhone: Check = textLength(0, 64);
export const checkNote: Check = textLength(0, 5000);

/** An optional e-mail address: empty is fine. */
export function checkOptionalEmail(s: string): string | null {
  return s === '' ? null : checkEmail(s);
}

export type FieldErrors<K extends string> = Partial<Record<K, string>>;

/** Run `checks` over `values`; only failing fields appear in the result. */
export function validate<K extends string>(
  values: Record<K, string>,
  checks: Partial<Record<K, Check>>,
): FieldErrors<K> {
  const out: FieldErrors<K> = {};
  for (const key of Object.keys(checks) as K[]) {
    const why = checks[key]?.(values[key]);
    if (why) out[key] = why;
  }
  return out;
}

export function hasErrors(errors: object): boolean {
  return Object.keys(errors).length > 0;
}

/**
 * Map an ApiError's 422 details ("body.email", "query.limit") onto the
 * form's fields. Details naming no field of the form are returned in
 * `other`, formatted "field: message", so nothing the server said is lost.
 */
export function fieldErrorsFrom<K extends string>(
  err: unknown,
  fields: readonly K[],
): { fields: FieldErrors<K>; other: string[] } {
  const out: FieldErrors<K> = {};
  const other: string[] = [];
  if (!(err instanceof ApiError)) return { fields: out, other };
  for (const d of err.details) {
    const name = d.field.replace(/^(body|query|path)\./, '');
    if ((fields as readonly string[]).includes(name)) {
      const key = name as K;
      if (!out[key]) out[key] = d.message;
    } else {
      other.push(d.field === 'body' ? d.message : `${name}: ${d.message}`);
    }
  }
  return { fields: out, other };
}

/** The message to show for any thrown value. */
export function errorMessage(err: unknown, fallback = 'Something went wrong. Please try again.'): string {
  if (err instanceof Error && err.message) return err.message;
  return fallback;
}

// ---------------------------------------------------------------------------
// The knowledge-base query tester

export type QueryField = 'query' | 'top_k' | 'topic' | 'min_score';
export const QUERY_FIELDS: readonly QueryField[] = ['query', 'top_k', 'topic', 'min_score'];

export interface QueryForm {
  query: string;
  top_k: string;
  topic: string;
  min_score: string;
}

/** The query route's rules: question 1–5000 characters, top_k 1–20, min_score 0–1. */
export function checkQueryForm(f: QueryForm): FieldErrors<QueryField> {
  const errors: FieldErrors<QueryField> = {};
  const q = textLength(1, 5000, 'Enter a question')(f.query.trim() === '' ? '' : f.query);
  if (q) errors.query = q;
  if (!/^\d+$/.test(f.top_k.trim()) || Number(f.top_k) < 1 || Number(f.top_k) > 20) {
    errors.top_k = 'Enter a whole number from 1 to 20';
  }
  const ms = f.min_score.trim();
  if (ms !== '' && (!/^(\d+(\.\d*)?|\.\d+)$/.test(ms) || Number(ms) > 1)) {
    errors.min_score = 'Enter a number from 0 to 1, or leave it empty';
  }
  return errors;
}
