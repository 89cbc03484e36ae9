/**
 * A Data API request that is accepted and never answered, with the request timeout far away, so
 * only the job watchdog can end the job: `ga-collector run` aborts it at fetch.jobDeadlineSeconds,
 * logs job_stuck, counts the failure, closes the job's database connection with its lock, shows
 * the job's age on /metrics while it runs, and, once Google answers again, fetches the data in the
 * same process.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { lockKey } from '../src/store/locks.js';
import { metricSum, startFake, testDb, waitFor, writeConfig, type FakeSetup, type TestDb } from './helpers.js';
import { get, startDaemon, type DaemonProcess } from './ops-helpers.js';

const HUNG = '810001';
const FINE = '810002';
const DEADLINE_S = 6;
const daily = { metrics: ['sessions', 'screenPageViews'], startDate: '6daysAgo', refreshDays: 2 };

/** Every stored date of a property: one row, Google's values, and the ledger's row_count agrees. */
async function assertExact(db: TestDb, property: string): Promise<number> {
  const rows = await db.query<{ date: string; n: string; a: string; b: string; row_count: number }>(
    `SELECT to_char(d.date,'YYYY-MM-DD') AS date, count(*) AS n, sum(sessions)::text AS a, sum(screen_page_views)::text AS b, max(f.row_count) AS row_count
       FROM "${db.schema}".daily d JOIN "${db.schema}".fetch_days f USING (property_id, date)
      WHERE d.property_id = $1 AND f.report = 'daily' GROUP BY d.date ORDER BY d.date`,
    [property],
  );
  for (const r of rows) {
    const want = generateReport({ propertyId: property, date: r.date, dimensions: [], metrics: daily.metrics });
    assert.equal(Number(r.n), 1, `${property} ${r.date}: one row, no duplicates`);
    assert.equal(r.row_count, 1, `${property} ${r.date}: ledger row_count`);
    assert.deepEqual([Number(r.a), Number(r.b)], [want[0]!.values[0], want[0]!.values[1]], `${property} ${r.date}: Google's values`);
  }
  return rows.length;
}

describe('a fetch that Google never answers', () => {
  let db: TestDb;
  let g: FakeSetup;
  let daemon: DaemonProcess;

  before(async () => {
    db = await testDb('stuck_fetch');
    g = await startFake([
      { id: HUNG, timeZone: 'UTC' },
      { id: FINE, timeZone: 'UTC' },
    ]);
  });
  after(async () => {
    await daemon?.stop();
    await g?.stop();
    await db?.drop();
  });

  it('is aborted by the watchdog at the job deadline, and the data comes once Google answers, in the same process', async () => {
    g.fake.inject({ endpoint: 'runReport', property: HUNG, kind: 'hang' });
    const config = writeConfig(g.dir, db, g, {
      properties: [{ id: HUNG }, { id: FINE }],
      reports: { daily },
      schedule: '0 4 * * *',
      // the request timeout is far away: only the watchdog can end the hung job
      fetch: { jobDeadlineSeconds: DEADLINE_S, timeoutSeconds: 600 },
      http: { host: '127.0.0.1', port: 0 },
    });
    daemon = await startDaemon(config);
    const pid = daemon.child.pid!;
    const events = (event: string, property?: string) =>
      daemon.logs().filter((l) => l['event'] === event && (property === undefined || l['property'] === property));
    const scrape = async () => (await get(`${daemon.url}/metrics`)).body;

    // the hung job holds its property's advisory lock on a connection of its own
    const hung = await waitFor(() => g.fake.events.find((e) => e.property === HUNG && e.fault === 'hang'), { what: 'the request that hangs' });
    const key = BigInt.asUintN(64, BigInt(lockKey(db.schema, 'job', HUNG, 'daily')));
    // while it runs: who holds its lock, and its age on /metrics
    const [holder, age] = await Promise.all([
      waitFor(
        async () => {
          const rows = await db.query<{ pid: number }>(
            `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 1`,
            [String(key >> 32n), String(key & 0xffffffffn)],
          );
          return rows[0]?.pid;
        },
        { what: "the hung job's advisory lock" },
      ),
      waitFor(
        async () => {
          const v = metricSum(await scrape(), 'ga_collector_oldest_running_job_seconds');
          return v >= 1 ? v : 0;
        },
        { what: 'ga_collector_oldest_running_job_seconds counting' },
      ),
    ]);
    assert.ok(age < DEADLINE_S + 30, `age ${age} s`);

    const stuck = await waitFor(() => events('job_stuck', HUNG)[0], { timeoutMs: 30_000, what: 'job_stuck' });
    g.fake.clearFaults();
    assert.equal(stuck['report'], 'daily');
    assert.equal(stuck['deadlineSeconds'], DEADLINE_S);
    assert.ok((stuck['durationMs'] as number) >= DEADLINE_S * 990, `ran ${String(stuck['durationMs'])} ms`);

    // the request was torn down, and the job's connection closed rather than handed back to the pool
    // (an idle pooled connection would live on for 30 s), which also let go of the lock
    await waitFor(() => hung.respondedAt > 0, { what: 'the hung request closed by the daemon' });
    await waitFor(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1`, [holder])).length === 0, {
      what: "the aborted job's database connection closed",
    });

    // the other property was fetched meanwhile; the hung one once Google answers (a retry after a pause)
    await waitFor(() => events('job_succeeded', HUNG)[0], { timeoutMs: 60_000, what: 'the retried job succeeding' });
    assert.ok(events('job_succeeded', FINE).length >= 1, 'the other property was fetched');
    assert.equal(await assertExact(db, HUNG), 6, 'every date of the hung property, whole');
    assert.equal(await assertExact(db, FINE), 6);

    const text = await scrape();
    assert.equal(metricSum(text, 'ga_collector_oldest_running_job_seconds'), 0, 'nothing running now');
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: HUNG, outcome: 'failure' }), 1, 'the stuck run is a failure');
    assert.equal(metricSum(text, 'ga_collector_fetch_runs_total', { property: HUNG, outcome: 'success' }), 1);
    assert.equal(metricSum(text, 'ga_collector_jobs_aborted_total', { reason: 'deadline' }), 1);
    assert.equal(metricSum(text, 'ga_collector_job_deadline_seconds'), DEADLINE_S);

    // one process throughout
    assert.equal(daemon.child.exitCode, null, daemon.out.stderr);
    assert.equal(daemon.child.pid, pid);
    assert.ok(fs.existsSync(`/proc/${pid}`), 'the daemon process is still there');
    assert.equal(events('started').length, 1, 'started once');
  });
});
