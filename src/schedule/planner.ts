/**
 * What is due for one property and report, as a pure function of the clock, the ledger and the
 * definition. Due are: every date from startDate through the property's yesterday that was never
 * stored (gaps), or stored only before it was over (a partial day), or stored under a definition
 * that lacks one of the current fields (a changed definition: per property, only these dates), the
 * refresh window (the last `refreshDays` dates) when last fetched before the schedule's latest
 * firing, and dates that left the window without their final refresh (the daemon was down). A date
 * that left the window after that final refresh is only marked settled. Nothing after the
 * property's yesterday is ever due: Google has not finished it.
 */
import type { ReportDefinition } from '../config/index.js';
import type { LedgerDay, StoredDefinition } from '../store/ledger.js';
import { addDays, localDate } from '../time.js';

export interface PlanInput {
  def: ReportDefinition;
  timeZone: string;
  now: Date;
  /** latest firing of the property's schedule at or before now; null = never (refresh on every run) */
  lastFire: Date | null;
  ledger: LedgerDay[];
  maxDays: number;
  /** the newest date due is today minus this (default 1, yesterday; Search Console's final data: 3) */
  lagDays?: number;
  /** the oldest date the API serves, given today (Search Console: searchConsole/horizon.ts); none before it is due, whatever startDate says */
  oldestDate?: ((today: string) => string) | undefined;
}

export interface Plan {
  today: string;
  /** the newest date due (the property's yesterday; for a site, its newest served date) */
  yesterday: string;
  start: string;
  /** first date of the refresh window; dates before it are settled once written */
  windowStart: string;
  /** all due dates, ascending */
  due: string[];
  /** due dates this run will fetch (at most maxDays), as contiguous ranges */
  ranges: Array<[string, string]>;
  /** dates that left the window after their final refresh: mark settled, no fetch */
  settleOnly: string[];
  /** of the due dates, those stored under a definition that lacks a current field */
  stale: number;
  /** of the due dates, those stored before they were over (by the property's calendar) */
  unfinished: number;
}

/**
 * Whether rows fetched under `stored` have every column of `def` filled at its grain: the same
 * dimensions (in any order), at least its metrics, and the same variant (a Search Console
 * report's search type and aggregation: other rows altogether). A removed metric leaves a date as
 * it is; a date whose variant was not recorded is taken as current.
 */
export function coversDefinition(stored: StoredDefinition, def: Pick<ReportDefinition, 'dimensions' | 'metrics' | 'variant'>): boolean {
  const dims = new Set(stored.dimensions);
  const sameVariant = stored.variant == null || def.variant === undefined || stored.variant === def.variant;
  return (
    sameVariant &&
    dims.size === new Set(def.dimensions).size &&
    def.dimensions.every((d) => dims.has(d)) &&
    def.metrics.every((m) => stored.metrics.includes(m))
  );
}

export function resolveStartDate(startDate: string, today: string): string {
  const daysAgo = /^(\d+)daysAgo$/.exec(startDate);
  if (daysAgo) return addDays(today, -Number(daysAgo[1]));
  if (startDate === 'yesterday') return addDays(today, -1);
  return startDate;
}

export function plan(input: PlanInput): Plan {
  const { def, timeZone, now, lastFire, ledger, maxDays } = input;
  const lag = input.lagDays ?? 1;
  const today = localDate(now.getTime(), timeZone);
  const yesterday = addDays(today, -lag);
  const configured = resolveStartDate(def.startDate, today);
  const oldest = input.oldestDate?.(today);
  const start = oldest !== undefined && oldest > configured ? oldest : configured;
  const windowStart = refreshWindowStart(today, def.refreshDays, lag);
  const byDate = new Map(ledger.map((d) => [d.date, d]));
  const due: string[] = [];
  const settleOnly: string[] = [];
  let stale = 0;
  let unfinished = 0;
  for (let date = start; date <= yesterday; date = addDays(date, 1)) {
    const stored = byDate.get(date);
    if (!stored) {
      due.push(date);
    } else if (localDate(stored.fetchedAt.getTime(), timeZone) <= date) {
      unfinished++;
      due.push(date);
    } else if (stored.definition && !coversDefinition(stored.definition, def)) {
      stale++;
      due.push(date);
    } else if (date >= windowStart) {
      if (lastFire === null || stored.fetchedAt.getTime() < lastFire.getTime()) due.push(date);
    } else if (!stored.settled) {
      // Left the window: settled if its last fetch was on the window's last day for it, else refetch once.
      const fetchedLocal = localDate(stored.fetchedAt.getTime(), timeZone);
      if (fetchedLocal >= addDays(date, def.refreshDays + lag - 1)) settleOnly.push(date);
      else due.push(date);
    }
  }
  // Oldest first, so a long backlog fills in order; but the refresh window is always part of a run
  // so recent numbers stay fresh while a backlog drains.
  const inWindow = due.filter((d) => d >= windowStart);
  const backlog = due.filter((d) => d < windowStart);
  const take = [...backlog.slice(0, Math.max(0, maxDays - inWindow.length)), ...inWindow].sort();
  return { today, yesterday, start, windowStart, due, ranges: toRanges(take), settleOnly, stale, unfinished };
}

/**
 * The first date of the refresh window: the last `refreshDays` of the dates due, which end
 * `lagDays` before today (GA4: the last refreshDays dates through yesterday).
 */
export function refreshWindowStart(today: string, refreshDays: number, lagDays = 1): string {
  return addDays(today, -(refreshDays + lagDays - 1));
}

/** Contiguous runs of ascending dates. */
export function toRanges(dates: string[]): Array<[string, string]> {
  const ranges: Array<[string, string]> = [];
  for (const date of dates) {
    const last = ranges[ranges.length - 1];
    if (last && addDays(last[1], 1) === date) last[1] = date;
    else ranges.push([date, date]);
  }
  return ranges;
}
