/**
 * Search Console beside GA4, against the fake Google and a real PostgreSQL: `run --once` with two
 * sites and a GA4 property stores exactly what Google serves; the refresh window is fetched again
 * and nothing else; a site the principal is not a user of fails alone with the fix; small pages
 * are read to the empty one; several daemons fetch each site and date once; `backfill --site`
 * and its refusals.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SearchAnalyticsRow } from '@ga-collector/fake-google';
import { addDays, dateRange } from '../src/time.js';
import { SA_EMAIL, makeDaemon, runCli, startFake, testDb, untilScheduleFired, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const DOMAIN = 'sc-domain:example.com';
const PREFIX = 'https://www.example.org/';
const DENIED = 'sc-domain:denied.example';
const PROPERTY = '123456';
const DIMS = ['query', 'page', 'country', 'device'];

const scReports = {
  performance: { dimensions: ['date', ...DIMS], startDate: '9daysAgo', refreshDays: 2 },
  appearance: { dimensions: ['date', 'searchAppearance'], dataState: 'all', startDate: '5daysAgo', refreshDays: 1 },
};

/** Stored rows of a report and site as Google's row shape, sorted. */
async function storedRows(db: TestDb, schema: string, table: string, site: string, dims: string[]): Promise<string[]> {
  const cols = dims.map((d) => (d === 'searchAppearance' ? 'search_appearance' : d));
  const rows = await db.query<Record<string, unknown>>(
    `SELECT to_char(date,'YYYY-MM-DD') AS date, ${cols.join(', ')}, clicks::text AS clicks, impressions::text AS impressions, ctr, position
       FROM "${schema}"."${table}" WHERE site_url = $1`,
    [site],
  );
  return rows.map((r) => JSON.stringify([r['date'], ...cols.map((c) => r[c]), Number(r['clicks']), Number(r['impressions']), r['ctr'], r['position']])).sort();
}

/** Google's rows for the dates, as stored: one per date and combination. */
function googleRows(g: FakeSetup, site: string, dates: string[], dims: string[], dataState: 'final' | 'all' = 'final'): string[] {
  const out: string[] = [];
  const asRow = (date: string, keys: string[], r: SearchAnalyticsRow) => JSON.stringify([date, ...keys, r.clicks, r.impressions, r.ctr, r.position]);
  if (dims.includes('searchAppearance')) {
    for (const date of dates)
      for (const r of g.fake.searchAnalyticsRows(site, { startDate: date, endDate: date, dimensions: ['searchAppearance'], dataState }))
        out.push(asRow(date, r.keys, r));
  } else if (dates.length) {
    for (const r of g.fake.searchAnalyticsRows(site, { startDate: dates[0]!, endDate: dates[dates.length - 1]!, dimensions: ['date', ...dims], dataState }))
      out.push(asRow(r.keys[0]!, r.keys.slice(1), r));
  }
  return out.sort();
}

async function ledger(db: TestDb, schema: string, site: string, report: string) {
  return db.query<{ date: string; row_count: number; settled: boolean; fetched_at: Date; sampled: boolean; subject_to_thresholding: boolean }>(
    `SELECT to_char(date,'YYYY-MM-DD') AS date, row_count, settled, fetched_at, sampled, subject_to_thresholding
       FROM "${schema}".fetch_days WHERE site_url = $1 AND report = $2 ORDER BY date`,
    [site, report],
  );
}

describe('Search Console beside GA4', () => {
  let db: TestDb;
  let g: FakeSetup;
  let gsc: string;
  let config: string;
  let today: string;

  before(async () => {
    db = await testDb('gsc');
    gsc = `${db.schema}_gsc`;
    g = await startFake([{ id: PROPERTY, timeZone: 'America/Los_Angeles' }]);
    g.fake.addSite({ url: DOMAIN, queries: 12, pages: 5 });
    g.fake.addSite({ url: PREFIX, queries: 8, pages: 4 });
    g.fake.addSite({ url: DENIED });
    g.fake.grantSite(SA_EMAIL, DOMAIN);
    g.fake.grantSite(SA_EMAIL, PREFIX, 'siteRestrictedUser');
    today = g.fake.searchConsoleToday();
    config = writeConfig(g.dir, db, g, {
      google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
      properties: [{ id: PROPERTY }],
      reports: { daily: { metrics: ['sessions'], startDate: '3daysAgo' } },
      searchConsole: { schema: gsc, sites: [DOMAIN, { url: PREFIX, reports: ['performance', 'appearance'] }], reports: scReports },
      schedule: '* * * * * *',
    });
  });
  after(async () => {
    await g?.stop();
    await db?.query(`DROP SCHEMA IF EXISTS "${gsc}" CASCADE`).catch(() => undefined);
    await db?.drop();
  });

  it('run --once stores exactly what Search Console serves for two sites, beside a GA4 property', async () => {
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    const ga4 = await db.query(`SELECT 1 FROM "${db.schema}".daily WHERE property_id = $1`, [PROPERTY]);
    assert.equal(ga4.length, 3, 'the GA4 property is stored too');
    const finalDates = dateRange(addDays(today, -9), addDays(today, -3));
    const allDates = dateRange(addDays(today, -5), addDays(today, -1));
    for (const site of [DOMAIN, PREFIX]) {
      assert.deepEqual(await storedRows(db, gsc, 'performance', site, DIMS), googleRows(g, site, finalDates, DIMS), `${site}: performance`);
      const days = await ledger(db, gsc, site, 'performance');
      assert.deepEqual(
        days.map((d) => d.date),
        finalDates,
        `${site}: every Pacific date through today-3, none later`,
      );
      // the window is the last two dates due; the rest is settled; no GA data-quality flag
      assert.deepEqual(
        days.map((d) => d.settled),
        finalDates.map((d) => d < addDays(today, -4)),
      );
      assert.ok(days.every((d) => !d.sampled && !d.subject_to_thresholding));
    }
    assert.deepEqual(
      await storedRows(db, gsc, 'appearance', PREFIX, ['searchAppearance']),
      googleRows(g, PREFIX, allDates, ['searchAppearance'], 'all'),
      'searchAppearance, fresh data through today-1',
    );
    assert.deepEqual(
      (await ledger(db, gsc, PREFIX, 'appearance')).map((d) => d.date),
      allDates,
    );
    // one date per request, by searchAppearance alone
    const appearance = g.fake.events.filter((e) => e.kind === 'searchAnalytics' && e.site === PREFIX && e.dataState === 'all');
    assert.ok(appearance.length > 0 && appearance.every((e) => e.startDate === e.endDate));
    assert.ok(g.fake.events.filter((e) => e.kind === 'searchAnalytics').every((e) => e.rowLimit === 25_000));
  });

  it('a second run after the schedule fired fetches only the refresh window again', async () => {
    const before = await ledger(db, gsc, DOMAIN, 'performance');
    const seen = g.fake.events.length;
    await untilScheduleFired();
    const r = await runCli(['run', '--once', '--config', config]);
    assert.equal(r.code, 0, r.stderr);
    const after = await ledger(db, gsc, DOMAIN, 'performance');
    const refetched = after.filter((d, i) => d.fetched_at.getTime() !== before[i]!.fetched_at.getTime()).map((d) => d.date);
    assert.deepEqual(refetched, [addDays(today, -4), addDays(today, -3)]);
    const asked = g.fake.events.slice(seen).filter((e) => e.kind === 'searchAnalytics' && e.site === DOMAIN && e.dataState === 'final');
    assert.ok(asked.length > 0);
    for (const e of asked) assert.ok(e.startDate! >= addDays(today, -4) && e.endDate! <= addDays(today, -3), `${e.startDate}..${e.endDate}`);
  });

  it('a site the principal is not a user of fails alone, saying how to add it', async () => {
    const file = writeConfig(g.dir, db, g, {
      google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
      properties: [],
      searchConsole: { schema: gsc, sites: [DENIED, DOMAIN], reports: scReports },
    });
    const r = await runCli(['run', '--once', '--config', file]);
    assert.equal(r.code, 1, r.stderr);
    const line = r.stderr.split('\n').find((l) => l.includes(DENIED));
    assert.ok(line, r.stderr);
    assert.match(line, new RegExp(`${SA_EMAIL.replace(/\./g, '\\.')} is not a user of Search Console site ${DENIED}`));
    assert.match(line, /Search Console > Settings > Users and permissions > Add user/);
    assert.equal((await ledger(db, gsc, DENIED, 'performance')).length, 0);
    assert.ok((await ledger(db, gsc, DOMAIN, 'performance')).length > 0, 'the other site is stored');
  });

  it('reads small pages until one comes back empty', async () => {
    const daemon = await makeDaemon(
      db,
      g,
      {
        google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
        properties: [],
        searchConsole: { schema: `${gsc}_pages`, sites: [DOMAIN], reports: { performance: scReports.performance } },
      },
      { searchConsoleRowLimit: 50 },
    );
    try {
      const seen = g.fake.events.length;
      const [result] = await daemon.scheduler.runOnce();
      assert.equal(result?.ok, true, result?.error);
      const pages = g.fake.events.slice(seen).filter((e) => e.kind === 'searchAnalytics');
      const firstChunk = pages.filter((e) => e.startDate === pages[0]!.startDate);
      assert.ok(firstChunk.length > 3, `several pages (${firstChunk.length})`);
      // each page asks from where the rows so far end, 50 at a time
      assert.ok(firstChunk.every((e) => e.rowLimit === 50));
      assert.deepEqual(
        firstChunk.map((e) => e.startRow),
        firstChunk.map((_, i) => firstChunk.slice(0, i).reduce((n, e) => n + e.rows!, 0)),
      );
      assert.equal(firstChunk[firstChunk.length - 1]!.rows, 0, 'the last page is empty');
      const dates = dateRange(addDays(today, -9), addDays(today, -3));
      assert.deepEqual(await storedRows(db, `${gsc}_pages`, 'performance', DOMAIN, DIMS), googleRows(g, DOMAIN, dates, DIMS));
    } finally {
      await daemon.stop(0);
      await db.query(`DROP SCHEMA IF EXISTS "${gsc}_pages" CASCADE`);
    }
  });

  it('several daemons fetch each site and date once', async () => {
    const schema = `${gsc}_multi`;
    const file = writeConfig(g.dir, db, g, {
      google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
      properties: [],
      searchConsole: { schema, sites: [DOMAIN, PREFIX], reports: { performance: { ...scReports.performance, startDate: '30daysAgo' } } },
    });
    try {
      const seen = g.fake.events.length;
      const runs = await Promise.all([1, 2, 3].map(() => runCli(['run', '--once', '--config', file])));
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const dates = dateRange(addDays(today, -30), addDays(today, -3));
      for (const site of [DOMAIN, PREFIX]) {
        const firstPages = g.fake.events.slice(seen).filter((e) => e.kind === 'searchAnalytics' && e.site === site && e.startRow === 0);
        const asked = firstPages.flatMap((e) => dateRange(e.startDate!, e.endDate!)).sort();
        assert.deepEqual(asked, dates, `${site}: every date asked once`);
        assert.deepEqual(await storedRows(db, schema, 'performance', site, DIMS), googleRows(g, site, dates, DIMS));
      }
    } finally {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });

  it('backfill --site stores a range and refuses one Google does not serve yet', async () => {
    const from = addDays(today, -20);
    const to = addDays(today, -15);
    const ok = await runCli(['backfill', '--config', config, '--site', DOMAIN, '--report', 'performance', '--from', from, '--to', to]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`backfill ${DOMAIN}/performance: 6 dates`));
    const stored = (await ledger(db, gsc, DOMAIN, 'performance')).map((d) => d.date).filter((d) => d >= from && d <= to);
    assert.deepEqual(stored, dateRange(from, to));
    assert.deepEqual(
      (await storedRows(db, gsc, 'performance', DOMAIN, DIMS)).filter((r) => JSON.parse(r)[0] <= to && JSON.parse(r)[0] >= from),
      googleRows(g, DOMAIN, dateRange(from, to), DIMS),
    );

    const late = await runCli(['backfill', '--config', config, '--site', DOMAIN, '--report', 'performance', '--from', '5daysAgo', '--to', 'yesterday']);
    assert.equal(late.code, 2, late.stderr);
    assert.equal(late.stderr.trim().split('\n').length, 1, late.stderr);
    assert.match(late.stderr, new RegExp(`is after ${addDays(today, -3)}, the newest date Search Console serves report performance \\(dataState final`));
    // fresh data (dataState all) is served through yesterday
    const fresh = await runCli(['backfill', '--config', config, '--site', PREFIX, '--report', 'appearance', '--from', '2daysAgo', '--to', 'yesterday']);
    assert.equal(fresh.code, 0, fresh.stderr);

    const unknown = await runCli(['backfill', '--config', config, '--site', 'sc-domain:other.example', '--from', '9daysAgo', '--to', '4daysAgo']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /site sc-domain:other\.example is not in searchConsole\.sites/);
    const both = await runCli(['backfill', '--config', config, '--site', DOMAIN, '--property', PROPERTY, '--from', '9daysAgo', '--to', '4daysAgo']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--property ID or --site URL, not both/);
    const dry = await runCli(['backfill', '--config', config, '--site', DOMAIN, '--from', '9daysAgo', '--to', '4daysAgo', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`site ${DOMAIN} \\(America/Los_Angeles\\): ${addDays(today, -9)} to ${addDays(today, -4)}, 6 dates`));
  });
});
