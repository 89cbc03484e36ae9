/**
 * `ga-collector status`'s reads beyond the status page's (statusQueries.ts): which dates are
 * missing, still revising, or carry a data-quality flag, as runs of consecutive dates. Each is one
 * query for every property and report asked about.
 */
import { ident, qualified } from './identifiers.js';
import type { Queryable } from './pool.js';
import { tablesOf, type TablesArg } from './sourceTables.js';

/** A run of consecutive dates, both ends included (`YYYY-MM-DD`). */
export interface DateRun {
  propertyId: string;
  report: string;
  from: string;
  to: string;
  days: number;
}

/** Where gaps are looked for: the report's first wanted date through the property's yesterday, in its zone. */
export interface GapWindow {
  propertyId: string;
  report: string;
  from: string;
  through: string;
  timeZone: string;
}

/**
 * The dates of each window (of properties, or of sites when `at` is Search Console's tables) that are not stored as finished: never stored, or stored before the
 * date was over in the property's zone (a partial day, which the planner fetches again), as the
 * status page counts them (statusQueries.ts ledgerCoverage).
 */
export async function gapRuns(db: Queryable, at: TablesArg, windows: GapWindow[]): Promise<DateRun[]> {
  const { schema, key } = tablesOf(at);
  const open = windows.filter((w) => w.from <= w.through);
  if (open.length === 0) return [];
  const { rows } = await db.query<{ p: string; r: string; first: string; last: string; days: number }>(
    `WITH missing AS (
       SELECT u.p, u.r, g.d::date AS d
         FROM unnest($1::text[], $2::text[], $3::date[], $4::date[], $5::text[]) AS u(p, r, s, e, tz)
         CROSS JOIN LATERAL generate_series(u.s, u.e, interval '1 day') AS g(d)
        WHERE NOT EXISTS (
          SELECT 1 FROM ${qualified(schema, 'fetch_days')} f
           WHERE f.${ident(key)} = u.p AND f.report = u.r AND f.date = g.d::date
             AND f.date < (f.fetched_at AT TIME ZONE u.tz)::date)
     )
     SELECT p, r, to_char(min(d), 'YYYY-MM-DD') AS first, to_char(max(d), 'YYYY-MM-DD') AS last, count(*)::int AS days
       FROM (SELECT p, r, d, d - (row_number() OVER (PARTITION BY p, r ORDER BY d))::int AS run FROM missing) m
      GROUP BY p, r, run ORDER BY p, r, first`,
    [open.map((w) => w.propertyId), open.map((w) => w.report), open.map((w) => w.from), open.map((w) => w.through), open.map((w) => w.timeZone)],
  );
  return rows.map((r) => ({ propertyId: r.p, report: r.r, from: r.first, to: r.last, days: r.days }));
}

/** What a stored date may be marked with: still inside the refresh window, or one of GA's data-quality flags. */
export type DateMark = 'revising' | 'thresholding' | 'sampling' | 'otherRow';

export interface MarkedRun extends DateRun {
  mark: DateMark;
}

/**
 * For the given property (or site: `at` a source's tables) and report pairs: the runs of stored dates still revising (`settled` is
 * false) and of dates GA flagged (`subject_to_thresholding`, `sampled`, `data_loss_from_other_row`).
 */
export async function markedRuns(db: Queryable, at: TablesArg, pairs: Array<{ propertyId: string; report: string }>): Promise<MarkedRun[]> {
  if (pairs.length === 0) return [];
  const { schema, key } = tablesOf(at);
  const k = `f.${ident(key)}`;
  const { rows } = await db.query<{ p: string; r: string; mark: DateMark; first: string; last: string; days: number }>(
    `SELECT p, r, mark, to_char(min(date), 'YYYY-MM-DD') AS first, to_char(max(date), 'YYYY-MM-DD') AS last, count(*)::int AS days
       FROM (
         SELECT ${k} AS p, f.report AS r, k.mark, f.date,
                f.date - (row_number() OVER (PARTITION BY ${k}, f.report, k.mark ORDER BY f.date))::int AS run
           FROM ${qualified(schema, 'fetch_days')} f
           JOIN unnest($1::text[], $2::text[]) AS u(p, r) ON u.p = ${k} AND u.r = f.report
           CROSS JOIN LATERAL (VALUES ('revising', NOT f.settled), ('thresholding', f.subject_to_thresholding),
                                      ('sampling', f.sampled), ('otherRow', f.data_loss_from_other_row)) AS k(mark, marked)
          WHERE k.marked
       ) x
      GROUP BY p, r, mark, run ORDER BY p, r, mark, first`,
    [pairs.map((p) => p.propertyId), pairs.map((p) => p.report)],
  );
  return rows.map((r) => ({ propertyId: r.p, report: r.r, mark: r.mark, from: r.first, to: r.last, days: r.days }));
}
