/** "Training" or "Role-play", as a small badge. */
export function ModeBadge({ mode }: { mode: string }) {
  const roleplay = mode === 'roleplay';
  return (
    <span
      className={`shrink-0 rounded-full px-2 py-0.5 text-[11px] font-semibold ring-1 ring-inset ${
        roleplay
          ? 'bg-accent-400/15 text-accent-600 ring-accent-400/40'
          : 'bg-brand-50 text-brand-700 ring-brand-200'
      }`}
    >
      {roleplay ? 'Role-play' : 'Training'}
    </span>
  );
}
