/**
 * `quota_state` and `quota_seen` (migration 004): what the daemons sharing a database know of each
 * property's Google quota, so they spend one budget between them. Per property (the API's key as
 * text): its server errors of the last hour, the requests in flight while it had some (claims), a
 * deferral (until when, what kind, why) and the last propertyQuota Google answered. Times are the
 * caller's clock (ms since the epoch in, Date out), as the in-memory budget's are. Each function is
 * one statement on the property's primary key (prune and quotasSeen read the whole tables).
 */
import { qualified } from './identifiers.js';
import type { Queryable } from './pool.js';

/** A server error counts against the budget for an hour (Google's window). */
const ERROR_WINDOW = `interval '1 hour'`;

/** The server errors of the row `q` without those older than an hour before `now`, oldest first. */
function recentErrors(now: string): string {
  return `ARRAY(SELECT e FROM unnest(q.server_errors) AS e WHERE e > ${now} - ${ERROR_WINDOW} ORDER BY e)`;
}

/** The claims of the row `q` that have not expired by `now`. */
function liveClaims(now: string): string {
  return `ARRAY(SELECT c FROM unnest(q.claims) AS c WHERE c > ${now})`;
}

/** What kind of deferral a row holds: no request at all, or (quota_low) no new backlog dates. */
type DeferralKind = 'server_errors' | 'quota_day' | 'quota_hour' | 'quota_low';

export interface Deferral {
  kind: DeferralKind;
  until: Date;
  reason: string;
}

export interface PropertyQuotaState {
  /** its server errors of the last hour, oldest first */
  errors: Date[];
  /** requests claimed and not yet settled or expired */
  claims: number;
  /** a deferral that has not expired, or null */
  deferral: Deferral | null;
}

/** The property's state at `now`, or null when it has no row (no recent error, never deferred). */
export async function readQuotaState(db: Queryable, schema: string, property: string, now: number): Promise<PropertyQuotaState | null> {
  const { rows } = await db.query<{ errors: Date[]; claims: number; until: Date | null; kind: DeferralKind | null; reason: string | null }>(
    `SELECT ${recentErrors('$2::timestamptz')} AS errors,
            cardinality(${liveClaims('$2::timestamptz')}) AS claims,
            CASE WHEN q.deferred_until > $2::timestamptz THEN q.deferred_until END AS until, q.deferral_kind AS kind, q.deferral_reason AS reason
       FROM ${qualified(schema, 'quota_state')} AS q WHERE q.property = $1`,
    [property, new Date(now)],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    errors: row.errors,
    claims: row.claims,
    deferral: row.until && row.kind ? { kind: row.kind, until: row.until, reason: row.reason ?? '' } : null,
  };
}

/**
 * Claims one of the property's `budget` requests: succeeds (true) only while its server errors
 * of the last hour plus its live claims are fewer than `budget`. One UPDATE, which PostgreSQL
 * re-checks against the row as a concurrent claim left it, so daemons claiming together never
 * claim more than the budget. `claim` is the claim's expiry, a timestamptz literal unique enough
 * to be removed alone (settleClaim); false too when the property has no row.
 */
export async function claimRequest(db: Queryable, schema: string, property: string, now: number, claim: string, budget: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE ${qualified(schema, 'quota_state')} AS q
        SET server_errors = ${recentErrors('$2::timestamptz')}, claims = ${liveClaims('$2::timestamptz')} || $3::timestamptz
      WHERE q.property = $1 AND cardinality(${recentErrors('$2::timestamptz')}) + cardinality(${liveClaims('$2::timestamptz')}) < $4`,
    [property, new Date(now), claim, budget],
  );
  return rowCount === 1;
}

/**
 * A request of the property was answered: with `serverError`, its time is added to the
 * property's server errors (the row is created when missing); its claim, if it had one, is
 * removed either way. Errors older than an hour are dropped on the way.
 */
export async function settleClaim(db: Queryable, schema: string, property: string, now: number, claim: string | null, serverError: boolean): Promise<void> {
  const table = qualified(schema, 'quota_state');
  if (serverError) {
    await db.query(
      `INSERT INTO ${table} AS q (property, server_errors) VALUES ($1, ARRAY[$2::timestamptz])
       ON CONFLICT (property) DO UPDATE
         SET server_errors = ${recentErrors('$2::timestamptz')} || $2::timestamptz,
             claims = array_remove(q.claims, $3::timestamptz)`,
      [property, new Date(now), claim],
    );
  } else if (claim !== null) {
    await db.query(`UPDATE ${table} AS q SET claims = array_remove(q.claims, $2::timestamptz) WHERE q.property = $1`, [property, claim]);
  }
}

/**
 * Defers the property until `deferral.until`. A deferral in force that ends later is kept (a day's
 * quota outlasts an hour's); an expired one is replaced.
 */
export async function recordDeferral(db: Queryable, schema: string, property: string, deferral: Deferral, now: number): Promise<void> {
  await db.query(
    `INSERT INTO ${qualified(schema, 'quota_state')} AS q (property, deferred_until, deferral_kind, deferral_reason) VALUES ($1, $2, $3, $4)
     ON CONFLICT (property) DO UPDATE
       SET deferred_until = EXCLUDED.deferred_until, deferral_kind = EXCLUDED.deferral_kind, deferral_reason = EXCLUDED.deferral_reason
       WHERE q.deferred_until IS NULL OR q.deferred_until <= $5 OR q.deferred_until < EXCLUDED.deferred_until`,
    [property, deferral.until, deferral.kind, deferral.reason.slice(0, 2000), new Date(now)],
  );
}

/** The property's last propertyQuota (the Data API's JSON), seen at `seenAt` (ms since the epoch). */
export async function saveQuotaSeen(db: Queryable, schema: string, property: string, quota: unknown, seenAt: number): Promise<void> {
  await db.query(
    `INSERT INTO ${qualified(schema, 'quota_seen')} AS q (property, quota, seen_at) VALUES ($1, $2, $3)
     ON CONFLICT (property) DO UPDATE SET quota = EXCLUDED.quota, seen_at = EXCLUDED.seen_at WHERE q.seen_at <= EXCLUDED.seen_at`,
    [property, JSON.stringify(quota), new Date(seenAt)],
  );
}

/** Every property's last propertyQuota, for the metrics' start values. */
export async function quotasSeen(db: Queryable, schema: string): Promise<Array<{ property: string; quota: unknown; seenAt: Date }>> {
  const { rows } = await db.query<{ property: string; quota: unknown; seen_at: Date }>(
    `SELECT property, quota, seen_at FROM ${qualified(schema, 'quota_seen')} ORDER BY property`,
  );
  return rows.map((r) => ({ property: r.property, quota: r.quota, seenAt: r.seen_at }));
}

/**
 * Keeps the tables small: rows with no server error of the last hour, no live claim and no
 * deferral in force are deleted, expired deferrals cleared, and propertyQuota answers older than
 * two days (every window has reset since) deleted. Returns the rows deleted.
 */
export async function pruneQuotaState(db: Queryable, schema: string, now: number): Promise<number> {
  const state = qualified(schema, 'quota_state');
  const at = new Date(now);
  const gone = await db.query(
    `DELETE FROM ${state} AS q
      WHERE cardinality(${recentErrors('$1::timestamptz')}) = 0 AND cardinality(${liveClaims('$1::timestamptz')}) = 0
        AND (q.deferred_until IS NULL OR q.deferred_until <= $1::timestamptz)`,
    [at],
  );
  await db.query(`UPDATE ${state} AS q SET deferred_until = NULL, deferral_kind = NULL, deferral_reason = NULL WHERE q.deferred_until <= $1::timestamptz`, [
    at,
  ]);
  const seen = await db.query(`DELETE FROM ${qualified(schema, 'quota_seen')} WHERE seen_at < $1::timestamptz - interval '2 days'`, [at]);
  return (gone.rowCount ?? 0) + (seen.rowCount ?? 0);
}
