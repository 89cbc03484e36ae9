/**
 * `ga-collector prune --site URL [--report NAME]` and `--report NAME` of a Search Console report,
 * against the fake Google and a real PostgreSQL: the same rules as for GA4 properties (refused
 * while configured, counted without --yes, deleted in one transaction with --yes, exit 1 while a
 * daemon holds the job's lock, a whole report's table and definitions dropped), in
 * searchConsole.schema, leaving GA4's data and the other sites alone; status lists what is left
 * over until prune has removed it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { lockKey } from '../src/store/locks.js';
import { SA_EMAIL, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const KEEP = 'sc-domain:example.com';
const GONE = 'https://www.example.org/';
const DENIED = 'sc-domain:denied.example';
const PROPERTY = '660001';

describe('ga-collector prune of Search Console sites and reports', () => {
  let db: TestDb;
  let g: FakeSetup;
  let gsc: string;
  let config: (searchConsole: Record<string, unknown>) => string;
  const scReports = {
    performance: { dimensions: ['date', 'query'], startDate: '5daysAgo' },
    pages: { dimensions: ['date', 'page'], startDate: '5daysAgo' },
  };

  before(async () => {
    db = await testDb('prunesite');
    gsc = `${db.schema}_gsc`;
    g = await startFake([{ id: PROPERTY, timeZone: 'UTC' }]);
    g.fake.addSite({ url: KEEP, queries: 6, pages: 3 });
    g.fake.addSite({ url: GONE, queries: 4, pages: 2 });
    g.fake.addSite({ url: DENIED });
    g.fake.grantSite(SA_EMAIL, KEEP);
    g.fake.grantSite(SA_EMAIL, GONE);
    config = (searchConsole) =>
      writeConfig(g.dir, db, g, {
        google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
        properties: [{ id: PROPERTY }],
        reports: { daily: { metrics: ['sessions'], startDate: '3daysAgo' } },
        searchConsole: { schema: gsc, ...searchConsole },
      });
    const run = await runCli(['run', '--once', '--config', config({ sites: [KEEP, GONE, DENIED], reports: scReports })]);
    assert.equal(run.code, 1, 'the denied site fails alone');
  });
  after(async () => {
    await g?.stop();
    await db?.query(`DROP SCHEMA IF EXISTS "${gsc}" CASCADE`).catch(() => undefined);
    await db?.drop();
  });

  const count = async (table: string, where = 'true', params: unknown[] = []) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${gsc}".${table} WHERE ${where}`, params))[0]!.n;
  const ofSite = (site: string) => ['site_url = $1', [site]] as const;

  it('refuses a site or report still configured: exit 2, one line, nothing deleted', async () => {
    const file = config({ sites: [{ url: KEEP, reports: ['performance'] }], reports: scReports });
    for (const [args, re] of [
      [['--site', KEEP], /^ga-collector: prune: site sc-domain:example\.com is still in the configuration \(searchConsole\.sites\[0\]\); prune deletes only/],
      [
        ['--site', KEEP, '--report', 'performance'],
        /^ga-collector: prune: site sc-domain:example\.com still uses report performance \(searchConsole\.sites\[0\]\); /,
      ],
      [['--report', 'pages'], /^ga-collector: prune: report pages is still in the configuration \(searchConsole\.reports\.pages\); /],
    ] as const) {
      const r = await runCli(['prune', '--config', file, ...args, '--yes']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    assert.equal(await count('fetch_days', ...ofSite(KEEP)), 6);
  });

  it('a site that left: status names it, the plan counts it per table, a running daemon blocks it, --yes deletes it alone', async () => {
    const file = config({ sites: [KEEP], reports: scReports });
    const status = await runCli(['status', '--config', file]);
    assert.match(status.stdout, /^stored, but no longer configured \(`ga-collector prune` deletes it\):$/m);
    assert.match(status.stdout, /^ {4}site https:\/\/www\.example\.org\/ report performance: 3 dates through /m);
    assert.doesNotMatch(status.stdout, /denied/, 'a site that only failed stored nothing (its failures are not listed)');

    const perf = await count('performance', ...ofSite(GONE));
    assert.ok(perf > 0);
    const plan = await runCli(['prune', '--config', file, '--site', GONE]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, new RegExp(`^prune site ${GONE}: would delete:$`, 'm'));
    assert.match(plan.stdout, new RegExp(`^  delete from  ${gsc}\\.performance +${perf} rows?$`, 'm'));
    assert.match(plan.stdout, new RegExp(`^  delete from  ${gsc}\\.fetch_days +6 rows$`, 'm'));
    assert.match(plan.stdout, new RegExp(`^  delete from  ${gsc}\\.job_failures +0 rows$`, 'm'));
    assert.doesNotMatch(plan.stdout, /properties|_totals/, 'Search Console has neither');
    assert.match(plan.stdout, /nothing was deleted; run again with --yes/);
    assert.equal(await count('fetch_days', ...ofSite(GONE)), 6);

    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [lockKey(gsc, 'job', GONE, 'pages')]);
      const busy = await runCli(['prune', '--config', file, '--site', GONE, '--yes']);
      assert.equal(busy.code, 1, busy.stderr);
      assert.match(
        busy.stderr,
        new RegExp(`^ga-collector: prune site ${GONE}: site ${GONE} report pages is being worked on by a running ga-collector; reload it`),
      );
      assert.equal(await count('fetch_days', ...ofSite(GONE)), 6, 'nothing deleted');
    } finally {
      await holder.end();
    }

    const keep = await count('performance', ...ofSite(KEEP));
    const ga4 = (await db.query(`SELECT 1 FROM "${db.schema}".daily WHERE property_id = $1`, [PROPERTY])).length;
    const r = await runCli(['prune', '--config', file, '--site', GONE, '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^prune site ${GONE}: done, \\d+ rows removed in one transaction:$`, 'm'));
    for (const t of ['performance', 'pages', 'fetch_days']) assert.equal(await count(t, ...ofSite(GONE)), 0, t);
    assert.equal(await count('performance', ...ofSite(KEEP)), keep, 'the configured site keeps its rows');
    assert.equal((await db.query(`SELECT 1 FROM "${db.schema}".daily WHERE property_id = $1`, [PROPERTY])).length, ga4, 'GA4 keeps its rows');

    // the denied site left only its failures
    const denied = await runCli(['prune', '--config', file, '--site', DENIED, '--yes']);
    assert.equal(denied.code, 0, denied.stderr);
    assert.match(denied.stdout, new RegExp(`^  delete from  ${gsc}\\.job_failures +2 rows$`, 'm'));
    assert.equal(await count('job_failures', ...ofSite(DENIED)), 0);
    const again = await runCli(['prune', '--config', file, '--site', GONE]);
    assert.equal(again.stdout, `prune site ${GONE}: nothing stored\n`);
    const clean = await runCli(['status', '--config', file]);
    assert.doesNotMatch(clean.stdout, /no longer configured/, 'status has nothing left to point at prune');
  });

  it('one report of a site, then a whole Search Console report: its table dropped, its definitions deleted', async () => {
    const onePair = config({ sites: [{ url: KEEP, reports: ['performance'] }], reports: scReports });
    const pair = await runCli(['prune', '--config', onePair, '--site', KEEP, '--report', 'pages', '--yes']);
    assert.equal(pair.code, 0, pair.stderr);
    assert.equal(await count('pages', ...ofSite(KEEP)), 0);
    assert.equal(await count('fetch_days', "report = 'pages'"), 0);
    assert.equal(await count('fetch_days', "report = 'performance'"), 3, 'the other report is untouched');

    const file = config({ sites: [KEEP], reports: { performance: scReports.performance } });
    const plan = await runCli(['prune', '--config', file, '--report', 'pages']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /^prune report pages: would drop and delete:$/m);
    assert.match(plan.stdout, new RegExp(`^  drop table   ${gsc}\\.pages +\\(0 rows\\)$`, 'm'));
    assert.match(plan.stdout, new RegExp(`^  delete from  ${gsc}\\.report_definitions +1 row$`, 'm'));
    assert.doesNotMatch(plan.stdout, new RegExp(`${db.schema}\\.`), 'nothing of GA4 is touched');
    const r = await runCli(['prune', '--config', file, '--report', 'pages', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    const rel = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`"${gsc}".pages`]);
    assert.equal(rel[0]!.t, null, 'table dropped');
    assert.equal(await count('report_definitions', "report = 'pages'"), 0);
    assert.equal(await count('report_definition_versions', "report = 'pages'"), 0);
    // the configuration runs on as before
    const run = await runCli(['run', '--once', '--config', file]);
    assert.equal(run.code, 0, run.stderr);
  });

  it('with no site configured any more, status still lists what is stored, and prune removes it', async () => {
    const file = config({ sites: [] });
    const status = await runCli(['status', '--config', file]);
    assert.match(
      status.stdout,
      /^stored, but no longer configured \(`ga-collector prune` deletes it\):\n {4}site sc-domain:example\.com report performance: /m,
    );
    const r = await runCli(['prune', '--config', file, '--site', KEEP, '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await count('fetch_days'), 0);
    assert.doesNotMatch((await runCli(['status', '--config', file])).stdout, /no longer configured/);
  });
});
