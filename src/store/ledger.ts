/** The fetch ledger (`fetch_days`) and what is known of each property (`properties`). */
import { qualified } from './identifiers.js';
import type { Pool, PoolClient } from './pool.js';

type Queryable = Pool | PoolClient;

export interface LedgerDay {
  date: string;
  fetchedAt: Date;
  settled: boolean;
}

export async function ledgerDays(db: Queryable, schema: string, propertyId: string, report: string, from: string): Promise<LedgerDay[]> {
  const { rows } = await db.query<{ date: string; fetched_at: Date; settled: boolean }>(
    `SELECT to_char(date, 'YYYY-MM-DD') AS date, fetched_at, settled FROM ${qualified(schema, 'fetch_days')}
      WHERE property_id = $1 AND report = $2 AND date >= $3 ORDER BY date`,
    [propertyId, report, from],
  );
  return rows.map((r) => ({ date: r.date, fetchedAt: r.fetched_at, settled: r.settled }));
}

export async function markSettled(db: Queryable, schema: string, propertyId: string, report: string, dates: string[]): Promise<void> {
  if (dates.length === 0) return;
  await db.query(`UPDATE ${qualified(schema, 'fetch_days')} SET settled = true WHERE property_id = $1 AND report = $2 AND date = ANY($3::date[])`, [
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

/** Per property and report: how much is stored. For the status page. */
export async function ledgerSummary(db: Queryable, schema: string): Promise<ReportSummary[]> {
  const { rows } = await db.query(
    `SELECT property_id, report, count(*)::int AS days, to_char(min(date), 'YYYY-MM-DD') AS first_date,
            to_char(max(date), 'YYYY-MM-DD') AS last_date, max(fetched_at) AS last_fetched_at, sum(row_count)::text AS rows
       FROM ${qualified(schema, 'fetch_days')} GROUP BY property_id, report ORDER BY property_id, report`,
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
