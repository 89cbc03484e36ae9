/**
 * The Data API's quota arithmetic: the limits of a property, when each window resets, when a
 * response's `propertyQuota` shows a window run down to the reserve, and the per-property budget
 * of server errors. Facts from Google's "Data API quotas" page
 * (developers.google.com/analytics/devguides/reporting/data/v1/quotas).
 */
import { DeferError } from '../errors.js';
import { localDate } from '../time.js';
import type { PropertyQuota } from './types.js';

const HOUR_MS = 3_600_000;

/**
 * Core tokens of a standard property per window; an Analytics 360 property has ten times as much
 * (ANALYTICS_360_FACTOR). `projectHour` is a property's tokens per project per hour.
 */
const QUOTA_LIMITS = { day: 200_000, hour: 40_000, projectHour: 14_000 } as const;
const ANALYTICS_360_FACTOR = 10;

/**
 * Concurrent requests a standard property may have in flight; an Analytics 360 property, 50
 * (PropertyQuota.concurrentRequests in the Data API reference, and the quotas page).
 */
export const PROPERTY_CONCURRENCY = 10;

/** Hourly windows reset on the hour: the first full hour after `now` (ms since epoch). */
export function nextHour(now: number): number {
  return Math.ceil((now + 1) / HOUR_MS) * HOUR_MS;
}

/**
 * Daily windows reset at midnight Pacific time. Found by bisection on the Pacific calendar date,
 * so daylight-saving days (23 or 25 hours) come out right; accurate to a second.
 */
export function nextPacificMidnight(now: number): number {
  const today = localDate(now, 'America/Los_Angeles');
  let stillToday = now;
  let tomorrow = now + 26 * HOUR_MS;
  while (tomorrow - stillToday > 1000) {
    const middle = Math.floor((stillToday + tomorrow) / 2);
    if (localDate(middle, 'America/Los_Angeles') === today) stillToday = middle;
    else tomorrow = middle;
  }
  return tomorrow;
}

type QuotaWindow = { consumed?: number | null; remaining?: number | null } | null | undefined;

/**
 * When a response's quota shows the daily or an hourly window below `reserve` (a share, 0..1) of
 * the window's total, the time that window resets (ms since epoch); else undefined.
 *
 * A response's propertyQuota says what that request consumed and what remains, not the window's
 * total, so the total is the standard limit, or the 360 limit when more than the standard limit
 * is accounted for. proto3 JSON leaves zeros out: a window present without `remaining` has none left.
 */
export function quotaBelowReserve(quota: PropertyQuota, reserve: number, now: number): number | undefined {
  if (reserve <= 0) return undefined;
  const below = (window: QuotaWindow, standard: number) => {
    if (!window) return false;
    const remaining = Number(window.remaining ?? 0);
    const limit = remaining + Number(window.consumed ?? 0) > standard ? standard * ANALYTICS_360_FACTOR : standard;
    return remaining < reserve * limit;
  };
  if (below(quota.tokensPerDay, QUOTA_LIMITS.day)) return nextPacificMidnight(now);
  if (below(quota.tokensPerHour, QUOTA_LIMITS.hour) || below(quota.tokensPerProjectPerHour, QUOTA_LIMITS.projectHour)) return nextHour(now);
  return undefined;
}

/**
 * What the client asks before each request to a property and tells after it (client.ts). The
 * daemon's budget is shared through the database (schedule/sharedQuota.ts); ServerErrorBudget is
 * the in-memory one of a client on its own.
 */
export interface RequestBudget {
  /**
   * Before a request to `propertyId`; resolves to the ticket the answer is settled on.
   * @throws DeferError when the property is to be left alone until `resetAt`
   * @throws RetryableError (code `server_errors`) when requests in flight use the rest of its budget: try again shortly
   */
  admit(propertyId: string): Promise<RequestTicket>;
}

export interface RequestTicket {
  /**
   * The request's outcome: its HTTP status (undefined: no answer), and the DeferError a quota
   * answer (429) meant, if any. Never throws.
   */
  settle(status: number | undefined, deferral?: DeferError): Promise<void>;
}

/**
 * Google limits server errors per project and property per hour (10 for a standard property). A
 * property that keeps failing is left alone until its oldest recent error is an hour old, instead
 * of burning that budget (and the other properties' share of it) on more attempts. This one counts
 * in memory: one process's requests only.
 */
export class ServerErrorBudget implements RequestBudget {
  /** per property: when its recent server errors happened (a sliding hour) */
  private readonly errorTimes = new Map<string, number[]>();

  constructor(
    private readonly maxPerHour: number,
    private readonly now: () => number,
  ) {}

  /** A 5xx answer of the property. */
  record(propertyId: string): void {
    const times = this.errorTimes.get(propertyId);
    if (times) times.push(this.now());
    else this.errorTimes.set(propertyId, [this.now()]);
  }

  /**
   * @throws DeferError code `server_errors`, resetting when the oldest recent error is an hour
   *   old, when the property answered `maxPerHour` server errors in the last hour
   */
  check(propertyId: string): void {
    const now = this.now();
    const recent = (this.errorTimes.get(propertyId) ?? []).filter((at) => at > now - HOUR_MS);
    if (recent.length === 0) this.errorTimes.delete(propertyId);
    else this.errorTimes.set(propertyId, recent);
    if (recent.length >= this.maxPerHour) throw serverErrorsExhausted(propertyId, recent.length, recent[0]! + HOUR_MS);
  }

  admit(propertyId: string): Promise<RequestTicket> {
    this.check(propertyId);
    return Promise.resolve({
      settle: async (status) => {
        if (status !== undefined && status >= 500) this.record(propertyId);
      },
    });
  }
}

/** The DeferError of a property that answered `count` server errors in the last hour; `resetAt` when the oldest is an hour old. */
export function serverErrorsExhausted(propertyId: string, count: number, resetAt: number): DeferError {
  return new DeferError(
    `property ${propertyId} answered ${count} server errors in the last hour; leaving it alone until ${new Date(resetAt).toISOString()}`,
    'server_errors',
    resetAt,
  );
}

/** A server error counts against a property's budget for this long (ms): Google's window is an hour. */
export const SERVER_ERROR_WINDOW_MS = HOUR_MS;

/**
 * The tokens a propertyQuota says are left in the hourly and daily windows (each undefined when
 * the answer has no such window). proto3 JSON omits zeros: a window present without `remaining`
 * has none left.
 */
export function tokensRemaining(quota: PropertyQuota): { hour?: number; day?: number } {
  if (typeof quota !== 'object' || quota === null) return {};
  return {
    ...(quota.tokensPerHour ? { hour: Number(quota.tokensPerHour.remaining ?? 0) } : {}),
    ...(quota.tokensPerDay ? { day: Number(quota.tokensPerDay.remaining ?? 0) } : {}),
  };
}

/**
 * What an old propertyQuota still says about now: the windows of `tokensRemaining` that have not
 * reset since it was seen at `seenAt` (the hour on the hour, the day at midnight Pacific time).
 */
export function tokensRemainingSince(quota: PropertyQuota, seenAt: number, now: number): { hour?: number; day?: number } {
  const { hour, day } = tokensRemaining(quota);
  return {
    ...(hour !== undefined && nextHour(seenAt) > now ? { hour } : {}),
    ...(day !== undefined && nextPacificMidnight(seenAt) > now ? { day } : {}),
  };
}
