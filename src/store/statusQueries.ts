/**
 * The status page's reads. Each is one query whatever the number of properties, so the page costs
 * a constant number of round trips: 2,000 properties are not 2,000 queries one after another.
 * Ledger rows of properties or reports no longer configured come back too; the caller skips them.
 */
import { ident, qualified } from './identifiers.js';
import type { Queryable } from './pool.js';

/** Property id -> IANA time zone, as the Data API's response metadata gave it (`properties`). */
export async function propertyTimeZones(db: Queryable, schema: string): Promise<Map<string, string>> {
  const { rows } = await db.query<{ property_id: string; time_zone: string }>(`SELECT property_id, time_zone FROM ${qualified(schema, 'properties')}`);
  return new Map(rows.map((r) => [r.property_id, r.time_zone]));
}

/**
 * The dates in which a report's gaps are counted, for the properties in one time zone: from the
 * report's start date through that zone's yesterday (`YYYY-MM-DD`, inclusive). Properties share
 * their zone's window, so there are (zones x reports) windows, not (properties x reports).
 */
export interface CoverageWindow {
  timeZone: string;
  report: string;
  from: string;
  through: string;
}

export interface Coverage {
  propertyId: string;
  report: string;
  /** stored dates, all of them */
  days: number;
  /** stored dates inside the window of the property's zone; null when its zone is not in `properties` */
  inWindow: number | null;
  firstDate: string;
  lastDate: string;
  /** newest `fetched_at`, Unix milliseconds */
  lastFetchedMs: number;
}

/**
 * What the ledger holds of every property and report that has anything stored: one scan of
 * `fetch_days`, grouped, with each row's window found by hash joins on the property's zone (from
 * `properties`) and the report. 60,000 pairs of 30 dates each are one query (about 0.6 s here).
 */
export async function ledgerCoverage(db: Queryable, schema: string, windows: CoverageWindow[]): Promise<Coverage[]> {
  const { rows } = await db.query<CoverageRow>(
    `SELECT f.property_id AS key, f.report, count(*) FILTER (WHERE f.ok)::int AS days,
            CASE WHEN bool_or(f.w_report IS NOT NULL) THEN count(*) FILTER (WHERE f.ok AND f.date BETWEEN f.from_date AND f.through)::int END AS in_window,
            to_char(min(f.date) FILTER (WHERE f.ok), 'YYYY-MM-DD') AS first_date,
            to_char(max(f.date) FILTER (WHERE f.ok), 'YYYY-MM-DD') AS last_date,
            (extract(epoch FROM max(f.fetched_at)) * 1000)::float8 AS last_fetched_ms
       FROM (
         -- a date counts as stored once finished: not after the zone's yesterday, and fetched after
         -- it was over in the property's zone (an older version could store a partial day)
         SELECT d.property_id, d.report, d.date, d.fetched_at, w.report AS w_report, w.from_date, w.through,
                (w.through IS NULL OR d.date <= w.through)
                  AND (p.time_zone IS NULL OR d.date < (d.fetched_at AT TIME ZONE p.time_zone)::date) AS ok
           FROM ${qualified(schema, 'fetch_days')} d
           LEFT JOIN ${qualified(schema, 'properties')} p ON p.property_id = d.property_id
           LEFT JOIN unnest($1::text[], $2::text[], $3::date[], $4::date[]) AS w(time_zone, report, from_date, through)
                  ON w.report = d.report AND w.time_zone = p.time_zone
       ) f
      GROUP BY f.property_id, f.report`,
    [windows.map((w) => w.timeZone), windows.map((w) => w.report), windows.map((w) => w.from), windows.map((w) => w.through)],
  );
  return rows.map(coverageOf);
}

/** A row of a coverage query (this one, or siteStatusQueries.ts's): the key column selected `AS key`. */
export interface CoverageRow {
  key: string;
  report: string;
  days: number;
  in_window: number | null;
  first_date: string;
  last_date: string;
  last_fetched_ms: number;
}

/** A coverage row as Coverage. */
export function coverageOf(r: CoverageRow): Coverage {
  return {
    propertyId: r.key,
    report: r.report,
    days: r.days,
    inWindow: r.in_window,
    firstDate: r.first_date,
    lastDate: r.last_date,
    lastFetchedMs: r.last_fetched_ms,
  };
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

/** Which of `names` are relations of `schema` now (a report's relations come with its first stored date). */
async function existingRelations(db: Queryable, schema: string, names: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ relation: string }>(
    `SELECT r AS relation FROM unnest($1::text[]) AS r WHERE to_regclass(quote_ident($2) || '.' || quote_ident(r)) IS NOT NULL`,
    [names, schema],
  );
  return new Set(rows.map((r) => r.relation));
}

/** One report's branch of a daily series: the relation, the properties (or sites) asked, the value column, and whether it is summed per date. */
export interface DailySeriesBranch {
  report: string;
  relation: string;
  ids: string[];
  column: string;
  /** sum the column over each date's rows (a report's rows), else read it as it is (one row a date: totals) */
  sum: boolean;
}

/**
 * Per-date values of each branch from `since` (`YYYY-MM-DD`) on, ordered by key, report and date:
 * one query, a UNION ALL of a branch per report, keyed by `key` (`property_id` or `site_url`). A
 * relation not created yet (it comes with the report's first stored date) has no points; NULL
 * values (no data) are left out.
 */
export async function dailySeries(
  db: Queryable,
  schema: string,
  key: 'property_id' | 'site_url',
  requests: DailySeriesBranch[],
  since: string,
): Promise<Array<{ id: string; report: string; date: string; value: number }>> {
  const asked = requests.filter((r) => r.ids.length > 0);
  if (asked.length === 0) return [];
  const present = await existingRelations(
    db,
    schema,
    asked.map((r) => r.relation),
  );
  const wanted = asked.filter((r) => present.has(r.relation));
  if (wanted.length === 0) return [];
  const params: unknown[] = [since];
  const branches = wanted.map((r) => {
    params.push(r.report, r.ids);
    const column = ident(r.column);
    return `SELECT $${params.length - 1}::text AS report, ${ident(key)} AS id, to_char(date, 'YYYY-MM-DD') AS date, ${r.sum ? `sum(${column})` : column}::float8 AS value
              FROM ${qualified(schema, r.relation)}
             WHERE ${ident(key)} = ANY($${params.length}::text[]) AND date >= $1::date AND ${column} IS NOT NULL${
               r.sum
                 ? `
             GROUP BY ${ident(key)}, date`
                 : ''
             }`;
  });
  const { rows } = await db.query<{ report: string; id: string; date: string; value: number }>(
    `${branches.join('\n UNION ALL \n')}\n ORDER BY id, report, date`,
    params,
  );
  return rows.map((r) => ({ id: r.id, report: r.report, date: r.date, value: Number(r.value) }));
}

/**
 * Per-date values of each request's metric from `since` (`YYYY-MM-DD`) on, ordered by property
 * and date. GA's totals are the day's figure for any metric; adding up dimension rows would
 * overstate users and make nonsense of rates. Dates whose total is NULL (GA had no data) are left out.
 */
export async function totalsSeries(db: Queryable, schema: string, requests: SeriesRequest[], since: string): Promise<SeriesPoint[]> {
  const branches = requests.map((r) => ({ report: r.report, relation: r.relation, ids: r.properties, column: r.column, sum: false }));
  return (await dailySeries(db, schema, 'property_id', branches, since)).map(({ id, ...point }) => ({ property: id, ...point }));
}
