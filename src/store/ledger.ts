/** The fetch ledger (`fetch_days`) and what is known of each property (`properties`). */
import type { ReportDefinition } from '../config/index.js';
import { ident, qualified } from './identifiers.js';
import type { Queryable } from './pool.js';
import { tablesOf, type TablesArg } from './sourceTables.js';

/** The dimensions and metrics a date was fetched with, and its variant (Search Console's type and aggregation; null: none recorded). */
export interface StoredDefinition {
  dimensions: string[];
  metrics: string[];
  variant?: string | null;
}

export interface LedgerDay {
  date: string;
  /** by the database's clock */
  fetchedAt: Date;
  settled: boolean;
  /** null: stored before definitions were recorded per date (unknown, taken as current) */
  definition: StoredDefinition | null;
}

/** The ledger of one property (or site) and report from `from` on, oldest first. `at`: GA4's schema, or a source's tables. */
export async function ledgerDays(db: Queryable, at: TablesArg, propertyId: string, report: string, from: string): Promise<LedgerDay[]> {
  const { schema, key, variants } = tablesOf(at);
  const { rows } = await db.query<{
    date: string;
    fetched_at: Date;
    settled: boolean;
    dimensions: string[] | null;
    metrics: string[] | null;
    variant: string | null;
  }>(
    `SELECT to_char(f.date, 'YYYY-MM-DD') AS date, f.fetched_at, f.settled, v.dimensions, v.metrics, ${variants ? 'v.variant' : 'NULL::text AS variant'}
       FROM ${qualified(schema, 'fetch_days')} f LEFT JOIN ${qualified(schema, 'report_definition_versions')} v ON v.id = f.definition_id
      WHERE f.${ident(key)} = $1 AND f.report = $2 AND f.date >= $3 ORDER BY f.date`,
    [propertyId, report, from],
  );
  return rows.map((r) => ({
    date: r.date,
    fetchedAt: r.fetched_at,
    settled: r.settled,
    definition: r.dimensions && r.metrics ? { dimensions: r.dimensions, metrics: r.metrics, variant: r.variant } : null,
  }));
}

/**
 * Whether this property has a date of this report stored under a definition that names every
 * dimension and metric of `def` (in any order, perhaps with more): then Google has accepted these
 * names for the property before, and they need no check against its metadata. A reordered or
 * shortened definition is not new.
 */
export async function definitionStored(db: Queryable, at: TablesArg, propertyId: string, def: ReportDefinition): Promise<boolean> {
  const { schema, key, variants } = tablesOf(at);
  const { rows } = await db.query(
    `SELECT 1 FROM ${qualified(schema, 'report_definition_versions')} v
      -- every name of the definition was stored before (in any order, perhaps with more): known valid
      WHERE v.report = $2 AND v.dimensions @> $3::text[] AND v.metrics @> $4::text[] ${variants ? 'AND v.variant = $5' : ''}
        AND EXISTS (SELECT 1 FROM ${qualified(schema, 'fetch_days')} f WHERE f.${ident(key)} = $1 AND f.report = v.report AND f.definition_id = v.id)`,
    [propertyId, def.name, def.dimensions, def.metrics, ...(variants ? [def.variant ?? ''] : [])],
  );
  return rows.length > 0;
}

/** The id a definition's dates are stored with, recorded on first use. */
export async function definitionVersion(db: Queryable, at: TablesArg, def: ReportDefinition): Promise<number> {
  const { schema, variants } = tablesOf(at);
  const table = qualified(schema, 'report_definition_versions');
  const variant = variants ? ', variant' : '';
  const same = `report = $1 AND dimensions = $2::text[] AND metrics = $3::text[]${variants ? ' AND variant = $4' : ''}`;
  // Two writers recording it at once: the loser's statement may see neither its insert nor the
  // winner's row (its snapshot is older), so it asks again.
  for (let attempt = 1; ; attempt++) {
    const { rows } = await db.query<{ id: number }>(
      `WITH added AS (
         INSERT INTO ${table} (report, dimensions, metrics${variant}) VALUES ($1, $2::text[], $3::text[]${variants ? ', $4' : ''})
         ON CONFLICT (report, dimensions, metrics${variant}) DO NOTHING RETURNING id
       )
       SELECT id FROM added UNION ALL SELECT id FROM ${table} WHERE ${same}`,
      [def.name, def.dimensions, def.metrics, ...(variants ? [def.variant ?? ''] : [])],
    );
    if (rows[0]) return rows[0].id;
    if (attempt >= 3) throw new Error(`cannot record the definition of report ${def.name}`);
  }
}

/** The database server's clock, ms since epoch: the second witness of which dates are finished (time.ts lastFinishedDate). */
export async function databaseNow(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
  return rows[0]!.now.getTime();
}

export async function markSettled(db: Queryable, at: TablesArg, propertyId: string, report: string, dates: string[]): Promise<void> {
  if (dates.length === 0) return;
  const { schema, key } = tablesOf(at);
  await db.query(`UPDATE ${qualified(schema, 'fetch_days')} SET settled = true WHERE ${ident(key)} = $1 AND report = $2 AND date = ANY($3::date[])`, [
    propertyId,
    report,
    dates,
  ]);
}

export async function propertyTimeZone(db: Queryable, schema: string, propertyId: string): Promise<string | null> {
  const { rows } = await db.query<{ time_zone: string }>(`SELECT time_zone FROM ${qualified(schema, 'properties')} WHERE property_id = $1`, [propertyId]);
  return rows[0]?.time_zone ?? null;
}

export async function saveProperty(db: Queryable, schema: string, propertyId: string, timeZone: string, currencyCode: string | null): Promise<void> {
  await db.query(
    `INSERT INTO ${qualified(schema, 'properties')} (property_id, time_zone, currency_code, updated_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (property_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, currency_code = EXCLUDED.currency_code, updated_at = now()
     WHERE properties.time_zone IS DISTINCT FROM EXCLUDED.time_zone OR properties.currency_code IS DISTINCT FROM EXCLUDED.currency_code`,
    [propertyId, timeZone, currencyCode],
  );
}

export interface ReportSummary {
  propertyId: string;
  report: string;
  days: number;
  firstDate: string | null;
  lastDate: string | null;
  lastFetchedAt: Date | null;
  rows: string;
}

/** Per property and report: how much is stored (every date, as written). For the metrics' start values. */
export async function ledgerSummary(db: Queryable, at: TablesArg): Promise<ReportSummary[]> {
  const { schema, key } = tablesOf(at);
  const { rows } = await db.query(
    `SELECT ${ident(key)} AS property_id, report, count(*)::int AS days, to_char(min(date), 'YYYY-MM-DD') AS first_date,
            to_char(max(date), 'YYYY-MM-DD') AS last_date, max(fetched_at) AS last_fetched_at, sum(row_count)::text AS rows
       FROM ${qualified(schema, 'fetch_days')} GROUP BY 1, report ORDER BY 1, report`,
  );
  return rows.map((r) => ({
    propertyId: r.property_id,
    report: r.report,
    days: r.days,
    firstDate: r.first_date,
    lastDate: r.last_date,
    lastFetchedAt: r.last_fetched_at,
    rows: r.rows ?? '0',
  }));
}
