import { describe, expect, it } from 'vitest';
import { adminPagesFor } from './access';

describe('adminPagesFor', () => {
  it('shows every admin page to a super admin', () => {
    expect(adminPagesFor('super_admin').map((p) => p.label)).toEqual([
      'Knowledge base',
      'Users',
      'Dealerships',
      'Reports',
    ]);
  });
  it('hides dealerships from a dealership admin', () => {
    expect(adminPagesFor('dealership_admin').map((p) => p.path)).toEqual(['/knowledge-base', '/users', '/reports']);
  });
  it('shows nothing to a trainee or nobody', () => {
    expect(adminPagesFor('user')).toEqual([]);
    expect(adminPagesFor(null)).toEqual([]);
  });
});
