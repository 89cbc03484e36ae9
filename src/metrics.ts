/**
 * Every Prometheus family of SPEC.md, on a registry of its own (so tests can run several daemons
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
  readonly quotaRemaining: Gauge<'property' | 'window'>;
  readonly tokenExpiry: Gauge<'account'>;
  readonly tokenRefreshes: Counter<'account' | 'outcome'>;
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
}
