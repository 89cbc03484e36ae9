/**
 * How long to wait before trying again: the one formula behind every retry loop of the daemon
 * (Data API requests and listings, token exchanges, the start-up's wait for the database, a job
 * whose database went away), and the abortable wait itself.
 *
 * Full jitter exponential backoff: after the n-th consecutive failure, a random wait from
 * `floorMs` up to min(capMs, baseMs * 2^(n-1)).
 * - exponential, so a service that stays down is asked less and less often;
 * - random over the whole step ("full jitter": the spread Google's retry guidance and AWS's
 *   analysis of backoff recommend), so jobs or daemons that failed together do not all come back
 *   in the same instant and fail together again;
 * - capped, so a recovery is noticed within `capMs`;
 * - with an optional floor, for a caller whose every attempt is costly to the other side (a token
 *   endpoint, a database that is starting up): never an immediate retry.
 * Each caller keeps its own base and cap: they say how urgent its retry is and how expensive its
 * failure.
 */
import { AbortedError } from '../errors.js';
import { clampTimerMs } from './deadline.js';

export interface BackoffPolicy {
  /** the step after the first failure, ms; it doubles with each further failure */
  baseMs: number;
  /** the largest step, ms */
  capMs: number;
  /** the shortest wait, ms; default 0 (a retry may follow at once) */
  floorMs?: number;
}

/** Doubling stops here: 2^30 steps are beyond any cap, and base * 2^n must stay a finite number. */
const MAX_DOUBLINGS = 30;

/**
 * The wait before the next attempt, ms, after `failures` consecutive failures (1 for the first).
 * @param random a number in [0, 1); tests may pass their own
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const doublings = Math.min(Math.max(failures, 1) - 1, MAX_DOUBLINGS);
  const step = Math.min(policy.capMs, policy.baseMs * 2 ** doublings);
  const floor = Math.min(policy.floorMs ?? 0, step);
  return floor + random() * (step - floor);
}

/**
 * Waits `ms` (clamped to what a timer can hold), or rejects with AbortedError (`message`, or its
 * default) as soon as `signal` aborts, so a shutdown never waits out a backoff.
 */
export function sleep(ms: number, signal?: AbortSignal, message?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError(message));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError(message));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, clampTimerMs(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
