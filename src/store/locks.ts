/**
 * Advisory locks. Several daemons on one database coordinate through these alone: a job for a
 * property and report holds its lock for as long as it runs, on a connection of its own, so a
 * daemon that dies releases it with its connection and another can take the work over.
 */
import crypto from 'node:crypto';
import { AbortedError } from '../errors.js';
import type { DbSession, PoolClient } from './pool.js';

/** A stable 64-bit key (as a decimal string) for a list of names. */
export function lockKey(...parts: string[]): string {
  const h = crypto
    .createHash('sha256')
    .update(`ga-collector\0${parts.join('\0')}`)
    .digest();
  return h.readBigInt64BE(0).toString();
}

/** Takes the session-level advisory lock `key` if it is free; false when another session holds it. */
export async function tryLock(client: PoolClient, key: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
  return rows[0]!.ok;
}

/** Releases a session-level advisory lock; false when this session did not hold it. */
export async function unlock(client: PoolClient, key: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_advisory_unlock($1) AS ok', [key]);
  return rows[0]?.ok === true;
}

/**
 * Takes the transaction-scoped advisory lock `key`, waiting for it (within the transaction's
 * lock_timeout); it is released by COMMIT or ROLLBACK, so there is no unlock to forget.
 */
export async function lockUntilTransactionEnds(client: PoolClient, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [key]);
}

export interface AdvisoryLockOptions {
  /** while another session holds the lock, try again this often (ms); default 1,000 */
  pollMs?: number;
  /** stops the waiting (an AbortedError from the sleep) */
  signal?: AbortSignal;
  /** told once, when the lock is found taken */
  onBusy?: () => void;
}

/**
 * Takes the session-level advisory lock `key` on `session` (waiting, by polling
 * `pg_try_advisory_lock`, while another session holds it), runs `fn`, and releases the lock.
 *
 * Polling rather than `pg_advisory_lock()`: a blocking wait would be cut by the session's
 * lock_timeout (pool.ts), and could not be stopped by `signal`.
 *
 * When the release fails or finds the lock not held (the connection broke, or is stuck in an
 * aborted transaction), the session is discarded: its release closes the connection, which ends
 * the lock with it, instead of returning a connection to the pool that may still hold the lock.
 * A lost connection is not asked to unlock: its locks went with it.
 */
export async function withAdvisoryLock<T>(session: DbSession, key: string, fn: () => Promise<T>, opts: AdvisoryLockOptions = {}): Promise<T> {
  let told = false;
  while (!(await tryLock(session.client, key))) {
    if (!told) opts.onBusy?.();
    told = true;
    await sleep(opts.pollMs ?? 1_000, opts.signal);
  }
  try {
    return await fn();
  } finally {
    if (session.lost.aborted) session.discard();
    else {
      const released = await unlock(session.client, key).catch(() => false);
      if (!released) session.discard();
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortedError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
