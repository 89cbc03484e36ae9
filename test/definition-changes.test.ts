/**
 * A change of a report definition is checked before it changes the database: a name the property
 * does not know fails that report with the fix (and a near name) and leaves the table, the
 * recorded definitions and the ledger as they were; a real change is recorded only once the new
 * definition has fetched, and refetches only that report, only for the properties that use it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateReport } from '@ga-collector/fake-google';
import { runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const A = '610001';
const B = '610002';

const sums = (property: string, date: string, metrics: string[]) => {
  const rows = generateReport({ propertyId: property, date, dimensions: [], metrics, revision: 0 });
  return metrics.map((_, i) => rows.reduce((s, r) => s + r.values[i]!, 0));
};

/** Everything a definition change could touch: columns, recorded definitions, the ledger. */
async function snapshot(db: TestDb) {
  const columns = await db.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    [db.schema],
  );
  const definitions = await db.query(`SELECT report, dimensions, metrics, updated_at FROM "${db.schema}".report_definitions ORDER BY report`);
  const versions = await db.query(`SELECT id, report, dimensions, metrics FROM "${db.schema}".report_definition_versions ORDER BY id`);
  const ledger = await db.query(
    `SELECT property_id, report, to_char(date,'YYYY-MM-DD') AS date, fetched_at, definition_id FROM "${db.schema}".fetch_days ORDER BY 1, 2, 3`,
  );
  return { columns, definitions, versions, ledger };
}

describe('a report definition with a name the property does not know', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('typo');
    g = await startFake([
      { id: A, timeZone: 'Europe/Berlin' },
      { id: B, timeZone: 'America/New_York' },
    ]);
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  it('fails that report with the fix and a near name, and changes nothing; fixed, nothing is fetched again', async () => {
    const good = { daily: { metrics: ['sessions', 'totalUsers', 'screenPageViews'], startDate: '12daysAgo' } };
    const v1 = writeConfig(g.dir, db, g, { properties: [{ id: A }, { id: B }], reports: good });
    const first = await runCli(['run', '--once', '--config', v1]);
    assert.equal(first.code, 0, first.stderr);
    const before = await snapshot(db);
    assert.equal(before.ledger.length, 24);

    // the typo, in a config that lists only A
    const typo = writeConfig(g.dir, db, g, {
      properties: [{ id: A }],
      reports: { daily: { ...good.daily, metrics: ['sesions', 'totalUsers', 'screenPageViews'] } },
    });
    const calls = g.fake.counts().runReport;
    const r = await runCli(['run', '--once', '--config', typo]);
    assert.equal(r.code, 1, 'the report failed');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      new RegExp(`report daily: unknown to property ${A}: metric sesions; fix reports\\.daily in the config \\(did you mean sesions -> sessions\\?\\)`),
    );
    assert.doesNotMatch(r.stdout, /report_definition_changed/);
    assert.equal(g.fake.counts().runReport, calls, 'no report was asked with the typo');
    assert.ok(!g.fake.events.some((e) => e.status === 400), 'Google never refused a request');
    assert.deepEqual(await snapshot(db), before, 'table, definitions and ledger untouched');

    // fixed again: the stored history is as good as ever, for both properties
    const fixed = await runCli(['run', '--once', '--config', v1]);
    assert.equal(fixed.code, 0, fixed.stderr);
    const after = await snapshot(db);
    assert.deepEqual(after.ledger, before.ledger, 'no date fetched again');
    assert.deepEqual(after.columns, before.columns);
  });

  it('a typo in a dimension of a new report creates no table', async () => {
    const reports = {
      daily: { metrics: ['sessions'], startDate: '3daysAgo' },
      devices: { dimensions: ['devicCategory'], metrics: ['sessions'], startDate: '3daysAgo' },
    };
    const config = writeConfig(g.dir, db, g, { properties: [{ id: B }], reports });
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /report devices: unknown to property 610002: dimension devicCategory; fix reports\.devices in the config \(did you mean devicCategory -> deviceCategory\?\)/,
    );
    const tables = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'devices%'`, [db.schema]);
    assert.deepEqual(tables, []);
    assert.deepEqual(await db.query(`SELECT 1 FROM "${db.schema}".fetch_days WHERE report = 'devices'`), []);
  });
});

describe('a real change of a report definition', () => {
  it('is recorded only once it fetched, and refetches only that report, only for the properties that use it', async () => {
    const db = await testDb('defscope');
    const g = await startFake([
      { id: A, timeZone: 'UTC' },
      { id: B, timeZone: 'UTC' },
    ]);
    try {
      const daily = { metrics: ['sessions'], startDate: '8daysAgo' };
      const other = { metrics: ['totalUsers'], startDate: '8daysAgo' };
      const v1 = writeConfig(g.dir, db, g, { properties: [{ id: A }, { id: B }], reports: { daily, other } });
      assert.equal((await runCli(['run', '--once', '--config', v1])).code, 0);
      const before = await snapshot(db);
      assert.equal(before.ledger.length, 32);

      // daily grows a metric; B no longer uses daily
      const grown = { ...daily, metrics: ['sessions', 'newUsers'] };
      const v2 = writeConfig(g.dir, db, g, {
        properties: [{ id: A }, { id: B, reports: ['other'] }],
        reports: { daily: grown, other },
        fetch: { maxAttempts: 1 },
      });
      // first, Google fails every request: nothing of the new definition may be recorded
      g.fake.inject({ endpoint: 'runReport', kind: 'status', status: 503 });
      const failed = await runCli(['run', '--once', '--config', v2]);
      assert.equal(failed.code, 1);
      g.fake.clearFaults();
      assert.deepEqual(await snapshot(db), before, 'a definition that has not fetched changes nothing');

      const ok = await runCli(['run', '--once', '--config', v2]);
      assert.equal(ok.code, 0, ok.stderr);
      const changed = JSON.parse(ok.stdout.split('\n').find((l) => l.includes('report_definition_changed'))!);
      assert.equal(changed.property, A);
      assert.equal(changed.datesToRefetch, 8);
      const after = await snapshot(db);
      const fetchedAt = (s: typeof before, p: string, report: string) =>
        s.ledger.filter((l) => l['property_id'] === p && l['report'] === report).map((l) => `${l['date']} ${(l['fetched_at'] as Date).toISOString()}`);
      assert.deepEqual(fetchedAt(after, B, 'daily'), fetchedAt(before, B, 'daily'), "B's daily, no longer configured, is neither cleared nor fetched");
      assert.deepEqual(fetchedAt(after, A, 'other'), fetchedAt(before, A, 'other'), 'the other report is not fetched again');
      assert.deepEqual(fetchedAt(after, B, 'other'), fetchedAt(before, B, 'other'));
      const refetched = fetchedAt(after, A, 'daily');
      assert.equal(refetched.length, 8);
      for (const [i, line] of refetched.entries()) assert.notEqual(line, fetchedAt(before, A, 'daily')[i], "A's daily fetched again");
      const rows = await db.query<{ date: string; sessions: string; new_users: string }>(
        `SELECT to_char(date,'YYYY-MM-DD') AS date, sessions, new_users FROM "${db.schema}".daily WHERE property_id = $1`,
        [A],
      );
      assert.equal(rows.length, 8);
      for (const r of rows) assert.deepEqual([Number(r.sessions), Number(r.new_users)], sums(A, r.date, ['sessions', 'newUsers']), r.date);
      const defs = await db.query<{ metrics: string[] }>(`SELECT metrics FROM "${db.schema}".report_definitions WHERE report = 'daily'`);
      assert.deepEqual(defs[0]!.metrics, ['sessions', 'newUsers']);

      // a third run: nothing is stale any more
      const calls = g.fake.counts().runReport;
      const again = await runCli(['run', '--once', '--config', v2]);
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stdout, /report_definition_changed/);
      assert.equal(g.fake.counts().runReport, calls, 'nothing fetched again');

      // the same names in another order: nothing is new, so no metadata is asked, not even when
      // the metadata endpoint fails, and nothing is fetched again
      const reordered = writeConfig(g.dir, db, g, {
        properties: [{ id: A }, { id: B, reports: ['other'] }],
        reports: { daily: { ...grown, metrics: ['newUsers', 'sessions'] }, other },
        fetch: { maxAttempts: 1 },
      });
      g.fake.inject({ endpoint: 'metadata', kind: 'status', status: 503 });
      const metadataBefore = g.fake.events.filter((e) => e.kind === 'metadata').length;
      const same = await runCli(['run', '--once', '--config', reordered]);
      g.fake.clearFaults();
      assert.equal(same.code, 0, same.stderr);
      assert.equal(g.fake.events.filter((e) => e.kind === 'metadata').length, metadataBefore, 'no metadata request for a reordered definition');
      assert.equal(g.fake.counts().runReport, calls, 'nothing fetched again for a reordered definition');
    } finally {
      await g.stop();
      await db.drop();
    }
  });
});
