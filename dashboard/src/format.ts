// How values are written on the pages. Enum names come from the contract (virtual:openrush-enums).
import enums from 'virtual:openrush-enums';

type EnumName = keyof typeof enums;

/** READ_ONLY → "Read only". */
function humanize(name: string): string {
  const words = name.toLowerCase().replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function enumLabel(kind: EnumName, value: number): string {
  const entry = enums[kind].find((item) => item.value === value);
  return entry ? humanize(entry.name) : String(value);
}

export function enumOptions(kind: EnumName): { value: number; label: string; description: string }[] {
  return enums[kind].map((item) => ({ value: item.value, label: humanize(item.name), description: item.description }));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDateTime(value: string | null | undefined, never = '—'): string {
  if (!value) return never;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : dateTime.format(date);
}

export function formatNumber(value: number): string {
  return value.toLocaleString();
}
