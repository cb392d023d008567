import { useEffect, useRef } from 'react';
import type { VoiceStats } from './call';
import { meterFraction } from './pcm';

/**
 * The microphone level of the call's last frame as a bar, redrawn every
 * animation frame from stats.micLevelDb (the text beside it carries the
 * state for screen readers, so the bar itself is hidden from them).
 */
export function LevelMeter({ stats, active }: { stats: VoiceStats | null; active: boolean }) {
  const barRef = useRef<HTMLDivElement>(null);
  const wrapRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    let raf = 0;
    let shown = 0;
    const frame = () => {
      const target = active && stats ? meterFraction(stats.micLevelDb) : 0;
      // Rise at once, fall gently, like a VU meter.
      shown = target > shown ? target : shown * 0.9 + target * 0.1;
      const pct = Math.round(shown * 100);
      if (barRef.current) barRef.current.style.width = `${pct}%`;
      wrapRef.current?.setAttribute('data-level', String(pct));
      raf = requestAnimationFrame(frame);
    };
    raf = requestAnimationFrame(frame);
    return () => cancelAnimationFrame(raf);
  }, [stats, active]);

  return (
    <div className="flex items-center gap-2" aria-hidden="true">
      <svg viewBox="0 0 24 24" className="h-4 w-4 shrink-0 text-slate-500" fill="none" stroke="currentColor" strokeWidth="2">
        <rect x="9" y="3" width="6" height="11" rx="3" />
        <path d="M5 11a7 7 0 0 0 14 0M12 18v3" strokeLinecap="round" />
      </svg>
      <div
        ref={wrapRef}
        data-testid="voice-level"
        data-level="0"
        className="h-2 flex-1 overflow-hidden rounded-full bg-slate-200"
      >
        <div ref={barRef} className="h-full w-0 rounded-full bg-emerald-500" />
      </div>
    </div>
  );
}
