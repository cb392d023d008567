import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { useNavigate } from 'react-router-dom';
import { createAvatarSession, isNoAvatarProvider, listAvatarVoices } from '../api/avatar';
import type { AvatarVoice } from '../api/avatar';
import { ApiError } from '../api/client';
import { useAuth } from '../auth/AuthContext';
import { getFreshAccessToken } from '../auth/refresh';
import { DealershipPicker, usePickedDealership } from '../components/DealershipPicker';
import { buttonClass } from '../components/buttons';
import { usePageTitle } from '../usePageTitle';
import { BuiltInAvatar } from '../voice/BuiltInAvatar';
import { LevelMeter } from '../voice/LevelMeter';
import { VoiceCall, newStats } from '../voice/call';
import type { VoiceSnapshot, VoiceStats } from '../voice/call';
import { WebAudioEngine } from '../voice/engine';
import { statusLabel } from '../voice/protocol';
import type { CallStatus, Turn, VoiceMode } from '../voice/protocol';

declare global {
  interface Window {
    /**
     * The voice call's counters, for end-to-end tests (see VoiceStats in
     * voice/call.ts): framesSent, bytesSent, bytesReceived, audioMessages,
     * chunksPlayed (buffers scheduled on the AudioContext), chunksEnded,
     * secondsScheduled, playbackEnd, state, visemes, visemeMessages,
     * mouth, interruptsSent, bargeIns, interruptedReceived, lastMessages,
     * sampleRate, micLevelDb. A new object when a call starts.
     */
    __avatarVoice?: VoiceStats;
  }
}

type AvatarState =
  | { kind: 'loading' }
  | { kind: 'builtin'; note: string }
  | { kind: 'provider'; sessionId: string }
  | { kind: 'error'; message: string };

const IDLE_SNAPSHOT: VoiceSnapshot = {
  status: 'idle',
  mode: 'training',
  transcript: { turns: [], seq: 0 },
  failure: null,
  turnError: null,
  modePending: false,
};

const noopSubscribe = () => () => undefined;

function wsOrigin(): string {
  return `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}`;
}

const STATUS_STYLE: Record<CallStatus, string> = {
  idle: 'bg-slate-100 text-slate-700 ring-slate-200',
  connecting: 'bg-amber-50 text-amber-900 ring-amber-200',
  listening: 'bg-emerald-50 text-emerald-800 ring-emerald-200',
  user_speaking: 'bg-emerald-100 text-emerald-900 ring-emerald-300',
  thinking: 'bg-brand-50 text-brand-800 ring-brand-200',
  adam_speaking: 'bg-accent-400/20 text-brand-900 ring-accent-400/50',
  ended: 'bg-slate-100 text-slate-700 ring-slate-200',
};

/**
 * /voice: a spoken conversation with Adam over the live voice socket.
 * Start the call, talk; Adam answers aloud with a moving face. Training or
 * role-play, interrupt by talking over him (or the button, or Escape).
 */
export function VoicePage() {
  usePageTitle('Voice call with Adam');
  const { user, logout } = useAuth();
  const navigate = useNavigate();
  const isSuper = user?.role === 'super_admin';
  const [dealershipId, setDealershipId] = usePickedDealership();
  const [mode, setModeState] = useState<VoiceMode>('training');
  const [call, setCall] = useState<VoiceCall | null>(null);
  const [stats, setStats] = useState<VoiceStats>(() => newStats());
  const [announcement, setAnnouncement] = useState('');
  const [spoken, setSpoken] = useState('');
  const [avatar, setAvatar] = useState<AvatarState>({ kind: 'loading' });
  const [voices, setVoices] = useState<AvatarVoice[] | null>(null);
  const [provider, setProvider] = useState<string | undefined>(undefined);
  const [voiceId, setVoiceId] = useState('');
  const [avatarBusy, setAvatarBusy] = useState(false);
  const callButtonRef = useRef<HTMLButtonElement>(null);
  const transcriptEndRef = useRef<HTMLLIElement>(null);

  const subscribe = useCallback((l: () => void) => (call ? call.subscribe(l) : noopSubscribe()), [call]);
  const getSnapshot = useCallback(() => (call ? call.snapshot : IDLE_SNAPSHOT), [call]);
  const snap = useSyncExternalStore(subscribe, getSnapshot);
  const status = snap.status;
  const inCall = status === 'connecting' || status === 'listening' || status === 'user_speaking'
    || status === 'thinking' || status === 'adam_speaking';
  const activeMode = inCall ? snap.mode : mode;
  const roleplay = activeMode === 'roleplay';
  // Who answers: in role-play Adam plays the customer.
  const aiName = roleplay ? 'The customer' : 'Adam';
  const aiShort = roleplay ? 'Customer' : 'Adam';

  // The counters for tests, from the page's first render.
  useEffect(() => {
    window.__avatarVoice = stats;
  }, [stats]);

  // -------------------------------------------------------------------------
  // The avatar provider

  const openAvatarSession = useCallback((voice: string | undefined, signal?: AbortSignal) => {
    setAvatarBusy(true);
    createAvatarSession(voice, signal)
      .then((s) => {
        if (!signal?.aborted) setAvatar({ kind: 'provider', sessionId: s.session_id });
      })
      .catch((err: unknown) => {
        if (signal?.aborted) return;
        if (isNoAvatarProvider(err)) {
          setAvatar({ kind: 'builtin', note: (err as ApiError).message });
        } else {
          setAvatar({
            kind: 'error',
            message: err instanceof Error ? err.message : 'The avatar provider could not start a session.',
          });
        }
      })
      .finally(() => {
        if (!signal?.aborted) setAvatarBusy(false);
      });
  }, []);

  useEffect(() => {
    const ctrl = new AbortController();
    listAvatarVoices(ctrl.signal)
      .then((v) => {
        if (ctrl.signal.aborted) return;
        setVoices(v.voices);
        setProvider(v.provider);
        if (v.provider === 'builtin') {
          // no provider: no session to ask for (the server would say 503)
          setAvatar({
            kind: 'builtin',
            note: 'No avatar provider is configured; the web app uses its built-in avatar',
          });
          return;
        }
        openAvatarSession(undefined, ctrl.signal);
      })
      .catch(() => {
        if (ctrl.signal.aborted) return;
        setVoices([]);
        openAvatarSession(undefined, ctrl.signal);
      });
    return () => ctrl.abort();
  }, [openAvatarSession]);

  // -------------------------------------------------------------------------
  // The call

  const announce = useCallback((text: string) => {
    setAnnouncement('');
    setTimeout(() => setAnnouncement(text), 50);
  }, []);

  // Read out the coarse state changes (not the user's own speaking).
  const lastAnnounced = useRef<CallStatus>('idle');
  useEffect(() => {
    if (status === 'user_speaking' || status === lastAnnounced.current) return;
    if (status === 'listening' && lastAnnounced.current === 'adam_speaking') {
      lastAnnounced.current = status;
      return; // the end of an answer needs no announcement of its own
    }
    lastAnnounced.current = status;
    if (status !== 'idle') announce(statusLabel(status, aiName));
  }, [status, aiName, announce]);

  // Read out each finished turn once.
  const spokenKeys = useRef(new Set<string>());
  useEffect(() => {
    for (const t of snap.transcript.turns) {
      if (t.state === 'live' || spokenKeys.current.has(t.key)) continue;
      spokenKeys.current.add(t.key);
      if (t.role === 'user') setSpoken(`You said: ${t.text}`);
      else if (t.role === 'adam') setSpoken(`${aiName} said: ${t.text}`);
      else setSpoken(t.text);
    }
  }, [snap.transcript, aiName]);

  // Follow the transcript as it grows.
  const turnCount = snap.transcript.turns.length;
  const lastText = turnCount ? snap.transcript.turns[turnCount - 1].text.length : 0;
  useEffect(() => {
    transcriptEndRef.current?.scrollIntoView?.({ block: 'nearest' });
  }, [turnCount, lastText]);

  // Leaving the page ends the call.
  useEffect(() => () => call?.stop(), [call]);

  // Escape interrupts Adam.
  useEffect(() => {
    if (!call) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape' || e.defaultPrevented) return;
      const s = call.snapshot.status;
      if (s === 'adam_speaking' || s === 'thinking') {
        e.preventDefault();
        call.interrupt();
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [call]);

  function startCall() {
    if (!user || inCall) return;
    if (isSuper && !dealershipId) {
      document.getElementById('voice-dealership')?.focus();
      return;
    }
    const next = new VoiceCall(
      { userId: user.id, mode, dealershipId: isSuper ? dealershipId : null, origin: wsOrigin() },
      {
        createEngine: () => new WebAudioEngine(),
        openSocket: (url, protocols) => new WebSocket(url, protocols),
        getToken: () => getFreshAccessToken(),
      },
    );
    // A new call is a new conversation on the server: a new transcript.
    spokenKeys.current = new Set();
    setCall(next);
    setStats(next.stats);
    void next.start(); // in the click: the audio context may play
  }

  function endCall() {
    call?.stop();
    callButtonRef.current?.focus();
  }

  function changeMode(next: VoiceMode) {
    setModeState(next);
    if (call && inCall) call.setMode(next);
  }

  async function signInAgain() {
    call?.stop();
    await logout();
    navigate('/login', { replace: true });
  }

  // -------------------------------------------------------------------------
  // View

  const canInterrupt = status === 'adam_speaking' || status === 'thinking';
  const needsDealership = isSuper && !dealershipId;
  const failure = snap.failure;
  const turns = snap.transcript.turns;

  return (
    <div className="space-y-4">
      <p className="sr-only" role="status" aria-live="polite" data-testid="voice-announcer">
        {announcement}
      </p>
      <p className="sr-only" aria-live="polite" data-testid="voice-transcript-announcer">
        {spoken}
      </p>

      <div className="min-w-0">
        <h1 className="text-2xl font-semibold tracking-tight text-brand-900">
          {roleplay ? 'Role-play call' : 'Voice call with Adam'}
        </h1>
        <p className="mt-1 text-sm text-slate-500">
          {roleplay
            ? 'You are the F&I manager; Adam plays the customer. Speak naturally: the call listens hands-free.'
            : 'Ask Adam out loud. The call listens hands-free and answers when you pause.'}
        </p>
      </div>

      {/* Settings: mode and, for a super admin, the dealership. */}
      <div className="grid gap-3 rounded-xl bg-white p-3 shadow-sm ring-1 ring-slate-200 sm:grid-cols-2 sm:p-4">
        <fieldset data-testid="voice-mode-switch" disabled={snap.modePending}>
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
                  activeMode === value ? 'bg-white text-brand-900 shadow-sm' : 'text-slate-600 hover:text-slate-900'
                }`}
              >
                <input
                  type="radio"
                  name="voice-mode"
                  value={value}
                  checked={activeMode === value}
                  onChange={() => changeMode(value)}
                  data-testid={`voice-mode-${value}`}
                  className="sr-only"
                />
                {label}
              </label>
            ))}
          </div>
          <p className="mt-1 text-xs text-slate-500">
            {snap.modePending
              ? 'Switching…'
              : activeMode === 'roleplay'
                ? 'Adam plays a customer; practise your presentation.'
                : 'Adam answers from your dealership’s training material.'}
          </p>
        </fieldset>

        {isSuper && (
          <fieldset disabled={inCall}>
            <DealershipPicker
              id="voice-dealership"
              label="Dealership (required for a super admin)"
              value={dealershipId}
              onChange={setDealershipId}
            />
            {inCall && <p className="mt-1 text-xs text-slate-500">End the call to change the dealership.</p>}
          </fieldset>
        )}
      </div>

      {failure && (
        <div
          role="alert"
          data-testid="voice-error"
          data-kind={failure.kind}
          className="rounded-md border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800"
        >
          <p>{failure.message}</p>
          {failure.kind === 'auth' && (
            <button
              type="button"
              onClick={() => void signInAgain()}
              data-testid="voice-sign-in"
              className={`${buttonClass('secondary', 'sm')} mt-2`}
            >
              Sign in again
            </button>
          )}
        </div>
      )}

      <div className="grid gap-4 lg:grid-cols-[minmax(0,5fr)_minmax(0,7fr)] lg:items-start">
        {/* Adam */}
        <section
          aria-labelledby="voice-avatar-heading"
          className="rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200 sm:p-6"
        >
          <h2 id="voice-avatar-heading" className="sr-only">
            {aiName}
          </h2>
          <BuiltInAvatar call={call} stats={stats} label={`${aiName}: ${statusLabel(status, aiName)}`} />

          <div className="mt-4 flex justify-center">
            <span
              data-testid="voice-state"
              data-state={status}
              className={`inline-flex items-center gap-2 rounded-full px-3 py-1 text-sm font-semibold ring-1 ring-inset ${STATUS_STYLE[status]}`}
            >
              <span
                aria-hidden="true"
                className={`h-2 w-2 rounded-full ${
                  status === 'listening' || status === 'user_speaking'
                    ? 'bg-emerald-500'
                    : status === 'adam_speaking'
                      ? 'bg-accent-500'
                      : status === 'thinking' || status === 'connecting'
                        ? 'animate-pulse bg-brand-500'
                        : 'bg-slate-400'
                }`}
              />
              {statusLabel(status, aiName)}
            </span>
          </div>

          <div className="mt-4">
            <LevelMeter stats={stats} active={inCall} />
          </div>

          <div className="mt-4 flex flex-wrap gap-2">
            {inCall ? (
              <button
                ref={callButtonRef}
                type="button"
                onClick={endCall}
                data-testid="voice-call-button"
                data-action="end"
                className={`${buttonClass('danger')} min-w-[8rem] flex-1`}
              >
                End call
              </button>
            ) : (
              <button
                ref={callButtonRef}
                type="button"
                onClick={startCall}
                disabled={!user || needsDealership}
                data-testid="voice-call-button"
                data-action="start"
                aria-describedby={needsDealership ? 'voice-needs-dealership' : undefined}
                className={`${buttonClass('primary')} min-w-[8rem] flex-1`}
              >
                {status === 'ended' ? 'Call again' : 'Start call'}
              </button>
            )}
            <button
              type="button"
              onClick={() => call?.interrupt()}
              disabled={!canInterrupt}
              data-testid="voice-interrupt"
              aria-keyshortcuts="Escape"
              className={`${buttonClass('secondary')} flex-1`}
            >
              Interrupt
            </button>
            <button
              type="button"
              onClick={() => call?.clearHistory()}
              disabled={!inCall || status === 'connecting'}
              data-testid="voice-clear-history"
              className={`${buttonClass('ghost')} flex-1`}
            >
              Clear history
            </button>
          </div>
          {needsDealership && (
            <p id="voice-needs-dealership" className="mt-2 text-xs text-amber-800">
              Choose a dealership above before starting the call.
            </p>
          )}
          <p className="mt-2 text-xs text-slate-500">
            Talk over {roleplay ? 'the customer' : 'Adam'} or press Escape to interrupt. Use headphones
            for the best results.
          </p>

          <AvatarNote
            avatar={avatar}
            provider={provider}
            voices={voices}
            voiceId={voiceId}
            busy={avatarBusy}
            onVoice={setVoiceId}
            onRetry={() => openAvatarSession(voiceId || undefined)}
          />
        </section>

        {/* Transcript */}
        <section
          aria-labelledby="voice-transcript-heading"
          className="min-w-0 rounded-xl bg-white p-4 shadow-sm ring-1 ring-slate-200 sm:p-6"
        >
          <div className="mb-3 flex items-center justify-between gap-2">
            <h2 id="voice-transcript-heading" className="text-lg font-semibold text-slate-900">
              Transcript
            </h2>
            {turns.length > 0 && !inCall && (
              <button
                type="button"
                onClick={() => call?.resetTranscript()}
                data-testid="voice-transcript-reset"
                className={buttonClass('ghost', 'sm')}
              >
                Clear transcript
              </button>
            )}
          </div>
          {snap.turnError && (
            <p role="alert" data-testid="voice-turn-error" className="mb-3 rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-900 ring-1 ring-inset ring-amber-200">
              {snap.turnError}
            </p>
          )}
          {turns.length === 0 ? (
            <p className="rounded-lg border border-dashed border-slate-300 px-4 py-8 text-center text-sm text-slate-500">
              {inCall
                ? `Say something: what you say and what ${roleplay ? 'the customer' : 'Adam'} answers appears here.`
                : `Start the call and speak. What you say and what ${roleplay ? 'the customer' : 'Adam'} answers appears here.`}
            </p>
          ) : (
            <ol
              aria-label="Conversation"
              data-testid="voice-transcript"
              className="max-h-[60vh] space-y-3 overflow-y-auto pr-1"
            >
              {turns.map((t) => (
                <TurnItem key={t.key} turn={t} aiName={aiShort} />
              ))}
              <li ref={transcriptEndRef} aria-hidden="true" className="h-px" />
            </ol>
          )}
        </section>
      </div>
    </div>
  );
}

function TurnItem({ turn, aiName }: { turn: Turn; aiName: string }) {
  if (turn.role === 'notice') {
    return (
      <li data-testid="voice-turn" data-role="notice" className="text-center text-xs text-slate-500">
        {turn.text}
      </li>
    );
  }
  const mine = turn.role === 'user';
  return (
    <li
      data-testid="voice-turn"
      data-role={turn.role}
      data-state={turn.state}
      className={`flex ${mine ? 'justify-end' : 'justify-start'}`}
    >
      <div
        className={`max-w-[85%] rounded-2xl px-3.5 py-2 text-sm ${
          mine ? 'bg-brand-700 text-white' : 'bg-slate-100 text-slate-900'
        }`}
      >
        <p className={`text-xs font-semibold ${mine ? 'text-brand-100' : 'text-slate-500'}`}>{mine ? 'You' : aiName}</p>
        <p className="whitespace-pre-wrap break-words">
          {turn.text}
          {turn.state === 'live' && <span className="ml-0.5 animate-pulse" aria-hidden="true">▍</span>}
        </p>
        {turn.state === 'interrupted' && <p className="mt-1 text-xs italic text-slate-500">Interrupted</p>}
        {turn.state === 'failed' && <p className="mt-1 text-xs italic text-red-700">The answer failed</p>}
      </div>
    </li>
  );
}

function AvatarNote({
  avatar,
  provider,
  voices,
  voiceId,
  busy,
  onVoice,
  onRetry,
}: {
  avatar: AvatarState;
  provider: string | undefined;
  voices: AvatarVoice[] | null;
  voiceId: string;
  busy: boolean;
  onVoice: (id: string) => void;
  onRetry: () => void;
}) {
  const base = 'mt-4 rounded-md px-3 py-2 text-xs ring-1 ring-inset';
  if (avatar.kind === 'loading') {
    return (
      <p data-testid="avatar-provider" data-provider="loading" className={`${base} bg-slate-50 text-slate-600 ring-slate-200`}>
        Checking for an avatar provider…
      </p>
    );
  }
  if (avatar.kind === 'builtin') {
    return (
      <div data-testid="avatar-provider" data-provider="builtin" className={`${base} bg-slate-50 text-slate-600 ring-slate-200`}>
        <p>
          <span className="font-semibold text-slate-700">Built-in avatar in use.</span> No avatar provider is
          configured, so Adam’s face is drawn here and follows his voice.
        </p>
        {voices && voices.length > 0 && (
          <p className="mt-1">Voices of the built-in speech: {voices.map((v) => v.name || v.voice_id).join(', ')}.</p>
        )}
      </div>
    );
  }
  if (avatar.kind === 'provider') {
    return (
      <div data-testid="avatar-provider" data-provider={provider ?? 'provider'} className={`${base} bg-brand-50 text-brand-900 ring-brand-200`}>
        <p>
          <span className="font-semibold">LiveAvatar session available</span> (session{' '}
          <code data-testid="avatar-session-id" className="break-all">{avatar.sessionId}</code>).
        </p>
        <p className="mt-1">
          The provider’s video avatar needs its web SDK, which this app does not load; the built-in avatar is used
          as Adam’s face.
        </p>
        {voices && voices.length > 0 && (
          <div className="mt-2 flex flex-wrap items-end gap-2">
            <div>
              <label htmlFor="avatar-voice" className="mb-0.5 block font-medium">
                Avatar voice
              </label>
              <select
                id="avatar-voice"
                value={voiceId}
                onChange={(e) => onVoice(e.target.value)}
                data-testid="avatar-voice"
                className="rounded-md border border-slate-300 bg-white px-2 py-1 text-xs text-slate-900"
              >
                <option value="">The avatar’s own voice</option>
                {voices.map((v) => (
                  <option key={v.voice_id} value={v.voice_id}>
                    {v.name || v.voice_id}
                  </option>
                ))}
              </select>
            </div>
            <button type="button" onClick={onRetry} disabled={busy} data-testid="avatar-new-session" className={buttonClass('secondary', 'sm')}>
              {busy ? 'Starting…' : 'New session'}
            </button>
          </div>
        )}
      </div>
    );
  }
  return (
    <div data-testid="avatar-provider" data-provider="error" className={`${base} bg-amber-50 text-amber-900 ring-amber-200`}>
      <p role="alert">
        {avatar.message} The built-in avatar is used meanwhile.
      </p>
      <button type="button" onClick={onRetry} disabled={busy} data-testid="avatar-retry" className={`${buttonClass('secondary', 'sm')} mt-2`}>
        {busy ? 'Trying…' : 'Try again'}
      </button>
    </div>
  );
}
