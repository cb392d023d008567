import type { InputHTMLAttributes, ReactNode } from 'react';
import { Link } from 'react-router-dom';
import type { ValidationDetail } from '../api/types';
import { Logo } from './Logo';
import { StatusFooter } from './StatusFooter';

/** The frame of the signed-out pages (sign in, password reset, invitation). */
export function AuthShell({
  title,
  subtitle,
  children,
  footer,
}: {
  title: string;
  subtitle?: ReactNode;
  children: ReactNode;
  footer?: ReactNode;
}) {
  return (
    <div className="flex min-h-screen flex-col bg-gradient-to-br from-brand-950 via-brand-900 to-slate-800">
      <main className="flex flex-1 items-center justify-center px-4 py-12">
        <div className="w-full max-w-md">
          <div className="mb-8 flex justify-center">
            <Link
              to="/login"
              className="rounded focus:outline-none focus-visible:ring-2 focus-visible:ring-accent-400"
              aria-label="Avatar Adam — sign in"
            >
              <Logo inverted />
            </Link>
          </div>
          <div className="rounded-xl bg-white p-6 shadow-xl ring-1 ring-black/5 sm:p-8">
            <h1 className="text-xl font-semibold text-brand-900">{title}</h1>
            {subtitle && <p className="mt-1 text-sm text-slate-500">{subtitle}</p>}
            {children}
            {footer && (
              <div className="mt-6 border-t border-slate-100 pt-4 text-sm">{footer}</div>
            )}
          </div>
        </div>
      </main>
      <StatusFooter />
    </div>
  );
}

export const linkClass =
  'rounded font-medium text-brand-700 underline-offset-2 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500';

export const primaryButtonClass =
  'flex w-full justify-center rounded-md bg-brand-700 px-4 py-2.5 text-sm font-semibold text-white shadow-sm transition-colors hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2 disabled:cursor-not-allowed disabled:opacity-60';

/** A labelled input with its error (announced through aria-describedby). */
export function AuthField({
  id,
  label,
  error,
  hint,
  ...input
}: {
  id: string;
  label: string;
  error?: string;
  hint?: ReactNode;
} & InputHTMLAttributes<HTMLInputElement>) {
  const describedBy = [error ? `${id}-error` : null, hint ? `${id}-hint` : null]
    .filter(Boolean)
    .join(' ');
  return (
    <div>
      <label htmlFor={id} className="mb-1 block text-sm font-medium text-slate-700">
        {label}
      </label>
      <input
        id={id}
        name={id}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy || undefined}
        className={`block w-full rounded-md border bg-white px-3 py-2 text-slate-900 shadow-sm placeholder:text-slate-400 focus:outline-none focus:ring-2 ${
          error
            ? 'border-red-400 focus:border-red-500 focus:ring-red-200'
            : 'border-slate-300 focus:border-brand-500 focus:ring-brand-200'
        }`}
        {...input}
      />
      {hint && (
        <div id={`${id}-hint`} className="mt-1 text-xs text-slate-500">
          {hint}
        </div>
      )}
      {error && (
        <p id={`${id}-error`} className="mt-1 text-xs text-red-700">
          {error}
        </p>
      )}
    </div>
  );
}

/** A 422's field errors by the last part of the field name ("body.password" → "password"). */
export function fieldErrors(details: ValidationDetail[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of details) {
    const name = d.field.split('.').pop() ?? d.field;
    if (!out[name]) out[name] = d.message;
  }
  return out;
}

export function ErrorBox({ children }: { children: ReactNode }) {
  return (
    <div
      role="alert"
      className="mt-6 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800"
    >
      {children}
    </div>
  );
}

/** The password rules as a live checklist. */
export function PasswordRules({ problems, touched }: { problems: string[]; touched: boolean }) {
  const rules = [
    'at least 8 characters',
    'an upper-case letter',
    'a lower-case letter',
    'a digit',
    'a special character',
  ];
  const extra = problems.filter((p) => !rules.includes(p));
  return (
    <ul className="mt-1 grid grid-cols-1 gap-x-4 gap-y-0.5 sm:grid-cols-2">
      {rules.map((r) => {
        const met = touched && !problems.includes(r);
        return (
          <li key={r} className={met ? 'text-emerald-700' : 'text-slate-500'}>
            <span aria-hidden="true">{met ? '✓' : '•'}</span> {r}
            <span className="sr-only">{met ? ' (met)' : ' (not yet met)'}</span>
          </li>
        );
      })}
      {extra.map((p) => (
        <li key={p} className="text-red-700 sm:col-span-2">
          <span aria-hidden="true">✗</span> {p}
        </li>
      ))}
    </ul>
  );
}
