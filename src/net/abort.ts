/**
 * Waiting that a signal can end: the caller stops waiting with AbortedError at once, while what it
 * waited for (a shared exchange other callers still need) carries on. For a timer, backoff.ts sleep.
 */
import { AbortedError } from '../errors.js';

/** `p`, unless `signal` aborts first (AbortedError); `p` itself carries on for its other waiters. */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AbortedError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
