// The one reader of RFC 3339 date-time input. It accepts exactly what the contract's validator (ajv-formats, full
// mode) accepts and turns it into the one form the server stores and answers with: `YYYY-MM-DDTHH:MM:SS.sssZ`.
// `new Date(text)` is not used: it cannot read a leap second (NaN) and it happily makes year 10000
// (`+010000-…`), which is not a valid date-time and sorts wrongly against stored timestamps.
import { validationFailed } from './problem.ts';

// Date and time as ajv-formats reads them: `T`, `t` or a space between; `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH`.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)$/;

/** Date.UTC for any year: it reads years 0–99 as 1900–1999. */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, ms);
  return date.getTime();
}

/** The range a date-time input may name, in UTC: years 0000 to 9999, as a date-time can write them. */
export const EARLIEST_TIMESTAMP_MS = utcMs(0, 1, 1);
export const LATEST_TIMESTAMP_MS = utcMs(9999, 12, 31, 23, 59, 59, 999);

function daysInMonth(year: number, month: number): number {
  return new Date(utcMs(year, month + 1, 0)).getUTCDate();
}

/**
 * Milliseconds since the epoch, or a reason why the text is not a usable date-time. A leap second (`23:59:60` in
 * UTC) is read as the first instant after it (`00:00:00` of the next day), as POSIX time does; fractions beyond
 * milliseconds are cut off; anything outside years 0000–9999 once in UTC is refused.
 */
export function parseTimestamp(text: string): { ms: number } | { error: string } {
  const match = DATE_TIME.exec(text);
  if (!match) return { error: 'must be an RFC 3339 date-time, e.g. 2030-01-01T00:00:00Z' };
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const millis = Number((match[7] ?? '').slice(0, 3).padEnd(3, '0'));
  const offsetSign = match[9] === '-' ? -1 : 1;
  const offsetMinutes = offsetSign * (Number(match[10] ?? 0) * 60 + Number(match[11] ?? 0));
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return { error: 'is not a calendar date' };
  if (hour > 23 || minute > 59 || second > 60 || Number(match[10] ?? 0) > 23 || Number(match[11] ?? 0) > 59) {
    return { error: 'is not a time of day' };
  }
  // A leap second is the last second of a UTC day; it is read as the instant right after it.
  const leap = second === 60;
  const ms = utcMs(year, month, day, hour, minute, leap ? 59 : second, leap ? 0 : millis) - offsetMinutes * 60_000;
  if (leap) {
    const inUtc = new Date(ms);
    if (inUtc.getUTCHours() !== 23 || inUtc.getUTCMinutes() !== 59) return { error: 'has a leap second outside 23:59 UTC' };
  }
  const instant = leap ? ms + 1000 : ms;
  if (instant > LATEST_TIMESTAMP_MS) return { error: 'must not be later than 9999-12-31T23:59:59.999Z (in UTC)' };
  if (instant < EARLIEST_TIMESTAMP_MS) return { error: 'must not be earlier than 0000-01-01T00:00:00Z (in UTC)' };
  return { ms: instant };
}

/** The stored form of a date-time from a request body (or query), or a 400 problem that points at it. */
export function readTimestamp(text: string, pointer: string, location: 'body' | 'query' = 'body'): string {
  const parsed = parseTimestamp(text);
  if ('error' in parsed) throw validationFailed([{ location, pointer, message: parsed.error }]);
  return new Date(parsed.ms).toISOString();
}

/** Like readTimestamp, and the instant must be after `now`. */
export function readFutureTimestamp(text: string, pointer: string, now: Date): string {
  const stored = readTimestamp(text, pointer);
  if (Date.parse(stored) <= now.getTime()) throw validationFailed([{ location: 'body', pointer, message: 'must be in the future' }]);
  return stored;
}
