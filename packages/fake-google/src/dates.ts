/**
 * Calendar arithmetic for the fake: dates are plain `YYYY-MM-DD` strings in a
 * property's own time zone, as GA4 reports them.
 *
 * Written apart from the collector's own calendar code on purpose, and never to
 * be shared with it: a bug in one then shows up as a disagreement in the tests
 * instead of hiding on both sides.
 */

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAYS_AGO = /^(\d+)daysAgo$/;
const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // en-CA formats as YYYY-MM-DD; throws RangeError on an unknown zone.
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws unless `timeZone` is an IANA zone this Node knows. */
export function assertTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

/** The calendar date in `timeZone` at instant `nowMs`. */
export function todayIn(timeZone: string, nowMs: number): string {
  const parts = formatterFor(timeZone).formatToParts(new Date(nowMs));
  const get = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

export function isIsoDate(s: string): boolean {
  const m = ISO_DATE.exec(s);
  if (!m) return false;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(t).toISOString().slice(0, 10) === s;
}

function toUtcMs(date: string): number {
  return Date.parse(`${date}T00:00:00Z`);
}

export function addDays(date: string, n: number): string {
  return new Date(toUtcMs(date) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Whole days from `a` to `b` (b - a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((toUtcMs(b) - toUtcMs(a)) / DAY_MS);
}

/** Resolves `YYYY-MM-DD`, `today`, `yesterday` or `NdaysAgo` against `today`; undefined when malformed. */
export function resolveDate(spec: string, today: string): string | undefined {
  if (spec === 'today') return today;
  if (spec === 'yesterday') return addDays(today, -1);
  const ago = DAYS_AGO.exec(spec);
  if (ago) return addDays(today, -Number(ago[1]));
  return isIsoDate(spec) ? spec : undefined;
}

/** Every date from `start` to `end` inclusive. */
export function eachDate(start: string, end: string): string[] {
  const out: string[] = [];
  for (let d = start; d <= end; d = addDays(d, 1)) out.push(d);
  return out;
}

/** `2024-01-31` -> `20240131`, the form of GA4's `date` dimension. */
export function compactDate(date: string): string {
  return date.replaceAll('-', '');
}

/** 0 = Sunday, as GA4's `dayOfWeek`. */
export function weekday(date: string): number {
  return new Date(toUtcMs(date)).getUTCDay();
}
