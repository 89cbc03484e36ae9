/**
 * One job: bring one property and report up to date (or, for a backfill, fetch a given range).
 *
 * The job holds the advisory lock of its property and report on a connection of its own for as
 * long as it runs. A second daemon that wants the same job waits for the lock and then plans again
 * from the ledger, so it finds nothing left to do when the first succeeded and picks up the rest
 * when the first died (its connection, and so its lock, went with it).
 *
 * Under the lock: a definition the property has no date stored under yet (a new report or
 * property, a changed definition) is checked against the property's metadata before it changes
 * anything; the property's time zone is read (or asked of Google once); the dates are planned
 * (jobPlan.ts) and then fetched and written in batches, each one transaction (rangeStore.ts).
 * Whatever was planned or asked, no date after the property's yesterday is written: Google has
 * not finished it. Here: the lock, the job's outcome (metrics, job board, log) and the retry
 * after the database went away.
 */
import { sourceDefinition, type Config, type ReportDefinition, type SourceKind } from '../config/index.js';
import type { TokenSource } from '../auth/tokenManager.js';
import { AbortedError, DeferError, PermanentError, describe } from '../errors.js';
import type { CallContext } from '../ga4/callContext.js';
import type { Ga4Client } from '../ga4/client.js';
import type { SearchConsoleClient } from '../searchConsole/client.js';
import { ga4Tables, searchConsoleTables, type SourceTables } from '../store/sourceTables.js';
import { FieldCatalog } from '../ga4/fieldNames.js';
import type { PropertyQuota } from '../ga4/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { databaseNow, definitionStored, propertyTimeZone, saveProperty } from '../store/ledger.js';
import { describeDbError, isDatabaseUnavailable } from '../store/dbErrors.js';
import { noteJobOutcome } from '../store/jobFailures.js';
import { lockKey, withAdvisoryLock } from '../store/locks.js';
import { connect, type DbSession, type Pool, type PoolClient } from '../store/pool.js';
import { quotaBelowReserve, tokensRemaining } from '../ga4/quota.js';
import { timeZoneProbeRequest } from '../ga4/requests.js';
import { backoffDelay } from '../net/backoff.js';
import type { ProgressSink } from '../progress.js';
import type { JobBoard } from './jobBoard.js';
import { isValidTimeZone, lastFinishedDate } from '../time.js';
import { planJob } from './jobPlan.js';
import { fetchAndStoreRanges, ga4Days } from './rangeStore.js';
import type { SharedQuota } from './sharedQuota.js';
import { runSiteJob } from './siteJob.js';

const LOCK_POLL_MS = 1_000;
/** A job whose database went away runs again within 1 s, then 2, 4 ... (dbRetryDelay), at most a minute apart. */
const DB_RETRY_BASE_MS = 1_000;
const DB_RETRY_CAP_MS = 60_000;

export interface RunnerDeps {
  config: Config;
  pool: Pool;
  client: Ga4Client;
  searchConsole: SearchConsoleClient;
  metrics: Metrics;
  board: JobBoard;
  logger: Logger;
  now?: () => number;
  lockPollMs?: number;
  /** test hook: rows per Search Console request (production: 25,000, searchConsole/report.ts) */
  searchConsoleRowLimit?: number;
  /** first delay before a job whose database went away runs again (doubling after each failure); default 1 s */
  dbRetryBaseMs?: number;
  /** told of planned ranges and stored batches (progress log, backfill's bar) */
  progress?: ProgressSink;
  /** the quota state shared with the other daemons: quota-low deferrals and the last propertyQuota are kept there */
  quota?: SharedQuota;
}

export interface JobSpec {
  /** a GA4 property (default) or a Search Console site */
  kind?: SourceKind;
  /** the property id, or the site URL */
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
    const { metrics, board } = this.deps;
    const def = sourceDefinition(this.deps.config, job.kind ?? 'ga4', job.report);
    const tables = this.tablesOf(job);
    const labels = { property: job.propertyId, report: job.report };
    const log = this.deps.logger.child({ property: job.propertyId, report: job.report });
    const state = board.job(job.propertyId, job.report);
    const started = this.now();
    state.running = true;
    state.lastRunAt = started;
    const key = lockKey(tables.schema, 'job', job.propertyId, job.report);
    const retryKey = `${job.propertyId}\0${job.report}`;
    let session: DbSession | null = null;
    // dates and rows this job has stored so far, batch by batch
    const stored = { dates: 0, rows: 0 };
    // the work stops when the daemon stops it, or when its connection, and with it the job's lock, is lost
    const stop = new AbortController();
    const onStop = () => stop.abort();
    signal.addEventListener('abort', onStop, { once: true });
    try {
      session = await connect(this.deps.pool, { signal });
      session.lost.addEventListener('abort', onStop, { once: true });
      if (signal.aborted) stop.abort();
      const db = session.client;
      const result = await withAdvisoryLock(session, key, () => this.work(db, job, def, log, stop.signal, stored), {
        pollMs: this.deps.lockPollMs ?? LOCK_POLL_MS,
        signal: stop.signal,
        onBusy: () => log.debug({ event: 'job_waiting_for_lock' }, 'another daemon is running this job; waiting'),
      });
      this.dbRetries.delete(retryKey);
      await noteJobOutcome(db, tables, job.propertyId, job.report, null, log);
      if (result.remaining > 0) {
        log.info(
          {
            event: 'backlog_remaining',
            remaining: result.remaining,
            ...(result.deferUntil ? { deferredUntil: new Date(result.deferUntil).toISOString() } : {}),
          },
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
      // what aborted it (shutdown, the watchdog's deadline, a reload that removed it) says so itself
      if (aborted && signal.reason instanceof AbortedError) message = signal.reason.message;
      // a privilege the role lacks does not come back by retrying: say where the missing GRANTs are listed
      const privilege = !dbDown && (err as { code?: unknown }).code === '42501';
      if (privilege) message = `database: ${describeDbError(err)}; run \`ga-collector check\`, which names each missing privilege and the GRANT that gives it`;
      if (dbDown) {
        session?.discard();
        retryAfterMs = this.dbRetryDelay(retryKey);
        message = `database: ${lost ? `connection lost (${describeDbError(lost)})` : describeDbError(err)}; the job runs again in ${Math.ceil(retryAfterMs / 1000)} s`;
      }
      if (!aborted) {
        metrics.fetchRuns.inc({ ...labels, outcome: 'failure' });
        board.recordFailure(job.propertyId, job.report, message, this.now());
        // for `ga-collector status`; a database that is down cannot take the note
        const db = session && !session.lost.aborted ? session.client : this.deps.pool;
        if (!dbDown)
          await noteJobOutcome(db, tables, job.propertyId, job.report, { error: message, permanent: err instanceof PermanentError || privilege }, log);
      }
      const permanent = err instanceof PermanentError || privilege;
      // an abort was asked for (shutdown, watchdog, reload), and is logged where it was asked: not an error here
      log[aborted ? 'warn' : 'error'](
        {
          event: aborted ? 'job_aborted' : 'job_failed',
          err: message,
          permanent,
          ...(dbDown ? { database: 'unavailable', retryInMs: retryAfterMs } : {}),
          durationMs: this.now() - started,
        },
        aborted ? 'fetch run aborted' : 'fetch run failed',
      );
      return {
        ok: false,
        // what the job stored before it failed stays stored (each batch is committed whole)
        rows: stored.rows,
        dates: stored.dates,
        error: message,
        permanent,
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

  /** Where the job's source is stored: GA4's schema, or Search Console's. */
  private tablesOf(job: JobSpec): SourceTables {
    const { config } = this.deps;
    return job.kind === 'searchConsole' ? searchConsoleTables(config.searchConsole.schema) : ga4Tables(config.database.schema);
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
    stored: { dates: number; rows: number },
  ): Promise<{ rows: number; dates: number; remaining: number; deferUntil?: number }> {
    // the scheduler hands over only configured jobs; this guards a caller that does not
    if (!def) throw new PermanentError(`report ${job.report} is not in the configuration (removed by a reload?)`, 'not_configured');
    const { config } = this.deps;
    // where any job, a property's or a site's, reports what it stored
    const progress = this.deps.progress;
    const tally: ProgressSink = {
      start: (propertyId, report, ranges) => progress?.start(propertyId, report, ranges),
      advance: (propertyId, report, dates, rows) => {
        stored.dates += dates;
        stored.rows += rows;
        progress?.advance(propertyId, report, dates, rows);
      },
    };
    const reporting = { metrics: this.deps.metrics, board: this.deps.board, progress: tally, log, signal, now: this.now };
    if (job.kind === 'searchConsole') {
      return runSiteJob({ db, config, client: this.deps.searchConsole, job: { ...job, def }, ...reporting, rowLimit: this.deps.searchConsoleRowLimit });
    }
    const schema = config.database.schema;
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
        this.deps.quota?.deferQuotaLow(
          job.propertyId,
          low,
          `property ${job.propertyId}: quota below the reserve (fetch.quotaReserve ${config.fetch.quotaReserve})`,
        );
      }
    };
    const state = this.deps.board.job(job.propertyId, job.report);

    // A definition this property has not stored dates under yet is checked against the property's
    // metadata before it changes anything (a column, the ledger): a typo fails here, with the fix.
    const known = await definitionStored(db, schema, job.propertyId, def);
    if (!known) await this.fields.check(ctx, def);

    const timeZone = await this.timeZone(db, job.propertyId, ctx);
    state.timeZone = timeZone;
    const plan = await planJob(db, {
      schema,
      propertyId: job.propertyId,
      report: job.report,
      def,
      timeZone,
      definitionKnown: known,
      lastFire: job.lastFire,
      range: job.range,
      maxDaysPerRun: config.fetch.maxDaysPerRun,
      now: this.now(),
      log,
    });
    // quota low by an earlier run or another daemon: the backlog waits for the window, as when this run saw it
    const lowUntil = plan.pending > 0 ? await this.deps.quota?.quotaLowUntil(job.propertyId) : undefined;
    if (lowUntil !== undefined) {
      log.warn({ event: 'quota_low', deferredUntil: new Date(lowUntil).toISOString(), recorded: true }, 'property quota below the reserve');
      this.deps.metrics.datesPending.set({ property: job.propertyId, report: job.report }, plan.pending);
      state.datesPending = plan.pending;
      return { rows: 0, dates: 0, remaining: plan.pending, deferUntil: lowUntil };
    }
    return fetchAndStoreRanges({
      db,
      schema,
      def,
      propertyId: job.propertyId,
      report: job.report,
      plan,
      days: ga4Days({
        db,
        schema,
        def,
        propertyId: job.propertyId,
        timeZone,
        client: this.deps.client,
        ctx,
        pageSize: config.fetch.pageSize,
        perPropertyConcurrency: config.fetch.perPropertyConcurrency,
        onQuota,
        log,
      }),
      quotaLowUntil: () => quotaLowUntil,
      ...reporting,
    });
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
    this.deps.quota?.quotaSeen(propertyId, q);
    const { hour, day } = tokensRemaining(q);
    if (typeof hour === 'number') this.deps.metrics.quotaRemaining.set({ property: propertyId, window: 'hour' }, hour);
    if (typeof day === 'number') this.deps.metrics.quotaRemaining.set({ property: propertyId, window: 'day' }, day);
  }
}
