/**
 * Secrets never reach logs, metrics, the status page or error output. A whole fetch cycle of
 * `ga-collector run` at debug level, with a property the account may not read, a database password
 * and tokens short-lived enough to be refreshed, then every byte the daemon wrote or served is
 * searched for the private key, the access tokens and signed assertions the fake Google saw, and
 * the password. The same for `check`, `run --once` against a closed database port, and a bad config.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { runCli, startFake, testDb, waitFor, writeConfig, writeJson, type FakeSetup, type TestDb } from './helpers.js';
import { get, startDaemon } from './ops-helpers.js';

const LA = '111111';
const DENIED = '333333';
const TOKEN_LIFETIME_S = 6;

describe('no secret in logs, metrics, status or errors', { timeout: 60_000 }, () => {
  let db: TestDb;
  let g: FakeSetup;
  let admin: pg.Pool;
  const role = `gac_secret_${crypto.randomBytes(4).toString('hex')}`;
  // pg_hba is trust here, so any password works; it only has to be unmistakable
  const password = `Pw-${crypto.randomBytes(12).toString('hex')}-leak`;
  let dbUrl: string;
  let config: string;
  let privateKey: string;
  /** everything the processes wrote and the HTTP server served, by where it came from */
  const outputs: Record<string, string> = {};

  before(async () => {
    db = await testDb('secrets');
    admin = new pg.Pool({ connectionString: db.url, max: 1 });
    const dbName = new URL(db.url).pathname.slice(1) || 'postgres';
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    await admin.query(`GRANT CREATE ON DATABASE "${dbName}" TO ${role}`);
    const u = new URL(db.url);
    u.username = role;
    u.password = password;
    dbUrl = u.toString();

    g = await startFake(
      [
        { id: LA, timeZone: 'America/Los_Angeles' },
        { id: DENIED, timeZone: 'Europe/Berlin', grant: false },
      ],
      {
        tokenLifetimeSeconds: TOKEN_LIFETIME_S,
      },
    );
    privateKey = (JSON.parse(fs.readFileSync(g.keyFile, 'utf8')) as { private_key: string }).private_key;
    config = writeConfig(g.dir, { ...db, url: dbUrl }, g, {
      properties: [{ id: LA }, { id: DENIED }],
      reports: { daily: { metrics: ['sessions', 'totalUsers'], startDate: '4daysAgo' } },
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'debug' },
    });

    // error paths log error messages: a retried 503 from the API, a failed token renewal
    g.fake.inject({ endpoint: 'runReport', property: LA, kind: 'status', status: 503, times: 1 });
    const daemon = await startDaemon(config, { LOG_LEVEL: 'debug' });
    const events = () => daemon.logs().map((l) => `${l['event']} ${l['property'] ?? ''}`.trim());
    try {
      await waitFor(() => events().includes(`job_succeeded ${LA}`) && events().includes(`job_failed ${DENIED}`), {
        timeoutMs: 20_000,
        what: 'the start-up fetch cycle',
      });
      g.fake.inject({ endpoint: 'token', kind: 'status', status: 500, times: 1 });
      await waitFor(() => events().includes('token_refresh_failed') && events().filter((e) => e === 'token_refreshed').length >= 2, {
        timeoutMs: 20_000,
        what: 'a failed and then a successful token renewal',
      });
      for (const p of ['/metrics', '/api/status', '/', '/readyz', '/healthz']) outputs[`GET ${p}`] = (await get(`${daemon.url}${p}`)).body;
    } finally {
      const code = await daemon.stop();
      outputs['run: stdout'] = daemon.out.stdout;
      outputs['run: stderr'] = daemon.out.stderr;
      assert.equal(code, 0, 'clean shutdown');
    }

    // check: prints the database line, the token exchange and property access as a table
    const check = await runCli(['check', '--config', config], { env: { LOG_LEVEL: 'debug' } });
    assert.equal(check.code, 1, 'check fails on the property without access');
    outputs['check: stdout'] = check.stdout;
    outputs['check: stderr'] = check.stderr;

    // a database that is not there
    const closed = new URL(dbUrl);
    closed.port = '1';
    const down = writeConfig(g.dir, { ...db, url: closed.toString() }, g, { properties: [{ id: LA }], log: { level: 'debug' } });
    const once = await runCli(['run', '--once', '--config', down], { env: { LOG_LEVEL: 'debug' } });
    assert.equal(once.code, 1, once.stderr);
    outputs['run --once (db down): stdout'] = once.stdout;
    outputs['run --once (db down): stderr'] = once.stderr;

    // a config that is refused, with the secret URL in it and in the environment
    const bad = writeJson(path.join(g.dir, 'bad.json'), { ...JSON.parse(fs.readFileSync(config, 'utf8')), nonsense: true, concurrency: 'many' });
    const refused = await runCli(['run', '--config', bad], { env: { DATABASE_URL: dbUrl } });
    assert.equal(refused.code, 2, refused.stderr);
    outputs['bad config: stdout'] = refused.stdout;
    outputs['bad config: stderr'] = refused.stderr;
  });

  after(async () => {
    await g?.stop();
    await db?.drop();
    if (admin) {
      await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await admin.end();
    }
  });

  it('the secrets to look for exist, so the search means something', () => {
    assert.match(privateKey, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(g.fake.issuedTokens().length >= 2, `tokens issued: ${g.fake.issuedTokens().length}`);
    assert.ok(g.fake.receivedAssertions().length >= 2 + 1, 'assertions of run and check');
    for (const e of ['api_retry', 'token_refresh_failed', 'job_failed', 'range_stored']) assert.match(outputs['run: stdout']!, new RegExp(`"event":"${e}"`));
    assert.match(outputs['GET /metrics']!, /ga_collector_rows_written_total\{property="111111"/);
    assert.match(outputs['GET /api/status']!, /"property": "333333"/);
  });

  it('no private key, access token, signed assertion or database password anywhere', () => {
    const needles: Array<[string, string]> = [
      ['private key', privateKey],
      ['database password', password],
      ['database password (URL-encoded)', encodeURIComponent(password)],
    ];
    // every base64 line of the key's body, alone
    for (const line of privateKey.split('\n')) if (line && !line.startsWith('-----')) needles.push([`private key line ${line.slice(0, 8)}…`, line]);
    for (const t of g.fake.issuedTokens()) {
      needles.push([`access token ${t.slice(0, 12)}…`, t]);
      needles.push([`access token body ${t.slice(7, 19)}…`, t.slice(7, 31)]);
    }
    for (const a of g.fake.receivedAssertions()) {
      const [header, claims, signature] = a.split('.') as [string, string, string];
      needles.push(['signed JWT assertion (prefix)', a.slice(0, 40)]);
      needles.push(['signed JWT assertion (claims)', claims.slice(0, 40)]);
      needles.push(['signed JWT assertion (signature)', signature.slice(0, 40)]);
      assert.ok(header.length > 10);
    }
    const leaks: string[] = [];
    for (const [where, text] of Object.entries(outputs)) {
      for (const [what, needle] of needles) if (needle.length >= 16 && text.includes(needle)) leaks.push(`${what} in ${where}`);
    }
    assert.deepEqual([...new Set(leaks)], []);
  });

  it('logs one JSON object per line; fetch events carry property, report, dates and a duration', () => {
    for (const source of ['run: stdout', 'run --once (db down): stdout', 'check: stdout']) {
      const lines = outputs[source]!.split('\n').filter((l) => l.trim());
      if (source === 'check: stdout') continue; // check prints a table, not logs
      for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `${source}: not JSON: ${l}`);
    }
    const logs = outputs['run: stdout']!.split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of logs) {
      assert.equal(typeof l['level'], 'string');
      assert.equal(typeof l['time'], 'string');
      assert.equal(typeof l['event'], 'string', `every line names its event: ${JSON.stringify(l)}`);
    }
    const fetchEvents = logs.filter((l) => /^(job_|range_|api_)/.test(String(l['event'])));
    assert.ok(fetchEvents.length >= 4, `fetch events: ${fetchEvents.map((l) => l['event']).join(', ')}`);
    for (const l of fetchEvents) {
      assert.match(String(l['property']), /^\d+$/, `property in ${JSON.stringify(l)}`);
      assert.equal(l['report'], 'daily', `report in ${JSON.stringify(l)}`);
    }
    const stored = logs.filter((l) => l['event'] === 'range_stored' && l['property'] === LA);
    assert.ok(stored.length >= 1);
    for (const l of stored) {
      assert.match(String(l['start']), /^\d{4}-\d{2}-\d{2}$/);
      assert.match(String(l['end']), /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(typeof l['durationMs'], 'number');
    }
    const done = logs.find((l) => l['event'] === 'job_succeeded' && l['property'] === LA)!;
    assert.equal(typeof done['durationMs'], 'number');
    assert.equal(typeof done['rows'], 'number');
    const failed = logs.find((l) => l['event'] === 'job_failed' && l['property'] === DENIED)!;
    assert.match(String(failed['err']), /Viewer/);
  });
});
