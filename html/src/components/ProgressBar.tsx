/**
 * A labelled progress bar (role="progressbar"). `value` is 0–1; null shows
 * an indeterminate bar (the work has no measurable progress yet).
 */
export function ProgressBar({
  value,
  label,
  tone = 'brand',
  testId,
}: {
  value: number | null;
  label: string;
  tone?: 'brand' | 'success' | 'danger';
  testId?: string;
}) {
  const pct = value === null ? null : Math.round(Math.min(1, Math.max(0, value)) * 100);
  const fill = tone === 'success' ? 'bg-emerald-500' : tone === 'danger' ? 'bg-red-500' : 'bg-brand-500';
  return (
    <div
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={pct ?? undefined}
      aria-valuetext={pct === null ? 'In progress' : `${pct}%`}
      data-testid={testId}
      data-value={pct ?? ''}
      className="h-2 w-full overflow-hidden rounded-full bg-slate-200"
    >
      <div
        className={`h-full rounded-full ${fill} ${pct === null ? 'w-1/3 animate-pulse' : 'transition-[width] duration-300'}`}
        style={pct === null ? undefined : { width: `${pct}%` }}
      />
    </div>
  );
}
