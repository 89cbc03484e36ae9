/**
 * One quota budget per property for every daemon on the database (store/quotaState.ts), instead
 * of one per process: three daemons on one database would otherwise spend three times a
 * property's hourly allowance of server errors, and a restarted `run --once` a fresh one. Google
 * allows 10 server errors per project and property an hour, and a quota window used up stays so
 * until it resets (Data API quotas, developers.google.com/analytics/devguides/reporting/data/v1/quotas).
 *
 * Before each request (client.ts) the property's row is read, one primary-key lookup: a deferral
 * in force (a used-up quota window, the server-error budget spent) refuses it with the DeferError
 * the first daemon met. A property with no server error in the last hour is asked no more. One
 * with some claims its request first, in one UPDATE that counts errors and claims together, so
 * the daemons' total stays within the budget but for the requests already in flight when its
 * first error came. A quota-low deferral (quotaBelowReserve) is the runner's: it keeps new backlog
 * dates back (quotaLowUntil). The last propertyQuota is kept for the gauge's start value.
 *
 * The database never fails a fetch: when it cannot be read or written within 2 s, the process's
 * own count in memory decides (logged once per outage), as before.
 */
import { DeferError, RetryableError } from '../errors.js';
import { SERVER_ERROR_WINDOW_MS, ServerErrorBudget, serverErrorsExhausted, type RequestBudget, type RequestTicket } from '../ga4/quota.js';
import type { PropertyQuota } from '../ga4/types.js';
import type { Logger } from '../log.js';
import { withDeadline } from '../net/deadline.js';
import { describeDbError } from '../store/dbErrors.js';
import type { Pool } from '../store/pool.js';
import {
  claimRequest,
  pruneQuotaState,
  readQuotaState,
  recordDeferral,
  saveQuotaSeen,
  settleClaim,
  type Deferral,
  type PropertyQuotaState,
} from '../store/quotaState.js';

/** The most one statement on the quota tables may take before memory decides instead (ms). */
const DB_DEADLINE_MS = 2_000;
/** How often the tables are pruned (ms). */
const PRUNE_EVERY_MS = 10 * 60_000;

export interface SharedQuotaOptions {
  pool: Pool;
  schema: string;
  /** fetch.maxServerErrorsPerHour: server errors a property may answer in an hour, all daemons together */
  maxServerErrorsPerHour: number;
  /** how long a request may take (ms): its claim expires this long after it was made, should the daemon die meanwhile */
  requestDeadlineMs: number;
  logger: Logger;
  now?: () => number;
}

export class SharedQuota implements RequestBudget {
  private readonly now: () => number;
  /** this process's own count: what decides while the database cannot */
  private readonly memory: ServerErrorBudget;
  /** deferrals this process made or met, by property: the fallback's, and quota_low's without a read */
  private readonly deferrals = new Map<string, Deferral>();
  /** the newest propertyQuota not yet written, per property; a property with an entry has a write under way */
  private readonly quotaWrites = new Map<string, { quota: PropertyQuota; at: number } | null>();
  private readonly pending = new Set<Promise<unknown>>();
  private unavailable = false;
  private lastPrune = 0;

  constructor(private readonly opts: SharedQuotaOptions) {
    this.now = opts.now ?? Date.now;
    this.memory = new ServerErrorBudget(opts.maxServerErrorsPerHour, this.now);
  }

  async admit(propertyId: string): Promise<RequestTicket> {
    const now = this.now();
    this.maybePrune(now);
    const state = await this.db((pool) => readQuotaState(pool, this.opts.schema, propertyId, now));
    if (state === undefined) return this.fromMemory(propertyId);
    const deferral = state?.deferral;
    if (deferral && deferral.kind !== 'quota_low') throw new DeferError(deferral.reason, deferral.kind, deferral.until.getTime());
    if (!state || state.errors.length === 0) return this.ticket(propertyId, null);
    await this.exhausted(propertyId, state);
    const claim = claimStamp(now + this.opts.requestDeadlineMs);
    const claimed = await this.db((pool) => claimRequest(pool, this.opts.schema, propertyId, now, claim, this.opts.maxServerErrorsPerHour));
    if (claimed === undefined) return this.fromMemory(propertyId);
    if (claimed) return this.ticket(propertyId, claim);
    // refused: the budget is spent, or the rest of it is in flight (or the row was pruned meanwhile)
    const after = await this.db((pool) => readQuotaState(pool, this.opts.schema, propertyId, now));
    if (after === undefined) return this.fromMemory(propertyId);
    await this.exhausted(propertyId, after);
    if (!after || after.errors.length === 0) return this.ticket(propertyId, null);
    throw new RetryableError(
      `property ${propertyId}: ${after.errors.length} server errors in the last hour and ${after.claims} requests in flight use up its budget of ${this.opts.maxServerErrorsPerHour}`,
      'server_errors',
    );
  }

  /**
   * When a quota-low deferral of the property is in force (this daemon's or another's): until
   * then (ms since the epoch), no new dates of a backlog are fetched. Undefined when none is.
   */
  async quotaLowUntil(propertyId: string): Promise<number | undefined> {
    const now = this.now();
    const state = await this.db((pool) => readQuotaState(pool, this.opts.schema, propertyId, now));
    const deferral = state === undefined ? this.deferrals.get(propertyId) : state?.deferral;
    return deferral?.kind === 'quota_low' && deferral.until.getTime() > now ? deferral.until.getTime() : undefined;
  }

  /** The property's quota fell below the reserve: every daemon keeps new backlog dates back until `until`. */
  deferQuotaLow(propertyId: string, until: number, reason: string): void {
    this.track(this.defer(propertyId, { kind: 'quota_low', until: new Date(until), reason }));
  }

  /** A response's propertyQuota: stored (writes of one property one at a time, the newest last) for the gauge's start value. */
  quotaSeen(propertyId: string, quota: PropertyQuota): void {
    const at = this.now();
    if (this.quotaWrites.has(propertyId)) {
      this.quotaWrites.set(propertyId, { quota, at });
      return;
    }
    this.quotaWrites.set(propertyId, null);
    const write = async (q: PropertyQuota, seenAt: number): Promise<void> => {
      await this.db((pool) => saveQuotaSeen(pool, this.opts.schema, propertyId, q, seenAt));
      const next = this.quotaWrites.get(propertyId);
      if (next) {
        this.quotaWrites.set(propertyId, null);
        return write(next.quota, next.at);
      }
      this.quotaWrites.delete(propertyId);
    };
    this.track(write(quota, at));
  }

  /** Resolves when every write started so far is done (stop() waits for it before closing the pool). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Deletes what no longer counts (store/quotaState.ts pruneQuotaState); never throws. */
  async prune(): Promise<void> {
    const now = this.now();
    this.lastPrune = now;
    await this.db((pool) => pruneQuotaState(pool, this.opts.schema, now));
  }

  private maybePrune(now: number): void {
    if (now - this.lastPrune >= PRUNE_EVERY_MS) this.track(this.prune());
  }

  /** The in-memory decision, while the database cannot be asked. */
  private fromMemory(propertyId: string): RequestTicket {
    const deferral = this.deferrals.get(propertyId);
    if (deferral && deferral.kind !== 'quota_low' && deferral.until.getTime() > this.now())
      throw new DeferError(deferral.reason, deferral.kind, deferral.until.getTime());
    this.memory.check(propertyId);
    return this.ticket(propertyId, null);
  }

  /** The budget is spent: every daemon leaves the property alone until its oldest recent error is an hour old. */
  private async exhausted(propertyId: string, state: PropertyQuotaState | null): Promise<void> {
    if (!state || state.errors.length < this.opts.maxServerErrorsPerHour) return;
    const error = serverErrorsExhausted(propertyId, state.errors.length, state.errors[0]!.getTime() + SERVER_ERROR_WINDOW_MS);
    await this.defer(propertyId, { kind: 'server_errors', until: new Date(error.resetAt), reason: error.message });
    throw error;
  }

  private ticket(propertyId: string, claim: string | null): RequestTicket {
    return {
      settle: async (status, deferral) => {
        const serverError = status !== undefined && status >= 500;
        if (serverError) this.memory.record(propertyId);
        if (serverError || claim !== null) await this.db((pool) => settleClaim(pool, this.opts.schema, propertyId, this.now(), claim, serverError));
        if (deferral) await this.defer(propertyId, { kind: deferral.code as Deferral['kind'], until: new Date(deferral.resetAt), reason: deferral.message });
      },
    };
  }

  private async defer(propertyId: string, deferral: Deferral): Promise<void> {
    const known = this.deferrals.get(propertyId);
    if (!known || known.until.getTime() <= this.now() || known.until < deferral.until) this.deferrals.set(propertyId, deferral);
    await this.db((pool) => recordDeferral(pool, this.opts.schema, propertyId, deferral, this.now()));
  }

  private track(work: Promise<unknown>): void {
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** `fn` on the pool within DB_DEADLINE_MS; undefined when it failed (logged once an outage). */
  private async db<T>(fn: (pool: Pool) => Promise<T>): Promise<T | undefined> {
    try {
      const result = await withDeadline('the shared quota state', DB_DEADLINE_MS, undefined, () => fn(this.opts.pool));
      if (this.unavailable) {
        this.unavailable = false;
        this.opts.logger.info({ event: 'quota_state_available' }, 'the shared quota state answers again');
      }
      return result;
    } catch (err) {
      if (!this.unavailable) {
        this.unavailable = true;
        this.opts.logger.warn(
          { event: 'quota_state_unavailable', err: describeDbError(err) },
          'the shared quota state cannot be read or written; this daemon counts its own requests in memory until it can',
        );
      }
      return undefined;
    }
  }
}

/**
 * A claim's expiry as a timestamptz literal with random microseconds, so that two claims made in
 * the same millisecond are still told apart when one is removed.
 */
function claimStamp(expiresAt: number): string {
  const micros = String(Math.floor(Math.random() * 1000)).padStart(3, '0');
  return `${new Date(expiresAt).toISOString().slice(0, -1)}${micros}Z`;
}
