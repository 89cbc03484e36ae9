/**
 * The writing half of a job: each planned range is fetched from Google (the source's fetcher:
 * ga4Days here, GA4's page loop and totals; searchConsole/report.ts for a site), date by
 * complete date, and stored in batches (batchWriter.ts), each batch one transaction, so a crash or
 * an abort loses at most the batch in hand and never leaves a partial date. After each batch the
 * metrics, the job board and the progress report what was stored.
 *
 * A batch is written when it holds BATCH_ROWS rows or its first date is BATCH_MS old, so a slow
 * fetch still stores, and shows, its progress. When a response shows the property's quota below
 * the reserve, the date in hand is finished and the job stops there, to come back when the quota
 * window resets.
 */
import { AbortedError } from '../errors.js';
import type { ReportDefinition } from '../config/index.js';
import type { CallContext } from '../ga4/callContext.js';
import type { Ga4Client } from '../ga4/client.js';
import { fetchRange } from '../ga4/report.js';
import { fetchTotalsIfServed } from '../ga4/totals.js';
import type { DayData, PropertyQuota } from '../ga4/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ProgressSink } from '../progress.js';
import { definitionVersion, saveProperty } from '../store/ledger.js';
import type { PoolClient } from '../store/pool.js';
import { ensureReportTable, hasTotals } from '../store/reportTables.js';
import type { TablesArg } from '../store/sourceTables.js';
import { BatchWriter } from './batchWriter.js';
import type { JobBoard } from './jobBoard.js';
import type { JobPlan } from './jobPlan.js';

/** Rows held before a batch of complete dates is written. */
const BATCH_ROWS = 20_000;
/** ...or this long since the batch's first date: a slow fetch still stores (and shows) progress. */
const BATCH_MS = 1_000;

/** A source's fetcher: every date of [start, end], complete and in order. */
export type FetchDays = (start: string, end: string) => AsyncIterable<DayData>;

export interface RangeStoreInput {
  db: PoolClient;
  /** GA4's schema, or the source's tables */
  schema: TablesArg;
  def: ReportDefinition;
  propertyId: string;
  report: string;
  plan: JobPlan;
  /** the source's fetcher (ga4Days, or searchConsole/report.ts fetchSiteRange) */
  days: FetchDays;
  /** set once a response showed the quota below the reserve: when its window resets (ms since the epoch) */
  quotaLowUntil: () => number | undefined;
  metrics: Metrics;
  board: JobBoard;
  progress?: ProgressSink | undefined;
  log: Logger;
  /** the job's signal: aborted, the job stops before its next date */
  signal: AbortSignal;
  now: () => number;
}

export interface RangeStoreResult {
  rows: number;
  dates: number;
  /** due dates not stored by this run */
  remaining: number;
  /** the quota ran low: come back at this time (ms since the epoch) */
  deferUntil?: number;
}

/**
 * Fetches and stores the plan's ranges, oldest first.
 * @throws AbortedError when the job's signal aborts; the dates PostgreSQL refused (after storing
 *   the others); whatever the fetch met (ga4/client.ts sorts it)
 */
export async function fetchAndStoreRanges(input: RangeStoreInput): Promise<RangeStoreResult> {
  const { db, schema, def, propertyId, report, plan, metrics, log, signal, now } = input;
  const labels = { property: propertyId, report };
  const state = input.board.job(propertyId, report);
  let pending = plan.pending;
  metrics.datesPending.set(labels, pending);
  state.datesPending = pending;
  input.progress?.start(propertyId, report, plan.ranges);

  let rows = 0;
  let dates = 0;
  // the relation's columns and the definition are recorded just before the first write: after
  // the names were checked and Google answered with data, never for a definition that fails
  let definitionId: number | null = null;
  const batch = new BatchWriter({
    db,
    schema,
    def,
    propertyId,
    settledBefore: plan.settledBefore,
    lastDate: plan.lastDate,
    metrics,
    log,
    definition: async () => {
      if (definitionId === null) {
        await ensureReportTable(db, schema, def, log);
        definitionId = await definitionVersion(db, schema, def);
      }
      return definitionId;
    },
  });
  const flush = async () => {
    if (batch.size === 0) return;
    const stored = await batch.flush();
    rows += stored.rows;
    dates += stored.dates;
    pending -= stored.dates;
    metrics.rowsWritten.inc(labels, stored.rows);
    input.board.storedDates();
    input.progress?.advance(propertyId, report, stored.dates, stored.rows);
    metrics.datesPending.set(labels, Math.max(0, pending));
    state.datesPending = Math.max(0, pending);
  };

  for (const [start, end] of plan.ranges) {
    const rangeStarted = now();
    try {
      for await (const day of input.days(start, end)) {
        if (signal.aborted) throw abortReason(signal);
        batch.add(day, now());
        if (batch.rows >= BATCH_ROWS || now() - batch.startedAt >= BATCH_MS) await flush();
        if (input.quotaLowUntil() !== undefined) break;
      }
    } catch (err) {
      await batch.forgetUnconfirmed(err);
      throw err;
    }
    const quotaLowUntil = input.quotaLowUntil();
    if (quotaLowUntil !== undefined) {
      await flush();
      const refused = batch.refusedError();
      if (refused) throw refused;
      return { rows, dates, remaining: Math.max(0, pending), deferUntil: quotaLowUntil };
    }
    if (signal.aborted) throw abortReason(signal);
    await flush();
    log.info({ event: 'range_stored', start, end, durationMs: now() - rangeStarted }, 'date range stored');
  }
  // dates PostgreSQL refused (a value it cannot hold): the others are stored, the job fails naming them
  const refused = batch.refusedError();
  if (refused) throw refused;
  return { rows, dates, remaining: Math.max(0, pending) };
}

export interface Ga4DaysInput {
  db: PoolClient;
  schema: string;
  def: ReportDefinition;
  propertyId: string;
  /** the property's time zone the plan was made in (a response that says otherwise is logged) */
  timeZone: string;
  client: Ga4Client;
  /** the job's call context: its property, tokens, logger, signal and deadline */
  ctx: CallContext;
  /** fetch.pageSize */
  pageSize: number;
  /** fetch.perPropertyConcurrency: pages of a range asked for at once (ga4/pageWindow.ts) */
  perPropertyConcurrency: number;
  /** told of every response's quota */
  onQuota: (quota: PropertyQuota) => void;
  log: Logger;
}

/**
 * GA4's fetcher: a range's per-date totals first (small: one row a date), then its days from the
 * page loop (ga4/report.ts, `perPropertyConcurrency` pages at a time), each with its totals, so a
 * date's rows and totals are written together. The totals listing is read before the rows'
 * listing starts, not beside it: two listings of one range read at once could each see a
 * different state of days GA is still revising, and the rows' pages must come from one state.
 */
export function ga4Days(input: Ga4DaysInput): FetchDays {
  const { db, schema, def, propertyId, timeZone, client, ctx, log } = input;
  return async function* (start, end) {
    const totals = hasTotals(def) ? await fetchTotalsIfServed(client, ctx, def, start, end, { pageSize: input.pageSize, onQuota: input.onQuota }) : null;
    const days = fetchRange(client, ctx, def, start, end, {
      pageSize: input.pageSize,
      parallelPages: input.perPropertyConcurrency,
      onQuota: input.onQuota,
      onMeta: (meta) => {
        if (meta.timeZone && meta.timeZone !== timeZone) {
          log.warn({ event: 'time_zone_changed', from: timeZone, to: meta.timeZone }, 'property time zone changed');
        }
        if (meta.timeZone) void saveProperty(db, schema, propertyId, meta.timeZone, meta.currencyCode).catch(() => undefined);
      },
    });
    for await (const day of days) {
      if (totals) {
        const dayTotals = totals.get(day.date);
        day.totals = dayTotals?.values ?? null;
        // a totals value its column cannot hold refuses the date, as one in its rows does
        if (dayTotals?.unstorable) day.unstorable ??= dayTotals.unstorable;
      }
      yield day;
    }
  };
}

/** Why a job was aborted: a reload that removed it says so; anything else is the shutdown. */
function abortReason(signal: AbortSignal): AbortedError {
  return signal.reason instanceof AbortedError ? signal.reason : new AbortedError();
}
