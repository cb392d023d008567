import { useEffect, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import { Link } from 'react-router-dom';
import { forgotPassword } from '../api/auth';
import { ApiError } from '../api/client';
import {
  AuthField,
  AuthShell,
  ErrorBox,
  fieldErrors,
  linkClass,
  primaryButtonClass,
} from '../components/AuthShell';
import { usePageTitle } from '../usePageTitle';

/** POST /auth/password/forgot: always 202, so the answer never says whether the address exists. */
export function ForgotPasswordPage() {
  usePageTitle('Forgot password');
  const [email, setEmail] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [emailError, setEmailError] = useState<string | undefined>();
  const [submitting, setSubmitting] = useState(false);
  const [sentTo, setSentTo] = useState<string | null>(null);
  const doneRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (sentTo) doneRef.current?.focus();
  }, [sentTo]);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    setEmailError(undefined);
    setSubmitting(true);
    try {
      await forgotPassword(email.trim());
      setSentTo(email.trim());
    } catch (err) {
      if (err instanceof ApiError) {
        setEmailError(fieldErrors(err.details).email);
        setError(err.message);
      } else {
        setError('The request failed. Please try again.');
      }
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <AuthShell
      title="Reset your password"
      subtitle="Enter the e-mail address of your account and we will send you a link to choose a new password."
      footer={
        <Link to="/login" className={linkClass}>
          Back to sign in
        </Link>
      }
    >
      {sentTo ? (
        <div
          ref={doneRef}
          tabIndex={-1}
          role="status"
          data-testid="forgot-done"
          className="mt-6 rounded-md border border-emerald-200 bg-emerald-50 px-3 py-3 text-sm text-emerald-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-emerald-400"
        >
          <p className="font-medium">Check your inbox.</p>
          <p className="mt-1">
            If an account exists for <span className="font-medium">{sentTo}</span>, a link to reset
            its password is on its way. The link works once and expires after a while; if nothing
            arrives in a few minutes, look in the spam folder or ask again.
          </p>
          <button
            type="button"
            onClick={() => setSentTo(null)}
            className={`mt-3 ${linkClass}`}
          >
            Use another address
          </button>
        </div>
      ) : (
        <>
          {error && <ErrorBox>{error}</ErrorBox>}
          <form className="mt-6 space-y-5" onSubmit={onSubmit} noValidate aria-busy={submitting}>
            <AuthField
              id="email"
              label="Email address"
              type="email"
              autoComplete="email"
              inputMode="email"
              required
              autoFocus
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              error={emailError}
            />
            <button
              type="submit"
              disabled={submitting || !email.trim()}
              className={primaryButtonClass}
            >
              {submitting ? 'Sending…' : 'Send reset link'}
            </button>
          </form>
        </>
      )}
    </AuthShell>
  );
}
