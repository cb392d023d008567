import { useState } from 'react';
import type { FormEvent } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router-dom';
import { passwordProblems, signupWithInvite } from '../api/auth';
import { ApiError } from '../api/client';
import { useAuth } from '../auth/AuthContext';
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

type Fields = Partial<
  Record<'invite_token' | 'email' | 'first_name' | 'last_name' | 'password' | 'confirm', string>
>;

/**
 * Accepting an invitation: POST /auth/signup with invite_token (the
 * invitation fixes the role and the dealership; its e-mail address must be
 * given). Served at /accept-invite?token=… and at /signup?token=…, the link
 * the invitation e-mail carries. On success the new account is signed in.
 */
export function AcceptInvitePage() {
  usePageTitle('Accept your invitation');
  const [params] = useSearchParams();
  const linkToken = params.get('token')?.trim() ?? '';
  const navigate = useNavigate();
  const { user, signInWithTokens, logout } = useAuth();

  const [code, setCode] = useState(linkToken);
  const [email, setEmail] = useState('');
  const [firstName, setFirstName] = useState('');
  const [lastName, setLastName] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Fields>({});
  const [submitting, setSubmitting] = useState(false);

  const problems = passwordProblems(password);

  if (user) {
    return (
      <AuthShell title="Accept your invitation">
        <p className="mt-6 text-sm text-slate-700">
          You are signed in as <span className="font-medium">{user.email}</span>. To create the
          invited account, sign out first.
        </p>
        <div className="mt-4 flex flex-wrap gap-3">
          <button
            type="button"
            onClick={() => void logout()}
            className="rounded-md bg-brand-700 px-4 py-2 text-sm font-semibold text-white hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2"
          >
            Sign out
          </button>
          <Link to="/" className={`px-2 py-2 text-sm ${linkClass}`}>
            Go to the dashboard
          </Link>
        </div>
      </AuthShell>
    );
  }

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    const local: Fields = {};
    if (!code.trim()) local.invite_token = 'Enter the invitation code from the e-mail.';
    if (!email.trim()) local.email = 'Enter the address the invitation was sent to.';
    if (!firstName.trim()) local.first_name = 'Enter your first name.';
    if (!lastName.trim()) local.last_name = 'Enter your last name.';
    if (problems.length) local.password = `The password needs ${problems.join(', ')}.`;
    if (confirm !== password) local.confirm = 'The two passwords do not match.';
    setFields(local);
    const first = (Object.keys(local) as Array<keyof Fields>)[0];
    if (first) {
      document.getElementById(first)?.focus();
      return;
    }
    setSubmitting(true);
    try {
      const tokens = await signupWithInvite({
        invite_token: code.trim(),
        email: email.trim(),
        password,
        first_name: firstName.trim(),
        last_name: lastName.trim(),
      });
      await signInWithTokens(tokens);
      navigate('/', { replace: true });
    } catch (err) {
      setSubmitting(false);
      if (err instanceof ApiError) {
        setFields(fieldErrors(err.details) as Fields);
        setError(err.message);
      } else {
        setError('The account could not be created. Please try again.');
      }
    }
  }

  return (
    <AuthShell
      title="Accept your invitation"
      subtitle="Create your account to start training with Adam. Your administrator chose your dealership and role."
      footer={
        <span className="text-slate-500">
          Already have an account?{' '}
          <Link to="/login" className={linkClass}>
            Sign in
          </Link>
        </span>
      }
    >
      {error && <ErrorBox>{error}</ErrorBox>}
      <form className="mt-6 space-y-4" onSubmit={onSubmit} noValidate aria-busy={submitting}>
        {!linkToken && (
          <AuthField
            id="invite_token"
            label="Invitation code"
            autoComplete="off"
            spellCheck={false}
            required
            autoFocus
            value={code}
            onChange={(e) => setCode(e.target.value)}
            error={fields.invite_token}
            hint="The long code at the end of the link in your invitation e-mail."
          />
        )}
        {linkToken && fields.invite_token && <ErrorBox>{fields.invite_token}</ErrorBox>}
        <AuthField
          id="email"
          label="Email address (the invited one)"
          type="email"
          autoComplete="email"
          inputMode="email"
          required
          autoFocus={!!linkToken}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          error={fields.email}
        />
        <div className="grid gap-4 sm:grid-cols-2">
          <AuthField
            id="first_name"
            label="First name"
            autoComplete="given-name"
            required
            maxLength={100}
            value={firstName}
            onChange={(e) => setFirstName(e.target.value)}
            error={fields.first_name}
          />
          <AuthField
            id="last_name"
            label="Last name"
            autoComplete="family-name"
            required
            maxLength={100}
            value={lastName}
            onChange={(e) => setLastName(e.target.value)}
            error={fields.last_name}
          />
        </div>
        <AuthField
          id="password"
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fields.password}
          hint={<PasswordRules problems={problems} touched={password.length > 0} />}
        />
        <AuthField
          id="confirm"
          label="Repeat the password"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
          error={fields.confirm}
        />
        <button type="submit" disabled={submitting} className={primaryButtonClass}>
          {submitting ? 'Creating your account…' : 'Create account'}
        </button>
      </form>
    </AuthShell>
  );
}
