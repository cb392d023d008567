import type { Dealership } from '../api/admin';
import { SelectField } from './FormField';

/** A dealership picker; `value` '' is the "none"/"all" entry when `emptyLabel` is given. */
export function DealershipSelect({
  dealerships,
  value,
  onValue,
  label = 'Dealership',
  emptyLabel,
  error,
  hint,
  testId,
  disabled,
  className,
}: {
  dealerships: readonly Dealership[];
  value: string;
  onValue: (value: string) => void;
  label?: string;
  emptyLabel?: string;
  error?: string;
  hint?: string;
  testId?: string;
  disabled?: boolean;
  className?: string;
}) {
  const options = [
    ...(emptyLabel !== undefined ? [{ value: '', label: emptyLabel }] : []),
    ...dealerships.map((d) => ({
      value: String(d.id),
      label: d.is_active ? d.name : `${d.name} (inactive)`,
    })),
  ];
  return (
    <SelectField
      label={label}
      value={value}
      onValue={onValue}
      options={options}
      error={error}
      hint={hint}
      testId={testId}
      disabled={disabled}
      className={className}
    />
  );
}
