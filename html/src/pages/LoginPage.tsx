import { useState } from 'react';
import type { FormEvent } from 'react';
import { Link, Navigate, useLocation, useNavigate } from 'react-router-dom';
import { ApiError } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { Logo } from '../components/Logo';
import { StatusFooter } from '../components/StatusFooter';
import { usePageTitle } from '../usePageTitle';

export function LoginPage() {
  usePageTitle('Sign in');
  const { user, login, notice } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const state = location.state as { from?: string; message?: string } | null;
  const from = state?.from ?? '/';
  // A message from the page that sent us here (e.g. "password changed"),
  // else why the last session ended (refresh token refused).
  const info = state?.message ?? notice;

  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<{ email?: string; password?: string }>({});
  const [submitting, setSubmitting] = useState(false);

  if (user) return <Navigate to={from} replace />;

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    setFieldErrors({});
    setSubmitting(true);
    try {
      await login(email.trim(), password);
      navigate(from, { replace: true });
    } catch (err) {
      if (err instanceof ApiError) {
        const fields: { email?: string; password?: string } = {};
        for (const d of err.details) {
          if (d.field.endsWith('email')) fields.email = d.message;
          else if (d.field.endsWith('password')) fields.password = d.message;
        }
        setFieldErrors(fields);
        setError(err.message);
      } else {
        setError('Sign-in failed. Please try again.');
      }
      setSubmitting(false);
    }
  }

  const inputClass = (invalid: boolean) =>
    `block w-full rounded-md border bg-white px-3 py-2 text-slate-900 shadow-sm placeholder:text-slate-400 focus:outline-none focus:ring-2 ${
      invalid
        ? 'border-red-400 focus:border-red-500 focus:ring-red-200'
        : 'border-slate-300 focus:border-brand-500 focus:ring-brand-200'
    }`;

  return (
    <div className="flex min-h-screen flex-col bg-gradient-to-br from-brand-950 via-brand-900 to-slate-800">
      <main className="flex flex-1 items-center justify-center px-4 py-12">
        <div className="w-full max-w-md">
          <div className="mb-8 flex justify-center">
            <Logo inverted />
          </div>
          <div className="rounded-xl bg-white p-8 shadow-xl ring-1 ring-black/5">
            <h1 className="text-xl font-semibold text-brand-900">Sign in to your account</h1>
            <p className="mt-1 text-sm text-slate-500">
              Practise the F&amp;I conversation with Adam, your AI trainer.
            </p>

            {info && !error && (
              <div
                role="status"
                data-testid="login-notice"
                className="mt-6 rounded-md border border-brand-200 bg-brand-50 px-3 py-2 text-sm text-brand-900"
              >
                {info}
              </div>
            )}

            {error && (
              <div
                role="alert"
                className="mt-6 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800"
              >
                {error}
              </div>
            )}

            <form className="mt-6 space-y-5" onSubmit={onSubmit} noValidate aria-busy={submitting}>
              <div>
                <label htmlFor="email" className="mb-1 block text-sm font-medium text-slate-700">
                  Email address
                </label>
                <input
                  id="email"
                  name="email"
                  type="email"
                  autoComplete="username"
                  inputMode="email"
                  required
                  autoFocus
                  value={email}
                  onChange={(e) => setEmail(e.target.value)}
                  aria-invalid={fieldErrors.email ? true : undefined}
                  aria-describedby={fieldErrors.email ? 'email-error' : undefined}
                  className={inputClass(!!fieldErrors.email)}
                />
                {fieldErrors.email && (
                  <p id="email-error" className="mt-1 text-xs text-red-700">
                    {fieldErrors.email}
                  </p>
                )}
              </div>
              <div>
                <label htmlFor="password" className="mb-1 block text-sm font-medium text-slate-700">
                  Password
                </label>
                <input
                  id="password"
                  name="password"
                  type="password"
                  autoComplete="current-password"
                  required
                  value={password}
                  onChange={(e) => setPassword(e.target.value)}
                  aria-invalid={fieldErrors.password ? true : undefined}
                  aria-describedby={fieldErrors.password ? 'password-error' : undefined}
                  className={inputClass(!!fieldErrors.password)}
                />
                {fieldErrors.password && (
                  <p id="password-error" className="mt-1 text-xs text-red-700">
                    {fieldErrors.password}
                  </p>
                )}
              </div>
              <button
                type="submit"
                disabled={submitting || !email || !password}
                className="flex w-full justify-center rounded-md bg-brand-700 px-4 py-2.5 text-sm font-semibold text-white shadow-sm transition-colors hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2 disabled:cursor-not-allowed disabled:opacity-60"
              >
                {submitting ? 'Signing in…' : 'Sign in'}
              </button>
            </form>

            <div className="mt-6 flex flex-col gap-2 border-t border-slate-100 pt-4 text-sm sm:flex-row sm:justify-between">
              <Link
                to="/forgot-password"
                className="rounded font-medium text-brand-700 underline-offset-2 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
              >
                Forgot your password?
              </Link>
              <Link
                to="/accept-invite"
                className="rounded font-medium text-brand-700 underline-offset-2 hover:underline focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
              >
                Have an invitation?
              </Link>
            </div>
          </div>
        </div>
      </main>
      <StatusFooter />
    </div>
  );
}
