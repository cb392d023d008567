import { useCallback, useEffect, useReducer, useRef, useState } from 'react';
import type { FormEvent, KeyboardEvent } from 'react';
import { useSearchParams } from 'react-router-dom';
import {
  clearSessionContext,
  getHistory,
  listScenarios,
  listSessions,
  reportInaccuracy,
  sendToTeam,
} from '../api/chat';
import type { ChatSession, Scenario } from '../api/chat';
import { ApiError } from '../api/client';
import { streamChat } from '../api/sse';
import type { ChatMode, ChatRequest } from '../api/sse';
import { useAuth } from '../auth/AuthContext';
import { chatReducer, contextBefore, turnsUpTo } from '../chat/conversation';
import type { ChatMessage } from '../chat/conversation';
import { MessageItem } from '../chat/MessageItem';
import { ReportDialog } from '../chat/ReportDialog';
import { DealershipPicker, usePickedDealership } from '../components/DealershipPicker';
import { ModeBadge } from '../components/ModeBadge';
import { formatDateTime } from '../format';
import { usePageTitle } from '../usePageTitle';

const MESSAGE_MAX = 5000;
const HISTORY_LIMIT = 200;

let keySeq = 0;
const newKey = (prefix: string) => `${prefix}${++keySeq}`;

/**
 * A new session's id (UUID v4), chosen here so that a first answer stopped
 * before "done" (which carries the server's id) still leaves the next
 * question in the same session. getRandomValues works outside secure
 * contexts too, unlike randomUUID.
 */
function newSessionId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function messageOf(err: unknown, fallback: string): string {
  if (err instanceof ApiError) {
    return err.retryAfter ? `${err.message} (try again in ${err.retryAfter} s)` : err.message;
  }
  return err instanceof Error ? err.message : fallback;
}

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

type Dialog = { kind: 'inaccuracy' | 'team'; key: string } | null;

/**
 * /chat: talk to Adam. Answers stream in token by token with their sources;
 * training or role-play (with a scenario), past sessions to resume, a new
 * session, clearing the context, reporting an answer, and a stop button.
 * ?session=<id> opens a session, ?mode=roleplay starts in role-play.
 */
export function ChatPage() {
  usePageTitle('Chat with Adam');
  const { user } = useAuth();
  const isSuper = user?.role === 'super_admin';
  const [params, setParams] = useSearchParams();

  const [mode, setMode] = useState<ChatMode>(
    params.get('mode') === 'roleplay' ? 'roleplay' : 'training',
  );
  const [scenarioId, setScenarioId] = useState('');
  const [dealershipId, setDealershipId] = usePickedDealership();
  const [sessionId, setSessionId] = useState<string | null>(params.get('session'));
  const [messages, dispatch] = useReducer(chatReducer, []);
  const [input, setInput] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [pageError, setPageError] = useState<string | null>(null);
  const [loadingHistory, setLoadingHistory] = useState(false);
  const [historyTrimmed, setHistoryTrimmed] = useState(false);
  const [sessions, setSessions] = useState<ChatSession[] | null>(null);
  const [sessionsError, setSessionsError] = useState<string | null>(null);
  const [scenarios, setScenarios] = useState<Scenario[] | null>(null);
  const [scenariosError, setScenariosError] = useState<string | null>(null);
  const [clearing, setClearing] = useState(false);
  const [announcement, setAnnouncement] = useState('');
  const [sessionsOpen, setSessionsOpen] = useState(false);
  const [dialog, setDialog] = useState<Dialog>(null);

  const abortRef = useRef<AbortController | null>(null);
  // The id sent for a new session until the server confirms it with "done".
  const draftSessionRef = useRef<string | null>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const endRef = useRef<HTMLDivElement>(null);
  const pickerWrapRef = useRef<HTMLDivElement>(null);

  const announce = useCallback((text: string) => {
    // Re-announce the same words: clear first, then set.
    setAnnouncement('');
    setTimeout(() => setAnnouncement(text), 50);
  }, []);

  // -------------------------------------------------------------------------
  // Loading

  const loadSessions = useCallback((signal?: AbortSignal) => {
    listSessions(50, signal)
      .then((list) => {
        if (signal?.aborted) return;
        setSessions(list);
        setSessionsError(null);
      })
      .catch((err: unknown) => {
        if (!signal?.aborted) setSessionsError(messageOf(err, 'Could not load your sessions.'));
      });
  }, []);

  useEffect(() => {
    const ctrl = new AbortController();
    loadSessions(ctrl.signal);
    listScenarios(ctrl.signal)
      .then((list) => {
        if (!ctrl.signal.aborted) setScenarios(list);
      })
      .catch((err: unknown) => {
        if (!ctrl.signal.aborted) setScenariosError(messageOf(err, 'Could not load the scenarios.'));
      });
    return () => ctrl.abort();
  }, [loadSessions]);

  // The session named in the URL (on arrival, or from the dashboard).
  const openedRef = useRef<string | null>(null);
  useEffect(() => {
    if (!sessionId || openedRef.current === sessionId) return;
    openedRef.current = sessionId;
    const ctrl = new AbortController();
    setLoadingHistory(true);
    setPageError(null);
    getHistory(sessionId, HISTORY_LIMIT, ctrl.signal)
      .then((history) => {
        if (ctrl.signal.aborted) return;
        dispatch({ type: 'load', history });
        setHistoryTrimmed(history.length >= HISTORY_LIMIT);
        announce(`Session loaded with ${history.length} messages.`);
      })
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return;
        setPageError(messageOf(err, 'Could not load that session.'));
        openedRef.current = null;
        setSessionId(null);
        dispatch({ type: 'reset' });
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoadingHistory(false);
      });
    return () => {
      ctrl.abort();
      if (openedRef.current === sessionId) openedRef.current = null;
    };
  }, [sessionId, announce]);

  // A resumed session keeps its own mode.
  useEffect(() => {
    if (!sessionId || !sessions) return;
    const s = sessions.find((x) => x.session_id === sessionId);
    if (s && s.mode !== mode) setMode(s.mode);
  }, [sessionId, sessions, mode]);

  // Keep ?session= in step with the page, so a reload or a shared link reopens it.
  useEffect(() => {
    const current = params.get('session');
    if (current === sessionId) return;
    const next = new URLSearchParams(params);
    if (sessionId) next.set('session', sessionId);
    else next.delete('session');
    next.delete('mode');
    setParams(next, { replace: true });
  }, [sessionId, params, setParams]);

  // Stop a running answer when leaving the page.
  useEffect(() => () => abortRef.current?.abort(), []);

  // Follow the answer as it grows, unless the reader scrolled up.
  const lastContent = messages.length ? messages[messages.length - 1].content.length : 0;
  useEffect(() => {
    const el = endRef.current;
    if (!el || typeof window === 'undefined') return;
    const nearBottom =
      window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 240;
    if (nearBottom) el.scrollIntoView({ block: 'end' });
  }, [messages.length, lastContent]);

  // -------------------------------------------------------------------------
  // Actions

  function startNewSession(reason?: string) {
    abortRef.current?.abort();
    draftSessionRef.current = null;
    openedRef.current = null;
    setSessionId(null);
    dispatch({ type: 'reset' });
    setHistoryTrimmed(false);
    setFormError(null);
    setPageError(null);
    if (reason) announce(reason);
    inputRef.current?.focus();
  }

  function changeMode(next: ChatMode) {
    if (next === mode) return;
    setMode(next);
    if (sessionId || messages.length) {
      startNewSession(next === 'roleplay' ? 'New role-play session.' : 'New training session.');
    } else {
      announce(next === 'roleplay' ? 'Role-play mode.' : 'Training mode.');
    }
  }

  function changeScenario(id: string) {
    setScenarioId(id);
    if (mode === 'roleplay' && (sessionId || messages.length)) {
      startNewSession('New role-play session with the chosen customer.');
    }
  }

  function changeDealership(id: number | null) {
    if (id === dealershipId) return;
    setDealershipId(id);
    if (sessionId || messages.length) startNewSession('New session for the chosen dealership.');
  }

  function openSession(s: ChatSession) {
    setSessionsOpen(false);
    if (s.session_id === sessionId) return;
    abortRef.current?.abort();
    draftSessionRef.current = null;
    setMode(s.mode);
    setFormError(null);
    dispatch({ type: 'reset' });
    setSessionId(s.session_id);
    inputRef.current?.focus();
  }

  async function ask(question: string) {
    if (streaming) return;
    if (!question) return;
    if (question.length > MESSAGE_MAX) {
      setFormError(`A message can have at most ${MESSAGE_MAX} characters.`);
      return;
    }
    if (isSuper && !dealershipId) {
      setFormError('Choose the dealership whose material Adam should use.');
      pickerWrapRef.current?.querySelector('select')?.focus();
      return;
    }
    setFormError(null);
    setPageError(null);

    const answerKey = newKey('a');
    dispatch({
      type: 'send',
      question,
      userKey: newKey('u'),
      answerKey,
      timestamp: new Date().toISOString(),
    });
    const body: ChatRequest = { message: question, mode };
    if (!sessionId && !draftSessionRef.current) draftSessionRef.current = newSessionId();
    body.session_id = sessionId ?? draftSessionRef.current ?? undefined;
    if (isSuper && dealershipId) body.dealership_id = dealershipId;
    if (mode === 'roleplay' && scenarioId && !sessionId) body.scenario_id = scenarioId;

    const ctrl = new AbortController();
    abortRef.current = ctrl;
    setStreaming(true);
    announce(mode === 'roleplay' ? 'The customer is answering…' : 'Adam is answering…');
    try {
      const result = await streamChat(
        body,
        {
          onToken: (text) => dispatch({ type: 'token', key: answerKey, text }),
          onSources: (sources) => dispatch({ type: 'sources', key: answerKey, sources }),
          onDone: (done) => dispatch({ type: 'done', key: answerKey, done }),
        },
        ctrl.signal,
      );
      if (result.done.session_id && result.done.session_id !== sessionId) {
        openedRef.current = result.done.session_id; // already on screen
        draftSessionRef.current = null;
        setSessionId(result.done.session_id);
      }
      announce(
        result.done.provider === 'offline'
          ? 'Answer complete. Offline mode: no AI model is connected.'
          : 'Answer complete.',
      );
      loadSessions();
    } catch (err) {
      if (isAbort(err)) {
        dispatch({ type: 'stop', key: answerKey });
        announce('Stopped.');
      } else {
        let message = messageOf(err, 'The answer failed. Please try again.');
        if (isSuper && sessionId && err instanceof ApiError && err.status === 404) {
          message += ' Sessions belong to a dealership: pick the one this session was held with.';
        }
        dispatch({ type: 'fail', key: answerKey, message });
        announce(message);
      }
    } finally {
      if (abortRef.current === ctrl) abortRef.current = null;
      setStreaming(false);
    }
  }

  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const question = input.trim();
    if (!question || streaming) return;
    setInput('');
    void ask(question);
    inputRef.current?.focus();
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    } else if (e.key === 'Escape' && streaming) {
      e.preventDefault();
      stop();
    }
  }

  function stop() {
    abortRef.current?.abort();
    inputRef.current?.focus();
  }

  async function clearContext() {
    if (!sessionId || streaming) return;
    setClearing(true);
    setPageError(null);
    try {
      const r = await clearSessionContext(sessionId);
      dispatch({
        type: 'notice',
        key: newKey('n'),
        text: 'Context cleared: Adam no longer uses the turns above.',
      });
      announce(r?.message ?? 'Context cleared.');
    } catch (err) {
      setPageError(messageOf(err, 'Could not clear the context.'));
    } finally {
      setClearing(false);
      inputRef.current?.focus();
    }
  }

  const dialogMessage = dialog ? messages.find((m) => m.key === dialog.key) : undefined;

  async function submitReport(note: string): Promise<string> {
    if (!dialog || !dialogMessage) throw new Error('That answer is no longer on the page.');
    const question = dialogMessage.question ?? '';
    if (dialog.kind === 'inaccuracy') {
      const r = await reportInaccuracy({
        user_input: question,
        avatar_response: dialogMessage.content,
        conversation_context: contextBefore(messages, dialog.key),
        user_note: note || undefined,
        session_id: sessionId ?? undefined,
        mode,
      });
      return r.message;
    }
    const r = await sendToTeam({
      user_question: question,
      ai_response: dialogMessage.content,
      conversation_history: turnsUpTo(messages, dialog.key, true),
      additional_notes: note || undefined,
      session_id: sessionId ?? undefined,
    });
    return r.message;
  }

  // -------------------------------------------------------------------------
  // View

  const currentSession = sessions?.find((s) => s.session_id === sessionId);
  const selectedScenario = scenarios?.find((s) => s.id === scenarioId);
  const aiName = mode === 'roleplay' ? 'Customer' : 'Adam';
  const needsDealership = isSuper && !dealershipId;

  return (
    <div className="space-y-4">
      <p className="sr-only" role="status" aria-live="polite" data-testid="chat-announcer">
        {announcement}
      </p>
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0">
          <h1 id="chat-heading" className="text-2xl font-semibold tracking-tight text-brand-900">
            {mode === 'roleplay' ? 'Role-play' : 'Ask Adam'}
          </h1>
          <p className="mt-0.5 truncate text-sm text-slate-500">
            {currentSession?.title ?? (sessionId ? 'Resumed session' : 'New session')}
          </p>
        </div>
        <button
          type="button"
          onClick={clearContext}
          disabled={!sessionId || streaming || clearing}
          data-testid="clear-context"
          className="rounded-md bg-white px-3 py-1.5 text-sm font-medium text-slate-700 shadow-sm ring-1 ring-inset ring-slate-300 hover:bg-slate-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 disabled:cursor-not-allowed disabled:opacity-50"
        >
          {clearing ? 'Clearing…' : 'Clear context'}
        </button>
      </div>

      <div className="flex flex-col gap-4 lg:flex-row lg:items-start lg:gap-6">
        {/* Sessions: a sidebar on a laptop, a collapsible panel on a phone. */}
        <aside aria-labelledby="sessions-heading" className="lg:sticky lg:top-4 lg:w-72 lg:shrink-0">
          <div className="flex items-center justify-between gap-2">
            <h2 id="sessions-heading" className="text-sm font-semibold text-slate-700">
              Sessions
            </h2>
            <div className="flex gap-2">
              <button
                type="button"
                className="rounded-md px-2.5 py-1.5 text-sm font-medium text-brand-800 ring-1 ring-inset ring-slate-300 hover:bg-white focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 lg:hidden"
                aria-expanded={sessionsOpen}
                aria-controls="session-list"
                onClick={() => setSessionsOpen((o) => !o)}
              >
                {sessionsOpen ? 'Hide' : `Show${sessions ? ` (${sessions.length})` : ''}`}
              </button>
              <button
                type="button"
                onClick={() => startNewSession('New session.')}
                disabled={streaming || (!sessionId && messages.length === 0)}
                data-testid="new-session"
                className="rounded-md bg-brand-700 px-2.5 py-1.5 text-sm font-semibold text-white hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2 disabled:cursor-not-allowed disabled:opacity-50"
              >
                New session
              </button>
            </div>
          </div>
          <div id="session-list" className={`${sessionsOpen ? 'block' : 'hidden'} mt-2 lg:block`}>
            {sessionsError ? (
              <p role="alert" className="text-sm text-red-700">
                {sessionsError}
              </p>
            ) : !sessions ? (
              <p className="text-sm text-slate-500">Loading…</p>
            ) : sessions.length === 0 ? (
              <p className="text-sm text-slate-500">No sessions yet.</p>
            ) : (
              <ul
                className="max-h-[60vh] space-y-1 overflow-y-auto rounded-lg bg-white p-1 shadow-sm ring-1 ring-slate-200"
                data-testid="session-list"
              >
                {sessions.map((s) => {
                  const active = s.session_id === sessionId;
                  return (
                    <li key={s.session_id}>
                      <button
                        type="button"
                        onClick={() => openSession(s)}
                        disabled={streaming && !active}
                        aria-current={active ? 'true' : undefined}
                        className={`w-full rounded-md px-2.5 py-2 text-left focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 disabled:opacity-50 ${
                          active ? 'bg-brand-50 ring-1 ring-inset ring-brand-200' : 'hover:bg-slate-50'
                        }`}
                      >
                        <span className="flex items-start justify-between gap-2">
                          <span className="min-w-0 truncate text-sm font-medium text-slate-900">
                            {s.title || 'Untitled session'}
                          </span>
                          <ModeBadge mode={s.mode} />
                        </span>
                        <span className="block text-xs text-slate-500">
                          {formatDateTime(s.last_at)} · {s.messages} message
                          {s.messages === 1 ? '' : 's'}
                        </span>
                      </button>
                    </li>
                  );
                })}
              </ul>
            )}
          </div>
        </aside>

        <section aria-label="Chat" className="min-w-0 flex-1">
          {/* Settings of the session: mode, scenario, dealership. */}
          <div className="grid gap-3 rounded-xl bg-white p-3 shadow-sm ring-1 ring-slate-200 sm:grid-cols-2 sm:p-4">
            <fieldset data-testid="mode-switch" disabled={streaming}>
              <legend className="mb-1 text-xs font-medium text-slate-600">Mode</legend>
              <div className="inline-flex w-full rounded-lg bg-slate-100 p-1 sm:w-auto">
                {(
                  [
                    ['training', 'Training'],
                    ['roleplay', 'Role-play'],
                  ] as const
                ).map(([value, label]) => (
                  <label
                    key={value}
                    className={`flex-1 cursor-pointer rounded-md px-3 py-1.5 text-center text-sm font-medium focus-within:ring-2 focus-within:ring-brand-500 sm:flex-none ${
                      mode === value ? 'bg-white text-brand-900 shadow-sm' : 'text-slate-600 hover:text-slate-900'
                    }`}
                  >
                    <input
                      type="radio"
                      name="chat-mode"
                      value={value}
                      checked={mode === value}
                      onChange={() => changeMode(value)}
                      data-testid={`mode-${value}`}
                      className="sr-only"
                    />
                    {label}
                  </label>
                ))}
              </div>
              <p className="mt-1 text-xs text-slate-500">
                {mode === 'roleplay'
                  ? 'You are the F&I manager; Adam plays the customer.'
                  : 'Adam answers from your dealership’s training material.'}
              </p>
            </fieldset>

            {isSuper && (
              <div ref={pickerWrapRef}>
                <DealershipPicker
                  id="chat-dealership"
                  label="Dealership (required for a super admin)"
                  value={dealershipId}
                  onChange={changeDealership}
                />
              </div>
            )}

            {mode === 'roleplay' && (
              <div className="sm:col-span-2">
                <label htmlFor="scenario" className="mb-1 block text-xs font-medium text-slate-600">
                  Scenario
                </label>
                <select
                  id="scenario"
                  value={scenarioId}
                  onChange={(e) => changeScenario(e.target.value)}
                  disabled={streaming || !scenarios}
                  data-testid="scenario-picker"
                  aria-describedby="scenario-help"
                  className="block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm focus:border-brand-500 focus:outline-none focus:ring-2 focus:ring-brand-200 disabled:bg-slate-100"
                >
                  <option value="">
                    {sessionId && !scenarioId ? 'This session’s customer' : 'A random customer'}
                  </option>
                  {scenarios?.map((s) => (
                    <option key={s.id} value={s.id}>
                      {s.product || s.id}
                    </option>
                  ))}
                </select>
                <p id="scenario-help" className="mt-1 text-xs text-slate-500">
                  {scenariosError ??
                    (sessionId
                      ? 'Picking another scenario starts a new session.'
                      : 'The customer and the product for this role-play.')}
                </p>
                {selectedScenario && <ScenarioCard scenario={selectedScenario} />}
              </div>
            )}
          </div>

          {pageError && (
            <div
              role="alert"
              className="mt-4 rounded-md border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800"
            >
              {pageError}
            </div>
          )}

          <div className="mt-4" aria-busy={loadingHistory}>
            {loadingHistory && (
              <p role="status" className="py-6 text-center text-sm text-slate-500">
                Loading the session…
              </p>
            )}
            {historyTrimmed && (
              <p className="mb-2 text-center text-xs text-slate-500">
                Showing the latest {HISTORY_LIMIT} messages of this session.
              </p>
            )}
            {!loadingHistory && messages.length === 0 && (
              <div className="rounded-xl border border-dashed border-slate-300 px-4 py-8 text-center text-sm text-slate-500">
                {mode === 'roleplay' ? (
                  <>
                    Open the conversation as you would in the F&amp;I office. The customer will
                    answer, raise objections, and react to how you handle them.
                  </>
                ) : (
                  <>
                    Ask about menu presentation, product knowledge, objection handling or compliance.
                    Answers cite your dealership’s training material.
                  </>
                )}
              </div>
            )}
            <ol aria-label="Conversation" className="space-y-4" data-testid="message-list">
              {messages.map((m: ChatMessage) => (
                <MessageItem
                  key={m.key}
                  message={m}
                  aiName={aiName}
                  busy={streaming}
                  onReport={() => setDialog({ kind: 'inaccuracy', key: m.key })}
                  onSendToTeam={() => setDialog({ kind: 'team', key: m.key })}
                  onRetry={m.question ? () => void ask(m.question ?? '') : undefined}
                />
              ))}
            </ol>
            <div ref={endRef} />
          </div>

          <form
            onSubmit={onSubmit}
            className="sticky bottom-0 mt-4 rounded-xl bg-white/95 p-3 shadow-md ring-1 ring-slate-200 backdrop-blur"
          >
            <label htmlFor="chat-input" className="sr-only">
              {mode === 'roleplay' ? 'What you say to the customer' : 'Your question for Adam'}
            </label>
            <textarea
              id="chat-input"
              ref={inputRef}
              value={input}
              onChange={(e) => setInput(e.target.value)}
              onKeyDown={onKeyDown}
              rows={2}
              maxLength={MESSAGE_MAX}
              placeholder={mode === 'roleplay' ? 'Say something to the customer…' : 'Ask Adam…'}
              aria-describedby="chat-input-help"
              aria-invalid={formError ? true : undefined}
              data-testid="chat-input"
              className="block w-full resize-y rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-brand-500 focus:outline-none focus:ring-2 focus:ring-brand-200"
            />
            {formError && (
              <p role="alert" className="mt-2 text-sm text-red-700">
                {formError}
              </p>
            )}
            <div className="mt-2 flex flex-wrap items-center justify-between gap-2">
              <p id="chat-input-help" className="text-xs text-slate-500">
                Enter to send, Shift+Enter for a new line{streaming ? ', Escape to stop' : ''}.
                {input.length > MESSAGE_MAX - 500 && (
                  <span className="ml-1 tabular-nums">
                    {input.length}/{MESSAGE_MAX}
                  </span>
                )}
              </p>
              <div className="ml-auto flex gap-2">
                {streaming && (
                  <button
                    type="button"
                    onClick={stop}
                    data-testid="stop-button"
                    className="rounded-md bg-white px-4 py-2 text-sm font-semibold text-red-700 ring-1 ring-inset ring-red-300 hover:bg-red-50 focus:outline-none focus-visible:ring-2 focus-visible:ring-red-500"
                  >
                    Stop
                  </button>
                )}
                <button
                  type="submit"
                  disabled={streaming || !input.trim() || needsDealership}
                  data-testid="send-button"
                  className="rounded-md bg-brand-700 px-4 py-2 text-sm font-semibold text-white hover:bg-brand-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 focus-visible:ring-offset-2 disabled:cursor-not-allowed disabled:opacity-50"
                >
                  Send
                </button>
              </div>
            </div>
            {needsDealership && (
              <p className="mt-1 text-xs text-amber-800">
                Choose a dealership above before sending.
              </p>
            )}
          </form>
        </section>
      </div>

      <ReportDialog
        open={dialog?.kind === 'inaccuracy'}
        title="Report an inaccurate answer"
        description="Tell the team what is wrong or missing. The question, the answer and the conversation before it are sent with your note."
        noteLabel="What is inaccurate?"
        submitLabel="Send report"
        onSubmit={submitReport}
        onClose={() => setDialog(null)}
        testId="report-dialog"
      />
      <ReportDialog
        open={dialog?.kind === 'team'}
        title="Send to the team"
        description="Share this answer with your training team, for a question Adam could not answer or for follow-up. The conversation so far is included."
        noteLabel="Your message"
        submitLabel="Send"
        onSubmit={submitReport}
        onClose={() => setDialog(null)}
        testId="team-dialog"
      />
    </div>
  );
}

function ScenarioCard({ scenario }: { scenario: Scenario }) {
  const objections = Array.isArray(scenario.objections)
    ? scenario.objections.length
    : scenario.objections;
  return (
    <details className="mt-2 rounded-md bg-slate-50 px-3 py-2 text-sm ring-1 ring-inset ring-slate-200">
      <summary className="cursor-pointer font-medium text-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500">
        About this customer
      </summary>
      <dl className="mt-2 space-y-2 text-slate-700">
        {scenario.customer_profile && (
          <div>
            <dt className="text-xs font-medium text-slate-500">Customer</dt>
            <dd>{scenario.customer_profile}</dd>
          </div>
        )}
        {scenario.product && (
          <div>
            <dt className="text-xs font-medium text-slate-500">Product</dt>
            <dd>{scenario.product}</dd>
          </div>
        )}
        {scenario.opening_line && (
          <div>
            <dt className="text-xs font-medium text-slate-500">The customer opens with</dt>
            <dd className="italic">“{scenario.opening_line}”</dd>
          </div>
        )}
        {objections > 0 && (
          <div>
            <dt className="text-xs font-medium text-slate-500">Objections to expect</dt>
            <dd>{objections}</dd>
          </div>
        )}
      </dl>
    </details>
  );
}
