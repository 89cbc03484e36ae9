/**
 * The metrics' start values. Every configured series exists from the start: a counter that
 * appears only at its first failure makes `increase()` miss that failure. The last-success gauge
 * survives a restart: it is seeded from the ledger's newest fetch.
 */
import type { TokenSource } from './auth/tokenManager.js';
import { configuredSources, type Config } from './config/index.js';
import type { Metrics } from './metrics.js';
import { ledgerSummary } from './store/ledger.js';
import { searchConsoleTables } from './store/sourceTables.js';
import type { Pool } from './store/pool.js';

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
