/**
 * The daemon's parts, wired in one place and started and stopped in order: metrics, tokens, pool,
 * migrations, GA4 client, runner, scheduler, HTTP. `main.ts` builds one of these per command.
 */
import { TokenManager } from './auth/tokenManager.js';
import type { Config } from './config.js';
import { describe } from './errors.js';
import { Ga4Client } from './ga4/client.js';
import { Limiter } from './ga4/limiter.js';
import { HttpServer, type StatusDocument, type StatusSource } from './http/server.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { ProgressTracker } from './progress.js';
import { JobRunner } from './schedule/runner.js';
import { poolSize } from './schedule/capacity.js';
import { Scheduler } from './schedule/scheduler.js';
import { resolveStartDate } from './schedule/planner.js';
import { StatusBoard } from './status.js';
import { ledgerSummary } from './store/ledger.js';
import { migrate } from './store/migrations.js';
import { createPool, type Pool } from './store/pool.js';
import { ensureReportTables } from './store/reportTables.js';
import { columnName, ident, qualified } from './store/identifiers.js';
import { addDays, daysBetween, localDate } from './time.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  config: Config;
  logger: Logger;
  now?: () => number;
  /** serve HTTP (run, demo); off for one-shot commands */
  http?: boolean;
  metrics?: Metrics;
  /** daemon mode: drain a backlog in turns instead of waiting for the next firing */
  continueBacklog?: boolean;
  /** where backfill draws its progress bar (a TTY), if anywhere; progress is logged regardless */
  progressBar?: NodeJS.WritableStream | null;
  /** test hooks */
  backoffBaseMs?: number;
  lockPollMs?: number;
}

export class Daemon implements StatusSource {
  readonly metrics: Metrics;
  readonly tokens: TokenManager;
  readonly pool: Pool;
  readonly board = new StatusBoard();
  readonly client: Ga4Client;
  readonly runner: JobRunner;
  readonly scheduler: Scheduler;
  readonly http: HttpServer | null;
  private readonly now: () => number;
  private stopped = false;

  private config: Config;

  constructor(private readonly opts: DaemonOptions) {
    const { config, logger } = opts;
    this.config = config;
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? new Metrics();
    // tokens live on the real clock (their expiry is real time); `now` only moves the calendar and schedule
    this.tokens = new TokenManager({ tokenUrl: config.google.tokenUrl, logger, metrics: this.metrics });
    // Build every token source now, so a bad key file fails at start-up, not at 4 a.m.
    for (const p of config.properties) this.tokens.forKeyFile(p.credentials);
    this.pool = createPool(config.database.url, logger, poolSize(config.concurrency));
    this.client = new Ga4Client({
      apiRootUrl: config.google.apiRootUrl,
      timeoutMs: config.fetch.timeoutSeconds * 1000,
      maxAttempts: config.fetch.maxAttempts,
      limiter: new Limiter(config.concurrency),
      metrics: this.metrics,
      maxServerErrorsPerHour: config.fetch.maxServerErrorsPerHour,
      ...(opts.backoffBaseMs !== undefined ? { backoffBaseMs: opts.backoffBaseMs, backoffCapMs: opts.backoffBaseMs * 32 } : {}),
    });
    this.runner = new JobRunner({
      config,
      pool: this.pool,
      client: this.client,
      metrics: this.metrics,
      status: this.board,
      logger,
      now: this.now,
      ...(opts.lockPollMs !== undefined ? { lockPollMs: opts.lockPollMs } : {}),
      progress: new ProgressTracker({ logger, bar: opts.progressBar ?? null, columns: process.stderr.columns ?? 80 }),
    });
    this.scheduler = new Scheduler({
      config,
      runner: this.runner,
      tokens: this.tokens,
      status: this.board,
      logger,
      now: this.now,
      continueBacklog: opts.continueBacklog ?? false,
      metrics: this.metrics,
    });
    this.http = opts.http ? new HttpServer({ host: config.http.host, port: config.http.port, metrics: this.metrics, source: this, logger }) : null;
  }

  /** Migrations and the report relations; then the metrics start from what the database knows. */
  async prepare(): Promise<void> {
    const { logger } = this.opts;
    await migrate(this.pool, this.config.database.schema, logger);
    await ensureReportTables(this.pool, this.config.database.schema, Object.values(this.config.reports), logger);
    await this.seedMetrics();
  }

  /**
   * Every configured series exists from the start (a counter that appears only at its first
   * failure makes `increase()` miss that failure), and the last-success gauge survives a restart:
   * it is seeded from the ledger's newest fetch.
   */
  private async seedMetrics(): Promise<void> {
    const { metrics } = this;
    for (const p of this.config.properties) {
      for (const report of p.reports) {
        const labels = { property: p.id, report };
        metrics.fetchRuns.inc({ ...labels, outcome: 'success' }, 0);
        metrics.fetchRuns.inc({ ...labels, outcome: 'failure' }, 0);
        metrics.rowsWritten.inc(labels, 0);
      }
    }
    for (const s of this.tokens.sources()) {
      metrics.tokenRefreshes.inc({ account: s.account, outcome: 'success' }, 0);
      metrics.tokenRefreshes.inc({ account: s.account, outcome: 'failure' }, 0);
    }
    const summary = await ledgerSummary(this.pool, this.config.database.schema);
    for (const s of summary) {
      const configured = this.config.properties.some((p) => p.id === s.propertyId && p.reports.includes(s.report));
      if (configured && s.lastFetchedAt) metrics.lastSuccess.set({ property: s.propertyId, report: s.report }, s.lastFetchedAt.getTime() / 1000);
    }
  }

  /**
   * SIGHUP: properties, reports and schedules change without a restart. Settings that the running
   * parts were built with (database, HTTP address, token URL, concurrency) need a restart; a
   * reload that changes them is refused as a whole, so the daemon keeps a consistent config.
   */
  async reload(next: Config): Promise<void> {
    const prev = this.config;
    const fixed: Array<[string, unknown, unknown]> = [
      ['database.url', prev.database.url, next.database.url],
      ['database.schema', prev.database.schema, next.database.schema],
      ['http.host', prev.http.host, next.http.host],
      ['http.port', prev.http.port, next.http.port],
      ['google.tokenUrl', prev.google.tokenUrl, next.google.tokenUrl],
      ['google.apiRootUrl', prev.google.apiRootUrl, next.google.apiRootUrl],
      ['concurrency', prev.concurrency, next.concurrency],
    ];
    const changed = fixed.filter(([, a, b]) => a !== b).map(([k]) => k);
    if (changed.length) throw new Error(`reload refused: ${changed.join(', ')} changed; restart the daemon for that`);
    for (const p of next.properties) this.tokens.forKeyFile(p.credentials);
    await ensureReportTables(this.pool, next.database.schema, Object.values(next.reports), this.opts.logger);
    for (const s of this.tokens.sources()) if (!s.status().valid && !s.status().failingSince) await s.start();
    this.config = next;
    await this.seedMetrics();
    this.runner.setConfig(next);
    await this.scheduler.reload(next);
  }

  /** Tokens first (so the first fetches find one), then HTTP. */
  async startServices(): Promise<void> {
    await this.http?.start();
    await this.tokens.start();
  }

  async stop(graceMs = this.opts.config.shutdown.graceSeconds * 1000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.scheduler.stop(graceMs);
    this.tokens.stop();
    await this.http?.stop();
    // a job the watchdog let go may still hold a connection; the pool's end would wait for it
    await withTimeout(this.pool.end(), 3_000).catch(() => undefined);
  }

  get currentConfig(): Config {
    return this.config;
  }

  async readiness(): Promise<{ ready: boolean; reasons: string[] }> {
    const reasons: string[] = [];
    try {
      await withTimeout(this.pool.query('SELECT 1'), 3_000);
    } catch (err) {
      reasons.push(`database: ${describe(err)}`);
    }
    for (const s of this.tokens.sources()) {
      const st = s.status();
      if (!st.valid) reasons.push(`token for ${st.account}: ${st.lastError ? `refresh failing: ${st.lastError}` : 'not obtained yet'}`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  async status(): Promise<StatusDocument> {
    const config = this.config;
    const schema = config.database.schema;
    let reachable = true;
    let dbError: string | undefined;
    let summary: Awaited<ReturnType<typeof ledgerSummary>> = [];
    const zones = new Map<string, string>();
    const series: StatusDocument['series'] = [];
    try {
      summary = await withTimeout(ledgerSummary(this.pool, schema), 5_000);
      const tz = await this.pool.query<{ property_id: string; time_zone: string }>(`SELECT property_id, time_zone FROM ${qualified(schema, 'properties')}`);
      for (const r of tz.rows) zones.set(r.property_id, r.time_zone);
      for (const p of config.properties) {
        const report = p.reports[0];
        if (!report) continue;
        const def = config.reports[report]!;
        const metric = def.metrics[0]!;
        const { rows } = await this.pool.query<{ date: string; value: string }>(
          `SELECT to_char(date, 'YYYY-MM-DD') AS date, sum(${ident(columnName(metric))})::float8 AS value FROM ${qualified(schema, def.name)}
            WHERE property_id = $1 AND date > current_date - 31 GROUP BY date ORDER BY date`,
          [p.id],
        );
        series.push({ property: p.id, report, metric, points: rows.map((r) => ({ date: r.date, value: Number(r.value) })) });
      }
    } catch (err) {
      reachable = false;
      dbError = describe(err);
    }
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const reports: StatusDocument['reports'] = [];
    for (const p of config.properties) {
      for (const r of p.reports) {
        const st = this.board.get(p.id, r);
        const sum = summary.find((s) => s.propertyId === p.id && s.report === r);
        const tz = zones.get(p.id) ?? st.timeZone;
        let gaps = 0;
        if (tz) {
          const today = localDate(this.now(), tz);
          const start = resolveStartDate(config.reports[r]!.startDate, today);
          const expected = Math.max(0, daysBetween(start, addDays(today, -1)) + 1);
          gaps = Math.max(0, expected - (sum?.days ?? 0));
        }
        reports.push({
          property: p.id,
          report: r,
          timeZone: tz ?? null,
          running: st.running,
          lastSuccess: iso(st.lastSuccessAt) ?? (sum?.lastFetchedAt ? sum.lastFetchedAt.toISOString() : null),
          lastRun: iso(st.lastRunAt),
          dataThrough: sum?.lastDate ?? null,
          firstDate: sum?.firstDate ?? null,
          storedDays: sum?.days ?? 0,
          gaps,
          datesPending: st.datesPending,
          nextRun: iso(st.nextRunAt),
          lastError: st.lastError,
          lastErrorAt: iso(st.lastErrorAt),
        });
      }
    }
    return {
      generatedAt: new Date(this.now()).toISOString(),
      version: VERSION,
      database: reachable ? { reachable } : { reachable, error: dbError ?? 'unknown' },
      tokens: this.tokens.sources().map((s) => {
        const st = s.status();
        return { account: st.account, keyId: st.keyId, valid: st.valid, expiresAt: iso(st.expiresAt), failingSince: iso(st.failingSince), lastError: st.lastError };
      }),
      reports,
      recentFailures: this.board.failures.map((f) => ({ at: new Date(f.at).toISOString(), property: f.propertyId, report: f.report, error: f.error })),
      series,
    };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}
