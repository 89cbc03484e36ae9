/**
 * `ga-collector prune`: what a property or report that left the configuration left in the
 * database is counted without --yes (nothing deleted), deleted with it, and refused (exit 2)
 * while still configured. A daemon still fetching the pair holds its lock: prune waits for nobody
 * and says so (exit 1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { lockKey } from '../src/store/locks.js';
import { runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const KEEP = '650001';
const GONE = '650002';

describe('ga-collector prune', () => {
  let db: TestDb;
  let g: FakeSetup;
  let before2: string;
  let after2: string;
  const reports = {
    daily: { metrics: ['sessions'], startDate: '5daysAgo' },
    devices: { dimensions: ['deviceCategory'], metrics: ['sessions'], startDate: '5daysAgo' },
  };
  before(async () => {
    db = await testDb('prune');
    g = await startFake([
      { id: KEEP, timeZone: 'UTC' },
      { id: GONE, timeZone: 'UTC' },
    ]);
    before2 = writeConfig(g.dir, db, g, { properties: [{ id: KEEP }, { id: GONE }], reports });
    const run = await runCli(['run', '--once', '--config', before2]);
    assert.equal(run.code, 0, run.stderr);
    // GONE leaves the configuration; so does the devices report
    after2 = writeConfig(g.dir, db, g, { properties: [{ id: KEEP }], reports: { daily: reports.daily } });
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const count = async (table: string, where = 'true', params: unknown[] = []) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".${table} WHERE ${where}`, params))[0]!.n;

  it('refuses what is still configured: exit 2, nothing deleted', async () => {
    for (const args of [
      ['--property', KEEP],
      ['--report', 'daily'],
      ['--property', KEEP, '--report', 'daily'],
    ]) {
      const r = await runCli(['prune', '--config', after2, ...args, '--yes']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^ga-collector: prune: (property|report) .* still .*; prune deletes only what left the configuration/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    assert.equal(await count('fetch_days', 'property_id = $1', [KEEP]), 10);
  });

  it('without --yes: says what it would delete, per table with row counts, and deletes nothing', async () => {
    const rowsGone = await count('daily', 'property_id = $1', [GONE]);
    const r = await runCli(['prune', '--config', after2, '--property', GONE]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^prune property ${GONE}: would delete:$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  delete from  ${db.schema}\\.daily +${rowsGone} rows?$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  delete from  ${db.schema}\\.fetch_days +10 rows$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  delete from  ${db.schema}\\.properties +1 row$`, 'm'));
    assert.match(r.stdout, /nothing was deleted; run again with --yes/);
    assert.equal(await count('fetch_days', 'property_id = $1', [GONE]), 10, 'nothing deleted');
  });

  it('a running daemon still fetching it holds its lock: exit 1, nothing deleted', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [lockKey(db.schema, 'job', GONE, 'daily')]);
      const r = await runCli(['prune', '--config', after2, '--property', GONE, '--yes']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`^ga-collector: prune property ${GONE}: property ${GONE} report daily is being worked on by a running ga-collector; reload it`),
      );
      assert.equal(await count('fetch_days', 'property_id = $1', [GONE]), 10);
    } finally {
      await holder.end();
    }
  });

  it('with --yes: deletes the property from every table in one go, and the rest stays', async () => {
    const keepRows = await count('daily', 'property_id = $1', [KEEP]);
    const r = await runCli(['prune', '--config', after2, '--property', GONE, '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^prune property ${GONE}: done, \\d+ rows removed in one transaction:$`, 'm'));
    for (const t of ['daily', 'devices', 'devices_totals', 'fetch_days', 'properties']) assert.equal(await count(t, 'property_id = $1', [GONE]), 0, t);
    assert.equal(await count('daily', 'property_id = $1', [KEEP]), keepRows, 'the configured property keeps its rows');
    const again = await runCli(['prune', '--config', after2, '--property', GONE]);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, `prune property ${GONE}: nothing stored\n`);
  });

  it('a report that left the configuration: its tables are dropped, its ledger and definitions deleted', async () => {
    const plan = await runCli(['prune', '--config', after2, '--report', 'devices']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, new RegExp(`^  drop table   ${db.schema}\\.devices_totals +\\(\\d+ rows?\\)$`, 'm'));
    assert.match(plan.stdout, new RegExp(`^  drop table   ${db.schema}\\.devices +\\(\\d+ rows?\\)$`, 'm'));
    const r = await runCli(['prune', '--config', after2, '--report', 'devices', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    const rel = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`"${db.schema}".devices`]);
    assert.equal(rel[0]!.t, null, 'table dropped');
    assert.equal(await count('fetch_days', "report = 'devices'"), 0);
    assert.equal(await count('report_definition_versions', "report = 'devices'"), 0);
    assert.equal(await count('fetch_days', "report = 'daily'"), 5, 'the other report is untouched');
    // the configuration runs on as before
    const run = await runCli(['run', '--once', '--config', after2]);
    assert.equal(run.code, 0, run.stderr);
  });
});
