/**
 * Exit codes that scripts rely on: bad input is 2 before the database is touched; a credential
 * that cannot get a token is a failure (1) even when nothing was due.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addDays, localDate } from '../src/time.js';
import { SA_EMAIL, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const A = '620001';
const OTHER = '620009';

describe('backfill of something the config does not have', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('notinconfig');
    g = await startFake([
      { id: A, timeZone: 'UTC' },
      { id: OTHER, timeZone: 'UTC' },
    ]);
  });
  after(async () => {
    await g.stop();
    await db.drop();
  });

  const schemaExists = async () => (await db.query<{ s: string | null }>(`SELECT to_regnamespace($1)::text AS s`, [db.schema]))[0]!.s !== null;

  it('a property not in the config: exit 2 with one line, the database untouched', async () => {
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports: { daily: { metrics: ['sessions'], startDate: '5daysAgo' } } });
    const r = await runCli(['backfill', '--config', config, '--property', OTHER, '--from', '3daysAgo', '--to', 'yesterday']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `ga-collector: backfill: property ${OTHER} is not in the config (properties: ${A}); add it to properties first\n`);
    assert.equal(await schemaExists(), false, 'not even migrated');
    assert.equal(g.fake.counts().token + g.fake.counts().runReport, 0, 'nothing asked of Google');
  });

  it('a report the property does not use: exit 2, the database untouched', async () => {
    const reports = { daily: { metrics: ['sessions'], startDate: '5daysAgo' }, weekly: { metrics: ['totalUsers'], startDate: '5daysAgo' } };
    const config = writeConfig(g.dir, db, g, { properties: [{ id: A, reports: ['daily'] }], reports });
    const r = await runCli(['backfill', '--config', config, '--property', A, '--report', 'weekly', '--from', '3daysAgo', '--to', 'yesterday']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ga-collector: backfill: property 620001 does not use report weekly \(its reports: daily\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(await schemaExists(), false);
  });
});

describe('run --once with a credential that cannot get a token', () => {
  it('exits 1 naming the account even when nothing was due', async () => {
    const db = await testDb('revokedonce');
    const g = await startFake([{ id: A, timeZone: 'UTC' }]);
    try {
      const config = writeConfig(g.dir, db, g, { properties: [{ id: A }], reports: { daily: { metrics: ['sessions'], startDate: '4daysAgo' } } });
      const first = await runCli(['run', '--once', '--config', config]);
      assert.equal(first.code, 0, first.stderr);
      const yesterday = addDays(localDate(Date.now(), 'UTC'), -1);
      const [n] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".fetch_days WHERE date <= $1`, [yesterday]);
      assert.equal(n!.n, 4, 'everything stored: nothing is due on the next run');
      // with a working key, a run with nothing due is a success...
      const calm = await runCli(['run', '--once', '--config', config]);
      assert.equal(calm.code, 0, calm.stderr);
      // ...with the key revoked in Google Cloud, it is not
      g.fake.revokeKey(SA_EMAIL);
      const calls = g.fake.counts().runReport;
      const r = await runCli(['run', '--once', '--config', config]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^ga-collector: no access token for ${SA_EMAIL.replace(/\./g, '\\.')} \\(.*key\\.json\\): `, 'm'));
      assert.equal(g.fake.counts().runReport, calls, 'nothing was due, so nothing was asked');
    } finally {
      await g.stop();
      await db.drop();
    }
  });
});
