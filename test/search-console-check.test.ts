/**
 * `ga-collector check` with Search Console sites, against the fake Google and a real PostgreSQL:
 * a row for the Search Console schema, a row per site (sites.get: the permission level) and per
 * site report (a 1-row query); a site the principal is no user of, or an unverified user of, fails
 * with the fix that names the email and where to add it; a definition Google refuses fails with
 * its report named; exit codes as for properties.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { checkAll, formatTable, type CheckRow } from '../src/check.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/log.js';
import { migrate } from '../src/store/migrations.js';
import { SA_EMAIL, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const FULL = 'sc-domain:example.com';
const RESTRICTED = 'https://www.example.org/';
const DENIED = 'sc-domain:denied.example';
const UNVERIFIED = 'sc-domain:unverified.example';
const PROPERTY = '455555';
const ADD_USER = 'Search Console > Settings > Users and permissions > Add user';
const logger = createLogger('silent');

const reports = {
  performance: { dimensions: ['date', 'query', 'page', 'country', 'device'] },
  appearance: { dimensions: ['date', 'searchAppearance'], dataState: 'all' },
};

describe('ga-collector check with Search Console sites', () => {
  let db: TestDb;
  let g: FakeSetup;
  let gsc: string;

  before(async () => {
    db = await testDb('sccheck');
    gsc = `${db.schema}_gsc`;
    g = await startFake([{ id: PROPERTY, timeZone: 'Europe/Berlin' }]);
    for (const url of [FULL, RESTRICTED, DENIED, UNVERIFIED]) g.fake.addSite({ url, queries: 5, pages: 3 });
    g.fake.grantSite(SA_EMAIL, FULL, 'siteFullUser');
    g.fake.grantSite(SA_EMAIL, RESTRICTED, 'siteRestrictedUser');
    g.fake.grantSite(SA_EMAIL, UNVERIFIED, 'siteUnverifiedUser');
    await migrate(db.pool, db.schema, logger);
  });
  after(async () => {
    await g?.stop();
    await db?.query(`DROP SCHEMA IF EXISTS "${gsc}" CASCADE`).catch(() => undefined);
    await db?.drop();
  });

  function config(sites: unknown[], extra: Record<string, unknown> = {}): string {
    return writeConfig(g.dir, db, g, {
      google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
      properties: [{ id: PROPERTY }],
      searchConsole: { schema: gsc, sites, reports },
      ...extra,
    });
  }
  const check = (sites: unknown[]) => checkAll(loadConfig({ file: config(sites), env: {} }), logger, { timeoutMs: 5_000 });
  const row = (rows: CheckRow[], what: string) => {
    const r = rows.find((x) => x.what === what);
    assert.ok(r, `no row ${what} in\n${formatTable(rows)}`);
    return r;
  };

  it('before migrate: the Search Console schema is pending; after it, every site and report row is ok and the exit is 0', async () => {
    const file = config([FULL, { url: RESTRICTED, reports: ['performance'] }]);
    const before = await runCli(['check', '--config', file]);
    assert.equal(before.code, 1, before.stdout);
    assert.match(before.stdout, new RegExp(`FAIL\\s+database ${gsc}\\s+Search Console schema ${gsc} at migration 0 of 1: 1 pending`));
    assert.match(before.stdout, /fix: `ga-collector migrate --config FILE` applies them/);

    const migrated = await runCli(['migrate', '--config', file]);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, new RegExp(`migrate: Search Console schema ${gsc}: applied 001_initial\\.sql; now at migration 1`));

    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const line = (what: string) => r.stdout.split('\n').find((l) => new RegExp(`^\\S+\\s+${what.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s`).test(l));
    assert.match(line('config')!, /1 property, 1 report; 2 Search Console sites, 2 reports/);
    assert.match(line(`database ${gsc}`)!, /^ok .*Search Console schema .* at migration 1 \(current\)/);
    assert.match(line(`site ${FULL}`)!, new RegExp(`^ok .*readable by ${SA_EMAIL} \\(Full user\\); dates are Pacific days \\(America/Los_Angeles\\)`));
    assert.match(line(`site ${RESTRICTED}`)!, /^ok .*\(Restricted user\)/);
    assert.match(
      line(`site ${FULL} report performance`)!,
      /^ok .*date \+ query, page, country, device; type web, dataState final, aggregationType auto; a 1-row query for \d{4}-\d\d-\d\d answered \(1 row\)/,
    );
    assert.match(line(`site ${FULL} report appearance`)!, /^ok .*dataState all.*a date per request \(searchAppearance\)/);
    assert.ok(!line(`site ${RESTRICTED} report appearance`), 'only the reports the site fetches');
    assert.match(r.stdout, /all \d+ checks passed/);
  });

  it('a site the principal is no user of, or an unverified user of, fails with the fix naming the email; its reports are skipped; exit 1', async () => {
    const rows = await check([FULL, DENIED, UNVERIFIED]);
    assert.equal(row(rows, `site ${FULL}`).status, 'ok');
    for (const site of [DENIED, UNVERIFIED]) {
      const r = row(rows, `site ${site}`);
      assert.equal(r.status, 'FAIL', formatTable(rows));
      assert.ok(r.fix?.includes(ADD_USER), r.fix);
      assert.ok(r.fix?.includes(SA_EMAIL), r.fix);
      assert.match(r.fix!, /Restricted \(enough to read/);
      assert.equal(row(rows, `site ${site} report performance`).status, 'skip');
    }
    assert.match(row(rows, `site ${DENIED}`).detail, /is not a user of Search Console site sc-domain:denied\.example/);
    assert.match(row(rows, `site ${UNVERIFIED}`).detail, /unverified user .* serves it no data/);
    const r = await runCli(['check', '--config', config([DENIED])]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`fix: in ${ADD_USER}: email ${SA_EMAIL.replace(/\./g, '\\.')}`));
  });

  it("a definition Google refuses fails on its report's row, with the report to change", async () => {
    g.fake.inject({
      endpoint: 'searchAnalytics',
      site: FULL,
      kind: 'status',
      status: 400,
      message: 'Request contains an invalid argument.',
      match: (q) => q.dimensions.includes('searchAppearance'),
    });
    try {
      const rows = await check([FULL]);
      assert.equal(row(rows, `site ${FULL}`).status, 'ok');
      assert.equal(row(rows, `site ${FULL} report performance`).status, 'ok');
      const bad = row(rows, `site ${FULL} report appearance`);
      assert.equal(bad.status, 'FAIL');
      assert.match(bad.detail, /refused as invalid .*invalid argument/);
      assert.match(bad.fix!, /change searchConsole\.reports\.appearance/);
    } finally {
      g.fake.clearFaults();
    }
  });

  it('a request that gets no answer says what it met: a reset connection (Search Console and the Data API), a closed port', async () => {
    g.fake.inject({ endpoint: 'sites', kind: 'reset' });
    g.fake.inject({ endpoint: 'metadata', kind: 'reset' });
    try {
      const rows = await check([FULL]);
      const site = row(rows, `site ${FULL}`);
      assert.equal(site.status, 'FAIL', formatTable(rows));
      assert.match(
        site.detail,
        /sites\.get for site sc-domain:example\.com failed before a response: ECONNRESET \(socket hang up\) \(gave up after 2 attempts\)/,
      );
      const property = row(rows, `property ${PROPERTY}`);
      assert.match(property.detail, /failed before a response: ECONNRESET \(socket hang up\)/, formatTable(rows));
    } finally {
      g.fake.clearFaults();
    }
    // nothing listens on a port just closed: the connection is refused, and the message says where
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(port));
      });
    });
    const file = writeConfig(g.dir, db, g, {
      google: {
        credentials: g.keyFile,
        tokenUrl: g.fake.tokenUrl,
        apiRootUrl: `http://127.0.0.1:${closed}/`,
        searchConsoleRootUrl: `http://127.0.0.1:${closed}/`,
      },
      properties: [{ id: PROPERTY }],
      searchConsole: { schema: gsc, sites: [FULL], reports },
    });
    const rows = await checkAll(loadConfig({ file, env: {} }), logger, { timeoutMs: 5_000 });
    const refused = new RegExp(`failed before a response: ECONNREFUSED \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${closed}\\)`);
    assert.match(row(rows, `site ${FULL}`).detail, refused, formatTable(rows));
    assert.match(row(rows, `property ${PROPERTY}`).detail, refused, formatTable(rows));
  });

  it('the token Search Console sees carries both scopes: the one token of the principal serves the Data API too', async () => {
    const rows = await check([FULL]);
    assert.ok(
      rows.every((r) => r.status === 'ok'),
      formatTable(rows),
    );
    const scoped = g.fake.events.filter((e) => (e.kind === 'searchAnalytics' || e.kind === 'sites') && e.status === 200);
    assert.ok(scoped.length >= 2, 'sites.get and the 1-row queries');
    for (const e of scoped) {
      assert.ok(e.scopes?.includes('https://www.googleapis.com/auth/analytics.readonly'), JSON.stringify(e.scopes));
      assert.ok(e.scopes?.includes('https://www.googleapis.com/auth/webmasters.readonly'), JSON.stringify(e.scopes));
    }
  });
});
