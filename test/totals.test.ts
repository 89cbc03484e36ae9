/**
 * GA's per-date totals of a report with dimensions (`<report>_totals`) come from one companion
 * listing per range: the report's metrics by date alone, whose row of a date is GA's total of that
 * date (users counted once, so fewer than the report's rows add up to; sessions add up). The fake
 * counts a user on every row of a day they appear on, as GA does, so a sum would show.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport, type FakeEvent } from '@ga-collector/fake-google';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { addDays } from '../src/time.js';
import { logLines, makeDaemon, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '740001';
const DIMS = ['country', 'deviceCategory'];
const METRICS = ['sessions', 'totalUsers', 'activeUsers', 'screenPageViews'];

/** The runReport requests of a run: the report's pages (by date and its dimensions), and the totals (by date alone, not the limit-1 time zone probe). */
function requests(events: FakeEvent[]): { data: FakeEvent[]; totals: FakeEvent[] } {
  const reports = events.filter((e) => e.kind === 'runReport' && e.property === P && e.status === 200);
  return {
    data: reports.filter((e) => (e.dimensions?.length ?? 0) > 1),
    totals: reports.filter((e) => e.dimensions?.join() === 'date' && e.limit !== 1),
  };
}

/** The ranges the report's listings read: one first page each. */
function ranges(data: FakeEvent[]): string[] {
  return [...new Set(data.filter((e) => e.offset === 0).map((e) => `${e.startDate}..${e.endDate}`))];
}

describe("GA's per-date totals, one request per range", () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('totalsone');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it("60 days by date, country and device: each date's totals are the fake's TOTAL; users are fewer than the rows add up to, sessions add up; one totals request per range", async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    const report = { dimensions: DIMS, metrics: METRICS, startDate: '60daysAgo', refreshDays: 1 };
    // pages of 1000 rows: the report takes several, its 60 totals rows one
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { r: report }, fetch: { pageSize: 1000 } });
    try {
      g.fake.events.length = 0;
      const [res] = await daemon.scheduler.runOnce();
      assert.equal(res!.ok, true, res!.error);
      assert.equal(res!.dates, 60);
      const { data, totals } = requests(g.fake.events);

      const stored = await db.query<{ date: string; sessions: string; total_users: string; active_users: string; screen_page_views: string }>(
        `SELECT to_char(date, 'YYYY-MM-DD') AS date, sessions::text, total_users::text, active_users::text, screen_page_views::text
           FROM "${db.schema}".r_totals WHERE property_id = $1 ORDER BY date`,
        [P],
      );
      const sums = await db.query<{ date: string; sessions: string; total_users: string; active_users: string; screen_page_views: string }>(
        `SELECT to_char(date, 'YYYY-MM-DD') AS date, sum(sessions)::text AS sessions, sum(total_users)::text AS total_users,
                sum(active_users)::text AS active_users, sum(screen_page_views)::text AS screen_page_views
           FROM "${db.schema}".r WHERE property_id = $1 GROUP BY 1 ORDER BY 1`,
        [P],
      );
      const today = g.fake.todayOf(P);
      const dates = Array.from({ length: 60 }, (_, i) => addDays(today, -60 + i));
      assert.deepEqual(
        stored.map((s) => s.date),
        dates,
        'one totals row per date',
      );
      assert.deepEqual(
        sums.map((s) => s.date),
        dates,
      );

      const tokens = daemon.tokens.forKeyFile(g.keyFile);
      const ctx = { propertyId: P, tokens, logger: createLogger('silent') };
      for (const [i, total] of stored.entries()) {
        const values = [total.sessions, total.total_users, total.active_users, total.screen_page_views].map(Number);
        // what Google says the total of that date is, for the report as defined
        const asked = await daemon.client.runReport(ctx, {
          dateRanges: [{ startDate: total.date, endDate: total.date }],
          dimensions: ['date', ...DIMS].map((name) => ({ name })),
          metrics: METRICS.map((name) => ({ name })),
          metricAggregations: ['TOTAL'],
          limit: '1',
        });
        assert.deepEqual(
          values,
          asked.totals![0]!.metricValues!.map((m) => Number(m.value)),
          `${total.date}: the fake's TOTAL`,
        );
        assert.deepEqual(
          values,
          generateReport({ propertyId: P, date: total.date, dimensions: [], metrics: METRICS })[0]!.values,
          `${total.date}: the day's own figure`,
        );
        const sum = sums[i]!;
        assert.equal(values[0], Number(sum.sessions), `${total.date}: sessions add up`);
        assert.equal(values[3], Number(sum.screen_page_views), `${total.date}: views add up`);
        assert.ok(values[1]! < Number(sum.total_users), `${total.date}: totalUsers ${values[1]} is below the rows' ${sum.total_users}`);
        assert.ok(values[2]! < Number(sum.active_users), `${total.date}: activeUsers ${values[2]} is below the rows' ${sum.active_users}`);
      }

      const read = ranges(data);
      assert.ok(data.length > read.length, `the report took more than a page a range (${data.length} pages, ${read.length} ranges)`);
      assert.equal(totals.length, read.length, 'one totals request per range');
      assert.deepEqual(
        totals.map((e) => `${e.startDate}..${e.endDate}`),
        read,
        'each over its whole range',
      );
    } finally {
      await daemon.stop(0);
    }
  });

  it('a 365-day backfill asks no more than its listing pages and one totals request per range', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    const report = { dimensions: ['deviceCategory'], metrics: METRICS, startDate: '365daysAgo', refreshDays: 1 };
    const daemon = await makeDaemon(db, g, { properties: [{ id: P }], reports: { r: report } });
    try {
      g.fake.events.length = 0;
      const [res] = await daemon.scheduler.runOnce();
      assert.equal(res!.ok, true, res!.error);
      assert.equal(res!.dates, 365);
      const { data, totals } = requests(g.fake.events);
      const read = ranges(data);
      assert.equal(totals.length, read.length, `one totals request per range (${read.join(', ')})`);
      // the default page holds 25,000 rows: a range of at most 365 days by device is one page
      assert.equal(data.length, read.length, 'one page of rows a range');
      assert.equal(data.length + totals.length, 2 * read.length, 'and one of totals');
      const [n] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".r_totals WHERE property_id = $1`, [P]);
      assert.equal(Number(n!.n), 365);
    } finally {
      await daemon.stop(0);
    }
  });

  it('totals refused (400 INVALID_ARGUMENT): the report is stored without them, said once', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    g.fake.clearFaults();
    g.fake.events.length = 0;
    g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 400, match: (r) => r.dimensions.join() === 'date' && r.limit !== 1 });
    const lines: string[] = [];
    const file = writeConfig(g.dir, db, g, {
      properties: [{ id: P }],
      reports: { r: { dimensions: ['deviceCategory'], metrics: METRICS, startDate: '5daysAgo', refreshDays: 1 } },
    });
    const daemon = new Daemon({ config: loadConfig({ file, env: {} }), logger: createLogger('info', { write: (s: string) => void lines.push(s) }) });
    await daemon.start({ upTo: 'services' });
    try {
      const [res] = await daemon.scheduler.runOnce();
      assert.equal(res!.ok, true, res!.error);
      assert.equal(res!.dates, 5);
      const [rows] = await db.query<{ n: string }>(`SELECT count(DISTINCT date)::text AS n FROM "${db.schema}".r WHERE property_id = $1`, [P]);
      assert.equal(Number(rows!.n), 5, 'the report is stored');
      const [t] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".r_totals`);
      assert.equal(Number(t!.n), 0, 'without totals');
      const warned = logLines(lines.join('')).filter((e) => e['event'] === 'totals_unavailable');
      assert.equal(warned.length, 1, JSON.stringify(warned));
      assert.equal(requests(g.fake.events).totals.length, 0, 'the refused request is not counted as answered');
      assert.equal(g.fake.events.filter((e) => e.kind === 'runReport' && e.status === 400).length, 1, 'and not asked again');
    } finally {
      g.fake.clearFaults();
      await daemon.stop(0);
    }
  });
});
