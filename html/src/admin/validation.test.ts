import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import {
  charLength,
  checkDealershipName,
  checkEmail,
  checkOptionalEmail,
  checkPassword,
  checkPersonName,
  checkQueryForm,
  errorMessage,
  fieldErrorsFrom,
  hasErrors,
  validate,
} from './validation';

describe('checkEmail (as app/validate.c)', () => {
  it('accepts ordinary addresses', () => {
    for (const ok of ['a@b.co', 'first.last+tag@dealer.example.com', 'ü@bücher.de']) {
      expect(checkEmail(ok)).toBeNull();
    }
  });

  it('refuses what the server refuses', () => {
    expect(checkEmail('')).toBe('Enter an email address');
    expect(checkEmail('a@')).toBe('String should have at least 3 characters');
    for (const bad of ['abc', '@b.co', 'a@b@c.co', 'a@.co', 'a@b.', 'a@bco', 'a b@c.co', 'a@b.c;', 'a<b@c.co', 'a.b@co']) {
      expect(checkEmail(bad)).toBe('value is not a valid email address');
    }
    expect(checkEmail(`${'a'.repeat(250)}@b.co`)).toBe('String should have at most 254 characters');
  });

  it('optional e-mail allows empty', () => {
    expect(checkOptionalEmail('')).toBeNull();
    expect(checkOptionalEmail('x')).not.toBeNull();
  });
});

describe('checkPassword (as auth/password.c)', () => {
  it('accepts a strong password, with spaces and non-ASCII as specials', () => {
    expect(checkPassword('Str0ng!pass')).toBeNull();
    expect(checkPassword('Abcdefg1é')).toBeNull();
  });

  it('names the first rule broken, in the server order', () => {
    expect(checkPassword('Ab1!')).toBe('Password must be at least 8 characters long');
    expect(checkPassword('Ab1!\tlong enough')).toBe('Password must not contain control characters');
    expect(checkPassword(`Ab1!${'x'.repeat(97)}`)).toBe('Password must be at most 100 characters long');
    expect(checkPassword(`Ab1!${'é'.repeat(40)}`)).toBe('Password must be at most 72 bytes long');
    expect(checkPassword('abcdefg1!')).toBe('Password must contain at least one uppercase letter');
    expect(checkPassword('ABCDEFG1!')).toBe('Password must contain at least one lowercase letter');
    expect(checkPassword('Abcdefgh!')).toBe('Password must contain at least one digit');
    expect(checkPassword('Abcdefg1 ')).toBe('Password must contain at least one special character');
  });
});

describe('text checks', () => {
  it('counts characters, not UTF-16 units', () => {
    expect(charLength('😀é')).toBe(2);
    expect(checkPersonName('😀'.repeat(100))).toBeNull();
    expect(checkPersonName('😀'.repeat(101))).toBe('String should have at most 100 characters');
    expect(checkPersonName('')).toBe('This field is required');
  });

  it('wants a dealership name that is more than blanks', () => {
    expect(checkDealershipName('   ')).toBe('Enter a name');
    expect(checkDealershipName('Metro Motors')).toBeNull();
    expect(checkDealershipName('x'.repeat(256))).toBe('String should have at most 255 characters');
  });

  it('validate() keeps only failing fields', () => {
    const errors = validate(
      { email: 'bad', first_name: 'Ann' },
      { email: checkEmail, first_name: checkPersonName },
    );
    expect(errors).toEqual({ email: 'value is not a valid email address' });
    expect(hasErrors(errors)).toBe(true);
    expect(hasErrors({})).toBe(false);
  });
});

describe('fieldErrorsFrom', () => {
  it('maps 422 details onto the form and keeps the rest', () => {
    const err = new ApiError('Field required', {
      status: 422,
      details: [
        { field: 'body.email', message: 'Email bad', type: 'value_error' },
        { field: 'body.email', message: 'second', type: 'value_error' },
        { field: 'body.dealership_id', message: 'Dealership with ID 9 not found', type: 'value_error' },
        { field: 'query.limit', message: 'Input should be between 1 and 100', type: 'x' },
        { field: 'body', message: 'JSON decode error', type: 'json_invalid' },
      ],
    });
    const out = fieldErrorsFrom(err, ['email', 'dealership_id'] as const);
    expect(out.fields).toEqual({ email: 'Email bad', dealership_id: 'Dealership with ID 9 not found' });
    expect(out.other).toEqual(['limit: Input should be between 1 and 100', 'JSON decode error']);
  });

  it('gives nothing for other errors', () => {
    expect(fieldErrorsFrom(new Error('x'), ['email'])).toEqual({ fields: {}, other: [] });
  });

  it('errorMessage falls back for non-errors', () => {
    expect(errorMessage(new ApiError('Nope', { status: 403 }))).toBe('Nope');
    expect(errorMessage('weird', 'Fallback')).toBe('Fallback');
  });
});

describe('checkQueryForm (POST /rag/{id}/query)', () => {
  const base = { query: 'How do I present GAP?', top_k: '5', topic: '', min_score: '' };

  it('accepts a question with defaults', () => {
    expect(checkQueryForm(base)).toEqual({});
    expect(checkQueryForm({ ...base, top_k: '20', min_score: '0.35' })).toEqual({});
    expect(checkQueryForm({ ...base, top_k: '1', min_score: '1' })).toEqual({});
    expect(checkQueryForm({ ...base, min_score: '.5' })).toEqual({});
  });

  it('refuses what the route refuses', () => {
    expect(checkQueryForm({ ...base, query: '   ' }).query).toBe('Enter a question');
    expect(checkQueryForm({ ...base, query: 'x'.repeat(5001) }).query).toBe(
      'String should have at most 5000 characters',
    );
    for (const top_k of ['0', '21', '2.5', '', 'abc']) {
      expect(checkQueryForm({ ...base, top_k }).top_k).toBe('Enter a whole number from 1 to 20');
    }
    for (const min_score of ['1.01', '-0.1', 'x', '1e-3']) {
      expect(checkQueryForm({ ...base, min_score }).min_score).toBe('Enter a number from 0 to 1, or leave it empty');
    }
  });
});
