import { useState } from 'react';
import type { FormEvent, ReactNode } from 'react';
import { errorMessage } from '../admin/validation';
import { buttonClass } from './buttons';
import { Dialog } from './Dialog';
import { ErrorNotice } from './Notice';
import { TextField } from './FormField';

interface ConfirmDialogProps {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  /** Runs the action; the dialog shows its error.message when it rejects. */
  onConfirm: () => Promise<void>;
  /** Called after a successful confirm, and on cancel. */
  onClose: () => void;
  /** When set, the action is enabled only once this exact text is typed. */
  requireText?: string;
  danger?: boolean;
  testId?: string;
}

/** "Are you sure?" with an optional type-the-name check. */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  onConfirm,
  onClose,
  requireText,
  danger = true,
  testId = 'confirm-dialog',
}: ConfirmDialogProps) {
  const [typed, setTyped] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const matches = requireText === undefined || typed === requireText;

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!matches || busy) return;
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  }

  return (
    <Dialog title={title} onClose={() => !busy && onClose()} testId={testId}>
      <form onSubmit={submit} className="space-y-4" noValidate>
        <div className="text-sm text-slate-700">{children}</div>
        {requireText !== undefined && (
          <TextField
            label={
              <>
                Type <span className="font-mono font-semibold">{requireText}</span> to confirm
              </>
            }
            value={typed}
            onValue={setTyped}
            autoComplete="off"
            spellCheck={false}
            testId="confirm-input"
            data-autofocus=""
          />
        )}
        <ErrorNotice message={error} testId="confirm-error" />
        <div className="flex flex-wrap justify-end gap-2">
          <button
            type="button"
            className={buttonClass('secondary')}
            onClick={onClose}
            disabled={busy}
            data-autofocus={requireText === undefined ? '' : undefined}
          >
            Cancel
          </button>
          <button
            type="submit"
            className={buttonClass(danger ? 'danger' : 'primary')}
            disabled={!matches || busy}
            data-testid="confirm-submit"
          >
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
