/**
 * GA4 Data API property quotas: token buckets per day, per hour and per
 * project per hour, a concurrent-request limit and the thresholded-request
 * bucket. Defaults are those of a standard (non-360) property.
 */
import { todayIn } from './dates.js';
import type { QuotaSettings } from './types.js';

const DEFAULTS = {
  tokensPerDay: 200_000,
  tokensPerHour: 40_000,
  // 35% of the hourly bucket, per Google Cloud project.
  tokensPerProjectPerHour: 14_000,
  concurrentRequests: 10,
  serverErrorsPerProjectPerHour: 10,
  potentiallyThresholdedRequestsPerHour: 120,
};

interface Bucket {
  window: string;
  limit: number;
  consumed: number;
  defaultLimit: number;
}

interface PropertyQuotaState {
  day: Bucket;
  hour: Bucket;
  thresholded: Bucket;
  projectHour: Map<string, Bucket>;
  /** Set by setQuota: what project buckets first used in that hour start with. */
  projectPreset?: { window: string; remaining: number };
  concurrentLimit: number;
  inFlight: number;
}

export interface QuotaStatusJson {
  consumed: number;
  remaining: number;
}

const bucket = (limit: number): Bucket => ({ window: '', limit, consumed: 0, defaultLimit: limit });

const remaining = (b: Bucket): number => Math.max(0, b.limit - b.consumed);

export class QuotaBook {
  private readonly byProperty = new Map<string, PropertyQuotaState>();

  constructor(private readonly now: () => number) {}

  private state(propertyId: string): PropertyQuotaState {
    let s = this.byProperty.get(propertyId);
    if (!s) {
      s = {
        day: bucket(DEFAULTS.tokensPerDay),
        hour: bucket(DEFAULTS.tokensPerHour),
        thresholded: bucket(DEFAULTS.potentiallyThresholdedRequestsPerHour),
        projectHour: new Map(),
        concurrentLimit: DEFAULTS.concurrentRequests,
        inFlight: 0,
      };
      this.byProperty.set(propertyId, s);
    }
    return s;
  }

  /** Starts a new window when the clock has left the bucket's one (daily ones reset at midnight Pacific, as Google's do). */
  private roll(b: Bucket, daily: boolean): Bucket {
    const window = daily ? todayIn('America/Los_Angeles', this.now()) : this.hourWindow();
    if (b.window !== window) {
      b.window = window;
      b.consumed = 0;
      b.limit = b.defaultLimit;
    }
    return b;
  }

  private hourWindow(): string {
    return String(Math.floor(this.now() / 3_600_000));
  }

  private projectBucket(s: PropertyQuotaState, project: string): Bucket {
    let b = s.projectHour.get(project);
    if (!b) {
      b = this.roll(bucket(DEFAULTS.tokensPerProjectPerHour), false);
      if (s.projectPreset?.window === b.window) b.limit = s.projectPreset.remaining;
      s.projectHour.set(project, b);
    }
    return this.roll(b, false);
  }

  /** Sets what remains in the current windows (every project's, for the per-project bucket) and the concurrency limit. */
  set(propertyId: string, settings: QuotaSettings): void {
    const s = this.state(propertyId);
    const setRemaining = (b: Bucket, value: number | undefined): void => {
      if (value !== undefined) b.limit = b.consumed + Math.max(0, value);
    };
    setRemaining(this.roll(s.day, true), settings.tokensPerDay);
    setRemaining(this.roll(s.hour, false), settings.tokensPerHour);
    if (settings.tokensPerProjectPerHour !== undefined) {
      for (const p of s.projectHour.keys()) setRemaining(this.projectBucket(s, p), settings.tokensPerProjectPerHour);
      s.projectPreset = { window: this.hourWindow(), remaining: Math.max(0, settings.tokensPerProjectPerHour) };
    }
    if (settings.concurrentRequests !== undefined) s.concurrentLimit = settings.concurrentRequests;
  }

  /** Counts a request in flight; returns Google's message when that exceeds the concurrency limit. */
  enter(propertyId: string): string | undefined {
    const s = this.state(propertyId);
    if (s.inFlight >= s.concurrentLimit) return 'Exhausted concurrent requests quota.';
    s.inFlight++;
    return undefined;
  }

  leave(propertyId: string): void {
    const s = this.state(propertyId);
    s.inFlight = Math.max(0, s.inFlight - 1);
  }

  /** Google's message when a bucket this request needs is empty. */
  exhausted(propertyId: string, project: string, thresholded: boolean): string | undefined {
    const s = this.state(propertyId);
    if (remaining(this.roll(s.day, true)) <= 0) return 'Exhausted property tokens per day. These quota tokens will return in under 24 hours.';
    if (remaining(this.roll(s.hour, false)) <= 0) return 'Exhausted property tokens per hour. These quota tokens will return in under an hour.';
    if (remaining(this.projectBucket(s, project)) <= 0)
      return 'Exhausted property tokens for a project per hour. These quota tokens will return in under an hour.';
    if (thresholded && remaining(this.roll(s.thresholded, false)) <= 0)
      return 'Exhausted potentially thresholded requests quota. These quota tokens will return in under an hour.';
    return undefined;
  }

  /** Charges a served request; returns the `propertyQuota` object of the response. */
  consume(propertyId: string, project: string, cost: number, thresholded: boolean): Record<string, QuotaStatusJson> {
    const s = this.state(propertyId);
    const charge = (b: Bucket, n: number): QuotaStatusJson => {
      b.consumed += n;
      return { consumed: n, remaining: remaining(b) };
    };
    return {
      tokensPerDay: charge(this.roll(s.day, true), cost),
      tokensPerHour: charge(this.roll(s.hour, false), cost),
      concurrentRequests: { consumed: 0, remaining: Math.max(0, s.concurrentLimit - Math.max(0, s.inFlight - 1)) },
      // Injected faults are not charged here, so tests can reason about exactly what they injected.
      serverErrorsPerProjectPerHour: { consumed: 0, remaining: DEFAULTS.serverErrorsPerProjectPerHour },
      potentiallyThresholdedRequestsPerHour: charge(this.roll(s.thresholded, false), thresholded ? 1 : 0),
      tokensPerProjectPerHour: charge(this.projectBucket(s, project), cost),
    };
  }
}
