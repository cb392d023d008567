/** The "Avatar Adam" mark: a monogram tile and the word mark. */
export function Logo({ inverted = false }: { inverted?: boolean }) {
  return (
    <span className="inline-flex items-center gap-2.5">
      <span
        aria-hidden="true"
        className="grid h-9 w-9 place-items-center rounded-lg bg-accent-500 text-sm font-bold tracking-tight text-brand-950 shadow-sm"
      >
        AA
      </span>
      <span className="leading-tight">
        <span
          className={`block text-base font-semibold tracking-tight ${inverted ? 'text-white' : 'text-brand-900'}`}
        >
          Avatar Adam
        </span>
        <span
          className={`block text-[11px] font-medium uppercase tracking-wider ${inverted ? 'text-brand-200' : 'text-slate-500'}`}
        >
          F&amp;I Training
        </span>
      </span>
    </span>
  );
}
