/**
 * Output people read: `run --once` and `backfill` end with one summary line (dates and rows
 * stored, requests and retries as Google saw them, failures, duration); `migrate` says what it
 * applied or that the schema is current; `check --json` is one JSON document whose tally counts
 * failures, skips and warnings apart, as the table's closing line does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listMigrations } from '../src/store/migrations.js';
import { runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const A = '670001';
const DENIED = '670002';

describe('summary lines, migrate and check --json', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('output');
    g = await startFake([
      { id: A, timeZone: 'UTC' },
      { id: DENIED, timeZone: 'UTC', grant: false },
    ]);
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const reports = { daily: { metrics: ['sessions'], startDate: '4daysAgo' } };

  it('migrate names the migrations it applied, then says the schema is current', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports, log: { level: 'warn' } });
    const first = await runCli(['migrate', '--config', config]);
    assert.equal(first.code, 0, first.stderr);
    const names = listMigrations().map((m) => m.name);
    const latest = listMigrations().at(-1)!.version;
    assert.equal(first.stdout, `migrate: schema ${db.schema}: applied ${names.join(', ')}; now at migration ${latest}\n`);
    const again = await runCli(['migrate', '--config', config]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, `migrate: schema ${db.schema} is current (migration ${latest}); nothing to apply\n`);
  });

  it('run --once ends with one line: dates and rows stored, requests and retries, failures, duration', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }, { id: DENIED }], reports, log: { level: 'warn' } });
    // one 503 on the way: one retry
    g.fake.inject({ endpoint: 'runReport', property: A, kind: 'status', status: 503, times: 1 });
    const seen = g.fake.counts().runReport;
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 1, 'the denied property fails the run');
    const lines = r.stdout.trim().split('\n');
    const last = lines.at(-1)!;
    const m = /^run --once: stored 4 dates \((\d+) rows\) in 1 of 2 jobs; (\d+) requests, 1 retry; 1 failure; [\d.]+ s$/.exec(last);
    assert.ok(m, `summary line: ${last}`);
    const [{ rows }] = (await db.query<{ rows: number }>(`SELECT sum(row_count)::int AS rows FROM "${db.schema}".fetch_days`)) as [{ rows: number }];
    assert.equal(Number(m[1]), rows, 'rows as stored');
    // the Data API requests Google saw: runReport (probes, pages, the 503) and one getMetadata per property
    assert.equal(Number(m[2]), g.fake.counts().runReport - seen + 2);
    assert.match(r.stderr, new RegExp(`no access to GA4 property ${DENIED}`));
  });

  it('backfill prints a line per report and the summary line', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports, log: { level: 'warn' } });
    const r = await runCli(['backfill', '--config', config, '--property', A, '--from', '3daysAgo', '--to', 'yesterday']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^backfill ${A}/daily: 3 dates, \\d+ rows \\(\\S+ to \\S+\\)$`, 'm'));
    assert.match(
      r.stdout.trim().split('\n').at(-1)!,
      new RegExp(`^backfill ${A}: stored 3 dates \\([\\d,]+ rows\\) in 1 of 1 job; 1 request, 0 retries; 0 failures; [\\d.]+ s$`),
    );
  });

  it('a job that fails after storing dates counts them in the summary line (a refused date)', async () => {
    const other = await testDb('outputrefused');
    try {
      const config = writeConfig(g.dir, other, g, { properties: [{ id: A }], reports, log: { level: 'warn' } });
      // the oldest date's row says "1.5" sessions, which the integer column cannot hold: that date
      // is refused, the others are stored, and the job fails naming it
      g.fake.inject({
        endpoint: 'runReport',
        kind: 'rewrite',
        times: 1,
        match: (r) => r.limit !== 1,
        rewrite: (body) => {
          const rows = body['rows'] as Array<{ metricValues: Array<{ value: string }> }>;
          rows[0]!.metricValues[0]!.value = '1.5';
          return body;
        },
      });
      const r = await runCli(['backfill', '--config', config, '--property', A, '--from', '3daysAgo', '--to', 'yesterday']);
      assert.equal(r.code, 1, r.stdout);
      const [{ dates, rows }] = (await other.query<{ dates: number; rows: number }>(
        `SELECT count(*)::int AS dates, sum(row_count)::int AS rows FROM "${other.schema}".fetch_days`,
      )) as [{ dates: number; rows: number }];
      assert.equal(dates, 2);
      const last = r.stdout.trim().split('\n').at(-1)!;
      const m = /^backfill \d+: stored 2 dates \(([\d,]+) rows\) in 1 of 1 job; \d+ requests?, 0 retries; 1 failure; [\d.]+ s$/.exec(last);
      assert.ok(m, `summary line: ${last}`);
      assert.equal(Number(m[1]!.replace(/,/g, '')), rows, 'rows as stored');
    } finally {
      g.fake.clearFaults();
      await other.drop();
    }
  });

  it('check --json: every check with its status, and the tally of ok, failed, skipped and warnings', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }, { id: DENIED }], reports });
    const r = await runCli(['check', '--json', '--config', config]);
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout) as { ok: boolean; summary: Record<string, number>; checks: Array<{ status: string; what: string; fix?: string }> };
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.summary, { ok: 5, failed: 1, skipped: 1, warnings: 0 });
    const denied = doc.checks.find((c) => c.what === `property ${DENIED}`)!;
    assert.equal(denied.status, 'fail');
    assert.match(denied.fix!, /Add users/);
    assert.equal(doc.checks.find((c) => c.what === `property ${DENIED} report daily`)!.status, 'skip');
    const table = await runCli(['check', '--config', config]);
    assert.equal(table.code, 1);
    assert.match(table.stdout.trim().split('\n').at(-1)!, /^2 of 7 checks did not pass: 5 ok, 1 failed, 1 skipped, 0 warnings$/);
    const good = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports });
    const passed = await runCli(['check', '--config', good]);
    assert.equal(passed.code, 0, passed.stdout);
    assert.match(passed.stdout.trim().split('\n').at(-1)!, /^all 5 checks passed: 5 ok, 0 failed, 0 skipped, 0 warnings$/);
  });
});
