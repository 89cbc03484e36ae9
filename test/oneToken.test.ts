/**
 * One token exchange per service account per token lifetime, however many properties and jobs
 * share it: 500 properties against the fake Google and a real PostgreSQL.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenManager } from '../src/auth/tokenManager.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
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
    assert.deepEqual(
      tokens.map((e) => [e.account, e.status]).sort(),
      [
        [OTHER, 200],
        [SA_EMAIL, 200],
      ].sort(),
    );
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

describe('requests refused with 401 (a revoked token)', () => {
  it('renew the token once, however many notice and whenever they do', async () => {
    const g = await startFake([]);
    // no floor between exchanges here: the test counts them, it does not wait out the 10 s
    const manager = new TokenManager({
      tokenUrl: g.fake.tokenUrl,
      logger: createLogger('silent'),
      metrics: new Metrics({ defaultMetrics: false }),
      minExchangeIntervalMs: 0,
    });
    const tokens = manager.forKeyFile(g.keyFile);
    const exchanges = () => g.fake.events.filter((e) => e.kind === 'token' && e.status === 200).length;
    try {
      await manager.start();
      const first = await tokens.getToken();
      // forty requests carrying the same token are refused and notice together
      await Promise.all(Array.from({ length: 40 }, () => tokens.invalidate(first)));
      assert.equal(exchanges(), 2, 'the first token and one renewal');
      const second = await tokens.getToken();
      assert.notEqual(second, first);
      // a request that carried the old token and is refused only now: the new token is already there
      await tokens.invalidate(first);
      assert.equal(exchanges(), 2, 'no exchange for a refusal of a token already replaced');
      assert.equal(await tokens.getToken(), second);
      // the new token refused in turn: one more
      await Promise.all(Array.from({ length: 10 }, () => tokens.invalidate(second)));
      assert.equal(exchanges(), 3);
    } finally {
      manager.stop();
      await g.stop();
    }
  });
});
