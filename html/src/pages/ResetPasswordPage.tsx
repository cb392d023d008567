import { useState } from 'react';
import type { FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { passwordProblems, resetPassword } from '../api/auth';
import { ApiError } from '../api/client';
import {
  AuthField,
  AuthShell,
  ErrorBox,
  PasswordRules,
  fieldErrors,
  linkClass,
  primaryButtonClass,
} from '../components/AuthShell';
import { usePageTitle } from '../usePageTitle';

/** /reset-password?token=… (the link of the reset e-mail): POST /auth/password/reset. */
export function ResetPasswordPage() {
  usePageTitle('Choose a new password');
  const [params] = useSearchParams();
  const token = params.get('token')?.trim() ?? '';
  const navigate = useNavigate();

  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [tokenBad, setTokenBad] = useState(false);
  const [fields, setFields] = useState<{ password?: string; confirm?: string }>({});
  const [submitting, setSubmitting] = useState(false);

  const problems = passwordProblems(password);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    const local: { password?: string; confirm?: string } = {};
    if (problems.length) local.password = `The password needs ${problems.join(', ')}.`;
    if (confirm !== password) local.confirm = 'The two passwords do not match.';
    setFields(local);
    if (local.password || local.confirm) {
      document.getElementById(local.password ? 'password' : 'confirm')?.focus();
      return;
    }
    setSubmitting(true);
    try {
      await resetPassword(token, password);
      navigate('/login', {
        replace: true,
        state: { message: 'Your password has been changed. Sign in with your new password.' },
      });
    } catch (err) {
      setSubmitting(false);
      if (err instanceof ApiError) {
        const byField = fieldErrors(err.details);
        setTokenBad(!!byField.token);
        setFields({ password: byField.password });
        setError(err.message);
      } else {
        setError('The request failed. Please try again.');
      }
    }
  }

  const footer = (
    <div className="flex flex-col gap-2 sm:flex-row sm:justify-between">
      <Link to="/login" className={linkClass}>
        Back to sign in
      </Link>
      <Link to="/forgot-password" className={linkClass}>
        Request a new link
      </Link>
    </div>
  );

  if (!token) {
    return (
      <AuthShell title="Choose a new password" footer={footer}>
        <ErrorBox>
          This reset link is incomplete. Open the link from the e-mail again, or request a new one.
        </ErrorBox>
      </AuthShell>
    );
  }

  return (
    <AuthShell
      title="Choose a new password"
      subtitle="After the change, every device signed in to your account is signed out."
      footer={footer}
    >
      {error && (
        <ErrorBox>
          {error}
          {tokenBad && (
            <>
              {' '}
              <Link to="/forgot-password" className={linkClass}>
                Request a new link
              </Link>
              .
            </>
          )}
        </ErrorBox>
      )}
      <form className="mt-6 space-y-5" onSubmit={onSubmit} noValidate aria-busy={submitting}>
        <AuthField
          id="password"
          label="New password"
          type="password"
          autoComplete="new-password"
          required
          autoFocus
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fields.password}
          hint={<PasswordRules problems={problems} touched={password.length > 0} />}
        />
        <AuthField
          id="confirm"
          label="Repeat the new password"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={fields.confirm}
        />
        <button
          type="submit"
          disabled={submitting || !password || !confirm}
          className={primaryButtonClass}
        >
          {submitting ? 'Saving…' : 'Change password'}
        </button>
      </form>
    </AuthShell>
  );
}
