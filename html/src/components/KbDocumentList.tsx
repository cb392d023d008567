import type { KbDocument } from '../api/admin';
import { isActive, statusLabel } from '../admin/documents';
import { formatDateTime, percent, plural, topicLabel } from '../admin/format';
import { formatBytes } from '../admin/uploads';
import { buttonClass } from './buttons';
import { SelectField } from './FormField';
import { Badge } from './Notice';
import type { BadgeTone } from './Notice';
import { ErrorNotice } from './Notice';
import { Panel } from './PageHeader';
import { Pager } from './Pager';
import { ProgressBar } from './ProgressBar';

const TONES: Record<string, BadgeTone> = {
  queued: 'neutral',
  extracting: 'info',
  embedding: 'info',
  ready: 'success',
  failed: 'danger',
};

interface KbDocumentListProps {
  docs: readonly KbDocument[];
  loaded: boolean;
  topics: readonly string[];
  topic: string;
  onTopic: (topic: string) => void;
  skip: number;
  limit: number;
  onSkip: (skip: number) => void;
  /** A polling or loading error; polling may go on. */
  error: string | null;
  live: boolean;
  onRefresh: () => void;
  onDelete: (doc: KbDocument) => void;
}

/** The knowledge base's documents with their live ingestion status. */
export function KbDocumentList({
  docs,
  loaded,
  topics,
  topic,
  onTopic,
  skip,
  limit,
  onSkip,
  error,
  live,
  onRefresh,
  onDelete,
}: KbDocumentListProps) {
  const active = docs.filter((d) => isActive(d.status)).length;
  const liveText = !loaded
    ? 'Loading documents…'
    : active > 0
      ? `${plural(active, 'document')} being processed.`
      : docs.length > 0
        ? 'All documents on this page are processed.'
        : '';

  return (
    <Panel
      title="Documents"
      testId="kb-documents"
      actions={
        <button type="button" className={buttonClass('secondary', 'sm')} onClick={onRefresh} data-testid="kb-documents-refresh">
          Refresh
        </button>
      }
    >
      <div className="mb-4 flex flex-wrap items-end justify-between gap-3">
        <SelectField
          label="Topic"
          value={topic}
          onValue={onTopic}
          options={[{ value: '', label: 'All topics' }, ...topics.map((t) => ({ value: t, label: topicLabel(t) }))]}
          testId="kb-documents-topic"
          className="w-full sm:w-56"
        />
        <p role="status" aria-live="polite" className="text-sm text-slate-600" data-testid="kb-documents-live">
          {liveText}
          {live && active > 0 && <span className="sr-only"> Updating every second.</span>}
        </p>
      </div>

      <ErrorNotice message={error} testId="kb-documents-error" />

      {loaded && docs.length === 0 && !error && (
        <p className="py-6 text-center text-sm text-slate-500" data-testid="kb-documents-empty">
          {skip > 0 ? 'No more documents.' : topic ? 'No documents in this topic yet.' : 'No documents yet.'}
        </p>
      )}

      {docs.length > 0 && (
        <ul className="divide-y divide-slate-100 rounded-lg ring-1 ring-slate-200" aria-label="Documents">
          {docs.map((d) => (
            <li
              key={d.id}
              data-testid="doc-row"
              data-doc-id={d.id}
              data-filename={d.filename}
              data-status={d.status}
              className="space-y-2 px-3 py-3"
            >
              <div className="flex flex-wrap items-start justify-between gap-2">
                <div className="min-w-0">
                  <p className="break-all text-sm font-medium text-slate-900">{d.filename}</p>
                  <p className="text-xs text-slate-500">
                    {topicLabel(d.topic)} · {formatBytes(d.bytes)} · {plural(d.chunk_count, 'chunk')} · added{' '}
                    {formatDateTime(d.created_at)}
                  </p>
                </div>
                <div className="flex items-center gap-2">
                  <span data-testid="doc-row-status" data-status={d.status}>
                    <Badge tone={TONES[d.status] ?? 'neutral'}>
                      {statusLabel(d.status)}
                      {isActive(d.status) && d.progress !== undefined ? ` ${percent(d.progress)}` : ''}
                    </Badge>
                  </span>
                  <button
                    type="button"
                    className={buttonClass('ghost', 'sm')}
                    onClick={() => onDelete(d)}
                    aria-label={`Delete ${d.filename}`}
                    data-testid="doc-delete"
                  >
                    Delete
                  </button>
                </div>
              </div>
              {isActive(d.status) && (
                <ProgressBar
                  value={d.progress ?? null}
                  label={`Processing of ${d.filename}`}
                  testId="doc-row-progress"
                />
              )}
              {d.status === 'failed' && (
                <p className="text-xs text-red-700" data-testid="doc-row-error">
                  {d.error ?? 'The document could not be processed.'}
                </p>
              )}
            </li>
          ))}
        </ul>
      )}

      {loaded && (docs.length > 0 || skip > 0) && (
        <div className="mt-4">
          <Pager
            skip={skip}
            limit={limit}
            shown={docs.length}
            onSkip={onSkip}
            label="Documents"
            testIdPrefix="kb-documents"
          />
        </div>
      )}
    </Panel>
  );
}
