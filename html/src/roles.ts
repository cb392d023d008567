import type { Role } from './api/types';

const ROLE_LABELS: Record<Role, string> = {
  super_admin: 'Super admin',
  dealership_admin: 'Dealership admin',
  user: 'Trainee',
};

export function roleLabel(role: string): string {
  return (ROLE_LABELS as Record<string, string>)[role] ?? role;
}
