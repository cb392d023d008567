import type { ChatSource } from '../api/sse';
import { formatTime, humanTopic } from '../format';
import type { ChatMessage } from './conversation';

const actionClass =
  'rounded px-2 py-1 text-xs font-medium text-slate-600 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 hover:text-slate-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-brand-500 disabled:cursor-not-allowed disabled:opacity-50';

/** One message of the conversation: a question, an answer (streaming or not), or a notice. */
export function MessageItem({
  message: m,
  aiName,
  busy,
  onReport,
  onSendToTeam,
  onRetry,
}: {
  message: ChatMessage;
  /** "Adam", or "Customer" in a role-play. */
  aiName: string;
  /** An answer is streaming: no new request from here. */
  busy: boolean;
  onReport: () => void;
  onSendToTeam: () => void;
  onRetry?: () => void;
}) {
  if (m.role === 'notice') {
    return (
      <li className="flex items-center gap-3 text-xs text-slate-500" data-testid="chat-notice">
        <span aria-hidden="true" className="h-px flex-1 bg-slate-300" />
        <span>{m.content}</span>
        <span aria-hidden="true" className="h-px flex-1 bg-slate-300" />
      </li>
    );
  }

  if (m.role === 'user') {
    return (
      <li className="flex justify-end" data-testid="user-message">
        <div className="max-w-[85%] rounded-2xl rounded-br-sm bg-brand-700 px-4 py-2.5 text-sm text-white shadow-sm">
          <span className="sr-only">You said: </span>
          <p className="whitespace-pre-wrap break-words">{m.content}</p>
          {m.timestamp && (
            <p className="mt-1 text-right text-[11px] text-brand-200">{formatTime(m.timestamp)}</p>
          )}
        </div>
      </li>
    );
  }

  const streaming = m.state === 'streaming';
  const answered = (m.state === 'done' || m.state === 'stopped') && m.content.length > 0;
  return (
    <li className="flex justify-start" data-testid="assistant-message" data-state={m.state}>
      <article
        aria-label={`${aiName}'s answer`}
        className="w-full max-w-[95%] rounded-2xl rounded-bl-sm bg-white px-4 py-3 text-sm shadow-sm ring-1 ring-slate-200 sm:max-w-[85%]"
      >
        <p className="mb-1 text-xs font-semibold text-brand-700">{aiName}</p>
        <div
          data-testid="streamed-answer"
          data-state={m.state}
          aria-live="polite"
          aria-busy={streaming}
          className="whitespace-pre-wrap break-words text-slate-900"
        >
          {m.content}
          {streaming && (
            <span aria-hidden="true" className="ml-0.5 inline-block h-4 w-1.5 animate-pulse bg-brand-400 align-text-bottom" />
          )}
        </div>
        {streaming && !m.content && (
          <p className="text-slate-500">
            <span className="sr-only">{aiName} is </span>thinking…
          </p>
        )}

        {m.state === 'stopped' && (
          <p className="mt-2 text-xs text-slate-500">
            Stopped before the end of the answer; this turn is not kept in the session.
          </p>
        )}

        {m.state === 'error' && (
          <div
            role="alert"
            data-testid="answer-error"
            className="mt-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800"
          >
            {m.error}
            {onRetry && (
              <button
                type="button"
                onClick={onRetry}
                disabled={busy}
                className="ml-2 font-semibold underline underline-offset-2 hover:no-underline focus:outline-none focus-visible:ring-2 focus-visible:ring-red-500 disabled:opacity-50"
              >
                Try again
              </button>
            )}
          </div>
        )}

        {m.provider === 'offline' && (
          <p
            role="note"
            data-testid="offline-notice"
            className="mt-2 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-xs text-amber-900"
          >
            Offline mode: no AI model is connected, so this answer comes from the built-in offline
            responder (passages of the training material, or a scripted customer in role-play).
          </p>
        )}

        {m.sources && m.sources.length > 0 && <Sources sources={m.sources} />}

        {(answered || m.timestamp) && !streaming && (
          <div className="mt-3 flex flex-wrap items-center gap-2">
            {answered && (
              <>
                <button
                  type="button"
                  onClick={onReport}
                  className={actionClass}
                  data-testid="report-inaccuracy"
                >
                  Report inaccuracy
                </button>
                <button
                  type="button"
                  onClick={onSendToTeam}
                  className={actionClass}
                  data-testid="send-to-team"
                >
                  Send to team
                </button>
              </>
            )}
            <span className="ml-auto text-[11px] text-slate-400">
              {m.cache === 'hit' && 'From cache · '}
              {m.timestamp && formatTime(m.timestamp)}
            </span>
          </div>
        )}
      </article>
    </li>
  );
}

function Sources({ sources }: { sources: ChatSource[] }) {
  return (
    <div className="mt-3 border-t border-slate-100 pt-2">
      <p className="text-xs font-semibold text-slate-600">Sources</p>
      <ul className="mt-1 space-y-1" data-testid="sources">
        {sources.map((s, i) => (
          <li
            key={`${s.filename}-${s.topic}-${i}`}
            className="flex flex-wrap items-baseline gap-x-2 text-xs text-slate-700"
            data-testid="source"
          >
            <span className="break-all font-medium">{s.filename}</span>
            <span className="text-slate-500">{humanTopic(s.topic)}</span>
            <span className="tabular-nums text-slate-500">
              relevance {s.relevance}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}
