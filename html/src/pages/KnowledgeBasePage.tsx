import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { useSearchParams } from 'react-router-dom';
import { ApiError } from '../api/client';
import {
  DEFAULT_TOPICS,
  kbDeleteDocument,
  kbDocument,
  kbDocuments,
  kbInitialize,
  kbReset,
  kbStatus,
  kbUploadPath,
} from '../api/admin';
import type { KbDocument, KbStatus, UploadAnswer } from '../api/admin';
import { buildMultipart, fileProgress, sendMultipart } from '../api/upload';
import {
  anyActive,
  docsReducer,
  findDoc,
  idsToWatch,
  initialDocsState,
  visibleDocs,
} from '../admin/documents';
import type { DocsState } from '../admin/documents';
import { formatDateTime, topicLabel } from '../admin/format';
import { Poller } from '../admin/poll';
import { isBusy, planBatches, uploadsReducer } from '../admin/uploads';
import type { UploadRow } from '../admin/uploads';
import { useDealerships } from '../admin/useDealerships';
import { errorMessage } from '../admin/validation';
import { useAuth } from '../auth/AuthContext';
import { buttonClass } from '../components/buttons';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { DealershipSelect } from '../components/DealershipSelect';
import { KbDocumentList } from '../components/KbDocumentList';
import { KbQueryTester } from '../components/KbQueryTester';
import { KbUploadPanel } from '../components/KbUploadPanel';
import { ErrorNotice, SuccessNotice } from '../components/Notice';
import { PageHeader, Panel } from '../components/PageHeader';
import { usePageTitle } from '../usePageTitle';

const DOCS_PAGE = 50;
const POLL_MS = 1000;

/** Knowledge base admin: SA picks a dealership (?dealership=ID), DA gets its own. */
export function KnowledgeBasePage() {
  usePageTitle('Knowledge base');
  const { user } = useAuth();
  const isSA = user?.role === 'super_admin';
  const [params, setParams] = useSearchParams();
  const { dealerships, loading, error } = useDealerships(isSA);

  const picked = Number(params.get('dealership'));
  const dealershipId = isSA
    ? Number.isInteger(picked) && picked > 0
      ? picked
      : null
    : (user?.dealership_id ?? null);

  return (
    <div className="space-y-6">
      <PageHeader title="Knowledge base">
        The documents Adam answers from: upload them by topic, follow their processing and test what a question finds.
      </PageHeader>

      {isSA && (
        <div className="max-w-md">
          <ErrorNotice message={error} />
          <DealershipSelect
            dealerships={dealerships}
            value={dealershipId ? String(dealershipId) : ''}
            onValue={(v) => setParams(v ? { dealership: v } : {}, { replace: true })}
            emptyLabel={loading ? 'Loading…' : 'Choose a dealership'}
            testId="kb-dealership-select"
          />
        </div>
      )}

      {dealershipId ? (
        <KnowledgeBase key={dealershipId} dealershipId={dealershipId} />
      ) : isSA ? (
        <p className="text-sm text-slate-500">Choose a dealership to manage its knowledge base.</p>
      ) : (
        <ErrorNotice message="Your account is not assigned to a dealership." />
      )}
    </div>
  );
}

type Confirm = { kind: 'delete'; doc: KbDocument } | { kind: 'reset'; name: string } | null;

function KnowledgeBase({ dealershipId }: { dealershipId: number }) {
  // Status (initialised? totals)
  const [status, setStatus] = useState<KbStatus | null>(null);
  const [statusError, setStatusError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [initialising, setInitialising] = useState(false);
  const [confirm, setConfirm] = useState<Confirm>(null);

  const loadStatus = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const s = await kbStatus(dealershipId, signal);
        setStatus(s);
        setStatusError(null);
      } catch (err) {
        if (!signal?.aborted) setStatusError(errorMessage(err, 'Could not load the knowledge base.'));
      }
    },
    [dealershipId],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    void loadStatus(ctrl.signal);
    return () => ctrl.abort();
  }, [loadStatus]);

  const initialized = status?.initialized === true;
  const topics = useMemo(() => {
    const t = status?.initialized ? status.config.topics : undefined;
    return Array.isArray(t) && t.length > 0 ? t : [...DEFAULT_TOPICS];
  }, [status]);

  // Documents and their live status
  const [docs, dispatchDocs] = useReducer(docsReducer, initialDocsState);
  const docsRef = useRef<DocsState>(docs);
  docsRef.current = docs;
  const [topic, setTopic] = useState('');
  const [skip, setSkip] = useState(0);
  const viewRef = useRef({ topic, skip });
  viewRef.current = { topic, skip };
  const [docsLoaded, setDocsLoaded] = useState(false);
  const [pollError, setPollError] = useState<string | null>(null);
  const [polling, setPolling] = useState(false);

  // Uploads
  const [rows, dispatchRows] = useReducer(uploadsReducer, [] as UploadRow[]);
  const rowsRef = useRef(rows);
  rowsRef.current = rows;
  const uploadCtrl = useRef<AbortController | null>(null);
  const [uploading, setUploading] = useState(false);

  const poller = useMemo(
    () =>
      new Poller(
        async (signal) => {
          const view = viewRef.current;
          const list = await kbDocuments(
            dealershipId,
            { topic: view.topic || undefined, skip: view.skip, limit: DOCS_PAGE },
            signal,
          );
          dispatchDocs({ type: 'list', docs: list });
          setDocsLoaded(true);

          const uploaded = rowsRef.current.flatMap((r) => (r.docId !== undefined ? [r.docId] : []));
          const watch = idsToWatch(list, docsRef.current, uploaded);
          const fetched: KbDocument[] = [];
          const missing: number[] = [];
          let transient = false;
          const answers = await Promise.allSettled(watch.map((id) => kbDocument(dealershipId, id, signal)));
          answers.forEach((a, i) => {
            if (a.status === 'fulfilled') fetched.push(a.value);
            else if (a.reason instanceof ApiError && a.reason.status === 404) missing.push(watch[i]);
            else transient = true;
          });
          if (signal.aborted) return false;
          dispatchDocs({ type: 'details', docs: fetched, missing });
          setPollError(null);

          const again = transient || anyActive(list) || anyActive(fetched);
          setPolling(again);
          if (!again) void loadStatus();
          return again;
        },
        {
          intervalMs: POLL_MS,
          onError: (err) => {
            setPollError(errorMessage(err, 'Could not load the documents.'));
            setDocsLoaded(true);
            // Keep trying through network trouble and busy servers; stop on a refusal.
            const keep = err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500);
            setPolling(keep);
            return keep;
          },
        },
      ),
    [dealershipId, loadStatus],
  );

  const refreshDocs = useCallback(() => {
    poller.stop();
    poller.kick();
  }, [poller]);

  useEffect(() => {
    if (initialized) refreshDocs();
    return () => poller.stop();
  }, [initialized, topic, skip, poller, refreshDocs]);

  useEffect(
    () => () => {
      uploadCtrl.current?.abort();
    },
    [],
  );

  // Uploading: one request per batch, one batch after the other.
  const runUploads = useCallback(async () => {
    if (uploadCtrl.current) return;
    const ctrl = new AbortController();
    uploadCtrl.current = ctrl;
    setUploading(true);
    const handled = new Set<string>();
    try {
      for (;;) {
        const pending = rowsRef.current.filter((r) => !handled.has(r.key));
        const batch = planBatches(pending)[0];
        if (!batch || ctrl.signal.aborted) break;
        batch.forEach((k) => handled.add(k));
        const batchRows = batch
          .map((k) => rowsRef.current.find((r) => r.key === k))
          .filter((r): r is UploadRow => r !== undefined);
        const multipart = buildMultipart(batchRows.map((r) => r.file));
        dispatchRows({ type: 'start', keys: batch });
        try {
          const answer = await sendMultipart<UploadAnswer>(kbUploadPath(dealershipId, batchRows[0].topic), multipart, {
            signal: ctrl.signal,
            onProgress: (loaded, total) => {
              dispatchRows({ type: 'progress', keys: batch, fractions: fileProgress(loaded, multipart.ranges) });
              if (loaded >= total) dispatchRows({ type: 'sent', keys: batch });
            },
          });
          dispatchRows({ type: 'accepted', keys: batch, documents: answer.documents ?? [] });
          poller.kick();
        } catch (err) {
          if (err instanceof DOMException && err.name === 'AbortError') {
            dispatchRows({ type: 'cancelled', keys: batch });
            break;
          }
          dispatchRows({ type: 'failed', keys: batch, message: errorMessage(err, 'The upload failed.') });
        }
      }
    } finally {
      uploadCtrl.current = null;
      setUploading(false);
      void loadStatus();
    }
  }, [dealershipId, loadStatus, poller]);

  const cancelUploads = useCallback(() => uploadCtrl.current?.abort(), []);

  // Rows accepted by the server before the first poll answer are watched
  // through the poller; make sure it runs once they have ids.
  const acceptedIds = rows.filter((r) => r.docId !== undefined).length;
  useEffect(() => {
    if (acceptedIds > 0) poller.kick();
  }, [acceptedIds, poller]);

  const docFor = useCallback(
    (id: number) => ({ doc: findDoc(docs, id), gone: docs.gone.includes(id) }),
    [docs],
  );

  async function initialise() {
    setInitialising(true);
    setActionError(null);
    setNotice(null);
    try {
      const out = await kbInitialize(dealershipId);
      setNotice(out.message);
      await loadStatus();
    } catch (err) {
      setActionError(errorMessage(err));
    } finally {
      setInitialising(false);
    }
  }

  async function deleteDoc(doc: KbDocument) {
    await kbDeleteDocument(dealershipId, doc.id);
    dispatchDocs({ type: 'removed', id: doc.id });
    setNotice(`Deleted “${doc.filename}”.`);
    refreshDocs();
    void loadStatus();
  }

  async function reset() {
    const out = await kbReset(dealershipId);
    setNotice(out.message);
    dispatchDocs({ type: 'reset' });
    dispatchRows({ type: 'clearFinished' });
    setSkip(0);
    refreshDocs();
    await loadStatus();
  }

  if (!status) {
    return statusError ? (
      <ErrorNotice message={statusError} testId="kb-status-error" />
    ) : (
      <p className="text-sm text-slate-500" role="status">
        Loading the knowledge base…
      </p>
    );
  }

  return (
    <div className="space-y-6">
      <div aria-live="polite" className="space-y-2">
        <SuccessNotice testId="kb-notice">{notice}</SuccessNotice>
      </div>
      <ErrorNotice message={actionError ?? statusError} testId="kb-error" />

      <Panel title="Status" testId="kb-status">
        {status.initialized ? (
          <div data-testid="kb-status-initialized" data-initialized="true">
            <dl className="grid gap-4 text-sm sm:grid-cols-2 lg:grid-cols-4">
              <Stat label="Dealership">{status.dealership_name}</Stat>
              <Stat label="Documents" testId="kb-total-documents">
                {status.total_documents}
              </Stat>
              <Stat label="Chunks" testId="kb-total-chunks">
                {status.total_chunks}
              </Stat>
              <Stat label="Vector store">
                {status.vector_db} · {status.vector_count} vectors
              </Stat>
              <Stat label="Embedding model">
                {String(status.config.model ?? '—')}
                {status.config.dimensions ? ` (${status.config.dimensions} dimensions)` : ''}
              </Stat>
              <Stat label="Chunking">
                {status.config.chunk_size ?? '—'} characters, overlap {status.config.chunk_overlap ?? '—'}
              </Stat>
              <Stat label="Initialised">{formatDateTime(status.config.initialized_at)}</Stat>
            </dl>
            {Object.keys(status.documents_by_topic).length > 0 && (
              <div className="mt-4">
                <h3 className="text-sm font-medium text-slate-700">By topic</h3>
                <ul className="mt-2 flex flex-wrap gap-2 text-xs">
                  {Object.entries(status.documents_by_topic).map(([t, n]) => (
                    <li key={t} className="rounded-full bg-slate-100 px-2.5 py-1 text-slate-700">
                      {topicLabel(t)}: {n}
                    </li>
                  ))}
                </ul>
              </div>
            )}
          </div>
        ) : (
          <div className="space-y-3" data-testid="kb-status-initialized" data-initialized="false">
            <p className="text-sm text-slate-600">{status.message}</p>
            <button
              type="button"
              className={buttonClass('primary')}
              onClick={initialise}
              disabled={initialising}
              data-testid="kb-initialize"
            >
              {initialising ? 'Initialising…' : 'Initialise the knowledge base'}
            </button>
          </div>
        )}
      </Panel>

      {initialized && (
        <>
          <KbUploadPanel
            topics={topics}
            rows={rows}
            busy={uploading || isBusy(rows)}
            docFor={docFor}
            onAdd={(files, t) => dispatchRows({ type: 'add', files, topic: t })}
            onUpload={() => void runUploads()}
            onCancel={cancelUploads}
            onRetry={(keys) => dispatchRows({ type: 'retry', keys })}
            onRemove={(key) => dispatchRows({ type: 'remove', key })}
            onClearFinished={() => dispatchRows({ type: 'clearFinished' })}
          />

          <KbDocumentList
            docs={visibleDocs(docs)}
            loaded={docsLoaded}
            topics={topics}
            topic={topic}
            onTopic={(t) => {
              setTopic(t);
              setSkip(0);
            }}
            skip={skip}
            limit={DOCS_PAGE}
            onSkip={setSkip}
            error={pollError}
            live={polling}
            onRefresh={refreshDocs}
            onDelete={(doc) => setConfirm({ kind: 'delete', doc })}
          />

          <KbQueryTester dealershipId={dealershipId} topics={topics} />

          <Panel title="Danger zone" testId="kb-danger">
            <div className="flex flex-wrap items-center justify-between gap-3">
              <p className="text-sm text-slate-600">
                Resetting removes every document, chunk and vector of this knowledge base. Its settings stay.
              </p>
              <button
                type="button"
                className={buttonClass('danger')}
                onClick={() => setConfirm({ kind: 'reset', name: status.dealership_name })}
                data-testid="kb-reset"
              >
                Reset knowledge base
              </button>
            </div>
          </Panel>
        </>
      )}

      {confirm?.kind === 'delete' && (
        <ConfirmDialog
          title="Delete document"
          confirmLabel="Delete document"
          onConfirm={() => deleteDoc(confirm.doc)}
          onClose={() => setConfirm(null)}
        >
          Delete <strong className="break-all">{confirm.doc.filename}</strong> with its chunks and vectors? Adam
          stops using it at once.
        </ConfirmDialog>
      )}
      {confirm?.kind === 'reset' && (
        <ConfirmDialog
          title="Reset knowledge base"
          confirmLabel="Reset"
          requireText={confirm.name}
          onConfirm={reset}
          onClose={() => setConfirm(null)}
        >
          Every document of <strong>{confirm.name}</strong> is deleted with its chunks, vectors and cached answers.
          This cannot be undone.
        </ConfirmDialog>
      )}
    </div>
  );
}

function Stat({ label, children, testId }: { label: string; children: ReactNode; testId?: string }) {
  return (
    <div>
      <dt className="text-slate-500">{label}</dt>
      <dd className="mt-0.5 font-medium text-slate-900" data-testid={testId}>
        {children}
      </dd>
    </div>
  );
}
