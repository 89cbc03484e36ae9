/**
 * Waiting for a database that is down or still starting. Under systemd or compose the daemon often
 * starts before PostgreSQL accepts connections; failing then would only make the service manager
 * restart it in a loop. Only such a database is waited for (dbErrors.ts, `isDatabaseUnavailable`):
 * a setting that cannot work (no such database, a refused login) or a failing statement is thrown
 * at once, since waiting would not change it.
 */
import { AbortedError } from '../errors.js';
import { backoffDelay, sleep } from '../net/backoff.js';
import { isDatabaseUnavailable } from './dbErrors.js';

/** Pauses between attempts: full jitter within 1, 2, 4, 8, then 10 s, at least half a second. */
const STARTUP_RETRY = { baseMs: 1_000, capMs: 10_000, floorMs: 500 };

export interface DatabaseWaitOptions {
  /** how long to keep trying, ms from the first attempt; 0 tries once */
  waitMs: number;
  /** ends the wait between attempts (a stop during start-up): AbortedError */
  signal?: AbortSignal | undefined;
  /** told before each pause: the error, the attempt that met it (1, 2 ...), the pause in ms */
  onRetry?: (err: unknown, attempt: number, pauseMs: number) => void;
}

/**
 * `attempt()`, again after a pause while it fails because the database is unavailable, until it
 * succeeds or `waitMs` has passed.
 *
 * @throws the attempt's error when it is not unavailability, or when the wait is over
 * @throws AbortedError when `signal` aborts: the pause ends at once; an attempt under way is
 *   not cut (a caller that cannot wait for it races this against its own signal)
 */
export async function whenDatabaseAnswers<T>(attempt: () => Promise<T>, opts: DatabaseWaitOptions): Promise<T> {
  const deadline = Date.now() + opts.waitMs;
  for (let attemptNo = 1; ; attemptNo++) {
    if (opts.signal?.aborted) throw new AbortedError();
    try {
      return await attempt();
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError();
      if (Date.now() > deadline || !isDatabaseUnavailable(err)) throw err;
      const pauseMs = Math.round(backoffDelay(attemptNo, STARTUP_RETRY));
      opts.onRetry?.(err, attemptNo, pauseMs);
      await sleep(pauseMs, opts.signal);
    }
  }
}
