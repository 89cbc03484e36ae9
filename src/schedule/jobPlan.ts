/**
 * Which dates one job fetches, decided under the job's lock from the ledger (planner.ts) or, for a
 * backfill, from the range asked. Either way no date after the property's yesterday is planned:
 * Google has not finished it. "Yesterday" is read by the earlier of this machine's clock and the
 * database's (time.ts), so a clock that ran ahead does not plan an unfinished day.
 */
import type { ReportDefinition } from '../config/index.js';
import type { Logger } from '../log.js';
import { databaseNow, ledgerDays, markSettled } from '../store/ledger.js';
import type { PoolClient } from '../store/pool.js';
import type { TablesArg } from '../store/sourceTables.js';
import { addDays, daysBetween, localDate } from '../time.js';
import { plan, refreshWindowStart } from './planner.js';

/** Ahead of the database by more than this, our clock is said to be wrong in the log. */
const CLOCK_AHEAD_WARN_MS = 5 * 60_000;

export interface JobPlanInput {
  /** GA4's schema, or the source's tables */
  schema: TablesArg;
  propertyId: string;
  report: string;
  def: ReportDefinition;
  /** the property's IANA time zone: its calendar */
  timeZone: string;
  /** whether this property has dates stored under this very definition (else a changed one is said in the log) */
  definitionKnown: boolean;
  /** the latest firing of the property's schedule (refresh rule); null = refresh the window now */
  lastFire: Date | null;
  /** a backfill: exactly this range (clamped to the property's yesterday), no planning */
  range?: { from: string; to: string } | undefined;
  /** fetch.maxDaysPerRun */
  maxDaysPerRun: number;
  /** the newest date due is today minus this: 1 (yesterday) for GA4, 3 or 1 for Search Console's final or all data */
  lagDays?: number;
  /** the oldest date the API serves, given today (Search Console: searchConsole/horizon.ts): nothing older is planned, a backfill's range included */
  oldestDate?: ((today: string) => string) | undefined;
  /** this machine's clock, ms since the epoch */
  now: number;
  log: Logger;
}

export interface JobPlan {
  /** contiguous ranges to fetch, `YYYY-MM-DD` inclusive, oldest first */
  ranges: Array<[string, string]>;
  /** dates due, the ones this run will not reach included */
  pending: number;
  /** dates before this are outside the refresh window: stored as settled */
  settledBefore: string;
  /** the property's yesterday, the newest date Google has finished: nothing later is written */
  lastDate: string;
}

/**
 * The job's plan. For a scheduled job it also marks the dates that left the refresh window after
 * their final refresh as settled (planner.ts, `settleOnly`), and logs `job_planned`.
 */
export async function planJob(db: PoolClient, input: JobPlanInput): Promise<JobPlan> {
  const { schema, propertyId, report, def, timeZone, log } = input;
  const databaseMs = await databaseNow(db);
  const nowMs = Math.min(input.now, databaseMs);
  if (input.now - nowMs > CLOCK_AHEAD_WARN_MS) {
    log.warn({ event: 'clock_ahead', aheadMs: input.now - nowMs }, "this machine's clock is ahead of the database's; planning by the database's");
  }
  const today = localDate(nowMs, timeZone);
  const lag = input.lagDays ?? 1;
  // the newest date Google serves finished: the property's yesterday (time.ts lastFinishedDate), or a site's today-3 / today-1
  const lastDate = addDays(today, -lag);

  if (input.range) {
    // whatever the caller asked, nothing after the property's yesterday: Google has not finished it
    const oldest = input.oldestDate?.(today);
    const from = oldest !== undefined && input.range.from < oldest ? oldest : input.range.from;
    const to = input.range.to > lastDate ? lastDate : input.range.to;
    if (to !== input.range.to)
      log.warn({ event: 'range_clamped', asked: input.range.to, to, timeZone }, 'range ends after the newest date Google serves; later dates are not fetched');
    if (from !== input.range.from)
      log.warn(
        { event: 'range_clamped', asked: input.range.from, from, timeZone },
        'range starts before the oldest date Google serves; older dates are not fetched',
      );
    const ranges: Array<[string, string]> = from <= to ? [[from, to]] : [];
    return { ranges, pending: ranges.length ? daysBetween(from, to) + 1 : 0, settledBefore: refreshWindowStart(today, def.refreshDays, lag), lastDate };
  }

  const ledger = await ledgerDays(db, schema, propertyId, report, '0001-01-01');
  const due = plan({
    def,
    timeZone,
    now: new Date(nowMs),
    lastFire: input.lastFire,
    ledger,
    maxDays: input.maxDaysPerRun,
    lagDays: lag,
    oldestDate: input.oldestDate,
  });
  await markSettled(db, schema, propertyId, report, due.settleOnly);
  if (due.stale > 0 && !input.definitionKnown) {
    log.warn(
      {
        event: 'report_definition_changed',
        to: { dimensions: def.dimensions, metrics: def.metrics, ...(def.variant !== undefined ? { variant: def.variant } : {}) },
        datesToRefetch: due.stale,
      },
      def.variant !== undefined
        ? 'report definition changed: dates stored without one of its fields, or of another search type or aggregation, will be fetched again'
        : "report definition changed: this property's dates stored without one of its fields will be fetched again",
    );
  }
  log.info(
    {
      event: 'job_planned',
      due: due.due.length,
      ranges: due.ranges,
      settled: due.settleOnly.length,
      stale: due.stale,
      unfinished: due.unfinished,
      timeZone,
      today: due.today,
    },
    'planned fetch',
  );
  return { ranges: due.ranges, pending: due.due.length, settledBefore: due.windowStart, lastDate };
}
