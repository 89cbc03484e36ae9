/**
 * When releasing an advisory lock fails, the connection that may still hold it is closed, not
 * returned to the pool: otherwise the job's lock outlives the job, on an idle pooled connection,
 * and every daemon waits for it for good. And the store's transaction and lock helpers do what
 * they say when nothing fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/log.js';
import { lockKey, withAdvisoryLock } from '../src/store/locks.js';
import { connect, createPool, type Pool } from '../src/store/pool.js';
import { withTransaction } from '../src/store/transaction.js';
import { testDb, waitFor, type TestDb } from './helpers.js';

describe('advisory lock release', () => {
  let db: TestDb;
  let pool: Pool;
  before(async () => {
    db = await testDb('lock_release');
    pool = createPool(db.url, createLogger('silent'), 2, { schema: db.schema });
  });
  after(async () => {
    await pool.end();
    await db.drop();
  });

  async function backendAlive(pid: number): Promise<boolean> {
    return (await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length > 0;
  }

  it('an unlock that fails (the session is stuck in an aborted transaction) closes the connection, and the lock is free', async () => {
    const key = lockKey(db.schema, 'test', 'aborted-transaction');
    const session = await connect(pool);
    const pid = session.client.processID as number;
    await assert.rejects(
      withAdvisoryLock(session, key, async () => {
        // a transaction whose ROLLBACK never came: every later statement, the unlock too, is refused (25P02)
        await session.client.query('BEGIN');
        await session.client.query('SELECT 1/0').catch(() => undefined);
        throw new Error('the job failed');
      }),
      /the job failed/,
    );
    session.release();
    await waitFor(async () => !(await backendAlive(pid)), { what: 'the connection holding the lock closed' });
    assert.equal(await lockHeldBy(key), null, 'no session holds the lock');
    // and the pool still works
    const next = await connect(pool);
    assert.notEqual(next.client.processID, pid);
    next.release();
  });

  it('an unlock that finds the lock not held (someone released all) closes the connection too', async () => {
    const key = lockKey(db.schema, 'test', 'released-behind-our-back');
    const session = await connect(pool);
    const pid = session.client.processID as number;
    await withAdvisoryLock(session, key, async () => {
      await session.client.query('SELECT pg_advisory_unlock_all()');
    });
    session.release();
    await waitFor(async () => !(await backendAlive(pid)), { what: 'the connection in an unexpected state closed' });
  });

  it('a clean unlock returns the connection to the pool, lock released', async () => {
    const key = lockKey(db.schema, 'test', 'clean');
    const session = await connect(pool);
    const pid = session.client.processID as number;
    const result = await withAdvisoryLock(session, key, async () => {
      assert.equal(await lockHeldBy(key), pid, 'held while fn runs');
      return 42;
    });
    assert.equal(result, 42);
    session.release();
    assert.equal(await lockHeldBy(key), null);
    assert.ok(await backendAlive(pid), 'kept for reuse');
  });

  it('withTransaction commits, rolls back on error, and its timeouts end with it', async () => {
    await db.query(`CREATE SCHEMA IF NOT EXISTS "${db.schema}"`);
    await db.query(`CREATE TABLE "${db.schema}".t (x int)`);
    const session = await connect(pool);
    try {
      const c = session.client;
      await withTransaction(c, async () => void (await c.query(`INSERT INTO "${db.schema}".t VALUES (1)`)), { lockTimeoutMs: 1234, statementTimeoutMs: 5678 });
      await assert.rejects(
        withTransaction(
          c,
          async () => {
            await c.query(`INSERT INTO "${db.schema}".t VALUES (2)`);
            const { rows } = await c.query<{ l: string; s: string }>(`SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`);
            assert.deepEqual(rows[0], { l: '1234ms', s: '5678ms' });
            throw new Error('undo');
          },
          { lockTimeoutMs: 1234, statementTimeoutMs: 5678 },
        ),
        /undo/,
      );
      assert.deepEqual(
        (await db.query(`SELECT x FROM "${db.schema}".t`)).map((r) => r['x']),
        [1],
      );
      // back to the session's own settings (pool.ts)
      const { rows } = await c.query<{ l: string; s: string }>(`SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s`);
      assert.deepEqual(rows[0], { l: '1min', s: '5min' });
    } finally {
      session.release();
    }
  });

  async function lockHeldBy(key: string): Promise<number | null> {
    const k = BigInt(key);
    const hi = Number((k >> 32n) & 0xffffffffn);
    const lo = Number(k & 0xffffffffn);
    const rows = await db.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1`,
      [hi, lo],
    );
    return rows[0]?.pid ?? null;
  }
});
