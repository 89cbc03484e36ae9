/**
 * A metric value its column cannot hold ("1.5", "", "NaN", "abc", "1e3" for an integer metric,
 * "abc" for a float one, in a row or in GA's totals) is Google's data, not a bad page: asking
 * again gives it again. So it is never retried as a malformed response; the date that holds it is
 * refused (not stored, its ledger row absent, so it stays due), the other dates are stored, and
 * `run --once` exits 1 naming date, column and value. Once Google sends a number, the next run
 * stores the date.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { addDays } from '../src/time.js';
import { logLines, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '730001';
const DIMS = ['deviceCategory'];
const METRICS = ['sessions', 'engagementRate'];
const devices = { dimensions: DIMS, metrics: METRICS, startDate: '6daysAgo', refreshDays: 1 };

type JsonRow = { dimensionValues: Array<{ value?: string }>; metricValues: Array<{ value?: string }> };
type Stored = { device_category: string; sessions: string; engagement_rate: number };

async function storedDates(db: TestDb): Promise<string[]> {
  const rows = await db.query<{ date: string }>(
    `SELECT to_char(date, 'YYYY-MM-DD') AS date FROM "${db.schema}".fetch_days WHERE property_id = $1 AND report = 'devices' ORDER BY date`,
    [P],
  );
  return rows.map((r) => r.date);
}

async function rowsOf(db: TestDb, date: string): Promise<Stored[]> {
  return db.query(
    `SELECT device_category, sessions::text, engagement_rate FROM "${db.schema}".devices WHERE property_id = $1 AND date = $2 ORDER BY device_category COLLATE "C"`,
    [P, date],
  );
}

async function totalsOf(db: TestDb, date: string): Promise<number> {
  const [row] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".devices_totals WHERE property_id = $1 AND date = $2`, [P, date]);
  return Number(row!.n);
}

/** What the fake has for the date, as the store should hold it. */
function want(date: string): Stored[] {
  return generateReport({ propertyId: P, date, dimensions: DIMS, metrics: METRICS })
    .map((r) => ({ device_category: r.dims[0]!, sessions: String(r.values[0]), engagement_rate: Number(r.values[1]) }))
    .sort((a, b) => (a.device_category < b.device_category ? -1 : a.device_category > b.device_category ? 1 : 0));
}

describe('a metric value its column cannot hold refuses its date alone, and is never retried', () => {
  let db: TestDb;
  let g: FakeSetup;
  let dates: string[];
  before(async () => {
    db = await testDb('unstorable');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    const today = g.fake.todayOf(P);
    dates = [6, 5, 4, 3, 2, 1].map((n) => addDays(today, -n));
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const cases: Array<{ value: string; metric: number; column: string; type: string; totals?: boolean }> = [
    ...['1.5', '', 'NaN', 'abc', '1e3'].map((value) => ({ value, metric: 0, column: 'sessions', type: 'bigint' })),
    { value: 'abc', metric: 1, column: 'engagement_rate', type: 'double precision' },
    { value: '1.5', metric: 0, column: 'devices_totals.sessions', type: 'bigint', totals: true },
  ];
  for (const { value, metric, column, type, totals } of cases) {
    it(`run --once: ${JSON.stringify(value)} for ${column} (${type}) on one of six dates exits 1 naming date, column and value; the other five are stored exactly; the next run, with a number, stores it`, async () => {
      await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
      g.fake.clearFaults();
      const bad = dates[3]!;
      const yyyymmdd = bad.replaceAll('-', '');
      g.fake.inject({
        endpoint: 'runReport',
        kind: 'rewrite',
        // data pages (by date and device), or the totals (the report by date alone; not the
        // time zone probe, which is by date alone too, limit 1)
        match: (r) => (totals ? r.dimensions.length === 1 && r.limit !== 1 : r.dimensions.length > 1),
        rewrite: (body) => {
          const row = ((body['rows'] ?? []) as JsonRow[]).find((r) => r.dimensionValues[0]?.value === yyyymmdd);
          if (row) row.metricValues[metric]!.value = value;
          return body;
        },
      });
      const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports: { devices }, fetch: { pageSize: 40 } });
      const before = g.fake.counts().runReport;
      const r = await runCli(['run', '--once', '--config', config]);
      assert.equal(r.code, 1, r.stderr + r.stdout.slice(-3000));
      assert.deepEqual(
        await storedDates(db),
        dates.filter((d) => d !== bad),
        'the other five dates are stored',
      );
      for (const d of dates) if (d !== bad) assert.deepEqual(await rowsOf(db, d), want(d), d);
      assert.deepEqual(await rowsOf(db, bad), [], 'nothing of the refused date is stored');
      assert.equal(await totalsOf(db, bad), 0, 'nor its totals');
      const lines = logLines(r.stdout);
      const refused = lines.filter((e) => e['event'] === 'date_refused');
      assert.equal(refused.length, 1, `one date_refused line: ${JSON.stringify(refused)}`);
      assert.deepEqual([refused[0]!['date'], refused[0]!['column'], refused[0]!['property'], refused[0]!['report']], [bad, column, P, 'devices']);
      const reason = `Google sent ${JSON.stringify(value)}${totals ? ' in its totals' : ''}, which a ${type} column cannot hold`;
      assert.equal(refused[0]!['err'], reason);
      // the job's failure names date, column and value
      const failure = `1 date(s) refused for a value the column cannot hold, the others are stored; ${bad} column ${column}: ${reason}`;
      assert.ok(
        r.stdout.includes(JSON.stringify(failure).slice(1, -1)) || r.stderr.includes(failure),
        `the failure names date, column and value:\n${r.stderr}\n${r.stdout.slice(-3000)}`,
      );
      // Google's data, not a transport fault: never asked again
      assert.deepEqual(
        lines.filter((e) => e['event'] === 'api_retry'),
        [],
        'no api_retry',
      );
      assert.equal(g.fake.counts().runReport - before, 3, 'each request once: the time zone probe, one totals page, one data page');

      // Google sends a number again: the date is due, and is stored
      g.fake.clearFaults();
      const again = await runCli(['run', '--once', '--config', config]);
      assert.equal(again.code, 0, again.stderr + again.stdout.slice(-3000));
      assert.deepEqual(await storedDates(db), dates);
      assert.deepEqual(await rowsOf(db, bad), want(bad));
      assert.equal(await totalsOf(db, bad), 1);
    });
  }
});
