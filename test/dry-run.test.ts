/**
 * `run --once --dry-run` and `backfill --dry-run`: the plan (property, report, date ranges,
 * expected requests) from the ledger, with nothing fetched or written: no schema created, no
 * ledger change, no token, no request to Google; a property never fetched is said to need one
 * probe request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addDays, localDate } from '../src/time.js';
import { runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const A = '660001';
const NEW = '660002';

describe('dry runs', () => {
  let db: TestDb;
  let g: FakeSetup;
  let config: string;
  const yesterday = addDays(localDate(Date.now(), 'UTC'), -1);
  before(async () => {
    db = await testDb('dryrun');
    g = await startFake([
      { id: A, timeZone: 'UTC' },
      { id: NEW, timeZone: 'UTC' },
    ]);
    config = writeConfig(g.dir, db, g, {
      properties: [{ id: A }],
      reports: {
        daily: { metrics: ['sessions'], startDate: '6daysAgo' },
        devices: { dimensions: ['deviceCategory'], metrics: ['sessions'], startDate: '6daysAgo' },
      },
    });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const calls = () => g.fake.counts().token + g.fake.counts().runReport;
  const schemaExists = async () => (await db.query<{ s: string | null }>('SELECT to_regnamespace($1)::text AS s', [db.schema]))[0]!.s !== null;
  const ledger = async () =>
    db.query<{ date: string; fetched_at: Date }>(`SELECT to_char(date, 'YYYY-MM-DD') AS date, fetched_at FROM "${db.schema}".fetch_days ORDER BY report, date`);

  it('on a fresh database: the whole plan, nothing migrated, nothing asked of Google', async () => {
    const r = await runCli(['run', '--once', '--dry-run', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^dry run: nothing is fetched, migrated or written/m);
    assert.match(r.stdout, /at migration 0 of \d+: the run would first apply \d+ migrations/);
    assert.match(
      r.stdout,
      new RegExp(`^property ${A} \\(time zone unknown\\), schedule 0 4 \\* \\* \\*: time zone unknown: one probe request would be made`, 'm'),
    );
    assert.match(r.stdout, new RegExp(`^ {2}report daily: 6 dates in 1 range: ${addDays(yesterday, -5)} to ${yesterday}; at least 1 request$`, 'm'));
    // the devices report has per-date totals: one request more per range
    assert.match(r.stdout, /^ {2}report devices: 6 dates in 1 range: .*; at least 2 requests$/m);
    assert.match(r.stdout, /^plan: 12 dates to fetch for 2 of 2 reports of 1 property; at least 5 requests$/m);
    assert.equal(await schemaExists(), false, 'no schema, no DDL');
    assert.equal(calls(), 0, 'no token, no request');
  });

  it('after a run: only what is due, from the ledger, and the ledger untouched', async () => {
    const run = await runCli(['run', '--once', '--config', config]);
    assert.equal(run.code, 0, run.stderr);
    await db.query(`DELETE FROM "${db.schema}".fetch_days WHERE report = 'daily' AND date IN ($1, $2)`, [addDays(yesterday, -5), addDays(yesterday, -4)]);
    const before = await ledger();
    const seen = calls();
    const r = await runCli(['run', '--once', '--dry-run', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^property ${A} \\(UTC\\), schedule 0 4 \\* \\* \\*$`, 'm'));
    assert.match(
      r.stdout,
      new RegExp(`^ {2}report daily: 2 dates in 1 range: ${addDays(yesterday, -5)} to ${addDays(yesterday, -4)}; at least 1 request$`, 'm'),
    );
    assert.match(r.stdout, /^ {2}report devices: nothing due$/m);
    assert.deepEqual(await ledger(), before, 'ledger unchanged');
    assert.equal(calls(), seen, 'nothing asked of Google');
  });

  it('backfill --dry-run: the resolved range per report and the dates it replaces; nothing written', async () => {
    const before = await ledger();
    const seen = calls();
    const r = await runCli(['backfill', '--dry-run', '--config', config, '--property', A, '--from', '3daysAgo', '--to', 'yesterday']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^property ${A} \\(UTC\\): ${addDays(yesterday, -2)} to ${yesterday}, 3 dates, both included$`, 'm'));
    assert.match(r.stdout, /^ {2}report daily: 3 dates fetched and stored, 3 of them replacing stored dates; at least 1 request$/m);
    assert.match(r.stdout, /^ {2}report devices: 3 dates fetched and stored, 3 of them replacing stored dates; at least 2 requests$/m);
    assert.deepEqual(await ledger(), before);
    assert.equal(calls(), seen);
  });

  it('backfill --dry-run refuses what the backfill would refuse, and says a probe is needed for a new property', async () => {
    const late = await runCli(['backfill', '--dry-run', '--config', config, '--property', A, '--from', yesterday, '--to', addDays(yesterday, 1)]);
    assert.equal(late.code, 2);
    assert.match(late.stderr, new RegExp(`^ga-collector: backfill: --to ${addDays(yesterday, 1)} is after property ${A}'s yesterday, ${yesterday} \\(UTC\\)`));
    const withNew = writeConfig(g.dir, db, g, { properties: [{ id: A }, { id: NEW }], reports: { daily: { metrics: ['sessions'], startDate: '6daysAgo' } } });
    const seen = calls();
    const r = await runCli(['backfill', '--dry-run', '--config', withNew, '--property', NEW, '--from', '2024-01-01', '--to', '2024-01-10']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^property ${NEW}: time zone unknown: one probe request would be made .*; 2024-01-01 to 2024-01-10, 10 dates$`, 'm'));
    assert.match(r.stdout, /one getMetadata request checks its names first/);
    assert.equal(calls(), seen);
  });
});
