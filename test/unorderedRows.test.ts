/**
 * Rows out of date order (an endpoint that ignores `orderBys`; Google honours them): the page loop
 * falls back to reading the whole range, and every date is stored once, exactly, whatever the page
 * size, with and without dimensions. Dates the streaming read handed out before it saw the
 * disorder are replaced whole by the buffered read: a batch never holds a date twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { addDays } from '../src/time.js';
import { makeDaemon, startFake, testDb, type FakeSetup, type TestDb } from './helpers.js';

const P = '710001';
const METRICS = ['sessions', 'totalUsers'];

describe('rows newest first (orderBys ignored)', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('unordered');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    g.fake.inject({ endpoint: 'runReport', kind: 'reverse' });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  for (const dimensions of [[], ['country']]) {
    for (const pageSize of [1, 2, 250_000]) {
      const grain = dimensions.length ? 'by date and country' : 'by date alone';
      it(`${grain}, pages of ${pageSize}: one run stores every date exactly once, totals too`, async () => {
        await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
        const daemon = await makeDaemon(
          db,
          g,
          {
            properties: [{ id: P }],
            reports: { r: { dimensions, metrics: METRICS, startDate: '3daysAgo', refreshDays: 1 } },
            fetch: { pageSize },
          },
          { backoffBaseMs: 5 },
        );
        try {
          g.fake.events.length = 0;
          const [res] = await daemon.scheduler.runOnce();
          assert.equal(res!.ok, true, res!.error);
          const served = g.fake.events.filter((e) => e.kind === 'runReport' && e.fault === 'reverse' && (e.rows ?? 0) > 0);
          assert.ok(served.length > 0, 'rows were served newest first');

          const today = g.fake.todayOf(P);
          const dates = [3, 2, 1].map((n) => addDays(today, -n));
          const dimCols = dimensions.length ? ', country' : '';
          const stored = await db.query<{ date: string; country?: string; sessions: string; total_users: string }>(
            `SELECT to_char(date, 'YYYY-MM-DD') AS date${dimCols}, sessions::text, total_users::text FROM "${db.schema}".r WHERE property_id = $1 ORDER BY 1${dimensions.length ? ', 2' : ''}`,
            [P],
          );
          const want: Array<Record<string, string>> = [];
          for (const date of dates) {
            const rows = generateReport({ propertyId: P, date, dimensions, metrics: METRICS });
            rows.sort((a, b) => (a.dims[0]! < b.dims[0]! ? -1 : a.dims[0]! > b.dims[0]! ? 1 : 0));
            for (const row of rows)
              want.push({ date, ...(dimensions.length ? { country: row.dims[0]! } : {}), sessions: String(row.values[0]), total_users: String(row.values[1]) });
          }
          assert.deepEqual(
            stored.map((r) => ({ ...r })),
            want,
            "the table holds exactly Google's rows, each once",
          );

          const ledger = await db.query<{ date: string; row_count: number }>(
            `SELECT to_char(date, 'YYYY-MM-DD') AS date, row_count FROM "${db.schema}".fetch_days WHERE property_id = $1 AND report = 'r' ORDER BY date`,
            [P],
          );
          assert.deepEqual(
            ledger.map((l) => [l.date, l.row_count]),
            dates.map((d) => [d, want.filter((w) => w['date'] === d).length]),
          );

          if (dimensions.length) {
            const totals = await db.query<{ date: string; sessions: string; total_users: string }>(
              `SELECT to_char(date, 'YYYY-MM-DD') AS date, sessions::text, total_users::text FROM "${db.schema}".r_totals WHERE property_id = $1 ORDER BY date`,
              [P],
            );
            // GA's total of a date (distinct users are not a sum of the rows): the row of the report by date alone
            const wantTotals = dates.map((date) => {
              const [total] = generateReport({ propertyId: P, date, dimensions: [], metrics: METRICS });
              return { date, sessions: String(total!.values[0]), total_users: String(total!.values[1]) };
            });
            assert.deepEqual(
              totals.map((t) => ({ ...t })),
              wantTotals,
              'one totals row per date',
            );
          }
        } finally {
          await daemon.stop(0);
        }
      });
    }
  }
});

describe('rows out of order, then the whole read fails', () => {
  it('dates stored before the disorder showed are removed (gaps fetched next run), never left as complete', async () => {
    const db = await testDb('unordfail');
    const g = await startFake([{ id: P, timeZone: 'UTC' }], { maxPageSize: 1 });
    const daemon = await makeDaemon(
      db,
      g,
      {
        properties: [{ id: P }],
        reports: { d: { dimensions: [], metrics: ['sessions'], startDate: '6daysAgo', refreshDays: 1 } },
        // one page at a time, so the late third page holds back the fourth, which shows the disorder
        fetch: { pageSize: 1, maxAttempts: 2, perPropertyConcurrency: 1 },
      },
      { backoffBaseMs: 5 },
    );
    try {
      const today = g.fake.todayOf(P);
      const first = addDays(today, -6);
      let broken = false;
      // after the disorder, every request fails: the buffered read cannot replace what was stored
      g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 503, match: () => broken });
      // the third page comes late, so the batch of the first two dates is written before the fourth page shows the disorder
      g.fake.inject({ endpoint: 'runReport', kind: 'delay', delayMs: 1_200, times: 1, match: (r) => r.offset === 2 });
      g.fake.inject({
        endpoint: 'runReport',
        kind: 'rewrite',
        times: 1,
        match: (r) => r.offset === 3,
        rewrite: (body) => {
          broken = true;
          const rows = body['rows'] as Array<{ dimensionValues: Array<{ value: string }> }>;
          rows[0]!.dimensionValues[0]!.value = first.replaceAll('-', '');
          return body;
        },
      });
      const [res] = await daemon.scheduler.runOnce();
      assert.equal(res!.ok, false, 'the job fails');
      assert.match(res!.error!, /503/);
      const ledger = await db.query<{ date: string }>(`SELECT to_char(date, 'YYYY-MM-DD') AS date FROM "${db.schema}".fetch_days WHERE property_id = $1`, [P]);
      const rows = await db.query<{ date: string }>(`SELECT to_char(date, 'YYYY-MM-DD') AS date FROM "${db.schema}".d WHERE property_id = $1`, [P]);
      assert.deepEqual(
        [ledger.length, rows.length],
        [0, 0],
        `no date kept from the inconsistent read (ledger ${JSON.stringify(ledger)}, rows ${JSON.stringify(rows)})`,
      );
      const delayed = g.fake.events.filter((e) => e.fault === 'delay');
      assert.equal(delayed.length, 1, 'the late page was served');

      // Google is well again: the next run fetches every date
      g.fake.clearFaults();
      const [again] = await daemon.scheduler.runOnce();
      assert.equal(again!.ok, true, again!.error);
      const stored = await db.query<{ date: string; sessions: string }>(
        `SELECT to_char(date, 'YYYY-MM-DD') AS date, sessions::text FROM "${db.schema}".d WHERE property_id = $1 ORDER BY date`,
        [P],
      );
      assert.deepEqual(
        stored.map((r) => [r.date, r.sessions]),
        [6, 5, 4, 3, 2, 1].map((n) => {
          const date = addDays(today, -n);
          return [date, String(generateReport({ propertyId: P, date, dimensions: [], metrics: ['sessions'] })[0]!.values[0])];
        }),
      );
    } finally {
      await daemon.stop(0);
      await g.stop();
      await db.drop();
    }
  });
});
