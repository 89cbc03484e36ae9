/**
 * One token exchange per service account per token lifetime, however many properties and jobs
 * share it: 500 properties against the fake Google and a real PostgreSQL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SA_EMAIL, runCli, startFake, testDb, writeConfig, writeJson, type FakeSetup, type TestDb } from './helpers.js';

const OTHER = 'second@other-project.iam.gserviceaccount.com';
const ZONES = ['America/Los_Angeles', 'Europe/Berlin', 'Asia/Tokyo', 'Pacific/Auckland', 'UTC'];

describe('500 properties, two service accounts', () => {
  let db: TestDb;
  let g: FakeSetup;
  const ids = Array.from({ length: 500 }, (_, i) => String(700_000 + i));

  before(async () => {
    db = await testDb('onetoken');
    g = await startFake(ids.map((id, i) => ({ id, timeZone: ZONES[i % ZONES.length]! })));
    // the last 200 properties belong to a second account; 100 name the first one's key by a second path
    const otherKey = writeJson(path.join(g.dir, 'other.json'), g.fake.createAccount(OTHER));
    for (const id of ids.slice(300)) g.fake.grant(OTHER, id);
    const sameAccount = path.join(g.dir, 'same-account-other-file.json');
    fs.copyFileSync(g.keyFile, sameAccount);
    const properties = ids.map((id, i) => (i < 200 ? { id } : i < 300 ? { id, credentials: sameAccount } : { id, credentials: otherKey }));
    const config = writeConfig(g.dir, db, g, {
      properties,
      concurrency: 10,
      reports: { daily: { metrics: ['sessions'], startDate: '2daysAgo', refreshDays: 1 } },
    });
    const r = await runCli(['run', '--once', '--config', config], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('exchanged exactly one token per account', () => {
    const tokens = g.fake.events.filter((e) => e.kind === 'token');
    assert.deepEqual(tokens.map((e) => [e.account, e.status]).sort(), [[OTHER, 200], [SA_EMAIL, 200]].sort());
  });

  it('every API request of an account carried that one token', () => {
    const api = g.fake.events.filter((e) => e.kind === 'runReport');
    // a probe for the time zone and one range per property
    assert.equal(api.length, 1000);
    assert.ok(api.every((e) => e.status === 200));
    for (const account of [SA_EMAIL, OTHER]) {
      const issued = new Set(api.filter((e) => e.account === account).map((e) => e.tokenIssuedAt));
      assert.equal(issued.size, 1, `${account}: one token`);
    }
    assert.equal(api.filter((e) => e.account === OTHER).length, 400);
  });

  it('stored every property', async () => {
    const rows = await db.query<{ n: string }>(`SELECT count(DISTINCT property_id) AS n FROM "${db.schema}".fetch_days`);
    assert.equal(Number(rows[0]!.n), 500);
  });
});
