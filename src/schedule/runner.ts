/**
 * One job: bring one property and report up to date (or, for a backfill, fetch a given range).
 *
 * The job holds the advisory lock of its property and report on a connection of its own for as
 * long as it runs. A second daemon that wants the same job waits for the lock and then plans again
 * from the ledger, so it finds nothing left to do when the first succeeded and picks up the rest
 * when the first died (its connection, and so its lock, went with it). Dates are written in
 * batches, each batch one transaction, so a crash loses at most the batch in flight.
 */
import type { Config, ReportDefinition } from '../config.js';
import type { TokenSource } from '../auth/tokenManager.js';
import { AbortedError, DeferError, PermanentError, describe } from '../errors.js';
import type { Ga4Client } from '../ga4/client.js';
import { fetchRange } from '../ga4/report.js';
import { fetchTotalsIfServed } from '../ga4/totals.js';
import { hasTotals } from '../store/reportTables.js';
import type { PropertyQuota } from '../ga4/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BatchWriter } from './batchWriter.js';
import { ledgerDays, markSettled, propertyTimeZone, saveProperty } from '../store/ledger.js';
import { lockKey, tryLock, unlock } from '../store/locks.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { int64, nextPacificMidnight, sleep } from '../ga4/client.js';
import type { ProgressSink } from '../progress.js';
import type { StatusBoard } from '../status.js';
import { addDays, dateRange, daysBetween, isValidTimeZone, localDate } from '../time.js';
import { plan } from './planner.js';

/**
 * GA's property quotas (standard properties; Analytics 360 has ten times as much). A response's
 * propertyQuota says what that request consumed and what remains, not the window's total, so the
 * total is the known limit (or the 360 limit when more than the standard limit remains).
 */
const QUOTA_LIMITS = { day: 200_000, hour: 40_000, projectHour: 14_000 };

/**
 * When a response's quota shows the hourly or daily tokens below `reserve` of the window's total,
 * the time that window resets; else undefined.
 */
export function quotaBelowReserve(q: PropertyQuota, reserve: number, now: number): number | undefined {
  if (reserve <= 0) return undefined;
  const below = (w: { consumed?: number | null; remaining?: number | null } | null | undefined, standard: number) => {
    if (!w) return false;
    const remaining = Number(w.remaining ?? 0);
    const limit = remaining + Number(w.consumed ?? 0) > standard ? standard * 10 : standard;
    return remaining < reserve * limit;
  };
  if (below(q.tokensPerDay, QUOTA_LIMITS.day)) return nextPacificMidnight(now);
  if (below(q.tokensPerHour, QUOTA_LIMITS.hour) || below(q.tokensPerProjectPerHour, QUOTA_LIMITS.projectHour)) {
    return Math.ceil((now + 1) / 3_600_000) * 3_600_000;
  }
  return undefined;
}

/** Rows held before a batch of complete dates is written. */
const BATCH_ROWS = 20_000;
/** ...or this long since the batch's first date: a slow fetch still stores (and shows) progress. */
const BATCH_MS = 1_000;
const LOCK_POLL_MS = 1_000;

export interface RunnerDeps {
  config: Config;
  pool: Pool;
  client: Ga4Client;
  metrics: Metrics;
  status: StatusBoard;
  logger: Logger;
  now?: () => number;
  lockPollMs?: number;
  /** told of planned ranges and stored batches (progress log, backfill's bar) */
  progress?: ProgressSink;
}

export interface JobSpec {
  propertyId: string;
  report: string;
  tokens: TokenSource;
  /** latest firing of the property's schedule (refresh rule); null = refresh the window now */
  lastFire: Date | null;
  /** a backfill: exactly this range, no planning */
  range?: { from: string; to: string };
}

export interface JobResult {
  ok: boolean;
  rows: number;
  dates: number;
  /** due dates left for a later run (the per-run bound was reached) */
  remaining?: number;
  /** quota or the server-error budget ran out: come back at this time (ms since epoch) */
  deferUntil?: number;
  error?: string;
  permanent?: boolean;
}

export class JobRunner {
  private readonly now: () => number;

  constructor(private readonly deps: RunnerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** A reloaded configuration applies to the jobs that start after it. */
  setConfig(config: Config): void {
    this.deps.config = config;
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<JobResult> {
    const { metrics, status } = this.deps;
    const def = this.deps.config.reports[job.report]!;
    const labels = { property: job.propertyId, report: job.report };
    const log = this.deps.logger.child({ property: job.propertyId, report: job.report });
    const state = status.get(job.propertyId, job.report);
    const started = this.now();
    state.running = true;
    state.lastRunAt = started;
    let db: PoolClient | null = null;
    const key = lockKey(this.deps.config.database.schema, 'job', job.propertyId, job.report);
    let locked = false;
    try {
      db = await this.deps.pool.connect();
      while (!(locked = await tryLock(db, key))) {
        log.debug({ event: 'job_waiting_for_lock' }, 'another daemon is running this job; waiting');
        await sleep(this.deps.lockPollMs ?? LOCK_POLL_MS, signal);
      }
      const result = await this.work(db, job, def, log, signal);
      if (result.remaining > 0) {
        log.info(
          { event: 'backlog_remaining', remaining: result.remaining, ...(result.deferUntil ? { deferredUntil: new Date(result.deferUntil).toISOString() } : {}) },
          result.deferUntil ? 'quota low: backlog deferred to the next quota window' : 'backlog left for the next run',
        );
      }
      metrics.fetchRuns.inc({ ...labels, outcome: 'success' });
      metrics.lastSuccess.set(labels, this.now() / 1000);
      state.lastSuccessAt = this.now();
      log.info({ event: 'job_succeeded', dates: result.dates, rows: result.rows, durationMs: this.now() - started }, 'fetch run succeeded');
      return { ok: true, ...result };
    } catch (err) {
      const aborted = err instanceof AbortedError || signal.aborted;
      const message = describe(err);
      if (!aborted) {
        metrics.fetchRuns.inc({ ...labels, outcome: 'failure' });
        status.recordFailure(job.propertyId, job.report, message, this.now());
      }
      log.error({ event: aborted ? 'job_aborted' : 'job_failed', err: message, permanent: err instanceof PermanentError, durationMs: this.now() - started }, aborted ? 'fetch run aborted' : 'fetch run failed');
      return {
        ok: false,
        rows: 0,
        dates: 0,
        error: message,
        permanent: err instanceof PermanentError,
        ...(err instanceof DeferError ? { deferUntil: err.resetAt } : {}),
      };
    } finally {
      state.running = false;
      if (db) {
        if (locked) await unlock(db, key).catch(() => undefined);
        // a connection in an unknown state (aborted mid-query) is discarded, not reused
        db.release(signal.aborted ? true : undefined);
      }
    }
  }

  private async work(
    db: PoolClient,
    job: JobSpec,
    def: ReportDefinition,
    log: Logger,
    signal: AbortSignal,
  ): Promise<{ rows: number; dates: number; remaining: number; deferUntil?: number }> {
    const { config, metrics } = this.deps;
    const schema = config.database.schema;
    const labels = { property: job.propertyId, report: job.report };
    const deadline = this.now() + config.fetch.jobDeadlineSeconds * 1000;
    const ctx = { propertyId: job.propertyId, tokens: job.tokens, logger: log, signal, report: job.report, deadline };
    // set when a response shows the property's quota below the reserve: finish the date in hand, then stop
    let quotaLowUntil: number | undefined;
    const onQuota = (q: PropertyQuota) => {
      this.recordQuota(job.propertyId, q);
      const low = quotaBelowReserve(q, config.fetch.quotaReserve, this.now());
      if (low !== undefined && quotaLowUntil === undefined) {
        quotaLowUntil = low;
        log.warn({ event: 'quota_low', quota: q, deferredUntil: new Date(low).toISOString() }, 'property quota below the reserve');
      }
    };
    const state = this.deps.status.get(job.propertyId, job.report);

    let timeZone = await propertyTimeZone(db, schema, job.propertyId);
    if (!timeZone) timeZone = await this.probeTimeZone(db, job, def, ctx);
    state.timeZone = timeZone;

    let ranges: Array<[string, string]>;
    let pending: number;
    let settledBefore: string;
    const today = localDate(this.now(), timeZone);
    if (job.range) {
      ranges = [[job.range.from, job.range.to]];
      pending = daysBetween(job.range.from, job.range.to) + 1;
      settledBefore = addDays(today, -def.refreshDays);
    } else {
      const ledger = await ledgerDays(db, schema, job.propertyId, job.report, '0001-01-01');
      const p = plan({ def, timeZone, now: new Date(this.now()), lastFire: job.lastFire, ledger, maxDays: config.fetch.maxDaysPerRun });
      await markSettled(db, schema, job.propertyId, job.report, p.settleOnly);
      ranges = p.ranges;
      pending = p.due.length;
      settledBefore = p.windowStart;
      log.info({ event: 'job_planned', due: p.due.length, ranges, settled: p.settleOnly.length, timeZone, today: p.today }, 'planned fetch');
    }
    metrics.datesPending.set(labels, pending);
    state.datesPending = pending;
    this.deps.progress?.start(job.propertyId, job.report, ranges);

    let rows = 0;
    let dates = 0;
    const batch = new BatchWriter({ db, schema, def, propertyId: job.propertyId, settledBefore, metrics, log });
    for (const [start, end] of ranges) {
      const rangeStarted = this.now();
      const flush = async () => {
        if (batch.size === 0) return;
        const stored = await batch.flush();
        const n = stored.rows;
        rows += n;
        dates += stored.dates;
        pending -= stored.dates;
        metrics.rowsWritten.inc(labels, n);
        this.deps.progress?.advance(job.propertyId, job.report, stored.dates, n);
        metrics.datesPending.set(labels, Math.max(0, pending));
        state.datesPending = Math.max(0, pending);
      };
      // GA's per-date totals first (small: one row a date), so each date's rows and totals are written together
      const totals = hasTotals(def)
        ? await fetchTotalsIfServed(this.deps.client, ctx, def, dateRange(start, end), onQuota)
        : null;
      const days = fetchRange(this.deps.client, ctx, def, start, end, {
        pageSize: config.fetch.pageSize,
        onQuota,
        onMeta: (m) => {
          if (m.timeZone && m.timeZone !== timeZone) {
            log.warn({ event: 'time_zone_changed', from: timeZone, to: m.timeZone }, 'property time zone changed');
          }
          if (m.timeZone) void saveProperty(db, schema, job.propertyId, m.timeZone, m.currencyCode).catch(() => undefined);
        },
      });
      try {
        for await (const day of days) {
          if (signal.aborted) throw new AbortedError();
          if (totals) day.totals = totals.get(day.date) ?? null;
          batch.add(day, this.now());
          if (batch.rows >= BATCH_ROWS || this.now() - batch.startedAt >= BATCH_MS) await flush();
          if (quotaLowUntil !== undefined) break;
        }
      } catch (err) {
        await batch.forgetUnconfirmed(err);
        throw err;
      }
      if (quotaLowUntil !== undefined) {
        await flush();
        const refused = batch.refusedError();
        if (refused) throw refused;
        return { rows, dates, remaining: Math.max(0, pending), deferUntil: quotaLowUntil };
      }
      if (signal.aborted) throw new AbortedError();
      await flush();
      log.info({ event: 'range_stored', start, end, durationMs: this.now() - rangeStarted }, 'date range stored');
    }
    // dates PostgreSQL refused (a value it cannot hold): the others are stored, the job fails naming them
    const refused = batch.refusedError();
    if (refused) throw refused;
    return { rows, dates, remaining: Math.max(0, pending) };
  }

  /** A property seen for the first time: one tiny request tells its time zone. */
  private async probeTimeZone(db: PoolClient, job: JobSpec, def: ReportDefinition, ctx: Parameters<Ga4Client['runReport']>[0]): Promise<string> {
    const res = await this.deps.client.runReport(ctx, {
      dateRanges: [{ startDate: 'yesterday', endDate: 'yesterday' }],
      dimensions: [{ name: 'date' }],
      metrics: [{ name: def.metrics[0]! }],
      limit: int64(1),
      returnPropertyQuota: true,
    });
    if (res.propertyQuota) this.recordQuota(job.propertyId, res.propertyQuota as PropertyQuota);
    let tz = res.metadata?.timeZone;
    if (!tz || !isValidTimeZone(tz)) {
      // Google always says; should an endpoint not, UTC is a usable calendar and the log says so
      this.deps.logger.warn({ event: 'time_zone_unknown', property: job.propertyId, got: tz ?? null }, 'the Data API did not give a usable time zone; using UTC');
      tz = 'UTC';
    }
    await saveProperty(db, this.deps.config.database.schema, job.propertyId, tz, res.metadata?.currencyCode ?? null);
    return tz;
  }

  private recordQuota(propertyId: string, q: PropertyQuota): void {
    if (typeof q !== 'object' || q === null) return;
    // proto3 JSON omits zeros: a window that is present without `remaining` has none left
    const hour = q.tokensPerHour ? Number(q.tokensPerHour.remaining ?? 0) : undefined;
    const day = q.tokensPerDay ? Number(q.tokensPerDay.remaining ?? 0) : undefined;
    if (typeof hour === 'number') this.deps.metrics.quotaRemaining.set({ property: propertyId, window: 'hour' }, hour);
    if (typeof day === 'number') this.deps.metrics.quotaRemaining.set({ property: propertyId, window: 'day' }, day);
  }
}
