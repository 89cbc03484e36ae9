/**
 * Waiting that a signal can end: the caller stops waiting with AbortedError at once, whatever it
 * waits for (a timer, a shared exchange other callers still need).
 */
import { AbortedError } from '../errors.js';
import { clampTimerMs } from './deadline.js';

/** Waits `ms`, or rejects with AbortedError(`message`) when `signal` aborts first. */
export function abortableSleep(ms: number, signal: AbortSignal, message = 'stopped'): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AbortedError(message));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError(message));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, clampTimerMs(ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

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
