/**
 * The data promise: for every date since startDate the tables hold exactly what Google reports,
 * whatever happened. Gaps, the refresh window, time zones, atomic days, backfill locks,
 * definition changes and GA's own totals.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { generateReport } from '@ga-collector/fake-google';
import { lockKey } from '../src/store/locks.js';
import { PermanentError } from '../src/errors.js';
import { fetchTotalsIfServed } from '../src/ga4/totals.js';
import { createLogger } from '../src/log.js';
import { addDays, localDate } from '../src/time.js';
import {
  logLines,
  makeDaemon,
  metricSum,
  runCli,
  startCli,
  startFake,
  testDb,
  untilScheduleFired,
  writeConfig,
  waitFor,
  type FakeSetup,
  type TestDb,
} from './helpers.js';

const A = '500001';
const B = '500002';

const sums = (property: string, date: string, metrics: string[], dims: string[] = [], revision = 0) => {
  const rows = generateReport({ propertyId: property, date, dimensions: dims, metrics, revision });
  return metrics.map((_, i) => rows.reduce((s, r) => s + r.values[i]!, 0));
};

describe('catch-up after downtime', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('catchup');
    g = await startFake([
      { id: A, timeZone: 'Europe/Berlin' },
      { id: B, timeZone: 'Asia/Tokyo' },
    ]);
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('bounds each run per property and shows the backlog in dates_pending', async () => {
    const reports = { daily: { metrics: ['sessions'], startDate: '40daysAgo', refreshDays: 3 } };
    const daemon = await makeDaemon(db, g, { properties: [{ id: A }], reports, fetch: { maxDaysPerRun: 10 } });
    try {
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      assert.equal(r!.dates, 10);
      const stored = await db.query<{ date: string }>(`SELECT to_char(date,'YYYY-MM-DD') AS date FROM "${db.schema}".fetch_days ORDER BY date`);
      const today = localDate(Date.now(), 'Europe/Berlin');
      // the oldest backlog first, and the refresh window always
      assert.deepEqual(
        stored.map((s) => s.date),
        [...Array.from({ length: 7 }, (_, i) => addDays(today, -40 + i)), addDays(today, -3), addDays(today, -2), addDays(today, -1)],
      );
      const text = await daemon.metrics.text();
      assert.equal(metricSum(text, 'ga_collector_dates_pending', { property: A, report: 'daily' }), 30);
      const [r2] = await daemon.scheduler.runOnce();
      assert.equal(r2!.dates, 10);
      assert.equal(metricSum(await daemon.metrics.text(), 'ga_collector_dates_pending', { property: A, report: 'daily' }), 20);
    } finally {
      await daemon.stop(0);
    }
  });

  it('in daemon mode drains every backlog in turns, so one property cannot starve another', async () => {
    const reports = { daily: { metrics: ['sessions', 'totalUsers'], startDate: '60daysAgo', refreshDays: 2 } };
    g.fake.events.length = 0;
    const daemon = await makeDaemon(
      db,
      g,
      { properties: [{ id: A }, { id: B }], reports, fetch: { maxDaysPerRun: 15 }, concurrency: 1 },
      { continueBacklog: true, upTo: 'schedule' },
    );
    try {
      await waitFor(
        async () => {
          const [n] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".daily WHERE date >= current_date - 62`);
          return Number(n!.n) >= 120;
        },
        { timeoutMs: 30_000, what: '60 days for both properties' },
      );
      const order = g.fake.events.filter((e) => e.kind === 'runReport' && (e.offset ?? 0) === 0 && e.startDate !== e.endDate).map((e) => e.property);
      // with one job at a time, turns alternate between the two properties
      const switches = order.filter((p, i) => i > 0 && p !== order[i - 1]).length;
      assert.ok(switches >= 3, `turns alternate: ${order.join(' ')}`);
      for (const e of g.fake.events.filter((x) => x.kind === 'runReport' && x.startDate && x.endDate)) {
        const span = (Date.parse(e.endDate!) - Date.parse(e.startDate!)) / 86_400_000 + 1;
        assert.ok(span <= 15, `a request spans ${span} days, more than maxDaysPerRun`);
      }
      for (const p of [A, B]) {
        const rows = await db.query<{ date: string; sessions: string; total_users: string }>(
          `SELECT to_char(date,'YYYY-MM-DD') AS date, sessions, total_users FROM "${db.schema}".daily WHERE property_id = $1`,
          [p],
        );
        for (const r of rows) assert.deepEqual([Number(r.sessions), Number(r.total_users)], sums(p, r.date, ['sessions', 'totalUsers']));
      }
    } finally {
      await daemon.stop(0);
    }
  });
});

describe('refresh window', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('refresh');
    g = await startFake([{ id: A, timeZone: 'America/New_York' }], { revision: { days: 4 } });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it("refetches the window on every firing and ends with Google's latest numbers; settled turns true outside it", async () => {
    const reports = { daily: { metrics: ['sessions', 'screenPageViews'], startDate: '10daysAgo', refreshDays: 3 } };
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports, schedule: '* * * * * *' });
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['run', '--once', '--config', config]);
      assert.equal(r.code, 0, r.stderr);
      await untilScheduleFired(); // the every-second schedule fires in between
    }
    const today = localDate(Date.now(), 'America/New_York');
    const windowStart = addDays(today, -3);
    const rows = await db.query<{ date: string; sessions: string; screen_page_views: string; settled: boolean }>(
      `SELECT to_char(d.date,'YYYY-MM-DD') AS date, sessions, screen_page_views, settled
         FROM "${db.schema}".daily d JOIN "${db.schema}".fetch_days f USING (property_id, date) ORDER BY date`,
    );
    assert.equal(rows.length, 10);
    let revised = 0;
    for (const r of rows) {
      const last = g.fake.revisionOf(A, r.date); // the revision of the last first page served
      if (last > 0) revised++;
      assert.deepEqual([Number(r.sessions), Number(r.screen_page_views)], sums(A, r.date, ['sessions', 'screenPageViews'], [], last), r.date);
      assert.equal(r.settled, r.date < windowStart, `${r.date} settled`);
    }
    assert.ok(revised >= 3, 'the window dates were revised and the table has the latest values');
    const calls = g.fake.events.filter((e) => e.kind === 'runReport' && e.startDate && e.startDate < windowStart);
    assert.equal(calls.length, 1, 'dates before the window were fetched once');
  });
});

describe('property time zones', () => {
  for (const instant of ['2026-03-09T23:30:00Z', '2026-03-10T00:30:00Z', '2026-03-10T11:30:00Z']) {
    it(`"yesterday" is each property's own yesterday at ${instant}`, async () => {
      const db = await testDb('tz');
      const now = () => Date.parse(instant);
      const g = await startFake(
        [
          { id: A, timeZone: 'Pacific/Auckland' },
          { id: B, timeZone: 'America/Los_Angeles' },
        ],
        { calendarNow: now },
      );
      const daemon = await makeDaemon(
        db,
        g,
        { properties: [{ id: A }, { id: B }], reports: { daily: { metrics: ['sessions'], startDate: '5daysAgo' } } },
        { now },
      );
      try {
        const results = await daemon.scheduler.runOnce();
        assert.ok(
          results.every((r) => r.ok),
          JSON.stringify(results),
        );
        const last = await db.query<{ property_id: string; d: string; n: string }>(
          `SELECT property_id, to_char(max(date),'YYYY-MM-DD') AS d, count(*) AS n FROM "${db.schema}".daily GROUP BY 1 ORDER BY 1`,
        );
        const want = (tz: string) => addDays(localDate(now(), tz), -1);
        assert.deepEqual(
          last.map((l) => [l.property_id, l.d, Number(l.n)]),
          [
            [A, want('Pacific/Auckland'), 5],
            [B, want('America/Los_Angeles'), 5],
          ],
        );
        const zones = await db.query<{ property_id: string; time_zone: string }>(`SELECT property_id, time_zone FROM "${db.schema}".properties ORDER BY 1`);
        assert.deepEqual(
          zones.map((z) => z.time_zone),
          ['Pacific/Auckland', 'America/Los_Angeles'],
        );
      } finally {
        await daemon.stop(0);
        await g.stop();
        await db.drop();
      }
    });
  }
});

describe('atomic days', () => {
  it('a reader never sees a partial, doubled or mixed date while dates are replaced', async () => {
    const db = await testDb('atomic');
    const g = await startFake([{ id: A, timeZone: 'UTC' }], { revision: { days: 8 }, maxPageSize: 40 });
    const dims = ['deviceCategory', 'country'];
    const metrics = ['sessions', 'eventCount'];
    const daemon = await makeDaemon(db, g, {
      properties: [{ id: A }],
      reports: { devices: { dimensions: dims, metrics, startDate: '6daysAgo', refreshDays: 6 } },
    });
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    let stop = false;
    let reads = 0;
    const problems: string[] = [];
    const readLoop = (async () => {
      while (!stop) {
        // one statement, one snapshot: the ledger and the rows of every date (the relation comes with the first stored date)
        const { rows } = await reader
          .query(
            `SELECT to_char(f.date,'YYYY-MM-DD') AS date, f.row_count, count(d.*)::int AS n,
                  count(DISTINCT (d.device_category, d.country))::int AS distinct_n, coalesce(sum(d.sessions),0)::text AS sessions
             FROM "${db.schema}".fetch_days f LEFT JOIN "${db.schema}".devices d ON d.property_id = f.property_id AND d.date = f.date
            GROUP BY f.date, f.row_count`,
          )
          .catch((err: { code?: string }) => {
            if (err.code === '42P01') return { rows: [] };
            throw err;
          });
        reads++;
        for (const r of rows) {
          if (r.n !== r.row_count) problems.push(`${r.date}: ${r.n} rows but the ledger says ${r.row_count}`);
          if (r.distinct_n !== r.n) problems.push(`${r.date}: duplicate rows`);
          const known = Array.from({ length: 40 }, (_, rev) => String(sums(A, r.date, metrics, dims, rev)[0]));
          if (!known.includes(r.sessions)) problems.push(`${r.date}: sessions ${r.sessions} is no version Google served (a mix)`);
        }
      }
    })();
    try {
      for (let i = 0; i < 6; i++) {
        const tokens = daemon.tokens.forKeyFile(g.keyFile);
        const r = await daemon.runner.run({ propertyId: A, report: 'devices', tokens, lastFire: new Date(Date.now() + 60_000) }, new AbortController().signal);
        assert.equal(r.ok, true, r.error);
      }
    } finally {
      stop = true;
      await readLoop;
      await reader.end();
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
    assert.ok(reads > 20, `the reader ran (${reads} reads)`);
    assert.deepEqual(problems.slice(0, 5), []);
  });
});

describe('backfill', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('backfill');
    g = await startFake([{ id: A, timeZone: 'UTC' }], { revision: { days: 400 } });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('takes the same lock as the scheduler and replaces a stored range', async () => {
    const reports = { daily: { metrics: ['sessions'], startDate: '20daysAgo' } };
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports });
    const from = addDays(localDate(Date.now(), 'UTC'), -15);
    const to = addDays(from, 4);
    const r = await runCli(['backfill', '--config', config, '--property', A, '--from', from, '--to', to]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /5 dates/);
    // hold the job's lock as a running daemon would: the backfill waits for it
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1)', [lockKey(db.schema, 'job', A, 'daily')]);
    const calls = g.fake.counts().runReport;
    const pending = startCli(['backfill', '--config', config, '--property', A, '--from', from, '--to', to], { env: { LOG_LEVEL: 'debug' } });
    await waitFor(() => logLines(pending.out.stdout).some((l) => l['event'] === 'job_waiting_for_lock') || pending.child.exitCode !== null, {
      what: 'the backfill waiting for the lock',
    });
    assert.equal(g.fake.counts().runReport, calls, 'no request while the lock is held');
    await holder.query('SELECT pg_advisory_unlock($1)', [lockKey(db.schema, 'job', A, 'daily')]);
    await holder.end();
    const exit = await pending.exited;
    assert.equal(exit.code, 0, pending.out.stderr);
    const rows = await db.query<{ date: string; sessions: string; n: string }>(
      `SELECT to_char(date,'YYYY-MM-DD') AS date, max(sessions) AS sessions, count(*) AS n FROM "${db.schema}".daily GROUP BY date ORDER BY date`,
    );
    assert.equal(rows.length, 5);
    for (const row of rows) {
      assert.equal(Number(row.n), 1, 'replaced, not duplicated');
      const rev = g.fake.revisionOf(A, row.date);
      assert.equal(rev, 2, 'fetched twice');
      assert.equal(Number(row.sessions), sums(A, row.date, ['sessions'], [], rev)[0], 'the second backfill replaced the first');
    }
  });
});

describe('changing a report definition', () => {
  it('adds columns and refetches history when fields are added; keeps columns when removed', async () => {
    const db = await testDb('defchange');
    const g = await startFake([{ id: A, timeZone: 'UTC' }]);
    try {
      const v1 = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports: { daily: { metrics: ['sessions'], startDate: '8daysAgo' } } });
      assert.equal((await runCli(['run', '--once', '--config', v1])).code, 0);
      const v2 = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports: { daily: { metrics: ['sessions', 'newUsers'], startDate: '8daysAgo' } } });
      const r2 = await runCli(['run', '--once', '--config', v2]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.match(r2.stdout, /report_definition_changed/);
      const rows = await db.query<{ date: string; sessions: string; new_users: string | null }>(
        `SELECT to_char(date,'YYYY-MM-DD') AS date, sessions, new_users FROM "${db.schema}".daily`,
      );
      assert.equal(rows.length, 8);
      for (const r of rows)
        assert.deepEqual([Number(r.sessions), Number(r.new_users)], sums(A, r.date, ['sessions', 'newUsers']), `history refetched for ${r.date}`);
      const v3 = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports: { daily: { metrics: ['newUsers'], startDate: '8daysAgo' } } });
      assert.equal((await runCli(['run', '--once', '--config', v3])).code, 0);
      const cols = await db.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'daily' ORDER BY ordinal_position`,
        [db.schema],
      );
      assert.deepEqual(
        cols.map((c) => c.column_name),
        ['property_id', 'date', 'sessions', 'new_users'],
      );
      const kept = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".daily WHERE sessions IS NOT NULL AND new_users IS NOT NULL`);
      assert.equal(Number(kept[0]!.n), 8, 'nothing lost');
    } finally {
      await g.stop();
      await db.drop();
    }
  });
});

describe("GA's per-date totals", () => {
  it('are stored beside a report with dimensions and differ from row sums for user counts', async () => {
    const db = await testDb('totals');
    const g = await startFake([{ id: A, timeZone: 'UTC' }]);
    const metrics = ['sessions', 'totalUsers'];
    const daemon = await makeDaemon(db, g, { properties: [{ id: A }], reports: { countries: { dimensions: ['country'], metrics, startDate: '5daysAgo' } } });
    try {
      const [r] = await daemon.scheduler.runOnce();
      assert.equal(r!.ok, true, r!.error);
      const rows = await db.query<{ date: string; sessions: string; total_users: string; row_sessions: string; row_users: string }>(
        `SELECT to_char(t.date,'YYYY-MM-DD') AS date, t.sessions, t.total_users, sum(c.sessions) AS row_sessions, sum(c.total_users) AS row_users
           FROM "${db.schema}".countries_totals t JOIN "${db.schema}".countries c USING (property_id, date) GROUP BY 1,2,3 ORDER BY 1`,
      );
      assert.equal(rows.length, 5);
      const tokens = daemon.tokens.forKeyFile(g.keyFile);
      let fewer = 0;
      for (const row of rows) {
        // what Google says the total of that date is
        const res = await daemon.client.runReport(
          { propertyId: A, tokens, logger: (await import('../src/log.js')).createLogger('silent') },
          {
            dateRanges: [{ startDate: row.date, endDate: row.date }],
            dimensions: [{ name: 'date' }, { name: 'country' }],
            metrics: metrics.map((name) => ({ name })),
            metricAggregations: ['TOTAL'],
            limit: '1',
          },
        );
        const total = res.totals![0]!.metricValues!.map((m) => Number(m.value));
        assert.deepEqual([Number(row.sessions), Number(row.total_users)], total, row.date);
        assert.equal(Number(row.sessions), Number(row.row_sessions), 'sessions add up');
        if (Number(row.total_users) < Number(row.row_users)) fewer++;
      }
      assert.ok(fewer > 0, 'totalUsers is not the sum of its rows');
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});

describe('totals from a less capable endpoint', () => {
  const def = { name: 'r', dimensions: ['country'], metrics: ['sessions'], startDate: '3daysAgo', refreshDays: 1 };
  const ctx = { propertyId: '1', tokens: {} as never, logger: createLogger('silent') };

  it('stores the report without totals when the totals request is refused', async () => {
    const refuse = async () => {
      throw new PermanentError('totals refused', 'invalid_argument');
    };
    const client = { runReportPage: refuse, runReportPageStream: refuse } as never;
    assert.equal(await fetchTotalsIfServed(client, ctx, def, '2024-01-01', '2024-01-03', { pageSize: 100 }), null);
  });

  it('a report by date alone has a totals view that is the report itself', async () => {
    const db = await testDb('totalsview');
    const g = await startFake([{ id: A, timeZone: 'UTC' }]);
    const daemon = await makeDaemon(db, g, { properties: [{ id: A }], reports: { daily: { metrics: ['sessions', 'totalUsers'], startDate: '3daysAgo' } } });
    try {
      await daemon.scheduler.runOnce();
      const a = await db.query(`SELECT * FROM "${db.schema}".daily ORDER BY date`);
      const b = await db.query(`SELECT * FROM "${db.schema}".daily_totals ORDER BY date`);
      assert.equal(b.length, 3);
      assert.deepEqual(b, a);
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});
