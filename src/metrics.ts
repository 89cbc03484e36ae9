/**
 * Every Prometheus family of the README's metrics reference, on a registry of its own (so tests can run several daemons
 * in one process), plus prom-client's default process and Node.js metrics.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly fetchRuns: Counter<'property' | 'report' | 'outcome'>;
  readonly lastSuccess: Gauge<'property' | 'report'>;
  readonly rowsWritten: Counter<'property' | 'report'>;
  readonly datesPending: Gauge<'property' | 'report'>;
  readonly apiRequests: Counter<'property' | 'code'>;
  readonly apiRetries: Counter;
  readonly quotaRemaining: Gauge<'property' | 'window'>;
  readonly tokenExpiry: Gauge<'account'>;
  readonly tokenRefreshes: Counter<'account' | 'outcome'>;
  readonly configReloads: Counter<'outcome'>;
  readonly propertiesDiscovered: Gauge;
  readonly oldestRunningJob: Gauge;
  readonly jobDeadline: Gauge;
  readonly jobsAborted: Counter<'reason'>;
  /** Read at each scrape into ga_collector_oldest_running_job_seconds; the scheduler's watchdog sets it. */
  oldestRunningJobAge: () => number = () => 0;
  readonly valuesSanitized: Counter<'property' | 'report'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.fetchRuns = new Counter({
      name: 'ga_collector_fetch_runs_total',
      help: 'Fetch runs per property and report, by outcome (success or failure).',
      labelNames: ['property', 'report', 'outcome'],
      registers,
    });
    this.lastSuccess = new Gauge({
      name: 'ga_collector_last_success_timestamp_seconds',
      help: 'Unix time of the last successful fetch run of a property and report.',
      labelNames: ['property', 'report'],
      registers,
    });
    this.rowsWritten = new Counter({
      name: 'ga_collector_rows_written_total',
      help: 'Report rows written to PostgreSQL.',
      labelNames: ['property', 'report'],
      registers,
    });
    this.datesPending = new Gauge({
      name: 'ga_collector_dates_pending',
      help: 'Dates due (gaps and refresh window) but not yet stored.',
      labelNames: ['property', 'report'],
      registers,
    });
    this.apiRequests = new Counter({
      name: 'ga_collector_api_requests_total',
      help: 'Data API requests by HTTP status code, or "error" when no response came.',
      labelNames: ['property', 'code'],
      registers,
    });
    // one series, from 0: run --once and backfill report it in their summary line
    this.apiRetries = new Counter({
      name: 'ga_collector_api_retries_total',
      help: 'Data API requests made again after a retryable failure (429, 5xx, a timeout or reset, a malformed page).',
      registers,
    });
    this.quotaRemaining = new Gauge({
      name: 'ga_collector_quota_tokens_remaining',
      help: "Property quota tokens remaining, from the Data API's propertyQuota.",
      labelNames: ['property', 'window'],
      registers,
    });
    this.tokenExpiry = new Gauge({
      name: 'ga_collector_token_expiry_timestamp_seconds',
      help: "Unix time at which the service account's current access token expires.",
      labelNames: ['account'],
      registers,
    });
    this.tokenRefreshes = new Counter({
      name: 'ga_collector_token_refreshes_total',
      help: 'Access token exchanges by outcome (success or failure).',
      labelNames: ['account', 'outcome'],
      registers,
    });
    this.configReloads = new Counter({
      name: 'ga_collector_config_reloads_total',
      help: 'Configuration reloads (SIGHUP) by outcome: success, or failure when the new file was refused and the running configuration kept.',
      labelNames: ['outcome'],
      registers,
    });
    this.propertiesDiscovered = new Gauge({
      name: 'ga_collector_properties_discovered',
      help: 'GA4 properties the Admin API listed at the last successful discovery that discovery.accounts and discovery.exclude kept.',
      registers,
    });
    // both series from the start, so an alert on increase(...{outcome="failure"}) sees the first one
    this.configReloads.inc({ outcome: 'success' }, 0);
    this.configReloads.inc({ outcome: 'failure' }, 0);
    // the job watchdog (schedule/watchdog.ts) and its alert, GaCollectorStuck.
    this.oldestRunningJob = new Gauge({
      name: 'ga_collector_oldest_running_job_seconds',
      help: 'Seconds the oldest fetch job still running has run (0 when none runs), at scrape time.',
      registers,
      collect: () => this.oldestRunningJob.set(this.oldestRunningJobAge()),
    });
    this.jobDeadline = new Gauge({
      name: 'ga_collector_job_deadline_seconds',
      help: 'fetch.jobDeadlineSeconds: a job still running after this long is aborted by the watchdog.',
      registers,
    });
    this.jobsAborted = new Counter({
      name: 'ga_collector_jobs_aborted_total',
      help: 'Fetch jobs aborted while running, by reason (deadline: the watchdog; shutdown: the grace period ran out; reload: its property or report left the configuration).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['deadline', 'shutdown', 'reload']) this.jobsAborted.inc({ reason }, 0);
    this.valuesSanitized = new Counter({
      name: 'ga_collector_values_sanitized_total',
      help: 'Dimension values stored changed because PostgreSQL cannot hold them as sent: U+0000 removed, lone UTF-16 surrogates replaced by U+FFFD.',
      labelNames: ['property', 'report'],
      registers,
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Drops the series of properties and reports that left the configuration (a reload), so alerts
   * on them (stale data, a backlog) stop instead of firing for something removed on purpose.
   * `kept` holds `property\0report` pairs; a series labelled with a property and no report is
   * kept while any report of that property is.
   */
  async forgetRemoved(kept: ReadonlySet<string>): Promise<void> {
    const properties = new Set([...kept].map((k) => k.split('\0')[0]!));
    const families = [
      this.fetchRuns,
      this.lastSuccess,
      this.rowsWritten,
      this.datesPending,
      this.valuesSanitized,
      this.apiRequests,
      this.quotaRemaining,
    ] as const;
    for (const family of families) {
      const metric = family as unknown as {
        get(): Promise<{ values: Array<{ labels: Record<string, string | number> }> }>;
        remove(labels: Record<string, string | number>): void;
      };
      for (const { labels } of (await metric.get()).values) {
        const property = String(labels['property'] ?? '');
        const report = labels['report'] === undefined ? undefined : String(labels['report']);
        const stays = report === undefined ? properties.has(property) : kept.has(`${property}\0${report}`);
        if (!stays) metric.remove(labels);
      }
    }
  }
}
