import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { localDate, addDays, dateRange } from '../src/time.js';
import { SA_EMAIL, logLines, runCli, startFake, testDb, untilScheduleFired, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const LA = '111111';
const NZ = '222222';
const DENIED = '333333';

const reports = {
  daily: { metrics: ['sessions', 'totalUsers', 'screenPageViews'], startDate: '12daysAgo', refreshDays: 3 },
  devices: { dimensions: ['deviceCategory', 'country'], metrics: ['sessions', 'bounceRate', 'eventCount'], startDate: '6daysAgo', refreshDays: 2 },
};

/** What the generator says a report holds for a property and date, summed per metric. */
function expectedSums(property: string, date: string, dims: string[], metrics: string[]) {
  const rows = generateReport({ propertyId: property, date, dimensions: dims, metrics });
  return { rows: rows.length, sums: metrics.map((_, i) => rows.reduce((s, r) => s + r.values[i]!, 0)) };
}

describe('run --once against the fake Google', () => {
  let db: TestDb;
  let g: FakeSetup;
  let config: string;

  before(async () => {
    db = await testDb('pipeline');
    // a small page size, so every report needs several pages
    g = await startFake(
      [
        { id: LA, timeZone: 'America/Los_Angeles' },
        { id: NZ, timeZone: 'Pacific/Auckland' },
      ],
      { maxPageSize: 25 },
    );
    config = writeConfig(g.dir, db, g, { properties: [{ id: LA }, { id: NZ }], reports, schedule: '0 4 * * *' });
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it("writes exactly the generator's numbers for two properties and two reports", async () => {
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    const now = Date.now();
    for (const property of [LA, NZ]) {
      const tz = property === LA ? 'America/Los_Angeles' : 'Pacific/Auckland';
      const today = localDate(now, tz);
      const daily = await db.query<{ date: string; sessions: string; total_users: string; screen_page_views: string }>(
        `SELECT to_char(date,'YYYY-MM-DD') AS date, sessions, total_users, screen_page_views FROM "${db.schema}".daily WHERE property_id = $1 ORDER BY date`,
        [property],
      );
      assert.deepEqual(
        daily.map((d) => d.date),
        dateRange(addDays(today, -12), addDays(today, -1)),
        `${property}: every date through the property's yesterday`,
      );
      for (const d of daily) {
        const want = expectedSums(property, d.date, [], reports.daily.metrics);
        assert.deepEqual([Number(d.sessions), Number(d.total_users), Number(d.screen_page_views)], want.sums, `${property} ${d.date}`);
      }
      const devices = await db.query<{ date: string; n: string; sessions: string; bounce: number; events: string }>(
        `SELECT to_char(date,'YYYY-MM-DD') AS date, count(*) AS n, sum(sessions) AS sessions, sum(bounce_rate) AS bounce, sum(event_count) AS events
           FROM "${db.schema}".devices WHERE property_id = $1 GROUP BY date ORDER BY date`,
        [property],
      );
      assert.equal(devices.length, 6);
      for (const d of devices) {
        const want = expectedSums(property, d.date, reports.devices.dimensions, reports.devices.metrics);
        assert.equal(Number(d.n), want.rows, `${property} ${d.date} row count`);
        assert.equal(Number(d.sessions), want.sums[0]);
        assert.ok(Math.abs(d.bounce - want.sums[1]!) < 1e-6, `bounceRate ${d.bounce} vs ${want.sums[1]}`);
        assert.equal(Number(d.events), want.sums[2]);
      }
    }
    const dup = await db.query(`SELECT property_id, date, device_category, country FROM "${db.schema}".devices GROUP BY 1,2,3,4 HAVING count(*) > 1`);
    assert.equal(dup.length, 0, 'no duplicate rows');
    const ledger = await db.query<{ report: string; n: string; rows: string }>(
      `SELECT report, count(*) AS n, sum(row_count) AS rows FROM "${db.schema}".fetch_days GROUP BY report ORDER BY report`,
    );
    const stored = await db.query<{ n: string }>(`SELECT count(*) AS n FROM "${db.schema}".devices`);
    assert.equal(ledger.find((l) => l.report === 'devices')!.rows, stored[0]!.n, 'the ledger agrees with the data');
    // paging happened: the devices report needed several pages per range
    const pages = g.fake.events.filter((e) => e.kind === 'runReport' && (e.offset ?? 0) > 0);
    assert.ok(pages.length >= 4, `expected several pages, saw ${pages.length}`);
    // logs are JSON lines with property and report
    const lines = logLines(r.stdout);
    assert.ok(lines.some((l) => l['event'] === 'job_succeeded' && l['property'] === LA && l['report'] === 'devices'));
  });

  it('a second run right away rewrites nothing: the window was fetched after the schedule last fired', async () => {
    const before = await db.query<{ k: string; t: Date }>(`SELECT property_id||report||date AS k, fetched_at AS t FROM "${db.schema}".fetch_days`);
    const calls = g.fake.counts().runReport;
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(g.fake.counts().runReport, calls, 'no API call');
    const afterRows = await db.query<{ k: string; t: Date }>(`SELECT property_id||report||date AS k, fetched_at AS t FROM "${db.schema}".fetch_days`);
    assert.deepEqual(afterRows.map((x) => [x.k, x.t.getTime()]).sort(), before.map((x) => [x.k, x.t.getTime()]).sort());
  });

  it('when the schedule has fired since, a run rewrites the refresh window and nothing else', async () => {
    const every = writeConfig(g.dir, db, g, { properties: [{ id: LA }, { id: NZ }], reports, schedule: '* * * * * *' });
    const before = new Map(
      (await db.query<{ k: string; t: Date }>(`SELECT property_id||' '||report||' '||date AS k, fetched_at AS t FROM "${db.schema}".fetch_days`)).map((x) => [
        x.k,
        x.t.getTime(),
      ]),
    );
    await untilScheduleFired(); // the every-second schedule fires after the last fetch
    const r = await runCli(['run', '--once', '--config', every]);
    assert.equal(r.code, 0, r.stderr);
    const rows = await db.query<{ property_id: string; report: string; date: string; t: Date }>(
      `SELECT property_id, report, to_char(date,'YYYY-MM-DD') AS date, fetched_at AS t FROM "${db.schema}".fetch_days`,
    );
    for (const row of rows) {
      const tz = row.property_id === LA ? 'America/Los_Angeles' : 'Pacific/Auckland';
      const refreshDays = reports[row.report as keyof typeof reports].refreshDays;
      const inWindow = row.date >= addDays(localDate(Date.now(), tz), -refreshDays);
      const rewritten = row.t.getTime() !== before.get(`${row.property_id} ${row.report} ${row.date}`);
      assert.equal(rewritten, inWindow, `${row.property_id} ${row.report} ${row.date}: rewritten=${rewritten}, in window=${inWindow}`);
    }
  });
});

describe('a property the service account may not read', () => {
  let db: TestDb;
  let g: FakeSetup;

  before(async () => {
    db = await testDb('denied');
    g = await startFake([
      { id: LA, timeZone: 'America/Los_Angeles' },
      { id: DENIED, timeZone: 'Europe/Berlin', grant: false },
    ]);
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('fails with a message naming the account and the property and how to grant access; the other succeeds', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: DENIED }, { id: LA }], reports: { daily: reports.daily } });
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${SA_EMAIL}.*property ${DENIED}.*Viewer`));
    assert.match(r.stderr, /Property access management/);
    const rows = await db.query<{ property_id: string; n: string }>(`SELECT property_id, count(*) AS n FROM "${db.schema}".daily GROUP BY 1`);
    assert.deepEqual(
      rows.map((x) => [x.property_id, Number(x.n)]),
      [[LA, 12]],
    );
    // a permanent error is not retried (the first request is the metadata check of the report's names)
    const denied = g.fake.events.filter((e) => e.property === DENIED && e.kind !== 'token');
    assert.equal(denied.length, 1, 'one request, no retries');
    assert.equal(denied[0]!.status, 403);
  });
});
