/** Calendar arithmetic on `YYYY-MM-DD` strings and dates in an IANA time zone. */

export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Whole days from a to b (b - a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date at instant `ms` in time zone `tz` (the property's "today"). */
export function localDate(ms: number, tz: string): string {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(tz, f);
  }
  return f.format(new Date(ms));
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-CA', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Every date from start to end inclusive. */
export function dateRange(start: string, end: string): string[] {
  const out: string[] = [];
  for (let d = start; d <= end; d = addDays(d, 1)) out.push(d);
  return out;
}

/**
 * The newest date Google has finished for a property: the day before its today. "Now" is the
 * earlier of the instants given (this machine's clock and the database's): a clock that has jumped
 * ahead must not make an unfinished day look finished, and of two clocks the one behind errs on
 * the safe side (a finished date waits a little, no partial date is stored as finished).
 */
export function lastFinishedDate(timeZone: string, ...nowMs: number[]): string {
  return addDays(localDate(Math.min(...nowMs), timeZone), -1);
}

/**
 * A date as the command line and `startDate` take it: `YYYY-MM-DD`, `NdaysAgo` or `yesterday`
 * (relative to the property's today). Null when it is none of these. `today` and `0daysAgo` are
 * well formed here; callers that need finished dates refuse them.
 */
export type DateSpec = { kind: 'date'; date: string } | { kind: 'ago'; days: number };

export function parseDateSpec(value: string): DateSpec | null {
  if (value === 'yesterday') return { kind: 'ago', days: 1 };
  if (value === 'today') return { kind: 'ago', days: 0 };
  const ago = /^(\d{1,5})daysAgo$/.exec(value);
  if (ago) return { kind: 'ago', days: Number(ago[1]) };
  return isValidDate(value) ? { kind: 'date', date: value } : null;
}

/** A real calendar date written `YYYY-MM-DD` (not 2024-02-30). */
function isValidDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

/** A report's `startDate`: `YYYY-MM-DD`, `NdaysAgo` or `yesterday` (relative to the property's today). */
export function isStartDate(value: string): boolean {
  return isValidDate(value) || /^\d+daysAgo$/.test(value) || value === 'yesterday';
}

/** The calendar date a spec names, given the property's today. */
export function resolveDateSpec(spec: DateSpec, today: string): string {
  return spec.kind === 'date' ? spec.date : addDays(today, -spec.days);
}
