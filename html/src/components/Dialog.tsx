import { useEffect, useId, useRef } from 'react';
import type { ReactNode } from 'react';

interface DialogProps {
  title: string;
  /** Called on Escape and on the close button; the parent unmounts the dialog. */
  onClose: () => void;
  children: ReactNode;
  description?: ReactNode;
  wide?: boolean;
  testId?: string;
}

const FOCUSABLE =
  'input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), button:not([disabled]), [href], [tabindex]:not([tabindex="-1"])';

/**
 * A modal dialog on the native <dialog> element (the rest of the page is
 * inert while it is open). Mounted = open. Focus moves to the element marked
 * data-autofocus (else the first field or button) and returns to the element
 * that had it before — or to the page heading when that element is gone.
 */
export function Dialog({ title, onClose, children, description, wide, testId }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;
  const titleId = useId();
  const descId = useId();

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    const target =
      dialog.querySelector<HTMLElement>('[data-autofocus]') ??
      dialog.querySelector<HTMLElement>(FOCUSABLE.split(', ').map((f) => `form ${f}`).join(', ')) ??
      dialog.querySelector<HTMLElement>(FOCUSABLE);
    target?.focus();

    const onCancel = (e: Event) => {
      e.preventDefault();
      onCloseRef.current();
    };
    dialog.addEventListener('cancel', onCancel);
    return () => {
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      const back =
        opener && opener.isConnected
          ? opener
          : document.querySelector<HTMLElement>('main h1[tabindex="-1"]');
      back?.focus();
    };
  }, []);

  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      aria-describedby={description ? descId : undefined}
      data-testid={testId}
      className={`m-auto w-[calc(100%-1.5rem)] ${
        wide ? 'max-w-3xl' : 'max-w-lg'
      } max-h-[calc(100dvh-1.5rem)] overflow-y-auto rounded-xl bg-white p-0 text-slate-900 shadow-2xl backdrop:bg-slate-900/50`}
    >
      <div className="flex items-start justify-between gap-4 border-b border-slate-100 px-5 py-4">
        <div>
          <h2 id={titleId} className="text-lg font-semibold text-brand-900">
            {title}
          </h2>
          {description && (
            <div id={descId} className="mt-1 text-sm text-slate-500">
              {description}
            </div>
          )}
        </div>
        <button
          type="button"
          onClick={() => onCloseRef.current()}
          className="-mr-1 rounded-md p-1.5 text-slate-500 hover:bg-slate-100 hover:text-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
        >
          <span aria-hidden="true">✕</span>
          <span className="sr-only">Close</span>
        </button>
      </div>
      <div className="px-5 py-4">{children}</div>
    </dialog>
  );
}
