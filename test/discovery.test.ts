/**
 * Property discovery against the fake Google's Admin API: every GA4 property the service account
 * can read, over several accounts and pages, through `discovery.accounts` and `discovery.exclude`,
 * fetched with `discovery.reports`, an entry of `properties` winning over a discovered one; at
 * start, in `run --once`, on SIGHUP (a new property is backfilled, one that went is logged and
 * shown, its data kept); a 403 from the Admin API says how to fix it and the listed properties
 * are fetched regardless; `check` has a discovery row.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TokenManager } from '../src/auth/tokenManager.js';
import { loadConfig } from '../src/config/index.js';
import { Daemon } from '../src/daemon.js';
import { AdminClient } from '../src/discovery/adminClient.js';
import { renderStatusPage } from '../src/http/statusPage.js';
import type { StatusDocument } from '../src/status.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { SA_EMAIL, logLines, runCli, startFake, testDb, waitFor, writeConfig, writeJson, type FakeSetup, type TestDb } from './helpers.js';
import { get, parseExposition, startDaemon, valueOf, type DaemonProcess } from './ops-helpers.js';

const logger = createLogger('silent');

/** accountSummaries.list's answer, or Google's error envelope */
interface ListJson {
  accountSummaries?: Array<{
    name: string;
    account: string;
    displayName: string;
    propertySummaries?: Array<{ property: string; displayName: string; propertyType: string; parent: string }>;
  }>;
  nextPageToken?: string;
  error?: { code: number; status: string; message: string; details?: Array<{ reason?: string }> };
}
const PROJECT = 'test-project'; // the fake's project of SA_EMAIL

/**
 * Five GA accounts the service account sees (two pages of two and one of one), one it does not:
 *   5001 Shop:     7001 ordinary, 7002 subproperty of 7001, 7003 roll-up   (access on the account)
 *   5002 Blog:     7101, 7102                                              (access per property)
 *   5003 Archive:  7201                                                    (access per property)
 *   5004 Empty:    no property                                             (access on the account)
 *   5005 Labs:     7401                                                    (access on the account)
 *   5009 Other:    7901                                                    (no access)
 */
async function googleWithAccounts(): Promise<FakeSetup> {
  const g = await startFake([], { adminPageSize: 2 });
  const f = g.fake;
  const prop = (id: string, account: string, extra: Record<string, string> = {}) =>
    f.addProperty({ id, timeZone: 'UTC', account, displayName: `Site ${id}`, ...extra });
  f.addGaAccount({ id: '5001', displayName: 'Shop' });
  f.addGaAccount({ id: '5002', displayName: 'Blog' });
  f.addGaAccount({ id: '5003', displayName: 'Archive' });
  f.addGaAccount({ id: '5004', displayName: 'Empty' });
  f.addGaAccount({ id: '5005', displayName: 'Labs' });
  f.addGaAccount({ id: '5009', displayName: 'Other' });
  prop('7001', '5001');
  prop('7002', '5001', { propertyType: 'PROPERTY_TYPE_SUBPROPERTY', parent: 'properties/7001' });
  prop('7003', '5001', { propertyType: 'PROPERTY_TYPE_ROLLUP' });
  prop('7101', '5002');
  prop('7102', '5002');
  prop('7201', '5003');
  prop('7401', '5005');
  prop('7901', '5009');
  for (const a of ['5001', '5004', '5005']) f.grantAccount(SA_EMAIL, a);
  for (const p of ['7101', '7102', '7201']) f.grant(SA_EMAIL, p);
  return g;
}

/** A config for the fake with its Admin API root. */
function configFor(g: FakeSetup, db: TestDb, extra: Record<string, unknown>): string {
  const file = writeConfig(g.dir, db, g, extra);
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  doc.google.adminApiRootUrl = g.fake.apiRootUrl;
  return writeJson(file, doc);
}

const REPORTS = {
  daily: { metrics: ['sessions'], startDate: '4daysAgo', refreshDays: 1 },
  devices: { dimensions: ['deviceCategory'], metrics: ['sessions'], startDate: '2daysAgo', refreshDays: 1 },
};

/** property id -> dates stored, per report table */
async function stored(db: TestDb, report: string): Promise<Record<string, number>> {
  const rows = await db.query<{ property_id: string; n: string }>(
    `SELECT property_id, count(DISTINCT date) AS n FROM "${db.schema}"."${report}" GROUP BY 1 ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.property_id, Number(r.n)]));
}

describe("the fake Google's accountSummaries.list", () => {
  let g: FakeSetup;
  before(async () => {
    g = await googleWithAccounts();
  });
  after(async () => {
    await g?.stop();
  });

  async function call(token: string | null, query = ''): Promise<{ status: number; body: ListJson }> {
    const res = await fetch(`${g.fake.apiRootUrl}v1beta/accountSummaries${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as ListJson };
  }
  async function tokenOf(email: string): Promise<string> {
    const dir = fs.mkdtempSync(`${g.dir}/k`);
    const key = email === SA_EMAIL ? g.keyFile : writeJson(`${dir}/key.json`, g.fake.createAccount(email));
    const tokens = new TokenManager({ tokenUrl: '', logger, metrics: new Metrics({ defaultMetrics: false }) });
    try {
      return await tokens.forKeyFile(key).getToken();
    } finally {
      tokens.stop();
    }
  }

  it('pages with opaque tokens, shows each principal only what it can read, and answers as Google does', async () => {
    const token = await tokenOf(SA_EMAIL);
    const pages: ListJson[] = [];
    let q = '?pageSize=200';
    for (;;) {
      const r = await call(token, q);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      pages.push(r.body);
      if (!r.body.nextPageToken) break;
      q = `?pageSize=200&pageToken=${encodeURIComponent(r.body.nextPageToken)}`;
    }
    assert.deepEqual(
      pages.map((p) => p.accountSummaries?.length),
      [2, 2, 1],
    );
    const summaries = pages.flatMap((p) => p.accountSummaries ?? []);
    assert.deepEqual(
      summaries.map((a) => a.account),
      ['accounts/5001', 'accounts/5002', 'accounts/5003', 'accounts/5004', 'accounts/5005'],
    );
    assert.deepEqual(summaries[0], {
      name: 'accountSummaries/5001',
      account: 'accounts/5001',
      displayName: 'Shop',
      propertySummaries: [
        { property: 'properties/7001', displayName: 'Site 7001', propertyType: 'PROPERTY_TYPE_ORDINARY', parent: 'accounts/5001' },
        { property: 'properties/7002', displayName: 'Site 7002', propertyType: 'PROPERTY_TYPE_SUBPROPERTY', parent: 'properties/7001' },
        { property: 'properties/7003', displayName: 'Site 7003', propertyType: 'PROPERTY_TYPE_ROLLUP', parent: 'accounts/5001' },
      ],
    });
    assert.equal(summaries[3]!.propertySummaries, undefined, 'an account without properties has no propertySummaries field');

    // another principal with access to one property sees that account with that property only
    const other = 'other@test-project.iam.gserviceaccount.com';
    const otherToken = await tokenOf(other);
    g.fake.grant(other, '7102');
    const seen = await call(otherToken);
    assert.deepEqual(
      seen.body.accountSummaries?.map((a) => [a.account, a.propertySummaries?.map((p) => p.property)]),
      [['accounts/5002', ['properties/7102']]],
    );
    g.fake.revoke(other, '7102');
    assert.deepEqual((await call(otherToken)).body, {}, 'nothing readable: an empty message');

    // a page token is opaque: forged, altered or another principal's, it is refused
    const first = await call(token, '?pageSize=200');
    const t = first.body.nextPageToken!;
    for (const bad of [`${t}x`, 'eyJwIjoiYSIsIm8iOjJ9', t.replace(/^./, (c) => (c === 'e' ? 'f' : 'e'))]) {
      const r = await call(token, `?pageSize=200&pageToken=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error?.status, 'INVALID_ARGUMENT');
    }
    assert.equal((await call(otherToken, `?pageSize=200&pageToken=${encodeURIComponent(t)}`)).status, 400, "another principal's token");
    assert.equal((await call(token, `?pageSize=50&pageToken=${encodeURIComponent(t)}`)).status, 400, 'pageSize must match the call that gave the token');

    const anonymous = await call(null);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error?.status, 'UNAUTHENTICATED');

    g.fake.setAdminApiEnabled(PROJECT, false);
    try {
      const off = await call(token);
      assert.equal(off.status, 403);
      assert.equal(off.body.error?.status, 'PERMISSION_DENIED');
      assert.match(off.body.error?.message ?? '', /Google Analytics Admin API has not been used in project test-project before or it is disabled/);
      assert.equal(off.body.error?.details?.[0]?.reason, 'SERVICE_DISABLED');
    } finally {
      g.fake.setAdminApiEnabled(PROJECT, true);
    }
  });

  it('the Admin API client reads every page, asking 200 a page, and retries a 503', async () => {
    const tokens = new TokenManager({ tokenUrl: '', logger, metrics: new Metrics({ defaultMetrics: false }) });
    try {
      const client = new AdminClient({ rootUrl: g.fake.apiRootUrl, timeoutMs: 5_000, maxAttempts: 3, backoffBaseMs: 10 });
      const before = g.fake.events.length;
      g.fake.inject({ endpoint: 'accountSummaries', kind: 'status', status: 503, times: 1 });
      const accounts = await client.listAccountSummaries(tokens.forKeyFile(g.keyFile), logger);
      assert.deepEqual(
        accounts.map((a) => [a.id, a.displayName, a.properties.map((p) => p.id)]),
        [
          ['5001', 'Shop', ['7001', '7002', '7003']],
          ['5002', 'Blog', ['7101', '7102']],
          ['5003', 'Archive', ['7201']],
          ['5004', 'Empty', []],
          ['5005', 'Labs', ['7401']],
        ],
      );
      const calls = g.fake.events.slice(before).filter((e) => e.kind === 'accountSummaries');
      assert.deepEqual(
        calls.map((e) => [e.status, e.pageSize, e.pageToken]),
        [
          [503, 200, false],
          [200, 200, false],
          [200, 200, true],
          [200, 200, true],
        ],
      );
    } finally {
      tokens.stop();
    }
  });
});

describe('run --once with discovery', () => {
  let db: TestDb;
  let g: FakeSetup;
  before(async () => {
    db = await testDb('discovery_once');
    g = await googleWithAccounts();
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('fetches every discovered property of every page, through the filters, with discovery.reports; an entry of properties wins', async () => {
    const config = configFor(g, db, {
      reports: REPORTS,
      // 7101 is also discovered: the explicit entry's reports win over discovery.reports, and exclude does not touch it
      properties: [{ id: '7101', reports: ['daily', 'devices'] }],
      discovery: { enabled: true, accounts: ['5001', '5002', 'accounts/5005'], exclude: ['7102', 'properties/7101'], reports: ['daily'] },
    });
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    // 5003 is filtered out by accounts, 7102 excluded, 5009 not readable; subproperty and roll-up are fetched like the others
    assert.deepEqual(await stored(db, 'daily'), { '7001': 4, '7002': 4, '7003': 4, '7101': 4, '7401': 4 });
    assert.deepEqual(await stored(db, 'devices'), { '7101': 2 }, 'discovered properties get discovery.reports only');
    const done = logLines(r.stdout).find((l) => l['event'] === 'discovery_finished');
    assert.ok(done, r.stdout);
    assert.deepEqual([done['accounts'], done['listed'], done['kept']], [5, 7, 4]);
    assert.equal(g.fake.events.filter((e) => e.kind === 'accountSummaries').length >= 3, true, 'three pages');
  });

  it('a 403 from the Admin API: exit 1 with how to enable it; the listed properties are fetched regardless', async () => {
    const db2 = await testDb('discovery_403');
    g.fake.setAdminApiEnabled(PROJECT, false);
    try {
      const config = configFor(g, db2, { reports: { daily: REPORTS.daily }, properties: [{ id: '7201' }], discovery: { enabled: true } });
      const r = await runCli(['run', '--once', '--config', config]);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /^ga-collector: discovery: accountSummaries\.list for collector@test-project\.iam\.gserviceaccount\.com was refused \(PERMISSION_DENIED: Google Analytics Admin API has not been used in project test-project/,
      );
      assert.match(lines[0]!, /enable "Google Analytics Admin API" in the Google Cloud project of collector@test-project\.iam\.gserviceaccount\.com/);
      assert.deepEqual(await stored(db2, 'daily'), { '7201': 4 }, 'the configured property is fetched');
      const failed = logLines(r.stdout).find((l) => l['event'] === 'discovery_failed');
      assert.ok(failed && /Admin API/.test(String(failed['err'])), r.stdout);
      assert.equal(g.fake.events.filter((e) => e.kind === 'accountSummaries' && e.status === 403).length, 1, 'a 403 is not retried');
    } finally {
      g.fake.setAdminApiEnabled(PROJECT, true);
      await db2.drop();
    }
  });

  it('check has a discovery row: how many properties in how many accounts, or what to enable', async () => {
    const config = configFor(g, db, { reports: REPORTS, properties: [], discovery: { enabled: true, exclude: ['7003'] } });
    const good = await runCli(['check', '--config', config]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(
      good.stdout,
      /^ok +discovery +6 properties in 4 accounts kept of 7 listed in 5 accounts \(1 excluded\); 6 not in properties, fetched with reports daily, devices$/m,
    );
    g.fake.setAdminApiEnabled(PROJECT, false);
    try {
      const bad = await runCli(['check', '--config', config]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /^FAIL +discovery +accountSummaries\.list .*refused \(PERMISSION_DENIED/m);
      assert.match(bad.stdout, /fix: enable "Google Analytics Admin API" in the Google Cloud project of collector@test-project/);
    } finally {
      g.fake.setAdminApiEnabled(PROJECT, true);
    }
  });

  it('backfill takes a discovered property; one neither configured nor discovered is exit 2', async () => {
    const db2 = await testDb('discovery_backfill');
    try {
      const config = configFor(g, db2, { reports: REPORTS, properties: [], discovery: { enabled: true, accounts: ['5005'], reports: ['devices'] } });
      const ok = await runCli(['backfill', '--config', config, '--property', '7401', '--from', '6daysAgo', '--to', 'yesterday']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^backfill 7401\/devices: 6 dates, \d+ rows/m);
      assert.deepEqual(await stored(db2, 'devices'), { '7401': 6 });
      const other = await runCli(['backfill', '--config', config, '--property', '7101', '--from', '2daysAgo', '--to', 'yesterday']);
      assert.equal(other.code, 2, other.stderr);
      assert.match(
        other.stderr,
        /^ga-collector: backfill: property 7101 is neither in the config nor discovered .*check discovery\.accounts, discovery\.exclude and its access\n$/,
      );

      // the commands that ask Google nothing cannot tell a discovered property from a removed one:
      // prune refuses it, a dry run says it cannot plan it, status does not call it unconfigured
      const prune = await runCli(['prune', '--config', config, '--property', '7401', '--yes']);
      assert.equal(prune.code, 2, prune.stderr);
      assert.match(prune.stderr, /^ga-collector: prune: discovery is on and property 7401 may be one it fetches; .*discovery\.exclude/);
      assert.deepEqual(await stored(db2, 'devices'), { '7401': 6 }, 'nothing deleted');
      const dry = await runCli(['backfill', '--config', config, '--property', '7401', '--from', '3daysAgo', '--to', 'yesterday', '--dry-run']);
      assert.equal(dry.code, 2, dry.stderr);
      assert.match(dry.stderr, /^ga-collector: backfill --dry-run: property 7401 is not in properties; with discovery on, a dry run cannot tell/);
      const once = await runCli(['run', '--once', '--dry-run', '--config', config]);
      assert.equal(once.code, 0, once.stderr);
      assert.match(once.stdout, /discovery is on: the properties it would add are not planned here/);
      const status = await runCli(['status', '--config', config]);
      assert.match(status.stdout, /stored for properties outside `properties` \(discovered ones, or no longer configured/);
      assert.doesNotMatch(status.stdout, /prune` deletes it/);
    } finally {
      await db2.drop();
    }
  });

  it('a bad discovery setting is one line and exit 2', async () => {
    const config = configFor(g, db, { reports: REPORTS, discovery: { enabled: true, accounts: ['UA-123'] } });
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'ga-collector: config: discovery.accounts[0]: must be a numeric GA account id (GA Admin > Account details), got "UA-123"\n');
  });
});

describe('the daemon with discovery', () => {
  let db: TestDb;
  let g: FakeSetup;
  let daemon: DaemonProcess;

  before(async () => {
    db = await testDb('discovery_daemon');
    g = await googleWithAccounts();
    const config = configFor(g, db, {
      reports: { daily: REPORTS.daily },
      properties: [{ id: '7201' }],
      discovery: { enabled: true, accounts: ['5002', '5005'] },
      http: { host: '127.0.0.1', port: 0 },
    });
    daemon = await startDaemon(config);
  });
  after(async () => {
    await daemon?.stop();
    await g?.stop();
    await db?.drop();
  });

  const status = async () => JSON.parse((await get(`${daemon.url}/api/status`)).body) as StatusDocument;
  const gauge = async () => valueOf(parseExposition((await get(`${daemon.url}/metrics`)).body), 'ga_collector_properties_discovered', {});
  const hupAndList = async (n: number) => {
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon.logs().filter((l) => l['event'] === 'discovery_finished' && l['reason'] === 'reload').length === n, {
      what: `discovery after SIGHUP #${n}`,
    });
  };

  it('fetches the configured and the discovered properties at start, marks the discovered ones, and counts them', async () => {
    await waitFor(async () => JSON.stringify(await stored(db, 'daily')) === JSON.stringify({ '7101': 4, '7102': 4, '7201': 4, '7401': 4 }), {
      timeoutMs: 30_000,
      what: 'four properties stored',
    });
    assert.equal(await gauge(), 3);
    const doc = await status();
    const byProperty = Object.fromEntries(doc.reports.map((r) => [r.property, r.discovered]));
    assert.deepEqual(byProperty['7201'], null, 'configured');
    assert.deepEqual(byProperty['7101'], { account: '5002', accountName: 'Blog', displayName: 'Site 7101', propertyType: 'PROPERTY_TYPE_ORDINARY' });
    assert.equal(doc.discovery?.kept, 3);
    assert.equal(doc.discovery?.accounts, 5);
    assert.equal(doc.discovery?.lastError, null);
    assert.ok(Date.parse(doc.discovery?.nextRun ?? '') - Date.now() > 23 * 3600_000, 'next listing in a day');
    const html = (await get(`${daemon.url}/`)).body;
    assert.match(
      html,
      /<h3>Property 7101 <span class="muted">· UTC<\/span> <span class="pill" title="found by discovery in account 5002 \(Blog\), PROPERTY_TYPE_ORDINARY">discovered<\/span>/,
    );
    assert.match(html, /<div class="card" id="discovery">\n<p>3 properties kept of 7 listed in 5 accounts \(3 not in the configured list\)/);
  });

  it('a property that appears is fetched after SIGHUP, backfilled from the start date', async () => {
    g.fake.addProperty({ id: '7402', timeZone: 'UTC', account: '5005', displayName: 'New site' });
    await hupAndList(1);
    await waitFor(async () => (await stored(db, 'daily'))['7402'] === 4, { timeoutMs: 30_000, what: 'the new property backfilled' });
    const found = daemon.logs().find((l) => l['event'] === 'property_discovered' && l['property'] === '7402');
    assert.ok(found, 'logged');
    assert.equal(found['account'], '5005');
    assert.equal(await gauge(), 4);
  });

  it('a property that disappears is logged and shown with when it went; its data stays', async () => {
    g.fake.revoke(SA_EMAIL, '7102');
    const before = Date.now();
    await hupAndList(2);
    const gone = daemon.logs().find((l) => l['event'] === 'property_disappeared');
    assert.ok(gone, 'logged');
    assert.deepEqual([gone['property'], gone['account'], gone['displayName']], ['7102', '5002', 'Site 7102']);
    assert.equal(gone['level'], 'warn', 'a warning');
    assert.equal(await gauge(), 3);
    const doc = await status();
    assert.deepEqual(
      doc.discovery?.disappeared.map((p) => [p.property, p.displayName, p.account, p.accountName]),
      [['7102', 'Site 7102', '5002', 'Blog']],
    );
    assert.ok(Date.parse(doc.discovery?.disappeared[0]?.at ?? '') >= before - 1000);
    assert.equal(
      doc.reports.some((r) => r.property === '7102'),
      false,
      'no longer scheduled',
    );
    const html = (await get(`${daemon.url}/`)).body;
    assert.match(html, /<table id="disappeared">[\s\S]*<td>7102<\/td><td>Site 7102<\/td><td>Blog <span class="muted">\(5002\)<\/span><\/td>/);
    assert.equal((await stored(db, 'daily'))['7102'], 4, 'its data stays');
  });

  it('a SIGHUP that changes the filters applies them to what is listed', async () => {
    const file = daemon.child.spawnargs[daemon.child.spawnargs.indexOf('--config') + 1]!;
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    doc.discovery.exclude = ['7401'];
    writeJson(file, doc);
    await hupAndList(3);
    assert.equal(await gauge(), 2);
    const ids = new Set((await status()).reports.map((r) => r.property));
    assert.deepEqual([...ids].sort(), ['7101', '7201', '7402']);
    assert.equal((await status()).discovery?.disappeared.length, 1, 'an excluded property did not disappear: the operator left it out');
  });
});

describe('a discovery that fails at start', () => {
  let db: TestDb;
  let g: FakeSetup;

  before(async () => {
    db = await testDb('discovery_retry');
    g = await googleWithAccounts();
  });
  after(async () => {
    await g?.stop();
    await db?.drop();
  });

  it('fetches the configured properties, shows the error, retries with backoff and picks the discovered ones up when it heals', async () => {
    g.fake.setAdminApiEnabled(PROJECT, false);
    const config = loadConfig({
      file: configFor(g, db, { reports: { daily: REPORTS.daily }, properties: [{ id: '7201' }], discovery: { enabled: true, accounts: ['5005'] } }),
      env: {},
    });
    const daemon = new Daemon({ config, logger, discoveryRetryMs: 300, backoffBaseMs: 10 });
    await daemon.start();
    try {
      const first = await daemon.discover(true);
      assert.match(first ?? '', /enable "Google Analytics Admin API"/);
      await waitFor(async () => (await stored(db, 'daily'))['7201'] === 4, { what: 'the configured property fetched meanwhile' });
      const doc = await daemon.statusDocument();
      assert.match(doc.discovery!.lastError ?? '', /Admin API is not enabled for the Cloud project/);
      assert.ok(doc.discovery!.nextRun, 'a retry is scheduled');
      assert.equal(doc.discovery!.lastSuccess, null);
      const html = renderStatusPage(doc);
      assert.match(html, /<span class="pill bad">discovery failing<\/span>/);
      assert.match(html, /<p class="err" id="discovery-error">Discovery failing .*enable &quot;Google Analytics Admin API&quot;/);
      assert.match(html, /<title>⚠ ga-collector status<\/title>/);

      const failuresBefore = g.fake.events.filter((e) => e.kind === 'accountSummaries').length;
      await waitFor(() => g.fake.events.filter((e) => e.kind === 'accountSummaries').length > failuresBefore, { what: 'a retry' });
      g.fake.setAdminApiEnabled(PROJECT, true);
      await waitFor(async () => (await stored(db, 'daily'))['7401'] === 4, {
        timeoutMs: 30_000,
        what: 'the discovered property fetched once discovery healed',
      });
      const healed = await daemon.statusDocument();
      assert.equal(healed.discovery!.lastError, null);
      assert.equal(healed.discovery!.kept, 1);
      assert.match(await daemon.metrics.text(), /^ga_collector_properties_discovered 1$/m);
    } finally {
      g.fake.setAdminApiEnabled(PROJECT, true);
      await daemon.stop(0);
    }
  });
});
