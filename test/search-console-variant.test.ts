/**
 * A Search Console report whose search type or aggregation changes holds other rows altogether:
 * every stored date is fetched again under the new definition (not only the refresh window), and
 * a run with the definition unchanged fetches no settled date again. Against the fake Google and
 * a real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addDays, dateRange } from '../src/time.js';
import { SA_EMAIL, runCli, startFake, testDb, writeConfig, type FakeSetup, type TestDb } from './helpers.js';

const SITE = 'sc-domain:variant.example';
const DIMS = ['query', 'device'];

describe('Search Console: a changed search type or aggregation', () => {
  let db: TestDb;
  let g: FakeSetup;
  let gsc: string;
  let today: string;

  const config = (type: string, aggregationType = 'auto') =>
    writeConfig(g.dir, db, g, {
      google: { credentials: g.keyFile, tokenUrl: g.fake.tokenUrl, apiRootUrl: g.fake.apiRootUrl, searchConsoleRootUrl: g.fake.searchConsoleRootUrl },
      properties: [],
      searchConsole: {
        schema: gsc,
        sites: [{ url: SITE }],
        reports: { performance: { dimensions: ['date', ...DIMS], type, aggregationType, startDate: '12daysAgo', refreshDays: 2 } },
      },
      // never fires during the test: only gaps and changed definitions are due
      schedule: '0 4 1 1 *',
    });

  /** Stored rows of the site, sorted, as [date, query, device, clicks, impressions]. */
  const stored = async () =>
    (
      await db.query<{ date: string; query: string; device: string; clicks: string; impressions: string }>(
        `SELECT to_char(date,'YYYY-MM-DD') AS date, query, device, clicks::text, impressions::text FROM "${gsc}".performance WHERE site_url = $1`,
        [SITE],
      )
    )
      .map((r) => JSON.stringify([r.date, r.query, r.device, Number(r.clicks), Number(r.impressions)]))
      .sort();
  const google = (type: string, dates: string[]) =>
    g.fake
      .searchAnalyticsRows(SITE, { startDate: dates[0]!, endDate: dates.at(-1)!, dimensions: ['date', ...DIMS], type })
      .map((r) => JSON.stringify([...r.keys, r.clicks, r.impressions]))
      .sort();
  const fetchedAt = async () =>
    (
      await db.query<{ date: string; at: Date }>(
        `SELECT to_char(date,'YYYY-MM-DD') AS date, fetched_at AS at FROM "${gsc}".fetch_days WHERE site_url = $1 ORDER BY date`,
        [SITE],
      )
    ).map((r) => [r.date, r.at.getTime()] as const);

  before(async () => {
    db = await testDb('gscvariant');
    gsc = `${db.schema}_gsc`;
    g = await startFake([]);
    g.fake.addSite({ url: SITE, queries: 10, pages: 3 });
    g.fake.grantSite(SA_EMAIL, SITE);
    today = g.fake.searchConsoleToday();
  });
  after(async () => {
    await g?.stop();
    await db?.query(`DROP SCHEMA IF EXISTS "${gsc}" CASCADE`).catch(() => undefined);
    await db?.drop();
  });

  it('fetches every stored date again when the type changes, and nothing settled when it does not', async () => {
    const dates = dateRange(addDays(today, -12), addDays(today, -3));
    const web = await runCli(['run', '--once', '--config', config('web')]);
    assert.equal(web.code, 0, web.stderr);
    assert.deepEqual(await stored(), google('web', dates), 'web rows');
    assert.notDeepEqual(google('web', dates), google('image', dates), 'the fake serves other rows for image search');

    const image = await runCli(['run', '--once', '--config', config('image')]);
    assert.equal(image.code, 0, image.stderr);
    assert.deepEqual(await stored(), google('image', dates), 'every date holds image rows now, none of web');
    assert.match(image.stdout, /report_definition_changed/);
    const asked = g.fake.events.filter((e) => e.kind === 'searchAnalytics' && e.site === SITE);
    assert.ok(asked.length > 0);

    // unchanged: a run whose schedule has not fired fetches nothing again
    const before = await fetchedAt();
    const seen = g.fake.events.length;
    const again = await runCli(['run', '--once', '--config', config('image')]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await fetchedAt(), before, 'no date fetched again');
    assert.equal(g.fake.events.slice(seen).filter((e) => e.kind === 'searchAnalytics').length, 0, 'no Search Console request');
  });

  it('fetches every date again when the aggregation changes', async () => {
    const dates = dateRange(addDays(today, -12), addDays(today, -3));
    const byPage = await runCli(['run', '--once', '--config', config('image', 'byPage')]);
    assert.equal(byPage.code, 0, byPage.stderr);
    const days = await fetchedAt();
    assert.deepEqual(
      days.map(([d]) => d),
      dates,
    );
    const versions = await db.query<{ n: string }>(`SELECT count(DISTINCT definition_id)::text AS n FROM "${gsc}".fetch_days WHERE site_url = $1`, [SITE]);
    assert.equal(versions[0]!.n, '1', 'every date stored under the one current definition');
    const variants = await db.query<{ variant: string }>(`SELECT variant FROM "${gsc}".report_definition_versions ORDER BY id`);
    assert.deepEqual(
      variants.map((v) => v.variant),
      ['type=web aggregationType=auto', 'type=image aggregationType=auto', 'type=image aggregationType=byPage'],
    );
  });
});
