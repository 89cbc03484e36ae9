/**
 * Stopping means stopped: SIGTERM while the daemon waits on a lock another session holds (the day
 * writer behind `LOCK TABLE ... IN ACCESS EXCLUSIVE MODE` on the report table; a job behind the
 * advisory lock another daemon holds). After the grace period the statement in flight is
 * cancelled, the daemon exits 0 within a few seconds, leaves no backend waiting, and no partial
 * date is stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createLogger } from '../src/log.js';
import { lockKey } from '../src/store/locks.js';
import { migrate } from '../src/store/migrations.js';
import { ensureReportTables } from '../src/store/reportTables.js';
import { logLines, startCli, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '910001';
const reports = { devices: { dimensions: ['deviceCategory'], metrics: ['sessions'], startDate: '12daysAgo' } };
const GRACE_SECONDS = 1;
/** grace + cancel + pool close + exit, with room for a loaded 2-core machine */
const EXIT_WITHIN_MS = GRACE_SECONDS * 1000 + 10_000;

describe('SIGTERM while the daemon waits on a lock', () => {
  let db: TestDb;
  let g: FakeSetup;
  let locker: pg.Client;
  before(async () => {
    db = await testDb('stop_lock');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    await installed();
  });

  /** As an installation that has run before: migrated, and the report's table exists (a new one comes with its first stored date). */
  async function installed() {
    const logger = createLogger('silent');
    await migrate(db.pool, db.schema, logger);
    await ensureReportTables(db.pool, db.schema, [{ name: 'devices', ...reports.devices, refreshDays: 3 }], logger);
  }
  after(async () => {
    await locker?.end().catch(() => undefined);
    await g.stop();
    await db.drop();
  });

  const app = () => `ga-collector/${db.schema}`;
  const waiting = () =>
    db.query<{ pid: number; query: string }>(`SELECT pid, query FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app()]);

  async function wholeDays() {
    return db.query<{ date: string; row_count: number; n: number }>(
      `SELECT to_char(f.date, 'YYYY-MM-DD') AS date, f.row_count,
              (SELECT count(*)::int FROM "${db.schema}".devices d WHERE d.property_id = f.property_id AND d.date = f.date) AS n
         FROM "${db.schema}".fetch_days f`,
    );
  }

  it('the day writer behind LOCK TABLE ... ACCESS EXCLUSIVE: cancelled, exit 0 within the grace period and a few seconds, no partial date', async () => {
    g.fake.clearFaults();
    // slow pages: the lock is taken while the job is still fetching, before its first write
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 400 });
    const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports, http: { port: 0 }, shutdown: { graceSeconds: GRACE_SECONDS } });
    const d = startCli(['run', '--config', config]);
    try {
      await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'job_planned'), { timeoutMs: 30_000, what: 'a fetch under way' });
      locker = new pg.Client({ connectionString: db.url });
      locker.on('error', () => undefined);
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${db.schema}".devices IN ACCESS EXCLUSIVE MODE`);
      const blocked = await waitFor(async () => (await waiting())[0], { timeoutMs: 30_000, what: 'the day writer waiting on the table lock' });
      assert.match(blocked.query, /devices/);

      const t0 = Date.now();
      d.child.kill('SIGTERM');
      const exit = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), EXIT_WITHIN_MS))]);
      assert.ok(exit, `still running ${EXIT_WITHIN_MS} ms after SIGTERM with a ${GRACE_SECONDS} s grace`);
      assert.equal(exit.code, 0, d.out.stderr);
      const lines = logLines(d.out.stdout);
      assert.ok(
        lines.some((l) => l['event'] === 'shutdown_aborting'),
        'the grace period ran out',
      );
      assert.ok(
        lines.some((l) => l['event'] === 'job_aborted'),
        'the job was aborted',
      );
      assert.ok(lines.some((l) => l['event'] === 'stopped'));
      assert.ok(Date.now() - t0 >= GRACE_SECONDS * 1000, 'in-flight work had its grace period');
      // cancelled, not left behind: no backend of the daemon is still queued for the lock
      await waitFor(async () => (await waiting()).length === 0, { timeoutMs: 5_000, what: 'no daemon backend waiting on the lock' });
      assert.equal((await waiting()).length, 0);
    } finally {
      if (d.child.exitCode === null) d.child.kill('SIGKILL');
      await locker?.query('ROLLBACK').catch(() => undefined);
    }
    assert.equal((await db.query(`SELECT 1 FROM "${db.schema}".devices`)).length, 0, 'nothing of the blocked batch was written');
    for (const r of await wholeDays()) assert.equal(r.n, r.row_count, `${r.date}: no partial date`);
  });

  it('a job waiting for the advisory lock another daemon holds: exit 0 within the grace period and a few seconds', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    await installed();
    g.fake.clearFaults();
    const holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined);
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [lockKey(db.schema, 'job', P, 'devices')]);
      const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports, http: { port: 0 }, shutdown: { graceSeconds: GRACE_SECONDS } });
      const d = startCli(['run', '--config', config]);
      try {
        await waitFor(() => logLines(d.out.stdout).some((l) => l['event'] === 'started'), { timeoutMs: 30_000, what: 'the daemon started' });
        // its job polls for the lock: give it a moment to be in that loop
        await waitFor(
          async () =>
            (await db.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE '%pg_try_advisory_lock%'`, [app()])).length > 0,
          {
            timeoutMs: 15_000,
            what: 'the job trying the lock',
          },
        );
        d.child.kill('SIGTERM');
        const exit = await Promise.race([d.exited, new Promise<null>((r) => setTimeout(() => r(null), EXIT_WITHIN_MS))]);
        assert.ok(exit, `still running ${EXIT_WITHIN_MS} ms after SIGTERM`);
        assert.equal(exit.code, 0, d.out.stderr);
        assert.equal((await wholeDays()).length, 0, 'nothing fetched without the lock');
      } finally {
        if (d.child.exitCode === null) d.child.kill('SIGKILL');
      }
    } finally {
      await holder.end().catch(() => undefined);
    }
  });
});
