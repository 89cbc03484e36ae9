import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkAll, formatTable, type CheckRow } from '../src/check.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/log.js';
import { migrate } from '../src/store/migrations.js';
import { runCli, startFake, testDb, writeConfig, writeJson, type FakeSetup, type TestDb } from './helpers.js';

const LA = '411111';
const NZ = '422222';
const DENIED = '433333';
const logger = createLogger('silent');

describe('ga-collector check', () => {
  let db: TestDb;
  let fresh: TestDb;
  let g: FakeSetup;

  before(async () => {
    db = await testDb('check');
    fresh = await testDb('check_fresh');
    g = await startFake([
      { id: LA, timeZone: 'America/Los_Angeles' },
      { id: NZ, timeZone: 'Pacific/Auckland' },
      { id: DENIED, timeZone: 'Europe/Berlin', grant: false },
    ]);
    await migrate(db.pool, db.schema, logger);
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
    await fresh?.drop();
  });

  /** Writes a config (good unless overridden) and runs the checks in-process. */
  async function check(
    extra: Record<string, unknown>,
    opts: { db?: TestDb; google?: Record<string, unknown>; database?: Record<string, unknown> } = {},
  ): Promise<CheckRow[]> {
    const file = writeConfig(g.dir, opts.db ?? db, g, { properties: [{ id: LA }], ...extra });
    if (opts.google || opts.database) {
      const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
      Object.assign(doc.google, opts.google ?? {});
      Object.assign(doc.database, opts.database ?? {});
      writeJson(file, doc);
    }
    return checkAll(loadConfig({ file, env: {} }), logger, { timeoutMs: 5_000 });
  }
  const row = (rows: CheckRow[], what: string | RegExp) => {
    const r = rows.find((x) => (typeof what === 'string' ? x.what === what : what.test(x.what)));
    assert.ok(r, `no row ${what} in\n${formatTable(rows)}`);
    return r;
  };

  it('all good: a row per key, the database, each property and report; exit 0', async () => {
    const file = writeConfig(g.dir, db, g, {
      properties: [{ id: LA }, { id: NZ }],
      reports: { daily: { metrics: ['sessions', 'totalUsers'] }, devices: { dimensions: ['deviceCategory'], metrics: ['sessions'] } },
    });
    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(
      lines.find((l) => l.includes('key collector@'))!,
      /^ok\s+key collector@test-project\.iam\.gserviceaccount\.com\s+key \w+ from .*token from http:\/\/127\.0\.0\.1:\d+\/token, expires in (59|60) min/,
    );
    assert.match(
      lines.find((l) => /^\S+\s+database/.test(l))!,
      new RegExp(`^ok\\s+database\\s+.*reachable, schema ${db.schema} at migration \\d+ \\(current\\)`),
    );
    assert.match(
      lines.find((l) => l.includes(`property ${LA} `) && !l.includes('report'))!,
      /^ok .*time zone America\/Los_Angeles/,
    );
    assert.match(
      lines.find((l) => l.includes(`property ${NZ} `) && !l.includes('report'))!,
      /^ok .*time zone Pacific\/Auckland/,
    );
    for (const p of [LA, NZ])
      for (const rep of ['daily', 'devices']) assert.match(r.stdout, new RegExp(`ok\\s+property ${p} report ${rep}\\s+date \\+ \\d dimension`));
    assert.match(r.stdout, /all 9 checks passed/);
    assert.doesNotMatch(r.stdout, /FAIL|PRIVATE KEY|ya29\./);
  });

  it('fetch.perPropertyConcurrency above 10 or above concurrency: a warn row each, and the check still passes', async () => {
    const warnings = (rows: CheckRow[]) => rows.filter((r) => r.status === 'warn' && r.what === 'config');
    assert.deepEqual(warnings(await check({ concurrency: 10, fetch: { perPropertyConcurrency: 10 } })), [], 'none at 10 within concurrency');

    const rows = await check({ concurrency: 50, fetch: { perPropertyConcurrency: 11 } });
    const [over] = warnings(rows);
    assert.equal(warnings(rows).length, 1, formatTable(rows));
    assert.match(
      over!.detail,
      /^fetch\.perPropertyConcurrency 11 holds only for Analytics 360 properties .*a standard property answers 429 beyond 10 requests in flight/,
    );
    assert.match(over!.fix!, /fetch\.perPropertyConcurrency to 10 or less unless every property fetched is an Analytics 360 one/);
    assert.equal(row(rows, `property ${LA}`).status, 'ok');

    const capped = warnings(await check({ concurrency: 2, fetch: { perPropertyConcurrency: 3 } }));
    assert.deepEqual(
      capped.map((r) => [r.detail, r.fix]),
      [
        [
          'fetch.perPropertyConcurrency 3 is above concurrency 2: the global limit caps it, a property has at most 2 requests in flight',
          'raise concurrency to 3, or lower fetch.perPropertyConcurrency to 2',
        ],
      ],
    );

    // both, through the command: warnings do not fail the check
    const file = writeConfig(g.dir, db, g, { properties: [{ id: LA }], concurrency: 4, fetch: { perPropertyConcurrency: 50 } });
    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^warn\s+config\s+fetch\.perPropertyConcurrency 50 holds only for Analytics 360 properties/m);
    assert.match(r.stdout, /^warn\s+config\s+fetch\.perPropertyConcurrency 50 is above concurrency 4: the global limit caps it/m);
    assert.match(r.stdout.trim().split('\n').at(-1)!, /^all \d+ checks passed: \d+ ok, 0 failed, 0 skipped, 2 warnings$/);
  });

  it('a malformed key file: FAIL with how to get a new key, properties skipped, exit 1', async () => {
    const bad = path.join(g.dir, 'malformed.json');
    fs.writeFileSync(
      bad,
      '{"type": "service_account", "client_email": "x@y.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----\\nnot a key\\n-----END PRIVATE KEY-----\\n"}',
    );
    const file = writeConfig(g.dir, db, g, { properties: [{ id: LA, credentials: bad }] });
    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /FAIL\s+key .*malformed\.json\s+key file .*malformed\.json: "private_key" is not a valid RSA private key/);
    assert.match(r.stdout, /fix: download a new JSON key: .*Keys > Add key > JSON/);
    assert.match(r.stdout, new RegExp(`skip\\s+property ${LA}\\s+not checked: its key has no working token`));
    assert.doesNotMatch(r.stdout + r.stderr, /not a key|at \w+ \(/, 'neither the key nor a stack trace');
    assert.equal(r.stderr, '');
  });

  it('a revoked key: FAIL, the token was refused, replace the key', async () => {
    const email = 'revoked@test-project.iam.gserviceaccount.com';
    const keyFile = writeJson(path.join(g.dir, 'revoked.json'), g.fake.createAccount(email));
    g.fake.grant(email, LA);
    g.fake.revokeKey(email);
    const rows = await check({ properties: [{ id: LA, credentials: keyFile }] });
    const k = row(rows, `key ${email}`);
    assert.equal(k.status, 'FAIL');
    assert.match(k.detail, /token refused: .*invalid_grant/);
    assert.match(k.fix!, /deleted or revoked .* create a new JSON key/);
    assert.doesNotMatch(JSON.stringify(rows), /PRIVATE KEY|eyJ/);
    assert.equal(row(rows, `property ${LA}`).status, 'skip');
  });

  it('the token endpoint down: FAIL naming the endpoint, check the network', async () => {
    const rows = await check({}, { google: { tokenUrl: 'http://127.0.0.1:1/token' } });
    const k = row(rows, /^key collector@/);
    assert.equal(k.status, 'FAIL');
    assert.match(k.detail, /token endpoint http:\/\/127\.0\.0\.1:1\/token unreachable or failing: .*ECONNREFUSED/);
    assert.match(k.fix!, /network path to http:\/\/127\.0\.0\.1:1\/token/);
  });

  it('the database unreachable: FAIL without the password, check database.url', async () => {
    const rows = await check({}, { database: { url: 'postgres://collector:s3cretpw@127.0.0.1:1/ga' } });
    const d = row(rows, 'database');
    assert.equal(d.status, 'FAIL');
    assert.match(d.detail, /127\.0\.0\.1:1.*ECONNREFUSED/);
    assert.match(d.fix!, /database\.url \/ DATABASE_URL/);
    assert.doesNotMatch(JSON.stringify(rows), /s3cretpw/);
    // the rest is still checked
    assert.equal(row(rows, `property ${LA}`).status, 'ok');
  });

  it('migrations pending: FAIL, run ga-collector migrate', async () => {
    const rows = await check({}, { db: fresh });
    const d = row(rows, 'database');
    assert.equal(d.status, 'FAIL');
    assert.match(d.detail, new RegExp(`reachable, schema ${fresh.schema} at migration 0 of \\d+: \\d+ pending`));
    assert.match(d.fix!, /ga-collector migrate/);
    const exists = await fresh.query(`SELECT 1 FROM information_schema.schemata WHERE schema_name = $1`, [fresh.schema]);
    assert.equal(exists.length, 0, 'check does not migrate');
  });

  it('a property the account may not read: FAIL, add the account as a Viewer; its reports skipped', async () => {
    const rows = await check({ properties: [{ id: LA }, { id: DENIED }] });
    const p = row(rows, `property ${DENIED}`);
    assert.equal(p.status, 'FAIL');
    assert.match(p.detail, /has no access to GA4 property 433333/);
    assert.match(p.fix!, /Add users: collector@test-project\.iam\.gserviceaccount\.com, role Viewer/);
    assert.equal(row(rows, `property ${DENIED} report daily`).status, 'skip');
    assert.equal(row(rows, `property ${LA}`).status, 'ok');
  });

  it('unknown metric and dimension in a report: FAIL naming them, fix reports.NAME', async () => {
    const rows = await check({
      properties: [{ id: LA }],
      reports: { daily: { metrics: ['sessions'] }, broken: { dimensions: ['deviceCategory', 'colour'], metrics: ['sessions', 'sessionz'] } },
    });
    assert.equal(row(rows, `property ${LA} report daily`).status, 'ok');
    const b = row(rows, `property ${LA} report broken`);
    assert.equal(b.status, 'FAIL');
    assert.equal(b.detail, `unknown to property ${LA}: dimension colour, metric sessionz`);
    assert.match(b.fix!, /fix reports\.broken/);
  });
});
