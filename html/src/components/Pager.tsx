import { buttonClass } from './buttons';

/**
 * Previous / next paging. With `total` it says "21–40 of 57"; without one
 * (lists that have no count), a full page means there may be more.
 */
export function Pager({
  skip,
  limit,
  shown,
  total,
  onSkip,
  label,
  testIdPrefix,
}: {
  skip: number;
  limit: number;
  /** Rows on this page. */
  shown: number;
  total?: number | null;
  onSkip: (skip: number) => void;
  /** What is paged, e.g. "Users". */
  label: string;
  testIdPrefix: string;
}) {
  const hasPrev = skip > 0;
  const hasNext = total != null ? skip + shown < total : shown >= limit;
  const range = shown === 0 ? 'None' : `${skip + 1}–${skip + shown}`;
  return (
    <nav aria-label={`${label} pages`} className="flex flex-wrap items-center justify-between gap-3">
      <p className="text-sm text-slate-600" aria-live="polite" data-testid={`${testIdPrefix}-range`}>
        {range}
        {total != null ? ` of ${total}` : ''}
      </p>
      <div className="flex gap-2">
        <button
          type="button"
          className={buttonClass('secondary', 'sm')}
          disabled={!hasPrev}
          onClick={() => onSkip(Math.max(0, skip - limit))}
          data-testid={`${testIdPrefix}-prev`}
        >
          Previous
        </button>
        <button
          type="button"
          className={buttonClass('secondary', 'sm')}
          disabled={!hasNext}
          onClick={() => onSkip(skip + limit)}
          data-testid={`${testIdPrefix}-next`}
        >
          Next
        </button>
      </div>
    </nav>
  );
}
