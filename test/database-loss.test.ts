/**
 * A lost database connection is an event, not a crash: while jobs run, the database restarts (a
 * server of the test's own, stopped and started) or drops the daemon's connections
 * (`pg_terminate_backend` on the shared server, only the backends of this test's daemon). The
 * daemon keeps its PID, fails the job as retryable, answers /readyz 503 while the database is
 * away, and finishes the backlog when it is back, every date whole.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createLogger } from '../src/log.js';
import { connect, createPool } from '../src/store/pool.js';
import { startFake, testDb, tmpDir, waitFor, writeJson, type FakeSetup, type TestDb } from './helpers.js';
import { get, startDaemon, type DaemonProcess } from './ops-helpers.js';
import { RestartablePostgres } from './restartable-postgres.js';

const P = '880001';
// 40 dates (40daysAgo through yesterday), fetched four at a time: ten runs, one after another
const reports = { daily: { metrics: ['sessions'], startDate: '40daysAgo' } };
const DATES = 40;
const fetch = { maxDaysPerRun: 4 };

/** Dates stored, and dates whose rows do not match their ledger row (must stay 0). */
async function stored(query: (sql: string) => Promise<Array<Record<string, unknown>>>, schema: string): Promise<{ dates: number; partial: number }> {
  const rows = await query(
    `SELECT count(*)::int AS dates,
            count(*) FILTER (WHERE f.row_count <> (SELECT count(*) FROM "${schema}".daily d WHERE d.property_id = f.property_id AND d.date = f.date))::int AS partial
       FROM "${schema}".fetch_days f WHERE f.report = 'daily'`,
  );
  return { dates: Number(rows[0]!['dates']), partial: Number(rows[0]!['partial']) };
}

function jobFailures(d: DaemonProcess) {
  return d.logs().filter((l) => l['event'] === 'job_failed' && l['database'] === 'unavailable');
}

describe('a lost database connection is an event, not a crash', () => {
  let g: FakeSetup;
  before(async () => {
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 300 });
  });
  after(async () => {
    await g.stop();
  });

  it('the database stops mid-backlog: same PID, job failed as retryable, /readyz 503, backlog finished when it is back', async () => {
    const own = await RestartablePostgres.create();
    let daemon: DaemonProcess | undefined;
    try {
      const schema = 'ga4';
      const config = writeJson(path.join(tmpDir('dbloss'), 'config.json'), {
        database: { url: own.url, schema },
        google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl },
        properties: [{ id: P }],
        reports,
        concurrency: 1,
        fetch,
        http: { port: 0 },
      });
      daemon = await startDaemon(config);
      const pid = daemon.child.pid;
      const query = (sql: string) => own.query(sql);
      await waitFor(async () => (await stored(query, schema)).dates >= 4, { timeoutMs: 30_000, what: 'a first run stored' });

      await own.stop();
      await waitFor(() => jobFailures(daemon!).length >= 1, { timeoutMs: 30_000, what: 'the job failed as retryable' });
      const failure = jobFailures(daemon)[0]!;
      assert.match(String(failure['err']), /^database: .*the job runs again in \d+ s/);
      const ready = await get(`${daemon.url}/readyz`);
      assert.equal(ready.status, 503, ready.body);
      assert.match(ready.body, /database/);
      // retried with backoff while it is away, not only at the next cron firing
      await waitFor(() => jobFailures(daemon!).length >= 2, { timeoutMs: 30_000, what: 'a second attempt while the database is away' });
      assert.ok(
        daemon.logs().some((l) => l['event'] === 'job_deferred'),
        'the retry was scheduled',
      );
      assert.equal(daemon.child.exitCode, null, `still running: ${daemon.out.stderr}`);

      await own.start();
      await waitFor(async () => (await stored(query, schema).catch(() => ({ dates: 0, partial: 0 }))).dates === DATES, {
        timeoutMs: 90_000,
        intervalMs: 250,
        what: 'the whole backlog stored after the database came back',
      });
      assert.equal((await stored(query, schema)).partial, 0, 'every date whole');
      await waitFor(async () => (await get(`${daemon!.url}/readyz`)).status === 200, { timeoutMs: 15_000, what: '/readyz 200 again' });
      assert.equal(daemon.child.pid, pid);
      assert.equal(daemon.child.exitCode, null, 'never exited');
      assert.doesNotMatch(daemon.out.stderr, /Unhandled|uncaught|at \S+ \(/i);
      assert.equal(await daemon.stop(), 0);
    } finally {
      if (daemon && daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      await own.destroy();
    }
  });

  describe("pg_terminate_backend on the shared server (this daemon's backends only)", () => {
    let db: TestDb;
    before(async () => {
      db = await testDb('dbloss_term');
    });
    after(async () => {
      await db.drop();
    });

    it('five times in a row while a job holds its lock: same PID, each job failed as retryable, then every date stored whole', async () => {
      const config = writeJson(path.join(tmpDir('dbterm'), 'config.json'), {
        database: { url: db.url, schema: db.schema },
        google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl },
        properties: [{ id: P }],
        reports,
        concurrency: 1,
        fetch,
        http: { port: 0 },
      });
      const daemon = await startDaemon(config);
      const app = `ga-collector/${db.schema}`;
      try {
        const pid = daemon.child.pid;
        for (let round = 1; round <= 5; round++) {
          const before = jobFailures(daemon).length;
          const succeeded = daemon.logs().filter((l) => l['event'] === 'job_succeeded').length;
          // the backend of a job holding its advisory lock (its connection is checked out of the
          // pool), found and terminated in one statement, so the job cannot finish in between. The
          // terminate is in the select list of a materialized CTE's rows: in a WHERE clause the
          // planner may call it on rows the other conditions would have rejected (other backends).
          const killed = await waitFor(
            async () =>
              (
                await db.query<{ pid: number }>(
                  `WITH holders AS MATERIALIZED (
                     SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                      WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1)
                   SELECT pid, pg_terminate_backend(pid) AS terminated FROM holders`,
                  [app],
                )
              )[0]?.pid,
            { timeoutMs: 30_000, intervalMs: 20, what: `round ${round}: a job holding its lock` },
          );
          assert.ok(killed > 0);
          await waitFor(() => jobFailures(daemon).length > before || daemon.child.exitCode !== null, {
            timeoutMs: 15_000,
            what: `round ${round}: the job failed`,
          });
          assert.equal(daemon.child.exitCode, null, `round ${round}: the daemon is still running\n${daemon.out.stderr}`);
          // retried soon (not at the next cron firing) and, planned afresh from the ledger, succeeds
          await waitFor(() => daemon.logs().filter((l) => l['event'] === 'job_succeeded').length > succeeded, {
            timeoutMs: 30_000,
            what: `round ${round}: retried and succeeded`,
          });
        }
        await waitFor(async () => (await stored((sql) => db.query(sql), db.schema)).dates === DATES, {
          timeoutMs: 60_000,
          intervalMs: 250,
          what: 'every date stored',
        });
        assert.equal((await stored((sql) => db.query(sql), db.schema)).partial, 0, 'every date whole');
        assert.ok(jobFailures(daemon).length >= 5);
        for (const f of jobFailures(daemon)) assert.match(String(f['err']), /^database: /);
        assert.equal(daemon.child.pid, pid);
        assert.equal(daemon.child.exitCode, null);
        assert.equal((await get(`${daemon.url}/readyz`)).status, 200);
        assert.equal(await daemon.stop(), 0);
      } finally {
        if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
      }
    });

    it('a connection checked out of the pool (any caller, even a bare pool.connect()) that is terminated does not crash the process', async () => {
      const lines: string[] = [];
      const logger = createLogger('info', { write: (l: string) => void lines.push(l) });
      const pool = createPool(db.url, logger, 2, { schema: `${db.schema}_bare` });
      const app = `ga-collector/${db.schema}_bare`;
      try {
        const bare = await pool.connect();
        const session = await connect(pool);
        await session.client.query('SELECT 1');
        const killed = await db.query<{ n: number }>(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
          app,
        ]);
        assert.equal(killed[0]!.n, 2);
        await waitFor(() => session.lost.aborted, { what: 'the session learns its connection is lost' });
        assert.match(String((session.lostError as pg.DatabaseError).code ?? session.lostError?.message), /57P01|terminat/);
        await waitFor(() => lines.filter((l) => l.includes('"db_connection_lost"')).length >= 2, { what: 'both losses logged' });
        bare.release(true);
        session.release();
        // the pool replaces them: the next statement works
        assert.equal((await pool.query<{ x: number }>('SELECT 7 AS x')).rows[0]!.x, 7);
      } finally {
        await pool.end();
      }
    });
  });
});
