// Who sees which administration page (the server enforces the same).

import type { Role } from '../api/types';

export const ADMIN_ROLES: readonly Role[] = ['super_admin', 'dealership_admin'];
export const SUPER_ADMIN: readonly Role[] = ['super_admin'];

export interface AdminPage {
  path: string;
  label: string;
  roles: readonly Role[];
}

export const ADMIN_PAGES: readonly AdminPage[] = [
  { path: '/knowledge-base', label: 'Knowledge base', roles: ADMIN_ROLES },
  { path: '/users', label: 'Users', roles: ADMIN_ROLES },
  { path: '/dealerships', label: 'Dealerships', roles: SUPER_ADMIN },
  { path: '/reports', label: 'Reports', roles: ADMIN_ROLES },
];

export function adminPagesFor(role: Role | undefined | null): AdminPage[] {
  return role ? ADMIN_PAGES.filter((p) => p.roles.includes(role)) : [];
}
