/**
 * One job: bring one property and report up to date (or, for a backfill, fetch a given range).
 *
 * The job holds the advisory lock of its property and report on a connection of its own for as
 * long as it runs. A second daemon that wants the same job waits for the lock and then plans again
 * from the ledger, so it finds nothing left to do when the first succeeded and picks up the rest
 * when the first died (its connection, and so its lock, went with it). Dates are written in
 * batches, each batch one transaction, so a crash loses at most the batch in flight.
 *
 * A definition the property has no date stored under yet (a new report or property, a changed
 * definition) is checked against the property's metadata before it changes anything; the
 * report's relation gets its columns just before the first write. Whatever was planned or asked,
 * no date after the property's yesterday is written: Google has not finished it.
 */
import type { Config, ReportDefinition } from '../config/index.js';
import type { TokenSource } from '../auth/tokenManager.js';
import { AbortedError, DeferError, PermanentError, describe } from '../errors.js';
import type { CallContext } from '../ga4/callContext.js';
import type { Ga4Client } from '../ga4/client.js';
import { FieldCatalog } from '../ga4/fieldNames.js';
import { fetchRange } from '../ga4/report.js';
import { fetchTotalsIfServed } from '../ga4/totals.js';
import { ensureReportTable, hasTotals } from '../store/reportTables.js';
import type { PropertyQuota } from '../ga4/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BatchWriter } from './batchWriter.js';
import { databaseNow, definitionStored, definitionVersion, ledgerDays, markSettled, propertyTimeZone, saveProperty } from '../store/ledger.js';
import { describeDbError, isDatabaseUnavailable } from '../store/dbErrors.js';
import { noteJobOutcome } from '../store/jobFailures.js';
import { lockKey, withAdvisoryLock } from '../store/locks.js';
import { connect, type DbSession, type Pool, type PoolClient } from '../store/pool.js';
import { quotaBelowReserve } from '../ga4/quota.js';
import { timeZoneProbeRequest } from '../ga4/requests.js';
import { backoffDelay } from '../net/backoff.js';
import type { ProgressSink } from '../progress.js';
import type { StatusBoard } from '../status.js';
import { addDays, dateRange, daysBetween, isValidTimeZone, lastFinishedDate, localDate } from '../time.js';
import { plan } from './planner.js';

/** Rows held before a batch of complete dates is written. */
const BATCH_ROWS = 20_000;
/** ...or this long since the batch's first date: a slow fetch still stores (and shows) progress. */
const BATCH_MS = 1_000;
const LOCK_POLL_MS = 1_000;
/** A job whose database went away runs again within 1 s, then 2, 4 ... (dbRetryDelay), at most a minute apart. */
const DB_RETRY_BASE_MS = 1_000;
const DB_RETRY_CAP_MS = 60_000;

export interface RunnerDeps {
  config: Config;
  pool: Pool;
  client: Ga4Client;
  metrics: Metrics;
  status: StatusBoard;
  logger: Logger;
  now?: () => number;
  lockPollMs?: number;
  /** first delay before a job whose database went away runs again (doubling after each failure); default 1 s */
  dbRetryBaseMs?: number;
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
  /** the database went away: in daemon mode, run the job again after this long (ms); it plans afresh from the ledger */
  retryAfterMs?: number;
}

export class JobRunner {
  private readonly now: () => number;
  /** each property's metadata, to check a new definition's names (ga4/fieldNames.ts) */
  private readonly fields: FieldCatalog;

  constructor(private readonly deps: RunnerDeps) {
    this.now = deps.now ?? Date.now;
    this.fields = new FieldCatalog(deps.client);
  }

  /** A reloaded configuration applies to the jobs that start after it; metadata is asked afresh. */
  setConfig(config: Config): void {
    this.deps.config = config;
    this.fields.forget();
  }

  async run(job: JobSpec, signal: AbortSignal): Promise<JobResult> {
    const { metrics, status } = this.deps;
    const def = this.deps.config.reports[job.report];
    const labels = { property: job.propertyId, report: job.report };
    const log = this.deps.logger.child({ property: job.propertyId, report: job.report });
    const state = status.get(job.propertyId, job.report);
    const started = this.now();
    state.running = true;
    state.lastRunAt = started;
    const key = lockKey(this.deps.config.database.schema, 'job', job.propertyId, job.report);
    const retryKey = `${job.propertyId}\0${job.report}`;
    let session: DbSession | null = null;
    // the work stops when the daemon stops it, or when its connection, and with it the job's lock, is lost
    const stop = new AbortController();
    const onStop = () => stop.abort();
    signal.addEventListener('abort', onStop, { once: true });
    try {
      session = await connect(this.deps.pool, { signal });
      session.lost.addEventListener('abort', onStop, { once: true });
      if (signal.aborted) stop.abort();
      const db = session.client;
      const result = await withAdvisoryLock(session, key, () => this.work(db, job, def, log, stop.signal), {
        pollMs: this.deps.lockPollMs ?? LOCK_POLL_MS,
        signal: stop.signal,
        onBusy: () => log.debug({ event: 'job_waiting_for_lock' }, 'another daemon is running this job; waiting'),
      });
      this.dbRetries.delete(retryKey);
      await noteJobOutcome(db, this.deps.config.database.schema, job.propertyId, job.report, null, log);
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
      const lost = session?.lostError;
      // the database went away (or dropped this job's connection): retryable, planned afresh from the ledger next time
      const dbDown = !signal.aborted && (lost !== undefined || isDatabaseUnavailable(err));
      const aborted = !dbDown && (err instanceof AbortedError || signal.aborted);
      let message = describe(err);
      let retryAfterMs: number | undefined;
      if (dbDown) {
        session?.discard();
        retryAfterMs = this.dbRetryDelay(retryKey);
        message = `database: ${lost ? `connection lost (${describeDbError(lost)})` : describeDbError(err)}; the job runs again in ${Math.ceil(retryAfterMs / 1000)} s`;
      }
      if (!aborted) {
        metrics.fetchRuns.inc({ ...labels, outcome: 'failure' });
        status.recordFailure(job.propertyId, job.report, message, this.now());
        // for `ga-collector status`; a database that is down cannot take the note
        const db = session && !session.lost.aborted ? session.client : this.deps.pool;
        if (!dbDown) await noteJobOutcome(db, this.deps.config.database.schema, job.propertyId, job.report, { error: message, permanent: err instanceof PermanentError }, log);
      }
      log.error(
        { event: aborted ? 'job_aborted' : 'job_failed', err: message, permanent: err instanceof PermanentError, ...(dbDown ? { database: 'unavailable', retryInMs: retryAfterMs } : {}), durationMs: this.now() - started },
        aborted ? 'fetch run aborted' : 'fetch run failed',
      );
      return {
        ok: false,
        rows: 0,
        dates: 0,
        error: message,
        permanent: err instanceof PermanentError,
        ...(err instanceof DeferError ? { deferUntil: err.resetAt } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    } finally {
      state.running = false;
      signal.removeEventListener('abort', onStop);
      // a lost, aborted (its statement cancelled) or lock-holding connection is closed, not reused
      session?.release();
    }
  }

  /** Consecutive database failures per job: the next run waits 1, 2, 4 ... 60 s (net/backoff.ts), at least half the base. */
  private readonly dbRetries = new Map<string, number>();

  private dbRetryDelay(key: string): number {
    const failures = (this.dbRetries.get(key) ?? 0) + 1;
    this.dbRetries.set(key, failures);
    const baseMs = this.deps.dbRetryBaseMs ?? DB_RETRY_BASE_MS;
    return Math.round(backoffDelay(failures, { baseMs, capMs: DB_RETRY_CAP_MS, floorMs: baseMs / 2 }));
  }

  private async work(
    db: PoolClient,
    job: JobSpec,
    def: ReportDefinition | undefined,
    log: Logger,
    signal: AbortSignal,
  ): Promise<{ rows: number; dates: number; remaining: number; deferUntil?: number }> {
    // the scheduler hands over only configured jobs; this guards a caller that does not
    if (!def) throw new PermanentError(`report ${job.report} is not in the configuration (removed by a reload?)`, 'not_configured');
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

    // A definition this property has not stored dates under yet is checked against the property's
    // metadata before it changes anything (a column, the ledger): a typo fails here, with the fix.
    const known = await definitionStored(db, schema, job.propertyId, def);
    if (!known) await this.fields.check(ctx, def);

    const timeZone = await this.timeZone(db, job.propertyId, ctx);
    state.timeZone = timeZone;
    // Which dates are finished: by the earlier of our clock and the database's (time.ts)
    const ownNow = this.now();
    const nowMs = Math.min(ownNow, await databaseNow(db));
    if (ownNow - nowMs > 5 * 60_000) {
      log.warn({ event: 'clock_ahead', aheadMs: ownNow - nowMs }, "this machine's clock is ahead of the database's; planning by the database's");
    }
    const today = localDate(nowMs, timeZone);
    const lastDate = lastFinishedDate(timeZone, nowMs);

    let ranges: Array<[string, string]>;
    let pending: number;
    let settledBefore: string;
    if (job.range) {
      // whatever the caller asked, nothing after the property's yesterday: Google has not finished it
      const to = job.range.to > lastDate ? lastDate : job.range.to;
      if (to !== job.range.to) log.warn({ event: 'range_clamped', asked: job.range.to, to, timeZone }, "range ends after the property's yesterday; later dates are not fetched");
      ranges = job.range.from <= to ? [[job.range.from, to]] : [];
      pending = ranges.length ? daysBetween(job.range.from, to) + 1 : 0;
      settledBefore = addDays(today, -def.refreshDays);
    } else {
      const ledger = await ledgerDays(db, schema, job.propertyId, job.report, '0001-01-01');
      const p = plan({ def, timeZone, now: new Date(nowMs), lastFire: job.lastFire, ledger, maxDays: config.fetch.maxDaysPerRun });
      await markSettled(db, schema, job.propertyId, job.report, p.settleOnly);
      if (p.stale > 0 && !known) {
        log.warn(
          { event: 'report_definition_changed', to: { dimensions: def.dimensions, metrics: def.metrics }, datesToRefetch: p.stale },
          "report definition changed: this property's dates stored without one of its fields will be fetched again",
        );
      }
      ranges = p.ranges;
      pending = p.due.length;
      settledBefore = p.windowStart;
      log.info({ event: 'job_planned', due: p.due.length, ranges, settled: p.settleOnly.length, stale: p.stale, unfinished: p.unfinished, timeZone, today: p.today }, 'planned fetch');
    }
    metrics.datesPending.set(labels, pending);
    state.datesPending = pending;
    this.deps.progress?.start(job.propertyId, job.report, ranges);

    let rows = 0;
    let dates = 0;
    // the relation's columns and the definition are recorded just before the first write: after
    // the names were checked and Google answered with data, never for a definition that fails
    let definitionId: number | null = null;
    const batch = new BatchWriter({
      db,
      schema,
      def,
      propertyId: job.propertyId,
      settledBefore,
      lastDate,
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
        this.deps.status.storedDates();
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
          if (signal.aborted) throw abortReason(signal);
          if (totals) {
            const dayTotals = totals.get(day.date);
            day.totals = dayTotals?.values ?? null;
            // a totals value its column cannot hold refuses the date, as one in its rows does
            if (dayTotals?.unstorable) day.unstorable ??= dayTotals.unstorable;
          }
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
      if (signal.aborted) throw abortReason(signal);
      await flush();
      log.info({ event: 'range_stored', start, end, durationMs: this.now() - rangeStarted }, 'date range stored');
    }
    // dates refused (a value the column cannot hold): the others are stored, the job fails naming them
    const refused = batch.refusedError();
    if (refused) throw refused;
    return { rows, dates, remaining: Math.max(0, pending) };
  }

  /**
   * The property's time zone and the newest date Google has finished for it (its yesterday, by
   * the earlier of this machine's clock and the database's). The time zone comes from the
   * `properties` table; a property never seen before is asked once (probeTimeZone) and stored.
   * For `backfill`, which refuses a range that ends later. Throws what the probe met (403, token).
   */
  async finishedThrough(propertyId: string, tokens: TokenSource, signal?: AbortSignal): Promise<{ timeZone: string; lastDate: string }> {
    const db = this.deps.pool;
    const ctx = { propertyId, tokens, logger: this.deps.logger.child({ property: propertyId }), signal };
    const timeZone = await this.timeZone(db, propertyId, ctx);
    return { timeZone, lastDate: lastFinishedDate(timeZone, this.now(), await databaseNow(db)) };
  }

  /** From the ledger, else one tiny request (stored for next time). */
  private async timeZone(db: Pool | PoolClient, propertyId: string, ctx: CallContext): Promise<string> {
    const known = await propertyTimeZone(db, this.deps.config.database.schema, propertyId);
    if (known && isValidTimeZone(known)) return known;
    return this.probeTimeZone(db, propertyId, ctx);
  }

  /**
   * A property seen for the first time: one tiny request tells its time zone (`getMetadata` does
   * not; a report's response metadata does). It asks for `sessions`, a metric every GA4 property
   * has, so the answer does not depend on a report definition.
   */
  private async probeTimeZone(db: Pool | PoolClient, propertyId: string, ctx: CallContext): Promise<string> {
    const res = await this.deps.client.runReport(ctx, timeZoneProbeRequest());
    if (res.propertyQuota) this.recordQuota(propertyId, res.propertyQuota as PropertyQuota);
    let tz = res.metadata?.timeZone;
    if (!tz || !isValidTimeZone(tz)) {
      // Google always says; should an endpoint not, UTC is a usable calendar and the log says so
      this.deps.logger.warn({ event: 'time_zone_unknown', property: propertyId, got: tz ?? null }, 'the Data API did not give a usable time zone; using UTC');
      tz = 'UTC';
    }
    await saveProperty(db, this.deps.config.database.schema, propertyId, tz, res.metadata?.currencyCode ?? null);
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

/** Why a job was aborted: a reload that removed it says so; anything else is the shutdown. */
function abortReason(signal: AbortSignal): AbortedError {
  return signal.reason instanceof AbortedError ? signal.reason : new AbortedError();
}
