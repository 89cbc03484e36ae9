/**
 * Where a source's data lives. GA4 properties and Search Console sites are stored the same way
 * (a relation per report, a `fetch_days` ledger, definitions, job failures, each date replaced
 * whole), each in a schema of its own; what differs is said here once: the schema, the column
 * that names the property or site, the column type of each metric, and whether per-date totals
 * relations exist (GA4's `<report>_totals`; Search Console has no totals of its own).
 */
import path from 'node:path';
import { metricColumnType } from '../ga4/metricTypes.js';
import type { Logger } from '../log.js';
import { MIGRATIONS_DIR, migrate } from './migrations.js';
import type { Pool } from './pool.js';

/** The column of every table that names the source: a GA4 property id, or a Search Console site URL. */
type KeyColumn = 'property_id' | 'site_url';

export interface SourceTables {
  schema: string;
  key: KeyColumn;
  /** whether reports with dimensions get a `<report>_totals` table (and date-only ones a view) */
  totals: boolean;
  /** whether `report_definition_versions` records a definition's variant (ReportDefinition.variant) */
  variants: boolean;
  metricType: (metric: string) => 'bigint' | 'double precision';
}

/** A schema name alone stands for GA4's tables in it (the callers that only ever store GA4). */
export type TablesArg = string | SourceTables;

/** GA4's tables in `schema` (database.schema): `property_id`, metric types from the Data API's. */
export function ga4Tables(schema: string): SourceTables {
  return { schema, key: 'property_id', totals: true, variants: false, metricType: metricColumnType };
}

export function tablesOf(at: TablesArg): SourceTables {
  return typeof at === 'string' ? ga4Tables(at) : at;
}

/** The migrations of the Search Console schema: a set of their own, recorded in that schema. */
export const SEARCH_CONSOLE_MIGRATIONS_DIR = path.join(MIGRATIONS_DIR, 'search-console');

/** Applies the Search Console schema's pending migrations (its own set, recorded in that schema); returns the versions applied. */
export function migrateSearchConsole(pool: Pool, schema: string, logger: Logger): Promise<number[]> {
  return migrate(pool, schema, logger, SEARCH_CONSOLE_MIGRATIONS_DIR);
}

/** searchanalytics.query's metrics, in the order of their columns. */
export const SEARCH_CONSOLE_METRICS = ['clicks', 'impressions', 'ctr', 'position'] as const;

/**
 * Search Console's tables in `schema` (searchConsole.schema): `site_url`; clicks and impressions
 * are counts (bigint), ctr and position averages (double precision).
 */
export function searchConsoleTables(schema: string): SourceTables {
  return { schema, key: 'site_url', totals: false, variants: true, metricType: (m) => (m === 'clicks' || m === 'impressions' ? 'bigint' : 'double precision') };
}
