/**
 * Values PostgreSQL cannot hold. U+0000 (PostgreSQL text cannot hold it) is removed and a lone
 * UTF-16 surrogate replaced by U+FFFD: the row is stored, the change counted in
 * ga_collector_values_sanitized_total and warned about once per date. A value the store refuses
 * (an integer beyond bigint, a number beyond a double) fails only its date: the other dates of the
 * batch are stored, and the job fails naming property, report, date and column.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { generateReport } from '@ga-collector/fake-google';
import { createLogger } from '../src/log.js';
import { addDays } from '../src/time.js';
import { logLines, metricSum, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const P = '720001';
const DIMS = ['country'];
const METRICS = ['sessions', 'engagementRate'];
const report = { dimensions: DIMS, metrics: METRICS, startDate: '4daysAgo', refreshDays: 1 };

/** An in-process daemon whose log lines can be read (`log()`). */
async function daemonWithLog(db: TestDb, g: FakeSetup): Promise<{ daemon: Daemon; log: () => Array<Record<string, unknown>> }> {
  const lines: string[] = [];
  const file = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports: { r: report } });
  const daemon = new Daemon({
    config: loadConfig({ file, env: {} }),
    logger: createLogger('info', { write: (s: string) => void lines.push(s) }),
    backoffBaseMs: 5,
  });
  await daemon.start({ upTo: 'services' });
  return { daemon, log: () => logLines(lines.join('')) };
}

type JsonRow = { dimensionValues: Array<{ value?: string }>; metricValues: Array<{ value?: string }> };

/** A rewrite fault (one: a request meets one fault): on data pages, change the first row of each date given. */
function onDates(g: FakeSetup, changes: Record<string, (row: JsonRow) => void>): void {
  g.fake.inject({
    endpoint: 'runReport',
    kind: 'rewrite',
    match: (r) => r.dimensions.length > 1,
    rewrite: (body) => {
      for (const [date, change] of Object.entries(changes)) {
        const row = ((body['rows'] ?? []) as JsonRow[]).find((r) => r.dimensionValues[0]?.value === date.replaceAll('-', ''));
        if (row) change(row);
      }
      return body;
    },
  });
}

async function storedDates(db: TestDb): Promise<string[]> {
  const rows = await db.query<{ date: string }>(
    `SELECT to_char(date, 'YYYY-MM-DD') AS date FROM "${db.schema}".fetch_days WHERE property_id = $1 AND report = 'r' ORDER BY date`,
    [P],
  );
  return rows.map((r) => r.date);
}

async function rowsOf(db: TestDb, date: string): Promise<Array<{ country: string; sessions: string }>> {
  return db.query(`SELECT country, sessions::text FROM "${db.schema}".r WHERE property_id = $1 AND date = $2 ORDER BY country COLLATE "C"`, [P, date]);
}

function want(date: string): Array<{ country: string; sessions: string }> {
  return generateReport({ propertyId: P, date, dimensions: DIMS, metrics: METRICS })
    .map((r) => ({ country: r.dims[0]!, sessions: String(r.values[0]) }))
    .sort((a, b) => (a.country < b.country ? -1 : a.country > b.country ? 1 : 0));
}

describe('values PostgreSQL cannot hold', () => {
  let db: TestDb;
  let g: FakeSetup;
  let dates: string[];
  before(async () => {
    db = await testDb('storable');
    g = await startFake([{ id: P, timeZone: 'UTC' }]);
    const today = g.fake.todayOf(P);
    dates = [4, 3, 2, 1].map((n) => addDays(today, -n));
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('run --once: a dimension value with U+0000 on one of four dates is stored without it, and the run exits 0', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    g.fake.clearFaults();
    const odd = dates[1]!;
    let original = '';
    onDates(g, {
      [odd]: (row) => {
        original = row.dimensionValues[1]!.value!;
        row.dimensionValues[1]!.value = `nul\u0000inside ${original}`;
      },
    });
    const config = writeConfig(g.dir, db, g, { properties: [{ id: P }], reports: { r: report } });
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
    assert.deepEqual(await storedDates(db), dates, 'all four dates stored');
    const expected = want(odd).map((w) => (w.country === original ? { ...w, country: `nulinside ${original}` } : w));
    expected.sort((a, b) => (a.country < b.country ? -1 : a.country > b.country ? 1 : 0));
    assert.deepEqual(await rowsOf(db, odd), expected, 'the row is stored, the NUL removed');
    for (const d of dates) if (d !== odd) assert.deepEqual(await rowsOf(db, d), want(d), d);
    const warnings = logLines(r.stdout).filter((e) => e['event'] === 'values_sanitized');
    assert.equal(warnings.length, 1, 'one warning');
    assert.deepEqual(
      [warnings[0]!['date'], warnings[0]!['values'], warnings[0]!['dimensions'], warnings[0]!['property'], warnings[0]!['report']],
      [odd, 1, ['country'], P, 'r'],
    );
  });

  it('U+0000 and lone surrogates are counted in ga_collector_values_sanitized_total, warned once per date', async () => {
    await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
    g.fake.clearFaults();
    onDates(g, {
      [dates[0]!]: (row) => void (row.dimensionValues[1]!.value = 'a\u0000b\u0000c'),
      [dates[2]!]: (row) => void (row.dimensionValues[1]!.value = 'lone \ud800 high'),
    });
    const { daemon, log } = await daemonWithLog(db, g);
    try {
      const [res] = await daemon.scheduler.runOnce();
      assert.equal(res!.ok, true, res!.error);
      assert.deepEqual(await storedDates(db), dates);
      const values = (await db.query<{ country: string }>(`SELECT country FROM "${db.schema}".r WHERE country IN ('abc', 'lone \uFFFD high') ORDER BY 1`)).map(
        (r) => r.country,
      );
      assert.deepEqual(values, ['abc', 'lone \uFFFD high']);
      const text = await daemon.metrics.text();
      assert.equal(metricSum(text, 'ga_collector_values_sanitized_total', { property: P, report: 'r' }), 2);
      const warned = log()
        .filter((e) => e['event'] === 'values_sanitized')
        .map((e) => e['date']);
      assert.deepEqual(warned.sort(), [dates[0], dates[2]]);
    } finally {
      await daemon.stop(0);
    }
  });

  for (const [what, change, column, reason] of [
    [
      'an integer metric beyond bigint',
      (row: JsonRow) => void (row.metricValues[0]!.value = '99999999999999999999'),
      'sessions',
      /value "99999999999999999999" is out of range for type bigint/,
    ],
    [
      'a number beyond a double (1e400)',
      (row: JsonRow) => void (row.metricValues[1]!.value = '1e400'),
      'engagement_rate',
      /"1e400" is out of range for type double precision/,
    ],
  ] as const) {
    it(`${what} on one of four dates fails that date alone, naming property, report, date and column; the others are stored`, async () => {
      await db.pool.query(`DROP SCHEMA IF EXISTS "${db.schema}" CASCADE`);
      g.fake.clearFaults();
      const bad = dates[2]!;
      onDates(g, { [bad]: change });
      const { daemon, log } = await daemonWithLog(db, g);
      try {
        for (let run = 1; run <= 2; run++) {
          const [res] = await daemon.scheduler.runOnce();
          assert.equal(res!.ok, false, `run ${run} fails`);
          assert.match(
            res!.error!,
            new RegExp(`property ${P}, report r: 1 date\\(s\\) refused for a value the column cannot hold, the others are stored; ${bad} column ${column}: `),
          );
          assert.match(res!.error!, reason);
          assert.deepEqual(
            await storedDates(db),
            dates.filter((d) => d !== bad),
            `run ${run}: the other three dates are stored`,
          );
          for (const d of dates) if (d !== bad) assert.deepEqual(await rowsOf(db, d), want(d), d);
          assert.deepEqual(await rowsOf(db, bad), [], 'nothing half-stored for the refused date');
        }
        const refused = log().filter((e) => e['event'] === 'date_refused');
        assert.ok(
          refused.length >= 2 && refused.every((e) => e['date'] === bad && e['column'] === column && e['property'] === P && e['report'] === 'r'),
          `date_refused logged with date and column: ${JSON.stringify(refused)}`,
        );
        // Google fixes the value: the next run stores the date
        g.fake.clearFaults();
        const [res] = await daemon.scheduler.runOnce();
        assert.equal(res!.ok, true, res!.error);
        assert.deepEqual(await storedDates(db), dates);
      } finally {
        await daemon.stop(0);
      }
    });
  }
});
