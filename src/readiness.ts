/**
 * `/readyz`: ready when the database answers within 3 s (a ping through the pool, which replaces
 * lost connections, so a database that came back is ready again at the next probe) and every
 * credential holds a token. Reasons are one line each, never with the database password.
 */
import type { TokenSource } from './auth/tokenManager.js';
import { withDeadline } from './net/deadline.js';
import { describeDbError, isDatabaseUnavailable } from './store/dbErrors.js';
import { ping } from './store/health.js';
import type { Pool } from './store/pool.js';

export async function readiness(pool: Pool, databaseUrl: string, sources: TokenSource[]): Promise<{ ready: boolean; reasons: string[] }> {
  const reasons: string[] = [];
  try {
    await withDeadline('the database ping', 3_000, undefined, () => ping(pool));
  } catch (err) {
    reasons.push(`database: ${isDatabaseUnavailable(err) ? 'unavailable: ' : ''}${describeDbError(err, databaseUrl)}`);
  }
  for (const source of sources) {
    const token = source.status();
    if (!token.valid) reasons.push(`token for ${token.account}: ${token.lastError ? `refresh failing: ${token.lastError}` : 'not obtained yet'}`);
  }
  return { ready: reasons.length === 0, reasons };
}
