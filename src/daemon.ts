/**
 * The daemon's parts, wired in one place and started and stopped in order: metrics, tokens, pool,
 * migrations, GA4 client, runner, scheduler, HTTP. `main.ts` builds one of these per command.
 */
import { TokenManager, exchangeDeadlineMs } from './auth/tokenManager.js';
import type { Config } from './config.js';
import { Ga4Client } from './ga4/client.js';
import { Limiter } from './ga4/limiter.js';
import { HttpServer, type StatusSource } from './http/server.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { ProgressTracker } from './progress.js';
import { JobRunner } from './schedule/runner.js';
import { poolSize } from './schedule/capacity.js';
import { Scheduler } from './schedule/scheduler.js';
import { StatusBoard, StatusView, type StatusDocument, type StatusQuery } from './status.js';
import { ledgerSummary } from './store/ledger.js';
import { migrate } from './store/migrations.js';
import { createPool, type Pool } from './store/pool.js';
import { describeDbError, isDatabaseUnavailable } from './store/dbErrors.js';
import { withDeadline } from './net/deadline.js';

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
  /** the floor between two token exchanges of one principal (default 10 s), for tests with tokens of a few seconds */
  minTokenExchangeIntervalMs?: number;
  deferJitterMs?: number;
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
  private readonly view: StatusView;
  private readonly now: () => number;
  private stopped = false;

  private config: Config;

  constructor(private readonly opts: DaemonOptions) {
    const { config, logger } = opts;
    this.config = config;
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? new Metrics();
    // tokens live on the real clock (their expiry is real time); `now` only moves the calendar and schedule
    this.tokens = new TokenManager({
      tokenUrl: config.google.tokenUrl,
      iamCredentialsRootUrl: config.google.iamCredentialsRootUrl,
      logger,
      metrics: this.metrics,
      exchangeTimeoutMs: exchangeDeadlineMs(config.fetch.timeoutSeconds),
      // systemd's LoadCredential= directory: its files are 0400 plus an ACL, not loose (auth/keyFileNotes.ts)
      credentialsDirectory: process.env['CREDENTIALS_DIRECTORY'],
      ...(opts.minTokenExchangeIntervalMs !== undefined ? { minExchangeIntervalMs: opts.minTokenExchangeIntervalMs } : {}),
    });
    // Build every token source now, so a bad credentials file fails at start-up, not at 4 a.m.
    for (const p of config.properties) this.tokens.forPrincipal(p);
    this.pool = createPool(config.database.url, logger, poolSize(config.concurrency), { schema: config.database.schema });
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
      ...(opts.deferJitterMs !== undefined ? { deferJitterMs: opts.deferJitterMs } : {}),
      metrics: this.metrics,
    });
    this.view = new StatusView({
      pool: this.pool,
      board: this.board,
      config: () => this.config,
      tokens: () => this.tokens.sources().map((s) => s.status()),
      now: this.now,
      logger,
    });
    this.http = opts.http
      ? new HttpServer({ host: config.http.host, port: config.http.port, webConfigFile: config.http.webConfigFile, metrics: this.metrics, source: this, logger })
      : null;
  }

  /**
   * Migrations; then the metrics start from what the database knows. The report relations are
   * not touched here: each job creates or extends its report's relation just before its first
   * write, once the definition's names were checked (schedule/runner.ts), so a config with a typo
   * changes nothing in the database.
   */
  async prepare(): Promise<void> {
    const { logger } = this.opts;
    await migrate(this.pool, this.config.database.schema, logger);
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
        metrics.valuesSanitized.inc(labels, 0);
      }
    }
    // a principal named only by its first exchange (metadata server) seeds its series then (auth/tokenManager.ts)
    for (const s of this.tokens.sources().filter((t) => t.accountKnown)) {
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
      ['http.webConfigFile', prev.http.webConfigFile ?? '', next.http.webConfigFile ?? ''],
      ['google.tokenUrl', prev.google.tokenUrl, next.google.tokenUrl],
      ['google.iamCredentialsRootUrl', prev.google.iamCredentialsRootUrl, next.google.iamCredentialsRootUrl],
      ['google.apiRootUrl', prev.google.apiRootUrl, next.google.apiRootUrl],
      ['concurrency', prev.concurrency, next.concurrency],
    ];
    const changed = fixed.filter(([, a, b]) => a !== b).map(([k]) => k);
    if (changed.length) throw new Error(`reload refused: ${changed.join(', ')} changed; restart the daemon for that`);
    for (const p of next.properties) this.tokens.forPrincipal(p);
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

  /** The grace period is the configuration in effect now (a reload may have changed it). */
  async stop(graceMs = this.config.shutdown.graceSeconds * 1000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.scheduler.stop(graceMs);
    this.tokens.stop();
    await this.http?.stop();
    // a job the watchdog let go may still hold a connection; the pool's end would wait for it
    await withDeadline('closing the database pool', 3_000, undefined, () => this.pool.end()).catch(() => undefined);
  }

  get currentConfig(): Config {
    return this.config;
  }

  /**
   * Ready when the database answers within 3 s (a `SELECT 1` through the pool, which replaces lost
   * connections, so a database that came back is ready again at the next probe) and every
   * credential holds a token. Reasons are one line each, never with the database password.
   */
  async readiness(): Promise<{ ready: boolean; reasons: string[] }> {
    const reasons: string[] = [];
    try {
      await withDeadline('SELECT 1', 3_000, undefined, () => this.pool.query('SELECT 1'));
    } catch (err) {
      reasons.push(`database: ${isDatabaseUnavailable(err) ? 'unavailable: ' : ''}${describeDbError(err, this.config.database.url)}`);
    }
    for (const s of this.tokens.sources()) {
      const st = s.status();
      if (!st.valid) reasons.push(`token for ${st.account}: ${st.lastError ? `refresh failing: ${st.lastError}` : 'not obtained yet'}`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  /** The status document (src/status.ts): everything, or a page of properties, attention first. */
  status(query?: StatusQuery): Promise<StatusDocument> {
    return this.view.document(query);
  }
}
