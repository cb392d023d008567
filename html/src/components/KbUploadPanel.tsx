import { useId, useRef, useState } from 'react';
import type { DragEvent } from 'react';
import { topicLabel } from '../admin/format';
import { ACCEPT_ATTRIBUTE, formatBytes, rowView, uploadSummary } from '../admin/uploads';
import type { DocProgress, UploadRow } from '../admin/uploads';
import { buttonClass } from './buttons';
import { SelectField } from './FormField';
import { Badge } from './Notice';
import { Panel } from './PageHeader';
import { ProgressBar } from './ProgressBar';

interface KbUploadPanelProps {
  topics: readonly string[];
  rows: readonly UploadRow[];
  /** A request is in flight. */
  busy: boolean;
  /** The live state of an accepted file's document; `gone` when deleted. */
  docFor: (docId: number) => { doc?: DocProgress; gone: boolean };
  onAdd: (files: File[], topic: string) => void;
  onUpload: () => void;
  onCancel: () => void;
  onRetry: (keys: string[]) => void;
  onRemove: (key: string) => void;
  onClearFinished: () => void;
}

/** Pick a topic and files, send them with a progress bar per file, follow their ingestion. */
export function KbUploadPanel({
  topics,
  rows,
  busy,
  docFor,
  onAdd,
  onUpload,
  onCancel,
  onRetry,
  onRemove,
  onClearFinished,
}: KbUploadPanelProps) {
  const [topic, setTopic] = useState(topics[0] ?? '');
  const [dragging, setDragging] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const inputId = useId();
  const hintId = useId();

  const views = rows.map((row) => {
    const live = row.docId !== undefined ? docFor(row.docId) : { doc: undefined, gone: false };
    return { row, view: rowView(row, live.doc, live.gone) };
  });
  const waiting = rows.filter((r) => r.state === 'waiting').length;
  const retryable = rows.filter((r) => r.state === 'failed' || r.state === 'cancelled').map((r) => r.key);
  const finished = rows.some((r) => !['waiting', 'uploading', 'processing'].includes(r.state));
  const summary = uploadSummary(views.map((v) => v.view));
  const currentTopic = topics.includes(topic) ? topic : (topics[0] ?? '');

  function addFiles(list: FileList | null) {
    if (!list || list.length === 0 || !currentTopic) return;
    onAdd(Array.from(list), currentTopic);
  }

  function onDrop(e: DragEvent<HTMLDivElement>) {
    e.preventDefault();
    setDragging(false);
    addFiles(e.dataTransfer.files);
  }

  return (
    <Panel title="Upload documents" testId="kb-upload">
      <div className="grid gap-4 md:grid-cols-[minmax(0,14rem)_1fr]">
        <SelectField
          label="Topic"
          value={currentTopic}
          onValue={setTopic}
          options={topics.map((t) => ({ value: t, label: topicLabel(t) }))}
          hint="Files are added to this topic."
          testId="kb-topic-select"
        />
        <div>
          <label htmlFor={inputId} className="mb-1 block text-sm font-medium text-slate-700">
            Files
          </label>
          <div
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
            className={`rounded-lg border-2 border-dashed px-4 py-4 text-sm transition-colors ${
              dragging ? 'border-brand-500 bg-brand-50' : 'border-slate-300 bg-slate-50'
            }`}
          >
            <input
              ref={inputRef}
              id={inputId}
              type="file"
              multiple
              accept={ACCEPT_ATTRIBUTE}
              aria-describedby={hintId}
              data-testid="kb-file-input"
              onChange={(e) => {
                addFiles(e.target.files);
                e.target.value = '';
              }}
              className="block w-full text-sm text-slate-700 file:mr-3 file:rounded-md file:border-0 file:bg-brand-700 file:px-3 file:py-2 file:text-sm file:font-medium file:text-white hover:file:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500"
            />
            <p id={hintId} className="mt-2 text-xs text-slate-500">
              Choose or drop several files: .txt, .pdf or .docx, up to 10 MB each.
            </p>
          </div>
        </div>
      </div>

      <div className="mt-4 flex flex-wrap items-center gap-2">
        <button
          type="button"
          className={buttonClass('primary')}
          disabled={busy || waiting === 0}
          onClick={onUpload}
          data-testid="kb-upload-button"
        >
          {waiting > 0 ? `Upload ${waiting} file${waiting === 1 ? '' : 's'}` : 'Upload'}
        </button>
        {busy && (
          <button type="button" className={buttonClass('secondary')} onClick={onCancel} data-testid="kb-upload-cancel">
            Cancel upload
          </button>
        )}
        {retryable.length > 0 && !busy && (
          <button
            type="button"
            className={buttonClass('secondary')}
            onClick={() => onRetry(retryable)}
            data-testid="kb-upload-retry"
          >
            Try failed files again
          </button>
        )}
        {finished && (
          <button type="button" className={buttonClass('ghost')} onClick={onClearFinished} data-testid="kb-upload-clear">
            Clear finished
          </button>
        )}
      </div>

      <p role="status" aria-live="polite" className="mt-3 text-sm text-slate-600" data-testid="kb-upload-summary">
        {summary}
      </p>

      {rows.length > 0 && (
        <ul className="mt-3 divide-y divide-slate-100 rounded-lg ring-1 ring-slate-200" aria-label="Files to upload">
          {views.map(({ row, view }) => (
            <li
              key={row.key}
              data-testid="upload-row"
              data-filename={row.file.name}
              data-state={row.state}
              data-status={view.status}
              data-doc-id={row.docId ?? ''}
              className="space-y-2 px-3 py-3"
            >
              <div className="flex flex-wrap items-start justify-between gap-2">
                <div className="min-w-0">
                  <p className="break-all text-sm font-medium text-slate-900">{row.file.name}</p>
                  <p className="text-xs text-slate-500">
                    {formatBytes(row.file.size)} · {topicLabel(row.topic)}
                  </p>
                </div>
                <div className="flex items-center gap-2">
                  <span data-testid="upload-row-status" data-status={view.status}>
                    <Badge tone={view.tone === 'success' ? 'success' : view.tone === 'danger' ? 'danger' : 'info'}>
                      {view.label}
                    </Badge>
                  </span>
                  {(row.state === 'failed' || row.state === 'cancelled') && !busy && (
                    <button
                      type="button"
                      className={buttonClass('ghost', 'sm')}
                      onClick={() => onRetry([row.key])}
                      aria-label={`Try ${row.file.name} again`}
                    >
                      Retry
                    </button>
                  )}
                  {row.state !== 'uploading' && row.state !== 'processing' && (
                    <button
                      type="button"
                      className={buttonClass('ghost', 'sm')}
                      onClick={() => onRemove(row.key)}
                      aria-label={`Remove ${row.file.name} from the list`}
                    >
                      Remove
                    </button>
                  )}
                </div>
              </div>
              {view.phase !== 'none' && (
                <ProgressBar
                  value={view.progress}
                  label={`${view.phase === 'upload' ? 'Upload' : 'Processing'} of ${row.file.name}`}
                  tone={view.tone}
                  testId="upload-row-progress"
                />
              )}
              {view.reason && (
                <p className="text-xs text-red-700" data-testid="upload-row-error">
                  {view.reason}
                </p>
              )}
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
