/**
 * `ga-collector check`'s `warn` rows about values the configuration accepts but that may not do
 * what was meant: the daemon runs with them.
 */
import type { Config } from './config/index.js';
import { warn, type CheckRow } from './checkRow.js';

/**
 * Concurrent Data API requests Google allows per property: 10 for a standard property, 50 for
 * Analytics 360, counted over every client of the property; beyond them it answers 429
 * RESOURCE_EXHAUSTED (https://developers.google.com/analytics/devguides/reporting/data/v1/quotas).
 */
const STANDARD_PROPERTY_CONCURRENCY = 10;

/**
 * The warnings about `fetch.perPropertyConcurrency`: above 10, it holds only for Analytics 360
 * properties; above `concurrency`, the global limit caps it. Empty when neither applies.
 */
export function configWarnings(config: Config): CheckRow[] {
  const rows: CheckRow[] = [];
  const perProperty = config.fetch.perPropertyConcurrency;
  if (perProperty > STANDARD_PROPERTY_CONCURRENCY) {
    rows.push(
      warn(
        'config',
        `fetch.perPropertyConcurrency ${perProperty} holds only for Analytics 360 properties (Google allows them 50 requests in flight); a standard property answers 429 beyond ${STANDARD_PROPERTY_CONCURRENCY} requests in flight, counted over every client of the property`,
        `set fetch.perPropertyConcurrency to ${STANDARD_PROPERTY_CONCURRENCY} or less unless every property fetched is an Analytics 360 one`,
      ),
    );
  }
  if (perProperty > config.concurrency) {
    rows.push(
      warn(
        'config',
        `fetch.perPropertyConcurrency ${perProperty} is above concurrency ${config.concurrency}: the global limit caps it, a property has at most ${config.concurrency} ${config.concurrency === 1 ? 'request' : 'requests'} in flight`,
        `raise concurrency to ${perProperty}, or lower fetch.perPropertyConcurrency to ${config.concurrency}`,
      ),
    );
  }
  return rows;
}
