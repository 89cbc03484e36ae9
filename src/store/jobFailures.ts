/**
 * `job_failures`: the property and report pairs whose last run failed (migration 003), so that
 * `ga-collector status`, which reads the database alone, can say a run is failing. The runner
 * records a failure and clears it at the next success; a failing pair has one row, with the time
 * of its first and its latest failure in a row and the latest error.
 */
import { describe } from '../errors.js';
import type { Logger } from '../log.js';
import { withDeadline } from '../net/deadline.js';
import { ident, qualified } from './identifiers.js';
import type { Queryable } from './pool.js';
import { tablesOf, type TablesArg } from './sourceTables.js';

/** A failed run of `propertyId`/`report`: the row is created, or its count, time and error updated. */
async function recordJobFailure(db: Queryable, at: TablesArg, propertyId: string, report: string, error: string, permanent: boolean): Promise<void> {
  const { schema, key } = tablesOf(at);
  const table = qualified(schema, 'job_failures');
  await db.query(
    `INSERT INTO ${table} (${ident(key)}, report, error, permanent) VALUES ($1, $2, $3, $4)
     ON CONFLICT (${ident(key)}, report) DO UPDATE
       SET failed_at = now(), failures = ${table}.failures + 1, error = EXCLUDED.error, permanent = EXCLUDED.permanent`,
    [propertyId, report, error.slice(0, 2000), permanent],
  );
}

/** A successful run: whatever failed before is over. */
async function clearJobFailure(db: Queryable, at: TablesArg, propertyId: string, report: string): Promise<void> {
  const { schema, key } = tablesOf(at);
  await db.query(`DELETE FROM ${qualified(schema, 'job_failures')} WHERE ${ident(key)} = $1 AND report = $2`, [propertyId, report]);
}

export interface JobFailure {
  propertyId: string;
  report: string;
  firstFailedAt: Date;
  failedAt: Date;
  failures: number;
  error: string;
  permanent: boolean;
}

/** Every recorded failure (`propertyId` a site's URL in Search Console's tables); empty when the table does not exist yet (a schema not migrated to 003). */
export async function jobFailures(db: Queryable, at: TablesArg): Promise<JobFailure[]> {
  const { schema, key } = tablesOf(at);
  const table = qualified(schema, 'job_failures');
  const { rows: exists } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  if (!exists[0]?.t) return [];
  const { rows } = await db.query<{
    property_id: string;
    report: string;
    first_failed_at: Date;
    failed_at: Date;
    failures: number;
    error: string;
    permanent: boolean;
  }>(`SELECT ${ident(key)} AS property_id, report, first_failed_at, failed_at, failures, error, permanent FROM ${table} ORDER BY 1, report`);
  return rows.map((r) => ({
    propertyId: r.property_id,
    report: r.report,
    firstFailedAt: r.first_failed_at,
    failedAt: r.failed_at,
    failures: r.failures,
    error: r.error,
    permanent: r.permanent,
  }));
}

/**
 * The runner's note of a run's outcome: `failure` recorded, or (null) a success that clears an
 * earlier failure. Never throws and never holds a job for long: a database that does not answer
 * within 5 s leaves the record as it was (the log and metrics have the outcome regardless).
 */
export async function noteJobOutcome(
  db: Queryable,
  schema: TablesArg,
  propertyId: string,
  report: string,
  failure: { error: string; permanent: boolean } | null,
  logger: Logger,
): Promise<void> {
  try {
    await withDeadline('recording the run in job_failures', 5_000, undefined, () =>
      failure ? recordJobFailure(db, schema, propertyId, report, failure.error, failure.permanent) : clearJobFailure(db, schema, propertyId, report),
    );
  } catch (err) {
    logger.warn({ event: 'job_outcome_not_recorded', err: describe(err) }, 'could not record the run in job_failures');
  }
}
