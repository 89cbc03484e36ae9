/**
 * Advisory-lock keys. Several daemons on one database coordinate through these alone: a job for a
 * property and report holds its lock for as long as it runs, on a connection of its own, so a
 * daemon that dies releases it with its connection and another can take the work over.
 */
import crypto from 'node:crypto';
import type { PoolClient } from './pool.js';

/** A stable 64-bit key (as a decimal string) for a list of names. */
export function lockKey(...parts: string[]): string {
  const h = crypto.createHash('sha256').update(`ga-collector\0${parts.join('\0')}`).digest();
  return h.readBigInt64BE(0).toString();
}

export async function tryLock(client: PoolClient, key: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
  return rows[0]!.ok;
}

export async function unlock(client: PoolClient, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1)', [key]);
}
