/**
 * One transaction: BEGIN, the caller's statements, COMMIT; ROLLBACK on any error. Timeouts given
 * here are `SET LOCAL`, so they end with the transaction and the connection goes back to the pool
 * with its session settings (pool.ts) untouched.
 */
import type pg from 'pg';

export interface TransactionOptions {
  /** `SET LOCAL lock_timeout`, milliseconds: how long one statement may wait for a table or row lock */
  lockTimeoutMs?: number;
  /** `SET LOCAL statement_timeout`, milliseconds (0: none) */
  statementTimeoutMs?: number;
}

/**
 * Runs `fn` inside a transaction on `client` and returns its result. BEGIN and the settings go in
 * one round trip.
 *
 * @throws whatever `fn` or COMMIT throws, after a ROLLBACK (whose own failure is left to the
 *   connection's next statement, e.g. the advisory unlock, which then discards the connection)
 */
export async function withTransaction<C extends pg.ClientBase, T>(client: C, fn: (client: C) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const begin = ['BEGIN'];
  if (opts.lockTimeoutMs !== undefined) begin.push(`SET LOCAL lock_timeout = ${Math.max(0, Math.round(opts.lockTimeoutMs))}`);
  if (opts.statementTimeoutMs !== undefined) begin.push(`SET LOCAL statement_timeout = ${Math.max(0, Math.round(opts.statementTimeoutMs))}`);
  await client.query(begin.join('; '));
  let result: T;
  try {
    result = await fn(client);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return result;
}
