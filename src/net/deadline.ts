/**
 * Deadlines for every outbound call (token exchanges of any credential kind, the Data API, and
 * whatever Google API comes next), held by a timer of our own.
 *
 * Why not the HTTP library's `timeout` option: gaxios 7 turns it into `AbortSignal.timeout()` and
 * joins that with the caller's signal through `AbortSignal.any()`. Nothing but the joined signal
 * refers to the timeout signal, and in Node.js 20 a garbage collection can drop it together with
 * its timer; a request that then stalls mid-body never ends, and a handful of them fill every
 * request slot for good. Here the timer is a plain `setTimeout` whose handle lives until the call
 * settles, and the caller stops waiting when it fires even if the library ignores the signal.
 *
 * Pass the signal this gives to the library (and no `timeout` of its own), so the socket is torn
 * down too; the caller's own signal (shutdown, the job's abort) is joined by a listener, not by
 * `AbortSignal.any()`.
 */
import { AbortedError, DeadlineExceededError } from '../errors.js';

/**
 * Runs `call` with a signal that aborts when `ms` have passed or `outer` aborts, whichever comes
 * first, and settles no later than that.
 *
 * @param what   names the call in the error ("runReport for property 123")
 * @param ms     the deadline, milliseconds from now (clamped to Node's timer range)
 * @param outer  the caller's signal (shutdown, job abort); its abort becomes an AbortedError
 * @throws DeadlineExceededError when the deadline passed first (RetryableError, code `timeout`)
 * @throws AbortedError when `outer` aborted first
 * @throws whatever `call` throws, otherwise
 */
export async function withDeadline<T>(what: string, ms: number, outer: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (outer?.aborted) throw new AbortedError();
  const controller = new AbortController();
  let reason: Error | null = null;
  let fail!: (err: Error) => void;
  const stopped = new Promise<never>((_, reject) => (fail = reject));
  const stop = (err: Error) => {
    if (reason) return;
    reason = err;
    controller.abort(err);
    fail(err);
  };
  const timer = setTimeout(() => stop(new DeadlineExceededError(what, ms)), clampTimerMs(ms));
  const onOuterAbort = () => stop(new AbortedError());
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  const running = Promise.resolve().then(() => call(controller.signal));
  // whichever loses the race must not become an unhandled rejection
  running.catch(() => undefined);
  stopped.catch(() => undefined);
  try {
    return await Promise.race([running, stopped]);
  } catch (err) {
    // the library's own abort error for our abort is reported as what caused it
    throw reason ?? err;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuterAbort);
  }
}

/** Node's timers hold at most 2^31-1 ms (about 24.8 days); longer ones fire at once with a warning. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay clamped to what `setTimeout` can hold: at least 0, at most MAX_TIMER_MS. */
export function clampTimerMs(ms: number): number {
  if (!Number.isFinite(ms)) return ms > 0 ? MAX_TIMER_MS : 0;
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.round(ms)));
}
