/**
 * The metrics' start values. Every configured series exists from the start: a counter that
 * appears only at its first failure makes `increase()` miss that failure. The last-success gauge
 * survives a restart: it is seeded from the ledger's newest fetch, and the quota gauge from the
 * propertyQuota last stored by any daemon on the database.
 */
import type { TokenSource } from './auth/tokenManager.js';
import { configuredSources, type Config } from './config/index.js';
import type { Metrics } from './metrics.js';
import { tokensRemainingSince } from './ga4/quota.js';
import type { PropertyQuota } from './ga4/types.js';
import { ledgerSummary } from './store/ledger.js';
import { searchConsoleTables } from './store/sourceTables.js';
import type { Pool } from './store/pool.js';
import { quotasSeen } from './store/quotaState.js';

/** Seeds the series of `config`'s properties and sites, reports and `sources`; reads each ledger once. */
export async function seedMetrics(metrics: Metrics, config: Config, sources: readonly TokenSource[], pool: Pool): Promise<void> {
  const fetched = configuredSources(config);
  for (const property of fetched) {
    for (const report of property.reports) {
      const labels = { property: property.id, report };
      metrics.fetchRuns.inc({ ...labels, outcome: 'success' }, 0);
      metrics.fetchRuns.inc({ ...labels, outcome: 'failure' }, 0);
      metrics.rowsWritten.inc(labels, 0);
      metrics.valuesSanitized.inc(labels, 0);
    }
  }
  // a principal named only by its first exchange (metadata server) seeds its series then (auth/tokenManager.ts)
  for (const source of sources.filter((t) => t.accountKnown)) {
    metrics.tokenRefreshes.inc({ account: source.account, outcome: 'success' }, 0);
    metrics.tokenRefreshes.inc({ account: source.account, outcome: 'failure' }, 0);
  }
  // the Search Console ledger exists once a site was configured (daemon.ts migrates it then)
  const sitesLedger = config.searchConsole.sites.length ? await ledgerSummary(pool, searchConsoleTables(config.searchConsole.schema)) : [];
  for (const stored of [...(await ledgerSummary(pool, config.database.schema)), ...sitesLedger]) {
    const configured = fetched.some((p) => p.id === stored.propertyId && p.reports.includes(stored.report));
    if (configured && stored.lastFetchedAt)
      metrics.lastSuccess.set({ property: stored.propertyId, report: stored.report }, stored.lastFetchedAt.getTime() / 1000);
  }
}

/**
 * ga_collector_quota_tokens_remaining of the configured properties, from the propertyQuota last
 * stored by any daemon (store/quotaState.ts), for each window that has not reset since it was
 * seen (an hour's tokens come back on the hour, a day's at midnight Pacific time). Start-up only:
 * a reload keeps what this daemon saw since.
 */
export async function seedQuotaGauge(metrics: Metrics, config: Config, pool: Pool, now = Date.now()): Promise<void> {
  const configured = new Set(config.properties.map((p) => p.id));
  for (const stored of await quotasSeen(pool, config.database.schema)) {
    if (!configured.has(stored.property)) continue;
    const { hour, day } = tokensRemainingSince(stored.quota as PropertyQuota, stored.seenAt.getTime(), now);
    if (hour !== undefined) metrics.quotaRemaining.set({ property: stored.property, window: 'hour' }, hour);
    if (day !== undefined) metrics.quotaRemaining.set({ property: stored.property, window: 'day' }, day);
  }
}
