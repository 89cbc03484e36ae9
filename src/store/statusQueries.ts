/**
 * The status page's reads. Each is one query whatever the number of properties, so the page costs
 * a constant number of round trips: 2,000 properties are not 2,000 queries one after another.
 */
import { ident, qualified } from './identifiers.js';
import type { Pool, PoolClient } from './pool.js';

type Queryable = Pool | PoolClient;

/** Property id -> IANA time zone, as the Data API's response metadata gave it (`properties`). */
export async function propertyTimeZones(db: Queryable, schema: string): Promise<Map<string, string>> {
  const { rows } = await db.query<{ property_id: string; time_zone: string }>(`SELECT property_id, time_zone FROM ${qualified(schema, 'properties')}`);
  return new Map(rows.map((r) => [r.property_id, r.time_zone]));
}

/**
 * A configured property and report, and the dates in which its gaps are counted: from the
 * report's start date through the property's yesterday (`YYYY-MM-DD`, inclusive), or null when
 * the property's calendar is not known yet.
 */
export interface CoverageWindow {
  propertyId: string;
  report: string;
  from: string | null;
  through: string | null;
}

export interface Coverage {
  propertyId: string;
  report: string;
  /** stored dates, all of them */
  days: number;
  /** stored dates inside the window (a date before the start date is not a reason to hide a gap) */
  inWindow: number;
  firstDate: string;
  lastDate: string;
  lastFetchedAt: Date;
  /** sum of `row_count`, as text: it can pass 2^53 */
  rows: string;
}

/**
 * What the ledger holds of each given property and report (those with nothing stored are left
 * out). The windows travel as arrays and are joined to `fetch_days`, so 60,000 pairs are one
 * query and one scan of the ledger.
 */
export async function ledgerCoverage(db: Queryable, schema: string, windows: CoverageWindow[]): Promise<Coverage[]> {
  if (windows.length === 0) return [];
  const { rows } = await db.query<{
    property_id: string;
    report: string;
    days: number;
    in_window: number;
    first_date: string;
    last_date: string;
    last_fetched_at: Date;
    rows: string | null;
  }>(
    `SELECT k.property_id, k.report, count(*)::int AS days,
            count(*) FILTER (WHERE f.date BETWEEN k.from_date AND k.through)::int AS in_window,
            to_char(min(f.date), 'YYYY-MM-DD') AS first_date, to_char(max(f.date), 'YYYY-MM-DD') AS last_date,
            max(f.fetched_at) AS last_fetched_at, sum(f.row_count)::text AS rows
       FROM unnest($1::text[], $2::text[], $3::date[], $4::date[]) AS k(property_id, report, from_date, through)
       JOIN ${qualified(schema, 'fetch_days')} f ON f.property_id = k.property_id AND f.report = k.report
      GROUP BY k.property_id, k.report, k.from_date, k.through`,
    [windows.map((w) => w.propertyId), windows.map((w) => w.report), windows.map((w) => w.from), windows.map((w) => w.through)],
  );
  return rows.map((r) => ({
    propertyId: r.property_id,
    report: r.report,
    days: r.days,
    inWindow: r.in_window,
    firstDate: r.first_date,
    lastDate: r.last_date,
    lastFetchedAt: r.last_fetched_at,
    rows: r.rows ?? '0',
  }));
}

/** One chart: a metric of a report's per-date totals, for these properties. */
export interface SeriesRequest {
  report: string;
  /** the `<report>_totals` relation (a table of GA's totals, or the report itself when it is by date alone) */
  relation: string;
  /** the metric's column */
  column: string;
  properties: string[];
}

export interface SeriesPoint {
  property: string;
  report: string;
  date: string;
  value: number;
}

/**
 * Per-date values of each request's metric from `since` (`YYYY-MM-DD`) on, ordered by property
 * and date: one query, a UNION ALL of one branch per report. GA's totals are the day's figure
 * for any metric; adding up dimension rows would overstate users and make nonsense of rates.
 * Dates whose total is NULL (GA had no data) are left out.
 */
export async function totalsSeries(db: Queryable, schema: string, requests: SeriesRequest[], since: string): Promise<SeriesPoint[]> {
  const wanted = requests.filter((r) => r.properties.length > 0);
  if (wanted.length === 0) return [];
  const params: unknown[] = [since];
  const branches = wanted.map((r) => {
    params.push(r.report, r.properties);
    const report = `$${params.length - 1}`;
    const props = `$${params.length}`;
    return `SELECT ${report}::text AS report, property_id, to_char(date, 'YYYY-MM-DD') AS date, ${ident(r.column)}::float8 AS value
              FROM ${qualified(schema, r.relation)}
             WHERE property_id = ANY(${props}::text[]) AND date >= $1::date AND ${ident(r.column)} IS NOT NULL`;
  });
  const { rows } = await db.query<{ report: string; property_id: string; date: string; value: number }>(
    `${branches.join('\n UNION ALL \n')}\n ORDER BY property_id, report, date`,
    params,
  );
  return rows.map((r) => ({ property: r.property_id, report: r.report, date: r.date, value: Number(r.value) }));
}
