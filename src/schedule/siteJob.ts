/**
 * The work of a Search Console job, under the runner's lock (runner.ts): plan the site's dates in
 * Search Console's calendar and fetch and store them through the same planner, batches, day writer
 * and ledger as GA4's, in the Search Console schema. What differs from a property's job:
 * - the calendar is Pacific (America/Los_Angeles), never asked of Google;
 * - the newest date due is the newest Google serves for the report's `dataState`: today-3 for
 *   `final`, today-1 for `all` (https://developers.google.com/webmaster-tools/v1/searchanalytics/query,
 *   dataState); later dates get no ledger row and are no gaps;
 * - the oldest date due is never before the 16 months Search Console keeps (searchConsole/horizon.ts),
 *   whatever the report's startDate;
 * - the names need no check against metadata: config/searchConsole.ts knows every dimension;
 * - responses carry no quota to keep a reserve of (a used-up quota is an answer: apiErrors.ts).
 */
import type { Config, ReportDefinition, SearchConsoleReport } from '../config/index.js';
import { PermanentError } from '../errors.js';
import type { SearchConsoleClient } from '../searchConsole/client.js';
import { searchConsoleHorizon } from '../searchConsole/horizon.js';
import { SEARCH_CONSOLE_TIME_ZONE, fetchSiteRange } from '../searchConsole/report.js';
import { definitionStored } from '../store/ledger.js';
import type { PoolClient } from '../store/pool.js';
import { searchConsoleTables } from '../store/sourceTables.js';
import { addDays, daysBetween, localDate } from '../time.js';
import type { TokenSource } from '../auth/tokenManager.js';
import { planJob } from './jobPlan.js';
import { resolveStartDate } from './planner.js';
import { fetchAndStoreRanges, type RangeStoreInput, type RangeStoreResult } from './rangeStore.js';

/** How many days before the Pacific today the newest date of a report's `dataState` is. */
export function siteLagDays(report: Pick<SearchConsoleReport, 'dataState'>): number {
  return report.dataState === 'final' ? 3 : 1;
}

/**
 * The newest date Google serves a report for (Pacific today-3 for final data, today-1 for all),
 * by the earliest of the clocks given (this machine's and the database's, as time.ts lastFinishedDate).
 */
export function siteLastDate(report: Pick<SearchConsoleReport, 'dataState'>, ...nowMs: number[]): string {
  return addDays(localDate(Math.min(...nowMs), SEARCH_CONSOLE_TIME_ZONE), -siteLagDays(report));
}

/**
 * The oldest date due for a report: its startDate, but never before the oldest date Search Console
 * serves (searchConsole/horizon.ts: 16 months), by the earliest of the clocks given.
 */
export function siteFirstDate(report: Pick<SearchConsoleReport, 'startDate'>, ...nowMs: number[]): string {
  const today = localDate(Math.min(...nowMs), SEARCH_CONSOLE_TIME_ZONE);
  const configured = resolveStartDate(report.startDate, today);
  const oldest = searchConsoleHorizon(today);
  return configured < oldest ? oldest : configured;
}

/**
 * A site report's window: its start date (never before the 16 months Search Console keeps) through
 * the newest Pacific date Google serves for its dataState; `days` in it (0 when empty).
 */
export function siteWindow(report: SearchConsoleReport, now: number): { from: string; through: string; days: number } {
  const from = siteFirstDate(report, now);
  const through = siteLastDate(report, now);
  return { from, through, days: Math.max(0, daysBetween(from, through) + 1) };
}

/** The job's database connection, site and report, and (as any job's ranges) where it reports what it stored. */
export interface SiteJobInput extends Pick<RangeStoreInput, 'metrics' | 'board' | 'progress' | 'log' | 'signal' | 'now'> {
  db: PoolClient;
  config: Config;
  client: SearchConsoleClient;
  job: {
    propertyId: string;
    report: string;
    def: ReportDefinition;
    tokens: TokenSource;
    lastFire: Date | null;
    range?: { from: string; to: string } | undefined;
  };
  /** rows per request; default 25,000 (searchConsole/report.ts) */
  rowLimit?: number | undefined;
}

/** Plans, fetches and stores one site's report. Throws what the fetch or the store met. */
export async function runSiteJob(input: SiteJobInput): Promise<RangeStoreResult> {
  const { db, config, job, log, signal, now } = input;
  const report = config.searchConsole.reports[job.report];
  if (!report) throw new PermanentError(`report ${job.report} is not in searchConsole.reports (removed by a reload?)`, 'not_configured');
  const tables = searchConsoleTables(config.searchConsole.schema);
  const ctx = {
    propertyId: job.propertyId,
    kind: 'searchConsole' as const,
    tokens: job.tokens,
    logger: log,
    signal,
    report: job.report,
    deadline: now() + config.fetch.jobDeadlineSeconds * 1000,
  };
  input.board.job(job.propertyId, job.report).timeZone = SEARCH_CONSOLE_TIME_ZONE;
  const plan = await planJob(db, {
    schema: tables,
    propertyId: job.propertyId,
    report: job.report,
    def: job.def,
    timeZone: SEARCH_CONSOLE_TIME_ZONE,
    definitionKnown: await definitionStored(db, tables, job.propertyId, job.def),
    lastFire: job.lastFire,
    range: job.range,
    maxDaysPerRun: config.fetch.maxDaysPerRun,
    lagDays: siteLagDays(report),
    oldestDate: searchConsoleHorizon,
    now: now(),
    log,
  });
  return fetchAndStoreRanges({
    db,
    schema: tables,
    def: job.def,
    propertyId: job.propertyId,
    report: job.report,
    plan,
    days: (start, end) => fetchSiteRange(input.client, ctx, report, start, end, input.rowLimit !== undefined ? { rowLimit: input.rowLimit } : {}),
    quotaLowUntil: () => undefined,
    metrics: input.metrics,
    board: input.board,
    progress: input.progress,
    log,
    signal,
    now,
  });
}
