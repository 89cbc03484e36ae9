/**
 * The status reads of Search Console sites (statusQueries.ts has GA4's): what `gsc.fetch_days`
 * holds per site and report, and the clicks chart. Each is one query whatever the number of sites.
 * Sites need no time-zone join: every one is on Search Console's Pacific calendar, so a report's
 * gap window is the same for all its sites.
 */
import { qualified } from './identifiers.js';
import type { Queryable } from './pool.js';
import { coverageOf, dailySeries, type Coverage, type CoverageRow } from './statusQueries.js';

/** A report's gap window, for all its sites: its start date through the newest date due for its dataState (`YYYY-MM-DD`, inclusive). */
export interface SiteWindow {
  report: string;
  from: string;
  through: string;
}

/**
 * Per site and report with anything stored (in `schema`, searchConsole.schema): stored dates, those
 * inside the report's window (null for a report without one), first and last date, newest fetch.
 * Every ledger row counts as stored: no row is written for a date Google does not serve for the
 * report's dataState yet. Empty when the schema has no ledger yet.
 */
export async function siteCoverage(db: Queryable, schema: string, windows: SiteWindow[]): Promise<Coverage[]> {
  // the schema is migrated once a site is configured (by `run` or `migrate`): before, nothing is stored
  const { rows: ledger } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [qualified(schema, 'fetch_days')]);
  if (!ledger[0]?.t) return [];
  const { rows } = await db.query<CoverageRow>(
    `SELECT d.site_url AS key, d.report, count(*)::int AS days,
            CASE WHEN bool_or(w.report IS NOT NULL) THEN count(*) FILTER (WHERE d.date BETWEEN w.from_date AND w.through)::int END AS in_window,
            to_char(min(d.date), 'YYYY-MM-DD') AS first_date, to_char(max(d.date), 'YYYY-MM-DD') AS last_date,
            (extract(epoch FROM max(d.fetched_at)) * 1000)::float8 AS last_fetched_ms
       FROM ${qualified(schema, 'fetch_days')} d
       LEFT JOIN unnest($1::text[], $2::date[], $3::date[]) AS w(report, from_date, through) ON w.report = d.report
      GROUP BY d.site_url, d.report`,
    [windows.map((w) => w.report), windows.map((w) => w.from), windows.map((w) => w.through)],
  );
  return rows.map(coverageOf);
}

/** One clicks chart: a report's relation, for these sites. */
export interface ClicksRequest {
  report: string;
  sites: string[];
}

/**
 * Daily clicks per site from `since` (`YYYY-MM-DD`) on, ordered by site and date: the sum of
 * `clicks` over the report's stored rows of each date (Search Console has no per-date total of its
 * own here). Grouped by date alone, that is the site's total; by query, the top rows Google served
 * without anonymized queries (below the total); by page, counted per page. One query,
 * a UNION ALL of a branch per report; a relation not created yet has no points.
 */
export async function siteClicksSeries(
  db: Queryable,
  schema: string,
  requests: ClicksRequest[],
  since: string,
): Promise<Array<{ site: string; report: string; date: string; value: number }>> {
  const branches = requests.map((r) => ({ report: r.report, relation: r.report, ids: r.sites, column: 'clicks', sum: true }));
  return (await dailySeries(db, schema, 'site_url', branches, since)).map(({ id, ...point }) => ({ site: id, ...point }));
}
