/**
 * The daemon's parts, wired in one place: metrics, tokens, pool, GA4 client, runner, scheduler,
 * HTTP. `main.ts` builds one per command, and the demo one for itself. start() and stop() are the
 * only ways to bring the parts up and down (lifecycle.ts): start() migrates (waiting for a database
 * that is still coming, when asked), seeds the metrics, serves HTTP, obtains tokens and starts the
 * schedule, in that order and only as far as the command needs; stop() takes them down in reverse.
 */
import { TokenManager, exchangeDeadlineMs } from './auth/tokenManager.js';
import { configuredSources, type Config } from './config/index.js';
import { restartOnlyChanges } from './config/reload.js';
import { AdminClient } from './discovery/adminClient.js';
import { Discovery, sameProperties, withDiscovered } from './discovery/discovery.js';
import { createApiClients } from './apiClients.js';
import type { Ga4Client } from './ga4/client.js';
import type { SearchConsoleClient } from './searchConsole/client.js';
import { migrateSearchConsole } from './store/sourceTables.js';
import { HttpServer, type DaemonView } from './http/server.js';
import { Lifecycle } from './lifecycle.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { seedMetrics, seedQuotaGauge } from './metricsSeed.js';
import { ProgressTracker } from './progress.js';
import { JobRunner } from './schedule/runner.js';
import { poolSize } from './schedule/capacity.js';
import { JobBoard } from './schedule/jobBoard.js';
import { Scheduler } from './schedule/scheduler.js';
import { SharedQuota } from './schedule/sharedQuota.js';
import { StatusView, type DiscoveryView, type ReloadRecord, type StatusDocument, type StatusQuery } from './status.js';
import { whenDatabaseAnswers } from './store/databaseWait.js';
import { readiness } from './readiness.js';
import { migrate } from './store/migrations.js';
import { createPool, type Pool } from './store/pool.js';
import { describeDbError } from './store/dbErrors.js';
import { withDeadline } from './net/deadline.js';
import { AbortedError, describe } from './errors.js';

export type { StartOptions, StartStage } from './lifecycle.js';
import type { StartOptions, StartStage } from './lifecycle.js';
export { StartError } from './errors.js';
import { StartError } from './errors.js';

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
  /** first retry of a failed discovery, ms (default 30 s, doubling up to an hour) */
  discoveryRetryMs?: number;
  /** rows per Search Console request (production: 25,000), for tests of paging */
  searchConsoleRowLimit?: number;
}

export class Daemon implements DaemonView {
  readonly metrics: Metrics;
  readonly tokens: TokenManager;
  readonly pool: Pool;
  readonly board = new JobBoard();
  readonly client: Ga4Client;
  /** the quota budget shared with the daemons on the same database (schedule/sharedQuota.ts) */
  readonly quota: SharedQuota;
  readonly searchConsole: SearchConsoleClient;
  readonly runner: JobRunner;
  readonly scheduler: Scheduler;
  readonly http: HttpServer | null;
  private readonly view: StatusView;
  private readonly now: () => number;
  private readonly lifecycle = new Lifecycle();
  /** the last SIGHUP's outcome, for the status document; null before the first */
  private lastReload: ReloadRecord | null = null;

  private config: Config;
  /** the configuration as loaded (file, environment); `config` is it with the discovered properties */
  private base: Config;
  private discovery: Discovery | null = null;
  private discoveryLoop = false;
  /** configuration changes (SIGHUP, discovery) are applied one at a time */
  private applying: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DaemonOptions) {
    const { config, logger } = opts;
    this.config = config;
    this.base = config;
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
    for (const source of configuredSources(config)) this.tokens.forPrincipal(source);
    if (config.discovery.enabled) this.tokens.forPrincipal(config.google);
    this.pool = createPool(config.database.url, logger, poolSize(config.concurrency), { schema: config.database.schema });
    this.quota = new SharedQuota({
      pool: this.pool,
      schema: config.database.schema,
      maxServerErrorsPerHour: config.fetch.maxServerErrorsPerHour,
      // a request ends by its deadline (client.ts); its claim outlives it by a margin for the answer's settling
      requestDeadlineMs: config.fetch.timeoutSeconds * 1000 + 5_000,
      logger,
    });
    ({ ga4: this.client, searchConsole: this.searchConsole } = createApiClients(config, this.metrics, this.quota, opts.backoffBaseMs));
    this.runner = new JobRunner({
      config,
      pool: this.pool,
      client: this.client,
      searchConsole: this.searchConsole,
      metrics: this.metrics,
      board: this.board,
      logger,
      now: this.now,
      quota: this.quota,
      ...(opts.lockPollMs !== undefined ? { lockPollMs: opts.lockPollMs } : {}),
      ...(opts.searchConsoleRowLimit !== undefined ? { searchConsoleRowLimit: opts.searchConsoleRowLimit } : {}),
      progress: new ProgressTracker({ logger, bar: opts.progressBar ?? null, columns: process.stderr.columns ?? 80 }),
    });
    this.scheduler = new Scheduler({
      config,
      runner: this.runner,
      tokens: this.tokens,
      board: this.board,
      logger,
      now: this.now,
      continueBacklog: opts.continueBacklog ?? false,
      ...(opts.deferJitterMs !== undefined ? { deferJitterMs: opts.deferJitterMs } : {}),
      metrics: this.metrics,
    });
    this.view = new StatusView({
      pool: this.pool,
      board: this.board,
      lastReload: () => this.lastReload,
      config: () => this.config,
      tokens: () => this.tokens.sources().map((s) => s.status()),
      discovery: () => this.discoveryView(),
      now: this.now,
      logger,
    });
    if (config.discovery.enabled) this.discovery = this.makeDiscovery();
    this.http = opts.http
      ? new HttpServer({
          host: config.http.host,
          port: config.http.port,
          webConfigFile: config.http.webConfigFile,
          metrics: this.metrics,
          source: this,
          logger,
        })
      : null;
  }

  /**
   * Brings the parts up in order, as far as `opts.upTo`: migrations (waiting for the database when
   * asked), the metrics' start values, HTTP, tokens, the schedule. The report relations are not
   * touched here: each job creates or extends its report's relation just before its first write,
   * once the definition's names were checked (schedule/runner.ts), so a config with a typo changes
   * nothing in the database. A second call returns the first one's promise.
   *
   * @throws StartError naming the part that failed (database, http)
   * @throws AbortedError when stop() was called meanwhile; stop() takes down what had come up
   */
  start(opts: StartOptions = {}): Promise<void> {
    return this.lifecycle.start(() => this.bringUp(opts.upTo ?? 'schedule', opts.databaseWaitMs ?? 0));
  }

  private async bringUp(upTo: StartStage, databaseWaitMs: number): Promise<void> {
    const { logger } = this.opts;
    const life = this.lifecycle;
    const url = this.config.database.url;
    // the metrics' start values come from the ledger: read with the migrations, under the same wait
    const prepareDatabase = async () => {
      await migrate(this.pool, this.config.database.schema, logger);
      // the Search Console schema only once a site is configured: a collector without sites creates none
      if (this.config.searchConsole.sites.length) await migrateSearchConsole(this.pool, this.config.searchConsole.schema, logger);
      if (upTo !== 'database') await this.seedMetrics();
    };
    await life
      .step(
        whenDatabaseAnswers(prepareDatabase, {
          waitMs: databaseWaitMs,
          signal: life.stopSignal,
          onRetry: (err, attempt) => logger.warn({ event: 'database_unavailable', err: describeDbError(err, url), attempt }, 'database not ready; retrying'),
        }),
      )
      .catch(failedIn('database'));
    if (upTo === 'database') return;
    life.checkpoint();
    await this.http?.start().catch(failedIn('http'));
    life.checkpoint();
    // tokens before the schedule, so the first fetches find one; a first exchange that hangs does not hold up a stop
    await life.step(this.tokens.start());
    if (upTo !== 'schedule') return;
    life.checkpoint();
    this.scheduler.start();
  }

  /**
   * Every configured series from the start, last successes from the ledger, and the quota Google
   * last reported to any daemon, for the windows that have not reset since (metricsSeed.ts).
   */
  private async seedMetrics(): Promise<void> {
    await seedMetrics(this.metrics, this.config, this.tokens.sources(), this.pool);
    await seedQuotaGauge(this.metrics, this.config, this.pool);
    await this.quota.prune();
  }

  /**
   * SIGHUP: properties, reports and schedules change without a restart. Settings that the running
   * parts were built with (config/reload.ts) need a restart; a reload that changes them is
   * refused as a whole, so the daemon keeps a consistent config.
   */
  async reload(next: Config): Promise<void> {
    const prev = this.config;
    const changed = restartOnlyChanges(prev, next);
    if (changed.length) throw new Error(`reload refused: ${changed.join(', ')} changed; restart the daemon for that`);
    // the level applies to what logs from now on (pino children made earlier keep the level they were made with)
    if (next.log.level !== prev.log.level) this.opts.logger.level = next.log.level;
    if (next.discovery.enabled) this.tokens.forPrincipal(next.google);
    await this.serially(async () => {
      const prevBase = this.base;
      this.base = next;
      try {
        // the last discovered properties under the new filters now; a new listing follows
        await this.apply(withDiscovered(next, this.syncDiscovery(next)?.refilter() ?? []));
      } catch (err) {
        // refused: the running configuration stays whole, filters included
        this.base = prevBase;
        this.syncDiscovery(prevBase)?.refilter();
        throw err;
      }
    });
    void this.discovery?.run('reload');
  }

  /** Gives the running parts a configuration: token sources, metrics, runner, scheduler. */
  private async apply(next: Config): Promise<void> {
    for (const source of configuredSources(next)) this.tokens.forPrincipal(source);
    if (next.searchConsole.sites.length) await migrateSearchConsole(this.pool, next.searchConsole.schema, this.opts.logger);
    for (const source of this.tokens.sources()) if (!source.status().valid && !source.status().failingSince) await source.start();
    this.config = next;
    await this.seedMetrics();
    await this.metrics.forgetRemoved(new Set(configuredSources(next).flatMap((p) => p.reports.map((r) => `${p.id}\0${r}`))));
    this.runner.setConfig(next);
    await this.scheduler.reload(next);
  }

  private serially(fn: () => Promise<void>): Promise<void> {
    const run = this.applying.then(fn);
    this.applying = run.catch(() => undefined);
    return run;
  }

  /**
   * Lists the properties now and applies them (`run --once` awaits it before planning; the daemon
   * runs it beside the start-up run); with `loop`, lists again once a day and after a failure
   * with backoff. Resolves to the listing's error, or null when it succeeded or discovery is off:
   * the configured properties run regardless. Never throws.
   */
  async discover(loop: boolean): Promise<string | null> {
    this.discoveryLoop ||= loop;
    const d = this.discovery;
    if (!d) return null;
    const ok = await d.run('start');
    if (loop) d.startLoop();
    return ok ? null : (d.status().lastError ?? 'failed');
  }

  /** The discovery of a (re)loaded configuration: made when it was switched on, stopped when off. */
  private syncDiscovery(config: Config): Discovery | null {
    if (config.discovery.enabled && !this.discovery) {
      this.discovery = this.makeDiscovery();
      if (this.discoveryLoop) this.discovery.startLoop();
    } else if (!config.discovery.enabled && this.discovery) {
      this.discovery.stop();
      this.discovery = null;
      this.metrics.propertiesDiscovered.set(0);
    }
    return this.discovery;
  }

  private makeDiscovery(): Discovery {
    const config = this.base;
    const client = new AdminClient({
      rootUrl: config.google.adminApiRootUrl,
      timeoutMs: config.fetch.timeoutSeconds * 1000,
      maxAttempts: config.fetch.maxAttempts,
      ...(this.opts.backoffBaseMs !== undefined ? { backoffBaseMs: this.opts.backoffBaseMs, backoffCapMs: this.opts.backoffBaseMs * 32 } : {}),
    });
    return new Discovery({
      client,
      // the default principal of the configuration in effect
      tokens: () => this.tokens.forPrincipal(this.base.google),
      filters: () => this.base.discovery,
      logger: this.opts.logger,
      metrics: this.metrics,
      now: this.now,
      ...(this.opts.discoveryRetryMs !== undefined ? { retryBaseMs: this.opts.discoveryRetryMs, retryCapMs: this.opts.discoveryRetryMs * 8 } : {}),
      onChange: (kept) =>
        this.serially(async () => {
          if (this.lifecycle.stopSignal.aborted) return;
          const next = withDiscovered(this.base, kept);
          if (!sameProperties(next.properties, this.config.properties)) await this.apply(next);
        }),
    });
  }

  /** For the status page: discovery's state, and which properties of the configuration in effect only it put there. */
  private discoveryView(): DiscoveryView | null {
    if (!this.discovery) return null;
    const configured = new Set(this.base.properties.map((p) => p.id));
    const added = new Set(this.config.properties.filter((p) => !configured.has(p.id)).map((p) => p.id));
    return { ...this.discovery.status(), added };
  }

  /**
   * A SIGHUP: reads the configuration again with `load` and applies it (reload()). The outcome
   * goes to the log, to the status document (a refused reload stays there until a later one is
   * applied, so it is seen, not only logged) and to ga_collector_config_reloads_total. Never throws.
   */
  async reloadFrom(load: () => Config): Promise<void> {
    const { logger } = this.opts;
    try {
      const next = load();
      await this.reload(next);
      const counts = { properties: next.properties.length, reports: Object.keys(next.reports), sites: next.searchConsole.sites.length };
      logger.info({ event: 'reloaded', ...counts, siteReports: Object.keys(next.searchConsole.reports) }, 'configuration reloaded');
      this.lastReload = { at: Date.now(), ok: true, error: null };
      this.metrics.configReloads.inc({ outcome: 'success' });
    } catch (err) {
      logger.error({ event: 'reload_failed', err: describe(err) }, 'configuration reload failed; keeping the running configuration');
      this.lastReload = { at: Date.now(), ok: false, error: describe(err) };
      this.metrics.configReloads.inc({ outcome: 'failure' });
    }
  }

  /**
   * Takes the parts down in reverse: the schedule (running jobs get `graceMs`, then are aborted),
   * tokens, HTTP, the pool. Called during start(), it ends the start-up first. Idempotent: every
   * call returns the first one's promise. The grace period is, by default, the configuration in
   * effect now (a reload may have changed it).
   */
  stop(graceMs?: number): Promise<void> {
    return this.lifecycle.stop(() => this.takeDown(graceMs ?? this.config.shutdown.graceSeconds * 1000));
  }

  private async takeDown(graceMs: number): Promise<void> {
    this.discovery?.stop();
    await this.scheduler.stop(graceMs);
    this.tokens.stop();
    // the last propertyQuota and deferrals still being written
    await withDeadline('writing the quota state', 3_000, undefined, () => this.quota.settled()).catch(() => undefined);
    await this.http?.stop();
    // a job the watchdog let go may still hold a connection; the pool's end would wait for it
    await withDeadline('closing the database pool', 3_000, undefined, () => this.pool.end()).catch(() => undefined);
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** `/readyz` (readiness.ts): the database answers and every credential holds a token. */
  readiness(): Promise<{ ready: boolean; reasons: string[] }> {
    return readiness(this.pool, this.config.database.url, this.tokens.sources());
  }

  /** The status document (src/status.ts): everything, or a page of properties, attention first. */
  statusDocument(query?: StatusQuery): Promise<StatusDocument> {
    return this.view.document(query);
  }
}

/** Rethrows a part's failure as a StartError naming the part; a stop during start-up stays AbortedError. */
function failedIn(part: StartError['part']): (err: unknown) => never {
  return (err) => {
    throw err instanceof AbortedError || err instanceof StartError ? err : new StartError(part, err);
  };
}
