import { useEffect, useId, useRef, useState } from 'react';
import type { FormEvent } from 'react';
import { ApiError } from '../api/client';

/**
 * A modal (native <dialog>: focus stays inside, Escape closes) asking for a
 * note, then sending it with `submit`. On success the server's message is
 * shown; on failure its error.message, and the note is kept for a retry.
 * Focus returns to the element that opened it.
 */
export function ReportDialog({
  open,
  title,
  description,
  noteLabel,
  noteRequired = false,
  submitLabel,
  onSubmit,
  onClose,
  testId,
}: {
  open: boolean;
  title: string;
  description: string;
  noteLabel: string;
  noteRequired?: boolean;
  submitLabel: string;
  /** Resolves to the message to show. */
  onSubmit: (note: string) => Promise<string>;
  onClose: () => void;
  testId?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const noteRef = useRef<HTMLTextAreaElement>(null);
  const doneRef = useRef<HTMLButtonElement>(null);
  const opener = useRef<Element | null>(null);
  const [note, setNote] = useState('');
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const ids = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      opener.current = document.activeElement;
      setNote('');
      setError(null);
      setDone(null);
      setSending(false);
      if (typeof dialog.showModal === 'function') dialog.showModal();
      else dialog.setAttribute('open', '');
      noteRef.current?.focus();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);

  useEffect(() => {
    if (done) doneRef.current?.focus();
  }, [done]);

  function close() {
    onClose();
    const el = opener.current;
    if (el instanceof HTMLElement) setTimeout(() => el.focus(), 0);
  }

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (noteRequired && !note.trim()) {
      setError(`${noteLabel} is required.`);
      noteRef.current?.focus();
      return;
    }
    setSending(true);
    setError(null);
    try {
      setDone(await onSubmit(note.trim()));
    } catch (err) {
      setError(err instanceof ApiError || err instanceof Error ? err.message : 'Sending failed.');
      noteRef.current?.focus();
    } finally {
      setSending(false);
    }
  }

  return (
    <dialog
      ref={ref}
      aria-labelledby={`${ids}-title`}
      aria-describedby={`${ids}-desc`}
      onCancel={(e) => {
        e.preventDefault();
        if (!sending) close();
      }}
      data-testid={testId}
      className="w-[min(32rem,calc(100vw-2rem))] rounded-xl bg-white p-0 shadow-2xl backdrop:bg-slate-900/50"
    >
      <div className="p-5 sm:p-6">
        <h2 id={`${ids}-title`} className="text-lg font-semibold text-brand-900">
          {title}
        </h2>
        <p id={`${ids}-desc`} className="mt-1 text-sm text-slate-600">
          {description}
        </p>
        {done ? (
          <div className="mt-4">
            <p
              role="status"
              className="rounded-md border border-emerald-200 bg-emerald-50 px-3 py-2 text-sm text-emerald-900"
            >
              {done}
            </p>
            <div className="mt-4 flex justify-end">
              <button
                ref={doneRef}
                type="button"
                onClick={close}
                className="rounded-md bg-brand-700 px-4 py-2 text-sm font-semibold text-white hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2"
              >
                Close
              </button>
            </div>
          </div>
        ) : (
          <form onSubmit={submit} className="mt-4" aria-busy={sending}>
            <label htmlFor={`${ids}-note`} className="mb-1 block text-sm font-medium text-slate-700">
              {noteLabel}
              {!noteRequired && <span className="font-normal text-slate-500"> (optional)</span>}
            </label>
            <textarea
              ref={noteRef}
              id={`${ids}-note`}
              value={note}
              onChange={(e) => setNote(e.target.value)}
              rows={4}
              maxLength={5000}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? `${ids}-error` : undefined}
              className="block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-brand-500 focus:outline-none focus:ring-2 focus:ring-brand-200"
            />
            {error && (
              <p id={`${ids}-error`} role="alert" className="mt-2 text-sm text-red-700">
                {error}
              </p>
            )}
            <div className="mt-4 flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
              <button
                type="button"
                onClick={close}
                disabled={sending}
                className="rounded-md px-4 py-2 text-sm font-medium text-slate-700 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 disabled:opacity-60"
              >
                Cancel
              </button>
              <button
                type="submit"
                disabled={sending}
                data-testid={testId ? `${testId}-submit` : undefined}
                className="rounded-md bg-brand-700 px-4 py-2 text-sm font-semibold text-white hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2 disabled:opacity-60"
              >
                {sending ? 'Sending…' : submitLabel}
              </button>
            </div>
          </form>
        )}
      </div>
    </dialog>
  );
}
